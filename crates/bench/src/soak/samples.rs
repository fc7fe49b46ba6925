//! Resident memory and open descriptors of each daemon over a soak, and their slope over the
//! second half of the run (least squares over the samples of the daemon's last process).

use std::time::Duration;

/// One reading of one daemon.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Since the start of the faults.
    pub at: Duration,
    /// Which process of the daemon (it counts restarts).
    pub instance: u32,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: usize,
}

/// A daemon's trend over the second half.
#[derive(Debug, Clone)]
pub struct Slope {
    /// The daemon.
    pub daemon: &'static str,
    /// Samples used (`0`: its last process covers less than half of the window).
    pub samples: usize,
    /// Fitted growth of resident memory per hour, MiB.
    pub rss_mib_per_hour: f64,
    /// Fitted growth over the window, MiB.
    pub rss_growth_mib: f64,
    /// Mean resident memory over the window, MiB.
    pub rss_mean_mib: f64,
    /// Fitted growth of open descriptors over the window.
    pub fd_growth: f64,
    /// The window's length.
    pub window: Duration,
}

/// Growth over the second half allowed before it counts as a leak: 8 MiB or 10 % of the mean,
/// whichever is more, and 8 descriptors.
pub const RSS_GROWTH_ALLOWED_MIB: f64 = 8.0;
/// See [`RSS_GROWTH_ALLOWED_MIB`].
pub const RSS_GROWTH_ALLOWED_SHARE: f64 = 0.10;
/// See [`RSS_GROWTH_ALLOWED_MIB`].
pub const FD_GROWTH_ALLOWED: f64 = 8.0;
/// The shortest window over which a slope is judged.
pub const JUDGED_FROM: Duration = Duration::from_secs(600);

impl Slope {
    /// The trend of `samples` (one daemon's, oldest first) over `[from, to]`, using only its
    /// last process; not measured (`samples` 0) when that process has fewer than 4 samples in
    /// the window or covers less than half of it.
    pub fn of(daemon: &'static str, samples: &[Sample], from: Duration, to: Duration) -> Self {
        let last = samples.last().map_or(0, |s| s.instance);
        let window: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.instance == last && s.at >= from && s.at <= to)
            .collect();
        let span = match (window.first(), window.last()) {
            (Some(a), Some(b)) => b.at.saturating_sub(a.at),
            _ => Duration::ZERO,
        };
        if window.len() < 4 || span < (to.saturating_sub(from)) / 2 {
            return Self {
                daemon,
                samples: 0,
                rss_mib_per_hour: 0.0,
                rss_growth_mib: 0.0,
                rss_mean_mib: 0.0,
                fd_growth: 0.0,
                window: span,
            };
        }
        let xs: Vec<f64> = window.iter().map(|s| s.at.as_secs_f64()).collect();
        let rss: Vec<f64> = window.iter().map(|s| s.rss_kib as f64 / 1024.0).collect();
        let fds: Vec<f64> = window.iter().map(|s| s.fds as f64).collect();
        let rss_per_second = fit(&xs, &rss);
        Self {
            daemon,
            samples: window.len(),
            rss_mib_per_hour: rss_per_second * 3600.0,
            rss_growth_mib: rss_per_second * span.as_secs_f64(),
            rss_mean_mib: rss.iter().sum::<f64>() / rss.len() as f64,
            fd_growth: fit(&xs, &fds) * span.as_secs_f64(),
            window: span,
        }
    }

    /// Whether the window is long enough to judge a slope: 10 minutes (a shorter one measures
    /// warm-up).
    pub fn judged(&self) -> bool {
        self.samples > 0 && self.window >= JUDGED_FROM
    }

    /// Whether it grew beyond what is allowed (only judged over [`JUDGED_FROM`] or more).
    pub fn leaks(&self) -> bool {
        self.judged()
            && (self.rss_growth_mib
                > RSS_GROWTH_ALLOWED_MIB.max(self.rss_mean_mib * RSS_GROWTH_ALLOWED_SHARE)
                || self.fd_growth > FD_GROWTH_ALLOWED)
    }
}

/// The least-squares slope of `ys` over `xs`.
fn fit(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        num += (x - mx) * (y - my);
        den += (x - mx) * (x - mx);
    }
    if den == 0.0 { 0.0 } else { num / den }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(instance: u32, from: u64, to: u64, rss: impl Fn(u64) -> u64) -> Vec<Sample> {
        (from..=to)
            .step_by(5)
            .map(|t| Sample {
                at: Duration::from_secs(t),
                instance,
                rss_kib: rss(t),
                fds: 40,
            })
            .collect()
    }

    #[test]
    fn a_flat_daemon_does_not_leak_and_a_growing_one_does() {
        let end = Duration::from_secs(3600);
        let half = end / 2;
        let flat = series(0, 0, 3600, |t| 50_000 + (t % 7) * 100);
        let slope = Slope::of("A", &flat, half, end);
        assert!(slope.samples > 300 && !slope.leaks(), "{slope:?}");
        // 12 MiB over the half hour.
        let growing = series(0, 0, 3600, |t| 50_000 + t * 12 * 1024 / 1800);
        let slope = Slope::of("A", &growing, half, end);
        assert!(slope.leaks(), "{slope:?}");
        assert!((slope.rss_mib_per_hour - 24.0).abs() < 0.5, "{slope:?}");
    }

    #[test]
    fn only_the_last_process_counts_and_a_young_one_is_not_judged() {
        let end = Duration::from_secs(600);
        // Restarted at 500 s: its last process covers a third of the second half.
        let mut samples = series(0, 0, 495, |_| 90_000);
        samples.extend(series(1, 500, 600, |_| 20_000));
        let slope = Slope::of("A", &samples, end / 2, end);
        assert_eq!(slope.samples, 0, "{slope:?}");
        assert!(!slope.leaks());
    }
}
