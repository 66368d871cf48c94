//! The `etcd` target: etcd 3.4 or later (Debian's `etcd-server`), driven through its JSON gateway
//! (`POST /v3/kv/range|put|txn`, `/v3/maintenance/status`; keys and values base64, uint64 fields as strings).
//!
//! Why the JSON gateway and not gRPC: it needs only an HTTP client (reqwest, on the rustls + ring stack the
//! workspace already builds), every etcd since 3.3 serves it on the client port, and its answers map one to one
//! onto the gRPC ones. The etcd-client crate would add tonic, prost and a second TLS stack for no extra power.
//!
//! Timing: etcd draws each election timeout from [et, 2·et) where et = `--election-timeout`; chaos passes the
//! plan's `election_timeout_min` as et, so the plan's range is honoured exactly when max = 2·min (the manifest
//! notes the range etcd really uses otherwise). Pre-vote is switched on (`--pre-vote`), as raft-node has it.
//!
//! Outcomes: a read that fails in any way is `fail` (a read changes nothing); a write or cas that could not
//! connect is `fail`; a txn whose compare failed is a cas mismatch; every other error of a write (timeouts,
//! dropped connections, "request timed out", "leader changed") is `info`: it may have been applied.
//!
//! Retries inside an op (when the plan's `attempt_timeout` is shorter than its `request_timeout`): etcd's gateway
//! has no client session, so a re-sent put is a second put, not the same request again (etcd's own Go client
//! does not blindly re-send a put either). So only what is safe is retried, each time at the next member, until
//! the op's deadline: reads, whatever went wrong; writes and txns only when the request certainly never reached
//! a server (the connection could not be made). A write that may have been delivered ends `info` at once.

use super::{
    BoxFuture, CasAnswer, ClientSettings, KvClient, Layout, NodeCommand, NodeStatus, Outcome,
    PeerRoutes, Role, Target, TargetKind,
};
use crate::plan::Plan;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where Debian installs etcd.
const DEBIAN_BINARY: &str = "/usr/bin/etcd";

/// etcd on `PATH`, else Debian's path if it exists.
pub fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("etcd"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        Path::new(DEBIAN_BINARY)
            .is_file()
            .then(|| DEBIAN_BINARY.into())
    })
}

/// Why etcd cannot honour `plan`: `(field, reason)`.
pub fn refuse(plan: &Plan) -> Option<(String, String)> {
    use crate::faults::FaultSpec;
    for (i, f) in plan.faults.iter().enumerate() {
        let field = format!("faults[{i}].kind");
        match &f.spec {
            FaultSpec::Clock(_) => {
                return Some((
                    field,
                    "etcd is a Go program: it reads the clock through the vDSO, which the clock shim cannot \
                     reach, so a clock fault would inject nothing; clock plans are refused for etcd"
                        .into(),
                ))
            }
            FaultSpec::Partition(_) | FaultSpec::Packet(_) if !plan.cluster.hosts.isolates_nodes() => {
                return Some((
                    field,
                    "etcd dials its peers from the default source address, so on loopback every node's traffic \
                     comes from 127.0.0.1 and no rule can tell nodes apart, and the relay mesh (one address per \
                     directed link) cannot be used either because etcd derives member ids from the peer URLs, \
                     which every member must see alike; run it with cluster.hosts = \"netns\" (root) so each \
                     node has an address of its own"
                        .into(),
                ))
            }
            FaultSpec::Packet(p) if !p.only_loss() => {
                return Some((
                    field,
                    "packet faults other than loss need the relay mesh, which etcd cannot use (member ids \
                     derive from peer URLs, so every member must see the same address for a peer); this kernel \
                     has no netem"
                        .into(),
                ))
            }
            _ => {}
        }
    }
    None
}

/// The range of election timeouts etcd really draws from, for the manifest.
pub fn effective_election_range(min: Duration) -> (Duration, Duration) {
    (min, min * 2)
}

