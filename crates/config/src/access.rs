//! Who may see what on the HTTP port once people are configured, and how the console's login
//! reaches the identity provider: the product's ACL properties
//! (`ataccama.authentication.http.acl.*`), the admin console's role gate
//! (`ataccama.one.webserver.gql.allowed-roles`) and single sign-on endpoints
//! (`ataccama.one.webserver.sso.*`), plus svcid's session bounds (`svcid.console.*`).
//!
//! Bound whatever the configuration, so mistakes are reported early; in force only when a
//! user-token issuer is configured (without one the HTTP port is open as before).

use std::time::Duration;

use svcid_properties::uniform;

use crate::bind::{Binder, shown};
use crate::codes;
use crate::home::ModuleKind;
use crate::names::{self, acl};

/// The product's shipped ACL: `/actuator/prometheus` needs `ONE_PLATFORM_MONITORING`.
pub const DEFAULT_PROMETHEUS_ROLE: &str = "ONE_PLATFORM_MONITORING";
/// The product's admin console gate (`ataccama.one.webserver.gql.allowed-roles`).
pub const DEFAULT_CONSOLE_ROLES: &[&str] = &["admin", "DPP_admin"];
/// Default of `svcid.console.session.max-sessions`.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// Default of `svcid.console.session.max-age`: a working day.
pub const DEFAULT_SESSION_MAX_AGE: Duration = Duration::from_secs(8 * 60 * 60);

/// The HTTP port's rules for people and modules, and the console login's endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAccessSettings {
    /// Paths that need a role, by exact path (lowercase).
    pub acl: Vec<AclEndpoint>,
    /// Whether a path no rule names is served (`ataccama.authentication.http.acl.default-allow`,
    /// true); false answers `403`.
    pub default_allow: bool,
    /// Roles that may read the console (`ataccama.one.webserver.gql.allowed-roles`).
    pub console_roles: Vec<String>,
    /// The console login's client and endpoints.
    pub sso: SsoSettings,
    /// The console's address as browsers reach it (`svcid.console.public-url`), without a
    /// trailing `/`; `None`: taken from each request's `Host` over `http://`.
    pub public_url: Option<String>,
    /// Most login sessions held at once; the oldest ends first.
    pub max_sessions: usize,
    /// How long a session lasts at most, renewed or not.
    pub session_max_age: Duration,
}

/// One ACL entry: `ataccama.authentication.http.acl.endpoints.<name>.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclEndpoint {
    /// `<name>`.
    pub name: String,
    /// The path it guards (`endpoint-filter`), lowercase, exact.
    pub path: String,
    /// Roles any one of which lets a caller in (`allowed-roles`).
    pub roles: Vec<String>,
}

/// `ataccama.one.webserver.sso.*`: the identity provider's endpoints for the console login.
/// `None` endpoints are derived: Keycloak's from its server URL and realm, any other issuer's
/// from its OpenID Connect discovery document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoSettings {
    /// The public client the console logs in as (default `<module>-webapp-public-client`).
    pub client_id: String,
    /// The authorization endpoint.
    pub auth_url: Option<String>,
    /// The token endpoint.
    pub token_url: Option<String>,
    /// The end-session (logout) endpoint.
    pub logout_url: Option<String>,
}

