//! Expectations about the cluster's behaviour over time, judged on the status polls (`status.jsonl`), the fault
//! windows and the ops: the failover matrix (a lone node never leads, a steady leader stays, a returning node
//! catches up, a minority commits nothing). Pure functions; each returns "not evaluated" with the reason when the
//! run gave it nothing to judge, so a check that could not have failed never passes.

use std::collections::{BTreeMap, BTreeSet};

use super::super::figures::{effective_leader, poll_rounds, FaultWindow};
use super::super::model::{Op, OpFunction, OpOutcome, StatusLine};
use super::super::verdict::CheckVerdict;
use super::ExpectDuration;

/// A stretch of the run in which some nodes that still run could not reach a majority.
#[derive(Clone, Debug, PartialEq)]
pub struct QuorumLoss {
    /// The nodes running without a quorum (up, but cut off or too few).
    pub nodes: BTreeSet<u64>,
    /// Start, ns since the run's start.
    pub start_ns: u64,
    /// End, ns since the run's start.
    pub end_ns: u64,
    /// Whether process faults caused it (every client then talks to the quorum-less side).
    pub by_processes: bool,
}

/// Process fault kinds that take a node out (it answers no one).
const DOWN_KINDS: [&str; 3] = ["kill", "terminate", "pause"];

/// The quorum losses of a run of `nodes` nodes: stretches where process faults keep more than a minority down,
/// and partitions that put a minority (the nodes they hit) on one side.
pub fn quorum_losses(windows: &[FaultWindow], nodes: u64) -> Vec<QuorumLoss> {
    let majority = (nodes / 2 + 1) as usize;
    let mut out = process_losses(windows, nodes, majority);
    for w in windows.iter().filter(|w| w.kind == "partition") {
        if !w.nodes.is_empty() && w.nodes.len() < majority {
            out.push(QuorumLoss {
                nodes: w.nodes.iter().copied().collect(),
                start_ns: w.start_ns,
                end_ns: w.end_ns,
                by_processes: false,
            });
        }
    }
    out.sort_by_key(|l| l.start_ns);
    out
}

/// Sweeps the process fault windows: each maximal stretch with fewer than `majority` nodes running.
fn process_losses(windows: &[FaultWindow], nodes: u64, majority: usize) -> Vec<QuorumLoss> {
    let down: Vec<&FaultWindow> = windows
        .iter()
        .filter(|w| DOWN_KINDS.contains(&w.kind.as_str()))
        .collect();
    let mut times: Vec<u64> = down.iter().flat_map(|w| [w.start_ns, w.end_ns]).collect();
    times.sort_unstable();
    times.dedup();
    let mut out: Vec<QuorumLoss> = Vec::new();
    for pair in times.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let gone: BTreeSet<u64> = down
            .iter()
            .filter(|w| w.start_ns <= a && w.end_ns >= b)
            .flat_map(|w| w.nodes.iter().copied())
            .collect();
        let up: BTreeSet<u64> = (1..=nodes).filter(|n| !gone.contains(n)).collect();
        if up.len() >= majority {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.end_ns == a => {
                last.end_ns = b;
                last.nodes.extend(up);
            }
            _ => out.push(QuorumLoss {
                nodes: up,
                start_ns: a,
                end_ns: b,
                by_processes: true,
            }),
        }
    }
    out
}

/// A verdict with its message.
pub type Judged = (CheckVerdict, String);

fn secs(ns: u64) -> String {
    format!("{:.2}s", ns as f64 / 1e9)
}

fn not_evaluated(why: impl Into<String>) -> Judged {
    (
        CheckVerdict::NotEvaluated,
        format!("not evaluated: {}", why.into()),
    )
}

fn judged(violations: &[String], judged_count: usize, what: &str) -> Judged {
    if violations.is_empty() {
        (CheckVerdict::Pass, format!("{judged_count} {what}"))
    } else {
        let shown: Vec<&str> = violations.iter().take(5).map(String::as_str).collect();
        (
            CheckVerdict::Fail,
            format!(
                "{} violation(s): {}{}",
                violations.len(),
                shown.join("; "),
                if violations.len() > 5 { "; ..." } else { "" }
            ),
        )
    }
}

