//! Reading a run folder: the files of the run folder contract, parsed into plain data. Only `manifest.json` and
//! `history.jsonl` are required; every other file is optional, and its absence (or a line that cannot be read)
//! becomes a [`Notice`] that the report shows, never a silent gap.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use checker::history::{Event, EventKind, JsonlReader, Operation, Value};
use serde::{Deserialize, Serialize};

use super::error::ReportError;

/// A file of the run folder that is missing or partly unreadable, and what the report does without it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// The file, relative to the run folder.
    pub file: String,
    /// What is wrong with it.
    pub problem: String,
    /// What the report cannot show, or does instead, because of it.
    pub effect: String,
}

/// `manifest.json`, read leniently: every field but the file itself is optional.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Manifest {
    /// The tool's version.
    #[serde(default)]
    pub version: Option<String>,
    /// The plan file the run was started with.
    #[serde(default)]
    pub plan_file: Option<String>,
    /// The resolved plan.
    #[serde(default)]
    pub plan: serde_json::Value,
    /// The seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The git commit of the tool.
    #[serde(default)]
    pub git_commit: Option<String>,
    /// When the run started (RFC 3339).
    #[serde(default)]
    pub started_at: Option<String>,
    /// The system under test.
    #[serde(default)]
    pub target: Option<String>,
    /// The planned faults.
    #[serde(default)]
    pub timeline: Vec<serde_json::Value>,
    /// The command that replays the run.
    #[serde(default)]
    pub replay: Option<String>,
}

impl Manifest {
    /// The plan's name.
    pub fn plan_name(&self) -> Option<&str> {
        self.plan.get("name").and_then(|v| v.as_str())
    }

    /// The system under test: the manifest's `target`, else the plan's `cluster.target`.
    pub fn target(&self) -> Option<String> {
        self.target.clone().or_else(|| {
            self.plan
                .pointer("/cluster/target")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
    }

    /// The number of nodes the plan asked for.
    pub fn nodes(&self) -> Option<u64> {
        self.plan.pointer("/cluster/nodes").and_then(|v| v.as_u64())
    }

    /// A duration field of the plan (written like "1s 500ms"), by JSON pointer.
    pub fn plan_duration(&self, pointer: &str) -> Option<std::time::Duration> {
        self.plan
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .and_then(|s| humantime::parse_duration(s).ok())
    }
}

/// The function of a client op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpFunction {
    /// A read.
    Read,
    /// A write.
    Write,
    /// A compare-and-set.
    Cas,
}

/// How a client op ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpOutcome {
    /// It took effect.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// A cas that found another value: a definite answer from the system.
    Mismatch,
    /// Indeterminate (a timeout, a lost connection).
    Info,
    /// Never completed before the history ended (indeterminate too).
    Pending,
}

impl OpOutcome {
    /// True when the system gave a definite answer (ok, fail or a cas mismatch).
    pub fn is_definite(self) -> bool {
        matches!(self, OpOutcome::Ok | OpOutcome::Fail | OpOutcome::Mismatch)
    }

    /// True when the system did what was asked or answered with a definite observation: the op counts as
    /// available (a cas mismatch is the system working, not failing).
    pub fn is_answered(self) -> bool {
        matches!(self, OpOutcome::Ok | OpOutcome::Mismatch)
    }
}

/// A client op: its invocation and completion paired.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// The client process.
    pub process: u64,
    /// What it did.
    pub f: OpFunction,
    /// The key (`None` for a single-register history).
    pub key: Option<String>,
    /// History index of the invocation.
    pub invoke_index: u64,
    /// History index of the completion.
    pub complete_index: Option<u64>,
    /// Time of the invocation, ns since the run's start.
    pub invoke_ns: u64,
    /// Time of the completion.
    pub complete_ns: Option<u64>,
    /// How it ended.
    pub outcome: OpOutcome,
    /// The value a write writes, or a cas's new value.
    pub written: Option<Value>,
    /// The value an ok read returned.
    pub read: Option<Value>,
}

