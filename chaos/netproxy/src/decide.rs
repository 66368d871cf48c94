//! The pure core: what happens to one packet, given the link's fault, a seeded RNG, the time and its size.
//!
//! No sockets, no clock reads: time is a [`Duration`] since an epoch the caller chooses, and every random
//! choice comes from the [`Decider`]'s own seeded RNG, so a sequence of packets gives the same decisions on
//! every run.

use std::time::Duration;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::fault::{LinkFault, RateLimit};

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DropCause {
    /// The link is partitioned (`drop_all`), on arrival or while the packet was held.
    Partition,
    /// Random loss.
    Loss,
    /// The rate limiter's queue was full.
    RateLimit,
    /// The relay's bounded delay queue was full.
    QueueFull,
    /// The relay already serves its maximum number of downstream sources.
    SourcesFull,
    /// The datagram was larger than [`crate::DATAGRAM_BYTES_MAX`].
    Oversize,
    /// The operating system refused to send it (or to open the source's upstream socket).
    SendError,
}

/// The fate of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Drop it.
    Drop(DropCause),
    /// Send it once at `at` (time since the epoch; at or before now means immediately).
    Forward {
        /// When to send.
        at: Duration,
        /// Whether it was held back to be overtaken.
        reordered: bool,
    },
    /// Send it at `at`, then send a second copy right after.
    Duplicate {
        /// When to send both copies.
        at: Duration,
        /// Whether it was held back to be overtaken.
        reordered: bool,
    },
}

impl Decision {
    /// When the packet leaves, unless dropped.
    pub fn at(&self) -> Option<Duration> {
        match *self {
            Decision::Drop(_) => None,
            Decision::Forward { at, .. } | Decision::Duplicate { at, .. } => Some(at),
        }
    }

    /// How many copies are sent: 0, 1 or 2.
    pub fn copies(&self) -> u8 {
        match self {
            Decision::Drop(_) => 0,
            Decision::Forward { .. } => 1,
            Decision::Duplicate { .. } => 2,
        }
    }

    /// Whether the packet was held back to be overtaken.
    pub fn reordered(&self) -> bool {
        match *self {
            Decision::Drop(_) => false,
            Decision::Forward { reordered, .. } | Decision::Duplicate { reordered, .. } => {
                reordered
            }
        }
    }
}

/// The rate limiter of one directed link: a token bucket expressed as a virtual clock (GCRA).
///
/// `busy_until` is when the link would have sent everything admitted so far at exactly the configured rate.
/// A packet may start once `busy_until - burst/rate` has passed; the bytes queued ahead of it are
/// `(start - now) × rate`. One shaper is shared by every relay carrying the link, so the limit applies to the
/// link's total traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shaper {
    busy_until: Duration,
}

impl Shaper {
    /// An idle link.
    pub fn new() -> Shaper {
        Shaper::default()
    }

    /// When a packet of `len` bytes arriving at `now` may leave, or `None` if it is dropped because more than
    /// `queue_bytes_max` bytes wait ahead of it. A dropped packet does not use the link.
    pub fn admit(&mut self, limit: &RateLimit, now: Duration, len: usize) -> Option<Duration> {
        let rate = u128::from(limit.bytes_per_s.max(1));
        let burst = transmit_time(u128::from(limit.burst_bytes), rate);
        let start = now.max(self.busy_until.saturating_sub(burst));
        let waiting_ns = (start - now).as_nanos();
        let queued_bytes = waiting_ns * rate / 1_000_000_000;
        if queued_bytes > u128::from(limit.queue_bytes_max) {
            return None;
        }
        self.busy_until = self.busy_until.max(now) + transmit_time(len as u128, rate);
        Some(start)
    }
}

