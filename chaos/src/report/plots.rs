//! The page's plots, drawn with plotters' SVG backend into strings that are inlined into report.html. Every
//! plot shares one time axis geometry (same width, label areas and margins), so they line up on the page.
//!
//! Long runs stay readable and small: at most [`OK_POINTS_MAX`] ok and [`BAD_POINTS_MAX`] fail/info points are
//! drawn (per time bucket: its slowest op and evenly spaced others), per-bucket p50/p99 lines are computed from
//! every op, and status series are merged where the value does not change. Each plot says what it left out.

use std::collections::BTreeMap;
use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::figures::{self, FaultWindow, ThroughputBucket};
use super::model::{Op, OpOutcome, RunEvent, StatusLine};

/// Ok ops drawn as points, at most.
pub const OK_POINTS_MAX: usize = 4000;
/// Failed and indeterminate ops drawn as points, at most.
pub const BAD_POINTS_MAX: usize = 1500;
/// Time buckets the point sampling and the quantile lines use, at most.
pub const BUCKETS_MAX: usize = 300;
/// Fault rows in the fault lane, at most (more kinds are merged into "other faults").
pub const FAULT_ROWS_MAX: usize = 8;

const WIDTH: u32 = 1320;
const Y_LABEL_AREA: u32 = 210;
const X_LABEL_AREA: u32 = 42;
const MARGIN_RIGHT: u32 = 24;
const MARGIN_TOP: u32 = 10;
/// Approximate width of one character of 12 px sans-serif, to decide whether a label fits inside a box.
const CHAR_PX: f64 = 6.8;

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A plot ready for the page.
#[derive(Clone, Debug, Default)]
pub struct Plot {
    /// The heading.
    pub title: String,
    /// The inline SVG (or empty when the plot could not be drawn).
    pub svg: String,
    /// Legend entries: CSS colour, label.
    pub legend: Vec<(String, String)>,
    /// Sentences under the plot: what it shows and what it left out.
    pub notes: Vec<String>,
}

/// Colour of ok ops.
pub const OK_COLOR: RGBColor = RGBColor(31, 119, 180);
/// Colour of failed ops.
pub const FAIL_COLOR: RGBColor = RGBColor(230, 120, 0);
/// Colour of indeterminate ops.
pub const INFO_COLOR: RGBColor = RGBColor(200, 30, 30);

/// The colour of a fault kind.
pub fn kind_color(kind: &str) -> RGBColor {
    match kind {
        "kill" => RGBColor(214, 39, 40),
        "terminate" => RGBColor(140, 30, 60),
        "pause" => RGBColor(240, 150, 0),
        "partition" => RGBColor(148, 103, 189),
        "packet" => RGBColor(31, 119, 180),
        k if k.starts_with("clock") => RGBColor(23, 160, 175),
        _ => RGBColor(110, 110, 110),
    }
}

/// CSS for a colour.
pub fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn node_color(i: usize) -> RGBColor {
    // Dark hues, apart from the role colours (green leader, orange candidate) drawn next to them.
    const PALETTE: [RGBColor; 7] = [
        RGBColor(31, 59, 115),
        RGBColor(160, 48, 122),
        RGBColor(23, 128, 126),
        RGBColor(107, 76, 42),
        RGBColor(122, 122, 0),
        RGBColor(90, 90, 90),
        RGBColor(200, 60, 20),
    ];
    PALETTE[i % PALETTE.len()]
}

