//! The chaos CLI: plans, schedules, fault families, targets, hosts, supervisor, workload, recorder, checker,
//! reports.
//!
//! Data flows one way: plan → schedule → run → history → verdict → report. Each subcommand lives in its own
//! module with an `Args` struct (parsed by clap in `main.rs`) and a function that returns the exit code:
//!
//! ```text
//! chaos run PLAN [--seed N] [--nodes N] [--duration D] [--out DIR] [--quiet] [--json]
//! chaos validate PLAN [--seed N] [--json]
//! chaos check HISTORY... [--model register|cas-register|set|mutex|unordered-queue|fifo-queue] [--time-limit 30s] [--out DIR] [--json]
//! chaos bench election [--target raft-node,etcd] [--nodes 3] [--trials 20] [--json]
//! chaos report RUN_DIR [--json]          chaos compare RUN_A RUN_B [--json]
//! chaos soak crash-cycles [--cycles 5] [--target raft-node|etcd] [--json]
//! ```
//!
//! Where things go: a new kind of fault is a module in `faults/` (see [`faults`]); a new system under test is a
//! module in `targets/` (see [`targets`]); a new place for nodes to run is a module in `hosts/`.

pub mod bench;
pub mod check;
pub mod cluster;
pub mod detect;
pub mod driver;
pub mod early_stop;
pub mod events;
pub mod faults;
pub mod hosts;
pub mod output;
pub mod plan;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod soak;
pub mod status_poll;
pub mod supervisor;
pub mod targets;
pub mod validate;
pub mod watch;
pub mod workload;
