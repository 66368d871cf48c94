//! Nemeses: faults injected from outside the nodes, as an operator would (signals for now; network and clock
//! faults slot in as further kinds). Each fault is started, later undone, and both are recorded in
//! `events.jsonl` (with start, end and targets) and as notes in the history.

use crate::plan::FaultKind;
use crate::plan::FaultPlan;
use crate::recorder::Recorder;
use crate::schedule::{ScheduledFault, Targets};
use crate::supervisor::{ProcessState, Supervisor};
use crate::topology::{self, Topology};
use checker::history::EventKind;
use raft_transport::ClientEndpoint;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A fault in force.
#[derive(Clone, Debug)]
pub struct ActiveFault {
    /// The scheduled fault.
    pub fault: ScheduledFault,
    /// The nodes it actually hit (after resolving "leader", skipping nodes already down).
    pub nodes: Vec<u64>,
}

/// Appends fault events to `events.jsonl`.
#[derive(Debug)]
pub struct EventLog {
    file: File,
}

impl EventLog {
    /// Creates the file.
    pub fn create(path: &Path) -> std::io::Result<EventLog> {
        Ok(EventLog {
            file: File::create(path)?,
        })
    }

    /// Appends one event (and flushes: the file must survive a crash of the tool).
    pub fn write(&mut self, value: serde_json::Value) {
        let mut line = value.to_string();
        line.push('\n');
        if let Err(e) = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
        {
            tracing::warn!(error = %e, "cannot write events.jsonl");
        }
    }
}

/// Finds the current leader: the node that claims leadership in the highest term.
pub async fn find_leader(endpoint: &ClientEndpoint, addrs: &[(u64, SocketAddr)]) -> Option<u64> {
    let mut best: Option<(u64, u64)> = None;
    for &(id, addr) in addrs {
        if let Ok(s) =
            raft_node::client::node_status(endpoint, addr, None, Duration::from_millis(300)).await
        {
            if s.raft.role == raft::Role::Leader && best.is_none_or(|(t, _)| s.raft.term.0 > t) {
                best = Some((s.raft.term.0, id));
            }
        }
    }
    best.map(|(_, id)| id)
}

/// How a directed link is degraded.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkDegradation {
    /// Drop everything (partition).
    pub cut: bool,
    /// Fraction dropped.
    pub loss: f64,
    /// Added delay.
    pub delay: Duration,
    /// Extra random delay in [0, jitter].
    pub jitter: Duration,
    /// Fraction duplicated.
    pub duplicate: f64,
    /// Fraction held back so later packets overtake them.
    pub reorder: f64,
    /// Bandwidth limit in bytes per second.
    pub rate_limit_bytes_per_s: Option<u64>,
}

/// Where network faults are applied (the relay mesh).
pub trait NetworkBackend: std::fmt::Debug {
    /// Makes exactly these links degraded (all others healthy).
    fn apply(&mut self, links: &BTreeMap<(u64, u64), LinkDegradation>);
}

/// Where clock faults are applied (the clock shim's control files).
pub trait ClockBackend: std::fmt::Debug {
    /// Sets node `id`'s wall-clock offset (ns) and rate.
    fn set(&mut self, id: u64, offset_ns: i64, rate: f64);
}

/// Applies and undoes faults.
#[derive(Debug)]
pub struct Nemesis {
    /// The node processes.
    pub supervisor: Supervisor,
    /// Where events go.
    pub events: EventLog,
    /// Grace period for SIGTERM before SIGKILL.
    pub terminate_grace: Duration,
    /// The relays, when the plan has network faults.
    pub network: Option<Box<dyn NetworkBackend>>,
    /// The clock controls, when the plan has clock faults.
    pub clocks: Option<Box<dyn ClockBackend>>,
    /// Every node id.
    pub all_nodes: Vec<u64>,
    /// Network and clock faults in force, by fault id: recomputed into link and clock settings on each change.
    net_faults: BTreeMap<usize, BTreeMap<(u64, u64), LinkDegradation>>,
    clock_faults: BTreeMap<usize, (Vec<u64>, i64, f64)>,
    /// Strobes in force: fault id → (nodes, offset, period, last flip, whether the offset is applied now).
    strobes: BTreeMap<usize, Strobe>,
}

