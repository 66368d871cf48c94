//! `chaos report` and `chaos compare` as a user runs them.

mod report_synth;

use std::path::Path;
use std::process::{Command, Output};

use report_synth::Synth;

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn chaos(args: &[&str], dir: &Path) -> Output {
    Command::new(CHAOS)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run chaos")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn chaos_report_prints_the_verdict_first_and_exits_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    Synth::default().write(&results.join("pass"));
    Synth {
        stale_read: true,
        ..Synth::default()
    }
    .write(&results.join("fail"));
    Synth {
        fault_failed: true,
        ..Synth::default()
    }
    .write(&results.join("tool"));

    let out = chaos(&["report", "results/pass"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("PASS: synthetic (seed 7)"), "{stdout}");
    assert!(
        stdout.contains("availability  outside faults 100.0%"),
        "{stdout}"
    );
    assert!(stdout.contains("p50 "), "{stdout}");
    assert!(stdout.contains("1 leader change(s)"), "{stdout}");
    assert!(stdout.contains("no acknowledged write lost"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("results/pass/report.html"),
        "{stdout}"
    );
    assert!(results.join("index.html").is_file());

    let out = chaos(&["report", "results/fail"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("FAIL"));
    assert!(results.join("fail/counterexample.html").is_file());

    let out = chaos(&["report", "results/tool", "--json"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints report.json");
    assert_eq!(json["verdict"], "tool-error");
    assert_eq!(json["schema_version"], 1);
}

#[test]
fn chaos_report_on_a_folder_without_a_manifest_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
    let out = chaos(&["report", "empty"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("manifest.json") && stderr.contains("missing"),
        "{stderr}"
    );
}

#[test]
fn chaos_compare_prints_a_table_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    Synth::default().write(&tmp.path().join("a"));
    Synth {
        election_ms: 1200,
        ..Synth::default()
    }
    .write(&tmp.path().join("b"));
    let out = chaos(&["compare", "a", "b"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("longest without a leader (ms)"), "{stdout}");
    let out = chaos(&["compare", "a", "b", "--json"], tmp.path());
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gap = json["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["figure"] == "longest without a leader")
        .unwrap();
    assert!(gap["change"].as_f64().unwrap() >= 500.0, "{gap}");
    let out = chaos(&["compare", "a", "missing"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
}
