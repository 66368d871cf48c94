//! The failover matrix (issue 13): every `configs/failover-*.toml` plan (5: replace, see also membership.rs)
//! passes against raft-node, and fails
//! against a build with the deliberate bug it is meant to catch (`--bug early-ack` for the minority leader,
//! `--bug no-check-quorum` for the lone node and the minority leader), on the expectation that names it.
//!
//! Each run takes ~15 s. Seeds per plan: `CHAOS_FAILOVER_SEEDS` (default 1). Runs are serialised: on two cores,
//! concurrent clusters would make elections the load's doing rather than the plan's.

mod common;

fn seeds() -> u64 {
    std::env::var("CHAOS_FAILOVER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Every seed of `plan` passes every check; returns the nodes' logs of each run.
fn passes(plan: &str) -> Vec<String> {
    let mut logs = Vec::new();
    for seed in 1..=seeds() {
        let run = common::run_shipped(plan, seed, None);
        let report = &run.report;
        assert_eq!(
            run.code,
            0,
            "{plan} seed {seed} did not pass:\n{}",
            run.failed_checks().join("\n")
        );
        // The plan's own expectations were judged, not skipped.
        let checks = report["checks"].as_array().expect("checks");
        assert!(
            checks.iter().all(|c| c["verdict"] == "pass"),
            "{plan} seed {seed}: {:?}",
            run.failed_checks()
        );
        logs.push(run.node_logs());
    }
    logs
}

/// The plan FAILs with `bug` switched on, and `check` is among the failed checks.
fn catches(plan: &str, bug: &str, check: &str) {
    let run = common::run_shipped(plan, 1, Some(bug));
    let failed = run.failed_checks();
    assert_eq!(
        run.code, 1,
        "{plan} with --bug {bug} did not FAIL: {failed:?}"
    );
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
