//! [`RawNode`]: one Raft server as a pure state machine.
//!
//! # The contract
//!
//! The caller owns all IO. It feeds the node events and, after each batch of events, drains one [`Ready`]:
//!
//! ```text
//! loop {
//!     // 1. Events, in any order and number:
//!     node.step(message, now);          // a message from a peer
//!     node.tick(now);                   // time passed (call at least every heartbeat interval / 2)
//!     node.propose(command, now);       // a client command (leader only)
//!     node.read_index(read_id, now);    // a linearizable read (leader only)
//!
//!     // 2. Output, only when node.has_ready():
//!     let ready = node.ready();
//!     send(ready.messages);                       // may go out at once, before or during persisting
//!     persist(ready.snapshot, ready.entries, ready.hard_state);   // durable (fsync) before step 3
//!     send(ready.persisted_messages);             // only now: they promise what was just persisted
//!     apply(ready.committed_entries);             // in index order; then serve ready.read_states
//!     node.advance(ready);                        // before any other call on the node
//! }
//! ```
//!
//! `persist` means: if `snapshot` is set, replace the whole stored log with it (and restore the state machine
//! from it); then store `entries`, first deleting any stored entry whose index is at or after the first of
//! them; then store `hard_state` if set. Votes and terms are durable before the vote leaves (persisted
//! messages), and a follower acknowledges only entries it has made durable, which is what Raft's safety
//! argument assumes of "stable storage" (Figure 2).

use crate::config::{Config, ConfigError, ElectionTimeoutPolicy, ReadMode};
use crate::log::RaftLog;
use crate::membership::{ConfChange, ConfChangeError, Membership};
use crate::message::{
    AppendResult, Entry, EntryPayload, Message, MessageBody, Snapshot, SnapshotMeta,
};
use crate::progress::{Progress, ReplicationState};
use crate::types::{Instant, LogIndex, NodeId, Role, Term};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// With the ranked policy a follower's random part is `gap / RANKED_JITTER_PER_GAP`: small enough that the
/// first-ranked follower fires early in the range and well before the second (which waits a whole gap more),
/// large enough that two followers of equal rank after a membership change still spread out.
pub const RANKED_JITTER_PER_GAP: u64 = 8;

/// A refused pre-vote after a leader went quiet is retried this many times per heartbeat interval.
const PRE_VOTE_RETRIES: u64 = 10;

/// The pre-vote retry window is one heartbeat interval plus this much (heartbeats arrive a little apart).
const PRE_VOTE_RETRY_SLACK_MS: u64 = 5;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// The state that must survive a crash besides the log: the current term and the vote cast in it (Figure 2),
/// plus the commit index as a hint that lets a restarted node re-apply without waiting for the leader.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate it voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The commit index when this was written (a hint; it may be stale).
    pub commit: LogIndex,
}

/// What a restarting node recovered from its disk.
#[derive(Clone, Debug, Default)]
pub struct Persisted {
    /// The last hard state written.
    pub hard_state: HardState,
    /// The newest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The durable entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

/// A read that may now be served: once the state machine has applied `index`, its state reflects every write
/// that completed before the read was requested.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReadState {
    /// The caller's id for the read.
    pub id: u64,
    /// Serve the read once applied ≥ this index.
    pub index: LogIndex,
}

/// The output of one batch of events. See the module documentation for the order of handling.
#[derive(Debug, Default)]
#[must_use = "a Ready must be handled and then passed to advance()"]
pub struct Ready {
    /// Persist if set.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader: persist it in place of the whole log and restore the state
    /// machine from it.
    pub snapshot: Option<Snapshot>,
    /// Entries to persist, overwriting stored entries from `entries[0].index` on.
    pub entries: Vec<Entry>,
    /// Messages that may be sent at once.
    pub messages: Vec<Message>,
    /// Messages that may be sent only after this Ready's state is durable.
    pub persisted_messages: Vec<Message>,
    /// Committed entries to apply in order (after persisting).
    pub committed_entries: Vec<Entry>,
    /// Reads that may be served once their index is applied.
    pub read_states: Vec<ReadState>,
    /// Reads that were refused or abandoned (leadership lost): they were never served, so they failed.
    pub failed_reads: Vec<u64>,
}

/// Why a proposal was refused; in every case the command was not appended and will never be applied.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader accepts proposals.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// Who this node believes leads, if anyone.
        leader: Option<NodeId>,
    },
    /// The leader is handing over leadership and accepts nothing meanwhile.
    #[error("leadership transfer in progress")]
    TransferInProgress,
    /// Too many entries await commitment.
    #[error("too many uncommitted entries")]
    Overloaded,
    /// A membership change is still uncommitted, or this leader has not yet committed an entry of its term
    /// (the fix for single-server changes: a new leader must not change membership before that).
    #[error("a membership change is already in progress or the leader is not yet settled")]
    ConfChangeInProgress,
    /// The learner to promote is too far behind.
    #[error("learner {0} is not caught up")]
    LearnerBehind(NodeId),
    /// The change does not apply to the current configuration.
    #[error(transparent)]
    InvalidChange(#[from] ConfChangeError),
}

/// Why a leadership transfer was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TransferError {
    /// Only the leader can transfer leadership.
    #[error("not the leader")]
    NotLeader,
    /// The target must be another voter.
    #[error("node {0} is not another voter")]
    BadTarget(NodeId),
}

/// Why compaction was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CompactError {
    /// Only applied entries can be covered by a snapshot.
    #[error("index {index:?} is not applied yet (applied {applied:?})")]
    NotApplied {
        /// The requested index.
        index: LogIndex,
        /// The applied index.
        applied: LogIndex,
    },
}

/// A follower's replication state, as the leader sees it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The follower.
    pub id: NodeId,
    /// Highest index known replicated on it.
    pub match_index: LogIndex,
    /// Next index to send to it.
    pub next_index: LogIndex,
    /// "probe", "replicate" or "snapshot".
    pub state: String,
}

/// Everything an operator's status view shows about one node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// Its vote in that term.
    pub vote: Option<NodeId>,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit: LogIndex,
    /// Applied index.
    pub applied: LogIndex,
    /// Index of its last entry.
    pub last_index: LogIndex,
    /// Term of its last entry.
    pub last_term: Term,
    /// Index covered by its snapshot.
    pub snapshot_index: LogIndex,
    /// The configuration in force.
    pub membership: Membership,
    /// Per-follower replication (leaders only).
    pub peers: Vec<PeerStatus>,
    /// Elections this node has started since it started (pre-votes included): how often its election timer
    /// fired, which clock faults change.
    pub elections_started: u64,
}

