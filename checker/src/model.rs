//! Models: what a sequential register does. A model is a few pure functions (init, step, describe), as in
//! Porcupine; the search only ever asks "from this state, is this op legal, and what state follows?".
//!
//! Values are interned to small integers ([`ValueId`]) before the search, so a register state is one `u32` and
//! comparing or hashing it costs nothing.

use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

use serde::Serialize;

use crate::hash::FxHashMap;
use crate::history::{Function, Value};

/// An interned value. `ValueId::NULL` is the absent key; [`ValueId::OTHER`] stands for "some value that no op of
/// this history mentions", which is all an unknown start state needs to distinguish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    /// The absent key (`null`).
    pub const NULL: ValueId = ValueId(0);
    /// A value different from every value in the history.
    pub const OTHER: ValueId = ValueId(u32::MAX);
    /// An unknown value: the register at the start of a window, before any op has told what it holds.
    pub const ANY: ValueId = ValueId(u32::MAX - 1);
}

/// Characters of one value shown in reports; longer values are cut with a marker saying how long they were.
pub const VALUE_CHARS_SHOWN_MAX: usize = 64;

/// Elements of a set or queue shown in reports; the rest are counted.
pub const ELEMENTS_SHOWN_MAX: usize = 16;

/// Cuts a value's text for a report: a 900 KB value must not make megabytes of output.
pub fn truncate_for_report(text: &str) -> String {
    if text.len() <= VALUE_CHARS_SHOWN_MAX {
        return text.to_owned();
    }
    let head: String = text.chars().take(VALUE_CHARS_SHOWN_MAX).collect();
    if head.len() == text.len() {
        return head;
    }
    format!("{head}...[{} bytes in all]", text.len())
}

/// Integers in `0..DENSE_INTS_MAX` are interned through a table indexed by value rather than a hash map: the
/// values of real and generated histories are mostly small counters, and a table lookup costs no cache miss for
/// values used close together. The table grows as needed (at most 16 MiB, mostly untouched zero pages).
const DENSE_INTS_MAX: i64 = 1 << 22;

/// The values of one history, interned; also the sets that set reads observed.
#[derive(Debug, Clone)]
pub struct ValueTable {
    /// `dense[v]` is the id of integer `v`, or `NULL` (no integer's id) when not seen yet.
    dense: Vec<ValueId>,
    ints: FxHashMap<i64, ValueId>,
    strs: FxHashMap<Box<str>, ValueId>,
    values: Vec<Value>,
    sets: Vec<Box<[ValueId]>>,
    set_ids: FxHashMap<Box<[ValueId]>, u32>,
}

impl Default for ValueTable {
    fn default() -> Self {
        let t = ValueTable {
            dense: Vec::new(),
            ints: FxHashMap::default(),
            strs: FxHashMap::default(),
            values: vec![Value::Null],
            sets: Vec::new(),
            set_ids: FxHashMap::default(),
        };
        assert_eq!(t.values.len(), ValueId::NULL.0 as usize + 1);
        t
    }
}

