//! The fast path for reading JSON Lines histories: blocks of the file are split at line boundaries and scanned in
//! parallel, while the previous block is being prepared (pairing and interning stay sequential, in file order).
//!
//! The scanner reads the common shape of an event line (a flat object of integers and plain strings, a `value` of
//! a scalar or a pair) without allocating: strings are kept as byte ranges of the block. Anything else (notes,
//! escapes, nested values, the functions of the set, mutex and queue models, and every malformed line) falls back
//! to [`Event::from_json_line`], the one decoder whose errors name the field, so both paths accept exactly the same
//! lines and report exactly the same errors.

use std::io::Read;

use rayon::prelude::*;

use crate::history::{
    Event, EventKind, Function, JsonlReader, ParseError, ERROR_MISMATCH, LINE_BYTES_MAX,
};
use crate::prepare::{ArgsRef, OpView, Preparer, ScalarRef};

/// Bytes read per block. Two blocks and their scanned events are in memory at a time.
const BLOCK_BYTES: usize = 4 << 20;

/// A block is scanned in pieces of about this size, one task each.
const PIECE_BYTES: usize = 256 << 10;

/// A scalar of a scanned line; strings are byte ranges of the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Raw {
    Absent,
    Null,
    Int(i64),
    Str(u32, u32),
}

/// The `value` of a scanned line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawValue {
    Absent,
    One(Raw),
    Pair(Raw, Raw),
}

/// A client event scanned on the fast path.
#[derive(Debug, Clone, Copy)]
struct Scanned {
    index: u64,
    time_ns: u64,
    process: u64,
    kind: EventKind,
    function: Function,
    key: Raw,
    value: RawValue,
    mismatch: bool,
}

#[derive(Debug)]
enum Item {
    Fast(Scanned),
    Slow(Box<Event>),
}

/// The events of one piece of a block, with their line numbers counted from the piece's start.
#[derive(Debug, Default)]
struct Piece {
    items: Vec<(u32, Item)>,
    /// Lines in the piece.
    lines: u32,
    /// The first malformed line, if any: events after it are not scanned.
    error: Option<(u32, Option<&'static str>, String)>,
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    /// A string without escapes: its content's range.
    #[inline]
    fn plain_str(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        let end = self.i;
        self.i += 1;
        Some((start, end))
    }

    /// Digits of a JSON integer (no sign); `None` for anything that is not a plain integer of at most 19 digits
    /// (19 digits always fit in a `u64`; longer ones go to the slow path, which says what is wrong or reads them).
    #[inline]
    fn digits(&mut self) -> Option<u64> {
        let start = self.i;
        let mut i = start;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 19 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        self.i = i;
        // A fraction or an exponent makes it a float: the slow path says what is wrong.
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        Some(v)
    }

    #[inline]
    fn u64(&mut self) -> Option<u64> {
        self.digits()
    }

    #[inline]
    fn i64(&mut self) -> Option<i64> {
        if self.eat(b'-').is_some() {
            let m = self.digits()?;
            // `-0` is a float to serde_json; past i64::MIN is out of range.
            if m == 0 || m > 1u64 << 63 {
                return None;
            }
            Some((m as i64).wrapping_neg())
        } else {
            i64::try_from(self.digits()?).ok()
        }
    }

    /// `null`, an integer or a plain string.
    #[inline]
    fn scalar(&mut self, base: usize) -> Option<Raw> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| Raw::Null),
            b'"' => {
                let (s, e) = self.plain_str()?;
                Some(Raw::Str((base + s) as u32, (e - s) as u32))
            }
            _ => self.i64().map(Raw::Int),
        }
    }

    /// A JSON number, checked against the grammar, skipped.
    fn skip_number(&mut self) -> Option<()> {
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            let s = self.i;
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            if self.i == s {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            let s = self.i;
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            if self.i == s {
                return None;
            }
        }
        Some(())
    }

    /// The value of a field the checker ignores: a scalar is skipped, anything nested goes to the slow path.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.plain_str().map(|_| ()),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            _ => self.skip_number(),
        }
    }
}

