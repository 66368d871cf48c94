//! Benchmarks of the pure core (no IO): `cargo bench -p raft --bench raft-bench`.
//!
//! 1. Throughput: commands committed and applied on every node of a 3- and 5-node cluster per CPU-second of the
//!    whole simulated cluster (all nodes run on one thread, so this is the core's cost, not the network's).
//! 2. Time to a new leader after the leader crashes, in simulated milliseconds, for several election timeout
//!    ranges, with and without pre-vote; compare with Figure 16 of the Raft paper (150–300 ms timeouts and a
//!    broadcast time of about 15 ms: a new leader after about 171 ms at the median... see the README).
//!
//! `RAFT_BENCH_TRIALS` sets the number of leader crashes per configuration (default 1000).

use raft::kv::{KvCommand, KvOp, KvStore};
use raft::{
    Config, ElectionTimeoutPolicy, EntryPayload, Instant, Membership, Message, NodeId, RawNode,
    Role, StateMachine,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_PROCESS_CPUTIME_ID is always supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// A cluster on one thread with a network of fixed-latency-plus-jitter links.
struct Cluster {
    nodes: Vec<Option<RawNode>>,
    kv: Vec<KvStore>,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    messages: Vec<Option<Message>>,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    one_way_ms: (u64, u64),
    applied: u64,
}

impl Cluster {
    fn new(n: usize, cfg: impl Fn(NodeId) -> Config, one_way_ms: (u64, u64), seed: u64) -> Cluster {
        let membership = Membership::with_voters((1..=n as u64).map(NodeId));
        let nodes = (1..=n as u64)
            .map(|i| {
                Some(
                    RawNode::bootstrap(cfg(NodeId(i)), membership.clone(), Instant(0))
                        .expect("valid config"),
                )
            })
            .collect();
        Cluster {
            nodes,
            kv: (0..n).map(|_| KvStore::new(1024)).collect(),
            queue: BinaryHeap::new(),
            messages: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: 0,
            seq: 0,
            one_way_ms,
            applied: 0,
        }
    }

    fn process(&mut self, i: usize) {
        while let Some(node) = self.nodes[i].as_mut() {
            if !node.has_ready() {
                return;
            }
            let ready = node.ready();
            let outgoing: Vec<Message> = ready
                .messages
                .iter()
                .chain(ready.persisted_messages.iter())
                .cloned()
                .collect();
            for entry in &ready.committed_entries {
                if let EntryPayload::Command(data) = &entry.payload {
                    self.kv[i].apply(entry.index, data);
                    self.applied += 1;
                }
            }
            self.nodes[i].as_mut().expect("up").advance(ready);
            for msg in outgoing {
                let delay = self.rng.gen_range(self.one_way_ms.0..=self.one_way_ms.1);
                self.seq += 1;
                self.messages.push(Some(msg));
                self.queue.push(Reverse((
                    self.now + delay,
                    self.seq,
                    self.messages.len() - 1,
                )));
            }
        }
    }

    /// Runs until simulated time `until`, ticking every node every `tick_ms`.
    fn run_until(
        &mut self,
        until: u64,
        tick_ms: u64,
        mut on_step: impl FnMut(&mut Cluster) -> bool,
    ) {
        let mut next_tick = self.now;
        while self.now < until {
            let next_msg = self.queue.peek().map_or(u64::MAX, |Reverse((t, _, _))| *t);
            if next_msg <= next_tick {
                let Reverse((t, _, slot)) = self.queue.pop().expect("peeked");
                self.now = t;
                let msg = self.messages[slot].take().expect("delivered once");
                let to = msg.to.0 as usize - 1;
                if let Some(node) = self.nodes[to].as_mut() {
                    node.step(msg, Instant(self.now));
                    self.process(to);
                }
            } else {
                self.now = next_tick;
                next_tick += tick_ms;
                for i in 0..self.nodes.len() {
                    if let Some(node) = self.nodes[i].as_mut() {
                        node.tick(Instant(self.now));
                        self.process(i);
                    }
                }
            }
            if on_step(self) {
                return;
            }
        }
    }

    fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .as_ref()
                    .is_some_and(|n| n.role() == Role::Leader)
            })
            .max_by_key(|&i| self.nodes[i].as_ref().map(|n| n.term()))
    }
}

