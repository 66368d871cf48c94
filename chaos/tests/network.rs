//! Network faults from outside the nodes: three raft-node processes whose peer links all go through the relay
//! mesh, partitioned and healed while clients talk to them directly.

mod common;
use common::node_binary;
use netproxy::{MeshConfig, RelayMesh};
use raft_node::client::{Client, ClientOptions, Outcome};
use raft_node::local::LocalCluster;
use std::time::{Duration, Instant};

fn client(cluster: &LocalCluster, ids: &[u64]) -> Client {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    };
    Client::connect(&cluster.addr_list(ids), &cluster.certs, "test", options).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_cannot_commit_while_the_majority_can_and_all_converge_after_heal() {
    let mut cluster = LocalCluster::prepare(&node_binary(), 3, 3);
    let nodes: Vec<(u64, std::net::SocketAddr)> =
        cluster.addrs.iter().map(|(id, a)| (*id, *a)).collect();
    let mesh = RelayMesh::start(&nodes, MeshConfig::default()).expect("relays");
    for &(id, _) in &nodes {
        cluster.peer_routes.insert(id, mesh.peer_addrs(id));
    }
    for id in 1..=3 {
        cluster.spawn(id, None);
    }
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let mut all = client(&cluster, &[1, 2, 3]);
    assert_eq!(all.put("before", "1").await, Outcome::Ok(()));

    // Cut the leader off: it is the minority now.
    mesh.isolate(leader);
    let majority: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    let new_leader = cluster.wait_leader(&majority).await;
    assert_ne!(new_leader, leader);
    // The majority commits.
    let mut majority_client = client(&cluster, &majority);
    assert_eq!(
        majority_client.put("during", "majority").await,
        Outcome::Ok(())
    );
    // The minority cannot: a write sent only to the old leader never commits (refused or indeterminate).
    let mut minority_client = client(&cluster, &[leader]);
    let outcome = minority_client.put("during", "minority").await;
    assert!(
        !matches!(outcome, Outcome::Ok(())),
        "the isolated node committed a write: {outcome:?}"
    );
    assert!(
        !matches!(minority_client.get("during").await, Outcome::Ok(Some(v)) if v == "minority")
    );

    // Heal: everyone converges on the majority's history.
    mesh.faults().clear_all();
    let endpoint = cluster.endpoint();
    let commit = cluster
        .status(&endpoint, new_leader)
        .await
        .expect("leader answers")
        .raft
        .commit
        .0;
    let status = cluster.wait_applied(leader, commit).await;
    assert_eq!(
        status.raft.role,
        raft::Role::Follower,
        "the old leader rejoins as a follower"
    );
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        match all.get("during").await {
            Outcome::Ok(Some(v)) => {
                assert_eq!(v, "majority", "only the majority's write survives");
                break;
            }
            other => assert!(Instant::now() < give_up, "no answer after heal: {other:?}"),
        }
    }
    drop(cluster);
    mesh.shutdown().await;
}
