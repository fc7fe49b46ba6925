//! What happens before the runtime starts: the configuration is loaded and every problem
//! reported (nothing bound or written yet), then logging starts and the warnings are logged.

use std::process::ExitCode;

use svcid_config::{Loaded, ModuleHome, ModuleKind, Overrides, Problem};

use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::exit::{DaemonError, EX_CONFIG, EX_IOERR};

/// Loads the home's configuration. On failure prints one line per problem to stderr and returns
/// the exit code; nothing has been bound or written yet. A home whose evidence says it belongs to
/// the other module, or to both (`svcid_config::evidence`), is refused the same way, before its
/// log is touched.
pub fn load_settings(
    kind: ModuleKind,
    home: &std::path::Path,
    overrides: &Overrides,
) -> Result<Loaded, ExitCode> {
    // Read once: the binding and the evidence of which module the home is share the parse.
    let refused = |problems: Vec<Problem>| {
        report(kind, &problems);
        ExitCode::from(EX_CONFIG)
    };
    let props = svcid_config::read_sources(&ModuleHome::new(home), overrides).map_err(refused)?;
    let loaded = svcid_config::bind(kind, ModuleHome::new(home), &props).map_err(refused)?;
    if let Some(why) = svcid_config::evidence::refusal(kind, home, &props) {
        eprintln!("{kind}: {why}");
        eprintln!("{kind}: not started");
        return Err(ExitCode::from(EX_CONFIG));
    }
    // Freeing the parsed file (a tenth of a second for 10,000 deployments) need not delay serving.
    let freed = std::thread::Builder::new()
        .name("free-properties".to_owned())
        .spawn(move || drop(props));
    drop(freed);
    Ok(loaded)
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
        tracing::warn!(eventId = crate::events::CONFIGURATION_WARNING, code = %problem.code, problem = %problem, "Configuration warning.");
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
            eventId = crate::events::INSECURE_FILE_PERMISSIONS,
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

/// What the module trusts for its own outbound `https://` calls: a DPE its DPM client TLS
/// trust, DPM its engine-client TLS trust, and the system roots when that TLS is off. User-token
/// key fetches and the console login's token requests use it.
pub fn client_trust(settings: &svcid_config::Settings) -> svcid_config::ServerTrust {
    let client_tls = match &settings.role {
        svcid_config::RoleSettings::Dpm(dpm) => dpm.engine_tls.as_ref(),
        svcid_config::RoleSettings::Dpe(dpe) => dpe.dpm_tls.as_ref(),
    };
    client_tls.map_or(svcid_config::ServerTrust::SystemRoots, |tls| {
        tls.trust.clone()
    })
}

/// The module's user-token issuers (`None` when none is configured), fetching keys trusting
/// [`client_trust`].
pub fn users(settings: &svcid_config::Settings) -> Option<std::sync::Arc<svcid_users::Users>> {
    svcid_users::Users::new(
        &settings.users,
        &client_trust(settings),
        std::sync::Arc::new(svcid_identity::clock::SystemClock),
    )
    .map(std::sync::Arc::new)
}

/// Opens the configured gRPC listener, mapping failure to [`DaemonError::Bind`].
pub async fn listen_grpc(host: &str, port: u16) -> Result<TcpListener, DaemonError> {
    crate::server::listen(host, port)
        .await
        .map_err(|source| DaemonError::Bind {
            address: format!("{host}:{port}"),
            source,
        })
}

/// The address a listener is bound to (the port 0 picked, for the start-up logs); `listener`
/// names it in the error.
pub fn local_address(
    listener: &TcpListener,
    name: &'static str,
) -> Result<SocketAddr, DaemonError> {
    listener
        .local_addr()
        .map_err(|source| DaemonError::LocalAddress {
            listener: name,
            source,
        })
}
