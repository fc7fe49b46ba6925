//! `EngineAdminService`, DPM's service for operators (see [`crate::Dpm`]'s access rules: any
//! trusted peer, people with an administrator role):
//!
//! - `ListEngines`: the engine registry (the whole fleet, every replica's engines when it is kept
//!   in PostgreSQL), printed by `svcid engines`. Read-only: it shows only what engines advertised
//!   and DPM observed.
//! - `WhoAmIOnEngine`: DPM calls one engine's `WhoAmI` on the caller's behalf
//!   ([`crate::on_behalf`]) and returns the engine's answer, printed by `svcid whoami --engine`.

use std::sync::Arc;
use std::time::SystemTime;

use svcid_proto::kept::engines::engine_admin_service_server::EngineAdminService;
use svcid_proto::kept::{EngineInfo, ListEnginesResponse};
use svcid_proto::pb::engines::{ListEnginesRequest, WhoAmIOnEngineRequest, engine_info};
use svcid_proto::pb::identity::WhoAmIResponse;
use svcid_proto::pb::registry::EngineAddress;
use tonic::{Request, Response, Status};

use crate::engines::{Engine, EngineRef, EngineStatus};
use crate::on_behalf::OnBehalf;
use crate::store::EngineStore;

/// Engine ids longer than this are cut in messages (an id comes from the caller).
const MAX_SHOWN_ID_CHARS: usize = 80;

/// The gRPC face of the registry for operators.
#[derive(Debug, Clone)]
pub struct EngineAdmin {
    /// Shared with the registration handlers.
    registry: Arc<dyn EngineStore>,
    /// Calls to engines on the caller's behalf.
    on_behalf: Arc<OnBehalf>,
}

impl EngineAdmin {
    /// Lists `registry` and calls its engines through `on_behalf`.
    pub fn new(registry: Arc<dyn EngineStore>, on_behalf: Arc<OnBehalf>) -> Self {
        Self {
            registry,
            on_behalf,
        }
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

    async fn who_am_i_on_engine(
        &self,
        request: Request<WhoAmIOnEngineRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = svcid_grpc::caller(&request)
            .ok_or_else(|| Status::unauthenticated("no verified caller"))?;
        let correlation_id = svcid_grpc::correlation_id(&request);
        let id = request.into_inner().engine_id;
        let Some(engine) = self.registry.engine(&id).await? else {
            let shown = svcid_printable::excerpt(&id, MAX_SHOWN_ID_CHARS);
            return Err(Status::not_found(format!(
                "no engine with id \"{shown}\" is registered with this DPM (svcid engines lists them)"
            )));
        };
        let shown = EngineRef {
            id: &engine.id,
            address: &engine.address,
        };
        match self
            .on_behalf
            .who_am_i(&engine, caller.user(), &correlation_id)
            .await
        {
            Ok(answer) => {
                tracing::info!(
                    eventId = crate::events::WHO_AM_I_ON_ENGINE,
                    engine = %shown,
                    engineSees = %answer.identity,
                    "Engine called on the caller's behalf."
                );
                Ok(Response::new(answer))
            }
            Err(status) => {
                tracing::warn!(
                    eventId = crate::events::WHO_AM_I_ON_ENGINE,
                    engine = %shown,
                    code = ?status.code(),
                    reason = %status.message(),
                    "Engine call on the caller's behalf failed."
                );
                Err(status)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    /// An admin over `store` whose calls to engines are signed by a fresh key.
    fn admin(store: Arc<dyn EngineStore>) -> EngineAdmin {
        use svcid_identity::token::{TokenIssuer, TokenVerifier, VerifyPolicy};
        use svcid_identity::{Deployments, GeneratorKey, SystemClock};
        let issuer = TokenIssuer::new(
            GeneratorKey::generate(),
            Duration::from_secs(60),
            Arc::new(SystemClock),
        )
        .unwrap();
        let verifier = TokenVerifier::new(
            VerifyPolicy::new("dpm"),
            Deployments::empty(),
            Arc::new(SystemClock),
        );
        let channels = crate::channels::EngineChannels::new(None, Duration::from_millis(500));
        EngineAdmin::new(
            store,
            Arc::new(OnBehalf::new(
                Arc::new(issuer),
                Arc::new(verifier),
                Arc::new(channels),
            )),
        )
    }

    #[tokio::test]
    async fn an_unknown_engine_is_not_found_with_its_id_escaped_and_cut() {
        let registry = Arc::new(EngineRegistry::new(CheckSchedule {
            connected_interval: Duration::from_secs(1),
            disconnected_interval: Duration::from_secs(1),
            multiplier: 2.0,
            disconnected_max: Duration::from_secs(5),
        }));
        let admin = admin(crate::store::in_memory(registry));
        let ask = |engine_id: String, caller: bool| {
            let mut request = Request::new(WhoAmIOnEngineRequest { engine_id });
            if caller {
                let service = svcid_identity::ServiceIdentity {
                    module: "dpe".into(),
                    id: "dpe-dev".into(),
                    roles: Vec::new(),
                };
                request
                    .extensions_mut()
                    .insert(Arc::new(svcid_identity::Caller::Module(
                        svcid_identity::CallerIdentity::new(
                            service,
                            None,
                            "k".into(),
                            String::new(),
                        ),
                    )));
            }
            admin.who_am_i_on_engine(request)
        };
        let status = ask(format!("nope\n{}", "x".repeat(500)), true)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(status.message().starts_with("no engine with id \"nope\\n"));
        assert!(status.message().contains("x…\""), "{}", status.message());
        assert!(status.message().len() < 200);
        // The auth layer always sets a caller; a request without one is refused, not served.
        let status = ask("e".into(), false).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
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

        let listed = admin(crate::store::in_memory(Arc::clone(&registry)))
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
