//! The daemons' metrics, each family named and described once here (docs/operations.md's metric
//! table follows these names). The code that observes an event holds the instrument behind an `Arc`
//! and calls one method; [`crate::Actuator`] renders them when scraped.
//!
//! - [`AuthMetrics`]: the authentication layer's verdicts (both daemons).
//! - [`ReloadMetrics`]: live configuration reloads (both daemons); also the `configuration`
//!   health component.
//! - [`EngineMetrics`]: DPM's registrations, unregistrations and status checks.
//! - [`RegistrationState`]: DPE's registration with DPM; also the `registration` health component.
//! - [`UserKeyMetrics`]: fetches of user-token issuers' keys (both daemons, with users configured).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::health::Component;
use crate::metrics::{
    Counter, CounterVec, Exposition, Histogram, Kind, LATENCY_BOUNDS, OVERFLOW_LABEL,
};

/// `svcid_authentications_accepted_total{deployment}`.
pub const AUTH_ACCEPTED: &str = "svcid_authentications_accepted_total";
/// `svcid_authentications_refused_total{reason,deployment}`.
pub const AUTH_REFUSED: &str = "svcid_authentications_refused_total";
/// `svcid_access_denied_total{deployment}`.
pub const ACCESS_DENIED: &str = "svcid_access_denied_total";
/// `svcid_configuration_reloads_total{result}`.
pub const CONFIG_RELOADS: &str = "svcid_configuration_reloads_total";
/// `svcid_engine_registrations_total{result}` (DPM).
pub const ENGINE_REGISTRATIONS: &str = "svcid_engine_registrations_total";
/// `svcid_engine_unregistrations_total{result}` (DPM).
pub const ENGINE_UNREGISTRATIONS: &str = "svcid_engine_unregistrations_total";
/// `svcid_status_checks_total{result}` (DPM).
pub const STATUS_CHECKS: &str = "svcid_status_checks_total";
/// `svcid_status_check_duration_seconds` histogram (DPM).
pub const STATUS_CHECK_DURATION: &str = "svcid_status_check_duration_seconds";
/// `svcid_registered` gauge (DPE).
pub const REGISTERED: &str = "svcid_registered";
/// `svcid_registration_attempts_total{result}` (DPE).
pub const REGISTRATION_ATTEMPTS: &str = "svcid_registration_attempts_total";
/// `svcid_token_cache_hits_total`.
pub const TOKEN_CACHE_HITS: &str = "svcid_token_cache_hits_total";
/// `svcid_token_cache_misses_total`.
pub const TOKEN_CACHE_MISSES: &str = "svcid_token_cache_misses_total";
/// `svcid_tokens_minted_total`.
pub const TOKENS_MINTED: &str = "svcid_tokens_minted_total";
/// `svcid_registry_db_connections{state}` gauge (DPM on PostgreSQL): pool connections in use
/// and idle.
pub const REGISTRY_DB_CONNECTIONS: &str = "svcid_registry_db_connections";
/// `svcid_registry_db_queries_total{result}` (DPM on PostgreSQL).
pub const REGISTRY_DB_QUERIES: &str = "svcid_registry_db_queries_total";
/// `svcid_registry_db_query_duration_seconds` histogram (DPM on PostgreSQL).
pub const REGISTRY_DB_QUERY_DURATION: &str = "svcid_registry_db_query_duration_seconds";
/// `svcid_registry_lease_takeovers_total` (DPM on PostgreSQL): engines claimed from a replica
/// whose lease had expired.
pub const REGISTRY_LEASE_TAKEOVERS: &str = "svcid_registry_lease_takeovers_total";
/// `svcid_engines{status}` gauge (DPM).
pub const ENGINES: &str = "svcid_engines";
/// `svcid_user_key_fetches_total{issuer,result}`: fetches of an issuer's keys from its URL.
pub const USER_KEY_FETCHES: &str = "svcid_user_key_fetches_total";
/// `svcid_user_key_fetch_duration_seconds` histogram: one fetch of an issuer's keys.
pub const USER_KEY_FETCH_DURATION: &str = "svcid_user_key_fetch_duration_seconds";
/// `svcid_user_keys{issuer}` gauge: the keys each user-token issuer's tokens are verified with.
pub const USER_KEYS: &str = "svcid_user_keys";
/// `svcid_user_token_cache_total{result}`: people's tokens answered from the verified-user-token
/// cache (`hit`) or checked in full (`miss`).
pub const USER_TOKEN_CACHE: &str = "svcid_user_token_cache_total";
/// `svcid_console_logins_total`: console logins that started a session.
pub const CONSOLE_LOGINS: &str = "svcid_console_logins_total";
/// `svcid_console_login_failures_total{reason}`: console logins refused.
pub const CONSOLE_LOGIN_FAILURES: &str = "svcid_console_login_failures_total";
/// `svcid_console_session_renewals_total{result}`: sessions renewed with a refresh token.
pub const CONSOLE_SESSION_RENEWALS: &str = "svcid_console_session_renewals_total";
/// `svcid_console_sessions`: console login sessions live now.
pub const CONSOLE_SESSIONS: &str = "svcid_console_sessions";

