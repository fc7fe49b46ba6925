//! Authorization: which verified caller may call which gRPC method.
//!
//! Deliberately separate from authentication (as rust-spiffe separates its authorizer): the token
//! verifier only answers "who is this", and each daemon states as data which peer modules, and
//! which people, may call which of its methods. A rule names either a whole service by path prefix
//! (`/pkg.Service/`, with the trailing slash) or one exact method (`/pkg.Service/Method`). Anything
//! no rule admits is denied, including unknown methods. A denial becomes gRPC `PERMISSION_DENIED`
//! in the daemon's glue.
//!
//! A call with a person behind it (a verified user token, or a module acting for a user through
//! `usr`) is judged by the person's rules and roles only: module rules never admit it, and the
//! acting module's roles and deployment grant the person nothing. People's rules either admit any
//! person ([`AccessPolicy::allow_users`]) or only one holding an administrator role
//! ([`AccessPolicy::allow_admin_users`], roles from `svcid.authorization.admin-roles`).

use crate::identity::{Caller, ServiceIdentity};
use crate::printable::{EXCERPT_CHARS, excerpt};

/// The administrator roles when `svcid.authorization.admin-roles` is not set: the product's DPM
/// administrator role.
pub const DEFAULT_ADMIN_ROLES: &[&str] = &["DPM_ADMIN"];

/// Who a rule admits.
#[derive(Clone, Debug)]
enum Admits {
    /// Modules of this type; `None` admits every authenticated module.
    Module(Option<String>),
    /// People; with `admin` only those holding an administrator role.
    People {
        /// Whether an administrator role is required.
        admin: bool,
    },
}

/// One permission: callers `admits` may call methods matching `method`.
#[derive(Clone, Debug)]
struct Rule {
    /// A service prefix ending in `/`, or an exact method path.
    method: String,
    /// Who is admitted.
    admits: Admits,
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

/// The per-daemon table of which caller may call which gRPC method.
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    /// Permissions in the order given; any matching rule admits.
    rules: Vec<Rule>,
    /// The roles [`AccessPolicy::allow_admin_users`] rules ask of a person (any one of them).
    admin_roles: Vec<String>,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            admin_roles: DEFAULT_ADMIN_ROLES
                .iter()
                .map(|r| (*r).to_owned())
                .collect(),
        }
    }
}

impl AccessPolicy {
    /// A policy that denies everything until rules are added; administrators are people holding
    /// one of [`DEFAULT_ADMIN_ROLES`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Admits callers whose module is `module` to methods matching `method_prefix`
    /// (`/pkg.Service/` for a whole service, `/pkg.Service/Method` for one method).
    pub fn allow(mut self, method_prefix: &str, module: &str) -> Self {
        self.rules.push(Rule {
            method: method_prefix.to_owned(),
            admits: Admits::Module(Some(module.to_owned())),
        });
        self
    }

    /// Admits every authenticated peer module, whatever its type, to methods matching
    /// `method_prefix`. People are not admitted by this rule.
    pub fn allow_any_peer(mut self, method_prefix: &str) -> Self {
        self.rules.push(Rule {
            method: method_prefix.to_owned(),
            admits: Admits::Module(None),
        });
        self
    }

    /// Admits every verified person (direct or acted for by a module) to methods matching
    /// `method_prefix`.
    pub fn allow_users(mut self, method_prefix: &str) -> Self {
        self.rules.push(Rule {
            method: method_prefix.to_owned(),
            admits: Admits::People { admin: false },
        });
        self
    }

    /// Admits people holding one of the administrator roles to methods matching `method_prefix`.
    pub fn allow_admin_users(mut self, method_prefix: &str) -> Self {
        self.rules.push(Rule {
            method: method_prefix.to_owned(),
            admits: Admits::People { admin: true },
        });
        self
    }

