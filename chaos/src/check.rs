//! `chaos check`: checks history files for linearizability, prints one verdict line per file and a total, and
//! optionally writes a JSON report and an HTML counterexample page per file.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use checker::search::Budget;
use checker::{check_file, render_html, CheckOptions, CheckReport, ModelKind, Verdict};
use serde::Serialize;

/// Every file linearizable.
pub const EXIT_LINEARIZABLE: u8 = 0;
/// Some file not linearizable.
pub const EXIT_NOT_LINEARIZABLE: u8 = 1;
/// Some file could not be read, is malformed, or has no operation to check (and none is not linearizable).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Some file's verdict is unknown (and none is not linearizable or malformed).
pub const EXIT_UNKNOWN: u8 = 3;

/// Version of the `--json` summary and of `summary.json`.
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

/// Counterexamples printed per file; the rest are in the `--out` report.
const COUNTEREXAMPLES_PRINTED_MAX: usize = 3;

/// Arguments of `chaos check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// History files (`.jsonl`, or Jepsen `.edn`) or directories: a directory means every `*.jsonl` and `*.edn`
    /// file directly inside it.
    #[arg(required = true, value_name = "HISTORY")]
    pub histories: Vec<PathBuf>,

    /// The model each key is checked against: register, cas-register, set, mutex, unordered-queue or fifo-queue
    /// (see checker/HISTORY-FORMAT.md for the ops of each).
    #[arg(long, default_value = "cas-register", value_parser = parse_model)]
    pub model: ModelKind,

    /// Wall-clock limit per file (e.g. `30s`, `500ms`, `2m`); past it, unfinished keys are unknown.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub time_limit: Duration,

    /// Search steps per key before its verdict is unknown.
    #[arg(long, default_value_t = Budget::default().steps_max_per_key, value_name = "STEPS")]
    pub max_steps: u64,

    /// Memory for the search's cache per key, in MiB; past it, the key's verdict is unknown ("memory limit
    /// reached"). Up to two keys are searched at a time on two cores.
    #[arg(long, default_value_t = Budget::default().cache_bytes_max_per_key >> 20, value_name = "MIB")]
    pub max_search_memory: u64,

    /// Write `NAME.report.json` per file, `NAME.counterexample.html` per file with a violation, and
    /// `summary.json` into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Print a machine-readable JSON summary on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
    s.parse()
}

/// The outcome for one file.
#[derive(Debug, Serialize)]
struct FileSummary {
    path: String,
    /// `linearizable`, `not-linearizable`, `unknown`, `empty` or `bad-input`.
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    ops: u64,
    keys: u64,
    keys_not_linearizable: u64,
    keys_unknown: u64,
    elapsed_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counterexample_html: Option<String>,
}

#[derive(Debug, Serialize, Default)]
struct Totals {
    files: u64,
    linearizable: u64,
    not_linearizable: u64,
    unknown: u64,
    empty: u64,
    bad_input: u64,
}

#[derive(Debug, Serialize)]
struct Summary {
    schema_version: u32,
    model: ModelKind,
    files: Vec<FileSummary>,
    total: Totals,
    exit_code: u8,
}

/// The files to check: each argument itself, or the `*.jsonl` / `*.edn` files of a directory, sorted.
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list directory", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| e == "jsonl" || e == "edn")
                })
                .collect();
            if found.is_empty() {
                bail!(
                    "{}: directory holds no *.jsonl or *.edn history",
                    p.display()
                );
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// A name for a file's outputs in `--out`, unique among the files of this run.
fn output_stem(path: &Path, used: &mut HashSet<String>) -> String {
    let base = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("history")
        .to_owned();
    let mut stem = base.clone();
    let mut n = 2;
    while !used.insert(stem.clone()) {
        stem = format!("{base}-{n}");
        n += 1;
    }
    stem
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "not-linearizable",
        Verdict::Unknown => "unknown",
        Verdict::Empty => "empty",
    }
}

