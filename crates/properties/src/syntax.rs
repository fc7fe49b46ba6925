//! The Java `.properties` grammar, read the way `java.util.Properties.load(Reader)` reads it.
//!
//! Its job is text in, `(key, value, line)` triples and syntax errors out; it knows nothing about
//! Spring names, sources or files on disk (the caller has already turned the bytes into `&str`).
//! It is written here rather than taken from the `java-properties` crate because that crate
//! unescapes comments (so `# C:\users` is an error), rejects surrogate-pair escapes, drops a last
//! line ending in `\` without a newline, stops being defined after its first error, and can panic;
//! a configuration reader must report every mistake at once and never panic. The tests compare
//! the two parsers on generated input wherever `java-properties` is right.
//!
//! Rules, from the `Properties.load` documentation:
//! - natural lines end at `\n`, `\r` or `\r\n`; a logical line continues while a natural line ends
//!   in an odd number of backslashes, and leading whitespace of each continuation is dropped;
//! - a logical line whose first non-blank character is `#` or `!` is a comment (a comment never
//!   continues, and a `#` on a continuation line is text);
//! - the key ends at the first unescaped `=`, `:` or whitespace; whitespace, then at most one
//!   `=`/`:`, then whitespace separate it from the value; trailing whitespace stays in the value;
//! - escapes `\t \n \r \f`, `\uXXXX` (UTF-16, so surrogate pairs combine), and `\x` meaning `x`.

/// Java's whitespace inside a line (space, tab, form feed); line terminators are handled apart.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// One `key=value` pair as the file gives it, escapes already decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pair {
    /// The decoded key, exactly as Java would store it (no relaxed-name processing).
    pub key: String,
    /// The decoded value, trailing whitespace kept (Java semantics).
    pub value: String,
    /// The 1-based natural line the logical line starts on: what an operator looks for.
    pub line: u32,
}

/// Why an escape sequence could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyntaxErrorKind {
    /// `\u` not followed by four hexadecimal digits.
    MalformedUnicodeEscape,
    /// A `\uD800`–`\uDFFF` escape that is not half of a high-low surrogate pair.
    UnpairedSurrogate,
}

/// A syntax error with the exact position of the offending escape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// 1-based natural line of the escape (may differ from the pair's first line).
    pub line: u32,
    /// 1-based column, in characters, of the backslash that starts the escape.
    pub column: u32,
    /// The key of the pair, decoded if the key itself was fine, otherwise as written.
    pub key: String,
    /// What is wrong with the escape.
    pub kind: SyntaxErrorKind,
}

/// Everything read from one text: the pairs in file order and every syntax error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Pairs in the order they appear; a pair with a bad escape is left out.
    pub pairs: Vec<Pair>,
    /// Every bad escape, in file order.
    pub errors: Vec<SyntaxError>,
}

/// A character of a logical line with the natural position it came from.
#[derive(Clone, Copy, Debug)]
struct Located {
    ch: char,
    line: u32,
    column: u32,
}

/// Splits text into natural lines numbered from 1, accepting `\n`, `\r\n` and lone `\r`.
fn natural_lines(text: &str) -> impl Iterator<Item = (u32, &str)> {
    let mut rest = Some(text);
    let mut number: u32 = 0;
    std::iter::from_fn(move || {
        let current = rest?;
        number = number.saturating_add(1);
        match current.find(['\r', '\n']) {
            Some(end) => {
                let terminator = if current[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + terminator..]);
                Some((number, &current[..end]))
            }
            None => {
                rest = None;
                Some((number, current))
            }
        }
    })
}

/// Whether a natural line ends in an odd number of backslashes, i.e. continues.
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Appends the characters of `segment` (which starts at 1-based `first_column`) to `out`.
fn push_located(out: &mut Vec<Located>, segment: &str, line: u32, first_column: u32) {
    let mut column = first_column;
    for ch in segment.chars() {
        out.push(Located { ch, line, column });
        column = column.saturating_add(1);
    }
}

/// Counts the characters skipped before `trimmed` inside `line`, as a column offset.
fn skipped_columns(line: &str, trimmed: &str) -> u32 {
    let skipped = &line[..line.len() - trimmed.len()];
    u32::try_from(skipped.chars().count()).unwrap_or(u32::MAX)
}