    /// Replaces the administrator roles (`svcid.authorization.admin-roles`); an empty list makes
    /// no person an administrator.
    #[must_use]
    pub fn with_admin_roles(mut self, roles: Vec<String>) -> Self {
        self.admin_roles = roles;
        self
    }

    /// The administrator roles in force.
    pub fn admin_roles(&self) -> &[String] {
        &self.admin_roles
    }

    /// `Ok` when some rule admits `caller`'s module to `method`; unknown methods are denied. For a
    /// module acting on its own; [`AccessPolicy::authorize_caller`] judges any caller.
    pub fn authorize(&self, method: &str, caller: &ServiceIdentity) -> Result<(), AccessDenied> {
        let admitted = self.rules.iter().any(|rule| {
            rule.covers(method)
                && match &rule.admits {
                    Admits::Module(module) => module
                        .as_deref()
                        .is_none_or(|module| module == caller.module),
                    Admits::People { .. } => false,
                }
        });
        if admitted {
            Ok(())
        } else {
            Err(AccessDenied {
                method: excerpt(method, 2 * EXCERPT_CHARS),
                module: excerpt(&caller.module, EXCERPT_CHARS),
                deployment: excerpt(&caller.id, EXCERPT_CHARS),
                user: None,
            })
        }
    }

    /// `Ok` when some rule admits `caller` to `method`. A call with a person behind it is judged
    /// by the people's rules and the person's roles alone.
    pub fn authorize_caller(&self, method: &str, caller: &Caller) -> Result<(), AccessDenied> {
        match caller {
            Caller::Module(module) => match module.user() {
                None => self.authorize(method, module.service()),
                Some(user) => {
                    self.authorize_user(method, &user.id, &user.roles, Some(module.service()))
                }
            },
            Caller::User(user) => self.authorize_user(method, &user.id, &user.roles, None),
        }
    }

    fn authorize_user(
        &self,
        method: &str,
        id: &str,
        roles: &[String],
        service: Option<&ServiceIdentity>,
    ) -> Result<(), AccessDenied> {
        let is_admin = roles.iter().any(|role| self.admin_roles.contains(role));
        let admitted = self.rules.iter().any(|rule| {
            rule.covers(method)
                && match rule.admits {
                    Admits::Module(_) => false,
                    Admits::People { admin } => !admin || is_admin,
                }
        });
        if admitted {
            return Ok(());
        }
        let needs_admin = !is_admin
            && self.rules.iter().any(|rule| {
                rule.covers(method) && matches!(rule.admits, Admits::People { admin: true })
            });
        Err(AccessDenied {
            method: excerpt(method, 2 * EXCERPT_CHARS),
            module: service.map_or_else(|| "-".to_owned(), |s| excerpt(&s.module, EXCERPT_CHARS)),
            deployment: service.map_or_else(|| "-".to_owned(), |s| excerpt(&s.id, EXCERPT_CHARS)),
            user: Some(DeniedUser {
                id: excerpt(id, EXCERPT_CHARS),
                needs: needs_admin.then(|| excerpt(&self.admin_roles.join(", "), EXCERPT_CHARS)),
            }),
        })
    }
}

/// The person of a denied call.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DeniedUser {
    /// The user's id (escaped, short).
    id: String,
    /// The administrator roles the method needs and the user lacks, when that is why.
    needs: Option<String>,
}

/// A verified caller asked for a method it may not call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessDenied {
    /// The method requested (shortened, escaped: it comes from the request).
    method: String,
    /// The caller's module type from local configuration (`-` for a person calling directly).
    module: String,
    /// The caller's deployment name, so operators know which peer to reconfigure (or `-`).
    deployment: String,
    /// The person behind the call, when there is one.
    user: Option<DeniedUser>,
}

