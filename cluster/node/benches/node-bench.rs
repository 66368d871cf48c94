//! Throughput and latency of a three-node cluster on loopback, fsync on, mutual TLS:
//! `cargo bench -p raft-node --bench node-bench`.
//!
//! For each number of concurrent clients (each its own QUIC endpoint and session), writes of 256-byte values
//! to distinct keys for a fixed time, then linearizable reads. Prints operations/s and latency percentiles.
//! `NODE_BENCH_SECONDS` (default 5) sets the time per measurement; `NODE_BENCH_CLIENTS` a comma list.
//!
//! Last, the status call a fault watcher polls (every millisecond in some plans): its latency on a kept
//! session with the map as the writes left it, `NODE_BENCH_STATUS_CALLS` calls (default 2000).

use hdrhistogram::Histogram;
use raft_node::client::{session_status, Client, ClientOptions, Outcome};
use raft_node::local::LocalCluster;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Write,
    Read,
}

async fn measure(cluster: &LocalCluster, clients: usize, op: Op, seconds: u64) {
    let value = "x".repeat(256);
    let stop = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let options = ClientOptions {
            request_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        };
        let mut client = Client::connect(
            &cluster.addr_list(&[1, 2, 3]),
            &cluster.certs,
            "test",
            options,
        )
        .expect("client");
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut i = 0u64;
            // Warm the connection (and find the leader) before timing.
            let _ = client.get("warm-up").await;
            while Instant::now() < stop {
                let key = format!("c{c}-k{}", i % 1000);
                let started = Instant::now();
                let success = match op {
                    Op::Write => matches!(client.put(&key, &value).await, Outcome::Ok(())),
                    Op::Read => matches!(client.get(&key).await, Outcome::Ok(_)),
                };
                if success {
                    ok += 1;
                    hist.record(started.elapsed().as_micros().max(1) as u64)
                        .expect("in range");
                } else {
                    failed += 1;
                }
                i += 1;
            }
            client.close().await;
            (hist, ok, failed)
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let (mut ok, mut failed) = (0, 0);
    for t in tasks {
        let (h, o, f) = t.await.expect("client task");
        total.add(h).expect("same bounds");
        ok += o;
        failed += f;
    }
    let name = if op == Op::Write {
        "writes"
    } else {
        "linearizable reads"
    };
    println!(
        "{clients:>3} clients, {name:<18}: {:>8.0} ops/s  p50 {:>6.2} ms  p99 {:>6.2} ms  p999 {:>6.2} ms  ({ok} ok, {failed} failed)",
        ok as f64 / seconds as f64,
        total.value_at_quantile(0.5) as f64 / 1000.0,
        total.value_at_quantile(0.99) as f64 / 1000.0,
        total.value_at_quantile(0.999) as f64 / 1000.0,
    );
}

/// Latency of `calls` status calls to node `id` over one kept session, with the key count the node reports.
async fn measure_status(cluster: &LocalCluster, id: u64, calls: usize) {
    let endpoint = cluster.endpoint();
    let session = endpoint.session_any_node(cluster.addr_list(&[id])[0]);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut keys = 0;
    for _ in 0..calls {
        let started = Instant::now();
        let status = session_status(&session, None, Duration::from_secs(5))
            .await
            .expect("status");
        hist.record(started.elapsed().as_micros().max(1) as u64)
            .expect("in range");
        keys = status.applied_state.keys;
    }
    println!(
        "status of n{id} ({keys} keys): {calls} calls, p50 {} us, p99 {} us, max {} us",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max()
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let seconds: u64 = std::env::var("NODE_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 5 } else { 1 });
    let clients: Vec<usize> = std::env::var("NODE_BENCH_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| if full { vec![1, 16, 64, 256] } else { vec![1] });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut cluster = LocalCluster::prepare(env!("CARGO_BIN_EXE_raft-node").as_ref(), 3, 3);
        cluster.snapshot_interval_entries = 100_000;
        for id in 1..=3 {
            cluster.spawn(id, None);
        }
        let leader = cluster.wait_leader(&[1, 2, 3]).await;
        println!("3 nodes on loopback, fsync always, mutual TLS over QUIC, leader n{leader}, {seconds} s per measurement");
        for &n in &clients {
            measure(&cluster, n, Op::Write, seconds).await;
        }
        for &n in &clients {
            measure(&cluster, n, Op::Read, seconds).await;
        }
        let calls = std::env::var("NODE_BENCH_STATUS_CALLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if full { 2000 } else { 100 });
        measure_status(&cluster, leader, calls).await;
    });
}
