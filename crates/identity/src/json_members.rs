//! The token reader's JSON: a strict scanner for a token's header and claims that builds only the
//! top-level members its caller keeps, and borrows their strings from the decoded text.
//!
//! It accepts exactly the documents the [`strict_json`](crate::strict_json) reader accepts as an
//! object — valid UTF-8, RFC 8259 syntax, no member name twice in any object at any depth (after
//! unescaping), at most [`MAX_DEPTH`] levels, no trailing data, numbers that are finite — so the
//! verifier's rules, and the refusal of a second `alg` (docs/security.md), do not depend on which
//! reader ran. It says only *that* a document was refused: a token that cannot be read is not a
//! user token, whatever the reason. A person's token is read once, when it is new, beside an RSA
//! operation: routing one took 1.3–1.4 µs through serde_json's `Value` (a copy of every kept
//! string, a map per object) and takes 1.1–1.2 µs here (BENCHMARKS.md, "RS256 user-token verify,
//! cold").

use std::borrow::Cow;
use std::collections::HashSet;

use crate::strict_json::MAX_DEPTH;

/// A kept JSON value, its strings borrowed from the document unless they had escapes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// A number as written: valid JSON syntax, finite.
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in document order, names unescaped.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl Json<'_> {
    /// The text of a string.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    /// An integer number that fits an `i64`, as serde_json reads one: no fraction, no exponent,
    /// and not `-0` (which serde_json reads as a float).
    pub(crate) fn as_i64(&self) -> Option<i64> {
        let Json::Number(text) = self else {
            return None;
        };
        let magnitude = text.strip_prefix('-').unwrap_or(text);
        if magnitude.bytes().all(|b| b.is_ascii_digit()) && *text != "-0" {
            text.parse().ok()
        } else {
            None
        }
    }

    /// The member called `name` of an object.
    pub(crate) fn get(&self, name: &str) -> Option<&Self> {
        match self {
            Json::Object(members) => members
                .iter()
                .find_map(|(member, value)| (member == name).then_some(value)),
            _ => None,
        }
    }

    /// The value's JSON type, for messages about a member of the wrong type (never its content).
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// The top-level members of one object that the reader kept, in document order.
#[derive(Debug, Default)]
pub(crate) struct Members<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Members<'a> {
    /// The member called `name`, when it was kept.
    pub(crate) fn get(&self, name: &str) -> Option<&Json<'a>> {
        self.0
            .iter()
            .find_map(|(member, value)| (member == name).then_some(value))
    }

    /// The kept members, names unescaped.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(Cow<'a, str>, Json<'a>)> {
        self.0.iter()
    }

    /// Whether a member called `name` was kept.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// The document is not one strict JSON object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused;

/// Reads `bytes` as one strict JSON object and keeps the top-level members whose (unescaped)
/// names `keep` accepts; every other member is checked under the same rules and dropped.
pub(crate) fn read_members<'a>(
    bytes: &'a [u8],
    keep: &dyn Fn(&str) -> bool,
) -> Result<Members<'a>, Refused> {
    let text = std::str::from_utf8(bytes).map_err(|_| Refused)?;
    let mut reader = Reader { text, at: 0 };
    reader.whitespace();
    if reader.peek() != Some(b'{') {
        return Err(Refused);
    }
    // Room for as many members as a token's reader keeps, so the list is allocated once.
    let mut kept = Vec::with_capacity(10);
    reader.object(0, |name, reader, depth| {
        if keep(&name) {
            kept.push((name, reader.value(depth)?));
            Ok(())
        } else {
            reader.skip(depth)
        }
    })?;
    reader.whitespace();
    if reader.at == text.len() {
        Ok(Members(kept))
    } else {
        Err(Refused)
    }
}

