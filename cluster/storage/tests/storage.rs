//! Behaviour of `Storage` against a real directory: durability across reopen, group commit, rollover,
//! truncation, compaction, and recovery from torn tails, corruption and interrupted operations.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use raft_storage::{
    Corruption, Entry, FsyncPolicy, HardState, LogRangeError, SnapshotMeta, Storage, StorageError,
    StorageOptions,
};

const SEGMENT_HEADER_BYTES: u64 = 32;
const RECORD_HEADER_BYTES: u64 = 28;

fn small_segments() -> StorageOptions {
    let mut options = StorageOptions::default();
    options.segment_bytes_target = 512;
    options
}

fn entry(index: u64, term: u64) -> Entry {
    Entry::new(
        index,
        term,
        format!("entry {index} of term {term}").into_bytes(),
    )
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn open(dir: &Path, options: &StorageOptions) -> (Storage, raft_storage::Recovered) {
    Storage::open(dir, options.clone()).expect("open")
}

fn segment_path(dir: &Path, first_index: u64) -> PathBuf {
    dir.join("wal").join(format!("{first_index:020}.seg"))
}

fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn segment_first_indexes(dir: &Path) -> Vec<u64> {
    segment_names(dir)
        .iter()
        .map(|n| n.strip_suffix(".seg").unwrap().parse().unwrap())
        .collect()
}

/// Every file under `dir` but the lock, with its content.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() != "LOCK" {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn all_entries(storage: &Storage) -> Vec<Entry> {
    storage
        .entries(storage.first_index(), storage.last_index() + 1)
        .unwrap()
        .to_vec()
}

#[test]
fn append_sync_reopen_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::default();
    let (mut storage, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.first_index, 1);
    assert_eq!(recovered.last_index, 0);
    assert_eq!(recovered.hard_state, HardState::default());
    assert_eq!(recovered.snapshot, None);
    assert_eq!(storage.term(0), Ok(0));

    let written: Vec<Entry> = (1..=50)
        .map(|i| Entry::new(i, 1 + i / 20, vec![i as u8; i as usize * 3]))
        .collect();
    storage.append(&written[..10]).unwrap();
    storage.append(&written[10..]).unwrap();
    storage.append(&[]).unwrap();
    storage.sync().unwrap();
    assert_eq!(storage.entries(1, 51).unwrap(), &written[..]);
    drop(storage);

    let (storage, recovered) = open(dir.path(), &options);
    assert_eq!((recovered.first_index, recovered.last_index), (1, 50));
    assert_eq!(recovered.torn_tail, None);
    assert!(recovered.removed_files.is_empty());
    assert_eq!(all_entries(&storage), written);
    assert_eq!(storage.term(50), Ok(3));
    assert_eq!(storage.entries(20, 22).unwrap(), &written[19..21]);
}

#[test]
fn group_commit_uses_one_fsync_for_a_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    // Establish term and vote first so that the batch below changes only entries and the commit index.
    storage
        .set_hard_state(&HardState {
            term: 1,
            voted_for: Some(1),
            commit: 0,
        })
        .unwrap();
    storage.sync().unwrap();
    let before = storage.stats();

    for chunk in entries(1..=1000, 1).chunks(100) {
        storage.append(chunk).unwrap();
    }
    storage
        .set_hard_state(&HardState {
            term: 1,
            voted_for: Some(1),
            commit: 900,
        })
        .unwrap();
    storage.sync().unwrap();
    let after = storage.stats();
    assert_eq!(after.wal_fsyncs - before.wal_fsyncs, 1);
    assert_eq!(after.fsyncs - before.fsyncs, 1);
    assert!(after.wal_bytes_written > before.wal_bytes_written);

    // A sync with nothing staged costs nothing.
    storage.sync().unwrap();
    assert_eq!(storage.stats(), after);
    drop(storage);

    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered.last_index, 1000);
    assert_eq!(recovered.hard_state.commit, 900);
}

