//! Unit tests of the whole binding: defaults (docs/configuration.md), every property form, problems
//! reported together, the vendor manual's examples verbatim, the hostile inputs C1–C7,
//! secrecy of the generator key in every message, and no panic on garbage.
//!
//! Keys are generated at run time; nothing here touches the network or the process environment
//! (environment variables are passed to the property set as pairs).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value as Json};
use svcid_identity::jwk::GeneratorKey;
use svcid_identity::token::TokenProfile;
use svcid_logging::Level;
use svcid_properties::{Origin, PropertySet};

use crate::{
    Capability, CapabilityValue, Loaded, ModuleHome, ModuleKind, Overrides, Problem, Severity,
    bind, codes, load, names,
};

const FILE: &str = "etc/application.properties";
const HOME: &str = "/srv/module";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `text` read as the properties file of a test home (the unit tests of other modules use it too).
pub(crate) fn props(text: &str) -> PropertySet {
    let mut set = PropertySet::new();
    set.load_str(text, Path::new(FILE)).unwrap();
    set
}

fn try_bind(kind: ModuleKind, set: &PropertySet) -> Result<Loaded, Vec<Problem>> {
    bind(kind, ModuleHome::new(HOME), set)
}

fn bind_ok(kind: ModuleKind, text: &str) -> Loaded {
    match try_bind(kind, &props(text)) {
        Ok(loaded) => loaded,
        Err(problems) => panic!("expected a valid configuration, got:\n{}", lines(&problems)),
    }
}

fn bind_err(kind: ModuleKind, text: &str) -> Vec<Problem> {
    match try_bind(kind, &props(text)) {
        Ok(loaded) => panic!(
            "expected errors, the configuration loaded (warnings:\n{})",
            lines(&loaded.warnings)
        ),
        Err(problems) => {
            assert!(
                problems.iter().any(Problem::is_error),
                "Err must hold at least one error:\n{}",
                lines(&problems)
            );
            problems
        }
    }
}

fn lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}\n"))
        .collect::<String>()
}

fn generator_line(key: &GeneratorKey) -> String {
    format!("{}={}\n", names::GENERATOR_KEY, key.to_base64())
}

/// A minimal valid file: the generator key only.
fn minimal() -> (GeneratorKey, String) {
    let key = GeneratorKey::generate();
    let text = generator_line(&key);
    (key, text)
}

/// A deployment block trusting `peer`, as `svcid link` would write it.
fn deployment(name: &str, module: &str, key_name: &str, peer: &GeneratorKey) -> String {
    let prefix = format!("{}.{name}", names::DEPLOYMENTS);
    format!(
        "{prefix}.module={module}\n\
         {prefix}.security.jwt-keys.{key_name}.fingerprint={}\n\
         {prefix}.security.jwt-keys.{key_name}.content={}\n\
         {prefix}.security.jwt-keys.{key_name}.is-revoked=false\n\
         {prefix}.security.roles[0]=IMPERSONATION\n",
        peer.kid(),
        peer.public_key().content_json(),
    )
}

/// The problems about `property` (compared exactly), of the given severity.
fn about<'a>(problems: &'a [Problem], property: &str, severity: Severity) -> Vec<&'a Problem> {
    problems
        .iter()
        .filter(|p| p.property == property && p.severity == severity)
        .collect()
}

fn one_about<'a>(problems: &'a [Problem], property: &str, severity: Severity) -> &'a Problem {
    let found = about(problems, property, severity);
    assert_eq!(
        found.len(),
        1,
        "expected one {severity} about {property}, got:\n{}",
        lines(problems)
    );
    found[0]
}

/// The 1-based line of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> u32 {
    let index = text.lines().position(|l| l.contains(needle)).unwrap();
    u32::try_from(index + 1).unwrap()
}

fn file_line(problem: &Problem) -> u32 {
    match &problem.origin {
        Some(Origin::File { line, .. }) => *line,
        other => panic!("expected a file origin, got {other:?} in {problem}"),
    }
}

/// The generator key's keypair JSON as an object, to take apart.
fn keypair_object(key: &GeneratorKey) -> Map<String, Json> {
    let json = STANDARD.decode(key.to_base64()).unwrap();
    serde_json::from_slice(&json).unwrap()
}

fn base64_of(object: &Map<String, Json>) -> String {
    STANDARD.encode(serde_json::to_vec(object).unwrap())
}

/// The `d` member of the generator key.
fn private_d(key: &GeneratorKey) -> String {
    keypair_object(key)["d"].as_str().unwrap().to_owned()
}

/// Fails if any problem (its fields or its Display) holds the key's base64 value, its `d`, or a
/// 12-character piece of `d` (so no prefix of a secret leaks either).
fn assert_no_secret(problems: &[Problem], key: &GeneratorKey) {
    let base64 = key.to_base64();
    let d = private_d(key);
    let pieces: Vec<&str> = (0..=d.len() - 12).map(|i| &d[i..i + 12]).collect();
    for problem in problems {
        let shown = format!("{problem} {problem:?}");
        assert!(!shown.contains(&base64), "generator key echoed: {shown}");
        assert!(
            !pieces.iter().any(|piece| shown.contains(piece)),
            "part of d echoed: {shown}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Defaults
// ---------------------------------------------------------------------------------------------

#[test]
fn dpm_defaults_follow_spec_tables() {
    let (key, text) = minimal();
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    let s = &loaded.settings;
    assert_eq!(s.kind, ModuleKind::Dpm);
    assert_eq!(s.home.root(), Path::new(HOME));
    assert_eq!(s.grpc.port, 8531);
    assert_eq!(s.grpc.host, "0.0.0.0");
    assert_eq!(s.jwt.generator_key.kid(), key.kid());
    assert_eq!(s.jwt.token_expiration, Duration::from_secs(15));
    assert_eq!(s.jwt.impersonation_role, "IMPERSONATION");
    assert_eq!(s.jwt.admin_roles, ["DPM_ADMIN"]);
    assert_eq!(s.jwt.clock_skew, Duration::from_secs(60));
    assert_eq!(s.jwt.max_token_lifetime, Duration::from_secs(4 * 3600));
    assert!(s.jwt.require_audience);
    assert!(s.deployments.deployments().is_empty());
    assert!(s.logging.plain_console);
    assert!(!s.logging.json_console);
    assert!(s.logging.json_file);
    assert!(!s.logging.plain_file);
    assert_eq!(s.logging.dir, Path::new(HOME).join("log"));
    assert_eq!(s.logging.root_level, Level::Info);
    assert!(s.logging.levels.is_empty());
    assert!(s.dpe().is_none());
    let dpm = s.dpm().unwrap();
    assert_eq!(dpm.check_connected_interval, Duration::from_secs(1));
    assert_eq!(dpm.check_disconnected_interval, Duration::from_secs(1));
    assert!((dpm.check_disconnected_multiplier - 2.0).abs() < f64::EPSILON);
    assert_eq!(dpm.check_disconnected_max, Duration::from_secs(600));
    assert_eq!(dpm.checker_timeout, Duration::from_secs(2));

    let policy = s.verify_policy();
    assert_eq!(policy.module, "dpm");
    assert_eq!(policy.clock_skew, Duration::from_secs(60));
    assert_eq!(policy.impersonation_role, "IMPERSONATION");
}

#[test]
fn dpe_defaults_follow_spec_tables() {
    let (_, text) = minimal();
    let loaded = bind_ok(ModuleKind::Dpe, &text);
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    let s = &loaded.settings;
    assert_eq!(s.grpc.port, 8532);
    assert_eq!(s.grpc.host, "0.0.0.0");
    assert_eq!(s.jwt.token_expiration, Duration::from_secs(15));
    assert!(s.jwt.require_audience);
    assert_eq!(s.logging.dir, Path::new(HOME).join("log"));
    assert!(s.dpm().is_none());
    let dpe = s.dpe().unwrap();
    assert_eq!(dpe.dpm_host, "localhost");
    assert_eq!(dpe.dpm_port, 8531);
    assert!(
        !dpe.advertised_hostname.is_empty(),
        "defaults to the hostname"
    );
    assert_eq!(dpe.advertised_port, None, "None means the bound port");
    assert_eq!(dpe.check_connection_interval, Duration::from_millis(5000));
    assert!(dpe.environments.is_empty());
    assert!(dpe.constraints.is_empty());
    assert_eq!(s.verify_policy().module, "dpe");
}

#[test]
fn every_property_set_is_bound() {
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}\
         ataccama.server.grpc.port=0\n\
         ataccama.server.grpc.host=127.0.0.1\n\
         ataccama.authentication.internal.jwt.generator.token-expiration=30s\n\
         ataccama.authentication.internal.jwt.impersonation-role=ACT_AS\n\
         svcid.authorization.admin-roles=OPS, ROOT,\n\
         ataccama.authentication.internal.jwt.clock-skew=5s\n\
         ataccama.authentication.internal.jwt.max-token-lifetime=1h\n\
         ataccama.authentication.internal.jwt.require-audience=false\n\
         ataccama.logging.plainTextConsoleAppender=false\n\
         ataccama.logging.jsonConsoleAppender=true\n\
         ataccama.logging.jsonFileAppender=false\n\
         ataccama.logging.plainTextFileAppender=true\n\
         logging.file.path=/var/log/dpe\n\
         ataccama.client.connection.dpm.host=dpm.example\n\
         ataccama.client.connection.dpm.grpc.port=9531\n\
         ataccama.one.dpe.service.hostname=engine-1\n\
         ataccama.one.dpe.service.port=9532\n\
         ataccama.one.dpe.service.dpm.check-connection-interval=2s\n"
    );
    let s = bind_ok(ModuleKind::Dpe, &text).settings;
    assert_eq!(s.grpc.port, 0);
    assert_eq!(s.grpc.host, "127.0.0.1");
    assert_eq!(s.jwt.token_expiration, Duration::from_secs(30));
    assert_eq!(s.jwt.impersonation_role, "ACT_AS");
    assert_eq!(s.jwt.admin_roles, ["OPS", "ROOT"]);
    assert_eq!(s.jwt.clock_skew, Duration::from_secs(5));
    assert_eq!(s.jwt.max_token_lifetime, Duration::from_secs(3600));
    assert!(!s.jwt.require_audience);
    assert!(!s.logging.plain_console);
    assert!(s.logging.json_console);
    assert!(!s.logging.json_file);
    assert!(s.logging.plain_file);
    assert_eq!(s.logging.dir, Path::new("/var/log/dpe"));
    let dpe = s.dpe().unwrap();
    assert_eq!(dpe.dpm_host, "dpm.example");
    assert_eq!(dpe.dpm_port, 9531);
    assert_eq!(dpe.advertised_hostname, "engine-1");
    assert_eq!(dpe.advertised_port, Some(9532));
    assert_eq!(dpe.check_connection_interval, Duration::from_secs(2));

    let text = format!(
        "{key_line}\
         ataccama.one.dpm.registry.check-connected-interval=3s\n\
         ataccama.one.dpm.registry.check-disconnected-interval=250ms\n\
         ataccama.one.dpm.registry.check-disconnected-interval-multiplier=1.5\n\
         ataccama.one.dpm.registry.check-disconnected-interval-max=1m\n\
         ataccama.one.dpm.registry.grpc-checker-timeout=PT0.5S\n"
    );
    let s = bind_ok(ModuleKind::Dpm, &text).settings;
    let dpm = s.dpm().unwrap();
    assert_eq!(dpm.check_connected_interval, Duration::from_secs(3));
    assert_eq!(dpm.check_disconnected_interval, Duration::from_millis(250));
    assert!((dpm.check_disconnected_multiplier - 1.5).abs() < f64::EPSILON);
    assert_eq!(dpm.check_disconnected_max, Duration::from_secs(60));
    assert_eq!(dpm.checker_timeout, Duration::from_millis(500));
}

#[test]
fn relative_log_path_is_under_the_home() {
    let (_, key_line) = minimal();
    let s = bind_ok(
        ModuleKind::Dpm,
        &format!("{key_line}logging.file.path=logs\n"),
    )
    .settings;
    assert_eq!(s.logging.dir, Path::new(HOME).join("logs"));
}

#[test]
fn load_reads_the_home_on_disk() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("etc")).unwrap();
    let (key, text) = minimal();
    std::fs::write(
        home.path().join("etc/application.properties"),
        format!("{text}ataccama.server.grpc.port=7000\n"),
    )
    .unwrap();
    let overrides = Overrides {
        env: vec![("ATACCAMA_SERVER_GRPC_HOST".into(), "127.0.0.1".into())],
        args: vec!["--ataccama.authentication.internal.jwt.clock-skew=1s".into()],
    };
    let loaded = load(ModuleKind::Dpm, home.path(), &overrides).unwrap();
    let s = &loaded.settings;
    assert_eq!(s.jwt.generator_key.kid(), key.kid());
    assert_eq!(s.grpc.port, 7000);
    assert_eq!(s.grpc.host, "127.0.0.1");
    assert_eq!(s.jwt.clock_skew, Duration::from_secs(1));
    assert_eq!(s.logging.dir, home.path().join("log"));
}

