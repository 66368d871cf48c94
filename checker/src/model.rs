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
use crate::history::Value;

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

/// The values of one history, interned.
#[derive(Debug, Clone)]
pub struct ValueTable {
    ids: FxHashMap<Value, ValueId>,
    values: Vec<Value>,
}

impl Default for ValueTable {
    fn default() -> Self {
        let mut t = ValueTable {
            ids: FxHashMap::default(),
            values: Vec::new(),
        };
        let null = t.intern(&Value::Null);
        assert_eq!(null, ValueId::NULL);
        t
    }
}

impl ValueTable {
    /// The id of a value, adding it if new.
    pub fn intern(&mut self, v: &Value) -> ValueId {
        if let Some(id) = self.ids.get(v) {
            return *id;
        }
        // Fewer than 2^32 - 1 distinct values: a history that large could not be held in memory anyway.
        let id =
            ValueId(u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values"));
        assert!(id < ValueId::ANY);
        self.values.push(v.clone());
        self.ids.insert(v.clone(), id);
        id
    }

    /// The value of an id, as text for reports.
    pub fn describe(&self, id: ValueId) -> String {
        if id == ValueId::OTHER {
            return "(a value no op mentions)".to_owned();
        }
        if id == ValueId::ANY {
            return "(unknown)".to_owned();
        }
        self.values
            .get(id.0 as usize)
            .map(Value::to_string)
            .unwrap_or_else(|| format!("(value #{})", id.0))
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

/// What an op does to a register, in interned form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Read `a`.
    Read,
    /// Write `a`.
    Write,
    /// If the register holds `a`, set it to `b`.
    Cas,
    /// A cas that found a value different from `a`: an observation that changes nothing.
    CasMismatch,
}

/// An op as the search sees it: kind and two interned operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpSpec {
    /// What the op does.
    pub kind: OpKind,
    /// Read value, written value, or cas `expected`.
    pub a: ValueId,
    /// Cas `new` (unused otherwise).
    pub b: ValueId,
}

impl OpSpec {
    /// The value this op leaves in the register when it takes effect, if it changes it.
    pub fn written(&self) -> Option<ValueId> {
        match self.kind {
            OpKind::Write => Some(self.a),
            OpKind::Cas => Some(self.b),
            OpKind::Read | OpKind::CasMismatch => None,
        }
    }

    /// Describes the op for reports.
    pub fn describe(&self, values: &ValueTable) -> String {
        match self.kind {
            OpKind::Read => format!("read {}", values.describe(self.a)),
            OpKind::Write => format!("write {}", values.describe(self.a)),
            OpKind::Cas => format!(
                "cas {} -> {}",
                values.describe(self.a),
                values.describe(self.b)
            ),
            OpKind::CasMismatch => format!("cas {} (mismatch)", values.describe(self.a)),
        }
    }
}

/// A sequential specification. `step` must be pure: the search calls it millions of times and caches on the state.
pub trait Model: Sync {
    /// A model state: small, copyable and hashable, since the search caches (linearized set, state) pairs.
    type State: Copy + Eq + Hash + fmt::Debug + Send + Sync;

    /// The state before any op.
    fn init(&self) -> Self::State;

    /// The state after `op`, or `None` if `op` is not legal in `state`.
    fn step(&self, state: Self::State, op: &OpSpec) -> Option<Self::State>;

    /// Start states that cover every behaviour of `ops` from an unknown state: the window check of a
    /// counterexample tries each and calls the window impossible only if all fail. A state standing for "unknown"
    /// may accept more than any real state would (that only makes reported windows larger), never less.
    fn start_states(&self, ops: &[OpSpec]) -> Vec<Self::State>;

    /// Describes a state for reports.
    fn describe(&self, state: Self::State, values: &ValueTable) -> String;

