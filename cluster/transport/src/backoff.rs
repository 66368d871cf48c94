//! Reconnect delays: exponential, bounded, with jitter from a seeded generator (no thread-local RNG).

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is uniform in [d/2, d] where d doubles per failure
/// from `min` up to `max`. The sequence depends only on the seed.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    rng: SplitMix64,
}

impl Backoff {
    /// A backoff between `min` and `max`, jittered from `seed`.
    pub fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        assert!(!min.is_zero(), "backoff minimum must be positive");
        assert!(min <= max, "backoff minimum above maximum");
        Backoff {
            min,
            max,
            current: min,
            rng: SplitMix64(seed),
        }
    }

    /// The delay before the next attempt; grows the following one.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = ceiling / 2;
        let jitter_ns = self.rng.next() % (half.as_nanos() as u64 + 1);
        let delay = half + Duration::from_nanos(jitter_ns);
        assert!(delay <= self.max, "backoff delay above its bound");
        delay
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

/// The SplitMix64 generator: tiny, fast, and good enough for jitter.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_bounded_and_reset() {
        let min = Duration::from_millis(50);
        let max = Duration::from_secs(1);
        let mut backoff = Backoff::new(min, max, 7);
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        let mut ceiling = min;
        for delay in &delays {
            assert!(
                *delay >= ceiling / 2 && *delay <= ceiling,
                "{delay:?} not in [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(max);
        }
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }

    #[test]
    fn same_seed_same_delays() {
        let run = |seed| {
            let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
