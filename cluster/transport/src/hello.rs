//! The hello exchange that confirms a new connection before it counts as up.
//!
//! With TLS 1.3 the client finishes its handshake before the server has checked the client's certificate, so
//! `connect()` succeeds even when the server is about to refuse us. The first stream of every connection therefore
//! carries a [`Hello`] and waits for a [`HelloAck`]: a refusal by TLS or by the hello check surfaces there, before
//! any frame or request is counted as sent.
//!
//! Wire format (big-endian), each message sent as one length-prefixed frame:
//! - hello, 32 bytes: magic `RTHL`, version u16, kind u8 (1 peer, 2 client), 0 u8, cluster id u64,
//!   sender node id u64 (0 for clients), addressed node id u64.
//! - ack, 32 bytes: magic `RTAK`, version u16, status u8, 0 u8, responding node id u64, its cluster id u64,
//!   detail u64 (for status 7, "removed", the log index of the configuration that removed the sender; else 0).

use std::fmt;

use crate::NodeId;

/// Version of the hello/ack and framing protocol (2: the ack carries a detail word, and the "removed" status).
pub const PROTOCOL_VERSION: u16 = 2;

const HELLO_MAGIC: [u8; 4] = *b"RTHL";
const ACK_MAGIC: [u8; 4] = *b"RTAK";
/// Encoded size of a [`Hello`].
pub(crate) const HELLO_BYTES: usize = 32;
/// Encoded size of a [`HelloAck`].
pub(crate) const ACK_BYTES: usize = 32;

/// The `to` of a client hello that accepts whichever cluster node answers at the address (the client learns
/// its id from the verified certificate). Peer hellos never use it.
pub const ANY_NODE: NodeId = NodeId(0);

/// What kind of connection a hello opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloKind {
    /// A node's outgoing link carrying Raft frames.
    Peer,
    /// A client connection carrying requests.
    Client,
}

/// The first message on a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version of the sender.
    pub version: u16,
    /// Connection kind.
    pub kind: HelloKind,
    /// Cluster the sender belongs to.
    pub cluster_id: u64,
    /// Sender's node id (0 for clients; their identity is their certificate).
    pub from: NodeId,
    /// Node the sender means to reach.
    pub to: NodeId,
}

/// The answer of the accepting side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloAck {
    /// Protocol version of the responder.
    pub version: u16,
    /// Accepted or why not.
    pub status: HelloStatus,
    /// Responder's node id.
    pub node_id: NodeId,
    /// Responder's cluster id.
    pub cluster_id: u64,
}

/// Outcome of a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloStatus {
    /// The connection is up.
    Accepted,
    /// The protocol versions differ.
    VersionMismatch,
    /// The cluster ids differ.
    ClusterMismatch,
    /// The hello was addressed to another node id.
    WrongNode,
    /// The certificate does not name the node id claimed in the hello, or is a client certificate on a peer link.
    IdentityMismatch,
    /// The node is not a member: its frames are not taken.
    NotMember,
    /// The hello kind does not match the connection's ALPN protocol.
    WrongKind,
    /// The sender was a member but has been removed from the cluster, by the configuration at this log index
    /// (as the application told the transport with [`Transport::mark_removed`](crate::Transport::mark_removed)).
    /// Node ids are never reused, so this is final.
    Removed {
        /// The log index of the configuration that removed the sender.
        at_index: u64,
    },
}

impl HelloStatus {
    fn code(self) -> u8 {
        match self {
            HelloStatus::Removed { .. } => 7,
            HelloStatus::Accepted => 0,
            HelloStatus::VersionMismatch => 1,
            HelloStatus::ClusterMismatch => 2,
            HelloStatus::WrongNode => 3,
            HelloStatus::IdentityMismatch => 4,
            HelloStatus::NotMember => 5,
            HelloStatus::WrongKind => 6,
        }
    }

    fn detail(self) -> u64 {
        match self {
            HelloStatus::Removed { at_index } => at_index,
            _ => 0,
        }
    }

    fn from_code(code: u8, detail: u64) -> Option<HelloStatus> {
        Some(match code {
            7 => HelloStatus::Removed { at_index: detail },
            0 => HelloStatus::Accepted,
            1 => HelloStatus::VersionMismatch,
            2 => HelloStatus::ClusterMismatch,
            3 => HelloStatus::WrongNode,
            4 => HelloStatus::IdentityMismatch,
            5 => HelloStatus::NotMember,
            6 => HelloStatus::WrongKind,
            _ => return None,
        })
    }
}

impl fmt::Display for HelloStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HelloStatus::Accepted => "accepted",
            HelloStatus::VersionMismatch => "protocol version mismatch",
            HelloStatus::ClusterMismatch => "cluster id mismatch",
            HelloStatus::WrongNode => "addressed to another node id",
            HelloStatus::IdentityMismatch => "certificate does not name the claimed node",
            HelloStatus::NotMember => "not a member of the cluster",
            HelloStatus::WrongKind => "connection kind does not match the ALPN protocol",
            HelloStatus::Removed { at_index } => {
                return write!(
                    f,
                    "you were removed from the cluster at log index {at_index}"
                )
            }
        })
    }
}

/// A hello or ack could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloDecodeError {
    /// Wrong size.
    #[error("{what} has {len} bytes, expected {expected}")]
    Length {
        /// `hello` or `ack`.
        what: &'static str,
        /// Size received.
        len: usize,
        /// Size expected.
        expected: usize,
    },
    /// Wrong magic bytes: not our protocol.
    #[error("{what} has bad magic bytes")]
    Magic {
        /// `hello` or `ack`.
        what: &'static str,
    },
    /// An unknown enum value.
    #[error("{what} has unknown {field} {value}")]
    Unknown {
        /// `hello` or `ack`.
        what: &'static str,
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u8,
    },
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut raw = [0_u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(raw)
}

