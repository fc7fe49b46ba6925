//! Who may see the HTTP port once people are configured, over plain HTTP: a Keycloak realm (a
//! test-side server publishing its keys as Keycloak does) on DPM, people's tokens signed here with
//! josekit, a module's token minted by `svcid token mint` from the engine's home.
//!
//! Shown: health and info stay public; `/actuator/prometheus` answers `401` with RFC 6750's
//! challenge without a token, `403` to a person without `ONE_PLATFORM_MONITORING`, `200` to one
//! with it and to a module whose deployment holds it; `/console/api` likewise with the console's
//! roles; `/console` sends a browser without a session to the realm's authorization endpoint with
//! PKCE S256, `state` and `nonce`; a callback with a forged or replayed `state`, or without the
//! browser's login cookie, starts no session (security row U13, the part that needs no provider);
//! a daemon without an identity provider says at start that its console is open, and its port
//! behaves as before.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;
use std::time::SystemTime;

use common::{Pair, bin, http_port};
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};
use svcid_testkit::http::{HttpAnswer, request_with};
use svcid_testkit::jwks::JwksServer;

/// A Keycloak access token of the realm for `username` with `roles` as realm roles.
fn person(realm: &JwksServer, username: &str, roles: &[&str]) -> String {
    let key = realm.signing_key();
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(key.kid());
    let mut payload = JwtPayload::new();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    payload.set_issuer(realm.issuer());
    payload.set_subject(format!("id-of-{username}"));
    payload.set_claim("iat", Some(json!(now))).unwrap();
    payload.set_claim("exp", Some(json!(now + 300))).unwrap();
    payload
        .set_claim("preferred_username", Some(json!(username)))
        .unwrap();
    payload
        .set_claim("realm_access", Some(json!({"roles": roles})))
        .unwrap();
    let signer = RS256.signer_from_pem(key.private_pem()).unwrap();
    jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    request_with(port, "GET", path, headers).unwrap()
}

fn with_bearer(port: u16, path: &str, token: &str) -> HttpAnswer {
    get(port, path, &[("Authorization", &format!("Bearer {token}"))])
}

/// DPM with the realm configured, the engine's deployment also holding the monitoring role.
fn dpm_with_realm(realm: &JwksServer) -> Pair {
    let pair = Pair::linked();
    for line in [
        format!(
            "ataccama.authentication.keycloak.server-url={}",
            realm.server_url()
        ),
        "ataccama.authentication.keycloak.realm=svcid".to_owned(),
        "ataccama.one.platform.deployments.dpe-dev.security.roles[1]=ONE_PLATFORM_MONITORING"
            .to_owned(),
    ] {
        Pair::append(&pair.dpm, &line);
    }
    pair
}

#[test]
fn tokens_and_roles_decide_who_reads_metrics_and_the_console_data() {
    let realm = JwksServer::start().unwrap();
    let pair = dpm_with_realm(&realm);
    let dpm = pair.start_dpm(&[]);
    let port = http_port(&dpm);

    for public in ["/actuator/health", "/actuator/info", "/actuator"] {
        assert_eq!(get(port, public, &[]).code, 200, "{public}");
    }

    // Metrics: the product's ACL, ONE_PLATFORM_MONITORING.
    let none = get(port, "/actuator/prometheus", &[]);
    assert_eq!(none.code, 401, "{none:?}");
    assert_eq!(
        none.header("www-authenticate"),
        Some("Bearer realm=\"dpm\"")
    );
    let garbage = with_bearer(port, "/actuator/prometheus", "not-a-token");
    assert_eq!(garbage.code, 401);
    let challenge = garbage.header("www-authenticate").unwrap();
    assert!(
        challenge
            .starts_with("Bearer realm=\"dpm\", error=\"invalid_token\", error_description=\""),
        "{challenge}"
    );
    let admin = person(&realm, "alice", &["admin", "DPM_ADMIN"]);
    let forbidden = with_bearer(port, "/actuator/prometheus", &admin);
    assert_eq!(forbidden.code, 403, "{forbidden:?}");
    assert!(
        forbidden
            .body
            .contains("Only [ONE_PLATFORM_MONITORING] roles can access this endpoint"),
        "{}",
        forbidden.body
    );
    let monitor = person(&realm, "prometheus", &["ONE_PLATFORM_MONITORING"]);
    let scraped = with_bearer(port, "/actuator/prometheus", &monitor);
    assert_eq!(scraped.code, 200, "{scraped:?}");
    assert!(
        scraped.body.contains("svcid_console_sessions 0"),
        "{}",
        scraped.body
    );

    // A module's own token: the engine's deployment holds the role.
    let minted = Command::new(bin("svcid"))
        .args(["token", "mint", "--home"])
        .arg(&pair.dpe)
        .args(["--aud", "dpm"])
        .output()
        .unwrap();
    assert!(minted.status.success(), "{minted:?}");
    let module_token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    let by_module = get(
        port,
        "/actuator/prometheus",
        &[("Authorization", &format!("Internal-jwt {module_token}"))],
    );
    assert_eq!(by_module.code, 200, "{by_module:?}");

    // The console's data: admin or DPP_admin.
    assert_eq!(get(port, "/console/api", &[]).code, 401);
    assert_eq!(with_bearer(port, "/console/api", &monitor).code, 403);
    let data = with_bearer(port, "/console/api", &admin);
    assert_eq!(data.code, 200, "{data:?}");
    let overview: Value = serde_json::from_str(&data.body).unwrap();
    assert_eq!(overview["viewer"]["name"], "alice");
    assert_eq!(overview["viewer"]["roles"], json!(["DPM_ADMIN", "admin"]));
    assert!(
        overview["viewer"].get("logout").is_none(),
        "a token has no session to end"
    );
    assert_eq!(with_bearer(port, "/console/api/engines", &admin).code, 200);
    assert_eq!(
        with_bearer(port, "/console/api/engines", &monitor).code,
        403
    );

    // No token text in the log, whatever was refused.
    let log = std::fs::read_to_string(&dpm.log).unwrap();
    assert!(!log.contains(&admin) && !log.contains(&module_token));
}

