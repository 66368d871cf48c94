//! The golden set: hand-written histories whose verdicts are known, named `NAME.VERDICT.jsonl` (or `.edn`).
//! Each not-linearizable one also pins the op that could not be placed and the size of the smallest window.

use std::path::{Path, PathBuf};

use checker::{check_file, render_html, CheckOptions, ModelKind, Verdict};

/// For each not-linearizable golden history: (file, line of the invoke of the op that could not be placed,
/// ops in the smallest failing window, whether the window starts from any state).
const ILLEGAL: &[(&str, u64, usize, bool)] = &[
    ("stale-read.illegal.jsonl", 6, 2, true),
    ("lost-write.illegal.jsonl", 8, 3, true),
    ("racing-cas.illegal.jsonl", 4, 2, true),
    ("cas-mismatch-observation.illegal.jsonl", 4, 2, true),
    ("overlapping-writes-flip.illegal.jsonl", 8, 2, true),
    ("info-before-invoke.illegal.jsonl", 4, 2, true),
    ("crashed-process.illegal.jsonl", 7, 3, true),
    ("multi-key.illegal.jsonl", 10, 2, true),
    ("concurrency-12.illegal.jsonl", 30, 15, false),
    ("jepsen-stale.illegal.edn", 5, 2, true),
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

#[test]
fn golden_histories_have_their_verdicts() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|e| e.expect("a dir entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the golden set is complete: {files:?}");
    let mut illegal_seen = 0;
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let report = check_file(path, &CheckOptions::new(ModelKind::CasRegister))
            .unwrap_or_else(|e| panic!("{e}"));
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
        let &(_, line, window, from_any) = ILLEGAL
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
            !html.contains("http://") || html.matches("http://").count() == 1,
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
