//! Error types, one enum per operation.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::hello::HelloStatus;
use crate::identity::PeerIdentity;
use crate::NodeId;

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announced more bytes than the configured limit; nothing of it was buffered.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced payload length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame after {buffered} bytes")]
    Truncated {
        /// Bytes of the incomplete frame that did arrive.
        buffered: usize,
    },
    /// Reading the QUIC stream failed.
    #[error("reading stream: {0}")]
    Read(#[source] quinn::ReadError),
    /// Writing the QUIC stream failed.
    #[error("writing stream: {0}")]
    Write(#[source] quinn::WriteError),
}

/// The identity in a certificate could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The connection carries no certificate (cannot happen with the verifiers this crate installs).
    #[error("no certificate was presented")]
    NoCertificate,
    /// The certificate is not parseable X.509.
    #[error("certificate is not valid X.509: {0}")]
    Parse(String),
    /// Neither a SAN nor the CN names `node-<id>` or `client-<name>`.
    #[error("certificate names no node-<id> or client-<name> identity")]
    Missing,
    /// The certificate names two different identities.
    #[error("certificate names two identities: {first} and {second}")]
    Ambiguous {
        /// One identity found.
        first: PeerIdentity,
        /// Another, different identity found.
        second: PeerIdentity,
    },
}

/// Making, writing or loading certificates and keys failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused to build or sign a certificate.
    #[error("generating {what}: {source}")]
    Generate {
        /// What was being made, e.g. `certificate for node 3`.
        what: String,
        /// The rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// A file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// `reading`, `writing`, `creating directory`...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A target file exists; key material is never overwritten.
    #[error("{} already exists: refusing to overwrite certificates or keys", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A PEM file holds nothing usable of the expected kind.
    #[error("{}: {detail}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A client name would not make a valid `client-<name>` DNS name.
    #[error("invalid client name {name:?}: use 1 to 40 characters of a-z, 0-9 and '-', not starting or ending with '-'")]
    InvalidClientName {
        /// The name given.
        name: String,
    },
    /// The same node id was listed twice.
    #[error("node id {} is listed twice", .0.0)]
    DuplicateNode(NodeId),
    /// The same client name was listed twice.
    #[error("client name {0:?} is listed twice")]
    DuplicateClient(String),
    /// `not_before` is not earlier than `not_after`.
    #[error("invalid validity window: not_before must be earlier than not_after")]
    InvalidValidity,
    /// The identity in a certificate file could not be determined.
    #[error("{}: {source}", path.display())]
    Identity {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        #[source]
        source: IdentityError,
    },
    /// The certificate file names another identity than the one asked for.
    #[error("{}: certificate is for {found}, expected {expected}", path.display())]
    WrongIdentity {
        /// The certificate file.
        path: PathBuf,
        /// Identity in the file.
        found: PeerIdentity,
        /// Identity asked for.
        expected: PeerIdentity,
    },
}

