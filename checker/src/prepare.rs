//! From events to ops: pairs each invoke with its completion, splits the history by key, interns values, and
//! drops what carries no information. Streaming, so a large file never has to be held as events; and fed borrowed
//! views of events ([`OpView`]), so that the fast reader allocates nothing per event.
//!
//! The rules (see `HISTORY-FORMAT.md`): `ok` ops happened; a `fail` did not happen and is dropped, except a cas
//! failed with `"error":"mismatch"`, which observed a value other than `expected`; `info` (or no completion at all)
//! may have happened at any time after the invoke, or never; an `info` read is dropped since it observed nothing.
//! Queues: an indeterminate dequeue of a FIFO queue may have taken the head; one of an unordered queue is dropped,
//! and so are the empty-queue observations invoked after it (it may have taken the element they would have seen).

use serde::Serialize;

use crate::hash::FxHashMap;
use crate::history::{
    Event, EventKind, Function, Key, NoteEvent, OpEvent, Operation, ParseError, ProcessId, Value,
};
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

/// Marks an absent completion position, time or line in [`PreparedOp`].
const NONE: u64 = u64::MAX;

/// A client op with both of its events, ready for the search. Compact (80 bytes): a million-op history holds a
/// million of these.
#[derive(Debug, Clone)]
pub(crate) struct PreparedOp {
    pub spec: OpSpec,
    /// The key's id (its position in [`Prepared::keys`]).
    key: u32,
    pub outcome: Outcome,
    /// Given to the search (decided at completion, or at the end for ops never completed).
    keep: bool,
    /// Completed with `fail` (not a mismatch): it did not happen.
    failed: bool,
    pub process: ProcessId,
    pub call_index: u64,
    ret_index: u64,
    pub call_time_ns: u64,
    ret_time_ns: u64,
    pub call_line: u64,
    ret_line: u64,
}

impl PreparedOp {
    /// Position of a definite completion; `None` for an op that never completed definitely (info or missing).
    pub fn ret_index(&self) -> Option<u64> {
        (self.ret_index != NONE).then_some(self.ret_index)
    }

    /// Time of the completion (an `info` one too).
    pub fn ret_time_ns(&self) -> Option<u64> {
        (self.ret_time_ns != NONE).then_some(self.ret_time_ns)
    }

    /// Line of the completion (an `info` one too).
    pub fn ret_line(&self) -> Option<u64> {
        (self.ret_line != NONE).then_some(self.ret_line)
    }
}

/// One key: its ops are `Prepared::ops[ops]`, in invoke order.
#[derive(Debug, Clone)]
pub(crate) struct KeyHistory {
    pub key: Option<Key>,
    pub ops: std::ops::Range<usize>,
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

/// A fault of the run, from the nemesis notes `chaos run` writes (`start-<kind>` / `end-<kind>`, `heal`), or a
/// Jepsen nemesis' `start` / `stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FaultWindow {
    /// The fault's kind (`kill`, `partition`, ...).
    pub kind: String,
    /// When it started, ns.
    pub start_ns: u64,
    /// When it ended (its end note, or a heal); `None` if the history ends first.
    pub end_ns: Option<u64>,
    /// Line of its start note.
    pub line: u64,
}

/// Fault windows kept per history; a run with more is drawn with the first ones only.
pub const FAULT_WINDOWS_MAX: usize = 10_000;

/// Notices kept per history; further ones are counted.
pub const NOTICES_MAX: usize = 10;

/// A whole history, prepared.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// Every op given to the search, grouped by key.
    pub ops: Vec<PreparedOp>,
    pub keys: Vec<KeyHistory>,
    pub values: ValueTable,
    pub stats: HistoryStats,
    pub notices: Vec<String>,
    pub faults: Vec<FaultWindow>,
}

/// A scalar value or key, borrowed from wherever the event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarRef<'a> {
    Null,
    Int(i64),
    Str(&'a str),
}

impl<'a> From<&'a Value> for ScalarRef<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => ScalarRef::Null,
            Value::Int(i) => ScalarRef::Int(*i),
            Value::Str(s) => ScalarRef::Str(s),
        }
    }
}

impl<'a> From<&'a Key> for ScalarRef<'a> {
    fn from(k: &'a Key) -> Self {
        match k {
            Key::Int(i) => ScalarRef::Int(*i),
            Key::Str(s) => ScalarRef::Str(s),
        }
    }
}

