//! `chaos bench election`: how fast a leader is replaced, and what it costs. Each trial loses the leader one way
//! (`--fault kill|pause|isolate|transfer`) at a seeded phase within the heartbeat interval and reads, from the
//! role-change lines the nodes write with their own timestamps, when another node became leader in a higher
//! term and how many terms that took; a client times the first acknowledged write; after the fault is undone
//! the bench watches for a disruptive rejoin. Figures: min/p50/p90/p99/max/mean and the ratio to the floor,
//! a table, `bench.json` and an HTML page with histograms and CDFs; `--sweep` runs several timeout ranges.

mod events;
mod page;
mod stats;
mod trial;

pub use events::{parse_line, Announced, RoleEvent};
pub use stats::{percentile, summarize, Summary};

use crate::cluster::{resolve_binary, Cluster};
use crate::plan::{Dur, Plan};
use crate::runner::{make_run_dir, RunError};
use crate::targets::{self, ClientSettings, TargetKind};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use trial::TrialRecord;

/// How a trial loses the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// SIGKILL the leader; restart it afterwards.
    Kill,
    /// SIGSTOP the leader; SIGCONT it afterwards.
    Pause,
    /// Cut every link of the leader (kernel rules); heal afterwards.
    Isolate,
    /// Ask the leader to hand over to the next node (the planned case: no timeout involved).
    Transfer,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Isolate => "isolate",
            Fault::Transfer => "transfer",
        }
    }
}

/// An election timeout range, written `150-300ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutRange {
    /// Lower bound.
    pub min: Duration,
    /// Upper bound.
    pub max: Duration,
}

/// Parses `LO-HIunit` (e.g. `150-300ms`) or `LOunit-HIunit`.
pub fn parse_range(s: &str) -> Result<TimeoutRange, String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("expected a range like 150-300ms, got {s:?}"))?;
    let max = crate::plan::parse_duration(hi)?;
    let unit: String = hi
        .chars()
        .skip_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let lo_full = if lo.chars().all(|c| c.is_ascii_digit()) {
        format!("{lo}{unit}")
    } else {
        lo.to_string()
    };
    let min = crate::plan::parse_duration(&lo_full)?;
    if min.is_zero() || min >= max {
        return Err(format!(
            "range {s:?}: the lower bound must be above 0 and below the upper"
        ));
    }
    Ok(TimeoutRange { min, max })
}

/// `chaos bench election` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  chaos bench election --trials 30\n  chaos bench election --target raft-node,etcd --election-timeout-min 300ms --election-timeout-max 600ms --fault kill,pause,isolate,transfer\n  chaos bench election --nodes 5 --fault kill --sweep 12-24ms,25-50ms,50-100ms,100-200ms,150-300ms"
)]
pub struct ElectionArgs {
    /// The systems to measure, comma-separated: raft-node, etcd.
    #[arg(long, value_delimiter = ',', default_value = "raft-node")]
    pub target: Vec<TargetKind>,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Trials per target, fault and range.
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Ways to lose the leader, comma-separated: kill, pause, isolate (needs root and nft), transfer.
    #[arg(long, value_delimiter = ',', default_value = "kill")]
    pub fault: Vec<Fault>,
    /// Heartbeat interval.
    #[arg(long, value_parser = crate::plan::parse_duration, default_value = "50ms")]
    pub heartbeat_interval: Duration,
    /// Lower bound of the election timeout.
    #[arg(long, value_parser = crate::plan::parse_duration, default_value = "150ms")]
    pub election_timeout_min: Duration,
    /// Upper bound of the election timeout (etcd always uses twice the lower bound).
    #[arg(long, value_parser = crate::plan::parse_duration, default_value = "300ms")]
    pub election_timeout_max: Duration,
    /// Several timeout ranges on one plot (overrides the two bounds), e.g. 12-24ms,25-50ms,150-300ms. The
    /// heartbeat is then a sixth of each lower bound at most.
    #[arg(long, value_delimiter = ',', value_parser = parse_range)]
    pub sweep: Vec<TimeoutRange>,
    /// How long to watch for a disruptive election after the fault is undone (default: the upper timeout
    /// bound plus 200 ms).
    #[arg(long, value_parser = crate::plan::parse_duration)]
    pub hold: Option<Duration>,
    /// The fault lasts at least this long (a leader isolated for long enough has time to raise its term).
    #[arg(long, value_parser = crate::plan::parse_duration, default_value = "0ms")]
    pub min_outage: Duration,
    /// With `--fault isolate` only: for this long after the cut, also drop every packet from a survivor to a
    /// higher-numbered survivor. No survivor can then collect a single vote (requests go one way, answers the
    /// other), so a target without pre-vote raises its term at each timeout and the election after this cut
    /// heals needs more than one term: a split vote forced by a one-way partition, for testing the counter.
    #[arg(long, value_parser = crate::plan::parse_duration)]
    pub split_survivors: Option<Duration>,
    /// Seed of the fault phases.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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

/// The figures of one target, timeout range and fault.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The system measured.
    pub target: &'static str,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Heartbeat interval the nodes really use, in ms.
    pub heartbeat_ms: u64,
    /// Election timeout range the nodes really draw from, in ms.
    pub election_timeout_ms: [u64; 2],
    /// How the leader was lost.
    pub fault: Fault,
    /// Fault to a new leader.
    pub leader: Option<Summary>,
    /// Fault to the first acknowledged write.
    pub write: Option<Summary>,
    /// The winner's campaign (pre-vote, vote, fsync).
    pub campaign: Option<Summary>,
    /// The floor: min timeout minus the mean heartbeat phase plus the mean measured campaign (for transfer: the
    /// campaign alone).
    pub floor_ms: Option<f64>,
    /// p50 of `leader` over the floor.
    pub p50_over_floor: Option<f64>,
    /// Trials that used more than one term (split vote or failed round).
    pub split_votes: usize,
    /// Trials where the old leader's return caused another election.
    pub disruptive_rejoins: usize,
    /// Trials without a new leader within 10 s.
    pub no_leader: usize,
    /// Measurement error: node timestamp resolution plus the mean time the injection call took, in ms.
    pub error_ms: f64,
    /// Every trial.
    pub trials: Vec<TrialRecord>,
    /// The run folder with the node logs.
    pub run_dir: String,
}

