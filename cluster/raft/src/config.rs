//! Tunables of one Raft node, validated before use.

use crate::bugs::Bug;
use crate::types::NodeId;
use serde::{Deserialize, Serialize};

/// How the leader serves linearizable reads without writing to the log.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ReadMode {
    /// ReadIndex (§6.4 of the dissertation): record the commit index, confirm leadership with a round of
    /// heartbeats acknowledged by a majority, then serve once that index is applied. Safe under any clock.
    ReadIndex,
    /// Leader lease (§6.4.1): serve at once while a majority acknowledged a heartbeat recently enough.
    ///
    /// Safety argument: a voter that heard from the leader at time `t` refuses to vote for anyone else until
    /// `t + election_timeout_min` on its own clock (leader stickiness). The leader counts its lease from the
    /// moment it *sent* the heartbeat round a majority acknowledged, which is before any of them heard it, and
    /// ends it after `election_timeout_min * (1 - drift_bound)`, so the lease is safe as long as no clock in the
    /// cluster runs faster than the leader's by more than the drift bound. Clock *steps* of the monotonic clock
    /// (which real machines do not have) or larger drift break it; that is what the chaos tool's clock faults
    /// are for.
    Lease {
        /// The largest relative clock-rate difference tolerated, in parts per million (e.g. 100_000 = 10%).
        drift_bound_ppm: u32,
    },
}

/// How a follower draws its election timeout.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum ElectionTimeoutPolicy {
    /// Uniform in `[election_timeout_min_ms, election_timeout_max_ms)` (§5.2).
    #[default]
    Random,
    /// A follower that knows the leader ranks itself by its place after the leader on the ring of voters and
    /// waits `min + rank × gap + uniform[0, gap / 8)`, `gap = (max − min) / (voters − 1)`. When the leader dies,
    /// the first follower after it times out first, early in the range, and alone (the next one waits at least
    /// 7/8 of a gap longer), so a new leader comes sooner and split votes are rare. A node that knows no leader
    /// (after a failed election, or at start) draws uniformly, which keeps Raft's randomized liveness argument.
    /// Safety does not depend on timeouts at all.
    Ranked,
}

/// Deliberately broken behaviours of the core, for proving that the simulation and the chaos tool catch real
/// bugs. All are off by default; production code never turns them on. Each field is one core bug of the
/// catalogue ([`crate::bugs`]), switched on with [`Mutations::enable`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Mutations {
    /// [`Bug::CommitOldTerm`]: count replicas for entries of earlier terms when advancing the commit index.
    pub commit_previous_term_by_count: bool,
    /// [`Bug::ForgetVote`]: forget the persisted vote on restart (allows two votes in one term).
    pub forget_vote_on_restart: bool,
    /// [`Bug::NoTruncate`]: on a conflicting Append, overwrite the sent entries but keep the conflicting suffix.
    pub keep_conflicting_suffix: bool,
    /// [`Bug::StaleRead`]: serve reads from local state on any node without confirming leadership.
    pub stale_reads: bool,
    /// [`Bug::UnconfirmedLeaderRead`]: a leader answers reads at its commit index without confirming it is
    /// still the leader.
    pub unconfirmed_leader_reads: bool,
    /// [`Bug::NoElectionRestriction`]: grant votes without checking that the candidate's log is up to date.
    pub no_election_restriction: bool,
    /// [`Bug::LeaseNoDrift`]: a lease lasts the full minimum election timeout, ignoring the drift bound.
    pub lease_no_drift: bool,
    /// [`Bug::ConfigBeforeCommit`]: a leader accepts a membership change before committing an entry of its term.
    pub config_before_commit: bool,
    /// [`Bug::NoCheckQuorum`]: a leader that lost contact with a majority does not step down.
    pub no_check_quorum_step_down: bool,
}

impl Mutations {
    /// Whether any mutation is switched on.
    pub fn any(&self) -> bool {
        !self.bugs().is_empty()
    }

    fn flag(&mut self, bug: Bug) -> Option<&mut bool> {
        Some(match bug {
            Bug::CommitOldTerm => &mut self.commit_previous_term_by_count,
            Bug::ForgetVote => &mut self.forget_vote_on_restart,
            Bug::NoTruncate => &mut self.keep_conflicting_suffix,
            Bug::StaleRead => &mut self.stale_reads,
            Bug::UnconfirmedLeaderRead => &mut self.unconfirmed_leader_reads,
            Bug::NoElectionRestriction => &mut self.no_election_restriction,
            Bug::LeaseNoDrift => &mut self.lease_no_drift,
            Bug::ConfigBeforeCommit => &mut self.config_before_commit,
            Bug::NoCheckQuorum => &mut self.no_check_quorum_step_down,
            Bug::NoFsync | Bug::EarlyAck | Bug::RetryDuplicates | Bug::NonAtomicCas => return None,
        })
    }

