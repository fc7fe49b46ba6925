//! Typed settings of `dpm` and `dpe`, bound from a module home.
//!
//! [`load`] reads `etc/application.properties`, then environment variables, then `--name=value`
//! arguments (later wins), and binds every property of docs/configuration.md into [`Settings`]. It
//! never stops at the first problem: all of them come back at once, each naming the file, line,
//! property and fix, so an operator fixes a file in one pass. The property names live in [`names`],
//! defined once for the daemons, `svcid` and the docs; the stable code of each problem it reports
//! lives in [`codes`], for `svcid check` and the docs.

mod access;
mod bind;
pub mod codes;
mod constraints;
mod datasource;
mod deployments;
pub mod evidence;
mod home;
mod http;
mod limits;
mod load;
pub mod names;
mod rolling;
mod settings;
mod tls;
mod users;

pub use access::{
    AclEndpoint, DEFAULT_CONSOLE_ROLES, DEFAULT_MAX_SESSIONS, DEFAULT_PROMETHEUS_ROLE,
    DEFAULT_SESSION_MAX_AGE, HttpAccessSettings, SsoSettings,
};
pub use constraints::{
    Capability, CapabilityError, CapabilityType, CapabilityValue, parse_capability,
};
pub use datasource::{
    DEFAULT_POSTGRES_PORT, DatabasePassword, Datasource, DatasourceTls, RootCertificates,
    ServerCheck, SslMode,
};
pub use home::{ModuleHome, ModuleKind};
pub use http::{DPE_HTTP_PORT, DPM_HTTP_PORT, default_http_port};
pub use load::{Loaded, Overrides, bind, load, read_sources};
pub use settings::{
    ConnectionBounds, DpeSettings, DpmSettings, GrpcLimits, GrpcSettings, HttpSettings,
    JwtSettings, RoleSettings, Settings,
};
pub use svcid_properties::{Problem, ProblemCode, Severity};
pub use tls::{
    CertifiedKey, ClientAuth, ClientTls, EXPIRY_WARNING_DAYS, PrivateKeyPem, ServerTls,
    ServerTrust, dpm_client_tls_from_args,
};
pub use users::{
    DEFAULT_KEY_CACHE_TTL, DEFAULT_KEY_REFETCH_INTERVAL, DEFAULT_TOKEN_COOKIE, TokenCarrier,
    UserIssuerSettings, UserKeySource, UserSettings, bind_users,
};

#[cfg(test)]
mod tests;
