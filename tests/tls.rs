//! End-to-end: TLS and mutual TLS between real `dpm` and `dpe` processes (issue 8), with a CA and
//! certificates generated at test time into the module homes, asserted from the JSON logs.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Daemon, Pair};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use serde_json::Value;

/// A certificate authority that issues module certificates.
struct Ca {
    key: PKey<Private>,
    cert: X509,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn builder(cn: &str, key: &PKey<Private>, days: u32) -> X509Builder {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(days).unwrap())
        .unwrap();
    b
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let key = key();
        let mut b = builder(cn, &key, 825);
        b.set_issuer_name(&X509NameBuilder::new().unwrap().build())
            .unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        b.set_issuer_name(&name.build()).unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Ca {
            cert: b.build(),
            key,
        }
    }

    /// Writes `<home>/etc/tls/ca.pem` and a module certificate and key for `localhost` and
    /// `127.0.0.1` (`module.pem`, `module.key`), usable as server and as client certificate.
    fn issue(&self, home: &Path, cn: &str) {
        self.issue_for_days(home, cn, 365);
    }

    /// Like [`Ca::issue`], valid for `days` from now.
    fn issue_for_days(&self, home: &Path, cn: &str, days: u32) {
        let key = key();
        let mut b = builder(cn, &key, days);
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(Some(&self.cert), None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        let dir = home.join("etc/tls");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("module.pem"), b.build().to_pem().unwrap()).unwrap();
        std::fs::write(
            dir.join("module.key"),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("ca.pem"), self.cert.to_pem().unwrap()).unwrap();
    }
}

/// Server TLS on a home's gRPC port, with `mtls` client verification against its `ca.pem`.
fn serve_tls(home: &Path, mtls: &str) {
    for line in [
        "ataccama.server.grpc.tls.enabled=true",
        "ataccama.server.grpc.tls.cert-chain=etc/tls/module.pem",
        "ataccama.server.grpc.tls.private-key=etc/tls/module.key",
        "ataccama.server.grpc.tls.trust-store=etc/tls/ca.pem",
        &format!("ataccama.server.grpc.tls.mtls={mtls}"),
    ] {
        Pair::append(home, line);
    }
}

/// Client TLS under `prefix` trusting the home's `ca.pem`, offering its certificate when `mtls`.
fn call_tls(home: &Path, prefix: &str, mtls: bool) {
    Pair::append(home, &format!("{prefix}.enabled=true"));
    Pair::append(home, &format!("{prefix}.trust-store=etc/tls/ca.pem"));
    if mtls {
        Pair::append(home, &format!("{prefix}.cert-chain=etc/tls/module.pem"));
        Pair::append(home, &format!("{prefix}.private-key=etc/tls/module.key"));
    }
}

const DPE_CLIENT: &str = "ataccama.client.connection.dpm.grpc.tls";
const DPM_CLIENT: &str = "ataccama.one.dpm.registry.grpc-client.tls";

/// Both homes with certificates from one CA, servers on TLS, clients trusting the CA.
fn tls_pair(mtls: bool) -> Pair {
    let pair = Pair::linked();
    let ca = Ca::new("svcid test CA");
    ca.issue(&pair.dpm, "dpm");
    ca.issue(&pair.dpe, "dpe");
    let mode = if mtls { "REQUIRED" } else { "NONE" };
    serve_tls(&pair.dpm, mode);
    serve_tls(&pair.dpe, mode);
    call_tls(&pair.dpe, DPE_CLIENT, mtls);
    call_tls(&pair.dpm, DPM_CLIENT, mtls);
    pair
}

fn ready(dpm: &Daemon) -> Value {
    dpm.wait_for("NEW -> READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    })
}

fn unable_to_register(dpe: &Daemon) -> Value {
    dpe.wait_for("Unable to register.", |e| {
        e["eventId"] == "register"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("Unable to register."))
    })
}

