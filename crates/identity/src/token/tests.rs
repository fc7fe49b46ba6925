//! The hostile tokens 1–21 of docs/security.md against `TokenVerifier`, with keys generated at
//! run time and hostile tokens built by hand; plus minting, reuse and the cache.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::KeyPair as _;
use josekit::jws::JwsSigner;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{Value, json};

use std::time::Duration;

use super::verify::VERIFIED_CACHE_CAPACITY;
use super::*;
use crate::clock::ManualClock;
use crate::deployments::tests::{deployment, key};
use crate::deployments::{Deployment, Deployments};
use crate::es256::SIGNATURE_BYTES;
use crate::identity::{CallerIdentity, ImpersonatedUser, ServiceIdentity};
use crate::jwk::GeneratorKey;
use crate::strict_json::StrictJsonError;

const NOW: i64 = 1_700_000_000;
const LIFETIME: i64 = 15;

/// A DPM server trusting three DPE deployments: `dpe-dev` (IMPERSONATION), `plain-dev` (no roles)
/// and `old-dev` (its only key revoked).
struct Fixture {
    clock: Arc<ManualClock>,
    verifier: TokenVerifier,
    dpe: GeneratorKey,
    plain: GeneratorKey,
    old: GeneratorKey,
}

impl Fixture {
    fn new() -> Self {
        Self::with_policy(VerifyPolicy::new("dpm"))
    }

    fn with_policy(policy: VerifyPolicy) -> Self {
        Self::with_profile(policy, TokenProfile::Strict)
    }

    /// The same peers with `dpe-dev` under `profile` (`plain-dev` stays strict).
    fn with_profile(policy: VerifyPolicy, profile: TokenProfile) -> Self {
        let (dpe, plain, old) = (
            GeneratorKey::generate(),
            GeneratorKey::generate(),
            GeneratorKey::generate(),
        );
        let clock = Arc::new(ManualClock::new(NOW));
        let mut peers = deployments(&dpe, &plain, &old, false);
        peers[0].token_profile = profile;
        let table = Deployments::new(peers).unwrap();
        let verifier = TokenVerifier::new(policy, table, clock.clone());
        Fixture {
            clock,
            verifier,
            dpe,
            plain,
            old,
        }
    }

    /// The verdict on one `Internal-jwt <token>` value: "accepted" or the reason code.
    fn reason(&self, token: &str) -> &'static str {
        self.reason_of(&[format!("Internal-jwt {token}").as_bytes()])
    }

    fn reason_of(&self, values: &[&[u8]]) -> &'static str {
        match self.verifier.verify(values) {
            Ok(_) => "accepted",
            Err(error) => error.reason(),
        }
    }

    fn accept(&self, token: &str) -> CallerIdentity {
        self.verifier
            .verify(&[format!("Bearer {token}").as_bytes()])
            .unwrap()
    }

    /// A well-formed token by `dpe-dev` with `claims` merged over the defaults.
    fn token(&self, extra: Value) -> String {
        forge(&header(self.dpe.kid()), &claims(extra), &self.dpe)
    }
}

fn deployments(
    dpe: &GeneratorKey,
    plain: &GeneratorKey,
    old: &GeneratorKey,
    dpe_revoked: bool,
) -> Vec<Deployment> {
    let mut dpe_dev = deployment("dpe-dev", "dpe", vec![key("key1", dpe, dpe_revoked)]);
    dpe_dev.roles = vec!["IMPERSONATION".into()];
    vec![
        dpe_dev,
        deployment("plain-dev", "dpe", vec![key("key1", plain, false)]),
        deployment("old-dev", "dpe", vec![key("key1", old, true)]),
    ]
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn header(kid: &str) -> String {
    json!({"alg": "ES256", "typ": "JWT", "kid": kid}).to_string()
}

/// Default valid claims for a DPM server at `NOW`, with `extra` members replacing or adding
/// (a `null` in `extra` removes the member).
fn claims(extra: Value) -> String {
    let mut claims =
        json!({"iat": NOW, "nbf": NOW, "exp": NOW + LIFETIME, "aud": "dpm", "jti": "j-1"});
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        for (name, value) in extra {
            if value.is_null() {
                claims.remove(&name);
            } else {
                claims.insert(name, value);
            }
        }
    }
    claims.to_string()
}

fn signing_key(key: &GeneratorKey) -> SigningKey {
    SigningKey::from(key.secret())
}

/// `header.claims.signature` with a raw r‖s ES256 signature made by p256 (not by the code under test).
fn forge(header: &str, claims: &str, key: &GeneratorKey) -> String {
    forge_bytes(header.as_bytes(), claims.as_bytes(), key)
}

fn forge_bytes(header: &[u8], claims: &[u8], key: &GeneratorKey) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature: Signature = signing_key(key).sign(input.as_bytes());
    format!("{input}.{}", b64(signature.to_bytes()))
}

/// A token signed by any josekit signer (HS256, RS256, …) under `header`.
fn forge_with(signer: &dyn JwsSigner, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature))
}

