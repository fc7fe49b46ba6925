//! Loading a module home: the file, then environment variables, then `--name=value` arguments
//! (later wins), bound into [`Settings`] with every problem found in one pass.

use std::path::Path;
use std::time::Duration;

use svcid_identity::jwk::{GeneratorKey, KeyError};
use svcid_identity::token::{
    DEFAULT_CLOCK_SKEW, DEFAULT_IMPERSONATION_ROLE, DEFAULT_MAX_TOKEN_LIFETIME,
    DEFAULT_REQUIRE_AUDIENCE, DEFAULT_TOKEN_EXPIRATION,
};
use svcid_logging::{Level, LogSettings};
use svcid_properties::{
    DurationUnit, Origin, Problem, PropertySet, Severity, did_you_mean, uniform,
};

use crate::bind::{Binder, segments, shown};
use crate::codes;
use crate::home::{ModuleHome, ModuleKind};
use crate::names;
use crate::settings::{
    DpeSettings, DpmSettings, GrpcSettings, JwtSettings, RoleSettings, Settings,
};

/// The sources that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Environment variables (all of them; Spring matches by name).
    pub env: Vec<(String, String)>,
    /// `--name=value` command-line arguments.
    pub args: Vec<String>,
}

impl Overrides {
    /// The process's own environment and the given arguments.
    pub fn from_process(args: Vec<String>) -> Self {
        Self {
            env: std::env::vars().collect(),
            args,
        }
    }
}

/// A successful load: the settings plus warnings worth logging.
#[derive(Debug)]
pub struct Loaded {
    /// Complete, validated settings.
    pub settings: Settings,
    /// Non-fatal findings (a fingerprint that differs from its key's kid, unknown properties, …).
    pub warnings: Vec<Problem>,
}

/// Reads the properties of a home into layered sources, without binding them.
pub fn read_sources(home: &ModuleHome, overrides: &Overrides) -> Result<PropertySet, Vec<Problem>> {
    let mut props = PropertySet::new();
    let file = home.properties_file();
    let mut problems = Vec::new();
    if let Err(mut found) = props.load_file(&file, &file) {
        problems.append(&mut found);
    }
    props.add_env(overrides.env.iter().cloned());
    if let Err(mut found) = props.add_args(&overrides.args) {
        problems.append(&mut found);
    }
    if problems.iter().any(|p| p.severity == Severity::Error) {
        return Err(problems);
    }
    Ok(props)
}

/// Loads and validates a module home. On failure every problem (errors and warnings) is returned,
/// in file order (then missing properties, environment variables, arguments), for the daemon to
/// print one per line before exiting. An `Err` always holds at least one error.
pub fn load(kind: ModuleKind, home: &Path, overrides: &Overrides) -> Result<Loaded, Vec<Problem>> {
    let home = ModuleHome::new(home);
    let props = read_sources(&home, overrides)?;
    bind(kind, home, &props)
}

