//! ES256 (ECDSA over P-256 with SHA-256, RFC 7518 §3.4) signing and verification of raw `r‖s`
//! signatures, straight on OpenSSL's EC API.
//!
//! Keys are converted to OpenSSL `EC_KEY`s once (when the deployment table is built or a generator key is
//! installed); each operation is then a one-shot SHA-256 and `ECDSA_do_sign` / `ECDSA_do_verify`,
//! which is what `openssl speed ecdsap256` times. Going through a JWS library instead set up a
//! fresh EVP digest context per call (provider fetches included) and converted the signature to
//! and from DER each time, about a tenth of a verification on the profile (BENCHMARKS.md). This
//! module checks nothing about tokens: the caller decides what is signed and what a valid
//! signature means for a call.

use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;

/// Length of an ES256 signature: r and s, 32 bytes each, big-endian.
pub(crate) const SIGNATURE_BYTES: usize = 64;

/// A peer's public key, ready to check signatures.
pub(crate) struct Es256Verifier {
    /// OpenSSL's form of the key; read-only, so shared by every thread.
    key: EcKey<Public>,
}

impl Es256Verifier {
    /// Prepares `point` (already validated as a P-256 point by the JWK parser) on the one P-256
    /// group every key shares: building the curve afresh per key was most of the time a module
    /// with 10,000 deployments took to prepare their keys.
    pub(crate) fn new(point: &p256::PublicKey) -> Result<Self, String> {
        let group = p256_group()?;
        let mut context = BigNumContext::new().map_err(|e| e.to_string())?;
        let encoded = point.to_encoded_point(false);
        let point = EcPoint::from_bytes(group, encoded.as_bytes(), &mut context)
            .map_err(|e| e.to_string())?;
        let key = EcKey::from_public_key(group, &point).map_err(|e| e.to_string())?;
        Ok(Self { key })
    }

    /// Whether `signature` (`r‖s`, 64 bytes) is valid over `message`. OpenSSL refuses r or s
    /// outside `[1, n-1]`; anything OpenSSL cannot evaluate counts as invalid.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_BYTES]) -> bool {
        let (r, s) = signature.split_at(SIGNATURE_BYTES / 2);
        let Ok(signature) = BigNum::from_slice(r)
            .and_then(|r| Ok((r, BigNum::from_slice(s)?)))
            .and_then(|(r, s)| EcdsaSig::from_private_components(r, s))
        else {
            return false;
        };
        let digest = openssl::sha::sha256(message);
        signature.verify(&digest, &self.key).unwrap_or(false)
    }
}

/// OpenSSL's P-256 group, built once.
fn p256_group() -> Result<&'static EcGroup, String> {
    static GROUP: OnceLock<EcGroup> = OnceLock::new();
    if let Some(group) = GROUP.get() {
        return Ok(group);
    }
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| e.to_string())?;
    Ok(GROUP.get_or_init(|| group))
}

/// This module's signing key in OpenSSL's form.
pub(crate) struct Es256Signer {
    /// The private key; OpenSSL only reads it while signing.
    key: EcKey<Private>,
}

impl Es256Signer {
    /// Prepares `secret` for signing.
    pub(crate) fn new(secret: &p256::SecretKey) -> Result<Self, String> {
        let der = secret.to_pkcs8_der().map_err(|e| e.to_string())?;
        let key = PKey::private_key_from_pkcs8(der.as_bytes())
            .and_then(|key| key.ec_key())
            .map_err(|e| e.to_string())?;
        Ok(Self { key })
    }

    /// The `r‖s` signature of `message`; `None` only if OpenSSL fails.
    pub(crate) fn sign(&self, message: &[u8]) -> Option<[u8; SIGNATURE_BYTES]> {
        let digest = openssl::sha::sha256(message);
        let signature = EcdsaSig::sign(&digest, &self.key).ok()?;
        let half = i32::try_from(SIGNATURE_BYTES / 2).ok()?;
        let r = signature.r().to_vec_padded(half).ok()?;
        let s = signature.s().to_vec_padded(half).ok()?;
        let mut out = [0u8; SIGNATURE_BYTES];
        out[..SIGNATURE_BYTES / 2].copy_from_slice(&r);
        out[SIGNATURE_BYTES / 2..].copy_from_slice(&s);
        Some(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use p256::ecdsa::signature::{Signer as _, Verifier as _};

    use super::*;

    fn keypair() -> p256::SecretKey {
        p256::SecretKey::random(&mut rand_core::OsRng)
    }

    #[test]
    fn signatures_verify_both_ways_with_the_pure_rust_implementation() {
        let secret = keypair();
        let message = b"header.payload";
        // OpenSSL signs, p256 verifies.
        let ours = Es256Signer::new(&secret).unwrap().sign(message).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&ours).unwrap();
        p256::ecdsa::VerifyingKey::from(secret.public_key())
            .verify(message, &signature)
            .unwrap();
        // p256 signs, OpenSSL verifies.
        let theirs: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(&secret).sign(message);
        let bytes: [u8; 64] = theirs.to_bytes().into();
        let verifier = Es256Verifier::new(&secret.public_key()).unwrap();
        assert!(verifier.verify(message, &bytes));
        assert!(verifier.verify(message, &ours));
    }

    #[test]
    fn wrong_messages_keys_and_scalars_are_refused() {
        let secret = keypair();
        let signature = Es256Signer::new(&secret).unwrap().sign(b"m").unwrap();
        let verifier = Es256Verifier::new(&secret.public_key()).unwrap();
        assert!(!verifier.verify(b"n", &signature));
        let other = Es256Verifier::new(&keypair().public_key()).unwrap();
        assert!(!other.verify(b"m", &signature));
        let mut flipped = signature;
        flipped[63] ^= 1;
        assert!(!verifier.verify(b"m", &flipped));
        // r = 0, s = 0, and r = s = n (the group order) are outside [1, n-1].
        assert!(!verifier.verify(b"m", &[0u8; 64]));
        let order = hex_order();
        let mut at_order = [0u8; 64];
        at_order[..32].copy_from_slice(&order);
        at_order[32..].copy_from_slice(&order);
        assert!(!verifier.verify(b"m", &at_order));
        // Signatures are randomized: two signatures of one message differ, both valid.
        let again = Es256Signer::new(&secret).unwrap().sign(b"m").unwrap();
        assert_ne!(signature, again);
        assert!(verifier.verify(b"m", &again));
    }

    fn hex_order() -> [u8; 32] {
        let hex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
