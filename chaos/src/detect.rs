//! `chaos detect`: the detection suite. It runs raft-node's planted-bug catalogue (`--bug NAME`, see
//! `raft::bugs`) and the bug-free cluster against general plans over several seeds, one `chaos run` process per
//! trial, and tabulates how often each bug is caught (the run FAILs), how fast (seconds from the start of the
//! fault phase to the first evidence of a violation, when the report knows it), and false alarms (FAILs of
//! the bug-free cluster). A trial that ends in a tool error or unknown is never counted as a detection.
//!
//! The aggregation ([`Tally`]) is pure; [`run`] is the IO around it. Output: a table on stdout and
//! `detect.json` in the suite's folder (every trial, with its run folder).

use crate::plan::parse_duration;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// The row of the bug-free cluster.
pub const NO_BUG: &str = "none";

/// `chaos detect` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  chaos detect --seeds 3\n  chaos detect --plans configs/partition-leader.toml,configs/disk-power-cut.toml --bugs no-fsync,none\n  chaos detect --until-caught --require-all --bugs non-atomic-cas,early-ack\n\nExit status: 0 done (and, with --require-all, every bug caught and no false alarm), 1 a required detection missing or a false alarm, 2 a trial ended in a tool error or bad arguments, 130 interrupted."
)]
pub struct DetectArgs {
    /// Plans, comma-separated (default: every plan in configs/ whose name does not contain "bug").
    #[arg(long, value_delimiter = ',')]
    pub plans: Vec<PathBuf>,
    /// Bugs, comma-separated, "none" for the bug-free cluster (default: the whole catalogue and none).
    #[arg(long, value_delimiter = ',')]
    pub bugs: Vec<String>,
    /// Seeds per bug and plan (default: $CHAOS_DETECT_SEEDS, else 1).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// The first seed (seeds are first, first + 1, ...).
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Overrides every plan's fault phase, e.g. 10s.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop trying a bug once it is caught (the short suite CI runs). The bug-free row always runs in full.
    #[arg(long)]
    pub until_caught: bool,
    /// Exit 1 unless every bug was caught at least once and the bug-free cluster never failed.
    #[arg(long)]
    pub require_all: bool,
    /// Where the suite's folder goes.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// The chaos binary to run trials with (default: this one).
    #[arg(long)]
    pub chaos: Option<PathBuf>,
}

/// How one trial ended.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum TrialOutcome {
    /// The run passed.
    Pass,
    /// The run failed: the bug was detected (or, without a bug, a false alarm).
    Fail {
        /// What kinds of violation the report names.
        violations: Vec<String>,
        /// Seconds from the start of the fault phase to the first evidence, if known.
        first_violation_s: Option<f64>,
    },
    /// The checker could not decide.
    Unknown,
    /// chaos itself failed: the trial proves nothing.
    ToolError {
        /// What the run said.
        reason: String,
    },
}

/// One trial: a bug (or none) × a plan × a seed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Trial {
    /// The bug's name, or [`NO_BUG`].
    pub bug: String,
    /// The plan's name.
    pub plan: String,
    /// The seed.
    pub seed: u64,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: TrialOutcome,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Its run folder, if it got one.
    pub run_dir: Option<String>,
}

/// The counts of one bug × plan cell.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Cell {
    /// Trials that FAILed.
    pub caught: u32,
    /// Trials that passed or failed (decided).
    pub decided: u32,
    /// Trials that ended unknown.
    pub unknown: u32,
    /// Trials that ended in a tool error.
    pub tool_errors: u32,
    /// First-violation times of the caught trials that have one.
    pub first_violation_s: Vec<f64>,
}

/// Every trial, aggregated by bug and plan.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Tally {
    /// bug → plan → cell.
    pub cells: BTreeMap<String, BTreeMap<String, Cell>>,
}

impl Tally {
    /// Aggregates `trials`.
    pub fn of(trials: &[Trial]) -> Tally {
        let mut tally = Tally::default();
        for t in trials {
            let cell = tally
                .cells
                .entry(t.bug.clone())
                .or_default()
                .entry(t.plan.clone())
                .or_default();
            match &t.outcome {
                TrialOutcome::Pass => cell.decided += 1,
                TrialOutcome::Fail {
                    first_violation_s, ..
                } => {
                    cell.decided += 1;
                    cell.caught += 1;
                    cell.first_violation_s.extend(*first_violation_s);
                }
                TrialOutcome::Unknown => cell.unknown += 1,
                TrialOutcome::ToolError { .. } => cell.tool_errors += 1,
            }
        }
        tally
    }

