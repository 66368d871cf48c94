//! [`Storage`]: the WAL, the hard state and the snapshot of one node, and their recovery.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::disk::{self, Syncer, TEMP_SUFFIX};
use crate::error::{Corruption, LogRangeError, StorageError};
use crate::hard_state::{self, TermVote, HARD_STATE_FILE_BYTES};
use crate::record::{
    self, Record, SegmentScan, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, SEGMENT_HEADER_BYTES,
};
use crate::snapshot::{
    self, SNAPSHOT_CONF_BYTES_MAX, SNAPSHOT_DATA_BYTES_MAX, SNAPSHOT_FILE_BYTES_MAX,
};
use crate::{Entry, HardState, SnapshotMeta, StorageOptions, StorageStats};

/// Staged WAL bytes are written out once they reach this size, so a huge batch does not sit in memory twice.
const WRITE_BUFFER_BYTES_MAX: usize = 1024 * 1024;
/// Bound on a segment file read during recovery. A segment may exceed its target by one oversized entry and
/// by commit records, never by this much.
const SEGMENT_FILE_BYTES_MAX: u64 = StorageOptions::SEGMENT_BYTES_TARGET_MAX
    + SEGMENT_HEADER_BYTES as u64
    + RECORD_HEADER_BYTES as u64
    + RECORD_PAYLOAD_BYTES_MAX as u64
    + 64 * 1024 * 1024;

const HARD_STATE_FILE: &str = "hardstate";
const WAL_DIR: &str = "wal";
const SNAPSHOT_DIR: &str = "snapshot";
const SEGMENT_SUFFIX: &str = ".seg";

fn segment_file_name(first_index: u64) -> String {
    format!("{first_index:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A torn tail cut off during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub path: PathBuf,
    /// Byte offset where the file was cut (the start of the torn record).
    pub offset: u64,
    /// How many bytes were removed.
    pub bytes_dropped: u64,
    /// Why the record at `offset` failed.
    pub detail: Corruption,
}

/// What [`Storage::open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Term, vote and commit index.
    pub hard_state: HardState,
    /// Metadata of the newest snapshot, if any; its data via [`Storage::load_snapshot`].
    pub snapshot: Option<SnapshotMeta>,
    /// First index in the log (`snapshot index + 1`); entries via [`Storage::entries`].
    pub first_index: u64,
    /// Last index in the log (the snapshot index when the log is empty).
    pub last_index: u64,
    /// A torn tail that was cut off, if there was one.
    pub torn_tail: Option<TornTail>,
    /// Files deleted: temporary files of interrupted writes, superseded snapshots, segments compacted or
    /// discarded by a snapshot whose deletion a crash had interrupted.
    pub removed_files: Vec<PathBuf>,
}

/// One WAL segment file.
#[derive(Debug, Clone)]
struct Segment {
    first_index: u64,
    path: PathBuf,
}

/// The durable state of one Raft node in one data directory. See the crate documentation for the contract.
#[derive(Debug)]
pub struct Storage {
    wal_dir: PathBuf,
    snapshot_dir: PathBuf,
    hard_state_path: PathBuf,
    options: StorageOptions,
    syncer: Syncer,
    /// Held for the flock; closing it releases the directory.
    _lock: File,

    /// Term and vote as last given; `durable_term_vote` is what the `hardstate` file holds.
    term_vote: TermVote,
    durable_term_vote: TermVote,
    /// Commit index as last given; `commit_in_wal` is the largest commit the WAL (or snapshot) records.
    commit: u64,
    commit_in_wal: u64,
    snapshot: Option<SnapshotMeta>,

    /// Entries after the snapshot: `entries[k].index == snapshot_index + 1 + k`.
    entries: Vec<Entry>,
    /// `offsets[k]` is the byte offset of `entries[k]`'s record in its segment.
    offsets: Vec<u64>,
    /// All segment files, by first index; the last one is the active one. Never empty.
    segments: Vec<Segment>,
    /// The active segment, opened for appending.
    active: File,
    /// Length of the active segment including `pending`.
    active_len: u64,
    /// Encoded records not yet written to the active segment.
    pending: Vec<u8>,
    /// Bytes were written to the active segment since its last fdatasync.
    unsynced: bool,
    /// Set after an I/O failure in a write path; every later write is refused.
    poisoned: Option<String>,
}