#[derive(Debug, Clone)]
struct Strobe {
    nodes: Vec<u64>,
    offset_ns: i64,
    period: Duration,
    next_flip: std::time::Instant,
    on: bool,
}

impl Nemesis {
    /// A nemesis over `supervisor`'s nodes, with optional network and clock backends.
    pub fn new(
        supervisor: Supervisor,
        events: EventLog,
        network: Option<Box<dyn NetworkBackend>>,
        clocks: Option<Box<dyn ClockBackend>>,
    ) -> Nemesis {
        let all_nodes = supervisor.ids();
        Nemesis {
            supervisor,
            events,
            terminate_grace: Duration::from_secs(2),
            network,
            clocks,
            all_nodes,
            net_faults: BTreeMap::new(),
            clock_faults: BTreeMap::new(),
            strobes: BTreeMap::new(),
        }
    }

    /// The links a network fault degrades.
    fn links_for(&self, spec: &FaultPlan, nodes: &[u64]) -> BTreeMap<(u64, u64), LinkDegradation> {
        let all = &self.all_nodes;
        let cuts: topology::Cuts = match (spec.kind, &spec.topology) {
            (FaultKind::Partition, Some(Topology::Isolate)) => nodes
                .iter()
                .flat_map(|&n| topology::isolate(all, n))
                .collect(),
            (FaultKind::Partition, Some(Topology::Halves)) => topology::halves(all),
            (FaultKind::Partition, Some(Topology::RandomHalves)) => {
                let rest: Vec<u64> = all.iter().copied().filter(|n| !nodes.contains(n)).collect();
                topology::groups(&[nodes.to_vec(), rest])
            }
            (FaultKind::Partition, Some(Topology::MajoritiesRing)) => {
                topology::majorities_ring(nodes).unwrap_or_default()
            }
            (FaultKind::Partition, Some(Topology::Bridge)) => {
                topology::bridge(nodes).unwrap_or_default()
            }
            (FaultKind::Partition, Some(Topology::OneWay)) => topology::one_way(all, nodes),
            (FaultKind::Partition, Some(Topology::Groups)) => topology::groups(&spec.groups),
            _ => topology::Cuts::new(),
        };
        let mut links: BTreeMap<(u64, u64), LinkDegradation> = cuts
            .into_iter()
            .map(|l| {
                (
                    l,
                    LinkDegradation {
                        cut: true,
                        ..LinkDegradation::default()
                    },
                )
            })
            .collect();
        if spec.kind == FaultKind::Packet {
            let degradation = LinkDegradation {
                cut: false,
                loss: spec.loss.unwrap_or(0.0),
                delay: spec.delay.map_or(Duration::ZERO, |d| d.0),
                jitter: spec.jitter.map_or(Duration::ZERO, |d| d.0),
                duplicate: spec.duplicate.unwrap_or(0.0),
                reorder: spec.reorder.unwrap_or(0.0),
                rate_limit_bytes_per_s: spec.rate_limit_bytes_per_s,
            };
            for &t in nodes {
                for &other in all {
                    if other != t {
                        links.insert((t, other), degradation);
                        links.insert((other, t), degradation);
                    }
                }
            }
        }
        links
    }

    /// Pushes the union of the network faults in force to the relays (a cut wins over a degradation).
    fn apply_network(&mut self) {
        let mut merged: BTreeMap<(u64, u64), LinkDegradation> = BTreeMap::new();
        for links in self.net_faults.values() {
            for (link, d) in links {
                let entry = merged.entry(*link).or_default();
                *entry = if d.cut || entry.cut {
                    LinkDegradation {
                        cut: true,
                        ..*entry
                    }
                } else {
                    *d
                };
            }
        }
        match self.network.as_mut() {
            Some(net) => net.apply(&merged),
            None => assert!(
                merged.is_empty(),
                "a network fault started without a network backend"
            ),
        }
    }

