//! The installed subscriber's files under load: several threads log continuously while the JSON
//! and plain files roll at a 64 KB threshold; every line must be found exactly once, whole, in
//! the live file or an archive. Then the levels are changed on the running subscriber.
//! (`init` installs a process-wide subscriber, hence a test binary of its own.)

// Tests may unwrap: a panic is how they report a failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use svcid_logging::{
    ARCHIVE_DIR, JSON_LOG_FILE, Level, LogSettings, PLAIN_LOG_FILE, RollingPolicy, init, set_levels,
};

const THREADS: usize = 4;
const LINES_PER_THREAD: usize = 1500;

/// Every line of the live file named `live` and of its archives (`<stem>-<date>.<n><suffix>`),
/// archives first in index order.
fn all_lines(dir: &Path, live: &str, suffix: &str) -> (Vec<String>, usize) {
    let mut archives: Vec<(u32, String)> = fs::read_dir(dir.join(ARCHIVE_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| {
            let index = name
                .strip_suffix(suffix)?
                .rsplit_once('.')?
                .1
                .parse()
                .ok()?;
            Some((index, name))
        })
        .collect();
    archives.sort();
    let mut lines = Vec::new();
    for (_, name) in &archives {
        let text = fs::read_to_string(dir.join(ARCHIVE_DIR).join(name)).unwrap();
        assert!(text.len() <= 64 * 1024, "{name} has {} bytes", text.len());
        assert!(text.ends_with('\n'), "{name} ends mid-line");
        lines.extend(text.lines().map(str::to_owned));
    }
    let text = fs::read_to_string(dir.join(live)).unwrap();
    lines.extend(text.lines().map(str::to_owned));
    (lines, archives.len())
}

#[test]
fn continuous_logging_across_roll_overs_loses_no_line_and_levels_change_live() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("log");
    let settings = LogSettings {
        plain_console: false,
        json_console: false,
        json_file: true,
        plain_file: true,
        dir: dir.clone(),
        rolling: RollingPolicy {
            max_file_size: 64 * 1024,
            ..RollingPolicy::default()
        },
        ..LogSettings::default()
    };
    let guard = init(&settings).unwrap();

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            scope.spawn(move || {
                for seq in 0..LINES_PER_THREAD {
                    tracing::info!(
                        eventId = "load",
                        thread = thread,
                        seq = seq,
                        padding = "a reasonably long value, so that lines weigh what real ones do",
                        "Line under load."
                    );
                }
            });
        }
    });

    let (json, json_archives) = all_lines(&dir, JSON_LOG_FILE, ".json.log");
    assert!(json_archives >= 5, "only {json_archives} JSON roll-overs");
    let mut seen = BTreeSet::new();
    for line in &json {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            event["thread"].as_str().unwrap().to_owned(),
            event["seq"].as_str().unwrap().parse::<usize>().unwrap(),
        );
        assert!(seen.insert(key), "line written twice: {line}");
    }
    assert_eq!(json.len(), THREADS * LINES_PER_THREAD);
    assert_eq!(seen.len(), THREADS * LINES_PER_THREAD);

    let (plain, plain_archives) = all_lines(&dir, PLAIN_LOG_FILE, ".log");
    assert!(plain_archives >= 1, "the plain-text log never rolled");
    assert_eq!(plain.len(), THREADS * LINES_PER_THREAD);
    assert!(
        plain
            .iter()
            .all(|l| l.ends_with("message=Line under load."))
    );

    // Levels: DEBUG is hidden under the default INFO, shown once the running subscriber is told.
    tracing::debug!(eventId = "hiddenDebug");
    assert!(set_levels(
        Level::Warn,
        &[("rolling".to_owned(), Level::Debug)]
    ));
    tracing::debug!(eventId = "shownDebug");
    tracing::info!(target: "other", eventId = "hiddenInfo");
    let (json, _) = all_lines(&dir, JSON_LOG_FILE, ".json.log");
    let ids: Vec<String> = json[THREADS * LINES_PER_THREAD..]
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["eventId"].to_string())
        .collect();
    assert_eq!(ids, ["\"shownDebug\""]);
    assert_eq!(guard.levels().threshold("other"), Level::Warn);
    assert_eq!(guard.write_errors(), 0);
}
