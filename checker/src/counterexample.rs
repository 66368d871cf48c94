//! Counterexamples: for a key that is not linearizable, the smallest window of its history that cannot be
//! linearized, the op that could not be placed, and the longest linearizable prefix the search found.
//!
//! A window is the stretch of the key's history between two positions `t1` and `t2`: every op whose interval
//! meets it. Ops entirely inside it must be linearized; an op that started before `t1` may have taken effect before
//! the window (so it may be left out), one still running at `t2` may take effect after it (left out too), and an
//! indeterminate op may never happen. The register's state at `t1` is unknown, so the window is tried from every
//! state that matters. If a window cannot be linearized, neither can the whole history: restricting any
//! linearization of the history to the ops that take effect inside the window gives one of the window. That makes
//! failure monotone in the window's size, so the smallest window ending where the search got stuck is found by
//! binary search over its start.

use std::fmt::Write as _;

use serde::Serialize;

use crate::history::Key;
use crate::model::{Model, OpKind, OpSpec, ValueId, ValueTable};
use crate::prepare::{Outcome, PreparedOp};
use crate::search::{search, Budget, Frontier, Path, SearchOp, Verdict, NEVER};

/// Ops of the linearizable prefix shown in reports (the last ones, nearest the failure).
pub const PREFIX_SHOWN_MAX: usize = 20;

/// Step budget of each window search: windows are small; a window that needs more is treated as linearizable,
/// which only makes the reported window larger, never wrong.
const WINDOW_STEPS_MAX: u64 = 2_000_000;

/// Step budget for finding the smallest window of one counterexample, over all the windows tried.
const MINIMIZE_STEPS_MAX: u64 = 10_000_000;

/// Step budget for shrinking one counterexample's window to a minimal set of ops, over all the subsets tried.
/// Deterministic, so the same history always shrinks to the same ops; a few tenths of a second at most.
pub const SHRINK_STEPS_MAX: u64 = 20_000_000;

/// Subsets tried while shrinking one counterexample, whatever their size.
const SHRINK_TESTS_MAX: u32 = 5_000;

/// One op as shown in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OpRecord {
    /// The client process.
    pub process: u64,
    /// What the op did, e.g. `write 3`, `read null`, `cas 1 -> 2`.
    pub op: String,
    /// How it ended.
    pub outcome: Outcome,
    /// `index` of the invoke event.
    pub invoke_index: u64,
    /// `index` of the completion, if it was definite.
    pub complete_index: Option<u64>,
    /// Time of the invoke, ns.
    pub invoke_time_ns: u64,
    /// Time of the completion (also of an `info` completion), ns.
    pub complete_time_ns: Option<u64>,
    /// Line of the invoke event.
    pub invoke_line: u64,
    /// Line of the completion event (also of an `info` completion).
    pub complete_line: Option<u64>,
}

impl OpRecord {
    pub(crate) fn new(op: &PreparedOp, values: &ValueTable) -> OpRecord {
        OpRecord {
            process: op.process.0,
            op: op.spec.describe(values),
            outcome: op.outcome,
            invoke_index: op.call_index,
            complete_index: op.ret_index(),
            invoke_time_ns: op.call_time_ns,
            complete_time_ns: op.ret_time_ns(),
            invoke_line: op.call_line,
            complete_line: op.ret_line(),
        }
    }

    /// `lines 9-11`, or `line 9, never completed`.
    pub fn lines(&self) -> String {
        match self.complete_line {
            Some(l) => format!("lines {}-{}", self.invoke_line, l),
            None => format!("line {}, never completed", self.invoke_line),
        }
    }

    fn outcome_text(&self) -> &'static str {
        match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Info => "info",
            Outcome::Mismatch => "fail (mismatch)",
        }
    }

    /// One-line description: `p3 read 2 (ok, lines 14-16)`.
    pub fn summary(&self) -> String {
        format!(
            "p{} {} ({}, {})",
            self.process,
            self.op,
            self.outcome_text(),
            self.lines()
        )
    }
}

/// Why an op of a window need not be linearized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowRole {
    /// Entirely inside the window and definite: must be linearized.
    Required,
    /// Indeterminate: may never have happened.
    MayNeverHappen,
    /// Started before the window: may have taken effect before it.
    MayPrecede,
    /// Still running at the window's end: may take effect after it.
    MayFollow,
}

/// One op of a counterexample window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WindowOp {
    /// The op.
    #[serde(flatten)]
    pub record: OpRecord,
    /// Whether it must be linearized.
    pub role: WindowRole,
    /// True for the op that could not be placed.
    pub failed: bool,
}