#[test]
fn load_of_a_home_without_a_file_names_the_file() {
    let home = tempfile::tempdir().unwrap();
    let problems = load(ModuleKind::Dpe, home.path(), &Overrides::default()).unwrap_err();
    assert!(problems.iter().any(Problem::is_error));
    let shown = lines(&problems);
    assert!(shown.contains("application.properties"), "{shown}");
}

#[test]
fn load_reports_a_bad_argument() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("etc")).unwrap();
    let (_, text) = minimal();
    std::fs::write(home.path().join("etc/application.properties"), text).unwrap();
    let overrides = Overrides {
        env: Vec::new(),
        args: vec!["positional".into()],
    };
    let problems = load(ModuleKind::Dpm, home.path(), &overrides).unwrap_err();
    assert!(
        problems.iter().any(Problem::is_error),
        "{}",
        lines(&problems)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Every property form
// ---------------------------------------------------------------------------------------------

#[test]
fn is_revoked_is_relaxed() {
    let dpe = GeneratorKey::generate();
    for spelling in ["is-revoked", "isRevoked", "is_revoked", "IS_REVOKED"] {
        let (_, key_line) = minimal();
        let block = deployment("dpe-dev", "dpe", "key1", &dpe)
            .replace("is-revoked=false", &format!("{spelling}=true"));
        let loaded = bind_ok(ModuleKind::Dpm, &format!("{key_line}{block}"));
        assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
        let (found, found_key) = loaded.settings.deployments.lookup(dpe.kid()).unwrap();
        assert_eq!(found.name, "dpe-dev");
        assert!(found_key.revoked, "{spelling}=true must revoke");
    }
}

#[test]
fn other_segments_are_relaxed_too() {
    let dpe = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let block = deployment("dpe-dev", "dpe", "key1", &dpe)
        .replace("jwt-keys", "jwtKeys")
        .replace("is-revoked", "is_revoked");
    let text = format!(
        "{key_line}{block}Ataccama.Server.Grpc.Port=9001\n\
         ataccama.authentication.internal.jwt.generator.tokenExpiration=20s\n"
    );
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    let s = loaded.settings;
    assert_eq!(s.grpc.port, 9001);
    assert_eq!(s.jwt.token_expiration, Duration::from_secs(20));
    assert!(s.deployments.lookup(dpe.kid()).is_some());
}

#[test]
fn roles_as_indices_or_as_a_comma_list() {
    let dpe = GeneratorKey::generate();
    let roles_prefix = format!("{}.dpe-dev.security.roles", names::DEPLOYMENTS);
    let base = deployment("dpe-dev", "dpe", "key1", &dpe)
        .replace(&format!("{roles_prefix}[0]=IMPERSONATION\n"), "");
    for roles in [
        format!("{roles_prefix}[0]=IMPERSONATION\n{roles_prefix}[1]=ADMIN\n"),
        format!("{roles_prefix}[1]=ADMIN\n{roles_prefix}[0]=IMPERSONATION\n"),
        format!("{roles_prefix}=IMPERSONATION,ADMIN\n"),
        format!("{roles_prefix}= IMPERSONATION , ADMIN ,\n"),
        format!("{roles_prefix}.0=IMPERSONATION\n{roles_prefix}.1=ADMIN\n"),
    ] {
        let (_, key_line) = minimal();
        let loaded = bind_ok(ModuleKind::Dpm, &format!("{key_line}{base}{roles}"));
        assert!(
            loaded.warnings.is_empty(),
            "{roles}: {}",
            lines(&loaded.warnings)
        );
        let (found, _) = loaded.settings.deployments.lookup(dpe.kid()).unwrap();
        assert_eq!(found.roles, ["IMPERSONATION", "ADMIN"], "{roles}");
    }
    // No roles at all: an empty list.
    let (_, key_line) = minimal();
    let loaded = bind_ok(ModuleKind::Dpm, &format!("{key_line}{base}"));
    let (found, _) = loaded.settings.deployments.lookup(dpe.kid()).unwrap();
    assert!(found.roles.is_empty());
}

#[test]
fn token_profile_is_strict_unless_a_deployment_says_product() {
    let (dpe, other) = (GeneratorKey::generate(), GeneratorKey::generate());
    let profile = format!("{}.dpe-dev.security.token-profile", names::DEPLOYMENTS);
    for (line, expected) in [
        (String::new(), TokenProfile::Strict),
        (format!("{profile}=strict\n"), TokenProfile::Strict),
        (format!("{profile}=product\n"), TokenProfile::Product),
        (format!("{profile} = Product \n"), TokenProfile::Product),
        (
            format!(
                "{}.dpe-dev.security.tokenProfile=PRODUCT\n",
                names::DEPLOYMENTS
            ),
            TokenProfile::Product,
        ),
    ] {
        let (_, key_line) = minimal();
        let text = format!(
            "{key_line}{}{line}{}",
            deployment("dpe-dev", "dpe", "key1", &dpe),
            deployment("dpe-other", "dpe", "key1", &other)
        );
        let loaded = bind_ok(ModuleKind::Dpm, &text);
        assert!(
            loaded.warnings.is_empty(),
            "{line}: {}",
            lines(&loaded.warnings)
        );
        let deployments = &loaded.settings.deployments;
        assert_eq!(
            deployments.token_profile("dpe-dev"),
            Some(expected),
            "{line}"
        );
        // The profile is per deployment: the other one keeps the default.
        assert_eq!(
            deployments.token_profile("dpe-other"),
            Some(TokenProfile::Strict),
            "{line}"
        );
    }
}

#[test]
fn a_bad_token_profile_is_an_error_naming_the_property_and_line() {
    let dpe = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let profile = format!("{}.dpe-dev.security.token-profile", names::DEPLOYMENTS);
    for bad in ["products", "none", "\"product\"", "strict,product"] {
        let text = format!(
            "{key_line}{}{profile}={bad}\nataccama.server.grpc.port=http\n",
            deployment("dpe-dev", "dpe", "key1", &dpe)
        );
        let problems = bind_err(ModuleKind::Dpm, &text);
        let error = one_about(&problems, &profile, Severity::Error);
        assert_eq!(file_line(error), line_of(&text, "token-profile"), "{bad}");
        let shown = format!("{bad:?} is not a token profile");
        assert!(error.message.contains(&shown), "{error}");
        let fix = error.fix.as_deref().unwrap();
        assert!(fix.contains("strict") && fix.contains("product"), "{fix}");
        assert!(error.to_string().contains(FILE), "{error}");
        // Reported together with the other problems of the file.
        one_about(&problems, names::GRPC_PORT, Severity::Error);
    }
    // An empty value names no profile either.
    let text = format!(
        "{key_line}{}{profile}=\n",
        deployment("dpe-dev", "dpe", "key1", &dpe)
    );
    one_about(&bind_err(ModuleKind::Dpe, &text), &profile, Severity::Error);
}

#[test]
fn a_token_profile_at_the_wrong_depth_says_where_it_belongs() {
    let dpe = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let misplaced = format!("{}.dpe-dev.token-profile", names::DEPLOYMENTS);
    let text = format!(
        "{key_line}{}{misplaced}=product\n",
        deployment("dpe-dev", "dpe", "key1", &dpe)
    );
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    let warning = one_about(&loaded.warnings, &misplaced, Severity::Warning);
    assert!(
        warning
            .fix
            .as_deref()
            .unwrap()
            .contains("dpe-dev.security.token-profile"),
        "{warning}"
    );
    assert_eq!(
        loaded.settings.deployments.token_profile("dpe-dev"),
        Some(TokenProfile::Strict)
    );
}

#[test]
fn environment_beats_the_file_and_arguments_beat_the_environment() {
    let (_, key_line) = minimal();
    let text = format!("{key_line}ataccama.server.grpc.port=8000\n");

    let mut set = props(&text);
    set.add_env([("ATACCAMA_SERVER_GRPC_PORT".to_owned(), "9000".to_owned())]);
    assert_eq!(
        try_bind(ModuleKind::Dpm, &set).unwrap().settings.grpc.port,
        9000
    );

    set.add_args(&["--ataccama.server.grpc.port=9100".to_owned()])
        .unwrap();
    assert_eq!(
        try_bind(ModuleKind::Dpm, &set).unwrap().settings.grpc.port,
        9100
    );
}

#[test]
fn environment_and_arguments_reach_deployments() {
    let dpe = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let mut set = props(&format!(
        "{key_line}{}",
        deployment("dpe-dev", "dpe", "key1", &dpe)
    ));
    set.add_env([(
        "ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPEDEV_SECURITY_JWTKEYS_KEY1_ISREVOKED".to_owned(),
        "true".to_owned(),
    )]);
    let loaded = try_bind(ModuleKind::Dpm, &set).unwrap();
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    assert!(
        loaded
            .settings
            .deployments
            .lookup(dpe.kid())
            .unwrap()
            .1
            .revoked
    );

    set.add_args(&[format!(
        "--{}.dpe-dev.security.jwt-keys.key1.isRevoked=false",
        names::DEPLOYMENTS
    )])
    .unwrap();
    let loaded = try_bind(ModuleKind::Dpm, &set).unwrap();
    assert!(
        !loaded
            .settings
            .deployments
            .lookup(dpe.kid())
            .unwrap()
            .1
            .revoked
    );
}

#[test]
fn problems_from_the_environment_and_arguments_say_so() {
    let (_, key_line) = minimal();
    let mut set = props(&key_line);
    set.add_env([("ATACCAMA_SERVER_GRPC_PORT".to_owned(), "ninety".to_owned())]);
    let problems = try_bind(ModuleKind::Dpm, &set).unwrap_err();
    let shown = lines(&problems);
    assert!(
        shown.contains("environment variable ATACCAMA_SERVER_GRPC_PORT"),
        "{shown}"
    );

    let mut set = props(&key_line);
    set.add_args(&["--ataccama.server.grpc.port=ninety".to_owned()])
        .unwrap();
    let problems = try_bind(ModuleKind::Dpm, &set).unwrap_err();
    let shown = lines(&problems);
    assert!(
        shown.contains("command-line argument --ataccama.server.grpc.port"),
        "{shown}"
    );
}

#[test]
fn spring_durations() {
    for (raw, expected) in [
        ("15s", Duration::from_secs(15)),
        ("500ms", Duration::from_millis(500)),
        ("PT15S", Duration::from_secs(15)),
        ("pt1m30s", Duration::from_secs(90)),
        ("10m", Duration::from_secs(600)),
        ("2d", Duration::from_secs(2 * 86_400)),
        ("1500", Duration::from_millis(1500)),
        (" 2s ", Duration::from_secs(2)),
    ] {
        let (_, key_line) = minimal();
        let text =
            format!("{key_line}ataccama.one.dpe.service.dpm.check-connection-interval={raw}\n");
        let s = bind_ok(ModuleKind::Dpe, &text).settings;
        assert_eq!(
            s.dpe().unwrap().check_connection_interval,
            expected,
            "{raw}"
        );
    }
    // Bare numbers are milliseconds on the JWT durations too.
    let (_, key_line) = minimal();
    let text = format!("{key_line}ataccama.authentication.internal.jwt.clock-skew=2500\n");
    let s = bind_ok(ModuleKind::Dpm, &text).settings;
    assert_eq!(s.jwt.clock_skew, Duration::from_millis(2500));
}

#[test]
fn bad_durations_are_errors_naming_the_forms() {
    for raw in ["fifteen", "15x", "-5s", "PT", ""] {
        let (_, key_line) = minimal();
        let text = format!("{key_line}{}={raw}\n", names::CHECK_CONNECTED_INTERVAL);
        let problems = bind_err(ModuleKind::Dpm, &text);
        let problem = one_about(&problems, names::CHECK_CONNECTED_INTERVAL, Severity::Error);
        assert_eq!(file_line(problem), 2, "{problem}");
        assert!(problem.to_string().contains("15s"), "{problem}");
    }
    // Zero is refused where a positive interval is needed.
    let (_, key_line) = minimal();
    let problems = bind_err(
        ModuleKind::Dpm,
        &format!("{key_line}{}=0s\n", names::CHECKER_TIMEOUT),
    );
    one_about(&problems, names::CHECKER_TIMEOUT, Severity::Error);
}

#[test]
fn logging_levels_root_and_targets() {
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}logging.level.root=warn\n\
         logging.level.svcid_dpm=DEBUG\n\
         logging.level.com.ataccama.dpm.registry=trace\n\
         logging.level.tonic=OFF\n"
    );
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    let logging = loaded.settings.logging;
    assert_eq!(logging.root_level, Level::Warn);
    assert_eq!(
        logging.levels,
        vec![
            ("svcid_dpm".to_owned(), Level::Debug),
            ("com.ataccama.dpm.registry".to_owned(), Level::Trace),
            ("tonic".to_owned(), Level::Off),
        ]
    );

    let text = format!("{key_line}logging.level.root=LOUD\nlogging.level.svcid=chatty\n");
    let problems = bind_err(ModuleKind::Dpm, &text);
    assert_eq!(
        file_line(one_about(&problems, "logging.level.root", Severity::Error)),
        2
    );
    assert_eq!(
        file_line(one_about(&problems, "logging.level.svcid", Severity::Error)),
        3
    );
}

