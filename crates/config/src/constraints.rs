//! DPE's capabilities, `constraints.<key>=<value>`, parsed by the product's rule into
//! [`Capability`] values that carry their types, so that DPM gets a `[long]` as a number and not
//! as text.
//!
//! The rule, with the decisions the product's summary leaves open written down:
//!
//! - `<key>` is everything after `constraints.` as written (`constraints.com.ataccama.dpe.x` is
//!   capability `com.ataccama.dpe.x`; `constraints[a.b]` is `a.b`). Spellings that differ only by
//!   Spring's relaxed rules (`GPU`, `gpu`) are one capability, the first spelling naming it. An
//!   environment variable sets the capability a file or argument spells the same way, or, alone,
//!   the key its lower-cased words give (`CONSTRAINTS_GPU` is `gpu`).
//! - The value is a comma-separated list of elements. A value that starts with a type specifier,
//!   `[string]`, `[pattern]`, `[long]`, `[integer]`, `[double]`, `[float]` or `[boolean]`, types
//!   every element; without one, elements are strings. Any other `[…]` at the start is an error
//!   (write `[string]` first to advertise a string that starts with `[`); specifiers are lower case.
//! - `"` quotes (commas inside are text) and `\` escapes the next character, in and outside quotes.
//!   The properties file consumes one level of backslashes first (`\,` in the file is a bare `,`),
//!   so an escaped comma is written `\\,` in the file (`\,` in an environment variable or argument).
//!   Whitespace around an element is dropped unless quoted or escaped.
//! - One element is that capability ([`Capability::One`]); several are an
//!   [`Capability::Enumeration`]; an empty value (or a type specifier alone) is an empty
//!   enumeration: the capability is advertised with no values.
//! - An empty element (`a,,b`, a trailing comma) is an error; `""` is an empty string.
//! - `[long]` and `[integer]` are whole numbers in the range of Java's `long` and `int` (a leading
//!   `+` or `-` allowed); `[double]` and `[float]` are finite decimal numbers (`1.5`, `-2e3`, `.5`;
//!   not `NaN` or `Infinity`) in the range of Java's `double` and `float`; `[boolean]` is `true` or
//!   `false` in any case (Java would read anything else as `false`; here it is an error).
//! - `[pattern]` is a Java regular expression, kept as text with flags 0 and only checked to be
//!   non-empty: its dialect is Java's, which DPM compiles; checking it with another engine would
//!   refuse valid patterns and accept invalid ones.
//!
//! No nesting, no intervals, one type per property. Every element that does not parse is a
//! problem of its own naming the property, its line and the element.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Write as _};

use svcid_properties::Origin;

use crate::bind::{Binder, shown};
use crate::codes;
use crate::names;

/// One elementary capability value.
#[derive(Clone, Debug, PartialEq)]
pub enum CapabilityValue {
    /// `[string]`, the default: the text, quotes and escapes resolved.
    Value(String),
    /// `[pattern]`: a Java regular expression (flags 0), not empty.
    Pattern(String),
    /// `[long]`: a Java `long`.
    Long(i64),
    /// `[integer]`: a Java `int`.
    Int(i32),
    /// `[double]`: a finite Java `double`.
    Double(f64),
    /// `[float]`: a finite Java `float`.
    Float(f32),
    /// `[boolean]`.
    Boolean(bool),
}

/// What one `constraints.<key>` advertises.
#[derive(Clone, Debug, PartialEq)]
pub enum Capability {
    /// A value with one element.
    One(CapabilityValue),
    /// A value with zero or several elements, all of one type.
    Enumeration(Vec<CapabilityValue>),
}

/// The element type a value's type specifier names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityType {
    /// `[string]`, also the type of a value without a specifier.
    String,
    /// `[pattern]`.
    Pattern,
    /// `[long]`.
    Long,
    /// `[integer]`.
    Integer,
    /// `[double]`.
    Double,
    /// `[float]`.
    Float,
    /// `[boolean]`.
    Boolean,
}

