//! `chaos compare RUN_A RUN_B`: the key figures of two runs side by side with the change, and each check's
//! verdict in both, in the terminal and as JSON.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::build::build;
use super::error::ReportError;
use super::schema::Report;

/// Version of the `--json` output.
pub const COMPARE_SCHEMA_VERSION: u32 = 1;

/// One figure in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FigureRow {
    /// What it is.
    pub figure: String,
    /// Its unit.
    pub unit: String,
    /// In run A.
    pub a: Option<f64>,
    /// In run B.
    pub b: Option<f64>,
    /// b − a.
    pub change: Option<f64>,
    /// (b − a) / a, in percent.
    pub change_pct: Option<f64>,
}

/// One check in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckRow {
    /// The check's id.
    pub id: String,
    /// Its verdict in run A (`absent` when A has no such check).
    pub a: String,
    /// Its verdict in run B.
    pub b: String,
}

/// A run's identity in a comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSide {
    /// The folder as given.
    pub dir: String,
    /// The plan.
    pub plan: String,
    /// The seed.
    pub seed: Option<u64>,
    /// The commit.
    pub git_commit: Option<String>,
    /// The verdict.
    pub verdict: String,
}

/// A comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// [`COMPARE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Run A.
    pub a: RunSide,
    /// Run B.
    pub b: RunSide,
    /// The figures.
    pub figures: Vec<FigureRow>,
    /// The checks.
    pub checks: Vec<CheckRow>,
}

fn side(dir: &Path, r: &Report) -> RunSide {
    RunSide {
        dir: dir.display().to_string(),
        plan: r.run.plan.clone(),
        seed: r.run.seed,
        git_commit: r.run.git_commit.clone(),
        verdict: r.verdict.word().to_owned(),
    }
}

type Pick = fn(&Report) -> Option<f64>;

fn figures_of() -> Vec<(&'static str, &'static str, Pick)> {
    vec![
        ("ops", "", |r| Some(r.ops.total as f64)),
        ("ops ok", "", |r| Some(r.ops.ok as f64)),
        ("ops fail", "", |r| Some(r.ops.fail as f64)),
        ("ops info", "", |r| Some(r.ops.info as f64)),
        ("availability", "%", |r| {
            r.availability.overall.share.map(|x| x * 100.0)
        }),
        ("availability outside faults", "%", |r| {
            r.availability.outside_faults.share.map(|x| x * 100.0)
        }),
        ("availability inside faults", "%", |r| {
            r.availability.inside_faults.share.map(|x| x * 100.0)
        }),
        ("latency p50", "ms", |r| r.latency_ms.all.map(|l| l.p50_ms)),
        ("latency p99", "ms", |r| r.latency_ms.all.map(|l| l.p99_ms)),
        ("latency max", "ms", |r| r.latency_ms.all.map(|l| l.max_ms)),
        ("latency p99 healthy", "ms", |r| {
            r.latency_ms.healthy.map(|l| l.p99_ms)
        }),
        ("faults injected", "", |r| Some(r.faults.injected as f64)),
        ("leader changes", "", |r| {
            r.leadership.as_ref().map(|l| l.changes as f64)
        }),
        ("longest without a leader", "ms", |r| {
            r.leadership
                .as_ref()
                .map(|l| l.longest_gap_ms().unwrap_or(0.0))
        }),
        ("acknowledged writes lost", "", |r| {
            Some(r.lost_writes.lost.len() as f64)
        }),
        ("history", "s", |r| Some(r.history_seconds)),
    ]
}

