//! The control block: the one definition of a clock control file, and the pure time arithmetic on it.
//!
//! This source file is compiled into both `clock-shim` (the runner writes) and `clock-shim-preload` (the preload
//! library reads, through `#[path]`), so the two sides can never disagree about the format. It must stay free of
//! panics (every operation saturates or is checked) and of allocation: the preload runs it inside `clock_gettime`.
//!
//! # File format (version 1)
//! A file of [`FILE_LEN_BYTES`] bytes whose first [`BLOCK_LEN_BYTES`] hold a [`ControlBlock`]: 64-bit words in
//! the machine's native byte order (little-endian on x86_64 and aarch64), each read and written atomically.
//!
//! | offset | field | meaning |
//! |---|---|---|
//! | 0 | `magic` | [`MAGIC`] (`"CHCLKSHM"`), written last on creation: readers ignore the file until it is there |
//! | 8 | `version` | [`VERSION`] |
//! | 16 | `seq` | seqlock counter: odd while a writer is changing the fields below |
//! | 24 | `wall_offset_ns` | i64 added to the wall clock on top of the monotonic skew |
//! | 32 | `rate_fixed` | u64 rate of the fake clocks, 32.32 fixed point (`1 << 32` is real speed) |
//! | 40 | `epoch_real_ns` | i64 real `CLOCK_MONOTONIC` at the last rate change |
//! | 48 | `epoch_fake_ns` | i64 fake `CLOCK_MONOTONIC` at that same instant |
//! | 56 | `wait_chunk_max_ns` | u64 longest real wait before the preload re-reads the clock |
//! | 64 | `requested_offset_ns` | i64 the runner's bookkeeping (the offset it last asked for); the preload ignores it |
//!
//! The fake clocks, with `m` the real `CLOCK_MONOTONIC` and `w` the real `CLOCK_REALTIME` read at the same moment:
//! `fake_mono = epoch_fake + (m - epoch_real) * rate` (in i128) and
//! `fake_wall = w + wall_offset + (fake_mono - m)`. A rate change re-bases the epoch at the current fake time, so
//! neither clock jumps; an offset change steps only the wall clock, as an NTP step does.

use core::sync::atomic::{fence, AtomicI64, AtomicU64, Ordering};

/// First word of every control file: `"CHCLKSHM"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"CHCLKSHM");
/// The format version this code reads and writes.
pub const VERSION: u64 = 1;
/// Size of a control file: one page, so later versions can grow the block without resizing mapped files.
pub const FILE_LEN_BYTES: u64 = 4096;
/// Bytes of the version-1 block that a reader maps; a file shorter than this is refused.
pub const BLOCK_LEN_BYTES: usize = core::mem::size_of::<ControlBlock>();

/// Rate 1.0 in 32.32 fixed point.
pub const RATE_ONE_FIXED: u64 = 1 << 32;
/// Slowest rate accepted: below it a 20 ms real wait chunk would cover less than 20 µs of fake time.
pub const RATE_MIN: f64 = 0.001;
/// Fastest rate accepted: keeps `elapsed * rate` far inside i128 and fake time inside i64 for centuries.
pub const RATE_MAX: f64 = 1000.0;
const RATE_MIN_FIXED: u64 = 4_294_967; // RATE_MIN * 2^32, rounded down
const RATE_MAX_FIXED: u64 = 1000 << 32;

/// Default longest real wait chunk: short enough that a rate or offset change is noticed within ~20 ms.
pub const WAIT_CHUNK_DEFAULT_NS: u64 = 20_000_000;
/// Shortest wait chunk accepted (poll and epoll count in milliseconds).
pub const WAIT_CHUNK_MIN_NS: u64 = 1_000_000;
/// Longest wait chunk accepted.
pub const WAIT_CHUNK_MAX_NS: u64 = 1_000_000_000;

/// Read attempts before a reader gives up waiting for a writer and uses what it read: a writer holds the lock for
/// well under a microsecond, so this bound is reached only if a writer died inside its critical section.
const READ_ATTEMPTS_MAX: u32 = 1 << 20;
/// Spins between two `sched_yield` calls while a writer holds the lock (a preempted writer needs the CPU back).
const SPINS_PER_YIELD: u32 = 64;

const NS_PER_S: i64 = 1_000_000_000;