    /// The bug's best detection rate over plans (caught / decided), and that plan.
    pub fn best(&self, bug: &str) -> Option<(f64, &str)> {
        self.cells
            .get(bug)?
            .iter()
            .filter(|(_, c)| c.decided > 0)
            .map(|(plan, c)| (f64::from(c.caught) / f64::from(c.decided), plan.as_str()))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(a.1)))
    }

    /// The median first-violation time over every caught trial of `bug`.
    pub fn median_first_violation(&self, bug: &str) -> Option<f64> {
        let mut times: Vec<f64> = self
            .cells
            .get(bug)?
            .values()
            .flat_map(|c| c.first_violation_s.iter().copied())
            .collect();
        times.sort_by(f64::total_cmp);
        match times.len() {
            0 => None,
            n if n % 2 == 1 => Some(times[n / 2]),
            n => Some((times[n / 2 - 1] + times[n / 2]) / 2.0),
        }
    }

    /// Bugs never caught by any plan (the bug-free row excluded).
    pub fn missed(&self) -> Vec<&str> {
        self.cells
            .iter()
            .filter(|(bug, plans)| *bug != NO_BUG && plans.values().all(|c| c.caught == 0))
            .map(|(bug, _)| bug.as_str())
            .collect()
    }

    /// FAILs of the bug-free cluster.
    pub fn false_alarms(&self) -> u32 {
        self.cells
            .get(NO_BUG)
            .map_or(0, |plans| plans.values().map(|c| c.caught).sum())
    }

    /// Trials that ended in a tool error.
    pub fn tool_errors(&self) -> u32 {
        self.cells
            .values()
            .flat_map(|plans| plans.values())
            .map(|c| c.tool_errors)
            .sum()
    }

    /// The table for people: a row per bug, a column per plan (numbered, with a legend), each cell
    /// caught/decided (`!` marks tool errors, `?` unknowns), then the best rate and the median time to the
    /// first violation.
    pub fn render(&self) -> String {
        let mut plans: Vec<&str> = self
            .cells
            .values()
            .flat_map(|p| p.keys().map(String::as_str))
            .collect();
        plans.sort_unstable();
        plans.dedup();
        let mut out = String::new();
        let _ = write!(out, "{:<26}", "bug \\ plan");
        for i in 0..plans.len() {
            let _ = write!(out, "{:>7}", format!("P{}", i + 1));
        }
        let _ = writeln!(out, "{:>8}{:>12}", "best", "median s");
        for (bug, row) in &self.cells {
            let _ = write!(out, "{bug:<26}");
            for plan in &plans {
                let text = row.get(*plan).map_or("-".to_string(), |c| {
                    let mut t = format!("{}/{}", c.caught, c.decided);
                    if c.tool_errors > 0 {
                        t.push('!');
                    }
                    if c.unknown > 0 {
                        t.push('?');
                    }
                    t
                });
                let _ = write!(out, "{text:>7}");
            }
            let best = self
                .best(bug)
                .map_or("-".into(), |(r, _)| format!("{:.0}%", r * 100.0));
            let median = self
                .median_first_violation(bug)
                .map_or("-".into(), |m| format!("{m:.1}"));
            let _ = writeln!(out, "{best:>8}{median:>12}");
        }
        for (i, plan) in plans.iter().enumerate() {
            let _ = writeln!(out, "  P{} = {plan}", i + 1);
        }
        let _ = writeln!(
            out,
            "cells: caught/decided runs ('!' a tool error, '?' unknown); row {NO_BUG:?}: false alarms/runs"
        );
        out
    }
}

/// The general plans: every plan in `dir` whose file name does not contain "bug" (plans written for one bug
/// don't count towards detection power), sorted.
pub fn general_plans(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut plans: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("bug"))
        })
        .collect();
    plans.sort();
    Ok(plans)
}

