//! The `raft-node` target: this repository's Raft key/value store, reached over QUIC with mutual TLS.

use super::{
    BoxFuture, CasAnswer, ClientSettings, KvClient, Layout, MemberChange, MembershipView,
    NodeCommand, NodeStatus, Outcome, PeerRoutes, Role, Target, TargetKind,
};
use raft_node::client::{Client, ClientOptions};
use raft_transport::{ClientEndpoint, ClientSession, Credentials, PeerIdentity, TransportConfig};
use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// raft-node processes of one run.
#[derive(Debug)]
pub struct RaftNode {
    binary: PathBuf,
    /// One QUIC endpoint with the run's client certificate, for status polls.
    endpoint: ClientEndpoint,
    /// One session per node address, kept between polls: a new one per poll would cost a TLS handshake each time
    /// (at the status watcher's 5 ms that was most of its cost). Dropped after a failed poll, so a node that
    /// restarted is asked on a fresh connection.
    sessions: std::sync::Mutex<HashMap<SocketAddr, ClientSession>>,
}

impl RaftNode {
    /// A target whose status polls use the run's client certificate from `layout.certs`.
    pub fn new(binary: PathBuf, layout: &Layout) -> Result<RaftNode, String> {
        let creds = Credentials::load(
            &layout.certs,
            &PeerIdentity::Client(layout.client_name.clone()),
        )
        .map_err(|e| format!("client certificate: {e}"))?;
        // A socket bound to 127.0.0.1 cannot reach nodes in namespaces or on other hosts.
        let on_loopback = layout.nodes.iter().all(|n| n.ip.is_loopback());
        let bind = if on_loopback {
            "127.0.0.1:0"
        } else {
            "0.0.0.0:0"
        };
        let endpoint = ClientEndpoint::bind(
            bind.parse().expect("valid"),
            &creds,
            1,
            TransportConfig::default(),
        )
        .map_err(|e| format!("client endpoint: {e}"))?;
        Ok(RaftNode {
            binary,
            endpoint,
            sessions: std::sync::Mutex::new(HashMap::new()),
        })
    }
}

fn role(role: raft::Role) -> Role {
    match role {
        raft::Role::Leader => Role::Leader,
        raft::Role::Follower => Role::Follower,
        raft::Role::Candidate => Role::Candidate,
        raft::Role::PreCandidate => Role::PreCandidate,
        raft::Role::Learner => Role::Learner,
    }
}

fn millis(d: Duration) -> OsString {
    format!("{}ms", d.as_millis()).into()
}

impl Target for RaftNode {
    fn kind(&self) -> TargetKind {
        TargetKind::RaftNode
    }

    fn node_command(&self, layout: &Layout, id: u64, routes: &PeerRoutes) -> NodeCommand {
        let node = layout.node(id).expect("a node of the layout");
        let mut args: Vec<OsString> = vec!["run".into(), "--id".into(), id.to_string().into()];
        args.extend(["--listen".into(), node.peer_addr().to_string().into()]);
        args.extend(["--data-dir".into(), node.data_dir().into_os_string()]);
        args.extend(["--certs".into(), layout.certs.clone().into_os_string()]);
        for (peer, addr) in routes {
            args.extend(["--peer".into(), format!("{peer}={addr}").into()]);
        }
        args.extend(["--heartbeat-interval".into(), millis(layout.heartbeat)]);
        args.extend([
            "--election-timeout-min".into(),
            millis(layout.election_timeout.0),
        ]);
        args.extend([
            "--election-timeout-max".into(),
            millis(layout.election_timeout.1),
        ]);
        args.extend([
            "--snapshot-interval-entries".into(),
            layout.snapshot_interval_entries.to_string().into(),
        ]);
        args.extend(layout.extra_args.iter().map(OsString::from));
        NodeCommand {
            program: self.binary.clone(),
            args,
            env: Vec::new(),
        }
    }

