//! The Wing–Gong linearization search with Lowe's cache, as in Knossos' and Porcupine's fastest checkers.
//!
//! Call and return entries sit in one doubly linked list in history order. The search walks it: at a call it tries
//! to linearize that op now (model step legal, and the pair (set of linearized ops, state) never seen before); at a
//! return of an op not yet linearized it is stuck and backtracks. Linearizing "lifts" both entries out of the list
//! in O(1) and restarts from the head, so the ops tried are always the ones that may come next.
//!
//! What makes it fast here:
//! - the cache key is a Zobrist hash of the linearized set, updated in O(1) per step, and the set itself is stored
//!   trimmed (leading all-ones and trailing all-zeros words dropped) in one arena, so an entry costs a few words,
//!   not one bit per op of the key; entries are compared exactly, so a hash collision can never prune wrongly;
//! - the model state is an interned integer;
//! - ops that may take effect at any later time (indeterminate `info` ops, ops still running at a window's end)
//!   are not in the list but in a pool, offered only when an op that may come next needs them (see `Pool`), and
//!   kept in their own part of the set so that one pending for ever does not stop the trimming;
//! - other optional ops (ops that started before a window) are left out lazily: only when the walk reaches their
//!   return does the search consider that they took effect before the window.
//!
//! Every search is bounded by a step budget, a cache memory budget and an optional deadline; running out gives
//! `Unknown`, never a hang.

use std::hash::{Hash, Hasher};
use std::time::Instant;

use serde::Serialize;

use crate::hash::{splitmix64, FxHasher};
use crate::model::{Model, OpKind, OpSpec, ValueId};

/// A return position for an op that has none: it may take effect at any later time.
pub(crate) const NEVER: u64 = u64::MAX;

/// An op as the search sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchOp {
    pub spec: OpSpec,
    /// Position of the invoke in the history.
    pub call: u64,
    /// Position of the completion, or [`NEVER`].
    pub ret: u64,
    /// An optional op may be left out: it need not be linearized at all.
    pub optional: bool,
}

/// Limits of one search.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Budget {
    /// Search steps per key (each step tries one entry); the deterministic bound.
    pub steps_max_per_key: u64,
    /// Bytes of cache per key.
    pub cache_bytes_max_per_key: u64,
    /// Wall-clock deadline shared by all keys; `None` for none. The only clock read of the checker, taken every
    /// few thousand steps, so that `--time-limit` can stop a search that the step budget would let run for hours.
    pub deadline: Option<Instant>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            steps_max_per_key: 200_000_000,
            cache_bytes_max_per_key: 2 << 30,
            deadline: None,
        }
    }
}

impl Budget {
    /// A budget with the given limits.
    pub fn new(
        steps_max_per_key: u64,
        cache_bytes_max_per_key: u64,
        deadline: Option<Instant>,
    ) -> Budget {
        Budget {
            steps_max_per_key,
            cache_bytes_max_per_key,
            deadline,
        }
    }

    pub(crate) fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Why a search gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownReason {
    /// The per-key step budget ran out.
    StepLimit,
    /// The deadline passed.
    TimeLimit,
    /// The per-key cache memory budget ran out.
    MemoryLimit,
}

impl UnknownReason {
    /// Text for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownReason::StepLimit => "step limit reached",
            UnknownReason::TimeLimit => "time limit reached",
            UnknownReason::MemoryLimit => "memory limit reached",
        }
    }
}

/// The deepest point the search reached: the op whose return it could not pass, and how many ops it had
/// linearized (or skipped) on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Frontier {
    /// Rank of the return entry in history order.
    pub entry: u32,
    /// Stack depth there.
    pub depth: u32,
    /// The op that could not be placed.
    pub op: u32,
}

/// The linearization found up to the frontier: ops in order, each either applied or skipped (left out).
#[derive(Debug, Clone)]
pub(crate) struct Path<S> {
    pub steps: Vec<(u32, bool)>,
    pub state: S,
}

/// The result of one search.
#[derive(Debug, Clone)]
pub(crate) enum Verdict<S> {
    Linearizable,
    /// Not linearizable; `path` is filled when the search was asked to capture the frontier.
    Illegal {
        frontier: Frontier,
        path: Option<Path<S>>,
    },
    Unknown(UnknownReason),
}

/// Counters of one search.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stats {
    pub steps: u64,
    pub cache_entries: u64,
    pub cache_bytes: u64,
}