#[test]
fn hard_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::default();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=3, 2)).unwrap();
    let hs = HardState {
        term: 2,
        voted_for: Some(7),
        commit: 3,
    };
    storage.set_hard_state(&hs).unwrap();
    let before = storage.stats();
    storage.sync().unwrap();
    // The vote costs the atomic file replacement (file + directory) on top of the one WAL fdatasync.
    assert_eq!(storage.stats().wal_fsyncs - before.wal_fsyncs, 1);
    assert_eq!(storage.stats().fsyncs - before.fsyncs, 3);
    drop(storage);

    let (mut storage, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.hard_state, hs);
    // A new term without a vote.
    let hs2 = HardState {
        term: 5,
        voted_for: None,
        commit: 3,
    };
    storage.set_hard_state(&hs2).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.hard_state, hs2);
}

#[test]
fn unsynced_hard_state_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    storage
        .set_hard_state(&HardState {
            term: 4,
            voted_for: Some(2),
            commit: 0,
        })
        .unwrap();
    drop(storage);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered.hard_state, HardState::default());
}

#[test]
fn hard_state_rules_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    storage.append(&entries(1..=5, 3)).unwrap();
    let hs = |term, voted_for, commit| HardState {
        term,
        voted_for,
        commit,
    };
    storage.set_hard_state(&hs(3, None, 1)).unwrap();
    storage.set_hard_state(&hs(3, Some(2), 2)).unwrap();
    let err = storage.set_hard_state(&hs(3, Some(4), 2)).unwrap_err();
    assert!(matches!(err, StorageError::HardStateRegression(_)), "{err}");
    let err = storage.set_hard_state(&hs(2, None, 2)).unwrap_err();
    assert!(matches!(err, StorageError::HardStateRegression(_)), "{err}");
    let err = storage.set_hard_state(&hs(3, Some(2), 1)).unwrap_err();
    assert!(matches!(err, StorageError::HardStateRegression(_)), "{err}");
    let err = storage.set_hard_state(&hs(3, Some(2), 6)).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::CommitBeyondLog {
                commit: 6,
                last_index: 5
            }
        ),
        "{err}"
    );
    // A new term resets the vote.
    storage.set_hard_state(&hs(4, Some(4), 5)).unwrap();
    // Rejected calls changed nothing and did not poison the storage.
    storage.sync().unwrap();
    assert_eq!(storage.hard_state(), hs(4, Some(4), 5));
}

#[test]
fn append_rejects_gaps_overlaps_term_regressions_and_oversized_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StorageOptions::default();
    options.entry_payload_bytes_max = 32;
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=3, 2)).unwrap();
    let err = storage.append(&[entry(5, 2)]).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NonContiguousAppend {
                expected: 4,
                found: 5
            }
        ),
        "{err}"
    );
    let err = storage.append(&[entry(3, 2)]).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NonContiguousAppend {
                expected: 4,
                found: 3
            }
        ),
        "{err}"
    );
    let err = storage.append(&[entry(4, 2), entry(5, 1)]).unwrap_err();
    assert!(
        matches!(err, StorageError::TermRegression { index: 5, .. }),
        "{err}"
    );
    let err = storage
        .append(&[Entry::new(4, 2, vec![0; 33])])
        .unwrap_err();
    assert!(
        matches!(err, StorageError::EntryTooLarge { index: 4, .. }),
        "{err}"
    );
    // A rejected batch stages nothing, not even its valid prefix.
    assert_eq!(storage.last_index(), 3);
    storage.append(&[Entry::new(4, 2, vec![0; 32])]).unwrap();
    storage.sync().unwrap();
    assert_eq!(storage.last_index(), 4);
}

#[test]
fn range_queries_report_compacted_and_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    storage.append(&entries(1..=10, 1)).unwrap();
    storage
        .save_snapshot(
            &SnapshotMeta {
                index: 4,
                term: 1,
                conf: vec![],
            },
            b"s",
        )
        .unwrap();
    assert_eq!(storage.entries(5, 5).unwrap().len(), 0);
    assert_eq!(storage.entries(5, 11).unwrap().len(), 6);
    assert_eq!(
        storage.entries(4, 6),
        Err(LogRangeError::Compacted {
            index: 4,
            first_index: 5
        })
    );
    assert_eq!(
        storage.entries(5, 12),
        Err(LogRangeError::Unavailable {
            index: 11,
            last_index: 10
        })
    );
    assert_eq!(
        storage.entries(7, 6),
        Err(LogRangeError::InvertedRange { lo: 7, hi: 6 })
    );
    assert_eq!(storage.term(4), Ok(1));
    assert!(matches!(
        storage.term(3),
        Err(LogRangeError::Compacted { .. })
    ));
    assert!(matches!(
        storage.term(11),
        Err(LogRangeError::Unavailable { .. })
    ));
}

