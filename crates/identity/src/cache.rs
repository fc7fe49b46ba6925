//! [`VerifiedTokens`]: the bounded map from a token's exact text to what verifying it proved,
//! each entry good until the token's `exp`. The module-token verifier keeps one (with the
//! identities of peers); `svcid-users` keeps one per module for people's tokens.
//!
//! Only tokens that passed every check are remembered, so a storm of forged or unknown tokens
//! never grows it; and it never holds more than its capacity: when full, entries past their `exp`
//! are dropped first, then an arbitrary one (it is simply verified again on its next use).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Slot;

/// A bounded cache of verified tokens, keyed by the full token text. Not synchronised: its owner
/// keeps it behind a lock with whatever else must change in the same step.
///
/// A lookup hashes the token once (a token is hundreds of bytes, and a hit is the whole cost of
/// an authenticated call's check), with the standard library's keyed hash: lookups are made with
/// whatever text a peer sends.
pub struct VerifiedTokens<V> {
    /// What each remembered token proved and until when.
    entries: HashTable<Entry<V>>,
    /// The hash of `entries`, keyed at random per cache.
    hasher: RandomState,
    /// Entries held at most.
    capacity: usize,
}

/// One remembered verification.
struct Entry<V> {
    /// The token's full text.
    token: Box<str>,
    /// What the token proved.
    value: V,
    /// The token's `exp` (Unix seconds).
    exp: i64,
}

impl<V> fmt::Debug for VerifiedTokens<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the tokens: only how many.
        f.debug_struct("VerifiedTokens")
            .field("entries", &self.entries.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<V> VerifiedTokens<V> {
    /// An empty cache holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        VerifiedTokens {
            entries: HashTable::new(),
            hasher: RandomState::new(),
            capacity: capacity.max(1),
        }
    }

    /// What `token` proved, when it is remembered and `alive(exp)` still holds for its `exp`. An
    /// entry that is no longer alive is forgotten, so the caller's full check gives the precise
    /// refusal.
    pub fn get(&mut self, token: &str, alive: impl Fn(i64) -> bool) -> Option<&V> {
        let hash = self.hasher.hash_one(token);
        match self
            .entries
            .find_entry(hash, |entry| *entry.token == *token)
        {
            Ok(found) if alive(found.get().exp) => Some(&found.into_mut().value),
            Ok(expired) => {
                expired.remove();
                None
            }
            Err(_) => None,
        }
    }

    /// Remembers that `token`, valid until `exp`, proved `value`. When the cache is full, entries
    /// for which `alive` no longer holds go first, then an arbitrary one.
    pub fn remember(&mut self, token: &str, value: V, exp: i64, alive: impl Fn(i64) -> bool) {
        let hash = self.hasher.hash_one(token);
        let known = |entry: &Entry<V>| *entry.token == *token;
        if self.entries.len() >= self.capacity && self.entries.find(hash, known).is_none() {
            self.entries.retain(|entry| alive(entry.exp));
            if self.entries.len() >= self.capacity
                && let Some(victim) = self.entries.iter().next().map(|e| e.token.clone())
            {
                self.forget(&victim);
            }
        }
        let hasher = &self.hasher;
        match self
            .entries
            .entry(hash, known, |entry| hasher.hash_one(&*entry.token))
        {
            Slot::Occupied(mut held) => {
                let held = held.get_mut();
                held.value = value;
                held.exp = exp;
            }
            Slot::Vacant(free) => {
                free.insert(Entry {
                    token: token.into(),
                    value,
                    exp,
                });
            }
        }
    }

    /// Forgets `token`.
    pub fn forget(&mut self, token: &str) {
        let hash = self.hasher.hash_one(token);
        if let Ok(found) = self
            .entries
            .find_entry(hash, |entry| *entry.token == *token)
        {
            found.remove();
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries held at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_until_its_exp_and_is_then_forgotten() {
        let mut cache = VerifiedTokens::new(4);
        cache.remember("a.b.c", 7, 100, |_| true);
        assert_eq!(cache.get("a.b.c", |exp| 100 <= exp), Some(&7));
        assert_eq!(cache.get("a.b.c", |exp| 101 <= exp), None);
        assert!(cache.is_empty());
        assert_eq!(cache.get("x.y.z", |_| true), None);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_and_never_grows_past_its_capacity() {
        let mut cache = VerifiedTokens::new(3);
        cache.remember("old", 0, 10, |_| true);
        cache.remember("live1", 1, 1000, |_| true);
        cache.remember("live2", 2, 1000, |_| true);
        cache.remember("new", 3, 1000, |exp| 500 <= exp);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("old", |_| true), None);
        assert_eq!(cache.get("new", |_| true), Some(&3));
        for i in 0..100 {
            cache.remember(&format!("t{i}"), i, 1000, |_| true);
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.len(), cache.capacity());
        cache.forget("t99");
        assert_eq!(cache.len(), 2);
        cache.clear();
        assert!(cache.is_empty());
    }
}
