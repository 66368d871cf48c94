//! `chaos run`: the lifecycle of a run as phases, each owning what it sets up (the model: Jepsen's `run!`).
//!
//! setup → warm-up → faults → heal → recovery → final reads → stop → check → verdict. Everything a run
//! produces goes into its folder `results/<plan>-<UTC timestamp>/`: `manifest.json` (the resolved plan, seed,
//! build commit, target version, timeline), `history.jsonl`, `events.jsonl`, `status.jsonl`, `nodes/<id>/`
//! (data and log), `certs/`, `check.json`, `outcome.json`, `report.json` and, when the history is not
//! linearizable, `counterexample.html`.
//!
//! Exit status: 0 pass, 1 fail (the system under test misbehaved), 2 bad plan, setup error or tool error (chaos
//! itself could not do what the plan says: never blamed on the system), 3 unknown, 130 interrupted.

use crate::cluster::{resolve_binary, Cluster, LaunchError};
use crate::driver::{self, ActiveFault, Injector};
use crate::early_stop::{EarlyStop, Violation};
use crate::events::EventLog;
use crate::faults::membership::{self, MembershipFault};
use crate::faults::{FaultError, FaultSpec, Nemeses};
use crate::plan::{Dur, Model, Plan, PlanError};
use crate::recorder::{self, Recorder};
use crate::schedule::{derive_seed, schedule, ClusterView, Reactor, ScheduledFault};
use crate::supervisor::ProcessState;
use crate::workload::{self, KeyHistory, WorkloadShared};
use checker::history::{EventKind, Header};
use checker::{Budget, CheckOptions, CheckReport, ModelKind};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Version of `manifest.json`, `outcome.json` and `report.json`.
pub const RUN_SCHEMA_VERSION: u32 = 1;
/// The commit chaos was built from (see build.rs), with `+dirty` for uncommitted changes.
pub const BUILD_COMMIT: &str = env!("CHAOS_GIT_COMMIT");

/// Options from the command line.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The plan file.
    pub plan: PathBuf,
    /// Overrides the plan's seed.
    pub seed: Option<u64>,
    /// Overrides the number of nodes.
    pub nodes: Option<usize>,
    /// Overrides the fault phase's duration.
    pub duration: Option<Duration>,
    /// Overrides the system under test.
    pub target: Option<crate::targets::TargetKind>,
    /// Overrides where nodes run.
    pub hosts: Option<crate::plan::HostsKind>,
    /// Where run folders go.
    pub out: PathBuf,
    /// No progress display.
    pub quiet: bool,
    /// Extra arguments for every node, after the plan's (e.g. `--bug no-fsync`).
    pub node_args: Vec<String>,
}

use crate::report::CheckVerdict;
pub use crate::report::RunVerdict;

/// The machine-readable summary of a run (`report.json`'s top, and `--json` output).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunSummary {
    /// [`RUN_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Plan name.
    pub plan: String,
    /// The system under test.
    pub target: String,
    /// The seed.
    pub seed: u64,
    /// The run folder.
    pub run_dir: String,
    /// The verdict.
    pub verdict: RunVerdict,
    /// The kinds of violation the run shows, e.g. `["not-linearizable", "node-crashed"]`.
    pub violations: Vec<crate::report::ViolationKind>,
    /// Seconds from the start of the fault phase to the first evidence of a violation, when known.
    pub first_violation_s: Option<f64>,
    /// Why the run stopped before its planned end, when it did.
    pub stopped_early: Option<crate::report::StoppedEarly>,
    /// The checker's verdict on the history.
    pub linearizability: String,
    /// Every check and expectation that did not pass (the field keeps its first name), as "name: message".
    pub failed_expectations: Vec<String>,
    /// Completed operations.
    pub ok: u64,
    /// Definitely failed operations (including cas mismatches).
    pub fail: u64,
    /// Of the failed: compare-and-sets that found another value.
    pub cas_mismatch: u64,
    /// Indeterminate operations.
    pub info: u64,
    /// Faults started.
    pub faults: usize,
    /// Keys whose final read succeeded / was attempted.
    pub final_reads: (u64, u64),
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
    /// The command that replays the run.
    pub replay: String,
}

/// A run that could not be carried out (exit 2 or 130: never a verdict about the system under test).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The run could not be set up: the message says what and where.
    #[error("setup failed: {0}")]
    Setup(String),
    /// chaos itself failed mid-run (a fault it could not inject, a task that panicked): the history cannot be
    /// trusted to mean what the plan says, so there is no verdict.
    #[error("tool error (chaos, not the system under test): {0}")]
    Tool(String),
    /// Interrupted by SIGINT, SIGTERM or SIGHUP; every node was stopped and what was recorded is kept.
    #[error("interrupted by {0}; every node process was stopped and the run folder keeps what was recorded")]
    Interrupted(&'static str),
}

impl RunError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Plan(_) | RunError::Setup(_) | RunError::Tool(_) => 2,
            RunError::Interrupted(_) => 130,
        }
    }
}

impl From<LaunchError> for RunError {
    fn from(e: LaunchError) -> RunError {
        RunError::Setup(e.0)
    }
}

impl From<FaultError> for RunError {
    fn from(e: FaultError) -> RunError {
        RunError::Tool(e.to_string())
    }
}

/// Loads the plan and applies the command-line overrides (then validates again: an override that makes a
/// fixed fault fall outside the phase is refused, never silently rewritten).
pub fn load_plan(opts: &RunOptions) -> Result<Plan, RunError> {
    let mut plan = Plan::load(&opts.plan)?;
    if let Some(n) = opts.nodes {
        plan.cluster.nodes = n;
    }
    if let Some(d) = opts.duration {
        plan.duration = Dur(d);
    }
    if let Some(target) = opts.target.filter(|t| *t != plan.cluster.target) {
        // The plan's binary and node flags belong to its own target.
        if !plan.cluster.extra_args.is_empty() || plan.cluster.binary.is_some() {
            eprintln!(
                "note: --target {} drops the plan's cluster.binary and cluster.extra_args (they are {} settings)",
                target.name(),
                plan.cluster.target.name()
            );
        }
        plan.cluster.target = target;
        plan.cluster.binary = None;
        plan.cluster.extra_args.clear();
    }
    if let Some(hosts) = opts.hosts {
        plan.cluster.hosts = hosts;
    }
    plan.cluster
        .extra_args
        .extend(opts.node_args.iter().cloned());
    plan.validate(&format!(
        "{} (with command-line overrides)",
        opts.plan.display()
    ))?;
    Ok(plan)
}

