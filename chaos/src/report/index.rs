//! results/index.html: one row per run folder (time, plan, seed, target, verdict, ops, duration, a link to its
//! report), newest first. Rewritten after every run; a folder that is broken or still running gets a row that
//! says so instead of breaking the page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use checker::html::escape;

use super::error::ReportError;
use super::model::{self, Manifest};

/// One row of the index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexRow {
    /// The folder's name.
    pub folder: String,
    /// When it started (RFC 3339), from the manifest.
    pub started_at: Option<String>,
    /// The plan.
    pub plan: Option<String>,
    /// The seed.
    pub seed: Option<u64>,
    /// The system under test.
    pub target: Option<String>,
    /// The verdict word, or what is wrong with the folder.
    pub verdict: String,
    /// CSS class of the verdict.
    pub class: &'static str,
    /// Ops ok / all.
    pub ops: Option<(u64, u64)>,
    /// Seconds of history.
    pub seconds: Option<f64>,
    /// Whether report.html exists.
    pub has_report: bool,
}

/// Reads one run folder's row: from report.json when it exists, else from what is there.
pub fn row(dir: &Path) -> IndexRow {
    let folder = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut row = IndexRow {
        folder,
        started_at: None,
        plan: None,
        seed: None,
        target: None,
        verdict: String::new(),
        class: "unknown",
        ops: None,
        seconds: None,
        has_report: dir.join("report.html").is_file(),
    };
    let manifest: Option<Manifest> = match model::read_manifest(dir) {
        Ok(m) => Some(m),
        Err(ReportError::Missing { .. }) => {
            row.verdict = "no manifest.json (starting, or not a run folder)".into();
            row.class = "broken";
            return row;
        }
        Err(e) => {
            row.verdict = format!("broken: {e}");
            row.class = "broken";
            return row;
        }
    };
    if let Some(m) = &manifest {
        row.started_at = m.started_at.clone();
        row.plan = m.plan_name().map(str::to_owned);
        row.seed = m.seed;
        row.target = m.target();
    }
    let report: Option<serde_json::Value> = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match report.filter(|r| r.get("schema_version").is_some() && r.get("verdict").is_some()) {
        Some(r) => {
            let verdict = r["verdict"].as_str().unwrap_or("");
            (row.verdict, row.class) = match verdict {
                "pass" => ("PASS".into(), "pass"),
                "fail" => ("FAIL".into(), "fail"),
                "unknown" => ("UNKNOWN".into(), "unknown"),
                "tool-error" => ("TOOL ERROR".into(), "tool-error"),
                other => (format!("unrecognised verdict {other:?}"), "broken"),
            };
            row.ops = r["ops"]["ok"].as_u64().zip(r["ops"]["total"].as_u64());
            row.seconds = r["wall_seconds"]
                .as_f64()
                .or_else(|| r["history_seconds"].as_f64());
        }
        None => {
            let has_history = dir.join("history.jsonl").is_file();
            let outcome = dir.join("outcome.json").is_file();
            let old_report = dir.join("report.json").is_file();
            row.verdict = match (has_history, outcome || old_report) {
                (false, _) => "no history (setup failed, or starting)".into(),
                (true, false) => "no report yet (running, or stopped before the end)".into(),
                (true, true) => "no report (run `chaos report` on the folder)".into(),
            };
            row.class = "running";
        }
    }
    row
}

/// Every run folder's row, newest first (by start time, then folder name).
pub fn rows(results_dir: &Path) -> Result<Vec<IndexRow>, ReportError> {
    let mut rows: Vec<IndexRow> = model::run_folders(results_dir)?
        .iter()
        .map(|d| row(d))
        .collect();
    rows.sort_by(|a, b| {
        (b.started_at.as_deref(), b.folder.as_str())
            .cmp(&(a.started_at.as_deref(), a.folder.as_str()))
    });
    Ok(rows)
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}\
main{max-width:1360px;margin:0 auto;padding:1.2em 1.5em 3em}h1{font-size:1.6em}\
table{border-collapse:collapse;background:#fff;border:1px solid #e1e4e8;width:100%;font-size:.93em}\
td,th{border-bottom:1px solid #eee;padding:.4em .8em;text-align:left}th{background:#fafbfc}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.v{font-weight:700;padding:.1em .5em;border-radius:4px;font-size:.85em;white-space:nowrap}\
.pass{background:#e3f4e8;color:#1b7f3b}.fail{background:#fde2e4;color:#b00020}.unknown{background:#fff2d6;color:#8a5a00}\
.tool-error{background:#efe3f7;color:#5b2a86}.running{background:#eceff3;color:#555}.broken{background:#eceff3;color:#8a1c1c}\
.note{color:#555;font-size:.88em}code{font-family:ui-monospace,Menlo,monospace}";

/// Renders the index page.
pub fn render(rows: &[IndexRow]) -> String {
    let mut s = String::new();
    let count = |c: &str| rows.iter().filter(|r| r.class == c).count();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>chaos runs</title><style>{STYLE}</style></head>\
         <body><main><h1>chaos runs</h1><p class=\"note\">{} run folder(s): {} pass, {} fail, {} unknown, {} tool error, {} without a report. Newest first.</p>\
         <table><tr><th>started</th><th>plan</th><th>seed</th><th>target</th><th>verdict</th><th>ops ok / all</th><th>duration</th><th>report</th></tr>\n",
        rows.len(),
        count("pass"),
        count("fail"),
        count("unknown"),
        count("tool-error"),
        count("running") + count("broken")
    );
    for r in rows {
        let link = if r.has_report {
            format!(
                "<a href=\"{0}/report.html\">{1}</a>",
                escape(&r.folder),
                escape(&r.folder)
            )
        } else {
            format!("<code>{}</code>", escape(&r.folder))
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td><span class=\"v {}\">{}</span></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(r.started_at.as_deref().unwrap_or("")),
            escape(r.plan.as_deref().unwrap_or("")),
            r.seed.map(|x| x.to_string()).unwrap_or_default(),
            escape(r.target.as_deref().unwrap_or("")),
            r.class,
            escape(&r.verdict),
            r.ops.map(|(ok, all)| format!("{ok} / {all}")).unwrap_or_default(),
            r.seconds.map(|x| format!("{x:.1} s")).unwrap_or_default(),
            link
        );
    }
    s.push_str("</table></main></body></html>\n");
    s
}

/// Rewrites `<results_dir>/index.html` (atomically: a concurrent reader never sees half a page).
pub fn write_index(results_dir: &Path) -> Result<PathBuf, ReportError> {
    let page = render(&rows(results_dir)?);
    let path = results_dir.join("index.html");
    let tmp = results_dir.join(format!(".index.html.{}", std::process::id()));
    let io = |p: &Path, e: std::io::Error| ReportError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    std::fs::write(&tmp, page).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    Ok(path)
}
