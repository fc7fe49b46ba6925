//! Log files that run for months: a writer that rolls its file daily and at a size threshold,
//! the way logback's `SizeAndTimeBasedRollingPolicy` does for the product's Spring Boot modules.
//!
//! The live file keeps its name (`log/spring-boot-logger.json.log`); a roll-over renames it to
//! `log/archived/spring-boot-logger-<yyyy-MM-dd>.<n>.json.log` (the date of the lines it holds,
//! `n` counting from 0 within that date) and starts a fresh file. Retention then deletes archives
//! older than `max-history` days and, oldest first, archives beyond `total-size-cap`.
//!
//! Nothing is lost at a roll-over: the writer sits behind its sink's mutex, receives each line in
//! one `write` call, and decides to roll *before* writing a line, so every line lands whole in
//! exactly one file. A roll that fails (a read-only `archived/`, a full disk) leaves the writer
//! appending to the file it has, and is tried again only after another threshold's worth of
//! lines, so a broken folder costs no lines and no per-line system calls. The archive index is
//! found by looking at what is already archived, so restarts never overwrite an archive.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use time::{Date, Duration as Days, OffsetDateTime, UtcOffset};

/// Name of the folder, inside the log folder, that receives rolled files (the product's).
pub const ARCHIVE_DIR: &str = "archived";

/// When log files roll and how long archives are kept, bound from
/// `logging.logback.rollingpolicy.*` (Spring Boot's property names and defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollingPolicy {
    /// `logging.logback.rollingpolicy.max-file-size` (default `10MB`): a file that would grow
    /// past this many bytes is rolled before the next line. Files also roll at midnight.
    pub max_file_size: u64,
    /// `logging.logback.rollingpolicy.max-history` (default `7`): archives of more than this many
    /// days ago are deleted at each roll-over; `0` keeps them forever.
    pub max_history: u32,
    /// `logging.logback.rollingpolicy.total-size-cap` (default `0`, no cap): the oldest archives
    /// are deleted until the archives of one log file take at most this many bytes.
    pub total_size_cap: u64,
}

impl Default for RollingPolicy {
    /// Spring Boot's defaults: 10 MB files, 7 days of history, no total cap.
    fn default() -> Self {
        RollingPolicy {
            max_file_size: 10 * 1024 * 1024,
            max_history: 7,
            total_size_cap: 0,
        }
    }
}

/// Where "today" comes from: the local calendar date in a fixed offset, or a test's choice.
pub(crate) type Today = Box<dyn Fn() -> Date + Send>;

/// The local date now, in `offset` (see [`crate::local_offset`]).
pub(crate) fn local_today(offset: UtcOffset) -> Today {
    Box::new(move || {
        let now = OffsetDateTime::now_utc();
        now.checked_to_offset(offset).unwrap_or(now).date()
    })
}

/// One log file that rolls. Created by [`crate::init`] for each file appender.
pub(crate) struct RollingFile {
    /// The live file's path (`<dir>/<stem><suffix>`).
    path: PathBuf,
    /// `<dir>/archived`.
    archive_dir: PathBuf,
    /// `spring-boot-logger`.
    stem: &'static str,
    /// `.json.log` or `.log`.
    suffix: &'static str,
    /// The live file, opened for appending.
    file: File,
    /// Bytes in the live file.
    size: u64,
    /// The date the live file's lines belong to; a line of another date rolls it.
    period: Date,
    /// Thresholds and retention.
    policy: RollingPolicy,
    /// The current date.
    today: Today,
    /// After a failed roll, the size at which the next attempt is made.
    retry_at_size: Option<u64>,
}

