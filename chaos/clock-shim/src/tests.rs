//! Unit tests: the clock arithmetic (pure), the seqlock, and the runner's `Control`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::control_block::*;
use crate::{Control, ControlError};

const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

fn at_rate(rate: f64) -> Params {
    Params {
        rate_fixed: rate_to_fixed(rate).unwrap(),
        ..Params::IDENTITY
    }
}

#[test]
fn the_magic_spells_the_documented_text() {
    assert_eq!(&MAGIC.to_le_bytes(), b"CHCLKSHM");
}

#[test]
fn identity_is_real_time() {
    let p = Params::IDENTITY;
    for real in [i64::MIN, -5, 0, 1, 123_456_789, 10_000 * S, i64::MAX] {
        assert_eq!(p.fake_mono_ns(real), real);
        assert_eq!(p.mono_skew_ns(real), 0);
    }
    assert_eq!(p.fake_wall_ns(1_700_000_000 * S, 42 * S), 1_700_000_000 * S);
}

#[test]
fn rate_scales_monotonic_time_from_the_epoch() {
    let p = Params {
        epoch_real_ns: 100 * S,
        epoch_fake_ns: 500 * S,
        ..at_rate(2.0)
    };
    assert_eq!(p.fake_mono_ns(100 * S), 500 * S);
    assert_eq!(p.fake_mono_ns(103 * S), 506 * S);
    let half = Params {
        epoch_real_ns: 100 * S,
        epoch_fake_ns: 500 * S,
        ..at_rate(0.5)
    };
    assert_eq!(half.fake_mono_ns(104 * S), 502 * S);
    // Before the epoch (a reader's clock a hair behind the writer's) the line extends backward, flooring.
    assert_eq!(half.fake_mono_ns(100 * S - 3), 500 * S - 2);
}

#[test]
fn wall_clock_is_real_wall_plus_offset_plus_monotonic_skew() {
    let p = Params {
        wall_offset_ns: -7 * S,
        epoch_real_ns: 10 * S,
        epoch_fake_ns: 10 * S,
        ..at_rate(3.0)
    };
    // 2 s after the epoch the monotonic clock is 4 s ahead; the wall clock too, minus the 7 s offset.
    assert_eq!(p.mono_skew_ns(12 * S), 4 * S);
    assert_eq!(p.fake_wall_ns(1_000 * S, 12 * S), 1_000 * S - 3 * S);
    assert_eq!(p.wall_skew_ns(12 * S), -3 * S);
}

#[test]
fn rebasing_is_continuous_and_monotonic_through_many_rate_changes() {
    let rates = [2.0, 0.5, 7.25, 0.001, 1000.0, 1.0, 0.333, 13.0];
    let mut p = Params::IDENTITY;
    let mut real = 5 * S;
    let mut last_fake = p.fake_mono_ns(real);
    for (i, rate) in rates.iter().cycle().take(200).enumerate() {
        // Uneven steps, including 0 and 1 ns.
        let step = [0, 1, 999, 3 * MS, 17 * MS + 3, 2 * S][i % 6];
        for t in [real, real + step / 3, real + step] {
            let fake = p.fake_mono_ns(t);
            assert!(
                fake >= last_fake,
                "backward at step {i}: {fake} < {last_fake}"
            );
            last_fake = fake;
        }
        real += step;
        let before = p.fake_mono_ns(real);
        let wall_before = p.fake_wall_ns(1_700_000_000 * S + real, real);
        p = p.rebased(real, rate_to_fixed(*rate).unwrap());
        assert_eq!(p.fake_mono_ns(real), before, "monotonic jump at rebase {i}");
        assert_eq!(
            p.fake_wall_ns(1_700_000_000 * S + real, real),
            wall_before,
            "wall jump at rebase {i}"
        );
        assert_eq!(p.epoch_real_ns, real);
        assert_eq!(p.epoch_fake_ns, before);
    }
}

