//! People's tokens for the benchmarks: an RSA key generated at run time (`svcid_testkit::jwks`)
//! and RS256 tokens signed with josekit, an implementation independent of svcid's, as a user's
//! identity provider would issue them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::json;
use svcid_config::{UserIssuerSettings, UserKeySource, UserSettings};
use svcid_identity::user::{UserIssuerPolicy, UserKeySet};
use svcid_testkit::jwks::{RealmKey, jwks};

/// The `iss` of the benchmarks' MicroProfile JWT issuer.
pub const ISSUER: &str = "https://idp.bench.invalid/realms/bench";

/// An RS256 token of `iss` for the person `subject` with `roles` (as MicroProfile JWT's `groups`
/// and Keycloak's realm roles), signed by `key` with `kid` in
/// its header, issued at `iat` and valid for `lifetime` seconds.
pub fn rs256_token(
    key: &RealmKey,
    kid: &str,
    iss: &str,
    subject: &str,
    roles: &[&str],
    iat: i64,
    lifetime: i64,
) -> Result<String> {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(kid);
    let mut payload = JwtPayload::new();
    payload.set_issuer(iss);
    payload.set_subject(subject);
    payload.set_claim("upn", Some(json!(subject)))?;
    payload.set_claim("groups", Some(json!(roles)))?;
    // Keycloak's rules read these two instead of `upn` and `groups`.
    payload.set_claim("preferred_username", Some(json!(subject)))?;
    payload.set_claim("realm_access", Some(json!({ "roles": roles })))?;
    payload.set_claim("iat", Some(json!(iat)))?;
    payload.set_claim("exp", Some(json!(iat + lifetime)))?;
    let signer = RS256
        .signer_from_pem(key.private_pem())
        .context("reading the benchmark's RSA key")?;
    jwt::encode_with_signer(&payload, &header, &signer).context("signing a user token")
}

/// A MicroProfile JWT issuer [`ISSUER`] whose key set (`key`) is loaded, as from
/// `mp.jwt.verify.publickey`.
pub fn loaded_issuer(key: &RealmKey) -> Result<UserSettings> {
    let policy = UserIssuerPolicy::micro_profile(ISSUER);
    let keys = UserKeySet::parse(&jwks(&[key]), policy.key_filter())
        .context("parsing the benchmark's key set")?;
    Ok(UserSettings {
        issuers: vec![UserIssuerSettings {
            policy,
            keys: UserKeySource::Loaded {
                keys: Arc::new(keys),
                from: "mp.jwt.verify.publickey".to_owned(),
            },
            key_cache_ttl: Duration::from_secs(300),
            key_refetch_interval: Duration::from_secs(10),
        }],
        ..UserSettings::default()
    })
}
