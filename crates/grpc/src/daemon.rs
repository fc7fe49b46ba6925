//! The start-up both daemons share: arguments, configuration (reported before anything is bound),
//! logging, and the exit codes they document.
//!
//! Exit codes follow sysexits: 0 after a graceful shutdown, [`EX_USAGE`] for bad arguments,
//! [`EX_CONFIG`] for a configuration that does not validate, [`EX_IOERR`] when the log or data
//! folder cannot be written, [`EX_UNAVAILABLE`] when the gRPC port cannot be bound, [`EX_SOFTWARE`]
//! when the server fails while running.

use std::path::PathBuf;
use std::process::ExitCode;

use svcid_config::{Loaded, ModuleKind, Overrides, Problem};

/// Bad command-line arguments.
pub const EX_USAGE: u8 = 64;
/// The gRPC port could not be bound.
pub const EX_UNAVAILABLE: u8 = 69;
/// An internal error (the server failed while running).
pub const EX_SOFTWARE: u8 = 70;
/// The log or data folder could not be written.
pub const EX_IOERR: u8 = 74;
/// The configuration does not validate.
pub const EX_CONFIG: u8 = 78;

/// What the command line asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonArgs {
    /// The module home (`--home`, default: the current folder).
    pub home: PathBuf,
    /// `--name=value` property overrides, in order.
    pub overrides: Vec<String>,
}

/// Parses `[--home DIR] [--<property>=<value> ...]`. `Err` carries the exit code after `--help`,
/// `--version` (0) or a usage error (already printed).
pub fn parse_args(
    kind: ModuleKind,
    args: impl IntoIterator<Item = String>,
) -> Result<DaemonArgs, ExitCode> {
    let mut home = PathBuf::from(".");
    let mut overrides = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{}", usage(kind));
                return Err(ExitCode::SUCCESS);
            }
            "-V" | "--version" => {
                println!("{kind} {}", env!("CARGO_PKG_VERSION"));
                return Err(ExitCode::SUCCESS);
            }
            "--home" => match args.next() {
                Some(dir) => home = PathBuf::from(dir),
                None => return Err(usage_error(kind, "--home needs a folder")),
            },
            _ if arg.starts_with("--home=") => home = PathBuf::from(&arg["--home=".len()..]),
            _ if arg.starts_with("--") && arg.contains('=') => overrides.push(arg),
            _ => return Err(usage_error(kind, &format!("unexpected argument {arg:?}"))),
        }
    }
    Ok(DaemonArgs { home, overrides })
}

fn usage(kind: ModuleKind) -> String {
    format!(
        "usage: {kind} [--home DIR] [--<property>=<value> ...]\n\n\
         Starts the {name} from the module home DIR (default: the current folder), reading\n\
         DIR/etc/application.properties, then environment variables, then --property=value arguments.\n\
         Logs go to DIR/log/spring-boot-logger.json.log unless logging.file.path says otherwise.\n\n\
         exit codes: 0 stopped by SIGINT/SIGTERM, {EX_USAGE} bad arguments, {EX_UNAVAILABLE} port not bound,\n\
         {EX_IOERR} log or data folder not writable, {EX_CONFIG} configuration error (one line per problem)",
        name = match kind {
            ModuleKind::Dpm => "Data Processing Module (engine registry)",
            ModuleKind::Dpe => "Data Processing Engine",
        }
    )
}

fn usage_error(kind: ModuleKind, why: &str) -> ExitCode {
    eprintln!("{kind}: {why}\n{}", usage(kind));
    ExitCode::from(EX_USAGE)
}

/// Loads the home's configuration. On failure prints one line per problem to stderr and returns
/// the exit code; nothing has been bound or written yet.
pub fn load_settings(
    kind: ModuleKind,
    home: &std::path::Path,
    overrides: &Overrides,
) -> Result<Loaded, ExitCode> {
    svcid_config::load(kind, home, overrides).map_err(|problems| {
        report(kind, &problems);
        ExitCode::from(EX_CONFIG)
    })
}