fn timestamp() -> String {
    // 2026-11-25T23:11:41Z -> 20261125T231141Z: sortable and safe in file names.
    humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

fn setup_err(what: &str) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |e| RunError::Setup(format!("{what}: {e}"))
}

/// Makes `out/<plan>-<timestamp>[-n]/nodes` and points `out/latest` at it.
pub fn make_run_dir(out: &Path, plan: &Plan) -> Result<PathBuf, RunError> {
    std::fs::create_dir_all(out).map_err(setup_err(&format!("creating {}", out.display())))?;
    let base = format!("{}-{}", plan.name, timestamp());
    let mut dir = out.join(&base);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = out.join(format!("{base}-{n}"));
    }
    std::fs::create_dir_all(dir.join("nodes"))
        .map_err(setup_err(&format!("creating {}", dir.display())))?;
    let latest = out.join("latest");
    let _ = std::fs::remove_file(&latest);
    if let Some(name) = dir.file_name() {
        let _ = std::os::unix::fs::symlink(name, &latest);
    }
    Ok(dir)
}

/// The progress display: a bar on a terminal, phase lines otherwise, nothing with --quiet.
struct Progress {
    bar: indicatif::ProgressBar,
    quiet: bool,
    in_force: Mutex<String>,
}

impl Progress {
    fn new(quiet: bool, total: Duration) -> Progress {
        let bar = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new(total.as_secs().max(1));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:24}] {pos}/{len}s {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        };
        Progress {
            bar,
            quiet,
            in_force: Mutex::new("warm-up".into()),
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{text}"); // Not a terminal: plain lines, no bar.
        } else {
            self.bar.println(text);
        }
    }

    fn state(&self, text: impl Into<String>) {
        *self.in_force.lock().unwrap_or_else(|p| p.into_inner()) = text.into();
    }

    /// Refreshes the bar from the recorder's counts every 200 ms.
    fn ticker(self: &Arc<Self>, recorder: Recorder) -> tokio::task::JoinHandle<()> {
        let progress = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let c = recorder.counts();
                progress
                    .bar
                    .set_position(recorder.started().elapsed().as_secs());
                let state = progress
                    .in_force
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                progress.bar.set_message(format!(
                    "ok {} fail {} info {} | {state}",
                    c.ok.load(Ordering::Relaxed),
                    c.fail.load(Ordering::Relaxed),
                    c.info.load(Ordering::Relaxed),
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }
}

/// Everything the phases share.
struct Run<'a> {
    plan: &'a Plan,
    plan_path: &'a Path,
    seed: u64,
    dir: &'a Path,
    replay: String,
    timeline: Vec<ScheduledFault>,
    progress: Arc<Progress>,
    /// Set by the first certain violation when the plan asks to stop early.
    early: Arc<EarlyStop>,
}

/// Runs a plan end to end.
pub async fn run(opts: &RunOptions) -> Result<RunSummary, RunError> {
    let plan = load_plan(opts)?;
    let seed = opts.seed.or(plan.seed).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            % 1_000_000_000
    });
    let binary = resolve_binary(&plan, &opts.plan)?;
    let dir = make_run_dir(&opts.out, &plan)?;
    let replay = format!("chaos run {} --seed {seed}", opts.plan.display());
    if !opts.quiet {
        eprintln!(
            "chaos run {:?} against {}: seed {seed} (replay: {replay})\nrun folder: {}",
            plan.name,
            plan.cluster.target.name(),
            dir.display()
        );
        if let Some(note) = timing_note(&plan) {
            eprintln!("timing: {note}");
        }
    }
    let run = Run {
        plan: &plan,
        plan_path: &opts.plan,
        seed,
        dir: &dir,
        replay,
        timeline: schedule(&plan, seed),
        progress: Arc::new(Progress::new(opts.quiet, plan.total())),
        early: EarlyStop::new(plan.stop_early),
    };
    let started = Instant::now();
    let signal = interrupted();
    let result = tokio::select! {
        result = lifecycle(&run, &binary) => result,
        name = signal => {
            // Dropping the lifecycle future dropped the cluster, which stopped every node.
            Err(RunError::Interrupted(name))
        }
    };
    run.progress.bar.finish_and_clear();
    if let Err(e) = &result {
        let outcome = Outcome {
            tool_errors: vec![e.to_string()],
            interrupted: matches!(e, RunError::Interrupted(_)),
            ..Outcome::default()
        };
        write_outcome(&run, started, &outcome);
        // The report shows what was recorded up to the error (best effort: the folder may be incomplete).
        if let Ok(report) = crate::report::build(run.dir) {
            let _ = crate::report::write(run.dir, &report);
        }
    }
    result
}

/// Resolves when SIGINT, SIGTERM or SIGHUP arrives, with the signal's name.
pub async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

