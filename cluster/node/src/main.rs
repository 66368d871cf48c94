//! The `raft-node` binary: run a node, make certificates, inspect and change a cluster.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use raft_node::client::{admin, Client, ClientOptions, Outcome};
use raft_node::config::{Bug, FileConfig, FsyncMode};
use raft_node::protocol::{Request, Response};
use raft_node::server::{self, Exit};
use raft_node::status;
use raft_transport::{
    generate_cluster_certs, CertAuthority, CertValidity, ClusterCertSpec, Credentials, NodeSpec,
    PeerIdentity, TransportConfig,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(Parser)]
#[command(
    name = "raft-node",
    version,
    about = "A durable Raft key/value server over QUIC with mutual TLS"
)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node.
    ///
    /// Exit status: 0 stopped by SIGTERM or SIGINT; 1 stopped by an error (bad data directory, port in use,
    /// join refused...); 2 bad arguments or configuration; 5 this node was removed from the cluster (it applied
    /// its removal, or a member said so when it came back), its data directory left as it was.
    ///
    /// Example: raft-node run --id 1 --listen 127.0.0.1:7001 --data-dir data/n1 --certs certs
    ///   --peer 1=127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003
    Run(Box<RunArgs>),
    /// Make a cluster CA and certificates for nodes and clients.
    ///
    /// Example: raft-node certs --out certs --node 1=127.0.0.1:7001 --node 2=127.0.0.1:7002 --client admin
    Certs(CertsArgs),
    /// Print one table with the status of every node.
    ///
    /// Example: raft-node status --certs certs 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003
    Status(StatusArgs),
    /// Read or write keys: get KEY | put KEY VALUE | delete KEY | cas KEY EXPECTED|- NEW.
    ///
    /// `get` prints the value alone on stdout. Exit status: 0 done; 1 definitely not done (refused, no leader
    /// in time, cas found another value); 2 bad arguments or certificates; 3 unknown outcome (it may have
    /// happened); 4 `get` found no such key.
    ///
    /// Example: raft-node kv --certs certs --node 127.0.0.1:7001 put greeting hello
    Kv(KvArgs),
    /// Remove a member from the cluster.
    Remove(MemberArgs),
    /// Hand leadership to another voter.
    Transfer(MemberArgs),
}

#[derive(Args)]
struct RunArgs {
    /// TOML configuration file; flags override its values.
    #[arg(long)]
    config: Option<PathBuf>,
    /// This node's id (a positive integer).
    #[arg(long)]
    id: Option<u64>,
    /// UDP address to listen on.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address peers and clients should use (default: --listen).
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// Data directory (WAL, snapshots).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Certificates folder (ca.pem, node-<id>.pem, node-<id>.key).
    #[arg(long = "certs")]
    certs_dir: Option<PathBuf>,
    /// An initial member, ID=ADDR; repeat for each (bootstraps a new cluster with exactly these voters).
    #[arg(long = "peer", value_parser = parse_peer)]
    peers: Vec<(u64, SocketAddr)>,
    /// Join an existing cluster through any member.
    #[arg(long)]
    join: Option<SocketAddr>,
    /// Heartbeat interval (e.g. 50ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    heartbeat_interval: Option<Duration>,
    /// Minimum election timeout (e.g. 150ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    election_timeout_min: Option<Duration>,
    /// Maximum election timeout (e.g. 300ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    election_timeout_max: Option<Duration>,
    /// read-index (default) or lease.
    #[arg(long)]
    read_mode: Option<String>,
    /// Clock drift lease reads tolerate, as a fraction in [0, 1) (default 0.05): the lease ends after
    /// election-timeout-min × (1 − bound) on the leader's clock.
    #[arg(long)]
    lease_drift_bound: Option<f64>,
    /// ranked (default) or random: ranked followers wait by their place after the leader, so the next one takes over
    /// sooner and alone.
    #[arg(long)]
    election_timeout_policy: Option<String>,
    /// always (default) or never — never is for benchmarks only.
    #[arg(long, value_parser = parse_fsync)]
    fsync: Option<FsyncMode>,
    /// Take a snapshot every N applied entries.
    #[arg(long)]
    snapshot_interval_entries: Option<u64>,
    /// Switch on a deliberate bug to test the chaos tool (repeatable; off by default). Never in production.
    /// One of: stale-read, unconfirmed-leader-read, lease-no-drift, forget-vote, no-fsync, commit-old-term,
    /// no-truncate, early-ack, retry-duplicates, no-election-restriction, non-atomic-cas, config-before-commit, no-check-quorum.
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// Cluster id (must match the other nodes and clients).
    #[arg(long)]
    cluster_id: Option<u64>,
}

