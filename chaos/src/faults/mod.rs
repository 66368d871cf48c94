//! Fault families (the model: Jepsen's `nemesis/combined.clj` packages). Each family is one module that owns
//! its plan fields and their validation, how its targets become links or settings, and how its faults start,
//! end and heal at run time:
//!
//! - [`process`]: `kill`, `terminate`, `pause` (signals through the supervisor);
//! - [`network`]: `partition`, `packet` (relay mesh or kernel rules);
//! - [`clock`]: `clock-bump`, `clock-strobe`, `clock-drift` (the clock shim);
//! - [`disk`]: `lose-unsynced`, `torn-write`, `disk-full`, `slow-fsync`, `corrupt` (the FUSE layer);
//! - [`membership`]: `add`, `remove`, `replace`, `wipe-rejoin` (the target's admin interface; carried out by
//!   the runner, which owns the cluster they change).
//!
//! To add a family: a module with its plan struct (`parse(kind, fields)`, `validate`) and its run-time state
//! (start / end / heal), one arm in [`FaultSpec`] and one in [`Nemeses`]. Plans name faults by `kind`; which
//! family a kind belongs to is decided in [`FaultSpec::parse`] alone.

pub mod clock;
pub mod disk;
pub mod membership;
pub mod network;
pub mod process;

use crate::schedule::ScheduledFault;
use crate::supervisor::NodeProcesses;
use std::time::{Duration, Instant};

/// One fault's family-specific plan fields.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum FaultSpec {
    /// kill, terminate, pause.
    Process(process::ProcessFault),
    /// Cut links in the shape of a topology.
    Partition(network::PartitionFault),
    /// Degrade the targets' links.
    Packet(network::PacketFault),
    /// Step, strobe or drift the targets' clocks.
    Clock(clock::ClockFault),
    /// Cut the power, tear writes, fill, slow or corrupt the targets' disks.
    Disk(disk::DiskFault),
    /// Add, remove, replace or wipe-and-rejoin members.
    Membership(membership::MembershipFault),
}

/// Which run-time machinery a family needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    /// Signals through the supervisor.
    Process,
    /// A network backend.
    Network,
    /// The clock shim.
    Clock,
    /// The FUSE layer over the data dirs.
    Disk,
    /// The cluster itself (membership changes, carried out by the runner).
    Membership,
}

/// Every kind a plan may name, for error messages.
pub fn all_kinds() -> Vec<&'static str> {
    process::KINDS
        .iter()
        .chain(network::KINDS.iter())
        .chain(clock::KINDS.iter())
        .chain(disk::KINDS.iter())
        .chain(membership::KINDS.iter())
        .copied()
        .collect()
}

fn parse_as<T: serde::de::DeserializeOwned>(rest: &toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(rest.clone())).map_err(|e| e.message().to_string())
}

impl FaultSpec {
    /// Parses the family fields of a fault of `kind` (the common fields already taken out of `rest`).
    pub fn parse(kind: &str, rest: &toml::Table) -> Result<FaultSpec, String> {
        if let Some(p) = process::ProcessFault::parse(kind, rest) {
            return p.map(FaultSpec::Process);
        }
        if let Some(c) = clock::ClockFault::parse(kind, rest) {
            return c.map(FaultSpec::Clock);
        }
        if let Some(d) = disk::DiskFault::parse(kind, rest) {
            return d.map(FaultSpec::Disk);
        }
        if let Some(m) = membership::MembershipFault::parse(kind, rest) {
            return m.map(FaultSpec::Membership);
        }
        match kind {
            "partition" => parse_as(rest).map(FaultSpec::Partition),
            "packet" => parse_as(rest).map(FaultSpec::Packet),
            other => Err(format!(
                "unknown fault kind {other:?}; expected one of {}",
                all_kinds().join(", ")
            )),
        }
    }

    /// The plan kind.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultSpec::Process(p) => p.name(),
            FaultSpec::Partition(_) => "partition",
            FaultSpec::Packet(_) => "packet",
            FaultSpec::Clock(c) => c.name(),
            FaultSpec::Disk(d) => d.name(),
            FaultSpec::Membership(m) => m.name(),
        }
    }

    /// The family.
    pub fn family(&self) -> Family {
        match self {
            FaultSpec::Process(_) => Family::Process,
            FaultSpec::Partition(_) | FaultSpec::Packet(_) => Family::Network,
            FaultSpec::Clock(_) => Family::Clock,
            FaultSpec::Disk(_) => Family::Disk,
            FaultSpec::Membership(_) => Family::Membership,
        }
    }

    /// Checks the fields against each other and the cluster's size: `(field, message)`.
    pub fn validate(&self, nodes: usize) -> Result<(), (&'static str, String)> {
        match self {
            FaultSpec::Process(_) => Ok(()),
            FaultSpec::Partition(p) => p.validate(nodes),
            FaultSpec::Packet(p) => p.validate(),
            FaultSpec::Clock(c) => c.validate(),
            FaultSpec::Disk(d) => d.validate(),
            FaultSpec::Membership(m) => m.validate(nodes),
        }
    }

    /// Whether it degrades links between clients and nodes.
    pub fn touches_clients(&self) -> bool {
        match self {
            FaultSpec::Partition(p) => p.touches_clients(),
            FaultSpec::Packet(p) => p.touches_clients(),
            _ => false,
        }
    }

    /// The parameters for people: "  topology isolate", "  loss 0.1  delay 20ms", "  offset +10s".
    pub fn describe(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut out = String::new();
        if let Some(map) = value.as_object() {
            for (k, v) in map {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                out.push_str(&format!("  {} {v}", k.replace('_', "-")));
            }
        }
        out
    }
}