/// The token counters a daemon's verifier and issuer keep (they live in `svcid-identity`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Calls whose token was found in the verified-token cache.
    pub cache_hits: u64,
    /// Calls whose token was checked in full.
    pub cache_misses: u64,
    /// Tokens this module signed.
    pub minted: u64,
}

/// Writes the verified-token cache and minting counters.
pub fn render_tokens(out: &mut Exposition, counts: TokenCounts) {
    out.single(
        TOKEN_CACHE_HITS,
        Kind::Counter,
        "Incoming tokens found in the verified-token cache (no signature check).",
        counts.cache_hits as f64,
    );
    out.single(
        TOKEN_CACHE_MISSES,
        Kind::Counter,
        "Incoming tokens checked in full (first use, expired cache entry, after a reload, or refused).",
        counts.cache_misses as f64,
    );
    out.single(
        TOKENS_MINTED,
        Kind::Counter,
        "Service tokens this module signed for its own outgoing calls (a reused token counts once).",
        counts.minted as f64,
    );
}

/// Writes `svcid_engines{status}`: how many engines DPM knows in each status (every status
/// appears, with 0 when none is in it, so alerts on a missing series are not needed).
pub fn render_engines(out: &mut Exposition, by_status: &[(&str, u64)]) {
    out.family(
        ENGINES,
        Kind::Gauge,
        "Engines registered with this DPM, by status (NEW, READY, DISCONNECTED).",
    );
    for (status, count) in by_status {
        out.sample(ENGINES, &[("status", status)], *count as f64);
    }
}

/// Most (reason, deployment, peer) rows [`AuthMetrics`] keeps for the console; refusals from
/// further peers are counted under the peer [`OVERFLOW_LABEL`], so a flood of distinct peers
/// cannot grow memory.
pub const MAX_REFUSAL_ROWS: usize = 256;
/// Overflow rows allowed beyond [`MAX_REFUSAL_ROWS`] (one per reason and deployment; both come
/// from a fixed set, so these are few); past them everything shares one `other` row.
const MAX_OVERFLOW_ROWS: usize = 64;

/// What the authentication layer decided, per peer.
#[derive(Debug)]
pub struct AuthMetrics {
    /// Verified calls by the caller's deployment.
    accepted: CounterVec,
    /// Refused calls by reason code and the deployment the token's `kid` names (`-`: none).
    refused: CounterVec,
    /// The same refusals by reason, deployment and peer address, with the last time: the
    /// console's table. Bounded by [`MAX_REFUSAL_ROWS`].
    refused_by_peer: Mutex<HashMap<(String, String, String), RefusalRow>>,
    /// Verified callers refused by the access policy (`PERMISSION_DENIED`), by deployment.
    denied: CounterVec,
}

/// Refusals of one reason, deployment and peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusalRow {
    /// The verifier's reason code.
    pub reason: String,
    /// The deployment the `kid` names, or `-`.
    pub deployment: String,
    /// The peer's IP address (no port), or [`OVERFLOW_LABEL`] once the table is full.
    pub peer: String,
    /// How many since start.
    pub count: u64,
    /// When the last one was.
    pub last: SystemTime,
}

