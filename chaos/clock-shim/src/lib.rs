//! Clock faults for node processes, applied from outside: the runner's half of the clock shim.
//!
//! A node is started with `LD_PRELOAD` set to the preload library (`libclock_shim_preload.so`, built by cargo from
//! the `clock-shim-preload` crate next to this one) and [`CONTROL_ENV`] naming a small control file. The library
//! maps the file and, on every clock read, computes the node's fake time from it without a system call; the runner
//! changes the file while the node runs:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let control = clock_shim::Control::create("run/n1.clock")?;    // real time, before the node starts
//! let library = clock_shim::library_path().ok_or("build it: cargo build -p clock-shim")?;
//! let mut node = std::process::Command::new("raft-node");
//! node.envs(control.env(&library));                                // LD_PRELOAD + CHAOS_CLOCK_CONTROL
//! eprintln!("{}", clock_shim::LIMITATIONS);
//! control.bump(Duration::from_secs(3), true);                      // wall clock steps 3 s forward
//! control.set_rate(2.0)?;                                          // both clocks run twice as fast
//! control.apply(-500_000_000, 0.5)?;                               // what the nemesis computed, idempotent
//! control.reset();                                                 // wall clock back to true time, rate 1
//! # Ok(()) }
//! ```
//!
//! The clock model, as a real machine behaves: a bump or strobe steps the wall clock (`CLOCK_REALTIME` and its
//! variants, `gettimeofday`, `time`) as an NTP step would, and leaves the monotonic clocks alone, which never go
//! backward; drift changes the rate of both, as a bad oscillator would, and timed waits (epoll, poll, sleeps,
//! futexes, condition variables) are scaled with it so timers really fire faster or slower. The file format and
//! the arithmetic are in [`control_block`]; what the preload cannot reach is in [`LIMITATIONS`].
//!
//! # Building the library
//! `cargo build [--release] -p clock-shim`, or building any crate that depends on this one, builds
//! `target/<profile>/deps/libclock_shim_preload.so` (cargo builds the cdylib of a dependency but copies it up to
//! `target/<profile>/` only when `clock-shim-preload` is itself a package being built: `cargo build` of the whole
//! workspace or `-p clock-shim-preload`). [`library_path`] looks in both places, `deps/` first.
//!
//! The interposing functions live in that separate crate on purpose: a crate that is both a cdylib and an rlib
//! puts its `#[no_mangle] clock_gettime` into every binary linking the rlib, and that binary then fakes its own
//! clock without any preload (observed while building this). This crate depends on `clock-shim-preload` only so
//! that cargo builds the library; nothing links it.

#[path = "control_block.rs"]
pub mod control_block;

mod control;
mod library;

pub use control::{Control, ControlError, State};
pub use library::{library_path, LIBRARY_ENV, LIBRARY_FILE_NAME};

/// The environment variable through which the preload library finds a node's control file.
pub const CONTROL_ENV: &str = "CHAOS_CLOCK_CONTROL";

/// The preload variable of the dynamic loader.
pub const PRELOAD_ENV: &str = "LD_PRELOAD";

/// What the clock shim does not reach, for the runner to print when a plan has clock faults.
pub const LIMITATIONS: &str = "\
clock shim: faults reach dynamically linked programs through LD_PRELOAD (clock_gettime, gettimeofday, time, \
timespec_get; waits in epoll_wait/epoll_pwait/epoll_pwait2, poll/ppoll, nanosleep/clock_nanosleep, sleep/usleep, \
futex waits made through syscall(), pthread_cond_timedwait/clockwait). Not reached: statically linked binaries; \
Go binaries (they read the vDSO directly); setuid/setgid programs (the loader ignores LD_PRELOAD); programs that \
read the TSC or make raw system calls (e.g. the quanta crate, inline syscalls); timerfd, select/pselect, \
SO_RCVTIMEO/SO_SNDTIMEO socket timeouts, sem_timedwait, pthread_mutex_timedlock and other glibc-internal waits; \
io_uring timeouts. Child processes inherit LD_PRELOAD and CHAOS_CLOCK_CONTROL (and so the fake clock) unless \
they are cleared.";

#[cfg(test)]
mod tests;
