//! `chaos bench election`: how fast a leader is replaced. Kills the leader (SIGKILL) again and again and measures
//! the time until another node is leader in a later term, as seen by status polls from outside.

use crate::nemesis::find_leader;
use crate::plan::{Dur, Plan};
use crate::runner::{
    log_tails, make_run_dir, prepare_cluster, resolve_binary, start_nodes, RunError,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `chaos bench election` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  chaos bench election --trials 30\n  chaos bench election --nodes 5 --election-timeout-min 300ms --election-timeout-max 600ms --json"
)]
pub struct ElectionArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Leader crashes to measure.
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Heartbeat interval.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "50ms")]
    pub heartbeat_interval: Duration,
    /// Lower bound of the election timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "150ms")]
    pub election_timeout_min: Duration,
    /// Upper bound of the election timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300ms")]
    pub election_timeout_max: Duration,
    /// An extra argument for every node; repeat (e.g. --node-arg=--election-timeout-policy --node-arg=ranked).
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// The node binary (default: raft-node next to chaos).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Folder for the run folder.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `chaos bench` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Time from killing the leader to a new leader.
    Election(ElectionArgs),
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn election(args: &ElectionArgs) -> Result<serde_json::Value, RunError> {
    let mut plan = Plan::parse(
        "name = \"bench-election\"\nduration = \"1s\"\n",
        "chaos bench election",
    )?;
    plan.cluster.nodes = args.nodes;
    plan.cluster.binary = args.binary.clone();
    plan.cluster.extra_args = args.node_args.clone();
    plan.cluster.heartbeat_interval = Dur(args.heartbeat_interval);
    plan.cluster.election_timeout_min = Dur(args.election_timeout_min);
    plan.cluster.election_timeout_max = Dur(args.election_timeout_max);
    plan.validate("chaos bench election (flags)")?;
    let binary = resolve_binary(&plan, "chaos bench election".as_ref())?;
    let run_dir = make_run_dir(&args.out, &plan)?;
    let (cluster, mut supervisor, _) = prepare_cluster(&plan, 0, &binary, &run_dir, true).await?;
    let endpoint = start_nodes(&cluster, &mut supervisor)?;
    let wait_leader = |timeout: Duration| {
        let (endpoint, addrs) = (endpoint.clone(), cluster.addrs.clone());
        async move {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if let Some(l) = find_leader(&endpoint, &addrs).await {
                    return Some(l);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None
        }
    };
    let mut samples_ms = Vec::new();
    for trial in 0..args.trials {
        let Some(old) = wait_leader(Duration::from_secs(15)).await else {
            return Err(RunError::Setup(format!(
                "no leader before trial {trial}; node logs:{}",
                log_tails(&supervisor)
            )));
        };
        // Let the cluster settle (the restarted node catches up) and vary the phase against heartbeats.
        tokio::time::sleep(Duration::from_millis(600 + (trial as u64 * 37) % 100)).await;
        supervisor.kill(old);
        let killed = Instant::now();
        let survivors: Vec<(u64, std::net::SocketAddr)> = cluster
            .addrs
            .iter()
            .copied()
            .filter(|(id, _)| *id != old)
            .collect();
        let new = loop {
            if let Some(l) = find_leader(&endpoint, &survivors).await {
                break Some(l);
            }
            if killed.elapsed() > Duration::from_secs(15) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let elapsed_ms = killed.elapsed().as_secs_f64() * 1000.0;
        match new {
            Some(_) => samples_ms.push(elapsed_ms),
            None => tracing::warn!(trial, "no new leader within 15 s"),
        }
        supervisor
            .start(old)
            .map_err(|e| RunError::Setup(e.to_string()))?;
    }
    endpoint.close().await;
    supervisor.shutdown(Duration::from_secs(2));
    samples_ms.sort_by(f64::total_cmp);
    if samples_ms.is_empty() {
        return Err(RunError::Setup("no trial elected a new leader".into()));
    }
    Ok(serde_json::json!({
        "nodes": args.nodes,
        "trials": samples_ms.len(),
        "heartbeat_ms": args.heartbeat_interval.as_millis() as u64,
        "election_timeout_ms": [args.election_timeout_min.as_millis() as u64, args.election_timeout_max.as_millis() as u64],
        "p50_ms": percentile(&samples_ms, 0.5),
        "p90_ms": percentile(&samples_ms, 0.9),
        "max_ms": samples_ms.last().copied().unwrap_or(0.0),
        "samples_ms": samples_ms,
        "run_dir": run_dir.display().to_string(),
    }))
}

/// Runs `chaos bench ...`.
pub fn run(command: &BenchCommand) -> ExitCode {
    let BenchCommand::Election(args) = command;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos: error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(election(args)) {
        Ok(figures) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&figures).expect("json"));
            } else {
                println!(
                    "{} nodes, heartbeat {} ms, election timeout {}–{} ms, {} leader kills: new leader after p50 {:.0} / p90 {:.0} / max {:.0} ms \
                     (SIGKILL to the first status poll showing another leader; polls every ~2 ms)",
                    figures["nodes"], figures["heartbeat_ms"], figures["election_timeout_ms"][0], figures["election_timeout_ms"][1], figures["trials"],
                    figures["p50_ms"].as_f64().unwrap_or(0.0), figures["p90_ms"].as_f64().unwrap_or(0.0),
                    figures["max_ms"].as_f64().unwrap_or(0.0),
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chaos: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
