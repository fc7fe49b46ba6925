//! The OpenID Connect provider the login tests run against, proven end to end: discovery with
//! Keycloak's paths, the authorization code flow with PKCE S256 driven by the testkit's agent,
//! tokens fetched with reqwest and verified with josekit against the provider's own key set,
//! refresh, the refusals a client must see (wrong password, replayed code, missing verifier), and
//! an end-session request.

#![allow(clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::JwkSet;
use josekit::jws::RS256;
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};
use svcid_testkit::oidc::{
    OidcClient, OidcConfig, OidcProvider, OidcUser, form_encode, query_param,
};

const CLIENT: &str = "dpm-webapp-public-client";
const REDIRECT: &str = "http://127.0.0.1:9/console/login/callback";
const AFTER_LOGOUT: &str = "http://127.0.0.1:9/console";

fn random_text(bytes: usize) -> String {
    let mut buf = vec![0; bytes];
    openssl::rand::rand_bytes(&mut buf).unwrap();
    URL_SAFE_NO_PAD.encode(buf)
}

/// A PKCE pair: (verifier, S256 challenge).
fn pkce() -> (String, String) {
    let verifier = random_text(32);
    let challenge = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

struct Request {
    url: String,
    verifier: String,
    state: String,
    nonce: String,
}

fn authorization_request(provider: &OidcProvider) -> Request {
    let (verifier, challenge) = pkce();
    let state = random_text(16);
    let nonce = random_text(16);
    let url = format!(
        "{}?{}",
        provider.endpoint("auth"),
        form_encode(&[
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("redirect_uri", REDIRECT),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    Request {
        url,
        verifier,
        state,
        nonce,
    }
}

/// A client of the provider's HTTP API, as a module would use one.
struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Http {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Http {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
        }
    }

    fn get_json(&self, url: &str) -> Value {
        self.runtime.block_on(async {
            let answer = self.client.get(url).send().await.unwrap();
            assert_eq!(answer.status(), 200, "GET {url}");
            serde_json::from_str(&answer.text().await.unwrap()).unwrap()
        })
    }

    /// POSTs a form; the status and the JSON answer.
    fn post_form(&self, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.runtime.block_on(async {
            let answer = self
                .client
                .post(url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form_encode(form))
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            let text = answer.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap())
        })
    }
}

fn redeem(
    http: &Http,
    provider: &OidcProvider,
    code: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    http.post_form(&provider.endpoint("token"), &form)
}

/// Verifies an RS256 token against the provider's key set; the header and the claims.
fn verify(keys: &JwkSet, token: &str) -> (Value, JwtPayload) {
    let header = jwt::decode_header(token).unwrap();
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    let jwk = keys.get(&kid);
    assert_eq!(jwk.len(), 1, "the key {kid} is published once");
    let verifier = RS256.verifier_from_jwk(jwk[0]).unwrap();
    let (payload, header) = jwt::decode_with_verifier(token, &verifier).unwrap();
    let header: Value = serde_json::to_value(header.claims_set()).unwrap();
    (header, payload)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claim<'a>(payload: &'a JwtPayload, name: &str) -> &'a Value {
    payload
        .claim(name)
        .unwrap_or_else(|| panic!("claim {name} missing"))
}

#[test]
fn the_provider_serves_the_code_flow_with_pkce_as_keycloak_would() {
    let provider = OidcProvider::start(&OidcConfig {
        clients: vec![OidcClient::new(CLIENT, REDIRECT, AFTER_LOGOUT)],
        users: vec![
            OidcUser::new("u-alice", "alice", "alice-test-pw", &["admin", "DPM_ADMIN"]),
            OidcUser::new("u-bob", "bob", "bob-test-pw", &["viewer"]),
        ],
        access_token_ttl: 60,
        ..OidcConfig::default()
    });
    let http = Http::new();
    let issuer = format!("http://127.0.0.1:{}/realms/svcid", provider.port());
    assert_eq!(provider.issuer(), issuer);
    assert_eq!(provider.realm(), "svcid");
    assert_eq!(
        provider.server_url(),
        format!("http://127.0.0.1:{}", provider.port())
    );

    // Discovery: Keycloak's paths under the issuer.
    let discovery = http.get_json(&format!(
        "{}/realms/svcid/.well-known/openid-configuration",
        provider.server_url()
    ));
    let oidc = format!("{issuer}/protocol/openid-connect");
    assert_eq!(discovery["issuer"], issuer);
    assert_eq!(discovery["authorization_endpoint"], format!("{oidc}/auth"));
    assert_eq!(discovery["token_endpoint"], format!("{oidc}/token"));
    assert_eq!(discovery["jwks_uri"], format!("{oidc}/certs"));
    assert_eq!(discovery["end_session_endpoint"], format!("{oidc}/logout"));
    assert_eq!(discovery["userinfo_endpoint"], format!("{oidc}/userinfo"));
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
    let keys = http.get_json(&format!("{oidc}/certs"));
    let rsa: Vec<&Value> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kty"] == "RSA")
        .collect();
    assert_eq!(rsa.len(), 1, "{keys}");
    assert!(
        rsa[0].get("d").is_none(),
        "only the public key is published"
    );
    let keys = JwkSet::from_bytes(serde_json::to_vec(&keys).unwrap()).unwrap();

    // Sign in with the right password: back at the redirect URI with a code and the state.
    let request = authorization_request(&provider);
    let mut agent = provider.agent();
    let back = agent
        .sign_in(&request.url, "alice", "alice-test-pw")
        .unwrap();
    assert!(back.starts_with(&format!("{REDIRECT}?")), "{back}");
    assert_eq!(query_param(&back, "state").unwrap(), request.state);
    assert_eq!(query_param(&back, "iss").unwrap(), issuer);
    let code = query_param(&back, "code").unwrap();

    // Without the verifier the code is refused (and not consumed).
    let (status, refused) = redeem(&http, &provider, &code, None);
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_grant")),
        "{refused}"
    );
    // A wrong verifier likewise.
    let (status, refused) = redeem(&http, &provider, &code, Some(&pkce().0));
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_grant")),
        "{refused}"
    );

    let (status, tokens) = redeem(&http, &provider, &code, Some(&request.verifier));
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 60);
    let access = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    // The access token: RS256 over the published key, Keycloak's and MicroProfile JWT's claims.
    let (header, at) = verify(&keys, access);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claim(&at, "iss"), &json!(issuer));
    assert_eq!(claim(&at, "sub"), "u-alice");
    assert_eq!(claim(&at, "aud"), "account");
    assert_eq!(claim(&at, "preferred_username"), "alice");
    assert_eq!(
        claim(&at, "realm_access"),
        &json!({"roles": ["admin", "DPM_ADMIN"]})
    );
    assert_eq!(claim(&at, "groups"), &json!(["admin", "DPM_ADMIN"]));
    assert_eq!(claim(&at, "azp"), CLIENT);
    assert_eq!(claim(&at, "typ"), "Bearer");
    let exp = claim(&at, "exp").as_u64().unwrap();
    let iat = claim(&at, "iat").as_u64().unwrap();
    assert_eq!(exp - iat, 60);
    assert!(iat.abs_diff(now()) < 30);
    eprintln!("access token: {header} {}", at);

    // A token whose signature is changed does not verify.
    let mut forged = access.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let header = jwt::decode_header(&forged).unwrap();
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    let verifier = RS256.verifier_from_jwk(keys.get(&kid)[0]).unwrap();
    assert!(jwt::decode_with_verifier(&forged, &verifier).is_err());

    // The ID token: the nonce, the client as audience, the user.
    let (header, it) = verify(&keys, id_token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claim(&it, "nonce"), &json!(request.nonce));
    assert_eq!(claim(&it, "aud"), CLIENT);
    assert_eq!(claim(&it, "iss"), &json!(issuer));
    assert_eq!(claim(&it, "sub"), "u-alice");
    assert_eq!(claim(&it, "preferred_username"), "alice");
    eprintln!("ID token: {header} {}", it);

    // The same code twice: refused.
    let (status, replayed) = redeem(&http, &provider, &code, Some(&request.verifier));
    assert_eq!(
        (status, replayed["error"].as_str()),
        (400, Some("invalid_grant")),
        "{replayed}"
    );

    // The refresh token gives a new access token (and a new refresh token) for the same user.
    // (The replay above revoked the code's grant, as the provider does; a fresh sign-in in the
    // same agent gets a code without the form.)
    let request = authorization_request(&provider);
    let back = agent.follow(&request.url).unwrap();
    let code = query_param(&back, "code").unwrap();
    let (status, tokens) = redeem(&http, &provider, &code, Some(&request.verifier));
    assert_eq!(status, 200, "{tokens}");
    let refresh_2 = tokens["refresh_token"].as_str().unwrap();
    assert_ne!(refresh, refresh_2);
    let (status, renewed) = http.post_form(
        &provider.endpoint("token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_2),
            ("client_id", CLIENT),
        ],
    );
    assert_eq!(status, 200, "{renewed}");
    let (_, at2) = verify(&keys, renewed["access_token"].as_str().unwrap());
    assert_eq!(claim(&at2, "sub"), "u-alice");
    assert_eq!(
        claim(&at2, "realm_access"),
        &json!({"roles": ["admin", "DPM_ADMIN"]})
    );
    assert_ne!(claim(&at2, "jti"), claim(&at, "jti"));
    let rotated = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, refresh_2, "refresh tokens rotate");
    let (status, reused) = http.post_form(
        &provider.endpoint("token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_2),
            ("client_id", CLIENT),
        ],
    );
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant")),
        "{reused}"
    );
    // The first refresh token went with the grant the replayed code revoked.
    let (status, revoked) = http.post_form(
        &provider.endpoint("token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLIENT),
        ],
    );
    assert_eq!(
        (status, revoked["error"].as_str()),
        (400, Some("invalid_grant")),
        "{revoked}"
    );

    // End session: GET with the ID token and the registered URI; no confirmation to click (the
    // form submits itself), back at the URI with the state; the session is gone.
    let logout = format!(
        "{}?{}",
        provider.endpoint("logout"),
        form_encode(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
            ("state", "bye-1"),
        ])
    );
    let back = agent.follow(&logout).unwrap();
    assert_eq!(back, format!("{AFTER_LOGOUT}?state=bye-1"));
    let request = authorization_request(&provider);
    let error = agent.follow(&request.url).unwrap_err();
    assert!(error.contains("asks for a login"), "{error}");

    // An unregistered post-logout URI is refused.
    let logout = format!(
        "{}?{}",
        provider.endpoint("logout"),
        form_encode(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "http://127.0.0.1:9/elsewhere"),
        ])
    );
    let error = provider.agent().follow(&logout).unwrap_err();
    assert!(error.contains("HTTP 400"), "{error}");

    // Bob signs in with his own roles.
    let request = authorization_request(&provider);
    let back = provider
        .sign_in(&request.url, "bob", "bob-test-pw")
        .unwrap();
    let (status, tokens) = redeem(
        &http,
        &provider,
        &query_param(&back, "code").unwrap(),
        Some(&request.verifier),
    );
    assert_eq!(status, 200, "{tokens}");
    let (_, at) = verify(&keys, tokens["access_token"].as_str().unwrap());
    assert_eq!(claim(&at, "preferred_username"), "bob");
    assert_eq!(claim(&at, "groups"), &json!(["viewer"]));

    // A wrong password: the form again, with its error, and no code.
    let request = authorization_request(&provider);
    let error = provider
        .sign_in(&request.url, "alice", "not-her-password")
        .unwrap_err();
    assert!(error.contains("Invalid username or password."), "{error}");
    assert!(!error.contains("not-her-password"), "{error}");
    let error = provider
        .sign_in(&request.url, "nobody", "alice-test-pw")
        .unwrap_err();
    assert!(error.contains("refused the login"), "{error}");

    // The log names requests by path only: no code, no token.
    let log = provider.log();
    assert!(
        log.contains("POST /realms/svcid/protocol/openid-connect/token 200"),
        "{log}"
    );
    assert!(!log.contains(&code) && !log.contains(access), "{log}");
}

