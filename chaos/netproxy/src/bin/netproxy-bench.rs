//! Benchmark of one relay on loopback: latency it adds to a request/response, and the throughput it carries.
//!
//! Run in release: `cargo run --release -p netproxy --bin netproxy-bench -- [--pings N] [--warmup N]
//! [--packets N] [--size BYTES] [--window N] [--relay-threads N]`.
//!
//! Three threads, each with its own current-thread tokio runtime, stand in for three processes: the server
//! (a raft node), the relay (the chaos runner) and the client (another node). Every figure is measured twice,
//! once straight to the server and once through a healthy relay, so the difference is the relay's cost.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netproxy::{Endpoint, FaultTable, NodeId, Relay, RelayConfig, RelaySpec};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// First byte of a throughput packet: the server answers with a short ack instead of an echo.
const BULK: u8 = b'T';
const PING_BYTES: usize = 64;
const ACK_BYTES: usize = 8;
/// How long a ping or a window of packets may go unanswered before it counts as lost.
const LOST_AFTER: Duration = Duration::from_millis(200);

struct Options {
    pings: usize,
    warmup: usize,
    packets: u64,
    size: usize,
    window: u64,
    /// Worker threads of the relay's runtime; 0 for a current-thread runtime.
    relay_threads: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        pings: 20_000,
        warmup: 2_000,
        packets: 200_000,
        size: 1_200,
        window: 32,
        relay_threads: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--pings" => options.pings = value()? as usize,
            "--warmup" => options.warmup = value()? as usize,
            "--packets" => options.packets = value()?,
            "--size" => options.size = value()? as usize,
            "--window" => options.window = value()?,
            "--relay-threads" => options.relay_threads = value()? as usize,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !(PING_BYTES..=netproxy::DATAGRAM_BYTES_MAX - 28).contains(&options.size) {
        return Err(format!("--size must be in {PING_BYTES}..=65507"));
    }
    if options.window == 0 || options.pings == 0 || options.packets == 0 {
        return Err("--pings, --packets and --window must be positive".into());
    }
    Ok(options)
}

/// Runs `work` on a new thread with its own runtime: current-thread if `workers` is 0, else multi-thread.
fn spawn_runtime<F, Fut>(name: &str, workers: usize, work: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut builder = if workers == 0 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(workers);
                builder
            };
            let runtime = builder.enable_all().build().expect("runtime");
            runtime.block_on(work());
        })
        .expect("thread")
}

/// The server: echoes pings, acks bulk packets with their first 8 bytes.
async fn serve(socket: UdpSocket, mut stop: oneshot::Receiver<()>) {
    let mut buf = vec![0_u8; 65_536];
    loop {
        tokio::select! {
            _ = &mut stop => return,
            received = socket.recv_from(&mut buf) => {
                let Ok((len, from)) = received else { continue };
                let reply = if buf[0] == BULK { &buf[..ACK_BYTES.min(len)] } else { &buf[..len] };
                let _ = socket.send_to(reply, from).await;
            }
        }
    }
}

/// Round-trip times of `count` pings to each destination after `warmup` unmeasured ones; lost pings are
/// counted, not timed. Pings alternate between the destinations, so both see the same machine conditions
/// (CPU frequency, idle states, other load) and their difference is the relay's cost.
async fn ping(
    socket: &UdpSocket,
    dests: [SocketAddr; 2],
    warmup: usize,
    count: usize,
) -> [(Vec<u64>, u64); 2] {
    let mut results = [
        (Vec::with_capacity(count), 0),
        (Vec::with_capacity(count), 0),
    ];
    let mut buf = vec![0_u8; 65_536];
    for i in 0..(warmup + count) as u64 {
        for (dest, (rtts_ns, lost)) in dests.iter().zip(results.iter_mut()) {
            let mut payload = [0_u8; PING_BYTES];
            payload[..8].copy_from_slice(&i.to_be_bytes());
            let start = Instant::now();
            socket.send_to(&payload, dest).await.expect("send");
            let answered = loop {
                match tokio::time::timeout(LOST_AFTER, socket.recv_from(&mut buf)).await {
                    Ok(Ok((len, _))) if len >= 8 && buf[..8] == i.to_be_bytes() => break true,
                    Ok(_) => continue,
                    Err(_) => break false,
                }
            };
            let rtt = start.elapsed();
            if i as usize >= warmup {
                if answered {
                    rtts_ns.push(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
                } else {
                    *lost += 1;
                }
            }
        }
    }
    for (rtts_ns, _) in &mut results {
        rtts_ns.sort_unstable();
    }
    results
}

fn percentile_us(sorted_ns: &[u64], p: f64) -> f64 {
    if sorted_ns.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted_ns.len() as f64 - 1.0) * p).round() as usize;
    sorted_ns[rank] as f64 / 1_000.0
}

struct Throughput {
    elapsed: Duration,
    acked: u64,
    lost: u64,
}