/// setup → warm-up → faults → heal → recovery → final reads → stop → check → verdict.
async fn lifecycle(run: &Run<'_>, binary: &Path) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let mut cluster = Cluster::launch(run.plan, run.seed, binary, run.dir).await?;
    write_manifest(run, binary, &cluster)?;
    let leader = cluster
        .await_leader(run.plan.cluster.startup_timeout.0)
        .await?;
    let recording = Recording::start(run, &cluster, leader)?;
    let (early_keys, key_checks) = early_key_checks(run);
    let source_ips = client_source_ips(run.plan);
    let workload = Workload::start(run, &cluster, &recording, source_ips.as_deref(), early_keys)?;
    recording.phase(
        run,
        "warmup",
        &format!("warm-up {} (leader n{leader})", run.plan.warmup),
    );
    let mut stopped = wait_phase(run, &mut cluster, &recording, run.plan.warmup.0).await;
    if !stopped {
        recording.phase(
            run,
            "faults",
            &format!(
                "faults for {}: {} scheduled",
                run.plan.duration,
                run.timeline.len()
            ),
        );
        stopped = inject_faults(run, &mut cluster, &recording).await?;
    }
    if !stopped {
        recording.phase(
            run,
            "recovery",
            &format!("healed; recovery {}", run.plan.recovery),
        );
        stopped = wait_phase(run, &mut cluster, &recording, run.plan.recovery.0).await;
    }
    let stopped_early = run.early.stopped().filter(|_| stopped);
    let (final_reads, convergence) = match &stopped_early {
        // The verdict is certain: no final reads, no convergence wait (they would only add time).
        Some(v) => {
            recording.phase(
                run,
                "stopped-early",
                &format!(
                    "stopping early: {} ({}); final reads and the convergence check are skipped",
                    v.label, v.reason
                ),
            );
            workload.stop_clients(run).await?;
            (None, None)
        }
        None => {
            recording.phase(run, "final-reads", "final reads");
            let final_reads = workload.finish(run, &cluster, &recording).await?;
            (
                Some(final_reads),
                Some(converge(&cluster, &recording).await),
            )
        }
    };
    key_checks.abort();
    if stopped_early.is_none() {
        membership_final(run, &mut cluster, &recording).await;
    }
    // The status record ends with the run, not with the nodes stopping: polls of stopping nodes would show a
    // leader loss the system under test is not to blame for.
    recording.poller.abort();
    let exits = stop(run, cluster, &recording).await;
    let counts = recording.finish().await?;
    let outcome = Outcome {
        final_reads,
        exits,
        convergence,
        stopped_early,
        ..Outcome::default()
    };
    write_outcome(run, started, &outcome);
    let check = check(run).await?;
    decide(run, started, check, counts, final_reads.unwrap_or((0, 0)))
}

