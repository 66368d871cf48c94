//! The runner's handle on one node's control file.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::Duration;

use crate::control_block::{
    rate_to_fixed, ControlBlock, Params, BLOCK_LEN_BYTES, FILE_LEN_BYTES, RATE_MAX, RATE_MIN,
    VERSION, WAIT_CHUNK_MAX_NS, WAIT_CHUNK_MIN_NS,
};
use crate::{CONTROL_ENV, PRELOAD_ENV};

/// Errors of [`Control`] operations, each naming the file or value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The file could not be opened or created.
    #[error("cannot open clock control file {path}: {source}")]
    Open {
        /// The control file.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// The file could not be given its size.
    #[error("cannot size clock control file {path} to {FILE_LEN_BYTES} bytes: {source}")]
    Resize {
        /// The control file.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// The file could not be mapped.
    #[error("cannot map clock control file {path}: {source}")]
    Map {
        /// The control file.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// The file is too short to hold a control block.
    #[error("{path} is {len_bytes} bytes, too short for a clock control block ({BLOCK_LEN_BYTES} bytes)")]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its length.
        len_bytes: u64,
    },
    /// The file does not start with this version's magic.
    #[error("{path} is not a version {VERSION} clock control file (magic {magic:#018x}, version {version})")]
    NotControlFile {
        /// The file.
        path: PathBuf,
        /// The magic found.
        magic: u64,
        /// The version found.
        version: u64,
    },
    /// A clock rate outside the accepted range.
    #[error("clock rate {rate} is not a number between {RATE_MIN} and {RATE_MAX}")]
    Rate {
        /// The rate asked for.
        rate: f64,
    },
    /// A wait chunk outside the accepted range.
    #[error("wait chunk {chunk:?} is outside 1ms..=1s")]
    WaitChunk {
        /// The chunk asked for.
        chunk: Duration,
    },
}

/// A snapshot of a node's clock, as the runner reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct State {
    /// The rate of both clocks (1.0 is real speed).
    pub rate: f64,
    /// How far the node's wall clock is ahead of true time now (negative: behind).
    pub wall_skew_ns: i64,
    /// How far the node's monotonic clock is ahead of the real one now (accumulated drift).
    pub mono_skew_ns: i64,
    /// The wall offset last asked for with [`Control::apply`], [`Control::set_offset_ns`] or a bump.
    pub requested_offset_ns: i64,
    /// The raw parameters in the file.
    pub params: Params,
    /// Number of writes since the file was created (half the seqlock counter).
    pub writes: u64,
}

/// One node's clock control file, mapped read-write. Writes from several threads are serialised; the file should
/// have one writing process (a second one is kept consistent by the seqlock's compare-and-swap, not coordinated).
#[derive(Debug)]
pub struct Control {
    path: PathBuf,
    block: NonNull<ControlBlock>,
    /// Serialises this process's writers, so `apply` can read-modify-write without racing another thread.
    writer: Mutex<()>,
}

// SAFETY: the mapping is shared memory made only of atomics, valid until drop; writers are serialised by `writer`.
unsafe impl Send for Control {}
// SAFETY: as above.
unsafe impl Sync for Control {}

