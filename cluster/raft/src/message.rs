//! Log entries, snapshots and the messages servers exchange (Figure 2 of the Raft paper, plus pre-vote,
//! heartbeats that confirm reads, and TimeoutNow for leadership transfer).

use crate::membership::Membership;
use crate::types::{LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a log entry carries.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum EntryPayload {
    /// Appended by every new leader so it can commit entries of earlier terms (§5.4.2, §8).
    Noop,
    /// An opaque command for the replicated state machine.
    Command(Vec<u8>),
    /// The whole configuration after a single-server change (or the bootstrap configuration at index 1).
    Conf(Membership),
}

/// One entry of the replicated log.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// Its position in the log.
    pub index: LogIndex,
    /// What it carries.
    pub payload: EntryPayload,
}

impl Entry {
    /// An approximate size in bytes, used to bound messages and in-flight data.
    pub fn size_bytes(&self) -> usize {
        let payload = match &self.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(data) => data.len(),
            EntryPayload::Conf(membership) => {
                8 * (membership.voters.len() + membership.learners.len())
            }
        };
        24 + payload
    }
}

/// Metadata of a snapshot: the last entry it replaces and the configuration in force there.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot includes.
    pub index: LogIndex,
    /// Term of that entry.
    pub term: Term,
    /// The configuration as of `index`.
    pub membership: Membership,
}

/// A snapshot of the state machine at `meta.index`. The data is shared, not copied, when sent to followers.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The state machine's serialised state.
    pub data: Arc<Vec<u8>>,
}

/// A message between two servers. `term` is the sender's current term, except for pre-votes, which carry
/// the term the sender would campaign in without having raised its own.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// See the type's documentation.
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MessageBody {
    /// "Would you vote for me in `term`?" sent before raising the term (§9.6 of the dissertation).
    PreVote {
        /// Index of the candidate's last entry.
        last_index: LogIndex,
        /// Term of the candidate's last entry.
        last_term: Term,
    },
    /// Answer to a pre-vote.
    PreVoteResponse {
        /// Whether the vote would be granted.
        granted: bool,
    },
    /// RequestVote RPC (§5.2).
    RequestVote {
        /// Index of the candidate's last entry.
        last_index: LogIndex,
        /// Term of the candidate's last entry.
        last_term: Term,
        /// Set when the election was started by TimeoutNow: voters then skip the leader-stickiness check.
        transfer: bool,
    },
    /// Answer to RequestVote.
    RequestVoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// AppendEntries RPC (§5.3).
    Append {
        /// Index of the entry before `entries`.
        prev_index: LogIndex,
        /// Term of that entry.
        prev_term: Term,
        /// Entries to store (possibly none).
        entries: Vec<Entry>,
        /// The leader's commit index, capped at what this message proves the follower has.
        commit: LogIndex,
    },
    /// Answer to Append.
    AppendResponse {
        /// The outcome.
        result: AppendResult,
    },
    /// Keeps followers from campaigning and confirms leadership for reads.
    Heartbeat {
        /// The leader's commit index, capped at the follower's known match index.
        commit: LogIndex,
        /// The newest read-confirmation round the leader has started.
        read_round: u64,
    },
    /// Answer to a heartbeat, echoing its round.
    HeartbeatResponse {
        /// The echoed `read_round`.
        read_round: u64,
    },
    /// InstallSnapshot RPC (§7), sent whole: snapshots are bounded by the state machine's size.
    InstallSnapshot {
        /// The snapshot.
        snapshot: Snapshot,
    },
    /// Tells a follower to start an election at once (leadership transfer, §3.10 of the dissertation).
    TimeoutNow,
}

/// The outcome of an Append at a follower.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log now matches the leader's up to `match_index`.
    Accepted {
        /// The last index known to match the leader's log.
        match_index: LogIndex,
    },
    /// `prev_index`/`prev_term` did not match; the hints let the leader skip a whole term at once.
    Rejected {
        /// The `prev_index` that was rejected.
        rejected_index: LogIndex,
        /// The term of the follower's entry at `rejected_index`, if it has one.
        conflict_term: Option<Term>,
        /// The first index of `conflict_term` in the follower's log, or its last index + 1 if it is too short.
        conflict_index: LogIndex,
    },
}

impl MessageBody {
    /// A short name for logs and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::PreVote { .. } => "PreVote",
            MessageBody::PreVoteResponse { .. } => "PreVoteResponse",
            MessageBody::RequestVote { .. } => "RequestVote",
            MessageBody::RequestVoteResponse { .. } => "RequestVoteResponse",
            MessageBody::Append { .. } => "Append",
            MessageBody::AppendResponse { .. } => "AppendResponse",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::TimeoutNow => "TimeoutNow",
        }
    }
}

/// Encodes a message for the wire (postcard: compact, no schema negotiation; both ends run one build).
pub fn encode_message(msg: &Message) -> Vec<u8> {
    postcard::to_stdvec(msg).expect("serialising a message into a Vec cannot fail")
}

/// Decodes a message from the wire; arbitrary bytes give an error, never a panic.
pub fn decode_message(bytes: &[u8]) -> Result<Message, postcard::Error> {
    postcard::from_bytes(bytes)
}
