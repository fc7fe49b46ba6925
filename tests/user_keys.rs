//! The life of a Keycloak realm's keys under a real DPM: the realm (a test-side server publishing
//! its keys as Keycloak's `…/protocol/openid-connect/certs` does, counting every request) rotates
//! its signing key, is down when DPM starts, goes down after keys were fetched, and is flooded
//! with tokens naming made-up `kid`s. People call `IdentityService.WhoAmI` with
//! `authorization: Bearer …`; tokens are signed here with josekit (RS256), an implementation
//! independent of svcid's.
//!
//! Security rows shown here (docs/users.md "Keys behind a URL"): U8 (a thousand unknown `kid`s
//! cost at most one fetch per min-time, others unaffected), U9 (the key URL down: no panic, the
//! last good keys kept, each failure logged, health stays `UP`), U10 (a person on the product
//! wire is denied).

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant, SystemTime};

use common::{Daemon, Pair, get_json, http_port};
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};
use svcid_proto::pb::heartbeat::HeartbeatRequest;
use svcid_proto::pb::heartbeat::heartbeat_service_client::HeartbeatServiceClient;
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use svcid_proto::pb::identity::{WhoAmIRequest, WhoAmIResponse};
use svcid_proto::pb::registry::registry_service_client::RegistryServiceClient;
use svcid_proto::pb::registry::{EngineAddress, RegistrationRequest};
use svcid_testkit::jwks::{JwksServer, REALM, RealmKey};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

const SUBJECT: &str = "0b9e2c4a-1d3f-4e5a-8b7c-000000000007";
const TTL: &str = "ataccama.authentication.keycloak.token.key-cache-ttl";
const MIN_TIME: &str = "ataccama.authentication.keycloak.token.key-cache-min-time-between-request";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An access token for alice of `iss`, signed with `key` under `kid`, with the role
/// `offline_access` where both ways read roles (`realm_access.roles` for Keycloak, `groups` for
/// MicroProfile JWT).
fn token(key: &RealmKey, kid: &str, iss: &str) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(kid);
    let mut payload = JwtPayload::new();
    let now = unix_now();
    payload.set_issuer(iss);
    payload.set_subject(SUBJECT);
    payload.set_claim("iat", Some(json!(now))).unwrap();
    payload.set_claim("exp", Some(json!(now + 300))).unwrap();
    payload
        .set_claim("preferred_username", Some(json!("alice")))
        .unwrap();
    payload
        .set_claim("realm_access", Some(json!({"roles": ["offline_access"]})))
        .unwrap();
    payload
        .set_claim("groups", Some(json!(["offline_access"])))
        .unwrap();
    let signer = RS256.signer_from_pem(key.private_pem()).unwrap();
    jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

/// The realm's issuer on `port`, as [`JwksServer::issuer`] names it.
fn issuer_on(port: u16) -> String {
    format!("http://127.0.0.1:{port}/realms/{REALM}")
}

/// A linked pair whose DPM trusts the realm at `http://127.0.0.1:port` with these extra lines.
fn pair_with_realm(port: u16, extra: &[String]) -> Pair {
    let pair = Pair::linked();
    Pair::append(
        &pair.dpm,
        &format!("ataccama.authentication.keycloak.server-url=http://127.0.0.1:{port}"),
    );
    Pair::append(
        &pair.dpm,
        &format!("ataccama.authentication.keycloak.realm={REALM}"),
    );
    for line in extra {
        Pair::append(&pair.dpm, line);
    }
    pair
}

async fn channel(port: u16) -> Channel {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap()
}

async fn who_am_i(channel: &Channel, token: &str) -> Result<WhoAmIResponse, Status> {
    common::retrying_refused_streams(|| {
        let mut request = Request::new(WhoAmIRequest {});
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let mut client = IdentityServiceClient::new(channel.clone());
        async move { client.who_am_i(request).await }
    })
    .await
    .map(tonic::Response::into_inner)
}