/// One step of the linearizable prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PrefixStep {
    /// The op.
    #[serde(flatten)]
    pub record: OpRecord,
    /// True when the search left the op out (an indeterminate op taken as never happened).
    pub skipped: bool,
}

/// Why one key is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Counterexample {
    /// The key (`None` for a single-register history).
    pub key: Option<Key>,
    /// The op whose completion no linearization could reach.
    pub failed_op: OpRecord,
    /// A small subset of the window that still cannot be linearized (from the same start as the window), found by
    /// delta debugging: ops in invoke order, each keeping its own interval, so real-time order is unchanged.
    pub shrunk: Vec<WindowOp>,
    /// True when removing any single op of `shrunk` makes it linearizable; false when the shrink budget ran out
    /// first (it is then smaller than the window, or equal, but perhaps not minimal).
    pub shrunk_minimal: bool,
    /// The smallest window that cannot be linearized, ops in invoke order.
    pub window: Vec<WindowOp>,
    /// The state the window starts from: `None` when any state was tried (the window starts mid-history),
    /// otherwise the initial state.
    pub window_start_state: Option<String>,
    /// Ops in the longest linearizable prefix found.
    pub prefix_len: usize,
    /// Its last [`PREFIX_SHOWN_MAX`] steps, in linearization order.
    pub prefix_tail: Vec<PrefixStep>,
    /// The model state after the prefix.
    pub prefix_state: String,
}

fn key_text(key: &Option<Key>) -> String {
    match key {
        Some(k) => format!("key {k}"),
        None => "the history".to_owned(),
    }
}

impl Counterexample {
    /// A plain-text rendering, several lines, ending with a newline.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}: not linearizable", key_text(&self.key));
        let _ = writeln!(s, "  could not place: {}", self.failed_op.summary());
        let start = match &self.window_start_state {
            None => "from any state".to_owned(),
            Some(state) => format!("from the initial state {state}"),
        };
        let _ = writeln!(
            s,
            "  {} counterexample ({start}): {} op{}{}",
            if self.shrunk_minimal {
                "minimal"
            } else {
                "shrunk"
            },
            self.shrunk.len(),
            if self.shrunk.len() == 1 { "" } else { "s" },
            if self.shrunk_minimal {
                "; without any one of them the rest is linearizable"
            } else {
                " (shrink budget reached: perhaps not minimal)"
            }
        );
        for w in &self.shrunk {
            window_line(&mut s, w);
        }
        let lines = self
            .window
            .iter()
            .map(|w| w.record.invoke_line)
            .min()
            .unwrap_or(0);
        let linee = self
            .window
            .iter()
            .filter_map(|w| w.record.complete_line)
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "  smallest window that cannot be linearized ({start}): {} ops, lines {lines}-{linee}",
            self.window.len()
        );
        for w in &self.window {
            window_line(&mut s, w);
        }
        let shown = self.prefix_tail.len();
        let _ = writeln!(
            s,
            "  longest linearizable prefix found: {} ops{}; state after it: {}",
            self.prefix_len,
            if shown < self.prefix_len {
                format!(" (last {shown} shown)")
            } else {
                String::new()
            },
            self.prefix_state
        );
        for (i, p) in self.prefix_tail.iter().enumerate() {
            let n = self.prefix_len - shown + i + 1;
            let skipped = if p.skipped {
                "  [left out: never happened]"
            } else {
                ""
            };
            let _ = writeln!(s, "    {n:>5}. {}{skipped}", p.record.summary());
        }
        s
    }
}

/// One op of a window or shrunk set, as a line of text.
fn window_line(s: &mut String, w: &WindowOp) {
    let role = match w.role {
        WindowRole::Required => "",
        WindowRole::MayNeverHappen => "  [may never have happened]",
        WindowRole::MayPrecede => "  [may have taken effect before the window]",
        WindowRole::MayFollow => "  [may take effect after the window]",
    };
    let mark = if w.failed { "*" } else { " " };
    let _ = writeln!(
        s,
        "    {mark} p{:<4} {:<24} {:<16} {}  t {}{role}",
        w.record.process,
        w.record.op,
        w.record.outcome_text(),
        w.record.lines(),
        time_span(&w.record),
    );
}

