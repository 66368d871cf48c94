//! The cluster under test, as one owner: certificates, host placement (loopback or namespaces), the network
//! backend (relay mesh or kernel rules), clock controls, the supervisor of the node processes, and the target
//! adapter that reads their status. `chaos run` and `chaos bench` both launch through [`Cluster::launch`];
//! dropping a `Cluster` (on any path, also while a panic unwinds) stops every process and removes every
//! namespace, relay and firewall table it made.

use crate::faults::clock::{ClockBackend, ShimClocks};
use crate::faults::network::nftables::{self, NftFamily, NftNetwork};
use crate::faults::network::relay::RelayNetwork;
use crate::faults::network::{self, NetworkBackend};
use crate::hosts::netns::NetnsHosts;
use crate::hosts::ssh::{RemoteProcesses, Ssh};
use crate::hosts::{free_port, Placement};
use crate::plan::{NetworkBackendKind, Plan};
use crate::schedule::{derive_seed, NodeView};
use crate::supervisor::{NodeLaunch, NodeProcesses, ProcessState, Supervisor};
use crate::targets::{self, Layout, NodeSlot, Target};
use raft_transport::{generate_cluster_certs, CertValidity, ClusterCertSpec, NodeSpec};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The client certificate the workload and status polls use.
pub const CLIENT_NAME: &str = "chaos";
/// How long one status poll may take.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(300);

/// Why a cluster could not be launched (exit 2: the tool or the plan, never the system under test).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LaunchError(pub String);

fn err(what: impl std::fmt::Display) -> impl FnOnce(String) -> LaunchError {
    move |e| LaunchError(format!("{what}: {e}"))
}

/// The network and clock backends of a run, when its plan needs them.
pub type Backends = (
    Option<Box<dyn NetworkBackend>>,
    Option<Box<dyn ClockBackend>>,
);

/// A launched cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Where every node is and how it is configured.
    pub layout: Layout,
    /// The system under test.
    pub target: std::sync::Arc<dyn Target>,
    /// The node processes.
    pub supervisor: Box<dyn NodeProcesses>,
    mesh: Option<netproxy::RelayMesh>,
    network: Option<Box<dyn NetworkBackend>>,
    clocks: Option<Box<dyn ClockBackend>>,
    /// SSH machines by node id, with hosts = "ssh".
    machines: BTreeMap<u64, Arc<Ssh>>,
    /// Where the SSH control sockets live (short: socket paths are limited to 108 bytes).
    ssh_control: Option<tempfile_dir::ControlDir>,
    /// The clock shim library the nodes run under, when the plan has clock faults (nodes that join too).
    clock_library: Option<PathBuf>,
    /// The disk layers over the data dirs, when the plan has disk faults. Declared after the supervisor: the
    /// mounts go only once the node processes using them are gone.
    disks: Option<Arc<crate::faults::disk::DiskMounts>>,
    /// Where nodes run (membership faults add nodes the same way).
    placement: Placement,
    /// The node binary (for issuing certificates to nodes that join at run time).
    binary: PathBuf,
    /// How long certificates issued at run time are valid.
    cert_validity: Duration,
    /// Nodes removed from the cluster on purpose (membership faults): no longer members.
    retired: std::collections::BTreeSet<u64>,
    /// Of those, the ones whose data the runner wiped (they never run again).
    wiped: std::collections::BTreeSet<u64>,
    /// How many exits as removed were already noted in the event log.
    removed_noted: usize,
    /// The members' layout as it changes (nodes added and removed at run time), for the status poller: a
    /// removed node that is gone would cost every poll a timeout.
    layout_tx: tokio::sync::watch::Sender<Layout>,
    /// Declared last: dropped after the supervisor has stopped the processes inside the namespaces.
    namespaces: Option<NetnsHosts>,
}

mod tempfile_dir {
    /// A folder removed on drop.
    #[derive(Debug)]
    pub struct ControlDir(pub std::path::PathBuf);

