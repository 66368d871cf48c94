//! Building a report from a run folder: read the files, compute the figures, evaluate the checks and
//! expectations. A pure function of the folder's files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::ReportError;
use super::expect::{self, Evidence, Expectations};
use super::figures::{self, FaultCover, WindowSource};
use super::model::{self, FinalReadCounts, NodeExit, OpFunction, OpOutcome, RunEvent, RunFolder};
use super::schema::{
    FailedFault, Faults, FinalReads, LinKey, Linearizability, Report, RunInfo, StoppedEarly,
    REPORT_SCHEMA_VERSION,
};
use super::verdict::{overall_verdict, violations, CheckResult, CheckVerdict, ViolationKind};

/// With membership faults: every change the runner asked for was committed, or the plan's own faults left no
/// undisturbed majority to commit it (which is a tool error, reported as such). A change that did not commit
/// while a majority of the members ran undisturbed is the system's failure to make progress.
fn membership_progress_check(events: Option<&[RunEvent]>) -> Option<CheckResult> {
    let changes: Vec<Option<&String>> = events
        .unwrap_or_default()
        .iter()
        .filter_map(|e| match e {
            RunEvent::Membership { stuck, .. } => Some(stuck.as_ref()),
            _ => None,
        })
        .collect();
    if changes.is_empty() {
        return None;
    }
    let stuck: Vec<&str> = changes.iter().flatten().map(|s| s.as_str()).collect();
    Some(CheckResult {
        id: "membership-progress".into(),
        name: "every membership change commits while a majority of the members runs undisturbed"
            .into(),
        verdict: if stuck.is_empty() {
            CheckVerdict::Pass
        } else {
            CheckVerdict::Fail
        },
        message: if stuck.is_empty() {
            format!("{} membership change(s), none stuck", changes.len())
        } else {
            stuck.join("; ")
        },
    })
}

/// The intended membership over time (membership faults), from events.jsonl: (from ns, members), starting with
/// the `nodes` initial ones; empty without membership changes.
fn membership_timeline(events: Option<&[RunEvent]>, nodes: u64) -> Vec<(u64, Vec<u64>)> {
    let changes: Vec<(u64, Vec<u64>)> = events
        .unwrap_or_default()
        .iter()
        .filter_map(|e| match e {
            RunEvent::Membership {
                time_ns, members, ..
            } => Some((*time_ns, members.clone())),
            _ => None,
        })
        .collect();
    if changes.is_empty() {
        return changes;
    }
    std::iter::once((0, (1..=nodes).collect()))
        .chain(changes)
        .collect()
}

/// When the fault phase started, ns since the run started: its phase line in events.jsonl, else the warm-up's
/// start plus the planned warm-up (a run that stopped during the warm-up has no fault phase).
fn fault_phase_ns(events: Option<&[RunEvent]>, manifest: &model::Manifest) -> Option<u64> {
    let phase = |wanted: &str| {
        events?.iter().find_map(|e| match e {
            RunEvent::Phase { time_ns, name } if name == wanted => Some(*time_ns),
            _ => None,
        })
    };
    phase("faults").or_else(|| {
        let warmup = manifest.plan_duration("/warmup")?;
        Some(phase("warmup")? + warmup.as_nanos() as u64)
    })
}

/// The first evidence of each violation, ns since the run started, when known.
fn violation_times(
    kinds: &[ViolationKind],
    lin: &Option<model::CheckView>,
    lost: &super::figures::LostWrites,
    exits_ns: &[u64],
    convergence: Option<&model::Convergence>,
) -> Vec<u64> {
    let mut times = Vec::new();
    for kind in kinds {
        let t = match kind {
            // The completion of the op no linearization reaches: the first prefix of the key's history that
            // cannot be linearized ends there.
            ViolationKind::NotLinearizable => lin.as_ref().and_then(|view| {
                view.keys
                    .iter()
                    .filter_map(|k| {
                        let f = k.counterexample.as_ref()?.get("failed_op")?;
                        f.get("complete_time_ns")
                            .and_then(|v| v.as_u64())
                            .or_else(|| f.get("invoke_time_ns")?.as_u64())
                    })
                    .min()
            }),
            ViolationKind::AcknowledgedWriteLost => lost
                .lost
                .iter()
                .map(|l| (l.acknowledged_s * 1e9).round() as u64)
                .min(),
            ViolationKind::NodeCrashed => exits_ns.iter().copied().min(),
            ViolationKind::ReplicasDiverge => convergence.and_then(|c| c.time_ns),
        };
        times.extend(t);
    }
    times
}