    fn status<'a>(
        &'a self,
        layout: &'a Layout,
        id: u64,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<NodeStatus, String>> {
        Box::pin(async move {
            let addr = layout
                .node(id)
                .ok_or_else(|| format!("no node {id}"))?
                .client_addr();
            let session = self
                .sessions
                .lock()
                .expect("sessions lock")
                .entry(addr)
                .or_insert_with(|| self.endpoint.session_any_node(addr))
                .clone();
            let s = match raft_node::client::session_status(&session, None, timeout).await {
                Ok(s) => s,
                Err(e) => {
                    self.sessions.lock().expect("sessions lock").remove(&addr);
                    return Err(e);
                }
            };
            let now_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i128);
            Ok(NodeStatus {
                role: role(s.raft.role),
                term: s.raft.term.0,
                leader: s.raft.leader.map(|l| l.0),
                commit_index: Some(s.raft.commit.0),
                applied_index: Some(s.raft.applied.0),
                clock_offset_ms: Some((s.wall_clock_unix_ms as i128 - now_ms) as f64),
                elections_started: Some(s.raft.elections_started),
            })
        })
    }

    fn connect(
        &self,
        layout: &Layout,
        settings: &ClientSettings,
    ) -> Result<Box<dyn KvClient>, String> {
        let nodes: Vec<(raft::NodeId, SocketAddr)> = layout
            .nodes
            .iter()
            .map(|n| (raft::NodeId(n.id), n.client_addr()))
            .collect();
        let options = ClientOptions {
            request_timeout: settings.request_timeout,
            attempt_timeout: settings.attempt_timeout.min(settings.request_timeout),
            spread_reads: settings.spread_reads,
            read_node: settings.read_node.map(raft::NodeId),
            bind_ip: settings.source_ip,
            ..ClientOptions::default()
        };
        let client = Client::connect_with_ids(&nodes, &layout.certs, &layout.client_name, options)
            .map_err(|e| e.to_string())?;
        Ok(Box::new(RaftNodeClient(client)))
    }

    fn version(&self) -> String {
        super::program_version(&self.binary)
    }

    fn transfer_leadership<'a>(
        &'a self,
        layout: &'a Layout,
        from: u64,
        to: u64,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let addr = layout
                .node(from)
                .ok_or_else(|| format!("no node {from}"))?
                .client_addr();
            raft_node::client::transfer_leader(&self.endpoint, addr, raft::NodeId(to), timeout)
                .await
        })
    }

    fn join_command(
        &self,
        layout: &Layout,
        id: u64,
        via: SocketAddr,
    ) -> Result<NodeCommand, String> {
        // A joiner names no initial peers (that would bootstrap a new cluster): it learns them from `via`.
        let mut command = self.node_command(layout, id, &Vec::new());
        command
            .args
            .extend(["--join".into(), via.to_string().into()]);
        Ok(command)
    }

    fn membership<'a>(
        &'a self,
        layout: &'a Layout,
        members: &'a [u64],
    ) -> BoxFuture<'a, Result<MembershipView, String>> {
        Box::pin(async move {
            let mut best: Option<(u64, MembershipView)> = None;
            for &id in members {
                let Some(node) = layout.node(id) else {
                    continue;
                };
                let timeout = Duration::from_secs(1);
                let Ok(s) = raft_node::client::node_status(
                    &self.endpoint,
                    node.client_addr(),
                    None,
                    timeout,
                )
                .await
                else {
                    continue;
                };
                if s.raft.role != raft::Role::Leader
                    || best.as_ref().is_some_and(|(t, _)| *t >= s.raft.term.0)
                {
                    continue;
                }
                let ids = |set: &std::collections::BTreeSet<raft::NodeId>| {
                    set.iter().map(|n| n.0).collect()
                };
                let view = MembershipView {
                    leader: id,
                    voters: ids(&s.raft.membership.voters),
                    learners: ids(&s.raft.membership.learners),
                };
                best = Some((s.raft.term.0, view));
            }
            best.map(|(_, v)| v)
                .ok_or_else(|| format!("no leader among members {members:?} answered"))
        })
    }

    fn remove_member<'a>(
        &'a self,
        layout: &'a Layout,
        members: &'a [u64],
        id: u64,
        timeout: Duration,
    ) -> BoxFuture<'a, MemberChange> {
        Box::pin(async move {
            let nodes: Vec<(raft::NodeId, SocketAddr)> = members
                .iter()
                .filter_map(|&m| layout.node(m))
                .map(|n| (raft::NodeId(n.id), n.client_addr()))
                .collect();
            let options = ClientOptions {
                request_timeout: timeout,
                attempt_timeout: Duration::from_secs(1).min(timeout),
                ..ClientOptions::default()
            };
            let mut client =
                match Client::connect_with_ids(&nodes, &layout.certs, &layout.client_name, options)
                {
                    Ok(c) => c,
                    Err(e) => return MemberChange::NotDone(format!("admin client: {e}")),
                };
            let request = raft_node::protocol::Request::Remove {
                id: raft::NodeId(id),
            };
            let answer = raft_node::client::admin(&mut client, request).await;
            client.close().await;
            match answer {
                raft_node::client::Outcome::Ok(raft_node::protocol::Response::Done) => {
                    MemberChange::Done
                }
                raft_node::client::Outcome::Ok(other) => {
                    MemberChange::NotDone(format!("unexpected answer {other:?}"))
                }
                raft_node::client::Outcome::Fail(e) => MemberChange::NotDone(e),
                raft_node::client::Outcome::Unknown(e) => MemberChange::Unknown(e),
            }
        })
    }

    fn agreement<'a>(&'a self, layout: &'a Layout) -> BoxFuture<'a, (Option<bool>, String)> {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = layout.nodes.iter().map(|n| n.client_addr()).collect();
            let timeout = Duration::from_secs(1);
            let (_, summary) = raft_node::status::collect(&self.endpoint, &addrs, timeout).await;
            let detail = format!(
                "terms of the entry at index {} (the smallest commit index) on the {} of {} nodes that answered \
                 (logs agree: {:?}); digests of the applied key/value state at equal applied indexes (agree: {:?})",
                summary.agreement_index, summary.up, summary.asked, summary.logs_agree, summary.states_agree
            );
            if summary.up < summary.asked {
                return (None, detail);
            }
            let agree = match (summary.logs_agree, summary.states_agree) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), _) => Some(true),
                (None, other) => other,
            };
            (agree, detail)
        })
    }
}

