//! A tiny language for scripted scenarios, in the spirit of etcd-raft's interaction tests: a test is a text
//! of commands with expectations inline, run against nodes whose messages move only when the script says so.
//!
//! ```text
//! # §5.2: a node that times out campaigns, wins a majority and leads.
//! cluster 3
//! campaign 1
//! stabilize
//! expect role 1 leader
//! expect term 2 2
//! ```
//!
//! Commands (ids are node numbers):
//! - `cluster N [pre-vote=off] [check-quorum=off] [max-entries=K] [lease] [ranked] [mutation=NAME]` – N voters.
//! - `campaign ID` – time passes beyond the election timeout and only ID notices.
//! - `elapse MS` – time passes and every live node ticks (heartbeats, timeouts, check-quorum).
//! - `run MS` – like elapse, delivering every message after each 10 ms step (a live cluster).
//! - `tick ID MS` – time passes (exactly MS, in steps of at most 10 ms) and only ID ticks.
//! - `heartbeat ID` – time passes by one heartbeat interval and only ID ticks.
//! - `stabilize` – deliver messages until none are left (partitions and drops apply).
//! - `deliver [FROM TO]` – deliver the messages queued now (optionally only on one link), once.
//! - `drop FROM TO` – lose every message queued on one link.
//! - `partition 1 2 | 3` – split the network into groups; `isolate ID`; `heal`.
//! - `crash ID` – lose everything not on disk; `restart ID` – start from the disk.
//! - `propose ID VALUE`, `propose ID VALUE -> error` – a client command (and whether it is refused).
//! - `read ID RID` – ask for a linearizable read named RID.
//! - `transfer ID TARGET`, `add-learner ID NEW`, `promote ID LEARNER`, `remove ID OLD` (`-> error` allowed).
//! - `compact ID` – snapshot the applied prefix.
//! - `expect role ID ROLE` · `expect term ID N` · `expect leader ID N|none` · `expect commit ID N` ·
//!   `expect applied ID N` · `expect log ID T T T…` (terms of held entries) · `expect voters ID N N…` ·
//!   `expect read RID served|failed|pending` · `expect violation PROPERTY` · `expect no-violation`.
//!
//! The invariants of the randomized simulation are checked after every step; a violation is remembered (the
//! script goes on) so a script can show that a deliberately broken node is caught.

use super::invariants::{Invariants, Violation};
use crate::config::{Config, ReadMode};
use crate::membership::{ConfChange, Membership};
use crate::message::{Entry, Message, Snapshot};
use crate::node::{HardState, Persisted, RawNode};
use crate::types::{Instant, LogIndex, NodeId, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A failed expectation or a malformed line, with its line number.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ScriptError {
    /// 1-based line number in the script.
    pub line: usize,
    /// The line itself.
    pub text: String,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}\n  {}", self.line, self.text, self.message)
    }
}

