//! Checking a history: prepare it, search every key in parallel, and report a verdict per key and overall.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::counterexample::{self, Counterexample};
use crate::edn::EdnReader;
use crate::hash::FxBuild;
use crate::history::{History, JsonlReader, Key, ParseError};
use crate::model::{
    CasRegister, Model, ModelKind, Mutex, OpKind, Queue, Register, SetModel, ValueId, ValueTable,
};
use crate::prepare::{FaultWindow, HistoryStats, Outcome, Prepared, PreparedOp, Preparer};
use crate::search::{search, Budget, SearchOp, UnknownReason, Verdict as SearchVerdict, NEVER};

/// The version of the report written by [`CheckReport`]'s serialisation.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// The three-valued result of a check: never a bool, since a search that ran out of budget proves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// No linearization exists.
    NotLinearizable,
    /// The budget ran out before the search could tell.
    Unknown,
    /// The history has no operation to check (only a header, only notes, or only ops that carry no information
    /// such as failed ones): it proves nothing either way.
    Empty,
}

impl Verdict {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not linearizable",
            Verdict::Unknown => "unknown",
            Verdict::Empty => "empty",
        }
    }

    /// Combines verdicts of parts: any violation wins, then any unknown; an empty part adds nothing.
    pub fn combine(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Empty, v) | (v, Verdict::Empty) => v,
            (Verdict::NotLinearizable, _) | (_, Verdict::NotLinearizable) => {
                Verdict::NotLinearizable
            }
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            _ => Verdict::Linearizable,
        }
    }
}

/// How to check.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CheckOptions {
    /// The model every key is checked against.
    pub model: ModelKind,
    /// Search limits.
    pub budget: Budget,
    /// Build counterexamples for keys that are not linearizable (costs extra searches on those keys only).
    pub counterexamples: bool,
}

impl CheckOptions {
    /// Options for a model, with the default budget and counterexamples on.
    pub fn new(model: ModelKind) -> CheckOptions {
        CheckOptions {
            model,
            budget: Budget::default(),
            counterexamples: true,
        }
    }

    /// The same options with another budget.
    pub fn with_budget(mut self, budget: Budget) -> CheckOptions {
        self.budget = budget;
        self
    }

    /// The same options with counterexamples on or off.
    pub fn with_counterexamples(mut self, on: bool) -> CheckOptions {
        self.counterexamples = on;
        self
    }
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions::new(ModelKind::default())
    }
}

/// The result for one key.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct KeyReport {
    /// The key (`None` for a single-register history).
    pub key: Option<Key>,
    /// The key's verdict.
    pub verdict: Verdict,
    /// Ops of this key given to the search.
    pub ops: u64,
    /// Search steps spent.
    pub steps: u64,
    /// Why the verdict is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<UnknownReason>,
    /// Why the key is not linearizable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
}

/// The result for one history.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The file (or other source) checked.
    pub source: String,
    /// The history's `format` (`chaos-history`, or `jepsen-edn` for an import).
    pub format: String,
    /// The model used.
    pub model: ModelKind,
    /// The overall verdict: not linearizable if any key is, else unknown if any key is, else linearizable.
    pub verdict: Verdict,
    /// Counts of events and ops.
    pub stats: HistoryStats,
    /// Keys found linearizable.
    pub keys_linearizable: u64,
    /// Keys found not linearizable.
    pub keys_not_linearizable: u64,
    /// Keys whose search ran out of budget.
    pub keys_unknown: u64,
    /// Search steps over all keys.
    pub steps: u64,
    /// The keys that are not linearizable or unknown, in key order; linearizable keys are only counted.
    pub keys: Vec<KeyReport>,
    /// One-line notices about the history that are not errors (a missing header, a client op written with a
    /// string process...), each naming the file and line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// The faults of the run, from the nemesis notes of a `chaos run` history (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultWindow>,
}

impl CheckReport {
    /// The counterexamples of all keys that are not linearizable.
    pub fn counterexamples(&self) -> impl Iterator<Item = &Counterexample> {
        self.keys.iter().filter_map(|k| k.counterexample.as_ref())
    }
}

/// A history that could not be checked: unreadable or malformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The file could not be opened or read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        message: String,
    },
    /// The file is malformed; the error names file, line and field.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// The file formats the checker reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryFormat {
    /// The chaos JSON Lines format.
    Jsonl,
    /// A Jepsen `history.edn`.
    Edn,
    /// A Jepsen text log (`.log` or `.txt`): op lines as `jepsen.util` prints them and `history.txt` stores them.
    JepsenLog,
}

impl HistoryFormat {
    /// The format of a file, from its extension: `.edn` is EDN, `.log` and `.txt` a Jepsen text log, anything
    /// else JSON Lines.
    pub fn of_path(path: &Path) -> HistoryFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("edn") => HistoryFormat::Edn,
            Some(e) if e.eq_ignore_ascii_case("log") || e.eq_ignore_ascii_case("txt") => {
                HistoryFormat::JepsenLog
            }
            _ => HistoryFormat::Jsonl,
        }
    }
}