fn seconds_between(from_ns: u64, to_ns: u64) -> f64 {
    figures::round3((to_ns as f64 - from_ns as f64) / 1e9)
}

/// The history's final reads when outcome.json does not count them: reads in the `final-reads` phase when
/// events.jsonl marks it, else the read-only processes that started after every other process had finished.
fn final_reads_from_history(
    ops: &[model::Op],
    events: Option<&[RunEvent]>,
) -> Option<(FinalReadCounts, String)> {
    let phase_ns = events.and_then(|ev| {
        ev.iter().find_map(|e| match e {
            RunEvent::Phase { time_ns, name } if name == "final-reads" => Some(*time_ns),
            _ => None,
        })
    });
    let finals: Vec<&model::Op> = match phase_ns {
        Some(t) => ops
            .iter()
            .filter(|o| o.f == OpFunction::Read && o.invoke_ns >= t)
            .collect(),
        None => {
            let mut readers: BTreeMap<u64, bool> = BTreeMap::new();
            for o in ops {
                let only_reads = readers.entry(o.process).or_insert(true);
                *only_reads &= o.f == OpFunction::Read;
            }
            let others_done = ops
                .iter()
                .filter(|o| !readers[&o.process])
                .map(|o| o.complete_index.unwrap_or(o.invoke_index))
                .max()?;
            let first_invoke: BTreeMap<u64, u64> = ops
                .iter()
                .rev()
                .map(|o| (o.process, o.invoke_index))
                .collect();
            let finals: BTreeSet<u64> = readers
                .iter()
                .filter(|&(p, &only)| only && first_invoke[p] > others_done)
                .map(|(&p, _)| p)
                .collect();
            ops.iter().filter(|o| finals.contains(&o.process)).collect()
        }
    };
    if finals.is_empty() {
        return None;
    }
    let attempted: BTreeSet<Option<&str>> = finals.iter().map(|o| o.key.as_deref()).collect();
    let ok: BTreeSet<Option<&str>> = finals
        .iter()
        .filter(|o| o.outcome == OpOutcome::Ok)
        .map(|o| o.key.as_deref())
        .collect();
    let source = if phase_ns.is_some() {
        "the history's final-reads phase"
    } else {
        "read-only processes at the end of the history"
    };
    Some((
        FinalReadCounts {
            ok: ok.len() as u64,
            attempted: attempted.len() as u64,
        },
        source.to_owned(),
    ))
}

/// Labels every window with its fault's target as planned (`random`, `minority`, `leader`) rather than the nodes it
/// resolved to (kept in `nodes`), from the manifest's timeline (`id` → `plan_index`) and the plan's faults, so the
/// fault lane has one row per planned fault instead of one per node set.
fn planned_targets(
    timeline: &[serde_json::Value],
    plan: &serde_json::Value,
    windows: &mut [figures::FaultWindow],
) {
    let planned: BTreeMap<u64, String> = timeline
        .iter()
        .filter_map(|t| {
            let id = t.get("id")?.as_u64()?;
            let index = t.get("plan_index")?.as_u64()?;
            let target = plan.get("faults")?.get(index as usize)?.get("target")?;
            let text = match target {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => return None,
                other => other.to_string(),
            };
            Some((id, text))
        })
        .collect();
    for w in windows {
        if let Some(t) = planned.get(&w.id) {
            w.target.clone_from(t);
        }
    }
}