impl ValueTable {
    fn next_id(&self) -> ValueId {
        // Fewer than 2^32 - 2 distinct values: a history that large could not be held in memory anyway.
        let id =
            ValueId(u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values"));
        assert!(id < ValueId::ANY);
        id
    }

    /// The id of an integer, adding it if new (no allocation when it is known).
    pub fn intern_int(&mut self, v: i64) -> ValueId {
        if (0..DENSE_INTS_MAX).contains(&v) {
            let i = v as usize;
            if i >= self.dense.len() {
                let len = (i + 1)
                    .max(self.dense.len() * 2)
                    .min(DENSE_INTS_MAX as usize);
                self.dense.resize(len, ValueId::NULL);
            }
            if self.dense[i] != ValueId::NULL {
                return self.dense[i];
            }
            let id = self.next_id();
            self.values.push(Value::Int(v));
            self.dense[i] = id;
            return id;
        }
        if let Some(id) = self.ints.get(&v) {
            return *id;
        }
        let id = self.next_id();
        self.values.push(Value::Int(v));
        self.ints.insert(v, id);
        id
    }

    /// The id of a string, adding it if new (no allocation when it is known).
    pub fn intern_str(&mut self, v: &str) -> ValueId {
        if let Some(id) = self.strs.get(v) {
            return *id;
        }
        let id = self.next_id();
        self.values.push(Value::Str(v.to_owned()));
        self.strs.insert(v.into(), id);
        id
    }

    /// The id of a value, adding it if new.
    pub fn intern(&mut self, v: &Value) -> ValueId {
        match v {
            Value::Null => ValueId::NULL,
            Value::Int(i) => self.intern_int(*i),
            Value::Str(s) => self.intern_str(s),
        }
    }

    /// The id of the set of `elements` (order and repetitions do not matter).
    pub fn intern_set(&mut self, elements: &[Value]) -> u32 {
        let mut ids: Vec<ValueId> = elements.iter().map(|v| self.intern(v)).collect();
        ids.sort_unstable();
        ids.dedup();
        let ids: Box<[ValueId]> = ids.into();
        if let Some(id) = self.set_ids.get(&ids) {
            return *id;
        }
        let id = u32::try_from(self.sets.len()).expect("fewer than 2^32 distinct sets");
        self.sets.push(ids.clone());
        self.set_ids.insert(ids, id);
        id
    }

    /// The elements of an interned set, sorted.
    pub fn set(&self, id: u32) -> &[ValueId] {
        &self.sets[id as usize]
    }

    /// Every interned set, by id.
    pub fn sets(&self) -> &[Box<[ValueId]>] {
        &self.sets
    }

    /// The value of an id, as text for reports (long values cut, see [`truncate_for_report`]).
    pub fn describe(&self, id: ValueId) -> String {
        if id == ValueId::OTHER {
            return "(a value no op mentions)".to_owned();
        }
        if id == ValueId::ANY {
            return "(unknown)".to_owned();
        }
        self.values
            .get(id.0 as usize)
            .map(|v| truncate_for_report(&v.to_string()))
            .unwrap_or_else(|| format!("(value #{})", id.0))
    }

    /// Elements as text for reports, `{1, 2}` or `[1, 2]`, long lists cut.
    pub fn describe_elements(&self, ids: &[ValueId], open: &str, close: &str) -> String {
        let mut s = String::from(open);
        for (i, id) in ids.iter().take(ELEMENTS_SHOWN_MAX).enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&self.describe(*id));
        }
        if ids.len() > ELEMENTS_SHOWN_MAX {
            s.push_str(&format!(", ... {} more", ids.len() - ELEMENTS_SHOWN_MAX));
        }
        s.push_str(close);
        s
    }

    /// The number of distinct values, `null` included.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when only `null` is known.
    pub fn is_empty(&self) -> bool {
        self.values.len() <= 1
    }
}

/// What an op does, in interned form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpKind {
    /// Read `a`.
    Read,
    /// Write `a`.
    Write,
    /// If the register holds `a`, set it to `b`.
    Cas,
    /// A cas that found a value different from `a`: an observation that changes nothing.
    CasMismatch,
    /// Add element `a` to a set.
    Add,
    /// Read the whole set: `a` is the id of the set read ([`ValueTable::set`]).
    ReadSet,
    /// Acquire the mutex.
    Acquire,
    /// Release the mutex.
    Release,
    /// Put `a` into the queue.
    Enqueue,
    /// Take `a` out of the queue; `a` = null: the queue was found empty.
    Dequeue,
    /// An indeterminate dequeue of a FIFO queue: takes whatever is at the head (nothing when empty).
    DequeueHead,
}

/// An op as the search sees it: kind and two interned operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpSpec {
    /// What the op does.
    pub kind: OpKind,
    /// Read value, written value, cas `expected`, element, or set id.
    pub a: ValueId,
    /// Cas `new` (unused otherwise).
    pub b: ValueId,
}

