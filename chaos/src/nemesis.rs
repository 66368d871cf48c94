//! Nemeses: faults injected from outside the nodes, as an operator would (signals for now; network and clock
//! faults slot in as further kinds). Each fault is started, later undone, and both are recorded in
//! `events.jsonl` (with start, end and targets) and as notes in the history.

use crate::plan::FaultKind;
use crate::recorder::Recorder;
use crate::schedule::{ScheduledFault, Targets};
use crate::supervisor::{ProcessState, Supervisor};
use checker::history::EventKind;
use raft_transport::ClientEndpoint;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A fault in force.
#[derive(Clone, Debug)]
pub struct ActiveFault {
    /// The scheduled fault.
    pub fault: ScheduledFault,
    /// The nodes it actually hit (after resolving "leader", skipping nodes already down).
    pub nodes: Vec<u64>,
}

/// Appends fault events to `events.jsonl`.
#[derive(Debug)]
pub struct EventLog {
    file: File,
}

impl EventLog {
    /// Creates the file.
    pub fn create(path: &Path) -> std::io::Result<EventLog> {
        Ok(EventLog {
            file: File::create(path)?,
        })
    }

    /// Appends one event (and flushes: the file must survive a crash of the tool).
    pub fn write(&mut self, value: serde_json::Value) {
        let mut line = value.to_string();
        line.push('\n');
        if let Err(e) = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
        {
            tracing::warn!(error = %e, "cannot write events.jsonl");
        }
    }
}

/// Finds the current leader: the node that claims leadership in the highest term.
pub async fn find_leader(endpoint: &ClientEndpoint, addrs: &[(u64, SocketAddr)]) -> Option<u64> {
    let mut best: Option<(u64, u64)> = None;
    for &(id, addr) in addrs {
        if let Ok(s) =
            raft_node::client::node_status(endpoint, addr, None, Duration::from_millis(300)).await
        {
            if s.raft.role == raft::Role::Leader && best.is_none_or(|(t, _)| s.raft.term.0 > t) {
                best = Some((s.raft.term.0, id));
            }
        }
    }
    best.map(|(_, id)| id)
}

/// Applies and undoes faults.
#[derive(Debug)]
pub struct Nemesis {
    /// The node processes.
    pub supervisor: Supervisor,
    /// Where events go.
    pub events: EventLog,
    /// Grace period for SIGTERM before SIGKILL.
    pub terminate_grace: Duration,
}

impl Nemesis {
    fn record(
        &mut self,
        recorder: &Recorder,
        phase: &str,
        fault: &ScheduledFault,
        nodes: &[u64],
        note: Option<&str>,
    ) {
        let value = serde_json::json!({
            "time_ns": recorder.now_ns(),
            "event": phase,
            "id": fault.id,
            "kind": fault.kind.name(),
            "target": fault.targets.to_string(),
            "nodes": nodes,
            "note": note,
        });
        self.events.write(value.clone());
        let kind = if phase == "start" {
            EventKind::Invoke
        } else {
            EventKind::Ok
        };
        recorder.note(
            "nemesis",
            kind,
            &format!("{phase}-{}", fault.kind.name()),
            value,
        );
    }

    /// Starts `fault`; `leader` is the current leader when the fault targets it.
    pub fn start(
        &mut self,
        fault: &ScheduledFault,
        leader: Option<u64>,
        recorder: &Recorder,
    ) -> ActiveFault {
        let wanted: Vec<u64> = match &fault.targets {
            Targets::Nodes(ids) => ids.clone(),
            Targets::Leader => leader.into_iter().collect(),
        };
        // A node that is already down (or paused, for a pause) is left alone: faults on the same node may overlap.
        let nodes: Vec<u64> = wanted
            .into_iter()
            .filter(|&id| {
                !matches!(
                    (fault.kind, self.supervisor.state(id)),
                    (_, ProcessState::Down) | (FaultKind::Pause, ProcessState::Paused)
                )
            })
            .collect();
        for &id in &nodes {
            match fault.kind {
                FaultKind::Kill => self.supervisor.kill(id),
                FaultKind::Terminate => {
                    self.supervisor.terminate(id, self.terminate_grace);
                }
                FaultKind::Pause => self.supervisor.pause(id),
            }
        }
        let note = match (&fault.targets, nodes.is_empty()) {
            (Targets::Leader, true) if leader.is_none() => Some("no leader to target"),
            (_, true) => Some("every target was already down"),
            _ => None,
        };
        self.record(recorder, "start", fault, &nodes, note);
        ActiveFault {
            fault: fault.clone(),
            nodes,
        }
    }

    /// Undoes `active`: restarts killed or terminated nodes, resumes paused ones.
    pub fn end(&mut self, active: &ActiveFault, recorder: &Recorder) {
        for &id in &active.nodes {
            let result = match active.fault.kind {
                FaultKind::Kill | FaultKind::Terminate => self.supervisor.start(id),
                FaultKind::Pause => {
                    self.supervisor.resume(id);
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::error!(node = id, error = %e, "cannot undo a fault");
            }
        }
        self.record(recorder, "end", &active.fault, &active.nodes, None);
    }

    /// Brings every node back: resume the paused, start the down. Returns the nodes it touched.
    pub fn heal_all(&mut self, recorder: &Recorder) -> Vec<u64> {
        let mut touched = Vec::new();
        for id in self.supervisor.ids() {
            match self.supervisor.state(id) {
                ProcessState::Paused => {
                    self.supervisor.resume(id);
                    touched.push(id);
                }
                ProcessState::Down => {
                    if let Err(e) = self.supervisor.start(id) {
                        tracing::error!(node = id, error = %e, "cannot restart a node while healing");
                    }
                    touched.push(id);
                }
                ProcessState::Running => {}
            }
        }
        let value =
            serde_json::json!({"time_ns": recorder.now_ns(), "event": "heal", "nodes": touched});
        self.events.write(value.clone());
        recorder.note("nemesis", EventKind::Info, "heal", value);
        touched
    }
}
