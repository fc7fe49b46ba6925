//! The one place that decides which gRPC status an authentication or authorization error becomes.
//!
//! A refused caller learns the reason class (the stable reason code), never key material: the
//! verifier's messages are written to be safe to return.

use svcid_identity::authz::AccessDenied;
use svcid_identity::token::AuthError;
use tonic::Status;

/// `UNAUTHENTICATED` with the reason code and a short sentence.
pub fn unauthenticated(error: &AuthError) -> Status {
    Status::unauthenticated(format!("{}: {error}", error.reason()))
}

/// `UNAUTHENTICATED` for a refused user token: the reason code and a short sentence (never the
/// token).
pub fn unauthenticated_user(error: &svcid_users::UserAuthError) -> Status {
    Status::unauthenticated(format!("{}: {error}", error.reason()))
}

/// `PERMISSION_DENIED`: the caller is known but may not call this method.
pub fn permission_denied(denied: &AccessDenied) -> Status {
    Status::permission_denied(denied.to_string())
}