impl OpSpec {
    /// An op with one operand.
    pub fn new(kind: OpKind, a: ValueId) -> OpSpec {
        OpSpec {
            kind,
            a,
            b: ValueId::NULL,
        }
    }

    /// The value a register op leaves in the register when it takes effect, if it changes it.
    pub fn written(&self) -> Option<ValueId> {
        match self.kind {
            OpKind::Write => Some(self.a),
            OpKind::Cas => Some(self.b),
            _ => None,
        }
    }

    /// True for the ops of the register models.
    pub fn is_register_op(&self) -> bool {
        matches!(
            self.kind,
            OpKind::Read | OpKind::Write | OpKind::Cas | OpKind::CasMismatch
        )
    }

    /// Describes the op for reports.
    pub fn describe(&self, values: &ValueTable) -> String {
        let v = |id| values.describe(id);
        match self.kind {
            OpKind::Read => format!("read {}", v(self.a)),
            OpKind::Write => format!("write {}", v(self.a)),
            OpKind::Cas => format!("cas {} -> {}", v(self.a), v(self.b)),
            OpKind::CasMismatch => format!("cas {} (mismatch)", v(self.a)),
            OpKind::Add => format!("add {}", v(self.a)),
            OpKind::ReadSet => format!(
                "read {}",
                values.describe_elements(values.set(self.a.0), "{", "}")
            ),
            OpKind::Acquire => "acquire".to_owned(),
            OpKind::Release => "release".to_owned(),
            OpKind::Enqueue => format!("enqueue {}", v(self.a)),
            OpKind::Dequeue if self.a == ValueId::NULL => "dequeue (empty)".to_owned(),
            OpKind::Dequeue => format!("dequeue {}", v(self.a)),
            OpKind::DequeueHead => "dequeue (value unknown)".to_owned(),
        }
    }
}

/// A sequential specification. `step` must be pure apart from the arena: the search calls it millions of times and
/// caches on the state.
///
/// States are small `Copy` values compared exactly. Models whose states are collections (sets, queues) intern them
/// in an arena owned by one search, so that a state is an id and equal collections always get the same id.
pub trait Model: Sync {
    /// A model state: small, copyable and hashable, since the search caches (linearized set, state) pairs.
    type State: Copy + Eq + Hash + fmt::Debug + Send + Sync;
    /// Per-search storage for interned states (`()` for models whose states are plain values).
    type Arena: Default + Send;

    /// The state before any op.
    fn init(&self) -> Self::State;

    /// The state after `op`, or `None` if `op` is not legal in `state`.
    fn step(&self, arena: &mut Self::Arena, state: Self::State, op: &OpSpec)
        -> Option<Self::State>;

    /// Start states that cover every behaviour of `ops` from an unknown state: the window check of a
    /// counterexample tries each and calls the window impossible only if all fail. A state standing for "unknown"
    /// may accept more than any real state would (that only makes reported windows larger), never less. Empty when
    /// the model cannot start from an unknown state: windows then start at the beginning of the history.
    fn start_states(&self, ops: &[OpSpec]) -> Vec<Self::State>;

    /// Describes a state for reports.
    fn describe(&self, arena: &Self::Arena, state: Self::State, values: &ValueTable) -> String;

    /// The value a register-like state holds, if the model is one. Lets the search leave out indeterminate
    /// writes sooner; `None` (the default) is always correct, only slower.
    fn register_value(&self, _state: Self::State) -> Option<ValueId> {
        None
    }

    /// Bytes held by an arena, counted against the search's memory budget.
    fn arena_bytes(_arena: &Self::Arena) -> u64 {
        0
    }
}

/// A read/write register.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

/// A read/write/compare-and-set register.
#[derive(Debug, Clone, Copy, Default)]
pub struct CasRegister;

/// Above this many candidate values, a window with mismatch ops starts from `ANY` rather than from each value.
const START_STATES_ENUMERATED_MAX: usize = 8;

