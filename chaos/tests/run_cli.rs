//! `chaos run` and `chaos validate` end to end, against real raft-node processes on 127.0.0.1.

mod common;
use common::node_binary;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn write_plan(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let binary = node_binary();
    let text = body.replace("@BINARY@", &binary.display().to_string());
    std::fs::write(&path, text).expect("write plan");
    path
}

fn chaos(args: &[&str], dir: &Path) -> Output {
    Command::new(CHAOS)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run chaos")
}

fn summary(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}):\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

const SHORT_PLAN: &str = r#"
name = "short"
seed = 11
duration = "5s"
warmup = "1s"
recovery = "2s"

[cluster]
binary = "@BINARY@"
nodes = 3

[workload]
clients = 4
rate = 120
keys = 3
ops_per_key = 100

[[faults]]
kind = "kill"
target = "leader"
at = ["500ms"]
duration = "1s"

[[faults]]
kind = "pause"
target = "leader"
at = ["2500ms"]
duration = "1s"

[[faults]]
kind = "terminate"
target = "random"
at = ["4s"]
duration = "500ms"
"#;

#[test]
fn a_short_plan_with_kills_and_pauses_passes_with_a_checked_history() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "short", SHORT_PLAN);
    let output = chaos(
        &[
            "run",
            plan.to_str().unwrap(),
            "--quiet",
            "--json",
            "--out",
            "results",
        ],
        dir.path(),
    );
    let s = summary(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(s["verdict"], "pass", "{s:#}\n{stderr}");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(s["linearizability"], "linearizable");
    assert!(s["ok"].as_u64().unwrap() >= 200, "hundreds of ops: {s:#}");
    let run_dir = PathBuf::from(s["run_dir"].as_str().unwrap());
    let run_dir = if run_dir.is_absolute() {
        run_dir
    } else {
        dir.path().join(run_dir)
    };
    for file in [
        "manifest.json",
        "history.jsonl",
        "events.jsonl",
        "status.jsonl",
        "check.json",
        "outcome.json",
        "report.json",
        "report.html",
        "junit.xml",
        "nodes/n1/node.log",
    ] {
        assert!(
            run_dir.join(file).exists(),
            "{file} missing in {}",
            run_dir.display()
        );
    }
    assert!(
        dir.path().join("results/latest").exists(),
        "results/latest points to the run"
    );
    assert!(
        dir.path().join("results/index.html").exists(),
        "the results index"
    );
    let outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("outcome.json")).unwrap())
            .unwrap();
    assert_eq!(outcome["convergence"]["agree"], true, "{outcome:#}");
    // Every fault appears in events.jsonl with start, end and targets.
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    let starts = events
        .lines()
        .filter(|l| l.contains("\"event\":\"start\""))
        .count();
    let ends = events
        .lines()
        .filter(|l| l.contains("\"event\":\"end\""))
        .count();
    assert_eq!((starts, ends), (3, 3), "{events}");
    // The manifest pins the seed and the timeline.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["seed"], 11);
    // Issue 12 item 15: the commit comes from the build, not from the folder chaos runs in (here a temp dir
    // outside any repository), and the target's version is recorded.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    if head.status.success() {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        let commit = manifest["chaos_commit"].as_str().unwrap();
        assert!(commit.starts_with(&head), "{commit} vs HEAD {head}");
    }
    assert!(
        manifest["target_version"]
            .as_str()
            .unwrap()
            .contains("raft-node"),
        "{}",
        manifest["target_version"]
    );
    assert_eq!(manifest["timeline"].as_array().unwrap().len(), 3);
    // The history is re-checkable with `chaos check`.
    let check = chaos(
        &["check", run_dir.join("history.jsonl").to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn bad_plans_exit_2_naming_the_problem_and_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown-key",
            "name = \"x\"\nduration = \"5s\"\n[cluster]\nnodez = 3\n",
            "line 4, column 1",
        ),
        (
            "bad-duration",
            "name = \"x\"\nduration = \"five seconds\"\n",
            "expected a duration like",
        ),
        (
            "missing-binary",
            "name = \"x\"\nduration = \"5s\"\n[cluster]\nbinary = \"/nonexistent/raft-node\"\n",
            "cluster.binary",
        ),
        (
            "reads-from-missing-node",
            "name = \"x\"\nduration = \"5s\"\n[workload]\nreads_from = \"n4\"\n",
            "workload.reads_from: n4 does not exist",
        ),
        (
            "reads-from-nonsense",
            "name = \"x\"\nduration = \"5s\"\n[workload]\nreads_from = \"followers\"\n",
            "expected \"leader\", \"any-node\" or a node like \"n2\"",
        ),
        (
            "attempt-longer-than-request",
            "name = \"x\"\nduration = \"5s\"\n[workload]\nrequest_timeout = \"1s\"\nattempt_timeout = \"2s\"\n",
            "workload.attempt_timeout: expected at least 1ms and at most request_timeout",
        ),
        (
            "read-after-ack-nonsense",
            "name = \"x\"\nduration = \"5s\"\n[workload]\nread_after_ack = \"sometimes\"\n",
            "read_after_ack",
        ),
        (
            "stop-early-not-bool",
            "name = \"x\"\nduration = \"5s\"\nstop_early = \"yes\"\n",
            "stop_early",
        ),
    ];
    for (name, body, needle) in cases {
        let plan = write_plan(dir.path(), name, body);
        for cmd in ["run", "validate"] {
            if name == "missing-binary" && cmd == "validate" {
                continue; // validate only parses; the binary is checked when a run sets up.
            }
            let mut args = vec![cmd, plan.to_str().unwrap()];
            if cmd == "run" {
                args.push("--quiet");
            }
            let output = chaos(&args, dir.path());
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{cmd} {name}: {stderr}");
            assert!(
                stderr.contains(needle),
                "{cmd} {name}: expected {needle:?} in:\n{stderr}"
            );
            assert!(
                stderr.contains(&format!("{name}.toml")),
                "{cmd} {name}: the file is named:\n{stderr}"
            );
        }
    }
}

