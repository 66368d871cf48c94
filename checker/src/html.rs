//! A self-contained HTML page for a report: one timeline per counterexample (ops as bars on a time axis, one row
//! per process, the op that could not be placed in red), the window's ops as a table, and the linearizable prefix.
//! Inline CSS and SVG only, so the page can be attached to a bug report or opened from a CI artifact as is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::check::CheckReport;
use crate::counterexample::{time_span, Counterexample, WindowOp, WindowRole};
use crate::prepare::{FaultWindow, Outcome};

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}\
.verdict-bad{color:#b00020}.verdict-ok{color:#1b7f3b}.verdict-unknown{color:#a66b00}\
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
tr.failed td{background:#fde2e4;font-weight:600}code{font-family:ui-monospace,monospace}\
.note{color:#555;font-size:.9em}svg{background:#fafafa;border:1px solid #ddd}";

/// Renders a report as a complete HTML page.
pub fn render_html(report: &CheckReport) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}: {}</title><style>{STYLE}</style></head><body>\n",
        escape(&report.source),
        report.verdict.as_str()
    );
    let class = match report.verdict {
        crate::check::Verdict::Linearizable => "verdict-ok",
        crate::check::Verdict::NotLinearizable => "verdict-bad",
        crate::check::Verdict::Unknown | crate::check::Verdict::Empty => "verdict-unknown",
    };
    let _ = write!(
        s,
        "<h1><code>{}</code>: <span class=\"{class}\">{}</span></h1>\n<p>Model <code>{}</code>; {} ops on {} key(s); \
         {} linearizable, {} not linearizable, {} unknown.</p>\n",
        escape(&report.source),
        report.verdict.as_str(),
        report.model,
        report.stats.ops,
        report.stats.keys,
        report.keys_linearizable,
        report.keys_not_linearizable,
        report.keys_unknown
    );
    for k in report.keys.iter().filter(|k| k.unknown_reason.is_some()) {
        let key = k
            .key
            .as_ref()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "(the register)".into());
        let reason = k.unknown_reason.map(|r| r.as_str()).unwrap_or("");
        let _ = writeln!(
            s,
            "<p class=\"verdict-unknown\">Key <code>{}</code>: unknown ({reason}).</p>",
            escape(&key)
        );
    }
    for c in report.counterexamples() {
        render_counterexample(&mut s, c, &report.faults, report.stats.time_ns_max);
    }
    s.push_str("</body></html>\n");
    s
}

fn render_counterexample(s: &mut String, c: &Counterexample, faults: &[FaultWindow], end_ns: u64) {
    let key = c
        .key
        .as_ref()
        .map(|k| format!("key {k}"))
        .unwrap_or_else(|| "the register".into());
    let _ = writeln!(
        s,
        "<h2>{}: <span class=\"verdict-bad\">not linearizable</span></h2>",
        escape(&key)
    );
    let _ = writeln!(
        s,
        "<p>Could not place <b>{}</b>.</p>",
        escape(&c.failed_op.summary())
    );
    let start = match &c.window_start_state {
        None => "from any state".to_owned(),
        Some(st) => format!("from the initial state {st}"),
    };
    let _ = writeln!(
        s,
        "<p>{} counterexample ({}): these {} ops alone cannot be linearized{}. Each keeps its own interval, so \
         their real-time order is the history's.{}</p>",
        if c.shrunk_minimal { "Minimal" } else { "Shrunk" },
        escape(&start),
        c.shrunk.len(),
        if c.shrunk_minimal {
            "; without any one of them the rest can"
        } else {
            " (the shrink budget ran out: perhaps not minimal)"
        },
        if faults.is_empty() {
            ""
        } else {
            " Shaded: the faults of the run in force at the time."
        }
    );
    render_timeline(s, &c.shrunk, faults, end_ns);
    let _ = writeln!(
        s,
        "<p>The smallest window that cannot be linearized ({}) has {} ops:</p>",
        escape(&start),
        c.window.len()
    );
    render_timeline(s, &c.window, faults, end_ns);
    s.push_str("<table><tr><th></th><th>process</th><th>op</th><th>outcome</th><th>lines</th><th>time</th><th>role</th></tr>\n");
    for w in &c.window {
        let role = match w.role {
            WindowRole::Required => "must take effect in the window",
            WindowRole::MayNeverHappen => "indeterminate: may never have happened",
            WindowRole::MayPrecede => "may have taken effect before the window",
            WindowRole::MayFollow => "may take effect after the window",
        };
        let _ = writeln!(
            s,
            "<tr{}><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if w.failed { " class=\"failed\"" } else { "" },
            if w.failed { "&#9888;" } else { "" },
            w.record.process,
            escape(&w.record.op),
            outcome_text(w.record.outcome),
            escape(&w.record.lines()),
            escape(&time_span(&w.record)),
            role
        );
    }
    s.push_str("</table>\n");
    let shown = c.prefix_tail.len();
    let _ = writeln!(
        s,
        "<p>Longest linearizable prefix found: {} ops{}; state after it: <code>{}</code>.</p>",
        c.prefix_len,
        if shown < c.prefix_len {
            format!(" (last {shown} shown)")
        } else {
            String::new()
        },
        escape(&c.prefix_state)
    );
    if shown > 0 {
        let _ = writeln!(s, "<ol start=\"{}\">", c.prefix_len - shown + 1);
        for p in &c.prefix_tail {
            let skipped = if p.skipped {
                " <span class=\"note\">(left out: never happened)</span>"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "<li><code>{}</code>{skipped}</li>",
                escape(&p.record.summary())
            );
        }
        s.push_str("</ol>\n");
    }
}