    /// Pushes every node's clock setting: the sum of the offsets and the product of the rates in force.
    fn apply_clocks(&mut self) {
        let Some(clocks) = self.clocks.as_mut() else {
            let active = !self.clock_faults.is_empty() || !self.strobes.is_empty();
            assert!(!active, "a clock fault started without clock controls");
            return;
        };
        for &id in &self.all_nodes {
            let mut offset = 0i64;
            let mut rate = 1.0;
            for (nodes, o, r) in self.clock_faults.values() {
                if nodes.contains(&id) {
                    offset = offset.saturating_add(*o);
                    rate *= r;
                }
            }
            for s in self.strobes.values() {
                if s.on && s.nodes.contains(&id) {
                    offset = offset.saturating_add(s.offset_ns);
                }
            }
            clocks.set(id, offset, rate);
        }
    }

    /// Flips strobing clocks whose period elapsed; call often (every few ms) while strobes are in force.
    pub fn tick_strobes(&mut self) -> bool {
        let now = std::time::Instant::now();
        let mut changed = false;
        for s in self.strobes.values_mut() {
            if now >= s.next_flip {
                s.on = !s.on;
                s.next_flip = now + s.period;
                changed = true;
            }
        }
        if changed {
            self.apply_clocks();
        }
        !self.strobes.is_empty()
    }

    /// The soonest strobe flip, if any strobe is in force.
    pub fn next_strobe(&self) -> Option<std::time::Instant> {
        self.strobes.values().map(|s| s.next_flip).min()
    }

    fn record(
        &mut self,
        recorder: &Recorder,
        phase: &str,
        fault: &ScheduledFault,
        nodes: &[u64],
        note: Option<&str>,
    ) {
        let value = serde_json::json!({
            "time_ns": recorder.now_ns(),
            "event": phase,
            "id": fault.id,
            "kind": fault.kind.name(),
            "target": fault.targets.to_string(),
            "nodes": nodes,
            "note": note,
        });
        self.events.write(value.clone());
        let kind = if phase == "start" {
            EventKind::Invoke
        } else {
            EventKind::Ok
        };
        recorder.note(
            "nemesis",
            kind,
            &format!("{phase}-{}", fault.kind.name()),
            value,
        );
    }

    /// Starts `fault`; `leader` is the current leader when the fault targets it.
    pub fn start(
        &mut self,
        fault: &ScheduledFault,
        spec: &FaultPlan,
        leader: Option<u64>,
        recorder: &Recorder,
    ) -> ActiveFault {
        let wanted: Vec<u64> = match &fault.targets {
            Targets::Nodes(ids) => ids.clone(),
            Targets::Leader => leader.into_iter().collect(),
        };
        // A node that is already down (or paused, for a pause) is left alone by process faults: faults on the
        // same node may overlap. Network and clock faults apply whatever the process state.
        if !matches!(
            fault.kind,
            FaultKind::Kill | FaultKind::Terminate | FaultKind::Pause
        ) {
            let nodes = wanted;
            return self.start_external(fault, spec, nodes, leader, recorder);
        }
        let nodes: Vec<u64> = wanted
            .into_iter()
            .filter(|&id| {
                !matches!(
                    (fault.kind, self.supervisor.state(id)),
                    (_, ProcessState::Down) | (FaultKind::Pause, ProcessState::Paused)
                )
            })
            .collect();
        for &id in &nodes {
            match fault.kind {
                FaultKind::Kill => self.supervisor.kill(id),
                FaultKind::Terminate => {
                    self.supervisor.terminate(id, self.terminate_grace);
                }
                FaultKind::Pause => self.supervisor.pause(id),
                _ => {}
            }
        }

        self.finish_start(fault, nodes, leader, recorder)
    }

