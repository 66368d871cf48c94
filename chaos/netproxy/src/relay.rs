//! A UDP relay with NAT semantics: the IO shell around the pure [`Decider`].
//!
//! One relay stands between a downstream endpoint (say node i) and an upstream endpoint (node j):
//! - it listens on its downstream socket, the address node i was told node j has;
//! - every distinct downstream source address gets its own upstream socket (bound to loopback, port 0) that
//!   sends to node j's real address, so node j sees one peer per source and its replies, arriving on that
//!   socket, go back to the right source;
//! - each direction is a [`Lane`]: packets from downstream travel `downstream → upstream`, replies travel
//!   `upstream → downstream`, and each lane applies the fault of its directed link from the shared
//!   [`FaultTable`].
//!
//! Packets that must wait (delay, rate limiting, reordering) go to the lane's bounded delay queue, served by
//! one task per lane that sends each packet when its time comes. Everything else is sent at once by the task
//! that received it, so a healthy relay adds one receive and one send per packet.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use crate::decide::{derive_seed, Decider, Decision, DropCause};
use crate::endpoint::{Endpoint, Link, NodeId};
use crate::fault::LinkFault;
use crate::table::{lock, FaultTable, LinkState};

/// Largest UDP payload relayed. Larger datagrams cannot exist on IPv4/IPv6 without jumbograms; the receive
/// buffer has one spare byte to detect truncation anyway.
pub const DATAGRAM_BYTES_MAX: usize = 65_535;

/// Tunables of a relay. Every queue and table is bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Seed of every random decision; each direction of each relay derives its own stream from it and the
    /// endpoints, so a run is reproducible from this one number (default 0).
    pub seed: u64,
    /// Most downstream sources served at once (default 64), each with its own upstream socket and task. A
    /// packet from a new source beyond this is dropped (`sources_full`) unless an idle source can be evicted.
    pub sources_max: usize,
    /// A source silent in both directions this long is forgotten and its upstream socket closed (default
    /// 60 s). Keep it well above the QUIC idle timeout: a source evicted while its connection lives comes
    /// back on a new upstream port, which the node sees as a NAT rebinding (QUIC migrates, but that is a
    /// fault of its own).
    pub source_idle_timeout: Duration,
    /// Most packets held per direction for delay, rate limiting or reordering (default 16384); beyond it
    /// packets are dropped (`queue_full`).
    pub held_packets_max: usize,
    /// Most payload bytes held per direction (default 32 MiB).
    pub held_bytes_max: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            seed: 0,
            sources_max: 64,
            source_idle_timeout: Duration::from_secs(60),
            held_packets_max: 16_384,
            held_bytes_max: 32 << 20,
        }
    }
}

impl RelayConfig {
    /// Checks that the bounds are usable.
    pub fn validate(&self) -> Result<(), RelayError> {
        let fail = |msg: String| Err(RelayError::Config(msg));
        if self.sources_max == 0 || self.sources_max > 4096 {
            return fail(format!(
                "sources_max {} must be in 1..=4096 (each source holds a socket and a task)",
                self.sources_max
            ));
        }
        if self.source_idle_timeout < Duration::from_millis(1) {
            return fail("source_idle_timeout must be at least 1 ms".into());
        }
        if self.held_packets_max == 0 || self.held_packets_max > 1 << 20 {
            return fail(format!(
                "held_packets_max {} must be in 1..={}",
                self.held_packets_max,
                1 << 20
            ));
        }
        if self.held_bytes_max < DATAGRAM_BYTES_MAX || self.held_bytes_max > 1 << 30 {
            return fail(format!(
                "held_bytes_max {} must be in {DATAGRAM_BYTES_MAX}..={}",
                self.held_bytes_max,
                1 << 30
            ));
        }
        Ok(())
    }
}

/// Where a relay listens and whom it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySpec {
    /// Downstream address to bind (port 0 picks one; [`Relay::local_addr`] tells which).
    pub listen: SocketAddr,
    /// Who sends to `listen`: packets from downstream travel `downstream → upstream`.
    pub downstream: Endpoint,
    /// Who is behind the relay: its replies travel `upstream → downstream`.
    pub upstream: Endpoint,
    /// The upstream endpoint's real address.
    pub upstream_addr: SocketAddr,
}

