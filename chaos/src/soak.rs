//! `chaos soak crash-cycles`: crash every node again and again under a steady write load, then check that every
//! acknowledged write can still be read.
//!
//! ```text
//! launch → leader → writers start → N × (write a while → kill -9 every node, each at its own random moment →
//! down a while → restart all → wait for a leader → pause the writers, read and verify every key, resume)
//! → writers stop → read and verify every key → report
//! ```
//!
//! Each writer is one client that owns its keys and writes unique values to them one at a time, so each key's
//! writes are totally ordered and every outcome is known: ok (acknowledged), fail (definitely not done) or
//! unknown (maybe done). [`verify_key`] holds the rule: a key's final value must be its last acknowledged write
//! or a later write whose outcome was unknown. An absent key or an older acknowledged value is a **loss**. An
//! older *unknown* write is allowed (an unknown write may take effect at any time after it was sent), and is
//! counted apart. A value no one wrote, or a write that was reported failed, is a violation too. Every key is
//! verified after every cycle (with no write in flight: the writers pause for it) and once more at the end, so
//! each crash is checked against every key's latest acknowledged write.
//!
//! Every random choice (how long to write, when each node dies, how long the cluster stays down, the restart
//! order, which key each writer picks) comes from the seed, printed first. Timing still depends on the machine,
//! so a replay with the same seed makes the same choices, not the same interleaving.
//!
//! Exit status: 0 no loss, 1 a loss or another violation (or the cluster did not come back), 2 tool or setup
//! error, 130 interrupted.

use crate::cluster::{resolve_binary, Cluster};
use crate::plan::{Dur, Plan};
use crate::runner::{make_run_dir, RunError};
use crate::schedule::derive_seed;
use crate::supervisor::ProcessState;
use crate::targets::{ClientSettings, KvClient, Outcome, TargetKind};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Version of the JSON report.
pub const SOAK_SCHEMA_VERSION: u32 = 1;
/// Most cycles one command runs (at most about four days at the longest cycle).
pub const CYCLES_MAX: u32 = 10_000;
/// Most writers.
pub const CLIENTS_MAX: usize = 64;
/// Most keys per writer.
pub const KEYS_PER_CLIENT_MAX: usize = 1_000;
/// Findings listed in the report (all are counted).
const FINDINGS_LISTED_MAX: usize = 20;
/// Deadline of one write while nodes crash: past it the write is unknown and the writer moves on.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Deadline of one verification read attempt.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one verification pass may take in all, retries included.
const VERIFY_DEADLINE: Duration = Duration::from_secs(60);
/// How long a cluster may take to elect a leader after a restart before the soak gives up on it.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Writing time before each crash, drawn uniformly.
const WRITE_PHASE_MS: std::ops::Range<u64> = 500..1500;
/// Every node is killed at its own moment within this window.
const KILL_WINDOW_MS: u64 = 1000;
/// Time all nodes stay down, drawn uniformly.
const DOWN_MS: std::ops::Range<u64> = 0..500;
/// Gap between two restarts, drawn uniformly.
const RESTART_GAP_MS: std::ops::Range<u64> = 0..100;
/// A writer's pause after a write that did not succeed, so a cluster that is down costs no busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// `chaos soak` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SoakCommand {
    /// Kill -9 every node at random moments under a write load, restart, repeat; then verify that every
    /// acknowledged write is readable.
    ///
    /// Exit status: 0 no loss, 1 a lost acknowledged write or another violation, 2 tool or setup error, 130
    /// interrupted.
    CrashCycles(CrashCycleArgs),
}

/// `chaos soak crash-cycles` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  chaos soak crash-cycles\n  chaos soak crash-cycles --cycles 100 --seed 42\n  chaos soak crash-cycles --target etcd --nodes 5 --json"
)]
pub struct CrashCycleArgs {
    /// Crash cycles: each kills every node once and restarts them all.
    #[arg(long, default_value_t = 5)]
    pub cycles: u32,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The system under test: raft-node or etcd.
    #[arg(long, default_value = "raft-node")]
    pub target: TargetKind,
    /// Seed of every random choice (printed first; drawn at random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Concurrent writers, each owning its keys.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Keys per writer.
    #[arg(long, default_value_t = 4)]
    pub keys_per_client: usize,
    /// The node binary (default: the target's).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Folder for the run folders.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The outcome of one write, as the target's client reported it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteOutcome {
    /// Acknowledged.
    Ok,
    /// Definitely not done.
    Fail,
    /// Maybe done.
    Unknown,
}