fn with_alg(kid: &str, alg: &str) -> String {
    json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string()
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[test]
fn a_valid_token_is_accepted_with_the_local_identity() {
    let f = Fixture::new();
    let caller = f.accept(&f.token(json!({})));
    assert_eq!(
        caller.service().to_string(),
        "ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])"
    );
    assert_eq!(caller.kid(), f.dpe.kid());
    assert_eq!(caller.jti(), "j-1");
    assert!(caller.user().is_none());
    // jti is optional.
    assert_eq!(f.accept(&f.token(json!({"jti": null}))).jti(), "");
    assert_eq!(f.reason(&f.token(json!({"jti": 5}))), "invalid_jti");
}

#[test]
fn row_01_authorization_metadata_shape() {
    let f = Fixture::new();
    let token = f.token(json!({}));
    let good = format!("Internal-jwt {token}");
    assert_eq!(f.reason_of(&[]), "missing_authorization");
    assert_eq!(f.reason_of(&[b""]), "empty_authorization");
    assert_eq!(
        f.reason_of(&[good.as_bytes(), good.as_bytes()]),
        "multiple_authorization"
    );
    assert_eq!(
        f.reason_of(&[good.as_bytes(), b""]),
        "multiple_authorization"
    );
    for unknown in [
        format!("Basic {token}"),
        format!("Internal-jwt-x {token}"),
        format!("Bearer\t{token}"),
        token.clone(),
        "\u{0}Bearer x".to_owned(),
    ] {
        assert_eq!(
            f.reason_of(&[unknown.as_bytes()]),
            "unknown_scheme",
            "{unknown}"
        );
    }
    for missing in ["Bearer", "Bearer ", "internal-JWT", "Internal-jwt "] {
        assert_eq!(
            f.reason_of(&[missing.as_bytes()]),
            "missing_token",
            "{missing}"
        );
    }
    assert_eq!(
        f.reason_of(&[format!("Bearer  {token}").as_bytes()]),
        "malformed_authorization"
    );
    // Scheme case does not matter.
    for scheme in [
        "Internal-jwt",
        "internal-JWT",
        "INTERNAL-JWT",
        "Bearer",
        "bearer",
        "BEARER",
    ] {
        assert_eq!(
            f.reason_of(&[format!("{scheme} {token}").as_bytes()]),
            "accepted",
            "{scheme}"
        );
    }
    // Trailing junk after the token is part of the token, and refused.
    assert_eq!(f.reason(&format!("{token} ")), "bad_base64");
}

#[test]
fn row_02_alg_none_in_any_case_is_refused() {
    let f = Fixture::new();
    let kid = f.dpe.kid();
    for none in ["none", "None", "NONE", "nOnE"] {
        let unsigned = format!("{}.{}.", b64(with_alg(kid, none)), b64(claims(json!({}))));
        assert_eq!(f.reason(&unsigned), "empty_segment", "{none} unsigned");
        let signed = forge(&with_alg(kid, none), &claims(json!({})), &f.dpe);
        assert_eq!(f.reason(&signed), "alg_refused", "{none} signed");
    }
}

#[test]
fn row_03_hs256_with_the_public_key_as_secret_is_refused() {
    let f = Fixture::new();
    let public = f.dpe.public_key();
    let jwk_json = public.content_json();
    let pem = public
        .point()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    let raw = public.point().to_encoded_point(false).as_bytes()[1..].to_vec();
    for secret in [jwk_json.into_bytes(), pem.into_bytes(), raw] {
        let signer = josekit::jws::HS256.signer_from_bytes(&secret).unwrap();
        let token = forge_with(&signer, &with_alg(f.dpe.kid(), "HS256"), &claims(json!({})));
        assert_eq!(f.reason(&token), "alg_refused");
    }
}

#[test]
fn row_04_other_algorithms_are_refused() {
    let f = Fixture::new();
    let kid = f.dpe.kid();
    let body = claims(json!({}));
    let rsa = josekit::jws::RS256.generate_key_pair(2048).unwrap();
    let rs256 = josekit::jws::RS256
        .signer_from_der(rsa.to_der_private_key())
        .unwrap();
    let pss = josekit::jws::PS256.generate_key_pair(2048).unwrap();
    let ps256 = josekit::jws::PS256
        .signer_from_der(pss.to_der_private_key())
        .unwrap();
    let p384 = josekit::jws::ES384.generate_key_pair().unwrap();
    let es384 = josekit::jws::ES384
        .signer_from_der(p384.to_der_private_key())
        .unwrap();
    let p521 = josekit::jws::ES512.generate_key_pair().unwrap();
    let es512 = josekit::jws::ES512
        .signer_from_der(p521.to_der_private_key())
        .unwrap();
    let ed = josekit::jws::EdDSA
        .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
        .unwrap();
    let eddsa = josekit::jws::EdDSA
        .signer_from_der(ed.to_der_private_key())
        .unwrap();
    let signers: [(&str, &dyn JwsSigner); 5] = [
        ("RS256", &rs256),
        ("PS256", &ps256),
        ("ES384", &es384),
        ("ES512", &es512),
        ("EdDSA", &eddsa),
    ];
    for (alg, signer) in signers {
        let token = forge_with(signer, &with_alg(kid, alg), &body);
        assert_eq!(f.reason(&token), "alg_refused", "{alg}");
    }
    // Near misses of the one accepted spelling.
    for alg in [
        "es256",
        "ES256 ",
        " ES256",
        "ES256\u{0}",
        "ES2560",
        "ES256K",
    ] {
        let token = forge(&with_alg(kid, alg), &body, &f.dpe);
        assert_eq!(f.reason(&token), "alg_refused", "{alg:?}");
    }
}

#[test]
fn row_05_alg_missing_not_a_string_or_twice() {
    let f = Fixture::new();
    let kid = f.dpe.kid();
    let body = claims(json!({}));
    let missing = json!({"typ": "JWT", "kid": kid}).to_string();
    assert_eq!(f.reason(&forge(&missing, &body, &f.dpe)), "missing_alg");
    for alg in [
        json!(256),
        json!(["ES256"]),
        json!({"ES256": true}),
        json!(null),
        json!(true),
    ] {
        let odd = json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string();
        assert_eq!(
            f.reason(&forge(&odd, &body, &f.dpe)),
            "alg_refused",
            "{alg}"
        );
    }
    for twice in [
        format!(r#"{{"alg":"ES256","alg":"ES256","typ":"JWT","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"none","alg":"ES256","typ":"JWT","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","\u0061lg":"HS256"}}"#),
    ] {
        assert_eq!(
            f.reason(&forge(&twice, &body, &f.dpe)),
            "invalid_header",
            "{twice}"
        );
    }
}

#[test]
fn row_06_keys_offered_by_the_token_are_refused() {
    let f = Fixture::new();
    let attacker = GeneratorKey::generate();
    let embedded: Value = serde_json::from_str(&attacker.public_key().content_json()).unwrap();
    let body = claims(json!({}));
    for (member, value) in [
        ("jwk", embedded),
        ("jku", json!("https://attacker.invalid/keys.json")),
        ("x5u", json!("https://attacker.invalid/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["exp"])),
    ] {
        // Even with the victim's kid and the attacker's signature, or with the attacker's own kid.
        for kid in [f.dpe.kid(), attacker.kid()] {
            let mut header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
            header[member] = value.clone();
            let token = forge(&header.to_string(), &body, &attacker);
            assert_eq!(f.reason(&token), "forbidden_header_member", "{member}");
        }
        // A real peer's otherwise valid token with the member is refused too.
        let mut header = json!({"alg": "ES256", "typ": "JWT", "kid": f.dpe.kid()});
        header[member] = value;
        let err = f
            .verifier
            .verify(&[format!("Bearer {}", forge(&header.to_string(), &body, &f.dpe)).as_bytes()])
            .unwrap_err();
        assert!(
            matches!(err.kind(), AuthErrorKind::ForbiddenHeaderMember { member: m } if *m == member)
        );
    }
}

#[test]
fn row_07_kid_missing_unknown_or_revoked() {
    let f = Fixture::new();
    let body = claims(json!({}));
    let no_kid = json!({"alg": "ES256", "typ": "JWT"}).to_string();
    assert_eq!(f.reason(&forge(&no_kid, &body, &f.dpe)), "missing_kid");
    let numeric = json!({"alg": "ES256", "typ": "JWT", "kid": 7}).to_string();
    assert_eq!(f.reason(&forge(&numeric, &body, &f.dpe)), "invalid_kid");
    let stranger = GeneratorKey::generate();
    assert_eq!(
        f.reason(&forge(&header(stranger.kid()), &body, &stranger)),
        "unknown_kid"
    );
    assert_eq!(
        f.reason(&forge(&header(f.old.kid()), &body, &f.old)),
        "revoked_key"
    );
}

#[test]
fn row_08_kid_of_one_deployment_signed_by_another() {
    let f = Fixture::new();
    let token = forge(&header(f.dpe.kid()), &claims(json!({})), &f.plain);
    assert_eq!(f.reason(&token), "bad_signature");
    let token = forge(&header(f.plain.kid()), &claims(json!({})), &f.dpe);
    assert_eq!(f.reason(&token), "bad_signature");
}

#[test]
fn row_09_kid_matches_exactly_only() {
    let f = Fixture::new();
    let body = claims(json!({}));
    let real = f.dpe.kid();
    let variants = [
        format!("../{real}"),
        format!("{real}/../{real}"),
        format!("{real}\u{0}"),
        format!("\u{0}{real}"),
        real.to_uppercase(),
        real.to_lowercase(),
        format!(" {real}"),
        format!("{real} "),
        format!("{real}="),
        "x".repeat(5000),
    ];
    for kid in variants {
        assert_ne!(kid, real);
        let token = forge(&header(&kid), &body, &f.dpe);
        assert_eq!(f.reason(&token), "unknown_kid", "{kid:?}");
    }
    // 10 KB of kid makes the value too large before anything is decoded.
    let token = forge(&header(&"k".repeat(10 * 1024)), &body, &f.dpe);
    assert_eq!(f.reason(&token), "token_too_large");
    // The kid reported for logs is escaped and bounded.
    let hostile = format!("{}\n{}", "a".repeat(10), "b".repeat(5000));
    let err = f
        .verifier
        .verify(&[format!("Bearer {}", forge(&header(&hostile), &body, &f.dpe)).as_bytes()])
        .unwrap_err();
    let logged = err.kid().unwrap();
    assert!(logged.starts_with("aaaaaaaaaa\\nbbb"), "{logged}");
    assert!(logged.chars().count() <= 64 + 2, "{logged}");
    assert!(!logged.contains('\n'));
}

#[test]
fn row_10_typ_other_than_jwt() {
    let f = Fixture::new();
    let body = claims(json!({}));
    for typ in [
        json!("jwt"),
        json!("JWS"),
        json!("at+jwt"),
        json!("JWT "),
        json!(""),
        json!(1),
    ] {
        let header = json!({"alg": "ES256", "typ": typ, "kid": f.dpe.kid()}).to_string();
        assert_eq!(f.reason(&forge(&header, &body, &f.dpe)), "bad_typ", "{typ}");
    }
    let untyped = json!({"alg": "ES256", "kid": f.dpe.kid()}).to_string();
    assert_eq!(f.reason(&forge(&untyped, &body, &f.dpe)), "accepted");
}

#[test]
fn row_11_time_claims() {
    let f = Fixture::new();
    for claim in ["iat", "nbf", "exp"] {
        assert_eq!(
            f.reason(&f.token(json!({claim: null}))),
            "missing_time_claim",
            "{claim}"
        );
        for bad in [
            json!(NOW.to_string()),
            json!(-1),
            json!(1.5e9),
            json!(u64::MAX),
            json!(true),
            json!([NOW]),
        ] {
            assert_eq!(
                f.reason(&f.token(json!({claim: bad}))),
                "invalid_time_claim",
                "{claim}={bad}"
            );
        }
    }
    // In the future beyond the skew.
    assert_eq!(
        f.reason(&f.token(json!({"iat": NOW + 61, "nbf": NOW, "exp": NOW + 100}))),
        "not_yet_valid"
    );
    assert_eq!(
        f.reason(&f.token(json!({"nbf": NOW + 61, "exp": NOW + 100}))),
        "not_yet_valid"
    );
    // Within the skew.
    assert_eq!(
        f.reason(&f.token(json!({"iat": NOW + 60, "nbf": NOW + 60, "exp": NOW + 75}))),
        "accepted"
    );
    // Lifetime over 4 hours, even while current.
    assert_eq!(
        f.reason(&f.token(json!({"exp": NOW + 4 * 3600 + 1}))),
        "lifetime_too_long"
    );
    assert_eq!(
        f.reason(&f.token(json!({"exp": NOW + 4 * 3600}))),
        "accepted"
    );
    // Long expired.
    assert_eq!(
        f.reason(&f.token(json!({"iat": 1, "nbf": 1, "exp": 2}))),
        "expired"
    );
    // Huge values do not overflow.
    assert_eq!(
        f.reason(&f.token(json!({"exp": i64::MAX}))),
        "lifetime_too_long"
    );
}

#[test]
fn row_12_expiry_boundary_is_exp_plus_skew() {
    let f = Fixture::new();
    let token = f.token(json!({}));
    let exp = NOW + LIFETIME;
    f.clock.set(exp + 60);
    assert_eq!(f.reason(&token), "accepted");
    f.clock.set(exp + 61);
    assert_eq!(f.reason(&token), "expired");
    // Same boundary on a fresh verifier (no cache involved).
    let g = Fixture::new();
    let token = g.token(json!({}));
    g.clock.set(exp + 61);
    assert_eq!(g.reason(&token), "expired");
    g.clock.set(exp + 60);
    assert_eq!(g.reason(&token), "accepted");
}

#[test]
fn row_13_audience() {
    let f = Fixture::new();
    assert_eq!(f.reason(&f.token(json!({"aud": null}))), "missing_aud");
    assert_eq!(f.reason(&f.token(json!({"aud": "dpe"}))), "wrong_aud");
    assert_eq!(f.reason(&f.token(json!({"aud": "DPM"}))), "wrong_aud");
    assert_eq!(f.reason(&f.token(json!({"aud": []}))), "wrong_aud");
    assert_eq!(
        f.reason(&f.token(json!({"aud": ["dpe", "x"]}))),
        "wrong_aud"
    );
    for bad in [
        json!(5),
        json!({"dpm": true}),
        json!(["dpm", 1]),
        json!(true),
    ] {
        assert_eq!(
            f.reason(&f.token(json!({"aud": bad}))),
            "invalid_aud",
            "{bad}"
        );
    }
    assert_eq!(
        f.reason(&f.token(json!({"aud": ["dpe", "dpm"]}))),
        "accepted"
    );

    let lenient = Fixture::with_policy(VerifyPolicy {
        require_audience: false,
        ..VerifyPolicy::new("dpm")
    });
    assert_eq!(
        lenient.reason(&lenient.token(json!({"aud": null}))),
        "accepted"
    );
    assert_eq!(
        lenient.reason(&lenient.token(json!({"aud": "dpe"}))),
        "wrong_aud"
    );
    assert_eq!(
        lenient.reason(&lenient.token(json!({"aud": 5}))),
        "invalid_aud"
    );
}

#[test]
fn row_13_a_product_peer_may_leave_aud_out_but_not_name_another_module() {
    let f = Fixture::with_profile(VerifyPolicy::new("dpm"), TokenProfile::Product);
    assert_eq!(f.reason(&f.token(json!({"aud": null}))), "accepted");
    assert_eq!(f.reason(&f.token(json!({"aud": "dpm"}))), "accepted");
    assert_eq!(f.reason(&f.token(json!({"aud": ["x", "dpm"]}))), "accepted");
    assert_eq!(f.reason(&f.token(json!({"aud": "dpe"}))), "wrong_aud");
    assert_eq!(f.reason(&f.token(json!({"aud": []}))), "wrong_aud");
    assert_eq!(f.reason(&f.token(json!({"aud": 5}))), "invalid_aud");
    // Only dpe-dev is a product peer: the strict plain-dev still needs aud.
    let body = claims(json!({"aud": null}));
    assert_eq!(
        f.reason(&forge(&header(f.plain.kid()), &body, &f.plain)),
        "missing_aud"
    );
    let caller = f.accept(&f.token(json!({"aud": null})));
    assert_eq!(caller.service().id, "dpe-dev");
    assert_eq!(caller.service().roles, ["IMPERSONATION"]);
}

#[test]
fn row_13_every_other_check_still_applies_to_a_product_peer() {
    let f = Fixture::with_profile(VerifyPolicy::new("dpm"), TokenProfile::Product);
    let no_aud = |extra: Value| {
        let mut extra = extra;
        extra["aud"] = Value::Null;
        f.token(extra)
    };
    assert_eq!(f.reason(&no_aud(json!({"exp": NOW - 61}))), "expired");
    assert_eq!(
        f.reason(&no_aud(
            json!({"iat": NOW + 61, "nbf": NOW + 61, "exp": NOW + 70})
        )),
        "not_yet_valid"
    );
    assert_eq!(
        f.reason(&no_aud(json!({"exp": NOW + 5 * 60 * 60}))),
        "lifetime_too_long"
    );
    assert_eq!(
        f.reason(&no_aud(json!({"nbf": null}))),
        "missing_time_claim"
    );
    assert_eq!(f.reason(&no_aud(json!({"jti": 7}))), "invalid_jti");
    assert_eq!(f.reason(&no_aud(json!({"usr": "root"}))), "invalid_usr");
    let body = claims(json!({"aud": null}));
    let typed = json!({"alg": "ES256", "typ": "at+jwt", "kid": f.dpe.kid()}).to_string();
    assert_eq!(f.reason(&forge(&typed, &body, &f.dpe)), "bad_typ");
    let no_kid = json!({"alg": "ES256", "typ": "JWT"}).to_string();
    assert_eq!(f.reason(&forge(&no_kid, &body, &f.dpe)), "missing_kid");
    assert_eq!(
        f.reason(&forge(&header(f.dpe.kid()), &body, &f.plain)),
        "bad_signature"
    );
}

#[test]
fn require_audience_false_still_admits_every_peer_without_aud() {
    for profile in TokenProfile::ALL {
        let f = Fixture::with_profile(
            VerifyPolicy {
                require_audience: false,
                ..VerifyPolicy::new("dpm")
            },
            profile,
        );
        let body = claims(json!({"aud": null}));
        assert_eq!(f.reason(&f.token(json!({"aud": null}))), "accepted");
        assert_eq!(
            f.reason(&forge(&header(f.plain.kid()), &body, &f.plain)),
            "accepted",
            "{profile}: the strict plain-dev too"
        );
        assert_eq!(f.reason(&f.token(json!({"aud": "dpe"}))), "wrong_aud");
    }
}

#[test]
fn row_14_altered_bytes_and_malformed_signatures() {
    let f = Fixture::new();
    let token = f.token(json!({}));
    let parts = segments(&token);
    let signature = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    let with_signature = |sig: &[u8]| format!("{}.{}.{}", parts[0], parts[1], b64(sig));

    // Payload altered (still valid JSON and base64), signature kept.
    let other = b64(claims(json!({"jti": "j-2"})));
    assert_eq!(
        f.reason(&format!("{}.{other}.{}", parts[0], parts[2])),
        "bad_signature"
    );
    // Header altered.
    let other = b64(json!({"kid": f.dpe.kid(), "alg": "ES256"}).to_string());
    assert_eq!(
        f.reason(&format!("{other}.{}.{}", parts[1], parts[2])),
        "bad_signature"
    );
    // Every single-bit flip in the signature.
    for bit in 0..SIGNATURE_BYTES * 8 {
        let mut flipped = signature.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert_ne!(f.reason(&with_signature(&flipped)), "accepted", "bit {bit}");
    }
    assert_eq!(
        f.reason(&with_signature(&signature[..63])),
        "bad_signature_length"
    );
    let mut longer = signature.clone();
    longer.push(0);
    assert_eq!(f.reason(&with_signature(&longer)), "bad_signature_length");
    let der = Signature::from_slice(&signature).unwrap().to_der();
    assert_eq!(
        f.reason(&with_signature(der.as_bytes())),
        "bad_signature_length"
    );
    let mut r_zero = signature.clone();
    r_zero[..32].fill(0);
    assert_eq!(f.reason(&with_signature(&r_zero)), "bad_signature");
    let mut s_zero = signature.clone();
    s_zero[32..].fill(0);
    assert_eq!(f.reason(&with_signature(&s_zero)), "bad_signature");
    assert_eq!(f.reason(&with_signature(&[0; 64])), "bad_signature");
    // r = n (the group order) is out of range.
    let order = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let mut r_order = signature.clone();
    r_order[..32].copy_from_slice(&order);
    assert_eq!(f.reason(&with_signature(&r_order)), "bad_signature");
    // The untouched token still passes: the checks above did not depend on luck.
    assert_eq!(f.reason(&token), "accepted");
}

#[test]
fn row_15_segment_and_base64_strictness() {
    let f = Fixture::new();
    let token = f.token(json!({}));
    let p = segments(&token);
    let cases = [
        (format!("{}=.{}.{}", p[0], p[1], p[2]), "bad_base64"),
        (format!("{}.{}.{}=", p[0], p[1], p[2]), "bad_base64"),
        (format!("{}.{}==.{}", p[0], p[1], p[2]), "bad_base64"),
        (format!("+{}.{}.{}", &p[0][1..], p[1], p[2]), "bad_base64"),
        (
            format!("{}.{}/.{}", p[0], &p[1][..p[1].len() - 1], p[2]),
            "bad_base64",
        ),
        (format!("{}.{} .{}", p[0], p[1], p[2]), "bad_base64"),
        (format!("{}.{}\n.{}", p[0], p[1], p[2]), "bad_base64"),
        (format!("{}.{}\t.{}", p[0], p[1], p[2]), "bad_base64"),
        // "QR" would decode to "A" if stray trailing bits were tolerated.
        (format!("{}.QR.{}", p[0], p[2]), "bad_base64"),
        (format!("{}.{}", p[0], p[1]), "segment_count"),
        (
            format!("{}.{}.{}.{}", p[0], p[1], p[2], p[2]),
            "segment_count",
        ),
        (
            format!("{}.{}.{}.{}.{}", p[0], p[1], p[2], p[0], p[1]),
            "segment_count",
        ),
        (p[0].clone(), "segment_count"),
        (".".repeat(8000), "segment_count"),
        (format!(".{}.{}", p[1], p[2]), "empty_segment"),
        (format!("{}..{}", p[0], p[2]), "empty_segment"),
        (format!("{}.{}.", p[0], p[1]), "empty_segment"),
        ("..".to_owned(), "empty_segment"),
    ];
    for (token, expected) in cases {
        assert_eq!(f.reason(&token), expected, "{token:?}");
    }
    // Standard-alphabet base64 of the same bytes is refused when it differs.
    let standard = base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(URL_SAFE_NO_PAD.decode(&p[2]).unwrap());
    if standard != p[2] {
        assert_eq!(
            f.reason(&format!("{}.{}.{standard}", p[0], p[1])),
            "bad_base64"
        );
    }
}

#[test]
fn row_16_over_eight_kib_is_refused_before_decoding() {
    let f = Fixture::new();
    let scheme = "Internal-jwt ";
    let at_limit = format!("{scheme}{}", "a".repeat(MAX_TOKEN_BYTES - scheme.len()));
    assert_eq!(f.reason_of(&[at_limit.as_bytes()]), "segment_count");
    let over = format!("{scheme}{}", "a".repeat(MAX_TOKEN_BYTES - scheme.len() + 1));
    assert_eq!(f.reason_of(&[over.as_bytes()]), "token_too_large");
    // Size is checked before the scheme, on the raw bytes.
    assert_eq!(
        f.reason_of(&[&[0xff; MAX_TOKEN_BYTES + 1]]),
        "token_too_large"
    );
    let big_claims = f.token(json!({"pad": "x".repeat(7000)}));
    assert_eq!(f.reason(&big_claims), "token_too_large");
}

#[test]
fn row_17_strict_json_in_header_and_claims() {
    let f = Fixture::new();
    let kid = f.dpe.kid();
    let body = claims(json!({}));
    let dup_header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","kid":"{kid}"}}"#);
    assert_eq!(
        f.reason(&forge(&dup_header, &body, &f.dpe)),
        "invalid_header"
    );
    let dup_claims = format!(
        r#"{{"iat":{NOW},"nbf":{NOW},"exp":{},"aud":"dpm","exp":{}}}"#,
        NOW + 15,
        NOW + 3600
    );
    assert_eq!(
        f.reason(&forge(&header(kid), &dup_claims, &f.dpe)),
        "invalid_claims"
    );
    let nested_dup = format!(
        r#"{{"iat":{NOW},"nbf":{NOW},"exp":{},"aud":"dpm","usr":{{"id":"1","id":"2","username":"u","roles":[]}}}}"#,
        NOW + 15
    );
    assert_eq!(
        f.reason(&forge(&header(kid), &nested_dup, &f.dpe)),
        "invalid_claims"
    );
    // Invalid UTF-8 inside a JSON string.
    let mut bad_header = header(kid).into_bytes();
    bad_header.splice(9..9, [0xc3, 0x28]);
    assert_eq!(
        f.reason(&forge_bytes(&bad_header, body.as_bytes(), &f.dpe)),
        "invalid_header"
    );
    let mut bad_claims = body.clone().into_bytes();
    let at = bad_claims.len() - 2;
    bad_claims.splice(at..at, [0xff]);
    assert_eq!(
        f.reason(&forge_bytes(header(kid).as_bytes(), &bad_claims, &f.dpe)),
        "invalid_claims"
    );
    // Deep nesting.
    let deep = format!(
        r#"{{"iat":{NOW},"nbf":{NOW},"exp":{},"aud":"dpm","x":{}{}}}"#,
        NOW + 15,
        "[".repeat(2000),
        "]".repeat(2000)
    );
    assert_eq!(
        f.reason(&forge(&header(kid), &deep, &f.dpe)),
        "invalid_claims"
    );
    let deep_header = format!(
        r#"{{"alg":"ES256","kid":"{kid}","x":{}{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    assert_eq!(
        f.reason(&forge(&deep_header, &body, &f.dpe)),
        "invalid_header"
    );
    // Not objects, trailing data.
    assert_eq!(
        f.reason(&forge(&header(kid), "[1]", &f.dpe)),
        "invalid_claims"
    );
    assert_eq!(
        f.reason(&forge(&header(kid), &format!("{body} {{}}"), &f.dpe)),
        "invalid_claims"
    );
    assert_eq!(
        f.reason(&forge("\"ES256\"", &body, &f.dpe)),
        "invalid_header"
    );
}

#[test]
fn row_18_roles_and_module_in_the_token_are_ignored() {
    let f = Fixture::new();
    let token = forge(
        &header(f.plain.kid()),
        &claims(
            json!({"roles": ["IMPERSONATION", "ADMIN"], "module": "dpm", "sub": "dpm-prod", "id": "dpm-prod"}),
        ),
        &f.plain,
    );
    let caller = f.accept(&token);
    assert_eq!(
        caller.service(),
        &ServiceIdentity {
            module: "dpe".into(),
            id: "plain-dev".into(),
            roles: vec![],
        }
    );
}

/// U11: `usr` from a deployment without the impersonation role, `usr` without `id` or `username`,
/// and `roles` that are not an array are refused (end to end: `tests/hostile.rs`, row 19).
#[test]
fn row_19_usr_needs_the_impersonation_role() {
    let f = Fixture::new();
    let usr = json!({"id": "42", "username": "alice", "roles": ["ADMIN"]});
    let from_plain = forge(
        &header(f.plain.kid()),
        &claims(json!({"usr": usr})),
        &f.plain,
    );
    assert_eq!(f.reason(&from_plain), "impersonation_not_allowed");
    let caller = f.accept(&f.token(json!({"usr": usr})));
    assert_eq!(
        caller.user(),
        Some(&ImpersonatedUser {
            id: "42".into(),
            username: "alice".into(),
            roles: vec!["ADMIN".into()],
        })
    );
    assert_eq!(
        caller.to_string(),
        "ImpersonatedUserIdentity(id=42, roles=[ADMIN], serviceIdentity=ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION]))"
    );
    for bad in [
        json!("alice"),
        json!({"id": "42", "roles": []}),
        json!({"username": "alice", "roles": []}),
        json!({"id": "42", "username": "alice"}),
        json!({"id": 42, "username": "alice", "roles": []}),
        json!({"id": "42", "username": "alice", "roles": "ADMIN"}),
        json!(null),
    ] {
        let token = f.token(json!({"usr": bad}));
        let expected = if bad.is_null() {
            "accepted"
        } else {
            "invalid_usr"
        };
        assert_eq!(f.reason(&token), expected, "{bad}");
    }
    // A custom role name from configuration is honoured.
    let custom = Fixture::with_policy(VerifyPolicy {
        impersonation_role: "ACT_AS".into(),
        ..VerifyPolicy::new("dpm")
    });
    assert_eq!(
        custom.reason(&custom.token(json!({"usr": usr}))),
        "impersonation_not_allowed"
    );
}

#[test]
fn cache_hits_misses_and_minted_tokens_are_counted() {
    let f = Fixture::new();
    let issuer = TokenIssuer::new(
        GeneratorKey::from_base64(&f.dpe.to_base64()).unwrap(),
        Duration::from_secs(15),
        f.clock.clone(),
    )
    .unwrap();
    let token = issuer.token_for("dpm");
    assert_eq!(issuer.token_for("dpm"), token, "reused, not minted again");
    assert_eq!(issuer.minted(), 1);
    let before = f.verifier.cache_stats();
    assert_eq!(f.reason(&token), "accepted");
    assert_eq!(f.reason(&token), "accepted");
    assert_eq!(f.reason(&token), "accepted");
    assert_eq!(f.reason(&issuer.mint("dpe", None)), "wrong_aud");
    assert_eq!(issuer.minted(), 2);
    let after = f.verifier.cache_stats();
    assert_eq!(after.hits - before.hits, 2);
    assert_eq!(after.misses - before.misses, 2);
}

#[test]
fn each_key_remembers_when_it_last_proved_a_call() {
    let f = Fixture::new();
    let issuer = TokenIssuer::new(
        GeneratorKey::from_base64(&f.dpe.to_base64()).unwrap(),
        Duration::from_secs(15),
        f.clock.clone(),
    )
    .unwrap();
    assert!(f.verifier.keys_last_used().is_empty());
    let token = issuer.token_for("dpm");
    assert_eq!(f.reason(&token), "accepted");
    assert_eq!(f.verifier.keys_last_used()[f.dpe.kid()], NOW);
    // A cache hit moves it too; a refusal does not.
    f.clock.advance(5);
    assert_eq!(f.reason(&token), "accepted");
    assert_eq!(f.verifier.keys_last_used()[f.dpe.kid()], NOW + 5);
    assert_eq!(f.reason(&issuer.mint("dpe", None)), "wrong_aud");
    assert_eq!(f.verifier.keys_last_used().len(), 1);
    // A key a reload removes is forgotten.
    f.verifier.replace_deployments(Deployments::empty());
    assert!(f.verifier.keys_last_used().is_empty());
}

#[test]
fn row_20_revocation_reaches_cached_tokens_at_once() {
    let f = Fixture::new();
    let issuer = TokenIssuer::new(
        GeneratorKey::from_base64(&f.dpe.to_base64()).unwrap(),
        Duration::from_secs(15),
        f.clock.clone(),
    )
    .unwrap();
    let token = issuer.token_for("dpm");
    assert_eq!(f.reason(&token), "accepted");
    assert_eq!(f.verifier.cached(), 1);
    assert_eq!(f.reason(&token), "accepted");

    let revoked = Deployments::new(deployments(&f.dpe, &f.plain, &f.old, true)).unwrap();
    let diff = f.verifier.replace_deployments(revoked);
    assert_eq!(diff.revoked, [format!("dpe-dev/key1 ({})", f.dpe.kid())]);
    assert!(diff.added.is_empty() && diff.removed.is_empty() && diff.reinstated.is_empty());
    assert_eq!(f.verifier.cached(), 0);
    assert_eq!(f.reason(&token), "revoked_key");
    assert_eq!(f.verifier.cached(), 0);

    // Reinstating brings it back; empty deployments refuse everything.
    let again = Deployments::new(deployments(&f.dpe, &f.plain, &f.old, false)).unwrap();
    assert_eq!(f.verifier.replace_deployments(again).reinstated.len(), 1);
    assert_eq!(f.reason(&token), "accepted");
    let diff = f.verifier.replace_deployments(Deployments::empty());
    assert_eq!(diff.removed.len(), 3);
    assert_eq!(f.reason(&token), "unknown_kid");
}

#[test]
fn row_21_a_token_for_dpe_is_refused_by_dpm() {
    let f = Fixture::new();
    let issuer = TokenIssuer::new(
        GeneratorKey::from_base64(&f.dpe.to_base64()).unwrap(),
        Duration::from_secs(15),
        f.clock.clone(),
    )
    .unwrap();
    assert_eq!(f.reason(&issuer.token_for("dpe")), "wrong_aud");
    assert_eq!(f.reason(&issuer.token_for("dpm")), "accepted");
}

#[test]
fn cache_hits_still_expire() {
    let f = Fixture::new();
    let token = f.token(json!({}));
    assert_eq!(f.reason(&token), "accepted");
    assert_eq!(f.verifier.cached(), 1);
    f.clock.advance(LIFETIME + 60);
    assert_eq!(f.reason(&token), "accepted");
    f.clock.advance(1);
    assert_eq!(f.reason(&token), "expired");
    assert_eq!(f.verifier.cached(), 0);
}

#[test]
fn cache_is_bounded() {
    let f = Fixture::new();
    for n in 0..VERIFIED_CACHE_CAPACITY + 10 {
        let token = f.token(json!({"jti": n.to_string()}));
        assert_eq!(f.reason(&token), "accepted");
    }
    assert_eq!(f.verifier.cached(), VERIFIED_CACHE_CAPACITY);
    // Once those have expired, inserting evicts them all.
    f.clock.advance(LIFETIME + 61);
    let fresh = forge(
        &header(f.dpe.kid()),
        &claims(
            json!({"iat": NOW + LIFETIME + 61, "nbf": NOW + LIFETIME + 61, "exp": NOW + 2 * LIFETIME + 61}),
        ),
        &f.dpe,
    );
    assert_eq!(f.reason(&fresh), "accepted");
    assert_eq!(f.verifier.cached(), 1);
}

#[test]
fn verify_uncached_runs_every_check_and_leaves_the_cache_alone() {
    let f = Fixture::new();
    let token = f.token(json!({}));
    let value = format!("Bearer {token}");
    assert!(f.verifier.verify_uncached(&[value.as_bytes()]).is_ok());
    assert_eq!(f.verifier.cached(), 0);
    // "e30" is base64url of "{}": a header without alg.
    let err = f
        .verifier
        .verify_uncached(&[b"Bearer e30.e30.AAAA"])
        .unwrap_err();
    assert_eq!(err.reason(), "missing_alg");
}

#[test]
fn mint_then_verify_round_trip_with_exact_header_and_claims() {
    let f = Fixture::new();
    let issuer = TokenIssuer::new(
        GeneratorKey::from_base64(&f.dpe.to_base64()).unwrap(),
        Duration::from_secs(15),
        f.clock.clone(),
    )
    .unwrap();
    assert_eq!(issuer.kid(), f.dpe.kid());
    let token = issuer.mint("dpm", None);
    let p = segments(&token);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p[0]).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "JWT", "kid": f.dpe.kid()})
    );
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p[1]).unwrap()).unwrap();
    assert_eq!(claims["iat"], json!(NOW));
    assert_eq!(claims["nbf"], json!(NOW));
    assert_eq!(claims["exp"], json!(NOW + 15));
    assert_eq!(claims["aud"], json!("dpm"));
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(jti).unwrap().get_version_num(), 4);
    assert!(claims.get("usr").is_none());
    // Independently checkable with p256 (not only with our own verifier).
    use p256::ecdsa::signature::Verifier as _;
    let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(&p[2]).unwrap()).unwrap();
    p256::ecdsa::VerifyingKey::from(*f.dpe.public_key().point())
        .verify(format!("{}.{}", p[0], p[1]).as_bytes(), &signature)
        .unwrap();
    let caller = f.accept(&token);
    assert_eq!(caller.jti(), jti);
    assert_eq!(caller.service().id, "dpe-dev");
    // Every mint is fresh.
    assert_ne!(issuer.mint("dpm", None), token);
}

