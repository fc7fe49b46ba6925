//! The life of a daemon process, written once for both: arguments, configuration (reported before
//! anything is bound), logging, the runtime, the shared parts (instruments, live configuration, the
//! HTTP port, credentials, health, the router), serving, signals and the stop sequence.
//!
//! A daemon supplies only what is its own, as a [`Module`]: its kind, its main service, who may
//! call what, and — from [`Module::prepare`] — its services, its scheduled work, its actuator parts
//! and what it does when asked to stop (a DPE unregisters first). `dpm` and `dpe`'s `main` is one
//! call: [`main::<TheirModule>()`](main).
//!
//! The files below this one: [`args`] (the command line), [`startup`] (loading and logging before
//! the runtime), [`credentials`] (issuer, verifier, server TLS), [`exit`] (errors and exit codes).

pub mod args;
pub mod credentials;
pub mod exit;
pub mod startup;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use svcid_actuator::Actuator;
use svcid_config::{GrpcLimits, ModuleHome, ModuleKind, Overrides, RoleSettings, Settings};
use svcid_identity::authz::AccessPolicy;
use svcid_identity::token::TokenIssuer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;

pub use args::{DaemonArgs, parse_args};
pub use credentials::Credentials;
pub use exit::{DaemonError, EX_CONFIG, EX_IOERR, EX_SOFTWARE, EX_UNAVAILABLE, EX_USAGE};
pub use startup::{
    exposed_mode, listen_grpc, load_settings, local_address, report, start_logging, warn_if_exposed,
};

use crate::AuthLayer;
use crate::http::Instruments;
use crate::reload::LiveConfig;

/// A future the life cycle runs for a module; `'static` and `Send`, as tasks need.
pub type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What one daemon adds to the life cycle.
pub trait Module {
    /// Which daemon this is; the settings must be this module's.
    const KIND: ModuleKind;
    /// The fully qualified gRPC service that `grpc.health.v1` reports `SERVING` while the port
    /// serves (the module's main service).
    const SERVICE: &'static str;
    /// The module type that may call [`Module::SERVICE`] (`dpe` registers with DPM; `dpm` checks
    /// engines).
    const CALLER: &'static str;

    /// Who may call what beyond the main service, `WhoAmI` (any trusted peer) and health and
    /// reflection (open without a token).
    fn more_access(policy: AccessPolicy) -> AccessPolicy {
        policy
    }

    /// Builds the module's parts once the shared ones exist and the gRPC port is bound, before
    /// anything serves. Asynchronous because a part may need the network first (DPM connects to
    /// its registry database).
    fn prepare(context: &Context<'_>) -> impl Future<Output = Result<Parts, DaemonError>> + Send;
}

/// What the life cycle has built when it asks a [`Module`] for its parts.
#[derive(Debug)]
pub struct Context<'a> {
    /// The module's home (its data folder, e.g. DPE's engine id).
    pub home: &'a ModuleHome,
    /// The settings only this module reads.
    pub role: &'a RoleSettings,
    /// The gRPC transport limits; each service the module adds takes the message size.
    pub limits: &'a GrpcLimits,
    /// The address the gRPC port is bound to (port 0 resolved).
    pub bound: SocketAddr,
    /// Mints this module's tokens for its outbound calls.
    pub issuer: &'a Arc<TokenIssuer>,
    /// Verifies peers' tokens; its deployments in force also says which token profile a peer takes
    /// (docs/wire.md), for outbound calls.
    pub verifier: &'a Arc<svcid_identity::token::TokenVerifier>,
    /// Turns true when the daemon is asked to stop; scheduled work ends on it.
    pub stop: watch::Receiver<bool>,
}

/// A module's own parts, handed to the life cycle by [`Module::prepare`].
pub struct Parts {
    /// Its gRPC services (served behind the authentication layer beside health, reflection and
    /// `WhoAmI`).
    pub services: Routes,
    /// Its scheduled work (status checks, registration), run on the `scheduling-1` thread until
    /// [`Context::stop`] turns true.
    pub scheduled: Work,
    /// Adds its components, metrics and info to the shared actuator.
    pub actuator: Box<dyn FnOnce(Actuator) -> Actuator + Send>,
    /// Awaited after the stop signal while the gRPC port still serves (DPE unregisters from DPM).
    pub stopping: Work,
    /// The engine id a DPE names in `grpcServerStarted`; `None` for DPM.
    pub engine_id: Option<String>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("engine_id", &self.engine_id)
            .finish_non_exhaustive()
    }
}

/// Nothing to do: the `stopping` of a module that has no shutdown step, or its `scheduled` work
/// when it has none.
pub fn nothing() -> Work {
    Box::pin(std::future::ready(()))
}

