//! The client library: connect to any node, follow "not the leader" redirects, and get a precise outcome for
//! every call.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use raft_node::client::{Client, ClientOptions, Outcome};
//! let mut client = Client::connect(&["127.0.0.1:7001".parse()?], "certs".as_ref(), "alice", ClientOptions::default())?;
//! match client.put("k", "v").await {
//!     Outcome::Ok(()) => println!("written"),
//!     Outcome::Fail(why) => println!("definitely not written: {why}"),
//!     Outcome::Unknown(why) => println!("may or may not have been written: {why}"),
//! }
//! # Ok(()) }
//! ```
//!
//! A write keeps its session sequence number across retries, and the state machine applies a sequence number
//! at most once, so after an indeterminate attempt the client may retry safely: a retry that reaches a leader
//! either applies the write or returns the first attempt's result. The client retries only within the
//! request's deadline; what it cannot resolve by then is reported as [`Outcome::Unknown`].

use crate::protocol::{self, NodeStatus, Request, Response, PROTOCOL_VERSION};
use bytes::Bytes;
use raft::kv::{KvOp, KvOutput};
use raft::NodeId;
use raft_transport::{ClientEndpoint, ClientSession, Credentials, PeerIdentity, TransportConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// The outcome of one call, as a checker needs it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Outcome<T> {
    /// It happened, with this result.
    Ok(T),
    /// It definitely did not happen.
    Fail(String),
    /// It may or may not have happened (timeout, connection lost after sending).
    Unknown(String),
}

/// What a compare-and-set found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CasResult {
    /// Whether the value matched and the new value was written.
    pub applied: bool,
    /// The value found (`None`: absent).
    pub current: Option<String>,
}

/// Client tuning.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Overall deadline of one call, retries included.
    pub request_timeout: Duration,
    /// Deadline of one attempt at one node.
    pub attempt_timeout: Duration,
    /// Pause between attempts when no leader is known.
    pub retry_pause: Duration,
    /// Cluster id of the nodes (must match theirs).
    pub cluster_id: u64,
    /// Follow redirects and retry definite refusals within the deadline (true), or report the first answer.
    pub retry: bool,
    /// Session id (random by default): must be unique among the cluster's clients.
    pub session: Option<u64>,
    /// Send each read to the next node in turn instead of the leader, as a client behind a load balancer does.
    /// A correct cluster redirects; a node that answers reads from its own state is caught out.
    pub spread_reads: bool,
    /// Send every read first to this node (one given to `connect_with_ids`; a correct cluster redirects it to
    /// the leader); overrides `spread_reads`. Writes still go to the leader.
    pub read_node: Option<NodeId>,
    /// The local address to send from (default: loopback for loopback clusters, any address otherwise), e.g.
    /// a per-client loopback address so network rules can tell clients apart.
    pub bind_ip: Option<std::net::IpAddr>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(2),
            retry_pause: Duration::from_millis(50),
            cluster_id: 1,
            retry: true,
            session: None,
            spread_reads: false,
            read_node: None,
            bind_ip: None,
        }
    }
}

/// A client of a raft-node cluster. One outstanding call at a time (a session's commands are sequential).
#[derive(Debug)]
pub struct Client {
    endpoint: ClientEndpoint,
    sessions: Vec<ClientSession>,
    by_addr: HashMap<String, usize>,
    leader: Option<usize>,
    /// Where the next call starts when no leader is known: the node after the last one that failed, so a dead
    /// node is not asked first (and waited on for a whole attempt) on every call.
    cursor: usize,
    /// Node ids whose address this client was given: a redirect to one of them uses the client's own address
    /// for it (the node's view of a peer's address may be a relay only that node can use).
    known_ids: HashMap<NodeId, usize>,
    /// The node the next spread read goes to.
    read_cursor: usize,
    options: ClientOptions,
    session: u64,
    next_seq: u64,
}

/// Why a client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No node address was given.
    #[error("no node addresses given")]
    NoNodes,
    /// The client certificate could not be loaded.
    #[error("client certificate {name:?} in {dir}: {message}")]
    Certs {
        /// The folder.
        dir: String,
        /// The client name.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// The local socket could not be bound.
    #[error("cannot bind the client socket: {0}")]
    Bind(String),
}

