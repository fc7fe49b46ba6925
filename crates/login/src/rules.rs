//! What each path of the HTTP port needs once people are configured.
//!
//! In this order: an ACL entry naming the exact path (lowercase) needs one of its roles from a
//! token; the probes' paths and the console's static files are public; the console's login paths
//! run the login; the console page needs a login session (or a token) with a console role, its
//! JSON a token or a session with one; any other path is served when `default-allow` is true
//! (the routes then answer, usually `404`) and refused with `403` otherwise.

use svcid_config::HttpAccessSettings;

/// The console page.
pub const CONSOLE: &str = "/console";
/// Where a login starts explicitly (the page also starts one when there is no session).
pub const LOGIN: &str = "/console/login";
/// Where the identity provider sends the browser back.
pub const CALLBACK: &str = "/console/login/callback";
/// Where a session ends.
pub const LOGOUT: &str = "/console/logout";
/// The console's JSON and its views below.
const API: &str = "/console/api";

/// Paths anyone may read: the probes' (as the product's public paths), the port's front door
/// and the console's static files (no data in them).
const PUBLIC: &[&str] = &[
    "",
    "/actuator",
    "/actuator/health",
    "/actuator/info",
    "/console/console.js",
    "/console/console.css",
];

/// What a request for one path needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing.
    Public,
    /// A token (not a session) with one of these roles: an ACL entry.
    TokenRole(Vec<String>),
    /// A token or a console session with one of the console's roles: `/console/api*`.
    ConsoleData,
    /// The console page: a session (else a login starts) or a token, with a console role.
    ConsolePage,
    /// Start a login.
    Login,
    /// The identity provider's answer to a login.
    Callback,
    /// End the session.
    Logout,
    /// Nobody may (`default-allow=false` and no rule names the path).
    Nobody,
}

/// The rules of one module's HTTP port.
#[derive(Debug, Clone)]
pub struct Rules {
    acl: Vec<(String, Vec<String>)>,
    default_allow: bool,
}

impl Rules {
    /// The rules `settings` give.
    pub fn new(settings: &HttpAccessSettings) -> Self {
        Rules {
            acl: settings
                .acl
                .iter()
                .map(|e| (e.path.clone(), e.roles.clone()))
                .collect(),
            default_allow: settings.default_allow,
        }
    }

    /// What `path` (as the routes match it: no query, no trailing `/`) needs.
    pub fn need(&self, path: &str) -> Need {
        let lower = path.to_ascii_lowercase();
        if let Some((_, roles)) = self.acl.iter().find(|(p, _)| route(p) == lower) {
            return Need::TokenRole(roles.clone());
        }
        if PUBLIC.contains(&path) || path.starts_with("/actuator/health/") {
            return Need::Public;
        }
        match path {
            CONSOLE => Need::ConsolePage,
            LOGIN => Need::Login,
            CALLBACK => Need::Callback,
            LOGOUT => Need::Logout,
            _ if path == API || path.starts_with("/console/api/") => Need::ConsoleData,
            _ if self.default_allow => Need::Public,
            _ => Need::Nobody,
        }
    }
}

/// An ACL path as the routes match it (one trailing `/` dropped).
fn route(path: &str) -> &str {
    svcid_actuator::guard::route_path(path)
}

#[cfg(test)]
mod tests {
    use svcid_config::{AclEndpoint, SsoSettings};

    use super::*;

    fn settings(default_allow: bool) -> HttpAccessSettings {
        HttpAccessSettings {
            acl: vec![AclEndpoint {
                name: "prometheus".into(),
                path: "/actuator/prometheus".into(),
                roles: vec!["ONE_PLATFORM_MONITORING".into()],
            }],
            default_allow,
            console_roles: vec!["admin".into()],
            sso: SsoSettings {
                client_id: "dpm-webapp-public-client".into(),
                auth_url: None,
                token_url: None,
                logout_url: None,
            },
            public_url: None,
            max_sessions: 10,
            session_max_age: std::time::Duration::from_secs(60),
        }
    }

    #[test]
    fn each_path_needs_what_the_docs_say() {
        let rules = Rules::new(&settings(true));
        let monitoring = Need::TokenRole(vec!["ONE_PLATFORM_MONITORING".into()]);
        assert_eq!(rules.need("/actuator/prometheus"), monitoring);
        assert_eq!(rules.need("/Actuator/Prometheus"), monitoring);
        for public in [
            "",
            "/actuator",
            "/actuator/health",
            "/actuator/health/grpc",
            "/actuator/info",
        ] {
            assert_eq!(rules.need(public), Need::Public, "{public}");
        }
        assert_eq!(rules.need("/console"), Need::ConsolePage);
        assert_eq!(rules.need("/console/api"), Need::ConsoleData);
        assert_eq!(rules.need("/console/api/engines"), Need::ConsoleData);
        assert_eq!(rules.need("/console/apix"), Need::Public);
        assert_eq!(rules.need("/console/login/callback"), Need::Callback);
        assert_eq!(rules.need("/console/logout"), Need::Logout);
        assert_eq!(rules.need("/elsewhere"), Need::Public);
        assert_eq!(
            Rules::new(&settings(false)).need("/elsewhere"),
            Need::Nobody
        );
        assert_eq!(
            Rules::new(&settings(false)).need("/console/apix"),
            Need::Nobody
        );
    }
}
