//! The in-memory view of the replicated log: the entries after the latest snapshot, which of them are
//! durable, committed and applied.

use crate::message::Entry;
use crate::types::{LogIndex, Term};

/// The log of one node. Entries before `offset` have been compacted into a snapshot.
#[derive(Clone, Debug)]
pub struct RaftLog {
    /// Index of the last entry covered by the snapshot (0 when there is none).
    offset: LogIndex,
    /// Term of that entry.
    offset_term: Term,
    /// `entries[k]` has index `offset + 1 + k`.
    entries: Vec<Entry>,
    /// The last index known durable on this node's disk.
    persisted: LogIndex,
    /// The highest index known committed.
    commit: LogIndex,
    /// The highest index handed to the application for applying.
    applied: LogIndex,
}

/// The requested entries were compacted away; the follower needs the snapshot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Compacted;

impl RaftLog {
    /// A log that starts after a snapshot at (`offset`, `offset_term`) and holds `entries`, all of which are
    /// durable (it is being recovered from disk).
    pub fn recovered(
        offset: LogIndex,
        offset_term: Term,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) -> RaftLog {
        for (k, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index.0,
                offset.0 + 1 + k as u64,
                "recovered log has a gap"
            );
        }
        let last = LogIndex(offset.0 + entries.len() as u64);
        // A commit index beyond the durable log can be persisted by a follower that learnt it with entries
        // that were then lost; never trust it past what we have.
        let commit = commit.min(last).max(offset);
        RaftLog {
            offset,
            offset_term,
            entries,
            persisted: last,
            commit,
            applied: offset,
        }
    }

    /// Index of the last entry covered by the snapshot.
    pub fn snapshot_index(&self) -> LogIndex {
        self.offset
    }

    /// The first index still held as an entry.
    pub fn first_index(&self) -> LogIndex {
        self.offset.next()
    }

    /// The last index in the log (the snapshot's when there are no entries).
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.offset.0 + self.entries.len() as u64)
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.offset_term, |e| e.term)
    }

    /// The term of the entry at `index`: known for the snapshot's last entry and every held entry.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.offset {
            return Some(self.offset_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if it is held.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.offset {
            return None;
        }
        self.entries.get((index.0 - self.offset.0 - 1) as usize)
    }

    /// The committed index.
    pub fn commit(&self) -> LogIndex {
        self.commit
    }

    /// The applied index.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// The last durable index.
    pub fn persisted(&self) -> LogIndex {
        self.persisted
    }

    /// Whether a candidate whose log ends at (`last_index`, `last_term`) is at least as up to date as this
    /// log (§5.4.1, the election restriction).
    pub fn candidate_is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Entries from `lo` on, at most `max_count` of them and about `max_bytes` (at least one if any).
    pub fn entries_from(
        &self,
        lo: LogIndex,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, Compacted> {
        if lo <= self.offset {
            return Err(Compacted);
        }
        let start = (lo.0 - self.offset.0 - 1) as usize;
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in self.entries.iter().skip(start).take(max_count) {
            bytes += entry.size_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry.clone());
        }
        Ok(out)
    }

    /// Every held entry from `lo` to `hi` inclusive.
    pub fn slice(&self, lo: LogIndex, hi: LogIndex) -> &[Entry] {
        if hi < lo || lo <= self.offset {
            return &[];
        }
        let start = (lo.0 - self.offset.0 - 1) as usize;
        let end = ((hi.0 - self.offset.0) as usize).min(self.entries.len());
        &self.entries[start.min(end)..end]
    }

    /// Appends entries created by this node as leader.
    pub fn append_as_leader(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index().next(),
            "leader append must extend the log"
        );
        assert!(
            entry.term >= self.last_term(),
            "log terms must not decrease"
        );
        self.entries.push(entry);
    }

    /// Applies an Append from the leader whose `prev` matched: keeps entries that already agree, truncates
    /// at the first conflict and appends the rest (§5.3). Returns the first index that was truncated away,
    /// if any. With `keep_conflicting_suffix` (a mutation) the conflicting suffix beyond the sent entries
    /// survives.
    pub fn merge_from_leader(
        &mut self,
        entries: Vec<Entry>,
        keep_conflicting_suffix: bool,
    ) -> Option<LogIndex> {
        let mut truncated = None;
        for entry in entries {
            if entry.index <= self.offset {
                continue; // Already covered by our snapshot, hence committed and equal.
            }
            match self.term(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    assert!(
                        entry.index > self.commit,
                        "leader tried to overwrite committed entry {:?}",
                        entry.index
                    );
                    let k = (entry.index.0 - self.offset.0 - 1) as usize;
                    if keep_conflicting_suffix {
                        self.entries[k] = entry;
                    } else {
                        self.entries.truncate(k);
                        self.entries.push(entry);
                    }
                    let idx = LogIndex(self.offset.0 + 1 + k as u64);
                    truncated = Some(truncated.map_or(idx, |t: LogIndex| t.min(idx)));
                    self.persisted = self.persisted.min(idx.prev());
                }
                None => {
                    assert_eq!(entry.index, self.last_index().next(), "append leaves a gap");
                    self.entries.push(entry);
                }
            }
        }
        truncated
    }

    /// The hint a follower returns when `prev_index` does not match: the term it has there and the first
    /// index of that term, or its last index + 1 when its log is too short (§5.3, "fast back-off").
    pub fn conflict_hint(&self, prev_index: LogIndex) -> (Option<Term>, LogIndex) {
        match self.term(prev_index) {
            Some(term) if prev_index > self.offset => {
                let mut first = prev_index;
                while first.prev() > self.offset && self.term(first.prev()) == Some(term) {
                    first = first.prev();
                }
                (Some(term), first)
            }
            Some(_) => (None, self.offset.next()),
            None if prev_index > self.last_index() => (None, self.last_index().next()),
            None => (None, self.offset.next()),
        }
    }

    /// The last index whose term is `term`, if the log has any entry of that term.
    pub fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        self.entries
            .iter()
            .rev()
            .skip_while(|e| e.term > term)
            .find(|e| e.term == term)
            .map(|e| e.index)
    }

    /// Raises the commit index (never lowers it).
    pub fn commit_to(&mut self, index: LogIndex) -> bool {
        assert!(index <= self.last_index(), "commit beyond the log");
        if index > self.commit {
            self.commit = index;
            true
        } else {
            false
        }
    }

    /// Entries that are committed, durable and not yet handed out for applying.
    pub fn to_apply(&self) -> &[Entry] {
        let hi = self.commit.min(self.persisted);
        self.slice(self.applied.next(), hi)
    }

    /// Records that entries up to `index` were handed out for applying.
    pub fn applied_to(&mut self, index: LogIndex) {
        assert!(index <= self.commit, "applying beyond commit");
        self.applied = self.applied.max(index);
    }

    /// Entries not yet durable.
    pub fn unpersisted(&self) -> &[Entry] {
        self.slice(self.persisted.next(), self.last_index())
    }

    /// Records that entries up to `index` are durable (ignoring anything truncated since).
    pub fn persisted_to(&mut self, index: LogIndex, term: Term) {
        if index > self.persisted && self.term(index) == Some(term) {
            self.persisted = index;
        }
    }

    /// Drops entries up to `index`, which a snapshot now covers.
    pub fn compact_to(&mut self, index: LogIndex) {
        if index <= self.offset {
            return;
        }
        assert!(
            index <= self.applied,
            "compacting entries that are not applied"
        );
        let term = self.term(index).expect("compaction point is in the log");
        let drop = (index.0 - self.offset.0) as usize;
        self.entries.drain(..drop);
        self.offset = index;
        self.offset_term = term;
    }

    /// Replaces the whole log with a snapshot received from the leader. Entries after the snapshot are
    /// dropped too, even where they might match: the leader resends them, and storage then only has to
    /// support "replace everything with this snapshot".
    pub fn restore_snapshot(&mut self, index: LogIndex, term: Term) {
        assert!(
            index > self.commit,
            "restoring a snapshot that is not newer than commit"
        );
        self.entries.clear();
        self.offset = index;
        self.offset_term = term;
        self.persisted = index;
        self.commit = index;
        self.applied = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::EntryPayload;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Noop,
        }
    }

    fn log_of(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(k, &t)| entry(k as u64 + 1, t))
            .collect();
        RaftLog::recovered(LogIndex(0), Term(0), entries, LogIndex(0))
    }

    #[test]
    fn merge_truncates_conflicting_suffix() {
        // §5.3: "If an existing entry conflicts with a new one, delete the existing entry and all that follow".
        let mut log = log_of(&[1, 1, 2, 2, 2]);
        let truncated = log.merge_from_leader(vec![entry(3, 3)], false);
        assert_eq!(truncated, Some(LogIndex(3)));
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.last_term(), Term(3));
        assert_eq!(log.persisted(), LogIndex(2));
    }

    #[test]
    fn merge_keeps_matching_entries_and_later_ones() {
        // An old, reordered Append must not truncate entries that a newer one already added.
        let mut log = log_of(&[1, 1, 1, 1]);
        assert_eq!(log.merge_from_leader(vec![entry(2, 1)], false), None);
        assert_eq!(log.last_index(), LogIndex(4));
    }

    #[test]
    fn conflict_hint_points_at_first_index_of_conflicting_term() {
        let log = log_of(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.conflict_hint(LogIndex(5)), (Some(Term(2)), LogIndex(3)));
        assert_eq!(log.conflict_hint(LogIndex(9)), (None, LogIndex(7)));
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(5)));
        assert_eq!(log.last_index_of_term(Term(3)), None);
    }

    #[test]
    fn compaction_keeps_terms_answerable_at_the_boundary() {
        let mut log = log_of(&[1, 1, 2, 2]);
        log.commit_to(LogIndex(3));
        log.applied_to(LogIndex(3));
        log.compact_to(LogIndex(3));
        assert_eq!(log.term(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.term(LogIndex(2)), None);
        assert_eq!(log.entries_from(LogIndex(3), 10, 1000), Err(Compacted));
        assert_eq!(log.entries_from(LogIndex(4), 10, 1000).unwrap().len(), 1);
    }

    #[test]
    fn election_restriction_compares_last_term_then_length() {
        // §5.4.1: the later term wins; with equal terms the longer log wins.
        let log = log_of(&[1, 2, 2]);
        assert!(log.candidate_is_up_to_date(LogIndex(1), Term(3)));
        assert!(log.candidate_is_up_to_date(LogIndex(3), Term(2)));
        assert!(!log.candidate_is_up_to_date(LogIndex(2), Term(2)));
        assert!(!log.candidate_is_up_to_date(LogIndex(9), Term(1)));
    }
}
