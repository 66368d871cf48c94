//! Import of Jepsen `history.edn` files, so histories recorded by Jepsen can be re-checked.
//!
//! Jepsen writes one op map per line (`{:type :invoke, :f :write, :value 3, :process 0, :time 12, :index 0}`),
//! older versions one vector of maps, newer ones tagged records (`#jepsen.history.Op{...}`); all three are read.
//! Independent keys (`jepsen.independent`) appear as `[key value]` tuples in `:value` and become the event's
//! `key`. Only the subset of EDN that histories use is decoded into events, but the whole syntax is parsed, so
//! unusual values elsewhere in a map do no harm.

use std::io::Read;

use crate::history::{
    Event, EventKind, Function, Header, History, Key, NoteEvent, OpEvent, Operation, ParseError,
    ProcessId, Value, ERROR_MISMATCH, SCHEMA_VERSION,
};

/// The largest EDN file read: EDN is parsed in memory.
pub const EDN_BYTES_MAX: u64 = 4 << 30;

/// Nesting deeper than this is refused rather than risking the stack on hostile input.
const DEPTH_MAX: usize = 100;

/// The `format` of the header synthesised for an imported EDN history.
pub const FORMAT_EDN: &str = "jepsen-edn";

/// A parsed EDN form.
#[derive(Debug, Clone, PartialEq)]
enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// A number we do not decode further (floats, big integers, ratios), kept as text.
    OtherNumber(String),
    Str(String),
    Char(char),
    Keyword(String),
    Symbol(String),
    List(Vec<Edn>),
    Vector(Vec<Edn>),
    Set(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// EDN text of the form, for error messages and free-form fields.
    fn render(&self) -> String {
        fn seq(out: &mut String, open: &str, items: &[Edn], close: &str) {
            out.push_str(open);
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&x.render());
            }
            out.push_str(close);
        }
        let mut out = String::new();
        match self {
            Edn::Nil => out.push_str("nil"),
            Edn::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Edn::Int(i) => out.push_str(&i.to_string()),
            Edn::OtherNumber(s) | Edn::Symbol(s) => out.push_str(s),
            Edn::Str(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Edn::Char(c) => {
                out.push('\\');
                out.push(*c)
            }
            Edn::Keyword(k) => {
                out.push(':');
                out.push_str(k)
            }
            Edn::List(v) => seq(&mut out, "(", v, ")"),
            Edn::Vector(v) => seq(&mut out, "[", v, "]"),
            Edn::Set(v) => seq(&mut out, "#{", v, "}"),
            Edn::Map(kv) => {
                out.push('{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&k.render());
                    out.push(' ');
                    out.push_str(&v.render());
                }
                out.push('}');
            }
            Edn::Tagged(tag, v) => {
                out.push('#');
                out.push_str(tag);
                out.push(' ');
                out.push_str(&v.render());
            }
        }
        out
    }

    fn short(&self) -> String {
        let s = self.render();
        if s.chars().count() > 40 {
            format!("{}...", s.chars().take(40).collect::<String>())
        } else {
            s
        }
    }
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    line: u64,
}

