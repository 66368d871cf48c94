//! Disk faults end to end: the shipped disk plans run through the chaos binary against raft-node, with the
//! `chaos-diskfs` layer mounted over every data dir. The power-cut plan passes on raft-node and catches the
//! planted `no-fsync` bug, which the same cadence of plain kills cannot; the degraded-disk plan passes, a
//! node stopping on ENOSPC included. Needs root and fuse3 (skips otherwise, except under CI).
//! `CHAOS_DISK_SECONDS` lengthens the fault phase (at least the plans' 12 s).

mod common;
use common::{fuse, ready_with};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

/// A shipped plan, with the fault phase lengthened by `CHAOS_DISK_SECONDS` and `edit` applied.
fn plan(name: &str, edit: impl Fn(String) -> String) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    if let Ok(s) = std::env::var("CHAOS_DISK_SECONDS") {
        let secs: u64 = s.parse().expect("CHAOS_DISK_SECONDS: whole seconds");
        let duration = text
            .lines()
            .find(|l| l.starts_with("duration = "))
            .unwrap()
            .to_string();
        let planned: u64 = duration
            .trim_start_matches("duration = \"")
            .trim_end_matches("s\"")
            .parse()
            .unwrap();
        text = text.replacen(
            &duration,
            &format!("duration = \"{}s\"", secs.max(planned)),
            1,
        );
    }
    edit(text)
}

/// Runs `chaos run` on `body` with `args`; returns the exit code, the summary and the run folder.
fn run(dir: &Path, body: &str, args: &[&str]) -> (Option<i32>, serde_json::Value, PathBuf) {
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, body).unwrap();
    let output = Command::new(CHAOS)
        .args([
            "run",
            plan.to_str().unwrap(),
            "--quiet",
            "--json",
            "--out",
            "results",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}):\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let run_dir = dir.join(summary["run_dir"].as_str().unwrap());
    assert!(
        !mounted_under(dir),
        "a disk layer is still mounted under {}",
        dir.display()
    );
    (output.status.code(), summary, run_dir)
}

fn mounted_under(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.contains(&*dir.to_string_lossy()))
}

fn events(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const NO_FSYNC: [&str; 2] = ["--node-arg=--bug", "--node-arg=no-fsync"];

#[test]
fn power_cuts_pass_on_raft_node_and_events_say_what_was_rolled_back() {
    if !ready_with("disk power cut", fuse()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, s, run_dir) = run(dir.path(), &plan("disk-power-cut.toml", |t| t), &[]);
    assert_eq!(s["verdict"], "pass", "{s:#}");
    assert_eq!(code, Some(0));
    let cuts: Vec<_> = events(&run_dir)
        .into_iter()
        .filter(|e| e["kind"] == "lose-unsynced" && e["event"] == "start")
        .collect();
    assert_eq!(cuts.len(), 4, "{cuts:?}");
    for cut in &cuts {
        for node in cut["nodes"].as_array().unwrap() {
            let detail = &cut["detail"][format!("n{node}")];
            assert!(
                detail["bytes"].is_u64() && detail["files"].is_u64(),
                "{cut}"
            );
        }
    }
    // The layer is gone and the real files are back in data/.
    assert!(run_dir.join("nodes/n1/data/wal").is_dir());
    assert!(!run_dir.join("nodes/n1/data.backing").exists());
}

#[test]
fn no_fsync_is_caught_by_power_cuts_and_not_by_kills() {
    if !ready_with("disk no-fsync", fuse()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, s, _) = run(dir.path(), &plan("disk-power-cut.toml", |t| t), &NO_FSYNC);
    assert_eq!(s["verdict"], "fail", "{s:#}");
    assert_eq!(code, Some(1));
    let violations = s["violations"].to_string();
    assert!(
        violations.contains("lost") || violations.contains("not-linearizable"),
        "{s:#}"
    );
    // Same cadence, plain SIGKILL: the page cache survives the process, so the missing fsync is invisible.
    let kill_only = plan("disk-power-cut.toml", |t| {
        t.replace("kind = \"lose-unsynced\"", "kind = \"kill\"")
            .replace(
                "name = \"disk-power-cut\"",
                "name = \"disk-power-cut-kill\"",
            )
    });
    assert!(!kill_only.contains("kind = \"lose-unsynced\""));
    let (code, s, _) = run(dir.path(), &kill_only, &NO_FSYNC);
    assert_eq!(s["verdict"], "pass", "{s:#}");
    assert_eq!(code, Some(0));
}

#[test]
fn a_degraded_disk_passes_and_a_stop_on_enospc_is_no_crash() {
    if !ready_with("disk degraded", fuse()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, s, run_dir) = run(dir.path(), &plan("disk-degraded.toml", |t| t), &[]);
    assert_eq!(s["verdict"], "pass", "{s:#}");
    assert_eq!(code, Some(0));
    let events = events(&run_dir);
    let of = |kind: &str, phase: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind && e["event"] == phase)
            .unwrap_or_else(|| panic!("no {phase} of {kind}"))
            .clone()
    };
    let full_end = of("disk-full", "end");
    let node = full_end["nodes"][0].as_u64().unwrap();
    assert_eq!(
        full_end["detail"][format!("n{node}")]["stopped_on_enospc"],
        true,
        "raft-node stops on ENOSPC (fail-stop) and is restarted: {full_end}"
    );
    let log = std::fs::read_to_string(run_dir.join(format!("nodes/n{node}/node.log"))).unwrap();
    assert!(log.contains("No space left on device"), "{log}");
    let corrupt = of("corrupt", "start");
    let node = corrupt["nodes"][0].as_u64().unwrap();
    assert!(
        corrupt["detail"][format!("n{node}")]["offset"].is_u64(),
        "{corrupt}"
    );
    assert!(of("slow-fsync", "start")["detail"]
        .to_string()
        .contains("200"));
    assert!(of("torn-write", "start")["detail"].is_object());
}
