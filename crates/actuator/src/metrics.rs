//! The metric primitives and the Prometheus text exposition format (version 0.0.4).
//!
//! Hot paths only touch atomics: a [`Counter`] is one relaxed `fetch_add`; a [`CounterVec`] finds
//! its series under a read lock without allocating (the write lock is taken once per new label
//! set); a [`Histogram`] adds to one bucket, the sum and the count. Gauges are not stored: the
//! daemons compute them when scraped (engines by status, registered or not), so they are never
//! stale. [`Exposition`] renders families with `# HELP` and `# TYPE` lines and escapes label
//! values as the format requires, so whatever a label holds (a deployment name from a file) the
//! output stays parseable.
//!
//! Label values are bounded: every [`CounterVec`] holds at most [`MAX_SERIES`] label sets and
//! counts the rest under the value [`OVERFLOW_LABEL`], so no peer can grow the registry.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

/// Most label sets one [`CounterVec`] tracks; further ones share [`OVERFLOW_LABEL`].
pub const MAX_SERIES: usize = 512;
/// The label value counts go to once a [`CounterVec`] is full.
pub const OVERFLOW_LABEL: &str = "other";

/// What a family is, for its `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets at restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in cumulative buckets, with their sum and count.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A Prometheus text exposition under construction.
#[derive(Debug, Default)]
pub struct Exposition {
    /// The text so far.
    text: String,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Samples of it follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.name());
    }

    /// One sample line: `name{label="value",…} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (label, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                self.text.push_str(label);
                self.text.push_str("=\"");
                escape_label_value(&mut self.text, value);
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        push_number(&mut self.text, value);
        self.text.push('\n');
    }

    /// A whole family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The finished text.
    pub fn into_text(self) -> String {
        self.text
    }
}

/// Escapes a label value: backslash, double quote and line feed, as the format specifies.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value: integers without a fraction, `+Inf`/`-Inf`/`NaN` as Prometheus spells them.
fn push_number(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// A counter without labels.
#[derive(Debug, Default)]
pub struct Counter {
    /// The count.
    value: AtomicU64,
}

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A counter with one or two labels, e.g. refusals by `reason` and `deployment`.
#[derive(Debug)]
pub struct CounterVec {
    /// The label names: one or two.
    names: &'static [&'static str],
    /// First label value → second label value (empty with one label) → count.
    series: RwLock<HashMap<String, HashMap<String, AtomicU64>>>,
}

