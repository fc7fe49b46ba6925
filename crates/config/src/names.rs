//! Every property name svcid reads, defined once (see docs/configuration.md). Names are in
//! Spring's canonical dashed form; lookups are relaxed, so `isRevoked` and `is_revoked` find
//! `is-revoked` too.

/// Prefix of the gRPC server's properties (what a reload reports as needing a restart).
pub const GRPC: &str = "ataccama.server.grpc";
/// Prefix of the service-token properties.
pub const JWT: &str = "ataccama.authentication.internal.jwt";
/// Prefix of DPM's own properties.
pub const DPM: &str = "ataccama.one.dpm";
/// Prefix of DPM's registry properties.
pub const DPM_REGISTRY: &str = "ataccama.one.dpm.registry";
/// Prefix of DPM's PostgreSQL connection (Spring's `spring.datasource.*`).
pub const DATASOURCE: &str = "spring.datasource";
/// Prefix of a DPE's connection to DPM.
pub const DPM_CONNECTION: &str = "ataccama.client.connection.dpm";
/// Prefix of a DPE's own properties.
pub const DPE: &str = "ataccama.one.dpe";
/// Prefix of Spring's logging properties.
pub const LOGGING: &str = "logging";
/// Prefix of the HTTP port's properties (Spring Boot's `server.*`).
pub const SERVER: &str = "server";
/// Prefix of the product's appender switches.
pub const ATACCAMA_LOGGING: &str = "ataccama.logging";

/// gRPC listen port (dpm 8531, dpe 8532; 0 picks a free port).
pub const GRPC_PORT: &str = "ataccama.server.grpc.port";
/// gRPC bind address.
pub const GRPC_HOST: &str = "ataccama.server.grpc.host";
/// Largest gRPC message received or sent, a Spring data size (`4MB`; a bare number is bytes).
pub const GRPC_MAX_MESSAGE_SIZE: &str = "ataccama.server.grpc.max-message-size";
/// HTTP/2 streams (calls) one connection may have in flight.
pub const GRPC_MAX_CONCURRENT_STREAMS: &str = "ataccama.server.grpc.max-concurrent-streams";
/// Largest HTTP/2 header list (all metadata of one call), a data size; larger calls are refused
/// by the transport before any handler or token check runs.
pub const GRPC_MAX_METADATA_SIZE: &str = "ataccama.server.grpc.max-metadata-size";
/// Longest a call may run on the server before it ends with `CANCELLED`/`DEADLINE_EXCEEDED`.
pub const GRPC_REQUEST_TIMEOUT: &str = "ataccama.server.grpc.request-timeout";
/// Interval of HTTP/2 keep-alive pings on a connection; `0` disables them.
pub const GRPC_KEEP_ALIVE_TIME: &str = "ataccama.server.grpc.keep-alive-time";
/// How long a keep-alive ping may stay unanswered before the connection is closed.
pub const GRPC_KEEP_ALIVE_TIMEOUT: &str = "ataccama.server.grpc.keep-alive-timeout";
/// Connections the gRPC port holds at once; a new one over it is closed at accept.
pub const GRPC_MAX_CONNECTIONS: &str = "ataccama.server.grpc.max-connections";
/// Connections one peer address may hold at once on the gRPC port.
pub const GRPC_MAX_CONNECTIONS_PER_PEER: &str = "ataccama.server.grpc.max-connections-per-peer";
/// How long a new connection may go without starting a call before it is closed.
pub const GRPC_FIRST_CALL_TIMEOUT: &str = "ataccama.server.grpc.first-call-timeout";
/// How long a connection may stay without a call in flight before it is closed.
pub const GRPC_MAX_CONNECTION_IDLE: &str = "ataccama.server.grpc.max-connection-idle";
/// How long a write to a connection may make no progress (a peer that does not read its answers)
/// before the connection is closed.
pub const GRPC_WRITE_TIMEOUT: &str = "ataccama.server.grpc.write-timeout";
/// Prefix of the gRPC server's TLS: `<GRPC_TLS>.enabled`, `.cert-chain`, `.private-key`, `.mtls`
/// (`NONE`/`OPTIONAL`/`REQUIRED`), `.trust-store` (client CA). Files are PEM, relative to the home.
pub const GRPC_TLS: &str = "ataccama.server.grpc.tls";
/// This module's private JWK, base64.
pub const GENERATOR_KEY: &str = "ataccama.authentication.internal.jwt.generator.key";
/// Lifetime of minted tokens.
pub const TOKEN_EXPIRATION: &str =
    "ataccama.authentication.internal.jwt.generator.token-expiration";