/// Checks a history held in memory.
pub fn check_history(history: &History, options: &CheckOptions) -> Result<CheckReport, ParseError> {
    let mut p = Preparer::new(&history.source_name, options.model);
    for n in &history.notices {
        p.notice(n.clone());
    }
    for (line, event) in history.lines.iter().zip(&history.events) {
        p.push(*line, event)?;
    }
    Ok(check_prepared(
        p.finish(),
        &history.source_name,
        &history.header.format,
        options,
    ))
}

/// Checks a JSON Lines history as it is read, without holding its events in memory: blocks of lines are scanned
/// in parallel while the previous block is paired and split by key.
pub fn check_jsonl<R: BufRead>(
    reader: R,
    source_name: &str,
    options: &CheckOptions,
) -> Result<CheckReport, ParseError> {
    let r = JsonlReader::new(reader, source_name)?;
    let format = r.header().format.clone();
    let mut p = Preparer::new(source_name, options.model);
    for n in r.notices() {
        p.notice(n.clone());
    }
    crate::scan::read_events(r, source_name, &mut p)?;
    Ok(check_prepared(p.finish(), source_name, &format, options))
}

/// Checks a Jepsen EDN history.
pub fn check_edn<R: Read>(
    reader: R,
    source_name: &str,
    options: &CheckOptions,
) -> Result<CheckReport, ParseError> {
    let mut r = EdnReader::new(reader, source_name)?;
    let format = r.header().format.clone();
    check_stream(|| r.next_event(), Vec::new(), &format, source_name, options)
}

/// Prepares events as a reader yields them (line, event), then searches.
fn check_stream(
    mut next_event: impl FnMut() -> Result<Option<(u64, crate::history::Event)>, ParseError>,
    notices: Vec<String>,
    format: &str,
    source_name: &str,
    options: &CheckOptions,
) -> Result<CheckReport, ParseError> {
    let mut p = Preparer::new(source_name, options.model);
    for n in notices {
        p.notice(n);
    }
    while let Some((line, event)) = next_event()? {
        p.push(line, &event)?;
    }
    Ok(check_prepared(p.finish(), source_name, format, options))
}

/// Checks a file: `.edn` as Jepsen EDN, `.log` and `.txt` as a Jepsen text log, anything else as JSON Lines.
pub fn check_file(path: &Path, options: &CheckOptions) -> Result<CheckReport, CheckError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| CheckError::Io {
        path: name.clone(),
        message: e.to_string(),
    })?;
    let reader = BufReader::with_capacity(1 << 16, file);
    Ok(match HistoryFormat::of_path(path) {
        HistoryFormat::Jsonl => check_jsonl(reader, &name, options)?,
        HistoryFormat::Edn => check_edn(reader, &name, options)?,
        HistoryFormat::JepsenLog => {
            check_history(&crate::edn::read_jepsen_log(reader, &name)?, options)?
        }
    })
}

/// Reads a whole file into memory, `.edn` as Jepsen EDN and anything else as JSON Lines.
pub fn read_file(path: &Path) -> Result<History, CheckError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| CheckError::Io {
        path: name.clone(),
        message: e.to_string(),
    })?;
    let reader = BufReader::with_capacity(1 << 16, file);
    Ok(match HistoryFormat::of_path(path) {
        HistoryFormat::Jsonl => History::read_jsonl(reader, &name)?,
        HistoryFormat::Edn => History::read_edn(reader, &name)?,
        HistoryFormat::JepsenLog => crate::edn::read_jepsen_log(reader, &name)?,
    })
}

fn check_prepared(
    prepared: Prepared,
    source: &str,
    format: &str,
    options: &CheckOptions,
) -> CheckReport {
    match options.model {
        ModelKind::Register => check_model(&Register, prepared, source, format, options),
        ModelKind::CasRegister => check_model(&CasRegister, prepared, source, format, options),
        ModelKind::Set => {
            let reads = prepared.values.sets().to_vec();
            check_model(
                &SetModel { reads: &reads },
                prepared,
                source,
                format,
                options,
            )
        }
        ModelKind::Mutex => check_model(&Mutex, prepared, source, format, options),
        ModelKind::UnorderedQueue => {
            check_model(&Queue { fifo: false }, prepared, source, format, options)
        }
        ModelKind::FifoQueue => {
            check_model(&Queue { fifo: true }, prepared, source, format, options)
        }
    }
}

