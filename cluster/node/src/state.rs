//! The node's replicated state machine: the key/value map plus the cluster's address book, so that a node that
//! joins learns every member's address from the log or a snapshot.

use raft::kv::{KvCommand, KvOutput, KvStore};
use raft::{LogIndex, Membership, NodeId, RestoreError, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A command in the log.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum NodeCommand {
    /// A key/value command of a client session.
    Kv(KvCommand),
    /// Record where a node can be reached (proposed before it is added as a learner).
    SetAddress {
        /// The node.
        id: NodeId,
        /// Its address.
        addr: String,
        /// The incarnation of the joining node's data directory (see [`crate::datadir`]), so a retry of the
        /// same join is told from a wiped node coming back under its old id; 0 if unknown.
        incarnation: u64,
    },
}

impl NodeCommand {
    /// Encodes the command for the log.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("serialising into a Vec cannot fail")
    }
}

/// What applying a command produced.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NodeOutput {
    /// The key/value map's answer.
    Kv(KvOutput),
    /// The address was recorded.
    AddressSet,
    /// The bytes were not a command.
    Malformed,
}

/// Key/value map + address book + the membership history that node ids must never be reused against.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NodeState {
    /// The map.
    pub kv: KvStore,
    /// Addresses recorded through the log.
    pub addresses: BTreeMap<NodeId, String>,
    /// The members (voters and learners) of the last configuration applied.
    pub members: BTreeSet<NodeId>,
    /// Every node id that was ever in an applied configuration.
    pub seen: BTreeSet<NodeId>,
    /// Nodes removed from the cluster, with the log index of the configuration that removed them.
    pub removed: BTreeMap<NodeId, LogIndex>,
    /// The data-directory incarnation each joining node gave with its address.
    pub incarnations: BTreeMap<NodeId, u64>,
    /// The deliberate bug `retry-duplicates`: apply every command, ignoring the client sessions that make a
    /// retried command apply once. Not replicated, not in snapshots.
    #[serde(skip)]
    pub ignore_sessions: bool,
}

/// Why a node may not join under the id it asked for.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum IdReuse {
    /// The id belonged to a node that was removed.
    #[error("node id {} was removed from this cluster at log index {}, and node ids are never reused: start this node under a new id (with a certificate for it)", .id.0, .at.0)]
    Removed {
        /// The id.
        id: NodeId,
        /// The index of the configuration that removed it.
        at: LogIndex,
    },
    /// The id is or was used by a node whose data directory had another incarnation (it was wiped or replaced).
    #[error("node id {} is already used in this cluster by a node with another data directory (this one is new or was wiped), and node ids are never reused: start this node under a new id (with a certificate for it)", .id.0)]
    Used {
        /// The id.
        id: NodeId,
    },
}

impl NodeState {
    /// An empty state keeping at most `max_sessions` client sessions.
    pub fn new(max_sessions: usize) -> NodeState {
        NodeState {
            kv: KvStore::new(max_sessions),
            addresses: BTreeMap::new(),
            members: BTreeSet::new(),
            seen: BTreeSet::new(),
            removed: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            ignore_sessions: false,
        }
    }

    /// A digest of the key/value map (see [`KvStore::digest`]): equal maps give equal digests on every node,
    /// whatever their history. Sessions and the address book are not included. O(1).
    pub fn kv_digest(&self) -> u64 {
        self.kv.digest()
    }

    /// Records a configuration applied at `index`: members seen, and members of the previous one that it drops
    /// as removed. Returns the nodes it removed.
    pub fn apply_configuration(&mut self, index: LogIndex, membership: &Membership) -> Vec<NodeId> {
        let members: BTreeSet<NodeId> = membership.members().collect();
        let removed: Vec<NodeId> = self.members.difference(&members).copied().collect();
        for id in &removed {
            self.removed.insert(*id, index);
        }
        self.seen.extend(members.iter().copied());
        self.members = members;
        removed
    }

    /// Whether node `id`, whose data directory has `incarnation`, may join: a node may retry its own join, but
    /// an id that was removed, or that a node with another data directory uses or used, is never given again.
    pub fn may_join(&self, id: NodeId, incarnation: u64) -> Result<(), IdReuse> {
        if let Some(&at) = self.removed.get(&id) {
            return Err(IdReuse::Removed { id, at });
        }
        let same_node = self.incarnations.get(&id) == Some(&incarnation);
        let used = self.seen.contains(&id) || self.incarnations.contains_key(&id);
        if used && !same_node {
            return Err(IdReuse::Used { id });
        }
        Ok(())
    }
}