#[test]
fn handshake_reaches_ready_over_tls() {
    let pair = tls_pair(false);
    let dpm = pair.start_dpm(&[]);
    let served = dpm.wait_for("grpcTls", |e| e["eventId"] == "grpcTls");
    assert_eq!(served["subject"], "CN=dpm");
    assert_eq!(served["clientAuth"], "None");
    let dpe = pair.start_dpe(dpm.port(), &[]);
    dpe.wait_for("grpcTls", |e| e["eventId"] == "grpcTls");
    ready(&dpm);
    dpe.wait_for("Engine registered.", |e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("message=Engine registered."))
    });
    // A year-long certificate is not about to expire.
    assert!(
        !dpm.events()
            .iter()
            .any(|e| e["eventId"] == "certificateExpiring")
    );
}

#[test]
fn handshake_reaches_ready_over_mutual_tls() {
    let pair = tls_pair(true);
    let dpm = pair.start_dpm(&[]);
    let served = dpm.wait_for("grpcTls", |e| e["eventId"] == "grpcTls");
    assert_eq!(served["clientAuth"], "Required");
    let dpe = pair.start_dpe(dpm.port(), &[]);
    ready(&dpm);
    dpe.wait_for("Engine registered.", |e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("message=Engine registered."))
    });
}

#[test]
fn a_client_without_certificate_is_refused_by_a_port_requiring_one() {
    let pair = tls_pair(true);
    // DPE still trusts DPM but offers no client certificate.
    Pair::replace(
        &pair.dpe,
        &format!("{DPE_CLIENT}.cert-chain=etc/tls/module.pem\n"),
        "",
    );
    Pair::replace(
        &pair.dpe,
        &format!("{DPE_CLIENT}.private-key=etc/tls/module.key\n"),
        "",
    );
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    let unable = unable_to_register(&dpe);
    // The code depends on when the server drops the connection (during or right after the
    // handshake); the reason always names the transport.
    assert!(
        unable["reason"]
            .as_str()
            .is_some_and(|r| r.contains("transport error")),
        "{unable}"
    );
    assert!(
        !dpm.events()
            .iter()
            .any(|e| e["eventId"] == "registerEngine")
    );
}

#[test]
fn a_dpe_that_does_not_trust_dpm_says_why_it_cannot_register() {
    let pair = tls_pair(false);
    // DPE trusts a different CA than the one that issued DPM's certificate.
    let stranger = Ca::new("some other CA");
    std::fs::write(
        pair.dpe.join("etc/tls/ca.pem"),
        stranger.cert.to_pem().unwrap(),
    )
    .unwrap();
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    let unable = unable_to_register(&dpe);
    assert_eq!(unable["code"], "Unavailable", "{unable}");
    let reason = unable["reason"].as_str().unwrap();
    assert!(
        reason.contains("certificate") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
}

#[test]
fn a_plain_text_client_is_refused_by_a_tls_port() {
    let pair = tls_pair(false);
    Pair::replace(&pair.dpe, &format!("{DPE_CLIENT}.enabled=true"), "");
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    let unable = unable_to_register(&dpe);
    // The code depends on when the server drops the connection (during or right after the
    // handshake); the reason always names the transport.
    assert!(
        unable["reason"]
            .as_str()
            .is_some_and(|r| r.contains("transport error")),
        "{unable}"
    );
    assert!(
        !dpm.events()
            .iter()
            .any(|e| e["eventId"] == "registerEngine")
    );
}

#[test]
fn a_broken_tls_configuration_stops_the_daemon_before_it_binds() {
    let pair = tls_pair(false);
    Pair::replace(&pair.dpm, "tls/module.key", "tls/missing.key");
    let mut dpm = Daemon::start("dpm", &pair.dpm, &[]);
    let status = dpm.wait_exit();
    assert_eq!(status.code(), Some(78));
    // `svcid check` reads the same files and says the same.
    let out = std::process::Command::new(common::bin("svcid"))
        .arg("check")
        .arg(&pair.dpm)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("ataccama.server.grpc.tls.private-key") && printed.contains("cannot read"),
        "{printed}"
    );
}