/// The status lines of the loss's nodes in [start + grace, end).
fn settled<'a>(
    status: &'a [StatusLine],
    loss: &QuorumLoss,
    grace: ExpectDuration,
) -> impl Iterator<Item = &'a StatusLine> + 'a {
    let from = loss.start_ns + grace.0.as_nanos() as u64;
    let (to, nodes) = (loss.end_ns, loss.nodes.clone());
    status
        .iter()
        .filter(move |s| s.up && s.time_ns >= from && s.time_ns < to && nodes.contains(&s.node))
}

/// No node without a quorum says it leads once `grace` has passed (check-quorum makes a cut-off leader step down).
pub fn no_leader_without_quorum(
    status: &[StatusLine],
    losses: &[QuorumLoss],
    grace: ExpectDuration,
) -> Judged {
    let mut seen = 0;
    let mut bad = Vec::new();
    for loss in losses {
        let lines: Vec<&StatusLine> = settled(status, loss, grace).collect();
        seen += usize::from(!lines.is_empty());
        if let Some(l) = lines.iter().find(|s| s.role.as_deref() == Some("leader")) {
            bad.push(format!(
                "n{} led term {} at {} without a quorum (nodes {:?} cut off or alone since {})",
                l.node,
                l.term.unwrap_or(0),
                secs(l.time_ns),
                loss.nodes,
                secs(loss.start_ns)
            ));
        }
    }
    if seen == 0 {
        return not_evaluated(format!(
            "no status poll of a node without a quorum more than {grace} into a loss ({} loss(es))",
            losses.len()
        ));
    }
    judged(
        &bad,
        seen,
        "quorum loss(es) polled: no node without a quorum led",
    )
}

/// The term of a node without a quorum does not climb once `grace` has passed (pre-vote).
pub fn term_stable_without_quorum(
    status: &[StatusLine],
    losses: &[QuorumLoss],
    grace: ExpectDuration,
) -> Judged {
    let mut seen = 0;
    let mut bad = Vec::new();
    for loss in losses {
        let mut first: BTreeMap<u64, u64> = BTreeMap::new();
        let mut polls: BTreeMap<u64, usize> = BTreeMap::new();
        for s in settled(status, loss, grace) {
            let Some(term) = s.term else { continue };
            *polls.entry(s.node).or_default() += 1;
            let was = *first.entry(s.node).or_insert(term);
            if term > was {
                bad.push(format!(
                    "n{} went from term {was} to {term} at {} without a quorum",
                    s.node,
                    secs(s.time_ns)
                ));
                first.insert(s.node, term);
            }
        }
        seen += polls.values().filter(|&&n| n >= 2).count();
    }
    if seen == 0 {
        return not_evaluated("no node without a quorum was polled twice after the grace period");
    }
    judged(
        &bad,
        seen,
        "node(s) polled without a quorum kept their term",
    )
}

/// The commit index of the nodes without a quorum does not pass what they knew once `grace` had passed.
pub fn no_commit_without_quorum(
    status: &[StatusLine],
    losses: &[QuorumLoss],
    grace: ExpectDuration,
) -> Judged {
    let mut seen = 0;
    let mut bad = Vec::new();
    for loss in losses {
        let lines: Vec<&StatusLine> = settled(status, loss, grace)
            .filter(|s| s.commit_index.is_some())
            .collect();
        let Some(first) = lines.first() else { continue };
        // The group's commit index in the first poll round after the grace period: followers may still learn it
        // from their (cut-off) leader, but nothing beyond it can be committed without a majority.
        let round_end = first.time_ns + crate::status_poll::PERIOD.as_nanos() as u64 / 2;
        let base = lines
            .iter()
            .filter(|s| s.time_ns <= round_end)
            .filter_map(|s| s.commit_index)
            .max()
            .unwrap_or(0);
        seen += 1;
        if let Some(s) = lines.iter().find(|s| s.commit_index > Some(base)) {
            bad.push(format!(
                "n{} committed up to {} at {} while {:?} had no quorum (it knew {base} at {})",
                s.node,
                s.commit_index.unwrap_or(0),
                secs(s.time_ns),
                loss.nodes,
                secs(first.time_ns)
            ));
        }
    }
    if seen == 0 {
        return not_evaluated(
            "no commit index of a node without a quorum was polled after the grace period",
        );
    }
    judged(
        &bad,
        seen,
        "quorum loss(es) polled: nothing committed without a quorum",
    )
}

