//! Expectations: the plan's `[expect]` table, and their evaluation against a run's figures. Each expectation
//! gets its own verdict; one that cannot be evaluated says why ("not evaluated"), never passes silently.
//!
//! ```toml
//! [expect]
//! min_ok_ops = 200              # at least this many ops completed ok
//! final_reads_succeed = true    # every key's final read after the heal succeeded
//! leader_within = "2s"          # after each leader loss, a leader again within this
//! availability_min = 0.9        # share of ops answered outside fault windows
//! p99_healthy_max = "500ms"     # p99 latency of ops outside fault windows
//! no_lost_writes = true         # every acknowledged write is visible to the final reads or overwritten
//! converged = true              # after the heal, every node's log agrees up to the commit index
//! # The failover matrix (status timeline, see expect/cluster.rs):
//! leader_stable_for = "5s"      # the first leader leads the same term this long, followed by every node
//! quorum_loss_grace = "1s"      # how long a node without a quorum may take to notice (the checks below)
//! no_leader_without_quorum = true    # no node that cannot reach a majority leads after the grace
//! term_stable_without_quorum = true  # nor does its term climb (pre-vote)
//! no_commit_without_quorum = true    # nor does its commit index advance
//! no_writes_without_quorum = true    # no write acknowledged while kills/pauses leave no majority running
//! leader_after_quorum_within = "3s"  # once a quorum is back, a leader within this
//! catch_up_within = "5s"        # a killed or paused node reaches the commit index it missed within this
//! # Membership faults (events.jsonl's membership-final):
//! membership_final = true       # the leader's voters at the end are exactly the intended members
//! removed_nodes_exit = true     # every removed node exited as removed (status 5) or was wiped; none runs
//! ```

mod cluster;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::figures::{Availability, FaultWindow, LatencyFigures, Leadership, LostWrites, OpCounts};
use super::model::{Convergence, FinalReadCounts, MembershipFinal, Op, StatusLine};
use super::verdict::{CheckResult, CheckVerdict};

/// A duration written as "150ms", "2s", "1m 30s".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ExpectDuration(pub Duration);

impl fmt::Debug for ExpectDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ExpectDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for ExpectDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ExpectDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(ExpectDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "expected a duration like \"500ms\" or \"2s\", got {text:?} ({e})"
                ))
            })
    }
}

impl ExpectDuration {
    fn ms(self) -> f64 {
        self.0.as_secs_f64() * 1000.0
    }
}

/// What a run must show to pass: the plan's `[expect]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectations {
    /// At least this many operations completed ok (a run that did nothing proves nothing).
    pub min_ok_ops: u64,
    /// Every key's final read (after healing) must succeed: the cluster recovered.
    pub final_reads_succeed: bool,
    /// After each leader loss, a leader a majority follows again within this (from the status polls).
    pub leader_within: Option<ExpectDuration>,
    /// The share of ops answered (ok, or a cas that found another value) outside fault windows, at least this.
    pub availability_min: Option<f64>,
    /// The p99 latency of definite answers to ops invoked outside fault windows, at most this.
    pub p99_healthy_max: Option<ExpectDuration>,
    /// Every acknowledged write is visible to the final reads or overwritten by a later write.
    pub no_lost_writes: bool,
    /// After the heal, every node's log agrees up to the commit index (outcome.json's convergence).
    pub converged: bool,
    /// From the first leader on, the same leader in the same term for this long, followed by every node.
    pub leader_stable_for: Option<ExpectDuration>,
    /// How long a node without a quorum may take to notice it (the `*_without_quorum` checks start after it).
    pub quorum_loss_grace: ExpectDuration,
    /// No node that cannot reach a majority says it leads (check-quorum).
    pub no_leader_without_quorum: bool,
    /// The term of a node that cannot reach a majority does not climb (pre-vote).
    pub term_stable_without_quorum: bool,
    /// The commit index of nodes that cannot reach a majority does not advance.
    pub no_commit_without_quorum: bool,
    /// No write is acknowledged while kills or pauses leave no majority running.
    pub no_writes_without_quorum: bool,
    /// Once a quorum is back, a leader a majority follows within this.
    pub leader_after_quorum_within: Option<ExpectDuration>,
    /// A node back from a kill or pause reaches the commit index it missed within this.
    pub catch_up_within: Option<ExpectDuration>,
    /// The leader's voters at the end are exactly the members the runner intended.
    pub membership_final: bool,
    /// Every node the runner removed exited as removed (status 5) or was wiped; none still runs.
    pub removed_nodes_exit: bool,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            min_ok_ops: 1,
            final_reads_succeed: true,
            leader_within: None,
            availability_min: None,
            p99_healthy_max: None,
            no_lost_writes: true,
            converged: true,
            leader_stable_for: None,
            quorum_loss_grace: ExpectDuration(Duration::from_secs(1)),
            no_leader_without_quorum: false,
            term_stable_without_quorum: false,
            no_commit_without_quorum: false,
            no_writes_without_quorum: false,
            leader_after_quorum_within: None,
            catch_up_within: None,
            membership_final: false,
            removed_nodes_exit: false,
        }
    }
}

