//! Pure computations over a run folder's data: fault windows, op counts, availability, latency percentiles,
//! throughput, leadership (changes and leaderless gaps), clock offsets and lost writes. No IO, no clock.

use std::collections::BTreeMap;

use checker::history::Value;
use serde::{Deserialize, Serialize};

use super::model::{Note, Op, OpFunction, OpOutcome, RunEvent, StatusLine};

const NS_PER_MS: f64 = 1e6;
const NS_PER_S: f64 = 1e9;

/// A fault as it happened: from its start to its end (or the heal, or the end of the history).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The fault's id.
    pub id: u64,
    /// Its kind (kill, pause, partition, clock-bump, ...).
    pub kind: String,
    /// The target as planned (leader, n1, majority, ...).
    pub target: String,
    /// The nodes it hit.
    pub nodes: Vec<u64>,
    /// Start, ns since the run's start.
    pub start_ns: u64,
    /// End, ns since the run's start.
    pub end_ns: u64,
    /// How the window was closed: "end" (its end event), "heal", or "history-end" (never closed).
    pub closed_by: String,
    /// A free-form note of the nemesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl FaultWindow {
    /// `kill leader` / `partition halves`: the label of its kind and target.
    pub fn label(&self) -> String {
        if self.target.is_empty() {
            self.kind.clone()
        } else {
            format!("{} {}", self.kind, self.target)
        }
    }

    /// `n1,n3`.
    pub fn nodes_label(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("n{n}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Where fault windows were read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowSource {
    /// `events.jsonl`.
    Events,
    /// The history's nemesis notes.
    HistoryNotes,
}

fn close_windows(
    starts: BTreeMap<u64, FaultWindow>,
    ends: &BTreeMap<u64, u64>,
    heal_ns: Option<u64>,
    end_ns: u64,
) -> Vec<FaultWindow> {
    let mut out: Vec<FaultWindow> = starts
        .into_values()
        .map(|mut w| {
            if let Some(&e) = ends.get(&w.id) {
                w.end_ns = e.max(w.start_ns);
                w.closed_by = "end".into();
            } else if let Some(h) = heal_ns.filter(|&h| h >= w.start_ns) {
                w.end_ns = h;
                w.closed_by = "heal".into();
            } else {
                w.end_ns = end_ns.max(w.start_ns);
                w.closed_by = "history-end".into();
            }
            w
        })
        .collect();
    out.sort_by_key(|w| (w.start_ns, w.id));
    out
}

/// Fault windows from `events.jsonl`.
pub fn windows_from_events(events: &[RunEvent], end_ns: u64) -> Vec<FaultWindow> {
    let mut starts = BTreeMap::new();
    let mut ends = BTreeMap::new();
    let mut heal_ns = None;
    for e in events {
        match e {
            RunEvent::FaultStart {
                time_ns,
                id,
                kind,
                target,
                nodes,
                note,
                ..
            } => {
                starts.insert(
                    *id,
                    FaultWindow {
                        id: *id,
                        kind: kind.clone(),
                        target: target.clone(),
                        nodes: nodes.clone(),
                        start_ns: *time_ns,
                        end_ns: *time_ns,
                        closed_by: String::new(),
                        note: note.clone(),
                    },
                );
            }
            RunEvent::FaultEnd { time_ns, id, .. } => {
                ends.insert(*id, *time_ns);
            }
            RunEvent::Heal { time_ns } => heal_ns = Some(heal_ns.unwrap_or(*time_ns)),
            _ => {}
        }
    }
    close_windows(starts, &ends, heal_ns, end_ns)
}

/// How late a step must come before the report names it: scheduling jitter stays below it.
pub const LATE_NOTED_MS: u64 = 250;

/// The fault starts and ends that came at least [`LATE_NOTED_MS`] later than the plan said (a step waits for
/// the one before it: a membership change that takes seconds holds back every fault due meanwhile, and a
/// kill planned for 1 s then lasts longer).
pub fn late_steps(events: &[RunEvent]) -> Vec<LateStep> {
    let mut kinds = BTreeMap::new();
    let mut late = Vec::new();
    for e in events {
        let (id, edge, late_ms) = match e {
            RunEvent::FaultStart {
                id, kind, late_ms, ..
            } => {
                kinds.insert(*id, kind.clone());
                (*id, "start", *late_ms)
            }
            RunEvent::FaultEnd { id, late_ms, .. } => (*id, "end", *late_ms),
            _ => continue,
        };
        if let Some(ms) = late_ms.filter(|&ms| ms >= LATE_NOTED_MS) {
            late.push(LateStep {
                id,
                kind: kinds.get(&id).cloned().unwrap_or_default(),
                edge: edge.into(),
                late_ms: ms,
            });
        }
    }
    late
}

/// A fault start or end that came later than planned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateStep {
    /// The fault's id.
    pub id: u64,
    /// Its kind.
    pub kind: String,
    /// `start` or `end`.
    pub edge: String,
    /// How much later than planned, ms.
    pub late_ms: u64,
}

