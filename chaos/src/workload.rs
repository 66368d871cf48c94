//! The workload: concurrent clients issuing reads, writes and compare-and-sets over independent keys at the
//! planned rate, each op recorded as invoke then ok, fail or info.
//!
//! - Keys: `keys` keys are in use at once; after `ops_per_key` ops a key is retired and a fresh one takes its
//!   slot, so every key's history stays small enough to check exhaustively.
//! - Values: unique per run (a counter), so every read can be traced to the one write that produced it.
//! - Outcomes: a definite failure is `fail`; anything that may have happened is `info`, after which the client's
//!   process id is retired and a new id takes over (as Jepsen does). A cas that found another value is `fail`
//!   with error "mismatch": an observation, not a non-event.
//! - Retries: inside an op, by the target's client, within `request_timeout`, each attempt bounded by
//!   `attempt_timeout` (see [`client_settings`]).
//! - Reads after an acknowledged write (`read_after_ack`): the writer (same session) or a second client of the
//!   same worker (its own session and process id) reads the key at once. These follow-up reads are not paced
//!   and not counted in `ops_per_key`.
//! - Early checks: when the plan asks to stop early, every op event is also kept per key, and a key's
//!   sub-history is handed over (see [`KeyHistory`]) once the key is retired and its last op has completed.
//!   Per-key histories are independent, so a key that is not linearizable then stays so whatever follows.

