//! User tokens against `UserTokenVerifier`: the MicroProfile JWT TCK's token cases, Payara's vendor
//! settings, Keycloak's realm keys, and SECURITY rows U1–U7 and U12 at this layer. Keys are
//! generated at run time with OpenSSL; tokens are minted with josekit, an implementation
//! independent of this crate, or built by hand where josekit would refuse to.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jws::JwsSigner;
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use serde_json::{Map, Value, json};

use super::*;
use crate::clock::ManualClock;

const NOW: i64 = 1_700_000_000;
const KEYCLOAK_ISS: &str = "http://localhost:8029/auth/realms/ataccamaone";
const MP_ISS: &str = "https://server.example.com";

/// A generated key pair: the private PEM for josekit, the public forms for the verifier.
struct Pair {
    /// PKCS#8 PEM of the private key (what the Payara guide signs with).
    private_pem: Vec<u8>,
    /// SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`).
    public_pem: String,
    /// The public JWK members (`kty`, `n`/`e` or `crv`/`x`/`y`), without `kid`, `use`, `alg`.
    jwk: Map<String, Value>,
    /// The private key itself, for hostile variants.
    key: PKey<Private>,
}

impl Pair {
    fn rsa(bits: u32) -> Pair {
        let rsa = Rsa::generate(bits).unwrap();
        let jwk = json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        });
        Pair::from_key(PKey::from_rsa(rsa).unwrap(), jwk)
    }

    fn ec(curve: Nid) -> Pair {
        let group = EcGroup::from_curve_name(curve).unwrap();
        let ec = EcKey::generate(&group).unwrap();
        let (mut x, mut y) = (
            openssl::bn::BigNum::new().unwrap(),
            openssl::bn::BigNum::new().unwrap(),
        );
        let mut ctx = BigNumContext::new().unwrap();
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .unwrap();
        let size = i32::try_from(group.degree().div_ceil(8)).unwrap();
        let jwk = json!({
            "kty": "EC",
            "crv": if curve == Nid::X9_62_PRIME256V1 { "P-256" } else { "P-384" },
            "x": URL_SAFE_NO_PAD.encode(x.to_vec_padded(size).unwrap()),
            "y": URL_SAFE_NO_PAD.encode(y.to_vec_padded(size).unwrap()),
        });
        Pair::from_key(PKey::from_ec_key(ec).unwrap(), jwk)
    }

    fn from_key(key: PKey<Private>, jwk: Value) -> Pair {
        Pair {
            private_pem: key.private_key_to_pem_pkcs8().unwrap(),
            public_pem: String::from_utf8(key.public_key_to_pem().unwrap()).unwrap(),
            jwk: jwk.as_object().unwrap().clone(),
            key,
        }
    }

    /// The public JWK with extra members (`kid`, `use`, `alg`, …).
    fn jwk_with(&self, extra: Value) -> Value {
        let mut jwk = self.jwk.clone();
        jwk.extend(extra.as_object().unwrap().clone());
        Value::Object(jwk)
    }

    fn rs256(&self) -> Box<dyn JwsSigner> {
        Box::new(
            josekit::jws::RS256
                .signer_from_pem(&self.private_pem)
                .unwrap(),
        )
    }

    fn es256(&self) -> Box<dyn JwsSigner> {
        Box::new(
            josekit::jws::ES256
                .signer_from_pem(&self.private_pem)
                .unwrap(),
        )
    }
}

/// A token signed by josekit's signer: `header` members besides `alg` (the signer's), and
/// `claims` as given, however hostile (josekit's own JWT encoder would refuse some of them).
fn mint(header: Value, claims: Value, signer: &dyn JwsSigner) -> String {
    let mut header = header.as_object().unwrap().clone();
    header.insert("alg".into(), json!(signer.algorithm().name()));
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A token assembled by hand: exact header and claims text, and signature bytes.
fn forge(header: &str, claims: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The claims of a fresh Keycloak access token, as the realm issues it.
fn keycloak_claims() -> Value {
    json!({
        "exp": NOW + 300,
        "iat": NOW,
        "jti": "onrtro:03bc8dd8",
        "iss": KEYCLOAK_ISS,
        "aud": "account",
        "sub": "f2a1c0de-0000-4000-8000-000000000001",
        "typ": "Bearer",
        "azp": "dpm-webapp-public-client",
        "realm_access": {"roles": ["offline_access", "DPM_ADMIN", "default-roles-ataccamaone"]},
        "resource_access": {"account": {"roles": ["manage-account"]}},
        "groups": ["FROM_GROUPS"],
        "scope": "profile email",
        "preferred_username": "alice"
    })
}

/// The TCK's `Token1.json` as its `TokenUtils` finishes it: `iat = auth_time = now`,
/// `exp = now + 300`.
fn tck_claims() -> Value {
    json!({
        "iss": MP_ISS,
        "jti": "a-123",
        "sub": "24400320",
        "upn": "jdoe@example.com",
        "preferred_username": "jdoe",
        "aud": "s6BhdRkqt3",
        "exp": NOW + 300,
        "iat": NOW,
        "auth_time": NOW,
        "roles": ["Echoer"],
        "groups": ["Echoer", "Tester", "group1", "group2"],
        "realm_access": {"roles": ["FROM_REALM_ACCESS"]}
    })
}

/// `claims` with members replaced (`null` removes one).
fn with(claims: &Value, changes: Value) -> Value {
    let mut claims = claims.as_object().unwrap().clone();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.remove(name);
        } else {
            claims.insert(name.clone(), value.clone());
        }
    }
    Value::Object(claims)
}

/// One issuer with its keys and a clock.
struct Setup {
    clock: Arc<ManualClock>,
    verifier: UserTokenVerifier,
    keys: UserKeySet,
}

impl Setup {
    fn new(policy: UserIssuerPolicy, keys: &str) -> Setup {
        let keys = UserKeySet::parse(keys, policy.key_filter()).unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let verifier = UserTokenVerifier::new(vec![policy], clock.clone()).unwrap();
        Setup {
            clock,
            verifier,
            keys,
        }
    }

