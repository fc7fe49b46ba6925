//! The `authenticationFailed` log, rate-limited so a misconfigured or hostile peer cannot flood it.
//!
//! Every refusal is described by its reason code, the token's `kid`, the peer's IP address and the
//! gRPC method. The first refusal of such a combination is logged at once as a WARN
//! `authenticationFailed` event (with the full peer address, the deployment the `kid` maps to and
//! the correlation id). Identical refusals that follow within [`REFUSAL_WINDOW`] are only counted;
//! when the window ends, one WARN `authenticationFailedRepeated` event carries the count
//! (`repeated`), and the next identical refusal is logged in full again. An operator therefore
//! sees every distinct problem at once and its volume within seconds, at most two lines per
//! combination per window.
//!
//! Memory is bounded: at most [`MAX_TRACKED_REFUSALS`] combinations are tracked. The `kid` and the
//! method path are chosen by the caller, so a flood of distinct ones must not grow the table or
//! the log: refusals that find the table full are counted in one overflow bucket and reported as a
//! single `authenticationFailedRepeated` event with `kid=*` and the reasons seen.
//!
//! Summaries are written by a task that the first refusal starts on the runtime serving it
//! (checking every [`SWEEP_INTERVAL`]; started then rather than when the log is built, so a log
//! built outside a runtime still sweeps), by the next refusal once a window has ended, and when
//! the log is dropped
//! (server shutdown), so no count is lost. This module never sees a token: callers pass only the
//! reason code and the escaped, shortened `kid` the verifier reports.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// How long identical refusals are folded into one count after the first is logged.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(10);
/// How many distinct refusal combinations are tracked at once; beyond, refusals share one bucket.
pub const MAX_TRACKED_REFUSALS: usize = 1024;
/// How often ended windows are looked for when no refusal arrives to trigger it.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
/// Distinct reason codes an overflow summary names; the verifier has fewer than this many.
const MAX_OVERFLOW_REASONS: usize = 64;

/// What makes two refusals "identical" for folding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FoldKey {
    /// The verifier's reason code.
    reason: &'static str,
    /// The token's `kid` as logged (escaped, shortened), or `-`.
    kid: String,
    /// The peer's IP address without the port: a peer reconnecting must not escape folding.
    peer_ip: String,
    /// The method path as logged (escaped, shortened).
    method: String,
}

/// A combination whose window is running.
#[derive(Debug)]
struct Tracked {
    /// The deployment the `kid` mapped to when first refused, for the summary.
    deployment: String,
    /// When the window started (the logged refusal).
    since: Instant,
    /// Identical refusals since, not logged individually.
    repeated: u64,
}

/// Refusals that found the table full.
#[derive(Debug, Default)]
struct Overflow {
    /// When the first of them arrived; `None` while empty.
    since: Option<Instant>,
    /// How many.
    repeated: u64,
    /// Their reason codes.
    reasons: BTreeSet<&'static str>,
}

/// The tracked state, behind one lock.
#[derive(Debug, Default)]
struct State {
    /// Running windows.
    tracked: HashMap<FoldKey, Tracked>,
    /// Refusals not tracked individually.
    overflow: Overflow,
}

/// One refused call, as the authentication layer describes it.
#[derive(Clone, Debug)]
pub struct Refusal<'a> {
    /// The verifier's stable reason code.
    pub reason: &'static str,
    /// The token's `kid` (escaped, at most 64 characters) or `-`.
    pub kid: &'a str,
    /// The deployment the `kid` maps to, or `-`.
    pub deployment: &'a str,
    /// The peer's `ip:port`, or `-`.
    pub peer: &'a str,
    /// The method path (escaped, shortened).
    pub method: &'a str,
    /// The call's correlation id.
    pub correlation_id: &'a str,
    /// For a refused user token: its scheme and issuer (the `kid` is in [`Refusal::kid`]).
    pub user: Option<UserRefusal<'a>>,
}