/// The whole life of a daemon process: arguments, configuration, logging, runtime, [`run`] until
/// SIGINT/SIGTERM, exit code.
pub fn main<M: Module>() -> ExitCode {
    let kind = M::KIND;
    let args = match parse_args(kind, std::env::args().skip(1)) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let overrides = Overrides::from_process(args.overrides.clone());
    let loaded = match load_settings(kind, &args.home, &overrides) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    // Logging starts before the runtime so the local UTC offset is read while single-threaded.
    let _guard = match start_logging(kind, &loaded) {
        Ok(guard) => guard,
        Err(code) => return code,
    };
    let runtime = match crate::server::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{kind}: cannot start the runtime: {error}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    let settings = loaded.settings;
    let result = runtime.block_on(async move {
        let listener = listen_grpc(&settings.grpc.host, settings.grpc.port).await?;
        run::<M>(
            settings,
            overrides,
            listener,
            crate::server::shutdown_signal(),
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(eventId = crate::events::STOPPED, "{kind} stopped: {error}");
            eprintln!("{kind}: {error}");
            error.exit_code()
        }
    }
}

/// Serves module `M` on `listener` until `shutdown` resolves, then stops in order: scheduled work
/// is told to stop, the module's `stopping` step runs while the port still answers, the port
/// stops, and the scheduler, the live configuration and the HTTP port are joined.
pub async fn run<M: Module>(
    settings: Settings,
    overrides: Overrides,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    if settings.kind != M::KIND {
        return Err(DaemonError::WrongModule {
            expected: M::KIND.as_str(),
        });
    }
    let instruments = Instruments::new();
    let live = LiveConfig::new(&settings, overrides).with_metrics(Arc::clone(&instruments.reloads));
    let http_listener = crate::http::listen_http(&settings.http).await?;
    let users = startup::users(&settings);
    let client_trust = startup::client_trust(&settings);
    let admin_roles = settings.jwt.admin_roles.clone();
    let credentials = Credentials::new(
        settings.verify_policy(),
        settings.jwt,
        settings.deployments,
        settings.grpc.tls.as_ref(),
    )?;
    let bound = local_address(&listener, "gRPC")?;
    let (stop, stopped) = watch::channel(false);
    let parts = M::prepare(&Context {
        home: &settings.home,
        role: &settings.role,
        limits: &settings.grpc.limits,
        bound,
        issuer: &credentials.issuer,
        verifier: &credentials.verifier,
        stop: stopped,
    })
    .await?;
    // Installs the SIGHUP handler now, before the daemon announces that it serves.
    let watcher = tokio::spawn(live.watch(credentials.live_targets(), stop.subscribe()));
    let scheduler =
        crate::server::spawn_scheduler(parts.scheduled).map_err(DaemonError::Scheduler)?;

    let Credentials {
        issuer,
        verifier,
        server_tls,
    } = credentials;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(M::SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    tracing::info!(
        eventId = crate::events::GRPC_SERVER_STARTED,
        module = M::KIND.as_str(),
        host = %bound.ip(),
        port = bound.port(),
        engineId = parts.engine_id.as_deref(),
        kid = %issuer.kid(),
        "gRPC server started."
    );
    crate::tls::log_serving(settings.grpc.tls.as_ref());
    crate::tls::warn_if_trusting_all(&settings.role);
    let shared = instruments
        .actuator(M::KIND, bound, &verifier, &issuer)
        .console_enabled(settings.http.console);
    let shared = match &users {
        None => {
            crate::http::log_console_open(&settings.http);
            shared
        }
        Some(users) => {
            let (health_of, metrics_of) = (Arc::clone(users), Arc::clone(users));
            let shared = shared
                .health("userKeys", move || health_of.health())
                .metrics(move |out| metrics_of.render_metrics(out));
            let http_port = local_address(&http_listener, "HTTP")?.port();
            let access = svcid_login::HttpAccess::new(
                M::KIND.as_str(),
                http_port,
                &settings.access,
                &settings.users,
                Arc::clone(users),
                Arc::clone(&verifier),
                &client_trust,
            )
            .map_err(DaemonError::Login)?;
            match access {
                None => shared,
                Some(access) => {
                    let access = Arc::new(access);
                    let metrics_of = Arc::clone(&access);
                    shared
                        .metrics(move |out| metrics_of.render_metrics(out))
                        .guarded(access)
                }
            }
        }
    };
    let actuator = (parts.actuator)(shared);
    // The listener is bound: calls queue in the kernel until the server below takes them.
    instruments.set_serving(true);
    let http_gate = crate::connections::Gate::new(
        &settings.http.connections,
        Arc::clone(&instruments.http_connections),
    );
    let http = crate::http::start_http(actuator, http_listener, http_gate, stop.subscribe())?;

    let router = crate::server::router(
        &settings.grpc.limits,
        AuthLayer::new(verifier, access_policy::<M>().with_admin_roles(admin_roles))
            .with_metrics(Arc::clone(&instruments.auth))
            .with_users(users.clone()),
        M::KIND.as_str(),
        health_service,
        parts.services,
    )?;
    let stop = Arc::new(stop);
    let stopping = parts.stopping;
    let graceful = {
        let stop = Arc::clone(&stop);
        async move {
            shutdown.await;
            let _ = stop.send(true);
            stopping.await;
        }
    };
    let gate = crate::connections::Gate::new(
        &settings.grpc.limits.connections,
        Arc::clone(&instruments.connections),
    );
    let served = crate::server::serve(router, listener, gate, server_tls, graceful).await;

    instruments.set_serving(false);
    // Also when the server failed rather than being asked to stop.
    let _ = stop.send(true);
    let _ = scheduler.join();
    let _ = watcher.await;
    let _ = http.await;
    tracing::info!(
        eventId = crate::events::STOPPED,
        module = M::KIND.as_str(),
        "{} stopped.",
        M::KIND.as_str().to_ascii_uppercase()
    );
    served.map_err(DaemonError::from)
}

/// Who may call what on module `M`: [`Module::CALLER`] its main service, any trusted peer and
/// any person `WhoAmI`, and what [`Module::more_access`] adds.
pub fn access_policy<M: Module>() -> AccessPolicy {
    M::more_access(
        AccessPolicy::new()
            .allow(&format!("/{}/", M::SERVICE), M::CALLER)
            .allow_any_peer(crate::WHOAMI_PREFIX)
            .allow_users(crate::WHOAMI_PREFIX),
    )
}