fn register_start_states(ops: &[OpSpec]) -> Vec<ValueId> {
    // `ANY` is exact for reads, writes and cas: the first op that depends on the value pins it. A mismatch op
    // only learns that the value is not `expected`, which `ANY` forgets; that makes the window check accept more,
    // never less, so a window it rejects is still truly impossible. With mismatch ops and few values, trying each
    // value keeps the check exact: a register only compares values, so every value no op mentions behaves alike
    // and one representative (`OTHER`) stands for all of them.
    if ops.iter().all(|o| o.kind != OpKind::CasMismatch) {
        return vec![ValueId::ANY];
    }
    let mut v: Vec<ValueId> = ops.iter().flat_map(|o| [o.a, o.b]).collect();
    v.push(ValueId::NULL);
    v.push(ValueId::OTHER);
    v.sort_unstable();
    v.dedup();
    if v.len() > START_STATES_ENUMERATED_MAX {
        return vec![ValueId::ANY];
    }
    v
}

impl Model for Register {
    type State = ValueId;
    type Arena = ();

    fn init(&self) -> ValueId {
        ValueId::NULL
    }

    #[inline]
    fn step(&self, _: &mut (), state: ValueId, op: &OpSpec) -> Option<ValueId> {
        match op.kind {
            OpKind::Read if state == ValueId::ANY => Some(op.a),
            OpKind::Read => (state == op.a).then_some(state),
            OpKind::Write => Some(op.a),
            // The preparation refuses other ops for this model; treating one as impossible keeps `step` total.
            _ => None,
        }
    }

    fn start_states(&self, ops: &[OpSpec]) -> Vec<ValueId> {
        register_start_states(ops)
    }

    fn describe(&self, _: &(), state: ValueId, values: &ValueTable) -> String {
        values.describe(state)
    }

    fn register_value(&self, state: ValueId) -> Option<ValueId> {
        (state != ValueId::ANY).then_some(state)
    }
}

impl Model for CasRegister {
    type State = ValueId;
    type Arena = ();

    fn init(&self) -> ValueId {
        ValueId::NULL
    }

    #[inline]
    fn step(&self, _: &mut (), state: ValueId, op: &OpSpec) -> Option<ValueId> {
        match op.kind {
            OpKind::Read if state == ValueId::ANY => Some(op.a),
            OpKind::Read => (state == op.a).then_some(state),
            OpKind::Write => Some(op.a),
            OpKind::Cas if state == ValueId::ANY => Some(op.b),
            OpKind::Cas => (state == op.a).then_some(op.b),
            OpKind::CasMismatch => (state != op.a).then_some(state),
            _ => None,
        }
    }

    fn start_states(&self, ops: &[OpSpec]) -> Vec<ValueId> {
        register_start_states(ops)
    }

    fn describe(&self, _: &(), state: ValueId, values: &ValueTable) -> String {
        values.describe(state)
    }

    fn register_value(&self, state: ValueId) -> Option<ValueId> {
        (state != ValueId::ANY).then_some(state)
    }
}

/// Interned collections of values (sets, multisets, sequences): equal contents get equal ids, so a state that is
/// an id compares exactly. Transitions are memoised, since the search repeats them often.
#[derive(Debug)]
pub struct CollectionArena {
    items: Vec<Box<[ValueId]>>,
    ids: FxHashMap<Box<[ValueId]>, u32>,
    memo: FxHashMap<(u32, u8, ValueId), u32>,
    bytes: u64,
}

impl Default for CollectionArena {
    fn default() -> Self {
        let mut a = CollectionArena {
            items: Vec::new(),
            ids: FxHashMap::default(),
            memo: FxHashMap::default(),
            bytes: 0,
        };
        let empty = a.intern(Vec::new());
        assert_eq!(empty, CollectionArena::EMPTY);
        a
    }
}

impl CollectionArena {
    /// The id of the empty collection.
    pub const EMPTY: u32 = 0;