/// The log as read from the segments, before it is reconciled with the snapshot.
struct ScannedLog {
    segments: Vec<Segment>,
    /// Every entry found, with the byte offset of its record and the position of its segment.
    entries: Vec<(Entry, u64, usize)>,
    commit_max: u64,
    /// Torn tail of the last segment: (offset, file length, detail).
    torn: Option<(u64, u64, Corruption)>,
}

impl Storage {
    /// Opens (creating if needed; its parent must exist) the data directory `dir`, takes its lock, and
    /// recovers: reads and verifies every file, cuts off a torn tail, completes an interrupted compaction or
    /// discard, deletes leftover temporary files. Besides creating missing directories and the lock file,
    /// nothing on disk is changed unless every file checked out.
    pub fn open(dir: &Path, options: StorageOptions) -> Result<(Storage, Recovered), StorageError> {
        options.validate()?;
        let mut syncer = Syncer::new(options.fsync);
        if disk::ensure_dir(dir)? {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                syncer.sync_dir(parent)?;
            }
        }
        let lock = disk::lock_dir(dir)?;
        let wal_dir = dir.join(WAL_DIR);
        let snapshot_dir = dir.join(SNAPSHOT_DIR);
        check_log_present(dir, &wal_dir, &snapshot_dir)?;
        let created_wal = disk::ensure_dir(&wal_dir)?;
        let created_snapshot = disk::ensure_dir(&snapshot_dir)?;
        if created_wal || created_snapshot {
            syncer.sync_dir(dir)?;
        }

        // Phase 1: read and verify everything; change nothing.
        let hard_state_path = dir.join(HARD_STATE_FILE);
        let term_vote = read_hard_state(&hard_state_path)?;
        let mut temp_files = Vec::new();
        for d in [dir, wal_dir.as_path(), snapshot_dir.as_path()] {
            for name in disk::list_files(d)? {
                if name.ends_with(TEMP_SUFFIX) {
                    temp_files.push(d.join(name));
                }
            }
        }
        let (snapshot, old_snapshots) = read_newest_snapshot(&snapshot_dir)?;
        let scanned = scan_wal(&wal_dir)?;
        let (snapshot_index, snapshot_term) =
            snapshot.as_ref().map_or((0, 0), |s| (s.index, s.term));
        if let Some(first) = scanned.segments.first() {
            if first.first_index > snapshot_index + 1 {
                let corruption = Corruption::GapAfterSnapshot {
                    log_first_index: first.first_index,
                    snapshot_index,
                };
                return Err(StorageError::corrupt(&first.path, 16, corruption));
            }
        }
        // The log continues the snapshot if it holds the snapshot's last entry, or if it starts right after it
        // (compacted exactly at a segment boundary, or restarted after the snapshot). A log that an interrupted
        // discard left behind never starts there: it starts at or before the previous snapshot's end.
        let log_matches_snapshot = snapshot_index == 0
            || scanned
                .segments
                .first()
                .is_some_and(|s| s.first_index == snapshot_index + 1)
            || scanned
                .entries
                .iter()
                .any(|(e, _, _)| e.index == snapshot_index && e.term == snapshot_term);
        if log_matches_snapshot {
            if let Some((entry, offset, position)) = scanned
                .entries
                .iter()
                .find(|(e, _, _)| e.index > snapshot_index)
            {
                if entry.term < snapshot_term {
                    let corruption = Corruption::TermRegression {
                        index: entry.index,
                        term: entry.term,
                        previous_term: snapshot_term,
                    };
                    return Err(StorageError::corrupt(
                        &scanned.segments[*position].path,
                        *offset,
                        corruption,
                    ));
                }
            }
        }