/// Role a peer needs to act for a user.
pub const IMPERSONATION_ROLE: &str = "ataccama.authentication.internal.jwt.impersonation-role";
/// Leeway on `exp`/`nbf`/`iat`.
pub const CLOCK_SKEW: &str = "ataccama.authentication.internal.jwt.clock-skew";
/// Longest accepted `exp - iat`.
pub const MAX_TOKEN_LIFETIME: &str = "ataccama.authentication.internal.jwt.max-token-lifetime";
/// Whether tokens must carry `aud`.
pub const REQUIRE_AUDIENCE: &str = "ataccama.authentication.internal.jwt.require-audience";

/// Prefix of the Keycloak user-token properties (the product's names).
pub const KEYCLOAK: &str = "ataccama.authentication.keycloak";
/// Keycloak's base URL, e.g. `http://localhost:8029/auth`; unset: no Keycloak users.
pub const KEYCLOAK_SERVER_URL: &str = "ataccama.authentication.keycloak.server-url";
/// The Keycloak realm; required with the server URL.
pub const KEYCLOAK_REALM: &str = "ataccama.authentication.keycloak.realm";
/// `false` turns Keycloak users off.
pub const KEYCLOAK_TOKEN_ENABLE: &str = "ataccama.authentication.keycloak.token.enable";
/// The exact `iss` of the realm's tokens (default `<server-url>/realms/<realm>`).
pub const KEYCLOAK_TOKEN_ISSUER: &str = "ataccama.authentication.keycloak.token.issuer";
/// When set, a user token's `aud` must contain it.
pub const KEYCLOAK_TOKEN_AUDIENCE: &str = "ataccama.authentication.keycloak.token.audience";
/// How long the realm's fetched keys are used before a refetch.
pub const KEYCLOAK_KEY_CACHE_TTL: &str = "ataccama.authentication.keycloak.token.key-cache-ttl";
/// At most one key fetch per this period.
pub const KEYCLOAK_KEY_CACHE_MIN_TIME: &str =
    "ataccama.authentication.keycloak.token.key-cache-min-time-between-request";
/// The module's Keycloak client id: accepted, not used to verify Bearer tokens.
pub const KEYCLOAK_TOKEN_CLIENT_ID: &str = "ataccama.authentication.keycloak.token.client-id";
/// The module's Keycloak client secret: accepted, never used nor shown.
pub const KEYCLOAK_TOKEN_SECRET: &str = "ataccama.authentication.keycloak.token.secret";

/// MicroProfile JWT: the verification key as text (PEM, JWK, JWK set, or base64 of a JWK/set).
pub const MP_JWT_PUBLICKEY: &str = "mp.jwt.verify.publickey";
/// MicroProfile JWT: where the key is: a file relative to `etc/`, a `file:` URL or an
/// `http(s)://` URL.
pub const MP_JWT_PUBLICKEY_LOCATION: &str = "mp.jwt.verify.publickey.location";
/// MicroProfile JWT: the accepted algorithms, a comma list of `RS256`, `ES256` (default both).
pub const MP_JWT_PUBLICKEY_ALGORITHM: &str = "mp.jwt.verify.publickey.algorithm";
/// MicroProfile JWT: the exact `iss`; required with a key.
pub const MP_JWT_ISSUER: &str = "mp.jwt.verify.issuer";
/// MicroProfile JWT: a comma list; when set, `aud` must share one value with it.
pub const MP_JWT_AUDIENCES: &str = "mp.jwt.verify.audiences";
/// MicroProfile JWT: leeway on `exp` and `nbf`, in seconds (default 60).
pub const MP_JWT_CLOCK_SKEW: &str = "mp.jwt.verify.clock.skew";
/// MicroProfile JWT: the oldest `iat` accepted, in seconds ago.
pub const MP_JWT_TOKEN_AGE: &str = "mp.jwt.verify.token.age";
/// MicroProfile JWT: `Authorization` (default) or `Cookie` (HTTP port only).
pub const MP_JWT_TOKEN_HEADER: &str = "mp.jwt.token.header";
/// MicroProfile JWT: the cookie holding the token with `header=Cookie` (default `Bearer`).
pub const MP_JWT_TOKEN_COOKIE: &str = "mp.jwt.token.cookie";
/// Payara's vendor file in the home's `etc/`, read when present.
pub const PAYARA_MP_JWT_FILE: &str = "payara-mp-jwt.properties";
/// Keys of [`PAYARA_MP_JWT_FILE`].
pub mod payara {
    /// The exact `iss`; wins over `mp.jwt.verify.issuer`.
    pub const ACCEPTED_ISSUER: &str = "accepted.issuer";
    /// `true`: strip the namespace from claim names.
    pub const ENABLE_NAMESPACE: &str = "enable.namespace";
    /// The namespace to strip (default `https://payara.fish/mp-jwt/`).
    pub const CUSTOM_NAMESPACE: &str = "custom.namespace";
    /// `true`: accept a token without `typ`.
    pub const DISABLE_TYPE_VERIFICATION: &str = "disable.type.verification";
    /// Lifetime of fetched keys, in milliseconds (default 300000).
    pub const PUBLIC_KEY_CACHE_TTL: &str = "publicKey.cache.ttl";
}

