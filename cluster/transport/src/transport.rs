//! A node's endpoint: one UDP port for its outgoing peer links, incoming peer links and client requests.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use quinn::crypto::rustls::HandshakeData;
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::certs::Credentials;
use crate::codes::{
    CLOSE_LINK_REMOVED, CLOSE_PROTOCOL, CLOSE_REFUSED, CLOSE_REPLACED, CLOSE_SHUTDOWN,
    RESET_MALFORMED, RESET_NOT_ACCEPTING, RESET_NO_RESPONSE, RESET_OVERLOADED, RESET_TOO_LARGE,
};
use crate::config::TransportConfig;
use crate::error::{EndpointError, FrameError, SendError};
use crate::frame::{frame_to_bytes, read_frame, FrameDecoder, FRAME_HEADER_BYTES};
use crate::hello::{
    Hello, HelloAck, HelloKind, HelloStatus, ANY_NODE, HELLO_BYTES, PROTOCOL_VERSION,
};
use crate::identity::PeerIdentity;
use crate::link::{LinkSetup, PeerLink, PeerLinkStats};
use crate::notice::{PeerNotice, NOTICES_MAX};
use crate::tls::{self, CLIENT_ALPN, PEER_ALPN};
use crate::NodeId;

/// A frame from a peer, with the sender authenticated by its certificate and hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFrame {
    /// The sending node.
    pub from: NodeId,
    /// The opaque payload.
    pub payload: Bytes,
}

/// A client request waiting for the application's answer.
#[derive(Debug)]
pub struct IncomingRequest {
    /// Who sent it (a client, or a node acting as a client).
    pub identity: PeerIdentity,
    /// The opaque request.
    pub payload: Bytes,
    /// Answers it; dropping it unanswered tells the client the outcome is unknown.
    pub responder: Responder,
}

/// Sends the response to one request.
pub struct Responder {
    send: Option<SendStream>,
    recv: Option<RecvStream>,
    frame_bytes_max: usize,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("answered", &self.send.is_none())
            .finish()
    }
}

impl Responder {
    /// Sends `payload` as the response, without waiting (the write runs on its own task).
    ///
    /// A response over the frame limit is refused here; the client then sees an unknown outcome.
    pub fn respond(mut self, payload: Bytes) -> Result<(), FrameError> {
        if payload.len() > self.frame_bytes_max {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: self.frame_bytes_max,
            });
        }
        let mut send = self.send.take().expect("responder answers once");
        let recv = self.recv.take();
        tokio::spawn(async move {
            let header = Bytes::copy_from_slice(&(payload.len() as u32).to_be_bytes());
            debug_assert_eq!(header.len(), FRAME_HEADER_BYTES);
            if let Err(error) = send.write_all_chunks(&mut [header, payload]).await {
                tracing::debug!(%error, "writing response failed");
            }
            let _ = send.finish();
            drop(recv);
        });
        Ok(())
    }

    fn reject(mut self, code: VarInt) {
        if let Some(mut send) = self.send.take() {
            let _ = send.reset(code);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(mut send) = self.send.take() {
            let _ = send.reset(RESET_NO_RESPONSE);
        }
    }
}

/// Where a node's application receives what arrives.
#[derive(Debug)]
pub struct Inbox {
    /// Frames from peers, in order per sending peer.
    pub frames: mpsc::Receiver<PeerFrame>,
    /// Client requests.
    pub requests: mpsc::Receiver<IncomingRequest>,
    /// What peers said about this node when they refused its links (e.g. that it was removed).
    pub notices: mpsc::Receiver<PeerNotice>,
}

/// A snapshot of the transport's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportStats {
    /// Outgoing link per peer.
    pub peers: BTreeMap<NodeId, PeerLinkStats>,
    /// Peers with a confirmed incoming connection.
    pub incoming_peers: Vec<NodeId>,
    /// Peer frames delivered to the inbox.
    pub frames_received: u64,
    /// Payload bytes of those frames.
    pub bytes_received: u64,
    /// Incoming connections whose QUIC/TLS handshake failed (e.g. a certificate from another CA).
    pub handshakes_failed: u64,
    /// Incoming connections refused at the hello (not a member, wrong cluster, identity mismatch...).
    pub hellos_refused: u64,
    /// Incoming peer connections closed for a protocol violation (e.g. an oversized frame).
    pub protocol_errors: u64,
    /// Client requests handed to the application.
    pub requests_received: u64,
    /// Client requests refused before the application saw them (overloaded, oversized, malformed).
    pub requests_rejected: u64,
}