#[test]
fn segments_roll_over_at_the_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    let (mut storage, _) = open(dir.path(), &options);
    let written: Vec<Entry> = (1..=100)
        .map(|i| Entry::new(i, 1, vec![i as u8; 64]))
        .collect();
    storage.append(&written).unwrap();
    storage.sync().unwrap();
    // 92-byte records, 32-byte header, 512-byte target: 5 records per segment.
    let firsts = segment_first_indexes(dir.path());
    assert_eq!(firsts.len(), 20);
    assert_eq!(firsts, (0..20).map(|k| 1 + 5 * k).collect::<Vec<u64>>());
    for name in segment_names(dir.path()) {
        let len = fs::metadata(dir.path().join("wal").join(name))
            .unwrap()
            .len();
        assert!(len <= 512, "segment of {len} bytes exceeds the target");
    }
    // An entry larger than the target gets a segment of its own.
    storage
        .append(&[Entry::new(101, 1, vec![7; 1000])])
        .unwrap();
    storage.append(&[Entry::new(102, 1, vec![8; 10])]).unwrap();
    storage.sync().unwrap();
    let firsts = segment_first_indexes(dir.path());
    assert_eq!(&firsts[firsts.len() - 2..], &[101, 102]);
    drop(storage);

    let (storage, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.last_index, 102);
    assert_eq!(storage.entries(1, 101).unwrap(), &written[..]);
    assert_eq!(storage.entries(101, 102).unwrap()[0].payload, vec![7; 1000]);
}

#[test]
fn truncate_suffix_then_append_then_reopen_shows_only_new_entries() {
    for options in [StorageOptions::default(), small_segments()] {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = open(dir.path(), &options);
        storage.append(&entries(1..=30, 1)).unwrap();
        storage
            .set_hard_state(&HardState {
                term: 2,
                voted_for: None,
                commit: 10,
            })
            .unwrap();
        storage.sync().unwrap();

        // A truncation inside an earlier segment (with small segments) drops every later segment.
        storage.truncate_suffix(12).unwrap();
        assert_eq!(storage.last_index(), 11);
        assert_eq!(storage.term(11), Ok(1));
        let replacement: Vec<Entry> = (12..=15)
            .map(|i| Entry::new(i, 2, format!("new {i}").into_bytes()))
            .collect();
        storage.append(&replacement).unwrap();
        storage.sync().unwrap();
        drop(storage);

        let (storage, recovered) = open(dir.path(), &options);
        assert_eq!(recovered.last_index, 15);
        assert_eq!(recovered.hard_state.commit, 10);
        let mut expected = entries(1..=11, 1);
        expected.extend(replacement);
        assert_eq!(all_entries(&storage), expected);
        // The old suffix is gone from the disk, not just from memory.
        let on_disk: Vec<u8> = files(dir.path())
            .iter()
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
            .flat_map(|(_, b)| b.clone())
            .collect();
        let needle = b"entry 20 of term 1";
        assert!(!on_disk.windows(needle.len()).any(|w| w == needle));
    }
}

#[test]
fn truncate_suffix_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    storage.append(&entries(1..=10, 1)).unwrap();
    storage
        .set_hard_state(&HardState {
            term: 1,
            voted_for: None,
            commit: 5,
        })
        .unwrap();
    let err = storage.truncate_suffix(5).unwrap_err();
    assert!(
        matches!(err, StorageError::TruncateCommitted { from: 5, commit: 5 }),
        "{err}"
    );
    storage.truncate_suffix(11).unwrap();
    assert_eq!(storage.last_index(), 10);
    // Truncating staged but never synced entries works too.
    storage.truncate_suffix(6).unwrap();
    assert_eq!(storage.last_index(), 5);
    storage.append(&entries(6..=7, 2)).unwrap();
    storage.sync().unwrap();
    storage
        .save_snapshot(
            &SnapshotMeta {
                index: 5,
                term: 1,
                conf: vec![],
            },
            b"",
        )
        .unwrap();
    let err = storage.truncate_suffix(5).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::TruncateCompacted {
                from: 5,
                snapshot_index: 5
            }
        ),
        "{err}"
    );
    drop(storage);
    let (storage, _) = open(dir.path(), &StorageOptions::default());
    assert_eq!(all_entries(&storage), entries(6..=7, 2));
}

