//! One issuer's keys: loaded at start (text or file), or behind a URL and fetched.
//!
//! A URL source fetches nothing at start (a module starts while its identity provider is down).
//! The first user call that needs the keys starts a fetch and waits for it, at most
//! [`FetchOptions::timeout`]; the keys are then used for the issuer's TTL (`key_cache_ttl`; for a
//! MicroProfile JWT issuer a `Cache-Control: max-age` answer replaces it, Payara's rule; Keycloak
//! ignores the header). A fetch is started when:
//!
//! - no keys were ever fetched (`first-use`, then `retry` after failures);
//! - the keys are older than their TTL (`expired`): refetched on the next need, not in the
//!   background;
//! - a token's `kid` names no key of the set (`unknown-kid`; a single key ignores `kid`).
//!
//! Whatever arrives, at most one fetch starts per `key_refetch_interval` (measured between fetch
//! starts) and at most one is in flight: every call needing the keys meanwhile waits for that
//! fetch's result instead of starting its own. Within the interval a call is answered with the
//! keys in hand (a token with an unknown `kid` is then refused by the verifier), or with
//! [`KeysUnavailable`] when there are none. A failed fetch keeps the last good keys in use, expired
//! or not, and says so in the log and in health. The fetch runs in a task of its own, so a caller
//! that gives up (a cancelled call) does not cancel it for the others.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use svcid_actuator::instruments::UserKeyMetrics;
use svcid_config::{ServerTrust, UserIssuerSettings, UserKeySource};
use svcid_identity::user::{IssuerRules, KeyFilter, KeyForm, UserKeySet};
use tokio::sync::watch;

use crate::events;
use crate::fetch::{FetchError, FetchOptions, Fetcher, shown_url};

/// How much longer than the fetch timeout a waiting call waits before it answers with what is in
/// hand (the fetch bounds itself; this only guards the waiters).
const WAIT_GRACE: Duration = Duration::from_secs(1);

/// The keys of one issuer.
#[derive(Debug)]
pub struct KeySource {
    /// Where they come from.
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Loaded { keys: Arc<UserKeySet>, from: String },
    Url(Arc<UrlSource>),
}

/// The issuer's keys could not be had.
#[derive(Debug, thiserror::Error)]
#[error("the keys of this issuer are unavailable: {reason}")]
pub struct KeysUnavailable {
    /// Why, without secrets (no URL: the reason may reach the caller).
    pub reason: String,
}

impl KeysUnavailable {
    /// The refusal reason code of a token whose issuer's keys are unavailable.
    pub const REASON: &'static str = "keys_unavailable";
}

/// What health and the console show of a key source. URLs are shown without credentials or
/// query; errors are the fetch's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySourceState {
    /// Keys read at start; `from` is the property or file.
    Loaded {
        /// `mp.jwt.verify.publickey` or the file's path.
        from: String,
        /// Keys in use.
        keys: usize,
    },
    /// Keys behind a URL, not fetched yet (nothing has needed them).
    NotFetched {
        /// The key URL.
        url: String,
    },
    /// Fetched and within their TTL.
    Fresh {
        /// The key URL.
        url: String,
        /// Keys in use.
        keys: usize,
        /// When they were fetched.
        fetched: SystemTime,
        /// When their TTL ends.
        expires: SystemTime,
    },
    /// Fetched, TTL over, still used until the next call that needs them refetches them.
    Expired {
        /// The key URL.
        url: String,
        /// Keys in use.
        keys: usize,
        /// When they were fetched.
        fetched: SystemTime,
        /// When their TTL ended.
        expired: SystemTime,
    },
    /// The last fetch failed; the last good keys stay in use.
    Stale {
        /// The key URL.
        url: String,
        /// Keys in use (the last good ones).
        keys: usize,
        /// When the keys in use were fetched.
        fetched: SystemTime,
        /// When the last fetch failed.
        failed: SystemTime,
        /// Why.
        error: String,
    },
    /// No fetch has succeeded and the last one failed: the issuer's tokens are refused with
    /// `keys_unavailable` until one succeeds.
    Unavailable {
        /// The key URL.
        url: String,
        /// When the last fetch failed.
        failed: SystemTime,
        /// Why.
        error: String,
    },
}

