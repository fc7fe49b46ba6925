//! Spring Boot's conversions for the two value types every module reads: durations and booleans.
//!
//! They take the raw text of a [`crate::Value`], trim it (Spring does not trim the stored value,
//! but an operator never means the trailing blank), and return a typed value or a [`ValueError`]
//! whose message lists the accepted forms. Numbers, ports and the like are parsed by callers.

use std::fmt::{self, Display};
use std::time::Duration;

/// The unit of a bare number, which each duration property documents (e.g. milliseconds for
/// `check-connection-interval`, seconds for most others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationUnit {
    /// `5000` means five seconds.
    Millis,
    /// `15` means fifteen seconds.
    Seconds,
}

impl DurationUnit {
    fn nanos(self) -> u128 {
        match self {
            Self::Millis => 1_000_000,
            Self::Seconds => 1_000_000_000,
        }
    }
}

impl Display for DurationUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Millis => "milliseconds",
            Self::Seconds => "seconds",
        })
    }
}

/// A value that does not convert. Messages quote at most a short prefix of the text and say which
/// forms are accepted, so they can go straight into a [`crate::Problem`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not `true` or `false`.
    #[error("not a boolean ({found:?}); use true or false")]
    NotBoolean {
        /// The offending text (trimmed, shortened).
        found: String,
    },
    /// No duration form matches.
    #[error(
        "not a duration ({found:?}); use a whole number with a unit (ns, us, ms, s, m, h, d; e.g. 15s, 500ms, 10m), \
         ISO-8601 (e.g. PT15S, PT1M30S, P2D), or a bare whole number of {default_unit}"
    )]
    NotDuration {
        /// The offending text (trimmed, shortened).
        found: String,
        /// The unit a bare number would have had, named in the message.
        default_unit: DurationUnit,
    },
    /// A duration below zero.
    #[error("negative duration ({found:?}); durations must be zero or more")]
    NegativeDuration {
        /// The offending text (trimmed, shortened).
        found: String,
    },
    /// A duration too large to represent.
    #[error("duration too large ({found:?})")]
    DurationOverflow {
        /// The offending text (trimmed, shortened).
        found: String,
    },
}

/// At most this many characters of a bad value are quoted back, so a long pasted secret in the
/// wrong property is not echoed whole.
const QUOTED_CHARS: usize = 24;

fn quoted(text: &str) -> String {
    if text.chars().count() <= QUOTED_CHARS {
        text.to_owned()
    } else {
        text.chars().take(QUOTED_CHARS).chain("…".chars()).collect()
    }
}

/// Spring's boolean conversion, restricted to `true`/`false` (any case, surrounding blanks
/// ignored): `yes`, `on` and `1` are refused so that a typo cannot silently mean `false`.
pub fn parse_bool(raw: &str) -> Result<bool, ValueError> {
    let text = raw.trim();
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ValueError::NotBoolean {
            found: quoted(text),
        })
    }
}

/// Spring's duration conversion: `15s`, `500ms`, `10m`, `2h`, `2d`, `100ns`, `7us` (units any
/// case), ISO-8601 `PT15S`, `PT1M30S`, `P2D`, `PT0.5S`, or a bare whole number in `default_unit`.
/// Negative totals, overflow and anything else are errors that list the accepted forms.
pub fn parse_duration(raw: &str, default_unit: DurationUnit) -> Result<Duration, ValueError> {
    let text = raw.trim();
    let not_duration = || ValueError::NotDuration {
        found: quoted(text),
        default_unit,
    };
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let nanos = if unsigned.starts_with(['P', 'p']) {
        iso8601_nanos(text).ok_or_else(not_duration)?
    } else {
        simple_nanos(text, default_unit).ok_or_else(not_duration)?
    };
    let nanos = nanos.ok_or_else(|| ValueError::DurationOverflow {
        found: quoted(text),
    })?;
    let nanos = u128::try_from(nanos).map_err(|_| ValueError::NegativeDuration {
        found: quoted(text),
    })?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| ValueError::DurationOverflow {
        found: quoted(text),
    })?;
    let subsec =
        u32::try_from(nanos % 1_000_000_000).map_err(|_| ValueError::DurationOverflow {
            found: quoted(text),
        })?;
    Ok(Duration::new(secs, subsec))
}

/// Nanoseconds of a unit suffix, Spring's `DurationStyle.SIMPLE` units.
fn unit_nanos(suffix: &str) -> Option<u128> {
    Some(match suffix.to_ascii_lowercase().as_str() {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        _ => return None,
    })
}

