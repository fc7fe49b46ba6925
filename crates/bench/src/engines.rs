//! Simulated engines: what DPM sees of a `dpe`, many to a process.
//!
//! Each engine is a real tonic server on its own loopback port serving `HeartbeatService` behind
//! svcid's authentication layer (it verifies DPM's token, as `dpe` does), and a loop that
//! registers with a DPM every interval (jittered as `dpe` does) with its own token. Engines are
//! born frozen (servers up, registration waiting) so a caller can release them all at once, and
//! can be frozen again (their handlers hang, their registration pauses, as under SIGSTOP). Each
//! notes when it was checked and when a registration was new to DPM, for the measuring code.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use svcid_client::{OutboundCredentials, with_correlation_id};
use svcid_grpc::AuthLayer;
use svcid_identity::{
    AccessPolicy, Deployment, DeploymentKey, Deployments, GeneratorKey, SystemClock, TokenIssuer,
    TokenProfile, TokenVerifier, VerifyPolicy,
};
use svcid_proto::pb::constraint::Constraints;
use svcid_proto::pb::heartbeat::heartbeat_service_server::{
    HeartbeatService, HeartbeatServiceServer, SERVICE_NAME,
};
use svcid_proto::pb::heartbeat::{self, HeartbeatRequest, HeartbeatResponse};
use svcid_proto::pb::registry::registry_service_client::RegistryServiceClient;
use svcid_proto::pb::registry::{self, EngineAddress, RegistrationRequest};
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

/// Token lifetime of the engines: `dpe`'s default `token-expiration`.
const TOKEN_LIFETIME: Duration = Duration::from_secs(15);
/// At most this many check times are kept per engine (a run is minutes long).
const MAX_CHECK_STAMPS: usize = 2048;

/// What the engines of this process share with the measuring code.
#[derive(Debug)]
pub struct SimEngine {
    /// Engine id (a UUID, as `dpe` persists).
    pub id: String,
    /// When status checks arrived (answered or not), oldest first.
    pub checks: Arc<Mutex<Vec<Instant>>>,
    /// When its registrations returned `SUCCESS` (a new registration at DPM).
    pub registered: Arc<Mutex<Vec<Instant>>>,
    /// True while frozen; send `false` to release the engine.
    pub frozen: watch::Sender<bool>,
}

impl SimEngine {
    /// The first status check that arrived after `at`, if any yet.
    pub fn first_check_after(&self, at: Instant) -> Option<Instant> {
        self.checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .find(|check| *check > at)
    }
}

/// The verifier of every simulated engine: it trusts one `dpm` deployment with DPM's key (every
/// replica of a DPM fleet signs with the same key, as docs/postgres.md recommends).
///
/// One verifier, one cache of accepted tokens, for the whole fleet: DPM's token, renewed every
/// ~10 s, is verified once, not once per engine. Each real engine verifies it on its own CPU;
/// thousands of verifications at once on the two cores DPM runs on would measure this process,
/// not DPM.
pub fn engines_verifier(dpm_key: &GeneratorKey) -> Result<Arc<TokenVerifier>> {
    let registry = Deployments::new(vec![Deployment {
        name: "dpm-bench".into(),
        module: "dpm".into(),
        environment: None,
        uri: None,
        token_profile: TokenProfile::Strict,
        roles: Vec::new(),
        keys: vec![DeploymentKey {
            name: "key".into(),
            fingerprint: dpm_key.kid().into(),
            public: dpm_key.public_key(),
            revoked: false,
        }],
    }])
    .map_err(|e| anyhow::anyhow!("DPM's deployment: {e:?}"))?;
    Ok(Arc::new(TokenVerifier::new(
        VerifyPolicy::new("dpe"),
        registry,
        Arc::new(SystemClock),
    )))
}

