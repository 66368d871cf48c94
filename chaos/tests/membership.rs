//! Membership faults (issue 13) end to end against raft-node: the churn, replace and power-cut plans pass (linearizable
//! across every change, final membership as intended, every removed node exited or was wiped, logs agree). The
//! churn plan does not catch the planted bug `config-before-commit` (0 of 3 seeds; see the README's detection
//! table for why), so there is no test claiming it does.
//!
//! The power-cut plan adds disk faults, which reach the nodes that join as well.
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
