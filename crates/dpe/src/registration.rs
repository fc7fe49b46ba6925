//! The engine's side of the handshake (docs/wire.md): register with DPM at start-up and then
//! every `check-connection-interval`. The call is idempotent and doubles as a keep-alive, which
//! also heals a DPM restart: the next call after it returns SUCCESS again. On shutdown the engine
//! unregisters, unless DPM never accepted its registration (then there is nothing to undo, and it
//! says so at INFO). Runs on the `scheduling-1` thread.

use std::sync::Arc;
use std::time::Duration;

use svcid_actuator::instruments::RegistrationState;
use svcid_client::{OutboundCredentials, PeerProfile, with_correlation_id};
use svcid_config::ClientTls;
use svcid_identity::token::{TokenIssuer, TokenVerifier};
use svcid_proto::pb::registry::registry_service_client::RegistryServiceClient;
use svcid_proto::pb::registry::{
    self, RegistrationRequest, UnregistrationRequest, unregistration_response,
};
use tokio::sync::{oneshot, watch};
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

/// The logger of the `register` events, the product DPE's class, so saved searches on
/// `logger_name` keep working (docs/operations.md, log events).
pub const REGISTER_LOGGER: &str = "com.ataccama.dpe.service.StatusChecker";

/// Longest wait for one registration call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps this engine registered with DPM.
#[derive(Debug)]
pub struct Registrar {
    /// DPM's registry, with this engine's token on every call.
    client: RegistryServiceClient<InterceptedService<Channel, OutboundCredentials>>,
    /// What is sent on every registration (id, advertised address, constraints).
    request: RegistrationRequest,
    /// Between registrations.
    interval: Duration,
    /// `host:port` of DPM, as logged in `dpmUrl`.
    dpm_url: String,
    /// The outcome of the last call, for the `registration` health component and metrics.
    state: Arc<RegistrationState>,
    /// Whether DPM ever accepted a registration (`SUCCESS` or `ALREADY_REGISTERED`).
    registered_once: bool,
}

impl Registrar {
    /// A registrar that registers `request` with the DPM at `dpm_host:dpm_port`, over TLS when
    /// `tls` is set. Must be created on the runtime that will run it (the channel's connection
    /// task lives there).
    pub fn new(
        issuer: Arc<TokenIssuer>,
        verifier: Arc<TokenVerifier>,
        dpm_host: &str,
        dpm_port: u16,
        request: RegistrationRequest,
        interval: Duration,
        tls: Option<&ClientTls>,
    ) -> Result<Self, svcid_client::EndpointError> {
        let endpoint = svcid_client::endpoint(dpm_host, dpm_port, tls)?
            .connect_timeout(CALL_TIMEOUT)
            .timeout(CALL_TIMEOUT);
        let client = RegistryServiceClient::with_interceptor(
            endpoint.connect_lazy(),
            // A DPM deployment marked as a product module gets tokens without aud (docs/wire.md).
            OutboundCredentials::new(issuer, "dpm")
                .with_profile(PeerProfile::OfModule(verifier, "dpm".to_owned())),
        );
        let dpm_url = format!("{dpm_host}:{dpm_port}");
        Ok(Self {
            client,
            request,
            interval,
            state: Arc::new(RegistrationState::new(dpm_url.clone())),
            dpm_url,
            registered_once: false,
        })
    }

    /// Reports every call's outcome to `state` (shared with the actuator).
    #[must_use]
    pub fn with_state(mut self, state: Arc<RegistrationState>) -> Self {
        self.state = state;
        self
    }

