//! `init` installs a process-wide subscriber, so it is tested in its own test binary: creates the
//! folder, appends to existing files, writes each line whole and flushed, and refuses a second
//! installation.

// Tests may unwrap: a panic is how they report a failure.
#![allow(clippy::unwrap_used)]

use std::fs;

use svcid_logging::{JSON_LOG_FILE, LogError, LogSettings, PLAIN_LOG_FILE, init};

#[test]
fn init_writes_flushed_lines_to_both_files_and_installs_once() {
    let base = std::env::temp_dir().join(format!("svcid-logging-init-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let dir = base.join("home").join("log");
    // An earlier run's line must survive: the files are appended to.
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(JSON_LOG_FILE), "{\"earlier\":\"run\"}\n").unwrap();
    let settings = LogSettings {
        plain_console: false,
        json_console: false,
        json_file: true,
        plain_file: true,
        dir: dir.clone(),
        ..LogSettings::default()
    };
    let guard = init(&settings).unwrap();

    tracing::info!(eventId = "started", port = 8531, "Module started.");
    tracing::debug!(eventId = "hidden");

    // Read while the guard is alive: lines are flushed as written, not at shutdown.
    let json = fs::read_to_string(dir.join(JSON_LOG_FILE)).unwrap();
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert_eq!(lines[0], "{\"earlier\":\"run\"}");
    let event: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(
        event["message"],
        "eventId=started port=8531, message=Module started."
    );
    assert_eq!(event["port"], "8531");
    assert_eq!(event["application"], "oneApplication");
    let timestamp = event["@timestamp"].as_str().unwrap();
    // 2021-04-14T11:26:03.234+02:00: 29 characters, numeric offset.
    assert_eq!(timestamp.len(), 29, "{timestamp}");
    assert!(matches!(&timestamp[23..24], "+" | "-"), "{timestamp}");

    let plain = fs::read_to_string(dir.join(PLAIN_LOG_FILE)).unwrap();
    assert_eq!(plain.lines().count(), 1, "{plain}");
    assert!(plain.contains("  INFO "), "{plain}");
    assert!(
        plain.ends_with(" : eventId=started port=8531, message=Module started.\n"),
        "{plain}"
    );

    let again = init(&settings).unwrap_err();
    assert!(matches!(again, LogError::AlreadyInstalled), "{again:?}");
    assert_eq!(guard.write_errors(), 0);
    drop(guard);
    fs::remove_dir_all(&base).unwrap();
}