#[derive(Debug)]
struct PendingRead {
    id: u64,
    index: LogIndex,
    round: u64,
}

#[derive(Debug)]
struct LeaderState {
    progress: BTreeMap<NodeId, Progress>,
    heartbeat_due: Instant,
    check_quorum_due: Instant,
    /// Index of this term's first entry (the no-op); reads wait for it to commit (§6.4 step 1).
    noop_index: LogIndex,
    /// The newest heartbeat round started, and when each recent round was sent (for the lease).
    read_round: u64,
    rounds_sent_at: VecDeque<(u64, Instant)>,
    /// Reads waiting for a round to be acknowledged by a majority.
    pending_reads: VecDeque<PendingRead>,
    /// A new round must start at the next flush because reads are waiting for one.
    round_wanted: bool,
    /// Start of the current lease: the send time of the newest round a majority acknowledged.
    lease_from: Option<Instant>,
    transfer: Option<(NodeId, Instant)>,
    /// New entries exist that have not been offered to followers yet.
    broadcast_wanted: bool,
}

/// One Raft server. See the module documentation for the calling contract.
#[derive(Debug)]
pub struct RawNode {
    cfg: Config,
    rng: ChaCha8Rng,
    now: Instant,

    term: Term,
    vote: Option<NodeId>,
    log: RaftLog,
    membership: Membership,
    /// Index of the entry (or snapshot) that set `membership`.
    membership_index: LogIndex,
    snapshot: Option<Snapshot>,

    role: Role,
    leader: Option<NodeId>,
    election_due: Instant,
    last_leader_contact: Instant,
    /// Until then this node refuses to help elect anyone (see `build`).
    vote_guard_until: Instant,
    /// Until then a pre-vote refused by a majority is retried soon instead of after a full random timeout: the
    /// voters' leases started from the same heartbeats as ours, so they expire moments later (see `campaign`).
    pre_vote_retry_until: Instant,
    votes: BTreeMap<NodeId, bool>,
    leader_state: Option<LeaderState>,

    messages: Vec<Message>,
    persisted_messages: Vec<Message>,
    hard_state_dirty: bool,
    snapshot_to_install: Option<Snapshot>,
    read_states: Vec<ReadState>,
    failed_reads: Vec<u64>,
    ready_outstanding: bool,
    elections_started: u64,
}

impl RawNode {
    /// A member of a brand-new cluster. Every initial member must be given the same `membership`: each writes
    /// the identical bootstrap entry (index 1, term 1) carrying it, so the logs agree from the start.
    pub fn bootstrap(
        cfg: Config,
        membership: Membership,
        now: Instant,
    ) -> Result<RawNode, ConfigError> {
        let bootstrap = Entry {
            term: Term(1),
            index: LogIndex(1),
            payload: EntryPayload::Conf(membership),
        };
        let mut node = RawNode::build(
            cfg,
            Term(1),
            None,
            RaftLog::recovered(LogIndex(0), Term(0), vec![], LogIndex(0)),
            None,
            now,
        )?;
        node.log.append_as_leader(bootstrap);
        node.log.commit_to(LogIndex(1));
        node.hard_state_dirty = true;
        node.refresh_membership();
        Ok(node)
    }

    /// A new server that will join an existing cluster: it has no log and no configuration, never campaigns,
    /// and waits for a leader to replicate to it once it has been added as a learner.
    pub fn join(cfg: Config, now: Instant) -> Result<RawNode, ConfigError> {
        RawNode::build(
            cfg,
            Term(0),
            None,
            RaftLog::recovered(LogIndex(0), Term(0), vec![], LogIndex(0)),
            None,
            now,
        )
    }

    /// A server restarting from what its disk holds.
    pub fn restart(
        cfg: Config,
        persisted: Persisted,
        now: Instant,
    ) -> Result<RawNode, ConfigError> {
        let (offset, offset_term) = persisted
            .snapshot
            .as_ref()
            .map_or((LogIndex(0), Term(0)), |s| (s.meta.index, s.meta.term));
        let log = RaftLog::recovered(
            offset,
            offset_term,
            persisted.entries,
            persisted.hard_state.commit,
        );
        let vote = if cfg.mutations.forget_vote_on_restart {
            None
        } else {
            persisted.hard_state.vote
        };
        RawNode::build(
            cfg,
            persisted.hard_state.term,
            vote,
            log,
            persisted.snapshot,
            now,
        )
    }

    fn build(
        cfg: Config,
        term: Term,
        vote: Option<NodeId>,
        log: RaftLog,
        snapshot: Option<Snapshot>,
        now: Instant,
    ) -> Result<RawNode, ConfigError> {
        cfg.validate()?;
        let rng = ChaCha8Rng::seed_from_u64(cfg.rng_seed);
        let mut node = RawNode {
            rng,
            now,
            term,
            vote,
            log,
            membership: Membership::default(),
            membership_index: LogIndex(0),
            snapshot,
            role: Role::Learner,
            leader: None,
            election_due: now,
            last_leader_contact: now,
            // A restarted voter behaves as if it had just heard from a leader: it may have acknowledged one a
            // moment before crashing, and that leader's lease counts on the acknowledgement (§6.4.1).
            vote_guard_until: now.add_ms(cfg.election_timeout_min_ms),
            pre_vote_retry_until: now,
            votes: BTreeMap::new(),
            leader_state: None,
            messages: Vec::new(),
            persisted_messages: Vec::new(),
            hard_state_dirty: false,
            snapshot_to_install: None,
            read_states: Vec::new(),
            failed_reads: Vec::new(),
            ready_outstanding: false,
            elections_started: 0,
            cfg,
        };
        node.refresh_membership();
        node.reset_election_timer();
        Ok(node)
    }

