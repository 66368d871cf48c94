//! The golden set: hand-written histories whose verdicts are known, named `NAME.VERDICT.jsonl` (or `.edn`).
//! Files at the top are checked against the cas-register model; those in a folder named after a model (`set/`,
//! `mutex/`, ...) against that model. Each not-linearizable one also pins the op that could not be placed, the size
//! of the smallest window and of the shrunk counterexample.

use std::path::{Path, PathBuf};

use checker::{check_file, render_html, CheckOptions, ModelKind, Verdict};

/// For each not-linearizable golden history: (file, line of the invoke of the op that could not be placed,
/// ops in the smallest failing window, whether the window starts from any state, ops in the shrunk
/// counterexample).
const ILLEGAL: &[(&str, u64, usize, bool, usize)] = &[
    ("stale-read.illegal.jsonl", 6, 2, true, 2),
    ("lost-write.illegal.jsonl", 8, 3, true, 2),
    ("racing-cas.illegal.jsonl", 4, 2, true, 2),
    ("cas-mismatch-observation.illegal.jsonl", 4, 2, true, 2),
    ("overlapping-writes-flip.illegal.jsonl", 8, 2, true, 2),
    ("info-before-invoke.illegal.jsonl", 4, 2, true, 2),
    ("crashed-process.illegal.jsonl", 7, 3, true, 3),
    ("multi-key.illegal.jsonl", 10, 2, true, 2),
    ("concurrency-12.illegal.jsonl", 30, 15, false, 5),
    ("jepsen-stale.illegal.edn", 5, 2, true, 2),
    ("jepsen-history-stale.illegal.txt", 5, 2, true, 2),
    ("register/stale-read.illegal.jsonl", 6, 2, true, 2),
    ("set/lost-add.illegal.jsonl", 6, 3, true, 3),
    ("set/shrinking-set.illegal.jsonl", 8, 2, true, 2),
    ("mutex/double-acquire.illegal.jsonl", 4, 2, true, 2),
    ("mutex/release-unheld.illegal.jsonl", 6, 2, true, 2),
    (
        "unordered-queue/dequeued-twice.illegal.jsonl",
        6,
        3,
        false,
        3,
    ),
    (
        "unordered-queue/empty-while-full.illegal.jsonl",
        4,
        2,
        false,
        2,
    ),
    ("fifo-queue/out-of-order.illegal.jsonl", 6, 3, false, 3),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn expected_verdict(path: &Path) -> Verdict {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    match name.split('.').nth(1) {
        Some("linearizable") => Verdict::Linearizable,
        Some("illegal") => Verdict::NotLinearizable,
        other => panic!("golden file {name} must be named NAME.linearizable.EXT or NAME.illegal.EXT, found {other:?}"),
    }
}

/// Every golden file, with its model and its name relative to the golden folder.
fn golden_files() -> Vec<(PathBuf, ModelKind, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(golden_dir()).expect("tests/golden exists") {
        let path = entry.expect("a dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if path.is_dir() {
            let model: ModelKind = name
                .parse()
                .unwrap_or_else(|e| panic!("golden folder {name}: {e}"));
            for inner in std::fs::read_dir(&path).expect("a model folder") {
                let inner = inner.expect("a dir entry").path();
                let file = inner
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_owned();
                files.push((inner, model, format!("{name}/{file}")));
            }
        } else {
            files.push((path, ModelKind::CasRegister, name));
        }
    }
    files.sort_by(|a, b| a.2.cmp(&b.2));
    files
}

#[test]
fn golden_histories_have_their_verdicts() {
    let files = golden_files();
    assert!(files.len() >= 36, "the golden set is complete: {files:?}");
    for model in ModelKind::ALL {
        for verdict in [".linearizable.", ".illegal."] {
            assert!(
                files
                    .iter()
                    .any(|(_, m, n)| *m == model && n.contains(verdict)),
                "model {model} has a golden history with {verdict} in its name"
            );
        }
    }
    let mut illegal_seen = 0;
    for (path, model, name) in &files {
        let name = name.clone();
        let report = check_file(path, &CheckOptions::new(*model)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            report.verdict,
            expected_verdict(path),
            "{name}: {:#?}",
            report.keys
        );
        if report.verdict != Verdict::NotLinearizable {
            assert!(report.keys.is_empty(), "{name}");
            continue;
        }
        illegal_seen += 1;
        let &(_, line, window, from_any, shrunk) = ILLEGAL
            .iter()
            .find(|(n, ..)| *n == name)
            .unwrap_or_else(|| panic!("{name} is missing from ILLEGAL"));
        let cex: Vec<_> = report.counterexamples().collect();
        assert_eq!(cex.len(), 1, "{name}: one key fails");
        let c = cex[0];
        let text = c.to_text();
        assert_eq!(c.failed_op.invoke_line, line, "{name}:\n{text}");
        assert_eq!(c.window.len(), window, "{name}:\n{text}");
        assert_eq!(c.window_start_state.is_none(), from_any, "{name}:\n{text}");
        assert_eq!(c.shrunk.len(), shrunk, "{name}:\n{text}");
        assert!(c.shrunk_minimal, "{name}:\n{text}");
        assert_eq!(
            c.window.iter().filter(|w| w.failed).count(),
            1,
            "{name}:\n{text}"
        );
        assert!(
            c.prefix_len > 0 || c.window_start_state.is_some(),
            "{name}:\n{text}"
        );
        assert!(text.contains("could not place"), "{name}:\n{text}");
        let html = render_html(&report);
        assert!(html.contains("<svg") && html.contains("</html>"), "{name}");
        assert!(
            html.matches("http").count() == html.matches("http://www.w3.org/2000/svg").count(),
            "only the SVG namespace: {name}"
        );
    }
    assert_eq!(illegal_seen, ILLEGAL.len());
}

#[test]
fn the_register_model_refuses_cas_ops() {
    let err = check_file(
        &golden_dir().join("racing-cas.linearizable.jsonl"),
        &CheckOptions::new(ModelKind::Register),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("racing-cas.linearizable.jsonl:4: field `f`"),
        "{err}"
    );
    let report = check_file(
        &golden_dir().join("stale-read.illegal.jsonl"),
        &CheckOptions::new(ModelKind::Register),
    )
    .unwrap();
    assert_eq!(report.verdict, Verdict::NotLinearizable);
}

#[test]
fn the_format_document_example_is_linearizable() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("HISTORY-FORMAT.md"))
            .unwrap();
    let example = doc.split("## Example").nth(1).expect("an Example section");
    let body = example
        .split("```json\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a json block");
    let report = checker::check_jsonl(
        body.as_bytes(),
        "HISTORY-FORMAT.md",
        &CheckOptions::default(),
    )
    .unwrap();
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert_eq!((report.stats.ops, report.stats.notes), (4, 1));
}