fn outcome<T, U>(o: raft_node::client::Outcome<T>, f: impl FnOnce(T) -> U) -> Outcome<U> {
    match o {
        raft_node::client::Outcome::Ok(v) => Outcome::Ok(f(v)),
        raft_node::client::Outcome::Fail(e) => Outcome::Fail(e),
        raft_node::client::Outcome::Unknown(e) => Outcome::Unknown(e),
    }
}

/// raft-node's own client library (sessions make its internal retries safe).
struct RaftNodeClient(Client);

impl KvClient for RaftNodeClient {
    fn read<'a>(&'a mut self, key: &'a str) -> BoxFuture<'a, Outcome<Option<String>>> {
        Box::pin(async move { outcome(self.0.get(key).await, |v| v) })
    }

    fn write<'a>(&'a mut self, key: &'a str, value: &'a str) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async move { outcome(self.0.put(key, value).await, |v| v) })
    }

    fn cas<'a>(
        &'a mut self,
        key: &'a str,
        expected: Option<&'a str>,
        new: &'a str,
    ) -> BoxFuture<'a, Outcome<CasAnswer>> {
        Box::pin(async move {
            outcome(self.0.cas(key, expected, new).await, |r| CasAnswer {
                applied: r.applied,
                current: r.current,
            })
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.0.close().await })
    }
}