        // Phase 2: repair. Each step is durable before the next, and each is one that recovery would redo.
        let mut removed_files = Vec::new();
        let mut segments = scanned.segments;
        let mut torn_tail = None;
        if let Some((offset, file_len, detail)) = scanned.torn {
            let last = segments.last().expect("a torn tail lives in a segment");
            let file = OpenOptions::new()
                .write(true)
                .open(&last.path)
                .map_err(|e| StorageError::io("open for truncation", &last.path, e))?;
            file.set_len(offset)
                .map_err(|e| StorageError::io("truncate torn tail", &last.path, e))?;
            syncer.sync_file(&file, &last.path)?;
            tracing::warn!(
                path = %last.path.display(),
                offset,
                bytes_dropped = file_len - offset,
                %detail,
                "cut off a torn tail of the write-ahead log (a crash interrupted an unsynced write)"
            );
            torn_tail = Some(TornTail {
                path: last.path.clone(),
                offset,
                bytes_dropped: file_len - offset,
                detail,
            });
        }
        for path in temp_files.into_iter().chain(old_snapshots) {
            tracing::info!(path = %path.display(), "removing a leftover temporary file or superseded snapshot");
            syncer.remove_durably(&path)?;
            removed_files.push(path);
        }
        if log_matches_snapshot {
            // Complete an interrupted compaction: drop segments wholly covered by the snapshot.
            while segments.len() > 1 && segments[1].first_index <= snapshot_index + 1 {
                let segment = segments.remove(0);
                tracing::info!(path = %segment.path.display(), snapshot_index, "removing a compacted segment");
                syncer.remove_durably(&segment.path)?;
                removed_files.push(segment.path);
            }
        } else {
            // The snapshot supersedes a log that does not contain its last entry: finish discarding it.
            while let Some(segment) = segments.pop() {
                tracing::warn!(
                    path = %segment.path.display(),
                    snapshot_index,
                    snapshot_term,
                    "removing a segment superseded by the snapshot (the log does not contain its last entry)"
                );
                syncer.remove_durably(&segment.path)?;
                removed_files.push(segment.path);
            }
        }
        if segments.is_empty() {
            segments.push(create_segment(&mut syncer, &wal_dir, snapshot_index + 1)?);
        }
        let active_segment = segments.last().expect("at least one segment");
        let active = open_for_append(&active_segment.path)?;
        let active_len = active
            .metadata()
            .map_err(|e| StorageError::io("stat", &active_segment.path, e))?
            .len();

        let mut entries = Vec::new();
        let mut offsets = Vec::new();
        let mut commit_max = snapshot_index;
        if log_matches_snapshot {
            commit_max = commit_max.max(scanned.commit_max);
            for (entry, offset, _) in scanned.entries {
                if entry.index > snapshot_index {
                    entries.push(entry);
                    offsets.push(offset);
                }
            }
        }
        let last_index = snapshot_index + entries.len() as u64;
        if commit_max > last_index {
            // Impossible if every commit given was within the log (set_hard_state checks it); a lower commit
            // index is always safe, so clamp rather than refuse to start.
            tracing::warn!(
                commit_max,
                last_index,
                "a commit record points past the log; clamping the commit index"
            );
            commit_max = last_index;
        }

