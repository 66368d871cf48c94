//! The exported functions that replace libc's. Each one falls back to the real function when no control block
//! is mapped, or when its arguments are of a kind it does not translate (null or infinite timeouts, invalid
//! values the kernel must reject, clocks that are not faked), so callers see the real errors.
//!
//! Safety of every function here: the same contract as the libc function of the same name.

use core::ptr::null_mut;

use libc::{
    c_int, c_long, c_uint, c_void, clockid_t, epoll_event, nfds_t, pollfd, sigset_t, time_t,
    timespec, timeval, CLOCK_MONOTONIC, CLOCK_REALTIME, EINTR, ENOSYS, ETIMEDOUT,
};

use crate::clock::{self, ns_of, timespec_of};
use crate::control_block::{split_ns, ControlBlock, RATE_ONE_FIXED};
use crate::real::{self, ClockGettime};
use crate::{control, errno, set_errno, wait};

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_US: i64 = 1_000;
const NS_PER_S: i64 = 1_000_000_000;

/// The control block and the real `clock_gettime`, when clocks are faked.
#[inline]
fn faking() -> Option<(&'static ControlBlock, ClockGettime)> {
    Some((control()?, real::clock_gettime()?))
}

/// Fake `CLOCK_REALTIME` in ns, when clocks are faked.
#[inline]
fn fake_wall_ns() -> Option<i64> {
    let (block, real) = faking()?;
    clock::fake_now(block, real, CLOCK_REALTIME).map(|(_, ns)| ns)
}

/// A wait's millisecond timeout rounded up, at least 1 ms (0 would not wait at all).
fn ms_ceil(real_ns: i64) -> c_int {
    let ms = real_ns.saturating_add(NS_PER_MS - 1) / NS_PER_MS;
    c_int::try_from(ms.max(1)).unwrap_or(c_int::MAX)
}

// ---------------------------------------------------------------------------------------------------------------
// Clock reads.

/// `clock_gettime`: fake time for the realtime and monotonic families, real time for the others.
///
/// # Safety
/// As libc's `clock_gettime`.
#[no_mangle]
pub unsafe extern "C" fn clock_gettime(clock: clockid_t, ts: *mut timespec) -> c_int {
    let Some(real) = real::clock_gettime() else {
        set_errno(ENOSYS);
        return -1;
    };
    if !ts.is_null() {
        if let Some(block) = control() {
            if let Some((_, ns)) = clock::fake_now(block, real, clock) {
                // SAFETY: non-null, and the caller provides a writable timespec.
                unsafe { *ts = timespec_of(ns) };
                return 0;
            }
        }
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real(clock, ts) }
}

/// `gettimeofday`: the fake wall clock in microseconds.
///
/// # Safety
/// As libc's `gettimeofday`.
#[no_mangle]
pub unsafe extern "C" fn gettimeofday(tv: *mut timeval, tz: *mut c_void) -> c_int {
    let Some(real_gettimeofday) = real::gettimeofday() else {
        set_errno(ENOSYS);
        return -1;
    };
    if !tv.is_null() {
        if let Some(ns) = fake_wall_ns() {
            if !tz.is_null() {
                // The obsolete time zone argument: let the real function fill it.
                // SAFETY: the caller's tz pointer.
                let result = unsafe { real_gettimeofday(null_mut(), tz) };
                if result != 0 {
                    return result;
                }
            }
            let (seconds, nanoseconds) = split_ns(ns);
            // SAFETY: non-null, and the caller provides a writable timeval.
            unsafe {
                (*tv).tv_sec = seconds as time_t;
                (*tv).tv_usec = (nanoseconds / NS_PER_US) as libc::suseconds_t;
            }
            return 0;
        }
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real_gettimeofday(tv, tz) }
}