/// Compares two reports.
pub fn compare(dir_a: &Path, a: &Report, dir_b: &Path, b: &Report) -> Comparison {
    let figures = figures_of()
        .into_iter()
        .map(|(name, unit, pick)| {
            let (x, y) = (pick(a), pick(b));
            let change = x.zip(y).map(|(x, y)| round(y - x));
            let change_pct = x
                .zip(y)
                .filter(|(x, _)| *x != 0.0)
                .map(|(x, y)| round((y - x) / x * 100.0));
            FigureRow {
                figure: name.to_owned(),
                unit: unit.to_owned(),
                a: x.map(round),
                b: y.map(round),
                change,
                change_pct,
            }
        })
        .collect();
    let mut ids: Vec<&str> = a.checks.iter().map(|c| c.id.as_str()).collect();
    let seen: BTreeSet<&str> = ids.iter().copied().collect();
    ids.extend(
        b.checks
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| !seen.contains(id)),
    );
    let verdict_of = |r: &Report, id: &str| {
        r.checks
            .iter()
            .find(|c| c.id == id)
            .map_or("absent".to_owned(), |c| c.verdict.word().to_owned())
    };
    let checks = ids
        .into_iter()
        .map(|id| CheckRow {
            id: id.to_owned(),
            a: verdict_of(a, id),
            b: verdict_of(b, id),
        })
        .collect();
    Comparison {
        schema_version: COMPARE_SCHEMA_VERSION,
        a: side(dir_a, a),
        b: side(dir_b, b),
        figures,
        checks,
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn num(x: Option<f64>) -> String {
    match x {
        None => "n/a".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) => format!("{v:.1}"),
    }
}

/// The comparison as a terminal table.
pub fn text(c: &Comparison) -> String {
    let mut s = String::new();
    let seed = |x: Option<u64>| x.map_or("?".into(), |v| v.to_string());
    let _ = writeln!(
        s,
        "A: {} — {} (seed {}, {})\nB: {} — {} (seed {}, {})",
        c.a.verdict,
        c.a.dir,
        seed(c.a.seed),
        c.a.plan,
        c.b.verdict,
        c.b.dir,
        seed(c.b.seed),
        c.b.plan
    );
    let _ = writeln!(
        s,
        "{:<30} {:>12} {:>12} {:>12} {:>9}",
        "figure", "A", "B", "change", "change %"
    );
    for f in &c.figures {
        let name = if f.unit.is_empty() {
            f.figure.clone()
        } else {
            format!("{} ({})", f.figure, f.unit)
        };
        let change = f.change.map(|d| {
            if d > 0.0 {
                format!("+{}", num(Some(d)))
            } else {
                num(Some(d))
            }
        });
        let _ = writeln!(
            s,
            "{:<30} {:>12} {:>12} {:>12} {:>9}",
            name,
            num(f.a),
            num(f.b),
            change.unwrap_or_else(|| "n/a".into()),
            f.change_pct.map_or(String::new(), |p| format!("{p:+.1}%"))
        );
    }
    let _ = writeln!(s, "{:<30} {:>14} {:>14}", "check", "A", "B");
    for k in &c.checks {
        let mark = if k.a != k.b { "  <- changed" } else { "" };
        let _ = writeln!(s, "{:<30} {:>14} {:>14}{mark}", k.id, k.a, k.b);
    }
    s
}

/// A run's report for comparison: rebuilt from the folder, or read from its report.json when the folder cannot
/// be rebuilt (e.g. its history was deleted).
pub fn load(dir: &Path) -> Result<Report, ReportError> {
    match build(dir) {
        Ok(r) => Ok(r),
        Err(build_err) => {
            let path = dir.join("report.json");
            let text = std::fs::read_to_string(&path).map_err(|_| build_err)?;
            serde_json::from_str(&text).map_err(|e| ReportError::Parse {
                path: path.display().to_string(),
                line: e.line() as u64,
                message: e.to_string(),
            })
        }
    }
}

/// `chaos compare` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  chaos compare results/smoke-20261201T101010Z results/latest\n\nExit status: 0 compared, 2 a run folder could not be read."
)]
pub struct CompareArgs {
    /// The first run folder (the baseline).
    pub run_a: PathBuf,
    /// The second run folder.
    pub run_b: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `chaos compare` and returns the exit code.
pub fn run_compare(args: &CompareArgs) -> std::process::ExitCode {
    let loaded = load(&args.run_a).and_then(|a| load(&args.run_b).map(|b| (a, b)));
    match loaded {
        Ok((a, b)) => {
            let c = compare(&args.run_a, &a, &args.run_b, &b);
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&c).expect("a comparison serialises")
                );
            } else {
                print!("{}", text(&c));
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chaos: error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
