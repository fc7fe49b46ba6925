//! The verified-user-token cache: a hit gives the identity the full check gave, an entry never
//! outlives the token's `exp`, a key set that no longer holds the signing key ends its tokens'
//! entries, a storm of distinct tokens leaves the cache at its bound, and a refusal says which
//! issuer and `kid` the token claimed, read in the same pass. Tokens are signed with
//! josekit (RS256), an implementation independent of svcid's, with keys generated at run time.

// Tests may unwrap: a panic is how they report a failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::json;
use svcid_actuator::metrics::Exposition;
use svcid_config::{ServerTrust, UserIssuerSettings, UserKeySource, UserSettings};
use svcid_identity::clock::{ManualClock, SystemClock};
use svcid_identity::user::{UserIssuerPolicy, UserKeySet};
use svcid_testkit::jwks::{JwksServer, RealmKey, jwks};
use svcid_users::{ClaimedOrigin, FetchOptions, RefusedToken, USER_TOKEN_CACHE_CAPACITY, Users};

const ISSUER: &str = "https://idp.example/realms/ataccama";

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A Keycloak token of `iss` for `subject`, signed by `key` under its `kid`, valid from `iat`
/// for `lifetime` seconds.
fn token(iss: &str, key: &RealmKey, subject: &str, iat: i64, lifetime: i64) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(key.kid());
    let mut payload = JwtPayload::new();
    payload.set_issuer(iss);
    payload.set_subject(subject);
    payload.set_claim("iat", Some(json!(iat))).unwrap();
    payload
        .set_claim("exp", Some(json!(iat + lifetime)))
        .unwrap();
    payload
        .set_claim("preferred_username", Some(json!(subject)))
        .unwrap();
    payload
        .set_claim("realm_access", Some(json!({"roles": ["DPM_ADMIN"]})))
        .unwrap();
    let signer = RS256.signer_from_pem(key.private_pem()).unwrap();
    jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

/// A module whose one Keycloak issuer has `key` loaded at start, on `clock`.
fn loaded(key: &RealmKey, clock: Arc<ManualClock>) -> Users {
    let policy = UserIssuerPolicy::keycloak(ISSUER);
    let keys = UserKeySet::parse(&jwks(&[key]), policy.key_filter()).unwrap();
    let settings = UserSettings {
        issuers: vec![UserIssuerSettings {
            policy,
            keys: UserKeySource::Loaded {
                keys: Arc::new(keys),
                from: "mp.jwt.verify.publickey".to_owned(),
            },
            key_cache_ttl: Duration::from_secs(300),
            key_refetch_interval: Duration::from_secs(30),
        }],
        ..UserSettings::default()
    };
    Users::new(&settings, &ServerTrust::SystemRoots, clock).unwrap()
}

