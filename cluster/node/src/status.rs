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

/// A node asked that is not part of the cluster's configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NonMember {
    /// Its id.
    pub id: u64,
    /// The address asked.
    pub addr: String,
    /// The log index of the configuration that removed it; `None`: it was never a member that any node knows of.
    pub removed_at: Option<u64>,
    /// Whether it answered (a removed node that still runs takes no part, but should be stopped).
    pub up: bool,
}

/// The cluster as a whole.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterSummary {
    /// Members that answered (non-members are counted apart, in `non_members`).
    pub up: usize,
    /// Nodes asked.
    pub asked: usize,
    /// "steady" when a majority of the voters agree on one leader in one term and no non-member answers;
    /// "non-members-up" when they agree but a removed or unknown node still answers; else "electing".
    pub state: String,
    /// The agreed leader and term.
    pub leader: Option<(u64, u64)>,
    /// Whether every answering node's log has the same term at the smallest commit index among them.
    pub logs_agree: Option<bool>,
    /// That index.
    pub agreement_index: u64,
    /// Nodes asked that are not in the configuration: removed (at a known index) or unknown.
    pub non_members: Vec<NonMember>,
    /// Whether the members that applied the same log index hold the same key/value state (equal digests);
    /// `None` when no two members are at the same applied index.
    pub states_agree: Option<bool>,
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

/// Sorts the nodes asked into members and non-members. The configuration is the one of the leader of the
/// newest term that answered (else of the answering node with the highest commit index); removals are final
/// (ids are never reused), so what any node knows was removed is removed.
pub fn non_members(reports: &[NodeReport]) -> Vec<NonMember> {
    let up: Vec<&NodeStatus> = reports
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .collect();
    let reference = up
        .iter()
        .filter(|s| s.raft.role == Role::Leader && !s.removed)
        .max_by_key(|s| s.raft.term)
        .or_else(|| {
            up.iter()
                .filter(|s| !s.removed)
                .max_by_key(|s| s.raft.commit)
        })
        .copied();
    let removed: std::collections::BTreeMap<raft::NodeId, LogIndex> = up
        .iter()
        .flat_map(|s| s.removed_nodes.iter().map(|(id, at)| (*id, *at)))
        .collect();
    let mut out = Vec::new();
    for r in reports {
        let addr = r.addr.to_string();
        let (id, up) = match &r.status {
            Ok(s) => (Some(s.raft.id), true),
            // A node that does not answer is known by its address in the reference's address book.
            Err(_) => (
                reference.and_then(|s| {
                    s.addresses
                        .iter()
                        .find(|(_, a)| **a == addr)
                        .map(|(id, _)| *id)
                }),
                false,
            ),
        };
        let Some(id) = id else { continue };
        let removed_at = removed.get(&id).map(|at| at.0);
        let outside = removed_at.is_some()
            || matches!(&r.status, Ok(s) if s.removed)
            || (up && reference.is_some_and(|s| !s.raft.membership.contains(id)));
        if outside {
            out.push(NonMember {
                id: id.0,
                addr,
                removed_at,
                up,
            });
        }
    }
    out
}

/// Computes the summary from the reports.
pub fn summarize(reports: &[NodeReport]) -> ClusterSummary {
    let non_members = non_members(reports);
    let up: Vec<&NodeStatus> = reports
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .filter(|s| !non_members.iter().any(|n| n.up && n.id == s.raft.id.0))
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
    let strays_up = non_members.iter().any(|n| n.up);
    let mut by_index: std::collections::BTreeMap<LogIndex, Vec<&str>> = Default::default();
    for s in &up {
        by_index
            .entry(s.applied_state.index)
            .or_default()
            .push(&s.applied_state.digest);
    }
    let shared: Vec<&Vec<&str>> = by_index.values().filter(|d| d.len() > 1).collect();
    let states_agree =
        (!shared.is_empty()).then(|| shared.iter().all(|d| d.windows(2).all(|w| w[0] == w[1])));
    ClusterSummary {
        up: up.len(),
        asked: reports.len(),
        state: match (steady, strays_up) {
            (true, false) => "steady",
            (true, true) => "non-members-up",
            (false, _) => "electing",
        }
        .to_string(),
        leader: if steady { newest } else { None },
        logs_agree,
        agreement_index,
        non_members,
        states_agree,
    }
}