impl KeySourceState {
    /// The state's name in health: `loaded`, `not-fetched`, `fresh`, `expired`, `stale`,
    /// `unavailable`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Loaded { .. } => "loaded",
            Self::NotFetched { .. } => "not-fetched",
            Self::Fresh { .. } => "fresh",
            Self::Expired { .. } => "expired",
            Self::Stale { .. } => "stale",
            Self::Unavailable { .. } => "unavailable",
        }
    }

    /// Keys in use now (0 when there are none).
    pub fn keys(&self) -> usize {
        match self {
            Self::Loaded { keys, .. }
            | Self::Fresh { keys, .. }
            | Self::Expired { keys, .. }
            | Self::Stale { keys, .. } => *keys,
            Self::NotFetched { .. } | Self::Unavailable { .. } => 0,
        }
    }
}

impl KeySource {
    /// The source an issuer's settings describe; a URL is fetched trusting `trust`, within the
    /// default bounds, counted in a metrics set of its own.
    pub fn new(settings: &UserIssuerSettings, trust: &ServerTrust) -> Self {
        Self::with_options(
            settings,
            trust,
            FetchOptions::default(),
            Arc::new(UserKeyMetrics::default()),
        )
    }

    /// [`KeySource::new`] with the fetch's time bounds and the metrics fetches are counted in.
    pub fn with_options(
        settings: &UserIssuerSettings,
        trust: &ServerTrust,
        options: FetchOptions,
        metrics: Arc<UserKeyMetrics>,
    ) -> Self {
        let inner = match &settings.keys {
            UserKeySource::Loaded { keys, from } => Inner::Loaded {
                keys: Arc::clone(keys),
                from: from.clone(),
            },
            UserKeySource::Url(url) => Inner::Url(Arc::new(UrlSource::new(
                settings, url, trust, options, metrics,
            ))),
        };
        KeySource { inner }
    }

    /// The keys to verify a token with `kid` (unverified, from its header), fetching them first
    /// when the rules in the module docs say so.
    pub async fn keys(&self, kid: Option<&str>) -> Result<Arc<UserKeySet>, KeysUnavailable> {
        match &self.inner {
            Inner::Loaded { keys, .. } => Ok(Arc::clone(keys)),
            Inner::Url(source) => source.keys(kid).await,
        }
    }

    /// The keys a token would be verified with now, without fetching: the loaded keys, or the
    /// last fetched ones while within their TTL; `None` when a call would have to fetch (none yet,
    /// or their TTL is over). The verified-user-token cache answers only while the key set it
    /// verified with is still this one.
    pub fn keys_in_force(&self) -> Option<Arc<UserKeySet>> {
        match &self.inner {
            Inner::Loaded { keys, .. } => Some(Arc::clone(keys)),
            Inner::Url(source) => {
                let state = source.lock();
                let good = state.good.as_ref()?;
                (Instant::now().duration_since(good.at) < good.ttl).then(|| Arc::clone(&good.keys))
            }
        }
    }

    /// The state now.
    pub fn state(&self) -> KeySourceState {
        match &self.inner {
            Inner::Loaded { keys, from } => KeySourceState::Loaded {
                from: from.clone(),
                keys: keys.keys().len(),
            },
            Inner::Url(source) => source.state(),
        }
    }
}

/// Why a fetch is made, as `userKeysFetched` and `userKeysFetchFailed` say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// Nothing fetched yet, first need.
    FirstUse,
    /// Earlier fetches failed and no keys were ever had.
    Retry,
    /// The keys are older than their TTL.
    Expired,
    /// A token's `kid` names no key of the set.
    UnknownKid,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Self::FirstUse => "first-use",
            Self::Retry => "retry",
            Self::Expired => "expired",
            Self::UnknownKid => "unknown-kid",
        }
    }
}

/// Keys behind a URL, their cache and the one fetch in flight.
#[derive(Debug)]
struct UrlSource {
    /// The issuer's `iss`, for logs and metrics.
    issuer: String,
    /// The URL fetched.
    url: String,
    /// The URL as logs and health show it.
    shown: String,
    /// Which keys of a set are kept.
    filter: KeyFilter,
    /// Whether `Cache-Control: max-age` replaces the TTL (MicroProfile JWT).
    honours_max_age: bool,
    /// How long fetched keys are used.
    ttl: Duration,
    /// At most one fetch starts per this period.
    refetch_interval: Duration,
    /// The bounded GET.
    fetcher: Fetcher,
    /// Fetch counts and durations.
    metrics: Arc<UserKeyMetrics>,
    /// The cache; never held across an await.
    state: Mutex<State>,
    /// Counts finished fetches: waiters subscribe before the fetch can finish and wake on it.
    done: watch::Sender<u64>,
}

