//! Relays with real UDP sockets on 127.0.0.1 (port 0 everywhere).
//!
//! Nothing here asserts an upper bound on elapsed time: waits poll counters or sockets and give up only after a
//! generous guard, and the only timing assertions are lower bounds that the relay guarantees (a delayed or
//! rate-limited packet cannot arrive early).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netproxy::{
    DropCause, Endpoint, FaultTable, LinkCounters, LinkFault, MeshConfig, NodeId, RateLimit, Relay,
    RelayConfig, RelayError, RelayMesh, RelaySpec,
};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Upper bound for anything we wait for; reached only when something is broken.
const GUARD: Duration = Duration::from_secs(20);
const MS: Duration = Duration::from_millis(1);
const SEED: u64 = 0x5eed;

fn any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

async fn udp() -> UdpSocket {
    UdpSocket::bind(any_port()).await.expect("bind")
}

async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0_u8; 65_536];
    let (len, from) = tokio::time::timeout(GUARD, socket.recv_from(&mut buf))
        .await
        .expect("datagram within guard")
        .expect("recv");
    buf.truncate(len);
    (buf, from)
}

/// Asserts that nothing arrives for a while. Only a sanity check on top of the counters, which already
/// proved the packet was dropped.
async fn assert_silent(socket: &UdpSocket) {
    let mut buf = [0_u8; 64];
    let got = tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buf)).await;
    assert!(got.is_err(), "unexpected datagram {got:?}");
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + GUARD;
    while !condition() {
        assert!(Instant::now() < give_up, "gave up waiting for: {what}");
        tokio::time::sleep(MS).await;
    }
}

/// Replies to every datagram with `<payload>|<source address>`, so senders learn what the server saw.
fn spawn_echo(socket: UdpSocket) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0_u8; 65_536];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let mut reply = buf[..len].to_vec();
            reply.extend_from_slice(format!("|{from}").as_bytes());
            let _ = socket.send_to(&reply, from).await;
        }
    })
}

/// Counts datagrams and bytes received, with the time of the first and the last one.
#[derive(Debug, Default, Clone)]
struct Sink {
    packets: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    payloads: Vec<Vec<u8>>,
}

fn spawn_sink(socket: UdpSocket) -> (Arc<std::sync::Mutex<Sink>>, JoinHandle<()>) {
    let sink = Arc::new(std::sync::Mutex::new(Sink::default()));
    let shared = sink.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0_u8; 65_536];
        while let Ok((len, _)) = socket.recv_from(&mut buf).await {
            let now = Instant::now();
            let mut s = shared.lock().unwrap();
            s.packets += 1;
            s.bytes += len as u64;
            s.first.get_or_insert(now);
            s.last = Some(now);
            s.payloads.push(buf[..len].to_vec());
        }
    });
    (sink, task)
}

fn relay_config() -> RelayConfig {
    RelayConfig {
        seed: SEED,
        ..RelayConfig::default()
    }
}

/// A relay from clients labelled 1 to node 2 at `target`.
fn client_relay(table: &Arc<FaultTable>, target: SocketAddr, config: &RelayConfig) -> Relay {
    let spec = RelaySpec {
        listen: any_port(),
        downstream: Endpoint::Client(1),
        upstream: Endpoint::Node(NodeId(2)),
        upstream_addr: target,
    };
    Relay::start(spec, table.clone(), config).expect("relay")
}

const CLIENT: Endpoint = Endpoint::Client(1);
const NODE: Endpoint = Endpoint::Node(NodeId(2));

/// Sends `count` datagrams of `len` bytes (the first 4 bytes number them), waiting every few packets until
/// the relay has taken them in, so no datagram is lost to a full socket buffer before the relay sees it.
async fn send_paced(
    socket: &UdpSocket,
    dest: SocketAddr,
    count: u32,
    len: usize,
    table: &FaultTable,
    from: Endpoint,
    to: Endpoint,
) {
    let before = table.counters(from, to).packets_in;
    for i in 0..count {
        let mut payload = vec![0_u8; len.max(4)];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        socket.send_to(&payload, dest).await.expect("send");
        if i % 32 == 31 || i + 1 == count {
            let sent = before + u64::from(i) + 1;
            wait_until("the relay takes the packets in", || {
                table.counters(from, to).packets_in >= sent
            })
            .await;
        }
    }
}