#[derive(Default)]
struct Disk {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

struct ScriptNode {
    cfg: Config,
    raw: Option<RawNode>,
    disk: Disk,
}

/// The scripted world: nodes, the queue of messages in flight, a clock, the invariant record.
struct Script {
    nodes: BTreeMap<NodeId, ScriptNode>,
    queue: Vec<Message>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    now: Instant,
    inv: Invariants,
    violations: Vec<Violation>,
    reads: BTreeMap<u64, ReadOutcome>,
    waiting_reads: Vec<(NodeId, u64, LogIndex)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReadOutcome {
    Pending,
    Served,
    Failed,
}

/// Runs a whole script; stops at the first failed expectation.
pub fn run_script(text: &str) -> Result<(), ScriptError> {
    let mut script = Script {
        nodes: BTreeMap::new(),
        queue: Vec::new(),
        blocked: BTreeSet::new(),
        now: Instant(0),
        inv: Invariants::default(),
        violations: Vec::new(),
        reads: BTreeMap::new(),
        waiting_reads: Vec::new(),
    };
    for (n, raw_line) in text.lines().enumerate() {
        let line = raw_line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        script.execute(line).map_err(|message| ScriptError {
            line: n + 1,
            text: raw_line.trim().to_string(),
            message,
        })?;
    }
    Ok(())
}

fn id(word: &str) -> Result<NodeId, String> {
    word.parse::<u64>()
        .map(NodeId)
        .map_err(|_| format!("expected a node id, got {word:?}"))
}

fn num(word: &str) -> Result<u64, String> {
    word.parse::<u64>()
        .map_err(|_| format!("expected a number, got {word:?}"))
}

impl Script {
    fn execute(&mut self, line: &str) -> Result<(), String> {
        let (line, wants_error) = match line.split_once("->") {
            Some((cmd, outcome)) if outcome.trim() == "error" => (cmd.trim(), true),
            Some((_, outcome)) => {
                return Err(format!(
                    "unknown outcome {:?} (only `-> error`)",
                    outcome.trim()
                ))
            }
            None => (line, false),
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |i: usize| {
            words
                .get(i)
                .copied()
                .ok_or_else(|| format!("{} needs more arguments", words[0]))
        };
        let refused: Result<(), String> = match words[0] {
            "cluster" => {
                self.cluster(num(arg(1)?)? as usize, &words[2..])?;
                Ok(())
            }
            "campaign" => {
                let node = id(arg(1)?)?;
                let max = self.node(node)?.cfg.election_timeout_max_ms;
                self.now = self.now.add_ms(max);
                self.with_raw(node, |raw, now| raw.tick(now))?;
                Ok(())
            }
            "heartbeat" => {
                let node = id(arg(1)?)?;
                let hb = self.node(node)?.cfg.heartbeat_interval_ms;
                self.now = self.now.add_ms(hb);
                self.with_raw(node, |raw, now| raw.tick(now))?;
                Ok(())
            }
            "tick" => {
                let node = id(arg(1)?)?;
                let ms = num(arg(2)?)?;
                // 10 ms steps, the last one shorter, so MS is exact.
                let mut left = ms;
                while left > 0 {
                    let step = left.min(10);
                    left -= step;
                    self.now = self.now.add_ms(step);
                    self.with_raw(node, |raw, now| raw.tick(now))?;
                }
                Ok(())
            }
            "run" => {
                // Time passes in 10 ms steps; every live node ticks and every message is delivered each step.
                let ms = num(arg(1)?)?;
                for _ in 0..ms.div_ceil(10) {
                    self.now = self.now.add_ms(10);
                    for node in self.live() {
                        self.with_raw(node, |raw, now| raw.tick(now))?;
                    }
                    for _ in 0..1_000 {
                        if self.queue.is_empty() {
                            break;
                        }
                        self.deliver(None)?;
                    }
                }
                Ok(())
            }
            "elapse" => {
                let ms = num(arg(1)?)?;
                for _ in 0..ms.div_ceil(10) {
                    self.now = self.now.add_ms(10);
                    for node in self.live() {
                        self.with_raw(node, |raw, now| raw.tick(now))?;
                    }
                }
                Ok(())
            }
            "stabilize" => {
                for _ in 0..10_000 {
                    if self.queue.is_empty() {
                        return Ok(());
                    }
                    self.deliver(None)?;
                }
                return Err("messages still flowing after 10000 rounds".into());
            }
            "deliver" => {
                let link = if words.len() >= 3 {
                    Some((id(arg(1)?)?, id(arg(2)?)?))
                } else {
                    None
                };
                self.deliver(link)?;
                Ok(())
            }
            "drop" => {
                let (from, to) = (id(arg(1)?)?, id(arg(2)?)?);
                self.queue.retain(|m| (m.from, m.to) != (from, to));
                Ok(())
            }
            "partition" => {
                let groups: Vec<Vec<NodeId>> = line["partition".len()..]
                    .split('|')
                    .map(|g| g.split_whitespace().map(id).collect::<Result<Vec<_>, _>>())
                    .collect::<Result<_, _>>()?;
                self.blocked.clear();
                for (i, a) in groups.iter().enumerate() {
                    for (j, b) in groups.iter().enumerate() {
                        if i != j {
                            for &x in a {
                                for &y in b {
                                    self.blocked.insert((x, y));
                                }
                            }
                        }
                    }
                }
                Ok(())
            }
            "isolate" => {
                let node = id(arg(1)?)?;
                for other in self.nodes.keys().copied().collect::<Vec<_>>() {
                    if other != node {
                        self.blocked.insert((node, other));
                        self.blocked.insert((other, node));
                    }
                }
                Ok(())
            }
            "heal" => {
                self.blocked.clear();
                Ok(())
            }
            "crash" => {
                let node = id(arg(1)?)?;
                self.node_mut(node)?.raw = None;
                self.queue.retain(|m| m.to != node);
                Ok(())
            }
            "restart" => {
                let node = id(arg(1)?)?;
                let now = self.now;
                let n = self.node_mut(node)?;
                let persisted = Persisted {
                    hard_state: n.disk.hard_state,
                    snapshot: n.disk.snapshot.clone(),
                    entries: n.disk.entries.clone(),
                };
                n.raw = Some(
                    RawNode::restart(n.cfg.clone(), persisted, now).map_err(|e| e.to_string())?,
                );
                self.process(node)?;
                Ok(())
            }
            "propose" => {
                let node = id(arg(1)?)?;
                let value = arg(2)?.as_bytes().to_vec();
                self.with_raw(node, |raw, now| {
                    raw.propose(value, now)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })?
            }
            "read" => {
                let node = id(arg(1)?)?;
                let rid = num(arg(2)?)?;
                self.reads.insert(rid, ReadOutcome::Pending);
                self.with_raw(node, |raw, now| raw.read_index(rid, now))?;
                Ok(())
            }
            "transfer" => {
                let (node, target) = (id(arg(1)?)?, id(arg(2)?)?);
                self.with_raw(node, |raw, now| {
                    raw.transfer_leadership(target, now)
                        .map_err(|e| e.to_string())
                })?
            }
            "add-learner" | "promote" | "remove" => {
                let (node, other) = (id(arg(1)?)?, id(arg(2)?)?);
                let change = match words[0] {
                    "add-learner" => ConfChange::AddLearner(other),
                    "promote" => ConfChange::PromoteLearner(other),
                    _ => ConfChange::Remove(other),
                };
                let result = self.with_raw(node, |raw, now| {
                    raw.propose_conf_change(change, now)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })?;
                if result.is_ok() && words[0] == "add-learner" && !self.nodes.contains_key(&other) {
                    let mut cfg = self.node(node)?.cfg.clone();
                    cfg.id = other;
                    cfg.rng_seed = other.0;
                    let raw = RawNode::join(cfg.clone(), self.now).map_err(|e| e.to_string())?;
                    self.nodes.insert(
                        other,
                        ScriptNode {
                            cfg,
                            raw: Some(raw),
                            disk: Disk::default(),
                        },
                    );
                }
                result
            }
            "compact" => {
                let node = id(arg(1)?)?;
                let n = self.node_mut(node)?;
                let raw = n.raw.as_mut().ok_or("node is down")?;
                let applied = raw.log().applied();
                let meta = raw
                    .compact(applied, Vec::new())
                    .map_err(|e| e.to_string())?;
                n.disk.snapshot = Some(Snapshot {
                    meta: meta.clone(),
                    data: Arc::new(Vec::new()),
                });
                n.disk.entries.retain(|e| e.index > meta.index);
                Ok(())
            }
            "expect" => {
                self.expect(&words[1..])?;
                Ok(())
            }
            other => return Err(format!("unknown command {other:?}")),
        };
        match (refused, wants_error) {
            (Ok(()), false) | (Err(_), true) => Ok(()),
            (Ok(()), true) => Err("expected an error, but it succeeded".into()),
            (Err(e), false) => Err(format!("refused: {e}")),
        }
    }

    fn cluster(&mut self, n: usize, options: &[&str]) -> Result<(), String> {
        let membership = Membership::with_voters((1..=n as u64).map(NodeId));
        for i in 1..=n as u64 {
            let mut cfg = Config::new(NodeId(i));
            for option in options {
                match *option {
                    "pre-vote=off" => cfg.pre_vote = false,
                    "check-quorum=off" => cfg.check_quorum = false,
                    "ranked" => {
                        cfg.election_timeout_policy = crate::config::ElectionTimeoutPolicy::Ranked
                    }
                    "lease" => {
                        cfg.read_mode = ReadMode::Lease {
                            drift_bound_ppm: 50_000,
                        }
                    }
                    o if o.starts_with("max-entries=") => {
                        cfg.max_entries_per_message = num(&o[12..])? as usize
                    }
                    o if o.starts_with("mutation=") => {
                        let bug = crate::bugs::Bug::parse(&o["mutation=".len()..])
                            .map_err(|e| e.to_string())?;
                        if !cfg.mutations.enable(bug) {
                            return Err(format!(
                                "{bug} is not a bug of the core (it lives in raft-node)"
                            ));
                        }
                    }
                    o => return Err(format!("unknown cluster option {o:?}")),
                }
            }
            let raw = RawNode::bootstrap(cfg.clone(), membership.clone(), self.now)
                .map_err(|e| e.to_string())?;
            self.nodes.insert(
                NodeId(i),
                ScriptNode {
                    cfg,
                    raw: Some(raw),
                    disk: Disk::default(),
                },
            );
        }
        for node in self.live() {
            self.process(node)?;
        }
        // Start from a quiet moment: every node's election timer is far away.
        Ok(())
    }

    fn live(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.raw.is_some())
            .map(|(&id, _)| id)
            .collect()
    }

