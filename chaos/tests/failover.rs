//! The failover matrix (issue 13): every `configs/failover-*.toml` plan (5: replace, see also membership.rs)
//! passes against raft-node, and fails
//! against a build with the deliberate bug it is meant to catch (`--bug early-ack` for the minority leader,
//! `--bug no-check-quorum` for the lone node and the minority leader), on the expectation that names it.
//!
//! Each run takes ~15 s. Seeds per plan: `CHAOS_FAILOVER_SEEDS` (default 1). Runs are serialised: on two cores,
//! concurrent clusters would make elections the load's doing rather than the plan's.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn seeds() -> u64 {
    std::env::var("CHAOS_FAILOVER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Runs `plan` with `seed` (and a planted bug) and returns the exit code, report.json and the nodes' logs.
fn run(plan: &str, seed: u64, bug: Option<&str>) -> (i32, serde_json::Value, String) {
    common::node_binary();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chaos"));
    cmd.arg("run")
        .arg(repo().join("configs").join(format!("{plan}.toml")))
        .args(["--quiet", "--seed", &seed.to_string(), "--out"])
        .arg(out.path());
    if let Some(bug) = bug {
        cmd.args(["--node-arg=--bug", &format!("--node-arg={bug}")]);
    }
    let output = cmd.output().expect("run chaos");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let folder = std::fs::read_dir(out.path())
        .expect("results folder")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("report.json").exists())
        .unwrap_or_else(|| panic!("{plan} seed {seed}: no run folder with a report\n{stderr}"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("report.json")).expect("report"))
            .expect("report.json");
    let logs: String = std::fs::read_dir(folder.join("nodes"))
        .expect("nodes folder")
        .flatten()
        .filter_map(|node| std::fs::read_to_string(node.path().join("node.log")).ok())
        .collect();
    (output.status.code().unwrap_or(-1), report, logs)
}

/// The checks of a report that did not pass, as "id: message" lines.
fn failed(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .map(|c| format!("{} ({}): {}", c["id"], c["verdict"], c["message"]))
        .collect()
}

/// Every seed of `plan` passes every check; returns the nodes' logs of each run.
fn passes(plan: &str) -> Vec<String> {
    let mut logs = Vec::new();
    for seed in 1..=seeds() {
        let (code, report, log) = run(plan, seed, None);
        assert_eq!(
            code,
            0,
            "{plan} seed {seed} did not pass:\n{}",
            failed(&report).join("\n")
        );
        // The plan's own expectations were judged, not skipped.
        let checks = report["checks"].as_array().expect("checks");
        assert!(
            checks.iter().all(|c| c["verdict"] == "pass"),
            "{plan} seed {seed}: {:?}",
            failed(&report)
        );
        logs.push(log);
    }
    logs
}

/// The plan FAILs with `bug` switched on, and `check` is among the failed checks.
fn catches(plan: &str, bug: &str, check: &str) {
    let (code, report, _) = run(plan, 1, Some(bug));
    let failed = failed(&report);
    assert_eq!(code, 1, "{plan} with --bug {bug} did not FAIL: {failed:?}");
    assert!(
        failed
            .iter()
            .any(|f| f.starts_with(&format!("\"{check}\" (\"fail\")"))),
        "{plan} with --bug {bug} failed, but not on {check}: {failed:?}"
    );
}

#[test]
fn lone_node_never_leads_and_a_leader_returns_with_the_quorum() {
    passes("failover-1-lone-node");
}

#[test]
fn steady_leader_stays_with_no_term_change() {
    passes("failover-2-steady-leader");
}

#[test]
fn leader_failure_new_leader_and_the_old_one_catches_up() {
    passes("failover-3-leader-fails");
}

#[test]
fn follower_failure_catches_up_through_a_snapshot() {
    for log in passes("failover-4-follower-fails") {
        assert!(
            log.contains("installed a snapshot from the leader"),
            "the follower caught up without a snapshot: the plan no longer tests that path"
        );
    }
}

/// Plan 5: the killed follower is replaced while down; back on its old data dir it learns it was removed and
/// exits with status 5 (never restarted), and the cluster is steady with the new membership.
#[test]
fn replaced_node_returns_learns_its_removal_and_exits() {
    for log in passes("failover-5-replace") {
        assert!(
            log.contains("says this node was removed from the cluster"),
            "the old node never came back to learn its removal: the plan no longer tests that path"
        );
    }
}

#[test]
fn minority_leader_commits_nothing_and_steps_down() {
    passes("failover-6-minority-leader");
}

#[test]
fn a_lone_leader_that_never_steps_down_is_caught() {
    catches(
        "failover-1-lone-node",
        "no-check-quorum",
        "expect.no_leader_without_quorum",
    );
}

#[test]
fn a_minority_leader_that_acknowledges_early_is_caught() {
    catches("failover-6-minority-leader", "early-ack", "linearizability");
}

#[test]
fn a_minority_leader_that_never_steps_down_is_caught() {
    catches(
        "failover-6-minority-leader",
        "no-check-quorum",
        "expect.no_leader_without_quorum",
    );
}