/// The set of (linearized ops, state) pairs already explored.
struct Cache<S> {
    /// Open addressing, linear probing; 0 is empty, otherwise entry index + 1.
    slots: Vec<u32>,
    hashes: Vec<u64>,
    states: Vec<S>,
    /// For each entry: offset in `arena`, then first word index and word count of each trimmed part.
    spans: Vec<(u64, [(u32, u32); 2])>,
    arena: Vec<u64>,
}

impl<S: Copy + Eq + Hash> Cache<S> {
    fn new() -> Self {
        Cache {
            slots: vec![0; 1024],
            hashes: Vec::new(),
            states: Vec::new(),
            spans: Vec::new(),
            arena: Vec::new(),
        }
    }

    fn bytes(&self) -> u64 {
        (self.slots.capacity() * 4
            + self.hashes.capacity() * 8
            + self.states.capacity() * std::mem::size_of::<S>()
            + self.spans.capacity() * std::mem::size_of::<(u64, [(u32, u32); 2])>()
            + self.arena.capacity() * 8) as u64
    }

    fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Inserts (linearized set, state); returns false if it was already there.
    #[inline]
    fn insert(&mut self, set: &LinSet, state: S) -> bool {
        let parts = set.trimmed();
        let mut hs = FxHasher::default();
        state.hash(&mut hs);
        let h = splitmix64(set.hash ^ hs.finish());
        let mask = self.slots.len() - 1;
        let mut i = (h as usize) & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                break;
            }
            let e = (slot - 1) as usize;
            if self.hashes[e] == h && self.states[e] == state {
                let (mut off, stored) = self.spans[e];
                let mut equal = true;
                for ((lo, words), (slo, slen)) in parts.iter().zip(stored) {
                    let off_here = off as usize;
                    off += u64::from(slen);
                    if *lo != slo as usize
                        || words.len() != slen as usize
                        || self.arena[off_here..off_here + words.len()] != **words
                    {
                        equal = false;
                        break;
                    }
                }
                if equal {
                    return false;
                }
            }
            i = (i + 1) & mask;
        }
        let e = self.hashes.len();
        // The memory budget stops the search long before 2^32 entries.
        self.slots[i] = u32::try_from(e + 1).expect("cache entries fit in u32");
        self.hashes.push(h);
        self.states.push(state);
        let offset = self.arena.len() as u64;
        let mut stored = [(0u32, 0u32); 2];
        for (k, (lo, words)) in parts.iter().enumerate() {
            stored[k] = (*lo as u32, words.len() as u32);
            self.arena.extend_from_slice(words);
        }
        self.spans.push((offset, stored));
        if self.hashes.len() * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        let mask = cap - 1;
        let mut slots = vec![0u32; cap];
        for (e, h) in self.hashes.iter().enumerate() {
            let mut i = (*h as usize) & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = (e + 1) as u32;
        }
        self.slots = slots;
    }
}

/// One part of a [`LinSet`]: a bitset with trimming bounds.
struct Part {
    bits: Vec<u64>,
    /// First word that is not all ones.
    lo: usize,
    /// One past the last word that is not all zeros.
    hi: usize,
}

impl Part {
    fn new(n: usize) -> Part {
        Part {
            bits: vec![0; n.div_ceil(64)],
            lo: 0,
            hi: 0,
        }
    }

    #[inline]
    fn insert(&mut self, i: usize) {
        let w = i / 64;
        debug_assert!(self.bits[w] & (1 << (i % 64)) == 0);
        self.bits[w] |= 1 << (i % 64);
        self.hi = self.hi.max(w + 1);
        while self.lo < self.bits.len() && self.bits[self.lo] == u64::MAX {
            self.lo += 1;
        }
    }

    #[inline]
    fn remove(&mut self, i: usize) {
        let w = i / 64;
        debug_assert!(self.bits[w] & (1 << (i % 64)) != 0);
        self.bits[w] &= !(1 << (i % 64));
        self.lo = self.lo.min(w);
        while self.hi > 0 && self.bits[self.hi - 1] == 0 {
            self.hi -= 1;
        }
    }

    /// The canonical trimmed form: words before `lo` are all ones, words after are all zeros.
    #[inline]
    fn trimmed(&self) -> (usize, &[u64]) {
        (self.lo, &self.bits[self.lo..self.hi.max(self.lo)])
    }
}

