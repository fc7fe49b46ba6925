//! In-place editing of a `.properties` file that keeps every other line, comment and blank as it
//! was: `svcid link` and `svcid revoke` set a handful of properties and must not reformat an
//! operator's file.
//!
//! A property that exists is changed on its own line(s), keeping the name as the operator spelt it
//! (`isRevoked` stays `isRevoked`) and the separator as written; only the value is rewritten. A new
//! property goes right after the last line of its group (for example after the other lines of the
//! same deployment), or at the end. Which line holds a property is decided by the real parser in
//! `svcid_properties`, with Spring's relaxed names, so the editor and the daemons always agree.
//! Saving is atomic (temporary file, then rename) so a daemon re-reading the file never sees half
//! of it. What to set is the callers' business.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use svcid_properties::{Problem, PropertySet};

/// A properties file held as its lines.
pub struct PropertiesFile {
    /// Where it is saved.
    path: PathBuf,
    /// The file's physical lines, without line ends (and without a leading byte-order mark).
    lines: Vec<String>,
    /// `"\r\n"` when the file used Windows line ends, so an edit does not convert the whole file.
    line_end: &'static str,
    /// Whether the file started with a UTF-8 byte-order mark (kept on save).
    bom: bool,
    /// Whether anything was set to a new value since loading or the last save.
    changed: bool,
}

/// Hand-written: the lines hold this module's private key, which must never reach a log.
impl fmt::Debug for PropertiesFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PropertiesFile")
            .field("path", &self.path)
            .field("lines", &self.lines.len())
            .field("changed", &self.changed)
            .finish_non_exhaustive()
    }
}

impl PropertiesFile {
    /// Reads `path`; a missing file is an empty one (created on save).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        Ok(Self::from_text(path, &text))
    }

    /// A file with the given content, saved to `path`.
    pub fn from_text(path: &Path, text: &str) -> Self {
        let (bom, text) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        Self {
            path: path.to_owned(),
            lines: text.lines().map(str::to_owned).collect(),
            line_end: if text.contains("\r\n") { "\r\n" } else { "\n" },
            bom,
            changed: false,
        }
    }

    /// Where the file is saved.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when a `set` changed the file since it was opened or last saved.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// The file as it would be saved.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if self.bom {
            text.push('\u{feff}');
        }
        for line in &self.lines {
            text.push_str(line);
            text.push_str(self.line_end);
        }
        text
    }

    /// The current content parsed by the real parser (file origins name this file), so callers
    /// can look properties up with relaxed names, including what they set a moment ago.
    pub fn properties(&self) -> Result<PropertySet, Vec<Problem>> {
        let mut set = PropertySet::new();
        set.load_str(&self.text(), &self.path)?;
        Ok(set)
    }

    /// Sets `name` (canonical dashed form; matched relaxed, like Spring) to `value`, appending a
    /// new line at the end when it is absent. Returns whether the file changed.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        self.set_in_group(name, value, "")
    }

    /// Like [`PropertiesFile::set`], but a new line goes right after the last property whose name
    /// starts with `group` (relaxed), e.g. a deployment's prefix, so related lines stay together.
    pub fn set_in_group(&mut self, name: &str, value: &str, group: &str) -> bool {
        let escaped = escape_value(value);
        if let Some((start, end, current)) = self.find(name) {
            if current == value {
                return false;
            }
            let prefix = &self.lines[start][..value_start(&self.lines[start])];
            let line = format!("{prefix}{escaped}");
            self.lines.splice(start..=end, [line]);
            self.changed = true;
            return true;
        }
        let line = format!("{name}={escaped}");
        let at = if group.is_empty() {
            None
        } else {
            self.last_line_under(group)
        };
        match at {
            Some(end) => self.lines.insert(end + 1, line),
            None => self.lines.push(line),
        }
        self.changed = true;
        true
    }

    /// Appends a comment line, after a blank line unless the file is empty or already ends in one
    /// (used to label a block svcid adds).
    pub fn comment(&mut self, text: &str) {
        if self
            .lines
            .last()
            .is_some_and(|last| !last.trim().is_empty())
        {
            self.lines.push(String::new());
        }
        self.lines.push(format!("# {text}"));
        self.changed = true;
    }

    /// Writes the file atomically (temporary file, then rename); a new file gets owner-only
    /// permissions since it holds a private key, an existing one keeps its permissions.
    pub fn save(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("properties.svcid-tmp");
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(self.text().as_bytes())?;
            file.sync_all()?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0o600);
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.changed = false;
        Ok(())
    }

    /// The logical line that sets `name` (the last one, because in Java the last line wins):
    /// first and last physical line and the decoded value.
    fn find(&self, name: &str) -> Option<(usize, usize, String)> {
        let mut found = None;
        self.for_each_property(|start, end, set| {
            if let Some(value) = set.get(name) {
                found = Some((start, end, value.raw.clone()));
            }
        });
        found
    }

    /// The last physical line of the last property whose name starts with `group` (relaxed).
    fn last_line_under(&self, group: &str) -> Option<usize> {
        let mut found = None;
        self.for_each_property(|_, end, set| {
            if !set.entries_under(group).is_empty() {
                found = Some(end);
            }
        });
        found
    }

    /// Calls `visit(first, last, parsed)` for every logical line that holds a property, with the
    /// line parsed on its own so that lookups follow the parser's rules exactly.
    fn for_each_property(&self, mut visit: impl FnMut(usize, usize, &PropertySet)) {
        let mut i = 0;
        while i < self.lines.len() {
            let end = logical_end(&self.lines, i);
            let mut set = PropertySet::new();
            // A line the parser refuses (a bad escape) holds no property we could edit safely.
            if set
                .load_str(&self.lines[i..=end].join("\n"), &self.path)
                .is_ok()
            {
                visit(i, end, &set);
            }
            i = end + 1;
        }
    }
}

