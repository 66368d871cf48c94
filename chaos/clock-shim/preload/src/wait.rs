//! Timed waits in fake time: a fake deadline waited for in real chunks.

use libc::clockid_t;

use crate::clock;
use crate::control_block::ControlBlock;
use crate::real::ClockGettime;

/// Waits until fake clock `clock` reaches `deadline_ns`. Each round re-reads the fake clock and calls
/// `wait_real(real_ns)`, which waits for at most `real_ns` real nanoseconds (the fake time left divided by the
/// rate, capped at the control block's chunk, so a rate or offset change is noticed within one chunk) and returns
/// `Some(result)` to stop early (an event, a wake-up, a signal, an error) or `None` when its chunk timed out.
/// Returns `None` once the deadline is reached. Bounded by time: every round waits at least 1 ns of real time
/// while fake time advances at no less than `RATE_MIN`.
pub fn until<R>(
    block: &ControlBlock,
    real: ClockGettime,
    clock: clockid_t,
    deadline_ns: i64,
    mut wait_real: impl FnMut(i64) -> Option<R>,
) -> Option<R> {
    loop {
        let (params, now_ns) = clock::fake_now(block, real, clock)?;
        let real_ns = params.real_wait_ns(deadline_ns.saturating_sub(now_ns));
        if real_ns == 0 {
            return None;
        }
        if let Some(result) = wait_real(real_ns) {
            return Some(result);
        }
    }
}

/// The fake `CLOCK_MONOTONIC` deadline `timeout_ns` from now (relative timeouts measure elapsed time).
pub fn relative_deadline(block: &ControlBlock, real: ClockGettime, timeout_ns: i64) -> Option<i64> {
    clock::fake_now(block, real, libc::CLOCK_MONOTONIC)
        .map(|(_, now_ns)| now_ns.saturating_add(timeout_ns))
}

/// The fake time left until `deadline_ns` on `clock`, never negative.
pub fn remaining_ns(
    block: &ControlBlock,
    real: ClockGettime,
    clock: clockid_t,
    deadline_ns: i64,
) -> i64 {
    clock::fake_now(block, real, clock)
        .map_or(0, |(_, now_ns)| deadline_ns.saturating_sub(now_ns).max(0))
}
