//! WAL throughput on the current disk: appends/s and fsyncs/s for batches of 1, 16 and 256 entries with
//! 256-byte payloads, `FsyncPolicy::Always`. Each batch is what one Raft Ready would produce: `append`, a
//! commit-index update, one `sync`.
//!
//! Run: `cargo bench -p raft-storage --bench wal-bench` (release profile). The data goes to a temporary
//! directory under Cargo's target tmpdir, or under the directory given as the first argument after `--`.
//! Each batch size runs for about `RUN_SECONDS` or `BATCHES_MAX` batches, whichever comes first.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use raft_storage::{Entry, HardState, Storage, StorageOptions};

const PAYLOAD_BYTES: usize = 256;
const BATCH_SIZES: [usize; 3] = [1, 16, 256];
const RUN_SECONDS: u64 = 3;
const BATCHES_MAX: usize = 50_000;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes flags such as `--bench`; the first argument that is not a flag is the directory.
    let base = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
    println!(
        "wal-bench: {PAYLOAD_BYTES}-byte payloads, fsync always, up to {RUN_SECONDS} s or {BATCHES_MAX} batches each, in {}",
        base.display()
    );
    println!(
        "{:>6} {:>9} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "batch", "batches", "entries", "appends/s", "fsyncs/s", "MiB/s", "p50 us", "p99 us"
    );
    for batch_size in BATCH_SIZES {
        let dir = tempfile::tempdir_in(&base).context("create a temporary directory")?;
        let (mut storage, _) = Storage::open(dir.path(), StorageOptions::default())?;
        storage.set_hard_state(&HardState {
            term: 1,
            voted_for: Some(1),
            commit: 0,
        })?;
        storage.sync()?;
        let stats_before = storage.stats();
        let payload = vec![0xab_u8; PAYLOAD_BYTES];
        let mut latencies_us = Vec::with_capacity(BATCHES_MAX);
        let mut next_index = 1u64;
        let start = Instant::now();
        while latencies_us.len() < BATCHES_MAX && start.elapsed() < Duration::from_secs(RUN_SECONDS)
        {
            let batch_start = Instant::now();
            let batch: Vec<Entry> = (0..batch_size as u64)
                .map(|k| Entry::new(next_index + k, 1, payload.clone()))
                .collect();
            storage.append(&batch)?;
            next_index += batch_size as u64;
            storage.set_hard_state(&HardState {
                term: 1,
                voted_for: Some(1),
                commit: next_index - 1,
            })?;
            storage.sync()?;
            latencies_us.push(batch_start.elapsed().as_micros() as u64);
        }
        let elapsed_s = start.elapsed().as_secs_f64();
        let stats = storage.stats();
        let entries = next_index - 1;
        let fsyncs = stats.wal_fsyncs - stats_before.wal_fsyncs;
        let mib =
            (stats.wal_bytes_written - stats_before.wal_bytes_written) as f64 / (1024.0 * 1024.0);
        latencies_us.sort_unstable();
        let percentile = |p: f64| latencies_us[((latencies_us.len() - 1) as f64 * p) as usize];
        println!(
            "{:>6} {:>9} {:>10} {:>12.0} {:>10.0} {:>10.1} {:>10} {:>10}",
            batch_size,
            latencies_us.len(),
            entries,
            entries as f64 / elapsed_s,
            fsyncs as f64 / elapsed_s,
            mib / elapsed_s,
            percentile(0.5),
            percentile(0.99),
        );
    }
    Ok(())
}
