//! The daemons' logging: a `tracing` subscriber that writes the product's JSON log layout
//! (logstash-logback-encoder style, docs/operations.md) and Spring Boot's console line.
//!
//! Daemons emit events with fields named the product's way,
//! `tracing::info!(eventId = "registerEngine", engineId = %id, correlationId = %id, "New engine registered.")`,
//! and wrap request work in `tracing::info_span!("call", authenticatedUser = %identity, correlationId = %jti)`;
//! events inside inherit those two fields. This crate depends on no other svcid crate: it takes
//! plain [`LogSettings`] (bound from `application.properties` elsewhere) and knows nothing of
//! identities or tokens, so it cannot leak them: it prints only what events carry.
//!
//! [`init`] is for daemons (files, stdout, global install); [`build`] is for tests, which run it
//! under `tracing::subscriber::with_default` with in-memory [`Sinks`].
//!
//! The files roll daily and at a size threshold into `archived/` ([`RollingPolicy`], module
//! `roll`), and the levels of an installed subscriber can be changed while it runs
//! ([`set_levels`], [`LevelControl`]): daemons apply a changed `logging.level.*` without a restart.

mod format;
mod layer;
mod level;
mod roll;
mod sink;

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use time::UtcOffset;
use tracing_subscriber::layer::SubscriberExt;

use crate::layer::{Clock, LogLayer, Output};
pub use crate::level::{Level, LevelControl, UnknownLevel};
pub use crate::roll::{ARCHIVE_DIR, RollingPolicy};
pub use crate::sink::{MemorySink, Sinks};

/// File name of the JSON log inside [`LogSettings::dir`], as the product names it.
pub const JSON_LOG_FILE: &str = "spring-boot-logger.json.log";
/// File name of the plain-text log inside [`LogSettings::dir`], as the product names it.
pub const PLAIN_LOG_FILE: &str = "spring-boot-logger.log";
/// The log files' name without its suffix; archives are `<stem>-<date>.<n><suffix>`.
const LOG_STEM: &str = "spring-boot-logger";
/// Suffix of the JSON log and its archives.
const JSON_SUFFIX: &str = ".json.log";
/// Suffix of the plain-text log and its archives.
const PLAIN_SUFFIX: &str = ".log";
/// The `application` value the product writes unless configured otherwise.
pub const DEFAULT_APPLICATION: &str = "oneApplication";

/// What to log where, bound from the `ataccama.logging.*` and `logging.*` properties.
#[derive(Clone, Debug, PartialEq)]
pub struct LogSettings {
    /// `ataccama.logging.plainTextConsoleAppender` (default `true`): operators watching a
    /// terminal get readable lines.
    pub plain_console: bool,
    /// `ataccama.logging.jsonConsoleAppender` (default `false`): JSON lines on stdout, for
    /// containers whose log collector reads stdout.
    pub json_console: bool,
    /// `ataccama.logging.jsonFileAppender` (default `true`): JSON lines appended to
    /// `<dir>/spring-boot-logger.json.log`, the file ops and tests tail.
    pub json_file: bool,
    /// `ataccama.logging.plainTextFileAppender` (default `false`): console-style lines appended
    /// to `<dir>/spring-boot-logger.log`.
    pub plain_file: bool,
    /// `logging.file.path` (default `<home>/log`): the folder of both log files; created if missing.
    pub dir: PathBuf,
    /// `logging.level.root` (default `INFO`): the threshold for targets no entry in `levels` covers.
    pub root_level: Level,
    /// `logging.level.<target>`: per-target thresholds. A name covers its sub-targets; dotted
    /// Spring names also match Rust targets (`svcid_dpm.registry` covers `svcid_dpm::registry::x`);
    /// the most specific name wins, then the later entry.
    pub levels: Vec<(String, Level)>,
    /// The `application` field of every JSON line (default `oneApplication`), so a shared log
    /// store can tell products apart.
    pub application: String,
    /// `logging.logback.rollingpolicy.*`: when the two log files roll into `<dir>/archived/`
    /// and how long archives are kept, so a daemon can run for months.
    pub rolling: RollingPolicy,
}

impl Default for LogSettings {
    /// The product's defaults, with `dir` relative to the working directory (`log`); daemons
    /// set it to `<home>/log`.
    fn default() -> Self {
        LogSettings {
            plain_console: true,
            json_console: false,
            json_file: true,
            plain_file: false,
            dir: PathBuf::from("log"),
            root_level: Level::Info,
            levels: Vec::new(),
            application: DEFAULT_APPLICATION.to_owned(),
            rolling: RollingPolicy::default(),
        }
    }
}

/// Why logging could not start. Each variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log folder does not exist and cannot be created (permissions, a file in the way).
    #[error("cannot create log folder {}: {source}", path.display())]
    CreateDir {
        /// The folder from `logging.file.path`.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A log file cannot be opened for appending.
    #[error("cannot open log file {} for appending: {source}", path.display())]
    OpenFile {
        /// The log file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Something already installed a global `tracing` subscriber; there can be only one.
    #[error(
        "a global tracing subscriber is already installed; logging can only be initialised once"
    )]
    AlreadyInstalled,
}

