//! Plans: TOML files parsed into typed structs. Unknown keys and bad values are errors that name the file, the
//! line and column, the key and what was expected.
//!
//! ```toml
//! name = "smoke"
//! seed = 42                 # optional: drawn at random (and printed) when absent
//! duration = "10s"          # the fault phase
//! warmup = "2s"
//! recovery = "4s"
//!
//! [cluster]
//! nodes = 3
//! heartbeat_interval = "50ms"
//! election_timeout_min = "150ms"
//! election_timeout_max = "300ms"
//! extra_args = []
//!
//! [workload]
//! clients = 5
//! rate = 200                # operations per second, all clients together
//! keys = 4                  # keys in use at once
//! ops_per_key = 150         # then the key is retired and a fresh one used
//! mix = { read = 0.5, write = 0.3, cas = 0.2 }
//! request_timeout = "1s"
//!
//! [[faults]]
//! kind = "kill"             # kill | terminate | pause
//! target = "leader"         # n1 | random | leader | minority | majority | all
//! every = "3s"              # or: at = ["2s", "7s"]
//! duration = "1s"           # how long it lasts before it is undone (restart / resume)
//! ```

use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A duration written as "150ms", "10s", "1m 30s".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(into = "String")]
pub struct Dur(pub Duration);

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        d.to_string()
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dur, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Dur).map_err(|e| {
            de::Error::custom(format!(
                "expected a duration like \"150ms\" or \"10s\", got {text:?} ({e})"
            ))
        })
    }
}

/// A whole plan.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The plan's name (used in the run folder's name).
    pub name: String,
    /// The seed; drawn at random when absent.
    pub seed: Option<u64>,
    /// How long faults are injected.
    pub duration: Dur,
    /// Workload without faults before the fault phase.
    #[serde(default = "default_warmup")]
    pub warmup: Dur,
    /// Workload without faults after everything is healed, before the final reads.
    #[serde(default = "default_recovery")]
    pub recovery: Dur,
    /// The system under test.
    #[serde(default)]
    pub cluster: ClusterPlan,
    /// The client workload.
    #[serde(default)]
    pub workload: WorkloadPlan,
    /// The faults.
    #[serde(default)]
    pub faults: Vec<FaultPlan>,
    /// What the run must show to pass.
    #[serde(default)]
    pub expect: Expectations,
}

fn default_warmup() -> Dur {
    Dur(Duration::from_secs(2))
}

fn default_recovery() -> Dur {
    Dur(Duration::from_secs(4))
}

/// The cluster.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterPlan {
    /// Which system: only "raft-node" has an adapter today.
    pub target: String,
    /// Number of nodes.
    pub nodes: usize,
    /// The node binary (default: `raft-node` next to the chaos binary).
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
    /// How network faults reach the nodes: "relay" (userspace UDP relays, no privileges, every packet fault) or
    /// "nftables" (kernel rules between per-node loopback addresses; root and `nft` required; cuts and loss only).
    pub network: NetworkBackendKind,
}

/// The network fault backends.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkBackendKind {
    /// A UDP relay on every directed link.
    #[default]
    Relay,
    /// nftables rules between 127.0.0.x addresses.
    Nftables,
}

impl Default for ClusterPlan {
    fn default() -> Self {
        ClusterPlan {
            target: "raft-node".into(),
            nodes: 3,
            binary: None,
            heartbeat_interval: Dur(Duration::from_millis(50)),
            election_timeout_min: Dur(Duration::from_millis(150)),
            election_timeout_max: Dur(Duration::from_millis(300)),
            extra_args: Vec::new(),
            snapshot_interval_entries: 1000,
            startup_timeout: Dur(Duration::from_secs(15)),
            cert_validity: Dur(Duration::from_secs(24 * 3600)),
            network: NetworkBackendKind::Relay,
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
    /// Longest time the checker may search (per run) before answering "unknown".
    pub check_time_limit: Dur,
    /// Where reads go: "leader" (the client follows redirects to the leader) or "any-node" (each read to the next
    /// node in turn, as behind a load balancer).
    pub reads_from: ReadsFrom,
}

/// Where clients send reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadsFrom {
    /// The leader, as far as the client knows.
    #[default]
    Leader,
    /// Every node in turn.
    AnyNode,
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
            check_time_limit: Dur(Duration::from_secs(60)),
            reads_from: ReadsFrom::Leader,
        }
    }
}

