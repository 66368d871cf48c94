//! clock-probe: a small program whose clocks and waits the integration tests watch under the preload library.
//!
//! It measures real time with raw `syscall(SYS_clock_gettime)` / `syscall(SYS_nanosleep)`, which the shim does not
//! change, and reports what the ordinary functions (which the shim does change) said, as `key=value` lines:
//!
//! ```text
//! clock-probe clocks                          every faked clock, bracketed by real readings
//! clock-probe rate MS                         fake monotonic and wall time elapsed during MS real ms
//! clock-probe ticks MS PERIOD_MS KIND         how many PERIOD_MS waits of KIND complete in MS real ms
//! clock-probe backward-check MS               monotonic-type clocks sampled in a loop: backward steps seen
//! clock-probe sleep-until CLOCK MS            clock_nanosleep(TIMER_ABSTIME) to fake now + MS: real time taken
//! clock-probe cond-until CLOCK MS             pthread_cond_timedwait to fake now + MS: real time taken
//! clock-probe condvar MS                      std Condvar::wait_timeout(MS) (a futex wait): real time taken
//! ```
//! KIND: sleep, usleep, poll, ppoll, epoll, epoll-pwait, epoll-pwait2, clock-nanosleep, clock-nanosleep-abs,
//! condvar, park, futex-wait, pthread-cond, pthread-cond-monotonic. CLOCK: realtime or monotonic.

use std::process::ExitCode;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libc::{c_int, clockid_t, timespec};

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_S: i64 = 1_000_000_000;

extern "C" {
    // Not declared by the libc crate for every target; glibc has both.
    fn timespec_get(ts: *mut timespec, base: c_int) -> c_int;
    fn epoll_pwait2(
        epfd: c_int,
        events: *mut libc::epoll_event,
        maxevents: c_int,
        timeout: *const timespec,
        sigmask: *const libc::sigset_t,
    ) -> c_int;
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["clocks"] => {
            clocks();
            Ok(())
        }
        ["rate", ms] => number(ms).map(rate),
        ["ticks", ms, period_ms, kind] => number(ms)
            .and_then(|ms| number(period_ms).and_then(|period_ms| ticks(ms, period_ms, kind))),
        ["backward-check", ms] => number(ms).map(backward_check),
        ["sleep-until", clock, ms] => {
            clock_named(clock).and_then(|c| number(ms).map(|ms| sleep_until(c, ms)))
        }
        ["cond-until", clock, ms] => {
            clock_named(clock).and_then(|c| number(ms).map(|ms| cond_until(c, ms)))
        }
        ["condvar", ms] => number(ms).map(condvar),
        _ => Err(
            "usage: clock-probe clocks | rate MS | ticks MS PERIOD_MS KIND | backward-check MS | \
                  sleep-until CLOCK MS | cond-until CLOCK MS | condvar MS"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("clock-probe: {message}");
            ExitCode::from(2)
        }
    }
}

fn number(text: &str) -> Result<i64, String> {
    text.parse()
        .map_err(|e| format!("bad number {text:?}: {e}"))
}

fn clock_named(name: &str) -> Result<clockid_t, String> {
    match name {
        "realtime" => Ok(libc::CLOCK_REALTIME),
        "monotonic" => Ok(libc::CLOCK_MONOTONIC),
        other => Err(format!("unknown clock {other:?} (realtime or monotonic)")),
    }
}

fn ns_of(ts: &timespec) -> i64 {
    ts.tv_sec * NS_PER_S + ts.tv_nsec
}

fn timespec_of(ns: i64) -> timespec {
    // SAFETY: all-zero is a valid timespec.
    let mut ts: timespec = unsafe { std::mem::zeroed() };
    ts.tv_sec = ns.div_euclid(NS_PER_S);
    ts.tv_nsec = ns.rem_euclid(NS_PER_S);
    ts
}

/// The clock as the program sees it (through the shim when preloaded).
fn fake_ns(clock: clockid_t) -> i64 {
    // SAFETY: all-zero is a valid timespec.
    let mut ts: timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer.
    let result = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(result, 0, "clock_gettime({clock}) failed");
    ns_of(&ts)
}