/// Fault windows from the history's nemesis notes (`start-<kind>`, `end-<kind>`, `heal`), whose values carry the
/// same objects as `events.jsonl`.
pub fn windows_from_notes(notes: &[Note], end_ns: u64) -> Vec<FaultWindow> {
    let mut starts = BTreeMap::new();
    let mut ends = BTreeMap::new();
    let mut heal_ns = None;
    let mut next_id = 1_000_000u64;
    for n in notes.iter().filter(|n| n.process == "nemesis") {
        let id = n
            .value
            .get("id")
            .and_then(|v| v.as_u64())
            .unwrap_or_else(|| {
                next_id += 1;
                next_id
            });
        if let Some(kind) = n.f.strip_prefix("start-") {
            let text = |name: &str| {
                n.value
                    .get(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            starts.insert(
                id,
                FaultWindow {
                    id,
                    kind: kind.to_owned(),
                    target: text("target").unwrap_or_default(),
                    nodes: n
                        .value
                        .get("nodes")
                        .and_then(|v| v.as_array())
                        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                        .unwrap_or_default(),
                    start_ns: n.time_ns,
                    end_ns: n.time_ns,
                    closed_by: String::new(),
                    note: text("note"),
                },
            );
        } else if n.f.starts_with("end-") {
            ends.insert(id, n.time_ns);
        } else if n.f == "heal" {
            heal_ns = Some(heal_ns.unwrap_or(n.time_ns));
        }
    }
    close_windows(starts, &ends, heal_ns, end_ns)
}

/// The union of the fault windows as sorted, disjoint intervals, for "is time t inside a fault?".
#[derive(Clone, Debug, Default)]
pub struct FaultCover {
    intervals: Vec<(u64, u64)>,
}

impl FaultCover {
    /// The union of the windows.
    pub fn new(windows: &[FaultWindow]) -> FaultCover {
        let mut spans: Vec<(u64, u64)> = windows.iter().map(|w| (w.start_ns, w.end_ns)).collect();
        spans.sort_unstable();
        let mut intervals: Vec<(u64, u64)> = Vec::new();
        for (s, e) in spans {
            match intervals.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => intervals.push((s, e)),
            }
        }
        FaultCover { intervals }
    }

    /// True when `t` lies in some window `[start, end)`.
    pub fn contains(&self, t: u64) -> bool {
        let i = self.intervals.partition_point(|&(s, _)| s <= t);
        i > 0 && t < self.intervals[i - 1].1
    }

    /// Total time covered, ns.
    pub fn covered_ns(&self) -> u64 {
        self.intervals.iter().map(|(s, e)| e - s).sum()
    }
}

/// Counts of client ops by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// All client ops (invocations).
    pub total: u64,
    /// Completed ok.
    pub ok: u64,
    /// Definitely failed (cas mismatches included).
    pub fail: u64,
    /// Of the failed: compare-and-sets that found another value.
    pub cas_mismatch: u64,
    /// Indeterminate (info, or never completed).
    pub info: u64,
}