    fn intern(&mut self, items: Vec<ValueId>) -> u32 {
        let items: Box<[ValueId]> = items.into();
        if let Some(id) = self.ids.get(&items) {
            return *id;
        }
        // The search's memory budget stops long before 2^31 states.
        let id = u32::try_from(self.items.len()).expect("fewer than 2^31 collections");
        assert!(id < ANY_BIT);
        self.bytes += 2 * (items.len() as u64 * 4 + 16) + 24;
        self.items.push(items.clone());
        self.ids.insert(items, id);
        id
    }

    /// The id of `items`, memoised under `key` so that the same lookup does not allocate again.
    fn intern_memo(&mut self, key: (u32, u8, ValueId), items: &[ValueId]) -> u32 {
        if let Some(&id) = self.memo.get(&key) {
            return id;
        }
        let id = self.intern(items.to_vec());
        self.memo.insert(key, id);
        id
    }

    fn get(&self, id: u32) -> &[ValueId] {
        &self.items[id as usize]
    }

    /// The memoised result of `f` applied to collection `id` with operand `v`.
    fn transition(
        &mut self,
        id: u32,
        tag: u8,
        v: ValueId,
        f: impl FnOnce(&[ValueId]) -> Option<Vec<ValueId>>,
    ) -> Option<u32> {
        if let Some(&to) = self.memo.get(&(id, tag, v)) {
            return (to != u32::MAX).then_some(to);
        }
        let to = f(self.get(id)).map(|items| self.intern(items));
        self.memo.insert((id, tag, v), to.unwrap_or(u32::MAX));
        self.bytes += 24;
        to
    }
}

/// The bit of a set state that marks an unknown base (the start of a window).
const ANY_BIT: u32 = 1 << 31;

/// A grow-only set: `add` an element, `read` the whole set (Knossos' `set`).
#[derive(Debug, Clone, Copy)]
pub struct SetModel<'v> {
    /// The sets that reads observed, by id ([`ValueTable::sets`]).
    pub reads: &'v [Box<[ValueId]>],
}

impl Model for SetModel<'_> {
    /// An arena id; with its top bit set, "an unknown set plus these elements".
    type State = u32;
    type Arena = CollectionArena;

    fn init(&self) -> u32 {
        CollectionArena::EMPTY
    }

    fn step(&self, arena: &mut CollectionArena, state: u32, op: &OpSpec) -> Option<u32> {
        let any = state & ANY_BIT;
        let id = state & !ANY_BIT;
        match op.kind {
            OpKind::Add => arena
                .transition(id, 0, op.a, |s| {
                    Some(match s.binary_search(&op.a) {
                        Ok(_) => s.to_vec(),
                        Err(i) => {
                            let mut v = s.to_vec();
                            v.insert(i, op.a);
                            v
                        }
                    })
                })
                .map(|to| to | any),
            OpKind::ReadSet => {
                let read = self.reads.get(op.a.0 as usize)?;
                let read_id = arena.intern_memo((u32::MAX, 9, op.a), read);
                if any == 0 {
                    return (id == read_id).then_some(state);
                }
                // From an unknown base, a read is legal when it contains every element added since; it then tells
                // the whole state.
                let known = arena.get(id);
                let read = arena.get(read_id);
                known
                    .iter()
                    .all(|v| read.binary_search(v).is_ok())
                    .then_some(read_id)
            }
            _ => None,
        }
    }

    fn start_states(&self, _ops: &[OpSpec]) -> Vec<u32> {
        vec![ANY_BIT | CollectionArena::EMPTY]
    }

    fn describe(&self, arena: &CollectionArena, state: u32, values: &ValueTable) -> String {
        let set = values.describe_elements(arena.get(state & !ANY_BIT), "{", "}");
        if state & ANY_BIT != 0 {
            format!("(unknown) + {set}")
        } else {
            set
        }
    }

    fn arena_bytes(arena: &CollectionArena) -> u64 {
        arena.bytes
    }
}

/// A lock: `acquire` when free, `release` when held (Knossos' `mutex`; the holder is not tracked).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mutex;

impl Model for Mutex {
    /// Held or not.
    type State = bool;
    type Arena = ();

    fn init(&self) -> bool {
        false
    }