/// Starts one simulated engine, frozen: its server and its registration loop with the DPM on
/// `dpm_port`. Its tasks join `tasks` and end when `stop` turns true.
pub fn start_engine(
    listener: tokio::net::TcpListener,
    key: &GeneratorKey,
    verifier: &Arc<TokenVerifier>,
    dpm_port: u16,
    stop: watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
    interval: Duration,
) -> Result<SimEngine> {
    let id = uuid::Uuid::new_v4().to_string();
    let port = listener.local_addr()?.port();
    let checks = Arc::new(Mutex::new(Vec::with_capacity(64)));
    let registered = Arc::new(Mutex::new(Vec::with_capacity(8)));
    // Born frozen: the caller releases every engine at once.
    let (frozen, thawed) = watch::channel(true);

    // The server: DPM's token checked by svcid's layer, then the heartbeat.
    let policy = AccessPolicy::new().allow(&format!("/{SERVICE_NAME}/"), "dpm");
    let heartbeat = SimHeartbeat {
        engine_id: id.clone(),
        checks: Arc::clone(&checks),
        thawed: thawed.clone(),
    };
    let mut server_stop = stop.clone();
    let server = tonic::transport::Server::builder()
        .layer(AuthLayer::new(Arc::clone(verifier), policy))
        .add_service(HeartbeatServiceServer::new(heartbeat))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move {
            let _ = server_stop.wait_for(|stopped| *stopped).await;
        });
    tasks.spawn(async move {
        let _ = server.await;
    });

    // The registration loop, as dpe's: register, then wait the (jittered) interval.
    let issuer = Arc::new(TokenIssuer::new(
        GeneratorKey::from_base64(&key.to_base64())?,
        TOKEN_LIFETIME,
        Arc::new(SystemClock),
    )?);
    let channel = svcid_client::endpoint("127.0.0.1", dpm_port, None)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let mut client =
        RegistryServiceClient::with_interceptor(channel, OutboundCredentials::new(issuer, "dpm"));
    let request = RegistrationRequest {
        engine_id: id.clone(),
        address: Some(EngineAddress {
            hostname: "127.0.0.1".into(),
            port: i32::from(port),
        }),
        constraints: Some(Constraints::default()),
    };
    let mut stop_loop = stop;
    let mut thawed_loop = thawed;
    let stamps = Arc::clone(&registered);
    let loop_id = id.clone();
    tasks.spawn(async move {
        // Bounded: a run is minutes long; this many registrations would be hours.
        for _ in 0..100_000u32 {
            if *stop_loop.borrow() {
                return;
            }
            // Frozen: nothing happens until thawed (or stopped).
            tokio::select! {
                _ = thawed_loop.wait_for(|frozen| !*frozen) => {}
                _ = stop_loop.wait_for(|stopped| *stopped) => return,
            }
            let call = with_correlation_id(tonic::Request::new(request.clone()), &loop_id);
            if let Ok(response) = client.register_engine(call).await
                && response.into_inner().status() == registry::Status::Success
            {
                push_bounded(&stamps, Instant::now());
            }
            tokio::select! {
                () = tokio::time::sleep(jittered(interval)) => {}
                _ = stop_loop.wait_for(|stopped| *stopped) => return,
            }
        }
    });

    Ok(SimEngine {
        id,
        checks,
        registered,
        frozen,
    })
}

/// The registration interval with the jitter `dpe` applies: uniformly 0.8–1.0 of it.
fn jittered(interval: Duration) -> Duration {
    let random = (uuid::Uuid::new_v4().as_u128() >> 64) as u64;
    let fraction = 0.8 + 0.2 * (random as f64 / u64::MAX as f64);
    interval.mul_f64(fraction)
}

