//! End-to-end: DPM's registry on a real PostgreSQL over TLS (docs/postgres.md, "TLS to the
//! database"). The server runs with `ssl=on` and a certificate from a CA made at run time; DPM is
//! the real binary, configured as an operator would (`sslmode`, `sslrootcert`, `sslcert`,
//! `sslkey` on `spring.datasource.url`, files relative to the home). Observed from both ends: the
//! engine READY in DPM's log, the connection in the server's `pg_stat_ssl`, a refusal as exit 69
//! with the reason on stderr, never the password.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Daemon, Pair, bin, http_get, http_port_after};
use serde_json::Value;
use svcid_testkit::pki::TestCa;
use svcid_testkit::postgres::{
    Access, Options, PASSWORD, Postgres, ServerTls, USER, file_contains,
};

/// A server with `ssl=on`, its certificate issued by `ca` for `hosts`, TCP access as `access`.
fn tls_server(ca: &TestCa, hosts: &[&str], access: Access, client_ca: Option<&TestCa>) -> Postgres {
    Postgres::start_with(Options {
        tls: Some(ServerTls {
            identity: ca.issue("db.test", hosts).unwrap(),
            client_ca_pem: client_ca.map(TestCa::cert_pem),
        }),
        access,
    })
    .expect("a PostgreSQL server with TLS starts")
}