#[derive(Args)]
struct CertsArgs {
    /// Output folder (created). If it already holds ca.pem and ca.key, that CA issues the new certificates.
    #[arg(long)]
    out: PathBuf,
    /// A node, ID=ADDR; repeat.
    #[arg(long = "node", value_parser = parse_peer, required = true)]
    nodes: Vec<(u64, SocketAddr)>,
    /// A client name; repeat (default: admin).
    #[arg(long = "client")]
    clients: Vec<String>,
    /// How long the certificates are valid from now (e.g. 365d, 1h).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "365d")]
    valid_for: Duration,
}

#[derive(Args)]
struct ClientArgs {
    /// Certificates folder.
    #[arg(long = "certs", default_value = "certs")]
    certs_dir: PathBuf,
    /// Client certificate name (client-<name>.pem).
    #[arg(long, default_value = "admin")]
    client: String,
    /// Cluster id.
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    /// Timeout per request.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    timeout: Duration,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Node addresses.
    #[arg(required = true)]
    addrs: Vec<SocketAddr>,
}

#[derive(Args)]
struct KvArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// A node address; repeat (any member works).
    #[arg(long = "node", required = true)]
    nodes: Vec<SocketAddr>,
    /// get KEY | put KEY VALUE | delete KEY | cas KEY EXPECTED|- NEW
    #[arg(required = true, num_args = 2..=4)]
    op: Vec<String>,
}

#[derive(Args)]
struct MemberArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The member (to remove, or to transfer leadership to).
    #[arg(long)]
    id: u64,
    /// Node addresses (any member works).
    #[arg(required = true)]
    addrs: Vec<SocketAddr>,
}

fn parse_peer(s: &str) -> Result<(u64, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=ADDR, got {s:?}"))?;
    let id = id
        .parse()
        .map_err(|_| format!("expected a node id before '=', got {id:?}"))?;
    let addr = addr
        .parse()
        .map_err(|_| format!("expected an address like 127.0.0.1:7001 after '=', got {addr:?}"))?;
    Ok((id, addr))
}

fn parse_bug(s: &str) -> Result<Bug, String> {
    Bug::parse(s).map_err(|e| e.to_string())
}

fn parse_fsync(s: &str) -> Result<FsyncMode, String> {
    match s {
        "always" => Ok(FsyncMode::Always),
        "never" => Ok(FsyncMode::Never),
        other => Err(format!("expected always or never, got {other:?}")),
    }
}

fn init_logs(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colour codes only on a terminal: a log file or a pipe gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAIL);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(*args).await,
            Command::Certs(args) => certs(args).map(|()| ExitCode::SUCCESS),
            Command::Status(args) => status_cmd(args).await,
            Command::Kv(args) => kv(args).await,
            Command::Remove(args) => member(args, true).await,
            Command::Transfer(args) => member(args, false).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}

