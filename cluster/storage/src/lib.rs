//! Durable storage for raft-node: a checksummed, segmented write-ahead log and snapshot files.
//!
//! The crate knows nothing of Raft messages: it stores opaque entry payloads tagged with (index, term), the
//! hard state (term, vote, commit index) and snapshots (metadata with an opaque membership configuration, plus
//! opaque data). The node turns each Raft `Ready` into one call sequence ending in a single [`Storage::sync`]:
//!
//! ```
//! use raft_storage::{Entry, HardState, Storage, StorageOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let (mut storage, recovered) = Storage::open(dir.path(), StorageOptions::default())?;
//! assert_eq!((recovered.first_index, recovered.last_index), (1, 0));
//!
//! // Everything one Ready produced, then one fsync (group commit) before any message is sent.
//! storage.append(&[Entry::new(1, 1, b"put x=1".to_vec()), Entry::new(2, 1, b"put y=2".to_vec())])?;
//! storage.set_hard_state(&HardState { term: 1, voted_for: Some(1), commit: 2 })?;
//! storage.sync()?;
//!
//! // Reads are served from memory.
//! assert_eq!(storage.entries(1, 3)?.len(), 2);
//! assert_eq!(storage.term(2)?, 1);
//! drop(storage);
//!
//! // A restart recovers everything that was synced.
//! let (storage, recovered) = Storage::open(dir.path(), StorageOptions::default())?;
//! assert_eq!(recovered.hard_state, HardState { term: 1, voted_for: Some(1), commit: 2 });
//! assert_eq!(storage.entries(2, 3)?[0].payload, b"put y=2");
//! # Ok(())
//! # }
//! ```
//!
//! # Durability contract
//! - [`Storage::append`] and [`Storage::set_hard_state`] only stage changes (the log view in memory is
//!   updated at once). [`Storage::sync`] makes everything staged durable: at most one fdatasync of the WAL, plus
//!   an atomic rewrite of the `hardstate` file when the term or vote changed. Send nothing that depends on the
//!   staged state (votes, append acknowledgements) before `sync` returns.
//! - [`Storage::truncate_suffix`] and [`Storage::save_snapshot`] are durable when they return.
//! - After an I/O error in a write path the storage is poisoned and refuses further writes: after a failed
//!   fsync the kernel may have dropped dirty pages, so the only safe way on is to reopen and recover.
//!
//! # Layout of the data directory
//! ```text
//! LOCK                                     flock'ed while open (holds the pid, for people)
//! hardstate                                term + vote, replaced atomically (36 bytes)
//! wal/<first index, 20 digits>.seg         WAL segments, named after the first entry they hold
//! snapshot/snap-<term>-<index>.bin         the newest snapshot (numbers zero-padded to 20 digits)
//! *.tmp                                    files being written; a crash may leave them; deleted on open
//! ```
//! Every file starts with 8 magic bytes and a format version and is covered by CRC-32 checksums; the byte
//! layouts are documented in the private modules `record`, `hard_state` and `snapshot`. All lengths are bounded
//! ([`RECORD_PAYLOAD_BYTES_MAX`], [`SNAPSHOT_CONF_BYTES_MAX`], [`SNAPSHOT_DATA_BYTES_MAX`]).
//!
//! # Hard state
//! Term and vote live in their own small file, replaced by write-temp, fsync, rename, fsync-dir. That costs
//! a few fsyncs, but the term and vote change only at elections. The commit index changes with nearly every
//! batch, so it is not in that file: `sync` writes a 28-byte *commit record* into the WAL when it advanced,
//! covered by the same fdatasync as the entries. On recovery the commit index is the largest commit record
//! found, or the snapshot index if larger. Losing a commit record (a torn tail, a truncation) only makes the
//! recovered commit index smaller, which Raft tolerates: the commit index is knowledge, not a promise.
//! Within one `sync` the `hardstate` file is written before the WAL, so a crash between the two never leaves
//! the batch's entries durable under an older term.
//!
//! # Truncation and compaction
//! `append` never overwrites: entries must continue the log exactly. A follower that finds a conflicting
//! suffix calls [`Storage::truncate_suffix`] first, which deletes later segments (newest first, each deletion
//! made durable before the next), cuts the segment holding the first removed entry with `ftruncate`, and
//! fsyncs it before returning. New entries are therefore written after the cut is durable, and a crash can
//! never resurrect the old suffix (nor mix old and new records).
//!
//! [`Storage::save_snapshot`] writes the snapshot durably, deletes the previous one, then compacts: if the log
//! holds the snapshot's (index, term), segments wholly at or below the index are deleted (oldest first) and
//! the rest is kept; otherwise the whole log is discarded (newest segment first) and restarts after the
//! snapshot, as Raft's InstallSnapshot prescribes. Recovery re-applies the same rule (a log that starts right
//! after the snapshot also continues it), so a crash in between is completed on the next open: deletion
//! orders guarantee that a half-compacted log still holds the snapshot's entry and a half-discarded one
//! neither holds it nor starts after it.
//!
//! The entries after the snapshot are also kept in memory (reads never touch the disk); snapshots bound
//! them. Whole segments are read into memory once, during recovery.
//!
//! # Torn tail or corruption?
//! Records are checked in file order. A record whose checksum is valid but whose content is wrong (unknown
//! kind, index gap, term going backwards) is always corruption. A record whose *frame* is bad (cut short,
//! impossible length, checksum mismatch) is a **torn tail** only if both hold:
//! 1. it is in the last segment: only the last segment can hold unsynced data, because a segment is fsynced
//!    before the next one is created; and
//! 2. no intact record frame (known kind, zero reserved bytes, bounded length, valid checksum) starts at *any*
//!    byte offset after it up to the end of the file: what follows is zeros, garbage or a partial record.
//!
//! The search in (2) checksums at most 1 GiB of candidate records; if it gives up, the record counts as
//! corruption.
//!
//! A torn tail is cut off (`ftruncate` + fsync), logged with `tracing::warn!` (file, offset, bytes dropped) and
//! reported in [`Recovered::torn_tail`]. Anything else is [`StorageError::Corrupt`] naming the file and byte
//! offset, and nothing on disk is changed. The rule errs towards refusing to start: if the disk persisted the
//! pages of an unsynced batch out of order (a later record intact, an earlier one not), or an entry payload
//! happens to contain a complete WAL record, a real torn write is reported as corruption. That is safe (no
//! acknowledged entry is ever dropped) and needs an operator; the opposite error would silently lose
//! acknowledged entries.
//!
//! # Fsync policy
//! [`FsyncPolicy::Always`] is the default. [`FsyncPolicy::Never`] skips every fsync (data and directories) and
//! is for benchmarks only: a machine crash can then lose or tear anything written since the last flush by the
//! kernel, including votes, which breaks Raft's safety. The node should warn loudly when it is used.
//!
//! # Types
//! Indexes and terms are plain `u64` here: the crate stays independent of the `raft` crate, whose newtypes the
//! node converts at the boundary. Index 0 means "nothing" (no entry has it); term 0 is the term before any.