impl Default for AuthMetrics {
    fn default() -> Self {
        Self {
            accepted: CounterVec::new(&["deployment"]),
            refused: CounterVec::new(&["reason", "deployment"]),
            refused_by_peer: Mutex::new(HashMap::new()),
            denied: CounterVec::new(&["deployment"]),
        }
    }
}

impl AuthMetrics {
    /// A verified call from `deployment`.
    pub fn accepted(&self, deployment: &str) {
        self.accepted.inc(deployment);
    }

    /// A refused call: the verifier's reason code, the `kid`'s deployment (or `-`) and the peer's
    /// address without its port (or `-`). Counted for Prometheus by reason and deployment, and
    /// for the console by all three with the time.
    pub fn refused(&self, reason: &str, deployment: &str, peer: &str) {
        self.refused.inc2(reason, deployment);
        let now = SystemTime::now();
        let mut table = self
            .refused_by_peer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut key = (reason.to_owned(), deployment.to_owned(), peer.to_owned());
        if !table.contains_key(&key) && table.len() >= MAX_REFUSAL_ROWS {
            key.2 = OVERFLOW_LABEL.to_owned();
            if !table.contains_key(&key) && table.len() >= MAX_REFUSAL_ROWS + MAX_OVERFLOW_ROWS {
                key = (
                    OVERFLOW_LABEL.to_owned(),
                    OVERFLOW_LABEL.to_owned(),
                    OVERFLOW_LABEL.to_owned(),
                );
            }
        }
        let entry = table.entry(key).or_insert_with_key(|key| RefusalRow {
            reason: key.0.clone(),
            deployment: key.1.clone(),
            peer: key.2.clone(),
            count: 0,
            last: now,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    /// Every refusal row, the most recent first.
    pub fn refusal_rows(&self) -> Vec<RefusalRow> {
        let mut rows: Vec<RefusalRow> = self
            .refused_by_peer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        rows.sort_by(|a, b| b.last.cmp(&a.last).then_with(|| b.count.cmp(&a.count)));
        rows
    }

    /// A verified caller the access policy turned away.
    pub fn denied(&self, deployment: &str) {
        self.denied.inc(deployment);
    }

    /// Accepted calls from `deployment` so far.
    pub fn accepted_count(&self, deployment: &str) -> u64 {
        self.accepted.get(deployment, "")
    }

    /// Refused calls for (`reason`, `deployment`) so far.
    pub fn refused_count(&self, reason: &str, deployment: &str) -> u64 {
        self.refused.get(reason, deployment)
    }

    /// Writes the three families.
    pub fn render(&self, out: &mut Exposition) {
        out.family(
            AUTH_ACCEPTED,
            Kind::Counter,
            "gRPC calls whose service token was verified, by the caller's deployment.",
        );
        self.accepted.render(out, AUTH_ACCEPTED);
        out.family(
            AUTH_REFUSED,
            Kind::Counter,
            "gRPC calls refused with UNAUTHENTICATED, by reason code and the deployment the token's kid names (- for none).",
        );
        self.refused.render(out, AUTH_REFUSED);
        out.family(
            ACCESS_DENIED,
            Kind::Counter,
            "Verified calls refused with PERMISSION_DENIED by the access policy, by the caller's deployment.",
        );
        self.denied.render(out, ACCESS_DENIED);
    }
}

/// `svcid_grpc_connections`: connections the gRPC port holds now.
pub const GRPC_CONNECTIONS: &str = "svcid_grpc_connections";
/// `svcid_grpc_connections_refused_total{limit}`: connections closed at accept.
pub const GRPC_CONNECTIONS_REFUSED: &str = "svcid_grpc_connections_refused_total";
/// `svcid_grpc_connections_closed_total{reason}`: connections the port closed for a bound.
pub const GRPC_CONNECTIONS_CLOSED: &str = "svcid_grpc_connections_closed_total";
/// `svcid_http_connections`: connections the HTTP port holds now.
pub const HTTP_CONNECTIONS: &str = "svcid_http_connections";
/// `svcid_http_connections_refused_total{limit}`: connections closed at accept.
pub const HTTP_CONNECTIONS_REFUSED: &str = "svcid_http_connections_refused_total";
/// `svcid_http_connections_closed_total{reason}`: connections the port closed for a bound.
pub const HTTP_CONNECTIONS_CLOSED: &str = "svcid_http_connections_closed_total";

/// Which listening port a [`ConnectionMetrics`] counts for: it names the families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Port {
    /// The gRPC port (`ataccama.server.grpc.port`), bounded by `ataccama.server.grpc.*`.
    #[default]
    Grpc,
    /// The HTTP port (`server.port`), bounded by `server.*`.
    Http,
}

impl Port {
    /// `grpc` or `http`, as logs name the port.
    pub fn as_str(self) -> &'static str {
        match self {
            Port::Grpc => "grpc",
            Port::Http => "http",
        }
    }

    /// The three families: held now, refused at accept, closed for a bound.
    fn families(self) -> [&'static str; 3] {
        match self {
            Port::Grpc => [
                GRPC_CONNECTIONS,
                GRPC_CONNECTIONS_REFUSED,
                GRPC_CONNECTIONS_CLOSED,
            ],
            Port::Http => [
                HTTP_CONNECTIONS,
                HTTP_CONNECTIONS_REFUSED,
                HTTP_CONNECTIONS_CLOSED,
            ],
        }
    }
}

/// Why a port closed a connection it had admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedBy {
    /// No call (no request) started within `first-call-timeout` (`server.connection-timeout`).
    NoCall,
    /// No call in flight for `max-connection-idle` (`server.idle-timeout`).
    Idle,
    /// A write made no progress for `write-timeout`: the peer does not read.
    WriteStalled,
}

