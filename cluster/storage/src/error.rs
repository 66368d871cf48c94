//! Errors of the storage layer.
//!
//! Two kinds: [`StorageError`] for everything that touches the disk or changes the log, and
//! [`LogRangeError`] for the pure in-memory look-ups (`entries`, `term`) that the Raft core calls often.

use std::io;
use std::path::PathBuf;

/// What exactly is wrong with bytes found on disk. Always wrapped in [`StorageError::Corrupt`], which adds the
/// file path and byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// The file does not start with the magic bytes of its format.
    #[error("bad magic: expected {expected:?}, found {found:?}")]
    BadMagic {
        /// The magic bytes the format requires.
        expected: [u8; 8],
        /// The bytes found instead.
        found: [u8; 8],
    },
    /// The file was written by a format version this build does not read.
    #[error("unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Version stored in the file.
        found: u32,
        /// Version this build writes and reads.
        supported: u32,
    },
    /// A file header or a whole small file failed its checksum.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// Checksum stored in the file.
        stored: u32,
        /// Checksum computed over the bytes read.
        computed: u32,
    },
    /// The file or record is shorter than its header says.
    #[error("truncated: needed {needed_bytes} bytes, found {found_bytes}")]
    Truncated {
        /// Bytes the header requires.
        needed_bytes: u64,
        /// Bytes present.
        found_bytes: u64,
    },
    /// The file is longer than its header says.
    #[error(
        "unexpected trailing bytes: expected {expected_bytes} bytes in total, found {found_bytes}"
    )]
    TrailingBytes {
        /// Size the header implies.
        expected_bytes: u64,
        /// Actual size.
        found_bytes: u64,
    },
    /// A length field exceeds the format's bound.
    #[error("length {length_bytes} exceeds the maximum of {max_bytes} bytes")]
    TooLarge {
        /// The length found.
        length_bytes: u64,
        /// The bound.
        max_bytes: u64,
    },
    /// A field that must be zero (reserved for later versions) is not.
    #[error("reserved field is not zero")]
    ReservedNotZero,
    /// A record kind this build does not know, inside a record whose checksum is valid.
    #[error("unknown record kind {kind}")]
    UnknownRecordKind {
        /// The kind byte found.
        kind: u8,
    },
    /// A commit record carries a payload, which the format forbids.
    #[error("commit record has a payload of {length_bytes} bytes")]
    CommitWithPayload {
        /// The payload length found.
        length_bytes: u64,
    },
    /// A WAL record that failed its frame checks (length, bounds or checksum) and is not provably a torn tail:
    /// it is followed by an intact record, or sits in a segment that is not the last one.
    #[error(
        "damaged record in the middle of the log, not a torn tail ({detail}){}",
        match next_intact_offset {
            Some(offset) => format!("; an intact record follows at byte offset {offset}"),
            None => String::new(),
        }
    )]
    MidLogRecord {
        /// Why the record failed (length, bounds or checksum).
        detail: String,
        /// Byte offset of the next intact record in the same file, if that is how the damage was recognised.
        next_intact_offset: Option<u64>,
    },
    /// An index field is zero; log indexes start at 1.
    #[error("index 0 is not a log index (indexes start at 1)")]
    ZeroIndex,
    /// An entry's index is not the one that must follow the previous entry.
    #[error("log index gap: expected entry {expected}, found {found}")]
    IndexGap {
        /// Index that must come next.
        expected: u64,
        /// Index found.
        found: u64,
    },
    /// An entry's term is lower than the previous entry's: Raft terms in a log never decrease.
    #[error("term goes backwards at entry {index}: term {term} after term {previous_term}")]
    TermRegression {
        /// Index of the entry.
        index: u64,
        /// Its term.
        term: u64,
        /// The previous entry's term.
        previous_term: u64,
    },
    /// A segment contains no entry but is not the last segment.
    #[error("segment holds no entry but is not the last segment")]
    EmptyInnerSegment,
    /// A file's name and its header disagree (for example a renamed segment).
    #[error("name says {field} {from_name}, header says {from_header}")]
    NameMismatch {
        /// Which field disagrees.
        field: &'static str,
        /// Value encoded in the file name.
        from_name: u64,
        /// Value stored in the header.
        from_header: u64,
    },
    /// The log starts after the snapshot ends: entries in between are missing.
    #[error("log starts at entry {log_first_index} but the snapshot only covers entries up to {snapshot_index}")]
    GapAfterSnapshot {
        /// First index of the oldest segment.
        log_first_index: u64,
        /// Last index included in the snapshot (0 without a snapshot).
        snapshot_index: u64,
    },
}

