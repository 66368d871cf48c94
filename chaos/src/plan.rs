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
}

impl FaultKind {
    /// The name used in plans and events.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Terminate => "terminate",
            FaultKind::Pause => "pause",
        }
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
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name = \"t\"\nduration = \"5s\"\n";

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
