//! "Did you mean" for misspelt property names (`is-revokd` → `is-revoked`).
//!
//! Names are compared in uniform form (see [`crate::uniform`]), so spelling styles never count as
//! typos, by optimal-string-alignment distance (a swap of two neighbours is one edit). The distance
//! is a dozen lines, written here rather than adding a crate to the shared workspace table for it.
//! Whether a name is unknown is for the caller to decide.

use crate::uniform;

/// The most edits a suggestion may be away, by length of the misspelt name: short names need a
/// close match or every suggestion is noise.
fn edit_budget(len: usize) -> usize {
    match len {
        0..=2 => 0,
        3..=5 => 1,
        6..=11 => 2,
        _ => 3,
    }
}

/// Optimal string alignment distance between two strings, by characters.
fn distance(a: &[char], b: &[char]) -> usize {
    // Three rolling rows: two back for transpositions, one back, current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The best suggestion among `candidates` for a misspelt `name`, or `None` when nothing is close.
/// Works on single segments (`is-revokd`) and on dotted names alike; the first of equally close
/// candidates wins.
pub fn did_you_mean<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let target: Vec<char> = uniform(name).chars().collect();
    let budget = edit_budget(target.len());
    candidates
        .iter()
        .filter_map(|&candidate| {
            let spelled: Vec<char> = uniform(candidate).chars().collect();
            // Each edit changes the length by at most one, so a length gap over the budget can
            // never be within it: skip the quadratic distance (a long pasted value would make
            // every unknown name cost milliseconds).
            (target.len().abs_diff(spelled.len()) <= budget)
                .then(|| (distance(&target, &spelled), candidate))
        })
        .filter(|&(d, _)| d <= budget)
        .min_by_key(|&(d, _)| d)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &[
        "module",
        "environment",
        "uri",
        "fingerprint",
        "content",
        "is-revoked",
        "roles",
    ];

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance(&chars(""), &chars("abc")), 3);
        assert_eq!(distance(&chars("kitten"), &chars("sitting")), 3);
        assert_eq!(distance(&chars("ab"), &chars("ba")), 1);
        assert_eq!(distance(&chars("same"), &chars("same")), 0);
    }

    #[test]
    fn suggests_the_close_field() {
        assert_eq!(did_you_mean("is-revokd", FIELDS), Some("is-revoked"));
        assert_eq!(did_you_mean("isRevokd", FIELDS), Some("is-revoked"));
        assert_eq!(did_you_mean("fingerprnt", FIELDS), Some("fingerprint"));
        assert_eq!(did_you_mean("modlue", FIELDS), Some("module"));
        assert_eq!(did_you_mean("rolse", FIELDS), Some("roles"));
        assert_eq!(did_you_mean("enviroment", FIELDS), Some("environment"));
    }

    #[test]
    fn relaxed_spellings_are_exact_matches() {
        assert_eq!(did_you_mean("isRevoked", FIELDS), Some("is-revoked"));
    }

    #[test]
    fn nothing_close_means_none() {
        assert_eq!(did_you_mean("colour", FIELDS), None);
        assert_eq!(did_you_mean("ur", FIELDS), None);
        assert_eq!(did_you_mean("x", &[]), None);
        assert_eq!(did_you_mean("", FIELDS), None);
    }

    #[test]
    fn works_on_dotted_names() {
        let known = ["ataccama.server.grpc.port", "ataccama.server.grpc.host"];
        assert_eq!(
            did_you_mean("ataccama.server.grpc.prot", &known),
            Some("ataccama.server.grpc.port")
        );
        assert_eq!(
            did_you_mean("ataccama.sever.grpc.host", &known),
            Some("ataccama.server.grpc.host")
        );
    }
}
