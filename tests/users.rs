//! People on the gRPC port: a Keycloak realm (a test-side server publishing its keys exactly as
//! Keycloak's `…/protocol/openid-connect/certs` does) configured on DPM with the product's
//! properties, and a MicroProfile JWT issuer with its key inline on DPE. Tokens are signed here with
//! josekit, an implementation independent of svcid's.
//!
//! Shown: a person's `WhoAmI`; `ListEngines` needs `DPM_ADMIN`; the product wire is never open to a
//! person; a refused person is one `authenticationFailed` line with the issuer and no token text;
//! keys are fetched on first need, not at start; module traffic (the handshake) is unaffected; DPM
//! carries a person to the engine (`WhoAmIOnEngine`), which sees
//! `ImpersonatedUserIdentity(…)` only while DPM's deployment there holds the impersonation role.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, SystemTime};

use common::{Daemon, Pair};
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};
use svcid_proto::pb::engines::engine_admin_service_client::EngineAdminServiceClient;
use svcid_proto::pb::engines::{ListEnginesRequest, WhoAmIOnEngineRequest};
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use svcid_proto::pb::identity::{WhoAmIRequest, WhoAmIResponse};
use svcid_proto::pb::registry::registry_service_client::RegistryServiceClient;
use svcid_proto::pb::registry::{EngineAddress, RegistrationRequest};
use svcid_testkit::jwks::{JwksServer, RealmKey};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

const SUBJECT: &str = "5f0c6d1e-7a4b-4c3d-9e2f-000000000042";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with `key` under `kid`, with `claims` added to `iss`, `sub`, `iat` and `exp`.
fn token(key: &RealmKey, kid: &str, iss: &str, claims: Value) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(kid);
    let mut payload = JwtPayload::new();
    let now = unix_now();
    payload.set_issuer(iss);
    payload.set_subject(SUBJECT);
    payload.set_claim("iat", Some(json!(now))).unwrap();
    payload.set_claim("exp", Some(json!(now + 300))).unwrap();
    for (name, value) in claims.as_object().unwrap() {
        payload.set_claim(name, Some(value.clone())).unwrap();
    }
    let signer = RS256.signer_from_pem(key.private_pem()).unwrap();
    jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

