//! WAL and hard state encoders against their decoders: a sequence of storage operations drawn from the input
//! (appends, hard state changes, syncs, suffix truncations, reopens) against a model of what must be durable;
//! after every reopen the recovered log extends what was synced and is a prefix of what was staged (a reopen
//! without a crash may also find bytes written but not yet synced), and term and vote are the synced or the
//! staged ones.
#![no_main]

use arbitrary::Arbitrary;
use chaos_fuzz::{scratch_dir, storage_options};
use libfuzzer_sys::fuzz_target;
use raft_storage::{Entry, HardState, Storage};

#[derive(Arbitrary, Debug)]
enum Op {
    /// Append this many entries (payloads cut from `payload`), each raising the term by `term_step`.
    Append {
        count: u8,
        term_step: u8,
        payload: Vec<u8>,
    },
    /// Set term, vote and commit (term and commit kept legal by the target).
    HardState {
        term_step: u8,
        vote: Option<u8>,
        commit_back: u8,
    },
    /// Make everything staged durable.
    Sync,
    /// Remove the entries from `last - back` on (durable on return).
    Truncate { back: u8 },
    /// Close and open again; the model's durable state must come back.
    Reopen,
}

#[derive(Default, Clone, PartialEq, Debug)]
struct Model {
    entries: Vec<(u64, u64, Vec<u8>)>,
    term: u64,
    voted_for: Option<u64>,
}

/// The model of what the reopened `storage` holds: checked against `durable` and `staged`, then returned.
fn recovered(storage: &Storage, durable: &Model, staged: &Model) -> Model {
    let first = storage.first_index();
    let last = storage.last_index();
    assert_eq!(first, 1, "no snapshot was taken: the log starts at 1");
    let entries: Vec<(u64, u64, Vec<u8>)> = storage
        .entries(first, last + 1)
        .expect("recovered range")
        .iter()
        .map(|e| (e.index, e.term, e.payload.clone()))
        .collect();
    assert!(
        entries.starts_with(&durable.entries),
        "synced entries lost: {} synced, {} recovered",
        durable.entries.len(),
        entries.len()
    );
    assert!(
        staged.entries.starts_with(&entries),
        "recovered entries that were never staged"
    );
    let hs = storage.hard_state();
    let found = (hs.term, hs.voted_for);
    assert!(
        found == (durable.term, durable.voted_for) || found == (staged.term, staged.voted_for),
        "term and vote {found:?} are neither the synced {:?} nor the staged {:?}",
        (durable.term, durable.voted_for),
        (staged.term, staged.voted_for)
    );
    Model {
        entries,
        term: hs.term,
        voted_for: hs.voted_for,
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let dir = scratch_dir();
    let (mut storage, _) = Storage::open(&dir, storage_options()).expect("open an empty dir");
    // `staged` is what the storage shows now; `durable` what must survive a reopen.
    let mut staged = Model::default();
    let mut durable = Model::default();
    let mut commit = 0_u64;
    for op in ops.into_iter().take(64) {
        match op {
            Op::Append {
                count,
                term_step,
                payload,
            } => {
                let mut term = staged.entries.last().map_or(staged.term.max(1), |e| e.1);
                let mut batch = Vec::new();
                for i in 0..usize::from(count % 16) {
                    term += u64::from(term_step % 3 == 0);
                    let index = staged.entries.len() as u64 + batch.len() as u64 + 1;
                    let cut = payload.get(..(i * 7) % (payload.len() + 1)).unwrap_or(&[]);
                    batch.push(Entry::new(index, term, cut.to_vec()));
                }
                storage.append(&batch).expect("append contiguous entries");
                staged
                    .entries
                    .extend(batch.into_iter().map(|e| (e.index, e.term, e.payload)));
            }
            Op::HardState {
                term_step,
                vote,
                commit_back,
            } => {
                let last_term = staged.entries.last().map_or(0, |e| e.1);
                let term = staged.term.max(last_term) + u64::from(term_step % 2);
                // A vote once cast in a term never changes.
                if term != staged.term || staged.voted_for.is_none() {
                    staged.voted_for = vote.map(|v| u64::from(v % 5) + 1);
                }
                staged.term = term;
                let last = staged.entries.len() as u64;
                commit = commit.max(last.saturating_sub(u64::from(commit_back)));
                storage
                    .set_hard_state(&HardState {
                        term: staged.term,
                        voted_for: staged.voted_for,
                        commit,
                    })
                    .expect("set hard state");
            }
            Op::Sync => {
                storage.sync().expect("sync");
                durable = staged.clone();
            }
            Op::Truncate { back } => {
                let last = staged.entries.len() as u64;
                let from = last.saturating_sub(u64::from(back % 8)).max(commit + 1);
                if from <= last {
                    // Truncation is durable on return; staged appends before it are synced by it or gone.
                    storage
                        .truncate_suffix(from)
                        .expect("truncate an uncommitted suffix");
                    staged.entries.truncate(from as usize - 1);
                    storage.sync().expect("sync");
                    durable = staged.clone();
                }
            }
            Op::Reopen => {
                drop(storage);
                let (again, _) = Storage::open(&dir, storage_options()).expect("reopen");
                storage = again;
                staged = recovered(&storage, &durable, &staged);
                durable = staged.clone();
                commit = commit.min(staged.entries.len() as u64);
            }
        }
    }
    storage.sync().expect("final sync");
    drop(storage);
    let (storage, _) = Storage::open(&dir, storage_options()).expect("final reopen");
    assert_eq!(
        recovered(&storage, &staged, &staged),
        staged,
        "synced state after the final reopen"
    );
});