impl ClosedBy {
    /// The `reason` label and log field.
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedBy::NoCall => "no_call",
            ClosedBy::Idle => "idle",
            ClosedBy::WriteStalled => "write_stalled",
        }
    }
}

/// The connection bounds of one port (`ataccama.server.grpc.max-connections`, `server.*` and
/// friends).
#[derive(Debug, Default)]
pub struct ConnectionMetrics {
    /// The port counted.
    port: Port,
    /// Connections held now.
    open: AtomicU64,
    /// Closed at accept: `max-connections` reached.
    refused_total: Counter,
    /// Closed at accept: the peer's `max-connections-per-peer` reached.
    refused_per_peer: Counter,
    /// Closed because no call started within `first-call-timeout`.
    closed_no_call: Counter,
    /// Closed after `max-connection-idle` without a call in flight.
    closed_idle: Counter,
    /// Closed because a write made no progress for `write-timeout`.
    closed_write_stalled: Counter,
}

impl ConnectionMetrics {
    /// Counts for `port`.
    pub fn new(port: Port) -> Self {
        Self {
            port,
            ..Self::default()
        }
    }

    /// The port counted.
    pub fn port(&self) -> Port {
        self.port
    }

    /// A connection was admitted.
    pub fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// An admitted connection ended (for any reason).
    pub fn ended(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection was refused at accept; `per_peer` tells which limit.
    pub fn refused(&self, per_peer: bool) {
        if per_peer {
            self.refused_per_peer.inc();
        } else {
            self.refused_total.inc();
        }
    }

    /// A connection was closed by a bound.
    pub fn closed(&self, by: ClosedBy) {
        match by {
            ClosedBy::NoCall => self.closed_no_call.inc(),
            ClosedBy::Idle => self.closed_idle.inc(),
            ClosedBy::WriteStalled => self.closed_write_stalled.inc(),
        }
    }

    /// Connections held now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Writes the three families.
    pub fn render(&self, out: &mut Exposition) {
        let [held, refused, closed] = self.port.families();
        let (port, names) = match self.port {
            Port::Grpc => (
                "gRPC",
                "no_call: none started within first-call-timeout; idle: none in flight for max-connection-idle; write_stalled: the peer read nothing for write-timeout",
            ),
            Port::Http => (
                "HTTP",
                "no_call: no request within connection-timeout; idle: none in flight for idle-timeout; write_stalled: the peer read nothing for write-timeout",
            ),
        };
        out.family(
            held,
            Kind::Gauge,
            &format!("Connections the {port} port holds now."),
        );
        out.sample(held, &[], self.open() as f64);
        out.family(
            refused,
            Kind::Counter,
            &format!(
                "Connections closed at accept by the {port} port, by the limit reached (total: max-connections; peer: max-connections-per-peer)."
            ),
        );
        out.sample(
            refused,
            &[("limit", "total")],
            self.refused_total.get() as f64,
        );
        out.sample(
            refused,
            &[("limit", "peer")],
            self.refused_per_peer.get() as f64,
        );
        out.family(
            closed,
            Kind::Counter,
            &format!("Connections the {port} port closed, by reason ({names})."),
        );
        for (by, counter) in [
            (ClosedBy::NoCall, &self.closed_no_call),
            (ClosedBy::Idle, &self.closed_idle),
            (ClosedBy::WriteStalled, &self.closed_write_stalled),
        ] {
            out.sample(closed, &[("reason", by.as_str())], counter.get() as f64);
        }
    }
}

/// The outcome of the last reload, for the health details.
const NEVER: u8 = 0;
const APPLIED: u8 = 1;
const FAILED: u8 = 2;

/// Live configuration reloads (`etc/application.properties` changed, or SIGHUP).
#[derive(Debug, Default)]
pub struct ReloadMetrics {
    /// Reloads that validated and were applied.
    applied: Counter,
    /// Reloads refused because the file did not validate (the previous configuration stays).
    failed: Counter,
    /// [`NEVER`], [`APPLIED`] or [`FAILED`]: the last outcome.
    last: AtomicU8,
    /// When the last reload ended, for the console.
    last_at: Mutex<Option<SystemTime>>,
}

impl ReloadMetrics {
    /// A reload was applied.
    pub fn applied(&self) {
        self.applied.inc();
        self.last.store(APPLIED, Ordering::Relaxed);
        self.stamp();
    }

