//! A small deterministic input generator for the crate's never-panics property tests, so they
//! need no extra crate and fail the same way on every run (a `cargo fuzz` target comes later).

/// A tiny deterministic generator (xorshift) so the property tests need no extra crate.
pub(crate) struct Noise(u64);

impl Noise {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`0` when `n` is `0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next() % n).unwrap_or(0)
    }

    /// Text biased towards the characters the grammar cares about.
    pub(crate) fn properties_text(&mut self, max_len: usize) -> String {
        const ALPHABET: &[&str] = &[
            "a", "b", "Z", "0", "9", ".", "-", "_", "[", "]", "=", ":", " ", "\t", "\x0c", "\n",
            "\r", "\r\n", "\\", "\\", "\\u", "\\u00e9", "\\uD83D", "\\uDE00", "#", "!", "é", "😀",
            "\u{0}", "\u{feff}", "\u{2028}", "ffff", "G",
        ];
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }
}
