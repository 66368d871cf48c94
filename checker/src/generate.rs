//! Synthetic histories for tests and benchmarks, recorded from a simulated linearizable register map.
//!
//! Client processes invoke ops on random keys; each op takes effect atomically at a random moment between its
//! invoke and its completion (its linearization point), so every history produced is linearizable, and the
//! interleaving is real concurrency that makes the checker search. Some ops time out: the client records `info`
//! and moves on under a new process id (as Jepsen does), while the request may still take effect later, or never.
//! Pure: the same options and seed give the same history.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::history::{Event, EventKind, Key, OpEvent, Operation, ProcessId, Value, ERROR_MISMATCH};

/// What to generate.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct GenerateOptions {
    /// Client ops (invocations) to generate.
    pub ops: u64,
    /// Concurrent client processes.
    pub processes: u32,
    /// Keys; 0 means one single register without keys.
    pub keys: u32,
    /// Per mille of ops that end `info` (a timeout): they take effect later, or never.
    pub info_per_mille: u32,
    /// Per mille of ops that are reads; the rest are split between writes and cas.
    pub read_per_mille: u32,
    /// Per mille of ops that are cas (0 for a plain register).
    pub cas_per_mille: u32,
    /// The RNG seed.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            ops: 1000,
            processes: 10,
            keys: 10,
            info_per_mille: 10,
            read_per_mille: 500,
            cas_per_mille: 250,
            seed: 0,
        }
    }
}

impl GenerateOptions {
    /// Options for `ops` ops over `keys` keys with `processes` processes, other settings default.
    pub fn new(ops: u64, processes: u32, keys: u32, seed: u64) -> GenerateOptions {
        GenerateOptions {
            ops,
            processes,
            keys,
            seed,
            ..GenerateOptions::default()
        }
    }

    /// The same options with another share of info ops.
    pub fn with_info_per_mille(mut self, v: u32) -> GenerateOptions {
        self.info_per_mille = v;
        self
    }

    /// The same options with other shares of reads and cas.
    pub fn with_mix(mut self, read_per_mille: u32, cas_per_mille: u32) -> GenerateOptions {
        self.read_per_mille = read_per_mille;
        self.cas_per_mille = cas_per_mille;
        self
    }
}

#[derive(Clone)]
struct Pending {
    key: usize,
    op: Operation,
    /// Set at the linearization point: the value read, or whether the cas applied.
    result: Option<Result<Value, ()>>,
}

struct Client {
    process: u64,
    pending: Option<Pending>,
}

struct Sim {
    rng: ChaCha8Rng,
    time_ns: u64,
    index: u64,
    events: Vec<Event>,
    state: Vec<Value>,
    keyed: bool,
}

impl Sim {
    fn emit(
        &mut self,
        process: u64,
        kind: EventKind,
        key: usize,
        op: Operation,
        error: Option<&str>,
    ) {
        self.time_ns += self.rng.gen_range(100..5_000);
        let key = self.keyed.then_some(Key::Int(key as i64));
        let mut e = OpEvent::new(self.index, self.time_ns, ProcessId(process), kind, key, op);
        e.error = error.map(str::to_owned);
        self.events.push(Event::Op(e));
        self.index += 1;
    }

    /// The linearization point: the op takes effect on the true state.
    fn apply(&mut self, p: &Pending) -> Result<Value, ()> {
        let cur = &mut self.state[p.key];
        match &p.op {
            Operation::Read(_) => Ok(cur.clone()),
            Operation::Write(v) => {
                *cur = v.clone();
                Ok(Value::Null)
            }
            Operation::Cas { expected, new } => {
                if cur == expected {
                    *cur = new.clone();
                    Ok(Value::Null)
                } else {
                    Err(())
                }
            }
            other => unreachable!("the register simulation makes no {other:?}"),
        }
    }
}

