//! `IdentityService.WhoAmI`, served by both daemons: how this server sees the caller. The first
//! thing an operator calls when a key setup does not work.

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
        Ok(Response::new(WhoAmIResponse {
            identity: caller.to_string(),
            module: caller.service.module.clone(),
            id: caller.service.id.clone(),
            roles: caller.service.roles.clone(),
            kid: caller.kid.clone(),
            user: caller.user.as_ref().map(|u| ImpersonatedUser {
                id: u.id.clone(),
                username: u.username.clone(),
                roles: u.roles.clone(),
            }),
            server_module: self.module.clone(),
        }))
    }
}