#[test]
fn truncate_to_an_empty_log_and_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &small_segments());
    storage.append(&entries(1..=40, 1)).unwrap();
    storage.sync().unwrap();
    storage.truncate_suffix(1).unwrap();
    assert_eq!(storage.last_index(), 0);
    assert_eq!(segment_first_indexes(dir.path()), vec![1]);
    storage.append(&entries(1..=3, 2)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let (storage, _) = open(dir.path(), &small_segments());
    assert_eq!(all_entries(&storage), entries(1..=3, 2));
}

#[test]
fn snapshot_compacts_old_segments_and_reopen_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=100, 1)).unwrap();
    storage.append(&entries(101..=120, 2)).unwrap();
    storage
        .set_hard_state(&HardState {
            term: 2,
            voted_for: Some(1),
            commit: 110,
        })
        .unwrap();
    storage.sync().unwrap();
    let firsts_before = segment_first_indexes(dir.path());
    assert!(firsts_before.len() > 10);

    let meta = SnapshotMeta {
        index: 60,
        term: 1,
        conf: vec![1, 2, 3],
    };
    storage.save_snapshot(&meta, b"state at 60").unwrap();
    assert_eq!(storage.first_index(), 61);
    assert_eq!(storage.last_index(), 120);
    let firsts = segment_first_indexes(dir.path());
    // Only the segment holding entry 61 and later ones remain.
    assert!(firsts[0] <= 61, "{firsts:?}");
    assert!(firsts.len() < 2 || firsts[1] > 61, "{firsts:?}");
    assert_eq!(
        firsts,
        firsts_before
            .iter()
            .copied()
            .filter(|&f| f >= firsts[0])
            .collect::<Vec<_>>()
    );

    // A newer snapshot replaces the older one on disk.
    let meta2 = SnapshotMeta {
        index: 80,
        term: 1,
        conf: vec![4],
    };
    storage.save_snapshot(&meta2, b"state at 80").unwrap();
    let snapshots: Vec<_> = fs::read_dir(dir.path().join("snapshot")).unwrap().collect();
    assert_eq!(snapshots.len(), 1);
    drop(storage);

    let (storage, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.snapshot, Some(meta2.clone()));
    assert_eq!((recovered.first_index, recovered.last_index), (81, 120));
    assert_eq!(recovered.hard_state.commit, 110);
    assert!(recovered.removed_files.is_empty());
    assert_eq!(storage.term(80), Ok(1));
    assert_eq!(storage.term(120), Ok(2));
    assert_eq!(all_entries(&storage)[0], entry(81, 1));
    assert_eq!(
        storage.load_snapshot().unwrap(),
        Some((meta2, b"state at 80".to_vec()))
    );
    let err = Storage::open(dir.path(), options.clone()).unwrap_err();
    assert!(matches!(err, StorageError::Locked { .. }), "{err}");
}

#[test]
fn stale_snapshot_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    storage.append(&entries(1..=10, 1)).unwrap();
    let meta = |index| SnapshotMeta {
        index,
        term: 1,
        conf: vec![],
    };
    storage.save_snapshot(&meta(5), b"").unwrap();
    let err = storage.save_snapshot(&meta(5), b"").unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::StaleSnapshot {
                index: 5,
                current_index: 5
            }
        ),
        "{err}"
    );
}

#[test]
fn snapshot_beyond_or_conflicting_with_the_log_discards_the_log() {
    // Beyond: a lagging follower installs the leader's snapshot.
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=30, 1)).unwrap();
    storage.sync().unwrap();
    let meta = SnapshotMeta {
        index: 50,
        term: 3,
        conf: vec![9],
    };
    storage.save_snapshot(&meta, b"leader state").unwrap();
    assert_eq!((storage.first_index(), storage.last_index()), (51, 50));
    assert_eq!(storage.hard_state().commit, 50);
    assert_eq!(segment_first_indexes(dir.path()), vec![51]);
    storage.append(&entries(51..=52, 3)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let (storage, recovered) = open(dir.path(), &options);
    assert_eq!((recovered.first_index, recovered.last_index), (51, 52));
    assert_eq!(recovered.hard_state.commit, 50);
    assert_eq!(all_entries(&storage), entries(51..=52, 3));

    // Conflicting: the log has the index but with another term.
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=30, 1)).unwrap();
    storage.sync().unwrap();
    let meta = SnapshotMeta {
        index: 20,
        term: 2,
        conf: vec![],
    };
    storage.save_snapshot(&meta, b"").unwrap();
    assert_eq!((storage.first_index(), storage.last_index()), (21, 20));
    assert_eq!(storage.term(20), Ok(2));
}

