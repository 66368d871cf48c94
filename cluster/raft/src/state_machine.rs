//! The replicated state machine: any deterministic type implementing [`StateMachine`] can sit behind Raft.

use crate::types::LogIndex;

/// A deterministic state machine. Every replica applies the same commands in the same order and must end
/// in the same state, so `apply` may depend on nothing but `self`, the index and the command.
pub trait StateMachine {
    /// What applying one command answers to its client.
    type Output;

    /// Applies the command committed at `index`. Commands that fail to decode must give a deterministic
    /// output (an error value), never a panic: all replicas see the same bytes.
    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Self::Output;

    /// Serialises the whole state.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with a snapshot produced by [`StateMachine::snapshot`].
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError>;
}

/// A snapshot that cannot be decoded.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("snapshot cannot be restored: {0}")]
pub struct RestoreError(pub String);