/// The kinds of fault.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL the node's processes; restart them from their data dirs when the fault ends.
    Kill,
    /// SIGTERM (graceful stop); restart when the fault ends.
    Terminate,
    /// SIGSTOP; SIGCONT when the fault ends.
    Pause,
    /// Cut links in the shape of `topology`; heal them when the fault ends.
    Partition,
    /// Degrade the links of the targets (loss, delay, jitter, duplication, reordering, rate limit).
    Packet,
    /// Step the targets' wall clocks by `offset` (as NTP would); reset when the fault ends.
    ClockBump,
    /// Flip the targets' wall clocks between `offset` and true time every `period`.
    ClockStrobe,
    /// Run the targets' clocks (wall and monotonic) at `clock_rate` times real speed.
    ClockDrift,
}

impl FaultKind {
    /// The name used in plans and events.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Terminate => "terminate",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Packet => "packet",
            FaultKind::ClockBump => "clock-bump",
            FaultKind::ClockStrobe => "clock-strobe",
            FaultKind::ClockDrift => "clock-drift",
        }
    }

    /// Whether the fault needs the network relays.
    pub fn is_network(self) -> bool {
        matches!(self, FaultKind::Partition | FaultKind::Packet)
    }

    /// Whether the fault needs the clock shim.
    pub fn is_clock(self) -> bool {
        matches!(
            self,
            FaultKind::ClockBump | FaultKind::ClockStrobe | FaultKind::ClockDrift
        )
    }
}

/// A signed duration: "+10s", "-1h", "250ms".
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(into = "String")]
pub struct SignedDur {
    /// Magnitude.
    pub magnitude: Duration,
    /// Whether it is negative (backwards).
    pub negative: bool,
}

impl SignedDur {
    /// Nanoseconds, signed.
    pub fn as_nanos_i64(self) -> i64 {
        let n = self.magnitude.as_nanos().min(i64::MAX as u128) as i64;
        if self.negative {
            -n
        } else {
            n
        }
    }
}

impl fmt::Display for SignedDur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.negative { "-" } else { "+" };
        write!(f, "{sign}{}", humantime::format_duration(self.magnitude))
    }
}

impl From<SignedDur> for String {
    fn from(d: SignedDur) -> String {
        d.to_string()
    }
}

impl<'de> Deserialize<'de> for SignedDur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SignedDur, D::Error> {
        let text = String::deserialize(deserializer)?;
        let trimmed = text.trim();
        let (negative, rest) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed.trim_start_matches('+')),
        };
        humantime::parse_duration(rest)
            .map(|magnitude| SignedDur {
                magnitude,
                negative,
            })
            .map_err(|e| {
                de::Error::custom(format!(
                    "expected a signed duration like \"+10s\" or \"-500ms\", got {text:?} ({e})"
                ))
            })
    }
}