impl Control {
    /// Creates the control file at `path` (or takes over an existing one) and sets it to real time: offset 0,
    /// rate 1, fake monotonic equal to real monotonic. Call it before starting the node. On a file that running
    /// processes have mapped, the reset to real monotonic time can step their monotonic clock backward: use
    /// [`Control::open`] and [`Control::reset`] for those. The file is never shrunk below its mapped length, so a
    /// mapped file never faults.
    pub fn create(path: impl AsRef<Path>) -> Result<Control, ControlError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(|source| ControlError::Open {
                path: path.clone(),
                source,
            })?;
        let len_bytes = file
            .metadata()
            .map_err(|source| ControlError::Open {
                path: path.clone(),
                source,
            })?
            .len();
        if len_bytes != FILE_LEN_BYTES {
            file.set_len(FILE_LEN_BYTES)
                .map_err(|source| ControlError::Resize {
                    path: path.clone(),
                    source,
                })?;
        }
        let control = Control::map(path, &file)?;
        let block = control.block();
        if block.is_valid() {
            block.write(real_mono_ns, |_, _| Params::IDENTITY);
        } else {
            block.initialize(&Params::IDENTITY);
        }
        Ok(control)
    }

    /// Opens an existing control file (e.g. after the runner restarted) without changing it.
    pub fn open(path: impl AsRef<Path>) -> Result<Control, ControlError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| ControlError::Open {
                path: path.clone(),
                source,
            })?;
        let len_bytes = file
            .metadata()
            .map_err(|source| ControlError::Open {
                path: path.clone(),
                source,
            })?
            .len();
        if len_bytes < BLOCK_LEN_BYTES as u64 {
            return Err(ControlError::TooShort { path, len_bytes });
        }
        let control = Control::map(path, &file)?;
        let block = control.block();
        if !block.is_valid() {
            return Err(ControlError::NotControlFile {
                path: control.path.clone(),
                magic: block.magic.load(std::sync::atomic::Ordering::Acquire),
                version: block.version.load(std::sync::atomic::Ordering::Acquire),
            });
        }
        Ok(control)
    }

    fn map(path: PathBuf, file: &std::fs::File) -> Result<Control, ControlError> {
        // SAFETY: a fresh shared read-write mapping of an open file at least BLOCK_LEN_BYTES long; the mapping
        // outlives the descriptor.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BLOCK_LEN_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(ControlError::Map {
                path,
                source: io::Error::last_os_error(),
            });
        }
        let block =
            NonNull::new(address.cast::<ControlBlock>()).ok_or_else(|| ControlError::Map {
                path: path.clone(),
                source: io::Error::other("mmap returned null"),
            })?;
        Ok(Control {
            path,
            block,
            writer: Mutex::new(()),
        })
    }

    fn block(&self) -> &ControlBlock {
        // SAFETY: mapped in `map`, page-aligned, unmapped only in drop.
        unsafe { self.block.as_ref() }
    }

    /// One serialised write: `change` gets the current parameters and the real monotonic time read under the lock.
    fn write(&self, change: impl FnOnce(Params, i64) -> Params) -> State {
        let _serialised = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.block().write(real_mono_ns, change);
        self.state()
    }

    /// The control file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The environment a node needs to run under this control file with the preload library at `library`:
    /// `LD_PRELOAD` and [`CONTROL_ENV`]. (Any `LD_PRELOAD` the node would have had is replaced.)
    pub fn env(&self, library: &Path) -> [(&'static str, OsString); 2] {
        [
            (PRELOAD_ENV, library.as_os_str().to_owned()),
            (CONTROL_ENV, self.path.as_os_str().to_owned()),
        ]
    }

    /// Steps the wall clock by `step` forward or backward from where it is, as an NTP step would; the monotonic
    /// clocks are untouched. Returns the new state.
    pub fn bump(&self, step: Duration, forward: bool) -> State {
        let step_ns = i64::try_from(step.as_nanos()).unwrap_or(i64::MAX);
        self.bump_ns(if forward {
            step_ns
        } else {
            step_ns.saturating_neg()
        })
    }

    /// Steps the wall clock by `step_ns` (negative: backward) from where it is.
    pub fn bump_ns(&self, step_ns: i64) -> State {
        self.write(|params, _| Params {
            wall_offset_ns: params.wall_offset_ns.saturating_add(step_ns),
            requested_offset_ns: params.requested_offset_ns.saturating_add(step_ns),
            ..params
        })
    }

    /// Steps the wall clock to true time + `offset_ns` now (whatever drift has accumulated).
    pub fn set_offset_ns(&self, offset_ns: i64) -> State {
        self.write(|params, now_ns| Params {
            requested_offset_ns: offset_ns,
            ..params.with_wall_skew(now_ns, offset_ns)
        })
    }

    /// Runs both clocks at `rate` times real speed from now on (2.0: twice as fast), continuing from their
    /// current readings: neither jumps. `rate` must be within `RATE_MIN..=RATE_MAX` (0.001 to 1000).
    pub fn set_rate(&self, rate: f64) -> Result<State, ControlError> {
        let rate_fixed = rate_to_fixed(rate).ok_or(ControlError::Rate { rate })?;
        Ok(self.write(|params, now_ns| params.rebased(now_ns, rate_fixed)))
    }

    /// Sets the clock as the nemesis computes it: wall clock `offset_ns` from true time, running at `rate`.
    /// Idempotent (the nemesis pushes every node's setting on every change): with the same arguments as last time
    /// nothing happens. `(0, 1.0)` is [`Control::reset`]. Otherwise a new rate re-bases without a jump, and a new
    /// offset steps the wall clock by the difference from the last requested one, so drift accumulated meanwhile
    /// stays in the wall clock until the reset, as on a machine whose NTP daemon is away.
    pub fn apply(&self, offset_ns: i64, rate: f64) -> Result<State, ControlError> {
        let rate_fixed = rate_to_fixed(rate).ok_or(ControlError::Rate { rate })?;
        let _serialised = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (current, ()) = self.block().read(|| ());
        if current.requested_offset_ns == offset_ns && current.rate_fixed == rate_fixed {
            return Ok(self.state());
        }
        if offset_ns == 0 && rate_fixed == crate::control_block::RATE_ONE_FIXED {
            self.block()
                .write(real_mono_ns, |params, now_ns| params.reset(now_ns));
            return Ok(self.state());
        }
        self.block().write(real_mono_ns, |params, now_ns| {
            let rebased = if params.rate_fixed == rate_fixed {
                params
            } else {
                params.rebased(now_ns, rate_fixed)
            };
            let step_ns = offset_ns.saturating_sub(params.requested_offset_ns);
            Params {
                wall_offset_ns: rebased.wall_offset_ns.saturating_add(step_ns),
                requested_offset_ns: offset_ns,
                ..rebased
            }
        });
        Ok(self.state())
    }

    /// Back to real time: rate 1 and the wall clock stepped to true time. The monotonic clocks keep the lead or
    /// lag that drift gave them (stepping them back would break every timer), and run at real speed again.
    pub fn reset(&self) -> State {
        self.write(|params, now_ns| params.reset(now_ns))
    }

    /// Sets the longest real wait the preload makes before re-reading the clock (default 20 ms): shorter notices
    /// rate and offset changes sooner in waiting threads, at the cost of more wake-ups. Within 1 ms..=1 s.
    pub fn set_wait_chunk_max(&self, chunk: Duration) -> Result<State, ControlError> {
        let chunk_ns = u64::try_from(chunk.as_nanos()).unwrap_or(u64::MAX);
        if !(WAIT_CHUNK_MIN_NS..=WAIT_CHUNK_MAX_NS).contains(&chunk_ns) {
            return Err(ControlError::WaitChunk { chunk });
        }
        Ok(self.write(|params, _| Params {
            wait_chunk_max_ns: chunk_ns,
            ..params
        }))
    }

    /// The node's clock now.
    pub fn state(&self) -> State {
        let block = self.block();
        let (params, now_ns) = block.read(real_mono_ns);
        State {
            rate: params.rate(),
            wall_skew_ns: params.wall_skew_ns(now_ns),
            mono_skew_ns: params.mono_skew_ns(now_ns),
            requested_offset_ns: params.requested_offset_ns,
            params,
            writes: block.seq.load(std::sync::atomic::Ordering::Acquire) / 2,
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.block.as_ptr().cast(), BLOCK_LEN_BYTES) };
    }
}

/// Real CLOCK_MONOTONIC in ns, read straight from libc (the runner itself is never preloaded).
fn real_mono_ns() -> i64 {
    // SAFETY: all-zero is a valid timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer; CLOCK_MONOTONIC cannot fail on Linux.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(result, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec)
}
