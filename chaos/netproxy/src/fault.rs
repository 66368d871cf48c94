//! What can go wrong on one direction of a link: the vocabulary of network faults, and its validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest delay, jitter or reorder hold accepted (each). Longer holds would only fill the bounded delay queue; a
/// link that should lose everything for minutes is a partition.
pub const HOLD_MAX: Duration = Duration::from_secs(60);

/// A reorder hold for plans that give only a fraction: far above the microseconds between packets on
/// loopback, so overtaking is certain, and well past QUIC's reordering threshold (9/8 of a sub-millisecond
/// RTT), so the receiver sees real reordering rather than a little extra latency.
pub const REORDER_HOLD_DEFAULT: Duration = Duration::from_millis(10);

/// Largest rate-limiter queue accepted (64 MiB). The relay's delay queue is bounded too; this bound keeps a
/// typo from describing a queue of hours.
pub const RATE_QUEUE_BYTES_MAX: u64 = 64 << 20;

/// The faults applied to one direction of a link. The default is a healthy link.
///
/// Stages apply to each packet in this order (see [`crate::Decider::decide`]):
/// 1. `drop_all`: the packet is dropped (a one-way partition). Packets already held in a relay's delay queue
///    are dropped too when their time comes, as if they were still on the wire.
/// 2. `loss`: dropped with this probability.
/// 3. `rate`: a token bucket shapes the link; a packet that would wait behind more than the queue bound is
///    dropped, like a router's tail drop. Otherwise it leaves when the bucket allows.
/// 4. `delay` + `jitter`: each packet waits `delay` plus an extra drawn uniformly from `[0, jitter]` (the
///    chaos plans' convention; the mean is `delay + jitter / 2`). The link stays first-in first-out: a packet
///    never leaves before one that entered this direction of the relay before it (a short draw waits behind
///    an earlier long one, as in a queue), so jitter alone never reorders.
/// 5. `reorder`: with this probability a packet is held `reorder_delay` longer than its turn and does not hold
///    back the packets after it, so they overtake it.
/// 6. `duplicate`: with this probability a second copy is sent right after the packet.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LinkFault {
    /// Drop every packet (a one-way partition).
    pub drop_all: bool,
    /// Probability in `[0, 1]` of dropping a packet.
    pub loss: f64,
    /// Delay added to every packet.
    pub delay: Duration,
    /// Upper bound of an extra random delay, uniform in `[0, jitter]`, drawn per packet.
    pub jitter: Duration,
    /// Probability in `[0, 1]` of sending a packet twice.
    pub duplicate: f64,
    /// Probability in `[0, 1]` of holding a packet back so that later ones overtake it.
    pub reorder: f64,
    /// How much longer a reordered packet is held than its turn; positive when `reorder` is.
    pub reorder_delay: Duration,
    /// Bandwidth limit, if any.
    pub rate: Option<RateLimit>,
}

impl LinkFault {
    /// A healthy link.
    pub const NONE: LinkFault = LinkFault {
        drop_all: false,
        loss: 0.0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_delay: Duration::ZERO,
        rate: None,
    };

    /// A healthy link.
    pub fn none() -> LinkFault {
        LinkFault::NONE
    }

    /// A link that drops everything: one direction of a partition.
    pub fn partition() -> LinkFault {
        LinkFault {
            drop_all: true,
            ..LinkFault::NONE
        }
    }

    /// This fault plus a loss probability.
    pub fn with_loss(self, probability: f64) -> LinkFault {
        LinkFault {
            loss: probability,
            ..self
        }
    }

    /// This fault plus a delay of `delay` and an extra uniform in `[0, jitter]`.
    pub fn with_delay(self, delay: Duration, jitter: Duration) -> LinkFault {
        LinkFault {
            delay,
            jitter,
            ..self
        }
    }

    /// This fault plus a duplication probability.
    pub fn with_duplicate(self, probability: f64) -> LinkFault {
        LinkFault {
            duplicate: probability,
            ..self
        }
    }

    /// This fault plus reordering: with `probability`, a packet is held `hold` longer than its turn.
    pub fn with_reorder(self, probability: f64, hold: Duration) -> LinkFault {
        LinkFault {
            reorder: probability,
            reorder_delay: hold,
            ..self
        }
    }

    /// This fault plus a bandwidth limit.
    pub fn with_rate(self, rate: RateLimit) -> LinkFault {
        LinkFault {
            rate: Some(rate),
            ..self
        }
    }

    /// Whether this is a healthy link.
    pub fn is_none(&self) -> bool {
        *self == LinkFault::NONE
    }