    // ----------------------------------------------------------------------------------------------------
    // Observation.

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Its current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The leader it knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The configuration in force.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The log (read-only), for status views and invariant checks.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// The latest snapshot held.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The configuration this node runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// A status view.
    pub fn status(&self) -> Status {
        let peers = self
            .leader_state
            .as_ref()
            .map(|ls| {
                ls.progress
                    .iter()
                    .map(|(&id, p)| PeerStatus {
                        id,
                        match_index: p.match_index,
                        next_index: p.next_index,
                        state: match p.state {
                            ReplicationState::Probe => "probe",
                            ReplicationState::Replicate => "replicate",
                            ReplicationState::Snapshot { .. } => "snapshot",
                        }
                        .to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Status {
            id: self.cfg.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit: self.log.commit(),
            applied: self.log.applied(),
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            snapshot_index: self.log.snapshot_index(),
            membership: self.membership.clone(),
            peers,
            elections_started: self.elections_started,
        }
    }

    /// The time at which the node next needs a tick (a caller may sleep until then).
    pub fn next_deadline(&self) -> Instant {
        match &self.leader_state {
            Some(ls) => ls.heartbeat_due.min(ls.check_quorum_due),
            None => self.election_due,
        }
    }

    // ----------------------------------------------------------------------------------------------------
    // Input.

    /// Advances the node's clock; fires election timeouts, heartbeats and check-quorum.
    pub fn tick(&mut self, now: Instant) {
        self.enter(now);
        if self.role == Role::Leader {
            self.tick_leader();
        } else if self.now >= self.election_due {
            if self.membership.is_voter(self.cfg.id) {
                self.campaign(false);
            } else {
                self.reset_election_timer();
            }
        }
    }

    /// Handles a message from a peer.
    pub fn step(&mut self, msg: Message, now: Instant) {
        self.enter(now);
        if msg.to != self.cfg.id || msg.from == self.cfg.id {
            return; // Misrouted: never act on a message meant for someone else.
        }
        if !self.handle_term(&msg) {
            return;
        }
        match msg.body {
            MessageBody::PreVote {
                last_index,
                last_term,
            } => self.handle_pre_vote(&msg, last_index, last_term),
            MessageBody::PreVoteResponse { granted } => {
                self.handle_vote_response(msg.from, msg.term, granted, true)
            }
            MessageBody::RequestVote {
                last_index,
                last_term,
                ..
            } => self.handle_request_vote(msg.from, last_index, last_term),
            MessageBody::RequestVoteResponse { granted } => {
                self.handle_vote_response(msg.from, msg.term, granted, false)
            }
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.handle_append(msg.from, prev_index, prev_term, entries, commit),
            MessageBody::AppendResponse { result } => self.handle_append_response(msg.from, result),
            MessageBody::Heartbeat { commit, read_round } => {
                self.handle_heartbeat(msg.from, commit, read_round)
            }
            MessageBody::HeartbeatResponse { read_round } => {
                self.handle_heartbeat_response(msg.from, read_round)
            }
            MessageBody::InstallSnapshot { snapshot } => {
                self.handle_install_snapshot(msg.from, snapshot)
            }
            MessageBody::TimeoutNow => {
                if self.membership.is_voter(self.cfg.id) && self.role != Role::Leader {
                    self.campaign(true);
                }
            }
        }
    }

    /// Proposes a command; returns the index and term it was appended at. It is applied if and only if the
    /// entry committed at that index has that term.
    pub fn propose(
        &mut self,
        command: Vec<u8>,
        now: Instant,
    ) -> Result<(LogIndex, Term), ProposeError> {
        self.enter(now);
        self.check_can_propose()?;
        Ok(self.append_new(EntryPayload::Command(command)))
    }

    /// Proposes a single-server membership change.
    pub fn propose_conf_change(
        &mut self,
        change: ConfChange,
        now: Instant,
    ) -> Result<(LogIndex, Term), ProposeError> {
        self.enter(now);
        self.check_can_propose()?;
        let ls = self.leader_state.as_ref().expect("leader has leader state");
        // One change at a time, and only once this leader committed an entry of its own term (its no-op): until
        // then a configuration appended by an earlier leader may still commit, and a change based on the older
        // one could give the cluster two disjoint majorities.
        let own_term_committed =
            self.log.commit() >= ls.noop_index || self.cfg.mutations.config_before_commit;
        if self.membership_index > self.log.commit() || !own_term_committed {
            return Err(ProposeError::ConfChangeInProgress);
        }
        if let ConfChange::PromoteLearner(id) = change {
            // Caught up: it holds the entry that added it (so it is really receiving the log) and is within
            // the allowed lag of the leader's last entry.
            let caught_up = ls.progress.get(&id).is_some_and(|p| {
                p.match_index >= self.membership_index
                    && p.match_index.0 + self.cfg.promotion_lag_max_entries
                        >= self.log.last_index().0
            });
            if self.membership.learners.contains(&id) && !caught_up {
                return Err(ProposeError::LearnerBehind(id));
            }
        }
        let next = self.membership.apply(&change)?;
        let at = self.append_new(EntryPayload::Conf(next));
        self.refresh_membership();
        Ok(at)
    }

    /// Asks for a linearizable read with the caller's `id`. The answer comes as a [`ReadState`] (serve once
    /// applied) or in [`Ready::failed_reads`].
    pub fn read_index(&mut self, id: u64, now: Instant) {
        self.enter(now);
        if self.cfg.mutations.stale_reads {
            // Mutation: answer from local state without confirming anything.
            self.read_states.push(ReadState {
                id,
                index: self.log.applied(),
            });
            return;
        }
        let single_voter = self.membership.voters.len() == 1;
        let lease_valid = self.lease_valid();
        let commit = self.log.commit();
        let Some(ls) = self.leader_state.as_mut() else {
            self.failed_reads.push(id);
            return;
        };
        let index = commit.max(ls.noop_index);
        if single_voter || lease_valid || self.cfg.mutations.unconfirmed_leader_reads {
            self.read_states.push(ReadState { id, index });
            return;
        }
        if ls.pending_reads.len() >= self.cfg.max_pending_reads {
            self.failed_reads.push(id);
            return;
        }
        // The read joins the next round, which starts at the next flush: many reads share one round.
        ls.pending_reads.push_back(PendingRead {
            id,
            index,
            round: ls.read_round + 1,
        });
        ls.round_wanted = true;
    }

    /// Starts handing leadership to `target` (§3.10): bring it up to date, then tell it to campaign at once.
    pub fn transfer_leadership(
        &mut self,
        target: NodeId,
        now: Instant,
    ) -> Result<(), TransferError> {
        self.enter(now);
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader);
        }
        if target == self.cfg.id || !self.membership.is_voter(target) {
            return Err(TransferError::BadTarget(target));
        }
        let deadline = self.now.add_ms(self.cfg.election_timeout_max_ms);
        let last = self.log.last_index();
        let ls = self.leader_state.as_mut().expect("leader has leader state");
        ls.transfer = Some((target, deadline));
        let caught_up = ls
            .progress
            .get(&target)
            .is_some_and(|p| p.match_index == last);
        if caught_up {
            self.send(target, MessageBody::TimeoutNow, false);
        } else {
            self.send_append(target);
        }
        Ok(())
    }

    /// Replaces applied entries up to `index` with a snapshot whose state machine data is `data`. The caller
    /// must already have made the snapshot durable; this only trims memory and keeps the snapshot to send to
    /// followers that fall behind.
    pub fn compact(
        &mut self,
        index: LogIndex,
        data: Vec<u8>,
    ) -> Result<SnapshotMeta, CompactError> {
        if index > self.log.applied() {
            return Err(CompactError::NotApplied {
                index,
                applied: self.log.applied(),
            });
        }
        if index <= self.log.snapshot_index() {
            return Ok(self
                .snapshot
                .as_ref()
                .map(|s| s.meta.clone())
                .unwrap_or_default());
        }
        let meta = SnapshotMeta {
            index,
            term: self.log.term(index).expect("applied entry is in the log"),
            membership: self.membership_at(index),
        };
        self.log.compact_to(index);
        self.snapshot = Some(Snapshot {
            meta: meta.clone(),
            data: Arc::new(data),
        });
        Ok(meta)
    }

    // ----------------------------------------------------------------------------------------------------
    // Output.

    /// Whether there is anything to handle.
    pub fn has_ready(&self) -> bool {
        let leader_work = self
            .leader_state
            .as_ref()
            .is_some_and(|ls| ls.round_wanted || ls.broadcast_wanted);
        leader_work
            || !self.messages.is_empty()
            || !self.persisted_messages.is_empty()
            || self.hard_state_dirty
            || self.snapshot_to_install.is_some()
            || !self.log.unpersisted().is_empty()
            || self.log.applied() < self.log.commit()
            || !self.read_states.is_empty()
            || !self.failed_reads.is_empty()
    }

    /// Takes the output accumulated since the last [`RawNode::advance`].
    pub fn ready(&mut self) -> Ready {
        assert!(
            !self.ready_outstanding,
            "ready() called twice without advance()"
        );
        self.flush_leader_work();
        self.ready_outstanding = true;
        let hard_state = self.hard_state_dirty.then(|| self.hard_state());
        // Everything up to the commit index will be durable before the caller applies (persist comes first).
        let committed_entries = self
            .log
            .slice(self.log.applied().next(), self.log.commit())
            .to_vec();
        Ready {
            hard_state,
            snapshot: self.snapshot_to_install.take(),
            entries: self.log.unpersisted().to_vec(),
            messages: std::mem::take(&mut self.messages),
            persisted_messages: std::mem::take(&mut self.persisted_messages),
            committed_entries,
            read_states: std::mem::take(&mut self.read_states),
            failed_reads: std::mem::take(&mut self.failed_reads),
        }
    }

    /// Records that a Ready was handled: its state is durable and its committed entries applied.
    pub fn advance(&mut self, ready: Ready) {
        assert!(self.ready_outstanding, "advance() without ready()");
        self.ready_outstanding = false;
        if ready.hard_state.is_some() {
            self.hard_state_dirty = false;
        }
        if let Some(last) = ready.entries.last() {
            self.log.persisted_to(last.index, last.term);
        }
        if let Some(last) = ready.committed_entries.last() {
            self.log.applied_to(last.index);
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// The hard state as it must be persisted now.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.commit(),
        }
    }

    // ----------------------------------------------------------------------------------------------------
    // Elections (§5.2, pre-vote §9.6, leader stickiness §4.2.3).

    fn enter(&mut self, now: Instant) {
        assert!(
            !self.ready_outstanding,
            "input given between ready() and advance()"
        );
        // The caller's clock is monotonic; tolerate a stale `now` rather than let time run backwards.
        self.now = self.now.max(now);
    }

    fn reset_election_timer(&mut self) {
        let (min, max) = (
            self.cfg.election_timeout_min_ms,
            self.cfg.election_timeout_max_ms,
        );
        let timeout = match self.ranked_timeout_rank() {
            Some((rank, voters)) => {
                let gap = (max - min) / (voters as u64 - 1).max(1);
                let jitter = (gap / RANKED_JITTER_PER_GAP).max(1);
                min + rank as u64 * gap + self.rng.gen_range(0..jitter)
            }
            None => self.rng.gen_range(min..max),
        };
        self.election_due = self.now.add_ms(timeout);
    }

    /// With the ranked policy and a known leader: this follower's place after the leader on the ring of voters
    /// (0 = right after it), and the number of voters.
    fn ranked_timeout_rank(&self) -> Option<(usize, usize)> {
        if self.cfg.election_timeout_policy != ElectionTimeoutPolicy::Ranked {
            return None;
        }
        let leader = self.leader.filter(|&l| l != self.cfg.id)?;
        let voters: Vec<NodeId> = self.membership.voters.iter().copied().collect();
        let n = voters.len();
        let me = voters.iter().position(|&v| v == self.cfg.id)?;
        let at = voters.iter().position(|&v| v == leader)?;
        Some(((me + n - at - 1) % n, n))
    }

    /// How soon a pre-vote refused within `pre_vote_retry_until` is tried again.
    fn pre_vote_retry_ms(&self) -> u64 {
        (self.cfg.heartbeat_interval_ms / PRE_VOTE_RETRIES).max(1)
    }

    /// Whether this node has heard from a live leader recently enough to refuse to help depose it.
    fn in_leader_lease(&self) -> bool {
        if !self.cfg.check_quorum {
            return false;
        }
        if self.role == Role::Leader {
            return true;
        }
        let recent_leader = self.leader.is_some()
            && self.now
                < self
                    .last_leader_contact
                    .add_ms(self.cfg.election_timeout_min_ms);
        recent_leader || self.now < self.vote_guard_until
    }

    /// Applies the term rules of Figure 2; returns whether the message should be processed further.
    fn handle_term(&mut self, msg: &Message) -> bool {
        use MessageBody::*;
        if msg.term > self.term {
            match &msg.body {
                PreVote { .. } => return true,
                PreVoteResponse { granted: true } => return true,
                RequestVote { transfer, .. } if !transfer && self.in_leader_lease() => {
                    // Leader stickiness: a live leader exists; do not let a disruptive server raise our term.
                    return false;
                }
                _ => {}
            }
            let leader = match &msg.body {
                Append { .. } | Heartbeat { .. } | InstallSnapshot { .. } => Some(msg.from),
                _ => None,
            };
            self.become_follower(msg.term, leader);
            true
        } else if msg.term < self.term {
            match &msg.body {
                // A stale leader learns the newer term from the answer and steps down.
                Append { .. } | Heartbeat { .. } => {
                    self.send(msg.from, HeartbeatResponse { read_round: 0 }, false);
                }
                PreVote { .. } => self.send(msg.from, PreVoteResponse { granted: false }, false),
                _ => {}
            }
            false
        } else {
            true
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.hard_state_dirty = true;
        }
        if self.role == Role::Leader {
            self.abandon_leadership();
        }
        self.leader = leader;
        self.role = self.follower_role();
        self.votes.clear();
        self.reset_election_timer();
    }

    fn follower_role(&self) -> Role {
        if self.membership.is_voter(self.cfg.id) {
            Role::Follower
        } else {
            Role::Learner
        }
    }

    fn abandon_leadership(&mut self) {
        if let Some(ls) = self.leader_state.take() {
            self.failed_reads
                .extend(ls.pending_reads.into_iter().map(|r| r.id));
        }
    }

    fn campaign(&mut self, transfer: bool) {
        self.elections_started += 1;
        if self.cfg.pre_vote && !transfer {
            if self.leader.is_some() && self.ranked_timeout_rank().is_some() {
                // Our ranked timer ran out after a known leader went quiet. The other voters heard that leader's
                // last heartbeat at about the same moment, so a refusal now is most likely a lease that ends within
                // a heartbeat interval: retry the pre-vote then rather than wait a whole random timeout.
                self.pre_vote_retry_until = self
                    .now
                    .add_ms(self.cfg.heartbeat_interval_ms + PRE_VOTE_RETRY_SLACK_MS);
            }
            self.role = Role::PreCandidate;
            self.leader = None;
            self.votes.clear();
            self.votes.insert(self.cfg.id, true);
            self.reset_election_timer();
            if self.membership.has_quorum([self.cfg.id]) {
                self.become_candidate(false);
                return;
            }
            let body = MessageBody::PreVote {
                last_index: self.log.last_index(),
                last_term: self.log.last_term(),
            };
            let term = self.term.next();
            for peer in self.other_voters() {
                self.messages.push(Message {
                    from: self.cfg.id,
                    to: peer,
                    term,
                    body: body.clone(),
                });
            }
        } else {
            self.become_candidate(transfer);
        }
    }

    fn become_candidate(&mut self, transfer: bool) {
        if self.role == Role::Leader {
            self.abandon_leadership();
        }
        self.term = self.term.next();
        self.vote = Some(self.cfg.id);
        self.hard_state_dirty = true;
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id, true);
        self.reset_election_timer();
        if self.membership.has_quorum([self.cfg.id]) {
            self.become_leader();
            return;
        }
        let body = MessageBody::RequestVote {
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            transfer,
        };
        for peer in self.other_voters() {
            // Our vote for ourselves must be durable before anyone counts on this election.
            self.send(peer, body.clone(), true);
        }
    }

    fn handle_pre_vote(&mut self, msg: &Message, last_index: LogIndex, last_term: Term) {
        let granted = msg.term > self.term
            && !self.in_leader_lease()
            && self.up_to_date_for_vote(last_index, last_term);
        let term = if granted { msg.term } else { self.term };
        self.messages.push(Message {
            from: self.cfg.id,
            to: msg.from,
            term,
            body: MessageBody::PreVoteResponse { granted },
        });
    }

    /// The election restriction (§5.4.1): a vote only for a candidate whose log is at least as up to date.
    fn up_to_date_for_vote(&self, last_index: LogIndex, last_term: Term) -> bool {
        self.cfg.mutations.no_election_restriction
            || self.log.candidate_is_up_to_date(last_index, last_term)
    }

    /// How long a lease lasts from the send time of a heartbeat round a majority acknowledged: the minimum
    /// election timeout shortened by the drift bound (see [`ReadMode::Lease`]).
    fn lease_ms(&self, drift_bound_ppm: u32) -> u64 {
        if self.cfg.mutations.lease_no_drift {
            return self.cfg.election_timeout_min_ms;
        }
        self.cfg.election_timeout_min_ms * (1_000_000 - drift_bound_ppm as u64) / 1_000_000
    }

    fn handle_request_vote(&mut self, from: NodeId, last_index: LogIndex, last_term: Term) {
        let can_vote = self.vote.is_none_or(|v| v == from);
        let granted = can_vote && self.up_to_date_for_vote(last_index, last_term);
        if granted {
            self.vote = Some(from);
            self.hard_state_dirty = true;
            self.reset_election_timer();
        }
        self.send(from, MessageBody::RequestVoteResponse { granted }, true);
    }

    fn handle_vote_response(&mut self, from: NodeId, term: Term, granted: bool, pre: bool) {
        let expected_role = if pre {
            Role::PreCandidate
        } else {
            Role::Candidate
        };
        let expected_term = if pre { self.term.next() } else { self.term };
        // A voter refuses a pre-vote in its own term (which is ours): count that refusal too.
        let pre_refusal = pre && !granted && term == self.term;
        if self.role != expected_role
            || (term != expected_term && !pre_refusal)
            || !self.membership.is_voter(from)
        {
            return;
        }
        if pre_refusal && self.now < self.pre_vote_retry_until {
            // Most likely a lease that ends within a heartbeat (see `campaign`); a dead leader never answers,
            // so do not wait for a majority of refusals. Pre-votes change no term: retrying early is harmless.
            let retry = self.now.add_ms(self.pre_vote_retry_ms());
            self.election_due = self.election_due.min(retry);
        }
        self.votes.insert(from, granted);
        let yes = self.votes.iter().filter(|(_, &g)| g).map(|(&id, _)| id);
        if self.membership.has_quorum(yes) {
            if pre {
                self.become_candidate(false);
            } else {
                self.become_leader();
            }
            return;
        }
        let no = self.votes.iter().filter(|(_, &g)| !g).map(|(&id, _)| id);
        if self.membership.has_quorum(no) {
            // Lost: wait for a leader or the next timeout as a follower.
            let leader = None;
            self.become_follower(self.term, leader);
            if pre && self.now < self.pre_vote_retry_until {
                let retry = self.now.add_ms(self.pre_vote_retry_ms());
                self.election_due = self.election_due.min(retry);
            }
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.votes.clear();
        let last = self.log.last_index();
        let progress = self
            .membership
            .members()
            .filter(|&id| id != self.cfg.id)
            .map(|id| (id, Progress::new(last, self.now)))
            .collect();
        self.leader_state = Some(LeaderState {
            progress,
            heartbeat_due: self.now,
            check_quorum_due: self.now.add_ms(self.cfg.election_timeout_min_ms),
            noop_index: last.next(),
            read_round: 0,
            rounds_sent_at: VecDeque::new(),
            pending_reads: VecDeque::new(),
            round_wanted: false,
            lease_from: None,
            transfer: None,
            broadcast_wanted: false,
        });
        // §5.4.2 / §8: a no-op of the new term lets the leader commit everything before it.
        self.append_new(EntryPayload::Noop);
    }

    // ----------------------------------------------------------------------------------------------------
    // Leader: replication (§5.3), commitment (§5.4.2), reads (§6.4), check-quorum, transfer.

    fn tick_leader(&mut self) {
        let now = self.now;
        let ls = self.leader_state.as_mut().expect("leader has leader state");
        if let Some((_, deadline)) = ls.transfer {
            if now >= deadline {
                ls.transfer = None; // The target did not take over in time: carry on leading.
            }
        }
        if now >= ls.check_quorum_due {
            ls.check_quorum_due = now.add_ms(self.cfg.election_timeout_min_ms);
            let active: Vec<NodeId> = ls
                .progress
                .iter_mut()
                .filter_map(|(&id, p)| std::mem::replace(&mut p.recent_active, false).then_some(id))
                .chain([self.cfg.id])
                .collect();
            let step_down = self.cfg.check_quorum && !self.cfg.mutations.no_check_quorum_step_down;
            if step_down && !self.membership.has_quorum(active) {
                let term = self.term;
                self.become_follower(term, None);
                return;
            }
        }
        let ls = self.leader_state.as_mut().expect("leader has leader state");
        ls.progress
            .retain(|_, p| p.departing_until.is_none_or(|until| now < until));
        if now >= ls.heartbeat_due {
            ls.round_wanted = true;
        }
    }

    fn flush_leader_work(&mut self) {
        let Some(ls) = self.leader_state.as_mut() else {
            return;
        };
        if std::mem::take(&mut ls.round_wanted) {
            ls.read_round += 1;
            ls.heartbeat_due = self.now.add_ms(self.cfg.heartbeat_interval_ms);
            ls.rounds_sent_at.push_back((ls.read_round, self.now));
            while ls.rounds_sent_at.len() > 64 {
                ls.rounds_sent_at.pop_front();
            }
            let round = ls.read_round;
            let peers: Vec<(NodeId, LogIndex)> = ls
                .progress
                .iter()
                .map(|(&id, p)| (id, p.match_index))
                .collect();
            let commit = self.log.commit();
            for (peer, match_index) in peers {
                let body = MessageBody::Heartbeat {
                    commit: commit.min(match_index),
                    read_round: round,
                };
                self.send(peer, body, false);
            }
            self.release_reads();
        }
        let ls = self.leader_state.as_mut().expect("still leader");
        if std::mem::take(&mut ls.broadcast_wanted) {
            let peers: Vec<NodeId> = ls.progress.keys().copied().collect();
            for peer in peers {
                self.send_appends(peer);
            }
        }
    }

    fn check_can_propose(&self) -> Result<(), ProposeError> {
        let Some(ls) = self.leader_state.as_ref() else {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        };
        if ls.transfer.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        let uncommitted = self.log.last_index().0 - self.log.commit().0;
        if uncommitted as usize >= self.cfg.max_uncommitted_entries {
            return Err(ProposeError::Overloaded);
        }
        Ok(())
    }

    fn append_new(&mut self, payload: EntryPayload) -> (LogIndex, Term) {
        let index = self.log.last_index().next();
        self.log.append_as_leader(Entry {
            term: self.term,
            index,
            payload,
        });
        let ls = self.leader_state.as_mut().expect("only leaders append");
        ls.broadcast_wanted = true;
        (index, self.term)
    }

    /// Sends Appends to `peer` while the flow-control window allows and there is something to send.
    fn send_appends(&mut self, peer: NodeId) {
        for _ in 0..self.cfg.max_inflight_messages {
            let Some(p) = self.progress(peer) else { return };
            let nothing_new =
                p.next_index > self.log.last_index() && p.state == ReplicationState::Replicate;
            if nothing_new || !p.can_send(self.cfg.max_inflight_messages) {
                return;
            }
            if !self.send_append(peer) {
                return;
            }
        }
    }

    /// Sends one Append (or the snapshot) to `peer`; returns whether another may follow at once.
    fn send_append(&mut self, peer: NodeId) -> bool {
        let now = self.now;
        let Some(p) = self.progress(peer) else {
            return false;
        };
        if !p.can_send(self.cfg.max_inflight_messages) {
            return false;
        }
        let next = p.next_index;
        let prev_index = next.prev();
        let prev_term = self.log.term(prev_index);
        let entries = self.log.entries_from(
            next,
            self.cfg.max_entries_per_message,
            self.cfg.max_bytes_per_message,
        );
        match (prev_term, entries) {
            (Some(prev_term), Ok(entries)) => {
                let last_sent = LogIndex(prev_index.0 + entries.len() as u64);
                let commit = self.log.commit().min(last_sent);
                let p = self.progress_mut(peer).expect("checked above");
                let pipelined = p.state == ReplicationState::Replicate;
                if pipelined {
                    if !entries.is_empty() {
                        p.next_index = last_sent.next();
                        p.inflight.push_back(last_sent);
                    }
                } else {
                    p.probe_sent = true;
                }
                let more = pipelined && !entries.is_empty();
                self.send(
                    peer,
                    MessageBody::Append {
                        prev_index,
                        prev_term,
                        entries,
                        commit,
                    },
                    false,
                );
                more
            }
            _ => {
                let Some(snapshot) = self.snapshot.clone() else {
                    // Without a snapshot every entry from index 1 is held, so this cannot happen.
                    panic!("entries before {next:?} are compacted but there is no snapshot");
                };
                let p = self.progress_mut(peer).expect("checked above");
                p.state = ReplicationState::Snapshot {
                    index: snapshot.meta.index,
                    sent_at: now,
                };
                p.inflight.clear();
                self.send(peer, MessageBody::InstallSnapshot { snapshot }, false);
                false
            }
        }
    }

    fn handle_append_response(&mut self, from: NodeId, result: AppendResult) {
        if self.role != Role::Leader {
            return;
        }
        let now = self.now;
        let last = self.log.last_index();
        let Some(p) = self.progress_mut(from) else {
            return;
        };
        p.recent_active = true;
        match result {
            AppendResult::Accepted { match_index } => {
                if match_index > last {
                    return; // Cannot be ours; ignore rather than trust it.
                }
                if p.acknowledge(match_index, now) {
                    self.maybe_commit();
                }
                self.maybe_finish_transfer(from);
                self.send_appends(from);
            }
            AppendResult::Rejected {
                rejected_index,
                conflict_term,
                conflict_index,
            } => {
                let stale = match p.state {
                    ReplicationState::Replicate => rejected_index <= p.match_index,
                    ReplicationState::Probe => rejected_index != p.next_index.prev(),
                    ReplicationState::Snapshot { .. } => true,
                };
                if stale {
                    return;
                }
                let hinted = match conflict_term.and_then(|t| self.log.last_index_of_term(t)) {
                    Some(last_of_term) => last_of_term.next(),
                    None => conflict_index,
                };
                let next = hinted.min(rejected_index).max(LogIndex(1));
                let p = self.progress_mut(from).expect("checked above");
                p.become_probe(next, now);
                self.send_appends(from);
            }
        }
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        if self.role != Role::Leader {
            return;
        }
        let now = self.now;
        let last = self.log.last_index();
        let stall_ms = 2 * self.cfg.heartbeat_interval_ms;
        let snapshot_retry_ms = 2 * self.cfg.election_timeout_max_ms;
        let Some(p) = self.progress_mut(from) else {
            return;
        };
        p.recent_active = true;
        p.read_round_acked = p.read_round_acked.max(read_round);
        // Recover from lost Appends: a lagging follower whose acknowledgements stopped gets a fresh probe.
        match p.state {
            ReplicationState::Probe => p.probe_sent = false,
            ReplicationState::Replicate => {
                if p.match_index < last
                    && !p.inflight.is_empty()
                    && now.since_ms(p.last_progress_at) >= stall_ms
                {
                    let next = p.match_index.next();
                    p.become_probe(next, now);
                }
            }
            ReplicationState::Snapshot { sent_at, .. } => {
                if now.since_ms(sent_at) >= snapshot_retry_ms {
                    let next = p.match_index.next();
                    p.become_probe(next, now);
                }
            }
        }
        self.send_appends(from);
        self.release_reads();
    }

    /// Commits the highest index replicated on a majority, if it is of the current term (§5.4.2).
    fn maybe_commit(&mut self) {
        let Some(ls) = self.leader_state.as_ref() else {
            return;
        };
        let mut matches: Vec<LogIndex> = self
            .membership
            .voters
            .iter()
            .map(|&id| {
                if id == self.cfg.id {
                    self.log.persisted()
                } else {
                    ls.progress.get(&id).map_or(LogIndex(0), |p| p.match_index)
                }
            })
            .collect();
        if matches.is_empty() {
            return;
        }
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matches[self.membership.quorum() - 1];
        if candidate <= self.log.commit() {
            return;
        }
        let own_term = self.log.term(candidate) == Some(self.term);
        if own_term || self.cfg.mutations.commit_previous_term_by_count {
            self.log.commit_to(candidate);
            self.on_commit_advanced();
        }
    }

    fn on_commit_advanced(&mut self) {
        // Followers learn the new commit index with the next Append or heartbeat; send it promptly.
        if let Some(ls) = self.leader_state.as_mut() {
            ls.broadcast_wanted = true;
        }
        self.release_reads();
        // A leader removed from the configuration leads until the removal commits, then steps down (§4.2.2).
        if self.membership_index <= self.log.commit()
            && !self.membership.is_voter(self.cfg.id)
            && self.role == Role::Leader
        {
            let term = self.term;
            self.become_follower(term, None);
        }
    }

    fn release_reads(&mut self) {
        let commit = self.log.commit();
        let quorum = self.membership.quorum();
        let id = self.cfg.id;
        let lease_ms = match self.cfg.read_mode {
            ReadMode::Lease { drift_bound_ppm } => Some(self.lease_ms(drift_bound_ppm)),
            ReadMode::ReadIndex => None,
        };
        let Some(ls) = self.leader_state.as_mut() else {
            return;
        };
        let mut acked: Vec<u64> = self
            .membership
            .voters
            .iter()
            .map(|v| {
                if *v == id {
                    ls.read_round
                } else {
                    ls.progress.get(v).map_or(0, |p| p.read_round_acked)
                }
            })
            .collect();
        if acked.is_empty() {
            return;
        }
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = acked[quorum - 1];
        if let Some(sent) = ls
            .rounds_sent_at
            .iter()
            .find(|(r, _)| *r == confirmed)
            .map(|(_, t)| *t)
        {
            if lease_ms.is_some() {
                ls.lease_from = Some(ls.lease_from.map_or(sent, |t| t.max(sent)));
            }
        }
        while ls
            .rounds_sent_at
            .front()
            .is_some_and(|(r, _)| *r < confirmed)
        {
            ls.rounds_sent_at.pop_front();
        }
        if commit < ls.noop_index {
            return; // §6.4 step 1: the leader's commit index is current only once its no-op committed.
        }
        while ls
            .pending_reads
            .front()
            .is_some_and(|r| r.round <= confirmed)
        {
            let r = ls.pending_reads.pop_front().expect("checked non-empty");
            self.read_states.push(ReadState {
                id: r.id,
                index: r.index,
            });
        }
    }

    fn lease_valid(&self) -> bool {
        let ReadMode::Lease { drift_bound_ppm } = self.cfg.read_mode else {
            return false;
        };
        let Some(ls) = self.leader_state.as_ref() else {
            return false;
        };
        if ls.transfer.is_some() || self.log.commit() < ls.noop_index {
            return false;
        }
        let lease_ms = self.lease_ms(drift_bound_ppm);
        ls.lease_from
            .is_some_and(|from| self.now < from.add_ms(lease_ms))
    }

    fn maybe_finish_transfer(&mut self, peer: NodeId) {
        let last = self.log.last_index();
        let Some(ls) = self.leader_state.as_ref() else {
            return;
        };
        let Some((target, _)) = ls.transfer else {
            return;
        };
        if target == peer
            && ls
                .progress
                .get(&peer)
                .is_some_and(|p| p.match_index == last)
        {
            self.send(peer, MessageBody::TimeoutNow, false);
        }
    }

    // ----------------------------------------------------------------------------------------------------
    // Followers.

    fn heard_from_leader(&mut self, from: NodeId) {
        self.leader = Some(from);
        self.last_leader_contact = self.now;
        if self.role != Role::Leader {
            self.role = self.follower_role();
        }
        self.reset_election_timer();
    }

    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) {
        if self.role == Role::Leader {
            return; // Two leaders in one term is impossible; the invariant checker would flag the sender.
        }
        self.heard_from_leader(from);
        let committed = self.log.commit();
        let (prev_index, prev_term, entries) = if prev_index < committed {
            // Everything up to our commit index matches the leader's log (Log Matching + Leader Completeness):
            // skip the part of the message we already have committed.
            let entries: Vec<Entry> = entries
                .into_iter()
                .filter(|e| e.index > committed)
                .collect();
            match entries.first() {
                Some(first) if first.index != committed.next() => {
                    self.accept(from, committed);
                    return;
                }
                _ => {}
            }
            (
                committed,
                self.log
                    .term(committed)
                    .expect("commit index is in the log"),
                entries,
            )
        } else {
            (prev_index, prev_term, entries)
        };
        if self.log.term(prev_index) != Some(prev_term) {
            let (conflict_term, conflict_index) = self.log.conflict_hint(prev_index);
            let result = AppendResult::Rejected {
                rejected_index: prev_index,
                conflict_term,
                conflict_index,
            };
            self.send(from, MessageBody::AppendResponse { result }, false);
            return;
        }
        let last_new = LogIndex(prev_index.0 + entries.len() as u64);
        let touches_conf = entries
            .iter()
            .any(|e| matches!(e.payload, EntryPayload::Conf(_)));
        let truncated = self
            .log
            .merge_from_leader(entries, self.cfg.mutations.keep_conflicting_suffix);
        if touches_conf || truncated.is_some_and(|t| t <= self.membership_index) {
            self.refresh_membership();
        }
        let last_new = last_new.min(self.log.last_index());
        self.log.commit_to(commit.min(last_new));
        self.accept(from, last_new);
    }

    fn accept(&mut self, leader: NodeId, match_index: LogIndex) {
        let result = AppendResult::Accepted { match_index };
        // The acknowledgement promises durability: it leaves only after this Ready is persisted.
        self.send(leader, MessageBody::AppendResponse { result }, true);
    }

    fn handle_heartbeat(&mut self, from: NodeId, commit: LogIndex, read_round: u64) {
        if self.role == Role::Leader {
            return;
        }
        self.heard_from_leader(from);
        self.log.commit_to(commit.min(self.log.last_index()));
        self.send(from, MessageBody::HeartbeatResponse { read_round }, false);
    }

    fn handle_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        if self.role == Role::Leader {
            return;
        }
        self.heard_from_leader(from);
        let index = snapshot.meta.index;
        if index <= self.log.commit() {
            self.accept(from, self.log.commit());
            return;
        }
        if self.log.term(index) == Some(snapshot.meta.term) {
            // We already hold the snapshot's last entry, so the whole prefix matches (Log Matching). Keep the
            // log: entries after `index` may have been acknowledged already and must not be dropped (§7).
            self.log.commit_to(index);
            self.accept(from, index);
            return;
        }
        self.log.restore_snapshot(index, snapshot.meta.term);
        self.snapshot = Some(snapshot.clone());
        self.snapshot_to_install = Some(snapshot);
        self.refresh_membership();
        self.accept(from, index);
    }

