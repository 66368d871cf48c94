//! The schedule: a pure function from plan and seed to the exact timeline of faults, computed before anything
//! runs. The same plan and seed always give the same timeline.

use crate::faults::network::topology::Topology;
use crate::faults::FaultSpec;
use crate::plan::{FaultPlan, Plan, Target};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::time::Duration;

/// Whom a scheduled fault hits: fixed nodes, or whoever leads when it starts.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Targets {
    /// These node ids.
    Nodes(Vec<u64>),
    /// The leader at the fault's start.
    Leader,
}

impl std::fmt::Display for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Targets::Nodes(ids) => {
                let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
                f.write_str(&names.join(","))
            }
            Targets::Leader => f.write_str("leader"),
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
    }
}

/// Whom a fault hits, by kind: partitions whose shape is random (random halves, the order of a ring or bridge)
/// are drawn here, so the timeline says exactly which links will be cut.
fn resolve_for(fault: &FaultPlan, nodes: usize, rng: &mut ChaCha8Rng) -> Targets {
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
        _ => resolve(fault.target, nodes, rng),
    }
}

/// The timeline of `plan` under `seed`, sorted by start time.
pub fn schedule(plan: &Plan, seed: u64) -> Vec<ScheduledFault> {
    let phase = plan.duration.0;
    let mut out = Vec::new();
    for (plan_index, fault) in plan.faults.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, &format!("fault-{plan_index}")));
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
        for start in starts {
            let targets = resolve_for(fault, plan.cluster.nodes, &mut rng);
            if matches!(&targets, Targets::Nodes(ids) if ids.is_empty()) {
                continue; // A minority of a single-node cluster is nobody.
            }
            out.push(ScheduledFault {
                id: 0,
                plan_index,
                kind: fault.spec.kind(),
                label: fault.label().to_string(),
                targets,
                start,
                end: (start + fault.duration.0).min(phase),
                clipped: start + fault.duration.0 > phase,
            });
        }
    }
    out.sort_by_key(|f| (f.start, f.plan_index));
    for (i, f) in out.iter_mut().enumerate() {
        f.id = i;
    }
    out
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
    if timeline.is_empty() {
        let _ = writeln!(out, "no faults");
    }
    for f in timeline {
        let mut note = String::new();
        if f.targets == Targets::Leader {
            note.push_str(" (whoever leads then)");
        }
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
}
