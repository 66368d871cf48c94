//! The schedule: a pure function from plan and seed to the exact timeline of faults, computed before anything
//! runs. The same plan and seed always give the same timeline.

use crate::faults::network::topology::Topology;
use crate::faults::FaultSpec;
use crate::plan::{ClusterEvent, Edge, Plan, Target, TriggerSource};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::time::Duration;

/// Whom a scheduled fault hits: fixed nodes, or nodes picked by the cluster's state when it starts.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Targets {
    /// These node ids.
    Nodes(Vec<u64>),
    /// The leader at the fault's start.
    Leader,
    /// One of the followers at the fault's start: the `pick`-th modulo their number (drawn with the seed, so
    /// the same cluster state gives the same choice).
    Follower {
        /// The seeded draw.
        pick: u64,
    },
    /// The follower with the lowest applied index at the fault's start.
    Lagging,
    /// One of the members that answered at the fault's start, the `pick`-th modulo their number (plans with
    /// membership faults: a node drawn from the initial ids may no longer be a member).
    Member {
        /// The seeded draw.
        pick: u64,
    },
    /// A share of the intended members at the fault's start, dead or alive (plans with membership faults:
    /// `all`, `minority` and `majority` mean the members then, not the initial nodes). The `pick` seeds which
    /// ones, for a minority or majority.
    Members {
        /// How many of them.
        share: Share,
        /// The seeded draw.
        pick: u64,
    },
    /// The nodes the latest occurrence of another fault hit.
    SameAs {
        /// That fault's name.
        name: String,
        /// Its place in the plan.
        plan_index: usize,
    },
}

/// How many of the members [`Targets::Members`] means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Share {
    /// Fewer than half.
    Minority,
    /// More than half.
    Majority,
    /// Every one.
    All,
}

impl Share {
    /// How many of `n` members.
    fn of(self, n: usize) -> usize {
        match self {
            Share::Minority => n.saturating_sub(1) / 2,
            Share::Majority => n / 2 + 1,
            Share::All => n,
        }
    }
}

/// What the cluster looks like when a fault starts, as far as choosing its targets needs.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    /// Each node that answered: (id, whether it leads in the highest term seen, applied index if known).
    pub nodes: Vec<NodeView>,
    /// The nodes the latest occurrence of each plan fault hit, by plan index.
    pub last_hit: std::collections::HashMap<usize, Vec<u64>>,
    /// The intended members (every node the runner did not remove), answering or not.
    pub members: Vec<u64>,
}

/// One node as seen when a fault starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// Its id.
    pub id: u64,
    /// Whether it is the leader.
    pub leader: bool,
    /// Its applied index, if the target reports one.
    pub applied: Option<u64>,
}

impl Targets {
    /// Whether the nodes are only known when the fault starts (and need a [`ClusterView`]).
    pub fn decided_at_start(&self) -> bool {
        !matches!(self, Targets::Nodes(_))
    }

    /// The nodes to hit given the cluster as it is now, or why there are none.
    pub fn pick(&self, view: &ClusterView) -> Result<Vec<u64>, &'static str> {
        let followers =
            || -> Vec<NodeView> { view.nodes.iter().filter(|n| !n.leader).copied().collect() };
        let picked = match self {
            Targets::Nodes(ids) => ids.clone(),
            Targets::Leader => view
                .nodes
                .iter()
                .filter(|n| n.leader)
                .map(|n| n.id)
                .collect(),
            Targets::Follower { pick } => {
                let f = followers();
                if f.is_empty() {
                    return Err("no follower answered");
                }
                vec![f[(*pick % f.len() as u64) as usize].id]
            }
            Targets::Member { pick } => {
                if view.nodes.is_empty() {
                    return Err("no member answered");
                }
                vec![view.nodes[(*pick % view.nodes.len() as u64) as usize].id]
            }
            Targets::Lagging => {
                // Lowest applied index; ties go to the lowest id, so the choice is reproducible.
                let f = followers();
                let behind = f
                    .iter()
                    .filter(|n| n.applied.is_some())
                    .min_by_key(|n| (n.applied, n.id));
                match behind {
                    Some(n) => vec![n.id],
                    None if f.is_empty() => return Err("no follower answered"),
                    None => return Err("the target reports no applied index"),
                }
            }
            Targets::Members { share, pick } => {
                let mut rng = ChaCha8Rng::seed_from_u64(*pick);
                let count = share.of(view.members.len());
                let mut chosen: Vec<u64> = view
                    .members
                    .choose_multiple(&mut rng, count)
                    .copied()
                    .collect();
                chosen.sort_unstable();
                if chosen.is_empty() {
                    return Err("no member to target");
                }
                chosen
            }
            Targets::SameAs { plan_index, .. } => match view.last_hit.get(plan_index) {
                Some(nodes) => nodes.clone(),
                None => return Err("the fault it follows has not hit anyone yet"),
            },
        };
        if picked.is_empty() {
            return Err(match self {
                Targets::Leader => "no leader to target",
                _ => "the fault it follows hit nobody",
            });
        }
        Ok(picked)
    }
}