    impl Drop for ControlDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Cluster {
    /// Makes certificates, places and starts every node, and readies the backends `plan` needs.
    pub async fn launch(
        plan: &Plan,
        seed: u64,
        binary: &Path,
        run_dir: &Path,
    ) -> Result<Cluster, LaunchError> {
        let placement = Placement::for_plan(plan);
        let ids: Vec<u64> = (1..=plan.cluster.nodes as u64).collect();
        let namespaces = match placement {
            Placement::Namespaces => {
                Some(NetnsHosts::create(&ids).map_err(err("network namespaces"))?)
            }
            _ => None,
        };
        let c = &plan.cluster;
        let machine_ip = |id: u64| -> Ipv4Addr {
            let machine = &c.ssh_hosts[(id as usize - 1) % c.ssh_hosts.len()];
            machine
                .address
                .parse()
                .expect("validated as an IPv4 address")
        };
        let node_ip = |id: u64| -> Ipv4Addr {
            match (&namespaces, placement) {
                (Some(ns), _) => ns.subnet().node_ip(id),
                (None, Placement::Ssh) => machine_ip(id),
                (None, _) => placement.loopback_ip(id),
            }
        };
        if placement == Placement::LoopbackPerNode {
            nftables::available().map_err(|why| {
                LaunchError(format!(
                    "cluster.network = \"nftables\" needs root and nft: {why}"
                ))
            })?;
        }
        if plan.needs_network() && plan.cluster.network_backend() == NetworkBackendKind::Nftables {
            for table in nftables::clean_leftovers() {
                tracing::warn!(%table, "removed nftables rules left behind by a run that crashed");
            }
        }
        let run_id = run_dir
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy().into_owned());
        let certs = run_dir.join("certs");
        make_certs(plan, &certs, &run_id, &ids, &node_ip)?;
        let nodes: Vec<NodeSlot> = ids
            .iter()
            .map(|&id| {
                let ip = IpAddr::V4(node_ip(id));
                let peer_port = free_port(ip_for_port_check(ip));
                let client_port = match plan.cluster.target {
                    targets::TargetKind::RaftNode => peer_port,
                    _ => free_port(ip_for_port_check(ip)),
                };
                NodeSlot {
                    id,
                    ip,
                    peer_port,
                    client_port,
                    dir: run_dir.join("nodes").join(format!("n{id}")),
                }
            })
            .collect();
        let layout = Layout {
            nodes,
            certs,
            client_name: CLIENT_NAME.into(),
            tls: c.tls,
            heartbeat: c.heartbeat_interval.0,
            election_timeout: (c.election_timeout_min.0, c.election_timeout_max.0),
            extra_args: c.extra_args.clone(),
            run_id: run_id.clone(),
            snapshot_interval_entries: c.snapshot_interval_entries,
        };
        let target: std::sync::Arc<dyn Target> =
            targets::build(c.target, binary.to_path_buf(), &layout)
                .map_err(err(format!("the {} target", c.target.name())))?
                .into();
        let (layout_tx, _) = tokio::sync::watch::channel(layout.clone());
        let mut cluster = Cluster {
            layout,
            target,
            placement,
            binary: binary.to_path_buf(),
            cert_validity: plan.cluster.cert_validity.0,
            retired: Default::default(),
            wiped: Default::default(),
            removed_noted: 0,
            layout_tx,
            supervisor: Box::new(Supervisor::new()),
            mesh: None,
            network: None,
            clocks: None,
            machines: BTreeMap::new(),
            ssh_control: None,
            clock_library: None,
            disks: None,
            namespaces,
        };
        if placement == Placement::Ssh {
            cluster.connect_machines(plan, binary, &run_id)?;
        }
        cluster.ready_network(plan, seed, &run_id)?;
        cluster.ready_disks(plan, seed)?;
        let launches = cluster.node_launches(plan)?;
        cluster.supervisor = cluster.processes(launches)?;
        for id in cluster.supervisor.ids() {
            cluster.supervisor.start(id).map_err(LaunchError)?;
        }
        Ok(cluster)
    }

