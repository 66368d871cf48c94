//! What a peer tells this node about itself outside Raft frames.

use crate::NodeId;

/// A notice for the application, read from [`Inbox::notices`](crate::Inbox::notices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerNotice {
    /// A member refused this node's link because this node was removed from the cluster: the application should
    /// stop (node ids are never reused, so it can never take part again).
    Removed {
        /// The member that said so.
        by: NodeId,
        /// The log index of the configuration that removed this node.
        at_index: u64,
    },
}

/// How many notices wait for the application at most; more are dropped (the next refusal repeats them).
pub(crate) const NOTICES_MAX: usize = 16;
