//! Fuzzes `svcid_identity::user::UserKeySet::parse`, the parser of every user-token issuer's keys:
//! a PEM key, a JWK, a JWK set or base64 of either, from a property, a file or a key URL's answer
//! (which anyone on the path to an `http://` URL controls). No text may panic it.
//!
//! The input (lossy UTF-8) is parsed with both filters, Keycloak's realm keys and MicroProfile
//! JWT's signing keys, and also base64-encoded (standard alphabet, as `mp.jwt.verify.publickey`
//! may carry it), so JSON mutations reach the JWK checks behind the base64 layer. A set that loads
//! keeps 1 to `MAX_KEY_SET_KEYS` keys, each findable by its own `kid`, and holds nothing the Keycloak filter
//! drops that the Signing filter would not.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use svcid_identity::user::{KeyFilter, KeyForm, MAX_KEY_SET_KEYS, UserKeySet};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let encoded = STANDARD.encode(text.as_bytes());
    for candidate in [text.as_str(), encoded.as_str()] {
        let keycloak = parse(candidate, KeyFilter::KeycloakRealm);
        let signing = parse(candidate, KeyFilter::Signing);
        if let (Some(keycloak), Some(signing)) = (keycloak, signing) {
            // Keycloak's filter keeps a subset of what the Signing filter keeps.
            assert!(
                keycloak <= signing,
                "{keycloak} keys for Keycloak, {signing} signing"
            );
        }
    }
});

/// Parses `text` with `filter`; the number of keys kept when it loads.
fn parse(text: &str, filter: KeyFilter) -> Option<usize> {
    match UserKeySet::parse(text, filter) {
        Ok(set) => {
            let keys = set.keys();
            assert!(!keys.is_empty(), "a key set that loads keeps a key");
            assert!(keys.len() <= MAX_KEY_SET_KEYS, "{} keys kept", keys.len());
            if set.form() == KeyForm::Single {
                assert_eq!(keys.len(), 1, "a single key is one key");
            }
            for key in keys {
                let _ = (key.algorithm(), format!("{key:?}"));
                if let Some(kid) = key.kid() {
                    assert!(
                        set.contains_kid(kid),
                        "kid {kid:?} not found in its own set"
                    );
                }
            }
            let _ = set.skipped();
            Some(keys.len())
        }
        Err(error) => {
            let _ = error.to_string();
            None
        }
    }
}