#[test]
fn a_certificate_replaced_on_disk_is_served_without_a_restart() {
    let pair = tls_pair(false);
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    ready(&dpm);
    let before = dpm.events().len();
    // A key that does not match the certificate: refused, the port keeps its identity.
    std::fs::write(
        pair.dpm.join("etc/tls/module.key"),
        key().private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    dpm.wait_for_after(before, "configurationProblem", |e| {
        e["eventId"] == "configurationProblem"
            && e["problem"]
                .as_str()
                .is_some_and(|p| p.contains("does not belong"))
    });
    // A certificate from another CA: DPM, still running, serves it to new connections.
    let before = dpm.events().len();
    let new_ca = Ca::new("a new CA");
    new_ca.issue(&pair.dpm, "dpm-renewed");
    let reloaded = dpm.wait_for_after(before, "certificateReloaded", |e| {
        e["eventId"] == "certificateReloaded" && e["severity"] == "INFO"
    });
    assert_eq!(reloaded["subject"], "CN=dpm-renewed");
    // The server's TLS applied live; only DPM's client trust store (the engine checks, the same
    // ca.pem here) waits for a restart.
    for e in dpm.events()[before..]
        .iter()
        .filter(|e| e["eventId"] == "restartRequired")
    {
        assert_eq!(e["properties"], "ataccama.one.dpm.registry.*", "{e}");
    }
    // An engine that trusts only the new CA registers with the same DPM process.
    let seen = dpe.events().len();
    drop(dpe);
    std::fs::write(
        pair.dpe.join("etc/tls/ca.pem"),
        new_ca.cert.to_pem().unwrap(),
    )
    .unwrap();
    let dpe = pair.start_dpe(dpm.port(), &[]);
    dpe.wait_for_after(seen, "registered with the renewed certificate", |e| {
        e["eventId"] == "register"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("registered."))
    });
}

