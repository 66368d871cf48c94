//! The targets' clients honour the workload's client settings: the source address each client sends from, pinned
//! reads and retries inside an op (what is retried, and what never is).

mod common;
use chaos::targets::{self, ClientSettings, KvClient, Layout, NodeSlot, Outcome, Target};
use common::node_binary;
use raft_node::local::{make_certs, LocalCluster};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn layout(nodes: &[(u64, SocketAddr)], certs: &Path, tls: bool) -> Layout {
    Layout {
        nodes: nodes
            .iter()
            .map(|&(id, addr)| NodeSlot {
                id,
                ip: addr.ip(),
                peer_port: addr.port(),
                client_port: addr.port(),
                dir: PathBuf::from(format!("/nonexistent/n{id}")),
            })
            .collect(),
        certs: certs.to_path_buf(),
        client_name: "test".into(),
        tls,
        heartbeat: Duration::from_millis(50),
        election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
        extra_args: Vec::new(),
        run_id: "test".into(),
        snapshot_interval_entries: 1000,
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, last))
}

#[test]
fn client_c_sends_from_the_address_the_kernel_rules_match() {
    use chaos::faults::network::nftables::client_ip;
    assert_eq!(IpAddr::V4(client_ip(0)), ip(1));
    assert_eq!(IpAddr::V4(client_ip(1)), ip(2));
    assert_eq!(IpAddr::V4(client_ip(253)), ip(254));
    assert_eq!(client_ip(254), Ipv4Addr::new(127, 0, 2, 1));
}

