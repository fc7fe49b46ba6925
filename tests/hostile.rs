//! End-to-end hostile input (issue 5, items 1, 3, 4, 5): every hostile token of docs/security.md
//! sent over real gRPC to a running `dpm` and a running `dpe`, with tokens built by hand (base64url
//! of handmade JSON, p256 signatures by the right or the wrong key, HMAC with the public key, …),
//! plus oversized metadata and messages and misbehaving connections.
//!
//! One linked pair of daemons serves the whole matrix (start-up is the slow part). Each case
//! asserts the gRPC code and the reason code at the start of the status message; after each case a
//! valid caller is served with the same identity; at the end each daemon's JSON log must hold an
//! `authenticationFailed` event for every reason (per method), no token, no key; the engine must
//! have stayed READY and both processes alive.
//!
//! The test knows the daemons' keys by reading the generator keys `svcid link` wrote into the
//! homes. A third deployment, `reporter` (module `catalog`, no roles, one live key and one revoked
//! key), is added to both homes before start: a verified caller of the wrong module, a configured
//! key to sign with in the wrong name, and a revoked key.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Daemon, Pair};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use svcid_identity::GeneratorKey;
use svcid_proto::pb::heartbeat::HeartbeatRequest;
use svcid_proto::pb::heartbeat::heartbeat_service_client::HeartbeatServiceClient;
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use svcid_proto::pb::identity::{WhoAmIRequest, WhoAmIResponse};
use svcid_proto::pb::registry::registry_service_client::RegistryServiceClient;
use svcid_proto::pb::registry::{EngineAddress, RegistrationRequest};
use svcid_testkit::log::token_in;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

const GENERATOR_KEY: &str = "ataccama.authentication.internal.jwt.generator.key";
const REPORTER: &str = "ataccama.one.platform.deployments.reporter";
const WHOAMI: &str = "/svcid.identity.IdentityService/WhoAmI";
const REGISTER: &str = "/ataccama.dppapi.dpm.registry.RegistryService/RegisterEngine";
const HEARTBEAT: &str = "/ataccama.dppapi.heartbeat.HeartbeatService/GetStatus";
/// The daemons' default clock skew.
const SKEW: i64 = 60;
/// The message limit both daemons are started with, so the test need not send megabytes.
const MESSAGE_LIMIT: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Keys and hand-built tokens.

/// A key the test signs with, and its public parts for the HS256 confusion rows.
struct Signer {
    /// The `kid` (RFC 7638 thumbprint) configured for it.
    kid: String,
    /// The private key.
    key: SigningKey,
    /// Its public JWK as configured (`content`).
    public_jwk: String,
    /// Raw `x‖y`.
    xy: Vec<u8>,
}

impl Signer {
    fn of(key: &GeneratorKey) -> Signer {
        // The private scalar is not exposed by svcid-identity: take it from the base64 keypair.
        let keypair: Value =
            serde_json::from_slice(&STANDARD.decode(key.to_base64()).unwrap()).unwrap();
        let d = URL_SAFE_NO_PAD
            .decode(keypair["d"].as_str().unwrap())
            .unwrap();
        let public_jwk = key.public_key().content_json();
        let public: Value = serde_json::from_str(&public_jwk).unwrap();
        let mut xy = URL_SAFE_NO_PAD
            .decode(public["x"].as_str().unwrap())
            .unwrap();
        xy.extend(
            URL_SAFE_NO_PAD
                .decode(public["y"].as_str().unwrap())
                .unwrap(),
        );
        Signer {
            kid: key.kid().to_owned(),
            key: SigningKey::from_slice(&d).unwrap(),
            public_jwk,
            xy,
        }
    }

    /// `x‖y` as a PEM SubjectPublicKeyInfo, the form an attacker would try as an HMAC secret.
    fn public_pem(&self) -> String {
        let mut der = hex("3059301306072a8648ce3d020106082a8648ce3d03010703420004");
        der.extend(&self.xy);
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn sign(&self, input: &[u8]) -> Signature {
        self.key.sign(input)
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// The standard header for `kid`.
fn header(kid: &str) -> String {
    format!(
        r#"{{"alg":"ES256","typ":"JWT","kid":{}}}"#,
        Value::from(kid)
    )
}

/// Valid claims for `aud` plus raw extra members (`,"x":1`).
fn claims(aud: &str, extra: &str) -> String {
    let now = now();
    format!(
        r#"{{"iat":{now},"nbf":{now},"exp":{},"aud":"{aud}","jti":"hostile"{extra}}}"#,
        now + 600
    )
}

/// Claims with the given time members (raw JSON) and `aud`.
fn timed(aud: &str, times: &str) -> String {
    format!(r#"{{{times},"aud":"{aud}","jti":"hostile"}}"#)
}

/// `header.claims.signature` with an ES256 signature by `signer` over the exact segments.
fn forge(header: impl AsRef<[u8]>, claims: impl AsRef<[u8]>, signer: &Signer) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = signer.sign(input.as_bytes());
    format!("{input}.{}", b64(signature.to_bytes()))
}

/// `header.claims.signature` with the given signature bytes.
fn forge_raw(header: impl AsRef<[u8]>, claims: impl AsRef<[u8]>, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(claims), b64(signature))
}

/// HMAC-SHA256 (RFC 2104), written out so no HMAC crate is needed for one attack row.
fn hmac_sha256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if secret.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn hs256(kid: &str, claims: &str, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#)),
        b64(claims)
    );
    let mac = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64(mac))
}

fn bearer(token: &str) -> String {
    format!("Internal-jwt {token}")
}

/// Random-looking bytes (deterministic; an unverifiable signature is all that is needed).
fn noise(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 131 + 7) % 251).unwrap())
        .collect()
}

