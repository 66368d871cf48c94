//! The client side: connect to any node with a client certificate and send requests, one stream each.
//!
//! Every failure says whether the request may have taken effect ([`RequestError::is_definite`]): a checker must
//! record a definite failure as `fail` and anything else as `info`.

use std::fmt;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, Endpoint, ReadError, VarInt, WriteError};
use tokio::time::{timeout_at, Instant};

use crate::certs::Credentials;
use crate::codes::{
    CLOSE_SHUTDOWN, RESET_MALFORMED, RESET_NOT_ACCEPTING, RESET_OVERLOADED, RESET_TOO_LARGE,
};
use crate::config::TransportConfig;
use crate::dial::dial;
use crate::error::{
    ConnectError, EndpointError, FrameError, IndeterminateReason, NotSentReason, RejectReason,
    RequestError,
};
use crate::frame::{frame_to_bytes, read_frame};
use crate::hello::{Hello, HelloKind, ANY_NODE, PROTOCOL_VERSION};
use crate::tls::{self, CLIENT_ALPN};
use crate::NodeId;

/// A client's QUIC endpoint: one UDP socket from which sessions to any number of nodes are opened.
#[derive(Clone)]
pub struct ClientEndpoint {
    endpoint: Endpoint,
    client_config: quinn::ClientConfig,
    config: Arc<TransportConfig>,
    cluster_id: u64,
}

impl fmt::Debug for ClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientEndpoint")
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

