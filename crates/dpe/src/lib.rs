//! The Data Processing Engine daemon: serves `HeartbeatService` to DPM and keeps itself
//! registered with DPM through [`registration::StatusChecker`].
//!
//! [`run`] is the whole daemon after configuration: `main` only loads settings, starts logging,
//! binds and calls it (so tests can run it in-process on `127.0.0.1:0`). Its actuator HTTP port
//! reports `registration` health: `UP` while the last registration with DPM succeeded.

pub mod engine_id;
pub mod heartbeat;
pub mod registration;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use svcid_actuator::instruments::RegistrationState;
use svcid_config::{ModuleKind, Overrides, Settings};
use svcid_grpc::daemon::{Credentials, DaemonError, bound_address};
use svcid_grpc::reload::LiveConfig;
use svcid_grpc::{AuthLayer, WHOAMI_PREFIX};
use svcid_identity::authz::AccessPolicy;
use svcid_proto::pb::common::Constraints;
use svcid_proto::pb::heartbeat::heartbeat_service_server::{HeartbeatServiceServer, SERVICE_NAME};
use svcid_proto::pb::registry::{EngineAddress, RegistrationRequest};
use tokio::net::TcpListener;

use crate::heartbeat::Heartbeat;
use crate::registration::StatusChecker;

/// How long shutdown waits for the unregistration before stopping anyway.
const UNREGISTER_GRACE: Duration = Duration::from_secs(5);

/// Who may call what on DPE: DPM checks the engine; any trusted peer may ask who it is.
pub fn access_policy() -> AccessPolicy {
    AccessPolicy::new()
        .allow(&format!("/{SERVICE_NAME}/"), "dpm")
        .allow_any_peer(WHOAMI_PREFIX)
}

/// Serves DPE on `listener` until `shutdown` resolves, registered with DPM meanwhile.
pub async fn run(
    settings: Settings,
    overrides: Overrides,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let Some(dpe) = settings.dpe().cloned() else {
        return Err(DaemonError::WrongModule { expected: "dpe" });
    };
    let engine_id = engine_id::load_or_create(&settings.home.engine_id_file())?;
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
    let bound = bound_address(&listener)?;

    let constraints = Constraints {
        capabilities: dpe.constraints.clone().into_iter().collect(),
        requirements: Default::default(),
        priorities: dpe.environments.clone(),
    };
    let registration = RegistrationRequest {
        engine_id: engine_id.clone(),
        address: Some(EngineAddress {
            hostname: dpe.advertised_hostname.clone(),
            port: i32::from(dpe.advertised_port.unwrap_or(bound.port())),
        }),
        constraints: Some(constraints.clone()),
    };

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(live.watch(live_targets, stop.subscribe()));
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let checker_issuer = Arc::clone(&issuer);
    let registration_state = Arc::new(RegistrationState::new(format!(
        "{}:{}",
        dpe.dpm_host, dpe.dpm_port
    )));
    let checker_state = Arc::clone(&registration_state);
    let http_stop = stop.subscribe();
    let scheduling_error = |source| DaemonError::Io {
        what: "cannot start the scheduling thread for",
        path: settings.home.root().to_owned(),
        source,
    };
    let scheduler = svcid_grpc::server::spawn_scheduler(async move {
        match StatusChecker::new(
            checker_issuer,
            &dpe.dpm_host,
            dpe.dpm_port,
            registration,
            dpe.check_connection_interval,
            dpe.dpm_tls.as_ref(),
        ) {
            Ok(checker) => {
                checker
                    .with_state(checker_state)
                    .run(stopped, done_tx)
                    .await
            }
            Err(error) => {
                tracing::error!(
                    eventId = registration::REGISTER_EVENT,
                    "DPM address is not usable: {error}"
                );
                let _ = done_tx.send(());
            }
        }
    })
    .map_err(scheduling_error)?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<HeartbeatServiceServer<Heartbeat>>()
        .await;
    tracing::info!(
        eventId = svcid_grpc::events::GRPC_SERVER_STARTED,
        module = "dpe",
        host = %bound.ip(),
        port = bound.port(),
        engineId = %engine_id,
        kid = %issuer.kid(),
        "gRPC server started."
    );
    svcid_grpc::tls::log_serving(settings.grpc.tls.as_ref());
    let health_state = Arc::clone(&registration_state);
    let info_engine_id = engine_id.clone();
    let actuator = operations
        .actuator(ModuleKind::Dpe, bound, &verifier, &issuer)
        .health("registration", move || health_state.health())
        .metrics(move |out| registration_state.render(out))
        .info("engine", move || serde_json::json!({"id": info_engine_id}));
    // The listener is bound: calls queue in the kernel until the server below takes them.
    operations.set_serving(true);
    let http = svcid_grpc::ops::start_http(actuator, http_listener, http_stop)?;

    // Graceful shutdown: unregister from DPM first (the server keeps answering meanwhile), then stop.
    let graceful = async move {
        shutdown.await;
        let _ = stop.send(true);
        let _ = tokio::time::timeout(UNREGISTER_GRACE, done).await;
    };
    let max_message = settings.grpc.limits.max_message_size;
    let router = svcid_grpc::server::standard_router(
        &settings.grpc.limits,
        AuthLayer::new(verifier, access_policy()).with_metrics(Arc::clone(&operations.auth)),
        "dpe",
        health_service,
    )?
    .add_service(
        HeartbeatServiceServer::new(Heartbeat::new(&engine_id, constraints))
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
    );
    let served = svcid_grpc::server::serve(router, listener, server_tls, graceful).await;

    operations.set_serving(false);
    let _ = scheduler.join();
    let _ = watcher.await;
    let _ = http.await;
    tracing::info!(
        eventId = svcid_grpc::events::STOPPED,
        module = "dpe",
        "DPE stopped."
    );
    served.map_err(DaemonError::from)
}