use crate::plan::{Mix, WorkloadPlan};
use crate::recorder::Recorder;
use crate::targets::{CasAnswer, ClientSettings, KvClient, Outcome};
use checker::history::{
    Event, EventKind, Key, OpEvent, Operation, ProcessId, Value, ERROR_MISMATCH,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Hands out keys: a fixed number of slots, each retired after `ops_per_key` ops.
#[derive(Debug)]
pub struct KeyPool {
    slots: Vec<(u64, u64)>,
    next_key: u64,
    ops_per_key: u64,
    used: BTreeSet<u64>,
    /// Ops taken and not yet released, per key.
    in_flight: BTreeMap<u64, u64>,
    /// Keys retired from their slot.
    retired: BTreeSet<u64>,
    /// Values recently seen per key (read or written), to pick plausible cas expectations.
    recent: BTreeMap<u64, Vec<i64>>,
}

impl KeyPool {
    /// `keys` slots, `ops_per_key` ops each.
    pub fn new(keys: usize, ops_per_key: u64) -> KeyPool {
        KeyPool {
            slots: (0..keys as u64).map(|k| (k, 0)).collect(),
            next_key: keys as u64,
            ops_per_key,
            used: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            retired: BTreeSet::new(),
            recent: BTreeMap::new(),
        }
    }

    /// The key for the next op; [`KeyPool::release`] it when the op (and any follow-up read) is done.
    pub fn take(&mut self, rng: &mut impl Rng) -> u64 {
        let slot = rng.gen_range(0..self.slots.len());
        let (key, count) = &mut self.slots[slot];
        let chosen = *key;
        *count += 1;
        if *count >= self.ops_per_key {
            *key = self.next_key;
            *count = 0;
            self.next_key += 1;
            self.recent.remove(&chosen);
            self.retired.insert(chosen);
        }
        self.used.insert(chosen);
        *self.in_flight.entry(chosen).or_default() += 1;
        chosen
    }

    /// Ends an op taken on `key`; true when that was the key's last op (retired, nothing in flight): its history
    /// is complete until the final reads.
    pub fn release(&mut self, key: u64) -> bool {
        let Some(n) = self.in_flight.get_mut(&key) else {
            return false;
        };
        *n = n.saturating_sub(1);
        if *n > 0 {
            return false;
        }
        self.in_flight.remove(&key);
        self.retired.contains(&key)
    }

    /// Remembers a value seen for `key`.
    pub fn saw(&mut self, key: u64, value: i64) {
        let values = self.recent.entry(key).or_default();
        values.push(value);
        if values.len() > 4 {
            values.remove(0);
        }
    }

    /// A value recently seen for `key`, if any.
    pub fn recent(&self, key: u64, rng: &mut impl Rng) -> Option<i64> {
        let values = self.recent.get(&key)?;
        (!values.is_empty()).then(|| values[rng.gen_range(0..values.len())])
    }

    /// Every key used so far.
    pub fn used(&self) -> Vec<u64> {
        self.used.iter().copied().collect()
    }
}

/// The name of key number `k` in the store and in the history.
pub fn key_name(k: u64) -> String {
    format!("k{k}")
}

/// A value as stored (a decimal string) back to the history's integer (or string if it is not one).
pub fn parse_value(v: Option<String>) -> Value {
    match v {
        None => Value::Null,
        Some(s) => s.parse::<i64>().map(Value::Int).unwrap_or(Value::Str(s)),
    }
}

/// Everything the clients share.
#[derive(Debug)]
pub struct WorkloadShared {
    /// Keys.
    pub keys: Mutex<KeyPool>,
    /// Next unique value.
    pub next_value: AtomicU64,
    /// Next fresh process id (ids retired after an indeterminate op are never reused).
    pub next_process: AtomicU64,
    /// Set to stop the clients.
    pub stop: AtomicBool,
    /// Per-key logs for early checks (when the plan asks to stop early).
    pub key_log: Option<Mutex<KeyLog>>,
}

/// A retired key's whole sub-history (until the final reads), for an early check.
#[derive(Debug)]
pub struct KeyHistory {
    /// The key's name.
    pub key: String,
    /// Its op events, in the order they were recorded (indexes are the log's own, not history.jsonl's).
    pub events: Vec<Event>,
}

/// Op events per key, handed over when a key is done.
#[derive(Debug)]
pub struct KeyLog {
    events: BTreeMap<u64, Vec<Event>>,
    shipped: BTreeSet<u64>,
    next_index: u64,
    done: tokio::sync::mpsc::UnboundedSender<KeyHistory>,
}

impl KeyLog {
    /// A log that sends each finished key's history to `done`.
    pub fn new(done: tokio::sync::mpsc::UnboundedSender<KeyHistory>) -> KeyLog {
        KeyLog {
            events: BTreeMap::new(),
            shipped: BTreeSet::new(),
            next_index: 0,
            done,
        }
    }

    fn push(&mut self, key: u64, event: OpEvent) {
        if self.shipped.contains(&key) {
            return; // The final reads of a key already checked.
        }
        let mut event = event;
        event.index = self.next_index;
        self.next_index += 1;
        self.events.entry(key).or_default().push(event.into());
    }

    fn ship(&mut self, key: u64) {
        if let Some(events) = self.events.remove(&key) {
            self.shipped.insert(key);
            let _ = self.done.send(KeyHistory {
                key: key_name(key),
                events,
            });
        }
    }
}

impl WorkloadShared {
    /// The shared state of `plan`'s clients; with `early`, each finished key's history is sent there.
    pub fn new(
        plan: &WorkloadPlan,
        early: Option<tokio::sync::mpsc::UnboundedSender<KeyHistory>>,
    ) -> WorkloadShared {
        WorkloadShared {
            keys: Mutex::new(KeyPool::new(plan.keys, plan.ops_per_key)),
            next_value: AtomicU64::new(1),
            next_process: AtomicU64::new(plan.clients as u64),
            stop: AtomicBool::new(false),
            key_log: early.map(|tx| Mutex::new(KeyLog::new(tx))),
        }
    }

    /// Records an op event in the history (and in the key's log, in the same order).
    fn record(
        &self,
        recorder: &Recorder,
        process: u64,
        kind: EventKind,
        key: u64,
        op: Operation,
        error: Option<String>,
    ) {
        let name = key_name(key);
        match &self.key_log {
            None => recorder.op(process, kind, &name, op, error),
            Some(log) => {
                // One lock around both, so the log's order is the history's.
                let mut log = log.lock().expect("key log");
                let mut event = OpEvent::new(
                    0,
                    recorder.now_ns(),
                    ProcessId(process),
                    kind,
                    Some(Key::Str(name.clone())),
                    op.clone(),
                );
                event.error.clone_from(&error);
                recorder.op(process, kind, &name, op, error);
                log.push(key, event);
            }
        }
    }

    /// Ends an op on `key` (see [`KeyPool::release`]); a finished key goes to the early checks.
    fn release(&self, key: u64) {
        let finished = self.keys.lock().expect("key pool").release(key);
        if let (true, Some(log)) = (finished, &self.key_log) {
            log.lock().expect("key log").ship(key);
        }
    }
}

enum Kind {
    Read,
    Write,
    Cas,
}

fn pick(mix: &Mix, rng: &mut impl Rng) -> Kind {
    let total = mix.read + mix.write + mix.cas;
    let x = rng.gen_range(0.0..total);
    if x < mix.read {
        Kind::Read
    } else if x < mix.read + mix.write {
        Kind::Write
    } else {
        Kind::Cas
    }
}

/// The client settings a workload plan asks for, sending from `source_ip` when given.
pub fn client_settings(plan: &WorkloadPlan, source_ip: Option<IpAddr>) -> ClientSettings {
    use crate::plan::ReadsFrom;
    ClientSettings {
        request_timeout: plan.request_timeout.0,
        attempt_timeout: plan.attempt_deadline(),
        spread_reads: plan.reads_from == ReadsFrom::AnyNode,
        read_node: match plan.reads_from {
            ReadsFrom::Node(id) => Some(id),
            ReadsFrom::Leader | ReadsFrom::AnyNode => None,
        },
        source_ip,
    }
}

/// Performs one op for `process`, records its invoke and completion, and returns the completion's kind
/// (`Info` means the process must be retired).
pub async fn perform(
    client: &mut dyn KvClient,
    recorder: &Recorder,
    shared: &WorkloadShared,
    process: u64,
    key: u64,
    kind_read: bool,
    cas_expected: Option<Option<i64>>,
) -> EventKind {
    let name = key_name(key);
    let saw = |value: i64| shared.keys.lock().expect("key pool").saw(key, value);
    let record = |kind, op, error| shared.record(recorder, process, kind, key, op, error);
    let (kind, op, error) = if kind_read {
        let invoke = Operation::Read(Value::Null);
        record(EventKind::Invoke, invoke.clone(), None);
        match client.read(&name).await {
            Outcome::Ok(v) => {
                let value = parse_value(v);
                if let Value::Int(i) = value {
                    saw(i);
                }
                (EventKind::Ok, Operation::Read(value), None)
            }
            Outcome::Fail(e) => (EventKind::Fail, invoke, Some(e)),
            Outcome::Unknown(e) => (EventKind::Info, invoke, Some(e)),
        }
    } else {
        let new = shared.next_value.fetch_add(1, Ordering::Relaxed) as i64;
        match cas_expected {
            None => {
                let op = Operation::Write(Value::Int(new));
                record(EventKind::Invoke, op.clone(), None);
                match client.write(&name, &new.to_string()).await {
                    Outcome::Ok(()) => {
                        saw(new);
                        (EventKind::Ok, op, None)
                    }
                    Outcome::Fail(e) => (EventKind::Fail, op, Some(e)),
                    Outcome::Unknown(e) => (EventKind::Info, op, Some(e)),
                }
            }
            Some(expected) => {
                let op = Operation::Cas {
                    expected: expected.map_or(Value::Null, Value::Int),
                    new: Value::Int(new),
                };
                record(EventKind::Invoke, op.clone(), None);
                let expected_text = expected.map(|e| e.to_string());
                match client
                    .cas(&name, expected_text.as_deref(), &new.to_string())
                    .await
                {
                    Outcome::Ok(CasAnswer { applied: true, .. }) => {
                        saw(new);
                        (EventKind::Ok, op, None)
                    }
                    Outcome::Ok(CasAnswer {
                        applied: false,
                        current,
                    }) => {
                        if let Value::Int(i) = parse_value(current) {
                            saw(i);
                        }
                        (EventKind::Fail, op, Some(ERROR_MISMATCH.to_string()))
                    }
                    Outcome::Fail(e) => (EventKind::Fail, op, Some(e)),
                    Outcome::Unknown(e) => (EventKind::Info, op, Some(e)),
                }
            }
        }
    };
    record(kind, op, error);
    kind
}

/// Runs client number `index` until `shared.stop` is set. `reader` is the second client that reads a key right
/// after its write was acknowledged (`read_after_ack = "other-client"`).
pub async fn client_loop(
    index: usize,
    plan: WorkloadPlan,
    mut client: Box<dyn KvClient>,
    mut reader: Option<Box<dyn KvClient>>,
    recorder: Recorder,
    shared: Arc<WorkloadShared>,
    seed: u64,
) -> Result<(), String> {
    use crate::plan::ReadAfterAck;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut process = index as u64;
    let fresh = || shared.next_process.fetch_add(1, Ordering::Relaxed);
    let mut reader_process = reader.as_ref().map(|_| fresh());
    // Pacing: each client issues ops at rate/clients on average, with jittered gaps so clients do not align.
    let mean_gap = Duration::from_secs_f64(plan.clients as f64 / plan.rate);
    let mut next = tokio::time::Instant::now() + mean_gap.mul_f64(rng.gen_range(0.0..1.0));
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        next += mean_gap.mul_f64(rng.gen_range(0.5..1.5));
        let now = tokio::time::Instant::now();
        if next < now {
            next = now; // Behind schedule (slow answers): do not burst to catch up.
        }
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let (key, cas_expected, read) = {
            let mut keys = shared.keys.lock().expect("key pool");
            let key = keys.take(&mut rng);
            match pick(&plan.mix, &mut rng) {
                Kind::Read => (key, None, true),
                Kind::Write => (key, None, false),
                Kind::Cas => {
                    // Mostly a value recently seen (likely to match), sometimes absent (likely a mismatch).
                    let expected = if rng.gen_bool(0.8) {
                        keys.recent(key, &mut rng)
                    } else {
                        None
                    };
                    (key, Some(expected), false)
                }
            }
        };
        let completion = perform(
            &mut *client,
            &recorder,
            &shared,
            process,
            key,
            read,
            cas_expected,
        )
        .await;
        if completion == EventKind::Info {
            process = fresh();
        }
        // An acknowledged write or applied cas (a mismatch is `fail`): read the key back at once.
        if !read && completion == EventKind::Ok {
            match (plan.read_after_ack, reader.as_mut(), reader_process) {
                (ReadAfterAck::SameClient, _, _) => {
                    let c =
                        perform(&mut *client, &recorder, &shared, process, key, true, None).await;
                    if c == EventKind::Info {
                        process = fresh();
                    }
                }
                (ReadAfterAck::OtherClient, Some(r), Some(p)) => {
                    let c = perform(&mut **r, &recorder, &shared, p, key, true, None).await;
                    if c == EventKind::Info {
                        reader_process = Some(fresh());
                    }
                }
                _ => {}
            }
        }
        shared.release(key);
    }
    client.close().await;
    if let Some(r) = reader {
        r.close().await;
    }
    Ok(())
}