    fn start_external(
        &mut self,
        fault: &ScheduledFault,
        spec: &FaultPlan,
        nodes: Vec<u64>,
        leader: Option<u64>,
        recorder: &Recorder,
    ) -> ActiveFault {
        match fault.kind {
            FaultKind::Partition | FaultKind::Packet => {
                let links = self.links_for(spec, &nodes);
                self.net_faults.insert(fault.id, links);
                self.apply_network();
            }
            FaultKind::ClockBump => {
                let offset = spec.offset.map_or(0, |o| o.as_nanos_i64());
                self.clock_faults
                    .insert(fault.id, (nodes.clone(), offset, 1.0));
                self.apply_clocks();
            }
            FaultKind::ClockDrift => {
                self.clock_faults
                    .insert(fault.id, (nodes.clone(), 0, spec.clock_rate.unwrap_or(1.0)));
                self.apply_clocks();
            }
            FaultKind::ClockStrobe => {
                let period = spec.period.map_or(Duration::from_millis(50), |p| p.0);
                let strobe = Strobe {
                    nodes: nodes.clone(),
                    offset_ns: spec.offset.map_or(0, |o| o.as_nanos_i64()),
                    period,
                    next_flip: std::time::Instant::now() + period,
                    on: true,
                };
                self.strobes.insert(fault.id, strobe);
                self.apply_clocks();
            }
            FaultKind::Kill | FaultKind::Terminate | FaultKind::Pause => {}
        }
        self.finish_start(fault, nodes, leader, recorder)
    }

    fn finish_start(
        &mut self,
        fault: &ScheduledFault,
        nodes: Vec<u64>,
        leader: Option<u64>,
        recorder: &Recorder,
    ) -> ActiveFault {
        let note = match (&fault.targets, nodes.is_empty()) {
            (Targets::Leader, true) if leader.is_none() => Some("no leader to target"),
            (_, true) => Some("every target was already down"),
            _ => None,
        };
        self.record(recorder, "start", fault, &nodes, note);
        ActiveFault {
            fault: fault.clone(),
            nodes,
        }
    }

    /// Undoes `active`: restarts killed or terminated nodes, resumes paused ones.
    pub fn end(&mut self, active: &ActiveFault, recorder: &Recorder) {
        for &id in &active.nodes {
            let result = match active.fault.kind {
                FaultKind::Kill | FaultKind::Terminate => self.supervisor.start(id),
                FaultKind::Pause => {
                    self.supervisor.resume(id);
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::error!(node = id, error = %e, "cannot undo a fault");
            }
        }
        if self.net_faults.remove(&active.fault.id).is_some() {
            self.apply_network();
        }
        let clock_changed = self.clock_faults.remove(&active.fault.id).is_some();
        if self.strobes.remove(&active.fault.id).is_some() || clock_changed {
            self.apply_clocks();
        }
        self.record(recorder, "end", &active.fault, &active.nodes, None);
    }

    /// Brings every node back: resume the paused, start the down. Returns the nodes it touched.
    pub fn heal_all(&mut self, recorder: &Recorder) -> Vec<u64> {
        let mut touched = Vec::new();
        self.net_faults.clear();
        self.clock_faults.clear();
        self.strobes.clear();
        self.apply_network();
        self.apply_clocks();
        for id in self.supervisor.ids() {
            match self.supervisor.state(id) {
                ProcessState::Paused => {
                    self.supervisor.resume(id);
                    touched.push(id);
                }
                ProcessState::Down => {
                    if let Err(e) = self.supervisor.start(id) {
                        tracing::error!(node = id, error = %e, "cannot restart a node while healing");
                    }
                    touched.push(id);
                }
                ProcessState::Running => {}
            }
        }
        let value =
            serde_json::json!({"time_ns": recorder.now_ns(), "event": "heal", "nodes": touched});
        self.events.write(value.clone());
        recorder.note("nemesis", EventKind::Info, "heal", value);
        touched
    }
}
