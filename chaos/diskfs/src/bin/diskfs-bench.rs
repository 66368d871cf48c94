//! `diskfs-bench [--records N] [--size BYTES]`: what the layer costs the pattern a WAL uses (append a record,
//! fdatasync, repeat), on a plain directory and through the layer mounted over one. Needs root and fuse3.
//! Prints records/s and MB/s for both, and the ratio.

use diskfs::mount::{binary_path, Mount};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

fn appends(dir: &Path, records: usize, size: usize) -> std::io::Result<f64> {
    let record = vec![0x5a; size];
    let mut f = std::fs::File::create(dir.join("wal"))?;
    f.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    let started = Instant::now();
    for _ in 0..records {
        f.write_all(&record)?;
        f.sync_data()?;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut records, mut size) = (2000usize, 4096usize);
    while let Some(flag) = args.next() {
        let value: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match (flag.as_str(), value) {
            ("--records", n) if n > 0 => records = n,
            ("--size", n) if n > 0 => size = n,
            _ => anyhow::bail!("usage: diskfs-bench [--records N] [--size BYTES]"),
        }
    }
    let binary = binary_path()
        .ok_or_else(|| anyhow::anyhow!("chaos-diskfs not found next to this binary"))?;
    let tmp = tempfile::tempdir_in(std::env::current_dir()?)?;
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain)?;
    let direct = appends(&plain, records, size)?;
    let mount = Mount::start(
        &binary,
        &tmp.path().join("data"),
        &tmp.path().join("data.backing"),
        &tmp.path().join("control.sock"),
        1,
    )?;
    let layered = appends(&mount.mount, records, size)?;
    drop(mount);
    let mb = (records * size) as f64 / 1e6;
    for (name, secs) in [("plain dir", direct), ("through the layer", layered)] {
        println!(
            "{name:>18}: {records} appends of {size} B + fdatasync in {secs:.3} s: {:.0} appends/s, {:.1} MB/s",
            records as f64 / secs,
            mb / secs
        );
    }
    println!("layer / plain time: {:.2}x", layered / direct);
    Ok(())
}
