//! Reports: everything people and CI read about a run, rebuilt from the run folder alone.
//!
//! ```text
//! run folder ─► model (read the files) ─► figures (pure) ─► expect (verdicts) ─► Report
//!                                                                                  │
//!        report.json · report.html (html + plots) · junit.xml · counterexample.html · ../index.html (index)
//! ```
//!
//! The runner calls, at the end of every run:
//!
//! ```no_run
//! # fn main() -> Result<(), chaos::report::ReportError> {
//! # let run_dir = std::path::Path::new("results/smoke-20261203T195649Z");
//! let report = chaos::report::build(run_dir)?;           // pure function of the folder's files
//! let written = chaos::report::write(run_dir, &report)?;  // report.json, report.html, junit.xml, ..., ../index.html
//! eprintln!("{}", chaos::report::summary::text(&report, &written.html));
//! std::process::exit(report.verdict().exit_code().into());
//! # }
//! ```
//!
//! `build` is deterministic: the same folder (or a copy of it, anywhere) gives the same `report.json`. It holds
//! no wall-clock time and no path of the folder.

pub mod compare;
pub mod expect;
pub mod figures;
pub mod html;
pub mod index;
pub mod junit;
pub mod model;
pub mod plots;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use expect::{Evidence, Expectations};
use figures::{
    Availability, FaultCover, FaultWindow, LatencyFigures, Leadership, LostWrites, OpCounts,
    WindowSource,
};
use model::{
    Convergence, FinalReadCounts, NodeExit, Notice, OpFunction, OpOutcome, RunEvent, RunFolder,
};

/// Version of `report.json`.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// A report that could not be built: a required file is missing or unreadable. Names the file and line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// `manifest.json` or `history.jsonl` does not exist.
    #[error("{path}: missing (a run folder needs manifest.json and history.jsonl)")]
    Missing {
        /// The file.
        path: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        message: String,
    },
    /// A required file is malformed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line (0: the whole file).
        line: u64,
        /// What is wrong.
        message: String,
    },
}

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
    /// Stable id: `linearizability`, `node-crashes`, `tool-errors`, `expect.<field>`.
    pub id: String,
    /// What it checks, for people.
    pub name: String,
    /// Its verdict.
    pub verdict: CheckVerdict,
    /// The evidence.
    pub message: String,
}

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

/// The history's final reads when outcome.json does not count them: reads in the `final-reads` phase when
/// events.jsonl marks it, else the read-only processes that started after every other process had finished.
fn final_reads_from_history(
    ops: &[model::Op],
    events: Option<&[RunEvent]>,
) -> Option<(FinalReadCounts, String)> {
    let phase_ns = events.and_then(|ev| {
        ev.iter().find_map(|e| match e {
            RunEvent::Phase { time_ns, name } if name == "final-reads" => Some(*time_ns),
            _ => None,
        })
    });
    let finals: Vec<&model::Op> = match phase_ns {
        Some(t) => ops
            .iter()
            .filter(|o| o.f == OpFunction::Read && o.invoke_ns >= t)
            .collect(),
        None => {
            let mut readers: BTreeMap<u64, bool> = BTreeMap::new();
            for o in ops {
                let only_reads = readers.entry(o.process).or_insert(true);
                *only_reads &= o.f == OpFunction::Read;
            }
            let others_done = ops
                .iter()
                .filter(|o| !readers[&o.process])
                .map(|o| o.complete_index.unwrap_or(o.invoke_index))
                .max()?;
            let first_invoke: BTreeMap<u64, u64> = ops
                .iter()
                .rev()
                .map(|o| (o.process, o.invoke_index))
                .collect();
            let finals: BTreeSet<u64> = readers
                .iter()
                .filter(|&(p, &only)| only && first_invoke[p] > others_done)
                .map(|(&p, _)| p)
                .collect();
            ops.iter().filter(|o| finals.contains(&o.process)).collect()
        }
    };
    if finals.is_empty() {
        return None;
    }
    let attempted: BTreeSet<Option<&str>> = finals.iter().map(|o| o.key.as_deref()).collect();
    let ok: BTreeSet<Option<&str>> = finals
        .iter()
        .filter(|o| o.outcome == OpOutcome::Ok)
        .map(|o| o.key.as_deref())
        .collect();
    let source = if phase_ns.is_some() {
        "the history's final-reads phase"
    } else {
        "read-only processes at the end of the history"
    };
    Some((
        FinalReadCounts {
            ok: ok.len() as u64,
            attempted: attempted.len() as u64,
        },
        source.to_owned(),
    ))
}

