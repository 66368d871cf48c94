//! Raft's safety properties (Figure 3 of the paper), checked from outside the nodes after every step.

use crate::message::{Entry, EntryPayload};
use crate::types::{LogIndex, NodeId, Term};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

/// A broken safety or liveness property, described for a human.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Violation {
    /// Which property: "election safety", "log matching", ...
    pub property: &'static str,
    /// What was seen.
    pub detail: String,
}

impl Violation {
    pub(crate) fn new(property: &'static str, detail: String) -> Violation {
        Violation { property, detail }
    }
}

/// A fingerprint of an entry's contents (term, index and payload).
pub(crate) fn entry_digest(entry: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    entry.hash(&mut h);
    h.finish()
}

/// The global record that every node's behaviour is compared against.
#[derive(Debug, Default)]
pub struct Invariants {
    /// Election Safety: the leader of each term.
    leaders: BTreeMap<Term, NodeId>,
    /// Log Matching: for each (index, term) seen in any durable log, its content and the term before it.
    entries: HashMap<(LogIndex, Term), (u64, Term)>,
    /// Terms of committed entries by index (None where only a snapshot vouched for the prefix).
    committed: Vec<Option<Term>>,
    /// State Machine Safety: the digest of the entry applied at each index.
    applied: Vec<Option<u64>>,
    /// The highest commit index any node has claimed.
    max_commit: LogIndex,
}

impl Invariants {
    /// The highest index any node has reported committed.
    pub fn max_commit(&self) -> LogIndex {
        self.max_commit
    }

    /// The term recorded as committed at `index`, if known.
    pub fn committed_term(&self, index: LogIndex) -> Option<Term> {
        self.committed.get(index.0 as usize).copied().flatten()
    }

    /// The digest of the entry applied at `index`, if any node applied one.
    pub fn applied_digest(&self, index: LogIndex) -> Option<u64> {
        self.applied.get(index.0 as usize).copied().flatten()
    }

    /// Election Safety: at most one leader per term.
    pub fn leader_seen(&mut self, term: Term, node: NodeId) -> Result<(), Violation> {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => Err(Violation::new(
                "election safety",
                format!("{other} and {node} were both leader in {term}"),
            )),
            _ => Ok(()),
        }
    }

    /// Log Matching: an entry written to `node`'s durable log after an entry of term `prev_term`.
    pub fn entry_persisted(
        &mut self,
        node: NodeId,
        entry: &Entry,
        prev_term: Term,
    ) -> Result<(), Violation> {
        if entry.term < prev_term {
            return Err(Violation::new(
                "log matching",
                format!("{node} stored {:?} of {} after an entry of {prev_term}: terms must not decrease", entry.index, entry.term),
            ));
        }
        let digest = entry_digest(entry);
        match self.entries.get(&(entry.index, entry.term)) {
            Some(&(d, p)) if d != digest || p != prev_term => Err(Violation::new(
                "log matching",
                format!(
                    "{node} stored a different entry at {:?} {} (previous term {prev_term}, elsewhere {p})",
                    entry.index, entry.term
                ),
            )),
            Some(_) => Ok(()),
            None => {
                self.entries.insert((entry.index, entry.term), (digest, prev_term));
                Ok(())
            }
        }
    }

    /// A node claims entries up to `commit` are committed; `term_at` reads its log. Committed entries never
    /// change and are never lost.
    pub fn commit_seen(
        &mut self,
        node: NodeId,
        from: LogIndex,
        commit: LogIndex,
        term_at: impl Fn(LogIndex) -> Option<Term>,
    ) -> Result<(), Violation> {
        if self.committed.len() <= commit.0 as usize {
            self.committed.resize(commit.0 as usize + 1, None);
        }
        for i in from.0..=commit.0 {
            let Some(term) = term_at(LogIndex(i)) else {
                continue;
            };
            let slot = &mut self.committed[i as usize];
            match *slot {
                Some(t) if t != term => {
                    return Err(Violation::new(
                        "committed entries are never lost",
                        format!(
                            "{node} committed {:?} with {term}, but {t} was committed there before",
                            LogIndex(i)
                        ),
                    ));
                }
                _ => *slot = Some(term),
            }
        }
        self.max_commit = self.max_commit.max(commit);
        Ok(())
    }

    /// Leader Completeness: a new leader holds every committed entry (except those its snapshot covers).
    pub fn leader_complete(
        &self,
        node: NodeId,
        term: Term,
        snapshot_index: LogIndex,
        term_at: impl Fn(LogIndex) -> Option<Term>,
    ) -> Result<(), Violation> {
        for (i, committed) in self
            .committed
            .iter()
            .enumerate()
            .skip(snapshot_index.0 as usize + 1)
        {
            let Some(committed) = committed else { continue };
            let have = term_at(LogIndex(i as u64));
            if have != Some(*committed) {
                return Err(Violation::new(
                    "leader completeness",
                    format!(
                        "{node} became leader of {term} without committed entry {:?} of {committed} (it has {have:?})",
                        LogIndex(i as u64)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// State Machine Safety: no two nodes apply different entries at one index.
    pub fn applied(&mut self, node: NodeId, entry: &Entry) -> Result<(), Violation> {
        let i = entry.index.0 as usize;
        if self.applied.len() <= i {
            self.applied.resize(i + 1, None);
        }
        let digest = entry_digest(entry);
        match self.applied[i] {
            Some(d) if d != digest => Err(Violation::new(
                "state machine safety",
                format!(
                    "{node} applied {:?} of {} ({}), another node applied a different entry there",
                    entry.index,
                    entry.term,
                    describe(&entry.payload)
                ),
            )),
            _ => {
                self.applied[i] = Some(digest);
                Ok(())
            }
        }
    }
}

fn describe(payload: &EntryPayload) -> &'static str {
    match payload {
        EntryPayload::Noop => "no-op",
        EntryPayload::Command(_) => "command",
        EntryPayload::Conf(_) => "configuration",
    }
}
