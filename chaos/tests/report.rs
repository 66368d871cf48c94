//! The report module on run folders: synthetic ones that provoke every condition, and one real run folder from
//! `chaos run configs/smoke.toml` (today's runner: no status.jsonl, check.json or outcome.json).

mod report_synth;

use std::path::{Path, PathBuf};

use chaos::report::{self, CheckVerdict, Report, RunVerdict, ViolationKind};
use quick_xml::events::Event;
use report_synth::Synth;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(name)
}

fn build(dir: &Path) -> Report {
    report::build(dir).unwrap_or_else(|e| panic!("building the report of {}: {e}", dir.display()))
}

fn synth(results: &Path, name: &str, s: &Synth) -> (PathBuf, Report) {
    let dir = results.join(name);
    s.write(&dir);
    let r = build(&dir);
    (dir, r)
}

fn check<'a>(r: &'a Report, id: &str) -> &'a report::CheckResult {
    r.checks()
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {:#?}", r.checks()))
}

/// Counts of JUnit elements, from a real XML parse.
#[derive(Debug, Default, PartialEq)]
struct JUnit {
    testcases: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    attr_tests: usize,
    attr_failures: usize,
    attr_errors: usize,
    attr_skipped: usize,
    names: Vec<String>,
}

fn parse_junit(path: &Path) -> JUnit {
    let text = std::fs::read_to_string(path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&text);
    reader.config_mut().check_end_names = true;
    let mut j = JUnit::default();
    let attr = |e: &quick_xml::events::BytesStart, name: &str| -> Option<String> {
        e.attributes()
            .map(|a| a.expect("well-formed attribute"))
            .find(|a| a.key.as_ref() == name.as_bytes())
            .map(|a| String::from_utf8(a.value.into_owned()).unwrap())
    };
    loop {
        match reader.read_event().unwrap_or_else(|e| {
            panic!(
                "{}: not well-formed XML at {}: {e}",
                path.display(),
                reader.buffer_position()
            )
        }) {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testsuite" => {
                    let n = |k| attr(&e, k).unwrap().parse::<usize>().unwrap();
                    j.attr_tests = n("tests");
                    j.attr_failures = n("failures");
                    j.attr_errors = n("errors");
                    j.attr_skipped = n("skipped");
                }
                b"testcase" => {
                    j.testcases += 1;
                    j.names.push(attr(&e, "name").unwrap());
                }
                b"failure" => j.failures += 1,
                b"error" => j.errors += 1,
                b"skipped" => j.skipped += 1,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    j
}

fn assert_junit_consistent(j: &JUnit) {
    assert_eq!(j.testcases, j.attr_tests, "{j:?}");
    assert_eq!(j.failures, j.attr_failures, "{j:?}");
    assert_eq!(j.errors, j.attr_errors, "{j:?}");
    assert_eq!(j.skipped, j.attr_skipped, "{j:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

const EVERY_FILE: [&str; 3] = ["report.json", "report.html", "junit.xml"];

#[test]
fn a_passing_run_produces_every_file_and_a_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, r) = synth(tmp.path(), "pass-1", &Synth::default());
    assert_eq!(r.verdict(), RunVerdict::Pass, "{:#?}", r.checks());
    let written = report::write(&dir, &r).unwrap();
    for f in EVERY_FILE {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(written.counterexample.is_none());
    assert!(!dir.join("counterexample.html").exists());
    assert_eq!(written.index.unwrap(), tmp.path().join("index.html"));
    let j = parse_junit(&dir.join("junit.xml"));
    assert_junit_consistent(&j);
    assert_eq!((j.failures, j.errors, j.skipped), (0, 0, 0), "{j:?}");
    assert_eq!(j.testcases, r.checks().len());
    for id in [
        "linearizability",
        "node-crashes",
        "tool-errors",
        "expect.min_ok_ops",
        "expect.final_reads_succeed",
        "expect.no_lost_writes",
        "expect.converged",
    ] {
        assert!(j.names.iter().any(|n| n == id), "no test case {id}: {j:?}");
    }
    // The figures people read first.
    assert!(r.ops.ok > 1000, "{:?}", r.ops);
    assert_eq!(r.faults.injected, 2);
    let l = r.leadership.as_ref().unwrap();
    assert_eq!(l.changes, 1);
    assert_eq!(l.gaps.len(), 1);
    assert_eq!(r.availability.outside_faults.share, Some(1.0));
    assert!(r.availability.inside_faults.share.unwrap() < 1.0);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<h1>PASS</h1>"));
    assert!(html.contains("<svg"), "no inline plot");
    assert!(html.contains("chaos run configs/synthetic.toml --seed 7"));
    assert!(!html.contains("<script"), "the page must not need scripts");
    for needle in [
        "src=\"http",
        "href=\"http",
        "url(",
        "@import",
        "<link",
        "<iframe",
    ] {
        assert!(
            !html.contains(needle),
            "the page must not load anything: {needle}"
        );
    }
}

#[test]
fn a_failing_run_shows_its_counterexample() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Synth {
        stale_read: true,
        ..Synth::default()
    };
    let (dir, r) = synth(tmp.path(), "fail-1", &s);
    assert_eq!(r.verdict(), RunVerdict::Fail);
    assert_eq!(check(&r, "linearizability").verdict, CheckVerdict::Fail);
    let written = report::write(&dir, &r).unwrap();
    for f in EVERY_FILE.iter().chain(&["counterexample.html"]) {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(written.counterexample.is_some());
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<h1>FAIL [not linearizable]</h1>"));
    assert!(html.contains("id=\"counterexample\""));
    assert!(
        html.contains("could not place") || html.contains("cannot be linearized"),
        "the counterexample is not embedded"
    );
    let j = parse_junit(&dir.join("junit.xml"));
    assert_junit_consistent(&j);
    let failing = r
        .checks()
        .iter()
        .filter(|c| c.verdict == CheckVerdict::Fail)
        .count();
    assert_eq!(j.failures, failing);
    assert_eq!(
        j.failures,
        1,
        "only linearizability fails: {:#?}",
        r.checks()
    );
}

#[test]
fn rebuilding_a_copied_folder_gives_an_identical_report_json() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, s) in [
        ("pass", Synth::default()),
        (
            "fail",
            Synth {
                stale_read: true,
                ..Synth::default()
            },
        ),
        (
            "bare",
            Synth {
                with_check: false,
                with_outcome: false,
                with_status: false,
                with_events: false,
                ..Synth::default()
            },
        ),
    ] {
        let (dir, r) = synth(tmp.path(), name, &s);
        report::write(&dir, &r).unwrap();
        let elsewhere = tmp.path().join("copies").join(format!("{name}-copy"));
        copy_dir(&dir, &elsewhere);
        std::fs::remove_file(elsewhere.join("report.json")).unwrap();
        let again = build(&elsewhere);
        report::write(&elsewhere, &again).unwrap();
        let a = std::fs::read(dir.join("report.json")).unwrap();
        let b = std::fs::read(elsewhere.join("report.json")).unwrap();
        assert!(a == b, "{name}: report.json differs after a copy");
        let text = String::from_utf8(a).unwrap();
        assert!(
            !text.contains(tmp.path().to_str().unwrap()),
            "{name}: report.json holds the folder's path"
        );
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["schema_version"], 1);
    }
}

