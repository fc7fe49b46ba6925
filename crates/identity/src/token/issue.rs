//! Minting this module's tokens: [`TokenIssuer`] and the signing state derived from one
//! generator key.
//!
//! What a token says depends on the receiver's [`TokenProfile`]: a strict peer's tokens name its
//! module type in `aud`; a product peer's tokens have no `aud`, because the product's Python module
//! refuses every token that carries one (docs/wire.md). Both carry a fresh `jti`, although the
//! product's Java modules mint none: every product verifier ignores it (nimbus and PyJWT 2.1 accept
//! unknown and unchecked claims), and it is what our own refusal and request logs correlate a call
//! with, so leaving it out would cost diagnostics and buy no compatibility.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{TokenProfile, lock};
use crate::clock::Clock;
use crate::es256::{Es256Signer, SIGNATURE_BYTES};
use crate::identity::ImpersonatedUser;
use crate::jwk::{BASE64URL_STRICT, ES256, GeneratorKey, KeyError};

/// Mints this module's tokens. The key can be replaced while the module runs (key rotation);
/// tokens already handed out stay valid at peers until they expire or the old key is revoked.
pub struct TokenIssuer {
    /// The key in use; replaced whole by [`TokenIssuer::replace_key`].
    signing: RwLock<Arc<SigningState>>,
    /// Token lifetime in whole seconds (at least 1); read by the tests of the rounding.
    pub(super) lifetime_secs: i64,
    /// Source of `iat`.
    clock: Arc<dyn Clock>,
    /// The tokens `token_for_peer` hands out until their renewal time.
    reusable: Mutex<Reusable>,
    /// Tokens signed so far (reuses not counted), for the daemons' metrics.
    minted: AtomicU64,
}

/// Everything derived from one generator key, prepared once.
struct SigningState {
    /// The generator key's `kid`, put in every header.
    kid: String,
    /// OpenSSL-backed ES256 signer.
    signer: Es256Signer,
    /// Pure-Rust signer for the same key, used only if OpenSSL ever fails, so minting cannot fail.
    fallback: p256::ecdsa::SigningKey,
    /// The header never changes for a key, so its base64url form is computed once.
    header_b64: String,
}

impl SigningState {
    fn new(key: &GeneratorKey) -> Result<Self, KeyError> {
        let signer =
            Es256Signer::new(key.secret()).map_err(|detail| KeyError::Crypto { detail })?;
        let header = json!({"alg": ES256, "typ": "JWT", "kid": key.kid()}).to_string();
        Ok(SigningState {
            kid: key.kid().to_owned(),
            signer,
            fallback: p256::ecdsa::SigningKey::from(key.secret()),
            header_b64: BASE64URL_STRICT.encode(header),
        })
    }

    /// `header.claims.signature`, signed with OpenSSL or, should it ever fail, the fallback.
    fn sign(&self, claims: Map<String, Value>) -> String {
        let signing_input = format!(
            "{}.{}",
            self.header_b64,
            BASE64URL_STRICT.encode(Value::Object(claims).to_string())
        );
        let signature: [u8; SIGNATURE_BYTES] = match self.signer.sign(signing_input.as_bytes()) {
            Some(signature) => signature,
            None => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature =
                    self.fallback.sign(signing_input.as_bytes());
                signature.to_bytes().into()
            }
        };
        format!("{signing_input}.{}", BASE64URL_STRICT.encode(signature))
    }
}

/// The minted tokens kept for reuse, one per distinct set of claims.
#[derive(Default)]
struct Reusable {
    /// Strict tokens, by the `aud` they carry.
    by_audience: HashMap<String, ReusableToken>,
    /// The product token: it names no receiver, so one serves every product peer.
    without_audience: Option<ReusableToken>,
}

impl Reusable {
    /// Where the token for `audience` under `profile` is kept.
    fn slot(&self, audience: &str, profile: TokenProfile) -> Option<&ReusableToken> {
        if profile.sends_audience() {
            self.by_audience.get(audience)
        } else {
            self.without_audience.as_ref()
        }
    }

    fn keep(&mut self, audience: &str, profile: TokenProfile, token: ReusableToken) {
        if profile.sends_audience() {
            self.by_audience.insert(audience.to_owned(), token);
        } else {
            self.without_audience = Some(token);
        }
    }
}