/// Counts ops by outcome.
pub fn op_counts<'a>(ops: impl IntoIterator<Item = &'a Op>) -> OpCounts {
    let mut c = OpCounts::default();
    for op in ops {
        c.total += 1;
        match op.outcome {
            OpOutcome::Ok => c.ok += 1,
            OpOutcome::Fail => c.fail += 1,
            OpOutcome::Mismatch => {
                c.fail += 1;
                c.cas_mismatch += 1;
            }
            OpOutcome::Info | OpOutcome::Pending => c.info += 1,
        }
    }
    c
}

/// A share of answered ops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// Ops answered (ok, or a cas that found another value).
    pub answered: u64,
    /// All ops.
    pub total: u64,
    /// answered / total; `None` without ops.
    pub share: Option<f64>,
}

impl Share {
    fn of<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Share {
        let (mut answered, mut total) = (0, 0);
        for op in ops {
            total += 1;
            if op.outcome.is_answered() {
                answered += 1;
            }
        }
        Share {
            answered,
            total,
            share: (total > 0).then(|| answered as f64 / total as f64),
        }
    }
}

/// Availability: the share of ops answered, overall and by whether the op was invoked inside a fault window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    /// All ops.
    pub overall: Share,
    /// Ops invoked outside every fault window.
    pub outside_faults: Share,
    /// Ops invoked inside some fault window.
    pub inside_faults: Share,
}

/// Computes availability.
pub fn availability(ops: &[Op], cover: &FaultCover) -> Availability {
    Availability {
        overall: Share::of(ops),
        outside_faults: Share::of(ops.iter().filter(|o| !cover.contains(o.invoke_ns))),
        inside_faults: Share::of(ops.iter().filter(|o| cover.contains(o.invoke_ns))),
    }
}

/// Latency percentiles of definite answers (ok, fail, cas mismatch), in ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Ops measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// The nearest-rank percentile of sorted values (`q` in 0..=1).
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency percentiles of the definite answers among `ops`; `None` without any.
pub fn latency_stats<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Option<LatencyStats> {
    let mut v: Vec<u64> = ops
        .into_iter()
        .filter(|o| o.outcome.is_definite())
        .filter_map(Op::latency_ns)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let ms = |q: f64| percentile(&v, q).map_or(0.0, |ns| round3(ns as f64 / NS_PER_MS));
    Some(LatencyStats {
        count: v.len() as u64,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        max_ms: ms(1.0),
    })
}

/// Latency overall, while healthy (invoked outside every fault window) and inside fault windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyFigures {
    /// All definite answers.
    pub all: Option<LatencyStats>,
    /// Invoked outside every fault window.
    pub healthy: Option<LatencyStats>,
    /// Invoked inside some fault window.
    pub faulted: Option<LatencyStats>,
}

/// Computes the latency figures.
pub fn latency(ops: &[Op], cover: &FaultCover) -> LatencyFigures {
    LatencyFigures {
        all: latency_stats(ops),
        healthy: latency_stats(ops.iter().filter(|o| !cover.contains(o.invoke_ns))),
        faulted: latency_stats(ops.iter().filter(|o| cover.contains(o.invoke_ns))),
    }
}

/// Rounds to 3 decimals (µs precision for ms figures), so JSON figures stay short and stable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Completions in one time bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThroughputBucket {
    /// Bucket start, ns.
    pub start_ns: u64,
    /// Ok completions.
    pub ok: u64,
    /// Definite failures (cas mismatches included).
    pub fail: u64,
    /// Indeterminate completions.
    pub info: u64,
}