#[test]
fn leader_within_fails_when_the_election_is_slower_than_the_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let expect = |bound: &str| Synth {
        expect: serde_json::json!({"leader_within": bound}),
        election_ms: 600,
        ..Synth::default()
    };
    let (_, r) = synth(tmp.path(), "fast-bound", &expect("300ms"));
    let c = check(&r, "expect.leader_within");
    assert_eq!(c.verdict, CheckVerdict::Fail, "{c:?}");
    assert!(c.message.contains("longer than 300ms"), "{}", c.message);
    assert_eq!(r.verdict(), RunVerdict::Fail);
    let (_, r) = synth(tmp.path(), "slow-bound", &expect("2s"));
    assert_eq!(
        check(&r, "expect.leader_within").verdict,
        CheckVerdict::Pass
    );
    assert_eq!(r.verdict(), RunVerdict::Pass);
    // The gap is measured from the kill (events.jsonl) to the first poll that sees the new leader.
    let gap = r.leadership.as_ref().unwrap().gaps[0];
    assert!(gap.ms >= 600.0 && gap.ms <= 600.0 + 260.0, "{gap:?}");
}

#[test]
fn availability_min_fails_when_ops_fail_outside_faults() {
    let tmp = tempfile::tempdir().unwrap();
    let expect = serde_json::json!({"availability_min": 0.9});
    let (_, r) = synth(
        tmp.path(),
        "ok",
        &Synth {
            expect: expect.clone(),
            ..Synth::default()
        },
    );
    assert_eq!(
        check(&r, "expect.availability_min").verdict,
        CheckVerdict::Pass
    );
    let (_, r) = synth(
        tmp.path(),
        "bad",
        &Synth {
            expect,
            unavailable_after_heal: true,
            ..Synth::default()
        },
    );
    let c = check(&r, "expect.availability_min");
    assert_eq!(c.verdict, CheckVerdict::Fail, "{c:?}");
    assert!(r.availability.outside_faults.share.unwrap() < 0.9);
}