/// A fault the tool could not inject (or undo): the run cannot be trusted and ends as a tool error.
#[derive(Debug, thiserror::Error)]
#[error("{} could not be {phase}: {reason}", self.what())]
pub struct FaultError {
    /// The fault's position on the timeline (`usize::MAX` for what is not one fault: a heal, a periodic
    /// action, the status watcher).
    pub id: usize,
    /// Its kind.
    pub kind: &'static str,
    /// "started", "ended" or "healed".
    pub phase: &'static str,
    /// What went wrong.
    pub reason: String,
}

impl FaultError {
    /// What failed, as the message names it.
    fn what(&self) -> String {
        match self.id {
            usize::MAX => self.kind.to_string(),
            id => format!("fault #{id} ({})", self.kind),
        }
    }
}

/// A node that joined at run time, as the fault families need it.
#[derive(Debug)]
pub struct Joined {
    /// Its id.
    pub id: u64,
    /// Its own address (network faults give it links).
    pub ip: std::net::Ipv4Addr,
    /// Its clock-shim control file, when the run has clock faults.
    pub clock: Option<clock_shim::Control>,
}

/// Every family's run-time state: applies, undoes and heals faults.
#[derive(Debug)]
pub struct Nemeses {
    network: Option<network::NetworkNemesis>,
    clock: Option<clock::ClockNemesis>,
    disk: Option<disk::DiskNemesis>,
    /// What the last start or end did, for the event log (disk faults: bytes rolled back per node...).
    detail: Option<serde_json::Value>,
    nodes: Vec<u64>,
    /// The clients' link ids, when the plan has faults on client links (see [`network::client_id`]).
    clients: Vec<u64>,
    /// Grace period of `terminate` before SIGKILL.
    pub terminate_grace: Duration,
}

impl Nemeses {
    /// Families over `nodes`, with the backends the plan needs.
    pub fn new(
        nodes: Vec<u64>,
        network: Option<Box<dyn network::NetworkBackend>>,
        clocks: Option<Box<dyn clock::ClockBackend>>,
    ) -> Nemeses {
        Nemeses {
            network: network.map(network::NetworkNemesis::new),
            clock: clocks.map(|c| clock::ClockNemesis::new(c, nodes.clone())),
            disk: None,
            detail: None,
            nodes,
            clients: Vec::new(),
            terminate_grace: Duration::from_secs(2),
        }
    }

    /// Lets disk faults act on these layers.
    pub fn with_disks(mut self, mounts: Option<std::sync::Arc<disk::DiskMounts>>) -> Nemeses {
        self.disk = mounts.map(disk::DiskNemesis::new);
        self
    }

    /// What the last start or end did, when the family says more than the nodes it hit.
    pub fn take_detail(&mut self) -> Option<serde_json::Value> {
        self.detail.take()
    }

    fn disk(&self, fail: &impl Fn(String) -> FaultError) -> Result<&disk::DiskNemesis, FaultError> {
        self.disk
            .as_ref()
            .ok_or_else(|| fail("the run has no disk layer".into()))
    }

    /// Follows a membership change: network faults target `members` from now on, and a node that joined
    /// gets links of its own and, with clock faults, its clock control.
    pub fn set_members(&mut self, members: Vec<u64>, joined: Option<Joined>) -> Result<(), String> {
        self.nodes = members;
        let Some(joined) = joined else {
            return Ok(());
        };
        if let Some(n) = self.network.as_mut() {
            n.add_node(joined.id, joined.ip)?;
        }
        match (joined.clock, self.clock.as_mut()) {
            (Some(control), Some(clocks)) => clocks.add_node(joined.id, control),
            (None, None) => Ok(()),
            (None, Some(_)) => Err(format!(
                "n{} joined without a clock control file, but the run has clock faults",
                joined.id
            )),
            // A control nothing will steer: its clock stays true.
            (Some(_), None) => Ok(()),
        }
    }

    /// Lets network faults reach these clients' links.
    pub fn with_clients(mut self, clients: Vec<u64>) -> Nemeses {
        self.clients = clients;
        self
    }