    fn node(&self, node: NodeId) -> Result<&ScriptNode, String> {
        self.nodes
            .get(&node)
            .ok_or_else(|| format!("no node {node}"))
    }

    fn node_mut(&mut self, node: NodeId) -> Result<&mut ScriptNode, String> {
        self.nodes
            .get_mut(&node)
            .ok_or_else(|| format!("no node {node}"))
    }

    fn raw(&self, node: NodeId) -> Result<&RawNode, String> {
        self.node(node)?
            .raw
            .as_ref()
            .ok_or_else(|| format!("{node} is down"))
    }

    fn with_raw<T>(
        &mut self,
        node: NodeId,
        f: impl FnOnce(&mut RawNode, Instant) -> T,
    ) -> Result<T, String> {
        let now = self.now;
        let raw = self
            .node_mut(node)?
            .raw
            .as_mut()
            .ok_or_else(|| format!("{node} is down"))?;
        let out = f(raw, now);
        self.process(node)?;
        Ok(out)
    }

    fn deliver(&mut self, link: Option<(NodeId, NodeId)>) -> Result<(), String> {
        let (now_batch, rest): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| link.is_none_or(|l| l == (m.from, m.to)));
        self.queue = rest;
        for msg in now_batch {
            if self.blocked.contains(&(msg.from, msg.to)) {
                continue;
            }
            let to = msg.to;
            if self.nodes.get(&to).is_some_and(|n| n.raw.is_some()) {
                self.with_raw(to, |raw, now| raw.step(msg, now))?;
            }
        }
        Ok(())
    }

