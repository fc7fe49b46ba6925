//! End-to-end: what a person sees when starting a daemon — a configuration error reported before
//! anything is bound, a port already taken. (`--help` and `--version` are tested in crates/dpm and
//! crates/dpe, whose integration tests also make cargo build the binaries started here.)

#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;

use common::{Pair, bin};

#[test]
fn configuration_errors_are_listed_one_per_line_before_binding() {
    let pair = Pair::linked();
    Pair::append(&pair.dpm, "ataccama.server.grpc.port=not-a-port");
    Pair::append(
        &pair.dpm,
        "ataccama.one.platform.deployments.x-dev.security.jwt-keys.key.fingerprint=abc",
    );
    let out = Command::new(bin("dpm"))
        .arg("--home")
        .arg(&pair.dpm)
        .arg("--ataccama.one.dpm.registry.check-connected-interval=0s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert!(
        errors.len() >= 4,
        "every problem reported at once:\n{stderr}"
    );
    assert!(
        errors.iter().any(|l| l.contains("application.properties:")
            && l.contains("ataccama.server.grpc.port")
            && l.contains("fix:")),
        "file:line, property and fix:\n{stderr}"
    );
    assert!(
        errors.iter().any(|l| l.contains("x-dev.module")),
        "missing module named:\n{stderr}"
    );
    assert!(
        errors.iter().any(|l| l.contains("command-line argument")),
        "the argument named as the source:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !pair.dpm.join("log").exists(),
        "nothing written before the configuration is valid"
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let pair = Pair::linked();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(bin("dpm"))
        .arg("--home")
        .arg(&pair.dpm)
        .arg(format!("--ataccama.server.grpc.port={port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "EX_UNAVAILABLE");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot bind gRPC port 127.0.0.1:{port} (ataccama.server.grpc.port)"
        )),
        "{stderr}"
    );
}

/// The typos of one home: `(line as written, property, the name check must suggest)`.
const TYPOS: &[(&str, &str, &str)] = &[
    ("server.prot=38031", "server.prot", "server.port"),
    (
        "spring.datasource.usrname=registry",
        "spring.datasource.usrname",
        "spring.datasource.username",
    ),
    (
        "svcid.console.enabeld=true",
        "svcid.console.enabeld",
        "svcid.console.enabled",
    ),
    (
        "mp.jwt.verify.publickey.locaton=publicKey.pem",
        "mp.jwt.verify.publickey.locaton",
        "mp.jwt.verify.publickey.location",
    ),
    (
        "logging.file.pth=log",
        "logging.file.pth",
        "logging.file.path",
    ),
    (
        "ataccama.server.grpc.max-conections=10",
        "ataccama.server.grpc.max-conections",
        "ataccama.server.grpc.max-connections",
    ),
];

/// Appends `lines` to a home's file; returns the 1-based line number of each.
fn append_lines(home: &std::path::Path, lines: &[&str]) -> Vec<usize> {
    let file = home.join("etc/application.properties");
    let before = std::fs::read_to_string(&file).unwrap();
    let first = before.lines().count() + usize::from(!before.ends_with('\n')) + 1;
    for line in lines {
        Pair::append(home, line);
    }
    (first..first + lines.len()).collect()
}

#[test]
fn typos_in_every_namespace_svcid_owns_are_named_by_check_and_by_the_daemon() {
    let pair = Pair::linked();
    // Other applications' settings sharing the file stay silent.
    let silent = [
        "spring.application.name=dpm",
        "management.endpoints.web.exposure.include=health",
        "logging.level.com.acme.Anything=debug",
    ];
    let typo_lines: Vec<&str> = TYPOS.iter().map(|(line, _, _)| *line).collect();
    append_lines(&pair.dpm, &silent);
    let numbers = append_lines(&pair.dpm, &typo_lines);

    let out = Command::new(bin("svcid"))
        .arg("check")
        .arg(&pair.dpm)
        .arg(&pair.dpe)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "warnings only:\n{stdout}");
    for ((_, property, guess), line) in TYPOS.iter().zip(&numbers) {
        let found = stdout
            .lines()
            .find(|l| l.contains(&format!(": warning: {property}: ")))
            .unwrap_or_else(|| panic!("{property} not named:\n{stdout}"));
        assert!(
            found.contains(&format!("application.properties:{line}: ")),
            "file:line of {property}: {found}"
        );
        assert!(
            found.contains(&format!("did you mean {guess}?")),
            "suggestion for {property}: {found}"
        );
    }
    for line in silent {
        let name = line.split('=').next().unwrap();
        assert!(!stdout.contains(name), "{name} named:\n{stdout}");
    }

    // The daemon logs the same findings at start, as it logs any unknown ataccama.* name.
    let dpm = pair.start_dpm(&[]);
    for (_, property, guess) in TYPOS {
        let warning = dpm.wait_for(property, |e| {
            e["eventId"] == "configurationWarning"
                && e["problem"]
                    .as_str()
                    .is_some_and(|p| p.contains(&format!(": warning: {property}: ")))
        });
        assert_eq!(warning["severity"], "WARN", "{warning}");
        assert_eq!(warning["code"], "config.unknown-property", "{warning}");
        let problem = warning["problem"].as_str().unwrap();
        assert!(problem.contains("application.properties:"), "{problem}");
        assert!(
            problem.contains(&format!("did you mean {guess}?")),
            "{problem}"
        );
    }
    // The typo is not bound: the HTTP port is the one server.port=0 chose.
    let started = dpm.wait_for("httpServerStarted", |e| e["eventId"] == "httpServerStarted");
    assert_ne!(started["port"], 38031, "{started}");

    // And at a reload, for a typo saved while it runs.
    let mark = dpm.events().len();
    let [line] = append_lines(&pair.dpm, &["server.idle-timout=5s"])[..] else {
        unreachable!()
    };
    let warning = dpm.wait_for_after(mark, "the reload's warning", |e| {
        e["eventId"] == "configurationWarning"
            && e["problem"]
                .as_str()
                .is_some_and(|p| p.contains("server.idle-timout"))
    });
    let problem = warning["problem"].as_str().unwrap();
    assert!(
        problem.contains(&format!("application.properties:{line}: "))
            && problem.contains("did you mean server.idle-timeout?"),
        "{problem}"
    );
}

#[test]
fn an_engine_stopped_before_it_ever_registered_has_nothing_to_unregister() {
    let pair = Pair::linked();
    // Nothing listens there: every registration fails.
    let nobody = common::free_port();
    let mut dpe = pair.start_dpe(nobody, &[]);
    dpe.wait_for("a failed registration", |e| {
        e["eventId"] == "register"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("Unable to register."))
    });
    dpe.signal("TERM");
    assert_eq!(dpe.wait_exit().code(), Some(0));
    let events = dpe.events();
    let unregister = events
        .iter()
        .find(|e| e["eventId"] == "unregister")
        .unwrap_or_else(|| panic!("no unregister line: {events:?}"));
    assert_eq!(unregister["severity"], "INFO", "{unregister}");
    assert!(
        unregister["message"]
            .as_str()
            .unwrap()
            .ends_with("Engine was never registered with DPM; nothing to unregister."),
        "{unregister}"
    );
    assert!(
        !events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("Unable to unregister."))),
        "{events:?}"
    );
}
