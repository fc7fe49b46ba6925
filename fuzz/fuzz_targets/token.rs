//! Fuzzes `svcid_identity::token::TokenVerifier::verify`, the check every incoming call goes
//! through. No `authorization` metadata may panic it, and nothing the fuzzer writes may pass it
//! without a key holder's signature.
//!
//! Two verifiers are built once, with keys generated at start (no key is ever committed):
//!
//! * `unsigned`: peers `dpe-dev` (IMPERSONATION), `plain-dev` and `old-dev` (revoked), whose
//!   private keys never sign anything here. The input goes in raw, split on `\n` into one to
//!   three `authorization` values, and wrapped as `Internal-jwt <input>`. Both must be refused.
//! * `signed`: peers whose keys the target holds. When the input has a `\n`, the part before is
//!   the header JSON (`$KID` and `$KID1` replaced by the two keys' fingerprints), the part after
//!   the claims JSON; the target encodes and signs them (ES256) and verifies the token, so the
//!   claim checks behind the signature are fuzzed too. A token it accepts must be accepted again
//!   from the cache with the same identity, and uncached.
//!
//! The clock is fixed at [`NOW`] so seeds can carry real `iat`/`exp` values.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use svcid_identity::{
    CallerIdentity, Deployment, DeploymentKey, Deployments, GeneratorKey, ManualClock,
    PublicKey, TokenIssuer, TokenProfile, TokenVerifier, VerifyPolicy,
};

/// The verifiers' "now" (2023-11-14T22:13:20Z); seeds use `iat` around it.
const NOW: i64 = 1_700_000_000;

/// Everything built once per process.
struct Setup {
    /// Trusts keys nobody here signs with.
    unsigned: TokenVerifier,
    /// Trusts `signers`.
    signed: TokenVerifier,
    /// `dpe-dev`'s (IMPERSONATION) and `plain-dev`'s signing keys.
    signers: [Signer; 2],
}

/// A key the target signs with, and what the `signed` verifier knows of it.
struct Signer {
    /// The private key; generated at start, never written anywhere.
    key: SigningKey,
    /// Its public half, as a peer's `content` would give it.
    public: PublicKey,
    /// Its RFC 7638 thumbprint: the fingerprint configured and the `kid` its tokens carry.
    kid: String,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let clock = Arc::new(ManualClock::new(NOW));
        let (dpe, plain, old) = (
            GeneratorKey::generate(),
            GeneratorKey::generate(),
            GeneratorKey::generate(),
        );
        let registry = Deployments::new(vec![
            deployment(
                "dpe-dev",
                &["IMPERSONATION"],
                vec![key("key1", &dpe, false)],
            ),
            deployment("plain-dev", &[], vec![key("key1", &plain, false)]),
            deployment("old-dev", &[], vec![key("key1", &old, true)]),
        ])
        .expect("generated keys form a registry");
        let unsigned = TokenVerifier::new(VerifyPolicy::new("dpm"), registry, clock.clone());

        // The setup must accept a real token, or the fuzzing would only ever see refusals. Checked
        // uncached so that no valid token of these keys sits in memory for the fuzzer to learn.
        let issuer = TokenIssuer::new(dpe, Duration::from_secs(15), clock.clone())
            .expect("issuer from a generated key");
        let minted = format!("Internal-jwt {}", issuer.mint("dpm", None));
        unsigned
            .verify_uncached(&[minted.as_bytes()])
            .expect("a minted token verifies");

        let signers = [signer(), signer()];
        let registry = Deployments::new(vec![
            Deployment {
                keys: vec![signer_key(&signers[0])],
                ..deployment("dpe-dev", &["IMPERSONATION"], vec![])
            },
            Deployment {
                keys: vec![signer_key(&signers[1])],
                ..deployment("plain-dev", &[], vec![])
            },
        ])
        .expect("generated keys form a registry");
        let signed = TokenVerifier::new(VerifyPolicy::new("dpm"), registry, clock);
        Setup {
            unsigned,
            signed,
            signers,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();

    // Raw metadata: 0 values for empty input, else 1 to 3 split on `\n`.
    let values: Vec<&[u8]> = if data.is_empty() {
        Vec::new()
    } else {
        data.splitn(3, |b| *b == b'\n').collect()
    };
    refused(&setup.unsigned, &values);
    let wrapped = [b"Internal-jwt ".as_slice(), data].concat();
    refused(&setup.unsigned, &[&wrapped]);

    if let Some(split) = data.iter().position(|b| *b == b'\n') {
        signed(setup, &data[..split], &data[split + 1..]);
    }
});

/// The unsigned verifier refuses, and the refusal renders.
fn refused(verifier: &TokenVerifier, values: &[&[u8]]) {
    match verifier.verify(values) {
        Ok(caller) => panic!("a token nobody signed was accepted: {caller}"),
        Err(error) => {
            let _ = (error.to_string(), error.reason(), error.kid());
        }
    }
}

/// Signs `header.payload` with the matching key and checks the verdict is stable.
fn signed(setup: &Setup, header: &[u8], payload: &[u8]) {
    let header = String::from_utf8_lossy(header)
        .replace("$KID1", &setup.signers[1].kid)
        .replace("$KID", &setup.signers[0].kid);
    // The key the header names signs, so that the fuzzer reaches the claims of both peers.
    let signing_key = if header.contains(setup.signers[1].kid.as_str()) {
        &setup.signers[1].key
    } else {
        &setup.signers[0].key
    };
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature: Signature = signing_key.sign(input.as_bytes());
    let token = format!(
        "Internal-jwt {input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    );
    let values = [token.as_bytes()];
    match setup.signed.verify(&values) {
        Ok(first) => {
            let cached = setup
                .signed
                .verify(&values)
                .expect("accepted again from the cache");
            let uncached = setup
                .signed
                .verify_uncached(&values)
                .expect("accepted uncached");
            for again in [&cached, &uncached] {
                assert!(same(&first, again), "{first:?} then {again:?}");
            }
        }
        Err(error) => {
            let _ = (error.to_string(), error.reason(), error.kid());
        }
    }
}

fn same(a: &CallerIdentity, b: &CallerIdentity) -> bool {
    a.service == b.service && a.user == b.user && a.kid == b.kid && a.jti == b.jti
}

fn deployment(name: &str, roles: &[&str], keys: Vec<DeploymentKey>) -> Deployment {
    Deployment {
        name: name.to_owned(),
        module: "dpe".to_owned(),
        environment: Some("dev".to_owned()),
        uri: None,
        token_profile: TokenProfile::Strict,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        keys,
    }
}

fn key(name: &str, generator: &GeneratorKey, revoked: bool) -> DeploymentKey {
    DeploymentKey {
        name: name.to_owned(),
        fingerprint: generator.kid().to_owned(),
        public: generator.public_key(),
        revoked,
    }
}

/// A fresh P-256 signing key, loaded back through `PublicKey::from_content` like a peer's key.
fn signer() -> Signer {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let coordinate =
        |c: Option<&p256::FieldBytes>| URL_SAFE_NO_PAD.encode(c.expect("uncompressed point"));
    let content = format!(
        r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}","alg":"ES256"}}"#,
        coordinate(point.x()),
        coordinate(point.y())
    );
    let (public, _) = PublicKey::from_content(&content).expect("own public key loads");
    let kid = public.thumbprint();
    Signer { key, public, kid }
}

fn signer_key(signer: &Signer) -> DeploymentKey {
    DeploymentKey {
        name: "key1".to_owned(),
        fingerprint: signer.kid.clone(),
        public: signer.public.clone(),
        revoked: false,
    }
}