impl ClientEndpoint {
    /// Binds a client socket at `bind` (e.g. `127.0.0.1:0`). Must be called inside a tokio runtime.
    pub fn bind(
        bind: SocketAddr,
        credentials: &Credentials,
        cluster_id: u64,
        config: TransportConfig,
    ) -> Result<ClientEndpoint, EndpointError> {
        config.validate()?;
        let client_config = tls::client_config(credentials, CLIENT_ALPN, &config)?;
        let socket =
            UdpSocket::bind(bind).map_err(|source| EndpointError::Bind { addr: bind, source })?;
        let endpoint = Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| EndpointError::Endpoint { addr: bind, source })?;
        Ok(ClientEndpoint {
            endpoint,
            client_config,
            config: Arc::new(config),
            cluster_id,
        })
    }

    /// A session with whichever cluster node answers at `addr`: its certificate must be signed by the cluster
    /// CA, be a node certificate, and name `addr`'s IP. For tools that know addresses but not ids.
    pub fn session_any_node(&self, addr: SocketAddr) -> ClientSession {
        self.session(ANY_NODE, addr)
    }

    /// A session with node `node` at `addr`. It connects lazily, on [`ClientSession::connect`] or the first request.
    pub fn session(&self, node: NodeId, addr: SocketAddr) -> ClientSession {
        ClientSession {
            inner: Arc::new(SessionInner {
                endpoint: self.clone(),
                node,
                addr,
                connection: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .expect("bound endpoint has a local address")
    }

    /// Closes every session's connection and waits (bounded by the idle timeout) until the nodes are told.
    pub async fn close(&self) {
        self.endpoint.close(CLOSE_SHUTDOWN, b"client closing");
        let _ = tokio::time::timeout(self.config.idle_timeout, self.endpoint.wait_idle()).await;
    }
}

/// Requests to one node over one connection, re-established when it dies. Cheap to clone and share between tasks.
#[derive(Debug, Clone)]
pub struct ClientSession {
    inner: Arc<SessionInner>,
}

#[derive(Debug)]
struct SessionInner {
    endpoint: ClientEndpoint,
    node: NodeId,
    addr: SocketAddr,
    /// The confirmed connection, if any.
    connection: Mutex<Option<Connection>>,
    /// Serialises connection attempts so concurrent requests share one.
    connecting: tokio::sync::Mutex<()>,
}

impl ClientSession {
    /// The node this session talks to ([`ANY_NODE`] for [`ClientEndpoint::session_any_node`]).
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// The node's address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Establishes (or confirms) the connection now. A certificate the node refuses is reported here.
    pub async fn connect(&self) -> Result<(), ConnectError> {
        self.connection().await.map(drop)
    }

    /// True while a confirmed connection is open.
    pub fn is_connected(&self) -> bool {
        self.cached().is_some()
    }

    fn cached(&self) -> Option<Connection> {
        let slot = self.inner.connection.lock().expect("session lock");
        slot.as_ref()
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }

    async fn connection(&self) -> Result<Connection, ConnectError> {
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let _attempt = self.inner.connecting.lock().await;
        // Another request may have connected while we waited.
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let endpoint = &self.inner.endpoint;
        let hello = Hello {
            version: PROTOCOL_VERSION,
            kind: HelloKind::Client,
            cluster_id: endpoint.cluster_id,
            from: ANY_NODE,
            to: self.inner.node,
        };
        let (connection, _send, _recv) = dial(
            &endpoint.endpoint,
            &endpoint.client_config,
            self.inner.addr,
            hello,
            endpoint.config.connect_timeout,
        )
        .await?;
        *self.inner.connection.lock().expect("session lock") = Some(connection.clone());
        Ok(connection)
    }

    /// Sends one request and waits for its response, all within `timeout`.
    ///
    /// On error, [`RequestError::is_definite`] tells whether the request certainly had no effect.
    pub async fn request(&self, payload: Bytes, timeout: Duration) -> Result<Bytes, RequestError> {
        let node = self.inner.node;
        let addr = self.inner.addr;
        let timeout_ms = timeout.as_millis() as u64;
        let not_sent = |reason| RequestError::NotSent { node, addr, reason };
        let rejected = |reason| RequestError::Rejected { node, addr, reason };
        let indeterminate = |reason| RequestError::Indeterminate { node, addr, reason };
        let max = self.inner.endpoint.config.frame_bytes_max;
        if payload.len() > max {
            return Err(not_sent(NotSentReason::TooLarge {
                len: payload.len(),
                max,
            }));
        }
        let deadline = Instant::now() + timeout;

        let connection = match timeout_at(deadline, self.connection()).await {
            Err(_elapsed) => return Err(not_sent(NotSentReason::Timeout { timeout_ms })),
            Ok(Err(error)) => return Err(not_sent(NotSentReason::Connect(error))),
            Ok(Ok(connection)) => connection,
        };
        let (mut send, mut recv) = match timeout_at(deadline, connection.open_bi()).await {
            Err(_elapsed) => return Err(not_sent(NotSentReason::Timeout { timeout_ms })),
            Ok(Err(error)) => return Err(not_sent(NotSentReason::ConnectionLost(error))),
            Ok(Ok(streams)) => streams,
        };
        let wire = frame_to_bytes(&payload);
        // Until the first write returns Ok not one byte of the request has been handed to QUIC.
        let written = match timeout_at(deadline, send.write(&wire)).await {
            Err(_elapsed) => {
                let _ = send.reset(VarInt::from_u32(0));
                return Err(not_sent(NotSentReason::Timeout { timeout_ms }));
            }
            Ok(Err(WriteError::ConnectionLost(error))) => {
                return Err(not_sent(NotSentReason::ConnectionLost(error)))
            }
            Ok(Err(WriteError::Stopped(code))) => {
                return Err(stopped_or_reset(code, rejected, indeterminate))
            }
            Ok(Err(error)) => return Err(not_sent(NotSentReason::Stream(error))),
            Ok(Ok(written)) => written,
        };
        // From here on the request may reach the node: failures are indeterminate unless the node says otherwise.
        match timeout_at(deadline, send.write_all(&wire[written..])).await {
            Err(_elapsed) => {
                return Err(indeterminate(IndeterminateReason::Timeout { timeout_ms }))
            }
            Ok(Err(WriteError::Stopped(code))) => {
                return Err(stopped_or_reset(code, rejected, indeterminate))
            }
            Ok(Err(WriteError::ConnectionLost(error))) => {
                return Err(indeterminate(IndeterminateReason::ConnectionLost(error)))
            }
            Ok(Err(error)) => {
                return Err(indeterminate(IndeterminateReason::BadResponse(
                    FrameError::Write(error),
                )))
            }
            Ok(Ok(())) => {}
        }
        let _ = send.finish();
        match timeout_at(deadline, read_frame(&mut recv, max)).await {
            Err(_elapsed) => Err(indeterminate(IndeterminateReason::Timeout { timeout_ms })),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(FrameError::Read(ReadError::Reset(code)))) => {
                Err(stopped_or_reset(code, rejected, indeterminate))
            }
            Ok(Err(FrameError::Read(ReadError::ConnectionLost(error)))) => {
                Err(indeterminate(IndeterminateReason::ConnectionLost(error)))
            }
            Ok(Err(error)) => Err(indeterminate(IndeterminateReason::BadResponse(error))),
        }
    }
}

/// A stream reset or stop by the node: its code tells whether the request was refused before processing.
fn stopped_or_reset(
    code: VarInt,
    rejected: impl FnOnce(RejectReason) -> RequestError,
    indeterminate: impl FnOnce(IndeterminateReason) -> RequestError,
) -> RequestError {
    match code {
        c if c == RESET_OVERLOADED => rejected(RejectReason::Overloaded),
        c if c == RESET_TOO_LARGE => rejected(RejectReason::TooLarge),
        c if c == RESET_NOT_ACCEPTING => rejected(RejectReason::NotAccepting),
        c if c == RESET_MALFORMED => rejected(RejectReason::Malformed),
        _ => indeterminate(IndeterminateReason::NoResponse),
    }
}
