//! ES256 service tokens: minting with this module's key and strict verification of peers' tokens.
//!
//! [`TokenIssuer`] signs compact JWS tokens with an OpenSSL-backed ES256 signer and reuses a
//! token per audience until about a third of its lifetime is left. [`TokenVerifier`] turns the
//! `authorization` metadata of one call into a [`CallerIdentity`] or a precise [`AuthError`]. It does
//! its own parsing of the compact JWS (so the order of checks and the refusal reasons are ours, not a
//! library's) and only hands the final signature check to an OpenSSL key prepared when the
//! registry was built (`es256`). This module knows nothing about gRPC: the daemons pass metadata
//! bytes in and map errors to `UNAUTHENTICATED` themselves.
//!
//! # Validation policy
//!
//! Checked, in this order, each failure with its own [`AuthError::reason`] code:
//!
//! | # | check | reason |
//! |---|---|---|
//! | 1 | exactly one `authorization` value | `missing_authorization`, `multiple_authorization` |
//! | 2 | the value is not empty | `empty_authorization` |
//! | 3 | at most [`MAX_TOKEN_BYTES`] bytes, before any decoding | `token_too_large` |
//! | 4 | scheme `Internal-jwt` or `Bearer` (any case) | `unknown_scheme` |
//! | 5 | one space, then a non-empty token | `missing_token`, `malformed_authorization` |
//! | 6 | exactly three `.`-separated segments, none empty | `segment_count`, `empty_segment` |
//! | 7 | each segment strict base64url: no padding, no `+`/`/`, no whitespace, no stray bits | `bad_base64` |
//! | 8 | header is a strict JSON object (UTF-8, no duplicate member at any depth, depth ≤ 32) | `invalid_header` |
//! | 9 | `alg` present and exactly the string `ES256` | `missing_alg`, `alg_refused` |
//! | 10 | no `jwk`, `jku`, `x5u`, `x5c` or `crit` in the header: no key is ever taken from a token | `forbidden_header_member` |
//! | 11 | `typ` absent or exactly `JWT` | `bad_typ` |
//! | 12 | `kid` a string equal to a configured fingerprint, byte for byte | `missing_kid`, `invalid_kid`, `unknown_kid` |
//! | 13 | `alg` equals the key's `alg` | `alg_key_mismatch` |
//! | 14 | the key is not revoked | `revoked_key` |
//! | 15 | signature exactly 64 bytes r‖s (DER refused), r and s non-zero, valid over `header.payload` | `bad_signature_length`, `bad_signature` |
//! | 16 | claims are a strict JSON object | `invalid_claims` |
//! | 17 | `iat`, `nbf`, `exp` present as non-negative integer JSON numbers | `missing_time_claim`, `invalid_time_claim` |
//! | 18 | `iat` and `nbf` ≤ now + skew | `not_yet_valid` |
//! | 19 | now ≤ `exp` + skew (equality accepted) | `expired` |
//! | 20 | `exp` − `iat` ≤ the maximum lifetime | `lifetime_too_long` |
//! | 21 | `aud` (string or array of strings) contains this module's type; required unless the policy says otherwise; a wrong JSON type is always refused | `missing_aud`, `invalid_aud`, `wrong_aud` |
//! | 22 | `jti`, when present, is a string | `invalid_jti` |
//! | 23 | `usr`, when present, is `{id, username, roles}` and the peer holds the impersonation role | `invalid_usr`, `impersonation_not_allowed` |
//!
//! Not checked: `iss` and `sub` (the peer is identified by its key alone), and any other claim.
//! `roles` or `module` claims are ignored: the identity is the local deployment's module, name and
//! roles. Fractional NumericDates are refused (svcid mints integers).
//!
//! Verified tokens are cached by their full text until they expire; a cache hit re-checks `exp`
//! against the clock, and [`TokenVerifier::replace_registry`] empties the cache in the same step
//! that installs the new registry, so a revoked key's cached tokens are refused at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::es256::{Es256Signer, SIGNATURE_BYTES};
use crate::identity::{CallerIdentity, ImpersonatedUser, ServiceIdentity};
use crate::jwk::{BASE64URL_STRICT, ES256, GeneratorKey, KeyError};
use crate::printable::{EXCERPT_CHARS, excerpt, json_type};
use crate::registry::{DeploymentRegistry, RegistryDiff};
use crate::strict_json::{self, StrictJsonError};