fn role_color(role: Option<&str>, up: bool) -> (RGBColor, &'static str) {
    if !up {
        return (RGBColor(235, 235, 235), "no answer");
    }
    match role {
        Some("leader") => (RGBColor(34, 139, 34), "leader"),
        Some("follower") => (RGBColor(160, 190, 225), "follower"),
        Some("candidate") | Some("pre-candidate") => (RGBColor(245, 160, 40), "candidate"),
        Some("learner") => (RGBColor(200, 170, 230), "learner"),
        _ => (RGBColor(150, 150, 150), "unknown role"),
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The x range of every plot: the run from 0 to its end, at least a second.
pub fn time_range(end_ns: u64) -> Range<f64> {
    0.0..secs(end_ns).max(1.0) * 1.005
}

fn text_style(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

/// A bucket width from a fixed ladder: the smallest giving at most [`BUCKETS_MAX`] buckets.
pub fn bucket_ns(end_ns: u64) -> u64 {
    const LADDER_MS: [u64; 12] = [
        250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    ];
    for ms in LADDER_MS {
        let ns = ms * 1_000_000;
        if end_ns / ns < BUCKETS_MAX as u64 {
            return ns;
        }
    }
    end_ns / BUCKETS_MAX as u64 + 1
}

/// Picks at most `max` of `ops` (sorted by invoke time): all when they fit; else, per time bucket, its slowest op
/// and evenly spaced others. Deterministic.
pub fn sample<'a>(ops: &[&'a Op], max: usize, bucket: u64) -> Vec<&'a Op> {
    if ops.len() <= max {
        return ops.to_vec();
    }
    let mut by_bucket: BTreeMap<u64, Vec<&'a Op>> = BTreeMap::new();
    for op in ops {
        by_bucket.entry(op.invoke_ns / bucket).or_default().push(op);
    }
    let per = (max / by_bucket.len().max(1)).max(1);
    let mut out = Vec::with_capacity(max);
    for ops in by_bucket.values() {
        let slowest = ops
            .iter()
            .enumerate()
            .max_by_key(|(_, o)| o.latency_ns())
            .map_or(0, |(i, _)| i);
        out.push(ops[slowest]);
        if per > 1 {
            let stride = ops.len() as f64 / (per - 1) as f64;
            for k in 0..per - 1 {
                let i = (k as f64 * stride) as usize;
                if i != slowest && i < ops.len() {
                    out.push(ops[i]);
                }
            }
        }
    }
    out
}

/// The rows of the fault lane: one per fault label (kind and planned target), in order of first appearance.
pub fn fault_rows(windows: &[FaultWindow]) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    for w in windows {
        let label = w.label();
        if !rows.contains(&label) {
            rows.push(label);
        }
    }
    if rows.len() > FAULT_ROWS_MAX {
        rows.truncate(FAULT_ROWS_MAX - 1);
        rows.push("other faults".into());
    }
    rows
}

fn row_of(rows: &[String], w: &FaultWindow) -> usize {
    let label = w.label();
    rows.iter()
        .position(|r| *r == label)
        .unwrap_or(rows.len() - 1)
}

/// The phases of the run, from events.jsonl's phase markers (else the heal), as (name, start, end).
pub fn phases(events: Option<&[RunEvent]>, end_ns: u64) -> Vec<(String, u64, u64)> {
    let mut marks: Vec<(String, u64)> = Vec::new();
    for e in events.unwrap_or_default() {
        match e {
            RunEvent::Phase { time_ns, name } => marks.push((name.clone(), *time_ns)),
            RunEvent::Heal { time_ns } if !marks.iter().any(|(n, _)| n == "recovery") => {
                marks.push(("healed".into(), *time_ns))
            }
            _ => {}
        }
    }
    if marks.iter().any(|(n, _)| n == "recovery") {
        marks.retain(|(n, _)| n != "healed");
    }
    marks.sort_by_key(|m| m.1);
    let mut out = Vec::new();
    for (i, (name, start)) in marks.iter().enumerate() {
        if name == "stopped" {
            continue;
        }
        let end = marks.get(i + 1).map_or(end_ns, |m| m.1);
        out.push((name.clone(), *start, end.max(*start)));
    }
    out
}

fn seg(i: usize, n: usize) -> SegmentValue<i32> {
    if i >= n {
        SegmentValue::Last
    } else {
        SegmentValue::Exact(i as i32)
    }
}

fn centered(size: u32) -> TextStyle<'static> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    text_style(size).pos(Pos::new(HPos::Center, VPos::Center))
}

/// Whether `text` fits between two pixel columns.
fn fits(text: &str, x0: i32, x1: i32) -> bool {
    x1 - x0 >= (text.chars().count() as f64 * CHAR_PX) as i32 + 6
}

