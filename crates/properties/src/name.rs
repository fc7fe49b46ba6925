//! Spring Boot's relaxed property names: how two spellings are found to name the same property.
//!
//! A name is a list of elements: dotted segments (`ataccama`, `is-revoked`) and bracketed ones
//! (`[0]`, `[com.example]`). Segments compare in *uniform form* (lower-case, `-` and `_` removed),
//! so `is-revoked`, `isRevoked`, `is_revoked` and `ISREVOKED` are equal. A purely numeric element,
//! `roles[0]` or `roles.0`, is a list index. A bracketed non-numeric element is a map key kept
//! exactly, as in Spring (`logging.level[com.Foo]`).
//!
//! Environment variables cannot say where one dashed segment ends (`TOKEN_EXPIRATION` is
//! `token-expiration` or `token.expiration`), so they are kept as `_`-separated words and matched
//! against a name by concatenation: consecutive words must spell one element's uniform form, and
//! a numeric word is an index. This accepts both Spring's documented rule (dashes removed:
//! `…_TOKENEXPIRATION`) and the one svcid documents (dashes as `_`: `…_TOKEN_EXPIRATION`).
//! Nothing here knows which properties exist or where values come from.

use std::borrow::Cow;

/// The comparable form of one name element.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ElementKey {
    /// A dotted segment in uniform form.
    Uniform(String),
    /// A list index, as decimal digits without leading zeros (so `[00]` is `[0]`, and no
    /// integer overflow is possible however long the digits are).
    Index(String),
    /// A bracketed map key, compared exactly (Spring keeps bracketed keys as written).
    Exact(String),
}

impl ElementKey {
    /// The string environment words must spell to match this element, `None` for an index.
    fn env_spelling(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Uniform(u) => Some(Cow::Borrowed(u)),
            Self::Exact(e) => Some(Cow::Owned(uniform(&e.replace('.', "")))),
            Self::Index(_) => None,
        }
    }
}

/// One element of a written name: its spelling (for `map_keys`) and its comparable form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Element {
    /// The element as written, without brackets.
    pub written: String,
    /// How it compares.
    pub key: ElementKey,
}

/// Uniform form of one name segment: lower-case, `-` and `_` removed. Exposed so that callers can
/// compare and suggest names the way lookups do.
pub fn uniform(segment: &str) -> String {
    if segment.is_ascii() {
        // Property names are ASCII in practice: one allocation, no per-character case tables.
        return segment
            .bytes()
            .filter(|b| !matches!(b, b'-' | b'_'))
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect();
    }
    segment
        .chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Digits without leading zeros, or `None` if `text` is not a non-empty run of ASCII digits.
fn index_form(text: &str) -> Option<String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = text.trim_start_matches('0');
    Some(if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// The element of a written name at `depth` (0 is the first), as written (without brackets) and
/// as it compares; `None` if the name has fewer elements. Lenient as [`name_keys`] is: empty
/// segments are dropped and an unclosed `[` runs to the end of the name.
pub(crate) fn element_at(name: &str, depth: usize) -> Option<Element> {
    let mut at = 0;
    let mut found = None;
    split_name(name, |written, key| {
        if at == depth {
            found = Some(Element {
                written: written.to_owned(),
                key,
            });
        }
        at += 1;
    });
    found
}

/// The comparable form of a written name, element by element.
pub(crate) fn name_keys(name: &str) -> Vec<ElementKey> {
    let mut out = Vec::with_capacity(element_count(name));
    split_name(name, |_, key| out.push(key));
    out
}

/// At most how many elements `name` has (room to allocate once).
fn element_count(name: &str) -> usize {
    name.bytes().filter(|b| matches!(b, b'.' | b'[')).count() + 1
}

/// Hands each element of `name` to `element`, as written (without brackets) and as it compares.
fn split_name(name: &str, mut element: impl FnMut(&str, ElementKey)) {
    let segment = |text: &str, element: &mut dyn FnMut(&str, ElementKey)| {
        if !text.is_empty() {
            let key = index_form(text)
                .map_or_else(|| ElementKey::Uniform(uniform(text)), ElementKey::Index);
            element(text, key);
        }
    };
    let mut rest = name;
    while let Some(at) = rest.find(['.', '[']) {
        segment(&rest[..at], &mut element);
        let after = &rest[at + 1..];
        if rest.as_bytes()[at] == b'.' {
            rest = after;
            continue;
        }
        let (inner, tail) = after.split_once(']').unwrap_or((after, ""));
        let key = index_form(inner.trim())
            .map_or_else(|| ElementKey::Exact(inner.to_owned()), ElementKey::Index);
        element(inner, key);
        rest = tail;
    }
    segment(rest, &mut element);
}

/// One `_`-separated word of an environment variable name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum EnvWord {
    /// A word in uniform form.
    Text(String),
    /// A numeric word: a list index, digits without leading zeros.
    Index(String),
}

impl EnvWord {
    /// The word as a property-name element would be spelled (lower-case, `[n]` for an index).
    pub(crate) fn written(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Index(n) => n.clone(),
        }
    }

    /// The element key this word would be on its own (for de-duplicating map keys).
    pub(crate) fn key(&self) -> ElementKey {
        match self {
            Self::Text(t) => ElementKey::Uniform(t.clone()),
            Self::Index(n) => ElementKey::Index(n.clone()),
        }
    }
}

