//! Verdicts: of a run, and of each check and expectation.

use serde::{Deserialize, Serialize};

/// The verdict of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunVerdict {
    /// Linearizable, and every check and expectation that could be evaluated held.
    Pass,
    /// A check or expectation failed.
    Fail,
    /// Nothing failed, but something could not be decided (the checker ran out of budget).
    Unknown,
    /// The tool itself failed (a fault could not be injected, the run was interrupted): the run proves nothing.
    ToolError,
}

impl RunVerdict {
    /// `PASS`, `FAIL`, `UNKNOWN`, `TOOL ERROR`.
    pub fn word(self) -> &'static str {
        match self {
            RunVerdict::Pass => "PASS",
            RunVerdict::Fail => "FAIL",
            RunVerdict::Unknown => "UNKNOWN",
            RunVerdict::ToolError => "TOOL ERROR",
        }
    }

    /// The exit status of `chaos run` / `chaos report`: 0 pass, 1 fail, 2 tool error, 3 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            RunVerdict::Pass => 0,
            RunVerdict::Fail => 1,
            RunVerdict::ToolError => 2,
            RunVerdict::Unknown => 3,
        }
    }
}

/// The verdict of one check or expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckVerdict {
    /// It held.
    Pass,
    /// It did not.
    Fail,
    /// It could not be decided.
    Unknown,
    /// The data it needs is missing; the message says which.
    NotEvaluated,
    /// The tool failed.
    ToolError,
}

impl CheckVerdict {
    /// `pass`, `FAIL`, `unknown`, `not evaluated`, `TOOL ERROR`.
    pub fn word(self) -> &'static str {
        match self {
            CheckVerdict::Pass => "pass",
            CheckVerdict::Fail => "FAIL",
            CheckVerdict::Unknown => "unknown",
            CheckVerdict::NotEvaluated => "not evaluated",
            CheckVerdict::ToolError => "TOOL ERROR",
        }
    }
}

/// One check (linearizability, node crashes, tool errors) or expectation, with its own verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable id: `linearizability`, `membership-progress` (with membership faults), `node-crashes`,
    /// `tool-errors`, `expect.<field>`.
    pub id: String,
    /// What it checks, for people.
    pub name: String,
    /// Its verdict.
    pub verdict: CheckVerdict,
    /// The evidence.
    pub message: String,
}

/// A kind of misbehaviour of the system under test; a failed run carries one or more (report.json's
/// `violations`, in this order). Failed expectations about availability, latency, leadership or the op count
/// fail a run without being a violation of these kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    /// The history is not linearizable (the `linearizability` check failed).
    NotLinearizable,
    /// An acknowledged write is missing from the final reads (`expect.no_lost_writes` failed).
    AcknowledgedWriteLost,
    /// The nodes' replicated state differs after the heal (`expect.converged` failed).
    ReplicasDiverge,
    /// A node exited without a planned fault (`node-crashes` failed).
    NodeCrashed,
}

impl ViolationKind {
    /// Every kind, in report order.
    pub const ALL: [ViolationKind; 4] = [
        ViolationKind::NotLinearizable,
        ViolationKind::AcknowledgedWriteLost,
        ViolationKind::ReplicasDiverge,
        ViolationKind::NodeCrashed,
    ];

    /// The stable machine name: `not-linearizable`, `acknowledged-write-lost`, `replicas-diverge`,
    /// `node-crashed`.
    pub fn slug(self) -> &'static str {
        match self {
            ViolationKind::NotLinearizable => "not-linearizable",
            ViolationKind::AcknowledgedWriteLost => "acknowledged-write-lost",
            ViolationKind::ReplicasDiverge => "replicas-diverge",
            ViolationKind::NodeCrashed => "node-crashed",
        }
    }

    /// The label for people: `not linearizable`, `acknowledged write lost`, `replicas diverge`, `node crashed`.
    pub fn label(self) -> &'static str {
        match self {
            ViolationKind::NotLinearizable => "not linearizable",
            ViolationKind::AcknowledgedWriteLost => "acknowledged write lost",
            ViolationKind::ReplicasDiverge => "replicas diverge",
            ViolationKind::NodeCrashed => "node crashed",
        }
    }

    /// The check whose failure is this violation.
    pub fn check_id(self) -> &'static str {
        match self {
            ViolationKind::NotLinearizable => "linearizability",
            ViolationKind::AcknowledgedWriteLost => "expect.no_lost_writes",
            ViolationKind::ReplicasDiverge => "expect.converged",
            ViolationKind::NodeCrashed => "node-crashes",
        }
    }
}

/// The violations the failed checks show, in [`ViolationKind::ALL`]'s order.
pub fn violations(checks: &[CheckResult]) -> Vec<ViolationKind> {
    ViolationKind::ALL
        .into_iter()
        .filter(|v| {
            checks
                .iter()
                .any(|c| c.id == v.check_id() && c.verdict == CheckVerdict::Fail)
        })
        .collect()
}

/// The overall verdict: a tool error first (the run did not go as planned, so it proves nothing), then any
/// failure, then any unknown. Checks that were not evaluated do not change it (they are shown as such).
pub fn overall_verdict(checks: &[CheckResult]) -> RunVerdict {
    let any = |v: CheckVerdict| checks.iter().any(|c| c.verdict == v);
    if any(CheckVerdict::ToolError) {
        RunVerdict::ToolError
    } else if any(CheckVerdict::Fail) {
        RunVerdict::Fail
    } else if any(CheckVerdict::Unknown) {
        RunVerdict::Unknown
    } else {
        RunVerdict::Pass
    }
}