/// What a refusal line adds for a user token: never the token, only where it claims to be from.
#[derive(Clone, Copy, Debug)]
pub struct UserRefusal<'a> {
    /// The authorization scheme as sent (`Bearer`, any case; escaped, short).
    pub scheme: &'a str,
    /// The token's `iss`, a configured issuer's (escaped, short).
    pub issuer: &'a str,
}

/// A folded count that is due to be logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The reason code, or the reasons seen (space-separated) for the overflow bucket.
    pub reason: String,
    /// The `kid`, or `*` for the overflow bucket.
    pub kid: String,
    /// The deployment, or `*`.
    pub deployment: String,
    /// The peer's IP address, or `*`.
    pub peer: String,
    /// The method, or `*`.
    pub method: String,
    /// How many refusals were not logged individually.
    pub repeated: u64,
}

/// The rate-limited refusal log of one server. Share it behind an `Arc`.
#[derive(Debug)]
pub struct RefusalLog {
    /// How long identical refusals are folded.
    window: Duration,
    /// How many combinations are tracked at most.
    capacity: usize,
    /// Running windows and the overflow bucket.
    state: Mutex<State>,
    /// Set once the sweeping task has been started.
    sweeping: std::sync::atomic::AtomicBool,
}

impl RefusalLog {
    /// A log folding identical refusals for `window`, tracking at most `capacity` combinations.
    /// The first refusal starts the task that writes summaries as windows end; it stops when the
    /// log is dropped.
    pub fn new(window: Duration, capacity: usize) -> Arc<Self> {
        Arc::new(RefusalLog {
            window,
            capacity,
            state: Mutex::new(State::default()),
            sweeping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Logs `refusal` now, or counts it when an identical one was logged within the window.
    /// Also writes the summaries of windows that have ended. Refusals are logged while serving a
    /// call, so a tokio runtime is there to run the sweeping task; were one ever missing, the
    /// next refusal tries again and summaries are still written by later refusals and on drop.
    pub fn refused(self: &Arc<Self>, refusal: &Refusal<'_>) {
        if !self.sweeping.load(std::sync::atomic::Ordering::Relaxed)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !self
                .sweeping
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            runtime.spawn(sweep(Arc::downgrade(self)));
        }
        let now = Instant::now();
        let (log_now, ended) = self.record(refusal, now);
        for summary in &ended {
            write_summary(summary, self.window);
        }
        if log_now && let Some(user) = &refusal.user {
            tracing::warn!(
                correlationId = %refusal.correlation_id,
                eventId = crate::events::AUTHENTICATION_FAILED,
                reason = refusal.reason,
                scheme = %user.scheme,
                issuer = %user.issuer,
                kid = %refusal.kid,
                deployment = %refusal.deployment,
                peer = %refusal.peer,
                method = %refusal.method,
                "Authentication failed."
            );
        } else if log_now {
            tracing::warn!(
                correlationId = %refusal.correlation_id,
                eventId = crate::events::AUTHENTICATION_FAILED,
                reason = refusal.reason,
                kid = %refusal.kid,
                deployment = %refusal.deployment,
                peer = %refusal.peer,
                method = %refusal.method,
                "Authentication failed."
            );
        }
    }

    /// Writes the summaries of windows that have ended by now.
    pub fn flush_due(&self) {
        for summary in self.due(Instant::now()) {
            write_summary(&summary, self.window);
        }
    }

    /// Records a refusal at `now`: whether to log it individually, and the summaries that ended.
    fn record(&self, refusal: &Refusal<'_>, now: Instant) -> (bool, Vec<Summary>) {
        let key = FoldKey {
            reason: refusal.reason,
            kid: refusal.kid.to_owned(),
            peer_ip: peer_ip(refusal.peer).to_owned(),
            method: refusal.method.to_owned(),
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let ended = take_due(&mut state, self.window, now, false);
        if let Some(tracked) = state.tracked.get_mut(&key) {
            tracked.repeated = tracked.repeated.saturating_add(1);
            return (false, ended);
        }
        if state.tracked.len() < self.capacity {
            state.tracked.insert(
                key,
                Tracked {
                    deployment: refusal.deployment.to_owned(),
                    since: now,
                    repeated: 0,
                },
            );
            return (true, ended);
        }
        let overflow = &mut state.overflow;
        overflow.since.get_or_insert(now);
        overflow.repeated = overflow.repeated.saturating_add(1);
        if overflow.reasons.len() < MAX_OVERFLOW_REASONS {
            overflow.reasons.insert(refusal.reason);
        }
        (false, ended)
    }

    /// Removes and returns the summaries whose window has ended by `now`.
    fn due(&self, now: Instant) -> Vec<Summary> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        take_due(&mut state, self.window, now, false)
    }
}

impl Drop for RefusalLog {
    /// The server is stopping: counts still folded are written rather than lost.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        for summary in take_due(state, self.window, Instant::now(), true) {
            write_summary(&summary, self.window);
        }
    }
}