#[test]
fn a_token_minted_for_a_product_peer_has_no_aud_and_the_strict_header() {
    let product = Fixture::with_profile(VerifyPolicy::new("dpm"), TokenProfile::Product);
    let issuer = TokenIssuer::new(
        GeneratorKey::from_base64(&product.dpe.to_base64()).unwrap(),
        Duration::from_secs(15),
        product.clock.clone(),
    )
    .unwrap();
    let token = issuer.mint_for_peer("dpm", TokenProfile::Product, None);
    let p = segments(&token);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p[0]).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "JWT", "kid": product.dpe.kid()})
    );
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p[1]).unwrap()).unwrap();
    let names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names.len(), 4, "{claims}");
    for name in ["iat", "nbf", "exp", "jti"] {
        assert!(names.contains(&name), "{name} in {claims}");
    }
    assert_eq!(claims["exp"], json!(NOW + 15));
    assert_eq!(product.accept(&token).service().id, "dpe-dev");
    // A strict receiver refuses it; the strict token of the same issuer carries aud.
    let strict = Fixture::new();
    let strict_issuer = TokenIssuer::new(
        GeneratorKey::from_base64(&strict.dpe.to_base64()).unwrap(),
        Duration::from_secs(15),
        strict.clock.clone(),
    )
    .unwrap();
    assert_eq!(
        strict.reason(&strict_issuer.mint_for_peer("dpm", TokenProfile::Product, None)),
        "missing_aud"
    );
    assert_eq!(
        strict.reason(&strict_issuer.mint_for_peer("dpm", TokenProfile::Strict, None)),
        "accepted"
    );
    // With a user, only aud is left out.
    let user = ImpersonatedUser {
        id: "7".into(),
        username: "bob".into(),
        roles: vec![],
    };
    let caller = product.accept(&issuer.mint_for_peer("dpm", TokenProfile::Product, Some(&user)));
    assert_eq!(caller.user(), Some(&user));
}

