//! Linearizability checker: history format, models, Wing-Gong-Lowe search, counterexamples.
//!
//! The chaos runner writes a history with [`history::HistoryWriter`]; the checker reads it back, splits it by
//! key, searches each key for a linearization in parallel, and reports a three-valued [`Verdict`] with a
//! [`Counterexample`] for every violation:
//!
//! ```
//! use checker::{check_history, CheckOptions, ModelKind, Verdict};
//! use checker::history::{Event, EventKind, Header, History, OpEvent, Operation, ProcessId, Value};
//!
//! let op = |index, process, kind, op| Event::Op(OpEvent::new(index, index * 10, ProcessId(process), kind, None, op));
//! let events = vec![
//!     op(0, 1, EventKind::Invoke, Operation::Write(Value::Int(1))),
//!     op(1, 1, EventKind::Ok, Operation::Write(Value::Int(1))),
//!     op(2, 2, EventKind::Invoke, Operation::Read(Value::Null)),
//!     op(3, 2, EventKind::Ok, Operation::Read(Value::Int(2))), // 2 was never written
//! ];
//! let history = History::new(Header::default(), events, "example");
//! let report = check_history(&history, &CheckOptions::new(ModelKind::CasRegister)).unwrap();
//! assert_eq!(report.verdict, Verdict::NotLinearizable);
//! let counterexample = report.counterexamples().next().unwrap();
//! print!("{}", counterexample.to_text());
//! ```
//!
//! Modules: [`history`] (the JSON Lines format, reader and writer; a parallel reader serves [`check_jsonl`]),
//! [`edn`] (Jepsen EDN and text-log import), [`model`] (register, cas-register, set, mutex, unordered and FIFO
//! queues), [`search`] (the search and its budget), [`counterexample`] (windows and shrinking), [`html`],
//! [`generate`] (simulated histories).

pub mod check;
pub mod counterexample;
pub mod edn;
pub mod generate;
mod hash;
pub mod history;
pub mod html;
pub mod model;
#[cfg(test)]
mod oracle_tests;
mod prepare;
mod scan;
pub mod search;

pub use check::{
    check_edn, check_file, check_history, check_jsonl, read_file, CheckError, CheckOptions,
    CheckReport, HistoryFormat, KeyReport, Verdict, REPORT_SCHEMA_VERSION,
};
pub use counterexample::{Counterexample, OpRecord, PrefixStep, WindowOp, WindowRole};
pub use html::render_html;
pub use model::ModelKind;
pub use prepare::{FaultWindow, HistoryStats, Outcome};
pub use search::{Budget, UnknownReason};