/// A minted token kept for reuse.
struct ReusableToken {
    /// The compact JWS.
    token: String,
    /// When it was minted; a clock that went back before this forces a fresh token.
    iat: i64,
    /// From this time on a fresh token is minted (about a third of the lifetime before `exp`).
    renew_at: i64,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid())
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer signing with `key`; tokens live `lifetime` (rounded up to whole seconds, at least 1).
    /// Fails only if OpenSSL refuses the key.
    pub fn new(
        key: GeneratorKey,
        lifetime: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeyError> {
        let whole_secs = lifetime.as_secs() + u64::from(lifetime.subsec_nanos() > 0);
        Ok(TokenIssuer {
            signing: RwLock::new(Arc::new(SigningState::new(&key)?)),
            lifetime_secs: i64::try_from(whole_secs).unwrap_or(i64::MAX).max(1),
            clock,
            reusable: Mutex::new(Reusable::default()),
            minted: AtomicU64::new(0),
        })
    }

    /// How many tokens this issuer has signed (a reused token counts once).
    pub fn minted(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }

    /// Switches to another generator key: every token minted from now on carries its `kid`.
    /// Reusable tokens of the old key are dropped. Returns the old `kid`.
    pub fn replace_key(&self, key: &GeneratorKey) -> Result<String, KeyError> {
        let state = Arc::new(SigningState::new(key)?);
        let mut reusable = lock(&self.reusable);
        let old = std::mem::replace(
            &mut *self.signing.write().unwrap_or_else(PoisonError::into_inner),
            state,
        );
        *reusable = Reusable::default();
        Ok(old.kid.clone())
    }

    /// A token for calls to a strict peer of module type `audience`, reused until about a third
    /// of its lifetime is left: `token_for_peer(audience, TokenProfile::Strict)`.
    pub fn token_for(&self, audience: &str) -> String {
        self.token_for_peer(audience, TokenProfile::Strict)
    }

    /// A token for calls to a peer of module type `audience` whose deployment has `profile`,
    /// reused until about a third of its lifetime is left. A `product` peer's token carries no
    /// `aud` (so `audience` only names the receiver); tokens are kept apart by profile, so a
    /// strict peer never gets an audience-less token.
    pub fn token_for_peer(&self, audience: &str, profile: TokenProfile) -> String {
        let now = self.clock.now_unix();
        let mut reusable = lock(&self.reusable);
        if let Some(kept) = reusable.slot(audience, profile)
            && kept.iat <= now
            && now < kept.renew_at
        {
            return kept.token.clone();
        }
        let token = self.mint_at(now, audience, profile, None);
        reusable.keep(
            audience,
            profile,
            ReusableToken {
                token: token.clone(),
                iat: now,
                renew_at: now.saturating_add(self.lifetime_secs - self.lifetime_secs / 3),
            },
        );
        token
    }

    /// A fresh token for a strict peer of module type `audience`, acting for `user` when given
    /// (never cached): `mint_for_peer(audience, TokenProfile::Strict, user)`.
    pub fn mint(&self, audience: &str, user: Option<&ImpersonatedUser>) -> String {
        self.mint_for_peer(audience, TokenProfile::Strict, user)
    }

    /// A fresh token for a peer of module type `audience` whose deployment has `profile`, acting
    /// for `user` when given (never cached). A `product` peer's token carries no `aud`.
    pub fn mint_for_peer(
        &self,
        audience: &str,
        profile: TokenProfile,
        user: Option<&ImpersonatedUser>,
    ) -> String {
        self.mint_at(self.clock.now_unix(), audience, profile, user)
    }

    /// The `kid` in this issuer's headers (of the key in use now).
    pub fn kid(&self) -> String {
        self.signing().kid.clone()
    }

    fn signing(&self) -> Arc<SigningState> {
        Arc::clone(&self.signing.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn mint_at(
        &self,
        iat: i64,
        audience: &str,
        profile: TokenProfile,
        user: Option<&ImpersonatedUser>,
    ) -> String {
        self.minted.fetch_add(1, Ordering::Relaxed);
        let mut claims = Map::new();
        claims.insert("iat".into(), iat.into());
        claims.insert("nbf".into(), iat.into());
        claims.insert("exp".into(), iat.saturating_add(self.lifetime_secs).into());
        if profile.sends_audience() {
            claims.insert("aud".into(), audience.into());
        }
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        if let Some(user) = user {
            claims.insert(
                "usr".into(),
                json!({"id": user.id, "username": user.username, "roles": user.roles}),
            );
        }
        self.signing().sign(claims)
    }
}
