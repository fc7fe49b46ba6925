//! The console login against a real OpenID Connect provider: the npm package `oidc-provider` run
//! by Node.js (`tests/oidc/`), serving a realm on Keycloak's paths, with a public client per
//! daemon and two people, alice (`admin`) and bob (no console role). DPM and DPE are configured
//! the product's way (`ataccama.authentication.keycloak.server-url` and `.realm`) and nothing
//! else: the login's endpoints are derived.
//!
//! Over HTTP, with the provider's own login form filled by a cookie-keeping agent: a login, its
//! session and the console's JSON; the session renewed with the refresh token (access tokens live
//! 20 s, so every request renews); security row U13 (a replayed state, a replayed code, a code
//! bound to another PKCE challenge, an ID token with another nonce, a person without the role),
//! U14 (the cookie after logout, the cookie on the other daemon's port). In headless Chromium: a
//! fresh browser opening `/console` lands on the provider's login, signs in, comes back and sees
//! the engine READY and who is signed in; logging out ends both sessions; bob sees the 403 page.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Daemon, PATIENCE, Pair, free_port};
use headless_chrome::Tab;
use serde_json::Value;
use svcid_testkit::http::{HttpAnswer, request_with};
use svcid_testkit::oidc::{OidcClient, OidcConfig, OidcProvider, OidcUser};

const ALICE: (&str, &str) = ("alice", "alice-password-1");
const BOB: (&str, &str) = ("bob", "bob-password-2");

/// A provider, and a DPM and a DPE (registered, READY) that log in at it.
struct Setup {
    provider: OidcProvider,
    dpm: Daemon,
    dpe: Daemon,
    dpm_http: u16,
    dpe_http: u16,
    _pair: Pair,
}

impl Setup {
    fn start(access_token_ttl: u64) -> Setup {
        let (dpm_http, dpe_http) = (free_port(), free_port());
        let client = |module: &str, port: u16| {
            OidcClient::new(
                &format!("{module}-webapp-public-client"),
                &format!("http://127.0.0.1:{port}/console/login/callback"),
                &format!("http://127.0.0.1:{port}/console"),
            )
        };
        let provider = OidcProvider::start(&OidcConfig {
            clients: vec![client("dpm", dpm_http), client("dpe", dpe_http)],
            users: vec![
                OidcUser::new("id-alice", ALICE.0, ALICE.1, &["admin", "DPM_ADMIN"]),
                OidcUser::new("id-bob", BOB.0, BOB.1, &["offline_access"]),
            ],
            access_token_ttl,
            ..OidcConfig::default()
        });
        let pair = Pair::linked();
        for (home, port) in [(&pair.dpm, dpm_http), (&pair.dpe, dpe_http)] {
            Pair::replace(home, "server.port=0", &format!("server.port={port}"));
            Pair::append(
                home,
                &format!(
                    "ataccama.authentication.keycloak.server-url={}",
                    provider.server_url()
                ),
            );
            Pair::append(
                home,
                &format!(
                    "ataccama.authentication.keycloak.realm={}",
                    provider.realm()
                ),
            );
        }
        let dpm = pair.start_dpm(&[]);
        let dpe = pair.start_dpe(dpm.port(), &[]);
        dpm.wait_for("the engine READY", |e| {
            e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
        });
        Setup {
            provider,
            dpm,
            dpe,
            dpm_http,
            dpe_http,
            _pair: pair,
        }
    }
}

fn get(port: u16, path: &str, cookie: Option<&str>) -> HttpAnswer {
    let host = format!("127.0.0.1:{port}");
    let mut headers = vec![("Host", host.as_str())];
    if let Some(cookie) = cookie {
        headers.push(("Cookie", cookie));
    }
    request_with(port, "GET", path, &headers).unwrap()
}

/// The path and query of `url` (on the daemon's port).
fn local(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    url[url::Position::BeforePath..].to_owned()
}