/// Checks the history with the plan's model and time limit (the checker's default step budget otherwise).
fn check_history(run_dir: &Path, folder: &RunFolder) -> Result<checker::CheckReport, ReportError> {
    let model_name = folder
        .manifest
        .plan
        .pointer("/workload/model")
        .and_then(|v| v.as_str())
        .or_else(|| folder.history.meta.get("model").and_then(|v| v.as_str()))
        .unwrap_or("cas-register");
    let model = match model_name {
        "register" => checker::ModelKind::Register,
        _ => checker::ModelKind::CasRegister,
    };
    let limit = folder
        .manifest
        .plan_duration("/workload/check_time_limit")
        .unwrap_or(Duration::from_secs(60));
    let defaults = checker::Budget::default();
    let budget = checker::Budget::new(
        defaults.steps_max_per_key,
        defaults.cache_bytes_max_per_key,
        Some(Instant::now() + limit),
    );
    let options = checker::CheckOptions::new(model).with_budget(budget);
    let path = run_dir.join("history.jsonl");
    checker::check_file(&path, &options).map_err(|e| ReportError::Parse {
        path: path.display().to_string(),
        line: 0,
        message: format!("the checker cannot read it: {e}"),
    })
}

fn linearizability_from(view: &model::CheckView, source: &str) -> Linearizability {
    Linearizability {
        verdict: view.verdict.clone(),
        source: source.to_owned(),
        model: view.model.clone(),
        keys_linearizable: view.keys_linearizable,
        keys_not_linearizable: view.keys_not_linearizable,
        keys_unknown: view.keys_unknown,
        keys: view
            .keys
            .iter()
            .map(|k| LinKey {
                key: k.key.clone(),
                verdict: k.verdict.clone(),
                unknown_reason: k.unknown_reason.clone(),
                failed_op: k.counterexample.as_ref().and_then(|c| {
                    let f = c.get("failed_op")?;
                    Some(format!(
                        "p{} {} ({})",
                        f.get("process")?.as_u64()?,
                        f.get("op")?.as_str()?,
                        f.get("outcome")?.as_str()?
                    ))
                }),
            })
            .collect(),
    }
}