/// `time`: the fake wall clock in whole seconds.
///
/// # Safety
/// As libc's `time`.
#[no_mangle]
pub unsafe extern "C" fn time(out: *mut time_t) -> time_t {
    if let Some(ns) = fake_wall_ns() {
        let seconds = split_ns(ns).0 as time_t;
        if !out.is_null() {
            // SAFETY: non-null, and the caller provides a writable time_t.
            unsafe { *out = seconds };
        }
        return seconds;
    }
    match real::time() {
        // SAFETY: the caller's argument, unchanged.
        Some(real_time) => unsafe { real_time(out) },
        None => {
            set_errno(ENOSYS);
            -1
        }
    }
}

/// `timespec_get` (C11): the fake wall clock for `TIME_UTC`.
///
/// # Safety
/// As libc's `timespec_get`.
#[no_mangle]
pub unsafe extern "C" fn timespec_get(ts: *mut timespec, base: c_int) -> c_int {
    const TIME_UTC: c_int = 1;
    if base == TIME_UTC && !ts.is_null() {
        if let Some(ns) = fake_wall_ns() {
            // SAFETY: non-null, and the caller provides a writable timespec.
            unsafe { *ts = timespec_of(ns) };
            return base;
        }
    }
    match real::timespec_get() {
        // SAFETY: the caller's arguments, unchanged.
        Some(real_timespec_get) => unsafe { real_timespec_get(ts, base) },
        None => 0,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Waits with a relative timeout: a fake deadline waited for in real chunks.

/// Runs a wait whose real form takes a timeout in milliseconds and returns 0 on timeout, until `timeout_ms` of
/// fake time has passed. `None` when the wait is not translated (clocks not faked, or a timeout of 0 or infinite).
fn scaled_ms(timeout_ms: c_int, mut call: impl FnMut(c_int) -> c_int) -> Option<c_int> {
    if timeout_ms <= 0 {
        return None;
    }
    let (block, real) = faking()?;
    let deadline_ns = wait::relative_deadline(block, real, i64::from(timeout_ms) * NS_PER_MS)?;
    let result = wait::until(block, real, CLOCK_MONOTONIC, deadline_ns, |real_ns| {
        let result = call(ms_ceil(real_ns));
        (result != 0).then_some(result)
    });
    Some(result.unwrap_or(0))
}

/// Like [`scaled_ms`] for a wait whose real form takes a relative timespec (null is infinite).
fn scaled_timespec(
    timeout: *const timespec,
    mut call: impl FnMut(&timespec) -> c_int,
) -> Option<c_int> {
    if timeout.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller provides a readable timespec.
    let timeout_ns = ns_of(unsafe { &*timeout })?;
    if timeout_ns <= 0 {
        return None;
    }
    let (block, real) = faking()?;
    let deadline_ns = wait::relative_deadline(block, real, timeout_ns)?;
    let result = wait::until(block, real, CLOCK_MONOTONIC, deadline_ns, |real_ns| {
        let result = call(&timespec_of(real_ns));
        (result != 0).then_some(result)
    });
    Some(result.unwrap_or(0))
}

/// `epoll_wait` with its timeout in fake milliseconds.
///
/// # Safety
/// As libc's `epoll_wait`.
#[no_mangle]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    maxevents: c_int,
    timeout: c_int,
) -> c_int {
    let Some(real_wait) = real::epoll_wait() else {
        set_errno(ENOSYS);
        return -1;
    };
    // SAFETY (both calls): the caller's arguments, with a shorter timeout.
    scaled_ms(timeout, |ms| unsafe {
        real_wait(epfd, events, maxevents, ms)
    })
    .unwrap_or_else(|| unsafe { real_wait(epfd, events, maxevents, timeout) })
}

/// `epoll_pwait` with its timeout in fake milliseconds (the signal mask applies during every chunk).
///
/// # Safety
/// As libc's `epoll_pwait`.
#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut epoll_event,
    maxevents: c_int,
    timeout: c_int,
    sigmask: *const sigset_t,
) -> c_int {
    let Some(real_wait) = real::epoll_pwait() else {
        set_errno(ENOSYS);
        return -1;
    };
    // SAFETY (both calls): the caller's arguments, with a shorter timeout.
    scaled_ms(timeout, |ms| unsafe {
        real_wait(epfd, events, maxevents, ms, sigmask)
    })
    .unwrap_or_else(|| unsafe { real_wait(epfd, events, maxevents, timeout, sigmask) })
}

