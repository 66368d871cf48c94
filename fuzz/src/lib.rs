//! Helpers shared by the fuzz targets in `fuzz_targets/`: a scratch data directory for the storage targets and
//! the split of one input into WAL segment files. Each target asserts that a decoder never panics on any bytes
//! and, where an encoder exists, that decoding what it encodes gives the same value back.

use std::path::{Path, PathBuf};

use raft_storage::{FsyncPolicy, StorageOptions};

/// Magic bytes at the start of every WAL segment (the format of `raft-storage`'s private `record` module).
pub const SEGMENT_MAGIC: &[u8; 8] = b"RAFTWAL\0";

/// A data directory reused by every run of one fuzz process (in `/dev/shm` when it exists, so runs cost no disk
/// I/O). Each call empties it first. libFuzzer ends the process with `exit`, so the directory outlives it: the
/// first call removes those of processes that are gone.
pub fn scratch_dir() -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    SWEEP.call_once(|| remove_stale(&base));
    let dir = base.join(format!("{SCRATCH_PREFIX}{}", std::process::id()));
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty the scratch dir {}: {e}", dir.display()),
    }
    std::fs::create_dir_all(&dir).expect("create the scratch dir");
    dir
}

const SCRATCH_PREFIX: &str = "chaos-fuzz-";

/// Removes the scratch directories in `base` whose process no longer exists.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Storage options for fuzzing: no fsync (the scratch dir is in memory) and small segments so a few entries
/// already roll over to a new segment.
pub fn storage_options() -> StorageOptions {
    let mut options = StorageOptions::default();
    options.fsync = FsyncPolicy::Never;
    options.segment_bytes_target = StorageOptions::SEGMENT_BYTES_TARGET_MIN;
    options
}

/// Splits `data` into WAL segment files at every occurrence of [`SEGMENT_MAGIC`] after the start, so a
/// concatenation of real segments (the seed corpus) becomes those segments again. Each piece is named after
/// the first index in its header (bytes 16..24, little-endian), as the WAL names them; a piece too short to say
/// is named after its position. Names are made unique so no piece overwrites another.
pub fn split_segments(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut starts = vec![0];
    let mut at = 1;
    while at + SEGMENT_MAGIC.len() <= data.len() {
        if &data[at..at + SEGMENT_MAGIC.len()] == SEGMENT_MAGIC {
            starts.push(at);
            at += SEGMENT_MAGIC.len();
        } else {
            at += 1;
        }
    }
    starts.push(data.len());
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, pair) in starts.windows(2).enumerate() {
        let piece = &data[pair[0]..pair[1]];
        let first_index = piece
            .get(16..24)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .unwrap_or(i as u64 + 1);
        let mut name = format!("{first_index:020}.seg");
        if out.iter().any(|(n, _)| *n == name) {
            name = format!("{:020}.seg", u64::MAX - i as u64);
        }
        out.push((name, piece.to_vec()));
    }
    out
}