/// The addresses recorded by `SetAddress` commands among `entries`, committed or not, later entries winning.
///
/// A restarted node learns addresses only by applying entries, and it applies those after its snapshot only
/// once a leader tells it they are committed. Its configuration, though, already counts members those entries
/// introduced: without their addresses it refuses their hellos, and a cluster that needs them for a quorum never
/// elects a leader. So the log's addresses are known from the start.
pub fn addresses_in_log(entries: &[raft::Entry]) -> BTreeMap<NodeId, String> {
    entries
        .iter()
        .filter_map(|entry| match &entry.payload {
            raft::EntryPayload::Command(data) => match postcard::from_bytes::<NodeCommand>(data) {
                Ok(NodeCommand::SetAddress { id, addr, .. }) => Some((id, addr)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

impl StateMachine for NodeState {
    type Output = NodeOutput;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> NodeOutput {
        match postcard::from_bytes::<NodeCommand>(command) {
            Ok(NodeCommand::Kv(cmd)) if self.ignore_sessions => {
                NodeOutput::Kv(self.kv.apply_ignoring_session(index, cmd))
            }
            Ok(NodeCommand::Kv(cmd)) => NodeOutput::Kv(self.kv.apply_command(index, cmd)),
            Ok(NodeCommand::SetAddress {
                id,
                addr,
                incarnation,
            }) => {
                self.addresses.insert(id, addr);
                if incarnation != 0 {
                    self.incarnations.insert(id, incarnation);
                }
                NodeOutput::AddressSet
            }
            Err(_) => NodeOutput::Malformed,
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("serialising into a Vec cannot fail")
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let ignore_sessions = self.ignore_sessions;
        *self = postcard::from_bytes(snapshot).map_err(|e| RestoreError(e.to_string()))?;
        self.ignore_sessions = ignore_sessions;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::kv::KvOp;

    fn entry(index: u64, payload: raft::EntryPayload) -> raft::Entry {
        raft::Entry {
            term: raft::Term(1),
            index: LogIndex(index),
            payload,
        }
    }

    fn set_address(id: u64, addr: &str) -> raft::EntryPayload {
        raft::EntryPayload::Command(
            NodeCommand::SetAddress {
                id: NodeId(id),
                addr: addr.into(),
                incarnation: 7,
            }
            .encode(),
        )
    }

    /// Issue 13: a restarted node must know the addresses its log holds (applied or not), later ones winning,
    /// and nothing else from the log.
    #[test]
    fn the_log_addresses_are_found_whether_applied_or_not() {
        let entries = vec![
            entry(5, set_address(4, "127.0.0.1:1")),
            entry(6, raft::EntryPayload::Noop),
            entry(7, raft::EntryPayload::Command(b"not a command".to_vec())),
            entry(8, set_address(5, "127.0.0.1:2")),
            entry(9, set_address(4, "127.0.0.1:3")),
        ];
        let found = addresses_in_log(&entries);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found.get(&NodeId(4)).map(String::as_str),
            Some("127.0.0.1:3")
        );
        assert_eq!(
            found.get(&NodeId(5)).map(String::as_str),
            Some("127.0.0.1:2")
        );
        assert!(addresses_in_log(&[]).is_empty());
    }

    #[test]
    fn addresses_and_kv_survive_a_snapshot() {
        let mut state = NodeState::new(16);
        let put = NodeCommand::Kv(KvCommand {
            client: 1,
            seq: 1,
            op: KvOp::Put {
                key: "a".into(),
                value: "1".into(),
            },
        });
        assert_eq!(
            state.apply(LogIndex(1), &put.encode()),
            NodeOutput::Kv(KvOutput::Done)
        );
        let addr = NodeCommand::SetAddress {
            id: NodeId(4),
            addr: "127.0.0.1:7004".into(),
            incarnation: 77,
        };
        assert_eq!(
            state.apply(LogIndex(2), &addr.encode()),
            NodeOutput::AddressSet
        );
        assert_eq!(state.apply(LogIndex(3), b"\xff\xff"), NodeOutput::Malformed);
        state.apply_configuration(
            LogIndex(4),
            &Membership::with_voters([NodeId(1), NodeId(4)]),
        );
        state.apply_configuration(LogIndex(5), &Membership::with_voters([NodeId(1)]));
        let mut restored = NodeState::new(16);
        restored.restore(&state.snapshot()).unwrap();
        assert_eq!(restored, state);
        assert_eq!(restored.removed.get(&NodeId(4)), Some(&LogIndex(5)));
    }

    /// The deliberate bug `retry-duplicates`: a retried cas (same session and sequence number) is applied
    /// again and answered differently; without the bug the retry gets the first answer.
    #[test]
    fn retry_duplicates_applies_a_retry_twice() {
        let cas = NodeCommand::Kv(KvCommand {
            client: 7,
            seq: 1,
            op: KvOp::Cas {
                key: "k".into(),
                expected: None,
                new: "v".into(),
            },
        })
        .encode();
        let first = NodeOutput::Kv(KvOutput::Cas {
            applied: true,
            current: None,
        });
        let mut correct = NodeState::new(16);
        assert_eq!(correct.apply(LogIndex(1), &cas), first);
        assert_eq!(
            correct.apply(LogIndex(2), &cas),
            first,
            "a retry gets the first answer"
        );
        let mut buggy = NodeState::new(16);
        buggy.ignore_sessions = true;
        assert_eq!(buggy.apply(LogIndex(1), &cas), first);
        assert_eq!(
            buggy.apply(LogIndex(2), &cas),
            NodeOutput::Kv(KvOutput::Cas {
                applied: false,
                current: Some("v".into())
            }),
            "the retry was applied again"
        );
    }

    #[test]
    fn the_digest_depends_on_the_map_only() {
        let put = |client, seq, key: &str, value: &str| {
            NodeCommand::Kv(KvCommand {
                client,
                seq,
                op: KvOp::Put {
                    key: key.into(),
                    value: value.into(),
                },
            })
            .encode()
        };
        let mut a = NodeState::new(16);
        a.apply(LogIndex(1), &put(1, 1, "x", "1"));
        a.apply(LogIndex(2), &put(1, 2, "y", "2"));
        let mut b = NodeState::new(16);
        b.apply(LogIndex(1), &put(2, 1, "y", "2"));
        b.apply(LogIndex(2), &put(2, 2, "x", "0"));
        assert_ne!(a.kv_digest(), b.kv_digest());
        b.apply(LogIndex(3), &put(2, 3, "x", "1"));
        assert_eq!(a.kv_digest(), b.kv_digest(), "same map, other history");
        // Lengths are part of the digest: ("ab", "c") is not ("a", "bc").
        let mut c = NodeState::new(16);
        c.apply(LogIndex(1), &put(3, 1, "ab", "c"));
        let mut d = NodeState::new(16);
        d.apply(LogIndex(1), &put(3, 1, "a", "bc"));
        assert_ne!(c.kv_digest(), d.kv_digest());
        assert_ne!(NodeState::new(1).kv_digest(), c.kv_digest());
    }

    #[test]
    fn node_ids_are_never_reused() {
        let mut state = NodeState::new(16);
        state.apply_configuration(
            LogIndex(1),
            &Membership::with_voters([NodeId(1), NodeId(2)]),
        );
        // A fresh id may join, and retry its join with the same data directory.
        assert_eq!(state.may_join(NodeId(3), 9), Ok(()));
        let set = NodeCommand::SetAddress {
            id: NodeId(3),
            addr: "a".into(),
            incarnation: 9,
        };
        state.apply(LogIndex(2), &set.encode());
        state.apply_configuration(
            LogIndex(3),
            &Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
        );
        assert_eq!(state.may_join(NodeId(3), 9), Ok(()));
        // The same id from a wiped data directory, or a bootstrap member's id: refused.
        assert_eq!(
            state.may_join(NodeId(3), 10),
            Err(IdReuse::Used { id: NodeId(3) })
        );
        assert_eq!(
            state.may_join(NodeId(2), 5),
            Err(IdReuse::Used { id: NodeId(2) })
        );
        // A removed id: refused whatever the incarnation, and the message says when it was removed.
        state.apply_configuration(
            LogIndex(4),
            &Membership::with_voters([NodeId(1), NodeId(2)]),
        );
        let err = state.may_join(NodeId(3), 9).unwrap_err();
        assert_eq!(
            err,
            IdReuse::Removed {
                id: NodeId(3),
                at: LogIndex(4)
            }
        );
        assert!(
            err.to_string()
                .contains("node id 3 was removed from this cluster at log index 4,"),
            "{err}"
        );
    }
}
