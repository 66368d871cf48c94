//! Integration tests: real endpoints on 127.0.0.1 with port 0, real certificates, real QUIC.
//!
//! Nothing here asserts on elapsed time; the timeouts below only stop a broken test from hanging.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use raft_transport::{
    generate_cluster_certs, CertAuthority, CertValidity, ClientEndpoint, ClusterCertSpec,
    ConnectError, Credentials, HelloStatus, Inbox, IndeterminateReason, NodeId, NodeSpec,
    NotSentReason, PeerFrame, PeerIdentity, PeerNotice, RejectReason, RequestError, SendError,
    Transport, TransportConfig,
};
use tempfile::TempDir;

const CLUSTER: u64 = 42;
/// Upper bound for anything we wait for; only reached when something is broken.
const GUARD: Duration = Duration::from_secs(30);

struct Certs {
    dir: TempDir,
}

impl Certs {
    fn new(nodes: &[u64], clients: &[&str]) -> Certs {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = ClusterCertSpec {
            ca_name: "test cluster CA".into(),
            nodes: nodes
                .iter()
                .map(|&id| NodeSpec {
                    id: NodeId(id),
                    addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                })
                .collect(),
            clients: clients.iter().map(|c| c.to_string()).collect(),
            validity: CertValidity::around(SystemTime::now()),
        };
        generate_cluster_certs(dir.path(), &spec).expect("certs");
        Certs { dir }
    }

    fn node(&self, id: u64) -> Credentials {
        Credentials::load(self.dir.path(), &PeerIdentity::Node(NodeId(id)))
            .expect("node credentials")
    }

    fn client(&self, name: &str) -> Credentials {
        Credentials::load(self.dir.path(), &PeerIdentity::Client(name.into()))
            .expect("client credentials")
    }

    fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).expect("ca.pem")
    }

    /// Credentials signed by another CA that name `identity`, but trusting the real cluster CA (so the only
    /// thing wrong is who signed them).
    fn foreign(&self, identity: &PeerIdentity) -> Credentials {
        let validity = CertValidity::around(SystemTime::now());
        let foreign_ca = CertAuthority::generate("foreign CA", validity).expect("foreign CA");
        let issued = match identity {
            PeerIdentity::Node(id) => foreign_ca.issue_node(
                &NodeSpec {
                    id: *id,
                    addrs: vec![],
                },
                validity,
            ),
            PeerIdentity::Client(name) => foreign_ca.issue_client(name, validity),
        }
        .expect("foreign cert");
        Credentials::from_issued(&self.ca_pem(), &issued).expect("foreign credentials")
    }
}

fn config() -> TransportConfig {
    TransportConfig {
        connect_timeout: Duration::from_millis(500),
        reconnect_backoff_min: Duration::from_millis(10),
        reconnect_backoff_max: Duration::from_millis(200),
        ..TransportConfig::default()
    }
}

fn any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn bind(credentials: &Credentials, config: TransportConfig) -> (Transport, Inbox) {
    Transport::bind(any_port(), credentials, CLUSTER, config).expect("bind")
}

async fn next_frame(inbox: &mut Inbox) -> PeerFrame {
    tokio::time::timeout(GUARD, inbox.frames.recv())
        .await
        .expect("frame within guard")
        .expect("inbox open")
}

/// Polls `condition` until it holds; panics after the guard time.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + GUARD;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn three_nodes_exchange_frames_with_authenticated_senders() {
    let certs = Certs::new(&[1, 2, 3], &[]);
    let mut nodes: Vec<(Transport, Inbox)> = [1, 2, 3]
        .iter()
        .map(|&id| bind(&certs.node(id), config()))
        .collect();
    let addrs: Vec<(NodeId, SocketAddr)> = nodes
        .iter()
        .map(|(t, _)| (t.node_id(), t.local_addr()))
        .collect();
    for (transport, _) in &nodes {
        for &(id, addr) in &addrs {
            transport.add_peer(id, addr);
        }
    }
    for (transport, _) in &nodes {
        for &(to, _) in &addrs {
            if to != transport.node_id() {
                let payload = format!("{}->{}", transport.node_id(), to);
                transport.send(to, Bytes::from(payload)).expect("queued");
            }
        }
    }
    for (transport, inbox) in &mut nodes {
        let me = transport.node_id();
        let mut got = vec![next_frame(inbox).await, next_frame(inbox).await];
        got.sort_by_key(|f| f.from);
        let expected: Vec<PeerFrame> = addrs
            .iter()
            .filter(|(id, _)| *id != me)
            .map(|&(from, _)| PeerFrame {
                from,
                payload: Bytes::from(format!("{from}->{me}")),
            })
            .collect();
        assert_eq!(got, expected, "node {me}");
    }
    assert_eq!(
        nodes[0].0.send(NodeId(9), Bytes::new()),
        Err(SendError::UnknownPeer(NodeId(9)))
    );
    for (transport, _) in nodes {
        transport.shutdown().await;
    }
}

