//! Fuzzes the `.properties` parser (`svcid_properties`): any text, valid UTF-8 or not, must load
//! or be refused with problems, and every lookup on the result must answer without panicking.
//!
//! Lookups use the names the daemons read plus names taken from the input itself (the keys it
//! defines, and its first line), so that odd names (`a[`, `x..y`, `[0]`, escapes) reach the name
//! parser too. The duration and boolean conversions get the whole input and every value.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use svcid_properties::{DurationUnit, PropertySet, parse_bool, parse_duration};

/// Names the daemons look up, so the relaxed-binding paths for real properties are exercised.
const KNOWN: [&str; 6] = [
    "ataccama.one.platform.deployments",
    "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys",
    "ataccama.one.platform.deployments.dpe-dev.security.roles",
    "ataccama.authentication.internal.jwt.generator.key",
    "ataccama.authentication.internal.jwt.generator.token-expiration",
    "ataccama.server.grpc.port",
];

/// Bounds the names taken from the input: each costs a pass over all entries.
const MAX_INPUT_NAMES: usize = 16;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut props = PropertySet::new();
    let loaded = props.load_str(&text, Path::new("etc/application.properties"));
    if let Err(problems) = &loaded {
        // Rendering problems is what an operator sees; it must not panic either.
        for problem in problems {
            let _ = problem.to_string();
        }
    }
    for warning in props.warnings() {
        let _ = warning.to_string();
    }

    let first_line = text.lines().next().unwrap_or_default().to_owned();
    let from_input: Vec<String> = props
        .iter()
        .take(MAX_INPUT_NAMES)
        .map(|value| value.key.clone())
        .chain(std::iter::once(first_line))
        .collect();
    let names = KNOWN
        .iter()
        .copied()
        .chain(from_input.iter().map(String::as_str));
    for name in names {
        let _ = props.get(name);
        let _ = props.get_list(name);
        let _ = props.map_keys(name);
        let _ = props.entries_under(name);
    }

    for value in props.iter().take(MAX_INPUT_NAMES) {
        let _ = format!("{value:?}");
        convert(&value.raw);
    }
    convert(&text);
});

/// Every conversion a daemon applies to a raw value, errors rendered.
fn convert(raw: &str) {
    for unit in [DurationUnit::Millis, DurationUnit::Seconds] {
        if let Err(error) = parse_duration(raw, unit) {
            let _ = error.to_string();
        }
    }
    if let Err(error) = parse_bool(raw) {
        let _ = error.to_string();
    }
}
