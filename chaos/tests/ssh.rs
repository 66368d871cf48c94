//! The SSH host backend for real, over OpenSSH: three network namespaces, each running Debian's sshd on its own
//! address (the same code path as real machines; only the addresses differ). A short kill + partition plan
//! against raft-node must pass with the nodes started, killed and partitioned over SSH, their logs and data
//! brought home, and nothing left on the hosts. Needs root, iproute2, nftables and openssh-server (CI installs
//! them); elsewhere it prints why it skips.

mod common;
use chaos::hosts::netns::NetnsHosts;
use chaos::supervisor::{NodeLaunch, Supervisor};
use common::{node_binary, require};
use std::path::Path;
use std::process::Command;

const SSHD: &str = "/usr/sbin/sshd";

fn usable() -> bool {
    let check = common::root()
        .and_then(|()| chaos::hosts::netns::available())
        .and_then(|()| {
            Path::new(SSHD)
                .exists()
                .then_some(())
                .ok_or_else(|| "sshd missing (apt-get install openssh-server)".into())
        })
        .and_then(|()| chaos::faults::network::nftables::available());
    require("ssh hosts", check)
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
}

/// sshd in each namespace, accepting `key`; stopped when the returned supervisor drops.
fn start_sshd(hosts: &NetnsHosts, ids: &[u64], dir: &Path) -> Supervisor {
    std::fs::create_dir_all("/run/sshd").unwrap();
    keygen(&dir.join("host_key"));
    let mut supervisor = Supervisor::new();
    for &id in ids {
        let ip = hosts.subnet().node_ip(id);
        let options = [
            format!("ListenAddress={ip}"),
            format!("HostKey={}", dir.join("host_key").display()),
            format!(
                "AuthorizedKeysFile={}",
                dir.join("client_key.pub").display()
            ),
            "PermitRootLogin=prohibit-password".into(),
            "StrictModes=no".into(),
            "UsePAM=no".into(),
            "PidFile=none".into(),
            "MaxStartups=100".into(),
        ];
        let mut args: Vec<std::ffi::OsString> =
            vec!["-D".into(), "-e".into(), "-f".into(), "/dev/null".into()];
        for o in options {
            args.push("-o".into());
            args.push(o.into());
        }
        supervisor.add(NodeLaunch {
            id,
            program: SSHD.into(),
            args,
            env: vec![],
            log: dir.join(format!("sshd-{id}.log")),
            netns: Some(hosts.namespace_path(id)),
        });
        supervisor.start(id).expect("start sshd");
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    supervisor
}

#[test]
fn a_kill_and_partition_plan_passes_on_hosts_reached_over_ssh() {
    if !usable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ids = [1, 2, 3];
    let hosts = NetnsHosts::create(&ids).expect("namespaces");
    keygen(&dir.path().join("client_key"));
    let _sshd = start_sshd(&hosts, &ids, dir.path());
    let machines: String = ids
        .iter()
        .map(|&id| {
            format!(
                "[[cluster.ssh_hosts]]\naddress = \"{}\"\nuser = \"root\"\nkey = \"{}\"\n",
                hosts.subnet().node_ip(id),
                dir.path().join("client_key").display()
            )
        })
        .collect();
    let plan = format!(
        r#"
name = "ssh-kill-partition"
seed = 3
duration = "6s"
warmup = "1s"
recovery = "3s"

[cluster]
binary = "{binary}"
nodes = 3
hosts = "ssh"
ssh_known_hosts = "{known}"
{machines}
[workload]
clients = 3
rate = 80
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
        binary = node_binary().display(),
        known = dir.path().join("known_hosts").display(),
    );
    let (output, s) = common::run_plan(dir.path(), &plan);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(s["verdict"], "pass", "{s:#}\n{stderr}");
    let run = dir.path().join(s["run_dir"].as_str().unwrap());
    // The nodes really ran over there, and their logs and data came home.
    let log = std::fs::read_to_string(run.join("nodes/n1/node.log")).unwrap();
    assert!(!log.is_empty(), "n1's log came home");
    assert!(run.join("nodes/n1/data").is_dir(), "n1's data came home");
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert_eq!(events.matches("\"event\":\"start\"").count(), 2, "{events}");
    // Nothing left on the hosts: no run folder, no node process, no firewall table.
    let leftovers: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("chaos-run-ssh-kill-partition")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(!tables.contains("ssh_kill_partition"), "{tables}");
}