/// The kernel's clock, through a raw system call that no preload changes.
fn real_ns(clock: clockid_t) -> i64 {
    // SAFETY: all-zero is a valid timespec.
    let mut ts: timespec = unsafe { std::mem::zeroed() };
    // SAFETY: SYS_clock_gettime with a valid pointer.
    let result = unsafe { libc::syscall(libc::SYS_clock_gettime, clock, &mut ts as *mut timespec) };
    assert_eq!(result, 0, "SYS_clock_gettime({clock}) failed");
    ns_of(&ts)
}

/// Sleeps `ms` real milliseconds (raw system call).
fn real_sleep_ms(ms: i64) {
    let ts = timespec_of(ms * NS_PER_MS);
    // SAFETY: SYS_nanosleep with a valid request and no remainder.
    unsafe {
        libc::syscall(
            libc::SYS_nanosleep,
            &ts as *const timespec,
            std::ptr::null_mut::<timespec>(),
        )
    };
}

fn clocks() {
    let real_clocks = [
        ("realtime", libc::CLOCK_REALTIME),
        ("monotonic", libc::CLOCK_MONOTONIC),
        ("monotonic_raw", libc::CLOCK_MONOTONIC_RAW),
        ("boottime", libc::CLOCK_BOOTTIME),
    ];
    for (name, clock) in real_clocks {
        println!("real_{name}_before_ns={}", real_ns(clock));
    }
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: a valid timeval and no time zone.
    unsafe { libc::gettimeofday(&mut tv, std::ptr::null_mut()) };
    // SAFETY: a null argument is allowed.
    let time_s = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: all-zero is a valid timespec; TIME_UTC is 1.
    let mut ts: timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer.
    unsafe { timespec_get(&mut ts, 1) };
    let system_time_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let faked = [
        ("realtime", libc::CLOCK_REALTIME),
        ("realtime_coarse", libc::CLOCK_REALTIME_COARSE),
        ("tai", libc::CLOCK_TAI),
        ("monotonic", libc::CLOCK_MONOTONIC),
        ("monotonic_coarse", libc::CLOCK_MONOTONIC_COARSE),
        ("monotonic_raw", libc::CLOCK_MONOTONIC_RAW),
        ("boottime", libc::CLOCK_BOOTTIME),
    ];
    let readings: Vec<(&str, i64)> = faked
        .iter()
        .map(|&(name, clock)| (name, fake_ns(clock)))
        .collect();
    for (name, clock) in real_clocks {
        println!("real_{name}_after_ns={}", real_ns(clock));
    }
    for (name, ns) in readings {
        println!("{name}_ns={ns}");
    }
    println!(
        "gettimeofday_ns={}",
        tv.tv_sec * NS_PER_S + tv.tv_usec * 1_000
    );
    println!("time_s={time_s}");
    println!("timespec_get_ns={}", ns_of(&ts));
    println!("system_time_ns={system_time_ns}");
}

fn rate(ms: i64) {
    let (mono_0, wall_0, real_0) = (
        fake_ns(libc::CLOCK_MONOTONIC),
        fake_ns(libc::CLOCK_REALTIME),
        real_ns(libc::CLOCK_MONOTONIC),
    );
    let instant_0 = Instant::now();
    real_sleep_ms(ms);
    let instant_elapsed = instant_0.elapsed();
    let (mono_1, wall_1, real_1) = (
        fake_ns(libc::CLOCK_MONOTONIC),
        fake_ns(libc::CLOCK_REALTIME),
        real_ns(libc::CLOCK_MONOTONIC),
    );
    println!("fake_elapsed_ns={}", mono_1 - mono_0);
    println!("wall_elapsed_ns={}", wall_1 - wall_0);
    println!("instant_elapsed_ns={}", instant_elapsed.as_nanos());
    println!("real_elapsed_ns={}", real_1 - real_0);
}