#[test]
fn extreme_and_corrupt_values_saturate_instead_of_overflowing() {
    let corrupt = Params {
        wall_offset_ns: i64::MAX,
        rate_fixed: u64::MAX,
        epoch_real_ns: i64::MIN,
        epoch_fake_ns: i64::MAX,
        wait_chunk_max_ns: 0,
        requested_offset_ns: 0,
    }
    .sanitized();
    assert_eq!(corrupt.rate(), RATE_MAX);
    assert_eq!(corrupt.fake_mono_ns(i64::MAX), i64::MAX);
    assert_eq!(corrupt.fake_wall_ns(i64::MAX, i64::MAX), i64::MAX);
    assert_eq!(corrupt.real_wait_ns(i64::MAX), WAIT_CHUNK_MIN_NS as i64);
    let slowest = Params {
        rate_fixed: 0,
        ..Params::IDENTITY
    }
    .sanitized();
    assert!(slowest.rate() >= RATE_MIN * 0.999, "{}", slowest.rate());
    assert_eq!(
        Params {
            epoch_fake_ns: i64::MIN,
            ..Params::IDENTITY
        }
        .fake_mono_ns(i64::MIN),
        i64::MIN
    );
}

#[test]
fn waits_are_divided_by_the_rate_rounded_up_and_chunked() {
    assert_eq!(at_rate(2.0).real_wait_ns(10 * MS), 5 * MS);
    assert_eq!(at_rate(2.0).real_wait_ns(3), 2, "1.5 ns rounds up");
    assert_eq!(at_rate(0.5).real_wait_ns(8 * MS), 16 * MS);
    assert_eq!(
        at_rate(0.5).real_wait_ns(30 * MS),
        WAIT_CHUNK_DEFAULT_NS as i64,
        "capped at the chunk"
    );
    assert_eq!(at_rate(1.0).real_wait_ns(1), 1);
    assert_eq!(at_rate(1.0).real_wait_ns(0), 0);
    assert_eq!(at_rate(1.0).real_wait_ns(-5), 0);
    let long_chunk = Params {
        wait_chunk_max_ns: 500 * MS as u64,
        ..at_rate(4.0)
    };
    assert_eq!(long_chunk.real_wait_ns(S), 250 * MS);
}

#[test]
fn reset_steps_the_wall_clock_to_true_time_and_keeps_monotonic_continuous() {
    let drifted = Params {
        wall_offset_ns: 10 * S,
        epoch_real_ns: 0,
        epoch_fake_ns: 0,
        ..at_rate(2.0)
    };
    let now = 3 * S;
    assert_eq!(drifted.mono_skew_ns(now), 3 * S);
    let reset = drifted.reset(now);
    assert_eq!(reset.rate_fixed, RATE_ONE_FIXED);
    assert_eq!(
        reset.fake_mono_ns(now),
        drifted.fake_mono_ns(now),
        "monotonic continuous"
    );
    for later in [now, now + 1, now + 5 * S] {
        assert_eq!(reset.wall_skew_ns(later), 0, "wall clock on true time");
        assert_eq!(
            reset.mono_skew_ns(later),
            3 * S,
            "monotonic keeps its lead, at real speed"
        );
    }
    assert_eq!(reset.requested_offset_ns, 0);
}

#[test]
fn with_wall_skew_sets_the_wall_clock_relative_to_true_time() {
    let drifted = Params {
        epoch_real_ns: 0,
        epoch_fake_ns: 2 * S,
        ..Params::IDENTITY
    };
    let p = drifted.with_wall_skew(S, -4 * S);
    assert_eq!(p.wall_skew_ns(S), -4 * S);
    assert_eq!(p.mono_skew_ns(S), 2 * S);
}

#[test]
fn rates_outside_the_range_are_refused() {
    assert_eq!(rate_to_fixed(1.0), Some(RATE_ONE_FIXED));
    assert_eq!(rate_to_fixed(0.5), Some(RATE_ONE_FIXED / 2));
    for bad in [
        0.0,
        -1.0,
        RATE_MIN / 2.0,
        RATE_MAX * 2.0,
        f64::NAN,
        f64::INFINITY,
    ] {
        assert_eq!(rate_to_fixed(bad), None, "{bad}");
    }
    assert!(rate_to_fixed(RATE_MIN).is_some());
    assert!(rate_to_fixed(RATE_MAX).is_some());
}