/// Statistics of one relay (the per-link packet counters live in the [`FaultTable`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStats {
    /// Downstream sources currently served.
    pub sources: u64,
    /// Sources ever opened.
    pub sources_opened: u64,
    /// Sources forgotten after idling.
    pub sources_evicted: u64,
    /// Datagrams received on an upstream socket from an address other than the upstream endpoint; ignored.
    pub foreign_packets: u64,
    /// Errors receiving from a socket (for example ICMP errors surfacing); the relay goes on.
    pub receive_errors: u64,
}

/// Why a relay or mesh could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A configuration value is out of range.
    #[error("invalid relay config: {0}")]
    Config(String),
    /// The downstream socket could not be bound.
    #[error("cannot bind relay socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A node was added to a mesh twice.
    #[error("node {} is already in the mesh", .0.0)]
    DuplicateNode(NodeId),
    /// A relay was asked for a node the mesh does not know.
    #[error("node {} is not in the mesh", .0.0)]
    UnknownNode(NodeId),
}

/// A running relay. Its tasks run on the caller's tokio runtime; [`Relay::shutdown`] stops them and closes
/// every socket (dropping the relay aborts the tasks without waiting for them).
pub struct Relay {
    spec: RelaySpec,
    stats: Arc<SharedStats>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("spec", &self.spec)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Relay {
    /// Binds the downstream socket and starts relaying with the faults of `table`.
    ///
    /// # Panics
    /// Outside a tokio runtime: the relay registers its sockets with, and spawns its tasks on, the caller's.
    pub fn start(
        spec: RelaySpec,
        table: Arc<FaultTable>,
        config: &RelayConfig,
    ) -> Result<Relay, RelayError> {
        config.validate()?;
        let bind_error = |source| RelayError::Bind {
            addr: spec.listen,
            source,
        };
        let socket = bind_udp(spec.listen).map_err(bind_error)?;
        let listen = socket.local_addr().map_err(bind_error)?;
        let spec = RelaySpec { listen, ..spec };
        let seed = |direction: u64| {
            let [a, b] = spec.downstream.seed_words();
            let [c, d] = spec.upstream.seed_words();
            derive_seed(config.seed, &[a, b, c, d, direction])
        };
        let forward_link = Link {
            from: spec.downstream,
            to: spec.upstream,
        };
        let (forward, forward_held) = Lane::new(table.clone(), forward_link, seed(0), config);
        let (backward, backward_held) =
            Lane::new(table.clone(), forward_link.reversed(), seed(1), config);
        let stats = Arc::new(SharedStats::default());
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(run_held(forward.clone(), forward_held, stop_rx.clone()));
        tasks.spawn(run_held(backward.clone(), backward_held, stop_rx.clone()));
        let downstream = Downstream {
            spec,
            config: config.clone(),
            table,
            socket: Arc::new(socket),
            forward,
            backward,
            stats: stats.clone(),
            sources: HashMap::new(),
            source_tasks: JoinSet::new(),
        };
        tasks.spawn(downstream.run(stop_rx));
        tracing::debug!(
            %listen,
            downstream = %spec.downstream,
            upstream = %spec.upstream,
            upstream_addr = %spec.upstream_addr,
            "relay started"
        );
        Ok(Relay {
            spec,
            stats,
            stop,
            tasks,
        })
    }

    /// The address downstream endpoints send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.spec.listen
    }

    /// What the relay connects, with the bound listen address.
    pub fn spec(&self) -> RelaySpec {
        self.spec
    }

    /// Sources and errors so far.
    pub fn stats(&self) -> RelayStats {
        self.stats.snapshot()
    }

    /// Stops every task of the relay and waits for them, so all its sockets are closed on return. Packets
    /// still held are dropped (not counted: the network is gone).
    pub async fn shutdown(mut self) {
        // Fails only if every task already ended.
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        tracing::debug!(listen = %self.spec.listen, "relay stopped");
    }
}

#[derive(Debug, Default)]
struct SharedStats {
    sources: AtomicU64,
    sources_opened: AtomicU64,
    sources_evicted: AtomicU64,
    foreign_packets: AtomicU64,
    receive_errors: AtomicU64,
}