/// Where `chaos check` prints. A reader that goes away (`chaos check ... | head`) is a normal end, not an error:
/// the first broken pipe on stdout stops all further output and the checking of further files.
#[derive(Debug, Default)]
struct Out {
    closed: bool,
}

impl Out {
    /// Prints a line on stdout; false once the reader has gone.
    fn line(&mut self, text: &str) -> bool {
        if self.closed {
            return false;
        }
        let mut stdout = std::io::stdout().lock();
        let result = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
        match result {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                false
            }
            Err(_) => {
                // Any other failure to print (a full disk behind a redirect) also ends the output.
                self.closed = true;
                false
            }
        }
    }

    /// Prints a line on stderr; a closed stderr is ignored.
    fn note(&mut self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

fn verdict_line(path: &str, report: &CheckReport, elapsed: Duration) -> String {
    let size = format!(
        "{} ops, {} key{}, {:.3} s",
        report.stats.ops,
        report.stats.keys,
        if report.stats.keys == 1 { "" } else { "s" },
        elapsed.as_secs_f64()
    );
    match report.verdict {
        Verdict::Linearizable => format!("{path}: linearizable ({size})"),
        Verdict::NotLinearizable => format!(
            "{path}: NOT LINEARIZABLE ({} of {} keys not linearizable, {} unknown; {size})",
            report.keys_not_linearizable, report.stats.keys, report.keys_unknown
        ),
        Verdict::Empty => format!("{path}: empty: no operation to check ({size})"),
        Verdict::Unknown => {
            let mut reasons: Vec<&str> = report
                .keys
                .iter()
                .filter_map(|k| k.unknown_reason.map(|r| r.as_str()))
                .collect();
            reasons.sort_unstable();
            reasons.dedup();
            format!(
                "{path}: unknown ({} of {} keys undecided: {}; {size})",
                report.keys_unknown,
                report.stats.keys,
                reasons.join(", ")
            )
        }
    }
}

fn write_outputs(
    dir: &Path,
    stem: &str,
    report: &CheckReport,
    elapsed: Duration,
) -> anyhow::Result<(String, Option<String>)> {
    #[derive(Serialize)]
    struct WithTiming<'a> {
        elapsed_s: f64,
        #[serde(flatten)]
        report: &'a CheckReport,
    }
    let json_path = dir.join(format!("{stem}.report.json"));
    let json = serde_json::to_vec_pretty(&WithTiming {
        elapsed_s: elapsed.as_secs_f64(),
        report,
    })?;
    std::fs::write(&json_path, json)
        .with_context(|| format!("{}: cannot write", json_path.display()))?;
    let html_path = if report.counterexamples().next().is_some() {
        let p = dir.join(format!("{stem}.counterexample.html"));
        std::fs::write(&p, render_html(report))
            .with_context(|| format!("{}: cannot write", p.display()))?;
        Some(p.display().to_string())
    } else {
        None
    };
    Ok((json_path.display().to_string(), html_path))
}