fn is_delimiter(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
        )
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips whitespace, commas, comments and `#_` discarded forms.
    fn skip_space(&mut self, depth: usize) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_whitespace() || c == b',' => {
                    self.bump();
                }
                Some(b';') => {
                    while let Some(c) = self.bump() {
                        if c == b'\n' {
                            break;
                        }
                    }
                }
                Some(b'#') if self.src.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.parse(depth + 1)?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if is_delimiter(c) {
                break;
            }
            self.pos += 1;
        }
        // Tokens are split at ASCII delimiters, so they are valid UTF-8 whenever the input is.
        std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("")
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, String> {
        let mut items = Vec::new();
        loop {
            self.skip_space(depth)?;
            match self.peek() {
                None => {
                    return Err(format!(
                        "unexpected end of file: missing `{}`",
                        close as char
                    ))
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => items.push(self.parse(depth + 1)?),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => return Err("unexpected end of file inside a string".into()),
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    Some(b'n') => out.push(b'\n'),
                    Some(b't') => out.push(b'\t'),
                    Some(b'r') => out.push(b'\r'),
                    Some(b'"') => out.push(b'"'),
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'u') => {
                        let hex = self
                            .src
                            .get(self.pos..self.pos + 4)
                            .ok_or("truncated \\u escape")?;
                        let hex = std::str::from_utf8(hex).map_err(|_| "bad \\u escape")?;
                        let code = u32::from_str_radix(hex, 16).map_err(|_| "bad \\u escape")?;
                        let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                        self.pos += 4;
                        let mut b = [0; 4];
                        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    }
                    Some(c) => return Err(format!("unknown string escape \\{}", c as char)),
                    None => return Err("unexpected end of file inside a string".into()),
                },
                Some(c) => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "string is not valid UTF-8".into())
    }

    fn parse(&mut self, depth: usize) -> Result<Edn, String> {
        if depth > DEPTH_MAX {
            return Err(format!("forms nested deeper than {DEPTH_MAX}"));
        }
        self.skip_space(depth)?;
        let c = self.peek().ok_or("unexpected end of file")?;
        match c {
            b'(' => {
                self.bump();
                Ok(Edn::List(self.seq(b')', depth)?))
            }
            b'[' => {
                self.bump();
                Ok(Edn::Vector(self.seq(b']', depth)?))
            }
            b'{' => {
                self.bump();
                let items = self.seq(b'}', depth)?;
                if items.len() % 2 != 0 {
                    return Err("a map needs an even number of forms".into());
                }
                let mut kv = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    kv.push((k, v));
                }
                Ok(Edn::Map(kv))
            }
            b')' | b']' | b'}' => Err(format!("unexpected `{}`", c as char)),
            b'"' => {
                self.bump();
                Ok(Edn::Str(self.string()?))
            }
            b'#' => {
                self.bump();
                match self.peek() {
                    Some(b'{') => {
                        self.bump();
                        Ok(Edn::Set(self.seq(b'}', depth)?))
                    }
                    Some(c) if !is_delimiter(c) => {
                        let tag = self.token().to_owned();
                        let inner = self.parse(depth + 1)?;
                        Ok(Edn::Tagged(tag, Box::new(inner)))
                    }
                    _ => Err("unsupported `#` dispatch".into()),
                }
            }
            b'\\' => {
                self.bump();
                let start = self.pos;
                // A character literal is at least one character, even a delimiter such as `\(`.
                let first = (1..=4)
                    .filter(|len| start + len <= self.src.len())
                    .find_map(|len| std::str::from_utf8(&self.src[start..start + len]).ok())
                    .and_then(|s| s.chars().next())
                    .ok_or("bad character literal")?;
                self.pos += first.len_utf8();
                let rest = self.token();
                let name = format!("{first}{rest}");
                let ch = match name.as_str() {
                    "newline" => '\n',
                    "space" => ' ',
                    "tab" => '\t',
                    "return" => '\r',
                    s if s.chars().count() == 1 => first,
                    s => return Err(format!("unknown character literal \\{s}")),
                };
                Ok(Edn::Char(ch))
            }
            b':' => {
                self.bump();
                let name = self.token();
                if name.is_empty() {
                    return Err("empty keyword".into());
                }
                Ok(Edn::Keyword(name.to_owned()))
            }
            _ => {
                let tok = self.token();
                if tok.is_empty() {
                    // A byte that starts no token: not valid UTF-8 or a stray delimiter.
                    return Err(format!("unexpected byte 0x{c:02x}"));
                }
                Ok(atom(tok))
            }
        }
    }
}

fn atom(tok: &str) -> Edn {
    match tok {
        "nil" => return Edn::Nil,
        "true" => return Edn::Bool(true),
        "false" => return Edn::Bool(false),
        _ => {}
    }
    let b = tok.as_bytes();
    let numeric = b[0].is_ascii_digit()
        || (b.len() > 1 && matches!(b[0], b'+' | b'-') && b[1].is_ascii_digit());
    if !numeric {
        return Edn::Symbol(tok.to_owned());
    }
    let digits = tok.strip_suffix('N').unwrap_or(tok);
    match digits.parse::<i64>() {
        Ok(i) => Edn::Int(i),
        Err(_) => Edn::OtherNumber(tok.to_owned()),
    }
}

