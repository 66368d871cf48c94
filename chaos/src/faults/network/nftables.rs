//! Network faults in the kernel: every node on its own loopback address and nftables rules between them.
//!
//! An alternative to the userspace relay for runs as root with `nft` installed. It can cut a directed link
//! and drop a random fraction of its datagrams; it cannot delay, duplicate, reorder or shape traffic (that
//! needs netem, which this kernel lacks), so [`supports`] lets the runner reject plans that ask for it.
//!
//! ```text
//! nftables::available()?;                       // root and a working `nft`
//! nftables::clean_leftovers();                  // tables of runs that crashed (their process is gone)
//! let nodes = ids.map(|id| (id, nftables::node_ip(id)));   // nodes bind their sockets to these
//! let mut net = NftNetwork::create(run_id, &nodes)?;        // table inet chaos_<pid>_<start>_<run>
//! net.apply(&links);                            // one atomic transaction per change: flush + rules
//! drop(net);                                    // deletes the table (or net.remove()? to see errors)
//! ```
//!
//! Layout: one table `inet chaos_<pid>_<start>_<run>` per network, where `<pid>` and `<start>` (the start
//! time from `/proc/<pid>/stat`, in clock ticks since boot) identify the creating process so a later run can
//! tell whether it is still alive even if the pid was reused. The table holds one base chain `links`, hooked at
//! `input`, policy accept, with one rule per degraded link, for example:
//!
//! ```text
//! ip saddr 127.0.0.11 ip daddr 127.0.0.12 counter drop comment "link 1->2 cut"
//! ip saddr 127.0.0.12 ip daddr 127.0.0.13 numgen random mod 1000000 < 250000 counter drop comment "link 2->3 loss 0.25"
//! ```
//!
//! Why `input` and not `output`: loopback traffic passes both hooks. Measured here, a drop at `output` also
//! cuts the link but makes the sender's `sendto` fail with EPERM, which no real network does (quinn happens to
//! log and ignore it; other programs may not). A drop at `input` is silent, like a lost datagram on a wire.
//!
//! The rules match source addresses, so each node must bind its sockets (also the ones it dials out from) to
//! its own address: a socket bound to 0.0.0.0 or 127.0.0.1 sends from 127.0.0.1 (measured) and slips through.

use super::{LinkDegradation, NetworkBackend};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The highest node id that has a loopback address (see [`node_ip`]).
pub const NODE_ID_MAX: u64 = 200;
/// Node `id` lives on `127.0.0.(NODE_IP_OFFSET + id)`: `.1` stays the ordinary loopback address and `.2`–`.9`
/// stay free for other tools.
const NODE_IP_OFFSET: u64 = 10;
/// Every table this module creates starts with this.
const TABLE_PREFIX: &str = "chaos_";
/// The one chain in each table.
const CHAIN: &str = "links";
/// Longest sanitised run id kept in a table name (nft allows 255 bytes in all).
const RUN_ID_LEN_MAX: usize = 64;
/// Loss is expressed as `numgen random mod LOSS_SCALE < n`: parts per million.
const LOSS_SCALE: u32 = 1_000_000;
/// How long one `nft` invocation may take before it is killed.
const NFT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where `nft` is looked for when PATH does not have it (PATH often lacks the sbin directories).
const NFT_FALLBACKS: [&str; 2] = ["/usr/sbin/nft", "/sbin/nft"];

