//! `IdentityService.WhoAmI`, served by both daemons: how this server sees the caller. The first
//! thing an operator calls when a key setup does not work. Each answer is logged as `whoAmI`: INFO
//! when a module acts for a person (the trace of an impersonation), DEBUG when the caller asks
//! about itself, a module or a person (the answer already tells it everything the line would).

use svcid_identity::identity::Caller;
use svcid_proto::pb::identity::identity_service_server::{IdentityService, IdentityServiceServer};
use svcid_proto::pb::identity::{ImpersonatedUser, WhoAmIRequest, WhoAmIResponse};
use tonic::{Request, Response, Status};

/// Method-path prefix of the service, for access policies.
pub const WHOAMI_PREFIX: &str = "/svcid.identity.IdentityService/";

/// Answers `WhoAmI` with the identity the authentication layer put on the request.
#[derive(Clone, Debug)]
pub struct WhoAmI {
    /// This server's module type, echoed so the operator knows who answered.
    module: String,
}

impl WhoAmI {
    /// The service for a server of module type `module`.
    pub fn server(module: &str) -> IdentityServiceServer<WhoAmI> {
        IdentityServiceServer::new(WhoAmI {
            module: module.to_owned(),
        })
    }
}

#[tonic::async_trait]
impl IdentityService for WhoAmI {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let caller =
            crate::caller(&request).ok_or_else(|| Status::unauthenticated("no verified caller"))?;
        // The call's span carries the caller as `authenticatedUser`. A module acting for a person
        // is worth a trace at INFO; a caller asking about itself is answered, not recorded.
        if caller.has_user() && caller.service().is_some() {
            tracing::info!(eventId = crate::events::WHO_AM_I, "Caller identified.");
        } else {
            tracing::debug!(eventId = crate::events::WHO_AM_I, "Caller identified.");
        }
        Ok(Response::new(answer(&caller, &self.module)))
    }
}

/// The `WhoAmI` answer for `caller`, served by a module of type `server_module`. A person calling
/// directly has no module, deployment, roles or `kid`: only `identity` and `user` are set.
pub fn answer(caller: &Caller, server_module: &str) -> WhoAmIResponse {
    let user = caller.user().map(|u| ImpersonatedUser {
        id: u.id,
        username: u.username,
        roles: u.roles,
    });
    let (module, id, roles) = caller.service().map_or_else(Default::default, |s| {
        (s.module.clone(), s.id.clone(), s.roles.clone())
    });
    WhoAmIResponse {
        identity: caller.to_string(),
        module,
        id,
        roles,
        kid: caller.kid().to_owned(),
        user,
        server_module: server_module.to_owned(),
    }
}