fn assert_accounted(counters: &LinkCounters) {
    assert_eq!(counters.in_flight(), 0, "{counters:?}");
    assert_eq!(
        counters.packets_in,
        counters.forwarded + counters.dropped.total(),
        "{counters:?}"
    );
}

#[tokio::test]
async fn each_source_gets_its_own_upstream_socket_and_its_own_replies() {
    let server = udp().await;
    let server_addr = server.local_addr().unwrap();
    let echo = spawn_echo(server);
    let table = Arc::new(FaultTable::new());
    let relay = client_relay(&table, server_addr, &relay_config());
    let (a, b) = (udp().await, udp().await);
    a.send_to(b"one", relay.local_addr()).await.unwrap();
    b.send_to(b"two", relay.local_addr()).await.unwrap();
    let (reply_a, from_a) = recv(&a).await;
    let (reply_b, from_b) = recv(&b).await;
    assert_eq!(from_a, relay.local_addr(), "replies come from the relay");
    assert_eq!(from_b, relay.local_addr());
    let reply_a = String::from_utf8(reply_a).unwrap();
    let reply_b = String::from_utf8(reply_b).unwrap();
    let (payload_a, seen_a) = reply_a.split_once('|').unwrap();
    let (payload_b, seen_b) = reply_b.split_once('|').unwrap();
    assert_eq!((payload_a, payload_b), ("one", "two"));
    assert_ne!(seen_a, seen_b, "the server sees one address per source");
    for seen in [seen_a, seen_b] {
        let seen: SocketAddr = seen.parse().unwrap();
        assert_ne!(seen, a.local_addr().unwrap());
        assert_ne!(seen, b.local_addr().unwrap());
        assert_ne!(seen, relay.local_addr());
    }
    // The same source keeps its upstream socket.
    a.send_to(b"again", relay.local_addr()).await.unwrap();
    let (again, _) = recv(&a).await;
    assert_eq!(String::from_utf8(again).unwrap(), format!("again|{seen_a}"));
    let stats = relay.stats();
    assert_eq!((stats.sources, stats.sources_opened), (2, 2));
    let there = table.counters(CLIENT, NODE);
    let back = table.counters(NODE, CLIENT);
    assert_eq!((there.packets_in, there.forwarded), (3, 3));
    assert_eq!((back.packets_in, back.forwarded), (3, 3));
    assert_eq!(there.bytes_in, 3 + 3 + 5);
    relay.shutdown().await;
    echo.abort();
}

/// Node sockets standing in for two raft nodes, with the mesh between them.
struct TwoNodes {
    a: UdpSocket,
    b: UdpSocket,
    mesh: RelayMesh,
}

impl TwoNodes {
    async fn new() -> TwoNodes {
        let (a, b) = (udp().await, udp().await);
        let nodes = [(1, a.local_addr().unwrap()), (2, b.local_addr().unwrap())];
        let config = MeshConfig {
            relay: relay_config(),
            ..MeshConfig::default()
        };
        let mesh = RelayMesh::start(&nodes, config).expect("mesh");
        TwoNodes { a, b, mesh }
    }

    fn r12(&self) -> SocketAddr {
        self.mesh.addr_for(1, 2).unwrap()
    }

    fn r21(&self) -> SocketAddr {
        self.mesh.addr_for(2, 1).unwrap()
    }

    async fn wait_partition_drops(&self, from: u64, to: u64, drops: u64) {
        let table = self.mesh.faults();
        wait_until("the partition drops the packet", || {
            table.counters(from, to).dropped.partition >= drops
        })
        .await;
        assert_eq!(table.counters(from, to).dropped.partition, drops);
    }
}

