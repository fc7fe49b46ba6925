//! One rule for showing untrusted text on one line, shared by every svcid crate that prints it.
//!
//! Text from peers, requests and files (a token's `kid`, a request path, a property name, a log
//! message) may hold line breaks or terminal escapes that would forge extra log lines or recolour
//! a terminal. Wherever such text is written for people (error messages, console log lines,
//! problems of `svcid check`, the HTTP port's error bodies), it goes through this crate, so every
//! place escapes the same characters in the same way.
//!
//! The rule: every C0 control (U+0000–U+001F), DEL (U+007F), every C1 control (U+0080–U+009F,
//! NEL included) and the Unicode line and paragraph separators (U+2028, U+2029) are escaped;
//! everything else is kept as it is. Line feed, carriage return and tab are written `\n`, `\r`
//! and `\t`; the others `\u{<hex>}` in lower case (`\u{1b}`, `\u{2028}`), as Rust writes them.
//!
//! The crate depends on nothing, so the lowest crates (properties, identity, logging, actuator)
//! can all use it.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` is escaped: a C0 or C1 control, DEL, U+2028 or U+2029.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `text` written with [`needs_escape`] characters escaped, through [`fmt::Display`]: for a
/// `write!` into a formatter without an intermediate string.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0)
    }
}

/// `text` with [`needs_escape`] characters escaped; borrowed when there is nothing to escape.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let _ = write_escaped(&mut out, text);
    Cow::Owned(out)
}

/// `text` cut to `max_chars` characters (with `…` when cut) and escaped: an excerpt of untrusted
/// text that may be kilobytes long. The limit counts the characters of `text`, not of the escapes.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars) + 3);
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            out.push('…');
            break;
        }
        let _ = write_char_escaped(&mut out, c);
    }
    out
}

/// Writes `text` into `out` with [`needs_escape`] characters escaped.
pub fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    text.chars().try_for_each(|c| write_char_escaped(out, c))
}

/// Writes one character, escaped if [`needs_escape`] says so.
fn write_char_escaped(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if needs_escape(c) => write!(out, "\\u{{{:x}}}", u32::from(c)),
        c => out.write_char(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_c0_del_c1_and_the_unicode_separators() {
        for c in (0u32..0x20).chain(0x7f..0xa0).chain([0x2028, 0x2029]) {
            let c = char::from_u32(c).unwrap_or_default();
            assert!(needs_escape(c), "{:x}", u32::from(c));
            assert!(!escaped(&c.to_string()).contains(c), "{:x}", u32::from(c));
        }
    }

    #[test]
    fn keeps_printable_text_even_backslashes_and_other_unicode() {
        for text in [
            "abc",
            "a b",
            "é ü 漢字 😀",
            "\\n",
            "'\"",
            "\u{a0}",
            "\u{2027}\u{202a}",
        ] {
            assert!(matches!(escaped(text), Cow::Borrowed(_)), "{text:?}");
        }
    }

    #[test]
    fn the_escapes_are_rust_like() {
        assert_eq!(escaped("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escaped("\0\u{1b}[31m\u{7f}"), "\\u{0}\\u{1b}[31m\\u{7f}");
        assert_eq!(escaped("\u{85}\u{9f}"), "\\u{85}\\u{9f}");
        assert_eq!(escaped("x\u{2028}y\u{2029}z"), "x\\u{2028}y\\u{2029}z");
        assert_eq!(Escaped("two\nlines").to_string(), "two\\nlines");
    }

    #[test]
    fn excerpts_are_cut_by_characters_and_escaped() {
        assert_eq!(excerpt("abc", 64), "abc");
        assert_eq!(excerpt("a\0b\n", 64), "a\\u{0}b\\n");
        assert_eq!(excerpt(&"x".repeat(100), 4), "xxxx…");
        assert_eq!(excerpt("ééé", 2), "éé…");
        assert_eq!(excerpt("\n\n\n", 2), "\\n\\n…");
        assert_eq!(excerpt("abc", 3), "abc");
        assert_eq!(excerpt("", 0), "");
    }
}
