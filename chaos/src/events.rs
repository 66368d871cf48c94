//! `events.jsonl`: what the runner did and saw, one JSON object per line with `time_ns` on the history's
//! clock: phase starts, fault starts and ends (with the nodes they hit), heals, faults that could not be
//! injected, nodes that exited on their own. Each line is flushed as it is written, so the file survives a
//! crash of the tool.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Appends events to `events.jsonl`.
#[derive(Debug)]
pub struct EventLog {
    file: Mutex<File>,
}

impl EventLog {
    /// Creates the file.
    pub fn create(path: &Path) -> std::io::Result<EventLog> {
        Ok(EventLog {
            file: Mutex::new(File::create(path)?),
        })
    }

    /// Appends one event and flushes.
    pub fn write(&self, value: &serde_json::Value) {
        let mut line = value.to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
            tracing::warn!(error = %e, "cannot write events.jsonl");
        }
    }
}