/// Writes a file into the home's `etc/` (mode 0600).
fn put(home: &Path, name: &str, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let path = home.join("etc").join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Points DPM's home at `url`, logging in as the harness's user with its password.
fn on(home: &Path, url: &str) {
    Pair::append(home, &format!("spring.datasource.url={url}"));
    Pair::append(home, &format!("spring.datasource.username={USER}"));
    Pair::append(home, &format!("spring.datasource.password={PASSWORD}"));
}

/// Runs DPM, expecting it to give up at start: its exit code and standard error.
fn refused_start(home: &Path) -> (Option<i32>, String) {
    // `timeout`: a DPM that starts after all fails the test instead of hanging it.
    let out = Command::new("timeout")
        .arg("30")
        .arg(bin("dpm"))
        .arg("--home")
        .arg(home)
        .output()
        .expect("dpm runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let log = home.join("log/spring-boot-logger.json.log");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(!file_contains(&log, PASSWORD));
    (out.status.code(), stderr)
}

fn became_ready(e: &Value) -> bool {
    e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
}

/// The server's view of DPM's connections: `ssl|version` per connection of `svcid-dpm`.
fn dpm_connections(pg: &Postgres) -> Vec<String> {
    pg.sql(
        "SELECT s.ssl || '|' || coalesce(s.version, '') FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'svcid-dpm'",
    )
    .expect("psql runs")
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Asserts that DPM has connections open to `pg` and that all of them are encrypted (or none).
fn assert_dpm_connections(pg: &Postgres, encrypted: bool) {
    let connections = dpm_connections(pg);
    let prefix = if encrypted { "true|" } else { "false|" };
    assert!(
        !connections.is_empty() && connections.iter().all(|c| c.starts_with(prefix)),
        "encrypted={encrypted}: {connections:?}"
    );
}

/// Waits for DPM's `registryOpened` and asserts the URL it shows carries `sslmode`.
fn assert_opened_with(dpm: &Daemon, sslmode: &str) {
    let opened = dpm.wait_for("registryOpened", |e| e["eventId"] == "registryOpened");
    let suffix = format!("?sslmode={sslmode}");
    assert!(
        opened["url"].as_str().is_some_and(|u| u.ends_with(&suffix)),
        "{opened}"
    );
}

#[test]
fn verify_full_with_the_right_ca_registers_engines_over_an_encrypted_connection() {
    let ca = TestCa::new("svcid registry test CA").unwrap();
    // TLS only: a plain connection would be refused by the server.
    let pg = tls_server(&ca, &["localhost"], Access::TlsOnly, None);
    let pair = Pair::linked();
    put(&pair.dpm, "db-ca.pem", &ca.cert_pem());
    // Relative: from the module home.
    on(
        &pair.dpm,
        &pg.url("localhost", "sslmode=verify-full&sslrootcert=etc/db-ca.pem"),
    );
    let dpm = pair.start_dpm(&[]);
    let opened = dpm.wait_for("registryOpened", |e| e["eventId"] == "registryOpened");
    assert_eq!(
        opened["url"],
        format!(
            "postgresql://{USER}@localhost:{}/dpm?sslmode=verify-full",
            pg.port
        ),
        "{opened}"
    );
    let _dpe = pair.start_dpe(dpm.port(), &[]);
    dpm.wait_for("engine READY", became_ready);

    // The server sees every connection of DPM's pool encrypted.
    let connections = dpm_connections(&pg);
    assert!(!connections.is_empty(), "no connection from svcid-dpm");
    for connection in &connections {
        assert!(connection.starts_with("true|TLSv1."), "{connections:?}");
    }

    // What an operator reads shows the mode, never the password or a key.
    let http = http_port_after(&dpm, 0);
    for path in [
        "/actuator/info",
        "/actuator/health",
        "/actuator/health/database",
    ] {
        let (code, _, body) = http_get(http, path);
        assert_eq!(code, 200, "{path}: {body}");
        assert!(!body.contains(PASSWORD), "{path}: {body}");
        assert!(!body.contains("PRIVATE KEY"), "{path}: {body}");
    }
    let (_, _, health) = http_get(http, "/actuator/health/database");
    assert!(health.contains("sslmode=verify-full"), "{health}");
    assert!(!file_contains(&dpm.log, PASSWORD));
}

#[test]
fn a_server_certificate_from_another_ca_stops_dpm_with_69() {
    let (ca, other) = (
        TestCa::new("svcid registry test CA").unwrap(),
        TestCa::new("somebody else's CA").unwrap(),
    );
    let pg = tls_server(&ca, &["localhost", "127.0.0.1"], Access::Password, None);
    let pair = Pair::linked();
    put(&pair.dpm, "db-ca.pem", &other.cert_pem());
    on(
        &pair.dpm,
        &pg.url("127.0.0.1", "sslmode=verify-full&sslrootcert=etc/db-ca.pem"),
    );
    let (code, stderr) = refused_start(&pair.dpm);
    assert_eq!(code, Some(69), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "postgresql://{USER}@127.0.0.1:{}/dpm?sslmode=verify-full",
            pg.port
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "(CN=db.test, issued by CN=svcid registry test CA) is not trusted by sslrootcert"
        ) && stderr.contains("db-ca.pem (sslmode=verify-full)"),
        "{stderr}"
    );
}

#[test]
fn verify_full_refuses_a_certificate_for_another_host_and_verify_ca_accepts_it() {
    let ca = TestCa::new("svcid registry test CA").unwrap();
    // The certificate names localhost only; DPM connects to 127.0.0.1.
    let pg = tls_server(&ca, &["localhost"], Access::TlsOnly, None);
    let pair = Pair::linked();
    put(&pair.dpm, "db-ca.pem", &ca.cert_pem());
    on(
        &pair.dpm,
        &pg.url("127.0.0.1", "sslmode=verify-full&sslrootcert=etc/db-ca.pem"),
    );
    let (code, stderr) = refused_start(&pair.dpm);
    assert_eq!(code, Some(69), "{stderr}");
    assert!(
        stderr.contains(
            "the server's certificate is for host localhost, not 127.0.0.1 (sslmode=verify-full)"
        ),
        "{stderr}"
    );

    // verify-ca checks the chain only: the same server is accepted.
    Pair::replace(&pair.dpm, "sslmode=verify-full", "sslmode=verify-ca");
    let dpm = pair.start_dpm(&[]);
    assert_opened_with(&dpm, "verify-ca");
    assert_dpm_connections(&pg, true);
}

#[test]
fn require_against_a_server_without_tls_stops_dpm_with_69_and_never_falls_back() {
    // initdb's defaults: ssl=off, passwords over plain TCP accepted.
    let pg = Postgres::start().expect("a PostgreSQL server starts");
    let pair = Pair::linked();
    on(&pair.dpm, &pg.url("127.0.0.1", "sslmode=require"));
    let (code, stderr) = refused_start(&pair.dpm);
    assert_eq!(code, Some(69), "{stderr}");
    assert!(
        stderr.contains("the server does not offer TLS (sslmode=require)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "postgresql://{USER}@127.0.0.1:{}/dpm?sslmode=require",
            pg.port
        )),
        "{stderr}"
    );

    // The default (prefer) takes the same server in plain text, as PostgreSQL's client does.
    Pair::replace(&pair.dpm, "?sslmode=require", "");
    let dpm = pair.start_dpm(&[]);
    assert_opened_with(&dpm, "prefer");
    assert_dpm_connections(&pg, false);
}

#[test]
fn a_client_certificate_logs_dpm_in_without_a_password() {
    let (server_ca, client_ca) = (
        TestCa::new("svcid registry test CA").unwrap(),
        TestCa::new("svcid client CA").unwrap(),
    );
    // `cert`: the server wants a certificate from client_ca whose CN is the user name.
    let pg = tls_server(
        &server_ca,
        &["127.0.0.1"],
        Access::ClientCertificate,
        Some(&client_ca),
    );
    let client = client_ca.issue(USER, &[]).unwrap();
    let pair = Pair::linked();
    put(&pair.dpm, "db-ca.pem", &server_ca.cert_pem());
    put(&pair.dpm, "db-client.pem", &client.cert_pem);
    put(&pair.dpm, "db-client.key", &client.key_pem);

    // Without the certificate the server refuses DPM.
    Pair::append(
        &pair.dpm,
        &format!(
            "{}={}",
            "spring.datasource.url",
            pg.url("127.0.0.1", "sslmode=verify-full&sslrootcert=etc/db-ca.pem")
        ),
    );
    Pair::append(&pair.dpm, &format!("spring.datasource.username={USER}"));
    let (code, stderr) = refused_start(&pair.dpm);
    assert_eq!(code, Some(69), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");

    Pair::replace(
        &pair.dpm,
        "sslrootcert=etc/db-ca.pem",
        "sslrootcert=etc/db-ca.pem&sslcert=etc/db-client.pem&sslkey=etc/db-client.key",
    );
    let dpm = Daemon::start("dpm", &pair.dpm, &[]);
    dpm.wait_for("registryOpened", |e| e["eventId"] == "registryOpened");
    assert_dpm_connections(&pg, true);
    assert!(!file_contains(&dpm.log, "PRIVATE KEY"));
}
