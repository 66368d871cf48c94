//! Plans: TOML files parsed into typed structs. Unknown keys and bad values are errors that name the file, the
//! line and the key and say what was expected; values are bounded so a plan can never make the tool panic.
//!
//! ```toml
//! name = "smoke"
//! seed = 42                 # optional: drawn at random (and printed) when absent
//! duration = "10s"          # the fault phase
//! warmup = "2s"
//! recovery = "4s"
//! stop_early = false        # true: stop as soon as a violation is certain (a node crashed, a retired key's
//!                           # history is not linearizable); the run still heals, stops and reports as usual
//! watch_interval = "5ms"    # how often each node is asked for its status while a fault is `on` a cluster
//!                           # event (1ms to 1s): sooner reactions against a status round trip per node each time
//!
//! [cluster]
//! target = "raft-node"      # or "etcd"
//! nodes = 3
//! hosts = "local"           # or "netns": each node in its own network namespace (root)
//! heartbeat_interval = "50ms"
//! election_timeout_min = "150ms"
//! election_timeout_max = "300ms"
//!
//! [workload]
//! clients = 5
//! rate = 200                # operations per second, all clients together
//! keys = 4                  # keys in use at once
//! ops_per_key = 150         # then the key is retired and a fresh one used
//! mix = { read = 0.5, write = 0.3, cas = 0.2 }
//! request_timeout = "1s"    # an op's deadline, retries inside it included
//! attempt_timeout = "250ms" # one attempt at one node (default: a quarter of request_timeout, so an op is
//!                           # retried inside itself; = request_timeout: never)
//! reads_from = "any-node"   # (default) each read to the next node; or "leader", or "n2" (every read to n2 first)
//! read_after_ack = "other-client" # (default) another client reads a key right after its write is acknowledged;
//!                           # or "same-client" or "off"
//!
//! [[faults]]
//! kind = "kill"             # a kind of one of the fault families (see `faults`)
//! target = "leader"         # n1 | random | leader | follower | lagging | minority | majority | all, or
//!                           # observed (with `on`): the node the event is about
//! every = "3s"              # or: at = ["2s", "7s"], or: when/after = "<fault name>" (+ wait),
//!                           # or: on = "new-leader" (+ wait): whenever the status watcher sees a node lead
//!                           # in a new term (it asks every node every `watch_interval`); or on = "new-term":
//!                           # whenever it sees a term no node was in before (an election has begun)
//! duration = "1s"           # how long it lasts before it is undone (restart / resume)
//! ```
//!
//! Times from `at`, `every`, `when` and `after` are fixed before the run (`chaos validate` prints them); a fault
//! `on` a cluster event, and any fault `when`/`after` it, is scheduled as the events come. A fault never
//! overlaps itself: an occurrence due while the previous one is still in force is left out.

mod units;

pub use units::{parse_duration, Dur, SignedDur, Target, DUR_MAX};

use crate::faults::{Family, FaultSpec};
use crate::targets::TargetKind;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A whole plan, typed and validated.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    /// The plan's name (used in the run folder's name).
    pub name: String,
    /// The seed; drawn at random when absent.
    pub seed: Option<u64>,
    /// How long faults are injected.
    pub duration: Dur,
    /// Workload without faults before the fault phase.
    pub warmup: Dur,
    /// Workload without faults after everything is healed, before the final reads.
    pub recovery: Dur,
    /// Stop as soon as a violation is certain (see `chaos::early_stop`).
    pub stop_early: bool,
    /// How often the status watcher asks each node, while some fault starts `on` a cluster event.
    pub watch_interval: Dur,
    /// The system under test.
    pub cluster: ClusterPlan,
    /// The client workload.
    pub workload: WorkloadPlan,
    /// The faults.
    pub faults: Vec<FaultPlan>,
    /// What the run must show to pass.
    pub expect: Expectations,
}