/// `epoll_pwait2` with its timeout in fake time.
///
/// # Safety
/// As libc's `epoll_pwait2`.
#[no_mangle]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    events: *mut epoll_event,
    maxevents: c_int,
    timeout: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    let Some(real_wait) = real::epoll_pwait2() else {
        set_errno(ENOSYS);
        return -1;
    };
    // SAFETY (both calls): the caller's arguments, with a shorter timeout.
    scaled_timespec(timeout, |chunk| unsafe {
        real_wait(epfd, events, maxevents, chunk, sigmask)
    })
    .unwrap_or_else(|| unsafe { real_wait(epfd, events, maxevents, timeout, sigmask) })
}

/// `poll` with its timeout in fake milliseconds.
///
/// # Safety
/// As libc's `poll`.
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    let Some(real_poll) = real::poll() else {
        set_errno(ENOSYS);
        return -1;
    };
    // SAFETY (both calls): the caller's arguments, with a shorter timeout.
    scaled_ms(timeout, |ms| unsafe { real_poll(fds, nfds, ms) })
        .unwrap_or_else(|| unsafe { real_poll(fds, nfds, timeout) })
}

/// `ppoll` with its timeout in fake time.
///
/// # Safety
/// As libc's `ppoll`.
#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    let Some(real_ppoll) = real::ppoll() else {
        set_errno(ENOSYS);
        return -1;
    };
    // SAFETY (both calls): the caller's arguments, with a shorter timeout.
    scaled_timespec(timeout, |chunk| unsafe {
        real_ppoll(fds, nfds, chunk, sigmask)
    })
    .unwrap_or_else(|| unsafe { real_ppoll(fds, nfds, timeout, sigmask) })
}

// ---------------------------------------------------------------------------------------------------------------
// Sleeps.

/// A relative sleep of `req` in fake time, made of real sleeps by `sleep_real` (nanosleep conventions: 0, or -1
/// with errno). On EINTR, `rem` (if not null) gets the fake time left. `None` when not translated.
fn scaled_sleep(
    req: *const timespec,
    rem: *mut timespec,
    mut sleep_real: impl FnMut(&timespec) -> c_int,
) -> Option<c_int> {
    if req.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller provides a readable timespec.
    let sleep_ns = ns_of(unsafe { &*req })?;
    if sleep_ns <= 0 {
        return None;
    }
    let (block, real) = faking()?;
    let deadline_ns = wait::relative_deadline(block, real, sleep_ns)?;
    let result = wait::until(block, real, CLOCK_MONOTONIC, deadline_ns, |real_ns| {
        let result = sleep_real(&timespec_of(real_ns));
        (result != 0).then_some(result)
    });
    let Some(result) = result else { return Some(0) };
    let error = errno();
    if error == EINTR && !rem.is_null() {
        let left_ns = wait::remaining_ns(block, real, CLOCK_MONOTONIC, deadline_ns);
        // SAFETY: non-null, and the caller provides a writable timespec.
        unsafe { *rem = timespec_of(left_ns) };
    }
    set_errno(error);
    Some(result)
}

/// `nanosleep` in fake time.
///
/// # Safety
/// As libc's `nanosleep`.
#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    let Some(real_sleep) = real::nanosleep() else {
        set_errno(ENOSYS);
        return -1;
    };
    // SAFETY (both calls): a valid chunk, or the caller's arguments unchanged.
    scaled_sleep(req, rem, |chunk| unsafe { real_sleep(chunk, null_mut()) })
        .unwrap_or_else(|| unsafe { real_sleep(req, rem) })
}