/// Prints problems, one per line, errors counted at the end.
pub fn report(kind: ModuleKind, problems: &[Problem]) {
    for problem in problems {
        eprintln!("{kind}: {problem}");
    }
    let errors = problems
        .iter()
        .filter(|p| p.severity == svcid_config::Severity::Error)
        .count();
    if errors > 0 {
        eprintln!("{kind}: configuration has {errors} error(s); not started");
    }
}

/// Starts logging as configured; logs the configuration warnings as WARN events.
pub fn start_logging(
    kind: ModuleKind,
    loaded: &Loaded,
) -> Result<svcid_logging::LogGuard, ExitCode> {
    let guard = svcid_logging::init(&loaded.settings.logging).map_err(|error| {
        eprintln!("{kind}: cannot start logging: {error}");
        ExitCode::from(EX_IOERR)
    })?;
    for problem in &loaded.warnings {
        tracing::warn!(eventId = crate::events::CONFIGURATION_WARNING, problem = %problem, "Configuration warning.");
    }
    warn_if_exposed(&loaded.settings.home.properties_file());
    Ok(guard)
}

/// Logs WARN `insecureFilePermissions` when the properties file, which holds this module's private
/// generator key, may be read or written by its group or by other users (unix mode `& 0o077`),
/// naming the file and the fix. The daemon still starts: refusing would break installations that
/// protect the folder instead, and the operator is told what to do.
pub fn warn_if_exposed(file: &std::path::Path) {
    if let Some(mode) = exposed_mode(file) {
        tracing::warn!(
            eventId = "insecureFilePermissions",
            file = %file.display(),
            mode = %format!("{mode:04o}"),
            fix = %format!("chmod 600 {}", file.display()),
            "The file holds this module's private key and is accessible to other users."
        );
    }
}