fn keyword_name(e: &Edn) -> Option<&str> {
    match e {
        Edn::Keyword(k) => Some(k),
        Edn::Str(s) | Edn::Symbol(s) => Some(s),
        _ => None,
    }
}

fn scalar(e: &Edn) -> Result<Value, String> {
    match e {
        Edn::Nil => Ok(Value::Null),
        Edn::Int(i) => Ok(Value::Int(*i)),
        Edn::Str(s) => Ok(Value::Str(s.clone())),
        Edn::Keyword(k) => Ok(Value::Str(format!(":{k}"))),
        other => Err(format!(
            "expected an integer, a string, a keyword or nil, found {}",
            other.short()
        )),
    }
}

fn key_of(e: &Edn) -> Result<Key, String> {
    match e {
        Edn::Int(i) => Ok(Key::Int(*i)),
        Edn::Str(s) => Ok(Key::Str(s.clone())),
        Edn::Keyword(k) => Ok(Key::Str(format!(":{k}"))),
        other => Err(format!(
            "expected a key (integer, string or keyword), found {}",
            other.short()
        )),
    }
}

/// Splits a `[key value]` tuple of an independent history; returns the value itself otherwise.
fn split_key(f: Function, v: &Edn) -> (Option<&Edn>, &Edn) {
    if let Edn::Vector(items) | Edn::List(items) = v {
        if items.len() == 2 {
            let keyed = match f {
                // A plain cas value is `[expected new]` of scalars; a keyed one is `[key [expected new]]`.
                Function::Cas => matches!(items[1], Edn::Vector(_) | Edn::List(_)),
                // Mutex ops carry no value worth splitting.
                Function::Acquire | Function::Release => false,
                _ => true,
            };
            if keyed {
                return (Some(&items[0]), &items[1]);
            }
        }
    }
    (None, v)
}

fn op_map(form: Edn) -> Result<Vec<(Edn, Edn)>, String> {
    match form {
        Edn::Map(kv) => Ok(kv),
        Edn::Tagged(_, inner) => match *inner {
            Edn::Map(kv) => Ok(kv),
            other => Err(format!("expected an op map, found {}", other.short())),
        },
        other => Err(format!("expected an op map, found {}", other.short())),
    }
}