#[tokio::test]
async fn a_oneway_partition_cuts_that_direction_on_both_relays_and_heals() {
    let n = TwoNodes::new().await;
    // Node 1's own connection to node 2 goes through R(1,2); node 2's through R(2,1).
    n.a.send_to(b"a1", n.r12()).await.unwrap();
    let (got, up12) = recv(&n.b).await;
    assert_eq!(got, b"a1");
    n.b.send_to(b"b1", up12).await.unwrap();
    assert_eq!(recv(&n.a).await, (b"b1".to_vec(), n.r12()));
    n.b.send_to(b"b2", n.r21()).await.unwrap();
    let (got, up21) = recv(&n.a).await;
    assert_eq!(got, b"b2");
    n.a.send_to(b"a2", up21).await.unwrap();
    assert_eq!(recv(&n.b).await, (b"a2".to_vec(), n.r21()));

    n.mesh.faults().partition_oneway(1, 2);
    // 1 → 2 on R(1,2): cut.
    n.a.send_to(b"a3", n.r12()).await.unwrap();
    n.wait_partition_drops(1, 2, 1).await;
    // 2 → 1 on R(1,2) (replies on 1's connection) and on R(2,1) (2's connection): still flowing.
    n.b.send_to(b"b3", up12).await.unwrap();
    assert_eq!(recv(&n.a).await, (b"b3".to_vec(), n.r12()));
    n.b.send_to(b"b4", n.r21()).await.unwrap();
    assert_eq!(recv(&n.a).await, (b"b4".to_vec(), up21));
    // 1 → 2 on R(2,1) (1's replies on 2's connection): cut as well.
    n.a.send_to(b"a4", up21).await.unwrap();
    n.wait_partition_drops(1, 2, 2).await;
    assert_silent(&n.b).await;
    assert_eq!(n.mesh.faults().counters(2, 1).dropped.total(), 0);

    n.mesh.faults().clear_all();
    n.a.send_to(b"a5", n.r12()).await.unwrap();
    assert_eq!(recv(&n.b).await, (b"a5".to_vec(), up12));
    n.a.send_to(b"a6", up21).await.unwrap();
    assert_eq!(recv(&n.b).await, (b"a6".to_vec(), n.r21()));

    let one_two = n.mesh.faults().counters(1, 2);
    let two_one = n.mesh.faults().counters(2, 1);
    assert_eq!((one_two.packets_in, one_two.forwarded), (6, 4));
    assert_eq!((two_one.packets_in, two_one.forwarded), (4, 4));
    assert_accounted(&one_two);
    assert_accounted(&two_one);
    n.mesh.shutdown().await;
}

#[tokio::test]
async fn a_partition_also_drops_packets_already_held() {
    let n = TwoNodes::new().await;
    let table = n.mesh.faults();
    table
        .set(1, 2, LinkFault::none().with_delay(300 * MS, Duration::ZERO))
        .unwrap();
    n.a.send_to(b"in flight", n.r12()).await.unwrap();
    wait_until("the packet is held", || table.counters(1, 2).delayed == 1).await;
    table.partition_oneway(1, 2);
    n.wait_partition_drops(1, 2, 1).await;
    assert_accounted(&table.counters(1, 2));
    assert_eq!(table.counters(1, 2).forwarded, 0);
    n.mesh.shutdown().await;
}

#[tokio::test]
async fn loss_of_half_drops_about_half_reproducibly() {
    let mut lost = Vec::new();
    for _ in 0..2 {
        let sink_socket = udp().await;
        let sink_addr = sink_socket.local_addr().unwrap();
        let (sink, sink_task) = spawn_sink(sink_socket);
        let table = Arc::new(FaultTable::new());
        table
            .set(CLIENT, NODE, LinkFault::none().with_loss(0.5))
            .unwrap();
        let relay = client_relay(&table, sink_addr, &relay_config());
        let source = udp().await;
        send_paced(&source, relay.local_addr(), 1000, 16, &table, CLIENT, NODE).await;
        let counters = table.counters(CLIENT, NODE);
        assert_eq!(counters.packets_in, 1000);
        assert_accounted(&counters);
        assert!(
            (400..=600).contains(&counters.dropped.loss),
            "{} of 1000 lost",
            counters.dropped.loss
        );
        assert_eq!(counters.dropped.loss, counters.dropped.total());
        wait_until("the sink gets every forwarded packet", || {
            sink.lock().unwrap().packets == counters.forwarded
        })
        .await;
        lost.push(counters.dropped.loss);
        relay.shutdown().await;
        sink_task.abort();
    }
    assert_eq!(lost[0], lost[1], "same seed, same losses");
}

