//! Where finished lines go: the writers behind the JSON and console layouts.
//!
//! Each sink is one writer behind its own mutex. A line is formatted before the lock is taken,
//! then written whole and flushed while holding it, so lines from different threads never
//! interleave and a crash loses nothing that was logged. Write errors never reach the caller
//! (logging must not take a daemon down); they are counted instead.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The writers a subscriber writes to, grouped by layout.
///
/// Built by [`crate::init`] from the settings (stdout and the log files), or by a test with
/// in-memory writers such as [`MemorySink`].
#[derive(Default)]
pub struct Sinks {
    /// Receive the JSON layout, one object per line.
    pub(crate) json: Vec<Sink>,
    /// Receive Spring Boot's console layout, one event per line.
    pub(crate) plain: Vec<Sink>,
}

impl Sinks {
    /// No writers yet: a subscriber built from this writes nothing.
    pub fn new() -> Self {
        Sinks::default()
    }

    /// Adds a writer that receives every event as a JSON line.
    #[must_use]
    pub fn json(mut self, writer: impl Write + Send + 'static) -> Self {
        self.json.push(Sink::new(writer));
        self
    }

    /// Adds a writer that receives every event as a console (Spring Boot pattern) line.
    #[must_use]
    pub fn plain(mut self, writer: impl Write + Send + 'static) -> Self {
        self.plain.push(Sink::new(writer));
        self
    }

    /// Flushes every writer, ignoring errors (each line was already flushed when written).
    pub(crate) fn flush(&self) {
        for sink in self.json.iter().chain(&self.plain) {
            let _ = sink.lock().flush();
        }
    }
}

impl fmt::Debug for Sinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sinks")
            .field("json", &self.json.len())
            .field("plain", &self.plain.len())
            .finish()
    }
}

/// One writer, shared by every thread that logs.
pub(crate) struct Sink {
    /// The mutex makes each line's write-and-flush atomic with respect to other threads.
    writer: Mutex<Box<dyn Write + Send>>,
}

impl Sink {
    fn new(writer: impl Write + Send + 'static) -> Self {
        Sink {
            writer: Mutex::new(Box::new(writer)),
        }
    }

    /// Takes the lock even if a previous holder panicked: a half-written line is better than
    /// losing the log for the rest of the process, and logging must never panic.
    fn lock(&self) -> MutexGuard<'_, Box<dyn Write + Send>> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `line` (which ends with a newline) and flushes; failures are counted in `errors`.
    pub(crate) fn write_line(&self, line: &[u8], errors: &AtomicU64) {
        let mut writer = self.lock();
        if writer
            .write_all(line)
            .and_then(|()| writer.flush())
            .is_err()
        {
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An in-memory writer for tests: clones share one buffer, so a test keeps a clone, hands another
/// to [`Sinks`], and reads what was logged.
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    /// The bytes written so far, shared by every clone.
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl MemorySink {
    /// An empty buffer.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        let buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Everything written so far, one entry per line, without the newlines.
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

impl Write for MemorySink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A writer that always fails, standing in for a full disk.
    struct FullDisk;

    impl Write for FullDisk {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_are_counted_not_raised() {
        let errors = AtomicU64::new(0);
        let sink = Sink::new(FullDisk);
        sink.write_line(b"x\n", &errors);
        sink.write_line(b"y\n", &errors);
        assert_eq!(errors.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn memory_sink_clones_share_the_buffer() {
        let sink = MemorySink::new();
        let mut writer = sink.clone();
        writer.write_all(b"a\nb\n").unwrap();
        assert_eq!(sink.lines(), vec!["a", "b"]);
    }
}