#[tokio::test]
async fn many_frames_are_batched_and_arrive_in_order() {
    let certs = Certs::new(&[1, 2], &[]);
    let frames = 5_000_u32;
    let cfg = TransportConfig {
        peer_queue_frames: frames as usize,
        ..config()
    };
    let (a, _a_inbox) = bind(&certs.node(1), cfg.clone());
    let (b, mut b_inbox) = bind(&certs.node(2), cfg);
    b.add_peer(NodeId(1), a.local_addr());
    a.add_peer(NodeId(2), b.local_addr());
    // On the current-thread test runtime the link task cannot run before this loop ends, so every frame is
    // queued before the first write: the sender must batch.
    for i in 0..frames {
        a.send(NodeId(2), Bytes::copy_from_slice(&i.to_be_bytes()))
            .expect("queued");
    }
    for i in 0..frames {
        let frame = next_frame(&mut b_inbox).await;
        assert_eq!(frame.from, NodeId(1));
        assert_eq!(
            frame.payload.as_ref(),
            i.to_be_bytes(),
            "frame {i} out of order"
        );
    }
    let link = &a.stats().peers[&NodeId(2)];
    assert_eq!(link.frames_sent, u64::from(frames));
    assert_eq!(link.frames_dropped, 0);
    assert!(
        link.batches_sent * 10 <= link.frames_sent,
        "{} batches for {} frames",
        link.batches_sent,
        frames
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn full_queue_drops_and_counts_frames() {
    let certs = Certs::new(&[1, 2], &[]);
    let (a, _inbox) = bind(
        &certs.node(1),
        TransportConfig {
            peer_queue_frames: 4,
            ..config()
        },
    );
    // Nobody listens there; the frames can only queue.
    a.add_peer(NodeId(2), SocketAddr::from((Ipv4Addr::LOCALHOST, 9)));
    let results: Vec<_> = (0..6)
        .map(|_| a.send(NodeId(2), Bytes::from_static(b"x")))
        .collect();
    assert!(results[..4].iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(results[4], Err(SendError::QueueFull { peer: NodeId(2) }));
    assert_eq!(a.stats().peers[&NodeId(2)].frames_dropped, 2);
    a.shutdown().await;
}

#[tokio::test]
async fn oversized_frames_are_rejected_by_sender_and_receiver() {
    let certs = Certs::new(&[1, 2], &[]);
    let (a, _a_inbox) = bind(
        &certs.node(1),
        TransportConfig {
            frame_bytes_max: 64 * 1024,
            ..config()
        },
    );
    let (b, mut b_inbox) = bind(
        &certs.node(2),
        TransportConfig {
            frame_bytes_max: 1024,
            ..config()
        },
    );
    a.add_peer(NodeId(2), b.local_addr());
    b.add_peer(NodeId(1), a.local_addr());

    // The sender refuses frames above its own limit.
    let err = a
        .send(NodeId(2), Bytes::from(vec![0; 64 * 1024 + 1]))
        .unwrap_err();
    assert_eq!(
        err,
        SendError::TooLarge {
            peer: NodeId(2),
            len: 64 * 1024 + 1,
            max: 64 * 1024
        }
    );

    // The receiver closes a link that announces a frame above its limit, without delivering it.
    a.send(NodeId(2), Bytes::from_static(b"before")).unwrap();
    a.send(NodeId(2), Bytes::from(vec![7; 2048])).unwrap();
    let first = next_frame(&mut b_inbox).await;
    assert_eq!(first.payload.as_ref(), b"before");
    wait_until("receiver counts a protocol error", || {
        b.stats().protocol_errors >= 1
    })
    .await;

    // The link comes back and small frames flow again; the oversized one was never delivered.
    wait_until("link reconnected", || {
        let link = &a.stats().peers[&NodeId(2)];
        link.connects >= 2 && link.connected
    })
    .await;
    a.send(NodeId(2), Bytes::from_static(b"after")).unwrap();
    let next = next_frame(&mut b_inbox).await;
    assert_eq!(next.payload.as_ref(), b"after");
    a.shutdown().await;
    b.shutdown().await;
}

/// Serves requests with `prefix ++ identity ++ request` until the inbox closes.
fn spawn_echo_server(mut inbox: Inbox) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(request) = inbox.requests.recv().await {
            let mut answer = format!("echo {} ", request.identity).into_bytes();
            answer.extend_from_slice(&request.payload);
            request
                .responder
                .respond(Bytes::from(answer))
                .expect("respond");
        }
    })
}