    fn process(&mut self, node: NodeId) -> Result<(), String> {
        loop {
            let n = self.nodes.get_mut(&node).expect("exists");
            let Some(raw) = n.raw.as_mut() else {
                return Ok(());
            };
            let term = raw.term();
            if raw.role() == Role::Leader {
                if let Err(v) = self.inv.leader_seen(term, node) {
                    self.violations.push(v);
                }
            }
            let n = self.nodes.get_mut(&node).expect("exists");
            let raw = n.raw.as_mut().expect("up");
            let commit = raw.log().commit();
            let log = raw.log();
            if let Err(v) = self
                .inv
                .commit_seen(node, log.snapshot_index().next(), commit, |i| log.term(i))
            {
                self.violations.push(v);
            }
            if !raw.has_ready() {
                return Ok(());
            }
            let ready = raw.ready();
            if let Some(snapshot) = &ready.snapshot {
                n.disk.snapshot = Some(snapshot.clone());
                n.disk.entries.clear();
            }
            if let Some(first) = ready.entries.first() {
                n.disk.entries.retain(|e| e.index < first.index);
                n.disk.entries.extend(ready.entries.iter().cloned());
            }
            if let Some(hs) = ready.hard_state {
                n.disk.hard_state = hs;
            }
            self.queue.extend(ready.messages.iter().cloned());
            self.queue.extend(ready.persisted_messages.iter().cloned());
            for entry in &ready.committed_entries {
                if let Err(v) = self.inv.applied(node, entry) {
                    self.violations.push(v);
                }
            }
            for r in &ready.read_states {
                self.waiting_reads.push((node, r.id, r.index));
            }
            for r in &ready.failed_reads {
                self.reads.insert(*r, ReadOutcome::Failed);
            }
            let n = self.nodes.get_mut(&node).expect("exists");
            let raw = n.raw.as_mut().expect("up");
            raw.advance(ready);
            let applied = raw.log().applied();
            let reads = &mut self.reads;
            self.waiting_reads.retain(|&(at, rid, index)| {
                if at == node && index <= applied {
                    reads.insert(rid, ReadOutcome::Served);
                    false
                } else {
                    true
                }
            });
        }
    }

