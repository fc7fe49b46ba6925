//! End-to-end tests of the real `svcid` binary on temporary module homes: what an operator runs
//! and sees. Keys are generated at run time; nothing here touches the network except the
//! `check --online` tests, which reach a key endpoint on 127.0.0.1 (`svcid_testkit::jwks`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine as _;
use svcid_identity::clock::ManualClock;
use svcid_identity::jwk::GeneratorKey;
use svcid_identity::token::TokenIssuer;

const GENERATOR_KEY: &str = "ataccama.authentication.internal.jwt.generator.key";
const DEPLOYMENTS: &str = "ataccama.one.platform.deployments";

/// Settings with comments, as an operator's file has them.
const DPM_BASE: &str = "\
# DPM of the test pair. This comment must survive svcid.
ataccama.server.grpc.port=8531

! engines are checked every second
ataccama.one.dpm.registry.check-connected-interval=1s
";

const DPE_BASE: &str = "\
# DPE of the test pair.
ataccama.server.grpc.port = 8532
ataccama.client.connection.dpm.host=127.0.0.1
";

/// The manual's first example block (for dpe/etc/application.properties), verbatim.
const MANUAL_BLOCK_1: &str = r#"      ataccama.one.platform.deployments.dpm-dev.module=dpm
      ataccama.one.platform.deployments.dpm-dev.environment=dev
      ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.fingerprint=vcjAli5Xm_pvtE8ItBkd3aT_FWi_23WieMf5f-lppBI
      ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.content={kty":"EC",crv":"P-256","kid":"vcjAli5Xm_pvtE8ItBkd3aT_FWi_23WieMf5f-lppBI","x":"Hbs53V5zC-1DjNf5RtJ1bNHlxvzM5jST7J1ADVePV9g","y":"4pVfzrF7FMHt_Xx2FgLauvLZuJqbpL9crdOxvTXWb64","alg":"ES256"}
      ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.is-revoked=false
      ataccama.one.platform.deployments.dpm-dev.security.roles[0]=IMPERSONATION
"#;

/// The manual's second example block (for dpm/etc/application.properties), verbatim.
const MANUAL_BLOCK_2: &str = r#"    ataccama.one.platform.deployments.dpe-dev.module=dpe
    ataccama.one.platform.deployments.dpe-dev.environment=dev
    ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.fingerprint=kHSzWkPiZKfSKAgdIkCdXfAAKs7x23jszQLkTOzQTEM
    ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.content={"kty":"EC","crv":"P-256","kid":"KBv0lrEO88ISAnmwXn6Y5jYjG9TvemuZA0yQlq7QpG0","x":"KsJKpmDA03Js3o8JWWiH5tyUfv80kaJy60_7BOrwmKo","y":"7kfcrUzl95MQEZnCjhWA0dIIhzK-jvdaAtGRAuBzZbk","alg":"ES256"}
    ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.is-revoked=false
    ataccama.one.platform.deployments.dpe-dev.security.roles[0]=IMPERSONATION
"#;

fn svcid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_svcid"))
        .args(args)
        .output()
        .expect("svcid runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A dpm and a dpe home with the base settings, in folders named dpm and dpe.
struct Pair {
    _dir: tempfile::TempDir,
    dpm: PathBuf,
    dpe: PathBuf,
}

impl Pair {
    fn new() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let dpm = dir.path().join("dpm");
        let dpe = dir.path().join("dpe");
        write(&dpm, DPM_BASE);
        write(&dpe, DPE_BASE);
        Pair {
            _dir: dir,
            dpm,
            dpe,
        }
    }

    fn linked() -> Pair {
        let pair = Pair::new();
        let out = svcid(&["link", s(&pair.dpm), s(&pair.dpe)]);
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        pair
    }
}

fn file(home: &Path) -> PathBuf {
    home.join("etc/application.properties")
}

fn write(home: &Path, text: &str) {
    std::fs::create_dir_all(home.join("etc")).unwrap();
    std::fs::write(file(home), text).unwrap();
}

fn read(home: &Path) -> String {
    std::fs::read_to_string(file(home)).unwrap()
}