#[test]
fn bracketed_log_targets_stay_whole() {
    let (_, key_line) = minimal();
    let text = format!("{key_line}logging.level[com.Foo.Bar]=debug\nlogging..level.x=warn\n");
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    assert_eq!(
        loaded.settings.logging.levels,
        vec![
            ("com.Foo.Bar".to_owned(), Level::Debug),
            ("x".to_owned(), Level::Warn)
        ]
    );
}

#[test]
fn name_segments_follow_the_properties_reader() {
    let texts = |name| {
        crate::bind::segments(name)
            .into_iter()
            .map(|s| s.text)
            .collect::<Vec<_>>()
    };
    assert_eq!(texts("a.b[0].c"), ["a", "b", "0", "c"]);
    assert_eq!(
        texts("logging.level[com.Foo]"),
        ["logging", "level", "com.Foo"]
    );
    assert_eq!(texts("..a..b."), ["a", "b"]);
    assert_eq!(texts("a[unclosed.x"), ["a", "unclosed.x"]);
    assert_eq!(texts("a[]b"), ["a", "", "b"]);
    assert!(texts("").is_empty());
    assert!(crate::bind::segments("roles.0")[1].is_index());
    assert!(!crate::bind::segments("roles.x")[1].is_index());
}

#[test]
fn constraints_and_environments() {
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}constraints.gpu=true\n\
         constraints.spark-version=3.5\n\
         ataccama.one.dpe.environment=dev, test ,,prod\n"
    );
    let loaded = bind_ok(ModuleKind::Dpe, &text);
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    let dpe = loaded.settings.dpe().unwrap().clone();
    assert_eq!(dpe.environments, ["dev", "test", "prod"]);
    assert_eq!(dpe.constraints.len(), 2);
    assert_eq!(
        dpe.constraints["gpu"],
        Capability::One(CapabilityValue::Value("true".into()))
    );
    assert_eq!(
        dpe.constraints["spark-version"],
        Capability::One(CapabilityValue::Value("3.5".into()))
    );

    // A list given by indices works too.
    let text = format!(
        "{key_line}ataccama.one.dpe.environment[0]=dev\nataccama.one.dpe.environment[1]=prod\n"
    );
    let dpe = bind_ok(ModuleKind::Dpe, &text).settings;
    assert_eq!(dpe.dpe().unwrap().environments, ["dev", "prod"]);
}

