//! `chaos validate PLAN`: parse and check a plan, then print the exact timeline of faults it produces.

use crate::plan::Plan;
use crate::schedule::{render, schedule};
use std::path::PathBuf;
use std::process::ExitCode;

/// `chaos validate` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  chaos validate configs/smoke.toml\n  chaos validate configs/process-faults.toml --seed 42 --json"
)]
pub struct ValidateArgs {
    /// The plan (TOML).
    pub plan: PathBuf,
    /// The seed to schedule with (default: the plan's, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the plan and timeline as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `chaos validate`: exit 0 for a valid plan, 2 for an invalid one.
pub fn run(args: &ValidateArgs) -> ExitCode {
    let plan = match Plan::load(&args.plan) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("chaos: error: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.or(plan.seed).unwrap_or(0);
    let timeline = schedule(&plan, seed);
    if args.json {
        let out = serde_json::json!({"plan": plan, "seed": seed, "timeline": timeline});
        crate::output::print_stdout(&serde_json::to_string_pretty(&out).expect("json"));
    } else {
        if plan.seed.is_none() && args.seed.is_none() {
            crate::output::print_stdout(
                "(the plan has no seed: a run draws one at random; this timeline uses seed 0)",
            );
        }
        crate::output::print_stdout(render(&plan, seed, &timeline).trim_end());
    }
    ExitCode::SUCCESS
}
