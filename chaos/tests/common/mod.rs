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