/// Returned by [`init`]; keep it alive for the life of the process.
///
/// Every line is flushed as it is written, so dropping the guard loses nothing; it exists to
/// flush once more at exit and to report how many lines could not be written.
#[derive(Debug)]
#[must_use = "dropping the guard early is harmless but hides the write-error count"]
pub struct LogGuard {
    /// The sinks the installed subscriber writes to.
    output: Arc<Output>,
    /// The installed subscriber's thresholds.
    levels: LevelControl,
}

impl LogGuard {
    /// The installed subscriber's thresholds, to change them while the daemon runs.
    pub fn levels(&self) -> LevelControl {
        self.levels.clone()
    }

    /// How many lines failed to write (e.g. disk full) since [`init`]; such failures are never
    /// raised to the code that logged.
    pub fn write_errors(&self) -> u64 {
        self.output.write_errors.load(Ordering::Relaxed)
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.output.sinks.flush();
    }
}

/// The local UTC offset used for timestamps, determined on the first call and then fixed.
///
/// The `time` crate can only read the local offset while the process has a single thread
/// (reading it while another thread may change the environment is unsound), so call this, or
/// [`init`], before starting any runtime. If it is first called later, timestamps use UTC
/// (`+00:00`). The offset does not follow a daylight-saving change until the process restarts.
pub fn local_offset() -> UtcOffset {
    static OFFSET: OnceLock<UtcOffset> = OnceLock::new();
    *OFFSET.get_or_init(|| UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC))
}

/// The thresholds of the subscriber [`init`] installed, if it did.
static INSTALLED_LEVELS: OnceLock<LevelControl> = OnceLock::new();

/// Changes the levels of the subscriber [`init`] installed, at once and for every thread:
/// `root` as `logging.level.root`, `levels` as the `logging.level.<target>` entries (replacing
/// all earlier ones). Returns `false`, changing nothing, when [`init`] has not installed one.
pub fn set_levels(root: Level, levels: &[(String, Level)]) -> bool {
    match INSTALLED_LEVELS.get() {
        Some(control) => {
            control.set(root, levels);
            true
        }
        None => false,
    }
}

/// Creates the log folder and files (appending to existing ones), and installs the global
/// subscriber. Call it before starting threads so the local offset can be read
/// (see [`local_offset`]).
///
/// Console output goes to stdout. The files roll as [`LogSettings::rolling`] says. Nothing is
/// installed if any file cannot be opened.
pub fn init(settings: &LogSettings) -> Result<LogGuard, LogError> {
    let offset = local_offset();
    let mut sinks = Sinks::new();
    if settings.plain_console {
        sinks = sinks.plain(io::stdout());
    }
    if settings.json_console {
        sinks = sinks.json(io::stdout());
    }
    if settings.json_file || settings.plain_file {
        fs::create_dir_all(&settings.dir).map_err(|source| LogError::CreateDir {
            path: settings.dir.clone(),
            source,
        })?;
    }
    let rolling = |suffix: &'static str, file: &str| {
        roll::RollingFile::open(
            &settings.dir,
            LOG_STEM,
            suffix,
            settings.rolling,
            offset,
            roll::local_today(offset),
        )
        .map_err(|source| LogError::OpenFile {
            path: settings.dir.join(file),
            source,
        })
    };
    if settings.json_file {
        sinks = sinks.json(rolling(JSON_SUFFIX, JSON_LOG_FILE)?);
    }
    if settings.plain_file {
        sinks = sinks.plain(rolling(PLAIN_SUFFIX, PLAIN_LOG_FILE)?);
    }
    let (subscriber, output, levels) = assemble(settings, sinks, Clock::System(offset));
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadyInstalled)?;
    // Only the first installation succeeds, so this is set at most once, to the subscriber in use.
    let _ = INSTALLED_LEVELS.set(levels.clone());
    Ok(LogGuard { output, levels })
}

/// Builds the subscriber without installing it, writing to the given sinks; for tests, under
/// `tracing::subscriber::with_default`.
///
/// `settings` supplies the levels and the `application` value. The four appender switches are
/// [`init`]'s business (they choose which sinks it opens): this function writes to every sink it
/// is given. Timestamps use [`local_offset`].
pub fn build(
    settings: &LogSettings,
    sinks: Sinks,
) -> impl tracing::Subscriber + Send + Sync + use<> {
    assemble(settings, sinks, Clock::System(local_offset())).0
}

/// Like [`build`], also returning the subscriber's [`LevelControl`], so a test can change its
/// levels while it runs.
pub fn build_with_levels(
    settings: &LogSettings,
    sinks: Sinks,
) -> (impl tracing::Subscriber + Send + Sync + use<>, LevelControl) {
    let (subscriber, _, levels) = assemble(settings, sinks, Clock::System(local_offset()));
    (subscriber, levels)
}

/// The subscriber, its shared output and its thresholds, with an explicit clock.
fn assemble(
    settings: &LogSettings,
    sinks: Sinks,
    clock: Clock,
) -> (
    impl tracing::Subscriber + Send + Sync + use<>,
    Arc<Output>,
    LevelControl,
) {
    let output = Arc::new(Output {
        sinks,
        write_errors: AtomicU64::new(0),
    });
    let levels = LevelControl::new(settings.root_level, &settings.levels);
    let layer = LogLayer {
        levels: levels.clone(),
        application: settings.application.clone(),
        clock,
        pid: std::process::id(),
        output: Arc::clone(&output),
    };
    (tracing_subscriber::registry().with(layer), output, levels)
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests;