impl Op {
    /// Latency in ns, for ops that completed (including `info` completions).
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_ns.map(|c| c.saturating_sub(self.invoke_ns))
    }
}

/// A note of the history (nemesis, runner).
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// ns since the run's start.
    pub time_ns: u64,
    /// The note's process (e.g. "nemesis").
    pub process: String,
    /// The event type.
    pub kind: EventKind,
    /// The action.
    pub f: String,
    /// The free-form value.
    pub value: serde_json::Value,
}

/// The history: its header meta, client ops in invocation order and notes.
#[derive(Clone, Debug, Default)]
pub struct HistoryData {
    /// The header's `meta`.
    pub meta: serde_json::Value,
    /// Client ops, in invocation order.
    pub ops: Vec<Op>,
    /// Notes.
    pub notes: Vec<Note>,
    /// The largest event time, ns.
    pub time_ns_max: u64,
}

/// The `membership-final` line of `events.jsonl`: what the runner intended, what the leader reported, and what
/// became of every node the runner removed.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MembershipFinal {
    /// ns since the run's start.
    pub time_ns: u64,
    /// The members the runner intended (initial nodes, plus those added, minus those removed).
    pub intended: Vec<u64>,
    /// The leader that reported the membership, when one did.
    pub leader: Option<u64>,
    /// Its voters, when a leader answered.
    pub voters: Option<Vec<u64>>,
    /// Its learners.
    pub learners: Vec<u64>,
    /// Why no membership was observed.
    pub error: Option<String>,
    /// Each removed node and its fate: exited-removed, wiped, running, down.
    pub removed: Vec<(u64, String)>,
}

/// One line of `events.jsonl`.
#[derive(Clone, Debug, PartialEq)]
pub enum RunEvent {
    /// A fault started.
    FaultStart {
        /// ns since the run's start.
        time_ns: u64,
        /// The fault's id (shared with its end).
        id: u64,
        /// The fault's kind.
        kind: String,
        /// The target as planned (`leader`, `n1`, ...).
        target: String,
        /// The nodes it hit.
        nodes: Vec<u64>,
        /// A free-form note.
        note: Option<String>,
        /// How much later than planned it started, ms (runs before this field: none).
        late_ms: Option<u64>,
    },
    /// A fault ended.
    FaultEnd {
        /// ns since the run's start.
        time_ns: u64,
        /// The fault's id.
        id: u64,
        /// How much later than planned it ended, ms.
        late_ms: Option<u64>,
    },
    /// Everything was healed.
    Heal {
        /// ns since the run's start.
        time_ns: u64,
    },
    /// A phase started.
    Phase {
        /// ns since the run's start.
        time_ns: u64,
        /// warmup, faults, recovery, final-reads, stopped.
        name: String,
    },
    /// A node of the system under test exited on its own.
    NodeExited {
        /// ns since the run's start.
        time_ns: u64,
        /// The node.
        node: u64,
        /// Its exit status.
        status: String,
    },
    /// With membership faults: the intended membership at the end against the observed one.
    MembershipFinal(MembershipFinal),
    /// A membership change: the intended members after it.
    Membership {
        /// ns since the run's start.
        time_ns: u64,
        /// The intended members from then on.
        members: Vec<u64>,
        /// A removal the cluster did not commit while a majority of the members ran undisturbed: what was seen.
        stuck: Option<String>,
    },
    /// The tool could not inject a fault.
    FaultFailed {
        /// ns since the run's start.
        time_ns: u64,
        /// The fault's id.
        id: u64,
        /// Its kind.
        kind: String,
        /// Why.
        error: String,
    },
}