    // ----------------------------------------------------------------------------------------------------
    // Helpers.

    fn send(&mut self, to: NodeId, body: MessageBody, after_persist: bool) {
        let msg = Message {
            from: self.cfg.id,
            to,
            term: self.term,
            body,
        };
        if after_persist {
            self.persisted_messages.push(msg);
        } else {
            self.messages.push(msg);
        }
    }

    fn other_voters(&self) -> Vec<NodeId> {
        self.membership
            .voters
            .iter()
            .copied()
            .filter(|&id| id != self.cfg.id)
            .collect()
    }

    fn progress(&self, peer: NodeId) -> Option<&Progress> {
        self.leader_state.as_ref()?.progress.get(&peer)
    }

    fn progress_mut(&mut self, peer: NodeId) -> Option<&mut Progress> {
        self.leader_state.as_mut()?.progress.get_mut(&peer)
    }

    /// The configuration as of `index`: the newest Conf entry at or before it, else the snapshot's.
    fn membership_at(&self, index: LogIndex) -> Membership {
        self.log
            .slice(self.log.first_index(), index)
            .iter()
            .rev()
            .find_map(|e| match &e.payload {
                EntryPayload::Conf(m) => Some(m.clone()),
                _ => None,
            })
            .or_else(|| self.snapshot.as_ref().map(|s| s.meta.membership.clone()))
            .unwrap_or_default()
    }