    /// A reload failed validation.
    pub fn failed(&self) {
        self.failed.inc();
        self.last.store(FAILED, Ordering::Relaxed);
        self.stamp();
    }

    fn stamp(&self) {
        *self.last_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(SystemTime::now());
    }

    /// The last reload's result (`none`, `applied`, `failed`) and when it ended.
    pub fn last(&self) -> (&'static str, Option<SystemTime>) {
        let at = *self.last_at.lock().unwrap_or_else(PoisonError::into_inner);
        (self.last_name(), at)
    }

    /// Reloads applied and failed since start.
    pub fn counts(&self) -> (u64, u64) {
        (self.applied.get(), self.failed.get())
    }

    fn last_name(&self) -> &'static str {
        match self.last.load(Ordering::Relaxed) {
            NEVER => "none",
            APPLIED => "applied",
            _ => "failed",
        }
    }

    /// Writes `svcid_configuration_reloads_total`.
    pub fn render(&self, out: &mut Exposition) {
        out.family(
            CONFIG_RELOADS,
            Kind::Counter,
            "Live reloads of etc/application.properties, by result (failed: the file did not validate; the previous configuration stays in force).",
        );
        out.sample(
            CONFIG_RELOADS,
            &[("result", "applied")],
            self.applied.get() as f64,
        );
        out.sample(
            CONFIG_RELOADS,
            &[("result", "failed")],
            self.failed.get() as f64,
        );
    }

    /// The `configuration` health component: `UP` (the configuration in force validated at
    /// start or at its last successful reload; a failed reload changed nothing), with the counts
    /// and whether the file on disk is currently rejected.
    pub fn health(&self) -> Component {
        Component::up_if(true)
            .with("lastReload", self.last_name())
            .with("reloadsApplied", self.applied.get())
            .with("reloadsFailed", self.failed.get())
    }
}