/// The heartbeat etcd gets: the plan's, unless etcd's rule `--election-timeout >= 5 * --heartbeat-interval`
/// forbids it, then the largest one it allows (the election timing decides how faults play out, so it is the
/// one kept exact).
pub fn effective_heartbeat(heartbeat: Duration, election_min: Duration) -> Duration {
    let limit = Duration::from_millis((election_min.as_millis() / 5) as u64);
    heartbeat.min(limit).max(Duration::from_millis(1))
}

/// How etcd's timing differs from the plan's, for the manifest and the terminal.
pub fn timing_note(heartbeat: Duration, election: (Duration, Duration)) -> String {
    let (lo, hi) = effective_election_range(election.0);
    let hb = effective_heartbeat(heartbeat, election.0);
    let mut note = format!(
        "etcd draws election timeouts from [{}, {}) (plan: [{}, {}))",
        humantime::format_duration(lo),
        humantime::format_duration(hi),
        humantime::format_duration(election.0),
        humantime::format_duration(election.1),
    );
    if hb != heartbeat {
        note.push_str(&format!(
            "; heartbeat {} instead of the plan's {}, since etcd requires an election timeout of at least 5 heartbeats",
            humantime::format_duration(hb),
            humantime::format_duration(heartbeat)
        ));
    }
    note
}

/// etcd processes of one run.
#[derive(Debug)]
pub struct Etcd {
    binary: PathBuf,
    tls: bool,
    /// For status polls: no retries, short timeouts.
    http: reqwest::Client,
    /// etcd's member ids (hashes of the peer URLs) to our node ids, learnt from each node's own status.
    members: Arc<Mutex<BTreeMap<u64, u64>>>,
}

impl Etcd {
    /// A target for `layout`; with TLS, clients use the run's client certificate.
    pub fn new(binary: PathBuf, layout: &Layout) -> Result<Etcd, String> {
        let http = http_client(layout, Duration::from_secs(2), None)?;
        Ok(Etcd {
            binary,
            tls: layout.tls,
            http,
            members: Arc::default(),
        })
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// An HTTP client that trusts the run's CA and presents the run's client certificate (when TLS is on), sending
/// from `source` when given.
fn http_client(
    layout: &Layout,
    timeout: Duration,
    source: Option<std::net::IpAddr>,
) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .local_address(source)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(1)))
        .pool_max_idle_per_host(4)
        .no_proxy();
    // Without TLS, reqwest still wants a crypto provider and, with none installed for the process, panics
    // ("No provider set"): give it one that trusts nothing (plain http:// never uses it).
    let builder = if layout.tls {
        builder.use_preconfigured_tls(tls_config(layout)?)
    } else {
        builder.use_preconfigured_tls(no_tls_config()?)
    };
    builder.build().map_err(|e| format!("http client: {e}"))
}

fn no_tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

