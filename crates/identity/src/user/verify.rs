//! [`UserTokenVerifier`]: routes a Bearer token to its issuer by the unverified `iss`, then checks
//! it against that issuer's keys and rules (the table in the module docs, rows 1–22).

use std::fmt;
use std::sync::Arc;

use super::MAX_USER_TOKEN_BYTES;
use super::error::{NotUserToken, UserIssuersError, UserTokenError};
use super::identity::UserIdentity;
use super::keys::{KeyForm, UserAlgorithm, UserKey, UserKeySet};
use super::policy::{IssuerRules, UserIssuerPolicy};
use crate::base64url::{self, Base64Error};
use crate::clock::Clock;
use crate::json_members::{self, Json, Members};
use crate::printable::{EXCERPT_CHARS, excerpt};

/// The name claims MicroProfile JWT reads, in order.
const MP_NAME_CLAIMS: [&str; 3] = ["upn", "preferred_username", "sub"];

/// The header members the rules read; the reader checks the others and keeps none of them.
const HEADER_READ: [&str; 4] = ["alg", "typ", "kid", "crit"];

/// The claims every issuer's rules read: routing, times, audience and the id.
const CLAIMS_READ_BY_ALL: [&str; 6] = ["iss", "exp", "iat", "nbf", "aud", "sub"];

/// The claims `rules` read besides [`CLAIMS_READ_BY_ALL`]: the name and the roles.
fn names_and_roles_read(rules: IssuerRules) -> &'static [&'static str] {
    match rules {
        IssuerRules::Keycloak => &["preferred_username", "realm_access"],
        IssuerRules::MicroProfileJwt => &["upn", "preferred_username", "groups"],
    }
}

/// Verifies user tokens of the configured issuers. Holds no keys: the caller hands in the routed
/// issuer's [`UserKeySet`], so where keys come from (text, file, URL and its cache) stays a floor
/// above. Send + Sync; share it behind an `Arc`.
pub struct UserTokenVerifier {
    /// The issuers, each with a distinct `iss`.
    issuers: Vec<UserIssuerPolicy>,
    /// The claims the issuers' rules read (under a namespace too); a token's other claims are
    /// checked under the same strict JSON rules and dropped as they are read.
    claims_read: Vec<&'static str>,
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
        let mut claims_read = CLAIMS_READ_BY_ALL.to_vec();
        for policy in &issuers {
            for claim in names_and_roles_read(policy.rules) {
                if !claims_read.contains(claim) {
                    claims_read.push(claim);
                }
            }
        }
        Ok(UserTokenVerifier {
            issuers,
            claims_read,
            clock,
        })
    }

    /// The configured issuers.
    pub fn issuers(&self) -> &[UserIssuerPolicy] {
        &self.issuers
    }

    /// Rows 1–5: reads the token far enough to find the issuer whose `iss` it names. Nothing read
    /// here is trusted yet; it only picks the rules and keys. `Err` means "not a user token": the
    /// caller verifies it as a module token. The header and claims are decoded into `text`, which
    /// the routed token borrows its strings from.
    pub fn route<'v, 't>(
        &'v self,
        token: &'t str,
        text: &'t mut TokenText,
    ) -> Result<UserToken<'v, 't>, NotUserToken> {
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
        // One buffer for both segments' bytes, which the kept members borrow from.
        let TokenText(decoded) = text;
        decoded.clear();
        // Room for both at once (base64 is 4 characters for 3 bytes): one allocation, no copy.
        decoded.reserve((header_b64.len() + payload_b64.len()).div_ceil(4) * 3);
        let decode = |segment: &str, into: &mut Vec<u8>| {
            base64url::decode_onto(segment.as_bytes(), into).map_err(|_| NotUserToken::Unreadable)
        };
        decode(header_b64, decoded)?;
        let header_length = decoded.len();
        decode(payload_b64, decoded)?;
        let decoded: &'t Vec<u8> = decoded;
        let (header, claims) = decoded.split_at(header_length);
        let header = json_members::read_members(header, &|name| HEADER_READ.contains(&name))
            .map_err(|_| NotUserToken::Unreadable)?;
        let claims = json_members::read_members(claims, &|name| self.reads_claim(name))
            .map_err(|_| NotUserToken::Unreadable)?;
        let mut saw_issuer = false;
        let routed = self.issuers.iter().find(|policy| {
            match claim_under(&claims, policy.namespace.as_deref(), "iss") {
                Some(Json::String(iss)) => {
                    saw_issuer = true;
                    *iss == *policy.issuer
                }
                _ => false,
            }
        });
        let Some(policy) = routed else {
            return Err(
                if saw_issuer || matches!(claims.get("iss"), Some(Json::String(_))) {
                    NotUserToken::UnknownIssuer
                } else {
                    NotUserToken::NoIssuer
                },
            );
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

    /// Whether some issuer's rules read the claim called `name`, plainly or under its namespace.
    fn reads_claim(&self, name: &str) -> bool {
        self.claims_read.contains(&name)
            || self.issuers.iter().any(|policy| {
                policy
                    .namespace
                    .as_deref()
                    .and_then(|namespace| name.strip_prefix(namespace))
                    .is_some_and(|plain| self.claims_read.contains(&plain))
            })
    }

    /// Routes and verifies in one step, with `keys_of` giving the routed issuer's keys.
    pub fn verify<'k>(
        &self,
        token: &str,
        keys_of: impl FnOnce(&UserIssuerPolicy) -> &'k UserKeySet,
    ) -> Result<UserIdentity, UserTokenError> {
        let mut text = TokenText::default();
        let routed = self.route(token, &mut text)?;
        let keys = keys_of(routed.issuer());
        routed.verify(keys)
    }
}