/// Binds already-read sources (used by `svcid check` on in-memory files, and by tests). Problems
/// are ordered as by [`load`]; an `Err` always holds at least one error.
pub fn bind(
    kind: ModuleKind,
    home: ModuleHome,
    props: &PropertySet,
) -> Result<Loaded, Vec<Problem>> {
    let mut b = Binder::new(props);
    b.problems.extend(props.warnings().iter().cloned());
    check_unknown_properties(&mut b);

    let grpc = GrpcSettings {
        host: bind_host(&mut b),
        port: b.port(names::GRPC_PORT, kind.default_grpc_port()),
        limits: crate::limits::bind(&mut b),
        tls: crate::tls::bind_server(&mut b, &home),
    };
    let http = crate::http::bind_http(&mut b, kind, &grpc.host);
    let generator_key = bind_generator_key(&mut b);
    let token_expiration = b.positive_duration(names::TOKEN_EXPIRATION, DEFAULT_TOKEN_EXPIRATION);
    let max_token_lifetime =
        b.positive_duration(names::MAX_TOKEN_LIFETIME, DEFAULT_MAX_TOKEN_LIFETIME);
    if token_expiration < Duration::from_secs(1)
        && let Some(v) = props.get(names::TOKEN_EXPIRATION)
    {
        let raw = v.raw.trim();
        if !raw.is_empty() && raw.bytes().all(|c| c.is_ascii_digit()) {
            // The manual's habit of bare seconds: `15` is 15 ms here, as in Spring.
            b.error_at(
                codes::TOKEN_EXPIRATION_BARE_NUMBER,
                v,
                format!("a bare number is milliseconds: tokens would live only {raw} ms"),
                format!("write the unit, e.g. {raw}s"),
            );
        } else {
            b.error_at(
                codes::TOKEN_EXPIRATION_TOO_SHORT,
                v,
                format!(
                    "tokens would live only {token_expiration:?}, less than a second: they would \
                     expire before peers could verify them"
                ),
                format!(
                    "use at least 1s (the default is {}s)",
                    DEFAULT_TOKEN_EXPIRATION.as_secs()
                ),
            );
        }
    }
    if token_expiration > max_token_lifetime
        && let Some(v) = props
            .get(names::TOKEN_EXPIRATION)
            .or_else(|| props.get(names::MAX_TOKEN_LIFETIME))
    {
        b.error_at(
            codes::TOKEN_EXPIRATION_OVER_MAX_LIFETIME,
            v,
            format!(
                "token-expiration ({token_expiration:?}) exceeds max-token-lifetime ({max_token_lifetime:?}): \
                 peers would refuse every token"
            ),
            "shorten token-expiration or raise max-token-lifetime",
        );
    }
    let clock_skew = b.duration(names::CLOCK_SKEW, DEFAULT_CLOCK_SKEW, DurationUnit::Millis);
    let impersonation_role = b.string_or(names::IMPERSONATION_ROLE, DEFAULT_IMPERSONATION_ROLE);
    let require_audience = b.bool(names::REQUIRE_AUDIENCE, DEFAULT_REQUIRE_AUDIENCE);
    let admin_roles: Vec<String> = b
        .string_or(
            names::ADMIN_ROLES,
            &svcid_identity::authz::DEFAULT_ADMIN_ROLES.join(","),
        )
        .split(',')
        .map(str::trim)
        .filter(|role| !role.is_empty())
        .map(str::to_owned)
        .collect();
    let deployments = crate::deployments::bind(&mut b);
    let users = crate::users::bind(&mut b, &home);
    let access = crate::access::bind(&mut b, kind);
    let logging = bind_logging(&mut b, &home);
    let role = match kind {
        ModuleKind::Dpm => RoleSettings::Dpm(bind_dpm(&mut b, &home)),
        ModuleKind::Dpe => RoleSettings::Dpe(bind_dpe(&mut b, &home)),
    };

    let mut problems = std::mem::take(&mut b.problems);
    in_file_order(&mut problems);
    let failed = problems.iter().any(|p| p.severity == Severity::Error);
    match (generator_key, deployments, failed) {
        (Some(generator_key), Some(deployments), false) => Ok(Loaded {
            settings: Settings {
                kind,
                home,
                grpc,
                http,
                jwt: JwtSettings {
                    generator_key,
                    token_expiration,
                    impersonation_role,
                    admin_roles,
                    clock_skew,
                    max_token_lifetime,
                    require_audience,
                },
                deployments,
                logging,
                role,
                users,
                access,
            },
            warnings: problems,
        }),
        (_, _, true) => Err(problems),
        // Every path that withholds a part records an error; should one ever not, the daemon
        // must still say why it refuses to start rather than exit silently.
        (_, _, false) => {
            problems.push(Problem::error(
                codes::NOT_BOUND,
                None,
                String::new(),
                "the configuration could not be bound".to_owned(),
                Some("please report this: svcid failed to name the problem".to_owned()),
            ));
            Err(problems)
        }
    }
}

/// Sorts problems for reading top to bottom: file lines in order, then missing properties, then
/// environment variables and arguments in the order found. Stable, so problems of one line keep
/// the order they were found in.
fn in_file_order(problems: &mut [Problem]) {
    problems.sort_by_key(|p| match &p.origin {
        Some(Origin::File { path, line }) => (0, Some(path.clone()), *line),
        None => (1, None, 0),
        Some(Origin::Env { .. }) => (2, None, 0),
        Some(Origin::Arg { .. }) => (3, None, 0),
        Some(Origin::Default) => (4, None, 0),
    });
}