/// What went wrong running `nft` or setting up a network.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be started.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The ruleset could not be written to `nft`'s stdin.
    #[error("cannot write the ruleset to `{command}`: {source}")]
    Stdin {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for `nft` failed.
    #[error("cannot wait for `{command}`: {source}")]
    Wait {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `nft` ran longer than allowed and was killed.
    #[error("`{command}` did not finish within {timeout_ms} ms and was killed")]
    Timeout {
        /// The command line.
        command: String,
        /// The limit.
        timeout_ms: u64,
    },
    /// `nft` exited with an error.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// The exit status.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// A file under /proc could not be read.
    #[error("cannot read {path}: {reason}")]
    Proc {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A node was given an address outside 127.0.0.0/8; rules must never touch real traffic.
    #[error("node {id} has address {ip}, which is not a loopback address")]
    NotLoopback {
        /// The node.
        id: u64,
        /// Its address.
        ip: Ipv4Addr,
    },
    /// Two nodes were given the same address, so their links cannot be told apart.
    #[error("nodes {first} and {second} share address {ip}")]
    SharedAddress {
        /// One node.
        first: u64,
        /// The other node.
        second: u64,
        /// The address.
        ip: Ipv4Addr,
    },
}

/// The loopback address client `index` (0-based) sends from when faults reach client links:
/// `127.0.(1 + index / 254).(1 + index % 254)`, apart from the nodes' `127.0.0.x` and the ordinary `127.0.0.1`.
pub fn client_ip(index: usize) -> Ipv4Addr {
    let third = u8::try_from(1 + index / 254).expect("plans allow at most 1000 clients");
    Ipv4Addr::new(127, 0, third, (1 + index % 254) as u8)
}

/// Checks that this backend can work here: running as root and a working `nft`.
///
/// The error names everything that is missing, e.g. `not root; nft not found: apt-get install nftables`.
pub fn available() -> Result<(), String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("not root".to_owned());
    }
    // Without root, `nft list tables` fails for want of permission, which says nothing new: check presence only.
    let probe: &[&str] = if missing.is_empty() {
        &["list", "tables"]
    } else {
        &["--version"]
    };
    match run_nft(probe, None) {
        Ok(_) => {}
        Err(NftError::Spawn { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            missing.push("nft not found: apt-get install nftables".to_owned());
        }
        Err(e) => missing.push(format!("nft does not work: {e}")),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

/// The loopback address of node `id`: `127.0.0.(10 + id)`, so ids 1..=200 map to 127.0.0.11..=127.0.0.210.
///
/// Panics if `id > NODE_ID_MAX`: plans are validated against that limit before a run starts.
pub fn node_ip(id: u64) -> Ipv4Addr {
    assert!(
        id <= NODE_ID_MAX,
        "node id {id} has no loopback address (max {NODE_ID_MAX})"
    );
    let last = u8::try_from(NODE_IP_OFFSET + id).expect("NODE_ID_MAX keeps the octet below 256");
    Ipv4Addr::new(127, 0, 0, last)
}

/// Checks that this backend can apply `d` fully: cut and loss only.
///
/// The error lists what it cannot do, for the runner to reject a plan before it starts.
pub fn supports(d: &LinkDegradation) -> Result<(), String> {
    let unsupported = unsupported_parts(d);
    if unsupported.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the nftables backend cannot do {} (it needs netem, absent on this kernel; use the relay backend)",
            unsupported.join(", ")
        ))
    }
}

/// The parts of `d` this backend cannot apply, named as in the plan.
fn unsupported_parts(d: &LinkDegradation) -> Vec<String> {
    let mut parts = Vec::new();
    if !(0.0..=1.0).contains(&d.loss) {
        parts.push(format!("loss {} (must be in [0, 1])", d.loss));
    }
    if !d.delay.is_zero() {
        parts.push("delay".to_owned());
    }
    if !d.jitter.is_zero() {
        parts.push("jitter".to_owned());
    }
    if d.duplicate != 0.0 {
        parts.push("duplicate".to_owned());
    }
    if d.reorder != 0.0 {
        parts.push("reorder".to_owned());
    }
    if d.rate_limit_bytes_per_s.is_some() {
        parts.push("rate limit".to_owned());
    }
    parts
}

/// Kernel network faults for one run: an nftables table whose rules drop datagrams between nodes.
///
/// Dropping it deletes the table (best effort, errors are logged); [`NftNetwork::remove`] returns them.
#[derive(Debug)]
pub struct NftNetwork {
    /// The sanitised run id, as it appears in the table name.
    run_id: String,
    /// `chaos_<pid>_<start>_<run_id>`.
    table: String,
    /// Each node's address.
    nodes: BTreeMap<u64, Ipv4Addr>,
    /// Where the rules sit.
    family: NftFamily,
    /// The command prefix that reaches the host whose kernel holds the table (empty: this one).
    via: Vec<String>,
    /// Set once the table is deleted, so that drop does not try again.
    removed: bool,
}

