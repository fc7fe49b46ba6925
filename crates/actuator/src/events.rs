//! The log event ids this crate emits, defined once (docs/operations.md documents each).

/// One request to the HTTP port, at DEBUG.
pub const ACTUATOR_REQUEST: &str = "actuatorRequest";