/// `clock_nanosleep` in fake time: relative sleeps like `nanosleep`, absolute ones (`TIMER_ABSTIME`) until the
/// fake clock reaches the deadline, re-read after every chunk (so a wall-clock step during the wait counts).
///
/// # Safety
/// As libc's `clock_nanosleep`.
#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let Some(real_sleep) = real::clock_nanosleep() else {
        return ENOSYS;
    };
    // The clocks clock_nanosleep accepts without privileges; the *_ALARM ones pass through (they need
    // CAP_WAKE_ALARM, and the real call should be the one to refuse).
    let translated = matches!(
        clock,
        CLOCK_REALTIME | CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI
    );
    if translated && !req.is_null() {
        // SAFETY: non-null, and the caller provides a readable timespec.
        if let (Some(req_ns), Some((block, real))) = (ns_of(unsafe { &*req }), faking()) {
            // Each chunk: a relative real sleep on CLOCK_MONOTONIC; it returns the error number, 0 when done.
            let chunk = |real_ns: i64| {
                // SAFETY: a valid timespec and no remainder pointer.
                let error =
                    unsafe { real_sleep(CLOCK_MONOTONIC, 0, &timespec_of(real_ns), null_mut()) };
                (error != 0).then_some(error)
            };
            if flags & libc::TIMER_ABSTIME != 0 {
                return wait::until(block, real, clock, req_ns, chunk).unwrap_or(0);
            }
            if req_ns > 0 {
                if let Some(deadline_ns) = wait::relative_deadline(block, real, req_ns) {
                    let Some(error) = wait::until(block, real, CLOCK_MONOTONIC, deadline_ns, chunk)
                    else {
                        return 0;
                    };
                    if error == EINTR && !rem.is_null() {
                        let left_ns = wait::remaining_ns(block, real, CLOCK_MONOTONIC, deadline_ns);
                        // SAFETY: non-null, and the caller provides a writable timespec.
                        unsafe { *rem = timespec_of(left_ns) };
                    }
                    return error;
                }
            }
        }
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real_sleep(clock, flags, req, rem) }
}

/// `sleep` in fake time (glibc's own calls nanosleep internally, where no preload can see it).
///
/// # Safety
/// As libc's `sleep`.
#[no_mangle]
pub unsafe extern "C" fn sleep(seconds: c_uint) -> c_uint {
    if let Some(real_sleep) = real::nanosleep() {
        let req = timespec_of(i64::from(seconds) * NS_PER_S);
        let mut rem = timespec_of(0);
        // SAFETY: valid timespecs.
        if let Some(result) = scaled_sleep(&req, &mut rem, |chunk| unsafe {
            real_sleep(chunk, null_mut())
        }) {
            if result == 0 {
                return 0;
            }
            // Interrupted: the whole seconds left, rounded up as glibc does.
            let (left_s, left_ns) = (rem.tv_sec, rem.tv_nsec);
            return c_uint::try_from(left_s + i64::from(left_ns > 0)).unwrap_or(seconds);
        }
    }
    match real::sleep() {
        // SAFETY: the caller's argument, unchanged.
        Some(real_sleep) => unsafe { real_sleep(seconds) },
        None => seconds,
    }
}

