//! Renders one log event as the product's JSON line and as Spring Boot's console line.
//!
//! Pure functions over an already collected [`Record`]: no I/O, no `tracing` types, no clock
//! reads, so the exact layout can be tested byte for byte. The JSON layout is the one
//! logstash-logback-encoder writes for the product (docs/operations.md) except that `message` is
//! written once; the console layout is Spring Boot's default `CONSOLE_LOG_PATTERN` without colours.

use std::fmt::Write as _;

use svcid_printable::escaped;
use time::{OffsetDateTime, UtcOffset};

use crate::Level;

/// Everything a line needs, collected from one event and its spans.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    /// When the event happened, already in the offset the log is written in.
    pub(crate) timestamp: OffsetDateTime,
    /// The event's target, printed as `logger_name` (the product prints its Java class there).
    pub(crate) target: String,
    /// Name of the emitting thread; ops read it to tell request work from scheduled work.
    pub(crate) thread: String,
    /// The event's severity.
    pub(crate) level: Level,
    /// The event's formatted text; `None` when the event has none (or it is empty).
    pub(crate) text: Option<String>,
    /// The caller identity, from the event or the innermost span that has one.
    pub(crate) authenticated_user: Option<String>,
    /// The correlation id, from the event or the innermost span that has one.
    pub(crate) correlation_id: Option<String>,
    /// The `eventId` field, kept apart because it leads both the message and the parameters.
    pub(crate) event_id: Option<String>,
    /// The remaining fields in declaration order, rendered as strings; names are unique.
    pub(crate) params: Vec<(String, String)>,
}

/// Top-level keys the JSON layout writes itself. A parameter with one of these names stays in
/// the `message` text but gets no top-level field of its own, so every line keeps unique keys.
const RESERVED_KEYS: [&str; 11] = [
    "@timestamp",
    "@version",
    "message",
    "logger_name",
    "thread_name",
    "severity",
    "level_value",
    "authenticatedUser",
    "correlationId",
    "eventId",
    "application",
];

impl Record {
    /// The `message` text: `eventId=<id> k1=v1, k2=v2, message=<text>`, with each part left out
    /// when it is absent; an event with neither eventId nor parameters is just its text.
    pub(crate) fn message(&self) -> String {
        let mut parts: Vec<String> = self
            .params
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let Some(event_id) = &self.event_id else {
            if parts.is_empty() {
                return self.text.clone().unwrap_or_default();
            }
            // Not in the product's samples (they always carry an eventId). Dropping the
            // parameters here would hide them from the console line, so they stay.
            if let Some(text) = &self.text {
                parts.push(format!("message={text}"));
            }
            return parts.join(", ");
        };
        let mut message = format!("eventId={event_id}");
        if let Some(text) = &self.text {
            parts.push(format!("message={text}"));
        }
        if !parts.is_empty() {
            message.push(' ');
            message.push_str(&parts.join(", "));
        }
        message
    }
}

/// The JSON line (without the trailing newline) in the product's field order.
pub(crate) fn json_line(record: &Record, application: &str) -> String {
    let mut line = String::with_capacity(512);
    line.push('{');
    push_string_field(&mut line, "@timestamp", &iso_timestamp(record.timestamp));
    line.push(',');
    push_string_field(&mut line, "@version", "1");
    line.push(',');
    push_string_field(&mut line, "message", &record.message());
    line.push(',');
    push_string_field(&mut line, "logger_name", &record.target);
    line.push(',');
    push_string_field(&mut line, "thread_name", &record.thread);
    line.push(',');
    push_string_field(&mut line, "severity", record.level.name());
    line.push(',');
    push_json_string(&mut line, "level_value");
    let _ = write!(line, ":{}", record.level.value());
    if let Some(user) = &record.authenticated_user {
        line.push(',');
        push_string_field(&mut line, "authenticatedUser", user);
    }
    if let Some(id) = &record.correlation_id {
        line.push(',');
        push_string_field(&mut line, "correlationId", id);
    }
    if let Some(id) = &record.event_id {
        line.push(',');
        push_string_field(&mut line, "eventId", id);
    }
    for (name, value) in &record.params {
        if RESERVED_KEYS.contains(&name.as_str()) {
            continue;
        }
        line.push(',');
        push_string_field(&mut line, name, value);
    }
    line.push(',');
    push_string_field(&mut line, "application", application);
    line.push('}');
    line
}

