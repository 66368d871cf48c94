//! Membership faults (issue 13) end to end against raft-node: the churn and replace plans pass (linearizable
//! across every change, final membership as intended, every removed node exited or was wiped, logs agree). The
//! churn plan does not catch the planted bug `config-before-commit` (0 of 3 seeds; see the README's detection
//! table for why), so there is no test claiming it does.
//!
//! Each run takes ~55 s. Seeds per plan: `CHAOS_MEMBERSHIP_SEEDS` (default 1). The churn plan uses kernel
//! rules (nftables), so its tests need root and nft: they skip with a reason otherwise, but never under CI=true.

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
/// holds the intended membership after each change.
fn passes(plan: &str) {
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
    }
}

#[test]
fn replace_plan_passes() {
    passes("membership-replace");
}

#[test]
fn churn_plan_passes() {
    if common::require("churn_plan_passes", nftables()) {
        passes("membership-churn");
    }
}
