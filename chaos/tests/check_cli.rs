//! `chaos check` end to end: the built binary on real files, exit codes 0/1/2/3, messages and outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../checker/tests/golden")
        .join(name)
}

fn chaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(args)
        .output()
        .expect("the chaos binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

const HEADER: &str = "{\"schema_version\":1,\"format\":\"chaos-history\"}\n";

#[test]
fn linearizable_history_exits_0() {
    let path = golden("racing-cas.linearizable.jsonl");
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("racing-cas.linearizable.jsonl: linearizable (4 ops, 1 key"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "total: 1 file: 1 linearizable, 0 not linearizable, 0 unknown, 0 empty, 0 bad input"
        ),
        "{stdout}"
    );
}

#[test]
fn violation_exits_1_with_a_counterexample() {
    let path = golden("stale-read.illegal.jsonl");
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("NOT LINEARIZABLE"), "{stdout}");
    assert!(
        stdout.contains("could not place: p2 read 1 (ok, lines 6-7)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("smallest window that cannot be linearized"),
        "{stdout}"
    );
}

#[test]
fn malformed_history_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        format!(
            "{HEADER}{}\n{}\n",
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read"}"#,
            r#"{"index":1,"time":2,"process":0,"type":"okay","f":"read","value":1}"#
        ),
    )
    .unwrap();
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.jsonl:3: field `type`: expected invoke, ok, fail or info"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("bad.jsonl: bad input"));
}