/// Scans one line (without its newline); `base` is the line's offset in the block. `None`: use the slow path.
fn scan(line: &[u8], base: usize) -> Option<Scanned> {
    let mut c = Cursor { b: line, i: 0 };
    let (mut index, mut time_ns, mut process) = (None, None, None);
    let (mut kind, mut function) = (None, None);
    let mut key = Raw::Absent;
    let mut value = RawValue::Absent;
    let mut error: Option<(usize, usize)> = None;
    let mut seen = 0u8;
    c.ws();
    c.eat(b'{')?;
    loop {
        c.ws();
        let (ks, ke) = c.plain_str()?;
        c.ws();
        c.eat(b':')?;
        c.ws();
        let bit = match &line[ks..ke] {
            b"index" => {
                index = Some(c.u64()?);
                1
            }
            b"time" => {
                time_ns = Some(c.u64()?);
                2
            }
            // A process that is not a number makes a note: the slow path.
            b"process" => {
                process = Some(c.u64()?);
                4
            }
            b"type" => {
                let (s, e) = c.plain_str()?;
                kind = Some(match &line[s..e] {
                    b"invoke" => EventKind::Invoke,
                    b"ok" => EventKind::Ok,
                    b"fail" => EventKind::Fail,
                    b"info" => EventKind::Info,
                    _ => return None,
                });
                8
            }
            b"f" => {
                let (s, e) = c.plain_str()?;
                function = Some(match &line[s..e] {
                    b"read" => Function::Read,
                    b"write" => Function::Write,
                    b"cas" => Function::Cas,
                    _ => return None,
                });
                16
            }
            b"key" => {
                key = c.scalar(base)?;
                32
            }
            b"value" => {
                value = if c.peek()? == b'[' {
                    c.i += 1;
                    c.ws();
                    let a = c.scalar(base)?;
                    c.ws();
                    c.eat(b',')?;
                    c.ws();
                    let b = c.scalar(base)?;
                    c.ws();
                    c.eat(b']')?;
                    RawValue::Pair(a, b)
                } else {
                    RawValue::One(c.scalar(base)?)
                };
                64
            }
            b"error" => {
                if c.peek()? == b'n' {
                    c.literal(b"null")?;
                } else {
                    error = Some(c.plain_str()?);
                }
                128
            }
            _ => {
                c.skip_value()?;
                0
            }
        };
        if seen & bit != 0 {
            // A duplicate field: serde refuses it, with its name.
            return None;
        }
        seen |= bit;
        c.ws();
        match c.peek()? {
            b',' => c.i += 1,
            b'}' => {
                c.i += 1;
                break;
            }
            _ => return None,
        }
    }
    c.ws();
    if c.i != line.len() {
        return None;
    }
    let kind = kind?;
    let function = function?;
    let invoke = kind == EventKind::Invoke;
    // The value rules of `HISTORY-FORMAT.md`; whatever breaks one is reported by the slow path.
    let value = match (function, value) {
        (Function::Read, RawValue::Absent | RawValue::One(Raw::Null)) => value,
        (Function::Read, RawValue::One(_)) if !invoke => value,
        (Function::Write, RawValue::Absent | RawValue::One(_)) => value,
        (Function::Cas, RawValue::Pair(..)) => value,
        (Function::Cas, RawValue::Absent | RawValue::One(Raw::Null)) if !invoke => RawValue::Absent,
        _ => return None,
    };
    let mismatch = kind == EventKind::Fail
        && function == Function::Cas
        && error.is_some_and(|(s, e)| &line[s..e] == ERROR_MISMATCH.as_bytes());
    Some(Scanned {
        index: index?,
        time_ns: time_ns?,
        process: process?,
        kind,
        function,
        key: if key == Raw::Absent { Raw::Null } else { key },
        value,
        mismatch,
    })
}