/// The fault lane: one row per fault label, a box per window with the nodes it hit, and a row of phases.
fn draw_lane<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    windows: &[FaultWindow],
    phases: &[(String, u64, u64)],
    x: Range<f64>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut rows = fault_rows(windows);
    let faults = rows.len();
    if !phases.is_empty() {
        rows.push("phases".into());
    }
    if rows.is_empty() {
        rows.push("no faults".into());
    }
    let n = rows.len();
    // Row 0 is drawn at the bottom: put the first row on top.
    let y_of = |row: usize| n - 1 - row;
    let names = rows.clone();
    let mut chart = ChartBuilder::on(area)
        .margin_right(MARGIN_RIGHT)
        .margin_top(MARGIN_TOP)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x.clone(), (0..n as i32 - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_labels(n)
        .y_label_style(text_style(12))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if (*i as usize) < n => names[n - 1 - *i as usize].clone(),
            _ => String::new(),
        })
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    let plot_area = chart.plotting_area();
    let min_w = (x.end - x.start) * 0.002;
    for w in windows {
        let row = y_of(row_of(&rows[..faults.max(1)], w));
        let (s, e) = (
            secs(w.start_ns),
            secs(w.end_ns).max(secs(w.start_ns) + min_w),
        );
        let color = kind_color(&w.kind);
        plot_area.draw(&Rectangle::new(
            [(s, seg(row, n)), (e, seg(row + 1, n))],
            color.mix(0.55).filled(),
        ))?;
    }
    for (i, (name, start, end)) in phases.iter().enumerate() {
        let row = y_of(n - 1);
        let shade = if i % 2 == 0 {
            RGBColor(200, 210, 225)
        } else {
            RGBColor(225, 232, 240)
        };
        plot_area.draw(&Rectangle::new(
            [(secs(*start), seg(row, n)), (secs(*end), seg(row + 1, n))],
            shade.filled(),
        ))?;
        let _ = name;
    }
    let _ = plot_area;
    // Labels inside the boxes, only where they fit.
    let width_px = |a: f64, b: f64| {
        let (x0, _) = chart.backend_coord(&(a, SegmentValue::CenterOf(0)));
        let (x1, _) = chart.backend_coord(&(b, SegmentValue::CenterOf(0)));
        (x0, x1)
    };
    let mut labels: Vec<(String, f64, usize)> = Vec::new();
    for w in windows {
        let row = y_of(row_of(&rows[..faults.max(1)], w));
        let (s, e) = (secs(w.start_ns), secs(w.end_ns));
        let (x0, x1) = width_px(s, e);
        let text = w.nodes_label();
        if fits(&text, x0, x1) {
            labels.push((text, (s + e) / 2.0, row));
        }
    }
    for (name, start, end) in phases {
        let (s, e) = (secs(*start), secs(*end));
        let (x0, x1) = width_px(s, e);
        if fits(name, x0, x1) {
            labels.push((name.clone(), (s + e) / 2.0, y_of(n - 1)));
        }
    }
    chart.draw_series(labels.into_iter().map(|(text, t, row)| {
        Text::new(text, (t, SegmentValue::CenterOf(row as i32)), centered(12))
    }))?;
    Ok(())
}

/// Shades every fault window in a chart's plotting area, in its kind's colour.
fn shade_windows<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    windows: &[FaultWindow],
    y: Range<f64>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart.draw_series(windows.iter().map(|w| {
        Rectangle::new(
            [(secs(w.start_ns), y.start), (secs(w.end_ns), y.end)],
            kind_color(&w.kind).mix(0.12).filled(),
        )
    }))?;
    Ok(())
}

fn fault_legend(windows: &[FaultWindow]) -> Vec<(String, String)> {
    let mut kinds: Vec<&str> = windows.iter().map(|w| w.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|k| (css(kind_color(k)), format!("{k} (fault window)")))
        .collect()
}

fn finish(svg: String, result: DrawResult, title: &str) -> (String, Option<String>) {
    match result {
        Ok(()) => (svg, None),
        Err(e) => (
            String::new(),
            Some(format!("{title}: the plot could not be drawn: {e}")),
        ),
    }
}

