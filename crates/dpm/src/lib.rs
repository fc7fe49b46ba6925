//! The Data Processing Module daemon: DPE engines register with its [`engines::EngineRegistry`]
//! over `RegistryService`; its [`checker::StatusChecker`] calls each engine back and marks it READY.
//!
//! [`run`] is the whole daemon after configuration: `main` only loads settings, starts logging,
//! binds and calls it (so tests can run it in-process on `127.0.0.1:0`). Operators list the
//! engines with [`admin::EngineAdmin`] (`svcid engines`) and watch DPM on its actuator HTTP port
//! ([`ops`]).

pub mod admin;
pub mod checker;
pub mod engines;
pub mod ops;
pub mod service;

use std::future::Future;
use std::sync::Arc;

use svcid_actuator::instruments::EngineMetrics;
use svcid_config::{ModuleKind, Overrides, Settings};
use svcid_grpc::daemon::{Credentials, DaemonError, bound_address};
use svcid_grpc::reload::LiveConfig;
use svcid_grpc::{AuthLayer, WHOAMI_PREFIX};
use svcid_identity::authz::AccessPolicy;
use svcid_proto::pb::engines::engine_admin_service_server::{
    EngineAdminServiceServer, SERVICE_NAME as ADMIN_SERVICE_NAME,
};
use svcid_proto::pb::registry::registry_service_server::{RegistryServiceServer, SERVICE_NAME};
use tokio::net::TcpListener;

use crate::admin::EngineAdmin;
use crate::checker::StatusChecker;
use crate::engines::{CheckSchedule, EngineRegistry};
use crate::service::RegistryApi;

/// Who may call what on DPM: engines register; any trusted peer may ask who it is and list the
/// engines (read-only: what engines advertised and DPM observed, nothing secret).
pub fn access_policy() -> AccessPolicy {
    AccessPolicy::new()
        .allow(&format!("/{SERVICE_NAME}/"), "dpe")
        .allow_any_peer(WHOAMI_PREFIX)
        .allow_any_peer(&format!("/{ADMIN_SERVICE_NAME}/"))
}

/// Serves DPM on `listener` until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    overrides: Overrides,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let Some(dpm) = settings.dpm().cloned() else {
        return Err(DaemonError::WrongModule { expected: "dpm" });
    };
    let operations = svcid_grpc::ops::Operations::new();
    let live = LiveConfig::new(&settings, overrides).with_metrics(Arc::clone(&operations.reloads));
    let http_listener = svcid_grpc::ops::bind_http(&settings.http).await?;
    let policy = settings.verify_policy();
    let credentials = Credentials::new(
        policy,
        settings.jwt,
        settings.deployments,
        settings.grpc.tls.as_ref(),
    )?;
    let live_targets = credentials.live_targets();
    let Credentials {
        issuer,
        verifier,
        server_tls,
    } = credentials;

    let registry = Arc::new(EngineRegistry::new(CheckSchedule {
        connected_interval: dpm.check_connected_interval,
        disconnected_interval: dpm.check_disconnected_interval,
        multiplier: dpm.check_disconnected_multiplier,
        disconnected_max: dpm.check_disconnected_max,
    }));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(live.watch(live_targets, stop.subscribe()));
    let engine_metrics = Arc::new(EngineMetrics::default());
    let checker = StatusChecker::new(
        Arc::clone(&registry),
        Arc::clone(&issuer),
        dpm.checker_timeout,
    )
    .with_metrics(Arc::clone(&engine_metrics))
    .with_tls(dpm.engine_tls.clone());
    let scheduler =
        svcid_grpc::server::spawn_scheduler(checker.run(stopped)).map_err(|source| {
            DaemonError::Io {
                what: "cannot start the scheduling thread",
                path: settings.home.root().to_owned(),
                source,
            }
        })?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<RegistryServiceServer<RegistryApi>>()
        .await;
    let address = bound_address(&listener)?;
    tracing::info!(
        eventId = svcid_grpc::events::GRPC_SERVER_STARTED,
        module = "dpm",
        host = %address.ip(),
        port = address.port(),
        kid = %issuer.kid(),
        "gRPC server started."
    );
    svcid_grpc::tls::log_serving(settings.grpc.tls.as_ref());
    let actuator = ops::actuator(
        operations.actuator(ModuleKind::Dpm, address, &verifier, &issuer),
        Arc::clone(&registry),
        Arc::clone(&engine_metrics),
    );
    // The listener is bound: calls queue in the kernel until the server below takes them.
    operations.set_serving(true);
    let http = svcid_grpc::ops::start_http(actuator, http_listener, stop.subscribe())?;

    let max_message = settings.grpc.limits.max_message_size;
    let router = svcid_grpc::server::standard_router(
        &settings.grpc.limits,
        AuthLayer::new(verifier, access_policy()).with_metrics(Arc::clone(&operations.auth)),
        "dpm",
        health_service,
    )?
    .add_service(
        RegistryServiceServer::new(
            RegistryApi::new(Arc::clone(&registry)).with_metrics(engine_metrics),
        )
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message),
    )
    .add_service(
        EngineAdminServiceServer::new(EngineAdmin::new(Arc::clone(&registry)))
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
    );
    let served = svcid_grpc::server::serve(router, listener, server_tls, shutdown).await;

    operations.set_serving(false);
    let _ = stop.send(true);
    let _ = scheduler.join();
    let _ = watcher.await;
    let _ = http.await;
    tracing::info!(
        eventId = svcid_grpc::events::STOPPED,
        module = "dpm",
        "DPM stopped."
    );
    served.map_err(DaemonError::from)
}