    /// Opens a control connection to every SSH machine and prepares the run's folder there.
    fn connect_machines(
        &mut self,
        plan: &Plan,
        binary: &Path,
        run_id: &str,
    ) -> Result<(), LaunchError> {
        let control = std::env::temp_dir().join(format!("chaos-ssh-{}", std::process::id()));
        std::fs::create_dir_all(&control)
            .map_err(|e| LaunchError(format!("{}: {e}", control.display())))?;
        self.ssh_control = Some(tempfile_dir::ControlDir(control.clone()));
        let c = &plan.cluster;
        let machines: Vec<Arc<Ssh>> = c
            .ssh_hosts
            .iter()
            .map(|h| Arc::new(Ssh::new(h.clone(), &control, c.ssh_known_hosts.clone())))
            .collect();
        for id in self.ids() {
            let machine = Arc::clone(&machines[(id as usize - 1) % machines.len()]);
            self.machines.insert(id, machine);
        }
        crate::hosts::ssh::prepare(&machines, run_id, binary, &self.layout.certs)
            .map_err(|e| LaunchError(format!("preparing the SSH hosts: {e}")))
    }

    /// Starts the relay mesh or creates the kernel rules table, when the plan has network faults.
    fn ready_network(&mut self, plan: &Plan, seed: u64, run_id: &str) -> Result<(), LaunchError> {
        if !plan.needs_network() {
            return Ok(());
        }
        let mut ips: BTreeMap<u64, Ipv4Addr> = self
            .layout
            .nodes
            .iter()
            .filter_map(|n| match n.ip {
                IpAddr::V4(ip) => Some((n.id, ip)),
                IpAddr::V6(_) => None,
            })
            .collect();
        if plan.uses_client_links() {
            // Validation keeps these to local hosts, where the clients' loopback addresses exist.
            for i in 0..plan.workload.clients {
                ips.insert(network::client_id(i), nftables::client_ip(i));
            }
        }
        if !self.machines.is_empty() {
            let mut tables = Vec::new();
            let mut seen: Vec<String> = Vec::new();
            for ssh in self.machines.values() {
                if seen.contains(&ssh.name()) {
                    continue;
                }
                seen.push(ssh.name());
                for table in nftables::clean_leftovers_via(&ssh.prefix()) {
                    tracing::warn!(host = %ssh.name(), %table, "removed nftables rules left behind by a crashed run");
                }
                let table = NftNetwork::create_via(ssh.prefix(), NftFamily::Inet, run_id, &ips)
                    .map_err(|e| {
                        LaunchError(format!(
                            "{}: creating the nftables rules (needs root and nft there): {e}",
                            ssh.name()
                        ))
                    })?;
                tables.push(table);
            }
            self.network = Some(Box::new(nftables::OnEveryHost(tables)));
            return Ok(());
        }
        let backend: Box<dyn NetworkBackend> =
            match (plan.cluster.network_backend(), &self.namespaces) {
                (NetworkBackendKind::Nftables, Some(_)) => Box::new(
                    NftNetwork::create_in(NftFamily::Bridge, run_id, &ips)
                        .map_err(|e| LaunchError(format!("creating the nftables rules: {e}")))?,
                ),
                (NetworkBackendKind::Nftables, None) => Box::new(
                    NftNetwork::create(run_id, &ips)
                        .map_err(|e| LaunchError(format!("creating the nftables rules: {e}")))?,
                ),
                _ => {
                    let addrs: Vec<(u64, SocketAddr)> = self
                        .layout
                        .nodes
                        .iter()
                        .map(|n| (n.id, n.peer_addr()))
                        .collect();
                    let config = netproxy::MeshConfig {
                        relay: netproxy::RelayConfig {
                            seed: derive_seed(seed, "network"),
                            ..netproxy::RelayConfig::default()
                        },
                        ..netproxy::MeshConfig::default()
                    };
                    let mesh = netproxy::RelayMesh::start(&addrs, config)
                        .map_err(|e| LaunchError(format!("starting the network relays: {e}")))?;
                    let backend = Box::new(RelayNetwork::new(mesh.faults().clone()));
                    self.mesh = Some(mesh);
                    backend
                }
            };
        self.network = Some(backend);
        Ok(())
    }