#[test]
fn reused_tokens_are_kept_apart_by_profile() {
    let f = Fixture::new();
    let issuer = TokenIssuer::new(
        GeneratorKey::from_base64(&f.dpe.to_base64()).unwrap(),
        Duration::from_secs(15),
        f.clock.clone(),
    )
    .unwrap();
    let strict = issuer.token_for("dpm");
    let product = issuer.token_for_peer("dpm", TokenProfile::Product);
    assert_ne!(product, strict);
    assert_eq!(issuer.token_for_peer("dpm", TokenProfile::Strict), strict);
    assert_eq!(issuer.token_for_peer("dpm", TokenProfile::Product), product);
    // The product token names no receiver, so every product peer gets the same one.
    assert_eq!(issuer.token_for_peer("dpe", TokenProfile::Product), product);
    assert_eq!(issuer.minted(), 2);
    assert_eq!(f.reason(&strict), "accepted");
    assert_eq!(f.reason(&product), "missing_aud");
    // Renewal and key replacement apply to both.
    f.clock.advance(10);
    let renewed = issuer.token_for_peer("dpm", TokenProfile::Product);
    assert_ne!(renewed, product);
    issuer.replace_key(&f.plain).unwrap();
    let after = issuer.token_for_peer("dpm", TokenProfile::Product);
    assert_ne!(after, renewed, "the old key's product token is dropped");
    assert_eq!(
        f.verifier
            .verify(&[format!("Bearer {after}").as_bytes()])
            .unwrap_err()
            .kid(),
        Some(f.plain.kid())
    );
}

