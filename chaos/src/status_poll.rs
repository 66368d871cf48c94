//! The status poller: asks every node for its status about every 250 ms while the run lasts and appends one
//! line per node per poll to `status.jsonl` (role, term, leader, commit and applied index, clock offset; nulls
//! when the node did not answer). Reports draw each node's role and term over time from it.

use crate::targets::{Layout, Target};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the poller asks.
pub const PERIOD: Duration = Duration::from_millis(250);

/// The poller task; aborting it (or dropping the handle and the runtime) stops it. It follows `layout` as it
/// changes (nodes that join at run time).
pub fn start(
    target: Arc<dyn Target>,
    mut layout: tokio::sync::watch::Receiver<Layout>,
    path: &Path,
    started: Instant,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    Ok(tokio::spawn(async move {
        let mut interval = tokio::time::interval(PERIOD);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let layout = layout.borrow_and_update().clone();
            for node in &layout.nodes {
                let answer = target
                    .status(&layout, node.id, crate::cluster::STATUS_TIMEOUT)
                    .await;
                let time_ns = started.elapsed().as_nanos() as u64;
                let line = match answer {
                    Ok(s) => serde_json::json!({
                        "time_ns": time_ns, "node": node.id, "up": true, "role": s.role, "term": s.term,
                        "leader": s.leader, "commit_index": s.commit_index, "applied_index": s.applied_index,
                        "clock_offset_ms": s.clock_offset_ms, "elections_started": s.elections_started,
                    }),
                    Err(_) => serde_json::json!({
                        "time_ns": time_ns, "node": node.id, "up": false, "role": null, "term": null,
                        "leader": null, "commit_index": null, "applied_index": null, "clock_offset_ms": null,
                    }),
                };
                if writeln!(file, "{line}")
                    .and_then(|()| file.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }))
}
