//! `RegistryService`: engines register, re-assert and unregister themselves (docs/wire.md,
//! the handshake). Only callers whose deployment has `module=dpe` get here (the access policy).

use std::sync::Arc;

use prost::Message as _;
use svcid_actuator::instruments::EngineMetrics;
use svcid_proto::kept::RegistrationRequest;
use svcid_proto::kept::registry::registry_service_server::RegistryService;
use svcid_proto::pb::constraint::Constraints;
use svcid_proto::pb::registry::{
    self, RegistrationResponse, UnregistrationRequest, UnregistrationResponse,
    unregistration_response,
};
use tonic::{Request, Response, Status};

use crate::engines::{EngineAddress, Registrant, Registration};
use crate::store::EngineStore;

/// The logger of the product's registration and status events (`registerEngine`,
/// `setEngineStatus`), so saved searches on `logger_name` keep working (docs/operations.md).
pub const REGISTRY_LOGGER: &str = "com.ataccama.dpm.registry.EngineRegistryServiceImpl";

/// The gRPC face of the engine registry.
#[derive(Debug, Clone)]
pub struct RegistryApi {
    /// Where the registry is kept (in memory, shared with the status checker, or in PostgreSQL).
    registry: Arc<dyn EngineStore>,
    /// Registrations and unregistrations by result, for `/actuator/prometheus`.
    metrics: Arc<EngineMetrics>,
}

impl RegistryApi {
    /// Serves `registry`.
    pub fn new(registry: Arc<dyn EngineStore>) -> Self {
        Self {
            registry,
            metrics: Arc::default(),
        }
    }

    /// Counts registrations and unregistrations in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<EngineMetrics>) -> Self {
        self.metrics = metrics;
        self
    }
}

/// Longest engine id accepted (a UUID is 36 characters).
const MAX_ENGINE_ID: usize = 128;

fn engine_id(id: &str) -> Result<&str, Status> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ENGINE_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(id)
    } else {
        Err(Status::invalid_argument(
            "engineId must be 1 to 128 letters, digits, dashes or underscores",
        ))
    }
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn register_engine(
        &self,
        request: Request<RegistrationRequest>,
    ) -> Result<Response<RegistrationResponse>, Status> {
        let caller = svcid_grpc::caller(&request)
            .ok_or_else(|| Status::unauthenticated("no verified caller"))?;
        let request = request.into_inner();
        let id = engine_id(&request.engine_id)?;
        let address = request
            .address
            .ok_or_else(|| Status::invalid_argument("address is required"))?;
        let port = u16::try_from(address.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| Status::invalid_argument("address.port must be 1 to 65535"))?;
        if address.hostname.is_empty() || address.hostname.len() > 253 {
            return Err(Status::invalid_argument(
                "address.hostname must be 1 to 253 characters",
            ));
        }
        let address = EngineAddress {
            hostname: address.hostname,
            port,
        };
        // Kept as sent (docs/wire.md); decoded only to refuse what is not Constraints, and to log.
        let constraints = request.constraints.unwrap_or_default();
        let decoded = Constraints::decode(constraints.as_slice()).map_err(|e| {
            Status::invalid_argument(format!(
                "constraints are not an ataccama.dppapi.constraint.Constraints: {e}"
            ))
        })?;
        let registrant = Registrant {
            identity: caller.to_string(),
            // Only modules reach the product wire (the access policy); a person never does.
            deployment: caller
                .service()
                .map(|service| service.id.clone())
                .ok_or_else(|| Status::permission_denied("only engines register"))?,
        };
        let status = match self
            .registry
            .register(id, address.clone(), constraints, registrant)
            .await
            .inspect_err(|error| {
                self.metrics.registered("unavailable");
                tracing::warn!(
                    target: REGISTRY_LOGGER,
                    correlationId = %id,
                    eventId = crate::events::REGISTER_ENGINE,
                    engineId = %id,
                    engine = %address,
                    reason = %error,
                    "Registration not recorded: the registry database is unavailable."
                );
            })? {
            Registration::New => {
                self.metrics.registered("new");
                tracing::info!(
                    target: REGISTRY_LOGGER,
                    correlationId = %id,
                    eventId = crate::events::REGISTER_ENGINE,
                    engineId = %id,
                    engine = %address,
                    // Rendered only here: keep-alives every few seconds never need the text.
                    engineConstraints = %svcid_proto::text::constraints(&decoded),
                    "New engine registered."
                );
                registry::Status::Success
            }
            Registration::AlreadyRegistered {
                moved_from: Some(old),
            } => {
                self.metrics.registered("moved");
                tracing::info!(
                    target: REGISTRY_LOGGER,
                    correlationId = %id,
                    eventId = crate::events::REGISTER_ENGINE,
                    engineId = %id,
                    engine = %address,
                    previousEngine = %old,
                    "Engine address changed."
                );
                registry::Status::AlreadyRegistered
            }
            Registration::AlreadyRegistered { moved_from: None } => {
                self.metrics.registered("already_registered");
                tracing::debug!(
                    target: REGISTRY_LOGGER,
                    correlationId = %id,
                    eventId = crate::events::REGISTER_ENGINE,
                    engineId = %id,
                    engine = %address,
                    "Engine already registered."
                );
                registry::Status::AlreadyRegistered
            }
        };
        Ok(Response::new(RegistrationResponse {
            status: status.into(),
        }))
    }

    async fn unregister_engine(
        &self,
        request: Request<UnregistrationRequest>,
    ) -> Result<Response<UnregistrationResponse>, Status> {
        let id = engine_id(&request.get_ref().engine_id)?.to_owned();
        let status = match self.registry.unregister(&id).await? {
            Some(address) => {
                self.metrics.unregistered("success");
                tracing::info!(
                    correlationId = %id,
                    eventId = crate::events::UNREGISTER_ENGINE,
                    engineId = %id,
                    engine = %address,
                    "Engine unregistered."
                );
                unregistration_response::Status::Success
            }
            None => {
                self.metrics.unregistered("not_registered");
                tracing::info!(
                    correlationId = %id,
                    eventId = crate::events::UNREGISTER_ENGINE,
                    engineId = %id,
                    "Unregistration of an unknown engine."
                );
                unregistration_response::Status::NotRegistered
            }
        };
        Ok(Response::new(UnregistrationResponse {
            status: status.into(),
        }))
    }
}
