//! Fuzzing by property test: no input makes the parsers or the checker panic. Inputs are random bytes, random
//! JSON-ish and EDN-ish text, and valid histories mutated line by line (lines dropped, repeated, swapped, fields
//! replaced), which get past the parser and exercise pairing, search and counterexamples on odd histories.
//!
//! Set CHECKER_FUZZ_CASES for a longer run.

use checker::generate::{generate, GenerateOptions};
use checker::history::{Header, History, JsonlReader};
use checker::{check_edn, check_history, check_jsonl, render_html, CheckOptions, ModelKind};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("CHECKER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn options() -> CheckOptions {
    // A small budget: fuzzed histories may be hard, and this test is about panics, not verdicts.
    CheckOptions::new(ModelKind::CasRegister).with_budget(checker::Budget::new(
        200_000,
        64 << 20,
        None,
    ))
}

/// The reference for the parallel reader: the line-by-line reader, each event prepared as it is read (so that the
/// first error in file order wins, as it must for the streaming reader too).
fn check_line_by_line(text: &[u8]) -> Result<serde_json::Value, String> {
    let mut reader = JsonlReader::new(text, "fuzz.jsonl").map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    let mut lines = Vec::new();
    let mut parse_error = None;
    loop {
        match reader.next_event() {
            Ok(Some((line, e))) => {
                events.push(e);
                lines.push(line);
            }
            Ok(None) => break,
            Err(e) => {
                parse_error = Some(e.to_string());
                break;
            }
        }
    }
    let mut h = History::new(reader.header().clone(), events, "fuzz.jsonl");
    h.lines = lines;
    h.notices = reader.notices().to_vec();
    let report = check_history(&h, &options()).map_err(|e| e.to_string())?;
    match parse_error {
        Some(e) => Err(e),
        None => Ok(serde_json::to_value(&report).expect("a report serialises")),
    }
}

/// Checks a JSON Lines text; every outcome but a panic is fine, but the fast parallel reader must agree exactly with
/// the line-by-line reader. Reports are rendered too.
fn run_jsonl(text: &[u8]) {
    let fast = check_jsonl(text, "fuzz.jsonl", &options())
        .map(|r| serde_json::to_value(&r).expect("a report serialises"))
        .map_err(|e| e.to_string());
    assert_eq!(
        fast,
        check_line_by_line(text),
        "{}",
        String::from_utf8_lossy(text)
    );
    if let Ok(report) = check_jsonl(text, "fuzz.jsonl", &options()) {
        let _ = render_html(&report);
        for c in report.counterexamples() {
            let _ = c.to_text();
        }
    }
    let _ = History::read_jsonl(text, "fuzz.jsonl");
    let _ = check_jsonl(
        text,
        "fuzz.jsonl",
        &CheckOptions::new(ModelKind::Register).with_budget(options().budget),
    );
}

fn run_edn(text: &[u8]) {
    if let Ok(report) = check_edn(text, "fuzz.edn", &options()) {
        let _ = render_html(&report);
    }
    let _ = History::read_edn(text, "fuzz.edn");
    if let Ok(h) = checker::edn::read_jepsen_log(text, "fuzz.log") {
        let _ = check_history(&h, &options());
    }
}