/// `usleep` in fake time.
///
/// # Safety
/// As libc's `usleep`.
#[no_mangle]
pub unsafe extern "C" fn usleep(microseconds: libc::useconds_t) -> c_int {
    if let Some(real_sleep) = real::nanosleep() {
        let req = timespec_of(i64::from(microseconds) * NS_PER_US);
        // SAFETY: a valid timespec.
        if let Some(result) = scaled_sleep(&req, null_mut(), |chunk| unsafe {
            real_sleep(chunk, null_mut())
        }) {
            return result;
        }
    }
    match real::usleep() {
        // SAFETY: the caller's argument, unchanged.
        Some(real_usleep) => unsafe { real_usleep(microseconds) },
        None => {
            set_errno(ENOSYS);
            -1
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// futex waits, reached through libc's `syscall` (Rust's std parks threads, and implements Mutex, Condvar and
// thread::park_timeout, with `syscall(SYS_futex, ...)`; so do parking_lot and tokio's blocking pool).

/// `syscall`, declared with six fixed arguments: on x86_64 and aarch64 Linux a variadic caller passes integer
/// arguments exactly where a fixed-argument callee reads them (glibc's own `syscall` reads all six the same way).
/// Only `SYS_futex` waits with a timeout are changed; every other call goes to the real `syscall` untouched.
///
/// # Safety
/// As libc's `syscall`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[no_mangle]
pub unsafe extern "C" fn syscall(
    number: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    let Some(real_syscall) = real::syscall() else {
        set_errno(ENOSYS);
        return -1;
    };
    if number == libc::SYS_futex {
        if let Some(result) = scaled_futex(real_syscall, [a1, a2, a3, a4, a5, a6]) {
            return result;
        }
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real_syscall(number, a1, a2, a3, a4, a5, a6) }
}

/// A futex wait with a timeout, in fake time: `FUTEX_WAIT` (relative timeout) and `FUTEX_WAIT_BITSET` (absolute
/// deadline on CLOCK_MONOTONIC, or CLOCK_REALTIME with `FUTEX_CLOCK_REALTIME`). Re-waiting after a chunk is safe
/// for futexes: the kernel compares the word with the expected value on every call, so a wake-up that came
/// between two chunks shows as EAGAIN. `None` for everything else (other operations, no timeout).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn scaled_futex(
    real_syscall: unsafe extern "C" fn(c_long, ...) -> c_long,
    args: [c_long; 6],
) -> Option<c_long> {
    let [uaddr, op, value, timeout, uaddr2, value3] = args;
    let timeout = timeout as *const timespec;
    if timeout.is_null() {
        return None;
    }
    let op = c_int::try_from(op).ok()?;
    let command = op & !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);
    if command != libc::FUTEX_WAIT && command != libc::FUTEX_WAIT_BITSET {
        return None;
    }
    // SAFETY: non-null, and the caller provides a readable timespec.
    let timeout_ns = ns_of(unsafe { &*timeout })?;
    if timeout_ns <= 0 {
        return None;
    }
    let (block, real) = faking()?;
    let (clock, deadline_ns) = if command == libc::FUTEX_WAIT {
        (
            CLOCK_MONOTONIC,
            wait::relative_deadline(block, real, timeout_ns)?,
        )
    } else if op & libc::FUTEX_CLOCK_REALTIME != 0 {
        (CLOCK_REALTIME, timeout_ns)
    } else {
        (CLOCK_MONOTONIC, timeout_ns)
    };
    let result = wait::until(block, real, clock, deadline_ns, |real_ns| {
        let (chunk_op, chunk) = if command == libc::FUTEX_WAIT {
            (op, timespec_of(real_ns))
        } else {
            // FUTEX_WAIT_BITSET takes an absolute deadline: real CLOCK_MONOTONIC now + the chunk.
            let Some(now_ns) = clock::read_ns(real, CLOCK_MONOTONIC) else {
                return Some(-1);
            };
            (
                op & !libc::FUTEX_CLOCK_REALTIME,
                timespec_of(now_ns.saturating_add(real_ns)),
            )
        };
        let chunk_ptr: *const timespec = &chunk;
        // SAFETY: the caller's futex arguments with a valid timeout of our own.
        let result = unsafe {
            real_syscall(
                libc::SYS_futex,
                uaddr,
                c_long::from(chunk_op),
                value,
                chunk_ptr as c_long,
                uaddr2,
                value3,
            )
        };
        (result != -1 || errno() != ETIMEDOUT).then_some(result)
    });
    Some(result.unwrap_or_else(|| {
        set_errno(ETIMEDOUT);
        -1
    }))
}

// ---------------------------------------------------------------------------------------------------------------
// pthread condition variables (C and C++ programs; Rust's std does not use them on Linux).

/// A condition-variable wait until fake deadline `abstime` on `clock` (or, when `None`, on the clock the deadline
/// is obviously meant for: the variable's clock attribute is not readable through any public interface, and a
/// realtime deadline is decades away from any monotonic one). `wait_real(deadline)` waits on the variable's own
/// clock. At rate 1 the deadline is translated once and waited in one piece. At other rates one chunk is waited
/// and, if the fake deadline is not reached yet, 0 is returned: a spurious wake-up, which POSIX allows, rather
/// than waiting again, which could lose a signal sent between two waits by a thread not holding the mutex.
fn scaled_cond_wait(
    abstime: *const timespec,
    clock: Option<clockid_t>,
    mut wait_real: impl FnMut(&timespec) -> c_int,
) -> Option<c_int> {
    if abstime.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller provides a readable timespec.
    let deadline_ns = ns_of(unsafe { &*abstime })?;
    let (block, real) = faking()?;
    let clock = match clock {
        Some(clock @ (CLOCK_REALTIME | CLOCK_MONOTONIC)) => clock,
        Some(_) => return None,
        None => {
            let (_, wall_ns) = clock::fake_now(block, real, CLOCK_REALTIME)?;
            let (_, mono_ns) = clock::fake_now(block, real, CLOCK_MONOTONIC)?;
            let to_wall = (i128::from(deadline_ns) - i128::from(wall_ns)).unsigned_abs();
            let to_mono = (i128::from(deadline_ns) - i128::from(mono_ns)).unsigned_abs();
            if to_wall <= to_mono {
                CLOCK_REALTIME
            } else {
                CLOCK_MONOTONIC
            }
        }
    };
    let (params, now_ns) = clock::fake_now(block, real, clock)?;
    let left_ns = deadline_ns.saturating_sub(now_ns);
    if left_ns <= 0 {
        return Some(ETIMEDOUT);
    }
    let real_now_ns = clock::read_ns(real, clock)?;
    if params.rate_fixed == RATE_ONE_FIXED {
        return Some(wait_real(&timespec_of(real_now_ns.saturating_add(left_ns))));
    }
    let result = wait_real(&timespec_of(
        real_now_ns.saturating_add(params.real_wait_ns(left_ns)),
    ));
    if result != ETIMEDOUT {
        return Some(result);
    }
    let reached = wait::remaining_ns(block, real, clock, deadline_ns) == 0;
    Some(if reached { ETIMEDOUT } else { 0 })
}

/// `pthread_cond_timedwait` with its deadline in fake time.
///
/// # Safety
/// As libc's `pthread_cond_timedwait`.
#[no_mangle]
pub unsafe extern "C" fn pthread_cond_timedwait(
    cond: *mut libc::pthread_cond_t,
    mutex: *mut libc::pthread_mutex_t,
    abstime: *const timespec,
) -> c_int {
    let Some(real_wait) = real::pthread_cond_timedwait() else {
        return ENOSYS;
    };
    // SAFETY (both calls): the caller's condition variable and mutex, with a translated deadline.
    scaled_cond_wait(abstime, None, |deadline| unsafe {
        real_wait(cond, mutex, deadline)
    })
    .unwrap_or_else(|| unsafe { real_wait(cond, mutex, abstime) })
}

/// `pthread_cond_clockwait` (glibc 2.30) with its deadline in fake time.
///
/// # Safety
/// As libc's `pthread_cond_clockwait`.
#[no_mangle]
pub unsafe extern "C" fn pthread_cond_clockwait(
    cond: *mut libc::pthread_cond_t,
    mutex: *mut libc::pthread_mutex_t,
    clock: clockid_t,
    abstime: *const timespec,
) -> c_int {
    let Some(real_wait) = real::pthread_cond_clockwait() else {
        return ENOSYS;
    };
    // SAFETY (both calls): the caller's condition variable and mutex, with a translated deadline.
    scaled_cond_wait(abstime, Some(clock), |deadline| unsafe {
        real_wait(cond, mutex, clock, deadline)
    })
    .unwrap_or_else(|| unsafe { real_wait(cond, mutex, clock, abstime) })
}
