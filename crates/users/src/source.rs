//! One issuer's keys: loaded at start (text or file), or behind a URL.
//!
//! PROVISIONAL: the URL side is being written (fetch on first need, cache for the TTL, one refetch
//! on an unknown `kid` at most once per min-time, single-flight, bounded size and time, last good
//! keys kept). Until then a URL source reports its keys unavailable.

use std::sync::Arc;

use svcid_config::{ServerTrust, UserIssuerSettings, UserKeySource};
use svcid_identity::user::UserKeySet;

/// The keys of one issuer.
#[derive(Debug)]
pub struct KeySource {
    /// Where they come from.
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Loaded { keys: Arc<UserKeySet>, from: String },
    Url { url: String },
}

/// The issuer's keys could not be had.
#[derive(Debug, thiserror::Error)]
#[error("the keys of this issuer are unavailable: {reason}")]
pub struct KeysUnavailable {
    /// Why, without secrets (the URL is shown without credentials).
    pub reason: String,
}

impl KeysUnavailable {
    /// The refusal reason code of a token whose issuer's keys are unavailable.
    pub const REASON: &'static str = "keys_unavailable";
}

/// What health and the console show of a key source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySourceState {
    /// Keys read at start; `from` is the property or file.
    Loaded { from: String, keys: usize },
    /// Keys behind a URL, not fetched yet.
    NotFetched { url: String },
}

impl KeySource {
    /// The source an issuer's settings describe; a URL is fetched trusting `trust`.
    pub fn new(settings: &UserIssuerSettings, _trust: &ServerTrust) -> Self {
        let inner = match &settings.keys {
            UserKeySource::Loaded { keys, from } => Inner::Loaded {
                keys: Arc::clone(keys),
                from: from.clone(),
            },
            UserKeySource::Url(url) => Inner::Url { url: url.clone() },
        };
        KeySource { inner }
    }

    /// The keys to verify a token with `kid` (unverified, from its header).
    pub async fn keys(&self, _kid: Option<&str>) -> Result<Arc<UserKeySet>, KeysUnavailable> {
        match &self.inner {
            Inner::Loaded { keys, .. } => Ok(Arc::clone(keys)),
            Inner::Url { .. } => Err(KeysUnavailable {
                reason: "fetching keys from a URL is not built yet".to_owned(),
            }),
        }
    }

    /// The state now.
    pub fn state(&self) -> KeySourceState {
        match &self.inner {
            Inner::Loaded { keys, from } => KeySourceState::Loaded {
                from: from.clone(),
                keys: keys.keys().len(),
            },
            Inner::Url { url } => KeySourceState::NotFetched { url: url.clone() },
        }
    }
}