/// Setting up an endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The UDP socket could not be bound.
    #[error("binding UDP socket {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint could not be created on the socket.
    #[error("creating QUIC endpoint on {addr}: {source}")]
    Endpoint {
        /// The socket address.
        addr: SocketAddr,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// rustls rejected the configuration (for example a key that does not match its certificate).
    #[error("building TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client certificate verifier could not be built (for example an unusable CA certificate).
    #[error("building client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// QUIC refused the TLS configuration.
    #[error("QUIC refused the TLS configuration: {0}")]
    QuicTls(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// A configuration value is out of range.
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// The credentials do not belong to a node.
    #[error("node credentials hold a certificate for {0}, not for a node")]
    NotANode(PeerIdentity),
}

/// Sending a peer frame failed; the frame was not queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// No link to this node was added with `add_peer`.
    #[error("node {} is not a peer of this node", .0.0)]
    UnknownPeer(NodeId),
    /// The bounded queue to the peer is full (it is down or slow); the frame was dropped and counted.
    #[error("queue to node {} is full: frame dropped", .peer.0)]
    QueueFull {
        /// The destination.
        peer: NodeId,
    },
    /// The frame exceeds the configured limit.
    #[error("frame of {len} bytes to node {} exceeds the limit of {max} bytes", .peer.0)]
    TooLarge {
        /// The destination.
        peer: NodeId,
        /// Payload length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
}

/// Establishing a confirmed connection (QUIC handshake plus hello exchange) failed.
///
/// Nothing but the hello was sent on the connection, so no request or peer frame was delivered.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// quinn refused to start the connection (for example the endpoint is closing).
    #[error("cannot start a connection to {addr}: {source}")]
    Start {
        /// Remote address.
        addr: SocketAddr,
        /// quinn's reason.
        #[source]
        source: quinn::ConnectError,
    },
    /// No confirmed connection within the connect timeout (peer down or partitioned).
    #[error("connecting to {addr} timed out after {timeout_ms} ms")]
    Timeout {
        /// Remote address.
        addr: SocketAddr,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The remote side refused us: TLS rejected our certificate (with TLS 1.3 this shows on first use), or
    /// its hello answer refused us (not a member, other cluster...).
    #[error("{addr} refused the connection: {reason}")]
    Refused {
        /// Remote address.
        addr: SocketAddr,
        /// What the remote side said.
        reason: String,
    },
    /// The hello was answered with a refusal status.
    #[error("{addr} refused the hello: {status}")]
    HelloRefused {
        /// Remote address.
        addr: SocketAddr,
        /// The status in the answer.
        status: HelloStatus,
    },
    /// The connection failed for another reason (our own verification of the server, loss, reset...).
    #[error("connection to {addr} failed: {source}")]
    Connection {
        /// Remote address.
        addr: SocketAddr,
        /// quinn's reason.
        #[source]
        source: quinn::ConnectionError,
    },
    /// The hello exchange broke the protocol.
    #[error("hello with {addr} failed: {detail}")]
    Protocol {
        /// Remote address.
        addr: SocketAddr,
        /// What was wrong.
        detail: String,
    },
    /// The remote side's certificate names someone else than the node we dialled.
    #[error("{addr} presented {found}, expected node {}", .expected.0)]
    WrongIdentity {
        /// Remote address.
        addr: SocketAddr,
        /// Identity found.
        found: PeerIdentity,
        /// Node id expected.
        expected: NodeId,
    },
}

/// Why a client request definitely did not reach the node's application.
#[derive(Debug, thiserror::Error)]
pub enum NotSentReason {
    /// No confirmed connection could be established.
    #[error(transparent)]
    Connect(ConnectError),
    /// The connection was found dead before any byte of the request was written.
    #[error("connection lost before sending: {0}")]
    ConnectionLost(#[source] quinn::ConnectionError),
    /// The new stream failed before any byte of the request was written.
    #[error("stream failed before sending: {0}")]
    Stream(#[source] quinn::WriteError),
    /// The request timeout expired before any byte of the request was written.
    #[error("timed out after {timeout_ms} ms before sending")]
    Timeout {
        /// The request timeout.
        timeout_ms: u64,
    },
    /// The request exceeds the configured frame limit.
    #[error("request of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Request length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
}

/// Why the node refused a request without handing it to its application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The node's request queue was full.
    #[error("node overloaded")]
    Overloaded,
    /// The request exceeded the node's frame limit.
    #[error("request too large for the node")]
    TooLarge,
    /// The node's application no longer takes requests (shutting down).
    #[error("node not accepting requests")]
    NotAccepting,
    /// The request frame arrived malformed or incomplete.
    #[error("request malformed or incomplete")]
    Malformed,
}

/// Why the outcome of a sent request is unknown: it may or may not have been applied.
#[derive(Debug, thiserror::Error)]
pub enum IndeterminateReason {
    /// The timeout expired after (part of) the request was sent.
    #[error("no response within {timeout_ms} ms")]
    Timeout {
        /// The request timeout.
        timeout_ms: u64,
    },
    /// The connection died after (part of) the request was sent.
    #[error("connection lost after sending: {0}")]
    ConnectionLost(#[source] quinn::ConnectionError),
    /// The node's application dropped the request without answering.
    #[error("the node dropped the request without answering")]
    NoResponse,
    /// The response could not be read.
    #[error("bad response: {0}")]
    BadResponse(#[source] FrameError),
}

/// A client request failed. [`RequestError::is_definite`] tells a certain failure from an unknown outcome.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request definitely did not reach the node's application.
    #[error("request to {} at {addr} not sent: {reason}", node_label(*.node))]
    NotSent {
        /// The node.
        node: NodeId,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        #[source]
        reason: NotSentReason,
    },
    /// The node received the request but refused it before its application saw it.
    #[error("request to {} at {addr} rejected: {reason}", node_label(*.node))]
    Rejected {
        /// The node.
        node: NodeId,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        #[source]
        reason: RejectReason,
    },
    /// The request was sent but no response came: it may or may not have taken effect.
    #[error("request to {} at {addr} has an unknown outcome: {reason}", node_label(*.node))]
    Indeterminate {
        /// The node.
        node: NodeId,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        #[source]
        reason: IndeterminateReason,
    },
}

impl RequestError {
    /// True when the request certainly had no effect (a Jepsen `fail`); false when it may have (`info`).
    pub fn is_definite(&self) -> bool {
        match self {
            RequestError::NotSent { .. } | RequestError::Rejected { .. } => true,
            RequestError::Indeterminate { .. } => false,
        }
    }
}

/// "node 3", or "the node" for a request addressed to whichever node answers at an address.
fn node_label(node: NodeId) -> String {
    if node == crate::hello::ANY_NODE {
        "the node".to_string()
    } else {
        format!("node {}", node.0)
    }
}