#[test]
fn validate_prints_the_same_timeline_for_the_same_seed() {
    let plan = repo().join("configs/process-faults.toml");
    let a = chaos(
        &["validate", plan.to_str().unwrap(), "--seed", "5"],
        &repo(),
    );
    let b = chaos(
        &["validate", plan.to_str().unwrap(), "--seed", "5"],
        &repo(),
    );
    let c = chaos(
        &["validate", plan.to_str().unwrap(), "--seed", "6"],
        &repo(),
    );
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    assert!(String::from_utf8_lossy(&a.stdout).contains("kill"));
}

/// The one file at `rest` under a run folder in `results` (the run folder's name has a timestamp).
fn glob_one(results: &Path, rest: &str) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(results)
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.file_type().unwrap().is_dir()) // not the `latest` link
        .map(|e| e.path().join(rest))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "{rest} under {}: {runs:?}",
        results.display()
    );
    runs.into_iter().next().unwrap()
}

fn node_processes_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("raft-node") && cmdline.contains(&dir.display().to_string()) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

#[test]
fn sigint_leaves_no_node_process_behind() {
    interrupt_with(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigterm_and_sighup_end_a_run_like_sigint_and_keep_what_was_recorded() {
    // Issue 12 item 14: these used to exit 143 / 129 with no summary (e.g. under `timeout` in CI).
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        let dir = interrupt_with(signal);
        let run = std::fs::read_dir(dir.path().join("results"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name() != "latest" && e.path().is_dir())
            .expect("a run folder")
            .path();
        let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
        assert!(
            history.contains("\"type\":\"ok\""),
            "{signal}: ops were recorded"
        );
        let outcome: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("outcome.json")).unwrap())
                .unwrap();
        assert_eq!(outcome["interrupted"], true, "{signal}: {outcome}");
    }
}