        let storage = Storage {
            wal_dir,
            snapshot_dir,
            hard_state_path,
            options,
            syncer,
            _lock: lock,
            term_vote,
            durable_term_vote: term_vote,
            commit: commit_max,
            commit_in_wal: commit_max,
            snapshot: snapshot.clone(),
            entries,
            offsets,
            segments,
            active,
            active_len,
            pending: Vec::new(),
            unsynced: false,
            poisoned: None,
        };
        storage.check_invariants();
        let recovered = Recovered {
            hard_state: storage.hard_state(),
            snapshot,
            first_index: storage.first_index(),
            last_index: storage.last_index(),
            torn_tail,
            removed_files,
        };
        Ok((storage, recovered))
    }

    /// Stages `entries` at the end of the log. They must continue the log exactly (`entries[0].index ==
    /// last_index() + 1`, consecutive indexes, terms never decreasing); to replace a conflicting suffix call
    /// [`Storage::truncate_suffix`] first. Durable only after [`Storage::sync`]; visible to
    /// [`Storage::entries`] at once. The whole batch is checked before anything is staged.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.check_usable()?;
        let mut previous_term = self.last_term();
        for (expected, entry) in (self.last_index() + 1..).zip(entries) {
            if entry.index != expected {
                return Err(StorageError::NonContiguousAppend {
                    expected,
                    found: entry.index,
                });
            }
            if entry.term < previous_term {
                return Err(StorageError::TermRegression {
                    index: entry.index,
                    term: entry.term,
                    previous_term,
                });
            }
            if entry.payload.len() as u64 > u64::from(self.options.entry_payload_bytes_max) {
                return Err(StorageError::EntryTooLarge {
                    index: entry.index,
                    length_bytes: entry.payload.len() as u64,
                    max_bytes: u64::from(self.options.entry_payload_bytes_max),
                });
            }
            previous_term = entry.term;
        }
        let result = self.append_checked(entries);
        self.poison_on_error(result)
    }

    fn append_checked(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        for entry in entries {
            self.roll_if_full(record::entry_record_bytes(entry) as u64)?;
            let offset = self.active_len;
            record::encode_entry(entry, &mut self.pending);
            self.active_len += record::entry_record_bytes(entry) as u64;
            self.entries.push(entry.clone());
            self.offsets.push(offset);
            if self.pending.len() >= WRITE_BUFFER_BYTES_MAX {
                self.flush()?;
            }
        }
        self.check_invariants();
        Ok(())
    }

    /// Stages a new hard state. The term never decreases, a vote once cast in a term never changes, the commit
    /// index never decreases and never passes `last_index()`. Durable only after [`Storage::sync`].
    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        self.check_usable()?;
        let current = self.term_vote;
        if hs.term < current.term {
            return Err(StorageError::HardStateRegression(format!(
                "term {} is lower than the current term {}",
                hs.term, current.term
            )));
        }
        if hs.term == current.term
            && current.voted_for.is_some()
            && hs.voted_for != current.voted_for
        {
            return Err(StorageError::HardStateRegression(format!(
                "vote in term {} changes from {:?} to {:?}",
                hs.term, current.voted_for, hs.voted_for
            )));
        }
        if hs.commit < self.commit {
            return Err(StorageError::HardStateRegression(format!(
                "commit index {} is lower than {}",
                hs.commit, self.commit
            )));
        }
        if hs.commit > self.last_index() {
            return Err(StorageError::CommitBeyondLog {
                commit: hs.commit,
                last_index: self.last_index(),
            });
        }
        self.term_vote = TermVote {
            term: hs.term,
            voted_for: hs.voted_for,
        };
        self.commit = hs.commit;
        Ok(())
    }

    /// Makes everything staged durable: rewrites the `hardstate` file if the term or vote changed, writes a
    /// commit record if the commit index advanced, writes the staged WAL bytes and fdatasyncs the active
    /// segment once. Does nothing (and no fsync) when nothing is staged.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.sync_checked();
        self.poison_on_error(result)
    }

    fn sync_checked(&mut self) -> Result<(), StorageError> {
        // The term and vote first, so that the durable term never lags the terms of durable entries.
        if self.term_vote != self.durable_term_vote {
            let bytes = hard_state::encode(self.term_vote);
            self.syncer
                .write_atomically(&self.hard_state_path, &[&bytes])?;
            self.durable_term_vote = self.term_vote;
        }
        if self.commit > self.commit_in_wal {
            self.roll_if_full(RECORD_HEADER_BYTES as u64)?;
            record::encode_commit(self.commit, &mut self.pending);
            self.active_len += RECORD_HEADER_BYTES as u64;
            self.commit_in_wal = self.commit;
        }
        self.flush()?;
        if self.unsynced {
            let active = self.segments.last().expect("at least one segment");
            self.syncer.sync_wal_data(&self.active, &active.path)?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Durably removes every entry with index `>= from` (a follower dropping a conflicting, uncommitted suffix).
    /// A no-op when `from > last_index()`. Fails for entries inside the snapshot or at or below the commit index.
    /// Staged entries below `from` are written out (not necessarily synced).
    pub fn truncate_suffix(&mut self, from: u64) -> Result<(), StorageError> {
        self.check_usable()?;
        let snapshot_index = self.snapshot_index();
        if from <= snapshot_index {
            return Err(StorageError::TruncateCompacted {
                from,
                snapshot_index,
            });
        }
        if from <= self.commit {
            return Err(StorageError::TruncateCommitted {
                from,
                commit: self.commit,
            });
        }
        if from > self.last_index() {
            return Ok(());
        }
        let result = self.truncate_checked(from);
        self.poison_on_error(result)
    }

    fn truncate_checked(&mut self, from: u64) -> Result<(), StorageError> {
        assert!(from > self.snapshot_index());
        assert!(from <= self.last_index());
        self.flush()?;
        let keep = self.segments.partition_point(|s| s.first_index <= from);
        assert!(
            keep >= 1,
            "the first segment starts at or before the first entry"
        );
        // Newest first, each deletion durable before the next: a crash leaves a prefix of the old log.
        let mut reopened = false;
        while self.segments.len() > keep {
            let segment = self.segments.pop().expect("more segments than kept");
            self.syncer.remove_durably(&segment.path)?;
            reopened = true;
        }
        let kept_path = self.segments.last().expect("kept segment").path.clone();
        if reopened {
            self.active = open_for_append(&kept_path)?;
        }
        let position = (from - self.first_index()) as usize;
        let offset = self.offsets[position];
        self.active
            .set_len(offset)
            .map_err(|e| StorageError::io("truncate", &kept_path, e))?;
        // The cut must be durable before any new record lands after it, or a crash could expose old records
        // behind new ones.
        self.syncer.sync_file(&self.active, &kept_path)?;
        self.active_len = offset;
        self.unsynced = false;
        self.entries.truncate(position);
        self.offsets.truncate(position);
        // The cut may have removed the newest commit record; let the next sync write it again.
        self.commit_in_wal = self.snapshot_index();
        self.check_invariants();
        Ok(())
    }

    /// Durably stores a snapshot covering the log up to `meta.index`, deletes the previous snapshot, and
    /// compacts the log: if the log holds (`meta.index`, `meta.term`), segments wholly at or below `meta.index`
    /// are deleted and later entries kept; otherwise the whole log is discarded and continues at
    /// `meta.index + 1`. The commit index becomes at least `meta.index`. Refuses a snapshot that is not newer
    /// than the current one, or whose last entry conflicts with a committed entry.
    pub fn save_snapshot(&mut self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        self.check_usable()?;
        if meta.index <= self.snapshot_index() {
            return Err(StorageError::StaleSnapshot {
                index: meta.index,
                current_index: self.snapshot_index(),
            });
        }
        if meta.conf.len() as u64 > u64::from(SNAPSHOT_CONF_BYTES_MAX) {
            return Err(StorageError::SnapshotTooLarge {
                what: "conf",
                length_bytes: meta.conf.len() as u64,
                max_bytes: u64::from(SNAPSHOT_CONF_BYTES_MAX),
            });
        }
        if data.len() as u64 > SNAPSHOT_DATA_BYTES_MAX {
            return Err(StorageError::SnapshotTooLarge {
                what: "data",
                length_bytes: data.len() as u64,
                max_bytes: SNAPSHOT_DATA_BYTES_MAX,
            });
        }
        if meta.index <= self.last_index() && meta.index <= self.commit {
            let term = self.term(meta.index).expect("index within the log");
            if term != meta.term {
                return Err(StorageError::SnapshotConflictsWithCommit {
                    index: meta.index,
                    term: meta.term,
                    commit: self.commit,
                });
            }
        }
        let result = self.save_snapshot_checked(meta, data);
        self.poison_on_error(result)
    }

    fn save_snapshot_checked(
        &mut self,
        meta: &SnapshotMeta,
        data: &[u8],
    ) -> Result<(), StorageError> {
        // Decided before the snapshot changes, since first_index and last_index derive from it.
        let old_first_index = self.first_index();
        let log_matches = meta.index <= self.last_index()
            && self.entries[(meta.index - old_first_index) as usize].term == meta.term;
        let path = self
            .snapshot_dir
            .join(snapshot::file_name(meta.term, meta.index));
        let header = snapshot::encode_header(meta, data.len());
        let trailer = snapshot::encode_trailer(&header, data);
        self.syncer
            .write_atomically(&path, &[&header, data, &trailer])?;
        if let Some(previous) = self.snapshot.replace(meta.clone()) {
            let previous_path = self
                .snapshot_dir
                .join(snapshot::file_name(previous.term, previous.index));
            self.syncer.remove_durably(&previous_path)?;
        }

        if log_matches {
            let drop_count = (meta.index + 1 - old_first_index) as usize;
            self.entries.drain(..drop_count);
            self.offsets.drain(..drop_count);
            // Oldest first: a crash leaves a suffix that still starts at or before the snapshot index.
            while self.segments.len() > 1 && self.segments[1].first_index <= meta.index + 1 {
                let segment = self.segments.remove(0);
                self.syncer.remove_durably(&segment.path)?;
            }
            self.commit_in_wal = self.commit_in_wal.max(meta.index);
        } else {
            self.pending.clear();
            // Newest first: a crash leaves a prefix of the old log, which recovery discards in the same way.
            while let Some(segment) = self.segments.pop() {
                self.syncer.remove_durably(&segment.path)?;
            }
            let segment = create_segment(&mut self.syncer, &self.wal_dir, meta.index + 1)?;
            self.active = open_for_append(&segment.path)?;
            self.active_len = SEGMENT_HEADER_BYTES as u64;
            self.unsynced = false;
            self.segments.push(segment);
            self.entries.clear();
            self.offsets.clear();
            self.commit_in_wal = meta.index;
        }
        self.commit = self.commit.max(meta.index);
        self.check_invariants();
        Ok(())
    }

    /// Reads and verifies the newest snapshot's file.
    pub fn load_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let Some(expected) = &self.snapshot else {
            return Ok(None);
        };
        let path = self
            .snapshot_dir
            .join(snapshot::file_name(expected.term, expected.index));
        let (meta, data) = read_snapshot_file(&path)?;
        if meta != *expected {
            // The file was replaced behind our back while the directory was locked.
            let corruption = Corruption::NameMismatch {
                field: "snapshot index",
                from_name: expected.index,
                from_header: meta.index,
            };
            return Err(StorageError::corrupt(&path, 16, corruption));
        }
        Ok(Some((meta, data)))
    }

    /// Metadata of the newest snapshot.
    pub fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref()
    }

    /// The hard state as last given (staged or durable).
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term_vote.term,
            voted_for: self.term_vote.voted_for,
            commit: self.commit,
        }
    }

    /// The entries with indexes in `lo..hi`, served from memory.
    pub fn entries(&self, lo: u64, hi: u64) -> Result<&[Entry], LogRangeError> {
        if lo > hi {
            return Err(LogRangeError::InvertedRange { lo, hi });
        }
        let first_index = self.first_index();
        if lo < first_index {
            return Err(LogRangeError::Compacted {
                index: lo,
                first_index,
            });
        }
        if hi > self.last_index() + 1 {
            return Err(LogRangeError::Unavailable {
                index: hi - 1,
                last_index: self.last_index(),
            });
        }
        Ok(&self.entries[(lo - first_index) as usize..(hi - first_index) as usize])
    }

    /// The term of the entry at `index`. Also answers for the snapshot's last index (and 0 for index 0 when
    /// there is no snapshot), which Raft needs for the consistency check of the first entry after it.
    pub fn term(&self, index: u64) -> Result<u64, LogRangeError> {
        let snapshot_index = self.snapshot_index();
        if index == snapshot_index {
            return Ok(self.snapshot_term());
        }
        if index < snapshot_index {
            return Err(LogRangeError::Compacted {
                index,
                first_index: self.first_index(),
            });
        }
        if index > self.last_index() {
            return Err(LogRangeError::Unavailable {
                index,
                last_index: self.last_index(),
            });
        }
        Ok(self.entries[(index - self.first_index()) as usize].term)
    }

    /// The first index in the log: one past the snapshot.
    pub fn first_index(&self) -> u64 {
        self.snapshot_index() + 1
    }

    /// The last index in the log; the snapshot index when the log is empty.
    pub fn last_index(&self) -> u64 {
        self.snapshot_index() + self.entries.len() as u64
    }

    /// Counters of fsyncs and bytes written since `open`.
    pub fn stats(&self) -> StorageStats {
        self.syncer.stats()
    }

    fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.index)
    }

    fn snapshot_term(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.term)
    }

    fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_term(), |e| e.term)
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            Some(reason) => Err(StorageError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    fn poison_on_error<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(error) = &result {
            self.poisoned = Some(error.to_string());
        }
        result
    }

    /// Writes staged bytes to the active segment (no fsync).
    fn flush(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = &self.segments.last().expect("at least one segment").path;
        self.active
            .write_all(&self.pending)
            .map_err(|e| StorageError::io("write", path, e))?;
        self.syncer.count_written(self.pending.len());
        self.pending.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Starts a new segment if a record of `record_bytes` would push the active one past its target. A
    /// segment without entries is never closed, so segment names (first indexes) stay unique and every
    /// segment but the last holds at least one entry.
    fn roll_if_full(&mut self, record_bytes: u64) -> Result<(), StorageError> {
        let active_first_index = self
            .segments
            .last()
            .expect("at least one segment")
            .first_index;
        let next_index = self.last_index() + 1;
        let holds_entries = next_index > active_first_index;
        if !holds_entries || self.active_len + record_bytes <= self.options.segment_bytes_target {
            return Ok(());
        }
        // The closed segment must be durable before the next one exists: recovery relies on only the last
        // segment ever holding unsynced bytes.
        self.flush()?;
        if self.unsynced {
            let path = &self.segments.last().expect("at least one segment").path;
            self.syncer.sync_wal_data(&self.active, path)?;
            self.unsynced = false;
        }
        let segment = create_segment(&mut self.syncer, &self.wal_dir, next_index)?;
        self.active = open_for_append(&segment.path)?;
        self.active_len = SEGMENT_HEADER_BYTES as u64;
        self.segments.push(segment);
        Ok(())
    }

    /// Cheap structural invariants, checked after every change.
    fn check_invariants(&self) {
        assert_eq!(self.entries.len(), self.offsets.len());
        assert!(!self.segments.is_empty());
        assert!(self.segments[0].first_index <= self.first_index());
        assert!(self
            .segments
            .windows(2)
            .all(|w| w[0].first_index < w[1].first_index));
        assert!(self.commit <= self.last_index());
        assert!(self.commit_in_wal <= self.commit);
        assert!(self.active_len >= SEGMENT_HEADER_BYTES as u64);
        if let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) {
            assert_eq!(first.index, self.first_index());
            assert_eq!(last.index, self.last_index());
        }
    }
}