#[test]
fn problems_carry_their_codes() {
    let peer = GeneratorKey::generate();
    let keys = format!("{}.dpm-dev.security.jwt-keys", names::DEPLOYMENTS);
    let text = format!(
        "{}=abc
         {}=15
         logging.level.root=LOUD
         ataccama.server.grpc.prot=1
         {}.dpm-dev.module=dpm
         {keys}.key.fingerprint=other
         {keys}.key.content={}
         {keys}.key.isRevokd=true
         {keys}.key.colour=blue
",
        names::GRPC_PORT,
        names::TOKEN_EXPIRATION,
        names::DEPLOYMENTS,
        peer.public_key().content_json(),
    );
    let problems = bind_err(ModuleKind::Dpe, &text);
    let named: Vec<_> = problems.iter().map(|p| (p.code, p.severity)).collect();
    assert_eq!(
        named,
        [
            (codes::NOT_PORT, Severity::Error),
            (codes::TOKEN_EXPIRATION_BARE_NUMBER, Severity::Error),
            (codes::NOT_LOG_LEVEL, Severity::Error),
            (codes::UNKNOWN_PROPERTY, Severity::Warning),
            (codes::FINGERPRINT_DIFFERS_FROM_KID, Severity::Warning),
            (codes::MISSPELT_REVOCATION, Severity::Warning),
            (codes::UNKNOWN_FIELD, Severity::Warning),
            (codes::GENERATOR_KEY_MISSING, Severity::Error),
        ],
        "{}",
        lines(&problems)
    );
}

#[test]
fn typed_constraints_with_dotted_keys() {
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}\
         constraints.com.ataccama.dpe.plugin.dataconnect.jdbc.connectionstring=[pattern]jdbc:oracle:.*,jdbc:postgresql:.*\n\
         constraints.cores=[long]16\n\
         constraints.gpu=[boolean]true\n\
         constraints.gpu.model=a100\n\
         constraints[x.y]=[double]0.5,1.5\n\
         constraints.none=\n\
         constraints.comma=a\\\\,b,\"c,d\"\n"
    );
    let loaded = bind_ok(ModuleKind::Dpe, &text);
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    let dpe = loaded.settings.dpe().unwrap().clone();
    use CapabilityValue::{Boolean, Double, Long, Pattern, Value};
    let expected = [
        (
            "com.ataccama.dpe.plugin.dataconnect.jdbc.connectionstring",
            Capability::Enumeration(vec![
                Pattern("jdbc:oracle:.*".into()),
                Pattern("jdbc:postgresql:.*".into()),
            ]),
        ),
        (
            "comma",
            Capability::Enumeration(vec![Value("a,b".into()), Value("c,d".into())]),
        ),
        ("cores", Capability::One(Long(16))),
        ("gpu", Capability::One(Boolean(true))),
        ("gpu.model", Capability::One(Value("a100".into()))),
        ("none", Capability::Enumeration(Vec::new())),
        (
            "x.y",
            Capability::Enumeration(vec![Double(0.5), Double(1.5)]),
        ),
    ];
    let got: Vec<(&str, &Capability)> = dpe
        .constraints
        .iter()
        .map(|(k, c)| (k.as_str(), c))
        .collect();
    let expected: Vec<(&str, &Capability)> = expected.iter().map(|(k, c)| (*k, c)).collect();
    assert_eq!(got, expected);
}

#[test]
fn the_readmes_constraints_example_binds_as_it_says() {
    let readme = include_str!("../../../docs/configuration.md");
    let section = &readme[readme
        .find("**Constraints** (the product's syntax)")
        .unwrap()..];
    let start = section.find("```\n").unwrap() + 4;
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let (_, key_line) = minimal();
    let loaded = bind_ok(ModuleKind::Dpe, &format!("{key_line}{example}"));
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    let c = &loaded.settings.dpe().unwrap().constraints;
    use CapabilityValue::{Boolean, Long, Value};
    let strings = |items: &[&str]| {
        Capability::Enumeration(items.iter().map(|s| Value((*s).to_owned())).collect())
    };
    assert_eq!(c.len(), 7, "{c:?}");
    assert_eq!(c["cores"], Capability::One(Long(16)));
    assert_eq!(c["gpu"], Capability::One(Boolean(true)));
    assert_eq!(c["spark-version"], Capability::One(Value("3.5".into())));
    assert_eq!(c["tier"], strings(&["gold", "silver"]));
    assert_eq!(c["title"], Capability::One(Value("[beta] engine".into())));
    assert_eq!(c["label"], strings(&["a, b", "c,d"]));
    assert!(c.contains_key("com.ataccama.dpe.plugin.dataconnect.jdbc.connectionstring"));
}

#[test]
fn constraints_from_environment_and_arguments() {
    let (_, key_line) = minimal();
    let mut set = props(&format!(
        "{key_line}constraints.cores=[long]4\nconstraints.spark-version=3.4\n"
    ));
    set.add_env([
        ("CONSTRAINTS_CORES".to_owned(), "[long]8".to_owned()),
        ("CONSTRAINTS_GPU".to_owned(), "[boolean]false".to_owned()),
        ("CONSTRAINTS_SPARKVERSION".to_owned(), "3.5".to_owned()),
    ]);
    set.add_args(&["--constraints.a.b=[integer]1".to_owned()])
        .unwrap();
    let dpe = try_bind(ModuleKind::Dpe, &set).unwrap().settings;
    let constraints = &dpe.dpe().unwrap().constraints;
    let keys: Vec<&str> = constraints.keys().map(String::as_str).collect();
    assert_eq!(keys, ["a.b", "cores", "gpu", "spark-version"]);
    assert_eq!(
        constraints["cores"],
        Capability::One(CapabilityValue::Long(8))
    );
    assert_eq!(
        constraints["spark-version"],
        Capability::One(CapabilityValue::Value("3.5".into()))
    );
    assert_eq!(constraints["a.b"], Capability::One(CapabilityValue::Int(1)));
}

#[test]
fn bad_constraints_are_errors_with_line_property_and_fix() {
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}\
         constraints.ok=[long]1\n\
         constraints.cores=[long]4,x\n\
         constraints.odd=[xyz]a\n\
         constraints.open=\"a\n\
         constraints.gap=a,,b\n\
         constraints.flags=[boolean]yes,no\n"
    );
    let problems = bind_err(ModuleKind::Dpe, &text);
    let cores = one_about(&problems, "constraints.cores", Severity::Error);
    assert_eq!(file_line(cores), line_of(&text, "constraints.cores"));
    assert_eq!(cores.code, codes::CONSTRAINT_NOT_OF_TYPE);
    assert_eq!(
        cores.to_string(),
        format!(
            "{FILE}:{}: error: constraints.cores: \"[long]4,x\": element 2 \"x\" is not a long; \
             fix: use whole numbers from -9223372036854775808 to 9223372036854775807, e.g. [long]4,8",
            line_of(&text, "constraints.cores")
        )
    );
    let odd = one_about(&problems, "constraints.odd", Severity::Error);
    assert_eq!(odd.code, codes::CONSTRAINT_UNKNOWN_TYPE);
    assert!(
        odd.message
            .contains("\"[xyz]\" at the start is not a type specifier"),
        "{odd}"
    );
    assert!(odd.fix.as_deref().unwrap().contains("[string]"), "{odd}");
    let open = one_about(&problems, "constraints.open", Severity::Error);
    assert_eq!(open.code, codes::CONSTRAINT_MALFORMED);
    let gap = one_about(&problems, "constraints.gap", Severity::Error);
    assert_eq!(gap.code, codes::CONSTRAINT_MALFORMED);
    assert!(gap.message.ends_with("element 2 is empty"), "{gap}");
    // Every bad element is reported, each on its own.
    let flags = about(&problems, "constraints.flags", Severity::Error);
    assert_eq!(flags.len(), 2, "{}", lines(&problems));
    assert!(about(&problems, "constraints.ok", Severity::Error).is_empty());
    assert_eq!(problems.len(), 6, "{}", lines(&problems));
}

#[test]
fn a_constraint_without_a_name_is_a_warning() {
    let (_, key_line) = minimal();
    let loaded = bind_ok(ModuleKind::Dpe, &format!("{key_line}constraints=gpu\n"));
    assert_eq!(loaded.warnings.len(), 1, "{}", lines(&loaded.warnings));
    assert_eq!(loaded.warnings[0].code, codes::CONSTRAINT_IGNORED);
    assert!(loaded.settings.dpe().unwrap().constraints.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. All problems reported together
// ---------------------------------------------------------------------------------------------

#[test]
fn every_problem_is_reported_at_once_with_file_line_property_and_fix() {
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}\
         ataccama.server.grpc.port=eighty\n\
         ataccama.authentication.internal.jwt.require-audience=yes\n\
         # a comment between the mistakes\n\
         ataccama.one.dpm.registry.check-disconnected-interval-multiplier=0.5\n\
         ataccama.one.dpm.registry.grpc-checker-timeout=soon\n\
         ataccama.server.grpc.host=not an address\n"
    );
    let problems = bind_err(ModuleKind::Dpm, &text);
    let expected = [
        (names::GRPC_PORT, 2),
        (names::REQUIRE_AUDIENCE, 3),
        (names::CHECK_DISCONNECTED_MULTIPLIER, 5),
        (names::CHECKER_TIMEOUT, 6),
        (names::GRPC_HOST, 7),
    ];
    assert_eq!(problems.len(), expected.len(), "{}", lines(&problems));
    for (property, line) in expected {
        let problem = one_about(&problems, property, Severity::Error);
        let shown = problem.to_string();
        assert!(
            shown.starts_with(&format!("{FILE}:{line}: error: {property}: ")),
            "{shown}"
        );
        assert!(shown.contains("; fix: "), "{shown}");
        assert!(!shown.contains('\n'), "one line: {shown}");
    }
    // In file order, so an operator can fix them top to bottom.
    let order: Vec<u32> = problems.iter().map(file_line).collect();
    assert!(order.is_sorted(), "{order:?}");
}