    /// Re-derives the configuration in force from the log (it takes effect when appended, §4.1).
    fn refresh_membership(&mut self) {
        let found = self
            .log
            .slice(self.log.first_index(), self.log.last_index())
            .iter()
            .rev()
            .find_map(|e| match &e.payload {
                EntryPayload::Conf(m) => Some((e.index, m.clone())),
                _ => None,
            });
        let (index, membership) = found.unwrap_or_else(|| {
            let m = self
                .snapshot
                .as_ref()
                .map(|s| s.meta.membership.clone())
                .unwrap_or_default();
            (self.log.snapshot_index(), m)
        });
        self.membership_index = index;
        if membership == self.membership {
            return;
        }
        self.membership = membership;
        if let Some(ls) = self.leader_state.as_mut() {
            let last = self.log.last_index();
            let now = self.now;
            // A removed node keeps receiving the log for a grace period, so it learns (by applying the
            // committed change) that it was removed and can stop, instead of campaigning forever.
            let grace_until = now.add_ms(10 * self.cfg.election_timeout_max_ms);
            for (id, p) in ls.progress.iter_mut() {
                p.departing_until = if self.membership.contains(*id) {
                    None
                } else {
                    p.departing_until.or(Some(grace_until))
                };
            }
            for id in self.membership.members() {
                if id != self.cfg.id {
                    ls.progress
                        .entry(id)
                        .or_insert_with(|| Progress::new(last, now));
                }
            }
            ls.broadcast_wanted = true;
            if let Some((target, _)) = ls.transfer {
                if !self.membership.is_voter(target) {
                    ls.transfer = None;
                }
            }
        } else if matches!(self.role, Role::Follower | Role::Learner) {
            self.role = self.follower_role();
        } else if !self.membership.is_voter(self.cfg.id) {
            // A candidate removed from the configuration gives up its campaign.
            let term = self.term;
            let leader = self.leader;
            self.become_follower(term, leader);
        }
    }
}
