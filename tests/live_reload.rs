//! End-to-end: running daemons pick up changes to their properties file (SPEC section 2.1: "the
//! deployment registry may change at run time"), and a broken file changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use common::Pair;
use serde_json::Value;

const DPM_KEY_IN_DPE: &str =
    "ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.is-revoked";

fn status_event<'a>(
    engine_id: &'a str,
    old: &'a str,
    new: &'a str,
) -> impl Fn(&Value) -> bool + 'a {
    move |e| {
        (e["eventId"] == "setEngineStatus" || e["eventId"] == "engineDisconnected")
            && e["oldStatus"] == old
            && e["newStatus"] == new
            && e["engine"].as_str().is_some_and(|s| s.contains(engine_id))
    }
}

fn wait_engine_id(pair: &Pair, dpm: &common::Daemon) -> String {
    let registered = dpm.wait_for("registerEngine", |e| e["eventId"] == "registerEngine");
    let id = registered["engineId"].as_str().unwrap().to_owned();
    assert_eq!(
        std::fs::read_to_string(pair.dpe.join("data/engine-id"))
            .unwrap()
            .trim(),
        id
    );
    id
}

#[test]
fn revoking_and_reinstating_dpm_key_on_a_running_engine() {
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    let id = wait_engine_id(&pair, &dpm);
    dpm.wait_for("READY", status_event(&id, "NEW", "READY"));

    let mark = dpm.events().len();
    Pair::replace(
        &pair.dpe,
        &format!("{DPM_KEY_IN_DPE}=false"),
        &format!("{DPM_KEY_IN_DPE}=true"),
    );
    let reloaded = dpe.wait_for("deploymentsReloaded", |e| {
        e["eventId"] == "deploymentsReloaded"
    });
    assert!(
        reloaded["revoked"]
            .as_str()
            .unwrap()
            .contains("dpm-dev/key"),
        "{reloaded}"
    );
    let gone = dpm.wait_for_after(
        mark,
        "DISCONNECTED",
        status_event(&id, "READY", "DISCONNECTED"),
    );
    assert!(
        gone["reason"].as_str().unwrap().contains("Unauthenticated"),
        "{gone}"
    );
    dpe.wait_for("refusal of DPM's revoked key", |e| {
        e["eventId"] == "authenticationFailed"
            && e["reason"] == "revoked_key"
            && e["deployment"] == "dpm-dev"
    });

    let mark = dpm.events().len();
    Pair::replace(
        &pair.dpe,
        &format!("{DPM_KEY_IN_DPE}=true"),
        &format!("{DPM_KEY_IN_DPE}=false"),
    );
    dpm.wait_for_after(
        mark,
        "READY again",
        status_event(&id, "DISCONNECTED", "READY"),
    );
}

#[test]
fn a_broken_rewrite_changes_nothing_but_an_error() {
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    let id = wait_engine_id(&pair, &dpm);
    dpm.wait_for("READY", status_event(&id, "NEW", "READY"));

    // The manual's slip: quotes missing before kty, on the key DPM verifies DPE with.
    let content =
        "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key.content={\"kty\"";
    Pair::replace(
        &pair.dpm,
        content,
        "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key.content={kty\"",
    );
    let failed = dpm.wait_for("configurationReloadFailed", |e| {
        e["eventId"] == "configurationReloadFailed"
    });
    assert_eq!(failed["severity"], "ERROR");
    let problem = dpm.wait_for("configurationProblem", |e| {
        e["eventId"] == "configurationProblem"
    });
    let text = problem["problem"].as_str().unwrap();
    assert!(
        text.contains("application.properties:"),
        "names the file and line: {text}"
    );
    assert!(
        text.contains("dpe-dev.security.jwt-keys.key.content"),
        "names the property: {text}"
    );

    // DPM still trusts the engine's key: the engine's keep-alives keep being accepted.
    let mark = dpm.events().len();
    dpm.wait_for_after(
        mark,
        "a keep-alive accepted after the broken rewrite",
        |e| e["eventId"] == "registerEngine" && e["engineId"] == id.as_str(),
    );
    assert!(
        !dpm.events()
            .iter()
            .any(|e| e["eventId"] == "engineDisconnected")
    );
    assert!(!dpe.events().iter().any(|e| {
        e["message"]
            .as_str()
            .unwrap()
            .contains("Unable to register.")
    }));
}

#[test]
fn sighup_rereads_the_file() {
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    dpm.signal("HUP");
    let reloaded = dpm.wait_for("deploymentsReloaded", |e| {
        e["eventId"] == "deploymentsReloaded"
    });
    assert_eq!(reloaded["trigger"], "SIGHUP");
    // A restart-only property changed on disk is reported, not applied.
    Pair::replace(
        &pair.dpm,
        "check-connected-interval=300ms",
        "check-connected-interval=400ms",
    );
    let restart = dpm.wait_for("restartRequired", |e| e["eventId"] == "restartRequired");
    assert!(
        restart["properties"]
            .as_str()
            .unwrap()
            .contains("ataccama.one.dpm.registry")
    );
}