/// Scans the lines of `text`, which starts at offset `base` of the block.
fn scan_piece(block: &[u8], range: std::ops::Range<usize>) -> Piece {
    let mut piece = Piece::default();
    // One check of the whole piece is much cheaper than one per line; only a piece that fails it is checked line
    // by line, to name the line.
    let utf8 = std::str::from_utf8(&block[range.clone()]).is_ok();
    let mut pos = range.start;
    while pos < range.end {
        let nl = memchr::memchr(b'\n', &block[pos..range.end]).map_or(range.end, |i| pos + i);
        let mut line = &block[pos..nl];
        let start = pos;
        pos = nl + 1;
        piece.lines += 1;
        let n = piece.lines;
        if line.len() > LINE_BYTES_MAX {
            piece.error = Some((n, None, format!("line longer than {LINE_BYTES_MAX} bytes")));
            return piece;
        }
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if utf8 {
            if let Some(s) = scan(line, start) {
                piece.items.push((n, Item::Fast(s)));
                continue;
            }
        }
        let Ok(text) = std::str::from_utf8(line) else {
            piece.error = Some((n, None, "not valid UTF-8".to_owned()));
            return piece;
        };
        match Event::from_json_line(text) {
            Ok(e) => piece.items.push((n, Item::Slow(Box::new(e)))),
            Err(e) => {
                let field = (e.field != "(line)").then_some(e.field);
                piece.error = Some((n, field, e.message));
                return piece;
            }
        }
    }
    piece
}

/// Splits a block (whole lines) into pieces at line boundaries and scans them in parallel.
fn scan_block(block: &[u8], piece_bytes: usize) -> Vec<Piece> {
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < block.len() {
        let mut end = (start + piece_bytes).min(block.len());
        if end < block.len() {
            end = memchr::memchr(b'\n', &block[end..]).map_or(block.len(), |i| end + i + 1);
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
        .into_par_iter()
        .map(|r| scan_piece(block, r))
        .collect()
}

fn text_of<'a>(block: &'a [u8], raw: Raw) -> ScalarRef<'a> {
    match raw {
        Raw::Absent | Raw::Null => ScalarRef::Null,
        Raw::Int(i) => ScalarRef::Int(i),
        Raw::Str(s, n) => ScalarRef::Str(
            std::str::from_utf8(&block[s as usize..(s + n) as usize])
                .expect("the line was checked to be UTF-8 and quotes are ASCII"),
        ),
    }
}

/// Where the sequential side is: the line before the block, and the last index seen.
struct Position {
    line: u64,
    index_last: Option<u64>,
}

/// Feeds the scanned pieces of a block to the preparation, in file order.
fn push_block(
    block: &[u8],
    pieces: &[Piece],
    p: &mut Preparer,
    at: &mut Position,
    source_name: &str,
) -> Result<(), ParseError> {
    for piece in pieces {
        for (n, item) in &piece.items {
            let line = at.line + u64::from(*n);
            let index = match item {
                Item::Fast(s) => s.index,
                Item::Slow(e) => e.index(),
            };
            if let Some(last) = at.index_last {
                if index <= last {
                    return Err(ParseError::new(
                        source_name,
                        line,
                        Some("index"),
                        format!("{index} does not increase (previous line has {last})"),
                    ));
                }
            }
            at.index_last = Some(index);
            match item {
                Item::Slow(e) => p.push(line, e)?,
                Item::Fast(s) => {
                    let args = match s.value {
                        RawValue::Absent => ArgsRef::None,
                        RawValue::One(v) => ArgsRef::One(text_of(block, v)),
                        RawValue::Pair(a, b) => ArgsRef::Pair(text_of(block, a), text_of(block, b)),
                    };
                    // A read or write without `value` reads as null, as in the slow path.
                    let args = match (args, s.function) {
                        (ArgsRef::None, Function::Read) => ArgsRef::One(ScalarRef::Null),
                        (ArgsRef::None, Function::Write) if s.kind == EventKind::Invoke => {
                            ArgsRef::One(ScalarRef::Null)
                        }
                        (args, _) => args,
                    };
                    p.push_op(
                        line,
                        &OpView {
                            index: s.index,
                            time_ns: s.time_ns,
                            process: s.process,
                            kind: s.kind,
                            function: s.function,
                            key: text_of(block, s.key),
                            args,
                            mismatch: s.mismatch,
                        },
                    )?;
                }
            }
        }
        if let Some((n, field, message)) = &piece.error {
            return Err(ParseError::new(
                source_name,
                at.line + u64::from(*n),
                *field,
                message.clone(),
            ));
        }
        at.line += u64::from(piece.lines);
    }
    Ok(())
}

