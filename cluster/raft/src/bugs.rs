//! The one catalogue of deliberate bugs: their names (as `raft-node --bug NAME`, `raft-sim --mutation NAME` and
//! the `mutation=NAME` option of scripts spell them), where each lives, and what it breaks.
//!
//! The bugs exist to prove that the deterministic simulation and the chaos tool catch real ones: each is a small,
//! realistic change at the place where such a bug would live. All are off by default; production never turns
//! them on. The core's bugs are switched through [`Mutations`](crate::Mutations); the others live in raft-node's
//! storage bridge, server or state machine, which read the same [`Bug`] values.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A deliberate bug.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Any node answers reads from its local state, without confirming leadership (ReadIndex skipped).
    StaleRead,
    /// A leader answers reads at its commit index without confirming it is still the leader.
    UnconfirmedLeaderRead,
    /// Lease reads ignore the clock-drift bound: the lease lasts the full minimum election timeout.
    LeaseNoDrift,
    /// The vote is not restored on restart (as if the hard state's vote were never persisted).
    ForgetVote,
    /// The write-ahead log is never fsynced, yet votes and acknowledgements are sent as if it were.
    NoFsync,
    /// A leader counts replicas of entries from earlier terms to commit them (Figure 8, §5.4.2).
    CommitOldTerm,
    /// A follower overwrites the entries it is sent but keeps a conflicting suffix after them (§5.3).
    NoTruncate,
    /// The leader acknowledges a write once it is in its own log, before a majority has it (not committed).
    EarlyAck,
    /// The state machine ignores client sessions: a retried write is applied again.
    RetryDuplicates,
    /// Votes are granted without checking that the candidate's log is at least as up to date (§5.4.1).
    NoElectionRestriction,
    /// A compare-and-set is checked against the leader's applied state when proposed, then written as a plain
    /// put: two concurrent cas on one key can both succeed.
    NonAtomicCas,
    /// A new leader changes the membership before it has committed an entry of its own term.
    ConfigBeforeCommit,
    /// A leader that has not heard from a majority for an election timeout carries on leading (check-quorum's
    /// step-down is skipped): a lone or cut-off leader keeps claiming leadership.
    NoCheckQuorum,
}

/// Where a bug lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BugLayer {
    /// The Raft core (this crate): the deterministic simulation must catch it.
    Core,
    /// raft-node's durable storage.
    Storage,
    /// raft-node's server (request handling).
    Server,
    /// raft-node's key/value state machine.
    StateMachine,
}

/// One row of the catalogue.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BugInfo {
    /// The bug.
    pub bug: Bug,
    /// Its name on every command line.
    pub name: &'static str,
    /// Where it lives.
    pub layer: BugLayer,
    /// What it does, in one sentence.
    pub summary: &'static str,
}

/// Every bug, in a stable order.
pub const CATALOGUE: &[BugInfo] = &[
    row(
        Bug::StaleRead,
        "stale-read",
        BugLayer::Core,
        "any node answers reads from its own state",
    ),
    row(
        Bug::UnconfirmedLeaderRead,
        "unconfirmed-leader-read",
        BugLayer::Core,
        "a leader reads without confirming its leadership",
    ),
    row(
        Bug::LeaseNoDrift,
        "lease-no-drift",
        BugLayer::Core,
        "lease reads ignore the clock-drift bound",
    ),
    row(
        Bug::ForgetVote,
        "forget-vote",
        BugLayer::Core,
        "the vote is forgotten on restart",
    ),
    row(
        Bug::NoFsync,
        "no-fsync",
        BugLayer::Storage,
        "the WAL is never fsynced, yet acknowledged",
    ),
    row(
        Bug::CommitOldTerm,
        "commit-old-term",
        BugLayer::Core,
        "old-term entries are committed by counting replicas",
    ),
    row(
        Bug::NoTruncate,
        "no-truncate",
        BugLayer::Core,
        "a follower keeps a conflicting suffix",
    ),
    row(
        Bug::EarlyAck,
        "early-ack",
        BugLayer::Server,
        "writes are acknowledged before they commit",
    ),
    row(
        Bug::RetryDuplicates,
        "retry-duplicates",
        BugLayer::StateMachine,
        "a retried write is applied twice",
    ),
    row(
        Bug::NoElectionRestriction,
        "no-election-restriction",
        BugLayer::Core,
        "votes ignore whether the candidate's log is up to date",
    ),
    row(
        Bug::NonAtomicCas,
        "non-atomic-cas",
        BugLayer::Server,
        "cas is checked at propose time, applied as a put",
    ),
    row(
        Bug::ConfigBeforeCommit,
        "config-before-commit",
        BugLayer::Core,
        "a new leader changes membership before committing in its term",
    ),
    row(
        Bug::NoCheckQuorum,
        "no-check-quorum",
        BugLayer::Core,
        "a leader without a quorum never steps down",
    ),
];

const fn row(bug: Bug, name: &'static str, layer: BugLayer, summary: &'static str) -> BugInfo {
    BugInfo {
        bug,
        name,
        layer,
        summary,
    }
}

/// A name that is not in the catalogue.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("unknown bug {name:?} (known: {})", Bug::names().join(", "))]
pub struct UnknownBug {
    /// The name given.
    pub name: String,
}

impl Bug {
    /// The catalogue row of this bug.
    pub fn info(self) -> &'static BugInfo {
        CATALOGUE
            .iter()
            .find(|row| row.bug == self)
            .expect("every bug has a catalogue row")
    }

    /// The name on every command line.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Where it lives.
    pub fn layer(self) -> BugLayer {
        self.info().layer
    }

    /// Parses a name from the catalogue.
    pub fn parse(name: &str) -> Result<Bug, UnknownBug> {
        CATALOGUE
            .iter()
            .find(|row| row.name == name)
            .map(|row| row.bug)
            .ok_or_else(|| UnknownBug {
                name: name.to_string(),
            })
    }

    /// Every name, in catalogue order.
    pub fn names() -> Vec<&'static str> {
        CATALOGUE.iter().map(|row| row.name).collect()
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Bug {
    type Err = UnknownBug;

    fn from_str(s: &str) -> Result<Bug, UnknownBug> {
        Bug::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_match_serde() {
        for row in CATALOGUE {
            assert_eq!(Bug::parse(row.name), Ok(row.bug));
            assert_eq!(row.bug.name(), row.name);
            let json = postcard::to_stdvec(&row.bug).unwrap();
            assert_eq!(postcard::from_bytes::<Bug>(&json).unwrap(), row.bug);
        }
        let err = Bug::parse("stale-reads").unwrap_err().to_string();
        assert!(
            err.contains("unknown bug \"stale-reads\"") && err.contains("stale-read,"),
            "{err}"
        );
        let names = Bug::names();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "names are unique");
    }
}
