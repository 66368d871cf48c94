//! Property tests on simulated histories: a correct concurrent register always gives a linearizable history; the
//! same history with one read changed to a value never written, or to a value overwritten before the read began,
//! never does, and the counterexample names that read.
//!
//! Case counts are small by default; set CHECKER_PROPTEST_CASES for a longer run.

use checker::generate::{generate, GenerateOptions};
use checker::history::{Event, EventKind, Header, History, Key, Operation, ProcessId, Value};
use checker::{check_history, CheckOptions, ModelKind, Verdict};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("CHECKER_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

fn arb_options() -> impl Strategy<Value = GenerateOptions> {
    (
        20u64..400,
        2u32..13,
        0u32..5,
        0u32..60,
        0u32..400,
        any::<u64>(),
    )
        .prop_map(|(ops, processes, keys, info, cas, seed)| {
            GenerateOptions::new(ops, processes, keys, seed)
                .with_info_per_mille(info)
                .with_mix(450, cas)
        })
}

fn history(events: Vec<Event>) -> History {
    History::new(Header::default(), events, "generated")
}

fn check(events: Vec<Event>) -> checker::CheckReport {
    check_history(&history(events), &CheckOptions::new(ModelKind::CasRegister))
        .expect("generated histories are well formed")
}

/// A definite op of the generated history: its key, events and the value it leaves (for writes and ok cas).
#[derive(Debug, Clone)]
struct Done {
    key: Option<Key>,
    process: ProcessId,
    invoke: usize,
    complete: usize,
    wrote: Option<Value>,
    is_read: bool,
}

fn definite_ops(events: &[Event]) -> Vec<Done> {
    let mut open: std::collections::HashMap<ProcessId, usize> = Default::default();
    let mut done = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let Event::Op(o) = e else { continue };
        match o.kind {
            EventKind::Invoke => {
                open.insert(o.process, i);
            }
            EventKind::Ok => {
                let invoke = open.remove(&o.process).expect("paired");
                let wrote = match &o.op {
                    Operation::Write(v) => Some(v.clone()),
                    Operation::Cas { new, .. } => Some(new.clone()),
                    _ => None,
                };
                let is_read = matches!(o.op, Operation::Read(_));
                done.push(Done {
                    key: o.key.clone(),
                    process: o.process,
                    invoke,
                    complete: i,
                    wrote,
                    is_read,
                });
            }
            _ => {
                open.remove(&o.process);
            }
        }
    }
    done
}

fn set_read_value(events: &mut [Event], at: usize, v: Value) {
    if let Event::Op(o) = &mut events[at] {
        o.op = Operation::Read(v);
    }
}

fn failed_invoke_line(report: &checker::CheckReport) -> u64 {
    report
        .counterexamples()
        .next()
        .expect("a counterexample")
        .failed_op
        .invoke_line
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn simulated_histories_are_linearizable(opts in arb_options()) {
        let report = check(generate(&opts));
        prop_assert_eq!(report.verdict, Verdict::Linearizable, "{:?}: {:#?}", opts, report.keys);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_caught(opts in arb_options(), pick in any::<prop::sample::Index>()) {
        let mut events = generate(&opts);
        let reads: Vec<Done> = definite_ops(&events).into_iter().filter(|d| d.is_read).collect();
        prop_assume!(!reads.is_empty());
        let r = pick.get(&reads).clone();
        // The generator writes only positive values.
        set_read_value(&mut events, r.complete, Value::Int(-7));
        let report = check(events);
        prop_assert_eq!(report.verdict, Verdict::NotLinearizable);
        // History::new puts event i on line i + 2.
        prop_assert_eq!(failed_invoke_line(&report), r.invoke as u64 + 2);
    }

    #[test]
    fn a_read_of_an_overwritten_value_is_caught(opts in arb_options(), pick in any::<prop::sample::Index>()) {
        let mut events = generate(&opts);
        let done = definite_ops(&events);
        // A read R, a definite write W2 completed before R began, and a definite write W1 completed before W2
        // began: W1's value was overwritten before R, with no overlap, and (values being unique) never again.
        let mut candidates = Vec::new();
        for r in done.iter().filter(|d| d.is_read) {
            let w2 = done.iter().filter(|w| w.key == r.key && w.wrote.is_some() && w.complete < r.invoke).max_by_key(|w| w.invoke);
            let Some(w2) = w2 else { continue };
            let w1 = done.iter().find(|w| {
                w.key == r.key && w.complete < w2.invoke && w.wrote.is_some() && w.wrote != w2.wrote
            });
            if let Some(w1) = w1 {
                candidates.push((r.clone(), w1.wrote.clone().expect("a write")));
            }
        }
        prop_assume!(!candidates.is_empty());
        let (r, stale) = pick.get(&candidates).clone();
        set_read_value(&mut events, r.complete, stale);
        let report = check(events);
        prop_assert_eq!(report.verdict, Verdict::NotLinearizable, "read by {:?}", r.process);
        prop_assert_eq!(failed_invoke_line(&report), r.invoke as u64 + 2);
    }

    #[test]
    fn histories_round_trip_through_json_lines(opts in arb_options()) {
        let h = history(generate(&opts));
        let bytes = h.write_jsonl(Vec::new()).expect("in-memory write");
        let back = History::read_jsonl(&bytes[..], "generated").expect("reads back");
        prop_assert_eq!(back, h);
    }
}