#[tokio::test]
async fn delay_adds_at_least_the_configured_delay_each_way() {
    let server = udp().await;
    let server_addr = server.local_addr().unwrap();
    let echo = spawn_echo(server);
    let table = Arc::new(FaultTable::new());
    let relay = client_relay(&table, server_addr, &relay_config());
    let one_way = LinkFault::none().with_delay(30 * MS, 10 * MS);
    table.set_both(CLIENT, NODE, one_way).unwrap();
    // Jitter only adds: each round trip takes at least twice the delay.
    let client = udp().await;
    for i in 0..10_u8 {
        let start = Instant::now();
        client.send_to(&[i], relay.local_addr()).await.unwrap();
        let (reply, _) = recv(&client).await;
        let rtt = start.elapsed();
        assert_eq!(reply[0], i);
        assert!(rtt >= 2 * 30 * MS, "round trip {rtt:?}");
    }
    for link in [(CLIENT, NODE), (NODE, CLIENT)] {
        let counters = table.counters(link.0, link.1);
        assert_eq!((counters.forwarded, counters.delayed), (10, 10));
    }
    relay.shutdown().await;
    echo.abort();
}

#[tokio::test]
async fn duplicated_packets_arrive_twice() {
    let sink_socket = udp().await;
    let sink_addr = sink_socket.local_addr().unwrap();
    let (sink, sink_task) = spawn_sink(sink_socket);
    let table = Arc::new(FaultTable::new());
    table
        .set(CLIENT, NODE, LinkFault::none().with_duplicate(1.0))
        .unwrap();
    let relay = client_relay(&table, sink_addr, &relay_config());
    let source = udp().await;
    send_paced(&source, relay.local_addr(), 20, 8, &table, CLIENT, NODE).await;
    wait_until("both copies of every packet", || {
        sink.lock().unwrap().packets == 40
    })
    .await;
    let counters = table.counters(CLIENT, NODE);
    assert_eq!((counters.forwarded, counters.duplicated), (20, 20));
    assert_accounted(&counters);
    let payloads = sink.lock().unwrap().payloads.clone();
    for i in 0..20_u32 {
        let copies = payloads
            .iter()
            .filter(|p| p[..4] == i.to_be_bytes())
            .count();
        assert_eq!(copies, 2, "packet {i}");
    }
    relay.shutdown().await;
    sink_task.abort();
}

#[tokio::test]
async fn reordered_packets_are_overtaken_and_none_is_lost() {
    let sink_socket = udp().await;
    let sink_addr = sink_socket.local_addr().unwrap();
    let (sink, sink_task) = spawn_sink(sink_socket);
    let table = Arc::new(FaultTable::new());
    // A long hold makes overtaking certain even on a loaded machine: the burst is sent in far less.
    table
        .set(
            CLIENT,
            NODE,
            LinkFault::none().with_reorder(0.3, Duration::from_millis(300)),
        )
        .unwrap();
    let relay = client_relay(&table, sink_addr, &relay_config());
    let source = udp().await;
    send_paced(&source, relay.local_addr(), 100, 8, &table, CLIENT, NODE).await;
    wait_until("every packet arrives", || {
        sink.lock().unwrap().packets == 100
    })
    .await;
    let order: Vec<u32> = sink
        .lock()
        .unwrap()
        .payloads
        .iter()
        .map(|p| u32::from_be_bytes(p[..4].try_into().unwrap()))
        .collect();
    assert_eq!(
        order.iter().copied().collect::<BTreeSet<u32>>(),
        (0..100).collect::<BTreeSet<u32>>()
    );
    assert!(
        order.windows(2).any(|w| w[0] > w[1]),
        "no packet overtaken: {order:?}"
    );
    let counters = table.counters(CLIENT, NODE);
    assert!(
        (10..=50).contains(&counters.reordered),
        "{} reordered",
        counters.reordered
    );
    assert_eq!(counters.delayed, counters.reordered);
    assert_accounted(&counters);
    relay.shutdown().await;
    sink_task.abort();
}

