//! `chaos run`: setup → warm-up → faults → heal → recovery → final reads → stop → check → verdict.
//!
//! Everything a run produces goes into its folder `results/<plan>-<UTC timestamp>/`: `manifest.json` (the
//! resolved plan, seed, git commit, timeline), `history.jsonl`, `events.jsonl`, `nodes/<id>/` (data and log),
//! `certs/`, `report.json` and, when the history is not linearizable, `counterexample.html`.

use crate::nemesis::{
    find_leader, ActiveFault, ClockBackend, EventLog, LinkDegradation, Nemesis, NetworkBackend,
};
use crate::plan::{Dur, Model, NetworkBackendKind, Plan, PlanError};
use crate::recorder;
use crate::schedule::{derive_seed, schedule, ScheduledFault, Targets};
use crate::supervisor::{NodeLaunch, Supervisor};
use crate::workload::{self, Connection, KeyPool, WorkloadShared};
use checker::history::{EventKind, Header};
use checker::{Budget, CheckOptions, CheckReport, ModelKind, Verdict};
use raft_transport::{
    generate_cluster_certs, CertValidity, ClientEndpoint, ClusterCertSpec, Credentials, NodeSpec,
    PeerIdentity, TransportConfig,
};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Version of `manifest.json` and `report.json`.
pub const RUN_SCHEMA_VERSION: u32 = 1;
/// The client certificate the workload uses.
pub const CLIENT_NAME: &str = "chaos";

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
    /// Where run folders go.
    pub out: PathBuf,
    /// No progress display.
    pub quiet: bool,
}

/// How a run ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunVerdict {
    /// Linearizable and every expectation held.
    Pass,
    /// Not linearizable, or an expectation failed.
    Fail,
    /// The checker could not decide within its budget.
    Unknown,
}

impl RunVerdict {
    /// The process exit code: 0 pass, 1 fail, 3 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            RunVerdict::Pass => 0,
            RunVerdict::Fail => 1,
            RunVerdict::Unknown => 3,
        }
    }
}

/// The machine-readable summary of a run (`report.json`'s top, and `--json` output).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunSummary {
    /// [`RUN_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Plan name.
    pub plan: String,
    /// The seed.
    pub seed: u64,
    /// The run folder.
    pub run_dir: String,
    /// The verdict.
    pub verdict: RunVerdict,
    /// The checker's verdict on the history.
    pub linearizability: String,
    /// Why the run failed, besides the checker's verdict.
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

/// A run that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan is invalid (exit 2).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The run could not be set up (exit 2): the message says what and where.
    #[error("setup failed: {0}")]
    Setup(String),
    /// Ctrl-C (exit 130); every node was stopped.
    #[error("interrupted; every node process was stopped")]
    Interrupted,
}

impl RunError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Plan(_) | RunError::Setup(_) => 2,
            RunError::Interrupted => 130,
        }
    }
}

/// Loads the plan and applies the command-line overrides.
pub fn load_plan(opts: &RunOptions) -> Result<Plan, RunError> {
    let mut plan = Plan::load(&opts.plan)?;
    if let Some(n) = opts.nodes {
        plan.cluster.nodes = n;
    }
    if let Some(d) = opts.duration {
        plan.duration = Dur(d);
        // Fixed fault times beyond a shortened phase are dropped rather than rejected.
        for f in &mut plan.faults {
            f.at.retain(|t| t.0 < d);
            if f.at.is_empty() && f.every.is_none() {
                f.every = Some(Dur(d));
            }
        }
    }
    plan.validate(&format!(
        "{} (with command-line overrides)",
        opts.plan.display()
    ))?;
    Ok(plan)
}

/// The node binary: the plan's `cluster.binary`, else `raft-node` next to this program.
pub fn resolve_binary(plan: &Plan, plan_path: &Path) -> Result<PathBuf, RunError> {
    let (path, origin) = match &plan.cluster.binary {
        Some(p) => (
            p.clone(),
            format!("{}: cluster.binary", plan_path.display()),
        ),
        None => {
            let exe = std::env::current_exe()
                .map_err(|e| RunError::Setup(format!("cannot locate this program: {e}")))?;
            (
                exe.with_file_name("raft-node"),
                "the default (raft-node next to the chaos binary)".to_string(),
            )
        }
    };
    let meta = std::fs::metadata(&path).map_err(|e| {
        RunError::Setup(format!(
            "node binary {} from {origin} is not usable: {e}; build it with `cargo build --release -p raft-node` or set cluster.binary",
            path.display()
        ))
    })?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(RunError::Setup(format!(
            "node binary {} from {origin} is not an executable file",
            path.display()
        )));
    }
    Ok(path)
}

fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}+dirty")
            } else {
                commit
            }
        }
        None => "unknown".into(),
    }
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

pub(crate) fn make_run_dir(out: &Path, plan: &Plan) -> Result<PathBuf, RunError> {
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

/// Everything the cluster consists of.
pub(crate) struct Cluster {
    pub(crate) addrs: Vec<(u64, SocketAddr)>,
    pub(crate) certs: PathBuf,
    /// The relays between nodes, when the plan has network faults.
    mesh: Option<netproxy::RelayMesh>,
}

/// Clock faults through each node's clock-shim control file.
#[derive(Debug)]
struct ShimClocks {
    controls: std::collections::BTreeMap<u64, clock_shim::Control>,
}

impl ClockBackend for ShimClocks {
    fn set(&mut self, id: u64, offset_ns: i64, rate: f64) {
        if let Some(control) = self.controls.get(&id) {
            if let Err(e) = control.apply(offset_ns, rate) {
                tracing::error!(node = id, error = %e, "cannot set the node's clock");
            }
        }
    }
}

/// Network faults through the relay mesh's fault table.
#[derive(Debug)]
struct RelayNetwork {
    table: std::sync::Arc<netproxy::FaultTable>,
}

impl NetworkBackend for RelayNetwork {
    fn apply(&mut self, links: &std::collections::BTreeMap<(u64, u64), LinkDegradation>) {
        self.table.clear_all();
        for (&(from, to), d) in links {
            let fault = netproxy::LinkFault {
                drop_all: d.cut,
                loss: d.loss,
                delay: d.delay,
                jitter: d.jitter,
                duplicate: d.duplicate,
                reorder: d.reorder,
                reorder_delay: if d.reorder > 0.0 {
                    netproxy::REORDER_HOLD_DEFAULT
                } else {
                    Duration::ZERO
                },
                rate: d
                    .rate_limit_bytes_per_s
                    .map(netproxy::RateLimit::per_second),
            };
            if let Err(e) = self.table.set(from, to, fault) {
                tracing::error!(from, to, error = %e, "cannot apply a link fault");
            }
        }
    }
}

/// The network and clock backends of a run, when its plan needs them.
pub(crate) type Backends = (
    Option<Box<dyn NetworkBackend>>,
    Option<Box<dyn ClockBackend>>,
);

pub(crate) async fn prepare_cluster(
    plan: &Plan,
    seed: u64,
    binary: &Path,
    run_dir: &Path,
    quiet: bool,
) -> Result<(Cluster, Supervisor, Backends), RunError> {
    let n = plan.cluster.nodes as u64;
    // With the nftables backend every node has its own loopback address, so kernel rules can tell them apart.
    let kernel_network =
        plan.needs_relays() && plan.cluster.network == NetworkBackendKind::Nftables;
    if kernel_network {
        crate::nftables::available().map_err(|why| {
            RunError::Setup(format!(
                "cluster.network = \"nftables\" needs root and nft: {why}"
            ))
        })?;
        for table in crate::nftables::clean_leftovers() {
            tracing::warn!(%table, "removed nftables rules left behind by a run that crashed");
        }
    }
    let node_ip = |id: u64| {
        if kernel_network {
            crate::nftables::node_ip(id)
        } else {
            Ipv4Addr::LOCALHOST
        }
    };
    let certs = run_dir.join("certs");
    let now = SystemTime::now();
    let validity = CertValidity::new(
        now - Duration::from_secs(3600),
        now + plan.cluster.cert_validity.0,
    )
    .map_err(|e| RunError::Setup(format!("certificate validity: {e}")))?;
    let spec = ClusterCertSpec {
        ca_name: format!(
            "chaos run {} CA",
            run_dir
                .file_name()
                .map_or("".into(), |n| n.to_string_lossy())
        ),
        nodes: (1..=n)
            .map(|id| NodeSpec {
                id,
                addrs: vec![IpAddr::V4(node_ip(id))],
            })
            .collect(),
        clients: vec![CLIENT_NAME.into()],
        validity,
    };
    generate_cluster_certs(&certs, &spec)
        .map_err(|e| RunError::Setup(format!("making certificates: {e}")))?;
    let addrs: Vec<(u64, SocketAddr)> = (1..=n)
        .map(|id| {
            (
                id,
                SocketAddr::from((node_ip(id), raft_node::local::free_port())),
            )
        })
        .collect();
    // With network faults, node i reaches node j through its own relay R(i, j), so any link can be cut.
    let mesh = if plan.needs_relays() && !kernel_network {
        let config = netproxy::MeshConfig {
            relay: netproxy::RelayConfig {
                seed: derive_seed(seed, "network"),
                ..netproxy::RelayConfig::default()
            },
            ..netproxy::MeshConfig::default()
        };
        Some(
            netproxy::RelayMesh::start(&addrs, config)
                .map_err(|e| RunError::Setup(format!("starting the network relays: {e}")))?,
        )
    } else {
        None
    };
    // With clock faults, every node runs under the clock shim, steered through its own control file.
    let shim = if plan.needs_clock_shim() {
        let library = clock_shim::library_path().ok_or_else(|| {
            RunError::Setup(
                "the plan has clock faults but the clock shim library was not found; build it with \
                 `cargo build --release -p clock-shim` (or set CHAOS_CLOCK_SHIM_LIBRARY)"
                    .into(),
            )
        })?;
        if !quiet {
            eprintln!(
                "clock faults: nodes run under {}; statically linked and Go binaries ignore it (details in manifest.json)",
                library.display()
            );
        }
        Some(library)
    } else {
        None
    };
    let mut controls = std::collections::BTreeMap::new();
    let mut supervisor = Supervisor::new();
    for &(id, addr) in &addrs {
        let node_dir = run_dir.join("nodes").join(format!("n{id}"));
        std::fs::create_dir_all(&node_dir)
            .map_err(setup_err(&format!("creating {}", node_dir.display())))?;
        let c = &plan.cluster;
        let mut args: Vec<OsString> = vec![
            "run".into(),
            "--id".into(),
            id.to_string().into(),
            "--listen".into(),
            addr.to_string().into(),
        ];
        args.extend(["--data-dir".into(), node_dir.join("data").into_os_string()]);
        args.extend(["--certs".into(), certs.clone().into_os_string()]);
        for &(peer, peer_addr) in &addrs {
            let route = mesh
                .as_ref()
                .filter(|_| peer != id)
                .and_then(|m| m.addr_for(id, peer))
                .unwrap_or(peer_addr);
            args.extend(["--peer".into(), format!("{peer}={route}").into()]);
        }
        for (flag, d) in [
            ("--heartbeat-interval", c.heartbeat_interval),
            ("--election-timeout-min", c.election_timeout_min),
            ("--election-timeout-max", c.election_timeout_max),
        ] {
            args.extend([flag.into(), format!("{}ms", d.0.as_millis()).into()]);
        }
        args.extend([
            "--snapshot-interval-entries".into(),
            c.snapshot_interval_entries.to_string().into(),
        ]);
        args.extend(c.extra_args.iter().map(OsString::from));
        let mut env = Vec::new();
        if let Some(library) = &shim {
            let path = node_dir.join("clock");
            let control = clock_shim::Control::create(&path)
                .map_err(|e| RunError::Setup(format!("clock control file for n{id}: {e}")))?;
            env.extend(
                control
                    .env(library)
                    .into_iter()
                    .map(|(k, v)| (OsString::from(k), v)),
            );
            controls.insert(id, control);
        }
        supervisor.add(NodeLaunch {
            id,
            program: binary.to_path_buf(),
            args,
            env,
            log: node_dir.join("node.log"),
        });
    }
    let network: Option<Box<dyn NetworkBackend>> = if kernel_network {
        let ips = addrs.iter().map(|&(id, _)| (id, node_ip(id))).collect();
        let run_id = run_dir
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy().into_owned());
        let nft = crate::nftables::NftNetwork::create(&run_id, &ips)
            .map_err(|e| RunError::Setup(format!("creating the nftables rules: {e}")))?;
        Some(Box::new(nft))
    } else {
        mesh.as_ref().map(|m| {
            Box::new(RelayNetwork {
                table: m.faults().clone(),
            }) as Box<dyn NetworkBackend>
        })
    };
    // A plan with network faults must never run without a way to inject them: that would pass vacuously.
    assert_eq!(
        network.is_some(),
        plan.needs_relays(),
        "network backend present exactly when the plan needs one"
    );
    let clocks: Option<Box<dyn ClockBackend>> =
        shim.map(|_| Box::new(ShimClocks { controls }) as Box<dyn ClockBackend>);
    Ok((
        Cluster { addrs, certs, mesh },
        supervisor,
        (network, clocks),
    ))
}

