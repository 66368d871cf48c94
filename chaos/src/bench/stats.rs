//! Pure figures over one set of samples: order statistics, the mean, and the ratio to the physical floor.

use serde::Serialize;

/// Order statistics and mean of one figure, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Samples summarised.
    pub n: usize,
    /// Smallest sample.
    pub min_ms: f64,
    /// Median (nearest rank).
    pub p50_ms: f64,
    /// 90th percentile (nearest rank).
    pub p90_ms: f64,
    /// 99th percentile (nearest rank; with fewer than 100 samples close to the maximum).
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

/// The value at quantile `p` of sorted samples, by nearest rank (the smallest sample with at least `p` of the
/// samples at or below it), so every figure printed is a measured sample, never an interpolation.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no samples");
    assert!((0.0..=1.0).contains(&p), "quantile {p} outside [0, 1]");
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises `samples_ms`; `None` when there are none.
pub fn summarize(samples_ms: &[f64]) -> Option<Summary> {
    if samples_ms.is_empty() {
        return None;
    }
    let mut sorted = samples_ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(Summary {
        n: sorted.len(),
        min_ms: sorted[0],
        p50_ms: percentile(&sorted, 0.5),
        p90_ms: percentile(&sorted, 0.9),
        p99_ms: percentile(&sorted, 0.99),
        max_ms: sorted[sorted.len() - 1],
        mean_ms: sorted.iter().sum::<f64>() / sorted.len() as f64,
    })
}

/// The physical floor of a failover after a crash: the first follower's timer started at the last heartbeat
/// before the fault, on average `mean_phase_ms` earlier, and then a campaign (pre-vote, vote, fsync) of
/// `campaign_ms` follows. No timeout policy can beat it at these settings.
pub fn crash_floor_ms(election_timeout_min_ms: f64, mean_phase_ms: f64, campaign_ms: f64) -> f64 {
    (election_timeout_min_ms - mean_phase_ms).max(0.0) + campaign_ms
}

/// `value / floor`, or `None` when the floor is not positive.
pub fn ratio(value_ms: f64, floor_ms: f64) -> Option<f64> {
    (floor_ms > 0.0).then(|| value_ms / floor_ms)
}

/// Counts of `samples` into `buckets` equal bins over `[lo, hi]` (the last bin includes `hi`).
pub fn histogram(samples: &[f64], lo: f64, hi: f64, buckets: usize) -> Vec<usize> {
    let mut counts = vec![0; buckets.max(1)];
    let width = (hi - lo).max(f64::EPSILON) / counts.len() as f64;
    for &s in samples {
        let i = (((s - lo) / width).floor().max(0.0) as usize).min(counts.len() - 1);
        counts[i] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_are_samples() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarize(&samples).unwrap();
        assert_eq!((s.min_ms, s.p50_ms, s.p90_ms), (1.0, 50.0, 90.0));
        assert_eq!((s.p99_ms, s.max_ms, s.n), (99.0, 100.0, 100));
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn small_sets_and_order_do_not_matter() {
        let s = summarize(&[30.0, 10.0, 20.0]).unwrap();
        assert_eq!(
            (s.min_ms, s.p50_ms, s.p90_ms, s.max_ms),
            (10.0, 20.0, 30.0, 30.0)
        );
        assert_eq!(summarize(&[7.0]).unwrap().p99_ms, 7.0);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn floor_and_ratio() {
        // 300 ms timeout, heartbeats every 50 ms (mean phase 25 ms), a 5 ms campaign.
        let floor = crash_floor_ms(300.0, 25.0, 5.0);
        assert_eq!(floor, 280.0);
        assert_eq!(ratio(420.0, floor), Some(1.5));
        assert_eq!(ratio(1.0, 0.0), None);
    }

    #[test]
    fn histogram_bins_every_sample_once() {
        let counts = histogram(&[0.0, 0.5, 1.0, 9.9, 10.0, 42.0, -3.0], 0.0, 10.0, 10);
        assert_eq!(counts.iter().sum::<usize>(), 7);
        assert_eq!(counts[0], 3, "0.0, 0.5 and the clamped -3.0");
        assert_eq!(counts[9], 3, "9.9, 10.0 and the clamped 42.0");
    }
}
