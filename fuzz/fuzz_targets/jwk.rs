//! Fuzzes the JWK loaders of `svcid_identity::jwk`: the generator key property
//! (`GeneratorKey::from_base64`), a peer's `content` (`PublicKey::from_content`) and the RFC 7638
//! thumbprint of any JSON object. None may panic, whatever the text.
//!
//! The generator key is base64 of JSON, which random bytes almost never are; so the input is
//! tried as is and also base64-encoded (standard alphabet, as the manual does), letting the JSON
//! mutations reach the JSON and JWK checks behind the base64 layer. What loads must also survive a
//! round trip through its own rendering: that is checked with assertions.
//!
//! A loadable generator key needs a private scalar matching its point, which no fuzzer finds and
//! no seed may carry. So the target generates one key at start and replaces `$D`, `$X` and `$Y`
//! in the input with its members; seeds use those placeholders around hostile structure.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use svcid_identity::jwk::{GeneratorKey, PublicKey, thumbprint};

/// `[("$D", d), ("$X", x), ("$Y", y)]` of a key generated at start, base64url as in a JWK.
fn placeholders() -> &'static [(&'static str, String); 3] {
    static MEMBERS: OnceLock<[(&'static str, String); 3]> = OnceLock::new();
    MEMBERS.get_or_init(|| {
        let pair: Map<String, Value> =
            serde_json::from_str(&GeneratorKey::generate().keypair_json_pretty())
                .expect("keypair JSON parses");
        let member = |name: &str| {
            pair.get(name)
                .and_then(Value::as_str)
                .expect("keypair member")
                .to_owned()
        };
        [
            ("$D", member("d")),
            ("$X", member("x")),
            ("$Y", member("y")),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let mut text = String::from_utf8_lossy(data).into_owned();
    if text.contains('$') {
        for (placeholder, value) in placeholders() {
            text = text.replace(placeholder, value);
        }
    }
    let encoded = STANDARD.encode(&text);

    for candidate in [text.as_str(), encoded.as_str()] {
        match GeneratorKey::from_base64(candidate) {
            Ok(key) => generator_round_trip(&key),
            Err(error) => {
                let _ = error.to_string();
            }
        }
        match PublicKey::from_content(candidate) {
            Ok((key, _findings)) => public_round_trip(&key),
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }

    if let Ok(object) = serde_json::from_str::<Map<String, Value>>(&text) {
        match thumbprint(&object) {
            Ok(print) => assert_eq!(
                print.len(),
                43,
                "a SHA-256 thumbprint is 43 base64url chars"
            ),
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
});

/// A loaded generator key renders to a property value that loads to the same key.
fn generator_round_trip(key: &GeneratorKey) {
    let _ = format!("{key:?}");
    let again = GeneratorKey::from_base64(&key.to_base64()).expect("own rendering reloads");
    assert_eq!(again.kid(), key.kid());
    assert_eq!(again.public_key(), key.public_key());
    public_round_trip(&key.public_key());
}

/// A loaded public key renders to `content` that loads to the same key and thumbprint.
fn public_round_trip(key: &PublicKey) {
    let _ = format!("{key:?}");
    let (again, findings) =
        PublicKey::from_content(&key.content_json()).expect("own content reloads");
    assert!(!findings.private_part, "content_json must never carry d");
    assert_eq!(&again, key);
    assert_eq!(again.thumbprint(), key.thumbprint());
}
