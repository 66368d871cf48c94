//! The relay forwards datagrams whole: it reads no header, only a datagram's length and arrival time, and the
//! fault a plan set on the link. This target drives the relay's pure core (`netproxy::Decider` with its rate
//! limiter) with any valid fault and any sequence of (arrival, length): never a panic; a partitioned link drops
//! everything; a healthy one forwards everything at once; nothing leaves before it arrives; packets that keep
//! their turn leave first-in first-out.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use netproxy::{Decider, Decision, DropCause, LinkFault, RateLimit, Shaper, DATAGRAM_BYTES_MAX};
use std::time::Duration;

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    drop_all: bool,
    loss: u16,
    delay_us: u32,
    jitter_us: u32,
    duplicate: u16,
    reorder: u16,
    reorder_us: u32,
    rate: Option<(u64, u32, u32)>,
    packets: Vec<(u32, u16)>,
}

fn probability(raw: u16) -> f64 {
    f64::from(raw) / f64::from(u16::MAX)
}

fuzz_target!(|input: Input| {
    let mut fault = LinkFault::none()
        .with_loss(probability(input.loss))
        .with_delay(
            Duration::from_micros(u64::from(input.delay_us)),
            Duration::from_micros(u64::from(input.jitter_us)),
        )
        .with_duplicate(probability(input.duplicate))
        .with_reorder(
            probability(input.reorder),
            Duration::from_micros(u64::from(input.reorder_us)),
        );
    if let Some((bytes_per_s, burst, queue)) = input.rate {
        fault = fault.with_rate(RateLimit::new(
            bytes_per_s,
            u64::from(burst),
            u64::from(queue),
        ));
    }
    fault.drop_all = input.drop_all;
    if fault.validate().is_err() {
        return;
    }
    let healthy = fault.is_none();
    let mut decider = Decider::new(input.seed);
    let mut shaper = Shaper::new();
    let mut now = Duration::ZERO;
    let mut last_in_turn = Duration::ZERO;
    for (gap_ns, len) in input.packets.into_iter().take(4096) {
        now += Duration::from_nanos(u64::from(gap_ns));
        let len = usize::from(len).min(DATAGRAM_BYTES_MAX);
        let decision = decider.decide(&fault, now, len, Some(&mut shaper));
        if fault.drop_all {
            assert_eq!(decision, Decision::Drop(DropCause::Partition));
            continue;
        }
        if healthy {
            assert_eq!(
                decision,
                Decision::Forward {
                    at: now,
                    reordered: false
                }
            );
        }
        assert!(decision.copies() <= 2);
        if let Some(at) = decision.at() {
            assert!(at >= now, "leaves at {at:?} before it arrived at {now:?}");
            if !decision.reordered() {
                assert!(
                    at >= last_in_turn,
                    "first-in first-out broken: {at:?} after {last_in_turn:?}"
                );
                last_in_turn = at;
            }
        }
    }
});
