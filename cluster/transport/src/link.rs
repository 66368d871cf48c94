//! The outgoing link to one peer: a task that keeps one confirmed connection up and drains a bounded queue
//! into one long-lived stream, many frames per write.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use quinn::{Connection, Endpoint, SendStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::backoff::{Backoff, SplitMix64};
use crate::codes::CLOSE_LINK_REMOVED;
use crate::config::TransportConfig;
use crate::dial::dial;
use crate::error::ConnectError;
use crate::error::SendError;
use crate::frame::encode_frame;
use crate::hello::{Hello, HelloKind, HelloStatus, PROTOCOL_VERSION};
use crate::notice::PeerNotice;
use crate::NodeId;

/// Counters and state of one outgoing link, readable at any time.
#[derive(Debug, Default)]
pub(crate) struct LinkCounters {
    pub(crate) connected: AtomicBool,
    pub(crate) frames_sent: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) frames_dropped: AtomicU64,
    pub(crate) frames_lost: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

/// A snapshot of one outgoing peer link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLinkStats {
    /// Address dialled.
    pub addr: SocketAddr,
    /// A confirmed connection is up.
    pub connected: bool,
    /// Frames written to the stream (QUIC then delivers them unless the connection dies).
    pub frames_sent: u64,
    /// Writes, each carrying one or more frames.
    pub batches_sent: u64,
    /// Bytes written, length prefixes included.
    pub bytes_sent: u64,
    /// Frames refused by [`Transport::send`](crate::Transport::send) because the queue was full.
    pub frames_dropped: u64,
    /// Frames taken from the queue whose write failed because the connection died.
    pub frames_lost: u64,
    /// Connections confirmed by a hello.
    pub connects: u64,
    /// Attempts that failed (unreachable, refused, timed out...).
    pub connect_failures: u64,
    /// The last connection error, if any.
    pub last_error: Option<String>,
}

/// Handle of a running link; dropping it stops the task.
#[derive(Debug)]
pub(crate) struct PeerLink {
    pub(crate) addr: SocketAddr,
    queue: mpsc::Sender<Bytes>,
    counters: Arc<LinkCounters>,
    task: JoinHandle<()>,
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a link task needs; it deliberately holds no reference to the transport itself.
pub(crate) struct LinkSetup {
    pub(crate) local_id: NodeId,
    pub(crate) peer_id: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) cluster_id: u64,
    pub(crate) endpoint: Endpoint,
    pub(crate) client_config: quinn::ClientConfig,
    pub(crate) config: Arc<TransportConfig>,
    /// Where a refusal that concerns the node itself (it was removed) is reported.
    pub(crate) notices: mpsc::Sender<PeerNotice>,
}

impl PeerLink {
    /// Starts the link task (must be called inside a tokio runtime).
    pub(crate) fn start(setup: LinkSetup) -> PeerLink {
        let (queue, receiver) = mpsc::channel(setup.config.peer_queue_frames);
        let counters = Arc::new(LinkCounters::default());
        let addr = setup.addr;
        let task = tokio::spawn(run_link(setup, receiver, counters.clone()));
        PeerLink {
            addr,
            queue,
            counters,
            task,
        }
    }

    /// Queues a frame, or drops and counts it if the queue is full.
    pub(crate) fn send(&self, peer: NodeId, payload: Bytes) -> Result<(), SendError> {
        match self.queue.try_send(payload) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) | Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                Err(SendError::QueueFull { peer })
            }
        }
    }

    pub(crate) fn stats(&self) -> PeerLinkStats {
        let c = &self.counters;
        PeerLinkStats {
            addr: self.addr,
            connected: c.connected.load(Ordering::Relaxed),
            frames_sent: c.frames_sent.load(Ordering::Relaxed),
            batches_sent: c.batches_sent.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            frames_dropped: c.frames_dropped.load(Ordering::Relaxed),
            frames_lost: c.frames_lost.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
            connect_failures: c.connect_failures.load(Ordering::Relaxed),
            last_error: c.last_error.lock().expect("link stats lock").clone(),
        }
    }
}

