//! What the configuration watcher remembers of the files it watches (the properties file and the
//! TLS files in force): each file's metadata, so that a poll which finds them unchanged reads
//! nothing, and a SHA-256 digest of its content, so that a change that leaves the content as it
//! was (`touch`, a save without edits) reloads nothing. Only the digest is kept, not the text: a
//! module binding 10,000 deployments has a 6 MB properties file, which the watcher used to read in
//! full and compare every half second, and to hold for as long as the module ran.
//!
//! File times are coarse (the kernel stamps them from a clock that ticks every few milliseconds),
//! so two writes of the same length in one tick leave the same stamp. As git does with its index,
//! a file is trusted by its stamp only once it was last modified [`SETTLED_AFTER`] before it was
//! looked at; until then every poll reads it.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

/// How long before it is looked at a file must have been modified for its stamp to stand for its
/// content: far longer than the file system's clock tick.
const SETTLED_AFTER: Duration = Duration::from_secs(1);

/// A file's identity and last change, as the file system reports them: an edit in place, a new
/// file renamed over the old one and a change of length all change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    device: u64,
    inode: u64,
    length: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Stamp {
    /// The stamp of the file at `path`; `None` when it cannot be looked at (missing, say).
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            length: metadata.len(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        })
    }

    /// Whether the file was last modified at least [`SETTLED_AFTER`] before `looked`.
    fn settled_at(&self, looked: SystemTime) -> bool {
        let (seconds, nanos) = self.modified;
        let modified = u64::try_from(seconds)
            .ok()
            .zip(u32::try_from(nanos).ok())
            .map(|(seconds, nanos)| SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos));
        modified.is_some_and(|modified| {
            looked
                .duration_since(modified)
                .is_ok_and(|age| age >= SETTLED_AFTER)
        })
    }
}

/// One file as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    stamp: Option<Stamp>,
    /// The SHA-256 of the content; `None` when the file could not be read.
    digest: Option<[u8; 32]>,
    /// Whether the file had been left alone for [`SETTLED_AFTER`] when it was read, so that an
    /// unchanged stamp means unchanged content.
    settled: bool,
}

impl Seen {
    /// Looks at the file at `path` now, reading it.
    fn now(path: &Path) -> Self {
        Self::read(path, SystemTime::now(), Stamp::of(path))
    }

    /// Reads the file at `path`, whose stamp was `stamp` when it was looked at (`looked`). The
    /// stamp is taken first: a write landing between the two is seen as a change at the next poll.
    fn read(path: &Path, looked: SystemTime, stamp: Option<Stamp>) -> Self {
        let settled = stamp.is_some_and(|stamp| stamp.settled_at(looked));
        let digest = std::fs::read(path)
            .ok()
            .map(|content| Sha256::digest(content).into());
        Self {
            stamp,
            digest,
            settled,
        }
    }
}

/// The files a daemon's configuration comes from, and what was last seen of each.
#[derive(Debug)]
pub(crate) struct WatchedFiles {
    paths: Vec<PathBuf>,
    seen: Vec<Seen>,
}

impl WatchedFiles {
    /// Starts watching `paths` as they are now.
    pub(crate) fn new(paths: Vec<PathBuf>) -> Self {
        let seen = paths.iter().map(|path| Seen::now(path)).collect();
        Self { paths, seen }
    }

    /// Looks at the files again: whether the content of any of them changed (or it appeared or
    /// went away) since the last look. A settled file whose stamp is unchanged is not read.
    pub(crate) fn changed(&mut self) -> bool {
        let mut changed = false;
        for (path, seen) in self.paths.iter().zip(&mut self.seen) {
            let looked = SystemTime::now();
            let stamp = Stamp::of(path);
            if seen.settled && stamp.is_some() && stamp == seen.stamp {
                continue;
            }
            let now = Seen::read(path, looked, stamp);
            changed |= now.digest != seen.digest;
            *seen = now;
        }
        changed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    /// A folder holding `application.properties` with `a=1`, and its path.
    fn properties() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("application.properties");
        std::fs::write(&file, "a=1\n").unwrap();
        (dir, file)
    }

    #[test]
    fn only_a_change_of_content_counts() {
        let (dir, file) = properties();
        let other = dir.path().join("tls.pem");
        let mut watched = WatchedFiles::new(vec![file.clone(), other.clone()]);
        assert!(!watched.changed(), "nothing happened");

        std::fs::write(&file, "a=1\n").unwrap();
        assert!(!watched.changed(), "rewritten with the same content");

        std::fs::write(&file, "a=2\n").unwrap();
        assert!(watched.changed(), "a new value");
        assert!(!watched.changed(), "seen once");

        std::fs::write(&other, "pem").unwrap();
        assert!(watched.changed(), "a watched file appeared");
        std::fs::remove_file(&other).unwrap();
        assert!(watched.changed(), "and went away");

        let replacement = dir.path().join("new.properties");
        std::fs::write(&replacement, "a=3\n").unwrap();
        std::fs::rename(&replacement, &file).unwrap();
        assert!(watched.changed(), "a file renamed over the watched one");
    }

    #[test]
    fn an_unchanged_stamp_is_not_read_again() {
        let (_dir, file) = properties();
        let mut watched = WatchedFiles::new(vec![file.clone()]);
        // Change the remembered digest behind the watcher's back: with the stamp unchanged and
        // the file settled, it is not read, so the difference goes unnoticed.
        watched.seen[0].settled = true;
        watched.seen[0].digest = Some([0; 32]);
        assert!(!watched.changed());
        assert_eq!(watched.seen[0].digest, Some([0; 32]));
    }

    #[test]
    fn a_file_written_within_the_last_second_is_read_whatever_its_stamp() {
        let (_dir, file) = properties();
        let mut watched = WatchedFiles::new(vec![file.clone()]);
        assert!(!watched.seen[0].settled, "just written");
        // A second write of the same length in the same tick of the file system's clock leaves
        // the stamp as it was: simulated by remembering the new stamp with the old digest.
        std::fs::write(&file, "a=2\n").unwrap();
        watched.seen[0].stamp = Stamp::of(&file);
        assert!(
            watched.changed(),
            "an unsettled file is read, and the new value seen"
        );
    }
}
