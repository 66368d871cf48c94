//! From events to ops: pairs each invoke with its completion, splits the history by key, interns values, and
//! drops what carries no information. Streaming, so a large file never has to be held as events.
//!
//! The rules (see `HISTORY-FORMAT.md`): `ok` ops happened; a `fail` did not happen and is dropped, except a cas
//! failed with `"error":"mismatch"`, which observed a value other than `expected`; `info` (or no completion at all)
//! may have happened at any time after the invoke, or never; an `info` read is dropped since it observed nothing.

use serde::Serialize;

use crate::hash::FxHashMap;
use crate::history::{Event, EventKind, Function, Key, OpEvent, Operation, ParseError, ProcessId};
use crate::model::{ModelKind, OpKind, OpSpec, ValueId, ValueTable};

/// How a checked op ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Completed: it happened between invoke and completion.
    Ok,
    /// Indeterminate (`info`, or never completed): it may have happened at any time after invoke, or never.
    Info,
    /// A cas that found a value other than `expected` at some point between invoke and completion.
    Mismatch,
}

/// A client op with both of its events, ready for the search.
#[derive(Debug, Clone)]
pub(crate) struct PreparedOp {
    pub spec: OpSpec,
    pub outcome: Outcome,
    pub process: ProcessId,
    pub call_index: u64,
    /// `None` for an op that never completed definitely (info or missing completion).
    pub ret_index: Option<u64>,
    pub call_time_ns: u64,
    pub ret_time_ns: Option<u64>,
    pub call_line: u64,
    pub ret_line: Option<u64>,
}

/// The ops of one key, in invoke order.
#[derive(Debug, Clone)]
pub(crate) struct KeyHistory {
    pub key: Option<Key>,
    pub ops: Vec<PreparedOp>,
}

/// Counts kept for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HistoryStats {
    /// All events after the header.
    pub events: u64,
    /// Events of non-client processes (nemesis and the like).
    pub notes: u64,
    /// Client ops (invocations).
    pub ops: u64,
    /// Ops given to the search.
    pub ops_checked: u64,
    /// Failed ops dropped because they did not happen.
    pub ops_failed: u64,
    /// Indeterminate ops (info or never completed), reads among them dropped.
    pub ops_info: u64,
    /// Distinct keys (a history without keys has one).
    pub keys: u64,
    /// The largest event time, in nanoseconds.
    pub time_ns_max: u64,
}

/// A whole history, prepared.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub keys: Vec<KeyHistory>,
    pub values: ValueTable,
    pub stats: HistoryStats,
}

struct Open {
    key: u32,
    op: u32,
    line: u64,
    function: Function,
}

/// Slot of an invoked op, filled in at completion.
struct Slot {
    op: PreparedOp,
    keep: bool,
}

/// Builds a [`Prepared`] history event by event.
pub(crate) struct Preparer {
    source_name: String,
    model: ModelKind,
    values: ValueTable,
    key_ids: FxHashMap<Option<Key>, u32>,
    keys: Vec<(Option<Key>, Vec<Slot>)>,
    open: FxHashMap<ProcessId, Open>,
    stats: HistoryStats,
}

impl Preparer {
    pub fn new(source_name: &str, model: ModelKind) -> Preparer {
        Preparer {
            source_name: source_name.to_owned(),
            model,
            values: ValueTable::default(),
            key_ids: FxHashMap::default(),
            keys: Vec::new(),
            open: FxHashMap::default(),
            stats: HistoryStats::default(),
        }
    }

    fn error(&self, line: u64, field: &str, message: impl Into<String>) -> ParseError {
        ParseError::new(&self.source_name, line, Some(field), message)
    }

    pub fn push(&mut self, line: u64, event: &Event) -> Result<(), ParseError> {
        self.stats.events += 1;
        self.stats.time_ns_max = self.stats.time_ns_max.max(event.time_ns());
        match event {
            Event::Note(_) => {
                self.stats.notes += 1;
                Ok(())
            }
            Event::Op(e) if e.kind == EventKind::Invoke => self.invoke(line, e),
            Event::Op(e) => self.complete(line, e),
        }
    }

