//! Deterministic simulation: N nodes of the core in one thread, a simulated network and clock, faults, and
//! clients, all driven by one `u64` seed. After every step the [`invariants`] are checked.
//!
//! ```
//! let report = raft::sim::run(&raft::sim::SimOptions::new(7)).expect("seed 7 is safe and live");
//! assert!(report.writes_acknowledged > 0);
//! ```
//!
//! The same seed always produces the same run, so a failure is replayed with
//! `cargo run --release -p raft --bin raft-sim -- --seed N` (plus the `--mutation` it ran with, if any).

pub mod invariants;
pub mod script;

use crate::config::{Config, Mutations, ReadMode};
use crate::kv::{KvCommand, KvOp, KvOutput, KvStore};
use crate::membership::{ConfChange, Membership};
use crate::message::{Entry, EntryPayload, Message, Snapshot};
use crate::node::{HardState, Persisted, RawNode, Ready};
use crate::state_machine::StateMachine;
use crate::types::{Instant, LogIndex, NodeId, Role, Term};
use invariants::{entry_digest, Invariants, Violation};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::fmt;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The seed: everything else random derives from it.
    pub seed: u64,
    /// Simulated milliseconds of faults before everything heals.
    pub fault_ms: u64,
    /// After healing, a leader must be elected and a new write committed everywhere within this bound.
    pub liveness_ms: u64,
    /// Deliberate bugs to switch on in every node.
    pub mutations: Mutations,
    /// Print every event to stderr as it happens.
    pub trace: bool,
}

impl SimOptions {
    /// Defaults for one seed: 6 simulated seconds of faults, 10 s to recover.
    pub fn new(seed: u64) -> SimOptions {
        SimOptions {
            seed,
            fault_ms: 6_000,
            liveness_ms: 10_000,
            mutations: Mutations::default(),
            trace: false,
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run --release -p raft --bin raft-sim -- --seed {}",
            self.seed
        );
        if self.fault_ms != SimOptions::new(0).fault_ms {
            cmd.push_str(&format!(" --fault-ms {}", self.fault_ms));
        }
        for bug in self.mutations.bugs() {
            cmd.push_str(&format!(" --mutation {bug}"));
        }
        cmd.push_str(" --trace");
        cmd
    }
}

/// Figures from a run that passed.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Initial voters.
    pub nodes: usize,
    /// Simulated time, in ms.
    pub sim_ms: u64,
    /// Messages delivered.
    pub messages_delivered: u64,
    /// Client writes acknowledged (applied on the node they were proposed to, with the proposed term).
    pub writes_acknowledged: u64,
    /// Reads served and checked.
    pub reads_checked: u64,
    /// Distinct leader terms.
    pub leader_terms: usize,
    /// Crashes injected (including crashes before a Ready was persisted).
    pub crashes: u64,
    /// Membership changes committed.
    pub membership_changes: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Highest commit index reached.
    pub commit_index: u64,
}