impl NftNetwork {
    /// Creates the table with an empty chain hooked at `input` (all links healthy).
    ///
    /// Fails if a table of the same name exists already (same process, same run id) rather than sharing it.
    pub fn create(run_id: &str, nodes: &BTreeMap<u64, Ipv4Addr>) -> Result<NftNetwork, NftError> {
        NftNetwork::create_in(NftFamily::Inet, run_id, nodes)
    }

    /// Creates the table in `family`: `Inet` for per-node loopback addresses (which it checks), `Bridge` for
    /// namespaces joined by a bridge.
    pub fn create_in(
        family: NftFamily,
        run_id: &str,
        nodes: &BTreeMap<u64, Ipv4Addr>,
    ) -> Result<NftNetwork, NftError> {
        NftNetwork::create_via(Vec::new(), family, run_id, nodes)
    }

    /// Creates the table on the host that `via` reaches (a command prefix such as `ssh … host`; empty: this
    /// host). Remote hosts filter packets between their real addresses, so only a local `Inet` table must use
    /// loopback addresses.
    pub fn create_via(
        via: Vec<String>,
        family: NftFamily,
        run_id: &str,
        nodes: &BTreeMap<u64, Ipv4Addr>,
    ) -> Result<NftNetwork, NftError> {
        let mut seen: BTreeMap<Ipv4Addr, u64> = BTreeMap::new();
        for (&id, &ip) in nodes {
            if family == NftFamily::Inet && via.is_empty() && !ip.is_loopback() {
                return Err(NftError::NotLoopback { id, ip });
            }
            if let Some(&first) = seen.get(&ip) {
                return Err(NftError::SharedAddress {
                    first,
                    second: id,
                    ip,
                });
            }
            seen.insert(ip, id);
        }
        let run_id = sanitise_run_id(run_id);
        let pid = std::process::id();
        let start = process_start(pid)?;
        let table = table_name(pid, start, &run_id);
        run_nft_via(
            &via,
            &["-f", "-"],
            Some(&create_ruleset(family, &table, CHAIN)),
        )?;
        tracing::info!(table = %table, "created the nftables table for network faults");
        Ok(NftNetwork {
            run_id,
            table,
            nodes: nodes.clone(),
            family,
            via,
            removed: false,
        })
    }

    /// The sanitised run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The table's name (family `inet`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Deletes the table, healing every link.
    pub fn remove(mut self) -> Result<(), NftError> {
        self.removed = true;
        delete_table(&self.via, self.family, &self.table)
    }
}

impl NetworkBackend for NftNetwork {
    fn apply(&mut self, links: &BTreeMap<(u64, u64), LinkDegradation>) -> Result<(), String> {
        let (text, problems) = ruleset(self.family, &self.table, CHAIN, &self.nodes, links);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        run_nft_via(&self.via, &["-f", "-"], Some(&text))
            .map(|_| ())
            .map_err(|e| format!("cannot apply the link faults in table {}: {e}", self.table))
    }

    fn add_node(&mut self, id: u64, ip: Ipv4Addr) -> Result<(), String> {
        if self.family == NftFamily::Inet && self.via.is_empty() && !ip.is_loopback() {
            return Err(NftError::NotLoopback { id, ip }.to_string());
        }
        if let Some((&first, _)) = self.nodes.iter().find(|(_, &other)| other == ip) {
            return Err(NftError::SharedAddress {
                first,
                second: id,
                ip,
            }
            .to_string());
        }
        self.nodes.insert(id, ip);
        Ok(())
    }
}

/// The same rules on several hosts (each filters the packets that arrive at it).
#[derive(Debug)]
pub struct OnEveryHost(pub Vec<NftNetwork>);

impl NetworkBackend for OnEveryHost {
    fn apply(&mut self, links: &BTreeMap<(u64, u64), LinkDegradation>) -> Result<(), String> {
        for table in &mut self.0 {
            table.apply(links)?;
        }
        Ok(())
    }
}