/// Counts completed waits of one kind during `ms` real milliseconds.
fn ticks(ms: i64, period_ms: i64, kind: &str) -> Result<(), String> {
    let mut wait = waiter(kind, period_ms)?;
    let start = real_ns(libc::CLOCK_MONOTONIC);
    let mut count = 0u64;
    while real_ns(libc::CLOCK_MONOTONIC) - start < ms * NS_PER_MS {
        wait();
        count += 1;
    }
    println!("ticks={count}");
    Ok(())
}

/// One wait of `period_ms` of the program's time, done the way `kind` says.
fn waiter(kind: &str, period_ms: i64) -> Result<Box<dyn FnMut()>, String> {
    let period = Duration::from_millis(period_ms as u64);
    let period_ns = period_ms * NS_PER_MS;
    let period_c = period_ms as c_int;
    let relative = timespec_of(period_ns);
    // SAFETY: epoll_create1 with no flags.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 1];
    Ok(match kind {
        "sleep" => Box::new(move || std::thread::sleep(period)),
        // SAFETY (all the closures below): valid arguments; every wait has a finite timeout.
        "usleep" => Box::new(move || unsafe {
            libc::usleep((period_ms * 1_000) as libc::useconds_t);
        }),
        "poll" => Box::new(move || unsafe {
            libc::poll(std::ptr::null_mut(), 0, period_c);
        }),
        "ppoll" => Box::new(move || unsafe {
            libc::ppoll(std::ptr::null_mut(), 0, &relative, std::ptr::null());
        }),
        "epoll" => Box::new(move || unsafe {
            libc::epoll_wait(epfd, events.as_mut_ptr(), 1, period_c);
        }),
        "epoll-pwait" => Box::new(move || unsafe {
            libc::epoll_pwait(epfd, events.as_mut_ptr(), 1, period_c, std::ptr::null());
        }),
        "epoll-pwait2" => Box::new(move || unsafe {
            epoll_pwait2(epfd, events.as_mut_ptr(), 1, &relative, std::ptr::null());
        }),
        "clock-nanosleep" => Box::new(move || unsafe {
            libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &relative, std::ptr::null_mut());
        }),
        "clock-nanosleep-abs" => Box::new(move || {
            let deadline = timespec_of(fake_ns(libc::CLOCK_MONOTONIC) + period_ns);
            unsafe {
                libc::clock_nanosleep(
                    libc::CLOCK_MONOTONIC,
                    libc::TIMER_ABSTIME,
                    &deadline,
                    std::ptr::null_mut(),
                )
            };
        }),
        "condvar" => {
            let pair = (Mutex::new(()), Condvar::new());
            Box::new(move || {
                let guard = pair.0.lock().unwrap();
                drop(pair.1.wait_timeout_while(guard, period, |_| true).unwrap());
            })
        }
        "park" => Box::new(move || {
            // park_timeout may return early (spuriously): finish the period on the program's clock.
            let deadline = Instant::now() + period;
            while let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            {
                std::thread::park_timeout(left);
            }
        }),
        "futex-wait" => {
            let word = Box::new(0u32);
            Box::new(move || unsafe {
                // FUTEX_WAIT: a relative timeout; nobody wakes it, so it times out.
                libc::syscall(
                    libc::SYS_futex,
                    &*word as *const u32,
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    0u32,
                    &relative as *const timespec,
                    std::ptr::null::<u32>(),
                    0u32,
                );
            })
        }
        "pthread-cond" => pthread_cond_waiter(libc::CLOCK_REALTIME, period_ns),
        "pthread-cond-monotonic" => pthread_cond_waiter(libc::CLOCK_MONOTONIC, period_ns),
        other => return Err(format!("unknown wait kind {other:?}")),
    })
}