/// No write is acknowledged while process faults leave no majority running.
pub fn no_writes_without_quorum(ops: &[Op], losses: &[QuorumLoss]) -> Judged {
    let mut tried = 0;
    let mut bad = Vec::new();
    for loss in losses.iter().filter(|l| l.by_processes) {
        for op in ops.iter().filter(|o| o.f != OpFunction::Read) {
            if op.invoke_ns < loss.start_ns || op.invoke_ns >= loss.end_ns {
                continue;
            }
            tried += 1;
            if op.outcome == OpOutcome::Ok && op.complete_ns.is_some_and(|c| c < loss.end_ns) {
                bad.push(format!(
                    "a {:?} by process {} invoked at {} was acknowledged at {} with a majority down",
                    op.f,
                    op.process,
                    secs(op.invoke_ns),
                    secs(op.complete_ns.unwrap_or(0))
                ));
            }
        }
    }
    if tried == 0 {
        return not_evaluated("no write was invoked while process faults left no majority running");
    }
    judged(
        &bad,
        tried,
        "write(s) tried without a quorum, none acknowledged",
    )
}

/// The effective leader (the one a majority follows) after every poll round, in time order.
fn leaders_over_time(status: &[StatusLine], nodes: u64) -> Vec<(u64, Option<(u64, u64)>)> {
    let mut sorted = status.to_vec();
    sorted.sort_by_key(|s| (s.time_ns, s.node));
    let mut latest: BTreeMap<u64, StatusLine> = BTreeMap::new();
    poll_rounds(&sorted)
        .into_iter()
        .map(|(t, round)| {
            for s in round {
                latest.insert(s.node, s.clone());
            }
            let view: BTreeMap<u64, &StatusLine> = latest.iter().map(|(k, v)| (*k, v)).collect();
            (t, effective_leader(&view, nodes))
        })
        .collect()
}

/// After each quorum loss ends, a leader a majority follows within `bound`.
pub fn leader_after_quorum_within(
    status: &[StatusLine],
    nodes: u64,
    losses: &[QuorumLoss],
    bound: ExpectDuration,
) -> Judged {
    let rounds = leaders_over_time(status, nodes);
    let last = rounds.last().map_or(0, |r| r.0);
    let mut seen = 0;
    let mut bad = Vec::new();
    for loss in losses.iter().filter(|l| l.end_ns < last) {
        seen += 1;
        let back = rounds
            .iter()
            .find(|(t, l)| *t >= loss.end_ns && l.is_some())
            .map(|(t, _)| *t - loss.end_ns);
        let what = format!("a quorum returned at {}", secs(loss.end_ns));
        bad.extend(lateness(
            back,
            bound,
            &what,
            "a leader",
            "no leader by the last poll",
        ));
    }
    if seen == 0 {
        return not_evaluated("no quorum loss ended while the status was polled");
    }
    judged(
        &bad,
        seen,
        "quorum loss(es) ended, each followed by a leader in time",
    )
}

/// What is wrong when something `what` describes took `elapsed` ns (None: it never happened) against `bound`:
/// "`what` and `done` only after N ms", "`what` and `never`", or nothing when it came in time.
fn lateness(
    elapsed: Option<u64>,
    bound: ExpectDuration,
    what: &str,
    done: &str,
    never: &str,
) -> Option<String> {
    match elapsed {
        Some(ns) if ns as u128 <= bound.0.as_nanos() => None,
        Some(ns) => Some(format!(
            "{what} and {done} only after {:.0} ms",
            ns as f64 / 1e6
        )),
        None => Some(format!("{what} and {never}")),
    }
}