/// The largest `authorization` value accepted, in bytes; larger ones are refused before decoding.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Default leeway on `iat`, `nbf` and `exp` (`…jwt.clock-skew`).
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Default ceiling on `exp - iat` (`…jwt.max-token-lifetime`).
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(4 * 60 * 60);
/// Default role a peer needs to send a `usr` claim (`…jwt.impersonation-role`).
pub const DEFAULT_IMPERSONATION_ROLE: &str = "IMPERSONATION";

/// Verified tokens remembered at most; enough for every live token of a large deployment.
const VERIFIED_CACHE_CAPACITY: usize = 4096;
/// Schemes accepted before the token, compared without regard to ASCII case.
const SCHEMES: [&str; 2] = ["Internal-jwt", "Bearer"];
/// Header members that would let a token choose or fetch its own key (RFC 8725 §3.10).
const FORBIDDEN_HEADER_MEMBERS: [&str; 5] = ["jwk", "jku", "x5u", "x5c", "crit"];

/// Mints this module's tokens. The key can be replaced while the module runs (key rotation);
/// tokens already handed out stay valid at peers until they expire or the old key is revoked.
pub struct TokenIssuer {
    /// The key in use; replaced whole by [`TokenIssuer::replace_key`].
    signing: RwLock<Arc<SigningState>>,
    /// Token lifetime in whole seconds (at least 1).
    lifetime_secs: i64,
    /// Source of `iat`.
    clock: Arc<dyn Clock>,
    /// Audience → the token `token_for` hands out until its renewal time.
    reusable: Mutex<HashMap<String, ReusableToken>>,
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
            reusable: Mutex::new(HashMap::new()),
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
        reusable.clear();
        Ok(old.kid.clone())
    }

    /// A token for calls to `audience`, reused until about a third of its lifetime is left.
    pub fn token_for(&self, audience: &str) -> String {
        let now = self.clock.now_unix();
        let mut reusable = lock(&self.reusable);
        if let Some(kept) = reusable.get(audience)
            && kept.iat <= now
            && now < kept.renew_at
        {
            return kept.token.clone();
        }
        let token = self.mint_at(now, audience, None);
        reusable.insert(
            audience.to_owned(),
            ReusableToken {
                token: token.clone(),
                iat: now,
                renew_at: now.saturating_add(self.lifetime_secs - self.lifetime_secs / 3),
            },
        );
        token
    }

    /// A fresh token for `audience`, acting for `user` when given (never cached).
    pub fn mint(&self, audience: &str, user: Option<&ImpersonatedUser>) -> String {
        self.mint_at(self.clock.now_unix(), audience, user)
    }

    /// The `kid` in this issuer's headers (of the key in use now).
    pub fn kid(&self) -> String {
        self.signing().kid.clone()
    }

    fn signing(&self) -> Arc<SigningState> {
        Arc::clone(&self.signing.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn mint_at(&self, iat: i64, audience: &str, user: Option<&ImpersonatedUser>) -> String {
        self.minted.fetch_add(1, Ordering::Relaxed);
        let signing = self.signing();
        let mut claims = Map::new();
        claims.insert("iat".into(), iat.into());
        claims.insert("nbf".into(), iat.into());
        claims.insert("exp".into(), iat.saturating_add(self.lifetime_secs).into());
        claims.insert("aud".into(), audience.into());
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        if let Some(user) = user {
            claims.insert(
                "usr".into(),
                json!({"id": user.id, "username": user.username, "roles": user.roles}),
            );
        }
        let signing_input = format!(
            "{}.{}",
            signing.header_b64,
            BASE64URL_STRICT.encode(Value::Object(claims).to_string())
        );
        let signature: [u8; SIGNATURE_BYTES] = match signing.signer.sign(signing_input.as_bytes()) {
            Some(signature) => signature,
            None => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature =
                    signing.fallback.sign(signing_input.as_bytes());
                signature.to_bytes().into()
            }
        };
        format!("{signing_input}.{}", BASE64URL_STRICT.encode(signature))
    }
}

/// What a server accepts, from its configuration.
#[derive(Clone, Debug)]
pub struct VerifyPolicy {
    /// This server's module type (`dpm`): the audience tokens must name.
    pub module: String,
    /// Leeway on `iat`, `nbf` and `exp` for clocks that disagree (default 60 s).
    pub clock_skew: Duration,
    /// Tokens whose `exp - iat` is longer are refused, bounding a stolen token's use (default 4 h).
    pub max_token_lifetime: Duration,
    /// Refuse tokens without `aud` (default true; false admits the product's original tokens).
    pub require_audience: bool,
    /// Role a peer needs to act for a user via `usr` (default `IMPERSONATION`).
    pub impersonation_role: String,
}

