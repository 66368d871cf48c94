//! The shared table of faults and counters per directed link, changed by the runner while packets flow.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::decide::{DropCause, Shaper};
use crate::endpoint::{Endpoint, Link};
use crate::fault::{FaultError, LinkFault};

/// Faults and counters for every directed link, shared (in an `Arc`) by all relays of a run.
///
/// A fault set here applies at once to every relay carrying packets of that link, in either of its
/// directions: a partition from node 1 to node 2 drops node 1's packets on relay R(1,2) (towards node 2) and
/// node 1's replies on relay R(2,1) (back to node 2) alike.
#[derive(Debug)]
pub struct FaultTable {
    /// The time origin of every relay's decisions; one origin for all, because the rate limiter of a link is
    /// shared by the relays carrying it.
    epoch: Instant,
    links: Mutex<BTreeMap<Link, Arc<LinkState>>>,
}

impl Default for FaultTable {
    fn default() -> Self {
        FaultTable::new()
    }
}

impl FaultTable {
    /// A table where every link is healthy.
    pub fn new() -> FaultTable {
        FaultTable {
            epoch: Instant::now(),
            links: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets the fault of the directed link `from → to`, replacing the previous one; node ids convert into
    /// endpoints (`table.set(1, 2, LinkFault::partition())`). Packets already held in a relay keep their
    /// departure time, but are dropped when it comes if the link is then partitioned.
    pub fn set(
        &self,
        from: impl Into<Endpoint>,
        to: impl Into<Endpoint>,
        fault: LinkFault,
    ) -> Result<(), FaultError> {
        fault.validate()?;
        let link = Link::new(from, to);
        tracing::debug!(%link, ?fault, "link fault set");
        self.state(link).set(fault);
        Ok(())
    }

    /// Sets the same fault on both directions between `a` and `b`.
    pub fn set_both(
        &self,
        a: impl Into<Endpoint>,
        b: impl Into<Endpoint>,
        fault: LinkFault,
    ) -> Result<(), FaultError> {
        let (a, b) = (a.into(), b.into());
        fault.validate()?;
        self.set(a, b, fault)?;
        self.set(b, a, fault)
    }

    /// The fault currently set on `from → to`.
    pub fn get(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>) -> LinkFault {
        let link = Link::new(from, to);
        match self.lock().get(&link) {
            Some(state) => *lock(&state.fault),
            None => LinkFault::NONE,
        }
    }

    /// Cuts `from → to` only (turmoil's `partition_oneway`): replies the other way still flow.
    pub fn partition_oneway(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>) {
        let link = Link::new(from, to);
        tracing::debug!(%link, "link partitioned");
        self.state(link).set(LinkFault::partition());
    }

    /// Cuts both directions between `a` and `b`.
    pub fn partition(&self, a: impl Into<Endpoint>, b: impl Into<Endpoint>) {
        let (a, b) = (a.into(), b.into());
        self.partition_oneway(a, b);
        self.partition_oneway(b, a);
    }

    /// Makes `from → to` healthy again.
    pub fn clear(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>) {
        let link = Link::new(from, to);
        if let Some(state) = self.lock().get(&link) {
            state.set(LinkFault::NONE);
        }
    }

    /// Heals every link. Counters are kept.
    pub fn clear_all(&self) {
        tracing::debug!("all links healed");
        for state in self.lock().values() {
            state.set(LinkFault::NONE);
        }
    }

    /// The links whose fault is not healthy, with their faults.
    pub fn faults(&self) -> BTreeMap<Link, LinkFault> {
        self.lock()
            .iter()
            .map(|(link, state)| (*link, *lock(&state.fault)))
            .filter(|(_, fault)| !fault.is_none())
            .collect()
    }

    /// The counters of `from → to`, summed over every relay carrying it (zero if no packet was seen).
    pub fn counters(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>) -> LinkCounters {
        let link = Link::new(from, to);
        match self.lock().get(&link) {
            Some(state) => state.counters.snapshot(),
            None => LinkCounters::default(),
        }
    }

    /// The counters of every link any relay carries or any fault was set on.
    pub fn all_counters(&self) -> BTreeMap<Link, LinkCounters> {
        self.lock()
            .iter()
            .map(|(link, state)| (*link, state.counters.snapshot()))
            .collect()
    }

    /// Time since the table's epoch: the clock of every decision.
    pub(crate) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The instant `at` (time since the epoch) stands for.
    pub(crate) fn instant(&self, at: Duration) -> Instant {
        self.epoch + at
    }

    /// The state of `link`, created healthy on first use. Relays keep the `Arc`, so the table's lock is
    /// taken once per relay, not per packet.
    pub(crate) fn state(&self, link: Link) -> Arc<LinkState> {
        self.lock().entry(link).or_default().clone()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Link, Arc<LinkState>>> {
        lock(&self.links)
    }
}

/// Locks a mutex, recovering from poisoning: every critical section here leaves the data consistent (plain
/// stores of `Copy` values), so a panic elsewhere must not take the network down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One directed link: its current fault, its rate limiter and its counters.
#[derive(Debug, Default)]
pub(crate) struct LinkState {
    /// Bumped on every change, so relays re-read `fault` only when it changed.
    generation: AtomicU64,
    /// Mirror of `fault.drop_all`, read without a lock when held packets are due.
    partitioned: AtomicBool,
    fault: Mutex<LinkFault>,
    /// Shared by all relays carrying the link, so a rate limit caps the link's total.
    pub(crate) shaper: Mutex<Shaper>,
    pub(crate) counters: AtomicCounters,
}

impl LinkState {
    fn set(&self, fault: LinkFault) {
        let mut current = lock(&self.fault);
        *current = fault;
        self.partitioned.store(fault.drop_all, Ordering::Release);
        // Bumped under the lock: a reader that sees the new generation then locks and reads the new fault.
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The current fault if its generation differs from `seen`, with the new generation.
    pub(crate) fn fault_if_changed(&self, seen: u64) -> Option<(u64, LinkFault)> {
        let generation = self.generation.load(Ordering::Acquire);
        if generation == seen {
            return None;
        }
        let fault = *lock(&self.fault);
        // A change between the load and the lock is seen as a newer generation next time.
        Some((generation, fault))
    }

    pub(crate) fn is_partitioned(&self) -> bool {
        self.partitioned.load(Ordering::Acquire)
    }
}

/// Counters of one directed link, summed over every relay that carries it.
///
/// Every packet that arrives (`packets_in`) ends up exactly once in `forwarded` or in one of the `dropped`
/// causes; until then it is in flight (held in a delay queue). Duplicate copies are counted only in
/// `duplicated`, so a receiver sees `forwarded + duplicated` datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounters {
    /// Datagrams that entered a relay travelling this way.
    pub packets_in: u64,
    /// Their bytes (UDP payload).
    pub bytes_in: u64,
    /// Datagrams sent on (first copies).
    pub forwarded: u64,
    /// Their bytes.
    pub bytes_forwarded: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    /// Packets scheduled to leave later than they arrived (delay, jitter, rate limiting or reordering).
    pub delayed: u64,
    /// Packets held back so that later ones overtake them.
    pub reordered: u64,
    /// Drops by cause.
    pub dropped: DropCounters,
}

impl LinkCounters {
    /// Packets that arrived but are neither forwarded nor dropped yet (held in a delay queue).
    pub fn in_flight(&self) -> u64 {
        self.packets_in
            .saturating_sub(self.forwarded)
            .saturating_sub(self.dropped.total())
    }
}

/// Drops of one directed link by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCounters {
    /// Partitioned link (on arrival, or while held).
    pub partition: u64,
    /// Random loss.
    pub loss: u64,
    /// Rate limiter queue full.
    pub rate_limit: u64,
    /// Relay delay queue full.
    pub queue_full: u64,
    /// Relay at its maximum number of sources.
    pub sources_full: u64,
    /// Datagram too large.
    pub oversize: u64,
    /// The operating system refused to send.
    pub send_error: u64,
}

impl DropCounters {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.partition
            + self.loss
            + self.rate_limit
            + self.queue_full
            + self.sources_full
            + self.oversize
            + self.send_error
    }

    /// Drops of one cause.
    pub fn get(&self, cause: DropCause) -> u64 {
        match cause {
            DropCause::Partition => self.partition,
            DropCause::Loss => self.loss,
            DropCause::RateLimit => self.rate_limit,
            DropCause::QueueFull => self.queue_full,
            DropCause::SourcesFull => self.sources_full,
            DropCause::Oversize => self.oversize,
            DropCause::SendError => self.send_error,
        }
    }
}

/// The live counters behind [`LinkCounters`]: relaxed atomics, since they are statistics that order nothing.
#[derive(Debug, Default)]
pub(crate) struct AtomicCounters {
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    forwarded: AtomicU64,
    bytes_forwarded: AtomicU64,
    duplicated: AtomicU64,
    delayed: AtomicU64,
    reordered: AtomicU64,
    dropped: [AtomicU64; DROP_CAUSES],
}

const DROP_CAUSES: usize = 7;

fn cause_index(cause: DropCause) -> usize {
    match cause {
        DropCause::Partition => 0,
        DropCause::Loss => 1,
        DropCause::RateLimit => 2,
        DropCause::QueueFull => 3,
        DropCause::SourcesFull => 4,
        DropCause::Oversize => 5,
        DropCause::SendError => 6,
    }
}

impl AtomicCounters {
    pub(crate) fn arrived(&self, len: usize) {
        self.packets_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
    }