/// Index of the last physical line of the logical line starting at `start`.
fn logical_end(lines: &[String], start: usize) -> usize {
    let is_comment = |l: &str| matches!(l.trim_start().chars().next(), Some('#' | '!'));
    if is_comment(&lines[start]) {
        return start;
    }
    let mut i = start;
    while i + 1 < lines.len() && continues(&lines[i]) {
        i += 1;
    }
    i
}

/// A line continues when it ends in an odd number of backslashes.
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Byte offset where the value of a property line starts, by Java's rules: leading whitespace,
/// the key (backslash escapes included), whitespace, at most one `=` or `:`, whitespace.
fn value_start(line: &str) -> usize {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\x0c');
    let mut chars = line.char_indices().peekable();
    while chars.next_if(|(_, c)| is_space(*c)).is_some() {}
    let mut escaped = false;
    while let Some(&(_, c)) = chars.peek() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_space(c) {
            break;
        }
        chars.next();
    }
    while chars.next_if(|(_, c)| is_space(*c)).is_some() {}
    if chars.next_if(|(_, c)| *c == '=' || *c == ':').is_some() {
        while chars.next_if(|(_, c)| is_space(*c)).is_some() {}
    }
    chars.peek().map_or(line.len(), |(i, _)| *i)
}

/// Escapes a value for a `.properties` line.
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0c' => out.push_str("\\f"),
            ' ' if i == 0 => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(text: &str) -> PropertiesFile {
        PropertiesFile::from_text(Path::new("x.properties"), text)
    }

    #[test]
    fn replaces_in_place_keeping_comments_spelling_and_separators() {
        let mut f = file("# head\na.b=1\n! bang\na.is_revoked = true\n\nz=\\\n  continued\n");
        assert!(f.set("a.is-revoked", "false"));
        assert!(f.set("z", "2"));
        assert!(!f.set("a.b", "1"));
        assert!(f.set("new.key", "{\"kty\":\"EC\"}"));
        assert_eq!(
            f.text(),
            "# head\na.b=1\n! bang\na.is_revoked = false\n\nz=2\nnew.key={\"kty\":\"EC\"}\n"
        );
        assert!(f.changed());
    }

    #[test]
    fn unchanged_values_are_recognised_through_escapes_and_continuations() {
        let mut f = file("a = one\\\n    two\nb:c\\:d\nroles[0] IMPERSONATION\n");
        assert!(!f.set("a", "onetwo"));
        assert!(!f.set("b", "c:d"));
        assert!(!f.set("roles[0]", "IMPERSONATION"));
        assert!(!f.changed());
    }

    #[test]
    fn the_last_of_duplicate_lines_is_the_one_changed() {
        let mut f = file("a=1\na=2\n");
        assert!(f.set("a", "3"));
        assert_eq!(f.text(), "a=1\na=3\n");
    }

    #[test]
    fn new_lines_join_their_group() {
        let mut f = file("x.d1.module=dpe\nx.d1.roles[0]=R\n# other\ny=1\n");
        assert!(f.set_in_group("x.d1.security.jwt-keys.key.fingerprint", "F", "x.d1"));
        assert!(f.set_in_group("x.d2.module", "dpm", "x.d2"));
        assert_eq!(
            f.text(),
            "x.d1.module=dpe\nx.d1.roles[0]=R\nx.d1.security.jwt-keys.key.fingerprint=F\n# other\ny=1\nx.d2.module=dpm\n"
        );
    }

    #[test]
    fn relaxed_names_match_and_keep_the_operators_spelling() {
        let mut f = file("x.dpe-dev.security.jwtKeys.key.isRevoked=false\n");
        assert!(f.set("x.dpe-dev.security.jwt-keys.key.is-revoked", "true"));
        assert_eq!(f.text(), "x.dpe-dev.security.jwtKeys.key.isRevoked=true\n");
    }

    #[test]
    fn windows_line_ends_and_bom_are_kept() {
        let mut f = file("\u{feff}# c\r\na=1\r\n");
        assert!(f.set("a", "2"));
        assert!(f.set("b", "3"));
        assert_eq!(f.text(), "\u{feff}# c\r\na=2\r\nb=3\r\n");
    }

    #[test]
    fn values_are_escaped_and_read_back() {
        let mut f = file("");
        f.set("a", " lead\\back\nline");
        let props = f.properties().unwrap();
        assert_eq!(props.get("a").unwrap().raw, " lead\\back\nline");
        assert!(!f.set("a", " lead\\back\nline"));
    }

    #[test]
    fn comments_get_a_blank_line_before_them() {
        let mut f = file("a=1\n");
        f.comment("block");
        assert_eq!(f.text(), "a=1\n\n# block\n");
        let mut empty = file("");
        empty.comment("first");
        assert_eq!(empty.text(), "# first\n");
    }

    #[test]
    fn value_start_follows_java() {
        assert_eq!(value_start("a=b"), 2);
        assert_eq!(value_start("  a : b"), 6);
        assert_eq!(value_start("a\\=x=b"), 5);
        assert_eq!(value_start("a b"), 2);
        assert_eq!(value_start("a"), 1);
        assert_eq!(value_start("a =  "), 5);
    }

    #[test]
    fn debug_never_shows_lines() {
        let f = file("ataccama.authentication.internal.jwt.generator.key=SECRET\n");
        assert!(!format!("{f:?}").contains("SECRET"));
    }

    #[test]
    fn save_is_atomic_and_creates_folders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/application.properties");
        let mut f = PropertiesFile::open(&path).unwrap();
        f.set("a", "1");
        f.save().unwrap();
        assert!(!f.changed());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a=1\n");
        assert!(
            !dir.path()
                .join("etc/application.properties.svcid-tmp")
                .exists()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
