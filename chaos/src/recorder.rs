//! The recorder: one task that appends every event to `history.jsonl` as it happens, in the checker's format.
//!
//! Clients send an invoke *before* their request and the completion *after* the answer, over one FIFO channel;
//! the recorder numbers events in the order it receives them. So the order of lines is consistent with real
//! time, which is what the checker relies on. Each batch is flushed to disk, so a crash of the tool still leaves
//! the history behind.

use checker::history::{
    Event, EventKind, Header, HistoryWriter, Key, NoteEvent, OpEvent, Operation, ProcessId,
};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// What a client or the nemesis reports.
#[derive(Clone, Debug)]
pub enum Record {
    /// A client op event.
    Op {
        /// Nanoseconds since the run started.
        time_ns: u64,
        /// The client process.
        process: u64,
        /// Invoke, ok, fail or info.
        kind: EventKind,
        /// The key.
        key: String,
        /// The op and its value.
        op: Operation,
        /// Why it failed or is indeterminate.
        error: Option<String>,
    },
    /// A nemesis or lifecycle note.
    Note {
        /// Nanoseconds since the run started.
        time_ns: u64,
        /// "nemesis" or "runner".
        process: String,
        /// Invoke (start) / ok (end) / info.
        kind: EventKind,
        /// The action.
        f: String,
        /// Details.
        value: serde_json::Value,
    },
}

/// Live counts of completions, for the progress display.
#[derive(Debug, Default)]
pub struct Counts {
    /// ok completions.
    pub ok: AtomicU64,
    /// fail completions (cas mismatches included).
    pub fail: AtomicU64,
    /// of which: cas that found another value (an observation, not an error).
    pub mismatch: AtomicU64,
    /// info completions.
    pub info: AtomicU64,
}

/// The sending side, cheap to clone: one per client.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Record>,
    started: Instant,
    counts: Arc<Counts>,
}

impl Recorder {
    /// Nanoseconds since the run started, on the one monotonic clock every client shares.
    pub fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records a client event now.
    pub fn op(
        &self,
        process: u64,
        kind: EventKind,
        key: &str,
        op: Operation,
        error: Option<String>,
    ) {
        if kind == EventKind::Fail && error.as_deref() == Some(checker::history::ERROR_MISMATCH) {
            self.counts.mismatch.fetch_add(1, Ordering::Relaxed);
        }
        match kind {
            EventKind::Ok => self.counts.ok.fetch_add(1, Ordering::Relaxed),
            EventKind::Fail => self.counts.fail.fetch_add(1, Ordering::Relaxed),
            EventKind::Info => self.counts.info.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let _ = self.tx.send(Record::Op {
            time_ns: self.now_ns(),
            process,
            kind,
            key: key.to_string(),
            op,
            error,
        });
    }

    /// Records a note now.
    pub fn note(&self, process: &str, kind: EventKind, f: &str, value: serde_json::Value) {
        let _ = self.tx.send(Record::Note {
            time_ns: self.now_ns(),
            process: process.to_string(),
            kind,
            f: f.to_string(),
            value,
        });
    }

    /// The live counts.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// Starts the recorder writing `path` with `header`. Returns the sender and the task, which ends (after a
/// final flush) when every sender is dropped and returns the number of events written.
pub fn start(
    path: &Path,
    header: &Header,
    started: Instant,
) -> std::io::Result<(Recorder, tokio::task::JoinHandle<std::io::Result<u64>>)> {
    let file = File::create(path)?;
    let mut writer = HistoryWriter::new(BufWriter::new(file), header)?;
    writer.flush()?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Record>();
    let task = tokio::spawn(async move {
        let mut written = 0u64;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            for record in batch {
                let index = writer.index_next();
                let event: Event = match record {
                    Record::Op {
                        time_ns,
                        process,
                        kind,
                        key,
                        op,
                        error,
                    } => {
                        let mut e = OpEvent::new(
                            index,
                            time_ns,
                            ProcessId(process),
                            kind,
                            Some(Key::Str(key)),
                            op,
                        );
                        if let Some(error) = error {
                            e = e.with_error(error);
                        }
                        e.into()
                    }
                    Record::Note {
                        time_ns,
                        process,
                        kind,
                        f,
                        value,
                    } => NoteEvent::new(index, time_ns, process, kind, f, value).into(),
                };
                writer.append(&event)?;
                written += 1;
            }
            writer.flush()?;
        }
        writer.flush()?;
        Ok(written)
    });
    Ok((
        Recorder {
            tx,
            started,
            counts: Arc::new(Counts::default()),
        },
        task,
    ))
}