impl Drop for NftNetwork {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        self.removed = true;
        match delete_table(&self.via, self.family, &self.table) {
            Ok(()) => tracing::info!(table = %self.table, "deleted the nftables table"),
            Err(e) => {
                tracing::error!(table = %self.table, error = %e, "cannot delete the nftables table")
            }
        }
    }
}

/// Deletes every `chaos_*` table whose creating process is gone and returns their names.
///
/// A process is gone when `/proc/<pid>` is missing, is a zombie, or started at another time than the name
/// says (the pid was reused). Tables of live processes, this one included, are left alone. Errors are logged.
pub fn clean_leftovers() -> Vec<String> {
    clean_leftovers_via(&[])
}

/// [`clean_leftovers`] on the host `via` reaches: tables there name their creator, a process of this machine.
pub fn clean_leftovers_via(via: &[String]) -> Vec<String> {
    let listing = match run_nft_via(via, &["list", "tables"], None) {
        Ok(listing) => listing,
        Err(e) => {
            tracing::error!(error = %e, "cannot list nftables tables to clean leftovers");
            return Vec::new();
        }
    };
    let mut removed = Vec::new();
    for (family, name) in chaos_tables(&listing) {
        let Some(owner) = parse_table_name(name) else {
            continue;
        };
        if owner_alive(&owner) {
            continue;
        }
        match delete_table(via, family, name) {
            Ok(()) => {
                tracing::info!(
                    table = name,
                    pid = owner.pid,
                    "deleted a leftover nftables table"
                );
                removed.push(name.to_owned());
            }
            // Another run cleaning at the same time may have been faster: not worth more than a warning.
            Err(e) => {
                tracing::warn!(table = name, error = %e, "cannot delete a leftover nftables table")
            }
        }
    }
    removed
}

/// Keeps `[a-z0-9_]` (upper case lowered, anything else becomes `_`), at most [`RUN_ID_LEN_MAX`] characters;
/// an empty id becomes `run`.
fn sanitise_run_id(run_id: &str) -> String {
    let clean: String = run_id
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .take(RUN_ID_LEN_MAX)
        .collect();
    if clean.is_empty() {
        "run".to_owned()
    } else {
        clean
    }
}

/// `chaos_<pid>_<start>_<run_id>`.
fn table_name(pid: u32, start: u64, run_id: &str) -> String {
    format!("{TABLE_PREFIX}{pid}_{start}_{run_id}")
}

/// Who created a table, read back from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TableOwner {
    /// The creating process.
    pid: u32,
    /// Its start time (clock ticks since boot); `None` for a name without one, as `chaos_<pid>_<run>`.
    start: Option<u64>,
}

/// Parses `chaos_<pid>_<start>_<run>` or `chaos_<pid>_<run>`; `None` for names this module did not make.
fn parse_table_name(name: &str) -> Option<TableOwner> {
    let rest = name.strip_prefix(TABLE_PREFIX)?;
    let (pid, rest) = rest.split_once('_')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pid: u32 = pid.parse().ok()?;
    let start = rest
        .split_once('_')
        .filter(|(start, _)| !start.is_empty() && start.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|(start, _)| start.parse().ok());
    Some(TableOwner { pid, start })
}

/// The `inet` and `bridge` tables in the output of `nft list tables` (lines like `table inet chaos_1_2_x`).
fn chaos_tables(listing: &str) -> Vec<(NftFamily, &str)> {
    let mut tables: Vec<(NftFamily, &str)> = inet_tables(listing)
        .into_iter()
        .map(|t| (NftFamily::Inet, t))
        .collect();
    tables.extend(listing.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("table"), Some("bridge"), Some(name), None) => Some((NftFamily::Bridge, name)),
            _ => None,
        }
    }));
    tables
}

/// The names of the `inet` tables in the output of `nft list tables` (lines like `table inet chaos_1_2_x`).
fn inet_tables(listing: &str) -> Vec<&str> {
    listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("table"), Some("inet"), Some(name), None) => Some(name),
                _ => None,
            }
        })
        .collect()
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProcStat {
    /// Field 3: `Z` (zombie) and `X` (dead) can never run cleanup code again.
    state: char,
    /// Field 22: start time in clock ticks since boot.
    start: u64,
}