impl std::fmt::Display for AccessDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.user {
            None => write!(
                f,
                "module {} (deployment {}) may not call {}",
                self.module, self.deployment, self.method
            ),
            Some(user) => {
                write!(f, "user {} may not call {}", user.id, self.method)?;
                if let Some(needs) = &user.needs {
                    write!(f, " without one of the roles [{needs}]")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for AccessDenied {}

impl AccessDenied {
    /// The method that was refused.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The caller's module type (`-` for a person calling directly).
    pub fn module(&self) -> &str {
        &self.module
    }

    /// The caller's deployment name (`-` for a person calling directly).
    pub fn deployment(&self) -> &str {
        &self.deployment
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use crate::identity::ImpersonatedUser;

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

    fn person(roles: &[&str]) -> Caller {
        Caller::User(crate::user::UserIdentity {
            id: "f2a1".into(),
            username: "alice".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        })
    }

    fn acted_for(roles: &[&str]) -> Caller {
        Caller::Module(crate::identity::CallerIdentity::new(
            ServiceIdentity {
                module: "dpm".into(),
                id: "dpm-dev".into(),
                roles: vec!["IMPERSONATION".into(), "DPM_ADMIN".into()],
            },
            Some(ImpersonatedUser {
                id: "f2a1".into(),
                username: "alice".into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            }),
            "k".into(),
            String::new(),
        ))
    }

    fn daemon_like() -> AccessPolicy {
        AccessPolicy::new()
            .allow("/reg.Registry/", "dpe")
            .allow_any_peer("/id.Identity/")
            .allow_users("/id.Identity/")
            .allow_any_peer("/adm.Admin/")
            .allow_admin_users("/adm.Admin/")
    }

    #[test]
    fn people_call_what_people_rules_admit_by_their_own_roles() {
        let policy = daemon_like();
        for caller in [person(&[]), acted_for(&[])] {
            assert!(
                policy
                    .authorize_caller("/id.Identity/WhoAmI", &caller)
                    .is_ok()
            );
            // The acting module's own roles (DPM_ADMIN here) grant the person nothing.
            let denied = policy
                .authorize_caller("/adm.Admin/List", &caller)
                .unwrap_err();
            assert!(
                denied
                    .to_string()
                    .ends_with("without one of the roles [DPM_ADMIN]"),
                "{denied}"
            );
            // Never the product wire, whatever the roles.
            assert!(
                policy
                    .authorize_caller("/reg.Registry/Register", &caller)
                    .is_err()
            );
        }
        for caller in [person(&["DPM_ADMIN"]), acted_for(&["USER", "DPM_ADMIN"])] {
            assert!(policy.authorize_caller("/adm.Admin/List", &caller).is_ok());
            let denied = policy
                .authorize_caller("/reg.Registry/Register", &caller)
                .unwrap_err();
            assert_eq!(
                denied.to_string(),
                "user f2a1 may not call /reg.Registry/Register"
            );
        }
        // A module acting on its own keeps its module rules.
        let module = Caller::from(crate::identity::CallerIdentity::new(
            caller("dpe"),
            None,
            "k".into(),
            String::new(),
        ));
        assert!(
            policy
                .authorize_caller("/reg.Registry/Register", &module)
                .is_ok()
        );
        assert!(policy.authorize_caller("/adm.Admin/List", &module).is_ok());
    }

    #[test]
    fn admin_roles_are_configurable() {
        let policy = daemon_like().with_admin_roles(vec!["OPS".into(), "ROOT".into()]);
        assert!(
            policy
                .authorize_caller("/adm.Admin/List", &person(&["ROOT"]))
                .is_ok()
        );
        let denied = policy
            .authorize_caller("/adm.Admin/List", &person(&["DPM_ADMIN"]))
            .unwrap_err();
        assert!(denied.to_string().ends_with("[OPS, ROOT]"), "{denied}");
        let nobody = daemon_like().with_admin_roles(vec![]);
        assert!(
            nobody
                .authorize_caller("/adm.Admin/List", &person(&["DPM_ADMIN"]))
                .is_err()
        );
        assert_eq!(AccessPolicy::new().admin_roles(), ["DPM_ADMIN"]);
    }
}
