//! Making untrusted text safe to put into an error message or a log line.
//!
//! Values such as a token's `kid`, a header's `alg` or a configured `kty` come from peers or files and
//! may hold control characters (log injection) or be kilobytes long. They are never secret (key
//! material is never passed here), but they are shortened and escaped before anyone prints them,
//! with the one escaping rule of `svcid-printable`.

/// The longest excerpt of untrusted text that errors carry, in characters.
pub const EXCERPT_CHARS: usize = 64;

/// `text` cut to `max_chars` characters (with `…` when cut) and escaped by the rule every svcid
/// crate shares (control characters, U+2028 and U+2029).
pub use svcid_printable::excerpt;

/// The JSON type of `value`, for messages about a member of the wrong type (never its content).
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
