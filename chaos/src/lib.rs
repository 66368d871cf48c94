//! The chaos CLI: plans, schedules, supervisor, nemeses, workload, recorder, checker, reports.
//!
//! Data flows one way: plan → schedule → run → history → verdict → report. Each subcommand lives in its own
//! module with an `Args` struct (parsed by clap in `main.rs`) and a function that returns the exit code:
//!
//! ```text
//! chaos run PLAN [--seed N] [--nodes N] [--duration D] [--out DIR] [--quiet] [--json]
//! chaos validate PLAN [--seed N] [--json]
//! chaos check HISTORY... [--model register|cas-register] [--time-limit 30s] [--out DIR] [--json]
//! chaos bench election [--nodes 3] [--trials 20] [--election-timeout-min 150ms] [--json]
//! ```

pub mod bench;
pub mod check;
pub mod nemesis;
pub mod nftables;
pub mod plan;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod supervisor;
pub mod topology;
pub mod validate;
pub mod workload;
