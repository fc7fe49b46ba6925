//! A daemon's JSON log (`<home>/log/spring-boot-logger.json.log`): read whole, tailed as it
//! grows, or waited on until an event shows up. Only whole lines count: the line being written
//! at the moment of a read is left for the next one.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How often a wait reads the log again.
const POLL: Duration = Duration::from_millis(50);

/// The JSON log file of the module whose home is `home`.
pub fn json_log(home: &Path) -> PathBuf {
    home.join("log").join(svcid_logging::JSON_LOG_FILE)
}

/// The whole lines of `text`, each parsed; a line that is not a JSON object is an error quoting
/// it.
pub fn parse_events(text: &str) -> Result<Vec<Value>, String> {
    let whole = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    whole
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .map_err(|e| format!("log line is not JSON ({e}): {line}"))?;
            if value.is_object() {
                Ok(value)
            } else {
                Err(format!("log line is not a JSON object: {line}"))
            }
        })
        .collect()
}

/// Every event of the log file at `path` (none while it does not exist).
pub fn read_events(path: &Path) -> Result<Vec<Value>, String> {
    parse_events(&std::fs::read_to_string(path).unwrap_or_default())
}

/// Reads the log at `path` every 50 ms until an event after its first `skip` lines matches
/// (returned), or `patience` passes (an error saying what was awaited, with the log).
pub fn wait_for_event(
    path: &Path,
    skip: usize,
    what: &str,
    patience: Duration,
    matches: impl Fn(&Value) -> bool,
) -> Result<Value, String> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(found) = read_events(path)?
            .into_iter()
            .skip(skip)
            .find(|e| matches(e))
        {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no {what} in {} within {patience:?}; log:\n{}",
                path.display(),
                std::fs::read_to_string(path).unwrap_or_default()
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// The port an event names (`grpcServerStarted`, `httpServerStarted`): a string or a number.
pub fn event_port(event: &Value) -> Option<u16> {
    event["port"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .or_else(|| event["port"].as_u64().and_then(|p| u16::try_from(p).ok()))
}

/// The first word of `text` shaped like a compact JWS: `eyJ`, base64url, a dot, base64url, a dot,
/// and a signature (possibly empty, as in an unsigned token). A bare `eyJ` is not enough: a key's
/// fingerprint (43 random base64url characters) can hold those three letters by chance, and
/// logging fingerprints is intended.
pub fn token_in(text: &str) -> Option<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .find(|word| {
            word.starts_with("eyJ")
                && word.split('.').count() == 3
                && word.split('.').take(2).all(|part| !part.is_empty())
        })
}

/// Reads a JSON log file as it grows: each [`LogTail::poll`] returns the whole lines added since
/// the last one, parsed (a line that is not JSON is skipped).
#[derive(Debug)]
pub struct LogTail {
    /// The file.
    path: PathBuf,
    /// Bytes consumed so far.
    offset: u64,
    /// An incomplete last line, kept until its newline arrives.
    partial: Vec<u8>,
    /// Events read but handed back ([`LogTail::put_back`]), returned first by the next poll.
    held: Vec<Value>,
}

impl LogTail {
    /// Tails `path` from its current end (or from the start when it does not exist yet).
    pub fn from_end(path: PathBuf) -> Self {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Self {
            path,
            offset,
            partial: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Hands back `events` a caller read but did not look at (those after the one it waited
    /// for): the next [`LogTail::poll`] returns them first, in order.
    pub fn put_back(&mut self, events: impl IntoIterator<Item = Value>) {
        let mut events: Vec<Value> = events.into_iter().collect();
        events.append(&mut self.held);
        self.held = events;
    }

    /// The file tailed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The events appended since the last call (after any handed back).
    pub fn poll(&mut self) -> io::Result<Vec<Value>> {
        let mut events = std::mem::take(&mut self.held);
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(events),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("opening {}: {e}", self.path.display()),
                ));
            }
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = std::mem::take(&mut self.partial);
        let read = file.read_to_end(&mut bytes)?;
        self.offset += read as u64;
        let whole = match bytes.iter().rposition(|b| *b == b'\n') {
            Some(end) => end + 1,
            None => 0,
        };
        self.partial = bytes.split_off(whole);
        events.extend(
            bytes
                .split(|b| *b == b'\n')
                .filter(|line| !line.is_empty())
                .filter_map(|line| serde_json::from_slice::<Value>(line).ok()),
        );
        Ok(events)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn the_tail_returns_whole_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut tail = LogTail::from_end(path.clone());
        assert!(tail.poll().unwrap().is_empty());
        let mut file = File::create(&path).unwrap();
        write!(file, "{{\"a\":1}}\n{{\"b\":").unwrap();
        let first = tail.poll().unwrap();
        assert_eq!(first.len(), 1);
        writeln!(file, "2}}").unwrap();
        let second = tail.poll().unwrap();
        assert_eq!(second, vec![serde_json::json!({"b": 2})]);
        assert!(tail.poll().unwrap().is_empty());
    }

    #[test]
    fn events_put_back_come_first_in_the_next_poll() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut tail = LogTail::from_end(path.clone());
        let mut file = File::create(&path).unwrap();
        writeln!(file, "{{\"a\":1}}\n{{\"b\":2}}\n{{\"c\":3}}").unwrap();
        let mut events = tail.poll().unwrap().into_iter();
        assert_eq!(events.next(), Some(serde_json::json!({"a": 1})));
        tail.put_back(events);
        writeln!(file, "{{\"d\":4}}").unwrap();
        let keys: Vec<String> = tail
            .poll()
            .unwrap()
            .iter()
            .filter_map(|event| event.as_object()?.keys().next().cloned())
            .collect();
        assert_eq!(keys, ["b", "c", "d"]);
        assert!(tail.poll().unwrap().is_empty());
    }

    #[test]
    fn only_whole_lines_of_json_objects_are_events() {
        assert_eq!(parse_events("{\"a\":1}\n{\"b\"").unwrap().len(), 1);
        assert!(parse_events("[1]\n").is_err());
        assert!(parse_events("not json\n").is_err());
        assert_eq!(event_port(&serde_json::json!({"port": "8531"})), Some(8531));
        assert_eq!(event_port(&serde_json::json!({"port": 8034})), Some(8034));
    }

    #[test]
    fn a_token_is_found_and_a_fingerprint_holding_eyj_is_not() {
        let line = r#"{"message":"refused","kid":"Qx2eyJ7bW-fingerprint_ok"}"#;
        assert_eq!(token_in(line), None);
        let leak = r#"{"authorization":"Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}"#;
        assert_eq!(
            token_in(leak),
            Some("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
        );
        let unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert_eq!(token_in(unsigned), Some(unsigned));
        assert_eq!(token_in("eyJhbGciOiJub25lIn0.."), None);
    }
}