fn bench_plan(
    args: &ElectionArgs,
    target: TargetKind,
    range: TimeoutRange,
    fault: Fault,
) -> Result<Plan, RunError> {
    let mut toml = String::from("name = \"bench-election\"\nduration = \"1s\"\n");
    if fault == Fault::Isolate {
        // Only to make the cluster create kernel rules (no relay latency on the other links); the bench itself
        // applies and heals the cut.
        // etcd dials peers from one source address on loopback: it needs a namespace per node.
        let hosts = if target == TargetKind::Etcd {
            "hosts = \"netns\"\n"
        } else {
            ""
        };
        toml.push_str("[cluster]\n");
        toml.push_str(hosts);
        toml.push_str(
            "network = \"nftables\"\n[[faults]]\nname = \"isolate\"\nkind = \"partition\"\n\
             topology = \"isolate\"\ntarget = \"leader\"\nevery = \"1s\"\nduration = \"500ms\"\n",
        );
    }
    let mut plan = Plan::parse(&toml, "chaos bench election")?;
    plan.cluster.target = target;
    plan.cluster.nodes = args.nodes;
    plan.cluster.binary = args.binary.clone();
    plan.cluster.extra_args = args.node_args.clone();
    let heartbeat = if args.sweep.is_empty() {
        args.heartbeat_interval
    } else {
        args.heartbeat_interval
            .min(range.min / 6)
            .max(Duration::from_millis(1))
    };
    plan.cluster.heartbeat_interval = Dur(heartbeat);
    plan.cluster.election_timeout_min = Dur(range.min);
    plan.cluster.election_timeout_max = Dur(range.max);
    plan.validate("chaos bench election (flags)")?;
    Ok(plan)
}

fn effective(
    target: TargetKind,
    range: TimeoutRange,
    hb: Duration,
) -> (Duration, Duration, Duration) {
    match target {
        TargetKind::Etcd => {
            let (lo, hi) = targets::etcd::effective_election_range(range.min);
            (lo, hi, targets::etcd::effective_heartbeat(hb, range.min))
        }
        TargetKind::RaftNode => (range.min, range.max, hb),
    }
}

fn phase_seed(seed: u64, target: TargetKind, range: TimeoutRange, fault: Fault) -> u64 {
    let t = target as u64;
    seed ^ (t << 56) ^ ((fault as u64) << 48) ^ (range.min.as_micros() as u64)
}