#[test]
fn p99_healthy_max_fails_when_healthy_ops_are_slow() {
    let tmp = tempfile::tempdir().unwrap();
    let expect = serde_json::json!({"p99_healthy_max": "500ms"});
    let (_, r) = synth(
        tmp.path(),
        "ok",
        &Synth {
            expect: expect.clone(),
            ..Synth::default()
        },
    );
    assert_eq!(
        check(&r, "expect.p99_healthy_max").verdict,
        CheckVerdict::Pass
    );
    // The 200 ms ops inside fault windows do not count while healthy.
    assert!(r.latency_ms.faulted.unwrap().p99_ms >= 200.0);
    let (_, r) = synth(
        tmp.path(),
        "bad",
        &Synth {
            expect,
            slow_healthy_ms: Some(800),
            ..Synth::default()
        },
    );
    let c = check(&r, "expect.p99_healthy_max");
    assert_eq!(c.verdict, CheckVerdict::Fail, "{c:?}");
}

#[test]
fn no_lost_writes_fails_when_the_final_read_misses_an_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, r) = synth(tmp.path(), "ok", &Synth::default());
    let c = check(&r, "expect.no_lost_writes");
    assert_eq!(c.verdict, CheckVerdict::Pass, "{c:?}");
    assert!(r.lost_writes.writes_checked > 100);
    let (_, r) = synth(
        tmp.path(),
        "lost",
        &Synth {
            lose_write: true,
            ..Synth::default()
        },
    );
    let c = check(&r, "expect.no_lost_writes");
    assert_eq!(c.verdict, CheckVerdict::Fail, "{c:?}");
    assert_eq!(r.lost_writes.lost.len(), 1);
    assert_eq!(r.lost_writes.lost[0].key.as_deref(), Some("k0"));
}

#[test]
fn converged_fails_when_the_logs_disagree_and_is_not_evaluated_without_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, r) = synth(tmp.path(), "ok", &Synth::default());
    assert_eq!(check(&r, "expect.converged").verdict, CheckVerdict::Pass);
    let (_, r) = synth(
        tmp.path(),
        "diverged",
        &Synth {
            converged: Some(false),
            ..Synth::default()
        },
    );
    let c = check(&r, "expect.converged");
    assert_eq!(c.verdict, CheckVerdict::Fail);
    assert!(c.message.contains("disagrees"), "{}", c.message);
    let (_, r) = synth(
        tmp.path(),
        "unchecked",
        &Synth {
            converged: None,
            ..Synth::default()
        },
    );
    assert_eq!(
        check(&r, "expect.converged").verdict,
        CheckVerdict::NotEvaluated
    );
    assert_eq!(
        r.verdict(),
        RunVerdict::Pass,
        "not evaluated is shown, not failed"
    );
}

