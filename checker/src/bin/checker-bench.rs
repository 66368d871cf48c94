//! Benchmark of the checker on generated histories: prints ops checked per second and peak memory.
//!
//! Run in release: `cargo run --release -p checker --bin checker-bench [-- --seed N] [-- --only NAME]`.
//!
//! Whole-process figures (what a user of `chaos check` waits for, peak memory included) come from writing a case's
//! history once and checking it in a fresh process under `/usr/bin/time -v`:
//!
//! ```text
//! checker-bench --only 1M-10k --write /tmp/1m.jsonl
//! /usr/bin/time -v checker-bench --file /tmp/1m.jsonl
//! ```
//!
//! Each history comes from the simulated linearizable register map of `checker::generate` (so the search really
//! searches), is written to a temporary JSON Lines file, and is then checked twice:
//! - `check`: prepare + search from events already in memory (what other checkers time as "check only");
//! - `file`: the `chaos check` path, streaming parse + prepare + search from the file, with the peak resident
//!   memory of that phase alone (VmHWM reset through /proc/self/clear_refs before it).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use checker::generate::{generate, GenerateOptions};
use checker::history::{Header, History};
use checker::{check_file, check_history, CheckOptions, ModelKind, Verdict};

struct Case {
    name: &'static str,
    ops: u64,
    processes: u32,
    keys: u32,
}

const CASES: &[Case] = &[
    Case {
        name: "10k",
        ops: 10_000,
        processes: 5,
        keys: 100,
    },
    Case {
        name: "100k",
        ops: 100_000,
        processes: 20,
        keys: 1_000,
    },
    Case {
        name: "1M",
        ops: 1_000_000,
        processes: 50,
        keys: 1_000,
    },
    // The shape of issue 14's speed target: a million ops over ten thousand keys, fifty processes.
    Case {
        name: "1M-10k",
        ops: 1_000_000,
        processes: 50,
        keys: 10_000,
    },
    // One single register: every op in one search, the hard case for any WGL checker. With 1% info ops (pending
    // for ever, so each may take effect at any later point) and cas mismatches (which any pending write can
    // satisfy), `100k-1key` is the known weak spot: its search grows faster than linearly with the history.
    Case {
        name: "20k-1key",
        ops: 20_000,
        processes: 10,
        keys: 0,
    },
    Case {
        name: "100k-1key",
        ops: 100_000,
        processes: 10,
        keys: 0,
    },
];