/// The last good keys and what happened since.
#[derive(Debug, Default)]
struct State {
    /// The keys of the last successful fetch.
    good: Option<Good>,
    /// A fetch is in flight.
    fetching: bool,
    /// When the last fetch started (for the refetch interval).
    last_start: Option<Instant>,
    /// Fetches finished, successful or not.
    finished: u64,
    /// The last fetch's failure; `None` after a success.
    failure: Option<Failure>,
    /// Whether the trust-all warning was logged.
    warned_trust_all: bool,
}

#[derive(Debug)]
struct Good {
    keys: Arc<UserKeySet>,
    /// Monotonic fetch time, for the TTL and ages.
    at: Instant,
    /// Wall-clock fetch time, for health.
    at_wall: SystemTime,
    /// The TTL these keys got.
    ttl: Duration,
}

#[derive(Debug)]
struct Failure {
    /// What went wrong, for logs and health.
    reason: String,
    /// Its `result` label (`unreachable`, `timeout`, …), for a refused caller.
    result: &'static str,
    /// When.
    at: SystemTime,
}

impl State {
    /// The keys to answer with now, or why a fetch is needed.
    fn lookup(&self, kid: Option<&str>, now: Instant) -> Result<Arc<UserKeySet>, Why> {
        let Some(good) = &self.good else {
            return Err(if self.finished == 0 {
                Why::FirstUse
            } else {
                Why::Retry
            });
        };
        if now.duration_since(good.at) >= good.ttl {
            return Err(Why::Expired);
        }
        match kid {
            Some(kid) if good.keys.form() == KeyForm::Set && !good.keys.contains_kid(kid) => {
                Err(Why::UnknownKid)
            }
            _ => Ok(Arc::clone(&good.keys)),
        }
    }

    /// Whatever is in hand: the last good keys, or why there are none.
    fn in_hand(&self) -> Result<Arc<UserKeySet>, KeysUnavailable> {
        match (&self.good, &self.failure) {
            (Some(good), _) => Ok(Arc::clone(&good.keys)),
            // The caller learns the kind of failure only: the reason may name hosts.
            (None, Some(failure)) => Err(KeysUnavailable {
                reason: format!(
                    "no key fetch has succeeded yet (the last one failed: {})",
                    failure.result
                ),
            }),
            (None, None) => Err(KeysUnavailable {
                reason: "no key fetch has succeeded yet".to_owned(),
            }),
        }
    }
}

