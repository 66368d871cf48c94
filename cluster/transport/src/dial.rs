//! Dialling a node: QUIC handshake, then the hello exchange that confirms the connection.

use std::net::SocketAddr;
use std::time::Duration;

use quinn::{Connection, ConnectionError, Endpoint, ReadError, RecvStream, SendStream, WriteError};

use crate::error::{ConnectError, FrameError};
use crate::frame::{frame_to_bytes, read_frame};
use crate::hello::{Hello, HelloAck, HelloStatus, ACK_BYTES, ANY_NODE, PROTOCOL_VERSION};
use crate::identity::PeerIdentity;
use crate::NodeId;

/// True for QUIC error codes that carry a TLS alert (0x100-0x1ff), i.e. a certificate or handshake refusal.
fn is_tls_alert(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

/// Turns a connection failure into a [`ConnectError`], telling a refusal by the remote side from the rest.
pub(crate) fn classify_connection_error(addr: SocketAddr, error: ConnectionError) -> ConnectError {
    match &error {
        ConnectionError::ConnectionClosed(close) if is_tls_alert(close.error_code) => {
            ConnectError::Refused {
                addr,
                reason: close.to_string(),
            }
        }
        ConnectionError::ApplicationClosed(close) => ConnectError::Refused {
            addr,
            reason: format!(
                "closed with code {}: {}",
                close.error_code,
                String::from_utf8_lossy(&close.reason)
            ),
        },
        _ => ConnectError::Connection {
            addr,
            source: error,
        },
    }
}

fn classify_frame_error(addr: SocketAddr, error: FrameError) -> ConnectError {
    match error {
        FrameError::Read(ReadError::ConnectionLost(e))
        | FrameError::Write(WriteError::ConnectionLost(e)) => classify_connection_error(addr, e),
        other => ConnectError::Protocol {
            addr,
            detail: other.to_string(),
        },
    }
}

/// Connects to node `node` at `addr` and runs the hello exchange, all within `connect_timeout`.
///
/// The TLS server name is `node-<node>`, so rustls checks that the server's certificate names the node we mean.
/// Returns the connection and the two halves of the hello stream (a peer link keeps writing frames on the send
/// half). Nothing but the hello has been sent when this returns an error.
pub(crate) async fn dial(
    endpoint: &Endpoint,
    client_config: &quinn::ClientConfig,
    addr: SocketAddr,
    hello: Hello,
    connect_timeout: Duration,
) -> Result<(Connection, SendStream, RecvStream), ConnectError> {
    let node = hello.to;
    // Without a node id to expect, the node's certificate must name the address we dial (its IP SAN).
    let server_name = if node == ANY_NODE {
        addr.ip().to_string()
    } else {
        PeerIdentity::Node(node).dns_name()
    };
    let connecting = endpoint
        .connect_with(client_config.clone(), addr, &server_name)
        .map_err(|source| ConnectError::Start { addr, source })?;
    let attempt = async {
        let connection = connecting
            .await
            .map_err(|e| classify_connection_error(addr, e))?;
        let (send, recv) = exchange_hello(&connection, addr, hello).await?;
        check_server_identity(&connection, addr, node)?;
        Ok((connection, send, recv))
    };
    match tokio::time::timeout(connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ConnectError::Timeout {
            addr,
            timeout_ms: connect_timeout.as_millis() as u64,
        }),
    }
}

async fn exchange_hello(
    connection: &Connection,
    addr: SocketAddr,
    hello: Hello,
) -> Result<(SendStream, RecvStream), ConnectError> {
    let (mut send, mut recv) = connection
        .open_bi()
        .await
        .map_err(|e| classify_connection_error(addr, e))?;
    send.write_all(&frame_to_bytes(&hello.encode()))
        .await
        .map_err(|e| classify_frame_error(addr, FrameError::Write(e)))?;
    // With TLS 1.3 a refusal of our certificate shows up here, as the connection closing with a TLS alert.
    let raw = read_frame(&mut recv, ACK_BYTES)
        .await
        .map_err(|e| classify_frame_error(addr, e))?;
    let ack = HelloAck::decode(&raw).map_err(|e| ConnectError::Protocol {
        addr,
        detail: e.to_string(),
    })?;
    if ack.status != HelloStatus::Accepted {
        connection.close(
            crate::codes::CLOSE_REFUSED,
            ack.status.to_string().as_bytes(),
        );
        return Err(ConnectError::HelloRefused {
            addr,
            status: ack.status,
        });
    }
    if ack.version != PROTOCOL_VERSION
        || ack.cluster_id != hello.cluster_id
        || (hello.to != ANY_NODE && ack.node_id != hello.to)
    {
        return Err(ConnectError::Protocol {
            addr,
            detail: format!(
                "ack from node {} of cluster {} (version {}) does not answer our hello to node {} of cluster {}",
                ack.node_id, ack.cluster_id, ack.version, hello.to, hello.cluster_id
            ),
        });
    }
    Ok((send, recv))
}

/// rustls already checked the server name; this repeats the check on the parsed identity as a second guard.
fn check_server_identity(
    connection: &Connection,
    addr: SocketAddr,
    node: NodeId,
) -> Result<(), ConnectError> {
    let identity = PeerIdentity::of_connection(connection).map_err(|e| ConnectError::Protocol {
        addr,
        detail: format!("server certificate: {e}"),
    })?;
    let acceptable = match identity {
        PeerIdentity::Node(found) => node == ANY_NODE || found == node,
        PeerIdentity::Client(_) => false,
    };
    if !acceptable {
        return Err(ConnectError::WrongIdentity {
            addr,
            found: identity,
            expected: node,
        });
    }
    Ok(())
}
