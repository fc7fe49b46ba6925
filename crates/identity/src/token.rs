//! ES256 service tokens: minting with this module's key and strict verification of peers' tokens.
//!
//! [`TokenIssuer`] signs compact JWS tokens with an OpenSSL-backed ES256 signer and reuses a
//! token per audience until about a third of its lifetime is left. [`TokenVerifier`] turns the
//! `authorization` metadata of one call into a [`CallerIdentity`](crate::identity::CallerIdentity) or a precise [`AuthError`]. It does
//! its own parsing of the compact JWS (so the order of checks and the refusal reasons are ours, not a
//! library's) and only hands the final signature check to an OpenSSL key prepared when the
//! deployment table was built (`es256`). This module knows nothing about gRPC: the daemons pass metadata
//! bytes in and map errors to `UNAUTHENTICATED` themselves.
//!
//! # Validation policy
//!
//! Checked, in this order, each failure with its own [`AuthError::reason`] code. The stages of
//! [`TokenVerifier`] follow the table: the `authorization` value (1–5), the segments (6–7), the
//! header (8–11 and the form of `kid`), the key (the `kid` lookup of 12, then 13–14), the signature
//! (15) and the claims (16–23).
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
//! | 21 | `aud` (string or array of strings) contains this module's type; required unless `require-audience=false` or the key's deployment has the `product` [token profile](TokenProfile); when present it must name us under every profile; a wrong JSON type is always refused | `missing_aud`, `invalid_aud`, `wrong_aud` |
//! | 22 | `jti`, when present, is a string | `invalid_jti` |
//! | 23 | `usr`, when present, is `{id, username, roles}` and the peer holds the impersonation role | `invalid_usr`, `impersonation_not_allowed` |
//!
//! Token profiles (docs/wire.md) are per deployment and change row 21 only:
//!
//! | profile of the key's deployment | token without `aud` | token with `aud` |
//! |---|---|---|
//! | `strict` (default) | refused (`missing_aud`), unless `require-audience=false` | must name this module |
//! | `product` | accepted | must name this module |
//!
//! Every other row applies to both: a product peer's token still needs `typ` `JWT` or none, a
//! configured `kid`, a valid signature, the time claims, a bounded lifetime, a string `jti` if any
//! and the impersonation role for `usr`. Minting follows the receiver's profile:
//! [`TokenIssuer::token_for_peer`] leaves `aud` out for a product peer.
//!
//! Not checked: `iss` and `sub` (the peer is identified by its key alone), and any other claim.
//! `roles` or `module` claims are ignored: the identity is the local deployment's module, name and
//! roles. Fractional NumericDates are refused (svcid mints integers).
//!
//! Verified tokens are cached by their full text until they expire; a cache hit re-checks `exp`
//! against the clock, and [`TokenVerifier::replace_deployments`] empties the cache in the same step
//! that installs the new deployments, so a revoked key's cached tokens are refused at once.

mod error;
mod issue;
mod profile;
mod verify;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use error::{AuthError, AuthErrorKind};
pub use issue::TokenIssuer;
pub use profile::{TokenProfile, UnknownTokenProfile};
pub use verify::{CacheStats, TokenVerifier, VerifyPolicy};

/// The largest `authorization` value accepted, in bytes; larger ones are refused before decoding.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// The `authorization` scheme svcid sends (`Internal-jwt <token>`); verifiers also accept
/// `Bearer`, in any case.
pub const SCHEME: &str = "Internal-jwt";
/// Default lifetime of minted tokens (`…jwt.generator.token-expiration`).
pub const DEFAULT_TOKEN_EXPIRATION: Duration = Duration::from_secs(15);
/// Default leeway on `iat`, `nbf` and `exp` (`…jwt.clock-skew`).
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Default ceiling on `exp - iat` (`…jwt.max-token-lifetime`).
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(4 * 60 * 60);
/// Default of `…jwt.require-audience`: tokens without `aud` are refused.
pub const DEFAULT_REQUIRE_AUDIENCE: bool = true;
/// Default role a peer needs to send a `usr` claim (`…jwt.impersonation-role`).
pub const DEFAULT_IMPERSONATION_ROLE: &str = "IMPERSONATION";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps half-updated in a way that matters: recover.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests;