/// Prefix of the trusted peers: `<DEPLOYMENTS>.<name>.…`.
pub const DEPLOYMENTS: &str = "ataccama.one.platform.deployments";
/// Fields of one deployment, relative to `<DEPLOYMENTS>.<name>`.
pub mod deployment {
    /// Peer module type (`dpm`, `dpe`, …).
    pub const MODULE: &str = "module";
    /// Informational environment name.
    pub const ENVIRONMENT: &str = "environment";
    /// Informational URI.
    pub const URI: &str = "uri";
    /// Roles granted to the peer (a list).
    pub const ROLES: &str = "security.roles";
    /// How tokens to and from the peer are shaped: `strict` (default) or `product` (docs/wire.md).
    pub const TOKEN_PROFILE: &str = "security.token-profile";
    /// Prefix of the peer's keys: `security.jwt-keys.<key>.…`.
    pub const JWT_KEYS: &str = "security.jwt-keys";
    /// The `kid` the peer signs with, relative to a key.
    pub const FINGERPRINT: &str = "fingerprint";
    /// The peer's public JWK, relative to a key.
    pub const CONTENT: &str = "content";
    /// Revocation flag, relative to a key.
    pub const IS_REVOKED: &str = "is-revoked";
}

/// Human-readable console log.
pub const PLAIN_CONSOLE: &str = "ataccama.logging.plainTextConsoleAppender";
/// JSON lines on stdout.
pub const JSON_CONSOLE: &str = "ataccama.logging.jsonConsoleAppender";
/// JSON lines to the log file.
pub const JSON_FILE: &str = "ataccama.logging.jsonFileAppender";
/// Plain text to the log file.
pub const PLAIN_FILE: &str = "ataccama.logging.plainTextFileAppender";
/// Log folder.
pub const LOG_PATH: &str = "logging.file.path";
/// Prefix of log levels: `logging.level.root`, `logging.level.<target>`.
pub const LOG_LEVEL: &str = "logging.level";
/// A log file that would grow past this data size rolls into `archived/` (`10MB`).
pub const LOG_MAX_FILE_SIZE: &str = "logging.logback.rollingpolicy.max-file-size";
/// Days of archived log files kept (`7`; `0` keeps them forever).
pub const LOG_MAX_HISTORY: &str = "logging.logback.rollingpolicy.max-history";
/// Total size of one log's archives beyond which the oldest are deleted (`0B`: no cap).
pub const LOG_TOTAL_SIZE_CAP: &str = "logging.logback.rollingpolicy.total-size-cap";

