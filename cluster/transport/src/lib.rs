//! QUIC transport with mutual TLS for raft-node: cluster CA, certificates, framed peer and client links.
//!
//! The crate carries opaque byte frames between nodes identified by [`NodeId`]s, and request/response exchanges
//! between clients and nodes. It knows nothing of Raft (it borrows only the core's `NodeId` type).
//!
//! - One [`Transport`] per node binds one UDP port (one quinn endpoint) for everything: its outgoing links to
//!   peers (it is the QUIC client there), its peers' incoming links, and client connections. Peer and client
//!   connections are told apart by ALPN (`raft-peer/1`, `raft-client/1`) and by the certificate's identity.
//! - Everyone authenticates with a certificate signed by the cluster CA ([`generate_cluster_certs`]). The
//!   verified certificate gives a [`PeerIdentity`]: `node-<id>` or `client-<name>`.
//! - Every new connection is confirmed by a hello exchange before it counts as up: with TLS 1.3 a client whose
//!   certificate the server refuses sees `connect()` succeed and learns of the refusal only on first use.
//!   A peer link is accepted only if its certificate names the node id of its hello and that id is a member
//!   (added with [`Transport::add_peer`]).
//! - Peer frames go through a bounded queue per peer drained by a sender task that writes many length-prefixed
//!   frames per write on one long-lived stream, reconnecting with jittered exponential backoff. When a peer is
//!   down and its queue is full, frames are dropped and counted: Raft retransmits.
//! - A client request is one bidirectional stream; [`RequestError::is_definite`] tells a request that certainly
//!   had no effect from one whose outcome is unknown.
//!
//! The library spawns its tasks on the caller's tokio runtime and never creates one.
//!
//! # A node's main loop
//! ```no_run
//! use std::time::Duration;
//! use bytes::Bytes;
//! use raft_transport::{Credentials, NodeId, PeerIdentity, Transport, TransportConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let credentials = Credentials::load("certs".as_ref(), &PeerIdentity::Node(NodeId(1)))?;
//! let (transport, mut inbox) =
//!     Transport::bind("127.0.0.1:7001".parse()?, &credentials, 42, TransportConfig::default())?;
//! transport.add_peer(NodeId(2), "127.0.0.1:7002".parse()?);
//! transport.add_peer(NodeId(3), "127.0.0.1:7003".parse()?);
//! let mut tick = tokio::time::interval(Duration::from_millis(10));
//! tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
//! loop {
//!     tokio::select! {
//!         Some(frame) = inbox.frames.recv() => {
//!             // raft.step(decode(frame.payload)); `frame.from` is authenticated.
//!             let _ = (frame.from, frame.payload);
//!         }
//!         Some(request) = inbox.requests.recv() => {
//!             // Propose the command; answer once it is applied (or drop the responder: outcome unknown).
//!             request.responder.respond(Bytes::from_static(b"ok"))?;
//!         }
//!         _ = tick.tick() => {
//!             // For each outgoing Raft message: a full queue drops it (counted), Raft retransmits.
//!             let _ = transport.send(NodeId(2), Bytes::from_static(b"heartbeat"));
//!         }
//!     }
//! }
//! # }
//! ```
//!
//! # A client
//! ```no_run
//! use std::time::Duration;
//! use bytes::Bytes;
//! use raft_transport::{ClientEndpoint, Credentials, NodeId, PeerIdentity, TransportConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let credentials = Credentials::load("certs".as_ref(), &PeerIdentity::Client("alice".into()))?;
//! let client = ClientEndpoint::bind("127.0.0.1:0".parse()?, &credentials, 42, TransportConfig::default())?;
//! let node1 = client.session(NodeId(1), "127.0.0.1:7001".parse()?);
//! match node1.request(Bytes::from_static(b"get x"), Duration::from_secs(1)).await {
//!     Ok(response) => println!("ok {response:?}"),
//!     Err(e) if e.is_definite() => println!("fail: {e}"),
//!     Err(e) => println!("info (may have happened): {e}"),
//! }
//! # Ok(())
//! # }
//! ```

mod backoff;
mod certs;
mod client;
mod codes;
mod config;
mod dial;
mod error;
mod frame;
mod hello;
mod identity;
mod link;
mod notice;
mod tls;
mod transport;

/// A node's id, as named in its certificate (`node-<id>`): the Raft core's type, shared by every crate.
pub use raft::NodeId;

pub use backoff::Backoff;
pub use certs::{
    generate_cluster_certs, CertAuthority, CertFiles, CertValidity, ClusterCertSpec, Credentials,
    IssuedCert, NodeSpec, CERT_FILE_MODE, KEY_FILE_MODE, VALIDITY_BACKDATE_DEFAULT,
    VALIDITY_LIFETIME_DEFAULT,
};
pub use client::{ClientEndpoint, ClientSession};
pub use codes::{
    CLOSE_LINK_REMOVED, CLOSE_PROTOCOL, CLOSE_REFUSED, CLOSE_REPLACED, CLOSE_SHUTDOWN,
    RESET_MALFORMED, RESET_NOT_ACCEPTING, RESET_NO_RESPONSE, RESET_OVERLOADED, RESET_TOO_LARGE,
};
pub use config::TransportConfig;
pub use error::{
    CertError, ConnectError, EndpointError, FrameError, IdentityError, IndeterminateReason,
    NotSentReason, RejectReason, RequestError, SendError,
};
pub use frame::{
    encode_frame, frame_to_bytes, FrameDecoder, FRAME_BYTES_LIMIT, FRAME_HEADER_BYTES,
};
pub use hello::{
    Hello, HelloAck, HelloDecodeError, HelloKind, HelloStatus, ANY_NODE, PROTOCOL_VERSION,
};
pub use identity::{
    is_valid_client_name, PeerIdentity, CLIENT_NAME_BYTES_MAX, CLIENT_NAME_PREFIX, NODE_NAME_PREFIX,
};
pub use link::PeerLinkStats;
pub use notice::PeerNotice;
pub use tls::{CLIENT_ALPN, PEER_ALPN};
pub use transport::{Inbox, IncomingRequest, PeerFrame, Responder, Transport, TransportStats};