/// The set of ops linearized (or left out) so far, with an incrementally kept Zobrist hash, stored trimmed so that
/// neither hashing nor storing it costs more than the few words around the search's frontier.
///
/// Ops that may take effect at any later time (indeterminate ones) live in a second part: one of them that stays
/// pending for the rest of a long history would otherwise keep every word after it from being trimmed.
struct LinSet {
    parts: [Part; 2],
    /// Part and position of each op.
    slot: Vec<(u8, u32)>,
    zobrist: Vec<u64>,
    hash: u64,
}

impl LinSet {
    /// A set over `n` ops, all in the first part.
    #[cfg(test)]
    fn new(n: usize) -> LinSet {
        LinSet::with_parts(&vec![false; n])
    }

    /// A set over the ops; `second[i]` puts op `i` in the second part.
    fn with_parts(second: &[bool]) -> LinSet {
        let mut counts = [0u32; 2];
        let slot = second
            .iter()
            .map(|&b| {
                let p = usize::from(b);
                counts[p] += 1;
                (p as u8, counts[p] - 1)
            })
            .collect();
        LinSet {
            parts: [Part::new(counts[0] as usize), Part::new(counts[1] as usize)],
            slot,
            zobrist: (0..second.len() as u64)
                .map(|i| splitmix64(i ^ 0x5eed_c0de))
                .collect(),
            hash: 0,
        }
    }

    #[inline]
    fn insert(&mut self, i: u32) {
        let (p, j) = self.slot[i as usize];
        self.parts[p as usize].insert(j as usize);
        self.hash ^= self.zobrist[i as usize];
    }

    #[inline]
    fn remove(&mut self, i: u32) {
        let (p, j) = self.slot[i as usize];
        self.parts[p as usize].remove(j as usize);
        self.hash ^= self.zobrist[i as usize];
    }

    /// The trimmed form of each part.
    #[inline]
    fn trimmed(&self) -> [(usize, &[u64]); 2] {
        [self.parts[0].trimmed(), self.parts[1].trimmed()]
    }
}

/// The ops that may take effect at any later time (indeterminate ones, and ops still running at a window's end),
/// kept out of the walk and tried only at the moments they could matter.
///
/// Such an op can always be moved later, past every op that does not need it, or dropped at the end; so in some
/// linearization it comes right before an op that needs it: one that observes the value it writes (a read, a cas
/// expecting it) while the register holds another, or a mismatch op expecting the value the register holds. The
/// search therefore offers, at each point, only the pending ops that some op which may come next needs. Without
/// this, every indeterminate op of a long history would be retried at every step, and placed everywhere.
struct Pool {
    local: crate::hash::FxHashMap<ValueId, u32>,
    /// Per op: local id of the value it observes (read value, cas expected), or `NONE`.
    observes: Vec<u32>,
    /// Per op: local id of the `expected` of a mismatch op, or `NONE`.
    mismatch_of: Vec<u32>,
    /// Per op: local id of the value it writes, or `NONE`.
    writes: Vec<u32>,
    /// Per value: ops not yet placed that observe it, and mismatch ops not yet placed that expect it.
    observers_left: Vec<u32>,
    mismatch_left: Vec<u32>,
    /// Per value: the pooled ops writing it.
    writers_of: Vec<Vec<u32>>,
    /// The pooled ops, in invoke order (by `call`).
    pooled: Vec<u32>,
    /// Per op: placed (linearized) already.
    placed: Vec<bool>,
    /// Bumped whenever the configuration changes; the candidates are valid for one generation.
    generation: u64,
    candidates_generation: u64,
    candidates: Vec<u32>,
    /// Scratch marks, stamped with `stamp`.
    stamp: u64,
    value_mark: Vec<u64>,
    op_mark: Vec<u64>,
    worklist: Vec<u32>,
}

impl Pool {
    const NONE: u32 = u32::MAX;