    fn expect(&mut self, words: &[&str]) -> Result<(), String> {
        let arg = |i: usize| {
            words
                .get(i)
                .copied()
                .ok_or_else(|| "expect needs more arguments".to_string())
        };
        let check = |what: &str, got: String, want: String| {
            if got == want {
                Ok(())
            } else {
                Err(format!("{what}: expected {want}, got {got}"))
            }
        };
        match arg(0)? {
            "role" => {
                let raw = self.raw(id(arg(1)?)?)?;
                check("role", raw.role().to_string(), arg(2)?.to_string())
            }
            "term" => check(
                "term",
                self.raw(id(arg(1)?)?)?.term().0.to_string(),
                arg(2)?.to_string(),
            ),
            "leader" => {
                let got = self
                    .raw(id(arg(1)?)?)?
                    .leader()
                    .map_or("none".to_string(), |l| l.0.to_string());
                check("leader", got, arg(2)?.to_string())
            }
            "commit" => check(
                "commit",
                self.raw(id(arg(1)?)?)?.log().commit().0.to_string(),
                arg(2)?.to_string(),
            ),
            "applied" => check(
                "applied",
                self.raw(id(arg(1)?)?)?.log().applied().0.to_string(),
                arg(2)?.to_string(),
            ),
            "log" => {
                let raw = self.raw(id(arg(1)?)?)?;
                let log = raw.log();
                let got: Vec<String> = log
                    .slice(log.first_index(), log.last_index())
                    .iter()
                    .map(|e| e.term.0.to_string())
                    .collect();
                check("log terms", got.join(" "), words[2..].join(" "))
            }
            "voters" => {
                let raw = self.raw(id(arg(1)?)?)?;
                let got: Vec<String> = raw
                    .membership()
                    .voters
                    .iter()
                    .map(|v| v.0.to_string())
                    .collect();
                check("voters", got.join(" "), words[2..].join(" "))
            }
            "read" => {
                let rid = num(arg(1)?)?;
                let got = match self.reads.get(&rid) {
                    Some(ReadOutcome::Served) => "served",
                    Some(ReadOutcome::Failed) => "failed",
                    Some(ReadOutcome::Pending) => "pending",
                    None => "unknown",
                };
                check("read", got.to_string(), arg(2)?.to_string())
            }
            "violation" => {
                let want = words[1..].join(" ");
                if self.violations.iter().any(|v| v.property == want) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected a {want:?} violation, saw {:?}",
                        self.violations
                    ))
                }
            }
            "no-violation" => {
                if self.violations.is_empty() {
                    Ok(())
                } else {
                    Err(format!("unexpected violations: {:?}", self.violations))
                }
            }
            other => Err(format!("unknown expectation {other:?}")),
        }
    }
}
