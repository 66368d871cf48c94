//! The preload library seen from outside: `clock-probe` runs with `LD_PRELOAD` and a control file that the test
//! changes, and reports what its clocks and waits did, measured against raw system calls the shim cannot touch.
//!
//! No assertion depends on how fast this machine is: clock values are checked against real readings taken just
//! before and after them (exact brackets), rates as ratios with wide margins, and waits against lower bounds
//! (the kernel never ends a sleep early) or against hang guards tens of times the expected duration.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use clock_shim::{library_path, Control, CONTROL_ENV, PRELOAD_ENV};

const PROBE: &str = env!("CARGO_BIN_EXE_clock-probe");
/// A probe still running after this long is hung (every probe here expects to finish in about 2 s at most).
const HANG_LIMIT: Duration = Duration::from_secs(60);
const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
const HOUR: i64 = 3_600 * S;

/// Tests that measure rates or durations run one at a time: a probe spinning on both cores would skew another
/// test's ratios.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn library() -> PathBuf {
    library_path()
        .expect("libclock_shim_preload.so is built with clock-shim (cargo build -p clock-shim)")
}

/// How the probe is started.
enum Env<'a> {
    /// No preload at all.
    Plain,
    /// The preload library, but no control variable.
    PreloadOnly,
    /// The preload library and a control variable naming a file that does not exist.
    MissingFile,
    /// The preload library under this control file.
    Control(&'a Control),
}