type FieldResult<T> = Result<T, (&'static str, String)>;

fn event_of(kv: &[(Edn, Edn)], index_default: u64) -> FieldResult<Event> {
    let get = |name: &str| {
        kv.iter()
            .find(|(k, _)| keyword_name(k) == Some(name))
            .map(|(_, v)| v)
    };
    let index = match get("index") {
        None | Some(Edn::Nil) => index_default,
        Some(Edn::Int(i)) if *i >= 0 => *i as u64,
        Some(other) => {
            return Err((
                "index",
                format!("expected a non-negative integer, found {}", other.short()),
            ))
        }
    };
    let time_ns = match get("time") {
        None | Some(Edn::Nil) => 0,
        Some(Edn::Int(i)) if *i >= 0 => *i as u64,
        Some(other) => {
            return Err((
                "time",
                format!("expected a non-negative integer, found {}", other.short()),
            ))
        }
    };
    let kind = match get("type").and_then(keyword_name) {
        Some("invoke") => EventKind::Invoke,
        Some("ok") => EventKind::Ok,
        Some("fail") => EventKind::Fail,
        Some("info") => EventKind::Info,
        _ => {
            let found = get("type")
                .map(Edn::short)
                .unwrap_or_else(|| "nothing".into());
            return Err((
                "type",
                format!("expected :invoke, :ok, :fail or :info, found {found}"),
            ));
        }
    };
    let error = match get("error") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Keyword(k)) | Some(Edn::Str(k)) => Some(k.clone()),
        Some(other) => Some(other.render()),
    };
    let f_form = get("f").ok_or(("f", "missing".to_owned()))?;
    let value_form = get("value").unwrap_or(&Edn::Nil);
    let process = match get("process") {
        Some(Edn::Int(i)) if *i >= 0 => ProcessId(*i as u64),
        Some(Edn::Int(i)) => {
            return Err((
                "process",
                format!("expected a non-negative integer, found {i}"),
            ))
        }
        other => {
            // A non-integer process (`:nemesis`) is a note: kept, not checked.
            let process = match other {
                Some(Edn::Keyword(k)) | Some(Edn::Str(k)) | Some(Edn::Symbol(k)) => k.clone(),
                Some(other) => other.render(),
                None => return Err(("process", "missing".into())),
            };
            let f = keyword_name(f_form)
                .map(str::to_owned)
                .unwrap_or_else(|| f_form.render());
            let mut note = NoteEvent::new(
                index,
                time_ns,
                process,
                kind,
                f,
                serde_json::Value::String(value_form.render()),
            );
            note.error = error;
            return Ok(Event::Note(note));
        }
    };
    let function = keyword_name(f_form)
        .and_then(Function::parse)
        .ok_or_else(|| {
            (
                "f",
                format!(
                    "expected {}, found {}",
                    crate::history::function_names(),
                    f_form.short()
                ),
            )
        })?;
    let (key_form, value) = split_key(function, value_form);
    let key = key_form
        .map(key_of)
        .transpose()
        .map_err(|m| ("value", format!("independent key: {m}")))?;
    let completion = kind != EventKind::Invoke;
    let scalar_value = || scalar(value).map_err(|m| ("value", m));
    let op = match function {
        Function::Read => match value {
            // Jepsen read invokes sometimes carry a stale value; a read's invoke value has no meaning.
            _ if !completion => Operation::Read(Value::Null),
            Edn::Set(items) | Edn::Vector(items) | Edn::List(items) => Operation::ReadSet(
                items
                    .iter()
                    .map(scalar)
                    .collect::<Result<_, _>>()
                    .map_err(|m| ("value", m))?,
            ),
            _ => Operation::Read(scalar_value()?),
        },
        // A completion without its value (nil, or a keyword such as `:timed-out` where Jepsen's text logs put the
        // reason of an info): the values come from the invoke.
        Function::Write | Function::Cas | Function::Add | Function::Enqueue
            if completion
                && kind != EventKind::Ok
                && matches!(value, Edn::Nil | Edn::Keyword(_)) =>
        {
            Operation::NoValue(function)
        }
        Function::Write | Function::Cas | Function::Add | Function::Enqueue
            if completion && *value == Edn::Nil =>
        {
            Operation::NoValue(function)
        }
        Function::Write => Operation::Write(scalar_value()?),
        Function::Cas => match value {
            Edn::Vector(items) | Edn::List(items) if items.len() == 2 => Operation::Cas {
                expected: scalar(&items[0]).map_err(|m| ("value", m))?,
                new: scalar(&items[1]).map_err(|m| ("value", m))?,
            },
            other => {
                return Err((
                    "value",
                    format!("expected [expected new] for a cas, found {}", other.short()),
                ))
            }
        },
        Function::Add => Operation::Add(scalar_value()?),
        Function::Enqueue => Operation::Enqueue(scalar_value()?),
        Function::Dequeue if completion => Operation::Dequeue(scalar_value()?),
        Function::Dequeue => Operation::Dequeue(Value::Null),
        Function::Acquire => Operation::Acquire,
        Function::Release => Operation::Release,
    };
    let mut e = OpEvent::new(index, time_ns, process, kind, key, op);
    // Jepsen marks a cas that found another value in many ways; `:mismatch` is the one this import recognises.
    e.error = error.map(|s| {
        if s == ":mismatch" {
            ERROR_MISMATCH.to_owned()
        } else {
            s
        }
    });
    Ok(Event::Op(e))
}

/// Streams the events of an EDN history held in memory.
#[derive(Debug)]
pub struct EdnReader {
    text: Vec<u8>,
    pos: usize,
    line: u64,
    source_name: String,
    /// Inside a top-level vector or list of ops: the byte that closes it.
    in_seq: Option<u8>,
    index_next: u64,
    index_last: Option<u64>,
}