impl VerifyPolicy {
    /// The default policy for a server of module type `module`.
    pub fn new(module: impl Into<String>) -> Self {
        VerifyPolicy {
            module: module.into(),
            clock_skew: DEFAULT_CLOCK_SKEW,
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
            require_audience: true,
            impersonation_role: DEFAULT_IMPERSONATION_ROLE.to_owned(),
        }
    }
}

/// Verifies the `authorization` metadata of incoming calls. Send + Sync; share it behind an `Arc`.
pub struct TokenVerifier {
    /// What this server accepts.
    policy: VerifyPolicy,
    /// `policy.clock_skew` in seconds.
    skew_secs: i64,
    /// `policy.max_token_lifetime` in seconds.
    max_lifetime_secs: i64,
    /// Source of "now".
    clock: Arc<dyn Clock>,
    /// The registry in force; replaced whole on reload. Lock order: `verified`, then `registry`.
    registry: RwLock<Arc<DeploymentRegistry>>,
    /// Tokens already verified, so repeated calls skip the signature check.
    verified: Mutex<VerifiedCache>,
    /// Calls answered from `verified`, for the daemons' metrics.
    cache_hits: AtomicU64,
    /// Calls whose token was not in `verified` (then fully checked), for the daemons' metrics.
    cache_misses: AtomicU64,
}

/// How the verified-token cache has served calls since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Tokens found verified and unexpired: no signature check.
    pub hits: u64,
    /// Tokens checked in full (first use, expired entry, after a reload, or refused).
    pub misses: u64,
}

/// The cache of verified tokens.
struct VerifiedCache {
    /// Bumped by every registry replacement; a verification that started under an older registry
    /// is not cached, so a token checked against a key revoked meanwhile cannot slip in.
    generation: u64,
    /// Full token text → who it proved and until when.
    entries: HashMap<String, Verified>,
}

/// One cached verification.
struct Verified {
    /// The identity the token proved.
    caller: CallerIdentity,
    /// The token's `exp`, re-checked on every hit.
    exp: i64,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("policy", &self.policy)
            .field("registry", &*self.registry())
            .field("cached", &lock(&self.verified).entries.len())
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier for `policy` trusting the peers in `registry`.
    pub fn new(policy: VerifyPolicy, registry: DeploymentRegistry, clock: Arc<dyn Clock>) -> Self {
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        TokenVerifier {
            skew_secs: seconds(policy.clock_skew),
            max_lifetime_secs: seconds(policy.max_token_lifetime),
            policy,
            clock,
            registry: RwLock::new(Arc::new(registry)),
            verified: Mutex::new(VerifiedCache {
                generation: 0,
                entries: HashMap::new(),
            }),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
        }
    }