fn bind_host(b: &mut Binder<'_>) -> String {
    let host = b.string_or(names::GRPC_HOST, "0.0.0.0");
    if host.parse::<std::net::IpAddr>().is_err()
        && host != "localhost"
        && let Some(v) = b.props.get(names::GRPC_HOST)
    {
        b.error_at(
            codes::NOT_BIND_ADDRESS,
            v,
            format!("{} is not an IP address to bind", shown(&host)),
            "use an address such as 0.0.0.0, 127.0.0.1 or ::",
        );
        return "0.0.0.0".to_owned();
    }
    host
}

fn bind_generator_key(b: &mut Binder<'_>) -> Option<GeneratorKey> {
    let Some((raw, value)) = b.string(names::GENERATOR_KEY) else {
        b.missing(
            codes::GENERATOR_KEY_MISSING,
            names::GENERATOR_KEY,
            "set this module's private JWK, base64-encoded (`svcid link DPM_HOME DPE_HOME` or `svcid keygen`)",
        );
        return None;
    };
    if raw.is_empty() {
        b.error_at(
            codes::GENERATOR_KEY_UNUSABLE,
            value,
            "the generator key is empty",
            "set this module's private JWK, base64-encoded (`svcid link DPM_HOME DPE_HOME` or `svcid keygen`)",
        );
        return None;
    }
    // KeyError messages never carry key material, so they can be shown as they are.
    match GeneratorKey::from_base64(&raw) {
        Ok(key) => Some(key),
        Err(error) => {
            let fix = if matches!(error, KeyError::CutOff { .. }) {
                "copy the whole value again from where it came: it is one line (a value continued \
                 over several lines needs a \\ at the end of each but the last)"
            } else {
                "the value must be base64 of this module's EC P-256 keypair JWK with alg ES256, kid and d \
                 (svcid keygen prints one)"
            };
            b.error_at(
                codes::GENERATOR_KEY_UNUSABLE,
                value,
                format!("not a usable generator key: {error}"),
                fix,
            );
            None
        }
    }
}

fn bind_logging(b: &mut Binder<'_>, home: &ModuleHome) -> LogSettings {
    let dir = match b.string(names::LOG_PATH) {
        Some((path, _)) if !path.is_empty() => home.root().join(path),
        _ => home.log_dir(),
    };
    let level_fix = "use one of TRACE, DEBUG, INFO, WARN, ERROR, OFF";
    let root_name = format!("{}.root", names::LOG_LEVEL);
    let root_level = b.parsed(
        &root_name,
        Level::Info,
        codes::NOT_LOG_LEVEL,
        level_fix,
        |raw| {
            raw.parse::<Level>()
                .map_err(|_| format!("{} is not a log level", shown(raw)))
        },
    );
    let mut levels = Vec::new();
    let depth = names::LOG_LEVEL.split('.').count();
    for value in b.props.entries_under(names::LOG_LEVEL) {
        if matches!(value.origin, Origin::Env { .. }) {
            continue;
        }
        // Segments as the properties crate reads them, so `logging.level[com.Foo]` gives
        // `com.Foo` and a stray `..` does not shift the target.
        let target: Vec<&str> = segments(&value.key)
            .into_iter()
            .skip(depth)
            .map(|s| s.text)
            .collect();
        let target = target.join(".");
        if target.is_empty() || uniform(&target) == "root" {
            continue;
        }
        match value.raw.trim().parse::<Level>() {
            Ok(level) => levels.push((target, level)),
            Err(_) => b.error_at(
                codes::NOT_LOG_LEVEL,
                value,
                format!("{} is not a log level", shown(value.raw.trim())),
                level_fix,
            ),
        }
    }
    LogSettings {
        plain_console: b.bool(names::PLAIN_CONSOLE, true),
        json_console: b.bool(names::JSON_CONSOLE, false),
        json_file: b.bool(names::JSON_FILE, true),
        plain_file: b.bool(names::PLAIN_FILE, false),
        dir,
        root_level,
        levels,
        application: "oneApplication".to_owned(),
        rolling: crate::rolling::bind_rolling(b),
    }
}