/// Peak resident memory of this process in bytes, from /proc/self/status.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak to the current resident size, so that a phase's own peak can be measured.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mb(bytes: Option<u64>) -> String {
    bytes
        .map(|b| format!("{:.0} MB", b as f64 / 1e6))
        .unwrap_or_else(|| "n/a".into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seed = 1u64;
    let mut only: Option<String> = None;
    let mut custom: Option<(u64, u32, u32, u32, u32)> = None;
    let mut write_to: Option<PathBuf> = None;
    let mut check_only: Option<PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--seed", Some(v)) => seed = v.parse().expect("--seed takes an integer"),
            ("--only", Some(v)) => only = Some(v.clone()),
            ("--write", Some(v)) => write_to = Some(PathBuf::from(v)),
            ("--file", Some(v)) => check_only = Some(PathBuf::from(v)),
            ("--custom", Some(v)) => {
                let f: Vec<u64> = v
                    .split(',')
                    .map(|x| x.parse().expect("--custom takes integers"))
                    .collect();
                assert_eq!(
                    f.len(),
                    5,
                    "--custom OPS,PROCESSES,KEYS,INFO_PER_MILLE,CAS_PER_MILLE"
                );
                custom = Some((f[0], f[1] as u32, f[2] as u32, f[3] as u32, f[4] as u32));
                only = Some("custom".into());
            }
            (other, _) => {
                eprintln!(
                    "usage: checker-bench [--seed N] [--only NAME] [--custom OPS,PROCESSES,KEYS,INFO_PER_MILLE,CAS_PER_MILLE]; \
                     unknown argument {other}"
                );
                std::process::exit(2);
            }
        }
        i += 2;
    }
    if let Some(path) = check_only {
        let t = Instant::now();
        let options = CheckOptions::new(ModelKind::CasRegister);
        let report = check_file(&path, &options).expect("the history reads");
        println!(
            "{}: {:?}, {} ops, {} keys, {:.3} s, {} steps, peak {}",
            path.display(),
            report.verdict,
            report.stats.ops,
            report.stats.keys,
            t.elapsed().as_secs_f64(),
            report.steps,
            mb(peak_rss_bytes())
        );
        return;
    }
    let threads = rayon::current_num_threads();
    println!("checker-bench: seed {seed}, {threads} threads, model cas-register, 1% info ops");
    println!(
        "{:<10} {:>9} {:>6} {:>5} {:>9} {:>10} {:>12} {:>10} {:>12} {:>10} {:>13}",
        "case",
        "ops",
        "keys",
        "procs",
        "verdict",
        "check s",
        "check ops/s",
        "file s",
        "file ops/s",
        "file peak",
        "steps"
    );
    let dir = std::env::temp_dir();
    let custom_case = custom.map(|(ops, processes, keys, _, _)| Case {
        name: "custom",
        ops,
        processes,
        keys,
    });
    for case in CASES.iter().chain(custom_case.as_ref()) {
        if only.as_deref().is_some_and(|o| o != case.name) {
            continue;
        }
        let mut opts = GenerateOptions::new(case.ops, case.processes, case.keys, seed);
        if let Some((_, _, _, info, cas)) = custom {
            opts = opts.with_info_per_mille(info).with_mix(500, cas);
        }
        let events = generate(&opts);
        let history = History::new(
            Header::new(serde_json::json!({"seed": seed, "case": case.name})),
            events,
            case.name,
        );
        if let Some(to) = &write_to {
            let file = std::fs::File::create(to).expect("create the history file");
            let mut w = history
                .write_jsonl(std::io::BufWriter::new(file))
                .expect("write the history");
            w.flush().expect("flush the history");
            println!("wrote {}", to.display());
            return;
        }
        let path: PathBuf = dir.join(format!(
            "checker-bench-{}-{}.jsonl",
            case.name,
            std::process::id()
        ));
        {
            let file = std::fs::File::create(&path).expect("create the temporary history file");
            let mut w = history
                .write_jsonl(std::io::BufWriter::new(file))
                .expect("write the history");
            w.flush().expect("flush the history");
        }
        let options = CheckOptions::new(ModelKind::CasRegister);

        let t = Instant::now();
        let report = check_history(&history, &options).expect("a generated history is well formed");
        let check_s = t.elapsed().as_secs_f64();
        drop(history);

        let reset = reset_peak_rss();
        let t = Instant::now();
        let report_file = check_file(&path, &options).expect("the written history reads back");
        let file_s = t.elapsed().as_secs_f64();
        let peak = if reset { peak_rss_bytes() } else { None };
        let _ = std::fs::remove_file(&path);

        assert_eq!(report.verdict, report_file.verdict);
        // A simulated history is linearizable: "not linearizable" would be a checker bug; "unknown" means the
        // search budget ran out, which the table shows.
        assert_ne!(
            report.verdict,
            Verdict::NotLinearizable,
            "{:?}",
            report.keys
        );
        println!(
            "{:<10} {:>9} {:>6} {:>5} {:>9} {:>10.3} {:>12.0} {:>10.3} {:>12.0} {:>10} {:>13}",
            case.name,
            report.stats.ops,
            report.stats.keys,
            case.processes,
            match report.verdict {
                Verdict::Linearizable => "ok",
                Verdict::NotLinearizable => "ILLEGAL",
                Verdict::Unknown => "unknown",
                Verdict::Empty => "empty",
            },
            check_s,
            report.stats.ops as f64 / check_s,
            file_s,
            report.stats.ops as f64 / file_s,
            mb(peak),
            report.steps
        );
    }
    println!("process peak resident memory: {}", mb(peak_rss_bytes()));
}