impl CapabilityType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [CapabilityType; 7] = [
        Self::String,
        Self::Pattern,
        Self::Long,
        Self::Integer,
        Self::Double,
        Self::Float,
        Self::Boolean,
    ];

    /// The word between the brackets of the type specifier.
    pub fn specifier(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Pattern => "pattern",
            Self::Long => "long",
            Self::Integer => "integer",
            Self::Double => "double",
            Self::Float => "float",
            Self::Boolean => "boolean",
        }
    }

    /// The type a specifier word names (exactly, lower case).
    fn from_specifier(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.specifier() == word)
    }

    /// "a long", "an integer", … for messages.
    fn with_article(self) -> String {
        let word = self.specifier();
        if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
            format!("an {word}")
        } else {
            format!("a {word}")
        }
    }

    /// How to write a value of this type.
    fn fix(self) -> &'static str {
        match self {
            Self::String | Self::Pattern => {
                "write a value, or \"\" for an empty string; remove a stray comma"
            }
            Self::Long => {
                "use whole numbers from -9223372036854775808 to 9223372036854775807, e.g. [long]4,8"
            }
            Self::Integer => "use whole numbers from -2147483648 to 2147483647, e.g. [integer]4,8",
            Self::Double => "use finite decimal numbers within a Java double, e.g. [double]0.5,2e3",
            Self::Float => "use finite decimal numbers within a Java float, e.g. [float]0.5,2e3",
            Self::Boolean => "use true or false, e.g. [boolean]true",
        }
    }
}

impl CapabilityValue {
    /// The type of this value, whose specifier writes it.
    pub fn capability_type(&self) -> CapabilityType {
        match self {
            Self::Value(_) => CapabilityType::String,
            Self::Pattern(_) => CapabilityType::Pattern,
            Self::Long(_) => CapabilityType::Long,
            Self::Int(_) => CapabilityType::Integer,
            Self::Double(_) => CapabilityType::Double,
            Self::Float(_) => CapabilityType::Float,
            Self::Boolean(_) => CapabilityType::Boolean,
        }
    }
}

impl Capability {
    /// The elements, one or many.
    pub fn values(&self) -> &[CapabilityValue] {
        match self {
            Self::One(value) => std::slice::from_ref(value),
            Self::Enumeration(values) => values,
        }
    }
}

/// The property form: what `constraints.<key>=` would hold to give this capability (the type
/// specifier when the type is not string, or when the first string starts with `[`; elements
/// escaped so that [`parse_capability`] reads back the same capability). An enumeration mixing
/// types, which the property syntax cannot write, shows the first element's type.
impl Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.values();
        match values.first() {
            Some(CapabilityValue::Value(first)) if first.starts_with('[') => {
                f.write_str("[string]")?;
            }
            Some(first) if first.capability_type() != CapabilityType::String => {
                write!(f, "[{}]", first.capability_type().specifier())?;
            }
            _ => {}
        }
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                f.write_char(',')?;
            }
            match value {
                CapabilityValue::Value(text) | CapabilityValue::Pattern(text) => {
                    write_escaped(f, text)?;
                }
                CapabilityValue::Long(n) => write!(f, "{n}")?,
                CapabilityValue::Int(n) => write!(f, "{n}")?,
                // Debug is the shortest text that reads back the same number, exponent and all.
                CapabilityValue::Double(x) => write!(f, "{x:?}")?,
                CapabilityValue::Float(x) => write!(f, "{x:?}")?,
                CapabilityValue::Boolean(b) => write!(f, "{b}")?,
            }
        }
        Ok(())
    }
}

