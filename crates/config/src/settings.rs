//! The typed settings of one module, every property of docs/configuration.md with its default.
//! Built only by [`crate::load`], so a `Settings` value is always complete and valid.

use std::collections::BTreeMap;
use std::time::Duration;

use svcid_identity::deployments::Deployments;
use svcid_identity::jwk::GeneratorKey;
use svcid_identity::token::VerifyPolicy;
use svcid_logging::LogSettings;

use crate::constraints::Capability;
use crate::datasource::Datasource;
use crate::home::{ModuleHome, ModuleKind};
use crate::tls::{ClientTls, ServerTls};

/// Everything a daemon needs to start.
#[derive(Debug)]
pub struct Settings {
    /// Which daemon this is.
    pub kind: ModuleKind,
    /// Where it lives.
    pub home: ModuleHome,
    /// Where its gRPC server listens.
    pub grpc: GrpcSettings,
    /// Where its HTTP port (the actuator's health, metrics and info, and the console) listens.
    pub http: HttpSettings,
    /// How it mints and verifies service tokens.
    pub jwt: JwtSettings,
    /// The peers it trusts.
    pub deployments: Deployments,
    /// Where and how it logs.
    pub logging: LogSettings,
    /// Settings only one of the two daemons reads.
    pub role: RoleSettings,
    /// The issuers whose user tokens it accepts (none by default).
    pub users: crate::users::UserSettings,
    /// Who may see what on the HTTP port once people are configured, and the console login.
    pub access: crate::access::HttpAccessSettings,
}

/// `ataccama.server.grpc.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcSettings {
    /// Bind address (`0.0.0.0`).
    pub host: String,
    /// Listen port; 0 picks a free one.
    pub port: u16,
    /// What one peer may ask of the server.
    pub limits: GrpcLimits,
    /// TLS on the port (`ataccama.server.grpc.tls.*`); `None` serves plain text, the default.
    pub tls: Option<ServerTls>,
}

/// `server.port` / `server.address`: the HTTP port, as Spring Boot names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// Bind address (default: the gRPC host).
    pub address: String,
    /// Listen port (dpm 8031, dpe 8034); 0 picks a free one.
    pub port: u16,
    /// `server.max-connections` and friends; defaults in [`ConnectionBounds::http`].
    pub connections: ConnectionBounds,
    /// Whether the port also serves the operations console (`svcid.console.enabled`, true).
    pub console: bool,
}

/// Bounds on the connections of one listening port, so peers who never authenticate cannot
/// exhaust the daemon's file descriptors or memory. The gRPC port's come from
/// `ataccama.server.grpc.*` ([`ConnectionBounds::grpc`]), the HTTP port's from `server.*`
/// ([`ConnectionBounds::http`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionBounds {
    /// Connections held at once; one over it is closed at accept.
    pub max_connections: usize,
    /// Connections one peer address may hold at once.
    pub max_connections_per_peer: usize,
    /// A connection that starts no call (no request) within this is closed: a peer that only
    /// opens connections, or sends its first headers a byte at a time, holds nothing for long.
    pub first_call_timeout: Duration,
    /// A connection with no call in flight for this long is closed; clients reconnect
    /// transparently.
    pub max_connection_idle: Duration,
    /// A write that makes no progress for this long closes the connection (a peer that never
    /// reads its answers).
    pub write_timeout: Duration,
}

impl ConnectionBounds {
    /// The gRPC port's defaults: 1000 connections, 100 per peer, the first call within 10 s,
    /// 5 min idle, 30 s write stall.
    pub const fn grpc() -> Self {
        Self {
            max_connections: 1000,
            max_connections_per_peer: 100,
            first_call_timeout: Duration::from_secs(10),
            max_connection_idle: Duration::from_secs(5 * 60),
            write_timeout: Duration::from_secs(30),
        }
    }