#[test]
fn interrupted_compaction_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=60, 1)).unwrap();
    storage.sync().unwrap();
    let before = files(dir.path());
    storage
        .save_snapshot(
            &SnapshotMeta {
                index: 40,
                term: 1,
                conf: vec![],
            },
            b"x",
        )
        .unwrap();
    drop(storage);
    // Pretend the crash came right after the snapshot was durable: put the deleted segments back.
    let mut restored = Vec::new();
    for (path, bytes) in &before {
        if !path.exists() {
            fs::write(path, bytes).unwrap();
            restored.push(path.clone());
        }
    }
    assert!(restored.len() > 2);
    let (storage, recovered) = open(dir.path(), &options);
    restored.sort();
    let mut removed = recovered.removed_files.clone();
    removed.sort();
    assert_eq!(removed, restored);
    assert_eq!((recovered.first_index, recovered.last_index), (41, 60));
    assert_eq!(all_entries(&storage), entries(41..=60, 1));
}

#[test]
fn interrupted_discard_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=30, 1)).unwrap();
    storage.sync().unwrap();
    let before = files(dir.path());
    storage
        .save_snapshot(
            &SnapshotMeta {
                index: 100,
                term: 4,
                conf: vec![],
            },
            b"x",
        )
        .unwrap();
    drop(storage);
    // The crash came after the snapshot but before the old log was gone: only the old log is there.
    for path in segment_names(dir.path()) {
        fs::remove_file(dir.path().join("wal").join(path)).unwrap();
    }
    for (path, bytes) in &before {
        fs::write(path, bytes).unwrap();
    }
    let (mut storage, recovered) = open(dir.path(), &options);
    assert_eq!((recovered.first_index, recovered.last_index), (101, 100));
    assert_eq!(segment_first_indexes(dir.path()), vec![101]);
    storage.append(&entries(101..=101, 4)).unwrap();
    storage.sync().unwrap();
}

#[test]
fn torn_tail_is_cut_off_and_reopen_works() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::default();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=10, 1)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let path = segment_path(dir.path(), 1);
    let full_len = fs::metadata(&path).unwrap().len();
    let last_record_len = RECORD_HEADER_BYTES + entry(10, 1).payload.len() as u64;
    let last_record_offset = full_len - last_record_len;

    // Chop 5 bytes off the end: entry 10 is torn.
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let (mut storage, recovered) = open(dir.path(), &options);
    let torn = recovered.torn_tail.expect("a torn tail");
    assert_eq!(torn.path, path);
    assert_eq!(torn.offset, last_record_offset);
    assert_eq!(torn.bytes_dropped, last_record_len - 5);
    assert_eq!(recovered.last_index, 9);
    assert_eq!(fs::metadata(&path).unwrap().len(), last_record_offset);
    // The log goes on where the tear was.
    storage.append(&entries(10..=11, 2)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let (storage, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.torn_tail, None);
    let mut expected = entries(1..=9, 1);
    expected.extend(entries(10..=11, 2));
    assert_eq!(all_entries(&storage), expected);
}

#[test]
fn zeros_or_garbage_after_the_last_record_are_a_torn_tail() {
    let tails: [Vec<u8>; 3] = [
        vec![0; 4096],
        (0..3000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect(),
        vec![0xff; 3],
    ];
    for tail in tails {
        let dir = tempfile::tempdir().unwrap();
        let options = StorageOptions::default();
        let (mut storage, _) = open(dir.path(), &options);
        storage.append(&entries(1..=10, 1)).unwrap();
        storage.sync().unwrap();
        drop(storage);
        let path = segment_path(dir.path(), 1);
        let good_len = fs::metadata(&path).unwrap().len();
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&tail);
        fs::write(&path, &bytes).unwrap();

        let (storage, recovered) = open(dir.path(), &options);
        let torn = recovered.torn_tail.expect("a torn tail");
        assert_eq!(
            (torn.offset, torn.bytes_dropped),
            (good_len, tail.len() as u64)
        );
        assert_eq!(all_entries(&storage), entries(1..=10, 1));
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    }
}