/// Completions per bucket of `bucket_ns`, from 0 to `end_ns`.
pub fn throughput(ops: &[Op], bucket_ns: u64, end_ns: u64) -> Vec<ThroughputBucket> {
    assert!(bucket_ns > 0, "bucket width must be positive");
    let n = (end_ns / bucket_ns + 1) as usize;
    let mut buckets: Vec<ThroughputBucket> = (0..n)
        .map(|i| ThroughputBucket {
            start_ns: i as u64 * bucket_ns,
            ..ThroughputBucket::default()
        })
        .collect();
    for op in ops {
        let Some(t) = op.complete_ns else { continue };
        let i = ((t / bucket_ns) as usize).min(n - 1);
        let b = &mut buckets[i];
        match op.outcome {
            OpOutcome::Ok => b.ok += 1,
            OpOutcome::Fail | OpOutcome::Mismatch => b.fail += 1,
            OpOutcome::Info | OpOutcome::Pending => b.info += 1,
        }
    }
    buckets
}

/// A time from which the cluster had no leader a majority followed, to when it had one again.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaderGap {
    /// When the leader was lost, ns: the fault that hit it when one did, else the last poll that saw it.
    pub lost_ns: u64,
    /// When a leader was seen again; `None` when none was by the end of the status polls.
    pub regained_ns: Option<u64>,
    /// The gap in ms (to the last poll when never regained).
    pub ms: f64,
}

/// Leadership as polled from outside (`status.jsonl`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Leadership {
    /// Poll rounds seen.
    pub polls: u64,
    /// The median time between polls, ms (the resolution of the gaps).
    pub poll_interval_ms: Option<f64>,
    /// Times the leader (node, term) changed after the first leader.
    pub changes: u64,
    /// The leaders in order: (node, term, first seen ns).
    pub leaders: Vec<(u64, u64, u64)>,
    /// Leaderless gaps after the first leader.
    pub gaps: Vec<LeaderGap>,
    /// The highest term seen.
    pub term_max: Option<u64>,
}

impl Leadership {
    /// The longest gap, ms.
    pub fn longest_gap_ms(&self) -> Option<f64> {
        self.gaps.iter().map(|g| g.ms).reduce(f64::max)
    }
}

/// One round of polls: each node at most once; a round closes when a node repeats.
pub(crate) fn poll_rounds(status: &[StatusLine]) -> Vec<(u64, Vec<&StatusLine>)> {
    let mut rounds = Vec::new();
    let mut current: Vec<&StatusLine> = Vec::new();
    for s in status {
        if current.iter().any(|c| c.node == s.node) {
            let t = current.last().map_or(0, |c| c.time_ns);
            rounds.push((t, std::mem::take(&mut current)));
        }
        current.push(s);
    }
    if let Some(last) = current.last() {
        rounds.push((last.time_ns, current));
    }
    rounds
}

/// The leader a majority follows, from the latest status of every node: a node that says it leads term T, with
/// at least a majority of the nodes (itself included) answering in term T and naming it (or no one yet) as
/// leader. An old leader cut off from the majority still says "leader" but is not followed.
pub(crate) fn effective_leader(
    latest: &BTreeMap<u64, &StatusLine>,
    nodes: u64,
) -> Option<(u64, u64)> {
    let majority = nodes / 2 + 1;
    latest
        .values()
        .filter(|s| s.up && s.role.as_deref() == Some("leader"))
        .filter_map(|l| {
            let term = l.term?;
            let support = latest
                .values()
                .filter(|m| {
                    m.up && m.term == Some(term)
                        && (m.node == l.node || m.leader.is_none() || m.leader == Some(l.node))
                })
                .count() as u64;
            (support >= majority).then_some((l.node, term))
        })
        .max_by_key(|&(node, term)| (term, std::cmp::Reverse(node)))
}

/// Leadership from status polls. `nodes` is the cluster's size; `windows` refine when a leader was lost (a fault
/// that hit the leader between two polls dates the loss exactly).
pub fn leadership(status: &[StatusLine], nodes: u64, windows: &[FaultWindow]) -> Leadership {
    leadership_with(status, nodes, windows, &[])
}