mod disk;
mod error;
mod hard_state;
mod record;
mod snapshot;
mod storage;

pub use error::{Corruption, LogRangeError, StorageError};
pub use record::RECORD_PAYLOAD_BYTES_MAX;
pub use snapshot::{SNAPSHOT_CONF_BYTES_MAX, SNAPSHOT_DATA_BYTES_MAX};
pub use storage::{Recovered, Storage, TornTail};

/// One log entry: an opaque payload at (index, term).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, starting at 1.
    pub index: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    /// Opaque bytes (the Raft command); at most [`StorageOptions::entry_payload_bytes_max`].
    pub payload: Vec<u8>,
}

impl Entry {
    /// Builds an entry.
    pub fn new(index: u64, term: u64, payload: Vec<u8>) -> Self {
        Entry {
            index,
            term,
            payload,
        }
    }
}

/// The Raft state that must survive restarts besides the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: u64,
    /// The candidate voted for in `term`, if any.
    pub voted_for: Option<u64>,
    /// Highest log index known to be committed. Recovered best-effort: never higher than what was synced,
    /// possibly lower (see the crate documentation).
    pub commit: u64,
}

/// What a snapshot covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// Last log index included in the snapshot.
    pub index: u64,
    /// Term of the entry at `index`.
    pub term: u64,
    /// The membership configuration at `index`, encoded by the caller; at most [`SNAPSHOT_CONF_BYTES_MAX`].
    pub conf: Vec<u8>,
}

/// When to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// fsync whenever durability is promised. The only policy that is safe for Raft.
    #[default]
    Always,
    /// Never fsync. For benchmarks only: a machine crash can lose votes and acknowledged entries.
    Never,
}

/// Tuning of [`Storage`]. Start from `StorageOptions::default()` and change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageOptions {
    /// When to fsync. Default [`FsyncPolicy::Always`].
    pub fsync: FsyncPolicy,
    /// A segment is closed and a new one started when the next entry would make it larger than this.
    /// A single entry larger than this gets a segment of its own. Default 64 MiB; allowed
    /// [`StorageOptions::SEGMENT_BYTES_TARGET_MIN`] ..= [`StorageOptions::SEGMENT_BYTES_TARGET_MAX`].
    pub segment_bytes_target: u64,
    /// Largest entry payload `append` accepts. Default 8 MiB; at most [`RECORD_PAYLOAD_BYTES_MAX`].
    pub entry_payload_bytes_max: u32,
}

impl StorageOptions {
    /// Smallest allowed `segment_bytes_target` (small values are for tests).
    pub const SEGMENT_BYTES_TARGET_MIN: u64 = 256;
    /// Largest allowed `segment_bytes_target`: whole segments are read into memory on recovery.
    pub const SEGMENT_BYTES_TARGET_MAX: u64 = 1024 * 1024 * 1024;

    fn validate(&self) -> Result<(), StorageError> {
        let segment_range = Self::SEGMENT_BYTES_TARGET_MIN..=Self::SEGMENT_BYTES_TARGET_MAX;
        if !segment_range.contains(&self.segment_bytes_target) {
            return Err(StorageError::InvalidOptions(format!(
                "segment_bytes_target {} is outside {segment_range:?}",
                self.segment_bytes_target
            )));
        }
        if self.entry_payload_bytes_max > RECORD_PAYLOAD_BYTES_MAX {
            return Err(StorageError::InvalidOptions(format!(
                "entry_payload_bytes_max {} exceeds the format's bound {RECORD_PAYLOAD_BYTES_MAX}",
                self.entry_payload_bytes_max
            )));
        }
        Ok(())
    }
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            fsync: FsyncPolicy::Always,
            segment_bytes_target: 64 * 1024 * 1024,
            entry_payload_bytes_max: 8 * 1024 * 1024,
        }
    }
}

/// Counters of the work done, for metrics and for tests that check group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorageStats {
    /// fdatasyncs of WAL segments (one per `sync` with pending WAL bytes, plus one per segment rollover).
    pub wal_fsyncs: u64,
    /// All fsyncs of files and directories, including `wal_fsyncs`.
    pub fsyncs: u64,
    /// Bytes written to WAL segments (records only, not headers).
    pub wal_bytes_written: u64,
}
