//! report.html: one self-contained page (inline CSS and SVG, no script, no external resource) that a person
//! reads at a glance: the verdict, each check, the key figures, the plots, the faults, the counterexample, and
//! how to replay the run.

use std::fmt::Write as _;

use checker::html::escape;

use super::figures::FaultWindow;
use super::plots::{self, Plot};
use super::schema::Report;
use super::summary::{latency_text, share_text};
use super::verdict::{CheckVerdict, RunVerdict};

/// The checker's counterexample page is embedded up to this size; a larger one (many keys) is linked instead, so
/// the report stays small and quick to open.
pub const COUNTEREXAMPLE_EMBED_BYTES_MAX: usize = 750_000;

/// Fault windows listed in the table, at most.
pub const FAULT_ROWS_SHOWN_MAX: usize = 400;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}\
main{max-width:1360px;margin:0 auto;padding:1.2em 1.5em 3em}\
h1{font-size:2.2em;margin:0}h2{font-size:1.2em;margin:1.6em 0 .5em}\
.banner{padding:1em 1.5em;color:#fff;display:flex;align-items:baseline;gap:1.2em;flex-wrap:wrap}\
.banner .what{font-size:1.15em;opacity:.95}\
.pass{background:#1b7f3b}.fail{background:#b00020}.unknown{background:#a66b00}.tool-error{background:#5b2a86}\
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:.6em 1.2em 1em;margin-top:1em}\
table{border-collapse:collapse;font-size:.92em}td,th{border-bottom:1px solid #eee;padding:.3em .8em .3em 0;text-align:left;vertical-align:top}\
th{font-weight:600;color:#444}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.v{font-weight:700;white-space:nowrap;padding:.1em .5em;border-radius:4px;font-size:.85em}\
.v-pass{background:#e3f4e8;color:#1b7f3b}.v-fail{background:#fde2e4;color:#b00020}\
.v-unknown{background:#fff2d6;color:#8a5a00}.v-not-evaluated{background:#eceff3;color:#555}.v-tool-error{background:#efe3f7;color:#5b2a86}\
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}\
pre{background:#f6f8fa;padding:.6em;overflow:auto;max-height:30em}\
.replay{font-size:1.05em;background:#f6f8fa;padding:.4em .6em;border-radius:4px;display:inline-block}\
.legend{display:flex;flex-wrap:wrap;gap:.4em 1.2em;font-size:.88em;margin:.3em 0}\
.sw{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.35em;vertical-align:-.1em}\
.note{color:#555;font-size:.88em;margin:.25em 0}.warn{background:#fff8e1;border-color:#f0d48a}\
svg{max-width:100%;height:auto;display:block}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:.3em 2em}\
.fig{font-size:1.35em;font-weight:600}.figlabel{color:#555;font-size:.85em}\
.verdict-bad{color:#b00020}.verdict-ok{color:#1b7f3b}.verdict-unknown{color:#a66b00}\
tr.failed td{background:#fde2e4;font-weight:600}";

fn verdict_class(v: RunVerdict) -> &'static str {
    match v {
        RunVerdict::Pass => "pass",
        RunVerdict::Fail => "fail",
        RunVerdict::Unknown => "unknown",
        RunVerdict::ToolError => "tool-error",
    }
}

fn check_class(v: CheckVerdict) -> &'static str {
    match v {
        CheckVerdict::Pass => "v-pass",
        CheckVerdict::Fail => "v-fail",
        CheckVerdict::Unknown => "v-unknown",
        CheckVerdict::NotEvaluated => "v-not-evaluated",
        CheckVerdict::ToolError => "v-tool-error",
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or("unknown".to_owned(), |x| escape(&x.to_string()))
}

fn plot_section(s: &mut String, id: &str, plot: &Plot) {
    let _ = write!(s, "<section id=\"{id}\"><h2>{}</h2>", escape(&plot.title));
    if !plot.legend.is_empty() {
        s.push_str("<div class=\"legend\">");
        for (color, label) in &plot.legend {
            let _ = write!(
                s,
                "<span><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
                escape(color),
                escape(label)
            );
        }
        s.push_str("</div>");
    }
    s.push_str(&plot.svg);
    for n in &plot.notes {
        let _ = write!(s, "<p class=\"note\">{}</p>", escape(n));
    }
    s.push_str("</section>\n");
}

fn figure(s: &mut String, label: &str, value: &str) {
    let _ = write!(
        s,
        "<div><div class=\"figlabel\">{}</div><div class=\"fig\">{}</div></div>",
        escape(label),
        escape(value)
    );
}

fn fault_table(s: &mut String, windows: &[FaultWindow]) {
    s.push_str("<table><tr><th>#</th><th>kind</th><th>target</th><th>nodes hit</th><th>start (s)</th><th>end (s)</th><th>length (s)</th><th>ended by</th><th>note</th></tr>");
    for w in windows.iter().take(FAULT_ROWS_SHOWN_MAX) {
        let _ = write!(
            s,
            "<tr><td class=\"num\">{}</td><td><span class=\"sw\" style=\"background:{}\"></span>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td>{}</td><td>{}</td></tr>",
            w.id,
            plots::css(plots::kind_color(&w.kind)),
            escape(&w.kind),
            escape(&w.target),
            escape(&w.nodes_label()),
            w.start_ns as f64 / 1e9,
            w.end_ns as f64 / 1e9,
            (w.end_ns - w.start_ns) as f64 / 1e9,
            escape(&w.closed_by),
            escape(w.note.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</table>");
    if windows.len() > FAULT_ROWS_SHOWN_MAX {
        let _ = write!(
            s,
            "<p class=\"note\">The first {FAULT_ROWS_SHOWN_MAX} of {} fault windows are listed; report.json has all.</p>",
            windows.len()
        );
    }
}

/// The body of the checker's counterexample page, to embed it in this page: its headings one level down so
/// they sit under this page's section (its title names the file checked).
fn embedded_counterexample(page: &str) -> String {
    let start = page
        .find("<body")
        .and_then(|i| page[i..].find('>').map(|j| i + j + 1));
    let end = page.rfind("</body>");
    let body = match (start, end) {
        (Some(s), Some(e)) if s <= e => &page[s..e],
        _ => page,
    };
    body.replace("<h2", "<h4")
        .replace("</h2>", "</h4>")
        .replace("<h1", "<h3")
        .replace("</h1>", "</h3>")
}

/// Renders report.html.
pub fn render(report: &Report) -> String {
    let mut s = String::with_capacity(256 * 1024);
    let r = &report.run;
    let seed = r.seed.map_or("unknown".to_owned(), |x| x.to_string());
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · {} (seed {})</title><style>{STYLE}</style></head><body>\n",
        report.verdict.word(),
        escape(&r.plan),
        escape(&seed)
    );
    let failing = report
        .checks
        .iter()
        .filter(|c| {
            matches!(
                c.verdict,
                CheckVerdict::Fail | CheckVerdict::ToolError | CheckVerdict::Unknown
            )
        })
        .count();
    let _ = write!(
        s,
        "<div class=\"banner {}\"><h1>{}{}</h1><div class=\"what\">{} · seed {} · {} · {} node(s) · {} of {} checks not passing{}</div></div>\n<main>\n",
        verdict_class(report.verdict),
        report.verdict.word(),
        escape(&super::summary::violations_text(report)),
        escape(&r.plan),
        escape(&seed),
        opt(&r.target),
        opt(&r.nodes),
        failing,
        report.checks.len(),
        [
            super::summary::stopped_early_text(report),
            report
                .first_violation_s
                .map(|t| format!("first violation {t:.3} s after the fault phase began")),
        ]
        .into_iter()
        .flatten()
        .map(|t| format!(" · {}", escape(&t)))
        .collect::<String>()
    );

    // The run.
    s.push_str("<section id=\"run\"><h2>Run</h2><table>");
    let rows: [(&str, String); 8] = [
        ("plan", escape(&r.plan)),
        ("plan file", opt(&r.plan_file)),
        ("seed", escape(&seed)),
        ("commit", opt(&r.git_commit)),
        ("started", opt(&r.started_at)),
        (
            "target",
            format!("{} ({} node(s))", opt(&r.target), opt(&r.nodes)),
        ),
        (
            "duration",
            format!(
                "{:.1} s of history{}",
                report.history_seconds,
                report
                    .wall_seconds
                    .map(|w| format!("; {w:.1} s wall time"))
                    .unwrap_or_default()
            ),
        ),
        ("chaos version", opt(&r.tool_version)),
    ];
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    s.push_str("</table>");
    if let Some(replay) = &r.replay {
        let _ = write!(
            s,
            "<p>Replay this run: <code class=\"replay\">{}</code></p>",
            escape(replay)
        );
    }
    s.push_str("</section>\n");

    if !report.missing.is_empty() {
        s.push_str("<section class=\"warn\" id=\"missing\"><h2>Missing or unreadable files</h2><table><tr><th>file</th><th>problem</th><th>effect on this report</th></tr>");
        for m in &report.missing {
            let _ = write!(
                s,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(&m.file),
                escape(&m.problem),
                escape(&m.effect)
            );
        }
        s.push_str("</table></section>\n");
    }

    // Checks.
    s.push_str("<section id=\"checks\"><h2>Checks and expectations</h2><table><tr><th>verdict</th><th>check</th><th>evidence</th></tr>");
    for c in &report.checks {
        let _ = write!(
            s,
            "<tr><td><span class=\"v {}\">{}</span></td><td>{}<br><code class=\"note\">{}</code></td><td>{}</td></tr>",
            check_class(c.verdict),
            escape(c.verdict.word()),
            escape(&c.name),
            escape(&c.id),
            escape(&c.message)
        );
    }
    s.push_str("</table></section>\n");

    // Key figures.
    let o = &report.ops;
    let a = &report.availability;
    let l = &report.latency_ms;
    s.push_str("<section id=\"figures\"><h2>Key figures</h2><div class=\"grid\">");
    figure(
        &mut s,
        "ops ok / fail / info",
        &format!("{} / {} / {}", o.ok, o.fail, o.info),
    );
    figure(
        &mut s,
        "availability outside faults",
        &share_text(&a.outside_faults),
    );
    figure(
        &mut s,
        "availability inside faults",
        &share_text(&a.inside_faults),
    );
    figure(
        &mut s,
        "latency p50 / p99 / max",
        &l.all.map_or("n/a".into(), |x| {
            format!("{:.1} / {:.1} / {:.1} ms", x.p50_ms, x.p99_ms, x.max_ms)
        }),
    );
    figure(
        &mut s,
        "faults injected / planned",
        &match report.faults.on_events {
            0 => format!("{} / {}", report.faults.injected, report.faults.planned),
            n => format!(
                "{} / {} + {n} on cluster events",
                report.faults.injected, report.faults.planned
            ),
        },
    );
    figure(
        &mut s,
        "leader changes",
        &report
            .leadership
            .as_ref()
            .map_or("not measured".into(), |x| x.changes.to_string()),
    );
    figure(
        &mut s,
        "longest without a leader",
        &report
            .leadership
            .as_ref()
            .map_or("not measured".into(), |x| {
                x.longest_gap_ms()
                    .map_or("no loss".into(), |g| format!("{g:.0} ms"))
            }),
    );
    figure(
        &mut s,
        "acknowledged writes lost",
        &format!(
            "{} of {}",
            report.lost_writes.lost.len(),
            report.lost_writes.writes_checked
        ),
    );
    s.push_str("</div><table style=\"margin-top:.8em\">");
    let _ = write!(
        s,
        "<tr><th>ops</th><td>{} in all: {} ok, {} fail ({} of them cas mismatches), {} info (indeterminate)</td></tr>",
        o.total, o.ok, o.fail, o.cas_mismatch, o.info
    );
    let _ = write!(
        s,
        "<tr><th>availability</th><td>overall {}; outside fault windows {}; inside {}. An op counts as answered when it \
         completed ok or a cas found another value.</td></tr>",
        share_text(&a.overall),
        share_text(&a.outside_faults),
        share_text(&a.inside_faults)
    );
    let _ = write!(
        s,
        "<tr><th>latency</th><td>all: {}<br>outside fault windows: {}<br>inside fault windows: {}</td></tr>",
        latency_text(&l.all),
        latency_text(&l.healthy),
        latency_text(&l.faulted)
    );
    if let Some(fr) = &report.final_reads {
        let _ = write!(
            s,
            "<tr><th>final reads</th><td>{} of {} keys ({})</td></tr>",
            fr.ok,
            fr.attempted,
            escape(&fr.source)
        );
    }
    let lin = &report.linearizability;
    let _ = write!(
        s,
        "<tr><th>linearizability</th><td>{}: {} key(s) linearizable, {} not, {} unknown (from {})</td></tr>",
        escape(&lin.verdict),
        lin.keys_linearizable,
        lin.keys_not_linearizable,
        lin.keys_unknown,
        escape(&lin.source)
    );
    if !report.clock_offsets_max_ms.is_empty() {
        let offsets: Vec<String> = report
            .clock_offsets_max_ms
            .iter()
            .map(|(n, ms)| format!("n{n} {ms:+.0} ms"))
            .collect();
        let _ = write!(
            s,
            "<tr><th>largest clock offsets</th><td>{}</td></tr>",
            escape(&offsets.join(", "))
        );
    }
    s.push_str("</table></section>\n");

    // Plots.
    if let Some(data) = &report.data {
        let end_ns = data.history.time_ns_max;
        let windows = &report.faults.windows;
        let phases = plots::phases(data.events.as_deref(), end_ns);
        plot_section(
            &mut s,
            "latency",
            &plots::latency_plot(&data.history.ops, windows, &phases, end_ns),
        );
        plot_section(
            &mut s,
            "throughput",
            &plots::throughput_plot(&data.history.ops, windows, end_ns),
        );
        match data.status.as_deref() {
            Some(status) if !status.is_empty() => {
                plot_section(&mut s, "roles", &plots::roles_plot(status, windows, end_ns));
                let clock_faults = windows.iter().any(|w| w.kind.starts_with("clock"));
                let offsets = status.iter().any(|x| x.clock_offset_ms.is_some_and(|o| o != 0.0));
                if clock_faults || offsets {
                    if status.iter().any(|x| x.clock_offset_ms.is_some()) {
                        plot_section(&mut s, "clocks", &plots::clock_plot(status, windows, end_ns));
                    } else {
                        s.push_str("<section id=\"clocks\"><h2>Each node's clock offset</h2><p class=\"note\">Clock faults ran, but status.jsonl has no clock offsets to draw.</p></section>\n");
                    }
                }
            }
            _ => s.push_str(
                "<section id=\"roles\"><h2>Each node's role and term over time</h2><p class=\"note\">Not drawn: \
                 status.jsonl is missing or empty, so the nodes' roles, terms and clock offsets are not known.</p></section>\n",
            ),
        }
    } else {
        s.push_str("<section><p class=\"note\">This report was read back from report.json; run <code>chaos report RUN_DIR</code> on the run folder to draw its plots.</p></section>\n");
    }

    // Faults.
    s.push_str("<section id=\"faults\"><h2>Faults</h2>");
    if report.faults.windows.is_empty() {
        s.push_str("<p class=\"note\">No fault was injected.</p>");
    } else {
        fault_table(&mut s, &report.faults.windows);
    }
    for f in &report.faults.failed {
        let _ = write!(
            s,
            "<p><span class=\"v v-tool-error\">TOOL ERROR</span> fault {}{} could not be injected: {}</p>",
            escape(&f.kind),
            f.id.map(|i| format!(" #{i}")).unwrap_or_default(),
            escape(&f.error)
        );
    }
    if !report.faults.late.is_empty() {
        let steps: Vec<String> = report
            .faults
            .late
            .iter()
            .map(|l| {
                format!(
                    "#{} {} {} {:.1} s late",
                    l.id,
                    escape(&l.kind),
                    if l.edge == "start" {
                        "started"
                    } else {
                        "ended"
                    },
                    l.late_ms as f64 / 1000.0
                )
            })
            .collect();
        let _ = write!(
            s,
            "<p class=\"note\">Later than planned (a step waits for the one before it, and a membership change \
             can take seconds); the windows above are the real ones: {}.</p>",
            steps.join("; ")
        );
    }
    let _ = writeln!(
        s,
        "<p class=\"note\">Windows from {}. Shaded in every plot, in the colour of their kind.</p></section>",
        match report.faults.source {
            super::figures::WindowSource::Events => "events.jsonl",
            super::figures::WindowSource::HistoryNotes => "the history's nemesis notes",
        }
    );

    // Counterexample.
    if lin.verdict == "not-linearizable" {
        s.push_str("<section id=\"counterexample\"><h2>Counterexample: why the history is not linearizable</h2>");
        match &report.counterexample_html {
            Some(page) if page.len() <= COUNTEREXAMPLE_EMBED_BYTES_MAX => {
                s.push_str(
                    "<p class=\"note\">The checker's counterexample, as in counterexample.html next to this page.</p>",
                );
                s.push_str(&embedded_counterexample(page));
            }
            Some(page) => {
                let _ = write!(
                    s,
                    "<p>The counterexamples of {} key(s) take {} KB: they are in \
                     <a href=\"counterexample.html\">counterexample.html</a> rather than on this page.</p><ul>",
                    lin.keys_not_linearizable,
                    page.len() / 1024
                );
                for k in lin.keys.iter().filter(|k| k.verdict == "not-linearizable").take(20) {
                    let _ = write!(
                        s,
                        "<li>key <code>{}</code>: could not place {}</li>",
                        escape(&k.key.to_string()),
                        escape(k.failed_op.as_deref().unwrap_or("(see counterexample.html)"))
                    );
                }
                s.push_str("</ul>");
            }
            None => s.push_str(
                "<p class=\"note\">check.json says a key is not linearizable, but the counterexample could not be \
                 redrawn from the history; see check.json.</p>",
            ),
        }
        s.push_str("</section>\n");
    }

    // Plan and files.
    if let Some(data) = &report.data {
        let plan = serde_json::to_string_pretty(&data.manifest.plan).unwrap_or_default();
        let _ = writeln!(
            s,
            "<section id=\"plan\"><h2>Plan</h2><details><summary>The resolved plan (from manifest.json)</summary><pre>{}</pre></details></section>",
            escape(&plan)
        );
    }
    s.push_str("<section id=\"files\"><h2>Files</h2><p>");
    for f in [
        "report.json",
        "junit.xml",
        "manifest.json",
        "history.jsonl",
        "events.jsonl",
        "status.jsonl",
        "check.json",
        "outcome.json",
    ] {
        let missing = report
            .missing
            .iter()
            .any(|m| m.file == f && m.problem == "missing");
        if !missing {
            let _ = write!(s, "<a href=\"{f}\"><code>{f}</code></a> · ");
        }
    }
    if report.counterexample_html.is_some() {
        s.push_str("<a href=\"counterexample.html\"><code>counterexample.html</code></a> · ");
    }
    s.push_str("<a href=\"nodes/\"><code>nodes/</code></a> (node logs and data) · <a href=\"../index.html\">all runs</a></p></section>\n");
    s.push_str("</main></body></html>\n");
    s
}