/// Every op's latency over time (ok, fail and info marked differently, log scale), with the fault lane above and
/// fault windows shaded, and per-bucket p50 and p99 lines over every definite answer.
pub fn latency_plot(
    ops: &[Op],
    windows: &[FaultWindow],
    phases: &[(String, u64, u64)],
    end_ns: u64,
) -> Plot {
    let title = "Latency of every op over time, with fault windows".to_owned();
    let x = time_range(end_ns);
    let bucket = bucket_ns(end_ns);
    let with_latency: Vec<&Op> = ops.iter().filter(|o| o.complete_ns.is_some()).collect();
    let ok: Vec<&Op> = with_latency
        .iter()
        .copied()
        .filter(|o| o.outcome == OpOutcome::Ok)
        .collect();
    let bad: Vec<&Op> = with_latency
        .iter()
        .copied()
        .filter(|o| o.outcome != OpOutcome::Ok)
        .collect();
    let ok_drawn = sample(&ok, OK_POINTS_MAX, bucket);
    let bad_drawn = sample(&bad, BAD_POINTS_MAX, bucket);
    let ms = |o: &Op| (o.latency_ns().unwrap_or(0) as f64 / 1e6).max(0.01);
    let y_max = with_latency.iter().map(|o| ms(o)).fold(1.0, f64::max) * 1.6;
    let y_min = with_latency
        .iter()
        .map(|o| ms(o))
        .fold(f64::INFINITY, f64::min)
        .min(y_max / 10.0)
        .max(0.01)
        * 0.7;
    // Per-bucket quantiles over every definite answer (not only the drawn points).
    let mut per_bucket: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.outcome.is_definite()) {
        if let Some(l) = o.latency_ns() {
            per_bucket.entry(o.invoke_ns / bucket).or_default().push(l);
        }
    }
    for v in per_bucket.values_mut() {
        v.sort_unstable();
    }
    // One line per run of consecutive buckets with answers: no line is drawn across a bucket without any.
    let quantile_lines = |q: f64| -> Vec<Vec<(f64, f64)>> {
        let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut previous: Option<u64> = None;
        for (b, v) in &per_bucket {
            let p = figures::percentile(v, q).unwrap_or(0) as f64 / 1e6;
            let point = (secs(b * bucket + bucket / 2), p.max(y_min));
            match runs.last_mut() {
                Some(run) if previous == Some(b - 1) => run.push(point),
                _ => runs.push(vec![point]),
            }
            previous = Some(*b);
        }
        runs
    };
    let p50 = quantile_lines(0.5);
    let p99 = quantile_lines(0.99);
    let lane_rows = fault_rows(windows).len() + usize::from(!phases.is_empty());
    let lane_h = 28 * lane_rows.max(1) as u32 + MARGIN_TOP + 6;
    let height = lane_h + 430;
    let mut svg = String::new();
    let result = (|| -> DrawResult {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (lane, main) = root.split_vertically(lane_h);
        draw_lane(&lane, windows, phases, x.clone())?;
        let mut chart = ChartBuilder::on(&main)
            .margin_right(MARGIN_RIGHT)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x.clone(), (y_min..y_max).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("time since the run started (s)")
            .y_desc("latency (ms, log scale)")
            .y_label_formatter(&|v| format_ms(*v))
            .axis_desc_style(text_style(13))
            .label_style(text_style(12))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(220, 220, 220))
            .draw()?;
        chart.draw_series(windows.iter().map(|w| {
            Rectangle::new(
                [(secs(w.start_ns), y_min), (secs(w.end_ns), y_max)],
                kind_color(&w.kind).mix(0.12).filled(),
            )
        }))?;
        chart.draw_series(
            ok_drawn
                .iter()
                .map(|o| Circle::new((secs(o.invoke_ns), ms(o)), 2, OK_COLOR.mix(0.45).filled())),
        )?;
        chart.draw_series(
            bad_drawn
                .iter()
                .filter(|o| matches!(o.outcome, OpOutcome::Fail | OpOutcome::Mismatch))
                .map(|o| Cross::new((secs(o.invoke_ns), ms(o)), 3, FAIL_COLOR.stroke_width(1))),
        )?;
        chart.draw_series(
            bad_drawn
                .iter()
                .filter(|o| o.outcome == OpOutcome::Info)
                .map(|o| TriangleMarker::new((secs(o.invoke_ns), ms(o)), 4, INFO_COLOR.filled())),
        )?;
        for run in p50 {
            chart.draw_series(LineSeries::new(run, BLACK.mix(0.7).stroke_width(1)))?;
        }
        for run in p99 {
            chart.draw_series(LineSeries::new(run, RGBColor(120, 0, 120).stroke_width(1)))?;
        }
        root.present()?;
        Ok(())
    })();
    let (svg, error) = finish(svg, result, &title);
    let pending = ops
        .iter()
        .filter(|o| o.outcome == OpOutcome::Pending)
        .count();
    let mut notes = vec![format!(
        "Each point is one op at its invocation time; its height is the time to its completion. \
         Lines: p50 and p99 of every definite answer per {} bucket.",
        human_ns(bucket)
    )];
    if ok_drawn.len() < ok.len() || bad_drawn.len() < bad.len() {
        notes.push(format!(
            "Sampled for readability: {} of {} ok ops and {} of {} failed/indeterminate ops are drawn \
             (per {} bucket: its slowest op and evenly spaced others); the quantile lines and every figure \
             on this page use all ops.",
            ok_drawn.len(),
            ok.len(),
            bad_drawn.len(),
            bad.len(),
            human_ns(bucket)
        ));
    }
    if pending > 0 {
        notes.push(format!(
            "{pending} op(s) never completed and have no latency to draw."
        ));
    }
    if windows.is_empty() {
        notes.push("No fault window in this run.".into());
    }
    notes.extend(error);
    let mut legend = vec![
        (css(OK_COLOR), "ok (dot)".to_owned()),
        (css(FAIL_COLOR), "fail (cross)".to_owned()),
        (css(INFO_COLOR), "info: indeterminate (triangle)".to_owned()),
        ("#4d4d4d".to_owned(), "p50 line".to_owned()),
        ("#780078".to_owned(), "p99 line".to_owned()),
    ];
    legend.extend(fault_legend(windows));
    Plot {
        title,
        svg,
        legend,
        notes,
    }
}

