//! The codes of the problems only `check` finds (the daemons' own are in
//! [`svcid_config::codes`] and `svcid_properties::codes`).

use svcid_config::ProblemCode;

/// Warning: the module type of a home was a guess of last resort.
pub const MODULE_GUESSED: ProblemCode = ProblemCode::new("check.module-guessed");
/// Error: what the home holds says it is the other module's (against `--module`), or says
/// both (`svcid_config::evidence`).
pub const MODULE_EVIDENCE: ProblemCode = ProblemCode::new("check.module-evidence");
/// Error: the deployment holding the signer's current key names another module type.
pub const PEER_MODULE_MISMATCH: ProblemCode = ProblemCode::new("cross.module-mismatch");
/// Error: the signer's current key is revoked by the verifier.
pub const CURRENT_KEY_REVOKED: ProblemCode = ProblemCode::new("cross.current-key-revoked");
/// Error: the entry with the signer's fingerprint holds another public key.
pub const CONTENT_MISMATCH: ProblemCode = ProblemCode::new("cross.content-mismatch");
/// Error: the verifier holds the signer's public key under another fingerprint.
pub const FINGERPRINT_MISMATCH: ProblemCode = ProblemCode::new("cross.fingerprint-mismatch");
/// Error: the verifier does not trust the signer's current key at all.
pub const KEY_NOT_TRUSTED: ProblemCode = ProblemCode::new("cross.key-not-trusted");
/// Error: the signer sends tokens without `aud` (token-profile=product) to a verifier whose
/// entry for it is strict.
pub const TOKEN_PROFILE_MISMATCH: ProblemCode = ProblemCode::new("cross.token-profile-mismatch");
/// Error (`--online` only): a user-token issuer's key URL could not be reached (refused,
/// timeout, DNS, TLS).
pub const USER_KEYS_UNREACHABLE: ProblemCode = ProblemCode::new("online.user-keys-unreachable");
/// Error (`--online` only): a user-token issuer's key URL answered, but not with a usable key
/// set (a status other than 2xx, a redirect, too large, not JSON, no usable signing key).
pub const USER_KEYS_UNUSABLE: ProblemCode = ProblemCode::new("online.user-keys-unusable");

/// Every code above.
pub const ALL: &[ProblemCode] = &[
    MODULE_GUESSED,
    MODULE_EVIDENCE,
    PEER_MODULE_MISMATCH,
    CURRENT_KEY_REVOKED,
    CONTENT_MISMATCH,
    FINGERPRINT_MISMATCH,
    KEY_NOT_TRUSTED,
    TOKEN_PROFILE_MISMATCH,
    USER_KEYS_UNREACHABLE,
    USER_KEYS_UNUSABLE,
];
