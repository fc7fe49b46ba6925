//! Calls DPM makes to an engine on its caller's behalf (`EngineAdminService.WhoAmIOnEngine`).
//!
//! When the caller is a person (or a module acting for one), DPM's own `Internal-jwt` token for
//! that call carries the person as `usr`; the person's own token never leaves DPM. The engine
//! accepts `usr` only from a DPM deployment holding the impersonation role, and then sees
//! `ImpersonatedUserIdentity(…, serviceIdentity=ServiceIdentity(module=dpm, …))`. A module calling
//! for itself is seen by the engine as DPM itself.
//!
//! The engine's answer is returned unchanged. What went wrong is told apart for the caller, who
//! was let in by DPM and so must not read a refusal of DPM as its own: the engine refused DPM's
//! token (`FAILED_PRECONDITION`, the set-up between DPM and the engine is at fault, with the
//! engine's own words such as "Impersonation is not allowed"), did not answer (`UNAVAILABLE`), or
//! failed otherwise (`UNKNOWN`, with the engine's status).

use std::sync::Arc;

use svcid_client::{OutboundCredentials, PeerProfile, with_correlation_id};
use svcid_identity::identity::ImpersonatedUser;
use svcid_identity::token::{TokenIssuer, TokenVerifier};
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use svcid_proto::pb::identity::{WhoAmIRequest, WhoAmIResponse};
use tonic::{Code, Status};

use crate::channels::EngineChannels;
use crate::engines::{EngineRecord, EngineRef};

/// DPM's outbound calls to engines for a caller.
#[derive(Debug)]
pub struct OnBehalf {
    /// DPM's token source.
    issuer: Arc<TokenIssuer>,
    /// The deployments in force, for the token profile of the deployment that registered an
    /// engine.
    verifier: Arc<TokenVerifier>,
    /// Connections to engines, shared with the status checker.
    channels: Arc<EngineChannels>,
}

impl OnBehalf {
    /// Calls with `issuer`'s tokens over `channels`.
    pub fn new(
        issuer: Arc<TokenIssuer>,
        verifier: Arc<TokenVerifier>,
        channels: Arc<EngineChannels>,
    ) -> Self {
        Self {
            issuer,
            verifier,
            channels,
        }
    }

    /// Asks `engine` as whom it sees DPM calling for `user` (DPM alone when `None`), within the
    /// status check's deadline. `correlation_id` travels with the call.
    pub async fn who_am_i(
        &self,
        engine: &EngineRecord,
        user: Option<ImpersonatedUser>,
        correlation_id: &str,
    ) -> Result<WhoAmIResponse, Status> {
        let shown = EngineRef {
            id: &engine.id,
            address: &engine.address,
        };
        let channel = self
            .channels
            .get(&engine.address)
            .map_err(|why| Status::unavailable(format!("{shown}: {why}")))?;
        let mut credentials = OutboundCredentials::new(Arc::clone(&self.issuer), "dpe")
            .with_profile(PeerProfile::OfDeployment(
                Arc::clone(&self.verifier),
                engine.registered_by_deployment.clone(),
            ));
        if let Some(user) = user {
            credentials = credentials.acting_for(user);
        }
        let mut client = IdentityServiceClient::with_interceptor(channel, credentials);
        let timeout = self.channels.timeout();
        let mut request =
            with_correlation_id(tonic::Request::new(WhoAmIRequest {}), correlation_id);
        request.set_timeout(timeout);
        match tokio::time::timeout(timeout, client.who_am_i(request)).await {
            Err(_) => Err(Status::unavailable(format!(
                "{shown} did not answer within {timeout:?}"
            ))),
            Ok(Err(status)) => Err(engine_failure(&shown, &status)),
            Ok(Ok(answer)) => Ok(answer.into_inner()),
        }
    }
}

/// The status DPM's caller gets when the engine did not give an answer.
fn engine_failure(engine: &EngineRef<'_>, status: &Status) -> Status {
    let said = svcid_client::failure_reason(status);
    let code = status.code();
    match code {
        Code::Unauthenticated | Code::PermissionDenied => Status::failed_precondition(format!(
            "{engine} refused DPM's call on your behalf ({code:?}: {said})"
        )),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            Status::unavailable(format!("{engine} did not answer ({code:?}: {said})"))
        }
        _ => Status::unknown(format!("{engine} answered {code:?}: {said}")),
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engines::EngineAddress;

    fn engine() -> (String, EngineAddress) {
        (
            "e-1".to_owned(),
            EngineAddress {
                hostname: "h".into(),
                port: 8532,
            },
        )
    }

    #[test]
    fn an_engine_refusing_dpm_is_a_failed_precondition_with_the_engines_words() {
        let (id, address) = engine();
        let shown = EngineRef {
            id: &id,
            address: &address,
        };
        let refused = engine_failure(
            &shown,
            &Status::unauthenticated("impersonation_not_allowed: Impersonation is not allowed"),
        );
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert!(refused.message().contains("Impersonation is not allowed"));
        assert!(refused.message().contains("e-1"));
        assert_eq!(
            engine_failure(&shown, &Status::unavailable("connection refused")).code(),
            Code::Unavailable
        );
        assert_eq!(
            engine_failure(&shown, &Status::unimplemented("")).code(),
            Code::Unknown
        );
    }
}