#[tokio::test]
async fn a_rate_limit_caps_throughput_and_tail_drops() {
    let sink_socket = udp().await;
    let sink_addr = sink_socket.local_addr().unwrap();
    let (sink, sink_task) = spawn_sink(sink_socket);
    let table = Arc::new(FaultTable::new());
    let (rate, burst, queue) = (50_000_u64, 5_000_u64, 20_000_u64);
    table
        .set(
            CLIENT,
            NODE,
            LinkFault::none().with_rate(RateLimit::new(rate, burst, queue)),
        )
        .unwrap();
    let relay = client_relay(&table, sink_addr, &relay_config());
    let source = udp().await;
    // 300 kB offered far faster than 50 kB/s.
    send_paced(&source, relay.local_addr(), 300, 1000, &table, CLIENT, NODE).await;
    wait_until("every admitted packet is sent", || {
        table.counters(CLIENT, NODE).in_flight() == 0
    })
    .await;
    let counters = table.counters(CLIENT, NODE);
    assert_accounted(&counters);
    assert!(counters.dropped.rate_limit > 0, "{counters:?}");
    assert_eq!(counters.dropped.rate_limit, counters.dropped.total());
    wait_until("the sink gets every forwarded packet", || {
        sink.lock().unwrap().packets == counters.forwarded
    })
    .await;
    let s = sink.lock().unwrap().clone();
    let elapsed = s.last.unwrap() - s.first.unwrap();
    // Beyond the burst and the first packet, every byte waited for the rate: a lower bound on time.
    let paced_bytes = s.bytes.saturating_sub(burst + 1000);
    let least = Duration::from_secs_f64(paced_bytes as f64 / rate as f64 * 0.9);
    assert!(
        elapsed >= least,
        "{} B in {elapsed:?}, at {rate} B/s needs {least:?}",
        s.bytes
    );
    relay.shutdown().await;
    sink_task.abort();
}

#[tokio::test]
async fn idle_sources_are_evicted_and_come_back_on_a_new_port() {
    let server = udp().await;
    let server_addr = server.local_addr().unwrap();
    let echo = spawn_echo(server);
    let table = Arc::new(FaultTable::new());
    let config = RelayConfig {
        source_idle_timeout: Duration::from_millis(50),
        ..relay_config()
    };
    let relay = client_relay(&table, server_addr, &config);
    let client = udp().await;
    client.send_to(b"x", relay.local_addr()).await.unwrap();
    assert!(recv(&client).await.0.starts_with(b"x|"));
    wait_until("the idle source is evicted", || {
        let stats = relay.stats();
        stats.sources_evicted == 1 && stats.sources == 0
    })
    .await;
    client.send_to(b"x", relay.local_addr()).await.unwrap();
    assert!(
        recv(&client).await.0.starts_with(b"x|"),
        "a new source works"
    );
    assert_eq!(relay.stats().sources_opened, 2);
    relay.shutdown().await;
    echo.abort();
}

#[tokio::test]
async fn sources_beyond_the_bound_are_refused() {
    let server = udp().await;
    let server_addr = server.local_addr().unwrap();
    let echo = spawn_echo(server);
    let table = Arc::new(FaultTable::new());
    let config = RelayConfig {
        sources_max: 1,
        ..relay_config()
    };
    let relay = client_relay(&table, server_addr, &config);
    let (a, b) = (udp().await, udp().await);
    a.send_to(b"a", relay.local_addr()).await.unwrap();
    recv(&a).await;
    b.send_to(b"b", relay.local_addr()).await.unwrap();
    wait_until("the second source is refused", || {
        table
            .counters(CLIENT, NODE)
            .dropped
            .get(DropCause::SourcesFull)
            == 1
    })
    .await;
    assert_silent(&b).await;
    assert_eq!(relay.stats().sources, 1);
    relay.shutdown().await;
    echo.abort();
}

#[tokio::test]
async fn shutdown_closes_every_socket() {
    let n = TwoNodes::new().await;
    n.a.send_to(b"a", n.r12()).await.unwrap();
    let (_, up12) = recv(&n.b).await;
    n.b.send_to(b"b", n.r21()).await.unwrap();
    let (_, up21) = recv(&n.a).await;
    let relays = [n.r12(), n.r21()];
    n.mesh.shutdown().await;
    for addr in relays.into_iter().chain([up12, up21]) {
        std::net::UdpSocket::bind(addr)
            .unwrap_or_else(|e| panic!("{addr} still bound after shutdown: {e}"));
    }
}