    fn invoke(&mut self, line: u64, e: &OpEvent) -> Result<(), ParseError> {
        if let Some(open) = self.open.get(&e.process) {
            return Err(self.error(
                line,
                "process",
                format!(
                    "process {} invokes again while its op from line {} is outstanding",
                    e.process, open.line
                ),
            ));
        }
        if self.model == ModelKind::Register && e.op.function() == Function::Cas {
            return Err(self.error(
                line,
                "f",
                "cas is not an op of the register model (use the cas-register model)",
            ));
        }
        let spec = match &e.op {
            // The value read is only known at completion.
            Operation::Read(_) => OpSpec {
                kind: OpKind::Read,
                a: ValueId::NULL,
                b: ValueId::NULL,
            },
            Operation::Write(v) => OpSpec {
                kind: OpKind::Write,
                a: self.values.intern(v),
                b: ValueId::NULL,
            },
            Operation::Cas { expected, new } => OpSpec {
                kind: OpKind::Cas,
                a: self.values.intern(expected),
                b: self.values.intern(new),
            },
        };
        let key = match self.key_ids.get(&e.key) {
            Some(k) => *k,
            None => {
                let k = u32::try_from(self.keys.len()).expect("fewer than 2^32 keys");
                self.key_ids.insert(e.key.clone(), k);
                self.keys.push((e.key.clone(), Vec::new()));
                k
            }
        };
        let slots = &mut self.keys[key as usize].1;
        let op = u32::try_from(slots.len()).expect("fewer than 2^32 ops per key");
        slots.push(Slot {
            op: PreparedOp {
                spec,
                outcome: Outcome::Info,
                process: e.process,
                call_index: e.index,
                ret_index: None,
                call_time_ns: e.time_ns,
                ret_time_ns: None,
                call_line: line,
                ret_line: None,
            },
            // A read that never completes observed nothing; it is kept only once its ok arrives.
            keep: e.op.function() != Function::Read,
        });
        self.stats.ops += 1;
        self.open.insert(
            e.process,
            Open {
                key,
                op,
                line,
                function: e.op.function(),
            },
        );
        Ok(())
    }

