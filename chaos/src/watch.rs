//! The status watcher: while a plan has faults on cluster events (`on = "new-leader"`, `on = "new-term"`), it
//! asks every node for its status every few milliseconds and reports the events those faults start. The 250 ms
//! status poller records; this one reacts, so it asks often, each node on its own (a node that is down delays
//! only its own answers) and reports an event as soon as one answer shows it.
//!
//! Black-box like every other fault input: it sees what an operator's monitoring sees through the target's
//! status API. Its latency is up to one `watch_interval` (5 ms by default) plus one status round trip, and a
//! fault on the event starts about 2 ms after the answer that showed it (measured on loopback).

use crate::plan::ClusterEvent;
use crate::schedule::NodeView;
use crate::targets::{Layout, NodeStatus, Role, Target};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long one answer may take before the node counts as not answering.
const ASK_TIMEOUT: Duration = Duration::from_millis(200);

/// An event, when it was seen and the cluster as it was then.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// What happened.
    pub event: ClusterEvent,
    /// When the answer that showed it came.
    pub at: Instant,
    /// The node it is about (the new leader; the node that reported the new term).
    pub node: u64,
    /// Its term.
    pub term: u64,
    /// Every node's latest answer, as targeting needs it (the new leader, the followers, who lags).
    pub nodes: Vec<NodeView>,
}

/// What the watcher knows and its rule for events; pure, so the rule is tested without a cluster.
#[derive(Debug, Default)]
pub struct Tracker {
    /// The highest term any node was seen leading in.
    led: u64,
    /// The highest term any node reported.
    seen: u64,
    /// Each node's latest answer (`None`: it did not answer).
    latest: BTreeMap<u64, Option<NodeStatus>>,
}

impl Tracker {
    /// A tracker that knows the cluster as `first` shows it: nothing there is an event (the leader the run
    /// started with is not a new one).
    pub fn new<'a>(first: impl IntoIterator<Item = (u64, Option<&'a NodeStatus>)>) -> Tracker {
        let mut t = Tracker::default();
        for (id, answer) in first {
            t.record(id, answer);
        }
        t
    }

    /// Takes node `id`'s latest answer; returns the events it shows, in order, with their term: a term above
    /// every term seen so far, then a node leading in a term above every term led so far (one answer can show
    /// both: the watcher may first hear of a term from its winner).
    pub fn update(&mut self, id: u64, answer: Option<&NodeStatus>) -> Vec<(ClusterEvent, u64)> {
        let (seen, led) = (self.seen, self.led);
        self.record(id, answer);
        [
            (ClusterEvent::NewTerm, self.seen > seen, self.seen),
            (ClusterEvent::NewLeader, self.led > led, self.led),
        ]
        .into_iter()
        .filter(|(_, new, _)| *new)
        .map(|(event, _, term)| (event, term))
        .collect()
    }

    fn record(&mut self, id: u64, answer: Option<&NodeStatus>) {
        if let Some(s) = answer {
            self.seen = self.seen.max(s.term);
            if s.role == Role::Leader {
                self.led = self.led.max(s.term);
            }
        }
        self.latest.insert(id, answer.cloned());
    }

    /// The nodes that answered last time, as [`crate::cluster::Cluster::view`] sees a cluster.
    pub fn view(&self) -> Vec<NodeView> {
        crate::cluster::views(
            self.latest
                .iter()
                .filter_map(|(&id, s)| s.as_ref().map(|s| (id, s))),
        )
    }
}

/// The running watcher; dropping it stops every task it started.
#[derive(Debug)]
pub struct Watcher {
    _tasks: JoinSet<()>,
}

/// Starts watching the nodes of `layout` (and those that join later). The first round of answers is the
/// baseline; events come on the returned channel.
pub async fn start(
    target: Arc<dyn Target>,
    mut layout: tokio::sync::watch::Receiver<Layout>,
    every: Duration,
) -> (Watcher, UnboundedReceiver<Observed>) {
    let current = layout.borrow_and_update().clone();
    let mut first = JoinSet::new();
    for node in &current.nodes {
        let (target, current, id) = (Arc::clone(&target), current.clone(), node.id);
        first.spawn(async move { (id, target.status(&current, id, ASK_TIMEOUT).await.ok()) });
    }
    let mut answers = Vec::new();
    while let Some(Ok(answer)) = first.join_next().await {
        answers.push(answer);
    }
    let tracker = Tracker::new(answers.iter().map(|(id, s)| (*id, s.as_ref())));
    let (events_tx, events_rx) = unbounded_channel();
    let (answers_tx, answers_rx) = unbounded_channel();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut askers = JoinSet::new();
        let mut asked: Vec<u64> = Vec::new();
        loop {
            let ids: Vec<u64> = layout
                .borrow_and_update()
                .nodes
                .iter()
                .map(|n| n.id)
                .collect();
            for id in ids {
                if !asked.contains(&id) {
                    asked.push(id);
                    let (target, layout) = (Arc::clone(&target), layout.clone());
                    askers.spawn(ask(target, layout, id, every, answers_tx.clone()));
                }
            }
            if layout.changed().await.is_err() {
                // The layout's owner is gone: keep asking the nodes we know until dropped.
                std::future::pending::<()>().await;
            }
        }
    });
    tasks.spawn(report(tracker, answers_rx, events_tx));
    (Watcher { _tasks: tasks }, events_rx)
}

