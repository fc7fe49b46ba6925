//! Log levels as Spring Boot names them, and the per-target thresholds built from
//! `logging.level.root` / `logging.level.<target>`.
//!
//! This module only decides *whether* an event of a given target and severity is wanted; it knows
//! nothing about output. Targets are matched the way logback matches logger names: a configured
//! name covers itself and everything below it, on a segment boundary, and the most specific name
//! wins. Spring names are dotted (`com.ataccama.dpm`), Rust targets use `::`
//! (`svcid_dpm::registry`), so each configured name matches in both spellings.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

/// A Spring Boot log level: the threshold a target's events must reach to be written.
///
/// `Off` exists because Spring accepts it (and so do operators silencing a noisy library).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// Everything, including the noisiest diagnostics.
    Trace,
    /// Diagnostics for developers.
    Debug,
    /// Normal operation (the Spring default).
    Info,
    /// Something unexpected that the module survived.
    Warn,
    /// A failure.
    Error,
    /// Nothing at all.
    Off,
}

impl Level {
    /// Every level's Spring name, in the order an error message lists them.
    const NAMES: &'static str = "TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF";

    /// The logback `level_value` of this level; `Off` sorts above every real level so that a
    /// plain numeric comparison implements "at least as severe as the threshold".
    pub(crate) fn value(self) -> u32 {
        match self {
            Level::Trace => 5_000,
            Level::Debug => 10_000,
            Level::Info => 20_000,
            Level::Warn => 30_000,
            Level::Error => 40_000,
            Level::Off => u32::MAX,
        }
    }

    /// The level a `tracing` event was emitted at (tracing has no `Off` for events).
    pub(crate) fn of_event(level: &tracing::Level) -> Level {
        match *level {
            tracing::Level::TRACE => Level::Trace,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::INFO => Level::Info,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::ERROR => Level::Error,
        }
    }

    /// The upper-case name logback prints in `severity` and the console line.
    pub fn name(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Off => "OFF",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A level name that is not one Spring Boot understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level `{0}`; expected one of {names}", names = Level::NAMES)]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    /// Parses Spring Boot's level names, ignoring case and surrounding blanks.
    ///
    /// `FATAL` becomes `Error` (logback has no fatal level and maps it the same way) and `false`
    /// becomes `Off` (Spring does this because YAML turns a bare `off` into `false`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let level = match text.trim().to_ascii_uppercase().as_str() {
            "TRACE" => Level::Trace,
            "DEBUG" => Level::Debug,
            "INFO" => Level::Info,
            "WARN" => Level::Warn,
            "ERROR" | "FATAL" => Level::Error,
            "OFF" | "FALSE" => Level::Off,
            _ => return Err(UnknownLevel(text.to_owned())),
        };
        Ok(level)
    }
}

/// The thresholds of one subscriber: a root level and per-target overrides.
#[derive(Clone, Debug)]
pub(crate) struct TargetLevels {
    /// Applies to every target no override covers.
    root: Level,
    /// Overrides as (prefix, level); each configured name appears twice, as written and with
    /// `.` turned into `::`, so Spring-style and Rust-style names both work.
    overrides: Vec<(String, Level)>,
}

impl TargetLevels {
    /// Builds the thresholds from the settings' root level and `(target, level)` list.
    ///
    /// Names that are empty after trimming are ignored: they cannot name a target.
    pub(crate) fn new(root: Level, levels: &[(String, Level)]) -> Self {
        let mut overrides = Vec::with_capacity(levels.len() * 2);
        for (name, level) in levels {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            overrides.push((name.to_owned(), *level));
            let rust_name = name.replace('.', "::");
            if rust_name != name {
                overrides.push((rust_name, *level));
            }
        }
        TargetLevels { root, overrides }
    }

    /// The most verbose threshold of any target (the root or an override).
    pub(crate) fn most_verbose(&self) -> Level {
        self.overrides
            .iter()
            .map(|(_, level)| *level)
            .fold(self.root, |a, b| if b.value() < a.value() { b } else { a })
    }