/// From the first leader on, the same leader in the same term for `span`, every node in that term, every other
/// node naming it as leader, and no follower's election timer firing (each hears the leader's heartbeats within
/// an election timeout).
pub fn leader_stable_for(status: &[StatusLine], nodes: u64, span: ExpectDuration) -> Judged {
    let rounds = leaders_over_time(status, nodes);
    let Some(&(t0, Some((leader, term)))) = rounds.iter().find(|r| r.1.is_some()) else {
        return not_evaluated("no leader was seen in the status polls");
    };
    let until = t0 + span.0.as_nanos() as u64;
    if rounds.last().map_or(0, |r| r.0) < until {
        return not_evaluated(format!(
            "the status polls end before {span} after the first leader (n{leader} at {})",
            secs(t0)
        ));
    }
    let mut bad = Vec::new();
    for (t, l) in rounds.iter().filter(|(t, _)| *t >= t0 && *t <= until) {
        if *l != Some((leader, term)) {
            bad.push(format!(
                "at {} the leader was {l:?}, not n{leader} in term {term}",
                secs(*t)
            ));
        }
    }
    for s in status
        .iter()
        .filter(|s| s.time_ns >= t0 && s.time_ns <= until)
    {
        if !s.up {
            bad.push(format!("n{} did not answer at {}", s.node, secs(s.time_ns)));
        } else if s.term != Some(term) {
            bad.push(format!(
                "n{} was in term {:?} at {}",
                s.node,
                s.term,
                secs(s.time_ns)
            ));
        } else if s.node != leader && s.leader != Some(leader) {
            bad.push(format!(
                "n{} named {:?} as leader at {} (not hearing n{leader})",
                s.node,
                s.leader,
                secs(s.time_ns)
            ));
        }
    }
    bad.extend(election_timers_fired(status, leader, t0, until));
    judged(
        &bad,
        rounds
            .iter()
            .filter(|(t, _)| *t >= t0 && *t <= until)
            .count(),
        &format!(
            "poll rounds from {}: n{leader} led term {term} throughout, followed by all",
            secs(t0)
        ),
    )
}

/// Followers whose election timer fired between `from` and `until` (their count of elections rose): each went
/// an election timeout without hearing `leader`, so it did not acknowledge its heartbeats in time. Nodes whose
/// target does not report the count are not judged by this part.
fn election_timers_fired(status: &[StatusLine], leader: u64, from: u64, until: u64) -> Vec<String> {
    let mut first: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut bad = Vec::new();
    for s in status
        .iter()
        .filter(|s| s.node != leader && s.time_ns >= from && s.time_ns <= until)
    {
        let Some(count) = s.elections_started else {
            continue;
        };
        let (since, before) = *first.entry(s.node).or_insert((s.time_ns, count));
        if count > before {
            bad.push(format!(
                "n{}'s election timer fired {} time(s) between {} and {} (it went an election timeout without hearing n{leader})",
                s.node,
                count - before,
                secs(since),
                secs(s.time_ns)
            ));
            first.insert(s.node, (s.time_ns, count));
        }
    }
    bad
}

