//! `HeartbeatService.GetStatus`: DPM's status checker asks the engine how it is. Only callers whose
//! deployment has `module=dpm` get here (the access policy).

use std::sync::Arc;

use svcid_proto::pb::constraint::Constraints;
use svcid_proto::pb::heartbeat::heartbeat_service_server::HeartbeatService;
use svcid_proto::pb::heartbeat::{self, HeartbeatRequest, HeartbeatResponse};
use tonic::{Request, Response, Status};

/// Answers status checks with this engine's id and constraints.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    /// This engine's id; DPM refuses an answer that carries another.
    engine_id: Arc<str>,
    /// What the engine advertises.
    constraints: Arc<Constraints>,
}

impl Heartbeat {
    /// The heartbeat of engine `engine_id`.
    pub fn new(engine_id: &str, constraints: Constraints) -> Self {
        Self {
            engine_id: engine_id.into(),
            constraints: Arc::new(constraints),
        }
    }
}

#[tonic::async_trait]
impl HeartbeatService for Heartbeat {
    async fn get_status(
        &self,
        _request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        tracing::trace!(eventId = crate::events::GET_STATUS, "Status requested.");
        Ok(Response::new(HeartbeatResponse {
            status: heartbeat::Status::Ok.into(),
            constraints: Some((*self.constraints).clone()),
            engine_id: self.engine_id.to_string(),
        }))
    }
}