/// The plan as written (faults still raw tables, with their place in the file).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    name: String,
    seed: Option<u64>,
    duration: Dur,
    #[serde(default = "default_warmup")]
    warmup: Dur,
    #[serde(default = "default_recovery")]
    recovery: Dur,
    #[serde(default)]
    stop_early: bool,
    #[serde(default = "default_watch_interval")]
    watch_interval: Dur,
    #[serde(default)]
    cluster: ClusterPlan,
    #[serde(default)]
    workload: WorkloadPlan,
    #[serde(default)]
    faults: Vec<toml::Spanned<toml::Table>>,
    #[serde(default)]
    expect: Expectations,
}

fn default_warmup() -> Dur {
    Dur(Duration::from_secs(2))
}

/// Reacts within a few ms of an election, for a status round trip per node per interval (on kept connections:
/// no measurable cost to a saturated 2-core cluster at 5 ms).
fn default_watch_interval() -> Dur {
    Dur(Duration::from_millis(5))
}

fn default_recovery() -> Dur {
    Dur(Duration::from_secs(4))
}

/// The cluster.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterPlan {
    /// Which system: "raft-node" or "etcd".
    pub target: TargetKind,
    /// Number of nodes.
    pub nodes: usize,
    /// The node binary (default: `raft-node` next to the chaos binary; etcd on PATH or /usr/bin/etcd).
    pub binary: Option<PathBuf>,
    /// Heartbeat interval.
    pub heartbeat_interval: Dur,
    /// Election timeout range.
    pub election_timeout_min: Dur,
    /// Election timeout range.
    pub election_timeout_max: Dur,
    /// Extra arguments passed to every node (e.g. ["--read-mode", "lease"] or ["--bug", "stale-read"]).
    pub extra_args: Vec<String>,
    /// Take a snapshot every this many entries.
    pub snapshot_interval_entries: u64,
    /// How long to wait for the first leader.
    pub startup_timeout: Dur,
    /// Validity of the run's certificates, from one hour before the start.
    pub cert_validity: Dur,
    /// Mutual TLS between nodes and for clients (raft-node always uses it).
    pub tls: bool,
    /// Where nodes run: "local" processes, or "netns" (a network namespace and address of its own each; root).
    pub hosts: HostsKind,
    /// How network faults reach the nodes: "auto" (relay on local hosts, kernel rules on netns hosts), "relay"
    /// (userspace UDP relays, no privileges, every packet fault) or "nftables" (kernel rules between per-node
    /// addresses; root and `nft`; cuts and loss only).
    pub network: NetworkBackendKind,
    /// With hosts = "ssh": the machines, node i on the i-th (round robin when there are fewer).
    pub ssh_hosts: Vec<crate::hosts::ssh::SshHost>,
    /// With hosts = "ssh": a known_hosts file of its own (default: the user's, as ssh would use).
    pub ssh_known_hosts: Option<PathBuf>,
}

/// The network fault backends.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkBackendKind {
    /// Relay on local hosts, kernel rules on namespaces.
    #[default]
    Auto,
    /// A UDP relay on every directed link.
    Relay,
    /// nftables rules between per-node addresses.
    Nftables,
}

/// Where nodes run.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostsKind {
    /// Child processes on this machine, on loopback.
    #[default]
    Local,
    /// Each node in a network namespace of its own, joined by a bridge with no uplink (root).
    Netns,
    /// Machines reached over SSH (`cluster.ssh_hosts`).
    Ssh,
}

impl HostsKind {
    /// Whether each node has an address of its own that every packet it sends carries.
    pub fn isolates_nodes(self) -> bool {
        matches!(self, HostsKind::Netns | HostsKind::Ssh)
    }
}

impl ClusterPlan {
    /// The network backend this plan resolves to.
    pub fn network_backend(&self) -> NetworkBackendKind {
        match (self.network, self.hosts) {
            (NetworkBackendKind::Auto, HostsKind::Local) => NetworkBackendKind::Relay,
            (NetworkBackendKind::Auto, HostsKind::Netns | HostsKind::Ssh) => {
                NetworkBackendKind::Nftables
            }
            (other, _) => other,
        }
    }
}