    fn mp(keys: &str) -> Setup {
        Setup::new(UserIssuerPolicy::micro_profile(MP_ISS), keys)
    }

    fn verify(&self, token: &str) -> Result<UserIdentity, UserTokenError> {
        let result = self.verifier.verify(token, |_| &self.keys);
        if let Err(error) = &result {
            // No refusal ever repeats the token or its signature.
            let text = error.to_string();
            let signature = token.rsplit('.').next().unwrap();
            assert!(!text.contains(token), "{text}");
            assert!(signature.len() < 8 || !text.contains(signature), "{text}");
        }
        result
    }

    /// "accepted" or the reason code (`not_user_token:<why>` when routing refused it).
    fn reason(&self, token: &str) -> String {
        match self.verify(token) {
            Ok(_) => "accepted".to_owned(),
            Err(UserTokenError::NotUserToken(not)) => format!("not_user_token:{}", not.reason()),
            Err(error) => error.reason().to_owned(),
        }
    }
}

/// Keycloak's realm: a JWK set with the signing key and, first, the RSA-OAEP encryption key.
struct Realm {
    signing: Pair,
    encryption: Pair,
    setup: Setup,
}

impl Realm {
    fn new() -> Realm {
        Realm::with_policy(UserIssuerPolicy::keycloak(keycloak_issuer(
            "http://localhost:8029/auth/",
            "ataccamaone",
        )))
    }

    fn with_policy(policy: UserIssuerPolicy) -> Realm {
        let (signing, encryption) = (Pair::rsa(2048), Pair::rsa(2048));
        let jwks = json!({"keys": [
            encryption.jwk_with(json!({"kid": "enc-1", "use": "enc", "alg": "RSA-OAEP", "x5c": ["MIIC"]})),
            signing.jwk_with(json!({"kid": "sig-1", "use": "sig", "alg": "RS256", "x5t": "abc"})),
        ]});
        let setup = Setup::new(policy, &jwks.to_string());
        Realm {
            signing,
            encryption,
            setup,
        }
    }