/// One line of `status.jsonl`: a node's status as polled from outside.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusLine {
    /// ns since the run's start.
    pub time_ns: u64,
    /// The node.
    pub node: u64,
    /// Whether it answered.
    #[serde(default)]
    pub up: bool,
    /// Its role.
    #[serde(default)]
    pub role: Option<String>,
    /// Its term.
    #[serde(default)]
    pub term: Option<u64>,
    /// The leader it knows.
    #[serde(default)]
    pub leader: Option<u64>,
    /// Its commit index.
    #[serde(default)]
    pub commit_index: Option<u64>,
    /// Its applied index.
    #[serde(default)]
    pub applied_index: Option<u64>,
    /// Its clock offset, when the clock shim runs.
    #[serde(default)]
    pub clock_offset_ms: Option<f64>,
    /// How often its election timer fired since it started, when the target reports it.
    #[serde(default)]
    pub elections_started: Option<u64>,
}

/// One key of `check.json`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct CheckKey {
    /// The key.
    #[serde(default)]
    pub key: serde_json::Value,
    /// Its verdict.
    #[serde(default)]
    pub verdict: String,
    /// Ops of the key.
    #[serde(default)]
    pub ops: u64,
    /// Why unknown.
    #[serde(default)]
    pub unknown_reason: Option<String>,
    /// The counterexample, as the checker wrote it.
    #[serde(default)]
    pub counterexample: Option<serde_json::Value>,
}

/// `check.json` (the serialisation of `checker::CheckReport`), read leniently.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CheckView {
    /// `linearizable`, `not-linearizable` or `unknown`.
    pub verdict: String,
    /// The model.
    #[serde(default)]
    pub model: Option<String>,
    /// Keys found linearizable.
    #[serde(default)]
    pub keys_linearizable: u64,
    /// Keys not linearizable.
    #[serde(default)]
    pub keys_not_linearizable: u64,
    /// Keys unknown.
    #[serde(default)]
    pub keys_unknown: u64,
    /// The keys that are not linearizable or unknown.
    #[serde(default)]
    pub keys: Vec<CheckKey>,
}

/// `outcome.json`'s final reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FinalReadCounts {
    /// Keys read successfully.
    #[serde(default)]
    pub ok: u64,
    /// Keys whose read was attempted.
    #[serde(default)]
    pub attempted: u64,
}

/// A node that exited on its own.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct NodeExit {
    /// The node.
    pub node: u64,
    /// Its exit status.
    #[serde(default)]
    pub status: String,
}

/// `outcome.json`'s convergence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Convergence {
    /// Whether the runner checked it.
    #[serde(default)]
    pub checked: bool,
    /// Whether every node's log agrees up to the commit index.
    #[serde(default)]
    pub agree: Option<bool>,
    /// What was compared.
    #[serde(default)]
    pub detail: String,
    /// When it was compared, ns since the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ns: Option<u64>,
}

/// `outcome.json`'s `stopped_early`: the first certain violation, after which the run stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct EarlyStopRecord {
    /// `not-linearizable` or `node-crashed`.
    pub label: String,
    /// What was seen.
    #[serde(default)]
    pub reason: String,
    /// When, ns since the run started.
    #[serde(default)]
    pub time_ns: u64,
}

/// `outcome.json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct OutcomeFile {
    /// Wall-clock seconds of the run.
    #[serde(default)]
    pub seconds: Option<f64>,
    /// Final reads.
    #[serde(default)]
    pub final_reads: Option<FinalReadCounts>,
    /// Nodes that exited on their own.
    #[serde(default)]
    pub unexpected_exits: Vec<NodeExit>,
    /// Errors of the tool itself.
    #[serde(default)]
    pub tool_errors: Vec<String>,
    /// Convergence after heal.
    #[serde(default)]
    pub convergence: Option<Convergence>,
    /// Why the run stopped before its planned end (`stop_early`).
    #[serde(default)]
    pub stopped_early: Option<EarlyStopRecord>,
    /// Whether the run was interrupted.
    #[serde(default)]
    pub interrupted: bool,
}

