//! End-to-end: the operations console in a real browser. A real `dpm` and `dpe` pair and a real
//! headless Chromium (Debian's `chromium`, driven over the DevTools protocol): every assertion
//! reads the rendered DOM (cells' `textContent`), never the HTML source, and waits by polling
//! with a deadline. The page is loaded once and never reloaded: what changes later (a revoked
//! key, an engine going DISCONNECTED, a refusal) must arrive by the page's own refresh.
//!
//! The engine advertises a constraint whose value is `<img src=x onerror=alert(1)>`: it must be
//! shown as that text, no `img` element may appear, and no script may run (a `window.__xss`
//! trap replaces `alert` before the page's own script runs).
//!
//! Without `/usr/bin/chromium` the browser test is skipped with a message, except under CI
//! (`CI` set), where it fails: `.ci/run` installs the package.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{PATIENCE, Pair, get_json, http_get, http_port};
use headless_chrome::protocol::cdp::Page;
use headless_chrome::{Browser, Tab};
use serde_json::Value;
use svcid_testkit::log::token_in;

/// The constraint value that must stay text.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";
/// DPE's key as DPM trusts it, and DPM's key as DPE trusts it.
const DPE_KEY_IN_DPM: &str =
    "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key.is-revoked";
const DPM_KEY_IN_DPE: &str =
    "ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.is-revoked";

/// A headless Chromium as root on a closed network: no sandbox (root), no GPU, nothing that
/// phones home, a fresh profile.
fn browser(path: &Path, profile: &Path) -> Browser {
    svcid_testkit::browser::launch(path, profile, &[]).expect("chromium starts")
}

/// Evaluates `expression` in the page and returns its value as JSON (the expression returns a
/// `JSON.stringify`'d string).
fn eval_json(tab: &Tab, expression: &str) -> Value {
    let result = tab.evaluate(expression, false).expect("evaluates");
    match result.value {
        Some(Value::String(text)) => serde_json::from_str(&text).unwrap(),
        other => panic!("{expression} gave {other:?}"),
    }
}

/// A table's body as rendered (`#engines`, `#refusals`): each row's cells' text.
fn table_rows(tab: &Tab, table: &str) -> Vec<Vec<String>> {
    let rows = eval_json(
        tab,
        &format!(
            "JSON.stringify(Array.from(document.querySelectorAll('{table} tbody tr'))\
                .map(tr => Array.from(tr.cells).map(td => td.textContent)))"
        ),
    );
    serde_json::from_value(rows).unwrap()
}

fn engine_rows(tab: &Tab) -> Vec<Vec<String>> {
    table_rows(tab, "#engines")
}

fn refusal_rows(tab: &Tab) -> Vec<Vec<String>> {
    table_rows(tab, "#refusals")
}