/// One element's text with `\`, `"`, `,` and whitespace at either end escaped; `""` when empty.
fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if text.is_empty() {
        return f.write_str("\"\"");
    }
    let last = text.chars().count() - 1;
    for (index, c) in text.chars().enumerate() {
        let at_an_end = index == 0 || index == last;
        if matches!(c, '\\' | '"' | ',') || (at_an_end && c.is_whitespace()) {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    Ok(())
}

/// Why a `constraints.<key>` value does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapabilityError {
    /// The value starts with `[…]` that is not a type specifier.
    UnknownType {
        /// The text between the brackets.
        specifier: String,
    },
    /// The value starts with `[` and has no `]`.
    UnclosedType,
    /// A `"` has no closing `"`.
    UnclosedQuote,
    /// The value ends with a `\` that escapes nothing.
    TrailingBackslash,
    /// An element with nothing in it (`a,,b`, a trailing comma).
    EmptyElement {
        /// 1-based position of the element.
        element: usize,
        /// The type it should have had.
        expected: CapabilityType,
    },
    /// An element that is not of the value's type, or out of its range.
    NotOfType {
        /// 1-based position of the element.
        element: usize,
        /// The element's text, escapes resolved.
        text: String,
        /// The value's type.
        expected: CapabilityType,
        /// Whether it is a number of the right kind, only too large (or too small).
        out_of_range: bool,
    },
}

impl CapabilityError {
    /// How to fix it.
    pub fn fix(&self) -> String {
        match self {
            Self::UnknownType { .. } | Self::UnclosedType => {
                let all: Vec<String> = CapabilityType::ALL
                    .iter()
                    .map(|t| format!("[{}]", t.specifier()))
                    .collect();
                format!(
                    "start the value with one of {}, or with [string] to advertise a string that \
                     itself starts with [",
                    all.join(", ")
                )
            }
            Self::UnclosedQuote => "close the quote; a literal \" is written \\\" (\\\\\" in the \
                                    properties file)"
                .to_owned(),
            Self::TrailingBackslash => "a backslash escapes the next character; a literal one is \
                                        written \\\\ (\\\\\\\\ in the properties file)"
                .to_owned(),
            Self::EmptyElement { expected, .. } | Self::NotOfType { expected, .. } => {
                expected.fix().to_owned()
            }
        }
    }
}

impl Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownType { specifier } => write!(
                f,
                "{} at the start is not a type specifier",
                shown(&format!("[{specifier}]"))
            ),
            Self::UnclosedType => f.write_str("the value starts with [ but has no closing ]"),
            Self::UnclosedQuote => f.write_str("a \" is not closed"),
            Self::TrailingBackslash => f.write_str("the value ends with a lone \\"),
            Self::EmptyElement { element, expected } => match expected {
                CapabilityType::String => write!(f, "element {element} is empty"),
                _ => write!(
                    f,
                    "element {element} is empty, not {}",
                    expected.with_article()
                ),
            },
            Self::NotOfType {
                element,
                text,
                expected,
                out_of_range,
            } => {
                let text = shown(text);
                if *out_of_range {
                    write!(
                        f,
                        "element {element} {text} is out of range for {}",
                        expected.with_article()
                    )
                } else {
                    write!(
                        f,
                        "element {element} {text} is not {}",
                        expected.with_article()
                    )
                }
            }
        }
    }
}

impl std::error::Error for CapabilityError {}