/// A condition variable on `clock`, waited on until `period_ns` from now on the program's clock.
fn pthread_cond_waiter(clock: clockid_t, period_ns: i64) -> Box<dyn FnMut()> {
    let cond = Box::into_raw(Box::new(libc::PTHREAD_COND_INITIALIZER));
    let mutex = Box::into_raw(Box::new(libc::PTHREAD_MUTEX_INITIALIZER));
    // SAFETY: initialising a fresh condition variable with a fresh attribute; both live for the process.
    unsafe {
        let mut attr: libc::pthread_condattr_t = std::mem::zeroed();
        libc::pthread_condattr_init(&mut attr);
        libc::pthread_condattr_setclock(&mut attr, clock);
        libc::pthread_cond_init(cond, &attr);
    }
    Box::new(move || {
        let deadline = timespec_of(fake_ns(clock) + period_ns);
        // SAFETY: the leaked condition variable and mutex; a spurious wake-up (0) waits again.
        unsafe {
            libc::pthread_mutex_lock(mutex);
            while libc::pthread_cond_timedwait(cond, mutex, &deadline) == 0 {}
            libc::pthread_mutex_unlock(mutex);
        }
    })
}

/// Samples monotonic-type clocks for `ms` real ms in two threads while the runner changes the rate.
fn backward_check(ms: i64) {
    let end = real_ns(libc::CLOCK_MONOTONIC) + ms * NS_PER_MS;
    let sample = |clocks: &'static [clockid_t]| {
        move || {
            let mut last = vec![i64::MIN; clocks.len()];
            let mut last_instant = Instant::now();
            let (mut samples, mut backward, mut max_backward_ns) = (0u64, 0u64, 0i64);
            let mut round = 0u64;
            loop {
                for (i, &clock) in clocks.iter().enumerate() {
                    let now = fake_ns(clock);
                    if now < last[i] {
                        backward += 1;
                        max_backward_ns = max_backward_ns.max(last[i] - now);
                    }
                    last[i] = now;
                    samples += 1;
                }
                let instant = Instant::now();
                if instant < last_instant {
                    backward += 1;
                }
                last_instant = instant;
                round += 1;
                if round % 256 == 0 && real_ns(libc::CLOCK_MONOTONIC) >= end {
                    return (samples, backward, max_backward_ns);
                }
            }
        }
    };
    let precise = std::thread::spawn(sample(&[libc::CLOCK_MONOTONIC]));
    let others = std::thread::spawn(sample(&[
        libc::CLOCK_MONOTONIC_COARSE,
        libc::CLOCK_MONOTONIC_RAW,
        libc::CLOCK_BOOTTIME,
        libc::CLOCK_MONOTONIC,
    ]));
    let (mut samples, mut backward, mut max_backward_ns) = (0, 0, 0);
    for thread in [precise, others] {
        let (s, b, m) = thread.join().expect("sampling thread panicked");
        samples += s;
        backward += b;
        max_backward_ns = max_backward_ns.max(m);
    }
    println!("samples={samples}");
    println!("backward={backward}");
    println!("max_backward_ns={max_backward_ns}");
}

fn sleep_until(clock: clockid_t, ms: i64) {
    let deadline = timespec_of(fake_ns(clock) + ms * NS_PER_MS);
    let start = real_ns(libc::CLOCK_MONOTONIC);
    // SAFETY: a valid deadline and no remainder.
    let error = unsafe {
        libc::clock_nanosleep(clock, libc::TIMER_ABSTIME, &deadline, std::ptr::null_mut())
    };
    println!("error={error}");
    println!("real_elapsed_ns={}", real_ns(libc::CLOCK_MONOTONIC) - start);
}

fn cond_until(clock: clockid_t, ms: i64) {
    let start = real_ns(libc::CLOCK_MONOTONIC);
    pthread_cond_waiter(clock, ms * NS_PER_MS)();
    println!("real_elapsed_ns={}", real_ns(libc::CLOCK_MONOTONIC) - start);
}

fn condvar(ms: i64) {
    let pair = (Mutex::new(()), Condvar::new());
    let start = real_ns(libc::CLOCK_MONOTONIC);
    let guard = pair.0.lock().unwrap();
    let (_guard, result) = pair
        .1
        .wait_timeout_while(guard, Duration::from_millis(ms as u64), |_| true)
        .unwrap();
    println!("timed_out={}", result.timed_out());
    println!("real_elapsed_ns={}", real_ns(libc::CLOCK_MONOTONIC) - start);
}
