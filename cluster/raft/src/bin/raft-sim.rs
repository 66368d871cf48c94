//! Runs the deterministic simulation over many seeds (a soak) or replays one seed with a trace.
//!
//! ```text
//! raft-sim --seeds 10000 [--start 0]        # soak: seeds start..start+N, stops at the first failure
//! raft-sim --seed 42 --trace                # replay one seed, printing every event
//! raft-sim --seeds 200 --mutation stale-read    # how quickly a deliberate bug is caught
//! ```
//! `RAFT_SIM_SEEDS` sets the default seed count.

use raft::sim::{run, SimOptions};
use raft::{Bug, BugLayer, Mutations, CATALOGUE};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: raft-sim [--seeds N] [--start S] [--seed S] [--fault-ms MS] [--mutation NAME]... [--trace]
  --seeds N       run N seeds (default: $RAFT_SIM_SEEDS or 1000)
  --start S       first seed of the range (default 0)
  --seed S        run exactly this seed
  --fault-ms MS   simulated milliseconds of faults per seed (default 6000)
  --mutation M    switch on a deliberate bug of the core (repeatable); the names are raft-node's --bug names
  --trace         print every event (use with --seed)";

struct Args {
    start: u64,
    count: u64,
    fault_ms: Option<u64>,
    mutations: Mutations,
    trace: bool,
}

fn parse() -> Result<Args, String> {
    let default_count = std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut args = Args {
        start: 0,
        count: default_count,
        fault_ms: None,
        mutations: Mutations::default(),
        trace: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name} expects a non-negative integer, got {v:?}"))
        };
        match flag.as_str() {
            "--seeds" => args.count = number("--seeds", value("--seeds")?)?,
            "--start" => args.start = number("--start", value("--start")?)?,
            "--seed" => {
                args.start = number("--seed", value("--seed")?)?;
                args.count = 1;
            }
            "--fault-ms" => args.fault_ms = Some(number("--fault-ms", value("--fault-ms")?)?),
            "--mutation" => {
                let bug = Bug::parse(&value("--mutation")?).map_err(|e| e.to_string())?;
                if !args.mutations.enable(bug) {
                    let core: Vec<&str> = CATALOGUE
                        .iter()
                        .filter(|row| row.layer == BugLayer::Core)
                        .map(|row| row.name)
                        .collect();
                    return Err(format!(
                        "{bug} lives in raft-node, not in the core; the core's bugs are: {}",
                        core.join(", ")
                    ));
                }
            }
            "--trace" => args.trace = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bugs: Vec<String> = args.mutations.bugs().iter().map(Bug::to_string).collect();
    println!(
        "raft-sim: seeds {}..{} (mutations: {})",
        args.start,
        args.start + args.count,
        if bugs.is_empty() {
            "none".to_string()
        } else {
            bugs.join(", ")
        }
    );
    let started = Instant::now();
    let (mut writes, mut reads, mut sim_ms, mut crashes, mut leaders, mut changes) =
        (0, 0, 0, 0, 0, 0);
    for seed in args.start..args.start + args.count {
        let mut opts = SimOptions::new(seed);
        opts.mutations = args.mutations;
        opts.trace = args.trace;
        if let Some(ms) = args.fault_ms {
            opts.fault_ms = ms;
        }
        match run(&opts) {
            Ok(report) => {
                writes += report.writes_acknowledged;
                reads += report.reads_checked;
                sim_ms += report.sim_ms;
                crashes += report.crashes;
                leaders += report.leader_terms;
                changes += report.membership_changes;
                if args.count == 1 {
                    println!("{report:?}");
                }
            }
            Err(failure) => {
                println!("FAIL after {} seeds\n{failure}", seed - args.start);
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "ok: {} seeds, {:.0} simulated s, {writes} writes acknowledged, {reads} reads checked, {leaders} leader terms, {crashes} crashes, {changes} membership changes, in {:.1} s",
        args.count,
        sim_ms as f64 / 1000.0,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
