//! A generator of synthetic run folders that follow the run folder contract, so the report's tests can provoke
//! every condition (a slow election, a lost write, a stale read, a fault that failed, a run without status polls)
//! without starting a cluster.
//!
//! The run: 3 nodes, 10 s of history. Warm-up 0–2 s, faults 2–7 s (kill n1, the leader, 3.0–4.0 s; pause n3
//! 5.0–5.5 s), heal at 7 s, recovery to 10 s, then final reads of every key by a fresh process. Clients run on a
//! register per key whose ops take effect at their invocation, so the history is linearizable unless a variant
//! plants a violation.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Synth {
    /// The plan's `[expect]` table (JSON), as the manifest stores it.
    pub expect: serde_json::Value,
    /// Time from the leader's kill to the new leader, ms.
    pub election_ms: u64,
    /// A read mid-run returns a value overwritten before it started (not linearizable).
    pub stale_read: bool,
    /// The final read of a key returns an older value than its last acknowledged write.
    pub lose_write: bool,
    /// Ops between 8 and 9 s (no fault then) fail.
    pub unavailable_after_heal: bool,
    /// One op in `slow_every` outside faults takes this long, ms.
    pub slow_healthy_ms: Option<u64>,
    /// The final read of one key fails.
    pub final_read_fails: bool,
    /// A fault the tool could not inject.
    pub fault_failed: bool,
    /// outcome.json's convergence.agree.
    pub converged: Option<bool>,
    /// Clock offsets in the status polls (n2 +500 ms from 5 to 6 s, with a clock-bump fault).
    pub clock: bool,
    /// Write status.jsonl.
    pub with_status: bool,
    /// Write check.json (by running the checker, as the runner does).
    pub with_check: bool,
    /// Write outcome.json.
    pub with_outcome: bool,
    /// Write events.jsonl.
    pub with_events: bool,
    /// Clients' op spacing, ms (lower: more ops).
    pub step_ms: u64,
    /// Length of the history, s (faults stay where they are; the recovery grows).
    pub seconds: u64,
    /// manifest.json's started_at.
    pub started_at: String,
    /// The plan's name.
    pub plan: String,
}

impl Default for Synth {
    fn default() -> Self {
        Synth {
            expect: serde_json::json!({"min_ok_ops": 100, "final_reads_succeed": true, "no_lost_writes": true, "converged": true}),
            election_ms: 600,
            stale_read: false,
            lose_write: false,
            unavailable_after_heal: false,
            slow_healthy_ms: None,
            final_read_fails: false,
            fault_failed: false,
            converged: Some(true),
            clock: false,
            with_status: true,
            with_check: true,
            with_outcome: true,
            with_events: true,
            step_ms: 10,
            seconds: 10,
            started_at: "2026-12-01T10:00:00Z".into(),
            plan: "synthetic".into(),
        }
    }
}

struct Line {
    time: u64,
    json: serde_json::Value,
}

const KILL: (u64, u64) = (3 * S, 4 * S);
const PAUSE: (u64, u64) = (5 * S, 5 * S + 500 * MS);
const HEAL: u64 = 7 * S;
const CLIENTS: u64 = 3;
const KEYS: u64 = 4;

fn in_fault(t: u64) -> bool {
    (KILL.0..KILL.1).contains(&t) || (PAUSE.0..PAUSE.1).contains(&t)
}

