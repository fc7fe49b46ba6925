//! The status checker: calls every registered engine's `HeartbeatService.GetStatus` with DPM's own
//! token and moves engines between NEW, READY and DISCONNECTED (docs/wire.md, the handshake).
//!
//! It runs on the `scheduling-1` thread. Checks run concurrently, each bounded by
//! `grpc-checker-timeout`, so a frozen engine never delays the others. The channels to engines are
//! [`EngineChannels`], reused across checks.

use std::sync::Arc;
use std::time::Duration;

use svcid_actuator::instruments::EngineMetrics;
use svcid_client::{OutboundCredentials, PeerProfile, with_correlation_id};
use svcid_identity::token::{TokenIssuer, TokenVerifier};
use svcid_proto::pb::heartbeat::HeartbeatRequest;
use svcid_proto::pb::heartbeat::heartbeat_service_client::HeartbeatServiceClient;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::channels::EngineChannels;
use crate::engines::{
    DueCheck, EngineAddress, EngineRef, EngineRegistry, EngineStatus, Transition,
};
use crate::service::REGISTRY_LOGGER;

/// Checks engines until told to stop.
#[derive(Debug)]
pub struct StatusChecker {
    /// The engines to check.
    registry: Arc<EngineRegistry>,
    /// DPM's token source; checks carry `aud=dpe` unless the engine's deployment is a product
    /// module (docs/wire.md).
    issuer: Arc<TokenIssuer>,
    /// The registry in force, for the token profile of the deployment that registered an engine.
    verifier: Arc<TokenVerifier>,
    /// The connections to engines, and the deadline of one check.
    channels: Arc<EngineChannels>,
    /// Check outcomes and latency, for `/actuator/prometheus`.
    metrics: Arc<EngineMetrics>,
}

/// The result of one check: the engine, the address it was checked at, and why it failed.
type CheckResult = (String, EngineAddress, Result<(), String>);

impl StatusChecker {
    /// A checker over `registry`, calling with `issuer`'s tokens in the profile `verifier`'s
    /// registry gives each engine's deployment, over `channels`.
    pub fn new(
        registry: Arc<EngineRegistry>,
        issuer: Arc<TokenIssuer>,
        verifier: Arc<TokenVerifier>,
        channels: Arc<EngineChannels>,
    ) -> Self {
        Self {
            registry,
            issuer,
            verifier,
            channels,
            metrics: Arc::default(),
        }
    }

    /// Records every check's outcome and duration in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<EngineMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut running: JoinSet<CheckResult> = JoinSet::new();
        loop {
            for DueCheck {
                id,
                address,
                deployment,
            } in self.registry.start_due_checks(Instant::now())
            {
                let channel = match self.channels.get(&address) {
                    Ok(channel) => channel,
                    Err(why) => {
                        running.spawn(async move { (id, address, Err(why)) });
                        continue;
                    }
                };
                let credentials =
                    OutboundCredentials::new(Arc::clone(&self.issuer), "dpe").with_profile(
                        PeerProfile::OfDeployment(Arc::clone(&self.verifier), deployment),
                    );
                let timeout = self.channels.timeout();
                let metrics = Arc::clone(&self.metrics);
                running.spawn(async move {
                    let started = Instant::now();
                    let result = check(channel, credentials, &id, timeout).await;
                    metrics.checked(started.elapsed(), result.is_ok());
                    (id, address, result)
                });
            }
            let next_due = self.registry.next_due();
            tokio::select! {
                Some(done) = running.join_next() => {
                    if let Ok((id, address, result)) = done {
                        self.record(&id, &address, result);
                    }
                }
                () = self.registry.changed() => {}
                () = sleep_until(next_due) => {}
                _ = stop.changed() => break,
            }
            self.channels.prune(&self.registry);
        }
        running.abort_all();
    }

    fn record(&self, id: &str, address: &EngineAddress, result: Result<(), String>) {
        let Some(Transition {
            old,
            new,
            address,
            retry_in,
        }) = self.registry.finish_check(id, address, result.is_ok())
        else {
            return;
        };
        let engine = EngineRef {
            id,
            address: &address,
        };
        match (old, new, result) {
            (EngineStatus::Ready, EngineStatus::Ready, _) => {
                tracing::trace!(correlationId = %id, eventId = crate::events::ENGINE_CHECKED, engine = %engine, "Engine is ready.");
            }
            (_, EngineStatus::Ready, _) => {
                tracing::info!(
                    target: REGISTRY_LOGGER,
                    correlationId = %id,
                    eventId = crate::events::SET_ENGINE_STATUS,
                    engine = %engine,
                    oldStatus = %old,
                    newStatus = %new,
                );
            }
            (EngineStatus::Disconnected, _, Err(reason)) => {
                tracing::debug!(
                    correlationId = %id,
                    eventId = crate::events::ENGINE_DISCONNECTED,
                    engine = %engine,
                    reason = %reason,
                    retryInMs = retry_in.unwrap_or_default().as_millis() as u64,
                    "Engine still unreachable."
                );
            }
            (_, _, Err(reason)) => {
                tracing::warn!(
                    correlationId = %id,
                    eventId = crate::events::ENGINE_DISCONNECTED,
                    engine = %engine,
                    oldStatus = %old,
                    newStatus = %new,
                    reason = %reason,
                    retryInMs = retry_in.unwrap_or_default().as_millis() as u64,
                    "Engine disconnected."
                );
            }
            (_, _, Ok(())) => {}
        }
    }
}

/// How much later than its deadline a failed check may end before the failure is put down to
/// DPM itself not running (the process stopped, swapped out or starved of CPU) rather than to
/// the engine: a timer that fires seconds late says nothing about the engine, whose answer may
/// be waiting in the socket.
const STALLED_BY: Duration = Duration::from_millis(500);

/// One status check of engine `id`. A check that failed only after DPM stood still past its
/// deadline is made once more, at once: an engine that answers is not marked DISCONNECTED for
/// DPM's own pause, and one that does not fails the second check on time.
async fn check(
    channel: Channel,
    credentials: OutboundCredentials,
    id: &str,
    timeout: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let first = check_once(channel.clone(), credentials.clone(), id, timeout).await;
    let took = started.elapsed();
    if first.is_err() && took > timeout + STALLED_BY {
        tracing::debug!(
            correlationId = %id,
            eventId = crate::events::ENGINE_CHECKED,
            tookMs = took.as_millis() as u64,
            "The check ended long after its deadline (DPM was not running); checking again."
        );
        return check_once(channel, credentials, id, timeout).await;
    }
    first
}

/// One `GetStatus` call to engine `id`, bounded by `timeout`.
async fn check_once(
    channel: Channel,
    credentials: OutboundCredentials,
    id: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut client = HeartbeatServiceClient::with_interceptor(channel, credentials);
    let mut request = with_correlation_id(tonic::Request::new(HeartbeatRequest {}), id);
    request.set_timeout(timeout);
    match tokio::time::timeout(timeout, client.get_status(request)).await {
        Err(_) => Err(format!("no answer within {timeout:?}")),
        // The reason of a transport failure (an untrusted certificate) is in the sources.
        Ok(Err(status)) => Err(format!(
            "{:?}: {}",
            status.code(),
            svcid_client::failure_reason(&status)
        )),
        Ok(Ok(response)) => {
            let answered = response.into_inner().engine_id;
            if answered == id {
                Ok(())
            } else {
                Err(format!(
                    "the engine at this address answered as engine {answered:?}"
                ))
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