fn plan_name(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// Runs one trial as its own `chaos run` process (a crash of one trial cannot take the suite down).
fn trial(
    chaos: &Path,
    plan: &Path,
    bug: &str,
    seed: u64,
    args: &DetectArgs,
    out: &Path,
) -> Result<Trial, String> {
    let started = std::time::Instant::now();
    let mut cmd = Command::new(chaos);
    cmd.arg("run")
        .arg(plan)
        .args(["--seed", &seed.to_string(), "--quiet", "--json", "--out"])
        .arg(out)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(d) = args.duration {
        cmd.arg("--duration")
            .arg(humantime::format_duration(d).to_string());
    }
    if bug != NO_BUG {
        cmd.arg("--node-arg=--bug").arg(format!("--node-arg={bug}"));
    }
    stop_with_parent(&mut cmd);
    let output = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", chaos.display()))?;
    let summary: Option<serde_json::Value> = serde_json::from_slice(&output.stdout).ok();
    let run_dir = summary
        .as_ref()
        .and_then(|s| s["run_dir"].as_str())
        .map(str::to_string);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let outcome = match output.status.code() {
        Some(0) => TrialOutcome::Pass,
        Some(1) => fail_outcome(run_dir.as_deref()),
        Some(3) => TrialOutcome::Unknown,
        Some(130) => return Err("interrupted".into()),
        other => TrialOutcome::ToolError {
            reason: format!(
                "exit {}: {}",
                other.map_or("by a signal".into(), |c| c.to_string()),
                stderr.trim().lines().last().unwrap_or("")
            ),
        },
    };
    Ok(Trial {
        bug: bug.to_string(),
        plan: plan_name(plan),
        seed,
        outcome,
        seconds: started.elapsed().as_secs_f64(),
        run_dir,
    })
}

/// A suite killed by a signal it cannot catch (SIGKILL, or SIGTERM: `detect` is synchronous and has no handler)
/// must not leave its trial running on: the trial gets SIGTERM when `detect` dies, stops its nodes as on Ctrl-C
/// and exits 130.
fn stop_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if !crate::supervisor::signal_on_parent_death(libc::SIGTERM, parent) {
                libc::_exit(130);
            }
            Ok(())
        });
    }
}

/// A failed trial's violations and first-violation time, from its report (absent fields stay empty).
fn fail_outcome(run_dir: Option<&str>) -> TrialOutcome {
    let report: Option<serde_json::Value> = run_dir
        .and_then(|d| std::fs::read(Path::new(d).join("report.json")).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    let field = |name: &str| {
        report.as_ref().and_then(|r| {
            r.get(name)
                .or_else(|| r.get("summary").and_then(|s| s.get(name)))
                .cloned()
        })
    };
    let mut violations = field("violations")
        .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
        .unwrap_or_default();
    if violations.is_empty() {
        // A FAIL on the plan's expectations alone (no violation kind): name the checks that failed.
        violations = failed_checks(report.as_ref());
    }
    TrialOutcome::Fail {
        violations,
        first_violation_s: field("first_violation_s").and_then(|v| v.as_f64()),
    }
}

/// The ids of the report's failed checks ("expect.no_leader_without_quorum", ...).
fn failed_checks(report: Option<&serde_json::Value>) -> Vec<String> {
    report
        .and_then(|r| r.get("checks")?.as_array())
        .into_iter()
        .flatten()
        .filter(|c| c.get("verdict").and_then(|v| v.as_str()) == Some("fail"))
        .filter_map(|c| c.get("id")?.as_str().map(str::to_string))
        .collect()
}

fn bugs_of(args: &DetectArgs) -> Result<Vec<String>, String> {
    if args.bugs.is_empty() {
        let mut all: Vec<String> = raft::bugs::Bug::names()
            .into_iter()
            .map(str::to_string)
            .collect();
        all.push(NO_BUG.into());
        return Ok(all);
    }
    for b in &args.bugs {
        if b != NO_BUG {
            raft::bugs::Bug::parse(b).map_err(|e| format!("--bugs: {e}"))?;
        }
    }
    Ok(args.bugs.clone())
}

/// `chaos detect`.
pub fn run(args: &DetectArgs) -> ExitCode {
    match suite(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chaos detect: error: {e}");
            ExitCode::from(if e == "interrupted" { 130 } else { 2 })
        }
    }
}

