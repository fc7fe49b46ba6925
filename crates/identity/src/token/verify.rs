//! Verifying peers' tokens: [`VerifyPolicy`], [`TokenVerifier`] and its cache of verified tokens.
//!
//! [`TokenVerifier::check`] runs the stages of the validation policy (see the module table) in
//! order: the `authorization` value, the segments, the header, the key, the signature, the claims.
//! A stage before the key lookup reports the `kid` only where the header had a readable one; from
//! the key on, every refusal carries the `kid` being checked.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::{AuthError, AuthErrorKind};
use super::{
    DEFAULT_CLOCK_SKEW, DEFAULT_IMPERSONATION_ROLE, DEFAULT_MAX_TOKEN_LIFETIME,
    DEFAULT_REQUIRE_AUDIENCE, MAX_TOKEN_BYTES, TokenProfile, lock,
};
use crate::cache::VerifiedTokens;
use crate::clock::Clock;
use crate::deployments::{Deployment, Deployments, DeploymentsDiff};
use crate::es256::{Es256Verifier, SIGNATURE_BYTES};
use crate::identity::{CallerIdentity, ImpersonatedUser, ServiceIdentity};
use crate::jwk::{BASE64URL_STRICT, ES256};
use crate::printable::{EXCERPT_CHARS, excerpt, json_type};
use crate::strict_json;

/// Verified tokens remembered at most; enough for every live token of a large deployment.
pub(super) const VERIFIED_CACHE_CAPACITY: usize = 4096;
/// Schemes accepted before the token, compared without regard to ASCII case.
const SCHEMES: [&str; 2] = [super::SCHEME, "Bearer"];
/// Header members that would let a token choose or fetch its own key (RFC 8725 §3.10).
const FORBIDDEN_HEADER_MEMBERS: [&str; 5] = ["jwk", "jku", "x5u", "x5c", "crit"];

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
            require_audience: DEFAULT_REQUIRE_AUDIENCE,
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
    /// The deployments in force; replaced whole on reload. Lock order: `verified`, then
    /// `deployments`.
    deployments: RwLock<Arc<Deployments>>,
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
    /// Bumped by every replacement of the deployments; a verification that started under older
    /// deployments is not cached, so a token checked against a key revoked meanwhile cannot slip in.
    generation: u64,
    /// Full token text → who it proved, until the token's `exp`.
    entries: VerifiedTokens<CallerIdentity>,
    /// `kid` → when (Unix seconds, the verifier's clock) a call last proved itself with that key:
    /// the console's "used recently". Updated under the lock a call takes anyway; one entry per
    /// key of the deployments in force (entries of keys a reload removed are dropped with it).
    last_used: HashMap<String, i64>,
}