    /// The HTTP port's defaults: 64 connections, 16 per peer, the first request within 10 s,
    /// 30 s idle (above Prometheus' usual 15 s scrape interval, so a scraper's keep-alive
    /// connection is reused), 30 s write stall.
    pub const fn http() -> Self {
        Self {
            max_connections: 64,
            max_connections_per_peer: 16,
            first_call_timeout: Duration::from_secs(10),
            max_connection_idle: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// The transport limits of the gRPC server (`ataccama.server.grpc.*`): what one peer, hostile or
/// broken, may ask of the daemon before it is refused. Defaults are in [`GrpcLimits::default`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcLimits {
    /// Largest message received or sent, in bytes; a larger request ends with
    /// `RESOURCE_EXHAUSTED` before it is decoded (4 MiB, gRPC's and tonic's default).
    pub max_message_size: usize,
    /// HTTP/2 streams (calls) in flight per connection, advertised to the peer and enforced;
    /// calls beyond wait for a free stream (100).
    pub max_concurrent_streams: u32,
    /// Largest HTTP/2 header list of one call, in bytes (16 KiB): room for an 8 KiB token and
    /// ordinary metadata; a larger one is refused by the transport.
    pub max_metadata_size: u32,
    /// Longest a call may run on the server (30s).
    pub request_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings; `None` disables them (60s).
    pub keep_alive_time: Option<Duration>,
    /// How long a ping may stay unanswered before the connection is closed (20s).
    pub keep_alive_timeout: Duration,
    /// `max-connections`, `max-connections-per-peer`, `first-call-timeout`,
    /// `max-connection-idle`, `write-timeout`: see [`ConnectionBounds::grpc`].
    pub connections: ConnectionBounds,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self {
            max_message_size: 4 * 1024 * 1024,
            max_concurrent_streams: 100,
            max_metadata_size: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            keep_alive_time: Some(Duration::from_secs(60)),
            keep_alive_timeout: Duration::from_secs(20),
            connections: ConnectionBounds::grpc(),
        }
    }
}

/// `ataccama.authentication.internal.jwt.*`.
#[derive(Debug)]
pub struct JwtSettings {
    /// This module's signing key.
    pub generator_key: GeneratorKey,
    /// Lifetime of minted tokens (15s).
    pub token_expiration: Duration,
    /// Role a peer needs to act for a user (`IMPERSONATION`).
    pub impersonation_role: String,
    /// Roles of which a person needs one to call `EngineAdminService`
    /// (`svcid.authorization.admin-roles`, `DPM_ADMIN`); empty: no person may.
    pub admin_roles: Vec<String>,
    /// Leeway on `exp`/`nbf`/`iat` (60s).
    pub clock_skew: Duration,
    /// Longest accepted `exp - iat` (4h).
    pub max_token_lifetime: Duration,
    /// Refuse tokens without `aud` (true).
    pub require_audience: bool,
}

/// The half of the settings that differs between the daemons.
#[derive(Clone, Debug, PartialEq)]
pub enum RoleSettings {
    /// DPM's registry settings.
    Dpm(DpmSettings),
    /// DPE's connection to DPM.
    Dpe(DpeSettings),
}

/// `ataccama.one.dpm.registry.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct DpmSettings {
    /// How often a READY engine is checked (1s).
    pub check_connected_interval: Duration,
    /// First retry delay for an unreachable engine (1s).
    pub check_disconnected_interval: Duration,
    /// Back-off factor (2).
    pub check_disconnected_multiplier: f64,
    /// Back-off ceiling (10m).
    pub check_disconnected_max: Duration,
    /// Deadline of one status check (2s).
    pub checker_timeout: Duration,
    /// TLS of the status checks to every engine (`ataccama.one.dpm.registry.grpc-client.tls.*`);
    /// `None` calls engines in plain text.
    pub engine_tls: Option<ClientTls>,
    /// The registry's PostgreSQL database (`spring.datasource.*`); `None` keeps the registry in
    /// memory (one DPM).
    pub datasource: Option<Datasource>,
}

/// DPE's view of DPM and what it advertises.
#[derive(Clone, Debug, PartialEq)]
pub struct DpeSettings {
    /// Where DPM is (`localhost`).
    pub dpm_host: String,
    /// DPM's gRPC port (8531).
    pub dpm_port: u16,
    /// Host advertised to DPM (this machine's hostname).
    pub advertised_hostname: String,
    /// Port advertised to DPM; `None` means the port the server actually bound.
    pub advertised_port: Option<u16>,
    /// Register / re-assert interval (5000 ms).
    pub check_connection_interval: Duration,
    /// Environments served (`ataccama.one.dpe.environment`, a comma list).
    pub environments: Vec<String>,
    /// Capabilities advertised to DPM, typed by the product's rule: `constraints.<key>=<value>`
    /// gives the capability `<key>` (dots included), e.g. `[long]4` a [`Capability::One`] of a
    /// long (see [`crate::parse_capability`]).
    pub constraints: BTreeMap<String, Capability>,
    /// TLS of the connection to DPM (`ataccama.client.connection.dpm.grpc.tls.*`); `None` is
    /// plain text.
    pub dpm_tls: Option<ClientTls>,
}

impl Settings {
    /// The verification rules peers' tokens are held to.
    pub fn verify_policy(&self) -> VerifyPolicy {
        VerifyPolicy {
            module: self.kind.as_str().to_owned(),
            clock_skew: self.jwt.clock_skew,
            max_token_lifetime: self.jwt.max_token_lifetime,
            require_audience: self.jwt.require_audience,
            impersonation_role: self.jwt.impersonation_role.clone(),
        }
    }

    /// DPM's settings, when this is DPM.
    pub fn dpm(&self) -> Option<&DpmSettings> {
        match &self.role {
            RoleSettings::Dpm(dpm) => Some(dpm),
            RoleSettings::Dpe(_) => None,
        }
    }

    /// DPE's settings, when this is DPE.
    pub fn dpe(&self) -> Option<&DpeSettings> {
        match &self.role {
            RoleSettings::Dpe(dpe) => Some(dpe),
            RoleSettings::Dpm(_) => None,
        }
    }
}