/// Removes windows that ended by `now` (all of them when `all`); returns the ones with a count.
fn take_due(state: &mut State, window: Duration, now: Instant, all: bool) -> Vec<Summary> {
    let ended = |since: Instant| all || now.saturating_duration_since(since) >= window;
    let mut summaries = Vec::new();
    state.tracked.retain(|key, tracked| {
        if !ended(tracked.since) {
            return true;
        }
        if tracked.repeated > 0 {
            summaries.push(Summary {
                reason: key.reason.to_owned(),
                kid: key.kid.clone(),
                deployment: tracked.deployment.clone(),
                peer: key.peer_ip.clone(),
                method: key.method.clone(),
                repeated: tracked.repeated,
            });
        }
        false
    });
    if let Some(since) = state.overflow.since
        && ended(since)
    {
        let overflow = std::mem::take(&mut state.overflow);
        summaries.push(Summary {
            reason: overflow.reasons.into_iter().collect::<Vec<_>>().join(" "),
            kid: "*".to_owned(),
            deployment: "*".to_owned(),
            peer: "*".to_owned(),
            method: "*".to_owned(),
            repeated: overflow.repeated,
        });
    }
    summaries
}

fn write_summary(summary: &Summary, window: Duration) {
    tracing::warn!(
        eventId = crate::events::AUTHENTICATION_FAILED_REPEATED,
        reason = %summary.reason,
        kid = %summary.kid,
        deployment = %summary.deployment,
        peer = %summary.peer,
        method = %summary.method,
        repeated = summary.repeated,
        window = ?window,
        "Authentication failed {} more times within {window:?}; only the first was logged.",
        summary.repeated
    );
}

