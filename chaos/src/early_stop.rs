//! Stopping a run early (`stop_early = true` in a plan): as soon as a violation is certain, the runner skips the
//! rest of the warm-up, fault and recovery phases, heals every fault, stops the clients and the nodes cleanly,
//! and checks the whole history as usual, so every file of the run folder is written and the verdict comes from
//! the same checks as a full run's.
//!
//! Certain means: a node exited on its own (the supervisor saw it), or a retired key's complete sub-history is
//! not linearizable. Keys are independent and a retired key gets no further op but its final read, which
//! starts after every other op of the key ended, so its verdict cannot change. Anything else — a key the
//! checker could not decide within its budget, a checker that failed or panicked — is no reason to stop and is
//! never a violation: the end-of-run check decides as always.

use crate::workload::KeyHistory;
use checker::history::{Header, History};
use checker::{Budget, CheckOptions, ModelKind, Verdict};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Most time the early check of one key may search before it gives up on that key (the end-of-run check
/// still checks it).
pub const KEY_CHECK_TIME_MAX: Duration = Duration::from_secs(10);

/// Why a run stopped early.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Violation {
    /// The violation's stable label: `not-linearizable` or `node-crashed`.
    pub label: String,
    /// What was seen, for people.
    pub reason: String,
    /// When it was certain, ns since the run started (the history's clock).
    pub time_ns: u64,
}

/// The run's early-stop switch: set once, by the first violation seen; off unless the plan asks.
#[derive(Debug)]
pub struct EarlyStop {
    enabled: bool,
    first: watch::Sender<Option<Violation>>,
}

impl EarlyStop {
    /// A switch; `enabled` is the plan's `stop_early`.
    pub fn new(enabled: bool) -> Arc<EarlyStop> {
        Arc::new(EarlyStop {
            enabled,
            first: watch::Sender::new(None),
        })
    }

    /// Whether the plan asked to stop early.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records `v` if it is the first violation (and stopping early is on).
    pub fn trigger(&self, v: Violation) {
        if self.enabled {
            self.first.send_if_modified(|cur| {
                let first = cur.is_none();
                if first {
                    *cur = Some(v);
                }
                first
            });
        }
    }

    /// The violation that stopped the run, if any.
    pub fn stopped(&self) -> Option<Violation> {
        self.first.borrow().clone()
    }

    /// Resolves with the first violation; never, when stopping early is off.
    pub async fn wait(&self) -> Violation {
        if !self.enabled {
            return std::future::pending().await;
        }
        let mut rx = self.first.subscribe();
        let first = rx.wait_for(Option::is_some).await.map(|v| v.clone());
        match first {
            Ok(Some(v)) => v,
            // The sender lives as long as self, and wait_for returned only on Some.
            _ => std::future::pending().await,
        }
    }
}

/// Checks one key's whole sub-history; `Some((reason, time_ns))` when it is certainly not linearizable, with the
/// completion time of the op no linearization could reach (the first prefix of the key's history that is not
/// linearizable ends there).
pub fn check_key(key: &KeyHistory, model: ModelKind) -> Option<(String, u64)> {
    let history = History::new(
        Header::default(),
        key.events.clone(),
        &format!("key {}", key.key),
    );
    let defaults = Budget::default();
    let budget = Budget::new(
        defaults.steps_max_per_key,
        defaults.cache_bytes_max_per_key,
        Some(Instant::now() + KEY_CHECK_TIME_MAX),
    );
    let options = CheckOptions::new(model).with_budget(budget);
    let report = checker::check_history(&history, &options).ok()?;
    if report.verdict != Verdict::NotLinearizable {
        return None;
    }
    let c = report.counterexamples().next()?;
    let time_ns = c
        .failed_op
        .complete_time_ns
        .unwrap_or(c.failed_op.invoke_time_ns);
    Some((
        format!(
            "key {} is not linearizable: no linearization reaches p{} {}",
            key.key, c.failed_op.process, c.failed_op.op
        ),
        time_ns,
    ))
}

/// Checks each finished key as it arrives, one at a time off the runtime's thread, and triggers `early` on the
/// first one that is not linearizable. Ends when every sender is gone.
pub fn spawn_key_checks(
    model: ModelKind,
    early: Arc<EarlyStop>,
    mut keys: mpsc::UnboundedReceiver<KeyHistory>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(key) = keys.recv().await {
            if early.stopped().is_some() {
                continue;
            }
            // A panic or an error of the checker is no violation: the end-of-run check reports it.
            if let Ok(Some((reason, time_ns))) =
                tokio::task::spawn_blocking(move || check_key(&key, model)).await
            {
                early.trigger(Violation {
                    label: "not-linearizable".into(),
                    reason,
                    time_ns,
                });
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::{EventKind, Key, OpEvent, Operation, ProcessId, Value};

    fn op(i: u64, p: u64, kind: EventKind, o: Operation) -> checker::history::Event {
        OpEvent::new(
            i,
            i * 1000,
            ProcessId(p),
            kind,
            Some(Key::Str("k1".into())),
            o,
        )
        .into()
    }

    #[test]
    fn a_stale_read_is_certain_and_dated_at_its_completion_a_good_key_is_not() {
        let w = Operation::Write(Value::Int(1));
        let bad = KeyHistory {
            key: "k1".into(),
            events: vec![
                op(0, 0, EventKind::Invoke, w.clone()),
                op(1, 0, EventKind::Ok, w.clone()),
                op(2, 1, EventKind::Invoke, Operation::Read(Value::Null)),
                op(3, 1, EventKind::Ok, Operation::Read(Value::Null)),
            ],
        };
        let (reason, t) = check_key(&bad, ModelKind::CasRegister).expect("violation");
        assert!(reason.contains("k1"), "{reason}");
        assert_eq!(t, 3000);
        let good = KeyHistory {
            key: "k1".into(),
            events: vec![
                op(0, 0, EventKind::Invoke, w.clone()),
                op(1, 0, EventKind::Ok, w),
                op(2, 1, EventKind::Invoke, Operation::Read(Value::Null)),
                op(3, 1, EventKind::Ok, Operation::Read(Value::Int(1))),
            ],
        };
        assert_eq!(check_key(&good, ModelKind::CasRegister), None);
    }

    #[tokio::test]
    async fn only_the_first_violation_counts_and_nothing_stops_when_off() {
        let on = EarlyStop::new(true);
        let v = |label: &str| Violation {
            label: label.into(),
            reason: String::new(),
            time_ns: 1,
        };
        on.trigger(v("node-crashed"));
        on.trigger(v("not-linearizable"));
        assert_eq!(on.wait().await.label, "node-crashed");
        let off = EarlyStop::new(false);
        off.trigger(v("node-crashed"));
        assert_eq!(off.stopped(), None);
        let waited = tokio::time::timeout(Duration::from_millis(20), off.wait()).await;
        assert!(waited.is_err());
    }
}