/// Sends `packets` bulk packets keeping at most `window` unacknowledged; a window silent for
/// [`LOST_AFTER`] is written off as lost.
async fn bulk(
    socket: &UdpSocket,
    dest: SocketAddr,
    packets: u64,
    size: usize,
    window: u64,
) -> Throughput {
    let mut payload = vec![0_u8; size];
    payload[0] = BULK;
    let mut buf = vec![0_u8; 65_536];
    let (mut sent, mut acked, mut lost, mut outstanding) = (0_u64, 0_u64, 0_u64, 0_u64);
    let start = Instant::now();
    let mut last_ack = start;
    while acked + lost < packets {
        while outstanding < window && sent < packets {
            payload[1..9].copy_from_slice(&sent.to_be_bytes());
            socket.send_to(&payload, dest).await.expect("send");
            sent += 1;
            outstanding += 1;
        }
        match tokio::time::timeout(LOST_AFTER, socket.recv_from(&mut buf)).await {
            Ok(Ok((len, _))) if len == ACK_BYTES && buf[0] == BULK => {
                acked += 1;
                outstanding -= 1;
                last_ack = Instant::now();
            }
            Ok(_) => {}
            Err(_) => {
                lost += outstanding;
                outstanding = 0;
            }
        }
    }
    Throughput {
        // Up to the last ack, so time spent waiting out lost windows at the end does not count.
        elapsed: last_ack - start,
        acked,
        lost,
    }
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("netproxy-bench: {e}");
            std::process::exit(2);
        }
    };
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));

    let server_socket = std::net::UdpSocket::bind(loopback).expect("bind server");
    server_socket.set_nonblocking(true).expect("nonblocking");
    let server_addr = server_socket.local_addr().expect("server addr");
    let (stop_server, server_stop) = oneshot::channel();
    let server = spawn_runtime("server", 0, move || async move {
        let socket = UdpSocket::from_std(server_socket).expect("server socket");
        serve(socket, server_stop).await;
    });

    let (relay_addr_tx, relay_addr_rx) = std::sync::mpsc::channel();
    let (stop_relay, relay_stop) = oneshot::channel::<()>();
    let relay = spawn_runtime("relay", options.relay_threads, move || async move {
        let spec = RelaySpec {
            listen: loopback,
            downstream: Endpoint::Node(NodeId(1)),
            upstream: Endpoint::Node(NodeId(2)),
            upstream_addr: server_addr,
        };
        let table = Arc::new(FaultTable::new());
        let relay = Relay::start(spec, table.clone(), &RelayConfig::default()).expect("relay");
        relay_addr_tx
            .send((relay.local_addr(), table))
            .expect("main thread waits");
        let _ = relay_stop.await;
        relay.shutdown().await;
    });
    let (relay_addr, table) = relay_addr_rx.recv().expect("relay started");

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    client.block_on(async {
        let socket = UdpSocket::bind(loopback).await.expect("bind client");
        println!(
            "netproxy-bench: loopback UDP; server, relay and client on separate threads with their own runtimes \
             (relay: {})",
            match options.relay_threads {
                0 => "current-thread".to_string(),
                n => format!("multi-thread, {n} workers"),
            }
        );
        println!(
            "latency: {PING_BYTES} B request/response, {} pings each way after {} warm-up, alternating direct and relay",
            options.pings, options.warmup
        );
        let results = ping(
            &socket,
            [server_addr, relay_addr],
            options.warmup,
            options.pings,
        )
        .await;
        for (name, (rtts, lost)) in ["direct", "relay "].iter().zip(&results) {
            println!(
                "  {name}  p50 {:7.1} µs  p90 {:7.1} µs  p99 {:7.1} µs  max {:8.1} µs  lost {lost}",
                percentile_us(rtts, 0.50),
                percentile_us(rtts, 0.90),
                percentile_us(rtts, 0.99),
                percentile_us(rtts, 1.0),
            );
        }
        let added = |p| percentile_us(&results[1].0, p) - percentile_us(&results[0].0, p);
        println!(
            "  added by the relay (there and back): p50 {:.1} µs, p99 {:.1} µs",
            added(0.50),
            added(0.99)
        );
        println!(
            "throughput: {} packets of {} B, window {}, {ACK_BYTES} B acks back the same way",
            options.packets, options.size, options.window
        );
        for (name, dest) in [("direct", server_addr), ("relay ", relay_addr)] {
            let t = bulk(&socket, dest, options.packets, options.size, options.window).await;
            let seconds = t.elapsed.as_secs_f64();
            println!(
                "  {name}  {:9.0} packets/s  {:7.1} MB/s  ({} acked, {} lost, {:.2} s)",
                t.acked as f64 / seconds,
                (t.acked * options.size as u64) as f64 / seconds / 1e6,
                t.acked,
                t.lost,
                seconds
            );
        }
    });
    let _ = stop_relay.send(());
    let _ = stop_server.send(());
    relay.join().expect("relay thread");
    server.join().expect("server thread");
    // Read once the relay has stopped, so no packet is counted as arrived but not yet as forwarded.
    let there = table.counters(1, 2);
    let back = table.counters(2, 1);
    println!(
        "relay counters: 1->2 {} in / {} forwarded / {} dropped; 2->1 {} in / {} forwarded / {} dropped",
        there.packets_in,
        there.forwarded,
        there.dropped.total(),
        back.packets_in,
        back.forwarded,
        back.dropped.total()
    );
}