    /// Mounts a disk layer over every node's data dir, when the plan has disk faults (local and namespace
    /// hosts share this machine's filesystem; validation keeps disk faults off SSH hosts).
    fn ready_disks(&mut self, plan: &Plan, seed: u64) -> Result<(), LaunchError> {
        if !plan.uses(crate::faults::Family::Disk) {
            return Ok(());
        }
        let dirs: Vec<(u64, std::path::PathBuf)> = self
            .layout
            .nodes
            .iter()
            .map(|n| (n.id, n.data_dir()))
            .collect();
        let mounts = crate::faults::disk::DiskMounts::mount(&dirs, derive_seed(seed, "disk"))
            .map_err(|e| LaunchError(format!("mounting the disk layers: {e}")))?;
        self.disks = Some(Arc::new(mounts));
        Ok(())
    }

    /// The disk layers, when the plan has disk faults.
    pub fn disks(&self) -> Option<Arc<crate::faults::disk::DiskMounts>> {
        self.disks.clone()
    }

    /// Who runs the node processes: a supervisor of child processes here, or processes on the SSH machines.
    fn processes(&self, launches: Vec<NodeLaunch>) -> Result<Box<dyn NodeProcesses>, LaunchError> {
        if !self.machines.is_empty() {
            let run_dir = self.layout.certs.parent().unwrap_or(Path::new("/"));
            return Ok(Box::new(RemoteProcesses::new(
                launches,
                &self.machines,
                run_dir,
                &self.layout.run_id,
            )));
        }
        let mut supervisor = Supervisor::new();
        for launch in launches {
            supervisor.add(launch);
        }
        Ok(Box::new(supervisor))
    }

    /// How to start every node (under the clock shim when the plan has clock faults).
    fn node_launches(&mut self, plan: &Plan) -> Result<Vec<NodeLaunch>, LaunchError> {
        let shim = if plan.needs_clock_shim() {
            Some(clock_shim::library_path().ok_or_else(|| {
                LaunchError(
                    "the plan has clock faults but the clock shim library was not found; build it with \
                     `cargo build --release -p clock-shim` (or set CHAOS_CLOCK_SHIM_LIBRARY)"
                        .into(),
                )
            })?)
        } else {
            None
        };
        let mut controls = BTreeMap::new();
        let mut launches = Vec::new();
        for node in self.layout.nodes.clone() {
            std::fs::create_dir_all(&node.dir)
                .map_err(|e| LaunchError(format!("creating {}: {e}", node.dir.display())))?;
            let routes: Vec<(u64, SocketAddr)> = self
                .layout
                .nodes
                .iter()
                .map(|peer| {
                    let route = self
                        .mesh
                        .as_ref()
                        .filter(|_| peer.id != node.id)
                        .and_then(|m| m.addr_for(node.id, peer.id))
                        .unwrap_or(peer.peer_addr());
                    (peer.id, route)
                })
                .collect();
            let mut command = self.target.node_command(&self.layout, node.id, &routes);
            if let Some(library) = &shim {
                let control = clock_shim::Control::create(node.dir.join("clock")).map_err(|e| {
                    LaunchError(format!("clock control file for n{}: {e}", node.id))
                })?;
                command.env.extend(
                    control
                        .env(library)
                        .into_iter()
                        .map(|(k, v)| (OsString::from(k), v)),
                );
                controls.insert(node.id, control);
            }
            launches.push(NodeLaunch {
                id: node.id,
                program: command.program,
                args: command.args,
                env: command.env,
                log: node.dir.join("node.log"),
                netns: self
                    .namespaces
                    .as_ref()
                    .map(|ns| ns.namespace_path(node.id)),
            });
        }
        if shim.is_some() {
            self.clocks = Some(Box::new(ShimClocks { controls }));
        }
        self.clock_library = shim;
        Ok(launches)
    }