#[test]
fn min_ok_ops_and_final_reads_fail_when_provoked() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Synth {
        expect: serde_json::json!({"min_ok_ops": 1_000_000}),
        final_read_fails: true,
        ..Synth::default()
    };
    let (_, r) = synth(tmp.path(), "few", &s);
    assert_eq!(check(&r, "expect.min_ok_ops").verdict, CheckVerdict::Fail);
    let c = check(&r, "expect.final_reads_succeed");
    assert_eq!(c.verdict, CheckVerdict::Fail, "{c:?}");
    assert!(c.message.contains("3 of 4"), "{}", c.message);
}

#[test]
fn missing_files_are_said_and_expectations_needing_them_are_not_evaluated() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Synth {
        expect: serde_json::json!({"leader_within": "2s"}),
        with_status: false,
        with_outcome: false,
        with_check: false,
        with_events: false,
        ..Synth::default()
    };
    let (dir, r) = synth(tmp.path(), "bare", &s);
    assert_eq!(
        check(&r, "expect.leader_within").verdict,
        CheckVerdict::NotEvaluated
    );
    assert_eq!(
        check(&r, "expect.converged").verdict,
        CheckVerdict::NotEvaluated
    );
    // Without check.json the report checks the history itself; without events.jsonl windows come from notes.
    assert_eq!(check(&r, "linearizability").verdict, CheckVerdict::Pass);
    assert!(r.linearizability.source.contains("history.jsonl"));
    assert_eq!(r.faults.injected, 2);
    // Final reads come from the history's read-only process at the end.
    assert_eq!(
        r.final_reads.as_ref().map(|f| (f.ok, f.attempted)),
        Some((4, 4))
    );
    let missing: Vec<&str> = r.missing.iter().map(|m| m.file.as_str()).collect();
    for f in ["events.jsonl", "status.jsonl", "check.json", "outcome.json"] {
        assert!(
            missing.contains(&f),
            "{f} not reported missing: {missing:?}"
        );
    }
    report::write(&dir, &r).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("Missing or unreadable files"));
    assert!(html.contains("not evaluated"));
    let j = parse_junit(&dir.join("junit.xml"));
    assert_junit_consistent(&j);
    assert_eq!(j.skipped, 2, "{j:?}");
}

#[test]
fn a_fault_the_tool_could_not_inject_is_a_tool_error_never_a_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, r) = synth(
        tmp.path(),
        "tool",
        &Synth {
            fault_failed: true,
            ..Synth::default()
        },
    );
    assert_eq!(r.verdict(), RunVerdict::ToolError);
    assert_eq!(r.verdict().exit_code(), 2);
    assert_eq!(check(&r, "tool-errors").verdict, CheckVerdict::ToolError);
    assert_eq!(r.faults.failed.len(), 1);
    report::write(&dir, &r).unwrap();
    let j = parse_junit(&dir.join("junit.xml"));
    assert_junit_consistent(&j);
    assert_eq!(j.errors, 1);
}

#[test]
fn clock_faults_draw_each_nodes_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, r) = synth(
        tmp.path(),
        "clock",
        &Synth {
            clock: true,
            ..Synth::default()
        },
    );
    assert_eq!(r.clock_offsets_max_ms.get(&2), Some(&500.0));
    report::write(&dir, &r).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"clocks\""));
    // Without clock faults there is no clock plot.
    let (dir, r) = synth(tmp.path(), "no-clock", &Synth::default());
    report::write(&dir, &r).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(!html.contains("id=\"clocks\""));
}