/// One write of a key: its value and outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The value written (unique within the key).
    pub value: String,
    /// What the client was told.
    pub outcome: WriteOutcome,
}

/// What the final read of a key shows, against the key's writes in order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum KeyCheck {
    /// The last acknowledged write, a later unknown one, or (no write acknowledged) absent or unknown.
    Ok,
    /// An unknown write older than the last acknowledged one: allowed (it may have taken effect late), counted.
    LateUnknown {
        /// Its value.
        value: String,
    },
    /// An acknowledged write is gone: the key is absent or holds an older acknowledged value.
    Lost {
        /// The last acknowledged value.
        acknowledged: String,
        /// What was read instead.
        found: Option<String>,
    },
    /// A write the client was told definitely failed is what the key holds.
    FailedWriteVisible {
        /// Its value.
        value: String,
    },
    /// The key holds a value that was never written to it.
    Foreign {
        /// The value.
        found: String,
    },
}

/// Checks a key's final value `found` against its writes in the order they were made (one at a time).
pub fn verify_key(writes: &[Write], found: Option<&str>) -> KeyCheck {
    let last_ok = writes.iter().rposition(|w| w.outcome == WriteOutcome::Ok);
    let Some(found) = found else {
        return match last_ok {
            Some(a) => KeyCheck::Lost {
                acknowledged: writes[a].value.clone(),
                found: None,
            },
            None => KeyCheck::Ok,
        };
    };
    let Some(j) = writes.iter().position(|w| w.value == found) else {
        return KeyCheck::Foreign {
            found: found.to_string(),
        };
    };
    match (writes[j].outcome, last_ok) {
        (WriteOutcome::Fail, _) => KeyCheck::FailedWriteVisible {
            value: found.to_string(),
        },
        (_, None) => KeyCheck::Ok,
        (_, Some(a)) if j >= a => KeyCheck::Ok,
        (WriteOutcome::Unknown, Some(_)) => KeyCheck::LateUnknown {
            value: found.to_string(),
        },
        (WriteOutcome::Ok, Some(a)) => KeyCheck::Lost {
            acknowledged: writes[a].value.clone(),
            found: Some(found.to_string()),
        },
    }
}

/// Counts of writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteCounts {
    /// Writes sent.
    pub attempted: u64,
    /// Acknowledged.
    pub acknowledged: u64,
    /// Outcome unknown.
    pub unknown: u64,
    /// Definitely not done.
    pub failed: u64,
}

/// One crash cycle, for the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CycleRecord {
    /// 1-based.
    pub cycle: u32,
    /// The order in which nodes were killed.
    pub killed: Vec<u64>,
    /// Writes acknowledged during the cycle.
    pub acknowledged: u64,
    /// Writes whose outcome was unknown during the cycle.
    pub unknown: u64,
    /// From the last restart to a leader, as seen by status polls.
    pub recovery_ms: u64,
}

/// A key whose check is not `Ok`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyFinding {
    /// The cycle after which it was found (`None`: the check at the end).
    pub after_cycle: Option<u32>,
    /// The key.
    pub key: String,
    /// Its writes (acknowledged, unknown, failed).
    pub writes: WriteCounts,
    /// What was wrong.
    pub check: KeyCheck,
}

