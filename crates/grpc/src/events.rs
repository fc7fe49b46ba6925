//! The log event ids this crate emits, defined once; both daemons log them (docs/operations.md
//! documents each). The daemons' own events are in `svcid_dpm::events` and `svcid_dpe::events`.

// The life cycle (daemon.rs, daemon/startup.rs, http.rs).

/// The gRPC server serves; carries the bound host and port. Defined where a home's log is read
/// as evidence of which module ran there.
pub const GRPC_SERVER_STARTED: &str = svcid_config::evidence::STARTED_EVENT;
/// The HTTP port serves; carries the bound host and port.
pub const HTTP_SERVER_STARTED: &str = "httpServerStarted";
/// At start, with no identity provider: the console is open to whoever reaches the HTTP port.
pub const CONSOLE_OPEN: &str = "consoleOpen";
/// A configuration finding that does not stop the daemon (at start and on reload).
pub const CONFIGURATION_WARNING: &str = "configurationWarning";
/// A key file others may read or write.
pub const INSECURE_FILE_PERMISSIONS: &str = "insecureFilePermissions";
/// The daemon stopped (INFO after a signal, ERROR with the reason otherwise).
pub const STOPPED: &str = "stopped";

// Authentication and authorization (auth.rs, refusals.rs).

/// A call was refused for its token.
pub const AUTHENTICATION_FAILED: &str = "authenticationFailed";
/// Identical refusals folded into one line with their count.
pub const AUTHENTICATION_FAILED_REPEATED: &str = "authenticationFailedRepeated";
/// An authenticated caller may not call the method.
pub const ACCESS_DENIED: &str = "accessDenied";

// WhoAmI (whoami.rs).

/// `WhoAmI` answered; `authenticatedUser` is how this module sees the caller.
pub const WHO_AM_I: &str = "whoAmI";

// Connections (connections.rs).

/// Connections closed at accept because a cap was reached.
pub const CONNECTIONS_REFUSED: &str = "connectionsRefused";
/// An admitted connection closed for a bound (no first call in time, idle, stalled writes).
pub const CONNECTION_CLOSED: &str = "connectionClosed";
/// Accepting a connection failed.
pub const ACCEPT_FAILED: &str = "acceptFailed";

// TLS (tls.rs).

/// What the gRPC port serves with TLS.
pub const GRPC_TLS: &str = "grpcTls";
/// The serving certificate expires soon.
pub const CERTIFICATE_EXPIRING: &str = "certificateExpiring";
/// Outbound TLS trusts every server certificate.
pub const INSECURE_TRUST_ALL: &str = "insecureTrustAll";
/// A TLS handshake failed or timed out.
pub const TLS_HANDSHAKE_FAILED: &str = "tlsHandshakeFailed";

// Live configuration (reload.rs).

/// A changed file failed validation and changed nothing.
pub const CONFIGURATION_RELOAD_FAILED: &str = "configurationReloadFailed";
/// A reload was applied; says when it clears the failure of the reload before it.
pub const CONFIGURATION_RELOADED: &str = "configurationReloaded";
/// One problem of a file that failed validation.
pub const CONFIGURATION_PROBLEM: &str = "configurationProblem";
/// `logging.level.*` applied live.
pub const LOG_LEVELS_CHANGED: &str = "logLevelsChanged";
/// The generator key changed (key rotation).
pub const GENERATOR_KEY_CHANGED: &str = "generatorKeyChanged";
/// The serving certificate was replaced.
pub const CERTIFICATE_RELOADED: &str = "certificateReloaded";
/// The deployments changed: keys added, revoked, reinstated, removed, token profiles.
pub const DEPLOYMENTS_RELOADED: &str = "deploymentsReloaded";
/// A changed setting takes effect only at the next start.
pub const RESTART_REQUIRED: &str = "restartRequired";