#[test]
fn a_long_run_is_sampled_and_stays_small() {
    let tmp = tempfile::tempdir().unwrap();
    // 10 minutes at ~300 ops/s.
    let s = Synth {
        seconds: 600,
        step_ms: 10,
        ..Synth::default()
    };
    let (dir, r) = synth(tmp.path(), "long", &s);
    assert!(r.ops.total > 100_000, "{:?}", r.ops);
    report::write(&dir, &r).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.len() < 3 * 1024 * 1024,
        "report.html is {} bytes",
        html.len()
    );
    assert!(html.contains("Sampled for readability"));
    let circles = html.matches("<circle").count();
    assert!(
        circles <= chaos::report::plots::OK_POINTS_MAX + 50,
        "{circles} points drawn"
    );
}

#[test]
fn the_index_lists_every_run_newest_first_and_survives_broken_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path();
    let older = Synth {
        started_at: "2026-12-01T09:00:00Z".into(),
        plan: "older".into(),
        ..Synth::default()
    };
    let newer = Synth {
        started_at: "2026-12-01T11:00:00Z".into(),
        plan: "newer".into(),
        stale_read: true,
        ..Synth::default()
    };
    let (d1, r1) = synth(results, "older-run", &older);
    report::write(&d1, &r1).unwrap();
    // A run still going: manifest and history, no report yet.
    let running = Synth {
        started_at: "2026-12-01T12:00:00Z".into(),
        plan: "running".into(),
        with_outcome: false,
        with_check: false,
        ..Synth::default()
    };
    running.write(&results.join("running-run"));
    // A broken folder: a manifest that is not JSON.
    std::fs::create_dir_all(results.join("broken-run")).unwrap();
    std::fs::write(results.join("broken-run/manifest.json"), "{not json").unwrap();
    // An empty folder (a run that is just starting).
    std::fs::create_dir_all(results.join("empty-run")).unwrap();
    let (d2, r2) = synth(results, "newer-run", &newer);
    report::write(&d2, &r2).unwrap();
    let html = std::fs::read_to_string(results.join("index.html")).unwrap();
    let pos = |s: &str| {
        html.find(s)
            .unwrap_or_else(|| panic!("{s} not in the index"))
    };
    assert!(pos("running-run") < pos("newer-run/report.html"));
    assert!(pos("newer-run/report.html") < pos("older-run/report.html"));
    assert!(html.contains("broken-run") && html.contains("broken:"));
    assert!(html.contains("empty-run"));
    assert!(html.contains(">FAIL<") && html.contains(">PASS<"));
    assert!(html.contains("no report yet"));
}

#[test]
fn compare_puts_the_key_figures_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let (da, a) = synth(tmp.path(), "a", &Synth::default());
    let (db, b) = synth(
        tmp.path(),
        "b",
        &Synth {
            unavailable_after_heal: true,
            election_ms: 900,
            ..Synth::default()
        },
    );
    let c = report::compare::compare(&da, &a, &db, &b);
    let row = |name: &str| c.figures.iter().find(|f| f.figure == name).unwrap().clone();
    let avail = row("availability outside faults");
    assert_eq!(avail.a, Some(100.0));
    assert!(avail.b.unwrap() < 100.0 && avail.change.unwrap() < 0.0);
    let gap = row("longest without a leader");
    assert!(gap.change.unwrap() > 200.0, "{gap:?}");
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert!(json["figures"].as_array().unwrap().len() > 10);
    let text = report::compare::text(&c);
    assert!(text.contains("availability outside faults"));
}

