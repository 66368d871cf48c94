//! The server: the Raft core, its durable store and the key/value state machine, driven by the transport.
//!
//! One task owns everything and runs this loop:
//!
//! ```text
//! wait for a peer frame, a client request or the next tick
//! take every other frame and request already queued (so one fsync covers all of them: group commit)
//! while the core has a Ready: send, persist + fsync, send what needed the fsync, apply, answer clients, advance
//! ```
//!
//! A write is answered when the entry proposed for it is applied: with its output if the entry at that index
//! still has the term it was proposed in, or with a definite refusal if another leader's entry took its place.
//! A read is answered after ReadIndex confirmed leadership and the state machine reached the read's index.

use crate::config::{Bug, FsyncMode, NodeConfig};
use crate::datadir::{self, DataDirError};
use crate::planted::{self, CasRewrite};
use crate::protocol::{self, AppliedState, NodeStatus, Request, Response, PROTOCOL_VERSION};
use crate::state::{NodeCommand, NodeOutput, NodeState};
use crate::store::{Store, StoreError};
use bytes::Bytes;
use raft::kv::{KvCommand, KvOutput};
use raft::{
    decode_message, encode_message, ConfChange, Config, EntryPayload, Instant, LogIndex,
    Membership, Mutations, NodeId, ProposeError, RawNode, ReadMode, Role, StateMachine, Term,
};
use raft_storage::{FsyncPolicy, StorageOptions};
use raft_transport::{
    ClientEndpoint, Credentials, IncomingRequest, PeerIdentity, Responder, Transport,
    TransportConfig,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data directory belongs to another node, or its identity file cannot be read or written.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// Certificates could not be loaded.
    #[error("certificates in {dir}: {message}")]
    Certs {
        /// The folder.
        dir: String,
        /// What went wrong.
        message: String,
    },
    /// The endpoint could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// Joining the cluster failed.
    #[error("joining through {addr} failed: {message}")]
    Join {
        /// The member asked.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// The Raft configuration is invalid.
    #[error(transparent)]
    Raft(#[from] raft::ConfigError),
}

/// How the server ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Exit {
    /// Asked to stop (SIGTERM / SIGINT).
    Shutdown,
    /// Removed from the cluster by a membership change: it applied the change itself, or a member refused its
    /// link saying so. The data directory is left as it was.
    Removed,
}

struct PendingWrite {
    term: Term,
    responder: Responder,
    /// `non-atomic-cas`: the cas was proposed as a put after a check that found this value.
    cas_found: Option<Option<String>>,
}

struct PendingConf {
    index: LogIndex,
    term: Term,
    /// A join is answered with the members' addresses; other changes with `Done`.
    is_join: bool,
    responder: Option<Responder>,
}

/// A join in progress on the leader: record the address, then add as learner.
struct JoinFlow {
    id: NodeId,
    addr: String,
    incarnation: u64,
    address_entry: Option<(LogIndex, Term)>,
    responder: Option<Responder>,
    learner_proposed: bool,
}

struct Server {
    cfg: NodeConfig,
    raw: RawNode,
    store: Store,
    state: NodeState,
    transport: Transport,
    started: std::time::Instant,
    addresses: BTreeMap<NodeId, String>,
    membership: Membership,
    pending_writes: HashMap<LogIndex, PendingWrite>,
    pending_reads: HashMap<u64, (String, Responder)>,
    waiting_reads: Vec<(LogIndex, String, Responder)>,
    pending_confs: Vec<PendingConf>,
    joins: Vec<JoinFlow>,
    next_read_id: u64,
    last_snapshot_index: LogIndex,
    removed: bool,
    /// An applied configuration has included this node (so a later one without it means removal).
    member_applied: bool,
    ticks: u64,
    last_role: (Role, Term, Option<NodeId>),
}

/// Milliseconds on the process's monotonic clock, the only time the core sees.
fn now_ms(started: std::time::Instant) -> Instant {
    Instant(started.elapsed().as_millis() as u64)
}

/// Runs a node until `shutdown` flips to true or the node is removed from the cluster.
pub async fn run(
    cfg: NodeConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Exit, ServerError> {
    if cfg.fsync == FsyncMode::Never {
        tracing::warn!("=== fsync is OFF (--fsync never): acknowledged writes and votes can be lost in a crash; benchmarks only ===");
    }
    for bug in &cfg.bugs {
        tracing::warn!(
            bug = bug.name(),
            "=== deliberate bug switched on: this node is NOT correct ==="
        );
    }
    let credentials =
        Credentials::load(&cfg.certs_dir, &PeerIdentity::Node(cfg.id)).map_err(|e| {
            ServerError::Certs {
                dir: cfg.certs_dir.display().to_string(),
                message: e.to_string(),
            }
        })?;
    let storage_options = storage_options(&cfg);
    datadir::create_parents(&cfg.data_dir)?;
    let recorded = datadir::check(&cfg.data_dir, cfg.id.0, cfg.cluster_id)?;
    let (store, persisted) = Store::open(&cfg.data_dir, storage_options)?;
    let fresh = store.is_empty();
    let identity = match recorded {
        Some(identity) => identity,
        None => {
            if !fresh {
                tracing::warn!(dir = %cfg.data_dir.display(), id = %cfg.id, cluster_id = cfg.cluster_id,
                    "the data directory has no identity file (an older raft-node made it): recording this node as its owner");
            }
            let identity = datadir::new_identity(cfg.id.0, cfg.cluster_id);
            datadir::write(&cfg.data_dir, &identity)?;
            identity
        }
    };
    let started = std::time::Instant::now();
    let raft_cfg = raft_config(&cfg);
    let (transport, inbox) = Transport::bind(
        cfg.listen,
        &credentials,
        cfg.cluster_id,
        TransportConfig::default(),
    )
    .map_err(|e| ServerError::Bind {
        addr: cfg.listen,
        message: e.to_string(),
    })?;

    let mut addresses: BTreeMap<NodeId, String> = cfg
        .peers
        .iter()
        .map(|(id, a)| (*id, a.to_string()))
        .collect();
    addresses.insert(cfg.id, cfg.advertise.to_string());
    let mut state = NodeState::new(10_000);
    state.ignore_sessions = cfg.bugs.contains(&Bug::RetryDuplicates);
    if let Some(snapshot) = &persisted.snapshot {
        state
            .restore(&snapshot.data)
            .map_err(|e| StoreError::Decode {
                dir: cfg.data_dir.display().to_string(),
                index: snapshot.meta.index.0,
                reason: e.to_string(),
            })?;
    }
    let logged_addresses = crate::state::addresses_in_log(&persisted.entries);
    let raw = if fresh && cfg.join.is_none() {
        let membership = Membership::with_voters(cfg.peers.keys().copied());
        tracing::info!(id = %cfg.id, ?membership, seed = raft_cfg.rng_seed, "bootstrapping a new cluster");
        RawNode::bootstrap(raft_cfg, membership, now_ms(started))?
    } else if fresh {
        let via = cfg.join.expect("checked above");
        tracing::info!(id = %cfg.id, %via, seed = raft_cfg.rng_seed, "joining an existing cluster");
        let members = join(&cfg, &credentials, via, identity.incarnation).await?;
        // Before any entry is taken: a restart finds its peers here (see `datadir`).
        datadir::write_join_addresses(&cfg.data_dir, &members)?;
        addresses.extend(members);
        RawNode::join(raft_cfg, now_ms(started))?
    } else {
        tracing::info!(id = %cfg.id, term = %persisted.hard_state.term, entries = persisted.entries.len(),
            snapshot = ?persisted.snapshot.as_ref().map(|s| s.meta.index), seed = raft_cfg.rng_seed, "restarting from disk");
        RawNode::restart(raft_cfg, persisted, now_ms(started))?
    };
    // Locally configured addresses win over the replicated address book: an operator (or the chaos tool's
    // network relays) may route this node to a peer differently from how the peer advertises itself.
    for (id, addr) in &state.addresses {
        addresses.entry(*id).or_insert_with(|| addr.clone());
    }
    // Entries after the snapshot are newer than it; their addresses are needed before they are applied.
    for (id, addr) in logged_addresses {
        if id != cfg.id && !cfg.peers.contains_key(&id) {
            addresses.insert(id, addr);
        }
    }
    // A joined node's first peers are in no log or snapshot: they come from the join answer it recorded.
    if !fresh {
        for (id, addr) in datadir::read_join_addresses(&cfg.data_dir)? {
            addresses.entry(id).or_insert(addr);
        }
    }
    let last_snapshot_index = raw.log().snapshot_index();
    let member_applied = raw
        .snapshot()
        .is_some_and(|s| s.meta.membership.contains(raw.id()));
    let last_role = (raw.role(), raw.term(), raw.leader());
    let mut server = Server {
        cfg,
        raw,
        store,
        state,
        transport,
        started,
        addresses,
        membership: Membership::default(),
        pending_writes: HashMap::new(),
        pending_reads: HashMap::new(),
        waiting_reads: Vec::new(),
        pending_confs: Vec::new(),
        joins: Vec::new(),
        next_read_id: 1,
        last_snapshot_index,
        removed: false,
        member_applied,
        ticks: 0,
        last_role,
    };
    server.sync_peers();
    tracing::info!(id = %server.cfg.id, listen = %server.cfg.listen, "node started");
    let exit = server.serve(inbox, &mut shutdown).await?;
    server.transport.shutdown().await;
    Ok(exit)
}

/// The storage options of this node. The deliberate bug `no-fsync` lives here: the WAL is never fsynced, yet
/// everything else (votes, acknowledgements) goes on as if it were, and nothing warns about it.
pub fn storage_options(cfg: &NodeConfig) -> StorageOptions {
    let mut options = StorageOptions::default();
    if cfg.fsync == FsyncMode::Never || cfg.bugs.contains(&Bug::NoFsync) {
        options.fsync = FsyncPolicy::Never;
    }
    options
}

fn raft_config(cfg: &NodeConfig) -> Config {
    let mut c = Config::new(cfg.id);
    c.heartbeat_interval_ms = cfg.heartbeat_interval.as_millis() as u64;
    c.election_timeout_min_ms = cfg.election_timeout.0.as_millis() as u64;
    c.election_timeout_max_ms = cfg.election_timeout.1.as_millis() as u64;
    c.read_mode = cfg.read_mode;
    c.election_timeout_policy = cfg.election_timeout_policy;
    // Election jitter must differ per node and per start, yet be replayable: log the seed.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    c.rng_seed = nanos ^ cfg.id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    c.mutations = Mutations::from_bugs(&cfg.bugs);
    c
}

/// Asks a member to add this node; follows redirects to the leader. Returns the members' addresses.
async fn join(
    cfg: &NodeConfig,
    credentials: &Credentials,
    via: SocketAddr,
    incarnation: u64,
) -> Result<BTreeMap<NodeId, String>, ServerError> {
    let fail = |message: String| ServerError::Join { addr: via, message };
    let endpoint = ClientEndpoint::bind(
        "127.0.0.1:0".parse().expect("valid"),
        credentials,
        cfg.cluster_id,
        TransportConfig::default(),
    )
    .map_err(|e| fail(e.to_string()))?;
    let request = Request::Join {
        id: cfg.id,
        addr: cfg.advertise.to_string(),
        incarnation,
    };
    let mut target = via;
    for attempt in 0..50 {
        let session = endpoint.session_any_node(target);
        let payload = Bytes::from(protocol::encode(PROTOCOL_VERSION, &request));
        match session.request(payload, Duration::from_secs(5)).await {
            Ok(bytes) => match protocol::decode::<Response>(&bytes) {
                Ok(Response::Joined { members }) => {
                    tracing::info!(attempt, ?members, "joined the cluster as a learner");
                    endpoint.close().await;
                    return Ok(members);
                }
                Ok(Response::NotLeader {
                    leader_addr: Some(addr),
                    ..
                }) => {
                    target = addr
                        .parse()
                        .map_err(|_| fail(format!("bad leader address {addr:?}")))?;
                    continue;
                }
                Ok(Response::Invalid(why)) => return Err(fail(why)),
                Ok(other) => tracing::info!(?other, "join not done yet; retrying"),
                Err(e) => return Err(fail(e.to_string())),
            },
            Err(e) => tracing::info!(error = %e, "join request failed; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        target = via;
    }
    Err(fail("no leader accepted the join after 50 attempts".into()))
}

impl Server {
    async fn serve(
        &mut self,
        mut inbox: raft_transport::Inbox,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Exit, ServerError> {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        tracing::info!("shutting down");
                        return Ok(Exit::Shutdown);
                    }
                }
                Some(frame) = inbox.frames.recv() => self.on_frame(frame.from, &frame.payload),
                Some(request) = inbox.requests.recv() => self.on_request(request),
                Some(notice) = inbox.notices.recv() => {
                    let raft_transport::PeerNotice::Removed { by, at_index } = notice else {
                        continue;
                    };
                    tracing::error!(id = %self.cfg.id, by = by.0, at_index, data_dir = %self.cfg.data_dir.display(),
                        "node {} says this node was removed from the cluster at log index {at_index}: stopping; the data directory is left as it was", by.0);
                    return Ok(Exit::Removed);
                }
                _ = tokio::time::sleep_until(self.raft_deadline()) => self.on_deadline(),
                _ = tick.tick() => self.on_tick(),
            }
            // Group commit: take everything already waiting before persisting once.
            for _ in 0..4096 {
                if let Ok(frame) = inbox.frames.try_recv() {
                    self.on_frame(frame.from, &frame.payload);
                } else if let Ok(request) = inbox.requests.try_recv() {
                    self.on_request(request);
                } else {
                    break;
                }
            }
            self.drain_ready()?;
            if self.removed {
                tracing::warn!(id = %self.cfg.id, "removed from the cluster; stopping");
                return Ok(Exit::Removed);
            }
        }
    }

    fn now(&self) -> Instant {
        now_ms(self.started)
    }

    fn on_frame(&mut self, from: NodeId, payload: &[u8]) {
        match decode_message(payload) {
            Ok(msg) if msg.from == from => {
                let now = self.now();
                self.raw.step(msg, now);
            }
            Ok(msg) => {
                tracing::warn!(claimed = %msg.from, authenticated = %from, "dropping a message whose sender does not match its certificate")
            }
            Err(e) => tracing::warn!(%from, error = %e, "dropping an undecodable peer message"),
        }
    }

    /// When the Raft core next needs time to pass (an election timeout, a heartbeat), on tokio's clock. A
    /// timeout must fire at its deadline, not at the next housekeeping tick: 10 ms of tick granularity is 10 ms
    /// added to every failover. Never in the past, so a deadline the core does not move cannot spin the loop.
    fn raft_deadline(&self) -> tokio::time::Instant {
        let due = self.started + Duration::from_millis(self.raw.next_deadline().0);
        tokio::time::Instant::from_std(due)
            .max(tokio::time::Instant::now() + Duration::from_micros(500))
    }

    fn on_deadline(&mut self) {
        let now = self.now();
        self.raw.tick(now);
    }

    fn on_tick(&mut self) {
        let now = self.now();
        self.raw.tick(now);
        self.ticks += 1;
        if self.raw.role() == Role::Leader {
            self.drive_joins();
            self.promote_caught_up_learners();
        }
        if self.ticks % 100 == 0 {
            self.sync_peers(); // Also drops removed nodes whose grace period ended.
        }
    }

    fn respond(responder: Responder, response: &Response) {
        if let Err(e) = responder.respond(Bytes::from(protocol::encode(PROTOCOL_VERSION, response)))
        {
            tracing::warn!(error = %e, "could not send a response");
        }
    }

    fn not_leader(&self) -> Response {
        let leader = self.raw.leader().filter(|&l| l != self.cfg.id);
        Response::NotLeader {
            leader,
            leader_addr: leader.and_then(|l| self.addresses.get(&l).cloned()),
        }
    }

    fn refusal(&self, e: ProposeError) -> Response {
        match e {
            ProposeError::NotLeader { .. } => self.not_leader(),
            other => Response::Refused(other.to_string()),
        }
    }

    fn on_request(&mut self, incoming: IncomingRequest) {
        let IncomingRequest {
            identity,
            payload,
            responder,
        } = incoming;
        let request = match protocol::decode::<Request>(&payload) {
            Ok(r) => r,
            Err(e) => return Self::respond(responder, &Response::Invalid(e.to_string())),
        };
        let now = self.now();
        match request {
            Request::Write { client, seq, op } => {
                let mut cas_found = None;
                let op = if self.cfg.bugs.contains(&Bug::NonAtomicCas) {
                    match planted::non_atomic_cas(op, &self.state.kv) {
                        CasRewrite::Unchanged(op) => op,
                        CasRewrite::Refused(output) => {
                            return Self::respond(responder, &Response::Written(output))
                        }
                        CasRewrite::AsPut { op, found } => {
                            cas_found = Some(found);
                            op
                        }
                    }
                } else {
                    op
                };
                let early = self
                    .cfg
                    .bugs
                    .contains(&Bug::EarlyAck)
                    .then(|| planted::early_output(&op, &self.state.kv));
                let command = NodeCommand::Kv(KvCommand { client, seq, op }).encode();
                match self.raw.propose(command, now) {
                    Ok((_, _)) if early.is_some() => {
                        let output = early.expect("checked");
                        Self::respond(responder, &Response::Written(output));
                    }
                    Ok((index, term)) => {
                        self.pending_writes.insert(
                            index,
                            PendingWrite {
                                term,
                                responder,
                                cas_found,
                            },
                        );
                    }
                    Err(e) => Self::respond(responder, &self.refusal(e)),
                }
            }
            Request::Read { key } => {
                let id = self.next_read_id;
                self.next_read_id += 1;
                self.pending_reads.insert(id, (key, responder));
                self.raw.read_index(id, now);
            }
            Request::Status { probe } => {
                let mut status = self.status();
                status.probe = probe.map(|i| (i, self.raw.log().term(i)));
                Self::respond(responder, &Response::Status(Box::new(status)));
            }
            Request::Join {
                id,
                addr,
                incarnation,
            } => {
                if !matches!(identity, PeerIdentity::Node(n) if n == id) {
                    return Self::respond(responder, &Response::Invalid(format!("a join for {id} must come from that node's certificate, not {identity:?}")));
                }
                if self.raw.role() != Role::Leader {
                    return Self::respond(responder, &self.not_leader());
                }
                if let Err(reuse) = self.state.may_join(id, incarnation) {
                    tracing::warn!(%id, error = %reuse, "refusing a join");
                    return Self::respond(responder, &Response::Invalid(reuse.to_string()));
                }
                if self.membership.contains(id) {
                    let members = self.addresses.clone();
                    return Self::respond(responder, &Response::Joined { members });
                }
                self.joins.retain(|j| j.id != id);
                self.joins.push(JoinFlow {
                    id,
                    addr,
                    incarnation,
                    address_entry: None,
                    responder: Some(responder),
                    learner_proposed: false,
                });
                self.drive_joins();
            }
            Request::Remove { id } => {
                match self.raw.propose_conf_change(ConfChange::Remove(id), now) {
                    Ok((index, term)) => self.pending_confs.push(PendingConf {
                        index,
                        term,
                        is_join: false,
                        responder: Some(responder),
                    }),
                    Err(e) => Self::respond(responder, &self.refusal(e)),
                }
            }
            Request::TransferLeader { to } => match self.raw.transfer_leadership(to, now) {
                Ok(()) => Self::respond(responder, &Response::Done),
                Err(raft::TransferError::NotLeader) => Self::respond(responder, &self.not_leader()),
                Err(e) => Self::respond(responder, &Response::Invalid(e.to_string())),
            },
        }
    }

    /// Moves joins forward: record the address through the log, then add the node as a learner.
    fn drive_joins(&mut self) {
        let now = self.now();
        for i in 0..self.joins.len() {
            let join = &mut self.joins[i];
            if join.address_entry.is_none() {
                let command = NodeCommand::SetAddress {
                    id: join.id,
                    addr: join.addr.clone(),
                    incarnation: join.incarnation,
                }
                .encode();
                match self.raw.propose(command, now) {
                    Ok(at) => self.joins[i].address_entry = Some(at),
                    Err(e) => {
                        let response = self.refusal(e);
                        if let Some(r) = self.joins[i].responder.take() {
                            Self::respond(r, &response);
                        }
                    }
                }
            } else if !join.learner_proposed && self.addresses.contains_key(&join.id) {
                let id = join.id;
                match self
                    .raw
                    .propose_conf_change(ConfChange::AddLearner(id), now)
                {
                    Ok((index, term)) => {
                        self.joins[i].learner_proposed = true;
                        let responder = self.joins[i].responder.take();
                        self.pending_confs.push(PendingConf {
                            index,
                            term,
                            is_join: true,
                            responder,
                        });
                    }
                    Err(ProposeError::ConfChangeInProgress) => {} // Try again at the next tick.
                    Err(e) => {
                        let response = self.refusal(e);
                        if let Some(r) = self.joins[i].responder.take() {
                            Self::respond(r, &response);
                        }
                    }
                }
            }
        }
        self.joins
            .retain(|j| j.responder.is_some() && !j.learner_proposed);
    }

    fn promote_caught_up_learners(&mut self) {
        let now = self.now();
        let learners: Vec<NodeId> = self.raw.membership().learners.iter().copied().collect();
        for learner in learners {
            match self
                .raw
                .propose_conf_change(ConfChange::PromoteLearner(learner), now)
            {
                Ok(_) => tracing::info!(%learner, "promoting a caught-up learner to voter"),
                Err(ProposeError::LearnerBehind(_) | ProposeError::ConfChangeInProgress) => {}
                Err(e) => tracing::debug!(%learner, error = %e, "cannot promote yet"),
            }
        }
    }

    fn drain_ready(&mut self) -> Result<(), ServerError> {
        while self.raw.has_ready() {
            let ready = self.raw.ready();
            for msg in &ready.messages {
                self.send(msg);
            }
            // The fsync blocks this worker; let the runtime move the network tasks elsewhere meanwhile.
            let store = &mut self.store;
            tokio::task::block_in_place(|| store.persist(&ready))?;
            if let Some(snapshot) = &ready.snapshot {
                self.state
                    .restore(&snapshot.data)
                    .map_err(|e| StoreError::Decode {
                        dir: self.store.dir().to_string(),
                        index: snapshot.meta.index.0,
                        reason: e.to_string(),
                    })?;
                self.last_snapshot_index = snapshot.meta.index;
                if snapshot.meta.membership.contains(self.cfg.id) {
                    self.member_applied = true;
                } else if self.member_applied {
                    self.removed = true;
                }
                self.refresh_addresses();
                tracing::info!(index = %snapshot.meta.index, "installed a snapshot from the leader");
            }
            for msg in &ready.persisted_messages {
                self.send(msg);
            }
            for entry in &ready.committed_entries {
                self.apply(entry);
            }
            for read in &ready.read_states {
                if let Some((key, responder)) = self.pending_reads.remove(&read.id) {
                    self.waiting_reads.push((read.index, key, responder));
                }
            }
            for id in &ready.failed_reads {
                if let Some((_, responder)) = self.pending_reads.remove(id) {
                    let response = self.not_leader();
                    Self::respond(responder, &response);
                }
            }
            self.raw.advance(ready);
            self.serve_reads();
            self.after_changes()?;
        }
        Ok(())
    }

    fn send(&self, msg: &raft::Message) {
        let bytes = Bytes::from(encode_message(msg));
        if let Err(e) = self.transport.send(msg.to, bytes) {
            tracing::trace!(to = %msg.to, error = %e, "message dropped");
        }
    }

    fn apply(&mut self, entry: &raft::Entry) {
        let output = match &entry.payload {
            EntryPayload::Command(data) => Some(self.state.apply(entry.index, data)),
            EntryPayload::Conf(m) => {
                for id in self.state.apply_configuration(entry.index, m) {
                    tracing::info!(%id, index = %entry.index, "a node was removed from the cluster");
                }
                // Removal takes effect for this node once the change is committed (applied), not when appended:
                // until then it may still be needed, and the entry may yet be replaced.
                if m.contains(self.cfg.id) {
                    self.member_applied = true;
                } else if self.member_applied {
                    self.removed = true;
                }
                None
            }
            EntryPayload::Noop => None,
        };
        if let Some(NodeOutput::AddressSet) = output {
            self.refresh_addresses();
        }
        if let Some(pending) = self.pending_writes.remove(&entry.index) {
            let response = if pending.term != entry.term {
                Response::Refused(format!(
                    "superseded: another leader's entry was committed at index {}",
                    entry.index.0
                ))
            } else {
                match (output, pending.cas_found) {
                    (Some(NodeOutput::Kv(KvOutput::Done)), Some(found)) => {
                        Response::Written(KvOutput::Cas {
                            applied: true,
                            current: found,
                        })
                    }
                    (Some(NodeOutput::Kv(out)), _) => Response::Written(out),
                    _ => Response::Invalid("the command could not be applied".into()),
                }
            };
            Self::respond(pending.responder, &response);
        }
        let index = entry.index;
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_confs)
            .into_iter()
            .partition(|p| p.index <= index);
        self.pending_confs = rest;
        for p in done {
            let response = if p.index == index && p.term == entry.term {
                if p.is_join {
                    Response::Joined {
                        members: self.addresses.clone(),
                    }
                } else {
                    Response::Done
                }
            } else {
                Response::Refused("superseded by another leader's entry".into())
            };
            if let Some(r) = p.responder {
                Self::respond(r, &response);
            }
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.raw.log().applied();
        let mut i = 0;
        while i < self.waiting_reads.len() {
            if self.waiting_reads[i].0 <= applied {
                let (_, key, responder) = self.waiting_reads.swap_remove(i);
                let value = self.state.kv.get(&key).cloned();
                Self::respond(responder, &Response::Value(value));
            } else {
                i += 1;
            }
        }
    }

    /// Reacts to role, membership and size changes after a Ready: logs, peers, snapshots, removal.
    fn after_changes(&mut self) -> Result<(), ServerError> {
        let role = (self.raw.role(), self.raw.term(), self.raw.leader());
        if role != self.last_role {
            // The wall-clock time lets a benchmark read when the change happened from the log, to the microsecond.
            let at_unix_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            tracing::info!(id = %self.cfg.id, role = %role.0, term = role.1.0, leader = ?role.2.map(|l| l.0), at_unix_us, "role change");
            if self.last_role.0 == Role::Leader && role.0 != Role::Leader {
                // Writes proposed as leader stay pending: they are answered when their index is applied.
                self.joins.clear();
            }
            self.last_role = role;
        }
        if self.raw.membership() != &self.membership {
            self.membership = self.raw.membership().clone();
            tracing::info!(membership = ?self.membership, "configuration changed");
            self.sync_peers();
        }
        let applied = self.raw.log().applied();
        if applied.0 >= self.last_snapshot_index.0 + self.cfg.snapshot_interval_entries {
            let data = self.state.snapshot();
            let meta = self
                .raw
                .compact(applied, data.clone())
                .expect("applied index can be compacted");
            let store = &mut self.store;
            tokio::task::block_in_place(|| store.save_snapshot(&meta, &data))?;
            self.last_snapshot_index = applied;
            tracing::info!(index = %applied, bytes = data.len(), "snapshot taken and log compacted");
        }
        Ok(())
    }

    fn refresh_addresses(&mut self) {
        for (id, addr) in &self.state.addresses {
            if !self.cfg.peers.contains_key(id) {
                self.addresses.insert(*id, addr.clone());
            }
        }
        self.sync_peers();
    }

    /// Keeps the transport's peer set equal to the members with a known address.
    fn sync_peers(&mut self) {
        // A node that is not (yet) in its own configuration is joining: it must accept the leader's link, and
        // it knows the members only from the join answer, so every known address counts.
        let joining = !self.raw.membership().contains(self.cfg.id);
        let candidates: Vec<NodeId> = if joining {
            self.addresses.keys().copied().collect()
        } else {
            // Members, nodes being added, and removed nodes the leader still sends the log to (so they learn
            // of their removal).
            let departing = self.raw.status().peers.into_iter().map(|p| p.id);
            self.raw
                .membership()
                .members()
                .chain(self.joins.iter().map(|j| j.id))
                .chain(departing)
                .collect()
        };
        // Removed nodes are told so when they knock (ids are never reused, so this is final).
        for (id, at) in &self.state.removed {
            self.transport.mark_removed(*id, at.0);
        }
        let wanted: BTreeMap<NodeId, SocketAddr> = candidates
            .into_iter()
            .filter(|&id| id != self.cfg.id)
            .filter_map(|id| {
                self.addresses
                    .get(&id)
                    .and_then(|a| a.parse().ok())
                    .map(|a| (id, a))
            })
            .collect();
        for peer in self.transport.peers() {
            if !wanted.contains_key(&peer) {
                self.transport.remove_peer(peer);
            }
        }
        for (peer, addr) in wanted {
            self.transport.add_peer(peer, addr);
        }
    }

    fn status(&self) -> NodeStatus {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        NodeStatus {
            raft: self.raw.status(),
            addresses: self.addresses.clone(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            wall_clock_unix_ms: wall,
            read_mode: match self.cfg.read_mode {
                ReadMode::ReadIndex => "read-index".into(),
                ReadMode::Lease { .. } => "lease".into(),
            },
            bugs: self.cfg.bugs.iter().map(|b| b.name().to_string()).collect(),
            removed: self.removed,
            removed_nodes: self.state.removed.clone(),
            probe: None,
            applied_state: AppliedState {
                index: self.raw.log().applied(),
                digest: format!("{:016x}", self.state.kv_digest()),
                keys: self.state.kv.len() as u64,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    fn config(bugs: Vec<Bug>) -> NodeConfig {
        FileConfig {
            id: Some(1),
            listen: "127.0.0.1:1".parse().ok(),
            data_dir: Some("d".into()),
            certs_dir: Some("c".into()),
            peers: Some([(1, "127.0.0.1:1".parse().unwrap())].into()),
            bugs: Some(bugs),
            ..FileConfig::default()
        }
        .resolve()
        .expect("valid")
    }

    /// The deliberate bug `no-fsync`: the same writes and hard state, made "durable" without a single fsync
    /// (and without the warning `--fsync never` prints).
    #[test]
    fn no_fsync_never_fsyncs() {
        let fsyncs = |cfg: &NodeConfig| {
            let dir = tempfile::tempdir().unwrap();
            let (mut storage, _) =
                raft_storage::Storage::open(dir.path(), storage_options(cfg)).unwrap();
            let baseline = storage.stats().fsyncs;
            storage
                .append(&[raft_storage::Entry::new(1, 1, b"x".to_vec())])
                .unwrap();
            storage
                .set_hard_state(&raft_storage::HardState {
                    term: 1,
                    voted_for: Some(1),
                    commit: 1,
                })
                .unwrap();
            storage.sync().unwrap();
            storage.stats().fsyncs - baseline
        };
        assert!(fsyncs(&config(vec![])) >= 2, "the WAL and the hard state");
        assert_eq!(fsyncs(&config(vec![Bug::NoFsync])), 0);
        assert_eq!(
            config(vec![Bug::NoFsync]).fsync,
            FsyncMode::Always,
            "nothing says fsync is off"
        );
    }

    /// Every core bug of the catalogue reaches the core's configuration, and no other.
    #[test]
    fn core_bugs_reach_the_core() {
        for row in raft::CATALOGUE {
            let mutations = raft_config(&config(vec![row.bug])).mutations;
            assert_eq!(
                mutations.bugs() == vec![row.bug],
                row.layer == raft::BugLayer::Core,
                "{}",
                row.name
            );
        }
    }
}