/// The HTTP port (`/actuator/health`, `/prometheus`, `/info`): dpm 8031, dpe 8034; 0 picks
/// a free port.
pub const SERVER_PORT: &str = "server.port";
/// The HTTP port's bind address (default: the gRPC host).
pub const SERVER_ADDRESS: &str = "server.address";
/// Connections the HTTP port holds at once; a new one over it is closed at accept.
pub const SERVER_MAX_CONNECTIONS: &str = "server.max-connections";
/// Connections one peer address may hold at once on the HTTP port.
pub const SERVER_MAX_CONNECTIONS_PER_PEER: &str = "server.max-connections-per-peer";
/// How long a new HTTP connection may take to deliver its first request's headers (Spring
/// Boot's `server.connection-timeout`).
pub const SERVER_CONNECTION_TIMEOUT: &str = "server.connection-timeout";
/// How long an HTTP connection may stay without a request in flight before it is closed.
pub const SERVER_IDLE_TIMEOUT: &str = "server.idle-timeout";
/// How long a write to an HTTP connection may make no progress before it is closed.
pub const SERVER_WRITE_TIMEOUT: &str = "server.write-timeout";
/// The operations console on the HTTP port (`/console`): `true` (default) or `false`.
pub const CONSOLE_ENABLED: &str = "svcid.console.enabled";
/// The console's address as browsers reach it (`https://ops.example.com:8031`): the login's
/// redirect URI is built on it, and `https://` makes the session cookie `Secure`.
pub const CONSOLE_PUBLIC_URL: &str = "svcid.console.public-url";
/// Most console login sessions held at once (default 1000).
pub const CONSOLE_MAX_SESSIONS: &str = "svcid.console.session.max-sessions";
/// How long a console login session lasts at most (default 8h).
pub const CONSOLE_SESSION_MAX_AGE: &str = "svcid.console.session.max-age";
/// Prefix of the HTTP port's ACL properties.
pub const HTTP_ACL: &str = "ataccama.authentication.http.acl";
/// Prefix of the HTTP port's ACL: `<HTTP_ACL_ENDPOINTS>.<name>.endpoint-filter` (a path) and
/// `.allowed-roles` (comma list), the product's names.
pub const HTTP_ACL_ENDPOINTS: &str = "ataccama.authentication.http.acl.endpoints";
/// Whether a path no ACL entry names is served to whoever may reach it (default true).
pub const HTTP_ACL_DEFAULT_ALLOW: &str = "ataccama.authentication.http.acl.default-allow";
/// Roles that may read the console (`/console/api`), the product's admin console gate (default
/// `admin,DPP_admin`).
pub const CONSOLE_ALLOWED_ROLES: &str = "ataccama.one.webserver.gql.allowed-roles";
/// The public OpenID Connect client the console logs in as.
pub const SSO_CLIENT_ID: &str = "ataccama.one.webserver.sso.client-id";
/// The identity provider's authorization endpoint (default: derived).
pub const SSO_AUTH_URL: &str = "ataccama.one.webserver.sso.auth-url";
/// The identity provider's token endpoint (default: derived).
pub const SSO_TOKEN_URL: &str = "ataccama.one.webserver.sso.token-url";
/// The identity provider's end-session endpoint (default: derived).
pub const SSO_LOGOUT_URL: &str = "ataccama.one.webserver.sso.logout-url";

/// The fields of one ACL entry under [`HTTP_ACL_ENDPOINTS`].
pub mod acl {
    /// The exact path the entry guards.
    pub const ENDPOINT_FILTER: &str = "endpoint-filter";
    /// The roles (comma list) that pass.
    pub const ALLOWED_ROLES: &str = "allowed-roles";
    /// Both.
    pub const FIELDS: &[&str] = &[ENDPOINT_FILTER, ALLOWED_ROLES];
}
/// The roles (comma list, default `DPM_ADMIN`) a person needs for `EngineAdminService`.
pub const ADMIN_ROLES: &str = "svcid.authorization.admin-roles";

/// DPE: where DPM is.
pub const DPM_HOST: &str = "ataccama.client.connection.dpm.host";
/// DPE: DPM's gRPC port.
pub const DPM_PORT: &str = "ataccama.client.connection.dpm.grpc.port";
/// DPE: prefix of the client TLS towards DPM: `<DPM_TLS>.enabled`, `.trust-store` (none: the
/// system's roots), `.trust-all`, `.cert-chain`, `.private-key` (client certificate for mTLS),
/// `.server-name`.
pub const DPM_TLS: &str = "ataccama.client.connection.dpm.grpc.tls";
/// DPE: host advertised to DPM.
pub const SERVICE_HOSTNAME: &str = "ataccama.one.dpe.service.hostname";
/// DPE: port advertised to DPM.
pub const SERVICE_PORT: &str = "ataccama.one.dpe.service.port";
/// DPE: register / re-assert interval (bare numbers are milliseconds).
pub const CHECK_CONNECTION_INTERVAL: &str =
    "ataccama.one.dpe.service.dpm.check-connection-interval";
