//! The search against a brute-force oracle on small random histories, for every model: same verdict from every
//! start state, and every window reported as failing really makes the whole history fail.

use proptest::prelude::*;

use crate::counterexample::tests::{window_fails_for_tests, window_for_tests};
use crate::history::Value;
use crate::model::{
    CasRegister, Model, Mutex, OpKind, OpSpec, Queue, Register, SetModel, ValueId, ValueTable,
};
use crate::search::{search, Budget, SearchOp, Verdict, NEVER};

/// Is there an order of all mandatory ops plus some optional ones, respecting real time, legal from `start`?
fn oracle<M: Model>(model: &M, ops: &[SearchOp], start: M::State) -> bool {
    let optional: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].optional).collect();
    let mut arena = M::Arena::default();
    (0..1u32 << optional.len()).any(|mask| {
        let included: Vec<usize> = (0..ops.len())
            .filter(|&i| {
                !ops[i].optional
                    || mask & (1 << optional.iter().position(|&o| o == i).unwrap_or(0)) != 0
            })
            .collect();
        let mut used = vec![false; ops.len()];
        dfs(model, &mut arena, ops, &included, &mut used, start, 0)
    })
}

fn dfs<M: Model>(
    model: &M,
    arena: &mut M::Arena,
    ops: &[SearchOp],
    included: &[usize],
    used: &mut [bool],
    state: M::State,
    placed: usize,
) -> bool {
    if placed == included.len() {
        return true;
    }
    for &i in included {
        if used[i] {
            continue;
        }
        // Every included op that returned before this one's invoke must already be placed.
        let ready = included
            .iter()
            .all(|&p| used[p] || p == i || ops[p].ret >= ops[i].call);
        if !ready {
            continue;
        }
        if let Some(next) = model.step(arena, state, &ops[i].spec) {
            used[i] = true;
            if dfs(model, arena, ops, included, used, next, placed + 1) {
                used[i] = false;
                return true;
            }
            used[i] = false;
        }
    }
    false
}

/// Random histories of up to 7 ops over 3 values, with random intervals; `kinds` are the ops of the model, and
/// those in `may_be_info` are indeterminate one time in five.
fn arb_ops(
    kinds: &'static [OpKind],
    may_be_info: &'static [OpKind],
    values: u32,
) -> impl Strategy<Value = Vec<SearchOp>> {
    (1usize..=7).prop_flat_map(move |n| {
        (
            Just(n),
            Just((0..2 * n as u64).collect::<Vec<u64>>()).prop_shuffle(),
            proptest::collection::vec((0..kinds.len(), 0..values, 0..values, 0u8..5), n),
        )
            .prop_map(move |(n, positions, specs)| {
                (0..n)
                    .map(|i| {
                        let (a, b) = (positions[2 * i], positions[2 * i + 1]);
                        let (kind, va, vb, fate) = specs[i];
                        let kind = kinds[kind];
                        let info = fate == 0 && may_be_info.contains(&kind);
                        SearchOp {
                            spec: OpSpec {
                                kind,
                                a: ValueId(va),
                                b: ValueId(vb),
                            },
                            call: a.min(b),
                            ret: if info { NEVER } else { a.max(b) },
                            optional: info,
                        }
                    })
                    .collect()
            })
    })
}

fn agree<M: Model>(model: &M, ops: &[SearchOp], start: M::State) -> Result<(), TestCaseError> {
    let (v, _) = search(
        model,
        &mut M::Arena::default(),
        ops,
        start,
        &Budget::default(),
        None,
    );
    let expected = oracle(model, ops, start);
    match v {
        Verdict::Linearizable => prop_assert!(expected, "search says linearizable: {ops:?}"),
        Verdict::Illegal { .. } => prop_assert!(!expected, "search says illegal: {ops:?}"),
        Verdict::Unknown(r) => prop_assert!(false, "unknown ({r:?}) on a tiny history"),
    }
    Ok(())
}

/// A window that the counterexample search calls impossible really makes the whole history impossible.
fn windows_are_sound<M: Model>(
    model: &M,
    ops: &[SearchOp],
    t1: u64,
    len: u64,
) -> Result<(), TestCaseError> {
    let t2 = t1 + len;
    let fine = oracle(model, ops, model.init());
    let w = window_for_tests(ops, Some(t1), t2);
    if window_fails_for_tests(model, &w, false) {
        prop_assert!(
            !fine,
            "window [{t1}, {t2}] fails but the history is fine: {ops:?}"
        );
    }
    let prefix = window_for_tests(ops, None, t2);
    if window_fails_for_tests(model, &prefix, true) {
        prop_assert!(
            !fine,
            "prefix to {t2} fails but the history is fine: {ops:?}"
        );
    }
    Ok(())
}