/// A Keycloak access token of the realm for alice with `roles` as realm roles.
fn keycloak_token(realm: &JwksServer, roles: &[&str]) -> String {
    let key = realm.signing_key();
    token(
        key,
        key.kid(),
        &realm.issuer(),
        json!({"preferred_username": "alice", "realm_access": {"roles": roles}, "groups": ["DPM_ADMIN"]}),
    )
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
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
    IdentityServiceClient::new(channel.clone())
        .who_am_i(bearer(WhoAmIRequest {}, token))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_engines(channel: &Channel, token: &str) -> Result<usize, Status> {
    EngineAdminServiceClient::new(channel.clone())
        .list_engines(bearer(ListEnginesRequest {}, token))
        .await
        .map(|r| r.into_inner().engines.len())
}

fn refusals(daemon: &Daemon) -> Vec<Value> {
    daemon
        .events()
        .into_iter()
        .filter(|e| e["eventId"] == "authenticationFailed")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keycloak_user_is_verified_by_the_realms_keys_and_may_do_what_its_roles_allow() {
    let realm = JwksServer::start().unwrap();
    let pair = Pair::linked();
    Pair::append(
        &pair.dpm,
        &format!(
            "ataccama.authentication.keycloak.server-url={}",
            realm.server_url()
        ),
    );
    Pair::append(
        &pair.dpm,
        &format!(
            "ataccama.authentication.keycloak.realm={}",
            svcid_testkit::jwks::REALM
        ),
    );
    let dpm = pair.start_dpm(&[]);
    let _dpe = pair.start_dpe(dpm.port(), &[]);
    // Module traffic is unaffected: the engine registers and is checked.
    dpm.wait_for("the engine READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    // Keys are fetched on first need, not at start.
    assert_eq!(realm.requests(), 0, "keys fetched before any person called");
    let channel = channel(dpm.port()).await;

    // A person's WhoAmI, as the product prints a user.
    let admin = keycloak_token(&realm, &["offline_access", "DPM_ADMIN"]);
    let answer = who_am_i(&channel, &admin).await.unwrap();
    assert_eq!(
        answer.identity,
        format!("SimpleUserIdentity(id={SUBJECT}, roles=[DPM_ADMIN, offline_access])")
    );
    assert_eq!(answer.user.as_ref().unwrap().username, "alice");
    assert_eq!(realm.requests(), 1, "one fetch of the realm's keys");

    // EngineAdminService needs DPM_ADMIN among the realm roles; `groups` is not a Keycloak role.
    assert_eq!(list_engines(&channel, &admin).await.unwrap(), 1);
    let reader = keycloak_token(&realm, &["offline_access"]);
    let denied = list_engines(&channel, &reader).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // The product wire is never open to a person, whatever the roles.
    let register = RegistryServiceClient::new(channel.clone())
        .register_engine(bearer(
            RegistrationRequest {
                address: Some(EngineAddress {
                    hostname: "127.0.0.1".into(),
                    port: 9,
                }),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(register.code(), Code::PermissionDenied, "{register:?}");

    // A token of the realm's issuer signed by a key the realm does not publish: refused, one
    // refetch for its unknown kid at most, and a log line naming the issuer, never the token.
    let stranger = RealmKey::signing().unwrap();
    let forged = token(
        &stranger,
        stranger.kid(),
        &realm.issuer(),
        json!({"preferred_username": "mallory", "realm_access": {"roles": ["DPM_ADMIN"]}}),
    );
    let refused = who_am_i(&channel, &forged).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().starts_with("unknown_kid"), "{refused:?}");
    let line = dpm.wait_for("the person's refusal", |e| {
        e["eventId"] == "authenticationFailed" && e["issuer"] == realm.issuer()
    });
    assert_eq!(line["scheme"], "Bearer", "{line}");
    assert_eq!(line["reason"], "unknown_kid", "{line}");
    let log = std::fs::read_to_string(&dpm.log).unwrap();
    for secret in [&forged, &admin, &reader] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "a token reached the log");
    }
    assert!(realm.requests() <= 2, "{} fetches", realm.requests());
    assert_eq!(refusals(&dpm).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_micro_profile_user_with_an_inline_key_reaches_whoami_on_the_engine_and_nothing_else() {
    let key = RealmKey::signing().unwrap();
    let issuer = "https://idp.example.test/payara";
    let pair = Pair::linked();
    Pair::append(&pair.dpe, &format!("mp.jwt.verify.publickey={}", key.jwk()));
    Pair::append(&pair.dpe, &format!("mp.jwt.verify.issuer={issuer}"));
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    dpm.wait_for("the engine READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    let channel = channel(dpe.port()).await;

    // Groups are MicroProfile JWT's roles, sorted; the name is upn; realm_access is not read.
    let person = token(
        &key,
        "ignored-with-one-key",
        issuer,
        json!({"upn": "bob@example.test", "groups": ["viewer", "DPM_ADMIN"], "realm_access": {"roles": ["root"]}}),
    );
    let answer = who_am_i(&channel, &person).await.unwrap();
    assert_eq!(
        answer.identity,
        format!("SimpleUserIdentity(id={SUBJECT}, roles=[DPM_ADMIN, viewer])")
    );
    assert_eq!(answer.user.as_ref().unwrap().username, "bob@example.test");
    assert_eq!(answer.server_module, "dpe");

    // Another issuer's token is not a user token here: verified as a module token, and refused.
    let other = token(&key, "k", "https://elsewhere.test", json!({"upn": "eve"}));
    let refused = who_am_i(&channel, &other).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // An expired token of the right issuer: refused as expired.
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    let mut payload = JwtPayload::new();
    payload.set_issuer(issuer);
    payload.set_subject(SUBJECT);
    payload.set_claim("upn", Some(json!("bob"))).unwrap();
    payload
        .set_claim("iat", Some(json!(unix_now() - 4000)))
        .unwrap();
    payload
        .set_claim("exp", Some(json!(unix_now() - 3600)))
        .unwrap();
    let expired = jwt::encode_with_signer(
        &payload,
        &header,
        &RS256.signer_from_pem(key.private_pem()).unwrap(),
    )
    .unwrap();
    let refused = who_am_i(&channel, &expired).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().starts_with("expired"), "{refused:?}");
}

async fn who_am_i_on_engine(
    channel: &Channel,
    token: &str,
    engine_id: &str,
) -> Result<WhoAmIResponse, Status> {
    EngineAdminServiceClient::new(channel.clone())
        .who_am_i_on_engine(bearer(
            WhoAmIOnEngineRequest {
                engine_id: engine_id.to_owned(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// SECURITY U11 over the daemons: a person reaches the engine only through DPM's impersonation,
/// and only while the engine grants DPM's deployment the impersonation role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpm_carries_a_person_to_the_engine_only_with_the_impersonation_role() {
    let key = RealmKey::signing().unwrap();
    let issuer = "https://idp.example.test/payara";
    let pair = Pair::linked();
    Pair::append(&pair.dpm, &format!("mp.jwt.verify.publickey={}", key.jwk()));
    Pair::append(&pair.dpm, &format!("mp.jwt.verify.issuer={issuer}"));
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    dpm.wait_for("the engine READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    let channel = channel(dpm.port()).await;
    let person = |groups: &[&str]| {
        token(
            &key,
            "k",
            issuer,
            json!({"upn": "carol@example.test", "groups": groups}),
        )
    };
    let admin = person(&["viewer", "DPM_ADMIN"]);
    let engine_id = EngineAdminServiceClient::new(channel.clone())
        .list_engines(bearer(ListEnginesRequest {}, &admin))
        .await
        .unwrap()
        .into_inner()
        .engines[0]
        .engine_id
        .clone();

    // The engine sees the person, acted for by DPM; the person's roles are the only roles.
    let seen = format!(
        "ImpersonatedUserIdentity(id={SUBJECT}, roles=[DPM_ADMIN, viewer], \
         serviceIdentity=ServiceIdentity(module=dpm, id=dpm-dev, roles=[IMPERSONATION]))"
    );
    let answer = who_am_i_on_engine(&channel, &admin, &engine_id)
        .await
        .unwrap();
    assert_eq!(answer.identity, seen);
    assert_eq!(answer.server_module, "dpe");
    assert_eq!(answer.module, "dpm");
    let user = answer.user.unwrap();
    assert_eq!(user.username, "carol@example.test");
    assert_eq!(user.roles, ["DPM_ADMIN", "viewer"]);
    // Every line the engine writes while serving the call carries the impersonated identity, and
    // the call keeps DPM's correlation id.
    let on_engine = dpe.wait_for("the engine's whoAmI line", |e| {
        e["eventId"] == "whoAmI" && e["authenticatedUser"] == seen.as_str()
    });
    let on_dpm = dpm.wait_for("DPM's whoAmIOnEngine line", |e| {
        e["eventId"] == "whoAmIOnEngine" && e["engineSees"] == seen.as_str()
    });
    assert_eq!(
        on_dpm["authenticatedUser"],
        format!("SimpleUserIdentity(id={SUBJECT}, roles=[DPM_ADMIN, viewer])")
    );
    assert_eq!(on_engine["correlationId"], on_dpm["correlationId"]);
    // The person's own token never left DPM.
    let engine_log = std::fs::read_to_string(&dpe.log).unwrap();
    assert!(!engine_log.contains(admin.rsplit('.').next().unwrap()));

    // `svcid whoami --engine` prints the engine's view.
    let out = std::process::Command::new(common::bin("svcid"))
        .args(["whoami", "--bearer", &admin, "--engine", &engine_id])
        .arg(format!("127.0.0.1:{}", dpm.port()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("sees you as {seen}")), "{stdout}");

    // Without an administrator role DPM does not call the engine; an unknown engine is NOT_FOUND.
    let viewer = person(&["viewer"]);
    let denied = who_am_i_on_engine(&channel, &viewer, &engine_id)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let missing = who_am_i_on_engine(&channel, &admin, "no-such-engine")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    // The engine no longer grants DPM the impersonation role (a live reload): DPM's own checks go
    // on (no `usr`), but a call for a person is refused in the engine's words.
    let before = dpe.events().len();
    Pair::replace_atomically(
        &pair.dpe,
        "deployments.dpm-dev.security.roles[0]=IMPERSONATION",
        "deployments.dpm-dev.security.roles[0]=MONITORING",
    );
    dpe.wait_for_after(before, "the engine's reload", |e| {
        e["eventId"] == "deploymentsReloaded"
    });
    let refused = who_am_i_on_engine(&channel, &admin, &engine_id)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("Impersonation is not allowed"),
        "{refused:?}"
    );
    let out = std::process::Command::new(common::bin("svcid"))
        .args(["whoami", "--bearer", &admin, "--engine", &engine_id])
        .arg(format!("127.0.0.1:{}", dpm.port()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("Impersonation is not allowed"), "{stderr}");
    assert!(stderr.contains("impersonation role"), "{stderr}");
    assert!(!stderr.contains(admin.rsplit('.').next().unwrap()));
    let still = dpm.events();
    assert!(
        !still
            .iter()
            .any(|e| e["eventId"] == "setEngineStatus" && e["newStatus"] == "DISCONNECTED"),
        "the engine's checks must not suffer"
    );
}