/// One fault of the plan.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// What to do.
    pub kind: FaultKind,
    /// To whom: "n1", "random", "leader", "minority", "majority", "all".
    #[serde(default = "default_target")]
    pub target: Target,
    /// Fixed start times, from the start of the fault phase.
    #[serde(default)]
    pub at: Vec<Dur>,
    /// Or: start at random, on average this often (uniform between half and one and a half times it).
    pub every: Option<Dur>,
    /// How long it lasts before it is undone.
    #[serde(default = "default_fault_duration")]
    pub duration: Dur,
    /// Partition: the shape (isolate cuts off the target; one-way deafens the target).
    pub topology: Option<crate::topology::Topology>,
    /// Partition with topology "groups": the groups, by node id.
    #[serde(default)]
    pub groups: Vec<Vec<u64>>,
    /// Packet: fraction of packets dropped.
    pub loss: Option<f64>,
    /// Packet: added one-way delay.
    pub delay: Option<Dur>,
    /// Packet: extra random delay, uniform in [0, jitter].
    pub jitter: Option<Dur>,
    /// Packet: fraction of packets duplicated.
    pub duplicate: Option<f64>,
    /// Packet: fraction of packets held back so later ones overtake them.
    pub reorder: Option<f64>,
    /// Packet: bandwidth limit in bytes per second.
    pub rate_limit_bytes_per_s: Option<u64>,
    /// Clock bump and strobe: the step of the wall clock.
    pub offset: Option<SignedDur>,
    /// Clock strobe: how often the wall clock flips.
    pub period: Option<Dur>,
    /// Clock drift: the rate of the node's clocks (2.0 = twice as fast).
    pub clock_rate: Option<f64>,
}

fn default_target() -> Target {
    Target::Random
}

fn default_fault_duration() -> Dur {
    Dur(Duration::from_secs(1))
}

/// Whom a fault hits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(into = "String")]
pub enum Target {
    /// One named node.
    Node(u64),
    /// One node chosen with the seed.
    Random,
    /// Whoever leads when the fault starts.
    Leader,
    /// A random minority (chosen with the seed).
    Minority,
    /// A random majority (chosen with the seed).
    Majority,
    /// Every node.
    All,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(id) => write!(f, "n{id}"),
            Target::Random => f.write_str("random"),
            Target::Leader => f.write_str("leader"),
            Target::Minority => f.write_str("minority"),
            Target::Majority => f.write_str("majority"),
            Target::All => f.write_str("all"),
        }
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        t.to_string()
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Target, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = match text.as_str() {
            "random" => Some(Target::Random),
            "leader" => Some(Target::Leader),
            "minority" => Some(Target::Minority),
            "majority" => Some(Target::Majority),
            "all" => Some(Target::All),
            other => other
                .strip_prefix('n')
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .map(Target::Node),
        };
        parsed.ok_or_else(|| {
            de::Error::custom(format!(
                "expected a target: \"n1\", \"random\", \"leader\", \"minority\", \"majority\" or \"all\", got {text:?}"
            ))
        })
    }
}