/// `HeartbeatService` of a simulated engine: notes when DPM checked, then answers like `dpe` —
/// unless frozen, in which case the answer waits for the thaw.
#[derive(Debug)]
struct SimHeartbeat {
    /// The id answered; DPM refuses an answer carrying another.
    engine_id: String,
    /// Arrival times of checks.
    checks: Arc<Mutex<Vec<Instant>>>,
    /// False while frozen.
    thawed: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl HeartbeatService for SimHeartbeat {
    async fn get_status(
        &self,
        _request: tonic::Request<HeartbeatRequest>,
    ) -> Result<tonic::Response<HeartbeatResponse>, tonic::Status> {
        let mut thawed = self.thawed.clone();
        if *thawed.borrow() {
            // Frozen: a stopped process neither answers nor notes anything. The wait is bounded
            // by DPM's own deadline (it drops the call) and by the end of the run.
            let _ =
                tokio::time::timeout(Duration::from_secs(600), thawed.wait_for(|frozen| !*frozen))
                    .await;
        } else {
            push_bounded(&self.checks, Instant::now());
        }
        Ok(tonic::Response::new(HeartbeatResponse {
            status: heartbeat::Status::Ok.into(),
            constraints: Some(Constraints::default()),
            engine_id: self.engine_id.clone(),
        }))
    }
}

fn push_bounded(stamps: &Mutex<Vec<Instant>>, at: Instant) {
    let mut stamps = stamps.lock().unwrap_or_else(PoisonError::into_inner);
    if stamps.len() >= MAX_CHECK_STAMPS {
        stamps.drain(..MAX_CHECK_STAMPS / 2);
    }
    stamps.push(at);
}

/// The stamps within [from, to].
pub fn stamps_between(stamps: &Mutex<Vec<Instant>>, from: Instant, to: Instant) -> Vec<Instant> {
    stamps
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .copied()
        .filter(|at| *at >= from && *at <= to)
        .collect()
}

/// Intervals between consecutive checks of each selected engine within [from, to].
pub fn check_intervals(
    engines: &[SimEngine],
    from: Instant,
    to: Instant,
    selected: impl Fn(&SimEngine) -> bool,
) -> Vec<Duration> {
    let mut intervals = Vec::new();
    for engine in engines.iter().filter(|e| selected(e)) {
        let stamps = stamps_between(&engine.checks, from, to);
        intervals.extend(
            stamps
                .windows(2)
                .map(|w| w[1].saturating_duration_since(w[0])),
        );
    }
    intervals
}

/// A fleet of simulated engines in this process, born frozen: engine `i` signs with
/// `keys[i % keys.len()]` and registers with the DPM on `ports[i % ports.len()]`.
#[derive(Debug)]
pub struct Fleet {
    /// The engines.
    pub engines: Vec<SimEngine>,
    /// Their servers and registration loops.
    tasks: tokio::task::JoinSet<()>,
    /// Turns true to stop them all.
    stop: watch::Sender<bool>,
}

impl Fleet {
    /// Starts `count` engines (servers up, registration waiting for [`Fleet::release`]).
    pub async fn start(
        count: usize,
        keys: &[GeneratorKey],
        verifier: &Arc<TokenVerifier>,
        ports: &[u16],
        interval: Duration,
    ) -> Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let mut engines = Vec::with_capacity(count);
        for i in 0..count {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding an engine port")?;
            engines.push(start_engine(
                listener,
                &keys[i % keys.len()],
                verifier,
                ports[i % ports.len()],
                stopped.clone(),
                &mut tasks,
                interval,
            )?);
        }
        Ok(Self {
            engines,
            tasks,
            stop,
        })
    }

    /// Releases every engine at once (a storm, not a trickle paced by how fast engines were
    /// built); returns when the last was released.
    pub fn release(&self) -> Instant {
        for engine in &self.engines {
            let _ = engine.frozen.send(false);
        }
        Instant::now()
    }

    /// Freezes (`true`) or thaws (`false`) the first `count` engines.
    pub fn freeze_first(&self, count: usize, frozen: bool) {
        for engine in &self.engines[..count] {
            let _ = engine.frozen.send(frozen);
        }
    }

    /// The engines' ids.
    pub fn ids(&self) -> HashSet<String> {
        self.engines.iter().map(|e| e.id.clone()).collect()
    }

    /// Checks each engine received in [from, to], per second, sorted.
    pub fn check_rates(&self, from: Instant, to: Instant) -> Vec<f64> {
        let seconds = to.saturating_duration_since(from).as_secs_f64().max(1e-3);
        let mut rates: Vec<f64> = self
            .engines
            .iter()
            .map(|e| stamps_between(&e.checks, from, to).len() as f64 / seconds)
            .collect();
        rates.sort_by(f64::total_cmp);
        rates
    }

    /// Stops every engine and waits (at most 10 s) for their tasks to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}