async fn measure(
    args: &ElectionArgs,
    target: TargetKind,
    range: TimeoutRange,
    fault: Fault,
) -> Result<Row, RunError> {
    let plan = bench_plan(args, target, range, fault)?;
    let binary = resolve_binary(&plan, "chaos bench election".as_ref())?;
    let run_dir = make_run_dir(&args.out, &plan)?;
    let mut cluster = Cluster::launch(&plan, args.seed, &binary, &run_dir).await?;
    let (mut network, _) = cluster.take_backends();
    let (lo, hi, hb) = effective(target, range, plan.cluster.heartbeat_interval.0);
    let mut settings = ClientSettings::new(Duration::from_secs(10));
    settings.attempt_timeout = (lo / 2).max(Duration::from_millis(20));
    let mut client = cluster
        .target
        .connect(&cluster.layout, &settings)
        .map_err(|e| RunError::Setup(format!("client: {e}")))?;
    let mut setup = trial::TrialSetup {
        network: network.as_mut(),
        client: &mut client,
        heartbeat: hb,
        hold: args.hold.unwrap_or(hi + Duration::from_millis(200)),
        min_outage: args.min_outage,
        split_survivors: args.split_survivors,
    };
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(phase_seed(args.seed, target, range, fault));
    let mut trials = Vec::new();
    let mut failure = None;
    for n in 0..args.trials {
        let phase =
            Duration::from_micros(rng.gen_range(0..setup.heartbeat.as_micros().max(1) as u64));
        match trial::run(&mut cluster, &mut setup, fault, n, phase).await {
            Ok(t) => trials.push(t),
            Err(e) => {
                failure = Some(format!("trial {n}: {e}; node logs:{}", cluster.log_tails()));
                break;
            }
        }
    }
    client.close().await;
    cluster.stop(&run_dir).await;
    drop(network);
    if let Some(f) = failure {
        return Err(RunError::Tool(f));
    }
    Ok(row(
        target,
        args.nodes,
        (lo, hi, hb),
        fault,
        trials,
        &run_dir,
    ))
}

fn row(
    target: TargetKind,
    nodes: usize,
    (lo, hi, hb): (Duration, Duration, Duration),
    fault: Fault,
    trials: Vec<TrialRecord>,
    run_dir: &std::path::Path,
) -> Row {
    let figure =
        |f: fn(&TrialRecord) -> Option<f64>| -> Vec<f64> { trials.iter().filter_map(f).collect() };
    let leader = stats::summarize(&figure(|t| t.leader_ms));
    let campaign = stats::summarize(&figure(|t| t.campaign_ms));
    let floor_ms = campaign.map(|c| match fault {
        Fault::Transfer => c.mean_ms,
        _ => stats::crash_floor_ms(
            lo.as_secs_f64() * 1000.0,
            hb.as_secs_f64() * 500.0,
            c.mean_ms,
        ),
    });
    let inject_ms = trials
        .iter()
        .map(|t| t.inject_us as f64 / 1000.0)
        .sum::<f64>()
        / trials.len().max(1) as f64;
    let resolution_ms = events::timestamp_resolution_us(target == TargetKind::Etcd) as f64 / 1000.0;
    Row {
        target: target.name(),
        nodes,
        heartbeat_ms: hb.as_millis() as u64,
        election_timeout_ms: [lo.as_millis() as u64, hi.as_millis() as u64],
        fault,
        leader,
        write: stats::summarize(&figure(|t| t.write_ms)),
        campaign,
        floor_ms,
        p50_over_floor: leader
            .zip(floor_ms)
            .and_then(|(l, f)| stats::ratio(l.p50_ms, f)),
        split_votes: trials
            .iter()
            .filter(|t| t.terms_used.is_some_and(|n| n > 1))
            .count(),
        disruptive_rejoins: trials.iter().filter(|t| t.disruptive_rejoin).count(),
        no_leader: trials.iter().filter(|t| t.leader_ms.is_none()).count(),
        error_ms: resolution_ms + inject_ms,
        trials,
        run_dir: run_dir.display().to_string(),
    }
}

fn summary_cells(s: Option<Summary>, floor: Option<f64>) -> String {
    match s {
        None => format!("{:>5}  {:>52}", 0, "(no samples)"),
        Some(s) => {
            let ratio = floor
                .and_then(|f| stats::ratio(s.p50_ms, f))
                .map_or("-".into(), |r| format!("{r:.2}"));
            format!(
                "{:>5}  {:>6.0} {:>6.0} {:>6.0} {:>6.0} {:>6.0} {:>6.0}  {:>6}",
                s.n, s.min_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.mean_ms, ratio
            )
        }
    }
}