#[test]
fn a_real_smoke_run_folder_reports() {
    // Copied from `chaos run configs/smoke.toml` (seed 1) with today's runner: manifest, history and events only.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("smoke-real");
    copy_dir(&fixture("smoke-real"), &dir);
    let r = build(&dir);
    assert_eq!(r.verdict(), RunVerdict::Pass, "{:#?}", r.checks());
    assert_eq!(r.plan(), "smoke");
    assert_eq!(r.faults.injected, 3);
    // Windows carry the target as planned (events.jsonl has the node it resolved to), and the nodes it hit.
    let pause = r.faults.windows.iter().find(|w| w.kind == "pause").unwrap();
    assert_eq!(
        (pause.target.as_str(), pause.nodes.as_slice()),
        ("random", &[3u64][..])
    );
    assert!(r.ops.ok >= 200);
    let written = report::write(&dir, &r).unwrap();
    for f in EVERY_FILE {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(written.index.is_ok());
    assert_junit_consistent(&parse_junit(&dir.join("junit.xml")));
}

#[test]
fn a_folder_without_a_history_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    Synth::default().write(&dir);
    std::fs::remove_file(dir.join("history.jsonl")).unwrap();
    let err = report::build(&dir).unwrap_err().to_string();
    assert!(
        err.contains("history.jsonl") && err.contains("missing"),
        "{err}"
    );
    std::fs::write(dir.join("history.jsonl"), "{\"schema_version\":1}\n{\"index\":0,\"time\":1,\"process\":0,\"type\":\"ok\",\"f\":\"read\"}\n").unwrap();
    let err = report::build(&dir).unwrap_err().to_string();
    assert!(err.contains("history.jsonl:2"), "{err}");
}

#[test]
fn a_plan_whose_expectations_do_not_parse_is_a_tool_error() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Synth {
        expect: serde_json::json!({"leader_withn": "2s"}),
        ..Synth::default()
    };
    let (_, r) = synth(tmp.path(), "typo", &s);
    assert_eq!(r.verdict(), RunVerdict::ToolError);
    let c = check(&r, "tool-errors");
    assert!(c.message.contains("leader_withn"), "{}", c.message);
}

#[test]
fn the_runner_can_hand_over_its_check_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fail");
    Synth {
        stale_read: true,
        ..Synth::default()
    }
    .write(&dir);
    let check = checker::check_file(
        &dir.join("history.jsonl"),
        &checker::CheckOptions::new(checker::ModelKind::CasRegister),
    )
    .unwrap();
    let given = report::build_with_check(&dir, Some(check)).unwrap();
    assert!(given.counterexample_html.is_some());
    let rebuilt = build(&dir);
    assert_eq!(
        serde_json::to_string(&given).unwrap(),
        serde_json::to_string(&rebuilt).unwrap()
    );
}