impl Synth {
    /// Writes the run folder into `dir` (created if needed).
    pub fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir.join("nodes")).unwrap();
        let end = self.seconds * S;
        let mut lines: Vec<Line> = Vec::new();
        let note = |time: u64, process: &str, kind: &str, f: &str, value: serde_json::Value| Line {
            time,
            json: serde_json::json!({"process": process, "type": kind, "f": f, "value": value}),
        };
        lines.push(note(
            100_000,
            "runner",
            "info",
            "leader",
            serde_json::json!({"node": 1}),
        ));

        // Faults, as events.jsonl objects (also carried by the history's nemesis notes).
        let mut events: Vec<serde_json::Value> = Vec::new();
        let phase =
            |t: u64, name: &str| serde_json::json!({"event": "phase", "name": name, "time_ns": t});
        events.push(phase(0, "warmup"));
        events.push(phase(2 * S, "faults"));
        let kill_start = serde_json::json!({"event": "start", "id": 0, "kind": "kill", "target": "leader", "nodes": [1], "note": null, "time_ns": KILL.0 + 500_000});
        let kill_end = serde_json::json!({"event": "end", "id": 0, "kind": "kill", "target": "leader", "nodes": [1], "note": null, "time_ns": KILL.1});
        let (kind2, target2, nodes2) = if self.clock {
            ("clock-bump", "n2", 2)
        } else {
            ("pause", "random", 3)
        };
        let f2_start = serde_json::json!({"event": "start", "id": 1, "kind": kind2, "target": target2, "nodes": [nodes2], "note": null, "time_ns": PAUSE.0});
        let f2_end = serde_json::json!({"event": "end", "id": 1, "kind": kind2, "target": target2, "nodes": [nodes2], "note": null, "time_ns": PAUSE.1});
        let heal = serde_json::json!({"event": "heal", "nodes": [], "time_ns": HEAL});
        for (e, f, kind) in [
            (&kill_start, "start-kill".to_owned(), "invoke"),
            (&kill_end, "end-kill".to_owned(), "ok"),
            (&f2_start, format!("start-{kind2}"), "invoke"),
            (&f2_end, format!("end-{kind2}"), "ok"),
            (&heal, "heal".to_owned(), "info"),
        ] {
            lines.push(note(
                e["time_ns"].as_u64().unwrap(),
                "nemesis",
                kind,
                &f,
                e.clone(),
            ));
            events.push(e.clone());
        }
        if self.fault_failed {
            events.push(serde_json::json!({"event": "fault-failed", "id": 2, "kind": "partition", "error": "nft: permission denied", "time_ns": 6 * S}));
        }
        events.push(phase(HEAL, "recovery"));
        events.push(phase(end, "final-reads"));

        // Clients.
        let mut state = [0i64; KEYS as usize];
        let mut previous = [0i64; KEYS as usize];
        let mut busy_until = [0u64; CLIENTS as usize];
        let mut next_value = 1i64;
        let mut ok_ops = 0u64;
        let mut step = 0u64;
        let mut stale_done = false;
        let mut t = 10 * MS;
        while t < end {
            let p = step % CLIENTS;
            let key = (step / CLIENTS) % KEYS;
            step += 1;
            let now = t;
            t += self.step_ms * MS / CLIENTS;
            if busy_until[p as usize] > now {
                continue;
            }
            let k = format!("k{key}");
            let is_write = step % 3 == 0;
            let faulted = in_fault(now);
            let slow = self.slow_healthy_ms.filter(|_| !faulted && step % 10 == 0);
            let (outcome, latency) = if (KILL.0..KILL.0 + 300 * MS).contains(&now) {
                ("info", 1000 * MS)
            } else if faulted {
                if step % 2 == 0 {
                    ("fail", 5 * MS)
                } else {
                    ("ok", 200 * MS)
                }
            } else if self.unavailable_after_heal && (8 * S..9 * S).contains(&now) {
                ("fail", 2 * MS)
            } else if let Some(ms) = slow {
                ("ok", ms * MS)
            } else {
                ("ok", MS)
            };
            busy_until[p as usize] = now + latency + MS;
            let op = |kind: &str, time: u64, value: serde_json::Value| Line {
                time,
                json: serde_json::json!({"process": p, "type": kind, "f": if is_write {"write"} else {"read"}, "key": k, "value": value}),
            };
            if is_write {
                let v = next_value;
                next_value += 1;
                lines.push(op("invoke", now, v.into()));
                if outcome == "ok" {
                    previous[key as usize] = state[key as usize];
                    state[key as usize] = v;
                    ok_ops += 1;
                }
                lines.push(op(outcome, now + latency, v.into()));
            } else {
                lines.push(op("invoke", now, serde_json::Value::Null));
                let mut seen = state[key as usize];
                if self.stale_read
                    && !stale_done
                    && now > 6 * S
                    && previous[key as usize] != seen
                    && seen != 0
                {
                    seen = previous[key as usize];
                    stale_done = true;
                }
                let value = if outcome == "ok" {
                    ok_ops += 1;
                    if seen == 0 {
                        serde_json::Value::Null
                    } else {
                        seen.into()
                    }
                } else {
                    serde_json::Value::Null
                };
                lines.push(op(outcome, now + latency, value));
            }
        }

        // Final reads by a fresh process.
        let fp = 100u64;
        let mut ft = end + 10 * MS;
        let mut final_ok = 0;
        for key in 0..KEYS {
            let k = format!("k{key}");
            let mut v = state[key as usize];
            if self.lose_write && key == 0 {
                v = previous[0];
            }
            let fail = self.final_read_fails && key == 1;
            let value: serde_json::Value = if v == 0 || fail {
                serde_json::Value::Null
            } else {
                v.into()
            };
            lines.push(Line { time: ft, json: serde_json::json!({"process": fp, "type": "invoke", "f": "read", "key": k, "value": null}) });
            lines.push(Line { time: ft + MS, json: serde_json::json!({"process": fp, "type": if fail {"fail"} else {"ok"}, "f": "read", "key": k, "value": value}) });
            if !fail {
                final_ok += 1;
            }
            ft += 2 * MS;
        }
        let stop = ft + MS;
        lines.push(note(stop, "runner", "info", "stop", serde_json::json!({})));
        events.push(phase(stop, "stopped"));
        let _ = ok_ops;

        // history.jsonl: ordered by time (invocations before completions at equal times keep pairs valid).
        lines.sort_by_key(|l| l.time);
        let mut history = String::new();
        let _ = writeln!(
            history,
            "{}",
            serde_json::json!({"schema_version": 1, "format": "chaos-history", "meta": {"plan": self.plan, "seed": 7, "git_commit": "abc123", "model": "cas-register"}})
        );
        for (i, mut l) in lines.into_iter().enumerate() {
            let obj = l.json.as_object_mut().unwrap();
            obj.insert("index".into(), i.into());
            obj.insert("time".into(), l.time.into());
            let _ = writeln!(history, "{}", l.json);
        }
        std::fs::write(dir.join("history.jsonl"), history).unwrap();

        if self.with_events {
            events.sort_by_key(|e| e["time_ns"].as_u64().unwrap());
            let text: String = events.iter().map(|e| format!("{e}\n")).collect();
            std::fs::write(dir.join("events.jsonl"), text).unwrap();
        }

        if self.with_status {
            let mut text = String::new();
            let elected = KILL.0 + self.election_ms * MS;
            let mut poll = 0u64;
            while poll <= stop {
                for node in 1..=3u64 {
                    let t = poll + node * MS;
                    let before = t < KILL.0;
                    let (mut up, mut role, mut term, mut leader) = if before {
                        (
                            true,
                            if node == 1 { "leader" } else { "follower" },
                            1,
                            Some(1),
                        )
                    } else if t < elected {
                        match node {
                            1 => (false, "", 0, None),
                            2 => (true, "candidate", 2, None),
                            _ => (true, "follower", 2, None),
                        }
                    } else {
                        (
                            true,
                            if node == 2 { "leader" } else { "follower" },
                            2,
                            Some(2),
                        )
                    };
                    if node == 1 && (KILL.0..KILL.1).contains(&t) {
                        up = false;
                    }
                    if !self.clock && node == 3 && (PAUSE.0..PAUSE.1).contains(&t) {
                        up = false;
                    }
                    if !up {
                        role = "";
                        term = 0;
                        leader = None;
                    }
                    let offset = if self.clock {
                        serde_json::json!(if node == 2 && (PAUSE.0..PAUSE.1).contains(&t) {
                            500.0
                        } else {
                            0.0
                        })
                    } else {
                        serde_json::Value::Null
                    };
                    let line = serde_json::json!({
                        "time_ns": t, "node": node, "up": up,
                        "role": if up { serde_json::json!(role) } else { serde_json::Value::Null },
                        "term": if up { serde_json::json!(term) } else { serde_json::Value::Null },
                        "leader": leader,
                        "commit_index": if up { serde_json::json!(t / (10 * MS)) } else { serde_json::Value::Null },
                        "applied_index": if up { serde_json::json!(t / (10 * MS)) } else { serde_json::Value::Null },
                        "clock_offset_ms": offset,
                    });
                    let _ = writeln!(text, "{line}");
                }
                poll += 250 * MS;
            }
            std::fs::write(dir.join("status.jsonl"), text).unwrap();
        }

        let plan = serde_json::json!({
            "name": self.plan,
            "seed": 7,
            "duration": "5s",
            "warmup": "2s",
            "recovery": "3s",
            "cluster": {"target": "raft-node", "nodes": 3, "heartbeat_interval": "50ms", "election_timeout_min": "150ms", "election_timeout_max": "300ms"},
            "workload": {"clients": 3, "model": "cas-register", "check_time_limit": "1m"},
            "faults": [{"kind": "kill", "target": "leader", "at": ["1s"], "duration": "1s"}, {"kind": kind2, "target": target2, "at": ["3s"], "duration": "500ms"}],
            "expect": self.expect,
        });
        let manifest = serde_json::json!({
            "schema_version": 1,
            "tool": "chaos",
            "version": "0.1.0",
            "plan_file": format!("configs/{}.toml", self.plan),
            "plan": plan,
            "seed": 7,
            "git_commit": "abc123",
            "started_at": self.started_at,
            "target": "raft-node",
            "node_binary": "/usr/local/bin/raft-node",
            "timeline": [
                {"id": 0, "plan_index": 0, "kind": "kill", "targets": "leader", "start": 1000, "end": 2000},
                {"id": 1, "plan_index": 1, "kind": kind2, "targets": {"nodes": [nodes2]}, "start": 3000, "end": 3500}
            ],
            "replay": format!("chaos run configs/{}.toml --seed 7", self.plan),
        });
        std::fs::write(
            dir.join("manifest.json"),
            serde_json::to_string_pretty(&manifest).unwrap(),
        )
        .unwrap();

        if self.with_check {
            let report = checker::check_file(
                &dir.join("history.jsonl"),
                &checker::CheckOptions::new(checker::ModelKind::CasRegister),
            )
            .expect("the synthetic history checks");
            std::fs::write(
                dir.join("check.json"),
                serde_json::to_string_pretty(&report).unwrap(),
            )
            .unwrap();
        }

        if self.with_outcome {
            let mut tool_errors = Vec::<String>::new();
            if self.fault_failed {
                tool_errors.push("partition #2: nft: permission denied".into());
            }
            let outcome = serde_json::json!({
                "schema_version": 1,
                "seconds": self.seconds as f64 + 1.5,
                "final_reads": {"ok": final_ok, "attempted": KEYS},
                "unexpected_exits": [],
                "tool_errors": tool_errors,
                "convergence": match self.converged {
                    Some(agree) => serde_json::json!({"checked": true, "agree": agree, "detail": if agree {"3 nodes agree up to commit index 1000"} else {"n3 disagrees with n1 at index 812"}}),
                    None => serde_json::json!({"checked": false, "agree": null, "detail": "not compared"}),
                },
                "interrupted": false,
            });
            std::fs::write(
                dir.join("outcome.json"),
                serde_json::to_string_pretty(&outcome).unwrap(),
            )
            .unwrap();
        }
    }
}