/// The text table: two lines per row (new leader, first write).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "target     nodes   hb  timeout ms  fault     figure     n     min    p50    p90    p99    max   mean  p50/fl  floor  split  disrupt  none  ±ms\n",
    );
    for r in rows {
        let lead = format!(
            "{:<9}  {:>5}  {:>3}  {:>4}–{:<5}  {:<8}",
            r.target,
            r.nodes,
            r.heartbeat_ms,
            r.election_timeout_ms[0],
            r.election_timeout_ms[1],
            r.fault.name()
        );
        out.push_str(&format!(
            "{lead}  leader  {}  {:>5}  {:>5}  {:>7}  {:>4}  {:.1}\n",
            summary_cells(r.leader, r.floor_ms),
            r.floor_ms.map_or("-".into(), |f| format!("{f:.0}")),
            r.split_votes,
            r.disruptive_rejoins,
            r.no_leader,
            r.error_ms,
        ));
        out.push_str(&format!(
            "{:<52}  write   {}\n",
            "",
            summary_cells(r.write, r.floor_ms)
        ));
    }
    out.push_str(
        "leader: fault to the first node leader in a higher term, from the node's own role-change line (raft-node \
         µs, etcd ms timestamps); write: fault to the first acknowledged write; floor: min timeout − mean \
         heartbeat phase + mean measured campaign (transfer: the campaign); split: trials that used more than one \
         term; disrupt: the old leader's return raised the term again; none: no leader within 10 s; ±ms: \
         timestamp resolution + mean time the injection call took.\n",
    );
    out
}

fn ranges(args: &ElectionArgs) -> Vec<TimeoutRange> {
    if args.sweep.is_empty() {
        vec![TimeoutRange {
            min: args.election_timeout_min,
            max: args.election_timeout_max,
        }]
    } else {
        args.sweep.clone()
    }
}

fn page_series(rows: &[Row], faults: &[Fault]) -> Vec<(String, Vec<page::Series>)> {
    faults
        .iter()
        .map(|&f| {
            let series = rows
                .iter()
                .filter(|r| r.fault == f)
                .map(|r| page::Series {
                    label: format!(
                        "{} {} nodes {}–{} ms",
                        r.target, r.nodes, r.election_timeout_ms[0], r.election_timeout_ms[1]
                    ),
                    samples_ms: r.trials.iter().filter_map(|t| t.leader_ms).collect(),
                })
                .collect();
            (f.name().to_string(), series)
        })
        .collect()
}

fn write_outputs(args: &ElectionArgs, rows: &[Row], text: &str) -> Result<PathBuf, String> {
    let stamp = trial::unix_us() / 1000;
    let dir = args.out.join(format!("bench-election-{stamp}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let json = serde_json::json!({ "schema_version": 1, "seed": args.seed, "rows": rows });
    let json_path = dir.join("bench.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json).expect("json"),
    )
    .map_err(|e| format!("writing {}: {e}", json_path.display()))?;
    let html = page::html(text, &page_series(rows, &args.fault))?;
    let html_path = dir.join("index.html");
    std::fs::write(&html_path, html)
        .map_err(|e| format!("writing {}: {e}", html_path.display()))?;
    Ok(dir)
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
    if args.trials == 0 {
        eprintln!("chaos: error: --trials must be at least 1");
        return ExitCode::from(2);
    }
    if args.split_survivors.is_some() && args.fault.iter().any(|&f| f != Fault::Isolate) {
        eprintln!("chaos: error: --split-survivors applies to --fault isolate only");
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
        for range in ranges(args) {
            for &fault in &args.fault {
                match runtime.block_on(measure(args, target, range, fault)) {
                    Ok(row) => {
                        // Each row as it is measured: a long bench shows progress and keeps what it has.
                        let text = table(std::slice::from_ref(&row));
                        eprintln!("{}", text.lines().take(3).collect::<Vec<_>>().join("\n"));
                        rows.push(row);
                    }
                    Err(e) => {
                        eprintln!(
                            "chaos: error: {} {} bench: {e}",
                            target.name(),
                            fault.name()
                        );
                        return ExitCode::from(e.exit_code());
                    }
                }
            }
        }
    }
    let text = table(&rows);
    let dir = match write_outputs(args, &rows, &text) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("chaos: error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        let json = serde_json::json!({ "schema_version": 1, "seed": args.seed, "rows": rows });
        crate::output::print_stdout(&serde_json::to_string_pretty(&json).expect("json"));
    } else {
        crate::output::print_stdout(&format!(
            "{}\n(bench.json and index.html in {})",
            text.trim_end(),
            dir.display()
        ));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_with_one_or_two_units() {
        let r = parse_range("150-300ms").unwrap();
        assert_eq!(
            (r.min, r.max),
            (Duration::from_millis(150), Duration::from_millis(300))
        );
        let r = parse_range("1s-2s").unwrap();
        assert_eq!(
            (r.min, r.max),
            (Duration::from_secs(1), Duration::from_secs(2))
        );
        assert!(parse_range("300-150ms")
            .unwrap_err()
            .contains("lower bound"));
        assert!(parse_range("300ms").unwrap_err().contains("150-300ms"));
    }
}