fn open_for_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| StorageError::io("open for append", path, e))
}

/// Creates a segment atomically (header written, fsynced and renamed into place), so that a segment file
/// with a bad header is always damage, never a crash during creation.
fn create_segment(
    syncer: &mut Syncer,
    wal_dir: &Path,
    first_index: u64,
) -> Result<Segment, StorageError> {
    let path = wal_dir.join(segment_file_name(first_index));
    syncer.write_atomically(&path, &[&record::encode_segment_header(first_index)])?;
    Ok(Segment { first_index, path })
}

/// Every open leaves the WAL directory with at least one segment behind, and the `hardstate` file and snapshots
/// are only written by an opened storage. So a directory holding either of them but no WAL directory, or the
/// `hardstate` file but no segment and no snapshot, lost its WAL after the fact. (A WAL directory that is empty
/// next to a snapshot is what a crash in the middle of discarding the log for that snapshot leaves: recovery
/// completes it.)
fn check_log_present(dir: &Path, wal_dir: &Path, snapshot_dir: &Path) -> Result<(), StorageError> {
    let hard_state = dir.join(HARD_STATE_FILE);
    let hard_state = hard_state.is_file().then_some(hard_state);
    let snapshot = if snapshot_dir.is_dir() {
        disk::list_files(snapshot_dir)?
            .into_iter()
            .find(|name| !name.ends_with(TEMP_SUFFIX))
            .map(|name| snapshot_dir.join(name))
    } else {
        None
    };
    let missing = |evidence: PathBuf| StorageError::MissingLog {
        wal_dir: wal_dir.to_path_buf(),
        evidence,
    };
    if !wal_dir.is_dir() {
        return match hard_state.or(snapshot) {
            Some(evidence) => Err(missing(evidence)),
            None => Ok(()),
        };
    }
    let has_segment = disk::list_files(wal_dir)?
        .iter()
        .any(|name| parse_segment_file_name(name).is_some());
    match (has_segment, hard_state, snapshot) {
        (false, Some(evidence), None) => Err(missing(evidence)),
        _ => Ok(()),
    }
}