/// Binds the HTTP access rules and the console login settings of a `kind` module.
pub(crate) fn bind(b: &mut Binder<'_>, kind: ModuleKind) -> HttpAccessSettings {
    let mut acl = vec![AclEndpoint {
        name: "prometheus".to_owned(),
        path: "/actuator/prometheus".to_owned(),
        roles: vec![DEFAULT_PROMETHEUS_ROLE.to_owned()],
    }];
    for name in b.props.map_keys(names::HTTP_ACL_ENDPOINTS) {
        if let Some(endpoint) = bind_acl_endpoint(b, &name) {
            acl.retain(|known| known.name != endpoint.name);
            acl.push(endpoint);
        }
    }
    let default_allow = b.bool(names::HTTP_ACL_DEFAULT_ALLOW, true);
    let console_roles = match b.string(names::CONSOLE_ALLOWED_ROLES) {
        Some((raw, _)) => comma_list(&raw),
        None => DEFAULT_CONSOLE_ROLES
            .iter()
            .map(|r| (*r).to_owned())
            .collect(),
    };
    let sso = SsoSettings {
        client_id: b.string_or(
            names::SSO_CLIENT_ID,
            &format!("{}-webapp-public-client", kind.as_str()),
        ),
        auth_url: url(b, names::SSO_AUTH_URL),
        token_url: url(b, names::SSO_TOKEN_URL),
        logout_url: url(b, names::SSO_LOGOUT_URL),
    };
    let public_url = url(b, names::CONSOLE_PUBLIC_URL).map(|u| u.trim_end_matches('/').to_owned());
    let max_sessions = b.parsed(
        names::CONSOLE_MAX_SESSIONS,
        DEFAULT_MAX_SESSIONS,
        codes::NOT_POSITIVE,
        "use a whole number of sessions from 1, e.g. 1000",
        |raw| match raw.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{} is not a positive whole number", shown(raw))),
        },
    );
    let session_max_age =
        b.positive_duration(names::CONSOLE_SESSION_MAX_AGE, DEFAULT_SESSION_MAX_AGE);
    HttpAccessSettings {
        acl,
        default_allow,
        console_roles,
        sso,
        public_url,
        max_sessions,
        session_max_age,
    }
}

/// One ACL entry; `None` (with an error recorded) when a field is missing.
fn bind_acl_endpoint(b: &mut Binder<'_>, name: &str) -> Option<AclEndpoint> {
    let prefix = format!("{}.{name}", names::HTTP_ACL_ENDPOINTS);
    for value in b.props.entries_under(&prefix) {
        let field = value.key.rsplit('.').next().unwrap_or_default();
        if !acl::FIELDS.iter().any(|f| uniform(f) == uniform(field)) {
            b.warn_at(
                codes::UNKNOWN_PROPERTY,
                value,
                "unknown property; svcid ignores it",
                format!(
                    "an ACL endpoint has `{}` and `{}`",
                    acl::ENDPOINT_FILTER,
                    acl::ALLOWED_ROLES
                ),
            );
        }
    }
    let filter = b.string(&format!("{prefix}.{}", acl::ENDPOINT_FILTER));
    let roles = b.string(&format!("{prefix}.{}", acl::ALLOWED_ROLES));
    match (filter, roles) {
        (Some((path, _)), Some((roles, _))) if !path.is_empty() => Some(AclEndpoint {
            name: name.to_owned(),
            path: path.to_ascii_lowercase(),
            roles: comma_list(&roles),
        }),
        (filter, roles) => {
            let missing = if filter.as_ref().is_none_or(|(p, _)| p.is_empty()) {
                acl::ENDPOINT_FILTER
            } else {
                acl::ALLOWED_ROLES
            };
            let at = filter.or(roles).map(|(_, v)| v);
            let message = format!("ACL endpoint {name} has no {missing}; both are required");
            let fix = format!("add {prefix}.{missing}, or remove the endpoint's lines");
            match at {
                Some(value) => b.error_at(codes::ACL_INCOMPLETE, value, message, fix),
                None => b.missing(codes::ACL_INCOMPLETE, &format!("{prefix}.{missing}"), fix),
            }
            None
        }
    }
}

/// An `http://` or `https://` URL property; anything else is an error and counts as unset.
fn url(b: &mut Binder<'_>, name: &str) -> Option<String> {
    let (raw, value) = b.string(name)?;
    if raw.is_empty() {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    if rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !raw.contains(char::is_whitespace)
    {
        return Some(raw);
    }
    b.error_at(
        codes::ACCESS_URL_INVALID,
        value,
        format!("{} is not an http:// or https:// URL", shown(&raw)),
        "write the whole URL, e.g. https://sso.example.com/realms/one/protocol/openid-connect/auth",
    );
    None
}

/// `a, b,,c` → `[a, b, c]`.
fn comma_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}