/// An axis label for ms: `0.5`, `10`, `1000`.
fn format_ms(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// `250 ms`, `1 s`, `2 min`.
pub fn human_ns(ns: u64) -> String {
    if ns < 1_000_000_000 {
        format!("{} ms", ns / 1_000_000)
    } else if ns < 60_000_000_000 || ns % 60_000_000_000 != 0 {
        format!("{} s", ns as f64 / 1e9)
    } else {
        format!("{} min", ns / 60_000_000_000)
    }
}

/// Completions per second over time (ok, fail, info), fault windows shaded.
pub fn throughput_plot(ops: &[Op], windows: &[FaultWindow], end_ns: u64) -> Plot {
    let title = "Throughput: completions per second".to_owned();
    let bucket = bucket_ns(end_ns);
    let buckets: Vec<ThroughputBucket> = figures::throughput(ops, bucket, end_ns);
    let per_s = |n: u64| n as f64 / (bucket as f64 / 1e9);
    let y_max = buckets
        .iter()
        .map(|b| per_s(b.ok.max(b.fail).max(b.info)))
        .fold(1.0, f64::max)
        * 1.15;
    let x = time_range(end_ns);
    let mut svg = String::new();
    let result = (|| -> DrawResult {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 280)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin_right(MARGIN_RIGHT)
            .margin_top(MARGIN_TOP)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x.clone(), 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("time since the run started (s)")
            .y_desc("ops per second")
            .axis_desc_style(text_style(13))
            .label_style(text_style(12))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(220, 220, 220))
            .draw()?;
        shade_windows(&mut chart, windows, 0.0..y_max)?;
        let mid = |b: &ThroughputBucket| secs(b.start_ns + bucket / 2);
        for (color, pick) in [
            (
                OK_COLOR,
                (|b: &ThroughputBucket| b.ok) as fn(&ThroughputBucket) -> u64,
            ),
            (FAIL_COLOR, |b: &ThroughputBucket| b.fail),
            (INFO_COLOR, |b: &ThroughputBucket| b.info),
        ] {
            chart.draw_series(LineSeries::new(
                buckets.iter().map(|b| (mid(b), per_s(pick(b)))),
                color.stroke_width(2),
            ))?;
        }
        root.present()?;
        Ok(())
    })();
    let (svg, error) = finish(svg, result, &title);
    let mut notes = vec![format!(
        "Ops completed per second in {} buckets, by outcome (at completion time).",
        human_ns(bucket)
    )];
    notes.extend(error);
    let mut legend = vec![
        (css(OK_COLOR), "ok".to_owned()),
        (css(FAIL_COLOR), "fail".to_owned()),
        (css(INFO_COLOR), "info".to_owned()),
    ];
    legend.extend(fault_legend(windows));
    Plot {
        title,
        svg,
        legend,
        notes,
    }
}