/// A position in a document known to be UTF-8; every byte it stops at is ASCII, so every slice
/// it takes is on character boundaries.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Result<u8, Refused> {
        let byte = self.peek().ok_or(Refused)?;
        self.at += 1;
        Ok(byte)
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Refused> {
        if self.next()? == byte {
            Ok(())
        } else {
            Err(Refused)
        }
    }

    /// One value at nesting `depth`, built.
    fn value(&mut self, depth: usize) -> Result<Json<'a>, Refused> {
        Ok(match self.peek().ok_or(Refused)? {
            b'"' => Json::String(self.string()?),
            b'{' => {
                let mut members = Vec::new();
                self.object(depth, |name, reader, depth| {
                    members.push((name, reader.value(depth)?));
                    Ok(())
                })?;
                Json::Object(members)
            }
            b'[' => {
                let mut items = Vec::new();
                self.array(depth, |reader, depth| {
                    items.push(reader.value(depth)?);
                    Ok(())
                })?;
                Json::Array(items)
            }
            b't' => self.literal("true", Json::Bool(true))?,
            b'f' => self.literal("false", Json::Bool(false))?,
            b'n' => self.literal("null", Json::Null)?,
            _ => Json::Number(self.number()?),
        })
    }

    /// One value at nesting `depth`, checked and dropped.
    fn skip(&mut self, depth: usize) -> Result<(), Refused> {
        match self.peek().ok_or(Refused)? {
            b'"' => self.string().map(drop),
            b'{' => self.object(depth, |_, reader, depth| reader.skip(depth)),
            b'[' => self.array(depth, Self::skip),
            b't' => self.literal("true", ()),
            b'f' => self.literal("false", ()),
            b'n' => self.literal("null", ()),
            _ => self.number().map(drop),
        }
    }

    /// An object whose `{` is next, at nesting `depth`: each member's name is checked against the
    /// object's other names, then `member` reads its value (at `depth + 1`).
    fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(Cow<'a, str>, &mut Self, usize) -> Result<(), Refused>,
    ) -> Result<(), Refused> {
        let mut seen = SeenNames::default();
        self.items(depth, b'{', b'}', |reader, inner| {
            if reader.peek() != Some(b'"') {
                return Err(Refused);
            }
            let name = reader.string()?;
            if !seen.first(name.clone()) {
                return Err(Refused);
            }
            reader.whitespace();
            reader.expect(b':')?;
            reader.whitespace();
            member(name, reader, inner)
        })
    }

    /// An array whose `[` is next, at nesting `depth`; `item` reads each element.
    fn array(
        &mut self,
        depth: usize,
        item: impl FnMut(&mut Self, usize) -> Result<(), Refused>,
    ) -> Result<(), Refused> {
        self.items(depth, b'[', b']', item)
    }

    /// A container whose `open` is next, at nesting `depth`: `item` reads each of its
    /// comma-separated items (at `depth + 1`) until `close`.
    fn items(
        &mut self,
        depth: usize,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self, usize) -> Result<(), Refused>,
    ) -> Result<(), Refused> {
        let inner = nested(depth)?;
        self.expect(open)?;
        self.whitespace();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            item(self, inner)?;
            self.whitespace();
            match self.next()? {
                b',' => self.whitespace(),
                byte if byte == close => return Ok(()),
                _ => return Err(Refused),
            }
        }
    }

    fn literal<T>(&mut self, word: &str, value: T) -> Result<T, Refused> {
        let end = self.at + word.len();
        if self.text.as_bytes().get(self.at..end) == Some(word.as_bytes()) {
            self.at = end;
            Ok(value)
        } else {
            Err(Refused)
        }
    }

    /// A string whose `"` is next: borrowed when it has no escapes. Control characters are
    /// refused; escapes must be JSON's, and `\u` surrogates must pair.
    fn string(&mut self) -> Result<Cow<'a, str>, Refused> {
        self.expect(b'"')?;
        let start = self.at;
        self.at = self.plain_run_end()?;
        let plain = self.text.get(start..self.at).ok_or(Refused)?;
        if self.next()? == b'"' {
            return Ok(Cow::Borrowed(plain));
        }
        self.at -= 1;
        let mut owned = String::from(plain);
        loop {
            match self.next()? {
                b'"' => return Ok(Cow::Owned(owned)),
                b'\\' => owned.push(self.escape()?),
                byte if byte < 0x20 => return Err(Refused),
                _ => {
                    // Copy the run up to the next byte that needs a look, whole characters only.
                    let run = self.at - 1;
                    self.at = self.plain_run_end()?;
                    owned.push_str(self.text.get(run..self.at).ok_or(Refused)?);
                }
            }
        }
    }

    /// Where the run of a string's plain characters from here ends: at its closing `"`, a `\`
    /// or a control character (refused by the caller); `Err` when the text ends first.
    fn plain_run_end(&self) -> Result<usize, Refused> {
        let rest = self.text.as_bytes().get(self.at..).ok_or(Refused)?;
        let length = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .ok_or(Refused)?;
        Ok(self.at + length)
    }

    /// The character an escape stands for; its `\` was just read.
    fn escape(&mut self) -> Result<char, Refused> {
        Ok(match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        self.expect(b'\\')?;
                        self.expect(b'u')?;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(Refused);
                        }
                        0x1_0000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(Refused),
                    _ => unit,
                };
                char::from_u32(code).ok_or(Refused)?
            }
            _ => return Err(Refused),
        })
    }

    fn hex4(&mut self) -> Result<u32, Refused> {
        let mut unit = 0;
        for _ in 0..4 {
            let digit = char::from(self.next()?).to_digit(16).ok_or(Refused)?;
            unit = unit * 16 + digit;
        }
        Ok(unit)
    }

    /// A number: `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?, and finite.
    fn number(&mut self) -> Result<&'a str, Refused> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return Err(Refused),
        }
        let integer = self.at;
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digits_at_least_one()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digits_at_least_one()?;
        }
        let text = self.text.get(start..self.at).ok_or(Refused)?;
        // An integer of up to 18 digits is finite; anything else is read as a float, as
        // serde_json does, which refuses one that overflows.
        if self.at == integer && text.len() <= 18 {
            return Ok(text);
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(text),
            _ => Err(Refused),
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn digits_at_least_one(&mut self) -> Result<(), Refused> {
        let start = self.at;
        self.digits();
        if self.at == start {
            Err(Refused)
        } else {
            Ok(())
        }
    }
}

