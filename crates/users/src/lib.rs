//! People calling the daemons: a `Bearer` token whose `iss` names a configured user-token issuer
//! (Keycloak or MicroProfile JWT, see `svcid_config::UserSettings`) is a user token. This crate routes it
//! to its issuer, finds that issuer's keys (loaded at start, or fetched from a URL and cached) and
//! verifies it with the identity crate's [`UserTokenVerifier`] into a [`UserIdentity`].
//!
//! It sits a floor above `svcid-identity`, which has no runtime and fetches nothing, and below the
//! gRPC glue and the HTTP port, which both authenticate people through [`Users`].
//!
//! - [`source`]: one issuer's keys: loaded, or fetched from a URL (cache, refetch, single flight,
//!   last good keys kept);
//! - [`fetch`]: the bounded `GET` of a key URL (size, time, no redirects, the module's trust);
//! - [`events`]: the log event ids.
//!
//! Verified user tokens are remembered by their exact text (at most [`USER_TOKEN_CACHE_CAPACITY`]),
//! so a person's repeated calls skip the signature check. An entry is used only before the
//! token's `exp` (never later, whatever the clock skew allows) and only while its issuer's keys
//! in force are still the very key set it was verified with: a refetch (rotation, expired TTL)
//! sends every token of that issuer through the full check again, so a key dropped by the identity
//! provider keeps no token alive.

pub mod events;
pub mod fetch;
pub mod source;

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};
use svcid_actuator::health::{Component, Status};
use svcid_actuator::instruments::UserKeyMetrics;
use svcid_actuator::metrics::Exposition;
use svcid_actuator::rfc3339;
use svcid_config::{ServerTrust, UserSettings};
use svcid_identity::cache::VerifiedTokens;
use svcid_identity::clock::Clock;
use svcid_identity::user::{
    NotUserToken, TokenText, UserIdentity, UserKeySet, UserTokenError, UserTokenVerifier,
};

pub use fetch::{FetchError, FetchOptions};

/// A person's token as a request presents it ([`Users::person_in`]).
#[derive(Debug)]
pub enum PersonsToken<'t> {
    /// Verified before: the cache's answer.
    Known(UserIdentity),
    /// Not verified yet: the token, for [`Users::authenticate`].
    New(&'t str),
}
pub use source::{KeySource, KeySourceState, KeysUnavailable};

/// Verified user tokens remembered at most, all issuers together (about one live token per person
/// calling within a token's lifetime). Under a storm of distinct tokens the cache stays at this
/// bound; only tokens that passed every check enter it.
pub const USER_TOKEN_CACHE_CAPACITY: usize = 1024;

/// Why a user token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum UserAuthError {
    /// The token names no configured issuer: verify it as a module token instead.
    #[error("not a user token: {0}")]
    NotUserToken(#[from] NotUserToken),
    /// The token was checked against its issuer's keys and refused.
    #[error(transparent)]
    Token(#[from] UserTokenError),
    /// The issuer's keys could not be had (never fetched successfully, and the fetch failed now).
    #[error(transparent)]
    KeysUnavailable(#[from] KeysUnavailable),
}

impl UserAuthError {
    /// The stable reason code, for logs, metrics and the status text.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotUserToken(e) => e.reason(),
            Self::Token(e) => e.reason(),
            Self::KeysUnavailable(_) => KeysUnavailable::REASON,
        }
    }
}

/// A person's token refused ([`Users::verify_person`]): why, and where it claimed to come from.
#[derive(Debug)]
pub struct RefusedToken {
    /// Why it was refused.
    pub error: UserAuthError,
    /// The issuer and `kid` it named, read without trusting them; `None` when it named no
    /// configured issuer (or could not be read far enough to tell).
    pub origin: Option<ClaimedOrigin>,
}

/// Where a person's token claims to come from, read before any check: for a refusal's log line,
/// never for a decision.
#[derive(Debug, Clone, Default)]
pub struct ClaimedOrigin {
    /// The configured issuer whose `iss` the token names.
    pub issuer: String,
    /// The `kid` of its header, when it has one.
    pub kid: Option<String>,
}

/// The user-token issuers of one module and their keys. Share it behind an `Arc`.
pub struct Users {
    /// Routes and verifies; holds the issuers' rules.
    verifier: UserTokenVerifier,
    /// The keys of `verifier.issuers()[i]` are `sources[i]`.
    sources: Vec<KeySource>,
    /// Key fetches of every issuer, and the cache's hits and misses.
    metrics: Arc<UserKeyMetrics>,
    /// Source of "now" for the cache's `exp` check (the verifier's clock).
    clock: Arc<dyn Clock>,
    /// Tokens already verified, so repeated calls skip the signature check.
    verified: Mutex<VerifiedTokens<Verified>>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("verifier", &self.verifier)
            .field("sources", &self.sources)
            .field("cached", &self.cache().len())
            .finish_non_exhaustive()
    }
}