impl Expectations {
    /// Checks the values fit together; the error names the field (`expect.availability_min: ...`).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(a) = self.availability_min {
            if !(0.0..=1.0).contains(&a) || a.is_nan() {
                return Err(format!(
                    "expect.availability_min: {a} is not a share between 0 and 1"
                ));
            }
        }
        if self.leader_within.is_some_and(|d| d.0.is_zero()) {
            return Err("expect.leader_within: must be longer than 0".into());
        }
        if self.p99_healthy_max.is_some_and(|d| d.0.is_zero()) {
            return Err("expect.p99_healthy_max: must be longer than 0".into());
        }
        for (field, d) in [
            ("leader_stable_for", self.leader_stable_for),
            (
                "leader_after_quorum_within",
                self.leader_after_quorum_within,
            ),
            ("catch_up_within", self.catch_up_within),
        ] {
            if d.is_some_and(|d| d.0.is_zero()) {
                return Err(format!("expect.{field}: must be longer than 0"));
            }
        }
        Ok(())
    }
}

/// The figures expectations are judged on.
#[derive(Debug)]
pub struct Evidence<'a> {
    /// Op counts.
    pub ops: &'a OpCounts,
    /// Final reads, when known, and where they were learned.
    pub final_reads: Option<(FinalReadCounts, &'a str)>,
    /// Leadership, when status polls exist.
    pub leadership: Option<&'a Leadership>,
    /// Availability.
    pub availability: &'a Availability,
    /// Latency.
    pub latency: &'a LatencyFigures,
    /// Lost writes.
    pub lost_writes: &'a LostWrites,
    /// Convergence, when outcome.json has it.
    pub convergence: Option<&'a Convergence>,
    /// The status polls, when status.jsonl exists.
    pub status: Option<&'a [StatusLine]>,
    /// The fault windows.
    pub windows: &'a [FaultWindow],
    /// Every client op.
    pub all_ops: &'a [Op],
    /// The cluster's size (0 when unknown).
    pub nodes: u64,
    /// The runner's final word on membership, when events.jsonl has it.
    pub membership: Option<&'a MembershipFinal>,
}