#[test]
fn the_profile_of_a_deployment_follows_the_deployments_in_force() {
    let f = Fixture::with_profile(VerifyPolicy::new("dpm"), TokenProfile::Product);
    assert_eq!(
        f.verifier.token_profile_of("dpe-dev"),
        TokenProfile::Product
    );
    assert_eq!(
        f.verifier.token_profile_of("plain-dev"),
        TokenProfile::Strict
    );
    assert_eq!(f.verifier.token_profile_of("nobody"), TokenProfile::Strict);
    assert_eq!(
        f.verifier.token_profile_for_module("dpe"),
        TokenProfile::Strict,
        "dpe-dev is product, plain-dev and old-dev are not"
    );
    let token = f.token(json!({"aud": null}));
    assert_eq!(f.reason(&token), "accepted");
    // A reload that makes dpe-dev strict again refuses its cached audience-less token at once.
    let diff = f.verifier.replace_deployments(
        Deployments::new(deployments(&f.dpe, &f.plain, &f.old, false)).unwrap(),
    );
    assert_eq!(diff.token_profiles, ["dpe-dev:product->strict"]);
    assert_eq!(f.verifier.token_profile_of("dpe-dev"), TokenProfile::Strict);
    assert_eq!(f.reason(&token), "missing_aud");
}

