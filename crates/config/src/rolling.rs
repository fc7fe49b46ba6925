//! Binding of the log files' rolling policy (`logging.logback.rollingpolicy.*`, Spring Boot's
//! names) into [`RollingPolicy`].
//!
//! Only values are checked here; the logging crate rolls the files.

use svcid_logging::RollingPolicy;

use crate::bind::{Binder, shown};
use crate::codes;
use crate::limits::parse_data_size;
use crate::names;

/// The smallest `max-file-size` accepted: below it nearly every line would start a file.
const MIN_LOG_FILE_SIZE: u64 = 4 * 1024;

/// Binds `logging.logback.rollingpolicy.max-file-size`, `max-history` and `total-size-cap`.
pub(crate) fn bind_rolling(b: &mut Binder<'_>) -> RollingPolicy {
    let defaults = RollingPolicy::default();
    let max_file_size = b.parsed(
        names::LOG_MAX_FILE_SIZE,
        defaults.max_file_size,
        codes::INVALID_VALUE,
        "use a data size of at least 4KB such as 10MB or 64KB (a bare number is bytes)",
        |raw| match parse_data_size(raw) {
            Some(size) if size >= MIN_LOG_FILE_SIZE => Ok(size),
            Some(_) => Err(format!(
                "{} is smaller than {MIN_LOG_FILE_SIZE} bytes",
                shown(raw)
            )),
            None => Err(format!("{} is not a data size", shown(raw))),
        },
    );
    let max_history = b.parsed(
        names::LOG_MAX_HISTORY,
        defaults.max_history,
        codes::INVALID_VALUE,
        "use a whole number of days, e.g. 7 (0 keeps archives forever)",
        |raw| {
            raw.parse::<u32>()
                .map_err(|_| format!("{} is not a whole number of days", shown(raw)))
        },
    );
    let total_size_cap = b.parsed(
        names::LOG_TOTAL_SIZE_CAP,
        defaults.total_size_cap,
        codes::INVALID_VALUE,
        "use a data size such as 1GB (0B means no cap)",
        |raw| parse_data_size(raw).ok_or_else(|| format!("{} is not a data size", shown(raw))),
    );
    RollingPolicy {
        max_file_size,
        max_history,
        total_size_cap,
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tests::props;

    #[test]
    fn rolling_policy_defaults_and_spring_forms() {
        let set = props("");
        let mut b = Binder::new(&set);
        assert_eq!(bind_rolling(&mut b), RollingPolicy::default());

        let set = props(
            "logging.logback.rollingpolicy.max-file-size=64KB\n\
             logging.logback.rollingpolicy.maxHistory=30\n\
             logging.logback.rollingpolicy.total-size-cap=1GB\n",
        );
        let mut b = Binder::new(&set);
        assert_eq!(
            bind_rolling(&mut b),
            RollingPolicy {
                max_file_size: 64 * 1024,
                max_history: 30,
                total_size_cap: 1 << 30,
            }
        );
        assert!(b.problems.is_empty());
    }

    #[test]
    fn bad_rolling_values_name_the_property() {
        let set = props(
            "logging.logback.rollingpolicy.max-file-size=10\n\
             logging.logback.rollingpolicy.max-history=-1\n\
             logging.logback.rollingpolicy.total-size-cap=lots\n",
        );
        let mut b = Binder::new(&set);
        assert_eq!(bind_rolling(&mut b), RollingPolicy::default());
        let problems: Vec<String> = b.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("max-file-size"), "{problems:?}");
        assert!(problems[1].contains("max-history"), "{problems:?}");
        assert!(problems[2].contains("total-size-cap"), "{problems:?}");
    }
}