#[test]
fn nanosecond_pairs_round_trip_and_floor_before_1970() {
    for ns in [0, 1, S - 1, S, -1, -S, -S - 1, 1_700_000_000 * S + 123] {
        let (s, n) = split_ns(ns);
        assert!((0..S).contains(&n));
        assert_eq!(join_ns(s, n), Some(ns));
    }
    assert_eq!(split_ns(-1), (-1, S - 1));
    assert_eq!(join_ns(1, S), None);
    assert_eq!(join_ns(1, -1), None);
    assert_eq!(join_ns(i64::MAX, 0), Some(i64::MAX), "saturates");
}

fn fresh_block() -> Box<ControlBlock> {
    // SAFETY: a ControlBlock is atomics of plain integers: all-zero is valid (and not yet valid as a file).
    let block: Box<ControlBlock> = Box::new(unsafe { std::mem::zeroed() });
    assert!(!block.is_valid());
    block.initialize(&Params::IDENTITY);
    assert!(block.is_valid());
    block
}

#[test]
fn the_writer_reads_the_clock_only_while_holding_the_seqlock() {
    let block = fresh_block();
    let written = block.write(
        || {
            assert_eq!(
                block.seq.load(Ordering::SeqCst) % 2,
                1,
                "clock read outside the write section"
            );
            77 * S
        },
        |params, now| params.rebased(now, RATE_ONE_FIXED * 3),
    );
    assert_eq!(written.epoch_real_ns, 77 * S);
    assert_eq!(block.seq.load(Ordering::SeqCst), 2);
    let (read, sample) = block.read(|| 5);
    assert_eq!((read, sample), (written, 5));
}

#[test]
fn readers_never_see_a_torn_write() {
    let block: Arc<ControlBlock> = Arc::from(fresh_block());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (block, done) = (Arc::clone(&block), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) || reads == 0 {
                    let (p, ()) = block.read(|| ());
                    // Every write keeps these fields equal (or opposite): a mix of two writes breaks that.
                    assert_eq!(p.wall_offset_ns, p.epoch_real_ns, "torn read: {p:?}");
                    assert_eq!(
                        p.epoch_fake_ns,
                        p.epoch_real_ns.wrapping_neg(),
                        "torn read: {p:?}"
                    );
                    assert_eq!(p.requested_offset_ns, p.epoch_real_ns, "torn read: {p:?}");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for k in 1..=100_000i64 {
        block.write(
            || k,
            |params, now| Params {
                wall_offset_ns: now,
                epoch_real_ns: now,
                epoch_fake_ns: -now,
                requested_offset_ns: now,
                ..params
            },
        );
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().expect("reader panicked") > 0);
    }
    assert_eq!(block.seq.load(Ordering::SeqCst), 200_000);
}

#[test]
fn a_control_file_starts_at_real_time_with_the_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n1.clock");
    let control = Control::create(&path).unwrap();
    let state = control.state();
    assert_eq!(state.rate, 1.0);
    assert_eq!(state.wall_skew_ns, 0);
    assert_eq!(state.mono_skew_ns, 0);
    assert_eq!(state.params, Params::IDENTITY);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, FILE_LEN_BYTES);
    assert_eq!(&bytes[0..8], b"CHCLKSHM");
    assert_eq!(bytes[8..16], VERSION.to_ne_bytes());
    assert_eq!(bytes[32..40], RATE_ONE_FIXED.to_ne_bytes());
    assert_eq!(bytes[56..64], WAIT_CHUNK_DEFAULT_NS.to_ne_bytes());
    let env = control.env(std::path::Path::new("/lib/x.so"));
    assert_eq!(env[0], ("LD_PRELOAD", "/lib/x.so".into()));
    assert_eq!(env[1], (crate::CONTROL_ENV, path.clone().into_os_string()));
}

