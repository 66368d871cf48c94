//! Membership faults (issue 13) end to end against raft-node: the churn, replace and power-cut plans pass (linearizable
//! across every change, final membership as intended, every removed node exited or was wiped, logs agree). The
//! churn plan does not catch the planted bug `config-before-commit` (0 of 3 seeds; see the README's detection
//! table for why), so there is no test claiming it does.
//!
//! The power-cut plan adds disk faults, which reach the nodes that join as well; a short plan checks the same
//! for clock faults.
//!
//! Each run takes ~55 s. Seeds per plan: `CHAOS_MEMBERSHIP_SEEDS` (default 1). The churn plan uses kernel
//! rules (nftables) and the power-cut plan the FUSE disk layer, so those tests need root and nft or fuse3: they
//! skip with a reason otherwise, but never under CI=true.

mod common;

use std::process::Command;

fn seeds() -> u64 {
    std::env::var("CHAOS_MEMBERSHIP_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Root and nft, for the churn plan's kernel rules.
fn nftables() -> Result<(), String> {
    common::root()?;
    Command::new("nft")
        .arg("--version")
        .output()
        .map(|_| ())
        .map_err(|_| "nft is not installed (apt-get install nftables)".into())
}

/// Every seed passes every check, the membership checks among them (judged, not skipped); the event log
/// holds the intended membership after each change. `also` checks more of each run.
fn passes(plan: &str, also: impl Fn(&common::ShippedRun)) {
    for seed in 1..=seeds() {
        let run = common::run_shipped(plan, seed, None);
        let (report, events) = (&run.report, run.file("events.jsonl"));
        assert_eq!(
            run.code,
            0,
            "{plan} seed {seed}:\n{}",
            run.failed_checks().join("\n")
        );
        let checks = report["checks"].as_array().expect("checks");
        for id in ["expect.membership_final", "expect.removed_nodes_exit"] {
            assert!(
                checks
                    .iter()
                    .any(|c| c["id"] == id && c["verdict"] == "pass"),
                "{plan} seed {seed}: {id} not passed: {:?}",
                run.failed_checks()
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
        also(&run);
    }
}

#[test]
fn replace_plan_passes() {
    passes("membership-replace", |_| {});
}

/// Nodes that join get the disk layer too: the newcomer loses power soon after it joined (its unsynced writes
/// dropped, the process killed and restarted with the command it was first started with) and must come back
/// and catch up. Before raft-node recorded the join answer in its data dir, the restarted newcomer knew no
/// peer, refused every member's link, and the next removal could not commit (a 4-member cluster with one
/// node down and this one deaf).
#[test]
fn power_cut_plan_passes_and_reaches_the_nodes_that_joined() {
    if !common::ready_with(
        "power_cut_plan_passes_and_reaches_the_nodes_that_joined",
        common::fuse(),
    ) {
        return;
    }
    passes("membership-power-cut", |run| {
        let events = run.file("events.jsonl");
        let newcomer_cut = events.lines().any(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            e["event"] == "start"
                && e["kind"] == "lose-unsynced"
                && e["nodes"] == serde_json::json!([4])
        });
        assert!(newcomer_cut, "the newcomer n4 never lost power:\n{events}");
        let n4 = std::fs::read_to_string(run.folder.join("nodes/n4/node.log")).unwrap();
        assert!(n4.contains("restarting from disk"), "{n4}");
    });
}

#[test]
fn churn_plan_passes() {
    if common::require("churn_plan_passes", nftables()) {
        passes("membership-churn", |_| {});
    }
}

/// Nodes that join run under the clock shim too: a clock fault on every member, started after a node joined,
/// steps the newcomer's clock as well (its own status shows it), and the run passes.
#[test]
fn clock_faults_reach_the_nodes_that_joined() {
    let body = format!(
        r#"name = "join-clock"
seed = 3
duration = "7s"
warmup = "1s"
recovery = "2s"

[cluster]
binary = "{}"
nodes = 3

[workload]
clients = 3
rate = 100
keys = 3

[[faults]]
kind = "add"
at = ["500ms"]

[[faults]]
kind = "clock-bump"
offset = "5s"
target = "all"
at = ["3s"]
duration = "3s"
"#,
        common::node_binary().display()
    );
    let _serial = common::ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (output, summary) = common::run_plan(dir.path(), &body);
    assert_eq!(output.status.code(), Some(0), "{summary:#}");
    let folder = dir.path().join(summary["run_dir"].as_str().unwrap());
    let lines = |file: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(folder.join(file))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let bump = lines("events.jsonl")
        .into_iter()
        .find(|e| e["event"] == "start" && e["kind"] == "clock-bump")
        .expect("the bump started");
    assert_eq!(bump["nodes"], serde_json::json!([1, 2, 3, 4]), "{bump}");
    let newcomer_offsets: Vec<f64> = lines("status.jsonl")
        .iter()
        .filter(|s| s["node"] == 4)
        .filter_map(|s| s["clock_offset_ms"].as_f64())
        .collect();
    assert!(
        newcomer_offsets
            .iter()
            .any(|&ms| (4_500.0..5_500.0).contains(&ms)),
        "n4's clock never showed the 5 s step: {newcomer_offsets:?}"
    );
}