/// With `stop_early`: the channel finished keys go to, and the task that checks them (a finished task without).
fn early_key_checks(
    run: &Run<'_>,
) -> (
    Option<tokio::sync::mpsc::UnboundedSender<KeyHistory>>,
    tokio::task::JoinHandle<()>,
) {
    if !run.early.enabled() {
        return (None, tokio::spawn(async {}));
    }
    let model = match run.plan.workload.model {
        Model::Register => ModelKind::Register,
        Model::CasRegister => ModelKind::CasRegister,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = crate::early_stop::spawn_key_checks(model, Arc::clone(&run.early), rx);
    (Some(tx), task)
}

/// Sleeps through a phase of length `length`; with `stop_early`, watches for node crashes every 200 ms and
/// returns true as soon as a violation is certain.
async fn wait_phase(
    run: &Run<'_>,
    cluster: &mut Cluster,
    recording: &Recording,
    length: Duration,
) -> bool {
    if !run.early.enabled() {
        tokio::time::sleep(length).await;
        return false;
    }
    let end = tokio::time::Instant::now() + length;
    loop {
        note_exits(run, cluster, recording);
        if run.early.stopped().is_some() {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= end {
            return false;
        }
        let step = (end - now).min(CRASH_POLL);
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = run.early.wait() => return true,
        }
    }
}

/// How often nodes are reaped during a run that stops early.
const CRASH_POLL: Duration = Duration::from_millis(200);

/// Reaps nodes that exited on their own: each goes to events.jsonl, the history's notes and the terminal, and
/// (with `stop_early`) stops the run.
fn note_exits(run: &Run<'_>, cluster: &mut Cluster, recording: &Recording) {
    let crashed = cluster.supervisor.reap_all();
    for id in cluster.new_removed_exits() {
        let expected = !cluster.members().contains(&id);
        run.progress.line(&format!(
            "  node n{id} exited as removed from the cluster{}",
            if expected {
                ""
            } else {
                " while still a member"
            }
        ));
        recording.events.write(&serde_json::json!({
            "time_ns": recording.recorder.now_ns(), "event": "node-removed", "node": id, "expected": expected,
        }));
    }
    for (id, status) in crashed {
        // Local logs can be quoted at once; an SSH host's log is brought home after the run (the report
        // quotes it then).
        let said = cluster
            .supervisor
            .log_path(id)
            .and_then(|log| crate::report::last_words::last_error_line(&log))
            .map(|line| format!("; its log's last error: {line}"))
            .unwrap_or_default();
        run.progress
            .line(&format!("  node n{id} exited on its own ({status}){said}"));
        let time_ns = recording.recorder.now_ns();
        let value = serde_json::json!({"time_ns": time_ns, "event": "node-exited", "node": id, "status": status});
        recording.events.write(&value);
        recording
            .recorder
            .note("runner", EventKind::Info, "node-exited", value);
        run.early.trigger(Violation {
            label: "node-crashed".into(),
            reason: format!("n{id} exited on its own ({status}){said}"),
            time_ns,
        });
    }
}

/// After the heal and the final reads: whether every node's replicated state agrees. Nodes may still be
/// catching up, so it asks again for a few seconds before taking a disagreement as the answer.
async fn converge(cluster: &Cluster, recording: &Recording) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Over the final membership only: removed nodes hold logs the cluster no longer keeps in step.
        let (agree, detail) = cluster.target.agreement(&cluster.member_layout()).await;
        if agree == Some(true) || Instant::now() > deadline {
            let time_ns = recording.recorder.now_ns();
            return serde_json::json!({"checked": true, "agree": agree, "detail": detail, "time_ns": time_ns});
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// With membership faults: the intended membership against the one the leader reports, and what became of
/// every node the runner removed (`membership-final` in events.jsonl, judged by the `membership_final` and
/// `removed_nodes_exit` expectations).
async fn membership_final(run: &Run<'_>, cluster: &mut Cluster, recording: &Recording) {
    if !run.plan.uses(crate::faults::Family::Membership) {
        return;
    }
    note_exits(run, cluster, recording);
    let intended = cluster.members();
    let layout = cluster.member_layout();
    let observed = cluster.target.membership(&layout, &intended).await;
    let removed: Vec<serde_json::Value> = cluster
        .removed()
        .into_iter()
        .map(|(id, wiped)| {
            let fate = match cluster.supervisor.state(id) {
                _ if wiped => "wiped",
                ProcessState::Removed => "exited-removed",
                ProcessState::Running | ProcessState::Paused => "running",
                ProcessState::Down => "down",
            };
            serde_json::json!({"node": id, "fate": fate})
        })
        .collect();
    let (observed, error) = match observed {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    recording.events.write(&serde_json::json!({
        "time_ns": recording.recorder.now_ns(), "event": "membership-final", "intended": intended,
        "observed": observed, "error": error, "removed": removed,
    }));
}

/// The history recorder, the event log and the status poller of a run.
struct Recording {
    recorder: Recorder,
    recorder_task: tokio::task::JoinHandle<std::io::Result<u64>>,
    events: Arc<EventLog>,
    poller: tokio::task::JoinHandle<()>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Recording {
    fn start(run: &Run<'_>, cluster: &Cluster, leader: u64) -> Result<Recording, RunError> {
        let header = Header::new(serde_json::json!({
            "plan": run.plan.name, "seed": run.seed, "git_commit": BUILD_COMMIT,
            "target": run.plan.cluster.target.name(), "model": "cas-register",
        }));
        let started = Instant::now();
        let (recorder, recorder_task) =
            recorder::start(&run.dir.join("history.jsonl"), &header, started)
                .map_err(setup_err("creating history.jsonl"))?;
        let events = Arc::new(
            EventLog::create(&run.dir.join("events.jsonl"))
                .map_err(setup_err("creating events.jsonl"))?,
        );
        let poller = crate::status_poll::start(
            Arc::clone(&cluster.target),
            cluster.layout_updates(),
            &run.dir.join("status.jsonl"),
            started,
        )
        .map_err(setup_err("creating status.jsonl"))?;
        recorder.note(
            "runner",
            EventKind::Info,
            "leader",
            serde_json::json!({"node": leader}),
        );
        let ticker = run.progress.ticker(recorder.clone());
        Ok(Recording {
            recorder,
            recorder_task,
            events,
            poller,
            ticker,
        })
    }

    /// Marks the start of a phase in events.jsonl and on the terminal.
    fn phase(&self, run: &Run<'_>, name: &str, line: &str) {
        self.events.write(
            &serde_json::json!({"time_ns": self.recorder.now_ns(), "event": "phase", "name": name}),
        );
        run.progress.state(name);
        run.progress.line(line);
    }

    /// Stops the poller and the progress display, closes the history; returns (ok, fail, info, mismatch).
    async fn finish(self) -> Result<(u64, u64, u64, u64), RunError> {
        self.poller.abort();
        self.ticker.abort();
        let c = self.recorder.counts();
        let counts = (
            c.ok.load(Ordering::Relaxed),
            c.fail.load(Ordering::Relaxed),
            c.info.load(Ordering::Relaxed),
            c.mismatch.load(Ordering::Relaxed),
        );
        self.recorder
            .note("runner", EventKind::Info, "stop", serde_json::json!({}));
        drop(self.recorder);
        match self.recorder_task.await {
            Ok(Ok(_)) => Ok(counts),
            Ok(Err(e)) => Err(RunError::Tool(format!("writing history.jsonl: {e}"))),
            Err(e) => Err(RunError::Tool(format!("the recorder failed: {e}"))),
        }
    }
}

/// The clients of a run.
struct Workload {
    shared: Arc<WorkloadShared>,
    clients: Vec<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Workload {
    /// Starts the clients; client i sends from `source_ips[i]` when given (see
    /// [`client_source_ips`]), and finished keys go to `early_keys` when given.
    fn start(
        run: &Run<'_>,
        cluster: &Cluster,
        recording: &Recording,
        source_ips: Option<&[IpAddr]>,
        early_keys: Option<tokio::sync::mpsc::UnboundedSender<KeyHistory>>,
    ) -> Result<Workload, RunError> {
        let w = &run.plan.workload;
        let shared = Arc::new(WorkloadShared::new(w, early_keys));
        let mut clients = Vec::new();
        for i in 0..w.clients {
            let source_ip = source_ips.and_then(|ips| ips.get(i).copied());
            let settings = workload::client_settings(w, source_ip);
            let client = cluster
                .target
                .connect(&cluster.layout, &settings)
                .map_err(|e| RunError::Setup(format!("client {i}: {e}")))?;
            let reader = match w.read_after_ack {
                crate::plan::ReadAfterAck::OtherClient => Some(
                    cluster
                        .target
                        .connect(&cluster.layout, &settings)
                        .map_err(|e| RunError::Setup(format!("client {i}'s reader: {e}")))?,
                ),
                _ => None,
            };
            clients.push(tokio::spawn(workload::client_loop(
                i,
                w.clone(),
                client,
                reader,
                recording.recorder.clone(),
                shared.clone(),
                derive_seed(run.seed, &format!("client-{i}")),
            )));
        }
        Ok(Workload { shared, clients })
    }

    /// Stops the clients, then reads every key once more. A client task that panicked is a tool error.
    async fn finish(
        self,
        run: &Run<'_>,
        cluster: &Cluster,
        recording: &Recording,
    ) -> Result<(u64, u64), RunError> {
        let shared = self.stop_clients(run).await?;
        let settings = workload::final_read_settings(&run.plan.workload);
        let client = cluster
            .target
            .connect(&cluster.member_layout(), &settings)
            .map_err(|e| RunError::Tool(format!("final reads: {e}")))?;
        Ok(workload::final_reads(client, &recording.recorder, &shared).await)
    }

    /// Stops the clients and waits for each to finish its op. A client task that panicked is a tool error.
    async fn stop_clients(self, run: &Run<'_>) -> Result<Arc<WorkloadShared>, RunError> {
        self.shared.stop.store(true, Ordering::Relaxed);
        let grace = run.plan.workload.request_timeout.0 * 3 + Duration::from_secs(5);
        for (i, c) in self.clients.into_iter().enumerate() {
            match tokio::time::timeout(grace, c).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => return Err(RunError::Tool(format!("client {i} stopped: {e}"))),
                Ok(Err(e)) if e.is_panic() => {
                    return Err(RunError::Tool(format!(
                        "client task {i} panicked: {}",
                        panic_text(e)
                    )))
                }
                Ok(Err(e)) => return Err(RunError::Tool(format!("client task {i} failed: {e}"))),
                Err(_) => {
                    return Err(RunError::Tool(format!(
                        "client {i} did not stop within {grace:?}"
                    )))
                }
            }
        }
        Ok(self.shared)
    }
}

fn panic_text(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Starts and ends faults along the timeline, then heals everything.
struct RunInjector<'r, 'p> {
    run: &'r Run<'p>,
    cluster: &'r mut Cluster,
    nemeses: Nemeses,
    recording: &'r Recording,
    /// What targeting knows: the latest status of the nodes and whom each fault last hit.
    view: ClusterView,
    /// With `stop_early`: when nodes are next reaped between steps.
    next_reap: Option<tokio::time::Instant>,
    /// The cluster as the status watcher last reported it, and when: a fault that starts on that report
    /// targets by it instead of asking again (which would cost the round trips the watcher saved).
    watched: Option<(tokio::time::Instant, Vec<crate::schedule::NodeView>)>,
    /// The nodes each fault in force hit, by fault id (membership faults, which end at once, aside): what a
    /// membership change that does not commit is judged against.
    in_force: BTreeMap<usize, Vec<u64>>,
    /// When the fault phase began: each start and end is recorded with how late it came against the plan.
    phase_start: Option<tokio::time::Instant>,
}

/// How fresh the watcher's view must be for a fault to target by it.
const WATCHED_FRESH: Duration = Duration::from_millis(20);

impl RunInjector<'_, '_> {
    /// How much later than planned (`planned`, from the start of the fault phase) a step that began at `began`
    /// came, in ms: a step waits for the one before it (a membership change may take seconds).
    fn late_ms(&self, planned: Duration, began: tokio::time::Instant) -> Option<u64> {
        let due = self.phase_start? + planned;
        Some(began.saturating_duration_since(due).as_millis() as u64)
    }

    fn record(
        &mut self,
        phase: &str,
        fault: &ScheduledFault,
        nodes: &[u64],
        note: Option<&str>,
        late_ms: Option<u64>,
    ) {
        let mut value = serde_json::json!({
            "time_ns": self.recording.recorder.now_ns(), "event": phase, "id": fault.id, "kind": fault.kind,
            "name": fault.label, "target": fault.targets.to_string(), "nodes": nodes, "note": note,
            "late_ms": late_ms,
        });
        // What the fault did beyond hitting the nodes (e.g. a disk cut's bytes rolled back per node).
        if let Some(detail) = self.nemeses.take_detail() {
            value["detail"] = detail;
        }
        self.recording.events.write(&value);
        let kind = if phase == "start" {
            EventKind::Invoke
        } else {
            EventKind::Ok
        };
        self.recording
            .recorder
            .note("nemesis", kind, &format!("{phase}-{}", fault.kind), value);
    }

    fn failed(&self, e: &FaultError) {
        self.recording.events.write(&serde_json::json!({
            "time_ns": self.recording.recorder.now_ns(), "event": "fault-failed", "id": e.id, "kind": e.kind,
            "error": e.to_string(),
        }));
    }
}

impl RunInjector<'_, '_> {
    /// Carries out a membership change through the cluster as an operator would, and logs the intended
    /// membership after it.
    async fn start_membership(
        &mut self,
        fault: &ScheduledFault,
        spec: &MembershipFault,
        wanted: &[u64],
        why_none: Option<&str>,
        late_ms: Option<u64>,
    ) -> Result<ActiveFault, FaultError> {
        let draw = derive_seed(self.run.seed, &format!("membership-{}", fault.id));
        let mut op = ClusterOperator {
            cluster: &mut *self.cluster,
            nemeses: &mut self.nemeses,
            disturbed: self.in_force.values().flatten().copied().collect(),
        };
        let change = membership::apply(&mut op, spec, wanted, draw)
            .await
            .map_err(|reason| FaultError {
                id: fault.id,
                kind: spec.name(),
                phase: "started",
                reason,
            })
            .inspect_err(|e| self.failed(e))?;
        let hit = change.hit();
        let note = change.note.clone().or(why_none.map(str::to_string));
        self.view.last_hit.insert(fault.plan_index, hit.clone());
        self.record("start", fault, &hit, note.as_deref(), late_ms);
        self.recording.events.write(&serde_json::json!({
            "time_ns": self.recording.recorder.now_ns(), "event": "membership", "id": fault.id,
            "kind": spec.name(), "change": change, "members": change.members,
        }));
        self.run.progress.line(&format!(
            "  +{:.1}s {} {} -> removed {:?}, added {:?}; members {:?}{}",
            fault.start.as_secs_f64(),
            fault.label,
            fault.targets,
            change.removed,
            change.added,
            change.members,
            note.map(|n| format!(" ({n})")).unwrap_or_default()
        ));
        Ok(ActiveFault {
            fault: fault.clone(),
            nodes: hit,
        })
    }
}

/// The cluster and the fault families as a membership fault's operator sees them.
struct ClusterOperator<'a> {
    cluster: &'a mut Cluster,
    nemeses: &'a mut Nemeses,
    /// The nodes hit by the plan's faults in force when the change began (nothing starts or ends while it
    /// is carried out).
    disturbed: std::collections::BTreeSet<u64>,
}

impl membership::Operator for ClusterOperator<'_> {
    fn members(&self) -> Vec<u64> {
        self.cluster.members()
    }

    fn fresh_id(&self) -> u64 {
        self.cluster.ids().into_iter().max().unwrap_or(0) + 1
    }

    fn add(&mut self, id: u64, via: u64) -> Result<(), String> {
        let joined = self.cluster.add_node(id, via)?;
        self.nemeses
            .set_members(self.cluster.members(), Some(joined))
    }

    async fn remove(&mut self, id: u64, timeout: Duration) -> crate::targets::MemberChange {
        let members = self.cluster.members();
        let layout = self.cluster.layout.clone();
        self.cluster
            .target
            .remove_member(&layout, &members, id, timeout)
            .await
    }

    async fn is_member(&mut self, id: u64) -> Option<bool> {
        let members = self.cluster.members();
        let view = self
            .cluster
            .target
            .membership(&self.cluster.layout, &members)
            .await
            .ok()?;
        Some(view.voters.contains(&id) || view.learners.contains(&id))
    }

    fn retire(&mut self, id: u64) {
        self.cluster.retire(id);
        // Ignoring the result is safe: without a joined node nothing reaches the network backend.
        let _ = self.nemeses.set_members(self.cluster.members(), None);
    }

    fn wipe(&mut self, id: u64) -> Result<(), String> {
        self.cluster.wipe(id)
    }

    fn disturbed(&self) -> Vec<u64> {
        self.disturbed.iter().copied().collect()
    }
}

impl Injector for RunInjector<'_, '_> {
    async fn start(&mut self, fault: &ScheduledFault) -> Result<ActiveFault, FaultError> {
        let late_ms = self.late_ms(fault.start, tokio::time::Instant::now());
        if fault.targets.decided_at_start() {
            self.view.members = self.cluster.members();
            self.view.nodes = match &self.watched {
                Some((at, nodes)) if at.elapsed() <= WATCHED_FRESH => nodes.clone(),
                _ => self.cluster.view().await,
            };
        }
        let (wanted, why_none) = match fault.targets.pick(&self.view) {
            Ok(wanted) => (wanted, None),
            Err(why) => (Vec::new(), Some(why)),
        };
        let spec = &self.run.plan.faults[fault.plan_index].spec;
        if let FaultSpec::Membership(m) = spec {
            return self
                .start_membership(fault, m, &wanted, why_none, late_ms)
                .await;
        }
        // Started even with no target, so that its end (and the report) find it like any other.
        let hit = self
            .nemeses
            .start(&mut *self.cluster.supervisor, fault, spec, &wanted)
            .inspect_err(|e| self.failed(e))?;
        let note = why_none.or(hit.is_empty().then_some("every target was already down"));
        self.in_force.insert(fault.id, hit.clone());
        self.view.last_hit.insert(fault.plan_index, hit.clone());
        self.record("start", fault, &hit, note, late_ms);
        self.run.progress.line(&format!(
            "  +{:.1}s {} {} -> {:?}",
            fault.start.as_secs_f64(),
            fault.label,
            fault.targets,
            hit
        ));
        Ok(ActiveFault {
            fault: fault.clone(),
            nodes: hit,
        })
    }

    fn end(&mut self, active: &ActiveFault) -> Result<(), FaultError> {
        let late_ms = self.late_ms(active.fault.end, tokio::time::Instant::now());
        let spec = &self.run.plan.faults[active.fault.plan_index].spec;
        self.nemeses
            .end(
                &mut *self.cluster.supervisor,
                &active.fault,
                spec,
                &active.nodes,
            )
            .inspect_err(|e| self.failed(e))?;
        self.in_force.remove(&active.fault.id);
        self.record("end", &active.fault, &active.nodes, None, late_ms);
        Ok(())
    }

    fn next_tick(&self) -> Option<tokio::time::Instant> {
        let nemeses = self.nemeses.next_tick().map(tokio::time::Instant::from_std);
        [nemeses, self.next_reap].into_iter().flatten().min()
    }

    fn tick(&mut self) -> Result<(), FaultError> {
        let now = tokio::time::Instant::now();
        if let Some(reap) = self.next_reap.filter(|r| *r <= now) {
            self.next_reap = Some(reap.max(now) + CRASH_POLL);
            note_exits(self.run, self.cluster, self.recording);
        }
        match self.nemeses.next_tick() {
            Some(t) if tokio::time::Instant::from_std(t) <= now => self.nemeses.tick(),
            _ => Ok(()),
        }
    }

    fn observed(&mut self, event: &crate::watch::Observed) {
        let value = serde_json::json!({
            "time_ns": self.recording.recorder.now_ns(), "event": "observed", "what": event.event.key(),
            "node": event.node, "term": event.term,
        });
        self.recording.events.write(&value);
        self.recording
            .recorder
            .note("nemesis", EventKind::Info, event.event.key(), value);
        self.watched = Some((event.at, event.nodes.clone()));
    }

    fn after_step(&mut self, active: &[ActiveFault]) {
        note_exits(self.run, self.cluster, self.recording);
        let names: Vec<String> = active
            .iter()
            .map(|a| format!("{} {:?}", a.fault.label, a.nodes))
            .collect();
        self.run.progress.state(if names.is_empty() {
            "no fault".into()
        } else {
            names.join(", ")
        });
    }
}

/// The fault phase: drive the timeline, then heal every fault family. Returns true when the run stopped early
/// (the timeline was cut short; the heal below ends whatever was in force).
async fn inject_faults(
    run: &Run<'_>,
    cluster: &mut Cluster,
    recording: &Recording,
) -> Result<bool, RunError> {
    let (network, clocks) = cluster.take_backends();
    let mut injector = RunInjector {
        run,
        nemeses: Nemeses::new(cluster.ids(), network, clocks)
            .with_clients(client_link_ids(run.plan))
            .with_disks(cluster.disks()),
        cluster,
        recording,
        view: ClusterView::default(),
        watched: None,
        in_force: BTreeMap::new(),
        phase_start: None,
        next_reap: run
            .early
            .enabled()
            .then(|| tokio::time::Instant::now() + CRASH_POLL),
    };
    // Faults on cluster events need the watcher; it stops when dropped at the end of this phase.
    let (_watcher, events) = if run.plan.watches_cluster() {
        let target = Arc::clone(&injector.cluster.target);
        let layout = injector.cluster.layout_updates();
        let (watcher, events) =
            crate::watch::start(target, layout, run.plan.watch_interval.0).await;
        (Some(watcher), Some(events))
    } else {
        (None, None)
    };
    let mut reactions = driver::Reactions {
        reactor: Reactor::new(run.plan, run.seed, run.timeline.len()),
        events,
    };
    let phase_start = tokio::time::Instant::now();
    injector.phase_start = Some(phase_start);
    // Dropping the drive mid-way is safe: a fault is started and ended by synchronous calls, and the
    // nemeses' heal below ends every fault still in force.
    let stopped = tokio::select! {
        result = driver::drive(&run.timeline, phase_start, run.plan.duration.0, &mut injector, &mut reactions) => {
            result?;
            false
        }
        _ = run.early.wait() => true,
    };
    let healed = injector
        .nemeses
        .heal(&mut *injector.cluster.supervisor)
        .inspect_err(|e| injector.failed(e))?;
    let value = serde_json::json!({"time_ns": recording.recorder.now_ns(), "event": "heal", "nodes": healed});
    recording.events.write(&value);
    recording
        .recorder
        .note("nemesis", EventKind::Info, "heal", value);
    Ok(stopped)
}

/// The link ids of the clients, when faults reach client links (none otherwise).
fn client_link_ids(plan: &Plan) -> Vec<u64> {
    if !plan.uses_client_links() {
        return Vec::new();
    }
    (0..plan.workload.clients)
        .map(crate::faults::network::client_id)
        .collect()
}

/// The address each client sends from, when faults reach client links: the kernel rules tell clients apart by
/// it (see [`crate::faults::network::nftables::client_ip`]). None otherwise: clients send from any address.
fn client_source_ips(plan: &Plan) -> Option<Vec<IpAddr>> {
    plan.uses_client_links().then(|| {
        (0..plan.workload.clients)
            .map(|i| IpAddr::V4(crate::faults::network::nftables::client_ip(i)))
            .collect()
    })
}

/// Stops the nodes; returns the exits nobody caused (crashes of the system under test).
async fn stop(run: &Run<'_>, mut cluster: Cluster, recording: &Recording) -> Vec<(u64, String)> {
    let crashed = cluster.supervisor.reap_all();
    for id in cluster.new_removed_exits() {
        let expected = !cluster.members().contains(&id);
        recording.events.write(&serde_json::json!({"time_ns": recording.recorder.now_ns(), "event": "node-removed", "node": id, "expected": expected}));
    }
    for (id, status) in crashed {
        recording.events.write(&serde_json::json!({"time_ns": recording.recorder.now_ns(), "event": "node-exited", "node": id, "status": status}));
    }
    let exits = cluster.supervisor.unexpected_exits();
    recording.events.write(&serde_json::json!({"time_ns": recording.recorder.now_ns(), "event": "phase", "name": "stopped"}));
    cluster.stop(run.dir).await;
    exits
}

fn write_manifest(run: &Run<'_>, binary: &Path, cluster: &Cluster) -> Result<(), RunError> {
    let plan = run.plan;
    let etcd_range = (plan.cluster.target == crate::targets::TargetKind::Etcd).then(|| {
        let (lo, hi) =
            crate::targets::etcd::effective_election_range(plan.cluster.election_timeout_min.0);
        format!(
            "etcd draws election timeouts from [{}, {})",
            humantime::format_duration(lo),
            humantime::format_duration(hi)
        )
    });
    let manifest = serde_json::json!({
        "schema_version": RUN_SCHEMA_VERSION,
        "tool": "chaos",
        "version": env!("CARGO_PKG_VERSION"),
        "chaos_commit": BUILD_COMMIT,
        "git_commit": BUILD_COMMIT,
        "plan_file": run.plan_path.display().to_string(),
        "plan": plan,
        "seed": run.seed,
        "started_at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "target": plan.cluster.target.name(),
        "target_version": cluster.target.version(),
        "node_binary": binary.display().to_string(),
        "nodes": cluster.layout.nodes.iter().map(|n| serde_json::json!({"id": n.id, "peer": n.peer_addr().to_string(), "client": n.client_addr().to_string()})).collect::<Vec<_>>(),
        "timing_note": etcd_range,
        "clock_shim_limitations": plan.needs_clock_shim().then_some(clock_shim::LIMITATIONS),
        "timeline": run.timeline,
        "replay": run.replay,
    });
    std::fs::write(
        run.dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).expect("json"),
    )
    .map_err(setup_err("writing manifest.json"))
}

/// How the target's timing differs from the plan's, if it does.
fn timing_note(plan: &Plan) -> Option<String> {
    let c = &plan.cluster;
    (c.target == crate::targets::TargetKind::Etcd).then(|| {
        crate::targets::etcd::timing_note(
            c.heartbeat_interval.0,
            (c.election_timeout_min.0, c.election_timeout_max.0),
        )
    })
}

/// What the runner itself saw, for `outcome.json`.
#[derive(Default)]
struct Outcome {
    final_reads: Option<(u64, u64)>,
    exits: Vec<(u64, String)>,
    convergence: Option<serde_json::Value>,
    stopped_early: Option<Violation>,
    tool_errors: Vec<String>,
    interrupted: bool,
}

/// `outcome.json`: what the runner itself saw (the report reads it with the history and the events).
fn write_outcome(run: &Run<'_>, started: Instant, o: &Outcome) {
    let (ok, not_ok) = o.final_reads.unwrap_or((0, 0));
    let outcome = serde_json::json!({
        "schema_version": RUN_SCHEMA_VERSION,
        "seconds": started.elapsed().as_secs_f64(),
        "final_reads": o.final_reads.map(|_| serde_json::json!({"ok": ok, "attempted": ok + not_ok})),
        "unexpected_exits": o.exits.iter().map(|(node, status)| serde_json::json!({"node": node, "status": status})).collect::<Vec<_>>(),
        "tool_errors": o.tool_errors,
        "convergence": o.convergence,
        "stopped_early": o.stopped_early,
        "interrupted": o.interrupted,
    });
    if let Err(e) = std::fs::write(
        run.dir.join("outcome.json"),
        serde_json::to_string_pretty(&outcome).expect("json"),
    ) {
        tracing::error!(error = %e, "cannot write outcome.json");
    }
}

async fn check(run: &Run<'_>) -> Result<CheckReport, RunError> {
    run.progress.line(&format!(
        "checking {} ...",
        run.dir.join("history.jsonl").display()
    ));
    let model = match run.plan.workload.model {
        Model::Register => ModelKind::Register,
        Model::CasRegister => ModelKind::CasRegister,
    };
    let defaults = Budget::default();
    let deadline = Some(Instant::now() + run.plan.workload.check_time_limit.0);
    let budget = Budget::new(
        defaults.steps_max_per_key,
        defaults.cache_bytes_max_per_key,
        deadline,
    );
    let options = CheckOptions::new(model).with_budget(budget);
    let path = run.dir.join("history.jsonl");
    let report = tokio::task::spawn_blocking(move || checker::check_file(&path, &options))
        .await
        .map_err(|e| RunError::Tool(format!("the checker panicked: {e}")))?
        .map_err(|e| RunError::Tool(format!("the recorded history does not check: {e}")))?;
    std::fs::write(
        run.dir.join("check.json"),
        serde_json::to_string_pretty(&report).expect("json"),
    )
    .map_err(|e| RunError::Tool(format!("writing check.json: {e}")))?;
    Ok(report)
}

/// The verdict: the report's (the checker's, every expectation of the plan, node crashes, tool errors), built
/// from the run folder alone, so `chaos report` on the folder reaches the same one.
fn decide(
    run: &Run<'_>,
    started: Instant,
    check: CheckReport,
    counts: (u64, u64, u64, u64),
    final_reads: (u64, u64),
) -> Result<RunSummary, RunError> {
    let linearizability = check.verdict.as_str().to_string();
    for c in check.counterexamples().take(3) {
        run.progress.line(&c.to_text());
    }
    let report = crate::report::build_with_check(run.dir, Some(check))
        .map_err(|e| RunError::Tool(format!("building the report: {e}")))?;
    let written = crate::report::write(run.dir, &report)
        .map_err(|e| RunError::Tool(format!("writing the report: {e}")))?;
    run.progress
        .line(&crate::report::summary::text(&report, &written.html));
    let not_passing = report
        .checks()
        .iter()
        .filter(|c| !matches!(c.verdict, CheckVerdict::Pass | CheckVerdict::NotEvaluated))
        .map(|c| format!("{}: {}", c.name, c.message))
        .collect();
    Ok(RunSummary {
        schema_version: RUN_SCHEMA_VERSION,
        plan: run.plan.name.clone(),
        target: run.plan.cluster.target.name().into(),
        seed: run.seed,
        run_dir: run.dir.display().to_string(),
        verdict: report.verdict(),
        violations: report.violations.clone(),
        first_violation_s: report.first_violation_s,
        stopped_early: report.stopped_early.clone(),
        linearizability,
        failed_expectations: not_passing,
        ok: counts.0,
        fail: counts.1,
        cas_mismatch: counts.3,
        info: counts.2,
        faults: run.timeline.len(),
        final_reads: (final_reads.0, final_reads.0 + final_reads.1),
        seconds: started.elapsed().as_secs_f64(),
        replay: run.replay.clone(),
    })
}

/// The one-line verdict for people.
pub fn verdict_line(s: &RunSummary) -> String {
    let word = s.verdict.word();
    let labels = if s.violations.is_empty() {
        String::new()
    } else {
        let labels: Vec<&str> = s.violations.iter().map(|v| v.label()).collect();
        format!(" [{}]", labels.join(", "))
    };
    let mut line = format!(
        "{word}{labels}: {} on {} (seed {}): history {}; {} ok, {} fail ({} of them cas mismatches), {} info; {} faults; {:.1}s; {}",
        s.plan, s.target, s.seed, s.linearizability, s.ok, s.fail, s.cas_mismatch, s.info, s.faults, s.seconds, s.run_dir
    );
    if let Some(e) = &s.stopped_early {
        line.push_str(&format!("\n  stopped early: {} ({})", e.label, e.reason));
    }
    if let Some(t) = s.first_violation_s {
        line.push_str(&format!(
            "\n  first violation {t:.3} s after the fault phase began"
        ));
    }
    for e in &s.failed_expectations {
        line.push_str(&format!("\n  not passed: {e}"));
    }
    line
}

/// `chaos run` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  chaos run configs/smoke.toml\n  chaos run configs/process-faults.toml --seed 42 --nodes 5 --duration 20s\n  chaos run configs/smoke.toml --quiet --json > summary.json\n\nExit status: 0 pass, 1 fail, 2 bad plan, setup or tool error, 3 unknown, 130 interrupted (SIGINT, SIGTERM, SIGHUP)."
)]
pub struct RunArgs {
    /// The plan (TOML).
    pub plan: PathBuf,
    /// Seed (overrides the plan's; printed at the start of every run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of nodes (overrides the plan's).
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Length of the fault phase, e.g. 30s (overrides the plan's).
    #[arg(long, value_parser = crate::plan::parse_duration)]
    pub duration: Option<Duration>,
    /// The system under test (overrides the plan's, and its binary): raft-node or etcd.
    #[arg(long)]
    pub target: Option<crate::targets::TargetKind>,
    /// Where nodes run (overrides the plan's): local or netns.
    #[arg(long, value_parser = parse_hosts)]
    pub hosts: Option<crate::plan::HostsKind>,
    /// Folder for run folders.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// An extra argument for every node, after the plan's (repeat it: `--node-arg=--bug --node-arg=no-fsync`).
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
}

fn parse_hosts(text: &str) -> Result<crate::plan::HostsKind, String> {
    match text {
        "local" => Ok(crate::plan::HostsKind::Local),
        "netns" => Ok(crate::plan::HostsKind::Netns),
        "ssh" => Ok(crate::plan::HostsKind::Ssh),
        other => Err(format!("expected local, netns or ssh, got {other:?}")),
    }
}

/// A current-thread runtime: node processes must be started from a thread that lives as long as the run (see
/// the supervisor), and one thread was faster than several on two cores.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Runs `chaos run` and returns the exit code. A panic anywhere in chaos is a tool error (exit 2).
pub fn run_command(args: &RunArgs) -> std::process::ExitCode {
    let opts = RunOptions {
        plan: args.plan.clone(),
        seed: args.seed,
        nodes: args.nodes,
        duration: args.duration,
        target: args.target,
        hosts: args.hosts,
        out: args.out.clone(),
        quiet: args.quiet,
        node_args: args.node_args.clone(),
    };
    let result = match runtime() {
        Ok(rt) => {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(run(&opts))))
                .unwrap_or_else(|panic| {
                    let text = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(RunError::Tool(format!("chaos panicked: {text}")))
                })
        }
        Err(e) => Err(RunError::Setup(e)),
    };
    match result {
        Ok(summary) => {
            if args.json {
                crate::output::print_stdout(&serde_json::to_string_pretty(&summary).expect("json"));
            }
            if !args.quiet || !args.json {
                eprintln!("{}", verdict_line(&summary));
            }
            std::process::ExitCode::from(summary.verdict.exit_code())
        }
        Err(e) => {
            if args.json {
                crate::output::print_stdout(
                    &serde_json::json!({"schema_version": RUN_SCHEMA_VERSION, "error": e.to_string(), "exit": e.exit_code()}).to_string(),
                );
            }
            eprintln!("chaos: error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
