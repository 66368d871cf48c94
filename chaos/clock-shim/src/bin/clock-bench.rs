//! clock-bench: what the clock shim costs per clock read.
//!
//! `clock-bench [ITERATIONS]` runs itself four times, without the preload, with it but no control file (pure
//! pass-through), with a control file at real time, and with one at rate 2 and +1 h, and prints nanoseconds per
//! call of each clock function. Elapsed time is measured with raw `syscall(SYS_clock_gettime)`, which the shim does
//! not change. Build with `--release` for figures worth quoting.

use std::process::{Command, ExitCode};
use std::time::{Instant, SystemTime};

const CHILD_FLAG: &str = "--child";
const ITERATIONS_DEFAULT: u64 = 5_000_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (child, iterations) = match args.as_slice() {
        [] => (false, Ok(ITERATIONS_DEFAULT)),
        [n] => (false, n.parse()),
        [flag, n] if flag == CHILD_FLAG => (true, n.parse()),
        _ => {
            eprintln!("usage: clock-bench [ITERATIONS]");
            return ExitCode::from(2);
        }
    };
    let Ok(iterations) = iterations else {
        eprintln!("clock-bench: ITERATIONS must be a positive number");
        return ExitCode::from(2);
    };
    if child {
        measure(iterations.max(1));
        return ExitCode::SUCCESS;
    }
    match compare(iterations.max(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("clock-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the measurements under each configuration and prints them side by side.
fn compare(iterations: u64) -> Result<(), String> {
    let library = clock_shim::library_path()
        .ok_or("libclock_shim_preload.so not found: cargo build -p clock-shim")?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let control_path =
        std::env::temp_dir().join(format!("clock-bench-{}.clock", std::process::id()));
    let control = clock_shim::Control::create(&control_path).map_err(|e| e.to_string())?;
    let run = |env: &[(&str, std::ffi::OsString)]| -> Result<Vec<(String, f64)>, String> {
        let output = Command::new(&exe)
            .args([CHILD_FLAG, &iterations.to_string()])
            .env_remove(clock_shim::PRELOAD_ENV)
            .env_remove(clock_shim::CONTROL_ENV)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !output.status.success() {
            return Err(format!(
                "child failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once(' '))
            .filter_map(|(name, ns)| Some((name.to_string(), ns.parse().ok()?)))
            .collect())
    };
    let preload_only = [(clock_shim::PRELOAD_ENV, library.as_os_str().to_owned())];
    let columns = [
        ("no preload", run(&[])?),
        ("preload, no control", run(&preload_only)?),
        ("control: real time", run(&control.env(&library))?),
        ("control: x2, +1h", {
            control.set_rate(2.0).map_err(|e| e.to_string())?;
            control.bump_ns(3_600_000_000_000);
            run(&control.env(&library))?
        }),
    ];
    drop(control);
    let _ = std::fs::remove_file(&control_path);
    println!(
        "ns per call, {iterations} calls each ({})",
        library.display()
    );
    print!("{:<28}", "");
    for (name, _) in &columns {
        print!("{name:>22}");
    }
    println!();
    for (row, (name, _)) in columns[0].1.iter().enumerate() {
        print!("{name:<28}");
        for (_, figures) in &columns {
            print!("{:>22.1}", figures.get(row).map_or(f64::NAN, |(_, ns)| *ns));
        }
        println!();
    }
    Ok(())
}

/// Real CLOCK_MONOTONIC through a raw system call (never faked).
fn real_ns() -> i64 {
    // SAFETY: all-zero is a valid timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: SYS_clock_gettime with a valid pointer.
    unsafe {
        libc::syscall(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC,
            &mut ts as *mut libc::timespec,
        )
    };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// One clock read to time.
type Call = Box<dyn Fn()>;

/// Prints `name ns_per_call` for each clock function.
fn measure(iterations: u64) {
    fn clock_gettime(clock: libc::clockid_t) -> impl Fn() {
        move || {
            // SAFETY: all-zero is a valid timespec; a valid pointer.
            let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
            unsafe { libc::clock_gettime(clock, &mut ts) };
            std::hint::black_box(ts);
        }
    }
    let cases: [(&str, Call); 6] = [
        (
            "clock_gettime(MONOTONIC)",
            Box::new(clock_gettime(libc::CLOCK_MONOTONIC)),
        ),
        (
            "clock_gettime(REALTIME)",
            Box::new(clock_gettime(libc::CLOCK_REALTIME)),
        ),
        (
            "clock_gettime(BOOTTIME)",
            Box::new(clock_gettime(libc::CLOCK_BOOTTIME)),
        ),
        (
            "Instant::now()",
            Box::new(|| _ = std::hint::black_box(Instant::now())),
        ),
        (
            "SystemTime::now()",
            Box::new(|| _ = std::hint::black_box(SystemTime::now())),
        ),
        (
            "gettimeofday",
            Box::new(|| {
                let mut tv = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                };
                // SAFETY: a valid timeval and no time zone.
                unsafe { libc::gettimeofday(&mut tv, std::ptr::null_mut()) };
                std::hint::black_box(tv);
            }),
        ),
    ];
    for (name, call) in cases {
        // A short warm-up, then the best of three runs (the machine is shared).
        for _ in 0..iterations / 10 {
            call();
        }
        let best_ns = (0..3)
            .map(|_| {
                let start = real_ns();
                for _ in 0..iterations {
                    call();
                }
                (real_ns() - start) as f64 / iterations as f64
            })
            .fold(f64::INFINITY, f64::min);
        println!("{name} {best_ns:.2}");
    }
}
