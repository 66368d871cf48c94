//! `chaos soak crash-cycles` end to end: two short crash cycles against a real raft-node cluster on 127.0.0.1,
//! and the JSON report the command prints. Not timed: it checks what happened, not how fast.

mod common;

use std::process::Command;

#[test]
fn two_crash_cycles_against_raft_node_lose_no_acknowledged_write() {
    let node = common::node_binary();
    let out = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args([
            "soak",
            "crash-cycles",
            "--cycles",
            "2",
            "--seed",
            "7",
            "--json",
        ])
        .arg("--binary")
        .arg(&node)
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run chaos");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "chaos soak failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON report ({e}):\n{stdout}"));
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["soak"], "crash-cycles");
    assert_eq!(report["target"], "raft-node");
    assert_eq!(report["seed"], 7);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["cycles_planned"], 2);
    assert_eq!(report["cycles"], 2, "{report:#}");
    // Every node of the 3 was killed and restarted in each cycle.
    assert_eq!(report["kills"], 6);
    assert_eq!(report["restarts"], 6);
    assert_eq!(report["cycle_records"].as_array().map(Vec::len), Some(2));
    for record in report["cycle_records"].as_array().expect("cycle records") {
        let mut killed: Vec<u64> = record["killed"]
            .as_array()
            .expect("killed")
            .iter()
            .map(|v| v.as_u64().expect("node id"))
            .collect();
        killed.sort_unstable();
        assert_eq!(killed, vec![1, 2, 3], "{record}");
    }
    let writes = &report["writes"];
    let n = |v: &serde_json::Value| v.as_u64().expect("a count");
    assert!(
        n(&writes["acknowledged"]) > 0,
        "no write was acknowledged: {report:#}"
    );
    assert_eq!(
        n(&writes["attempted"]),
        n(&writes["acknowledged"]) + n(&writes["unknown"]) + n(&writes["failed"])
    );
    // 4 writers with 4 keys each, every key read back and verified after each of the 2 cycles and at the end.
    assert_eq!(report["keys"], 16);
    assert_eq!(report["key_checks"], 48);
    assert_eq!(report["unreadable"], 0);
    assert_eq!(report["losses"], 0, "{report:#}");
    assert_eq!(report["failed_writes_visible"], 0);
    assert_eq!(report["foreign_values"], 0);
    // The report is also kept in the run folder.
    let run_dir = report["run_dir"].as_str().expect("run_dir");
    let kept: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(run_dir).join("soak.json"))
            .expect("soak.json in the run folder"),
    )
    .expect("soak.json is JSON");
    assert_eq!(kept["writes"], report["writes"]);
}

#[test]
fn bad_flags_are_a_setup_error_with_exit_2() {
    let out = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["soak", "crash-cycles", "--cycles", "0", "--json"])
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run chaos");
    assert_eq!(output.status.code(), Some(2));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("a JSON error on stdout");
    assert_eq!(report["exit"], 2);
    assert!(
        report["error"].as_str().unwrap_or("").contains("--cycles"),
        "{report}"
    );
}