impl Default for ClusterPlan {
    fn default() -> Self {
        ClusterPlan {
            target: TargetKind::RaftNode,
            nodes: 3,
            binary: None,
            heartbeat_interval: Dur(Duration::from_millis(50)),
            election_timeout_min: Dur(Duration::from_millis(150)),
            election_timeout_max: Dur(Duration::from_millis(300)),
            extra_args: Vec::new(),
            snapshot_interval_entries: 1000,
            startup_timeout: Dur(Duration::from_secs(15)),
            cert_validity: Dur(Duration::from_secs(24 * 3600)),
            tls: true,
            hosts: HostsKind::Local,
            network: NetworkBackendKind::Auto,
            ssh_hosts: Vec::new(),
            ssh_known_hosts: None,
        }
    }
}

/// The consistency model the history is checked against.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// Reads and writes.
    Register,
    /// Reads, writes and compare-and-set.
    CasRegister,
}

/// Fractions of each operation (normalised; they need not sum to 1).
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    /// Reads.
    pub read: f64,
    /// Writes.
    pub write: f64,
    /// Compare-and-sets.
    pub cas: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            read: 0.5,
            write: 0.3,
            cas: 0.2,
        }
    }
}

/// The workload.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadPlan {
    /// The model.
    pub model: Model,
    /// Concurrent clients.
    pub clients: usize,
    /// Target operations per second, all clients together.
    pub rate: f64,
    /// Keys in use at once.
    pub keys: usize,
    /// Operations on a key before it is retired for a fresh one (keeps each key's history checkable).
    pub ops_per_key: u64,
    /// Operation mix.
    pub mix: Mix,
    /// Deadline of one operation (retries inside it included); after it the outcome is indeterminate.
    pub request_timeout: Dur,
    /// Deadline of one attempt at one node inside an operation (default: a quarter of `request_timeout`, see
    /// [`WorkloadPlan::attempt_deadline`]). Shorter than the op's deadline, the client retries within it as a real
    /// client does: raft-node resends a write with the same session and sequence number (applied at most once);
    /// etcd retries only what is safe (reads, and writes whose request was certainly not delivered). Set it to
    /// `request_timeout` for one attempt per op.
    pub attempt_timeout: Option<Dur>,
    /// Longest time the checker may search (per run) before answering "unknown".
    pub check_time_limit: Dur,
    /// Where reads go: "any-node" (the default: each read to the next node in turn, as behind a load balancer,
    /// so a node that answers without its leader's say is asked too), "leader" (the client follows redirects to
    /// the leader) or a node, e.g. "n2" (every read goes there first; a correct
    /// node redirects it to the leader).
    pub reads_from: ReadsFrom,
    /// Reads right after an acknowledged write or applied cas, of the key just written: "off", "same-client"
    /// (the writer reads it back: read-your-writes) or "other-client" (a second client of the same worker, its
    /// own session and connections, reads it at once, from where `reads_from` says; the default).
    pub read_after_ack: ReadAfterAck,
}

/// Where clients send reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(into = "String")]
pub enum ReadsFrom {
    /// The leader, as far as the client knows.
    Leader,
    /// Every node in turn.
    #[default]
    AnyNode,
    /// This node first (by id).
    Node(u64),
}

impl std::fmt::Display for ReadsFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadsFrom::Leader => f.write_str("leader"),
            ReadsFrom::AnyNode => f.write_str("any-node"),
            ReadsFrom::Node(id) => write!(f, "n{id}"),
        }
    }
}

impl From<ReadsFrom> for String {
    fn from(r: ReadsFrom) -> String {
        r.to_string()
    }
}

impl<'de> Deserialize<'de> for ReadsFrom {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ReadsFrom, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = match text.as_str() {
            "leader" => Some(ReadsFrom::Leader),
            "any-node" => Some(ReadsFrom::AnyNode),
            other => other
                .strip_prefix('n')
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .map(ReadsFrom::Node),
        };
        parsed.ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected \"leader\", \"any-node\" or a node like \"n2\", got {text:?}"
            ))
        })
    }
}

