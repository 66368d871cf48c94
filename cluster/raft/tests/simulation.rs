//! The deterministic simulation as tests: many seeds must be safe and live; seeds that once found bugs stay
//! pinned; and each deliberately broken variant of the core must be caught (a checker that cannot fail proves
//! nothing).
//!
//! `RAFT_SIM_SEEDS` sets how many seeds run (default 1000); a soak is `RAFT_SIM_SEEDS=100000 cargo test -p raft
//! --release --test simulation` or, faster to read, `cargo run --release -p raft --bin raft-sim -- --seeds 100000`.

use raft::sim::{run, SimOptions};
use raft::Mutations;

fn seed_count() -> u64 {
    std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[test]
fn random_seeds_are_safe_and_live() {
    let count = seed_count();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (0..count)
                        .filter(|seed| seed % threads == t)
                        .find_map(|seed| run(&SimOptions::new(seed)).err())
                        .map(|failure| failure.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("simulation thread"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Seeds that found real bugs while the core was written. Each comment says what the bug was.
#[test]
fn regression_seeds() {
    // 274: clients outpaced replication with one entry per message and one in flight; the leader's backlog grew
    //      without bound and liveness failed. Fixed by refusing proposals past max_uncommitted_entries.
    // 3815: a follower installing a snapshot whose last entry it already held dropped its log suffix, including
    //       an entry it had acknowledged; the leader had counted that acknowledgement to commit it.
    for seed in [274, 3815] {
        if let Err(failure) = run(&SimOptions::new(seed)) {
            panic!("{failure}");
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let a = run(&SimOptions::new(42)).expect("seed 42 passes");
    let b = run(&SimOptions::new(42)).expect("seed 42 passes");
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    let c = run(&SimOptions::new(43)).expect("seed 43 passes");
    assert_ne!(
        format!("{a:?}"),
        format!("{c:?}"),
        "different seeds explore different runs"
    );
}

/// Runs seeds 0.. with `mutations` until one fails, and returns that failure's description.
fn first_failure(mutations: Mutations, max_seeds: u64) -> String {
    for seed in 0..max_seeds {
        let mut opts = SimOptions::new(seed);
        opts.mutations = mutations;
        if let Err(failure) = run(&opts) {
            return failure.to_string();
        }
    }
    panic!("{mutations:?} survived {max_seeds} seeds: the simulation cannot see this bug");
}

#[test]
fn catches_counting_replicas_of_previous_term_entries() {
    let failure = first_failure(
        Mutations {
            commit_previous_term_by_count: true,
            ..Mutations::default()
        },
        3000,
    );
    assert!(
        failure.contains("leader completeness")
            || failure.contains("committed entries are never lost")
            || failure.contains("state machine safety"),
        "{failure}"
    );
}

#[test]
fn catches_forgetting_the_vote_on_restart() {
    let failure = first_failure(
        Mutations {
            forget_vote_on_restart: true,
            ..Mutations::default()
        },
        3000,
    );
    assert!(
        failure.contains("election safety") || failure.contains("leader completeness"),
        "{failure}"
    );
}

#[test]
fn catches_a_follower_that_keeps_a_conflicting_suffix() {
    let failure = first_failure(
        Mutations {
            keep_conflicting_suffix: true,
            ..Mutations::default()
        },
        3000,
    );
    assert!(
        failure.contains("log matching") || failure.contains("state machine safety"),
        "{failure}"
    );
}

#[test]
fn catches_a_leader_that_reads_without_confirming_leadership() {
    let failure = first_failure(
        Mutations {
            unconfirmed_leader_reads: true,
            ..Mutations::default()
        },
        3000,
    );
    assert!(failure.contains("linearizable reads"), "{failure}");
}

#[test]
fn catches_nodes_that_read_local_state() {
    let failure = first_failure(
        Mutations {
            stale_reads: true,
            ..Mutations::default()
        },
        3000,
    );
    assert!(failure.contains("linearizable reads"), "{failure}");
}

#[test]
fn catches_votes_without_the_election_restriction() {
    let failure = first_failure(
        Mutations {
            no_election_restriction: true,
            ..Mutations::default()
        },
        3000,
    );
    assert!(
        failure.contains("leader completeness")
            || failure.contains("state machine safety")
            || failure.contains("committed entries are never lost"),
        "{failure}"
    );
}

/// A new leader that changes the membership before committing an entry of its term is rarer to catch: the
/// seeds where new leaders are often asked for a change at once (about a third) must also have an earlier
/// leader's configuration still uncommitted. Seeds 0..20000 caught it at 3537 and 9345 (election safety, two
/// leaders in one term); since ranked followers jitter by gap/8 and refused pre-votes retry early, only 9345 of
/// 0..20000 does. This range keeps the test CI-sized.
#[test]
fn catches_a_membership_change_before_the_leader_committed_in_its_term() {
    let mutations = Mutations {
        config_before_commit: true,
        ..Mutations::default()
    };
    let failure = (9250..9450)
        .find_map(|seed| {
            let mut opts = SimOptions::new(seed);
            opts.mutations = mutations;
            run(&opts).err()
        })
        .unwrap_or_else(|| panic!("{mutations:?} survived seeds 9250..9450"))
        .to_string();
    assert!(
        failure.contains("election safety") || failure.contains("state machine safety"),
        "{failure}"
    );
}

#[test]
fn a_failure_names_the_seed_and_the_replay_command() {
    let mut opts = SimOptions::new(0);
    opts.mutations.stale_reads = true;
    let failure = run(&opts)
        .expect_err("stale reads are caught at seed 0")
        .to_string();
    assert!(
        failure.starts_with("seed 0: linearizable reads violated"),
        "{failure}"
    );
    assert!(
        failure.contains("replay: cargo run --release -p raft --bin raft-sim -- --seed 0 --mutation stale-read --trace"),
        "{failure}"
    );
}
