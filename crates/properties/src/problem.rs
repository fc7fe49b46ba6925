//! Where a value came from ([`Origin`]) and the one diagnostic every svcid crate reports to people
//! ([`Problem`]), named for programs by a stable [`ProblemCode`].
//!
//! The `Display` forms here are a user interface: daemons print one problem per line before they
//! exit and `svcid check` prints them as a report, so they are stable, single-line (control
//! characters are shown escaped) and never contain a value unless the caller put one into the
//! message. Deciding whether something is a problem belongs to the callers; so does naming it:
//! each crate defines the codes of the problems it finds (this crate's are in [`crate::codes`]).

use std::fmt::{self, Display};
use std::path::PathBuf;

/// Where a value came from, so that every error can point at the place to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A line of a properties file. Shows as `etc/application.properties:12`.
    File {
        /// The path exactly as given to the loader (usually relative to the module home), because
        /// that is the spelling the operator recognises.
        path: PathBuf,
        /// The 1-based line the property starts on; `0` means the file as a whole (it could not
        /// be read), shown without a line number.
        line: u32,
    },
    /// An environment variable. Shows as `environment variable ATACCAMA_SERVER_GRPC_PORT`.
    Env {
        /// The variable name exactly as in the environment.
        var: String,
    },
    /// A `--name=value` command-line argument. Shows as `command-line argument --name`.
    Arg {
        /// The property name as written after `--` (without the dashes).
        name: String,
    },
    /// A built-in default; shows as `default`.
    Default,
}

impl Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, line: 0 } => write_single_line(f, &path.display().to_string()),
            Self::File { path, line } => {
                write_single_line(f, &path.display().to_string())?;
                write!(f, ":{line}")
            }
            Self::Env { var } => {
                f.write_str("environment variable ")?;
                write_single_line(f, var)
            }
            Self::Arg { name } => {
                f.write_str("command-line argument --")?;
                write_single_line(f, name)
            }
            Self::Default => f.write_str("default"),
        }
    }
}

/// How bad a [`Problem`] is. Ordered so that `Error > Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth fixing; the module still starts.
    Warning,
    /// The configuration cannot be used; the module refuses to start.
    Error,
}

impl Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// What kind of finding a [`Problem`] is, for programs: `deployment.private-key-in-content`.
///
/// Messages are for people and may be reworded at any time; a code, once published, keeps its
/// meaning, so a tool decides on the code and never on the words (`svcid check` escalates some
/// daemon warnings to errors by code, and its `--json` report carries the code of every problem).
/// A code is two or more dot-separated words of lower-case ASCII letters, digits and dashes,
/// the first naming the area (`properties`, `arguments`, `deployment`, …). [`ProblemCode::new`]
/// checks that form; codes are constants, so a malformed one does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProblemCode(&'static str);

impl ProblemCode {
    /// A code of the documented form. Meant for constants, where a malformed code is a
    /// compile-time error.
    pub const fn new(code: &'static str) -> Self {
        assert!(
            well_formed(code),
            "a problem code is two or more dot-separated words of a-z, 0-9 and -"
        );
        Self(code)
    }

    /// The code as written in reports and documentation.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Whether `code` is two or more non-empty dot-separated words of `a-z`, `0-9` and `-`.
const fn well_formed(code: &str) -> bool {
    let bytes = code.as_bytes();
    let mut words = 1;
    let mut word_len = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                if word_len == 0 {
                    return false;
                }
                words += 1;
                word_len = 0;
            }
            b'a'..=b'z' | b'0'..=b'9' | b'-' => word_len += 1,
            _ => return false,
        }
        i += 1;
    }
    words >= 2 && word_len > 0
}

/// One finding about the configuration, for people. Display:
/// `etc/application.properties:12: error: ataccama.server.grpc.port: not a port number ("abc"); fix: use 0..=65535`,
/// or, without an origin, `ataccama.server.grpc.port: error: required property is missing; fix: …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What kind of finding this is, for programs; stable where the message is not.
    pub code: ProblemCode,
    /// Whether the module can still start.
    pub severity: Severity,
    /// Where the offending value is; `None` when the problem is a *missing* property.
    pub origin: Option<Origin>,
    /// The property name as written (or its canonical name when missing); may be empty when the
    /// problem concerns a whole file or argument list.
    pub property: String,
    /// What is wrong. Never echoes a secret value.
    pub message: String,
    /// How to fix it, when there is something better to say than "fix it".
    pub fix: Option<String>,
}

impl Problem {
    /// An error: the configuration cannot be used as it is.
    pub fn error(
        code: ProblemCode,
        origin: Option<Origin>,
        property: String,
        message: String,
        fix: Option<String>,
    ) -> Self {
        Self {
            code,
            severity: Severity::Error,
            origin,
            property,
            message,
            fix,
        }
    }