#[derive(Debug, Default)]
struct Counters {
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
    handshakes_failed: AtomicU64,
    hellos_refused: AtomicU64,
    protocol_errors: AtomicU64,
    requests_received: AtomicU64,
    requests_rejected: AtomicU64,
}

/// State shared with the accept loop and connection tasks.
#[derive(Debug)]
struct Shared {
    node_id: NodeId,
    cluster_id: u64,
    config: Arc<TransportConfig>,
    /// Outgoing links; their keys are also the members whose incoming links are accepted.
    peers: Mutex<HashMap<NodeId, PeerLink>>,
    /// The current confirmed incoming connection of each peer.
    incoming: Mutex<HashMap<NodeId, Connection>>,
    /// Former members, with the log index of the configuration that removed them: their hellos are refused
    /// with [`HelloStatus::Removed`] so they learn it.
    removed: Mutex<HashMap<NodeId, u64>>,
    counters: Counters,
    frames: mpsc::Sender<PeerFrame>,
    requests: mpsc::Sender<IncomingRequest>,
    notices: mpsc::Sender<PeerNotice>,
}

/// A node's transport: bind it once, add peers, send frames, and read the [`Inbox`].
#[derive(Debug)]
pub struct Transport {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    peer_client_config: quinn::ClientConfig,
    accept_task: JoinHandle<()>,
}

impl Transport {
    /// Binds the node's UDP port and starts accepting peers and clients. Must be called inside a tokio runtime.
    ///
    /// The node id is the one named by the credentials' certificate.
    pub fn bind(
        listen: SocketAddr,
        credentials: &Credentials,
        cluster_id: u64,
        config: TransportConfig,
    ) -> Result<(Transport, Inbox), EndpointError> {
        config.validate()?;
        let node_id = match credentials.identity() {
            PeerIdentity::Node(id) => *id,
            other => return Err(EndpointError::NotANode(other.clone())),
        };
        let server_config = tls::server_config(credentials, &config)?;
        let peer_client_config = tls::client_config(credentials, PEER_ALPN, &config)?;
        let socket = UdpSocket::bind(listen).map_err(|source| EndpointError::Bind {
            addr: listen,
            source,
        })?;
        let endpoint = Endpoint::new(
            tls::endpoint_config(credentials),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| EndpointError::Endpoint {
            addr: listen,
            source,
        })?;
        let (frames_tx, frames) = mpsc::channel(config.inbox_frames);
        let (requests_tx, requests) = mpsc::channel(config.inbox_requests);
        let (notices_tx, notices) = mpsc::channel(NOTICES_MAX);
        let shared = Arc::new(Shared {
            node_id,
            cluster_id,
            config: Arc::new(config),
            peers: Mutex::new(HashMap::new()),
            incoming: Mutex::new(HashMap::new()),
            removed: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            frames: frames_tx,
            requests: requests_tx,
            notices: notices_tx,
        });
        let accept_task = tokio::spawn(accept_loop(shared.clone(), endpoint.clone()));
        tracing::info!(node = node_id.0, addr = ?endpoint.local_addr().ok(), "transport bound");
        Ok((
            Transport {
                shared,
                endpoint,
                peer_client_config,
                accept_task,
            },
            Inbox {
                frames,
                requests,
                notices,
            },
        ))
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.node_id
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .expect("bound endpoint has a local address")
    }