    fn new(ops: &[SearchOp], pooled_flags: &[bool]) -> Pool {
        let mut local: crate::hash::FxHashMap<ValueId, u32> = Default::default();
        let mut id = |v: ValueId| {
            let n = local.len() as u32;
            *local.entry(v).or_insert(n)
        };
        let mut observes = Vec::with_capacity(ops.len());
        let mut mismatch_of = Vec::with_capacity(ops.len());
        let mut writes = Vec::with_capacity(ops.len());
        for op in ops {
            let (obs, mm) = match op.spec.kind {
                OpKind::Read | OpKind::Cas => (id(op.spec.a), Self::NONE),
                OpKind::CasMismatch => (Self::NONE, id(op.spec.a)),
                _ => (Self::NONE, Self::NONE),
            };
            observes.push(obs);
            mismatch_of.push(mm);
            writes.push(op.spec.written().map_or(Self::NONE, &mut id));
        }
        let values = local.len();
        let mut p = Pool {
            local,
            observes,
            mismatch_of,
            writes,
            observers_left: vec![0; values],
            mismatch_left: vec![0; values],
            writers_of: vec![Vec::new(); values],
            pooled: Vec::new(),
            placed: vec![false; ops.len()],
            generation: 1,
            candidates_generation: 0,
            candidates: Vec::new(),
            stamp: 0,
            value_mark: vec![0; values],
            op_mark: vec![0; ops.len()],
            worklist: Vec::new(),
        };
        for (i, &is_pooled) in pooled_flags.iter().enumerate() {
            p.count(i as u32, true);
            if is_pooled {
                p.pooled.push(i as u32);
                if p.writes[i] != Self::NONE {
                    p.writers_of[p.writes[i] as usize].push(i as u32);
                }
            }
        }
        // In invoke order, so that the ops invoked before a position are a prefix.
        p.pooled.sort_by_key(|&w| (ops[w as usize].call, w));
        p
    }

    #[inline]
    fn count(&mut self, op: u32, up: bool) {
        let i = op as usize;
        let delta = |c: &mut u32| if up { *c += 1 } else { *c -= 1 };
        if self.observes[i] != Self::NONE {
            delta(&mut self.observers_left[self.observes[i] as usize]);
        }
        if self.mismatch_of[i] != Self::NONE {
            delta(&mut self.mismatch_left[self.mismatch_of[i] as usize]);
        }
    }

    /// Records that `op` was placed (linearized or left out).
    #[inline]
    fn place(&mut self, op: u32) {
        self.count(op, false);
        self.placed[op as usize] = true;
        self.generation += 1;
    }

    /// Undoes [`Pool::place`].
    #[inline]
    fn unplace(&mut self, op: u32) {
        self.count(op, true);
        self.placed[op as usize] = false;
        self.generation += 1;
    }

    /// True if no op left observes `v` or expects it in a mismatch: a register holding `v` behaves like one
    /// holding any other such value.
    #[inline]
    fn inert(&self, v: u32) -> bool {
        self.observers_left[v as usize] == 0 && self.mismatch_left[v as usize] == 0
    }

    #[inline]
    fn push_value(&mut self, v: u32, current: Option<u32>) {
        if v != Self::NONE && Some(v) != current && self.value_mark[v as usize] != self.stamp {
            self.value_mark[v as usize] = self.stamp;
            self.worklist.push(v);
        }
    }

    /// Computes the pooled ops worth trying now, in invoke order. `next_ops` are the listed ops that may come
    /// next, `callable_before` the position of the first pending completion (a pooled op invoked later cannot
    /// come next), `current` the register's value if the model says.
    fn compute_candidates(
        &mut self,
        ops: &[SearchOp],
        next_ops: impl Iterator<Item = u32>,
        callable_before: u64,
        current: Option<ValueId>,
    ) {
        self.candidates.clear();
        self.candidates_generation = self.generation;
        self.stamp += 1;
        let stamp = self.stamp;
        let callable =
            |p: &Pool, w: u32| !p.placed[w as usize] && ops[w as usize].call < callable_before;
        let Some(current) = current else {
            // An unknown register value: every pooled op may be needed.
            let all: Vec<u32> = self
                .pooled
                .iter()
                .copied()
                .filter(|&w| callable(self, w))
                .collect();
            self.candidates = all;
            return;
        };
        let c = self.local.get(&current).copied();
        let mut mismatch_blocked = false;
        self.worklist.clear();
        for op in next_ops {
            self.push_value(self.observes[op as usize], c);
            let mm = self.mismatch_of[op as usize];
            mismatch_blocked |= mm != Self::NONE && Some(mm) == c;
        }
        // Backward from the values needed: a pooled op writing one is a candidate, and a pooled cas writing one
        // needs its expected value in turn (a chain of indeterminate ops).
        while let Some(v) = self.worklist.pop() {
            for k in 0..self.writers_of[v as usize].len() {
                let w = self.writers_of[v as usize][k];
                if callable(self, w) && self.op_mark[w as usize] != stamp {
                    self.op_mark[w as usize] = stamp;
                    self.candidates.push(w);
                    if ops[w as usize].spec.kind == OpKind::Cas {
                        self.push_value(self.observes[w as usize], c);
                    }
                }
            }
        }
        if mismatch_blocked {
            // Any op that changes the value now unblocks the mismatch op: a write of another value, or a cas
            // expecting the value held and setting another. A cas expecting anything else cannot step now, and a
            // chain that ends in a change starts with an op that changes the value itself, so no other op is worth
            // offering. Ops leading to an inert value lead to states nothing can tell apart, so only the first of
            // them is tried.
            let held = self.local.get(&current).copied();
            let end = self
                .pooled
                .partition_point(|&w| ops[w as usize].call < callable_before);
            let mut inert_taken = false;
            for k in 0..end {
                let w = self.pooled[k];
                if self.placed[w as usize] || self.op_mark[w as usize] == stamp {
                    continue;
                }
                let v = self.writes[w as usize];
                let changes = match ops[w as usize].spec.kind {
                    OpKind::Write => Some(v) != held,
                    OpKind::Cas => Some(self.observes[w as usize]) == held && Some(v) != held,
                    _ => false,
                };
                if !changes {
                    continue;
                }
                if self.inert(v) {
                    if inert_taken {
                        continue;
                    }
                    inert_taken = true;
                }
                self.op_mark[w as usize] = stamp;
                self.candidates.push(w);
            }
        }
        // Invoke order, except that a write of an inert value comes first: it unblocks a mismatch without using up
        // an op that some later op needs, so it is the choice most likely to lead on (the order only changes how
        // soon a linearization is found, never whether).
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.sort_unstable_by_key(|&w| {
            let inert_write = ops[w as usize].spec.kind == OpKind::Write
                && self.writes[w as usize] != Self::NONE
                && self.inert(self.writes[w as usize]);
            (!inert_write, w)
        });
        self.candidates = candidates;
    }
}