/// [`leadership`] when membership changes: from each `(ns, members)` on, a majority of those members (and only
/// their statuses) makes a leader; before the first, every node polled.
pub fn leadership_with(
    status: &[StatusLine],
    nodes: u64,
    windows: &[FaultWindow],
    membership: &[(u64, Vec<u64>)],
) -> Leadership {
    let mut sorted: Vec<StatusLine> = status.to_vec();
    sorted.sort_by_key(|s| (s.time_ns, s.node));
    let nodes = nodes.max(sorted.iter().map(|s| s.node).max().unwrap_or(0));
    let rounds = poll_rounds(&sorted);
    let mut out = Leadership {
        polls: rounds.len() as u64,
        term_max: sorted.iter().filter_map(|s| s.term).max(),
        ..Leadership::default()
    };
    let mut intervals: Vec<u64> = rounds.windows(2).map(|w| w[1].0 - w[0].0).collect();
    intervals.sort_unstable();
    out.poll_interval_ms = percentile(&intervals, 0.5).map(|ns| round3(ns as f64 / NS_PER_MS));

    let mut latest: BTreeMap<u64, &StatusLine> = BTreeMap::new();
    let mut current: Option<(u64, u64)> = None; // the leader last seen
    let mut last_seen_ns = 0u64; // the last poll that saw it
    let mut lost_at: Option<u64> = None;
    let mut last_round_ns = 0;
    for (t, round) in &rounds {
        for s in round {
            latest.insert(s.node, s);
        }
        last_round_ns = *t;
        let members = membership.iter().rev().find(|(from, _)| from <= t);
        let found = match members {
            None => effective_leader(&latest, nodes),
            Some((_, members)) => {
                let only: BTreeMap<u64, &StatusLine> = latest
                    .iter()
                    .filter(|(id, _)| members.contains(id))
                    .map(|(id, s)| (*id, *s))
                    .collect();
                effective_leader(&only, members.len() as u64)
            }
        };
        match (found, lost_at) {
            (Some(l), lost) => {
                if let Some(lost_ns) = lost {
                    out.gaps.push(LeaderGap {
                        lost_ns,
                        regained_ns: Some(*t),
                        ms: round3((t - lost_ns) as f64 / NS_PER_MS),
                    });
                    lost_at = None;
                }
                if current != Some(l) {
                    if current.is_some() {
                        out.changes += 1;
                    }
                    out.leaders.push((l.0, l.1, *t));
                    current = Some(l);
                }
                last_seen_ns = *t;
            }
            (None, None) if current.is_some() => {
                let old = current.map_or(0, |c| c.0);
                // A fault that hit the old leader between the last poll that saw it and this one dates the loss.
                let hit = windows
                    .iter()
                    .filter(|w| w.nodes.contains(&old))
                    .map(|w| w.start_ns)
                    .filter(|&s| s > last_seen_ns && s <= *t)
                    .min();
                lost_at = Some(hit.unwrap_or(last_seen_ns));
            }
            _ => {}
        }
    }
    if let Some(lost_ns) = lost_at {
        out.gaps.push(LeaderGap {
            lost_ns,
            regained_ns: None,
            ms: round3(last_round_ns.saturating_sub(lost_ns) as f64 / NS_PER_MS),
        });
    }
    out
}

/// A node's series of a status field over time.
pub fn status_series(
    status: &[StatusLine],
    value: impl Fn(&StatusLine) -> Option<f64>,
) -> BTreeMap<u64, Vec<(u64, f64)>> {
    let mut out: BTreeMap<u64, Vec<(u64, f64)>> = BTreeMap::new();
    for s in status {
        if let Some(v) = value(s) {
            out.entry(s.node).or_default().push((s.time_ns, v));
        }
    }
    out
}