fn tls_config(layout: &Layout) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let read = |name: &str| {
        let path = layout.certs.join(name);
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read("ca.pem")?) {
        let cert = cert.map_err(|e| format!("ca.pem: {e}"))?;
        roots.add(cert).map_err(|e| format!("ca.pem: {e}"))?;
    }
    let client = format!("client-{}", layout.client_name);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read(&format!("{client}.pem"))?)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{client}.pem: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&read(&format!("{client}.key"))?)
        .map_err(|e| format!("{client}.key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("client certificate: {e}"))
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// A uint64 field, which the gateway sends as a string.
fn u64_field(v: &Json) -> Option<u64> {
    match v {
        Json::String(s) => s.parse().ok(),
        Json::Number(n) => n.as_u64(),
        _ => None,
    }
}

impl Target for Etcd {
    fn kind(&self) -> TargetKind {
        TargetKind::Etcd
    }

    fn node_command(&self, layout: &Layout, id: u64, _routes: &PeerRoutes) -> NodeCommand {
        let node = layout.node(id).expect("a node of the layout");
        let scheme = self.scheme();
        let peer_url = |n: &super::NodeSlot| format!("{scheme}://{}", n.peer_addr());
        let initial: Vec<String> = layout
            .nodes
            .iter()
            .map(|n| format!("n{}={}", n.id, peer_url(n)))
            .collect();
        let client_url = format!("{scheme}://{}", node.client_addr());
        let mut args: Vec<String> = vec![
            format!("--name=n{id}"),
            format!("--data-dir={}", node.data_dir().display()),
            format!("--listen-peer-urls={}", peer_url(node)),
            format!("--initial-advertise-peer-urls={}", peer_url(node)),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--initial-cluster={}", initial.join(",")),
            "--initial-cluster-state=new".into(),
            format!("--initial-cluster-token={}", layout.run_id),
            format!(
                "--heartbeat-interval={}",
                millis(effective_heartbeat(
                    layout.heartbeat,
                    layout.election_timeout.0
                ))
            ),
            format!("--election-timeout={}", millis(layout.election_timeout.0)),
            format!("--snapshot-count={}", layout.snapshot_interval_entries),
            "--pre-vote=true".into(),
            "--logger=zap".into(),
            "--log-outputs=stderr".into(),
        ];
        if self.tls {
            let certs = layout.certs.display();
            for (prefix, auth) in [
                ("", "--client-cert-auth"),
                ("peer-", "--peer-client-cert-auth"),
            ] {
                args.push(format!("--{prefix}cert-file={certs}/node-{id}.pem"));
                args.push(format!("--{prefix}key-file={certs}/node-{id}.key"));
                args.push(format!("--{prefix}trusted-ca-file={certs}/ca.pem"));
                args.push(auth.into());
            }
        }
        args.extend(layout.extra_args.iter().cloned());
        NodeCommand {
            program: self.binary.clone(),
            args: args.into_iter().map(OsString::from).collect(),
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
            let node = layout.node(id).ok_or_else(|| format!("no node {id}"))?;
            let url = format!(
                "{}://{}/v3/maintenance/status",
                self.scheme(),
                node.client_addr()
            );
            let answer = self
                .http
                .post(url)
                .timeout(timeout)
                .json(&json!({}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let body: Json = answer.json().await.map_err(|e| e.to_string())?;
            let member = u64_field(&body["header"]["member_id"])
                .ok_or_else(|| format!("status without header.member_id: {body}"))?;
            let leader_member = u64_field(&body["leader"]).filter(|&l| l != 0);
            let members = {
                let mut members = self.members.lock().expect("members lock");
                members.insert(member, id);
                members.clone()
            };
            let term = u64_field(&body["raftTerm"]).unwrap_or(0);
            Ok(NodeStatus {
                role: if leader_member == Some(member) {
                    Role::Leader
                } else {
                    Role::Follower
                },
                term,
                leader: leader_member.and_then(|l| members.get(&l).copied()),
                commit_index: u64_field(&body["raftIndex"]),
                applied_index: u64_field(&body["raftAppliedIndex"]),
                clock_offset_ms: None,
                elections_started: None,
            })
        })
    }

    fn connect(
        &self,
        layout: &Layout,
        settings: &ClientSettings,
    ) -> Result<Box<dyn KvClient>, String> {
        let urls = layout
            .nodes
            .iter()
            .map(|n| format!("{}://{}", self.scheme(), n.client_addr()))
            .collect();
        let attempt = settings.attempt_timeout.min(settings.request_timeout);
        Ok(Box::new(EtcdClient {
            http: http_client(layout, attempt, settings.source_ip)?,
            urls,
            current: 0,
            spread_reads: settings.spread_reads,
            read_node: settings
                .read_node
                .and_then(|id| layout.nodes.iter().position(|n| n.id == id)),
            request_timeout: settings.request_timeout,
            retry: attempt < settings.request_timeout,
        }))
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
            // etcd names members by hashes learnt from their own status answers; ask `to` first if unknown.
            let known = |id: u64| {
                let members = self.members.lock().expect("members lock");
                members.iter().find(|(_, &n)| n == id).map(|(&m, _)| m)
            };
            if known(to).is_none() {
                self.status(layout, to, timeout).await?;
            }
            let target = known(to).ok_or_else(|| format!("etcd member id of node {to} unknown"))?;
            let node = layout.node(from).ok_or_else(|| format!("no node {from}"))?;
            let url = format!(
                "{}://{}/v3/maintenance/transfer-leadership",
                self.scheme(),
                node.client_addr()
            );
            let answer = self
                .http
                .post(url)
                .timeout(timeout)
                .json(&json!({ "targetID": target.to_string() }))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = answer.status();
            let body: Json = answer.json().await.map_err(|e| e.to_string())?;
            if !status.is_success() || body.get("error").is_some() {
                return Err(format!("etcd refused the transfer ({status}): {body}"));
            }
            Ok(())
        })
    }

    fn agreement<'a>(&'a self, layout: &'a Layout) -> BoxFuture<'a, (Option<bool>, String)> {
        Box::pin(async move {
            let post = |node: &super::NodeSlot, path: &str, body: Json| {
                let url = format!("{}://{}{path}", self.scheme(), node.client_addr());
                let request = self.http.post(url).json(&body);
                async move {
                    let answer = request.send().await.map_err(|e| e.to_string())?;
                    answer.json::<Json>().await.map_err(|e| e.to_string())
                }
            };
            // The smallest revision every member has, then the hash of the key space at it on each member.
            let mut revisions = Vec::new();
            for node in &layout.nodes {
                match post(node, "/v3/maintenance/status", json!({})).await {
                    Ok(body) => revisions.push(u64_field(&body["header"]["revision"]).unwrap_or(0)),
                    Err(e) => return (None, format!("n{} did not answer: {e}", node.id)),
                }
            }
            let revision = revisions.iter().copied().min().unwrap_or(0);
            let mut hashes = Vec::new();
            for node in &layout.nodes {
                match post(
                    node,
                    "/v3/maintenance/hashkv",
                    json!({"revision": revision.to_string()}),
                )
                .await
                {
                    Ok(body) => hashes.push(u64_field(&body["hash"]).unwrap_or(0)),
                    Err(e) => return (None, format!("n{} did not hash: {e}", node.id)),
                }
            }
            let detail =
                format!("etcd's HashKV of every member at revision {revision}: {hashes:?}");
            (Some(hashes.windows(2).all(|w| w[0] == w[1])), detail)
        })
    }
}

/// One client: sticks to one member (etcd forwards proposals to its leader), moves on after an error.
struct EtcdClient {
    http: reqwest::Client,
    urls: Vec<String>,
    current: usize,
    spread_reads: bool,
    /// Every read goes to this member (index into `urls`).
    read_node: Option<usize>,
    /// Deadline of one op, retries included.
    request_timeout: Duration,
    /// Whether to retry what is safe to retry within the op's deadline (the attempt timeout is shorter).
    retry: bool,
}

/// What came back from one gateway call.
enum Answer {
    /// A 200 answer's body.
    Body(Json),
    /// The request never reached the server: nothing was done.
    NotSent(String),
    /// An error after the request may have reached the server.
    Uncertain(String),
    /// The server refused the request before doing anything.
    Refused(String),
}

/// Error messages after which etcd has certainly not applied the request.
const DEFINITE_REFUSALS: [&str; 3] = [
    "etcdserver: too many requests",
    "etcdserver: request is too large",
    "etcdserver: key is not provided",
];

impl EtcdClient {
    /// Calls `path` until an answer that `again` does not want retried, or the op's deadline: the first attempt
    /// always, further ones only when retries are on and time is left. Each attempt's timeout is the client's
    /// (the attempt timeout), cut to what is left of the deadline.
    async fn call_retrying(
        &mut self,
        path: &str,
        body: &Json,
        again: impl Fn(&Answer) -> bool,
    ) -> Answer {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let answer = self.call(path, body.clone(), left).await;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !self.retry || !again(&answer) || left < Duration::from_millis(1) {
                return answer;
            }
            // A refused connection answers at once: pause a little so a down member is not hammered.
            tokio::time::sleep(Duration::from_millis(20).min(left)).await;
        }
    }

    async fn call(&mut self, path: &str, body: Json, left: Duration) -> Answer {
        let url = format!("{}{path}", self.urls[self.current]);
        let mut request = self.http.post(url).json(&body);
        if left < self.request_timeout {
            request = request.timeout(left.max(Duration::from_millis(1)));
        }
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(e) => {
                self.current = (self.current + 1) % self.urls.len();
                return if e.is_connect() {
                    Answer::NotSent(e.to_string())
                } else {
                    Answer::Uncertain(e.to_string())
                };
            }
        };
        let status = answer.status();
        let text = match answer.text().await {
            Ok(text) => text,
            Err(e) => return Answer::Uncertain(format!("reading the answer: {e}")),
        };
        let json: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        if status.is_success() && json.get("error").is_none() {
            return Answer::Body(json);
        }
        self.current = (self.current + 1) % self.urls.len();
        let message = json["error"]
            .as_str()
            .or(json["message"].as_str())
            .map_or_else(|| format!("HTTP {status}: {text}"), str::to_string);
        if DEFINITE_REFUSALS.iter().any(|m| message.contains(m)) {
            Answer::Refused(message)
        } else {
            Answer::Uncertain(message)
        }
    }
}