/// Generates a linearizable history.
pub fn generate(opts: &GenerateOptions) -> Vec<Event> {
    let processes = opts.processes.max(1) as usize;
    let keys = opts.keys.max(1) as usize;
    let mut sim = Sim {
        rng: ChaCha8Rng::seed_from_u64(opts.seed),
        time_ns: 0,
        index: 0,
        events: Vec::with_capacity(opts.ops as usize * 2),
        state: vec![Value::Null; keys],
        keyed: opts.keys > 0,
    };
    let mut clients: Vec<Client> = (0..processes)
        .map(|p| Client {
            process: p as u64,
            pending: None,
        })
        .collect();
    // Timed-out requests still in flight: they may take effect later, or never.
    let mut zombies: Vec<Pending> = Vec::new();
    let mut invoked = 0u64;
    let mut value_next = 1i64;
    loop {
        let busy = clients.iter().any(|c| c.pending.is_some());
        if invoked >= opts.ops && !busy {
            break;
        }
        if !zombies.is_empty() && sim.rng.gen_ratio(1, 8) {
            let z = zombies.swap_remove(sim.rng.gen_range(0..zombies.len()));
            if sim.rng.gen_bool(0.5) {
                let _ = sim.apply(&z);
            }
        }
        let c = sim.rng.gen_range(0..processes);
        match clients[c].pending.take() {
            None => {
                if invoked >= opts.ops {
                    continue;
                }
                invoked += 1;
                let key = sim.rng.gen_range(0..keys);
                let roll = sim.rng.gen_range(0..1000);
                let op = if roll < opts.read_per_mille {
                    Operation::Read(Value::Null)
                } else if roll < opts.read_per_mille + opts.cas_per_mille {
                    // Mostly the current value, so that many cas succeed; sometimes a stale one.
                    let expected = if sim.rng.gen_bool(0.6) {
                        sim.state[key].clone()
                    } else {
                        Value::Int(sim.rng.gen_range(0..value_next))
                    };
                    let new = Value::Int(value_next);
                    value_next += 1;
                    Operation::Cas { expected, new }
                } else {
                    let v = Value::Int(value_next);
                    value_next += 1;
                    Operation::Write(v)
                };
                sim.emit(clients[c].process, EventKind::Invoke, key, op.clone(), None);
                clients[c].pending = Some(Pending {
                    key,
                    op,
                    result: None,
                });
            }
            Some(mut p) if p.result.is_none() => {
                if sim.rng.gen_range(0..1000) < opts.info_per_mille {
                    // Timeout before the effect: the client gives up; the request lives on as a zombie.
                    sim.emit(
                        clients[c].process,
                        EventKind::Info,
                        p.key,
                        p.op.clone(),
                        Some("timeout"),
                    );
                    clients[c].process += processes as u64;
                    zombies.push(p);
                } else {
                    p.result = Some(sim.apply(&p));
                    clients[c].pending = Some(p);
                }
            }
            Some(p) => {
                let process = clients[c].process;
                let result = p.result.clone().unwrap_or(Err(()));
                if sim.rng.gen_range(0..1000) < opts.info_per_mille {
                    // Timeout after the effect: the op happened but the client cannot know.
                    sim.emit(process, EventKind::Info, p.key, p.op, Some("timeout"));
                    clients[c].process += processes as u64;
                    continue;
                }
                match (&p.op, result) {
                    (Operation::Read(_), Ok(v)) => {
                        sim.emit(process, EventKind::Ok, p.key, Operation::Read(v), None)
                    }
                    (_, Ok(_)) => sim.emit(process, EventKind::Ok, p.key, p.op, None),
                    (_, Err(())) => {
                        sim.emit(process, EventKind::Fail, p.key, p.op, Some(ERROR_MISMATCH))
                    }
                }
            }
        }
    }
    sim.events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_well_formed() {
        let opts = GenerateOptions::new(500, 7, 3, 42);
        let a = generate(&opts);
        assert_eq!(a, generate(&opts));
        let invokes = a
            .iter()
            .filter(|e| matches!(e, Event::Op(o) if o.kind == EventKind::Invoke))
            .count();
        assert_eq!(invokes, 500);
        for (i, e) in a.iter().enumerate() {
            assert_eq!(e.index(), i as u64);
        }
    }
}