/// Clock offsets seen per node: the largest absolute offset, ms.
pub fn clock_offsets_max(status: &[StatusLine]) -> BTreeMap<u64, f64> {
    let mut out: BTreeMap<u64, f64> = BTreeMap::new();
    for s in status {
        if let Some(o) = s.clock_offset_ms {
            let e = out.entry(s.node).or_insert(0.0);
            if o.abs() > e.abs() {
                *e = o;
            }
        }
    }
    out
}

/// An acknowledged write that the final read of its key does not show and that nothing could have overwritten.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LostWrite {
    /// The key.
    pub key: Option<String>,
    /// The value written.
    pub value: String,
    /// The write's invocation index in the history.
    pub index: u64,
    /// When it was acknowledged, s.
    pub acknowledged_s: f64,
    /// What the final read returned.
    pub final_value: String,
}

/// The lost-writes analysis.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LostWrites {
    /// Keys whose final read succeeded (and so could be checked).
    pub keys_checked: u64,
    /// Keys with acknowledged writes but no successful final read.
    pub keys_unverified: u64,
    /// Acknowledged writes checked.
    pub writes_checked: u64,
    /// Acknowledged writes that were concurrent with the final read (and so may follow it).
    pub writes_concurrent: u64,
    /// The lost ones.
    pub lost: Vec<LostWrite>,
}

