//! Systems under test. A target is to systems what a fault family is to faults (Jepsen's `DB` and `Client`
//! protocols): how to start node i, how to learn a node's role, term and leader from outside, and a client that
//! performs read / write / cas and turns every answer into ok / fail / info honestly.
//!
//! To add a target: write a module with a type implementing [`Target`] (and a [`KvClient`]), add one arm to
//! [`TargetKind`] and one to [`build`], and say in [`TargetKind::refuse`] which plans it cannot honour and why.

pub mod etcd;
pub mod raft_node;

use crate::plan::Plan;
use std::ffi::OsString;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future (targets and clients are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The systems chaos can test.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// The Raft key/value store of this repository.
    #[default]
    RaftNode,
    /// etcd 3.4 or later (Debian's `etcd-server`), through its JSON gateway.
    Etcd,
}

impl TargetKind {
    /// The name used in plans.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::RaftNode => "raft-node",
            TargetKind::Etcd => "etcd",
        }
    }

    /// Why this target cannot honour `plan`, if it cannot: `(field, reason)`.
    pub fn refuse(self, plan: &Plan) -> Option<(String, String)> {
        match self {
            TargetKind::RaftNode => None,
            TargetKind::Etcd => etcd::refuse(plan),
        }
    }
}

/// Where node `id` lives and how it is reached.
#[derive(Clone, Debug)]
pub struct NodeSlot {
    /// Node id (1-based).
    pub id: u64,
    /// The node's own address (127.0.0.1, a per-node loopback address, or its namespace's address).
    pub ip: IpAddr,
    /// The port peers use.
    pub peer_port: u16,
    /// The port clients use (equal to `peer_port` for targets that serve both on one port).
    pub client_port: u16,
    /// The node's folder in the run folder (`nodes/n<id>`); its data dir is `data/` inside.
    pub dir: PathBuf,
}

impl NodeSlot {
    /// The address peers dial (unless a relay sits in between).
    pub fn peer_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.peer_port)
    }

    /// The address clients dial.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.client_port)
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

/// Everything a target needs to write node command lines and reach the nodes.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Every node.
    pub nodes: Vec<NodeSlot>,
    /// The run's certificate folder (CA, node and client certificates).
    pub certs: PathBuf,
    /// The client certificate's name.
    pub client_name: String,
    /// Whether nodes and clients use mutual TLS (always, for raft-node).
    pub tls: bool,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Extra arguments for every node, from the plan.
    pub extra_args: Vec<String>,
    /// A token unique to the run (etcd's cluster token).
    pub run_id: String,
    /// Entries between snapshots.
    pub snapshot_interval_entries: u64,
}

impl Layout {
    /// The slot of node `id`.
    pub fn node(&self, id: u64) -> Option<&NodeSlot> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

/// How node `id` reaches each peer: directly, or through a relay address.
pub type PeerRoutes = Vec<(u64, SocketAddr)>;

/// A node's program, arguments and environment.
#[derive(Clone, Debug)]
pub struct NodeCommand {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment.
    pub env: Vec<(OsString, OsString)>,
}

/// A node's role as seen from outside.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Leads.
    Leader,
    /// Follows.
    Follower,
    /// Campaigns in a term it started.
    Candidate,
    /// Asks for pre-votes.
    PreCandidate,
    /// Receives the log but does not vote.
    Learner,
}

/// What a node says about itself.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NodeStatus {
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: u64,
    /// The leader it knows of, by node id.
    pub leader: Option<u64>,
    /// Its commit index, if the target reports one.
    pub commit_index: Option<u64>,
    /// Its applied index, if the target reports one.
    pub applied_index: Option<u64>,
    /// Its wall clock minus ours, in milliseconds, if the target reports its clock.
    pub clock_offset_ms: Option<f64>,
    /// How often its election timer fired since it started, if the target reports it: a follower's count
    /// rises only when it went an election timeout without hearing the leader.
    pub elections_started: Option<u64>,
}

/// The outcome of one client operation. Only a definite rejection is `Fail`; anything that may have taken
/// effect (a timeout after sending, a dropped connection) is `Unknown`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Done, with this answer.
    Ok(T),
    /// Definitely not done.
    Fail(String),
    /// Maybe done.
    Unknown(String),
}

/// The answer to a compare-and-set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasAnswer {
    /// Whether the value matched and the new one was written.
    pub applied: bool,
    /// The value found, when it did not match and the target says.
    pub current: Option<String>,
}

/// Client settings from the plan.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Deadline of one operation (retries included).
    pub request_timeout: Duration,
    /// Deadline of one attempt at one node (at most `request_timeout`); a shorter one lets the client retry
    /// inside the operation, as far as the target's client can do so safely.
    pub attempt_timeout: Duration,
    /// Send each read to the next node in turn instead of the leader.
    pub spread_reads: bool,
    /// Send every read to this node (by id) first; overrides `spread_reads`.
    pub read_node: Option<u64>,
    /// The local address the client sends from (None: the target's default), so that network rules can tell
    /// clients apart (client c from 127.0.1.(c+1), say).
    pub source_ip: Option<IpAddr>,
}

impl ClientSettings {
    /// Settings with deadline `request_timeout` for every attempt and op, reads to the leader, the default
    /// source address.
    pub fn new(request_timeout: Duration) -> ClientSettings {
        ClientSettings {
            request_timeout,
            attempt_timeout: request_timeout,
            spread_reads: false,
            read_node: None,
            source_ip: None,
        }
    }
}