impl std::fmt::Display for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Targets::Nodes(ids) => {
                let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
                f.write_str(&names.join(","))
            }
            Targets::Leader => f.write_str("leader"),
            Targets::Follower { .. } => f.write_str("follower"),
            Targets::Lagging => f.write_str("lagging"),
            Targets::Member { .. } => f.write_str("random member"),
            Targets::Members { share, .. } => f.write_str(match share {
                Share::Minority => "minority of members",
                Share::Majority => "majority of members",
                Share::All => "all members",
            }),
            Targets::SameAs { name, .. } => write!(f, "same-as {name}"),
        }
    }
}

/// One fault on the timeline (times from the start of the fault phase).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct ScheduledFault {
    /// Position on the timeline.
    pub id: usize,
    /// Index of the plan's `[[faults]]` entry it comes from.
    pub plan_index: usize,
    /// What (the plan kind).
    pub kind: &'static str,
    /// The plan's name for it (default: the kind).
    pub label: String,
    /// Whom.
    pub targets: Targets,
    /// When it starts.
    #[serde(serialize_with = "ser_ms")]
    pub start: Duration,
    /// When it is undone (at the latest when the fault phase ends).
    #[serde(serialize_with = "ser_ms")]
    pub end: Duration,
    /// Whether the phase's end cut it short (only random faults can be: fixed ones that would are refused).
    pub clipped: bool,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// A seed for one purpose, derived from the run's seed (so adding a purpose does not shift the others).
