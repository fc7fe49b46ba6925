//! Authorization: which verified caller module may call which gRPC method.
//!
//! Deliberately separate from authentication (as rust-spiffe separates its authorizer): the token
//! verifier only answers "who is this", and each daemon states as data which peer modules may call
//! which of its methods. A rule names either a whole service by path prefix (`/pkg.Service/`, with
//! the trailing slash) or one exact method (`/pkg.Service/Method`). Anything no rule admits is denied,
//! including unknown methods. A denial becomes gRPC `PERMISSION_DENIED` in the daemon's glue.

use crate::identity::ServiceIdentity;
use crate::printable::{EXCERPT_CHARS, excerpt};

/// One permission: callers of `module` (or any peer) may call methods matching `method`.
#[derive(Clone, Debug)]
struct Rule {
    /// A service prefix ending in `/`, or an exact method path.
    method: String,
    /// The caller module admitted; `None` admits every authenticated peer.
    module: Option<String>,
}

impl Rule {
    fn covers(&self, method: &str) -> bool {
        if self.method.ends_with('/') {
            method.starts_with(&self.method)
        } else {
            method == self.method
        }
    }
}

/// The per-daemon table of which caller module may call which gRPC method.
#[derive(Clone, Debug, Default)]
pub struct AccessPolicy {
    /// Permissions in the order given; any matching rule admits.
    rules: Vec<Rule>,
}

impl AccessPolicy {
    /// A policy that denies everything until rules are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Admits callers whose module is `module` to methods matching `method_prefix`
    /// (`/pkg.Service/` for a whole service, `/pkg.Service/Method` for one method).
    pub fn allow(mut self, method_prefix: &str, module: &str) -> Self {
        self.rules.push(Rule {
            method: method_prefix.to_owned(),
            module: Some(module.to_owned()),
        });
        self
    }

    /// Admits every authenticated peer, whatever its module, to methods matching `method_prefix`.
    pub fn allow_any_peer(mut self, method_prefix: &str) -> Self {
        self.rules.push(Rule {
            method: method_prefix.to_owned(),
            module: None,
        });
        self
    }

    /// `Ok` when some rule admits `caller`'s module to `method`; unknown methods are denied.
    pub fn authorize(&self, method: &str, caller: &ServiceIdentity) -> Result<(), AccessDenied> {
        let admitted = self.rules.iter().any(|rule| {
            rule.covers(method)
                && rule
                    .module
                    .as_deref()
                    .is_none_or(|module| module == caller.module)
        });
        if admitted {
            Ok(())
        } else {
            Err(AccessDenied {
                method: excerpt(method, 2 * EXCERPT_CHARS),
                module: excerpt(&caller.module, EXCERPT_CHARS),
                deployment: excerpt(&caller.id, EXCERPT_CHARS),
            })
        }
    }
}

/// A verified caller asked for a method its module may not call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("module {module} (deployment {deployment}) may not call {method}")]
pub struct AccessDenied {
    /// The method requested (shortened, escaped: it comes from the request).
    method: String,
    /// The caller's module type from local configuration.
    module: String,
    /// The caller's deployment name, so operators know which peer to reconfigure.
    deployment: String,
}

impl AccessDenied {
    /// The method that was refused.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The caller's module type.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// The caller's deployment name.
    pub fn deployment(&self) -> &str {
        &self.deployment
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    fn caller(module: &str) -> ServiceIdentity {
        ServiceIdentity {
            module: module.into(),
            id: format!("{module}-dev"),
            roles: vec![],
        }
    }

    #[test]
    fn prefix_and_exact_rules() {
        let policy = AccessPolicy::new()
            .allow("/dpm.EngineRegistry/", "dpe")
            .allow("/dpe.Engine/Status", "dpm")
            .allow_any_peer("/grpc.health.v1.Health/");
        assert!(
            policy
                .authorize("/dpm.EngineRegistry/Register", &caller("dpe"))
                .is_ok()
        );
        assert!(
            policy
                .authorize("/dpe.Engine/Status", &caller("dpm"))
                .is_ok()
        );
        assert!(
            policy
                .authorize("/grpc.health.v1.Health/Check", &caller("other"))
                .is_ok()
        );
        // Exact rules do not act as prefixes.
        assert!(
            policy
                .authorize("/dpe.Engine/StatusX", &caller("dpm"))
                .is_err()
        );
        // Wrong module, unknown method, prefix without its slash.
        assert!(
            policy
                .authorize("/dpm.EngineRegistry/Register", &caller("dpm"))
                .is_err()
        );
        assert!(
            policy
                .authorize("/dpm.Unknown/Call", &caller("dpe"))
                .is_err()
        );
        assert!(
            policy
                .authorize("/dpm.EngineRegistryX/Register", &caller("dpe"))
                .is_err()
        );
        assert!(
            AccessPolicy::new()
                .authorize("/a/b", &caller("dpe"))
                .is_err()
        );
    }

    #[test]
    fn denial_names_method_and_module() {
        let denied = AccessPolicy::new()
            .authorize("/dpm.EngineRegistry/Register\n", &caller("dpe"))
            .unwrap_err();
        assert_eq!(denied.module(), "dpe");
        assert_eq!(denied.deployment(), "dpe-dev");
        assert_eq!(denied.method(), "/dpm.EngineRegistry/Register\\n");
        assert_eq!(
            denied.to_string(),
            "module dpe (deployment dpe-dev) may not call /dpm.EngineRegistry/Register\\n"
        );
    }
}