/// Everything read from a run folder.
#[derive(Clone, Debug, Default)]
pub struct RunFolder {
    /// `manifest.json`.
    pub manifest: Manifest,
    /// `history.jsonl`.
    pub history: HistoryData,
    /// `events.jsonl`, when present.
    pub events: Option<Vec<RunEvent>>,
    /// `status.jsonl`, when present.
    pub status: Option<Vec<StatusLine>>,
    /// `check.json`, when present.
    pub check: Option<CheckView>,
    /// `outcome.json`, when present.
    pub outcome: Option<OutcomeFile>,
    /// Files that are missing or partly unreadable.
    pub notices: Vec<Notice>,
}

fn io_error(path: &Path, e: std::io::Error) -> ReportError {
    ReportError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Reads an optional file: `Ok(None)` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, ReportError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Reads the manifest (required).
pub fn read_manifest(run_dir: &Path) -> Result<Manifest, ReportError> {
    let path = run_dir.join("manifest.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::Missing {
                path: path.display().to_string(),
            })
        }
        Err(e) => return Err(io_error(&path, e)),
    };
    serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path: path.display().to_string(),
        line: e.line() as u64,
        message: e.to_string(),
    })
}

/// A key as text: a string key as is (not quoted), an integer key in decimal.
fn to_string_key(key: &Option<checker::history::Key>) -> Option<String> {
    key.as_ref().map(|k| match serde_json::to_value(k) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => k.to_string(),
    })
}

/// Reads the history (required) and pairs every invocation with its completion.
pub fn read_history(run_dir: &Path) -> Result<HistoryData, ReportError> {
    let path = run_dir.join("history.jsonl");
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::Missing {
                path: path.display().to_string(),
            })
        }
        Err(e) => return Err(io_error(&path, e)),
    };
    let parse = |e: checker::history::ParseError| ReportError::Parse {
        path: path.display().to_string(),
        line: e.line,
        message: match e.field {
            Some(f) => format!("field `{f}`: {}", e.message),
            None => e.message,
        },
    };
    let mut reader = JsonlReader::new(BufReader::new(file), "history.jsonl").map_err(parse)?;
    let mut data = HistoryData {
        meta: reader.header().meta.clone(),
        ..HistoryData::default()
    };
    // Open invocations by process: position in `data.ops`.
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    while let Some((line, event)) = reader.next_event().map_err(parse)? {
        data.time_ns_max = data.time_ns_max.max(event.time_ns());
        match event {
            Event::Note(n) => data.notes.push(Note {
                time_ns: n.time_ns,
                process: match &n.process {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                kind: n.kind,
                f: n.f,
                value: n.value,
            }),
            Event::Op(e) => {
                let p = e.process.0;
                let (f, written) = match &e.op {
                    Operation::Read(_) => (OpFunction::Read, None),
                    Operation::Write(v) => (OpFunction::Write, Some(v.clone())),
                    Operation::Cas { new, .. } => (OpFunction::Cas, Some(new.clone())),
                    _ => (OpFunction::Read, None),
                };
                if e.kind == EventKind::Invoke {
                    if open.contains_key(&p) {
                        return Err(ReportError::Parse {
                            path: path.display().to_string(),
                            line,
                            message: format!(
                                "process {p} invokes again before its previous op completed"
                            ),
                        });
                    }
                    open.insert(p, data.ops.len());
                    data.ops.push(Op {
                        process: p,
                        f,
                        key: to_string_key(&e.key),
                        invoke_index: e.index,
                        complete_index: None,
                        invoke_ns: e.time_ns,
                        complete_ns: None,
                        outcome: OpOutcome::Pending,
                        written,
                        read: None,
                    });
                    continue;
                }
                let Some(i) = open.remove(&p) else {
                    return Err(ReportError::Parse {
                        path: path.display().to_string(),
                        line,
                        message: format!(
                            "a completion of process {p} without an invocation before it"
                        ),
                    });
                };
                let mismatch = e.is_mismatch();
                let op = &mut data.ops[i];
                op.complete_index = Some(e.index);
                op.complete_ns = Some(e.time_ns);
                op.outcome = match e.kind {
                    EventKind::Ok => OpOutcome::Ok,
                    EventKind::Fail if mismatch => OpOutcome::Mismatch,
                    EventKind::Fail => OpOutcome::Fail,
                    _ => OpOutcome::Info,
                };
                if let (EventKind::Ok, Operation::Read(v)) = (e.kind, &e.op) {
                    op.read = Some(v.clone());
                }
            }
            _ => {}
        }
    }
    Ok(data)
}