impl UrlSource {
    fn new(
        settings: &UserIssuerSettings,
        url: &str,
        trust: &ServerTrust,
        options: FetchOptions,
        metrics: Arc<UserKeyMetrics>,
    ) -> Self {
        UrlSource {
            issuer: settings.policy.issuer.clone(),
            url: url.to_owned(),
            shown: shown_url(url),
            filter: settings.policy.key_filter(),
            honours_max_age: settings.policy.rules == IssuerRules::MicroProfileJwt,
            ttl: settings.key_cache_ttl,
            refetch_interval: settings.key_refetch_interval,
            fetcher: Fetcher::new(trust, options),
            metrics,
            state: Mutex::new(State::default()),
            done: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn keys(self: &Arc<Self>, kid: Option<&str>) -> Result<Arc<UserKeySet>, KeysUnavailable> {
        let mut done = {
            let mut state = self.lock();
            let now = Instant::now();
            let why = match state.lookup(kid, now) {
                Ok(keys) => return Ok(keys),
                Err(why) => why,
            };
            if !state.fetching {
                if state
                    .last_start
                    .is_some_and(|start| now.duration_since(start) < self.refetch_interval)
                {
                    return state.in_hand();
                }
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return Err(KeysUnavailable {
                        reason: "keys are fetched on a Tokio runtime and none is running"
                            .to_owned(),
                    });
                };
                state.fetching = true;
                state.last_start = Some(now);
                runtime.spawn(Arc::clone(self).fetch(why));
            }
            // Subscribed under the lock: the fetch marks its end under the same lock, so this
            // receiver sees it.
            self.done.subscribe()
        };
        let wait = self.fetcher.options().timeout + WAIT_GRACE;
        let _ = tokio::time::timeout(wait, done.changed()).await;
        self.lock().in_hand()
    }

    /// One fetch: GET, parse, record, log, wake the waiters.
    async fn fetch(self: Arc<Self>, why: Why) {
        self.warn_trust_all_once();
        let started = Instant::now();
        let result = self.fetcher.get(&self.url).await.and_then(|fetched| {
            let keys = UserKeySet::parse(&fetched.text, self.filter)
                .map_err(|e| FetchError::Invalid(e.to_string()))?;
            Ok((keys, fetched.max_age))
        });
        let took = started.elapsed();
        let finished_at = Instant::now();
        let mut state = self.lock();
        state.fetching = false;
        state.finished += 1;
        match result {
            Ok((keys, max_age)) => {
                self.metrics.fetched(&self.issuer, "ok", took);
                let (ttl, ttl_source) = match max_age {
                    Some(max_age) if self.honours_max_age => (max_age, "max-age"),
                    _ => (self.ttl, "configured"),
                };
                let count = keys.keys().len();
                let skipped = keys.skipped();
                state.good = Some(Good {
                    keys: Arc::new(keys),
                    at: finished_at,
                    at_wall: SystemTime::now(),
                    ttl,
                });
                state.failure = None;
                let finished = state.finished;
                drop(state);
                tracing::info!(
                    eventId = events::USER_KEYS_FETCHED,
                    issuer = %svcid_printable::escaped(&self.issuer),
                    url = %self.shown,
                    keys = count,
                    skipped,
                    ttl = %format_args!("{}s", ttl.as_secs()),
                    ttlSource = ttl_source,
                    why = why.as_str(),
                    ms = took.as_millis() as u64,
                    "Fetched the keys of a user-token issuer."
                );
                self.done.send_replace(finished);
            }
            Err(error) => {
                self.metrics.fetched(&self.issuer, error.result(), took);
                let reason = error.to_string();
                state.failure = Some(Failure {
                    reason: reason.clone(),
                    result: error.result(),
                    at: SystemTime::now(),
                });
                let kept = state
                    .good
                    .as_ref()
                    .map(|good| (good.keys.keys().len(), finished_at.duration_since(good.at)));
                let finished = state.finished;
                drop(state);
                // `keptKeys` and `keptAge` only when keys are kept: absent fields are not logged.
                let (kept_keys, kept_age) = kept.unzip();
                tracing::warn!(
                    eventId = events::USER_KEYS_FETCH_FAILED,
                    issuer = %svcid_printable::escaped(&self.issuer),
                    url = %self.shown,
                    reason = %reason,
                    result = error.result(),
                    why = why.as_str(),
                    kept = kept.is_some(),
                    keptKeys = kept_keys,
                    keptAge = kept_age.map(|age| tracing::field::display(format!("{}s", age.as_secs()))),
                    "{}",
                    if kept.is_some() {
                        "Could not fetch the keys of a user-token issuer; the last good keys stay in use."
                    } else {
                        "Could not fetch the keys of a user-token issuer; its tokens are refused until a fetch succeeds."
                    }
                );
                self.done.send_replace(finished);
            }
        }
    }

    /// With `trust-all`, an `https://` URL logs WARN `userKeysTrustAll` before its first fetch.
    fn warn_trust_all_once(&self) {
        if !self.fetcher.trusts_all() || !self.url.to_ascii_lowercase().starts_with("https:") {
            return;
        }
        let mut state = self.lock();
        if std::mem::replace(&mut state.warned_trust_all, true) {
            return;
        }
        drop(state);
        tracing::warn!(
            eventId = events::USER_KEYS_TRUST_ALL,
            issuer = %svcid_printable::escaped(&self.issuer),
            url = %self.shown,
            "User-token keys are fetched accepting any server certificate (trust-all): whoever can intercept the connection can hand this module keys of their own."
        );
    }

    fn state(&self) -> KeySourceState {
        let state = self.lock();
        let url = self.shown.clone();
        let now = Instant::now();
        match (&state.good, &state.failure) {
            (None, None) => KeySourceState::NotFetched { url },
            (None, Some(failure)) => KeySourceState::Unavailable {
                url,
                failed: failure.at,
                error: failure.reason.clone(),
            },
            (Some(good), Some(failure)) => KeySourceState::Stale {
                url,
                keys: good.keys.keys().len(),
                fetched: good.at_wall,
                failed: failure.at,
                error: failure.reason.clone(),
            },
            (Some(good), None) => {
                let ends = good.at_wall.checked_add(good.ttl).unwrap_or(good.at_wall);
                if now.duration_since(good.at) >= good.ttl {
                    KeySourceState::Expired {
                        url,
                        keys: good.keys.keys().len(),
                        fetched: good.at_wall,
                        expired: ends,
                    }
                } else {
                    KeySourceState::Fresh {
                        url,
                        keys: good.keys.keys().len(),
                        fetched: good.at_wall,
                        expires: ends,
                    }
                }
            }
        }
    }
}