#[tokio::test]
async fn client_request_response_roundtrip_with_identity() {
    let certs = Certs::new(&[1, 3], &["alice"]);
    let (node, inbox) = bind(&certs.node(1), config());
    let server = spawn_echo_server(inbox);
    let client =
        ClientEndpoint::bind(any_port(), &certs.client("alice"), CLUSTER, config()).unwrap();
    let session = client.session(NodeId(1), node.local_addr());
    for i in 0..20 {
        let response = session
            .request(Bytes::from(format!("req {i}")), GUARD)
            .await
            .expect("response");
        assert_eq!(
            response,
            Bytes::from(format!("echo client \"alice\" req {i}"))
        );
    }
    // Concurrent requests share the session's one connection.
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let session = session.clone();
            tokio::spawn(async move {
                session
                    .request(Bytes::from(vec![i as u8; 1000]), GUARD)
                    .await
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let response = handle.await.unwrap().expect("response");
        assert!(response.ends_with(&vec![i as u8; 1000]));
    }
    // A node certificate can act as a client; the application sees a node identity.
    let as_node = ClientEndpoint::bind(any_port(), &certs.node(3), CLUSTER, config()).unwrap();
    let response = as_node
        .session(NodeId(1), node.local_addr())
        .request(Bytes::from_static(b"hi"), GUARD)
        .await
        .unwrap();
    assert_eq!(response, Bytes::from_static(b"echo node 3 hi"));
    assert_eq!(node.stats().requests_received, 37);
    client.close().await;
    as_node.close().await;
    node.shutdown().await;
    server.await.unwrap();
}

#[tokio::test]
async fn client_with_foreign_ca_certificate_is_refused() {
    let certs = Certs::new(&[1], &[]);
    let (node, inbox) = bind(&certs.node(1), config());
    let _server = spawn_echo_server(inbox);
    let mallory = certs.foreign(&PeerIdentity::Client("mallory".into()));
    let client = ClientEndpoint::bind(any_port(), &mallory, CLUSTER, config()).unwrap();
    let session = client.session(NodeId(1), node.local_addr());

    let err = session.connect().await.unwrap_err();
    assert!(matches!(err, ConnectError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    let err = session
        .request(Bytes::from_static(b"steal"), GUARD)
        .await
        .unwrap_err();
    assert!(err.is_definite(), "{err}");
    assert!(
        matches!(
            err,
            RequestError::NotSent {
                reason: NotSentReason::Connect(ConnectError::Refused { .. }),
                ..
            }
        ),
        "{err}"
    );
    println!("foreign client sees: {err}");
    wait_until("node counts refused handshakes", || {
        node.stats().handshakes_failed >= 2
    })
    .await;
    assert_eq!(node.stats().requests_received, 0);
    client.close().await;
    node.shutdown().await;
}

#[tokio::test]
async fn peer_with_foreign_ca_certificate_is_refused_and_never_delivers() {
    let certs = Certs::new(&[1, 2], &[]);
    let (node, mut inbox) = bind(&certs.node(1), config());
    let (rogue, _rogue_inbox) = bind(&certs.foreign(&PeerIdentity::Node(NodeId(2))), config());
    // Node 2 is even a member: only the CA check keeps the rogue out.
    node.add_peer(NodeId(2), rogue.local_addr());
    rogue.add_peer(NodeId(1), node.local_addr());
    for _ in 0..10 {
        rogue
            .send(NodeId(1), Bytes::from_static(b"forged"))
            .unwrap();
    }
    wait_until("rogue's hello failed twice", || {
        rogue.stats().peers[&NodeId(1)].connect_failures >= 2
    })
    .await;
    wait_until("node refused its handshakes", || {
        node.stats().handshakes_failed >= 2
    })
    .await;
    let link = rogue.stats().peers[&NodeId(1)].clone();
    assert!(!link.connected);
    assert_eq!(link.connects, 0);
    assert_eq!(link.frames_sent, 0);
    let last_error = link.last_error.unwrap();
    assert!(
        last_error.contains("refused") && last_error.contains("certificate"),
        "{last_error}"
    );
    // Node 1 refuses the rogue's server certificate too.
    wait_until("node's own link to the rogue fails", || {
        node.stats().peers[&NodeId(2)].connect_failures >= 1
    })
    .await;
    assert_eq!(node.stats().peers[&NodeId(2)].connects, 0);
    assert!(
        inbox.frames.try_recv().is_err(),
        "a forged frame was delivered"
    );
    assert_eq!(node.stats().frames_received, 0);
    rogue.shutdown().await;
    node.shutdown().await;
}

#[tokio::test]
async fn valid_node_that_is_not_a_member_is_refused_at_hello() {
    let certs = Certs::new(&[1, 3], &[]);
    let (node, mut inbox) = bind(&certs.node(1), config());
    let (outsider, _outsider_inbox) = bind(&certs.node(3), config());
    outsider.add_peer(NodeId(1), node.local_addr());
    outsider
        .send(NodeId(1), Bytes::from_static(b"let me in"))
        .unwrap();
    wait_until("outsider's hello refused", || {
        node.stats().hellos_refused >= 1
    })
    .await;
    wait_until("outsider records the refusal", || {
        outsider.stats().peers[&NodeId(1)].last_error.is_some()
    })
    .await;
    let last_error = outsider.stats().peers[&NodeId(1)]
        .last_error
        .clone()
        .unwrap();
    assert!(
        last_error.contains(&HelloStatus::NotMember.to_string()),
        "{last_error}"
    );
    assert!(inbox.frames.try_recv().is_err());

    // Once added as a member, the same node gets in.
    node.add_peer(NodeId(3), outsider.local_addr());
    let frame = next_frame(&mut inbox).await;
    assert_eq!(
        frame,
        PeerFrame {
            from: NodeId(3),
            payload: Bytes::from_static(b"let me in")
        }
    );
    // Removing it closes its link again.
    node.remove_peer(NodeId(3));
    wait_until("incoming link closed", || {
        node.stats().incoming_peers.is_empty()
    })
    .await;
    outsider.shutdown().await;
    node.shutdown().await;
}

#[tokio::test]
async fn other_cluster_id_is_refused() {
    let certs = Certs::new(&[1, 2], &["bob"]);
    let (node, _inbox) = bind(&certs.node(1), config());
    let client =
        ClientEndpoint::bind(any_port(), &certs.client("bob"), CLUSTER + 1, config()).unwrap();
    let err = client
        .session(NodeId(1), node.local_addr())
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::HelloRefused {
                status: HelloStatus::ClusterMismatch,
                ..
            }
        ),
        "{err}"
    );
    // Dialling the right address under the wrong node id fails too (TLS checks the server name).
    let err = client
        .session(NodeId(2), node.local_addr())
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Connection { .. }), "{err}");
    client.close().await;
    node.shutdown().await;
}