/// DPM's view of engines: registrations and status checks.
#[derive(Debug)]
pub struct EngineMetrics {
    /// `RegisterEngine` calls by outcome: `new`, `already_registered`, `moved`.
    registrations: CounterVec,
    /// `UnregisterEngine` calls by outcome: `success`, `not_registered`.
    unregistrations: CounterVec,
    /// Status checks by outcome: `ok`, `failed`.
    checks: CounterVec,
    /// Status-check latency, successful or not.
    check_duration: Histogram,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            registrations: CounterVec::new(&["result"]),
            unregistrations: CounterVec::new(&["result"]),
            checks: CounterVec::new(&["result"]),
            check_duration: Histogram::new(LATENCY_BOUNDS),
        }
    }
}

impl EngineMetrics {
    /// A `RegisterEngine` call ended with `result` (`new`, `already_registered`, `moved`).
    pub fn registered(&self, result: &str) {
        self.registrations.inc(result);
    }

    /// An `UnregisterEngine` call ended with `result` (`success`, `not_registered`).
    pub fn unregistered(&self, result: &str) {
        self.unregistrations.inc(result);
    }

    /// A status check took `duration` and succeeded or not.
    pub fn checked(&self, duration: Duration, ok: bool) {
        self.check_duration.observe(duration);
        self.checks.inc(if ok { "ok" } else { "failed" });
    }

    /// Writes the families.
    pub fn render(&self, out: &mut Exposition) {
        out.family(
            ENGINE_REGISTRATIONS,
            Kind::Counter,
            "RegisterEngine calls served, by result (new, already_registered: the keep-alive, moved: a new address).",
        );
        self.registrations.render(out, ENGINE_REGISTRATIONS);
        out.family(
            ENGINE_UNREGISTRATIONS,
            Kind::Counter,
            "UnregisterEngine calls served, by result (success, not_registered).",
        );
        self.unregistrations.render(out, ENGINE_UNREGISTRATIONS);
        out.family(
            STATUS_CHECKS,
            Kind::Counter,
            "Status checks of engines (HeartbeatService.GetStatus), by result (ok, failed).",
        );
        self.checks.render(out, STATUS_CHECKS);
        self.check_duration.render(
            out,
            STATUS_CHECK_DURATION,
            "Duration of one engine status check, successful or not, in seconds.",
        );
    }
}

/// DPE's registration with DPM, as last observed by its registration loop.
#[derive(Debug)]
pub struct RegistrationState {
    /// `host:port` of DPM, for the health details.
    dpm_url: String,
    /// The last `RegisterEngine` call succeeded (`SUCCESS` or `ALREADY_REGISTERED`).
    registered: AtomicBool,
    /// Attempts by result: `success`, `already_registered`, `failed`.
    attempts: CounterVec,
    /// Since when `registered` has had its value, and the last failure's text.
    detail: Mutex<RegistrationDetail>,
}

/// The parts of [`RegistrationState`] that are not a single atomic.
#[derive(Debug)]
struct RegistrationDetail {
    /// When `registered` last changed (start-up until the first attempt).
    since: SystemTime,
    /// The gRPC code and message of the last failure, cleared by a success.
    last_error: Option<String>,
}

impl RegistrationState {
    /// Not registered yet, with DPM at `dpm_url`.
    pub fn new(dpm_url: impl Into<String>) -> Self {
        Self {
            dpm_url: dpm_url.into(),
            registered: AtomicBool::new(false),
            attempts: CounterVec::new(&["result"]),
            detail: Mutex::new(RegistrationDetail {
                since: SystemTime::now(),
                last_error: None,
            }),
        }
    }