/// Reads up to a block of whole lines: `carry` (the unfinished line of the previous block) and what follows.
/// Returns the block and the new carry; an empty block means the end of the input.
fn read_block<R: Read>(
    reader: &mut R,
    mut buf: Vec<u8>,
    carry: &[u8],
    sizes: Sizes,
    source_name: &str,
    line: u64,
) -> Result<(Vec<u8>, Vec<u8>), ParseError> {
    buf.clear();
    buf.extend_from_slice(carry);
    let mut filled = buf.len();
    buf.resize(sizes.block.max(filled + (64 << 10)), 0);
    let mut eof = false;
    while filled < sizes.block {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(ParseError::new(
                    source_name,
                    line + 1,
                    None,
                    format!("read error: {e}"),
                ))
            }
        }
    }
    buf.truncate(filled);
    if eof {
        return Ok((buf, Vec::new()));
    }
    match buf.iter().rposition(|&c| c == b'\n') {
        Some(i) => {
            let carry = buf[i + 1..].to_vec();
            buf.truncate(i + 1);
            Ok((buf, carry))
        }
        // A whole block without a line end: the line is too long, which the scan reports with its number.
        None => Ok((buf, Vec::new())),
    }
}

/// Reads the events of a JSON Lines history after its header (already read by `header`) into `p`, scanning
/// blocks in parallel while the previous block is prepared.
pub(crate) fn read_events<R: std::io::BufRead>(
    header: JsonlReader<R>,
    source_name: &str,
    p: &mut Preparer,
) -> Result<(), ParseError> {
    let sizes = Sizes {
        block: BLOCK_BYTES,
        piece: PIECE_BYTES,
    };
    read_events_sized(header, source_name, p, sizes)
}

/// Block and piece sizes: constants, except in tests that make many small blocks.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Must exceed [`LINE_BYTES_MAX`], so that a block without a line end holds a line that is too long.
    block: usize,
    piece: usize,
}