/// The report of one soak.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SoakReport {
    /// [`SOAK_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// "crash-cycles".
    pub soak: &'static str,
    /// The target's name.
    pub target: &'static str,
    /// Nodes.
    pub nodes: usize,
    /// The seed.
    pub seed: u64,
    /// The command that replays the choices.
    pub replay: String,
    /// Cycles asked for.
    pub cycles_planned: u32,
    /// Cycles completed (every node killed and the cluster back with a leader).
    pub cycles: u32,
    /// SIGKILLs sent.
    pub kills: u64,
    /// Restarts.
    pub restarts: u64,
    /// Writers.
    pub clients: usize,
    /// Keys written (and read back).
    pub keys: usize,
    /// Writes by outcome.
    pub writes: WriteCounts,
    /// Key checks done: every key after every completed cycle and at the end.
    pub key_checks: u64,
    /// Checks whose read never succeeded (not verified).
    pub unreadable: u64,
    /// Checks that found an acknowledged write lost.
    pub losses: u64,
    /// Checks that found an unknown write older than the key's last acknowledged one (allowed).
    pub late_unknown_writes: u64,
    /// Checks that found a write reported as failed.
    pub failed_writes_visible: u64,
    /// Checks that found a value never written.
    pub foreign_values: u64,
    /// Why the soak stopped early, if the cluster did not come back.
    pub not_recovered: Option<String>,
    /// "pass" or "fail".
    pub verdict: &'static str,
    /// The first findings (all are counted above).
    pub findings: Vec<KeyFinding>,
    /// Per cycle.
    pub cycle_records: Vec<CycleRecord>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The run folder (node logs and data, certificates, `soak.json`).
    pub run_dir: String,
}

impl SoakReport {
    /// 0 pass, 1 fail.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.verdict != "pass")
    }
}

fn check_args(args: &CrashCycleArgs) -> Result<(), String> {
    if !(1..=CYCLES_MAX).contains(&args.cycles) {
        return Err(format!(
            "--cycles {} is outside 1..={CYCLES_MAX}",
            args.cycles
        ));
    }
    if !(1..=CLIENTS_MAX).contains(&args.clients) {
        return Err(format!(
            "--clients {} is outside 1..={CLIENTS_MAX}",
            args.clients
        ));
    }
    if !(1..=KEYS_PER_CLIENT_MAX).contains(&args.keys_per_client) {
        return Err(format!(
            "--keys-per-client {} is outside 1..={KEYS_PER_CLIENT_MAX}",
            args.keys_per_client
        ));
    }
    Ok(())
}

/// The plan the cluster is launched from: defaults, with the soak's target and nodes, and a duration that covers
/// the longest the soak can take, with certificates valid that long.
fn soak_plan(args: &CrashCycleArgs) -> Result<Plan, RunError> {
    let mut plan = Plan::parse(
        "name = \"soak-crash-cycles\"\nduration = \"1s\"\n",
        "chaos soak crash-cycles",
    )?;
    plan.cluster.target = args.target;
    plan.cluster.nodes = args.nodes;
    plan.cluster.binary = args.binary.clone();
    let cycle_max =
        WRITE_PHASE_MS.end + KILL_WINDOW_MS + DOWN_MS.end + RECOVERY_TIMEOUT.as_millis() as u64;
    plan.duration = Dur(Duration::from_millis(cycle_max * u64::from(args.cycles)));
    plan.cluster.cert_validity = Dur(plan.cluster.cert_validity.0.max(plan.total() * 2));
    plan.validate("chaos soak crash-cycles (flags)")?;
    Ok(plan)
}

/// What the writers share with the cycle loop.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    /// Writers hold it shared for each write; a verification pass holds it exclusively, so it sees every write
    /// settled (none in flight).
    gate: tokio::sync::RwLock<()>,
    /// Every write of every key, in order.
    logs: std::sync::Mutex<KeyLogs>,
    attempted: AtomicU64,
    acknowledged: AtomicU64,
    unknown: AtomicU64,
    failed: AtomicU64,
}

type KeyLogs = BTreeMap<String, Vec<Write>>;

