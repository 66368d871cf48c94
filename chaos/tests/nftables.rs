//! The nftables network backend against the real kernel: cuts, loss, heal, cleanup on drop and of leftovers.
//!
//! Needs root and `nft` (`apt-get install nftables`); without them every test prints why it skipped. Each test
//! uses its own node addresses so the tests can run in parallel.

use chaos::faults::network::nftables::{self, NftNetwork};
use chaos::faults::network::{LinkDegradation, NetworkBackend};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::Duration;

/// Whether the backend can run here; prints why not.
fn available(test: &str) -> bool {
    match nftables::available() {
        Ok(()) => true,
        Err(reason) => {
            println!("skipping {test}: {reason}");
            false
        }
    }
}

/// The `nft` command, also where PATH lacks the sbin directories (as the module finds it).
fn nft_command() -> Command {
    let in_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("nft").is_file()));
    Command::new(if in_path { "nft" } else { "/usr/sbin/nft" })
}

fn nft(args: &[&str]) -> String {
    let out = nft_command().args(args).output().expect("run nft");
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn table_exists(name: &str) -> bool {
    nft(&["list", "tables"])
        .lines()
        .any(|line| line.trim() == format!("table inet {name}"))
}

/// A table made by hand, deleted at the end of the test even if it fails.
struct HandMadeTable(String);

impl HandMadeTable {
    fn create(name: &str) -> HandMadeTable {
        nft(&["add", "table", "inet", name]);
        HandMadeTable(name.to_owned())
    }
}

impl Drop for HandMadeTable {
    fn drop(&mut self) {
        let _ = nft_command()
            .args(["delete", "table", "inet", &self.0])
            .output();
    }
}

/// Held by the tests that call `clean_leftovers`, so that one does not remove the other's dead tables.
static CLEANER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn socket(ip: Ipv4Addr) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    socket
}

