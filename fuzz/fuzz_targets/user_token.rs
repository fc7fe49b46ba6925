//! Fuzzes people's tokens through `svcid_identity::user::UserTokenVerifier`: routing by the
//! unverified `iss` ([`UserTokenVerifier::route`]), then every check against the routed issuer's
//! keys. No token may panic it, and nothing the fuzzer writes may pass without the issuer's
//! signature.
//!
//! One verifier is built at start with two issuers, one for each rule set: [`KEYCLOAK`]
//! (Keycloak's rules) and [`MICRO_PROFILE`] (MicroProfile JWT's, with Payara's claim namespace
//! `https://ns.fuzz/`). Each has a JWK set of one RSA 2048 key generated at start (`kid` `k1`
//! and `k2`; no key is ever committed).
//!
//! * The input (lossy UTF-8) is routed as a Bearer token; a routed token is verified with its
//!   issuer's keys and must be refused (the fuzzer holds no key).
//! * When the input has a `\n`, the part before is the header JSON and the part after the claims
//!   JSON; the target encodes them and signs them RS256 with the key of the issuer the claims
//!   name (`$ISS_KC` and `$ISS_MP` in the input become the two issuers, `$KID` the signing key's
//!   `kid`), so the claim checks behind the signature are fuzzed too. A token accepted once must
//!   be accepted again with the same identity.
//!
//! The clock is fixed at [`NOW`] so seeds can carry real `iat`/`exp` values.

#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::json;
use svcid_identity::ManualClock;
use svcid_identity::user::{TokenText, UserIssuerPolicy, UserKeySet, UserTokenVerifier};

/// The verifier's "now" (2023-11-14T22:13:20Z); seeds use `iat` around it.
const NOW: i64 = 1_700_000_000;
/// The issuer under Keycloak's rules.
const KEYCLOAK: &str = "https://kc.fuzz/realms/fuzz";
/// The issuer under MicroProfile JWT's rules.
const MICRO_PROFILE: &str = "https://mp.fuzz";

/// Everything built once per process.
struct Setup {
    verifier: UserTokenVerifier,
    /// The issuers' keys, in the verifier's order.
    keys: [UserKeySet; 2],
    /// The issuers' private keys, in the same order; generated at start, never written anywhere.
    signers: [PKey<Private>; 2],
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let mut micro_profile = UserIssuerPolicy::micro_profile(MICRO_PROFILE);
        micro_profile.namespace = Some("https://ns.fuzz/".to_owned());
        let policies = vec![UserIssuerPolicy::keycloak(KEYCLOAK), micro_profile];
        let (first, second) = (generate(), generate());
        let keys = [
            key_set(&first, "k1", &policies[0]),
            key_set(&second, "k2", &policies[1]),
        ];
        let verifier = UserTokenVerifier::new(policies, Arc::new(ManualClock::new(NOW)))
            .expect("two distinct issuers");
        Setup {
            verifier,
            keys,
            signers: [first, second],
        }
    })
}

fn generate() -> PKey<Private> {
    let rsa = Rsa::generate(2048).expect("an RSA key");
    PKey::from_rsa(rsa).expect("an RSA key")
}

/// `{"keys":[<the public JWK of key>]}` parsed with `policy`'s filter.
fn key_set(key: &PKey<Private>, kid: &str, policy: &UserIssuerPolicy) -> UserKeySet {
    let rsa = key.rsa().expect("an RSA key");
    let text = json!({"keys": [{
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
        "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
    }]})
    .to_string();
    UserKeySet::parse(&text, policy.key_filter()).expect("a generated key loads")
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let text = String::from_utf8_lossy(data);
    unsigned(setup, &text);
    if let Some((header, claims)) = text.split_once('\n') {
        signed(setup, header, claims);
    }
});

/// Routes `token`; a routed one is refused by its issuer's keys.
fn unsigned(setup: &Setup, token: &str) {
    let mut text = TokenText::default();
    match setup.verifier.route(token, &mut text) {
        Ok(routed) => {
            let _ = (routed.kid(), routed.expires(), format!("{routed:?}"));
            match routed.verify(keys_of(setup, &routed.issuer().issuer)) {
                Ok(identity) => panic!("a token nobody signed was accepted: {identity:?}"),
                Err(error) => {
                    let _ = (error.to_string(), error.reason());
                }
            }
        }
        Err(not_user) => {
            let _ = (not_user.to_string(), not_user.reason());
        }
    }
}

/// Signs `header.claims` with the key of the issuer the claims name, verifies, and checks the
/// verdict is stable.
fn signed(setup: &Setup, header: &str, claims: &str) {
    let claims = claims
        .replace("$ISS_KC", KEYCLOAK)
        .replace("$ISS_MP", MICRO_PROFILE);
    let index = usize::from(claims.contains(MICRO_PROFILE) && !claims.contains(KEYCLOAK));
    let header = header.replace("$KID", ["k1", "k2"][index]);
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut signer =
        Signer::new(MessageDigest::sha256(), &setup.signers[index]).expect("an RSA signer");
    let signature = signer
        .sign_oneshot_to_vec(input.as_bytes())
        .expect("RS256 signs");
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let verify = || {
        setup
            .verifier
            .verify(&token, |policy| keys_of(setup, &policy.issuer))
    };
    match verify() {
        Ok(first) => {
            let again = verify().expect("accepted again");
            assert_eq!(first, again);
        }
        Err(error) => {
            let _ = (error.to_string(), error.reason());
        }
    }
}

fn keys_of<'s>(setup: &'s Setup, issuer: &str) -> &'s UserKeySet {
    if issuer == KEYCLOAK {
        &setup.keys[0]
    } else {
        &setup.keys[1]
    }
}