/// The file's permission bits when group or others have any access; `None` when it is private
/// or cannot be inspected (a missing file has been reported by the loader already).
#[cfg(unix)]
pub fn exposed_mode(file: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(file).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Permission bits are a unix notion; elsewhere nothing is reported.
#[cfg(not(unix))]
pub fn exposed_mode(_file: &std::path::Path) -> Option<u32> {
    None
}

/// Why a daemon stopped other than by a signal; each maps to a documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The gRPC port could not be bound.
    #[error("cannot bind gRPC port {address}: {source}")]
    Bind {
        /// `host:port` as configured.
        address: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The actuator HTTP port (`server.port`) could not be bound.
    #[error("cannot bind HTTP port {address} (server.port): {source}")]
    BindHttp {
        /// `address:port` as configured.
        address: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file the daemon keeps (engine id, logs) could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The generator key could not be used for signing.
    #[error("generator key: {0}")]
    Key(#[from] svcid_identity::jwk::KeyError),
    /// The server failed while running.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// A daemon was handed the settings of another module (a programming error).
    #[error("settings are not for a {expected}")]
    WrongModule {
        /// The module the daemon is.
        expected: &'static str,
    },
    /// The TLS settings, valid at load, could not be turned into a TLS configuration.
    #[error("gRPC TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Reflection descriptors could not be loaded (a build defect).
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

impl DaemonError {
    /// The sysexits code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            DaemonError::Bind { .. } | DaemonError::BindHttp { .. } => EX_UNAVAILABLE,
            DaemonError::Io { .. } => EX_IOERR,
            DaemonError::Key(_) | DaemonError::Tls(_) => EX_CONFIG,
            DaemonError::Serve(_)
            | DaemonError::Reflection(_)
            | DaemonError::WrongModule { .. } => EX_SOFTWARE,
        })
    }
}

/// Binds the configured gRPC address, mapping failure to [`DaemonError::Bind`].
pub async fn bind(host: &str, port: u16) -> Result<tokio::net::TcpListener, DaemonError> {
    crate::server::bind(host, port)
        .await
        .map_err(|source| DaemonError::Bind {
            address: format!("{host}:{port}"),
            source,
        })
}

/// The whole life of a daemon process after its arguments: configuration, logging, runtime,
/// `run` until SIGINT/SIGTERM, exit code. `run` gets the settings, the overrides they were loaded
/// with (for live reloads) and the bound listener.
pub fn main<F, Fut>(kind: ModuleKind, run: F) -> ExitCode
where
    F: FnOnce(svcid_config::Settings, Overrides, tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = Result<(), DaemonError>>,
{
    let args = match parse_args(kind, std::env::args().skip(1)) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let overrides = Overrides::from_process(args.overrides.clone());
    let loaded = match load_settings(kind, &args.home, &overrides) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    // Logging starts before the runtime so the local UTC offset is read while single-threaded.
    let _guard = match start_logging(kind, &loaded) {
        Ok(guard) => guard,
        Err(code) => return code,
    };
    let runtime = match crate::server::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{kind}: cannot start the runtime: {error}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    let settings = loaded.settings;
    let result = runtime.block_on(async move {
        let listener = bind(&settings.grpc.host, settings.grpc.port).await?;
        run(settings, overrides, listener).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(eventId = crate::events::STOPPED, "{kind} stopped: {error}");
            eprintln!("{kind}: {error}");
            error.exit_code()
        }
    }
}

#[cfg(all(test, unix))]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn only_files_open_to_group_or_others_are_reported() {
        let dir = std::env::temp_dir().join(format!("svcid-perm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("application.properties");
        std::fs::write(&file, "x=1\n").unwrap();
        for (mode, reported) in [
            (0o600, None),
            (0o400, None),
            (0o644, Some(0o644)),
            (0o640, Some(0o640)),
            (0o604, Some(0o604)),
            (0o620, Some(0o620)),
        ] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(exposed_mode(&file), reported, "{mode:o}");
        }
        assert_eq!(exposed_mode(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// What a daemon proves and checks identities with, built once from its settings: the issuer of
/// its own tokens, the verifier of its peers' tokens, and its port's TLS. The live reload swaps
/// what is inside them ([`Credentials::live_targets`]); the `Arc`s themselves never change.
#[derive(Debug)]
pub struct Credentials {
    /// Mints this module's tokens (outbound calls).
    pub issuer: std::sync::Arc<svcid_identity::token::TokenIssuer>,
    /// Verifies peers' tokens (the auth layer).
    pub verifier: std::sync::Arc<svcid_identity::token::TokenVerifier>,
    /// The gRPC port's TLS, replaceable by a reload; `None` for plain text.
    pub server_tls: Option<std::sync::Arc<crate::tls::LiveServerTls>>,
}

impl Credentials {
    /// Builds the issuer, verifier and TLS from the parts of the settings they consume.
    pub fn new(
        policy: svcid_identity::token::VerifyPolicy,
        jwt: svcid_config::JwtSettings,
        deployments: svcid_identity::registry::DeploymentRegistry,
        tls: Option<&svcid_config::ServerTls>,
    ) -> Result<Self, DaemonError> {
        use std::sync::Arc;
        let clock = Arc::new(svcid_identity::clock::SystemClock);
        let issuer = Arc::new(svcid_identity::token::TokenIssuer::new(
            jwt.generator_key,
            jwt.token_expiration,
            clock.clone(),
        )?);
        let verifier = Arc::new(svcid_identity::token::TokenVerifier::new(
            policy,
            deployments,
            clock,
        ));
        let server_tls = match tls {
            Some(tls) => Some(Arc::new(crate::tls::LiveServerTls::new(tls)?)),
            None => None,
        };
        Ok(Self {
            issuer,
            verifier,
            server_tls,
        })
    }

    /// Where a reload puts what it applies live.
    pub fn live_targets(&self) -> crate::reload::LiveTargets {
        crate::reload::LiveTargets {
            verifier: std::sync::Arc::clone(&self.verifier),
            issuer: std::sync::Arc::clone(&self.issuer),
            server_tls: self.server_tls.clone(),
        }
    }
}

/// The address a listener is bound to (the port 0 picked, for the start-up log).
pub fn bound_address(
    listener: &tokio::net::TcpListener,
) -> Result<std::net::SocketAddr, DaemonError> {
    listener.local_addr().map_err(|source| DaemonError::Io {
        what: "cannot read the bound address of",
        path: "the gRPC listener".into(),
        source,
    })
}