    /// Hits and misses of the verified-token cache since this verifier was built.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.cache_hits.load(Ordering::Relaxed),
            misses: self.cache_misses.load(Ordering::Relaxed),
        }
    }

    /// Verifies one call. `values`: every `authorization` metadata value of the call, as bytes.
    pub fn verify(&self, values: &[&[u8]]) -> Result<CallerIdentity, AuthError> {
        let token = token_of(values)?;
        let now = self.clock.now_unix();
        // Only well-formed tokens are ASCII; anything else is refused below and never cached.
        let cache_key = std::str::from_utf8(token).ok();
        let (generation, registry) = {
            let mut cache = lock(&self.verified);
            if let Some(key) = cache_key
                && let Some(hit) = cache.entries.get(key)
            {
                if i128::from(now) <= i128::from(hit.exp) + i128::from(self.skew_secs) {
                    self.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(hit.caller.clone());
                }
                // Expired: forget it and let the full check produce the precise refusal.
                cache.entries.remove(key);
            }
            (cache.generation, self.registry())
        };
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
        let (caller, exp) = self.check(token, &registry, now)?;
        if let Some(key) = cache_key {
            let mut cache = lock(&self.verified);
            if cache.generation == generation {
                cache.remember(key, &caller, exp, now, self.skew_secs);
            }
        }
        Ok(caller)
    }

    /// Verifies one call without reading or filling the cache: every check, including the
    /// signature, runs. For benchmarks and diagnostics (`svcid token inspect`).
    pub fn verify_uncached(&self, values: &[&[u8]]) -> Result<CallerIdentity, AuthError> {
        let token = token_of(values)?;
        self.check(token, &self.registry(), self.clock.now_unix())
            .map(|(caller, _)| caller)
    }

    /// Swaps in a new registry atomically and drops every cached verification. Returns the diff.
    pub fn replace_registry(&self, registry: DeploymentRegistry) -> RegistryDiff {
        let new = Arc::new(registry);
        let old = {
            let mut cache = lock(&self.verified);
            let mut current = self
                .registry
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let old = std::mem::replace(&mut *current, Arc::clone(&new));
            cache.generation = cache.generation.wrapping_add(1);
            cache.entries.clear();
            old
        };
        new.diff(&old)
    }

    /// The registry in force.
    pub fn registry(&self) -> Arc<DeploymentRegistry> {
        Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The deployment a kid maps to, for refusal logs (name only).
    pub fn deployment_of(&self, kid: &str) -> Option<String> {
        self.registry()
            .lookup(kid)
            .map(|(deployment, _)| deployment.name.clone())
    }

    /// The policy this verifier enforces.
    pub fn policy(&self) -> &VerifyPolicy {
        &self.policy
    }

    /// Number of cached verifications (tests check that reloads empty the cache).
    #[cfg(test)]
    fn cached(&self) -> usize {
        lock(&self.verified).entries.len()
    }

    /// Every check from the segments on; returns the identity and the token's `exp`.
    fn check(
        &self,
        token: &[u8],
        registry: &DeploymentRegistry,
        now: i64,
    ) -> Result<(CallerIdentity, i64), AuthError> {
        // Segments. Counting first keeps a token made of 8000 dots cheap.
        let count = token.iter().filter(|b| **b == b'.').count() + 1;
        if count != 3 {
            return Err(AuthError::SegmentCount { count });
        }
        let mut segments = token.split(|b| *b == b'.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64)) =
            (segments.next(), segments.next(), segments.next())
        else {
            return Err(AuthError::SegmentCount { count });
        };
        if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
            return Err(AuthError::EmptySegment);
        }
        let header = decode_segment(header_b64, "header")?;
        let payload = decode_segment(payload_b64, "payload")?;
        // Decoded straight into a fixed buffer, no allocation on the hot path.
        let mut signature_buf = [0u8; SIGNATURE_BYTES];
        let signature_len = match BASE64URL_STRICT.decode_slice(signature_b64, &mut signature_buf) {
            Ok(len) => len,
            // Not base64url, or longer than any ES256 signature: decode it whole for the precise
            // refusal (a segment that decodes did not fit, so it is longer than 64 bytes).
            Err(_) => decode_segment(signature_b64, "signature")?
                .len()
                .max(SIGNATURE_BYTES + 1),
        };

        // Header.
        let header = strict_json::parse_object(&header)
            .map_err(|detail| AuthError::InvalidHeader { detail })?;
        let logged_kid = header
            .get("kid")
            .and_then(Value::as_str)
            .map(|kid| excerpt(kid, EXCERPT_CHARS));
        let alg = match header.get("alg") {
            None => return Err(AuthError::MissingAlgorithm { kid: logged_kid }),
            Some(Value::String(alg)) if alg == ES256 => alg.as_str(),
            Some(Value::String(alg)) => {
                return Err(AuthError::AlgorithmRefused {
                    alg: excerpt(alg, 16),
                    kid: logged_kid,
                });
            }
            Some(other) => {
                return Err(AuthError::AlgorithmRefused {
                    alg: format!("<{}>", json_type(other)),
                    kid: logged_kid,
                });
            }
        };
        if let Some(member) = FORBIDDEN_HEADER_MEMBERS
            .into_iter()
            .find(|member| header.contains_key(*member))
        {
            return Err(AuthError::ForbiddenHeaderMember {
                member,
                kid: logged_kid,
            });
        }
        match header.get("typ") {
            None => {}
            Some(Value::String(typ)) if typ == "JWT" => {}
            Some(Value::String(typ)) => {
                return Err(AuthError::BadType {
                    typ: excerpt(typ, 16),
                    kid: logged_kid,
                });
            }
            Some(other) => {
                return Err(AuthError::BadType {
                    typ: format!("<{}>", json_type(other)),
                    kid: logged_kid,
                });
            }
        }
        let kid = match header.get("kid") {
            None => return Err(AuthError::MissingKid),
            Some(Value::String(kid)) => kid.as_str(),
            Some(_) => return Err(AuthError::InvalidKid),
        };
        let logged_kid = excerpt(kid, EXCERPT_CHARS);
        let Some((deployment, key, verifier)) = registry.slot(kid) else {
            return Err(AuthError::UnknownKid { kid: logged_kid });
        };
        if key.public.alg() != alg {
            return Err(AuthError::AlgorithmKeyMismatch { kid: logged_kid });
        }
        if key.revoked {
            return Err(AuthError::RevokedKey { kid: logged_kid });
        }

        // Signature over the exact bytes received.
        if signature_len != SIGNATURE_BYTES {
            return Err(AuthError::SignatureLength {
                len: signature_len,
                kid: logged_kid,
            });
        }
        let (r, s) = signature_buf.split_at(SIGNATURE_BYTES / 2);
        if r.iter().all(|b| *b == 0) || s.iter().all(|b| *b == 0) {
            return Err(AuthError::BadSignature { kid: logged_kid });
        }
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        if !verifier.verify(signing_input, &signature_buf) {
            return Err(AuthError::BadSignature { kid: logged_kid });
        }

        // Claims.
        let claims =
            strict_json::parse_object(&payload).map_err(|detail| AuthError::InvalidClaims {
                detail,
                kid: logged_kid.clone(),
            })?;
        let iat = numeric_date(&claims, "iat", &logged_kid)?;
        let nbf = numeric_date(&claims, "nbf", &logged_kid)?;
        let exp = numeric_date(&claims, "exp", &logged_kid)?;
        let latest_start = i128::from(now) + i128::from(self.skew_secs);
        for (claim, value) in [("iat", iat), ("nbf", nbf)] {
            if i128::from(value) > latest_start {
                return Err(AuthError::NotYetValid {
                    claim,
                    kid: logged_kid,
                });
            }
        }
        if i128::from(now) > i128::from(exp) + i128::from(self.skew_secs) {
            return Err(AuthError::Expired { kid: logged_kid });
        }
        if i128::from(exp) - i128::from(iat) > i128::from(self.max_lifetime_secs) {
            return Err(AuthError::LifetimeTooLong { kid: logged_kid });
        }
        self.check_audience(&claims, &logged_kid)?;
        let jti = match claims.get("jti") {
            None => String::new(),
            Some(Value::String(jti)) => jti.clone(),
            Some(_) => return Err(AuthError::InvalidJti { kid: logged_kid }),
        };
        let service = ServiceIdentity {
            module: deployment.module.clone(),
            id: deployment.name.clone(),
            roles: deployment.roles.clone(),
        };
        let user = match claims.get("usr") {
            None => None,
            Some(usr) => {
                let user =
                    serde_json::from_value::<ImpersonatedUser>(usr.clone()).map_err(|_| {
                        AuthError::InvalidUser {
                            kid: logged_kid.clone(),
                        }
                    })?;
                if !service.has_role(&self.policy.impersonation_role) {
                    return Err(AuthError::ImpersonationNotAllowed { kid: logged_kid });
                }
                Some(user)
            }
        };
        let caller = CallerIdentity {
            service,
            user,
            kid: kid.to_owned(),
            jti,
        };
        Ok((caller, exp))
    }

    fn check_audience(&self, claims: &Map<String, Value>, kid: &str) -> Result<(), AuthError> {
        let module = self.policy.module.as_str();
        let named = match claims.get("aud") {
            None if self.policy.require_audience => {
                return Err(AuthError::MissingAudience {
                    kid: kid.to_owned(),
                });
            }
            None => return Ok(()),
            Some(Value::String(aud)) => aud == module,
            Some(Value::Array(auds)) => {
                if !auds.iter().all(Value::is_string) {
                    return Err(AuthError::InvalidAudience {
                        kid: kid.to_owned(),
                    });
                }
                auds.iter().any(|aud| aud.as_str() == Some(module))
            }
            Some(_) => {
                return Err(AuthError::InvalidAudience {
                    kid: kid.to_owned(),
                });
            }
        };
        if named {
            Ok(())
        } else {
            Err(AuthError::WrongAudience {
                kid: kid.to_owned(),
            })
        }
    }
}

