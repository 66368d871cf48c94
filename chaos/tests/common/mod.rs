//! Shared by the chaos integration tests.
#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::path::{Path, PathBuf};
use std::sync::Once;

/// The raft-node binary of this build profile, next to the chaos binary. Built once per test process (with the
/// clock shim library) when missing or stale: `cargo test -p chaos` alone does not build other packages' binaries.
pub fn node_binary() -> PathBuf {
    static BUILD: Once = Once::new();
    let chaos = Path::new(env!("CARGO_BIN_EXE_chaos"));
    BUILD.call_once(|| {
        let release = chaos
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "release");
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "-q",
            "-p",
            "raft-node",
            "--bin",
            "raft-node",
            "-p",
            "clock-shim",
        ]);
        cmd.current_dir(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root"),
        );
        if release {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().expect("run cargo build").success(),
            "building raft-node failed"
        );
    });
    chaos.with_file_name("raft-node")
}

/// Whether this test may run here: `Err(reason)` skips it with a printed reason, except in CI (`CI` set), where
/// a missing package or privilege is a failure: CI installs what the tests need and runs as root.
pub fn require(test: &str, check: Result<(), String>) -> bool {
    match check {
        Ok(()) => true,
        Err(reason) if std::env::var_os("CI").is_some() => {
            panic!("{test} cannot run in CI: {reason}")
        }
        Err(reason) => {
            println!("skipping {test}: {reason}");
            false
        }
    }
}

/// Root, for tests that make namespaces or firewall tables.
pub fn root() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err("needs root".into())
    }
}

/// Root, /dev/fuse and fusermount3, for tests that mount the disk layer.
pub fn fuse() -> Result<(), String> {
    root()?;
    if !Path::new("/dev/fuse").exists() {
        return Err("no /dev/fuse".into());
    }
    std::process::Command::new("fusermount3")
        .arg("-V")
        .output()
        .map(|_| ())
        .map_err(|_| "fusermount3 is not installed (apt-get install fuse3)".into())
}

/// [`require`]s `check`, then builds the node and disk-layer binaries the shipped plans run with.
pub fn ready_with(test: &str, check: Result<(), String>) -> bool {
    if !require(test, check) {
        return false;
    }
    node_binary();
    diskfs_binary();
    true
}

/// Writes `body` to `dir/plan.toml`, runs `chaos run` on it (quiet, JSON summary, run folders in `dir/results`)
/// and returns the output and the parsed summary; panics with both streams if there is no summary.
pub fn run_plan(dir: &Path, body: &str) -> (std::process::Output, serde_json::Value) {
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, body).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args([
            "run",
            plan.to_str().unwrap(),
            "--quiet",
            "--json",
            "--out",
            "results",
        ])
        .current_dir(dir)
        .output()
        .expect("run chaos");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}):\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, summary)
}

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Builds the disk layer's binary (`chaos-diskfs`) next to the chaos binary, where chaos looks for it.
pub fn diskfs_binary() {
    let release = Path::new(env!("CARGO_BIN_EXE_chaos"))
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "release");
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "diskfs", "--bin", "chaos-diskfs"])
        .current_dir(repo());
    if release {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().expect("run cargo build").success(),
        "building chaos-diskfs failed"
    );
}

/// One cluster at a time within a test binary: on two cores, concurrent clusters would make elections the
/// load's doing rather than the plan's.
pub static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A finished run of a shipped plan; its results folder lives as long as this value.
pub struct ShippedRun {
    /// chaos's exit code (-1 when killed by a signal).
    pub code: i32,
    /// The run's report.json.
    pub report: serde_json::Value,
    /// The run folder.
    pub folder: PathBuf,
    _out: tempfile::TempDir,
}

impl ShippedRun {
    /// A file of the run folder as text (empty when missing).
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.folder.join(name)).unwrap_or_default()
    }

    /// The nodes' logs, concatenated.
    pub fn node_logs(&self) -> String {
        std::fs::read_dir(self.folder.join("nodes"))
            .expect("nodes folder")
            .flatten()
            .filter_map(|node| std::fs::read_to_string(node.path().join("node.log")).ok())
            .collect()
    }

    /// The checks that did not pass, as "id (verdict): message" lines.
    pub fn failed_checks(&self) -> Vec<String> {
        self.report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| c["verdict"] != "pass")
            .map(|c| format!("{} ({}): {}", c["id"], c["verdict"], c["message"]))
            .collect()
    }
}

/// Runs `configs/<plan>.toml` with `seed` (and a planted raft-node bug), one run at a time; panics when the run
/// left no report.
pub fn run_shipped(plan: &str, seed: u64, bug: Option<&str>) -> ShippedRun {
    node_binary();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().expect("temp dir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_chaos"));
    cmd.arg("run")
        .arg(repo().join("configs").join(format!("{plan}.toml")))
        .args(["--quiet", "--seed", &seed.to_string(), "--out"])
        .arg(out.path());
    if let Some(bug) = bug {
        cmd.args(["--node-arg=--bug", &format!("--node-arg={bug}")]);
    }
    let output = cmd.output().expect("run chaos");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let folder = std::fs::read_dir(out.path())
        .expect("results folder")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("report.json").exists())
        .unwrap_or_else(|| panic!("{plan} seed {seed}: no run folder with a report\n{stderr}"));
    let report =
        serde_json::from_slice(&std::fs::read(folder.join("report.json")).expect("report"))
            .expect("report.json");
    ShippedRun {
        code: output.status.code().unwrap_or(-1),
        report,
        folder,
        _out: out,
    }
}