/// Spring Boot's default console line (without the trailing newline):
/// `%d{yyyy-MM-dd HH:mm:ss.SSS} %5p ${PID} --- [%15.15t] %-40.40logger{39} : %m`.
///
/// Control characters and line separators in the message and names are escaped (`\n`, `\r`,
/// `\t`, `\u{1b}`, …, the rule of `svcid-printable`) so that a value from the network cannot forge
/// extra log lines or terminal escapes.
pub(crate) fn plain_line(record: &Record, pid: u32) -> String {
    let timestamp = record.timestamp;
    let mut line = String::with_capacity(256);
    let _ = write!(
        line,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} {:>5} {pid} --- [{:>15}] {:<40} : {}",
        timestamp.year(),
        u8::from(timestamp.month()),
        timestamp.day(),
        timestamp.hour(),
        timestamp.minute(),
        timestamp.second(),
        timestamp.millisecond(),
        record.level.name(),
        keep_last_chars(&escaped(&record.thread), 15),
        keep_last_chars(&abbreviate_logger(&escaped(&record.target), 39), 40),
        escaped(&record.message()),
    );
    line
}

/// `2021-04-14T11:26:03.234+02:00`: local time, milliseconds, numeric offset (never `Z`, which
/// logback does not write either). Built from the parts so it cannot fail.
pub(crate) fn iso_timestamp(timestamp: OffsetDateTime) -> String {
    let offset: UtcOffset = timestamp.offset();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{sign}{:02}:{:02}",
        timestamp.year(),
        u8::from(timestamp.month()),
        timestamp.day(),
        timestamp.hour(),
        timestamp.minute(),
        timestamp.second(),
        timestamp.millisecond(),
        offset.whole_hours().unsigned_abs(),
        offset.minutes_past_hour().unsigned_abs(),
    )
}

/// Appends `"name":"value"` with JSON escaping.
fn push_string_field(line: &mut String, name: &str, value: &str) {
    push_json_string(line, name);
    line.push(':');
    push_json_string(line, value);
}

/// Appends `text` as a JSON string literal, escaped by serde_json.
fn push_json_string(line: &mut String, text: &str) {
    match serde_json::to_string(text) {
        Ok(quoted) => line.push_str(&quoted),
        // Serializing a `str` cannot fail; an empty string keeps the line valid JSON if it did.
        Err(_) => line.push_str("\"\""),
    }
}

/// Logback's `%.N` truncation: keeps the last `max` characters.
fn keep_last_chars(text: &str, max: usize) -> &str {
    let count = text.chars().count();
    if count <= max {
        return text;
    }
    match text.char_indices().nth(count - max) {
        Some((index, _)) => &text[index..],
        None => text,
    }
}