#[test]
fn minted_usr_claim_round_trips() {
    let f = Fixture::new();
    let user = ImpersonatedUser {
        id: "7".into(),
        username: "bob \"the\" builder".into(),
        roles: vec!["A".into(), "B".into()],
    };
    let dpe = TokenIssuer::new(
        GeneratorKey::from_base64(&f.dpe.to_base64()).unwrap(),
        Duration::from_millis(1500),
        f.clock.clone(),
    )
    .unwrap();
    let caller = f.accept(&dpe.mint("dpm", Some(&user)));
    assert_eq!(caller.user(), Some(&user));
    let plain = TokenIssuer::new(
        GeneratorKey::from_base64(&f.plain.to_base64()).unwrap(),
        Duration::from_secs(15),
        f.clock.clone(),
    )
    .unwrap();
    assert_eq!(
        f.reason(&plain.mint("dpm", Some(&user))),
        "impersonation_not_allowed"
    );
}

#[test]
fn token_for_reuses_until_a_third_of_the_lifetime_is_left() {
    let clock = Arc::new(ManualClock::new(NOW));
    let issuer = TokenIssuer::new(
        GeneratorKey::generate(),
        Duration::from_secs(15),
        clock.clone(),
    )
    .unwrap();
    let first = issuer.token_for("dpm");
    clock.advance(9);
    assert_eq!(issuer.token_for("dpm"), first, "6 of 15 s left: reused");
    let other = issuer.token_for("dpe");
    assert_ne!(other, first, "one token per audience");
    clock.advance(1);
    let second = issuer.token_for("dpm");
    assert_ne!(second, first, "5 of 15 s left: renewed");
    assert_eq!(issuer.token_for("dpm"), second);
    // A clock that jumps back never hands out a token from the future.
    clock.set(NOW - 100);
    assert_ne!(issuer.token_for("dpm"), second);
    // Sub-second lifetimes round up to one second.
    let short = TokenIssuer::new(
        GeneratorKey::generate(),
        Duration::from_millis(1),
        clock.clone(),
    )
    .unwrap();
    assert_eq!(short.lifetime_secs, 1);
}

