//! The search against a brute-force oracle on small random histories: same verdict from every start state, and
//! every window reported as failing really makes the whole history fail.

use proptest::prelude::*;

use crate::counterexample::tests::{window_fails_for_tests, window_for_tests};
use crate::model::{CasRegister, Model, OpKind, OpSpec, ValueId};
use crate::search::{search, Budget, SearchOp, Verdict, NEVER};

/// Is there an order of all mandatory ops plus some optional ones, respecting real time, legal from `start`?
fn oracle(ops: &[SearchOp], start: ValueId) -> bool {
    let optional: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].optional).collect();
    (0..1u32 << optional.len()).any(|mask| {
        let included: Vec<usize> = (0..ops.len())
            .filter(|&i| {
                !ops[i].optional
                    || mask & (1 << optional.iter().position(|&o| o == i).unwrap_or(0)) != 0
            })
            .collect();
        let mut used = vec![false; ops.len()];
        dfs(ops, &included, &mut used, start, 0)
    })
}

fn dfs(
    ops: &[SearchOp],
    included: &[usize],
    used: &mut [bool],
    state: ValueId,
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
        if let Some(next) = CasRegister.step(&mut (), state, &ops[i].spec) {
            used[i] = true;
            if dfs(ops, included, used, next, placed + 1) {
                used[i] = false;
                return true;
            }
            used[i] = false;
        }
    }
    false
}

fn arb_history() -> impl Strategy<Value = Vec<SearchOp>> {
    (1usize..=7).prop_flat_map(|n| {
        (
            Just(n),
            Just((0..2 * n as u64).collect::<Vec<u64>>()).prop_shuffle(),
            proptest::collection::vec((0u8..4, 0u32..3, 0u32..3, 0u8..5), n),
        )
            .prop_map(|(n, positions, specs)| {
                (0..n)
                    .map(|i| {
                        let (a, b) = (positions[2 * i], positions[2 * i + 1]);
                        let (kind, va, vb, fate) = specs[i];
                        let kind = [
                            OpKind::Read,
                            OpKind::Write,
                            OpKind::Cas,
                            OpKind::CasMismatch,
                        ][kind as usize];
                        // One op in five is indeterminate: no return.
                        let info = fate == 0 && kind != OpKind::Read && kind != OpKind::CasMismatch;
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("CHECKER_ORACLE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(600)
    ))]

    #[test]
    fn search_agrees_with_brute_force(ops in arb_history(), start in 0u32..3) {
        let start = ValueId(start);
        let (v, _) = search(&CasRegister, &mut (), &ops, start, &Budget::default(), None);
        let expected = oracle(&ops, start);
        match v {
            Verdict::Linearizable => prop_assert!(expected, "search says linearizable: {ops:?}"),
            Verdict::Illegal { .. } => prop_assert!(!expected, "search says illegal: {ops:?}"),
            Verdict::Unknown(r) => prop_assert!(false, "unknown ({r:?}) on a tiny history"),
        }
    }

    #[test]
    fn search_agrees_with_brute_force_when_ops_may_be_left_out(
        mut ops in arb_history(),
        flags in proptest::collection::vec(any::<bool>(), 7),
    ) {
        // Definite ops marked optional, as at a window's start: may be left out, otherwise bound by their return.
        for (o, f) in ops.iter_mut().zip(flags) {
            o.optional |= f;
        }
        let (v, _) = search(&CasRegister, &mut (), &ops, ValueId::NULL, &Budget::default(), None);
        let expected = oracle(&ops, ValueId::NULL);
        prop_assert_eq!(matches!(v, Verdict::Linearizable), expected, "{:?}", ops);
    }

    #[test]
    fn failing_windows_prove_the_history_fails(ops in arb_history(), t1 in 0u64..14, len in 0u64..14) {
        let t2 = t1 + len;
        let w = window_for_tests(&ops, Some(t1), t2);
        if window_fails_for_tests(&CasRegister, &w, false) {
            prop_assert!(!oracle(&ops, CasRegister.init()), "window [{t1}, {t2}] fails but the history is fine: {ops:?}");
        }
        let prefix = window_for_tests(&ops, None, t2);
        if window_fails_for_tests(&CasRegister, &prefix, true) {
            prop_assert!(!oracle(&ops, CasRegister.init()), "prefix to {t2} fails but the history is fine: {ops:?}");
        }
    }
}
