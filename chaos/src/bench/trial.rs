//! One trial: wait for a steady leader, wait a seeded phase within the heartbeat interval, lose the leader one
//! way, time the new leader (from the nodes' own role-change lines) and the first acknowledged write, undo the
//! fault, and watch the old leader's return for a disruptive election. `analyze` is the pure part.

use super::events::{Announced, RoleEvent, Tails};
use super::Fault;
use crate::cluster::{Cluster, STATUS_TIMEOUT};
use crate::faults::network::{LinkDegradation, NetworkBackend};
use crate::targets::{KvClient, Outcome, Role};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// What one trial measured.
#[derive(Clone, Debug, Serialize)]
pub struct TrialRecord {
    /// Trial number (0-based).
    pub trial: usize,
    /// How the leader was lost.
    pub fault: Fault,
    /// The leader before the fault, and its term.
    pub old_leader: u64,
    /// The old leader's term.
    pub old_term: u64,
    /// The seeded wait before the fault, within the heartbeat interval (after one full interval past the
    /// warm-up write).
    pub phase_ms: f64,
    /// When the fault was injected (µs since the Unix epoch, just before the call).
    pub fault_at_unix_us: u64,
    /// How long the injection call took: the fault landed somewhere in this window.
    pub inject_us: u64,
    /// Fault to the first node leader in a higher term (from its own log line).
    pub leader_ms: Option<f64>,
    /// The new leader and its term.
    pub new_leader: Option<u64>,
    /// The new leader's term.
    pub new_term: Option<u64>,
    /// Terms used: more than one means a split vote or a failed round.
    pub terms_used: Option<u64>,
    /// The winner's campaign: its pre-candidate (or candidate) line to its leader line.
    pub campaign_ms: Option<f64>,
    /// Fault to the first acknowledged write.
    pub write_ms: Option<f64>,
    /// Whether the old leader's return started another election (a term above the new leader's).
    pub disruptive_rejoin: bool,
}

/// The pure reading of a trial's role changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The first leader line in a term above `old_term`.
    pub leader: Option<RoleEvent>,
    /// Its campaign length in µs.
    pub campaign_us: Option<u64>,
}

/// Finds the new leader among `events` (time-ordered, all after the fault) and its campaign.
pub fn analyze(events: &[RoleEvent], old_term: u64) -> Analysis {
    let leader = events
        .iter()
        .find(|e| e.role == Announced::Leader && e.term > old_term)
        .copied();
    let campaign_us = leader.and_then(|l| {
        let own: Vec<&RoleEvent> = events
            .iter()
            .filter(|e| e.node == l.node && e.at_unix_us <= l.at_unix_us)
            .collect();
        // The start of the winning campaign: the last pre-candidate line in the term below, else the candidate line.
        let start = own
            .iter()
            .rev()
            .find(|e| e.role == Announced::PreCandidate && e.term == l.term - 1)
            .or_else(|| {
                own.iter()
                    .rev()
                    .find(|e| e.role == Announced::Candidate && e.term == l.term)
            })?;
        Some(l.at_unix_us.saturating_sub(start.at_unix_us))
    });
    Analysis {
        leader,
        campaign_us,
    }
}

/// Whether `events` (seen after the new leader) show an election past `new_term`: a disruptive rejoin.
pub fn disrupted(events: &[RoleEvent], new_term: u64) -> bool {
    events.iter().any(|e| e.term > new_term)
}

/// Wall-clock µs since the Unix epoch.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What a trial needs beyond the cluster.
pub struct TrialSetup<'a> {
    /// Kernel rules or relay, for `isolate`.
    pub network: Option<&'a mut Box<dyn NetworkBackend>>,
    /// A connected client, for the first write.
    pub client: &'a mut Box<dyn KvClient>,
    /// Heartbeat interval (the phase is drawn within it).
    pub heartbeat: Duration,
    /// How long to watch after the fault is undone.
    pub hold: Duration,
    /// The fault lasts at least this long.
    pub min_outage: Duration,
    /// With isolate: how long the survivors also lose their links to higher-numbered survivors.
    pub split_survivors: Option<Duration>,
}

const WAIT_LEADER: Duration = Duration::from_secs(10);