/// Runs `chaos check`.
pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let files = expand(&args.histories)?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create output directory", dir.display()))?;
    }
    let mut used_stems = HashSet::new();
    let mut summaries = Vec::with_capacity(files.len());
    let mut totals = Totals::default();
    let mut out = Out::default();
    for path in &files {
        if out.closed {
            break;
        }
        let name = path.display().to_string();
        let started = Instant::now();
        let budget = Budget::new(
            args.max_steps,
            args.max_search_memory.saturating_mul(1 << 20),
            started.checked_add(args.time_limit),
        );
        let options = CheckOptions::new(args.model).with_budget(budget);
        let result = check_file(path, &options);
        let elapsed = started.elapsed();
        totals.files += 1;
        let summary = match result {
            Err(e) => {
                totals.bad_input += 1;
                out.note(&format!("chaos check: {e}"));
                if !args.json {
                    out.line(&format!("{name}: bad input"));
                }
                FileSummary {
                    path: name,
                    verdict: "bad-input",
                    error: Some(e.to_string()),
                    ops: 0,
                    keys: 0,
                    keys_not_linearizable: 0,
                    keys_unknown: 0,
                    elapsed_s: elapsed.as_secs_f64(),
                    report: None,
                    counterexample_html: None,
                }
            }
            Ok(report) => {
                for n in &report.notices {
                    out.note(&format!("chaos check: notice: {n}"));
                }
                match report.verdict {
                    Verdict::Linearizable => totals.linearizable += 1,
                    Verdict::NotLinearizable => totals.not_linearizable += 1,
                    Verdict::Unknown => totals.unknown += 1,
                    Verdict::Empty => {
                        totals.empty += 1;
                        let why = if report.stats.ops == 0 {
                            "the history has no operations".to_owned()
                        } else {
                            format!(
                                "none of the history's {} operations can be checked (failed ops and indeterminate reads carry no information)",
                                report.stats.ops
                            )
                        };
                        out.note(&format!("chaos check: {name}: {why}: it proves nothing"));
                    }
                }
                if !args.json {
                    out.line(&verdict_line(&name, &report, elapsed));
                    let cex: Vec<_> = report.counterexamples().collect();
                    'print: for c in cex.iter().take(COUNTEREXAMPLES_PRINTED_MAX) {
                        for line in c.to_text().lines() {
                            if !out.line(&format!("    {line}")) {
                                break 'print;
                            }
                        }
                    }
                    if cex.len() > COUNTEREXAMPLES_PRINTED_MAX {
                        out.line(&format!(
                            "    ... and {} more keys not linearizable{}",
                            cex.len() - COUNTEREXAMPLES_PRINTED_MAX,
                            if args.out.is_some() {
                                " (see the report)"
                            } else {
                                " (use --out DIR for all)"
                            }
                        ));
                    }
                }
                let (report_path, html_path) = match &args.out {
                    Some(dir) => {
                        let stem = output_stem(path, &mut used_stems);
                        let (j, h) = write_outputs(dir, &stem, &report, elapsed)?;
                        (Some(j), h)
                    }
                    None => (None, None),
                };
                FileSummary {
                    path: name,
                    verdict: verdict_name(report.verdict),
                    error: None,
                    ops: report.stats.ops,
                    keys: report.stats.keys,
                    keys_not_linearizable: report.keys_not_linearizable,
                    keys_unknown: report.keys_unknown,
                    elapsed_s: elapsed.as_secs_f64(),
                    report: report_path,
                    counterexample_html: html_path,
                }
            }
        };
        summaries.push(summary);
    }
    // A violation matters most; then input we could not judge (malformed, or nothing to check); then undecided
    // searches.
    let exit_code = if totals.not_linearizable > 0 {
        EXIT_NOT_LINEARIZABLE
    } else if totals.bad_input > 0 || totals.empty > 0 {
        EXIT_BAD_INPUT
    } else if totals.unknown > 0 {
        EXIT_UNKNOWN
    } else {
        EXIT_LINEARIZABLE
    };
    let total_line = format!(
        "total: {} file{}: {} linearizable, {} not linearizable, {} unknown, {} empty, {} bad input",
        totals.files,
        if totals.files == 1 { "" } else { "s" },
        totals.linearizable,
        totals.not_linearizable,
        totals.unknown,
        totals.empty,
        totals.bad_input
    );
    let summary = Summary {
        schema_version: SUMMARY_SCHEMA_VERSION,
        model: args.model,
        files: summaries,
        total: totals,
        exit_code,
    };
    if let Some(dir) = &args.out {
        let p = dir.join("summary.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    if args.json {
        out.line(&serde_json::to_string_pretty(&summary)?);
    } else {
        out.line(&total_line);
    }
    Ok(ExitCode::from(exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_stems_are_unique() {
        let mut used = HashSet::new();
        assert_eq!(
            output_stem(Path::new("a/history.jsonl"), &mut used),
            "history"
        );
        assert_eq!(
            output_stem(Path::new("b/history.jsonl"), &mut used),
            "history-2"
        );
        assert_eq!(
            output_stem(Path::new("c/history.edn"), &mut used),
            "history-3"
        );
        assert_eq!(output_stem(Path::new("x.edn"), &mut used), "x");
    }
}