#[tokio::test]
async fn mesh_addresses_client_relays_and_errors() {
    let server = udp().await;
    let server_addr = server.local_addr().unwrap();
    let echo = spawn_echo(server);
    let others = [udp().await, udp().await];
    let nodes = [
        (1, server_addr),
        (2, others[0].local_addr().unwrap()),
        (3, others[1].local_addr().unwrap()),
    ];
    let mut mesh = RelayMesh::start(&nodes, MeshConfig::default()).unwrap();
    assert_eq!(mesh.addr_for(1, 1), None);
    assert_eq!(mesh.addr_for(1, 9), None);
    let peers = mesh.peer_addrs(2);
    assert_eq!(
        peers.keys().copied().collect::<Vec<_>>(),
        vec![NodeId(1), NodeId(3)]
    );
    assert_eq!(peers[&NodeId(1)], mesh.addr_for(2, 1).unwrap());
    let all: BTreeSet<SocketAddr> = [1, 2, 3]
        .iter()
        .flat_map(|&i| mesh.peer_addrs(i).into_values())
        .collect();
    assert_eq!(all.len(), 6, "one relay per ordered pair");
    assert!(matches!(
        mesh.add_node(2, any_port()),
        Err(RelayError::DuplicateNode(NodeId(2)))
    ));
    assert!(matches!(
        mesh.add_client_relay(7, 9),
        Err(RelayError::UnknownNode(NodeId(9)))
    ));

    // Two clients share the client relay in front of node 1, each with its own replies.
    let via = mesh.add_client_relay(7, 1).unwrap();
    assert_eq!(mesh.add_client_relay(7, 1).unwrap(), via);
    assert_eq!(mesh.client_addr(7, 1), Some(via));
    let (c1, c2) = (udp().await, udp().await);
    c1.send_to(b"c1", via).await.unwrap();
    c2.send_to(b"c2", via).await.unwrap();
    assert!(recv(&c1).await.0.starts_with(b"c1|"));
    assert!(recv(&c2).await.0.starts_with(b"c2|"));
    // Client faults are their own links.
    mesh.faults().partition_oneway(Endpoint::Client(7), 1);
    c1.send_to(b"cut", via).await.unwrap();
    let table = mesh.faults().clone();
    wait_until("the client link drops", || {
        table.counters(Endpoint::Client(7), 1).dropped.partition == 1
    })
    .await;
    assert_eq!(table.counters(Endpoint::Client(7), 1).forwarded, 2);
    assert_eq!(table.counters(1, Endpoint::Client(7)).forwarded, 2);

    // Group partitions and isolation are sets of pairwise partitions.
    mesh.faults().clear_all();
    mesh.partition_groups(&[&[1], &[2, 3]]);
    let cut: Vec<_> = table.faults().into_keys().collect();
    assert_eq!(cut.len(), 4);
    mesh.faults().clear_all();
    mesh.isolate(3);
    assert_eq!(table.faults().len(), 4);
    assert!(table.get(3, 1).drop_all && table.get(2, 3).drop_all);
    assert!(table.get(1, 2).is_none());
    assert_eq!(mesh.relay_stats().len(), 7);
    mesh.shutdown().await;
    echo.abort();
}

#[tokio::test]
async fn bad_configs_are_refused() {
    let table = Arc::new(FaultTable::new());
    for config in [
        RelayConfig {
            sources_max: 0,
            ..RelayConfig::default()
        },
        RelayConfig {
            held_packets_max: 0,
            ..RelayConfig::default()
        },
        RelayConfig {
            held_bytes_max: 10,
            ..RelayConfig::default()
        },
        RelayConfig {
            source_idle_timeout: Duration::ZERO,
            ..RelayConfig::default()
        },
    ] {
        let spec = RelaySpec {
            listen: any_port(),
            downstream: CLIENT,
            upstream: NODE,
            upstream_addr: any_port(),
        };
        let err = Relay::start(spec, table.clone(), &config).unwrap_err();
        assert!(matches!(err, RelayError::Config(_)), "{err}");
    }
}
