//! What clients and nodes say to a node's endpoint, encoded with postcard inside length-prefixed frames.
//!
//! Every request gets exactly one response. A response is either a definite outcome (the operation happened
//! with this result, or it definitely did not happen) or a redirect; "no response" (timeout, connection lost)
//! is the only indeterminate outcome, and the client library reports it as such.

use raft::kv::{KvOp, KvOutput};
use raft::{LogIndex, Membership, NodeId, Status, Term};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Format version of requests and responses; a node refuses frames of another version.
pub const PROTOCOL_VERSION: u16 = 2;

/// A request to a node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// A write (put, delete, cas) through the log, in the client's session: `seq` increases by one per new
    /// command and is reused by retries, so a command is applied at most once.
    Write {
        /// The client's session id.
        client: u64,
        /// The command's sequence number in that session.
        seq: u64,
        /// The operation.
        op: KvOp,
    },
    /// A linearizable read (ReadIndex or lease, as the node is configured).
    Read {
        /// The key.
        key: String,
    },
    /// The node's own status, and the term of its entry at `probe` (to check that logs agree).
    Status {
        /// An index whose term to report.
        probe: Option<LogIndex>,
    },
    /// A new node asks to join: the leader records its address, adds it as a learner and later promotes it.
    Join {
        /// The new node's id.
        id: NodeId,
        /// The address its peers reach it at.
        addr: String,
        /// Its data directory's incarnation: a retry of the same join is accepted, a wiped node under an id the
        /// cluster has seen is refused.
        incarnation: u64,
    },
    /// Remove a member.
    Remove {
        /// The member.
        id: NodeId,
    },
    /// Hand leadership to another voter.
    TransferLeader {
        /// The voter.
        to: NodeId,
    },
}

impl Request {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Write { .. } => "write",
            Request::Read { .. } => "read",
            Request::Status { .. } => "status",
            Request::Join { .. } => "join",
            Request::Remove { .. } => "remove",
            Request::TransferLeader { .. } => "transfer",
        }
    }
}

/// A node's answer.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Response {
    /// The write was applied with this output (for a cas: whether it matched and what it found).
    Written(KvOutput),
    /// The read's value (None: the key is absent).
    Value(Option<String>),
    /// The node's status.
    Status(Box<NodeStatus>),
    /// A membership request or transfer was carried out.
    Done,
    /// The joining node was added as a learner; here are the members' addresses.
    Joined {
        /// Node id → address, for every known member.
        members: BTreeMap<NodeId, String>,
    },
    /// This node is not the leader; the operation was not carried out. Try the leader, if known.
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// Its address, if known.
        leader_addr: Option<String>,
    },
    /// The operation definitely did not happen, for the reason given (overloaded, superseded by another
    /// leader's entry, a membership change already in progress, ...). Safe to retry.
    Refused(String),
    /// The request was malformed or not allowed; retrying will not help.
    Invalid(String),
}

/// The status view of one node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The Raft core's view.
    pub raft: Status,
    /// Known peer addresses by node id.
    pub addresses: BTreeMap<NodeId, String>,
    /// Milliseconds since the process started.
    pub uptime_ms: u64,
    /// The node's wall clock (ms since the Unix epoch) when it answered, so operators can see clock skew.
    pub wall_clock_unix_ms: u64,
    /// "read-index" or "lease".
    pub read_mode: String,
    /// Deliberate bugs switched on (empty in any real deployment).
    pub bugs: Vec<String>,
    /// Whether the node has been removed from the cluster.
    pub removed: bool,
    /// Nodes this node knows were removed from the cluster, with the log index of the configuration that
    /// removed each (ids are never reused).
    pub removed_nodes: BTreeMap<NodeId, LogIndex>,
    /// The term of the entry at the requested probe index: `Some(None)` if this node does not hold it.
    pub probe: Option<(LogIndex, Option<Term>)>,
    /// What the key/value state machine holds, so a tool can check that every node's applied state agrees.
    pub applied_state: AppliedState,
}

/// A node's applied key/value state, summarised.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AppliedState {
    /// The log index the state reflects (everything up to it applied, nothing after).
    pub index: LogIndex,
    /// A digest of every key and value (see `NodeState::kv_digest`), as 16 hex digits: two nodes at the same
    /// index must show the same digest.
    pub digest: String,
    /// How many keys it holds.
    pub keys: u64,
}

impl NodeStatus {
    /// The configuration the node believes is in force.
    pub fn membership(&self) -> &Membership {
        &self.raft.membership
    }
}

/// Encodes a request or response.
pub fn encode<T: Serialize>(version: u16, value: &T) -> Vec<u8> {
    let mut out = version.to_le_bytes().to_vec();
    out.extend(postcard::to_stdvec(value).expect("serialising into a Vec cannot fail"));
    out
}

/// Decodes a request or response; arbitrary bytes give an error, never a panic.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    let Some((version, body)) = bytes.split_first_chunk::<2>() else {
        return Err(DecodeError::Truncated);
    };
    let version = u16::from_le_bytes(*version);
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::Version {
            found: version,
            expected: PROTOCOL_VERSION,
        });
    }
    postcard::from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Bytes that are not a request or response of this version.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the version prefix.
    #[error("frame shorter than its version prefix")]
    Truncated,
    /// Another protocol version.
    #[error("protocol version {found}, expected {expected}")]
    Version {
        /// What the frame said.
        found: u16,
        /// What this build speaks.
        expected: u16,
    },
    /// Not decodable.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_roundtrip_and_garbage_is_an_error() {
        let req = Request::Write {
            client: 7,
            seq: 3,
            op: KvOp::Put {
                key: "k".into(),
                value: "v".into(),
            },
        };
        assert_eq!(
            decode::<Request>(&encode(PROTOCOL_VERSION, &req)).unwrap(),
            req
        );
        assert_eq!(decode::<Request>(&[1]), Err(DecodeError::Truncated));
        assert!(matches!(
            decode::<Request>(&encode(9, &req)),
            Err(DecodeError::Version { found: 9, .. })
        ));
        assert!(matches!(
            decode::<Request>(&[PROTOCOL_VERSION as u8, 0, 0xff, 0xff, 0xff]),
            Err(DecodeError::Malformed(_))
        ));
    }
}