/// Polls every node until all of them answer and agree on one leader in one term; returns it and its term.
pub async fn steady_leader(cluster: &Cluster, timeout: Duration) -> Option<(u64, u64)> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let mut seen = Vec::new();
        for id in cluster.ids() {
            let status = cluster
                .target
                .status(&cluster.layout, id, STATUS_TIMEOUT)
                .await;
            seen.push(
                status
                    .ok()
                    .and_then(|s| s.leader.map(|l| (l, s.term, s.role))),
            );
        }
        if let Some(Some((l, t, _))) = seen.first().copied() {
            let agree = seen
                .iter()
                .all(|s| s.map(|(l2, t2, _)| (l2, t2)) == Some((l, t)));
            let claims = seen.iter().flatten().any(|&(_, _, r)| r == Role::Leader);
            if agree && claims {
                return Some((l, t));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn tails(cluster: &Cluster) -> Tails {
    Tails(
        cluster
            .ids()
            .into_iter()
            .filter_map(|id| {
                let path = cluster.supervisor.log_path(id)?;
                Some(super::events::LogTail::at_end(id, &path))
            })
            .collect(),
    )
}

/// Every link of `node` cut both ways; with `split`, also every link from a survivor to a higher-numbered
/// survivor (one way), so that no survivor hears an answer to its vote requests.
fn isolate_links(ids: &[u64], node: u64, split: bool) -> BTreeMap<(u64, u64), LinkDegradation> {
    let cut = LinkDegradation {
        cut: true,
        ..LinkDegradation::default()
    };
    let mut links: BTreeMap<_, _> = ids
        .iter()
        .filter(|&&id| id != node)
        .flat_map(|&id| [((node, id), cut), ((id, node), cut)])
        .collect();
    if split {
        let survivors: Vec<u64> = ids.iter().copied().filter(|&id| id != node).collect();
        for &a in &survivors {
            for &b in survivors.iter().filter(|&&b| b > a) {
                links.insert((a, b), cut);
            }
        }
    }
    links
}

async fn inject(
    cluster: &mut Cluster,
    setup: &mut TrialSetup<'_>,
    fault: Fault,
    old: u64,
) -> Result<(), String> {
    let ids = cluster.ids();
    match fault {
        Fault::Kill => cluster.supervisor.kill(old),
        Fault::Pause => cluster.supervisor.pause(old),
        Fault::Isolate => match setup.network.as_mut() {
            Some(net) => net.apply(&isolate_links(&ids, old, setup.split_survivors.is_some())),
            None => Err("isolate needs a network backend".into()),
        },
        Fault::Transfer => {
            // The next node on the ring: the one the ranked policy would also pick.
            let pos = ids.iter().position(|&i| i == old).unwrap_or(0);
            let to = ids[(pos + 1) % ids.len()];
            cluster
                .target
                .transfer_leadership(&cluster.layout, old, to, Duration::from_secs(2))
                .await
        }
    }
}

async fn heal(
    cluster: &mut Cluster,
    setup: &mut TrialSetup<'_>,
    fault: Fault,
    old: u64,
) -> Result<(), String> {
    match fault {
        Fault::Kill => cluster.supervisor.start(old),
        Fault::Pause => cluster.supervisor.resume(old),
        Fault::Isolate => match setup.network.as_mut() {
            Some(net) => net.apply(&BTreeMap::new()),
            None => Ok(()),
        },
        Fault::Transfer => Ok(()),
    }
}

/// Writes until one write is acknowledged; returns when (µs since the epoch).
async fn first_write(
    client: &mut Box<dyn KvClient>,
    value: &str,
    timeout: Duration,
) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Outcome::Ok(()) = client.write("bench-election", value).await {
            return Some(unix_us());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

async fn collect_until_leader(tails: &mut Tails, old_term: u64) -> Vec<RoleEvent> {
    let deadline = Instant::now() + WAIT_LEADER;
    let mut events = Vec::new();
    while Instant::now() < deadline {
        events.extend(tails.poll());
        if analyze(&events, old_term).leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    events
}

/// Runs one trial; an `Err` is a tool error (a fault that could not be injected or undone).
pub async fn run(
    cluster: &mut Cluster,
    setup: &mut TrialSetup<'_>,
    fault: Fault,
    trial: usize,
    phase: Duration,
) -> Result<TrialRecord, String> {
    let (old, old_term) = steady_leader(cluster, Duration::from_secs(20))
        .await
        .ok_or_else(|| format!("no steady leader before trial {trial}"))?;
    // A warm client: its connection to the leader exists before the clock starts.
    first_write(setup.client, "warm", Duration::from_secs(5))
        .await
        .ok_or("the warm-up write was never acknowledged")?;
    let mut tails = tails(cluster);
    // The warm-up write reached every follower and reset its election timer just like a heartbeat. A fault
    // drawn within the interval after it would land, on average, hb/3 after the last contact (the nearer of the
    // write and the last heartbeat) instead of hb/2, adding a sixth of the heartbeat to every figure. One full
    // interval first makes the last contact a heartbeat of the leader's own schedule, which runs independently
    // of this clock: the fault then lands at a uniform point within the heartbeat interval.
    tokio::time::sleep(setup.heartbeat + phase).await;
    let fault_at = unix_us();
    inject(cluster, setup, fault, old).await?;
    let inject_us = unix_us() - fault_at;
    if let (Fault::Isolate, Some(split)) = (fault, setup.split_survivors) {
        tokio::time::sleep(split).await;
        let ids = cluster.ids();
        match setup.network.as_mut() {
            Some(net) => net.apply(&isolate_links(&ids, old, false))?,
            None => return Err("isolate needs a network backend".into()),
        }
    }
    let value = format!("after-fault-{trial}");
    let (events, write_at) = tokio::join!(
        collect_until_leader(&mut tails, old_term),
        first_write(setup.client, &value, WAIT_LEADER)
    );
    let found = analyze(&events, old_term);
    let outage_left = setup
        .min_outage
        .saturating_sub(Duration::from_micros(unix_us() - fault_at));
    tokio::time::sleep(outage_left).await;
    heal(cluster, setup, fault, old).await?;
    let new_term = found.leader.map(|l| l.term);
    let mut later = Vec::new();
    let hold_end = Instant::now() + setup.hold;
    while Instant::now() < hold_end {
        later.extend(tails.poll());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    later.extend(tails.poll());
    let ms = |at: u64| at.saturating_sub(fault_at) as f64 / 1000.0;
    Ok(TrialRecord {
        trial,
        fault,
        old_leader: old,
        old_term,
        phase_ms: phase.as_secs_f64() * 1000.0,
        fault_at_unix_us: fault_at,
        inject_us,
        leader_ms: found.leader.map(|l| ms(l.at_unix_us)),
        new_leader: found.leader.map(|l| l.node),
        new_term,
        terms_used: new_term.map(|t| t - old_term),
        campaign_ms: found.campaign_us.map(|us| us as f64 / 1000.0),
        write_ms: write_at.map(ms),
        disruptive_rejoin: new_term.is_some_and(|t| disrupted(&later, t)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(node: u64, at: u64, role: Announced, term: u64) -> RoleEvent {
        RoleEvent {
            node,
            at_unix_us: at,
            role,
            term,
        }
    }

    #[test]
    fn a_clean_failover_uses_one_term() {
        let events = [
            ev(2, 100, Announced::PreCandidate, 4),
            ev(2, 900, Announced::Candidate, 5),
            ev(3, 950, Announced::Follower, 5),
            ev(2, 2100, Announced::Leader, 5),
        ];
        let a = analyze(&events, 4);
        assert_eq!(a.leader.map(|l| (l.node, l.term)), Some((2, 5)));
        assert_eq!(a.campaign_us, Some(2000));
        assert!(!disrupted(&[ev(1, 3000, Announced::Follower, 5)], 5));
    }

    #[test]
    fn a_split_vote_shows_as_two_terms() {
        // Both survivors stand in term 5, neither wins; node 3 wins term 6.
        let events = [
            ev(2, 100, Announced::Candidate, 5),
            ev(3, 120, Announced::Candidate, 5),
            ev(3, 400, Announced::PreCandidate, 5),
            ev(3, 500, Announced::Candidate, 6),
            ev(3, 700, Announced::Leader, 6),
        ];
        let a = analyze(&events, 4);
        assert_eq!(a.leader.map(|l| l.term - 4), Some(2));
        assert_eq!(a.campaign_us, Some(300));
    }

    #[test]
    fn an_old_leader_line_is_not_a_new_leader_and_a_higher_term_later_is_disruptive() {
        let events = [ev(1, 50, Announced::Leader, 4)];
        assert_eq!(analyze(&events, 4).leader, None);
        assert!(disrupted(&[ev(1, 5000, Announced::Candidate, 6)], 5));
    }

    #[test]
    fn isolation_cuts_both_directions_of_every_link_of_the_node() {
        let links = isolate_links(&[1, 2, 3], 2, false);
        let keys: Vec<_> = links.keys().copied().collect();
        assert_eq!(keys, vec![(1, 2), (2, 1), (2, 3), (3, 2)]);
        assert!(links.values().all(|l| l.cut));
    }

    #[test]
    fn a_split_also_cuts_each_survivor_towards_the_higher_numbered_ones() {
        let links = isolate_links(&[1, 2, 3, 4], 2, true);
        let plain = isolate_links(&[1, 2, 3, 4], 2, false);
        let extra: Vec<_> = links.keys().filter(|k| !plain.contains_key(k)).collect();
        assert_eq!(extra, [&(1, 3), &(1, 4), &(3, 4)]);
        // 4 → 1 and 3 → 1 still pass: requests reach the lower survivors, their answers do not come back.
        assert!(!links.contains_key(&(4, 1)) && !links.contains_key(&(3, 1)));
    }
}
