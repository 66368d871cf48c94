//! Who is at either end of a relay, and the directed links between them that faults apply to.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's id: the Raft core's type, which raft-transport and raft-node use too (serialised as a bare number).
pub use raft::NodeId;

/// A label for a group of clients that reach nodes through client relays (the runner picks the numbers).
pub type ClientId = u64;

/// One end of a link: a cluster node or a group of clients.
///
/// Faults are keyed by pairs of endpoints, not by relays: the relay knows which endpoint sits on each of its
/// sides and looks up the direction each packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Endpoint {
    /// A cluster node.
    Node(NodeId),
    /// Clients (a workload) reaching nodes through a client relay.
    Client(ClientId),
}

impl Endpoint {
    /// Two words that identify the endpoint, for deriving per-relay seeds (stable across runs and builds,
    /// unlike `Hash`).
    pub(crate) fn seed_words(self) -> [u64; 2] {
        match self {
            Endpoint::Node(id) => [1, id.0],
            Endpoint::Client(id) => [2, id],
        }
    }
}

impl From<NodeId> for Endpoint {
    fn from(id: NodeId) -> Endpoint {
        Endpoint::Node(id)
    }
}

/// A bare number names a node (as it did before nodes had their own type), so `faults.set(1, 2, ...)` works.
impl From<u64> for Endpoint {
    fn from(id: u64) -> Endpoint {
        Endpoint::Node(NodeId(id))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(id) => write!(f, "node {}", id.0),
            Endpoint::Client(id) => write!(f, "client {id}"),
        }
    }
}

/// A directed link: packets travelling from `from` to `to`, whichever relay carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Link {
    /// The sender's end.
    pub from: Endpoint,
    /// The receiver's end.
    pub to: Endpoint,
}

impl Link {
    /// The link from `from` to `to`; node ids convert into endpoints (`Link::new(1, 2)`).
    pub fn new(from: impl Into<Endpoint>, to: impl Into<Endpoint>) -> Link {
        Link {
            from: from.into(),
            to: to.into(),
        }
    }

    /// The same pair in the other direction.
    pub fn reversed(self) -> Link {
        Link {
            from: self.to,
            to: self.from,
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_directed_and_print_readably() {
        let link = Link::new(1, Endpoint::Client(7));
        assert_eq!(link.from, Endpoint::Node(NodeId(1)));
        assert_eq!(link.reversed(), Link::new(Endpoint::Client(7), 1));
        assert_ne!(link, link.reversed());
        assert_eq!(link.to_string(), "node 1 -> client 7");
    }

    #[test]
    fn seed_words_tell_nodes_from_clients() {
        assert_ne!(
            Endpoint::Node(NodeId(3)).seed_words(),
            Endpoint::Client(3).seed_words()
        );
    }
}