/// Parses one `constraints.<key>` value (as the properties source gives it) by
/// the rule in this module's documentation. Every element that does not parse is an error of its
/// own; a value that cannot be split at all (unknown type, open quote, lone `\`) is one error.
pub fn parse_capability(value: &str) -> Result<Capability, Vec<CapabilityError>> {
    // Leading blanks are the separator's (an environment variable or argument may keep them);
    // trailing ones belong to the last element, which drops them unless escaped.
    let value = value.trim_start();
    let (kind, rest) = split_type(value).map_err(|e| vec![e])?;
    let elements = split_elements(rest).map_err(|e| vec![e])?;
    let mut values = Vec::with_capacity(elements.len());
    let mut errors = Vec::new();
    for (index, element) in elements.into_iter().enumerate() {
        match typed(kind, index + 1, element) {
            Ok(value) => values.push(value),
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(match <[CapabilityValue; 1]>::try_from(values) {
        Ok([one]) => Capability::One(one),
        Err(values) => Capability::Enumeration(values),
    })
}

/// The type specifier at the start of `value`, if any, and the rest.
fn split_type(value: &str) -> Result<(CapabilityType, &str), CapabilityError> {
    let Some(inner) = value.strip_prefix('[') else {
        return Ok((CapabilityType::String, value));
    };
    let Some(end) = inner.find(']') else {
        return Err(CapabilityError::UnclosedType);
    };
    let word = &inner[..end];
    match CapabilityType::from_specifier(word) {
        Some(kind) => Ok((kind, &inner[end + 1..])),
        None => Err(CapabilityError::UnknownType {
            specifier: word.to_owned(),
        }),
    }
}

/// One element as written: its text (quotes and escapes resolved, unprotected whitespace at the
/// ends dropped) and whether it was quoted (so `""` is an empty string, not an empty element).
struct Element {
    text: String,
    quoted: bool,
}

/// Splits the list at commas outside quotes. An empty (or all-blank) list has no elements.
fn split_elements(list: &str) -> Result<Vec<Element>, CapabilityError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    // Characters with whether they are protected (quoted or escaped) from trimming.
    let mut current: Vec<(char, bool)> = Vec::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut elements = Vec::new();
    let mut chars = list.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => current.push((escaped, true)),
                None => return Err(CapabilityError::TrailingBackslash),
            },
            '"' => {
                in_quotes = !in_quotes;
                quoted = true;
            }
            ',' if !in_quotes => {
                elements.push(finish(std::mem::take(&mut current), quoted));
                quoted = false;
            }
            c => current.push((c, in_quotes)),
        }
    }
    if in_quotes {
        return Err(CapabilityError::UnclosedQuote);
    }
    elements.push(finish(current, quoted));
    Ok(elements)
}

fn finish(chars: Vec<(char, bool)>, quoted: bool) -> Element {
    let blank = |&(c, protected): &(char, bool)| !protected && c.is_whitespace();
    let start = chars.iter().position(|c| !blank(c)).unwrap_or(chars.len());
    let end = chars
        .iter()
        .rposition(|c| !blank(c))
        .map_or(start, |i| i + 1);
    Element {
        text: chars[start..end].iter().map(|(c, _)| c).collect(),
        quoted,
    }
}

