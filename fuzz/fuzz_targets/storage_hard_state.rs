//! The `hardstate` file (`raft-storage`: term and vote): any bytes in it make `Storage::open` recover a hard
//! state or refuse with an error, never a panic; a recovered one survives a write and a reopen unchanged.
#![no_main]

use chaos_fuzz::{scratch_dir, storage_options};
use libfuzzer_sys::fuzz_target;
use raft_storage::{HardState, Storage};

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir();
    std::fs::write(dir.join("hardstate"), data).expect("write hardstate");
    let Ok((mut storage, recovered)) = Storage::open(&dir, storage_options()) else {
        return;
    };
    // Write the next term with the vote flipped, so the file is really rewritten, then read it back.
    let next = HardState {
        term: recovered.hard_state.term.saturating_add(1),
        voted_for: match recovered.hard_state.voted_for {
            Some(_) => None,
            None => Some(recovered.hard_state.term % 7 + 1),
        },
        commit: 0,
    };
    storage.set_hard_state(&next).expect("set a larger term");
    storage.sync().expect("sync into memory");
    drop(storage);
    let (_, again) = Storage::open(&dir, storage_options())
        .unwrap_or_else(|e| panic!("a hard state written by storage does not read back: {e}"));
    assert_eq!(again.hard_state.term, next.term);
    assert_eq!(again.hard_state.voted_for, next.voted_for);
});