    /// Switches on `bug` if it lives in the core; returns whether it does.
    pub fn enable(&mut self, bug: Bug) -> bool {
        match self.flag(bug) {
            Some(flag) => {
                *flag = true;
                true
            }
            None => false,
        }
    }

    /// The core bugs among `bugs`, switched on (bugs of other layers are ignored).
    pub fn from_bugs(bugs: &[Bug]) -> Mutations {
        let mut m = Mutations::default();
        for &bug in bugs {
            m.enable(bug);
        }
        m
    }

    /// The bugs switched on, in catalogue order.
    pub fn bugs(&self) -> Vec<Bug> {
        let mut copy = *self;
        crate::bugs::CATALOGUE
            .iter()
            .map(|row| row.bug)
            .filter(|&bug| copy.flag(bug).is_some_and(|f| *f))
            .collect()
    }
}

/// Configuration of one node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// This node's id.
    pub id: NodeId,
    /// Lower bound of the randomised election timeout, in ms.
    pub election_timeout_min_ms: u64,
    /// Upper bound (exclusive) of the randomised election timeout, in ms.
    pub election_timeout_max_ms: u64,
    /// Interval between heartbeats from the leader, in ms.
    pub heartbeat_interval_ms: u64,
    /// Ask for pre-votes before raising the term, so a server that was cut off cannot depose a healthy leader.
    pub pre_vote: bool,
    /// How followers draw their election timeout.
    pub election_timeout_policy: ElectionTimeoutPolicy,
    /// A leader that has not heard from a majority within an election timeout steps down.
    pub check_quorum: bool,
    /// How reads are confirmed.
    pub read_mode: ReadMode,
    /// At most this many entries in one Append message.
    pub max_entries_per_message: usize,
    /// At most about this many bytes of entries in one Append message (one entry is always allowed).
    pub max_bytes_per_message: usize,
    /// At most this many Append messages in flight to one follower (pipelining window).
    pub max_inflight_messages: usize,
    /// At most this many entries waiting to commit on the leader; further proposals are refused.
    pub max_uncommitted_entries: usize,
    /// At most this many reads waiting for confirmation; further reads are refused.
    pub max_pending_reads: usize,
    /// A learner is promoted only when it is at most this many entries behind the leader.
    pub promotion_lag_max_entries: u64,
    /// Seed of this node's random number generator (election timeouts). Log it to replay a run.
    pub rng_seed: u64,
    /// Deliberate bugs for mutation testing; all off in production.
    pub mutations: Mutations,
}

impl Config {
    /// Sensible defaults for a node on a LAN: 150–300 ms election timeouts and 50 ms heartbeats.
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 50,
            pre_vote: true,
            election_timeout_policy: ElectionTimeoutPolicy::Random,
            check_quorum: true,
            read_mode: ReadMode::ReadIndex,
            max_entries_per_message: 256,
            max_bytes_per_message: 1 << 20,
            max_inflight_messages: 16,
            max_uncommitted_entries: 100_000,
            max_pending_reads: 10_000,
            promotion_lag_max_entries: 100,
            rng_seed: id.0,
            mutations: Mutations::default(),
        }
    }

    /// Checks the values against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.0 == 0 {
            return Err(ConfigError::Invalid("id must not be 0"));
        }
        if self.heartbeat_interval_ms == 0 {
            return Err(ConfigError::Invalid("heartbeat_interval_ms must be > 0"));
        }
        if self.election_timeout_min_ms <= self.heartbeat_interval_ms {
            return Err(ConfigError::Invalid(
                "election_timeout_min_ms must be greater than heartbeat_interval_ms",
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(ConfigError::Invalid(
                "election_timeout_max_ms must be greater than election_timeout_min_ms",
            ));
        }
        if self.max_entries_per_message == 0 || self.max_inflight_messages == 0 {
            return Err(ConfigError::Invalid(
                "max_entries_per_message and max_inflight_messages must be > 0",
            ));
        }
        if let ReadMode::Lease { drift_bound_ppm } = self.read_mode {
            if drift_bound_ppm >= 1_000_000 {
                return Err(ConfigError::Invalid("drift_bound_ppm must be < 1_000_000"));
            }
        }
        Ok(())
    }
}

/// A configuration that cannot work.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ConfigError {
    /// The message says which field and what was expected.
    #[error("invalid raft configuration: {0}")]
    Invalid(&'static str),
}