impl Client {
    /// A client of the nodes at `addrs`, authenticating as `client-<name>` with the certificate in `certs_dir`.
    /// Must be called inside a tokio runtime. Connections are made lazily.
    pub fn connect(
        addrs: &[SocketAddr],
        certs_dir: &Path,
        name: &str,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::NoNodes);
        }
        let credentials = Credentials::load(certs_dir, &PeerIdentity::Client(name.to_string()))
            .map_err(|e| ClientError::Certs {
                dir: certs_dir.display().to_string(),
                name: name.to_string(),
                message: e.to_string(),
            })?;
        // Loopback clusters are reached from loopback; others from any address (a socket bound to 127.0.0.1
        // cannot send to another host: sendmsg fails with EINVAL).
        let bind: SocketAddr = match (addrs[0].is_ipv6(), addrs[0].ip().is_loopback()) {
            (true, true) => "[::1]:0",
            (false, true) => "127.0.0.1:0",
            (true, false) => "[::]:0",
            (false, false) => "0.0.0.0:0",
        }
        .parse()
        .expect("valid");
        let bind = match options.bind_ip {
            Some(ip) => SocketAddr::new(ip, 0),
            None => bind,
        };
        let endpoint = ClientEndpoint::bind(
            bind,
            &credentials,
            options.cluster_id,
            TransportConfig::default(),
        )
        .map_err(|e| ClientError::Bind(e.to_string()))?;
        let session = options.session.unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            (nanos as u64) ^ (u64::from(std::process::id()) << 32)
        });
        let mut client = Client {
            endpoint,
            sessions: Vec::new(),
            by_addr: HashMap::new(),
            leader: None,
            cursor: 0,
            known_ids: HashMap::new(),
            read_cursor: 0,
            options,
            session,
            next_seq: 1,
        };
        for addr in addrs {
            client.session_for(*addr);
        }
        Ok(client)
    }

    /// Like [`Client::connect`], with the node id of each address known.
    pub fn connect_with_ids(
        nodes: &[(NodeId, SocketAddr)],
        certs_dir: &Path,
        name: &str,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let addrs: Vec<SocketAddr> = nodes.iter().map(|(_, a)| *a).collect();
        let mut client = Client::connect(&addrs, certs_dir, name, options)?;
        for (id, addr) in nodes {
            let i = client.session_for(*addr);
            client.known_ids.insert(*id, i);
        }
        Ok(client)
    }

    fn session_for(&mut self, addr: SocketAddr) -> usize {
        let key = addr.to_string();
        if let Some(&i) = self.by_addr.get(&key) {
            return i;
        }
        self.sessions.push(self.endpoint.session_any_node(addr));
        self.by_addr.insert(key, self.sessions.len() - 1);
        self.sessions.len() - 1
    }

    /// The session id (stable for this client's lifetime).
    pub fn session_id(&self) -> u64 {
        self.session
    }

    /// Reads a key (linearizably).
    pub async fn get(&mut self, key: &str) -> Outcome<Option<String>> {
        if let Some(i) = self
            .options
            .read_node
            .and_then(|id| self.known_ids.get(&id).copied())
        {
            self.leader = Some(i);
        } else if self.options.spread_reads {
            self.read_cursor = (self.read_cursor + 1) % self.sessions.len();
            self.leader = Some(self.read_cursor);
        }
        match self
            .call(
                Request::Read {
                    key: key.to_string(),
                },
                true,
            )
            .await
        {
            Outcome::Ok(Response::Value(v)) => Outcome::Ok(v),
            Outcome::Ok(other) => Outcome::Fail(format!("unexpected answer {other:?}")),
            Outcome::Fail(e) => Outcome::Fail(e),
            Outcome::Unknown(e) => Outcome::Unknown(e),
        }
    }

    /// Sets a key.
    pub async fn put(&mut self, key: &str, value: &str) -> Outcome<()> {
        self.write(KvOp::Put {
            key: key.into(),
            value: value.into(),
        })
        .await
        .map_done()
    }

    /// Deletes a key.
    pub async fn delete(&mut self, key: &str) -> Outcome<()> {
        self.write(KvOp::Delete { key: key.into() })
            .await
            .map_done()
    }

    /// Sets `key` to `new` if it holds `expected` (`None`: absent). Whether it matched is a definite answer.
    pub async fn cas(
        &mut self,
        key: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Outcome<CasResult> {
        let op = KvOp::Cas {
            key: key.into(),
            expected: expected.map(str::to_string),
            new: new.into(),
        };
        match self.write(op).await {
            Outcome::Ok(KvOutput::Cas { applied, current }) => {
                Outcome::Ok(CasResult { applied, current })
            }
            Outcome::Ok(other) => Outcome::Fail(format!("unexpected answer {other:?}")),
            Outcome::Fail(e) => Outcome::Fail(e),
            Outcome::Unknown(e) => Outcome::Unknown(e),
        }
    }

    async fn write(&mut self, op: KvOp) -> Outcome<KvOutput> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let request = Request::Write {
            client: self.session,
            seq,
            op,
        };
        match self.call(request, true).await {
            Outcome::Ok(Response::Written(KvOutput::Stale)) => {
                Outcome::Unknown("the cluster no longer remembers this command's outcome".into())
            }
            Outcome::Ok(Response::Written(out)) => Outcome::Ok(out),
            Outcome::Ok(other) => Outcome::Fail(format!("unexpected answer {other:?}")),
            Outcome::Fail(e) => Outcome::Fail(e),
            Outcome::Unknown(e) => Outcome::Unknown(e),
        }
    }

    /// Sends a request to the leader (as far as known), following redirects and retrying until the deadline.
    ///
    /// `idempotent_retry`: the request may be resent after an indeterminate attempt (writes are, thanks to the
    /// session; reads are too, but a read's retry is a new read). Once any attempt was indeterminate, a later
    /// definite refusal no longer proves the operation did not happen, so the result stays `Unknown`.
    async fn call(&mut self, request: Request, idempotent_retry: bool) -> Outcome<Response> {
        let deadline = Instant::now() + self.options.request_timeout;
        let payload = Bytes::from(protocol::encode(PROTOCOL_VERSION, &request));
        let mut uncertain: Option<String> = None;
        // The last reason a node gave for not taking the request (a refused certificate, another cluster id...):
        // when no leader answers in time, it is usually the real cause.
        let mut last_refusal: Option<String> = None;
        let mut target = self.leader.unwrap_or(self.cursor) % self.sessions.len();
        let mut tried = 0usize;
        loop {
            self.cursor = target;
            let now = Instant::now();
            if now >= deadline {
                return match uncertain {
                    Some(e) => Outcome::Unknown(e),
                    None => Outcome::Fail(match &last_refusal {
                        Some(why) => format!(
                            "no leader answered within {:?}; last error: {why}",
                            self.options.request_timeout
                        ),
                        None => format!(
                            "no leader answered within {:?}",
                            self.options.request_timeout
                        ),
                    }),
                };
            }
            let attempt = self.options.attempt_timeout.min(deadline - now);
            let session = self.sessions[target].clone();
            tried += 1;
            match session.request(payload.clone(), attempt).await {
                Ok(bytes) => match protocol::decode::<Response>(&bytes) {
                    Ok(Response::NotLeader {
                        leader,
                        leader_addr,
                    }) => {
                        let known = leader.and_then(|l| self.known_ids.get(&l).copied());
                        let next = known.or_else(|| {
                            leader_addr
                                .and_then(|a| a.parse::<SocketAddr>().ok())
                                .map(|a| self.session_for(a))
                        });
                        match next {
                            Some(i) if i != target => target = i,
                            _ => {
                                target = (target + 1) % self.sessions.len();
                                tokio::time::sleep(self.options.retry_pause).await;
                            }
                        }
                        self.leader = None;
                        if !self.options.retry {
                            return self.settle(uncertain, "not the leader".into());
                        }
                    }
                    Ok(Response::Refused(why)) => {
                        if !self.options.retry {
                            return self.settle(uncertain, why);
                        }
                        tokio::time::sleep(self.options.retry_pause).await;
                    }
                    Ok(Response::Invalid(why)) => {
                        return self.settle(uncertain, format!("invalid request: {why}"))
                    }
                    Ok(response) => {
                        self.leader = Some(target);
                        return Outcome::Ok(response);
                    }
                    Err(e) => {
                        // The node answered something we cannot read: treat as no answer.
                        uncertain.get_or_insert(format!("undecodable answer: {e}"));
                        if !self.options.retry || !idempotent_retry {
                            return Outcome::Unknown(format!("undecodable answer: {e}"));
                        }
                    }
                },
                Err(e) if e.is_definite() => {
                    // Not sent, or refused before processing: try another node.
                    // A timeout cut short by the call's own deadline says less than a refusal seen before it.
                    let timed_out = matches!(
                        e,
                        raft_transport::RequestError::NotSent {
                            reason: raft_transport::NotSentReason::Timeout { .. },
                            ..
                        }
                    );
                    if !timed_out || last_refusal.is_none() {
                        last_refusal = Some(e.to_string());
                    }
                    self.leader = None;
                    target = (target + 1) % self.sessions.len();
                    if tried % self.sessions.len() == 0 {
                        tokio::time::sleep(self.options.retry_pause).await;
                    }
                    if !self.options.retry {
                        return self.settle(uncertain, e.to_string());
                    }
                }
                Err(e) => {
                    self.leader = None;
                    let why = e.to_string();
                    if !self.options.retry || !idempotent_retry {
                        return Outcome::Unknown(why);
                    }
                    uncertain = Some(why);
                    target = (target + 1) % self.sessions.len();
                }
            }
        }
    }

    fn settle(&self, uncertain: Option<String>, why: String) -> Outcome<Response> {
        match uncertain {
            Some(first) => Outcome::Unknown(format!("{first}; then: {why}")),
            None => Outcome::Fail(why),
        }
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.endpoint.close().await;
    }
}