impl VerifiedCache {
    /// Notes that `kid` proved a call at `now`.
    fn used(&mut self, kid: &str, now: i64) {
        match self.last_used.get_mut(kid) {
            Some(at) => *at = now,
            None => {
                self.last_used.insert(kid.to_owned(), now);
            }
        }
    }
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("policy", &self.policy)
            .field("deployments", &*self.deployments())
            .field("cached", &lock(&self.verified).entries.len())
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier for `policy` trusting the peers in `deployments`.
    pub fn new(policy: VerifyPolicy, deployments: Deployments, clock: Arc<dyn Clock>) -> Self {
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        TokenVerifier {
            skew_secs: seconds(policy.clock_skew),
            max_lifetime_secs: seconds(policy.max_token_lifetime),
            policy,
            clock,
            deployments: RwLock::new(Arc::new(deployments)),
            verified: Mutex::new(VerifiedCache {
                generation: 0,
                entries: VerifiedTokens::new(VERIFIED_CACHE_CAPACITY),
                last_used: HashMap::new(),
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

    /// When each key last proved a call, `kid` → Unix seconds (the verifier's clock); keys never
    /// used since start (or since a reload removed and re-added them) are absent.
    pub fn keys_last_used(&self) -> HashMap<String, i64> {
        lock(&self.verified).last_used.clone()
    }

    /// Verifies one call. `values`: every `authorization` metadata value of the call, as bytes.
    pub fn verify(&self, values: &[&[u8]]) -> Result<CallerIdentity, AuthError> {
        let token = token_of(values)?;
        let now = self.clock.now_unix();
        // Only well-formed tokens are ASCII; anything else is refused below and never cached.
        let cache_key = std::str::from_utf8(token).ok();
        let (generation, deployments) = {
            let mut cache = lock(&self.verified);
            let VerifiedCache {
                entries, last_used, ..
            } = &mut *cache;
            // An expired entry is forgotten; the full check then gives the precise refusal.
            if let Some(key) = cache_key
                && let Some(caller) = entries.get(key, |exp| alive(now, exp, self.skew_secs))
            {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
                if let Some(at) = last_used.get_mut(caller.kid()) {
                    *at = now;
                }
                return Ok(caller.clone());
            }
            (cache.generation, self.deployments())
        };
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
        let (caller, exp) = self.check(token, &deployments, now)?;
        let mut cache = lock(&self.verified);
        cache.used(caller.kid(), now);
        if let Some(key) = cache_key
            && cache.generation == generation
        {
            let skew = self.skew_secs;
            cache
                .entries
                .remember(key, caller.clone(), exp, |exp| alive(now, exp, skew));
        }
        Ok(caller)
    }

    /// Verifies one call without reading or filling the cache: every check, including the
    /// signature, runs. For benchmarks and diagnostics (`svcid token inspect`).
    pub fn verify_uncached(&self, values: &[&[u8]]) -> Result<CallerIdentity, AuthError> {
        let token = token_of(values)?;
        self.check(token, &self.deployments(), self.clock.now_unix())
            .map(|(caller, _)| caller)
    }

    /// Swaps in new deployments atomically and drops every cached verification. Returns the diff.
    pub fn replace_deployments(&self, deployments: Deployments) -> DeploymentsDiff {
        let new = Arc::new(deployments);
        let old = {
            let mut cache = lock(&self.verified);
            let mut current = self
                .deployments
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let old = std::mem::replace(&mut *current, Arc::clone(&new));
            cache.generation = cache.generation.wrapping_add(1);
            cache.entries.clear();
            cache.last_used.retain(|kid, _| new.lookup(kid).is_some());
            old
        };
        new.diff(&old)
    }

    /// The deployments in force.
    pub fn deployments(&self) -> Arc<Deployments> {
        Arc::clone(
            &self
                .deployments
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The deployment a kid maps to, for refusal logs (name only).
    pub fn deployment_of(&self, kid: &str) -> Option<String> {
        self.deployments()
            .lookup(kid)
            .map(|(deployment, _)| deployment.name.clone())
    }

    /// The token profile of the deployment named `deployment` in the deployments in force (so a
    /// reload that changes it applies to the next call); `strict`, the default profile, when no
    /// such deployment is configured. For calls back to a verified caller, pass the caller's
    /// deployment name, `caller.service().id`.
    pub fn token_profile_of(&self, deployment: &str) -> TokenProfile {
        self.deployments()
            .token_profile(deployment)
            .unwrap_or_default()
    }

    /// The token profile for calls to peers of module type `module` in the deployments in force:
    /// see [`Deployments::token_profile_for_module`]. For a DPE calling its DPM.
    pub fn token_profile_for_module(&self, module: &str) -> TokenProfile {
        self.deployments().token_profile_for_module(module)
    }

    /// The policy this verifier enforces.
    pub fn policy(&self) -> &VerifyPolicy {
        &self.policy
    }

    /// Number of cached verifications (tests check that reloads empty the cache).
    #[cfg(test)]
    pub(super) fn cached(&self) -> usize {
        lock(&self.verified).entries.len()
    }

    /// Every check from the segments on (table rows 6–23); returns the identity and the token's
    /// `exp`.
    fn check(
        &self,
        token: &[u8],
        deployments: &Deployments,
        now: i64,
    ) -> Result<(CallerIdentity, i64), AuthError> {
        let segments = Segments::split(token)?;
        let header = Header::read(&segments.header)?;
        let with_kid = |kind| AuthError::new(kind, Some(excerpt(&header.kid, EXCERPT_CHARS)));
        let (deployment, verifier) = key_for(deployments, &header).map_err(with_kid)?;
        check_signature(verifier, &segments).map_err(with_kid)?;
        self.check_claims(&segments.payload, deployment, &header.kid, now)
            .map_err(with_kid)
    }

    /// Rows 16–23: the claims of a token whose signature verified with `deployment`'s key.
    fn check_claims(
        &self,
        payload: &[u8],
        deployment: &Deployment,
        kid: &str,
        now: i64,
    ) -> Result<(CallerIdentity, i64), AuthErrorKind> {
        let claims = strict_json::parse_object(payload)
            .map_err(|detail| AuthErrorKind::InvalidClaims { detail })?;
        let exp = self.check_times(&claims, now)?;
        self.check_audience(&claims, deployment.token_profile)?;
        let jti = match claims.get("jti") {
            None => String::new(),
            Some(Value::String(jti)) => jti.clone(),
            Some(_) => return Err(AuthErrorKind::InvalidJti),
        };
        let service = ServiceIdentity {
            module: deployment.module.clone(),
            id: deployment.name.clone(),
            roles: deployment.roles.clone(),
        };
        let user = self.check_user(&claims, &service)?;
        let caller = CallerIdentity::new(service, user, kid.to_owned(), jti);
        Ok((caller, exp))
    }

    /// Rows 17–20: `iat`, `nbf` and `exp` present, within the clock skew, and not too far apart.
    /// Returns `exp`.
    fn check_times(&self, claims: &Map<String, Value>, now: i64) -> Result<i64, AuthErrorKind> {
        let iat = numeric_date(claims, "iat")?;
        let nbf = numeric_date(claims, "nbf")?;
        let exp = numeric_date(claims, "exp")?;
        let latest_start = i128::from(now) + i128::from(self.skew_secs);
        for (claim, value) in [("iat", iat), ("nbf", nbf)] {
            if i128::from(value) > latest_start {
                return Err(AuthErrorKind::NotYetValid { claim });
            }
        }
        if i128::from(now) > i128::from(exp) + i128::from(self.skew_secs) {
            return Err(AuthErrorKind::Expired);
        }
        if i128::from(exp) - i128::from(iat) > i128::from(self.max_lifetime_secs) {
            return Err(AuthErrorKind::LifetimeTooLong);
        }
        Ok(exp)
    }

    /// Row 21: `aud` names this module. It may be left out by a peer whose deployment has the
    /// `product` profile, or by any peer under `require-audience=false`; when present it must name
    /// this module whatever the profile.
    fn check_audience(
        &self,
        claims: &Map<String, Value>,
        profile: TokenProfile,
    ) -> Result<(), AuthErrorKind> {
        let module = self.policy.module.as_str();
        let required = self.policy.require_audience && profile.requires_audience();
        let named = match claims.get("aud") {
            None if required => return Err(AuthErrorKind::MissingAudience),
            None => return Ok(()),
            Some(Value::String(aud)) => aud == module,
            Some(Value::Array(auds)) => {
                if !auds.iter().all(Value::is_string) {
                    return Err(AuthErrorKind::InvalidAudience);
                }
                auds.iter().any(|aud| aud.as_str() == Some(module))
            }
            Some(_) => return Err(AuthErrorKind::InvalidAudience),
        };
        if named {
            Ok(())
        } else {
            Err(AuthErrorKind::WrongAudience)
        }
    }

    /// Row 23: a `usr` claim is well formed and the peer may act for a user.
    fn check_user(
        &self,
        claims: &Map<String, Value>,
        service: &ServiceIdentity,
    ) -> Result<Option<ImpersonatedUser>, AuthErrorKind> {
        let Some(usr) = claims.get("usr") else {
            return Ok(None);
        };
        let user = serde_json::from_value::<ImpersonatedUser>(usr.clone())
            .map_err(|_| AuthErrorKind::InvalidUser)?;
        if !service.has_role(&self.policy.impersonation_role) {
            return Err(AuthErrorKind::ImpersonationNotAllowed);
        }
        Ok(Some(user))
    }
}

/// Whether a token with `exp` is still accepted at `now`, `skew` seconds of leeway included.
fn alive(now: i64, exp: i64, skew: i64) -> bool {
    i128::from(now) <= i128::from(exp) + i128::from(skew)
}

/// Rows 1–5: the token after `<scheme> ` in the single `authorization` value.
fn token_of<'a>(values: &[&'a [u8]]) -> Result<&'a [u8], AuthErrorKind> {
    let value = match values {
        [] => return Err(AuthErrorKind::MissingAuthorization),
        [one] => *one,
        more => return Err(AuthErrorKind::MultipleAuthorization { count: more.len() }),
    };
    if value.is_empty() {
        return Err(AuthErrorKind::EmptyAuthorization);
    }
    if value.len() > MAX_TOKEN_BYTES {
        return Err(AuthErrorKind::TokenTooLarge { len: value.len() });
    }
    let is_scheme = |candidate: &[u8]| {
        SCHEMES
            .iter()
            .any(|scheme| candidate.eq_ignore_ascii_case(scheme.as_bytes()))
    };
    let Some(space) = value.iter().position(|b| *b == b' ') else {
        return Err(if is_scheme(value) {
            AuthErrorKind::MissingToken
        } else {
            AuthErrorKind::UnknownScheme
        });
    };
    let (scheme, rest) = (&value[..space], &value[space + 1..]);
    if !is_scheme(scheme) {
        return Err(AuthErrorKind::UnknownScheme);
    }
    match rest.first() {
        None => Err(AuthErrorKind::MissingToken),
        Some(first) if first.is_ascii_whitespace() => Err(AuthErrorKind::MalformedAuthorization),
        Some(_) => Ok(rest),
    }
}

/// Rows 6–7: the three segments of a compact JWS, decoded.
struct Segments<'a> {
    /// The decoded header.
    header: Vec<u8>,
    /// The decoded claims.
    payload: Vec<u8>,
    /// The signature, decoded straight into a fixed buffer: no allocation on the hot path.
    signature: [u8; SIGNATURE_BYTES],
    /// The signature's decoded length; anything but [`SIGNATURE_BYTES`] is refused later.
    signature_len: usize,
    /// `header.payload` exactly as received: what the signature covers.
    signing_input: &'a [u8],
}

impl<'a> Segments<'a> {
    fn split(token: &'a [u8]) -> Result<Self, AuthErrorKind> {
        // Counting first keeps a token made of 8000 dots cheap.
        let count = token.iter().filter(|b| **b == b'.').count() + 1;
        if count != 3 {
            return Err(AuthErrorKind::SegmentCount { count });
        }
        let mut parts = token.split(|b| *b == b'.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthErrorKind::SegmentCount { count });
        };
        if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
            return Err(AuthErrorKind::EmptySegment);
        }
        let header = decode_segment(header_b64, "header")?;
        let payload = decode_segment(payload_b64, "payload")?;
        let mut signature = [0u8; SIGNATURE_BYTES];
        let signature_len = match BASE64URL_STRICT.decode_slice(signature_b64, &mut signature) {
            Ok(len) => len,
            // Not base64url, or longer than any ES256 signature: decode it whole for the precise
            // refusal (a segment that decodes did not fit, so it is longer than 64 bytes).
            Err(_) => decode_segment(signature_b64, "signature")?
                .len()
                .max(SIGNATURE_BYTES + 1),
        };
        Ok(Segments {
            header,
            payload,
            signature,
            signature_len,
            signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
        })
    }
}

fn decode_segment(segment: &[u8], name: &'static str) -> Result<Vec<u8>, AuthErrorKind> {
    BASE64URL_STRICT
        .decode(segment)
        .map_err(|_| AuthErrorKind::BadBase64 { segment: name })
}

/// What the header says once rows 8–12 passed.
struct Header {
    /// `alg`, which is `ES256` by now.
    alg: String,
    /// `kid`, exactly as sent (it is escaped only for logs).
    kid: String,
}

impl Header {
    /// Rows 8–12: strict JSON, `alg`, no key-bearing members, `typ`, `kid`. Refusals carry the
    /// header's `kid` when it is a string, so a refused peer can still be named in logs.
    fn read(bytes: &[u8]) -> Result<Self, AuthError> {
        let header = strict_json::parse_object(bytes)
            .map_err(|detail| AuthErrorKind::InvalidHeader { detail })?;
        let logged_kid = header
            .get("kid")
            .and_then(Value::as_str)
            .map(|kid| excerpt(kid, EXCERPT_CHARS));
        let refuse = |kind| AuthError::new(kind, logged_kid.clone());
        let alg = match header.get("alg") {
            None => return Err(refuse(AuthErrorKind::MissingAlgorithm)),
            Some(Value::String(alg)) if alg == ES256 => alg.clone(),
            Some(Value::String(alg)) => {
                return Err(refuse(AuthErrorKind::AlgorithmRefused {
                    alg: excerpt(alg, 16),
                }));
            }
            Some(other) => {
                return Err(refuse(AuthErrorKind::AlgorithmRefused {
                    alg: format!("<{}>", json_type(other)),
                }));
            }
        };
        if let Some(member) = FORBIDDEN_HEADER_MEMBERS
            .into_iter()
            .find(|member| header.contains_key(*member))
        {
            return Err(refuse(AuthErrorKind::ForbiddenHeaderMember { member }));
        }
        match header.get("typ") {
            None => {}
            Some(Value::String(typ)) if typ == "JWT" => {}
            Some(Value::String(typ)) => {
                return Err(refuse(AuthErrorKind::BadType {
                    typ: excerpt(typ, 16),
                }));
            }
            Some(other) => {
                return Err(refuse(AuthErrorKind::BadType {
                    typ: format!("<{}>", json_type(other)),
                }));
            }
        }
        let kid = match header.get("kid") {
            None => return Err(AuthErrorKind::MissingKid.into()),
            Some(Value::String(kid)) => kid.clone(),
            Some(_) => return Err(AuthErrorKind::InvalidKid.into()),
        };
        Ok(Header { alg, kid })
    }
}

/// Rows 12–14: the configured key whose fingerprint is the `kid`, of the token's `alg`, not
/// revoked. Returns its deployment and its prepared verifier.
fn key_for<'r>(
    deployments: &'r Deployments,
    header: &Header,
) -> Result<(&'r Deployment, &'r Es256Verifier), AuthErrorKind> {
    let Some((deployment, key, verifier)) = deployments.slot(&header.kid) else {
        return Err(AuthErrorKind::UnknownKid);
    };
    if key.public.alg() != header.alg {
        return Err(AuthErrorKind::AlgorithmKeyMismatch);
    }
    if key.revoked {
        return Err(AuthErrorKind::RevokedKey);
    }
    Ok((deployment, verifier))
}