fn valid_history(seed: u64, ops: u64, keys: u32) -> Vec<String> {
    let opts = GenerateOptions::new(ops, 4, keys, seed).with_info_per_mille(80);
    let h = History::new(Header::default(), generate(&opts), "fuzz");
    let bytes = h.write_jsonl(Vec::new()).expect("in-memory write");
    String::from_utf8(bytes)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

const FIELDS: &[&str] = &[
    "index",
    "time",
    "process",
    "type",
    "f",
    "key",
    "value",
    "error",
    "schema_version",
];
const JUNK: &[&str] = &[
    "null",
    "-1",
    "0",
    "18446744073709551616",
    "1.5",
    "\"\"",
    "\"nemesis\"",
    "\"invoke\"",
    "\"ok\"",
    "\"fail\"",
    "\"info\"",
    "\"read\"",
    "\"write\"",
    "\"cas\"",
    "\"mismatch\"",
    "[1,2]",
    "[null,3]",
    "[1]",
    "[[1],2]",
    "{}",
    "true",
];

#[derive(Debug, Clone)]
enum Mutation {
    Drop(usize),
    Repeat(usize),
    Swap(usize, usize),
    Truncate(usize, usize),
    Replace(usize, usize, usize),
}

fn apply(lines: &mut Vec<String>, m: &Mutation) {
    if lines.is_empty() {
        return;
    }
    let n = lines.len();
    match *m {
        Mutation::Drop(i) => {
            lines.remove(i % n);
        }
        Mutation::Repeat(i) => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
        }
        Mutation::Swap(i, j) => lines.swap(i % n, j % n),
        Mutation::Truncate(i, at) => {
            let l = &mut lines[i % n];
            let mut cut = at % (l.len() + 1);
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            l.truncate(cut);
        }
        Mutation::Replace(i, field, junk) => {
            let field = FIELDS[field % FIELDS.len()];
            let junk = JUNK[junk % JUNK.len()];
            let line = &lines[i % n];
            if let Ok(serde_json::Value::Object(mut obj)) =
                serde_json::from_str::<serde_json::Value>(line)
            {
                obj.insert(
                    field.to_owned(),
                    serde_json::from_str(junk).expect("junk is JSON"),
                );
                lines[i % n] = serde_json::Value::Object(obj).to_string();
            }
        }
    }
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Drop),
        any::<usize>().prop_map(Mutation::Repeat),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Truncate(a, b)),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(a, b, c)| Mutation::Replace(a, b, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut with_header = b"{\"schema_version\":1}\n".to_vec();
        with_header.extend_from_slice(&bytes);
        run_jsonl(&bytes);
        run_jsonl(&with_header);
        run_edn(&bytes);
    }

    #[test]
    fn json_like_lines_do_not_panic(lines in proptest::collection::vec(
        "\\{(\"(index|time|process|type|f|key|value|error)\":(-?[0-9]{1,3}|\"(invoke|ok|fail|info|read|write|cas|mismatch|x)\"|null|\\[[0-9,]{0,5}\\]|\\{\\}),?){0,8}\\}",
        0..12,
    )) {
        let text = format!("{{\"schema_version\":1}}\n{}\n", lines.join("\n"));
        run_jsonl(text.as_bytes());
    }

    #[test]
    fn edn_like_text_does_not_panic(text in "[\\[\\]{}()#_:;,\\\\ \"a-z0-9.\\-\n]{0,200}") {
        run_edn(text.as_bytes());
    }

    #[test]
    fn mutated_histories_do_not_panic(
        seed in any::<u64>(),
        ops in 1u64..60,
        keys in 0u32..3,
        mutations in proptest::collection::vec(arb_mutation(), 1..6),
    ) {
        let mut lines = valid_history(seed, ops, keys);
        for m in &mutations {
            apply(&mut lines, m);
        }
        let text = lines.join("\n");
        run_jsonl(text.as_bytes());
    }

    #[test]
    fn mutated_edn_does_not_panic(
        seed in any::<u64>(),
        ops in 1u64..40,
        mutations in proptest::collection::vec((any::<usize>(), any::<usize>(), 0usize..4), 1..6),
    ) {
        // An EDN rendering of a generated history, then cut, doubled or spliced at random places.
        let lines = valid_history(seed, ops, 2);
        let mut edn = String::new();
        for l in lines.iter().skip(1) {
            let v: serde_json::Value = serde_json::from_str(l).expect("generated lines are JSON");
            let key = v.get("key").cloned().unwrap_or(serde_json::Value::Null);
            let value = v.get("value").map(|x| x.to_string().replace(',', " ")).unwrap_or_else(|| "nil".into());
            edn.push_str(&format!(
                "{{:index {}, :time {}, :process {}, :type :{}, :f :{}, :value [{} {}]}}\n",
                v["index"], v["time"], v["process"], v["type"].as_str().unwrap_or("ok"),
                v["f"].as_str().unwrap_or("read"), key, value.replace("null", "nil"),
            ));
        }
        let mut bytes = edn.into_bytes();
        for (at, len, kind) in mutations {
            if bytes.is_empty() {
                break;
            }
            let at = at % bytes.len();
            match kind {
                0 => bytes.truncate(at),
                1 => {
                    let end = (at + len % 50).min(bytes.len());
                    let chunk = bytes[at..end].to_vec();
                    bytes.splice(at..at, chunk);
                }
                2 => {
                    let end = (at + len % 20).min(bytes.len());
                    bytes.drain(at..end);
                }
                _ => bytes[at] = b"[]{}#:\\\" "[len % 9],
            }
        }
        run_edn(&bytes);
    }
}
