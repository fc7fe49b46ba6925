//! Typed reads of single properties that never fail the whole load: a bad value becomes a
//! [`Problem`] naming where it came from, the default stands in, and binding goes on so that every
//! problem in the file is reported in one run.

use std::time::Duration;

use svcid_properties::{
    DurationUnit, Problem, ProblemCode, PropertySet, Value, ValueError, parse_bool, parse_duration,
};

use crate::codes;

/// The longest value quoted back in a message, in characters. Anything longer is described by
/// its length only: a pasted private key (a `d` is 43 characters, a base64 keypair over 200) must
/// not reach a terminal or log, not even as a prefix.
const SHOWN_CHARS: usize = 24;

/// The longest key id (`fingerprint`, `kid`) quoted back: an RFC 7638 thumbprint is 43 characters
/// and operators need to see both sides of a mismatch; a pasted key is far longer.
const SHOWN_ID_CHARS: usize = 64;

/// A value for a message: quoted and escaped when short, otherwise only its length.
pub(crate) fn shown(raw: &str) -> String {
    shown_up_to(raw, SHOWN_CHARS)
}

/// A key id for a message (see [`SHOWN_ID_CHARS`]).
pub(crate) fn shown_id(raw: &str) -> String {
    shown_up_to(raw, SHOWN_ID_CHARS)
}

fn shown_up_to(raw: &str, max_chars: usize) -> String {
    let count = raw.chars().count();
    if count <= max_chars {
        format!("{raw:?}")
    } else {
        format!("(a {count}-character value, not shown)")
    }
}

/// The message for a value the properties crate refused, quoting the value by this crate's
/// stricter rule ([`shown`]) rather than the properties crate's 24-character prefix.
fn value_error(raw: &str, error: &ValueError) -> String {
    let value = shown(raw);
    match error {
        ValueError::NotBoolean { .. } => format!("{value} is not true or false"),
        ValueError::NotDuration { default_unit, .. } => format!(
            "{value} is not a duration: use a whole number with a unit (ns, us, ms, s, m, h, d), \
             ISO-8601 (PT15S) or a bare whole number of {default_unit}"
        ),
        ValueError::NegativeDuration { .. } => format!("{value} is negative"),
        ValueError::DurationOverflow { .. } => format!("{value} is too long a duration"),
    }
}

/// Reads properties and collects problems.
pub(crate) struct Binder<'a> {
    /// The layered sources of one module.
    pub props: &'a PropertySet,
    /// Everything found wrong so far, in the order found.
    pub problems: Vec<Problem>,
}

impl<'a> Binder<'a> {
    pub fn new(props: &'a PropertySet) -> Self {
        Self {
            props,
            problems: Vec::new(),
        }
    }

    /// Records an error about a value that is present.
    pub fn error_at(
        &mut self,
        code: ProblemCode,
        value: &Value,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem::error(
            code,
            Some(value.origin.clone()),
            value.key.clone(),
            message.into(),
            Some(fix.into()),
        ));
    }

    /// Records a warning about a value that is present.
    pub fn warn_at(
        &mut self,
        code: ProblemCode,
        value: &Value,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem::warning(
            code,
            Some(value.origin.clone()),
            value.key.clone(),
            message.into(),
            Some(fix.into()),
        ));
    }

    /// Records an error about a property that is missing.
    pub fn missing(&mut self, code: ProblemCode, name: &str, fix: impl Into<String>) {
        self.problems.push(Problem::error(
            code,
            None,
            name.to_owned(),
            "required property is missing".to_owned(),
            Some(fix.into()),
        ));
    }

    /// A string value, trimmed; `None` when absent.
    pub fn string(&self, name: &str) -> Option<(String, &'a Value)> {
        self.props.get(name).map(|v| (v.raw.trim().to_owned(), v))
    }

    /// A string with a default; an empty value counts as the default.
    pub fn string_or(&self, name: &str, default: &str) -> String {
        match self.string(name) {
            Some((s, _)) if !s.is_empty() => s,
            _ => default.to_owned(),
        }
    }

    /// A value parsed by `parse`, or `default` (with a problem `code` recorded) when it does not
    /// parse.
    pub fn parsed<T>(
        &mut self,
        name: &str,
        default: T,
        code: ProblemCode,
        fix: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let Some(value) = self.props.get(name) else {
            return default;
        };
        match parse(value.raw.trim()) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.error_at(code, value, why, fix);
                default
            }
        }
    }

    /// `true`/`false`.
    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        self.parsed(
            name,
            default,
            codes::NOT_BOOLEAN,
            "use true or false",
            |raw| parse_bool(raw).map_err(|e| value_error(raw, &e)),
        )
    }

    /// A TCP port, 0..=65535.
    pub fn port(&mut self, name: &str, default: u16) -> u16 {
        self.parsed(
            name,
            default,
            codes::NOT_PORT,
            "use a port number from 0 to 65535",
            |raw| {
                raw.parse::<u16>()
                    .map_err(|_| format!("{} is not a port number", shown(raw)))
            },
        )
    }

    /// A Spring duration; bare numbers are in `unit`.
    pub fn duration(&mut self, name: &str, default: Duration, unit: DurationUnit) -> Duration {
        let fix = match unit {
            DurationUnit::Millis => {
                "use a duration such as 500ms, 15s, 10m, 2d or PT15S (a bare number is milliseconds)"
            }
            DurationUnit::Seconds => {
                "use a duration such as 500ms, 15s, 10m, 2d or PT15S (a bare number is seconds)"
            }
        };
        self.parsed(name, default, codes::NOT_DURATION, fix, |raw| {
            parse_duration(raw, unit).map_err(|e| value_error(raw, &e))
        })
    }

    /// A duration that must be positive.
    pub fn positive_duration(&mut self, name: &str, default: Duration) -> Duration {
        let value = self.duration(name, default, DurationUnit::Millis);
        if value.is_zero() {
            if let Some(v) = self.props.get(name) {
                self.error_at(
                    codes::NOT_POSITIVE,
                    v,
                    "must be longer than zero",
                    "use a positive duration such as 1s",
                );
            }
            return default;
        }
        value
    }
}

/// One segment of a property name as written: `level[com.Foo]` gives `level` and then
/// `com.Foo`, so dotted map keys in brackets stay whole.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Segment<'a> {
    /// The text, without brackets.
    pub text: &'a str,
}

impl Segment<'_> {
    /// Whether this segment is a list index (`[0]` or `.0`), as Spring reads both.
    pub fn is_index(&self) -> bool {
        let text = self.text.trim();
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
    }
}

/// Splits a written name the way the properties crate reads it: at dots outside brackets, empty
/// segments dropped, an unclosed `[` running to the end of the name.
pub(crate) fn segments(name: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let (text, after) = match inner.find(']') {
                Some(end) => (&inner[..end], &inner[end + 1..]),
                None => (inner, ""),
            };
            out.push(Segment { text });
            rest = after;
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        if end > 0 {
            out.push(Segment { text: &rest[..end] });
        }
        rest = &rest[end..];
        if let Some(after) = rest.strip_prefix('.') {
            rest = after;
        }
    }
    out
}