fn first_value(kvs: &Json) -> Result<Option<String>, String> {
    match kvs.as_array().and_then(|a| a.first()) {
        None => Ok(None),
        Some(kv) => {
            let encoded = kv["value"].as_str().unwrap_or("");
            let bytes = B64
                .decode(encoded)
                .map_err(|e| format!("value is not base64: {e}"))?;
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| format!("value is not UTF-8: {e}"))
        }
    }
}

impl KvClient for EtcdClient {
    fn read<'a>(&'a mut self, key: &'a str) -> BoxFuture<'a, Outcome<Option<String>>> {
        Box::pin(async move {
            if let Some(i) = self.read_node {
                self.current = i;
            } else if self.spread_reads {
                self.current = (self.current + 1) % self.urls.len();
            }
            // A read changes nothing: any failed attempt may be retried.
            let body = json!({"key": B64.encode(key)});
            match self
                .call_retrying("/v3/kv/range", &body, |a| !matches!(a, Answer::Body(_)))
                .await
            {
                Answer::Body(body) => match first_value(&body["kvs"]) {
                    Ok(v) => Outcome::Ok(v),
                    Err(e) => Outcome::Fail(e),
                },
                // A read changes nothing: whatever went wrong, it is safe to call it failed.
                Answer::NotSent(e) | Answer::Uncertain(e) | Answer::Refused(e) => Outcome::Fail(e),
            }
        })
    }