/// Checks the history with the plan's model and time limit (the checker's default step budget otherwise).
fn check_history(run_dir: &Path, folder: &RunFolder) -> Result<checker::CheckReport, ReportError> {
    let model_name = folder
        .manifest
        .plan
        .pointer("/workload/model")
        .and_then(|v| v.as_str())
        .or_else(|| folder.history.meta.get("model").and_then(|v| v.as_str()))
        .unwrap_or("cas-register");
    let model = match model_name {
        "register" => checker::ModelKind::Register,
        _ => checker::ModelKind::CasRegister,
    };
    let limit = folder
        .manifest
        .plan_duration("/workload/check_time_limit")
        .unwrap_or(Duration::from_secs(60));
    let defaults = checker::Budget::default();
    let budget = checker::Budget::new(
        defaults.steps_max_per_key,
        defaults.cache_bytes_max_per_key,
        Some(Instant::now() + limit),
    );
    let options = checker::CheckOptions::new(model).with_budget(budget);
    let path = run_dir.join("history.jsonl");
    checker::check_file(&path, &options).map_err(|e| ReportError::Parse {
        path: path.display().to_string(),
        line: 0,
        message: format!("the checker cannot read it: {e}"),
    })
}

fn linearizability_from(view: &model::CheckView, source: &str) -> Linearizability {
    Linearizability {
        verdict: view.verdict.clone(),
        source: source.to_owned(),
        model: view.model.clone(),
        keys_linearizable: view.keys_linearizable,
        keys_not_linearizable: view.keys_not_linearizable,
        keys_unknown: view.keys_unknown,
        keys: view
            .keys
            .iter()
            .map(|k| LinKey {
                key: k.key.clone(),
                verdict: k.verdict.clone(),
                unknown_reason: k.unknown_reason.clone(),
                failed_op: k.counterexample.as_ref().and_then(|c| {
                    let f = c.get("failed_op")?;
                    Some(format!(
                        "p{} {} ({})",
                        f.get("process")?.as_u64()?,
                        f.get("op")?.as_str()?,
                        f.get("outcome")?.as_str()?
                    ))
                }),
            })
            .collect(),
    }
}

