//! etcd as a target, end to end: real etcd processes (Debian's `etcd-server`) driven by `chaos run`. Process
//! faults on loopback; partitions on network namespaces (root). Skips with a reason where etcd or root is
//! missing, except in CI, where both are required.

mod common;
use common::{require, run_plan};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn etcd_installed() -> Result<(), String> {
    chaos::targets::etcd::find_binary()
        .map(|_| ())
        .ok_or_else(|| "etcd is not installed (apt-get install etcd-server)".into())
}

fn run_dir(dir: &Path, summary: &serde_json::Value) -> PathBuf {
    dir.join(summary["run_dir"].as_str().unwrap())
}

const KILL_PLAN: &str = r#"
name = "etcd-kill"
seed = 5
duration = "6s"
warmup = "1s"
recovery = "3s"

[cluster]
target = "etcd"
nodes = 3
heartbeat_interval = "50ms"
election_timeout_min = "300ms"
election_timeout_max = "600ms"

[workload]
clients = 4
rate = 100
keys = 3
ops_per_key = 80

[[faults]]
kind = "kill"
target = "leader"
at = ["500ms"]
duration = "1500ms"

[[faults]]
kind = "pause"
target = "random"
at = ["3s"]
duration = "1s"

# The status watcher works through etcd's status API too.
[[faults]]
name = "pause-new-follower"
kind = "pause"
target = "follower"
on = "new-leader"
duration = "300ms"
"#;

#[test]
fn a_kill_and_pause_plan_passes_against_etcd() {
    if !require("etcd kill plan", etcd_installed()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (output, s) = run_plan(dir.path(), KILL_PLAN);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(s["verdict"], "pass", "{s:#}\n{stderr}");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(s["target"], "etcd");
    assert!(s["ok"].as_u64().unwrap() >= 100, "hundreds of ops: {s:#}");
    let run = run_dir(dir.path(), &s);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["target_version"]
            .as_str()
            .unwrap()
            .contains("etcd Version"),
        "{manifest:#}"
    );
    let status = std::fs::read_to_string(run.join("status.jsonl")).unwrap();
    assert!(
        status.contains("\"role\":\"leader\""),
        "status polls saw a leader"
    );
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    let reactions = events.matches("\"name\":\"pause-new-follower\"").count() / 2;
    assert!(
        events.contains("\"what\":\"new-leader\"") && reactions >= 1,
        "the leader's kill ends in an election the watcher sees, and a follower of the new leader is paused: {events}"
    );
    assert_eq!(
        events.matches("\"event\":\"start\"").count(),
        2 + reactions,
        "{events}"
    );
}

#[test]
fn a_kill_and_partition_plan_passes_against_etcd_on_namespaces() {
    if !require(
        "etcd partition plan",
        etcd_installed().and_then(|()| common::root()),
    ) {
        return;
    }
    let plan = KILL_PLAN
        .replace("name = \"etcd-kill\"", "name = \"etcd-partition\"")
        .replace("nodes = 3\n", "nodes = 3\nhosts = \"netns\"\n")
        .replace(
            "kind = \"pause\"\ntarget = \"random\"",
            "kind = \"partition\"\ntopology = \"isolate\"\ntarget = \"leader\"",
        );
    let dir = tempfile::tempdir().unwrap();
    let (output, s) = run_plan(dir.path(), &plan);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(s["verdict"], "pass", "{s:#}\n{stderr}");
    let run = run_dir(dir.path(), &s);
    let manifest = std::fs::read_to_string(run.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("198.1"),
        "nodes had namespace addresses: {manifest}"
    );
    // Nothing is left behind: no namespace, bridge or firewall table of the run.
    let namespaces = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let ours: Vec<&str> = namespaces
        .lines()
        .filter(|l| l.starts_with("chaos"))
        .collect();
    assert!(ours.is_empty(), "left behind: {ours:?}");
}

#[test]
fn etcd_refuses_clock_faults_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("clock.toml");
    std::fs::write(
        &plan,
        "name = \"c\"\nduration = \"2s\"\n[cluster]\ntarget = \"etcd\"\n[[faults]]\nkind = \"clock-bump\"\noffset = \"+5s\"\nevery = \"1s\"\n",
    )
    .unwrap();
    let out = Command::new(CHAOS)
        .args(["run", plan.to_str().unwrap(), "--quiet"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vDSO") && stderr.contains("faults[0].kind"),
        "{stderr}"
    );
}