fn spawn(args: &[&str], env: &Env) -> Child {
    let mut command = Command::new(PROBE);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.env_remove(CONTROL_ENV).env_remove(PRELOAD_ENV);
    match env {
        Env::Plain => {}
        Env::PreloadOnly => {
            command.env(PRELOAD_ENV, library());
        }
        Env::MissingFile => {
            command
                .env(PRELOAD_ENV, library())
                .env(CONTROL_ENV, "/nonexistent/clock-shim-test.clock");
        }
        Env::Control(control) => {
            command.envs(control.env(&library()));
        }
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {PROBE}: {e}"))
}

/// What a probe printed.
struct Report {
    values: HashMap<String, String>,
    stdout: String,
    stderr: String,
}

impl Report {
    fn get(&self, key: &str) -> i64 {
        let value = self
            .values
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in:\n{}{}", self.stdout, self.stderr));
        value
            .parse()
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"))
    }
}

fn finish(mut child: Child, what: &str) -> Report {
    let started = Instant::now();
    while child.try_wait().expect("wait for the probe").is_none() {
        if started.elapsed() > HANG_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the probe hung for {HANG_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().expect("probe output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{what}: probe failed ({}):\n{stdout}{stderr}",
        output.status
    );
    let values = stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Report {
        values,
        stdout,
        stderr,
    }
}

fn run(args: &[&str], env: &Env) -> Report {
    finish(spawn(args, env), &args.join(" "))
}

fn new_control(dir: &tempfile::TempDir, name: &str) -> Control {
    Control::create(dir.path().join(name)).expect("create a control file")
}

/// Checks every clock the probe read: wall-type clocks `wall_shift_ns` and monotonic-type ones `mono_shift_ns`
/// away from the real readings bracketing them.
fn check_clocks(report: &Report, wall_shift_ns: i64, mono_shift_ns: i64, what: &str) {
    let bracket =
        |key: &str, real: &str, shift_ns: i64, slack_below_ns: i64| {
            let value = report.get(key);
            let low = report.get(&format!("real_{real}_before_ns")) + shift_ns - slack_below_ns;
            let high = report.get(&format!("real_{real}_after_ns")) + shift_ns;
            assert!(
            (low..=high).contains(&value),
            "{what}: {key}={value} outside [{low}, {high}] (shift {shift_ns} ns, off by {} ns)\n{}",
            if value < low { value - low } else { value - high },
            report.stdout
        );
        };
    bracket("realtime_ns", "realtime", wall_shift_ns, 0);
    bracket("system_time_ns", "realtime", wall_shift_ns, 0);
    bracket("timespec_get_ns", "realtime", wall_shift_ns, 0);
    bracket("gettimeofday_ns", "realtime", wall_shift_ns, 1_000); // microseconds, truncated
                                                                  // A coarse clock lags by up to one tick (4 ms at HZ=250, 10 ms at HZ=100).
    bracket("realtime_coarse_ns", "realtime", wall_shift_ns, 25 * MS);
    let time_s = report.get("time_s");
    let low_s = (report.get("real_realtime_before_ns") + wall_shift_ns).div_euclid(S);
    let high_s = (report.get("real_realtime_after_ns") + wall_shift_ns).div_euclid(S);
    assert!(
        (low_s..=high_s).contains(&time_s),
        "{what}: time()={time_s} outside [{low_s}, {high_s}]"
    );
    // TAI is realtime plus the leap-second offset the kernel was given (0 when none was).
    let tai_ahead_ns = report.get("tai_ns") - report.get("realtime_ns");
    assert!(
        (0..=40 * S).contains(&tai_ahead_ns),
        "{what}: TAI is {tai_ahead_ns} ns ahead of realtime"
    );

    bracket("monotonic_ns", "monotonic", mono_shift_ns, 0);
    bracket("monotonic_coarse_ns", "monotonic", mono_shift_ns, 25 * MS);
    bracket("monotonic_raw_ns", "monotonic_raw", mono_shift_ns, 0);
    bracket("boottime_ns", "boottime", mono_shift_ns, 0);
}

#[test]
fn without_a_working_control_file_every_clock_is_real() {
    for (env, name) in [
        (Env::Plain, "plain"),
        (Env::PreloadOnly, "preload only"),
        (Env::MissingFile, "missing file"),
    ] {
        let report = run(&["clocks"], &env);
        check_clocks(&report, 0, 0, name);
        if matches!(env, Env::MissingFile) {
            assert!(
                report.stderr.contains("clocks are not faked"),
                "the node's log should say so: {}",
                report.stderr
            );
        }
    }
    // A control file at real time: the shim is active and must be exact.
    let dir = tempfile::tempdir().unwrap();
    let control = new_control(&dir, "identity.clock");
    check_clocks(
        &run(&["clocks"], &Env::Control(&control)),
        0,
        0,
        "identity control file",
    );
}

#[test]
fn a_forward_bump_moves_the_wall_clock_and_leaves_monotonic_alone() {
    let dir = tempfile::tempdir().unwrap();
    let control = new_control(&dir, "n1.clock");
    control.bump(Duration::from_secs(10), true);
    check_clocks(
        &run(&["clocks"], &Env::Control(&control)),
        10 * S,
        0,
        "bump +10 s",
    );
}

#[test]
fn a_backward_bump_moves_the_wall_clock_back_and_leaves_monotonic_alone() {
    let dir = tempfile::tempdir().unwrap();
    let control = new_control(&dir, "n1.clock");
    control.bump(Duration::from_secs(10), false);
    check_clocks(
        &run(&["clocks"], &Env::Control(&control)),
        -10 * S,
        0,
        "bump -10 s",
    );
}

#[test]
fn drift_runs_the_monotonic_and_wall_clocks_at_the_rate() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    for (rate, low, high) in [(2.0, 1.6, 2.6), (0.5, 0.4, 0.65)] {
        let control = new_control(&dir, &format!("rate-{rate}.clock"));
        control.set_rate(rate).unwrap();
        let report = run(&["rate", "400"], &Env::Control(&control));
        let real = report.get("real_elapsed_ns") as f64;
        for key in ["fake_elapsed_ns", "wall_elapsed_ns", "instant_elapsed_ns"] {
            let ratio = report.get(key) as f64 / real;
            assert!(
                (low..=high).contains(&ratio),
                "rate {rate}: {key} / real = {ratio:.3}\n{}",
                report.stdout
            );
        }
    }
}

#[test]
fn drift_scales_every_kind_of_timed_wait() {
    let _serial = serial();
    let kinds = [
        "sleep",
        "usleep",
        "poll",
        "ppoll",
        "epoll",
        "epoll-pwait",
        "epoll-pwait2",
        "clock-nanosleep",
        "clock-nanosleep-abs",
        "condvar",
        "park",
        "futex-wait",
        "pthread-cond",
        "pthread-cond-monotonic",
    ];
    let dir = tempfile::tempdir().unwrap();
    let real_speed = new_control(&dir, "real-speed.clock");
    let double = new_control(&dir, "double.clock");
    double.set_rate(2.0).unwrap();
    // Both speeds of a kind run side by side, so a busy machine slows them alike.
    let args = |kind| ["ticks", "1200", "20", kind];
    let children: Vec<_> = kinds
        .iter()
        .map(|kind| {
            (
                spawn(&args(kind), &Env::Control(&real_speed)),
                spawn(&args(kind), &Env::Control(&double)),
            )
        })
        .collect();
    let mut failures = Vec::new();
    let mut table = String::new();
    for (kind, (slow, fast)) in kinds.iter().zip(children) {
        let slow = finish(slow, kind).get("ticks");
        let fast = finish(fast, kind).get("ticks");
        let ratio = fast as f64 / slow.max(1) as f64;
        table.push_str(&format!(
            "{kind}: {slow} at rate 1, {fast} at rate 2, ratio {ratio:.2}\n"
        ));
        if slow < 10 || !(1.6..=2.6).contains(&ratio) {
            failures.push(*kind);
        }
    }
    eprintln!("{table}");
    assert!(
        failures.is_empty(),
        "waits not scaled by the rate: {failures:?}\n{table}"
    );
}

#[test]
fn rate_changes_and_strobes_never_move_monotonic_backward() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let control = new_control(&dir, "flip.clock");
    let mut child = spawn(&["backward-check", "1500"], &Env::Control(&control));
    let rates = [3.0, 0.5, 7.0, 0.1, 1.0, 20.0, 0.9];
    let started = Instant::now();
    let mut writes = 0u64;
    while child.try_wait().expect("wait for the probe").is_none() && started.elapsed() < HANG_LIMIT
    {
        let rate = rates[writes as usize % rates.len()];
        control.set_rate(rate).unwrap();
        // A strobe between +1 h and -1 h: the wall clock jumps, monotonic clocks must not notice.
        control.set_offset_ns(if writes % 2 == 0 { HOUR } else { -HOUR });
        writes += 2;
        // Writes as fast as possible (a writer preempted at the wrong moment is what breaks a wrong seqlock
        // order), checking on the probe only now and then.
        for _ in 0..200 {
            control
                .set_rate(rates[(writes as usize / 2) % rates.len()])
                .unwrap();
            writes += 1;
        }
    }
    let report = finish(child, "backward-check");
    assert!(writes >= 1_000, "only {writes} writes while the probe ran");
    assert!(report.get("samples") > 1_000, "{}", report.stdout);
    assert_eq!(
        report.get("backward"),
        0,
        "monotonic went backward after {writes} writes:\n{}",
        report.stdout
    );
}

#[test]
fn reset_returns_the_wall_clock_to_true_time_at_real_speed() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let control = new_control(&dir, "reset.clock");
    control.bump(Duration::from_secs(10), true);
    control.set_rate(3.0).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let state = control.reset();
    assert_eq!((state.wall_skew_ns, state.rate), (0, 1.0));
    assert!(
        state.mono_skew_ns >= 390 * MS,
        "3x for 200 ms puts monotonic >= 400 ms ahead: {state:?}"
    );
    // The wall clock is exactly real again; the monotonic clocks keep their lead (they must not go back).
    check_clocks(
        &run(&["clocks"], &Env::Control(&control)),
        0,
        state.mono_skew_ns,
        "after reset",
    );
    let report = run(&["rate", "300"], &Env::Control(&control));
    let ratio = report.get("fake_elapsed_ns") as f64 / report.get("real_elapsed_ns") as f64;
    assert!(
        (0.8..=1.25).contains(&ratio),
        "after reset the clock runs at {ratio:.3}x\n{}",
        report.stdout
    );
}