impl std::fmt::Debug for RollingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollingFile")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("period", &self.period)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RollingFile {
    /// Opens `<dir>/<stem><suffix>` for appending. An existing file's lines are taken to belong
    /// to the day it was last written, so a file left from yesterday rolls at the first line.
    pub(crate) fn open(
        dir: &Path,
        stem: &'static str,
        suffix: &'static str,
        policy: RollingPolicy,
        offset: UtcOffset,
        today: Today,
    ) -> io::Result<Self> {
        let path = dir.join(format!("{stem}{suffix}"));
        let file = open_append(&path)?;
        let metadata = file.metadata()?;
        let size = metadata.len();
        let now = today();
        let period = match metadata.modified() {
            Ok(modified) if size > 0 => date_of(modified, offset).min(now),
            _ => now,
        };
        Ok(RollingFile {
            path,
            archive_dir: dir.join(ARCHIVE_DIR),
            stem,
            suffix,
            file,
            size,
            period,
            policy,
            today,
            retry_at_size: None,
        })
    }

    /// Whether a line of `len` bytes written on `today` must go to a fresh file.
    fn due(&self, today: Date, len: u64) -> bool {
        let too_big = self.size > 0 && self.size.saturating_add(len) > self.policy.max_file_size;
        let new_day = today != self.period;
        match self.retry_at_size {
            // After a failure only a new day or another threshold's worth of lines retries.
            Some(retry) => new_day || self.size >= retry,
            None => too_big || new_day,
        }
    }

    /// Archives the live file under its period's date and opens a fresh one.
    fn roll(&mut self, today: Date) -> io::Result<()> {
        self.file.flush()?;
        fs::create_dir_all(&self.archive_dir)?;
        let index = next_index(&self.archive_dir, self.stem, self.suffix, self.period)?;
        let archived =
            self.archive_dir
                .join(archive_name(self.stem, self.suffix, self.period, index));
        fs::rename(&self.path, &archived)?;
        // From here the old handle writes into the archive; a failed open keeps it, losing nothing.
        self.file = open_append(&self.path)?;
        self.size = 0;
        self.period = today;
        self.retry_at_size = None;
        // Retention is best effort: an archive that cannot be deleted now is deleted next time.
        let _ = self.prune(today);
        Ok(())
    }

    /// Deletes archives older than `max-history` days, then the oldest beyond `total-size-cap`.
    fn prune(&self, today: Date) -> io::Result<()> {
        let mut archives = list_archives(&self.archive_dir, self.stem, self.suffix)?;
        if self.policy.max_history > 0 {
            let oldest_kept = today - Days::days(i64::from(self.policy.max_history));
            archives.retain(|archive| {
                if archive.date < oldest_kept {
                    let _ = fs::remove_file(&archive.path);
                    false
                } else {
                    true
                }
            });
        }
        if self.policy.total_size_cap > 0 {
            archives.sort_by_key(|archive| (archive.date, archive.index));
            let mut total: u64 = archives.iter().map(|archive| archive.size).sum();
            for archive in &archives {
                if total <= self.policy.total_size_cap {
                    break;
                }
                if fs::remove_file(&archive.path).is_ok() {
                    total = total.saturating_sub(archive.size);
                }
            }
        }
        Ok(())
    }
}

