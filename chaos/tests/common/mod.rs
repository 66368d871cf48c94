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