fn assert_alice(answer: &WhoAmIResponse) {
    assert_eq!(
        answer.identity,
        format!("SimpleUserIdentity(id={SUBJECT}, roles=[offline_access])")
    );
}

/// `/actuator/health`: status code, overall status, and the realm's `userKeys` details.
fn user_keys_health(dpm: &Daemon, issuer: &str) -> (u16, Value, Value, Value) {
    let (code, report) = get_json(http_port(dpm), "/actuator/health");
    let component = report["components"]["userKeys"].clone();
    (
        code,
        report["status"].clone(),
        component["status"].clone(),
        component["details"][issuer].clone(),
    )
}

fn events_named(daemon: &Daemon, id: &str) -> Vec<Value> {
    daemon
        .events()
        .into_iter()
        .filter(|e| e["eventId"] == id)
        .collect()
}

/// Waits until the daemon has logged `count` events `id`.
fn wait_for_count(daemon: &Daemon, id: &str, count: usize) -> Vec<Value> {
    let until = Instant::now() + common::PATIENCE;
    loop {
        let found = events_named(daemon, id);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < until,
            "{count} {id} not logged: {:?}",
            found
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first `id` line of `daemon` that `matches`, waiting for it up to the common patience.
fn wait_for(daemon: &Daemon, id: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + common::PATIENCE;
    loop {
        let found = events_named(daemon, id);
        if let Some(line) = found.iter().find(|line| matches(line)) {
            return line.clone();
        }
        assert!(Instant::now() < until, "no matching {id} logged: {found:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The realm publishes a new signing key and drops the old one, DPM running all along: a token
/// under the new `kid` is accepted after exactly one more fetch; the old key's tokens are then
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_realm_key_is_picked_up_without_a_restart() {
    let realm = JwksServer::start().unwrap();
    let pair = pair_with_realm(realm.port(), &[format!("{MIN_TIME}=1s")]);
    let dpm = pair.start_dpm(&[]);
    let channel = channel(dpm.port()).await;

    let old = realm.signing_key().clone();
    let before = token(&old, old.kid(), &realm.issuer());
    assert_alice(&who_am_i(&channel, &before).await.unwrap());
    assert_eq!(realm.requests(), 1);

    // Rotation: the new key is published, the old one dropped (the encryption key stays).
    let new = RealmKey::signing().unwrap();
    realm.set_keys(&[&new, realm.encryption_key()]);
    // Past the min-time since the first fetch, so the unknown kid may cause one refetch.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = token(&new, new.kid(), &realm.issuer());
    let started = Instant::now();
    assert_alice(&who_am_i(&channel, &after).await.unwrap());
    println!(
        "rotation: new kid accepted in {} ms, realm fetches {}",
        started.elapsed().as_millis(),
        realm.requests()
    );
    assert_eq!(realm.requests(), 2, "exactly one fetch for the new kid");
    let fetched = wait_for_count(&dpm, "userKeysFetched", 2);
    assert_eq!(fetched[1]["why"], "unknown-kid", "{}", fetched[1]);

    // The old key is gone from the realm: its tokens no longer verify, and within the min-time
    // no fetch is made for them.
    let refused = who_am_i(&channel, &before).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().starts_with("unknown_kid"), "{refused:?}");
    assert_eq!(realm.requests(), 2);
    // The new key keeps working from the cache.
    assert_alice(&who_am_i(&channel, &after).await.unwrap());
    assert_eq!(realm.requests(), 2);
}

/// The identity provider is not listening when DPM starts: DPM starts, the engine registers and
/// health is `UP`; a person calling meanwhile is refused with `keys_unavailable` (no panic); once
/// the provider listens, the next call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_down_at_start_does_not_stop_dpm_and_people_get_in_once_it_is_up() {
    let port = common::free_port();
    let issuer = issuer_on(port);
    let pair = pair_with_realm(port, &[format!("{MIN_TIME}=1s")]);
    let dpm = pair.start_dpm(&[]);
    let _dpe = pair.start_dpe(dpm.port(), &[]);
    // Module traffic is served while the provider is down.
    dpm.wait_for("the engine READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    let (code, status, component, details) = user_keys_health(&dpm, &issuer);
    assert_eq!(
        (code, &status, &component),
        (200, &json!("UP"), &json!("UP"))
    );
    assert_eq!(details["state"], "not-fetched", "{details}");

    // A call during the outage: refused, naming the keys as unavailable.
    let channel = channel(dpm.port()).await;
    let stranger = RealmKey::signing().unwrap();
    let early = token(&stranger, stranger.kid(), &issuer);
    let refused = who_am_i(&channel, &early).await.unwrap_err();
    assert!(
        matches!(refused.code(), Code::Unauthenticated | Code::Unavailable),
        "{refused:?}"
    );
    assert!(
        refused.message().contains("keys_unavailable"),
        "{refused:?}"
    );
    let failed = wait_for_count(&dpm, "userKeysFetchFailed", 1);
    assert_eq!(failed[0]["kept"], "false", "{}", failed[0]);
    assert_eq!(failed[0]["result"], "unreachable", "{}", failed[0]);
    let (code, status, _, details) = user_keys_health(&dpm, &issuer);
    assert_eq!((code, &status), (200, &json!("UP")));
    assert_eq!(details["state"], "unavailable", "{details}");

    // The provider comes up on the configured port; past the min-time the next call fetches.
    let realm = JwksServer::start_on(port).unwrap();
    assert_eq!(realm.issuer(), issuer);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let person = token(realm.signing_key(), realm.signing_key().kid(), &issuer);
    let started = Instant::now();
    assert_alice(&who_am_i(&channel, &person).await.unwrap());
    println!(
        "provider up late: first call after it came up took {} ms, realm fetches {}",
        started.elapsed().as_millis(),
        realm.requests()
    );
    assert_eq!(realm.requests(), 1);
    let fetched = wait_for_count(&dpm, "userKeysFetched", 1);
    assert_eq!(fetched[0]["why"], "retry", "{}", fetched[0]);
    let (_, _, _, details) = user_keys_health(&dpm, &issuer);
    assert_eq!(details["state"], "fresh", "{details}");
    assert!(dpm.events().iter().all(|e| e["level"] != "ERROR"));
}

/// After a successful fetch the provider fails (HTTP 500, then not listening at all): tokens
/// under the known kid, the same and new ones, still verify with the last good keys; each failed
/// fetch is logged `userKeysFetchFailed` with `kept=true`; health stays `UP` with `userKeys`
/// showing `stale` and the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_down_later_leaves_the_last_good_keys_in_use() {
    let realm = JwksServer::start().unwrap();
    let issuer = realm.issuer();
    let pair = pair_with_realm(
        realm.port(),
        &[format!("{TTL}=1s"), format!("{MIN_TIME}=1s")],
    );
    let dpm = pair.start_dpm(&[]);
    let channel = channel(dpm.port()).await;
    let key = realm.signing_key().clone();
    let first = token(&key, key.kid(), &issuer);
    assert_alice(&who_am_i(&channel, &first).await.unwrap());
    assert_eq!(realm.requests(), 1);

    // The provider answers 500; the keys expire; the next call refetches, fails, keeps them.
    realm.set_status(500);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_alice(&who_am_i(&channel, &first).await.unwrap());
    assert_eq!(realm.requests(), 2);
    let failed = wait_for_count(&dpm, "userKeysFetchFailed", 1);
    assert_eq!(failed[0]["kept"], "true", "{}", failed[0]);
    assert_eq!(failed[0]["result"], "status", "{}", failed[0]);
    let fresh_token = token(&key, key.kid(), &issuer);
    assert_alice(&who_am_i(&channel, &fresh_token).await.unwrap());
    let (code, status, component, details) = user_keys_health(&dpm, &issuer);
    assert_eq!(
        (code, &status, &component),
        (200, &json!("UP"), &json!("UP"))
    );
    assert_eq!(details["state"], "stale", "{details}");
    assert_eq!(details["keys"], 1, "{details}");
    assert!(
        details["lastError"].as_str().unwrap().contains("500"),
        "{details}"
    );

    // The provider is gone altogether (connections refused): still the last good keys.
    drop(realm);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = token(&key, key.kid(), &issuer);
    assert_alice(&who_am_i(&channel, &later).await.unwrap());
    assert_alice(&who_am_i(&channel, &first).await.unwrap());
    // Earlier refetches may have met the 500 more than once; the outage's own line follows them.
    let unreachable = wait_for(&dpm, "userKeysFetchFailed", |line| {
        line["result"] == "unreachable"
    });
    assert_eq!(unreachable["kept"], "true", "{unreachable}");
    let failed = events_named(&dpm, "userKeysFetchFailed");
    let (code, status, component, details) = user_keys_health(&dpm, &issuer);
    assert_eq!(
        (code, &status, &component),
        (200, &json!("UP"), &json!("UP"))
    );
    assert_eq!(details["state"], "stale", "{details}");
    println!(
        "provider down later: {} failed fetches logged, last error {}",
        failed.len(),
        details["lastError"]
    );
    assert!(dpm.events().iter().all(|e| e["level"] != "ERROR"));
}

/// U8: a thousand concurrent tokens, each naming a different unknown `kid`, cost the realm at
/// most one fetch per min-time-between-request (2 s here), and a person with a valid token is
/// answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u8_a_thousand_unknown_kids_cost_at_most_one_fetch_per_min_time() {
    const MIN: Duration = Duration::from_secs(2);
    let realm = JwksServer::start().unwrap();
    let issuer = realm.issuer();
    let pair = pair_with_realm(realm.port(), &[format!("{MIN_TIME}=2s")]);
    let dpm = pair.start_dpm(&[]);
    let channel = channel(dpm.port()).await;
    let key = realm.signing_key().clone();
    let valid = token(&key, key.kid(), &issuer);
    assert_alice(&who_am_i(&channel, &valid).await.unwrap());
    assert_eq!(realm.requests(), 1);

    // Tokens of the realm's issuer, each under a kid nobody published.
    let flood: Vec<String> = (0..1000)
        .map(|i| token(&key, &format!("made-up-{i}"), &issuer))
        .collect();
    tokio::time::sleep(MIN + Duration::from_millis(200)).await;

    let before = realm.requests();
    let started = Instant::now();
    let flood_channel = channel.clone();
    let calls: Vec<_> = flood
        .into_iter()
        .map(|t| {
            let channel = flood_channel.clone();
            tokio::spawn(async move { who_am_i(&channel, &t).await })
        })
        .collect();
    // Meanwhile, the valid token: answered from the cache.
    let valid_started = Instant::now();
    assert_alice(&who_am_i(&channel, &valid).await.unwrap());
    let valid_took = valid_started.elapsed();
    let mut refused = 0;
    for call in calls {
        let status = call.await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().starts_with("unknown_kid"), "{status:?}");
        refused += 1;
    }
    let took = started.elapsed();
    let fetches = realm.requests() - before;
    // At most one fetch per started min-time period of the flood.
    let periods = usize::try_from(took.as_millis() / MIN.as_millis()).unwrap() + 1;
    println!(
        "U8: {refused} unknown-kid tokens refused in {} ms, realm fetches during the flood {fetches} \
         (allowed {periods}), a valid call meanwhile took {} ms",
        took.as_millis(),
        valid_took.as_millis()
    );
    assert_eq!(refused, 1000);
    assert!(fetches >= 1, "the unknown kids caused no refetch");
    assert!(fetches <= periods, "{fetches} fetches in {took:?}");
    // The valid token was not held up by the flood's fetch beyond its bound.
    assert!(valid_took < Duration::from_secs(5), "{valid_took:?}");
    assert_alice(&who_am_i(&channel, &valid).await.unwrap());
}

/// U10: a person's verified token on the product wire, DPM's `RegistryService.RegisterEngine`
/// (Keycloak realm) and DPE's `HeartbeatService.GetStatus` (MicroProfile JWT key inline), is
/// `PERMISSION_DENIED`, whatever its roles; the same token's `WhoAmI` is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u10_a_person_on_the_product_wire_is_denied() {
    let realm = JwksServer::start().unwrap();
    let pair = pair_with_realm(realm.port(), &[]);
    let payara = RealmKey::signing().unwrap();
    let payara_iss = "https://idp.example.test/payara";
    Pair::append(
        &pair.dpe,
        &format!("mp.jwt.verify.publickey={}", payara.jwk()),
    );
    Pair::append(&pair.dpe, &format!("mp.jwt.verify.issuer={payara_iss}"));
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    dpm.wait_for("the engine READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });

    let bearer = |token: &str| format!("Bearer {token}").parse().unwrap();
    let to_dpm = channel(dpm.port()).await;
    let person = token(
        realm.signing_key(),
        realm.signing_key().kid(),
        &realm.issuer(),
    );
    assert_alice(&who_am_i(&to_dpm, &person).await.unwrap());
    let mut register = Request::new(RegistrationRequest {
        engine_id: "a-person-s-engine".to_owned(),
        address: Some(EngineAddress {
            hostname: "127.0.0.1".to_owned(),
            port: 9,
        }),
        constraints: None,
    });
    register
        .metadata_mut()
        .insert("authorization", bearer(&person));
    let denied = RegistryServiceClient::new(to_dpm.clone())
        .register_engine(register)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    let to_dpe = channel(dpe.port()).await;
    let person = token(&payara, "ignored-with-one-key", payara_iss);
    assert_alice(&who_am_i(&to_dpe, &person).await.unwrap());
    let mut status = Request::new(HeartbeatRequest {});
    status
        .metadata_mut()
        .insert("authorization", bearer(&person));
    let denied = HeartbeatServiceClient::new(to_dpe.clone())
        .get_status(status)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
}

/// The TCK's `testKeyAsLocation` as the Payara guide deploys it: DPE reads the issuer's PEM
/// public key from `etc/publicKey.pem` (`mp.jwt.verify.publickey.location=publicKey.pem`) at
/// start, and a token signed with the matching PKCS#8 private key (its `kid` naming a file, which
/// one key ignores) is a person on DPE; another signer is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tck_key_as_location_file_on_the_engine() {
    let key = RealmKey::signing().unwrap();
    let issuer = "https://server.example.com";
    let pair = Pair::linked();
    std::fs::write(pair.dpe.join("etc/publicKey.pem"), key.public_pem()).unwrap();
    Pair::append(&pair.dpe, "mp.jwt.verify.publickey.location=publicKey.pem");
    Pair::append(&pair.dpe, &format!("mp.jwt.verify.issuer={issuer}"));
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    dpe.wait_for("grpcServerStarted", |e| e["eventId"] == "grpcServerStarted");
    let to_dpe = channel(dpe.port()).await;
    let person = token(&key, "/privateKey.pem", issuer);
    let answer = who_am_i(&to_dpe, &person).await.unwrap();
    assert_alice(&answer);
    assert_eq!(answer.server_module, "dpe");
    let stranger = RealmKey::signing().unwrap();
    let forged = token(&stranger, "/privateKey.pem", issuer);
    let refused = who_am_i(&to_dpe, &forged).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(
        refused.message().starts_with("bad_signature"),
        "{refused:?}"
    );
    let (_, _, _, details) = user_keys_health(&dpe, issuer);
    assert_eq!(details["state"], "loaded", "{details}");
}