    /// Node ids (every node the run ever started, members or not).
    pub fn ids(&self) -> Vec<u64> {
        self.layout.nodes.iter().map(|n| n.id).collect()
    }

    /// The nodes the runner counts as members: every node but those it removed on purpose.
    pub fn members(&self) -> Vec<u64> {
        self.ids()
            .into_iter()
            .filter(|id| !self.retired.contains(id))
            .collect()
    }

    /// The layout of the members only: what clients, the agreement check and final reads should see.
    pub fn member_layout(&self) -> Layout {
        let mut layout = self.layout.clone();
        layout.nodes.retain(|n| !self.retired.contains(&n.id));
        layout
    }

    /// The members' layout as it changes during the run (the status poller follows membership changes).
    pub fn layout_updates(&self) -> tokio::sync::watch::Receiver<Layout> {
        self.layout_tx.subscribe()
    }

    /// Counts node `id` out of the membership: the runner removed it on purpose, so its exit as removed
    /// is expected.
    pub fn retire(&mut self, id: u64) {
        self.retired.insert(id);
        self.supervisor.expect_removal(id);
        self.layout_tx.send_replace(self.member_layout());
    }

    /// The nodes the runner removed on purpose, and whether their data was wiped.
    pub fn removed(&self) -> Vec<(u64, bool)> {
        self.retired
            .iter()
            .map(|&id| (id, self.wiped.contains(&id)))
            .collect()
    }

    /// Exits as removed (status 5) seen since the last call.
    pub fn new_removed_exits(&mut self) -> Vec<u64> {
        let all = self.supervisor.removed_exits();
        let new = all[self.removed_noted.min(all.len())..].to_vec();
        self.removed_noted = all.len();
        new
    }