    fn token(&self, claims: &Value) -> String {
        mint(
            json!({"typ": "JWT", "kid": "sig-1"}),
            claims.clone(),
            &*self.signing.rs256(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Keycloak

/// U12: a Keycloak user's roles are `realm_access.roles` only (not `groups`, not
/// `resource_access`).
#[test]
fn a_keycloak_token_gives_the_user_and_realm_roles_only() {
    let realm = Realm::new();
    let user = realm
        .setup
        .verify(&realm.token(&keycloak_claims()))
        .unwrap();
    assert_eq!(user.id, "f2a1c0de-0000-4000-8000-000000000001");
    assert_eq!(user.username, "alice");
    // U12: `groups` and `resource_access` are not Keycloak roles.
    assert_eq!(
        user.roles,
        ["DPM_ADMIN", "default-roles-ataccamaone", "offline_access"]
    );
    assert_eq!(
        user.to_string(),
        "SimpleUserIdentity(id=f2a1c0de-0000-4000-8000-000000000001, roles=[DPM_ADMIN, default-roles-ataccamaone, offline_access])"
    );
    // No realm_access: a user without roles. Keycloak tokens need no iat.
    let bare = with(
        &keycloak_claims(),
        json!({"realm_access": null, "iat": null}),
    );
    assert!(
        realm
            .setup
            .verify(&realm.token(&bare))
            .unwrap()
            .roles
            .is_empty()
    );
    // typ absent is fine for Keycloak; another typ is not.
    let no_typ = mint(
        json!({"kid": "sig-1"}),
        keycloak_claims(),
        &*realm.signing.rs256(),
    );
    assert_eq!(realm.setup.reason(&no_typ), "accepted");
    let at_jwt = mint(
        json!({"typ": "at+jwt", "kid": "sig-1"}),
        keycloak_claims(),
        &*realm.signing.rs256(),
    );
    assert_eq!(realm.setup.reason(&at_jwt), "bad_typ");
}

#[test]
fn keycloak_jwks_keeps_the_signing_key_and_skips_the_encryption_key() {
    let realm = Realm::new();
    assert_eq!(realm.setup.keys.form(), KeyForm::Set);
    assert_eq!(realm.setup.keys.keys().len(), 1);
    assert_eq!(realm.setup.keys.skipped(), 1);
    assert_eq!(realm.setup.keys.keys()[0].kid(), Some("sig-1"));
    assert!(!realm.setup.keys.contains_kid("enc-1"));
    // A token "signed" with the encryption key under its kid names no signing key.
    let enc = mint(
        json!({"typ": "JWT", "kid": "enc-1"}),
        keycloak_claims(),
        &*realm.encryption.rs256(),
    );
    assert_eq!(realm.setup.reason(&enc), "unknown_kid");
    // Rotation: a kid the set does not hold yet is an unknown kid (the key source refetches).
    let rotated = mint(
        json!({"typ": "JWT", "kid": "sig-2"}),
        keycloak_claims(),
        &*realm.signing.rs256(),
    );
    assert_eq!(realm.setup.reason(&rotated), "unknown_kid");
    assert_eq!(
        realm
            .setup
            .verifier
            .route(&rotated, &mut TokenText::default())
            .unwrap()
            .kid(),
        Some("sig-2")
    );
    // Without a kid, every signing key is tried.
    let no_kid = mint(
        json!({"typ": "JWT"}),
        keycloak_claims(),
        &*realm.signing.rs256(),
    );
    assert_eq!(realm.setup.reason(&no_kid), "accepted");
    // Keycloak's filter: EC keys and RS512 keys are left out too; a set keeping nothing is refused.
    let ec = Pair::ec(Nid::X9_62_PRIME256V1);
    let only_others = json!({"keys": [
        ec.jwk_with(json!({"kid": "ec", "alg": "ES256"})),
        realm.signing.jwk_with(json!({"kid": "rs512", "alg": "RS512"})),
        realm.signing.jwk_with(json!({"kid": "enc", "use": "enc"})),
    ]});
    let refused = UserKeySet::parse(&only_others.to_string(), KeyFilter::KeycloakRealm);
    assert!(
        matches!(refused, Err(UserKeyError::Unusable { .. })),
        "{refused:?}"
    );
    // The same set for MicroProfile JWT keeps the EC key.
    let kept = UserKeySet::parse(&only_others.to_string(), KeyFilter::Signing).unwrap();
    assert_eq!(kept.keys().len(), 1);
    assert_eq!(kept.keys()[0].algorithm(), UserAlgorithm::Es256);
}

/// U6: a Keycloak token without `sub` or `preferred_username` is refused (MicroProfile JWT names:
/// `tck_invalid_tokens`).
#[test]
fn u6_keycloak_needs_sub_and_preferred_username() {
    let realm = Realm::new();
    for (change, reason) in [
        (json!({"sub": null}), "missing_name_claim"),
        (json!({"preferred_username": null}), "missing_name_claim"),
        (json!({"sub": 42}), "invalid_name_claim"),
        (json!({"preferred_username": ""}), "invalid_name_claim"),
        // upn does not stand in for Keycloak's names.
        (
            json!({"preferred_username": null, "upn": "alice"}),
            "missing_name_claim",
        ),
    ] {
        let token = realm.token(&with(&keycloak_claims(), change.clone()));
        assert_eq!(realm.setup.reason(&token), reason, "{change}");
    }
}

/// U5: with an audience configured, `aud` missing, another value or of the wrong JSON type is
/// refused.
#[test]
fn keycloak_audience_and_roles_in_the_wrong_shape() {
    let mut policy = UserIssuerPolicy::keycloak(KEYCLOAK_ISS);
    policy.audiences = vec!["dpm".into()];
    let realm = Realm::with_policy(policy);
    let claims = keycloak_claims();
    for (change, reason) in [
        (json!({"aud": "dpm"}), "accepted"),
        (json!({"aud": ["account", "dpm"]}), "accepted"),
        (json!({"aud": null}), "missing_aud"),
        (json!({"aud": "account"}), "wrong_aud"),
        (json!({"aud": 7}), "invalid_aud"),
        (json!({"aud": ["dpm", 7]}), "invalid_aud"),
        (
            json!({"aud": "dpm", "realm_access": ["DPM_ADMIN"]}),
            "invalid_roles",
        ),
        (
            json!({"aud": "dpm", "realm_access": {"roles": "DPM_ADMIN"}}),
            "invalid_roles",
        ),
        (
            json!({"aud": "dpm", "realm_access": {"roles": [1]}}),
            "invalid_roles",
        ),
    ] {
        let token = realm.token(&with(&claims, change.clone()));
        assert_eq!(realm.setup.reason(&token), reason, "{change}");
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile user tokens (docs/security.md): U1–U5, U7

/// U1: RS256 signed by a key not in the issuer's set, or with its payload altered, is refused.
#[test]
fn u1_another_signer_or_altered_bytes_are_refused() {
    let realm = Realm::new();
    let stranger = Pair::rsa(2048);
    let forged = mint(
        json!({"typ": "JWT", "kid": "sig-1"}),
        keycloak_claims(),
        &*stranger.rs256(),
    );
    assert_eq!(realm.setup.reason(&forged), "bad_signature");
    let good = realm.token(&keycloak_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let richer = with(
        &keycloak_claims(),
        json!({"realm_access": {"roles": ["SUPERUSER"]}}),
    );
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(richer.to_string()),
        parts[2]
    );
    assert_eq!(realm.setup.reason(&altered), "bad_signature");
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[10] ^= 1;
    let flipped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(&signature)
    );
    assert_eq!(realm.setup.reason(&flipped), "bad_signature");
    let truncated = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]);
    assert_eq!(realm.setup.reason(&truncated), "bad_signature");
    let padded = format!("{}.{}.{}=", parts[0], parts[1], parts[2]);
    assert_eq!(realm.setup.reason(&padded), "bad_base64");
}

/// U2: `none`, HS256 keyed with the issuer's public key (PEM, JWK, DER), PS256, RS512, and RS256
/// over an EC key are refused.
#[test]
fn u2_none_hmac_pss_rs512_and_a_key_of_the_wrong_type_are_refused() {
    let pair = Pair::rsa(2048);
    let setup = Setup::mp(&pair.public_pem);
    let claims = tck_claims().to_string();
    for alg in ["none", "None", "NONE"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        assert_eq!(
            setup.reason(&forge(&header, &claims, b"sig")),
            "alg_refused"
        );
        // Without a signature the token is not even three segments: not a user token.
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(&claims)
        );
        assert_eq!(setup.reason(&unsigned), "not_user_token:unreadable");
    }
    // HS256 keyed with the issuer's public key as PEM, as JWK JSON and as DER.
    let der = PKey::public_key_from_pem(pair.public_pem.as_bytes())
        .unwrap()
        .public_key_to_der()
        .unwrap();
    let jwk_text = Value::Object(pair.jwk.clone()).to_string();
    for secret in [pair.public_pem.as_bytes(), jwk_text.as_bytes(), &der] {
        let signer = josekit::jws::HS256.signer_from_bytes(secret).unwrap();
        let token = mint(json!({"typ": "JWT"}), tck_claims(), &signer);
        assert_eq!(setup.reason(&token), "alg_refused");
    }
    // josekit signs PS256 only with an RSA-PSS key of its own; the alg is refused before any key.
    let pss = josekit::jws::PS256.generate_key_pair(2048).unwrap();
    let ps256 = josekit::jws::PS256
        .signer_from_pem(pss.to_pem_private_key())
        .unwrap();
    assert_eq!(
        setup.reason(&mint(json!({"typ": "JWT"}), tck_claims(), &ps256)),
        "alg_refused"
    );
    let rs512 = josekit::jws::RS512
        .signer_from_pem(&pair.private_pem)
        .unwrap();
    assert_eq!(
        setup.reason(&mint(json!({"typ": "JWT"}), tck_claims(), &rs512)),
        "alg_refused"
    );
    let p384 = Pair::ec(Nid::SECP384R1);
    let es384 = josekit::jws::ES384
        .signer_from_pem(&p384.private_pem)
        .unwrap();
    assert_eq!(
        setup.reason(&mint(json!({"typ": "JWT"}), tck_claims(), &es384)),
        "alg_refused"
    );
    assert_eq!(
        setup.reason(&forge(r#"{"typ":"JWT"}"#, &claims, b"sig")),
        "missing_alg"
    );
    assert_eq!(
        setup.reason(&forge(r#"{"alg":["RS256"],"typ":"JWT"}"#, &claims, b"sig")),
        "alg_refused"
    );
    // alg given twice in the header JSON is not read at all.
    let twice = forge(
        r#"{"alg":"none","alg":"RS256","typ":"JWT"}"#,
        &claims,
        b"sig",
    );
    assert_eq!(setup.reason(&twice), "not_user_token:unreadable");
    // An RS256 header over an EC key: the key's type must match the alg.
    let ec = Pair::ec(Nid::X9_62_PRIME256V1);
    let ec_setup = Setup::mp(&ec.public_pem);
    let rs_token = mint(json!({"typ": "JWT"}), tck_claims(), &*pair.rs256());
    assert_eq!(ec_setup.reason(&rs_token), "alg_key_mismatch");
    // And an ES256 token against an RSA key.
    let es_token = mint(json!({"typ": "JWT"}), tck_claims(), &*ec.es256());
    assert_eq!(setup.reason(&es_token), "alg_key_mismatch");
}

/// U3: `iss` of another issuer, missing, not a string, or with a trailing `/`: not a user token of
/// this issuer.
#[test]
fn u3_tokens_of_other_or_no_issuers_are_not_user_tokens() {
    let realm = Realm::new();
    for (change, why) in [
        (
            json!({"iss": "http://localhost:8029/auth/realms/other"}),
            "unknown_iss",
        ),
        (json!({"iss": format!("{KEYCLOAK_ISS}/")}), "unknown_iss"),
        (json!({"iss": KEYCLOAK_ISS.to_uppercase()}), "unknown_iss"),
        (json!({"iss": null}), "no_iss"),
        (json!({"iss": 7}), "no_iss"),
        (json!({"iss": [KEYCLOAK_ISS]}), "no_iss"),
    ] {
        let token = realm.token(&with(&keycloak_claims(), change.clone()));
        assert_eq!(
            realm.setup.reason(&token),
            format!("not_user_token:{why}"),
            "{change}"
        );
        assert!(
            realm
                .setup
                .verifier
                .route(&token, &mut TokenText::default())
                .is_err()
        );
    }
    // Too large before any decoding, and not JWS-shaped: not user tokens either.
    let huge = format!("{}.e30.x", "a".repeat(MAX_USER_TOKEN_BYTES));
    assert_eq!(realm.setup.reason(&huge), "not_user_token:token_too_large");
    for shape in ["a.b", "a.b.c.d.e", "..", "e30.e30.", "not a token"] {
        assert_eq!(
            realm.setup.reason(shape),
            "not_user_token:unreadable",
            "{shape}"
        );
    }
}

/// U4: `exp` missing or past the skew, `iat` after `exp`, `nbf` in the future are refused (token
/// age: `tck_token_age`).
#[test]
fn u4_times_expiry_not_before_and_age() {
    let realm = Realm::new();
    let claims = keycloak_claims();
    for (change, reason) in [
        (json!({"exp": null}), "missing_time_claim"),
        (json!({"exp": "soon"}), "invalid_time_claim"),
        (json!({"exp": -1}), "invalid_time_claim"),
        (json!({"exp": 1.5e9}), "invalid_time_claim"),
        // Boundaries: now = exp + skew is accepted, one second later is not.
        (json!({"iat": NOW - 300, "exp": NOW - 60}), "accepted"),
        (json!({"iat": NOW - 300, "exp": NOW - 61}), "expired"),
        (json!({"iat": NOW + 400}), "iat_after_exp"),
        (json!({"nbf": NOW + 60}), "accepted"),
        (json!({"nbf": NOW + 61}), "not_yet_valid"),
        (json!({"iat": NOW + 61}), "not_yet_valid"),
        (json!({"nbf": "later"}), "invalid_time_claim"),
    ] {
        let token = realm.token(&with(&claims, change.clone()));
        assert_eq!(realm.setup.reason(&token), reason, "{change}");
    }
    // The clock moves: the same token expires.
    let token = realm.token(&claims);
    realm.setup.clock.set(NOW + 300 + 60);
    assert_eq!(realm.setup.reason(&token), "accepted");
    realm.setup.clock.advance(1);
    assert_eq!(realm.setup.reason(&token), "expired");
}

/// U7: `jku`, `x5u` and `jwk` in the header are ignored; the server they name receives nothing.
#[test]
fn u7_key_urls_and_embedded_keys_in_the_header_are_never_used() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/keys", listener.local_addr().unwrap());
    let pair = Pair::rsa(2048);
    let setup = Setup::mp(&pair.public_pem);
    let attacker = Pair::rsa(2048);
    // Signed by the issuer: the URLs are ignored, the token is accepted on the configured key.
    let honest = mint(
        json!({"typ": "JWT", "jku": url, "x5u": url}),
        tck_claims(),
        &*pair.rs256(),
    );
    assert_eq!(setup.reason(&honest), "accepted");
    // Signed by an attacker who embeds or points at their own key: refused.
    for header in [
        json!({"typ": "JWT", "jku": url}),
        json!({"typ": "JWT", "x5u": url}),
        json!({"typ": "JWT", "jwk": Value::Object(attacker.jwk.clone())}),
    ] {
        let token = mint(header.clone(), tck_claims(), &*attacker.rs256());
        assert_eq!(setup.reason(&token), "bad_signature", "{header}");
    }
    // Nobody connected to the URL the tokens named.
    match listener.accept() {
        Err(error) => assert_eq!(error.kind(), ErrorKind::WouldBlock),
        Ok((_, from)) => panic!("the verifier connected from {from}"),
    }
    // crit names extensions nobody implements: refused.
    let crit = forge(
        r#"{"alg":"RS256","typ":"JWT","crit":["exp"],"exp":1}"#,
        &tck_claims().to_string(),
        b"sig",
    );
    assert_eq!(setup.reason(&crit), "crit_refused");
}

// ---------------------------------------------------------------------------------------------
// MicroProfile JWT: the TCK's cases

/// TCK `callEchoExpiredToken`, `callEchoBadIssuer`, `callEchoBadSigner`, `callEchoBadSignerAlg`
/// (HS256), `verifyTokenWithoutExpiration`, `verifyTokenWithIatOlderThanExp`,
/// `verifyTokenWithoutName`; U6 (no `upn`, `preferred_username` or `sub`: refused) and U12
/// (`realm_access` is not a MicroProfile JWT role).
#[test]
fn tck_invalid_tokens() {
    let pair = Pair::rsa(2048);
    let setup = Setup::mp(&pair.public_pem);
    let sign = |claims: Value| {
        mint(
            json!({"typ": "JWT", "kid": "/Token1.json"}),
            claims,
            &*pair.rs256(),
        )
    };
    let claims = tck_claims();
    // callEcho: the name is upn; groups are the roles (U12: realm_access is not).
    let user = setup.verify(&sign(claims.clone())).unwrap();
    assert_eq!(user.username, "jdoe@example.com");
    assert_eq!(user.id, "24400320");
    assert_eq!(user.roles, ["Echoer", "Tester", "group1", "group2"]);
    // callEchoExpiredToken (exp in 2011), callEchoBadIssuer, verifyTokenWithoutExpiration,
    // verifyTokenWithIatOlderThanExp (iat = exp + 5), verifyTokenWithoutName.
    for (change, reason) in [
        (json!({"exp": 1_311_281_970}), "iat_after_exp"),
        (
            json!({"exp": 1_311_281_970, "iat": 1_311_281_000}),
            "expired",
        ),
        (
            json!({"iss": "INVALID_ISSUER"}),
            "not_user_token:unknown_iss",
        ),
        (json!({"exp": null}), "missing_time_claim"),
        (json!({"iat": NOW + 305}), "iat_after_exp"),
        (json!({"iat": null}), "missing_time_claim"),
        (
            json!({"upn": null, "preferred_username": null, "sub": null}),
            "missing_name_claim",
        ),
        (json!({"upn": 5}), "invalid_name_claim"),
    ] {
        assert_eq!(
            setup.reason(&sign(with(&claims, change.clone()))),
            reason,
            "{change}"
        );
    }
    // callEchoBadSigner: a fresh RSA key.
    let stranger = Pair::rsa(2048);
    let bad_signer = mint(json!({"typ": "JWT"}), claims.clone(), &*stranger.rs256());
    assert_eq!(setup.reason(&bad_signer), "bad_signature");
    // callEchoBadSignerAlg: HS256.
    let hmac = josekit::jws::HS256.signer_from_bytes([7u8; 32]).unwrap();
    assert_eq!(
        setup.reason(&mint(json!({"typ": "JWT"}), claims.clone(), &hmac)),
        "alg_refused"
    );
    // callEchoNoGroups: no groups is a user without roles.
    let none = setup
        .verify(&sign(with(&claims, json!({"groups": null}))))
        .unwrap();
    assert!(none.roles.is_empty());
    // The name falls back to preferred_username, then sub; the id is sub, else the name.
    let preferred = setup
        .verify(&sign(with(&claims, json!({"upn": null}))))
        .unwrap();
    assert_eq!(
        (preferred.id.as_str(), preferred.username.as_str()),
        ("24400320", "jdoe")
    );
    let subject = with(&claims, json!({"upn": null, "preferred_username": null}));
    let subject = setup.verify(&sign(subject)).unwrap();
    assert_eq!(
        (subject.id.as_str(), subject.username.as_str()),
        ("24400320", "24400320")
    );
    let no_sub = setup
        .verify(&sign(with(&claims, json!({"sub": null}))))
        .unwrap();
    assert_eq!(no_sub.id, "jdoe@example.com");
    // groups as one string is one role; any other shape is refused.
    let one = setup
        .verify(&sign(with(&claims, json!({"groups": "Echoer"}))))
        .unwrap();
    assert_eq!(one.roles, ["Echoer"]);
    assert_eq!(
        setup.reason(&sign(with(&claims, json!({"groups": {"a": 1}})))),
        "invalid_roles"
    );
    assert_eq!(
        setup.reason(&sign(with(&claims, json!({"groups": ["a", 1]})))),
        "invalid_roles"
    );
    // A JWE-like token (five segments) is not a signed user token.
    assert_eq!(setup.reason("a.b.c.d.e"), "not_user_token:unreadable");
    // typ is required by default.
    let no_typ = mint(json!({}), claims.clone(), &*pair.rs256());
    assert_eq!(setup.reason(&no_typ), "bad_typ");
}

/// U4: a token older than `token.age` is refused.
#[test]
fn tck_token_age() {
    let pair = Pair::rsa(2048);
    let mut policy = UserIssuerPolicy::micro_profile(MP_ISS);
    policy.token_age = Some(Duration::from_secs(4));
    let setup = Setup::new(policy, &pair.public_pem);
    let token = mint(json!({"typ": "JWT"}), tck_claims(), &*pair.rs256());
    // callEchoValidToken, then callEchoAgedToken 5 s later: no skew is added to the age.
    assert_eq!(setup.reason(&token), "accepted");
    setup.clock.advance(4);
    assert_eq!(setup.reason(&token), "accepted");
    setup.clock.advance(1);
    assert_eq!(setup.reason(&token), "token_too_old");
}

/// U5: `aud` missing or without a configured audience is refused.
#[test]
fn tck_audiences() {
    let pair = Pair::rsa(4096);
    let token = |aud: Value| {
        mint(
            json!({"typ": "JWT", "kid": "publicKey4k"}),
            with(&tck_claims(), json!({"aud": aud})),
            &*pair.rs256(),
        )
    };
    let audiences = |list: &str| {
        let mut policy = UserIssuerPolicy::micro_profile(MP_ISS);
        policy.audiences = list.split(',').map(str::to_owned).collect();
        Setup::new(policy, &pair.public_pem)
    };
    // testRequiredAudMatch (string and array), testRequiredAudMismatchFailure,
    // testRequiredAudMissingFailure (Token2's aud).
    let matching = audiences("aud3,badAud,s6BhdRkqt3,aud1");
    assert_eq!(matching.reason(&token(json!("s6BhdRkqt3"))), "accepted");
    let array = audiences("aud3,badAud,aud1");
    let auds = json!(["s6BhdRkqt3", "aud1", "aud2", "aud3", "aud4"]);
    assert_eq!(array.reason(&token(auds.clone())), "accepted");
    assert_eq!(
        audiences("notAValidAudience").reason(&token(auds)),
        "wrong_aud"
    );
    assert_eq!(
        audiences("aud2").reason(&token(json!("s6BhdRkqt3.2"))),
        "wrong_aud"
    );
    assert_eq!(audiences("aud2").reason(&token(Value::Null)), "missing_aud");
    // No audiences configured: aud is not looked at (verifyOptionalAudience).
    let unchecked = Setup::mp(&pair.public_pem);
    assert_eq!(unchecked.reason(&token(json!("anything"))), "accepted");
    assert_eq!(unchecked.reason(&token(Value::Null)), "accepted");
}

#[test]
fn tck_key_forms_rsa_2048_4096_and_ec_p256() {
    for bits in [2048, 4096] {
        let pair = Pair::rsa(bits);
        // testKeyAsPEM: the token's kid names a file; one key ignores it.
        let setup = Setup::mp(&pair.public_pem);
        let token = mint(
            json!({"typ": "JWT", "kid": "/privateKey4k.pem"}),
            tck_claims(),
            &*pair.rs256(),
        );
        assert_eq!(setup.reason(&token), "accepted", "{bits} bits");
        // testKeyAsJWK, testKeyAsBase64JWK (standard alphabet, padded), testKeyAsJWKS.
        let jwk = pair.jwk_with(json!({"kid": "publicKey4k", "use": "sig", "alg": "RS256"}));
        let jwks = json!({"keys": [jwk]});
        for text in [
            jwk.to_string(),
            STANDARD.encode(jwk.to_string()),
            jwks.to_string(),
            URL_SAFE_NO_PAD.encode(jwks.to_string()),
        ] {
            let setup = Setup::mp(&text);
            let token = mint(
                json!({"typ": "JWT", "kid": "publicKey4k"}),
                tck_claims(),
                &*pair.rs256(),
            );
            assert_eq!(setup.reason(&token), "accepted", "{bits} bits: {text:.40}");
        }
    }
    // testKeyAsPEM (ES256) with publickey.algorithm=ES256; an RS256 token is then refused.
    let ec = Pair::ec(Nid::X9_62_PRIME256V1);
    let mut policy = UserIssuerPolicy::micro_profile(MP_ISS);
    policy.algorithms = vec![UserAlgorithm::Es256];
    let setup = Setup::new(policy, &ec.public_pem);
    let token = mint(
        json!({"typ": "JWT", "kid": "/ecPrivateKey.pem"}),
        tck_claims(),
        &*ec.es256(),
    );
    assert_eq!(setup.reason(&token), "accepted");
    let rsa = Pair::rsa(2048);
    let rs = mint(json!({"typ": "JWT"}), tck_claims(), &*rsa.rs256());
    assert_eq!(setup.reason(&rs), "alg_refused");
    // testKeyAsLocation (ES256 JWK, kid eckey).
    let ec_jwk = ec.jwk_with(json!({"kid": "eckey", "alg": "ES256"}));
    let setup = Setup::mp(&ec_jwk.to_string());
    let token = mint(
        json!({"typ": "JWT", "kid": "eckey"}),
        tck_claims(),
        &*ec.es256(),
    );
    assert_eq!(setup.reason(&token), "accepted");
}

#[test]
fn tck_a_jwks_of_rsa_and_ec_keys_selects_by_kid() {
    // testES256Token / testRS256Token: no algorithm configured accepts both.
    let (rsa, ec) = (Pair::rsa(4096), Pair::ec(Nid::X9_62_PRIME256V1));
    let jwks = json!({"keys": [
        rsa.jwk_with(json!({"kid": "rskey", "use": "sig", "alg": "RS256"})),
        ec.jwk_with(json!({"kid": "eckey", "use": "sig", "alg": "ES256"})),
    ]});
    let setup = Setup::mp(&jwks.to_string());
    let es = mint(
        json!({"typ": "JWT", "kid": "eckey"}),
        tck_claims(),
        &*ec.es256(),
    );
    let rs = mint(
        json!({"typ": "JWT", "kid": "rskey"}),
        tck_claims(),
        &*rsa.rs256(),
    );
    assert_eq!(setup.reason(&es), "accepted");
    assert_eq!(setup.reason(&rs), "accepted");
    // A kid naming the other key's type: that key alone is considered.
    let crossed = mint(
        json!({"typ": "JWT", "kid": "eckey"}),
        tck_claims(),
        &*rsa.rs256(),
    );
    assert_eq!(setup.reason(&crossed), "alg_key_mismatch");
    // A kid naming no key of a set whose keys all have kids.
    let unknown = mint(
        json!({"typ": "JWT", "kid": "other"}),
        tck_claims(),
        &*rsa.rs256(),
    );
    assert_eq!(setup.reason(&unknown), "unknown_kid");
    // No kid: every key of the alg's type is tried.
    let no_kid = mint(json!({"typ": "JWT"}), tck_claims(), &*ec.es256());
    assert_eq!(setup.reason(&no_kid), "accepted");
    // A kid of another type (not a string) is refused.
    let odd = forge(
        r#"{"alg":"ES256","typ":"JWT","kid":7}"#,
        &tck_claims().to_string(),
        &[0; 64],
    );
    assert_eq!(setup.reason(&odd), "invalid_kid");
    // A set with a kid-less key: a kid naming nothing falls back to it.
    let mixed = json!({"keys": [
        rsa.jwk_with(json!({"kid": "rskey"})),
        ec.jwk_with(json!({})),
    ]});
    let setup = Setup::mp(&mixed.to_string());
    let stale = mint(
        json!({"typ": "JWT", "kid": "/ecPrivateKey.pem"}),
        tck_claims(),
        &*ec.es256(),
    );
    assert_eq!(setup.reason(&stale), "accepted");
}

// ---------------------------------------------------------------------------------------------
// Payara's vendor file

/// TCK-adjacent (Payara): `enable.namespace` and `custom.namespace` of `payara-mp-jwt.properties`.
#[test]
fn payara_namespaced_claims_are_read_without_the_namespace() {
    let pair = Pair::rsa(2048);
    let namespaced = json!({
        "https://payara.fish/mp-jwt/groups": ["admin", "read", "write"],
        "https://payara.fish/mp-jwt/upn": "test",
        "iss": "https://test.auth.com/",
        "sub": "5b2856bf8763ef356976dca3",
        "groups": ["ignored"],
        "exp": NOW + 300,
        "iat": NOW
    });
    let token = mint(json!({"typ": "JWT"}), namespaced.clone(), &*pair.rs256());
    // Without enable.namespace the namespaced claims are just other claims.
    let plain = Setup::new(
        UserIssuerPolicy::micro_profile("https://test.auth.com/"),
        &pair.public_pem,
    );
    let user = plain.verify(&token).unwrap();
    assert_eq!(
        (user.username.as_str(), user.roles.as_slice()),
        ("5b2856bf8763ef356976dca3", &["ignored".to_owned()][..])
    );
    let mut policy = UserIssuerPolicy::micro_profile("https://test.auth.com/");
    PayaraSettings {
        enable_namespace: true,
        ..PayaraSettings::default()
    }
    .apply(&mut policy);
    let setup = Setup::new(policy, &pair.public_pem);
    let user = setup.verify(&token).unwrap();
    assert_eq!(user.username, "test");
    assert_eq!(user.roles, ["admin", "read", "write"]);
    // A custom namespace, also for iss.
    let custom = json!({
        "https://example.com/claims/iss": "https://custom.example.com",
        "https://example.com/claims/upn": "bob",
        "exp": NOW + 300,
        "iat": NOW
    });
    let mut policy = UserIssuerPolicy::micro_profile("https://custom.example.com");
    PayaraSettings {
        enable_namespace: true,
        custom_namespace: Some("https://example.com/claims/".into()),
        ..PayaraSettings::default()
    }
    .apply(&mut policy);
    let setup = Setup::new(policy, &pair.public_pem);
    let token = mint(json!({"typ": "JWT"}), custom, &*pair.rs256());
    assert_eq!(setup.verify(&token).unwrap().username, "bob");
}

/// TCK-adjacent (Payara): `disable.type.verification` of `payara-mp-jwt.properties`.
#[test]
fn payara_disable_type_verification_accepts_a_token_without_typ() {
    let pair = Pair::rsa(2048);
    let no_typ = mint(json!({}), tck_claims(), &*pair.rs256());
    let other_typ = mint(json!({"typ": "JOSE"}), tck_claims(), &*pair.rs256());
    let strict = Setup::mp(&pair.public_pem);
    assert_eq!(strict.reason(&no_typ), "bad_typ");
    let mut policy = UserIssuerPolicy::micro_profile("ignored");
    PayaraSettings {
        accepted_issuer: Some(MP_ISS.into()),
        disable_type_verification: true,
        ..PayaraSettings::default()
    }
    .apply(&mut policy);
    let relaxed = Setup::new(policy, &pair.public_pem);
    assert_eq!(relaxed.reason(&no_typ), "accepted");
    assert_eq!(relaxed.reason(&other_typ), "bad_typ");
}

// ---------------------------------------------------------------------------------------------
// Keys refused at load, and issuers that cannot form a verifier

#[test]
fn private_keys_short_and_long_rsa_and_oversized_sets_are_refused() {
    let rsa = Pair::rsa(2048);
    let ec = Pair::ec(Nid::X9_62_PRIME256V1);
    let pkcs1 = String::from_utf8(rsa.key.rsa().unwrap().private_key_to_pem().unwrap()).unwrap();
    let sec1 = String::from_utf8(ec.key.ec_key().unwrap().private_key_to_pem().unwrap()).unwrap();
    let pkcs8 = String::from_utf8(rsa.private_pem.clone()).unwrap();
    let d = URL_SAFE_NO_PAD.encode(rsa.key.rsa().unwrap().d().to_vec());
    let private_jwk = rsa.jwk_with(json!({"d": d, "kid": "leaked"}));
    let private_set = json!({"keys": [rsa.jwk_with(json!({"kid": "ok"})), private_jwk.clone()]});
    for text in [
        pkcs1.clone(),
        sec1,
        pkcs8,
        private_jwk.to_string(),
        STANDARD.encode(private_jwk.to_string()),
        private_set.to_string(),
    ] {
        let error = UserKeySet::parse(&text, KeyFilter::Signing).unwrap_err();
        assert!(matches!(error, UserKeyError::PrivateKey { .. }), "{error}");
        // Named, never echoed.
        let message = error.to_string();
        assert!(message.contains("private key"), "{message}");
        assert!(
            !message.contains(&d[..16]) && !message.contains("MII"),
            "{message}"
        );
    }
    assert!(
        UserKeySet::parse(&private_set.to_string(), KeyFilter::Signing)
            .unwrap_err()
            .to_string()
            .contains("key 2 (kid \"leaked\")")
    );
    // RSA 1024 (the TCK's deprecated size) and above 4096 bits.
    for bits in [1024, 4104] {
        let pair = Pair::rsa(bits);
        for text in [
            pair.public_pem.clone(),
            Value::Object(pair.jwk.clone()).to_string(),
        ] {
            let error = UserKeySet::parse(&text, KeyFilter::Signing).unwrap_err();
            assert!(
                matches!(error, UserKeyError::RsaSize { bits: found, .. } if found == bits),
                "{error}"
            );
        }
    }
    // More than 100 keys, more than 1 MiB.
    let many = json!({"keys": vec![rsa.jwk_with(json!({})); MAX_KEY_SET_KEYS + 1]});
    assert!(matches!(
        UserKeySet::parse(&many.to_string(), KeyFilter::Signing),
        Err(UserKeyError::TooManyKeys { count: 101 })
    ));
    let hundred = json!({"keys": vec![rsa.jwk_with(json!({})); MAX_KEY_SET_KEYS]});
    assert_eq!(
        UserKeySet::parse(&hundred.to_string(), KeyFilter::Signing)
            .unwrap()
            .keys()
            .len(),
        MAX_KEY_SET_KEYS
    );
    let huge = " ".repeat(MAX_KEY_SET_BYTES + 1);
    assert!(matches!(
        UserKeySet::parse(&huge, KeyFilter::Signing),
        Err(UserKeyError::TooLarge { .. })
    ));
    // Keycloak's filter refuses a lone EC key; a P-384 key is no P-256 key.
    assert!(UserKeySet::parse(&ec.public_pem, KeyFilter::KeycloakRealm).is_err());
    let p384 = Pair::ec(Nid::SECP384R1);
    assert!(UserKeySet::parse(&p384.public_pem, KeyFilter::Signing).is_err());
    let mislabelled = p384.jwk_with(json!({"crv": "P-256"}));
    assert!(matches!(
        UserKeySet::parse(&mislabelled.to_string(), KeyFilter::Signing),
        Err(UserKeyError::NotOnCurve { .. })
    ));
    // Not keys at all.
    for text in [
        "",
        "  ",
        "hello",
        "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----",
        "{\"kty\":\"RSA\"}",
        "{\"keys\":{}}",
        "[1]",
        "{\"keys\":[1]}",
    ] {
        assert!(
            UserKeySet::parse(text, KeyFilter::Signing).is_err(),
            "{text}"
        );
    }
    let certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    assert!(matches!(
        UserKeySet::parse(certificate, KeyFilter::Signing),
        Err(UserKeyError::UnsupportedPem { .. })
    ));
    // A PEM joined onto one line (a properties-file continuation) still reads.
    let one_line: String = rsa.public_pem.lines().collect();
    assert_eq!(
        UserKeySet::parse(&one_line, KeyFilter::Signing)
            .unwrap()
            .keys()
            .len(),
        1
    );
    let damaged = rsa.public_pem.replace("-----END PUBLIC KEY-----", "");
    assert!(matches!(
        UserKeySet::parse(&damaged, KeyFilter::Signing),
        Err(UserKeyError::BadPem)
    ));
    // PKCS#1 public PEM is accepted too.
    let pkcs1_public =
        String::from_utf8(rsa.key.rsa().unwrap().public_key_to_pem_pkcs1().unwrap()).unwrap();
    assert_eq!(
        UserKeySet::parse(&pkcs1_public, KeyFilter::Signing)
            .unwrap()
            .form(),
        KeyForm::Single
    );
}

#[test]
fn issuers_must_be_distinct_and_complete() {
    let clock = Arc::new(ManualClock::new(NOW));
    let duplicate = UserTokenVerifier::new(
        vec![
            UserIssuerPolicy::keycloak(KEYCLOAK_ISS),
            UserIssuerPolicy::micro_profile(KEYCLOAK_ISS),
        ],
        clock.clone(),
    );
    assert!(matches!(
        duplicate,
        Err(UserIssuersError::DuplicateIssuer { .. })
    ));
    let mut no_algorithms = UserIssuerPolicy::micro_profile(MP_ISS);
    no_algorithms.algorithms.clear();
    assert!(UserTokenVerifier::new(vec![no_algorithms], clock.clone()).is_err());
    assert!(UserTokenVerifier::new(vec![UserIssuerPolicy::keycloak("")], clock.clone()).is_err());
    // Two issuers: each token goes to its own rules and keys.
    let realm = Realm::new();
    let pair = Pair::rsa(2048);
    let mp_keys = UserKeySet::parse(&pair.public_pem, KeyFilter::Signing).unwrap();
    let both = UserTokenVerifier::new(
        vec![
            UserIssuerPolicy::keycloak(KEYCLOAK_ISS),
            UserIssuerPolicy::micro_profile(MP_ISS),
        ],
        clock,
    )
    .unwrap();
    let keys_of = |policy: &UserIssuerPolicy| match policy.rules {
        IssuerRules::Keycloak => &realm.setup.keys,
        IssuerRules::MicroProfileJwt => &mp_keys,
    };
    let kc = both
        .verify(&realm.token(&keycloak_claims()), keys_of)
        .unwrap();
    assert_eq!(kc.username, "alice");
    let mp_token = mint(json!({"typ": "JWT"}), tck_claims(), &*pair.rs256());
    let mp = both.verify(&mp_token, keys_of).unwrap();
    assert_eq!(mp.username, "jdoe@example.com");
    assert_eq!(
        both.route(&mp_token, &mut TokenText::default())
            .unwrap()
            .issuer()
            .rules,
        IssuerRules::MicroProfileJwt
    );
}

#[test]
fn reason_codes_are_listed_once() {
    let mut sorted = UserTokenError::REASONS.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), UserTokenError::REASONS.len());
    assert!(UserTokenError::REASONS.contains(&UserTokenError::Expired.reason()));
    assert!(
        UserTokenError::REASONS
            .contains(&UserTokenError::InvalidRoles { claim: "groups" }.reason())
    );
}
