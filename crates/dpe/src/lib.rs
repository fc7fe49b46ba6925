//! The Data Processing Engine daemon: serves `HeartbeatService` to DPM and keeps itself
//! registered with DPM through [`registration::Registrar`].
//!
//! [`Dpe`] is what DPE adds to the daemon life cycle of `svcid_grpc::daemon` (which `main` runs,
//! and tests can run in-process with `svcid_grpc::daemon::run::<Dpe>` on `127.0.0.1:0`). Its HTTP port
//! reports `registration` health: `UP` while the last registration with DPM succeeded.

pub mod constraints;
pub mod engine_id;
pub mod events;
pub mod heartbeat;
pub mod registration;

use std::sync::Arc;
use std::time::Duration;

use svcid_actuator::instruments::RegistrationState;
use svcid_config::{ModuleKind, RoleSettings};
use svcid_grpc::daemon::{Context, DaemonError, Module, Parts};
use svcid_proto::pb::heartbeat::heartbeat_service_server::{HeartbeatServiceServer, SERVICE_NAME};
use svcid_proto::pb::registry::{EngineAddress, RegistrationRequest};
use tonic::service::Routes;

use crate::heartbeat::Heartbeat;
use crate::registration::Registrar;

/// How long shutdown waits for the unregistration before stopping anyway.
const UNREGISTER_GRACE: Duration = Duration::from_secs(5);

/// The console's `registration` section: this engine's id and its registration with DPM (the
/// `registration` health component's details: `dpmUrl`, `since`, `lastError`).
fn registration_view(state: &RegistrationState, engine_id: &str) -> serde_json::Value {
    let health = state.health();
    let mut view = serde_json::Map::new();
    view.insert("engineId".to_owned(), engine_id.into());
    view.insert("registered".to_owned(), state.is_registered().into());
    view.extend(health.details);
    serde_json::Value::Object(view)
}

/// The Data Processing Engine, as the shared daemon life cycle runs it
/// (`svcid_grpc::daemon::main::<Dpe>()`).
#[derive(Debug)]
pub struct Dpe;

impl Module for Dpe {
    const KIND: ModuleKind = ModuleKind::Dpe;
    const SERVICE: &'static str = SERVICE_NAME;
    const CALLER: &'static str = "dpm";

    /// The engine id, the heartbeat service, the registration with DPM (scheduled, and undone
    /// by the stopping step), the `registration` health component and the `engine` info.
    async fn prepare(context: &Context<'_>) -> Result<Parts, DaemonError> {
        let RoleSettings::Dpe(dpe) = context.role else {
            return Err(DaemonError::WrongModule { expected: "dpe" });
        };
        let engine_id = engine_id::load_or_create(&context.home.engine_id_file())?;
        let constraints = constraints::advertised(dpe);
        let registration = RegistrationRequest {
            engine_id: engine_id.clone(),
            address: Some(EngineAddress {
                hostname: dpe.advertised_hostname.clone(),
                port: i32::from(dpe.advertised_port.unwrap_or(context.bound.port())),
            }),
            constraints: Some(constraints.clone()),
        };
        let state = Arc::new(RegistrationState::new(format!(
            "{}:{}",
            dpe.dpm_host, dpe.dpm_port
        )));

        // The registrar is created on the scheduling thread: its channel's connection task
        // lives on the runtime that creates it. `done` tells the stopping step it unregistered.
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let (issuer, verifier, stop, dpe) = (
            Arc::clone(context.issuer),
            Arc::clone(context.verifier),
            context.stop.clone(),
            dpe.clone(),
        );
        let registrar_state = Arc::clone(&state);
        let scheduled = async move {
            match Registrar::new(
                issuer,
                verifier,
                &dpe.dpm_host,
                dpe.dpm_port,
                registration,
                dpe.check_connection_interval,
                dpe.dpm_tls.as_ref(),
            ) {
                Ok(registrar) => {
                    registrar
                        .with_state(registrar_state)
                        .run(stop, done_tx)
                        .await
                }
                Err(error) => {
                    tracing::error!(
                        target: registration::REGISTER_LOGGER,
                        eventId = events::REGISTER,
                        "DPM address is not usable: {error}"
                    );
                    let _ = done_tx.send(());
                }
            }
        };
        // Unregister from DPM first (the server keeps answering meanwhile), then stop.
        let stopping = async move {
            let _ = tokio::time::timeout(UNREGISTER_GRACE, done).await;
        };

        let max = context.limits.max_message_size;
        let services = Routes::new(
            HeartbeatServiceServer::new(Heartbeat::new(&engine_id, constraints))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        let info_engine_id = engine_id.clone();
        let console_engine_id = engine_id.clone();
        let actuator = move |shared: svcid_actuator::Actuator| {
            let health_state = Arc::clone(&state);
            let console_state = Arc::clone(&state);
            shared
                .health("registration", move || health_state.health())
                .metrics(move |out| state.render(out))
                .info("engine", move || serde_json::json!({"id": info_engine_id}))
                .console_section("registration", move || {
                    registration_view(&console_state, &console_engine_id)
                })
        };
        Ok(Parts {
            services,
            scheduled: Box::pin(scheduled),
            actuator: Box::new(actuator),
            stopping: Box::pin(stopping),
            engine_id: Some(engine_id),
        })
    }
}