/// What a stack frame undoes, and where the search goes on after undoing it.
#[derive(Debug, Clone, Copy)]
enum FrameKind {
    /// A listed op linearized at its call entry: go on with the entry after it.
    Listed,
    /// An optional op left out at its return entry: that configuration is exhausted.
    Skipped,
    /// A pooled op, the `k`th candidate tried before the return entry `ret_entry`: go on with candidate `k + 1`.
    Pooled { ret_entry: u32, k: u32 },
}

struct Frame<S> {
    op: u32,
    state: S,
    kind: FrameKind,
}

/// Where the walk is.
#[derive(Debug, Clone, Copy)]
enum At {
    /// At a list entry.
    Entry(u32),
    /// At the first return entry `ret_entry`, trying pooled candidate `k`.
    Pool { ret_entry: u32, k: u32 },
    /// At the first return entry, all candidates tried.
    Return(u32),
}

/// How often (in steps) the deadline and the cache size are checked.
const BUDGET_CHECK_STEPS: u64 = 1 << 12;

/// Searches for a linearization of `ops` from `start`. With `capture`, stops at that frontier and returns the path.
pub(crate) fn search<M: Model>(
    model: &M,
    arena: &mut M::Arena,
    ops: &[SearchOp],
    start: M::State,
    budget: &Budget,
    capture: Option<Frontier>,
) -> (Verdict<M::State>, Stats) {
    let n = ops.len();
    assert!(n < (u32::MAX / 2) as usize - 2, "too many ops for one key");
    let mut stats = Stats::default();
    let mut mandatory_left = ops.iter().filter(|o| !o.optional).count();
    if mandatory_left == 0 {
        return (Verdict::Linearizable, stats);
    }
    let pooled: Vec<bool> = ops.iter().map(|o| o.optional && o.ret == NEVER).collect();

    // The list holds the other ops. Entries: 0 is the head, then the call and return entries in history order,
    // then the tail.
    let mut order: Vec<(u64, u8, u32)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        assert!(o.ret >= o.call, "an op returns after it is invoked");
        if !pooled[i] {
            order.push((o.call, 0, i as u32));
            order.push((o.ret, 1, i as u32));
        }
    }
    order.sort_unstable();
    let head = 0u32;
    let tail = (order.len() + 1) as u32;
    let mut entry_op = vec![0u32; order.len() + 2];
    let mut entry_is_call = vec![false; order.len() + 2];
    let mut call_entry = vec![0u32; n];
    let mut ret_entry = vec![0u32; n];
    for (rank, (_, kind, op)) in order.iter().enumerate() {
        let e = rank as u32 + 1;
        entry_op[e as usize] = *op;
        entry_is_call[e as usize] = *kind == 0;
        if *kind == 0 {
            call_entry[*op as usize] = e;
        } else {
            ret_entry[*op as usize] = e;
        }
    }
    drop(order);
    let mut next: Vec<u32> = (1..=tail + 1).collect();
    let mut prev: Vec<u32> = (0..=tail).map(|e| e.saturating_sub(1)).collect();

    let mut set = LinSet::with_parts(&pooled);
    let mut cache: Cache<M::State> = Cache::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut state = start;
    let mut frontier: Option<Frontier> = None;
    let mut pool = pooled.iter().any(|p| *p).then(|| Pool::new(ops, &pooled));
    let mut at = At::Entry(next[head as usize]);

    // Places an op: out of the list (or the pool), into the set.
    macro_rules! place {
        ($op:expr) => {{
            let op = $op as usize;
            set.insert($op);
            if !pooled[op] {
                let c = call_entry[op] as usize;
                let r = ret_entry[op] as usize;
                next[prev[c] as usize] = next[c];
                prev[next[c] as usize] = prev[c];
                next[prev[r] as usize] = next[r];
                prev[next[r] as usize] = prev[r];
            }
            if let Some(p) = pool.as_mut() {
                p.place($op);
            }
        }};
    }
    // Undoes `place!`, in reverse order of placing.
    macro_rules! unplace {
        ($op:expr) => {{
            let op = $op as usize;
            set.remove($op);
            if !pooled[op] {
                let c = call_entry[op];
                let r = ret_entry[op];
                next[prev[r as usize] as usize] = r;
                prev[next[r as usize] as usize] = r;
                next[prev[c as usize] as usize] = c;
                prev[next[c as usize] as usize] = c;
            }
            if let Some(p) = pool.as_mut() {
                p.unplace($op);
            }
        }};
    }

    let verdict = loop {
        if mandatory_left == 0 {
            break Verdict::Linearizable;
        }
        stats.steps += 1;
        if stats.steps > budget.steps_max_per_key {
            break Verdict::Unknown(UnknownReason::StepLimit);
        }
        if stats.steps % BUDGET_CHECK_STEPS == 0 {
            if cache.bytes() + M::arena_bytes(arena) > budget.cache_bytes_max_per_key {
                break Verdict::Unknown(UnknownReason::MemoryLimit);
            }
            if budget.expired() {
                break Verdict::Unknown(UnknownReason::TimeLimit);
            }
        }
        let ret = match at {
            At::Entry(entry) => {
                debug_assert!(entry != tail && entry != head);
                let op = entry_op[entry as usize];
                if !entry_is_call[entry as usize] {
                    // The first return entry: before giving up on it, try the pooled ops needed now.
                    at = if pool.is_some() {
                        At::Pool {
                            ret_entry: entry,
                            k: 0,
                        }
                    } else {
                        At::Return(entry)
                    };
                    continue;
                }
                let o = &ops[op as usize];
                if let Some(s2) = model.step(arena, state, &o.spec) {
                    set.insert(op);
                    let new = cache.insert(&set, s2);
                    set.remove(op);
                    if new {
                        stack.push(Frame {
                            op,
                            state,
                            kind: FrameKind::Listed,
                        });
                        state = s2;
                        place!(op);
                        if !o.optional {
                            mandatory_left -= 1;
                        }
                        at = At::Entry(next[head as usize]);
                        continue;
                    }
                }
                at = At::Entry(next[entry as usize]);
                continue;
            }
            At::Pool { ret_entry, k } => {
                let p = pool.as_mut().expect("pool phase only with a pool");
                if p.candidates_generation != p.generation {
                    let mut next_ops = Vec::new();
                    let mut e = next[head as usize];
                    while entry_is_call[e as usize] {
                        next_ops.push(entry_op[e as usize]);
                        e = next[e as usize];
                    }
                    let callable_before = ops[entry_op[ret_entry as usize] as usize].ret;
                    p.compute_candidates(
                        ops,
                        next_ops.into_iter(),
                        callable_before,
                        model.register_value(state),
                    );
                }
                let Some(&w) = p.candidates.get(k as usize) else {
                    at = At::Return(ret_entry);
                    continue;
                };
                at = At::Pool {
                    ret_entry,
                    k: k + 1,
                };
                if let Some(s2) = model.step(arena, state, &ops[w as usize].spec) {
                    set.insert(w);
                    let new = cache.insert(&set, s2);
                    set.remove(w);
                    if new {
                        stack.push(Frame {
                            op: w,
                            state,
                            kind: FrameKind::Pooled { ret_entry, k },
                        });
                        state = s2;
                        place!(w);
                        at = At::Entry(next[head as usize]);
                    }
                }
                continue;
            }
            At::Return(entry) => entry,
        };
        // A return entry whose op was not placed before its completion.
        let op = entry_op[ret as usize];
        if ops[op as usize].optional {
            // Leave it out: it never happened (or, at a window's start, happened before the window).
            set.insert(op);
            let new = cache.insert(&set, state);
            set.remove(op);
            if new {
                stack.push(Frame {
                    op,
                    state,
                    kind: FrameKind::Skipped,
                });
                place!(op);
                at = At::Entry(next[head as usize]);
                continue;
            }
        } else {
            let here = Frontier {
                entry: ret,
                depth: stack.len() as u32,
                op,
            };
            if frontier.is_none_or(|f| (here.entry, here.depth) > (f.entry, f.depth)) {
                frontier = Some(here);
            }
            if capture.is_some_and(|c| (c.entry, c.depth) == (here.entry, here.depth)) {
                let steps = stack
                    .iter()
                    .map(|f| (f.op, matches!(f.kind, FrameKind::Skipped)))
                    .collect();
                break Verdict::Illegal {
                    frontier: here,
                    path: Some(Path { steps, state }),
                };
            }
        }
        // Backtrack: undo the last placement and go on with the next alternative. A leave-out is undone without
        // retrying: it was taken only once every alternative before that return had failed.
        let mut exhausted = true;
        while let Some(f) = stack.pop() {
            unplace!(f.op);
            state = f.state;
            match f.kind {
                FrameKind::Skipped => continue,
                FrameKind::Listed => {
                    if !ops[f.op as usize].optional {
                        mandatory_left += 1;
                    }
                    at = At::Entry(next[call_entry[f.op as usize] as usize]);
                }
                FrameKind::Pooled { ret_entry, k } => {
                    at = At::Pool {
                        ret_entry,
                        k: k + 1,
                    }
                }
            }
            exhausted = false;
            break;
        }
        if exhausted {
            // Some mandatory return was reached, since the list is never empty while mandatory ops remain.
            let frontier = frontier.expect("a failed search reached a mandatory return");
            break Verdict::Illegal {
                frontier,
                path: None,
            };
        }
    };
    stats.cache_entries = cache.len() as u64;
    stats.cache_bytes = cache.bytes();
    (verdict, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CasRegister, OpKind, ValueId};

    fn op(kind: OpKind, a: u32, b: u32, call: u64, ret: u64) -> SearchOp {
        SearchOp {
            spec: OpSpec {
                kind,
                a: ValueId(a),
                b: ValueId(b),
            },
            call,
            ret,
            optional: ret == NEVER,
        }
    }

    fn run(ops: &[SearchOp]) -> Verdict<ValueId> {
        search(
            &CasRegister,
            &mut (),
            ops,
            ValueId::NULL,
            &Budget::default(),
            None,
        )
        .0
    }

    #[test]
    fn sequential_ops() {
        let ok = [op(OpKind::Write, 1, 0, 0, 1), op(OpKind::Read, 1, 0, 2, 3)];
        assert!(matches!(run(&ok), Verdict::Linearizable));
        let bad = [op(OpKind::Write, 1, 0, 0, 1), op(OpKind::Read, 2, 0, 2, 3)];
        let Verdict::Illegal { frontier, .. } = run(&bad) else {
            panic!("expected illegal")
        };
        assert_eq!(frontier.op, 1);
    }

    #[test]
    fn concurrent_ops_may_reorder() {
        // write 1 || write 2, then read 1: the writes overlap, so 2-then-1 is fine.
        let ops = [
            op(OpKind::Write, 1, 0, 0, 3),
            op(OpKind::Write, 2, 0, 1, 2),
            op(OpKind::Read, 1, 0, 4, 5),
        ];
        assert!(matches!(run(&ops), Verdict::Linearizable));
    }

    #[test]
    fn info_ops_are_optional() {
        // An info write may take effect late...
        let late = [
            op(OpKind::Write, 1, 0, 0, NEVER),
            op(OpKind::Read, 0, 0, 1, 2),
            op(OpKind::Read, 1, 0, 3, 4),
        ];
        assert!(matches!(run(&late), Verdict::Linearizable));
        // ...or never, but not before its invoke.
        let never = [
            op(OpKind::Write, 1, 0, 0, NEVER),
            op(OpKind::Read, 0, 0, 1, 2),
        ];
        assert!(matches!(run(&never), Verdict::Linearizable));
        let early = [
            op(OpKind::Read, 1, 0, 0, 1),
            op(OpKind::Write, 1, 0, 2, NEVER),
        ];
        assert!(matches!(run(&early), Verdict::Illegal { .. }));
    }

    #[test]
    fn step_budget_gives_unknown() {
        let ops: Vec<SearchOp> = (0..50)
            .map(|i| op(OpKind::Write, i, 0, i as u64, 100 + i as u64))
            .collect();
        let mut with_read = ops.clone();
        with_read.push(op(OpKind::Read, 999, 0, 200, 201));
        let budget = Budget::new(1000, u64::MAX, None);
        let (v, stats) = search(
            &CasRegister,
            &mut (),
            &with_read,
            ValueId::NULL,
            &budget,
            None,
        );
        assert!(
            matches!(v, Verdict::Unknown(UnknownReason::StepLimit)),
            "{v:?}"
        );
        assert_eq!(stats.steps, 1001);
    }

    #[test]
    fn capture_returns_the_path_to_the_frontier() {
        let ops = [
            op(OpKind::Write, 1, 0, 0, 1),
            op(OpKind::Write, 2, 0, 2, 3),
            op(OpKind::Read, 1, 0, 4, 5),
        ];
        let (
            Verdict::Illegal {
                frontier,
                path: None,
            },
            _,
        ) = search(
            &CasRegister,
            &mut (),
            &ops,
            ValueId::NULL,
            &Budget::default(),
            None,
        )
        else {
            panic!("expected illegal")
        };
        let (
            Verdict::Illegal {
                path: Some(path), ..
            },
            _,
        ) = search(
            &CasRegister,
            &mut (),
            &ops,
            ValueId::NULL,
            &Budget::default(),
            Some(frontier),
        )
        else {
            panic!("expected a captured path")
        };
        assert_eq!(path.steps, vec![(0, false), (1, false)]);
        assert_eq!(path.state, ValueId(2));
        assert_eq!(frontier.op, 2);
    }

    #[test]
    fn cache_compares_exactly() {
        let mut set = LinSet::new(200);
        let mut c: Cache<u32> = Cache::new();
        assert!(c.insert(&set, 1));
        assert!(!c.insert(&set, 1));
        assert!(c.insert(&set, 2));
        set.insert(70);
        assert!(c.insert(&set, 1));
        // A forged hash collision with a different set must not be a hit.
        let mut forged = LinSet::new(200);
        forged.insert(71);
        forged.hash = set.hash;
        assert!(c.insert(&forged, 1));
        // Sets differing only in the second part are different too.
        let mut a = LinSet::with_parts(&[false, true, true]);
        a.insert(1);
        let mut b = LinSet::with_parts(&[false, true, true]);
        b.insert(2);
        b.hash = a.hash;
        assert!(c.insert(&a, 9));
        assert!(c.insert(&b, 9));
        assert!(!c.insert(&a, 9));
        for i in 0..3000u32 {
            let mut s = LinSet::new(4000);
            s.insert(i);
            assert!(c.insert(&s, 0));
        }
        assert_eq!(c.len(), 3006);
    }

    #[test]
    fn linearized_sets_trim_canonically() {
        let mut set = LinSet::new(200);
        assert_eq!(set.trimmed()[0], (0, &[][..]));
        for i in 0..64 {
            set.insert(i);
        }
        assert_eq!(set.trimmed()[0], (1, &[][..]));
        set.insert(130);
        assert_eq!(set.trimmed()[0], (1, &[0, 1 << 2][..]));
        set.remove(5);
        assert_eq!(set.trimmed()[0], (0, &[!(1u64 << 5), 0, 1 << 2][..]));
        set.remove(130);
        set.insert(5);
        assert_eq!(set.trimmed()[0], (1, &[][..]));
        // Ops of the second part are trimmed on their own.
        let mut split = LinSet::with_parts(&[false, true, false, true]);
        split.insert(0);
        split.insert(2);
        split.insert(3);
        assert_eq!(split.trimmed(), [(0, &[0b11][..]), (0, &[0b10][..])]);
        let mut other = LinSet::new(200);
        for i in (0..64).rev() {
            other.insert(i);
        }
        assert_eq!(other.hash, set.hash);
    }
}
