//! Process faults: `kill` (SIGKILL; restarted from its data dir when the fault ends), `terminate` (SIGTERM, then
//! SIGKILL after a grace period; restarted when it ends) and `pause` (SIGSTOP; SIGCONT when it ends). They act on
//! the node's whole process group through the supervisor, as an operator's `kill` would.

use crate::supervisor::{NodeProcesses, ProcessState};
use std::time::Duration;

/// The plan kinds of this family.
pub const KINDS: [&str; 3] = ["kill", "terminate", "pause"];

/// What a process fault does.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessFault {
    /// SIGKILL, restart at the end.
    Kill,
    /// SIGTERM (graceful), restart at the end.
    Terminate,
    /// SIGSTOP, SIGCONT at the end.
    Pause,
}

impl ProcessFault {
    /// Parses one of [`KINDS`]; a process fault takes no parameters.
    pub fn parse(kind: &str, rest: &toml::Table) -> Option<Result<ProcessFault, String>> {
        let fault = match kind {
            "kill" => ProcessFault::Kill,
            "terminate" => ProcessFault::Terminate,
            "pause" => ProcessFault::Pause,
            _ => return None,
        };
        Some(match rest.keys().next() {
            Some(key) => Err(format!(
                "unknown field `{key}`: a {kind} fault takes only the common fields (name, target or same_as, at, every, when or after with wait, duration)"
            )),
            None => Ok(fault),
        })
    }

    /// The plan kind.
    pub fn name(self) -> &'static str {
        match self {
            ProcessFault::Kill => "kill",
            ProcessFault::Terminate => "terminate",
            ProcessFault::Pause => "pause",
        }
    }

    /// Applies the fault to `nodes`; returns the ones it hit. A node already down (or already paused, for a
    /// pause) is left alone: faults on the same node may overlap.
    pub fn start(
        self,
        supervisor: &mut dyn NodeProcesses,
        nodes: &[u64],
        grace: Duration,
    ) -> Result<Vec<u64>, String> {
        let hit: Vec<u64> = nodes
            .iter()
            .copied()
            .filter(|&id| {
                !matches!(
                    (self, supervisor.state(id)),
                    (_, ProcessState::Down | ProcessState::Removed)
                        | (ProcessFault::Pause, ProcessState::Paused)
                )
            })
            .collect();
        for &id in &hit {
            match self {
                ProcessFault::Kill => supervisor.kill(id)?,
                ProcessFault::Terminate => supervisor.terminate(id, grace)?,
                ProcessFault::Pause => supervisor.pause(id)?,
            }
        }
        Ok(hit)
    }

    /// Undoes the fault on the nodes it hit: restart or resume.
    pub fn end(self, supervisor: &mut dyn NodeProcesses, hit: &[u64]) -> Result<(), String> {
        for &id in hit {
            match self {
                ProcessFault::Kill | ProcessFault::Terminate => supervisor.start(id)?,
                ProcessFault::Pause => supervisor.resume(id)?,
            }
        }
        Ok(())
    }
}

/// Brings every node back: resumes the paused, starts the down. Returns the nodes it touched.
pub fn heal(supervisor: &mut dyn NodeProcesses) -> Result<Vec<u64>, String> {
    let mut touched = Vec::new();
    for id in supervisor.ids() {
        match supervisor.state(id) {
            ProcessState::Paused => supervisor.resume(id)?,
            ProcessState::Down => supervisor.start(id)?,
            // A removed node stays down: starting it again would only make it learn its removal once more.
            ProcessState::Running | ProcessState::Removed => continue,
        }
        touched.push(id);
    }
    Ok(touched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_refuse_parameters() {
        let empty = toml::Table::new();
        for kind in KINDS {
            let fault = ProcessFault::parse(kind, &empty).unwrap().unwrap();
            assert_eq!(fault.name(), kind);
        }
        assert!(ProcessFault::parse("partition", &empty).is_none());
        let mut extra = toml::Table::new();
        extra.insert("loss".into(), toml::Value::Float(0.5));
        let err = ProcessFault::parse("kill", &extra).unwrap().unwrap_err();
        assert!(err.contains("unknown field `loss`"), "{err}");
    }
}
