//! raft-node: a durable Raft key/value server over QUIC with mutual TLS, and its client library.
//!
//! The binary `raft-node` runs one node per process ([`server::run`]); the chaos tool and operators talk to
//! it through [`client::Client`]. Its main loop, in a few lines:
//!
//! ```text
//! select { peer frame => raft.step, client request => raft.propose / raft.read_index, tick => raft.tick }
//! drain every queued frame and request (group commit)
//! while raft.has_ready() { send; persist + fsync; send persisted; apply + answer clients; advance }
//! ```

pub mod client;
pub mod config;
pub mod datadir;
pub mod local;
pub mod planted;
pub mod protocol;
pub mod server;
pub mod state;
pub mod status;
pub mod store;