/// Errors of [`crate::Storage`] operations.
///
/// Bad data on disk is always [`StorageError::Corrupt`] with the file and byte offset; it is never a panic and
/// never repaired silently. After an I/O error in a write path the storage refuses further writes
/// ([`StorageError::Poisoned`]): what reached the disk is then unknown, so the caller must reopen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (a verb phrase such as "fsync").
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Another process (or another `Storage` in this process) holds the data directory's lock.
    #[error("data directory is locked by another process: {path}")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// Bytes on disk are damaged or inconsistent. Nothing was changed on disk.
    #[error("corrupt data in {path} at byte offset {offset}: {corruption}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged record or field within the file.
        offset: u64,
        /// What is wrong.
        corruption: Corruption,
    },
    /// `StorageOptions` are out of range.
    #[error("invalid storage options: {0}")]
    InvalidOptions(String),
    /// `append` got entries that do not continue the log.
    #[error("append not contiguous: expected index {expected}, got {found}")]
    NonContiguousAppend {
        /// The index that must come next (`last_index + 1`).
        expected: u64,
        /// The index given.
        found: u64,
    },
    /// `append` got an entry whose term is lower than the entry before it.
    #[error("append would make the term go backwards at index {index}: term {term} after {previous_term}")]
    TermRegression {
        /// Index of the offending entry.
        index: u64,
        /// Its term.
        term: u64,
        /// The term of the entry (or snapshot) before it.
        previous_term: u64,
    },
    /// An entry payload exceeds `StorageOptions::entry_payload_bytes_max`.
    #[error("entry {index} payload is {length_bytes} bytes, the maximum is {max_bytes}")]
    EntryTooLarge {
        /// Index of the entry.
        index: u64,
        /// Its payload length.
        length_bytes: u64,
        /// The configured bound.
        max_bytes: u64,
    },
    /// `truncate_suffix` was asked to remove entries already covered by the snapshot.
    #[error("cannot truncate from index {from}: entries up to {snapshot_index} are compacted into the snapshot")]
    TruncateCompacted {
        /// The requested start of the removed suffix.
        from: u64,
        /// Last index included in the snapshot.
        snapshot_index: u64,
    },
    /// `truncate_suffix` was asked to remove committed entries, which Raft never does.
    #[error("cannot truncate from index {from}: entries up to {commit} are committed")]
    TruncateCommitted {
        /// The requested start of the removed suffix.
        from: u64,
        /// The commit index last given to `set_hard_state`.
        commit: u64,
    },
    /// `set_hard_state` got a state that goes backwards (term, vote or commit).
    #[error("hard state regression: {0}")]
    HardStateRegression(String),
    /// `set_hard_state` got a commit index beyond the last log entry.
    #[error("commit index {commit} is beyond the last log index {last_index}")]
    CommitBeyondLog {
        /// The commit index given.
        commit: u64,
        /// The last index of the log.
        last_index: u64,
    },
    /// `save_snapshot` got a snapshot that is not newer than the current one.
    #[error(
        "snapshot at index {index} is not newer than the current snapshot at index {current_index}"
    )]
    StaleSnapshot {
        /// Index of the offered snapshot.
        index: u64,
        /// Index of the snapshot already stored.
        current_index: u64,
    },
    /// `save_snapshot` got a snapshot whose last entry conflicts with a committed entry of the log.
    #[error("snapshot at index {index} term {term} conflicts with the log, which is committed up to {commit}")]
    SnapshotConflictsWithCommit {
        /// Index of the offered snapshot.
        index: u64,
        /// Term of the offered snapshot.
        term: u64,
        /// The commit index.
        commit: u64,
    },
    /// A snapshot's configuration or data exceeds the format's bound.
    #[error("snapshot {what} is {length_bytes} bytes, the maximum is {max_bytes}")]
    SnapshotTooLarge {
        /// "conf" or "data".
        what: &'static str,
        /// The length given.
        length_bytes: u64,
        /// The bound.
        max_bytes: u64,
    },
    /// The data directory holds state that only exists after the WAL was created (the `hardstate` file or a
    /// snapshot), but the WAL is gone: starting would silently forget every entry. Nothing was changed on disk.
    #[error("the write-ahead log is missing: {wal_dir} holds no segment, but {evidence} exists (the WAL was deleted?); refusing to start with an empty log. Restore the WAL, or delete the whole data directory to start this node afresh")]
    MissingLog {
        /// The WAL directory that should hold segments.
        wal_dir: PathBuf,
        /// The file that proves the directory was in use.
        evidence: PathBuf,
    },
    /// An earlier write or fsync failed; the in-memory view may not match the disk any more.
    #[error("storage is unusable after an earlier I/O failure ({0}); reopen it to recover")]
    Poisoned(String),
}

impl StorageError {
    /// Builds an [`StorageError::Io`] for `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Builds a [`StorageError::Corrupt`] for `path` at `offset`.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, offset: u64, corruption: Corruption) -> Self {
        StorageError::Corrupt {
            path: path.into(),
            offset,
            corruption,
        }
    }
}

/// Errors of the in-memory log look-ups `entries` and `term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogRangeError {
    /// The index was compacted into the snapshot; only the snapshot's own last index keeps its term.
    #[error("index {index} is compacted (the log starts at {first_index})")]
    Compacted {
        /// The index asked for.
        index: u64,
        /// The first index still in the log.
        first_index: u64,
    },
    /// The index is beyond the last entry.
    #[error("index {index} is unavailable (the log ends at {last_index})")]
    Unavailable {
        /// The index asked for.
        index: u64,
        /// The last index in the log.
        last_index: u64,
    },
    /// `lo > hi` in a range request.
    #[error("inverted range [{lo}, {hi}): lo > hi")]
    InvertedRange {
        /// Start of the range.
        lo: u64,
        /// End of the range (exclusive).
        hi: u64,
    },
}
