//! `libclock_shim_preload.so`: the clock fault library preloaded into node processes.
//!
//! Loaded with `LD_PRELOAD`, it reads the control file named by `CHAOS_CLOCK_CONTROL` (written by the runner with
//! `clock_shim::Control`) and changes what the process gets from `clock_gettime`, `gettimeofday`, `time` and
//! `timespec_get`, and how long its timed waits last, while it runs:
//!
//! ```text
//! constructor:  resolve the real functions (dlsym RTLD_NEXT); mmap the control file read-only
//! clock_gettime(MONOTONIC):  seqlock-read the block + real clock → epoch_fake + (real − epoch_real) × rate
//! clock_gettime(REALTIME):   real wall + offset + (fake mono − real mono)
//! poll(fds, n, 100):         fake deadline = fake now + 100 ms; real poll in chunks of min(left ÷ rate, 20 ms)
//! ```
//!
//! With the variable unset, or the file missing or not (yet) a control file, every function passes straight
//! through to the real one. No function allocates, takes a lock or panics; reading the clock makes no system call.
//! What is and is not reached is listed in `clock_shim::LIMITATIONS`. Nothing may link this crate as a Rust
//! library: its exported symbols would replace the linking binary's own libc functions.

#[path = "../../src/control_block.rs"]
#[allow(dead_code)] // the writer's half of the format is used only by the runner
mod control_block;

mod clock;
mod interpose;
mod real;
mod wait;

use core::ffi::{c_char, c_int, CStr};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering};

use control_block::{ControlBlock, BLOCK_LEN_BYTES};

/// The environment variable naming the control file (the runner's `clock_shim::CONTROL_ENV`).
const CONTROL_ENV: &CStr = c"CHAOS_CLOCK_CONTROL";

/// The mapped control block, or null when clocks pass through. Set once by the constructor, never unmapped.
static CONTROL: AtomicPtr<ControlBlock> = AtomicPtr::new(null_mut());

/// The control block when it is mapped and initialised.
#[inline]
fn control() -> Option<&'static ControlBlock> {
    let block = CONTROL.load(Ordering::Acquire);
    if block.is_null() {
        return None;
    }
    // SAFETY: the constructor stored a read-only shared mapping of BLOCK_LEN_BYTES that stays mapped for the
    // life of the process; the block is made of atomics, so concurrent writes by the runner are fine.
    let block = unsafe { &*block };
    block.is_valid().then_some(block)
}

// Run by the dynamic loader before `main` (and before the constructors of the program's own libraries): an
// `.init_array` entry rather than a Rust-side lazy initialiser, so the hot path never checks for initialisation.
#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

extern "C" fn constructor() {
    real::resolve_all();
    // libc's getenv, not std::env: std's environment lock is not safe to take this early.
    // SAFETY: a NUL-terminated name.
    let path = unsafe { libc::getenv(CONTROL_ENV.as_ptr()) };
    // SAFETY: getenv returns null or a NUL-terminated string.
    if path.is_null() || unsafe { *path } == 0 {
        return;
    }
    match map_control(path) {
        Ok(block) => CONTROL.store(block, Ordering::Release),
        Err(what) => warn(what, path),
    }
}

/// Maps the first `BLOCK_LEN_BYTES` of the control file at `path` read-only and shared.
fn map_control(path: *const c_char) -> Result<*mut ControlBlock, &'static CStr> {
    // SAFETY: path is a NUL-terminated string from getenv.
    let fd = unsafe { libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(c"cannot open the clock control file");
    }
    // SAFETY: all-zero is a valid stat; fd is open.
    let mut stat: libc::stat = unsafe { core::mem::zeroed() };
    let result = if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        Err(c"cannot stat the clock control file")
    } else if stat.st_size < BLOCK_LEN_BYTES as libc::off_t {
        // Mapping past the end of a file faults on access (SIGBUS): refuse short files.
        set_errno(libc::EINVAL);
        Err(c"the clock control file is too short")
    } else {
        // SAFETY: a fresh shared read-only mapping of a regular file at least BLOCK_LEN_BYTES long.
        let address = unsafe {
            libc::mmap(
                null_mut(),
                BLOCK_LEN_BYTES,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            Err(c"cannot map the clock control file")
        } else {
            Ok(address.cast::<ControlBlock>())
        }
    };
    // SAFETY: fd is open and owned here; the mapping stays valid after close.
    unsafe { libc::close(fd) };
    result
}

/// One line on standard error: a node started with a control variable that does not work should say so in its
/// log rather than silently run on real time.
fn warn(what: &CStr, path: *const c_char) {
    // SAFETY: errno is thread-local and readable; strerror returns a NUL-terminated string.
    let reason = unsafe { CStr::from_ptr(libc::strerror(*libc::__errno_location())) };
    // SAFETY: path is a NUL-terminated string from getenv.
    let path = unsafe { CStr::from_ptr(path) };
    for part in [
        c"clock-shim: ",
        what,
        c" ",
        path,
        c": ",
        reason,
        c"; clocks are not faked\n",
    ] {
        let bytes = part.to_bytes();
        // SAFETY: writing a valid buffer to fd 2; a failed write to stderr is not worth reporting.
        unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    }
}

/// errno of the calling thread.
#[inline]
fn errno() -> c_int {
    // SAFETY: __errno_location returns the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets errno of the calling thread.
#[inline]
fn set_errno(value: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno.
    unsafe { *libc::__errno_location() = value };
}