#[tokio::test]
async fn a_raft_node_client_sends_from_its_source_address() {
    // A bare UDP socket stands in for a node: the client's first QUIC packet shows where it comes from.
    let tmp = tempfile::tempdir().unwrap();
    make_certs(tmp.path(), &[1], "test CA");
    let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let layout = layout(&[(1, addr)], tmp.path(), true);
    let target = targets::raft_node::RaftNode::new(node_binary(), &layout).unwrap();
    let settings = ClientSettings {
        source_ip: Some(ip(2)),
        ..ClientSettings::new(Duration::from_millis(500))
    };
    let mut client = target.connect(&layout, &settings).unwrap();
    let read = tokio::spawn(async move {
        let outcome = client.read("k").await;
        client.close().await;
        outcome
    });
    let mut buf = vec![0u8; 2048];
    let (_, from) = tokio::time::timeout(Duration::from_secs(5), server.recv_from(&mut buf))
        .await
        .expect("the client sent nothing")
        .unwrap();
    assert_eq!(from.ip(), ip(2));
    assert!(!matches!(read.await.unwrap(), Outcome::Ok(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_node_cluster_serves_a_client_bound_to_127_0_1_2_with_pinned_reads_and_short_attempts(
) {
    let cluster = LocalCluster::start(&node_binary(), 3, 3);
    let nodes: Vec<(u64, SocketAddr)> = cluster.addrs.iter().map(|(i, a)| (*i, *a)).collect();
    let layout = layout(&nodes, &cluster.certs, true);
    let target = targets::raft_node::RaftNode::new(node_binary(), &layout).unwrap();
    let settings = ClientSettings {
        attempt_timeout: Duration::from_millis(300),
        read_node: Some(2),
        source_ip: Some(ip(2)),
        ..ClientSettings::new(Duration::from_secs(10))
    };
    let mut client = target.connect(&layout, &settings).unwrap();
    assert_eq!(
        client.write("k", "1").await,
        Outcome::Ok(()),
        "{}",
        cluster.logs()
    );
    assert_eq!(client.read("k").await, Outcome::Ok(Some("1".into())));
    let cas = client.cas("k", Some("1"), "2").await;
    assert!(matches!(cas, Outcome::Ok(ref c) if c.applied), "{cas:?}");
    assert_eq!(client.read("k").await, Outcome::Ok(Some("2".into())));
    client.close().await;
}

/// A stand-in HTTP server: accepts connections, records each peer, reads the request, and then either closes
/// without answering (the request was delivered, its fate unknown) or answers an empty range.
async fn fake_gateway(
    listener: tokio::net::TcpListener,
    answer: bool,
    peers: std::sync::Arc<std::sync::Mutex<Vec<SocketAddr>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            return;
        };
        peers.lock().unwrap().push(peer);
        let mut buf = vec![0u8; 4096];
        let _ = stream.read(&mut buf).await;
        if answer {
            let body = "{\"header\":{},\"kvs\":[]}";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
        drop(stream);
    }
}

fn etcd_client(addr: SocketAddr, settings: &ClientSettings) -> Box<dyn KvClient> {
    let tmp = std::env::temp_dir();
    let layout = layout(&[(1, addr)], &tmp, false);
    let target = targets::etcd::Etcd::new(PathBuf::from("/usr/bin/etcd"), &layout).unwrap();
    target.connect(&layout, settings).unwrap()
}

#[tokio::test]
async fn an_etcd_client_sends_from_its_source_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers = std::sync::Arc::default();
    let server = tokio::spawn(fake_gateway(listener, true, std::sync::Arc::clone(&peers)));
    let settings = ClientSettings {
        source_ip: Some(ip(3)),
        ..ClientSettings::new(Duration::from_secs(2))
    };
    let mut client = etcd_client(addr, &settings);
    assert_eq!(client.read("k").await, Outcome::Ok(None));
    assert_eq!(peers.lock().unwrap()[0].ip(), ip(3));
    server.abort();
}

#[tokio::test]
async fn etcd_retries_reads_but_never_resends_a_write_that_may_have_been_delivered() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers: std::sync::Arc<std::sync::Mutex<Vec<SocketAddr>>> = std::sync::Arc::default();
    let server = tokio::spawn(fake_gateway(listener, false, std::sync::Arc::clone(&peers)));
    let settings = ClientSettings {
        attempt_timeout: Duration::from_millis(200),
        ..ClientSettings::new(Duration::from_millis(1500))
    };
    let mut client = etcd_client(addr, &settings);
    // Delivered, no answer: unknown at once, sent once.
    assert!(matches!(client.write("k", "1").await, Outcome::Unknown(_)));
    let writes = peers.lock().unwrap().len();
    assert_eq!(
        writes, 1,
        "a put that may have been applied is never re-sent"
    );
    let cas = client.cas("k", Some("1"), "2").await;
    assert!(matches!(cas, Outcome::Unknown(_)), "{cas:?}");
    assert_eq!(peers.lock().unwrap().len(), 2, "nor is a txn");
    // A read is retried until its deadline (several connections), then fails.
    assert!(matches!(client.read("k").await, Outcome::Fail(_)));
    assert!(
        peers.lock().unwrap().len() >= 4,
        "a read is retried: {} connections",
        peers.lock().unwrap().len()
    );
    server.abort();

    // Without a shorter attempt timeout (the default), a read is tried once, as before.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers: std::sync::Arc<std::sync::Mutex<Vec<SocketAddr>>> = std::sync::Arc::default();
    let server = tokio::spawn(fake_gateway(listener, false, std::sync::Arc::clone(&peers)));
    let mut client = etcd_client(addr, &ClientSettings::new(Duration::from_millis(500)));
    assert!(matches!(client.read("k").await, Outcome::Fail(_)));
    assert_eq!(peers.lock().unwrap().len(), 1);
    server.abort();
}

#[tokio::test]
async fn etcd_retries_a_write_that_could_not_connect_and_fails_it_at_the_deadline() {
    // A port nobody listens on: every connection is refused, so the put was never delivered.
    let addr = SocketAddr::from((
        [127, 0, 0, 1],
        chaos::hosts::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ));
    let settings = ClientSettings {
        attempt_timeout: Duration::from_millis(100),
        ..ClientSettings::new(Duration::from_millis(400))
    };
    let mut client = etcd_client(addr, &settings);
    let started = std::time::Instant::now();
    assert!(matches!(client.write("k", "1").await, Outcome::Fail(_)));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "retried until the op's deadline: {:?}",
        started.elapsed()
    );
}