/// The value of `name` as written on its own line.
fn property(home: &Path, name: &str) -> Option<String> {
    read(home)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

fn generator_key(home: &Path) -> GeneratorKey {
    GeneratorKey::from_base64(&property(home, GENERATOR_KEY).unwrap()).unwrap()
}

/// 1-based line of the first line containing `needle`.
fn line_of(home: &Path, needle: &str) -> usize {
    read(home)
        .lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap()
}

#[test]
fn keygen_prints_the_manuals_values_and_json() {
    let out = svcid(&["keygen"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(text.starts_with("Public and Private Keypair"), "{text}");
    let json = svcid(&["keygen", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let key = GeneratorKey::from_base64(value["generatorKey"].as_str().unwrap()).unwrap();
    assert_eq!(value["fingerprint"], key.kid());
    assert_eq!(value["content"], key.public_key().content_json());
    // The peers' entry names the module, as every deployment must.
    let out = svcid(&["keygen", "--module", "dpe"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.contains("ataccama.one.platform.deployments.<deployment>.module=dpe\n"),
        "{text}"
    );
    let out = svcid(&["keygen", "--module", "dpx"]);
    assert_ne!(code(&out), 0, "only dpm or dpe");
}

#[test]
fn link_twice_changes_nothing_the_second_time() {
    let pair = Pair::new();
    let first = svcid(&["link", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(
        code(&first),
        0,
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = stdout(&first);
    assert!(text.contains("dpm: generated a new key, kid "), "{text}");
    assert!(text.contains("dpm: added deployment dpe-dev"), "{text}");
    let (dpm_bytes, dpe_bytes) = (
        std::fs::read(file(&pair.dpm)).unwrap(),
        std::fs::read(file(&pair.dpe)).unwrap(),
    );
    let dpm_text = read(&pair.dpm);
    assert!(
        dpm_text.starts_with(DPM_BASE),
        "comments and order kept:\n{dpm_text}"
    );
    assert!(read(&pair.dpe).starts_with(DPE_BASE));

    let second = svcid(&["link", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(code(&second), 0);
    let text = stdout(&second);
    assert!(text.contains("already up to date"), "{text}");
    assert!(!text.contains("generated"), "{text}");
    assert_eq!(std::fs::read(file(&pair.dpm)).unwrap(), dpm_bytes);
    assert_eq!(std::fs::read(file(&pair.dpe)).unwrap(), dpe_bytes);

    // Each side trusts the other's key, as the manual's procedure would have it.
    let dpm_key = generator_key(&pair.dpm);
    let dpe_key = generator_key(&pair.dpe);
    let p = format!("{DEPLOYMENTS}.dpm-dev.security.jwt-keys.key");
    assert_eq!(
        property(&pair.dpe, &format!("{p}.fingerprint")).unwrap(),
        dpm_key.kid()
    );
    assert_eq!(
        property(&pair.dpe, &format!("{p}.content")).unwrap(),
        dpm_key.public_key().content_json()
    );
    assert_eq!(
        property(
            &pair.dpe,
            &format!("{DEPLOYMENTS}.dpm-dev.security.roles[0]")
        )
        .unwrap(),
        "IMPERSONATION"
    );
    let p = format!("{DEPLOYMENTS}.dpe-dev.security.jwt-keys.key");
    assert_eq!(
        property(&pair.dpm, &format!("{p}.fingerprint")).unwrap(),
        dpe_key.kid()
    );
}

#[test]
fn rotate_adds_key_2_on_both_sides_then_switches_the_generator_keys() {
    let pair = Pair::linked();
    let (old_dpm, old_dpe) = (generator_key(&pair.dpm), generator_key(&pair.dpe));
    let out = svcid(&[
        "link",
        s(&pair.dpm),
        s(&pair.dpe),
        "--rotate",
        "--grace",
        "0",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    let step1 = text.find("step 1/3: verifiers first").unwrap();
    let step3 = text.find("step 3/3: signers").unwrap();
    assert!(step1 < step3, "{text}");
    assert!(text.contains("svcid revoke"), "{text}");

    let (new_dpm, new_dpe) = (generator_key(&pair.dpm), generator_key(&pair.dpe));
    assert_ne!(new_dpm.kid(), old_dpm.kid());
    assert_ne!(new_dpe.kid(), old_dpe.kid());
    for (verifier, deployment, old, new) in [
        (&pair.dpm, "dpe-dev", &old_dpe, &new_dpe),
        (&pair.dpe, "dpm-dev", &old_dpm, &new_dpm),
    ] {
        let p = format!("{DEPLOYMENTS}.{deployment}.security.jwt-keys");
        assert_eq!(
            property(verifier, &format!("{p}.key.fingerprint")).unwrap(),
            old.kid()
        );
        assert_eq!(
            property(verifier, &format!("{p}.key.is-revoked")).unwrap(),
            "false"
        );
        assert_eq!(
            property(verifier, &format!("{p}.key-2.fingerprint")).unwrap(),
            new.kid()
        );
        assert_eq!(
            property(verifier, &format!("{p}.key-2.content")).unwrap(),
            new.public_key().content_json()
        );
        assert_eq!(
            property(verifier, &format!("{p}.key-2.is-revoked")).unwrap(),
            "false"
        );
    }
    assert!(read(&pair.dpm).starts_with(DPM_BASE));
    // The rotated pair is consistent, and link afterwards changes nothing.
    let check = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(code(&check), 0, "{}", stdout(&check));
    let before = read(&pair.dpm);
    assert_eq!(code(&svcid(&["link", s(&pair.dpm), s(&pair.dpe)])), 0);
    assert_eq!(read(&pair.dpm), before);
}

#[test]
fn revoke_flips_the_flag_and_undo_restores_it() {
    let pair = Pair::linked();
    let flag = format!("{DEPLOYMENTS}.dpe-dev.security.jwt-keys.key.is-revoked");
    let out = svcid(&["revoke", s(&pair.dpm), "dpe-dev", "key", "--force"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("dpe-dev/key"), "{}", stdout(&out));
    assert_eq!(property(&pair.dpm, &flag).unwrap(), "true");
    assert!(read(&pair.dpm).starts_with(DPM_BASE));
    // A revoked current key is a cross-check error.
    let check = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(code(&check), 2, "{}", stdout(&check));
    assert!(stdout(&check).contains("is revoked"), "{}", stdout(&check));

    let undo = svcid(&["revoke", "--undo", s(&pair.dpm), "dpe-dev", "key"]);
    assert_eq!(code(&undo), 0);
    assert_eq!(property(&pair.dpm, &flag).unwrap(), "false");

    let missing = svcid(&["revoke", s(&pair.dpm), "dpe-dev", "key-9"]);
    assert_eq!(code(&missing), 2);
    let error = String::from_utf8_lossy(&missing.stderr);
    assert!(
        error.contains("no key entry \"key-9\"") && error.contains("its keys: key"),
        "{error}"
    );
    let missing = svcid(&["revoke", s(&pair.dpm), "dpx-dev", "key"]);
    assert_eq!(code(&missing), 2);
}

#[test]
fn revoke_keeps_the_products_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("dpm");
    let key = GeneratorKey::generate();
    write(
        &home,
        &format!(
            "{DEPLOYMENTS}.dpe-dev.module=dpe\n\
             {DEPLOYMENTS}.dpe-dev.security.jwtKeys.key1.fingerprint={}\n\
             {DEPLOYMENTS}.dpe-dev.security.jwtKeys.key1.content={}\n\
             {DEPLOYMENTS}.dpe-dev.security.jwtKeys.key1.isRevoked=false\n",
            key.kid(),
            key.public_key().content_json()
        ),
    );
    assert_eq!(
        code(&svcid(&["revoke", s(&home), "dpe-dev", "key1", "--force"])),
        0
    );
    assert!(
        read(&home).contains(".jwtKeys.key1.isRevoked=true\n"),
        "{}",
        read(&home)
    );
}

#[test]
fn revoking_the_last_valid_key_is_refused_without_force() {
    let pair = Pair::linked();
    for (home, deployment, says) in [
        (&pair.dpm, "dpe-dev", "RegisterEngine"),
        (&pair.dpe, "dpm-dev", "GetStatus"),
    ] {
        let before = std::fs::read(file(home)).unwrap();
        let out = svcid(&["revoke", s(home), deployment, "key"]);
        assert_eq!(code(&out), 2);
        let error = String::from_utf8_lossy(&out.stderr);
        assert!(
            error.contains(&format!("the last key of {deployment} that is not revoked"))
                && error.contains(&format!("every call from {deployment}"))
                && error.contains(says)
                && error.contains("--force"),
            "{error}"
        );
        assert_eq!(std::fs::read(file(home)).unwrap(), before, "file unchanged");
    }
    // With a second key beside it, the old one goes without --force.
    let rotated = svcid(&[
        "link",
        s(&pair.dpm),
        s(&pair.dpe),
        "--rotate",
        "dpe",
        "--grace",
        "0",
    ]);
    assert_eq!(code(&rotated), 0, "{}", stdout(&rotated));
    let out = svcid(&["revoke", s(&pair.dpm), "dpe-dev", "key"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    // With --force the last one goes too, with the warning.
    let out = svcid(&["revoke", s(&pair.dpm), "dpe-dev", "key-2", "--force"]);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("warning: dpe-dev has no other key"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn link_on_empty_folders_writes_loopback_addresses_and_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let (dpm, dpe) = (dir.path().join("a"), dir.path().join("b"));
    let out = svcid(&[
        "link",
        s(&dpm),
        s(&dpe),
        "--dpm-grpc-port",
        "18531",
        "--dpe-http-port",
        "18034",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    for line in [
        "dpm: ataccama.server.grpc.host=127.0.0.1 (loopback)",
        "dpm: ataccama.server.grpc.port=18531 (--dpm-grpc-port)",
        "dpm: server.port=8031 (the default HTTP port",
        "dpe: ataccama.server.grpc.port=8532 (the default gRPC port)",
        "dpe: server.port=18034 (--dpe-http-port)",
        "dpe: ataccama.client.connection.dpm.host=127.0.0.1 (dpm's address)",
        "dpe: ataccama.client.connection.dpm.grpc.port=18531 (dpm's gRPC port)",
        "dpe: ataccama.one.dpe.service.hostname=127.0.0.1",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    assert_eq!(
        property(&dpe, "ataccama.client.connection.dpm.grpc.port").as_deref(),
        Some("18531")
    );
    let check = svcid(&["check", s(&dpm), s(&dpe)]);
    assert_eq!(code(&check), 0, "{}", stdout(&check));
    // Again: nothing to fill. An option that changes a home's value says so.
    let (dpm_bytes, dpe_bytes) = (
        std::fs::read(file(&dpm)).unwrap(),
        std::fs::read(file(&dpe)).unwrap(),
    );
    let again = svcid(&["link", s(&dpm), s(&dpe)]);
    assert!(!stdout(&again).contains("127.0.0.1"), "{}", stdout(&again));
    assert_eq!(std::fs::read(file(&dpm)).unwrap(), dpm_bytes);
    assert_eq!(std::fs::read(file(&dpe)).unwrap(), dpe_bytes);
    let moved = svcid(&["link", s(&dpm), s(&dpe), "--dpm-grpc-port", "18600"]);
    let text = stdout(&moved);
    assert!(
        text.contains("dpm: ataccama.server.grpc.port was 18531; set to 18600 (--dpm-grpc-port)")
            && text
                .contains("dpe: ataccama.client.connection.dpm.grpc.port was 18531; set to 18600"),
        "{text}"
    );
    // Colliding ports change nothing.
    let (dpm_bytes, dpe_bytes) = (
        std::fs::read(file(&dpm)).unwrap(),
        std::fs::read(file(&dpe)).unwrap(),
    );
    let clash = svcid(&["link", s(&dpm), s(&dpe), "--dpe-grpc-port", "18600"]);
    assert_eq!(code(&clash), 2);
    assert!(
        String::from_utf8_lossy(&clash.stderr).contains("are both 18600"),
        "{}",
        String::from_utf8_lossy(&clash.stderr)
    );
    assert_eq!(std::fs::read(file(&dpm)).unwrap(), dpm_bytes);
    assert_eq!(std::fs::read(file(&dpe)).unwrap(), dpe_bytes);
}

#[test]
fn swapped_homes_are_refused_by_link_and_reported_by_check() {
    let pair = Pair::linked();
    let (dpm_bytes, dpe_bytes) = (
        std::fs::read(file(&pair.dpm)).unwrap(),
        std::fs::read(file(&pair.dpe)).unwrap(),
    );
    for extra in [&[][..], &["--rotate", "--grace", "0"][..]] {
        let mut args = vec!["link", s(&pair.dpe), s(&pair.dpm)];
        args.extend_from_slice(extra);
        let out = svcid(&args);
        assert_eq!(code(&out), 2, "{}", stdout(&out));
        let error = String::from_utf8_lossy(&out.stderr);
        assert!(
            error.contains("the homes are in the wrong order")
                && error.contains("looks like a dpe home")
                && error.contains("ataccama.client.connection.dpm.host")
                && error.contains(&format!("svcid link {} {}", s(&pair.dpm), s(&pair.dpe))),
            "{error}"
        );
        assert_eq!(std::fs::read(file(&pair.dpm)).unwrap(), dpm_bytes);
        assert_eq!(std::fs::read(file(&pair.dpe)).unwrap(), dpe_bytes);
    }
    // check, told the wrong modules, says what the homes are.
    let out = svcid(&[
        "check",
        "--module",
        "dpm",
        "--module",
        "dpe",
        s(&pair.dpe),
        s(&pair.dpm),
    ]);
    let text = stdout(&out);
    assert_eq!(code(&out), 2, "{text}");
    assert!(
        text.contains("check.module-evidence")
            || text.contains("looks like a dpe home, not a dpm one"),
        "{text}"
    );
    assert!(text.contains("wrong order"), "{text}");
    // A home as the old link left it when given the homes swapped: engine properties, but a
    // deployment trusting only a dpe peer. Conflicting evidence is named on both sides.
    let text = read(&pair.dpe).replace(
        &format!("{DEPLOYMENTS}.dpm-dev.module=dpm"),
        &format!("{DEPLOYMENTS}.dpm-dev.module=dpe"),
    );
    write(&pair.dpe, &text);
    let out = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    let report = stdout(&out);
    assert_eq!(code(&out), 2, "{report}");
    assert!(
        report.contains("holds evidence of both modules")
            && report.contains("its deployments trust only dpe peers (dpm-dev)")
            && report.contains("ataccama.client.connection.dpm.host"),
        "{report}"
    );
    let before = std::fs::read(file(&pair.dpe)).unwrap();
    let out = svcid(&["link", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(code(&out), 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds evidence of both modules"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(file(&pair.dpe)).unwrap(), before);
}

#[test]
fn rotate_one_side_adds_its_key_to_the_peer_only() {
    let pair = Pair::linked();
    let (old_dpm, old_dpe) = (generator_key(&pair.dpm), generator_key(&pair.dpe));
    let dpm_before = read(&pair.dpm);
    let out = svcid(&[
        "link",
        s(&pair.dpm),
        s(&pair.dpe),
        "--rotate",
        "dpm",
        "--grace",
        "0",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(
        text.contains("step 1/3: verifier first: dpe trusts dpm's new key beside the old one"),
        "{text}"
    );
    assert!(
        text.contains(&format!("svcid revoke {} dpm-dev key", s(&pair.dpe))),
        "{text}"
    );
    let new_dpm = generator_key(&pair.dpm);
    assert_ne!(new_dpm.kid(), old_dpm.kid());
    assert_eq!(generator_key(&pair.dpe).kid(), old_dpe.kid());
    let p = format!("{DEPLOYMENTS}.dpm-dev.security.jwt-keys");
    assert_eq!(
        property(&pair.dpe, &format!("{p}.key-2.fingerprint")).unwrap(),
        new_dpm.kid()
    );
    assert_eq!(
        property(&pair.dpe, &format!("{p}.key.fingerprint")).unwrap(),
        old_dpm.kid()
    );
    // DPM's file changed only in its generator key.
    let dpm_after = read(&pair.dpm);
    let changed: Vec<(&str, &str)> = dpm_before
        .lines()
        .zip(dpm_after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].0.starts_with(GENERATOR_KEY), "{changed:?}");
    assert!(!read(&pair.dpm).contains("dpe-dev.security.jwt-keys.key-2"));
    let check = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(code(&check), 0, "{}", stdout(&check));
}

/// A home holding a fresh generator key and one of the manual's blocks.
fn manual_home(dir: &Path, name: &str, block: &str) -> PathBuf {
    let home = dir.join(name);
    let key = GeneratorKey::generate();
    write(
        &home,
        &format!("{GENERATOR_KEY}={}\n{block}", key.to_base64()),
    );
    home
}

#[test]
fn check_diagnoses_the_manuals_first_block_as_malformed_json_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = manual_home(dir.path(), "dpe", MANUAL_BLOCK_1);
    let out = svcid(&["check", s(&home)]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let text = stdout(&out);
    let line = line_of(&home, "key.content=");
    let expected = format!(
        "{}:{line}: error: ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.content: \
         content is not a usable public key: not valid JSON",
        file(&home).display()
    );
    assert!(text.contains(&expected), "{expected}\nnot in:\n{text}");
    assert!(
        text.contains("the quotes before kty and crv are missing"),
        "{text}"
    );
    assert!(text.contains("dpe home"), "the module type is said: {text}");
}

#[test]
fn check_diagnoses_the_manuals_second_block_as_a_fingerprint_matching_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let home = manual_home(dir.path(), "dpm", MANUAL_BLOCK_2);
    let out = svcid(&["check", s(&home)]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let text = stdout(&out);
    let line = line_of(&home, "key1.fingerprint=");
    let expected = format!(
        "{}:{line}: error: ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.fingerprint: \
         fingerprint \"kHSzWkPiZKfSKAgdIkCdXfAAKs7x23jszQLkTOzQTEM\" matches no key: the kid inside content is \
         \"KBv0lrEO88ISAnmwXn6Y5jYjG9TvemuZA0yQlq7QpG0\"",
        file(&home).display()
    );
    assert!(text.contains(&expected), "{expected}\nnot in:\n{text}");
    assert!(
        !text.contains(
            "warning: ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.fingerprint"
        ),
        "{text}"
    );

    let json = svcid(&["check", "--json", s(&home)]);
    assert_eq!(code(&json), 2);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let problem = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["message"].as_str().unwrap().contains("matches no key"))
        .unwrap();
    assert_eq!(problem["severity"], "error");
    assert_eq!(problem["code"], "deployment.fingerprint-differs-from-kid");
    assert_eq!(problem["line"], line);
    assert_eq!(report["homes"][0]["module"], "dpm");
}

#[test]
fn check_flags_a_private_key_given_to_a_peer_as_an_error() {
    let pair = Pair::linked();
    let dpm_key = svcid(&["keygen", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&dpm_key.stdout).unwrap();
    let private = serde_json::to_string(&value["keypair"]).unwrap();
    let content = format!("{DEPLOYMENTS}.dpm-dev.security.jwt-keys.key.content=");
    let text = read(&pair.dpe)
        .lines()
        .map(|l| {
            if l.starts_with(&content) {
                format!("{content}{private}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    write(&pair.dpe, &text);
    let out = svcid(&["check", s(&pair.dpe)]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(stdout(&out).contains("error: ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.content: content holds \"d\", the PRIVATE key"), "{}", stdout(&out));
    assert!(!stdout(&out).contains(value["keypair"]["d"].as_str().unwrap()));
}

#[test]
fn check_on_a_linked_pair_is_clean() {
    let pair = Pair::linked();
    let out = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains("dpm home") && text.contains("dpe home"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "cross-check: dpm home {} trusts the current key of dpe home {}: ok",
            s(&pair.dpm),
            s(&pair.dpe)
        )),
        "{text}"
    );
    assert!(text.ends_with("result: 0 errors, 0 warnings\n"), "{text}");
}

#[test]
fn check_catches_a_generator_key_the_peer_does_not_know() {
    let pair = Pair::linked();
    // DPE's key changes behind DPM's back (say, someone pasted a new keygen output).
    let fresh = GeneratorKey::generate();
    let old = property(&pair.dpe, GENERATOR_KEY).unwrap();
    write(
        &pair.dpe,
        &read(&pair.dpe).replace(&old, &fresh.to_base64()),
    );
    // Each home alone still loads...
    assert_eq!(code(&svcid(&["check", s(&pair.dpe)])), 0);
    // ... but together they do not work.
    let out = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 2, "{text}");
    let expected = format!(
        "{}: error: ataccama.one.platform.deployments: does not trust the current generator key of the dpe home {} (kid {})",
        file(&pair.dpm).display(),
        s(&pair.dpe),
        fresh.kid()
    );
    assert!(text.contains(&expected), "{expected}\nnot in:\n{text}");
    assert!(
        text.contains(&format!(
            "cross-check: dpe home {} trusts the current key of dpm home {}: ok",
            s(&pair.dpe),
            s(&pair.dpm)
        )),
        "{text}"
    );
    let json = svcid(&["check", "--json", s(&pair.dpm), s(&pair.dpe)]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["errors"], 1);
    assert_eq!(report["problems"][0]["check"], "cross");

    // link repairs it by adding the new key beside the old one.
    let relink = svcid(&["link", s(&pair.dpm), s(&pair.dpe)]);
    assert!(
        stdout(&relink).contains("dpe-dev/key-2"),
        "{}",
        stdout(&relink)
    );
    assert_eq!(code(&svcid(&["check", s(&pair.dpm), s(&pair.dpe)])), 0);
}

#[test]
fn check_cross_checks_module_type_and_fingerprint() {
    let pair = Pair::linked();
    let text = read(&pair.dpm).replace(
        &format!("{DEPLOYMENTS}.dpe-dev.module=dpe"),
        &format!("{DEPLOYMENTS}.dpe-dev.module=dpm"),
    );
    write(&pair.dpm, &text);
    let out = svcid(&[
        "check",
        "--module",
        "dpm",
        "--module",
        "dpe",
        s(&pair.dpm),
        s(&pair.dpe),
    ]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(stdout(&out).contains("says module=dpm"), "{}", stdout(&out));
    assert!(stdout(&out).contains("(--module dpm)"), "{}", stdout(&out));

    let pair = Pair::linked();
    let real = generator_key(&pair.dpe).kid().to_owned();
    write(
        &pair.dpm,
        &read(&pair.dpm).replace(&format!("fingerprint={real}"), "fingerprint=wrong-kid"),
    );
    let out = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 2, "{text}");
    assert!(
        text.contains(&format!(
            "holds the dpe home {}'s public key under fingerprint \"wrong-kid\"",
            s(&pair.dpe)
        )),
        "{text}"
    );
}

#[test]
fn check_warns_when_it_has_to_guess_the_module_type() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("somewhere");
    write(
        &home,
        &format!("{GENERATOR_KEY}={}\n", GeneratorKey::generate().to_base64()),
    );
    let out = svcid(&["check", s(&home)]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("a guess"), "{}", stdout(&out));
    assert_eq!(code(&svcid(&["check", "--module", "dpe", s(&home)])), 0);
}

#[test]
fn check_reports_a_constraint_that_does_not_parse_as_its_type() {
    let pair = Pair::linked();
    let good = "constraints.com.ataccama.dpe.plugin.dataconnect.jdbc.connectionstring=\
                [pattern]jdbc:oracle:.*,jdbc:postgresql:.*";
    write(
        &pair.dpe,
        &format!("{}{good}\nconstraints.cores=[long]4,x\n", read(&pair.dpe)),
    );
    let out = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 2, "{text}");
    let expected = format!(
        "{}:{}: error: constraints.cores: \"[long]4,x\": element 2 \"x\" is not a long; fix: ",
        file(&pair.dpe).display(),
        line_of(&pair.dpe, "constraints.cores")
    );
    assert!(text.contains(&expected), "{expected}\nnot in:\n{text}");
    assert!(text.contains("result: 1 error, 0 warnings"), "{text}");

    let json = svcid(&["check", "--json", s(&pair.dpe)]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["problems"][0]["code"], "constraints.not-of-type");
    assert_eq!(report["problems"][0]["property"], "constraints.cores");

    // Fixed, the home is clean again: the dotted jdbc key is a capability, not an unknown property.
    write(
        &pair.dpe,
        &read(&pair.dpe).replace("[long]4,x", "[long]4,8"),
    );
    let out = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn token_mint_then_inspect_is_accepted_by_the_peer() {
    let pair = Pair::linked();
    let mint = svcid(&["token", "mint", "--home", s(&pair.dpe), "--aud", "dpm"]);
    assert_eq!(code(&mint), 0, "{}", String::from_utf8_lossy(&mint.stderr));
    let token = stdout(&mint).trim().to_owned();
    assert_eq!(token.split('.').count(), 3);
    assert!(String::from_utf8_lossy(&mint.stderr).contains("for aud=dpm"));

    let out = svcid(&["token", "inspect", &token, "--home", s(&pair.dpm)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains("accepted as ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])"),
        "{text}"
    );
    assert!(text.contains("\"aud\": \"dpm\""), "{text}");
    assert!(text.contains("exp: ") && text.contains("Z (in "), "{text}");

    // Without a home it only decodes.
    let out = svcid(&["token", "inspect", &format!("Bearer {token}")]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("not verified"));

    // Acting for a user.
    let mint = svcid(&[
        "token",
        "mint",
        "--home",
        s(&pair.dpe),
        "--aud",
        "dpm",
        "--user",
        "42",
        "--username",
        "alice",
        "--role",
        "ADMIN",
    ]);
    let token = stdout(&mint).trim().to_owned();
    let out = svcid(&["token", "inspect", &token, "--home", s(&pair.dpm)]);
    assert!(
        stdout(&out).contains("accepted as ImpersonatedUserIdentity(id=42, roles=[ADMIN], serviceIdentity=ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION]))"),
        "{}",
        stdout(&out)
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn inspect_refusal(token: &str, home: &Path) -> String {
    let out = svcid(&["token", "inspect", token, "--home", s(home)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 2, "{text}");
    text
}

#[test]
fn inspect_explains_hostile_tokens() {
    let pair = Pair::linked();
    let dpe_key = generator_key(&pair.dpe);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = b64(format!(
        r#"{{"iat":{now},"nbf":{now},"exp":{},"aud":"dpm"}}"#,
        now + 15
    )
    .as_bytes());

    // alg none, without and with a signature (docs/security.md, hostile token 2).
    let header =
        b64(format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, dpe_key.kid()).as_bytes());
    let text = inspect_refusal(&format!("{header}.{claims}."), &pair.dpm);
    assert!(text.contains("refused: empty_segment: "), "{text}");
    assert!(
        text.contains("\"alg\": \"none\""),
        "the header is shown: {text}"
    );
    let text = inspect_refusal(&format!("{header}.{claims}.{}", b64(&[7; 64])), &pair.dpm);
    assert!(
        text.contains("refused: alg_refused: token alg none is refused"),
        "{text}"
    );

    // Unknown kid: a well-formed token from a key nobody configured (row 7).
    let stranger = TokenIssuer::new(
        GeneratorKey::generate(),
        std::time::Duration::from_secs(15),
        Arc::new(svcid_identity::clock::SystemClock),
    )
    .unwrap();
    let text = inspect_refusal(&stranger.mint("dpm", None), &pair.dpm);
    assert!(
        text.contains("refused: unknown_kid: token kid matches no configured fingerprint"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "why: no deployment of this home has fingerprint {}",
            stranger.kid()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("dpe-dev/key (kid {})", dpe_key.kid())),
        "{text}"
    );

    // Expired: the peer's real key, minted an hour ago (row 11).
    let past = i64::try_from(now).unwrap() - 3600;
    let old = TokenIssuer::new(
        generator_key(&pair.dpe),
        std::time::Duration::from_secs(15),
        Arc::new(ManualClock::new(past)),
    )
    .unwrap();
    let text = inspect_refusal(&old.mint("dpm", None), &pair.dpm);
    assert!(
        text.contains("refused: expired: token has expired"),
        "{text}"
    );
    assert!(
        text.contains("why: exp ") && text.contains("ago; the clock skew allows 60s"),
        "{text}"
    );

    // Wrong audience: minted for dpe, shown to dpm (row 21).
    let mint = svcid(&["token", "mint", "--home", s(&pair.dpe), "--aud", "dpe"]);
    let token = stdout(&mint).trim().to_owned();
    let text = inspect_refusal(&token, &pair.dpm);
    assert!(
        text.contains("refused: wrong_aud: token was not issued for this module"),
        "{text}"
    );
    assert!(
        text.contains("why: aud is \"dpe\"; this home is a dpm"),
        "{text}"
    );

    // Revoked key: a valid token whose key DPM has revoked in its file (row 20).
    let mint = svcid(&["token", "mint", "--home", s(&pair.dpe), "--aud", "dpm"]);
    let token = stdout(&mint).trim().to_owned();
    assert_eq!(
        code(&svcid(&[
            "revoke",
            s(&pair.dpm),
            "dpe-dev",
            "key",
            "--force"
        ])),
        0
    );
    let text = inspect_refusal(&token, &pair.dpm);
    assert!(
        text.contains("refused: revoked_key: token key is revoked"),
        "{text}"
    );
    assert!(text.contains("why: dpe-dev/key is revoked ("), "{text}");
    assert!(text.contains("is-revoked=true"), "{text}");

    // Not a token at all.
    let out = svcid(&["token", "inspect", "not-a-token"]);
    assert_eq!(code(&out), 2);
    assert!(stdout(&out).contains("undecodable"), "{}", stdout(&out));
}

/// The claims of a compact JWS, decoded without checking anything.
fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn link_with_token_profile_product_writes_it_on_both_sides() {
    let pair = Pair::new();
    let out = svcid(&[
        "link",
        s(&pair.dpm),
        s(&pair.dpe),
        "--token-profile",
        "product",
    ]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains("dpm: dpe-dev.token-profile set to product"),
        "{text}"
    );
    for (home, peer) in [(&pair.dpm, "dpe-dev"), (&pair.dpe, "dpm-dev")] {
        assert_eq!(
            property(
                home,
                &format!("{DEPLOYMENTS}.{peer}.security.token-profile")
            )
            .as_deref(),
            Some("product"),
            "{}",
            read(home)
        );
    }
    // The pair is consistent, and linking again (with or without the option) changes nothing.
    let check = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(code(&check), 0, "{}", stdout(&check));
    let before = (read(&pair.dpm), read(&pair.dpe));
    for extra in [&["--token-profile", "product"][..], &[]] {
        let mut args = vec!["link", s(&pair.dpm), s(&pair.dpe)];
        args.extend_from_slice(extra);
        let again = svcid(&args);
        assert_eq!(code(&again), 0, "{}", stdout(&again));
        assert_eq!((read(&pair.dpm), read(&pair.dpe)), before, "{extra:?}");
    }
    // Anything but strict or product is refused before a file is touched.
    let bad = svcid(&[
        "link",
        s(&pair.dpm),
        s(&pair.dpe),
        "--token-profile",
        "python",
    ]);
    assert_eq!(code(&bad), 2);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("strict, product"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert_eq!((read(&pair.dpm), read(&pair.dpe)), before);
}

#[test]
fn token_mint_profile_product_has_no_aud_and_a_product_home_accepts_it() {
    let pair = Pair::new();
    let out = svcid(&[
        "link",
        s(&pair.dpm),
        s(&pair.dpe),
        "--token-profile",
        "product",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let mint = svcid(&[
        "token",
        "mint",
        "--home",
        s(&pair.dpe),
        "--aud",
        "dpm",
        "--profile",
        "product",
    ]);
    let info = String::from_utf8_lossy(&mint.stderr).into_owned();
    assert_eq!(code(&mint), 0, "{info}");
    assert!(
        info.contains("for a dpm without aud (token profile: product)"),
        "{info}"
    );
    let token = stdout(&mint).trim().to_owned();
    let claims = claims_of(&token);
    assert!(claims.get("aud").is_none(), "{claims}");
    for claim in ["iat", "nbf", "exp", "jti"] {
        assert!(claims.get(claim).is_some(), "{claim} in {claims}");
    }

    let out = svcid(&["token", "inspect", &token, "--home", s(&pair.dpm)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains(
            "accepted as ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION]) \
             (deployment dpe-dev, key key) (token profile: product — no aud required)"
        ),
        "{text}"
    );

    // A product peer's token that carries aud must still name this module.
    let mint = svcid(&["token", "mint", "--home", s(&pair.dpe), "--aud", "dpe"]);
    let text = inspect_refusal(stdout(&mint).trim(), &pair.dpm);
    assert!(
        text.contains(
            "why: aud is \"dpe\"; this home is a dpm, so a token for it that carries aud must name \
             dpm (dpe-dev: token profile: product — no aud required)"
        ),
        "{text}"
    );

    // The same token is refused once DPM holds dpe-dev to the strict profile again.
    let relink = svcid(&[
        "link",
        s(&pair.dpm),
        s(&pair.dpe),
        "--token-profile",
        "strict",
    ]);
    assert!(
        stdout(&relink).contains("dpm: dpe-dev.token-profile was \"product\"; set to strict"),
        "{}",
        stdout(&relink)
    );
    let text = inspect_refusal(&token, &pair.dpm);
    assert!(
        text.contains("refused: missing_aud: token has no aud claim"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "(dpe-dev: token profile: strict — aud required); if dpe-dev is an Ataccama ONE module, \
             which mints no aud, set {DEPLOYMENTS}.dpe-dev.security.token-profile=product"
        )),
        "{text}"
    );
    // A strict token says so too.
    let mint = svcid(&["token", "mint", "--home", s(&pair.dpe), "--aud", "dpm"]);
    let out = svcid(&[
        "token",
        "inspect",
        stdout(&mint).trim(),
        "--home",
        s(&pair.dpm),
    ]);
    assert!(
        stdout(&out).contains("(token profile: strict — aud required)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_flags_a_bad_token_profile_and_a_pair_that_disagrees() {
    let pair = Pair::linked();
    let profile = format!("{DEPLOYMENTS}.dpe-dev.security.token-profile");
    write(
        &pair.dpm,
        &format!("{}{profile}=products\n", read(&pair.dpm)),
    );
    let out = svcid(&["check", s(&pair.dpm)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 2, "{text}");
    let expected = format!(
        "{}:{}: error: {profile}: \"products\" is not a token profile; fix: use strict",
        file(&pair.dpm).display(),
        line_of(&pair.dpm, "token-profile=products")
    );
    assert!(text.contains(&expected), "{expected}\nnot in:\n{text}");

    // A valid value on one side only: DPM sends dpe-dev tokens without aud, which the DPE, still
    // strict about dpm-dev, refuses.
    write(
        &pair.dpm,
        &read(&pair.dpm).replace("token-profile=products", "token-profile=product"),
    );
    assert_eq!(code(&svcid(&["check", s(&pair.dpm)])), 0);
    let out = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 2, "{text}");
    let expected = format!(
        "{}:{}: error: {DEPLOYMENTS}.dpm-dev.security.token-profile: the dpm home {} has \
         token-profile=product for this home, so its tokens carry no aud, but deployment dpm-dev \
         here is strict: every call from it is refused (missing_aud)",
        file(&pair.dpe).display(),
        line_of(&pair.dpe, "dpm-dev.module="),
        s(&pair.dpm)
    );
    assert!(text.contains(&expected), "{expected}\nnot in:\n{text}");
    // link --token-profile product settles it on both sides.
    let relink = svcid(&[
        "link",
        s(&pair.dpm),
        s(&pair.dpe),
        "--token-profile",
        "product",
    ]);
    assert_eq!(code(&relink), 0, "{}", stdout(&relink));
    let out = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

// ---- Keys and tokens for people (MicroProfile JWT) ----

/// The claims file of the MicroProfile JWT guide's example, with the issuer these tests trust.
const MP_ISSUER: &str = "https://server.example.com";
const MP_CLAIMS: &str = r#"{
  "iss": "https://server.example.com",
  "jti": "a-123",
  "sub": "24400320",
  "upn": "jdoe@example.com",
  "preferred_username": "jdoe",
  "aud": "s6BhdRkqt3",
  "groups": ["architect", "master", "leader", "dev"]
}"#;

/// `privateKey.pem` and `publicKey.pem` made independently of svcid: the guide's three openssl
/// commands when the `openssl` command is installed, else josekit's generator (also PKCS#8).
fn independent_rsa_pems(dir: &Path) -> (PathBuf, PathBuf) {
    let private = dir.join("privateKey.pem");
    let public = dir.join("publicKey.pem");
    let base = dir.join("baseKey.pem");
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let by_openssl = run(&["genrsa", "-out", s(&base), "2048"])
        && run(&[
            "pkcs8",
            "-topk8",
            "-inform",
            "PEM",
            "-in",
            s(&base),
            "-out",
            s(&private),
            "-nocrypt",
        ])
        && run(&[
            "rsa",
            "-in",
            s(&base),
            "-pubout",
            "-outform",
            "PEM",
            "-out",
            s(&public),
        ]);
    if !by_openssl {
        eprintln!("no openssl command: generating the RSA key with josekit");
        let pair = josekit::jws::RS256.generate_key_pair(2048).unwrap();
        std::fs::write(&private, pair.to_pem_private_key()).unwrap();
        std::fs::write(&public, pair.to_pem_public_key()).unwrap();
    }
    (private, public)
}

fn independent_ec_pems(dir: &Path) -> (PathBuf, PathBuf) {
    let pair = josekit::jws::ES256.generate_key_pair().unwrap();
    let private = dir.join("ec-private.pem");
    let public = dir.join("ec-public.pem");
    std::fs::write(&private, pair.to_pem_private_key()).unwrap();
    std::fs::write(&public, pair.to_pem_public_key()).unwrap();
    (private, public)
}

fn segment_json(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// svcid's own verdict on `token`: MicroProfile JWT rules for [`MP_ISSUER`] with `public_pem`.
fn mp_verdict(public_pem: &Path, token: &str) -> Result<String, String> {
    use svcid_identity::user::{KeyFilter, UserIssuerPolicy, UserKeySet, UserTokenVerifier};
    let text = std::fs::read_to_string(public_pem).unwrap();
    let keys = UserKeySet::parse(&text, KeyFilter::Signing).unwrap();
    let verifier = UserTokenVerifier::new(
        vec![UserIssuerPolicy::micro_profile(MP_ISSUER)],
        Arc::new(svcid_identity::clock::SystemClock),
    )
    .unwrap();
    verifier
        .verify(token, |_| &keys)
        .map(|user| format!("{} {:?}", user.username, user.roles))
        .map_err(|e| e.reason().to_owned())
}

fn token_user(private: &Path, claims: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "token",
        "--user",
        "--claims",
        s(claims),
        "--key",
        s(private),
    ];
    args.extend_from_slice(extra);
    svcid(&args)
}

#[test]
fn token_user_mints_the_guides_token_that_independent_and_own_verifiers_accept() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("jwt-token.json");
    std::fs::write(&claims, MP_CLAIMS).unwrap();
    let (rsa_private, rsa_public) = independent_rsa_pems(dir.path());
    let (ec_private, ec_public) = independent_ec_pems(dir.path());
    let rsa_pem = std::fs::read(&rsa_public).unwrap();
    let ec_pem = std::fs::read(&ec_public).unwrap();
    let cases: [(&Path, &Path, &str, Box<dyn josekit::jws::JwsVerifier>); 2] = [
        (
            &rsa_private,
            &rsa_public,
            "RS256",
            Box::new(josekit::jws::RS256.verifier_from_pem(&rsa_pem).unwrap()),
        ),
        (
            &ec_private,
            &ec_public,
            "ES256",
            Box::new(josekit::jws::ES256.verifier_from_pem(&ec_pem).unwrap()),
        ),
    ];
    for (private, public, alg, verifier) in cases {
        let before = time::OffsetDateTime::now_utc().unix_timestamp();
        let output = token_user(private, &claims, &[]);
        assert_eq!(code(&output), 0, "{output:?}");
        let token = stdout(&output);
        assert_eq!(
            token.lines().count(),
            1,
            "only the token on stdout: {token}"
        );
        let token = token.trim();
        let (payload, header) = josekit::jwt::decode_with_verifier(token, verifier.as_ref())
            .unwrap_or_else(|e| panic!("josekit refuses the {alg} token: {e}"));
        assert_eq!(header.algorithm(), Some(alg));
        assert_eq!(header.token_type(), Some("JWT"));
        let kid = header.key_id().unwrap().to_owned();
        assert_eq!(kid.len(), 43, "an RFC 7638 SHA-256 thumbprint: {kid}");
        let claims_out = payload.claims_set();
        let iat = claims_out["iat"].as_i64().unwrap();
        assert!(iat >= before && iat <= before + 5, "iat {iat} is now");
        assert_eq!(claims_out["auth_time"].as_i64(), Some(iat));
        assert_eq!(
            claims_out["exp"].as_i64(),
            Some(iat + 1000),
            "the guide's 1000 s"
        );
        assert_eq!(claims_out["upn"], "jdoe@example.com");
        assert_eq!(claims_out["groups"][3], "dev");
        assert_eq!(
            mp_verdict(public, token).unwrap(),
            r#"jdoe@example.com ["architect", "dev", "leader", "master"]"#
        );

        let output = token_user(
            private,
            &claims,
            &["--expires-in", "60s", "--kid", "/privateKey.pem"],
        );
        let token = stdout(&output);
        let header = segment_json(token.trim(), 0);
        let payload = segment_json(token.trim(), 1);
        assert_eq!(header["kid"], "/privateKey.pem");
        assert_eq!(
            payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
            60
        );
        assert!(mp_verdict(public, token.trim()).is_ok());

        for (invalid, reason) in [
            ("issuer", "not_user_token"),
            ("exp", "expired"),
            ("iat", "iat_after_exp"),
            ("signer", "bad_signature"),
            ("alg", "alg_refused"),
        ] {
            let output = token_user(private, &claims, &["--invalid", invalid]);
            assert_eq!(code(&output), 0, "{output:?}");
            let token = stdout(&output);
            let token = token.trim();
            assert_eq!(
                mp_verdict(public, token).unwrap_err(),
                reason,
                "--invalid {invalid} ({alg})"
            );
            let payload = segment_json(token, 1);
            match invalid {
                "issuer" => {
                    assert_ne!(payload["iss"], MP_ISSUER);
                    josekit::jwt::decode_with_verifier(token, verifier.as_ref()).unwrap();
                }
                "signer" => {
                    assert!(josekit::jwt::decode_with_verifier(token, verifier.as_ref()).is_err());
                }
                "alg" => {
                    assert_eq!(segment_json(token, 0)["alg"], "HS256");
                    let pem = std::fs::read(public).unwrap();
                    let hmac = josekit::jws::HS256.verifier_from_bytes(&pem).unwrap();
                    josekit::jwt::decode_with_verifier(token, &hmac).unwrap();
                }
                _ => {
                    josekit::jwt::decode_with_verifier(token, verifier.as_ref()).unwrap();
                }
            }
        }
    }
}

#[test]
fn token_user_refuses_a_public_key_and_unreadable_files_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("jwt-token.json");
    std::fs::write(&claims, MP_CLAIMS).unwrap();
    let (_, public) = independent_ec_pems(dir.path());
    let output = token_user(&public, &claims, &[]);
    assert_eq!(code(&output), 2);
    assert!(output.stdout.is_empty());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("ec-public.pem") && error.contains("public key"),
        "{error}"
    );
    let missing = dir.path().join("nowhere.pem");
    let output = token_user(&missing, &claims, &[]);
    assert_eq!(code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("nowhere.pem"));
    let (private, _) = independent_ec_pems(dir.path());
    let output = token_user(&private, &dir.path().join("no-claims.json"), &[]);
    assert_eq!(code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-claims.json"));
    let output = svcid(&["token", "--claims", s(&claims)]);
    assert_ne!(code(&output), 0, "--claims without --user");
}

#[test]
fn keygen_rsa_pem_writes_the_guides_files_and_matching_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let output = svcid(&["keygen", "--kty", "RSA", "--pem", s(&keys), "--json"]);
    assert_eq!(code(&output), 0, "{output:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(
        !stdout(&output).contains("PRIVATE"),
        "no private key on stdout"
    );
    let private = keys.join("privateKey.pem");
    let public = keys.join("publicKey.pem");
    assert!(
        std::fs::read_to_string(&private)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        std::fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let jwk = &report["publicKey"];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["kid"], report["kid"]);
    // The printed JWK and the PEM files are one key: josekit signs with the PEM, verifies with
    // the JWK.
    let signer = josekit::jws::RS256
        .signer_from_pem(std::fs::read(&private).unwrap())
        .unwrap();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(report["kid"].as_str().unwrap());
    let mut payload = josekit::jwt::JwtPayload::new();
    payload.set_issuer(MP_ISSUER);
    let token = josekit::jwt::encode_with_signer(&payload, &header, &signer).unwrap();
    let jwk = josekit::jwk::Jwk::from_bytes(serde_json::to_vec(jwk).unwrap()).unwrap();
    let verifier = josekit::jws::RS256.verifier_from_jwk(&jwk).unwrap();
    josekit::jwt::decode_with_verifier(&token, &verifier).unwrap();

    // A second run does not replace the key unless told to.
    let output = svcid(&["keygen", "--kty", "RSA", "--pem", s(&keys)]);
    assert_eq!(code(&output), 2);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("privateKey.pem") && error.contains("--force"),
        "{error}"
    );
    let output = svcid(&[
        "keygen",
        "--kty",
        "RSA",
        "--bits",
        "3072",
        "--pem",
        s(&keys),
        "--force",
    ]);
    assert_eq!(code(&output), 0, "{output:?}");
    assert!(stdout(&output).contains("mp.jwt.verify.publickey.location=publicKey.pem"));

    // The minted token carries the thumbprint keygen printed, and verifies.
    let claims = dir.path().join("jwt-token.json");
    std::fs::write(&claims, MP_CLAIMS).unwrap();
    let kid_line = stdout(&output)
        .lines()
        .find_map(|l| {
            l.strip_prefix("kid (RFC 7638 SHA-256 thumbprint): ")
                .map(str::to_owned)
        })
        .unwrap();
    let output = token_user(&private, &claims, &[]);
    let token = stdout(&output);
    assert_eq!(segment_json(token.trim(), 0)["kid"], kid_line.as_str());
    assert!(mp_verdict(&public, token.trim()).is_ok());

    // Without --pem: the keypair, its set and the public key, as JSON an independent library reads.
    let output = svcid(&["keygen", "--kty", "RSA", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let pair =
        josekit::jwk::Jwk::from_bytes(serde_json::to_vec(&report["keypair"]).unwrap()).unwrap();
    let signer = josekit::jws::RS256.signer_from_jwk(&pair).unwrap();
    header.set_key_id(report["kid"].as_str().unwrap());
    let token = josekit::jwt::encode_with_signer(&payload, &header, &signer).unwrap();
    let public =
        josekit::jwk::Jwk::from_bytes(serde_json::to_vec(&report["publicKey"]).unwrap()).unwrap();
    josekit::jwt::decode_with_verifier(
        &token,
        &josekit::jws::RS256.verifier_from_jwk(&public).unwrap(),
    )
    .unwrap();
    assert_eq!(report["keypairSet"]["keys"][0], report["keypair"]);

    let output = svcid(&["keygen", "--bits", "2048"]);
    assert_eq!(code(&output), 2, "--bits is for RSA");
    let output = svcid(&["keygen", "--kty", "RSA", "--bits", "1024"]);
    assert_eq!(code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("2048, 3072 or 4096"));
}

#[test]
fn keygen_ec_pem_is_the_same_key_as_its_jwk() {
    let dir = tempfile::tempdir().unwrap();
    let output = svcid(&["keygen", "--pem", s(dir.path()), "--json"]);
    assert_eq!(code(&output), 0, "{output:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["publicKey"]["alg"], "ES256");
    let signer = josekit::jws::ES256
        .signer_from_pem(std::fs::read(dir.path().join("privateKey.pem")).unwrap())
        .unwrap();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(report["kid"].as_str().unwrap());
    let token =
        josekit::jwt::encode_with_signer(&josekit::jwt::JwtPayload::new(), &header, &signer)
            .unwrap();
    let jwk =
        josekit::jwk::Jwk::from_bytes(serde_json::to_vec(&report["publicKey"]).unwrap()).unwrap();
    josekit::jwt::decode_with_verifier(
        &token,
        &josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap(),
    )
    .unwrap();
}

/// A gRPC server with only `IdentityService`, answering with the `authorization` it received.
struct EchoServer {
    address: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct Echo;

#[tonic::async_trait]
impl svcid_proto::pb::identity::identity_service_server::IdentityService for Echo {
    async fn who_am_i(
        &self,
        request: tonic::Request<svcid_proto::pb::identity::WhoAmIRequest>,
    ) -> Result<tonic::Response<svcid_proto::pb::identity::WhoAmIResponse>, tonic::Status> {
        let seen = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(tonic::Response::new(
            svcid_proto::pb::identity::WhoAmIResponse {
                identity: format!("UserIdentity(seen={seen})"),
                module: "user".into(),
                id: "24400320".into(),
                roles: vec!["dev".into()],
                kid: String::new(),
                user: None,
                server_module: "dpm".into(),
            },
        ))
    }
}

fn echo_server() -> EchoServer {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ready.send(listener.local_addr().unwrap()).unwrap();
            tonic::transport::Server::builder()
                .add_service(
                    svcid_proto::pb::identity::identity_service_server::IdentityServiceServer::new(
                        Echo,
                    ),
                )
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
                .unwrap();
        });
    });
    EchoServer {
        address: address.recv().unwrap(),
        _stop: stop,
    }
}

#[test]
fn whoami_bearer_sends_the_token_with_the_bearer_scheme() {
    let server = echo_server();
    let address = server.address.to_string();
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln";
    let output = svcid(&["whoami", "--bearer", token, &address]);
    assert_eq!(code(&output), 0, "{output:?}");
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!(
            "dpm at {address} sees you as UserIdentity(seen=Bearer {token})"
        )),
        "{text}"
    );
    assert!(text.contains("roles: dev"), "{text}");

    // --home: the home's own module token, with the module scheme, as its daemon sends it.
    let pair = Pair::linked();
    let output = svcid(&["whoami", "--home", s(&pair.dpe), "--json", &address]);
    assert_eq!(code(&output), 0, "{output:?}");
    let answer: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let seen = answer["identity"].as_str().unwrap();
    let module_token = seen
        .strip_prefix("UserIdentity(seen=Internal-jwt ")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{seen}"));
    let inspected = svcid(&["token", "inspect", module_token, "--home", s(&pair.dpm)]);
    assert_eq!(code(&inspected), 0, "{}", stdout(&inspected));

    // The server lacks EngineAdminService: the error says so, and never shows the token.
    let output = svcid(&["whoami", "--bearer", token, "--engine", "dpe-1", &address]);
    assert_eq!(code(&output), 2, "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("does not serve EngineAdminService.WhoAmIOnEngine")
            && error.contains("Unimplemented"),
        "{error}"
    );
    assert!(
        !error.contains(token) && output.stdout.is_empty(),
        "{error}"
    );

    // Nobody listening: a clear error, no token either.
    drop(server);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_address = closed.local_addr().unwrap().to_string();
    drop(closed);
    let output = svcid(&[
        "whoami",
        "--bearer",
        token,
        "--timeout",
        "2",
        &closed_address,
    ]);
    assert_eq!(code(&output), 2);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("cannot reach") && !error.contains(token),
        "{error}"
    );

    // Arguments: a caller is required, and only one.
    assert_ne!(code(&svcid(&["whoami", &address])), 0);
    assert_ne!(
        code(&svcid(&[
            "whoami", "--bearer", token, "--home", ".", &address
        ])),
        0
    );
    let output = svcid(&["whoami", "--bearer", token, "--engine", "dpe-1", "no-port"]);
    assert_eq!(code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("HOST:PORT"));
}

/// Appends a Keycloak realm at `server_url` to DPM's file of `pair`; returns the line number of
/// the `server-url` property.
fn with_realm(pair: &Pair, server_url: &str) -> usize {
    let file = pair.dpm.join("etc/application.properties");
    let mut text = std::fs::read_to_string(&file).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let line = text.lines().count() + 1;
    text.push_str(&format!(
        "ataccama.authentication.keycloak.server-url={server_url}\n\
         ataccama.authentication.keycloak.realm={}\n",
        svcid_testkit::jwks::REALM
    ));
    std::fs::write(&file, text).unwrap();
    line
}

#[test]
fn check_online_fetches_a_realms_keys_once_and_lists_their_kids() {
    let realm = svcid_testkit::jwks::JwksServer::start().unwrap();
    let pair = Pair::linked();
    let line = with_realm(&pair, &realm.server_url());
    // Without --online nothing is fetched.
    let out = svcid(&["check", s(&pair.dpm), s(&pair.dpe)]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(realm.requests(), 0, "check fetched without --online");

    let out = svcid(&["check", "--online", s(&pair.dpm), s(&pair.dpe)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert_eq!(realm.requests(), 1);
    let expected = format!(
        "{}:{line}: info: ataccama.authentication.keycloak.server-url: {}: 1 usable key (1 not for signing skipped): {}",
        s(&pair.dpm.join("etc/application.properties")),
        realm.certs_url(),
        realm.signing_key().kid()
    );
    assert!(text.contains(&expected), "{expected}\n{text}");
    assert!(!text.contains(realm.encryption_key().kid()), "{text}");
    assert!(text.ends_with("result: 0 errors, 0 warnings\n"), "{text}");

    let out = svcid(&["check", "--online", "--json", s(&pair.dpm)]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exitCode"], 0, "{report}");
    let fetched = report["homes"][0]["userKeysFetched"][0].as_str().unwrap();
    assert!(fetched.contains(realm.signing_key().kid()), "{report}");
}

#[test]
fn check_online_reports_an_answer_that_is_not_a_key_set() {
    let realm = svcid_testkit::jwks::JwksServer::start().unwrap();
    realm.set_body("<html>login</html>");
    let pair = Pair::linked();
    let line = with_realm(&pair, &realm.server_url());
    let out = svcid(&["check", "--online", s(&pair.dpm)]);
    let text = stdout(&out);
    assert_eq!(code(&out), 2, "{text}");
    let at = format!(
        "{}:{line}: error: ataccama.authentication.keycloak.server-url: {}: the answer is not a usable key set",
        s(&pair.dpm.join("etc/application.properties")),
        realm.certs_url()
    );
    assert!(text.contains(&at), "{at}\n{text}");
    assert!(
        text.contains("fix: point it at the issuer's public keys"),
        "{text}"
    );

    // A redirect is refused, not followed, and named.
    realm.set_redirect(Some("http://127.0.0.1:9/elsewhere"));
    let out = svcid(&["check", "--online", "--json", s(&pair.dpm)]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exitCode"], 2, "{report}");
    let problem = &report["problems"][0];
    assert_eq!(problem["code"], "online.user-keys-unusable", "{report}");
    assert_eq!(problem["line"], line, "{report}");
    assert!(
        problem["message"].as_str().unwrap().contains("redirect"),
        "{report}"
    );
}

#[test]
fn check_online_reports_a_refused_port_with_the_url_line_and_fix() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let pair = Pair::linked();
    let server_url = format!("http://127.0.0.1:{port}");
    let line = with_realm(&pair, &server_url);
    let out = svcid(&["check", "--online", "--json", s(&pair.dpm)]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exitCode"], 2, "{report}");
    let problem = &report["problems"][0];
    assert_eq!(problem["code"], "online.user-keys-unreachable", "{report}");
    assert_eq!(problem["severity"], "error", "{report}");
    assert_eq!(problem["line"], line, "{report}");
    assert_eq!(
        problem["property"], "ataccama.authentication.keycloak.server-url",
        "{report}"
    );
    let message = problem["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "{server_url}/realms/{}/protocol/openid-connect/certs: ",
            svcid_testkit::jwks::REALM
        )),
        "{message}"
    );
    assert!(
        problem["fix"]
            .as_str()
            .unwrap()
            .contains("reachable from this host"),
        "{report}"
    );
}

#[test]
fn check_catches_the_registry_databases_tls_mistakes_offline() {
    use std::os::unix::fs::PermissionsExt;
    let pair = Pair::linked();
    let ca = svcid_testkit::pki::TestCa::new("db CA").unwrap();
    let client = ca.issue("one", &[]).unwrap();
    let etc = pair.dpm.join("etc");
    std::fs::write(etc.join("db-ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(etc.join("db-client.pem"), &client.cert_pem).unwrap();
    std::fs::write(etc.join("db-client.key"), &client.key_pem).unwrap();
    // Readable by everyone: PostgreSQL's own client refuses such a key.
    std::fs::set_permissions(
        etc.join("db-client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let url = "spring.datasource.url=jdbc:postgresql://db.example:5432/dpm";
    for (query, code_name, says) in [
        (
            "?sslmode=verify_full",
            "datasource.sslmode-invalid",
            "sslmode=\"verify_full\" is not a TLS mode PostgreSQL knows",
        ),
        (
            "?sslmode=verify-full",
            "datasource.root-cert-missing",
            "no sslrootcert says which CA issues it",
        ),
        (
            "?sslmode=verify-ca&sslrootcert=etc/missing.pem",
            "tls.file-unreadable",
            "etc/missing.pem",
        ),
        (
            "?sslmode=verify-full&sslrootcert=etc/db-ca.pem&sslcert=etc/db-client.pem\
             &sslkey=etc/db-client.key",
            "datasource.key-exposed",
            "(mode 0644)",
        ),
        (
            "?sslmode=verify-full&sslrootcert=etc/db-ca.pem&sslcert=etc/db-client.pem",
            "datasource.client-cert-incomplete",
            "sslcert is given without sslkey",
        ),
    ] {
        let base = read(&pair.dpm);
        write(&pair.dpm, &format!("{base}{url}{query}\n"));
        let out = svcid(&["check", s(&pair.dpm)]);
        let text = stdout(&out);
        assert_eq!(code(&out), 2, "{query}: {text}");
        let expected = format!(
            "{}:{}: error: spring.datasource.url: ",
            file(&pair.dpm).display(),
            line_of(&pair.dpm, "spring.datasource.url")
        );
        assert!(text.contains(&expected), "{expected}\nnot in:\n{text}");
        assert!(text.contains(says), "{query}: {text}");
        assert!(text.contains("; fix: "), "{text}");
        let json = svcid(&["check", "--json", s(&pair.dpm)]);
        let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(
            report["problems"][0]["code"], code_name,
            "{query}: {report}"
        );
        write(&pair.dpm, &base);
    }

    // Fixed (0600), the home is clean.
    std::fs::set_permissions(
        etc.join("db-client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let base = read(&pair.dpm);
    write(
        &pair.dpm,
        &format!(
            "{base}{url}?sslmode=verify-full&sslrootcert=etc/db-ca.pem&sslcert=etc/db-client.pem\
             &sslkey=etc/db-client.key\n"
        ),
    );
    let out = svcid(&["check", s(&pair.dpm)]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}
