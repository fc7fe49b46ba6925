//! Why a daemon stops other than by a signal, and the sysexits code each reason maps to.
//!
//! 0 after a graceful shutdown, [`EX_USAGE`] for bad arguments, [`EX_CONFIG`] for a configuration
//! that does not validate, [`EX_IOERR`] when the log or data folder cannot be written,
//! [`EX_UNAVAILABLE`] when a port cannot be bound or a service needed at start (DPM's database) cannot
//! be reached, [`EX_SOFTWARE`] when the server fails while
//! running.

use std::path::PathBuf;
use std::process::ExitCode;

/// Bad command-line arguments.
pub const EX_USAGE: u8 = 64;
/// The gRPC or HTTP port could not be bound.
pub const EX_UNAVAILABLE: u8 = 69;
/// An internal error (the server failed while running).
pub const EX_SOFTWARE: u8 = 70;
/// The log or data folder could not be written.
pub const EX_IOERR: u8 = 74;
/// The configuration does not validate.
pub const EX_CONFIG: u8 = 78;

/// Why a daemon stopped other than by a signal; each maps to a documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The gRPC port (`ataccama.server.grpc.port`) could not be bound.
    #[error(
        "cannot bind gRPC port {address} ({}): {source}",
        svcid_config::names::GRPC_PORT
    )]
    Bind {
        /// `host:port` as configured.
        address: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The HTTP port (`server.port`) could not be bound.
    #[error("cannot bind HTTP port {address} (server.port): {source}")]
    BindHttp {
        /// `address:port` as configured.
        address: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file the daemon keeps (the engine id) could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The address of a bound listener could not be read back (for the start-up log).
    #[error("cannot read the bound address of the {listener} listener: {source}")]
    LocalAddress {
        /// `gRPC` or `HTTP`.
        listener: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The `scheduling-1` thread (status checks, registration) could not be started.
    #[error("cannot start the scheduling thread: {0}")]
    Scheduler(std::io::Error),
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
    /// A service the module needs at start (DPM's registry database) cannot be reached. The
    /// message names what and where, never a password.
    #[error("{what} is unavailable: {reason}")]
    Unavailable {
        /// What could not be reached, and where (`the registry database postgresql://one@h:5432/dpm`).
        what: String,
        /// Why.
        reason: String,
    },
    /// The console login's HTTP client cannot be set up (its client trust settings).
    #[error("console login: {0}")]
    Login(String),
    /// Reflection descriptors could not be loaded (a build defect).
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

impl DaemonError {
    /// The sysexits code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            DaemonError::Bind { .. }
            | DaemonError::BindHttp { .. }
            | DaemonError::Unavailable { .. } => EX_UNAVAILABLE,
            DaemonError::Io { .. } => EX_IOERR,
            DaemonError::Key(_) | DaemonError::Tls(_) | DaemonError::Login(_) => EX_CONFIG,
            DaemonError::Serve(_)
            | DaemonError::LocalAddress { .. }
            | DaemonError::Scheduler(_)
            | DaemonError::Reflection(_)
            | DaemonError::WrongModule { .. } => EX_SOFTWARE,
        })
    }
}