    /// A warning: worth fixing, not fatal.
    pub fn warning(
        code: ProblemCode,
        origin: Option<Origin>,
        property: String,
        message: String,
        fix: Option<String>,
    ) -> Self {
        Self {
            code,
            severity: Severity::Warning,
            origin,
            property,
            message,
            fix,
        }
    }

    /// Whether this problem stops the module from starting.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => {
                write!(f, "{origin}: {}: ", self.severity)?;
                if !self.property.is_empty() {
                    write_single_line(f, &self.property)?;
                    f.write_str(": ")?;
                }
            }
            None => {
                if !self.property.is_empty() {
                    write_single_line(f, &self.property)?;
                    f.write_str(": ")?;
                }
                write!(f, "{}: ", self.severity)?;
            }
        }
        write_single_line(f, &self.message)?;
        if let Some(fix) = &self.fix {
            f.write_str("; fix: ")?;
            write_single_line(f, fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

/// Writes `text` with line breaks and other control characters escaped (the rule of
/// `svcid-printable`), so that one problem is always one line of output whatever a file or
/// variable name contains.
fn write_single_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    svcid_printable::write_escaped(f, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: ProblemCode = ProblemCode::new("test.code");

    fn file(line: u32) -> Origin {
        Origin::File {
            path: "etc/application.properties".into(),
            line,
        }
    }

    #[test]
    fn origin_display_forms() {
        assert_eq!(file(12).to_string(), "etc/application.properties:12");
        assert_eq!(file(0).to_string(), "etc/application.properties");
        assert_eq!(
            Origin::Env {
                var: "ATACCAMA_SERVER_GRPC_PORT".into()
            }
            .to_string(),
            "environment variable ATACCAMA_SERVER_GRPC_PORT"
        );
        assert_eq!(
            Origin::Arg {
                name: "ataccama.server.grpc.port".into()
            }
            .to_string(),
            "command-line argument --ataccama.server.grpc.port"
        );
        assert_eq!(Origin::Default.to_string(), "default");
    }

    #[test]
    fn problem_display_with_origin() {
        let problem = Problem::error(
            CODE,
            Some(file(12)),
            "ataccama.server.grpc.port".into(),
            "not a port number (\"abc\")".into(),
            Some("use 0..=65535".into()),
        );
        assert_eq!(
            problem.to_string(),
            "etc/application.properties:12: error: ataccama.server.grpc.port: not a port number (\"abc\"); fix: use 0..=65535"
        );
    }

    #[test]
    fn problem_display_without_origin_starts_with_the_property() {
        let problem = Problem::error(
            CODE,
            None,
            "ataccama.authentication.internal.jwt.generator.key".into(),
            "required property is missing".into(),
            Some("run svcid link".into()),
        );
        assert_eq!(
            problem.to_string(),
            "ataccama.authentication.internal.jwt.generator.key: error: required property is missing; fix: run svcid link"
        );
    }

    #[test]
    fn problem_display_warning_without_fix_or_property() {
        let problem = Problem::warning(
            CODE,
            Some(file(0)),
            String::new(),
            "empty file".into(),
            None,
        );
        assert_eq!(
            problem.to_string(),
            "etc/application.properties: warning: empty file"
        );
        let bare = Problem::warning(CODE, None, String::new(), "nothing configured".into(), None);
        assert_eq!(bare.to_string(), "warning: nothing configured");
    }

    #[test]
    fn problem_display_is_one_line() {
        let problem = Problem::error(
            CODE,
            Some(Origin::File {
                path: "odd\nname".into(),
                line: 3,
            }),
            "key\r\n".into(),
            "bad\u{2028}value\u{1b}[31m".into(),
            Some("a\tb".into()),
        );
        let shown = problem.to_string();
        assert!(
            !shown.contains(['\n', '\r', '\u{2028}', '\u{1b}']),
            "{shown}"
        );
        assert_eq!(
            shown,
            "odd\\nname:3: error: key\\r\\n: bad\\u{2028}value\\u{1b}[31m; fix: a\\tb"
        );
    }

    #[test]
    fn codes_are_dotted_lower_case_words() {
        for good in ["a.b", "deployment.private-key-in-content", "x.y.z-1"] {
            assert!(well_formed(good), "{good}");
        }
        for bad in [
            "", "a", "a.", ".a", "a..b", "A.b", "a.b c", "a_b.c", "a.b\n", "é.a",
        ] {
            assert!(!well_formed(bad), "{bad:?}");
        }
        assert_eq!(CODE.to_string(), "test.code");
        assert_eq!(CODE.as_str(), "test.code");
    }

    #[test]
    fn the_code_does_not_show_in_the_line_for_people() {
        let problem = Problem::error(CODE, None, "p".into(), "m".into(), None);
        assert_eq!(problem.code, CODE);
        assert!(!problem.to_string().contains("test.code"));
    }

    #[test]
    fn severity_orders_error_above_warning() {
        assert!(Severity::Error > Severity::Warning);
        assert!(Problem::error(CODE, None, "p".into(), "m".into(), None).is_error());
    }
}