impl SharedStats {
    fn snapshot(&self) -> RelayStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RelayStats {
            sources: get(&self.sources),
            sources_opened: get(&self.sources_opened),
            sources_evicted: get(&self.sources_evicted),
            foreign_packets: get(&self.foreign_packets),
            receive_errors: get(&self.receive_errors),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Binds a non-blocking UDP socket and registers it with the current runtime.
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// The loopback address of the family of `target`, port 0: where upstream sockets are bound.
fn upstream_bind_addr(target: SocketAddr) -> SocketAddr {
    let ip = match target.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, 0)
}

/// One direction of a relay: decides each packet's fate and sends it, now or later.
struct Lane {
    table: Arc<FaultTable>,
    link: Arc<LinkState>,
    core: Mutex<LaneCore>,
    held_tx: mpsc::Sender<Held>,
    /// Packets and bytes in the delay queue (channel plus heap), bounded by the config.
    held_packets: AtomicUsize,
    held_bytes: AtomicUsize,
    held_packets_max: usize,
    held_bytes_max: usize,
}

struct LaneCore {
    decider: Decider,
    /// The fault in force and its generation in the link state, re-read only when it changes.
    generation: u64,
    fault: LinkFault,
    /// Tie-breaker of the delay queue: equal departure times leave in arrival order.
    seq: u64,
}

impl Lane {
    fn new(
        table: Arc<FaultTable>,
        link: Link,
        seed: u64,
        config: &RelayConfig,
    ) -> (Arc<Lane>, mpsc::Receiver<Held>) {
        // The channel holds at most as many packets as the bound admits, so a send to it never finds it full.
        let (held_tx, held_rx) = mpsc::channel(config.held_packets_max);
        let lane = Lane {
            link: table.state(link),
            table,
            core: Mutex::new(LaneCore {
                decider: Decider::new(seed),
                generation: u64::MAX,
                fault: LinkFault::NONE,
                seq: 0,
            }),
            held_tx,
            held_packets: AtomicUsize::new(0),
            held_bytes: AtomicUsize::new(0),
            held_packets_max: config.held_packets_max,
            held_bytes_max: config.held_bytes_max,
        };
        (Arc::new(lane), held_rx)
    }

    /// Takes one packet arriving on this lane and sends `data` to `dest` on `socket`, now or later, or drops
    /// it.
    async fn carry(&self, data: &[u8], socket: &Arc<UdpSocket>, dest: SocketAddr) {
        let counters = &self.link.counters;
        counters.arrived(data.len());
        let now = self.table.now();
        let (decision, seq) = self.decide(now, data.len());
        let at = match decision {
            Decision::Drop(cause) => {
                counters.dropped(cause);
                return;
            }
            Decision::Forward { at, .. } | Decision::Duplicate { at, .. } => at,
        };
        // A packet due now still queues behind held ones, so that a packet whose delay just ended is not
        // overtaken by one that arrived after it.
        if at <= now && self.held_packets.load(Ordering::Acquire) == 0 {
            self.send(socket, data, dest, decision.copies()).await;
            return;
        }
        let held = Held {
            at,
            seq,
            data: Bytes::copy_from_slice(data),
            copies: decision.copies(),
            socket: socket.clone(),
            dest,
        };
        if self.hold(held) && at > now {
            counters.delayed(decision.reordered());
        }
    }

    fn decide(&self, now: Duration, len: usize) -> (Decision, u64) {
        let mut guard = lock(&self.core);
        let core = &mut *guard;
        if let Some((generation, fault)) = self.link.fault_if_changed(core.generation) {
            core.generation = generation;
            core.fault = fault;
        }
        let decision = if core.fault.rate.is_some() {
            let mut shaper = lock(&self.link.shaper);
            core.decider
                .decide(&core.fault, now, len, Some(&mut *shaper))
        } else {
            core.decider.decide(&core.fault, now, len, None)
        };
        core.seq += 1;
        (decision, core.seq)
    }

    /// Queues a packet for later; false if the queue is full (the packet is dropped and counted).
    fn hold(&self, held: Held) -> bool {
        let len = held.data.len();
        let packets = self.held_packets.fetch_add(1, Ordering::AcqRel);
        let bytes = self.held_bytes.fetch_add(len, Ordering::AcqRel);
        if packets >= self.held_packets_max || bytes + len > self.held_bytes_max {
            self.release(len);
            self.link.counters.dropped(DropCause::QueueFull);
            return false;
        }
        if self.held_tx.try_send(held).is_err() {
            // Only once the queue's task is gone, when the relay shuts down.
            self.release(len);
            self.link.counters.dropped(DropCause::QueueFull);
            return false;
        }
        true
    }