/// Parses the contents of `/proc/<pid>/stat`. The command name (field 2) may hold spaces and parentheses,
/// so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<ProcStat> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some(ProcStat { state, start })
}

/// The start time of process `pid`.
fn process_start(pid: u32) -> Result<u64, NftError> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| NftError::Proc {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    parse_stat(&stat).map(|s| s.start).ok_or(NftError::Proc {
        path,
        reason: "unexpected format".to_owned(),
    })
}

/// Whether the process that made a table may still be running (and so may still delete it itself).
fn owner_alive(owner: &TableOwner) -> bool {
    let path = format!("/proc/{}/stat", owner.pid);
    let stat = match std::fs::read_to_string(&path) {
        Ok(stat) => stat,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        // Unreadable for another reason: when in doubt, leave the table alone.
        Err(_) => return true,
    };
    let Some(stat) = parse_stat(&stat) else {
        return true;
    };
    if matches!(stat.state, 'Z' | 'X') {
        return false;
    }
    owner.start.is_none_or(|start| start == stat.start)
}

/// The transaction that creates a table with an empty chain hooked at `input`. `create` (not `add`) fails if
/// the table exists already.
fn create_ruleset(family: NftFamily, table: &str, chain: &str) -> String {
    let (family, hook) = (family.name(), family.hook());
    format!(
        "create table {family} {table}\n\
         add chain {family} {table} {chain} {{ type filter hook {hook} priority filter; policy accept; }}\n"
    )
}

/// Where the rules sit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NftFamily {
    /// `inet`, hooked at input: packets between per-node loopback addresses of this host.
    Inet,
    /// `bridge`, hooked at forward: packets crossing the bridge between network namespaces.
    Bridge,
}

impl NftFamily {
    /// The nft family name.
    pub fn name(self) -> &'static str {
        match self {
            NftFamily::Inet => "inet",
            NftFamily::Bridge => "bridge",
        }
    }

    fn hook(self) -> &'static str {
        match self {
            NftFamily::Inet => "input",
            NftFamily::Bridge => "forward",
        }
    }
}

/// The transaction that replaces the chain's rules with one rule per degraded link, and the problems found
/// (unknown nodes, parts this backend cannot do), which were skipped.
fn ruleset(
    family: NftFamily,
    table: &str,
    chain: &str,
    nodes: &BTreeMap<u64, Ipv4Addr>,
    links: &BTreeMap<(u64, u64), LinkDegradation>,
) -> (String, Vec<String>) {
    let family = family.name();
    let mut text = format!("flush chain {family} {table} {chain}\n");
    let mut problems = Vec::new();
    for (&(from, to), d) in links {
        let (Some(from_ip), Some(to_ip)) = (nodes.get(&from), nodes.get(&to)) else {
            problems.push(format!("link {from}->{to}: unknown node (skipped)"));
            continue;
        };
        let unsupported = unsupported_parts(d);
        if !unsupported.is_empty() {
            problems.push(format!(
                "link {from}->{to}: the nftables backend cannot do {} (skipped)",
                unsupported.join(", ")
            ));
        }
        let head = format!("add rule {family} {table} {chain} ip saddr {from_ip} ip daddr {to_ip}");
        // An out-of-range loss was reported above and counts as none.
        let loss = if (0.0..=1.0).contains(&d.loss) {
            d.loss
        } else {
            0.0
        };
        if d.cut || loss >= 1.0 {
            let _ = writeln!(
                text,
                "{head} counter drop comment \"link {from}->{to} cut\""
            );
        } else if loss > 0.0 {
            // Round, but never down to no loss at all.
            let threshold = ((loss * f64::from(LOSS_SCALE)).round() as u32).max(1);
            let _ = writeln!(
                text,
                "{head} numgen random mod {LOSS_SCALE} < {threshold} counter drop comment \"link {from}->{to} loss {loss}\""
            );
        }
    }
    (text, problems)
}