/// Reads issued right after an acknowledged write.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadAfterAck {
    /// None.
    Off,
    /// The writing client reads the key back.
    SameClient,
    /// Another client (its own session) reads the key at once.
    #[default]
    OtherClient,
}

impl Default for WorkloadPlan {
    fn default() -> Self {
        WorkloadPlan {
            model: Model::CasRegister,
            clients: 5,
            rate: 200.0,
            keys: 4,
            ops_per_key: 150,
            mix: Mix::default(),
            request_timeout: Dur(Duration::from_secs(1)),
            attempt_timeout: None,
            check_time_limit: Dur(Duration::from_secs(60)),
            reads_from: ReadsFrom::AnyNode,
            read_after_ack: ReadAfterAck::OtherClient,
        }
    }
}

impl WorkloadPlan {
    /// How many attempts fit in an op's deadline when the plan names no `attempt_timeout`.
    pub const DEFAULT_ATTEMPTS_PER_OP: u32 = 4;

    /// The deadline of one attempt: the plan's `attempt_timeout`, else a quarter of `request_timeout` (at least
    /// 1 ms). A default shorter than the op's deadline means ops are retried inside themselves, as a real client
    /// does, so a write whose first answer was lost is resent and a server that applies it twice is seen.
    pub fn attempt_deadline(&self) -> Duration {
        self.attempt_timeout.map_or_else(
            || {
                (self.request_timeout.0 / Self::DEFAULT_ATTEMPTS_PER_OP)
                    .max(Duration::from_millis(1))
            },
            |a| a.0,
        )
    }
}

/// One fault of the plan: when and whom (common to every family), and what (the family's fields).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    /// A name for reports and for other faults to refer to (default: the kind).
    pub name: Option<String>,
    /// To whom: "n1", "random", "leader", "follower", "lagging", "observed", "minority", "majority", "all".
    pub target: Target,
    /// Or: the nodes the latest occurrence of the named fault hit (composed faults: slow the clock of the
    /// leader another fault isolated).
    pub same_as: Option<String>,
    /// Fixed start times, from the start of the fault phase.
    pub at: Vec<Dur>,
    /// Or: start at random, on average this often (uniform between half and one and a half times it).
    pub every: Option<Dur>,
    /// Or: start whenever another fault starts or ends (plus a wait).
    pub trigger: Option<Trigger>,
    /// How long it lasts before it is undone.
    pub duration: Dur,
    /// What it does.
    pub spec: FaultSpec,
}

/// A fault started by something else than the clock: another fault's start or end (`when = "NAME"`,
/// `after = "NAME"`), resolved on the timeline before the run like every other time; or a change the status
/// watcher sees in the cluster (`on = "new-leader"`), which happens when it happens, so such a fault (and any
/// fault started by it) is scheduled during the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// What starts it.
    pub source: TriggerSource,
    /// How long after it.
    pub wait: Dur,
}

/// What starts a triggered fault.
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerSource {
    /// An edge of another fault of the plan.
    Fault {
        /// The other fault's name.
        name: String,
        /// Its start or its end.
        edge: Edge,
    },
    /// A change in the cluster.
    Cluster(ClusterEvent),
}

/// A change in the cluster that can start a fault, as the status watcher sees it (it asks every node for its
/// status every few milliseconds while the plan has such a fault).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterEvent {
    /// A node reports that it leads, in a term above every term led so far: an election just ended. A fault
    /// on it hits while the new leader's first entries are still in flight (the window in which a voter that
    /// restarts, or a leader cut off, exposes how votes and commits are made durable).
    NewLeader,
    /// A node reports a term above every term seen so far: an election has begun (with pre-vote, only once a
    /// majority agreed that the candidate could win) and may not have ended. A fault on it hits voters while
    /// they vote. On loopback an election often ends within one `watch_interval`, so the watcher may see the new
    /// term only from the winner: the event then comes just before that term's `new-leader`; delayed links
    /// stretch elections so it comes mid-election.
    NewTerm,
}

impl ClusterEvent {
    /// The plan's spelling.
    pub fn key(self) -> &'static str {
        match self {
            ClusterEvent::NewLeader => "new-leader",
            ClusterEvent::NewTerm => "new-term",
        }
    }
}

