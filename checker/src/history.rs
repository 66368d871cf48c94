//! The history format: one JSON object per line, written by the chaos runner and read by the checker.
//!
//! The precise format is documented in `checker/HISTORY-FORMAT.md`. In short, the first line is a [`Header`]
//! carrying `schema_version`, and every further line is an [`Event`]:
//!
//! ```text
//! {"schema_version":1,"format":"chaos-history"}
//! {"index":0,"time":1532000,"process":3,"type":"invoke","f":"write","key":"k1","value":7}
//! {"index":1,"time":1671000,"process":3,"type":"ok","f":"write","key":"k1","value":7}
//! ```
//!
//! Writing: [`HistoryWriter`] appends one line per event. Reading: [`JsonlReader`] streams events with their line
//! numbers, and [`History::read_jsonl`] collects them. Both sides use the same types, so the runner and the checker
//! cannot disagree about the format.

use std::fmt;
use std::io::{BufRead, Read, Write};

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The schema version this crate writes, and the only one it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The `format` name written in the header line of a history file.
pub const FORMAT_NAME: &str = "chaos-history";

/// A line longer than this is refused: a runaway line must not exhaust memory (the longest real event is a few
/// hundred bytes).
pub const LINE_BYTES_MAX: usize = 1 << 20;

/// A register value: a JSON scalar. `Null` means the key is absent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Value {
    /// The key is absent (JSON `null`, EDN `nil`).
    #[default]
    Null,
    /// A JSON integer.
    Int(i64),
    /// A JSON string.
    Str(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Str(v) => s.serialize_str(v),
        }
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer, a string or null")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} is out of the 64-bit signed range")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// The key of a register in a map of registers: a JSON integer or string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An integer key.
    Int(i64),
    /// A string key.
    Str(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
        }
    }
}

impl From<i64> for Key {
    fn from(v: i64) -> Self {
        Key::Int(v)
    }
}

impl From<&str> for Key {
    fn from(v: &str) -> Self {
        Key::Str(v.to_owned())
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Int(i) => s.serialize_i64(*i),
            Key::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(ScalarVisitor)? {
            Value::Int(i) => Ok(Key::Int(i)),
            Value::Str(s) => Ok(Key::Str(s)),
            Value::Null => Err(de::Error::custom("a key must be an integer or a string")),
        }
    }
}

/// A client process: the integer `process` of an event. A process has at most one op outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProcessId(pub u64);

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The op was sent.
    Invoke,
    /// The op took effect; for a read, `value` is what it read.
    Ok,
    /// The op did not take effect (or, with `"error":"mismatch"` on a cas, found a different value).
    Fail,
    /// Indeterminate: the op may have taken effect at any time after its invoke, or never.
    Info,
}

impl EventKind {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Invoke => "invoke",
            EventKind::Ok => "ok",
            EventKind::Fail => "fail",
            EventKind::Info => "info",
        }
    }

    fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "invoke" => EventKind::Invoke,
            "ok" => EventKind::Ok,
            "fail" => EventKind::Fail,
            "info" => EventKind::Info,
            _ => return None,
        })
    }
}

/// The `f` of a client op. Which functions a history may use depends on the model it is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Function {
    /// Read the register (or, for the set model, the whole set).
    Read,
    /// Overwrite the register.
    Write,
    /// Compare-and-set.
    Cas,
    /// Add an element to a set.
    Add,
    /// Acquire a mutex.
    Acquire,
    /// Release a mutex.
    Release,
    /// Put an element into a queue.
    Enqueue,
    /// Take an element out of a queue.
    Dequeue,
}