/// Deletes table `<family> <table>` on the host `via` reaches.
fn delete_table(via: &[String], family: NftFamily, table: &str) -> Result<(), NftError> {
    run_nft_via(via, &["delete", "table", family.name(), table], None).map(|_| ())
}

/// The `nft` binary: found through PATH, else in the sbin directories.
fn nft_binary() -> Option<&'static std::path::Path> {
    static BINARY: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            let in_path = std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("nft"))
                    .find(|candidate| candidate.is_file())
            });
            in_path.or_else(|| {
                NFT_FALLBACKS
                    .iter()
                    .map(std::path::PathBuf::from)
                    .find(|candidate| candidate.is_file())
            })
        })
        .as_deref()
}

/// Runs `nft` with `args`, feeding `stdin` if given, within [`NFT_TIMEOUT`]; returns its stdout.
fn run_nft(args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
    let command = format!("nft {}", args.join(" "));
    let Some(binary) = nft_binary() else {
        return Err(NftError::Spawn {
            command,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not in PATH, /usr/sbin or /sbin",
            ),
        });
    };
    let mut cmd = Command::new(binary);
    cmd.args(args);
    run_bounded(cmd, command, stdin)
}

/// Runs `nft ARGS` through `prefix` (e.g. an ssh command line ending in the host), or here when it is empty.
fn run_nft_via(prefix: &[String], args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
    let Some((program, rest)) = prefix.split_first() else {
        return run_nft(args, stdin);
    };
    let command = format!("{} nft {}", prefix.join(" "), args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(rest).arg("nft").args(args);
    run_bounded(cmd, command, stdin)
}

/// Runs `cmd` with `stdin`, killing it after [`NFT_TIMEOUT`]; its stdout, or an error with its stderr.
fn run_bounded(mut cmd: Command, command: String, stdin: Option<&str>) -> Result<String, NftError> {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NftError::Spawn {
            command: command.clone(),
            source,
        })?;
    // Stdin, stdout and stderr each get a thread so a large ruleset or output can never deadlock the pipes.
    let writer = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_owned();
            Some(std::thread::spawn(move || pipe.write_all(text.as_bytes())))
        }
        _ => None,
    };
    let stdout = child.stdout.take().map(read_in_thread);
    let stderr = child.stderr.take().map(read_in_thread);
    let deadline = Instant::now() + NFT_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                // Killing through the Child handle is safe: it has not been reaped, so the pid is still ours.
                let _ = child.kill();
                let _ = child.wait();
                return Err(NftError::Timeout {
                    command,
                    timeout_ms: u64::try_from(NFT_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
                });
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => return Err(NftError::Wait { command, source }),
        }
    };
    let written = writer.map(|w| w.join().expect("the stdin writer does not panic"));
    let stdout = stdout.map(|r| r.join().expect("the reader does not panic"));
    let stderr = stderr.map(|r| r.join().expect("the reader does not panic"));
    if !status.success() {
        return Err(NftError::Failed {
            command,
            status: status.to_string(),
            stderr: stderr.unwrap_or_default().trim().to_owned(),
        });
    }
    // nft succeeded on part of its input only if the write broke off early: never trust that.
    if let Some(Err(source)) = written {
        return Err(NftError::Stdin { command, source });
    }
    Ok(stdout.unwrap_or_default())
}