/// Which edge of another fault starts a triggered one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Edge {
    /// `when`: as the other fault starts.
    Start,
    /// `after`: as the other fault ends (is healed).
    End,
}

impl Edge {
    /// The plan key.
    pub fn key(self) -> &'static str {
        match self {
            Edge::Start => "when",
            Edge::End => "after",
        }
    }
}

/// The fields every fault has, whatever its family.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonFields {
    kind: String,
    name: Option<String>,
    target: Option<Target>,
    same_as: Option<String>,
    #[serde(default)]
    at: Vec<Dur>,
    every: Option<Dur>,
    when: Option<String>,
    after: Option<String>,
    on: Option<ClusterEvent>,
    wait: Option<Dur>,
    #[serde(default = "default_fault_duration")]
    duration: Dur,
}

const COMMON_KEYS: [&str; 11] = [
    "kind", "name", "target", "same_as", "at", "every", "when", "after", "on", "wait", "duration",
];

fn default_fault_duration() -> Dur {
    Dur(Duration::from_secs(1))
}

impl FaultPlan {
    /// Parses one `[[faults]]` table: the common fields here, the rest by the kind's family.
    fn parse(table: &toml::Table) -> Result<FaultPlan, String> {
        let (common, rest): (toml::Table, toml::Table) = table
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .partition(|(k, _)| COMMON_KEYS.contains(&k.as_str()));
        let common = CommonFields::deserialize(toml::Value::Table(common))
            .map_err(|e| e.message().to_string())?;
        let spec = FaultSpec::parse(&common.kind, &rest)?;
        if common.same_as.is_some() && common.target.is_some() {
            return Err(
                "give either `target` or `same_as` (the nodes another fault hit), not both".into(),
            );
        }
        let source = match (common.when, common.after, common.on) {
            (Some(name), None, None) => Some(TriggerSource::Fault {
                name,
                edge: Edge::Start,
            }),
            (None, Some(name), None) => Some(TriggerSource::Fault {
                name,
                edge: Edge::End,
            }),
            (None, None, Some(event)) => Some(TriggerSource::Cluster(event)),
            (None, None, None) => None,
            _ => return Err(
                "give one of `when` (another fault's start), `after` (its end) or `on` (a cluster event), not several"
                    .into(),
            ),
        };
        let trigger = match (source, common.wait) {
            (Some(source), wait) => Some(Trigger {
                source,
                wait: wait.unwrap_or(Dur(Duration::ZERO)),
            }),
            (None, Some(_)) => {
                return Err("`wait` only goes with `when`, `after` or `on` (how long after what starts the fault)".into())
            }
            (None, None) => None,
        };
        Ok(FaultPlan {
            name: common.name,
            target: common.target.unwrap_or(Target::Random),
            same_as: common.same_as,
            at: common.at,
            every: common.every,
            trigger,
            duration: common.duration,
            spec,
        })
    }

    /// The name for reports.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(self.spec.kind())
    }
}

impl serde::Serialize for FaultPlan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = serde_json::Map::new();
        map.insert("kind".into(), self.spec.kind().into());
        if let Some(name) = &self.name {
            map.insert("name".into(), name.clone().into());
        }
        match &self.same_as {
            Some(other) => map.insert("same_as".into(), other.clone().into()),
            None => map.insert("target".into(), self.target.to_string().into()),
        };
        if !self.at.is_empty() {
            let at: Vec<String> = self.at.iter().map(Dur::to_string).collect();
            map.insert("at".into(), at.into());
        }
        if let Some(every) = self.every {
            map.insert("every".into(), every.to_string().into());
        }
        if let Some(t) = &self.trigger {
            match &t.source {
                TriggerSource::Fault { name, edge } => {
                    map.insert(edge.key().into(), name.clone().into())
                }
                TriggerSource::Cluster(event) => map.insert("on".into(), event.key().into()),
            };
            if !t.wait.0.is_zero() {
                map.insert("wait".into(), t.wait.to_string().into());
            }
        }
        map.insert("duration".into(), self.duration.to_string().into());
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&self.spec) {
            map.extend(fields);
        }
        map.serialize(s)
    }
}

