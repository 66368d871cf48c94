//! The terminal summary: the verdict first, then the key figures, each check and expectation with its own
//! verdict, and where the page is.

use std::fmt::Write as _;
use std::path::Path;

use super::figures::{LatencyStats, Share};
use super::schema::Report;
use super::verdict::CheckVerdict;

/// `97.3% (1402/1441)`, or `n/a (no ops)`.
pub fn share_text(s: &Share) -> String {
    match s.share {
        Some(x) => format!("{:.1}% ({}/{})", x * 100.0, s.answered, s.total),
        None => "n/a (no ops)".into(),
    }
}

/// `p50 2.1 ms, p99 40.0 ms, max 1001.2 ms (1,402 ops)`.
pub fn latency_text(l: &Option<LatencyStats>) -> String {
    match l {
        Some(l) => format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} ops)",
            l.p50_ms, l.p99_ms, l.max_ms, l.count
        ),
        None => "n/a (no definite answers)".into(),
    }
}

/// ` [not linearizable, node crashed]`, or nothing without a violation.
pub fn violations_text(report: &Report) -> String {
    if report.violations.is_empty() {
        return String::new();
    }
    let labels: Vec<&str> = report.violations.iter().map(|v| v.label()).collect();
    format!(" [{}]", labels.join(", "))
}

/// `stopped early: node-crashed (n2 exited on its own ...) 3.2 s into the fault phase`.
pub fn stopped_early_text(report: &Report) -> Option<String> {
    report.stopped_early.as_ref().map(|e| {
        format!(
            "stopped early: {} ({}){}",
            e.label,
            e.reason,
            e.after_fault_phase_s
                .map(|t| format!(", {t:.1} s after the fault phase began"))
                .unwrap_or_default()
        )
    })
}

/// The summary, several lines, verdict first.
pub fn text(report: &Report, html: &Path) -> String {
    let mut s = String::new();
    let not_evaluated = report
        .checks
        .iter()
        .filter(|c| c.verdict == CheckVerdict::NotEvaluated)
        .count();
    let _ = writeln!(
        s,
        "{}{}: {} (seed {}){}",
        report.verdict.word(),
        violations_text(report),
        report.run.plan,
        report
            .run
            .seed
            .map_or("unknown".to_string(), |x| x.to_string()),
        if not_evaluated > 0 {
            format!("; {not_evaluated} expectation(s) not evaluated")
        } else {
            String::new()
        }
    );
    if let Some(e) = stopped_early_text(report) {
        let _ = writeln!(s, "  {e}");
    }
    if let Some(t) = report.first_violation_s {
        let _ = writeln!(s, "  first violation {t:.3} s after the fault phase began");
    }
    let o = &report.ops;
    let _ = writeln!(
        s,
        "  ops           {} ok, {} fail ({} cas mismatches), {} info; {} in all",
        o.ok, o.fail, o.cas_mismatch, o.info, o.total
    );
    let a = &report.availability;
    let _ = writeln!(
        s,
        "  availability  outside faults {}; inside faults {}",
        share_text(&a.outside_faults),
        share_text(&a.inside_faults)
    );
    let _ = writeln!(
        s,
        "  latency       {}",
        latency_text(&report.latency_ms.all)
    );
    let _ = writeln!(
        s,
        "  healthy       {}",
        latency_text(&report.latency_ms.healthy)
    );
    let f = &report.faults;
    let _ = writeln!(
        s,
        "  faults        {} injected of {} planned{}{}; {:.1} s under faults",
        f.injected,
        f.planned,
        if f.on_events == 0 {
            String::new()
        } else {
            format!(" (+{} started on cluster events)", f.on_events)
        },
        if f.failed.is_empty() {
            String::new()
        } else {
            format!(", {} FAILED to inject", f.failed.len())
        },
        f.covered_s
    );
    if let Some(worst) = f.late.iter().max_by_key(|l| l.late_ms) {
        let _ = writeln!(
            s,
            "  schedule      {} fault step(s) later than planned, at worst fault #{} ({}) {} {:.1} s late",
            f.late.len(),
            worst.id,
            worst.kind,
            if worst.edge == "start" { "started" } else { "ended" },
            worst.late_ms as f64 / 1000.0
        );
    }
    let leaders = match &report.leadership {
        Some(l) => format!(
            "{} leader change(s); longest without a leader {}",
            l.changes,
            l.longest_gap_ms()
                .map_or("none".into(), |g| format!("{g:.0} ms"))
        ),
        None => "not measured (status.jsonl missing)".into(),
    };
    let _ = writeln!(s, "  leaders       {leaders}");
    let _ = writeln!(
        s,
        "  history       {:.1} s{}",
        report.history_seconds,
        report
            .wall_seconds
            .map(|w| format!(" (run {w:.1} s wall time)"))
            .unwrap_or_default()
    );
    for c in &report.checks {
        let _ = writeln!(s, "  [{:>13}] {}: {}", c.verdict.word(), c.name, c.message);
    }
    for m in &report.missing {
        let _ = writeln!(s, "  note: {} {}: {}", m.file, m.problem, m.effect);
    }
    if let Some(r) = &report.run.replay {
        let _ = writeln!(s, "  replay: {r}");
    }
    let _ = write!(s, "  report: {}", html.display());
    s
}
