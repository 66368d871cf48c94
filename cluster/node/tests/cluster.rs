//! Real `raft-node` processes on 127.0.0.1: elections, replication, crashes, membership, durability, mutual TLS,
//! and recovery from damaged logs. Every process is killed when its test ends, passing or failing.

use raft_node::client::{node_status, Client, ClientOptions, Outcome};
use raft_node::local::{make_certs, LocalCluster, GUARD};
use raft_transport::{ClientEndpoint, Credentials, PeerIdentity, TransportConfig};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");

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
    let mut cluster = LocalCluster::start(BINARY.as_ref(), 3, 3);
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
    // Issue 16: at the end every node has applied the same index and reports the same state digest (one
    // caught up by snapshot, one by log, one wrote it).
    let give_up = Instant::now() + GUARD;
    let states = loop {
        let mut states = Vec::new();
        for id in 1..=3 {
            if let Some(s) = cluster.status(&endpoint, id).await {
                states.push(s.applied_state);
            }
        }
        if states.len() == 3 && states.iter().all(|s| s.index == states[0].index) {
            break states;
        }
        assert!(
            Instant::now() < give_up,
            "applied indexes never met: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        states.iter().all(|s| s.digest == states[0].digest),
        "{states:?}"
    );
    assert_eq!(states[0].keys, 130, "{states:?}");
}