#[test]
fn errors_in_keys_and_elsewhere_come_together() {
    let dpe = GeneratorKey::generate();
    let text = format!(
        "{}=not base64 at all!\n\
         ataccama.server.grpc.port=70000\n\
         {}\
         {}.dpe-dev.security.jwt-keys.key1.content={{kty\":\"EC\"}}\n",
        names::GENERATOR_KEY,
        deployment("dpe-dev", "dpe", "key1", &dpe).replace("module=dpe", "environment=dev"),
        names::DEPLOYMENTS,
    );
    let problems = bind_err(ModuleKind::Dpm, &text);
    one_about(&problems, names::GENERATOR_KEY, Severity::Error);
    one_about(&problems, names::GRPC_PORT, Severity::Error);
    one_about(
        &problems,
        &format!("{}.dpe-dev.module", names::DEPLOYMENTS),
        Severity::Error,
    );
    one_about(
        &problems,
        &format!(
            "{}.dpe-dev.security.jwt-keys.key1.content",
            names::DEPLOYMENTS
        ),
        Severity::Error,
    );
}

#[test]
fn a_missing_generator_key_is_an_error_with_a_fix() {
    for text in [String::new(), format!("{}=\n", names::GENERATOR_KEY)] {
        let problems = bind_err(ModuleKind::Dpe, &text);
        let problem = one_about(&problems, names::GENERATOR_KEY, Severity::Error);
        assert!(
            problem.fix.as_deref().unwrap().contains("svcid"),
            "{problem}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. The manual's examples, verbatim
// ---------------------------------------------------------------------------------------------

/// Lines 76–81 of `ataccama-generate-jwt-keys.txt`, copied exactly (indentation included).
const MANUAL_DPM_BLOCK: &str = r#"
      ataccama.one.platform.deployments.dpm-dev.module=dpm
      ataccama.one.platform.deployments.dpm-dev.environment=dev
      ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.fingerprint=vcjAli5Xm_pvtE8ItBkd3aT_FWi_23WieMf5f-lppBI
      ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.content={kty":"EC",crv":"P-256","kid":"vcjAli5Xm_pvtE8ItBkd3aT_FWi_23WieMf5f-lppBI","x":"Hbs53V5zC-1DjNf5RtJ1bNHlxvzM5jST7J1ADVePV9g","y":"4pVfzrF7FMHt_Xx2FgLauvLZuJqbpL9crdOxvTXWb64","alg":"ES256"}
      ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.is-revoked=false
      ataccama.one.platform.deployments.dpm-dev.security.roles[0]=IMPERSONATION
"#;

/// Lines 106–111 of `ataccama-generate-jwt-keys.txt`, copied exactly (indentation included).
const MANUAL_DPE_BLOCK: &str = r#"
    ataccama.one.platform.deployments.dpe-dev.module=dpe
    ataccama.one.platform.deployments.dpe-dev.environment=dev
    ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.fingerprint=kHSzWkPiZKfSKAgdIkCdXfAAKs7x23jszQLkTOzQTEM
    ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.content={"kty":"EC","crv":"P-256","kid":"KBv0lrEO88ISAnmwXn6Y5jYjG9TvemuZA0yQlq7QpG0","x":"KsJKpmDA03Js3o8JWWiH5tyUfv80kaJy60_7BOrwmKo","y":"7kfcrUzl95MQEZnCjhWA0dIIhzK-jvdaAtGRAuBzZbk","alg":"ES256"}
    ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.is-revoked=false
    ataccama.one.platform.deployments.dpe-dev.security.roles[0]=IMPERSONATION
"#;

#[test]
fn manual_first_block_is_an_error_naming_content_and_the_missing_quotes() {
    let (_, key_line) = minimal();
    let text = format!("{key_line}{MANUAL_DPM_BLOCK}");
    let problems = bind_err(ModuleKind::Dpe, &text);
    let content = "ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.content";
    let problem = one_about(&problems, content, Severity::Error);
    assert_eq!(file_line(problem), line_of(&text, "key.content="));
    let shown = problem.to_string();
    assert!(
        shown.starts_with(&format!(
            "{FILE}:{}: error: {content}: ",
            file_line(problem)
        )),
        "{shown}"
    );
    assert!(shown.contains("quotes"), "{shown}");
    assert!(shown.contains("kty") && shown.contains("crv"), "{shown}");
    // The broken content is the only error: the rest of the block is fine.
    assert_eq!(
        problems.iter().filter(|p| p.is_error()).count(),
        1,
        "{}",
        lines(&problems)
    );
}

#[test]
fn manual_first_block_with_the_quotes_restored_loads() {
    let (_, key_line) = minimal();
    let fixed = MANUAL_DPM_BLOCK
        .replace("{kty\"", "{\"kty\"")
        .replace(",crv\"", ",\"crv\"");
    let loaded = bind_ok(ModuleKind::Dpe, &format!("{key_line}{fixed}"));
    let (dpm, key) = loaded
        .settings
        .deployments
        .lookup("vcjAli5Xm_pvtE8ItBkd3aT_FWi_23WieMf5f-lppBI")
        .unwrap();
    assert_eq!(dpm.module, "dpm");
    assert_eq!(dpm.environment.as_deref(), Some("dev"));
    assert_eq!(dpm.roles, ["IMPERSONATION"]);
    assert!(!key.revoked);
    // The vendor manual's sample kid is not the key's thumbprint.
    assert_eq!(loaded.warnings.len(), 1, "{}", lines(&loaded.warnings));
    assert!(loaded.warnings[0].message.contains("thumbprint"));
}

#[test]
fn manual_second_block_warns_fingerprint_differs_from_kid() {
    let (_, key_line) = minimal();
    let text = format!("{key_line}{MANUAL_DPE_BLOCK}");
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    let prefix = "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1";
    let warnings = &loaded.warnings;

    let differs = one_about(
        warnings,
        &format!("{prefix}.fingerprint"),
        Severity::Warning,
    );
    assert_eq!(file_line(differs), line_of(&text, "key1.fingerprint="));
    let shown = differs.to_string();
    assert!(
        shown.contains("kHSzWkPiZKfSKAgdIkCdXfAAKs7x23jszQLkTOzQTEM"),
        "{shown}"
    );
    assert!(
        shown.contains("KBv0lrEO88ISAnmwXn6Y5jYjG9TvemuZA0yQlq7QpG0"),
        "{shown}"
    );

    let thumbprint = one_about(warnings, &format!("{prefix}.content"), Severity::Warning);
    assert_eq!(file_line(thumbprint), line_of(&text, "key1.content="));
    assert!(thumbprint.message.contains("thumbprint"), "{thumbprint}");
    assert_eq!(warnings.len(), 2, "{}", lines(warnings));

    // The deployment is bound under the configured fingerprint, as the product would.
    let (dpe, key) = loaded
        .settings
        .deployments
        .lookup("kHSzWkPiZKfSKAgdIkCdXfAAKs7x23jszQLkTOzQTEM")
        .unwrap();
    assert_eq!(dpe.name, "dpe-dev");
    assert_eq!(dpe.module, "dpe");
    assert_eq!(dpe.roles, ["IMPERSONATION"]);
    assert!(!key.revoked);
}

#[test]
fn the_shipped_products_is_revoked_spelling_is_accepted() {
    let (_, key_line) = minimal();
    let block = MANUAL_DPE_BLOCK.replace("key1.is-revoked=false", "key1.isRevoked=true");
    let loaded = bind_ok(ModuleKind::Dpm, &format!("{key_line}{block}"));
    let (_, key) = loaded
        .settings
        .deployments
        .lookup("kHSzWkPiZKfSKAgdIkCdXfAAKs7x23jszQLkTOzQTEM")
        .unwrap();
    assert!(key.revoked);
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| !w.property.contains("isRevoked")),
        "{}",
        lines(&loaded.warnings)
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Hostile configuration C1–C7 (docs/security.md)
// ---------------------------------------------------------------------------------------------

fn content_property(deployment: &str, key: &str) -> String {
    format!(
        "{}.{deployment}.security.jwt-keys.{key}.content",
        names::DEPLOYMENTS
    )
}

/// A DPM file trusting `dpe-dev` whose key1 content is `content`.
fn with_content(content: &str) -> (String, String) {
    let peer = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let block = deployment("dpe-dev", "dpe", "key1", &peer)
        .replace(&peer.public_key().content_json(), content);
    (
        format!("{key_line}{block}"),
        content_property("dpe-dev", "key1"),
    )
}

#[test]
fn c3_private_content_is_a_loud_warning_naming_the_deployment() {
    let peer = GeneratorKey::generate();
    let keypair = serde_json::to_string(&keypair_object(&peer)).unwrap();
    let (_, key_line) = minimal();
    let block = deployment("dpe-dev", "dpe", "key1", &peer)
        .replace(&peer.public_key().content_json(), &keypair);
    let loaded = bind_ok(ModuleKind::Dpm, &format!("{key_line}{block}"));
    let warning = one_about(
        &loaded.warnings,
        &content_property("dpe-dev", "key1"),
        Severity::Warning,
    );
    let shown = warning.to_string();
    assert!(shown.contains("SECURITY"), "{shown}");
    assert!(shown.contains("PRIVATE"), "{shown}");
    assert!(warning.message.contains("dpe-dev"), "{shown}");
    assert_no_secret(&loaded.warnings, &peer);
}

#[test]
fn c4_keys_that_are_not_p256_es256_points_are_errors() {
    let peer = GeneratorKey::generate();
    let public: Map<String, Json> =
        serde_json::from_str(&peer.public_key().content_json()).unwrap();
    let with = |member: &str, value: Json| {
        let mut object = public.clone();
        object.insert(member.to_owned(), value);
        serde_json::to_string(&object).unwrap()
    };
    // y of another key: almost surely not on the curve with this x.
    let other: Map<String, Json> =
        serde_json::from_str(&GeneratorKey::generate().public_key().content_json()).unwrap();
    let cases = [
        ("not on the curve", with("y", other["y"].clone())),
        (
            "P-384 coordinates labelled P-256",
            with("x", URL_SAFE_NO_PAD.encode([7u8; 48]).into()),
        ),
        ("kty RSA", with("kty", "RSA".into())),
        ("alg ES384", with("alg", "ES384".into())),
        ("crv P-384", with("crv", "P-384".into())),
        ("no alg", {
            let mut object = public.clone();
            object.remove("alg");
            serde_json::to_string(&object).unwrap()
        }),
    ];
    for (what, content) in cases {
        let (text, property) = with_content(&content);
        let problems = bind_err(ModuleKind::Dpm, &text);
        let problem = one_about(&problems, &property, Severity::Error);
        assert_eq!(file_line(problem), line_of(&text, "content="), "{what}");
        assert!(problem.to_string().contains(&property), "{what}: {problem}");
    }
    // base64 of a valid content is accepted.
    let (text, _) = with_content(&STANDARD.encode(peer.public_key().content_json()));
    bind_ok(ModuleKind::Dpm, &text);
}

#[test]
fn c5_bad_generator_keys_are_errors_naming_the_property_without_echoing_it() {
    let key = GeneratorKey::generate();
    let full = keypair_object(&key);
    let without = |member: &str| {
        let mut object = full.clone();
        object.remove(member);
        base64_of(&object)
    };
    let raw_json = serde_json::to_string(&full).unwrap();
    let cases = [
        ("not base64", format!("{}!!", key.to_base64())),
        ("raw JSON instead of base64", raw_json.clone()),
        ("base64 of not JSON", STANDARD.encode("hello, world")),
        ("base64 of a JSON array", STANDARD.encode("[1,2,3]")),
        ("without d", without("d")),
        ("without alg", without("alg")),
        ("without kid", without("kid")),
        ("with alg ES384", {
            let mut object = full.clone();
            object.insert("alg".into(), "ES384".into());
            base64_of(&object)
        }),
        ("d of another key", {
            let mut object = full.clone();
            object.insert(
                "d".into(),
                keypair_object(&GeneratorKey::generate())["d"].clone(),
            );
            base64_of(&object)
        }),
    ];
    for (what, value) in cases {
        let text = format!("{}={value}\n", names::GENERATOR_KEY);
        let problems = bind_err(ModuleKind::Dpe, &text);
        let problem = one_about(&problems, names::GENERATOR_KEY, Severity::Error);
        assert_eq!(file_line(problem), 1, "{what}");
        let shown = problem.to_string();
        assert!(
            shown.starts_with(&format!("{FILE}:1: error: {}: ", names::GENERATOR_KEY)),
            "{what}: {shown}"
        );
        assert!(!shown.contains(&value), "{what}: value echoed: {shown}");
        assert_no_secret(&problems, &key);
    }
}

#[test]
fn generator_key_forms_accepted() {
    let key = GeneratorKey::generate();
    let full = keypair_object(&key);
    let json = serde_json::to_vec(&full).unwrap();
    let set = serde_json::to_vec(&serde_json::json!({ "keys": [full] })).unwrap();
    for value in [
        STANDARD.encode(&json),
        URL_SAFE_NO_PAD.encode(&json),
        STANDARD.encode(&set),
        // Line breaks inside a value, continued with `\` as .properties files allow.
        {
            let b64 = STANDARD.encode(&json);
            let (a, b) = b64.split_at(40);
            format!("{a}\\\n    {b}")
        },
    ] {
        let text = format!("{}={value}\n", names::GENERATOR_KEY);
        let loaded = bind_ok(ModuleKind::Dpm, &text);
        assert_eq!(loaded.settings.jwt.generator_key.kid(), key.kid());
    }
}

#[test]
fn c6_the_same_fingerprint_under_two_deployments_is_an_error_naming_both() {
    let peer = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}{}{}",
        deployment("dpe-one", "dpe", "key1", &peer),
        deployment("dpe-two", "dpe", "key1", &peer),
    );
    let problems = bind_err(ModuleKind::Dpm, &text);
    let errors: Vec<&Problem> = problems.iter().filter(|p| p.is_error()).collect();
    assert_eq!(errors.len(), 1, "{}", lines(&problems));
    let shown = errors[0].to_string();
    assert!(
        shown.contains("dpe-one") && shown.contains("dpe-two"),
        "{shown}"
    );
    assert!(shown.contains(peer.kid()), "{shown}");
    assert!(errors[0].origin.is_some(), "{shown}");

    // Within one deployment too.
    let block = deployment("dpe-one", "dpe", "key1", &peer);
    let second = block
        .lines()
        .filter(|l| l.contains("jwt-keys"))
        .map(|l| format!("{}\n", l.replace("key1", "key2")))
        .collect::<String>();
    let problems = bind_err(ModuleKind::Dpm, &format!("{key_line}{block}{second}"));
    let shown = lines(&problems);
    assert!(shown.contains("key1") && shown.contains("key2"), "{shown}");
}

#[test]
fn c7_deployment_without_module_is_an_error() {
    let peer = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let block = deployment("dpe-dev", "dpe", "key1", &peer)
        .lines()
        .filter(|l| !l.contains(".module="))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let problems = bind_err(ModuleKind::Dpm, &format!("{key_line}{block}"));
    let problem = one_about(
        &problems,
        &format!("{}.dpe-dev.module", names::DEPLOYMENTS),
        Severity::Error,
    );
    assert!(problem.fix.as_deref().unwrap().contains("dpe-dev.module"));

    let empty = deployment("dpe-dev", "dpe", "key1", &peer).replace("module=dpe", "module=");
    let problems = bind_err(ModuleKind::Dpm, &format!("{key_line}{empty}"));
    let problem = one_about(
        &problems,
        &format!("{}.dpe-dev.module", names::DEPLOYMENTS),
        Severity::Error,
    );
    assert_eq!(file_line(problem), 2);
}

#[test]
fn c7_typo_under_a_deployment_is_a_warning_with_did_you_mean() {
    let peer = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let block = deployment("dpe-dev", "dpe", "key1", &peer).replace("is-revoked", "is-revokd");
    let text = format!("{key_line}{block}");
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    let property = format!(
        "{}.dpe-dev.security.jwt-keys.key1.is-revokd",
        names::DEPLOYMENTS
    );
    let warning = one_about(&loaded.warnings, &property, Severity::Warning);
    assert_eq!(file_line(warning), line_of(&text, "is-revokd"));
    assert!(
        warning.to_string().contains("did you mean is-revoked?"),
        "{warning}"
    );
}

#[test]
fn a_field_at_the_wrong_depth_says_where_it_belongs() {
    let peer = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}{}{}.dpe-dev.security.is-revoked=true\n",
        deployment("dpe-dev", "dpe", "key1", &peer),
        names::DEPLOYMENTS
    );
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    let warning = one_about(
        &loaded.warnings,
        &format!("{}.dpe-dev.security.is-revoked", names::DEPLOYMENTS),
        Severity::Warning,
    );
    assert!(
        warning
            .to_string()
            .contains("security.jwt-keys.<key>.is-revoked"),
        "{warning}"
    );
}