    /// Whether the last registration call succeeded.
    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Relaxed)
    }

    /// DPM answered `SUCCESS` (`already` false) or `ALREADY_REGISTERED` (`already` true).
    pub fn succeeded(&self, already: bool) {
        self.attempts.inc(if already {
            "already_registered"
        } else {
            "success"
        });
        self.set(true, None);
    }

    /// The call failed (DPM down, token refused, DPM answered `ERROR`): `why` says how.
    pub fn failed(&self, why: String) {
        self.attempts.inc("failed");
        self.set(false, Some(why));
    }

    /// The engine unregistered (shutdown).
    pub fn unregistered(&self) {
        self.set(false, None);
    }

    fn set(&self, registered: bool, last_error: Option<String>) {
        let mut detail = self.detail.lock().unwrap_or_else(PoisonError::into_inner);
        if self.registered.swap(registered, Ordering::Relaxed) != registered {
            detail.since = SystemTime::now();
        }
        if registered || last_error.is_some() {
            detail.last_error = last_error;
        }
    }

    /// Writes `svcid_registered` and `svcid_registration_attempts_total`.
    pub fn render(&self, out: &mut Exposition) {
        out.single(
            REGISTERED,
            Kind::Gauge,
            "1 while the last RegisterEngine call to DPM succeeded, else 0.",
            if self.is_registered() { 1.0 } else { 0.0 },
        );
        out.family(
            REGISTRATION_ATTEMPTS,
            Kind::Counter,
            "RegisterEngine calls made to DPM, by result (success, already_registered, failed).",
        );
        self.attempts.render(out, REGISTRATION_ATTEMPTS);
    }

    /// The `registration` health component: `UP` while registered with DPM, else `DOWN`.
    pub fn health(&self) -> Component {
        let detail = self.detail.lock().unwrap_or_else(PoisonError::into_inner);
        let mut component = Component::up_if(self.is_registered())
            .with("dpmUrl", self.dpm_url.as_str())
            .with("since", crate::rfc3339(detail.since));
        if let Some(error) = &detail.last_error {
            component = component.with("lastError", error.as_str());
        }
        component
    }
}

/// Fetches of user-token issuers' keys from their URLs (`svcid-users` feeds it; the keys held are
/// a gauge computed when scraped).
#[derive(Debug)]
pub struct UserKeyMetrics {
    /// Fetches by issuer and result (`ok`, or why it failed).
    fetches: CounterVec,
    /// How long each fetch took, whatever its result.
    duration: Histogram,
    /// User tokens answered from the verified-user-token cache.
    cache_hits: Counter,
    /// User tokens checked in full (first use, expired entry, keys changed, or refused).
    cache_misses: Counter,
}

impl Default for UserKeyMetrics {
    fn default() -> Self {
        Self {
            fetches: CounterVec::new(&["issuer", "result"]),
            duration: Histogram::new(LATENCY_BOUNDS),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
        }
    }
}

impl UserKeyMetrics {
    /// One fetch of `issuer`'s keys ended with `result` after `took`.
    pub fn fetched(&self, issuer: &str, result: &str, took: Duration) {
        self.fetches.inc2(issuer, result);
        self.duration.observe(took);
    }

    /// Fetches of `issuer`'s keys that ended with `result` so far.
    pub fn fetches(&self, issuer: &str, result: &str) -> u64 {
        self.fetches.get(issuer, result)
    }