    fn step(&self, _: &mut (), held: bool, op: &OpSpec) -> Option<bool> {
        match op.kind {
            OpKind::Acquire => (!held).then_some(true),
            OpKind::Release => held.then_some(false),
            _ => None,
        }
    }

    fn start_states(&self, _ops: &[OpSpec]) -> Vec<bool> {
        vec![false, true]
    }

    fn describe(&self, _: &(), held: bool, _values: &ValueTable) -> String {
        if held { "held" } else { "free" }.to_owned()
    }
}

/// A queue: `enqueue` an element, `dequeue` one. Unordered (any element may come out: Knossos'
/// `unordered-queue`) or first in, first out (`fifo-queue`).
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    /// First in, first out; otherwise any element may be dequeued.
    pub fifo: bool,
}

impl Model for Queue {
    /// An arena id: a sorted multiset (unordered) or a sequence, head first (FIFO).
    type State = u32;
    type Arena = CollectionArena;

    fn init(&self) -> u32 {
        CollectionArena::EMPTY
    }

    fn step(&self, arena: &mut CollectionArena, state: u32, op: &OpSpec) -> Option<u32> {
        let fifo = self.fifo;
        match op.kind {
            OpKind::Enqueue => arena.transition(state, 1, op.a, |q| {
                let mut v = q.to_vec();
                if fifo {
                    v.push(op.a);
                } else {
                    let i = v.partition_point(|x| *x <= op.a);
                    v.insert(i, op.a);
                }
                Some(v)
            }),
            // A dequeue that found the queue empty.
            OpKind::Dequeue if op.a == ValueId::NULL => {
                (state == CollectionArena::EMPTY).then_some(state)
            }
            OpKind::Dequeue => arena.transition(state, 2, op.a, |q| {
                let i = if fifo {
                    (q.first() == Some(&op.a)).then_some(0)
                } else {
                    q.binary_search(&op.a).ok()
                }?;
                let mut v = q.to_vec();
                v.remove(i);
                Some(v)
            }),
            OpKind::DequeueHead if fifo => arena.transition(state, 3, ValueId::NULL, |q| {
                Some(q.get(1..).unwrap_or(&[]).to_vec())
            }),
            _ => None,
        }
    }

    fn start_states(&self, _ops: &[OpSpec]) -> Vec<u32> {
        // An unknown queue could hand out anything: windows of a queue history start at its beginning.
        Vec::new()
    }

    fn describe(&self, arena: &CollectionArena, state: u32, values: &ValueTable) -> String {
        values.describe_elements(arena.get(state), "[", "]")
    }

    fn arena_bytes(arena: &CollectionArena) -> u64 {
        arena.bytes
    }
}

/// The model to check a history against. Each key of a map is checked independently with this model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ModelKind {
    /// Reads and writes only.
    Register,
    /// Reads, writes and compare-and-set.
    #[default]
    CasRegister,
    /// A grow-only set: add, read all.
    Set,
    /// A lock: acquire, release.
    Mutex,
    /// A queue that may hand out its elements in any order: enqueue, dequeue.
    UnorderedQueue,
    /// A first-in, first-out queue: enqueue, dequeue.
    FifoQueue,
}