impl Function {
    /// Every function, in the order of the documentation.
    pub const ALL: [Function; 8] = [
        Function::Read,
        Function::Write,
        Function::Cas,
        Function::Add,
        Function::Acquire,
        Function::Release,
        Function::Enqueue,
        Function::Dequeue,
    ];

    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Read => "read",
            Function::Write => "write",
            Function::Cas => "cas",
            Function::Add => "add",
            Function::Acquire => "acquire",
            Function::Release => "release",
            Function::Enqueue => "enqueue",
            Function::Dequeue => "dequeue",
        }
    }

    /// Parses the name used in the file.
    pub fn parse(s: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A client operation with its `value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// A read: `Null` on invoke, the value read (or `Null` for absent) on ok.
    Read(Value),
    /// A write of a value.
    Write(Value),
    /// A compare-and-set, written `[expected, new]`.
    Cas {
        /// The value the register must hold for the cas to apply.
        expected: Value,
        /// The value it then holds.
        new: Value,
    },
    /// A read of a whole set: the elements read, written as a JSON array (order does not matter).
    ReadSet(Vec<Value>),
    /// Adds an element to a set.
    Add(Value),
    /// Acquires a mutex.
    Acquire,
    /// Releases a mutex.
    Release,
    /// Puts an element into a queue.
    Enqueue(Value),
    /// Takes an element out of a queue: `Null` on invoke; on ok the element taken, `Null` for an empty queue.
    Dequeue(Value),
    /// The completion of a write, cas, add or enqueue that carries no `value`: the checker takes an op's values
    /// from its invoke, so tools that leave them out of `fail` and `info` lines are understood.
    NoValue(Function),
}

impl Operation {
    /// The op's `f`.
    pub fn function(&self) -> Function {
        match self {
            Operation::Read(_) | Operation::ReadSet(_) => Function::Read,
            Operation::Write(_) => Function::Write,
            Operation::Cas { .. } => Function::Cas,
            Operation::Add(_) => Function::Add,
            Operation::Acquire => Function::Acquire,
            Operation::Release => Function::Release,
            Operation::Enqueue(_) => Function::Enqueue,
            Operation::Dequeue(_) => Function::Dequeue,
            Operation::NoValue(f) => *f,
        }
    }
}

/// The `error` string that marks a cas which found a value different from `expected`.
pub const ERROR_MISMATCH: &str = "mismatch";

/// An event of a client process: the invocation or completion of a read, write or cas.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpEvent {
    /// Position in the history, strictly increasing from line to line.
    pub index: u64,
    /// Nanoseconds since the run started.
    pub time_ns: u64,
    /// The client process.
    pub process: ProcessId,
    /// Invoke, ok, fail or info.
    pub kind: EventKind,
    /// The register; `None` for a history of one single register.
    pub key: Option<Key>,
    /// What the op does, with its value.
    pub op: Operation,
    /// Why a fail or info happened (`"mismatch"` for a cas that found another value).
    pub error: Option<String>,
}

impl OpEvent {
    /// A new client event without an error.
    pub fn new(
        index: u64,
        time_ns: u64,
        process: ProcessId,
        kind: EventKind,
        key: Option<Key>,
        op: Operation,
    ) -> OpEvent {
        OpEvent {
            index,
            time_ns,
            process,
            kind,
            key,
            op,
            error: None,
        }
    }

    /// The same event with an `error` string.
    pub fn with_error(mut self, error: impl Into<String>) -> OpEvent {
        self.error = Some(error.into());
        self
    }

    /// True for a failed cas that observed a value different from `expected`.
    pub fn is_mismatch(&self) -> bool {
        self.kind == EventKind::Fail
            && self.op.function() == Function::Cas
            && self.error.as_deref() == Some(ERROR_MISMATCH)
    }
}

/// An event whose `process` is not an integer, such as a nemesis action: kept for reports, skipped by the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NoteEvent {
    /// Position in the history.
    pub index: u64,
    /// Nanoseconds since the run started.
    pub time_ns: u64,
    /// The non-integer process, for example `"nemesis"`.
    pub process: serde_json::Value,
    /// Invoke, ok, fail or info.
    pub kind: EventKind,
    /// Free-form action name, for example `"start-partition"`.
    pub f: String,
    /// Free-form value.
    pub value: serde_json::Value,
    /// Optional error text.
    pub error: Option<String>,
}

impl NoteEvent {
    /// A new note event.
    pub fn new(
        index: u64,
        time_ns: u64,
        process: impl Into<String>,
        kind: EventKind,
        f: impl Into<String>,
        value: serde_json::Value,
    ) -> NoteEvent {
        NoteEvent {
            index,
            time_ns,
            process: serde_json::Value::String(process.into()),
            kind,
            f: f.into(),
            value,
            error: None,
        }
    }
}

/// One line of a history after the header.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A client op event, checked.
    Op(OpEvent),
    /// A note (nemesis and other non-client events), not checked.
    Note(NoteEvent),
}

impl Event {
    /// The event's `index`.
    pub fn index(&self) -> u64 {
        match self {
            Event::Op(e) => e.index,
            Event::Note(e) => e.index,
        }
    }

    /// The event's `time` in nanoseconds.
    pub fn time_ns(&self) -> u64 {
        match self {
            Event::Op(e) => e.time_ns,
            Event::Note(e) => e.time_ns,
        }
    }
}

impl From<OpEvent> for Event {
    fn from(e: OpEvent) -> Self {
        Event::Op(e)
    }
}

impl From<NoteEvent> for Event {
    fn from(e: NoteEvent) -> Self {
        Event::Note(e)
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ValueOut<'a> {
    Scalar(&'a Value),
    Pair([&'a Value; 2]),
    Many(&'a [Value]),
    Json(&'a serde_json::Value),
}

#[derive(Serialize)]
#[serde(untagged)]
enum ProcessOut<'a> {
    Client(ProcessId),
    Other(&'a serde_json::Value),
}

#[derive(Serialize)]
struct EventOut<'a> {
    index: u64,
    time: u64,
    process: ProcessOut<'a>,
    #[serde(rename = "type")]
    kind: EventKind,
    f: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<ValueOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let out = match self {
            Event::Op(e) => EventOut {
                index: e.index,
                time: e.time_ns,
                process: ProcessOut::Client(e.process),
                kind: e.kind,
                f: e.op.function().as_str(),
                key: e.key.as_ref(),
                value: match &e.op {
                    Operation::Read(v)
                    | Operation::Write(v)
                    | Operation::Add(v)
                    | Operation::Enqueue(v)
                    | Operation::Dequeue(v) => Some(ValueOut::Scalar(v)),
                    Operation::Cas { expected, new } => Some(ValueOut::Pair([expected, new])),
                    Operation::ReadSet(vs) => Some(ValueOut::Many(vs)),
                    Operation::Acquire | Operation::Release => Some(ValueOut::Scalar(&Value::Null)),
                    Operation::NoValue(_) => None,
                },
                error: e.error.as_deref(),
            },
            Event::Note(e) => EventOut {
                index: e.index,
                time: e.time_ns,
                process: ProcessOut::Other(&e.process),
                kind: e.kind,
                f: &e.f,
                key: None,
                value: Some(ValueOut::Json(&e.value)),
                error: e.error.as_deref(),
            },
        };
        out.serialize(s)
    }
}

/// The fields of an event line, each kept raw so that a bad one can be reported by name.
#[derive(Deserialize)]
struct EventIn<'a> {
    #[serde(borrow)]
    index: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    process: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    f: Option<&'a RawValue>,
    #[serde(borrow)]
    key: Option<&'a RawValue>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// A field that could not be decoded: its name and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name in the file.
    pub field: &'static str,
    /// What is wrong, in lower case.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

fn field_err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

fn required<'a>(
    field: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<&'a RawValue, FieldError> {
    match raw {
        Some(r) if r.get() != "null" => Ok(r),
        _ => Err(field_err(field, "missing")),
    }
}

fn decode<'a, T: Deserialize<'a>>(
    field: &'static str,
    raw: &'a RawValue,
    what: &str,
) -> Result<T, FieldError> {
    serde_json::from_str(raw.get()).map_err(|_| {
        field_err(
            field,
            format!("expected {what}, found {}", shorten(raw.get())),
        )
    })
}

/// Shortens a raw JSON text for an error message.
fn shorten(s: &str) -> String {
    const CHARS_MAX: usize = 40;
    if s.chars().count() <= CHARS_MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(CHARS_MAX).collect();
        format!("{head}...")
    }
}

fn decode_str<'a>(
    field: &'static str,
    raw: &'a RawValue,
) -> Result<std::borrow::Cow<'a, str>, FieldError> {
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Text<'b>(#[serde(borrow)] std::borrow::Cow<'b, str>);
    let t: Text<'a> = decode(field, raw, "a string")?;
    Ok(t.0)
}

impl EventIn<'_> {
    fn into_event(self) -> Result<Event, FieldError> {
        let index: u64 = decode(
            "index",
            required("index", self.index)?,
            "a non-negative integer",
        )?;
        let time_ns: u64 = decode(
            "time",
            required("time", self.time)?,
            "a non-negative integer (nanoseconds)",
        )?;
        let kind_text = decode_str("type", required("type", self.kind)?)?;
        let kind = EventKind::parse(&kind_text).ok_or_else(|| {
            field_err(
                "type",
                format!("expected invoke, ok, fail or info, found {kind_text:?}"),
            )
        })?;
        let f_text = decode_str("f", required("f", self.f)?)?;
        let error = match self.error {
            Some(raw) if raw.get() != "null" => Some(decode_str("error", raw)?.into_owned()),
            _ => None,
        };
        let process_raw = required("process", self.process)?;
        let text = process_raw.get();
        let is_number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
        if !is_number {
            let process: serde_json::Value = decode("process", process_raw, "a JSON value")?;
            let value = match self.value {
                Some(raw) => decode("value", raw, "a JSON value")?,
                None => serde_json::Value::Null,
            };
            return Ok(Event::Note(NoteEvent {
                index,
                time_ns,
                process,
                kind,
                f: f_text.into_owned(),
                value,
                error,
            }));
        }
        let process = ProcessId(decode(
            "process",
            process_raw,
            "a non-negative integer or a name",
        )?);
        let function = Function::parse(&f_text).ok_or_else(|| {
            field_err(
                "f",
                format!("expected {}, found {f_text:?}", function_names()),
            )
        })?;
        let key = match self.key {
            Some(raw) if raw.get() != "null" => {
                Some(decode::<Key>("key", raw, "an integer or a string")?)
            }
            _ => None,
        };
        let op = decode_op(function, kind, self.value)?;
        Ok(Event::Op(OpEvent {
            index,
            time_ns,
            process,
            kind,
            key,
            op,
            error,
        }))
    }
}

/// `read, write, cas, ...` for error messages.
pub(crate) fn function_names() -> String {
    let names: Vec<&str> = Function::ALL.iter().map(|f| f.as_str()).collect();
    format!("one of {}", names.join(", "))
}

/// Decodes the `value` of a client op by its function (see the value table in `HISTORY-FORMAT.md`).
fn decode_op(
    function: Function,
    kind: EventKind,
    raw: Option<&RawValue>,
) -> Result<Operation, FieldError> {
    let present = raw.filter(|r| r.get() != "null");
    let scalar = |raw: Option<&RawValue>| -> Result<Value, FieldError> {
        match raw {
            Some(raw) => decode("value", raw, "an integer, a string or null"),
            None => Ok(Value::Null),
        }
    };
    let completion = kind != EventKind::Invoke;
    Ok(match function {
        Function::Read => {
            let text = raw.map(|r| r.get().trim_start()).unwrap_or("");
            if text.starts_with('[') {
                let items: Vec<Value> = decode(
                    "value",
                    raw.expect("present"),
                    "an array of integers, strings or nulls (a set read)",
                )?;
                if !completion {
                    return Err(field_err("value", "a read's invoke must have a null value"));
                }
                Operation::ReadSet(items)
            } else {
                let v = scalar(raw)?;
                if !completion && v != Value::Null {
                    return Err(field_err("value", "a read's invoke must have a null value"));
                }
                Operation::Read(v)
            }
        }
        Function::Write if completion && raw.is_none() => Operation::NoValue(function),
        Function::Write => Operation::Write(scalar(raw)?),
        Function::Cas => match present {
            None if completion => Operation::NoValue(function),
            None => return Err(field_err("value", "missing")),
            Some(raw) => {
                let (expected, new): (Value, Value) =
                    decode("value", raw, "[expected, new] for a cas")?;
                Operation::Cas { expected, new }
            }
        },
        Function::Add | Function::Enqueue if completion && present.is_none() => {
            Operation::NoValue(function)
        }
        Function::Add => Operation::Add(scalar(raw)?),
        Function::Enqueue => Operation::Enqueue(scalar(raw)?),
        Function::Dequeue => {
            let v = scalar(raw)?;
            if !completion && v != Value::Null {
                return Err(field_err(
                    "value",
                    "a dequeue's invoke must have a null value",
                ));
            }
            Operation::Dequeue(v)
        }
        // A mutex op's value means nothing; it is not decoded.
        Function::Acquire => Operation::Acquire,
        Function::Release => Operation::Release,
    })
}

impl Event {
    /// Decodes one event line, naming the offending field on error.
    pub fn from_json_line(line: &str) -> Result<Event, FieldError> {
        let raw: EventIn<'_> = serde_json::from_str(line).map_err(|e| FieldError {
            field: "(line)",
            message: format!(
                "not a JSON object with event fields: {}",
                strip_position(&e.to_string())
            ),
        })?;
        raw.into_event()
    }
}

/// serde_json appends " at line L column C"; within one line only the column is useful.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => {
            let tail = &msg[i..];
            match tail.find("column") {
                Some(c) => format!("{} at {}", &msg[..i], &tail[c..]),
                None => msg[..i].to_owned(),
            }
        }
        None => msg.to_owned(),
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Event::from_json_line(raw.get()).map_err(de::Error::custom)
    }
}

/// The first line of a history file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Header {
    /// The format version; readers refuse versions they do not know.
    pub schema_version: u32,
    /// Always [`FORMAT_NAME`] for files this crate writes; `"jepsen-edn"` for imported EDN.
    pub format: String,
    /// Free-form run metadata (seed, commit, plan name...), kept for reports.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub meta: serde_json::Value,
}

impl Header {
    /// The header this crate writes, with run metadata.
    pub fn new(meta: serde_json::Value) -> Header {
        Header {
            schema_version: SCHEMA_VERSION,
            format: FORMAT_NAME.to_owned(),
            meta,
        }
    }
}

impl Default for Header {
    fn default() -> Self {
        Header::new(serde_json::Value::Null)
    }
}

/// Appends a history, one JSON line per event. Wrap the sink in a `BufWriter` and call [`HistoryWriter::flush`]
/// when the events must be on disk (the runner flushes on every completion so a crash loses little).
#[derive(Debug)]
pub struct HistoryWriter<W: Write> {
    sink: W,
    buf: Vec<u8>,
    index_next: u64,
}

impl<W: Write> HistoryWriter<W> {
    /// Writes the header line and returns the writer.
    pub fn new(mut sink: W, header: &Header) -> std::io::Result<Self> {
        let mut buf = serde_json::to_vec(header).map_err(std::io::Error::other)?;
        buf.push(b'\n');
        sink.write_all(&buf)?;
        Ok(HistoryWriter {
            sink,
            buf,
            index_next: 0,
        })
    }

    /// The `index` the next event must carry.
    pub fn index_next(&self) -> u64 {
        self.index_next
    }

    /// Appends one event. Its index must be at least [`HistoryWriter::index_next`]: readers refuse histories whose
    /// indexes go backwards, so the writer refuses them first.
    pub fn append(&mut self, event: &Event) -> std::io::Result<()> {
        if event.index() < self.index_next {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "event index {} is below the next index {}",
                    event.index(),
                    self.index_next
                ),
            ));
        }
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, event).map_err(std::io::Error::other)?;
        self.buf.push(b'\n');
        self.sink.write_all(&self.buf)?;
        self.index_next = event.index() + 1;
        Ok(())
    }

    /// Flushes the sink.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }

    /// Returns the sink.
    pub fn into_inner(self) -> W {
        self.sink
    }
}

/// A history file that cannot be read: names the file, the line and (when known) the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct ParseError {
    /// The file (or other source) name.
    pub source_name: String,
    /// 1-based line number; 0 when the error is about the whole file.
    pub line: u64,
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    /// A new error.
    pub fn new(
        source_name: &str,
        line: u64,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> ParseError {
        ParseError {
            source_name: source_name.to_owned(),
            line,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Streams the events of a JSON Lines history, checking the header and that indexes increase.
#[derive(Debug)]
pub struct JsonlReader<R: BufRead> {
    reader: R,
    source_name: String,
    line: u64,
    header: Header,
    buf: Vec<u8>,
    index_last: Option<u64>,
    /// A file without a header: the first line, already in `buf`, is an event still to be returned.
    first_is_event: bool,
    notices: Vec<String>,
}

/// Reads one line of at most [`LINE_BYTES_MAX`] bytes into `buf` (without the newline). Returns false at the end.
fn read_line_bounded<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Result<bool, ()>> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(LINE_BYTES_MAX as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Ok(false));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() > LINE_BYTES_MAX {
        return Ok(Err(()));
    }
    Ok(Ok(true))
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads and checks the header line.
    pub fn new(mut reader: R, source_name: &str) -> Result<Self, ParseError> {
        let mut buf = Vec::new();
        let mut line = 0;
        loop {
            line += 1;
            match read_line_bounded(&mut reader, &mut buf) {
                Err(e) => {
                    return Err(ParseError::new(
                        source_name,
                        line,
                        None,
                        format!("read error: {e}"),
                    ))
                }
                Ok(Err(())) => {
                    return Err(ParseError::new(source_name, line, None, "line too long"))
                }
                Ok(Ok(false)) => {
                    return Err(ParseError::new(
                        source_name,
                        line,
                        None,
                        "empty file: expected a header line with `schema_version`",
                    ))
                }
                Ok(Ok(true)) => {}
            }
            if !buf.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        let header = parse_header(&buf)
            .map_err(|(field, msg)| ParseError::new(source_name, line, field, msg))?;
        let mut notices = Vec::new();
        let first_is_event = header.is_none();
        if first_is_event {
            notices.push(headerless_notice(source_name, line));
            // The line is read again as an event.
            line -= 1;
        }
        Ok(JsonlReader {
            reader,
            source_name: source_name.to_owned(),
            line,
            header: header.unwrap_or_default(),
            buf,
            index_last: None,
            first_is_event,
            notices,
        })
    }

    /// One-line notices about the file that are not errors (e.g. a missing header line).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The rest of the input after the header: the reader, the line number read last, and the first event line
    /// of a file without a header (already read).
    pub(crate) fn into_rest(self) -> (R, u64, Option<Vec<u8>>) {
        let first = self.first_is_event.then_some(self.buf);
        (self.reader, self.line, first)
    }

    /// The header line.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The source name given to [`JsonlReader::new`].
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The next event and its 1-based line number, or `None` at the end of the file.
    pub fn next_event(&mut self) -> Result<Option<(u64, Event)>, ParseError> {
        loop {
            self.line += 1;
            if std::mem::take(&mut self.first_is_event) {
                // The first line of a headerless file, already read.
            } else {
                match read_line_bounded(&mut self.reader, &mut self.buf) {
                    Err(e) => return Err(self.error(None, format!("read error: {e}"))),
                    Ok(Err(())) => {
                        return Err(
                            self.error(None, format!("line longer than {LINE_BYTES_MAX} bytes"))
                        )
                    }
                    Ok(Ok(false)) => return Ok(None),
                    Ok(Ok(true)) => {}
                }
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t,
                Err(_) => return Err(self.error(None, "not valid UTF-8")),
            };
            let event = Event::from_json_line(text).map_err(|e| {
                let field = (e.field != "(line)").then_some(e.field);
                self.error(field, e.message)
            })?;
            if let Some(last) = self.index_last {
                if event.index() <= last {
                    return Err(self.error(
                        Some("index"),
                        format!(
                            "{} does not increase (previous line has {last})",
                            event.index()
                        ),
                    ));
                }
            }
            self.index_last = Some(event.index());
            return Ok(Some((self.line, event)));
        }
    }

    fn error(&self, field: Option<&str>, message: impl Into<String>) -> ParseError {
        ParseError::new(&self.source_name, self.line, field, message)
    }
}

/// The notice given for a file whose first line is an event rather than a header.
pub(crate) fn headerless_notice(source_name: &str, line: u64) -> String {
    format!(
        "{source_name}:{line}: no header line; read as a schema {SCHEMA_VERSION} history (add {{\"schema_version\":{SCHEMA_VERSION}}} as the first line to silence this)"
    )
}

/// Decodes the first line: `Ok(Some(header))`, or `Ok(None)` when the line is an event (a file without a header,
/// read as schema 1), or the field at fault.
pub(crate) fn parse_header(line: &[u8]) -> Result<Option<Header>, (Option<&'static str>, String)> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        (
            None,
            format!("header is not JSON: {}", strip_position(&e.to_string())),
        )
    })?;
    let obj = v.as_object().ok_or((
        None,
        "the first line must be a header object with `schema_version`".to_owned(),
    ))?;
    let version = match obj.get("schema_version") {
        // An event line (it names its type or function): a history converted by hand without a header.
        None if obj.contains_key("type") || obj.contains_key("f") => return Ok(None),
        None => {
            return Err((
                Some("schema_version"),
                "missing: the first line must be a header such as {\"schema_version\":1,\"format\":\"chaos-history\"}"
                    .to_owned(),
            ))
        }
        Some(v) => v.as_u64().ok_or((Some("schema_version"), format!("expected an integer, found {v}")))?,
    };
    if version != u64::from(SCHEMA_VERSION) {
        return Err((
            Some("schema_version"),
            format!("unsupported version {version}: this checker reads version {SCHEMA_VERSION}"),
        ));
    }
    let format = match obj.get("format") {
        None => FORMAT_NAME.to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => return Err((Some("format"), format!("expected a string, found {other}"))),
    };
    let meta = obj.get("meta").cloned().unwrap_or(serde_json::Value::Null);
    Ok(Some(Header {
        schema_version: SCHEMA_VERSION,
        format,
        meta,
    }))
}

/// A whole history in memory: the header, the events and the line each event came from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct History {
    /// The header (synthesised for imported EDN).
    pub header: Header,
    /// The events in file order.
    pub events: Vec<Event>,
    /// `lines[i]` is the 1-based line of `events[i]` in the source.
    pub lines: Vec<u64>,
    /// The file (or other source) name, used in error messages.
    pub source_name: String,
    /// One-line notices about the source that are not errors (e.g. a missing header line).
    pub notices: Vec<String>,
}

impl History {
    /// A history built in memory; line numbers are the positions the events would have in a written file.
    pub fn new(header: Header, events: Vec<Event>, source_name: &str) -> History {
        let lines = (0..events.len() as u64).map(|i| i + 2).collect();
        History {
            header,
            events,
            lines,
            source_name: source_name.to_owned(),
            notices: Vec::new(),
        }
    }

    /// Reads a whole JSON Lines history.
    pub fn read_jsonl<R: BufRead>(reader: R, source_name: &str) -> Result<History, ParseError> {
        let mut r = JsonlReader::new(reader, source_name)?;
        let mut events = Vec::new();
        let mut lines = Vec::new();
        while let Some((line, event)) = r.next_event()? {
            events.push(event);
            lines.push(line);
        }
        Ok(History {
            header: r.header,
            events,
            lines,
            source_name: source_name.to_owned(),
            notices: r.notices,
        })
    }

    /// Writes the history as JSON Lines.
    pub fn write_jsonl<W: Write>(&self, sink: W) -> std::io::Result<W> {
        let mut w = HistoryWriter::new(sink, &self.header)?;
        for e in &self.events {
            w.append(e)?;
        }
        w.flush()?;
        Ok(w.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "{\"schema_version\":1,\"format\":\"chaos-history\"}\n";

    fn read(text: &str) -> Result<History, ParseError> {
        History::read_jsonl(text.as_bytes(), "h.jsonl")
    }

    #[test]
    fn reads_the_issue_example() {
        let text = format!(
            "{HEADER}{}\n",
            r#"{"index":0,"time":1532000,"process":3,"type":"invoke","f":"write","key":"k1","value":7}"#
        );
        let h = read(&text).unwrap();
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.lines, vec![2]);
        let Event::Op(e) = &h.events[0] else {
            panic!("expected a client op")
        };
        assert_eq!(e.process, ProcessId(3));
        assert_eq!(e.key, Some(Key::Str("k1".into())));
        assert_eq!(e.op, Operation::Write(Value::Int(7)));
        assert_eq!(e.time_ns, 1_532_000);
    }

    #[test]
    fn round_trips_through_the_writer() {
        let events: Vec<Event> = vec![
            OpEvent::new(
                0,
                10,
                ProcessId(1),
                EventKind::Invoke,
                None,
                Operation::Read(Value::Null),
            )
            .into(),
            OpEvent::new(
                1,
                20,
                ProcessId(1),
                EventKind::Ok,
                None,
                Operation::Read(Value::Str("a\"b".into())),
            )
            .into(),
            OpEvent::new(
                2,
                30,
                ProcessId(2),
                EventKind::Fail,
                Some(Key::Int(-4)),
                Operation::Cas {
                    expected: Value::Null,
                    new: Value::Int(3),
                },
            )
            .with_error(ERROR_MISMATCH)
            .into(),
            NoteEvent::new(
                3,
                40,
                "nemesis",
                EventKind::Info,
                "start-partition",
                serde_json::json!({"nodes": [1, 2]}),
            )
            .into(),
        ];
        let h = History::new(Header::new(serde_json::json!({"seed": 7})), events, "mem");
        let bytes = h.write_jsonl(Vec::new()).unwrap();
        let back = History::read_jsonl(&bytes[..], "mem").unwrap();
        assert_eq!(back, h);
        let Event::Op(e) = &back.events[2] else {
            panic!("expected a client op")
        };
        assert!(e.is_mismatch());
    }

    #[test]
    fn serde_deserialize_agrees_with_the_reader() {
        let e: Event = serde_json::from_str(
            r#"{"index":5,"time":1,"process":0,"type":"ok","f":"cas","value":[1,"x"]}"#,
        )
        .unwrap();
        let Event::Op(e) = e else {
            panic!("expected a client op")
        };
        assert_eq!(
            e.op,
            Operation::Cas {
                expected: Value::Int(1),
                new: Value::Str("x".into())
            }
        );
        let err = serde_json::from_str::<Event>(
            r#"{"index":5,"time":1,"process":0,"type":"ok","f":"cas","value":3}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("field `value`"), "{err}");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                r#"{"index":0,"time":1,"process":1,"type":"invok","f":"read"}"#,
                Some("type"),
            ),
            (
                r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"inc"}"#,
                Some("f"),
            ),
            (
                r#"{"index":0,"time":-1,"process":1,"type":"invoke","f":"read"}"#,
                Some("time"),
            ),
            (
                r#"{"index":0,"process":1,"type":"invoke","f":"read"}"#,
                Some("time"),
            ),
            (
                r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":1.5}"#,
                Some("value"),
            ),
            (
                r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":[1]}"#,
                Some("value"),
            ),
            (
                r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"cas","value":[1]}"#,
                Some("value"),
            ),
            (
                r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read","key":[1]}"#,
                Some("key"),
            ),
            (
                r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read","value":3}"#,
                Some("value"),
            ),
            (
                r#"{"index":0,"time":1,"process":1.5,"type":"invoke","f":"read"}"#,
                Some("process"),
            ),
            (
                r#"{"index":0,"time":1,"process":-1,"type":"invoke","f":"read"}"#,
                Some("process"),
            ),
            (
                r#"{"index":0,"time":1,"process":1,"type":"fail","f":"read","error":7}"#,
                Some("error"),
            ),
            (
                r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read""#,
                None,
            ),
            (r#"[1,2]"#, None),
        ];
        for (line, field) in cases {
            let err = read(&format!("{HEADER}\n{line}\n")).unwrap_err();
            assert_eq!(err.line, 3, "{line}: {err}");
            assert_eq!(err.field.as_deref(), field, "{line}: {err}");
            assert!(err.to_string().starts_with("h.jsonl:3: "), "{err}");
        }
    }

    #[test]
    fn header_is_versioned_and_a_headerless_file_is_schema_1_with_a_notice() {
        let h = read(&format!(
            "\n{}\n{}\n",
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read"}"#,
            r#"{"index":1,"time":2,"process":1,"type":"ok","f":"read","value":null}"#
        ))
        .unwrap();
        assert_eq!(h.header, Header::default());
        assert_eq!(h.lines, vec![2, 3]);
        assert_eq!(h.notices.len(), 1, "{:?}", h.notices);
        assert!(
            h.notices[0].starts_with("h.jsonl:2: no header line; read as a schema 1 history"),
            "{:?}",
            h.notices
        );
        let err = read(r#"{"seed":1}"#).unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (1, Some("schema_version"))
        );
        let err = read("{\"schema_version\":2}\n").unwrap_err();
        assert!(err.message.contains("unsupported version 2"), "{err}");
        let err = read("").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn completions_of_writes_and_cas_may_leave_out_the_value() {
        let h = read(&format!(
            "{HEADER}{}\n{}\n{}\n{}\n{}\n",
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"cas","value":[1,2]}"#,
            r#"{"index":1,"time":2,"process":1,"type":"info","f":"cas"}"#,
            r#"{"index":2,"time":3,"process":1,"type":"fail","f":"cas","value":null,"error":"mismatch"}"#,
            r#"{"index":3,"time":4,"process":1,"type":"fail","f":"write"}"#,
            r#"{"index":4,"time":5,"process":1,"type":"ok","f":"read","value":[1,"a"]}"#
        ))
        .unwrap();
        let ops: Vec<&Operation> = h
            .events
            .iter()
            .map(|e| match e {
                Event::Op(o) => &o.op,
                Event::Note(_) => panic!("no notes here"),
            })
            .collect();
        assert_eq!(ops[1], &Operation::NoValue(Function::Cas));
        assert_eq!(ops[2], &Operation::NoValue(Function::Cas));
        assert_eq!(ops[3], &Operation::NoValue(Function::Write));
        assert_eq!(
            ops[4],
            &Operation::ReadSet(vec![Value::Int(1), Value::Str("a".into())])
        );
        // An invoke still needs its values.
        let err = read(&format!(
            "{HEADER}{}\n",
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"cas"}"#
        ))
        .unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (2, Some("value")));
        // And the writer leaves the value out again.
        let back = History::read_jsonl(&h.write_jsonl(Vec::new()).unwrap()[..], "h.jsonl").unwrap();
        assert_eq!(back.events, h.events);
    }

    #[test]
    fn indexes_must_increase() {
        let text = format!(
            "{HEADER}{}\n{}\n",
            r#"{"index":4,"time":1,"process":1,"type":"invoke","f":"read"}"#,
            r#"{"index":4,"time":2,"process":1,"type":"ok","f":"read","value":null}"#
        );
        let err = read(&text).unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (3, Some("index")));
    }

    #[test]
    fn long_lines_are_refused() {
        let text = format!("{HEADER}{}\n", " ".repeat(LINE_BYTES_MAX + 10));
        let err = read(&text).unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn writer_refuses_decreasing_indexes() {
        let mut w = HistoryWriter::new(Vec::new(), &Header::default()).unwrap();
        let e: Event = OpEvent::new(
            3,
            0,
            ProcessId(0),
            EventKind::Invoke,
            None,
            Operation::Read(Value::Null),
        )
        .into();
        w.append(&e).unwrap();
        assert_eq!(w.index_next(), 4);
        assert!(w.append(&e).is_err());
    }
}