/// The client settings of the final reads: a longer deadline, since the cluster had time to recover.
pub fn final_read_settings(plan: &WorkloadPlan) -> ClientSettings {
    let request_timeout = plan.request_timeout.0.max(Duration::from_secs(5));
    ClientSettings {
        request_timeout,
        attempt_timeout: plan.attempt_deadline().min(request_timeout),
        ..client_settings(plan, None)
    }
}

/// After the run: one read of every key ever used (with `client`, see [`final_read_settings`]), so the history
/// ends with the final state of each. Returns (ok, not ok).
pub async fn final_reads(
    mut client: Box<dyn KvClient>,
    recorder: &Recorder,
    shared: &WorkloadShared,
) -> (u64, u64) {
    let keys = shared.keys.lock().expect("key pool").used();
    let mut process = shared.next_process.fetch_add(1, Ordering::Relaxed);
    let (mut ok, mut not_ok) = (0, 0);
    for key in keys {
        match perform(&mut *client, recorder, shared, process, key, true, None).await {
            EventKind::Ok => ok += 1,
            EventKind::Info => {
                not_ok += 1;
                process = shared.next_process.fetch_add(1, Ordering::Relaxed);
            }
            _ => not_ok += 1,
        }
    }
    client.close().await;
    (ok, not_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_retired_after_their_ops() {
        let mut pool = KeyPool::new(2, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        for _ in 0..60 {
            *counts.entry(pool.take(&mut rng)).or_default() += 1;
        }
        assert!(counts.values().all(|&c| c <= 3), "{counts:?}");
        assert_eq!(counts.values().sum::<u64>(), 60);
        assert_eq!(pool.used().len(), counts.len());
    }

    #[test]
    fn stored_values_map_back_to_history_values() {
        assert_eq!(parse_value(None), Value::Null);
        assert_eq!(parse_value(Some("42".into())), Value::Int(42));
        assert_eq!(parse_value(Some("x".into())), Value::Str("x".into()));
    }
}