impl Write for RollingFile {
    /// Writes `line` whole into one file, rolling first when the line would not fit or belongs
    /// to another day. [`crate::sink`] hands every line over in a single call.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let today = (self.today)();
        let len = line.len() as u64;
        if self.due(today, len) && self.roll(today).is_err() {
            self.retry_at_size = Some(self.size.saturating_add(self.policy.max_file_size.max(1)));
            if today != self.period {
                // Do not retry on every line of the new day: the next attempt is size-driven.
                self.period = today;
            }
        }
        self.file.write_all(line)?;
        self.size = self.size.saturating_add(len);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Opens `path` for appending, creating it if missing: a restart continues the same file, as
/// logback's file appender does.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The local date of a file time.
fn date_of(time: SystemTime, offset: UtcOffset) -> Date {
    let at = OffsetDateTime::from(time);
    at.checked_to_offset(offset).unwrap_or(at).date()
}

/// `spring-boot-logger-2024-05-01.3.json.log`.
pub(crate) fn archive_name(stem: &str, suffix: &str, date: Date, index: u32) -> String {
    format!(
        "{stem}-{:04}-{:02}-{:02}.{index}{suffix}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// One archived file of a log.
#[derive(Debug)]
struct Archive {
    /// Where it is.
    path: PathBuf,
    /// The date its lines belong to.
    date: Date,
    /// Its index within that date.
    index: u32,
    /// Its size in bytes.
    size: u64,
}

/// The archives of the log `<stem><suffix>` in `dir` (a missing folder has none).
fn list_archives(dir: &Path, stem: &str, suffix: &str) -> io::Result<Vec<Archive>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut archives = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((date, index)) = name.to_str().and_then(|n| parse_archive(n, stem, suffix)) else {
            continue;
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        archives.push(Archive {
            path: entry.path(),
            date,
            index,
            size,
        });
    }
    Ok(archives)
}

/// The date and index of an archive of `<stem><suffix>`; `None` for any other file (the other
/// log's archives included: `.0.json.log` is not `<n>.log` with a numeric `n`).
fn parse_archive(name: &str, stem: &str, suffix: &str) -> Option<(Date, u32)> {
    let rest = name.strip_prefix(stem)?.strip_prefix('-')?;
    let rest = rest.strip_suffix(suffix)?;
    let (date, index) = rest.split_once('.')?;
    if !index.bytes().all(|b| b.is_ascii_digit()) || index.is_empty() {
        return None;
    }
    let mut parts = date.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date = Date::from_calendar_date(year, month.try_into().ok()?, day).ok()?;
    Some((date, index.parse().ok()?))
}

/// The first unused index for `date`'s archives.
fn next_index(dir: &Path, stem: &str, suffix: &str, date: Date) -> io::Result<u32> {
    Ok(list_archives(dir, stem, suffix)?
        .iter()
        .filter(|archive| archive.date == date)
        .map(|archive| archive.index.saturating_add(1))
        .max()
        .unwrap_or(0))
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use time::macros::date;

    use super::*;

    /// A test's calendar, shared with the writer.
    fn calendar(start: Date) -> (Arc<Mutex<Date>>, Today) {
        let day = Arc::new(Mutex::new(start));
        let shared = Arc::clone(&day);
        (day, Box::new(move || *shared.lock().unwrap()))
    }

    fn policy(max_file_size: u64) -> RollingPolicy {
        RollingPolicy {
            max_file_size,
            ..RollingPolicy::default()
        }
    }

    fn archived(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.join(ARCHIVE_DIR))
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn names_parse_back_and_the_other_log_is_ignored() {
        let name = archive_name("spring-boot-logger", ".json.log", date!(2024 - 05 - 01), 3);
        assert_eq!(name, "spring-boot-logger-2024-05-01.3.json.log");
        assert_eq!(
            parse_archive(&name, "spring-boot-logger", ".json.log"),
            Some((date!(2024 - 05 - 01), 3))
        );
        assert_eq!(parse_archive(&name, "spring-boot-logger", ".log"), None);
        for other in [
            "spring-boot-logger.json.log",
            "spring-boot-logger-2024-13-01.0.json.log",
            "spring-boot-logger-2024-05-01..json.log",
            "spring-boot-logger-2024-05-01.x.json.log",
            "other-2024-05-01.0.json.log",
        ] {
            assert_eq!(
                parse_archive(other, "spring-boot-logger", ".json.log"),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn rolls_at_the_size_threshold_without_splitting_or_losing_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (_, today) = calendar(date!(2024 - 05 - 01));
        let mut file = RollingFile::open(
            dir.path(),
            "spring-boot-logger",
            ".json.log",
            policy(100),
            UtcOffset::UTC,
            today,
        )
        .unwrap();
        for n in 0..30 {
            // 30-byte lines: three fit in 100 bytes, the fourth rolls.
            file.write_all(format!("line {n:05} ........ padding\n").as_bytes())
                .unwrap();
        }
        let names = archived(dir.path());
        assert_eq!(names.len(), 9, "{names:?}");
        assert_eq!(names[0], "spring-boot-logger-2024-05-01.0.json.log");
        let mut lines = Vec::new();
        for index in 0..9 {
            let text = fs::read_to_string(
                dir.path()
                    .join(ARCHIVE_DIR)
                    .join(format!("spring-boot-logger-2024-05-01.{index}.json.log")),
            )
            .unwrap();
            assert!(text.len() <= 100, "{text}");
            lines.extend(text.lines().map(str::to_owned));
        }
        let live = fs::read_to_string(dir.path().join("spring-boot-logger.json.log")).unwrap();
        lines.extend(live.lines().map(str::to_owned));
        let expected: Vec<String> = (0..30)
            .map(|n| format!("line {n:05} ........ padding"))
            .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn rolls_at_midnight_under_the_old_date_and_continues_indexes_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (day, today) = calendar(date!(2024 - 05 - 01));
        let mut file = RollingFile::open(
            dir.path(),
            "spring-boot-logger",
            ".log",
            policy(1 << 20),
            UtcOffset::UTC,
            today,
        )
        .unwrap();
        file.write_all(b"may first\n").unwrap();
        *day.lock().unwrap() = date!(2024 - 05 - 02);
        file.write_all(b"may second\n").unwrap();
        assert_eq!(
            archived(dir.path()),
            ["spring-boot-logger-2024-05-01.0.log"]
        );
        drop(file);

        // A restart on the same day appends; a later size roll takes the next free index.
        fs::write(
            dir.path()
                .join(ARCHIVE_DIR)
                .join("spring-boot-logger-2024-05-02.0.log"),
            "earlier\n",
        )
        .unwrap();
        let (_, today) = calendar(date!(2024 - 05 - 02));
        let mut file = RollingFile::open(
            dir.path(),
            "spring-boot-logger",
            ".log",
            policy(20),
            UtcOffset::UTC,
            today,
        )
        .unwrap();
        file.write_all(b"restarted, longer line\n").unwrap();
        assert!(
            archived(dir.path()).contains(&"spring-boot-logger-2024-05-02.1.log".to_owned()),
            "{:?}",
            archived(dir.path())
        );
        let rolled = fs::read_to_string(
            dir.path()
                .join(ARCHIVE_DIR)
                .join("spring-boot-logger-2024-05-02.1.log"),
        )
        .unwrap();
        assert_eq!(rolled, "may second\n");
    }

    #[test]
    fn retention_drops_old_days_and_the_oldest_beyond_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join(ARCHIVE_DIR);
        fs::create_dir_all(&archive).unwrap();
        for (date, index) in [
            ("2024-04-01", 0),
            ("2024-04-23", 0),
            ("2024-04-24", 0),
            ("2024-04-24", 1),
            ("2024-04-30", 0),
        ] {
            fs::write(
                archive.join(format!("spring-boot-logger-{date}.{index}.json.log")),
                "x".repeat(10),
            )
            .unwrap();
        }
        fs::write(
            archive.join("spring-boot-logger-2024-04-01.0.log"),
            "plain log archive",
        )
        .unwrap();
        let (_, today) = calendar(date!(2024 - 05 - 01));
        let mut file = RollingFile::open(
            dir.path(),
            "spring-boot-logger",
            ".json.log",
            RollingPolicy {
                max_file_size: 5,
                max_history: 7,
                total_size_cap: 30,
            },
            UtcOffset::UTC,
            today,
        )
        .unwrap();
        file.write_all(b"first\n").unwrap();
        file.write_all(b"second\n").unwrap();
        // 04-01 and 04-23 are older than 7 days; of the rest (10+10+10+6 bytes) the oldest
        // goes to meet the 30-byte cap. The plain log's archives are not this log's business.
        assert_eq!(
            archived(dir.path()),
            [
                "spring-boot-logger-2024-04-01.0.log",
                "spring-boot-logger-2024-04-24.1.json.log",
                "spring-boot-logger-2024-04-30.0.json.log",
                "spring-boot-logger-2024-05-01.0.json.log",
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_roll_that_fails_keeps_every_line_in_the_live_file() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the archive folder should be: the roll cannot happen.
        fs::write(dir.path().join(ARCHIVE_DIR), "in the way").unwrap();
        let (_, today) = calendar(date!(2024 - 05 - 01));
        let mut file = RollingFile::open(
            dir.path(),
            "spring-boot-logger",
            ".json.log",
            policy(10),
            UtcOffset::UTC,
            today,
        )
        .unwrap();
        for n in 0..20 {
            file.write_all(format!("line {n}\n").as_bytes()).unwrap();
        }
        let live = fs::read_to_string(dir.path().join("spring-boot-logger.json.log")).unwrap();
        assert_eq!(live.lines().count(), 20);
    }
}