/// A node's role over time as segments: (start, end, role colour, role name).
fn role_segments(lines: &[&StatusLine], end_ns: u64) -> Vec<(u64, u64, RGBColor, &'static str)> {
    let mut out: Vec<(u64, u64, RGBColor, &'static str)> = Vec::new();
    for (i, s) in lines.iter().enumerate() {
        let next = lines
            .get(i + 1)
            .map_or(end_ns.max(s.time_ns), |n| n.time_ns);
        let (color, name) = role_color(s.role.as_deref(), s.up);
        match out.last_mut() {
            Some(last) if last.3 == name => last.1 = next,
            _ => out.push((s.time_ns, next, color, name)),
        }
    }
    out
}

/// Each node's role over time (a band per node) and its term (a line per node), from status.jsonl.
pub fn roles_plot(status: &[StatusLine], windows: &[FaultWindow], end_ns: u64) -> Plot {
    let title = "Each node's role and term over time".to_owned();
    let mut by_node: BTreeMap<u64, Vec<&StatusLine>> = BTreeMap::new();
    for s in status {
        by_node.entry(s.node).or_default().push(s);
    }
    for v in by_node.values_mut() {
        v.sort_by_key(|s| s.time_ns);
    }
    let end_ns = end_ns.max(status.iter().map(|s| s.time_ns).max().unwrap_or(0));
    let x = time_range(end_ns);
    let nodes: Vec<u64> = by_node.keys().copied().collect();
    let n = nodes.len().max(1);
    let term_max = status.iter().filter_map(|s| s.term).max().unwrap_or(1);
    let term_min = status.iter().filter_map(|s| s.term).min().unwrap_or(0);
    let band_h = 30 * n as u32 + MARGIN_TOP + 8;
    let height = band_h + 250;
    let mut segments_drawn = 0usize;
    let mut svg = String::new();
    let result = (|| -> DrawResult {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (bands, terms) = root.split_vertically(band_h);
        let labels: Vec<String> = nodes.iter().map(|id| format!("n{id} role")).collect();
        let mut chart = ChartBuilder::on(&bands)
            .margin_right(MARGIN_RIGHT)
            .margin_top(MARGIN_TOP)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x.clone(), (0..n as i32 - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_labels(n)
            .y_label_style(text_style(12))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if (*i as usize) < n => {
                    labels[n - 1 - *i as usize].clone()
                }
                _ => String::new(),
            })
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        for (i, id) in nodes.iter().enumerate() {
            let row = n - 1 - i;
            let segs = role_segments(&by_node[id], end_ns);
            segments_drawn += segs.len();
            chart.draw_series(segs.iter().map(|&(s, e, color, _)| {
                Rectangle::new(
                    [(secs(s), seg(row, n)), (secs(e), seg(row + 1, n))],
                    color.filled(),
                )
            }))?;
        }
        let y_max = term_max as f64 + 0.5;
        let y_min = (term_min as f64 - 0.5).max(0.0);
        let mut chart = ChartBuilder::on(&terms)
            .margin_right(MARGIN_RIGHT)
            .margin_top(6)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x.clone(), y_min..y_max)?;
        chart
            .configure_mesh()
            .x_desc("time since the run started (s)")
            .y_desc("term")
            .axis_desc_style(text_style(13))
            .label_style(text_style(12))
            .y_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-9 {
                    format!("{}", v.round() as i64)
                } else {
                    String::new()
                }
            })
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(220, 220, 220))
            .draw()?;
        shade_windows(&mut chart, windows, y_min..y_max)?;
        for (i, id) in nodes.iter().enumerate() {
            // A step line, with a point only where the term changes; a small offset per node keeps equal
            // terms of different nodes apart.
            let offset = (i as f64 - (n as f64 - 1.0) / 2.0) * 0.06;
            let mut pts: Vec<(f64, f64)> = Vec::new();
            let mut last: Option<u64> = None;
            for s in &by_node[id] {
                let Some(t) = s.term else { continue };
                if last != Some(t) {
                    if let Some(l) = last {
                        pts.push((secs(s.time_ns), l as f64 + offset));
                    }
                    pts.push((secs(s.time_ns), t as f64 + offset));
                    last = Some(t);
                }
            }
            if let (Some(l), Some(s)) = (last, by_node[id].last()) {
                pts.push((secs(s.time_ns), l as f64 + offset));
            }
            chart.draw_series(LineSeries::new(pts, node_color(i).stroke_width(2)))?;
        }
        root.present()?;
        Ok(())
    })();
    let (svg, error) = finish(svg, result, &title);
    let mut legend: Vec<(String, String)> = [
        role_color(Some("leader"), true),
        role_color(Some("follower"), true),
        role_color(Some("candidate"), true),
        role_color(Some("learner"), true),
        role_color(None, true),
        role_color(None, false),
    ]
    .iter()
    .map(|&(c, name)| (css(c), name.to_owned()))
    .collect();
    legend.extend(
        nodes
            .iter()
            .enumerate()
            .map(|(i, id)| (css(node_color(i)), format!("n{id} term"))),
    );
    let mut notes = vec![format!(
        "From status.jsonl: {} polls of {} node(s), drawn as {segments_drawn} role segments; \
         a node that did not answer a poll is shown as \"no answer\".",
        status.len(),
        nodes.len()
    )];
    notes.extend(error);
    Plot {
        title,
        svg,
        legend,
        notes,
    }
}

