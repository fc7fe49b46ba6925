//! The HTTP port both daemons share: the actuator (health, Prometheus, info) with the parts
//! common to `dpm` and `dpe`, the console sections they share, and starting the port on
//! `server.port`.
//!
//! Vocabulary, the same in every crate: the *HTTP port* is each daemon's second port, beside the
//! gRPC port (its settings are `svcid_config::HttpSettings`, its modules are named `http`). It
//! serves the *actuator* (the endpoints under `/actuator`) and the *console* (the operations web
//! page under `/console`), both answered by an [`Actuator`].
//!
//! [`Instruments`] holds the instruments the shared code feeds (the authentication layer, the
//! live reloader, the gRPC server's state); [`Instruments::actuator`] assembles an
//! [`Actuator`] reading them and the verifier's and issuer's counters, to which each daemon adds
//! its own parts (DPM: engines; DPE: registration). [`listen_http`] and [`start_http`] open and run
//! it; `httpServerStarted` is logged with the bound port (0 picks one), as `grpcServerStarted` is.
//!
//! `/actuator/info` shows the `kid` this module signs with and, per trusted deployment, its
//! module, roles and key fingerprints with their revocation flags: public facts an operator
//! compares with the peer's `svcid check`. Never a key, never a `d`.
//!
//! The operations console (`/console`, [`svcid_actuator::console`]) gets the sections both
//! daemons share: `trust` (the same keys, each with when it last proved a call), `refusals`
//! (refused calls by reason, deployment and peer, from the counters behind
//! `svcid_authentications_refused_total`) and `configuration` (the last live reload and its
//! result). Like the info, nothing in them is secret: no key, no token, no password.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use svcid_actuator::health::Component;
use svcid_actuator::instruments::{
    AuthMetrics, ConnectionMetrics, Port, ReloadMetrics, TokenCounts, render_tokens,
};
use svcid_actuator::{Actuator, rfc3339};
use svcid_config::{HttpSettings, ModuleKind};
use svcid_identity::deployments::DeploymentKey;
use svcid_identity::token::{TokenIssuer, TokenVerifier};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connections::Gate;
use crate::daemon::exit::DaemonError;

/// A key that proved a call within this long is "used recently" on the console.
pub const KEY_RECENTLY_USED: Duration = Duration::from_secs(300);

/// The instruments shared code feeds, handed to the actuator and to the code that observes.
#[derive(Debug)]
pub struct Instruments {
    /// Fed by [`crate::AuthLayer::with_metrics`].
    pub auth: Arc<AuthMetrics>,
    /// Fed by [`crate::reload::LiveConfig::with_metrics`].
    pub reloads: Arc<ReloadMetrics>,
    /// Fed by the gRPC port's [`crate::connections::Gate`].
    pub connections: Arc<ConnectionMetrics>,
    /// Fed by the HTTP port's [`crate::connections::Gate`].
    pub http_connections: Arc<ConnectionMetrics>,
    /// True while the gRPC server serves; the `grpc` health component.
    pub serving: Arc<AtomicBool>,
}

impl Default for Instruments {
    fn default() -> Self {
        Self {
            auth: Arc::default(),
            reloads: Arc::default(),
            connections: Arc::new(ConnectionMetrics::new(Port::Grpc)),
            http_connections: Arc::new(ConnectionMetrics::new(Port::Http)),
            serving: Arc::default(),
        }
    }
}

impl Instruments {
    /// Fresh instruments; the gRPC server is not serving yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the gRPC server as serving (`true`) or stopped.
    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Relaxed);
    }

    /// The actuator of `kind` with what both daemons have: health components `configuration` and
    /// `grpc` (at `grpc_address`), the authentication, reload and token metrics, and the `keys`
    /// info section.
    pub fn actuator(
        &self,
        kind: ModuleKind,
        grpc_address: SocketAddr,
        verifier: &Arc<TokenVerifier>,
        issuer: &Arc<TokenIssuer>,
    ) -> Actuator {
        let reloads = Arc::clone(&self.reloads);
        let serving = Arc::clone(&self.serving);
        let auth = Arc::clone(&self.auth);
        let reloads_metrics = Arc::clone(&self.reloads);
        let connections = Arc::clone(&self.connections);
        let http_connections = Arc::clone(&self.http_connections);
        let (token_verifier, token_issuer) = (Arc::clone(verifier), Arc::clone(issuer));
        let (info_verifier, info_issuer) = (Arc::clone(verifier), Arc::clone(issuer));
        let (trust_verifier, trust_issuer) = (Arc::clone(verifier), Arc::clone(issuer));
        let console_auth = Arc::clone(&self.auth);
        let console_reloads = Arc::clone(&self.reloads);
        Actuator::new(kind.as_str(), env!("CARGO_PKG_VERSION"))
            .health("configuration", move || reloads.health())
            .health("grpc", move || {
                Component::up_if(serving.load(Ordering::Relaxed)).with("port", grpc_address.port())
            })
            .metrics(move |out| auth.render(out))
            .metrics(move |out| reloads_metrics.render(out))
            .metrics(move |out| connections.render(out))
            .metrics(move |out| http_connections.render(out))
            .metrics(move |out| {
                let cache = token_verifier.cache_stats();
                render_tokens(
                    out,
                    TokenCounts {
                        cache_hits: cache.hits,
                        cache_misses: cache.misses,
                        minted: token_issuer.minted(),
                    },
                );
            })
            .info("keys", move || keys_info(&info_verifier, &info_issuer))
            .console_section("configuration", move || {
                configuration_view(&console_reloads)
            })
            .console_section("trust", move || trust_view(&trust_verifier, &trust_issuer))
            .console_section("refusals", move || refusals_view(&console_auth))
    }
}