    /// Checks that probabilities are in `[0, 1]`, holds are within [`HOLD_MAX`], reordering has a hold, and the
    /// rate limit is usable.
    pub fn validate(&self) -> Result<(), FaultError> {
        for (field, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(FaultError::Invalid {
                    field,
                    reason: format!("probability {p} is not in [0, 1]"),
                });
            }
        }
        for (field, hold) in [
            ("delay", self.delay),
            ("jitter", self.jitter),
            ("reorder_delay", self.reorder_delay),
        ] {
            if hold > HOLD_MAX {
                return Err(FaultError::Invalid {
                    field,
                    reason: format!("{hold:?} is longer than {HOLD_MAX:?}"),
                });
            }
        }
        if self.reorder > 0.0 && self.reorder_delay.is_zero() {
            return Err(FaultError::Invalid {
                field: "reorder_delay",
                reason: "must be positive when reorder is".into(),
            });
        }
        if let Some(rate) = &self.rate {
            rate.validate()?;
        }
        Ok(())
    }
}

/// A bandwidth limit: a token bucket in front of a bounded queue, like a router's output port.
///
/// The link drains `bytes_per_s`. After an idle period up to `burst_bytes` leave at once; beyond that packets
/// wait their turn. A packet that would wait behind more than `queue_bytes_max` bytes is dropped (tail drop),
/// so the longest queueing delay is about `queue_bytes_max / bytes_per_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Sustained rate.
    pub bytes_per_s: u64,
    /// Bytes that may leave back to back after an idle period.
    pub burst_bytes: u64,
    /// Most bytes waiting ahead of an admitted packet.
    pub queue_bytes_max: u64,
}

impl RateLimit {
    /// A limit with all three parameters.
    pub fn new(bytes_per_s: u64, burst_bytes: u64, queue_bytes_max: u64) -> RateLimit {
        RateLimit {
            bytes_per_s,
            burst_bytes,
            queue_bytes_max,
        }
    }

    /// A limit of `bytes_per_s` with a 16 KiB burst and a queue of 100 ms at that rate (at least 64 KiB): a
    /// QUIC sender's initial window passes, and queueing delay stays within what a LAN switch would add.
    pub fn per_second(bytes_per_s: u64) -> RateLimit {
        RateLimit {
            bytes_per_s,
            burst_bytes: 16 << 10,
            queue_bytes_max: (bytes_per_s / 10).clamp(64 << 10, RATE_QUEUE_BYTES_MAX),
        }
    }

    /// Checks that the rate is positive and the queue bounded.
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.bytes_per_s == 0 {
            return Err(FaultError::Invalid {
                field: "rate.bytes_per_s",
                reason: "must be positive (use a partition to stop a link)".into(),
            });
        }
        if self.queue_bytes_max > RATE_QUEUE_BYTES_MAX || self.burst_bytes > RATE_QUEUE_BYTES_MAX {
            return Err(FaultError::Invalid {
                field: "rate.queue_bytes_max",
                reason: format!(
                    "burst {} and queue {} must be at most {RATE_QUEUE_BYTES_MAX} bytes",
                    self.burst_bytes, self.queue_bytes_max
                ),
            });
        }
        Ok(())
    }
}

/// A fault description that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// A field is out of range.
    #[error("invalid link fault: {field}: {reason}")]
    Invalid {
        /// The offending field of [`LinkFault`] or [`RateLimit`].
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn builders_compose_and_validate() {
        let fault = LinkFault::none()
            .with_loss(0.1)
            .with_delay(20 * MS, 5 * MS)
            .with_duplicate(0.01)
            .with_reorder(0.05, 10 * MS)
            .with_rate(RateLimit::per_second(1 << 20));
        fault.validate().unwrap();
        assert!(!fault.is_none());
        assert!(LinkFault::default().is_none());
        assert!(LinkFault::partition().drop_all);
        LinkFault::partition().validate().unwrap();
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let cases = [
            (LinkFault::none().with_loss(1.5), "loss"),
            (LinkFault::none().with_loss(f64::NAN), "loss"),
            (LinkFault::none().with_duplicate(-0.1), "duplicate"),
            (LinkFault::none().with_delay(MS, HOLD_MAX + MS), "jitter"),
            (
                LinkFault::none().with_delay(HOLD_MAX + MS, Duration::ZERO),
                "delay",
            ),
            (
                LinkFault::none().with_reorder(0.5, Duration::ZERO),
                "reorder_delay",
            ),
            (
                LinkFault::none().with_rate(RateLimit::new(0, 0, 0)),
                "rate.bytes_per_s",
            ),
            (
                LinkFault::none().with_rate(RateLimit::new(1, 0, u64::MAX)),
                "rate.queue_bytes_max",
            ),
        ];
        for (fault, expected) in cases {
            match fault.validate() {
                Err(FaultError::Invalid { field, .. }) => assert_eq!(field, expected, "{fault:?}"),
                Ok(()) => panic!("accepted {fault:?}"),
            }
        }
    }

    #[test]
    fn per_second_queue_scales_with_the_rate_within_bounds() {
        assert_eq!(RateLimit::per_second(1000).queue_bytes_max, 64 << 10);
        assert_eq!(
            RateLimit::per_second(100 << 20).queue_bytes_max,
            (100 << 20) / 10
        );
        RateLimit::per_second(u64::MAX).validate().unwrap();
    }
}