fn key_text(key: &serde_json::Value) -> String {
    match key {
        serde_json::Value::Null => "(the register)".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn linearizability_check(lin: &Linearizability) -> CheckResult {
    let model = lin.model.as_deref().unwrap_or("cas-register");
    let (verdict, message) = match lin.verdict.as_str() {
        "linearizable" => (
            CheckVerdict::Pass,
            format!(
                "{} key(s) linearizable as {model} ({})",
                lin.keys_linearizable, lin.source
            ),
        ),
        "not-linearizable" => {
            let bad: Vec<String> = lin
                .keys
                .iter()
                .filter(|k| k.verdict == "not-linearizable")
                .take(5)
                .map(|k| match &k.failed_op {
                    Some(op) => format!("key {} could not place {op}", key_text(&k.key)),
                    None => format!("key {}", key_text(&k.key)),
                })
                .collect();
            (
                CheckVerdict::Fail,
                format!(
                    "{} of {} key(s) not linearizable: {}; see counterexample.html",
                    lin.keys_not_linearizable,
                    lin.keys_linearizable + lin.keys_not_linearizable + lin.keys_unknown,
                    bad.join("; ")
                ),
            )
        }
        "unknown" => (
            CheckVerdict::Unknown,
            format!(
                "{} key(s) undecided within the checker's budget ({}); {} linearizable",
                lin.keys_unknown,
                lin.keys
                    .iter()
                    .filter_map(|k| k.unknown_reason.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", "),
                lin.keys_linearizable
            ),
        ),
        // No op could be checked (none completed, or every one failed): the history proves nothing, which the
        // ops expectations (min_ok_ops) turn into a failure; this check itself has nothing to say.
        "empty" => (
            CheckVerdict::NotEvaluated,
            "not evaluated: the history has no operation that could be checked, so it proves nothing".into(),
        ),
        other => (
            CheckVerdict::ToolError,
            format!("check.json has an unknown verdict {other:?}"),
        ),
    };
    CheckResult {
        id: "linearizability".into(),
        name: "history is linearizable".into(),
        verdict,
        message,
    }
}

/// Builds the report of a run folder from its files alone. Deterministic: no clock, no path of the folder in
/// the result (the only exception: when check.json is missing and the history must be checked here, a check that
/// runs out of the plan's time limit is unknown, as it would have been in the run).
pub fn build(run_dir: &Path) -> Result<Report, ReportError> {
    build_with_check(run_dir, None)
}

/// [`build`], given the checker's report of this run's history when the caller has it in memory (the runner,
/// right after it wrote check.json): the counterexample page is then drawn from it instead of checking the
/// history again. The report is the same as [`build`]'s.
pub fn build_with_check(
    run_dir: &Path,
    check: Option<checker::CheckReport>,
) -> Result<Report, ReportError> {
    let folder = model::read_run_folder(run_dir)?;
    let m = &folder.manifest;
    let ops = &folder.history.ops;
    let end_ns = folder.history.time_ns_max;
    let events = folder.events.as_deref();

    // Fault windows: events.jsonl, else the history's nemesis notes.
    let (windows, source) = match events {
        Some(ev) => (
            figures::windows_from_events(ev, end_ns),
            WindowSource::Events,
        ),
        None => (
            figures::windows_from_notes(&folder.history.notes, end_ns),
            WindowSource::HistoryNotes,
        ),
    };
    let mut windows = windows;
    planned_targets(&m.timeline, &m.plan, &mut windows);
    let cover = FaultCover::new(&windows);
    let counts = figures::op_counts(ops);
    let availability = figures::availability(ops, &cover);
    let latency = figures::latency(ops, &cover);
    let lost_writes = figures::lost_writes(ops);
    let nodes = m.nodes().unwrap_or(0);
    let leadership = folder
        .status
        .as_deref()
        .map(|s| figures::leadership_with(s, nodes, &windows, &membership_timeline(events, nodes)));
    let clock_offsets = folder
        .status
        .as_deref()
        .map(figures::clock_offsets_max)
        .unwrap_or_default();

    let final_reads = match folder.outcome.as_ref().and_then(|o| o.final_reads) {
        Some(fr) => Some((fr, "outcome.json".to_owned())),
        None => final_reads_from_history(ops, events),
    };

    // Linearizability: check.json, else the report checks the history itself.
    let mut own_check = check;
    let mut lin_view: Option<model::CheckView> = folder.check.clone();
    let lin = match &folder.check {
        Some(view) => linearizability_from(view, "check.json"),
        None => {
            let report = match own_check.take() {
                Some(r) => r,
                None => check_history(run_dir, &folder)?,
            };
            let view: model::CheckView = serde_json::from_value(
                serde_json::to_value(&report).expect("a check report serialises"),
            )
            .expect("the checker's report has the fields the report reads");
            own_check = Some(report);
            let lin = linearizability_from(
                &view,
                "history.jsonl (checked by the report: check.json missing)",
            );
            lin_view = Some(view);
            lin
        }
    };
    let counterexample_html = if lin.verdict == "not-linearizable" {
        let report = match own_check {
            Some(r) => Some(r),
            // check.json holds the counterexample as data; the checker renders it from its own report, so the
            // history is checked again (deterministic for the same history) to draw it.
            None => check_history(run_dir, &folder).ok(),
        };
        report
            .filter(|r| r.verdict == checker::Verdict::NotLinearizable)
            .map(|r| checker::render_html(&r))
    } else {
        None
    };

    // Node exits: outcome.json, events.jsonl and the runner's notes in the history.
    let mut exits: Vec<NodeExit> = Vec::new();
    let mut add_exit = |node: u64, status: String| {
        if !exits.iter().any(|e| e.node == node && e.status == status) {
            exits.push(NodeExit { node, status });
        }
    };
    if let Some(o) = &folder.outcome {
        for e in &o.unexpected_exits {
            add_exit(e.node, e.status.clone());
        }
    }
    for e in events.unwrap_or_default() {
        if let RunEvent::NodeExited { node, status, .. } = e {
            add_exit(*node, status.clone());
        }
    }
    for n in folder
        .history
        .notes
        .iter()
        .filter(|n| n.process == "runner" && n.f == "node-exited")
    {
        if let Some(node) = n.value.get("node").and_then(|v| v.as_u64()) {
            let status = n
                .value
                .get("status")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned();
            add_exit(node, status);
        }
    }
    exits.sort_by(|a, b| (a.node, &a.status).cmp(&(b.node, &b.status)));
    let mut exits_ns: Vec<u64> = events
        .unwrap_or_default()
        .iter()
        .filter_map(|e| match e {
            RunEvent::NodeExited { time_ns, .. } => Some(*time_ns),
            _ => None,
        })
        .collect();
    exits_ns.extend(
        folder
            .history
            .notes
            .iter()
            .filter(|n| n.process == "runner" && n.f == "node-exited")
            .filter_map(|n| n.value.get("time_ns")?.as_u64()),
    );

    // Tool errors.
    let mut tool_errors: Vec<String> = folder
        .outcome
        .as_ref()
        .map(|o| o.tool_errors.clone())
        .unwrap_or_default();
    let failed: Vec<FailedFault> = events
        .unwrap_or_default()
        .iter()
        .filter_map(|e| match e {
            RunEvent::FaultFailed {
                id, kind, error, ..
            } => Some(FailedFault {
                id: (*id != u64::MAX).then_some(*id),
                kind: kind.clone(),
                error: error.clone(),
            }),
            _ => None,
        })
        .collect();
    for f in &failed {
        tool_errors.push(format!(
            "fault {}{} could not be injected: {}",
            f.kind,
            f.id.map(|i| format!(" #{i}")).unwrap_or_default(),
            f.error
        ));
    }
    if folder.outcome.as_ref().is_some_and(|o| o.interrupted) {
        tool_errors.push("the run was interrupted before it finished".into());
    }
    let expectations = match m.plan.get("expect") {
        None | Some(serde_json::Value::Null) => Expectations::default(),
        Some(v) => match serde_json::from_value::<Expectations>(v.clone()) {
            Ok(e) => match e.validate() {
                Ok(()) => e,
                Err(msg) => {
                    tool_errors.push(format!("manifest.json: plan.{msg}"));
                    e
                }
            },
            Err(err) => {
                tool_errors.push(format!(
                    "manifest.json: plan.expect: {err}; expectations evaluated with their defaults"
                ));
                Expectations::default()
            }
        },
    };

    // Checks, then expectations.
    let mut checks = vec![linearizability_check(&lin)];
    checks.extend(membership_progress_check(events));
    checks.push(CheckResult {
        id: "node-crashes".into(),
        name: "no node of the system under test exited on its own".into(),
        verdict: if exits.is_empty() {
            CheckVerdict::Pass
        } else {
            CheckVerdict::Fail
        },
        message: if exits.is_empty() {
            "no node exited on its own".into()
        } else {
            exits
                .iter()
                .map(|e| {
                    let log = format!("nodes/n{}/node.log", e.node);
                    let said = super::last_words::last_error_line(&run_dir.join(&log))
                        .map(|line| format!("; its log's last error: {line}"))
                        .unwrap_or_default();
                    format!(
                        "n{} exited on its own ({}){said}; see {log}",
                        e.node, e.status
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        },
    });
    checks.push(CheckResult {
        id: "tool-errors".into(),
        name: "the tool did everything the plan asked".into(),
        verdict: if tool_errors.is_empty() {
            CheckVerdict::Pass
        } else {
            CheckVerdict::ToolError
        },
        message: if tool_errors.is_empty() {
            if folder.outcome.is_some() || events.is_some() {
                "no tool error".into()
            } else {
                "no tool error recorded (outcome.json and events.jsonl missing)".into()
            }
        } else {
            tool_errors.join("; ")
        },
    });
    let final_for_expect = final_reads.as_ref().map(|(fr, s)| (*fr, s.as_str()));
    checks.extend(expect::evaluate(
        &expectations,
        &Evidence {
            ops: &counts,
            final_reads: final_for_expect,
            leadership: leadership.as_ref(),
            availability: &availability,
            latency: &latency,
            lost_writes: &lost_writes,
            convergence: folder.outcome.as_ref().and_then(|o| o.convergence.as_ref()),
            status: folder.status.as_deref(),
            windows: &windows,
            all_ops: ops,
            nodes,
            membership: events.unwrap_or_default().iter().find_map(|e| match e {
                RunEvent::MembershipFinal(m) => Some(m),
                _ => None,
            }),
        },
    ));
    let kinds = violations(&checks);
    let stopped = folder
        .outcome
        .as_ref()
        .and_then(|o| o.stopped_early.clone());
    if let Some(s) = &stopped {
        // An early stop claims a certain violation; if the run's own checks do not show it, something in the
        // tool went wrong, and that is no verdict about the system.
        if !kinds.iter().any(|k| k.slug() == s.label) {
            let why = format!(
                "the run stopped early for {:?} ({}), but the checks of the whole run do not show it",
                s.label, s.reason
            );
            tool_errors.push(why.clone());
            if let Some(c) = checks.iter_mut().find(|c| c.id == "tool-errors") {
                c.verdict = CheckVerdict::ToolError;
                c.message = tool_errors.join("; ");
            }
        }
    }
    let phase_ns = fault_phase_ns(events, m);
    let first_violation_s = violation_times(
        &kinds,
        &lin_view,
        &lost_writes,
        &exits_ns,
        folder.outcome.as_ref().and_then(|o| o.convergence.as_ref()),
    )
    .into_iter()
    .min()
    .zip(phase_ns)
    .map(|(t, start)| seconds_between(start, t));
    let stopped_early = stopped.map(|s| StoppedEarly {
        after_fault_phase_s: phase_ns.map(|start| seconds_between(start, s.time_ns)),
        label: s.label,
        reason: s.reason,
    });
    let verdict = overall_verdict(&checks);

    Ok(Report {
        schema_version: REPORT_SCHEMA_VERSION,
        run: RunInfo {
            plan: m
                .plan_name()
                .map(str::to_owned)
                .or_else(|| {
                    folder
                        .history
                        .meta
                        .get("plan")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "(unnamed)".into()),
            plan_file: m.plan_file.clone(),
            seed: m.seed,
            git_commit: m.git_commit.clone(),
            started_at: m.started_at.clone(),
            target: m.target(),
            nodes: m.nodes(),
            replay: m.replay.clone(),
            tool_version: m.version.clone(),
        },
        verdict,
        violations: kinds,
        first_violation_s,
        stopped_early,
        checks,
        ops: counts,
        final_reads: final_reads.map(|(fr, source)| FinalReads {
            ok: fr.ok,
            attempted: fr.attempted,
            source,
        }),
        availability,
        latency_ms: latency,
        faults: Faults {
            planned: m.timeline.len() as u64,
            on_events: windows
                .iter()
                .filter(|w| w.id >= m.timeline.len() as u64)
                .count() as u64,
            injected: windows.len() as u64,
            source,
            covered_s: figures::round3(cover.covered_ns() as f64 / 1e9),
            windows,
            failed,
            late: figures::late_steps(events.unwrap_or_default()),
        },
        leadership,
        clock_offsets_max_ms: clock_offsets,
        linearizability: lin,
        lost_writes,
        convergence: folder.outcome.as_ref().and_then(|o| o.convergence.clone()),
        unexpected_exits: exits,
        tool_errors,
        history_seconds: figures::round3(end_ns as f64 / 1e9),
        wall_seconds: folder.outcome.as_ref().and_then(|o| o.seconds),
        missing: folder.notices.clone(),
        data: Some(Box::new(folder)),
        counterexample_html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership_event(line: serde_json::Value) -> RunEvent {
        super::super::model::parse_event(line)
            .unwrap()
            .expect("a known event")
    }

    /// No check without membership changes; a pass naming how many there were; a failure quoting every stuck
    /// removal, read from the `membership` lines of events.jsonl.
    #[test]
    fn membership_progress_fails_on_a_stuck_removal_only() {
        assert_eq!(membership_progress_check(Some(&[])), None);
        let done = membership_event(serde_json::json!({
            "time_ns": 5, "event": "membership", "id": 0, "kind": "add",
            "change": {"added": 4, "removed": null, "via": 1, "members": [1, 2, 3, 4], "note": null, "stuck": null},
            "members": [1, 2, 3, 4],
        }));
        let pass = membership_progress_check(Some(std::slice::from_ref(&done))).unwrap();
        assert_eq!(pass.verdict, CheckVerdict::Pass);
        assert_eq!(pass.message, "1 membership change(s), none stuck");
        let stuck = membership_event(serde_json::json!({
            "time_ns": 9, "event": "membership", "id": 3, "kind": "replace",
            "change": {"added": null, "removed": null, "via": null, "members": [1, 2, 3, 4],
                       "note": "not committed: the membership is unchanged",
                       "stuck": "the cluster did not commit the removal of n2 within 20s"},
            "members": [1, 2, 3, 4],
        }));
        let fail = membership_progress_check(Some(&[done, stuck])).unwrap();
        assert_eq!(fail.verdict, CheckVerdict::Fail);
        assert_eq!(
            fail.message,
            "the cluster did not commit the removal of n2 within 20s"
        );
    }
}