#[test]
fn structural_errors_and_missing_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orphan.jsonl");
    std::fs::write(
        &path,
        format!(
            "{HEADER}{}\n",
            r#"{"index":0,"time":1,"process":4,"type":"ok","f":"write","value":1}"#
        ),
    )
    .unwrap();
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains(
        "orphan.jsonl:2: field `process`: ok for process 4 which has no outstanding invoke"
    ));

    let missing = dir.path().join("missing.jsonl");
    let out = chaos(&["check", missing.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("missing.jsonl"),
        "{}",
        text(&out.stderr)
    );

    let out = chaos(&[
        "check",
        "--model",
        "register",
        golden("racing-cas.linearizable.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("racing-cas.linearizable.jsonl:4: field `f`"),
        "{}",
        text(&out.stderr)
    );

    let out = chaos(&["check", "--time-limit", "soon", missing.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "clap usage errors also exit 2");

    let empty = tempfile::tempdir().unwrap();
    let out = chaos(&["check", empty.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("holds no *.jsonl or *.edn history"));
}

#[test]
fn exhausted_budget_exits_3() {
    let path = golden("concurrency-12.linearizable.jsonl");
    let out = chaos(&["check", "--time-limit", "0s", path.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("unknown (1 of 1 keys undecided: time limit reached"),
        "{}",
        text(&out.stdout)
    );
    let out = chaos(&["check", "--max-steps", "5", path.to_str().unwrap()]);
    assert_eq!(code(&out), 3);
    assert!(text(&out.stdout).contains("step limit reached"));
    // A single register with indeterminate ops and cas mismatches: the search needs tens of MiB of cache.
    let dir = tempfile::tempdir().unwrap();
    let hard = dir.path().join("one-register.jsonl");
    let events =
        checker::generate::generate(&checker::generate::GenerateOptions::new(20_000, 10, 0, 1));
    let history = checker::history::History::new(checker::history::Header::default(), events, "g");
    std::fs::write(&hard, history.write_jsonl(Vec::new()).unwrap()).unwrap();
    let out = chaos(&["check", "--max-search-memory", "1", hard.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("memory limit reached"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_directory_checks_every_history_and_violations_win() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "racing-cas.linearizable.jsonl",
        "jepsen-stale.illegal.edn",
        "multi-key.linearizable.jsonl",
    ] {
        std::fs::copy(golden(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not a history").unwrap();
    std::fs::write(dir.path().join("broken.jsonl"), "{\"schema_version\":9}\n").unwrap();
    let out = chaos(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 1, "a violation outranks bad input");
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains(".jsonl: ") || l.contains(".edn: "))
            .count(),
        4,
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "total: 4 files: 2 linearizable, 1 not linearizable, 0 unknown, 0 empty, 1 bad input"
        ),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("broken.jsonl:1: field `schema_version`: unsupported version 9")
    );
}

#[test]
fn json_summary_and_out_dir() {
    let out_dir = tempfile::tempdir().unwrap();
    let a = golden("multi-key.illegal.jsonl");
    let b = golden("info-must-apply.linearizable.jsonl");
    let out = chaos(&[
        "check",
        "--json",
        "--out",
        out_dir.path().to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1);
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(summary["schema_version"], 1);
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["total"]["files"], 2);
    assert_eq!(summary["files"][0]["verdict"], "not-linearizable");
    assert_eq!(summary["files"][0]["keys_not_linearizable"], 1);
    assert_eq!(summary["files"][1]["verdict"], "linearizable");

    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out_dir.path().join("multi-key.illegal.report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["verdict"], "not-linearizable");
    assert_eq!(report["keys"][0]["key"], "a");
    assert_eq!(
        report["keys"][0]["counterexample"]["failed_op"]["invoke_line"],
        10
    );
    let html =
        std::fs::read_to_string(out_dir.path().join("multi-key.illegal.counterexample.html"))
            .unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    assert!(out_dir
        .path()
        .join("info-must-apply.linearizable.report.json")
        .exists());
    assert!(!out_dir
        .path()
        .join("info-must-apply.linearizable.counterexample.html")
        .exists());
    assert!(out_dir.path().join("summary.json").exists());
}

#[test]
fn a_history_with_only_a_header_is_empty_and_exits_2() {
    // Issue 12, item 5: this used to be "linearizable" with exit 0.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("header-only.jsonl");
    std::fs::write(&path, HEADER).unwrap();
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("header-only.jsonl: empty: no operation to check (0 ops"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("header-only.jsonl: the history has no operations"),
        "{}",
        text(&out.stderr)
    );
    let out = chaos(&["check", "--json", path.to_str().unwrap()]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files"][0]["verdict"], "empty");
    assert_eq!(summary["exit_code"], 2);
}

#[test]
fn a_client_op_with_a_string_process_gets_a_notice_naming_its_line() {
    // Issue 12, item 5: such a line silently became a note.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("string-process.jsonl");
    std::fs::write(
        &path,
        format!(
            "{HEADER}{}\n{}\n{}\n",
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":1}"#,
            r#"{"index":2,"time":3,"process":"3","type":"invoke","f":"write","value":2}"#
        ),
    )
    .unwrap();
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("notice: ")
            && stderr.contains("string-process.jsonl:4: process \"3\" is a string"),
        "{stderr}"
    );
}

#[test]
fn headerless_files_and_value_less_completions_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("converted.jsonl");
    std::fs::write(
        &path,
        [
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":1,"time":2,"process":0,"type":"ok","f":"write"}"#,
            r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"cas","value":[1,2]}"#,
            r#"{"index":3,"time":4,"process":1,"type":"info","f":"cas"}"#,
            r#"{"index":4,"time":5,"process":2,"type":"invoke","f":"read"}"#,
            r#"{"index":5,"time":6,"process":2,"type":"ok","f":"read","value":2}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stderr).contains("converted.jsonl:1: no header line; read as a schema 1 history"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_reader_that_closes_early_is_a_clean_stop() {
    // Issue 12, item 8: `chaos check ... | head` panicked on the broken pipe (exit 101).
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read(golden("stale-read.illegal.jsonl")).unwrap();
    for i in 0..600 {
        std::fs::write(dir.path().join(format!("h{i:04}.jsonl")), &source).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["check", dir.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the chaos binary runs");
    {
        use std::io::Read;
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 64];
        stdout.read_exact(&mut first).unwrap();
        // Dropping the pipe closes it, as `head` does after its lines.
    }
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        code(&out),
        1,
        "a clean stop keeps the verdict so far: {stderr}"
    );
}

#[test]
fn huge_values_are_cut_in_counterexamples() {
    // Issue 12, item 9: a 900 KB value made 4.6 MB of output.
    let big = "v".repeat(900_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let lines = [
        format!(
            r#"{{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":"{big}"}}"#
        ),
        format!(r#"{{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":"{big}"}}"#),
        r#"{"index":2,"time":3,"process":0,"type":"invoke","f":"write","value":2}"#.to_owned(),
        r#"{"index":3,"time":4,"process":0,"type":"ok","f":"write","value":2}"#.to_owned(),
        r#"{"index":4,"time":5,"process":1,"type":"invoke","f":"read"}"#.to_owned(),
        format!(r#"{{"index":5,"time":6,"process":1,"type":"ok","f":"read","value":"{big}"}}"#),
    ];
    std::fs::write(&path, format!("{HEADER}{}\n", lines.join("\n"))).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = chaos(&[
        "check",
        "--out",
        out_dir.path().to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1);
    let stdout = text(&out.stdout);
    assert!(stdout.len() < 20_000, "{} bytes of output", stdout.len());
    assert!(stdout.contains("...[900002 bytes in all]"), "{stdout}");
    let html = std::fs::read_to_string(out_dir.path().join("big.counterexample.html")).unwrap();
    assert!(html.len() < 100_000, "{} bytes of html", html.len());
    assert!(html.contains("...[900002 bytes in all]"));
}