/// Starts every node and returns a client endpoint with the run's client certificate (for status polls).
pub(crate) fn start_nodes(
    cluster: &Cluster,
    supervisor: &mut Supervisor,
) -> Result<ClientEndpoint, RunError> {
    for id in supervisor.ids() {
        supervisor
            .start(id)
            .map_err(|e| RunError::Setup(e.to_string()))?;
    }
    let creds = Credentials::load(&cluster.certs, &PeerIdentity::Client(CLIENT_NAME.into()))
        .map_err(|e| RunError::Setup(format!("client certificate: {e}")))?;
    let endpoint = ClientEndpoint::bind(
        "127.0.0.1:0".parse().expect("valid"),
        &creds,
        1,
        TransportConfig::default(),
    )
    .map_err(|e| RunError::Setup(format!("client endpoint: {e}")))?;
    Ok(endpoint)
}

pub(crate) fn log_tails(supervisor: &Supervisor) -> String {
    let mut out = String::new();
    for id in supervisor.ids() {
        if let Some(path) = supervisor.log_path(id) {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            out.push_str(&format!(
                "\n--- n{id} ({}) ---\n{}",
                path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
    }
    out
}

/// The progress display: a bar on a terminal, phase lines otherwise, nothing with --quiet.
struct Progress {
    bar: indicatif::ProgressBar,
    quiet: bool,
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
        Progress { bar, quiet }
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
    let run_dir = make_run_dir(&opts.out, &plan)?;
    let replay = format!("chaos run {} --seed {seed}", opts.plan.display());
    if !opts.quiet {
        eprintln!(
            "chaos run {:?}: seed {seed} (replay: {replay})\nrun folder: {}",
            plan.name,
            run_dir.display()
        );
    }
    let interrupted = tokio::signal::ctrl_c();
    tokio::select! {
        result = lifecycle(&plan, seed, &binary, &run_dir, opts, replay) => result,
        _ = interrupted => {
            // Dropping the lifecycle future dropped the supervisor, which killed every node.
            Err(RunError::Interrupted)
        }
    }
}

async fn lifecycle(
    plan: &Plan,
    seed: u64,
    binary: &Path,
    run_dir: &Path,
    opts: &RunOptions,
    replay: String,
) -> Result<RunSummary, RunError> {
    let wall_start = Instant::now();
    let timeline = schedule(plan, seed);
    let commit = git_commit();
    let manifest = serde_json::json!({
        "schema_version": RUN_SCHEMA_VERSION,
        "tool": "chaos",
        "version": env!("CARGO_PKG_VERSION"),
        "plan_file": opts.plan.display().to_string(),
        "plan": plan,
        "seed": seed,
        "git_commit": commit,
        "started_at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "node_binary": binary.display().to_string(),
        "clock_shim_limitations": plan.needs_clock_shim().then_some(clock_shim::LIMITATIONS),
        "timeline": timeline,
        "replay": replay,
    });
    std::fs::write(
        run_dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).expect("json"),
    )
    .map_err(setup_err("writing manifest.json"))?;

    let (mut cluster, mut supervisor, (network, clocks)) =
        prepare_cluster(plan, seed, binary, run_dir, opts.quiet).await?;
    let endpoint = start_nodes(&cluster, &mut supervisor)?;
    let startup_deadline = Instant::now() + plan.cluster.startup_timeout.0;
    let first_leader = loop {
        if let Some(leader) = find_leader(&endpoint, &cluster.addrs).await {
            break leader;
        }
        let exited: Vec<u64> = supervisor
            .ids()
            .into_iter()
            .filter(|&id| supervisor.state(id) == crate::supervisor::ProcessState::Down)
            .collect();
        if !exited.is_empty() || Instant::now() > startup_deadline {
            let why = if exited.is_empty() {
                format!(
                    "no leader within {} (cluster.startup_timeout)",
                    plan.cluster.startup_timeout
                )
            } else {
                format!("node(s) {exited:?} exited during startup")
            };
            return Err(RunError::Setup(format!(
                "{why}; node logs:{}",
                log_tails(&supervisor)
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let started = Instant::now();
    let header = Header::new(
        serde_json::json!({"plan": plan.name, "seed": seed, "git_commit": commit, "model": "cas-register"}),
    );
    let (recorder, recorder_task) =
        recorder::start(&run_dir.join("history.jsonl"), &header, started)
            .map_err(setup_err("creating history.jsonl"))?;
    let events = EventLog::create(&run_dir.join("events.jsonl"))
        .map_err(setup_err("creating events.jsonl"))?;
    let mut nemesis = Nemesis::new(supervisor, events, network, clocks);
    recorder.note(
        "runner",
        EventKind::Info,
        "leader",
        serde_json::json!({"node": first_leader}),
    );

    let total = plan.warmup.0 + plan.duration.0 + plan.recovery.0;
    let progress = Progress::new(opts.quiet, total);
    let in_force = Arc::new(Mutex::new(String::from("warm-up")));
    let ticker = {
        let (bar, recorder, in_force) = (progress.bar.clone(), recorder.clone(), in_force.clone());
        tokio::spawn(async move {
            loop {
                let c = recorder.counts();
                bar.set_position(recorder.started().elapsed().as_secs());
                bar.set_message(format!(
                    "ok {} fail {} info {} | {}",
                    c.ok.load(Ordering::Relaxed),
                    c.fail.load(Ordering::Relaxed),
                    c.info.load(Ordering::Relaxed),
                    in_force.lock().expect("progress lock")
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    // Clients.
    let connection = Connection {
        nodes: cluster.addrs.clone(),
        certs: cluster.certs.clone(),
        client_name: CLIENT_NAME.into(),
    };
    let shared = Arc::new(WorkloadShared {
        keys: Mutex::new(KeyPool::new(plan.workload.keys, plan.workload.ops_per_key)),
        next_value: AtomicU64::new(1),
        next_process: AtomicU64::new(plan.workload.clients as u64),
        stop: AtomicBool::new(false),
    });
    let mut clients = Vec::new();
    for i in 0..plan.workload.clients {
        let task = workload::client_loop(
            i,
            plan.workload.clone(),
            connection.clone(),
            recorder.clone(),
            shared.clone(),
            derive_seed(seed, &format!("client-{i}")),
        );
        clients.push(tokio::spawn(task));
    }

    progress.line(&format!(
        "warm-up {} with {} clients (leader n{first_leader})",
        plan.warmup, plan.workload.clients
    ));
    tokio::time::sleep(plan.warmup.0).await;

    // Faults: walk the timeline, starting and ending faults at their times.
    progress.line(&format!(
        "faults for {}: {} scheduled",
        plan.duration,
        timeline.len()
    ));
    let phase_start = tokio::time::Instant::now();
    let mut active: Vec<(Duration, ActiveFault)> = Vec::new();
    let mut pending: std::collections::VecDeque<ScheduledFault> =
        timeline.iter().cloned().collect();
    loop {
        let next_start = pending.front().map(|f| f.start);
        let next_end = active.iter().map(|(end, _)| *end).min();
        let Some(next) = [next_start, next_end].into_iter().flatten().min() else {
            break;
        };
        // Strobing clocks flip on their own period between timeline events.
        while let Some(flip) = nemesis.next_strobe() {
            let flip = tokio::time::Instant::from_std(flip);
            if flip >= phase_start + next {
                break;
            }
            tokio::time::sleep_until(flip).await;
            nemesis.tick_strobes();
        }
        tokio::time::sleep_until(phase_start + next).await;
        if next_end == Some(next) {
            let i = active
                .iter()
                .position(|(end, _)| *end == next)
                .expect("found above");
            let (_, fault) = active.remove(i);
            nemesis.end(&fault, &recorder);
        } else {
            let fault = pending.pop_front().expect("found above");
            let leader = if fault.targets == Targets::Leader {
                find_leader(&endpoint, &cluster.addrs).await
            } else {
                None
            };
            let hit = nemesis.start(&fault, &plan.faults[fault.plan_index], leader, &recorder);
            progress.line(&format!(
                "  +{:.1}s {} {} -> {:?}",
                fault.start.as_secs_f64(),
                fault.kind.name(),
                fault.targets,
                hit.nodes
            ));
            active.push((fault.end, hit));
        }
        for (id, status) in nemesis.supervisor.reap_all() {
            progress.line(&format!("  node n{id} exited on its own ({status})"));
            recorder.note(
                "runner",
                EventKind::Info,
                "node-exited",
                serde_json::json!({"node": id, "status": status}),
            );
        }
        let names: Vec<String> = active
            .iter()
            .map(|(_, a)| format!("{} {:?}", a.fault.kind.name(), a.nodes))
            .collect();
        *in_force.lock().expect("progress lock") = if names.is_empty() {
            "no fault".into()
        } else {
            names.join(", ")
        };
    }
    tokio::time::sleep_until(phase_start + plan.duration.0).await;
    for (_, fault) in active.drain(..) {
        nemesis.end(&fault, &recorder);
    }
    nemesis.heal_all(&recorder);
    *in_force.lock().expect("progress lock") = "healed; recovery".into();
    progress.line(&format!("healed; recovery {}", plan.recovery));
    tokio::time::sleep(plan.recovery.0).await;

    // Stop the clients, then read every key once more.
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        match tokio::time::timeout(
            plan.workload.request_timeout.0 * 3 + Duration::from_secs(5),
            c,
        )
        .await
        {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "a client stopped with an error"),
            _ => tracing::warn!("a client did not stop in time"),
        }
    }
    *in_force.lock().expect("progress lock") = "final reads".into();
    let final_reads = workload::final_reads(&plan.workload, &connection, &recorder, &shared)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "final reads could not run");
            (0, 0)
        });
    let counts = (
        recorder.counts().ok.load(Ordering::Relaxed),
        recorder.counts().fail.load(Ordering::Relaxed),
        recorder.counts().info.load(Ordering::Relaxed),
    );
    let cas_mismatch = recorder.counts().mismatch.load(Ordering::Relaxed);
    ticker.abort();
    progress.bar.finish_and_clear();
    recorder.note("runner", EventKind::Info, "stop", serde_json::json!({}));
    drop(recorder);
    match recorder_task.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(RunError::Setup(format!("writing history.jsonl: {e}"))),
        Err(e) => return Err(RunError::Setup(format!("the recorder failed: {e}"))),
    }
    endpoint.close().await;
    nemesis.supervisor.reap_all();
    let unexpected_exits = nemesis.supervisor.unexpected_exits().to_vec();
    nemesis.supervisor.shutdown(Duration::from_secs(3));
    if let Some(mesh) = cluster.mesh.take() {
        let counters = mesh.counters();
        let links: Vec<serde_json::Value> = counters
            .iter()
            .map(|(link, c)| serde_json::json!({"link": link.to_string(), "packets_in": c.packets_in, "forwarded": c.forwarded, "dropped": c.dropped.total(), "duplicated": c.duplicated, "delayed": c.delayed}))
            .collect();
        let _ = std::fs::write(
            run_dir.join("network.json"),
            serde_json::to_string_pretty(&links).expect("json"),
        );
        mesh.shutdown().await;
    }

    // Check.
    if !opts.quiet {
        eprintln!("checking {} ...", run_dir.join("history.jsonl").display());
    }
    let report = check(plan, &run_dir.join("history.jsonl")).await?;
    let mut failed_expectations = Vec::new();
    if counts.0 < plan.expect.min_ok_ops {
        failed_expectations.push(format!(
            "only {} ops completed ok; the plan expects at least {}",
            counts.0, plan.expect.min_ok_ops
        ));
    }
    for (id, status) in &unexpected_exits {
        failed_expectations.push(format!(
            "node n{id} exited on its own ({status}); see nodes/n{id}/node.log"
        ));
    }
    if plan.expect.final_reads_succeed && final_reads.1 > 0 {
        failed_expectations.push(format!(
            "{} of {} final reads failed after healing: the cluster did not recover within the recovery period",
            final_reads.1,
            final_reads.0 + final_reads.1
        ));
    }
    let verdict = match report.verdict {
        Verdict::NotLinearizable => RunVerdict::Fail,
        _ if !failed_expectations.is_empty() => RunVerdict::Fail,
        Verdict::Unknown => RunVerdict::Unknown,
        _ => RunVerdict::Pass,
    };
    let summary = RunSummary {
        schema_version: RUN_SCHEMA_VERSION,
        plan: plan.name.clone(),
        seed,
        run_dir: run_dir.display().to_string(),
        verdict,
        linearizability: report.verdict.as_str().into(),
        failed_expectations,
        ok: counts.0,
        fail: counts.1,
        cas_mismatch,
        info: counts.2,
        faults: timeline.len(),
        final_reads: (final_reads.0, final_reads.0 + final_reads.1),
        seconds: wall_start.elapsed().as_secs_f64(),
        replay,
    };
    let full = serde_json::json!({"summary": summary, "check": report});
    std::fs::write(
        run_dir.join("report.json"),
        serde_json::to_string_pretty(&full).expect("json"),
    )
    .map_err(setup_err("writing report.json"))?;
    if report.verdict == Verdict::NotLinearizable {
        std::fs::write(
            run_dir.join("counterexample.html"),
            checker::render_html(&report),
        )
        .map_err(setup_err("writing counterexample.html"))?;
        if !opts.quiet {
            for c in report.counterexamples().take(3) {
                eprintln!("{}", c.to_text());
            }
        }
    }
    Ok(summary)
}

async fn check(plan: &Plan, history: &Path) -> Result<CheckReport, RunError> {
    let model = match plan.workload.model {
        Model::Register => ModelKind::Register,
        Model::CasRegister => ModelKind::CasRegister,
    };
    let defaults = Budget::default();
    let deadline = Some(Instant::now() + plan.workload.check_time_limit.0);
    let budget = Budget::new(
        defaults.steps_max_per_key,
        defaults.cache_bytes_max_per_key,
        deadline,
    );
    let options = CheckOptions::new(model).with_budget(budget);
    let path = history.to_path_buf();
    tokio::task::spawn_blocking(move || checker::check_file(&path, &options))
        .await
        .map_err(|e| RunError::Setup(format!("the checker panicked: {e}")))?
        .map_err(|e| RunError::Setup(format!("the recorded history does not check: {e}")))
}

/// The one-line verdict for people.
pub fn verdict_line(s: &RunSummary) -> String {
    let word = match s.verdict {
        RunVerdict::Pass => "PASS",
        RunVerdict::Fail => "FAIL",
        RunVerdict::Unknown => "UNKNOWN",
    };
    let mut line = format!(
        "{word}: {} (seed {}): history {}; {} ok, {} fail ({} of them cas mismatches), {} info; {} faults; {:.1}s; {}",
        s.plan, s.seed, s.linearizability, s.ok, s.fail, s.cas_mismatch, s.info, s.faults, s.seconds, s.run_dir
    );
    for e in &s.failed_expectations {
        line.push_str(&format!("\n  expectation failed: {e}"));
    }
    line
}

/// `chaos run` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  chaos run configs/smoke.toml\n  chaos run configs/process-faults.toml --seed 42 --nodes 5 --duration 20s\n  chaos run configs/smoke.toml --quiet --json > summary.json\n\nExit status: 0 pass, 1 fail, 2 bad plan or setup error, 3 unknown, 130 interrupted."
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
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Folder for run folders.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `chaos run` and returns the exit code.
pub fn run_command(args: &RunArgs) -> std::process::ExitCode {
    let opts = RunOptions {
        plan: args.plan.clone(),
        seed: args.seed,
        nodes: args.nodes,
        duration: args.duration,
        out: args.out.clone(),
        quiet: args.quiet,
    };
    // One thread: node processes must be started from a thread that lives as long as the run (see supervisor).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos: error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&opts)) {
        Ok(summary) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary).expect("json"));
            }
            if !args.quiet || !args.json {
                eprintln!("{}", verdict_line(&summary));
            }
            std::process::ExitCode::from(summary.verdict.exit_code())
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"schema_version": RUN_SCHEMA_VERSION, "error": e.to_string(), "exit": e.exit_code()})
                );
            }
            eprintln!("chaos: error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