/// Asks node `id` for its status `every` so often, forever.
async fn ask(
    target: Arc<dyn Target>,
    mut layout: tokio::sync::watch::Receiver<Layout>,
    id: u64,
    every: Duration,
    answers: UnboundedSender<(u64, Option<NodeStatus>, Instant)>,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut current = layout.borrow_and_update().clone();
    loop {
        interval.tick().await;
        // Copied only when it changed (a node joined), not on every poll.
        if layout.has_changed().unwrap_or(false) {
            current = layout.borrow_and_update().clone();
        }
        let answer = target.status(&current, id, ASK_TIMEOUT).await.ok();
        if answers.send((id, answer, Instant::now())).is_err() {
            return;
        }
    }
}

/// Feeds the answers to the tracker and sends the events they show.
async fn report(
    mut tracker: Tracker,
    mut answers: UnboundedReceiver<(u64, Option<NodeStatus>, Instant)>,
    events: UnboundedSender<Observed>,
) {
    while let Some((id, answer, at)) = answers.recv().await {
        for (event, term) in tracker.update(id, answer.as_ref()) {
            let seen = Observed {
                event,
                at,
                node: id,
                term,
                nodes: tracker.view(),
            };
            if events.send(seen).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(role: Role, term: u64, applied: u64) -> NodeStatus {
        NodeStatus {
            role,
            term,
            leader: None,
            commit_index: Some(applied),
            applied_index: Some(applied),
            clock_offset_ms: None,
            elections_started: None,
        }
    }

    #[test]
    fn the_leader_the_run_starts_with_is_not_an_event_but_each_later_term_and_leader_is() {
        use ClusterEvent::*;
        let leader = status(Role::Leader, 3, 10);
        let follower = status(Role::Follower, 3, 9);
        let mut t = Tracker::new([(1, Some(&leader)), (2, Some(&follower)), (3, None)]);
        assert_eq!(t.update(1, Some(&leader)), [], "same leader, same term");
        assert_eq!(t.update(2, Some(&status(Role::PreCandidate, 3, 9))), []);
        assert_eq!(
            t.update(2, Some(&status(Role::Candidate, 4, 9))),
            [(NewTerm, 4)],
            "an election began"
        );
        assert_eq!(
            t.update(3, Some(&status(Role::Follower, 4, 9))),
            [],
            "a voter in that term is the same election"
        );
        let new = status(Role::Leader, 4, 9);
        assert_eq!(t.update(2, Some(&new)), [(NewLeader, 4)]);
        assert_eq!(t.update(2, Some(&new)), [], "reported once per term");
        assert_eq!(
            t.update(1, Some(&leader)),
            [],
            "a deposed leader that still says so is old news"
        );
        assert_eq!(
            t.update(3, Some(&status(Role::Leader, 6, 0))),
            [(NewTerm, 6), (NewLeader, 6)],
            "heard of a term first from its winner: both, the term first"
        );
        assert_eq!(t.update(1, None), [], "silence is no event");
    }

    #[test]
    fn the_view_names_the_leader_of_the_highest_term_and_leaves_out_the_silent() {
        let mut t = Tracker::new([
            (1, Some(&status(Role::Leader, 3, 10))),
            (2, Some(&status(Role::Leader, 4, 8))),
            (3, Some(&status(Role::Follower, 4, 7))),
        ]);
        t.update(3, None);
        assert_eq!(
            t.view(),
            [
                NodeView {
                    id: 1,
                    leader: false,
                    applied: Some(10)
                },
                NodeView {
                    id: 2,
                    leader: true,
                    applied: Some(8)
                },
            ]
        );
    }
}