#[tokio::test]
async fn restarted_peer_on_same_port_is_reconnected_and_frames_flow_again() {
    let certs = Certs::new(&[1, 2], &[]);
    let (a, _a_inbox) = bind(&certs.node(1), config());
    let (b, mut b_inbox) = bind(&certs.node(2), config());
    let b_addr = b.local_addr();
    a.add_peer(NodeId(2), b_addr);
    b.add_peer(NodeId(1), a.local_addr());
    a.send(NodeId(2), Bytes::from_static(b"first life"))
        .unwrap();
    assert_eq!(
        next_frame(&mut b_inbox).await.payload.as_ref(),
        b"first life"
    );

    b.shutdown().await;
    drop(b_inbox);
    let (b, mut b_inbox) = rebind(b_addr, &certs.node(2)).await;
    b.add_peer(NodeId(1), a.local_addr());
    // Frames sent while the old connection is still believed up may be lost: keep sending until one arrives.
    let frame = loop {
        a.send(NodeId(2), Bytes::from_static(b"second life")).ok();
        if let Ok(Some(frame)) =
            tokio::time::timeout(Duration::from_millis(50), b_inbox.frames.recv()).await
        {
            break frame;
        }
        assert!(
            a.stats().peers[&NodeId(2)].connects < 100,
            "runaway reconnects"
        );
    };
    assert_eq!(
        frame,
        PeerFrame {
            from: NodeId(1),
            payload: Bytes::from_static(b"second life")
        }
    );
    assert!(a.stats().peers[&NodeId(2)].connects >= 2);
    println!(
        "restart: link stats after reconnect: {:?}",
        a.stats().peers[&NodeId(2)]
    );
    a.shutdown().await;
    b.shutdown().await;
}