fn suite(args: &DetectArgs) -> Result<ExitCode, String> {
    let chaos = match &args.chaos {
        Some(p) => p.clone(),
        None => {
            std::env::current_exe().map_err(|e| format!("cannot find this chaos binary: {e}"))?
        }
    };
    let plans = if args.plans.is_empty() {
        general_plans(Path::new("configs"))?
    } else {
        args.plans.clone()
    };
    // Every plan must hold with the suite's overrides before any trial runs: a timeline that --duration cuts
    // short is refused here, once, rather than as one tool error per trial.
    for p in &plans {
        let mut plan = crate::plan::Plan::load(p).map_err(|e| e.to_string())?;
        if let Some(d) = args.duration {
            plan.duration = crate::plan::Dur(d);
            plan.validate(&format!("{} (with --duration)", p.display()))
                .map_err(|e| e.to_string())?;
        }
    }
    let bugs = bugs_of(args)?;
    let seeds = args.seeds.unwrap_or_else(|| {
        std::env::var("CHAOS_DETECT_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1)
    });
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    let folder = args.out.join(format!("detect-{stamp}"));
    std::fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let mut trials = Vec::new();
    for bug in &bugs {
        'bug: for plan in &plans {
            for seed in args.first_seed..args.first_seed + seeds {
                let t = trial(&chaos, plan, bug, seed, args, &folder.join("runs"))?;
                eprintln!(
                    "  {bug:<26} {:<28} seed {seed:<4} {:<10} {:>6.1}s",
                    t.plan,
                    match &t.outcome {
                        TrialOutcome::Pass => "pass".to_string(),
                        TrialOutcome::Fail { violations, .. } =>
                            format!("FAIL {}", violations.join(",")),
                        TrialOutcome::Unknown => "unknown".into(),
                        TrialOutcome::ToolError { reason } => format!("TOOL ERROR {reason}"),
                    },
                    t.seconds
                );
                let caught = matches!(t.outcome, TrialOutcome::Fail { .. });
                trials.push(t);
                if caught && args.until_caught && bug != NO_BUG {
                    break 'bug;
                }
            }
        }
    }
    let tally = Tally::of(&trials);
    let table = tally.render();
    crate::output::print_stdout(&table);
    let json = serde_json::json!({
        "plans": plans.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "seeds": seeds, "first_seed": args.first_seed, "until_caught": args.until_caught,
        "missed": tally.missed(), "false_alarms": tally.false_alarms(), "tool_errors": tally.tool_errors(),
        "cells": tally.cells, "trials": trials,
    });
    let path = folder.join("detect.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json).expect("json"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("detect.json: {}", path.display());
    if tally.tool_errors() > 0 {
        eprintln!(
            "TOOL ERROR: {} trial(s) ended in a tool error; those cells prove nothing",
            tally.tool_errors()
        );
        return Ok(ExitCode::from(2));
    }
    if args.require_all && (!tally.missed().is_empty() || tally.false_alarms() > 0) {
        eprintln!(
            "FAIL: missed {:?}; {} false alarm(s)",
            tally.missed(),
            tally.false_alarms()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(bug: &str, plan: &str, outcome: TrialOutcome) -> Trial {
        Trial {
            bug: bug.into(),
            plan: plan.into(),
            seed: 1,
            outcome,
            seconds: 1.0,
            run_dir: None,
        }
    }

    fn fail(at: Option<f64>) -> TrialOutcome {
        TrialOutcome::Fail {
            violations: vec!["not-linearizable".into()],
            first_violation_s: at,
        }
    }

    #[test]
    fn the_tally_counts_detections_false_alarms_and_never_counts_tool_errors() {
        let trials = vec![
            t("early-ack", "a", fail(Some(4.0))),
            t("early-ack", "a", TrialOutcome::Pass),
            t("early-ack", "b", fail(Some(9.0))),
            t("early-ack", "b", fail(Some(1.0))),
            t(
                "no-fsync",
                "a",
                TrialOutcome::ToolError { reason: "x".into() },
            ),
            t("no-fsync", "b", TrialOutcome::Unknown),
            t(NO_BUG, "a", TrialOutcome::Pass),
            t(NO_BUG, "b", fail(None)),
        ];
        let tally = Tally::of(&trials);
        assert_eq!(tally.best("early-ack"), Some((1.0, "b")));
        assert_eq!(tally.median_first_violation("early-ack"), Some(4.0));
        assert_eq!(tally.missed(), vec!["no-fsync"]);
        assert_eq!(tally.false_alarms(), 1);
        assert_eq!(tally.tool_errors(), 1);
        assert_eq!(tally.best("no-fsync"), None, "no decided trial, no rate");
        let table = tally.render();
        assert!(
            table.contains("early-ack") && table.contains("1/2") && table.contains("2/2"),
            "{table}"
        );
        assert!(table.contains("0/0!") && table.contains("0/0?"), "{table}");
        assert!(
            table.contains("P1 = a") && table.contains("100%"),
            "{table}"
        );
    }

    #[test]
    fn a_fail_on_expectations_alone_is_named_by_its_failed_checks() {
        let dir = tempfile::tempdir().unwrap();
        let report = serde_json::json!({
            "violations": [],
            "checks": [
                {"id": "linearizability", "verdict": "pass"},
                {"id": "expect.no_leader_without_quorum", "verdict": "fail"},
                {"id": "expect.converged", "verdict": "not-evaluated"},
            ],
        });
        std::fs::write(dir.path().join("report.json"), report.to_string()).unwrap();
        assert_eq!(
            fail_outcome(dir.path().to_str()),
            TrialOutcome::Fail {
                violations: vec!["expect.no_leader_without_quorum".into()],
                first_violation_s: None,
            }
        );
    }

    #[test]
    fn general_plans_leave_out_plans_written_for_one_bug() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["smoke.toml", "stale-read-bug.toml", "notes.md", "b.toml"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = general_plans(dir.path())
            .unwrap()
            .iter()
            .map(|p| plan_name(p))
            .collect();
        assert_eq!(names, vec!["b", "smoke"]);
    }
}
