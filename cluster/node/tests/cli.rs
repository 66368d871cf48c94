//! The `raft-node` command line as a new user meets it: the README's quick start in a fresh folder, what `kv`
//! prints, errors that name their cause, data directories tied to their node, plain-text logs in files.
//! Every process a test starts is killed when the test ends, passing or failing.

use raft_node::local::{free_port, GUARD};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");

/// A node process, killed when dropped.
struct Node {
    child: Child,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder to run commands in, as a user's shell would.
struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    fn new() -> Folder {
        Folder {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BINARY)
            .current_dir(self.path())
            .args(args)
            .output()
            .expect("run raft-node")
    }

    fn spawn(&self, name: &str, args: &[&str]) -> Node {
        let log = self.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BINARY)
            .current_dir(self.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start raft-node");
        Node { child, log }
    }

    /// Retries `kv put` until a leader takes it.
    fn put_when_ready(&self, node: &mut Node, addr: &str, key: &str, value: &str) {
        let give_up = Instant::now() + GUARD;
        loop {
            let out = self.run(&["kv", "--certs", "certs", "--node", addr, "put", key, value]);
            if out.status.success() {
                assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
                return;
            }
            if let Some(status) = node.child.try_wait().expect("try_wait") {
                panic!("the node exited with {status}:\n{}", read(&node.log));
            }
            assert!(
                Instant::now() < give_up,
                "no leader took a write: {}\n{}",
                text(&out),
                read(&node.log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn certs(folder: &Folder, out: &str, nodes: &[(u64, &str)]) {
    let mut args = vec!["certs".to_string(), "--out".into(), out.into()];
    for (id, addr) in nodes {
        args.push("--node".into());
        args.push(format!("{id}={addr}"));
    }
    args.extend(["--client".into(), "admin".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = folder.run(&args);
    assert!(result.status.success(), "{}", text(&result));
}

fn run_args<'a>(id: &'a str, addr: &'a str, data_dir: &'a str, peer: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--id",
        id,
        "--listen",
        addr,
        "--data-dir",
        data_dir,
        "--certs",
        "certs",
        "--peer",
        peer,
    ]
}

/// Issue 12, items 11, 12 and 13: the README's commands in a fresh folder (data/ does not exist yet), values
/// printed as values, a missing key with its own exit status, and a log file without colour codes.
#[test]
fn the_quick_start_works_in_a_fresh_folder() {
    let folder = Folder::new();
    let addr = format!("127.0.0.1:{}", free_port());
    certs(&folder, "certs", &[(1, &addr)]);
    let peer = format!("1={addr}");
    let mut node = folder.spawn("n1", &run_args("1", &addr, "data/n1", &peer));
    folder.put_when_ready(&mut node, &addr, "greeting", "hello");
    assert!(folder.path().join("data/n1/wal").is_dir());

    let kv = |args: &[&str]| {
        let mut all = vec!["kv", "--certs", "certs", "--node", &addr];
        all.extend_from_slice(args);
        folder.run(&all)
    };
    let out = kv(&["get", "greeting"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n",
        "{}",
        text(&out)
    );

    let out = kv(&["get", "nothing-here"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found: \"nothing-here\""),
        "{}",
        text(&out)
    );

    let out = kv(&["cas", "greeting", "bye", "again"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"greeting\" holds \"hello\""),
        "{}",
        text(&out)
    );
    let out = kv(&["cas", "greeting", "hello", "again"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = kv(&["get", "greeting"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "again\n",
        "{}",
        text(&out)
    );

    let log = read(&node.log);
    assert!(log.contains("node started"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "a log written to a file carries no colour codes:\n{log}"
    );
}

/// Issue 12, item 12: `kv` with certificates of another CA, or another cluster id, says why no node answered.
#[test]
fn kv_names_why_the_nodes_refused_it() {
    let folder = Folder::new();
    let addr = format!("127.0.0.1:{}", free_port());
    certs(&folder, "certs", &[(1, &addr)]);
    certs(&folder, "foreign", &[(1, &addr)]);
    let peer = format!("1={addr}");
    let mut node = folder.spawn("n1", &run_args("1", &addr, "data/n1", &peer));
    folder.put_when_ready(&mut node, &addr, "k", "v");

    let out = folder.run(&[
        "kv",
        "--certs",
        "foreign",
        "--timeout",
        "1s",
        "--node",
        &addr,
        "get",
        "k",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no leader answered within 1s; last error:")
            && stderr.contains("invalid peer certificate"),
        "{}",
        text(&out)
    );

    let out = folder.run(&[
        "kv",
        "--certs",
        "certs",
        "--cluster-id",
        "9",
        "--timeout",
        "1s",
        "--node",
        &addr,
        "get",
        "k",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cluster id mismatch"),
        "{}",
        text(&out)
    );
}

/// Issue 12, item 10: a data directory belongs to one node of one cluster, and a deleted WAL is refused.
#[test]
fn a_data_dir_is_tied_to_its_node_and_a_missing_wal_is_refused() {
    let folder = Folder::new();
    let addr1 = format!("127.0.0.1:{}", free_port());
    let addr2 = format!("127.0.0.1:{}", free_port());
    certs(&folder, "certs", &[(1, &addr1), (2, &addr2)]);
    let peer1 = format!("1={addr1}");
    let mut node = folder.spawn("n1", &run_args("1", &addr1, "data/n1", &peer1));
    folder.put_when_ready(&mut node, &addr1, "k", "v");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(node.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    assert!(node.child.wait().expect("wait").success());
    let identity = read(&folder.path().join("data/n1/identity.toml"));
    assert!(
        identity.contains("node_id = 1") && identity.contains("cluster_id = 1"),
        "{identity}"
    );

    // Node 2 on node 1's directory: refused before anything is touched.
    let before = tree(&folder.path().join("data/n1"));
    let peer2 = format!("2={addr2}");
    let out = folder.run(&run_args("2", &addr2, "data/n1", &peer2));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "data/n1 belongs to node 1 of cluster 1 (recorded in data/n1/identity.toml), not to node 2 of cluster 1"
        ),
        "{}",
        text(&out)
    );
    // Node 1 with another cluster id: refused too.
    let mut args = run_args("1", &addr1, "data/n1", &peer1);
    args.extend(["--cluster-id", "7"]);
    let out = folder.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not to node 1 of cluster 7"),
        "{}",
        text(&out)
    );
    assert_eq!(
        tree(&folder.path().join("data/n1")),
        before,
        "nothing changed"
    );

    // The WAL deleted, the hard state kept: refused, naming both.
    std::fs::remove_dir_all(folder.path().join("data/n1/wal")).expect("delete the WAL");
    let out = folder.run(&run_args("1", &addr1, "data/n1", &peer1));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the write-ahead log is missing")
            && stderr.contains("data/n1/wal")
            && stderr.contains("data/n1/hardstate"),
        "{}",
        text(&out)
    );
    assert!(!folder.path().join("data/n1/wal").exists());
}

/// Every file under `dir` with its contents (the LOCK file's pid aside).
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
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