/// Reads `.properties` text. Never fails as a whole and never panics: bad escapes are reported
/// and their pairs skipped, everything else is kept.
pub(crate) fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut lines = natural_lines(text);
    while let Some((first_line, line)) = lines.next() {
        let trimmed = line.trim_start_matches(is_blank);
        if trimmed.is_empty() || trimmed.starts_with(['#', '!']) {
            continue;
        }
        let mut logical = Vec::new();
        let (mut number, mut raw, mut segment) = (first_line, line, trimmed);
        loop {
            let column = skipped_columns(raw, segment).saturating_add(1);
            if continues(segment) {
                // Drop the continuation backslash itself; the rest of the segment is content.
                push_located(&mut logical, &segment[..segment.len() - 1], number, column);
                match lines.next() {
                    Some((next_number, next)) => {
                        (number, raw) = (next_number, next);
                        segment = next.trim_start_matches(is_blank);
                    }
                    // Java keeps the line when the file ends inside a continuation.
                    None => break,
                }
            } else {
                push_located(&mut logical, segment, number, column);
                break;
            }
        }
        // Java drops a logical line that is empty once joined (a lone `\` before a blank line).
        if !logical.is_empty() {
            split_pair(&logical, first_line, &mut parsed);
        }
    }
    parsed
}

