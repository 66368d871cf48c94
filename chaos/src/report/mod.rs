//! Reports: everything people and CI read about a run, rebuilt from the run folder alone.
//!
//! ```text
//! run folder ─► model (read the files) ─► figures (pure) ─► expect (verdicts) ─► Report
//!                                                                                  │
//!        report.json · report.html (html + plots) · junit.xml · counterexample.html · ../index.html (index)
//! ```
//!
//! The runner calls, at the end of every run:
//!
//! ```no_run
//! # fn main() -> Result<(), chaos::report::ReportError> {
//! # let run_dir = std::path::Path::new("results/smoke-20261203T195649Z");
//! let report = chaos::report::build(run_dir)?;           // pure function of the folder's files
//! let written = chaos::report::write(run_dir, &report)?;  // report.json, report.html, junit.xml, ..., ../index.html
//! eprintln!("{}", chaos::report::summary::text(&report, &written.html));
//! std::process::exit(report.verdict().exit_code().into());
//! # }
//! ```
//!
//! `build` is deterministic: the same folder (or a copy of it, anywhere) gives the same `report.json`. It holds
//! no wall-clock time and no path of the folder.

mod build;
pub mod compare;
mod error;
pub mod expect;
pub mod figures;
pub mod html;
pub mod index;
pub mod junit;
pub(crate) mod last_words;
pub mod model;
pub mod plots;
mod schema;
pub mod summary;
mod verdict;

use std::path::{Path, PathBuf};

pub use build::{build, build_with_check};
pub use error::ReportError;
pub use schema::{
    FailedFault, Faults, FinalReads, LinKey, Linearizability, Report, RunInfo, StoppedEarly,
    REPORT_SCHEMA_VERSION,
};
pub use verdict::{
    overall_verdict, violations, CheckResult, CheckVerdict, RunVerdict, ViolationKind,
};

/// The files [`write()`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// report.json.
    pub json: PathBuf,
    /// report.html.
    pub html: PathBuf,
    /// junit.xml.
    pub junit: PathBuf,
    /// counterexample.html, when a key is not linearizable.
    pub counterexample: Option<PathBuf>,
    /// The results folder's index.html, or why it could not be written (the run's own files are written anyway).
    pub index: Result<PathBuf, String>,
}

fn write_file(path: &Path, contents: &str) -> Result<(), ReportError> {
    std::fs::write(path, contents).map_err(|e| ReportError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Writes report.json, report.html, junit.xml and (when a key is not linearizable) counterexample.html into the
/// run folder, then rewrites the results folder's index.html (`<run_dir>/../index.html`).
pub fn write(run_dir: &Path, report: &Report) -> Result<Written, ReportError> {
    let json = run_dir.join("report.json");
    let mut text = serde_json::to_string_pretty(report).expect("a report serialises");
    text.push('\n');
    write_file(&json, &text)?;
    let html_path = run_dir.join("report.html");
    write_file(&html_path, &html::render(report))?;
    let junit = run_dir.join("junit.xml");
    write_file(&junit, &junit::render(report))?;
    let counterexample = match &report.counterexample_html {
        Some(page) => {
            let path = run_dir.join("counterexample.html");
            write_file(&path, page)?;
            Some(path)
        }
        None => None,
    };
    let index = match run_dir.parent() {
        Some(p) if p.as_os_str().is_empty() => {
            index::write_index(Path::new(".")).map_err(|e| e.to_string())
        }
        Some(results) => index::write_index(results).map_err(|e| e.to_string()),
        None => Err(format!("{} has no parent folder", run_dir.display())),
    };
    Ok(Written {
        json,
        html: html_path,
        junit,
        counterexample,
        index,
    })
}

/// `chaos report` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Rebuilds report.json, report.html, junit.xml, counterexample.html and the results folder's index.html from the run folder's files alone.\n\nExit status: 0 pass, 1 fail, 2 tool error or unreadable folder, 3 unknown."
)]
pub struct ReportArgs {
    /// The run folder (e.g. results/smoke-20261203T195649Z or results/latest).
    pub run_dir: PathBuf,
    /// Print report.json on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs `chaos report` and returns the exit code.
pub fn run_report(args: &ReportArgs) -> std::process::ExitCode {
    let result = build(&args.run_dir).and_then(|r| write(&args.run_dir, &r).map(|w| (r, w)));
    match result {
        Ok((report, written)) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("a report serialises")
                );
            } else {
                println!("{}", summary::text(&report, &written.html));
            }
            if let Err(e) = &written.index {
                eprintln!("chaos: warning: the results index was not rewritten: {e}");
            }
            std::process::ExitCode::from(report.verdict().exit_code())
        }
        Err(e) => {
            eprintln!("chaos: error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