    /// One user token answered from the verified-user-token cache (`hit`) or checked in full.
    pub fn token_cache(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// User tokens answered from the cache and checked in full so far: `(hits, misses)`.
    pub fn token_cache_counts(&self) -> (u64, u64) {
        (self.cache_hits.get(), self.cache_misses.get())
    }

    /// Writes the four families; `keys` is each issuer with the number of keys its tokens are
    /// verified with now (0 before a first successful fetch).
    pub fn render(&self, out: &mut Exposition, keys: &[(&str, usize)]) {
        out.family(
            USER_KEYS,
            Kind::Gauge,
            "Keys each user-token issuer's tokens are verified with now (loaded at start or last fetched; 0: none yet).",
        );
        for (issuer, count) in keys {
            out.sample(USER_KEYS, &[("issuer", issuer)], *count as f64);
        }
        out.family(
            USER_KEY_FETCHES,
            Kind::Counter,
            "Fetches of a user-token issuer's keys from its URL, by issuer and result (ok, unreachable, timeout, status, redirect, too_large, invalid, client).",
        );
        self.fetches.render(out, USER_KEY_FETCHES);
        self.duration.render(
            out,
            USER_KEY_FETCH_DURATION,
            "Duration of one fetch of a user-token issuer's keys, successful or not.",
        );
        out.family(
            USER_TOKEN_CACHE,
            Kind::Counter,
            "People's tokens answered from the verified-user-token cache (hit) or checked in full (miss: first use, expired entry, issuer's keys changed, or refused).",
        );
        out.sample(
            USER_TOKEN_CACHE,
            &[("result", "hit")],
            self.cache_hits.get() as f64,
        );
        out.sample(
            USER_TOKEN_CACHE,
            &[("result", "miss")],
            self.cache_misses.get() as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    #[test]
    fn registration_state_follows_the_last_call() {
        let state = RegistrationState::new("localhost:8531");
        assert_eq!(state.health().status, Status::Down);
        state.failed("Unavailable: connection refused".into());
        let health = state.health();
        assert_eq!(health.status, Status::Down);
        assert_eq!(
            health.details["lastError"],
            "Unavailable: connection refused"
        );
        state.succeeded(false);
        state.succeeded(true);
        let health = state.health();
        assert_eq!(health.status, Status::Up);
        assert!(!health.details.contains_key("lastError"));
        let mut out = Exposition::new();
        state.render(&mut out);
        let text = out.into_text();
        assert!(text.contains("svcid_registered 1\n"), "{text}");
        assert!(
            text.contains("svcid_registration_attempts_total{result=\"failed\"} 1\n"),
            "{text}"
        );
        state.unregistered();
        assert_eq!(state.health().status, Status::Down);
    }

    #[test]
    fn refusals_by_peer_sum_to_the_prometheus_counts_and_stay_bounded() {
        let auth = AuthMetrics::default();
        auth.refused("revoked_key", "dpe-dev", "10.0.0.1");
        auth.refused("revoked_key", "dpe-dev", "10.0.0.1");
        auth.refused("revoked_key", "dpe-dev", "10.0.0.2");
        auth.refused("unknown_kid", "-", "10.0.0.1");
        let rows = auth.refusal_rows();
        assert_eq!(rows.len(), 3);
        let count = |reason: &str, peer: &str| {
            rows.iter()
                .find(|r| r.reason == reason && r.peer == peer)
                .map(|r| r.count)
        };
        assert_eq!(count("revoked_key", "10.0.0.1"), Some(2));
        assert_eq!(count("unknown_kid", "10.0.0.1"), Some(1));
        assert_eq!(auth.refused_count("revoked_key", "dpe-dev"), 3);

        // A flood of distinct peers: the table stops growing, no count is lost.
        for i in 0..5_000u32 {
            auth.refused(
                "bad_signature",
                "-",
                &format!("10.1.{}.{}", i / 256, i % 256),
            );
        }
        let rows = auth.refusal_rows();
        assert!(
            rows.len() <= MAX_REFUSAL_ROWS + MAX_OVERFLOW_ROWS,
            "{}",
            rows.len()
        );
        let flood: u64 = rows
            .iter()
            .filter(|r| r.reason == "bad_signature")
            .map(|r| r.count)
            .sum();
        assert_eq!(flood, 5_000);
        assert_eq!(flood, auth.refused_count("bad_signature", "-"));
        assert!(rows.iter().any(|r| r.peer == OVERFLOW_LABEL));
    }

    #[test]
    fn reloads_report_both_results() {
        let reloads = ReloadMetrics::default();
        assert_eq!(reloads.health().details["lastReload"], "none");
        assert_eq!(reloads.last(), ("none", None));
        reloads.applied();
        reloads.failed();
        assert_eq!(reloads.last().0, "failed");
        assert!(reloads.last().1.is_some());
        assert_eq!(reloads.counts(), (1, 1));
        let health = reloads.health();
        assert_eq!(health.status, Status::Up);
        assert_eq!(health.details["lastReload"], "failed");
        let mut out = Exposition::new();
        reloads.render(&mut out);
        let text = out.into_text();
        assert!(text.contains("{result=\"applied\"} 1\n"), "{text}");
        assert!(text.contains("{result=\"failed\"} 1\n"), "{text}");
    }
}