/// Signed whole number from ASCII digits; the inner `None` is an overflow.
fn signed_whole(negative: bool, digits: &str) -> Option<i128> {
    let magnitude: i128 = digits.parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// `[+-]digits[unit]`. Outer `None`: not this form; inner `None`: overflow.
fn simple_nanos(text: &str, default_unit: DurationUnit) -> Option<Option<i128>> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits_end = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let (digits, suffix) = body.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let unit = if suffix.is_empty() {
        default_unit.nanos()
    } else {
        unit_nanos(suffix)?
    };
    let Some(count) = signed_whole(negative, digits) else {
        return Some(None);
    };
    Some(count.checked_mul(i128::try_from(unit).ok()?))
}

/// Java's `Duration.parse`: `[+-]P[nD][T[nH][nM][n[.f]S]]`, every number optionally signed,
/// case-insensitive, at least one component, and a `T` must be followed by one.
/// Outer `None`: malformed; inner `None`: overflow.
fn iso8601_nanos(text: &str) -> Option<Option<i128>> {
    const SECOND: i128 = 1_000_000_000;
    if !text.is_ascii() {
        return None;
    }
    let upper = text.to_ascii_uppercase();
    let (negative, body) = match upper.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, upper.strip_prefix('+').unwrap_or(&upper)),
    };
    let mut rest = body.strip_prefix('P')?;
    let mut total: Option<i128> = Some(0);
    // Components must come in this order, each at most once; `T` separates date from time.
    let mut allowed: &[u8] = b"DT";
    let mut any = false;
    let mut time_component_seen = true;
    while !rest.is_empty() {
        if let Some(after_t) = rest.strip_prefix('T') {
            // A second `T`, or a `T` after time components, is malformed.
            if !allowed.contains(&b'T') {
                return None;
            }
            allowed = b"HMS";
            time_component_seen = false;
            rest = after_t;
            continue;
        }
        let (number_negative, unsigned) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest.strip_prefix('+').unwrap_or(rest)),
        };
        let digits_end = unsigned
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(unsigned.len());
        let (digits, after_digits) = unsigned.split_at(digits_end);
        if digits.is_empty() {
            return None;
        }
        let (fraction, after_number) = match after_digits.strip_prefix(['.', ',']) {
            Some(f) => {
                let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                if end > 9 {
                    return None;
                }
                (Some(&f[..end]), &f[end..])
            }
            None => (None, after_digits),
        };
        let designator = *after_number.as_bytes().first()?;
        if designator == b'T' {
            return None;
        }
        let position = allowed.iter().position(|&b| b == designator)?;
        allowed = allowed.get(position + 1..)?;
        if fraction.is_some() && designator != b'S' {
            return None;
        }
        let unit = match designator {
            b'D' => 86_400 * SECOND,
            b'H' => 3_600 * SECOND,
            b'M' => 60 * SECOND,
            b'S' => SECOND,
            _ => return None,
        };
        if designator != b'D' {
            time_component_seen = true;
        }
        let fraction_nanos = fraction.map_or(Some(0), |f| {
            let padded = format!("{f:0<9}");
            padded.parse::<i128>().ok()
        })?;
        let component = signed_whole(false, digits)
            .and_then(|whole| whole.checked_mul(unit))
            .and_then(|n| n.checked_add(fraction_nanos))
            .map(|n| if number_negative { -n } else { n });
        total = total.zip(component).and_then(|(t, c)| t.checked_add(c));
        any = true;
        rest = &after_number[1..];
    }
    if !any || !time_component_seen {
        return None;
    }
    Some(total.map(|t| if negative { -t } else { t }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use DurationUnit::{Millis, Seconds};

    fn ok(raw: &str, unit: DurationUnit) -> Duration {
        match parse_duration(raw, unit) {
            Ok(d) => d,
            Err(e) => panic!("{raw:?}: {e}"),
        }
    }

    #[test]
    fn simple_forms() {
        for unit in [Millis, Seconds] {
            assert_eq!(ok("15s", unit), Duration::from_secs(15));
            assert_eq!(ok("500ms", unit), Duration::from_millis(500));
            assert_eq!(ok("10m", unit), Duration::from_secs(600));
            assert_eq!(ok("2h", unit), Duration::from_secs(7_200));
            assert_eq!(ok("2d", unit), Duration::from_secs(172_800));
            assert_eq!(ok("100ns", unit), Duration::from_nanos(100));
            assert_eq!(ok("7us", unit), Duration::from_micros(7));
            assert_eq!(
                ok("15S", unit),
                Duration::from_secs(15),
                "units are case-insensitive"
            );
            assert_eq!(
                ok("  +15s \t", unit),
                Duration::from_secs(15),
                "trimmed, plus sign"
            );
            assert_eq!(ok("0s", unit), Duration::ZERO);
            assert_eq!(ok("-0s", unit), Duration::ZERO);
        }
    }

    #[test]
    fn bare_numbers_use_the_default_unit() {
        assert_eq!(ok("5000", Millis), Duration::from_millis(5_000));
        assert_eq!(ok("5000", Seconds), Duration::from_secs(5_000));
        assert_eq!(ok("0", Millis), Duration::ZERO);
    }

    #[test]
    fn iso8601_forms() {
        for unit in [Millis, Seconds] {
            assert_eq!(ok("PT15S", unit), Duration::from_secs(15));
            assert_eq!(ok("pt15s", unit), Duration::from_secs(15));
            assert_eq!(ok("PT1M30S", unit), Duration::from_secs(90));
            assert_eq!(ok("P2D", unit), Duration::from_secs(172_800));
            assert_eq!(
                ok("P1DT2H3M4S", unit),
                Duration::from_secs(86_400 + 7_200 + 180 + 4)
            );
            assert_eq!(ok("PT0.5S", unit), Duration::from_millis(500));
            assert_eq!(ok("PT1,25S", unit), Duration::from_millis(1_250));
            assert_eq!(
                ok("PT1H-30M", unit),
                Duration::from_secs(1_800),
                "Java allows signed parts"
            );
            assert_eq!(ok("-PT-15S", unit), Duration::from_secs(15));
        }
    }

    #[test]
    fn junk_is_refused_with_the_accepted_forms() {
        for junk in [
            "",
            "  ",
            "s",
            "15 s",
            "1.5s",
            "15sec",
            "15x",
            "fifteen",
            "PT",
            "P",
            "P1DT",
            "PT15",
            "P1W",
            "P1M",
            "P1Y",
            "PT1S2M",
            "PT1H1H",
            "PT1.5M",
            "PT1.1234567891S",
            "P1D2D",
            "PTT1S",
            "1e3s",
            "٣s",
        ] {
            let error = parse_duration(junk, Seconds).expect_err(junk);
            assert!(
                matches!(error, ValueError::NotDuration { .. }),
                "{junk:?}: {error:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains("15s") && message.contains("PT15S") && message.contains("seconds"),
                "{message}"
            );
        }
        let millis = parse_duration("x", Millis).expect_err("x").to_string();
        assert!(
            millis.contains("bare whole number of milliseconds"),
            "{millis}"
        );
    }

    #[test]
    fn negative_and_overflow() {
        for negative in ["-1s", "-5", "PT-1S", "-PT1S", "P1DT-25H"] {
            assert!(
                matches!(
                    parse_duration(negative, Millis),
                    Err(ValueError::NegativeDuration { .. })
                ),
                "{negative}"
            );
        }
        for huge in [
            "99999999999999999999999999999999999999999999d",
            "999999999999999999999999d",
            "P99999999999999999999999999999999999999D",
        ] {
            assert!(
                matches!(
                    parse_duration(huge, Millis),
                    Err(ValueError::DurationOverflow { .. })
                ),
                "{huge}"
            );
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool(" TRUE \t"), Ok(true));
        assert_eq!(parse_bool("False"), Ok(false));
        for junk in ["", "yes", "1", "on", "tru", "false!"] {
            let error = parse_bool(junk).expect_err(junk);
            assert!(error.to_string().contains("use true or false"), "{error}");
        }
    }

    #[test]
    fn quoted_text_is_shortened() {
        let long = "A".repeat(200);
        let message = parse_bool(&long).expect_err("long").to_string();
        assert!(message.len() < 100, "{message}");
    }

    #[test]
    fn never_panics_on_generated_garbage() {
        let mut noise = crate::noise::Noise::new(3);
        const PIECES: &[&str] = &[
            "P",
            "T",
            "D",
            "H",
            "M",
            "S",
            "s",
            "ms",
            "ns",
            "us",
            "d",
            "h",
            "m",
            "-",
            "+",
            ".",
            ",",
            "0",
            "9",
            "99999999999",
            " ",
            "é",
            "x",
        ];
        for _ in 0..50_000 {
            let len = noise.below(12);
            let text: String = (0..len)
                .map(|_| PIECES[noise.below(PIECES.len())])
                .collect();
            let _ = parse_duration(&text, Millis);
            let _ = parse_duration(&text, Seconds);
            let _ = parse_bool(&text);
        }
    }
}