    /// Stops node `id` for good and wipes its data dir (a machine wiped by an operator).
    pub fn wipe(&mut self, id: u64) -> Result<(), String> {
        self.retire(id);
        self.wiped.insert(id);
        self.supervisor.retire(id)?;
        let node = self.layout.node(id).ok_or(format!("no node {id}"))?;
        let data = node.data_dir();
        if self.disks.as_ref().is_some_and(|d| d.ids().contains(&id)) {
            // The data dir is the disk layer's mount point: empty it through the layer and leave the mount
            // (it goes with the others at the end of the run).
            return empty_dir(&data).map_err(|e| format!("wiping {}: {e}", data.display()));
        }
        match std::fs::remove_dir_all(&data) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("wiping {}: {e}", data.display())),
        }
    }

    /// Adds a fresh node `id` (never used before in this run) that joins through member `via`: a free port
    /// on its own address, a certificate from the run's CA (issued by the node binary, as an operator would),
    /// a disk layer and a clock control when the run has disk or clock faults, then its process. Returns what
    /// the fault families need of it. Local hosts only.
    pub fn add_node(&mut self, id: u64, via: u64) -> Result<crate::faults::Joined, String> {
        if !matches!(
            self.placement,
            Placement::SharedLoopback | Placement::LoopbackPerNode
        ) {
            return Err("membership faults add nodes on local hosts only".into());
        }
        if self.layout.node(id).is_some() {
            return Err(format!("node id {id} is already used in this run"));
        }
        if id > nftables::NODE_ID_MAX {
            return Err(format!(
                "node id {id} has no loopback address of its own (ids go up to {})",
                nftables::NODE_ID_MAX
            ));
        }
        let via_addr = self
            .layout
            .node(via)
            .ok_or(format!("no node {via} to join through"))?
            .peer_addr();
        let ip = self.placement.loopback_ip(id);
        let port = free_port(IpAddr::V4(ip));
        let run_dir = self.layout.certs.parent().unwrap_or(Path::new("."));
        let slot = NodeSlot {
            id,
            ip: IpAddr::V4(ip),
            peer_port: port,
            client_port: port,
            dir: run_dir.join("nodes").join(format!("n{id}")),
        };
        self.issue_cert(&slot)?;
        std::fs::create_dir_all(&slot.dir)
            .map_err(|e| format!("creating {}: {e}", slot.dir.display()))?;
        if let Some(disks) = &self.disks {
            // Like the first nodes, a joining node writes through a disk layer, so disk faults reach it.
            disks.add(id, &slot.data_dir())?;
        }
        self.layout.nodes.push(slot.clone());
        let mut command = self.target.join_command(&self.layout, id, via_addr)?;
        let clock = match &self.clock_library {
            // Like the first nodes, a joining node runs under the clock shim, so clock faults reach it.
            Some(library) => {
                let control = clock_shim::Control::create(slot.dir.join("clock"))
                    .map_err(|e| format!("clock control file for n{id}: {e}"))?;
                command.env.extend(
                    control
                        .env(library)
                        .into_iter()
                        .map(|(k, v)| (OsString::from(k), v)),
                );
                Some(control)
            }
            None => None,
        };
        self.supervisor.add(NodeLaunch {
            id,
            program: command.program,
            args: command.args,
            env: command.env,
            log: slot.dir.join("node.log"),
            netns: None,
        })?;
        self.supervisor.start(id)?;
        self.layout_tx.send_replace(self.member_layout());
        Ok(crate::faults::Joined { id, ip, clock })
    }

    /// Issues node `slot`'s certificate with the run's CA through `raft-node certs` (which extends an
    /// existing CA found in the folder).
    fn issue_cert(&self, slot: &NodeSlot) -> Result<(), String> {
        let output = std::process::Command::new(&self.binary)
            .arg("certs")
            .arg("--out")
            .arg(&self.layout.certs)
            .arg("--node")
            .arg(format!("{}={}", slot.id, slot.peer_addr()))
            .arg("--valid-for")
            .arg(format!("{}s", self.cert_validity.as_secs().max(60)))
            .output()
            .map_err(|e| format!("running {} certs: {e}", self.binary.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} certs for node {} failed ({}): {}",
                self.binary.display(),
                slot.id,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(())
    }

    /// The current leader (the node claiming leadership in the highest term), if any answers.
    pub async fn leader(&self) -> Option<u64> {
        targets::find_leader(&*self.target, &self.layout, &self.members(), STATUS_TIMEOUT).await
    }

    /// Every node's role and progress as fault targeting needs them, asked of all nodes at once (a paused or
    /// dead node costs one [`STATUS_TIMEOUT`], not one per node). Nodes the runner itself killed or paused are
    /// not asked: they cannot answer, and waiting for them would hold every fault due meanwhile. The leader is
    /// the node that claims leadership in the highest term.
    pub async fn view(&self) -> Vec<NodeView> {
        let mut asks = tokio::task::JoinSet::new();
        for id in self
            .members()
            .into_iter()
            .filter(|&id| !self.supervisor.known_silent(id))
        {
            let (target, layout) = (self.target.clone(), self.layout.clone());
            asks.spawn(async move { (id, target.status(&layout, id, STATUS_TIMEOUT).await) });
        }
        let mut seen = Vec::new();
        while let Some(answer) = asks.join_next().await {
            if let Ok((id, Ok(status))) = answer {
                seen.push((id, status));
            }
        }
        seen.sort_by_key(|(id, _)| *id);
        views(seen.iter().map(|(id, s)| (*id, s)))
    }

    /// Waits for a first leader; fails (naming the nodes' last log lines) if none comes or a node exits.
    pub async fn await_leader(&mut self, timeout: Duration) -> Result<u64, LaunchError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader().await {
                return Ok(leader);
            }
            let exited: Vec<u64> = self
                .ids()
                .into_iter()
                .filter(|&id| self.supervisor.state(id) == ProcessState::Down)
                .collect();
            if !exited.is_empty() || Instant::now() > deadline {
                let why = if exited.is_empty() {
                    format!(
                        "no leader within {} (cluster.startup_timeout)",
                        humantime::format_duration(timeout)
                    )
                } else {
                    format!("node(s) {exited:?} exited during startup")
                };
                return Err(LaunchError(format!(
                    "{why}; node logs:{}",
                    self.log_tails()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Hands the network and clock backends to the fault families (once).
    pub fn take_backends(&mut self) -> Backends {
        (self.network.take(), self.clocks.take())
    }

    /// The last lines of every node's log, for error messages.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for id in self.supervisor.ids() {
            if let Some(path) = self.supervisor.log_path(id) {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                out.push_str(&format!(
                    "\n--- n{id} ({}) ---\n{}",
                    path.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
        out
    }

    /// Stops every node and the relays; writes the relays' counters to `network.json` in `run_dir`.
    pub async fn stop(mut self, run_dir: &Path) {
        self.supervisor.shutdown(Duration::from_secs(3));
        if let Some(mesh) = self.mesh.take() {
            let links: Vec<serde_json::Value> = mesh
                .counters()
                .iter()
                .map(|(link, c)| serde_json::json!({"link": link.to_string(), "packets_in": c.packets_in, "forwarded": c.forwarded, "dropped": c.dropped.total(), "duplicated": c.duplicated, "delayed": c.delayed}))
                .collect();
            let _ = std::fs::write(
                run_dir.join("network.json"),
                serde_json::to_string_pretty(&links).expect("json"),
            );
            mesh.shutdown().await;
        }
    }
}

/// Removes everything inside `dir`, keeping `dir` (a mount point).
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Ports are checked on the node's own address where it exists on this host; namespace addresses do not, and
/// a port is free there anyway (each namespace has its own), so loopback stands in.
fn ip_for_port_check(ip: IpAddr) -> IpAddr {
    if ip.is_loopback() {
        ip
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
}

fn make_certs(
    plan: &Plan,
    dir: &Path,
    run_id: &str,
    ids: &[u64],
    node_ip: &dyn Fn(u64) -> Ipv4Addr,
) -> Result<(), LaunchError> {
    let now = SystemTime::now();
    let validity = CertValidity::new(
        now - Duration::from_secs(3600),
        now + plan.cluster.cert_validity.0,
    )
    .map_err(|e| LaunchError(format!("certificate validity: {e}")))?;
    let spec = ClusterCertSpec {
        ca_name: format!("chaos run {run_id} CA"),
        nodes: ids
            .iter()
            .map(|&id| NodeSpec {
                id: raft_transport::NodeId(id),
                addrs: vec![IpAddr::V4(node_ip(id))],
            })
            .collect(),
        clients: vec![CLIENT_NAME.into()],
        validity,
    };
    generate_cluster_certs(dir, &spec)
        .map(|_| ())
        .map_err(|e| LaunchError(format!("making certificates: {e}")))
}

/// The node binary: the plan's `cluster.binary`, else the target's default; checked to be executable.
pub fn resolve_binary(plan: &Plan, plan_path: &Path) -> Result<PathBuf, LaunchError> {
    let (default, hint) = targets::default_binary(plan.cluster.target);
    let (path, origin) = match &plan.cluster.binary {
        Some(p) => (
            p.clone(),
            format!("{}: cluster.binary", plan_path.display()),
        ),
        None => (
            default,
            format!("the default for target {}", plan.cluster.target.name()),
        ),
    };
    let meta = std::fs::metadata(&path).map_err(|e| {
        LaunchError(format!(
            "node binary {} from {origin} is not usable: {e}; {hint}",
            path.display()
        ))
    })?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(LaunchError(format!(
            "node binary {} from {origin} is not an executable file; {hint}",
            path.display()
        )));
    }
    Ok(path)
}

/// The nodes that answered as targeting sees them: the leader is the one leading in the highest term (a deposed
/// leader that has not heard of its successor yet still says it leads).
pub fn views<'a>(
    answers: impl Iterator<Item = (u64, &'a targets::NodeStatus)> + Clone,
) -> Vec<NodeView> {
    let top = answers
        .clone()
        .filter(|(_, s)| s.role == targets::Role::Leader)
        .map(|(_, s)| s.term)
        .max();
    answers
        .map(|(id, s)| NodeView {
            id,
            leader: s.role == targets::Role::Leader && Some(s.term) == top,
            applied: s.applied_index,
        })
        .collect()
}
