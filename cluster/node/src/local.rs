//! A local cluster of `raft-node` processes on 127.0.0.1 in a temporary folder, for tests and benchmarks.
//! Every process it starts is killed when it is dropped, on success or panic.

use crate::client::{node_status, Client, ClientOptions};
use crate::protocol::NodeStatus;
use raft_transport::{
    generate_cluster_certs, CertValidity, ClientEndpoint, ClusterCertSpec, Credentials, NodeSpec,
    PeerIdentity, TransportConfig,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use tempfile::TempDir;

/// How long the waiting helpers wait before they panic with the nodes' logs.
pub const GUARD: Duration = Duration::from_secs(20);

/// A UDP port below the ephemeral range (32768+), where a restarted node could find its port taken by some
/// outgoing connection; probed by binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000
            + ((std::process::id().wrapping_mul(7_919)).wrapping_add(n.wrapping_mul(104_729))
                % 12_000) as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Makes a CA, certificates for `nodes` (on 127.0.0.1) and a client `test` in `dir`.
pub fn make_certs(dir: &Path, nodes: &[u64], ca_name: &str) {
    let spec = ClusterCertSpec {
        ca_name: ca_name.into(),
        nodes: nodes
            .iter()
            .map(|&id| NodeSpec {
                id: raft::NodeId(id),
                addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            })
            .collect(),
        clients: vec!["test".into()],
        validity: CertValidity::around(SystemTime::now()),
    };
    generate_cluster_certs(dir, &spec).expect("certificates");
}

/// A cluster of node processes in a temporary folder. Dropping it kills every process.
#[derive(Debug)]
pub struct LocalCluster {
    /// The temporary folder (certificates, data dirs, logs).
    pub dir: TempDir,
    /// The certificates folder.
    pub certs: PathBuf,
    /// Every node's address, started or not.
    pub addrs: BTreeMap<u64, SocketAddr>,
    /// The bootstrap voters.
    pub initial: Vec<u64>,
    /// Running processes.
    pub children: BTreeMap<u64, Child>,
    /// The raft-node binary.
    pub binary: PathBuf,
    /// Extra arguments for every node.
    pub extra_args: Vec<String>,
    /// Snapshot every this many entries (small by default, so tests exercise snapshots).
    pub snapshot_interval_entries: u64,
    /// Per node, the address it must use for each peer (default: the peer's own address), e.g. a relay.
    pub peer_routes: BTreeMap<u64, BTreeMap<raft::NodeId, SocketAddr>>,
    /// Per node, extra environment variables (e.g. a clock shim's LD_PRELOAD).
    pub envs: BTreeMap<u64, Vec<(String, String)>>,
}

impl LocalCluster {
    /// Certificates for ids 1..=max_id; starts nodes 1..=n as the initial voters.
    pub fn start(binary: &Path, n: u64, max_id: u64) -> LocalCluster {
        let mut cluster = LocalCluster::prepare(binary, n, max_id);
        for id in 1..=n {
            cluster.spawn(id, None);
        }
        cluster
    }

    /// Certificates for ids 1..=max_id and nodes 1..=n as the initial voters, none started yet.
    pub fn prepare(binary: &Path, n: u64, max_id: u64) -> LocalCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = dir.path().join("certs");
        make_certs(&certs, &(1..=max_id).collect::<Vec<_>>(), "test cluster CA");
        let addrs = (1..=max_id)
            .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], free_port()))))
            .collect();
        LocalCluster {
            dir,
            certs,
            addrs,
            initial: (1..=n).collect(),
            children: BTreeMap::new(),
            binary: binary.to_path_buf(),
            extra_args: Vec::new(),
            snapshot_interval_entries: 50,
            peer_routes: BTreeMap::new(),
            envs: BTreeMap::new(),
        }
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("n{id}"))
    }

    /// Node `id`'s log file (its stderr).
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("n{id}.log"))
    }

    /// The command line that runs node `id` (bootstrapping, or joining through `join`).
    pub fn command(&self, id: u64, join: Option<u64>) -> Command {
        self.command_with_certs(id, join, &self.certs)
    }

    /// The same with another certificates folder.
    pub fn command_with_certs(&self, id: u64, join: Option<u64>, certs: &Path) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("run")
            .arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(self.addrs[&id].to_string())
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .arg("--certs")
            .arg(certs)
            .args([
                "--heartbeat-interval",
                "30ms",
                "--election-timeout-min",
                "150ms",
                "--election-timeout-max",
                "300ms",
            ])
            .args([
                "--snapshot-interval-entries",
                &self.snapshot_interval_entries.to_string(),
            ])
            .args(&self.extra_args);
        match join {
            Some(via) => {
                cmd.arg("--join").arg(self.addrs[&via].to_string());
            }
            None => {
                for peer in &self.initial {
                    let route = self
                        .peer_routes
                        .get(&id)
                        .and_then(|r| r.get(&raft::NodeId(*peer)))
                        .unwrap_or(&self.addrs[peer]);
                    cmd.arg("--peer").arg(format!("{peer}={route}"));
                }
            }
        }
        for (key, value) in self.envs.get(&id).into_iter().flatten() {
            cmd.env(key, value);
        }
        cmd
    }

    /// Starts node `id`.
    pub fn spawn(&mut self, id: u64, join: Option<u64>) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("log file");
        let child = self
            .command(id, join)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        self.children.insert(id, child);
    }

    /// SIGKILLs node `id` and waits for it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill(); // SIGKILL: no chance to flush anything.
            let _ = child.wait();
        }
    }

    /// SIGTERMs node `id` and waits for it to exit.
    pub fn terminate(&mut self, id: u64) -> std::process::ExitStatus {
        let mut child = self.children.remove(&id).expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        child.wait().expect("wait")
    }

    /// The addresses of `ids`.
    pub fn addr_list(&self, ids: &[u64]) -> Vec<SocketAddr> {
        ids.iter().map(|id| self.addrs[id]).collect()
    }

    /// A client of `ids` with the `test` certificate.
    pub fn client(&self, ids: &[u64]) -> Client {
        let options = ClientOptions {
            request_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        };
        Client::connect(&self.addr_list(ids), &self.certs, "test", options).expect("client")
    }

    /// A bare client endpoint with the `test` certificate.
    pub fn endpoint(&self) -> ClientEndpoint {
        let creds = Credentials::load(&self.certs, &PeerIdentity::Client("test".into()))
            .expect("client creds");
        ClientEndpoint::bind(
            "127.0.0.1:0".parse().unwrap(),
            &creds,
            1,
            TransportConfig::default(),
        )
        .expect("endpoint")
    }

    /// Node `id`'s status, if it answers within 500 ms.
    pub async fn status(&self, endpoint: &ClientEndpoint, id: u64) -> Option<NodeStatus> {
        node_status(endpoint, self.addrs[&id], None, Duration::from_millis(500))
            .await
            .ok()
    }

    /// Waits until `ids` agree on one leader among them, and returns it.
    pub async fn wait_leader(&self, ids: &[u64]) -> u64 {
        let endpoint = self.endpoint();
        let give_up = Instant::now() + GUARD;
        loop {
            let mut leaders = Vec::new();
            for &id in ids {
                if let Some(s) = self.status(&endpoint, id).await {
                    leaders.push(s.raft.leader.map(|l| l.0));
                }
            }
            if leaders.len() == ids.len() {
                if let Some(Some(l)) = leaders.first() {
                    if leaders.iter().all(|x| *x == Some(*l)) && ids.contains(l) {
                        return *l;
                    }
                }
            }
            assert!(
                Instant::now() < give_up,
                "no agreed leader among {ids:?}: {leaders:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64) -> NodeStatus {
        let endpoint = self.endpoint();
        let give_up = Instant::now() + GUARD;
        loop {
            if let Some(s) = self.status(&endpoint, id).await {
                if s.raft.applied.0 >= index {
                    return s;
                }
            }
            assert!(
                Instant::now() < give_up,
                "node {id} did not apply {index}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for id in self.addrs.keys() {
            if let Ok(text) = std::fs::read_to_string(self.log_path(*id)) {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                out.push_str(&format!(
                    "--- n{id} ---\n{}\n",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
        out
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
