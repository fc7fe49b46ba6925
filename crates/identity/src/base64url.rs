//! The segments of a person's token decoded from strict base64url (RFC 4648 §5 without padding,
//! trailing bits zero: each value has one spelling), with SIMD where the CPU has it.
//!
//! It accepts exactly what [`BASE64URL_STRICT`](crate::jwk::BASE64URL_STRICT), the `base64`
//! crate's engine the rest of the crate decodes with, accepts, and gives the same bytes; the tests
//! compare the two on random text and on every short tail. It exists for speed: a cold RS256 check
//! decodes its three segments (about 700 characters for a small token) beside one RSA operation
//! whose cost is the target, and `base64-simd` decoded them in a third of the `base64` crate's time
//! (100 against 300 ns on this project's machine; a table-driven scalar decoder of our own was
//! no faster than the `base64` crate: four characters need eight loads either way).

use base64_simd::{Out, URL_SAFE_NO_PAD};

/// Why a segment did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Base64Error {
    /// Not strict base64url: a byte outside the alphabet, padding, a length of 4n + 1
    /// characters, or non-zero trailing bits.
    Invalid,
    /// Valid, but more bytes than the room given.
    TooLong,
}

/// Decodes `text` into the start of `out`, returning the bytes written.
pub(crate) fn decode_slice<'o>(text: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], Base64Error> {
    let length = URL_SAFE_NO_PAD
        .decoded_length(text)
        .map_err(|_| Base64Error::Invalid)?;
    let Some(out) = out.get_mut(..length) else {
        // Bad text is told as such whatever its length (only hostile input gets here).
        return Err(match URL_SAFE_NO_PAD.check(text) {
            Ok(()) => Base64Error::TooLong,
            Err(_) => Base64Error::Invalid,
        });
    };
    match URL_SAFE_NO_PAD.decode(text, Out::from_slice(out)) {
        Ok(decoded) => Ok(decoded),
        Err(_) => Err(Base64Error::Invalid),
    }
}

/// Decodes `text` onto the end of `out`; on an error `out` is as it was.
pub(crate) fn decode_onto(text: &[u8], out: &mut Vec<u8>) -> Result<(), Base64Error> {
    let start = out.len();
    let length = URL_SAFE_NO_PAD
        .decoded_length(text)
        .map_err(|_| Base64Error::Invalid)?;
    out.resize(start + length, 0);
    // Sized exactly, so only bad text can fail.
    if URL_SAFE_NO_PAD
        .decode(text, Out::from_slice(&mut out[start..]))
        .is_err()
    {
        out.truncate(start);
        return Err(Base64Error::Invalid);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::jwk::BASE64URL_STRICT;

    /// The `base64` crate's verdict and bytes.
    fn reference(text: &[u8]) -> Option<Vec<u8>> {
        BASE64URL_STRICT.decode(text).ok()
    }

    fn ours(text: &[u8]) -> Option<Vec<u8>> {
        let mut out = b"kept".to_vec();
        match decode_onto(text, &mut out) {
            Ok(()) => Some(out.split_off(4)),
            Err(_) => {
                assert_eq!(out, b"kept", "an error leaves the buffer as it was");
                None
            }
        }
    }

    #[test]
    fn decodes_what_the_base64_crate_decodes_and_nothing_else() {
        // Every character class: the alphabet, standard base64's two, padding, space, a
        // non-ASCII byte and NUL.
        let alphabet: Vec<u8> =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= \xc3\x00"
                .to_vec();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for case in 0..200_000 {
            let length = usize::try_from(next() % 24).unwrap();
            let text: Vec<u8> = (0..length)
                .map(|_| {
                    // Mostly valid characters, so that most texts get far.
                    let pick = next();
                    let range = if pick % 50 == 0 { alphabet.len() } else { 64 };
                    alphabet[usize::try_from((pick >> 8) % range as u64).unwrap()]
                })
                .collect();
            let expected = reference(&text);
            accepted += usize::from(expected.is_some());
            assert_eq!(ours(&text), expected, "case {case}: {text:?}");
        }
        assert!(
            accepted > 50_000,
            "the valid side was tried too: {accepted}"
        );
    }

    #[test]
    fn every_two_and_three_character_tail_alike() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for &a in alphabet {
            for &b in alphabet {
                assert_eq!(ours(&[a, b]), reference(&[a, b]));
                for &c in alphabet {
                    let text = [b'A', b'A', b'A', b'A', a, b, c];
                    assert_eq!(ours(&text), reference(&text));
                }
            }
        }
    }

    #[test]
    fn a_slice_too_short_is_told_apart_from_bad_text() {
        let mut room = [0u8; 2];
        assert_eq!(decode_slice(b"QUJD", &mut room), Err(Base64Error::TooLong));
        assert_eq!(decode_slice(b"QUJ!", &mut room), Err(Base64Error::Invalid));
        assert_eq!(decode_slice(b"QUI", &mut room).unwrap(), b"AB");
        assert_eq!(decode_slice(b"Q", &mut room), Err(Base64Error::Invalid));
        assert_eq!(decode_slice(b"", &mut room).unwrap(), b"");
    }
}