    /// Registers now and then every interval until `stop` turns true; then unregisters and
    /// reports on `done`.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>, done: oneshot::Sender<()>) {
        loop {
            self.register().await;
            tokio::select! {
                () = tokio::time::sleep(jittered(self.interval)) => {}
                _ = stop.changed() => break,
            }
        }
        if self.registered_once {
            self.unregister().await;
        } else {
            tracing::info!(
                correlationId = %self.request.engine_id,
                eventId = crate::events::UNREGISTER,
                dpmUrl = %self.dpm_url,
                "Engine was never registered with DPM; nothing to unregister."
            );
        }
        self.state.unregistered();
        let _ = done.send(());
    }

    async fn register(&mut self) {
        let id = self.request.engine_id.clone();
        let request = with_correlation_id(tonic::Request::new(self.request.clone()), &id);
        match self.client.register_engine(request).await {
            Ok(response) => match response.into_inner().status() {
                registry::Status::Success => {
                    self.registered_once = true;
                    self.state.succeeded(false);
                    tracing::info!(
                        target: REGISTER_LOGGER,
                        correlationId = %id,
                        eventId = crate::events::REGISTER,
                        dpmUrl = %self.dpm_url,
                        "Engine registered."
                    );
                }
                registry::Status::AlreadyRegistered => {
                    self.registered_once = true;
                    self.state.succeeded(true);
                    tracing::debug!(
                        target: REGISTER_LOGGER,
                        correlationId = %id,
                        eventId = crate::events::REGISTER,
                        dpmUrl = %self.dpm_url,
                        "Engine already registered."
                    );
                }
                registry::Status::Error => {
                    self.state.failed("DPM answered ERROR".to_owned());
                    tracing::warn!(
                        target: REGISTER_LOGGER,
                        correlationId = %id,
                        eventId = crate::events::REGISTER,
                        dpmUrl = %self.dpm_url,
                        code = "ERROR",
                        "Unable to register."
                    );
                }
            },
            Err(status) => {
                // A transport failure (DPM's certificate not trusted, a TLS port spoken to in
                // plain text) says why only in its sources.
                let reason = svcid_client::failure_reason(&status);
                self.state.failed(format!("{:?}: {reason}", status.code()));
                tracing::warn!(
                    target: REGISTER_LOGGER,
                    correlationId = %id,
                    eventId = crate::events::REGISTER,
                    dpmUrl = %self.dpm_url,
                    code = ?status.code(),
                    reason = %reason,
                    "Unable to register."
                );
            }
        }
    }

    async fn unregister(&mut self) {
        let id = self.request.engine_id.clone();
        let request = with_correlation_id(
            tonic::Request::new(UnregistrationRequest {
                engine_id: id.clone(),
            }),
            &id,
        );
        match self.client.unregister_engine(request).await {
            Ok(response) => {
                let status = response.into_inner().status();
                let message = match status {
                    unregistration_response::Status::Success => "Engine unregistered.",
                    unregistration_response::Status::NotRegistered => "Engine was not registered.",
                    unregistration_response::Status::Error => "Unable to unregister.",
                };
                tracing::info!(correlationId = %id, eventId = crate::events::UNREGISTER, dpmUrl = %self.dpm_url, "{message}");
            }
            Err(status) => {
                tracing::warn!(
                    correlationId = %id,
                    eventId = crate::events::UNREGISTER,
                    dpmUrl = %self.dpm_url,
                    code = ?status.code(),
                    reason = %status.message(),
                    "Unable to unregister."
                );
            }
        }
    }
}

/// `interval` shortened by a random 0–20 %. Engines started together (a rack booting, or all of
/// them re-registering after a DPM restart) would otherwise call DPM in the same instant every
/// interval, forever; with the jitter their calls spread out within a few intervals.
pub fn jittered(interval: Duration) -> Duration {
    // The random bits of a v4 UUID: no extra dependency for a scheduling nicety.
    let random = (uuid::Uuid::new_v4().as_u128() >> 64) as u64;
    let fraction = 0.8 + 0.2 * (random as f64 / u64::MAX as f64);
    interval.mul_f64(fraction)
}

#[cfg(test)]
mod jitter_tests {
    use super::*;

    #[test]
    fn the_interval_is_shortened_by_at_most_a_fifth_and_varies() {
        let interval = Duration::from_secs(5);
        let draws: Vec<Duration> = (0..200).map(|_| jittered(interval)).collect();
        assert!(
            draws
                .iter()
                .all(|d| *d >= Duration::from_secs(4) && *d <= interval)
        );
        let first = draws[0];
        assert!(draws.iter().any(|d| *d != first), "no jitter at all");
    }
}
