//! The [`ProblemCode`]s of the problems this crate finds itself: reading a properties file
//! (`properties.*`) and `--name=value` arguments (`arguments.*`). Problems about what the
//! properties mean are named by the crates that bind them.

use crate::problem::ProblemCode;

/// Error: the file could not be read at all (missing, unreadable).
pub const FILE_UNREADABLE: ProblemCode = ProblemCode::new("properties.file-unreadable");
/// Error: a line holds bytes that are not UTF-8.
pub const NOT_UTF8: ProblemCode = ProblemCode::new("properties.not-utf8");
/// Error: `\u` not followed by four hexadecimal digits.
pub const MALFORMED_UNICODE_ESCAPE: ProblemCode =
    ProblemCode::new("properties.malformed-unicode-escape");
/// Error: half of a UTF-16 surrogate pair written as `\uXXXX`.
pub const UNPAIRED_SURROGATE: ProblemCode = ProblemCode::new("properties.unpaired-surrogate");
/// Warning: a line with a value but no property name; it is ignored.
pub const NO_NAME: ProblemCode = ProblemCode::new("properties.no-name");
/// Warning: a property set twice in one file; the later line wins.
pub const DUPLICATE: ProblemCode = ProblemCode::new("properties.duplicate");

/// Error: a command-line argument that is not `--name=value`.
pub const ARGUMENT_NOT_AN_OPTION: ProblemCode = ProblemCode::new("arguments.not-an-option");
/// Error: `--name` without `=value`.
pub const ARGUMENT_WITHOUT_VALUE: ProblemCode = ProblemCode::new("arguments.no-value");
/// Error: `--=value`, no property name.
pub const ARGUMENT_WITHOUT_NAME: ProblemCode = ProblemCode::new("arguments.no-name");
/// Warning: a property given twice as an argument; the later one wins.
pub const ARGUMENT_DUPLICATE: ProblemCode = ProblemCode::new("arguments.duplicate");

/// Every code above, for documentation checks and uniqueness tests.
pub const ALL: &[ProblemCode] = &[
    FILE_UNREADABLE,
    NOT_UTF8,
    MALFORMED_UNICODE_ESCAPE,
    UNPAIRED_SURROGATE,
    NO_NAME,
    DUPLICATE,
    ARGUMENT_NOT_AN_OPTION,
    ARGUMENT_WITHOUT_VALUE,
    ARGUMENT_WITHOUT_NAME,
    ARGUMENT_DUPLICATE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_in_this_crates_areas() {
        let mut seen = std::collections::HashSet::new();
        for code in ALL {
            assert!(seen.insert(code), "{code} twice");
            assert!(
                code.as_str().starts_with("properties.") || code.as_str().starts_with("arguments."),
                "{code}"
            );
        }
    }
}