    fn complete(&mut self, line: u64, e: &OpEvent) -> Result<(), ParseError> {
        let Some(open) = self.open.remove(&e.process) else {
            return Err(self.error(
                line,
                "process",
                format!(
                    "{} for process {} which has no outstanding invoke",
                    e.kind.as_str(),
                    e.process
                ),
            ));
        };
        if open.function != e.op.function() {
            return Err(self.error(
                line,
                "f",
                format!(
                    "{} completes an invoke of {} (line {})",
                    e.op.function().as_str(),
                    open.function.as_str(),
                    open.line
                ),
            ));
        }
        let (key, _) = &self.keys[open.key as usize];
        if e.key.is_some() && e.key != *key {
            let shown = |k: &Option<Key>| {
                k.as_ref()
                    .map(Key::to_string)
                    .unwrap_or_else(|| "none".into())
            };
            return Err(self.error(
                line,
                "key",
                format!(
                    "completion key {} differs from the invoke's {} (line {})",
                    shown(&e.key),
                    shown(key),
                    open.line
                ),
            ));
        }
        let read_value = match (&e.op, e.kind) {
            (Operation::Read(v), EventKind::Ok) => Some(self.values.intern(v)),
            _ => None,
        };
        let slot = &mut self.keys[open.key as usize].1[open.op as usize];
        match e.kind {
            EventKind::Invoke => unreachable!("invokes are handled by `invoke`"),
            EventKind::Ok => {
                slot.op.outcome = Outcome::Ok;
                slot.op.ret_index = Some(e.index);
                slot.op.ret_time_ns = Some(e.time_ns);
                slot.op.ret_line = Some(line);
                if let Some(v) = read_value {
                    slot.op.spec.a = v;
                }
                slot.keep = true;
            }
            EventKind::Fail if e.is_mismatch() => {
                slot.op.outcome = Outcome::Mismatch;
                slot.op.spec.kind = OpKind::CasMismatch;
                slot.op.spec.b = ValueId::NULL;
                slot.op.ret_index = Some(e.index);
                slot.op.ret_time_ns = Some(e.time_ns);
                slot.op.ret_line = Some(line);
                slot.keep = true;
            }
            EventKind::Fail => {
                slot.keep = false;
                self.stats.ops_failed += 1;
            }
            EventKind::Info => {
                // The op stays open for ever: its effect, if any, may come at any later time.
                slot.op.ret_time_ns = Some(e.time_ns);
                slot.op.ret_line = Some(line);
                self.stats.ops_info += 1;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Prepared {
        // Ops never completed count as info.
        self.stats.ops_info += self.open.len() as u64;
        let mut keys = Vec::with_capacity(self.keys.len());
        for (key, slots) in self.keys {
            let ops: Vec<PreparedOp> = slots.into_iter().filter(|s| s.keep).map(|s| s.op).collect();
            self.stats.ops_checked += ops.len() as u64;
            keys.push(KeyHistory { key, ops });
        }
        self.stats.keys = keys.len() as u64;
        Prepared {
            keys,
            values: self.values,
            stats: self.stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;

    fn prepare(lines: &[&str], model: ModelKind) -> Result<Prepared, ParseError> {
        let text = format!("{{\"schema_version\":1}}\n{}\n", lines.join("\n"));
        let h = History::read_jsonl(text.as_bytes(), "p.jsonl").unwrap();
        let mut p = Preparer::new("p.jsonl", model);
        for (line, e) in h.lines.iter().zip(&h.events) {
            p.push(*line, e)?;
        }
        Ok(p.finish())
    }

    #[test]
    fn pairs_and_drops() {
        let p = prepare(
            &[
                r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"read"}"#,
                r#"{"index":2,"time":3,"process":2,"type":"invoke","f":"cas","value":[1,2]}"#,
                r#"{"index":3,"time":4,"process":3,"type":"invoke","f":"cas","value":[5,6]}"#,
                r#"{"index":4,"time":5,"process":0,"type":"ok","f":"write","value":1}"#,
                r#"{"index":5,"time":6,"process":1,"type":"ok","f":"read","value":1}"#,
                r#"{"index":6,"time":7,"process":2,"type":"fail","f":"cas","value":[1,2],"error":"mismatch"}"#,
                r#"{"index":7,"time":8,"process":3,"type":"fail","f":"cas","value":[5,6],"error":"timeout"}"#,
                r#"{"index":8,"time":9,"process":4,"type":"invoke","f":"read"}"#,
                r#"{"index":9,"time":9,"process":5,"type":"invoke","f":"write","value":9}"#,
                r#"{"index":10,"time":9,"process":"nemesis","type":"info","f":"kill","value":{"node":1}}"#,
            ],
            ModelKind::CasRegister,
        )
        .unwrap();
        assert_eq!(p.keys.len(), 1);
        let ops = &p.keys[0].ops;
        let kinds: Vec<_> = ops.iter().map(|o| (o.spec.kind, o.outcome)).collect();
        assert_eq!(
            kinds,
            vec![
                (OpKind::Write, Outcome::Ok),
                (OpKind::Read, Outcome::Ok),
                (OpKind::CasMismatch, Outcome::Mismatch),
                (OpKind::Write, Outcome::Info),
            ]
        );
        assert_eq!(p.values.describe(ops[1].spec.a), "1");
        assert_eq!(p.stats.ops, 6);
        assert_eq!(p.stats.ops_checked, 4);
        assert_eq!(p.stats.ops_failed, 1);
        assert_eq!(p.stats.ops_info, 2);
        assert_eq!(p.stats.notes, 1);
    }

    #[test]
    fn structural_errors_name_line_and_field() {
        let cases: &[(&[&str], u64, &str)] = &[
            (
                &[r#"{"index":0,"time":1,"process":0,"type":"ok","f":"write","value":1}"#],
                2,
                "process",
            ),
            (
                &[
                    r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#,
                    r#"{"index":1,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#,
                ],
                3,
                "process",
            ),
            (
                &[
                    r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#,
                    r#"{"index":1,"time":1,"process":0,"type":"ok","f":"read","value":1}"#,
                ],
                3,
                "f",
            ),
            (
                &[
                    r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":1,"value":1}"#,
                    r#"{"index":1,"time":1,"process":0,"type":"ok","f":"write","key":2,"value":1}"#,
                ],
                3,
                "key",
            ),
        ];
        for (lines, line, field) in cases {
            let err = prepare(lines, ModelKind::CasRegister).expect_err("an error");
            assert_eq!(
                (err.line, err.field.as_deref()),
                (*line, Some(*field)),
                "{err}"
            );
        }
        let err = prepare(
            &[r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"cas","value":[1,2]}"#],
            ModelKind::Register,
        )
        .expect_err("an error");
        assert_eq!((err.line, err.field.as_deref()), (2, Some("f")));
    }

    #[test]
    fn keys_split_the_history() {
        let p = prepare(
            &[
                r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"a","value":1}"#,
                r#"{"index":1,"time":1,"process":1,"type":"invoke","f":"write","key":2,"value":1}"#,
                r#"{"index":2,"time":1,"process":0,"type":"ok","f":"write","value":1}"#,
                r#"{"index":3,"time":1,"process":1,"type":"ok","f":"write","key":2,"value":1}"#,
            ],
            ModelKind::CasRegister,
        )
        .unwrap();
        assert_eq!(p.keys.len(), 2);
        assert_eq!(p.keys[0].key, Some(Key::Str("a".into())));
        assert_eq!(p.keys[1].key, Some(Key::Int(2)));
        assert!(p
            .keys
            .iter()
            .all(|k| k.ops.len() == 1 && k.ops[0].outcome == Outcome::Ok));
    }
}