/// Spring's reading of an environment variable name: lower-cased, split at `_` (empty words from
/// `__` or a trailing `_` dropped), numeric words are list indices. `FOO_ROLES_0_` is `foo.roles[0]`.
pub(crate) fn env_words(var: &str) -> Vec<EnvWord> {
    var.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| index_form(w).map_or_else(|| EnvWord::Text(uniform(w)), EnvWord::Index))
        .collect()
}

/// Matches environment words against the elements of `prefix`, returning the words left over, or
/// `None` if the words do not start with that name.
pub(crate) fn env_strip_prefix<'w>(
    words: &'w [EnvWord],
    prefix: &[ElementKey],
) -> Option<&'w [EnvWord]> {
    let mut rest = words;
    for element in prefix {
        match element.env_spelling() {
            None => match (rest.first(), element) {
                (Some(EnvWord::Index(n)), ElementKey::Index(m)) if n == m => {
                    rest = rest.get(1..)?
                }
                _ => return None,
            },
            Some(target) => {
                if target.is_empty() {
                    return None;
                }
                // Words until they spell the element: each must continue the spelling where the
                // last one stopped, and the first length that matches is the only one. Nothing is
                // allocated: every lookup tries every environment variable this way.
                let mut unspelled: &str = &target;
                while !unspelled.is_empty() {
                    let (EnvWord::Text(word), tail) = rest.split_first()? else {
                        return None;
                    };
                    unspelled = unspelled.strip_prefix(word.as_str())?;
                    rest = tail;
                }
            }
        }
    }
    Some(rest)
}