/// Row 15: a raw 64-byte r‖s signature, r and s non-zero, valid over the exact bytes received.
fn check_signature(verifier: &Es256Verifier, segments: &Segments<'_>) -> Result<(), AuthErrorKind> {
    if segments.signature_len != SIGNATURE_BYTES {
        return Err(AuthErrorKind::SignatureLength {
            len: segments.signature_len,
        });
    }
    let (r, s) = segments.signature.split_at(SIGNATURE_BYTES / 2);
    if r.iter().all(|b| *b == 0) || s.iter().all(|b| *b == 0) {
        return Err(AuthErrorKind::BadSignature);
    }
    if !verifier.verify(segments.signing_input, &segments.signature) {
        return Err(AuthErrorKind::BadSignature);
    }
    Ok(())
}

/// A NumericDate claim: present, a JSON integer, not negative.
fn numeric_date(claims: &Map<String, Value>, claim: &'static str) -> Result<i64, AuthErrorKind> {
    match claims.get(claim) {
        None => Err(AuthErrorKind::MissingTimeClaim { claim }),
        Some(Value::Number(number)) => number
            .as_i64()
            .filter(|v| *v >= 0)
            .ok_or(AuthErrorKind::InvalidTimeClaim { claim }),
        Some(_) => Err(AuthErrorKind::InvalidTimeClaim { claim }),
    }
}
