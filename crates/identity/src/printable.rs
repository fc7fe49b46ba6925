//! Making untrusted text safe to put into an error message or a log line.
//!
//! Values such as a token's `kid`, a header's `alg` or a configured `kty` come from peers or files and
//! may hold control characters (log injection) or be kilobytes long. They are never secret (key
//! material is never passed here), but they are shortened and escaped before anyone prints them.

/// The longest excerpt of untrusted text that errors carry, in characters.
pub const EXCERPT_CHARS: usize = 64;

/// `text` cut to `max_chars` characters (with `…` when cut) and with control characters escaped.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars) + 3);
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn excerpt_escapes_and_truncates() {
        assert_eq!(excerpt("abc", 64), "abc");
        assert_eq!(excerpt("a\0b\n", 64), "a\\u{0}b\\n");
        assert_eq!(excerpt(&"x".repeat(100), 4), "xxxx…");
    }
}
