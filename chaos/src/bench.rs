//! `chaos bench election`: how fast a leader is replaced. Kills the leader (SIGKILL) again and again and measures
//! the time until another node is leader in a later term, as seen by status polls from outside. With several
//! targets (`--target raft-node,etcd`) each runs with the same settings and the figures share one table.

use crate::cluster::{resolve_binary, Cluster, STATUS_TIMEOUT};
use crate::plan::{Dur, Plan};
use crate::runner::{make_run_dir, RunError};
use crate::targets::{self, TargetKind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `chaos bench election` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  chaos bench election --trials 30\n  chaos bench election --target raft-node,etcd --election-timeout-min 300ms --election-timeout-max 600ms\n  chaos bench election --nodes 5 --json"
)]
pub struct ElectionArgs {
    /// The systems to measure, comma-separated: raft-node, etcd.
    #[arg(long, value_delimiter = ',', default_value = "raft-node")]
    pub target: Vec<TargetKind>,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Leader crashes to measure.
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Heartbeat interval.
    #[arg(long, value_parser = crate::plan::parse_duration, default_value = "50ms")]
    pub heartbeat_interval: Duration,
    /// Lower bound of the election timeout.
    #[arg(long, value_parser = crate::plan::parse_duration, default_value = "150ms")]
    pub election_timeout_min: Duration,
    /// Upper bound of the election timeout (etcd always uses twice the lower bound).
    #[arg(long, value_parser = crate::plan::parse_duration, default_value = "300ms")]
    pub election_timeout_max: Duration,
    /// An extra argument for every node; repeat (e.g. --node-arg=--election-timeout-policy --node-arg=ranked).
    /// Only with a single target.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// The node binary (default: the target's). Only with a single target.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Folder for the run folders.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

impl clap::ValueEnum for TargetKind {
    fn value_variants<'a>() -> &'a [Self] {
        &[TargetKind::RaftNode, TargetKind::Etcd]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// `chaos bench` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Time from killing the leader to a new leader.
    Election(ElectionArgs),
}

/// The value at quantile `p` of sorted samples (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn bench_plan(args: &ElectionArgs, target: TargetKind) -> Result<Plan, RunError> {
    let mut plan = Plan::parse(
        "name = \"bench-election\"\nduration = \"1s\"\n",
        "chaos bench election",
    )?;
    plan.cluster.target = target;
    plan.cluster.nodes = args.nodes;
    plan.cluster.binary = args.binary.clone();
    plan.cluster.extra_args = args.node_args.clone();
    plan.cluster.heartbeat_interval = Dur(args.heartbeat_interval);
    plan.cluster.election_timeout_min = Dur(args.election_timeout_min);
    plan.cluster.election_timeout_max = Dur(args.election_timeout_max);
    plan.validate("chaos bench election (flags)")?;
    Ok(plan)
}

async fn wait_leader(cluster: &Cluster, ids: &[u64], timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(l) =
            targets::find_leader(&*cluster.target, &cluster.layout, ids, STATUS_TIMEOUT).await
        {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

async fn election(args: &ElectionArgs, target: TargetKind) -> Result<serde_json::Value, RunError> {
    let plan = bench_plan(args, target)?;
    let binary = resolve_binary(&plan, "chaos bench election".as_ref())?;
    let run_dir = make_run_dir(&args.out, &plan)?;
    let mut cluster = Cluster::launch(&plan, 0, &binary, &run_dir).await?;
    let ids = cluster.ids();
    let mut samples_ms = Vec::new();
    for trial in 0..args.trials {
        let Some(old) = wait_leader(&cluster, &ids, Duration::from_secs(15)).await else {
            return Err(RunError::Setup(format!(
                "no leader before trial {trial}; node logs:{}",
                cluster.log_tails()
            )));
        };
        // Let the cluster settle (the restarted node catches up) and vary the phase against heartbeats.
        tokio::time::sleep(Duration::from_millis(600 + (trial as u64 * 37) % 100)).await;
        cluster.supervisor.kill(old).map_err(RunError::Setup)?;
        let killed = Instant::now();
        let survivors: Vec<u64> = ids.iter().copied().filter(|&id| id != old).collect();
        match wait_leader(&cluster, &survivors, Duration::from_secs(15)).await {
            Some(_) => samples_ms.push(killed.elapsed().as_secs_f64() * 1000.0),
            None => tracing::warn!(trial, "no new leader within 15 s"),
        }
        cluster.supervisor.start(old).map_err(RunError::Setup)?;
    }
    cluster.stop(&run_dir).await;
    samples_ms.sort_by(f64::total_cmp);
    if samples_ms.is_empty() {
        return Err(RunError::Setup("no trial elected a new leader".into()));
    }
    let range = match target {
        TargetKind::Etcd => targets::etcd::effective_election_range(args.election_timeout_min),
        TargetKind::RaftNode => (args.election_timeout_min, args.election_timeout_max),
    };
    Ok(serde_json::json!({
        "target": target.name(),
        "nodes": args.nodes,
        "trials": samples_ms.len(),
        "heartbeat_ms": args.heartbeat_interval.as_millis() as u64,
        "election_timeout_ms": [range.0.as_millis() as u64, range.1.as_millis() as u64],
        "p50_ms": percentile(&samples_ms, 0.5),
        "p90_ms": percentile(&samples_ms, 0.9),
        "max_ms": samples_ms.last().copied().unwrap_or(0.0),
        "samples_ms": samples_ms,
        "run_dir": run_dir.display().to_string(),
    }))
}

fn table(rows: &[serde_json::Value]) -> String {
    let mut out = String::from(
        "target      nodes  heartbeat  election timeout  trials   p50 ms   p90 ms   max ms\n",
    );
    for r in rows {
        let ms = |k: &str| r[k].as_f64().unwrap_or(0.0);
        out.push_str(&format!(
            "{:<10}  {:>5}  {:>6} ms  {:>5}–{:<5} ms  {:>6}  {:>7.0}  {:>7.0}  {:>7.0}\n",
            r["target"].as_str().unwrap_or("?"),
            r["nodes"],
            r["heartbeat_ms"],
            r["election_timeout_ms"][0],
            r["election_timeout_ms"][1],
            r["trials"],
            ms("p50_ms"),
            ms("p90_ms"),
            ms("max_ms"),
        ));
    }
    out.push_str("(SIGKILL of the leader to the first status poll showing another leader; polls every ~2 ms)\n");
    out
}

/// Runs `chaos bench ...`.
pub fn run(command: &BenchCommand) -> ExitCode {
    let BenchCommand::Election(args) = command;
    if args.target.len() > 1 && (args.binary.is_some() || !args.node_args.is_empty()) {
        eprintln!(
            "chaos: error: --binary and --node-arg apply to one target; give a single --target"
        );
        return ExitCode::from(2);
    }
    let runtime = match crate::runner::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos: error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut rows = Vec::new();
    for &target in &args.target {
        match runtime.block_on(election(args, target)) {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("chaos: error: {} bench: {e}", target.name());
                return ExitCode::from(e.exit_code());
            }
        }
    }
    if args.json {
        let json = if rows.len() == 1 {
            rows.remove(0)
        } else {
            serde_json::Value::Array(rows)
        };
        crate::output::print_stdout(&serde_json::to_string_pretty(&json).expect("json"));
    } else {
        crate::output::print_stdout(table(&rows).trim_end());
    }
    ExitCode::SUCCESS
}
