//! Loopback benchmark of the transport: client request/response latency and throughput (1 and 32 concurrent
//! clients) and peer frame throughput. Run in release:
//!
//! `cargo run --release -p raft-transport --bin transport-bench [-- --requests N --frames N --payload BYTES]`
//!
//! The node and the clients run on two current-thread runtimes in two threads, like two processes would.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use raft_transport::{
    CertAuthority, CertValidity, ClientEndpoint, Credentials, NodeId, NodeSpec, SendError,
    Transport, TransportConfig,
};

const CLUSTER: u64 = 1;
const TIMEOUT: Duration = Duration::from_secs(5);

struct Options {
    requests: usize,
    frames: usize,
    payload: usize,
}

fn parse_options() -> Result<Options> {
    let mut options = Options {
        requests: 20_000,
        frames: 500_000,
        payload: 100,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let value: usize = value
            .parse()
            .with_context(|| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--requests" => options.requests = value,
            "--frames" => options.frames = value,
            "--payload" => options.payload = value,
            other => bail!("unknown flag {other} (known: --requests, --frames, --payload)"),
        }
    }
    Ok(options)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building runtime")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Credentialed {
    node1: Credentials,
    node2: Credentials,
    client: Credentials,
}

fn credentials() -> Result<Credentialed> {
    let validity = CertValidity::around(SystemTime::now());
    let ca = CertAuthority::generate("bench CA", validity)?;
    let loopback = vec![Ipv4Addr::LOCALHOST.into()];
    let node1 = ca.issue_node(
        &NodeSpec {
            id: NodeId(1),
            addrs: loopback.clone(),
        },
        validity,
    )?;
    let node2 = ca.issue_node(
        &NodeSpec {
            id: NodeId(2),
            addrs: loopback,
        },
        validity,
    )?;
    let client = ca.issue_client("bench", validity)?;
    Ok(Credentialed {
        node1: Credentials::from_issued(ca.cert_pem(), &node1)?,
        node2: Credentials::from_issued(ca.cert_pem(), &node2)?,
        client: Credentials::from_issued(ca.cert_pem(), &client)?,
    })
}

/// `clients` sessions each send `requests / clients` requests back to back.
async fn request_round(
    endpoint: &ClientEndpoint,
    node: SocketAddr,
    clients: usize,
    requests: usize,
    payload: usize,
) -> Result<(Vec<Duration>, Duration)> {
    let per_client = requests / clients;
    let sessions: Vec<_> = (0..clients)
        .map(|_| endpoint.session(NodeId(1), node))
        .collect();
    for session in &sessions {
        session.connect().await?;
    }
    let body = Bytes::from(vec![0x5a; payload]);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for session in sessions {
        let body = body.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let sent = Instant::now();
                let response = session.request(body.clone(), TIMEOUT).await?;
                latencies.push(sent.elapsed());
                anyhow::ensure!(
                    response.len() == payload && response[0] == 0xa5,
                    "unexpected response"
                );
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut all = Vec::with_capacity(requests);
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    Ok((all, elapsed))
}

fn main() -> Result<()> {
    let options = parse_options()?;
    let creds = credentials()?;
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    println!(
        "transport-bench: loopback, {} B requests and responses, {} requests per round, {} peer frames of {} B",
        options.payload, options.requests, options.frames, options.payload
    );

    // The node: answers every request with a payload of the same size, and counts peer frames.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (peer_tx, mut peer_rx) = tokio::sync::mpsc::channel::<SocketAddr>(1);
    let frames_expected = options.frames;
    let server_creds = creds.node1.clone();
    let server = std::thread::spawn(move || -> Result<()> {
        runtime()?.block_on(async move {
            let (transport, mut inbox) = Transport::bind(any, &server_creds, CLUSTER, TransportConfig::default())?;
            addr_tx.send(transport.local_addr())?;
            let mut frames = 0_usize;
            let mut first_frame: Option<Instant> = None;
            let mut stop = stop_rx;
            loop {
                tokio::select! {
                    Some(request) = inbox.requests.recv() => {
                        let len = request.payload.len();
                        request.responder.respond(Bytes::from(vec![0xa5; len]))?;
                    }
                    Some(_frame) = inbox.frames.recv() => {
                        first_frame.get_or_insert_with(Instant::now);
                        frames += 1;
                        if frames == frames_expected {
                            let elapsed = first_frame.expect("first frame").elapsed();
                            println!(
                                "peer frames:  {frames} frames in {:.3} s at the receiver = {:.0} frames/s",
                                elapsed.as_secs_f64(),
                                frames as f64 / elapsed.as_secs_f64()
                            );
                        }
                    }
                    Some(peer_addr) = peer_rx.recv() => transport.add_peer(NodeId(2), peer_addr),
                    _ = &mut stop => break,
                }
            }
            transport.shutdown().await;
            Ok(())
        })
    });
    let node_addr = addr_rx.recv().context("node did not start")?;

    runtime()?.block_on(async {
        let client = ClientEndpoint::bind(any, &creds.client, CLUSTER, TransportConfig::default())?;
        // Warm up the connection, allocator and caches.
        request_round(&client, node_addr, 1, 1_000.min(options.requests), options.payload).await?;
        for clients in [1, 32] {
            let (latencies, elapsed) =
                request_round(&client, node_addr, clients, options.requests, options.payload).await?;
            println!(
                "requests:     {clients:>2} concurrent clients: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs, {:.0} requests/s",
                micros(percentile(&latencies, 0.50)),
                micros(percentile(&latencies, 0.99)),
                micros(*latencies.last().expect("latencies")),
                latencies.len() as f64 / elapsed.as_secs_f64()
            );
        }
        client.close().await;

        // Peer frames: node 2 streams frames to node 1 as fast as its queue takes them.
        let (sender, _inbox) = Transport::bind(any, &creds.node2, CLUSTER, TransportConfig::default())?;
        sender.add_peer(NodeId(1), node_addr);
        // Node 1 takes frames only from members.
        peer_tx.send(sender.local_addr()).await?;
        let frame = Bytes::from(vec![0x3c; options.payload]);
        let started = Instant::now();
        let give_up = started + Duration::from_secs(60);
        let mut full = 0_u64;
        for _ in 0..options.frames {
            loop {
                if Instant::now() > give_up {
                    bail!("peer frames not flowing: {:?}", sender.stats().peers[&NodeId(1)]);
                }
                match sender.send(NodeId(1), frame.clone()) {
                    Ok(()) => break,
                    Err(SendError::QueueFull { .. }) => {
                        full += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(other) => return Err(other.into()),
                }
            }
        }
        let stats = sender.stats();
        let link = &stats.peers[&NodeId(1)];
        println!(
            "peer sender:  {} frames queued in {:.3} s ({} retries on a full queue), {} frames in {} writes so far",
            options.frames,
            started.elapsed().as_secs_f64(),
            full,
            link.frames_sent,
            link.batches_sent
        );
        // Let the sender drain before shutting down (bounded).
        let give_up = Instant::now() + Duration::from_secs(30);
        while sender.stats().peers[&NodeId(1)].frames_sent < options.frames as u64 && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let link = sender.stats().peers[&NodeId(1)].clone();
        println!(
            "peer sender:  {} frames in {} writes ({:.1} frames per write), {} refused by a full queue (retried)",
            link.frames_sent,
            link.batches_sent,
            link.frames_sent as f64 / link.batches_sent.max(1) as f64,
            link.frames_dropped
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        sender.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    let _ = stop_tx.send(());
    server.join().expect("server thread")?;
    Ok(())
}
