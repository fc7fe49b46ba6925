//! A strict JSON reader for token headers, token claims and JWK documents.
//!
//! serde_json alone keeps the last of two equal member names and accepts 128 levels of nesting;
//! both have let attackers smuggle a second `alg` past one parser while another reads the first.
//! This module accepts only valid UTF-8, refuses a repeated member name in any object at any depth
//! (after unescaping, so `"a"` and `"\u0061"` collide), stops at [`MAX_DEPTH`] levels, refuses
//! trailing data, and returns the document only when it is an object. It knows nothing about JWTs or
//! JWKs: callers interpret the members. A person's token is read by its own scanner under the same
//! rules ([`json_members`](crate::json_members)), which builds only the members the rules read.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::printable::{EXCERPT_CHARS, excerpt};

/// The deepest nesting of arrays and objects accepted (the outer object is level 1). Tokens and keys
/// are flat; 32 leaves room for any honest `usr` claim while bounding the work on hostile input.
pub const MAX_DEPTH: usize = 32;

/// Why a document was refused. Messages name positions and member names, never values, so they are
/// safe to show even when the document holds a private key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StrictJsonError {
    /// The bytes are not UTF-8; JSON text must be.
    #[error("not valid UTF-8 (at byte {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte, to help find it.
        offset: usize,
    },
    /// Not JSON at all, or JSON followed by more text.
    #[error("{category} at line {line} column {column}")]
    Syntax {
        /// What kind of syntax problem serde_json found (e.g. "expected value").
        category: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem, so people can find it in a one-line property value.
        column: usize,
        /// The text stopped before the JSON did (an object or string left open): it was cut off.
        ends_early: bool,
    },
    /// The same member name twice in one object.
    #[error("member \"{member}\" appears twice in one object")]
    DuplicateMember {
        /// The repeated name (shortened and escaped).
        member: String,
    },
    /// Arrays/objects nested deeper than 32 levels (the reader's `MAX_DEPTH`).
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Valid JSON whose top level is not an object.
    #[error("not a JSON object")]
    NotAnObject,
}

impl StrictJsonError {
    /// The 1-based column of a syntax error, when there is one.
    pub fn column(&self) -> Option<usize> {
        match self {
            Self::Syntax { column, .. } => Some(*column),
            _ => None,
        }
    }

    /// Whether the text ended in the middle of the JSON (the usual sign of a value cut short).
    pub fn ends_early(&self) -> bool {
        matches!(
            self,
            Self::Syntax {
                ends_early: true,
                ..
            }
        )
    }
}

/// Parses `bytes` as one strict JSON object.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let text = std::str::from_utf8(bytes).map_err(|e| StrictJsonError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    // The visitor can only report through serde's stringly error; it leaves the precise reason here.
    let refusal = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = StrictSeed {
        depth: 0,
        refusal: &refusal,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(StrictJsonError::NotAnObject),
        Err(error) => Err(refusal.take().unwrap_or_else(|| syntax(&error))),
    }
}

/// Our own description of a serde_json error: its message without the position suffix (which we
/// carry separately), never any input text.
fn syntax(error: &serde_json::Error) -> StrictJsonError {
    let message = error.to_string();
    let category = match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    };
    StrictJsonError::Syntax {
        category,
        line: error.line(),
        column: error.column(),
        ends_early: error.is_eof(),
    }
}

/// Deserializes one JSON value at a known depth, refusing duplicates and excessive nesting.
#[derive(Clone, Copy)]
struct StrictSeed<'r> {
    /// Nesting level of the value being read (0 for the document itself).
    depth: usize,
    /// Where a refusal that serde cannot express is recorded.
    refusal: &'r RefCell<Option<StrictJsonError>>,
}

impl<'r> StrictSeed<'r> {
    fn nested(self) -> Result<StrictSeed<'r>, StrictJsonError> {
        if self.depth >= MAX_DEPTH {
            return Err(StrictJsonError::TooDeep);
        }
        Ok(StrictSeed {
            depth: self.depth + 1,
            refusal: self.refusal,
        })
    }

    fn refuse<E: de::Error>(self, reason: StrictJsonError) -> E {
        let message = reason.to_string();
        *self.refusal.borrow_mut() = Some(reason);
        E::custom(message)
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON text cannot spell NaN or infinity, so this is always Some; Null is a safe fallback.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested().map_err(|r| self.refuse(r))?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let inner = self.nested().map_err(|r| self.refuse(r))?;
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            if map.contains_key(&name) {
                return Err(self.refuse(duplicate(&name)));
            }
            let value = access.next_value_seed(inner)?;
            map.insert(name, value);
        }
        Ok(Value::Object(map))
    }
}

/// The refusal of a member name read twice.
fn duplicate(name: &str) -> StrictJsonError {
    StrictJsonError::DuplicateMember {
        member: excerpt(name, EXCERPT_CHARS),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn accepts_a_plain_object() {
        let map = parse_object(br#"{"a":1,"b":[true,null,"x",1.5,-2],"c":{"d":{}}}"#).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map["b"][4], Value::from(-2));
    }

    #[test]
    fn refuses_duplicates_at_any_depth_and_after_unescaping() {
        for doc in [
            r#"{"alg":"ES256","alg":"none"}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            r#"{"a":[{"x":1},{"y":1,"y":1}]}"#,
            r#"{"a":1,"\u0061":2}"#,
        ] {
            assert!(
                matches!(
                    parse_object(doc.as_bytes()),
                    Err(StrictJsonError::DuplicateMember { .. })
                ),
                "{doc}"
            );
        }
    }

    #[test]
    fn refuses_deep_nesting_but_accepts_the_limit() {
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse_object(format!("{{\"a\":{at_limit}}}").as_bytes()).is_ok());
        let over = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(
            parse_object(format!("{{\"a\":{over}}}").as_bytes()),
            Err(StrictJsonError::TooDeep)
        );
        let very_deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse_object(format!("{{\"a\":{very_deep}}}").as_bytes()),
            Err(StrictJsonError::TooDeep)
        );
    }

    #[test]
    fn refuses_invalid_utf8_trailing_data_and_non_objects() {
        assert_eq!(
            parse_object(b"{\"a\":\"\xff\"}"),
            Err(StrictJsonError::InvalidUtf8 { offset: 6 })
        );
        assert!(matches!(
            parse_object(br#"{"a":1} x"#),
            Err(StrictJsonError::Syntax { .. })
        ));
        assert!(matches!(
            parse_object(br#"{"a":1}{"b":2}"#),
            Err(StrictJsonError::Syntax { .. })
        ));
        assert_eq!(parse_object(b"[1]"), Err(StrictJsonError::NotAnObject));
        assert_eq!(parse_object(b"\"s\""), Err(StrictJsonError::NotAnObject));
    }

    #[test]
    fn text_cut_off_in_the_middle_ends_early() {
        for cut in [&br#"{"kty":"EC","d":"ab"#[..], br#"{"kty":"#, b"{"] {
            assert!(parse_object(cut).unwrap_err().ends_early(), "{cut:?}");
        }
        assert!(!parse_object(br#"{kty":"EC"}"#).unwrap_err().ends_early());
        assert!(!parse_object(br#"{"a":1} x"#).unwrap_err().ends_early());
    }

    #[test]
    fn syntax_errors_carry_a_column_and_no_input() {
        let error = parse_object(br#"{kty":"EC","secret":"hunter2"}"#).unwrap_err();
        assert_eq!(error.column(), Some(2));
        assert!(!error.to_string().contains("hunter2"));
        assert!(!error.to_string().contains("kty"));
    }
}