/// One element as a value of `kind`.
fn typed(
    kind: CapabilityType,
    element: usize,
    Element { text, quoted }: Element,
) -> Result<CapabilityValue, CapabilityError> {
    if text.is_empty() && !(quoted && kind == CapabilityType::String) {
        return Err(CapabilityError::EmptyElement {
            element,
            expected: kind,
        });
    }
    let not_of_type = |out_of_range: bool| CapabilityError::NotOfType {
        element,
        text: text.clone(),
        expected: kind,
        out_of_range,
    };
    let int_error = |e: std::num::ParseIntError| {
        not_of_type(matches!(
            e.kind(),
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
        ))
    };
    // Rust also reads `inf` and `NaN`; a number that looks like one and is infinite is too large.
    let looks_numeric = text
        .trim_start_matches(['+', '-'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.');
    match kind {
        CapabilityType::String => Ok(CapabilityValue::Value(text)),
        CapabilityType::Pattern => Ok(CapabilityValue::Pattern(text)),
        CapabilityType::Long => text.parse().map(CapabilityValue::Long).map_err(int_error),
        CapabilityType::Integer => text.parse().map(CapabilityValue::Int).map_err(int_error),
        CapabilityType::Double => match text.parse::<f64>() {
            Ok(x) if x.is_finite() && looks_numeric => Ok(CapabilityValue::Double(x)),
            Ok(_) => Err(not_of_type(looks_numeric)),
            Err(_) => Err(not_of_type(false)),
        },
        CapabilityType::Float => match text.parse::<f32>() {
            Ok(x) if x.is_finite() && looks_numeric => Ok(CapabilityValue::Float(x)),
            Ok(_) => Err(not_of_type(looks_numeric)),
            Err(_) => Err(not_of_type(false)),
        },
        CapabilityType::Boolean => {
            if text.eq_ignore_ascii_case("true") {
                Ok(CapabilityValue::Boolean(true))
            } else if text.eq_ignore_ascii_case("false") {
                Ok(CapabilityValue::Boolean(false))
            } else {
                Err(not_of_type(false))
            }
        }
    }
}

/// Binds every `constraints.<key>`; a value that does not parse is an error per problem found,
/// naming the property and its line, and the capability is left out.
pub(crate) fn bind(b: &mut Binder<'_>) -> BTreeMap<String, Capability> {
    let mut capabilities = BTreeMap::new();
    let mut keys = Vec::new();
    collect_keys(b, names::CONSTRAINTS, &mut Vec::new(), &mut keys);
    for key in keys {
        let name = property_name(&key);
        let Some(value) = b.props.get(&name) else {
            continue;
        };
        match parse_capability(&value.raw) {
            Ok(capability) => {
                capabilities.insert(key.join("."), capability);
            }
            Err(errors) => {
                for error in errors {
                    let code = match error {
                        CapabilityError::UnknownType { .. } | CapabilityError::UnclosedType => {
                            codes::CONSTRAINT_UNKNOWN_TYPE
                        }
                        CapabilityError::NotOfType { .. } => codes::CONSTRAINT_NOT_OF_TYPE,
                        _ => codes::CONSTRAINT_MALFORMED,
                    };
                    b.error_at(
                        code,
                        value,
                        format!("{}: {error}", shown(value.raw.trim())),
                        error.fix(),
                    );
                }
            }
        }
    }
    if let Some(value) = b.props.get(names::CONSTRAINTS)
        && !matches!(value.origin, Origin::Env { .. })
    {
        b.warn_at(
            codes::CONSTRAINT_IGNORED,
            value,
            "a constraint needs a capability name; this value is ignored",
            "write constraints.<name>=<value>, e.g. constraints.gpu=[boolean]true",
        );
    }
    capabilities
}

/// Every key under `constraints` that holds a value, as its written segments, in the order first
/// seen. Walks the map keys level by level, so dotted keys, bracketed keys and environment
/// variables are found the way [`svcid_properties::PropertySet::get`] finds them.
fn collect_keys(b: &Binder<'_>, prefix: &str, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for segment in b.props.map_keys(prefix) {
        if segment.is_empty() {
            continue;
        }
        path.push(segment);
        let name = property_name(path);
        if b.props.get(&name).is_some() {
            out.push(path.clone());
        }
        collect_keys(b, &name, path, out);
        path.pop();
    }
}

/// `constraints.a.b` for the segments `a`, `b`; a segment holding a dot (`constraints[a.b]`)
/// stays whole in brackets.
fn property_name(path: &[String]) -> String {
    let mut name = names::CONSTRAINTS.to_owned();
    for segment in path {
        if segment.contains('.') {
            let _ = write!(name, "[{segment}]");
        } else {
            let _ = write!(name, ".{segment}");
        }
    }
    name
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use CapabilityValue::{Boolean, Double, Float, Int, Long, Pattern, Value};

    fn ok(value: &str) -> Capability {
        parse_capability(value).unwrap_or_else(|e| panic!("{value:?}: {e:?}"))
    }

    fn one(value: &str) -> CapabilityValue {
        match ok(value) {
            Capability::One(v) => v,
            other => panic!("{value:?} gave {other:?}"),
        }
    }

    fn many(value: &str) -> Vec<CapabilityValue> {
        match ok(value) {
            Capability::Enumeration(v) => v,
            other => panic!("{value:?} gave {other:?}"),
        }
    }

    fn errors(value: &str) -> Vec<String> {
        match parse_capability(value) {
            Ok(c) => panic!("{value:?} parsed as {c:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn text(s: &str) -> CapabilityValue {
        Value(s.to_owned())
    }

    #[test]
    fn strings_by_default() {
        assert_eq!(one("spark"), text("spark"));
        assert_eq!(one("3.5"), text("3.5"));
        assert_eq!(one("true"), text("true"), "untyped true is a string");
        assert_eq!(one("  padded  "), text("padded"));
        assert_eq!(one("with inner space"), text("with inner space"));
        assert_eq!(one("[string]x"), text("x"));
    }

    #[test]
    fn each_type_specifier() {
        assert_eq!(
            one("[pattern]jdbc:oracle:.*"),
            Pattern("jdbc:oracle:.*".into())
        );
        assert_eq!(one("[long]-9223372036854775808"), Long(i64::MIN));
        assert_eq!(one("[long]+42"), Long(42));
        assert_eq!(one("[integer]2147483647"), Int(i32::MAX));
        assert_eq!(one("[double]2e3"), Double(2000.0));
        assert_eq!(one("[double].5"), Double(0.5));
        assert_eq!(one("[float]-1.25"), Float(-1.25));
        assert_eq!(one("[boolean]true"), Boolean(true));
        assert_eq!(one("[boolean]FALSE"), Boolean(false));
        assert_eq!(one("[boolean] True "), Boolean(true));
    }

    #[test]
    fn several_elements_are_an_enumeration_of_one_type() {
        assert_eq!(many("a,b , c"), [text("a"), text("b"), text("c")]);
        assert_eq!(many("[long]4, 8,16"), [Long(4), Long(8), Long(16)]);
        assert_eq!(many("[boolean]true,false"), [Boolean(true), Boolean(false)]);
    }

    #[test]
    fn the_products_jdbc_example() {
        assert_eq!(
            ok("[pattern]jdbc:oracle:.*,jdbc:postgresql:.*"),
            Capability::Enumeration(vec![
                Pattern("jdbc:oracle:.*".into()),
                Pattern("jdbc:postgresql:.*".into()),
            ])
        );
    }

    #[test]
    fn an_empty_value_is_an_empty_enumeration() {
        assert_eq!(ok(""), Capability::Enumeration(Vec::new()));
        assert_eq!(ok("   "), Capability::Enumeration(Vec::new()));
        assert_eq!(ok("[long]"), Capability::Enumeration(Vec::new()));
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(one("\"a,b\""), text("a,b"));
        assert_eq!(one("a\\,b"), text("a,b"));
        assert_eq!(many("\"a,b\",c"), [text("a,b"), text("c")]);
        assert_eq!(one("\" kept \""), text(" kept "));
        assert_eq!(one("\\ kept\\ "), text(" kept "));
        assert_eq!(one("say \\\"hi\\\""), text("say \"hi\""));
        assert_eq!(one("\"say \\\"hi\\\"\""), text("say \"hi\""));
        assert_eq!(one("back\\\\slash"), text("back\\slash"));
        assert_eq!(
            one("a\"b,c\"d"),
            text("ab,cd"),
            "quotes may open mid-element"
        );
        assert_eq!(one("\"\""), text(""), "\"\" is an empty string");
        assert_eq!(many("a,\"\""), [text("a"), text("")]);
        assert_eq!(one("[pattern]\\\\d+"), Pattern("\\d+".into()));
    }

    #[test]
    fn a_first_string_starting_with_a_bracket_needs_string() {
        assert_eq!(one("[string][x]"), text("[x]"));
        assert_eq!(many("[string][a],[b]"), [text("[a]"), text("[b]")]);
        assert_eq!(one("\"[x]\""), text("[x]"), "quoted, it is no specifier");
        assert_eq!(one("\\[x]"), text("[x]"), "escaped, it is no specifier");
        assert_eq!(
            many("a,[b]"),
            [text("a"), text("[b]")],
            "only the start counts"
        );
        assert_eq!(
            errors("[x]"),
            ["\"[x]\" at the start is not a type specifier"]
        );
        assert_eq!(
            errors("[Long]4"),
            ["\"[Long]\" at the start is not a type specifier"],
            "specifiers are lower case"
        );
        assert_eq!(
            errors("[long"),
            ["the value starts with [ but has no closing ]"]
        );
        let fix = parse_capability("[xyz]a").unwrap_err()[0].fix();
        assert!(
            fix.contains("[string]") && fix.contains("[boolean]"),
            "{fix}"
        );
    }

    #[test]
    fn bad_numbers_name_the_element() {
        assert_eq!(errors("[long]4,x"), ["element 2 \"x\" is not a long"]);
        assert_eq!(
            errors("[long]9223372036854775808"),
            ["element 1 \"9223372036854775808\" is out of range for a long"]
        );
        assert_eq!(
            errors("[integer]1,2147483648,-2147483649,1.5"),
            [
                "element 2 \"2147483648\" is out of range for an integer",
                "element 3 \"-2147483649\" is out of range for an integer",
                "element 4 \"1.5\" is not an integer",
            ]
        );
        assert_eq!(errors("[long]1 000"), ["element 1 \"1 000\" is not a long"]);
        assert_eq!(
            errors("[double]1e309"),
            ["element 1 \"1e309\" is out of range for a double"]
        );
        assert_eq!(
            errors("[float]1e39"),
            ["element 1 \"1e39\" is out of range for a float"]
        );
        for word in ["NaN", "inf", "-Infinity", "x", "1,5d"] {
            let shown = errors(&format!("[double]{word}"));
            assert!(shown[0].contains("is not a double"), "{word}: {shown:?}");
        }
        assert_eq!(
            errors("[boolean]yes"),
            ["element 1 \"yes\" is not a boolean"]
        );
    }

    #[test]
    fn malformed_values() {
        assert_eq!(errors("a,,b"), ["element 2 is empty"]);
        assert_eq!(errors("a,"), ["element 2 is empty"]);
        assert_eq!(errors("[long]1, ,3"), ["element 2 is empty, not a long"]);
        assert_eq!(
            errors("[pattern]\"\""),
            ["element 1 is empty, not a pattern"]
        );
        assert_eq!(errors("\"open"), ["a \" is not closed"]);
        assert_eq!(errors("a\\"), ["the value ends with a lone \\"]);
    }

    #[test]
    fn long_elements_are_not_echoed() {
        let long = "x".repeat(100);
        let shown = errors(&format!("[long]{long}"));
        assert!(!shown[0].contains(&long), "{shown:?}");
    }

    #[test]
    fn the_property_form_reads_back_the_same_capability() {
        for value in [
            "spark",
            "a,b,c",
            "[string][x],y",
            "[pattern]jdbc:oracle:.*,jdbc:postgresql:.*",
            "[pattern]\\\\d+",
            "[long]-9223372036854775808,0",
            "[integer]7",
            "[double]1e300,-0.5,0.1",
            "[float]3.4028235e38,1.1",
            "[boolean]true,false",
            "\"a,b\",\" c \",\"\",q\\\"uote,back\\\\slash",
            "",
        ] {
            let capability = ok(value);
            let form = capability.to_string();
            assert_eq!(ok(&form), capability, "{value:?} shown as {form:?}");
        }
        assert_eq!(ok("[long] 4 , 8").to_string(), "[long]4,8");
        assert_eq!(ok("[boolean]TRUE").to_string(), "[boolean]true");
        assert_eq!(ok("\"a,b\"").to_string(), "a\\,b");
        assert_eq!(ok("[string][x]").to_string(), "[string][x]");
        assert_eq!(ok("[double]2").to_string(), "[double]2.0");
    }
}