/// Every node a kill or pause hit reaches, within `bound` of its return, the highest commit index any node had
/// when it returned.
pub fn catch_up_within(
    status: &[StatusLine],
    windows: &[FaultWindow],
    bound: ExpectDuration,
) -> Judged {
    let last = status.iter().map(|s| s.time_ns).max().unwrap_or(0);
    let mut seen = 0;
    let mut bad = Vec::new();
    for w in windows
        .iter()
        .filter(|w| DOWN_KINDS.contains(&w.kind.as_str()) && w.end_ns < last)
    {
        let target = status
            .iter()
            .filter(|s| s.time_ns <= w.end_ns)
            .filter_map(|s| s.commit_index)
            .max()
            .unwrap_or(0);
        for &node in &w.nodes {
            seen += 1;
            let reached = status
                .iter()
                .filter(|s| s.node == node && s.time_ns >= w.end_ns)
                .find(|s| s.commit_index.is_some_and(|c| c >= target))
                .map(|s| s.time_ns - w.end_ns);
            let what = format!("n{node} returned at {}", secs(w.end_ns));
            let reached_it = format!("reached commit index {target}");
            let never = format!("never reached commit index {target}");
            bad.extend(lateness(reached, bound, &what, &reached_it, &never));
        }
    }
    if seen == 0 {
        return not_evaluated("no node returned from a kill or pause while the status was polled");
    }
    judged(
        &bad,
        seen,
        "return(s) from a kill or pause, each caught up in time",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn window(kind: &str, nodes: &[u64], start_s: f64, end_s: f64) -> FaultWindow {
        FaultWindow {
            id: 0,
            kind: kind.into(),
            target: "random".into(),
            nodes: nodes.to_vec(),
            start_ns: (start_s * S as f64) as u64,
            end_ns: (end_s * S as f64) as u64,
            closed_by: "end".into(),
            note: None,
        }
    }

    fn line(
        t_ms: u64,
        node: u64,
        role: &str,
        term: u64,
        leader: Option<u64>,
        commit: u64,
    ) -> StatusLine {
        StatusLine {
            time_ns: t_ms * 1_000_000,
            node,
            up: true,
            role: Some(role.into()),
            term: Some(term),
            leader,
            commit_index: Some(commit),
            applied_index: Some(commit),
            clock_offset_ms: None,
            elections_started: None,
        }
    }

    fn down(t_ms: u64, node: u64) -> StatusLine {
        StatusLine {
            time_ns: t_ms * 1_000_000,
            node,
            up: false,
            role: None,
            term: None,
            leader: None,
            commit_index: None,
            applied_index: None,
            clock_offset_ms: None,
            elections_started: None,
        }
    }

    fn d(ms: u64) -> ExpectDuration {
        ExpectDuration(std::time::Duration::from_millis(ms))
    }

    #[test]
    fn quorum_losses_come_from_overlapping_kills_and_minority_partitions() {
        let windows = [
            window("kill", &[2], 1.0, 5.0),
            window("pause", &[3], 2.0, 4.0),
            window("kill", &[1], 6.0, 7.0),
            window("partition", &[1], 8.0, 9.0),
            window("partition", &[1, 2, 3], 10.0, 11.0),
        ];
        let losses = quorum_losses(&windows, 3);
        assert_eq!(losses.len(), 2, "{losses:?}");
        assert_eq!(losses[0].nodes, BTreeSet::from([1]));
        assert_eq!((losses[0].start_ns, losses[0].end_ns), (2 * S, 4 * S));
        assert!(losses[0].by_processes);
        assert_eq!(losses[1].nodes, BTreeSet::from([1]));
        assert!(!losses[1].by_processes);
    }

    /// A lone survivor that keeps leading, or whose term climbs, fails; one that steps down and waits passes.
    #[test]
    fn a_lone_leader_and_a_climbing_term_are_caught() {
        let losses = quorum_losses(&[window("kill", &[2, 3], 1.0, 5.0)], 3);
        let good = [
            line(1100, 1, "leader", 2, Some(1), 9),
            line(2500, 1, "pre-candidate", 2, None, 9),
            line(4500, 1, "pre-candidate", 2, None, 9),
        ];
        let grace = d(1000);
        assert_eq!(
            no_leader_without_quorum(&good, &losses, grace).0,
            CheckVerdict::Pass
        );
        assert_eq!(
            term_stable_without_quorum(&good, &losses, grace).0,
            CheckVerdict::Pass
        );
        assert_eq!(
            no_commit_without_quorum(&good, &losses, grace).0,
            CheckVerdict::Pass
        );
        let stuck = [
            line(2500, 1, "leader", 2, Some(1), 9),
            line(4500, 1, "leader", 2, Some(1), 9),
        ];
        assert_eq!(
            no_leader_without_quorum(&stuck, &losses, grace).0,
            CheckVerdict::Fail
        );
        let climbing = [
            line(2500, 1, "candidate", 3, None, 9),
            line(4500, 1, "candidate", 5, None, 9),
        ];
        assert_eq!(
            term_stable_without_quorum(&climbing, &losses, grace).0,
            CheckVerdict::Fail
        );
        let committing = [
            line(2500, 1, "leader", 2, Some(1), 9),
            line(4500, 1, "leader", 2, Some(1), 12),
        ];
        assert_eq!(
            no_commit_without_quorum(&committing, &losses, grace).0,
            CheckVerdict::Fail
        );
        // Nothing polled in the loss: not evaluated, never a pass.
        assert_eq!(
            no_leader_without_quorum(&[], &losses, grace).0,
            CheckVerdict::NotEvaluated
        );
    }

    fn op(f: OpFunction, invoke_s: f64, complete_s: f64, outcome: OpOutcome) -> Op {
        Op {
            process: 0,
            f,
            key: None,
            invoke_index: 0,
            complete_index: Some(1),
            invoke_ns: (invoke_s * S as f64) as u64,
            complete_ns: Some((complete_s * S as f64) as u64),
            outcome,
            written: None,
            read: None,
        }
    }

    #[test]
    fn a_write_acknowledged_with_the_majority_down_is_caught() {
        let losses = quorum_losses(&[window("kill", &[2, 3], 1.0, 5.0)], 3);
        let refused = [op(OpFunction::Write, 2.0, 2.5, OpOutcome::Info)];
        assert_eq!(
            no_writes_without_quorum(&refused, &losses).0,
            CheckVerdict::Pass
        );
        let acked = [op(OpFunction::Cas, 2.0, 2.5, OpOutcome::Ok)];
        assert_eq!(
            no_writes_without_quorum(&acked, &losses).0,
            CheckVerdict::Fail
        );
        let reads_only = [op(OpFunction::Read, 2.0, 2.5, OpOutcome::Ok)];
        assert_eq!(
            no_writes_without_quorum(&reads_only, &losses).0,
            CheckVerdict::NotEvaluated
        );
    }

    fn steady(from_ms: u64, to_ms: u64, leader: u64, term: u64) -> Vec<StatusLine> {
        (from_ms / 250..=to_ms / 250)
            .flat_map(|i| {
                (1..=3).map(move |n| {
                    let role = if n == leader { "leader" } else { "follower" };
                    line(i * 250 + n, n, role, term, Some(leader), i)
                })
            })
            .collect()
    }

    #[test]
    fn a_stable_leader_passes_and_a_change_fails() {
        let ok = steady(0, 6000, 1, 2);
        assert_eq!(leader_stable_for(&ok, 3, d(5000)).0, CheckVerdict::Pass);
        assert_eq!(
            leader_stable_for(&ok, 3, d(9000)).0,
            CheckVerdict::NotEvaluated
        );
        let mut changed = steady(0, 3000, 1, 2);
        changed.extend(steady(3250, 6000, 2, 3));
        assert_eq!(
            leader_stable_for(&changed, 3, d(5000)).0,
            CheckVerdict::Fail
        );
    }

    #[test]
    fn a_follower_whose_election_timer_fires_under_a_steady_leader_fails_stability() {
        let counted = |lines: Vec<StatusLine>, fired_at_ms: u64| -> Vec<StatusLine> {
            lines
                .into_iter()
                .map(|mut l| {
                    let fired = l.node == 3 && l.time_ns >= fired_at_ms * 1_000_000;
                    l.elections_started = Some(1 + u64::from(fired));
                    l
                })
                .collect()
        };
        let quiet = counted(steady(0, 6000, 1, 2), u64::MAX / 2_000_000);
        assert_eq!(leader_stable_for(&quiet, 3, d(5000)).0, CheckVerdict::Pass);
        // n3 went an election timeout without hearing n1 (its pre-vote was refused, so role and term held).
        let (verdict, message) =
            leader_stable_for(&counted(steady(0, 6000, 1, 2), 3000), 3, d(5000));
        assert_eq!(verdict, CheckVerdict::Fail);
        assert!(
            message.contains("n3's election timer fired 1 time(s)"),
            "{message}"
        );
    }

    #[test]
    fn a_leader_after_the_quorum_returns_and_catch_up_are_timed() {
        let losses = quorum_losses(&[window("kill", &[2, 3], 1.0, 2.0)], 3);
        let mut status = steady(0, 900, 1, 2);
        status.extend([down(1250, 2), down(1250, 3)]);
        status.extend(steady(2500, 4000, 1, 3));
        assert_eq!(
            leader_after_quorum_within(&status, 3, &losses, d(1000)).0,
            CheckVerdict::Pass
        );
        assert_eq!(
            leader_after_quorum_within(&status, 3, &losses, d(100)).0,
            CheckVerdict::Fail
        );
        let windows = [window("kill", &[2], 1.0, 2.0)];
        assert_eq!(
            catch_up_within(&status, &windows, d(1000)).0,
            CheckVerdict::Pass
        );
        let stuck: Vec<StatusLine> = status
            .iter()
            .cloned()
            .map(|mut s| {
                if s.node == 2 && s.time_ns > 2 * S {
                    s.commit_index = Some(0);
                }
                s
            })
            .collect();
        assert_eq!(
            catch_up_within(&stuck, &windows, d(1000)).0,
            CheckVerdict::Fail
        );
    }
}
