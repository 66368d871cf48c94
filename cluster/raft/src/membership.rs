//! Cluster membership and single-server changes (§4 of Ongaro's dissertation).
//!
//! A configuration entry carries the whole new configuration, not a delta, so the configuration in force is
//! always "the newest configuration entry in the log, else the snapshot's". It takes effect as soon as it is
//! appended (§4.1), and is rolled back if that entry is truncated away.

use crate::types::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Who votes and who only listens.
#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Membership {
    /// Servers whose votes and acknowledgements count towards a majority.
    pub voters: BTreeSet<NodeId>,
    /// Servers that receive the log but do not vote (new servers catching up).
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A configuration of the given voters and no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    /// The number of votes that form a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Whether `id` votes in this configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// Every member, voters first.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    /// Whether the ids in `acks` form a majority of the voters.
    pub fn has_quorum(&self, acks: impl IntoIterator<Item = NodeId>) -> bool {
        let count = acks
            .into_iter()
            .filter(|id| self.voters.contains(id))
            .count();
        count >= self.quorum()
    }

    /// The configuration after `change`, or why it is not allowed.
    pub fn apply(&self, change: &ConfChange) -> Result<Membership, ConfChangeError> {
        let mut next = self.clone();
        match *change {
            ConfChange::AddLearner(id) => {
                if self.contains(id) {
                    return Err(ConfChangeError::AlreadyMember(id));
                }
                next.learners.insert(id);
            }
            ConfChange::PromoteLearner(id) => {
                if !self.learners.contains(&id) {
                    return Err(ConfChangeError::NotALearner(id));
                }
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            ConfChange::Remove(id) => {
                if !self.contains(id) {
                    return Err(ConfChangeError::NotAMember(id));
                }
                if self.voters.contains(&id) && self.voters.len() == 1 {
                    return Err(ConfChangeError::LastVoter(id));
                }
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
        }
        Ok(next)
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "voters{:?}", self.voters)?;
        if !self.learners.is_empty() {
            write!(f, " learners{:?}", self.learners)?;
        }
        Ok(())
    }
}

/// One single-server membership change. Adding a voter is two changes: add as learner, then promote once
/// it has caught up, so a slow new server never stalls commitment (§4.2.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ConfChange {
    /// Start replicating to a new non-voting member.
    AddLearner(NodeId),
    /// Make a learner a voter.
    PromoteLearner(NodeId),
    /// Remove a voter or learner.
    Remove(NodeId),
}

/// Why a membership change was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ConfChangeError {
    /// The node is already a voter or learner.
    #[error("node {0} is already a member")]
    AlreadyMember(NodeId),
    /// Only learners can be promoted.
    #[error("node {0} is not a learner")]
    NotALearner(NodeId),
    /// The node is not in the configuration.
    #[error("node {0} is not a member")]
    NotAMember(NodeId),
    /// Removing the only voter would leave a cluster that can never commit again.
    #[error("node {0} is the last voter")]
    LastVoter(NodeId),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn quorum_is_a_strict_majority_of_voters() {
        for (voters, quorum) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)] {
            let m = Membership::with_voters((1..=voters).map(NodeId));
            assert_eq!(m.quorum(), quorum, "{voters} voters");
        }
    }

    #[test]
    fn learners_never_count_towards_quorum() {
        let mut m = Membership::with_voters(ids(&[1, 2, 3]));
        m.learners.insert(NodeId(4));
        m.learners.insert(NodeId(5));
        assert!(!m.has_quorum(ids(&[1, 4, 5])));
        assert!(m.has_quorum(ids(&[1, 2])));
    }

    #[test]
    fn single_server_changes_are_validated() {
        let m = Membership::with_voters(ids(&[1, 2, 3]));
        assert_eq!(
            m.apply(&ConfChange::AddLearner(NodeId(2))),
            Err(ConfChangeError::AlreadyMember(NodeId(2)))
        );
        assert_eq!(
            m.apply(&ConfChange::PromoteLearner(NodeId(4))),
            Err(ConfChangeError::NotALearner(NodeId(4)))
        );
        let with_learner = m.apply(&ConfChange::AddLearner(NodeId(4))).unwrap();
        let promoted = with_learner
            .apply(&ConfChange::PromoteLearner(NodeId(4)))
            .unwrap();
        assert_eq!(promoted.voters.len(), 4);
        let removed = promoted.apply(&ConfChange::Remove(NodeId(1))).unwrap();
        assert!(!removed.contains(NodeId(1)));
        let single = Membership::with_voters(ids(&[1]));
        assert_eq!(
            single.apply(&ConfChange::Remove(NodeId(1))),
            Err(ConfChangeError::LastVoter(NodeId(1)))
        );
    }
}