fn read_hard_state(path: &Path) -> Result<TermVote, StorageError> {
    if !path
        .try_exists()
        .map_err(|e| StorageError::io("stat", path, e))?
    {
        return Ok(TermVote::default());
    }
    // Read a little more than the format's size so that trailing bytes are reported as such.
    let bytes = disk::read_bounded(path, HARD_STATE_FILE_BYTES as u64 + 4096)?;
    hard_state::decode(&bytes)
        .map_err(|(offset, corruption)| StorageError::corrupt(path, offset, corruption))
}

fn read_snapshot_file(path: &Path) -> Result<(SnapshotMeta, Vec<u8>), StorageError> {
    let mut bytes = disk::read_bounded(path, SNAPSHOT_FILE_BYTES_MAX)?;
    let (meta, range) = snapshot::decode(&bytes)
        .map_err(|(offset, corruption)| StorageError::corrupt(path, offset, corruption))?;
    bytes.truncate(range.end);
    bytes.drain(..range.start);
    Ok((meta, bytes))
}

/// Finds, reads and verifies the newest snapshot; returns it with the paths of older ones.
fn read_newest_snapshot(dir: &Path) -> Result<(Option<SnapshotMeta>, Vec<PathBuf>), StorageError> {
    let mut found = Vec::new();
    for name in disk::list_files(dir)? {
        if name.ends_with(TEMP_SUFFIX) {
            continue;
        }
        match snapshot::parse_file_name(&name) {
            Some((term, index)) => found.push((index, term, dir.join(name))),
            None => {
                tracing::warn!(path = %dir.join(&name).display(), "ignoring an unknown file in the snapshot directory")
            }
        }
    }
    found.sort();
    let Some((index, term, path)) = found.pop() else {
        return Ok((None, Vec::new()));
    };
    let (meta, _data) = read_snapshot_file(&path)?;
    if meta.index != index {
        let corruption = Corruption::NameMismatch {
            field: "snapshot index",
            from_name: index,
            from_header: meta.index,
        };
        return Err(StorageError::corrupt(&path, 16, corruption));
    }
    if meta.term != term {
        let corruption = Corruption::NameMismatch {
            field: "snapshot term",
            from_name: term,
            from_header: meta.term,
        };
        return Err(StorageError::corrupt(&path, 24, corruption));
    }
    let older = found.into_iter().map(|(_, _, path)| path).collect();
    Ok((Some(meta), older))
}