#[test]
fn concurrent_use_is_safe() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TokenVerifier>();
    assert_send_sync::<TokenIssuer>();
    let f = Arc::new(Fixture::new());
    let issuer = Arc::new(
        TokenIssuer::new(
            GeneratorKey::from_base64(&f.dpe.to_base64()).unwrap(),
            Duration::from_secs(15),
            f.clock.clone(),
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (f, issuer) = (Arc::clone(&f), Arc::clone(&issuer));
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let token = issuer.token_for("dpm");
                    assert_eq!(f.reason(&token), "accepted");
                    assert_eq!(f.reason(&issuer.mint("dpm", None)), "accepted");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn deployment_of_names_the_peer() {
    let f = Fixture::new();
    assert_eq!(
        f.verifier.deployment_of(f.dpe.kid()).as_deref(),
        Some("dpe-dev")
    );
    assert_eq!(
        f.verifier.deployment_of(f.old.kid()).as_deref(),
        Some("old-dev")
    );
    assert_eq!(f.verifier.deployment_of("nope"), None);
}

#[test]
fn refusals_reveal_no_token_and_reasons_are_distinct() {
    let f = Fixture::new();
    let token = f.token(json!({"aud": "dpe"}));
    let err = f
        .verifier
        .verify(&[format!("Bearer {token}").as_bytes()])
        .unwrap_err();
    assert_eq!(err.reason(), "wrong_aud");
    assert_eq!(err.kid(), Some(f.dpe.kid()));
    let text = err.to_string();
    for part in segments(&token) {
        assert!(!text.contains(&part));
    }
    assert!(!text.contains(f.dpe.kid()));
    // Every reason code is distinct.
    let codes = [
        AuthErrorKind::MissingAuthorization,
        AuthErrorKind::MultipleAuthorization { count: 2 },
        AuthErrorKind::EmptyAuthorization,
        AuthErrorKind::TokenTooLarge { len: 1 },
        AuthErrorKind::UnknownScheme,
        AuthErrorKind::MissingToken,
        AuthErrorKind::MalformedAuthorization,
        AuthErrorKind::SegmentCount { count: 1 },
        AuthErrorKind::EmptySegment,
        AuthErrorKind::BadBase64 { segment: "header" },
        AuthErrorKind::InvalidHeader {
            detail: StrictJsonError::TooDeep,
        },
        AuthErrorKind::MissingAlgorithm,
        AuthErrorKind::AlgorithmRefused { alg: String::new() },
        AuthErrorKind::ForbiddenHeaderMember { member: "jwk" },
        AuthErrorKind::BadType { typ: String::new() },
        AuthErrorKind::MissingKid,
        AuthErrorKind::InvalidKid,
        AuthErrorKind::UnknownKid,
        AuthErrorKind::AlgorithmKeyMismatch,
        AuthErrorKind::RevokedKey,
        AuthErrorKind::SignatureLength { len: 0 },
        AuthErrorKind::BadSignature,
        AuthErrorKind::InvalidClaims {
            detail: StrictJsonError::TooDeep,
        },
        AuthErrorKind::MissingTimeClaim { claim: "exp" },
        AuthErrorKind::InvalidTimeClaim { claim: "exp" },
        AuthErrorKind::NotYetValid { claim: "iat" },
        AuthErrorKind::Expired,
        AuthErrorKind::LifetimeTooLong,
        AuthErrorKind::MissingAudience,
        AuthErrorKind::InvalidAudience,
        AuthErrorKind::WrongAudience,
        AuthErrorKind::InvalidJti,
        AuthErrorKind::InvalidUser,
        AuthErrorKind::ImpersonationNotAllowed,
    ]
    .map(|e| e.reason());
    let unique: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len());
}

#[test]
fn no_mutation_of_a_valid_token_panics_or_passes() {
    let f = Fixture::new();
    let token = f.token(json!({"usr": {"id": "1", "username": "u", "roles": []}}));
    let bytes = format!("Bearer {token}").into_bytes();
    for at in 0..bytes.len() {
        for replacement in [b'A', b'.', b'=', b'+', 0u8, 0xff, b' '] {
            if bytes[at] == replacement {
                continue;
            }
            let mut mutated = bytes.clone();
            mutated[at] = replacement;
            let verdict = f.verifier.verify(&[&mutated]);
            // Only a change inside the scheme's letters (case) or base64 that decodes the same
            // could pass; none of these replacements do that.
            if at >= 7 {
                assert!(verdict.is_err(), "byte {at} -> {replacement}");
            }
        }
    }
}

#[test]
fn replacing_the_key_signs_with_the_new_one_at_once() {
    let f = Fixture::new();
    let issuer = TokenIssuer::new(
        GeneratorKey::from_base64(&f.plain.to_base64()).unwrap(),
        Duration::from_secs(15),
        f.clock.clone(),
    )
    .unwrap();
    let before = issuer.token_for("dpm");
    assert_eq!(f.reason(&before), "accepted");
    let old = issuer.replace_key(&f.dpe).unwrap();
    assert_eq!(old, f.plain.kid());
    assert_eq!(issuer.kid(), f.dpe.kid());
    let after = issuer.token_for("dpm");
    assert_ne!(
        after, before,
        "the reusable token of the old key is dropped"
    );
    assert_eq!(f.accept(&after).service().id, "dpe-dev");
}