impl Outcome<KvOutput> {
    fn map_done(self) -> Outcome<()> {
        match self {
            Outcome::Ok(KvOutput::Done) => Outcome::Ok(()),
            Outcome::Ok(other) => Outcome::Fail(format!("unexpected answer {other:?}")),
            Outcome::Fail(e) => Outcome::Fail(e),
            Outcome::Unknown(e) => Outcome::Unknown(e),
        }
    }
}

/// Asks one node for its status (no redirects: every node answers for itself), on a connection of its own.
pub async fn node_status(
    endpoint: &ClientEndpoint,
    addr: SocketAddr,
    probe: Option<raft::LogIndex>,
    timeout: Duration,
) -> Result<NodeStatus, String> {
    session_status(&endpoint.session_any_node(addr), probe, timeout).await
}

/// Asks the node behind `session` for its status. A poller that keeps its session pays the mutual-TLS handshake
/// once per connection instead of once per poll.
pub async fn session_status(
    session: &ClientSession,
    probe: Option<raft::LogIndex>,
    timeout: Duration,
) -> Result<NodeStatus, String> {
    let payload = Bytes::from(protocol::encode(
        PROTOCOL_VERSION,
        &Request::Status { probe },
    ));
    let bytes = session
        .request(payload, timeout)
        .await
        .map_err(|e| e.to_string())?;
    match protocol::decode::<Response>(&bytes).map_err(|e| e.to_string())? {
        Response::Status(status) => Ok(*status),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// Asks node `addr` (which should be the leader) to hand leadership to `to`, without redirects: a benchmark
/// times exactly one request on a connection it already has.
pub async fn transfer_leader(
    endpoint: &ClientEndpoint,
    addr: SocketAddr,
    to: NodeId,
    timeout: Duration,
) -> Result<(), String> {
    let session = endpoint.session_any_node(addr);
    let payload = Bytes::from(protocol::encode(
        PROTOCOL_VERSION,
        &Request::TransferLeader { to },
    ));
    let bytes = session
        .request(payload, timeout)
        .await
        .map_err(|e| e.to_string())?;
    match protocol::decode::<Response>(&bytes).map_err(|e| e.to_string())? {
        Response::Done => Ok(()),
        other => Err(format!("transfer refused: {other:?}")),
    }
}

/// Sends one administrative request (remove, transfer) to the leader, following redirects.
pub async fn admin(client: &mut Client, request: Request) -> Outcome<Response> {
    client.call(request, false).await
}

/// The node id a status answer reports, for tables.
pub fn status_id(status: &NodeStatus) -> NodeId {
    status.raft.id
}