/// Reads and verifies every segment, in order, checking that indexes run on without gaps and terms never
/// decrease across the whole log.
fn scan_wal(dir: &Path) -> Result<ScannedLog, StorageError> {
    let mut segments = Vec::new();
    for name in disk::list_files(dir)? {
        if name.ends_with(TEMP_SUFFIX) {
            continue;
        }
        match parse_segment_file_name(&name) {
            Some(first_index) => segments.push(Segment {
                first_index,
                path: dir.join(name),
            }),
            None => {
                tracing::warn!(path = %dir.join(&name).display(), "ignoring an unknown file in the WAL directory")
            }
        }
    }
    segments.sort_by_key(|s| s.first_index);

    let mut entries: Vec<(Entry, u64, usize)> = Vec::new();
    let mut commit_max = 0;
    let mut torn = None;
    let mut expected_index = segments.first().map_or(1, |s| s.first_index);
    let mut previous_term = 0;
    let count = segments.len();
    for (position, segment) in segments.iter().enumerate() {
        let path = &segment.path;
        let is_last = position + 1 == count;
        let bytes = disk::read_bounded(path, SEGMENT_FILE_BYTES_MAX)?;
        let scan: SegmentScan = record::scan_segment(&bytes, is_last)
            .map_err(|(offset, corruption)| StorageError::corrupt(path, offset, corruption))?;
        if scan.first_index != segment.first_index {
            let corruption = Corruption::NameMismatch {
                field: "first index",
                from_name: segment.first_index,
                from_header: scan.first_index,
            };
            return Err(StorageError::corrupt(path, 16, corruption));
        }
        if segment.first_index != expected_index {
            let corruption = Corruption::IndexGap {
                expected: expected_index,
                found: segment.first_index,
            };
            return Err(StorageError::corrupt(path, 16, corruption));
        }
        let mut entry_count = 0;
        for scanned in scan.records {
            match scanned.record {
                Record::Entry(entry) => {
                    if entry.index != expected_index {
                        let corruption = Corruption::IndexGap {
                            expected: expected_index,
                            found: entry.index,
                        };
                        return Err(StorageError::corrupt(path, scanned.offset, corruption));
                    }
                    if entry.term < previous_term {
                        let corruption = Corruption::TermRegression {
                            index: entry.index,
                            term: entry.term,
                            previous_term,
                        };
                        return Err(StorageError::corrupt(path, scanned.offset, corruption));
                    }
                    expected_index += 1;
                    previous_term = entry.term;
                    entry_count += 1;
                    entries.push((entry, scanned.offset, position));
                }
                Record::Commit { commit } => commit_max = commit_max.max(commit),
            }
        }
        if entry_count == 0 && !is_last {
            return Err(StorageError::corrupt(
                path,
                SEGMENT_HEADER_BYTES as u64,
                Corruption::EmptyInnerSegment,
            ));
        }
        if let Some(t) = scan.torn {
            torn = Some((t.offset, bytes.len() as u64, t.detail));
        }
    }
    Ok(ScannedLog {
        segments,
        entries,
        commit_max,
        torn,
    })
}
