//! Why a call's token was refused: one [`AuthErrorKind`] per reason of the validation policy, and
//! the token's `kid` when it had been read by then.
//!
//! The kind and the `kid` are kept apart so that each reason is stated once: a check that fails
//! after the key lookup says what failed, and the verifier attaches the `kid` it is checking.

use super::MAX_TOKEN_BYTES;
use crate::strict_json::StrictJsonError;

/// A refused token. [`reason`] gives the stable code of its kind (see the module table), `Display`
/// a short sentence without key material or token text, and [`kid`] the token's `kid` (escaped, at
/// most 64 characters) when it was read.
///
/// [`reason`]: AuthError::reason
/// [`kid`]: AuthError::kid
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct AuthError {
    /// What was wrong.
    kind: AuthErrorKind,
    /// The token's `kid` for logs (escaped, bounded), when the check got far enough to read one.
    kid: Option<String>,
}

impl AuthError {
    /// A refusal of `kind` with `kid` (escaped, bounded) when one was read.
    pub fn new(kind: AuthErrorKind, kid: Option<String>) -> Self {
        AuthError { kind, kid }
    }

    /// What was wrong.
    pub fn kind(&self) -> &AuthErrorKind {
        &self.kind
    }

    /// The stable snake_case code of this refusal, for logs and the gRPC status text.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The token's `kid` when one was read (escaped, at most 64 characters), for logs.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

impl From<AuthErrorKind> for AuthError {
    /// A refusal before any `kid` was read.
    fn from(kind: AuthErrorKind) -> Self {
        AuthError { kind, kid: None }
    }
}

/// What was wrong with a token; one variant per reason, in the order checked.
#[derive(Debug, thiserror::Error)]
pub enum AuthErrorKind {
    /// The call has no `authorization` metadata.
    #[error("no authorization metadata")]
    MissingAuthorization,
    /// The call has several `authorization` values; which one counts would be ambiguous.
    #[error("{count} authorization values; exactly one is allowed")]
    MultipleAuthorization {
        /// How many values were sent.
        count: usize,
    },
    /// The `authorization` value is empty.
    #[error("empty authorization value")]
    EmptyAuthorization,
    /// The value is longer than [`MAX_TOKEN_BYTES`]; it was not decoded.
    #[error("authorization value of {len} bytes exceeds {MAX_TOKEN_BYTES}")]
    TokenTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// The scheme is neither `Internal-jwt` nor `Bearer`.
    #[error("unknown authorization scheme (expected Internal-jwt or Bearer)")]
    UnknownScheme,
    /// The scheme is not followed by a space and a token.
    #[error("authorization scheme without a token")]
    MissingToken,
    /// More than one space (or other whitespace) between scheme and token.
    #[error("authorization value is not `<scheme> <token>` with one space")]
    MalformedAuthorization,
    /// The token does not have exactly three segments.
    #[error("token has {count} segments instead of 3")]
    SegmentCount {
        /// How many `.`-separated segments it has.
        count: usize,
    },
    /// A segment is empty (e.g. an unsigned `alg: none` token).
    #[error("token has an empty segment")]
    EmptySegment,
    /// A segment is not strict base64url without padding.
    #[error("token {segment} is not strict base64url")]
    BadBase64 {
        /// Which segment: `header`, `payload` or `signature`.
        segment: &'static str,
    },
    /// The header is not a strict JSON object.
    #[error("token header is not a strict JSON object: {detail}")]
    InvalidHeader {
        /// What is wrong (position or member name, never content).
        detail: StrictJsonError,
    },
    /// The header has no `alg`.
    #[error("token header has no alg")]
    MissingAlgorithm,
    /// `alg` is not the string `ES256` (none, HS256, RS256, ES384, EdDSA, …).
    #[error("token alg {alg} is refused; only ES256 is accepted")]
    AlgorithmRefused {
        /// The alg found (escaped, short) or its JSON type.
        alg: String,
    },
    /// The header carries a member that would let the token pick its own key.
    #[error("token header carries {member}, which is refused")]
    ForbiddenHeaderMember {
        /// `jwk`, `jku`, `x5u`, `x5c` or `crit`.
        member: &'static str,
    },
    /// `typ` is present and not `JWT`.
    #[error("token typ {typ} is refused; only JWT is accepted")]
    BadType {
        /// The typ found (escaped, short) or its JSON type.
        typ: String,
    },
    /// The header has no `kid`.
    #[error("token header has no kid")]
    MissingKid,
    /// `kid` is not a string.
    #[error("token kid is not a string")]
    InvalidKid,
    /// `kid` equals no configured fingerprint.
    #[error("token kid matches no configured fingerprint")]
    UnknownKid,
    /// The token's `alg` differs from the configured key's `alg`.
    #[error("token alg differs from the configured key's alg")]
    AlgorithmKeyMismatch,
    /// The key is revoked in configuration.
    #[error("token key is revoked")]
    RevokedKey,
    /// The signature is not 64 bytes (DER-encoded or truncated).
    #[error("token signature is {len} bytes; ES256 needs 64 (raw r||s)")]
    SignatureLength {
        /// Its decoded length.
        len: usize,
    },
    /// The signature does not verify with the configured key.
    #[error("token signature is invalid")]
    BadSignature,
    /// The claims are not a strict JSON object.
    #[error("token claims are not a strict JSON object: {detail}")]
    InvalidClaims {
        /// What is wrong.
        detail: StrictJsonError,
    },
    /// `iat`, `nbf` or `exp` is missing.
    #[error("token has no {claim} claim")]
    MissingTimeClaim {
        /// Which claim.
        claim: &'static str,
    },
    /// `iat`, `nbf` or `exp` is not a non-negative integer JSON number.
    #[error("token {claim} is not a non-negative integer")]
    InvalidTimeClaim {
        /// Which claim.
        claim: &'static str,
    },
    /// `iat` or `nbf` is later than now plus the clock skew.
    #[error("token {claim} is in the future")]
    NotYetValid {
        /// Which claim.
        claim: &'static str,
    },
    /// `exp` plus the clock skew has passed.
    #[error("token has expired")]
    Expired,
    /// `exp - iat` exceeds the maximum token lifetime.
    #[error("token lifetime exceeds the maximum")]
    LifetimeTooLong,
    /// No `aud` while the policy requires one.
    #[error("token has no aud claim")]
    MissingAudience,
    /// `aud` is neither a string nor an array of strings.
    #[error("token aud is neither a string nor an array of strings")]
    InvalidAudience,
    /// `aud` does not name this module.
    #[error("token was not issued for this module")]
    WrongAudience,
    /// `jti` is present and not a string.
    #[error("token jti is not a string")]
    InvalidJti,
    /// `usr` is not `{id, username, roles}`.
    #[error("token usr claim is malformed")]
    InvalidUser,
    /// `usr` sent by a peer without the impersonation role.
    #[error("Impersonation is not allowed: the calling deployment lacks the impersonation role")]
    ImpersonationNotAllowed,
}

impl AuthErrorKind {
    /// The stable snake_case code of this refusal, for logs and the gRPC status text.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingAuthorization => "missing_authorization",
            Self::MultipleAuthorization { .. } => "multiple_authorization",
            Self::EmptyAuthorization => "empty_authorization",
            Self::TokenTooLarge { .. } => "token_too_large",
            Self::UnknownScheme => "unknown_scheme",
            Self::MissingToken => "missing_token",
            Self::MalformedAuthorization => "malformed_authorization",
            Self::SegmentCount { .. } => "segment_count",
            Self::EmptySegment => "empty_segment",
            Self::BadBase64 { .. } => "bad_base64",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::MissingAlgorithm => "missing_alg",
            Self::AlgorithmRefused { .. } => "alg_refused",
            Self::ForbiddenHeaderMember { .. } => "forbidden_header_member",
            Self::BadType { .. } => "bad_typ",
            Self::MissingKid => "missing_kid",
            Self::InvalidKid => "invalid_kid",
            Self::UnknownKid => "unknown_kid",
            Self::AlgorithmKeyMismatch => "alg_key_mismatch",
            Self::RevokedKey => "revoked_key",
            Self::SignatureLength { .. } => "bad_signature_length",
            Self::BadSignature => "bad_signature",
            Self::InvalidClaims { .. } => "invalid_claims",
            Self::MissingTimeClaim { .. } => "missing_time_claim",
            Self::InvalidTimeClaim { .. } => "invalid_time_claim",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::Expired => "expired",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::MissingAudience => "missing_aud",
            Self::InvalidAudience => "invalid_aud",
            Self::WrongAudience => "wrong_aud",
            Self::InvalidJti => "invalid_jti",
            Self::InvalidUser => "invalid_usr",
            Self::ImpersonationNotAllowed => "impersonation_not_allowed",
        }
    }
}
