//! Fake clock readings: which clocks are faked, and how each is derived from the real ones.

use core::sync::atomic::{AtomicI64, Ordering};

use libc::{clockid_t, timespec};

use crate::control_block::{join_ns, split_ns, ControlBlock, Params};
use crate::real::ClockGettime;

/// Per-process floors of the monotonic-type clocks that are computed from two separate real readings (or from
/// a coarse one). The two readings are not taken at one instant, so a reader preempted between them could
/// otherwise return a value a little below the previous one; plain `CLOCK_MONOTONIC` needs no floor.
static FLOOR_MONOTONIC_COARSE_NS: AtomicI64 = AtomicI64::new(i64::MIN);
static FLOOR_MONOTONIC_RAW_NS: AtomicI64 = AtomicI64::new(i64::MIN);
static FLOOR_BOOTTIME_NS: AtomicI64 = AtomicI64::new(i64::MIN);

/// How a clock is faked.
#[derive(Clone, Copy)]
enum Family {
    /// `CLOCK_MONOTONIC`: the model itself.
    Monotonic,
    /// `CLOCK_MONOTONIC_COARSE`: the model applied to the coarse reading (same timebase, lower resolution).
    MonotonicCoarse,
    /// `CLOCK_MONOTONIC_RAW`, `CLOCK_BOOTTIME(_ALARM)`: the real reading plus the monotonic skew, floored.
    MonotonicOther(&'static AtomicI64),
    /// `CLOCK_REALTIME(_ALARM)`, `CLOCK_TAI`: the real reading plus offset and skew.
    Wall,
    /// `CLOCK_REALTIME_COARSE`: like `Wall`, with the skew taken at the coarse monotonic reading of the same tick.
    WallCoarse,
}

fn family(clock: clockid_t) -> Option<Family> {
    Some(match clock {
        libc::CLOCK_MONOTONIC => Family::Monotonic,
        libc::CLOCK_MONOTONIC_COARSE => Family::MonotonicCoarse,
        libc::CLOCK_MONOTONIC_RAW => Family::MonotonicOther(&FLOOR_MONOTONIC_RAW_NS),
        libc::CLOCK_BOOTTIME | libc::CLOCK_BOOTTIME_ALARM => {
            Family::MonotonicOther(&FLOOR_BOOTTIME_NS)
        }
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_ALARM | libc::CLOCK_TAI => Family::Wall,
        libc::CLOCK_REALTIME_COARSE => Family::WallCoarse,
        // CPU-time clocks and dynamic (per-process, per-thread, PTP) clocks are not faked.
        _ => return None,
    })
}

/// Nanoseconds of a timespec, or `None` if its nanoseconds are out of range.
#[allow(clippy::unnecessary_cast)] // time_t and c_long are i64 on the 64-bit targets, not everywhere
pub fn ns_of(ts: &timespec) -> Option<i64> {
    join_ns(ts.tv_sec as i64, ts.tv_nsec as i64)
}

/// A timespec of `ns` (normalised: nanoseconds in `0..1e9`).
#[allow(clippy::unnecessary_cast)]
pub fn timespec_of(ns: i64) -> timespec {
    let (seconds, nanoseconds) = split_ns(ns);
    // SAFETY: timespec is plain integers (plus padding on some targets): all-zero is a valid value.
    let mut ts: timespec = unsafe { core::mem::zeroed() };
    ts.tv_sec = seconds as libc::time_t;
    ts.tv_nsec = nanoseconds as libc::c_long;
    ts
}

/// A real clock reading in ns, or `None` if the clock cannot be read.
#[inline]
pub fn read_ns(real: ClockGettime, clock: clockid_t) -> Option<i64> {
    // SAFETY: all-zero is a valid timespec.
    let mut ts: timespec = unsafe { core::mem::zeroed() };
    // SAFETY: a valid pointer to a local timespec.
    if unsafe { real(clock, &mut ts) } != 0 {
        return None;
    }
    ns_of(&ts)
}

/// The fake time of `clock` and the parameters it was computed with, or `None` for a clock that is not faked
/// (or that cannot be read: the caller then calls the real function, which reports the error).
#[inline]
pub fn fake_now(
    block: &ControlBlock,
    real: ClockGettime,
    clock: clockid_t,
) -> Option<(Params, i64)> {
    match family(clock)? {
        Family::Monotonic => {
            let (params, mono) = block.read(|| read_ns(real, libc::CLOCK_MONOTONIC));
            Some((params, params.fake_mono_ns(mono?)))
        }
        Family::MonotonicCoarse => {
            let (params, coarse) = block.read(|| read_ns(real, libc::CLOCK_MONOTONIC_COARSE));
            let fake_ns = params.fake_mono_ns(coarse?);
            Some((params, floored(&FLOOR_MONOTONIC_COARSE_NS, fake_ns)))
        }
        Family::MonotonicOther(floor) => {
            let (params, (own, mono)) =
                block.read(|| (read_ns(real, clock), read_ns(real, libc::CLOCK_MONOTONIC)));
            let fake_ns = own?.saturating_add(params.mono_skew_ns(mono?));
            Some((params, floored(floor, fake_ns)))
        }
        Family::Wall => {
            let (params, (wall, mono)) =
                block.read(|| (read_ns(real, clock), read_ns(real, libc::CLOCK_MONOTONIC)));
            Some((params, params.fake_wall_ns(wall?, mono?)))
        }
        Family::WallCoarse => {
            let (params, (wall, mono)) = block.read(|| {
                (
                    read_ns(real, libc::CLOCK_REALTIME_COARSE),
                    read_ns(real, libc::CLOCK_MONOTONIC_COARSE),
                )
            });
            Some((params, params.fake_wall_ns(wall?, mono?)))
        }
    }
}

/// `value`, or the highest value this process already returned for the clock if that is higher.
#[inline]
fn floored(floor: &AtomicI64, value: i64) -> i64 {
    floor.fetch_max(value, Ordering::Relaxed).max(value)
}