/// Starts a long run, interrupts it with `signal` once it is under way, and checks it ended as interrupted
/// (exit 130, saying so) with no node process left. Returns the test folder.
fn interrupt_with(signal: nix::sys::signal::Signal) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "long",
        &SHORT_PLAN.replace("duration = \"5s\"", "duration = \"60s\""),
    );
    let child = Command::new(CHAOS)
        .args(["run", plan.to_str().unwrap(), "--quiet", "--out"])
        .arg(dir.path().join("results"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the nodes are up (their processes exist), then interrupt.
    let give_up = Instant::now() + Duration::from_secs(30);
    while node_processes_under(dir.path()).len() < 3 {
        assert!(Instant::now() < give_up, "nodes never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{signal}: {stderr}");
    assert!(
        stderr.contains(&format!("interrupted by {signal}")),
        "{stderr}"
    );
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let left = node_processes_under(dir.path());
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "node processes outlived chaos: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    dir
}

#[test]
fn a_closed_stdout_is_a_normal_end_not_a_panic() {
    // Issue 12 item 8: `chaos ... | head` used to panic on the broken pipe (exit 101).
    let mut child = Command::new(CHAOS)
        .args(["validate", "--json"])
        .arg(repo().join("configs/process-faults.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // The reader goes away before chaos writes.
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const STALE_READ_PLAN: &str = r#"
name = "stale-read"
seed = 7
duration = "6s"
warmup = "1s"
recovery = "2s"

[cluster]
binary = "@BINARY@"
nodes = 3
extra_args = [@BUG@]

[workload]
clients = 6
rate = 300
keys = 2
ops_per_key = 200
mix = { read = 0.6, write = 0.4, cas = 0.0 }
reads_from = "any-node"

[[faults]]
kind = "pause"
target = "leader"
every = "1500ms"
duration = "800ms"

[[faults]]
kind = "kill"
target = "leader"
at = ["3s"]
duration = "1s"
"#;

#[test]
fn the_pipeline_fails_a_buggy_cluster_and_passes_the_same_plan_without_the_bug() {
    let dir = tempfile::tempdir().unwrap();
    let buggy = write_plan(
        dir.path(),
        "buggy",
        &STALE_READ_PLAN.replace("@BUG@", "\"--bug\", \"stale-read\""),
    );
    let output = chaos(
        &["run", buggy.to_str().unwrap(), "--quiet", "--json"],
        dir.path(),
    );
    let s = summary(&output);
    assert_eq!(s["verdict"], "fail", "stale reads must be caught: {s:#}");
    assert_eq!(s["linearizability"], "not linearizable");
    assert_eq!(output.status.code(), Some(1));
    let run_dir = dir.path().join(s["run_dir"].as_str().unwrap());
    let html = std::fs::read_to_string(run_dir.join("counterexample.html"))
        .expect("a counterexample page");
    assert!(
        html.contains("<svg") || html.contains("<html"),
        "a self-contained page"
    );

    let correct = write_plan(dir.path(), "correct", &STALE_READ_PLAN.replace("@BUG@", ""));
    let output = chaos(
        &["run", correct.to_str().unwrap(), "--quiet", "--json"],
        dir.path(),
    );
    let s = summary(&output);
    assert_eq!(
        s["verdict"],
        "pass",
        "the same plan without the bug passes: {s:#}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn every_shipped_plan_parses() {
    let mut count = 0;
    for entry in std::fs::read_dir(repo().join("configs")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let output = chaos(&["validate", path.to_str().unwrap()], &repo());
            assert_eq!(
                output.status.code(),
                Some(0),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            count += 1;
        }
    }
    assert!(count >= 5, "configs/ ships plans for every fault kind");
}

#[test]
fn bench_election_measures_leader_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let binary = node_binary();
    let output = chaos(
        &[
            "bench",
            "election",
            "--trials",
            "2",
            "--json",
            "--binary",
            binary.to_str().unwrap(),
            "--out",
            "results",
        ],
        dir.path(),
    );
    let figures = summary(&output);
    // One row per target and fault (the default is raft-node, kill); its leader figure counts every trial.
    let row = &figures["rows"][0];
    assert_eq!(row["fault"], "kill", "{figures:#}");
    assert_eq!(row["leader"]["n"], 2, "{figures:#}");
    assert_eq!(row["no_leader"], 0, "{figures:#}");
    let p50 = row["leader"]["p50_ms"].as_f64().unwrap();
    // No follower times out before 150 ms (the minimum election timeout) after the last heartbeat it got, and
    // that heartbeat left at most 50 ms (the interval) before the kill: a new leader needs at least ~100 ms.
    // Nor should it take seconds here.
    assert!((90.0..5_000.0).contains(&p50), "{figures:#}");
}

/// Many concurrent cas ops on few keys, retries inside ops, reads right after acknowledged writes from another
/// client spread over the nodes, and a pause of the leader late in a fault phase that the buggy run never reaches.
const EARLY_STOP_PLAN: &str = r#"
name = "early-stop"
seed = 5
duration = "10s"
warmup = "1s"
recovery = "2s"
stop_early = true

[cluster]
binary = "@BINARY@"
nodes = 3
extra_args = [@BUG@]

[workload]
clients = 8
rate = 400
keys = 2
ops_per_key = 40
mix = { read = 0.3, write = 0.1, cas = 0.6 }
request_timeout = "1s"
attempt_timeout = "250ms"
reads_from = "any-node"
read_after_ack = "other-client"

[[faults]]
kind = "pause"
target = "leader"
at = ["8s"]
duration = "1s"
"#;

#[test]
fn stop_early_fails_a_non_atomic_cas_before_the_planned_end_and_the_same_plan_passes_without_the_bug(
) {
    let dir = tempfile::tempdir().unwrap();
    let buggy = write_plan(
        dir.path(),
        "buggy",
        &EARLY_STOP_PLAN.replace("@BUG@", "\"--bug\", \"non-atomic-cas\""),
    );
    let output = chaos(
        &["run", buggy.to_str().unwrap(), "--quiet", "--json"],
        dir.path(),
    );
    let s = summary(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(s["verdict"], "fail", "{s:#}\n{stderr}");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(s["violations"][0], "not-linearizable", "{s:#}");
    assert_eq!(s["stopped_early"]["label"], "not-linearizable", "{s:#}");
    // Planned: 1 s warm-up + 10 s of faults + 2 s recovery; it stopped well before.
    let planned = 13.0;
    assert!(
        s["seconds"].as_f64().unwrap() < planned - 3.0,
        "stopped at {} s of a {planned} s plan",
        s["seconds"]
    );
    assert!(s["first_violation_s"].is_number(), "{s:#}");
    let run_dir = dir.path().join(s["run_dir"].as_str().unwrap());
    // The report rebuilt from the folder alone says the same, for people.
    let rebuilt = chaos(&["report", run_dir.to_str().unwrap()], dir.path());
    let text = String::from_utf8_lossy(&rebuilt.stdout);
    assert_eq!(rebuilt.status.code(), Some(1), "{text}");
    assert!(text.starts_with("FAIL [not linearizable]"), "{text}");
    assert!(text.contains("stopped early: not-linearizable"), "{text}");
    for f in [
        "manifest.json",
        "history.jsonl",
        "events.jsonl",
        "status.jsonl",
        "check.json",
        "outcome.json",
        "report.json",
        "report.html",
        "junit.xml",
        "counterexample.html",
    ] {
        assert!(run_dir.join(f).is_file(), "{f} missing after an early stop");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["violations"],
        serde_json::json!(["not-linearizable"])
    );
    assert_eq!(report["stopped_early"]["label"], "not-linearizable");
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(events.contains("\"stopped-early\""), "{events}");
    assert!(
        node_processes_under(dir.path()).is_empty(),
        "every node was stopped"
    );

    let correct = write_plan(dir.path(), "correct", &EARLY_STOP_PLAN.replace("@BUG@", ""));
    let output = chaos(
        &["run", correct.to_str().unwrap(), "--quiet", "--json"],
        dir.path(),
    );
    let s = summary(&output);
    assert_eq!(
        s["verdict"],
        "pass",
        "the same plan without the bug passes: {s:#}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(s["violations"], serde_json::json!([]));
    assert!(s["stopped_early"].is_null());
    assert!(s["seconds"].as_f64().unwrap() >= planned);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn stop_early_ends_a_run_soon_after_a_node_dies_on_its_own_with_the_node_crashed_label() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "crash",
        &SHORT_PLAN
            .replace("duration = \"5s\"", "duration = \"40s\"")
            .replace("recovery = \"2s\"", "recovery = \"2s\"\nstop_early = true"),
    );
    let child = Command::new(CHAOS)
        .args(["run", plan.to_str().unwrap(), "--quiet", "--json", "--out"])
        .arg(dir.path().join("results"))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let give_up = Instant::now() + Duration::from_secs(30);
    while node_processes_under(dir.path()).len() < 3 {
        assert!(Instant::now() < give_up, "nodes never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Well into the fault phase (after every planned fault, the last ending at 4.5 s), n3 dies: not a planned fault.
    std::thread::sleep(Duration::from_secs(8));
    let victim = node_processes_under(dir.path())
        .into_iter()
        .find(|p| p.contains("--id 3 "))
        .expect("n3 runs");
    let pid: i32 = victim.split(':').next().unwrap().parse().unwrap();
    // Its last words, as a node that stops on an error writes them: the early stop's reason quotes them.
    let log = glob_one(&dir.path().join("results"), "nodes/n3/node.log");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(file, "ERROR node stopped error=planted by the test").unwrap();
    drop(file);
    let killed_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let s = summary(&output);
    assert_eq!(output.status.code(), Some(1), "{s:#}");
    assert_eq!(s["stopped_early"]["label"], "node-crashed", "{s:#}");
    assert!(
        s["stopped_early"]["reason"]
            .as_str()
            .unwrap()
            .ends_with("its log's last error: ERROR node stopped error=planted by the test"),
        "{s:#}"
    );
    assert!(
        s["violations"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("node-crashed")),
        "{s:#}"
    );
    assert!(
        killed_at.elapsed() < Duration::from_secs(15),
        "the run went on for {:?} after the crash",
        killed_at.elapsed()
    );
    let first = s["first_violation_s"].as_f64().expect("dated");
    assert!((4.0..20.0).contains(&first), "{first}");
    assert!(node_processes_under(dir.path()).is_empty());
}

/// The faults of the reactive test, after [`SHORT_PLAN`]'s cluster and workload.
const REACTIVE_FAULTS: &str = r#"
[[faults]]
name = "kill-leader"
kind = "kill"
target = "leader"
at = ["500ms", "3s"]
duration = "500ms"

[[faults]]
name = "restart-voter"
kind = "kill"
target = "follower"
on = "new-leader"
duration = "100ms"

[[faults]]
name = "then-pause"
kind = "pause"
same_as = "restart-voter"
after = "restart-voter"
duration = "100ms"

[[faults]]
name = "mid-election"
kind = "pause"
target = "follower"
on = "new-term"
duration = "20ms"
"#;

/// Events of one kind from events.jsonl, in order.
fn events_where(
    events: &[serde_json::Value],
    event: &str,
    name: Option<&str>,
) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| e["event"] == event && name.is_none_or(|n| e["name"] == n))
        .cloned()
        .collect()
}

#[test]
fn faults_on_new_leaders_hit_a_follower_of_each_new_leader_and_chain_to_the_faults_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let header = SHORT_PLAN.split("[[faults]]").next().unwrap();
    let plan = write_plan(
        dir.path(),
        "reactive",
        &format!("{header}{REACTIVE_FAULTS}"),
    );
    let output = chaos(
        &["run", plan.to_str().unwrap(), "--quiet", "--json"],
        dir.path(),
    );
    let s = summary(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(s["verdict"], "pass", "{s:#}\n{stderr}");
    let run_dir = dir.path().join(s["run_dir"].as_str().unwrap());
    let events: Vec<serde_json::Value> = std::fs::read_to_string(run_dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let observed = events_where(&events, "observed", None);
    let (seen, terms): (Vec<_>, Vec<_>) = observed.iter().partition(|e| e["what"] == "new-leader");
    // Each leader kill ends in an election the watcher reports; the leader the run started with is not one.
    assert!(seen.len() >= 2, "{events:#?}");
    let voters = events_where(&events, "start", Some("restart-voter"));
    for new in &seen {
        let at = new["time_ns"].as_u64().unwrap();
        assert!(
            terms.iter().any(|t| t["what"] == "new-term"
                && t["term"] == new["term"]
                && t["time_ns"].as_u64().unwrap() <= at),
            "the term of {new} was seen beginning no later than its leader: {observed:#?}"
        );
        let hit = voters
            .iter()
            .find(|v| v["time_ns"].as_u64().unwrap() >= at)
            .unwrap_or_else(|| panic!("no restart-voter after {new}: {events:#?}"));
        assert_ne!(
            hit["nodes"][0], new["node"],
            "a follower, not the new leader: {hit} after {new}"
        );
    }
    let pauses = events_where(&events, "start", Some("then-pause"));
    assert_eq!(pauses.len(), voters.len(), "{events:#?}");
    for (voter, pause) in voters.iter().zip(&pauses) {
        assert_eq!(
            voter["nodes"], pause["nodes"],
            "same-as follows the reaction"
        );
        assert!(pause["time_ns"].as_u64() > voter["time_ns"].as_u64());
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["faults"]["planned"], 2,
        "only the fixed kills are on the timeline"
    );
    let mid_election = events_where(&events, "start", Some("mid-election"));
    assert!(!mid_election.is_empty(), "{events:#?}");
    assert_eq!(
        report["faults"]["on_events"].as_u64(),
        Some((voters.len() + pauses.len() + mid_election.len()) as u64),
        "{:#}",
        report["faults"]
    );
}