#[test]
fn unknown_ataccama_property_is_a_warning_with_did_you_mean() {
    let (_, key_line) = minimal();
    let text = format!("{key_line}ataccama.server.grpc.prot=9000\n");
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    let warning = one_about(
        &loaded.warnings,
        "ataccama.server.grpc.prot",
        Severity::Warning,
    );
    assert_eq!(file_line(warning), 2);
    assert!(
        warning
            .to_string()
            .contains("did you mean ataccama.server.grpc.port?"),
        "{warning}"
    );
    assert_eq!(loaded.settings.grpc.port, 8531, "the typo is not bound");

    // Properties of other products and the environment are left alone.
    let mut set = props(&format!("{key_line}spring.application.name=dpm\n"));
    set.add_env([("ATACCAMA_SOMETHING_ELSE".to_owned(), "1".to_owned())]);
    let loaded = try_bind(ModuleKind::Dpm, &set).unwrap();
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
}

#[test]
fn a_generator_key_cut_short_is_said_to_be_cut_off_at_its_line() {
    let key = GeneratorKey::generate();
    let whole = key.to_base64();
    // Cut at each remainder modulo 4: a length base64 can have and lengths it cannot.
    for cut in [
        whole.len() / 2,
        whole.len() / 2 + 1,
        whole.len() / 2 + 2,
        whole.len() / 2 + 3,
    ] {
        let text = format!(
            "server.port=0\n{}={}\n",
            names::GENERATOR_KEY,
            &whole[..cut]
        );
        let problems = bind_err(ModuleKind::Dpm, &text);
        let error = one_about(&problems, names::GENERATOR_KEY, Severity::Error);
        assert_eq!(error.code, codes::GENERATOR_KEY_UNUSABLE);
        assert_eq!(file_line(error), 2);
        let shown = error.to_string();
        assert!(shown.contains("looks cut off"), "{shown}");
        assert!(shown.contains("copy the whole value"), "{shown}");
        assert!(!shown.contains("EOF"), "{shown}");
        assert!(
            !shown.contains(&whole[..cut]),
            "the value is never shown: {shown}"
        );
    }
}