/// Real time a probe's timed wait took.
fn waited_ns(args: &[&str], control: &Control) -> i64 {
    run(args, &Env::Control(control)).get("real_elapsed_ns")
}

#[test]
fn absolute_wall_clock_deadlines_follow_the_fake_wall_clock() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let control = new_control(&dir, "wall.clock");
    for offset_ns in [HOUR, -HOUR] {
        control.set_offset_ns(offset_ns);
        for args in [
            ["sleep-until", "realtime", "300"],
            ["cond-until", "realtime", "300"],
        ] {
            // Untranslated, +1 h would wait an hour and -1 h not at all.
            let took = waited_ns(&args, &control);
            assert!(
                took >= 250 * MS,
                "{args:?} at offset {offset_ns}: woke after {took} ns"
            );
            assert!(
                took < 20 * S,
                "{args:?} at offset {offset_ns}: took {took} ns"
            );
        }
    }
}

#[test]
fn absolute_monotonic_deadlines_and_futex_waits_follow_the_fake_monotonic_clock() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // Fake monotonic far ahead (100x for 300 ms: ~30 s) ...
    let ahead = new_control(&dir, "ahead.clock");
    ahead.set_rate(100.0).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let state = ahead.set_rate(1.0).unwrap();
    assert!(state.mono_skew_ns > 25 * S, "{state:?}");
    // ... and behind (0.001x for 600 ms: ~0.6 s).
    let behind = new_control(&dir, "behind.clock");
    behind.set_rate(0.001).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let state = behind.set_rate(1.0).unwrap();
    assert!(state.mono_skew_ns < -500 * MS, "{state:?}");
    for args in [
        ["sleep-until", "monotonic", "700"],
        ["cond-until", "monotonic", "700"],
        ["condvar", "700", ""],
    ] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        // Untranslated, "ahead" would wait ~30 s and "behind" ~0.1 s.
        let took = waited_ns(&args, &ahead);
        assert!(
            (650 * MS..20 * S).contains(&took),
            "{args:?} ahead: took {took} ns"
        );
        let took = waited_ns(&args, &behind);
        assert!(took >= 650 * MS, "{args:?} behind: took {took} ns");
    }
}