async fn run(args: RunArgs) -> Result<ExitCode> {
    let mut file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    file.id = args.id.or(file.id);
    file.listen = args.listen.or(file.listen);
    file.advertise = args.advertise.or(file.advertise);
    file.data_dir = args.data_dir.or(file.data_dir);
    file.certs_dir = args.certs_dir.or(file.certs_dir);
    if !args.peers.is_empty() {
        file.peers = Some(args.peers.into_iter().collect());
    }
    file.join = args.join.or(file.join);
    file.heartbeat_interval = args.heartbeat_interval.or(file.heartbeat_interval);
    file.election_timeout_min = args.election_timeout_min.or(file.election_timeout_min);
    file.election_timeout_max = args.election_timeout_max.or(file.election_timeout_max);
    file.read_mode = args.read_mode.or(file.read_mode);
    file.lease_drift_bound = args.lease_drift_bound.or(file.lease_drift_bound);
    file.election_timeout_policy = args
        .election_timeout_policy
        .or(file.election_timeout_policy);
    file.fsync = args.fsync.or(file.fsync);
    file.snapshot_interval_entries = args
        .snapshot_interval_entries
        .or(file.snapshot_interval_entries);
    if !args.bugs.is_empty() {
        file.bugs = Some(args.bugs);
    }
    file.cluster_id = args.cluster_id.or(file.cluster_id);
    let cfg = file.resolve()?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        }
        let _ = stop_tx.send(true);
    });
    match server::run(cfg, stop_rx).await {
        Ok(Exit::Shutdown) => Ok(ExitCode::SUCCESS),
        Ok(Exit::Removed) => Ok(ExitCode::from(exit::REMOVED)),
        Err(e) => {
            tracing::error!(error = %e, "node stopped");
            eprintln!("error: {e}");
            Ok(ExitCode::from(exit::FAIL))
        }
    }
}

fn certs(args: CertsArgs) -> Result<()> {
    let now = SystemTime::now();
    let validity = CertValidity::new(now - Duration::from_secs(3600), now + args.valid_for)?;
    let clients = if args.clients.is_empty() && !args.out.join("ca.pem").exists() {
        vec!["admin".to_string()]
    } else {
        args.clients
    };
    let nodes: Vec<NodeSpec> = args
        .nodes
        .iter()
        .map(|(id, addr)| NodeSpec {
            id: raft::NodeId(*id),
            addrs: vec![addr.ip()],
        })
        .collect();
    if args.out.join("ca.pem").exists() {
        // Extend an existing cluster: issue the new certificates with its CA (for a node that will join).
        let ca = CertAuthority::load(&args.out)
            .with_context(|| format!("loading the CA in {}", args.out.display()))?;
        for node in &nodes {
            ca.issue_node(node, validity)?.write(&args.out)?;
        }
        for name in &clients {
            ca.issue_client(name, validity)?.write(&args.out)?;
        }
        println!(
            "issued {} certificates with the existing CA in {}",
            nodes.len() + clients.len(),
            args.out.display()
        );
        return Ok(());
    }
    let spec = ClusterCertSpec {
        ca_name: format!(
            "raft-node cluster CA ({})",
            humantime::format_rfc3339_seconds(now)
        ),
        nodes,
        clients,
        validity,
    };
    let files = generate_cluster_certs(&args.out, &spec)
        .with_context(|| format!("writing certificates into {}", args.out.display()))?;
    println!(
        "wrote the cluster CA and {} node and {} client certificates into {} (keys mode 0600)",
        files.nodes.len(),
        files.clients.len(),
        args.out.display()
    );
    Ok(())
}

fn client_endpoint(args: &ClientArgs) -> Result<raft_transport::ClientEndpoint> {
    let creds = Credentials::load(&args.certs_dir, &PeerIdentity::Client(args.client.clone()))
        .with_context(|| {
            format!(
                "loading client certificate {:?} from {}",
                args.client,
                args.certs_dir.display()
            )
        })?;
    Ok(raft_transport::ClientEndpoint::bind(
        "127.0.0.1:0".parse()?,
        &creds,
        args.cluster_id,
        TransportConfig::default(),
    )?)
}

async fn status_cmd(args: StatusArgs) -> Result<ExitCode> {
    let endpoint = client_endpoint(&args.client)?;
    let (reports, summary) = status::collect(&endpoint, &args.addrs, args.client.timeout).await;
    if args.json {
        let nodes: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| match &r.status {
                Ok(s) => serde_json::json!({"addr": r.addr.to_string(), "up": true, "status": s}),
                Err(e) => serde_json::json!({"addr": r.addr.to_string(), "up": false, "error": e}),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"nodes": nodes, "summary": summary}))?
        );
    } else {
        print!("{}", status::render(&reports, &summary));
    }
    endpoint.close().await;
    Ok(if summary.up == 0 {
        ExitCode::from(exit::FAIL)
    } else {
        ExitCode::SUCCESS
    })
}