#[test]
fn a_refused_token_over_tls_still_names_the_peer_address() {
    let pair = tls_pair(true);
    Pair::replace(
        &pair.dpm,
        "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key.is-revoked=false",
        "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key.is-revoked=true",
    );
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe(dpm.port(), &[]);
    // Mutual TLS lets the engine's machine in; its token is still checked.
    let refused = dpm.wait_for("authenticationFailed", |e| {
        e["eventId"] == "authenticationFailed"
    });
    assert_eq!(refused["reason"], "revoked_key");
    assert!(
        refused["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{refused}"
    );
    let unable = unable_to_register(&dpe);
    assert_eq!(unable["code"], "Unauthenticated");
}

#[test]
fn optional_client_certificates_admit_engines_without_one() {
    let pair = tls_pair(false);
    Pair::replace(
        &pair.dpm,
        "ataccama.server.grpc.tls.mtls=NONE",
        "ataccama.server.grpc.tls.mtls=OPTIONAL",
    );
    let dpm = pair.start_dpm(&[]);
    let served = dpm.wait_for("grpcTls", |e| e["eventId"] == "grpcTls");
    assert_eq!(served["clientAuth"], "Optional");
    let _dpe = pair.start_dpe(dpm.port(), &[]);
    ready(&dpm);
}

#[test]
fn a_serving_certificate_close_to_expiry_is_a_warning_at_start() {
    let pair = tls_pair(false);
    Ca::new("short-lived CA").issue_for_days(&pair.dpm, "dpm", 10);
    let dpm = pair.start_dpm(&[]);
    let warning = dpm.wait_for("certificateExpiring", |e| {
        e["eventId"] == "certificateExpiring"
    });
    assert_eq!(warning["severity"], "WARN");
    assert_eq!(warning["subject"], "CN=dpm");
    let days: i64 = warning["daysLeft"].as_str().unwrap().parse().unwrap();
    assert!((9..=10).contains(&days), "{warning}");
}

/// `svcid engines` with the DPE home's key against the running DPM, with `extra` arguments.
fn svcid_engines(dpm: &Daemon, dpe_home: &Path, extra: &[&str]) -> std::process::Output {
    svcid_engines_command(dpm, dpe_home, extra)
        .output()
        .unwrap()
}

/// The command of [`svcid_engines`], to run with changes.
fn svcid_engines_command(dpm: &Daemon, dpe_home: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(common::bin("svcid"));
    command
        .args(["engines", "--json", "--dpm"])
        .arg(format!("127.0.0.1:{}", dpm.port()))
        .arg("--home")
        .arg(dpe_home)
        .args(extra);
    command
}

/// The engine ids `svcid engines --json` printed, or its stderr as the failure.
fn listed_engines(output: &std::process::Output) -> Result<Vec<String>, String> {
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    Ok(document["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["engineId"].as_str().unwrap().to_owned())
        .collect())
}

#[test]
fn svcid_engines_lists_the_engines_of_a_dpm_serving_tls_and_mutual_tls() {
    for mtls in [false, true] {
        let pair = tls_pair(mtls);
        let dpm = pair.start_dpm(&[]);
        let _dpe = pair.start_dpe(dpm.port(), &[]);
        let engine_id = ready(&dpm)["correlationId"].as_str().unwrap().to_owned();
        let tls = pair.dpe.join("etc/tls");
        let (ca, cert, key) = (
            tls.join("ca.pem"),
            tls.join("module.pem"),
            tls.join("module.key"),
        );

        // The DPE home lends its own TLS settings for DPM.
        let own = svcid_engines(&dpm, &pair.dpe, &[]);
        assert_eq!(
            listed_engines(&own),
            Ok(vec![engine_id.clone()]),
            "mtls={mtls}"
        );

        // The flags: the trust store (and, for mutual TLS, the client certificate).
        let mut flags = vec!["--trust-store", ca.to_str().unwrap()];
        if mtls {
            flags.extend(["--cert-chain", cert.to_str().unwrap()]);
            flags.extend(["--private-key", key.to_str().unwrap()]);
        }
        let flagged = svcid_engines(&dpm, &pair.dpe, &flags);
        assert_eq!(
            listed_engines(&flagged),
            Ok(vec![engine_id.clone()]),
            "mtls={mtls}"
        );

        // A trust store that does not hold DPM's CA: the failure names the certificate.
        let other = tempfile::tempdir().unwrap();
        Ca::new("another CA").issue(other.path(), "x");
        let other_ca = other.path().join("etc/tls/ca.pem");
        let mut flags = vec!["--trust-store", other_ca.to_str().unwrap()];
        if mtls {
            flags.extend(["--cert-chain", cert.to_str().unwrap()]);
            flags.extend(["--private-key", key.to_str().unwrap()]);
        }
        let untrusted = listed_engines(&svcid_engines(&dpm, &pair.dpe, &flags)).unwrap_err();
        assert!(
            untrusted.to_lowercase().contains("certificate"),
            "{untrusted}"
        );

        if mtls {
            // Without a client certificate a port that requires one refuses the call.
            let refused = svcid_engines(&dpm, &pair.dpe, &["--trust-store", ca.to_str().unwrap()]);
            assert!(listed_engines(&refused).is_err());
        }
    }
}

#[test]
fn svcid_engines_tls_flags_are_checked_like_a_dpe_s_properties() {
    let pair = Pair::linked();
    let missing = svcid_engines_to(&pair.dpe, &["--trust-store", "/nonexistent/ca.pem"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        stderr.contains("ataccama.client.connection.dpm.grpc.tls.trust-store"),
        "{stderr}"
    );
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
}

/// `svcid engines` at a port nobody serves (the flags are checked before any connection).
fn svcid_engines_to(dpe_home: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(common::bin("svcid"))
        .args(["engines", "--dpm"])
        .arg(format!("127.0.0.1:{}", common::free_port()))
        .arg("--home")
        .arg(dpe_home)
        .args(extra)
        .output()
        .unwrap()
}

/// Makes `file` the system's roots of `command` (rustls-native-certs reads `SSL_CERT_FILE`
/// instead of the system's store) and keeps the machine's own `SSL_CERT_DIR` out of it, so the
/// test does not depend on what this machine trusts.
fn system_roots(command: &mut Command, file: &Path) {
    command
        .env("SSL_CERT_FILE", file)
        .env_remove("SSL_CERT_DIR");
}

/// A CA that issued none of the pair's certificates, its `ca.pem` in a folder of its own.
fn stranger_ca() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    Ca::new("some other CA").issue(dir.path(), "x");
    let pem = dir.path().join("etc/tls/ca.pem");
    (dir, pem)
}

#[test]
fn a_dpe_without_a_trust_store_trusts_dpm_through_the_system_roots() {
    let pair = tls_pair(false);
    Pair::replace(
        &pair.dpe,
        &format!("{DPE_CLIENT}.trust-store=etc/tls/ca.pem\n"),
        "",
    );
    let ca = pair.dpe.join("etc/tls/ca.pem");
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe_with(dpm.port(), &[], |c| system_roots(c, &ca));
    ready(&dpm);
    dpe.wait_for("Engine registered.", |e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("message=Engine registered."))
    });
}