/// The nesting of a container's contents when the container is at `depth`: refused past
/// [`MAX_DEPTH`] (the outer object is level 1).
fn nested(depth: usize) -> Result<usize, Refused> {
    if depth >= MAX_DEPTH {
        Err(Refused)
    } else {
        Ok(depth + 1)
    }
}

/// The names already read in one object. Objects are small, so the first
/// [`SeenNames::LISTED`] names are searched in a list on the stack; a hostile object with
/// thousands of members moves on to a set, so checking for a repeat stays linear in the document.
#[derive(Default)]
struct SeenNames<'a> {
    listed: [Cow<'a, str>; SeenNames::LISTED],
    count: usize,
    /// Made only for an object with more names than the list holds.
    hashed: Option<HashSet<Cow<'a, str>>>,
}

impl<'a> SeenNames<'a> {
    const LISTED: usize = 16;

    /// Records `name` (borrowed from the document unless it had escapes, so a clone costs a
    /// pointer); `false` when the object already had it.
    fn first(&mut self, name: Cow<'a, str>) -> bool {
        if self.listed[..self.count].contains(&name) {
            return false;
        }
        if self.count < Self::LISTED {
            self.listed[self.count] = name;
            self.count += 1;
            return true;
        }
        self.hashed.get_or_insert_with(HashSet::new).insert(name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use crate::strict_json::parse_object;

    fn all(_: &str) -> bool {
        true
    }

    /// Documents each reader must judge alike: accepted by both or refused by both.
    fn corpus() -> Vec<String> {
        let many: String = (0..40).map(|i| format!("\"m{i}\":{i},")).collect();
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        let over = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let objects_at_limit = format!(
            "{}1{}",
            "{\"a\":".repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        let objects_over = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        let mut docs: Vec<String> = [
            r#"{}"#,
            r#" { "a" : 1 , "b" : [ true , false , null , "x" , 1.5 , -2 ] } "#,
            "{\"a\":\t\r\n1}",
            r#"{"a":{"b":{"c":[]}}}"#,
            r#"{"alg":"ES256","alg":"none"}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            r#"{"a":[{"x":1},{"y":1,"y":1}]}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"\u0061":1,"a":2}"#,
            r#"{"a\"b":1,"a\u0022b":2}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{"b":2}"#,
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{a:1}"#,
            r#"{'a':1}"#,
            "[1]",
            "\"s\"",
            "1",
            "null",
            "",
            " ",
            "{",
            r#"{"kty":"EC","d":"ab"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[,1]}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":tru}"#,
            r#"{"a":truex}"#,
            r#"{"a":nul}"#,
            r#"{"a":True}"#,
            r#"{"a":01}"#,
            r#"{"a":-01}"#,
            r#"{"a":-0}"#,
            r#"{"a":-0.0e+0}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":+1}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e+}"#,
            r#"{"a":1E-5}"#,
            r#"{"a":1e400}"#,
            r#"{"a":-1e400}"#,
            r#"{"a":1e-400}"#,
            r#"{"a":123456789012345678901234567890}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":9223372036854775808}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ud83dx"}"#,
            r#"{"a":"\ud83d\u0041"}"#,
            r#"{"a":"\ude00"}"#,
            r#"{"a":"\u00"}"#,
            r#"{"a":"\u00G0"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\/\b\f\n\r\t\\\""}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"nul\u{0}\"}",
            "{\"a\":\"del\u{7f} é ✓ 😀\"}",
            r#"{"a":"\u0000"}"#,
            r#"{"a":"unterminated}"#,
            "\u{feff}{}",
            "{}\u{0}",
        ]
        .iter()
        .map(|doc| (*doc).to_owned())
        .collect();
        docs.extend([
            format!("{{{many}\"m39\":0}}"),
            format!("{{{many}\"m0\":0}}"),
            format!("{{{many}\"last\":0}}"),
            format!("{{\"a\":{at_limit}}}"),
            format!("{{\"a\":{over}}}"),
            objects_at_limit,
            objects_over,
            format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000)),
        ]);
        docs
    }

    #[test]
    fn judges_every_document_as_the_strict_reader_does() {
        for doc in corpus() {
            let whole = parse_object(doc.as_bytes()).is_ok();
            for keep in [&all as &dyn Fn(&str) -> bool, &|_: &str| false] {
                assert_eq!(
                    read_members(doc.as_bytes(), keep).is_ok(),
                    whole,
                    "{}",
                    doc.chars().take(80).collect::<String>()
                );
            }
        }
        assert_eq!(read_members(b"{\"a\":\"\xff\"}", &all).err(), Some(Refused));
    }

    #[test]
    fn judges_mutated_documents_as_the_strict_reader_does() {
        // Random edits of a token's claims and of the corpus, from an alphabet of the bytes JSON
        // gives a meaning to (and a few it refuses), each judged by both readers: a fixed seed,
        // so a difference found is found again.
        let claims = r#"{"iss":"https://server.example.com","sub":"24400320","upn":"jdoe@example.com",
            "groups":["Echoer","Tester"],"realm_access":{"roles":["DPM_ADMIN"]},"aud":["a","b"],
            "exp":1700000900,"iat":1700000000,"n":-1.5e3,"t":true,"f":false,"z":null,"e":"\u00e9\n"}"#;
        let alphabet = b"{}[]:,\"\\/ \t\n0123456789-+.eEtrufalsn\x00\x1f\x7fu\xc3\xa9ab";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap()
        };
        let mut documents = corpus();
        documents.push(claims.to_owned());
        let (mut accepted, mut refused) = (0, 0);
        for original in documents.iter().filter(|doc| doc.len() < 2_000) {
            for _ in 0..300 {
                let mut bytes = original.clone().into_bytes();
                for _ in 0..1 + next(3) {
                    let at = next(bytes.len() + 1);
                    let byte = alphabet[next(alphabet.len())];
                    match next(3) {
                        0 => bytes.insert(at, byte),
                        1 if at < bytes.len() => drop(bytes.remove(at)),
                        _ if at < bytes.len() => bytes[at] = byte,
                        _ => bytes.push(byte),
                    }
                }
                let whole = parse_object(&bytes).is_ok();
                assert_eq!(
                    read_members(&bytes, &all).is_ok(),
                    whole,
                    "{}",
                    String::from_utf8_lossy(&bytes)
                );
                if whole {
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        assert!(accepted > 1_000 && refused > 1_000, "{accepted} {refused}");
    }

    #[test]
    fn kept_values_equal_the_strict_readers_and_borrow_plain_strings() {
        let doc =
            br#"{"s":"plain","e":"tab\tA\u00e9\ud83d\ude00","n":-12,"f":1.5e3,"b":true,"z":null,
            "a":["x",{"k":[1]}],"o":{"roles":["r1","r2"]},"dropped":{"deep":[1,2,3]}}"#;
        let kept = read_members(doc, &|name| name != "dropped").unwrap();
        let strict = parse_object(doc).unwrap();
        for (name, value) in kept.iter() {
            assert_eq!(to_value(value), strict[name.as_ref()], "{name}");
        }
        assert_eq!(kept.iter().count(), 8);
        assert!(!kept.contains("dropped"));
        assert!(matches!(
            kept.get("s"),
            Some(Json::String(Cow::Borrowed("plain")))
        ));
        assert_eq!(kept.get("e").and_then(Json::as_str), Some("tab\tAé😀"));
        assert_eq!(kept.get("n").and_then(Json::as_i64), Some(-12));
        assert_eq!(kept.get("f").and_then(Json::as_i64), None);
        let roles = kept.get("o").and_then(|o| o.get("roles"));
        assert_eq!(roles.map(Json::type_name), Some("an array"));
    }

    #[test]
    fn integers_read_as_serde_json_reads_them() {
        for (number, expected) in [
            ("0", Some(0)),
            ("1700000000", Some(1_700_000_000)),
            ("-5", Some(-5)),
            ("-0", None),
            ("1.0", None),
            ("1e3", None),
            ("9223372036854775807", Some(i64::MAX)),
            ("9223372036854775808", None),
        ] {
            let doc = format!("{{\"n\":{number}}}");
            let kept = read_members(doc.as_bytes(), &all).unwrap();
            let strict = parse_object(doc.as_bytes()).unwrap();
            assert_eq!(kept.get("n").and_then(Json::as_i64), expected, "{number}");
            assert_eq!(strict["n"].as_i64(), expected, "{number}");
        }
    }

    /// The serde_json value of a kept value, to compare with the strict reader's.
    fn to_value(json: &Json<'_>) -> serde_json::Value {
        match json {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => (*b).into(),
            Json::Number(text) => serde_json::from_str(text).unwrap(),
            Json::String(text) => text.as_ref().into(),
            Json::Array(items) => items.iter().map(to_value).collect(),
            Json::Object(members) => members
                .iter()
                .map(|(name, value)| (name.to_string(), to_value(value)))
                .collect(),
        }
    }
}