/// Reads a JSON Lines file line by line; lines that cannot be read become notices (naming file and line) and are
/// skipped, so one torn line (a run still writing, or killed mid-line) does not hide the rest.
fn read_jsonl<T>(
    run_dir: &Path,
    name: &str,
    notices: &mut Vec<Notice>,
    mut parse: impl FnMut(serde_json::Value) -> Result<Option<T>, String>,
) -> Result<Option<Vec<T>>, ReportError> {
    let path = run_dir.join(name);
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    let mut bad: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .map_err(|e| e.to_string())
            .and_then(&mut parse);
        match parsed {
            Ok(Some(v)) => out.push(v),
            Ok(None) => {}
            Err(e) => bad.push(format!("line {}: {e}", i + 1)),
        }
    }
    if !bad.is_empty() {
        let shown: Vec<&str> = bad.iter().take(3).map(String::as_str).collect();
        notices.push(Notice {
            file: name.to_owned(),
            problem: format!(
                "{} unreadable line(s): {}{}",
                bad.len(),
                shown.join("; "),
                if bad.len() > 3 { "; ..." } else { "" }
            ),
            effect: "those lines are left out of the figures".into(),
        });
    }
    Ok(Some(out))
}

fn field_u64(v: &serde_json::Value, name: &str) -> Result<u64, String> {
    v.get(name)
        .and_then(|x| x.as_u64())
        .ok_or_else(|| format!("field `{name}`: expected a non-negative integer"))
}

fn field_str(v: &serde_json::Value, name: &str) -> String {
    match v.get(name) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn field_nodes(v: &serde_json::Value) -> Vec<u64> {
    v.get("nodes")
        .and_then(|n| n.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default()
}

fn parse_membership_final(v: &serde_json::Value, time_ns: u64) -> MembershipFinal {
    let ids = |x: Option<&serde_json::Value>| -> Option<Vec<u64>> {
        x.and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|n| n.as_u64()).collect())
    };
    let observed = v.get("observed").filter(|o| !o.is_null());
    MembershipFinal {
        time_ns,
        intended: ids(v.get("intended")).unwrap_or_default(),
        leader: observed.and_then(|o| o.get("leader")?.as_u64()),
        voters: observed.and_then(|o| ids(o.get("voters"))),
        learners: observed
            .and_then(|o| ids(o.get("learners")))
            .unwrap_or_default(),
        error: v.get("error").and_then(|e| e.as_str()).map(str::to_owned),
        removed: v
            .get("removed")
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|r| Some((r.get("node")?.as_u64()?, field_str(r, "fate"))))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Parses one line of `events.jsonl`; unknown event types are skipped (newer runners may add some).
pub fn parse_event(v: serde_json::Value) -> Result<Option<RunEvent>, String> {
    let time_ns = field_u64(&v, "time_ns")?;
    let kind = v
        .get("event")
        .and_then(|e| e.as_str())
        .ok_or("field `event`: expected a string")?;
    Ok(Some(match kind {
        "start" => RunEvent::FaultStart {
            time_ns,
            id: field_u64(&v, "id")?,
            kind: field_str(&v, "kind"),
            target: field_str(&v, "target"),
            nodes: field_nodes(&v),
            note: v.get("note").and_then(|n| n.as_str()).map(str::to_owned),
            late_ms: v.get("late_ms").and_then(|n| n.as_u64()),
        },
        "end" => RunEvent::FaultEnd {
            time_ns,
            id: field_u64(&v, "id")?,
            late_ms: v.get("late_ms").and_then(|n| n.as_u64()),
        },
        "heal" => RunEvent::Heal { time_ns },
        "phase" => RunEvent::Phase {
            time_ns,
            name: field_str(&v, "name"),
        },
        "node-exited" => RunEvent::NodeExited {
            time_ns,
            node: field_u64(&v, "node")?,
            status: field_str(&v, "status"),
        },
        "membership-final" => RunEvent::MembershipFinal(parse_membership_final(&v, time_ns)),
        "membership" => RunEvent::Membership {
            time_ns,
            members: v
                .get("members")
                .and_then(|a| a.as_array())
                .map(|a| a.iter().filter_map(|n| n.as_u64()).collect())
                .unwrap_or_default(),
            stuck: v
                .pointer("/change/stuck")
                .and_then(|s| s.as_str())
                .map(str::to_owned),
        },
        "fault-failed" => RunEvent::FaultFailed {
            time_ns,
            id: v.get("id").and_then(|x| x.as_u64()).unwrap_or(u64::MAX),
            kind: field_str(&v, "kind"),
            error: field_str(&v, "error"),
        },
        _ => return Ok(None),
    }))
}

fn read_json_file<T: serde::de::DeserializeOwned>(
    run_dir: &Path,
    name: &str,
    notices: &mut Vec<Notice>,
    effect_if_bad: &str,
) -> Result<Option<T>, ReportError> {
    let path = run_dir.join(name);
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    match serde_json::from_str(&text) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            notices.push(Notice {
                file: name.to_owned(),
                problem: format!("unreadable: line {}: {e}", e.line()),
                effect: effect_if_bad.to_owned(),
            });
            Ok(None)
        }
    }
}

