//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) verification on an RSA public key
//! prepared once, the counterpart of the `es256` module for people's tokens.
//!
//! Each check is the raw public-key operation with PKCS #1 type 1 padding checked by OpenSSL; the
//! block it recovers must then be exactly the DER `DigestInfo` of the SHA-256 hash of the message
//! (RFC 8017 §8.2.2 compares encodings rather than parsing the signer's). Going through OpenSSL's
//! EVP verifier instead set up a fresh digest context per call, provider fetches included: about
//! an eighth of a cold verification on the profile (BENCHMARKS.md). The hash is the `sha2`
//! crate's: on a CPU with SHA extensions it hashed a 1.1 KB signing input in 0.76 µs where
//! OpenSSL's one-shot `SHA256` took 1.16 µs, 2 % of a verification.

use openssl::pkey::Public;
use openssl::rsa::{Padding, Rsa};
use sha2::{Digest as _, Sha256};

/// The DER prefix of a SHA-256 `DigestInfo` (RFC 8017 §9.2, note 1); the 32-byte hash follows.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The largest modulus in bytes the verifier is given (4096 bits; the key parser refuses more).
const MAX_MODULUS_BYTES: usize = 512;

/// An RSA public key, ready to check RS256 signatures.
pub(crate) struct Rs256Verifier {
    /// OpenSSL's form of the key; read-only, so shared by every thread.
    key: Rsa<Public>,
    /// The modulus length in bytes: every valid signature has exactly this length.
    size: usize,
}

impl Rs256Verifier {
    /// Prepares `key`; `None` when its modulus is over 4096 bits.
    pub(crate) fn new(key: Rsa<Public>) -> Option<Self> {
        let size = usize::try_from(key.size()).ok()?;
        (size <= MAX_MODULUS_BYTES).then_some(Self { key, size })
    }

    /// Whether `signature` is a valid RS256 signature of `message`. A signature of another
    /// length, bad padding, another digest algorithm or another hash counts as invalid.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.size {
            return false;
        }
        let mut block = [0u8; MAX_MODULUS_BYTES];
        let Ok(length) =
            self.key
                .public_decrypt(signature, &mut block[..self.size], Padding::PKCS1)
        else {
            return false;
        };
        let Some((prefix, hash)) = block[..length].split_at_checked(SHA256_DIGEST_INFO.len())
        else {
            return false;
        };
        prefix == SHA256_DIGEST_INFO && *hash == Sha256::digest(message)[..]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::sign::Signer;

    fn signed(bits: u32, digest: MessageDigest, message: &[u8]) -> (Rs256Verifier, Vec<u8>) {
        let private = Rsa::generate(bits).unwrap();
        let public = Rsa::from_public_components(
            private.n().to_owned().unwrap(),
            private.e().to_owned().unwrap(),
        )
        .unwrap();
        let key = PKey::from_rsa(private).unwrap();
        let mut signer = Signer::new(digest, &key).unwrap();
        let signature = signer.sign_oneshot_to_vec(message).unwrap();
        (Rs256Verifier::new(public).unwrap(), signature)
    }

    #[test]
    fn a_signature_verifies_only_over_its_message_and_unchanged() {
        for bits in [2048, 4096] {
            let (verifier, signature) = signed(bits, MessageDigest::sha256(), b"header.claims");
            assert!(verifier.verify(b"header.claims", &signature));
            assert!(!verifier.verify(b"header.claimz", &signature));
            let mut flipped = signature.clone();
            flipped[10] ^= 1;
            assert!(!verifier.verify(b"header.claims", &flipped));
            assert!(!verifier.verify(b"header.claims", &signature[1..]));
            let mut longer = vec![0];
            longer.extend_from_slice(&signature);
            assert!(!verifier.verify(b"header.claims", &longer));
            assert!(!verifier.verify(b"header.claims", &[]));
        }
    }

    #[test]
    fn another_digest_algorithm_is_refused() {
        for digest in [
            MessageDigest::sha1(),
            MessageDigest::sha384(),
            MessageDigest::sha512(),
        ] {
            let (verifier, signature) = signed(2048, digest, b"header.claims");
            assert!(!verifier.verify(b"header.claims", &signature));
        }
    }
}
