//! Keys behind a URL, against a real key endpoint on 127.0.0.1 (`svcid_testkit::jwks`, a Keycloak
//! realm's JWK set with keys generated at run time) that counts requests. Tokens are signed with
//! josekit (RS256), an implementation independent of svcid's.

// Tests may unwrap: a panic is how they report a failure.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};
use svcid_actuator::metrics::Exposition;
use svcid_config::{ServerTrust, UserIssuerSettings, UserKeySource, UserSettings};
use svcid_identity::clock::SystemClock;
use svcid_identity::user::UserIssuerPolicy;
use svcid_testkit::jwks::{JwksServer, RealmKey};
use svcid_users::{FetchOptions, KeySourceState, UserAuthError, Users};

/// Short bounds so a stalled server costs the test half a second, not five.
const OPTIONS: FetchOptions = FetchOptions {
    timeout: Duration::from_millis(500),
    connect_timeout: Duration::from_millis(500),
};

/// Everything the crate logs, from every test (each test's lines carry its own server's port).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The logged lines naming `needle` (a server's address).
fn log_lines(needle: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// A Keycloak issuer whose keys are `server`'s certs URL.
fn keycloak(server: &JwksServer, ttl: Duration, refetch: Duration) -> UserSettings {
    issuer(
        UserIssuerPolicy::keycloak(server.issuer()),
        server.certs_url(),
        ttl,
        refetch,
    )
}

fn issuer(policy: UserIssuerPolicy, url: String, ttl: Duration, refetch: Duration) -> UserSettings {
    UserSettings {
        issuers: vec![UserIssuerSettings {
            policy,
            keys: UserKeySource::Url(url),
            key_cache_ttl: ttl,
            key_refetch_interval: refetch,
        }],
        ..UserSettings::default()
    }
}

fn users(settings: &UserSettings) -> Users {
    logs();
    Users::with_options(
        settings,
        &ServerTrust::SystemRoots,
        Arc::new(SystemClock),
        OPTIONS,
    )
    .unwrap()
}

/// A Keycloak access token for `iss`, signed by `key` with `kid` in its header, and optional
/// extra header members.
fn keycloak_token(iss: &str, key: &RealmKey, kid: &str, extra: &[(&str, Value)]) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(kid);
    for (name, value) in extra {
        header.set_claim(name, Some(value.clone())).unwrap();
    }
    let mut payload = JwtPayload::new();
    let now = unix_now();
    payload.set_issuer(iss);
    payload.set_subject("f2a1c0de-0000-4000-8000-000000000001");
    payload.set_claim("iat", Some(json!(now))).unwrap();
    payload.set_claim("exp", Some(json!(now + 300))).unwrap();
    payload
        .set_claim("preferred_username", Some(json!("alice")))
        .unwrap();
    payload
        .set_claim("realm_access", Some(json!({"roles": ["DPM_ADMIN"]})))
        .unwrap();
    let signer = RS256.signer_from_pem(key.private_pem()).unwrap();
    jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

/// Now in whole Unix seconds (josekit's own setters write fractional NumericDates).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token of the realm's signing key with its own `kid`.
fn good_token(server: &JwksServer) -> String {
    let key = server.signing_key();
    keycloak_token(&server.issuer(), key, key.kid(), &[])
}

fn state(users: &Users) -> KeySourceState {
    users.key_states().remove(0).1
}

fn metrics(users: &Users) -> String {
    let mut out = Exposition::new();
    users.render_metrics(&mut out);
    out.into_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_are_fetched_on_first_need_and_the_encryption_key_is_skipped() {
    let server = JwksServer::start().unwrap();
    let settings = keycloak(&server, Duration::from_secs(300), Duration::from_secs(10));
    let users = users(&settings);
    // Nothing at start.
    assert_eq!(server.requests(), 0);
    assert!(matches!(state(&users), KeySourceState::NotFetched { .. }));
    assert_eq!(
        users.health().details[&server.issuer()]["state"],
        "not-fetched"
    );

    let user = users.authenticate(&good_token(&server)).await.unwrap();
    assert_eq!(user.username, "alice");
    assert_eq!(user.roles, ["DPM_ADMIN"]);
    assert_eq!(server.requests(), 1);
    // Cached: no second request.
    users.authenticate(&good_token(&server)).await.unwrap();
    assert_eq!(server.requests(), 1);
    let KeySourceState::Fresh { keys, url, .. } = state(&users) else {
        panic!("{:?}", state(&users))
    };
    assert_eq!((keys, url), (1, server.certs_url()));

    // The encryption key was left out: a token signed with it (and naming its kid) is refused.
    let enc = server.encryption_key();
    let refused = users
        .authenticate(&keycloak_token(&server.issuer(), enc, enc.kid(), &[]))
        .await
        .unwrap_err();
    assert!(matches!(refused, UserAuthError::Token(_)), "{refused:?}");

    let health = users.health();
    assert_eq!(health.status, svcid_actuator::health::Status::Up);
    let details = &health.details[&server.issuer()];
    assert_eq!(details["state"], "fresh");
    assert_eq!(details["keys"], 1);
    assert!(details["lastFetch"].as_str().unwrap().ends_with('Z'));

    let text = metrics(&users);
    let issuer = server.issuer();
    assert!(
        text.contains(&format!("svcid_user_keys{{issuer=\"{issuer}\"}} 1\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "svcid_user_key_fetches_total{{issuer=\"{issuer}\",result=\"ok\"}}"
        )),
        "{text}"
    );
    assert!(text.contains("svcid_user_key_fetch_duration_seconds_count"));

    let lines = log_lines(&server.certs_url());
    let fetched: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("userKeysFetched"))
        .collect();
    assert!(!fetched.is_empty(), "{lines:#?}");
    assert!(fetched[0].contains("why=\"first-use\""), "{}", fetched[0]);
    assert!(fetched[0].contains("skipped=1"), "{}", fetched[0]);
    assert!(fetched[0].contains("keys=1"), "{}", fetched[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_keys_are_refetched_on_the_next_need() {
    let server = JwksServer::start().unwrap();
    let settings = keycloak(&server, Duration::from_secs(1), Duration::ZERO);
    let users = users(&settings);
    users.authenticate(&good_token(&server)).await.unwrap();
    assert_eq!(server.requests(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(matches!(state(&users), KeySourceState::Expired { .. }));
    // Not in the background: only the next need refetches.
    assert_eq!(server.requests(), 1);
    users.authenticate(&good_token(&server)).await.unwrap();
    assert_eq!(server.requests(), 2);
    assert!(
        log_lines(&server.certs_url())
            .iter()
            .any(|l| l.contains("userKeysFetched") && l.contains("why=\"expired\""))
    );
}

/// U8: a thousand unknown `kid`s cost one fetch per min-time; other callers are unaffected (end to
/// end: `tests/user_keys.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_unknown_kids_cause_one_refetch_and_others_are_unaffected() {
    let server = JwksServer::start().unwrap();
    let settings = keycloak(&server, Duration::from_secs(300), Duration::from_secs(2));
    let users = Arc::new(users(&settings));
    users.authenticate(&good_token(&server)).await.unwrap();
    assert_eq!(server.requests(), 1);
    // The first fetch counts against the interval too: let it pass.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // A slow answer, so the arrivals overlap the one fetch in flight.
    server.set_delay(Duration::from_millis(300));
    let key = server.signing_key();
    let tokens: Vec<String> = (0..1000)
        .map(|n| keycloak_token(&server.issuer(), key, &format!("unknown-{n}"), &[]))
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for token in tokens {
        let users = Arc::clone(&users);
        tasks.push(tokio::spawn(
            async move { users.authenticate(&token).await },
        ));
    }
    // A token with a known kid is answered from the cache meanwhile.
    users.authenticate(&good_token(&server)).await.unwrap();
    for task in tasks {
        // The key signs them all, so the verifier falls back to it and accepts, or refuses; what
        // matters is that none is refused for want of keys.
        if let Err(error) = task.await.unwrap() {
            assert_ne!(error.reason(), "keys_unavailable", "{error}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        server.requests(),
        2,
        "exactly one refetch for 1,000 unknown kids"
    );
    // More unknown kids within the interval: no fetch at all.
    let again = keycloak_token(&server.issuer(), key, "unknown-again", &[]);
    let _ = users.authenticate(&again).await;
    assert_eq!(server.requests(), 2);
    assert_eq!(users.fetch_count(&server.issuer(), "ok"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_key_is_picked_up_by_its_unknown_kid() {
    let server = JwksServer::start().unwrap();
    let settings = keycloak(
        &server,
        Duration::from_secs(300),
        Duration::from_millis(200),
    );
    let users = users(&settings);
    users.authenticate(&good_token(&server)).await.unwrap();
    let rotated = RealmKey::signing().unwrap();
    server.set_keys(&[&rotated, server.encryption_key()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let token = keycloak_token(&server.issuer(), &rotated, rotated.kid(), &[]);
    users.authenticate(&token).await.unwrap();
    assert_eq!(server.requests(), 2);
    assert!(
        log_lines(&server.certs_url())
            .iter()
            .any(|l| l.contains("userKeysFetched") && l.contains("why=\"unknown-kid\""))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_control_max_age_counts_for_micro_profile_and_not_for_keycloak() {
    // MicroProfile JWT: max-age=1 replaces the 300 s TTL.
    let server = JwksServer::start().unwrap();
    server.set_header("Cache-Control", "public, max-age=1");
    let settings = issuer(
        UserIssuerPolicy::micro_profile(server.issuer()),
        server.certs_url(),
        Duration::from_secs(300),
        Duration::ZERO,
    );
    let users = users(&settings);
    let mut payload = JwtPayload::new();
    let now = unix_now();
    payload.set_issuer(server.issuer());
    payload.set_subject("24400320");
    payload
        .set_claim("upn", Some(json!("jdoe@example.com")))
        .unwrap();
    payload.set_claim("iat", Some(json!(now))).unwrap();
    payload.set_claim("exp", Some(json!(now + 300))).unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(server.signing_key().kid());
    let signer = RS256
        .signer_from_pem(server.signing_key().private_pem())
        .unwrap();
    let token = jwt::encode_with_signer(&payload, &header, &signer).unwrap();
    let user = users.authenticate(&token).await.unwrap();
    assert_eq!(user.username, "jdoe@example.com");
    assert!(
        log_lines(&server.certs_url())
            .iter()
            .any(|l| l.contains("ttl=1s") && l.contains("ttlSource=\"max-age\""))
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    users.authenticate(&token).await.unwrap();
    assert_eq!(server.requests(), 2);

    // Keycloak: the same header is ignored; the 300 s TTL holds.
    let server = JwksServer::start().unwrap();
    server.set_header("Cache-Control", "public, max-age=1");
    let settings = keycloak(&server, Duration::from_secs(300), Duration::ZERO);
    let users = self::users(&settings);
    users.authenticate(&good_token(&server)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    users.authenticate(&good_token(&server)).await.unwrap();
    assert_eq!(server.requests(), 1);
    assert!(matches!(state(&users), KeySourceState::Fresh { .. }));
}

/// U9: the key URL down at first use: refused with `keys_unavailable`, no panic, logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_down_at_first_use_refuses_then_works_once_up() {
    let server = JwksServer::start().unwrap();
    server.set_status(503);
    let settings = keycloak(
        &server,
        Duration::from_secs(300),
        Duration::from_millis(200),
    );
    let users = users(&settings);
    let error = users.authenticate(&good_token(&server)).await.unwrap_err();
    assert_eq!(error.reason(), "keys_unavailable");
    assert!(!error.to_string().contains("127.0.0.1"), "{error}");
    let KeySourceState::Unavailable { error: why, .. } = state(&users) else {
        panic!("{:?}", state(&users))
    };
    assert!(why.contains("HTTP 503"), "{why}");
    assert_eq!(users.health().status, svcid_actuator::health::Status::Up);
    assert_eq!(
        users.health().details[&server.issuer()]["state"],
        "unavailable"
    );
    assert!(log_lines(&server.certs_url()).iter().any(|l| {
        l.contains("userKeysFetchFailed") && l.contains("kept=false") && l.contains("HTTP 503")
    }));
    // Within the interval: refused without asking again.
    assert!(users.authenticate(&good_token(&server)).await.is_err());
    assert_eq!(server.requests(), 1);

    server.set_status(200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    users.authenticate(&good_token(&server)).await.unwrap();
    assert_eq!(server.requests(), 2);
    assert!(matches!(state(&users), KeySourceState::Fresh { .. }));

    // Nothing listening at all: refused as quickly, counted as unreachable.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let iss = format!("http://127.0.0.1:{port}/realms/svcid");
    let settings = issuer(
        UserIssuerPolicy::keycloak(&iss),
        format!("{iss}/protocol/openid-connect/certs"),
        Duration::from_secs(300),
        Duration::from_secs(10),
    );
    let users = self::users(&settings);
    let started = Instant::now();
    let token = keycloak_token(&iss, server.signing_key(), "k", &[]);
    let error = users.authenticate(&token).await.unwrap_err();
    assert_eq!(error.reason(), "keys_unavailable");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(users.fetch_count(&iss, "unreachable"), 1);
}

/// U9: the key URL down later: the last good keys are kept, the failure logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_down_later_leaves_the_last_good_keys_in_use() {
    let server = JwksServer::start().unwrap();
    let settings = keycloak(&server, Duration::from_secs(1), Duration::ZERO);
    let users = users(&settings);
    users.authenticate(&good_token(&server)).await.unwrap();
    server.set_status(500);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Expired, the refetch fails: the last good keys still verify.
    users.authenticate(&good_token(&server)).await.unwrap();
    assert_eq!(server.requests(), 2);
    let KeySourceState::Stale { keys, error, .. } = state(&users) else {
        panic!("{:?}", state(&users))
    };
    assert_eq!(keys, 1);
    assert!(error.contains("HTTP 500"), "{error}");
    let health = users.health();
    assert_eq!(health.status, svcid_actuator::health::Status::Up);
    let details = &health.details[&server.issuer()];
    assert_eq!(details["state"], "stale");
    assert!(details["lastError"].as_str().unwrap().contains("HTTP 500"));
    assert!(log_lines(&server.certs_url()).iter().any(|l| {
        l.contains("userKeysFetchFailed") && l.contains("kept=true") && l.contains("keptAge=")
    }));
    assert_eq!(users.fetch_count(&server.issuer(), "status"), 1);
}

/// Keys fetched once, then the server misbehaves as `spoil` says and the keys expire: the fetch
/// fails with `result` (within the bounds), the last good keys are kept, and the reason names
/// `reason_part`. Also from a cold start: the token is refused with `keys_unavailable`.
async fn misbehaving(spoil: impl Fn(&JwksServer), result: &str, reason_part: &str) {
    // Cold start.
    let server = JwksServer::start().unwrap();
    spoil(&server);
    let settings = keycloak(&server, Duration::from_secs(1), Duration::ZERO);
    let users = users(&settings);
    let started = Instant::now();
    let error = users.authenticate(&good_token(&server)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{result}");
    assert_eq!(error.reason(), "keys_unavailable");
    assert_eq!(users.fetch_count(&server.issuer(), result), 1, "{result}");
    let KeySourceState::Unavailable { error, .. } = state(&users) else {
        panic!("{:?}", state(&users))
    };
    assert!(error.contains(reason_part), "{error}");
    assert!(
        log_lines(&server.certs_url())
            .iter()
            .any(|l| l.contains("userKeysFetchFailed") && l.contains(result)),
        "{result}"
    );

    // Warm: keys first, then the misbehaviour.
    let server = JwksServer::start().unwrap();
    let settings = keycloak(&server, Duration::from_secs(1), Duration::ZERO);
    let users = self::users(&settings);
    users.authenticate(&good_token(&server)).await.unwrap();
    spoil(&server);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    users.authenticate(&good_token(&server)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{result}");
    assert!(
        matches!(state(&users), KeySourceState::Stale { .. }),
        "{result}"
    );
}

/// U9: a slow key URL: bounded by the fetch timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_answer_is_bounded_by_the_timeout() {
    misbehaving(
        |server| server.set_delay(Duration::from_secs(30)),
        "timeout",
        "within 500 ms",
    )
    .await;
}

/// U9: a 5 MiB answer is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_five_mib_answer_is_refused() {
    let huge = || {
        let mut body = b"{\"keys\":[".to_vec();
        body.resize(5 * 1024 * 1024, b' ');
        body.extend_from_slice(b"]}");
        body
    };
    // Declared by Content-Length: refused before reading.
    misbehaving(|server| server.set_body(huge()), "too_large", "larger than").await;
    // Only known by reading: refused once 1 MiB has been read.
    misbehaving(
        |server| {
            server.set_close_delimited(true);
            server.set_body(huge());
        },
        "too_large",
        "larger than",
    )
    .await;
}

/// U9: 10,000 keys are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_keys_are_refused() {
    let keys: Vec<Value> = (0..10_000)
        .map(|n| json!({"kty": "RSA", "kid": format!("k{n}"), "use": "sig"}))
        .collect();
    let body = json!({ "keys": keys }).to_string();
    assert!(body.len() < 1024 * 1024);
    misbehaving(
        move |server| server.set_body(body.clone()),
        "invalid",
        "10000 keys",
    )
    .await;
}

/// U9: an answer that is not JSON is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_that_is_not_json_is_refused() {
    misbehaving(
        |server| server.set_body("<html>Service Unavailable</html>"),
        "invalid",
        "not a usable key set",
    )
    .await;
}

/// U9: a redirect elsewhere is refused and not followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redirect_is_not_followed() {
    let target = JwksServer::start().unwrap();
    let location = format!("{}?secret=x", target.certs_url());
    let shown = target.certs_url();
    misbehaving(
        |server| server.set_redirect(Some(&location)),
        "redirect",
        &format!("to {shown}?…"),
    )
    .await;
    assert_eq!(target.requests(), 0, "the redirect target received nothing");
}

/// U7: `jku` and `x5u` in a token are never fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn urls_named_by_a_token_are_never_fetched() {
    let server = JwksServer::start().unwrap();
    let elsewhere = JwksServer::start().unwrap();
    let settings = keycloak(&server, Duration::from_secs(300), Duration::ZERO);
    let users = users(&settings);
    let key = server.signing_key();
    let named = [
        ("jku", json!(elsewhere.certs_url())),
        ("x5u", json!(format!("{}/cert.pem", elsewhere.server_url()))),
    ];
    for (name, value) in named {
        let token = keycloak_token(&server.issuer(), key, key.kid(), &[(name, value.clone())]);
        let _ = users.authenticate(&token).await;
        // Even naming a kid the issuer does not have.
        let token = keycloak_token(&server.issuer(), key, "not-here", &[(name, value)]);
        let _ = users.authenticate(&token).await;
    }
    assert_eq!(elsewhere.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logged_urls_carry_no_credentials() {
    let server = JwksServer::start().unwrap();
    let url = format!(
        "http://svcid:pa55word@127.0.0.1:{}/realms/svcid/protocol/openid-connect/certs?client_secret=s3cret",
        server.port()
    );
    let settings = issuer(
        UserIssuerPolicy::keycloak(server.issuer()),
        url,
        Duration::from_secs(300),
        Duration::ZERO,
    );
    let users = users(&settings);
    users.authenticate(&good_token(&server)).await.unwrap();
    let lines = log_lines(&format!("127.0.0.1:{}", server.port()));
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            !line.contains("pa55word") && !line.contains("s3cret"),
            "{line}"
        );
    }
    let health = users.health().to_json().to_string();
    assert!(
        !health.contains("pa55word") && !health.contains("s3cret"),
        "{health}"
    );
    let _ = std::io::stderr().flush();
}

/// A MicroProfile JWT token for `iss` as the TCK's `TokenUtils` mints it (`upn`, `groups`,
/// `iat = now`, `exp = now + 300`), signed by `key` with `kid` in its header.
fn micro_profile_token(iss: &str, key: &RealmKey, kid: &str) -> String {
    let mut payload = JwtPayload::new();
    let now = unix_now();
    payload.set_issuer(iss);
    payload.set_subject("24400320");
    payload
        .set_claim("upn", Some(json!("jdoe@example.com")))
        .unwrap();
    payload
        .set_claim("groups", Some(json!(["Echoer", "Tester"])))
        .unwrap();
    payload.set_claim("iat", Some(json!(now))).unwrap();
    payload.set_claim("exp", Some(json!(now + 300))).unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(kid);
    let signer = RS256.signer_from_pem(key.private_pem()).unwrap();
    jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

/// The TCK's `testKeyAsLocationUrl`: `mp.jwt.verify.publickey.location` is an `http://` URL
/// answering a PEM public key (the token's `kid` names a file and is ignored with one key), a
/// single JWK, or a JWK set selected by `kid`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tck_key_as_location_url_pem_jwk_and_jwks() {
    let server = JwksServer::start().unwrap();
    let key = server.signing_key().clone();
    let pem = key.public_pem().to_owned();
    let jwk = key.jwk().to_string();
    let jwks = svcid_testkit::jwks::jwks(&[&key, server.encryption_key()]);
    for (what, body, kid) in [
        ("PEM", pem, "/privateKey.pem"),
        ("JWK", jwk, "/privateKey.pem"),
        ("JWKS", jwks, key.kid()),
    ] {
        server.set_body(body);
        let before = server.requests();
        let location = format!("{}/publicKey-{what}", server.server_url());
        let settings = issuer(
            UserIssuerPolicy::micro_profile(server.issuer()),
            location,
            Duration::from_secs(300),
            Duration::from_secs(10),
        );
        let users = users(&settings);
        let user = users
            .authenticate(&micro_profile_token(&server.issuer(), &key, kid))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(user.username, "jdoe@example.com", "{what}");
        assert_eq!(user.roles, ["Echoer", "Tester"], "{what}");
        assert_eq!(server.requests() - before, 1, "{what}");
        // Another signer under the same kid: refused.
        let stranger = RealmKey::signing().unwrap();
        let forged = micro_profile_token(&server.issuer(), &stranger, kid);
        assert_eq!(
            users.authenticate(&forged).await.unwrap_err().reason(),
            "bad_signature",
            "{what}"
        );
    }
}
