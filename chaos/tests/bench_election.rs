//! `chaos bench election` end to end on real processes: the bench finds every new leader from the nodes' own
//! log lines, counts a quiet rejoin as quiet and a disruptive one (etcd without pre-vote, its old leader cut
//! off long enough to raise its term) as disruptive, and counts a split vote forced by a one-way partition among
//! etcd survivors without pre-vote. Isolation uses kernel rules: root and nft are needed (the
//! tests skip with a reason otherwise, except in CI). Trials per test: env BENCH_TEST_TRIALS (default 2).

mod common;
use common::{node_binary, require, root};
use std::process::Command;

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn trials() -> String {
    std::env::var("BENCH_TEST_TRIALS").unwrap_or_else(|_| "2".into())
}

fn nft() -> Result<(), String> {
    root()?;
    chaos::faults::network::nftables::available()
}

fn bench(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(CHAOS)
        .args([
            "bench",
            "election",
            "--json",
            "--heartbeat-interval",
            "50ms",
        ])
        .args([
            "--election-timeout-min",
            "300ms",
            "--election-timeout-max",
            "600ms",
        ])
        .args(["--trials", &trials(), "--seed", "7", "--out"])
        .arg(dir)
        .args(args)
        .output()
        .expect("run chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chaos bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn rows(json: &serde_json::Value) -> &Vec<serde_json::Value> {
    json["rows"].as_array().expect("rows")
}

#[test]
fn raft_node_failovers_are_timed_from_the_logs_and_rejoins_are_quiet() {
    if !require("bench raft-node isolate", nft()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = node_binary();
    let json = bench(
        dir.path(),
        &[
            "--fault",
            "kill,isolate,transfer",
            "--min-outage",
            "1500ms",
            "--binary",
            binary.to_str().unwrap(),
        ],
    );
    let n: usize = trials().parse().unwrap();
    for row in rows(&json) {
        let fault = row["fault"].as_str().unwrap();
        assert_eq!(
            row["no_leader"], 0,
            "{fault}: every trial found a new leader"
        );
        assert_eq!(
            row["disruptive_rejoins"], 0,
            "{fault}: pre-vote keeps rejoins quiet"
        );
        let trials = row["trials"].as_array().unwrap();
        assert_eq!(trials.len(), n);
        for t in trials {
            let leader_ms = t["leader_ms"].as_f64().unwrap();
            let write_ms = t["write_ms"].as_f64().unwrap();
            assert!(leader_ms > 0.0 && write_ms > 0.0, "{fault}: {t}");
            assert_ne!(t["new_leader"], t["old_leader"], "{fault}: {t}");
            assert!(t["terms_used"].as_u64().unwrap() >= 1, "{fault}: {t}");
            if fault != "transfer" {
                // A crash is noticed only by a timeout of at least the minimum, less one heartbeat phase.
                assert!(leader_ms > 250.0, "{fault}: {t}");
            }
        }
    }
    assert_eq!(rows(&json).len(), 3);
    assert!(std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .any(|e| e.path().join("index.html").exists()));
}

fn etcd() -> Result<(), String> {
    chaos::targets::etcd::find_binary()
        .map(|_| ())
        .ok_or_else(|| "etcd is not installed (apt-get install etcd-server)".to_string())
}

#[test]
fn an_etcd_leader_without_pre_vote_disrupts_when_it_returns() {
    if !require("bench etcd disruptive rejoin", etcd().and_then(|()| nft())) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Cut off for 2 s the old leader steps down and campaigns at least twice (300–600 ms timeouts), so its term
    // passes the new leader's; without pre-vote its return forces another election every time.
    let json = bench(
        dir.path(),
        &[
            "--target",
            "etcd",
            "--fault",
            "isolate",
            "--min-outage",
            "2s",
            "--hold",
            "1500ms",
            "--node-arg=--pre-vote=false",
        ],
    );
    let row = &rows(&json)[0];
    let n: u64 = trials().parse().unwrap();
    assert_eq!(row["no_leader"], 0);
    assert_eq!(row["disruptive_rejoins"].as_u64(), Some(n), "{row}");
}

#[test]
fn a_one_way_partition_among_etcd_survivors_forces_a_split_vote_and_the_bench_counts_it() {
    if !require("bench etcd split vote", etcd().and_then(|()| nft())) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The leader is isolated and, for 1.5 s, every survivor's packets to higher-numbered survivors are dropped:
    // vote requests reach only lower-numbered nodes, whose answers are dropped, so no survivor gets a vote. Each
    // times out at least twice (300–600 ms) and, without pre-vote, stands in a new term every time; whoever
    // wins after the heal must beat a survivor that voted for itself, so the winning term is at least two
    // above the old one in every trial.
    let json = bench(
        dir.path(),
        &[
            "--target",
            "etcd",
            "--fault",
            "isolate",
            "--split-survivors",
            "1500ms",
            "--min-outage",
            "1500ms",
            "--node-arg=--pre-vote=false",
        ],
    );
    let row = &rows(&json)[0];
    let n: usize = trials().parse().unwrap();
    assert_eq!(row["no_leader"], 0, "{row}");
    assert_eq!(row["split_votes"].as_u64(), Some(n as u64), "{row}");
    let trials = row["trials"].as_array().unwrap();
    assert_eq!(trials.len(), n);
    for t in trials {
        assert!(t["terms_used"].as_u64().unwrap() >= 2, "{t}");
        // No leader can exist before the survivors hear each other again.
        assert!(t["leader_ms"].as_f64().unwrap() >= 1500.0, "{t}");
    }
}