/// Each node's clock offset over time (from status.jsonl), fault windows shaded.
pub fn clock_plot(status: &[StatusLine], windows: &[FaultWindow], end_ns: u64) -> Plot {
    let title = "Each node's clock offset".to_owned();
    let series = figures::status_series(status, |s| s.clock_offset_ms);
    let end_ns = end_ns.max(status.iter().map(|s| s.time_ns).max().unwrap_or(0));
    let x = time_range(end_ns);
    let (mut lo, mut hi) = series
        .values()
        .flatten()
        .fold((0.0f64, 0.0f64), |(lo, hi), &(_, v)| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.1).max(1.0);
    lo -= pad;
    hi += pad;
    let mut svg = String::new();
    let result = (|| -> DrawResult {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 300)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin_right(MARGIN_RIGHT)
            .margin_top(MARGIN_TOP)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x.clone(), lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("time since the run started (s)")
            .y_desc("clock offset (ms)")
            .axis_desc_style(text_style(13))
            .label_style(text_style(12))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(220, 220, 220))
            .draw()?;
        shade_windows(&mut chart, windows, lo..hi)?;
        let count = series.len();
        for (i, pts) in series.values().enumerate() {
            // A step line with a corner only where the offset changes; nodes with equal offsets overlap, so the
            // first is drawn widest and each next one narrower on top of it.
            let mut kept: Vec<(f64, f64)> = Vec::new();
            let mut last: Option<f64> = None;
            for &(t, v) in pts {
                if last != Some(v) {
                    if let Some(l) = last {
                        kept.push((secs(t), l));
                    }
                    kept.push((secs(t), v));
                    last = Some(v);
                }
            }
            if let (Some(l), Some(&(t, _))) = (last, pts.last()) {
                kept.push((secs(t), l));
            }
            let width = (2 + 2 * (count - 1 - i) as u32).min(9);
            chart.draw_series(LineSeries::new(kept, node_color(i).stroke_width(width)))?;
        }
        root.present()?;
        Ok(())
    })();
    let (svg, error) = finish(svg, result, &title);
    let legend = series
        .keys()
        .enumerate()
        .map(|(i, id)| (css(node_color(i)), format!("n{id}")))
        .collect();
    let mut notes = vec![
        "The offset of each node's wall clock from real time, as its clock shim reported it."
            .to_owned(),
    ];
    notes.extend(error);
    Plot {
        title,
        svg,
        legend,
        notes,
    }
}
