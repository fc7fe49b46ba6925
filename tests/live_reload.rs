//! End-to-end: running daemons pick up changes to their properties file (docs/configuration.md,
//! live configuration changes), and a broken file changes nothing.

#![allow(clippy::unwrap_used)]

use crate::common;

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
    assert_eq!(problem["code"], "deployment.content-invalid", "{problem}");

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
    assert!(
        !dpm.events()
            .iter()
            .any(|e| e["eventId"] == "configurationReloaded" && e["clearedFailure"] == "true"),
        "nothing cleared yet"
    );

    // Saving the fixed file is confirmed: the log no longer ends on the ERROR.
    let mark = dpm.events().len();
    Pair::replace(
        &pair.dpm,
        "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key.content={kty\"",
        content,
    );
    let reloaded = dpm.wait_for_after(mark, "configurationReloaded", |e| {
        e["eventId"] == "configurationReloaded"
    });
    assert_eq!(reloaded["severity"], "INFO", "{reloaded}");
    assert_eq!(reloaded["clearedFailure"], "true", "{reloaded}");
    assert_eq!(reloaded["trigger"], "file change", "{reloaded}");
    assert!(
        reloaded["message"]
            .as_str()
            .unwrap()
            .contains("the previous reload's failure is cleared"),
        "{reloaded}"
    );
    // The next applied reload has nothing to clear.
    let mark = dpm.events().len();
    dpm.signal("HUP");
    let again = dpm.wait_for_after(mark, "configurationReloaded after SIGHUP", |e| {
        e["eventId"] == "configurationReloaded"
    });
    assert_eq!(again["clearedFailure"], "false", "{again}");
    assert_eq!(again["trigger"], "SIGHUP", "{again}");
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

fn svcid(args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(common::bin("svcid"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "svcid {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn rotating_and_revoking_keys_on_a_running_pair_keeps_the_engine_ready() {
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    let id = wait_engine_id(&pair, &dpm);
    dpm.wait_for("READY", status_event(&id, "NEW", "READY"));

    // Verifiers learn the new keys first, then each side switches its signing key.
    let rotated = svcid(&[
        "link".as_ref(),
        pair.dpm.as_os_str(),
        pair.dpe.as_os_str(),
        "--rotate".as_ref(),
        "--grace".as_ref(),
        "2".as_ref(),
    ]);
    assert!(rotated.contains("key-2"), "{rotated}");
    for daemon in [&dpm, &dpe] {
        daemon.wait_for("generatorKeyChanged", |e| {
            e["eventId"] == "generatorKeyChanged"
        });
    }
    // Both sides now sign with the new keys, so the old ones can go while the pair runs.
    svcid(&[
        "revoke".as_ref(),
        pair.dpm.as_os_str(),
        "dpe-dev".as_ref(),
        "key".as_ref(),
    ]);
    svcid(&[
        "revoke".as_ref(),
        pair.dpe.as_os_str(),
        "dpm-dev".as_ref(),
        "key".as_ref(),
    ]);
    for (daemon, old) in [(&dpm, "dpe-dev/key "), (&dpe, "dpm-dev/key ")] {
        daemon.wait_for("the old key revoked", |e| {
            e["eventId"] == "deploymentsReloaded"
                && e["revoked"].as_str().is_some_and(|r| r.starts_with(old))
        });
    }
    // A keep-alive and several status checks after the revocations, all accepted.
    let mark = dpm.events().len();
    dpm.wait_for_after(mark, "a keep-alive after the revocations", |e| {
        e["eventId"] == "registerEngine" && e["engineId"] == id.as_str()
    });
    for daemon in [&dpm, &dpe] {
        let events = daemon.events();
        assert!(
            !events
                .iter()
                .any(|e| e["eventId"] == "authenticationFailed"),
            "a call was refused during rotation"
        );
        assert!(
            !events.iter().any(|e| e["eventId"] == "engineDisconnected"),
            "the engine left READY during rotation"
        );
    }
}

#[test]
fn link_on_two_empty_homes_then_start_gives_ready() {
    let dir = tempfile::tempdir().unwrap();
    let (dpm_home, dpe_home) = (dir.path().join("dpm"), dir.path().join("dpe"));
    svcid(&["link".as_ref(), dpm_home.as_os_str(), dpe_home.as_os_str()]);
    let quiet = "--ataccama.logging.plainTextConsoleAppender=false";
    // Free ports for the actuator too: the defaults (8031, 8034) may be taken by another test.
    let http = "--server.port=0";
    let dpm = common::Daemon::start(
        "dpm",
        &dpm_home,
        &[
            http,
            "--ataccama.server.grpc.port=0",
            "--ataccama.server.grpc.host=127.0.0.1",
            quiet,
        ],
    );
    dpm.wait_for("grpcServerStarted", |e| e["eventId"] == "grpcServerStarted");
    let dpm_port = format!("--ataccama.client.connection.dpm.grpc.port={}", dpm.port());
    let _dpe = common::Daemon::start(
        "dpe",
        &dpe_home,
        &[
            http,
            "--ataccama.server.grpc.port=0",
            "--ataccama.server.grpc.host=127.0.0.1",
            "--ataccama.one.dpe.service.hostname=127.0.0.1",
            &dpm_port,
            quiet,
        ],
    );
    let ready = dpm.wait_for("READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    assert_eq!(ready["oldStatus"], "NEW");
}
