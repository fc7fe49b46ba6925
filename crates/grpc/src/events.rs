//! Log event ids both daemons emit, defined once (docs/operations.md documents each). Events that
//! belong to one module are named where they are logged.

/// The gRPC server serves; carries the bound host and port.
pub const GRPC_SERVER_STARTED: &str = "grpcServerStarted";
/// A configuration finding that does not stop the daemon (at start and on reload).
pub const CONFIGURATION_WARNING: &str = "configurationWarning";
/// The daemon stopped (INFO after a signal, ERROR with the reason otherwise).
pub const STOPPED: &str = "stopped";