impl EdnReader {
    /// Reads the whole source (at most [`EDN_BYTES_MAX`] bytes) and prepares to stream its events.
    pub fn new<R: Read>(reader: R, source_name: &str) -> Result<EdnReader, ParseError> {
        let mut text = Vec::new();
        reader
            .take(EDN_BYTES_MAX + 1)
            .read_to_end(&mut text)
            .map_err(|e| ParseError::new(source_name, 0, None, format!("read error: {e}")))?;
        if text.len() as u64 > EDN_BYTES_MAX {
            return Err(ParseError::new(
                source_name,
                0,
                None,
                format!("larger than {EDN_BYTES_MAX} bytes"),
            ));
        }
        Ok(EdnReader {
            text,
            pos: 0,
            line: 1,
            source_name: source_name.to_owned(),
            in_seq: None,
            index_next: 0,
            index_last: None,
        })
    }

    /// The header synthesised for the import.
    pub fn header(&self) -> Header {
        Header {
            schema_version: SCHEMA_VERSION,
            format: FORMAT_EDN.to_owned(),
            meta: serde_json::Value::Null,
        }
    }

    /// The next event and the line its map starts on, or `None` at the end.
    pub fn next_event(&mut self) -> Result<Option<(u64, Event)>, ParseError> {
        let mut p = Parser {
            src: &self.text,
            pos: self.pos,
            line: self.line,
        };
        let result = Self::next_form(&mut p, &mut self.in_seq);
        self.pos = p.pos;
        self.line = p.line;
        let (line, form) = match result {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(None),
            Err(msg) => return Err(ParseError::new(&self.source_name, self.line, None, msg)),
        };
        let kv = op_map(form).map_err(|m| ParseError::new(&self.source_name, line, None, m))?;
        let event = event_of(&kv, self.index_next)
            .map_err(|(field, m)| ParseError::new(&self.source_name, line, Some(field), m))?;
        if let Some(last) = self.index_last {
            if event.index() <= last {
                return Err(ParseError::new(
                    &self.source_name,
                    line,
                    Some("index"),
                    format!(
                        "{} does not increase (previous op has {last})",
                        event.index()
                    ),
                ));
            }
        }
        self.index_last = Some(event.index());
        self.index_next = event.index() + 1;
        Ok(Some((line, event)))
    }

    fn next_form(
        p: &mut Parser<'_>,
        in_seq: &mut Option<u8>,
    ) -> Result<Option<(u64, Edn)>, String> {
        loop {
            p.skip_space(0)?;
            match (p.peek(), *in_seq) {
                (None, None) => return Ok(None),
                (None, Some(close)) => {
                    return Err(format!(
                        "unexpected end of file: missing `{}`",
                        close as char
                    ))
                }
                (Some(c), Some(close)) if c == close => {
                    p.bump();
                    *in_seq = None;
                }
                (Some(c @ (b'[' | b'(')), None) => {
                    p.bump();
                    *in_seq = Some(if c == b'[' { b']' } else { b')' });
                }
                (Some(_), _) => {
                    let line = p.line;
                    return Ok(Some((line, p.parse(1)?)));
                }
            }
        }
    }
}

/// The `format` of the header synthesised for an imported Jepsen text log.
pub const FORMAT_JEPSEN_LOG: &str = "jepsen-log";