fn outcome_text(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Info => "info",
        Outcome::Mismatch => "fail (mismatch)",
    }
}

/// Fault windows drawn per timeline at most; the report lists them all.
const FAULTS_DRAWN_MAX: usize = 50;

/// Ops as bars on a time axis, one lane per process, with the fault windows that overlap it shaded behind.
fn render_timeline(s: &mut String, ops: &[WindowOp], faults: &[FaultWindow], end_ns: u64) {
    const WIDTH: f64 = 960.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 30.0;
    const ROW: f64 = 34.0;
    const TOP: f64 = 28.0;
    let mut rows: BTreeMap<u64, usize> = BTreeMap::new();
    for w in ops {
        rows.insert(w.record.process, 0);
    }
    for (i, v) in rows.values_mut().enumerate() {
        *v = i;
    }
    let definite_end =
        |w: &crate::counterexample::WindowOp| match (w.record.outcome, w.record.complete_time_ns) {
            (Outcome::Ok | Outcome::Mismatch, Some(t)) => Some(t),
            _ => None,
        };
    let t0 = ops
        .iter()
        .map(|w| w.record.invoke_time_ns)
        .min()
        .unwrap_or(0);
    let t1 = ops
        .iter()
        .map(|w| {
            definite_end(w)
                .unwrap_or(w.record.invoke_time_ns)
                .max(w.record.invoke_time_ns)
        })
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let span = (t1 - t0) as f64;
    let plot = WIDTH - LEFT - RIGHT;
    let x = |t: u64| LEFT + (t.saturating_sub(t0)) as f64 / span * plot;
    let height = TOP + ROW * rows.len() as f64 + 14.0;
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-size=\"11\" font-family=\"ui-monospace,monospace\">"
    );
    // Tick labels in the unit that suits the window's span.
    let (unit, per_ns) = match t1 - t0 {
        d if d < 1_000_000 => ("µs", 1e3),
        d if d < 1_000_000_000 => ("ms", 1e6),
        _ => ("s", 1e9),
    };
    for i in 0..=4 {
        let t = t0 + ((t1 - t0) as f64 * f64::from(i) / 4.0) as u64;
        let xx = x(t);
        let _ = writeln!(
            s,
            "<line x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{height:.1}\" stroke=\"#e4e4e4\"/><text x=\"{xx:.1}\" y=\"14\" text-anchor=\"middle\" fill=\"#777\">+{:.2} {unit}</text>",
            TOP - 6.0,
            (t - t0) as f64 / per_ns
        );
    }
    // Faults first, so that the ops are drawn over them.
    let overlapping = faults
        .iter()
        .filter(|f| f.start_ns <= t1 && f.end_ns.unwrap_or(end_ns.max(t1)) >= t0)
        .take(FAULTS_DRAWN_MAX);
    for (i, f) in overlapping.enumerate() {
        let end = f.end_ns.unwrap_or(end_ns.max(t1));
        let xa = x(f.start_ns.max(t0));
        let xb = if end > t1 { WIDTH - 8.0 } else { x(end) };
        let band = 12.0 * (i % 2) as f64;
        let title = format!(
            "{} from {:.6} s to {} (line {})",
            f.kind,
            f.start_ns as f64 / 1e9,
            f.end_ns
                .map(|e| format!("{:.6} s", e as f64 / 1e9))
                .unwrap_or_else(|| "the end".into()),
            f.line
        );
        let _ = writeln!(
            s,
            "<g class=\"fault\"><title>{}</title><rect x=\"{xa:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f3d9a4\" fill-opacity=\"0.45\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#8a5a00\">{}</text></g>",
            escape(&title),
            TOP - 4.0,
            (xb - xa).max(2.0),
            ROW * rows.len() as f64 + 4.0,
            xa + 3.0,
            TOP + ROW * rows.len() as f64 + 8.0 - band,
            escape(&f.kind)
        );
    }
    for (p, row) in &rows {
        let y = TOP + ROW * *row as f64;
        let _ = writeln!(
            s,
            "<text x=\"6\" y=\"{:.1}\" fill=\"#333\">p{p}</text>",
            y + ROW / 2.0 + 4.0
        );
    }
    for w in ops {
        let row = rows[&w.record.process];
        let y = TOP + ROW * row as f64 + 5.0;
        let xa = x(w.record.invoke_time_ns);
        let (xb, open_end) = match definite_end(w) {
            Some(t) => (x(t.max(w.record.invoke_time_ns)), false),
            None => (WIDTH - 8.0, true),
        };
        let width = (xb - xa).max(3.0);
        let (fill, stroke) = if w.failed {
            ("#f8c8cc", "#b00020")
        } else if w.role == WindowRole::Required {
            ("#cfe0f7", "#2f6db5")
        } else {
            ("#eeeeee", "#888888")
        };
        let dash = if open_end || w.role != WindowRole::Required {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let stroke_width = if w.failed { 2.5 } else { 1.2 };
        let title = format!("{} - {}", w.record.summary(), time_span(&w.record));
        let _ = writeln!(
            s,
            "<g><title>{}</title><rect x=\"{xa:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{stroke_width}\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#111\">{}</text></g>",
            escape(&title),
            ROW - 10.0,
            xa + 4.0,
            y + ROW / 2.0,
            escape(&w.record.op)
        );
    }
    s.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check_jsonl, CheckOptions};

    #[test]
    fn the_shrunk_ops_are_drawn_with_the_faults_of_the_run() {
        let lines = [
            r#"{"schema_version":1}"#,
            r#"{"index":0,"time":1000,"process":0,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":1,"time":2000,"process":0,"type":"ok","f":"write","value":1}"#,
            r#"{"index":2,"time":2500,"process":"nemesis","type":"invoke","f":"start-partition","value":{"id":7,"kind":"partition"}}"#,
            r#"{"index":3,"time":3000,"process":1,"type":"invoke","f":"write","value":2}"#,
            r#"{"index":4,"time":4000,"process":1,"type":"ok","f":"write","value":2}"#,
            r#"{"index":5,"time":5000,"process":2,"type":"invoke","f":"read"}"#,
            r#"{"index":6,"time":6000,"process":2,"type":"ok","f":"read","value":1}"#,
            r#"{"index":7,"time":6500,"process":"nemesis","type":"ok","f":"end-partition","value":{"id":7}}"#,
            r#"{"index":8,"time":7000,"process":"nemesis","type":"invoke","f":"start-kill","value":{"id":8}}"#,
            r#"{"index":9,"time":8000,"process":"nemesis","type":"info","f":"heal","value":{}}"#,
        ];
        let report = check_jsonl(
            lines.join("\n").as_bytes(),
            "h.jsonl",
            &CheckOptions::default(),
        )
        .unwrap();
        assert_eq!(report.faults.len(), 2);
        assert_eq!(
            (
                report.faults[0].kind.as_str(),
                report.faults[0].start_ns,
                report.faults[0].end_ns
            ),
            ("partition", 2500, Some(6500))
        );
        assert_eq!(
            report.faults[1].end_ns,
            Some(8000),
            "a heal ends every fault"
        );
        let html = render_html(&report);
        assert!(html.contains("Minimal counterexample"), "{html}");
        // Two timelines (shrunk ops, window), each shading the partition; the kill starts after the ops.
        assert_eq!(html.matches("<svg").count(), 2);
        assert_eq!(html.matches("<g class=\"fault\">").count(), 2, "{html}");
        assert!(html.contains(">partition</text>"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