/// Whether the environment words name exactly the property `name`.
pub(crate) fn env_matches(words: &[EnvWord], name: &[ElementKey]) -> bool {
    env_strip_prefix(words, name).is_some_and(<[EnvWord]>::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element of `name`.
    fn parse_name(name: &str) -> Vec<Element> {
        (0..).map_while(|depth| element_at(name, depth)).collect()
    }

    fn same(a: &str, b: &str) -> bool {
        name_keys(a) == name_keys(b)
    }

    #[test]
    fn uniform_form_ignores_case_dashes_and_underscores() {
        for spelling in [
            "is-revoked",
            "isRevoked",
            "is_revoked",
            "ISREVOKED",
            "Is-Revoked",
        ] {
            assert_eq!(uniform(spelling), "isrevoked", "{spelling}");
        }
    }

    #[test]
    fn relaxed_names_compare_per_segment() {
        assert!(same(
            "a.jwt-keys.key1.is-revoked",
            "A.jwtKeys.KEY1.is_revoked"
        ));
        assert!(!same("a.b.c", "a.bc"), "segment boundaries matter in files");
        assert!(same("roles[0]", "roles.0"));
        assert!(same("roles[0]", "roles[00]"));
        assert!(!same("roles[0]", "roles[1]"));
        assert!(same("logging.level[com.Foo]", "logging.level[com.Foo]"));
        assert!(
            !same("logging.level[com.Foo]", "logging.level[com.foo]"),
            "brackets are exact"
        );
    }

    #[test]
    fn parsing_is_lenient() {
        assert_eq!(name_keys("..a..b."), name_keys("a.b"));
        assert_eq!(parse_name("a[unclosed").len(), 2);
        assert!(parse_name("").is_empty());
        assert_eq!(parse_name("x[1].y")[1].written, "1");
        let written = |name: &str| -> Vec<String> {
            parse_name(name).into_iter().map(|e| e.written).collect()
        };
        assert_eq!(written("a[0]b.c"), ["a", "0", "b", "c"]);
        assert_eq!(written("m[x.y]]z"), ["m", "x.y", "]z"]);
        assert_eq!(written("a[ 7 ]"), ["a", " 7 "]);
        assert_eq!(
            parse_name("a[ 7 ]")[1].key,
            ElementKey::Index("7".to_owned())
        );
        assert_eq!(written("[]x["), ["", "x", ""]);
        assert_eq!(uniform("Is-Revoked_X"), "isrevokedx");
        assert_eq!(uniform("Größe-A"), "größea");
    }

    #[test]
    fn env_words_follow_spring() {
        use EnvWord::*;
        assert_eq!(
            env_words("FOO_ROLES_0_"),
            vec![Text("foo".into()), Text("roles".into()), Index("0".into())]
        );
        assert_eq!(env_words("A__B"), vec![Text("a".into()), Text("b".into())]);
    }

    #[test]
    fn env_matches_dashed_segments_either_way() {
        let name = name_keys("ataccama.authentication.internal.jwt.generator.token-expiration");
        for var in [
            "ATACCAMA_AUTHENTICATION_INTERNAL_JWT_GENERATOR_TOKENEXPIRATION",
            "ATACCAMA_AUTHENTICATION_INTERNAL_JWT_GENERATOR_TOKEN_EXPIRATION",
        ] {
            assert!(env_matches(&env_words(var), &name), "{var}");
        }
        assert!(!env_matches(
            &env_words("ATACCAMA_AUTHENTICATION_INTERNAL_JWT_GENERATOR"),
            &name
        ));
        assert!(!env_matches(
            &env_words("ATACCAMA_AUTHENTICATION_INTERNAL_JWT_GENERATOR_TOKEN"),
            &name
        ));
        assert!(!env_matches(
            &env_words("ATACCAMA_AUTHENTICATION_INTERNAL_JWT_GENERATOR_TOKEN_EXPIRATIONS"),
            &name
        ));
    }

    #[test]
    fn env_indices_must_be_their_own_word() {
        let roles0 = name_keys("foo.roles[0]");
        assert!(env_matches(&env_words("FOO_ROLES_0_"), &roles0));
        assert!(env_matches(&env_words("FOO_ROLES_0"), &roles0));
        assert!(!env_matches(&env_words("FOO_ROLES0"), &roles0));
        assert!(!env_matches(&env_words("FOO_ROLES_1"), &roles0));
    }

    #[test]
    fn env_prefix_leaves_the_rest() {
        let prefix = name_keys("ataccama.one.platform.deployments");
        let words = env_words("ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPMDEV_MODULE");
        let rest = env_strip_prefix(&words, &prefix);
        assert_eq!(rest.map(<[EnvWord]>::len), Some(2));
        assert!(env_strip_prefix(&env_words("PATH"), &prefix).is_none());
    }
}
