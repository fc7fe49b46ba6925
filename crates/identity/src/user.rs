//! User tokens: people calling with `Authorization: Bearer <access token>` from an identity
//! provider, beside the module tokens of [`token`](crate::token).
//!
//! Two ways of configuring an issuer end in one verifier: Keycloak's (the product's properties; keys
//! are the realm's JWK set) and MicroProfile JWT's (the `mp.jwt.*` properties and Payara's vendor
//! file; keys as PEM, JWK or JWK set). [`UserIssuerPolicy`] holds an issuer's rules as data,
//! [`UserKeySet`] its public keys (RSA 2048–4096 or EC P-256, parsed from text the caller hands in),
//! and [`UserTokenVerifier`] turns a token into a [`UserIdentity`] or a [`UserTokenError`] with a
//! stable reason code. This module fetches nothing and has no runtime: reading key files, fetching
//! key URLs, caching them and refetching on an unknown `kid` belong to the layer above, which asks
//! [`UserToken::issuer`] whose keys to hand in.
//!
//! # Validation policy
//!
//! Routing ([`UserTokenVerifier::route`], rows 1–5) reads the token without trusting it, only to pick
//! the issuer; a token it cannot route is **not a user token** ([`NotUserToken`]) and the caller
//! verifies it as a module token, which refuses it precisely if it is nothing else. A routed token is
//! then checked by [`UserToken::verify`] (rows 6–22), in this order, each failure with its own
//! [`UserTokenError::reason`]:
//!
//! | # | check | reason |
//! |---|---|---|
//! | 1 | at most [`MAX_USER_TOKEN_BYTES`] bytes, before any decoding | not a user token (`token_too_large`) |
//! | 2 | three `.`-separated segments, none empty | not a user token (`unreadable`) |
//! | 3 | header and claims strict base64url of strict JSON objects (UTF-8, no duplicate member, depth ≤ 32) | not a user token (`unreadable`) |
//! | 4 | for an issuer with a namespace, claim names starting with it are read without it (replacing a claim of that name), `iss` included | — |
//! | 5 | `iss` a string equal, byte for byte, to a configured issuer's | not a user token (`no_iss`, `unknown_iss`) |
//! | 6 | `alg` present | `missing_alg` |
//! | 7 | `alg` is `RS256` or `ES256` and in the issuer's allow-list (`none`, HS*, PS*, RS512, ES384, … never are) | `alg_refused` |
//! | 8 | no `crit` (no extension is implemented); `jku`, `x5u`, `jwk`, `x5c` are ignored: no key is taken or fetched from a token | `crit_refused` |
//! | 9 | `typ` exactly `JWT`; absent only where the issuer allows it (Keycloak; Payara's `disable.type.verification`) | `bad_typ` |
//! | 10 | `kid`, when present, a string | `invalid_kid` |
//! | 11 | keys tried: a one-key source (PEM, one JWK) ignores `kid`; in a JWK set a `kid` naming keys selects those alone, a `kid` naming none selects the keys without `kid`, and none of those means an unknown `kid` | `unknown_kid` |
//! | 12 | at least one of those keys has the type `alg` needs (RSA for RS256, P-256 for ES256) | `alg_key_mismatch` |
//! | 13 | the signature segment is strict base64url | `bad_base64` |
//! | 14 | the signature verifies with one of those keys over `header.payload` as received | `bad_signature` |
//! | 15 | `exp` present; `iat` present for MicroProfile JWT or when a token age is set; `exp`, `iat`, `nbf` non-negative integers when present | `missing_time_claim`, `invalid_time_claim` |
//! | 16 | `iat` ≤ `exp` | `iat_after_exp` |
//! | 17 | `iat` and `nbf` ≤ now + skew | `not_yet_valid` |
//! | 18 | now ≤ `exp` + skew (equality accepted) | `expired` |
//! | 19 | with a token age, now − `iat` ≤ the age (no skew added) | `token_too_old` |
//! | 20 | with audiences configured, `aud` present, a string or an array of strings, sharing one value with them | `missing_aud`, `invalid_aud`, `wrong_aud` |
//! | 21 | Keycloak: `sub` and `preferred_username` non-empty strings (id, username). MicroProfile JWT: the first present of `upn`, `preferred_username`, `sub` is the username and a non-empty string; the id is `sub`, else the username | `missing_name_claim`, `invalid_name_claim` |
//! | 22 | roles: Keycloak `realm_access.roles`, MicroProfile JWT `groups` (an array of strings, or one string as one role); absent means none | `invalid_roles` |
//!
//! Not checked: `jti`, `azp`, `scope`, the `typ` claim, and any other claim. Roles are read only
//! where the issuer's rules say: `groups` is not a Keycloak role, `realm_access` not a MicroProfile
//! JWT role, `resource_access` never. Fractional NumericDates are refused (providers send
//! integers). JWE (encrypted tokens) is not accepted: it is not three segments of a signed token
//! and stops at row 2 or 7.

mod error;
mod identity;
mod keys;
mod policy;
mod verify;

pub use error::{NotUserToken, UserIssuersError, UserTokenError};
pub use identity::UserIdentity;
pub(crate) use identity::roles_text;
pub use keys::{
    KeyFilter, KeyForm, MAX_KEY_SET_BYTES, MAX_KEY_SET_KEYS, MAX_RSA_BITS, MIN_RSA_BITS,
    UnknownUserAlgorithm, UserAlgorithm, UserKey, UserKeyError, UserKeySet,
};
pub use policy::{
    DEFAULT_PAYARA_KEY_CACHE_TTL, DEFAULT_PAYARA_NAMESPACE, DEFAULT_USER_CLOCK_SKEW, IssuerRules,
    PayaraSettings, UserIssuerPolicy, keycloak_certs_url, keycloak_issuer,
};
pub use verify::{TokenText, UserToken, UserTokenVerifier};

/// The largest user token accepted, in bytes. Twice the module tokens' bound: a Keycloak access
/// token carries the user's realm roles and grows with them.
pub const MAX_USER_TOKEN_BYTES: usize = 16 * 1024;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests;
