//! Checks a parsed plan's values against each other, against the limits of the backends that will carry
//! them out and against what the target can honour, so that a plan that validates can run as written.

use super::{HostsKind, Model, NetworkBackendKind, Plan, PlanError, Target, TriggerSource};
use crate::faults::{Family, FaultSpec};
use std::time::Duration;

/// Most nodes a cluster may have.
pub const NODES_MAX: usize = 9;
/// Most concurrent clients.
pub const CLIENTS_MAX: usize = 1000;
/// Most keys in use at once (each costs memory in the key pool and the checker).
pub const KEYS_MAX: usize = 10_000;
/// The rates a workload may ask for, in operations per second.
pub const RATE_RANGE: (f64, f64) = (0.1, 100_000.0);
/// How much certificates must outlive the planned run, for startup, checking and slack.
pub const CERT_SLACK: Duration = Duration::from_secs(3600);

impl Plan {
    /// Checks values against each other; `origin` names the plan in errors.
    pub fn validate(&self, origin: &str) -> Result<(), PlanError> {
        let invalid = |field: &str, message: String| PlanError::Invalid {
            path: origin.to_string(),
            field: field.to_string(),
            message,
        };
        self.validate_top().map_err(|(f, m)| invalid(f, m))?;
        // The message names its field (`expect.availability_min: ...`).
        self.expect.validate().map_err(|message| PlanError::Parse {
            path: origin.to_string(),
            message,
        })?;
        // The target's refusal first: it names the root cause (e.g. etcd cannot be clock-faulted at all).
        if let Some((field, why)) = self.cluster.target.refuse(self) {
            return Err(invalid(
                &field,
                format!(
                    "the {} target cannot honour this: {why}",
                    self.cluster.target.name()
                ),
            ));
        }
        self.validate_cluster().map_err(|(f, m)| invalid(f, m))?;
        self.validate_workload().map_err(|(f, m)| invalid(f, m))?;
        for i in 0..self.faults.len() {
            self.validate_fault(i)
                .map_err(|(f, m)| invalid(&format!("faults[{i}].{f}"), m))?;
        }
        Ok(())
    }