#[test]
fn a_dpe_whose_system_roots_lack_dpm_s_ca_says_why_it_cannot_register() {
    let pair = tls_pair(false);
    Pair::replace(
        &pair.dpe,
        &format!("{DPE_CLIENT}.trust-store=etc/tls/ca.pem\n"),
        "",
    );
    let (_stranger, other_ca) = stranger_ca();
    let dpm = pair.start_dpm(&[]);
    let dpe = pair.start_dpe_with(dpm.port(), &[], |c| system_roots(c, &other_ca));
    let unable = unable_to_register(&dpe);
    assert_eq!(unable["code"], "Unavailable", "{unable}");
    let reason = unable["reason"].as_str().unwrap();
    assert!(
        reason.contains("certificate") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
}

#[test]
fn trust_all_registers_with_any_certificate_and_warns_at_start() {
    let pair = tls_pair(false);
    for (home, prefix) in [(&pair.dpe, DPE_CLIENT), (&pair.dpm, DPM_CLIENT)] {
        Pair::replace(
            home,
            &format!("{prefix}.trust-store=etc/tls/ca.pem"),
            &format!("{prefix}.trust-all=true"),
        );
    }
    // Neither the system's roots nor anything else trusts the pair's CA.
    let (_stranger, other_ca) = stranger_ca();
    let dpm = Daemon::start_with("dpm", &pair.dpm, &[], |c| system_roots(c, &other_ca));
    let dpm_warning = dpm.wait_for("insecureTrustAll", |e| e["eventId"] == "insecureTrustAll");
    assert_eq!(dpm_warning["connection"], "DPM → engines", "{dpm_warning}");
    assert_eq!(dpm_warning["property"], format!("{DPM_CLIENT}.trust-all"));
    assert_eq!(dpm_warning["severity"], "WARN", "{dpm_warning}");
    let port = dpm.port();
    let dpe = pair.start_dpe_with(port, &[], |c| system_roots(c, &other_ca));
    let dpe_warning = dpe.wait_for("insecureTrustAll", |e| e["eventId"] == "insecureTrustAll");
    assert_eq!(
        dpe_warning["connection"],
        format!("DPE → DPM at 127.0.0.1:{port}"),
        "{dpe_warning}"
    );
    assert_eq!(dpe_warning["property"], format!("{DPE_CLIENT}.trust-all"));
    assert!(
        dpe_warning["fix"]
            .as_str()
            .is_some_and(|f| f.contains(&format!("{DPE_CLIENT}.trust-store"))),
        "{dpe_warning}"
    );
    ready(&dpm);
    dpe.wait_for("Engine registered.", |e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("message=Engine registered."))
    });
}

#[test]
fn svcid_engines_trusts_the_system_roots_with_tls_and_anything_with_trust_all() {
    let pair = tls_pair(false);
    let dpm = pair.start_dpm(&[]);
    let _dpe = pair.start_dpe(dpm.port(), &[]);
    let engine_id = ready(&dpm)["correlationId"].as_str().unwrap().to_owned();
    let ca = pair.dpe.join("etc/tls/ca.pem");
    let (_stranger, other_ca) = stranger_ca();
    let run = |flags: &[&str], roots: &Path| {
        let mut command = svcid_engines_command(&dpm, &pair.dpe, flags);
        system_roots(&mut command, roots);
        listed_engines(&command.output().unwrap())
    };

    assert_eq!(run(&["--tls"], &ca), Ok(vec![engine_id.clone()]));
    let untrusted = run(&["--tls"], &other_ca).unwrap_err();
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");
    assert_eq!(run(&["--trust-all"], &other_ca), Ok(vec![engine_id]));
    let both = run(&["--trust-all", "--trust-store", ca.to_str().unwrap()], &ca).unwrap_err();
    assert!(
        both.contains(&format!("remove {DPE_CLIENT}.trust-all")),
        "{both}"
    );
}
