//! `chaos`: the command line. Subcommands are modules of the `chaos` library; this file only parses and
//! dispatches, so adding `run`, `validate` or `bench` is one enum variant and one match arm.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chaos",
    version,
    about = "Chaos testing toolkit: run fault-injection plans and check their histories"
)]
struct Cli {
    /// More logging (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a plan against a local cluster: start it, drive clients, inject faults, heal, check, report.
    ///
    /// Exit status: 0 pass, 1 fail, 2 bad plan or setup error, 3 unknown, 130 interrupted.
    Run(chaos::runner::RunArgs),
    /// Parse and check a plan, and print the exact timeline of faults it schedules.
    Validate(chaos::validate::ValidateArgs),
    /// Measure the system under test (e.g. how fast a killed leader is replaced).
    #[command(subcommand)]
    Bench(chaos::bench::BenchCommand),
    /// Check history files for linearizability.
    ///
    /// Exit status: 0 all linearizable, 1 any not linearizable, 2 bad input (and no violation), 3 any unknown
    /// (and no violation nor bad input).
    Check(chaos::check::CheckArgs),
    /// Rebuild a run folder's report (report.json, report.html, junit.xml, the results index) from its files.
    Report(chaos::report::ReportArgs),
    /// Compare the key figures of two runs.
    Compare(chaos::report::compare::CompareArgs),
    /// Run the planted-bug catalogue and the bug-free cluster against general plans over seeds; print how
    /// often and how fast each bug is caught, and false alarms.
    Detect(chaos::detect::DetectArgs),
    /// Long-running checks with a CI-sized default (e.g. crash every node again and again under writes).
    #[command(subcommand)]
    Soak(chaos::soak::SoakCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match &cli.command {
        Command::Run(args) => return chaos::runner::run_command(args),
        Command::Validate(args) => return chaos::validate::run(args),
        Command::Bench(command) => return chaos::bench::run(command),
        Command::Soak(command) => return chaos::soak::run(command),
        Command::Detect(args) => return chaos::detect::run(args),
        Command::Check(args) => chaos::check::run(args),
        Command::Report(args) => return chaos::report::run_report(args),
        Command::Compare(args) => return chaos::report::compare::run_compare(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chaos: error: {e:#}");
            ExitCode::from(chaos::check::EXIT_BAD_INPUT)
        }
    }
}