#[test]
fn access_tokens_can_be_short_lived_and_named_otherwise() {
    let provider = OidcProvider::start(&OidcConfig {
        realm: "other".to_owned(),
        clients: vec![OidcClient::new(CLIENT, REDIRECT, AFTER_LOGOUT)],
        users: vec![OidcUser::new("u-1", "carol", "carol-test-pw", &["r1"])],
        access_token_ttl: 2,
        id_token_ttl: Some(7),
        audience: Some("svcid-console".to_owned()),
        access_token_typ: Some("at+jwt".to_owned()),
        ..OidcConfig::default()
    });
    assert!(provider.issuer().ends_with("/realms/other"));
    let http = Http::new();
    let request = authorization_request(&provider);
    let back = provider
        .sign_in(&request.url, "carol", "carol-test-pw")
        .unwrap();
    let (status, tokens) = redeem(
        &http,
        &provider,
        &query_param(&back, "code").unwrap(),
        Some(&request.verifier),
    );
    assert_eq!(status, 200, "{tokens}");
    let keys = http.get_json(&provider.endpoint("certs"));
    let keys = JwkSet::from_bytes(serde_json::to_vec(&keys).unwrap()).unwrap();
    let (header, at) = verify(&keys, tokens["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claim(&at, "aud"), "svcid-console");
    assert_eq!(
        claim(&at, "exp").as_u64().unwrap() - claim(&at, "iat").as_u64().unwrap(),
        2
    );
    let (_, it) = verify(&keys, tokens["id_token"].as_str().unwrap());
    assert_eq!(
        claim(&it, "exp").as_u64().unwrap() - claim(&it, "iat").as_u64().unwrap(),
        7
    );
}

#[test]
fn a_missing_client_is_refused_before_any_login() {
    let provider = OidcProvider::start(&OidcConfig::default());
    let request = authorization_request(&provider);
    let error = provider
        .sign_in(&request.url, "alice", "alice-test-pw")
        .unwrap_err();
    assert!(error.contains("HTTP 400"), "{error}");
}

/// A page on 127.0.0.1 standing for the module: answers every request with a blank page and
/// hands over each request's path and query.
fn callback_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\n<p>module</p>",
            );
            if target != "/favicon.ico" {
                let _ = tx.send(target);
            }
        }
    });
    (port, rx)
}

