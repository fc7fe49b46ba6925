//! The client side of service authentication: every outbound call carries this module's token.
//!
//! The [`TokenIssuer`] mints once per audience and reuses the token until about a third of its
//! lifetime is left, so attaching it costs a mutex and a string clone, not a signature.

use std::sync::Arc;

use svcid_identity::token::TokenIssuer;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::auth::CORRELATION_ID_HEADER;

/// The authorization scheme this module sends (servers also accept `Bearer`).
pub const SCHEME: &str = "Internal-jwt";

/// A tonic interceptor that adds `authorization: Internal-jwt <token>` for one target module type
/// and an `x-correlation-id` when the caller did not set one.
#[derive(Clone)]
pub struct OutboundCredentials {
    /// This module's token source.
    issuer: Arc<TokenIssuer>,
    /// The peer's module type, the token's `aud`.
    audience: String,
}

impl std::fmt::Debug for OutboundCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundCredentials")
            .field("kid", &self.issuer.kid())
            .field("audience", &self.audience)
            .finish()
    }
}

impl OutboundCredentials {
    /// Credentials for calls to modules of type `audience` (`"dpm"`, `"dpe"`).
    pub fn new(issuer: Arc<TokenIssuer>, audience: impl Into<String>) -> Self {
        Self {
            issuer,
            audience: audience.into(),
        }
    }
}

impl Interceptor for OutboundCredentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let token = self.issuer.token_for(&self.audience);
        let value = MetadataValue::try_from(format!("{SCHEME} {token}"))
            .map_err(|_| Status::internal("minted token is not valid metadata"))?;
        request.metadata_mut().insert("authorization", value);
        if !request.metadata().contains_key(CORRELATION_ID_HEADER)
            && let Ok(id) = MetadataValue::try_from(uuid::Uuid::new_v4().to_string())
        {
            request.metadata_mut().insert(CORRELATION_ID_HEADER, id);
        }
        Ok(request)
    }
}

/// Sets the correlation id of an outbound request (e.g. the engine id for registration).
pub fn with_correlation_id<T>(mut request: Request<T>, id: &str) -> Request<T> {
    if let Ok(value) = MetadataValue::try_from(id) {
        request.metadata_mut().insert(CORRELATION_ID_HEADER, value);
    }
    request
}