    /// Makes `peer` a member: starts a link to `addr` and accepts its incoming link.
    ///
    /// Adding the node itself is a no-op; re-adding a peer with another address restarts its link.
    pub fn add_peer(&self, peer: NodeId, addr: SocketAddr) {
        if peer == self.shared.node_id {
            return;
        }
        let mut peers = self.shared.peers.lock().expect("peers lock");
        if peers.get(&peer).is_some_and(|link| link.addr == addr) {
            return;
        }
        let link = PeerLink::start(LinkSetup {
            local_id: self.shared.node_id,
            peer_id: peer,
            addr,
            cluster_id: self.shared.cluster_id,
            endpoint: self.endpoint.clone(),
            client_config: self.peer_client_config.clone(),
            config: self.shared.config.clone(),
            notices: self.shared.notices.clone(),
        });
        peers.insert(peer, link);
    }

    /// Records that `peer` was removed from the cluster by the configuration at log index `at_index`: once it
    /// is no longer a peer ([`Transport::remove_peer`]), its hellos are refused with [`HelloStatus::Removed`],
    /// which its transport reports as [`PeerNotice::Removed`]. Permanent, since node ids are never reused.
    pub fn mark_removed(&self, peer: NodeId, at_index: u64) {
        self.shared
            .removed
            .lock()
            .expect("removed lock")
            .insert(peer, at_index);
    }

    /// Removes `peer`: stops its link and closes its incoming connection; its frames are no longer taken.
    pub fn remove_peer(&self, peer: NodeId) {
        drop(self.shared.peers.lock().expect("peers lock").remove(&peer));
        if let Some(connection) = self
            .shared
            .incoming
            .lock()
            .expect("incoming lock")
            .remove(&peer)
        {
            connection.close(CLOSE_LINK_REMOVED, b"no longer a member");
        }
    }

    /// The current members (peers added and not removed).
    pub fn peers(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .shared
            .peers
            .lock()
            .expect("peers lock")
            .keys()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Queues a frame for `peer` without waiting. If the queue is full (peer down or slow) the frame is dropped
    /// and counted: Raft retransmits.
    pub fn send(&self, peer: NodeId, payload: Bytes) -> Result<(), SendError> {
        let max = self.shared.config.frame_bytes_max;
        if payload.len() > max {
            return Err(SendError::TooLarge {
                peer,
                len: payload.len(),
                max,
            });
        }
        match self.shared.peers.lock().expect("peers lock").get(&peer) {
            Some(link) => link.send(peer, payload),
            None => Err(SendError::UnknownPeer(peer)),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        let c = &self.shared.counters;
        let peers = self
            .shared
            .peers
            .lock()
            .expect("peers lock")
            .iter()
            .map(|(id, link)| (*id, link.stats()))
            .collect();
        let mut incoming_peers: Vec<NodeId> = self
            .shared
            .incoming
            .lock()
            .expect("incoming lock")
            .keys()
            .copied()
            .collect();
        incoming_peers.sort_unstable();
        TransportStats {
            peers,
            incoming_peers,
            frames_received: c.frames_received.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            handshakes_failed: c.handshakes_failed.load(Ordering::Relaxed),
            hellos_refused: c.hellos_refused.load(Ordering::Relaxed),
            protocol_errors: c.protocol_errors.load(Ordering::Relaxed),
            requests_received: c.requests_received.load(Ordering::Relaxed),
            requests_rejected: c.requests_rejected.load(Ordering::Relaxed),
        }
    }

    /// Stops every link, closes every connection and waits (bounded by the idle timeout) until the peers have
    /// been told, so the port can be bound again at once.
    pub async fn shutdown(self) {
        self.shared.peers.lock().expect("peers lock").clear();
        self.endpoint.close(CLOSE_SHUTDOWN, b"shutting down");
        self.accept_task.abort();
        let _ =
            tokio::time::timeout(self.shared.config.idle_timeout, self.endpoint.wait_idle()).await;
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.shared.peers.lock().expect("peers lock").clear();
        self.endpoint.close(CLOSE_SHUTDOWN, b"shutting down");
        self.accept_task.abort();
    }
}

async fn accept_loop(shared: Arc<Shared>, endpoint: Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(handle_incoming(shared.clone(), incoming));
    }
}

async fn handle_incoming(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            shared
                .counters
                .handshakes_failed
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%remote, %error, "incoming handshake failed");
            return;
        }
    };
    let identity = match PeerIdentity::of_connection(&connection) {
        Ok(identity) => identity,
        Err(error) => {
            shared
                .counters
                .hellos_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%remote, %error, "refusing connection without a usable identity");
            connection.close(CLOSE_REFUSED, b"certificate names no identity");
            return;
        }
    };
    let protocol = connection
        .handshake_data()
        .and_then(|data| data.downcast::<HandshakeData>().ok())
        .and_then(|data| data.protocol);
    let kind = match protocol.as_deref() {
        Some(PEER_ALPN) => HelloKind::Peer,
        Some(CLIENT_ALPN) => HelloKind::Client,
        _ => {
            connection.close(CLOSE_PROTOCOL, b"unknown ALPN protocol");
            return;
        }
    };
    let Some((send, recv, hello)) = accept_hello(&shared, &connection).await else {
        shared
            .counters
            .protocol_errors
            .fetch_add(1, Ordering::Relaxed);
        connection.close(CLOSE_PROTOCOL, b"no valid hello");
        return;
    };
    let status = check_hello(&shared, kind, &identity, &hello);
    let ack = HelloAck {
        version: PROTOCOL_VERSION,
        status,
        node_id: shared.node_id,
        cluster_id: shared.cluster_id,
    };
    let mut send = send;
    if send
        .write_all(&frame_to_bytes(&ack.encode()))
        .await
        .is_err()
    {
        return;
    }
    if status != HelloStatus::Accepted {
        shared
            .counters
            .hellos_refused
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(%remote, %identity, %status, "hello refused");
        let _ = send.finish();
        // Leave the ack time to arrive (the dialler closes on reading it), then close in any case.
        let _ = tokio::time::timeout(shared.config.connect_timeout, connection.closed()).await;
        connection.close(CLOSE_REFUSED, status.to_string().as_bytes());
        return;
    }
    match kind {
        HelloKind::Peer => serve_peer(shared, connection, hello.from, send, recv).await,
        HelloKind::Client => {
            let _ = send.finish();
            serve_client(shared, connection, identity).await;
        }
    }
}