fn jitter_seed(seed: u64, local: NodeId, peer: NodeId) -> u64 {
    let mut mix = SplitMix64(seed ^ local.0.rotate_left(32) ^ peer.0);
    mix.next()
}

async fn run_link(setup: LinkSetup, mut queue: mpsc::Receiver<Bytes>, counters: Arc<LinkCounters>) {
    let config = setup.config.clone();
    let mut backoff = Backoff::new(
        config.reconnect_backoff_min,
        config.reconnect_backoff_max,
        jitter_seed(config.reconnect_jitter_seed, setup.local_id, setup.peer_id),
    );
    let hello = Hello {
        version: PROTOCOL_VERSION,
        kind: HelloKind::Peer,
        cluster_id: setup.cluster_id,
        from: setup.local_id,
        to: setup.peer_id,
    };
    loop {
        match dial(
            &setup.endpoint,
            &setup.client_config,
            setup.addr,
            hello,
            config.connect_timeout,
        )
        .await
        {
            Ok((connection, send, _recv)) => {
                backoff.reset();
                counters.connects.fetch_add(1, Ordering::Relaxed);
                counters.connected.store(true, Ordering::Relaxed);
                tracing::info!(peer = setup.peer_id.0, addr = %setup.addr, "peer link up");
                let end = pump(&config, &connection, send, &mut queue, &counters).await;
                counters.connected.store(false, Ordering::Relaxed);
                match end {
                    PumpEnd::QueueClosed => {
                        connection.close(CLOSE_LINK_REMOVED, b"link removed");
                        return;
                    }
                    PumpEnd::Failed(reason) => {
                        tracing::info!(peer = setup.peer_id.0, addr = %setup.addr, %reason, "peer link down");
                        *counters.last_error.lock().expect("link stats lock") = Some(reason);
                    }
                }
            }
            Err(error) => {
                if let ConnectError::HelloRefused {
                    status: HelloStatus::Removed { at_index },
                    ..
                } = error
                {
                    tracing::warn!(peer = setup.peer_id.0, addr = %setup.addr, at_index, "the peer says this node was removed from the cluster");
                    let _ = setup.notices.try_send(PeerNotice::Removed {
                        by: setup.peer_id,
                        at_index,
                    });
                }
                counters.connect_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = setup.peer_id.0, addr = %setup.addr, %error, "peer connect failed");
                *counters.last_error.lock().expect("link stats lock") = Some(error.to_string());
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

enum PumpEnd {
    /// The link was removed: no sender is left.
    QueueClosed,
    /// The connection or stream failed.
    Failed(String),
}

/// Writes queued frames until the connection fails or the queue closes. Each write takes the first waiting frame
/// and whatever else is already queued, up to the batch limits.
async fn pump(
    config: &TransportConfig,
    connection: &Connection,
    mut send: SendStream,
    queue: &mut mpsc::Receiver<Bytes>,
    counters: &LinkCounters,
) -> PumpEnd {
    let mut batch = BytesMut::new();
    loop {
        let first = tokio::select! {
            biased;
            error = connection.closed() => return PumpEnd::Failed(error.to_string()),
            frame = queue.recv() => match frame {
                Some(frame) => frame,
                None => return PumpEnd::QueueClosed,
            },
        };
        encode_frame(&mut batch, &first);
        let mut frames: u64 = 1;
        while (frames as usize) < config.batch_frames_max && batch.len() < config.batch_bytes_max {
            match queue.try_recv() {
                Ok(frame) => {
                    encode_frame(&mut batch, &frame);
                    frames += 1;
                }
                Err(_) => break,
            }
        }
        let bytes = batch.split().freeze();
        let len = bytes.len() as u64;
        if let Err(error) = send.write_chunk(bytes).await {
            counters.frames_lost.fetch_add(frames, Ordering::Relaxed);
            return PumpEnd::Failed(error.to_string());
        }
        counters.frames_sent.fetch_add(frames, Ordering::Relaxed);
        counters.batches_sent.fetch_add(1, Ordering::Relaxed);
        counters.bytes_sent.fetch_add(len, Ordering::Relaxed);
    }
}