pub fn derive_seed(seed: u64, purpose: &str) -> u64 {
    purpose.bytes().fold(seed ^ 0x9e37_79b9_7f4a_7c15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn resolve(target: Target, nodes: usize, rng: &mut ChaCha8Rng) -> Targets {
    let all: Vec<u64> = (1..=nodes as u64).collect();
    let pick = |count: usize, rng: &mut ChaCha8Rng| {
        let mut chosen: Vec<u64> = all.choose_multiple(rng, count).copied().collect();
        chosen.sort_unstable();
        Targets::Nodes(chosen)
    };
    match target {
        Target::Node(id) => Targets::Nodes(vec![id]),
        Target::Random => pick(1, rng),
        Target::Leader => Targets::Leader,
        Target::Minority => pick((nodes - 1) / 2, rng),
        Target::Majority => pick(nodes / 2 + 1, rng),
        Target::All => Targets::Nodes(all.clone()),
        Target::Follower => Targets::Follower { pick: rng.gen() },
        Target::Lagging => Targets::Lagging,
        // The node a cluster event is about: only faults on an event have one (validation), and `occurrence`
        // is given it.
        Target::Observed => Targets::Nodes(Vec::new()),
    }
}

/// Whom a fault hits, by kind: partitions whose shape is random (random halves, the order of a ring or bridge)
/// are drawn here, so the timeline says exactly which links will be cut.
fn resolve_for(plan: &Plan, index: usize, rng: &mut ChaCha8Rng) -> Targets {
    let fault = &plan.faults[index];
    let nodes = plan.cluster.nodes;
    if let Some(name) = &fault.same_as {
        if let Ok(plan_index) = plan.fault_named(index, name) {
            return Targets::SameAs {
                name: name.clone(),
                plan_index,
            };
        }
    }
    let all: Vec<u64> = (1..=nodes as u64).collect();
    let topology = match &fault.spec {
        FaultSpec::Partition(p) => Some(&p.topology),
        _ => None,
    };
    match topology {
        Some(Topology::RandomHalves) => {
            let mut half: Vec<u64> = all.choose_multiple(rng, nodes / 2).copied().collect();
            half.sort_unstable();
            Targets::Nodes(half)
        }
        Some(Topology::MajoritiesRing | Topology::Bridge) => {
            // The ring (or line) order, shuffled: which nodes end up as neighbours is part of the fault.
            let mut order = all;
            order.shuffle(rng);
            Targets::Nodes(order)
        }
        Some(Topology::Halves | Topology::Groups) => Targets::Nodes(all),
        // With membership changes, a node drawn from the initial ids now may be gone by then.
        None if plan.uses(crate::faults::Family::Membership) => match fault.target {
            Target::Random => Targets::Member { pick: rng.gen() },
            Target::Minority => Targets::Members {
                share: Share::Minority,
                pick: rng.gen(),
            },
            Target::Majority => Targets::Members {
                share: Share::Majority,
                pick: rng.gen(),
            },
            Target::All => Targets::Members {
                share: Share::All,
                pick: rng.gen(),
            },
            _ => resolve(fault.target, nodes, rng),
        },
        _ => resolve(fault.target, nodes, rng),
    }
}

/// The timeline of `plan` under `seed`, sorted by start time (a fault ends before another starts at the same
/// instant).
pub fn schedule(plan: &Plan, seed: u64) -> Vec<ScheduledFault> {
    let phase = plan.duration.0;
    let mut out: Vec<ScheduledFault> = Vec::new();
    let mut waiting: Vec<usize> = Vec::new();
    for (plan_index, fault) in plan.faults.iter().enumerate() {
        if fault.trigger.is_some() {
            waiting.push(plan_index);
            continue;
        }
        let mut rng = fault_rng(seed, plan_index);
        let mut starts: Vec<Duration> = fault.at.iter().map(|d| d.0).collect();
        if let Some(every) = fault.every {
            let mut t = Duration::ZERO;
            loop {
                let gap = every.0.mul_f64(rng.gen_range(0.5..1.5));
                t = (t + gap).max(
                    starts
                        .last()
                        .map_or(Duration::ZERO, |s| *s + fault.duration.0),
                );
                if t >= phase {
                    break;
                }
                starts.push(t);
            }
        }
        push_occurrences(plan, plan_index, &starts, &mut rng, &mut out);
    }
    // Triggered faults, each once the fault that triggers it is on the timeline (validation refuses loops).
    let mut scheduled: Vec<bool> = plan.faults.iter().map(|f| f.trigger.is_none()).collect();
    loop {
        let mut progressed = false;
        for &plan_index in &waiting {
            // A fault started by a cluster event (or by such a fault) never gets here: the run schedules it.
            let source = match plan.started_by(plan_index) {
                Some(source) if scheduled[source] && !scheduled[plan_index] => source,
                _ => continue,
            };
            let starts = triggered_starts(plan, plan_index, source, &out);
            push_occurrences(
                plan,
                plan_index,
                &starts,
                &mut fault_rng(seed, plan_index),
                &mut out,
            );
            scheduled[plan_index] = true;
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    // Ends sort before starts at the same instant in the driver; here, by start and then plan order.
    out.sort_by_key(|f| (f.start, f.plan_index));
    for (i, f) in out.iter_mut().enumerate() {
        f.id = i;
    }
    out
}

/// The start times of triggered fault `plan_index`: each start or end of fault `source`, plus the wait.
fn triggered_starts(
    plan: &Plan,
    plan_index: usize,
    source: usize,
    timeline: &[ScheduledFault],
) -> Vec<Duration> {
    let fault = &plan.faults[plan_index];
    let trigger = fault.trigger.as_ref().expect("triggered");
    let TriggerSource::Fault { edge, .. } = trigger.source else {
        return Vec::new();
    };
    let mut edges: Vec<Duration> = timeline
        .iter()
        .filter(|f| f.plan_index == source)
        .map(|f| match edge {
            Edge::Start => f.start,
            Edge::End => f.end,
        } + trigger.wait.0)
        .collect();
    edges.sort_unstable();
    let mut starts: Vec<Duration> = Vec::new();
    for start in edges {
        // A fault never overlaps itself: an occurrence that would start before the last one ended is left out.
        let free = starts.last().is_none_or(|s| *s + fault.duration.0 <= start);
        if start < plan.duration.0 && free {
            starts.push(start);
        }
    }
    starts
}

fn fault_rng(seed: u64, plan_index: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, &format!("fault-{plan_index}")))
}

fn push_occurrences(
    plan: &Plan,
    plan_index: usize,
    starts: &[Duration],
    rng: &mut ChaCha8Rng,
    out: &mut Vec<ScheduledFault>,
) {
    for &start in starts {
        out.extend(occurrence(plan, plan_index, start, None, rng));
    }
}

/// One occurrence of fault `plan_index` starting at `start`, its targets drawn with `rng` (`target = "observed"`:
/// `subject`, the node the cluster event that starts it is about); none when they are nobody (a minority of a
/// single-node cluster).
fn occurrence(
    plan: &Plan,
    plan_index: usize,
    start: Duration,
    subject: Option<u64>,
    rng: &mut ChaCha8Rng,
) -> Option<ScheduledFault> {
    let fault = &plan.faults[plan_index];
    let mut targets = resolve_for(plan, plan_index, rng);
    if fault.target == Target::Observed {
        targets = Targets::Nodes(subject.into_iter().collect());
    }
    if matches!(&targets, Targets::Nodes(ids) if ids.is_empty()) {
        return None;
    }
    let phase = plan.duration.0;
    Some(ScheduledFault {
        id: 0,
        plan_index,
        kind: fault.spec.kind(),
        label: fault.label().to_string(),
        targets,
        start,
        end: (start + fault.duration.0).min(phase),
        clipped: start + fault.duration.0 > phase,
    })
}

/// The faults a run schedules as it goes: those started by a cluster event (`on`), and those started by such a
/// fault (`when`/`after` it). Pure like [`schedule`]: the same events at the same times give the same faults,
/// with ids following the timeline's.
#[derive(Debug)]
pub struct Reactor<'p> {
    plan: &'p Plan,
    seed: u64,
    next_id: usize,
    /// Per plan fault: how many occurrences it had (each one's draw has its own seed).
    occurrences: Vec<u64>,
    /// Per plan fault: when its latest occurrence ends (a fault never overlaps itself).
    busy_until: Vec<Duration>,
}

impl<'p> Reactor<'p> {
    /// A reactor for `plan` under `seed`, numbering its faults after a timeline of `timeline_len`.
    pub fn new(plan: &'p Plan, seed: u64, timeline_len: usize) -> Reactor<'p> {
        Reactor {
            plan,
            seed,
            next_id: timeline_len,
            occurrences: vec![0; plan.faults.len()],
            busy_until: vec![Duration::ZERO; plan.faults.len()],
        }
    }

    /// The faults `event` about node `subject`, seen `at` into the fault phase, starts.
    pub fn on_cluster(
        &mut self,
        event: ClusterEvent,
        subject: u64,
        at: Duration,
    ) -> Vec<ScheduledFault> {
        self.react(at, Some(subject), |_, source| {
            *source == TriggerSource::Cluster(event)
        })
    }

    /// The faults that `edge` of the occurrence `fault` starts. Faults started by a fault of the timeline are on
    /// the timeline already; only those that react to the cluster come from here.
    pub fn on_edge(&mut self, fault: &ScheduledFault, edge: Edge) -> Vec<ScheduledFault> {
        let plan = self.plan;
        let at = match edge {
            Edge::Start => fault.start,
            Edge::End => fault.end,
        };
        self.react(at, None, |i, source| {
            matches!(source, TriggerSource::Fault { edge: e, .. } if *e == edge)
                && plan.started_by(i) == Some(fault.plan_index)
                && plan.reacts_to_cluster(i)
        })
    }

    fn react(
        &mut self,
        at: Duration,
        subject: Option<u64>,
        starts: impl Fn(usize, &TriggerSource) -> bool,
    ) -> Vec<ScheduledFault> {
        let mut out = Vec::new();
        for (i, fault) in self.plan.faults.iter().enumerate() {
            let Some(trigger) = fault.trigger.as_ref().filter(|t| starts(i, &t.source)) else {
                continue;
            };
            let start = at + trigger.wait.0;
            if start >= self.plan.duration.0 || start < self.busy_until[i] {
                continue;
            }
            let purpose = format!("fault-{i}-reaction-{}", self.occurrences[i]);
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(self.seed, &purpose));
            self.occurrences[i] += 1;
            if let Some(mut f) = occurrence(self.plan, i, start, subject, &mut rng) {
                f.id = self.next_id;
                self.next_id += 1;
                self.busy_until[i] = f.end;
                out.push(f);
            }
        }
        out
    }
}

/// The timeline for people, as `chaos validate` prints it.
pub fn render(plan: &Plan, seed: u64, timeline: &[ScheduledFault]) -> String {
    let mut out = String::new();
    let total = plan.warmup.0 + plan.duration.0 + plan.recovery.0;
    let _ = writeln!(
        out,
        "plan {:?}, seed {seed}: {} nodes, {} clients at {} ops/s; warm-up {}, faults {}, recovery {} (about {} in all)",
        plan.name,
        plan.cluster.nodes,
        plan.workload.clients,
        plan.workload.rate,
        plan.warmup,
        plan.duration,
        plan.recovery,
        humantime::format_duration(Duration::from_secs(total.as_secs() + 1)),
    );
    let reactive: Vec<usize> = (0..plan.faults.len())
        .filter(|&i| plan.reacts_to_cluster(i))
        .collect();
    if timeline.is_empty() && reactive.is_empty() {
        let _ = writeln!(out, "no faults");
    }
    for f in timeline {
        let mut note = String::new();
        note.push_str(match &f.targets {
            Targets::Nodes(_) => "",
            Targets::Leader => " (whoever leads then)",
            Targets::Follower { .. } => " (a follower then)",
            Targets::Lagging => " (the follower furthest behind then)",
            Targets::Member { .. } => " (a member then)",
            Targets::Members { .. } => " (the members then)",
            Targets::SameAs { .. } => " (the nodes that fault last hit)",
        });
        if f.clipped {
            note.push_str(" (cut short: the fault phase ends)");
        }
        let _ = writeln!(
            out,
            "  #{:<3} {:>9.3}s .. {:>9.3}s  {:<12} {}{note}{}",
            f.id,
            f.start.as_secs_f64(),
            f.end.as_secs_f64(),
            f.label,
            f.targets,
            plan.faults[f.plan_index].spec.describe(),
        );
    }
    if !reactive.is_empty() {
        let _ = writeln!(out, "scheduled during the run, as the cluster changes:");
    }
    for i in reactive {
        let f = &plan.faults[i];
        let trigger = f.trigger.as_ref().expect("reacts, so triggered");
        let what = match &trigger.source {
            TriggerSource::Cluster(event) => format!("on {}", event.key()),
            TriggerSource::Fault { name, edge } => format!("{} {name}", edge.key()),
        };
        let wait = if trigger.wait.0.is_zero() {
            String::new()
        } else {
            format!(" + {}", trigger.wait)
        };
        let whom = f
            .same_as
            .as_ref()
            .map_or_else(|| f.target.to_string(), |n| format!("same-as {n}"));
        let line = format!(
            "  {what}{wait}: {:<12} {whom} for {} {}",
            f.label(),
            f.duration,
            f.spec.describe(),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(faults: &str) -> Plan {
        Plan::parse(
            &format!("name = \"t\"\nduration = \"20s\"\n[cluster]\nnodes = 5\n{faults}"),
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_timeline() {
        let p = plan("[[faults]]\nkind = \"kill\"\ntarget = \"minority\"\nevery = \"2s\"\nduration = \"500ms\"\n");
        assert_eq!(schedule(&p, 7), schedule(&p, 7));
        assert_ne!(schedule(&p, 7), schedule(&p, 8));
    }

    #[test]
    fn random_faults_fit_in_the_phase_and_do_not_overlap_themselves() {
        let p = plan("[[faults]]\nkind = \"pause\"\ntarget = \"majority\"\nevery = \"1s\"\nduration = \"700ms\"\n");
        let t = schedule(&p, 3);
        assert!(t.len() >= 8, "about one per second over 20 s: {}", t.len());
        for w in t.windows(2) {
            assert!(w[1].start >= w[0].end, "{w:?}");
        }
        for f in &t {
            assert!(f.end <= Duration::from_secs(20));
            assert!(matches!(&f.targets, Targets::Nodes(ids) if ids.len() == 3));
        }
    }

    #[test]
    fn fixed_times_and_named_targets_are_kept() {
        let p = plan("[[faults]]\nkind = \"kill\"\ntarget = \"n2\"\nat = [\"3s\", \"1s\"]\nduration = \"2s\"\n[[faults]]\nkind = \"pause\"\ntarget = \"leader\"\nat = [\"2s\"]\n");
        let t = schedule(&p, 1);
        let summary: Vec<(u64, &str, String)> = t
            .iter()
            .map(|f| (f.start.as_secs(), f.kind, f.targets.to_string()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, "kill", "n2".into()),
                (2, "pause", "leader".into()),
                (3, "kill", "n2".into())
            ]
        );
        assert!(render(&p, 1, &t).contains("(whoever leads then)"));
    }

    #[test]
    fn triggered_faults_follow_their_trigger_and_chain() {
        let p = plan(
            "[[faults]]\nname = \"cut\"\nkind = \"partition\"\ntopology = \"isolate\"\ntarget = \"lagging\"\nat = [\"2s\", \"9s\"]\nduration = \"3s\"\n\
             [[faults]]\nname = \"kill-after\"\nkind = \"kill\"\ntarget = \"leader\"\nafter = \"cut\"\nduration = \"1s\"\n\
             [[faults]]\nname = \"slow\"\nkind = \"clock-drift\"\nclock_rate = 0.5\nsame_as = \"cut\"\nwhen = \"cut\"\nwait = \"100ms\"\nduration = \"2s\"\n\
             [[faults]]\nname = \"voter\"\nkind = \"kill\"\ntarget = \"follower\"\nwhen = \"kill-after\"\nwait = \"150ms\"\nduration = \"300ms\"\n",
        );
        let t = schedule(&p, 5);
        let times = |label: &str| -> Vec<(u128, u128)> {
            t.iter()
                .filter(|f| f.label == label)
                .map(|f| (f.start.as_millis(), f.end.as_millis()))
                .collect()
        };
        assert_eq!(times("cut"), vec![(2000, 5000), (9000, 12000)]);
        assert_eq!(times("kill-after"), vec![(5000, 6000), (12000, 13000)]);
        assert_eq!(times("slow"), vec![(2100, 4100), (9100, 11100)]);
        assert_eq!(times("voter"), vec![(5150, 5450), (12150, 12450)]);
        let slow = t.iter().find(|f| f.label == "slow").unwrap();
        assert_eq!(
            slow.targets,
            Targets::SameAs {
                name: "cut".into(),
                plan_index: 0
            }
        );
        assert_eq!(
            t.iter().find(|f| f.label == "cut").unwrap().targets,
            Targets::Lagging
        );
        assert!(t.windows(2).all(|w| w[0].start <= w[1].start));
        assert!(render(&p, 5, &t).contains("(the nodes that fault last hit)"));
    }

    #[test]
    fn a_triggered_fault_never_overlaps_itself_and_stays_in_the_phase() {
        let p = plan(
            "[[faults]]\nname = \"k\"\nkind = \"kill\"\ntarget = \"leader\"\nat = [\"1s\", \"1500ms\", \"19500ms\"]\nduration = \"100ms\"\n\
             [[faults]]\nkind = \"pause\"\ntarget = \"follower\"\nwhen = \"k\"\nduration = \"1s\"\n",
        );
        let pauses: Vec<u128> = schedule(&p, 1)
            .iter()
            .filter(|f| f.kind == "pause")
            .map(|f| f.start.as_millis())
            .collect();
        // 1.5 s would overlap the pause started at 1 s; 19.5 s starts in the phase and is clipped at its end.
        assert_eq!(pauses, vec![1000, 19500]);
    }

    /// With membership faults, `all`, `minority` and `majority` are shares of the members when the fault
    /// starts, dead or alive: not of the initial nodes, some of which may be gone and which miss the newcomers.
    #[test]
    fn shares_of_the_cluster_follow_its_membership() {
        let p = plan(
            "[[faults]]\nkind = \"add\"\nat = [\"1s\"]\n\
             [[faults]]\nname = \"most\"\nkind = \"pause\"\ntarget = \"majority\"\nat = [\"3s\"]\n\
             [[faults]]\nname = \"few\"\nkind = \"kill\"\ntarget = \"minority\"\nat = [\"5s\"]\n\
             [[faults]]\nname = \"every\"\nkind = \"kill\"\ntarget = \"all\"\nat = [\"7s\"]\n",
        );
        let t = schedule(&p, 3);
        let targets = |label: &str| t.iter().find(|f| f.label == label).unwrap().targets.clone();
        // Five members, n1 among them no longer answering (it was removed from the answers, not the members).
        let mut v = view(&[
            (2, true, None),
            (3, false, None),
            (4, false, None),
            (5, false, None),
        ]);
        v.members = vec![1, 2, 3, 4, 5];
        let most = targets("most").pick(&v).unwrap();
        assert_eq!(most.len(), 3);
        assert_eq!(
            most,
            targets("most").pick(&v).unwrap(),
            "the seed decides which"
        );
        assert_eq!(targets("few").pick(&v).unwrap().len(), 2);
        assert_eq!(targets("every").pick(&v).unwrap(), vec![1, 2, 3, 4, 5]);
        assert!(render(&p, 3, &t).contains("majority of members (the members then)"));
        // Without membership faults they are drawn from the plan's nodes, once, for the timeline.
        let fixed = plan("[[faults]]\nkind = \"kill\"\ntarget = \"all\"\nat = [\"7s\"]\n");
        assert_eq!(
            schedule(&fixed, 3)[0].targets,
            Targets::Nodes(vec![1, 2, 3, 4, 5])
        );
    }

    fn view(nodes: &[(u64, bool, Option<u64>)]) -> ClusterView {
        ClusterView {
            nodes: nodes
                .iter()
                .map(|&(id, leader, applied)| NodeView {
                    id,
                    leader,
                    applied,
                })
                .collect(),
            last_hit: Default::default(),
            members: nodes.iter().map(|n| n.0).collect(),
        }
    }

    #[test]
    fn targets_decided_at_start_pick_from_the_cluster_as_it_is() {
        let v = view(&[
            (1, false, Some(40)),
            (2, true, Some(50)),
            (3, false, Some(12)),
            (4, false, Some(12)),
        ]);
        assert_eq!(Targets::Leader.pick(&v), Ok(vec![2]));
        assert_eq!(
            Targets::Lagging.pick(&v),
            Ok(vec![3]),
            "lowest applied, ties to the lowest id"
        );
        assert_eq!(
            Targets::Follower { pick: 4 }.pick(&v),
            Ok(vec![3]),
            "4 mod 3 followers"
        );
        let same = Targets::SameAs {
            name: "cut".into(),
            plan_index: 0,
        };
        assert_eq!(
            same.pick(&v),
            Err("the fault it follows has not hit anyone yet")
        );
        let mut v2 = v.clone();
        v2.last_hit.insert(0, vec![2, 4]);
        assert_eq!(same.pick(&v2), Ok(vec![2, 4]));
        let leaderless = view(&[(1, false, None), (3, false, None)]);
        assert_eq!(
            Targets::Leader.pick(&leaderless),
            Err("no leader to target")
        );
        assert_eq!(
            Targets::Lagging.pick(&leaderless),
            Err("the target reports no applied index")
        );
        assert_eq!(
            Targets::Follower { pick: 0 }.pick(&view(&[])),
            Err("no follower answered")
        );
    }
}