impl CounterVec {
    /// A counter labelled by `names` (one or two names).
    pub fn new(names: &'static [&'static str]) -> Self {
        debug_assert!(matches!(names.len(), 1 | 2));
        Self {
            names,
            series: RwLock::new(HashMap::new()),
        }
    }

    /// Adds one to the series `first` (a one-label counter).
    pub fn inc(&self, first: &str) {
        self.inc2(first, "");
    }

    /// Adds one to the series (`first`, `second`).
    pub fn inc2(&self, first: &str, second: &str) {
        {
            let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = series.get(first).and_then(|inner| inner.get(second)) {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        let total: usize = series.values().map(HashMap::len).sum();
        let known = series
            .get(first)
            .is_some_and(|inner| inner.contains_key(second));
        let (first, second) = if known || total < MAX_SERIES {
            (first, second)
        } else {
            (
                OVERFLOW_LABEL,
                if self.names.len() == 2 {
                    OVERFLOW_LABEL
                } else {
                    ""
                },
            )
        };
        series
            .entry(first.to_owned())
            .or_default()
            .entry(second.to_owned())
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The count of one series (0 when never incremented).
    pub fn get(&self, first: &str, second: &str) -> u64 {
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        series
            .get(first)
            .and_then(|inner| inner.get(second))
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }

    /// Writes every series, sorted, under `name` (the family header is the caller's).
    pub fn render(&self, out: &mut Exposition, name: &str) {
        let mut rows: Vec<(String, String, u64)> = {
            let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
            series
                .iter()
                .flat_map(|(first, inner)| {
                    inner.iter().map(|(second, count)| {
                        (first.clone(), second.clone(), count.load(Ordering::Relaxed))
                    })
                })
                .collect()
        };
        rows.sort();
        for (first, second, count) in rows {
            match self.names {
                [one] => out.sample(name, &[(one, &first)], count as f64),
                [one, two, ..] => out.sample(name, &[(one, &first), (two, &second)], count as f64),
                [] => out.sample(name, &[], count as f64),
            }
        }
    }
}

/// Upper bounds (seconds) of the status-check latency buckets: a local check takes about a
/// millisecond, the checker's default timeout is 2 s.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Durations in fixed buckets, rendered cumulatively with `le` labels.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds, ascending; `+Inf` is implicit.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative), one more than `bounds` for `+Inf`.
    buckets: Vec<AtomicU64>,
    /// Sum of observations, in nanoseconds.
    sum_nanos: AtomicU64,
    /// Number of observations.
    count: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds` (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let index = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Writes the family: header, cumulative buckets, `_sum` and `_count`.
    pub fn render(&self, out: &mut Exposition, name: &str, help: &str) {
        out.family(name, Kind::Histogram, help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (index, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match self.bounds.get(index) {
                Some(bound) => bound.to_string(),
                None => "+Inf".to_owned(),
            };
            out.sample(&bucket, &[("le", &le)], cumulative as f64);
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        out.sample(&format!("{name}_sum"), &[], sum);
        // The count is the +Inf bucket's, read once above, so the two always agree.
        out.sample(&format!("{name}_count"), &[], cumulative as f64);
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_label_values_and_print_numbers_like_prometheus() {
        let mut out = Exposition::new();
        out.family("svcid_x_total", Kind::Counter, "Help with \\ and\nnewline.");
        out.sample("svcid_x_total", &[("a", "q\"uo\\te\nnl"), ("b", "")], 3.0);
        out.sample("svcid_x_total", &[], 0.25);
        out.sample("svcid_x_total", &[], f64::INFINITY);
        assert_eq!(
            out.into_text(),
            "# HELP svcid_x_total Help with \\\\ and\\nnewline.\n\
             # TYPE svcid_x_total counter\n\
             svcid_x_total{a=\"q\\\"uo\\\\te\\nnl\",b=\"\"} 3\n\
             svcid_x_total 0.25\n\
             svcid_x_total +Inf\n"
        );
    }

    #[test]
    fn counter_vecs_count_per_label_set_and_cap_the_series() {
        let refused = CounterVec::new(&["reason", "deployment"]);
        refused.inc2("bad_signature", "dpe-dev");
        refused.inc2("bad_signature", "dpe-dev");
        refused.inc2("unknown_kid", "-");
        assert_eq!(refused.get("bad_signature", "dpe-dev"), 2);
        assert_eq!(refused.get("unknown_kid", "-"), 1);
        let mut out = Exposition::new();
        refused.render(&mut out, "r");
        assert_eq!(
            out.into_text(),
            "r{reason=\"bad_signature\",deployment=\"dpe-dev\"} 2\n\
             r{reason=\"unknown_kid\",deployment=\"-\"} 1\n"
        );

        let accepted = CounterVec::new(&["deployment"]);
        for n in 0..MAX_SERIES + 10 {
            accepted.inc(&format!("d{n}"));
        }
        accepted.inc("d0");
        assert_eq!(accepted.get("d0", ""), 2);
        assert_eq!(accepted.get(OVERFLOW_LABEL, ""), 10);
    }

    #[test]
    fn histograms_are_cumulative_and_agree_with_their_count() {
        let histogram = Histogram::new(&[0.01, 0.1]);
        histogram.observe(Duration::from_millis(5));
        histogram.observe(Duration::from_millis(50));
        histogram.observe(Duration::from_millis(50));
        histogram.observe(Duration::from_secs(3));
        let mut out = Exposition::new();
        histogram.render(&mut out, "h_seconds", "Latency.");
        assert_eq!(
            out.into_text(),
            "# HELP h_seconds Latency.\n\
             # TYPE h_seconds histogram\n\
             h_seconds_bucket{le=\"0.01\"} 1\n\
             h_seconds_bucket{le=\"0.1\"} 3\n\
             h_seconds_bucket{le=\"+Inf\"} 4\n\
             h_seconds_sum 3.105\n\
             h_seconds_count 4\n"
        );
        assert_eq!(histogram.count(), 4);
    }
}