/// Splits one logical line into key and value (Java's `load0`) and decodes both.
fn split_pair(logical: &[Located], line: u32, parsed: &mut Parsed) {
    let mut key_end = logical.len();
    let mut value_start = logical.len();
    let mut has_separator = false;
    let mut escaped = false;
    for (i, located) in logical.iter().enumerate() {
        let c = located.ch;
        if !escaped && (c == '=' || c == ':') {
            (key_end, value_start, has_separator) = (i, i + 1, true);
            break;
        }
        if !escaped && is_blank(c) {
            (key_end, value_start) = (i, i + 1);
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    while let Some(located) = logical.get(value_start) {
        let c = located.ch;
        if !is_blank(c) {
            if !has_separator && (c == '=' || c == ':') {
                has_separator = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    let key_chars = logical.get(..key_end).unwrap_or_default();
    let value_chars = logical.get(value_start..).unwrap_or_default();
    let key = match unescape(key_chars) {
        Ok(key) => key,
        Err((at, kind)) => {
            parsed.errors.push(SyntaxError {
                line: at.line,
                column: at.column,
                key: key_chars.iter().map(|l| l.ch).collect(),
                kind,
            });
            return;
        }
    };
    match unescape(value_chars) {
        Ok(value) => parsed.pairs.push(Pair { key, value, line }),
        Err((at, kind)) => parsed.errors.push(SyntaxError {
            line: at.line,
            column: at.column,
            key,
            kind,
        }),
    }
}

/// Decodes Java escapes. `\u` escapes are UTF-16 code units, so a high surrogate must be followed
/// directly by a low one; the error carries the position of the offending backslash.
fn unescape(chars: &[Located]) -> Result<String, (Located, SyntaxErrorKind)> {
    let mut out = String::with_capacity(chars.len());
    // A high surrogate waiting for its low half, with where it was written.
    let mut pending_high: Option<(u16, Located)> = None;
    let mut i = 0;
    while let Some(&located) = chars.get(i) {
        i += 1;
        let decoded = if located.ch == '\\' {
            let Some(next) = chars.get(i) else {
                // Unreachable through `parse` (a trailing odd backslash continues the line);
                // Java would read past the end, a lone backslash is the least surprising result.
                out.push('\\');
                break;
            };
            i += 1;
            match next.ch {
                'u' => {
                    let digits: String = chars.iter().skip(i).take(4).map(|l| l.ch).collect();
                    let unit = (digits.len() == 4 && digits.chars().all(|c| c.is_ascii_hexdigit()))
                        .then(|| u16::from_str_radix(&digits, 16).ok())
                        .flatten()
                        .ok_or((located, SyntaxErrorKind::MalformedUnicodeEscape))?;
                    i += 4;
                    match (pending_high.take(), unit) {
                        (None, 0xD800..=0xDBFF) => {
                            pending_high = Some((unit, located));
                            continue;
                        }
                        (Some((high, _)), 0xDC00..=0xDFFF) => {
                            let code = 0x10000
                                + ((u32::from(high) - 0xD800) << 10)
                                + (u32::from(unit) - 0xDC00);
                            char::from_u32(code)
                                .ok_or((located, SyntaxErrorKind::UnpairedSurrogate))?
                        }
                        (Some((_, high_at)), _) => {
                            return Err((high_at, SyntaxErrorKind::UnpairedSurrogate));
                        }
                        (None, _) => char::from_u32(u32::from(unit))
                            .ok_or((located, SyntaxErrorKind::UnpairedSurrogate))?,
                    }
                }
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                'f' => '\x0c',
                other => other,
            }
        } else {
            located.ch
        };
        if let Some((_, high_at)) = pending_high {
            return Err((high_at, SyntaxErrorKind::UnpairedSurrogate));
        }
        out.push(decoded);
    }
    match pending_high {
        Some((_, high_at)) => Err((high_at, SyntaxErrorKind::UnpairedSurrogate)),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, u32)> {
        let parsed = parse(text);
        assert!(
            parsed.errors.is_empty(),
            "unexpected errors: {:?}",
            parsed.errors
        );
        parsed
            .pairs
            .into_iter()
            .map(|p| (p.key, p.value, p.line))
            .collect()
    }

    fn kv(key: &str, value: &str, line: u32) -> (String, String, u32) {
        (key.to_owned(), value.to_owned(), line)
    }

    #[test]
    fn all_separators() {
        assert_eq!(
            pairs("a=1\nb:2\nc 3\nd = 4\ne : 5\nf\t6\ng   =   7\nh :=8\ni\n"),
            vec![
                kv("a", "1", 1),
                kv("b", "2", 2),
                kv("c", "3", 3),
                kv("d", "4", 4),
                kv("e", "5", 5),
                kv("f", "6", 6),
                kv("g", "7", 7),
                // Only one separator is eaten: the second `=` belongs to the value.
                kv("h", "=8", 8),
                kv("i", "", 9),
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "# hash\n! bang\n   # indented\n\n  \t\nkey=value # not a comment\n";
        assert_eq!(pairs(text), vec![kv("key", "value # not a comment", 6)]);
    }

    #[test]
    fn comments_are_not_unescaped_and_do_not_continue() {
        // Windows paths in comments are common; Java does not decode comments at all.
        let text = "# C:\\users\\u\\x\n! ends with backslash \\\nkey=v\n";
        assert_eq!(pairs(text), vec![kv("key", "v", 3)]);
    }

    #[test]
    fn continuation_lines_join_and_keep_the_first_line_number() {
        let text = "first=1\nlong = one, \\\n     two, \\\n\tthree\nafter=2\n";
        assert_eq!(
            pairs(text),
            vec![
                kv("first", "1", 1),
                kv("long", "one, two, three", 2),
                kv("after", "2", 5)
            ]
        );
    }

    #[test]
    fn continuation_subtleties() {
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(
            pairs("a=x\\\\\nb=y"),
            vec![kv("a", "x\\", 1), kv("b", "y", 2)]
        );
        // `#` on a continuation line is text.
        assert_eq!(pairs("a=x\\\n#y\n"), vec![kv("a", "x#y", 1)]);
        // A blank continuation line ends the logical line.
        assert_eq!(
            pairs("a=x\\\n\nb=y"),
            vec![kv("a", "x", 1), kv("b", "y", 3)]
        );
        // The key itself may continue.
        assert_eq!(
            pairs("ataccama.\\\n  server=1"),
            vec![kv("ataccama.server", "1", 1)]
        );
        // A lone backslash joined with a blank line is no line at all.
        assert_eq!(pairs("\\\n\nb=1\n\\\n"), vec![kv("b", "1", 3)]);
        // The file may end inside a continuation.
        assert_eq!(pairs("a=x\\"), vec![kv("a", "x", 1)]);
    }

    #[test]
    fn line_terminators_cr_lf_crlf() {
        assert_eq!(
            pairs("a=1\r\nb=2\rc=3\nd=\\\r\n  4"),
            vec![
                kv("a", "1", 1),
                kv("b", "2", 2),
                kv("c", "3", 3),
                kv("d", "4", 4)
            ]
        );
    }

    #[test]
    fn escapes() {
        let text = "caf\\u00e9=cr\\u00E8me\nesc\\=aped\\:key\\ name=v\ntabs=a\\tb\\nc\\rd\\fe\\\\f\\q\nemoji=\\uD83D\\uDE00\n";
        assert_eq!(
            pairs(text),
            vec![
                kv("café", "crème", 1),
                kv("esc=aped:key name", "v", 2),
                kv("tabs", "a\tb\nc\rd\x0ce\\fq", 3),
                kv("emoji", "😀", 4),
            ]
        );
    }

    #[test]
    fn trailing_whitespace_is_kept_leading_is_not() {
        assert_eq!(pairs("k =   v  \t\n"), vec![kv("k", "v  \t", 1)]);
        assert_eq!(pairs("k=\\ \\ v"), vec![kv("k", "  v", 1)]);
    }

    #[test]
    fn utf8_text_is_taken_as_is() {
        assert_eq!(
            pairs("jméno=Žluťoučký kůň\n"),
            vec![kv("jméno", "Žluťoučký kůň", 1)]
        );
    }

    #[test]
    fn bad_escapes_are_errors_with_exact_position() {
        let parsed =
            parse("ok=1\nbad=abc\\u12G4\nkey=\\\n   x\\u00\nhigh=\\uD83Dx\nlow=\\uDE00\nalso=2\n");
        assert_eq!(
            parsed.pairs,
            vec![
                Pair {
                    key: "ok".into(),
                    value: "1".into(),
                    line: 1
                },
                Pair {
                    key: "also".into(),
                    value: "2".into(),
                    line: 7
                },
            ]
        );
        let found: Vec<_> = parsed
            .errors
            .iter()
            .map(|e| (e.key.as_str(), e.line, e.column, e.kind))
            .collect();
        use SyntaxErrorKind::*;
        assert_eq!(
            found,
            vec![
                ("bad", 2, 8, MalformedUnicodeEscape),
                // Reported on the continuation line where the escape is, at its real column.
                ("key", 4, 5, MalformedUnicodeEscape),
                ("high", 5, 6, UnpairedSurrogate),
                ("low", 6, 5, UnpairedSurrogate),
            ]
        );
    }

    #[test]
    fn bad_escape_in_key_reports_the_key_as_written() {
        let parsed = parse("a\\uZZZZ=1");
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].key, "a\\uZZZZ");
    }

    #[test]
    fn never_panics_on_generated_garbage() {
        let mut noise = crate::noise::Noise::new(7);
        for _ in 0..20_000 {
            let text = noise.properties_text(60);
            let parsed = parse(&text);
            for pair in &parsed.pairs {
                assert!(pair.line >= 1);
            }
        }
    }

    /// Differential test against the `java-properties` crate on the inputs where it is right:
    /// ASCII only (it reads Windows-1252 by default, which equals UTF-8 on ASCII), no surrogate
    /// escapes, no `#` opening a continuation line, and a final line terminator (it drops a
    /// continued last line without one).
    #[test]
    fn agrees_with_java_properties_crate() {
        let mut noise = crate::noise::Noise::new(42);
        let mut compared = 0;
        for _ in 0..20_000 {
            let mut text = noise.properties_text(40);
            if !text.is_ascii() || text.contains("\\uD8") || text.contains("\\uDE") {
                continue;
            }
            // java-properties also takes `#`/`!` starting a continuation line for a comment;
            // Java does not (see `continuation_subtleties`).
            let comment_after_continuation = natural_lines(&text)
                .zip(natural_lines(&text).skip(1))
                .any(|((_, before), (_, line))| {
                    continues(before) && line.trim_start_matches(is_blank).starts_with(['#', '!'])
                });
            if comment_after_continuation {
                continue;
            }
            text.push('\n');
            let reference: Result<Vec<(String, String, u32)>, _> =
                java_properties::PropertiesIter::new(text.as_bytes())
                    .filter_map(|line| match line {
                        Ok(line) => {
                            let number = u32::try_from(line.line_number()).unwrap_or(u32::MAX);
                            match line.consume_content() {
                                java_properties::LineContent::KVPair(k, v) => {
                                    Some(Ok((k, v, number)))
                                }
                                java_properties::LineContent::Comment(_) => None,
                            }
                        }
                        Err(e) => Some(Err(e)),
                    })
                    .collect();
            // java-properties decodes comments, so it fails where Java (and we) do not.
            let Ok(reference) = reference else { continue };
            let ours = parse(&text);
            if !ours.errors.is_empty() {
                continue;
            }
            let ours: Vec<_> = ours
                .pairs
                .into_iter()
                .map(|p| (p.key, p.value, p.line))
                .collect();
            assert_eq!(ours, reference, "input {text:?}");
            compared += 1;
        }
        assert!(compared > 2_000, "too few comparable inputs: {compared}");
    }
}