impl Hello {
    /// Encodes to the 32-byte wire form.
    pub fn encode(&self) -> [u8; HELLO_BYTES] {
        let mut out = [0_u8; HELLO_BYTES];
        out[0..4].copy_from_slice(&HELLO_MAGIC);
        out[4..6].copy_from_slice(&self.version.to_be_bytes());
        out[6] = match self.kind {
            HelloKind::Peer => 1,
            HelloKind::Client => 2,
        };
        out[8..16].copy_from_slice(&self.cluster_id.to_be_bytes());
        out[16..24].copy_from_slice(&self.from.0.to_be_bytes());
        out[24..32].copy_from_slice(&self.to.0.to_be_bytes());
        out
    }

    /// Decodes the wire form.
    pub fn decode(b: &[u8]) -> Result<Hello, HelloDecodeError> {
        if b.len() != HELLO_BYTES {
            return Err(HelloDecodeError::Length {
                what: "hello",
                len: b.len(),
                expected: HELLO_BYTES,
            });
        }
        if b[0..4] != HELLO_MAGIC {
            return Err(HelloDecodeError::Magic { what: "hello" });
        }
        let kind = match b[6] {
            1 => HelloKind::Peer,
            2 => HelloKind::Client,
            value => {
                return Err(HelloDecodeError::Unknown {
                    what: "hello",
                    field: "kind",
                    value,
                })
            }
        };
        Ok(Hello {
            version: u16_at(b, 4),
            kind,
            cluster_id: u64_at(b, 8),
            from: NodeId(u64_at(b, 16)),
            to: NodeId(u64_at(b, 24)),
        })
    }
}

impl HelloAck {
    /// Encodes to the 32-byte wire form.
    pub fn encode(&self) -> [u8; ACK_BYTES] {
        let mut out = [0_u8; ACK_BYTES];
        out[0..4].copy_from_slice(&ACK_MAGIC);
        out[4..6].copy_from_slice(&self.version.to_be_bytes());
        out[6] = self.status.code();
        out[8..16].copy_from_slice(&self.node_id.0.to_be_bytes());
        out[16..24].copy_from_slice(&self.cluster_id.to_be_bytes());
        out[24..32].copy_from_slice(&self.status.detail().to_be_bytes());
        out
    }

    /// Decodes the wire form.
    pub fn decode(b: &[u8]) -> Result<HelloAck, HelloDecodeError> {
        if b.len() != ACK_BYTES {
            return Err(HelloDecodeError::Length {
                what: "ack",
                len: b.len(),
                expected: ACK_BYTES,
            });
        }
        if b[0..4] != ACK_MAGIC {
            return Err(HelloDecodeError::Magic { what: "ack" });
        }
        let status =
            HelloStatus::from_code(b[6], u64_at(b, 24)).ok_or(HelloDecodeError::Unknown {
                what: "ack",
                field: "status",
                value: b[6],
            })?;
        // Bytes 24..32 carry a detail only for the status that has one: anywhere else they must be zero, so
        // every ack has exactly one encoding (found by the transport_hello fuzz target).
        if !matches!(status, HelloStatus::Removed { .. }) && u64_at(b, 24) != 0 {
            return Err(HelloDecodeError::Unknown {
                what: "ack",
                field: "detail (must be zero for this status)",
                value: b[6],
            });
        }
        Ok(HelloAck {
            version: u16_at(b, 4),
            status,
            node_id: NodeId(u64_at(b, 8)),
            cluster_id: u64_at(b, 16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_ack_with_a_detail_its_status_does_not_have_is_refused() {
        // The fuzzer's input: status 4 (identity mismatch) with non-zero bytes where only "removed" has a detail.
        let mut bytes = HelloAck {
            version: PROTOCOL_VERSION,
            status: HelloStatus::IdentityMismatch,
            node_id: NodeId(3),
            cluster_id: 1,
        }
        .encode();
        assert!(HelloAck::decode(&bytes).is_ok());
        bytes[24] = 0xff;
        assert!(HelloAck::decode(&bytes).is_err());
    }

    #[test]
    fn hello_and_ack_round_trip() {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            kind: HelloKind::Peer,
            cluster_id: 7,
            from: NodeId(1),
            to: NodeId(u64::MAX),
        };
        assert_eq!(Hello::decode(&hello.encode()), Ok(hello));
        for code in 0..=7 {
            let status = HelloStatus::from_code(code, if code == 7 { 41 } else { 0 }).unwrap();
            let ack = HelloAck {
                version: 1,
                status,
                node_id: NodeId(3),
                cluster_id: 9,
            };
            assert_eq!(HelloAck::decode(&ack.encode()), Ok(ack));
        }
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert!(matches!(
            Hello::decode(&[0; 31]),
            Err(HelloDecodeError::Length { .. })
        ));
        assert!(matches!(
            Hello::decode(&[0; 32]),
            Err(HelloDecodeError::Magic { .. })
        ));
        let mut ack = HelloAck {
            version: 1,
            status: HelloStatus::Accepted,
            node_id: NodeId(1),
            cluster_id: 1,
        }
        .encode();
        ack[6] = 200;
        assert!(matches!(
            HelloAck::decode(&ack),
            Err(HelloDecodeError::Unknown {
                field: "status",
                ..
            })
        ));
        // A hello is not an ack.
        let hello = Hello {
            version: 1,
            kind: HelloKind::Client,
            cluster_id: 1,
            from: NodeId(0),
            to: NodeId(1),
        }
        .encode();
        assert!(HelloAck::decode(&hello[..ACK_BYTES]).is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Hello::decode(&data);
            let _ = HelloAck::decode(&data);
        }
    }
}