/// Where [`UserTokenVerifier::route`] decodes a token's header and claims; the routed token
/// borrows its strings from it, so what the rules read is never copied. Reusable: routing
/// clears it first.
#[derive(Default)]
pub struct TokenText(Vec<u8>);

impl fmt::Debug for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A person's claims are theirs: only how much was decoded.
        f.debug_struct("TokenText")
            .field("bytes", &self.0.len())
            .finish()
    }
}

/// A token routed to one issuer, not yet verified.
pub struct UserToken<'v, 't> {
    /// The verifier (for its clock).
    verifier: &'v UserTokenVerifier,
    /// The issuer whose `iss` the token names.
    policy: &'v UserIssuerPolicy,
    /// The header members the rules read.
    header: Members<'t>,
    /// The claims the rules read, as named in the token (see [`UserToken::claim`]).
    claims: Members<'t>,
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
        self.header.get("kid").and_then(Json::as_str)
    }

    /// The `exp` claim (Unix seconds) when it is a valid NumericDate; unverified until
    /// [`UserToken::verify`] accepted the token (which requires it). A cache of verified tokens
    /// keeps an entry no longer than this.
    pub fn expires(&self) -> Option<i64> {
        self.numeric_date("exp").ok().flatten()
    }

    /// The claim called `name` under the issuer's namespace.
    fn claim(&self, name: &str) -> Option<&Json<'_>> {
        claim_under(&self.claims, self.policy.namespace.as_deref(), name)
    }

    /// Rows 6–22: header, key, signature and claims, with `keys` of [`UserToken::issuer`].
    pub fn verify(&self, keys: &UserKeySet) -> Result<UserIdentity, UserTokenError> {
        let algorithm = self.algorithm()?;
        self.check_header()?;
        let candidates = self.candidates(keys, algorithm)?;
        self.check_signature(candidates)?;
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
            Some(Json::String(alg)) => alg,
            Some(other) => {
                return Err(UserTokenError::AlgorithmRefused {
                    alg: format!("<{}>", other.type_name()),
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
        if self.header.contains("crit") {
            return Err(UserTokenError::CriticalHeader);
        }
        match self.header.get("typ") {
            None if self.policy.require_typ => {
                return Err(UserTokenError::BadType {
                    typ: "<absent>".to_owned(),
                });
            }
            None => {}
            Some(Json::String(typ)) if typ == "JWT" => {}
            Some(Json::String(typ)) => {
                return Err(UserTokenError::BadType {
                    typ: excerpt(typ, 16),
                });
            }
            Some(other) => {
                return Err(UserTokenError::BadType {
                    typ: format!("<{}>", other.type_name()),
                });
            }
        }
        match self.header.get("kid") {
            None | Some(Json::String(_)) => Ok(()),
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
    ) -> Result<impl Iterator<Item = &'k UserKey>, UserTokenError> {
        let kid = self.kid();
        let by_kid = match (keys.form(), kid) {
            (KeyForm::Single, _) | (KeyForm::Set, None) => KidRule::Any,
            (KeyForm::Set, Some(kid)) if keys.contains_kid(kid) => KidRule::Named,
            (KeyForm::Set, Some(_)) => KidRule::Unnamed,
        };
        let named = move |key: &&'k UserKey| match by_kid {
            KidRule::Any => true,
            KidRule::Named => key.kid() == kid,
            KidRule::Unnamed => key.kid().is_none(),
        };
        if by_kid == KidRule::Unnamed && !keys.keys().iter().any(|key| named(&key)) {
            return Err(UserTokenError::UnknownKid);
        }
        let mut candidates = keys
            .keys()
            .iter()
            .filter(named)
            .filter(move |key| key.algorithm() == algorithm)
            .peekable();
        if candidates.peek().is_none() {
            return Err(UserTokenError::AlgorithmKeyMismatch);
        }
        Ok(candidates)
    }

    /// Rows 13–14: the signature verifies with one candidate, over the bytes received.
    fn check_signature<'k>(
        &self,
        mut candidates: impl Iterator<Item = &'k UserKey>,
    ) -> Result<(), UserTokenError> {
        // No key is over 4096 bits, so no valid signature is over 512 bytes.
        let mut decoded = [0u8; 512];
        let signature = base64url::decode_slice(self.signature_b64.as_bytes(), &mut decoded)
            .map_err(|error| match error {
                Base64Error::TooLong => UserTokenError::BadSignature,
                Base64Error::Invalid => UserTokenError::BadBase64,
            })?;
        let message = self.signing_input.as_bytes();
        if candidates.any(|key| key.verifies(message, signature)) {
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
        match self.claim(claim) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                .filter(|value| *value >= 0)
                .map(Some)
                .ok_or(UserTokenError::InvalidTimeClaim { claim }),
        }
    }

    /// Row 20: with audiences configured, `aud` (a string or an array of strings) names one.
    fn check_audience(&self) -> Result<(), UserTokenError> {
        if self.policy.audiences.is_empty() {
            return Ok(());
        }
        let configured = |aud: &str| self.policy.audiences.iter().any(|wanted| wanted == aud);
        let named = match self.claim("aud") {
            None => return Err(UserTokenError::MissingAudience),
            Some(Json::String(aud)) => configured(aud),
            Some(Json::Array(auds)) => {
                let auds: Option<Vec<&str>> = auds.iter().map(Json::as_str).collect();
                auds.ok_or(UserTokenError::InvalidAudience)?
                    .into_iter()
                    .any(configured)
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
        match self.claim(claim) {
            None => Ok(None),
            Some(Json::String(name)) if !name.is_empty() => Ok(Some(name.clone().into_owned())),
            Some(_) => Err(UserTokenError::InvalidNameClaim { claim }),
        }
    }

    /// Row 22: `realm_access.roles` for Keycloak, `groups` for MicroProfile JWT; absent
    /// means no roles. Sorted, each once.
    fn roles(&self) -> Result<Vec<String>, UserTokenError> {
        let (claim, value) = match self.policy.rules {
            IssuerRules::Keycloak => {
                let claim = "realm_access.roles";
                match self.claim("realm_access") {
                    None => (claim, None),
                    Some(access @ Json::Object(_)) => (claim, access.get("roles")),
                    Some(_) => return Err(UserTokenError::InvalidRoles { claim }),
                }
            }
            IssuerRules::MicroProfileJwt => ("groups", self.claim("groups")),
        };
        let mut roles: Vec<String> = match value {
            None => Vec::new(),
            Some(Json::String(one)) if self.policy.rules == IssuerRules::MicroProfileJwt => {
                vec![one.clone().into_owned()]
            }
            Some(Json::Array(items)) => items
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

/// Which keys of a set a token's `kid` selects (rows 11–12).
#[derive(Clone, Copy, PartialEq, Eq)]
enum KidRule {
    /// One key, or a token without `kid`: every key.
    Any,
    /// The keys with the token's `kid`.
    Named,
    /// No key has the token's `kid`: the keys without one.
    Unnamed,
}

/// The claim called `name` as an issuer with `namespace` reads it: `<namespace>name` wins over a
/// plain `name`, and a plain member whose name starts with the namespace is never read plainly
/// (Payara strips the namespace from the names that carry it, and they replace the plain ones).
fn claim_under<'c, 't>(
    claims: &'c Members<'t>,
    namespace: Option<&str>,
    name: &str,
) -> Option<&'c Json<'t>> {
    let Some(namespace) = namespace else {
        return claims.get(name);
    };
    claims
        .iter()
        .find_map(|(member, value)| (member.strip_prefix(namespace) == Some(name)).then_some(value))
        .or_else(|| claims.get(name).filter(|_| !name.starts_with(namespace)))
}
