//! The Data Processing Module daemon: DPE engines register with its [`engines::EngineRegistry`]
//! over `RegistryService`; its [`checker::StatusChecker`] calls each engine back and marks it READY.
//!
//! [`Dpm`] is what DPM adds to the daemon life cycle of `svcid_grpc::daemon` (which `main` runs,
//! and tests can run in-process with `svcid_grpc::daemon::run::<Dpm>` on `127.0.0.1:0`). Operators list the
//! engines with [`admin::EngineAdmin`] (`svcid engines`), which also calls an engine on the
//! caller's behalf ([`on_behalf`], `svcid whoami --engine`), and watch DPM on its HTTP port
//! ([`http`]).

pub mod admin;
pub mod channels;
pub mod checker;
pub mod engines;
pub mod events;
pub mod http;
pub mod on_behalf;
pub mod service;
pub mod store;

use std::sync::Arc;

use svcid_actuator::instruments::EngineMetrics;
use svcid_config::{ModuleKind, RoleSettings};
use svcid_grpc::daemon::{Context, DaemonError, Module, Parts, nothing};
use svcid_identity::authz::AccessPolicy;
use svcid_proto::kept::engines::engine_admin_service_server::{
    EngineAdminServiceServer, SERVICE_NAME as ADMIN_SERVICE_NAME,
};
use svcid_proto::kept::registry::registry_service_server::{RegistryServiceServer, SERVICE_NAME};
use tonic::service::Routes;

use crate::admin::EngineAdmin;
use crate::channels::EngineChannels;
use crate::checker::StatusChecker;
use crate::engines::{CheckSchedule, EngineRegistry};
use crate::on_behalf::OnBehalf;
use crate::service::RegistryApi;
use crate::store::EngineStore;
use crate::store::postgres::PostgresStore;

/// The Data Processing Module, as the shared daemon life cycle runs it
/// (`svcid_grpc::daemon::main::<Dpm>()`).
#[derive(Debug)]
pub struct Dpm;

impl Module for Dpm {
    const KIND: ModuleKind = ModuleKind::Dpm;
    const SERVICE: &'static str = SERVICE_NAME;
    const CALLER: &'static str = "dpe";

    /// Any trusted peer may list the engines (read-only: what engines advertised and DPM
    /// observed, nothing secret); people only with an administrator role
    /// (`svcid.authorization.admin-roles`).
    fn more_access(policy: AccessPolicy) -> AccessPolicy {
        let admin = format!("/{ADMIN_SERVICE_NAME}/");
        policy.allow_any_peer(&admin).allow_admin_users(&admin)
    }

    /// The engine registry, the services over it, the status checker and the engine metrics.
    async fn prepare(context: &Context<'_>) -> Result<Parts, DaemonError> {
        let RoleSettings::Dpm(dpm) = context.role else {
            return Err(DaemonError::WrongModule { expected: "dpm" });
        };
        let registry = Arc::new(EngineRegistry::new(CheckSchedule {
            connected_interval: dpm.check_connected_interval,
            disconnected_interval: dpm.check_disconnected_interval,
            multiplier: dpm.check_disconnected_multiplier,
            disconnected_max: dpm.check_disconnected_max,
        }));
        let store: Arc<dyn EngineStore> = match &dpm.datasource {
            None => store::in_memory(Arc::clone(&registry)),
            Some(source) => PostgresStore::open(source, Arc::clone(&registry))
                .await
                .map_err(
                    |store::StoreError::Unavailable(reason)| DaemonError::Unavailable {
                        what: format!("the registry database {}", source.shown_url()),
                        reason,
                    },
                )?,
        };
        let metrics = Arc::new(EngineMetrics::default());
        let channels = Arc::new(EngineChannels::new(
            dpm.engine_tls.clone(),
            dpm.checker_timeout,
        ));
        let checker = StatusChecker::new(
            Arc::clone(&registry),
            Arc::clone(context.issuer),
            Arc::clone(context.verifier),
            Arc::clone(&channels),
        )
        .with_metrics(Arc::clone(&metrics));
        let on_behalf = Arc::new(OnBehalf::new(
            Arc::clone(context.issuer),
            Arc::clone(context.verifier),
            channels,
        ));
        let max = context.limits.max_message_size;
        let services = Routes::new(
            RegistryServiceServer::new(
                RegistryApi::new(Arc::clone(&store)).with_metrics(Arc::clone(&metrics)),
            )
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            EngineAdminServiceServer::new(EngineAdmin::new(Arc::clone(&store), on_behalf))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        Ok(Parts {
            services,
            scheduled: Box::pin({
                let (stop, upkeep) = (context.stop.clone(), Arc::clone(&store));
                async move {
                    tokio::join!(checker.run(stop.clone()), upkeep.maintain(stop));
                }
            }),
            actuator: Box::new(move |shared| http::actuator(shared, store, metrics)),
            stopping: nothing(),
            engine_id: None,
        })
    }
}