/// The `name=value` part of the answer's `Set-Cookie` named `name…`.
fn cookie_set(answer: &HttpAnswer, name: &str) -> Option<String> {
    answer
        .headers("set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// A login started at the daemon: the provider's authorization URL and the browser's cookie.
fn start_login(port: u16) -> (String, String) {
    let page = get(port, "/console", None);
    assert_eq!(page.code, 302, "{page:?}");
    let login = page
        .headers("set-cookie")
        .into_iter()
        .find(|c| c.contains("-login="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (page.header("location").unwrap().to_owned(), login)
}

fn query(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn failures(daemon: &Daemon) -> Vec<String> {
    daemon
        .events()
        .into_iter()
        .filter(|e| e["eventId"] == "consoleLoginFailed")
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect()
}

fn viewer(port: u16, cookie: &str) -> Option<Value> {
    let api = get(port, "/console/api", Some(cookie));
    (api.code == 200).then(|| serde_json::from_str::<Value>(&api.body).unwrap()["viewer"].clone())
}

#[test]
fn a_login_is_one_browser_one_state_one_code_and_its_session_ends_at_logout() {
    let setup = Setup::start(20);
    let (port, session_name) = (setup.dpm_http, format!("svcid-dpm-{}", setup.dpm_http));
    let mut agent = setup.provider.agent();

    // alice logs in.
    let (authorize, browser) = start_login(port);
    let back = agent.sign_in(&authorize, ALICE.0, ALICE.1).unwrap();
    assert!(
        back.starts_with(&format!("http://127.0.0.1:{port}/console/login/callback?")),
        "{back}"
    );
    let done = get(port, &local(&back), Some(&browser));
    assert_eq!(done.code, 302, "{done:?}");
    assert_eq!(done.header("location"), Some("/console"));
    let session = cookie_set(&done, &session_name).expect("a session cookie");
    let set = done.headers("set-cookie").join(" | ");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let seen = viewer(port, &session).expect("the session reads the console");
    assert_eq!(seen["name"], "alice");
    assert_eq!(seen["logout"], "/console/logout");
    assert_eq!(get(port, "/console", Some(&session)).code, 200);

    // Access tokens live 20 s, under the 30 s renewal margin: each request renewed the session.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(viewer(port, &session).unwrap()["name"], "alice");
    let renewed = setup
        .dpm
        .events()
        .into_iter()
        .filter(|e| e["eventId"] == "consoleSessionRenewed" && e["result"] == "renewed")
        .count();
    assert!(renewed >= 2, "renewals: {renewed}");

    // U13: the same answer again (its state is spent).
    assert_eq!(get(port, &local(&back), Some(&browser)).code, 400);
    // U13: the old code under a new login's state.
    let (authorize2, browser2) = start_login(port);
    let old_code = &query(&back)["code"];
    let state2 = &query(&authorize2)["state"];
    let replay = get(
        port,
        &format!("/console/login/callback?code={old_code}&state={state2}"),
        Some(&browser2),
    );
    assert_eq!(replay.code, 400, "{replay:?}");
    // U13: a code bound to another PKCE challenge (the attacker's), under a real login's state.
    let (authorize3, browser3) = start_login(port);
    let mut foreign = url::Url::parse(&authorize3).unwrap();
    let pairs: Vec<(String, String)> = foreign
        .query_pairs()
        .into_owned()
        .map(|(k, v)| match k.as_str() {
            "code_challenge" => (k, "E9Melhoa2OwvFWEMTJRAqTsv1cG3u3tzaXH4v5oBIdQ".to_owned()),
            _ => (k, v),
        })
        .collect();
    foreign.query_pairs_mut().clear().extend_pairs(&pairs);
    let foreign_back = agent.sign_in(foreign.as_str(), ALICE.0, ALICE.1).unwrap();
    let pkce = get(port, &local(&foreign_back), Some(&browser3));
    assert_eq!(pkce.code, 400, "{pkce:?}");
    // U13: an ID token with another nonce (the code is DPM's own, the nonce the attacker's).
    let (authorize4, browser4) = start_login(port);
    let mut renonced = url::Url::parse(&authorize4).unwrap();
    let pairs: Vec<(String, String)> = renonced
        .query_pairs()
        .into_owned()
        .map(|(k, v)| match k.as_str() {
            "nonce" => (k, "the-attackers-nonce".to_owned()),
            _ => (k, v),
        })
        .collect();
    renonced.query_pairs_mut().clear().extend_pairs(&pairs);
    let nonce_back = agent.sign_in(renonced.as_str(), ALICE.0, ALICE.1).unwrap();
    let nonce = get(port, &local(&nonce_back), Some(&browser4));
    assert_eq!(nonce.code, 400, "{nonce:?}");
    for refused in [&replay, &pkce, &nonce] {
        assert!(cookie_set(refused, &session_name).is_none(), "{refused:?}");
    }
    // The provider refused the foreign-PKCE code as `invalid_grant` without saying why (oidc-provider
    // keeps the detail to itself), so its reason is `code`; Keycloak's "PKCE verification failed"
    // is reported as `pkce` (the login crate's unit tests).
    assert_eq!(failures(&setup.dpm), ["state", "code", "code", "nonce"]);

    // bob has no console role: the 403 page, no session.
    let mut bobs = setup.provider.agent();
    let (authorize5, browser5) = start_login(port);
    let bob_back = bobs.sign_in(&authorize5, BOB.0, BOB.1).unwrap();
    let forbidden = get(port, &local(&bob_back), Some(&browser5));
    assert_eq!(forbidden.code, 403, "{forbidden:?}");
    assert!(
        forbidden.body.contains("admin, DPP_admin"),
        "{}",
        forbidden.body
    );
    assert!(cookie_set(&forbidden, &session_name).is_none());
    assert_eq!(failures(&setup.dpm).last().unwrap(), "role");

    // U14: alice's cookie on the engine's console, under either name: not a session there.
    let on_dpe = session.replace(&session_name, &format!("svcid-dpe-{}", setup.dpe_http));
    for cookie in [&session, &on_dpe] {
        assert_eq!(get(setup.dpe_http, "/console/api", Some(cookie)).code, 401);
    }

    // Logout: the session ends here and at the provider, which sends the browser back.
    let logout = get(port, "/console/logout", Some(&session));
    assert_eq!(logout.code, 302);
    let end_session = logout.header("location").unwrap().to_owned();
    assert!(end_session.contains("id_token_hint="), "{end_session}");
    assert_eq!(
        agent.follow(&end_session).unwrap(),
        format!("http://127.0.0.1:{port}/console")
    );
    // U14: the cookie after logout.
    assert_eq!(get(port, "/console/api", Some(&session)).code, 401);
    assert_eq!(get(port, "/console", Some(&session)).code, 302);
    // The provider's session is gone too: a new login asks for the password again.
    let (authorize6, _) = start_login(port);
    assert!(
        agent.follow(&authorize6).is_err(),
        "the provider asks for a login"
    );

    // Nothing secret in the log.
    let log = std::fs::read_to_string(&setup.dpm.log).unwrap();
    let session_id = session.split_once('=').unwrap().1;
    assert!(!log.contains(session_id) && !log.contains(old_code.as_str()));
    let events = setup.dpm.events();
    let logins: Vec<&Value> = events
        .iter()
        .filter(|e| e["eventId"] == "consoleLogin")
        .collect();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["user"], "alice");
    assert!(
        events
            .iter()
            .any(|e| e["eventId"] == "consoleLogout" && e["user"] == "alice")
    );
    let _ = &setup.dpe;
}

/// Evaluates `expression` (a string) in the page; `None` while it throws or gives no string.
fn eval_text(tab: &Tab, expression: &str) -> Option<String> {
    match tab.evaluate(expression, false).ok()?.value {
        Some(Value::String(text)) => Some(text),
        _ => None,
    }
}

/// Waits until `expression` gives a string `check` accepts; fails naming `what` and the URL.
fn wait_text(tab: &Tab, what: &str, expression: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(text) = eval_text(tab, expression)
            && check(&text)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the page at {} never showed {what}",
            tab.get_url()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fills the provider's login form and submits it.
fn sign_in(tab: &Tab, (username, password): (&str, &str)) {
    wait_text(
        tab,
        "the provider's login form",
        "document.getElementById('username') ? 'form' : ''",
        |t| t == "form",
    );
    tab.wait_for_element("#username").unwrap().click().unwrap();
    tab.type_str(username).unwrap();
    tab.wait_for_element("#password").unwrap().click().unwrap();
    tab.type_str(password).unwrap();
    tab.wait_for_element("#login").unwrap().click().unwrap();
}

#[test]
fn a_fresh_browser_logs_in_at_the_provider_sees_the_fleet_and_logs_out() {
    let Some(chromium) = common::chromium("the console login's browser test") else {
        return;
    };
    // Access tokens live 20 s, under the renewal margin: the page's own polling renews the session.
    let setup = Setup::start(20);
    let port = setup.dpm_http;
    let profile = tempfile::tempdir().unwrap();
    let browser = svcid_testkit::browser::launch(chromium, profile.path(), &[]).unwrap();
    let tab = browser.new_tab().unwrap();

    tab.navigate_to(&format!("http://127.0.0.1:{port}/console"))
        .unwrap();
    let provider_origin = format!("http://127.0.0.1:{}/", setup.provider.port());
    wait_text(
        tab.as_ref(),
        "the provider's login page",
        "location.href",
        |url| url.starts_with(&provider_origin),
    );
    sign_in(&tab, ALICE);
    wait_text(
        tab.as_ref(),
        "alice signed in",
        "(document.getElementById('viewer-name') || {}).textContent || ''",
        |t| t == "alice",
    );
    let ready = wait_text(
        tab.as_ref(),
        "the engine READY",
        "Array.from(document.querySelectorAll('#engines tbody tr td:nth-child(3)')).map(td => td.textContent).join(',')",
        |t| t == "READY",
    );
    assert_eq!(ready, "READY");
    let roles = eval_text(&tab, "document.getElementById('viewer-roles').textContent").unwrap();
    assert!(roles.contains("admin"), "{roles}");
    // The session survives a token refresh: the page keeps polling through renewals.
    let renewals = || {
        setup
            .dpm
            .events()
            .into_iter()
            .filter(|e| e["eventId"] == "consoleSessionRenewed" && e["result"] == "renewed")
            .count()
    };
    let before = renewals();
    let deadline = Instant::now() + PATIENCE;
    while renewals() < before + 2 {
        assert!(
            Instant::now() < deadline,
            "the page's polling never renewed the session"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        eval_text(&tab, "document.getElementById('viewer-name').textContent").unwrap(),
        "alice"
    );
    assert!(
        eval_text(&tab, "location.pathname")
            .unwrap()
            .starts_with("/console")
    );
    // No token in the browser: only the session cookie, which script cannot read.
    assert_eq!(eval_text(&tab, "document.cookie").unwrap_or_default(), "");
    assert_eq!(
        eval_text(
            &tab,
            "JSON.stringify(Object.keys(localStorage).concat(Object.keys(sessionStorage)))"
        )
        .unwrap(),
        "[]"
    );

    // Log out: back through the provider's end-session to its login form.
    tab.wait_for_element("#logout").unwrap().click().unwrap();
    wait_text(
        tab.as_ref(),
        "the provider's login form again",
        "document.getElementById('username') ? location.href : ''",
        |url| url.starts_with(&provider_origin),
    );

    // bob signs in on the same browser: the 403 page names the roles the console needs.
    sign_in(&tab, BOB);
    let needed = wait_text(
        tab.as_ref(),
        "the 403 page",
        "(document.getElementById('needed') || {}).textContent || ''",
        |t| !t.is_empty(),
    );
    assert_eq!(needed, "admin, DPP_admin");
    assert_eq!(
        eval_text(&tab, "document.getElementById('who').textContent").unwrap(),
        "bob"
    );
    let logins: Vec<Value> = setup
        .dpm
        .events()
        .into_iter()
        .filter(|e| {
            e["eventId"] == "consoleLogin"
                || e["eventId"] == "consoleLogout"
                || e["eventId"] == "consoleLoginFailed"
        })
        .collect();
    let kinds: Vec<&str> = logins
        .iter()
        .map(|e| e["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["consoleLogin", "consoleLogout", "consoleLoginFailed"],
        "{logins:?}"
    );
}