/// A key/value client of one target.
pub trait KvClient: Send {
    /// Reads `key` linearizably (`None`: absent).
    fn read<'a>(&'a mut self, key: &'a str) -> BoxFuture<'a, Outcome<Option<String>>>;
    /// Writes `value` to `key`.
    fn write<'a>(&'a mut self, key: &'a str, value: &'a str) -> BoxFuture<'a, Outcome<()>>;
    /// Writes `new` if `key` holds `expected` (`None`: absent).
    fn cas<'a>(
        &'a mut self,
        key: &'a str,
        expected: Option<&'a str>,
        new: &'a str,
    ) -> BoxFuture<'a, Outcome<CasAnswer>>;
    /// Closes connections.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// A system under test.
pub trait Target: Send + Sync + std::fmt::Debug {
    /// The target's name, as in plans.
    fn kind(&self) -> TargetKind;
    /// The command line of node `id`; `routes` says how it reaches each peer.
    fn node_command(&self, layout: &Layout, id: u64, routes: &PeerRoutes) -> NodeCommand;
    /// Asks node `id` for its status (bounded by `timeout`).
    fn status<'a>(
        &'a self,
        layout: &'a Layout,
        id: u64,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<NodeStatus, String>>;
    /// A new client of the whole cluster.
    fn connect(
        &self,
        layout: &Layout,
        settings: &ClientSettings,
    ) -> Result<Box<dyn KvClient>, String>;
    /// The program's version, for the manifest.
    fn version(&self) -> String;
    /// Whether every node's replicated state agrees (as far as the target lets one compare from outside):
    /// `Some(agree)` with what was compared, or `None` when it cannot tell (e.g. a node does not answer).
    fn agreement<'a>(&'a self, layout: &'a Layout) -> BoxFuture<'a, (Option<bool>, String)>;
    /// Asks the leader `from` to hand leadership to node `to` (a planned failover); `Ok` once it accepted.
    fn transfer_leadership<'a>(
        &'a self,
        layout: &'a Layout,
        from: u64,
        to: u64,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// The command line of a fresh node `id` that joins the running cluster through the member at `via`
    /// (membership faults). Targets that cannot add nodes keep the default, which refuses.
    fn join_command(
        &self,
        layout: &Layout,
        id: u64,
        via: SocketAddr,
    ) -> Result<NodeCommand, String> {
        let _ = (layout, id, via);
        Err(format!(
            "the {} target cannot add nodes",
            self.kind().name()
        ))
    }
    /// The membership the leader among `members` reports. Targets that cannot tell keep the default.
    fn membership<'a>(
        &'a self,
        layout: &'a Layout,
        members: &'a [u64],
    ) -> BoxFuture<'a, Result<MembershipView, String>> {
        let _ = (layout, members);
        let why = format!(
            "the {} target does not report its membership",
            self.kind().name()
        );
        Box::pin(async move { Err(why) })
    }
    /// Asks the cluster (any of `members`, following redirects) to remove node `id`, as an operator's admin
    /// command would, within `timeout`. Targets that cannot remove nodes keep the default, which refuses.
    fn remove_member<'a>(
        &'a self,
        layout: &'a Layout,
        members: &'a [u64],
        id: u64,
        timeout: Duration,
    ) -> BoxFuture<'a, MemberChange> {
        let _ = (layout, members, id, timeout);
        let why = format!("the {} target cannot remove nodes", self.kind().name());
        Box::pin(async move { MemberChange::NotDone(why) })
    }
}

/// The membership as the leader reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MembershipView {
    /// The node that answered as leader (highest term).
    pub leader: u64,
    /// Its voters.
    pub voters: Vec<u64>,
    /// Its learners (joined, not yet promoted).
    pub learners: Vec<u64>,
}

/// What a membership change request came to, as honestly as the answer allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// The cluster committed it.
    Done,
    /// Definitely not done (refused, not a member, no leader answered before sending).
    NotDone(String),
    /// Maybe done (the request may have been applied).
    Unknown(String),
}

/// The target of `kind` with node binary `binary`.
pub fn build(
    kind: TargetKind,
    binary: PathBuf,
    layout: &Layout,
) -> Result<Box<dyn Target>, String> {
    Ok(match kind {
        TargetKind::RaftNode => Box::new(raft_node::RaftNode::new(binary, layout)?),
        TargetKind::Etcd => Box::new(etcd::Etcd::new(binary, layout)?),
    })
}

/// The default binary of `kind`, and a hint for when it is missing.
pub fn default_binary(kind: TargetKind) -> (PathBuf, &'static str) {
    match kind {
        TargetKind::RaftNode => {
            let exe = std::env::current_exe().unwrap_or_default();
            (
                exe.with_file_name("raft-node"),
                "build it with `cargo build --release -p raft-node` or set cluster.binary",
            )
        }
        TargetKind::Etcd => (
            etcd::find_binary().unwrap_or_else(|| PathBuf::from("/usr/bin/etcd")),
            "install it with `apt-get install etcd-server` or set cluster.binary",
        ),
    }
}

/// Finds the current leader: the node that claims leadership in the highest term, among `ids`.
pub async fn find_leader(
    target: &dyn Target,
    layout: &Layout,
    ids: &[u64],
    timeout: Duration,
) -> Option<u64> {
    let mut best: Option<(u64, u64)> = None;
    for &id in ids {
        if let Ok(s) = target.status(layout, id, timeout).await {
            if s.role == Role::Leader && best.is_none_or(|(t, _)| s.term > t) {
                best = Some((s.term, id));
            }
        }
    }
    best.map(|(_, id)| id)
}

/// The first line `PROGRAM --version` prints, or why it printed none.
pub fn program_version(program: &std::path::Path) -> String {
    match std::process::Command::new(program)
        .arg("--version")
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines()
                .next()
                .map_or_else(|| "unknown".to_string(), |l| l.trim().to_string())
        }
        Err(e) => format!("unknown ({e})"),
    }
}
