//! Sans-IO Raft consensus core: a deterministic state machine driven by the caller.
//!
//! No clocks, sockets, files, threads or ambient randomness live here: time comes in as `now`, randomness from
//! a seed in [`Config`], and everything to persist, send and apply comes out in a [`Ready`]:
//!
//! ```
//! use raft::{Config, Instant, Membership, NodeId, RawNode};
//!
//! let mut node = RawNode::bootstrap(Config::new(NodeId(1)), Membership::with_voters([NodeId(1)]), Instant(0)).unwrap();
//! let mut now = Instant(0);
//! while node.role() != raft::Role::Leader {
//!     now = now.add_ms(10);
//!     node.tick(now);
//!     while node.has_ready() {
//!         let ready = node.ready();
//!         // persist ready.snapshot / ready.entries / ready.hard_state, fsync, send ready.persisted_messages,
//!         // apply ready.committed_entries ...
//!         node.advance(ready);
//!     }
//! }
//! let (index, _term) = node.propose(b"command".to_vec(), now).unwrap();
//! assert!(index.0 >= 2);
//! ```
//!
//! See [`node`] for the full contract, [`sim`] for the deterministic simulation that checks Raft's safety
//! properties under faults, and [`kv`] for the key/value state machine.

pub mod bugs;
pub mod config;
pub mod kv;
pub mod log;
pub mod membership;
pub mod message;
pub mod node;
pub mod progress;
pub mod sim;
pub mod state_machine;
pub mod types;

pub use bugs::{Bug, BugInfo, BugLayer, UnknownBug, CATALOGUE};
pub use config::{Config, ConfigError, ElectionTimeoutPolicy, Mutations, ReadMode};
pub use membership::{ConfChange, ConfChangeError, Membership};
pub use message::{
    decode_message, encode_message, AppendResult, Entry, EntryPayload, Message, MessageBody,
    Snapshot, SnapshotMeta,
};
pub use node::{
    CompactError, HardState, Persisted, ProposeError, RawNode, ReadState, Ready, Status,
    TransferError,
};
pub use state_machine::{RestoreError, StateMachine};
pub use types::{Instant, LogIndex, NodeId, Role, Term};
