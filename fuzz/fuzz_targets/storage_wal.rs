//! WAL segments (`raft-storage`, records and segment headers): the input is cut into segment files at each
//! "RAFTWAL\0" and put in a fresh data directory. Opening it recovers a log or refuses with an error, never a
//! panic; a recovered log is contiguous; and recovery is idempotent: opening the directory again (after any
//! torn tail was cut off) recovers the same state with nothing left to repair.
#![no_main]

use chaos_fuzz::{scratch_dir, split_segments, storage_options};
use libfuzzer_sys::fuzz_target;
use raft_storage::{Recovered, Storage};

fn contents(storage: &Storage, recovered: &Recovered) -> Vec<(u64, u64, Vec<u8>)> {
    let entries = storage
        .entries(recovered.first_index, recovered.last_index + 1)
        .expect("the recovered range is readable");
    assert_eq!(
        entries.len() as u64,
        recovered.last_index + 1 - recovered.first_index,
        "recovered range and entries disagree"
    );
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e.index,
            recovered.first_index + i as u64,
            "log not contiguous"
        );
    }
    for pair in entries.windows(2) {
        assert!(pair[0].term <= pair[1].term, "terms go backwards");
    }
    entries
        .iter()
        .map(|e| (e.index, e.term, e.payload.clone()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir();
    let wal = dir.join("wal");
    std::fs::create_dir_all(&wal).expect("create wal dir");
    for (name, bytes) in split_segments(data) {
        std::fs::write(wal.join(name), bytes).expect("write segment");
    }
    let Ok((storage, first)) = Storage::open(&dir, storage_options()) else {
        return;
    };
    let log = contents(&storage, &first);
    drop(storage);
    let (storage, second) = Storage::open(&dir, storage_options())
        .unwrap_or_else(|e| panic!("a directory that opened once does not open again: {e}"));
    assert_eq!(
        second.torn_tail, None,
        "a second open found another torn tail"
    );
    assert_eq!(second.hard_state, first.hard_state);
    assert_eq!(
        (second.first_index, second.last_index),
        (first.first_index, first.last_index)
    );
    assert_eq!(
        contents(&storage, &second),
        log,
        "the log changed between two opens"
    );
});
