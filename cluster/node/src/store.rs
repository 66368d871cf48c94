//! The bridge between the Raft core's `Ready` and the durable storage: one `persist` call per Ready, ending in
//! one fsync (group commit), and recovery of the core's `Persisted` state on start.

use raft::{
    Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, Persisted, Ready, Snapshot,
    SnapshotMeta, Term,
};
use raft_storage::{Storage, StorageError, StorageOptions};
use std::path::Path;
use std::sync::Arc;

/// Why the node's durable state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage layer failed (its message names the file and offset).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A record passed its checksum but does not decode: written by an incompatible version.
    #[error("log entry {index} in {dir} does not decode: {reason}")]
    Decode {
        /// The data directory.
        dir: String,
        /// The entry's index (0 for the snapshot's configuration).
        index: u64,
        /// The decoder's message.
        reason: String,
    },
}

/// The node's durable state.
#[derive(Debug)]
pub struct Store {
    storage: Storage,
    dir: String,
}

fn to_storage(entry: &Entry) -> raft_storage::Entry {
    let payload = postcard::to_stdvec(&entry.payload).expect("serialising into a Vec cannot fail");
    raft_storage::Entry::new(entry.index.0, entry.term.0, payload)
}

impl Store {
    /// Opens (or creates) the data directory and recovers what the core needs to restart.
    pub fn open(dir: &Path, options: StorageOptions) -> Result<(Store, Persisted), StoreError> {
        let (storage, recovered) = Storage::open(dir, options)?;
        let dir_name = dir.display().to_string();
        let decode_err = |index: u64, reason: String| StoreError::Decode {
            dir: dir_name.clone(),
            index,
            reason,
        };
        let snapshot = match storage.load_snapshot()? {
            Some((meta, data)) => {
                let membership: Membership =
                    postcard::from_bytes(&meta.conf).map_err(|e| decode_err(0, e.to_string()))?;
                Some(Snapshot {
                    meta: SnapshotMeta {
                        index: LogIndex(meta.index),
                        term: Term(meta.term),
                        membership,
                    },
                    data: Arc::new(data),
                })
            }
            None => None,
        };
        let stored = storage
            .entries(recovered.first_index, recovered.last_index + 1)
            .map_err(|e| decode_err(recovered.first_index, e.to_string()))?;
        let mut entries = Vec::with_capacity(stored.len());
        for e in stored {
            let payload: EntryPayload = postcard::from_bytes(&e.payload)
                .map_err(|err| decode_err(e.index, err.to_string()))?;
            entries.push(Entry {
                term: Term(e.term),
                index: LogIndex(e.index),
                payload,
            });
        }
        let hs = recovered.hard_state;
        let persisted = Persisted {
            hard_state: HardState {
                term: Term(hs.term),
                vote: hs.voted_for.map(NodeId),
                commit: LogIndex(hs.commit),
            },
            snapshot,
            entries,
        };
        Ok((
            Store {
                storage,
                dir: dir_name,
            },
            persisted,
        ))
    }

    /// Whether nothing was ever stored (a brand-new node).
    pub fn is_empty(&self) -> bool {
        self.storage.last_index() == 0
            && self.storage.hard_state().term == 0
            && self.storage.snapshot_meta().is_none()
    }

    /// Makes a Ready's snapshot, entries and hard state durable, with one fsync for all of them.
    pub fn persist(&mut self, ready: &Ready) -> Result<(), StoreError> {
        if let Some(snapshot) = &ready.snapshot {
            self.save_snapshot(&snapshot.meta, &snapshot.data)?;
        }
        if let Some(first) = ready.entries.first() {
            if first.index.0 <= self.storage.last_index() {
                self.storage.truncate_suffix(first.index.0)?;
            }
            let entries: Vec<raft_storage::Entry> = ready.entries.iter().map(to_storage).collect();
            self.storage.append(&entries)?;
        }
        if let Some(hs) = ready.hard_state {
            let hs = raft_storage::HardState {
                term: hs.term.0,
                voted_for: hs.vote.map(|v| v.0),
                commit: hs.commit.0,
            };
            self.storage.set_hard_state(&hs)?;
        }
        self.storage.sync()?;
        Ok(())
    }

    /// Makes a snapshot durable and compacts the log behind it.
    pub fn save_snapshot(&mut self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StoreError> {
        let conf =
            postcard::to_stdvec(&meta.membership).expect("serialising into a Vec cannot fail");
        let meta = raft_storage::SnapshotMeta {
            index: meta.index.0,
            term: meta.term.0,
            conf,
        };
        self.storage.save_snapshot(&meta, data)?;
        Ok(())
    }

    /// fsync counters, for benchmarks.
    pub fn stats(&self) -> raft_storage::StorageStats {
        self.storage.stats()
    }

    /// The data directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }
}