fn key_text(key: &serde_json::Value) -> String {
    match key {
        serde_json::Value::Null => "(the register)".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn linearizability_check(lin: &Linearizability) -> CheckResult {
    let model = lin.model.as_deref().unwrap_or("cas-register");
    let (verdict, message) = match lin.verdict.as_str() {
        "linearizable" => (
            CheckVerdict::Pass,
            format!(
                "{} key(s) linearizable as {model} ({})",
                lin.keys_linearizable, lin.source
            ),
        ),
        "not-linearizable" => {
            let bad: Vec<String> = lin
                .keys
                .iter()
                .filter(|k| k.verdict == "not-linearizable")
                .take(5)
                .map(|k| match &k.failed_op {
                    Some(op) => format!("key {} could not place {op}", key_text(&k.key)),
                    None => format!("key {}", key_text(&k.key)),
                })
                .collect();
            (
                CheckVerdict::Fail,
                format!(
                    "{} of {} key(s) not linearizable: {}; see counterexample.html",
                    lin.keys_not_linearizable,
                    lin.keys_linearizable + lin.keys_not_linearizable + lin.keys_unknown,
                    bad.join("; ")
                ),
            )
        }
        "unknown" => (
            CheckVerdict::Unknown,
            format!(
                "{} key(s) undecided within the checker's budget ({}); {} linearizable",
                lin.keys_unknown,
                lin.keys
                    .iter()
                    .filter_map(|k| k.unknown_reason.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", "),
                lin.keys_linearizable
            ),
        ),
        other => (
            CheckVerdict::ToolError,
            format!("check.json has an unknown verdict {other:?}"),
        ),
    };
    CheckResult {
        id: "linearizability".into(),
        name: "history is linearizable".into(),
        verdict,
        message,
    }
}

/// Builds the report of a run folder from its files alone. Deterministic: no clock, no path of the folder in
/// the result (the only exception: when check.json is missing and the history must be checked here, a check that
/// runs out of the plan's time limit is unknown, as it would have been in the run).
pub fn build(run_dir: &Path) -> Result<Report, ReportError> {
    build_with_check(run_dir, None)
}

/// [`build`], given the checker's report of this run's history when the caller has it in memory (the runner,
/// right after it wrote check.json): the counterexample page is then drawn from it instead of checking the
/// history again. The report is the same as [`build`]'s.
pub fn build_with_check(
    run_dir: &Path,
    check: Option<checker::CheckReport>,
) -> Result<Report, ReportError> {
    let folder = model::read_run_folder(run_dir)?;
    let m = &folder.manifest;
    let ops = &folder.history.ops;
    let end_ns = folder.history.time_ns_max;
    let events = folder.events.as_deref();

    // Fault windows: events.jsonl, else the history's nemesis notes.
    let (windows, source) = match events {
        Some(ev) => (
            figures::windows_from_events(ev, end_ns),
            WindowSource::Events,
        ),
        None => (
            figures::windows_from_notes(&folder.history.notes, end_ns),
            WindowSource::HistoryNotes,
        ),
    };
    let cover = FaultCover::new(&windows);
    let counts = figures::op_counts(ops);
    let availability = figures::availability(ops, &cover);
    let latency = figures::latency(ops, &cover);
    let lost_writes = figures::lost_writes(ops);
    let nodes = m.nodes().unwrap_or(0);
    let leadership = folder
        .status
        .as_deref()
        .map(|s| figures::leadership(s, nodes, &windows));
    let clock_offsets = folder
        .status
        .as_deref()
        .map(figures::clock_offsets_max)
        .unwrap_or_default();

    let final_reads = match folder.outcome.as_ref().and_then(|o| o.final_reads) {
        Some(fr) => Some((fr, "outcome.json".to_owned())),
        None => final_reads_from_history(ops, events),
    };

    // Linearizability: check.json, else the report checks the history itself.
    let mut own_check = check;
    let lin = match &folder.check {
        Some(view) => linearizability_from(view, "check.json"),
        None => {
            let report = match own_check.take() {
                Some(r) => r,
                None => check_history(run_dir, &folder)?,
            };
            let view: model::CheckView = serde_json::from_value(
                serde_json::to_value(&report).expect("a check report serialises"),
            )
            .expect("the checker's report has the fields the report reads");
            own_check = Some(report);
            linearizability_from(
                &view,
                "history.jsonl (checked by the report: check.json missing)",
            )
        }
    };
    let counterexample_html = if lin.verdict == "not-linearizable" {
        let report = match own_check {
            Some(r) => Some(r),
            // check.json holds the counterexample as data; the checker renders it from its own report, so the
            // history is checked again (deterministic for the same history) to draw it.
            None => check_history(run_dir, &folder).ok(),
        };
        report
            .filter(|r| r.verdict == checker::Verdict::NotLinearizable)
            .map(|r| checker::render_html(&r))
    } else {
        None
    };

    // Node exits: outcome.json, events.jsonl and the runner's notes in the history.
    let mut exits: Vec<NodeExit> = Vec::new();
    let mut add_exit = |node: u64, status: String| {
        if !exits.iter().any(|e| e.node == node && e.status == status) {
            exits.push(NodeExit { node, status });
        }
    };
    if let Some(o) = &folder.outcome {
        for e in &o.unexpected_exits {
            add_exit(e.node, e.status.clone());
        }
    }
    for e in events.unwrap_or_default() {
        if let RunEvent::NodeExited { node, status, .. } = e {
            add_exit(*node, status.clone());
        }
    }
    for n in folder
        .history
        .notes
        .iter()
        .filter(|n| n.process == "runner" && n.f == "node-exited")
    {
        if let Some(node) = n.value.get("node").and_then(|v| v.as_u64()) {
            let status = n
                .value
                .get("status")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned();
            add_exit(node, status);
        }
    }
    exits.sort_by(|a, b| (a.node, &a.status).cmp(&(b.node, &b.status)));

    // Tool errors.
    let mut tool_errors: Vec<String> = folder
        .outcome
        .as_ref()
        .map(|o| o.tool_errors.clone())
        .unwrap_or_default();
    let failed: Vec<FailedFault> = events
        .unwrap_or_default()
        .iter()
        .filter_map(|e| match e {
            RunEvent::FaultFailed {
                id, kind, error, ..
            } => Some(FailedFault {
                id: (*id != u64::MAX).then_some(*id),
                kind: kind.clone(),
                error: error.clone(),
            }),
            _ => None,
        })
        .collect();
    for f in &failed {
        tool_errors.push(format!(
            "fault {}{} could not be injected: {}",
            f.kind,
            f.id.map(|i| format!(" #{i}")).unwrap_or_default(),
            f.error
        ));
    }
    if folder.outcome.as_ref().is_some_and(|o| o.interrupted) {
        tool_errors.push("the run was interrupted before it finished".into());
    }
    let expectations = match m.plan.get("expect") {
        None | Some(serde_json::Value::Null) => Expectations::default(),
        Some(v) => match serde_json::from_value::<Expectations>(v.clone()) {
            Ok(e) => match e.validate() {
                Ok(()) => e,
                Err(msg) => {
                    tool_errors.push(format!("manifest.json: plan.{msg}"));
                    e
                }
            },
            Err(err) => {
                tool_errors.push(format!(
                    "manifest.json: plan.expect: {err}; expectations evaluated with their defaults"
                ));
                Expectations::default()
            }
        },
    };

    // Checks, then expectations.
    let mut checks = vec![linearizability_check(&lin)];
    checks.push(CheckResult {
        id: "node-crashes".into(),
        name: "no node of the system under test exited on its own".into(),
        verdict: if exits.is_empty() {
            CheckVerdict::Pass
        } else {
            CheckVerdict::Fail
        },
        message: if exits.is_empty() {
            "no node exited on its own".into()
        } else {
            exits
                .iter()
                .map(|e| {
                    format!(
                        "n{} exited on its own ({}); see nodes/n{}/node.log",
                        e.node, e.status, e.node
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        },
    });
    checks.push(CheckResult {
        id: "tool-errors".into(),
        name: "the tool did everything the plan asked".into(),
        verdict: if tool_errors.is_empty() {
            CheckVerdict::Pass
        } else {
            CheckVerdict::ToolError
        },
        message: if tool_errors.is_empty() {
            if folder.outcome.is_some() || events.is_some() {
                "no tool error".into()
            } else {
                "no tool error recorded (outcome.json and events.jsonl missing)".into()
            }
        } else {
            tool_errors.join("; ")
        },
    });
    let final_for_expect = final_reads.as_ref().map(|(fr, s)| (*fr, s.as_str()));
    checks.extend(expect::evaluate(
        &expectations,
        &Evidence {
            ops: &counts,
            final_reads: final_for_expect,
            leadership: leadership.as_ref(),
            availability: &availability,
            latency: &latency,
            lost_writes: &lost_writes,
            convergence: folder.outcome.as_ref().and_then(|o| o.convergence.as_ref()),
        },
    ));
    let verdict = overall_verdict(&checks);

    Ok(Report {
        schema_version: REPORT_SCHEMA_VERSION,
        run: RunInfo {
            plan: m
                .plan_name()
                .map(str::to_owned)
                .or_else(|| {
                    folder
                        .history
                        .meta
                        .get("plan")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "(unnamed)".into()),
            plan_file: m.plan_file.clone(),
            seed: m.seed,
            git_commit: m.git_commit.clone(),
            started_at: m.started_at.clone(),
            target: m.target(),
            nodes: m.nodes(),
            replay: m.replay.clone(),
            tool_version: m.version.clone(),
        },
        verdict,
        checks,
        ops: counts,
        final_reads: final_reads.map(|(fr, source)| FinalReads {
            ok: fr.ok,
            attempted: fr.attempted,
            source,
        }),
        availability,
        latency_ms: latency,
        faults: Faults {
            planned: m.timeline.len() as u64,
            injected: windows.len() as u64,
            source,
            covered_s: figures::round3(cover.covered_ns() as f64 / 1e9),
            windows,
            failed,
        },
        leadership,
        clock_offsets_max_ms: clock_offsets,
        linearizability: lin,
        lost_writes,
        convergence: folder.outcome.as_ref().and_then(|o| o.convergence.clone()),
        unexpected_exits: exits,
        tool_errors,
        history_seconds: figures::round3(end_ns as f64 / 1e9),
        wall_seconds: folder.outcome.as_ref().and_then(|o| o.seconds),
        missing: folder.notices.clone(),
        data: Some(Box::new(folder)),
        counterexample_html,
    })
}

/// The files [`write()`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// report.json.
    pub json: PathBuf,
    /// report.html.
    pub html: PathBuf,
    /// junit.xml.
    pub junit: PathBuf,
    /// counterexample.html, when a key is not linearizable.
    pub counterexample: Option<PathBuf>,
    /// The results folder's index.html, or why it could not be written (the run's own files are written anyway).
    pub index: Result<PathBuf, String>,
}

fn write_file(path: &Path, contents: &str) -> Result<(), ReportError> {
    std::fs::write(path, contents).map_err(|e| ReportError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Writes report.json, report.html, junit.xml and (when a key is not linearizable) counterexample.html into the
/// run folder, then rewrites the results folder's index.html (`<run_dir>/../index.html`).
pub fn write(run_dir: &Path, report: &Report) -> Result<Written, ReportError> {
    let json = run_dir.join("report.json");
    let mut text = serde_json::to_string_pretty(report).expect("a report serialises");
    text.push('\n');
    write_file(&json, &text)?;
    let html_path = run_dir.join("report.html");
    write_file(&html_path, &html::render(report))?;
    let junit = run_dir.join("junit.xml");
    write_file(&junit, &junit::render(report))?;
    let counterexample = match &report.counterexample_html {
        Some(page) => {
            let path = run_dir.join("counterexample.html");
            write_file(&path, page)?;
            Some(path)
        }
        None => None,
    };
    let index = match run_dir.parent() {
        Some(p) if p.as_os_str().is_empty() => {
            index::write_index(Path::new(".")).map_err(|e| e.to_string())
        }
        Some(results) => index::write_index(results).map_err(|e| e.to_string()),
        None => Err(format!("{} has no parent folder", run_dir.display())),
    };
    Ok(Written {
        json,
        html: html_path,
        junit,
        counterexample,
        index,
    })
}

/// `chaos report` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Rebuilds report.json, report.html, junit.xml, counterexample.html and the results folder's index.html from the run folder's files alone.\n\nExit status: 0 pass, 1 fail, 2 tool error or unreadable folder, 3 unknown."
)]
pub struct ReportArgs {
    /// The run folder (e.g. results/smoke-20261203T195649Z or results/latest).
    pub run_dir: PathBuf,
    /// Print report.json on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs `chaos report` and returns the exit code.
pub fn run_report(args: &ReportArgs) -> std::process::ExitCode {
    let result = build(&args.run_dir).and_then(|r| write(&args.run_dir, &r).map(|w| (r, w)));
    match result {
        Ok((report, written)) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("a report serialises")
                );
            } else {
                println!("{}", summary::text(&report, &written.html));
            }
            if let Err(e) = &written.index {
                eprintln!("chaos: warning: the results index was not rewritten: {e}");
            }
            std::process::ExitCode::from(report.verdict().exit_code())
        }
        Err(e) => {
            eprintln!("chaos: error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