/// A run that broke a property.
#[derive(Clone, Debug)]
pub struct SimFailure {
    /// The options that reproduce it.
    pub options: SimOptions,
    /// Simulated time of the failure, in ms.
    pub at_ms: u64,
    /// What broke.
    pub violation: Violation,
    /// The last events before the failure.
    pub recent_events: Vec<String>,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: {} violated at {} ms: {}",
            self.options.seed, self.violation.property, self.at_ms, self.violation.detail
        )?;
        writeln!(f, "replay: {}", self.options.replay_command())?;
        writeln!(f, "last events:")?;
        for line in &self.recent_events {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// Runs one seed to the end; `Err` carries the first violated property.
pub fn run(options: &SimOptions) -> Result<SimReport, Box<SimFailure>> {
    let mut sim = Sim::new(options.clone());
    match sim.run() {
        Ok(()) => Ok(sim.report()),
        Err(violation) => Err(Box::new(SimFailure {
            options: options.clone(),
            at_ms: sim.now,
            violation,
            recent_events: sim.recent.iter().cloned().collect(),
        })),
    }
}

/// Per-seed parameters, drawn from the seed so that different seeds explore different configurations.
#[derive(Clone, Debug)]
struct Params {
    voters: usize,
    spares: usize,
    election_min_ms: u64,
    max_entries_per_message: usize,
    max_inflight: usize,
    snapshot_every: u64,
    read_mode: ReadMode,
    loss: f64,
    duplicate: f64,
    delay_min_ms: u64,
    delay_max_ms: u64,
    /// Fraction of messages held back for up to `slow_max_ms` (a congested link), which reorders heavily.
    slow: f64,
    slow_max_ms: u64,
    clock_jumps: bool,
    /// Mean milliseconds between fault actions.
    fault_every_ms: u64,
    op_every_ms: u64,
    crash_before_persist: f64,
    /// Chance of crashing right after a vote became durable (where vote-persistence bugs show).
    crash_after_vote: f64,
    check_quorum: bool,
    ranked_timeouts: bool,
}

impl Params {
    fn draw(rng: &mut ChaCha8Rng) -> Params {
        let lease = rng.gen_bool(0.2);
        let delay_min_ms = rng.gen_range(1..=5);
        Params {
            voters: *[3usize, 3, 5].choose(rng).expect("non-empty"),
            spares: 2,
            election_min_ms: *[100u64, 150].choose(rng).expect("non-empty"),
            max_entries_per_message: *[1usize, 3, 16, 256].choose(rng).expect("non-empty"),
            max_inflight: *[1usize, 2, 8].choose(rng).expect("non-empty"),
            snapshot_every: *[5u64, 20, 100, u64::MAX].choose(rng).expect("non-empty"),
            read_mode: if lease {
                ReadMode::Lease {
                    drift_bound_ppm: LEASE_DRIFT_BOUND_PPM,
                }
            } else {
                ReadMode::ReadIndex
            },
            loss: rng.gen_range(0.0..0.15),
            duplicate: rng.gen_range(0.0..0.05),
            delay_min_ms,
            delay_max_ms: delay_min_ms + rng.gen_range(0..30),
            slow: rng.gen_range(0.0..0.05),
            slow_max_ms: rng.gen_range(100..2_000),
            // Lease reads assume clocks advance at the same rate; jumps are outside the model they promise.
            clock_jumps: !lease,
            fault_every_ms: rng.gen_range(100..600),
            op_every_ms: rng.gen_range(3..20),
            crash_before_persist: rng.gen_range(0.0..0.004),
            crash_after_vote: rng.gen_range(0.0..0.3),
            // Without check-quorum there is no leader stickiness; lease reads need it.
            check_quorum: lease || rng.gen_bool(0.7),
            ranked_timeouts: rng.gen_bool(0.5),
        }
    }
}

/// The clock-drift bound of lease mode: 20%, so that clocks can drift visibly (see [`ClockRates`]).
const LEASE_DRIFT_BOUND_PPM: u32 = 200_000;

/// Per-node clock rates. In lease mode each node's clock runs up to 8% fast or slow: a relative difference of
/// at most about 17%, inside the 20% drift bound the lease is configured with, with a few milliseconds of room
/// for the simulation's rounding; a lease that ignores the bound outlives the followers' promise by up to
/// about 25 ms. Otherwise clocks run exactly.
struct ClockRates(ChaCha8Rng);

impl ClockRates {
    fn new(seed: u64) -> ClockRates {
        ClockRates(ChaCha8Rng::seed_from_u64(seed ^ 0x636c_6f63_6b72_6174))
    }

    fn draw(&mut self, read_mode: ReadMode) -> u64 {
        match read_mode {
            ReadMode::Lease { .. } => self.0.gen_range(920_000..=1_080_000),
            ReadMode::ReadIndex => 1_000_000,
        }
    }
}

/// What is on a node's disk: survives crashes; nothing else does.
#[derive(Clone, Debug, Default)]
struct Disk {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Disk {
    fn last_index(&self) -> LogIndex {
        self.entries
            .last()
            .map(|e| e.index)
            .or(self.snapshot.as_ref().map(|s| s.meta.index))
            .unwrap_or(LogIndex(0))
    }

    fn persist(&mut self, ready: &Ready) {
        if let Some(snapshot) = &ready.snapshot {
            self.snapshot = Some(snapshot.clone());
            self.entries.clear();
        }
        if let Some(first) = ready.entries.first() {
            self.entries.retain(|e| e.index < first.index);
            self.entries.extend(ready.entries.iter().cloned());
        }
        if let Some(hs) = ready.hard_state {
            self.hard_state = hs;
        }
    }
}

struct SimNode {
    cfg: Config,
    raw: Option<RawNode>,
    disk: Disk,
    kv: KvStore,
    clock_offset_ms: u64,
    /// How fast this node's clock runs, in parts per million of real time (1_000_000: exact).
    clock_rate_ppm: u64,
    restart_at: Option<u64>,
    leader_term_seen: Option<Term>,
    checked_commit: LogIndex,
    waiting_reads: Vec<(u64, LogIndex)>,
    /// Leaders only append: the last index this node's log had while leading its current term.
    leader_last: Option<(Term, LogIndex)>,
}

#[derive(Clone, Debug)]
struct PendingWrite {
    term: Term,
    probe: bool,
}

#[derive(Clone, Debug)]
struct PendingRead {
    key: String,
    /// The highest commit index anywhere when the read was invoked: the read must reflect at least that.
    min_index: LogIndex,
}

#[derive(Default)]
struct Network {
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    in_flight: HashMap<u64, Message>,
    next_seq: u64,
    blocked: BTreeSet<(NodeId, NodeId)>,
}

struct Sim {
    /// In about a third of the seeds, a new leader is often asked for a membership change at once, while an
    /// earlier leader's configuration may still be uncommitted (drawn from its own generator, so the other
    /// seeds run exactly as before).
    eager_conf: Option<ChaCha8Rng>,
    /// A membership change is due at the next tick (eager mode).
    conf_due: bool,
    opts: SimOptions,
    params: Params,
    rng: ChaCha8Rng,
    now: u64,
    nodes: BTreeMap<NodeId, SimNode>,
    net: Network,
    inv: Invariants,
    healed: bool,
    loss: f64,
    duplicate: f64,
    pending_writes: HashMap<(NodeId, LogIndex), PendingWrite>,
    acknowledged: Vec<(LogIndex, u64)>,
    pending_reads: HashMap<u64, PendingRead>,
    next_read_id: u64,
    next_seq: u64,
    next_value: u64,
    probe_acked_at: Option<LogIndex>,
    conf_changes: BTreeSet<LogIndex>,
    recent: VecDeque<String>,
    report: SimReport,
}

const TICK_MS: u64 = 5;
const KEYS: [&str; 4] = ["a", "b", "c", "d"];
const RECENT_EVENTS: usize = 400;

impl Sim {
    fn new(opts: SimOptions) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let params = Params::draw(&mut rng);
        let voters: Vec<NodeId> = (1..=params.voters as u64).map(NodeId).collect();
        let membership = Membership::with_voters(voters.iter().copied());
        let mut nodes = BTreeMap::new();
        // Clocks drift apart in lease mode, within the drift bound the lease promises to tolerate, drawn from
        // their own generator so that runs in read-index mode stay exactly what they were.
        let mut clock_rates = ClockRates::new(opts.seed);
        for id in 1..=(params.voters + params.spares) as u64 {
            let id = NodeId(id);
            let mut cfg = Config::new(id);
            cfg.election_timeout_min_ms = params.election_min_ms;
            cfg.election_timeout_max_ms = params.election_min_ms * 2;
            cfg.heartbeat_interval_ms = params.election_min_ms / 3;
            cfg.max_entries_per_message = params.max_entries_per_message;
            cfg.max_inflight_messages = params.max_inflight;
            cfg.read_mode = params.read_mode;
            cfg.check_quorum = params.check_quorum;
            if params.ranked_timeouts {
                cfg.election_timeout_policy = crate::config::ElectionTimeoutPolicy::Ranked;
            }
            cfg.promotion_lag_max_entries = 10;
            // Backpressure: with one entry per message and one in flight, clients outpace replication.
            cfg.max_uncommitted_entries = 64;
            cfg.rng_seed = rng.gen();
            cfg.mutations = opts.mutations;
            let raw = if id.0 <= params.voters as u64 {
                Some(
                    RawNode::bootstrap(cfg.clone(), membership.clone(), Instant(0))
                        .expect("valid config"),
                )
            } else {
                None // A spare: started when it is added to the cluster.
            };
            nodes.insert(
                id,
                SimNode {
                    cfg,
                    raw,
                    disk: Disk::default(),
                    kv: KvStore::new(64),
                    clock_offset_ms: 0,
                    clock_rate_ppm: clock_rates.draw(params.read_mode),
                    restart_at: None,
                    leader_term_seen: None,
                    checked_commit: LogIndex(0),
                    waiting_reads: Vec::new(),
                    leader_last: None,
                },
            );
        }
        let report = SimReport {
            seed: opts.seed,
            nodes: params.voters,
            ..SimReport::default()
        };
        let mut eager = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x6561_6765_7263_6f6e);
        let eager_conf = eager.gen_bool(0.3).then_some(eager);
        Sim {
            eager_conf,
            conf_due: false,
            loss: params.loss,
            duplicate: params.duplicate,
            opts,
            params,
            rng,
            now: 0,
            nodes,
            net: Network::default(),
            inv: Invariants::default(),
            healed: false,
            pending_writes: HashMap::new(),
            acknowledged: Vec::new(),
            pending_reads: HashMap::new(),
            next_read_id: 1,
            next_seq: 1,
            next_value: 1,
            probe_acked_at: None,
            conf_changes: BTreeSet::new(),
            recent: VecDeque::new(),
            report,
        }
    }

    fn event(&mut self, text: String) {
        if self.opts.trace {
            eprintln!("{:>7}ms {text}", self.now);
        }
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(format!("{:>7}ms {text}", self.now));
    }

    fn run(&mut self) -> Result<(), Violation> {
        self.event(format!("seed {} params {:?}", self.opts.seed, self.params));
        for id in self.node_ids() {
            self.process_ready(id)?;
        }
        let heal_at = self.opts.fault_ms;
        let deadline = heal_at + self.opts.liveness_ms;
        let mut next_tick = 0;
        let mut next_fault = self.params.fault_every_ms;
        let mut next_op = 0;
        loop {
            let next_msg = self
                .net
                .queue
                .peek()
                .map(|Reverse((t, _))| *t)
                .unwrap_or(u64::MAX);
            self.now = next_msg.min(next_tick);
            if self.now >= deadline {
                return Err(Violation::new(
                    "liveness",
                    format!(
                        "{} ms after healing: no leader committed a new write on every voter ({})",
                        self.opts.liveness_ms,
                        self.describe_nodes()
                    ),
                ));
            }
            if next_msg <= self.now {
                let Reverse((_, seq)) = self.net.queue.pop().expect("peeked");
                let msg = self
                    .net
                    .in_flight
                    .remove(&seq)
                    .expect("queued message is in flight");
                self.deliver(msg)?;
                continue;
            }
            next_tick += TICK_MS;
            if !self.healed && self.now >= heal_at {
                self.heal()?;
            }
            for id in self.node_ids() {
                self.tick_node(id)?;
            }
            if self.conf_due && !self.healed {
                self.conf_due = false;
                self.membership_change()?;
            }
            if !self.healed && self.now >= next_fault {
                self.inject_fault()?;
                next_fault = self.now + self.rng.gen_range(1..=2 * self.params.fault_every_ms);
            }
            if self.now >= next_op {
                self.client_op()?;
                next_op = self.now + self.rng.gen_range(1..=2 * self.params.op_every_ms);
            }
            if self.healed && self.check_converged()? {
                self.report.sim_ms = self.now;
                return self.final_checks();
            }
        }
    }

    fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    fn node_now(&self, id: NodeId) -> Instant {
        let node = &self.nodes[&id];
        Instant(node.clock_offset_ms + self.now * node.clock_rate_ppm / 1_000_000)
    }

    fn describe_nodes(&self) -> String {
        self.nodes
            .iter()
            .map(|(id, n)| match &n.raw {
                Some(raw) => format!(
                    "{id}: {} {} commit {:?} last {:?} {:?}",
                    raw.role(),
                    raw.term(),
                    raw.log().commit(),
                    raw.log().last_index(),
                    raw.membership()
                ),
                None => format!("{id}: down"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    // ------------------------------------------------------------------------------------------------
    // Driving nodes.

    fn tick_node(&mut self, id: NodeId) -> Result<(), Violation> {
        let now = self.node_now(id);
        let node = self.nodes.get_mut(&id).expect("known node");
        if let Some(at) = node.restart_at {
            if self.now >= at {
                self.restart(id)?;
            }
            return Ok(());
        }
        let Some(raw) = node.raw.as_mut() else {
            return Ok(());
        };
        raw.tick(now);
        self.process_ready(id)
    }

    fn deliver(&mut self, msg: Message) -> Result<(), Violation> {
        if self.net.blocked.contains(&(msg.from, msg.to)) {
            return Ok(()); // A partition formed while the message was in flight.
        }
        let to = msg.to;
        let now = self.node_now(to);
        if self.nodes.get(&to).and_then(|n| n.raw.as_ref()).is_none() {
            return Ok(());
        }
        self.report.messages_delivered += 1;
        if self.opts.trace {
            self.event(format!(
                "deliver {} -> {} {} {:?}",
                msg.from,
                msg.to,
                msg.term,
                msg.body.kind()
            ));
        }
        let raw = self
            .nodes
            .get_mut(&to)
            .and_then(|n| n.raw.as_mut())
            .expect("checked above");
        raw.step(msg, now);
        self.process_ready(to)
    }

    fn send(&mut self, msg: Message) {
        if self.net.blocked.contains(&(msg.from, msg.to)) || self.rng.gen_bool(self.loss) {
            return;
        }
        let copies = if self.rng.gen_bool(self.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if !self.healed && self.rng.gen_bool(self.params.slow) {
                self.rng.gen_range(0..self.params.slow_max_ms)
            } else {
                self.rng
                    .gen_range(self.params.delay_min_ms..=self.params.delay_max_ms)
            };
            let at = self.now + delay;
            let seq = self.net.next_seq;
            self.net.next_seq += 1;
            self.net.queue.push(Reverse((at, seq)));
            self.net.in_flight.insert(seq, msg.clone());
        }
    }

    /// Drains every Ready of node `id`, persisting, sending and applying as the contract says, and checks
    /// the invariants along the way.
    fn process_ready(&mut self, id: NodeId) -> Result<(), Violation> {
        loop {
            self.observe(id)?;
            let node = self.nodes.get_mut(&id).expect("known node");
            let Some(raw) = node.raw.as_mut() else {
                return Ok(());
            };
            if !raw.has_ready() {
                return Ok(());
            }
            let ready = raw.ready();
            // Log Matching and "leaders only append" are checked on what is about to become durable.
            let is_leader = raw.role() == Role::Leader;
            if let Some(first) = ready.entries.first() {
                if is_leader && first.index <= node.disk.last_index() && ready.snapshot.is_none() {
                    return Err(Violation::new(
                        "leaders only append",
                        format!("leader {id} overwrote its durable entry {:?}", first.index),
                    ));
                }
                let mut prev_term = match &ready.snapshot {
                    Some(s) if first.index == s.meta.index.next() => s.meta.term,
                    _ => raw
                        .log()
                        .term(first.index.prev())
                        .expect("entry before an unpersisted entry is known"),
                };
                for entry in &ready.entries {
                    self.inv.entry_persisted(id, entry, prev_term)?;
                    prev_term = entry.term;
                }
            }
            let messages = ready.messages.clone();
            for msg in messages {
                self.send(msg);
            }
            if !self.healed && self.rng.gen_bool(self.params.crash_before_persist) {
                self.event(format!("crash {id} before persisting a ready"));
                self.report.crashes += 1;
                let node = self.nodes.get_mut(&id).expect("known node");
                drop(ready);
                node.raw = None;
                self.crash_cleanup(id);
                return Ok(());
            }
            let node = self.nodes.get_mut(&id).expect("known node");
            node.disk.persist(&ready);
            if let Some(snapshot) = &ready.snapshot {
                node.kv
                    .restore(&snapshot.data)
                    .expect("snapshots made by KvStore restore");
                self.report.snapshots_installed += 1;
                self.event(format!(
                    "{id} installed snapshot at {:?}",
                    snapshot.meta.index
                ));
            }
            for msg in ready.persisted_messages.iter().cloned() {
                self.send(msg);
            }
            for entry in &ready.committed_entries {
                self.apply(id, entry)?;
            }
            let node = self.nodes.get_mut(&id).expect("known node");
            for read in &ready.read_states {
                node.waiting_reads.push((read.id, read.index));
            }
            for read in &ready.failed_reads {
                self.pending_reads.remove(read);
            }
            let voted = ready
                .hard_state
                .is_some_and(|hs| hs.vote.is_some_and(|v| v != id));
            let node = self.nodes.get_mut(&id).expect("known node");
            let raw = node.raw.as_mut().expect("still up");
            raw.advance(ready);
            if voted && !self.healed && self.rng.gen_bool(self.params.crash_after_vote) {
                let restart_in = self.rng.gen_range(0..self.params.delay_max_ms + 1);
                self.event(format!(
                    "crash {id} right after persisting its vote, restart in {restart_in} ms"
                ));
                let node = self.nodes.get_mut(&id).expect("known node");
                node.raw = None;
                node.restart_at = Some(self.now + restart_in);
                self.report.crashes += 1;
                self.crash_cleanup(id);
                return Ok(());
            }
            self.serve_reads(id)?;
            self.maybe_compact(id);
        }
    }

    fn apply(&mut self, id: NodeId, entry: &Entry) -> Result<(), Violation> {
        self.inv.applied(id, entry)?;
        let node = self.nodes.get_mut(&id).expect("known node");
        match &entry.payload {
            EntryPayload::Command(data) => {
                let output = node.kv.apply(entry.index, data);
                if let Some(pending) = self.pending_writes.remove(&(id, entry.index)) {
                    if pending.term == entry.term {
                        assert!(
                            !matches!(output, KvOutput::Malformed),
                            "sim commands are well-formed"
                        );
                        self.acknowledged.push((entry.index, entry_digest(entry)));
                        self.report.writes_acknowledged += 1;
                        if pending.probe {
                            self.probe_acked_at = Some(entry.index);
                        }
                    }
                }
            }
            EntryPayload::Conf(m) => {
                if entry.index > LogIndex(1) && self.conf_changes.insert(entry.index) {
                    self.report.membership_changes += 1;
                    let m = m.clone();
                    self.event(format!(
                        "{id} applied configuration {m:?} at {:?}",
                        entry.index
                    ));
                }
            }
            EntryPayload::Noop => {}
        }
        Ok(())
    }

    fn serve_reads(&mut self, id: NodeId) -> Result<(), Violation> {
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(raw) = node.raw.as_ref() else {
            return Ok(());
        };
        let applied = raw.log().applied();
        let (ready, waiting): (Vec<_>, Vec<_>) = node
            .waiting_reads
            .drain(..)
            .partition(|(_, index)| *index <= applied);
        node.waiting_reads = waiting;
        for (read_id, _) in ready {
            let Some(read) = self.pending_reads.remove(&read_id) else {
                continue;
            };
            let node = &self.nodes[&id];
            let value = node.kv.get(&read.key).cloned();
            if applied < read.min_index {
                return Err(Violation::new(
                    "linearizable reads",
                    format!(
                        "{id} answered a read of {:?} with {value:?} from applied index {applied:?}, but {:?} was committed before the read began",
                        read.key, read.min_index
                    ),
                ));
            }
            self.report.reads_checked += 1;
        }
        Ok(())
    }

    fn maybe_compact(&mut self, id: NodeId) {
        let every = self.params.snapshot_every;
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(raw) = node.raw.as_mut() else { return };
        let applied = raw.log().applied();
        if applied.0.saturating_sub(raw.log().snapshot_index().0) < every {
            return;
        }
        let data = node.kv.snapshot();
        let meta = raw
            .compact(applied, data.clone())
            .expect("applied index can be compacted");
        // The snapshot is made durable first, then the log is trimmed (as a real node would).
        node.disk.snapshot = Some(Snapshot {
            meta: meta.clone(),
            data: std::sync::Arc::new(data),
        });
        node.disk.entries.retain(|e| e.index > meta.index);
    }

    /// Checks the per-node invariants that depend on its current state.
    fn observe(&mut self, id: NodeId) -> Result<(), Violation> {
        let trace = self.opts.trace;
        let now = self.now;
        let recent = &mut self.recent;
        let mut event = |text: String| {
            if trace {
                eprintln!("{now:>7}ms {text}");
                recent.push_back(format!("{now:>7}ms {text}"));
            }
        };
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(raw) = node.raw.as_ref() else {
            return Ok(());
        };
        let commit = raw.log().commit();
        if commit > node.checked_commit {
            let from = node.checked_commit.next().max(raw.log().snapshot_index());
            let log = raw.log();
            self.inv.commit_seen(id, from, commit, |i| log.term(i))?;
            node.checked_commit = commit;
            if self.opts.trace {
                let (role, term, last) = (raw.role(), raw.term(), raw.log().last_index());
                let persisted = raw.log().persisted();
                event(format!("{id} ({role} {term}) commit -> {commit:?}, last {last:?} persisted {persisted:?}"));
            }
            self.report.commit_index = self.report.commit_index.max(commit.0);
        }
        if raw.role() == Role::Leader {
            let term = raw.term();
            let last = raw.log().last_index();
            self.inv.leader_seen(term, id)?;
            if node.leader_term_seen != Some(term) {
                node.leader_term_seen = Some(term);
                let log = raw.log();
                self.inv
                    .leader_complete(id, term, log.snapshot_index(), |i| log.term(i))?;
                self.report.leader_terms += 1;
                self.recent_event_leader(id, term);
                if let Some(eager) = self.eager_conf.as_mut() {
                    self.conf_due |= eager.gen_bool(0.5);
                }
            }
            let node = self.nodes.get_mut(&id).expect("known node");
            if let Some((t, prev_last)) = node.leader_last {
                if t == term && last < prev_last {
                    return Err(Violation::new(
                        "leaders only append",
                        format!(
                            "leader {id} of {term} shrank its log from {prev_last:?} to {last:?}"
                        ),
                    ));
                }
            }
            node.leader_last = Some((term, last));
        }
        Ok(())
    }

    fn recent_event_leader(&mut self, id: NodeId, term: Term) {
        self.event(format!("{id} became leader of {term}"));
    }

    // ------------------------------------------------------------------------------------------------
    // Crashes.

    fn crash(&mut self, id: NodeId) {
        let restart_in = self.rng.gen_range(50..2_000);
        let node = self.nodes.get_mut(&id).expect("known node");
        if node.raw.is_none() {
            return;
        }
        node.raw = None;
        node.restart_at = Some(self.now + restart_in);
        self.report.crashes += 1;
        self.crash_cleanup(id);
        self.event(format!("crash {id}, restart in {restart_in} ms"));
    }

    fn crash_cleanup(&mut self, id: NodeId) {
        let restart_in = self.rng.gen_range(50..2_000);
        let now = self.now;
        let node = self.nodes.get_mut(&id).expect("known node");
        node.restart_at.get_or_insert(now + restart_in);
        node.waiting_reads.clear();
        node.kv = KvStore::new(64);
        node.leader_term_seen = None;
        node.leader_last = None;
        self.pending_writes.retain(|(n, _), _| *n != id);
        if self.healed {
            node.restart_at = Some(now);
        }
    }

    fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        let now = self.node_now(id);
        let node = self.nodes.get_mut(&id).expect("known node");
        node.restart_at = None;
        let persisted = Persisted {
            hard_state: node.disk.hard_state,
            snapshot: node.disk.snapshot.clone(),
            entries: node.disk.entries.clone(),
        };
        if let Some(snapshot) = &persisted.snapshot {
            node.kv
                .restore(&snapshot.data)
                .expect("snapshots made by KvStore restore");
        }
        node.checked_commit = persisted
            .snapshot
            .as_ref()
            .map_or(LogIndex(0), |s| s.meta.index);
        node.raw = Some(RawNode::restart(node.cfg.clone(), persisted, now).expect("valid config"));
        self.event(format!("restart {id}"));
        self.process_ready(id)
    }

    // ------------------------------------------------------------------------------------------------
    // Faults.

    fn current_leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|(&id, n)| {
                n.raw
                    .as_ref()
                    .filter(|r| r.role() == Role::Leader)
                    .map(|r| (r.term(), id))
            })
            .max()
            .map(|(_, id)| id)
    }

    fn live_ids(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.raw.is_some())
            .map(|(&id, _)| id)
            .collect()
    }

    fn cluster_ids(&self) -> Vec<NodeId> {
        // Nodes that have been started at least once (initial voters and spares added so far).
        self.nodes
            .iter()
            .filter(|(_, n)| {
                n.raw.is_some() || n.restart_at.is_some() || n.disk.hard_state.term > Term(0)
            })
            .map(|(&id, _)| id)
            .collect()
    }

    fn inject_fault(&mut self) -> Result<(), Violation> {
        let ids = self.cluster_ids();
        let choice = self.rng.gen_range(0..100);
        match choice {
            0..=19 => {
                // Partition into random groups (sometimes isolating the leader).
                let groups = self.rng.gen_range(2..=3);
                let leader = self.current_leader();
                let mut assignment: BTreeMap<NodeId, usize> = ids
                    .iter()
                    .map(|&id| (id, self.rng.gen_range(0..groups)))
                    .collect();
                if let (Some(l), true) = (leader, self.rng.gen_bool(0.5)) {
                    for (id, g) in assignment.iter_mut() {
                        *g = usize::from(*id == l);
                    }
                }
                self.net.blocked.clear();
                for &a in &ids {
                    for &b in &ids {
                        if assignment[&a] != assignment[&b] {
                            self.net.blocked.insert((a, b));
                        }
                    }
                }
                self.event(format!("partition {assignment:?}"));
            }
            20..=27 => {
                // One-way faults: some directed links drop everything.
                self.net.blocked.clear();
                for &a in &ids {
                    for &b in &ids {
                        if a != b && self.rng.gen_bool(0.25) {
                            self.net.blocked.insert((a, b));
                        }
                    }
                }
                self.event(format!("one-way partition {:?}", self.net.blocked));
            }
            28..=39 => {
                self.net.blocked.clear();
                self.event("heal network".into());
            }
            40..=54 => {
                let live = self.live_ids();
                let target = if self.rng.gen_bool(0.5) {
                    self.current_leader()
                } else {
                    live.choose(&mut self.rng).copied()
                };
                if let Some(id) = target {
                    self.crash(id);
                }
            }
            55..=62 if self.params.clock_jumps => {
                if let Some(&id) = ids.choose(&mut self.rng) {
                    let jump = self.rng.gen_range(10..1_000);
                    self.nodes.get_mut(&id).expect("known node").clock_offset_ms += jump;
                    self.event(format!("clock of {id} jumps {jump} ms forward"));
                }
            }
            63..=74 => self.membership_change()?,
            75..=82 => {
                if let Some(leader) = self.current_leader() {
                    let voters: Vec<NodeId> = self.nodes[&leader]
                        .raw
                        .as_ref()
                        .expect("leader is up")
                        .membership()
                        .voters
                        .iter()
                        .copied()
                        .filter(|&v| v != leader)
                        .collect();
                    if let Some(&target) = voters.choose(&mut self.rng) {
                        let now = self.node_now(leader);
                        let raw = self
                            .nodes
                            .get_mut(&leader)
                            .and_then(|n| n.raw.as_mut())
                            .expect("leader is up");
                        if raw.transfer_leadership(target, now).is_ok() {
                            self.event(format!("transfer leadership {leader} -> {target}"));
                        }
                        self.process_ready(leader)?;
                    }
                }
            }
            _ => {
                self.loss = self.rng.gen_range(0.0..0.3);
                self.duplicate = self.rng.gen_range(0.0..0.1);
                self.event(format!(
                    "link loss {:.2} duplication {:.2}",
                    self.loss, self.duplicate
                ));
            }
        }
        Ok(())
    }

    fn membership_change(&mut self) -> Result<(), Violation> {
        let Some(leader) = self.current_leader() else {
            return Ok(());
        };
        let membership = self.nodes[&leader]
            .raw
            .as_ref()
            .expect("leader is up")
            .membership()
            .clone();
        let spare = self
            .nodes
            .iter()
            .find(|(_, n)| {
                n.raw.is_none()
                    && n.restart_at.is_none()
                    && n.disk.hard_state.term == Term(0)
                    && n.disk.entries.is_empty()
            })
            .map(|(&id, _)| id)
            .filter(|id| !membership.contains(*id));
        let change = if let Some(&learner) = membership.learners.iter().next() {
            ConfChange::PromoteLearner(learner)
        } else if membership.voters.len() > 3 && self.rng.gen_bool(0.5) {
            let voters: Vec<NodeId> = membership.voters.iter().copied().collect();
            ConfChange::Remove(*voters.choose(&mut self.rng).expect("non-empty"))
        } else if let Some(id) = spare {
            ConfChange::AddLearner(id)
        } else if membership.voters.len() > 3 {
            let voters: Vec<NodeId> = membership.voters.iter().copied().collect();
            ConfChange::Remove(*voters.choose(&mut self.rng).expect("non-empty"))
        } else {
            return Ok(());
        };
        let now = self.node_now(leader);
        let raw = self
            .nodes
            .get_mut(&leader)
            .and_then(|n| n.raw.as_mut())
            .expect("leader is up");
        let result = raw.propose_conf_change(change, now);
        self.event(format!("{leader} proposes {change:?}: {result:?}"));
        if let (Ok(_), ConfChange::AddLearner(id)) = (&result, change) {
            let now = self.node_now(id);
            let node = self.nodes.get_mut(&id).expect("known node");
            node.raw = Some(RawNode::join(node.cfg.clone(), now).expect("valid config"));
        }
        self.process_ready(leader)
    }

    fn heal(&mut self) -> Result<(), Violation> {
        self.healed = true;
        self.net.blocked.clear();
        self.loss = 0.0;
        self.duplicate = 0.0;
        self.event("heal everything".into());
        for id in self.node_ids() {
            let node = self.nodes.get_mut(&id).expect("known node");
            if node.restart_at.is_some() {
                node.restart_at = Some(self.now);
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------------------------------------
    // Clients.

    fn client_op(&mut self) -> Result<(), Violation> {
        let live = self.live_ids();
        let target = match self.current_leader() {
            Some(leader) if self.rng.gen_bool(0.8) => leader,
            _ => match live.choose(&mut self.rng) {
                Some(&id) => id,
                None => return Ok(()),
            },
        };
        let now = self.node_now(target);
        let key = KEYS.choose(&mut self.rng).expect("non-empty").to_string();
        let probe = self.healed && self.probe_acked_at.is_none();
        if self.rng.gen_bool(0.6) || probe {
            let value = format!("v{}", self.next_value);
            self.next_value += 1;
            let seq = self.next_seq;
            self.next_seq += 1;
            let command = KvCommand {
                client: 1,
                seq,
                op: KvOp::Put { key, value },
            }
            .encode();
            let raw = self
                .nodes
                .get_mut(&target)
                .and_then(|n| n.raw.as_mut())
                .expect("live");
            if let Ok((index, term)) = raw.propose(command, now) {
                self.pending_writes
                    .insert((target, index), PendingWrite { term, probe });
            }
        } else {
            let id = self.next_read_id;
            self.next_read_id += 1;
            self.pending_reads.insert(
                id,
                PendingRead {
                    key,
                    min_index: self.inv.max_commit(),
                },
            );
            let raw = self
                .nodes
                .get_mut(&target)
                .and_then(|n| n.raw.as_mut())
                .expect("live");
            raw.read_index(id, now);
        }
        self.process_ready(target)
    }

    // ------------------------------------------------------------------------------------------------
    // The end.

    /// After healing: done once a write proposed after the heal is acknowledged and every voter of the
    /// leader's configuration has applied it.
    fn check_converged(&mut self) -> Result<bool, Violation> {
        let Some(index) = self.probe_acked_at else {
            return Ok(false);
        };
        let Some(leader) = self.current_leader() else {
            return Ok(false);
        };
        let membership = self.nodes[&leader]
            .raw
            .as_ref()
            .expect("leader is up")
            .membership()
            .clone();
        let all_applied = membership.members().all(|id| {
            self.nodes[&id]
                .raw
                .as_ref()
                .is_some_and(|r| r.log().applied() >= index)
        });
        Ok(all_applied)
    }

    fn final_checks(&mut self) -> Result<(), Violation> {
        // Every acknowledged write is in the agreed history at its index: nothing acknowledged was lost.
        for &(index, digest) in &self.acknowledged {
            let applied = self.inv.applied_digest(index);
            if applied != Some(digest) {
                return Err(Violation::new(
                    "acknowledged writes are durable",
                    format!("write acknowledged at {index:?} is not the entry applied there"),
                ));
            }
        }
        // All voters' state machines agree where they have applied the same prefix.
        let leader = self
            .current_leader()
            .expect("converged means a leader exists");
        let leader_kv = self.nodes[&leader].kv.clone();
        let leader_applied = self.nodes[&leader]
            .raw
            .as_ref()
            .expect("up")
            .log()
            .applied();
        for (id, node) in &self.nodes {
            let Some(raw) = node.raw.as_ref() else {
                continue;
            };
            if raw.log().applied() == leader_applied && node.kv.iter().ne(leader_kv.iter()) {
                return Err(Violation::new(
                    "state machine safety",
                    format!("{id} and {leader} applied up to {leader_applied:?} but hold different maps"),
                ));
            }
        }
        Ok(())
    }

    fn report(&self) -> SimReport {
        self.report.clone()
    }
}