/// Logback's `%logger{N}` abbreviation: while the name is longer than `target_len`, shorten the
/// leading segments to their first character, left to right; the last segment is never shortened.
/// Works for dotted names (Java style) and `::` paths (Rust targets).
fn abbreviate_logger(name: &str, target_len: usize) -> String {
    if name.chars().count() <= target_len {
        return name.to_owned();
    }
    let separator = if name.contains("::") { "::" } else { "." };
    let mut segments: Vec<String> = name.split(separator).map(str::to_owned).collect();
    let last = segments.len().saturating_sub(1);
    for index in 0..last {
        if segments.join(separator).chars().count() <= target_len {
            break;
        }
        if let Some(first) = segments[index].chars().next() {
            segments[index] = first.to_string();
        }
    }
    segments.join(separator)
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn record() -> Record {
        Record {
            timestamp: datetime!(2021-04-14 11:26:03.234 +02:00),
            target: "svcid_dpe::status".to_owned(),
            thread: "scheduling-1".to_owned(),
            level: Level::Info,
            text: Some("Engine registered.".to_owned()),
            authenticated_user: None,
            correlation_id: None,
            event_id: Some("register".to_owned()),
            params: vec![("dpmUrl".to_owned(), "localhost:8531".to_owned())],
        }
    }

    #[test]
    fn message_forms() {
        let mut r = record();
        assert_eq!(
            r.message(),
            "eventId=register dpmUrl=localhost:8531, message=Engine registered."
        );
        r.text = None;
        assert_eq!(r.message(), "eventId=register dpmUrl=localhost:8531");
        r.params.clear();
        assert_eq!(r.message(), "eventId=register");
        r.text = Some("Hi.".to_owned());
        assert_eq!(r.message(), "eventId=register message=Hi.");
        r.event_id = None;
        assert_eq!(r.message(), "Hi.");
        r.params = vec![("port".to_owned(), "8531".to_owned())];
        assert_eq!(r.message(), "port=8531, message=Hi.");
        r.text = None;
        assert_eq!(r.message(), "port=8531");
        r.params.clear();
        assert_eq!(r.message(), "");
    }

    #[test]
    fn timestamp_has_millis_and_numeric_offset() {
        assert_eq!(
            iso_timestamp(datetime!(2021-04-14 11:26:03.234 +02:00)),
            "2021-04-14T11:26:03.234+02:00"
        );
        assert_eq!(
            iso_timestamp(datetime!(2021-01-02 03:04:05.006 UTC)),
            "2021-01-02T03:04:05.006+00:00"
        );
        assert_eq!(
            iso_timestamp(datetime!(2021-01-02 03:04:05 -03:30)),
            "2021-01-02T03:04:05.000-03:30"
        );
        assert_eq!(
            iso_timestamp(datetime!(2021-01-02 03:04:05 -00:30)),
            "2021-01-02T03:04:05.000-00:30"
        );
    }

    #[test]
    fn console_line_follows_spring_default_pattern() {
        let line = plain_line(&record(), 12345);
        assert_eq!(
            line,
            "2021-04-14 11:26:03.234  INFO 12345 --- [   scheduling-1] svcid_dpe::status                        \
             : eventId=register dpmUrl=localhost:8531, message=Engine registered."
        );
    }

    #[test]
    fn console_line_truncates_thread_and_abbreviates_logger_like_logback() {
        let mut r = record();
        r.level = Level::Error;
        r.thread = "grpc-default-executor-0".to_owned();
        r.target = "com.ataccama.dpm.registry.EngineRegistryServiceImpl".to_owned();
        let line = plain_line(&r, 7);
        assert!(
            line.contains(
                " ERROR 7 --- [ault-executor-0] c.a.d.r.EngineRegistryServiceImpl        : "
            ),
            "{line}"
        );
    }

    #[test]
    fn abbreviation_keeps_last_segment_and_handles_rust_paths() {
        assert_eq!(abbreviate_logger("a::b", 39), "a::b");
        let long = "svcid_grpc::interceptor::authentication::verification::Thing";
        let short = abbreviate_logger(long, 39);
        assert_eq!(short, "s::i::a::verification::Thing");
        assert_eq!(abbreviate_logger(&"x".repeat(50), 39), "x".repeat(50));
        assert_eq!(keep_last_chars(&"x".repeat(50), 40).len(), 40);
    }

    #[test]
    fn console_line_escapes_control_characters() {
        let mut r = record();
        r.text = Some("two\nlines\r\u{1b}[31m\ttab\u{2028}".to_owned());
        let line = plain_line(&r, 1);
        assert!(!line.contains(['\n', '\r', '\t', '\u{1b}', '\u{2028}']));
        assert!(
            line.ends_with("message=two\\nlines\\r\\u{1b}[31m\\ttab\\u{2028}"),
            "{line}"
        );
    }

    #[test]
    fn json_skips_reserved_parameter_names_at_top_level() {
        let mut r = record();
        r.params.push(("application".to_owned(), "evil".to_owned()));
        r.params.push(("@timestamp".to_owned(), "x".to_owned()));
        let line = json_line(&r, "oneApplication");
        assert_eq!(line.matches("\"application\"").count(), 1, "{line}");
        assert_eq!(line.matches("\"@timestamp\"").count(), 1, "{line}");
        assert!(line.contains("application=evil"), "{line}");
    }
}