/// One remembered verification.
#[derive(Debug)]
struct Verified {
    /// Who the token proved.
    identity: UserIdentity,
    /// The index of its issuer in `Users::sources`.
    issuer: usize,
    /// The key set it was verified with: the entry counts only while this set is in force.
    keys: Arc<UserKeySet>,
}

impl Users {
    /// The issuers of `settings`; `None` when none is configured (then only modules call). Keys
    /// behind an `https://` URL are fetched trusting `trust` (the module's client trust settings).
    ///
    /// Nothing is fetched here: keys behind a URL are fetched when a token first needs them, so a
    /// module starts while its identity provider is down. Fetches are bounded by
    /// [`FetchOptions::default`] (5 s for the whole request).
    pub fn new(
        settings: &UserSettings,
        trust: &ServerTrust,
        clock: Arc<dyn Clock>,
    ) -> Option<Self> {
        Self::with_options(settings, trust, clock, FetchOptions::default())
    }

    /// [`Users::new`] with other time bounds for key fetches (tests use short ones).
    pub fn with_options(
        settings: &UserSettings,
        trust: &ServerTrust,
        clock: Arc<dyn Clock>,
        options: FetchOptions,
    ) -> Option<Self> {
        if settings.issuers.is_empty() {
            return None;
        }
        let policies = settings.issuers.iter().map(|i| i.policy.clone()).collect();
        // The configuration loader already refused duplicate and incomplete issuers.
        let verifier = UserTokenVerifier::new(policies, Arc::clone(&clock)).ok()?;
        let metrics = Arc::new(UserKeyMetrics::default());
        let sources = settings
            .issuers
            .iter()
            .map(|issuer| KeySource::with_options(issuer, trust, options, Arc::clone(&metrics)))
            .collect();
        Some(Users {
            verifier,
            sources,
            metrics,
            clock,
            verified: Mutex::new(VerifiedTokens::new(USER_TOKEN_CACHE_CAPACITY)),
        })
    }

    /// Whether `token` names a configured issuer (read without trusting it): only then is it
    /// authenticated here; anything else is verified as a module token.
    fn is_user_token(&self, token: &str) -> bool {
        self.verifier
            .route(token, &mut TokenText::default())
            .is_ok()
    }