/// The shared words of a control file (see the module docs for the format).
#[repr(C)]
#[derive(Debug)]
pub struct ControlBlock {
    /// [`MAGIC`] once the file is initialised.
    pub magic: AtomicU64,
    /// [`VERSION`].
    pub version: AtomicU64,
    /// Seqlock counter, odd while a write is in progress.
    pub seq: AtomicU64,
    /// Wall-clock offset in ns, on top of the monotonic skew.
    pub wall_offset_ns: AtomicI64,
    /// Clock rate, 32.32 fixed point.
    pub rate_fixed: AtomicU64,
    /// Real `CLOCK_MONOTONIC` ns at the last re-base.
    pub epoch_real_ns: AtomicI64,
    /// Fake `CLOCK_MONOTONIC` ns at the last re-base.
    pub epoch_fake_ns: AtomicI64,
    /// Longest real wait chunk in ns.
    pub wait_chunk_max_ns: AtomicU64,
    /// The wall offset the runner last asked for (bookkeeping for `Control::apply`; ignored by the preload).
    pub requested_offset_ns: AtomicI64,
}

// The offsets are the file format: a change here is a new VERSION.
const _: () = assert!(core::mem::offset_of!(ControlBlock, magic) == 0);
const _: () = assert!(core::mem::offset_of!(ControlBlock, seq) == 16);
const _: () = assert!(core::mem::offset_of!(ControlBlock, wall_offset_ns) == 24);
const _: () = assert!(core::mem::offset_of!(ControlBlock, rate_fixed) == 32);
const _: () = assert!(core::mem::offset_of!(ControlBlock, epoch_real_ns) == 40);
const _: () = assert!(core::mem::offset_of!(ControlBlock, epoch_fake_ns) == 48);
const _: () = assert!(core::mem::offset_of!(ControlBlock, wait_chunk_max_ns) == 56);
const _: () = assert!(core::mem::offset_of!(ControlBlock, requested_offset_ns) == 64);
const _: () = assert!(BLOCK_LEN_BYTES == 72);
const _: () = assert!(BLOCK_LEN_BYTES as u64 <= FILE_LEN_BYTES);

/// A consistent copy of the fields of a control block: the pure clock model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Wall-clock offset in ns, on top of the monotonic skew.
    pub wall_offset_ns: i64,
    /// Clock rate, 32.32 fixed point.
    pub rate_fixed: u64,
    /// Real `CLOCK_MONOTONIC` ns at the last re-base.
    pub epoch_real_ns: i64,
    /// Fake `CLOCK_MONOTONIC` ns at the last re-base.
    pub epoch_fake_ns: i64,
    /// Longest real wait chunk in ns.
    pub wait_chunk_max_ns: u64,
    /// The wall offset the runner last asked for.
    pub requested_offset_ns: i64,
}

impl Params {
    /// Real time: no offset, rate 1, fake monotonic equal to real monotonic.
    pub const IDENTITY: Params = Params {
        wall_offset_ns: 0,
        rate_fixed: RATE_ONE_FIXED,
        epoch_real_ns: 0,
        epoch_fake_ns: 0,
        wait_chunk_max_ns: WAIT_CHUNK_DEFAULT_NS,
        requested_offset_ns: 0,
    };

    /// The same parameters with the rate and chunk forced into their accepted ranges. Readers apply it to what
    /// they load, so a corrupt or hostile file cannot make the arithmetic overflow or a wait spin.
    pub fn sanitized(self) -> Params {
        Params {
            rate_fixed: self.rate_fixed.clamp(RATE_MIN_FIXED, RATE_MAX_FIXED),
            wait_chunk_max_ns: self
                .wait_chunk_max_ns
                .clamp(WAIT_CHUNK_MIN_NS, WAIT_CHUNK_MAX_NS),
            ..self
        }
    }

    /// Fake `CLOCK_MONOTONIC` at real `CLOCK_MONOTONIC` `real_mono_ns`. Non-decreasing in `real_mono_ns`.
    pub fn fake_mono_ns(&self, real_mono_ns: i64) -> i64 {
        let elapsed_ns = i128::from(real_mono_ns) - i128::from(self.epoch_real_ns);
        // |elapsed| < 2^65 and rate < 2^42 after `sanitized`, so the product stays below 2^107. The shift floors
        // (towards minus infinity), which keeps the function monotonic across zero.
        let scaled_ns = elapsed_ns.saturating_mul(i128::from(self.rate_fixed)) >> 32;
        saturate_i64(i128::from(self.epoch_fake_ns).saturating_add(scaled_ns))
    }

    /// How far fake monotonic time is ahead of real monotonic time, at real `real_mono_ns`.
    pub fn mono_skew_ns(&self, real_mono_ns: i64) -> i64 {
        saturate_i64(i128::from(self.fake_mono_ns(real_mono_ns)) - i128::from(real_mono_ns))
    }

    /// Fake reading of a wall-type clock (`CLOCK_REALTIME`, `CLOCK_TAI`, ...) whose real reading is
    /// `real_wall_ns`, taken together with real monotonic `real_mono_ns`.
    pub fn fake_wall_ns(&self, real_wall_ns: i64, real_mono_ns: i64) -> i64 {
        saturate_i64(
            i128::from(real_wall_ns)
                + i128::from(self.wall_offset_ns)
                + i128::from(self.mono_skew_ns(real_mono_ns)),
        )
    }