/// DPE: environments served.
pub const DPE_ENVIRONMENT: &str = "ataccama.one.dpe.environment";
/// DPE: capabilities advertised to DPM, `constraints.<name>=<value>`.
pub const CONSTRAINTS: &str = "constraints";

/// DPM: how often a READY engine is checked.
pub const CHECK_CONNECTED_INTERVAL: &str = "ataccama.one.dpm.registry.check-connected-interval";
/// DPM: first retry delay for an unreachable engine.
pub const CHECK_DISCONNECTED_INTERVAL: &str =
    "ataccama.one.dpm.registry.check-disconnected-interval";
/// DPM: back-off factor.
pub const CHECK_DISCONNECTED_MULTIPLIER: &str =
    "ataccama.one.dpm.registry.check-disconnected-interval-multiplier";
/// DPM: back-off ceiling.
pub const CHECK_DISCONNECTED_MAX: &str =
    "ataccama.one.dpm.registry.check-disconnected-interval-max";
/// DPM: deadline of one status check.
pub const CHECKER_TIMEOUT: &str = "ataccama.one.dpm.registry.grpc-checker-timeout";

/// DPM: prefix of the client TLS towards every engine (status checks), fields as [`DPM_TLS`].
pub const ENGINE_TLS: &str = "ataccama.one.dpm.registry.grpc-client.tls";

/// DPM: the registry's PostgreSQL database (`jdbc:postgresql://host:port/db`); unset keeps the
/// registry in memory.
pub const DATASOURCE_URL: &str = "spring.datasource.url";
/// DPM: the database user.
pub const DATASOURCE_USERNAME: &str = "spring.datasource.username";
/// DPM: the database password (a secret: never logged or shown).
pub const DATASOURCE_PASSWORD: &str = "spring.datasource.password";

/// The fields of a TLS block, relative to its prefix ([`GRPC_TLS`], [`DPM_TLS`], [`ENGINE_TLS`]).
pub mod tls {
    /// `true` turns TLS on.
    pub const ENABLED: &str = "enabled";
    /// The certificate chain (PEM): the server's, or a client's for mTLS.
    pub const CERT_CHAIN: &str = "cert-chain";
    /// The private key of the chain (PEM).
    pub const PRIVATE_KEY: &str = "private-key";
    /// CA certificates (PEM): those of client certificates (server), or of the server's (client).
    pub const TRUST_STORE: &str = "trust-store";
    /// Server: whether client certificates are asked for (`NONE`, `OPTIONAL`, `REQUIRED`).
    pub const MTLS: &str = "mtls";
    /// Client: the name the server's certificate must carry.
    pub const SERVER_NAME: &str = "server-name";
    /// Client: `true` accepts any server certificate.
    pub const TRUST_ALL: &str = "trust-all";
}

/// Every field of [`tls`], for "unknown property" checks under [`TLS_PREFIXES`].
pub const TLS_FIELDS: &[&str] = &[
    tls::ENABLED,
    tls::CERT_CHAIN,
    tls::PRIVATE_KEY,
    tls::TRUST_STORE,
    tls::MTLS,
    tls::SERVER_NAME,
    tls::TRUST_ALL,
];

