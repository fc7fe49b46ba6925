//! The log event ids DPE emits, defined once (docs/operations.md documents each). The events
//! both daemons emit are in `svcid_grpc::events`.

/// Registration outcomes ("Engine registered.", "Unable to register.").
pub const REGISTER: &str = "register";
/// Unregistering at shutdown.
pub const UNREGISTER: &str = "unregister";
/// DPM asked for the engine's status.
pub const GET_STATUS: &str = "getStatus";