/// Edits a JSON file of a run folder in place.
fn patch_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn each_kind_of_violation_has_its_own_label_and_the_first_one_is_dated_from_the_fault_phase() {
    let tmp = tempfile::tempdir().unwrap();
    // A clean run: no violation, no time.
    let (_, r) = synth(tmp.path(), "clean", &Synth::default());
    assert_eq!(r.verdict(), RunVerdict::Pass);
    assert!(r.violations.is_empty());
    assert_eq!(r.first_violation_s, None);
    // A lost write alone is not a linearizability label.
    let s = Synth {
        lose_write: true,
        ..Synth::default()
    };
    let (dir, r) = synth(tmp.path(), "lost", &s);
    assert_eq!(r.verdict(), RunVerdict::Fail);
    assert!(
        r.violations.contains(&ViolationKind::AcknowledgedWriteLost),
        "{:?}",
        r.violations
    );
    let first = r
        .first_violation_s
        .expect("a lost write has an acknowledgement time");
    let ack = r
        .lost_writes
        .lost
        .iter()
        .map(|l| l.acknowledged_s)
        .fold(f64::MAX, f64::min);
    // The synthetic run's fault phase starts at 2 s.
    assert!((first - (ack - 2.0)).abs() < 0.002, "{first} vs ack {ack}");
    // Add a crash (events.jsonl) and a divergence (outcome.json): every label, in the stable order.
    let s = Synth {
        stale_read: true,
        lose_write: true,
        converged: Some(false),
        ..Synth::default()
    };
    let (dir2, _) = synth(tmp.path(), "all", &s);
    let events = dir2.join("events.jsonl");
    let mut text = std::fs::read_to_string(&events).unwrap();
    text.push_str("{\"event\":\"node-exited\",\"node\":2,\"status\":\"exit status: 101\",\"time_ns\":2500000000}\n");
    std::fs::write(&events, text).unwrap();
    // The crashed node's log says why; the report quotes its last error line.
    std::fs::create_dir_all(dir2.join("nodes/n2")).unwrap();
    std::fs::write(
        dir2.join("nodes/n2/node.log"),
        "INFO node started\nERROR node stopped error=hard state regression\nINFO flushing\n",
    )
    .unwrap();
    let r = build(&dir2);
    assert_eq!(
        check(&r, "node-crashes").message,
        "n2 exited on its own (exit status: 101); its log's last error: ERROR node stopped error=hard state \
         regression; see nodes/n2/node.log"
    );
    assert_eq!(
        r.violations,
        vec![
            ViolationKind::NotLinearizable,
            ViolationKind::AcknowledgedWriteLost,
            ViolationKind::ReplicasDiverge,
            ViolationKind::NodeCrashed
        ]
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["violations"],
        serde_json::json!([
            "not-linearizable",
            "acknowledged-write-lost",
            "replicas-diverge",
            "node-crashed"
        ])
    );
    assert!(
        r.first_violation_s.unwrap() <= 0.5 + 1e-9,
        "{:?}",
        r.first_violation_s
    );
    let written = report::write(&dir2, &r).unwrap();
    let text = report::summary::text(&r, &written.html);
    assert!(
        text.starts_with(
            "FAIL [not linearizable, acknowledged write lost, replicas diverge, node crashed]"
        ),
        "{text}"
    );
    let junit = std::fs::read_to_string(dir2.join("junit.xml")).unwrap();
    assert!(junit.contains("type=\"node-crashed\""), "{junit}");
    assert!(junit.contains("name=\"violations\" value=\"not-linearizable,acknowledged-write-lost,replicas-diverge,node-crashed\""), "{junit}");
    let _ = dir;
}

#[test]
fn an_early_stop_is_reported_and_one_the_checks_do_not_confirm_is_a_tool_error() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Synth {
        stale_read: true,
        ..Synth::default()
    };
    let (dir, _) = synth(tmp.path(), "early", &s);
    patch_json(&dir.join("outcome.json"), |o| {
        o["stopped_early"] = serde_json::json!({"label": "not-linearizable", "reason": "key k1 is not linearizable", "time_ns": 4_000_000_000u64});
    });
    let r = build(&dir);
    assert_eq!(r.verdict(), RunVerdict::Fail);
    let e = r.stopped_early.clone().expect("stopped early");
    assert_eq!(e.label, "not-linearizable");
    assert_eq!(e.after_fault_phase_s, Some(2.0));
    let written = report::write(&dir, &r).unwrap();
    assert!(report::summary::text(&r, &written.html).contains("stopped early: not-linearizable"));
    assert!(std::fs::read_to_string(&written.html)
        .unwrap()
        .contains("stopped early"));

    // A clean history whose outcome claims an early stop for a violation nobody can see: the tool is wrong.
    let (dir, _) = synth(tmp.path(), "early-unconfirmed", &Synth::default());
    patch_json(&dir.join("outcome.json"), |o| {
        o["stopped_early"] =
            serde_json::json!({"label": "not-linearizable", "reason": "?", "time_ns": 1u64});
    });
    let r = build(&dir);
    assert_eq!(r.verdict(), RunVerdict::ToolError);
    assert!(
        r.tool_errors.iter().any(|e| e.contains("stopped early")),
        "{:?}",
        r.tool_errors
    );
}
