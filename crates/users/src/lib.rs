//! People calling the daemons: a `Bearer` token whose `iss` names a configured user-token issuer
//! (Keycloak or MicroProfile JWT, see `svcid_config::UserSettings`) is a user token. This crate routes it
//! to its issuer, finds that issuer's keys (loaded at start, or fetched from a URL and cached) and
//! verifies it with the identity crate's [`UserTokenVerifier`] into a [`UserIdentity`].
//!
//! It sits a floor above `svcid-identity`, which has no runtime and fetches nothing, and below the
//! gRPC glue and the HTTP port, which both authenticate people through [`Users`].
//!
//! - [`source`]: one issuer's keys: loaded, or fetched from a URL (cache, refetch, bounds).

pub mod source;

use std::sync::Arc;

use svcid_actuator::health::{Component, Status};
use svcid_actuator::metrics::Exposition;
use svcid_config::{ServerTrust, UserSettings};
use svcid_identity::clock::Clock;
use svcid_identity::user::{NotUserToken, UserIdentity, UserTokenError, UserTokenVerifier};

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
}

impl Users {
    /// The issuers of `settings`; `None` when none is configured (then only modules call). Keys
    /// behind an `https://` URL are fetched trusting `trust` (the module's client trust settings).
    pub fn new(
        settings: &UserSettings,
        trust: &ServerTrust,
        clock: Arc<dyn Clock>,
    ) -> Option<Self> {
        if settings.issuers.is_empty() {
            return None;
        }
        let policies = settings.issuers.iter().map(|i| i.policy.clone()).collect();
        // The configuration loader already refused duplicate and incomplete issuers.
        let verifier = UserTokenVerifier::new(policies, clock).ok()?;
        let sources = settings
            .issuers
            .iter()
            .map(|issuer| KeySource::new(issuer, trust))
            .collect();
        Some(Users { verifier, sources })
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

    /// The `userKeys` health component: the state of every issuer's keys. It never turns the
    /// module DOWN: modules keep calling whatever the identity provider does.
    pub fn health(&self) -> Component {
        let mut component = Component::new(Status::Up);
        for (issuer, state) in self.key_states() {
            component = component.with(&issuer, format!("{state:?}"));
        }
        component
    }

    /// Writes the key sources' metric families (fetches by result, keys held).
    pub fn render_metrics(&self, _out: &mut Exposition) {}
}
