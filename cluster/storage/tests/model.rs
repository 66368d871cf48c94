//! Model-based property test: random sequences of appends, syncs, hard-state changes, truncations, snapshots
//! and reopens, checked after every step against a plain in-memory model of what the storage must hold.
//! Segments are tiny so that rollover, multi-segment truncation and compaction happen all the time.

use proptest::prelude::*;
use raft_storage::{Entry, FsyncPolicy, HardState, SnapshotMeta, Storage, StorageOptions};

#[derive(Debug, Clone)]
enum Op {
    Append {
        count: u8,
        new_term: bool,
        payload_len: u8,
    },
    Sync,
    Commit {
        pick: u8,
    },
    Vote {
        new_term: bool,
        vote: u8,
    },
    Truncate {
        back: u8,
    },
    Snapshot {
        pick: u8,
        beyond: bool,
        conflict: bool,
        data_len: u8,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..12, any::<bool>(), 0u8..120).prop_map(|(count, new_term, payload_len)| Op::Append {
            count,
            new_term,
            payload_len
        }),
        2 => Just(Op::Sync),
        2 => any::<u8>().prop_map(|pick| Op::Commit { pick }),
        1 => (any::<bool>(), 1u8..6).prop_map(|(new_term, vote)| Op::Vote { new_term, vote }),
        2 => (1u8..20).prop_map(|back| Op::Truncate { back }),
        1 => (any::<u8>(), any::<bool>(), any::<bool>(), 0u8..64).prop_map(|(pick, beyond, conflict, data_len)| {
            Op::Snapshot { pick, beyond, conflict, data_len }
        }),
        1 => Just(Op::Reopen),
    ]
}

/// What the storage must hold.
#[derive(Debug, Default)]
struct Model {
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    /// Entries after the snapshot.
    entries: Vec<Entry>,
    hard_state: HardState,
}

impl Model {
    fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |(m, _)| m.index)
    }
    fn snapshot_term(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |(m, _)| m.term)
    }
    fn last_index(&self) -> u64 {
        self.snapshot_index() + self.entries.len() as u64
    }
    fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_term(), |e| e.term)
    }
    fn term(&self, index: u64) -> u64 {
        if index == self.snapshot_index() {
            self.snapshot_term()
        } else {
            self.entries[(index - self.snapshot_index() - 1) as usize].term
        }
    }
}

fn options() -> StorageOptions {
    let mut options = StorageOptions::default();
    options.segment_bytes_target = 400;
    // Durability against power loss is not what this test checks; skipping fsyncs keeps it fast.
    options.fsync = FsyncPolicy::Never;
    options
}

fn check(storage: &Storage, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(storage.first_index(), model.snapshot_index() + 1);
    prop_assert_eq!(storage.last_index(), model.last_index());
    prop_assert_eq!(
        storage
            .entries(storage.first_index(), storage.last_index() + 1)
            .unwrap(),
        &model.entries[..]
    );
    prop_assert_eq!(
        storage.term(model.snapshot_index()).unwrap(),
        model.snapshot_term()
    );
    prop_assert_eq!(storage.hard_state(), model.hard_state);
    prop_assert_eq!(
        storage.snapshot_meta(),
        model.snapshot.as_ref().map(|(m, _)| m)
    );
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = Storage::open(dir.path(), options()).unwrap();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append {
                count,
                new_term,
                payload_len,
            } => {
                let term = model.last_term() + u64::from(new_term);
                let first = model.last_index() + 1;
                let batch: Vec<Entry> = (first..first + u64::from(count))
                    .map(|i| Entry::new(i, term, vec![(i % 251) as u8; usize::from(payload_len)]))
                    .collect();
                storage.append(&batch).unwrap();
                model.entries.extend(batch);
            }
            Op::Sync => storage.sync().unwrap(),
            Op::Commit { pick } => {
                let (commit, last) = (model.hard_state.commit, model.last_index());
                if last > commit {
                    model.hard_state.commit = commit + 1 + u64::from(pick) % (last - commit);
                    storage.set_hard_state(&model.hard_state).unwrap();
                }
            }
            Op::Vote { new_term, vote } => {
                if new_term {
                    model.hard_state.term += 1;
                    model.hard_state.voted_for = Some(u64::from(vote));
                } else if model.hard_state.voted_for.is_none() {
                    model.hard_state.voted_for = Some(u64::from(vote));
                }
                storage.set_hard_state(&model.hard_state).unwrap();
            }
            Op::Truncate { back } => {
                let lowest = model.hard_state.commit.max(model.snapshot_index()) + 1;
                let last = model.last_index();
                if last >= lowest {
                    let from = lowest.max((last + 1).saturating_sub(u64::from(back)));
                    storage.truncate_suffix(from).unwrap();
                    model
                        .entries
                        .truncate((from - model.snapshot_index() - 1) as usize);
                }
            }
            Op::Snapshot {
                pick,
                beyond,
                conflict,
                data_len,
            } => {
                let (snapshot_index, last) = (model.snapshot_index(), model.last_index());
                let (index, term) = if beyond || last == snapshot_index {
                    (last + 1 + u64::from(pick % 4), model.last_term() + 1)
                } else {
                    let index = snapshot_index + 1 + u64::from(pick) % (last - snapshot_index);
                    if conflict && index > model.hard_state.commit {
                        (index, model.term(index) + 1)
                    } else {
                        (index, model.term(index))
                    }
                };
                let meta = SnapshotMeta {
                    index,
                    term,
                    conf: vec![pick],
                };
                let data = vec![pick; usize::from(data_len)];
                storage.save_snapshot(&meta, &data).unwrap();
                let keeps_log = index <= last && model.term(index) == term;
                if keeps_log {
                    model.entries.drain(..(index - snapshot_index) as usize);
                } else {
                    model.entries.clear();
                }
                model.hard_state.commit = model.hard_state.commit.max(index);
                model.snapshot = Some((meta, data));
            }
            Op::Reopen => {
                storage.sync().unwrap();
                drop(storage);
                let (reopened, recovered) = Storage::open(dir.path(), options()).unwrap();
                storage = reopened;
                prop_assert_eq!(recovered.torn_tail, None);
                prop_assert_eq!(recovered.hard_state, model.hard_state);
                prop_assert_eq!(storage.load_snapshot().unwrap(), model.snapshot.clone());
            }
        }
        check(&storage, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn storage_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