/// Binds `kind` with the generator key and `lines` after it, and returns the one warning about
/// `property`, checking it is at `line` of the file and suggests `guess`.
fn typo_in(kind: ModuleKind, lines_after_key: &str, property: &str, line: u32, guess: &str) {
    let (_, key_line) = minimal();
    let loaded = bind_ok(kind, &format!("{key_line}{lines_after_key}"));
    let warning = one_about(&loaded.warnings, property, Severity::Warning);
    assert_eq!(warning.code, codes::UNKNOWN_PROPERTY, "{warning}");
    assert_eq!(file_line(warning), line, "{warning}");
    let text = warning.to_string();
    assert!(text.contains(&format!("{FILE}:{line}:")), "{text}");
    assert!(text.contains(&format!("did you mean {guess}?")), "{text}");
    assert_eq!(loaded.warnings.len(), 1, "{}", lines(&loaded.warnings));
}

#[test]
fn a_typo_under_server_is_named_with_the_nearest_name() {
    typo_in(
        ModuleKind::Dpm,
        "server.prot=38031\n",
        "server.prot",
        2,
        names::SERVER_PORT,
    );
    typo_in(
        ModuleKind::Dpe,
        "server.port=0\nserver.max-conections=9\n",
        "server.max-conections",
        3,
        names::SERVER_MAX_CONNECTIONS,
    );
    // The typo is not bound: the HTTP port keeps its default.
    let (_, key_line) = minimal();
    let loaded = bind_ok(ModuleKind::Dpm, &format!("{key_line}server.prot=38031\n"));
    assert_eq!(loaded.settings.http.port, crate::DPM_HTTP_PORT);
}

#[test]
fn a_typo_under_spring_datasource_is_named_but_other_spring_names_are_not() {
    typo_in(
        ModuleKind::Dpm,
        "spring.application.name=dpm\nspring.datasource.usrname=registry\n",
        "spring.datasource.usrname",
        3,
        names::DATASOURCE_USERNAME,
    );
}

#[test]
fn a_typo_under_svcid_is_named() {
    typo_in(
        ModuleKind::Dpm,
        "svcid.console.enabeld=false\n",
        "svcid.console.enabeld",
        2,
        names::CONSOLE_ENABLED,
    );
    typo_in(
        ModuleKind::Dpe,
        "svcid.authorization.admin-role=OPS\n",
        "svcid.authorization.admin-role",
        2,
        names::ADMIN_ROLES,
    );
}

#[test]
fn a_typo_under_mp_jwt_is_named() {
    typo_in(
        ModuleKind::Dpm,
        "mp.jwt.verify.publickey.locaton=publicKey.pem\n",
        "mp.jwt.verify.publickey.locaton",
        2,
        names::MP_JWT_PUBLICKEY_LOCATION,
    );
    typo_in(
        ModuleKind::Dpe,
        "mp.jwt.verify.isuer=https://idp.example\n",
        "mp.jwt.verify.isuer",
        2,
        names::MP_JWT_ISSUER,
    );
}

#[test]
fn a_typo_under_logging_is_named_but_log_level_targets_are_free() {
    typo_in(
        ModuleKind::Dpm,
        "logging.level.com.Acme.Anything=debug\nlogging.level[com.Foo.Bar]=warn\nlogging.file.pth=logs\n",
        "logging.file.pth",
        4,
        names::LOG_PATH,
    );
    typo_in(
        ModuleKind::Dpe,
        "logging.logback.rollingpolicy.max-histroy=3\n",
        "logging.logback.rollingpolicy.max-histroy",
        2,
        names::LOG_MAX_HISTORY,
    );
}

#[test]
fn names_svcid_reads_and_names_outside_its_namespaces_stay_silent() {
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}server.maxConnectionsPerPeer=4\nSERVER.PORT=0\nspring.profiles.active=prod\n\
         management.endpoints.web.exposure.include=*\nmp.jwt.token.header=Cookie\n\
         mp.jwt.verify.publickey.algorithm=RS256\nsvcid.console.session.max-age=1h\n\
         ataccama.one.dpe.environment[0]=prod\nlogging.level.root=warn\n\
         ataccama.server.grpc.tls.enabled=false\nserverless.anything=1\n"
    );
    let loaded = bind_ok(ModuleKind::Dpe, &text);
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    // An unknown name with no near neighbour still gets a warning, pointing at the manual.
    let loaded = bind_ok(
        ModuleKind::Dpm,
        &format!("{key_line}server.ssl.key-store=keystore.p12\n"),
    );
    let warning = one_about(&loaded.warnings, "server.ssl.key-store", Severity::Warning);
    assert!(
        warning.to_string().contains("docs/configuration.md"),
        "{warning}"
    );
}

#[test]
fn invalid_deployment_names_are_errors() {
    let peer = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let block = deployment("dpe_dev", "dpe", "key1", &peer);
    let problems = bind_err(ModuleKind::Dpm, &format!("{key_line}{block}"));
    assert!(
        lines(&problems).contains("letters, digits and dashes"),
        "{}",
        lines(&problems)
    );
}

#[test]
fn a_deployment_with_keys_that_fail_gets_no_no_keys_warning() {
    let (text, property) = with_content("{not json");
    let problems = bind_err(ModuleKind::Dpm, &text);
    assert_eq!(problems.len(), 1, "{}", lines(&problems));
    assert_eq!(problems[0].property, property);
}

#[test]
fn a_deployment_without_keys_is_a_warning() {
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}{0}.dpe-dev.module=dpe\n{0}.dpe-dev.security.roles=IMPERSONATION\n",
        names::DEPLOYMENTS
    );
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    assert_eq!(loaded.warnings.len(), 1, "{}", lines(&loaded.warnings));
    assert!(loaded.warnings[0].message.contains("no jwt-keys"));
}

#[test]
fn missing_fingerprint_or_content_are_errors() {
    let peer = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let block = deployment("dpe-dev", "dpe", "key1", &peer);
    for field in ["fingerprint", "content"] {
        let cut = block
            .lines()
            .filter(|l| !l.contains(&format!(".{field}=")))
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        let problems = bind_err(ModuleKind::Dpm, &format!("{key_line}{cut}"));
        one_about(
            &problems,
            &format!(
                "{}.dpe-dev.security.jwt-keys.key1.{field}",
                names::DEPLOYMENTS
            ),
            Severity::Error,
        );
    }
    let blank = block.replace(&format!("fingerprint={}", peer.kid()), "fingerprint=a b");
    let problems = bind_err(ModuleKind::Dpm, &format!("{key_line}{blank}"));
    one_about(
        &problems,
        &format!(
            "{}.dpe-dev.security.jwt-keys.key1.fingerprint",
            names::DEPLOYMENTS
        ),
        Severity::Error,
    );
}