async fn accept_hello(
    shared: &Shared,
    connection: &Connection,
) -> Option<(SendStream, RecvStream, Hello)> {
    let exchange = async {
        let (send, mut recv) = connection.accept_bi().await.ok()?;
        let raw = read_frame(&mut recv, HELLO_BYTES).await.ok()?;
        let hello = Hello::decode(&raw).ok()?;
        Some((send, recv, hello))
    };
    tokio::time::timeout(shared.config.connect_timeout, exchange)
        .await
        .ok()
        .flatten()
}

fn check_hello(
    shared: &Shared,
    kind: HelloKind,
    identity: &PeerIdentity,
    hello: &Hello,
) -> HelloStatus {
    if hello.version != PROTOCOL_VERSION {
        return HelloStatus::VersionMismatch;
    }
    if hello.kind != kind {
        return HelloStatus::WrongKind;
    }
    if hello.cluster_id != shared.cluster_id {
        return HelloStatus::ClusterMismatch;
    }
    // A client that knows only an address addresses its hello to ANY_NODE; peers always name the node.
    let any_node_client = kind == HelloKind::Client && hello.to == ANY_NODE;
    if hello.to != shared.node_id && !any_node_client {
        return HelloStatus::WrongNode;
    }
    match kind {
        // Clients may be clients or nodes acting as clients; the application sees the identity.
        HelloKind::Client => HelloStatus::Accepted,
        HelloKind::Peer => {
            if *identity != PeerIdentity::Node(hello.from) {
                HelloStatus::IdentityMismatch
            } else if !shared
                .peers
                .lock()
                .expect("peers lock")
                .contains_key(&hello.from)
            {
                match removed_at(shared, hello.from) {
                    Some(at_index) => HelloStatus::Removed { at_index },
                    None => HelloStatus::NotMember,
                }
            } else {
                HelloStatus::Accepted
            }
        }
    }
}

fn removed_at(shared: &Shared, peer: NodeId) -> Option<u64> {
    shared
        .removed
        .lock()
        .expect("removed lock")
        .get(&peer)
        .copied()
}