/// Time to send `bytes` at `rate` bytes/s, rounded up to the nanosecond so the rate is never exceeded.
fn transmit_time(bytes: u128, rate: u128) -> Duration {
    let ns = (bytes * 1_000_000_000).div_ceil(rate);
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// Decides packet fates for one direction of one relay: owns the seeded RNG and the first-in first-out clock.
#[derive(Debug, Clone)]
pub struct Decider {
    rng: ChaCha8Rng,
    /// When the last packet that kept its turn leaves; later packets never leave before it.
    fifo_last: Duration,
}

impl Decider {
    /// A decider whose random choices all come from `seed`.
    pub fn new(seed: u64) -> Decider {
        Decider {
            rng: ChaCha8Rng::seed_from_u64(seed),
            fifo_last: Duration::ZERO,
        }
    }

    /// Decides the fate of a packet of `len` bytes arriving at `now` on a link with `fault`.
    ///
    /// `shaper` is the link's rate limiter; it must be given when `fault.rate` is set. The RNG is only
    /// consulted for the fault's non-zero probabilities and jitter, so a healthy link costs no draws.
    pub fn decide(
        &mut self,
        fault: &LinkFault,
        now: Duration,
        len: usize,
        shaper: Option<&mut Shaper>,
    ) -> Decision {
        if fault.drop_all {
            return Decision::Drop(DropCause::Partition);
        }
        if self.chance(fault.loss) {
            return Decision::Drop(DropCause::Loss);
        }
        let leave = match &fault.rate {
            None => now,
            Some(limit) => {
                let shaper = shaper.expect("a rate-limited link is decided with its shaper");
                match shaper.admit(limit, now, len) {
                    Some(start) => start,
                    None => return Decision::Drop(DropCause::RateLimit),
                }
            }
        };
        let delay = if fault.jitter.is_zero() {
            fault.delay
        } else {
            let jitter_ns = u64::try_from(fault.jitter.as_nanos()).unwrap_or(u64::MAX);
            fault.delay + Duration::from_nanos(self.rng.gen_range(0..=jitter_ns))
        };
        let turn = (leave + delay).max(self.fifo_last);
        let reordered = self.chance(fault.reorder);
        let at = if reordered {
            // Held past its turn without holding back the packets behind it: they overtake it.
            turn + fault.reorder_delay
        } else {
            self.fifo_last = turn;
            turn
        };
        if self.chance(fault.duplicate) {
            Decision::Duplicate { at, reordered }
        } else {
            Decision::Forward { at, reordered }
        }
    }

    fn chance(&mut self, probability: f64) -> bool {
        // `gen::<f64>()` is in [0, 1): probability 0 never fires and 1 always does, without a draw for 0.
        probability > 0.0 && self.rng.gen::<f64>() < probability
    }
}

/// Mixes `words` into `seed` (splitmix64 steps), so each relay direction gets its own stream from the run's
/// seed, stable across runs and builds.
pub fn derive_seed(seed: u64, words: &[u64]) -> u64 {
    let mut state = splitmix64(seed);
    for &word in words {
        state = splitmix64(state ^ splitmix64(word));
    }
    state
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn run(fault: &LinkFault, seed: u64, packets: u64, gap: Duration) -> Vec<Decision> {
        let mut decider = Decider::new(seed);
        let mut shaper = Shaper::new();
        (0..packets)
            .map(|i| decider.decide(fault, gap * i as u32, 100, Some(&mut shaper)))
            .collect()
    }

    #[test]
    fn a_healthy_link_forwards_everything_at_once() {
        for (i, d) in run(&LinkFault::NONE, 1, 100, MS).into_iter().enumerate() {
            assert_eq!(
                d,
                Decision::Forward {
                    at: MS * i as u32,
                    reordered: false
                }
            );
        }
    }

    #[test]
    fn a_partition_drops_everything() {
        let decisions = run(&LinkFault::partition().with_delay(MS, MS), 1, 50, MS);
        assert!(decisions
            .iter()
            .all(|d| *d == Decision::Drop(DropCause::Partition)));
    }

    #[test]
    fn loss_drops_about_the_fraction_asked_and_is_reproducible() {
        let fault = LinkFault::none().with_loss(0.3);
        let a = run(&fault, 7, 10_000, MS);
        assert_eq!(a, run(&fault, 7, 10_000, MS), "same seed, same decisions");
        assert_ne!(
            a,
            run(&fault, 8, 10_000, MS),
            "another seed, other decisions"
        );
        let lost = a
            .iter()
            .filter(|d| **d == Decision::Drop(DropCause::Loss))
            .count();
        assert!((2_700..=3_300).contains(&lost), "{lost} of 10000 lost");
    }

    #[test]
    fn probabilities_zero_and_one_are_exact() {
        assert!(run(&LinkFault::none().with_loss(1.0), 3, 1000, MS)
            .iter()
            .all(|d| *d == Decision::Drop(DropCause::Loss)));
        assert!(run(&LinkFault::none().with_duplicate(1.0), 3, 1000, MS)
            .iter()
            .all(|d| d.copies() == 2));
        assert!(run(&LinkFault::none().with_duplicate(0.0), 3, 1000, MS)
            .iter()
            .all(|d| d.copies() == 1));
    }

    #[test]
    fn delay_without_jitter_is_exact() {
        let fault = LinkFault::none().with_delay(25 * MS, Duration::ZERO);
        for (i, d) in run(&fault, 1, 100, MS).into_iter().enumerate() {
            assert_eq!(d.at(), Some(MS * i as u32 + 25 * MS));
        }
    }

    #[test]
    fn jitter_adds_a_uniform_extra_delay_without_reordering() {
        // Packets 100 ms apart: far enough that the FIFO rule never binds, so we see the raw draws.
        let fault = LinkFault::none().with_delay(50 * MS, 40 * MS);
        let gap = 100 * MS;
        let decisions = run(&fault, 11, 2_000, gap);
        let delays: Vec<Duration> = decisions
            .iter()
            .enumerate()
            .map(|(i, d)| d.at().unwrap() - gap * i as u32)
            .collect();
        assert!(delays.iter().all(|d| (50 * MS..=90 * MS).contains(d)));
        let mean = delays.iter().sum::<Duration>() / delays.len() as u32;
        assert!((68 * MS..=72 * MS).contains(&mean), "mean {mean:?}");
        assert!(delays.iter().any(|d| *d < 55 * MS) && delays.iter().any(|d| *d > 85 * MS));

        // Packets 1 ms apart with 40 ms of jitter: draws overlap, yet departures stay in order.
        let dense = run(&fault, 11, 2_000, MS);
        assert!(dense.windows(2).all(|w| w[0].at() <= w[1].at()));
        assert!(dense.iter().all(|d| !d.reordered()));
    }

    #[test]
    fn reordered_packets_are_held_and_overtaken() {
        let fault = LinkFault::none().with_reorder(0.25, 10 * MS);
        let decisions = run(&fault, 5, 1_000, MS);
        let held: Vec<usize> = (0..decisions.len())
            .filter(|&i| decisions[i].reordered())
            .collect();
        assert!((200..=300).contains(&held.len()), "{} held", held.len());
        for &i in &held {
            assert_eq!(decisions[i].at(), Some(MS * i as u32 + 10 * MS));
        }
        // A packet after a held one leaves before it.
        let i = held[0];
        let next = (i + 1..decisions.len())
            .find(|j| !decisions[*j].reordered())
            .unwrap();
        assert!(decisions[next].at() < decisions[i].at());
        // Packets that keep their turn stay in order among themselves.
        let kept: Vec<Duration> = decisions
            .iter()
            .filter(|d| !d.reordered())
            .map(|d| d.at().unwrap())
            .collect();
        assert!(kept.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_shrinking_delay_drains_in_order() {
        // Heal a 100 ms delay: packets after the heal wait behind those still on the wire instead of
        // overtaking them.
        let mut decider = Decider::new(1);
        let slow = LinkFault::none().with_delay(100 * MS, Duration::ZERO);
        let before = decider.decide(&slow, Duration::ZERO, 10, None);
        let after = decider.decide(&LinkFault::NONE, MS, 10, None);
        assert_eq!(before.at(), Some(100 * MS));
        assert_eq!(after.at(), Some(100 * MS));
        assert_eq!(
            decider.decide(&LinkFault::NONE, 200 * MS, 10, None).at(),
            Some(200 * MS)
        );
    }

    #[test]
    fn shaper_spaces_packets_at_the_rate_and_tail_drops_past_the_queue() {
        // 1000 B/s, no burst, 2000 B of queue; 500 B packets all arriving at once.
        let limit = RateLimit::new(1000, 0, 2000);
        let mut shaper = Shaper::new();
        let starts: Vec<Option<Duration>> = (0..7)
            .map(|_| shaper.admit(&limit, Duration::ZERO, 500))
            .collect();
        let ms = |n: u64| Some(Duration::from_millis(n));
        assert_eq!(
            starts,
            vec![ms(0), ms(500), ms(1000), ms(1500), ms(2000), None, None]
        );
        // Once the queue drains, packets are admitted again.
        assert_eq!(
            shaper.admit(&limit, Duration::from_millis(2500), 500),
            ms(2500)
        );
    }

    #[test]
    fn shaper_lets_a_burst_through_after_idling() {
        let limit = RateLimit::new(1000, 1000, 0);
        let mut shaper = Shaper::new();
        let now = Duration::from_secs(10);
        // 1000 B of burst: the first three 400 B packets pass at once (the third starts within the burst),
        // the fourth would have to queue and the queue is empty-sized.
        let starts: Vec<Option<Duration>> =
            (0..4).map(|_| shaper.admit(&limit, now, 400)).collect();
        assert_eq!(starts, vec![Some(now), Some(now), Some(now), None]);
    }

    #[test]
    fn shaper_long_run_throughput_matches_the_rate() {
        // Offer 100 kB/s to a 10 kB/s link for 10 s: about 100 kB pass (plus burst and queue), the rest drop.
        let limit = RateLimit::new(10_000, 2_000, 5_000);
        let mut decider = Decider::new(1);
        let mut shaper = Shaper::new();
        let fault = LinkFault::none().with_rate(limit);
        let mut admitted_bytes = 0_u64;
        let mut last = Duration::ZERO;
        for i in 0..10_000_u32 {
            let d = decider.decide(&fault, MS * i, 100, Some(&mut shaper));
            if let Some(at) = d.at() {
                admitted_bytes += 100;
                assert!(at >= last, "rate limiting keeps order");
                last = at;
            } else {
                assert_eq!(d, Decision::Drop(DropCause::RateLimit));
            }
        }
        assert!(
            (100_000..=100_000 + 2_000 + 5_000 + 100).contains(&admitted_bytes),
            "{admitted_bytes} bytes admitted"
        );
        // The last admitted packet leaves within one queue's worth of time after the offer ended.
        assert!(last <= Duration::from_millis(10_000 + 500 + 10));
    }

    #[test]
    fn stages_compose_in_order() {
        // Rate limit then delay: a packet delayed by the limiter also gets the link delay.
        let fault = LinkFault::none()
            .with_rate(RateLimit::new(1000, 0, 10_000))
            .with_delay(10 * MS, Duration::ZERO);
        let mut decider = Decider::new(1);
        let mut shaper = Shaper::new();
        let first = decider.decide(&fault, Duration::ZERO, 100, Some(&mut shaper));
        let second = decider.decide(&fault, Duration::ZERO, 100, Some(&mut shaper));
        assert_eq!(first.at(), Some(10 * MS));
        assert_eq!(second.at(), Some(110 * MS));
    }

    #[test]
    fn derived_seeds_differ_per_word_and_are_stable() {
        let a = derive_seed(42, &[1, 2, 0]);
        assert_eq!(a, derive_seed(42, &[1, 2, 0]));
        assert_ne!(a, derive_seed(42, &[1, 2, 1]));
        assert_ne!(a, derive_seed(42, &[2, 1, 0]));
        assert_ne!(a, derive_seed(43, &[1, 2, 0]));
    }
}