fn result(id: &str, name: String, verdict: CheckVerdict, message: String) -> CheckResult {
    CheckResult {
        id: format!("expect.{id}"),
        name,
        verdict,
        message,
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Evaluates every expectation that is set, in a fixed order.
pub fn evaluate(e: &Expectations, ev: &Evidence<'_>) -> Vec<CheckResult> {
    use CheckVerdict::*;
    let mut out = Vec::new();

    let ok = ev.ops.ok;
    out.push(result(
        "min_ok_ops",
        format!("at least {} ops ok", e.min_ok_ops),
        if ok >= e.min_ok_ops { Pass } else { Fail },
        format!("{ok} ops completed ok (at least {} expected)", e.min_ok_ops),
    ));

    if e.final_reads_succeed {
        let name = "every final read succeeds".to_owned();
        out.push(match ev.final_reads {
            None => result(
                "final_reads_succeed",
                name,
                NotEvaluated,
                "not evaluated: no final reads found (outcome.json missing and none in the history)".into(),
            ),
            Some((fr, _)) if fr.attempted == 0 => result(
                "final_reads_succeed",
                name,
                NotEvaluated,
                "not evaluated: no final read was attempted".into(),
            ),
            Some((fr, source)) => result(
                "final_reads_succeed",
                name,
                if fr.ok == fr.attempted { Pass } else { Fail },
                format!(
                    "{} of {} keys read after the heal ({source}){}",
                    fr.ok,
                    fr.attempted,
                    if fr.ok == fr.attempted {
                        ""
                    } else {
                        ": the cluster did not recover within the recovery period"
                    }
                ),
            ),
        });
    }

    if let Some(bound) = e.leader_within {
        out.push(evaluate_leader_within(bound, ev.leadership));
    }

    if let Some(min) = e.availability_min {
        let name = format!("availability at least {} outside fault windows", pct(min));
        let s = ev.availability.outside_faults;
        out.push(match s.share {
            None => result(
                "availability_min",
                name,
                NotEvaluated,
                "not evaluated: no op was invoked outside the fault windows".into(),
            ),
            Some(share) => result(
                "availability_min",
                name,
                if share >= min { Pass } else { Fail },
                format!(
                    "{} of ops answered outside fault windows ({} of {})",
                    pct(share),
                    s.answered,
                    s.total
                ),
            ),
        });
    }

    if let Some(max) = e.p99_healthy_max {
        let name = format!("p99 latency at most {max} while healthy");
        out.push(match ev.latency.healthy {
            None => result(
                "p99_healthy_max",
                name,
                NotEvaluated,
                "not evaluated: no definite answer to an op invoked outside the fault windows"
                    .into(),
            ),
            Some(l) => result(
                "p99_healthy_max",
                name,
                if l.p99_ms <= max.ms() { Pass } else { Fail },
                format!(
                    "p99 {:.1} ms over {} ops outside fault windows (max {:.1} ms)",
                    l.p99_ms, l.count, l.max_ms
                ),
            ),
        });
    }

    if e.no_lost_writes {
        let name = "no acknowledged write lost".to_owned();
        let lw = ev.lost_writes;
        out.push(if lw.keys_checked == 0 {
            result(
                "no_lost_writes",
                name,
                NotEvaluated,
                format!(
                    "not evaluated: no key has a successful read to check its writes against ({} key(s) with acknowledged writes unverified)",
                    lw.keys_unverified
                ),
            )
        } else if lw.lost.is_empty() {
            result(
                "no_lost_writes",
                name,
                Pass,
                format!(
                    "{} acknowledged write(s) on {} key(s) are visible to the final reads or overwritten{}",
                    lw.writes_checked,
                    lw.keys_checked,
                    if lw.keys_unverified > 0 {
                        format!("; {} key(s) without a successful final read unverified", lw.keys_unverified)
                    } else {
                        String::new()
                    }
                ),
            )
        } else {
            let shown: Vec<String> = lw
                .lost
                .iter()
                .take(5)
                .map(|l| {
                    format!(
                        "key {} write {} (acknowledged at {:.2}s, history index {}) but the final read saw {}",
                        l.key.as_deref().unwrap_or("(register)"),
                        l.value,
                        l.acknowledged_s,
                        l.index,
                        l.final_value
                    )
                })
                .collect();
            result(
                "no_lost_writes",
                name,
                Fail,
                format!(
                    "{} of {} acknowledged write(s) lost: {}{}",
                    lw.lost.len(),
                    lw.writes_checked,
                    shown.join("; "),
                    if lw.lost.len() > 5 { "; ..." } else { "" }
                ),
            )
        });
    }

    if e.converged {
        let name = "the cluster converged after the heal".to_owned();
        out.push(match ev.convergence {
            None => result(
                "converged",
                name,
                NotEvaluated,
                "not evaluated: outcome.json has no convergence check".into(),
            ),
            Some(c) if !c.checked || c.agree.is_none() => result(
                "converged",
                name,
                NotEvaluated,
                format!(
                    "not evaluated: the runner did not compare the nodes' logs{}",
                    if c.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", c.detail)
                    }
                ),
            ),
            Some(c) => result(
                "converged",
                name,
                if c.agree == Some(true) { Pass } else { Fail },
                if c.detail.is_empty() {
                    if c.agree == Some(true) {
                        "every node's log agrees up to the commit index".into()
                    } else {
                        "the nodes' logs disagree".into()
                    }
                } else {
                    c.detail.clone()
                },
            ),
        });
    }
    out.extend(evaluate_timeline(e, ev));
    out.extend(evaluate_membership(e, ev.membership));
    out
}

/// Judges `leader_within`: every leader loss ended within `bound`.
fn evaluate_leader_within(bound: ExpectDuration, leadership: Option<&Leadership>) -> CheckResult {
    use CheckVerdict::*;
    let name = format!("a leader within {bound} after each leader loss");
    match leadership {
        None => result(
            "leader_within",
            name,
            NotEvaluated,
            "not evaluated: status.jsonl is missing, so leader losses are not known".into(),
        ),
        Some(l) if l.polls < 2 => result(
            "leader_within",
            name,
            NotEvaluated,
            format!("not evaluated: only {} status poll(s)", l.polls),
        ),
        Some(l) => {
            let resolution = l
                .poll_interval_ms
                .map(|p| format!("; polls every ~{p:.0} ms"))
                .unwrap_or_default();
            let late: Vec<String> = l
                .gaps
                .iter()
                // A loss still open at the last poll is judged only once it has lasted longer
                // than the bound: the record ends there, not the cluster's chance to elect.
                .filter(|g| g.ms > bound.ms())
                .map(|g| match g.regained_ns {
                    Some(_) => format!(
                        "leader lost at {:.2}s, regained after {:.0} ms",
                        g.lost_ns as f64 / 1e9,
                        g.ms
                    ),
                    None => format!(
                        "leader lost at {:.2}s, none by the last poll ({:.0} ms later)",
                        g.lost_ns as f64 / 1e9,
                        g.ms
                    ),
                })
                .collect();
            if l.gaps.is_empty() {
                result(
                    "leader_within",
                    name,
                    Pass,
                    format!("no leader loss seen in {} polls{resolution}", l.polls),
                )
            } else if late.is_empty() {
                let open = l
                    .gaps
                    .iter()
                    .find(|g| g.regained_ns.is_none())
                    .map(|g| {
                        format!(
                            "; the loss at {:.2}s was still open at the last poll, {:.0} ms later \
                             (shorter than {bound}, so not judged)",
                            g.lost_ns as f64 / 1e9,
                            g.ms
                        )
                    })
                    .unwrap_or_default();
                result(
                    "leader_within",
                    name,
                    Pass,
                    format!(
                        "{} leader loss(es), the longest {:.0} ms without a leader{open}{resolution}",
                        l.gaps.len(),
                        l.longest_gap_ms().unwrap_or(0.0)
                    ),
                )
            } else {
                result(
                    "leader_within",
                    name,
                    Fail,
                    format!(
                        "{} of {} leader loss(es) lasted longer than {bound}: {}{resolution}",
                        late.len(),
                        l.gaps.len(),
                        late.join("; ")
                    ),
                )
            }
        }
    }
}

/// The membership expectations, judged on events.jsonl's `membership-final`.
fn evaluate_membership(e: &Expectations, m: Option<&MembershipFinal>) -> Vec<CheckResult> {
    use CheckVerdict::*;
    let missing =
        "not evaluated: events.jsonl has no membership-final line (the run stopped early, failed, \
                   or has no membership faults)";
    let mut out = Vec::new();
    if e.membership_final {
        let name = "the final membership is the intended one".to_owned();
        out.push(match m {
            None => result("membership_final", name, NotEvaluated, missing.into()),
            Some(MembershipFinal {
                voters: None,
                error,
                ..
            }) => result(
                "membership_final",
                name,
                NotEvaluated,
                format!(
                    "not evaluated: no leader reported its membership ({})",
                    error.as_deref().unwrap_or("no reason given")
                ),
            ),
            Some(f) => {
                let voters = f.voters.clone().unwrap_or_default();
                let same = voters == f.intended && f.learners.is_empty();
                result(
                    "membership_final",
                    name,
                    if same { Pass } else { Fail },
                    format!(
                        "intended {:?}; leader n{} reports voters {voters:?}{}",
                        f.intended,
                        f.leader.unwrap_or(0),
                        if f.learners.is_empty() {
                            String::new()
                        } else {
                            format!(" and learners {:?} (never promoted)", f.learners)
                        }
                    ),
                )
            }
        });
    }
    if e.removed_nodes_exit {
        let name = "every removed node exited or was refused".to_owned();
        out.push(match m {
            None => result("removed_nodes_exit", name, NotEvaluated, missing.into()),
            Some(f) if f.removed.is_empty() => result(
                "removed_nodes_exit",
                name,
                NotEvaluated,
                "not evaluated: the run removed no node".into(),
            ),
            Some(f) => {
                let fates: Vec<String> =
                    f.removed.iter().map(|(n, fate)| format!("n{n} {fate}")).collect();
                let running = f.removed.iter().any(|(_, fate)| fate == "running");
                let unknown = f
                    .removed
                    .iter()
                    .any(|(_, fate)| fate != "exited-removed" && fate != "wiped" && fate != "running");
                let verdict = match (running, unknown) {
                    (true, _) => Fail,
                    (false, true) => NotEvaluated,
                    (false, false) => Pass,
                };
                let lead = match verdict {
                    Fail => "a removed node still runs: ",
                    NotEvaluated => "not evaluated: a removed node was never started again, so whether it would be refused is unknown: ",
                    _ => "",
                };
                result("removed_nodes_exit", name, verdict, format!("{lead}{}", fates.join(", ")))
            }
        });
    }
    out
}

/// The failover expectations, judged on the status timeline (see [`cluster`]).
fn evaluate_timeline(e: &Expectations, ev: &Evidence<'_>) -> Vec<CheckResult> {
    let grace = e.quorum_loss_grace;
    let losses = cluster::quorum_losses(ev.windows, ev.nodes);
    let no_status = || -> cluster::Judged {
        (
            CheckVerdict::NotEvaluated,
            "not evaluated: status.jsonl is missing".into(),
        )
    };
    let status = ev.status.filter(|s| !s.is_empty());
    let mut out = Vec::new();
    let mut push = |id: &str, name: String, (verdict, message): cluster::Judged| {
        out.push(result(id, name, verdict, message));
    };
    if let Some(span) = e.leader_stable_for {
        push(
            "leader_stable_for",
            format!("the first leader stays, unchallenged, for {span}"),
            status.map_or_else(no_status, |s| cluster::leader_stable_for(s, ev.nodes, span)),
        );
    }
    if e.no_leader_without_quorum {
        push(
            "no_leader_without_quorum",
            format!("no node without a quorum leads ({grace} grace)"),
            status.map_or_else(no_status, |s| {
                cluster::no_leader_without_quorum(s, &losses, grace)
            }),
        );
    }
    if e.term_stable_without_quorum {
        push(
            "term_stable_without_quorum",
            format!("no term climbs without a quorum ({grace} grace)"),
            status.map_or_else(no_status, |s| {
                cluster::term_stable_without_quorum(s, &losses, grace)
            }),
        );
    }
    if e.no_commit_without_quorum {
        push(
            "no_commit_without_quorum",
            format!("nothing is committed without a quorum ({grace} grace)"),
            status.map_or_else(no_status, |s| {
                cluster::no_commit_without_quorum(s, &losses, grace)
            }),
        );
    }
    if e.no_writes_without_quorum {
        push(
            "no_writes_without_quorum",
            "no write is acknowledged with a majority down".into(),
            cluster::no_writes_without_quorum(ev.all_ops, &losses),
        );
    }
    if let Some(bound) = e.leader_after_quorum_within {
        push(
            "leader_after_quorum_within",
            format!("a leader within {bound} once a quorum is back"),
            status.map_or_else(no_status, |s| {
                cluster::leader_after_quorum_within(s, ev.nodes, &losses, bound)
            }),
        );
    }
    if let Some(bound) = e.catch_up_within {
        push(
            "catch_up_within",
            format!("a returning node catches up within {bound}"),
            status.map_or_else(no_status, |s| {
                cluster::catch_up_within(s, ev.windows, bound)
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_the_old_meaning_and_parse_from_toml() {
        let e: Expectations = toml::from_str("").unwrap();
        assert_eq!(e, Expectations::default());
        assert_eq!(e.min_ok_ops, 1);
        assert!(e.final_reads_succeed && e.no_lost_writes && e.converged);
        let e: Expectations = toml::from_str(
            "leader_within = \"2s\"\navailability_min = 0.9\np99_healthy_max = \"500ms\"",
        )
        .unwrap();
        assert_eq!(
            e.leader_within,
            Some(ExpectDuration(Duration::from_secs(2)))
        );
        assert_eq!(
            e.p99_healthy_max,
            Some(ExpectDuration(Duration::from_millis(500)))
        );
        e.validate().unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_values_are_errors_naming_them() {
        let err = toml::from_str::<Expectations>("leader_withn = \"2s\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("leader_withn"), "{err}");
        let err = toml::from_str::<Expectations>("leader_within = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("soon"), "{err}");
        let e = Expectations {
            availability_min: Some(1.5),
            ..Expectations::default()
        };
        assert!(e.validate().unwrap_err().contains("availability_min"));
        let e: Expectations = toml::from_str("catch_up_within = \"0s\"").unwrap();
        assert!(e.validate().unwrap_err().contains("expect.catch_up_within"));
        let e: Expectations =
            toml::from_str("no_leader_without_quorum = true\nquorum_loss_grace = \"500ms\"")
                .unwrap();
        assert!(e.no_leader_without_quorum && e.validate().is_ok());
        assert_eq!(e.quorum_loss_grace.0, Duration::from_millis(500));
    }

    #[test]
    fn round_trips_through_json_as_the_manifest_stores_it() {
        let e = Expectations {
            leader_within: Some(ExpectDuration(Duration::from_millis(1500))),
            ..Expectations::default()
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["leader_within"], "1s 500ms");
        let back: Expectations = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn a_leader_loss_still_open_at_the_last_poll_is_judged_only_once_longer_than_the_bound() {
        use crate::report::figures::LeaderGap;
        let bound = ExpectDuration(Duration::from_secs(2));
        let gap = |lost_s: u64, ms: f64, closed: bool| LeaderGap {
            lost_ns: lost_s * 1_000_000_000,
            regained_ns: closed.then_some(lost_s * 1_000_000_000 + (ms * 1e6) as u64),
            ms,
        };
        let judge = |gaps: Vec<LeaderGap>| {
            let l = Leadership {
                polls: 100,
                poll_interval_ms: Some(250.0),
                changes: 0,
                leaders: vec![],
                gaps,
                term_max: Some(3),
            };
            evaluate_leader_within(bound, Some(&l))
        };
        use CheckVerdict::*;
        let short_open = judge(vec![gap(3, 400.0, true), gap(15, 350.0, false)]);
        assert_eq!(short_open.verdict, Pass, "{}", short_open.message);
        assert!(
            short_open.message.contains("not judged"),
            "{}",
            short_open.message
        );
        let long_open = judge(vec![gap(15, 2500.0, false)]);
        assert_eq!(long_open.verdict, Fail, "{}", long_open.message);
        assert!(
            long_open.message.contains("none by the last poll"),
            "{}",
            long_open.message
        );
        assert_eq!(judge(vec![gap(3, 2100.0, true)]).verdict, Fail);
        assert_eq!(judge(vec![gap(3, 1900.0, true)]).verdict, Pass);
        assert_eq!(evaluate_leader_within(bound, None).verdict, NotEvaluated);
    }

    #[test]
    fn membership_expectations_judge_the_final_line_and_say_when_they_cannot() {
        let e = Expectations {
            membership_final: true,
            removed_nodes_exit: true,
            ..Expectations::default()
        };
        let verdicts = |m: Option<&MembershipFinal>| -> Vec<CheckVerdict> {
            evaluate_membership(&e, m)
                .into_iter()
                .map(|r| r.verdict)
                .collect()
        };
        use CheckVerdict::*;
        assert_eq!(verdicts(None), vec![NotEvaluated, NotEvaluated]);
        let mut m = MembershipFinal {
            intended: vec![1, 2, 4],
            leader: Some(1),
            voters: Some(vec![1, 2, 4]),
            removed: vec![(3, "exited-removed".into()), (5, "wiped".into())],
            ..MembershipFinal::default()
        };
        assert_eq!(verdicts(Some(&m)), vec![Pass, Pass]);
        m.learners = vec![4];
        m.removed.push((6, "running".into()));
        assert_eq!(verdicts(Some(&m)), vec![Fail, Fail]);
        m.voters = None;
        m.removed = vec![(3, "down".into())];
        assert_eq!(verdicts(Some(&m)), vec![NotEvaluated, NotEvaluated]);
    }
}