/// Reads the frames of a confirmed peer link into the inbox until the connection ends.
async fn serve_peer(
    shared: Arc<Shared>,
    connection: Connection,
    from: NodeId,
    send: SendStream,
    mut recv: RecvStream,
) {
    if let Some(old) = shared
        .incoming
        .lock()
        .expect("incoming lock")
        .insert(from, connection.clone())
    {
        old.close(CLOSE_REPLACED, b"replaced by a newer connection");
    }
    tracing::info!(peer = from.0, remote = %connection.remote_address(), "incoming peer link up");
    let mut decoder = FrameDecoder::new(shared.config.frame_bytes_max);
    let reason = 'read: loop {
        let chunk = match recv.read_chunk(usize::MAX, true).await {
            Ok(Some(chunk)) => chunk.bytes,
            Ok(None) => break 'read "stream finished".to_string(),
            Err(error) => break 'read error.to_string(),
        };
        decoder.push(&chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(payload)) => {
                    let len = payload.len() as u64;
                    if shared
                        .frames
                        .send(PeerFrame { from, payload })
                        .await
                        .is_err()
                    {
                        connection.close(CLOSE_SHUTDOWN, b"inbox closed");
                        break 'read "inbox closed".to_string();
                    }
                    shared
                        .counters
                        .frames_received
                        .fetch_add(1, Ordering::Relaxed);
                    shared
                        .counters
                        .bytes_received
                        .fetch_add(len, Ordering::Relaxed);
                }
                Ok(None) => break,
                Err(error) => {
                    shared
                        .counters
                        .protocol_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer = from.0, %error, "closing peer link");
                    connection.close(CLOSE_PROTOCOL, error.to_string().as_bytes());
                    break 'read error.to_string();
                }
            }
        }
    };
    drop(send);
    let mut incoming = shared.incoming.lock().expect("incoming lock");
    if incoming
        .get(&from)
        .is_some_and(|c| c.stable_id() == connection.stable_id())
    {
        incoming.remove(&from);
    }
    tracing::info!(peer = from.0, %reason, "incoming peer link down");
}

/// Accepts one stream per request until the client goes away.
async fn serve_client(shared: Arc<Shared>, connection: Connection, identity: PeerIdentity) {
    while let Ok((send, recv)) = connection.accept_bi().await {
        tokio::spawn(handle_request(shared.clone(), identity.clone(), send, recv));
    }
}

async fn handle_request(
    shared: Arc<Shared>,
    identity: PeerIdentity,
    send: SendStream,
    mut recv: RecvStream,
) {
    let max = shared.config.frame_bytes_max;
    let read = tokio::time::timeout(shared.config.idle_timeout, read_frame(&mut recv, max)).await;
    let mut responder = Responder {
        send: Some(send),
        recv: None,
        frame_bytes_max: max,
    };
    let payload = match read {
        Ok(Ok(payload)) => payload,
        Ok(Err(FrameError::TooLarge { .. })) => {
            shared
                .counters
                .requests_rejected
                .fetch_add(1, Ordering::Relaxed);
            let _ = recv.stop(RESET_TOO_LARGE);
            responder.reject(RESET_TOO_LARGE);
            return;
        }
        Ok(Err(FrameError::Read(quinn::ReadError::ConnectionLost(_)))) => return,
        Ok(Err(_)) | Err(_) => {
            shared
                .counters
                .requests_rejected
                .fetch_add(1, Ordering::Relaxed);
            let _ = recv.stop(RESET_MALFORMED);
            responder.reject(RESET_MALFORMED);
            return;
        }
    };
    responder.recv = Some(recv);
    let request = IncomingRequest {
        identity,
        payload,
        responder,
    };
    match shared.requests.try_send(request) {
        Ok(()) => {
            shared
                .counters
                .requests_received
                .fetch_add(1, Ordering::Relaxed);
        }
        Err(mpsc::error::TrySendError::Full(request)) => {
            shared
                .counters
                .requests_rejected
                .fetch_add(1, Ordering::Relaxed);
            request.responder.reject(RESET_OVERLOADED);
        }
        Err(mpsc::error::TrySendError::Closed(request)) => {
            shared
                .counters
                .requests_rejected
                .fetch_add(1, Ordering::Relaxed);
            request.responder.reject(RESET_NOT_ACCEPTING);
        }
    }
}