#[test]
fn rotation_two_keys_one_deployment() {
    let old = GeneratorKey::generate();
    let new = GeneratorKey::generate();
    let (_, key_line) = minimal();
    let first =
        deployment("dpe-dev", "dpe", "key1", &old).replace("is-revoked=false", "is-revoked=true");
    let second = deployment("dpe-dev", "dpe", "key2", &new)
        .lines()
        .filter(|l| l.contains("jwt-keys"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let loaded = bind_ok(ModuleKind::Dpm, &format!("{key_line}{first}{second}"));
    assert!(loaded.warnings.is_empty(), "{}", lines(&loaded.warnings));
    let deployments = &loaded.settings.deployments;
    assert_eq!(deployments.deployments().len(), 1);
    assert!(deployments.lookup(old.kid()).unwrap().1.revoked);
    assert!(!deployments.lookup(new.kid()).unwrap().1.revoked);
}

// ---------------------------------------------------------------------------------------------
// 6. The generator key never appears in a message
// ---------------------------------------------------------------------------------------------

#[test]
fn the_generator_key_never_appears_in_a_problem() {
    let key = GeneratorKey::generate();
    let b64 = key.to_base64();
    let raw_json = serde_json::to_string(&keypair_object(&key)).unwrap();
    let d = private_d(&key);
    let peer = GeneratorKey::generate();
    let peer_block = deployment("dpe-dev", "dpe", "key1", &peer);
    let fingerprint_line = format!("fingerprint={}", peer.kid());
    // The key, its JSON or its `d`, pasted into every wrong place an operator could paste it.
    let mut texts = Vec::new();
    for secret in [b64.as_str(), raw_json.as_str(), d.as_str()] {
        for property in [
            names::GRPC_PORT,
            names::GRPC_HOST,
            names::TOKEN_EXPIRATION,
            names::REQUIRE_AUDIENCE,
            names::CHECK_DISCONNECTED_MULTIPLIER,
            names::CHECKER_TIMEOUT,
            "logging.level.root",
            "logging.level.svcid",
            "ataccama.server.grpc.prot",
            "ataccama.authentication.internal.jwt.generator.kye",
        ] {
            texts.push(format!("{}\n{property}={secret}\n", generator_line(&key)));
        }
        texts.push(format!("{}={secret}x\n", names::GENERATOR_KEY));
        texts.push(format!("{}=\"{secret}\"\n", names::GENERATOR_KEY));
        // A 43-character `d` pasted as a fingerprint looks exactly like a kid and is quoted by the
        // fingerprint-differs warning (C2 must name both values); only longer forms are tested.
        if secret != d {
            texts.push(format!(
                "{}{}",
                generator_line(&key),
                peer_block.replace(&fingerprint_line, &format!("fingerprint={secret}"))
            ));
        }
        texts.push(format!(
            "{}{}",
            generator_line(&key),
            peer_block.replace(&peer.public_key().content_json(), secret)
        ));
        texts.push(format!(
            "{}{}",
            generator_line(&key),
            peer_block.replace("is-revoked=false", &format!("is-revoked={secret}"))
        ));
        texts.push(format!(
            "{}{}",
            generator_line(&key),
            peer_block
                .replace("key1", "key_1")
                .replace("IMPERSONATION", secret)
        ));
    }
    // The key itself both as this module's key and as a peer's content (shared key).
    texts.push(format!(
        "{}{}",
        generator_line(&key),
        peer_block.replace(&peer.public_key().content_json(), &b64)
    ));
    for kind in [ModuleKind::Dpm, ModuleKind::Dpe] {
        for text in &texts {
            let Ok(set) = ({
                let mut set = PropertySet::new();
                set.load_str(text, Path::new(FILE)).map(|()| set)
            }) else {
                continue;
            };
            let problems = match try_bind(kind, &set) {
                Ok(loaded) => {
                    assert!(!format!("{:?}", loaded.settings).contains(&d));
                    loaded.warnings
                }
                Err(problems) => problems,
            };
            assert_no_secret(&problems, &key);
        }
    }
}

#[test]
fn debug_of_loaded_settings_hides_the_key() {
    let (key, text) = minimal();
    let loaded = bind_ok(ModuleKind::Dpm, &text);
    let shown = format!("{loaded:?}");
    assert!(!shown.contains(&key.to_base64()));
    assert!(!shown.contains(&private_d(&key)));
}

// ---------------------------------------------------------------------------------------------
// 7. Token lifetimes
// ---------------------------------------------------------------------------------------------

#[test]
fn bare_token_expiration_is_milliseconds_and_an_error_suggesting_seconds() {
    let (_, key_line) = minimal();
    let text = format!("{key_line}{}=15\n", names::TOKEN_EXPIRATION);
    let problems = bind_err(ModuleKind::Dpm, &text);
    let problem = one_about(&problems, names::TOKEN_EXPIRATION, Severity::Error);
    assert_eq!(file_line(problem), 2);
    let shown = problem.to_string();
    assert!(shown.contains("15s"), "{shown}");
    assert!(shown.contains("milliseconds"), "{shown}");

    let text = format!("{key_line}{}=30\n", names::TOKEN_EXPIRATION);
    let problems = bind_err(ModuleKind::Dpm, &text);
    let problem = one_about(&problems, names::TOKEN_EXPIRATION, Severity::Error);
    assert!(problem.to_string().contains("30s"), "{problem}");

    // An explicit sub-second lifetime is refused without blaming bare numbers.
    let text = format!("{key_line}{}=500ms\n", names::TOKEN_EXPIRATION);
    let problems = bind_err(ModuleKind::Dpm, &text);
    let problem = one_about(&problems, names::TOKEN_EXPIRATION, Severity::Error);
    assert!(!problem.message.contains("bare number"), "{problem}");

    // A bare number large enough to be meant in milliseconds is accepted.
    let text = format!("{key_line}{}=15000\n", names::TOKEN_EXPIRATION);
    let s = bind_ok(ModuleKind::Dpm, &text).settings;
    assert_eq!(s.jwt.token_expiration, Duration::from_secs(15));
}

#[test]
fn token_expiration_above_max_token_lifetime_is_an_error() {
    let (_, key_line) = minimal();
    let text = format!(
        "{key_line}{}=2h\n{}=1h\n",
        names::TOKEN_EXPIRATION,
        names::MAX_TOKEN_LIFETIME
    );
    let problems = bind_err(ModuleKind::Dpm, &text);
    assert_eq!(problems.len(), 1, "{}", lines(&problems));
    assert!(problems[0].message.contains("max-token-lifetime"));

    // Only max-token-lifetime set, below the 15s default.
    let text = format!("{key_line}{}=10s\n", names::MAX_TOKEN_LIFETIME);
    let problems = bind_err(ModuleKind::Dpm, &text);
    let problem = one_about(&problems, names::MAX_TOKEN_LIFETIME, Severity::Error);
    assert_eq!(file_line(problem), 2);

    // Equal is fine.
    let text = format!(
        "{key_line}{}=1h\n{}=PT1H\n",
        names::TOKEN_EXPIRATION,
        names::MAX_TOKEN_LIFETIME
    );
    bind_ok(ModuleKind::Dpm, &text);
}

// ---------------------------------------------------------------------------------------------
// Never panics
// ---------------------------------------------------------------------------------------------

/// A tiny deterministic generator (xorshift), so the garbage test needs no extra crate and fails
/// the same way on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.next() % items.len() as u64).unwrap()]
    }
}

#[test]
fn bind_never_panics_on_garbage() {
    let key = GeneratorKey::generate();
    let peer = GeneratorKey::generate();
    let b64 = key.to_base64();
    let content = peer.public_key().content_json();
    let d = private_d(&key);
    let mut names_pool: Vec<String> = names::KNOWN.iter().map(|n| (*n).to_owned()).collect();
    for field in [
        "module",
        "environment",
        "uri",
        "security.roles",
        "security.roles[0]",
        "security.roles[99999999999999999999]",
        "security.jwt-keys.key1.fingerprint",
        "security.jwt-keys.key1.content",
        "security.jwt-keys.key1.isRevoked",
        "security.jwt-keys.key1.is-revokd",
        "security.jwt-keys[k.1].content",
        "security.jwt-keys..fingerprint",
        "security.jwt-keys",
        "",
    ] {
        for name in ["dpe-dev", "dpm_dev", "", "[a.b]", "é", "dpe-dev.", "x[0]"] {
            names_pool.push(format!("{}.{name}.{field}", names::DEPLOYMENTS));
            names_pool.push(format!("{}{name}{field}", names::DEPLOYMENTS));
        }
    }
    for extra in [
        "logging.level",
        "logging.level.root",
        "logging.level[com.Foo]",
        "logging.level..x",
        "constraints",
        "constraints.a",
        "constraints.a.b",
        "constraints[x]",
        "ataccama",
        "ataccama.",
        "ataccama.server.grpc.prot",
        "ataccama.one.platform.deployments",
        "x",
    ] {
        names_pool.push(extra.to_owned());
    }
    let names_pool: Vec<&str> = names_pool.iter().map(String::as_str).collect();
    let values = [
        "",
        " ",
        "0",
        "-1",
        "65536",
        "99999999999999999999999999",
        "15",
        "15s",
        "PT",
        "P9999999999999999999D",
        "-PT1S",
        "true",
        "FALSE",
        "yes",
        "NaN",
        "inf",
        "1e309",
        "dpe",
        "IMPERSONATION,ADMIN",
        ",,,",
        "{",
        "{}",
        "{\"kty\":\"EC\"}",
        "{kty\":\"EC\"}",
        "[]",
        "null",
        "é😀\u{0}\u{1b}[31m",
        "\\u0000",
        content.as_str(),
        b64.as_str(),
        d.as_str(),
        peer.kid(),
    ];
    let separators = ["=", ":", " ", "\t=", "=\\\n  "];
    let mut noise = Noise(0x5eed_cafe_f00d_0001);
    // Few hundred rounds: "did you mean" over long garbage names is slow in a debug build.
    for round in 0..400 {
        let mut text = String::new();
        if round % 3 != 0 {
            text.push_str(&generator_line(&key));
        }
        let count = noise.next() % 14;
        for _ in 0..count {
            text.push_str(noise.pick(&names_pool));
            text.push_str(noise.pick(&separators));
            text.push_str(noise.pick(&values));
            text.push('\n');
        }
        let mut set = PropertySet::new();
        if set.load_str(&text, Path::new(FILE)).is_err() {
            continue;
        }
        if round % 5 == 0 {
            set.add_env([(
                noise
                    .pick(&[
                        "ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPEDEV_MODULE",
                        "ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_X_SECURITY_ROLES_0_",
                        "ATACCAMA_SERVER_GRPC_PORT",
                        "CONSTRAINTS_GPU",
                        "LOGGING_LEVEL_ROOT",
                        "_",
                        "",
                    ])
                    .to_owned(),
                noise.pick(&values).to_owned(),
            )]);
        }
        for kind in [ModuleKind::Dpm, ModuleKind::Dpe] {
            let problems = match try_bind(kind, &set) {
                Ok(loaded) => loaded.warnings,
                Err(problems) => {
                    assert!(
                        problems.iter().any(Problem::is_error),
                        "Err without an error for:\n{text}\n{}",
                        lines(&problems)
                    );
                    problems
                }
            };
            for problem in &problems {
                assert!(!problem.to_string().contains('\n'), "{problem}");
            }
            assert_no_secret(&problems, &key);
        }
    }
}

#[test]
fn the_readme_documents_every_property() {
    let readme = include_str!("../../../docs/configuration.md");
    let missing: Vec<&str> = names::KNOWN
        .iter()
        .copied()
        .filter(|name| !readme.contains(&format!("`{name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks {missing:?}"
    );
}