    fn write<'a>(&'a mut self, key: &'a str, value: &'a str) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async move {
            let body = json!({"key": B64.encode(key), "value": B64.encode(value)});
            match self
                .call_retrying("/v3/kv/put", &body, |a| matches!(a, Answer::NotSent(_)))
                .await
            {
                Answer::Body(_) => Outcome::Ok(()),
                Answer::NotSent(e) | Answer::Refused(e) => Outcome::Fail(e),
                Answer::Uncertain(e) => Outcome::Unknown(e),
            }
        })
    }

    fn cas<'a>(
        &'a mut self,
        key: &'a str,
        expected: Option<&'a str>,
        new: &'a str,
    ) -> BoxFuture<'a, Outcome<CasAnswer>> {
        Box::pin(async move {
            let k = B64.encode(key);
            let compare = match expected {
                Some(v) => {
                    json!({"key": k, "result": "EQUAL", "target": "VALUE", "value": B64.encode(v)})
                }
                None => {
                    json!({"key": k, "result": "EQUAL", "target": "CREATE", "create_revision": "0"})
                }
            };
            let body = json!({
                "compare": [compare],
                "success": [{"request_put": {"key": k, "value": B64.encode(new)}}],
                "failure": [{"request_range": {"key": k}}],
            });
            match self
                .call_retrying("/v3/kv/txn", &body, |a| matches!(a, Answer::NotSent(_)))
                .await
            {
                Answer::Body(body) => {
                    if body["succeeded"].as_bool() == Some(true) {
                        return Outcome::Ok(CasAnswer {
                            applied: true,
                            current: None,
                        });
                    }
                    let kvs = &body["responses"][0]["response_range"]["kvs"];
                    Outcome::Ok(CasAnswer {
                        applied: false,
                        current: first_value(kvs).ok().flatten(),
                    })
                }
                Answer::NotSent(e) | Answer::Refused(e) => Outcome::Fail(e),
                Answer::Uncertain(e) => Outcome::Unknown(e),
            }
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}