fn throughput(n: usize) {
    let mut cluster = Cluster::new(n, Config::new, (0, 0), 1);
    cluster.run_until(2_000, 10, |c| c.leader().is_some());
    let leader = cluster.leader().expect("a leader within 2 s");
    let batch = 256;
    let rounds = 400;
    let value = "v".repeat(64);
    let started = cpu_seconds();
    let applied_before = cluster.applied;
    let mut seq = 0;
    for _ in 0..rounds {
        for _ in 0..batch {
            seq += 1;
            let cmd = KvCommand {
                client: 1,
                seq,
                op: KvOp::Put {
                    key: format!("k{}", seq % 1000),
                    value: value.clone(),
                },
            };
            cluster.nodes[leader]
                .as_mut()
                .expect("up")
                .propose(cmd.encode(), Instant(cluster.now))
                .expect("leader accepts");
        }
        cluster.process(leader);
        let target = cluster.applied + (batch * n) as u64;
        let until = cluster.now + 1_000;
        cluster.run_until(until, 10, |c| c.applied >= target);
    }
    let cpu = cpu_seconds() - started;
    let commands = seq as f64;
    let applied = (cluster.applied - applied_before) as f64;
    println!(
        "throughput {n} nodes: {commands:.0} commands (64-byte values, batches of {batch}) committed and applied on all {n} nodes \
         in {cpu:.2} CPU-s: {:.0} commands/CPU-s ({:.0} applies/CPU-s)",
        commands / cpu,
        applied / cpu
    );
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn election(min_ms: u64, max_ms: u64, pre_vote: bool, policy: ElectionTimeoutPolicy, trials: u64) {
    let mut samples = Vec::new();
    let mut split_votes = 0u64;
    for trial in 0..trials {
        let mut cluster = Cluster::new(
            5,
            |id| {
                let mut cfg = Config::new(id);
                cfg.election_timeout_min_ms = min_ms;
                cfg.election_timeout_max_ms = max_ms;
                cfg.heartbeat_interval_ms = 50;
                cfg.pre_vote = pre_vote;
                cfg.election_timeout_policy = policy;
                cfg.rng_seed = trial * 100 + id.0;
                cfg
            },
            // Broadcast time ≈ 15 ms as in the paper: one-way delays of 5–10 ms, so a round trip is 10–20 ms.
            (5, 10),
            trial,
        );
        cluster.run_until(5_000, 1, |c| c.leader().is_some());
        let Some(old) = cluster.leader() else {
            continue;
        };
        // Let the cluster settle, then crash the leader at a random moment relative to its heartbeats.
        let settle = cluster.now + 500 + cluster.rng.gen_range(0..50);
        cluster.run_until(settle, 1, |_| false);
        let old_term = cluster.nodes[old].as_ref().expect("up").term();
        cluster.nodes[old] = None;
        let crashed_at = cluster.now;
        let mut terms_started = 0;
        cluster.run_until(crashed_at + 10_000, 1, |c| {
            terms_started = c
                .nodes
                .iter()
                .flatten()
                .map(|n| n.term().0)
                .max()
                .unwrap_or(0)
                - old_term.0;
            c.leader().is_some()
        });
        if cluster.leader().is_some() {
            samples.push(cluster.now - crashed_at);
            if terms_started > 1 {
                split_votes += 1;
            }
        }
    }
    samples.sort_unstable();
    println!(
        "election {min_ms}-{max_ms} ms, pre-vote {}, {policy:?}: {} trials, new leader after p50 {} / p90 {} / p99 {} / max {} ms; \
         {split_votes} needed more than one term",
        if pre_vote { "on " } else { "off" },
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0),
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run a tiny version then.
    let full = std::env::args().any(|a| a == "--bench");
    let trials = std::env::var("RAFT_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1000 } else { 5 });
    if full {
        throughput(3);
        throughput(5);
    }
    for (min, max) in [
        (150, 151),
        (150, 155),
        (150, 175),
        (150, 200),
        (150, 300),
        (300, 600),
    ] {
        for pre_vote in [true, false] {
            election(min, max, pre_vote, ElectionTimeoutPolicy::Random, trials);
        }
    }
    for (min, max) in [(150, 300), (300, 600)] {
        election(min, max, true, ElectionTimeoutPolicy::Ranked, trials);
    }
}