/// Every fixed property name, for "unknown property" checks. Map-valued prefixes are listed in
/// [`MAP_PREFIXES`].
pub const KNOWN: &[&str] = &[
    GRPC_PORT,
    GRPC_HOST,
    GRPC_MAX_MESSAGE_SIZE,
    GRPC_MAX_CONCURRENT_STREAMS,
    GRPC_MAX_METADATA_SIZE,
    GRPC_REQUEST_TIMEOUT,
    GRPC_KEEP_ALIVE_TIME,
    GRPC_KEEP_ALIVE_TIMEOUT,
    GRPC_MAX_CONNECTIONS,
    GRPC_MAX_CONNECTIONS_PER_PEER,
    GRPC_FIRST_CALL_TIMEOUT,
    GRPC_MAX_CONNECTION_IDLE,
    GRPC_WRITE_TIMEOUT,
    GENERATOR_KEY,
    TOKEN_EXPIRATION,
    IMPERSONATION_ROLE,
    CLOCK_SKEW,
    MAX_TOKEN_LIFETIME,
    REQUIRE_AUDIENCE,
    PLAIN_CONSOLE,
    JSON_CONSOLE,
    JSON_FILE,
    PLAIN_FILE,
    LOG_PATH,
    LOG_MAX_FILE_SIZE,
    LOG_MAX_HISTORY,
    LOG_TOTAL_SIZE_CAP,
    SERVER_PORT,
    SERVER_ADDRESS,
    SERVER_MAX_CONNECTIONS,
    SERVER_MAX_CONNECTIONS_PER_PEER,
    SERVER_CONNECTION_TIMEOUT,
    SERVER_IDLE_TIMEOUT,
    SERVER_WRITE_TIMEOUT,
    CONSOLE_ENABLED,
    CONSOLE_PUBLIC_URL,
    CONSOLE_MAX_SESSIONS,
    CONSOLE_SESSION_MAX_AGE,
    HTTP_ACL_DEFAULT_ALLOW,
    CONSOLE_ALLOWED_ROLES,
    SSO_CLIENT_ID,
    SSO_AUTH_URL,
    SSO_TOKEN_URL,
    SSO_LOGOUT_URL,
    ADMIN_ROLES,
    DPM_HOST,
    DPM_PORT,
    SERVICE_HOSTNAME,
    SERVICE_PORT,
    CHECK_CONNECTION_INTERVAL,
    DPE_ENVIRONMENT,
    CHECK_CONNECTED_INTERVAL,
    CHECK_DISCONNECTED_INTERVAL,
    CHECK_DISCONNECTED_MULTIPLIER,
    CHECK_DISCONNECTED_MAX,
    CHECKER_TIMEOUT,
    DATASOURCE_URL,
    DATASOURCE_USERNAME,
    DATASOURCE_PASSWORD,
    KEYCLOAK_SERVER_URL,
    KEYCLOAK_REALM,
    KEYCLOAK_TOKEN_ENABLE,
    KEYCLOAK_TOKEN_ISSUER,
    KEYCLOAK_TOKEN_AUDIENCE,
    KEYCLOAK_KEY_CACHE_TTL,
    KEYCLOAK_KEY_CACHE_MIN_TIME,
    KEYCLOAK_TOKEN_CLIENT_ID,
    KEYCLOAK_TOKEN_SECRET,
    MP_JWT_PUBLICKEY,
    MP_JWT_PUBLICKEY_LOCATION,
    MP_JWT_PUBLICKEY_ALGORITHM,
    MP_JWT_ISSUER,
    MP_JWT_AUDIENCES,
    MP_JWT_CLOCK_SKEW,
    MP_JWT_TOKEN_AGE,
    MP_JWT_TOKEN_HEADER,
    MP_JWT_TOKEN_COOKIE,
];

/// Prefixes under which names are free-form map keys, checked by their own binders.
pub const MAP_PREFIXES: &[&str] = &[DEPLOYMENTS, LOG_LEVEL, CONSTRAINTS, HTTP_ACL_ENDPOINTS];

/// The namespaces svcid owns: it knows every name under them, so a name there that is not in
/// [`KNOWN`], a [`TLS_PREFIXES`] block or under a [`MAP_PREFIXES`] entry is a mistake worth a
/// warning with the nearest known name. Names outside them (`spring.application.name`,
/// `management.*`, other products' settings sharing the file) are left alone. docs/configuration.md
/// ("Unknown properties") says the same for operators.
pub const OWNED_NAMESPACES: &[&str] = &["ataccama", SERVER, DATASOURCE, "svcid", "mp.jwt", LOGGING];

/// Prefixes of the TLS blocks, each followed by one of [`TLS_FIELDS`].
pub const TLS_PREFIXES: &[&str] = &[GRPC_TLS, DPM_TLS, ENGINE_TLS];
