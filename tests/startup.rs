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
        stderr.contains(&format!("cannot bind gRPC port 127.0.0.1:{port}")),
        "{stderr}"
    );
}