fn client(args: &ClientArgs, nodes: &[SocketAddr]) -> Result<Client> {
    let options = ClientOptions {
        request_timeout: args.timeout,
        cluster_id: args.cluster_id,
        ..ClientOptions::default()
    };
    Ok(Client::connect(
        nodes,
        &args.certs_dir,
        &args.client,
        options,
    )?)
}

/// Exit statuses of the subcommands (also listed in `--help` and the README).
mod exit {
    /// Done; for `kv get`, the value was printed.
    pub const OK: u8 = 0;
    /// The operation definitely did not happen (refused, no leader in time, cas mismatch); `run`: the node
    /// stopped with an error.
    pub const FAIL: u8 = 1;
    /// Bad arguments, configuration or certificates.
    pub const USAGE: u8 = 2;
    /// The operation may or may not have happened (timeout after sending).
    pub const UNKNOWN: u8 = 3;
    /// `kv get`: the key does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// `run`: this node was removed from the cluster (its data directory is left as it was).
    pub const REMOVED: u8 = 5;
}

/// Prints the outcome of a call whose success prints `ok` (or what `on_ok` says) and returns the exit status.
fn report<T>(outcome: Outcome<T>, on_ok: impl FnOnce(T) -> (String, u8)) -> ExitCode {
    match outcome {
        Outcome::Ok(v) => {
            let (text, code) = on_ok(v);
            if code == exit::OK {
                println!("{text}");
            } else {
                eprintln!("{text}");
            }
            ExitCode::from(code)
        }
        Outcome::Fail(e) => {
            eprintln!("fail (not applied): {e}");
            ExitCode::from(exit::FAIL)
        }
        Outcome::Unknown(e) => {
            eprintln!("unknown (may or may not be applied): {e}");
            ExitCode::from(exit::UNKNOWN)
        }
    }
}

fn done(_: ()) -> (String, u8) {
    ("ok".into(), exit::OK)
}

async fn kv(args: KvArgs) -> Result<ExitCode> {
    let mut c = client(&args.client, &args.nodes)?;
    let op: Vec<&str> = args.op.iter().map(String::as_str).collect();
    let code = match op.as_slice() {
        // The value alone on stdout, so scripts can use it as it is; a missing key is its own status.
        ["get", key] => report(c.get(key).await, |v| match v {
            Some(value) => (value, exit::OK),
            None => (format!("not found: {key:?}"), exit::NOT_FOUND),
        }),
        ["put", key, value] => report(c.put(key, value).await, done),
        ["delete", key] => report(c.delete(key).await, done),
        ["cas", key, expected, new] => {
            let expected = (*expected != "-").then_some(*expected);
            report(c.cas(key, expected, new).await, |r| {
                if r.applied {
                    ("ok".into(), exit::OK)
                } else {
                    let found = match r.current {
                        Some(v) => format!("{key:?} holds {v:?}"),
                        None => format!("{key:?} does not exist"),
                    };
                    (format!("fail (not applied): {found}"), exit::FAIL)
                }
            })
        }
        other => bail!(
            "expected get KEY | put KEY VALUE | delete KEY | cas KEY EXPECTED|- NEW, got {other:?}"
        ),
    };
    c.close().await;
    Ok(code)
}

async fn member(args: MemberArgs, remove: bool) -> Result<ExitCode> {
    let mut c = client(&args.client, &args.addrs)?;
    let id = raft::NodeId(args.id);
    let request = if remove {
        Request::Remove { id }
    } else {
        Request::TransferLeader { to: id }
    };
    let outcome = admin(&mut c, request).await;
    c.close().await;
    Ok(report(outcome, |response| match response {
        Response::Done => ("done".into(), exit::OK),
        other => (format!("fail: unexpected answer {other:?}"), exit::FAIL),
    }))
}