#[test]
fn corrupted_byte_mid_segment_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::default();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=10, 1)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let path = segment_path(dir.path(), 1);
    let record_len = RECORD_HEADER_BYTES + entry(3, 1).payload.len() as u64;
    let third = SEGMENT_HEADER_BYTES + 2 * record_len;
    let mut bytes = fs::read(&path).unwrap();
    bytes[(third + RECORD_HEADER_BYTES + 4) as usize] ^= 0x20; // In entry 3's payload.
    fs::write(&path, &bytes).unwrap();
    let before = files(dir.path());

    let err = Storage::open(dir.path(), options.clone()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("byte offset {third}")),
        "{message}"
    );
    match err {
        StorageError::Corrupt {
            offset, corruption, ..
        } => {
            assert_eq!(offset, third);
            assert!(matches!(
                corruption,
                Corruption::MidLogRecord {
                    next_intact_offset: Some(next),
                    ..
                } if next == third + record_len
            ));
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(files(dir.path()), before, "a failed open changed files");
    // Still refused the second time: nothing was repaired behind our back.
    assert!(Storage::open(dir.path(), options).is_err());
}

#[test]
fn damage_at_the_end_of_an_inner_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=40, 1)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let path = segment_path(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    let len = bytes.len();
    bytes[len - 1] ^= 1; // The last record of a segment that is not the last: not a torn tail.
    fs::write(&path, &bytes).unwrap();
    let before = files(dir.path());
    let err = Storage::open(dir.path(), options).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corrupt { path: p, corruption: Corruption::MidLogRecord { next_intact_offset: None, .. }, .. } if *p == path),
        "{err}"
    );
    assert_eq!(files(dir.path()), before);
}

#[test]
fn a_missing_inner_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=40, 1)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let firsts = segment_first_indexes(dir.path());
    fs::remove_file(segment_path(dir.path(), firsts[2])).unwrap();
    let err = Storage::open(dir.path(), options).unwrap_err();
    assert!(
        matches!(
            &err,
            StorageError::Corrupt {
                corruption: Corruption::IndexGap { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn damaged_hard_state_or_snapshot_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::default();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=5, 1)).unwrap();
    storage
        .set_hard_state(&HardState {
            term: 1,
            voted_for: Some(3),
            commit: 5,
        })
        .unwrap();
    storage.sync().unwrap();
    storage
        .save_snapshot(
            &SnapshotMeta {
                index: 5,
                term: 1,
                conf: vec![1],
            },
            b"data",
        )
        .unwrap();
    drop(storage);
    let damage = |path: &Path, at: usize| {
        let mut bytes = fs::read(path).unwrap();
        bytes[at] ^= 0x08;
        fs::write(path, &bytes).unwrap();
    };

    let hard_state = dir.path().join("hardstate");
    damage(&hard_state, 20);
    let err = Storage::open(dir.path(), options.clone()).unwrap_err();
    assert!(
        err.to_string().contains(&hard_state.display().to_string()),
        "{err}"
    );
    damage(&hard_state, 20);

    let snap = dir
        .path()
        .join("snapshot")
        .join(format!("snap-{:020}-{:020}.bin", 1, 5));
    damage(&snap, 50);
    let err = Storage::open(dir.path(), options.clone()).unwrap_err();
    assert!(
        err.to_string().contains(&snap.display().to_string()),
        "{err}"
    );
    damage(&snap, 50);
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.last_index, 5);
}

#[test]
fn leftover_temporary_files_are_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::default();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=5, 1)).unwrap();
    storage.sync().unwrap();
    storage
        .save_snapshot(
            &SnapshotMeta {
                index: 3,
                term: 1,
                conf: vec![],
            },
            b"three",
        )
        .unwrap();
    drop(storage);
    // What crashes in the middle of atomic writes leave: half-written snapshot, segment and hard state.
    let leftovers = [
        dir.path()
            .join("snapshot")
            .join(format!("snap-{:020}-{:020}.bin.tmp", 2, 9)),
        dir.path().join("wal").join(format!("{:020}.seg.tmp", 6)),
        dir.path().join("hardstate.tmp"),
    ];
    for path in &leftovers {
        fs::write(path, b"half a fi").unwrap();
    }
    let (storage, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.snapshot.as_ref().map(|s| s.index), Some(3));
    assert_eq!(recovered.last_index, 5);
    for path in &leftovers {
        assert!(!path.exists(), "{} was not removed", path.display());
        assert!(recovered.removed_files.contains(path));
    }
    assert_eq!(storage.load_snapshot().unwrap().unwrap().1, b"three");
}

