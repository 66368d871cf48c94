//! `report.json`: everything known about a run, machine-readable, with a schema version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::figures::{
    Availability, FaultWindow, LatencyFigures, Leadership, LostWrites, OpCounts, WindowSource,
};
use super::model::{Convergence, NodeExit, Notice, RunFolder};
use super::verdict::{CheckResult, RunVerdict, ViolationKind};

/// A run that stopped before its planned end because a violation was certain (the plan's `stop_early`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoppedEarly {
    /// The violation that stopped it: `not-linearizable` or `node-crashed`.
    pub label: String,
    /// What was seen.
    pub reason: String,
    /// When, s since the start of the fault phase (negative: during the warm-up), when known.
    pub after_fault_phase_s: Option<f64>,
}

/// Version of `report.json`.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Who ran what.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The plan's name.
    pub plan: String,
    /// The plan file as given to `chaos run`.
    pub plan_file: Option<String>,
    /// The seed.
    pub seed: Option<u64>,
    /// The git commit of the tool.
    pub git_commit: Option<String>,
    /// When the run started (RFC 3339, from the manifest).
    pub started_at: Option<String>,
    /// The system under test.
    pub target: Option<String>,
    /// Nodes in the cluster.
    pub nodes: Option<u64>,
    /// The command that replays the run.
    pub replay: Option<String>,
    /// The tool's version.
    pub tool_version: Option<String>,
}

/// Final reads: keys read after the heal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalReads {
    /// Keys read successfully.
    pub ok: u64,
    /// Keys whose read was attempted.
    pub attempted: u64,
    /// Where the counts come from.
    pub source: String,
}

/// A fault the tool could not inject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedFault {
    /// The fault's id.
    pub id: Option<u64>,
    /// Its kind.
    pub kind: String,
    /// Why.
    pub error: String,
}

/// Faults: planned, injected, failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Faults planned in the manifest's timeline.
    pub planned: u64,
    /// Faults started during the run on cluster events (`on = "new-leader"`, and faults started by those):
    /// not in the timeline, so not among `planned`.
    #[serde(default)]
    pub on_events: u64,
    /// Faults injected (windows).
    pub injected: u64,
    /// Where the windows were read from.
    pub source: WindowSource,
    /// Time covered by at least one fault, s.
    pub covered_s: f64,
    /// The windows.
    pub windows: Vec<FaultWindow>,
    /// Faults the tool could not inject.
    pub failed: Vec<FailedFault>,
    /// Starts and ends that came noticeably later than planned (the plan was not followed to the letter).
    #[serde(default)]
    pub late: Vec<super::figures::LateStep>,
}

/// The linearizability check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linearizability {
    /// `linearizable`, `not-linearizable` or `unknown`.
    pub verdict: String,
    /// `check.json`, or `history.jsonl` when the report checked the history itself.
    pub source: String,
    /// The model.
    pub model: Option<String>,
    /// Keys found linearizable.
    pub keys_linearizable: u64,
    /// Keys not linearizable.
    pub keys_not_linearizable: u64,
    /// Keys unknown.
    pub keys_unknown: u64,
    /// The keys that are not linearizable or unknown (counterexamples are in check.json and counterexample.html).
    pub keys: Vec<LinKey>,
}

/// A key that is not linearizable or unknown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinKey {
    /// The key.
    pub key: serde_json::Value,
    /// Its verdict.
    pub verdict: String,
    /// Why unknown.
    pub unknown_reason: Option<String>,
    /// The op that could not be placed, when there is a counterexample.
    pub failed_op: Option<String>,
}

/// Everything known about a run: `report.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Who ran what.
    pub run: RunInfo,
    /// The verdict of the run.
    pub verdict: RunVerdict,
    /// The kinds of violation the run shows (empty unless a check of one of these kinds failed).
    pub violations: Vec<ViolationKind>,
    /// Seconds from the start of the fault phase to the first evidence of a violation (negative: during the
    /// warm-up), when there is a violation and its time is known: the completion of the op no linearization
    /// reaches, a lost write's acknowledgement, a node's exit, the convergence check.
    pub first_violation_s: Option<f64>,
    /// Set when the run stopped before its planned end.
    pub stopped_early: Option<StoppedEarly>,
    /// Every check and expectation, each with its own verdict.
    pub checks: Vec<CheckResult>,
    /// Client ops by outcome.
    pub ops: OpCounts,
    /// Final reads, when known.
    pub final_reads: Option<FinalReads>,
    /// Share of ops answered, overall and inside/outside fault windows.
    pub availability: Availability,
    /// Latency percentiles (ms), overall and inside/outside fault windows.
    pub latency_ms: LatencyFigures,
    /// Faults.
    pub faults: Faults,
    /// Leadership from the status polls (`None` without status.jsonl).
    pub leadership: Option<Leadership>,
    /// The largest clock offset seen per node, ms (empty without clock offsets in status.jsonl).
    pub clock_offsets_max_ms: BTreeMap<u64, f64>,
    /// The linearizability check.
    pub linearizability: Linearizability,
    /// Acknowledged writes checked against the final reads.
    pub lost_writes: LostWrites,
    /// Convergence after the heal (from outcome.json).
    pub convergence: Option<Convergence>,
    /// Nodes that exited on their own.
    pub unexpected_exits: Vec<NodeExit>,
    /// Errors of the tool itself.
    pub tool_errors: Vec<String>,
    /// The history's span, s (its last event's time).
    pub history_seconds: f64,
    /// Wall-clock seconds of the whole run (from outcome.json).
    pub wall_seconds: Option<f64>,
    /// Files missing or partly unreadable, and what the report does without them.
    pub missing: Vec<Notice>,
    /// The data the page's plots are drawn from (not serialised).
    #[serde(skip)]
    pub data: Option<Box<RunFolder>>,
    /// The checker's counterexample page, when a key is not linearizable (not serialised).
    #[serde(skip)]
    pub counterexample_html: Option<String>,
}

impl Report {
    /// The verdict of the run.
    pub fn verdict(&self) -> RunVerdict {
        self.verdict
    }

    /// The checks and expectations with their verdicts.
    pub fn checks(&self) -> &[CheckResult] {
        &self.checks
    }

    /// The plan's name.
    pub fn plan(&self) -> &str {
        &self.run.plan
    }
}
