//! The node's replicated state machine: the key/value map plus the cluster's address book, so that a node that
//! joins learns every member's address from the log or a snapshot.

use raft::kv::{KvCommand, KvOutput, KvStore};
use raft::{LogIndex, NodeId, RestoreError, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// Key/value map + address book.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NodeState {
    /// The map.
    pub kv: KvStore,
    /// Addresses recorded through the log.
    pub addresses: BTreeMap<NodeId, String>,
}

impl NodeState {
    /// An empty state keeping at most `max_sessions` client sessions.
    pub fn new(max_sessions: usize) -> NodeState {
        NodeState {
            kv: KvStore::new(max_sessions),
            addresses: BTreeMap::new(),
        }
    }
}

impl StateMachine for NodeState {
    type Output = NodeOutput;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> NodeOutput {
        match postcard::from_bytes::<NodeCommand>(command) {
            Ok(NodeCommand::Kv(cmd)) => NodeOutput::Kv(self.kv.apply_command(index, cmd)),
            Ok(NodeCommand::SetAddress { id, addr }) => {
                self.addresses.insert(id, addr);
                NodeOutput::AddressSet
            }
            Err(_) => NodeOutput::Malformed,
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("serialising into a Vec cannot fail")
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        *self = postcard::from_bytes(snapshot).map_err(|e| RestoreError(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::kv::KvOp;

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
        };
        assert_eq!(
            state.apply(LogIndex(2), &addr.encode()),
            NodeOutput::AddressSet
        );
        assert_eq!(state.apply(LogIndex(3), b"\xff\xff"), NodeOutput::Malformed);
        let mut restored = NodeState::new(16);
        restored.restore(&state.snapshot()).unwrap();
        assert_eq!(restored, state);
    }
}