/// Waits until node `id` has applied everything `leader` had committed when asked.
async fn catch_up(cluster: &LocalCluster, endpoint: &ClientEndpoint, leader: u64, id: u64) {
    let commit = cluster
        .status(endpoint, leader)
        .await
        .expect("leader")
        .raft
        .commit
        .0;
    cluster.wait_applied(id, commit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_through_a_follower_and_a_node_is_removed() {
    let mut cluster = LocalCluster::start(BINARY.as_ref(), 3, 4);
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
    catch_up(&cluster, &endpoint, leader, 4).await;

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
    assert_eq!(
        status.code(),
        Some(EXIT_REMOVED),
        "a removed node exits with its own status"
    );
    let s = cluster.status(&endpoint, leader).await.expect("leader");
    assert_eq!(s.raft.membership.voters.len(), 3);
    assert!(!s.raft.membership.contains(raft::NodeId(removed)));
    put_ok(&mut client, "after-removal", "y").await;

    // The newcomer restarts with the command it was first started with (as a service manager restarts it):
    // it must find its peers again from its data dir, not only from the join answer it got at first.
    cluster.kill(4);
    cluster.spawn(4, Some(leader));
    put_ok(&mut client, "after-restart", "z").await;
    catch_up(&cluster, &endpoint, leader, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_killing_every_node() {
    let mut cluster = LocalCluster::start(BINARY.as_ref(), 3, 3);
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
    let mut cluster = LocalCluster::prepare(BINARY.as_ref(), 3, 3);
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
    let mut cluster = LocalCluster::start(BINARY.as_ref(), 1, 1);
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

/// Waits for node `id`'s process to exit on its own and returns its exit code.
async fn wait_exit(cluster: &mut LocalCluster, id: u64) -> Option<i32> {
    let give_up = Instant::now() + GUARD;
    loop {
        let child = cluster.children.get_mut(&id).expect("running");
        if let Some(status) = child.try_wait().expect("try_wait") {
            cluster.children.remove(&id);
            return status.code();
        }
        assert!(
            Instant::now() < give_up,
            "node {id} is still running\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_voter(cluster: &LocalCluster, id: u64, voters: usize) {
    let endpoint = cluster.endpoint();
    let give_up = Instant::now() + GUARD;
    loop {
        let s = cluster.status(&endpoint, id).await;
        if s.as_ref().is_some_and(|s| {
            s.raft.membership.voters.len() == voters
                && s.raft.membership.voters.contains(&raft::NodeId(id))
        }) {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "node {id} did not become a voter: {s:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn remove(cluster: &LocalCluster, via: &[u64], id: u64) {
    let mut admin = cluster.client(via);
    let outcome = raft_node::client::admin(
        &mut admin,
        raft_node::protocol::Request::Remove {
            id: raft::NodeId(id),
        },
    )
    .await;
    assert!(
        matches!(outcome, Outcome::Ok(raft_node::protocol::Response::Done)),
        "{outcome:?}"
    );
}

/// The exit status of a node that was removed from the cluster (documented in `raft-node run --help`).
const EXIT_REMOVED: i32 = 5;

/// Issue 13: three nodes, node 2 killed, removed, node 4 joined through node 3, node 2 started again on its old
/// data directory. It used to stay a pre-candidate for good while `status` called the cluster steady; now a
/// member tells it at its hello that it was removed, and it exits with its own status, its data left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_removed_while_down_learns_it_when_it_returns_and_exits() {
    let mut cluster = LocalCluster::start(BINARY.as_ref(), 3, 4);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let mut client = cluster.client(&[1, 2, 3]);
    for i in 0..10 {
        put_ok(&mut client, &format!("k{i}"), "x").await;
    }
    cluster.kill(2);
    if leader == 2 {
        cluster.wait_leader(&[1, 3]).await;
    }
    remove(&cluster, &[1, 3], 2).await;
    cluster.spawn(4, Some(3));
    wait_voter(&cluster, 4, 3).await;
    let mut client = cluster.client(&[1, 3, 4]);
    put_ok(&mut client, "after-removal", "y").await;

    // While node 2 is down, status names it as removed, not as a member that is down.
    let endpoint = cluster.endpoint();
    let all = cluster.addr_list(&[1, 2, 3, 4]);
    let (_, summary) = raft_node::status::collect(&endpoint, &all, Duration::from_secs(1)).await;
    let removed_at = summary
        .non_members
        .iter()
        .find(|n| n.id == 2)
        .and_then(|n| n.removed_at)
        .unwrap_or_else(|| panic!("node 2 is not reported as removed: {summary:?}"));
    assert_eq!(summary.state, "steady", "{summary:?}");
    assert_eq!(summary.up, 3, "{summary:?}");

    let data_dir = cluster.data_dir(2);
    let before = files_in(&data_dir);
    cluster.spawn(2, None);
    assert_eq!(
        wait_exit(&mut cluster, 2).await,
        Some(EXIT_REMOVED),
        "{}",
        cluster.logs()
    );
    let log = std::fs::read_to_string(cluster.log_path(2)).expect("log");
    assert!(
        log.contains(&format!(
            "says this node was removed from the cluster at log index {removed_at}"
        )),
        "{log}"
    );
    assert_eq!(
        files_in(&data_dir),
        before,
        "nothing was removed from its data dir"
    );
    let s = cluster.status(&endpoint, 4).await.expect("node 4");
    assert!(!s.raft.membership.contains(raft::NodeId(2)));
    put_ok(&mut client, "still-writable", "z").await;
}

/// Issue 13: node ids are never reused. A member whose data directory was wiped cannot rejoin under its id,
/// nor can it once removed; a fresh id joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_cannot_rejoin_under_its_old_id_but_a_fresh_id_can() {
    let mut cluster = LocalCluster::start(BINARY.as_ref(), 3, 4);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let mut client = cluster.client(&[1, 2, 3]);
    put_ok(&mut client, "k", "v").await;
    let wiped = (1..=3).find(|&i| i != leader).expect("a follower");
    let other = (1..=3)
        .find(|&i| i != leader && i != wiped)
        .expect("another follower");
    cluster.kill(wiped);
    std::fs::remove_dir_all(cluster.data_dir(wiped)).expect("wipe");

    // Still a member, but with a new (empty) data directory: refused.
    cluster.spawn(wiped, Some(other));
    assert_eq!(wait_exit(&mut cluster, wiped).await, Some(1));
    let log = std::fs::read_to_string(cluster.log_path(wiped)).expect("log");
    assert!(
        log.contains(&format!("node id {wiped} is already used in this cluster"))
            && log.contains("never reused"),
        "{log}"
    );

    // Removed, then wiped again: refused, saying when it was removed.
    remove(&cluster, &[leader, other], wiped).await;
    std::fs::remove_dir_all(cluster.data_dir(wiped)).expect("wipe");
    cluster.spawn(wiped, Some(other));
    assert_eq!(wait_exit(&mut cluster, wiped).await, Some(1));
    let log = std::fs::read_to_string(cluster.log_path(wiped)).expect("log");
    assert!(
        log.contains(&format!(
            "node id {wiped} was removed from this cluster at log index"
        )),
        "{log}"
    );

    // A fresh id joins and becomes a voter.
    cluster.spawn(4, Some(other));
    wait_voter(&cluster, 4, 3).await;
    let mut client = cluster.client(&[leader, other, 4]);
    put_ok(&mut client, "k2", "v2").await;
}

/// Every file under `dir` with its contents (the LOCK file, which holds the pid, aside).
fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "LOCK") {
                let bytes = std::fs::read(&path).expect("read");
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Starts 3 nodes with `extra` arguments, writes once, kills both followers, and returns what a write to the
/// leader alone gives within 1.5 s.
async fn write_without_a_majority(extra: &[&str]) -> (Outcome<()>, Vec<String>, String) {
    let mut cluster = LocalCluster::prepare(BINARY.as_ref(), 3, 3);
    cluster.extra_args = extra.iter().map(|s| s.to_string()).collect();
    for id in 1..=3 {
        cluster.spawn(id, None);
    }
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let endpoint = cluster.endpoint();
    let bugs = cluster
        .status(&endpoint, leader)
        .await
        .expect("leader")
        .bugs;
    let mut client = cluster.client(&[leader]);
    put_ok(&mut client, "before", "x").await;
    for id in (1..=3).filter(|&i| i != leader) {
        cluster.kill(id);
    }
    let mut lonely = Client::connect(
        &cluster.addr_list(&[leader]),
        &cluster.certs,
        "test",
        ClientOptions {
            request_timeout: Duration::from_millis(1500),
            ..ClientOptions::default()
        },
    )
    .expect("client");
    let outcome = lonely.put("k", "v").await;
    let log = std::fs::read_to_string(cluster.log_path(leader)).expect("log");
    (outcome, bugs, log)
}

/// `--bug early-ack` really acknowledges writes no majority has (and is repeatable, shown in status and the
/// log); the same cluster without it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_ack_acknowledges_a_write_no_majority_has() {
    let (outcome, bugs, log) =
        write_without_a_majority(&["--bug", "early-ack", "--bug", "no-fsync"]).await;
    assert_eq!(outcome, Outcome::Ok(()), "early-ack acknowledged at once");
    assert_eq!(bugs, vec!["no-fsync".to_string(), "early-ack".to_string()]);
    assert!(
        log.contains("deliberate bug switched on") && log.contains("early-ack"),
        "{log}"
    );
    let (outcome, bugs, _) = write_without_a_majority(&[]).await;
    assert!(
        !matches!(outcome, Outcome::Ok(())),
        "without the bug a write needs a majority: {outcome:?}"
    );
    assert!(bugs.is_empty());
}

/// Issue 13 (found by the chaos tool's replace plan): a restarted node learns addresses by applying entries, and
/// it re-applies those after its persisted commit index (written only with a term or vote change) only once a
/// leader tells it they are committed. Node 4 joins, node X is removed, then the leader and the last original
/// follower Y die; Y restarts alone next to node 4. Its log makes 4 a voter it needs for a majority, but 4's
/// address sits in an entry it has not applied: it used to refuse 4's hellos and no leader was ever elected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_reaches_a_member_whose_address_is_only_in_its_unapplied_log() {
    let mut cluster = LocalCluster::start(BINARY.as_ref(), 3, 4);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let mut client = cluster.client(&[1, 2, 3]);
    put_ok(&mut client, "before", "x").await;
    cluster.spawn(4, Some(leader));
    wait_voter(&cluster, 4, 4).await;
    let removed = (1..=3).find(|&i| i != leader).expect("a follower");
    let survivor = (1..=3)
        .find(|&i| i != leader && i != removed)
        .expect("another follower");
    remove(&cluster, &[leader, survivor, 4], removed).await;
    assert_eq!(wait_exit(&mut cluster, removed).await, Some(EXIT_REMOVED));
    let mut client = cluster.client(&[leader, survivor, 4]);
    put_ok(&mut client, "after", "y").await;

    cluster.kill(leader);
    cluster.kill(survivor);
    cluster.spawn(survivor, None);
    let new_leader = cluster.wait_leader(&[survivor, 4]).await;
    assert!([survivor, 4].contains(&new_leader));
    let mut client = cluster.client(&[survivor, 4]);
    put_ok(&mut client, "restarted", "z").await;
    assert_eq!(get(&mut client, "after").await.as_deref(), Some("y"));
}
