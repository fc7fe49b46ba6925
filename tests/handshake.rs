//! End-to-end: the engine handshake between real `dpm` and `dpe` processes (docs/wire.md),
//! asserted from their JSON log files as ops staff would read them.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Pair, free_port, read_events};
use serde_json::Value;
use svcid_testkit::log::token_in;

const DPE_IDENTITY: &str = "ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])";

fn is_ready(engine_id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| {
        e["eventId"] == "setEngineStatus"
            && e["newStatus"] == "READY"
            && e["engine"].as_str().is_some_and(|s| s.contains(engine_id))
    }
}

/// The engine id DPE persisted (it writes the file at start-up, so wait for it).
fn engine_id(home: &std::path::Path) -> String {
    let path = home.join("data/engine-id");
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && text.ends_with('\n')
        {
            return text.trim().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn engine_registers_and_becomes_ready() {
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);

    let registered = dpm.wait_for("New engine registered.", |e| {
        e["eventId"] == "registerEngine"
    });
    let id = engine_id(&pair.dpe);
    assert_eq!(registered["engineId"], id.as_str());
    assert_eq!(registered["authenticatedUser"], DPE_IDENTITY);
    assert_eq!(registered["correlationId"], id.as_str());
    assert_eq!(registered["severity"], "INFO");
    assert_eq!(
        registered["thread_name"]
            .as_str()
            .map(|t| t.starts_with("grpc-default-executor-")),
        Some(true)
    );
    let message = registered["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "eventId=registerEngine engineId={id}, engine=EngineAddress(hostname=127.0.0.1, port="
        )),
        "{message}"
    );
    assert!(
        message.ends_with(", message=New engine registered."),
        "{message}"
    );
    assert!(
        registered["engineConstraints"]
            .as_str()
            .unwrap()
            .contains("spark: \"true\"")
    );

    let ready = dpm.wait_for("NEW -> READY", is_ready(&id));
    assert_eq!(ready["oldStatus"], "NEW");
    assert_eq!(ready["thread_name"], "scheduling-1");
    assert_eq!(ready["correlationId"], id.as_str());
    assert!(ready.get("authenticatedUser").is_none());
    assert_eq!(
        ready["message"],
        format!(
            "eventId=setEngineStatus engine=Engine(id={id}, address=EngineAddress(hostname=127.0.0.1, port={})), oldStatus=NEW, newStatus=READY",
            dpe.port()
        )
    );

    let dpe_registered = dpe.wait_for("Engine registered.", |e| e["eventId"] == "register");
    assert_eq!(
        dpe_registered["message"],
        format!(
            "eventId=register dpmUrl=127.0.0.1:{}, message=Engine registered.",
            dpm.port()
        )
    );
    assert_eq!(dpe_registered["thread_name"], "scheduling-1");

    for daemon in [&dpm, &dpe] {
        check_every_line(&daemon.events(), &[&pair.dpm, &pair.dpe]);
    }
}

/// Every line has the layout's required fields in order and nothing secret.
fn check_every_line(events: &[Value], homes: &[&std::path::Path]) {
    let secrets: Vec<String> = homes
        .iter()
        .map(|h| Pair::property(h, "ataccama.authentication.internal.jwt.generator.key"))
        .collect();
    assert!(!events.is_empty());
    for event in events {
        let keys: Vec<&str> = event
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            &keys[..7],
            [
                "@timestamp",
                "@version",
                "message",
                "logger_name",
                "thread_name",
                "severity",
                "level_value"
            ],
            "{event}"
        );
        assert_eq!(keys.last(), Some(&"application"), "{event}");
        let line = event.to_string();
        for secret in &secrets {
            assert!(
                !line.contains(secret.as_str()),
                "a generator key leaked into the log: {line}"
            );
        }
        assert!(
            !line.contains("\"d\":"),
            "a private JWK member leaked: {line}"
        );
        assert!(
            token_in(&line).is_none(),
            "something that looks like a token leaked: {line}"
        );
    }
}

#[test]
fn dpe_started_before_dpm_registers_once_dpm_is_up() {
    let pair = Pair::linked();
    let port = free_port();
    let dpe = pair.start_dpe(port, &[]);
    dpe.wait_for("Unable to register.", |e| {
        e["eventId"] == "register"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("Unable to register.")
    });
    let dpm = pair.start_dpm(&[&format!("--ataccama.server.grpc.port={port}")]);
    let id = engine_id(&pair.dpe);
    dpm.wait_for("NEW -> READY", is_ready(&id));
    dpe.wait_for("Engine registered.", |e| {
        e["message"]
            .as_str()
            .unwrap()
            .ends_with("message=Engine registered.")
    });
}

#[test]
fn revoked_engine_key_is_refused() {
    let pair = Pair::linked();
    Pair::replace(
        &pair.dpm,
        "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key.is-revoked=false",
        "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key.is-revoked=true",
    );
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    let refused = dpm.wait_for("authenticationFailed", |e| {
        e["eventId"] == "authenticationFailed"
    });
    assert_eq!(refused["severity"], "WARN");
    assert_eq!(refused["reason"], "revoked_key");
    assert_eq!(refused["deployment"], "dpe-dev");
    let unable = dpe.wait_for("Unable to register.", |e| {
        e["eventId"] == "register"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("Unable to register.")
    });
    assert_eq!(unable["code"], "Unauthenticated");
    assert!(
        !dpm.events()
            .iter()
            .any(|e| e["eventId"] == "registerEngine")
    );
}