/// `1.532000-1.671000 ms`-style span in seconds with microsecond precision.
pub(crate) fn time_span(r: &OpRecord) -> String {
    let secs = |ns: u64| format!("{:.6}", ns as f64 / 1e9);
    match (r.complete_time_ns, r.outcome) {
        (Some(t), Outcome::Ok | Outcome::Mismatch) => {
            format!("{}-{} s", secs(r.invoke_time_ns), secs(t))
        }
        _ => format!("{}-... s", secs(r.invoke_time_ns)),
    }
}

/// A window of the search ops: which ops it holds, as search ops, with their roles.
struct Window {
    members: Vec<usize>,
    ops: Vec<SearchOp>,
    roles: Vec<WindowRole>,
}

/// The window between positions `t1` (`None`: the start of the history) and `t2`.
fn window(ops: &[SearchOp], t1: Option<u64>, t2: u64) -> Window {
    let mut w = Window {
        members: Vec::new(),
        ops: Vec::new(),
        roles: Vec::new(),
    };
    for (i, o) in ops.iter().enumerate() {
        let meets = o.call <= t2 && t1.is_none_or(|t1| o.ret >= t1);
        if !meets {
            continue;
        }
        let role = if o.optional {
            WindowRole::MayNeverHappen
        } else if o.ret > t2 {
            WindowRole::MayFollow
        } else if t1.is_some_and(|t1| o.call < t1) {
            WindowRole::MayPrecede
        } else {
            WindowRole::Required
        };
        let ret = if o.ret > t2 { NEVER } else { o.ret };
        w.members.push(i);
        w.ops.push(SearchOp {
            spec: o.spec,
            call: o.call,
            ret,
            optional: role != WindowRole::Required,
        });
        w.roles.push(role);
    }
    w
}

/// Search effort spent on shrinking one counterexample; once spent, further windows count as linearizable.
struct Effort {
    steps_left: u64,
    /// Set when a search was cut short (by this effort, the step budget or the deadline): its "can" is a guess.
    cut: bool,
}

impl Effort {
    fn new(steps: u64) -> Effort {
        Effort {
            steps_left: steps,
            cut: false,
        }
    }
}

/// True if the window provably cannot be linearized (an unknown result, or no effort left, counts as "can").
fn window_fails<M: Model>(
    model: &M,
    ops: &[SearchOp],
    known_start: bool,
    budget: &Budget,
    effort: &mut Effort,
) -> bool {
    let starts = if known_start {
        vec![model.init()]
    } else {
        let specs: Vec<OpSpec> = ops.iter().map(|o| o.spec).collect();
        model.start_states(&specs)
    };
    if starts.is_empty() {
        // The model cannot start from an unknown state: nothing is proved.
        return false;
    }
    for s in starts {
        let limit = budget
            .steps_max_per_key
            .min(WINDOW_STEPS_MAX)
            .min(effort.steps_left);
        if limit == 0 {
            effort.cut = true;
            return false;
        }
        let (verdict, stats) = search(
            model,
            &mut M::Arena::default(),
            ops,
            s,
            &Budget::new(limit, budget.cache_bytes_max_per_key, budget.deadline),
            None,
        );
        effort.steps_left = effort.steps_left.saturating_sub(stats.steps);
        match verdict {
            Verdict::Illegal { .. } => {}
            Verdict::Unknown(_) => {
                effort.cut = true;
                return false;
            }
            Verdict::Linearizable => return false,
        }
    }
    true
}

/// The value an op leaves behind when it takes effect, if it produces one (a write, a cas, an add, an enqueue).
fn produced(spec: &OpSpec) -> Option<ValueId> {
    match spec.kind {
        OpKind::Write | OpKind::Add | OpKind::Enqueue => Some(spec.a),
        OpKind::Cas => Some(spec.b),
        _ => None,
    }
}

/// The values an op observes (other than null): a read's value, a cas' expected value, a set read's elements, a
/// dequeued element.
fn observed(spec: &OpSpec, values: &ValueTable) -> Vec<ValueId> {
    let v = match spec.kind {
        OpKind::Read | OpKind::Cas | OpKind::Dequeue => vec![spec.a],
        OpKind::ReadSet => values.set(spec.a.0).to_vec(),
        _ => Vec::new(),
    };
    v.into_iter().filter(|v| *v != ValueId::NULL).collect()
}