/// Reads a Jepsen text log: one op per line, `process<TAB>type<TAB>f<TAB>value[<TAB>error]`, types and functions
/// as keywords and the value in EDN, optionally after a log prefix ending in `jepsen.util - `. That is what
/// `jepsen.util/log-op` prints (Porcupine's test histories are such logs) and the shape of the `history.txt` that
/// Jepsen and Maelstrom store next to `history.edn`. Lines that are not ops (other log lines) are skipped and
/// counted in a notice. Ops get their line order as `index` and no time.
pub fn read_jepsen_log<R: Read>(reader: R, source_name: &str) -> Result<History, ParseError> {
    let mut text = Vec::new();
    reader
        .take(EDN_BYTES_MAX + 1)
        .read_to_end(&mut text)
        .map_err(|e| ParseError::new(source_name, 0, None, format!("read error: {e}")))?;
    if text.len() as u64 > EDN_BYTES_MAX {
        return Err(ParseError::new(
            source_name,
            0,
            None,
            format!("larger than {EDN_BYTES_MAX} bytes"),
        ));
    }
    let text = String::from_utf8_lossy(&text);
    let mut events = Vec::new();
    let mut lines = Vec::new();
    let mut skipped = 0u64;
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let body = match raw.find("jepsen.util - ") {
            Some(at) => &raw[at + "jepsen.util - ".len()..],
            None => raw,
        };
        let fields: Vec<&str> = if body.contains('\t') {
            body.split('\t').map(str::trim).collect()
        } else {
            // Separated by spaces: process, type and f are single tokens, the value is the rest.
            let mut it = body.trim().splitn(4, char::is_whitespace);
            it.by_ref().take(4).collect()
        };
        let is_op = fields.len() >= 3
            && matches!(
                fields[1],
                ":invoke" | ":ok" | ":fail" | ":info" | "invoke" | "ok" | "fail" | "info"
            );
        if !is_op {
            if !raw.trim().is_empty() {
                skipped += 1;
            }
            continue;
        }
        let parse = |src: &str| -> Result<Edn, ParseError> {
            if src.is_empty() {
                return Ok(Edn::Nil);
            }
            let mut p = Parser {
                src: src.as_bytes(),
                pos: 0,
                line,
            };
            p.parse(1)
                .map_err(|m| ParseError::new(source_name, line, None, m))
        };
        let keyword = |s: &str| Edn::Keyword(s.trim_start_matches(':').to_owned());
        let mut kv = vec![
            (keyword("process"), parse(fields[0])?),
            (keyword("type"), keyword(fields[1])),
            (keyword("f"), keyword(fields[2])),
            (
                keyword("value"),
                parse(fields.get(3).copied().unwrap_or(""))?,
            ),
            (keyword("index"), Edn::Int(events.len() as i64)),
        ];
        if let Some(error) = fields.get(4).filter(|e| !e.is_empty()) {
            kv.push((keyword("error"), parse(error)?));
        }
        let event = event_of(&kv, events.len() as u64)
            .map_err(|(field, m)| ParseError::new(source_name, line, Some(field), m))?;
        events.push(event);
        lines.push(line);
    }
    let mut notices = Vec::new();
    if skipped > 0 {
        notices.push(format!(
            "{source_name}: {skipped} line(s) that are not ops (process, type, f, value) were skipped"
        ));
    }
    Ok(History {
        header: Header {
            schema_version: SCHEMA_VERSION,
            format: FORMAT_JEPSEN_LOG.to_owned(),
            meta: serde_json::Value::Null,
        },
        events,
        lines,
        source_name: source_name.to_owned(),
        notices,
    })
}