impl ModelKind {
    /// Every model, in the order of the documentation.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Set,
        ModelKind::Mutex,
        ModelKind::UnorderedQueue,
        ModelKind::FifoQueue,
    ];

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Set => "set",
            ModelKind::Mutex => "mutex",
            ModelKind::UnorderedQueue => "unordered-queue",
            ModelKind::FifoQueue => "fifo-queue",
        }
    }

    /// The client functions a history checked against this model may use.
    pub fn functions(self) -> &'static [Function] {
        match self {
            ModelKind::Register => &[Function::Read, Function::Write],
            ModelKind::CasRegister => &[Function::Read, Function::Write, Function::Cas],
            ModelKind::Set => &[Function::Add, Function::Read],
            ModelKind::Mutex => &[Function::Acquire, Function::Release],
            ModelKind::UnorderedQueue | ModelKind::FifoQueue => {
                &[Function::Enqueue, Function::Dequeue]
            }
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ModelKind::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown model {s:?}: expected one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpKind, a: u32, b: u32) -> OpSpec {
        OpSpec {
            kind,
            a: ValueId(a),
            b: ValueId(b),
        }
    }

    #[test]
    fn cas_register_steps() {
        let m = CasRegister;
        let s = m.init();
        assert_eq!(
            m.step(&mut (), s, &op(OpKind::Read, 0, 0)),
            Some(ValueId(0))
        );
        assert_eq!(m.step(&mut (), s, &op(OpKind::Read, 1, 0)), None);
        assert_eq!(
            m.step(&mut (), s, &op(OpKind::Write, 2, 0)),
            Some(ValueId(2))
        );
        assert_eq!(
            m.step(&mut (), ValueId(2), &op(OpKind::Cas, 2, 3)),
            Some(ValueId(3))
        );
        assert_eq!(m.step(&mut (), ValueId(2), &op(OpKind::Cas, 1, 3)), None);
        assert_eq!(
            m.step(&mut (), ValueId(2), &op(OpKind::CasMismatch, 1, 0)),
            Some(ValueId(2))
        );
        assert_eq!(
            m.step(&mut (), ValueId(2), &op(OpKind::CasMismatch, 2, 0)),
            None
        );
        assert_eq!(
            Register.step(&mut (), ValueId(2), &op(OpKind::Cas, 2, 3)),
            None
        );
    }

    #[test]
    fn start_states_cover_every_behaviour() {
        let s = CasRegister.start_states(&[op(OpKind::Read, 4, 0), op(OpKind::Cas, 2, 5)]);
        assert_eq!(s, vec![ValueId::ANY]);
        let s = CasRegister.start_states(&[op(OpKind::CasMismatch, 4, 0), op(OpKind::Cas, 2, 5)]);
        assert_eq!(
            s,
            vec![
                ValueId(0),
                ValueId(2),
                ValueId(4),
                ValueId(5),
                ValueId::OTHER
            ]
        );
        let many: Vec<OpSpec> = (1..20).map(|v| op(OpKind::CasMismatch, v, 0)).collect();
        assert_eq!(CasRegister.start_states(&many), vec![ValueId::ANY]);
        let m = CasRegister;
        assert_eq!(
            m.step(&mut (), ValueId::ANY, &op(OpKind::Read, 4, 0)),
            Some(ValueId(4))
        );
        assert_eq!(
            m.step(&mut (), ValueId::ANY, &op(OpKind::Cas, 4, 5)),
            Some(ValueId(5))
        );
        assert_eq!(
            m.step(&mut (), ValueId::ANY, &op(OpKind::CasMismatch, 4, 0)),
            Some(ValueId::ANY)
        );
    }

    #[test]
    fn interning_is_stable() {
        let mut t = ValueTable::default();
        assert_eq!(t.intern(&Value::Null), ValueId::NULL);
        let a = t.intern(&Value::Int(5));
        let b = t.intern(&Value::Str("5".into()));
        assert_ne!(a, b);
        assert_eq!(t.intern_str("5"), b);
        assert_eq!(t.intern_int(5), a);
        assert_eq!(t.intern(&Value::Int(5)), a);
        assert_eq!(t.describe(b), "\"5\"");
        assert_eq!(
            "cas-register".parse::<ModelKind>(),
            Ok(ModelKind::CasRegister)
        );
        assert!("counter".parse::<ModelKind>().is_err());
        for m in ModelKind::ALL {
            assert_eq!(m.as_str().parse::<ModelKind>(), Ok(m));
        }
    }

    #[test]
    fn long_values_are_cut_in_reports() {
        let mut t = ValueTable::default();
        let big = t.intern(&Value::Str("x".repeat(900_000)));
        let text = t.describe(big);
        assert!(text.len() < 200, "{}", text.len());
        assert!(text.ends_with("...[900002 bytes in all]"), "{text}");
        let small = t.intern(&Value::Str("short".into()));
        assert_eq!(t.describe(small), "\"short\"");
        let many: Vec<ValueId> = (0..100).map(|i| t.intern_int(i)).collect();
        assert!(t
            .describe_elements(&many, "{", "}")
            .ends_with(", ... 84 more}"));
    }

    #[test]
    fn collection_models_step() {
        let mut t = ValueTable::default();
        let (one, two) = (t.intern_int(1), t.intern_int(2));
        let read12 = t.intern_set(&[Value::Int(2), Value::Int(1), Value::Int(2)]);
        let read1 = t.intern_set(&[Value::Int(1)]);
        let set = SetModel { reads: t.sets() };
        let mut arena = CollectionArena::default();
        let s = set.init();
        let s1 = set
            .step(&mut arena, s, &OpSpec::new(OpKind::Add, one))
            .unwrap();
        assert_eq!(
            set.step(
                &mut arena,
                s1,
                &OpSpec::new(OpKind::ReadSet, ValueId(read1))
            ),
            Some(s1)
        );
        assert_eq!(
            set.step(
                &mut arena,
                s1,
                &OpSpec::new(OpKind::ReadSet, ValueId(read12))
            ),
            None
        );
        let s12 = set
            .step(&mut arena, s1, &OpSpec::new(OpKind::Add, two))
            .unwrap();
        let s2 = set
            .step(&mut arena, s, &OpSpec::new(OpKind::Add, two))
            .unwrap();
        let s21 = set
            .step(&mut arena, s2, &OpSpec::new(OpKind::Add, one))
            .unwrap();
        assert_eq!(s12, s21, "equal sets are equal states");
        // From an unknown base, a read pins the state if it contains what was added.
        let any = set.start_states(&[])[0];
        let any1 = set
            .step(&mut arena, any, &OpSpec::new(OpKind::Add, one))
            .unwrap();
        assert_eq!(
            set.step(
                &mut arena,
                any1,
                &OpSpec::new(OpKind::ReadSet, ValueId(read12))
            ),
            Some(s12)
        );
        assert_eq!(set.describe(&arena, s12, &t), "{1, 2}");

        let m = Mutex;
        assert_eq!(
            m.step(&mut (), false, &OpSpec::new(OpKind::Acquire, ValueId::NULL)),
            Some(true)
        );
        assert_eq!(
            m.step(&mut (), true, &OpSpec::new(OpKind::Acquire, ValueId::NULL)),
            None
        );
        assert_eq!(
            m.step(&mut (), false, &OpSpec::new(OpKind::Release, ValueId::NULL)),
            None
        );

        for fifo in [false, true] {
            let q = Queue { fifo };
            let mut arena = CollectionArena::default();
            let e = |a: &mut CollectionArena, s, v| {
                q.step(a, s, &OpSpec::new(OpKind::Enqueue, v)).unwrap()
            };
            let s = e(&mut arena, q.init(), one);
            let s = e(&mut arena, s, two);
            let d2 = q.step(&mut arena, s, &OpSpec::new(OpKind::Dequeue, two));
            assert_eq!(d2.is_some(), !fifo, "fifo {fifo}");
            let d1 = q
                .step(&mut arena, s, &OpSpec::new(OpKind::Dequeue, one))
                .unwrap();
            assert_eq!(q.describe(&arena, d1, &t), "[2]");
            assert_eq!(
                q.step(&mut arena, d1, &OpSpec::new(OpKind::Dequeue, ValueId::NULL)),
                None
            );
            let empty = q
                .step(&mut arena, d1, &OpSpec::new(OpKind::Dequeue, two))
                .unwrap();
            assert_eq!(
                q.step(
                    &mut arena,
                    empty,
                    &OpSpec::new(OpKind::Dequeue, ValueId::NULL)
                ),
                Some(empty)
            );
            let head = q.step(
                &mut arena,
                s,
                &OpSpec::new(OpKind::DequeueHead, ValueId::NULL),
            );
            assert_eq!(head, fifo.then_some(d1));
        }
    }
}