    pub(crate) fn forwarded(&self, len: usize) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        self.bytes_forwarded
            .fetch_add(len as u64, Ordering::Relaxed);
    }

    pub(crate) fn duplicated(&self) {
        self.duplicated.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn delayed(&self, reordered: bool) {
        self.delayed.fetch_add(1, Ordering::Relaxed);
        if reordered {
            self.reordered.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn dropped(&self, cause: DropCause) {
        self.dropped[cause_index(cause)].fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot. Outcomes are read before arrivals, so a packet counted between the reads makes
    /// `in_flight` look larger rather than negative (and `in_flight` saturates anyway).
    pub(crate) fn snapshot(&self) -> LinkCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let d = |cause| get(&self.dropped[cause_index(cause)]);
        let dropped = DropCounters {
            partition: d(DropCause::Partition),
            loss: d(DropCause::Loss),
            rate_limit: d(DropCause::RateLimit),
            queue_full: d(DropCause::QueueFull),
            sources_full: d(DropCause::SourcesFull),
            oversize: d(DropCause::Oversize),
            send_error: d(DropCause::SendError),
        };
        let forwarded = get(&self.forwarded);
        let bytes_forwarded = get(&self.bytes_forwarded);
        let duplicated = get(&self.duplicated);
        let delayed = get(&self.delayed);
        let reordered = get(&self.reordered);
        LinkCounters {
            packets_in: get(&self.packets_in),
            bytes_in: get(&self.bytes_in),
            forwarded,
            bytes_forwarded,
            duplicated,
            delayed,
            reordered,
            dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_clear_and_heal() {
        let table = FaultTable::new();
        assert!(table.get(1, 2).is_none());
        table.partition_oneway(1, 2);
        assert!(table.get(1, 2).drop_all);
        assert!(table.get(2, 1).is_none(), "one-way");
        table.partition(3, 4);
        assert_eq!(table.faults().len(), 3);
        table.clear(1, 2);
        assert!(table.get(1, 2).is_none());
        table.clear_all();
        assert!(table.faults().is_empty());
    }

    #[test]
    fn invalid_faults_are_refused_and_leave_the_link_unchanged() {
        let table = FaultTable::new();
        table.partition_oneway(1, 2);
        let bad = LinkFault::none().with_loss(2.0);
        assert!(table.set(1, 2, bad).is_err());
        assert!(table.set_both(1, 2, bad).is_err());
        assert!(table.get(1, 2).drop_all);
        assert!(table.get(2, 1).is_none());
    }

    #[test]
    fn relays_see_changes_through_generations() {
        let table = FaultTable::new();
        let state = table.state(Link::new(1, 2));
        let (generation, fault) = state.fault_if_changed(u64::MAX).unwrap();
        assert!(fault.is_none());
        assert_eq!(state.fault_if_changed(generation), None);
        table.partition_oneway(1, 2);
        let (newer, fault) = state.fault_if_changed(generation).unwrap();
        assert!(fault.drop_all && state.is_partitioned());
        assert_ne!(newer, generation);
    }

    #[test]
    fn counters_add_up() {
        let counters = AtomicCounters::default();
        for _ in 0..5 {
            counters.arrived(100);
        }
        counters.forwarded(100);
        counters.forwarded(100);
        counters.duplicated();
        counters.dropped(DropCause::Loss);
        counters.dropped(DropCause::Partition);
        counters.delayed(true);
        let snapshot = counters.snapshot();
        assert_eq!(snapshot.packets_in, 5);
        assert_eq!(snapshot.bytes_in, 500);
        assert_eq!(snapshot.dropped.total(), 2);
        assert_eq!(snapshot.dropped.get(DropCause::Loss), 1);
        assert_eq!(snapshot.in_flight(), 1);
        assert_eq!((snapshot.delayed, snapshot.reordered), (1, 1));
    }
}