    /// The person's token in one `authorization` value, with the scheme as sent: `Bearer <t>`
    /// (scheme in any case) where `t` is in the cache (a hit, counted: the identity is the
    /// cache's answer) or names a configured issuer. `None` leaves the value to the module-token
    /// verifier. The cache is asked first: looking a token up is cheaper than reading it.
    pub fn person_in<'v>(&self, value: &'v str) -> Option<(&'v str, PersonsToken<'v>)> {
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim_start_matches(' ');
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        if let Some(identity) = self.remembered(token, self.clock.now_unix()) {
            self.metrics.token_cache(true);
            return Some((scheme, PersonsToken::Known(identity)));
        }
        self.is_user_token(token)
            .then_some((scheme, PersonsToken::New(token)))
    }

    /// Verifies `token` with its issuer's keys, fetching them first when needed; a token verified
    /// before is answered from the cache (see the crate docs).
    pub async fn authenticate(&self, token: &str) -> Result<UserIdentity, UserAuthError> {
        self.verify_person(token)
            .await
            .map_err(|refused| refused.error)
    }

    /// [`Users::authenticate`], with a refusal telling where the token claimed to come from, for
    /// its log line: the token is read once, whatever the outcome.
    pub async fn verify_person(&self, token: &str) -> Result<UserIdentity, RefusedToken> {
        let now = self.clock.now_unix();
        if let Some(identity) = self.remembered(token, now) {
            self.metrics.token_cache(true);
            return Ok(identity);
        }
        let mut text = TokenText::default();
        let routed = self
            .verifier
            .route(token, &mut text)
            .map_err(|error| RefusedToken {
                error: error.into(),
                origin: None,
            })?;
        let refused = |error: UserAuthError| RefusedToken {
            error,
            origin: Some(ClaimedOrigin {
                issuer: routed.issuer().issuer.clone(),
                kid: routed.kid().map(str::to_owned),
            }),
        };
        let index = self
            .verifier
            .issuers()
            .iter()
            .position(|p| std::ptr::eq(p, routed.issuer()))
            .unwrap_or_default();
        self.metrics.token_cache(false);
        let keys = match self.sources[index].keys(routed.kid()).await {
            Ok(keys) => keys,
            Err(unavailable) => return Err(refused(unavailable.into())),
        };
        let identity = routed
            .verify(&keys)
            .map_err(|error| refused(error.into()))?;
        if let Some(exp) = routed.expires() {
            let entry = Verified {
                identity: identity.clone(),
                issuer: index,
                keys,
            };
            self.cache()
                .remember(token, entry, exp, |exp| usable(now, exp));
        }
        Ok(identity)
    }

    /// Entries in the verified-user-token cache now.
    pub fn cached_tokens(&self) -> usize {
        self.cache().len()
    }

    /// User tokens answered from the cache and checked in full so far: `(hits, misses)`.
    pub fn token_cache_counts(&self) -> (u64, u64) {
        self.metrics.token_cache_counts()
    }

    /// The identity `token` proved earlier, when its entry is before the token's `exp` and its
    /// issuer's keys in force are the set it was verified with; a stale entry is forgotten.
    fn remembered(&self, token: &str, now: i64) -> Option<UserIdentity> {
        let mut cache = self.cache();
        let entry = cache.get(token, |exp| usable(now, exp))?;
        let in_force = self
            .sources
            .get(entry.issuer)
            .and_then(KeySource::keys_in_force);
        if in_force.is_some_and(|keys| Arc::ptr_eq(&keys, &entry.keys)) {
            return Some(entry.identity.clone());
        }
        cache.forget(token);
        None
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VerifiedTokens<Verified>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Each issuer's `iss` and the state of its keys, for health and the console.
    pub fn key_states(&self) -> Vec<(String, KeySourceState)> {
        self.verifier
            .issuers()
            .iter()
            .zip(&self.sources)
            .map(|(policy, source)| (policy.issuer.clone(), source.state()))
            .collect()
    }

    /// The `userKeys` health component: per issuer (its `iss`), the state of its keys
    /// (`loaded`, `not-fetched`, `fresh`, `expired`, `stale`, `unavailable`), the URL, how many
    /// keys are in use, when they were fetched and the last error. It is always `UP`: modules keep
    /// calling whatever the identity provider does, so an unreachable one must not take the
    /// module out of a load balancer; the state in the details says what people meet.
    pub fn health(&self) -> Component {
        let mut component = Component::new(Status::Up);
        for (issuer, state) in self.key_states() {
            component = component.with(&issuer, state_details(&state));
        }
        component
    }

    /// Fetches of `issuer`'s keys that ended with `result` (`ok`, or a [`FetchError::result`]).
    pub fn fetch_count(&self, issuer: &str, result: &str) -> u64 {
        self.metrics.fetches(issuer, result)
    }

    /// Writes the key sources' metric families: keys in use per issuer, fetches by issuer and
    /// result, fetch durations.
    pub fn render_metrics(&self, out: &mut Exposition) {
        let states = self.key_states();
        let keys: Vec<(&str, usize)> = states
            .iter()
            .map(|(issuer, state)| (issuer.as_str(), state.keys()))
            .collect();
        self.metrics.render(out, &keys);
    }
}

/// Whether a cache entry for a token with `exp` may answer at `now`: strictly before `exp`, with
/// no clock-skew leeway (the full check applies that).
fn usable(now: i64, exp: i64) -> bool {
    now < exp
}

/// One issuer's health details.
fn state_details(state: &KeySourceState) -> Value {
    let mut details = Map::new();
    details.insert("state".to_owned(), state.name().into());
    let mut put = |key: &str, value: Value| {
        details.insert(key.to_owned(), value);
    };
    match state {
        KeySourceState::Loaded { from, keys } => {
            put("from", from.as_str().into());
            put("keys", (*keys).into());
        }
        KeySourceState::NotFetched { url } => put("url", url.as_str().into()),
        KeySourceState::Fresh {
            url,
            keys,
            fetched,
            expires,
        } => {
            put("url", url.as_str().into());
            put("keys", (*keys).into());
            put("lastFetch", rfc3339(*fetched).into());
            put("expires", rfc3339(*expires).into());
        }
        KeySourceState::Expired {
            url,
            keys,
            fetched,
            expired,
        } => {
            put("url", url.as_str().into());
            put("keys", (*keys).into());
            put("lastFetch", rfc3339(*fetched).into());
            put("expired", rfc3339(*expired).into());
        }
        KeySourceState::Stale {
            url,
            keys,
            fetched,
            failed,
            error,
        } => {
            put("url", url.as_str().into());
            put("keys", (*keys).into());
            put("lastFetch", rfc3339(*fetched).into());
            put("lastFailure", rfc3339(*failed).into());
            put("lastError", error.as_str().into());
        }
        KeySourceState::Unavailable { url, failed, error } => {
            put("url", url.as_str().into());
            put("keys", 0.into());
            put("lastFailure", rfc3339(*failed).into());
            put("lastError", error.as_str().into());
        }
    }
    Value::Object(details)
}