/// The `value` of a client event, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ArgsRef<'a> {
    /// No value (mutex ops, completions without one).
    None,
    /// One scalar.
    One(ScalarRef<'a>),
    /// A cas' `[expected, new]`.
    Pair(ScalarRef<'a>, ScalarRef<'a>),
    /// The elements of a set read.
    Set(&'a [Value]),
}

/// A client event, borrowed: what the preparation needs of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpView<'a> {
    pub index: u64,
    pub time_ns: u64,
    pub process: u64,
    pub kind: EventKind,
    pub function: Function,
    /// `Null` for no key.
    pub key: ScalarRef<'a>,
    pub args: ArgsRef<'a>,
    /// A failed cas with `"error":"mismatch"`.
    pub mismatch: bool,
}

impl<'a> OpView<'a> {
    pub fn of(e: &'a OpEvent) -> OpView<'a> {
        let args = match &e.op {
            Operation::Read(v)
            | Operation::Write(v)
            | Operation::Add(v)
            | Operation::Enqueue(v)
            | Operation::Dequeue(v) => ArgsRef::One(v.into()),
            Operation::Cas { expected, new } => ArgsRef::Pair(expected.into(), new.into()),
            Operation::ReadSet(vs) => ArgsRef::Set(vs),
            Operation::Acquire | Operation::Release | Operation::NoValue(_) => ArgsRef::None,
        };
        OpView {
            index: e.index,
            time_ns: e.time_ns,
            process: e.process.0,
            kind: e.kind,
            function: e.op.function(),
            key: e.key.as_ref().map_or(ScalarRef::Null, ScalarRef::from),
            args,
            mismatch: e.is_mismatch(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Open {
    key: u32,
    /// Position in `Preparer::ops`.
    op: usize,
    line: u64,
    function: Function,
}

/// Process ids below this are looked up in a table, larger ones in a map.
const PROCESS_TABLE_MAX: u64 = 1 << 16;

/// The outstanding op of each process.
#[derive(Default)]
struct OpenOps {
    table: Vec<Option<Open>>,
    map: FxHashMap<u64, Open>,
    len: usize,
}

impl OpenOps {
    #[inline]
    fn get(&self, process: u64) -> Option<&Open> {
        if process < PROCESS_TABLE_MAX {
            self.table.get(process as usize)?.as_ref()
        } else {
            self.map.get(&process)
        }
    }

    #[inline]
    fn insert(&mut self, process: u64, open: Open) {
        self.len += 1;
        if process < PROCESS_TABLE_MAX {
            let i = process as usize;
            if i >= self.table.len() {
                self.table.resize(i + 1, None);
            }
            self.table[i] = Some(open);
        } else {
            self.map.insert(process, open);
        }
    }

    #[inline]
    fn remove(&mut self, process: u64) -> Option<Open> {
        let open = if process < PROCESS_TABLE_MAX {
            self.table.get_mut(process as usize)?.take()
        } else {
            self.map.remove(&process)
        };
        self.len -= usize::from(open.is_some());
        open
    }

    fn values(&self) -> impl Iterator<Item = &Open> {
        self.table.iter().flatten().chain(self.map.values())
    }
}

/// Builds a [`Prepared`] history event by event.
pub(crate) struct Preparer {
    source_name: String,
    model: ModelKind,
    values: ValueTable,
    key_none: Option<u32>,
    key_ints: FxHashMap<i64, u32>,
    key_strs: FxHashMap<Box<str>, u32>,
    keys: Vec<Option<Key>>,
    ops: Vec<PreparedOp>,
    open: OpenOps,
    stats: HistoryStats,
    notices: Vec<String>,
    notices_dropped: u64,
    faults: Vec<FaultWindow>,
    /// Per open fault window: its `id` (or kind) and its position in `faults`.
    faults_open: Vec<(String, usize)>,
}

fn scalar_text(v: ScalarRef<'_>) -> String {
    match v {
        ScalarRef::Null => "none".to_owned(),
        ScalarRef::Int(i) => i.to_string(),
        ScalarRef::Str(s) => serde_json::Value::String(s.to_owned()).to_string(),
    }
}

impl Preparer {
    pub fn new(source_name: &str, model: ModelKind) -> Preparer {
        Preparer {
            source_name: source_name.to_owned(),
            model,
            values: ValueTable::default(),
            key_none: None,
            key_ints: FxHashMap::default(),
            key_strs: FxHashMap::default(),
            keys: Vec::new(),
            ops: Vec::new(),
            open: OpenOps::default(),
            stats: HistoryStats::default(),
            notices: Vec::new(),
            notices_dropped: 0,
            faults: Vec::new(),
            faults_open: Vec::new(),
        }
    }

    fn error(&self, line: u64, field: &str, message: impl Into<String>) -> ParseError {
        ParseError::new(&self.source_name, line, Some(field), message)
    }

    /// Adds a notice (not an error) for the report.
    pub fn notice(&mut self, text: String) {
        if self.notices.len() < NOTICES_MAX {
            self.notices.push(text);
        } else {
            self.notices_dropped += 1;
        }
    }

    pub fn push(&mut self, line: u64, event: &Event) -> Result<(), ParseError> {
        match event {
            Event::Note(n) => {
                self.push_note(line, n);
                Ok(())
            }
            Event::Op(e) => self.push_op(line, &OpView::of(e)),
        }
    }

    pub fn push_note(&mut self, line: u64, n: &NoteEvent) {
        self.stats.events += 1;
        self.stats.time_ns_max = self.stats.time_ns_max.max(n.time_ns);
        self.stats.notes += 1;
        let process = n.process.as_str();
        if process == Some("nemesis") {
            self.fault_note(line, n);
        } else if process.is_some() && Function::parse(&n.f).is_some() {
            // Most likely a client op whose process was written as a string by a converter: say so, since it is
            // not checked.
            self.notice(format!(
                "{}:{line}: process {} is a string, so this {} is read as a note and not checked (client processes are integers)",
                self.source_name, n.process, n.f
            ));
        }
    }

    fn fault_note(&mut self, line: u64, n: &NoteEvent) {
        let id = n
            .value
            .get("id")
            .map(|v| v.to_string())
            .unwrap_or_else(|| n.f.clone());
        let open = |kind: &str, this: &mut Preparer| {
            if this.faults_open.iter().any(|(i, _)| *i == id) {
                return;
            }
            if this.faults.len() < FAULT_WINDOWS_MAX {
                this.faults_open.push((id.clone(), this.faults.len()));
                this.faults.push(FaultWindow {
                    kind: kind.to_owned(),
                    start_ns: n.time_ns,
                    end_ns: None,
                    line,
                });
            }
        };
        if let Some(kind) = n.f.strip_prefix("start-") {
            open(kind, self);
        } else if n.f == "start" {
            open("fault", self);
        } else if n.f.starts_with("end-") || n.f == "stop" {
            let id = if n.f == "stop" {
                "start".to_owned()
            } else {
                id
            };
            if let Some(pos) = self.faults_open.iter().position(|(i, _)| *i == id) {
                let (_, at) = self.faults_open.swap_remove(pos);
                self.faults[at].end_ns = Some(n.time_ns);
            }
        } else if n.f == "heal" {
            for (_, at) in self.faults_open.drain(..) {
                self.faults[at].end_ns = Some(n.time_ns);
            }
        }
    }

    fn key_id(&mut self, key: ScalarRef<'_>) -> u32 {
        let next = u32::try_from(self.keys.len()).expect("fewer than 2^32 keys");
        let (id, new_key) = match key {
            ScalarRef::Null => match self.key_none {
                Some(id) => (id, None),
                None => {
                    self.key_none = Some(next);
                    (next, Some(None))
                }
            },
            ScalarRef::Int(i) => match self.key_ints.get(&i) {
                Some(id) => (*id, None),
                None => {
                    self.key_ints.insert(i, next);
                    (next, Some(Some(Key::Int(i))))
                }
            },
            ScalarRef::Str(s) => match self.key_strs.get(s) {
                Some(id) => (*id, None),
                None => {
                    self.key_strs.insert(s.into(), next);
                    (next, Some(Some(Key::Str(s.to_owned()))))
                }
            },
        };
        if let Some(key) = new_key {
            self.keys.push(key);
        }
        id
    }

    fn scalar(&mut self, v: ScalarRef<'_>) -> ValueId {
        match v {
            ScalarRef::Null => ValueId::NULL,
            ScalarRef::Int(i) => self.values.intern_int(i),
            ScalarRef::Str(s) => self.values.intern_str(s),
        }
    }

    pub fn push_op(&mut self, line: u64, e: &OpView<'_>) -> Result<(), ParseError> {
        self.stats.events += 1;
        self.stats.time_ns_max = self.stats.time_ns_max.max(e.time_ns);
        if e.kind == EventKind::Invoke {
            self.invoke(line, e)
        } else {
            self.complete(line, e)
        }
    }

    fn invoke(&mut self, line: u64, e: &OpView<'_>) -> Result<(), ParseError> {
        if let Some(open) = self.open.get(e.process) {
            return Err(self.error(
                line,
                "process",
                format!(
                    "process {} invokes again while its op from line {} is outstanding",
                    e.process, open.line
                ),
            ));
        }
        if !self.model.functions().contains(&e.function) {
            let names: Vec<&str> = self.model.functions().iter().map(|f| f.as_str()).collect();
            return Err(self.error(
                line,
                "f",
                format!(
                    "{} is not an op of the {} model, which has {} (choose another model with --model)",
                    e.function.as_str(),
                    self.model,
                    names.join(" and ")
                ),
            ));
        }
        fn one<'a>(args: ArgsRef<'a>) -> ScalarRef<'a> {
            match args {
                ArgsRef::One(v) => v,
                _ => ScalarRef::Null,
            }
        }
        let spec = match (e.function, e.args) {
            // The value read is only known at completion.
            (Function::Read, _) if self.model == ModelKind::Set => {
                OpSpec::new(OpKind::ReadSet, ValueId::NULL)
            }
            (Function::Read, _) => OpSpec::new(OpKind::Read, ValueId::NULL),
            (Function::Write, args) => OpSpec::new(OpKind::Write, self.scalar(one(args))),
            (Function::Cas, ArgsRef::Pair(expected, new)) => OpSpec {
                kind: OpKind::Cas,
                a: self.scalar(expected),
                b: self.scalar(new),
            },
            (Function::Cas, _) => return Err(self.error(line, "value", "missing")),
            (Function::Add, args) => OpSpec::new(OpKind::Add, self.scalar(one(args))),
            (Function::Acquire, _) => OpSpec::new(OpKind::Acquire, ValueId::NULL),
            (Function::Release, _) => OpSpec::new(OpKind::Release, ValueId::NULL),
            (Function::Enqueue, args) => {
                let v = one(args);
                if v == ScalarRef::Null {
                    return Err(self.error(
                        line,
                        "value",
                        "an enqueue needs a value (null stands for an empty queue in a dequeue)",
                    ));
                }
                OpSpec::new(OpKind::Enqueue, self.scalar(v))
            }
            (Function::Dequeue, _) => OpSpec::new(OpKind::Dequeue, ValueId::NULL),
        };
        let key = self.key_id(e.key);
        let op = self.ops.len();
        self.ops.push(PreparedOp {
            spec,
            key,
            outcome: Outcome::Info,
            // A read that never completes observed nothing; it is kept only once its ok arrives. So is a dequeue,
            // until its completion or the end says what became of it.
            keep: !matches!(e.function, Function::Read | Function::Dequeue),
            failed: false,
            process: ProcessId(e.process),
            call_index: e.index,
            ret_index: NONE,
            call_time_ns: e.time_ns,
            ret_time_ns: NONE,
            call_line: line,
            ret_line: NONE,
        });
        self.stats.ops += 1;
        self.open.insert(
            e.process,
            Open {
                key,
                op,
                line,
                function: e.function,
            },
        );
        Ok(())
    }

    fn complete(&mut self, line: u64, e: &OpView<'_>) -> Result<(), ParseError> {
        let Some(open) = self.open.remove(e.process) else {
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
        if open.function != e.function {
            return Err(self.error(
                line,
                "f",
                format!(
                    "{} completes an invoke of {} (line {})",
                    e.function.as_str(),
                    open.function.as_str(),
                    open.line
                ),
            ));
        }
        let key = &self.keys[open.key as usize];
        let key_ref = key.as_ref().map_or(ScalarRef::Null, ScalarRef::from);
        if e.key != ScalarRef::Null && e.key != key_ref {
            return Err(self.error(
                line,
                "key",
                format!(
                    "completion key {} differs from the invoke's {} (line {})",
                    scalar_text(e.key),
                    scalar_text(key_ref),
                    open.line
                ),
            ));
        }
        // The value an ok read or dequeue observed.
        let observed = match (e.kind, e.function, e.args) {
            (EventKind::Ok, Function::Read, ArgsRef::Set(items)) if self.model == ModelKind::Set => {
                Some(ValueId(self.values.intern_set(items)))
            }
            (EventKind::Ok, Function::Read, ArgsRef::One(ScalarRef::Null) | ArgsRef::None)
                if self.model == ModelKind::Set =>
            {
                Some(ValueId(self.values.intern_set(&[])))
            }
            (EventKind::Ok, Function::Read, _) if self.model == ModelKind::Set => {
                return Err(self.error(
                    line,
                    "value",
                    "a read of the set model returns an array of the set's elements",
                ))
            }
            (EventKind::Ok, Function::Read, ArgsRef::Set(_)) => {
                return Err(self.error(
                    line,
                    "value",
                    format!(
                        "a read of the {} model returns one value; an array is a set read (use --model set)",
                        self.model
                    ),
                ))
            }
            (EventKind::Ok, Function::Read | Function::Dequeue, ArgsRef::One(v)) => {
                Some(self.scalar(v))
            }
            (EventKind::Ok, Function::Read | Function::Dequeue, _) => Some(ValueId::NULL),
            _ => None,
        };
        let fifo = self.model == ModelKind::FifoQueue;
        let slot = &mut self.ops[open.op];
        match e.kind {
            EventKind::Invoke => unreachable!("invokes are handled by `invoke`"),
            EventKind::Ok => {
                slot.outcome = Outcome::Ok;
                slot.ret_index = e.index;
                slot.ret_time_ns = e.time_ns;
                slot.ret_line = line;
                if let Some(v) = observed {
                    slot.spec.a = v;
                }
                slot.keep = true;
            }
            EventKind::Fail if e.mismatch => {
                slot.outcome = Outcome::Mismatch;
                slot.spec.kind = OpKind::CasMismatch;
                slot.spec.b = ValueId::NULL;
                slot.ret_index = e.index;
                slot.ret_time_ns = e.time_ns;
                slot.ret_line = line;
                slot.keep = true;
            }
            EventKind::Fail => {
                slot.keep = false;
                slot.failed = true;
                self.stats.ops_failed += 1;
            }
            EventKind::Info => {
                // The op stays open for ever: its effect, if any, may come at any later time.
                slot.ret_time_ns = e.time_ns;
                slot.ret_line = line;
                if slot.spec.kind == OpKind::Dequeue && fifo {
                    slot.spec.kind = OpKind::DequeueHead;
                    slot.keep = true;
                }
                self.stats.ops_info += 1;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Prepared {
        // Ops never completed count as info.
        self.stats.ops_info += self.open.len as u64;
        if self.model == ModelKind::FifoQueue {
            for open in self.open.values() {
                let slot = &mut self.ops[open.op];
                if slot.spec.kind == OpKind::Dequeue {
                    slot.spec.kind = OpKind::DequeueHead;
                    slot.keep = true;
                }
            }
        }
        if self.model == ModelKind::UnorderedQueue {
            // Empty-queue observations after an indeterminate dequeue cannot be trusted: it may have taken the
            // element they would have seen.
            let mut first_lost: FxHashMap<u32, u64> = FxHashMap::default();
            for o in &self.ops {
                if o.spec.kind == OpKind::Dequeue && o.outcome == Outcome::Info && !o.failed {
                    let t = first_lost.entry(o.key).or_insert(o.call_index);
                    *t = (*t).min(o.call_index);
                }
            }
            for o in &mut self.ops {
                if o.spec.kind == OpKind::Dequeue
                    && o.outcome == Outcome::Ok
                    && o.spec.a == ValueId::NULL
                    && first_lost.get(&o.key).is_some_and(|t| o.call_index > *t)
                {
                    o.keep = false;
                }
            }
        }
        let mut ops = std::mem::take(&mut self.ops);
        ops.retain(|o| o.keep);
        ops.shrink_to_fit();
        // Group by key, each key's ops in invoke order (invoke indexes are unique and increasing).
        {
            use rayon::slice::ParallelSliceMut;
            ops.par_sort_unstable_by_key(|o| (o.key, o.call_index));
        }
        let mut ranges = vec![0..0; self.keys.len()];
        let mut start = 0;
        while start < ops.len() {
            let key = ops[start].key;
            let end = start + ops[start..].partition_point(|o| o.key == key);
            ranges[key as usize] = start..end;
            start = end;
        }
        self.stats.ops_checked = ops.len() as u64;
        let keys: Vec<KeyHistory> = std::mem::take(&mut self.keys)
            .into_iter()
            .zip(ranges)
            .map(|(key, ops)| KeyHistory { key, ops })
            .collect();
        self.stats.keys = keys.len() as u64;
        if self.notices_dropped > 0 {
            self.notices.push(format!(
                "{}: {} more notices like these",
                self.source_name, self.notices_dropped
            ));
        }
        Prepared {
            ops,
            keys,
            values: self.values,
            stats: self.stats,
            notices: self.notices,
            faults: self.faults,
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
        for n in &h.notices {
            p.notice(n.clone());
        }
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
        let ops = &p.ops[p.keys[0].ops.clone()];
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
            .all(|k| k.ops.len() == 1 && p.ops[k.ops.start].outcome == Outcome::Ok));
    }
}
