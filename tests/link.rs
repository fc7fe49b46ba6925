//! `svcid link` from two empty folders to a READY pair with no edit; homes given in the wrong
//! order refused with nothing changed, by `link`, `check` and the daemons; one side's key rotated
//! on a running pair; the last valid key not revoked without `--force`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Daemon, PATIENCE};

fn svcid(args: &[&str]) -> Output {
    Command::new(common::bin("svcid"))
        .args(args)
        .output()
        .expect("svcid runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

fn file(home: &Path) -> std::path::PathBuf {
    home.join("etc").join("application.properties")
}

/// Two empty folders linked with free ports chosen through the options; returns the folder guard,
/// the homes, DPM's gRPC port and what link printed.
fn linked_from_nothing() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    u16,
    String,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (dpm, dpe) = (dir.path().join("one"), dir.path().join("two"));
    let ports: Vec<String> = (0..4).map(|_| common::free_port().to_string()).collect();
    let out = svcid(&[
        "link",
        s(&dpm),
        s(&dpe),
        "--dpm-grpc-port",
        &ports[0],
        "--dpm-http-port",
        &ports[1],
        "--dpe-grpc-port",
        &ports[2],
        "--dpe-http-port",
        &ports[3],
    ]);
    assert!(
        out.status.success(),
        "svcid link failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let printed = text(&out.stdout);
    let dpm_port = ports[0].parse().expect("a port");
    (dir, dpm, dpe, dpm_port, printed)
}

#[test]
fn two_empty_folders_one_link_and_two_plain_starts_give_ready() {
    let (_dir, dpm_home, dpe_home, dpm_port, printed) = linked_from_nothing();
    for line in [
        format!("dpm: ataccama.server.grpc.port={dpm_port} (--dpm-grpc-port)"),
        "dpm: ataccama.server.grpc.host=127.0.0.1 (loopback)".to_owned(),
        "dpe: ataccama.server.grpc.host=127.0.0.1 (loopback)".to_owned(),
        "dpe: ataccama.client.connection.dpm.host=127.0.0.1 (dpm's address)".to_owned(),
        format!("dpe: ataccama.client.connection.dpm.grpc.port={dpm_port} (dpm's gRPC port)"),
        "dpe: ataccama.one.dpe.service.hostname=127.0.0.1".to_owned(),
    ] {
        assert!(printed.contains(&line), "{line:?} not in:\n{printed}");
    }
    // Only --home: no argument, no edit.
    let dpm = Daemon::start("dpm", &dpm_home, &[]);
    let started = dpm.wait_for("grpcServerStarted", |e| e["eventId"] == "grpcServerStarted");
    assert_eq!(started["host"], "127.0.0.1");
    assert_eq!(dpm.port(), dpm_port);
    let dpe = Daemon::start("dpe", &dpe_home, &[]);
    dpm.wait_for("New engine registered.", |e| {
        e["eventId"] == "registerEngine"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("New engine registered."))
    });
    let ready = dpm.wait_for("READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    assert_eq!(ready["oldStatus"], "NEW");
    let engine = dpe.wait_for("grpcServerStarted", |e| e["eventId"] == "grpcServerStarted");
    assert_eq!(engine["host"], "127.0.0.1");
}

/// Runs a daemon that is expected to exit at once; returns its exit code and standard error.
fn run_to_exit(name: &str, home: &Path) -> (Option<i32>, String) {
    let err = home.join("stderr.txt");
    let mut child = Command::new(common::bin(name))
        .arg("--home")
        .arg(home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("daemon starts");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} --home {} did not exit", home.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code(),
        std::fs::read_to_string(err).unwrap_or_default(),
    )
}

#[test]
fn swapped_homes_are_refused_with_files_unchanged() {
    let (_dir, dpm_home, dpe_home, _, _) = linked_from_nothing();
    let before = (
        std::fs::read(file(&dpm_home)).unwrap(),
        std::fs::read(file(&dpe_home)).unwrap(),
    );
    let out = svcid(&["link", s(&dpe_home), s(&dpm_home)]);
    assert_eq!(out.status.code(), Some(2));
    let error = text(&out.stderr);
    assert!(
        error.contains("the homes are in the wrong order")
            && error.contains("nothing was changed")
            && error.contains(&format!("svcid link {} {}", s(&dpm_home), s(&dpe_home))),
        "{error}"
    );
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert_eq!(std::fs::read(file(&dpm_home)).unwrap(), before.0);
    assert_eq!(std::fs::read(file(&dpe_home)).unwrap(), before.1);

    // check, told the homes the other way round, says which is which.
    let out = svcid(&[
        "check",
        "--module",
        "dpm",
        "--module",
        "dpe",
        s(&dpe_home),
        s(&dpm_home),
    ]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{report}");
    assert!(
        report.contains("looks like a dpe home, not a dpm one")
            && report.contains("looks like a dpm home, not a dpe one")
            && report.contains("wrong order"),
        "{report}"
    );

    // The daemons started on each other's homes refuse, naming the fix, and write no log.
    let (code, error) = run_to_exit("dpm", &dpe_home);
    assert_eq!(code, Some(78), "{error}");
    assert!(
        error.contains("looks like a dpe home, not a dpm one")
            && error.contains(&format!("dpe --home {}", dpe_home.display())),
        "{error}"
    );
    assert!(!dpe_home.join("log").exists());
    assert_eq!(std::fs::read(file(&dpe_home)).unwrap(), before.1);
    let (code, error) = run_to_exit("dpe", &dpm_home);
    assert_eq!(code, Some(78), "{error}");
    assert!(
        error.contains("looks like a dpm home, not a dpe one"),
        "{error}"
    );
    assert!(!dpm_home.join("data").join("engine-id").exists());
}

#[test]
fn rotating_dpm_alone_on_a_running_pair_keeps_the_engine_ready() {
    let (_dir, dpm_home, dpe_home, _, _) = linked_from_nothing();
    let dpm = Daemon::start("dpm", &dpm_home, &[]);
    dpm.wait_for("grpcServerStarted", |e| e["eventId"] == "grpcServerStarted");
    let dpe = Daemon::start("dpe", &dpe_home, &[]);
    dpm.wait_for("READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    let old_kid = dpm
        .events()
        .iter()
        .find(|e| e["eventId"] == "grpcServerStarted")
        .and_then(|e| e["kid"].as_str().map(str::to_owned))
        .expect("kid in grpcServerStarted");

    let out = svcid(&[
        "link",
        s(&dpm_home),
        s(&dpe_home),
        "--rotate",
        "dpm",
        "--grace",
        "2",
    ]);
    let printed = text(&out.stdout);
    assert!(out.status.success(), "{printed}{}", text(&out.stderr));
    assert!(
        printed.contains("dpe: dpm-dev/key-2 trusts dpm's key"),
        "{printed}"
    );
    assert!(!printed.contains("dpe: generated"), "{printed}");
    let changed = dpm.wait_for("generatorKeyChanged", |e| {
        e["eventId"] == "generatorKeyChanged"
    });
    assert_eq!(changed["oldKid"], old_kid.as_str());
    let new_kid = printed
        .lines()
        .find_map(|l| l.strip_prefix("dpm: generated a new key, kid "))
        .expect("the new kid printed");
    assert_eq!(changed["newKid"], new_kid);
    assert_ne!(new_kid, old_kid);
    // DPM now signs with the new key (its /actuator/info says so), and its status checks of the
    // engine, one a second, go on being accepted: nothing refused, the engine stays READY.
    let (code, info) = common::get_json(common::http_port(&dpm), "/actuator/info");
    assert_eq!(code, 200);
    assert_eq!(info["keys"]["signing"]["kid"], new_kid, "{info}");
    std::thread::sleep(Duration::from_secs(3));
    for daemon in [&dpm, &dpe] {
        let events = daemon.events();
        assert!(
            !events
                .iter()
                .any(|e| e["eventId"] == "authenticationFailed"),
            "a call was refused during rotation"
        );
        assert!(
            !events.iter().any(|e| e["eventId"] == "engineDisconnected"
                || (e["eventId"] == "setEngineStatus" && e["newStatus"] != "READY")),
            "the engine left READY during rotation"
        );
    }
    // Now the old key can go without --force (the new one is beside it).
    let out = svcid(&["revoke", s(&dpe_home), "dpm-dev", "key"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // And the last one cannot, file unchanged.
    let before = std::fs::read(file(&dpe_home)).unwrap();
    let out = svcid(&["revoke", s(&dpe_home), "dpm-dev", "key-2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the engine would refuse every call from dpm-dev"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(file(&dpe_home)).unwrap(), before);
}