/// The address without its port (`127.0.0.1:5000` → `127.0.0.1`, `[::1]:5000` → `[::1]`).
pub(crate) fn peer_ip(peer: &str) -> &str {
    match peer.rsplit_once(':') {
        Some((ip, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => peer,
    }
}

/// Writes summaries as windows end, until the log is dropped.
async fn sweep(log: Weak<RefusalLog>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(log) = log.upgrade() else {
            return;
        };
        log.flush_due();
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refusal<'a>(reason: &'static str, kid: &'a str, peer: &'a str) -> Refusal<'a> {
        Refusal {
            reason,
            kid,
            deployment: "-",
            peer,
            method: "/svcid.identity.IdentityService/WhoAmI",
            correlation_id: "c",
            user: None,
        }
    }

    fn log(window: Duration, capacity: usize) -> RefusalLog {
        // Not shared and never `refused`, so no sweeping task runs: the tests drive time themselves.
        RefusalLog {
            window,
            capacity,
            state: Mutex::new(State::default()),
            sweeping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    #[test]
    fn identical_refusals_are_logged_once_then_summarised_when_the_window_ends() {
        let log = log(Duration::from_secs(10), 8);
        let start = Instant::now();
        let first = log.record(&refusal("bad_signature", "k", "10.0.0.1:4000"), start);
        assert_eq!(first, (true, vec![]));
        for n in 1..50u64 {
            // Another connection from the same host: same fold.
            let peer = format!("10.0.0.1:{}", 4000 + n);
            let at = start + Duration::from_millis(n * 100);
            assert_eq!(
                log.record(&refusal("bad_signature", "k", &peer), at),
                (false, vec![])
            );
        }
        assert!(log.due(start + Duration::from_secs(9)).is_empty());
        let due = log.due(start + Duration::from_secs(10));
        assert_eq!(
            due,
            vec![Summary {
                reason: "bad_signature".to_owned(),
                kid: "k".to_owned(),
                deployment: "-".to_owned(),
                peer: "10.0.0.1".to_owned(),
                method: "/svcid.identity.IdentityService/WhoAmI".to_owned(),
                repeated: 49,
            }]
        );
        // A new window: the next one is logged in full again.
        let again = log.record(
            &refusal("bad_signature", "k", "10.0.0.1:4000"),
            start + Duration::from_secs(11),
        );
        assert_eq!(again, (true, vec![]));
    }

    #[test]
    fn a_window_without_repeats_ends_silently() {
        let log = log(Duration::from_secs(1), 8);
        let start = Instant::now();
        assert!(log.record(&refusal("expired", "k", "h:1"), start).0);
        assert!(log.due(start + Duration::from_secs(2)).is_empty());
        assert!(log.state.lock().unwrap().tracked.is_empty());
    }

    #[test]
    fn different_reasons_kids_hosts_or_methods_are_logged_separately() {
        let log = log(Duration::from_secs(10), 8);
        let now = Instant::now();
        assert!(log.record(&refusal("expired", "k", "h1:1"), now).0);
        assert!(log.record(&refusal("bad_signature", "k", "h1:1"), now).0);
        assert!(log.record(&refusal("expired", "k2", "h1:1"), now).0);
        assert!(log.record(&refusal("expired", "k", "h2:1"), now).0);
        let mut other_method = refusal("expired", "k", "h1:1");
        other_method.method = "/other";
        assert!(log.record(&other_method, now).0);
    }

    #[test]
    fn a_full_table_counts_the_rest_in_one_overflow_summary() {
        let log = log(Duration::from_secs(10), 2);
        let now = Instant::now();
        assert!(log.record(&refusal("unknown_kid", "a", "h:1"), now).0);
        assert!(log.record(&refusal("unknown_kid", "b", "h:1"), now).0);
        for n in 0..1000 {
            let kid = format!("flood-{n}");
            assert!(!log.record(&refusal("unknown_kid", &kid, "h:1"), now).0);
        }
        assert!(!log.record(&refusal("expired", "c", "h:1"), now).0);
        assert_eq!(log.state.lock().unwrap().tracked.len(), 2);
        let due = log.due(now + Duration::from_secs(10));
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].kid, "*");
        assert_eq!(due[0].reason, "expired unknown_kid");
        assert_eq!(due[0].repeated, 1001);
    }

    #[test]
    fn ended_windows_are_summarised_by_the_next_refusal() {
        let log = log(Duration::from_secs(1), 8);
        let start = Instant::now();
        log.record(&refusal("expired", "k", "h:1"), start);
        log.record(&refusal("expired", "k", "h:1"), start);
        let (logged, ended) = log.record(
            &refusal("bad_signature", "k", "h:1"),
            start + Duration::from_secs(1),
        );
        assert!(logged);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].repeated, 1);
    }

    #[test]
    fn peer_ip_drops_only_a_port() {
        assert_eq!(peer_ip("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(peer_ip("[::1]:5000"), "[::1]");
        assert_eq!(peer_ip("-"), "-");
    }
}