    /// The threshold for `target`: the most specific override that covers it, else the root.
    /// Among equally specific overrides the later one wins, as a later property does in Spring.
    pub(crate) fn threshold(&self, target: &str) -> Level {
        let mut best: Option<(usize, Level)> = None;
        for (prefix, level) in &self.overrides {
            if covers(prefix, target) && best.is_none_or(|(len, _)| prefix.len() >= len) {
                best = Some((prefix.len(), *level));
            }
        }
        best.map_or(self.root, |(_, level)| level)
    }

    /// Whether an event of `level` from `target` should be written.
    pub(crate) fn allows(&self, target: &str, level: &tracing::Level) -> bool {
        Level::of_event(level).value() >= self.threshold(target).value()
    }
}

/// The thresholds a running subscriber consults, replaceable while it runs: a daemon applies
/// changed `logging.level.*` properties without a restart. Clones share the thresholds.
///
/// Every event reads them under a read lock (uncontended: one atomic operation); a change takes
/// the write lock once. Events are never cached as "never wanted" by `tracing` (the layer
/// answers `Interest::sometimes`), so a lowered threshold shows events at once. Events more
/// verbose than every threshold (and than INFO) do not get that far: the layer's
/// `max_level_hint` lets `tracing` drop them with one atomic load, and a change recomputes it.
#[derive(Clone, Debug)]
pub struct LevelControl {
    /// The thresholds in force.
    levels: Arc<RwLock<TargetLevels>>,
}

impl LevelControl {
    /// Thresholds from a root level and `(target, level)` overrides.
    pub(crate) fn new(root: Level, levels: &[(String, Level)]) -> Self {
        LevelControl {
            levels: Arc::new(RwLock::new(TargetLevels::new(root, levels))),
        }
    }

    /// Replaces every threshold: `root` for targets no entry covers, `levels` as
    /// `logging.level.<target>` entries (see [`crate::LogSettings::levels`]).
    pub fn set(&self, root: Level, levels: &[(String, Level)]) {
        let new = TargetLevels::new(root, levels);
        *self.levels.write().unwrap_or_else(PoisonError::into_inner) = new;
        // `tracing` skips, with one atomic load, every event more verbose than the most verbose
        // level any subscriber asks for (see `LogLayer::max_level_hint`): recompute it now.
        tracing::callsite::rebuild_interest_cache();
    }

    /// The most verbose level any event can be written at now, as a `tracing` filter, for
    /// `max_level_hint`. Never below INFO: the `call` spans that carry `authenticatedUser` and
    /// `correlationId` into WARN and ERROR events are INFO spans.
    pub(crate) fn max_level_hint(&self) -> tracing::level_filters::LevelFilter {
        use tracing::level_filters::LevelFilter;
        match self.read(TargetLevels::most_verbose) {
            Level::Trace => LevelFilter::TRACE,
            Level::Debug => LevelFilter::DEBUG,
            Level::Info | Level::Warn | Level::Error | Level::Off => LevelFilter::INFO,
        }
    }

    /// The threshold now in force for `target`.
    pub fn threshold(&self, target: &str) -> Level {
        self.read(|levels| levels.threshold(target))
    }

    /// Whether an event of `level` from `target` should be written.
    pub(crate) fn allows(&self, target: &str, level: &tracing::Level) -> bool {
        self.read(|levels| levels.allows(target, level))
    }