    /// How far the fake wall clock is ahead of the real one, at real monotonic `real_mono_ns`.
    pub fn wall_skew_ns(&self, real_mono_ns: i64) -> i64 {
        saturate_i64(i128::from(self.wall_offset_ns) + i128::from(self.mono_skew_ns(real_mono_ns)))
    }

    /// The parameters after a rate change at real monotonic `real_mono_ns`: the epoch moves to that instant and
    /// the current fake time, so both clocks continue from where they are, only at the new speed.
    pub fn rebased(&self, real_mono_ns: i64, rate_fixed: u64) -> Params {
        Params {
            epoch_real_ns: real_mono_ns,
            epoch_fake_ns: self.fake_mono_ns(real_mono_ns),
            rate_fixed: rate_fixed.clamp(RATE_MIN_FIXED, RATE_MAX_FIXED),
            ..*self
        }
    }

    /// The parameters after a reset at real monotonic `real_mono_ns`: rate 1 and the wall clock stepped back to
    /// real time, as NTP would. Fake monotonic time keeps its accumulated skew and never goes backward.
    pub fn reset(&self, real_mono_ns: i64) -> Params {
        let rebased = self.rebased(real_mono_ns, RATE_ONE_FIXED);
        Params {
            wall_offset_ns: rebased.mono_skew_ns(real_mono_ns).saturating_neg(),
            requested_offset_ns: 0,
            ..rebased
        }
    }

    /// The parameters with the wall clock at real time + `offset_ns` at real monotonic `real_mono_ns`.
    pub fn with_wall_skew(&self, real_mono_ns: i64, offset_ns: i64) -> Params {
        let wall_offset_ns =
            saturate_i64(i128::from(offset_ns) - i128::from(self.mono_skew_ns(real_mono_ns)));
        Params {
            wall_offset_ns,
            ..*self
        }
    }

    /// Real nanoseconds to wait for `fake_remaining_ns` of fake time to pass at this rate, rounded up and capped at
    /// the wait chunk; 0 when nothing remains. The caller re-reads the clock after each chunk.
    pub fn real_wait_ns(&self, fake_remaining_ns: i64) -> i64 {
        if fake_remaining_ns <= 0 {
            return 0;
        }
        let rate_fixed = i128::from(self.rate_fixed.max(1));
        let real_ns =
            (i128::from(fake_remaining_ns) << 32).saturating_add(rate_fixed - 1) / rate_fixed;
        let chunk_ns = i128::from(
            self.wait_chunk_max_ns
                .clamp(WAIT_CHUNK_MIN_NS, WAIT_CHUNK_MAX_NS),
        );
        saturate_i64(real_ns.clamp(1, chunk_ns))
    }

    /// The rate as a float.
    pub fn rate(&self) -> f64 {
        self.rate_fixed as f64 / RATE_ONE_FIXED as f64
    }
}

/// `rate` in 32.32 fixed point, or `None` when it is not a finite number in `RATE_MIN..=RATE_MAX`.
pub fn rate_to_fixed(rate: f64) -> Option<u64> {
    if !rate.is_finite() || !(RATE_MIN..=RATE_MAX).contains(&rate) {
        return None;
    }
    // In range, so the product is below 2^42 and the cast is exact up to rounding.
    Some(((rate * RATE_ONE_FIXED as f64).round() as u64).clamp(RATE_MIN_FIXED, RATE_MAX_FIXED))
}

/// Nanoseconds of a `(seconds, nanoseconds)` pair, or `None` if the nanoseconds are outside `0..1e9` (which the
/// kernel rejects with EINVAL: such values are passed through untouched so the caller gets that error).
pub fn join_ns(seconds: i64, nanoseconds: i64) -> Option<i64> {
    if !(0..NS_PER_S).contains(&nanoseconds) {
        return None;
    }
    Some(saturate_i64(
        i128::from(seconds) * i128::from(NS_PER_S) + i128::from(nanoseconds),
    ))
}

/// `(seconds, nanoseconds)` of `ns`, with nanoseconds in `0..1e9` (floor division, also before 1970).
pub fn split_ns(ns: i64) -> (i64, i64) {
    (ns.div_euclid(NS_PER_S), ns.rem_euclid(NS_PER_S))
}

fn saturate_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

impl ControlBlock {
    /// Whether the block carries this version's magic: readers pass time through untouched until it does.
    #[inline]
    pub fn is_valid(&self) -> bool {
        self.magic.load(Ordering::Acquire) == MAGIC
            && self.version.load(Ordering::Relaxed) == VERSION
    }

