//! `raft-node status ADDR...`: one table for the whole cluster.

use crate::client::node_status;
use crate::protocol::NodeStatus;
use raft::{LogIndex, Role};
use raft_transport::ClientEndpoint;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What was learnt about one address.
#[derive(Clone, Debug)]
pub struct NodeReport {
    /// The address asked.
    pub addr: SocketAddr,
    /// Its status, or why it did not answer.
    pub status: Result<NodeStatus, String>,
    /// When we asked, on our wall clock (ms since the epoch), to estimate its clock offset.
    pub asked_at_unix_ms: u64,
}

/// The cluster as a whole.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterSummary {
    /// Nodes that answered / asked.
    pub up: usize,
    /// Nodes asked.
    pub asked: usize,
    /// "steady" when a majority of the answering voters agree on one leader in one term, else "electing".
    pub state: String,
    /// The agreed leader and term.
    pub leader: Option<(u64, u64)>,
    /// Whether every answering node's log has the same term at the smallest commit index among them.
    pub logs_agree: Option<bool>,
    /// That index.
    pub agreement_index: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Asks every address for its status (twice: the second round probes the log at the smallest commit index).
pub async fn collect(
    endpoint: &ClientEndpoint,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> (Vec<NodeReport>, ClusterSummary) {
    let first = ask_all(endpoint, addrs, None, timeout).await;
    let min_commit = first
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .map(|s| s.raft.commit)
        .min();
    let reports = match min_commit {
        Some(index) if index > LogIndex(0) => ask_all(endpoint, addrs, Some(index), timeout).await,
        _ => first,
    };
    let summary = summarize(&reports);
    (reports, summary)
}

async fn ask_all(
    endpoint: &ClientEndpoint,
    addrs: &[SocketAddr],
    probe: Option<LogIndex>,
    timeout: Duration,
) -> Vec<NodeReport> {
    let mut tasks = Vec::new();
    for &addr in addrs {
        let endpoint = endpoint.clone();
        tasks.push(tokio::spawn(async move {
            let asked_at_unix_ms = unix_ms();
            let status = node_status(&endpoint, addr, probe, timeout).await;
            NodeReport {
                addr,
                status,
                asked_at_unix_ms,
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("status task does not panic"));
    }
    out
}

/// Computes the summary from the reports.
pub fn summarize(reports: &[NodeReport]) -> ClusterSummary {
    let up: Vec<&NodeStatus> = reports
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .collect();
    let leaders: Vec<(u64, u64)> = up
        .iter()
        .filter(|s| s.raft.role == Role::Leader)
        .map(|s| (s.raft.id.0, s.raft.term.0))
        .collect();
    let newest = leaders.iter().max_by_key(|(_, t)| *t).copied();
    let steady = newest.is_some_and(|(leader, term)| {
        let voters = up
            .iter()
            .map(|s| s.raft.membership.voters.len())
            .max()
            .unwrap_or(0);
        let agreeing = up
            .iter()
            .filter(|s| s.raft.term.0 == term && s.raft.leader.map(|l| l.0) == Some(leader))
            .count();
        agreeing > voters / 2
    });
    let probes: Vec<(LogIndex, Option<raft::Term>)> = up.iter().filter_map(|s| s.probe).collect();
    let agreement_index = probes.first().map_or(0, |p| p.0 .0);
    let known: Vec<raft::Term> = probes.iter().filter_map(|p| p.1).collect();
    let logs_agree = if known.is_empty() {
        None
    } else {
        Some(known.windows(2).all(|w| w[0] == w[1]))
    };
    ClusterSummary {
        up: up.len(),
        asked: reports.len(),
        state: if steady { "steady" } else { "electing" }.to_string(),
        leader: if steady { newest } else { None },
        logs_agree,
        agreement_index,
    }
}

/// Renders the table and the summary for people.
pub fn render(reports: &[NodeReport], summary: &ClusterSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>4} {:<14} {:>6} {:>6} {:>8} {:>8} {:>10} {:>9} {:>10}  voters/learners",
        "address",
        "id",
        "role",
        "term",
        "leader",
        "commit",
        "applied",
        "last(i/t)",
        "uptime",
        "clock"
    );
    for r in reports {
        match &r.status {
            Ok(s) => {
                let offset_ms = s.wall_clock_unix_ms as i64 - r.asked_at_unix_ms as i64;
                let role = if s.removed {
                    "removed".to_string()
                } else {
                    s.raft.role.to_string()
                };
                let members = format!(
                    "{:?}/{:?}",
                    s.raft
                        .membership
                        .voters
                        .iter()
                        .map(|v| v.0)
                        .collect::<Vec<_>>(),
                    s.raft
                        .membership
                        .learners
                        .iter()
                        .map(|v| v.0)
                        .collect::<Vec<_>>()
                );
                let bugs = if s.bugs.is_empty() {
                    String::new()
                } else {
                    format!("  BUGS: {}", s.bugs.join(","))
                };
                let _ = writeln!(
                    out,
                    "{:<22} {:>4} {:<14} {:>6} {:>6} {:>8} {:>8} {:>10} {:>8}s {:>+9}ms  {members}{bugs}",
                    r.addr.to_string(),
                    s.raft.id.0,
                    role,
                    s.raft.term.0,
                    s.raft.leader.map_or("-".to_string(), |l| l.0.to_string()),
                    s.raft.commit.0,
                    s.raft.applied.0,
                    format!("{}/{}", s.raft.last_index.0, s.raft.last_term.0),
                    s.uptime_ms / 1000,
                    offset_ms,
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{:<22} {:>4} DOWN: {e}", r.addr.to_string(), "?");
            }
        }
    }
    let leader = summary
        .leader
        .map_or("none agreed by a majority".to_string(), |(l, t)| {
            format!("node {l} in term {t}")
        });
    let agree = match summary.logs_agree {
        Some(true) => format!("logs agree up to index {}", summary.agreement_index),
        Some(false) => format!("LOGS DISAGREE at index {}", summary.agreement_index),
        None => "log agreement unknown".to_string(),
    };
    let _ = writeln!(
        out,
        "\n{}/{} up; {}; leader: {leader}; {agree}",
        summary.up, summary.asked, summary.state
    );
    out
}
