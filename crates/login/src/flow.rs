//! The browser's side of a login in flight: the random values of the authorization code flow
//! (`state`, `nonce`, the PKCE verifier and its S256 challenge) and the logins started but not yet
//! finished, each used at most once.
//!
//! A login is bound to the browser that started it: the module sets a short-lived cookie with a
//! random value when it sends the browser to the identity provider, and the provider's answer is
//! accepted only with that cookie and the `state` it went out with. A callback forged by someone
//! else (login CSRF) or replayed later finds no pending login.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest as _, Sha256};

/// How long a login may take between leaving for the provider and coming back.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Most logins in flight at once; the oldest is forgotten first.
pub const MAX_PENDING: usize = 1024;

/// 32 random bytes from the operating system, base64url: 43 characters, for `state`, `nonce`, a
/// PKCE verifier, a session id.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of `verifier`: base64url of its SHA-256.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A login sent to the provider and not yet back.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The value of the browser's login cookie.
    pub browser: String,
    /// The PKCE verifier, sent only with the code exchange.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The redirect URI the authorization request named (the exchange must repeat it).
    pub redirect_uri: String,
    /// When it was started.
    started: Instant,
}

impl Pending {
    /// A fresh login for `redirect_uri`, with new random values.
    pub fn start(redirect_uri: String) -> (String, Self) {
        let state = random_token();
        let pending = Pending {
            browser: random_token(),
            verifier: random_token(),
            nonce: random_token(),
            redirect_uri,
            started: Instant::now(),
        };
        (state, pending)
    }
}

/// Why a callback found no login to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// No login went out with this `state` (forged, replayed, or forgotten after a restart).
    UnknownState,
    /// It went out longer ago than [`LOGIN_TIMEOUT`].
    Expired,
    /// The browser that came back is not the one that left (its login cookie differs).
    OtherBrowser,
}

/// The logins in flight, keyed by `state`.
#[derive(Debug, Default)]
pub struct PendingLogins {
    by_state: Mutex<HashMap<String, Pending>>,
}

impl PendingLogins {
    /// Remembers `pending` under `state`; the oldest goes when [`MAX_PENDING`] are in flight.
    pub fn insert(&self, state: String, pending: Pending) {
        let mut by_state = self.lock();
        by_state.retain(|_, p| p.started.elapsed() < LOGIN_TIMEOUT);
        if by_state.len() >= MAX_PENDING
            && let Some(oldest) = by_state
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(s, _)| s.clone())
        {
            by_state.remove(&oldest);
        }
        by_state.insert(state, pending);
    }

    /// Takes the login that went out with `state` from the browser holding the login cookie
    /// `browser`. A `state` is taken once whatever the outcome, so a second callback with it
    /// fails.
    pub fn take(&self, state: &str, browser: Option<&str>) -> Result<Pending, Unmatched> {
        let pending = self.lock().remove(state).ok_or(Unmatched::UnknownState)?;
        if pending.started.elapsed() >= LOGIN_TIMEOUT {
            return Err(Unmatched::Expired);
        }
        if browser != Some(pending.browser.as_str()) {
            return Err(Unmatched::OtherBrowser);
        }
        Ok(pending)
    }

    /// Logins in flight.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.by_state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636_s256() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(random_token().len(), 43);
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn a_state_is_taken_once_and_only_by_its_browser() {
        let logins = PendingLogins::default();
        let (state, pending) = Pending::start("http://h/console/login/callback".into());
        let browser = pending.browser.clone();
        logins.insert(state.clone(), pending.clone());
        assert_eq!(
            logins.take(&state, Some("other")).unwrap_err(),
            Unmatched::OtherBrowser
        );
        // Taken by the failed attempt: the right browser cannot use it any more either.
        assert_eq!(
            logins.take(&state, Some(&browser)).unwrap_err(),
            Unmatched::UnknownState
        );
        logins.insert(state.clone(), pending);
        assert_eq!(
            logins.take(&state, Some(&browser)).unwrap().browser,
            browser
        );
        assert_eq!(
            logins.take(&state, Some(&browser)).unwrap_err(),
            Unmatched::UnknownState
        );
        assert!(logins.is_empty());
    }
}