    /// Loads the fields without any consistency check (a single writer initialising the block uses it).
    fn load_relaxed(&self) -> Params {
        Params {
            wall_offset_ns: self.wall_offset_ns.load(Ordering::Relaxed),
            rate_fixed: self.rate_fixed.load(Ordering::Relaxed),
            epoch_real_ns: self.epoch_real_ns.load(Ordering::Relaxed),
            epoch_fake_ns: self.epoch_fake_ns.load(Ordering::Relaxed),
            wait_chunk_max_ns: self.wait_chunk_max_ns.load(Ordering::Relaxed),
            requested_offset_ns: self.requested_offset_ns.load(Ordering::Relaxed),
        }
    }

    fn store_relaxed(&self, params: &Params) {
        self.wall_offset_ns
            .store(params.wall_offset_ns, Ordering::Relaxed);
        self.rate_fixed.store(params.rate_fixed, Ordering::Relaxed);
        self.epoch_real_ns
            .store(params.epoch_real_ns, Ordering::Relaxed);
        self.epoch_fake_ns
            .store(params.epoch_fake_ns, Ordering::Relaxed);
        self.wait_chunk_max_ns
            .store(params.wait_chunk_max_ns, Ordering::Relaxed);
        self.requested_offset_ns
            .store(params.requested_offset_ns, Ordering::Relaxed);
    }

    /// A consistent snapshot of the parameters, together with `sample()` (real clock readings) taken inside the
    /// read section. Taking the real readings inside is what makes fake monotonic time never go backward across a
    /// re-base: a reader that got the old parameters read its clock before the writer read its own.
    /// No system call unless a writer holds the lock; bounded (see `READ_ATTEMPTS_MAX`).
    #[inline]
    pub fn read<T>(&self, mut sample: impl FnMut() -> T) -> (Params, T) {
        let mut attempt: u32 = 0;
        loop {
            let seq_before = self.seq.load(Ordering::Acquire);
            let params = self.load_relaxed();
            let value = sample();
            fence(Ordering::Acquire);
            let seq_after = self.seq.load(Ordering::Relaxed);
            if (seq_before & 1 == 0 && seq_before == seq_after) || attempt >= READ_ATTEMPTS_MAX {
                return (params.sanitized(), value);
            }
            attempt += 1;
            backoff(attempt);
        }
    }

    /// Runs one write. Takes the seqlock, *then* calls `real_mono_ns()` (the other order let readers see fake time
    /// go backward by milliseconds), passes the current parameters and that instant to `change`, stores what it
    /// returns and releases the lock. A compare-and-swap on `seq` keeps two writers (even in two processes) from
    /// interleaving; a lock left odd by a writer that died is taken over after the reader's bound.
    pub fn write(
        &self,
        real_mono_ns: impl FnOnce() -> i64,
        change: impl FnOnce(Params, i64) -> Params,
    ) -> Params {
        let mut attempt: u32 = 0;
        let held = loop {
            let seq = self.seq.load(Ordering::Relaxed);
            if seq & 1 == 0 {
                if self
                    .seq
                    .compare_exchange_weak(
                        seq,
                        seq.wrapping_add(1),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    break seq.wrapping_add(1);
                }
            } else if attempt >= READ_ATTEMPTS_MAX {
                // A writer died while holding the lock: readers already gave up waiting; take it over.
                break seq;
            }
            attempt += 1;
            backoff(attempt);
        };
        // A full fence: the odd `seq` must be visible before any field changes, and the real clock must be read
        // after it (x86 may otherwise perform the clock's loads before the store).
        fence(Ordering::SeqCst);
        let now_ns = real_mono_ns();
        let new = change(self.load_relaxed().sanitized(), now_ns);
        self.store_relaxed(&new);
        self.seq.store(held.wrapping_add(1), Ordering::Release);
        new
    }

    /// Makes a block that no reader trusts yet (wrong magic) real time, then publishes the magic. Only for a block
    /// that is not valid: a valid one is changed with [`ControlBlock::write`].
    pub fn initialize(&self, params: &Params) {
        self.magic.store(0, Ordering::Release);
        fence(Ordering::SeqCst);
        self.seq.store(0, Ordering::Relaxed);
        self.store_relaxed(params);
        self.version.store(VERSION, Ordering::Relaxed);
        self.magic.store(MAGIC, Ordering::Release);
    }
}

#[inline]
fn backoff(attempt: u32) {
    if attempt % SPINS_PER_YIELD == 0 {
        // SAFETY: sched_yield has no preconditions.
        unsafe {
            libc::sched_yield();
        }
    } else {
        core::hint::spin_loop();
    }
}