/// The lines of `path` that hold the events of `records` (invokes and completions), under a header: a standalone
/// history of just those ops, each keeping its own events, so their real-time order is the original one.
fn sub_history(path: &Path, records: &[&checker::OpRecord]) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut wanted: Vec<u64> = records
        .iter()
        .flat_map(|r| std::iter::once(r.invoke_line).chain(r.complete_line))
        .collect();
    wanted.sort_unstable();
    let mut out = String::from("{\"schema_version\":1}\n");
    for l in wanted {
        out.push_str(lines[l as usize - 1]);
        out.push('\n');
    }
    out
}

#[test]
fn shrunk_counterexamples_are_illegal_on_their_own_and_no_larger_than_the_window() {
    let mut checked = 0;
    for (path, model, name) in golden_files() {
        if !name.contains(".illegal.") || !name.ends_with(".jsonl") {
            continue;
        }
        let report = check_file(&path, &CheckOptions::new(model)).unwrap();
        for c in report.counterexamples() {
            assert!(c.shrunk.len() <= c.window.len(), "{name}");
            assert!(
                c.shrunk.iter().any(|w| w.failed),
                "{name}: the failed op is kept"
            );
            let records: Vec<&checker::OpRecord> = c.shrunk.iter().map(|w| &w.record).collect();
            let sub = sub_history(&path, &records);
            let again =
                checker::check_jsonl(sub.as_bytes(), &name, &CheckOptions::new(model)).unwrap();
            assert_eq!(
                again.verdict,
                Verdict::NotLinearizable,
                "{name}: the shrunk ops alone:\n{sub}"
            );
            // And dropping any one op of a minimal counterexample makes it linearizable (from its start state:
            // here the initial one, which the standalone history starts from), unless that op is what explains a
            // value another op observes (shrinking keeps those: "read 5" alone would say nothing).
            if c.shrunk_minimal && c.window_start_state.is_some() {
                for skip in 0..records.len() {
                    let op = &records[skip].op;
                    let written = ["write ", "add ", "enqueue "]
                        .iter()
                        .find_map(|p| op.strip_prefix(p))
                        .or_else(|| op.split(" -> ").nth(1));
                    let explains = written.is_some_and(|v| {
                        records.iter().enumerate().any(|(i, r)| {
                            let set_elements =
                                r.op.strip_prefix("read {")
                                    .and_then(|e| e.strip_suffix('}'))
                                    .is_some_and(|e| e.split(", ").any(|x| x == v));
                            i != skip
                                && (r.op == format!("read {v}")
                                    || r.op == format!("dequeue {v}")
                                    || r.op.starts_with(&format!("cas {v} "))
                                    || set_elements)
                        })
                    });
                    if explains {
                        continue;
                    }
                    let fewer: Vec<&checker::OpRecord> = records
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != skip)
                        .map(|(_, r)| *r)
                        .collect();
                    let sub = sub_history(&path, &fewer);
                    let v = checker::check_jsonl(sub.as_bytes(), &name, &CheckOptions::new(model))
                        .unwrap()
                        .verdict;
                    assert_ne!(
                        v,
                        Verdict::NotLinearizable,
                        "{name}: without op {skip}:\n{sub}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked}");
}

#[test]
fn every_model_section_of_the_format_document_has_a_linearizable_example() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("HISTORY-FORMAT.md"))
            .unwrap();
    for model in ModelKind::ALL {
        let heading = format!("### `{model}`\n");
        let section = doc
            .split(&heading)
            .nth(1)
            .unwrap_or_else(|| panic!("a section for {model}"));
        let body = section
            .split("```json\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap_or_else(|| panic!("an example for {model}"));
        let report = checker::check_jsonl(
            body.as_bytes(),
            "HISTORY-FORMAT.md",
            &CheckOptions::new(model),
        )
        .unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(
            report.verdict,
            Verdict::Linearizable,
            "{model}: {:#?}",
            report.keys
        );
    }
}
