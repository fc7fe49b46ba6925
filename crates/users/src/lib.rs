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

pub mod events;
pub mod fetch;
pub mod source;

use std::sync::Arc;

use serde_json::{Map, Value};
use svcid_actuator::health::{Component, Status};
use svcid_actuator::instruments::UserKeyMetrics;
use svcid_actuator::metrics::Exposition;
use svcid_actuator::rfc3339;
use svcid_config::{ServerTrust, UserSettings};
use svcid_identity::clock::Clock;
use svcid_identity::user::{NotUserToken, UserIdentity, UserTokenError, UserTokenVerifier};

pub use fetch::{FetchError, FetchOptions};
pub use source::{KeySource, KeySourceState, KeysUnavailable};

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

/// The user-token issuers of one module and their keys. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Users {
    /// Routes and verifies; holds the issuers' rules.
    verifier: UserTokenVerifier,
    /// The keys of `verifier.issuers()[i]` are `sources[i]`.
    sources: Vec<KeySource>,
    /// Key fetches of every issuer.
    metrics: Arc<UserKeyMetrics>,
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
        let verifier = UserTokenVerifier::new(policies, clock).ok()?;
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
        })
    }

    /// Whether `token` names a configured issuer (read without trusting it): only then is it
    /// authenticated here; anything else is verified as a module token.
    pub fn is_user_token(&self, token: &str) -> bool {
        self.verifier.route(token).is_ok()
    }

    /// The `iss` and `kid` a user token claims (read without trusting it), for the log line of a
    /// refusal; `None` when it is not a user token.
    pub fn claimed_origin(&self, token: &str) -> Option<(String, Option<String>)> {
        let routed = self.verifier.route(token).ok()?;
        Some((
            routed.issuer().issuer.clone(),
            routed.kid().map(str::to_owned),
        ))
    }

    /// Verifies `token` with its issuer's keys, fetching them first when needed.
    pub async fn authenticate(&self, token: &str) -> Result<UserIdentity, UserAuthError> {
        let (index, kid) = {
            let routed = self.verifier.route(token)?;
            let index = self
                .verifier
                .issuers()
                .iter()
                .position(|p| std::ptr::eq(p, routed.issuer()))
                .unwrap_or_default();
            (index, routed.kid().map(str::to_owned))
        };
        let keys = self.sources[index].keys(kid.as_deref()).await?;
        let routed = self.verifier.route(token)?;
        Ok(routed.verify(&keys)?)
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