fn read_events_sized<R: std::io::BufRead>(
    header: JsonlReader<R>,
    source_name: &str,
    p: &mut Preparer,
    sizes: Sizes,
) -> Result<(), ParseError> {
    let (mut reader, line, first) = header.into_rest();
    let mut carry = Vec::new();
    if let Some(first) = first {
        carry.extend_from_slice(&first);
        carry.push(b'\n');
    }
    let mut at = Position {
        line,
        index_last: None,
    };
    // Line numbers of blocks only grow by whole lines, so the next block starts where the pushed ones end; the
    // read side counts its own lines only for read errors, which name the line after the last complete one.
    let mut read_line = line;
    let mut pending: Option<(Vec<u8>, Vec<Piece>)> = None;
    // The buffer of the block pushed last, reused for the next read.
    let mut spare: Vec<u8> = Vec::new();
    loop {
        let (block, next_carry) = read_block(
            &mut reader,
            std::mem::take(&mut spare),
            &carry,
            sizes,
            source_name,
            read_line,
        )?;
        carry = next_carry;
        read_line += memchr::memchr_iter(b'\n', &block).count() as u64;
        let last = block.is_empty();
        let (scanned, pushed) = rayon::join(
            || {
                (!block.is_empty()).then(|| {
                    let pieces = scan_block(&block, sizes.piece);
                    (block, pieces)
                })
            },
            || match pending.take() {
                Some((b, pieces)) => push_block(&b, &pieces, p, &mut at, source_name).map(|()| b),
                None => Ok(Vec::new()),
            },
        );
        spare = pushed?;
        pending = scanned;
        if last {
            break;
        }
    }
    if let Some((b, pieces)) = pending {
        push_block(&b, &pieces, p, &mut at, source_name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{generate, GenerateOptions};
    use crate::history::{Header, History};
    use crate::model::ModelKind;

    /// The prepared history as the report sees it, for comparing readers.
    fn prepare_with(text: &[u8], sizes: Option<Sizes>) -> Result<String, ParseError> {
        let r = JsonlReader::new(text, "t.jsonl")?;
        let mut p = Preparer::new("t.jsonl", ModelKind::CasRegister);
        match sizes {
            Some(sizes) => read_events_sized(r, "t.jsonl", &mut p, sizes)?,
            None => {
                let mut r = r;
                while let Some((line, e)) = r.next_event()? {
                    p.push(line, &e)?;
                }
            }
        }
        let prepared = p.finish();
        let ops: Vec<String> = prepared
            .ops
            .iter()
            .map(|o| {
                format!(
                    "{:?} {:?} {} {} {:?} {:?} {}",
                    o.spec,
                    o.outcome,
                    o.process,
                    o.call_index,
                    o.ret_index(),
                    o.ret_line(),
                    o.call_line
                )
            })
            .collect();
        let keys: Vec<String> = prepared
            .keys
            .iter()
            .map(|k| format!("{:?} {:?}", k.key, k.ops))
            .collect();
        Ok(format!(
            "{ops:?}\n{keys:?}\n{:?}\n{:?}",
            prepared.stats, prepared.notices
        ))
    }

    #[test]
    fn small_blocks_and_pieces_read_like_the_line_reader() {
        let opts = GenerateOptions::new(400, 5, 7, 3).with_info_per_mille(50);
        let h = History::new(Header::default(), generate(&opts), "t");
        let mut text = h.write_jsonl(Vec::new()).unwrap();
        // Odd but valid lines on the slow path, blank lines and CRLF line ends.
        text.extend_from_slice(b"\r\n  \n{\"index\":999999,\"time\":1,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"heal\"}\r\n");
        let expected = prepare_with(&text, None).unwrap();
        for (block, piece) in [(4 << 20, 256 << 10), (300, 1), (1000, 150), (257, 4000)] {
            let got = prepare_with(&text, Some(Sizes { block, piece })).unwrap();
            assert_eq!(got, expected, "block {block}, piece {piece}");
        }
        // A malformed line far into the file: the same error, the same line.
        let mut bad = text.clone();
        let at = bad.len() / 2;
        let nl = at + bad[at..].iter().position(|&c| c == b'\n').unwrap();
        bad.splice(nl..nl, b"\n{\"index\":5}".iter().copied());
        let expected = prepare_with(&bad, None).unwrap_err();
        let got = prepare_with(
            &bad,
            Some(Sizes {
                block: 300,
                piece: 100,
            }),
        )
        .unwrap_err();
        assert_eq!(got, expected);
    }

    fn fast(line: &str) -> Option<Scanned> {
        scan(line.as_bytes(), 0)
    }

    #[test]
    fn scans_the_common_shapes() {
        let line = r#"{"index":3,"time":17,"process":2,"type":"invoke","f":"cas","key":"k1","value":[1,-2]}"#;
        let s = fast(line).unwrap();
        assert_eq!((s.index, s.time_ns, s.process), (3, 17, 2));
        assert_eq!(s.key, Raw::Str(line.find("k1").unwrap() as u32, 2));
        assert_eq!(s.value, RawValue::Pair(Raw::Int(1), Raw::Int(-2)));
        let s = fast(r#" { "f" : "cas" , "type":"fail","error":"mismatch","process":0,"time":1,"index":9,"extra":1.5e3} "#)
            .unwrap();
        assert!(s.mismatch);
        assert_eq!(s.value, RawValue::Absent);
        let s = fast(
            r#"{"index":0,"time":1,"process":1,"type":"ok","f":"read","value":null,"key":null}"#,
        )
        .unwrap();
        assert_eq!((s.key, s.value), (Raw::Null, RawValue::One(Raw::Null)));
    }

    #[test]
    fn leaves_everything_unusual_to_the_slow_path() {
        for line in [
            r#"{"index":0,"time":1,"process":"nemesis","type":"info","f":"kill"}"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":"a\"b"}"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":1.0}"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":-0}"#,
            r#"{"index":01,"time":1,"process":1,"type":"invoke","f":"read"}"#,
            r#"{"index":0,"index":1,"time":1,"process":1,"type":"invoke","f":"read"}"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read","value":1}"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"cas"}"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"add","value":1}"#,
            r#"{"index":0,"time":1,"process":1,"type":"ok","f":"read","value":[1,2]}"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read","meta":{}}"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read"} x"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read","x":1.}"#,
            r#"{"index":99999999999999999999,"time":1,"process":1,"type":"invoke","f":"read"}"#,
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":9223372036854775808}"#,
        ] {
            assert!(fast(line).is_none(), "{line}");
        }
        let min = fast(r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":-9223372036854775808}"#).unwrap();
        assert_eq!(min.value, RawValue::One(Raw::Int(i64::MIN)));
    }
}