/// What a run must show to pass, besides a linearizable history.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectations {
    /// At least this many operations completed ok (a run that did nothing proves nothing).
    pub min_ok_ops: u64,
    /// Every key's final read (after healing) must succeed: the cluster recovered.
    pub final_reads_succeed: bool,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            min_ok_ops: 1,
            final_reads_succeed: true,
        }
    }
}

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
    /// Not valid for the schema (toml's message includes line, column and key).
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
        let plan: Plan = toml::from_str(text).map_err(|e| PlanError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().replace("TOML parse error at ", ""),
        })?;
        plan.validate(origin)?;
        Ok(plan)
    }

    /// Checks values against each other.
    pub fn validate(&self, origin: &str) -> Result<(), PlanError> {
        let invalid = |field: &str, message: String| PlanError::Invalid {
            path: origin.to_string(),
            field: field.to_string(),
            message,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "name",
                format!("expected letters, digits, '-' or '_', got {:?}", self.name),
            ));
        }
        if self.duration.0.is_zero() {
            return Err(invalid("duration", "must be longer than 0s".into()));
        }
        let c = &self.cluster;
        if c.target != "raft-node" {
            return Err(invalid(
                "cluster.target",
                format!("only \"raft-node\" is supported, got {:?}", c.target),
            ));
        }
        if !(1..=9).contains(&c.nodes) {
            return Err(invalid(
                "cluster.nodes",
                format!("expected 1 to 9 nodes, got {}", c.nodes),
            ));
        }
        if c.heartbeat_interval.0.is_zero()
            || c.election_timeout_min <= c.heartbeat_interval
            || c.election_timeout_max <= c.election_timeout_min
        {
            return Err(invalid(
                "cluster",
                format!(
                    "expected 0 < heartbeat_interval ({}) < election_timeout_min ({}) < election_timeout_max ({})",
                    c.heartbeat_interval, c.election_timeout_min, c.election_timeout_max
                ),
            ));
        }
        let w = &self.workload;
        if w.clients == 0 || w.clients > 1000 {
            return Err(invalid(
                "workload.clients",
                format!("expected 1 to 1000, got {}", w.clients),
            ));
        }
        if !(w.rate > 0.0 && w.rate <= 100_000.0) {
            return Err(invalid(
                "workload.rate",
                format!(
                    "expected operations per second in (0, 100000], got {}",
                    w.rate
                ),
            ));
        }
        if w.keys == 0 || w.ops_per_key == 0 {
            return Err(invalid(
                "workload.keys",
                "keys and ops_per_key must be at least 1".into(),
            ));
        }
        let m = w.mix;
        if [m.read, m.write, m.cas]
            .iter()
            .any(|x| x.is_nan() || *x < 0.0)
            || m.read + m.write + m.cas <= 0.0
        {
            return Err(invalid(
                "workload.mix",
                "expected non-negative fractions, not all zero".into(),
            ));
        }
        if w.model == Model::Register && m.cas > 0.0 {
            return Err(invalid(
                "workload.mix.cas",
                "the register model has no cas; use model = \"cas-register\"".into(),
            ));
        }
        if w.request_timeout.0.is_zero() {
            return Err(invalid(
                "workload.request_timeout",
                "must be longer than 0s".into(),
            ));
        }
        for (i, f) in self.faults.iter().enumerate() {
            let field = |name: &str| format!("faults[{i}].{name}");
            if f.at.is_empty() == f.every.is_none() {
                return Err(invalid(
                    &field("at"),
                    "give either `at` (fixed times) or `every` (random interval)".into(),
                ));
            }
            if let Some(every) = f.every {
                if every.0 < Duration::from_millis(10) {
                    return Err(invalid(
                        &field("every"),
                        format!("expected at least 10ms, got {every}"),
                    ));
                }
            }
            if let Some(late) = f.at.iter().find(|t| **t >= self.duration) {
                return Err(invalid(
                    &field("at"),
                    format!("{late} is not within the fault phase ({})", self.duration),
                ));
            }
            if let Target::Node(id) = f.target {
                if id as usize > c.nodes {
                    return Err(invalid(
                        &field("target"),
                        format!("n{id} does not exist: the cluster has {} nodes", c.nodes),
                    ));
                }
            }
            self.validate_fault_params(f)
                .map_err(|(name, message)| invalid(&field(name), message))?;
            if c.network == NetworkBackendKind::Nftables && f.kind == FaultKind::Packet {
                let unsupported = [
                    ("delay", f.delay.is_some()),
                    ("jitter", f.jitter.is_some()),
                    ("duplicate", f.duplicate.is_some()),
                    ("reorder", f.reorder.is_some()),
                    ("rate_limit_bytes_per_s", f.rate_limit_bytes_per_s.is_some()),
                ];
                if let Some((name, _)) = unsupported.iter().find(|(_, on)| *on) {
                    return Err(invalid(
                        &field(name),
                        "the nftables backend can only cut links and drop a fraction of packets (loss); use cluster.network = \"relay\"".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Plan {
    /// Checks that a fault has exactly the parameters its kind uses, with sane values.
    fn validate_fault_params(&self, f: &FaultPlan) -> Result<(), (&'static str, String)> {
        use crate::topology::Topology;
        let packet_params = [
            ("loss", f.loss.is_some()),
            ("delay", f.delay.is_some()),
            ("jitter", f.jitter.is_some()),
            ("duplicate", f.duplicate.is_some()),
            ("reorder", f.reorder.is_some()),
            ("rate_limit_bytes_per_s", f.rate_limit_bytes_per_s.is_some()),
        ];
        let present = [
            ("topology", f.topology.is_some()),
            ("groups", !f.groups.is_empty()),
            ("offset", f.offset.is_some()),
            ("period", f.period.is_some()),
            ("clock_rate", f.clock_rate.is_some()),
        ];
        let allowed: &[&str] = match f.kind {
            FaultKind::Kill | FaultKind::Terminate | FaultKind::Pause => &[],
            FaultKind::Partition => &["topology", "groups"],
            FaultKind::Packet => &[
                "loss",
                "delay",
                "jitter",
                "duplicate",
                "reorder",
                "rate_limit_bytes_per_s",
            ],
            FaultKind::ClockBump => &["offset"],
            FaultKind::ClockStrobe => &["offset", "period"],
            FaultKind::ClockDrift => &["clock_rate"],
        };
        let unused = packet_params
            .iter()
            .chain(present.iter())
            .find(|(name, on)| *on && !allowed.contains(name));
        if let Some((name, _)) = unused {
            let uses = if allowed.is_empty() {
                "nothing".to_string()
            } else {
                allowed.join(", ")
            };
            return Err((
                name,
                format!("not used by a {} fault (it uses: {uses})", f.kind.name()),
            ));
        }
        for (name, fraction) in [
            ("loss", f.loss),
            ("duplicate", f.duplicate),
            ("reorder", f.reorder),
        ] {
            if let Some(x) = fraction {
                if !(0.0..=1.0).contains(&x) {
                    return Err((
                        name,
                        format!("expected a fraction between 0 and 1, got {x}"),
                    ));
                }
            }
        }
        let n = self.cluster.nodes;
        match f.kind {
            FaultKind::Partition => match &f.topology {
                None => {
                    return Err((
                        "topology",
                        "a partition needs a topology: isolate, halves, random-halves, majorities-ring, bridge, \
                         one-way or groups"
                            .into(),
                    ))
                }
                Some(Topology::Groups) => {
                    let mut seen = std::collections::BTreeSet::new();
                    for id in f.groups.iter().flatten() {
                        if *id == 0 || *id as usize > n || !seen.insert(*id) {
                            return Err(("groups", format!("node {id} is out of range 1..={n} or listed twice")));
                        }
                    }
                    if f.groups.len() < 2 {
                        return Err(("groups", "expected at least two groups, e.g. [[1, 2], [3]]".into()));
                    }
                }
                Some(Topology::MajoritiesRing) if n < 5 => {
                    return Err(("topology", format!("majorities-ring needs at least 5 nodes, the cluster has {n}")));
                }
                Some(Topology::Bridge) if n < 3 => {
                    return Err(("topology", format!("bridge needs at least 3 nodes, the cluster has {n}")));
                }
                Some(_) if !f.groups.is_empty() => {
                    return Err(("groups", "only used with topology = \"groups\"".into()))
                }
                Some(_) => {}
            },
            FaultKind::Packet if packet_params.iter().all(|(_, on)| !on) => {
                return Err((
                    "loss",
                    "a packet fault needs at least one of loss, delay, jitter, duplicate, reorder, \
                     rate_limit_bytes_per_s"
                        .into(),
                ));
            }
            FaultKind::ClockBump | FaultKind::ClockStrobe if f.offset.is_none() => {
                return Err(("offset", "expected an offset like \"+10s\" or \"-500ms\"".into()));
            }
            FaultKind::ClockStrobe if f.period.is_none_or(|p| p.0 < Duration::from_millis(1)) => {
                return Err(("period", "expected a strobe period of at least 1ms, e.g. \"50ms\"".into()));
            }
            FaultKind::ClockDrift => match f.clock_rate {
                Some(r) if (0.01..=100.0).contains(&r) => {}
                other => return Err(("clock_rate", format!("expected a rate between 0.01 and 100, got {other:?}"))),
            },
            _ => {}
        }
        Ok(())
    }

    /// Whether any fault needs the network relays.
    pub fn needs_relays(&self) -> bool {
        self.faults.iter().any(|f| f.kind.is_network())
    }

    /// Whether any fault needs the clock shim.
    pub fn needs_clock_shim(&self) -> bool {
        self.faults.iter().any(|f| f.kind.is_clock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name = \"t\"\nduration = \"5s\"\n";

    #[test]
    fn network_and_clock_faults_take_only_their_parameters() {
        let ok = format!(
            "{MINIMAL}[[faults]]\nkind = \"partition\"\ntopology = \"groups\"\ngroups = [[1], [2, 3]]\nat = [\"1s\"]\n\
             [[faults]]\nkind = \"packet\"\ntarget = \"all\"\nloss = 0.1\ndelay = \"20ms\"\nevery = \"2s\"\n\
             [[faults]]\nkind = \"clock-strobe\"\noffset = \"-2s\"\nperiod = \"50ms\"\nevery = \"2s\"\n\
             [[faults]]\nkind = \"clock-drift\"\nclock_rate = 2.0\nevery = \"2s\"\n"
        );
        let plan = Plan::parse(&ok, "p.toml").unwrap();
        assert!(plan.needs_relays() && plan.needs_clock_shim());
        assert_eq!(
            plan.faults[2].offset.unwrap().as_nanos_i64(),
            -2_000_000_000
        );
        let kill_with_loss =
            format!("{MINIMAL}[[faults]]\nkind = \"kill\"\nloss = 0.5\nevery = \"1s\"\n");
        let err = Plan::parse(&kill_with_loss, "p.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "p.toml: faults[0].loss: not used by a kill fault (it uses: nothing)"
        );
        let ring = format!("{MINIMAL}[[faults]]\nkind = \"partition\"\ntopology = \"majorities-ring\"\nevery = \"1s\"\n");
        let err = Plan::parse(&ring, "p.toml").unwrap_err().to_string();
        assert!(
            err.contains("majorities-ring needs at least 5 nodes"),
            "{err}"
        );
        let bad = format!(
            "{MINIMAL}[[faults]]\nkind = \"clock-bump\"\noffset = \"sideways\"\nevery = \"1s\"\n"
        );
        let err = Plan::parse(&bad, "p.toml").unwrap_err().to_string();
        assert!(
            err.contains("line 5") && err.contains("signed duration"),
            "{err}"
        );
    }

    #[test]
    fn a_minimal_plan_gets_defaults() {
        let plan = Plan::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(plan.cluster.nodes, 3);
        assert_eq!(plan.duration, Dur(Duration::from_secs(5)));
        assert_eq!(plan.workload.model, Model::CasRegister);
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = Plan::parse(&format!("{MINIMAL}[cluster]\nnodez = 3\n"), "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml: line 4, column 1"), "{err}");
        assert!(err.contains("unknown field `nodez`"), "{err}");
    }

    #[test]
    fn bad_durations_say_what_was_expected() {
        let err = Plan::parse("name = \"t\"\nduration = \"5 parsecs\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("expected a duration like"),
            "{err}"
        );
    }

    #[test]
    fn cross_field_errors_name_the_field() {
        let text =
            format!("{MINIMAL}[[faults]]\nkind = \"kill\"\ntarget = \"n7\"\nevery = \"1s\"\n");
        let err = Plan::parse(&text, "p.toml").unwrap_err().to_string();
        assert_eq!(
            err,
            "p.toml: faults[0].target: n7 does not exist: the cluster has 3 nodes"
        );
        let text = format!("{MINIMAL}[[faults]]\nkind = \"pause\"\n");
        let err = Plan::parse(&text, "p.toml").unwrap_err().to_string();
        assert!(err.contains("faults[0].at: give either"), "{err}");
        let err = Plan::parse(
            &format!("{MINIMAL}[[faults]]\nkind = \"melt\"\nevery = \"1s\"\n"),
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown variant `melt`"), "{err}");
    }
}
