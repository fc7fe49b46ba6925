//! [`UserTokenVerifier`]: routes a Bearer token to its issuer by the unverified `iss`, then checks
//! it against that issuer's keys and rules (the table in the module docs, rows 1–22).

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::MAX_USER_TOKEN_BYTES;
use super::error::{NotUserToken, UserIssuersError, UserTokenError};
use super::identity::UserIdentity;
use super::keys::{KeyForm, UserAlgorithm, UserKey, UserKeySet};
use super::policy::{IssuerRules, UserIssuerPolicy};
use crate::clock::Clock;
use crate::jwk::BASE64URL_STRICT;
use crate::printable::{EXCERPT_CHARS, excerpt, json_type};
use crate::strict_json;

/// The name claims MicroProfile JWT reads, in order.
const MP_NAME_CLAIMS: [&str; 3] = ["upn", "preferred_username", "sub"];

/// Verifies user tokens of the configured issuers. Holds no keys: the caller hands in the routed
/// issuer's [`UserKeySet`], so where keys come from (text, file, URL and its cache) stays a floor
/// above. Send + Sync; share it behind an `Arc`.
pub struct UserTokenVerifier {
    /// The issuers, each with a distinct `iss`.
    issuers: Vec<UserIssuerPolicy>,
    /// Source of "now".
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for UserTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserTokenVerifier")
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl UserTokenVerifier {
    /// A verifier for `issuers`, which must have distinct, non-empty `iss` values and at least one
    /// algorithm each.
    pub fn new(
        issuers: Vec<UserIssuerPolicy>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, UserIssuersError> {
        for (index, policy) in issuers.iter().enumerate() {
            let issuer = excerpt(&policy.issuer, EXCERPT_CHARS);
            if policy.issuer.is_empty() {
                return Err(UserIssuersError::Incomplete {
                    issuer,
                    problem: "has no issuer",
                });
            }
            if policy.algorithms.is_empty() {
                return Err(UserIssuersError::Incomplete {
                    issuer,
                    problem: "accepts no algorithm",
                });
            }
            if issuers[..index].iter().any(|p| p.issuer == policy.issuer) {
                return Err(UserIssuersError::DuplicateIssuer { issuer });
            }
        }
        Ok(UserTokenVerifier { issuers, clock })
    }

    /// The configured issuers.
    pub fn issuers(&self) -> &[UserIssuerPolicy] {
        &self.issuers
    }

    /// Rows 1–5: reads the token far enough to find the issuer whose `iss` it names. Nothing read
    /// here is trusted yet; it only picks the rules and keys. `Err` means "not a user token": the
    /// caller verifies it as a module token.
    pub fn route<'v, 't>(&'v self, token: &'t str) -> Result<UserToken<'v, 't>, NotUserToken> {
        if token.len() > MAX_USER_TOKEN_BYTES {
            return Err(NotUserToken::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(NotUserToken::Unreadable);
        };
        if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
            return Err(NotUserToken::Unreadable);
        }
        let object = |segment: &str| {
            BASE64URL_STRICT
                .decode(segment)
                .ok()
                .and_then(|bytes| strict_json::parse_object(&bytes).ok())
                .ok_or(NotUserToken::Unreadable)
        };
        let header = object(header_b64)?;
        let raw_claims = object(payload_b64)?;
        let mut saw_issuer = false;
        let routed = self.issuers.iter().find(|policy| {
            match claimed_issuer(&raw_claims, policy.namespace.as_deref()) {
                Some(Value::String(iss)) => {
                    saw_issuer = true;
                    *iss == policy.issuer
                }
                _ => false,
            }
        });
        let Some(policy) = routed else {
            return Err(
                if saw_issuer || matches!(raw_claims.get("iss"), Some(Value::String(_))) {
                    NotUserToken::UnknownIssuer
                } else {
                    NotUserToken::NoIssuer
                },
            );
        };
        let claims = match &policy.namespace {
            Some(namespace) => strip_namespace(&raw_claims, namespace),
            None => raw_claims,
        };
        Ok(UserToken {
            verifier: self,
            policy,
            header,
            claims,
            signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
            signature_b64,
        })
    }

    /// Routes and verifies in one step, with `keys_of` giving the routed issuer's keys.
    pub fn verify<'k>(
        &self,
        token: &str,
        keys_of: impl FnOnce(&UserIssuerPolicy) -> &'k UserKeySet,
    ) -> Result<UserIdentity, UserTokenError> {
        let routed = self.route(token)?;
        let keys = keys_of(routed.issuer());
        routed.verify(keys)
    }
}

/// A token routed to one issuer, not yet verified.
pub struct UserToken<'v, 't> {
    /// The verifier (for its clock).
    verifier: &'v UserTokenVerifier,
    /// The issuer whose `iss` the token names.
    policy: &'v UserIssuerPolicy,
    /// The decoded header.
    header: Map<String, Value>,
    /// The decoded claims, namespace already stripped for this issuer.
    claims: Map<String, Value>,
    /// `header.payload` as received: what the signature covers.
    signing_input: &'t str,
    /// The signature segment, decoded only when it is checked.
    signature_b64: &'t str,
}

impl fmt::Debug for UserToken<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token text: only which issuer it went to and its kid.
        f.debug_struct("UserToken")
            .field("issuer", &self.policy.issuer)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl<'v> UserToken<'v, '_> {
    /// The issuer the token was routed to: its keys are the ones to hand to [`UserToken::verify`].
    pub fn issuer(&self) -> &'v UserIssuerPolicy {
        self.policy
    }

    /// The header's `kid` when it is a string (unverified; a key source uses it to decide on a
    /// refetch).
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The `exp` claim (Unix seconds) when it is a valid NumericDate; unverified until
    /// [`UserToken::verify`] accepted the token (which requires it). A cache of verified tokens
    /// keeps an entry no longer than this.
    pub fn expires(&self) -> Option<i64> {
        self.numeric_date("exp").ok().flatten()
    }

    /// Rows 6–22: header, key, signature and claims, with `keys` of [`UserToken::issuer`].
    pub fn verify(&self, keys: &UserKeySet) -> Result<UserIdentity, UserTokenError> {
        let algorithm = self.algorithm()?;
        self.check_header()?;
        let candidates = self.candidates(keys, algorithm)?;
        self.check_signature(&candidates)?;
        self.check_times()?;
        self.check_audience()?;
        let (id, username) = self.names()?;
        let roles = self.roles()?;
        Ok(UserIdentity {
            id,
            username,
            roles,
        })
    }

    /// Rows 6–7: `alg` present and in the issuer's allow-list.
    fn algorithm(&self) -> Result<UserAlgorithm, UserTokenError> {
        let alg = match self.header.get("alg") {
            None => return Err(UserTokenError::MissingAlgorithm),
            Some(Value::String(alg)) => alg,
            Some(other) => {
                return Err(UserTokenError::AlgorithmRefused {
                    alg: format!("<{}>", json_type(other)),
                });
            }
        };
        let refused = || UserTokenError::AlgorithmRefused {
            alg: excerpt(alg, 16),
        };
        let algorithm: UserAlgorithm = alg.parse().map_err(|_| refused())?;
        if !self.policy.algorithms.contains(&algorithm) {
            return Err(refused());
        }
        Ok(algorithm)
    }

    /// Rows 8–10: no `crit`; `typ`; `kid` a string when present. `jku`, `x5u`, `jwk` and `x5c`
    /// are never read.
    fn check_header(&self) -> Result<(), UserTokenError> {
        if self.header.contains_key("crit") {
            return Err(UserTokenError::CriticalHeader);
        }
        match self.header.get("typ") {
            None if self.policy.require_typ => {
                return Err(UserTokenError::BadType {
                    typ: "<absent>".to_owned(),
                });
            }
            None => {}
            Some(Value::String(typ)) if typ == "JWT" => {}
            Some(Value::String(typ)) => {
                return Err(UserTokenError::BadType {
                    typ: excerpt(typ, 16),
                });
            }
            Some(other) => {
                return Err(UserTokenError::BadType {
                    typ: format!("<{}>", json_type(other)),
                });
            }
        }
        match self.header.get("kid") {
            None | Some(Value::String(_)) => Ok(()),
            Some(_) => Err(UserTokenError::InvalidKid),
        }
    }

    /// Rows 11–12: the keys to try. One key: that key, whatever the `kid`. A set: the keys whose
    /// `kid` equals the token's; when none does, the keys without a `kid`; a token without `kid`
    /// tries every key. Only keys of the `alg`'s type remain.
    fn candidates<'k>(
        &self,
        keys: &'k UserKeySet,
        algorithm: UserAlgorithm,
    ) -> Result<Vec<&'k UserKey>, UserTokenError> {
        let fits = |key: &&UserKey| key.algorithm() == algorithm;
        let named: Vec<&UserKey> = match (keys.form(), self.kid()) {
            (KeyForm::Single, _) | (KeyForm::Set, None) => keys.keys().iter().collect(),
            (KeyForm::Set, Some(kid)) if keys.contains_kid(kid) => keys
                .keys()
                .iter()
                .filter(|key| key.kid() == Some(kid))
                .collect(),
            (KeyForm::Set, Some(_)) => {
                let unnamed: Vec<&UserKey> = keys
                    .keys()
                    .iter()
                    .filter(|key| key.kid().is_none())
                    .collect();
                if unnamed.is_empty() {
                    return Err(UserTokenError::UnknownKid);
                }
                unnamed
            }
        };
        let candidates: Vec<&UserKey> = named.into_iter().filter(fits).collect();
        if candidates.is_empty() {
            return Err(UserTokenError::AlgorithmKeyMismatch);
        }
        Ok(candidates)
    }

    /// Rows 13–14: the signature verifies with one candidate, over the bytes received.
    fn check_signature(&self, candidates: &[&UserKey]) -> Result<(), UserTokenError> {
        let signature = BASE64URL_STRICT
            .decode(self.signature_b64)
            .map_err(|_| UserTokenError::BadBase64)?;
        let message = self.signing_input.as_bytes();
        if candidates
            .iter()
            .any(|key| key.verifies(message, &signature))
        {
            Ok(())
        } else {
            Err(UserTokenError::BadSignature)
        }
    }

    /// Rows 15–19: `exp` required, `iat` required by MicroProfile JWT or a token age, `nbf`
    /// optional; `iat ≤ exp`; `iat`, `nbf` ≤ now + skew; now ≤ `exp` + skew; token age.
    fn check_times(&self) -> Result<(), UserTokenError> {
        let exp = self
            .numeric_date("exp")?
            .ok_or(UserTokenError::MissingTimeClaim { claim: "exp" })?;
        let iat = self.numeric_date("iat")?;
        let iat_required =
            self.policy.rules == IssuerRules::MicroProfileJwt || self.policy.token_age.is_some();
        if iat.is_none() && iat_required {
            return Err(UserTokenError::MissingTimeClaim { claim: "iat" });
        }
        let nbf = self.numeric_date("nbf")?;
        if iat.is_some_and(|iat| iat > exp) {
            return Err(UserTokenError::IssuedAfterExpiry);
        }
        let now = i128::from(self.verifier.clock.now_unix());
        let skew = i128::from(self.policy.clock_skew.as_secs());
        for (claim, value) in [("iat", iat), ("nbf", nbf)] {
            if value.is_some_and(|value| i128::from(value) > now + skew) {
                return Err(UserTokenError::NotYetValid { claim });
            }
        }
        if now > i128::from(exp) + skew {
            return Err(UserTokenError::Expired);
        }
        if let (Some(age), Some(iat)) = (self.policy.token_age, iat)
            && now - i128::from(iat) > i128::from(age.as_secs())
        {
            return Err(UserTokenError::TooOld);
        }
        Ok(())
    }

    /// A NumericDate claim when present: a non-negative integer JSON number.
    fn numeric_date(&self, claim: &'static str) -> Result<Option<i64>, UserTokenError> {
        match self.claims.get(claim) {
            None => Ok(None),
            Some(Value::Number(number)) => number
                .as_i64()
                .filter(|value| *value >= 0)
                .map(Some)
                .ok_or(UserTokenError::InvalidTimeClaim { claim }),
            Some(_) => Err(UserTokenError::InvalidTimeClaim { claim }),
        }
    }

    /// Row 20: with audiences configured, `aud` (a string or an array of strings) names one.
    fn check_audience(&self) -> Result<(), UserTokenError> {
        if self.policy.audiences.is_empty() {
            return Ok(());
        }
        let configured = |aud: &str| self.policy.audiences.iter().any(|wanted| wanted == aud);
        let named = match self.claims.get("aud") {
            None => return Err(UserTokenError::MissingAudience),
            Some(Value::String(aud)) => configured(aud),
            Some(Value::Array(auds)) => {
                if !auds.iter().all(Value::is_string) {
                    return Err(UserTokenError::InvalidAudience);
                }
                auds.iter().filter_map(Value::as_str).any(configured)
            }
            Some(_) => return Err(UserTokenError::InvalidAudience),
        };
        if named {
            Ok(())
        } else {
            Err(UserTokenError::WrongAudience)
        }
    }

    /// Row 21: the id and the username, by the issuer's rules.
    fn names(&self) -> Result<(String, String), UserTokenError> {
        match self.policy.rules {
            IssuerRules::Keycloak => {
                let id = self
                    .name_claim("sub")?
                    .ok_or(UserTokenError::MissingNameClaim { claim: "sub" })?;
                let username = self.name_claim("preferred_username")?.ok_or(
                    UserTokenError::MissingNameClaim {
                        claim: "preferred_username",
                    },
                )?;
                Ok((id, username))
            }
            IssuerRules::MicroProfileJwt => {
                let mut name = None;
                for claim in MP_NAME_CLAIMS {
                    if let Some(value) = self.name_claim(claim)? {
                        name = Some(value);
                        break;
                    }
                }
                let name = name.ok_or(UserTokenError::MissingNameClaim {
                    claim: "upn, preferred_username or sub",
                })?;
                let id = self.name_claim("sub")?.unwrap_or_else(|| name.clone());
                Ok((id, name))
            }
        }
    }

    /// A name claim when present; present but not a non-empty string is refused.
    fn name_claim(&self, claim: &'static str) -> Result<Option<String>, UserTokenError> {
        match self.claims.get(claim) {
            None => Ok(None),
            Some(Value::String(name)) if !name.is_empty() => Ok(Some(name.clone())),
            Some(_) => Err(UserTokenError::InvalidNameClaim { claim }),
        }
    }

    /// Row 22: `realm_access.roles` for Keycloak, `groups` for MicroProfile JWT; absent
    /// means no roles. Sorted, each once.
    fn roles(&self) -> Result<Vec<String>, UserTokenError> {
        let (claim, value) = match self.policy.rules {
            IssuerRules::Keycloak => {
                let claim = "realm_access.roles";
                match self.claims.get("realm_access") {
                    None => (claim, None),
                    Some(Value::Object(access)) => (claim, access.get("roles")),
                    Some(_) => return Err(UserTokenError::InvalidRoles { claim }),
                }
            }
            IssuerRules::MicroProfileJwt => ("groups", self.claims.get("groups")),
        };
        let mut roles: Vec<String> = match value {
            None => Vec::new(),
            Some(Value::String(one)) if self.policy.rules == IssuerRules::MicroProfileJwt => {
                vec![one.clone()]
            }
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or(UserTokenError::InvalidRoles { claim })?,
            Some(_) => return Err(UserTokenError::InvalidRoles { claim }),
        };
        roles.sort_unstable();
        roles.dedup();
        Ok(roles)
    }
}

/// The claims with `namespace` stripped from the names that start with it; a stripped name
/// replaces a claim already called that.
/// The `iss` a token's claims give under `namespace`, as [`strip_namespace`] would leave it, without
/// building the stripped claims: the namespaced name wins over the plain one.
fn claimed_issuer<'c>(
    claims: &'c Map<String, Value>,
    namespace: Option<&str>,
) -> Option<&'c Value> {
    match namespace {
        None => claims.get("iss"),
        Some(namespace) => claims
            .get(&format!("{namespace}iss"))
            .or_else(|| claims.get("iss").filter(|_| !"iss".starts_with(namespace))),
    }
}

fn strip_namespace(claims: &Map<String, Value>, namespace: &str) -> Map<String, Value> {
    let mut plain: Map<String, Value> = claims
        .iter()
        .filter(|(name, _)| !name.starts_with(namespace))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    for (name, value) in claims {
        if let Some(stripped) = name.strip_prefix(namespace)
            && !stripped.is_empty()
        {
            plain.insert(stripped.to_owned(), value.clone());
        }
    }
    plain
}