#[tokio::test]
async fn a_hit_gives_the_identity_the_full_check_gave_and_is_counted() {
    let key = RealmKey::signing().unwrap();
    let now = unix_now();
    let users = loaded(&key, Arc::new(ManualClock::new(now)));
    let alice = token(ISSUER, &key, "alice", now, 300);
    let first = users.authenticate(&alice).await.unwrap();
    assert_eq!(users.token_cache_counts(), (0, 1));
    assert_eq!(users.cached_tokens(), 1);
    let second = users.authenticate(&alice).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.username, "alice");
    assert_eq!(users.token_cache_counts(), (1, 1));

    // Another person's token is no hit for alice's entry.
    let bob = token(ISSUER, &key, "bob", now, 300);
    assert_eq!(users.authenticate(&bob).await.unwrap().username, "bob");
    assert_eq!(users.token_cache_counts(), (1, 2));

    // A refused token is never remembered: every attempt is checked in full.
    let other = RealmKey::signing().unwrap().with_kid(key.kid());
    let forged = token(ISSUER, &other, "mallory", now, 300);
    for _ in 0..2 {
        assert_eq!(
            users.authenticate(&forged).await.unwrap_err().reason(),
            "bad_signature"
        );
    }
    assert_eq!(users.token_cache_counts(), (1, 4));
    assert_eq!(users.cached_tokens(), 2);

    let mut out = Exposition::new();
    users.render_metrics(&mut out);
    let text = out.into_text();
    assert!(
        text.contains("svcid_user_token_cache_total{result=\"hit\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("svcid_user_token_cache_total{result=\"miss\"} 4\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_refusal_names_the_issuer_and_kid_the_token_claimed() {
    let key = RealmKey::signing().unwrap();
    let now = unix_now();
    let users = loaded(&key, Arc::new(ManualClock::new(now)));
    let forger = RealmKey::signing().unwrap().with_kid("forged-kid");
    let forged = token(ISSUER, &forger, "mallory", now, 300);
    let RefusedToken { error, origin } = users.verify_person(&forged).await.unwrap_err();
    assert_eq!(error.reason(), "unknown_kid");
    let ClaimedOrigin { issuer, kid } = origin.unwrap();
    assert_eq!(
        (issuer.as_str(), kid.as_deref()),
        (ISSUER, Some("forged-kid"))
    );

    // A token of an issuer nobody configured is no person's token: nothing to name.
    let stranger = token("https://elsewhere.example", &key, "eve", now, 300);
    let refused = users.verify_person(&stranger).await.unwrap_err();
    assert_eq!(refused.error.reason(), "unknown_iss");
    assert!(refused.origin.is_none());
    assert_eq!(users.cached_tokens(), 0);
}

#[tokio::test]
async fn an_entry_never_outlives_the_tokens_exp_and_an_expired_token_is_refused() {
    let key = RealmKey::signing().unwrap();
    let now = unix_now();
    let clock = Arc::new(ManualClock::new(now));
    let users = loaded(&key, Arc::clone(&clock));
    let alice = token(ISSUER, &key, "alice", now, 300);
    users.authenticate(&alice).await.unwrap();
    clock.advance(299);
    users.authenticate(&alice).await.unwrap();
    assert_eq!(users.token_cache_counts(), (1, 1));
    // At `exp` the entry no longer answers: the full check runs (and still grants the skew).
    clock.advance(1);
    users.authenticate(&alice).await.unwrap();
    assert_eq!(users.token_cache_counts(), (1, 2));
    // Past `exp` and the skew, the token is refused although it was verified before.
    clock.advance(61);
    assert_eq!(
        users.authenticate(&alice).await.unwrap_err().reason(),
        "expired"
    );
    assert_eq!(users.token_cache_counts(), (1, 3));
    assert_eq!(users.cached_tokens(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_without_the_signing_kid_ends_its_cached_tokens() {
    let server = JwksServer::start().unwrap();
    let policy = UserIssuerPolicy::keycloak(server.issuer());
    let settings = UserSettings {
        issuers: vec![UserIssuerSettings {
            policy,
            keys: UserKeySource::Url(server.certs_url()),
            key_cache_ttl: Duration::from_secs(300),
            key_refetch_interval: Duration::from_millis(200),
        }],
        ..UserSettings::default()
    };
    let users = Users::with_options(
        &settings,
        &ServerTrust::SystemRoots,
        Arc::new(SystemClock),
        FetchOptions {
            timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
        },
    )
    .unwrap();
    let now = unix_now();
    let old = token(&server.issuer(), server.signing_key(), "alice", now, 300);
    users.authenticate(&old).await.unwrap();
    users.authenticate(&old).await.unwrap();
    assert_eq!(users.token_cache_counts(), (1, 1));

    // The realm rotates: the old key is gone. A token of the new key makes the module refetch.
    let rotated = RealmKey::signing().unwrap();
    server.set_keys(&[&rotated, server.encryption_key()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new = token(&server.issuer(), &rotated, "bob", now, 300);
    users.authenticate(&new).await.unwrap();
    assert_eq!(server.requests(), 2);

    // The old token was cached, but the keys in force no longer hold its kid: refused.
    let refused = users.authenticate(&old).await.unwrap_err();
    assert_eq!(refused.reason(), "unknown_kid", "{refused}");
    assert_eq!(users.token_cache_counts(), (1, 3));
    assert_eq!(users.cached_tokens(), 1);
    // The new key's token is answered from the cache.
    users.authenticate(&new).await.unwrap();
    assert_eq!(users.token_cache_counts(), (2, 3));
}

#[tokio::test]
async fn ten_thousand_distinct_tokens_leave_the_cache_at_its_bound() {
    let key = RealmKey::signing().unwrap();
    let now = unix_now();
    let users = loaded(&key, Arc::new(ManualClock::new(now)));
    let signer = RS256.signer_from_pem(key.private_pem()).unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(key.kid());
    for n in 0..10_000 {
        let mut payload = JwtPayload::new();
        payload.set_issuer(ISSUER);
        payload.set_subject(format!("user-{n}"));
        payload.set_claim("iat", Some(json!(now))).unwrap();
        payload.set_claim("exp", Some(json!(now + 300))).unwrap();
        payload
            .set_claim("preferred_username", Some(json!(format!("user-{n}"))))
            .unwrap();
        let token = jwt::encode_with_signer(&payload, &header, &signer).unwrap();
        users.authenticate(&token).await.unwrap();
        assert!(users.cached_tokens() <= USER_TOKEN_CACHE_CAPACITY);
    }
    assert_eq!(users.cached_tokens(), USER_TOKEN_CACHE_CAPACITY);
    assert_eq!(users.token_cache_counts(), (0, 10_000));
}