fn swap_case(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The matrix.

/// What a case must produce.
#[derive(Clone, Debug)]
enum Expect {
    /// `UNAUTHENTICATED` with this reason code.
    Refused(&'static str),
    /// Verified: `WhoAmI` answers with an identity containing this text; the restricted method
    /// (DPM's `RegisterEngine`, DPE's `GetStatus`) is `PERMISSION_DENIED` unless `allowed`.
    Accepted { identity: String, allowed: bool },
}

/// One row's input.
struct Case {
    /// The hostile token's number in docs/security.md.
    row: &'static str,
    /// What is sent, for failure messages.
    what: String,
    /// The `authorization` values (none, one or several).
    auth: Vec<String>,
    /// The expected outcome.
    expect: Expect,
}

fn case(row: &'static str, what: impl Into<String>, auth: Vec<String>, expect: Expect) -> Case {
    Case {
        row,
        what: what.into(),
        auth,
        expect,
    }
}

fn refused(
    row: &'static str,
    what: impl Into<String>,
    token: String,
    reason: &'static str,
) -> Case {
    case(row, what, vec![bearer(&token)], Expect::Refused(reason))
}

/// The keys of one target daemon.
struct Keys<'a> {
    /// The trusted peer that calls this daemon (dpe-dev for DPM, dpm-dev for DPE).
    peer: &'a Signer,
    /// The peer's deployment name.
    peer_name: &'static str,
    /// This daemon's module type: the audience tokens must name.
    aud: &'static str,
    /// The other module type.
    other_aud: &'static str,
    /// `reporter`'s live key (module catalog, no roles).
    reporter: &'a Signer,
    /// `reporter`'s revoked key.
    retired: &'a Signer,
    /// A key configured nowhere.
    stranger: &'a Signer,
    /// A local port that records connections: `jku`/`x5u` point there, nothing may connect.
    trap_port: u16,
}

/// Every hostile token of docs/security.md (1–19, 21; 20 needs a file change, run separately).
fn matrix(k: &Keys<'_>) -> Vec<Case> {
    let p = k.peer;
    let aud = k.aud;
    let good = || claims(aud, "");
    let valid = forge(header(&p.kid), good(), p);
    let mut cases = Vec::new();

    // 1: the shape of the metadata.
    cases.push(case(
        "1",
        "no authorization",
        vec![],
        Expect::Refused("missing_authorization"),
    ));
    cases.push(case(
        "1",
        "empty value",
        vec![String::new()],
        Expect::Refused("empty_authorization"),
    ));
    cases.push(case(
        "1",
        "two valid values",
        vec![bearer(&valid), bearer(&valid)],
        Expect::Refused("multiple_authorization"),
    ));
    cases.push(case(
        "1",
        "Basic scheme",
        vec!["Basic dXNlcjpwYXNz".to_owned()],
        Expect::Refused("unknown_scheme"),
    ));
    cases.push(case(
        "1",
        "JWT scheme",
        vec![format!("JWT {valid}")],
        Expect::Refused("unknown_scheme"),
    ));
    cases.push(case(
        "1",
        "scheme only",
        vec!["Internal-jwt".to_owned()],
        Expect::Refused("missing_token"),
    ));
    cases.push(case(
        "1",
        "Bearer and a space",
        vec!["Bearer ".to_owned()],
        Expect::Refused("missing_token"),
    ));
    cases.push(case(
        "1",
        "two spaces",
        vec![format!("Internal-jwt  {valid}")],
        Expect::Refused("malformed_authorization"),
    ));

    // 2: alg none in any case, with or without a signature.
    for alg in ["none", "None", "NONE"] {
        let h = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, p.kid);
        cases.push(refused(
            "2",
            format!("alg {alg} unsigned"),
            format!("{}.{}.", b64(&h), b64(good())),
            "empty_segment",
        ));
        cases.push(refused(
            "2",
            format!("alg {alg} signed"),
            forge(&h, good(), p),
            "alg_refused",
        ));
    }

    // 3: HS256 keyed with the peer's public key in every form an attacker would try.
    cases.push(refused(
        "3",
        "HS256 with the public JWK",
        hs256(&p.kid, &good(), p.public_jwk.as_bytes()),
        "alg_refused",
    ));
    cases.push(refused(
        "3",
        "HS256 with the public PEM",
        hs256(&p.kid, &good(), p.public_pem().as_bytes()),
        "alg_refused",
    ));
    cases.push(refused(
        "3",
        "HS256 with raw x||y",
        hs256(&p.kid, &good(), &p.xy),
        "alg_refused",
    ));

    // 4: other algorithms.
    for (alg, len) in [
        ("RS256", 256),
        ("PS256", 256),
        ("ES384", 96),
        ("ES512", 132),
        ("EdDSA", 64),
    ] {
        let h = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, p.kid);
        cases.push(refused(
            "4",
            alg,
            forge_raw(&h, good(), &noise(len)),
            "alg_refused",
        ));
    }

    // 5: alg missing, not a string, twice.
    let kid = &p.kid;
    cases.push(refused(
        "5",
        "alg missing",
        forge(format!(r#"{{"typ":"JWT","kid":"{kid}"}}"#), good(), p),
        "missing_alg",
    ));
    cases.push(refused(
        "5",
        "alg a number",
        forge(
            format!(r#"{{"alg":256,"typ":"JWT","kid":"{kid}"}}"#),
            good(),
            p,
        ),
        "alg_refused",
    ));
    cases.push(refused(
        "5",
        "alg an array",
        forge(
            format!(r#"{{"alg":["ES256"],"typ":"JWT","kid":"{kid}"}}"#),
            good(),
            p,
        ),
        "alg_refused",
    ));
    cases.push(refused(
        "5",
        "alg twice",
        forge(
            format!(r#"{{"alg":"ES256","alg":"none","typ":"JWT","kid":"{kid}"}}"#),
            good(),
            p,
        ),
        "invalid_header",
    ));

    // 6: keys offered by the token; the URLs point at a trap nothing may connect to.
    let trap = format!("http://127.0.0.1:{}", k.trap_port);
    let embedded = k.stranger.public_jwk.clone();
    cases.push(refused(
        "6",
        "embedded jwk, signed by it",
        forge(
            format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","jwk":{embedded}}}"#),
            good(),
            k.stranger,
        ),
        "forbidden_header_member",
    ));
    for (member, value) in [
        ("jku", format!(r#""{trap}/jwks.json""#)),
        ("x5u", format!(r#""{trap}/cert.pem""#)),
        ("x5c", r#"["MIIBszCCAVmgAwIBAgIUQ"]"#.to_owned()),
        ("crit", r#"["exp"]"#.to_owned()),
    ] {
        cases.push(refused(
            "6",
            member,
            forge(
                format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","{member}":{value}}}"#),
                good(),
                p,
            ),
            "forbidden_header_member",
        ));
    }

    // 7: kid missing, unknown, revoked.
    cases.push(refused(
        "7",
        "kid missing",
        forge(r#"{"alg":"ES256","typ":"JWT"}"#, good(), p),
        "missing_kid",
    ));
    cases.push(refused(
        "7",
        "kid a number",
        forge(r#"{"alg":"ES256","typ":"JWT","kid":7}"#, good(), p),
        "invalid_kid",
    ));
    cases.push(refused(
        "7",
        "unknown kid",
        forge(header(&k.stranger.kid), good(), k.stranger),
        "unknown_kid",
    ));
    cases.push(refused(
        "7",
        "revoked key",
        forge(header(&k.retired.kid), good(), k.retired),
        "revoked_key",
    ));

    // 8: one deployment's kid, another deployment's signature (both configured).
    cases.push(refused(
        "8",
        "peer kid, reporter signature",
        forge(header(kid), good(), k.reporter),
        "bad_signature",
    ));
    cases.push(refused(
        "8",
        "reporter kid, peer signature",
        forge(header(&k.reporter.kid), good(), p),
        "bad_signature",
    ));

    // 9: exact match only.
    cases.push(refused(
        "9",
        "../kid",
        forge(header(&format!("../{kid}")), good(), p),
        "unknown_kid",
    ));
    cases.push(refused(
        "9",
        "kid/..",
        forge(header(&format!("{kid}/../../etc/passwd")), good(), p),
        "unknown_kid",
    ));
    cases.push(refused(
        "9",
        "kid with NUL",
        forge(header(&format!("{kid}\u{0}")), good(), p),
        "unknown_kid",
    ));
    cases.push(refused(
        "9",
        "case variant",
        forge(header(&swap_case(kid)), good(), p),
        "unknown_kid",
    ));
    cases.push(refused(
        "9",
        "kid with a space",
        forge(header(&format!("{kid} ")), good(), p),
        "unknown_kid",
    ));
    cases.push(refused(
        "9",
        "4 KB kid",
        forge(header(&"k".repeat(4000)), good(), p),
        "unknown_kid",
    ));
    cases.push(refused(
        "9",
        "10 KB kid",
        forge(header(&"k".repeat(10_000)), good(), p),
        "token_too_large",
    ));

    // 10: typ other than JWT.
    for typ in [r#""jwt""#, r#""JWS""#, r#""at+jwt""#, "1"] {
        cases.push(refused(
            "10",
            format!("typ {typ}"),
            forge(
                format!(r#"{{"alg":"ES256","typ":{typ},"kid":"{kid}"}}"#),
                good(),
                p,
            ),
            "bad_typ",
        ));
    }

    // 11: time claims.
    let n = now();
    let signed = |times: String| forge(header(kid), timed(aud, &times), p);
    cases.push(refused(
        "11",
        "exp missing",
        signed(format!(r#""iat":{n},"nbf":{n}"#)),
        "missing_time_claim",
    ));
    cases.push(refused(
        "11",
        "exp a string",
        signed(format!(r#""iat":{n},"nbf":{n},"exp":"{}""#, n + 60)),
        "invalid_time_claim",
    ));
    cases.push(refused(
        "11",
        "exp negative",
        signed(format!(r#""iat":{n},"nbf":{n},"exp":-1"#)),
        "invalid_time_claim",
    ));
    cases.push(refused(
        "11",
        "exp fractional",
        signed(format!(r#""iat":{n},"nbf":{n},"exp":{}.5"#, n + 60)),
        "invalid_time_claim",
    ));
    cases.push(refused(
        "11",
        "nbf in the future",
        signed(format!(
            r#""iat":{n},"nbf":{},"exp":{}"#,
            n + 3600,
            n + 7200
        )),
        "not_yet_valid",
    ));
    cases.push(refused(
        "11",
        "iat in the future",
        signed(format!(
            r#""iat":{},"nbf":{n},"exp":{}"#,
            n + 3600,
            n + 7200
        )),
        "not_yet_valid",
    ));
    cases.push(refused(
        "11",
        "lifetime over 4h",
        signed(format!(r#""iat":{n},"nbf":{n},"exp":{}"#, n + 4 * 3600 + 1)),
        "lifetime_too_long",
    ));
    cases.push(refused(
        "11",
        "expired an hour ago",
        signed(format!(
            r#""iat":{},"nbf":{},"exp":{}"#,
            n - 3660,
            n - 3660,
            n - 3600
        )),
        "expired",
    ));

    // 12: the expiry boundary, with a margin each side for the real clock and the time the matrix
    // takes (the exact second is unit-tested with a manual clock in svcid-identity, row_12).
    let exp = n - SKEW + 10;
    cases.push(case(
        "12",
        "exp + skew just ahead",
        vec![bearer(&signed(format!(
            r#""iat":{},"nbf":{},"exp":{exp}"#,
            exp - 15,
            exp - 15
        )))],
        Expect::Accepted {
            identity: format!("id={}", k.peer_name),
            allowed: true,
        },
    ));
    let exp = n - SKEW - 10;
    cases.push(refused(
        "12",
        "exp + skew just passed",
        signed(format!(
            r#""iat":{},"nbf":{},"exp":{exp}"#,
            exp - 15,
            exp - 15
        )),
        "expired",
    ));

    // 13: audience.
    let times = format!(r#""iat":{n},"nbf":{n},"exp":{}"#, n + 60);
    let with_aud = |aud: &str| forge(header(kid), format!("{{{times}{aud}}}"), p);
    cases.push(refused("13", "aud missing", with_aud(""), "missing_aud"));
    cases.push(refused(
        "13",
        "aud another module",
        with_aud(r#","aud":"catalog""#),
        "wrong_aud",
    ));
    cases.push(refused(
        "13",
        "aud a number",
        with_aud(r#","aud":42"#),
        "invalid_aud",
    ));
    cases.push(refused(
        "13",
        "aud an object",
        with_aud(r#","aud":{"dpm":true}"#),
        "invalid_aud",
    ));
    cases.push(refused(
        "13",
        "aud an array of numbers",
        with_aud(r#","aud":[1]"#),
        "invalid_aud",
    ));
    cases.push(refused(
        "13",
        "aud empty array",
        with_aud(r#","aud":[]"#),
        "wrong_aud",
    ));

    // 14: altered bytes, malformed signatures.
    let parts: Vec<&str> = valid.split('.').collect();
    let other_payload = b64(claims(aud, r#","admin":true"#));
    cases.push(refused(
        "14",
        "payload swapped",
        format!("{}.{other_payload}.{}", parts[0], parts[2]),
        "bad_signature",
    ));
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[40] ^= 0x01;
    cases.push(refused(
        "14",
        "signature bit flipped",
        format!("{}.{}.{}", parts[0], parts[1], b64(&signature)),
        "bad_signature",
    ));
    let input = format!("{}.{}", parts[0], parts[1]);
    let real = p.sign(input.as_bytes());
    let bytes = real.to_bytes();
    cases.push(refused(
        "14",
        "63-byte signature",
        format!("{input}.{}", b64(&bytes[..63])),
        "bad_signature_length",
    ));
    let mut long = bytes.to_vec();
    long.push(0);
    cases.push(refused(
        "14",
        "65-byte signature",
        format!("{input}.{}", b64(&long)),
        "bad_signature_length",
    ));
    cases.push(refused(
        "14",
        "DER signature",
        format!("{input}.{}", b64(real.to_der().as_bytes())),
        "bad_signature_length",
    ));
    let mut r_zero = bytes.to_vec();
    r_zero[..32].fill(0);
    cases.push(refused(
        "14",
        "r = 0",
        format!("{input}.{}", b64(&r_zero)),
        "bad_signature",
    ));
    let mut s_zero = bytes.to_vec();
    s_zero[32..].fill(0);
    cases.push(refused(
        "14",
        "s = 0",
        format!("{input}.{}", b64(&s_zero)),
        "bad_signature",
    ));

    // 15: base64 and segment strictness.
    let (h, c, s) = (parts[0], parts[1], parts[2]);
    cases.push(refused(
        "15",
        "padding",
        format!("{h}=.{c}.{s}"),
        "bad_base64",
    ));
    cases.push(refused(
        "15",
        "standard alphabet +",
        format!("{h}.{}+{}.{s}", &c[..4], &c[4..]),
        "bad_base64",
    ));
    cases.push(refused(
        "15",
        "standard alphabet /",
        format!("{h}.{c}.{}/{}", &s[..4], &s[4..]),
        "bad_base64",
    ));
    cases.push(refused(
        "15",
        "inner space",
        format!("{h}.{} {}.{s}", &c[..4], &c[4..]),
        "bad_base64",
    ));
    cases.push(refused(
        "15",
        "inner tab",
        format!("{h}.{}\t{}.{s}", &c[..4], &c[4..]),
        "bad_base64",
    ));
    cases.push(refused(
        "15",
        "2 segments",
        format!("{h}.{c}"),
        "segment_count",
    ));
    cases.push(refused(
        "15",
        "4 segments",
        format!("{h}.{c}.{s}.{s}"),
        "segment_count",
    ));
    cases.push(refused(
        "15",
        "5 segments",
        format!("{h}.{c}.{s}.{s}.{s}"),
        "segment_count",
    ));
    cases.push(refused(
        "15",
        "trailing dot",
        format!("{h}.{c}.{s}."),
        "segment_count",
    ));
    cases.push(refused(
        "15",
        "empty payload",
        format!("{h}..{s}"),
        "empty_segment",
    ));
    cases.push(refused("15", "all empty", "..".to_owned(), "empty_segment"));

    // 16: over 8 KiB, refused before decoding (valid-looking and garbage).
    cases.push(refused(
        "16",
        "8300 bytes of a",
        "a".repeat(8300),
        "token_too_large",
    ));
    let padded = forge(
        header(kid),
        claims(aud, &format!(r#","pad":"{}""#, "x".repeat(7000))),
        p,
    );
    cases.push(refused(
        "16",
        "signed token padded over 8 KiB",
        padded,
        "token_too_large",
    ));

    // 17: strict JSON.
    cases.push(refused(
        "17",
        "kid twice",
        forge(
            format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","kid":"x"}}"#),
            good(),
            p,
        ),
        "invalid_header",
    ));
    cases.push(refused(
        "17",
        "exp twice in claims",
        forge(
            header(kid),
            format!(r#"{{{times},"exp":{},"aud":"{aud}"}}"#, n + 9999),
            p,
        ),
        "invalid_claims",
    ));
    let mut bad_utf8 = header(kid).into_bytes();
    bad_utf8.insert(bad_utf8.len() - 2, 0xff);
    cases.push(refused(
        "17",
        "invalid UTF-8 header",
        forge(&bad_utf8, good(), p),
        "invalid_header",
    ));
    let mut bad_claims = good().into_bytes();
    bad_claims.insert(bad_claims.len() - 2, 0xc3);
    cases.push(refused(
        "17",
        "invalid UTF-8 claims",
        forge(header(kid), &bad_claims, p),
        "invalid_claims",
    ));
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    cases.push(refused(
        "17",
        "deeply nested claims",
        forge(header(kid), claims(aud, &format!(r#","x":{deep}"#)), p),
        "invalid_claims",
    ));
    cases.push(refused(
        "17",
        "deeply nested header",
        forge(
            format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}","x":{deep}}}"#),
            good(),
            p,
        ),
        "invalid_header",
    ));
    cases.push(refused(
        "17",
        "header not an object",
        forge("[1,2]", good(), p),
        "invalid_header",
    ));

    // 18: roles or module claimed in the token are ignored.
    let boasting = r#","roles":["IMPERSONATION","ADMIN"],"module":"dpm","sub":"dpe-dev""#;
    cases.push(case(
        "18",
        "reporter claims roles and module",
        vec![bearer(&forge(
            header(&k.reporter.kid),
            claims(aud, boasting),
            k.reporter,
        ))],
        Expect::Accepted {
            identity: "ServiceIdentity(module=catalog, id=reporter, roles=[])".to_owned(),
            allowed: false,
        },
    ));
    cases.push(case(
        "18",
        "peer claims another module",
        vec![bearer(&forge(
            header(kid),
            claims(aud, r#","module":"catalog","roles":[]"#),
            p,
        ))],
        Expect::Accepted {
            identity: format!("id={}, roles=[IMPERSONATION]", k.peer_name),
            allowed: true,
        },
    ));

    // 19: usr needs the impersonation role.
    let usr = r#","usr":{"id":"u-1","username":"alice","roles":["ADMIN"]}"#;
    cases.push(refused(
        "19",
        "reporter acting for a user",
        forge(header(&k.reporter.kid), claims(aud, usr), k.reporter),
        "impersonation_not_allowed",
    ));
    cases.push(refused(
        "19",
        "malformed usr",
        forge(header(kid), claims(aud, r#","usr":"alice""#), p),
        "invalid_usr",
    ));
    cases.push(case(
        "19",
        "peer with the role acting for a user",
        vec![bearer(&forge(header(kid), claims(aud, usr), p))],
        Expect::Accepted {
            identity: format!(
                "ImpersonatedUserIdentity(id=u-1, roles=[ADMIN], serviceIdentity=ServiceIdentity(module={}",
                k.other_aud
            ),
            // A call made for a person is judged by the person's rights: never the product wire.
            allowed: false,
        },
    ));

    // 21: a valid token for the other module.
    cases.push(refused(
        "21",
        format!("aud={}", k.other_aud),
        forge(header(kid), claims(k.other_aud, ""), p),
        "wrong_aud",
    ));

    cases
}

// ---------------------------------------------------------------------------------------------
// gRPC calls.

/// The methods called on a daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// `IdentityService.WhoAmI`: open to every verified peer.
    WhoAmI,
    /// DPM's `RegistryService.RegisterEngine`: `module=dpe` only.
    Register,
    /// DPE's `HeartbeatService.GetStatus`: `module=dpm` only.
    Heartbeat,
}

impl Method {
    fn path(self) -> &'static str {
        match self {
            Method::WhoAmI => WHOAMI,
            Method::Register => REGISTER,
            Method::Heartbeat => HEARTBEAT,
        }
    }
}

fn with_auth<T>(message: T, auth: &[String]) -> Request<T> {
    let mut request = Request::new(message);
    for value in auth {
        request.metadata_mut().append(
            "authorization",
            MetadataValue::try_from(value.as_str()).unwrap(),
        );
    }
    request
}

/// Calls `method` with the given `authorization` values; `Ok` carries WhoAmI's identity text.
async fn invoke(channel: &Channel, method: Method, auth: &[String]) -> Result<String, Status> {
    match method {
        Method::WhoAmI => IdentityServiceClient::new(channel.clone())
            .who_am_i(with_auth(WhoAmIRequest {}, auth))
            .await
            .map(|r| r.into_inner().identity),
        Method::Register => RegistryServiceClient::new(channel.clone())
            .register_engine(with_auth(
                RegistrationRequest {
                    engine_id: "hostile-engine".to_owned(),
                    address: Some(EngineAddress {
                        hostname: "127.0.0.1".to_owned(),
                        port: 1,
                    }),
                    constraints: None,
                },
                auth,
            ))
            .await
            .map(|r| format!("{:?}", r.into_inner().status)),
        Method::Heartbeat => HeartbeatServiceClient::new(channel.clone())
            .get_status(with_auth(HeartbeatRequest {}, auth))
            .await
            .map(|r| r.into_inner().engine_id),
    }
}

/// `WhoAmI` with a message of another type, so the request can be made arbitrarily large (the
/// server skips the unknown field) without an oversized client-side type.
async fn who_am_i_padded(
    channel: &Channel,
    auth: &str,
    padding: usize,
) -> Result<WhoAmIResponse, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let message = RegistrationRequest {
        engine_id: "x".repeat(padding),
        address: None,
        constraints: None,
    };
    let codec = tonic_prost::ProstCodec::<RegistrationRequest, WhoAmIResponse>::default();
    grpc.unary(
        with_auth(message, &[auth.to_owned()]),
        tonic::codegen::http::uri::PathAndQuery::from_static(WHOAMI),
        codec,
    )
    .await
    .map(tonic::Response::into_inner)
}

async fn connect(port: u16) -> Channel {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

/// One daemon under attack.
struct Target<'a> {
    name: &'static str,
    daemon: &'a Daemon,
    keys: Keys<'a>,
    /// The method only the peer's module may call.
    restricted: Method,
}

impl Target<'_> {
    /// A token the trusted peer would send, valid for ten minutes.
    fn valid_auth(&self) -> String {
        let p = self.keys.peer;
        bearer(&forge(header(&p.kid), claims(self.keys.aud, ""), p))
    }
}

/// Checks one outcome; returns the reason code of a refusal.
fn check(
    target: &str,
    case: &Case,
    method: Method,
    outcome: Result<String, Status>,
) -> Option<&'static str> {
    let context = format!("{target} {:?} row {} ({})", method, case.row, case.what);
    match (&case.expect, outcome) {
        (Expect::Refused(reason), Err(status)) => {
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{context}: {status:?}"
            );
            assert!(
                status.message().starts_with(&format!("{reason}: ")),
                "{context}: expected {reason}, got {status:?}"
            );
            Some(reason)
        }
        (Expect::Refused(reason), Ok(answer)) => {
            panic!("{context}: accepted ({answer}) instead of refused with {reason}")
        }
        (Expect::Accepted { identity, .. }, outcome) if method == Method::WhoAmI => {
            let answer = outcome.unwrap_or_else(|s| panic!("{context}: refused: {s:?}"));
            assert!(answer.contains(identity.as_str()), "{context}: {answer}");
            None
        }
        (Expect::Accepted { allowed: true, .. }, outcome) => {
            outcome.unwrap_or_else(|s| panic!("{context}: refused: {s:?}"));
            None
        }
        (Expect::Accepted { allowed: false, .. }, outcome) => {
            let status = outcome.expect_err(&context);
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{context}: {status:?}"
            );
            None
        }
    }
}

/// The secrets a status message or log line must never carry.
fn secrets(signers: &[&Signer], homes: &[&std::path::Path]) -> Vec<String> {
    let mut secrets: Vec<String> = homes
        .iter()
        .map(|h| Pair::property(h, GENERATOR_KEY))
        .collect();
    for signer in signers {
        secrets.push(b64(signer.key.to_bytes()));
        let public: Value = serde_json::from_str(&signer.public_jwk).unwrap();
        secrets.push(public["x"].as_str().unwrap().to_owned());
        secrets.push(public["y"].as_str().unwrap().to_owned());
    }
    secrets
}

/// Runs the matrix against one daemon; returns (method path, reason) pairs that must be logged and
/// the signature segments sent (which must not be logged).
async fn run_matrix(
    target: &Target<'_>,
    secrets: &[String],
) -> (BTreeSet<(&'static str, &'static str)>, Vec<String>) {
    let channel = connect(target.daemon.port()).await;
    let valid = target.valid_auth();
    let baseline = invoke(&channel, Method::WhoAmI, std::slice::from_ref(&valid))
        .await
        .unwrap();
    assert!(
        baseline.starts_with(&format!(
            "ServiceIdentity(module={}, id={}",
            target.keys.other_aud, target.keys.peer_name
        )),
        "{baseline}"
    );
    let mut logged = BTreeSet::new();
    let mut sent = Vec::new();
    let cases = matrix(&target.keys);
    let rows: BTreeSet<&str> = cases.iter().map(|c| c.row).collect();
    assert_eq!(rows.len(), 20, "rows 1-19 and 21 are all present: {rows:?}");
    for case in &cases {
        for value in &case.auth {
            if let Some(signature) = value.rsplit('.').next().filter(|s| s.len() >= 40) {
                sent.push(signature.to_owned());
            }
        }
        for method in [Method::WhoAmI, target.restricted] {
            if method == Method::Register
                && matches!(case.expect, Expect::Accepted { allowed: true, .. })
            {
                // Would register a fake engine that DPM then checks and disconnects.
                continue;
            }
            let outcome = invoke(&channel, method, &case.auth).await;
            if let Err(status) = &outcome {
                for secret in secrets {
                    assert!(
                        !status.message().contains(secret.as_str()),
                        "{} row {}: key material in {status:?}",
                        target.name,
                        case.row
                    );
                }
                for kid in [&target.keys.peer.kid, &target.keys.reporter.kid] {
                    assert!(!status.message().contains(kid.as_str()), "{status:?}");
                }
            }
            if let Some(reason) = check(target.name, case, method, outcome) {
                logged.insert((method.path(), reason));
            }
        }
        // The valid caller is served, exactly as before, between every two hostile calls.
        let answer = invoke(&channel, Method::WhoAmI, std::slice::from_ref(&valid))
            .await
            .unwrap_or_else(|s| {
                panic!(
                    "{} after row {} ({}): {s:?}",
                    target.name, case.row, case.what
                )
            });
        assert_eq!(answer, baseline);
    }
    (logged, sent)
}

/// Item 4: metadata, message and connection abuse; the valid caller is served afterwards.
async fn transport_abuse(target: &Target<'_>) {
    let port = target.daemon.port();
    let valid = target.valid_auth();
    let channel = connect(port).await;

    // A huge metadata value (64 KiB, over the 16 KiB header list limit) is refused by the
    // transport before the authentication layer (no token check, no log line), and the daemon
    // lives on; the channel reconnects for the calls below.
    let mut request = with_auth(WhoAmIRequest {}, std::slice::from_ref(&valid));
    request.metadata_mut().insert(
        "x-padding",
        MetadataValue::try_from("p".repeat(64 * 1024)).unwrap(),
    );
    let status = IdentityServiceClient::new(channel.clone())
        .who_am_i(request)
        .await
        .unwrap_err();
    // hyper answers a header list this far over the limit with GOAWAY ENHANCE_YOUR_CALM
    // (`header_list_way_too_large`) on that connection, which tonic reports as RESOURCE_EXHAUSTED.
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // The same for a 64 KiB authorization value.
    let huge = format!("Internal-jwt {}", "a".repeat(64 * 1024));
    let status = invoke(&connect(port).await, Method::WhoAmI, &[huge])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Duplicated custom metadata and many small values are fine within the limit.
    let mut request = with_auth(WhoAmIRequest {}, std::slice::from_ref(&valid));
    for _ in 0..50 {
        request
            .metadata_mut()
            .append("x-dup", MetadataValue::from_static("v"));
    }
    IdentityServiceClient::new(connect(port).await)
        .who_am_i(request)
        .await
        .unwrap();

    // A request message over the limit: RESOURCE_EXHAUSTED before decoding; under it: served.
    let status = who_am_i_padded(&channel, &valid, MESSAGE_LIMIT + 1024)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let answer = who_am_i_padded(&channel, &valid, MESSAGE_LIMIT / 2)
        .await
        .unwrap();
    assert!(answer.identity.contains(target.keys.peer_name));
    // Without a token, the oversized body is not even read: the refusal is UNAUTHENTICATED.
    let status = who_am_i_padded(&channel, "Basic x", MESSAGE_LIMIT * 4)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // Misbehaving connections: silent, half a preface, HTTP/1 garbage, binary garbage. They stay
    // open while the valid caller is served.
    let mut idle = Vec::new();
    for bytes in [
        &b""[..],
        &b"PRI * HTTP/2.0\r\n"[..],
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &noise(4096)[..],
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(bytes).unwrap();
        idle.push(stream);
    }
    // Many concurrent calls on one connection (more than one connection's stream limit).
    let calls: Vec<_> = (0..150)
        .map(|_| {
            let channel = channel.clone();
            let auth = [valid.clone()];
            tokio::spawn(async move {
                common::retrying_refused_streams(|| invoke(&channel, Method::WhoAmI, &auth)).await
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = stream.read(&mut [0u8; 64]);
    }
    // A fresh connection after all that.
    invoke(&connect(port).await, Method::WhoAmI, &[valid])
        .await
        .unwrap();
}

/// Row 20: a token accepted (and cached) is refused once its key's revocation is reloaded.
async fn replay_after_revocation(target: &Target<'_>, home: &std::path::Path) {
    let channel = connect(target.daemon.port()).await;
    let r = target.keys.reporter;
    let token = vec![bearer(&forge(
        header(&r.kid),
        claims(target.keys.aud, ""),
        r,
    ))];
    for _ in 0..2 {
        let answer = invoke(&channel, Method::WhoAmI, &token).await.unwrap();
        assert!(answer.contains("id=reporter"), "{answer}");
    }
    let mark = target.daemon.events().len();
    Pair::replace_atomically(
        home,
        &format!("{REPORTER}.security.jwt-keys.current.is-revoked=false"),
        &format!("{REPORTER}.security.jwt-keys.current.is-revoked=true"),
    );
    target
        .daemon
        .wait_for_after(mark, "deploymentsReloaded", |e| {
            e["eventId"] == "deploymentsReloaded"
                && e["revoked"]
                    .as_str()
                    .is_some_and(|r| r.contains("reporter/current"))
        });
    let status = invoke(&channel, Method::WhoAmI, &token).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().starts_with("revoked_key: "), "{status:?}");
    target
        .daemon
        .wait_for_after(mark, "revoked_key refusal", |e| {
            e["eventId"] == "authenticationFailed"
                && e["reason"] == "revoked_key"
                && e["deployment"] == "reporter"
                && e["kid"] == r.kid.as_str()
        });
    invoke(&channel, Method::WhoAmI, &[target.valid_auth()])
        .await
        .unwrap();
}

/// Item 3 over a running daemon: 50 identical refusals, one line now; the count later.
async fn flood(target: &Target<'_>) -> String {
    let channel = connect(target.daemon.port()).await;
    let kid = format!("flood-{}", target.name);
    let token = vec![bearer(&forge(
        header(&kid),
        claims(target.keys.aud, ""),
        target.keys.stranger,
    ))];
    for _ in 0..50 {
        let status = invoke(&channel, Method::WhoAmI, &token).await.unwrap_err();
        assert!(status.message().starts_with("unknown_kid: "), "{status:?}");
    }
    kid
}

fn lines_with_kid(daemon: &Daemon, event_id: &str, kid: &str) -> Vec<Value> {
    daemon
        .events()
        .into_iter()
        .filter(|e| e["eventId"] == event_id && e["kid"] == kid)
        .collect()
}

fn deployment_entries(reporter: &Signer, retired: &Signer) -> String {
    format!(
        "\n# A third deployment for the hostile tests: module catalog, no roles.\n\
         {REPORTER}.module=catalog\n\
         {REPORTER}.security.jwt-keys.current.fingerprint={}\n\
         {REPORTER}.security.jwt-keys.current.content={}\n\
         {REPORTER}.security.jwt-keys.current.is-revoked=false\n\
         {REPORTER}.security.jwt-keys.retired.fingerprint={}\n\
         {REPORTER}.security.jwt-keys.retired.content={}\n\
         {REPORTER}.security.jwt-keys.retired.is-revoked=true",
        reporter.kid, reporter.public_jwk, retired.kid, retired.public_jwk
    )
}

#[test]
fn hostile_tokens_metadata_and_connections_against_running_daemons() {
    let pair = Pair::linked();
    let dpm_key =
        Signer::of(&GeneratorKey::from_base64(&Pair::property(&pair.dpm, GENERATOR_KEY)).unwrap());
    let dpe_key =
        Signer::of(&GeneratorKey::from_base64(&Pair::property(&pair.dpe, GENERATOR_KEY)).unwrap());
    let reporter = Signer::of(&GeneratorKey::generate());
    let retired = Signer::of(&GeneratorKey::generate());
    let stranger = Signer::of(&GeneratorKey::generate());
    for home in [&pair.dpm, &pair.dpe] {
        Pair::append(home, &deployment_entries(&reporter, &retired));
    }
    // Item 5: DPM's file readable by others, DPE's private.
    Pair::set_mode(&pair.dpm, 0o644);
    Pair::set_mode(&pair.dpe, 0o600);

    let limit = format!(
        "--ataccama.server.grpc.max-message-size={}KB",
        MESSAGE_LIMIT / 1024
    );
    let mut dpm = pair.start_dpm(&[&limit]);
    let mut dpe = pair.start_dpe(dpm.port(), &[&limit]);
    let registered = dpm.wait_for("registerEngine", |e| e["eventId"] == "registerEngine");
    let engine_id = registered["engineId"].as_str().unwrap().to_owned();
    dpm.wait_for("READY", |e| {
        e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY"
    });
    dpe.wait_for("grpcServerStarted", |e| e["eventId"] == "grpcServerStarted");

    // Item 5: the warning names the file and the fix; the private file gets none.
    let exposed = dpm.wait_for("insecureFilePermissions", |e| {
        e["eventId"] == "insecureFilePermissions"
    });
    assert_eq!(exposed["severity"], "WARN");
    assert_eq!(exposed["mode"], "0644");
    let file = exposed["file"].as_str().unwrap();
    assert!(file.ends_with("etc/application.properties"), "{exposed}");
    assert_eq!(exposed["fix"], format!("chmod 600 {file}"));
    assert!(
        !dpe.events()
            .iter()
            .any(|e| e["eventId"] == "insecureFilePermissions"),
        "DPE's file is 0600"
    );

    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    let on_dpm = Target {
        name: "dpm",
        daemon: &dpm,
        keys: Keys {
            peer: &dpe_key,
            peer_name: "dpe-dev",
            aud: "dpm",
            other_aud: "dpe",
            reporter: &reporter,
            retired: &retired,
            stranger: &stranger,
            trap_port,
        },
        restricted: Method::Register,
    };
    let on_dpe = Target {
        name: "dpe",
        daemon: &dpe,
        keys: Keys {
            peer: &dpm_key,
            peer_name: "dpm-dev",
            aud: "dpe",
            other_aud: "dpm",
            reporter: &reporter,
            retired: &retired,
            stranger: &stranger,
            trap_port,
        },
        restricted: Method::Heartbeat,
    };
    let secrets = secrets(
        &[&dpm_key, &dpe_key, &reporter, &retired],
        &[&pair.dpm, &pair.dpe],
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let mut sent = Vec::new();
    let mut floods = Vec::new();
    for (target, home) in [(&on_dpm, &pair.dpm), (&on_dpe, &pair.dpe)] {
        runtime.block_on(async {
            // The flood first, so its folding window ends while the matrix runs.
            let kid = flood(target).await;
            let lines = lines_with_kid(target.daemon, "authenticationFailed", &kid);
            assert_eq!(
                lines.len(),
                1,
                "{}: 50 identical refusals, one line",
                target.name
            );
            floods.push((target.daemon, kid));

            let (logged, signatures) = run_matrix(target, &secrets).await;
            sent.extend(signatures);
            transport_abuse(target).await;
            replay_after_revocation(target, home).await;

            // Every reason reached the log, per method.
            let events = target.daemon.events();
            for (method, reason) in &logged {
                assert!(
                    events.iter().any(|e| e["eventId"] == "authenticationFailed"
                        && e["reason"] == *reason
                        && e["method"] == *method),
                    "{}: no authenticationFailed {reason} for {method}",
                    target.name
                );
            }
            let denied = events
                .iter()
                .filter(|e| {
                    e["eventId"] == "accessDenied" && e["method"] == target.restricted.path()
                })
                .count();
            assert!(
                denied >= 1,
                "{}: the reporter's call was not logged as accessDenied",
                target.name
            );
            // Specific fields: the deployment a known kid maps to.
            assert!(events.iter().any(
                |e| e["reason"] == "bad_signature" && e["deployment"] == target.keys.peer_name
            ));
            assert!(
                events
                    .iter()
                    .any(|e| e["reason"] == "revoked_key" && e["kid"] == retired.kid.as_str())
            );
            assert!(
                events
                    .iter()
                    .any(|e| e["reason"] == "unknown_kid" && e["deployment"] == "-")
            );
        });
    }
    // Nothing connected to the URLs in jku / x5u.
    assert_eq!(
        trap.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "a daemon fetched a key URL from a token"
    );

    // Item 3: after the window each flood is summarised once, with the count.
    for (daemon, kid) in &floods {
        let summary = daemon.wait_for("authenticationFailedRepeated", |e| {
            e["eventId"] == "authenticationFailedRepeated" && e["kid"] == kid.as_str()
        });
        assert_eq!(summary["repeated"], "49", "{summary}");
        assert_eq!(summary["reason"], "unknown_kid");
        assert_eq!(summary["peer"], "127.0.0.1");
        assert_eq!(summary["method"], WHOAMI);
        assert_eq!(lines_with_kid(daemon, "authenticationFailed", kid).len(), 1);
    }

    // A valid RegisterEngine from the real engine's identity is still served as a keep-alive.
    runtime.block_on(async {
        let status = RegistryServiceClient::new(connect(dpm.port()).await)
            .register_engine(with_auth(
                RegistrationRequest {
                    engine_id: engine_id.clone(),
                    address: Some(EngineAddress {
                        hostname: "127.0.0.1".to_owned(),
                        port: i32::from(dpe.port()),
                    }),
                    constraints: None,
                },
                &[on_dpm.valid_auth()],
            ))
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, 1, "ALREADY_REGISTERED");
    });

    // Alive throughout; the engine never left READY; no token, key or private member logged.
    assert!(dpm.is_running(), "dpm died");
    assert!(dpe.is_running(), "dpe died");
    for daemon in [&dpm, &dpe] {
        let text = std::fs::read_to_string(&daemon.log).unwrap();
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "key material in {}",
                daemon.log.display()
            );
        }
        for signature in &sent {
            assert!(
                !text.contains(signature.as_str()),
                "a token signature was logged"
            );
        }
        if let Some(token) = token_in(&text) {
            panic!("something like a token was logged: {token}");
        }
        assert!(!text.contains("\"d\":"), "a private JWK member was logged");
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("\"level_value\":40000"))
            .collect();
        assert!(
            errors.is_empty(),
            "ERRORs were logged:\n{}",
            errors.join("\n")
        );
    }
    let dpm_events = dpm.events();
    assert!(
        !dpm_events
            .iter()
            .any(|e| e["eventId"] == "engineDisconnected"),
        "the engine was disturbed"
    );
    assert!(
        !dpe.events().iter().any(|e| e["eventId"] == "register"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("Unable to register.")),
        "the engine's registration was disturbed"
    );
    eprintln!("hostile matrix ran in {:?}", started.elapsed());
}