/// Reads a whole run folder.
pub fn read_run_folder(run_dir: &Path) -> Result<RunFolder, ReportError> {
    let manifest = read_manifest(run_dir)?;
    let history = read_history(run_dir)?;
    let mut notices = Vec::new();
    let events = read_jsonl(run_dir, "events.jsonl", &mut notices, parse_event)?;
    let status = read_jsonl(run_dir, "status.jsonl", &mut notices, |v| {
        serde_json::from_value::<StatusLine>(v)
            .map(Some)
            .map_err(|e| e.to_string())
    })?;
    let check = read_json_file(
        run_dir,
        "check.json",
        &mut notices,
        "the report checked history.jsonl itself",
    )?;
    let outcome = read_json_file(
        run_dir,
        "outcome.json",
        &mut notices,
        "final reads, node exits, tool errors and convergence come from the other files where they can",
    )?;
    let missing = |file: &str, effect: &str| Notice {
        file: file.to_owned(),
        problem: "missing".to_owned(),
        effect: effect.to_owned(),
    };
    if events.is_none() {
        notices.push(missing(
            "events.jsonl",
            "fault windows come from the history's nemesis notes; node exits and failed faults are not known from it",
        ));
    }
    if status.is_none() {
        notices.push(missing(
            "status.jsonl",
            "no node roles, terms, clock offsets or leader changes; leader expectations are not evaluated",
        ));
    }
    if check.is_none() && !notices.iter().any(|n| n.file == "check.json") {
        notices.push(missing(
            "check.json",
            "the report checked history.jsonl itself with the checker's default budget",
        ));
    }
    if outcome.is_none() && !notices.iter().any(|n| n.file == "outcome.json") {
        notices.push(missing(
            "outcome.json",
            "no wall time, tool errors or convergence; final reads and node exits come from the history and events",
        ));
    }
    Ok(RunFolder {
        manifest,
        history,
        events,
        status,
        check,
        outcome,
        notices,
    })
}

/// The run folders inside a results folder (sub-folders, not symlinks such as `latest`), by name.
pub fn run_folders(results_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let entries = std::fs::read_dir(results_dir).map_err(|e| io_error(results_dir, e))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(results_dir, e))?;
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}