impl VerifiedCache {
    fn remember(&mut self, token: &str, caller: &CallerIdentity, exp: i64, now: i64, skew: i64) {
        if self.entries.len() >= VERIFIED_CACHE_CAPACITY {
            let alive = |exp: i64| i128::from(now) <= i128::from(exp) + i128::from(skew);
            self.entries.retain(|_, verified| alive(verified.exp));
            if self.entries.len() >= VERIFIED_CACHE_CAPACITY {
                // All live: drop an arbitrary one; it will simply be verified again.
                if let Some(victim) = self.entries.keys().next().cloned() {
                    self.entries.remove(&victim);
                }
            }
        }
        self.entries.insert(
            token.to_owned(),
            Verified {
                caller: caller.clone(),
                exp,
            },
        );
    }
}

/// The token after `<scheme> ` in the single `authorization` value (checks 1 to 5).
fn token_of<'a>(values: &[&'a [u8]]) -> Result<&'a [u8], AuthError> {
    let value = match values {
        [] => return Err(AuthError::MissingAuthorization),
        [one] => *one,
        more => return Err(AuthError::MultipleAuthorization { count: more.len() }),
    };
    if value.is_empty() {
        return Err(AuthError::EmptyAuthorization);
    }
    if value.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TokenTooLarge { len: value.len() });
    }
    let is_scheme = |candidate: &[u8]| {
        SCHEMES
            .iter()
            .any(|scheme| candidate.eq_ignore_ascii_case(scheme.as_bytes()))
    };
    let Some(space) = value.iter().position(|b| *b == b' ') else {
        return Err(if is_scheme(value) {
            AuthError::MissingToken
        } else {
            AuthError::UnknownScheme
        });
    };
    let (scheme, rest) = (&value[..space], &value[space + 1..]);
    if !is_scheme(scheme) {
        return Err(AuthError::UnknownScheme);
    }
    match rest.first() {
        None => Err(AuthError::MissingToken),
        Some(first) if first.is_ascii_whitespace() => Err(AuthError::MalformedAuthorization),
        Some(_) => Ok(rest),
    }
}

