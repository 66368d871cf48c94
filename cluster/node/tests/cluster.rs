//! Real `raft-node` processes on 127.0.0.1: elections, replication, crashes, membership, durability, mutual TLS,
//! and recovery from damaged logs. Every process is killed when its test ends, passing or failing.

use raft_node::client::{node_status, Client, ClientOptions, Outcome};
use raft_node::protocol::NodeStatus;
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

const GUARD: Duration = Duration::from_secs(20);

/// A UDP port below the ephemeral range (32768+), where a restarted node could find its port taken by some
/// outgoing connection; probed by binding it.
fn free_port() -> u16 {
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

fn make_certs(dir: &Path, nodes: &[u64], ca_name: &str) {
    let spec = ClusterCertSpec {
        ca_name: ca_name.into(),
        nodes: nodes
            .iter()
            .map(|&id| NodeSpec {
                id,
                addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            })
            .collect(),
        clients: vec!["test".into()],
        validity: CertValidity::around(SystemTime::now()),
    };
    generate_cluster_certs(dir, &spec).expect("certificates");
}

/// A cluster of node processes in a temporary folder. Dropping it kills every process.
struct TestCluster {
    dir: TempDir,
    certs: PathBuf,
    addrs: BTreeMap<u64, SocketAddr>,
    initial: Vec<u64>,
    children: BTreeMap<u64, Child>,
}

impl TestCluster {
    /// Certificates for ids 1..=max_id; starts nodes 1..=n as the initial voters.
    fn start(n: u64, max_id: u64) -> TestCluster {
        let mut cluster = TestCluster::prepare(n, max_id);
        for id in 1..=n {
            cluster.spawn(id, None);
        }
        cluster
    }

    /// Certificates for ids 1..=max_id and nodes 1..=n as the initial voters, none started yet.
    fn prepare(n: u64, max_id: u64) -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = dir.path().join("certs");
        make_certs(&certs, &(1..=max_id).collect::<Vec<_>>(), "test cluster CA");
        let addrs = (1..=max_id)
            .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], free_port()))))
            .collect();
        TestCluster {
            dir,
            certs,
            addrs,
            initial: (1..=n).collect(),
            children: BTreeMap::new(),
        }
    }

    fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("n{id}"))
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("n{id}.log"))
    }

    fn command(&self, id: u64, join: Option<u64>) -> Command {
        self.command_with_certs(id, join, &self.certs)
    }

    fn command_with_certs(&self, id: u64, join: Option<u64>, certs: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raft-node"));
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
            .args(["--snapshot-interval-entries", "50"]);
        match join {
            Some(via) => {
                cmd.arg("--join").arg(self.addrs[&via].to_string());
            }
            None => {
                for peer in &self.initial {
                    cmd.arg("--peer")
                        .arg(format!("{peer}={}", self.addrs[peer]));
                }
            }
        }
        cmd
    }

    fn spawn(&mut self, id: u64, join: Option<u64>) {
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
            .expect("start raft-node");
        self.children.insert(id, child);
    }

    fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill(); // SIGKILL: no chance to flush anything.
            let _ = child.wait();
        }
    }

    fn terminate(&mut self, id: u64) -> std::process::ExitStatus {
        let mut child = self.children.remove(&id).expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        child.wait().expect("wait")
    }

    fn addr_list(&self, ids: &[u64]) -> Vec<SocketAddr> {
        ids.iter().map(|id| self.addrs[id]).collect()
    }

    fn client(&self, ids: &[u64]) -> Client {
        let options = ClientOptions {
            request_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        };
        Client::connect(&self.addr_list(ids), &self.certs, "test", options).expect("client")
    }

    fn endpoint(&self) -> ClientEndpoint {
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

    async fn status(&self, endpoint: &ClientEndpoint, id: u64) -> Option<NodeStatus> {
        node_status(endpoint, self.addrs[&id], None, Duration::from_millis(500))
            .await
            .ok()
    }

    /// Waits until `ids` agree on one leader among them, and returns it.
    async fn wait_leader(&self, ids: &[u64]) -> u64 {
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
    async fn wait_applied(&self, id: u64, index: u64) -> NodeStatus {
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

    fn logs(&self) -> String {
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

impl Drop for TestCluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn put_ok(client: &mut Client, key: &str, value: &str) {
    match client.put(key, value).await {
        Outcome::Ok(()) => {}
        other => panic!("put {key}={value}: {other:?}"),
    }
}

async fn get(client: &mut Client, key: &str) -> Option<String> {
    match client.get(key).await {
        Outcome::Ok(v) => v,
        other => panic!("get {key}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_crash_new_leader_and_catch_up() {
    let mut cluster = TestCluster::start(3, 3);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let mut client = cluster.client(&[1, 2, 3]);
    for i in 0..20 {
        put_ok(&mut client, &format!("k{i}"), &format!("v{i}")).await;
    }
    // Writes replicate: every node applies them.
    let endpoint = cluster.endpoint();
    let commit = cluster
        .status(&endpoint, leader)
        .await
        .expect("leader answers")
        .raft
        .commit
        .0;
    for id in 1..=3 {
        cluster.wait_applied(id, commit).await;
    }

    // kill -9 of the leader: the others elect a new one and writes go on.
    cluster.kill(leader);
    let rest: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    let new_leader = cluster.wait_leader(&rest).await;
    assert_ne!(new_leader, leader);
    for i in 20..100 {
        put_ok(&mut client, &format!("k{i}"), &format!("v{i}")).await;
    }

    // The old leader comes back as a follower and catches up (by snapshot: nodes snapshot every 50 entries).
    cluster.spawn(leader, None);
    let commit = cluster
        .status(&endpoint, new_leader)
        .await
        .expect("leader answers")
        .raft
        .commit
        .0;
    let status = cluster.wait_applied(leader, commit).await;
    assert_eq!(
        status.raft.leader.map(|l| l.0),
        Some(new_leader),
        "the old leader follows the new one"
    );
    assert_eq!(status.raft.role, raft::Role::Follower);

    // A follower is killed, misses writes, restarts and catches up.
    let follower = rest
        .iter()
        .copied()
        .find(|&i| i != new_leader)
        .expect("a follower");
    cluster.kill(follower);
    for i in 100..130 {
        put_ok(&mut client, &format!("k{i}"), &format!("v{i}")).await;
    }
    cluster.spawn(follower, None);
    let commit = cluster
        .status(&endpoint, new_leader)
        .await
        .expect("leader answers")
        .raft
        .commit
        .0;
    let status = cluster.wait_applied(follower, commit).await;
    assert_eq!(status.raft.role, raft::Role::Follower);
    for i in [0, 57, 129] {
        assert_eq!(
            get(&mut client, &format!("k{i}")).await,
            Some(format!("v{i}"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_through_a_follower_and_a_node_is_removed() {
    let mut cluster = TestCluster::start(3, 4);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let mut client = cluster.client(&[1, 2, 3]);
    for i in 0..60 {
        put_ok(&mut client, &format!("k{i}"), "x").await;
    }
    let follower = (1..=3).find(|&i| i != leader).expect("a follower");
    cluster.spawn(4, Some(follower));
    // The newcomer is caught up (by snapshot and log) and promoted to voter.
    let endpoint = cluster.endpoint();
    let give_up = Instant::now() + GUARD;
    loop {
        let s4 = cluster.status(&endpoint, 4).await;
        if s4.as_ref().is_some_and(|s| {
            s.raft.membership.voters.len() == 4 && s.raft.role == raft::Role::Follower
        }) {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "node 4 was not promoted: {s4:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let commit = cluster
        .status(&endpoint, leader)
        .await
        .expect("leader")
        .raft
        .commit
        .0;
    cluster.wait_applied(4, commit).await;

    // Remove a follower other than the newcomer: it learns of it and stops.
    let removed = (1..=3).find(|&i| i != leader).expect("a follower");
    let mut admin = cluster.client(&[leader]);
    let outcome = raft_node::client::admin(
        &mut admin,
        raft_node::protocol::Request::Remove {
            id: raft::NodeId(removed),
        },
    )
    .await;
    assert!(
        matches!(outcome, Outcome::Ok(raft_node::protocol::Response::Done)),
        "{outcome:?}"
    );
    let child = cluster.children.get_mut(&removed).expect("running");
    let give_up = Instant::now() + GUARD;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < give_up,
            "removed node {removed} is still running\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a removed node exits cleanly");
    let s = cluster.status(&endpoint, leader).await.expect("leader");
    assert_eq!(s.raft.membership.voters.len(), 3);
    assert!(!s.raft.membership.contains(raft::NodeId(removed)));
    put_ok(&mut client, "after-removal", "y").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_killing_every_node() {
    let mut cluster = TestCluster::start(3, 3);
    cluster.wait_leader(&[1, 2, 3]).await;
    let writer = {
        let mut client = cluster.client(&[1, 2, 3]);
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let stop = Instant::now() + Duration::from_millis(2500);
            let mut i = 0;
            while Instant::now() < stop {
                if let Outcome::Ok(()) = client.put(&format!("w{i}"), &format!("v{i}")).await {
                    acknowledged.push(i);
                }
                i += 1;
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    for id in 1..=3 {
        cluster.kill(id);
    }
    let acknowledged = writer.await.expect("writer");
    assert!(
        acknowledged.len() >= 10,
        "too few writes before the crash: {}",
        acknowledged.len()
    );
    for id in 1..=3 {
        cluster.spawn(id, None);
    }
    cluster.wait_leader(&[1, 2, 3]).await;
    let mut client = cluster.client(&[1, 2, 3]);
    for i in acknowledged {
        assert_eq!(
            get(&mut client, &format!("w{i}")).await,
            Some(format!("v{i}")),
            "acknowledged write w{i} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_peers_with_a_foreign_ca_are_refused() {
    let mut cluster = TestCluster::prepare(3, 3);
    cluster.spawn(1, None);
    cluster.spawn(2, None);
    // Node 3 runs with certificates from another CA, under the right id: the real members refuse it.
    let foreign = cluster.dir.path().join("foreign");
    make_certs(&foreign, &[3], "foreign CA");
    let log = std::fs::File::create(cluster.log_path(3)).expect("log");
    let mut cmd = cluster.command_with_certs(3, None, &foreign);
    cluster.children.insert(
        3,
        cmd.stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start impostor"),
    );
    let leader = cluster.wait_leader(&[1, 2]).await;
    let mut client = cluster.client(&[1, 2]);
    put_ok(&mut client, "k", "v").await;
    // The impostor never received the log: ask it with a client of its own (foreign) CA.
    let creds = Credentials::load(&foreign, &PeerIdentity::Client("test".into()))
        .expect("foreign client creds");
    let foreign_endpoint = ClientEndpoint::bind(
        "127.0.0.1:0".parse().unwrap(),
        &creds,
        1,
        TransportConfig::default(),
    )
    .unwrap();
    let s3 = node_status(
        &foreign_endpoint,
        cluster.addrs[&3],
        None,
        Duration::from_secs(2),
    )
    .await
    .expect("impostor answers its own CA");
    assert_eq!(
        s3.raft.leader, None,
        "the impostor never heard from the leader"
    );
    assert!(s3.raft.commit.0 <= 1, "the impostor got no entries: {s3:?}");
    // A client with a foreign certificate is refused by the real nodes, definitely (nothing was processed).
    let err = node_status(
        &foreign_endpoint,
        cluster.addrs[&leader],
        None,
        Duration::from_secs(2),
    )
    .await
    .expect_err("refused");
    assert!(
        err.contains("not sent")
            || err.contains("refused")
            || err.contains("UnknownIssuer")
            || err.contains("certificate"),
        "{err}"
    );
    let mut foreign_client = Client::connect(
        &cluster.addr_list(&[leader]),
        &foreign,
        "test",
        ClientOptions {
            request_timeout: Duration::from_secs(2),
            ..ClientOptions::default()
        },
    )
    .expect("client");
    assert!(
        matches!(foreign_client.put("x", "y").await, Outcome::Fail(_)),
        "a refused client's write definitely failed"
    );
    cluster.kill(3);
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_truncated_and_a_corrupt_middle_is_refused() {
    let mut cluster = TestCluster::start(1, 1);
    cluster.wait_leader(&[1]).await;
    let mut client = cluster.client(&[1]);
    for i in 0..20 {
        put_ok(&mut client, &format!("k{i}"), &format!("v{i}")).await;
    }
    assert!(
        cluster.terminate(1).success(),
        "SIGTERM stops the node cleanly"
    );
    let segment = only_segment(&cluster.data_dir(1));
    let clean = std::fs::read(&segment).expect("segment");

    // A torn tail: half a record of garbage at the end, as a crash mid-write leaves it.
    let mut torn = clean.clone();
    torn.extend_from_slice(&[0x5a; 19]);
    std::fs::write(&segment, &torn).expect("write torn segment");
    cluster.spawn(1, None);
    cluster.wait_leader(&[1]).await;
    let mut client = cluster.client(&[1]);
    assert_eq!(get(&mut client, "k19").await, Some("v19".into()));
    let log = std::fs::read_to_string(cluster.log_path(1)).expect("log");
    assert!(log.contains("torn"), "the truncation is logged:\n{log}");
    assert!(cluster.terminate(1).success());

    // A corrupted byte in the middle: the node refuses to start and names the file and offset.
    let mut bytes = std::fs::read(&segment).expect("segment");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, &bytes).expect("write corrupt segment");
    let before = std::fs::read(&segment).expect("segment");
    let output = cluster.command(1, None).output().expect("run raft-node");
    assert!(!output.status.success(), "a corrupt log must stop the node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&segment.display().to_string()),
        "the error names the file:\n{stderr}"
    );
    assert!(
        stderr.contains("offset"),
        "the error names the offset:\n{stderr}"
    );
    assert_eq!(
        std::fs::read(&segment).expect("segment"),
        before,
        "the damaged log is left as it was"
    );
}