async fn pause_before_retry(_why: raft_transport::EndpointError) {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Binds `credentials` at `addr`, retrying while the port is still held by a previous incarnation.
async fn rebind(addr: SocketAddr, credentials: &Credentials) -> (Transport, Inbox) {
    for _ in 0..200 {
        match Transport::bind(addr, credentials, CLUSTER, config()) {
            Ok(bound) => return bound,
            Err(e) => pause_before_retry(e).await,
        }
    }
    panic!("could not rebind {addr}");
}

#[tokio::test]
async fn crashed_peer_restarted_on_same_port_is_reconnected() {
    let certs = Certs::new(&[1, 2], &[]);
    let (a, _a_inbox) = bind(&certs.node(1), config());
    // Node 2 lives on its own runtime: shutting that runtime down kills it without a word to its peers,
    // like `kill -9` (no CONNECTION_CLOSE is sent).
    let crashing = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (b, mut b_inbox) = {
        let _inside = crashing.enter();
        bind(&certs.node(2), config())
    };
    let b_addr = b.local_addr();
    a.add_peer(NodeId(2), b_addr);
    b.add_peer(NodeId(1), a.local_addr());
    a.send(NodeId(2), Bytes::from_static(b"before crash"))
        .unwrap();
    assert_eq!(
        next_frame(&mut b_inbox).await.payload.as_ref(),
        b"before crash"
    );

    crashing.shutdown_background();
    drop(b);
    drop(b_inbox);
    let (b, mut b_inbox) = rebind(b_addr, &certs.node(2)).await;
    b.add_peer(NodeId(1), a.local_addr());
    let frame = loop {
        a.send(NodeId(2), Bytes::from_static(b"after crash")).ok();
        if let Ok(Some(frame)) =
            tokio::time::timeout(Duration::from_millis(50), b_inbox.frames.recv()).await
        {
            break frame;
        }
    };
    assert_eq!(
        frame,
        PeerFrame {
            from: NodeId(1),
            payload: Bytes::from_static(b"after crash")
        }
    );
    let link = a.stats().peers[&NodeId(2)].clone();
    assert!(link.connects >= 2);
    // Expected "reset by peer": the new incarnation proves the old connection dead with a stateless reset
    // (same node key, same reset key) instead of leaving us to wait for the idle timeout.
    println!("crash: old connection ended with: {:?}", link.last_error);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn request_outcomes_are_precise() {
    let certs = Certs::new(&[1], &["carol"]);
    let client =
        ClientEndpoint::bind(any_port(), &certs.client("carol"), CLUSTER, config()).unwrap();

    // Nobody there: definitely not sent.
    let nobody = std::net::UdpSocket::bind(any_port())
        .unwrap()
        .local_addr()
        .unwrap();
    let err = client
        .session(NodeId(1), nobody)
        .request(Bytes::from_static(b"x"), GUARD)
        .await
        .unwrap_err();
    assert!(err.is_definite(), "{err}");
    assert!(matches!(
        err,
        RequestError::NotSent {
            reason: NotSentReason::Connect(ConnectError::Timeout { .. }),
            ..
        }
    ));

    // Too large for our own limit: definitely not sent.
    let small = ClientEndpoint::bind(
        any_port(),
        &certs.client("carol"),
        CLUSTER,
        TransportConfig {
            frame_bytes_max: 8,
            ..config()
        },
    )
    .unwrap();
    let err = small
        .session(NodeId(1), nobody)
        .request(Bytes::from_static(b"123456789"), GUARD)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        RequestError::NotSent {
            reason: NotSentReason::TooLarge { len: 9, max: 8 },
            ..
        }
    ));

    let (node, mut inbox) = bind(
        &certs.node(1),
        TransportConfig {
            inbox_requests: 1,
            frame_bytes_max: 1024,
            ..config()
        },
    );
    let session = client.session(NodeId(1), node.local_addr());

    // The node's application drops the request: the outcome is unknown.
    let dropper = tokio::spawn(async move {
        let request = inbox.requests.recv().await.expect("request");
        drop(request);
        inbox
    });
    let err = session
        .request(Bytes::from_static(b"dropped"), GUARD)
        .await
        .unwrap_err();
    assert!(!err.is_definite(), "{err}");
    assert!(
        matches!(
            err,
            RequestError::Indeterminate {
                reason: IndeterminateReason::NoResponse,
                ..
            }
        ),
        "{err}"
    );
    let mut inbox = dropper.await.unwrap();

    // Oversized for the node: rejected before processing.
    let err = session
        .request(Bytes::from(vec![0; 2048]), GUARD)
        .await
        .unwrap_err();
    assert!(err.is_definite(), "{err}");
    assert!(
        matches!(
            err,
            RequestError::Rejected {
                reason: RejectReason::TooLarge,
                ..
            }
        ),
        "{err}"
    );

    // The request queue (capacity 1) is full: the second request is rejected as overloaded, and the first one,
    // never answered, ends with an unknown outcome when its timeout expires.
    let first = {
        let session = session.clone();
        tokio::spawn(async move {
            session
                .request(Bytes::from_static(b"stuck"), Duration::from_secs(1))
                .await
        })
    };
    wait_until("first request queued", || {
        node.stats().requests_received >= 2
    })
    .await;
    let err = session
        .request(Bytes::from_static(b"second"), GUARD)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Rejected {
                reason: RejectReason::Overloaded,
                ..
            }
        ),
        "{err}"
    );
    let err = first.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Indeterminate {
                reason: IndeterminateReason::Timeout { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_definite());
    // The queued request is still there for the application.
    assert_eq!(
        inbox.requests.recv().await.unwrap().payload.as_ref(),
        b"stuck"
    );

    client.close().await;
    node.shutdown().await;
}