    fn validate_top(&self) -> Result<(), (&'static str, String)> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err((
                "name",
                format!("expected letters, digits, '-' or '_', got {:?}", self.name),
            ));
        }
        if self.duration.0.is_zero() {
            return Err(("duration", "must be longer than 0s".into()));
        }
        let watch = Duration::from_millis(1)..=Duration::from_secs(1);
        if !watch.contains(&self.watch_interval.0) {
            return Err((
                "watch_interval",
                format!("expected 1ms to 1s, got {}", self.watch_interval),
            ));
        }
        Ok(())
    }

    fn validate_cluster(&self) -> Result<(), (&'static str, String)> {
        let c = &self.cluster;
        if !(1..=NODES_MAX).contains(&c.nodes) {
            return Err((
                "cluster.nodes",
                format!("expected 1 to {NODES_MAX} nodes, got {}", c.nodes),
            ));
        }
        if c.heartbeat_interval.0.is_zero()
            || c.election_timeout_min <= c.heartbeat_interval
            || c.election_timeout_max <= c.election_timeout_min
        {
            return Err((
                "cluster",
                format!(
                    "expected 0 < heartbeat_interval ({}) < election_timeout_min ({}) < election_timeout_max ({})",
                    c.heartbeat_interval, c.election_timeout_min, c.election_timeout_max
                ),
            ));
        }
        let needed =
            self.total() + c.startup_timeout.0 + self.workload.check_time_limit.0 + CERT_SLACK;
        if c.cert_validity.0 < needed {
            return Err((
                "cluster.cert_validity",
                format!(
                    "{} would let the certificates expire during the run; it must cover the run ({}), startup, \
                     checking and an hour of slack: at least {}",
                    c.cert_validity,
                    humantime::format_duration(self.total()),
                    humantime::format_duration(Duration::from_secs(needed.as_secs() + 1))
                ),
            ));
        }
        if !c.tls && c.target == crate::targets::TargetKind::RaftNode {
            return Err((
                "cluster.tls",
                "raft-node always uses mutual TLS; tls = false is only for targets that can run without it".into(),
            ));
        }
        if c.network == NetworkBackendKind::Relay
            && c.hosts == HostsKind::Netns
            && self.needs_network()
        {
            return Err((
                "cluster.network",
                "the relay backend runs on local hosts only; netns hosts use kernel rules (network = \"auto\")".into(),
            ));
        }
        Ok(())
    }

    fn validate_workload(&self) -> Result<(), (&'static str, String)> {
        let w = &self.workload;
        if w.clients == 0 || w.clients > CLIENTS_MAX {
            return Err((
                "workload.clients",
                format!("expected 1 to {CLIENTS_MAX}, got {}", w.clients),
            ));
        }
        if !(w.rate >= RATE_RANGE.0 && w.rate <= RATE_RANGE.1) {
            return Err((
                "workload.rate",
                format!(
                    "expected operations per second in [{}, {}], got {}",
                    RATE_RANGE.0, RATE_RANGE.1, w.rate
                ),
            ));
        }
        if w.keys == 0 || w.keys > KEYS_MAX {
            return Err((
                "workload.keys",
                format!(
                    "expected 1 to {KEYS_MAX} keys in use at once, got {}",
                    w.keys
                ),
            ));
        }
        if w.ops_per_key == 0 {
            return Err(("workload.ops_per_key", "must be at least 1".into()));
        }
        let m = w.mix;
        let parts = [m.read, m.write, m.cas];
        if parts.iter().any(|x| !x.is_finite() || *x < 0.0) || parts.iter().sum::<f64>() <= 0.0 {
            return Err((
                "workload.mix",
                format!(
                    "expected finite non-negative fractions, not all zero; got read {}, write {}, cas {}",
                    m.read, m.write, m.cas
                ),
            ));
        }
        if w.model == Model::Register && m.cas > 0.0 {
            return Err((
                "workload.mix.cas",
                "the register model has no cas; use model = \"cas-register\"".into(),
            ));
        }
        if w.request_timeout.0 < Duration::from_millis(1) {
            return Err(("workload.request_timeout", "must be at least 1ms".into()));
        }
        if let Some(attempt) = w.attempt_timeout {
            if attempt.0 < Duration::from_millis(1) || attempt > w.request_timeout {
                return Err((
                    "workload.attempt_timeout",
                    format!(
                        "expected at least 1ms and at most request_timeout ({}), got {attempt}",
                        w.request_timeout
                    ),
                ));
            }
        }
        if let super::ReadsFrom::Node(id) = w.reads_from {
            if id as usize > self.cluster.nodes {
                return Err((
                    "workload.reads_from",
                    format!(
                        "n{id} does not exist: the cluster has {} nodes",
                        self.cluster.nodes
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_fault(&self, i: usize) -> Result<(), (&'static str, String)> {
        let f = &self.faults[i];
        let ways = usize::from(!f.at.is_empty())
            + usize::from(f.every.is_some())
            + usize::from(f.trigger.is_some());
        if ways != 1 {
            return Err((
                "at",
                "give one of `at` (fixed times), `every` (random interval), `when` (with another fault's \
                 start), `after` (at another fault's end) or `on` (a cluster event)"
                    .into(),
            ));
        }
        if let Some(t) = &f.trigger {
            let key = match &t.source {
                TriggerSource::Fault { name, edge } => {
                    let key = edge.key();
                    let other = self.fault_named(i, name).map_err(|m| (key, m))?;
                    if self.trigger_loops(i, other) {
                        return Err((
                            key,
                            format!(
                                "{name:?} is started, directly or not, by this fault: the triggers form a loop"
                            ),
                        ));
                    }
                    key
                }
                TriggerSource::Cluster(_) => "on",
            };
            if t.wait.0 + f.duration.0 > self.duration.0 {
                return Err((
                    if t.wait.0.is_zero() { key } else { "wait" },
                    format!(
                        "wait {} plus duration {} do not fit in the fault phase ({})",
                        t.wait, f.duration, self.duration
                    ),
                ));
            }
        }
        if let Some(name) = &f.same_as {
            self.fault_named(i, name).map_err(|m| ("same_as", m))?;
        }
        if let Some(every) = f.every {
            if every.0 < Duration::from_millis(10) {
                return Err(("every", format!("expected at least 10ms, got {every}")));
            }
        }
        if f.duration.0.is_zero() {
            return Err(("duration", "must be longer than 0s".into()));
        }
        for t in &f.at {
            if *t >= self.duration {
                return Err((
                    "at",
                    format!("{t} is not within the fault phase ({})", self.duration),
                ));
            }
            if t.0 + f.duration.0 > self.duration.0 {
                return Err((
                    "duration",
                    format!(
                        "the fault at {t} would last until {}, past the end of the fault phase ({}); \
                         shorten it or lengthen the phase (faults are never clipped silently)",
                        humantime::format_duration(t.0 + f.duration.0),
                        self.duration
                    ),
                ));
            }
        }
        let on_event = matches!(
            f.trigger,
            Some(super::Trigger {
                source: TriggerSource::Cluster(_),
                ..
            })
        );
        if f.target == Target::Observed && (!on_event || f.same_as.is_some()) {
            return Err((
                "target",
                "\"observed\" is the node a cluster event is about, so it needs `on` (and no `same_as`)".into(),
            ));
        }
        if let Target::Node(id) = f.target {
            if id as usize > self.cluster.nodes {
                return Err((
                    "target",
                    format!(
                        "n{id} does not exist: the cluster has {} nodes",
                        self.cluster.nodes
                    ),
                ));
            }
        }
        f.spec.validate(self.cluster.nodes)?;
        let kernel = self.cluster.network_backend() == NetworkBackendKind::Nftables;
        if let (FaultSpec::Packet(p), true) = (&f.spec, kernel) {
            if !p.only_loss() {
                return Err((
                    "kind",
                    "the nftables backend can only cut links and drop a fraction of packets (loss), since this \
                     kernel has no netem; use cluster.network = \"relay\" on local hosts"
                        .into(),
                ));
            }
        }
        if f.spec.touches_clients() && !(kernel && self.cluster.hosts == HostsKind::Local) {
            let field = if matches!(f.spec, FaultSpec::Partition(_)) {
                "clients"
            } else {
                "links"
            };
            return Err((
                field,
                "faults on client links need cluster.network = \"nftables\" on local hosts (each client sends \
                 from a loopback address of its own, which kernel rules can tell apart)"
                    .into(),
            ));
        }
        if f.spec.family() == Family::Clock && self.cluster.hosts != HostsKind::Local {
            return Err((
                "kind",
                "clock faults need the clock shim next to the node; they run on local hosts only"
                    .into(),
            ));
        }
        if f.spec.family() == Family::Membership {
            self.validate_membership(f)?;
        }
        if f.spec.family() == Family::Disk && self.cluster.hosts == HostsKind::Ssh {
            return Err((
                "kind",
                "disk faults mount a FUSE layer over the node's data dir on this machine; they run on local or \
                 netns hosts only, not on SSH hosts"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl Plan {
    /// What membership faults need: raft-node on local hosts, a single node as target, kernel rules for
    /// network faults (the relay mesh has no links for nodes that join at run time). Disk and clock faults
    /// are fine: a joining node gets its disk layer and clock control before it starts.
    fn validate_membership(&self, f: &super::FaultPlan) -> Result<(), (&'static str, String)> {
        let kind = f.spec.kind();
        if self.cluster.target != crate::targets::TargetKind::RaftNode {
            return Err((
                "kind",
                format!(
                    "{kind} changes membership through raft-node's admin interface; cluster.target = \"{}\" is not supported",
                    self.cluster.target.name()
                ),
            ));
        }
        if self.cluster.hosts != HostsKind::Local {
            return Err((
                "kind",
                format!("{kind} adds nodes on this machine; it runs with cluster.hosts = \"local\" only"),
            ));
        }
        if self.needs_network() && self.cluster.network_backend() != NetworkBackendKind::Nftables {
            return Err((
                "kind",
                format!(
                    "{kind} with network faults needs cluster.network = \"nftables\": the relay mesh cannot give \
                     nodes that join at run time links of their own"
                ),
            ));
        }
        if matches!(f.target, Target::Minority | Target::Majority | Target::All) {
            return Err((
                "target",
                format!("{kind} changes one node at a time: expected random, leader, follower, lagging or a node id"),
            ));
        }
        Ok(())
    }

    /// The index of the fault called `name` (its `name`, or its kind when it has none), referred to by fault
    /// `from`; it must exist, be another fault, and be the only one with that name.
    pub(crate) fn fault_named(&self, from: usize, name: &str) -> Result<usize, String> {
        let found: Vec<usize> = (0..self.faults.len())
            .filter(|&j| self.faults[j].label() == name)
            .collect();
        match found.as_slice() {
            [] => {
                let names: Vec<&str> = self.faults.iter().map(|f| f.label()).collect();
                Err(format!("no fault is called {name:?}; the faults are called {}", names.join(", ")))
            }
            [j] if *j == from => Err(format!("{name:?} is this fault itself")),
            [j] => Ok(*j),
            many => Err(format!(
                "{name:?} is ambiguous: faults{many:?} are all called that; give them distinct `name`s"
            )),
        }
    }

    /// Whether following triggers from fault `start` leads back to fault `me`.
    fn trigger_loops(&self, me: usize, start: usize) -> bool {
        let mut at = start;
        for _ in 0..=self.faults.len() {
            if at == me {
                return true;
            }
            match self.started_by(at) {
                Some(next) => at = next,
                None => return false,
            }
        }
        true
    }
}

/// The most nodes any run can have (for cleaning up a crashed run's namespaces without knowing its size).
pub fn nodes_max() -> u64 {
    NODES_MAX as u64
}