/// The `keys` info section: the signing `kid` and every trusted deployment's fingerprints.
pub fn keys_info(verifier: &TokenVerifier, issuer: &TokenIssuer) -> Value {
    keys_report(verifier, issuer, |_, _| {})
}

/// The console's `trust` section: [`keys_info`] with, per key, when it last proved a call
/// (`lastUsed`, RFC 3339, or null) and whether that was within [`KEY_RECENTLY_USED`].
pub fn trust_view(verifier: &TokenVerifier, issuer: &TokenIssuer) -> Value {
    let used: HashMap<String, i64> = verifier.keys_last_used();
    let now = SystemTime::now();
    let mut report = keys_report(verifier, issuer, |key, out| {
        let at = used
            .get(&key.fingerprint)
            .and_then(|secs| u64::try_from(*secs).ok())
            .map(|secs| UNIX_EPOCH + Duration::from_secs(secs));
        let recent = at.is_some_and(|at| {
            now.duration_since(at)
                .map_or(true, |ago| ago <= KEY_RECENTLY_USED)
        });
        out.insert("lastUsed".to_owned(), at.map(rfc3339).into());
        out.insert("usedRecently".to_owned(), recent.into());
    });
    report["recentlySeconds"] = KEY_RECENTLY_USED.as_secs().into();
    report
}

/// The console's `refusals` section: every (reason, deployment, peer) row with its count and
/// last time, the most recent first, and the total (equal to the sum of
/// `svcid_authentications_refused_total`).
pub fn refusals_view(auth: &AuthMetrics) -> Value {
    let rows = auth.refusal_rows();
    let total: u64 = rows.iter().map(|row| row.count).sum();
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "reason": row.reason,
                "deployment": row.deployment,
                "peer": row.peer,
                "count": row.count,
                "last": rfc3339(row.last),
            })
        })
        .collect();
    json!({"total": total, "rows": rows})
}

/// The console's `configuration` section: the last live reload (`none`, `applied`, `failed`)
/// and when, and the counts.
pub fn configuration_view(reloads: &ReloadMetrics) -> Value {
    let (result, at) = reloads.last();
    let (applied, failed) = reloads.counts();
    json!({
        "lastReload": {"result": result, "at": at.map(rfc3339)},
        "reloadsApplied": applied,
        "reloadsFailed": failed,
    })
}

/// The signing `kid` and every trusted deployment's keys, `extra` adding fields to each key.
fn keys_report(
    verifier: &TokenVerifier,
    issuer: &TokenIssuer,
    mut extra: impl FnMut(&DeploymentKey, &mut Map<String, Value>),
) -> Value {
    let deployments = verifier.deployments();
    let trusted: Vec<Value> = deployments
        .deployments()
        .iter()
        .map(|deployment| {
            let keys: Vec<Value> = deployment
                .keys
                .iter()
                .map(|key| {
                    let mut out = Map::new();
                    out.insert("name".to_owned(), key.name.clone().into());
                    out.insert("fingerprint".to_owned(), key.fingerprint.clone().into());
                    out.insert("revoked".to_owned(), key.revoked.into());
                    extra(key, &mut out);
                    Value::Object(out)
                })
                .collect();
            json!({
                "deployment": deployment.name,
                "module": deployment.module,
                "roles": deployment.roles,
                "keys": keys,
            })
        })
        .collect();
    json!({
        "signing": {"kid": issuer.kid()},
        "trusted": trusted,
    })
}

/// Says, once at start, that the console is open to whoever reaches the HTTP port (no
/// user-token issuer is configured, so no login can be asked for) and how to close it.
pub fn log_console_open(settings: &HttpSettings) {
    if !settings.console {
        return;
    }
    let loopback = settings.address == "localhost"
        || settings
            .address
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let fix = if loopback {
        "configure a user-token issuer to require a login (docs/users.md), or set svcid.console.enabled=false"
    } else {
        "configure a user-token issuer to require a login (docs/users.md), bind server.address to loopback, or set svcid.console.enabled=false"
    };
    tracing::info!(
        eventId = crate::events::CONSOLE_OPEN,
        address = %settings.address,
        fix,
        "The console is open to whoever reaches the HTTP port."
    );
}

/// Opens `server.address:server.port`, mapping failure to [`DaemonError::BindHttp`].
pub async fn listen_http(settings: &HttpSettings) -> Result<TcpListener, DaemonError> {
    svcid_actuator::http::listen(&settings.address, settings.port)
        .await
        .map_err(|source| DaemonError::BindHttp {
            address: format!("{}:{}", settings.address, settings.port),
            source,
        })
}

/// Logs `httpServerStarted` and serves `actuator` on the connections of `listener` that `gate`
/// admits (the `server.*` bounds) until `stop` turns true.
pub fn start_http(
    actuator: Actuator,
    listener: TcpListener,
    gate: Arc<Gate>,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, DaemonError> {
    let address = crate::daemon::startup::local_address(&listener, "HTTP")?;
    let (console, served) = if actuator.serves_console() {
        (
            svcid_actuator::console::CONSOLE_PATH,
            ", the operations console at /console",
        )
    } else {
        ("off", "")
    };
    tracing::info!(
        eventId = crate::events::HTTP_SERVER_STARTED,
        module = %actuator.module(),
        host = %address.ip(),
        port = address.port(),
        console = console,
        "HTTP server started (/actuator/health, /actuator/prometheus, /actuator/info{served})."
    );
    let shutdown = async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                return;
            }
        }
    };
    Ok(tokio::spawn(svcid_actuator::http::serve(
        Arc::new(actuator),
        crate::connections::incoming(listener, gate).into_inner(),
        shutdown,
    )))
}