fn decode_segment(segment: &[u8], name: &'static str) -> Result<Vec<u8>, AuthError> {
    BASE64URL_STRICT
        .decode(segment)
        .map_err(|_| AuthError::BadBase64 { segment: name })
}

/// A NumericDate claim: present, a JSON integer, not negative.
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
    kid: &str,
) -> Result<i64, AuthError> {
    match claims.get(claim) {
        None => Err(AuthError::MissingTimeClaim {
            claim,
            kid: kid.to_owned(),
        }),
        Some(Value::Number(number)) => {
            number
                .as_i64()
                .filter(|v| *v >= 0)
                .ok_or_else(|| AuthError::InvalidTimeClaim {
                    claim,
                    kid: kid.to_owned(),
                })
        }
        Some(_) => Err(AuthError::InvalidTimeClaim {
            claim,
            kid: kid.to_owned(),
        }),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps half-updated in a way that matters: recover.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a call's token was refused. Each variant is one reason, in the order checked; [`reason`]
/// gives its stable code (see the module table), `Display` a short sentence without key material or
/// token text, and [`kid`] the token's `kid` (escaped, at most 64 characters) when it was read.
///
/// [`reason`]: AuthError::reason
/// [`kid`]: AuthError::kid
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The call has no `authorization` metadata.
    #[error("no authorization metadata")]
    MissingAuthorization,
    /// The call has several `authorization` values; which one counts would be ambiguous.
    #[error("{count} authorization values; exactly one is allowed")]
    MultipleAuthorization {
        /// How many values were sent.
        count: usize,
    },
    /// The `authorization` value is empty.
    #[error("empty authorization value")]
    EmptyAuthorization,
    /// The value is longer than [`MAX_TOKEN_BYTES`]; it was not decoded.
    #[error("authorization value of {len} bytes exceeds {MAX_TOKEN_BYTES}")]
    TokenTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// The scheme is neither `Internal-jwt` nor `Bearer`.
    #[error("unknown authorization scheme (expected Internal-jwt or Bearer)")]
    UnknownScheme,
    /// The scheme is not followed by a space and a token.
    #[error("authorization scheme without a token")]
    MissingToken,
    /// More than one space (or other whitespace) between scheme and token.
    #[error("authorization value is not `<scheme> <token>` with one space")]
    MalformedAuthorization,
    /// The token does not have exactly three segments.
    #[error("token has {count} segments instead of 3")]
    SegmentCount {
        /// How many `.`-separated segments it has.
        count: usize,
    },
    /// A segment is empty (e.g. an unsigned `alg: none` token).
    #[error("token has an empty segment")]
    EmptySegment,
    /// A segment is not strict base64url without padding.
    #[error("token {segment} is not strict base64url")]
    BadBase64 {
        /// Which segment: `header`, `payload` or `signature`.
        segment: &'static str,
    },
    /// The header is not a strict JSON object.
    #[error("token header is not a strict JSON object: {detail}")]
    InvalidHeader {
        /// What is wrong (position or member name, never content).
        detail: StrictJsonError,
    },
    /// The header has no `alg`.
    #[error("token header has no alg")]
    MissingAlgorithm {
        /// The header's kid, if readable.
        kid: Option<String>,
    },
    /// `alg` is not the string `ES256` (none, HS256, RS256, ES384, EdDSA, …).
    #[error("token alg {alg} is refused; only ES256 is accepted")]
    AlgorithmRefused {
        /// The alg found (escaped, short) or its JSON type.
        alg: String,
        /// The header's kid, if readable.
        kid: Option<String>,
    },
    /// The header carries a member that would let the token pick its own key.
    #[error("token header carries {member}, which is refused")]
    ForbiddenHeaderMember {
        /// `jwk`, `jku`, `x5u`, `x5c` or `crit`.
        member: &'static str,
        /// The header's kid, if readable.
        kid: Option<String>,
    },
    /// `typ` is present and not `JWT`.
    #[error("token typ {typ} is refused; only JWT is accepted")]
    BadType {
        /// The typ found (escaped, short) or its JSON type.
        typ: String,
        /// The header's kid, if readable.
        kid: Option<String>,
    },
    /// The header has no `kid`.
    #[error("token header has no kid")]
    MissingKid,
    /// `kid` is not a string.
    #[error("token kid is not a string")]
    InvalidKid,
    /// `kid` equals no configured fingerprint.
    #[error("token kid matches no configured fingerprint")]
    UnknownKid {
        /// The kid (escaped, at most 64 characters).
        kid: String,
    },
    /// The token's `alg` differs from the configured key's `alg`.
    #[error("token alg differs from the configured key's alg")]
    AlgorithmKeyMismatch {
        /// The kid.
        kid: String,
    },
    /// The key is revoked in configuration.
    #[error("token key is revoked")]
    RevokedKey {
        /// The kid.
        kid: String,
    },
    /// The signature is not 64 bytes (DER-encoded or truncated).
    #[error("token signature is {len} bytes; ES256 needs 64 (raw r||s)")]
    SignatureLength {
        /// Its decoded length.
        len: usize,
        /// The kid.
        kid: String,
    },
    /// The signature does not verify with the configured key.
    #[error("token signature is invalid")]
    BadSignature {
        /// The kid.
        kid: String,
    },
    /// The claims are not a strict JSON object.
    #[error("token claims are not a strict JSON object: {detail}")]
    InvalidClaims {
        /// What is wrong.
        detail: StrictJsonError,
        /// The kid.
        kid: String,
    },
    /// `iat`, `nbf` or `exp` is missing.
    #[error("token has no {claim} claim")]
    MissingTimeClaim {
        /// Which claim.
        claim: &'static str,
        /// The kid.
        kid: String,
    },
    /// `iat`, `nbf` or `exp` is not a non-negative integer JSON number.
    #[error("token {claim} is not a non-negative integer")]
    InvalidTimeClaim {
        /// Which claim.
        claim: &'static str,
        /// The kid.
        kid: String,
    },
    /// `iat` or `nbf` is later than now plus the clock skew.
    #[error("token {claim} is in the future")]
    NotYetValid {
        /// Which claim.
        claim: &'static str,
        /// The kid.
        kid: String,
    },
    /// `exp` plus the clock skew has passed.
    #[error("token has expired")]
    Expired {
        /// The kid.
        kid: String,
    },
    /// `exp - iat` exceeds the maximum token lifetime.
    #[error("token lifetime exceeds the maximum")]
    LifetimeTooLong {
        /// The kid.
        kid: String,
    },
    /// No `aud` while the policy requires one.
    #[error("token has no aud claim")]
    MissingAudience {
        /// The kid.
        kid: String,
    },
    /// `aud` is neither a string nor an array of strings.
    #[error("token aud is neither a string nor an array of strings")]
    InvalidAudience {
        /// The kid.
        kid: String,
    },
    /// `aud` does not name this module.
    #[error("token was not issued for this module")]
    WrongAudience {
        /// The kid.
        kid: String,
    },
    /// `jti` is present and not a string.
    #[error("token jti is not a string")]
    InvalidJti {
        /// The kid.
        kid: String,
    },
    /// `usr` is not `{id, username, roles}`.
    #[error("token usr claim is malformed")]
    InvalidUser {
        /// The kid.
        kid: String,
    },
    /// `usr` sent by a peer without the impersonation role.
    #[error("peer may not act for a user (lacks the impersonation role)")]
    ImpersonationNotAllowed {
        /// The kid.
        kid: String,
    },
}

impl AuthError {
    /// The stable snake_case code of this refusal, for logs and the gRPC status text.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingAuthorization => "missing_authorization",
            Self::MultipleAuthorization { .. } => "multiple_authorization",
            Self::EmptyAuthorization => "empty_authorization",
            Self::TokenTooLarge { .. } => "token_too_large",
            Self::UnknownScheme => "unknown_scheme",
            Self::MissingToken => "missing_token",
            Self::MalformedAuthorization => "malformed_authorization",
            Self::SegmentCount { .. } => "segment_count",
            Self::EmptySegment => "empty_segment",
            Self::BadBase64 { .. } => "bad_base64",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::MissingAlgorithm { .. } => "missing_alg",
            Self::AlgorithmRefused { .. } => "alg_refused",
            Self::ForbiddenHeaderMember { .. } => "forbidden_header_member",
            Self::BadType { .. } => "bad_typ",
            Self::MissingKid => "missing_kid",
            Self::InvalidKid => "invalid_kid",
            Self::UnknownKid { .. } => "unknown_kid",
            Self::AlgorithmKeyMismatch { .. } => "alg_key_mismatch",
            Self::RevokedKey { .. } => "revoked_key",
            Self::SignatureLength { .. } => "bad_signature_length",
            Self::BadSignature { .. } => "bad_signature",
            Self::InvalidClaims { .. } => "invalid_claims",
            Self::MissingTimeClaim { .. } => "missing_time_claim",
            Self::InvalidTimeClaim { .. } => "invalid_time_claim",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::Expired { .. } => "expired",
            Self::LifetimeTooLong { .. } => "lifetime_too_long",
            Self::MissingAudience { .. } => "missing_aud",
            Self::InvalidAudience { .. } => "invalid_aud",
            Self::WrongAudience { .. } => "wrong_aud",
            Self::InvalidJti { .. } => "invalid_jti",
            Self::InvalidUser { .. } => "invalid_usr",
            Self::ImpersonationNotAllowed { .. } => "impersonation_not_allowed",
        }
    }

    /// The token's `kid` when one was read (escaped, at most 64 characters), for logs.
    pub fn kid(&self) -> Option<&str> {
        match self {
            Self::MissingAuthorization
            | Self::MultipleAuthorization { .. }
            | Self::EmptyAuthorization
            | Self::TokenTooLarge { .. }
            | Self::UnknownScheme
            | Self::MissingToken
            | Self::MalformedAuthorization
            | Self::SegmentCount { .. }
            | Self::EmptySegment
            | Self::BadBase64 { .. }
            | Self::InvalidHeader { .. }
            | Self::MissingKid
            | Self::InvalidKid => None,
            Self::MissingAlgorithm { kid }
            | Self::AlgorithmRefused { kid, .. }
            | Self::ForbiddenHeaderMember { kid, .. }
            | Self::BadType { kid, .. } => kid.as_deref(),
            Self::UnknownKid { kid }
            | Self::AlgorithmKeyMismatch { kid }
            | Self::RevokedKey { kid }
            | Self::SignatureLength { kid, .. }
            | Self::BadSignature { kid }
            | Self::InvalidClaims { kid, .. }
            | Self::MissingTimeClaim { kid, .. }
            | Self::InvalidTimeClaim { kid, .. }
            | Self::NotYetValid { kid, .. }
            | Self::Expired { kid }
            | Self::LifetimeTooLong { kid }
            | Self::MissingAudience { kid }
            | Self::InvalidAudience { kid }
            | Self::WrongAudience { kid }
            | Self::InvalidJti { kid }
            | Self::InvalidUser { kid }
            | Self::ImpersonationNotAllowed { kid } => Some(kid),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests;