/// Renders the table and the summary for people.
pub fn render(reports: &[NodeReport], summary: &ClusterSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>4} {:<14} {:>6} {:>6} {:>8} {:>8} {:>8} {:>10} {:>9} {:>10}  voters/learners",
        "address",
        "id",
        "role",
        "term",
        "leader",
        "commit",
        "applied",
        "digest",
        "last(i/t)",
        "uptime",
        "clock"
    );
    for r in reports {
        match &r.status {
            Ok(s) => {
                let offset_ms = s.wall_clock_unix_ms as i64 - r.asked_at_unix_ms as i64;
                let stray = summary
                    .non_members
                    .iter()
                    .find(|n| n.up && n.id == s.raft.id.0);
                let role = match stray {
                    Some(NonMember {
                        removed_at: Some(at),
                        ..
                    }) => format!("REMOVED@{at}"),
                    Some(_) => "NOT-A-MEMBER".to_string(),
                    None if s.removed => "removed".to_string(),
                    None => s.raft.role.to_string(),
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
                    "{:<22} {:>4} {:<14} {:>6} {:>6} {:>8} {:>8} {:>8} {:>10} {:>8}s {:>+9}ms  {members}{bugs}",
                    r.addr.to_string(),
                    s.raft.id.0,
                    role,
                    s.raft.term.0,
                    s.raft.leader.map_or("-".to_string(), |l| l.0.to_string()),
                    s.raft.commit.0,
                    s.applied_state.index.0,
                    s.applied_state.digest.get(..8).unwrap_or(&s.applied_state.digest),
                    format!("{}/{}", s.raft.last_index.0, s.raft.last_term.0),
                    s.uptime_ms / 1000,
                    offset_ms,
                );
            }
            Err(e) => {
                let addr = r.addr.to_string();
                match summary.non_members.iter().find(|n| n.addr == addr) {
                    Some(n) => {
                        let at = n.removed_at.map_or("not a member".to_string(), |at| {
                            format!("removed at index {at}")
                        });
                        let _ = writeln!(out, "{addr:<22} {:>4} down ({at})", n.id);
                    }
                    None => {
                        let _ = writeln!(out, "{addr:<22} {:>4} DOWN: {e}", "?");
                    }
                }
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
    let members_asked = summary.asked - summary.non_members.len();
    let states = match summary.states_agree {
        Some(true) => "applied states agree",
        Some(false) => "APPLIED STATES DIFFER at the same index",
        None => "applied states not comparable (no two at the same index)",
    };
    let _ = writeln!(
        out,
        "\n{}/{} members up; {}; leader: {leader}; {agree}; {states}",
        summary.up, members_asked, summary.state
    );
    for n in summary.non_members.iter().filter(|n| n.up) {
        let why = n
            .removed_at
            .map_or("is not a member of the cluster".to_string(), |at| {
                format!("was removed at index {at}")
            });
        let _ = writeln!(
            out,
            "node {} at {} {why} but still answers: it takes no part; stop it",
            n.id, n.addr
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{Membership, NodeId, Status, Term};
    use std::collections::BTreeMap;

    fn node(id: u64, role: Role, leader: Option<u64>, voters: &[u64]) -> NodeStatus {
        NodeStatus {
            raft: Status {
                id: NodeId(id),
                role,
                term: Term(3),
                vote: None,
                leader: leader.map(NodeId),
                commit: LogIndex(20),
                applied: LogIndex(20),
                last_index: LogIndex(20),
                last_term: Term(3),
                snapshot_index: LogIndex(0),
                membership: Membership::with_voters(voters.iter().map(|&v| NodeId(v))),
                peers: Vec::new(),
                elections_started: 0,
            },
            addresses: (1..=4)
                .map(|i| (NodeId(i), format!("127.0.0.1:700{i}")))
                .collect(),
            uptime_ms: 1000,
            wall_clock_unix_ms: 0,
            read_mode: "read-index".into(),
            bugs: Vec::new(),
            removed: false,
            removed_nodes: BTreeMap::from([(NodeId(2), LogIndex(12))]),
            probe: None,
            applied_state: crate::protocol::AppliedState {
                index: LogIndex(20),
                digest: "00112233aabbccdd".into(),
                keys: 3,
            },
        }
    }

    fn report(id: u64, status: Result<NodeStatus, String>) -> NodeReport {
        NodeReport {
            addr: format!("127.0.0.1:700{id}").parse().unwrap(),
            status,
            asked_at_unix_ms: 0,
        }
    }

    /// Issue 13: a removed node that still runs (it believes in its old configuration) is shown as removed
    /// and keeps the cluster from being called steady.
    #[test]
    fn a_removed_node_that_still_answers_is_not_part_of_a_steady_cluster() {
        let members = [1, 3, 4];
        let mut stray = node(2, Role::PreCandidate, None, &[1, 2, 3]);
        stray.removed_nodes.clear();
        let reports = vec![
            report(1, Ok(node(1, Role::Leader, Some(1), &members))),
            report(2, Ok(stray)),
            report(3, Ok(node(3, Role::Follower, Some(1), &members))),
            report(4, Ok(node(4, Role::Follower, Some(1), &members))),
        ];
        let summary = summarize(&reports);
        assert_eq!(summary.state, "non-members-up");
        assert_eq!(summary.up, 3);
        assert_eq!(
            summary.non_members,
            vec![NonMember {
                id: 2,
                addr: "127.0.0.1:7002".into(),
                removed_at: Some(12),
                up: true
            }]
        );
        let table = render(&reports, &summary);
        assert!(table.contains("REMOVED@12"), "{table}");
        assert!(
            table.contains("node 2 at 127.0.0.1:7002 was removed at index 12 but still answers"),
            "{table}"
        );

        // Down, it is shown as removed, and the cluster is steady.
        let mut reports = reports;
        reports[1].status = Err("timed out".into());
        let summary = summarize(&reports);
        assert_eq!(summary.state, "steady");
        assert!(render(&reports, &summary).contains("down (removed at index 12)"));

        // A node no member knows of is "not a member".
        reports[1].status = Ok(node(9, Role::Follower, None, &[9]));
        let summary = summarize(&reports);
        assert_eq!(summary.state, "non-members-up");
        assert_eq!(summary.non_members[0].removed_at, None);
        assert!(render(&reports, &summary).contains("NOT-A-MEMBER"));
    }

    /// Issue 16: members at the same applied index must hold the same state; one that differs is reported.
    #[test]
    fn applied_states_are_compared_at_equal_indexes() {
        let members = [1, 2, 3];
        let mut reports: Vec<NodeReport> = (1..=3)
            .map(|i| {
                let role = if i == 1 { Role::Leader } else { Role::Follower };
                let mut status = node(i, role, Some(1), &members);
                status.removed_nodes.clear();
                report(i, Ok(status))
            })
            .collect();
        let summary = summarize(&reports);
        assert_eq!(summary.states_agree, Some(true));
        assert!(render(&reports, &summary).contains("applied states agree"));
        if let Ok(s) = &mut reports[2].status {
            s.applied_state.digest = "ffffffffffffffff".into();
        }
        let summary = summarize(&reports);
        assert_eq!(summary.states_agree, Some(false));
        assert!(render(&reports, &summary).contains("APPLIED STATES DIFFER"));
        // At another index it is not comparable with the others, which still agree with each other.
        if let Ok(s) = &mut reports[2].status {
            s.applied_state.index = LogIndex(21);
        }
        assert_eq!(summarize(&reports).states_agree, Some(true));
    }
}
