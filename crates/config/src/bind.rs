//! Typed reads of single properties that never fail the whole load: a bad value becomes a
//! [`Problem`] naming where it came from, the default stands in, and binding goes on so that every
//! problem in the file is reported in one run.

use std::time::Duration;

use svcid_properties::{DurationUnit, Problem, PropertySet, Value, parse_bool, parse_duration};

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
    pub fn error_at(&mut self, value: &Value, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem::error(
            Some(value.origin.clone()),
            value.key.clone(),
            message.into(),
            Some(fix.into()),
        ));
    }

    /// Records a warning about a value that is present.
    pub fn warn_at(&mut self, value: &Value, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem::warning(
            Some(value.origin.clone()),
            value.key.clone(),
            message.into(),
            Some(fix.into()),
        ));
    }

    /// Records an error about a property that is missing.
    pub fn missing(&mut self, name: &str, fix: impl Into<String>) {
        self.problems.push(Problem::error(
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

    /// A value parsed by `parse`, or `default` (with a problem recorded) when it does not parse.
    pub fn parsed<T>(
        &mut self,
        name: &str,
        default: T,
        fix: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let Some(value) = self.props.get(name) else {
            return default;
        };
        match parse(value.raw.trim()) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.error_at(value, why, fix);
                default
            }
        }
    }

    /// `true`/`false`.
    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        self.parsed(name, default, "use true or false", |raw| {
            parse_bool(raw).map_err(|e| e.to_string())
        })
    }

    /// A TCP port, 0..=65535.
    pub fn port(&mut self, name: &str, default: u16) -> u16 {
        self.parsed(name, default, "use a port number from 0 to 65535", |raw| {
            raw.parse::<u16>()
                .map_err(|_| format!("{raw:?} is not a port number"))
        })
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
        self.parsed(name, default, fix, |raw| {
            parse_duration(raw, unit).map_err(|e| e.to_string())
        })
    }

    /// A duration that must be positive.
    pub fn positive_duration(&mut self, name: &str, default: Duration) -> Duration {
        let value = self.duration(name, default, DurationUnit::Millis);
        if value.is_zero() {
            if let Some(v) = self.props.get(name) {
                self.error_at(
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