/// The login page and the end-session form in a real browser (Debian's headless Chromium): the
/// form's fields by their ids, the provider's cookies over plain http, and the self-submitting
/// sign-out.
#[test]
fn a_browser_signs_in_and_out() {
    use std::time::Duration;
    if !std::path::Path::new(svcid_testkit::browser::CHROMIUM).exists() {
        panic!(
            "{} is missing: apt-get install chromium",
            svcid_testkit::browser::CHROMIUM
        );
    }
    let (port, requests) = callback_server();
    let redirect = format!("http://127.0.0.1:{port}/console/login/callback");
    let after_logout = format!("http://127.0.0.1:{port}/console");
    let provider = OidcProvider::start(&OidcConfig {
        clients: vec![OidcClient::new(CLIENT, &redirect, &after_logout)],
        users: vec![OidcUser::new(
            "u-alice",
            "alice",
            "alice-test-pw",
            &["admin"],
        )],
        ..OidcConfig::default()
    });
    let profile = tempfile::tempdir().unwrap();
    let browser = svcid_testkit::browser::launch(
        std::path::Path::new(svcid_testkit::browser::CHROMIUM),
        profile.path(),
        &[],
    )
    .unwrap();
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(20));
    let wait = |what: &str| {
        requests
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the browser never reached {what}; {}", provider.log()))
    };

    let (verifier, challenge) = pkce();
    let url = format!(
        "{}?{}",
        provider.endpoint("auth"),
        form_encode(&[
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("redirect_uri", &redirect),
            ("state", "s-1"),
            ("nonce", "n-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    tab.navigate_to(&url).unwrap();
    // A wrong password first: the form again, saying so.
    tab.wait_for_element("#username").unwrap().click().unwrap();
    tab.type_str("alice").unwrap();
    tab.wait_for_element("#password").unwrap().click().unwrap();
    tab.type_str("wrong").unwrap();
    tab.wait_for_element("#login").unwrap().click().unwrap();
    let error = tab
        .wait_for_element("#error")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert_eq!(error, "Invalid username or password.");
    tab.wait_for_element("#password").unwrap().click().unwrap();
    tab.type_str("alice-test-pw").unwrap();
    tab.wait_for_element("#login").unwrap().click().unwrap();
    let back = wait("the callback");
    assert!(back.starts_with("/console/login/callback?"), "{back}");
    assert_eq!(query_param(&back, "state").unwrap(), "s-1");
    let code = query_param(&back, "code").unwrap();

    let http = Http::new();
    let (status, tokens) = http.post_form(
        &provider.endpoint("token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("client_id", CLIENT),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(status, 200, "{tokens}");

    // Sign out: the provider's form submits itself, the browser lands on the URI with the state.
    let logout = format!(
        "{}?{}",
        provider.endpoint("logout"),
        form_encode(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", &after_logout),
            ("state", "bye-2"),
        ])
    );
    tab.navigate_to(&logout).unwrap();
    assert_eq!(wait("the post-logout URI"), "/console?state=bye-2");
    // The session is over: the next authorization request shows the form again.
    tab.navigate_to(&url).unwrap();
    tab.wait_for_element("#username").unwrap();
}