fn bind_dpm(b: &mut Binder<'_>, home: &ModuleHome) -> DpmSettings {
    let check_disconnected_multiplier = b.parsed(
        names::CHECK_DISCONNECTED_MULTIPLIER,
        2.0,
        codes::INVALID_VALUE,
        "use a number of at least 1, e.g. 2",
        |raw| match raw.parse::<f64>() {
            Ok(m) if m.is_finite() && m >= 1.0 => Ok(m),
            _ => Err(format!(
                "{} is not a back-off factor of at least 1",
                shown(raw)
            )),
        },
    );
    DpmSettings {
        check_connected_interval: b
            .positive_duration(names::CHECK_CONNECTED_INTERVAL, Duration::from_secs(1)),
        check_disconnected_interval: b
            .positive_duration(names::CHECK_DISCONNECTED_INTERVAL, Duration::from_secs(1)),
        check_disconnected_multiplier,
        check_disconnected_max: b
            .positive_duration(names::CHECK_DISCONNECTED_MAX, Duration::from_secs(600)),
        checker_timeout: b.positive_duration(names::CHECKER_TIMEOUT, Duration::from_secs(2)),
        engine_tls: crate::tls::bind_client(b, home, names::ENGINE_TLS),
        datasource: crate::datasource::bind_datasource(b, home),
    }
}

fn bind_dpe(b: &mut Binder<'_>, home: &ModuleHome) -> DpeSettings {
    let advertised_port = b
        .props
        .get(names::SERVICE_PORT)
        .map(|_| b.port(names::SERVICE_PORT, 0));
    let environments = b
        .props
        .get_list(names::DPE_ENVIRONMENT)
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.raw.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    let constraints = crate::constraints::bind(b);
    DpeSettings {
        dpm_host: b.string_or(names::DPM_HOST, "localhost"),
        dpm_port: b.port(names::DPM_PORT, 8531),
        advertised_hostname: b.string_or(names::SERVICE_HOSTNAME, &machine_hostname()),
        advertised_port,
        check_connection_interval: b.positive_duration(
            names::CHECK_CONNECTION_INTERVAL,
            Duration::from_millis(5000),
        ),
        environments,
        constraints,
        dpm_tls: crate::tls::bind_client(b, home, names::DPM_TLS),
    }
}

/// This machine's hostname, the default advertised to DPM.
fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Warns about properties in the file or arguments that svcid does not read although they are in
/// a namespace it owns ([`names::OWNED_NAMESPACES`]: `ataccama.*`, `server.*`, `spring.datasource.*`,
/// `svcid.*`, `mp.jwt.*`, `logging.*` other than the free-form `logging.level.*`), each with the
/// nearest known name. Environment variables are never checked: a process inherits many that are
/// not meant for it.
fn check_unknown_properties(b: &mut Binder<'_>) {
    let mut known: Vec<String> = names::KNOWN.iter().map(|n| uniform_name(n)).collect();
    let mut candidates: Vec<String> = names::KNOWN.iter().map(|n| (*n).to_owned()).collect();
    for prefix in names::TLS_PREFIXES {
        for field in names::TLS_FIELDS {
            let name = format!("{prefix}.{field}");
            known.push(uniform_name(&name));
            candidates.push(name);
        }
    }
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let under = |prefixes: &[&str]| -> Vec<String> {
        prefixes.iter().map(|n| uniform_name(n) + ".").collect()
    };
    let owned = under(names::OWNED_NAMESPACES);
    let map_prefixes = under(names::MAP_PREFIXES);
    let mut unknown = Vec::new();
    for value in b.props.iter() {
        if matches!(value.origin, Origin::Env { .. }) {
            continue;
        }
        let name = uniform_name(&value.key);
        let name_dot = format!("{name}.");
        if !owned.iter().any(|p| name_dot.starts_with(p.as_str())) || known.contains(&name) {
            continue;
        }
        if map_prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            continue;
        }
        unknown.push(value);
    }
    for value in unknown {
        let fix = match did_you_mean(&value.key, &candidates) {
            Some(guess) => format!("did you mean {guess}?"),
            None => "check the spelling against the properties in docs/configuration.md".to_owned(),
        };
        b.warn_at(
            codes::UNKNOWN_PROPERTY,
            value,
            "unknown property; svcid ignores it",
            fix,
        );
    }
}

/// Uniform form of a written name, segment by segment as the properties reader splits it
/// (`logging.level[com.Foo]` is `logging.level.com.foo`), without a trailing list index (`roles[0]`
/// names the list `roles`).
fn uniform_name(name: &str) -> String {
    let mut parts: Vec<String> = segments(name).iter().map(|s| uniform(s.text)).collect();
    while parts
        .last()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    {
        parts.pop();
    }
    parts.join(".")
}