#[test]
fn a_browser_without_a_session_is_sent_to_the_realm_with_pkce_state_and_nonce() {
    let realm = JwksServer::start().unwrap();
    let pair = dpm_with_realm(&realm);
    let dpm = pair.start_dpm(&[]);
    let port = http_port(&dpm);
    let host = format!("127.0.0.1:{port}");

    let page = get(port, "/console", &[("Host", &host)]);
    assert_eq!(page.code, 302, "{page:?}");
    let location = url::Url::parse(page.header("location").unwrap()).unwrap();
    assert_eq!(
        location[..url::Position::AfterPath],
        format!("{}/protocol/openid-connect/auth", realm.issuer())
    );
    let query: std::collections::BTreeMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "dpm-webapp-public-client");
    assert_eq!(
        query["redirect_uri"],
        format!("http://{host}/console/login/callback")
    );
    assert_eq!(query["scope"], "openid");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert_eq!(query["state"].len(), 43);
    assert_eq!(query["nonce"].len(), 43);
    let login_cookie = page.header("set-cookie").unwrap();
    let cookie_name = format!("svcid-dpm-{port}-login=");
    assert!(login_cookie.starts_with(&cookie_name), "{login_cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(login_cookie.contains(attribute), "{login_cookie}");
    }
    assert!(
        !login_cookie.contains("Secure"),
        "plain http: {login_cookie}"
    );
    let browser = login_cookie.split(';').next().unwrap().to_owned();
    let state = &query["state"];

    // U13: the state of a real login, but from a browser without its login cookie: refused, and
    // the state is spent, so the right browser cannot use it afterwards either.
    let forged = get(
        port,
        &format!("/console/login/callback?state={state}&code=anything"),
        &[("Host", &host)],
    );
    assert_eq!(forged.code, 400, "{forged:?}");
    assert!(
        forged.body.contains("<code id=\"reason\">state</code>"),
        "{}",
        forged.body
    );
    assert!(
        forged
            .headers("set-cookie")
            .iter()
            .all(|c| !c.starts_with(&format!("svcid-dpm-{port}="))),
        "no session cookie: {forged:?}"
    );
    let replayed = get(
        port,
        &format!("/console/login/callback?state={state}&code=anything"),
        &[("Host", &host), ("Cookie", &browser)],
    );
    assert_eq!(replayed.code, 400);
    // An unknown state, and the provider's own refusal.
    assert_eq!(
        get(
            port,
            "/console/login/callback?state=made-up&code=x",
            &[("Cookie", &browser)]
        )
        .code,
        400
    );
    let denied = get(port, "/console/login/callback?error=access_denied", &[]);
    assert_eq!(denied.code, 400);
    assert!(denied.body.contains(">provider<"), "{}", denied.body);

    let failures: Vec<Value> = dpm
        .events()
        .into_iter()
        .filter(|e| e["eventId"] == "consoleLoginFailed")
        .collect();
    let reasons: Vec<&str> = failures
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["state", "state", "state", "provider"],
        "{failures:?}"
    );
    assert!(
        failures[0]["detail"]
            .as_str()
            .unwrap()
            .contains("another browser"),
        "{}",
        failures[0]
    );
    let metrics = with_bearer(
        port,
        "/actuator/prometheus",
        &person(&realm, "prometheus", &["ONE_PLATFORM_MONITORING"]),
    );
    assert!(
        metrics
            .body
            .contains("svcid_console_login_failures_total{reason=\"state\"} 3"),
        "{}",
        metrics.body
    );
    // Logging out without a session still clears the cookie and goes to the realm's logout.
    let logout = get(port, "/console/logout", &[("Host", &host)]);
    assert_eq!(logout.code, 302);
    assert!(
        logout.header("location").unwrap().starts_with(&format!(
            "{}/protocol/openid-connect/logout?",
            realm.issuer()
        )),
        "{logout:?}"
    );
}

#[test]
fn without_an_identity_provider_the_port_is_open_as_before_and_says_so() {
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let port = http_port(&dpm);
    let open = dpm.wait_for("consoleOpen", |e| e["eventId"] == "consoleOpen");
    assert_eq!(open["severity"], "INFO");
    assert!(
        open["fix"].as_str().unwrap().contains("docs/users.md"),
        "{open}"
    );
    assert_eq!(get(port, "/actuator/prometheus", &[]).code, 200);
    assert_eq!(get(port, "/console/api", &[]).code, 200);
    let overview: Value = serde_json::from_str(&get(port, "/console/api", &[]).body).unwrap();
    assert!(overview.get("viewer").is_none());
}

#[test]
fn behind_an_https_address_the_cookies_are_secure_and_host_bound() {
    let realm = JwksServer::start().unwrap();
    let pair = dpm_with_realm(&realm);
    Pair::append(
        &pair.dpm,
        "svcid.console.public-url=https://dpm.example.com/",
    );
    let dpm = pair.start_dpm(&[]);
    let port = http_port(&dpm);
    let page = get(port, "/console", &[]);
    assert_eq!(page.code, 302, "{page:?}");
    let location = url::Url::parse(page.header("location").unwrap()).unwrap();
    let redirect = location
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(redirect, "https://dpm.example.com/console/login/callback");
    let cookie = page.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("__Host-svcid-dpm-{port}-login=")),
        "{cookie}"
    );
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}
