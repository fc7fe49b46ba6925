//! The log event ids this crate emits, defined once (README "Log events" documents each).

/// One request to the HTTP port, at DEBUG.
pub const ACTUATOR_REQUEST: &str = "actuatorRequest";