fn check_model<M: Model>(
    model: &M,
    prepared: Prepared,
    source: &str,
    format: &str,
    options: &CheckOptions,
) -> CheckReport {
    let Prepared {
        ops: all_ops,
        keys,
        values,
        stats,
        notices,
        faults,
    } = prepared;
    // Largest keys first, so that one big key does not start last and run alone on one core.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| Reverse(keys[i].ops.len()));
    let all_ops = &all_ops;
    let results: Vec<(usize, KeyReport)> = order
        .par_iter()
        .map(|&i| {
            let k = &keys[i];
            (
                i,
                check_key(model, &k.key, &all_ops[k.ops.clone()], &values, options),
            )
        })
        .collect();
    let mut report = CheckReport {
        schema_version: REPORT_SCHEMA_VERSION,
        source: source.to_owned(),
        format: format.to_owned(),
        model: options.model,
        verdict: Verdict::Linearizable,
        stats,
        keys_linearizable: 0,
        keys_not_linearizable: 0,
        keys_unknown: 0,
        steps: 0,
        keys: Vec::new(),
        notices,
        faults,
    };
    for (_, k) in results {
        report.steps += k.steps;
        report.verdict = report.verdict.combine(k.verdict);
        match k.verdict {
            Verdict::Linearizable => report.keys_linearizable += 1,
            Verdict::NotLinearizable => report.keys_not_linearizable += 1,
            Verdict::Unknown => report.keys_unknown += 1,
            Verdict::Empty => unreachable!("a key has ops"),
        }
        if k.verdict != Verdict::Linearizable {
            report.keys.push(k);
        }
    }
    if report.stats.ops_checked == 0 {
        report.verdict = Verdict::Empty;
    }
    report.keys.sort_by(|a, b| a.key.cmp(&b.key));
    report
}

/// The ops of a key as the search sees them, with the prepared op behind each.
///
/// An indeterminate op that writes `v` can only matter if some op observes `v` (a read of `v`, a cas expecting
/// `v`) after its invoke, or if the key has mismatch observations (which a write of anything else can satisfy).
/// Otherwise taking effect could only make later reads fail, never help them, and it is dropped here; the search
/// leaves out the others as soon as nothing left could need them.
fn search_ops(key_ops: &[PreparedOp]) -> (Vec<&PreparedOp>, Vec<SearchOp>) {
    let ret_of = |o: &PreparedOp| match o.outcome {
        Outcome::Info => NEVER,
        Outcome::Ok | Outcome::Mismatch => o.ret_index().expect("a definite op has a completion"),
    };
    let mut last_observer: HashMap<ValueId, u64, FxBuild> = HashMap::default();
    let mut has_mismatch = false;
    for o in key_ops {
        match o.spec.kind {
            OpKind::Read | OpKind::Cas => {
                let e = last_observer.entry(o.spec.a).or_insert(0);
                *e = (*e).max(ret_of(o));
            }
            OpKind::CasMismatch => has_mismatch = true,
            _ => {}
        }
    }
    let mut prepared = Vec::with_capacity(key_ops.len());
    let mut ops = Vec::with_capacity(key_ops.len());
    for o in key_ops {
        let optional = o.outcome == Outcome::Info;
        if optional && !has_mismatch {
            // Indeterminate reads are dropped in preparation; ops of other models are all kept.
            if let Some(written) = o.spec.written() {
                if last_observer
                    .get(&written)
                    .is_none_or(|t| *t < o.call_index)
                {
                    continue;
                }
            }
        }
        prepared.push(o);
        ops.push(SearchOp {
            spec: o.spec,
            call: o.call_index,
            ret: ret_of(o),
            optional,
        });
    }
    (prepared, ops)
}

fn check_key<M: Model>(
    model: &M,
    key: &Option<Key>,
    key_ops: &[PreparedOp],
    values: &ValueTable,
    options: &CheckOptions,
) -> KeyReport {
    let mut report = KeyReport {
        key: key.clone(),
        verdict: Verdict::Unknown,
        ops: key_ops.len() as u64,
        steps: 0,
        unknown_reason: None,
        counterexample: None,
    };
    if options.budget.expired() {
        report.unknown_reason = Some(UnknownReason::TimeLimit);
        return report;
    }
    let (prepared, ops) = search_ops(key_ops);
    let (verdict, stats) = search(
        model,
        &mut M::Arena::default(),
        &ops,
        model.init(),
        &options.budget,
        None,
    );
    report.steps = stats.steps;
    match verdict {
        SearchVerdict::Linearizable => report.verdict = Verdict::Linearizable,
        SearchVerdict::Unknown(reason) => report.unknown_reason = Some(reason),
        SearchVerdict::Illegal { frontier, .. } => {
            report.verdict = Verdict::NotLinearizable;
            if options.counterexamples {
                let mut arena = M::Arena::default();
                let (again, _) = search(
                    model,
                    &mut arena,
                    &ops,
                    model.init(),
                    &options.budget,
                    Some(frontier),
                );
                let path = match again {
                    SearchVerdict::Illegal { path, .. } => path.map(|p| (p, &arena)),
                    _ => None,
                };
                report.counterexample = Some(counterexample::build(
                    model,
                    key,
                    &prepared,
                    &ops,
                    values,
                    frontier,
                    path,
                    &options.budget,
                ));
            }
        }
    }
    report
}