/// Every acknowledged write (an ok write, or an ok cas's new value) must be visible to the final read of its key
/// (the last ok read) or be overwritten by a later write: one that was invoked before the read completed and
/// completed after the acknowledged write was invoked (ok, or indeterminate: it may have applied). Order is the
/// history's (indexes), as the checker's; times are for display.
pub fn lost_writes(ops: &[Op]) -> LostWrites {
    let mut by_key: BTreeMap<Option<&str>, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_deref()).or_default().push(op);
    }
    let mut out = LostWrites::default();
    for (key, ops) in by_key {
        let acked: Vec<&&Op> = ops
            .iter()
            .filter(|o| o.f != OpFunction::Read && o.outcome == OpOutcome::Ok)
            .collect();
        let final_read = ops
            .iter()
            .filter(|o| o.f == OpFunction::Read && o.outcome == OpOutcome::Ok)
            .max_by_key(|o| o.complete_index);
        let Some(read) = final_read else {
            if !acked.is_empty() {
                out.keys_unverified += 1;
            }
            continue;
        };
        out.keys_checked += 1;
        let read_value = read.read.clone().unwrap_or(Value::Null);
        let read_done = read.complete_index.unwrap_or(u64::MAX);
        // Writes that may take effect before the read: invoked before it completed, and not definitely failed.
        // An indeterminate write may take effect at any time after its invoke, even after its `info` line was
        // recorded (the client gave up; the cluster may still commit it), so it counts as completing last.
        let mut candidates: Vec<(u64, u64)> = ops
            .iter()
            .filter(|o| o.f != OpFunction::Read && o.invoke_index < read_done)
            .filter_map(|o| match o.outcome {
                OpOutcome::Ok => Some((o.complete_index.unwrap_or(u64::MAX), o.invoke_index)),
                OpOutcome::Info | OpOutcome::Pending => Some((u64::MAX, o.invoke_index)),
                _ => None,
            })
            .collect();
        // The two latest completions are enough to answer "another write completed after w was invoked".
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let top: Vec<(u64, u64)> = candidates.into_iter().take(2).collect();
        for w in acked {
            let done = w.complete_index.unwrap_or(u64::MAX);
            if done > read.invoke_index {
                out.writes_concurrent += 1;
                continue;
            }
            out.writes_checked += 1;
            if w.written.as_ref() == Some(&read_value) {
                continue;
            }
            let overwritten = top
                .iter()
                .find(|&&(_, inv)| inv != w.invoke_index)
                .is_some_and(|&(c, _)| c > w.invoke_index);
            if !overwritten {
                out.lost.push(LostWrite {
                    key: key.map(str::to_owned),
                    value: w.written.as_ref().map_or("null".into(), |v| v.to_string()),
                    index: w.invoke_index,
                    acknowledged_s: round3(w.complete_ns.unwrap_or(0) as f64 / NS_PER_S),
                    final_value: read_value.to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {

    /// Steps later than [`LATE_NOTED_MS`] are named with their fault's kind; on-time ones and old runs' events
    /// without the field are not.
    #[test]
    fn late_steps_are_named_with_their_kind() {
        let start = |id, late_ms| RunEvent::FaultStart {
            time_ns: 0,
            id,
            kind: if id == 1 {
                "kill".into()
            } else {
                "replace".into()
            },
            target: "leader".into(),
            nodes: vec![1],
            note: None,
            late_ms,
        };
        let end = |id, late_ms| RunEvent::FaultEnd {
            time_ns: 0,
            id,
            late_ms,
        };
        let events = [
            start(1, Some(3)),
            start(2, Some(0)),
            end(1, Some(18_400)),
            end(2, Some(LATE_NOTED_MS - 1)),
            start(3, None),
        ];
        assert_eq!(
            late_steps(&events),
            vec![LateStep {
                id: 1,
                kind: "kill".into(),
                edge: "end".into(),
                late_ms: 18_400
            }]
        );
    }

    use super::*;

    fn op(
        process: u64,
        f: OpFunction,
        inv: u64,
        done: Option<u64>,
        outcome: OpOutcome,
        v: i64,
    ) -> Op {
        Op {
            process,
            f,
            key: Some("k".into()),
            invoke_index: inv,
            complete_index: done,
            invoke_ns: inv * 1_000_000,
            complete_ns: done.map(|d| d * 1_000_000),
            outcome,
            written: (f != OpFunction::Read).then_some(Value::Int(v)),
            read: (f == OpFunction::Read && outcome == OpOutcome::Ok).then_some(Value::Int(v)),
        }
    }

    #[test]
    fn an_indeterminate_write_may_land_after_its_info_line_and_overwrite_an_acknowledged_one() {
        // Seen against etcd under a partition: write 193 timed out (info recorded at 2), write 228 was acknowledged
        // at 4, the final read saw 193. Linearizable (193 committed after 228), so nothing was lost.
        let ops = vec![
            op(1, OpFunction::Write, 1, Some(2), OpOutcome::Info, 193),
            op(2, OpFunction::Write, 3, Some(4), OpOutcome::Ok, 228),
            op(3, OpFunction::Read, 5, Some(6), OpOutcome::Ok, 193),
        ];
        let r = lost_writes(&ops);
        assert!(r.lost.is_empty(), "{:?}", r.lost);
        assert_eq!(r.writes_checked, 1);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&[7], 0.01), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn cover_merges_overlapping_windows() {
        let w = |s, e| FaultWindow {
            id: s,
            kind: "kill".into(),
            target: "n1".into(),
            nodes: vec![1],
            start_ns: s,
            end_ns: e,
            closed_by: "end".into(),
            note: None,
        };
        let cover = FaultCover::new(&[w(10, 20), w(15, 30), w(50, 60)]);
        assert!(!cover.contains(9));
        assert!(cover.contains(10));
        assert!(cover.contains(29));
        assert!(!cover.contains(30));
        assert!(cover.contains(55));
        assert!(!cover.contains(60));
        assert_eq!(cover.covered_ns(), 30);
    }

    #[test]
    fn a_write_not_seen_and_not_overwritten_is_lost() {
        use OpFunction::*;
        use OpOutcome::*;
        let ops = vec![
            op(1, Write, 1, Some(2), Ok, 5),
            op(2, Write, 3, Some(4), Ok, 6),
            op(3, Read, 5, Some(6), Ok, 5), // reads 5: write 6 (acknowledged, later) is lost
        ];
        let r = lost_writes(&ops);
        assert_eq!(r.writes_checked, 2);
        assert_eq!(r.lost.len(), 1);
        assert_eq!(r.lost[0].value, "6");
        assert_eq!(r.lost[0].final_value, "5");
    }

    #[test]
    fn a_write_overwritten_by_a_later_or_indeterminate_write_is_not_lost() {
        use OpFunction::*;
        use OpOutcome::*;
        let ops = vec![
            op(1, Write, 1, Some(2), Ok, 5),
            op(2, Write, 3, Some(8), Info, 6), // may have applied after write 5
            op(3, Read, 9, Some(10), Ok, 6),
        ];
        assert!(lost_writes(&ops).lost.is_empty());
        let ops = vec![
            op(1, Write, 1, Some(2), Ok, 5),
            op(2, Write, 3, Some(4), Fail, 6), // definitely did not apply: 5 must be visible
            op(3, Read, 9, Some(10), Ok, 7),
        ];
        assert_eq!(lost_writes(&ops).lost.len(), 1);
    }

    #[test]
    fn a_write_concurrent_with_the_final_read_is_not_judged() {
        use OpFunction::*;
        use OpOutcome::*;
        let ops = vec![
            op(3, Read, 1, Some(4), Ok, 0),
            op(1, Write, 2, Some(3), Ok, 5),
        ];
        let r = lost_writes(&ops);
        assert_eq!(r.writes_concurrent, 1);
        assert!(r.lost.is_empty());
    }

    fn st(t_ms: u64, node: u64, role: &str, term: u64, leader: Option<u64>) -> StatusLine {
        StatusLine {
            time_ns: t_ms * 1_000_000,
            node,
            up: role != "down",
            role: (role != "down").then(|| role.to_owned()),
            term: (role != "down").then_some(term),
            leader,
            commit_index: None,
            applied_index: None,
            clock_offset_ms: None,
            elections_started: None,
        }
    }

    #[test]
    fn a_killed_leader_gap_runs_from_the_kill_to_the_new_leader() {
        let mut s = Vec::new();
        for t in [0u64, 250] {
            s.push(st(t, 1, "leader", 1, Some(1)));
            s.push(st(t + 1, 2, "follower", 1, Some(1)));
            s.push(st(t + 2, 3, "follower", 1, Some(1)));
        }
        for t in [500u64, 750] {
            s.push(st(t, 1, "down", 0, None));
            s.push(st(t + 1, 2, "candidate", 2, None));
            s.push(st(t + 2, 3, "follower", 2, None));
        }
        s.push(st(1000, 1, "down", 0, None));
        s.push(st(1001, 2, "leader", 2, Some(2)));
        s.push(st(1002, 3, "follower", 2, Some(2)));
        let kill = FaultWindow {
            id: 0,
            kind: "kill".into(),
            target: "leader".into(),
            nodes: vec![1],
            start_ns: 300_000_000,
            end_ns: 1_300_000_000,
            closed_by: "end".into(),
            note: None,
        };
        let l = leadership(&s, 3, &[kill]);
        assert_eq!(l.changes, 1);
        assert_eq!(l.gaps.len(), 1);
        assert_eq!(l.gaps[0].lost_ns, 300_000_000);
        assert_eq!(l.gaps[0].regained_ns, Some(1_002_000_000));
        assert_eq!(l.polls, 5);
        // Without the kill event the loss is dated at the last poll that saw the leader.
        let l = leadership(&s, 3, &[]);
        assert_eq!(l.gaps[0].lost_ns, 252_000_000);
    }

    #[test]
    fn an_isolated_old_leader_is_not_followed() {
        let s = vec![
            st(0, 1, "leader", 1, Some(1)),
            st(1, 2, "leader", 2, Some(2)),
            st(2, 3, "follower", 2, Some(2)),
        ];
        let l = leadership(&s, 3, &[]);
        assert_eq!(l.leaders, vec![(2, 2, 2_000_000)]);
    }
}
