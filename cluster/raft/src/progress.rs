//! What a leader knows about each follower's log, and the flow control of Append messages to it.

use crate::types::{Instant, LogIndex};
use std::collections::VecDeque;

/// How the leader currently replicates to one follower.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplicationState {
    /// Searching for the last matching index: one Append at a time.
    Probe,
    /// The follower's log matches: Appends are pipelined optimistically.
    Replicate,
    /// A snapshot up to `index` was sent; Appends wait until it is acknowledged or times out.
    Snapshot {
        /// Index of the snapshot sent.
        index: LogIndex,
        /// When it was sent.
        sent_at: Instant,
    },
}

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The highest index known to be replicated (durably) on the follower.
    pub match_index: LogIndex,
    /// The next index to send.
    pub next_index: LogIndex,
    /// Probe, replicate or snapshot.
    pub state: ReplicationState,
    /// In Probe, whether a probe is outstanding (cleared by a heartbeat response so lost probes are retried).
    pub probe_sent: bool,
    /// Last index of each Append in flight, oldest first (bounded by `max_inflight_messages`).
    pub inflight: VecDeque<LogIndex>,
    /// Whether the follower answered anything since the last check-quorum round.
    pub recent_active: bool,
    /// The newest heartbeat round the follower acknowledged in this term.
    pub read_round_acked: u64,
    /// When `match_index` last advanced (or replication to it was last restarted).
    pub last_progress_at: Instant,
    /// Set for a node removed from the configuration: it is still sent the log until then.
    pub departing_until: Option<Instant>,
}

impl Progress {
    /// A fresh progress for a newly elected leader whose log ends at `last_index` (§5.3: nextIndex starts just
    /// after the leader's last entry).
    pub fn new(last_index: LogIndex, now: Instant) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: last_index.next(),
            state: ReplicationState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: false,
            read_round_acked: 0,
            last_progress_at: now,
            departing_until: None,
        }
    }

    /// Whether another Append may be sent now.
    pub fn can_send(&self, max_inflight: usize) -> bool {
        match self.state {
            ReplicationState::Probe => !self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() < max_inflight,
            ReplicationState::Snapshot { .. } => false,
        }
    }

    /// Records an acknowledgement up to `index`; returns whether it was news.
    pub fn acknowledge(&mut self, index: LogIndex, now: Instant) -> bool {
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        if index <= self.match_index {
            return false;
        }
        self.match_index = index;
        self.next_index = self.next_index.max(index.next());
        self.last_progress_at = now;
        match self.state {
            ReplicationState::Probe => self.become_replicate(),
            ReplicationState::Snapshot { index: snap, .. } if index >= snap => {
                self.become_replicate()
            }
            _ => {}
        }
        true
    }

    /// Switches to pipelined replication from just after the match.
    pub fn become_replicate(&mut self) {
        self.state = ReplicationState::Replicate;
        self.next_index = self.match_index.next().max(self.next_index);
        self.probe_sent = false;
    }

    /// Switches to probing from `next_index` (after a rejection or a stall).
    pub fn become_probe(&mut self, next_index: LogIndex, now: Instant) {
        self.state = ReplicationState::Probe;
        self.next_index = next_index.max(self.match_index.next());
        self.probe_sent = false;
        self.inflight.clear();
        self.last_progress_at = now;
    }
}