const REGISTER: &[OpKind] = &[OpKind::Read, OpKind::Write];
const CAS_REGISTER: &[OpKind] = &[
    OpKind::Read,
    OpKind::Write,
    OpKind::Cas,
    OpKind::CasMismatch,
];
const SET: &[OpKind] = &[OpKind::Add, OpKind::ReadSet];
const MUTEX: &[OpKind] = &[OpKind::Acquire, OpKind::Release];
const UNORDERED_QUEUE: &[OpKind] = &[OpKind::Enqueue, OpKind::Dequeue];
const FIFO_QUEUE: &[OpKind] = &[OpKind::Enqueue, OpKind::Dequeue, OpKind::DequeueHead];

/// The sets a set read may see: every subset of {1, 2, 3}, by id.
fn set_table() -> ValueTable {
    let mut t = ValueTable::default();
    for v in 1..=3 {
        assert_eq!(t.intern_int(v), ValueId(v as u32));
    }
    for mask in 0u32..8 {
        let items: Vec<Value> = (1..=3)
            .filter(|v| mask & (1 << (v - 1)) != 0)
            .map(Value::Int)
            .collect();
        assert_eq!(t.intern_set(&items), mask);
    }
    t
}

/// Set ops over elements 1..=3: add `a + 1`, or read set `a` (a subset mask).
fn set_ops(mut ops: Vec<SearchOp>) -> Vec<SearchOp> {
    for o in &mut ops {
        o.spec.a = match o.spec.kind {
            OpKind::Add => ValueId(o.spec.a.0 % 3 + 1),
            _ => ValueId((o.spec.a.0 * 3 + o.spec.b.0) % 8),
        };
    }
    ops
}

/// Queue ops over elements 1..=3 (dequeue of 0 = found empty); a `DequeueHead` is always indeterminate.
fn queue_ops(mut ops: Vec<SearchOp>) -> Vec<SearchOp> {
    for o in &mut ops {
        if o.spec.kind == OpKind::Enqueue {
            o.spec.a = ValueId(o.spec.a.0 % 3 + 1);
        }
        if o.spec.kind == OpKind::DequeueHead {
            o.ret = NEVER;
            o.optional = true;
        }
    }
    ops
}

fn cases() -> u32 {
    std::env::var("CHECKER_ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn search_agrees_with_brute_force(ops in arb_ops(CAS_REGISTER, &[OpKind::Write, OpKind::Cas], 3), start in 0u32..3) {
        agree(&CasRegister, &ops, ValueId(start))?;
    }

    #[test]
    fn search_agrees_with_brute_force_when_ops_may_be_left_out(
        mut ops in arb_ops(CAS_REGISTER, &[OpKind::Write, OpKind::Cas], 3),
        flags in proptest::collection::vec(any::<bool>(), 7),
    ) {
        // Definite ops marked optional, as at a window's start: may be left out, otherwise bound by their return.
        for (o, f) in ops.iter_mut().zip(flags) {
            o.optional |= f;
        }
        agree(&CasRegister, &ops, ValueId::NULL)?;
    }

    #[test]
    fn failing_windows_prove_the_history_fails(ops in arb_ops(CAS_REGISTER, &[OpKind::Write, OpKind::Cas], 3), t1 in 0u64..14, len in 0u64..14) {
        windows_are_sound(&CasRegister, &ops, t1, len)?;
    }

    #[test]
    fn register_agrees_with_brute_force(ops in arb_ops(REGISTER, &[OpKind::Write], 3), start in 0u32..3, t1 in 0u64..14, len in 0u64..14) {
        agree(&Register, &ops, ValueId(start))?;
        windows_are_sound(&Register, &ops, t1, len)?;
    }

    #[test]
    fn set_agrees_with_brute_force(ops in arb_ops(SET, &[OpKind::Add], 3), t1 in 0u64..14, len in 0u64..14) {
        let ops = set_ops(ops);
        let table = set_table();
        let model = SetModel { reads: table.sets() };
        agree(&model, &ops, model.init())?;
        windows_are_sound(&model, &ops, t1, len)?;
    }

    #[test]
    fn mutex_agrees_with_brute_force(ops in arb_ops(MUTEX, MUTEX, 1), held in any::<bool>(), t1 in 0u64..14, len in 0u64..14) {
        agree(&Mutex, &ops, held)?;
        windows_are_sound(&Mutex, &ops, t1, len)?;
    }

    #[test]
    fn unordered_queue_agrees_with_brute_force(ops in arb_ops(UNORDERED_QUEUE, &[OpKind::Enqueue], 4), t1 in 0u64..14, len in 0u64..14) {
        let ops = queue_ops(ops);
        let model = Queue { fifo: false };
        agree(&model, &ops, model.init())?;
        windows_are_sound(&model, &ops, t1, len)?;
    }

    #[test]
    fn fifo_queue_agrees_with_brute_force(ops in arb_ops(FIFO_QUEUE, &[OpKind::Enqueue], 4), t1 in 0u64..14, len in 0u64..14) {
        let ops = queue_ops(ops);
        let model = Queue { fifo: true };
        agree(&model, &ops, model.init())?;
        windows_are_sound(&model, &ops, t1, len)?;
    }
}