#[test]
fn bumps_and_offsets_move_only_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::create(dir.path().join("c")).unwrap();
    let s = control.bump(Duration::from_secs(10), true);
    assert_eq!(
        (s.wall_skew_ns, s.mono_skew_ns, s.requested_offset_ns),
        (10 * S, 0, 10 * S)
    );
    let s = control.bump(Duration::from_secs(25), false);
    assert_eq!((s.wall_skew_ns, s.mono_skew_ns), (-15 * S, 0));
    let s = control.set_offset_ns(3_600 * S);
    assert_eq!((s.wall_skew_ns, s.mono_skew_ns), (3_600 * S, 0));
    let s = control.reset();
    assert_eq!((s.wall_skew_ns, s.mono_skew_ns, s.rate), (0, 0, 1.0));
}

#[test]
fn rate_changes_continue_from_the_current_fake_time_and_reset_keeps_the_lead() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::create(dir.path().join("c")).unwrap();
    control.set_rate(1000.0).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let fast = control.set_rate(0.5).unwrap();
    // At least 5 ms of real time at rate 1000: at least ~5 s ahead (the sleep never ends early).
    assert!(fast.mono_skew_ns >= 4 * S, "{fast:?}");
    assert_eq!(
        fast.wall_skew_ns, fast.mono_skew_ns,
        "drift moves the wall clock with the monotonic one"
    );
    let reset = control.reset();
    assert_eq!(reset.wall_skew_ns, 0);
    assert!(
        reset.mono_skew_ns >= fast.mono_skew_ns - S,
        "the monotonic lead is kept: {reset:?}"
    );
    assert_eq!(reset.rate, 1.0);
}

#[test]
fn apply_is_idempotent_and_zero_offset_at_rate_one_resets() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::create(dir.path().join("c")).unwrap();
    let first = control.apply(2 * S, 2.0).unwrap();
    assert_eq!(first.requested_offset_ns, 2 * S);
    assert_eq!(first.rate, 2.0);
    let writes = first.writes;
    let again = control.apply(2 * S, 2.0).unwrap();
    assert_eq!(again.writes, writes, "same setting: no write");
    let stepped = control.apply(-S, 2.0).unwrap();
    // Stepped by -3 s from where the drifting wall clock was.
    assert!(
        stepped.wall_skew_ns < first.wall_skew_ns - 2 * S,
        "{first:?} {stepped:?}"
    );
    let reset = control.apply(0, 1.0).unwrap();
    assert_eq!(
        (reset.wall_skew_ns, reset.rate, reset.requested_offset_ns),
        (0, 1.0, 0)
    );
}

#[test]
fn bad_values_and_files_are_refused_with_context() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::create(dir.path().join("c")).unwrap();
    for bad in [0.0, f64::NAN, 5_000.0] {
        assert!(
            matches!(control.set_rate(bad), Err(ControlError::Rate { .. })),
            "{bad}"
        );
        assert!(
            matches!(control.apply(0, bad), Err(ControlError::Rate { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        control.set_wait_chunk_max(Duration::from_micros(10)),
        Err(ControlError::WaitChunk { .. })
    ));
    assert_eq!(
        control
            .set_wait_chunk_max(Duration::from_millis(5))
            .unwrap()
            .params
            .wait_chunk_max_ns,
        5_000_000
    );

    let other = dir.path().join("not-a-clock");
    std::fs::write(&other, vec![7u8; 4096]).unwrap();
    let err = Control::open(&other).unwrap_err();
    assert!(matches!(err, ControlError::NotControlFile { .. }), "{err}");
    assert!(err.to_string().contains("not-a-clock"), "{err}");
    std::fs::write(&other, b"short").unwrap();
    assert!(matches!(
        Control::open(&other),
        Err(ControlError::TooShort { len_bytes: 5, .. })
    ));
    let missing = Control::open(dir.path().join("missing")).unwrap_err();
    assert!(missing.to_string().contains("missing"), "{missing}");
}

#[test]
fn open_shares_the_file_and_create_resets_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let writer = Control::create(&path).unwrap();
    writer.bump_ns(5 * S);
    let reader = Control::open(&path).unwrap();
    assert_eq!(reader.state().wall_skew_ns, 5 * S);
    let recreated = Control::create(&path).unwrap();
    assert_eq!(recreated.state().params, Params::IDENTITY);
    assert_eq!(reader.state().wall_skew_ns, 0, "one file, one clock");
}