    /// Starts `fault` on `targets`; returns the nodes it hit.
    pub fn start(
        &mut self,
        supervisor: &mut dyn NodeProcesses,
        fault: &ScheduledFault,
        spec: &FaultSpec,
        targets: &[u64],
    ) -> Result<Vec<u64>, FaultError> {
        let fail = |reason: String| FaultError {
            id: fault.id,
            kind: spec.kind(),
            phase: "started",
            reason,
        };
        match spec {
            FaultSpec::Process(p) => p
                .start(supervisor, targets, self.terminate_grace)
                .map_err(fail),
            FaultSpec::Partition(p) => {
                let mut cuts = p.cuts(targets, &self.nodes);
                cuts.extend(p.client_cuts(&cuts, &self.nodes, &self.clients));
                let cut = network::LinkDegradation {
                    cut: true,
                    ..Default::default()
                };
                let links = cuts.into_iter().map(|l| (l, cut)).collect();
                self.network_mut(&fail)?
                    .start(fault.id, links)
                    .map_err(fail)?;
                Ok(p.hit(targets, &self.nodes))
            }
            FaultSpec::Packet(p) => {
                let links = p.links(targets, &self.nodes, &self.clients);
                self.network_mut(&fail)?
                    .start(fault.id, links)
                    .map_err(fail)?;
                Ok(targets.to_vec())
            }
            FaultSpec::Clock(c) => {
                let clocks = self
                    .clock
                    .as_mut()
                    .ok_or_else(|| fail("the run has no clock backend".into()))?;
                clocks.start(fault.id, c, targets).map_err(fail)?;
                Ok(targets.to_vec())
            }
            FaultSpec::Membership(_) => Err(fail(
                "membership faults are carried out by the runner, not the nemeses".into(),
            )),
            FaultSpec::Disk(d) => {
                let (hit, detail) = self
                    .disk(&fail)?
                    .start(supervisor, d, targets)
                    .map_err(fail)?;
                self.detail = Some(serde_json::Value::Object(detail));
                Ok(hit)
            }
        }
    }

    fn network_mut(
        &mut self,
        fail: &impl Fn(String) -> FaultError,
    ) -> Result<&mut network::NetworkNemesis, FaultError> {
        self.network
            .as_mut()
            .ok_or_else(|| fail("the run has no network backend".into()))
    }

    /// Ends `fault`, which hit `hit`.
    pub fn end(
        &mut self,
        supervisor: &mut dyn NodeProcesses,
        fault: &ScheduledFault,
        spec: &FaultSpec,
        hit: &[u64],
    ) -> Result<(), FaultError> {
        let fail = |reason: String| FaultError {
            id: fault.id,
            kind: spec.kind(),
            phase: "ended",
            reason,
        };
        match spec {
            FaultSpec::Process(p) => p.end(supervisor, hit).map_err(fail),
            FaultSpec::Partition(_) | FaultSpec::Packet(_) => {
                self.network_mut(&fail)?.end(fault.id).map_err(fail)
            }
            FaultSpec::Clock(_) => match self.clock.as_mut() {
                Some(c) => c.end(fault.id).map_err(fail),
                None => Err(fail("the run has no clock backend".into())),
            },
            // A membership change is done when it starts: its end changes nothing.
            FaultSpec::Membership(_) => Ok(()),
            FaultSpec::Disk(d) => {
                let detail = self.disk(&fail)?.end(supervisor, d, hit).map_err(fail)?;
                if !detail.is_empty() {
                    self.detail = Some(serde_json::Value::Object(detail));
                }
                Ok(())
            }
        }
    }

    /// Heals everything: links, clocks, disks, then processes. Returns the nodes restarted or resumed.
    pub fn heal(&mut self, supervisor: &mut dyn NodeProcesses) -> Result<Vec<u64>, FaultError> {
        let fail = |kind: &'static str| {
            move |reason: String| FaultError {
                id: usize::MAX,
                kind,
                phase: "healed",
                reason,
            }
        };
        if let Some(n) = self.network.as_mut() {
            n.heal().map_err(fail("network"))?;
        }
        if let Some(c) = self.clock.as_mut() {
            c.heal().map_err(fail("clock"))?;
        }
        if let Some(d) = self.disk.as_ref() {
            d.heal(supervisor).map_err(fail("disk"))?;
        }
        process::heal(supervisor).map_err(fail("process"))
    }

    /// When the next periodic action is due (a strobing clock's flip).
    pub fn next_tick(&self) -> Option<Instant> {
        self.clock.as_ref().and_then(clock::ClockNemesis::next_flip)
    }

    /// Performs the periodic actions that are due.
    pub fn tick(&mut self) -> Result<(), FaultError> {
        match self.clock.as_mut() {
            Some(c) => c.flip_due().map_err(|reason| FaultError {
                id: usize::MAX,
                kind: "clock-strobe",
                phase: "started",
                reason,
            }),
            None => Ok(()),
        }
    }
}