#[test]
fn engine_comes_back_ready_after_dpm_restart() {
    let pair = Pair::linked();
    let mut dpm = pair.start_dpm(&[]);
    let port = dpm.port();
    let dpe = pair.start_dpe(port, &[]);
    let id = engine_id(&pair.dpe);
    dpm.wait_for("first READY", is_ready(&id));

    dpm.signal("KILL");
    dpm.wait_exit();
    let lines_before = dpm.events().len();
    let dpm = pair.start_dpm(&[&format!("--ataccama.server.grpc.port={port}")]);
    dpm.wait_for_after(lines_before, "re-registration", |e| {
        e["eventId"] == "registerEngine" && e["engineId"] == id.as_str()
    });
    dpm.wait_for_after(lines_before, "READY again", is_ready(&id));
    drop(dpe);
}

#[test]
fn killed_engine_is_marked_disconnected() {
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let mut dpe = pair.start_dpe(dpm.port(), &[]);
    let id = engine_id(&pair.dpe);
    dpm.wait_for("READY", is_ready(&id));
    dpe.signal("KILL");
    dpe.wait_exit();
    let gone = dpm.wait_for("engineDisconnected", |e| {
        e["eventId"] == "engineDisconnected"
    });
    assert_eq!(gone["oldStatus"], "READY");
    assert_eq!(gone["newStatus"], "DISCONNECTED");
    assert_eq!(gone["severity"], "WARN");
    assert!(gone["engine"].as_str().unwrap().contains(&id));
    assert!(!gone["reason"].as_str().unwrap().is_empty());
}

#[test]
fn sigterm_on_engine_unregisters_and_both_exit_cleanly() {
    let pair = Pair::linked();
    let mut dpm = pair.start_dpm(&[]);
    let mut dpe = pair.start_dpe(dpm.port(), &[]);
    let id = engine_id(&pair.dpe);
    dpm.wait_for("READY", is_ready(&id));

    dpe.signal("TERM");
    assert_eq!(dpe.wait_exit().code(), Some(0));
    let unregistered = dpm.wait_for("unregisterEngine", |e| e["eventId"] == "unregisterEngine");
    assert_eq!(unregistered["engineId"], id.as_str());
    assert_eq!(unregistered["authenticatedUser"], DPE_IDENTITY);
    let dpe_events = read_events(&pair.dpe.join("log/spring-boot-logger.json.log"));
    assert!(dpe_events.iter().any(|e| {
        e["eventId"] == "unregister"
            && e["message"]
                .as_str()
                .unwrap()
                .ends_with("message=Engine unregistered.")
    }));

    dpm.signal("TERM");
    assert_eq!(dpm.wait_exit().code(), Some(0));
    assert!(
        !dpm.events()
            .iter()
            .any(|e| e["eventId"] == "engineDisconnected"),
        "an unregistered engine is not checked"
    );
}

/// A DPM that stood still while a check was in flight (SIGSTOP; a swapped-out or starved process
/// alike) does not mark the engine that answered meanwhile DISCONNECTED: the check's deadline
/// passed while DPM was not running, so it checks again (`engineChecked` at DEBUG with how long
/// the first check took). The engine is paused first so that a check is surely in flight.
#[test]
fn dpm_paused_mid_check_keeps_an_answering_engine_ready() {
    use std::time::Duration;
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    let id = engine_id(&pair.dpe);
    dpm.wait_for("READY", is_ready(&id));
    let mark = dpm.events().len();
    // A READY engine is checked every 300 ms with a 1 s deadline: 700 ms into the engine's
    // pause a check waits for it (sent at most 300 ms in, and not yet past its deadline).
    dpe.signal("STOP");
    std::thread::sleep(Duration::from_millis(700));
    dpm.signal("STOP");
    // The engine answers into DPM's socket; DPM sleeps past the check's deadline.
    dpe.signal("CONT");
    std::thread::sleep(Duration::from_secs(2));
    dpm.signal("CONT");
    // Several checks later, the engine was never DISCONNECTED.
    std::thread::sleep(Duration::from_secs(2));
    let disconnected: Vec<Value> = dpm.events()[mark..]
        .iter()
        .filter(|e| e["eventId"] == "engineDisconnected")
        .cloned()
        .collect();
    assert!(disconnected.is_empty(), "{disconnected:?}");
    // The check in flight across the pause was made again.
    let again = dpm.wait_for_after(mark, "a check made again after the pause", |e| {
        let took = e["tookMs"].as_str().and_then(|ms| ms.parse::<u64>().ok());
        e["eventId"] == "engineChecked" && took.is_some_and(|ms| ms >= 1500)
    });
    assert_eq!(again["severity"], "DEBUG", "{again}");
}