    /// The value a register-like state holds, if the model is one. Lets the search leave out indeterminate
    /// writes sooner; `None` (the default) is always correct, only slower.
    fn register_value(&self, _state: Self::State) -> Option<ValueId> {
        None
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

    fn init(&self) -> ValueId {
        ValueId::NULL
    }

    #[inline]
    fn step(&self, state: ValueId, op: &OpSpec) -> Option<ValueId> {
        match op.kind {
            OpKind::Read if state == ValueId::ANY => Some(op.a),
            OpKind::Read => (state == op.a).then_some(state),
            OpKind::Write => Some(op.a),
            // The preparation refuses cas ops for this model; treating one as impossible keeps `step` total.
            OpKind::Cas | OpKind::CasMismatch => None,
        }
    }

    fn start_states(&self, ops: &[OpSpec]) -> Vec<ValueId> {
        register_start_states(ops)
    }

    fn describe(&self, state: ValueId, values: &ValueTable) -> String {
        values.describe(state)
    }

    fn register_value(&self, state: ValueId) -> Option<ValueId> {
        (state != ValueId::ANY).then_some(state)
    }
}

impl Model for CasRegister {
    type State = ValueId;

    fn init(&self) -> ValueId {
        ValueId::NULL
    }

    #[inline]
    fn step(&self, state: ValueId, op: &OpSpec) -> Option<ValueId> {
        match op.kind {
            OpKind::Read if state == ValueId::ANY => Some(op.a),
            OpKind::Read => (state == op.a).then_some(state),
            OpKind::Write => Some(op.a),
            OpKind::Cas if state == ValueId::ANY => Some(op.b),
            OpKind::Cas => (state == op.a).then_some(op.b),
            OpKind::CasMismatch => (state != op.a).then_some(state),
        }
    }

    fn start_states(&self, ops: &[OpSpec]) -> Vec<ValueId> {
        register_start_states(ops)
    }

    fn describe(&self, state: ValueId, values: &ValueTable) -> String {
        values.describe(state)
    }

    fn register_value(&self, state: ValueId) -> Option<ValueId> {
        (state != ValueId::ANY).then_some(state)
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
}

impl ModelKind {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
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
        match s {
            "register" => Ok(ModelKind::Register),
            "cas-register" => Ok(ModelKind::CasRegister),
            other => Err(format!(
                "unknown model {other:?}: expected register or cas-register"
            )),
        }
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
        assert_eq!(m.step(s, &op(OpKind::Read, 0, 0)), Some(ValueId(0)));
        assert_eq!(m.step(s, &op(OpKind::Read, 1, 0)), None);
        assert_eq!(m.step(s, &op(OpKind::Write, 2, 0)), Some(ValueId(2)));
        assert_eq!(m.step(ValueId(2), &op(OpKind::Cas, 2, 3)), Some(ValueId(3)));
        assert_eq!(m.step(ValueId(2), &op(OpKind::Cas, 1, 3)), None);
        assert_eq!(
            m.step(ValueId(2), &op(OpKind::CasMismatch, 1, 0)),
            Some(ValueId(2))
        );
        assert_eq!(m.step(ValueId(2), &op(OpKind::CasMismatch, 2, 0)), None);
        assert_eq!(Register.step(ValueId(2), &op(OpKind::Cas, 2, 3)), None);
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
            m.step(ValueId::ANY, &op(OpKind::Read, 4, 0)),
            Some(ValueId(4))
        );
        assert_eq!(
            m.step(ValueId::ANY, &op(OpKind::Cas, 4, 5)),
            Some(ValueId(5))
        );
        assert_eq!(
            m.step(ValueId::ANY, &op(OpKind::CasMismatch, 4, 0)),
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
        assert_eq!(t.intern(&Value::Int(5)), a);
        assert_eq!(t.describe(b), "\"5\"");
        assert_eq!(
            "cas-register".parse::<ModelKind>(),
            Ok(ModelKind::CasRegister)
        );
        assert!("counter".parse::<ModelKind>().is_err());
    }
}
