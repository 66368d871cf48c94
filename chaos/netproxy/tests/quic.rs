//! End to end: two raft-transport endpoints (QUIC + mutual TLS) whose peer addresses are each other's relays.
//!
//! Nothing here asserts on elapsed time; the guard only stops a broken test from hanging.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use netproxy::{MeshConfig, NodeId, RelayConfig, RelayMesh};
use raft_transport::{
    generate_cluster_certs, CertValidity, ClusterCertSpec, Credentials, Inbox, NodeSpec, PeerFrame,
    PeerIdentity, Transport, TransportConfig,
};

const CLUSTER: u64 = 42;
const GUARD: Duration = Duration::from_secs(30);

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + GUARD;
    while !condition() {
        assert!(Instant::now() < give_up, "gave up waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `payload` from `from` to `to` every 50 ms until `inbox` gets a frame; returns it.
async fn deliver(
    from: &Transport,
    to: NodeId,
    inbox: &mut Inbox,
    payload: &'static [u8],
) -> PeerFrame {
    let give_up = Instant::now() + GUARD;
    loop {
        assert!(Instant::now() < give_up, "no frame got through");
        from.send(to, Bytes::from_static(payload)).ok();
        if let Ok(Some(frame)) =
            tokio::time::timeout(Duration::from_millis(50), inbox.frames.recv()).await
        {
            return frame;
        }
    }
}

#[tokio::test]
async fn quic_peers_talk_through_relays_a_partition_stops_them_and_heal_resumes() {
    let certs = tempfile::tempdir().unwrap();
    let spec = ClusterCertSpec {
        ca_name: "netproxy test CA".into(),
        nodes: [1, 2]
            .iter()
            .map(|&id| NodeSpec {
                id: NodeId(id),
                addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            })
            .collect(),
        clients: vec![],
        validity: CertValidity::around(SystemTime::now()),
    };
    generate_cluster_certs(certs.path(), &spec).unwrap();
    // A short idle timeout, so the partition kills the connections and healing needs a reconnect through
    // the same relays.
    let config = TransportConfig {
        idle_timeout: Duration::from_millis(800),
        keep_alive_interval: Duration::from_millis(200),
        connect_timeout: Duration::from_millis(500),
        reconnect_backoff_min: Duration::from_millis(10),
        reconnect_backoff_max: Duration::from_millis(200),
        ..TransportConfig::default()
    };
    let bind = |id| {
        let credentials = Credentials::load(certs.path(), &PeerIdentity::Node(NodeId(id))).unwrap();
        Transport::bind(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            &credentials,
            CLUSTER,
            config.clone(),
        )
        .unwrap()
    };
    let (a, mut a_inbox) = bind(1);
    let (b, mut b_inbox) = bind(2);
    let mesh_config = MeshConfig {
        relay: RelayConfig {
            seed: 7,
            ..RelayConfig::default()
        },
        ..MeshConfig::default()
    };
    let mesh = RelayMesh::start(&[(1, a.local_addr()), (2, b.local_addr())], mesh_config).unwrap();
    a.add_peer(NodeId(2), mesh.addr_for(1, 2).unwrap());
    b.add_peer(NodeId(1), mesh.addr_for(2, 1).unwrap());

    let hello = deliver(&a, NodeId(2), &mut b_inbox, b"hello").await;
    assert_eq!(hello.from, NodeId(1), "authenticated through the relay");
    assert_eq!(
        deliver(&b, NodeId(1), &mut a_inbox, b"hi").await.from,
        NodeId(2)
    );
    while b_inbox.frames.try_recv().is_ok() {}
    while a_inbox.frames.try_recv().is_ok() {}

    let faults = mesh.faults().clone();
    faults.partition(1, 2);
    a.send(NodeId(2), Bytes::from_static(b"during")).unwrap();
    wait_until("the partition kills both connections", || {
        !a.stats().peers[&NodeId(2)].connected && !b.stats().peers[&NodeId(1)].connected
    })
    .await;
    assert!(
        b_inbox.frames.try_recv().is_err(),
        "nothing crosses a partition"
    );
    assert!(faults.counters(1, 2).dropped.partition > 0);
    assert!(faults.counters(2, 1).dropped.partition > 0);

    faults.clear_all();
    let frame = deliver(&a, NodeId(2), &mut b_inbox, b"healed").await;
    assert_eq!(frame.from, NodeId(1));
    assert!(
        [&b"during"[..], b"healed"].contains(&frame.payload.as_ref()),
        "{frame:?}"
    );
    assert_eq!(
        deliver(&b, NodeId(1), &mut a_inbox, b"healed too")
            .await
            .from,
        NodeId(2)
    );
    assert!(a.stats().peers[&NodeId(2)].connects >= 2, "reconnected");
    for (link, counters) in mesh.counters() {
        assert!(counters.forwarded > 0, "{link}: {counters:?}");
        assert_eq!(counters.dropped.total(), counters.dropped.partition);
    }
    a.shutdown().await;
    b.shutdown().await;
    mesh.shutdown().await;
}
