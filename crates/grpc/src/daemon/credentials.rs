//! The issuer, verifier and server TLS a daemon proves and checks identities with.

use std::sync::Arc;

use super::exit::DaemonError;

/// What a daemon proves and checks identities with, built once from its settings: the issuer of
/// its own tokens, the verifier of its peers' tokens, and its port's TLS. The live reload swaps
/// what is inside them ([`Credentials::live_targets`]); the `Arc`s themselves never change.
#[derive(Debug)]
pub struct Credentials {
    /// Mints this module's tokens (outbound calls).
    pub issuer: Arc<svcid_identity::token::TokenIssuer>,
    /// Verifies peers' tokens (the auth layer).
    pub verifier: Arc<svcid_identity::token::TokenVerifier>,
    /// The gRPC port's TLS, replaceable by a reload; `None` for plain text.
    pub server_tls: Option<Arc<crate::tls::LiveServerTls>>,
}

impl Credentials {
    /// Builds the issuer, verifier and TLS from the parts of the settings they consume.
    pub fn new(
        policy: svcid_identity::token::VerifyPolicy,
        jwt: svcid_config::JwtSettings,
        deployments: svcid_identity::deployments::Deployments,
        tls: Option<&svcid_config::ServerTls>,
    ) -> Result<Self, DaemonError> {
        let clock = Arc::new(svcid_identity::clock::SystemClock);
        let issuer = Arc::new(svcid_identity::token::TokenIssuer::new(
            jwt.generator_key,
            jwt.token_expiration,
            clock.clone(),
        )?);
        let verifier = Arc::new(svcid_identity::token::TokenVerifier::new(
            policy,
            deployments,
            clock,
        ));
        let server_tls = match tls {
            Some(tls) => Some(Arc::new(crate::tls::LiveServerTls::new(tls)?)),
            None => None,
        };
        Ok(Self {
            issuer,
            verifier,
            server_tls,
        })
    }

    /// Where a reload puts what it applies live.
    pub fn live_targets(&self) -> crate::reload::LiveTargets {
        crate::reload::LiveTargets {
            verifier: Arc::clone(&self.verifier),
            issuer: Arc::clone(&self.issuer),
            server_tls: self.server_tls.clone(),
        }
    }
}