pub use crate::report::expect::Expectations;

/// A plan that cannot be used. The message names the file and, where it can, the line, column and key.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read.
    #[error("cannot read plan {path}: {source}")]
    Read {
        /// The plan file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid for the schema (the message includes line, column and key).
    #[error("{path}: {message}")]
    Parse {
        /// The plan file.
        path: String,
        /// What is wrong, and where.
        message: String,
    },
    /// The values do not fit together.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The plan file.
        path: String,
        /// The offending key, e.g. `faults[1].target`.
        field: String,
        /// What was expected.
        message: String,
    },
}

/// The line (1-based) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

impl Plan {
    /// Reads, parses and validates a plan file.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Plan::parse(&text, &path.display().to_string())
    }

    /// Parses and validates plan text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Plan, PlanError> {
        let file: PlanFile = toml::from_str(text).map_err(|e| PlanError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().replace("TOML parse error at ", ""),
        })?;
        let mut faults = Vec::new();
        for (i, spanned) in file.faults.iter().enumerate() {
            let fault =
                FaultPlan::parse(spanned.get_ref()).map_err(|message| PlanError::Parse {
                    path: origin.to_string(),
                    message: format!(
                        "line {}, faults[{i}]: {message}",
                        line_of(text, spanned.span().start)
                    ),
                })?;
            faults.push(fault);
        }
        let plan = Plan {
            name: file.name,
            seed: file.seed,
            duration: file.duration,
            warmup: file.warmup,
            recovery: file.recovery,
            stop_early: file.stop_early,
            watch_interval: file.watch_interval,
            cluster: file.cluster,
            workload: file.workload,
            faults,
            expect: file.expect,
        };
        plan.validate(origin)?;
        Ok(plan)
    }

    /// The whole run's planned length: warm-up, faults, recovery.
    pub fn total(&self) -> Duration {
        self.warmup.0 + self.duration.0 + self.recovery.0
    }

    /// Whether any fault belongs to `family`.
    pub fn uses(&self, family: Family) -> bool {
        self.faults.iter().any(|f| f.spec.family() == family)
    }

    /// Whether any fault needs a network backend.
    pub fn needs_network(&self) -> bool {
        self.uses(Family::Network)
    }

    /// Whether any fault reaches the links between clients and nodes.
    pub fn uses_client_links(&self) -> bool {
        self.faults.iter().any(|f| f.spec.touches_clients())
    }

    /// The fault that starts fault `index` (`when`/`after`), if any and if the name resolves.
    pub fn started_by(&self, index: usize) -> Option<usize> {
        match &self.faults[index].trigger.as_ref()?.source {
            TriggerSource::Fault { name, .. } => self.fault_named(index, name).ok(),
            TriggerSource::Cluster(_) => None,
        }
    }

    /// Whether fault `index` is started, directly or through other faults, by a cluster event: its times are
    /// only known during the run, so the timeline computed before it leaves it out.
    pub fn reacts_to_cluster(&self, index: usize) -> bool {
        let mut at = index;
        // Validation refuses trigger loops; the bound keeps an unvalidated plan from looping here.
        for _ in 0..=self.faults.len() {
            if let Some(Trigger {
                source: TriggerSource::Cluster(_),
                ..
            }) = &self.faults[at].trigger
            {
                return true;
            }
            match self.started_by(at) {
                Some(next) => at = next,
                None => return false,
            }
        }
        false
    }

    /// Whether the run needs the status watcher (some fault starts on a cluster event).
    pub fn watches_cluster(&self) -> bool {
        (0..self.faults.len()).any(|i| self.reacts_to_cluster(i))
    }

    /// Whether any fault needs the clock shim.
    pub fn needs_clock_shim(&self) -> bool {
        self.uses(Family::Clock)
    }
}

mod validate;
pub use validate::nodes_max;

#[cfg(test)]
mod tests;
