//! Why a user token was not accepted: [`NotUserToken`] when it belongs to no user issuer (the caller
//! then verifies it as a module token), [`UserTokenError`] when it does and a check failed.

/// The token names no configured user issuer, or cannot be read far enough to tell. It is not
/// refused here: the caller verifies it as a module token, which gives the precise refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a user token ({})", self.reason())]
pub enum NotUserToken {
    /// Larger than [`MAX_USER_TOKEN_BYTES`](super::MAX_USER_TOKEN_BYTES).
    TooLarge,
    /// Not three base64url segments holding a JSON header and JSON claims.
    Unreadable,
    /// No `iss`, or `iss` is not a string.
    NoIssuer,
    /// `iss` equals no configured user issuer.
    UnknownIssuer,
}

impl NotUserToken {
    /// A stable snake_case code, for debug logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge => "token_too_large",
            Self::Unreadable => "unreadable",
            Self::NoIssuer => "no_iss",
            Self::UnknownIssuer => "unknown_iss",
        }
    }
}

/// A user token of a configured issuer that failed a check; one variant per reason of the
/// validation policy, in the order checked. `Display` is a short sentence that never holds the
/// token, a signature or key material (only claim names and short escaped excerpts of `alg`/`typ`).
#[derive(Debug, thiserror::Error)]
pub enum UserTokenError {
    /// The token was routed here but is not a user token after all (see [`NotUserToken`]).
    #[error("{0}")]
    NotUserToken(NotUserToken),
    /// The header has no `alg`.
    #[error("token header has no alg")]
    MissingAlgorithm,
    /// `alg` is not in the issuer's allow-list (`none`, HS256, PS256, RS512, …).
    #[error("token alg {alg} is refused for this issuer")]
    AlgorithmRefused {
        /// The alg found (escaped, short) or its JSON type.
        alg: String,
    },
    /// The header has `crit`: it names extensions this verifier does not implement.
    #[error("token header carries crit, which is refused")]
    CriticalHeader,
    /// `typ` is not `JWT` (or is absent where the issuer requires it).
    #[error("token typ {typ} is refused; JWT is required")]
    BadType {
        /// The typ found (escaped, short), its JSON type, or `<absent>`.
        typ: String,
    },
    /// `kid` is present and not a string.
    #[error("token kid is not a string")]
    InvalidKid,
    /// The issuer's key set has no key with the token's `kid` (a key source may refetch).
    #[error("token kid matches no key of the issuer")]
    UnknownKid,
    /// No key of the type the token's `alg` needs (an RS256 header over an EC key, …).
    #[error("no key of the issuer fits the token's alg")]
    AlgorithmKeyMismatch,
    /// The signature segment is not strict base64url.
    #[error("token signature is not strict base64url")]
    BadBase64,
    /// No candidate key verifies the signature (another signer, or altered bytes).
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` (or `iat`, where required) is missing.
    #[error("token has no {claim} claim")]
    MissingTimeClaim {
        /// Which claim.
        claim: &'static str,
    },
    /// `exp`, `iat` or `nbf` is not a non-negative integer.
    #[error("token {claim} is not a non-negative integer")]
    InvalidTimeClaim {
        /// Which claim.
        claim: &'static str,
    },
    /// `iat` is later than `exp`.
    #[error("token iat is after its exp")]
    IssuedAfterExpiry,
    /// `iat` or `nbf` is later than now plus the skew.
    #[error("token {claim} is in the future")]
    NotYetValid {
        /// Which claim.
        claim: &'static str,
    },
    /// `exp` plus the skew has passed.
    #[error("token has expired")]
    Expired,
    /// `iat` is longer ago than the configured token age.
    #[error("token is older than the configured token age")]
    TooOld,
    /// `aud` is configured and the token has none.
    #[error("token has no aud claim")]
    MissingAudience,
    /// `aud` is neither a string nor an array of strings.
    #[error("token aud is neither a string nor an array of strings")]
    InvalidAudience,
    /// `aud` shares no value with the configured audiences.
    #[error("token was not issued for a configured audience")]
    WrongAudience,
    /// The claim naming the user is missing.
    #[error("token has no {claim} claim")]
    MissingNameClaim {
        /// Which claim (for MicroProfile JWT: `upn, preferred_username or sub`).
        claim: &'static str,
    },
    /// A name claim is not a non-empty string.
    #[error("token {claim} is not a non-empty string")]
    InvalidNameClaim {
        /// Which claim.
        claim: &'static str,
    },
    /// The roles claim is not an array of strings (or, for `groups`, one string).
    #[error("token {claim} is not a list of role names")]
    InvalidRoles {
        /// Which claim: `realm_access.roles` or `groups`.
        claim: &'static str,
    },
}

impl From<NotUserToken> for UserTokenError {
    fn from(not: NotUserToken) -> Self {
        UserTokenError::NotUserToken(not)
    }
}

impl UserTokenError {
    /// The stable snake_case code of this refusal, for logs and metrics. Codes shared with the
    /// module-token verifier mean the same thing there.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotUserToken(_) => "not_user_token",
            Self::MissingAlgorithm => "missing_alg",
            Self::AlgorithmRefused { .. } => "alg_refused",
            Self::CriticalHeader => "crit_refused",
            Self::BadType { .. } => "bad_typ",
            Self::InvalidKid => "invalid_kid",
            Self::UnknownKid => "unknown_kid",
            Self::AlgorithmKeyMismatch => "alg_key_mismatch",
            Self::BadBase64 => "bad_base64",
            Self::BadSignature => "bad_signature",
            Self::MissingTimeClaim { .. } => "missing_time_claim",
            Self::InvalidTimeClaim { .. } => "invalid_time_claim",
            Self::IssuedAfterExpiry => "iat_after_exp",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::Expired => "expired",
            Self::TooOld => "token_too_old",
            Self::MissingAudience => "missing_aud",
            Self::InvalidAudience => "invalid_aud",
            Self::WrongAudience => "wrong_aud",
            Self::MissingNameClaim { .. } => "missing_name_claim",
            Self::InvalidNameClaim { .. } => "invalid_name_claim",
            Self::InvalidRoles { .. } => "invalid_roles",
        }
    }

    /// Every reason code, in the order of the validation policy (for metric label sets and docs).
    pub const REASONS: [&'static str; 22] = [
        "not_user_token",
        "missing_alg",
        "alg_refused",
        "crit_refused",
        "bad_typ",
        "invalid_kid",
        "unknown_kid",
        "alg_key_mismatch",
        "bad_base64",
        "bad_signature",
        "missing_time_claim",
        "invalid_time_claim",
        "iat_after_exp",
        "not_yet_valid",
        "expired",
        "token_too_old",
        "missing_aud",
        "invalid_aud",
        "wrong_aud",
        "missing_name_claim",
        "invalid_name_claim",
        "invalid_roles",
    ];
}

/// Why a list of issuers cannot form one verifier.
#[derive(Debug, thiserror::Error)]
pub enum UserIssuersError {
    /// Two issuers share an `iss`: a token could not be routed to one set of rules.
    #[error("two user-token issuers share the issuer \"{issuer}\"")]
    DuplicateIssuer {
        /// The shared `iss` (escaped, shortened).
        issuer: String,
    },
    /// An issuer with an empty `iss` or an empty algorithm list.
    #[error("user-token issuer \"{issuer}\" {problem}")]
    Incomplete {
        /// The `iss` (escaped, shortened; empty when that is the problem).
        issuer: String,
        /// `has no issuer` or `accepts no algorithm`.
        problem: &'static str,
    },
}