    fn read<T>(&self, f: impl FnOnce(&TargetLevels) -> T) -> T {
        f(&self.levels.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Whether the logger name `prefix` covers `target`: equal, or a parent on a segment boundary
/// (`a.b` covers `a.b.c` but not `a.bc`).
fn covers(prefix: &str, target: &str) -> bool {
    match target.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with("::") || rest.starts_with('.'),
        None => false,
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_is_the_most_verbose_threshold_but_never_below_info() {
        use tracing::level_filters::LevelFilter;
        let control = LevelControl::new(Level::Warn, &[]);
        assert_eq!(control.max_level_hint(), LevelFilter::INFO);
        control.set(Level::Info, &[("h2".into(), Level::Trace)]);
        assert_eq!(control.max_level_hint(), LevelFilter::TRACE);
        control.set(Level::Debug, &[("h2".into(), Level::Off)]);
        assert_eq!(control.max_level_hint(), LevelFilter::DEBUG);
        control.set(Level::Off, &[]);
        assert_eq!(control.max_level_hint(), LevelFilter::INFO);
    }

    #[test]
    fn parses_spring_names_in_any_case() {
        assert_eq!("info".parse(), Ok(Level::Info));
        assert_eq!(" Warn ".parse(), Ok(Level::Warn));
        assert_eq!("DEBUG".parse(), Ok(Level::Debug));
        assert_eq!("trace".parse(), Ok(Level::Trace));
        assert_eq!("error".parse(), Ok(Level::Error));
        assert_eq!("fatal".parse(), Ok(Level::Error));
        assert_eq!("off".parse(), Ok(Level::Off));
        assert_eq!("false".parse(), Ok(Level::Off));
    }

    #[test]
    fn unknown_level_names_the_text_and_the_choices() {
        let err = "verbose".parse::<Level>().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`verbose`"), "{text}");
        assert!(text.contains("WARN"), "{text}");
    }

    #[test]
    fn root_applies_without_overrides() {
        let levels = TargetLevels::new(Level::Warn, &[]);
        assert!(!levels.allows("svcid_dpm", &tracing::Level::INFO));
        assert!(levels.allows("svcid_dpm", &tracing::Level::WARN));
        assert!(levels.allows("svcid_dpm", &tracing::Level::ERROR));
    }

    #[test]
    fn dotted_names_match_rust_and_dotted_targets_on_segment_boundaries() {
        let levels = TargetLevels::new(
            Level::Info,
            &[("svcid_dpm.registry".to_owned(), Level::Debug)],
        );
        assert_eq!(levels.threshold("svcid_dpm::registry"), Level::Debug);
        assert_eq!(
            levels.threshold("svcid_dpm::registry::checker"),
            Level::Debug
        );
        assert_eq!(levels.threshold("svcid_dpm.registry.checker"), Level::Debug);
        assert_eq!(levels.threshold("svcid_dpm::registry_x"), Level::Info);
        assert_eq!(levels.threshold("svcid_dpm"), Level::Info);
    }

    #[test]
    fn most_specific_override_wins_then_the_later_one() {
        let levels = TargetLevels::new(
            Level::Info,
            &[
                ("h2".to_owned(), Level::Off),
                ("a.b.c".to_owned(), Level::Error),
                ("a.b".to_owned(), Level::Trace),
                ("a::b".to_owned(), Level::Debug),
            ],
        );
        assert_eq!(levels.threshold("a::b::c::d"), Level::Error);
        assert_eq!(levels.threshold("a::b::x"), Level::Debug);
        assert_eq!(levels.threshold("h2::codec"), Level::Off);
        assert!(!levels.allows("h2::codec", &tracing::Level::ERROR));
    }

    #[test]
    fn a_control_applies_new_levels_to_every_clone() {
        let control = LevelControl::new(Level::Info, &[]);
        let seen_by_layer = control.clone();
        assert!(!seen_by_layer.allows("svcid_dpm", &tracing::Level::DEBUG));
        control.set(Level::Warn, &[("svcid_dpm".to_owned(), Level::Debug)]);
        assert!(seen_by_layer.allows("svcid_dpm::checker", &tracing::Level::DEBUG));
        assert!(!seen_by_layer.allows("h2", &tracing::Level::INFO));
        assert_eq!(seen_by_layer.threshold("h2"), Level::Warn);
    }

    #[test]
    fn empty_names_are_ignored() {
        let levels = TargetLevels::new(Level::Info, &[(" ".to_owned(), Level::Off)]);
        assert_eq!(levels.threshold("anything"), Level::Info);
    }
}
