//! In-place editing of a `.properties` file that keeps every other line, comment and blank as it
//! was: `svcid link` sets a handful of properties and must not reformat an operator's file.

use std::io::Write;
use std::path::{Path, PathBuf};

use svcid_properties::uniform;

/// A properties file held as its lines.
#[derive(Debug)]
pub struct PropertiesFile {
    /// Where it is saved.
    path: PathBuf,
    /// The file's lines, without line ends.
    lines: Vec<String>,
    /// Whether anything was set to a new value since loading.
    changed: bool,
}

impl PropertiesFile {
    /// Reads `path`; a missing file is an empty one (created on save).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            path: path.to_owned(),
            lines: text.lines().map(str::to_owned).collect(),
            changed: false,
        })
    }

    /// True when a `set` changed the file.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Sets `name` (canonical dashed form; matched relaxed, like Spring) to `value`: the existing
    /// logical line is replaced in place, or a new line is appended. Returns whether it changed.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        let wanted = uniform_name(name);
        let new_line = format!("{name}={}", escape_value(value));
        let mut i = 0;
        while i < self.lines.len() {
            let end = logical_end(&self.lines, i);
            if let Some(key) = key_of(&self.lines[i])
                && uniform_name(&key) == wanted
            {
                let current = self.lines[i..=end].join("\n");
                if current == new_line || unescape_tail(&self.lines[i..=end]) == value {
                    return false;
                }
                self.lines.splice(i..=end, [new_line]);
                self.changed = true;
                return true;
            }
            i = end + 1;
        }
        self.lines.push(new_line);
        self.changed = true;
        true
    }

    /// Appends a comment line (used to label what svcid added).
    pub fn comment(&mut self, text: &str) {
        self.lines.push(format!("# {text}"));
    }

    /// Writes the file atomically (temporary file, then rename), owner-only permissions for a new
    /// file since it holds a private key; an existing file keeps its permissions.
    pub fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("properties.svcid-tmp");
        let mut text = self.lines.join("\n");
        text.push('\n');
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
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
        std::fs::rename(&tmp, &self.path)
    }
}

/// Index of the last physical line of the logical line starting at `start`.
fn logical_end(lines: &[String], start: usize) -> usize {
    let mut i = start;
    let is_comment = |l: &str| matches!(l.trim_start().chars().next(), Some('#' | '!'));
    if is_comment(&lines[i]) {
        return i;
    }
    while i + 1 < lines.len() && continues(&lines[i]) {
        i += 1;
    }
    i
}

/// A line continues when it ends in an odd number of backslashes.
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// The key of a line (unescaped), or None for blanks and comments.
fn key_of(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
        return None;
    }
    let mut key = String::new();
    let mut chars = trimmed.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    key.push(next);
                }
            }
            '=' | ':' | ' ' | '\t' | '\x0c' => break,
            _ => key.push(c),
        }
    }
    Some(key)
}

/// The raw value text of a single-line property (for the "already set" comparison).
fn unescape_tail(lines: &[String]) -> String {
    if lines.len() != 1 {
        return String::new();
    }
    let line = lines[0].trim_start();
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' => {
                let rest = line[i + 1..].trim_start_matches([' ', '\t']);
                return if rest.contains('\\') {
                    String::new()
                } else {
                    rest.to_owned()
                };
            }
            _ => {}
        }
    }
    String::new()
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
            ' ' if i == 0 => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

fn uniform_name(name: &str) -> String {
    name.split('.').map(uniform).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(text: &str) -> PropertiesFile {
        PropertiesFile {
            path: PathBuf::from("x.properties"),
            lines: text.lines().map(str::to_owned).collect(),
            changed: false,
        }
    }

    #[test]
    fn replaces_in_place_keeping_comments_and_relaxed_names() {
        let mut f = file("# head\na.b=1\n! bang\na.is_revoked = true\n\nz=\\\n  continued\n");
        assert!(f.set("a.is-revoked", "false"));
        assert!(f.set("z", "2"));
        assert!(!f.set("a.b", "1"));
        assert!(f.set("new.key", "{\"kty\":\"EC\"}"));
        assert_eq!(
            f.lines.join("\n"),
            "# head\na.b=1\n! bang\na.is-revoked=false\n\nz=2\nnew.key={\"kty\":\"EC\"}"
        );
    }
}