impl History {
    /// Reads a whole Jepsen `history.edn`.
    pub fn read_edn<R: Read>(reader: R, source_name: &str) -> Result<History, ParseError> {
        let mut r = EdnReader::new(reader, source_name)?;
        let mut events = Vec::new();
        let mut lines = Vec::new();
        while let Some((line, event)) = r.next_event()? {
            events.push(event);
            lines.push(line);
        }
        Ok(History {
            header: r.header(),
            events,
            lines,
            source_name: source_name.to_owned(),
            notices: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<History, ParseError> {
        History::read_edn(text.as_bytes(), "history.edn")
    }

    fn op(e: &Event) -> &OpEvent {
        match e {
            Event::Op(o) => o,
            Event::Note(n) => panic!("expected a client op, found {n:?}"),
        }
    }

    #[test]
    fn reads_one_map_per_line() {
        let h = read(
            "{:type :invoke, :f :write, :value 3, :process 0, :time 10, :index 0}\n\
             {:type :ok, :f :write, :value 3, :process 0, :time 20, :index 1}\n\
             {:type :info, :f :start, :value nil, :process :nemesis, :time 25, :index 2}\n\
             {:type :invoke, :f :cas, :value [3 4], :process 1, :time 30, :index 3}\n\
             {:type :fail, :f :cas, :value [3 4], :process 1, :time 40, :index 4, :error :mismatch}\n",
        )
        .unwrap();
        assert_eq!(h.events.len(), 5);
        assert_eq!(h.lines, vec![1, 2, 3, 4, 5]);
        assert_eq!(op(&h.events[0]).op, Operation::Write(Value::Int(3)));
        assert!(matches!(h.events[2], Event::Note(_)));
        assert_eq!(
            op(&h.events[3]).op,
            Operation::Cas {
                expected: Value::Int(3),
                new: Value::Int(4)
            }
        );
        assert_eq!(op(&h.events[3]).key, None);
        assert!(op(&h.events[4]).is_mismatch());
    }

    #[test]
    fn reads_independent_keys_and_vectors_and_records() {
        let h = read(
            "[{:process 0, :type :invoke, :f :read, :value [7 nil]}\n\
             #jepsen.history.Op{:index 5, :process 0, :type :ok, :f :read, :value [7 2]}\n\
             {:process 1, :type :invoke, :f :cas, :value [\"k\" [1 2]]} ; comment\n\
             #_{:ignored true}\n\
             {:process 2, :type :invoke, :f :write, :value [:a \"x\"], :extra #{1 2} :z \\c}]\n",
        )
        .unwrap();
        assert_eq!(h.lines, vec![1, 2, 3, 5]);
        assert_eq!(op(&h.events[0]).key, Some(Key::Int(7)));
        assert_eq!(op(&h.events[1]).op, Operation::Read(Value::Int(2)));
        assert_eq!(op(&h.events[1]).index, 5);
        assert_eq!(op(&h.events[2]).index, 6);
        assert_eq!(op(&h.events[2]).key, Some(Key::Str("k".into())));
        assert_eq!(op(&h.events[3]).key, Some(Key::Str(":a".into())));
        assert_eq!(
            op(&h.events[3]).op,
            Operation::Write(Value::Str("x".into()))
        );
    }

    #[test]
    fn reads_jepsen_text_logs() {
        let log = "INFO  jepsen.util - 4\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 4\t:ok\t:read\tnil\n\
                   INFO  jepsen.core - Worker 3 starting\n\
                   INFO  jepsen.util - 2\t:invoke\t:cas\t[2 4]\n\
                   INFO  jepsen.util - 2\t:info\t:cas\t:timed-out\n\
                   3 :invoke :write 7\n\
                   3\t:fail\t:write\t7\t:no-leader\n";
        let h = read_jepsen_log(log.as_bytes(), "etcd.log").unwrap();
        assert_eq!(h.events.len(), 6);
        assert_eq!(h.lines, vec![1, 2, 4, 5, 6, 7]);
        assert_eq!(op(&h.events[3]).op, Operation::NoValue(Function::Cas));
        assert_eq!(op(&h.events[4]).op, Operation::Write(Value::Int(7)));
        assert_eq!(op(&h.events[5]).error.as_deref(), Some("no-leader"));
        assert_eq!(h.notices.len(), 1, "{:?}", h.notices);
        let err = read_jepsen_log("1\t:invoke\t:cas\t3\n".as_bytes(), "x.log").unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (1, Some("value")));
    }

    #[test]
    fn errors_name_line_and_field() {
        let err =
            read("{:process 0, :type :invoke, :f :read}\n{:process 0, :type :okay, :f :read}\n")
                .unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (2, Some("type")));
        assert!(
            err.to_string().starts_with("history.edn:2: field `type`"),
            "{err}"
        );
        let err = read("{:process 0, :type :invoke, :f :write, :value 1.5}").unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (1, Some("value")));
        let err = read("{:process 0, :type :invoke, :f :write, :value 1\n\n").unwrap_err();
        assert!(err.message.contains("end of file"), "{err}");
        let err = read("{:process 0 :type}").unwrap_err();
        assert!(err.message.contains("even number"), "{err}");
        let err = read(&"[".repeat(1000)).unwrap_err();
        assert!(err.message.contains("nested"), "{err}");
    }
}