/// Polls `check` on the page until it returns `Some`, or fails with `what` and the last state.
fn wait_page<T>(tab: &Tab, what: &str, mut check: impl FnMut(&Tab) -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check(tab) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed {what}; engines {:?}; refusals {:?}",
            engine_rows(tab),
            refusal_rows(tab)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_dpm_console_shows_the_fleet_its_trust_and_refusals_live_in_a_real_browser() {
    let pair = Pair::linked();
    // The engine advertises a hostile string (the product's syntax: a plain value is a string).
    Pair::append(&pair.dpe, &format!("constraints.note={HOSTILE}"));
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    let (dpm_http, dpe_http) = (http_port(&dpm), http_port(&dpe));
    let ready = dpm.wait_for("the engine READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    let engine_id = ready["correlationId"].as_str().unwrap().to_owned();

    // The JSON first, as a script would read it.
    let (code, view) = get_json(dpm_http, "/console/api/engines?status=READY");
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["matched"], 1, "{view}");
    assert_eq!(view["engines"][0]["id"], engine_id.as_str());
    assert!(
        view["engines"][0]["constraints"]
            .as_str()
            .unwrap()
            .contains(HOSTILE),
        "{view}"
    );
    let (code, error) = get_json(dpm_http, "/console/api/engines?status=GONE");
    assert_eq!(code, 400);
    assert!(
        error["message"].as_str().unwrap().contains("status"),
        "{error}"
    );

    let Some(chromium) = common::chromium("the console's browser test") else {
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let browser = browser(chromium, profile.path());
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(PATIENCE);
    // The trap is in place before any script of the page runs.
    tab.call_method(Page::AddScriptToEvaluateOnNewDocument {
        source: "window.__xss = 0; window.alert = function () { window.__xss += 1; };".into(),
        world_name: None,
        include_command_line_api: None,
        run_immediately: None,
    })
    .unwrap();
    // `/` leads to the console.
    tab.navigate_to(&format!("http://127.0.0.1:{dpm_http}/"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    assert!(tab.get_url().ends_with("/console"), "{}", tab.get_url());

    // 1. The engine is listed READY, its constraint as text.
    let row = wait_page(&tab, "the engine READY", |tab| {
        engine_rows(tab)
            .into_iter()
            .find(|cells| cells.first() == Some(&engine_id) && cells[2] == "READY")
    });
    assert!(row[6].contains(HOSTILE), "constraints cell: {row:?}");
    assert!(row[5].contains("dpe-dev"), "registered by: {row:?}");
    let images = eval_json(
        &tab,
        "JSON.stringify(document.querySelectorAll('img').length)",
    );
    assert_eq!(images, 0, "an img element was created from data");
    let colour = eval_json(
        &tab,
        "JSON.stringify(getComputedStyle(document.querySelector('#engines tbody .status')).backgroundColor)",
    );
    assert_eq!(colour, "rgb(26, 127, 55)", "READY is green");
    let counts = eval_json(
        &tab,
        "JSON.stringify(document.querySelector('#engine-counts').textContent)",
    );
    assert!(counts.as_str().unwrap().contains("READY 1"), "{counts}");
    // The trust table: DPE's key, not revoked, used recently (it registered).
    let trust = eval_json(
        &tab,
        "JSON.stringify(Array.from(document.querySelectorAll('#trust tbody tr'))\
            .map(tr => Array.from(tr.cells).map(td => td.textContent + '|' + td.className)))",
    );
    let trust = trust.as_array().unwrap();
    assert!(
        trust.iter().any(|r| {
            let r = r.to_string();
            r.contains("dpe-dev") && r.contains("\"no|") && r.contains("|recent")
        }),
        "{trust:?}"
    );
    let renders_before: u64 = eval_json(
        &tab,
        "JSON.stringify(Number(document.documentElement.dataset.renders))",
    )
    .as_u64()
    .unwrap();

    // 2. Cut the trust between the pair in both files: DPM refuses the engine's key (its
    // registrations are refused and counted) and the engine refuses DPM's (its status checks
    // fail: DISCONNECTED). The page is not reloaded.
    let mark = dpm.events().len();
    Pair::replace_atomically(
        &pair.dpm,
        &format!("{DPE_KEY_IN_DPM}=false"),
        &format!("{DPE_KEY_IN_DPM}=true"),
    );
    Pair::replace_atomically(
        &pair.dpe,
        &format!("{DPM_KEY_IN_DPE}=false"),
        &format!("{DPM_KEY_IN_DPE}=true"),
    );
    dpm.wait_for_after(mark, "the engine DISCONNECTED", |e| {
        e["eventId"] == "engineDisconnected"
    });
    wait_page(&tab, "the engine DISCONNECTED", |tab| {
        engine_rows(tab)
            .into_iter()
            .find(|cells| cells.first() == Some(&engine_id) && cells[2] == "DISCONNECTED")
    });
    let refusal = wait_page(&tab, "the refusal of the revoked key", |tab| {
        refusal_rows(tab)
            .into_iter()
            .find(|cells| cells[0] == "revoked_key" && cells[1] == "dpe-dev")
    });
    assert_eq!(refusal[2], "127.0.0.1", "{refusal:?}");
    assert!(refusal[3].parse::<u64>().unwrap() >= 1, "{refusal:?}");
    wait_page(&tab, "the key REVOKED", |tab| {
        let text = eval_json(
            tab,
            "JSON.stringify(document.querySelector('#trust tbody').textContent)",
        );
        text.as_str().unwrap().contains("REVOKED").then_some(())
    });
    // The same count as Prometheus (read after the page showed it: it only grows).
    let (_, _, text) = http_get(dpm_http, "/actuator/prometheus");
    let prometheus: u64 = text
        .lines()
        .find(|l| {
            l.starts_with("svcid_authentications_refused_total{")
                && l.contains("reason=\"revoked_key\"")
                && l.contains("deployment=\"dpe-dev\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the refusal in /actuator/prometheus");
    let (_, overview) = get_json(dpm_http, "/console/api");
    let console_total: u64 = overview["sections"]["refusals"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "revoked_key" && r["deployment"] == "dpe-dev")
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert!(
        console_total >= prometheus,
        "{console_total} < {prometheus}"
    );
    let renders_after: u64 = eval_json(
        &tab,
        "JSON.stringify(Number(document.documentElement.dataset.renders))",
    )
    .as_u64()
    .unwrap();
    assert!(renders_after > renders_before, "the page refreshed itself");
    let navigations = eval_json(
        &tab,
        "JSON.stringify(performance.getEntriesByType('navigation').length)",
    );
    assert_eq!(navigations, 1, "the page was never reloaded");

    // 3. Nothing ran from the data: no alert, no img, the text is there as text.
    assert_eq!(eval_json(&tab, "JSON.stringify(window.__xss)"), 0);
    assert_eq!(
        eval_json(
            &tab,
            "JSON.stringify(document.querySelectorAll('img').length)"
        ),
        0
    );

    // 4. The DPE's console: its registration and the refusal of DPM's revoked key.
    tab.navigate_to(&format!("http://127.0.0.1:{dpe_http}/console"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let refusal = wait_page(&tab, "DPE's refusal of DPM's key", |tab| {
        refusal_rows(tab)
            .into_iter()
            .find(|cells| cells[0] == "revoked_key" && cells[1] == "dpm-dev")
    });
    assert_eq!(refusal[2], "127.0.0.1");
    let hidden = eval_json(
        &tab,
        "JSON.stringify([document.getElementById('engines-section').hidden, \
            document.getElementById('registration').textContent])",
    );
    assert_eq!(hidden[0], true, "DPE has no engines view");
    assert!(hidden[1].as_str().unwrap().contains(&engine_id), "{hidden}");
}

#[test]
fn console_answers_carry_a_strict_policy_and_no_secret() {
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    dpm.wait_for("the engine READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    for (daemon, home) in [(&dpm, &pair.dpm), (&dpe, &pair.dpe)] {
        let port = http_port(daemon);
        let secret_key = Pair::property(home, "ataccama.authentication.internal.jwt.generator.key");
        let mut everything = String::new();
        for path in [
            "/console",
            "/console/console.js",
            "/console/console.css",
            "/console/api",
            "/console/api/engines?limit=1000",
        ] {
            let (code, head, body) = http_get(port, path);
            if path.contains("engines") && daemon.home == pair.dpe {
                assert_eq!(code, 404, "DPE has no engines view");
                continue;
            }
            assert_eq!(code, 200, "{path}");
            assert!(
                head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
                "{head}"
            );
            assert!(head.contains("x-content-type-options: nosniff"), "{head}");
            everything.push_str(&body);
        }
        // No private key (whole, or its `d`), no token.
        assert!(!everything.contains(&secret_key));
        let keypair: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &secret_key)
                .unwrap(),
        )
        .unwrap();
        let d = keypair["d"].as_str().unwrap();
        assert!(
            !everything.contains(d),
            "the private scalar is on the console"
        );
        assert!(!everything.contains("Internal-jwt") && token_in(&everything).is_none());
        // The signing kid is there (public), so the check above is not vacuous.
        assert!(everything.contains(keypair["kid"].as_str().unwrap()));
    }
}

#[test]
fn the_console_switch_turns_it_off() {
    let pair = Pair::linked();
    Pair::append(&pair.dpm, "svcid.console.enabled=false");
    let dpm = pair.start_dpm(&[]);
    let port = http_port(&dpm);
    for path in ["/", "/console", "/console/api", "/console/api/engines"] {
        assert_eq!(http_get(port, path).0, 404, "{path}");
    }
    assert_eq!(http_get(port, "/actuator/health").0, 200);
    // Turning it back on needs a restart, and a reload says so.
    let mark = dpm.events().len();
    Pair::replace_atomically(
        &pair.dpm,
        "svcid.console.enabled=false",
        "svcid.console.enabled=true",
    );
    let restart = dpm.wait_for_after(mark, "restartRequired", |e| {
        e["eventId"] == "restartRequired"
    });
    assert!(
        restart["properties"]
            .as_str()
            .unwrap()
            .contains("svcid.console.enabled"),
        "{restart}"
    );
}