/// Sends one datagram with a fresh token and reports whether exactly that one arrived.
fn delivered(from: &UdpSocket, to: &UdpSocket, token: &mut u64) -> bool {
    *token += 1;
    let payload = token.to_be_bytes();
    // A drop at the input hook is silent: the send itself must always succeed.
    from.send_to(&payload, to.local_addr().expect("addr"))
        .expect("send succeeds even on a cut link");
    let mut buf = [0u8; 64];
    loop {
        match to.recv_from(&mut buf) {
            Ok((8, source)) if buf[..8] == payload => {
                assert_eq!(source, from.local_addr().expect("addr"));
                return true;
            }
            // A late datagram from an earlier check.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
}

fn cut() -> LinkDegradation {
    LinkDegradation {
        cut: true,
        ..LinkDegradation::default()
    }
}

#[test]
fn a_cut_drops_one_direction_only_and_heal_and_drop_restore_the_link() {
    if !available("a_cut_drops_one_direction_only_and_heal_and_drop_restore_the_link") {
        return;
    }
    let nodes: BTreeMap<u64, Ipv4Addr> =
        [(1, nftables::node_ip(1)), (2, nftables::node_ip(2))].into();
    assert_eq!(nodes[&1], Ipv4Addr::new(127, 0, 0, 11));
    assert_eq!(nodes[&2], Ipv4Addr::new(127, 0, 0, 12));
    let a = socket(nodes[&1]);
    let b = socket(nodes[&2]);
    let mut token = 0;

    let mut net = NftNetwork::create("Cut Test", &nodes).expect("create");
    let table = net.table().to_owned();
    assert!(table.starts_with(&format!("chaos_{}_", std::process::id())));
    assert!(table.ends_with("_cut_test"), "{table}");
    assert_eq!(net.run_id(), "cut_test");
    assert!(table_exists(&table));
    assert!(delivered(&a, &b, &mut token), "1->2 before any fault");
    assert!(delivered(&b, &a, &mut token), "2->1 before any fault");

    net.apply(&[((1, 2), cut())].into()).expect("apply");
    assert!(!delivered(&a, &b, &mut token), "1->2 is cut");
    assert!(delivered(&b, &a, &mut token), "2->1 still flows");
    let rules = nft(&["list", "table", "inet", &table]);
    assert!(rules.contains("hook input"), "{rules}");
    assert!(
        rules.contains("ip saddr 127.0.0.11 ip daddr 127.0.0.12"),
        "{rules}"
    );

    // Replacing the rules is one transaction: the old cut goes as the new one comes.
    net.apply(&[((2, 1), cut())].into()).expect("apply");
    assert!(delivered(&a, &b, &mut token), "1->2 healed");
    assert!(!delivered(&b, &a, &mut token), "2->1 is cut");

    net.apply(&BTreeMap::new()).expect("apply");
    assert!(delivered(&a, &b, &mut token), "1->2 after heal");
    assert!(delivered(&b, &a, &mut token), "2->1 after heal");

    // Dropping the network with a cut in force deletes the table and so heals the link.
    net.apply(&[((1, 2), cut())].into()).expect("apply");
    assert!(!delivered(&a, &b, &mut token), "1->2 cut again");
    drop(net);
    assert!(!table_exists(&table), "the table is gone after drop");
    assert!(delivered(&a, &b, &mut token), "1->2 after drop");
}

#[test]
fn loss_drops_about_the_given_fraction_and_remove_reports_success() {
    if !available("loss_drops_about_the_given_fraction_and_remove_reports_success") {
        return;
    }
    let nodes: BTreeMap<u64, Ipv4Addr> =
        [(3, nftables::node_ip(3)), (4, nftables::node_ip(4))].into();
    let a = socket(nodes[&3]);
    let b = socket(nodes[&4]);
    b.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut net = NftNetwork::create("loss", &nodes).expect("create");
    let loss = LinkDegradation {
        loss: 0.5,
        ..LinkDegradation::default()
    };
    nftables::supports(&loss).expect("loss is supported");
    net.apply(&[((3, 4), loss)].into()).expect("apply");

    // Batches small enough for the receive buffer, drained before the next one.
    let (batches, batch) = (10, 100);
    let mut received = 0;
    let mut buf = [0u8; 16];
    for _ in 0..batches {
        for i in 0..batch {
            a.send_to(&[i as u8], b.local_addr().expect("addr"))
                .expect("send");
        }
        while b.recv_from(&mut buf).is_ok() {
            received += 1;
        }
    }
    let sent = batches * batch;
    println!("loss 0.5: {received} of {sent} datagrams arrived");
    // Binomial(1000, 0.5) has a standard deviation of ~16: ±150 is ~9 sigma.
    assert!((350..=650).contains(&received), "{received} of {sent}");

    let table = net.table().to_owned();
    net.remove().expect("remove");
    assert!(!table_exists(&table));
}

#[test]
fn leftovers_of_dead_processes_are_cleaned_and_live_ones_kept() {
    if !available("leftovers_of_dead_processes_are_cleaned_and_live_ones_kept") {
        return;
    }
    let _cleaner = CLEANER.lock().unwrap_or_else(|e| e.into_inner());
    // A pid that surely is dead: a child that has exited and been reaped.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let own_pid = std::process::id();

    let dead = HandMadeTable::create(&format!("chaos_{dead_pid}_leftover_x"));
    let dead_with_start = HandMadeTable::create(&format!("chaos_{dead_pid}_12345_leftover_y"));
    // Our pid but another start time: the pid was reused, the owner is gone.
    let reused = HandMadeTable::create(&format!("chaos_{own_pid}_1_leftover_z"));
    let live = NftNetwork::create("leftover_live", &BTreeMap::new()).expect("create");
    let not_ours = HandMadeTable::create(&format!("chaosx_{dead_pid}_leftover"));
    let extra_dead = if std::path::Path::new("/proc/999999").exists() {
        None
    } else {
        Some(HandMadeTable::create("chaos_999999_x"))
    };

    let removed = nftables::clean_leftovers();
    println!("removed: {removed:?}");
    for table in [&dead, &dead_with_start, &reused]
        .into_iter()
        .chain(extra_dead.as_ref())
    {
        assert!(removed.contains(&table.0), "{} in {removed:?}", table.0);
        assert!(!table_exists(&table.0), "{} is gone", table.0);
    }
    assert!(table_exists(live.table()), "a live run's table stays");
    assert!(table_exists(&not_ours.0), "a foreign table stays");
    assert!(!removed
        .iter()
        .any(|t| t == live.table() || *t == not_ours.0));
}

/// Set in the child process of the crash test.
const CRASH_CHILD_ENV: &str = "CHAOS_NFTABLES_CRASH_CHILD";

#[test]
fn the_table_of_a_killed_run_is_cleaned_by_the_next_one() {
    if std::env::var_os(CRASH_CHILD_ENV).is_some() {
        // The child: a run that holds a cut when it is killed, so its Drop never runs.
        let nodes: BTreeMap<u64, Ipv4Addr> =
            [(5, nftables::node_ip(5)), (6, nftables::node_ip(6))].into();
        let mut net = NftNetwork::create("crashed", &nodes).expect("create");
        net.apply(&[((5, 6), cut())].into()).expect("apply");
        println!("TABLE={}", net.table());
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    if !available("the_table_of_a_killed_run_is_cleaned_by_the_next_one") {
        return;
    }
    use std::io::BufRead;
    let _cleaner = CLEANER.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args([
            "the_table_of_a_killed_run_is_cleaned_by_the_next_one",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child run");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let table = stdout
        .lines()
        .map(|line| line.expect("read"))
        // libtest prints "test NAME ... " without a newline first, so the marker is not at the line start.
        .find_map(|line| {
            line.split_once("TABLE=")
                .map(|(_, table)| table.trim().to_owned())
        });
    let Some(table) = table else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child printed no table name");
    };
    // Whatever happens below, the table must not outlive the test.
    let guard = HandMadeTable(table.clone());
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    assert!(table_exists(&table), "a killed run leaves its table behind");

    let removed = nftables::clean_leftovers();
    assert!(removed.contains(&table), "{table} in {removed:?}");
    assert!(!table_exists(&table));
    drop(guard);
}
