//! Network namespaces as hosts, at the kernel level: each node's namespace has its own address and no default
//! route; a partition (nftables rules on the bridge) really stops datagrams between two namespaces and healing
//! lets them through again; dropping the hosts removes every namespace and the bridge. Root only (CI is root).

mod common;
use chaos::faults::network::nftables::{NftFamily, NftNetwork};
use chaos::faults::network::{LinkDegradation, NetworkBackend};
use chaos::hosts::netns::NetnsHosts;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

fn usable() -> bool {
    common::require(
        "netns",
        common::root().and_then(|()| chaos::hosts::netns::available()),
    )
}

/// Runs `f` on a thread that has entered the namespace at `path`.
fn in_namespace<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(path).expect("open namespace");
    std::thread::spawn(move || {
        // SAFETY: setns on this thread only, with a valid namespace descriptor.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Whether a datagram from node 1's namespace reaches a socket in node 2's.
fn datagram_arrives(hosts: &NetnsHosts, from_ip: Ipv4Addr, to_ip: Ipv4Addr) -> bool {
    let receiver = in_namespace(&hosts.namespace_path(2), move || {
        UdpSocket::bind(SocketAddr::from((to_ip, 0))).expect("bind in n2")
    });
    receiver
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let target = receiver.local_addr().unwrap();
    in_namespace(&hosts.namespace_path(1), move || {
        let sender = UdpSocket::bind(SocketAddr::from((from_ip, 0))).expect("bind in n1");
        for _ in 0..3 {
            sender.send_to(b"probe", target).expect("send");
        }
    });
    let mut buf = [0u8; 16];
    receiver.recv_from(&mut buf).is_ok()
}

#[test]
fn namespaces_are_isolated_partitioned_by_the_kernel_and_removed() {
    if !usable() {
        return;
    }
    let hosts = NetnsHosts::create(&[1, 2, 3]).expect("create namespaces");
    let subnet = hosts.subnet();
    for id in 1..=3 {
        assert!(
            !hosts.has_default_route(id).unwrap(),
            "n{id} must have no default route: nothing may leave the machine"
        );
    }
    let (ip1, ip2) = (subnet.node_ip(1), subnet.node_ip(2));
    assert!(datagram_arrives(&hosts, ip1, ip2), "healthy link");
    let nodes: BTreeMap<u64, Ipv4Addr> = (1..=3).map(|id| (id, subnet.node_ip(id))).collect();
    let mut net = NftNetwork::create_in(NftFamily::Bridge, "netns-test", &nodes).unwrap();
    let cut = LinkDegradation {
        cut: true,
        ..LinkDegradation::default()
    };
    net.apply(&BTreeMap::from([((1, 2), cut)])).unwrap();
    assert!(!datagram_arrives(&hosts, ip1, ip2), "cut link");
    net.apply(&BTreeMap::new()).unwrap();
    assert!(datagram_arrives(&hosts, ip1, ip2), "healed link");
    drop(net);
    let names: Vec<String> = (1..=3).map(|id| subnet.namespace(id)).collect();
    drop(hosts);
    let listing = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for name in names {
        assert!(
            !listing
                .lines()
                .any(|l| l.split_whitespace().next() == Some(&name)),
            "{name} left behind"
        );
    }
}

#[test]
fn a_kill_and_partition_plan_passes_against_raft_node_on_namespaces() {
    if !usable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        r#"
name = "netns-raft"
seed = 9
duration = "6s"
warmup = "1s"
recovery = "3s"

[cluster]
binary = "{}"
nodes = 3
hosts = "netns"

[workload]
clients = 3
rate = 100
keys = 3

[[faults]]
kind = "kill"
target = "leader"
at = ["500ms"]
duration = "1500ms"

[[faults]]
kind = "partition"
topology = "isolate"
target = "leader"
at = ["3s"]
duration = "2s"
"#,
        common::node_binary().display()
    );
    let (out, s) = common::run_plan(dir.path(), &plan);
    assert_eq!(
        s["verdict"],
        "pass",
        "{s:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = dir.path().join(s["run_dir"].as_str().unwrap());
    let manifest = std::fs::read_to_string(run.join("manifest.json")).unwrap();
    assert!(manifest.contains("198.1"), "nodes had namespace addresses");
}

#[test]
fn an_interrupted_namespace_run_leaves_no_namespace_bridge_or_process() {
    if !usable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        "name = \"netns-sigint\"\nduration = \"60s\"\n[cluster]\nbinary = \"{}\"\nhosts = \"netns\"\n\
         [[faults]]\nkind = \"partition\"\ntopology = \"isolate\"\nevery = \"2s\"\n",
        common::node_binary().display()
    );
    let path = dir.path().join("plan.toml");
    std::fs::write(&path, plan).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["run", path.to_str().unwrap(), "--quiet", "--out", "results"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run is under way (its history has operations), then interrupt it.
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let history = std::fs::read_dir(dir.path().join("results"))
            .ok()
            .and_then(|mut d| {
                d.find_map(|e| {
                    e.ok()
                        .filter(|e| e.file_name() != "latest" && e.path().is_dir())
                })
            })
            .and_then(|e| std::fs::read_to_string(e.path().join("history.jsonl")).ok())
            .unwrap_or_default();
        if history.contains("\"type\":\"ok\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let namespaces = String::from_utf8_lossy(&namespaces.stdout).into_owned();
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout).into_owned();
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout).into_owned();
    // This run's subnet k, from a node address 198.(18 + k / 256).(k % 256).x in its manifest.
    let run = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .find_map(|e| {
            e.ok()
                .filter(|e| e.file_name() != "latest" && e.path().is_dir())
        })
        .unwrap()
        .path();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    let peer = manifest["nodes"][0]["peer"].as_str().unwrap().to_string();
    let octets: Vec<u32> = peer
        .split([':', '.'])
        .take(3)
        .map(|o| o.parse().unwrap())
        .collect();
    let k = (octets[1] - 18) * 256 + octets[2];
    let ours = |name: &str| name == format!("chbr{k}") || name.starts_with(&format!("chaos{k}n"));
    assert!(
        !namespaces
            .lines()
            .any(|l| ours(l.split_whitespace().next().unwrap_or(""))),
        "{namespaces}"
    );
    assert!(
        !links
            .split_whitespace()
            .any(|w| ours(w.trim_end_matches(':'))),
        "{links}"
    );
    assert!(!tables.contains("netns_sigint"), "{tables}");
}
