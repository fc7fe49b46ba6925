//! The time source for token minting and verification.
//!
//! Expiry, not-before and token reuse all depend on "now"; reading the system clock directly would
//! make those rules untestable at their boundaries. Everything in this crate asks a [`Clock`] instead:
//! daemons pass [`SystemClock`], tests pass a [`ManualClock`] they move by hand. Resolution is whole
//! seconds because JWT NumericDates are whole seconds here.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in Unix seconds.
pub trait Clock: Send + Sync {
    /// Seconds since 1970-01-01T00:00:00Z (negative before it).
    fn now_unix(&self) -> i64;
}

/// The machine's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            // A clock set before 1970 is broken, but report it faithfully rather than panic.
            Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
        }
    }
}

/// A clock that only moves when told to, for tests of expiry, skew and token renewal.
#[derive(Debug, Default)]
pub struct ManualClock {
    /// The current time in Unix seconds; atomic so a shared clock can be moved while verifiers read it.
    now: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `now_unix`.
    pub fn new(now_unix: i64) -> Self {
        Self {
            now: AtomicI64::new(now_unix),
        }
    }

    /// Moves the clock to `now_unix` (backwards too).
    pub fn set(&self, now_unix: i64) {
        self.now.store(now_unix, Ordering::SeqCst);
    }

    /// Moves the clock by `seconds` (negative moves it back).
    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(100);
        assert_eq!(clock.now_unix(), 100);
        clock.advance(5);
        assert_eq!(clock.now_unix(), 105);
        clock.advance(-10);
        assert_eq!(clock.now_unix(), 95);
        clock.set(7);
        assert_eq!(clock.now_unix(), 7);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_unix() > 1_577_836_800);
    }
}