/// Reads a pipe to its end in a thread (lossily decoded: nft prints ASCII).
fn read_in_thread<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> BTreeMap<u64, Ipv4Addr> {
        (1..=3).map(|id| (id, node_ip(id))).collect()
    }

    #[test]
    fn node_ips_start_at_eleven_and_stop_at_210() {
        assert_eq!(node_ip(1), Ipv4Addr::new(127, 0, 0, 11));
        assert_eq!(node_ip(2), Ipv4Addr::new(127, 0, 0, 12));
        assert_eq!(node_ip(NODE_ID_MAX), Ipv4Addr::new(127, 0, 0, 210));
    }

    #[test]
    #[should_panic(expected = "no loopback address")]
    fn node_ip_rejects_ids_above_the_max() {
        let _ = node_ip(NODE_ID_MAX + 1);
    }

    #[test]
    fn run_ids_are_sanitised_to_lower_case_digits_and_underscores() {
        assert_eq!(sanitise_run_id("abc_123"), "abc_123");
        assert_eq!(sanitise_run_id("Run-2024.05 x/y"), "run_2024_05_x_y");
        assert_eq!(sanitise_run_id("é!"), "__");
        assert_eq!(sanitise_run_id(""), "run");
        assert_eq!(sanitise_run_id(&"a".repeat(200)).len(), RUN_ID_LEN_MAX);
    }

    #[test]
    fn table_names_parse_back_to_their_owner() {
        let name = table_name(4242, 987_654, "my_run_7");
        assert_eq!(name, "chaos_4242_987654_my_run_7");
        assert_eq!(
            parse_table_name(&name),
            Some(TableOwner {
                pid: 4242,
                start: Some(987_654)
            })
        );
        // Hand-made names without a start time are checked by pid only.
        assert_eq!(
            parse_table_name("chaos_999999_x"),
            Some(TableOwner {
                pid: 999_999,
                start: None
            })
        );
        assert_eq!(
            parse_table_name("chaos_12_34_"),
            Some(TableOwner {
                pid: 12,
                start: Some(34)
            })
        );
    }

    #[test]
    fn foreign_table_names_are_not_ours() {
        for name in [
            "filter",
            "chaos",
            "chaos_",
            "chaos_x_1_run",
            "chaos__1_run",
            "chaos_12",
            "chaos_99999999999_1_run",
            "xchaos_1_2_run",
        ] {
            assert_eq!(parse_table_name(name), None, "{name}");
        }
    }

    #[test]
    fn only_inet_tables_are_listed() {
        let listing =
            "table inet chaos_1_2_a\ntable ip filter\ntable inet nat\n\ntable inet chaos_3_4_b\n";
        assert_eq!(
            inet_tables(listing),
            vec!["chaos_1_2_a", "nat", "chaos_3_4_b"]
        );
    }

    #[test]
    fn stat_is_parsed_after_the_last_parenthesis() {
        let stat =
            "1234 (we(ird) na)me) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 55555 \
                    1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(stat),
            Some(ProcStat {
                state: 'S',
                start: 55_555
            })
        );
        assert_eq!(parse_stat("1234 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_under_its_own_start_time_only() {
        let pid = std::process::id();
        let start = process_start(pid).expect("own stat");
        assert!(owner_alive(&TableOwner {
            pid,
            start: Some(start)
        }));
        assert!(owner_alive(&TableOwner { pid, start: None }));
        assert!(!owner_alive(&TableOwner {
            pid,
            start: Some(start + 1)
        }));
    }

    #[test]
    fn the_table_is_created_with_an_empty_input_chain() {
        assert_eq!(
            create_ruleset(NftFamily::Inet, "chaos_1_2_r", "links"),
            "create table inet chaos_1_2_r\n\
             add chain inet chaos_1_2_r links { type filter hook input priority filter; policy accept; }\n"
        );
    }

    #[test]
    fn no_links_means_an_empty_chain() {
        let (text, problems) = ruleset(NftFamily::Inet, "t", "c", &nodes(), &BTreeMap::new());
        assert_eq!(text, "flush chain inet t c\n");
        assert!(problems.is_empty());
    }

    #[test]
    fn cuts_and_losses_become_one_drop_rule_per_directed_link() {
        let mut links = BTreeMap::new();
        links.insert(
            (1, 2),
            LinkDegradation {
                cut: true,
                ..LinkDegradation::default()
            },
        );
        links.insert(
            (2, 3),
            LinkDegradation {
                loss: 0.25,
                ..LinkDegradation::default()
            },
        );
        links.insert(
            (3, 1),
            LinkDegradation {
                loss: 1.0,
                ..LinkDegradation::default()
            },
        );
        // A healthy entry adds no rule.
        links.insert((3, 2), LinkDegradation::default());
        let (text, problems) = ruleset(NftFamily::Inet, "t", "c", &nodes(), &links);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            text,
            "flush chain inet t c\n\
             add rule inet t c ip saddr 127.0.0.11 ip daddr 127.0.0.12 counter drop comment \"link 1->2 cut\"\n\
             add rule inet t c ip saddr 127.0.0.12 ip daddr 127.0.0.13 numgen random mod 1000000 < 250000 counter drop comment \"link 2->3 loss 0.25\"\n\
             add rule inet t c ip saddr 127.0.0.13 ip daddr 127.0.0.11 counter drop comment \"link 3->1 cut\"\n"
        );
    }

    #[test]
    fn a_cut_wins_over_loss_and_tiny_losses_stay_above_zero() {
        let mut links = BTreeMap::new();
        links.insert(
            (1, 2),
            LinkDegradation {
                cut: true,
                loss: 0.5,
                ..LinkDegradation::default()
            },
        );
        links.insert(
            (2, 1),
            LinkDegradation {
                loss: 1e-9,
                ..LinkDegradation::default()
            },
        );
        let (text, _) = ruleset(NftFamily::Inet, "t", "c", &nodes(), &links);
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("127.0.0.11 ip daddr 127.0.0.12 counter drop"));
        assert!(text.contains("numgen random mod 1000000 < 1 counter drop"));
    }

    #[test]
    fn unsupported_parts_are_reported_and_skipped() {
        let mut links = BTreeMap::new();
        links.insert(
            (1, 2),
            LinkDegradation {
                loss: 0.1,
                delay: Duration::from_millis(50),
                jitter: Duration::from_millis(5),
                duplicate: 0.1,
                reorder: 0.1,
                rate_limit_bytes_per_s: Some(1000),
                ..LinkDegradation::default()
            },
        );
        links.insert(
            (1, 9),
            LinkDegradation {
                cut: true,
                ..LinkDegradation::default()
            },
        );
        let (text, problems) = ruleset(NftFamily::Inet, "t", "c", &nodes(), &links);
        // The loss part still applies; the unknown node's link is skipped whole.
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("< 100000 counter drop"));
        assert_eq!(problems.len(), 2);
        assert_eq!(
            problems[0],
            "link 1->2: the nftables backend cannot do delay, jitter, duplicate, reorder, rate limit (skipped)"
        );
        assert_eq!(problems[1], "link 1->9: unknown node (skipped)");
    }

    #[test]
    fn supports_only_cut_and_loss() {
        assert_eq!(supports(&LinkDegradation::default()), Ok(()));
        assert_eq!(
            supports(&LinkDegradation {
                cut: true,
                loss: 0.3,
                ..LinkDegradation::default()
            }),
            Ok(())
        );
        let err = supports(&LinkDegradation {
            delay: Duration::from_millis(1),
            ..LinkDegradation::default()
        })
        .expect_err("delay");
        assert!(err.contains("cannot do delay"), "{err}");
        let err = supports(&LinkDegradation {
            loss: f64::NAN,
            ..LinkDegradation::default()
        })
        .expect_err("nan");
        assert!(err.contains("loss NaN"), "{err}");
        // A NaN loss adds no rule either.
        let mut links = BTreeMap::new();
        links.insert(
            (1, 2),
            LinkDegradation {
                loss: f64::NAN,
                ..LinkDegradation::default()
            },
        );
        let (text, problems) = ruleset(NftFamily::Inet, "t", "c", &nodes(), &links);
        assert_eq!(text.lines().count(), 1);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn create_rejects_non_loopback_and_shared_addresses_before_touching_nft() {
        let mut outside = BTreeMap::new();
        outside.insert(1, Ipv4Addr::new(10, 0, 0, 1));
        assert!(matches!(
            NftNetwork::create("r", &outside),
            Err(NftError::NotLoopback { id: 1, .. })
        ));
        let mut shared = BTreeMap::new();
        shared.insert(1, node_ip(1));
        shared.insert(2, node_ip(1));
        assert!(matches!(
            NftNetwork::create("r", &shared),
            Err(NftError::SharedAddress {
                first: 1,
                second: 2,
                ..
            })
        ));
    }
}
