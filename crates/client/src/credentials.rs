//! The client side of service authentication: every outbound call carries this module's token.
//!
//! The [`TokenIssuer`] mints once per audience and reuses the token until about a third of its
//! lifetime is left, so attaching it costs a mutex and a string clone, not a signature. A call made
//! on a person's behalf ([`OutboundCredentials::acting_for`]) carries the person in `usr` and gets a
//! token of its own, minted for that call and never reused: no cache can hand one person's token
//! to another's call.

use std::sync::Arc;

use svcid_identity::identity::ImpersonatedUser;
use svcid_identity::token::{TokenIssuer, TokenProfile, TokenVerifier};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

pub use svcid_identity::token::SCHEME;

/// The gRPC metadata key of the correlation id, propagated between modules (docs/wire.md).
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";

/// `Internal-jwt <token>` as a metadata value marked sensitive: HTTP/2 never adds it to the HPACK
/// table (which would let a peer sharing the connection probe for it) and `Debug` of the metadata
/// prints `Sensitive` instead of it. `None` when `token` holds bytes metadata cannot carry.
pub fn authorization_value(token: &str) -> Option<AsciiMetadataValue> {
    let mut value = MetadataValue::try_from(format!("{SCHEME} {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Which token profile (docs/wire.md) the tokens sent to a peer follow. Looked up on every call, so
/// a `token-profile` changed in the properties file applies with the next call after the reload.
#[derive(Clone, Debug)]
pub enum PeerProfile {
    /// Always this one ([`TokenProfile::Strict`] for tools and tests).
    Fixed(TokenProfile),
    /// The profile of the named deployment in the deployments in force: DPM's checks of an engine
    /// use the deployment that registered it.
    OfDeployment(Arc<TokenVerifier>, String),
    /// The profile of the deployments of a module type: a DPE's calls to its DPM.
    OfModule(Arc<TokenVerifier>, String),
}

impl PeerProfile {
    /// The profile in force now.
    pub fn current(&self) -> TokenProfile {
        match self {
            PeerProfile::Fixed(profile) => *profile,
            PeerProfile::OfDeployment(verifier, name) => verifier.token_profile_of(name),
            PeerProfile::OfModule(verifier, module) => verifier.token_profile_for_module(module),
        }
    }
}

/// A tonic interceptor that adds `authorization: Internal-jwt <token>` for one target module type
/// and an `x-correlation-id` when the caller did not set one.
#[derive(Clone)]
pub struct OutboundCredentials {
    /// This module's token source.
    issuer: Arc<TokenIssuer>,
    /// The peer's module type, the token's `aud` (unless the profile leaves it out).
    audience: String,
    /// Whether the peer takes our strict tokens or the product's audience-less ones.
    profile: PeerProfile,
    /// The person the calls are made for (`usr`), if any.
    user: Option<Arc<ImpersonatedUser>>,
}

impl std::fmt::Debug for OutboundCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundCredentials")
            .field("kid", &self.issuer.kid())
            .field("audience", &self.audience)
            .field("profile", &self.profile.current())
            .field("user", &self.user.as_ref().map(|user| &user.id))
            .finish()
    }
}

impl OutboundCredentials {
    /// Credentials for calls to modules of type `audience` (`"dpm"`, `"dpe"`), strict profile.
    pub fn new(issuer: Arc<TokenIssuer>, audience: impl Into<String>) -> Self {
        Self {
            issuer,
            audience: audience.into(),
            profile: PeerProfile::Fixed(TokenProfile::Strict),
            user: None,
        }
    }

    /// The same credentials for calls made on `user`'s behalf: each call's token carries `user` as
    /// `usr` and is minted for that call alone. The peer accepts it only from a deployment holding
    /// the impersonation role.
    #[must_use]
    pub fn acting_for(mut self, user: ImpersonatedUser) -> Self {
        self.user = Some(Arc::new(user));
        self
    }

    /// The same credentials with the peer's token profile taken from `profile` on every call.
    #[must_use]
    pub fn with_profile(mut self, profile: PeerProfile) -> Self {
        self.profile = profile;
        self
    }
}

impl Interceptor for OutboundCredentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let profile = self.profile.current();
        let token = match &self.user {
            None => self.issuer.token_for_peer(&self.audience, profile),
            Some(user) => self
                .issuer
                .mint_for_peer(&self.audience, profile, Some(user)),
        };
        let value = authorization_value(&token)
            .ok_or_else(|| Status::internal("minted token is not valid metadata"))?;
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

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use svcid_identity::{GeneratorKey, SystemClock};

    use super::*;

    fn credentials() -> OutboundCredentials {
        let issuer = TokenIssuer::new(
            GeneratorKey::generate(),
            Duration::from_secs(60),
            Arc::new(SystemClock),
        )
        .unwrap();
        OutboundCredentials::new(Arc::new(issuer), "dpm")
    }

    #[test]
    fn the_token_is_attached_as_sensitive_metadata() {
        let mut credentials = credentials();
        let request = credentials.call(Request::new(())).unwrap();
        let value = request.metadata().get("authorization").unwrap();
        assert!(value.is_sensitive());
        let token = value
            .to_str()
            .unwrap()
            .strip_prefix("Internal-jwt ")
            .unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert!(!format!("{:?}", request.metadata()).contains(token));
    }

    #[test]
    fn an_existing_authorization_is_replaced_and_a_correlation_id_kept() {
        let mut credentials = credentials();
        let mut request = with_correlation_id(Request::new(()), "engine-7");
        request
            .metadata_mut()
            .insert("authorization", MetadataValue::from_static("Bearer x"));
        let request = credentials.call(request).unwrap();
        let values: Vec<_> = request.metadata().get_all("authorization").iter().collect();
        assert_eq!(values.len(), 1);
        assert!(values[0].to_str().unwrap().starts_with("Internal-jwt "));
        assert_eq!(
            request.metadata().get(CORRELATION_ID_HEADER).unwrap(),
            "engine-7"
        );
    }

    #[test]
    fn a_fresh_correlation_id_is_added_when_missing() {
        let mut credentials = credentials();
        let request = credentials.call(Request::new(())).unwrap();
        let id = request.metadata().get(CORRELATION_ID_HEADER).unwrap();
        assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
    }

    #[test]
    fn a_product_peer_gets_tokens_without_aud() {
        use base64::Engine as _;
        let mut credentials = credentials().with_profile(PeerProfile::Fixed(TokenProfile::Product));
        let request = credentials.call(Request::new(())).unwrap();
        let value = request.metadata().get("authorization").unwrap();
        let token = value
            .to_str()
            .unwrap()
            .strip_prefix("Internal-jwt ")
            .unwrap();
        let claims = token.split('.').nth(1).unwrap();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
        assert!(claims.get("aud").is_none(), "{claims}");
        assert!(claims.get("exp").is_some());
    }

    fn claims_of(request: &Request<()>) -> serde_json::Value {
        use base64::Engine as _;
        let value = request.metadata().get("authorization").unwrap();
        let token = value
            .to_str()
            .unwrap()
            .strip_prefix("Internal-jwt ")
            .unwrap();
        let claims = token.split('.').nth(1).unwrap();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap();
        serde_json::from_slice(&claims).unwrap()
    }

    #[test]
    fn a_call_for_a_person_carries_usr_in_a_token_of_its_own() {
        let plain = credentials();
        let user = |id: &str| ImpersonatedUser {
            id: id.into(),
            username: format!("{id}-name"),
            roles: vec!["DPM_ADMIN".into()],
        };
        let mut alice = plain.clone().acting_for(user("alice"));
        let mut bob = plain.clone().acting_for(user("bob"));
        let mut plain = plain;
        let first = claims_of(&alice.call(Request::new(())).unwrap());
        let second = claims_of(&alice.call(Request::new(())).unwrap());
        let for_bob = claims_of(&bob.call(Request::new(())).unwrap());
        let own = claims_of(&plain.call(Request::new(())).unwrap());
        assert_eq!(first["usr"]["id"], "alice");
        assert_eq!(first["usr"]["username"], "alice-name");
        assert_eq!(first["usr"]["roles"], serde_json::json!(["DPM_ADMIN"]));
        assert_ne!(first["jti"], second["jti"], "minted per call, never reused");
        assert_eq!(for_bob["usr"]["id"], "bob");
        assert!(
            own.get("usr").is_none(),
            "the module's own calls stay its own"
        );
        assert!(!format!("{alice:?}").contains("DPM_ADMIN"));
    }

    #[test]
    fn a_token_metadata_cannot_carry_is_refused() {
        assert!(authorization_value("a\nb").is_none());
        assert!(authorization_value("a.b.c").unwrap().is_sensitive());
    }
}
