//! Clock faults from outside the nodes: raft-node processes under the clock shim, steered through their control
//! files while they run.

mod common;
use common::node_binary;
use raft_node::local::LocalCluster;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cluster whose node `shimmed` runs under the clock shim; returns its control.
fn cluster_with_shim(n: u64, start: &[u64], shimmed: u64) -> (LocalCluster, clock_shim::Control) {
    let mut cluster = LocalCluster::prepare(&node_binary(), n, n);
    let library = clock_shim::library_path().expect("the clock shim library is built with chaos");
    let control = clock_shim::Control::create(cluster.dir.path().join(format!("clock-{shimmed}")))
        .expect("control file");
    let env = control
        .env(&library)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
        .collect();
    cluster.envs.insert(shimmed, env);
    for &id in start {
        cluster.spawn(id, None);
    }
    (cluster, control)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_bumped_ten_seconds_shows_it_in_its_status() {
    let (cluster, control) = cluster_with_shim(3, &[1, 2, 3], 3);
    cluster.wait_leader(&[1, 2, 3]).await;
    control.bump(Duration::from_secs(10), true);
    let endpoint = cluster.endpoint();
    let skew = |s: raft_node::protocol::NodeStatus| s.wall_clock_unix_ms as i64 - unix_ms();
    let bumped = skew(cluster.status(&endpoint, 3).await.expect("n3 answers"));
    let normal = skew(cluster.status(&endpoint, 1).await.expect("n1 answers"));
    assert!(
        (9_000..=11_000).contains(&bumped),
        "n3's wall clock is 10 s ahead: {bumped} ms"
    );
    assert!(normal.abs() < 1_000, "n1's wall clock is true: {normal} ms");
    // The monotonic clock did not jump: the cluster keeps its leader and n3 keeps following.
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    assert!([1, 2, 3].contains(&leader));
    control.reset();
    let after = skew(cluster.status(&endpoint, 3).await.expect("n3 answers"));
    assert!(
        after.abs() < 1_000,
        "reset brings the wall clock back: {after} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_drift_times_two_the_election_timer_fires_about_twice_as_often() {
    // Node 3 alone of a three-node cluster: it never wins, so its election timer fires over and over.
    let (cluster, control) = cluster_with_shim(3, &[3], 3);
    let endpoint = cluster.endpoint();
    let elections = |s: raft_node::protocol::NodeStatus| s.raft.elections_started;
    let measure = || async {
        let before = elections(cluster.status(&endpoint, 3).await.expect("n3 answers"));
        tokio::time::sleep(Duration::from_secs(3)).await;
        elections(cluster.status(&endpoint, 3).await.expect("n3 answers")) - before
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let normal = measure().await;
    control.set_rate(2.0).expect("rate 2");
    let fast = measure().await;
    let ratio = fast as f64 / normal.max(1) as f64;
    assert!(
        normal >= 8,
        "150–300 ms timeouts fire about 13 times in 3 s, saw {normal}"
    );
    assert!(
        (1.5..=2.7).contains(&ratio),
        "rate 2 should about double the elections: {normal} then {fast} ({ratio:.2}x)"
    );
}