#[test]
fn a_superseded_snapshot_left_by_a_crash_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::default();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=9, 1)).unwrap();
    storage.sync().unwrap();
    let meta = |index| SnapshotMeta {
        index,
        term: 1,
        conf: vec![],
    };
    storage.save_snapshot(&meta(3), b"old").unwrap();
    let old = files(dir.path());
    storage.save_snapshot(&meta(6), b"new").unwrap();
    drop(storage);
    for (path, bytes) in old
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains("snap-"))
    {
        fs::write(path, bytes).unwrap();
    }
    let (storage, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.snapshot, Some(meta(6)));
    assert_eq!(
        recovered.removed_files.len(),
        1,
        "{:?}",
        recovered.removed_files
    );
    assert_eq!(recovered.last_index, 9);
    assert_eq!(storage.load_snapshot().unwrap().unwrap().1, b"new");
}

#[test]
fn the_lock_keeps_a_second_storage_out() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(dir.path(), &StorageOptions::default());
    let err = Storage::open(dir.path(), StorageOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("LOCK"), "{err}");
    drop(storage);
    open(dir.path(), &StorageOptions::default());
}

#[test]
fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StorageOptions::default();
    options.segment_bytes_target = 10;
    assert!(matches!(
        Storage::open(dir.path(), options).unwrap_err(),
        StorageError::InvalidOptions(_)
    ));
    let mut options = StorageOptions::default();
    options.entry_payload_bytes_max = u32::MAX;
    assert!(matches!(
        Storage::open(dir.path(), options).unwrap_err(),
        StorageError::InvalidOptions(_)
    ));
}

#[test]
fn fsync_policy_never_issues_no_fsync_but_still_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_segments();
    options.fsync = FsyncPolicy::Never;
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=50, 1)).unwrap();
    storage
        .set_hard_state(&HardState {
            term: 1,
            voted_for: Some(1),
            commit: 50,
        })
        .unwrap();
    storage.sync().unwrap();
    assert_eq!(storage.stats().fsyncs, 0);
    drop(storage);
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.last_index, 50);
    assert_eq!(recovered.hard_state.voted_for, Some(1));
}

#[test]
fn a_deleted_wal_next_to_a_hard_state_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::default();
    let (mut storage, _) = open(dir.path(), &options);
    storage.append(&entries(1..=5, 2)).unwrap();
    storage
        .set_hard_state(&HardState {
            term: 2,
            voted_for: Some(1),
            commit: 5,
        })
        .unwrap();
    storage.sync().unwrap();
    drop(storage);
    let wal = dir.path().join("wal");

    // Only the segment files deleted: refused, naming the hardstate file.
    let saved: Vec<(PathBuf, Vec<u8>)> = segment_names(dir.path())
        .into_iter()
        .map(|name| {
            let path = wal.join(name);
            let bytes = fs::read(&path).unwrap();
            fs::remove_file(&path).unwrap();
            (path, bytes)
        })
        .collect();
    let err = Storage::open(dir.path(), options.clone()).unwrap_err();
    assert!(matches!(err, StorageError::MissingLog { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().join("hardstate").display().to_string())
            && message.contains(&wal.display().to_string()),
        "{message}"
    );
    assert!(segment_names(dir.path()).is_empty(), "nothing was created");

    // The whole WAL directory deleted: refused too, and not recreated.
    fs::remove_dir_all(&wal).unwrap();
    let err = Storage::open(dir.path(), options.clone()).unwrap_err();
    assert!(matches!(err, StorageError::MissingLog { .. }), "{err}");
    assert!(!wal.exists(), "the WAL directory is not recreated");

    // Restored, it opens with every entry.
    fs::create_dir(&wal).unwrap();
    for (path, bytes) in saved {
        fs::write(path, bytes).unwrap();
    }
    let (storage, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.last_index, 5);
    assert_eq!(all_entries(&storage), entries(1..=5, 2));
}