#[tokio::test]
async fn certificate_outside_its_validity_window_is_refused() {
    let certs = Certs::new(&[1], &[]);
    let (node, _inbox) = bind(&certs.node(1), config());
    // Signed by the right CA, but valid only in 2001: what a node sees after a large clock jump.
    let ca = CertAuthority::load(certs.dir.path()).unwrap();
    let year_2001 = SystemTime::UNIX_EPOCH + Duration::from_secs(978_307_200);
    let validity =
        CertValidity::new(year_2001, year_2001 + Duration::from_secs(365 * 86_400)).unwrap();
    let expired =
        Credentials::from_issued(&certs.ca_pem(), &ca.issue_client("old", validity).unwrap())
            .unwrap();
    let client = ClientEndpoint::bind(any_port(), &expired, CLUSTER, config()).unwrap();
    let err = client
        .session(NodeId(1), node.local_addr())
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Refused { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("expired"), "{err}");
    client.close().await;
    node.shutdown().await;
}

/// A UDP relay in front of `target` that can black-hole all traffic, like a network partition.
struct Relay {
    addr: SocketAddr,
    blocked: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        use std::sync::atomic::Ordering;
        let front = tokio::net::UdpSocket::bind(any_port()).await.unwrap();
        let back = tokio::net::UdpSocket::bind(any_port()).await.unwrap();
        let addr = front.local_addr().unwrap();
        let blocked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = blocked.clone();
        let task = tokio::spawn(async move {
            let mut client: Option<SocketAddr> = None;
            let (mut up, mut down) = (vec![0_u8; 65536], vec![0_u8; 65536]);
            loop {
                tokio::select! {
                    Ok((len, from)) = front.recv_from(&mut up) => {
                        client = Some(from);
                        if !flag.load(Ordering::Relaxed) {
                            let _ = back.send_to(&up[..len], target).await;
                        }
                    }
                    Ok((len, _)) = back.recv_from(&mut down) => {
                        if let (Some(client), false) = (client, flag.load(Ordering::Relaxed)) {
                            let _ = front.send_to(&down[..len], client).await;
                        }
                    }
                }
            }
        });
        Relay {
            addr,
            blocked,
            task,
        }
    }

    fn partition(&self, on: bool) {
        self.blocked.store(on, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn link_killed_by_a_partition_longer_than_the_idle_timeout_reconnects_when_it_heals() {
    let certs = Certs::new(&[1, 2], &[]);
    let short = TransportConfig {
        idle_timeout: Duration::from_millis(600),
        keep_alive_interval: Duration::from_millis(150),
        connect_timeout: Duration::from_millis(300),
        ..config()
    };
    let (a, _a_inbox) = bind(&certs.node(1), short.clone());
    let (b, mut b_inbox) = bind(&certs.node(2), short);
    let relay = Relay::start(b.local_addr()).await;
    a.add_peer(NodeId(2), relay.addr);
    b.add_peer(NodeId(1), a.local_addr());
    a.send(NodeId(2), Bytes::from_static(b"before")).unwrap();
    assert_eq!(next_frame(&mut b_inbox).await.payload.as_ref(), b"before");

    relay.partition(true);
    wait_until("idle timeout kills the link", || {
        !a.stats().peers[&NodeId(2)].connected
    })
    .await;
    let died_of = a.stats().peers[&NodeId(2)].last_error.clone().unwrap();
    assert!(died_of.contains("timed out"), "{died_of}");
    relay.partition(false);

    let frame = loop {
        a.send(NodeId(2), Bytes::from_static(b"healed")).ok();
        if let Ok(Some(frame)) =
            tokio::time::timeout(Duration::from_millis(50), b_inbox.frames.recv()).await
        {
            break frame;
        }
    };
    assert_eq!(
        frame,
        PeerFrame {
            from: NodeId(1),
            payload: Bytes::from_static(b"healed")
        }
    );
    assert!(a.stats().peers[&NodeId(2)].connects >= 2);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_session_by_address_accepts_any_cluster_node_but_not_a_foreign_one() {
    let certs = Certs::new(&[1], &["alice"]);
    let (node, inbox) = bind(&certs.node(1), config());
    let server = spawn_echo_server(inbox);
    let client =
        ClientEndpoint::bind(any_port(), &certs.client("alice"), CLUSTER, config()).unwrap();
    let response = client
        .session_any_node(node.local_addr())
        .request(Bytes::from_static(b"hi"), GUARD)
        .await
        .expect("a cluster node at that address answers");
    assert_eq!(response, Bytes::from_static(b"echo client \"alice\" hi"));
    // A node whose certificate comes from another CA is refused even though nobody named an id.
    let (impostor, impostor_inbox) = bind(&certs.foreign(&PeerIdentity::Node(NodeId(1))), config());
    let impostor_server = spawn_echo_server(impostor_inbox);
    let err = client
        .session_any_node(impostor.local_addr())
        .request(Bytes::from_static(b"hi"), GUARD)
        .await
        .expect_err("a foreign node is refused");
    assert!(err.is_definite(), "refused before sending: {err}");
    client.close().await;
    node.shutdown().await;
    impostor.shutdown().await;
    server.await.unwrap();
    impostor_server.await.unwrap();
}

#[tokio::test]
async fn a_removed_node_is_told_at_hello_and_its_application_gets_a_notice() {
    let certs = Certs::new(&[1, 2, 3], &[]);
    let (member, _member_inbox) = bind(&certs.node(1), config());
    let (removed, mut removed_inbox) = bind(&certs.node(2), config());
    let (stranger, mut stranger_inbox) = bind(&certs.node(3), config());
    member.mark_removed(NodeId(2), 41);
    removed.add_peer(NodeId(1), member.local_addr());
    stranger.add_peer(NodeId(1), member.local_addr());
    let notice = tokio::time::timeout(GUARD, removed_inbox.notices.recv())
        .await
        .expect("a notice within the guard")
        .expect("inbox open");
    assert_eq!(
        notice,
        PeerNotice::Removed {
            by: NodeId(1),
            at_index: 41
        }
    );
    let last_error = removed.stats().peers[&NodeId(1)]
        .last_error
        .clone()
        .unwrap();
    assert!(
        last_error.contains("you were removed from the cluster at log index 41"),
        "{last_error}"
    );
    // A node that was never a member is only refused, with nothing to tell its application.
    wait_until("the stranger is refused", || {
        stranger.stats().peers[&NodeId(1)].connect_failures >= 1
    })
    .await;
    assert!(stranger_inbox.notices.try_recv().is_err());
    member.shutdown().await;
    removed.shutdown().await;
    stranger.shutdown().await;
}