    fn release(&self, len: usize) {
        self.held_packets.fetch_sub(1, Ordering::AcqRel);
        self.held_bytes.fetch_sub(len, Ordering::AcqRel);
    }

    /// Sends a held packet whose time has come, unless its link was partitioned meanwhile.
    async fn deliver(&self, held: Held) {
        if self.link.is_partitioned() {
            self.link.counters.dropped(DropCause::Partition);
        } else {
            self.send(&held.socket, &held.data, held.dest, held.copies)
                .await;
        }
        // Released after sending, so a packet arriving meanwhile queues behind this one.
        self.release(held.data.len());
    }

    async fn send(&self, socket: &UdpSocket, data: &[u8], dest: SocketAddr, copies: u8) {
        let counters = &self.link.counters;
        if let Err(e) = socket.send_to(data, dest).await {
            tracing::debug!(%dest, error = %e, "relay send failed");
            counters.dropped(DropCause::SendError);
            return;
        }
        counters.forwarded(data.len());
        for _ in 1..copies {
            if socket.send_to(data, dest).await.is_ok() {
                counters.duplicated();
            }
        }
    }
}

/// A packet waiting in a lane's delay queue.
struct Held {
    at: Duration,
    seq: u64,
    data: Bytes,
    copies: u8,
    socket: Arc<UdpSocket>,
    dest: SocketAddr,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest departure first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Serves one lane's delay queue: sends each held packet at its time.
async fn run_held(
    lane: Arc<Lane>,
    mut arrivals: mpsc::Receiver<Held>,
    mut stop: watch::Receiver<bool>,
) {
    let mut queue: BinaryHeap<Held> = BinaryHeap::new();
    loop {
        // Deliver what is due before waiting, so that a steady stream of arrivals cannot starve deliveries.
        let now = lane.table.now();
        while queue.peek().is_some_and(|held| held.at <= now) {
            let held = queue.pop().expect("peeked");
            lane.deliver(held).await;
        }
        let next = queue
            .peek()
            .map(|held| tokio::time::Instant::from_std(lane.table.instant(held.at)));
        tokio::select! {
            _ = stop.changed() => break,
            arrived = arrivals.recv() => match arrived {
                Some(held) => queue.push(held),
                None => break,
            },
            _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {}
        }
    }
}

/// An upstream socket dedicated to one downstream source.
struct Source {
    upstream: Arc<UdpSocket>,
    /// Milliseconds since the table's epoch of the last packet either way.
    last_active_ms: Arc<AtomicU64>,
    task: AbortHandle,
}

/// The task that owns the downstream socket and the table of sources.
struct Downstream {
    spec: RelaySpec,
    config: RelayConfig,
    table: Arc<FaultTable>,
    socket: Arc<UdpSocket>,
    forward: Arc<Lane>,
    backward: Arc<Lane>,
    stats: Arc<SharedStats>,
    sources: HashMap<SocketAddr, Source>,
    source_tasks: JoinSet<()>,
}

impl Downstream {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut buf = vec![0_u8; DATAGRAM_BYTES_MAX + 1];
        let period = (self.config.source_idle_timeout / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut sweep = tokio::time::interval(period);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // Not biased: under a steady stream of datagrams the sweep still gets its turn.
            tokio::select! {
                _ = stop.changed() => break,
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, source)) => self.on_datagram(&buf[..len], source).await,
                    Err(e) => self.receive_error(e).await,
                },
                _ = sweep.tick() => self.evict_idle(),
            }
        }
        // Abort and wait for the source tasks, so their sockets are closed when the relay's shutdown returns.
        self.source_tasks.shutdown().await;
    }

    async fn on_datagram(&mut self, data: &[u8], source: SocketAddr) {
        if !self.sources.contains_key(&source) && !self.open(source, data.len()) {
            return;
        }
        let entry = &self.sources[&source];
        entry
            .last_active_ms
            .store(now_ms(&self.table), Ordering::Relaxed);
        if data.len() > DATAGRAM_BYTES_MAX {
            self.forward.link.counters.arrived(data.len());
            self.forward.link.counters.dropped(DropCause::Oversize);
            return;
        }
        self.forward
            .carry(data, &entry.upstream, self.spec.upstream_addr)
            .await;
    }

    /// Opens an upstream socket for a new source; false if the packet must be dropped (and counts it).
    fn open(&mut self, source: SocketAddr, len: usize) -> bool {
        if self.sources.len() >= self.config.sources_max {
            self.evict_idle();
        }
        let refuse = |lane: &Lane, cause| {
            lane.link.counters.arrived(len);
            lane.link.counters.dropped(cause);
            false
        };
        if self.sources.len() >= self.config.sources_max {
            tracing::debug!(%source, listen = %self.spec.listen, "relay full: source refused");
            return refuse(&self.forward, DropCause::SourcesFull);
        }
        let upstream = match bind_udp(upstream_bind_addr(self.spec.upstream_addr)) {
            Ok(socket) => Arc::new(socket),
            Err(e) => {
                tracing::warn!(%source, error = %e, "relay cannot open an upstream socket");
                return refuse(&self.forward, DropCause::SendError);
            }
        };
        let last_active_ms = Arc::new(AtomicU64::new(now_ms(&self.table)));
        let task = self.source_tasks.spawn(run_upstream(UpstreamTask {
            upstream: upstream.clone(),
            downstream: self.socket.clone(),
            source,
            target: self.spec.upstream_addr,
            lane: self.backward.clone(),
            last_active_ms: last_active_ms.clone(),
            stats: self.stats.clone(),
        }));
        tracing::debug!(
            %source,
            upstream_local = ?upstream.local_addr().ok(),
            listen = %self.spec.listen,
            "relay source opened"
        );
        self.sources.insert(
            source,
            Source {
                upstream,
                last_active_ms,
                task,
            },
        );
        SharedStats::bump(&self.stats.sources_opened);
        self.stats
            .sources
            .store(self.sources.len() as u64, Ordering::Relaxed);
        true
    }

    /// Forgets sources silent for the idle timeout, closing their upstream sockets.
    fn evict_idle(&mut self) {
        let now = now_ms(&self.table);
        let idle_ms =
            u64::try_from(self.config.source_idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let stats = &self.stats;
        self.sources.retain(|source, entry| {
            let idle = now.saturating_sub(entry.last_active_ms.load(Ordering::Relaxed));
            if idle < idle_ms {
                return true;
            }
            entry.task.abort();
            SharedStats::bump(&stats.sources_evicted);
            tracing::debug!(%source, idle_ms = idle, "relay source evicted");
            false
        });
        // Reap the aborted tasks so the set does not grow.
        while self.source_tasks.try_join_next().is_some() {}
        self.stats
            .sources
            .store(self.sources.len() as u64, Ordering::Relaxed);
    }

    async fn receive_error(&self, error: io::Error) {
        SharedStats::bump(&self.stats.receive_errors);
        tracing::debug!(listen = %self.spec.listen, %error, "relay receive error");
        // A persistent error must not spin a core.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn now_ms(table: &FaultTable) -> u64 {
    u64::try_from(table.now().as_millis()).unwrap_or(u64::MAX)
}

struct UpstreamTask {
    upstream: Arc<UdpSocket>,
    downstream: Arc<UdpSocket>,
    source: SocketAddr,
    target: SocketAddr,
    lane: Arc<Lane>,
    last_active_ms: Arc<AtomicU64>,
    stats: Arc<SharedStats>,
}

/// Carries replies from the upstream endpoint back to one downstream source. Aborted by its relay.
async fn run_upstream(task: UpstreamTask) {
    let mut buf = vec![0_u8; DATAGRAM_BYTES_MAX + 1];
    loop {
        match task.upstream.recv_from(&mut buf).await {
            Ok((_, from)) if from != task.target => {
                SharedStats::bump(&task.stats.foreign_packets);
            }
            Ok((len, _)) => {
                task.last_active_ms
                    .store(now_ms(&task.lane.table), Ordering::Relaxed);
                if len > DATAGRAM_BYTES_MAX {
                    task.lane.link.counters.arrived(len);
                    task.lane.link.counters.dropped(DropCause::Oversize);
                } else {
                    task.lane
                        .carry(&buf[..len], &task.downstream, task.source)
                        .await;
                }
            }
            Err(error) => {
                SharedStats::bump(&task.stats.receive_errors);
                tracing::debug!(source = %task.source, %error, "relay upstream receive error");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}