impl Shared {
    fn logs(&self) -> std::sync::MutexGuard<'_, KeyLogs> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One writer: its own keys, one write at a time, until told to stop; every write goes into `shared.logs`.
async fn writer(
    id: usize,
    mut client: Box<dyn KvClient>,
    keys: usize,
    seed: u64,
    shared: Arc<Shared>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let names: Vec<String> = (0..keys).map(|k| format!("soak-c{id}-k{k}")).collect();
    shared
        .logs()
        .extend(names.iter().map(|k| (k.clone(), Vec::new())));
    let mut seq = 0_u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let pass = shared.gate.read().await;
        let key = &names[rng.gen_range(0..names.len())];
        seq += 1;
        let value = format!("c{id}-{seq}");
        shared.attempted.fetch_add(1, Ordering::Relaxed);
        let outcome = match client.write(key, &value).await {
            Outcome::Ok(()) => WriteOutcome::Ok,
            Outcome::Fail(_) => WriteOutcome::Fail,
            Outcome::Unknown(_) => WriteOutcome::Unknown,
        };
        let counter = match outcome {
            WriteOutcome::Ok => &shared.acknowledged,
            WriteOutcome::Fail => &shared.failed,
            WriteOutcome::Unknown => &shared.unknown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        shared
            .logs()
            .get_mut(key)
            .expect("a key of this writer")
            .push(Write { value, outcome });
        drop(pass);
        if outcome != WriteOutcome::Ok {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
    client.close().await;
}

/// Waits for a leader after a restart. `Err` names a node that exited on its own (a crash of the system under
/// test, e.g. refusing its data dir) or says that no leader came in time.
async fn await_recovery(cluster: &mut Cluster) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        if cluster.leader().await.is_some() {
            return Ok(started.elapsed());
        }
        for id in cluster.ids() {
            if cluster.supervisor.state(id) == ProcessState::Down {
                return Err(format!(
                    "n{id} exited on its own after a restart; node logs:{}",
                    cluster.log_tails()
                ));
            }
        }
        if started.elapsed() > RECOVERY_TIMEOUT {
            return Err(format!(
                "no leader within {}s of the restart; node logs:{}",
                RECOVERY_TIMEOUT.as_secs(),
                cluster.log_tails()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `key` until a read succeeds or `deadline` passes.
async fn read_settled(
    client: &mut Box<dyn KvClient>,
    key: &str,
    deadline: Instant,
) -> Option<Option<String>> {
    loop {
        match client.read(key).await {
            Outcome::Ok(value) => return Some(value),
            Outcome::Fail(e) | Outcome::Unknown(e) => {
                if Instant::now() > deadline {
                    tracing::warn!(key, error = %e, "verification read failed");
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn counts(writes: &[Write]) -> WriteCounts {
    let n = |o| writes.iter().filter(|w| w.outcome == o).count() as u64;
    WriteCounts {
        attempted: writes.len() as u64,
        acknowledged: n(WriteOutcome::Ok),
        unknown: n(WriteOutcome::Unknown),
        failed: n(WriteOutcome::Fail),
    }
}

fn progress(json: bool, line: &str) {
    if !json {
        eprintln!("{line}");
    }
}

async fn crash_cycles(args: &CrashCycleArgs, seed: u64) -> Result<SoakReport, RunError> {
    let started = Instant::now();
    let plan = soak_plan(args)?;
    let binary = resolve_binary(&plan, "chaos soak crash-cycles".as_ref())?;
    let run_dir = make_run_dir(&args.out, &plan)?;
    let replay = format!(
        "chaos soak crash-cycles --cycles {} --nodes {} --target {} --clients {} --keys-per-client {} --seed {seed}",
        args.cycles,
        args.nodes,
        args.target.name(),
        args.clients,
        args.keys_per_client
    );
    progress(
        args.json,
        &format!(
            "chaos soak crash-cycles against {} ({} nodes): seed {seed} (replay: {replay})\nrun folder: {}",
            args.target.name(),
            args.nodes,
            run_dir.display()
        ),
    );
    let mut cluster = Cluster::launch(&plan, seed, &binary, &run_dir).await?;
    cluster.await_leader(plan.cluster.startup_timeout.0).await?;
    let shared = Arc::new(Shared::default());
    let settings = ClientSettings::new(WRITE_TIMEOUT);
    let mut writers = Vec::new();
    for c in 0..args.clients {
        let client = cluster
            .target
            .connect(&cluster.layout, &settings)
            .map_err(|e| RunError::Setup(format!("client {c}: {e}")))?;
        writers.push(tokio::spawn(writer(
            c,
            client,
            args.keys_per_client,
            derive_seed(seed, &format!("soak-writer-{c}")),
            shared.clone(),
        )));
    }
    let read_settings = ClientSettings::new(READ_TIMEOUT);
    let mut reader = cluster
        .target
        .connect(&cluster.layout, &read_settings)
        .map_err(|e| RunError::Setup(format!("verification client: {e}")))?;
    let mut report = SoakReport {
        schema_version: SOAK_SCHEMA_VERSION,
        soak: "crash-cycles",
        target: args.target.name(),
        nodes: args.nodes,
        seed,
        replay,
        cycles_planned: args.cycles,
        cycles: 0,
        kills: 0,
        restarts: 0,
        clients: args.clients,
        keys: args.clients * args.keys_per_client,
        writes: WriteCounts::default(),
        key_checks: 0,
        unreadable: 0,
        losses: 0,
        late_unknown_writes: 0,
        failed_writes_visible: 0,
        foreign_values: 0,
        not_recovered: None,
        verdict: "pass",
        findings: Vec::new(),
        cycle_records: Vec::new(),
        seconds: 0.0,
        run_dir: run_dir.display().to_string(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "soak-crash-cycles"));
    let ids = cluster.ids();
    let (mut acked_before, mut unknown_before) = (0, 0);
    for cycle in 1..=args.cycles {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(WRITE_PHASE_MS))).await;
        let mut kill_at: Vec<(u64, u64)> = ids
            .iter()
            .map(|&id| (rng.gen_range(0..KILL_WINDOW_MS), id))
            .collect();
        kill_at.sort_unstable();
        let window = Instant::now();
        for &(at_ms, id) in &kill_at {
            let at = window + Duration::from_millis(at_ms);
            tokio::time::sleep_until(at.into()).await;
            cluster
                .supervisor
                .kill(id)
                .map_err(|e| RunError::Tool(format!("killing n{id}: {e}")))?;
            report.kills += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(DOWN_MS))).await;
        let mut order = ids.clone();
        order.shuffle(&mut rng);
        for &id in &order {
            cluster
                .supervisor
                .start(id)
                .map_err(|e| RunError::Tool(format!("restarting n{id}: {e}")))?;
            report.restarts += 1;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(RESTART_GAP_MS))).await;
        }
        let recovery = match await_recovery(&mut cluster).await {
            Ok(d) => d,
            Err(why) => {
                report.not_recovered = Some(format!("cycle {cycle}: {why}"));
                break;
            }
        };
        let problems_before = problems(&report);
        verify(&shared, &mut reader, Some(cycle), &mut report).await;
        let acked = shared.acknowledged.load(Ordering::Relaxed);
        let unknown = shared.unknown.load(Ordering::Relaxed);
        let record = CycleRecord {
            cycle,
            killed: kill_at.iter().map(|&(_, id)| id).collect(),
            acknowledged: acked - acked_before,
            unknown: unknown - unknown_before,
            recovery_ms: recovery.as_millis() as u64,
        };
        (acked_before, unknown_before) = (acked, unknown);
        progress(
            args.json,
            &format!(
                "cycle {cycle}/{}: killed {}; restarted; leader after {} ms; {} acknowledged, {} unknown; {} keys verified{}",
                args.cycles,
                record
                    .killed
                    .iter()
                    .map(|id| format!("n{id}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                record.recovery_ms,
                record.acknowledged,
                record.unknown,
                report.keys,
                match problems(&report) - problems_before {
                    0 => String::new(),
                    n => format!(", {n} PROBLEMS"),
                }
            ),
        );
        report.cycle_records.push(record);
        report.cycles = cycle;
    }
    // Let the last cycle's restart take writes too, then stop the writers (each ends its write in flight).
    tokio::time::sleep(Duration::from_millis(rng.gen_range(WRITE_PHASE_MS))).await;
    shared.stop.store(true, Ordering::Relaxed);
    for (c, handle) in writers.into_iter().enumerate() {
        handle
            .await
            .map_err(|e| RunError::Tool(format!("writer {c} failed: {e}")))?;
    }
    report.writes = WriteCounts {
        attempted: shared.attempted.load(Ordering::Relaxed),
        acknowledged: shared.acknowledged.load(Ordering::Relaxed),
        unknown: shared.unknown.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
    };
    if report.not_recovered.is_none() {
        verify(&shared, &mut reader, None, &mut report).await;
    }
    reader.close().await;
    let failed = report.not_recovered.is_some() || problems(&report) > 0;
    report.verdict = if failed { "fail" } else { "pass" };
    report.seconds = started.elapsed().as_secs_f64();
    cluster.stop(&run_dir).await;
    let json = serde_json::to_string_pretty(&report).expect("json");
    std::fs::write(run_dir.join("soak.json"), &json)
        .map_err(|e| RunError::Tool(format!("writing soak.json: {e}")))?;
    Ok(report)
}

/// Checks that fail the soak.
fn problems(r: &SoakReport) -> u64 {
    r.unreadable + r.losses + r.failed_writes_visible + r.foreign_values
}

/// Pauses the writers (waiting for the writes in flight), reads every key and checks it against its writes.
async fn verify(
    shared: &Shared,
    reader: &mut Box<dyn KvClient>,
    after_cycle: Option<u32>,
    report: &mut SoakReport,
) {
    let _paused = shared.gate.write().await;
    let logs = shared.logs().clone();
    let deadline = Instant::now() + VERIFY_DEADLINE;
    for (key, writes) in &logs {
        report.key_checks += 1;
        let Some(found) = read_settled(reader, key, deadline).await else {
            report.unreadable += 1;
            continue;
        };
        let check = verify_key(writes, found.as_deref());
        match &check {
            KeyCheck::Ok => continue,
            KeyCheck::LateUnknown { .. } => report.late_unknown_writes += 1,
            KeyCheck::Lost { .. } => report.losses += 1,
            KeyCheck::FailedWriteVisible { .. } => report.failed_writes_visible += 1,
            KeyCheck::Foreign { .. } => report.foreign_values += 1,
        }
        if report.findings.len() < FINDINGS_LISTED_MAX {
            report.findings.push(KeyFinding {
                after_cycle,
                key: key.clone(),
                writes: counts(writes),
                check,
            });
        }
    }
}

fn text(r: &SoakReport) -> String {
    let mut out = format!(
        "{}: crash-cycles against {} ({} nodes, seed {}): {} of {} cycles, {} kills; writes: {} acknowledged, {} unknown, {} failed; {} keys checked {} times in all ({} unreadable); losses {}",
        r.verdict.to_uppercase(),
        r.target,
        r.nodes,
        r.seed,
        r.cycles,
        r.cycles_planned,
        r.kills,
        r.writes.acknowledged,
        r.writes.unknown,
        r.writes.failed,
        r.keys,
        r.key_checks,
        r.unreadable,
        r.losses,
    );
    if r.late_unknown_writes > 0 {
        out.push_str(&format!(
            "; {} checks found an older unknown write (allowed)",
            r.late_unknown_writes
        ));
    }
    if r.failed_writes_visible > 0 {
        out.push_str(&format!(
            "; {} checks found a failed write",
            r.failed_writes_visible
        ));
    }
    if r.foreign_values > 0 {
        out.push_str(&format!(
            "; {} checks found a value never written",
            r.foreign_values
        ));
    }
    out.push_str(&format!("; {:.1}s; {}", r.seconds, r.run_dir));
    if let Some(why) = &r.not_recovered {
        out.push_str(&format!("\n  the cluster did not come back: {why}"));
    }
    for f in &r.findings {
        out.push_str(&format!(
            "\n  {} after {}: {:?} ({} acknowledged, {} unknown, {} failed writes)",
            f.key,
            f.after_cycle
                .map_or("the end".to_string(), |c| format!("cycle {c}")),
            f.check,
            f.writes.acknowledged,
            f.writes.unknown,
            f.writes.failed
        ));
    }
    out
}

fn random_seed() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        % 1_000_000_000
}

/// Runs `chaos soak ...` and returns the exit code. A panic anywhere in chaos is a tool error (exit 2).
pub fn run(command: &SoakCommand) -> ExitCode {
    let SoakCommand::CrashCycles(args) = command;
    let result = run_crash_cycles(args);
    match result {
        Ok(report) => {
            if args.json {
                crate::output::print_stdout(&serde_json::to_string_pretty(&report).expect("json"));
            } else {
                crate::output::print_stdout(&text(&report));
            }
            ExitCode::from(report.exit_code())
        }
        Err(e) => {
            if args.json {
                crate::output::print_stdout(
                    &serde_json::json!({"schema_version": SOAK_SCHEMA_VERSION, "error": e.to_string(), "exit": e.exit_code()})
                        .to_string(),
                );
            }
            eprintln!("chaos: error: soak crash-cycles: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run_crash_cycles(args: &CrashCycleArgs) -> Result<SoakReport, RunError> {
    check_args(args).map_err(RunError::Setup)?;
    let seed = args.seed.unwrap_or_else(random_seed);
    let runtime = crate::runner::runtime().map_err(RunError::Setup)?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            tokio::select! {
                result = crash_cycles(args, seed) => result,
                // Dropping the soak's future dropped the cluster, which stopped every node.
                name = crate::runner::interrupted() => Err(RunError::Interrupted(name)),
            }
        })
    }))
    .unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(RunError::Tool(format!("chaos panicked: {text}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(value: &str, outcome: WriteOutcome) -> Write {
        Write {
            value: value.into(),
            outcome,
        }
    }

    use WriteOutcome::{Fail, Ok as Acked, Unknown};

    #[test]
    fn the_last_acknowledged_write_or_a_later_unknown_one_passes() {
        let writes = [w("1", Acked), w("2", Acked), w("3", Unknown), w("4", Fail)];
        assert_eq!(verify_key(&writes, Some("2")), KeyCheck::Ok);
        assert_eq!(verify_key(&writes, Some("3")), KeyCheck::Ok);
    }

    #[test]
    fn an_older_acknowledged_value_or_an_absent_key_is_a_loss() {
        let writes = [w("1", Acked), w("2", Acked), w("3", Unknown)];
        assert_eq!(
            verify_key(&writes, Some("1")),
            KeyCheck::Lost {
                acknowledged: "2".into(),
                found: Some("1".into())
            }
        );
        assert_eq!(
            verify_key(&writes, None),
            KeyCheck::Lost {
                acknowledged: "2".into(),
                found: None
            }
        );
    }

    #[test]
    fn an_older_unknown_write_is_allowed_but_counted() {
        let writes = [w("1", Unknown), w("2", Acked)];
        assert_eq!(
            verify_key(&writes, Some("1")),
            KeyCheck::LateUnknown { value: "1".into() }
        );
    }

    #[test]
    fn failed_and_foreign_values_are_violations() {
        let writes = [w("1", Acked), w("2", Fail)];
        assert_eq!(
            verify_key(&writes, Some("2")),
            KeyCheck::FailedWriteVisible { value: "2".into() }
        );
        assert_eq!(
            verify_key(&writes, Some("9")),
            KeyCheck::Foreign { found: "9".into() }
        );
    }

    #[test]
    fn without_an_acknowledged_write_absent_or_unknown_is_fine() {
        assert_eq!(verify_key(&[], None), KeyCheck::Ok);
        let writes = [w("1", Unknown), w("2", Fail)];
        assert_eq!(verify_key(&writes, None), KeyCheck::Ok);
        assert_eq!(verify_key(&writes, Some("1")), KeyCheck::Ok);
        assert_eq!(
            verify_key(&[], Some("1")),
            KeyCheck::Foreign { found: "1".into() }
        );
    }

    #[test]
    fn bad_flags_are_refused_before_anything_starts() {
        let args = |cycles, clients, keys| CrashCycleArgs {
            cycles,
            nodes: 3,
            target: TargetKind::RaftNode,
            seed: None,
            clients,
            keys_per_client: keys,
            binary: None,
            out: PathBuf::from("results"),
            json: false,
        };
        assert!(check_args(&args(5, 4, 4)).is_ok());
        assert!(check_args(&args(0, 4, 4)).unwrap_err().contains("--cycles"));
        assert!(check_args(&args(5, 0, 4))
            .unwrap_err()
            .contains("--clients"));
        assert!(check_args(&args(5, 4, 100_000))
            .unwrap_err()
            .contains("--keys-per-client"));
    }
}