/// Delta debugging (Zeller's ddmin, complement variant) over the ops of a failing window: drops ops while the
/// rest still cannot be linearized from the window's start, the failed op always kept. Returns the positions in the
/// window of the ops kept, in invoke order, and whether the result is 1-minimal (no single op can be dropped).
///
/// Every remaining op keeps its interval, so real-time order is unchanged; dropping an op only removes
/// constraints, so each subset tried is a weaker claim than the window, and one that still fails is a true
/// counterexample. Bounded by [`SHRINK_STEPS_MAX`] search steps and [`SHRINK_TESTS_MAX`] subsets.
fn shrink<M: Model>(
    model: &M,
    w: &Window,
    failed: usize,
    known_start: bool,
    values: &ValueTable,
    budget: &Budget,
) -> (Vec<usize>, bool) {
    let pinned = w.members.iter().position(|&i| i == failed);
    // A subset must keep what explains it: an op that observes a value some op of the window writes keeps one of
    // those writers. Otherwise "read 5" alone would be a counterexample (nothing wrote 5) that says nothing about
    // the real failure.
    let written_in_window: std::collections::HashSet<ValueId> =
        w.ops.iter().filter_map(|o| produced(&o.spec)).collect();
    let explained = |members: &[usize]| {
        let written: std::collections::HashSet<ValueId> = members
            .iter()
            .filter_map(|&k| produced(&w.ops[k].spec))
            .collect();
        members.iter().all(|&k| {
            observed(&w.ops[k].spec, values)
                .iter()
                .all(|v| !written_in_window.contains(v) || written.contains(v))
        })
    };
    let mut current: Vec<usize> = (0..w.members.len())
        .filter(|&k| Some(k) != pinned)
        .collect();
    let mut effort = Effort::new(SHRINK_STEPS_MAX);
    let mut tests = 0u32;
    let mut fails = |subset: &[usize], effort: &mut Effort| {
        tests += 1;
        if tests > SHRINK_TESTS_MAX {
            effort.cut = true;
            return false;
        }
        let mut members: Vec<usize> = subset.iter().copied().chain(pinned).collect();
        members.sort_unstable();
        if !explained(&members) {
            return false;
        }
        let ops: Vec<SearchOp> = members.iter().map(|&k| w.ops[k]).collect();
        window_fails(model, &ops, known_start, budget, effort)
    };
    let mut n = 2usize;
    while !current.is_empty() {
        let chunk = current.len().div_ceil(n.min(current.len()));
        let mut reduced = false;
        for start in (0..current.len()).step_by(chunk) {
            let complement: Vec<usize> = current[..start]
                .iter()
                .chain(&current[(start + chunk).min(current.len())..])
                .copied()
                .collect();
            if fails(&complement, &mut effort) {
                current = complement;
                n = n.saturating_sub(1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if chunk == 1 {
                break;
            }
            n = (n * 2).min(current.len());
        }
    }
    let mut kept: Vec<usize> = current.into_iter().chain(pinned).collect();
    kept.sort_unstable();
    (kept, !effort.cut)
}

/// Builds the counterexample of a key whose search failed at `frontier`.
///
/// `prepared[i]` is the op behind `ops[i]`; `path` is the captured path to the frontier, if the capture succeeded.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<M: Model>(
    model: &M,
    key: &Option<Key>,
    prepared: &[&PreparedOp],
    ops: &[SearchOp],
    values: &ValueTable,
    frontier: Frontier,
    path: Option<(Path<M::State>, &M::Arena)>,
    budget: &Budget,
) -> Counterexample {
    let failed = frontier.op as usize;
    let t2 = ops[failed].ret;
    assert!(t2 != NEVER, "the failed op is a definite one");

    // Candidate window starts: invokes up to the failed op's own, which must stay inside the window.
    let mut starts: Vec<u64> = ops
        .iter()
        .map(|o| o.call)
        .filter(|c| *c <= ops[failed].call)
        .collect();
    starts.sort_unstable();
    starts.dedup();
    let mut effort = Effort::new(MINIMIZE_STEPS_MAX);
    let fails_from = |j: usize, effort: &mut Effort| {
        window_fails(
            model,
            &window(ops, Some(starts[j]), t2).ops,
            false,
            budget,
            effort,
        )
    };

    // The latest start whose window still fails. Failure is monotone in the start, so gallop back from the failed
    // op (small windows are cheap to check) until a window fails, then binary search between the last two probes.
    let mut found: Option<usize> = None;
    // Without unknown start states, only windows from the beginning can be proved impossible.
    let specs: Vec<OpSpec> = ops.iter().map(|o| o.spec).collect();
    let mut passing = if model.start_states(&specs).is_empty() {
        0
    } else {
        starts.len()
    };
    let mut step = 1;
    while passing > 0 {
        let j = passing.saturating_sub(step);
        if fails_from(j, &mut effort) {
            found = Some(j);
            break;
        }
        passing = j;
        step *= 2;
    }
    if let Some(mut lo) = found {
        let mut hi = passing - 1;
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fails_from(mid, &mut effort) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        found = Some(lo);
    }
    let (t1, known_start) = match found {
        Some(j) => (Some(starts[j]), false),
        None => (None, true),
    };
    let mut w = window(ops, t1, t2);
    // The prefix up to the failed op's completion fails from the initial state: the search got no further. The
    // check below only guards against a budget cut; the whole history is then the window the search proved.
    if known_start
        && !window_fails(
            model,
            &w.ops,
            true,
            budget,
            &mut Effort::new(WINDOW_STEPS_MAX),
        )
    {
        w = window(ops, None, NEVER);
    }
    let window_op = |k: usize| {
        let i = w.members[k];
        WindowOp {
            record: OpRecord::new(prepared[i], values),
            role: w.roles[k],
            failed: i == failed,
        }
    };
    let (kept, shrunk_minimal) = shrink(model, &w, failed, known_start, values, budget);
    let shrunk = kept.into_iter().map(window_op).collect();
    let window_ops = (0..w.members.len()).map(window_op).collect();

    let (prefix_len, prefix_tail, prefix_state) = match path {
        Some((p, arena)) => {
            let skip = p.steps.len().saturating_sub(PREFIX_SHOWN_MAX);
            let tail = p.steps[skip..]
                .iter()
                .map(|&(op, skipped)| PrefixStep {
                    record: OpRecord::new(prepared[op as usize], values),
                    skipped,
                })
                .collect();
            (p.steps.len(), tail, model.describe(arena, p.state, values))
        }
        None => (0, Vec::new(), "(not captured: budget reached)".to_owned()),
    };
    Counterexample {
        key: key.clone(),
        failed_op: OpRecord::new(prepared[failed], values),
        shrunk,
        shrunk_minimal,
        window: window_ops,
        window_start_state: known_start
            .then(|| model.describe(&M::Arena::default(), model.init(), values)),
        prefix_len,
        prefix_tail,
        prefix_state,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{CasRegister, OpKind, ValueId};

    fn op(kind: OpKind, a: u32, call: u64, ret: u64) -> SearchOp {
        SearchOp {
            spec: OpSpec {
                kind,
                a: ValueId(a),
                b: ValueId(0),
            },
            call,
            ret,
            optional: ret == NEVER,
        }
    }

    #[test]
    fn windows_assign_roles() {
        let ops = [
            op(OpKind::Write, 1, 0, 3),
            op(OpKind::Write, 2, 1, NEVER),
            op(OpKind::Read, 1, 4, 6),
            op(OpKind::Read, 2, 5, 9),
            op(OpKind::Read, 2, 10, 11),
        ];
        let w = window(&ops, Some(2), 7);
        assert_eq!(w.members, vec![0, 1, 2, 3]);
        assert_eq!(
            w.roles,
            vec![
                WindowRole::MayPrecede,
                WindowRole::MayNeverHappen,
                WindowRole::Required,
                WindowRole::MayFollow
            ]
        );
        assert_eq!(w.ops[3].ret, NEVER);
    }

    #[test]
    fn a_stale_read_needs_only_the_overwrite_and_the_read() {
        // write 1; write 2; read 1: from any state, "write 2 then read 1" is impossible.
        let ops = [
            op(OpKind::Write, 1, 0, 1),
            op(OpKind::Write, 2, 2, 3),
            op(OpKind::Read, 1, 4, 5),
        ];
        let budget = Budget::default();
        let effort = &mut Effort::new(u64::MAX);
        assert!(window_fails(
            &CasRegister,
            &window(&ops, Some(2), 5).ops,
            false,
            &budget,
            effort
        ));
        assert!(!window_fails(
            &CasRegister,
            &window(&ops, Some(4), 5).ops,
            false,
            &budget,
            effort
        ));
        assert!(window_fails(
            &CasRegister,
            &window(&ops, None, 5).ops,
            true,
            &budget,
            effort
        ));
    }

    pub(crate) fn window_for_tests(ops: &[SearchOp], t1: Option<u64>, t2: u64) -> Vec<SearchOp> {
        window(ops, t1, t2).ops
    }

    pub(crate) fn window_fails_for_tests<M: Model>(
        model: &M,
        ops: &[SearchOp],
        known_start: bool,
    ) -> bool {
        window_fails(
            model,
            ops,
            known_start,
            &Budget::default(),
            &mut Effort::new(u64::MAX),
        )
    }
}
