//! `EngineAdminService.ListEngines`: the operator's view of the engine registry (the whole fleet,
//! every replica's engines when it is kept in PostgreSQL), printed by
//! `svcid engines`. Read-only; the access policy admits any trusted peer (see
//! [`crate::Dpm`]'s access rules), since it shows only what engines advertised and DPM observed.

use std::sync::Arc;
use std::time::SystemTime;

use svcid_proto::kept::engines::engine_admin_service_server::EngineAdminService;
use svcid_proto::kept::{EngineInfo, ListEnginesResponse};
use svcid_proto::pb::engines::{ListEnginesRequest, engine_info};
use svcid_proto::pb::registry::EngineAddress;
use tonic::{Request, Response, Status};

use crate::engines::{Engine, EngineStatus};
use crate::store::EngineStore;

/// The gRPC face of the registry for operators.
#[derive(Debug, Clone)]
pub struct EngineAdmin {
    /// Shared with the registration handlers.
    registry: Arc<dyn EngineStore>,
}

impl EngineAdmin {
    /// Lists `registry`.
    pub fn new(registry: Arc<dyn EngineStore>) -> Self {
        Self { registry }
    }
}

/// Unix milliseconds; 0 for times before the epoch (never the case for real clocks).
fn millis(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One engine as the protocol shows it, its constraints the bytes the engine sent.
pub fn engine_info(engine: Engine) -> EngineInfo {
    let engine = engine.record;
    let status = match engine.status {
        EngineStatus::New => engine_info::Status::New,
        EngineStatus::Ready => engine_info::Status::Ready,
        EngineStatus::Disconnected => engine_info::Status::Disconnected,
    };
    EngineInfo {
        engine_id: engine.id,
        address: Some(EngineAddress {
            hostname: engine.address.hostname,
            port: i32::from(engine.address.port),
        }),
        status: status as i32,
        status_since_ms: millis(engine.status_since),
        last_seen_ms: engine.last_seen.map_or(0, millis),
        registered_at_ms: millis(engine.registered_at),
        constraints: Some(engine.constraints),
        registered_by: engine.registered_by,
    }
}

#[tonic::async_trait]
impl EngineAdminService for EngineAdmin {
    async fn list_engines(
        &self,
        _request: Request<ListEnginesRequest>,
    ) -> Result<Response<ListEnginesResponse>, Status> {
        let mut engines = self.registry.engines().await?;
        engines.sort_by(|a, b| a.id.cmp(&b.id));
        tracing::debug!(
            eventId = crate::events::LIST_ENGINES,
            engines = engines.len(),
            "Engines listed."
        );
        Ok(Response::new(ListEnginesResponse {
            engines: engines.into_iter().map(engine_info).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prost::Message as _;
    use svcid_proto::pb::constraint::Constraints;
    use svcid_proto::pb::constraint::constraints::{Capability, capability};

    use super::*;
    use crate::engines::{CheckSchedule, EngineAddress as Address, EngineRegistry, Registrant};

    fn by(identity: &str) -> Registrant {
        Registrant {
            identity: identity.to_owned(),
            deployment: "dpe-dev".to_owned(),
        }
    }

    #[tokio::test]
    async fn lists_every_engine_sorted_with_its_status_and_times() {
        let registry = Arc::new(EngineRegistry::new(CheckSchedule {
            connected_interval: Duration::from_secs(1),
            disconnected_interval: Duration::from_secs(1),
            multiplier: 2.0,
            disconnected_max: Duration::from_secs(5),
        }));
        let address = |port| Address {
            hostname: "h".into(),
            port,
        };
        let mut constraints = Constraints::default();
        constraints.capabilities.insert(
            "spark".into(),
            Capability {
                capability_type: Some(capability::CapabilityType::Boolean(true)),
            },
        );
        let sent = constraints.encode_to_vec();
        registry.register("b", address(2), sent.clone(), by("ServiceIdentity(x)"));
        registry.register("a", address(1), Vec::new(), by("y"));
        registry.start_due_checks(tokio::time::Instant::now());
        registry.finish_check("b", &address(2), true);

        let listed = EngineAdmin::new(crate::store::in_memory(Arc::clone(&registry)))
            .list_engines(Request::new(ListEnginesRequest {}))
            .await
            .map(Response::into_inner)
            .unwrap_or_default()
            .engines;
        let ids: Vec<&str> = listed.iter().map(|e| e.engine_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let status = |e: &EngineInfo| engine_info::Status::try_from(e.status).ok();
        assert_eq!(status(&listed[0]), Some(engine_info::Status::New));
        assert_eq!(listed[0].last_seen_ms, 0);
        assert_eq!(status(&listed[1]), Some(engine_info::Status::Ready));
        assert!(listed[1].last_seen_ms >= listed[1].registered_at_ms);
        assert!(listed[1].status_since_ms >= listed[1].registered_at_ms);
        assert_eq!(listed[1].registered_by, "ServiceIdentity(x)");
        // Handed back exactly as sent.
        assert_eq!(listed[1].constraints.as_deref(), Some(sent.as_slice()));
        assert_eq!(listed[1].address.as_ref().map(|a| a.port), Some(2));
    }
}
