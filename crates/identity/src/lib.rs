//! Service identity for svcid: who is calling, proven by a short-lived ES256 token.
//!
//! This crate owns the security core and nothing else: P-256 JWKs and their RFC 7638 thumbprints
//! ([`jwk`]), the immutable table of configured peers ([`deployments`]), minting and strict verification
//! of service tokens ([`token`]), the identities handed to request handlers ([`identity`]) and the
//! module-level access policy checked after authentication ([`authz`]), and the bounded cache of
//! verified tokens both kinds of token share ([`cache`]). Time is injected through
//! [`clock`] so expiry is testable. It depends on no async runtime, no gRPC stack and no other svcid
//! crate: the daemons feed it metadata bytes and configuration values and get typed answers back.
//!
//! People's Bearer tokens from an identity provider (Keycloak, MicroProfile JWT) have their own
//! rules beside the module tokens' ([`user`]), under the same constraints.

pub mod authz;
mod base64url;
pub mod cache;
pub mod clock;
pub mod deployments;
mod es256;
pub mod identity;
mod json_members;
pub mod jwk;
pub mod printable;
mod rs256;
mod strict_json;
pub mod token;
pub mod user;

pub use authz::{AccessDenied, AccessPolicy};
pub use cache::VerifiedTokens;
pub use clock::{Clock, ManualClock, SystemClock};
pub use deployments::{Deployment, DeploymentKey, Deployments, DeploymentsDiff, DeploymentsError};
pub use identity::{Caller, CallerIdentity, ImpersonatedUser, ServiceIdentity};
pub use jwk::{ContentFindings, GeneratorKey, KeyError, PublicKey, thumbprint};
pub use strict_json::StrictJsonError;
pub use token::{
    AuthError, AuthErrorKind, DEFAULT_CLOCK_SKEW, DEFAULT_IMPERSONATION_ROLE,
    DEFAULT_MAX_TOKEN_LIFETIME, DEFAULT_REQUIRE_AUDIENCE, DEFAULT_TOKEN_EXPIRATION,
    MAX_TOKEN_BYTES, TokenIssuer, TokenProfile, TokenVerifier, VerifyPolicy,
};
