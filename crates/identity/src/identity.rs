//! The identities a verified call carries into request handlers and log events.
//!
//! A [`ServiceIdentity`] is built only from the local deployment entry that matched the token's
//! `kid` (module, deployment name, roles), never from token claims. A [`CallerIdentity`] adds the
//! user the service acts for (`usr` claim, allowed only to peers holding the impersonation role) and
//! token facts for logs. Their `Display` forms are what logs print as `authenticatedUser`; a user
//! a service acts for prints as the product prints it,
//! `ImpersonatedUserIdentity(id=…, roles=[…], serviceIdentity=…)`, roles sorted.

use std::fmt;
use std::sync::Arc;

/// A verified peer service, printed exactly as the product prints it:
/// `ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceIdentity {
    /// The peer's module type from its deployment entry (`dpm`, `dpe`, …): what authorization checks.
    pub module: String,
    /// The deployment name (`dpe-dev`): which configured peer this is.
    pub id: String,
    /// Roles granted to the peer in local configuration (e.g. `IMPERSONATION`).
    pub roles: Vec<String>,
}

impl ServiceIdentity {
    /// Whether local configuration grants this peer `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }
}

impl fmt::Display for ServiceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServiceIdentity(module={}, id={}, roles=[{}])",
            self.module,
            self.id,
            self.roles.join(", ")
        )
    }
}

/// The user a service acts for, as carried in the token's `usr` claim.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ImpersonatedUser {
    /// The user's stable id.
    pub id: String,
    /// The user's login name, for logs.
    pub username: String,
    /// The user's roles as asserted by the (trusted, impersonation-capable) calling service.
    pub roles: Vec<String>,
}

/// Who called: the verified service, the user it acts for, and token facts for logs.
///
/// Built once per verified token and shared: the verifier's cache hands the same one to every
/// call presenting that token, so a clone is a reference count and its `Display` text — which
/// every call's log context carries as `authenticatedUser` — is rendered once, not per call.
#[derive(Clone, Debug)]
pub struct CallerIdentity(Arc<Parts>);

/// What the clones of one [`CallerIdentity`] share; each part is described at its accessor.
#[derive(Debug)]
struct Parts {
    service: ServiceIdentity,
    user: Option<ImpersonatedUser>,
    kid: String,
    jti: String,
    /// The `Display` text, rendered by [`CallerIdentity::new`].
    text: Box<str>,
}

impl CallerIdentity {
    /// `service`, acting for `user` when the token carried a permitted `usr` claim, proved by a
    /// token signed with `kid` (a configured fingerprint) and carrying `jti` (empty when absent).
    pub fn new(
        service: ServiceIdentity,
        user: Option<ImpersonatedUser>,
        kid: String,
        jti: String,
    ) -> Self {
        let text = match &user {
            None => service.to_string(),
            Some(user) => format!(
                "ImpersonatedUserIdentity(id={}, roles=[{}], serviceIdentity={service})",
                user.id,
                crate::user::roles_text(&user.roles),
            ),
        };
        Self(Arc::new(Parts {
            service,
            user,
            kid,
            jti,
            text: text.into_boxed_str(),
        }))
    }

    /// The authenticated peer service.
    pub fn service(&self) -> &ServiceIdentity {
        &self.0.service
    }

    /// The user the service acts for, when the token carried a permitted `usr` claim.
    pub fn user(&self) -> Option<&ImpersonatedUser> {
        self.0.user.as_ref()
    }

    /// The token's `kid` (a configured fingerprint), to tie log events to a key.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The token's `jti` (empty when absent), to correlate one token across logs.
    pub fn jti(&self) -> &str {
        &self.0.jti
    }
}

impl fmt::Display for CallerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.text)
    }
}

/// Who called, as the authentication layer hands it to authorization, handlers and logs: a
/// module (with its service token, perhaps acting for a user) or a person whose user token
/// verified. Prints as `authenticatedUser`: `ServiceIdentity(…)`,
/// `ImpersonatedUserIdentity(…)` or `SimpleUserIdentity(id=…, roles=[…])`.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A module, from its `Internal-jwt` (or `Bearer`) service token.
    Module(CallerIdentity),
    /// A person, from a verified user token.
    User(crate::user::UserIdentity),
}

impl Caller {
    /// The calling module; `None` for a person calling directly.
    pub fn service(&self) -> Option<&ServiceIdentity> {
        match self {
            Caller::Module(caller) => Some(caller.service()),
            Caller::User(_) => None,
        }
    }

    /// Whether a person is behind the call (directly, or a module acting for one).
    pub fn has_user(&self) -> bool {
        match self {
            Caller::Module(caller) => caller.user().is_some(),
            Caller::User(_) => true,
        }
    }

    /// The person behind the call, direct or acted for by a module, as a `usr` claim carries it;
    /// `None` for a module acting on its own. Its roles are the only roles a person holds.
    pub fn user(&self) -> Option<ImpersonatedUser> {
        match self {
            Caller::Module(caller) => caller.user().cloned(),
            Caller::User(user) => Some(user.to_impersonated()),
        }
    }

    /// The `kid` the module signed with; empty for a person.
    pub fn kid(&self) -> &str {
        match self {
            Caller::Module(caller) => caller.kid(),
            Caller::User(_) => "",
        }
    }

    /// The token's `jti` (empty when absent or for a person).
    pub fn jti(&self) -> &str {
        match self {
            Caller::Module(caller) => caller.jti(),
            Caller::User(_) => "",
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Module(caller) => caller.fmt(f),
            Caller::User(user) => user.fmt(f),
        }
    }
}

impl From<CallerIdentity> for Caller {
    fn from(caller: CallerIdentity) -> Self {
        Caller::Module(caller)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    fn service() -> ServiceIdentity {
        ServiceIdentity {
            module: "dpe".into(),
            id: "dpe-dev".into(),
            roles: vec!["IMPERSONATION".into()],
        }
    }

    #[test]
    fn service_identity_prints_like_the_product() {
        assert_eq!(
            service().to_string(),
            "ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])"
        );
        let two = ServiceIdentity {
            roles: vec!["A".into(), "B".into()],
            ..service()
        };
        assert_eq!(
            two.to_string(),
            "ServiceIdentity(module=dpe, id=dpe-dev, roles=[A, B])"
        );
        assert!(service().has_role("IMPERSONATION"));
        assert!(!service().has_role("impersonation"));
    }

    #[test]
    fn caller_identity_names_user_and_service() {
        let caller = CallerIdentity::new(service(), None, "k".into(), "j".into());
        assert_eq!(caller.to_string(), service().to_string());
        let user = ImpersonatedUser {
            id: "42".into(),
            username: "alice".into(),
            roles: vec!["USER".into(), "ADMIN".into()],
        };
        let caller = CallerIdentity::new(service(), Some(user), "k".into(), "j".into());
        assert_eq!(
            caller.to_string(),
            "ImpersonatedUserIdentity(id=42, roles=[ADMIN, USER], serviceIdentity=ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION]))"
        );
        let module = Caller::from(caller.clone());
        assert_eq!(module.to_string(), caller.to_string());
        assert_eq!(module.service(), Some(&service()));
        assert_eq!(module.user().map(|u| u.username), Some("alice".to_owned()));
        assert_eq!((module.kid(), module.jti()), ("k", "j"));
    }

    #[test]
    fn a_person_calling_directly_has_no_service() {
        let person = Caller::User(crate::user::UserIdentity {
            id: "f2a1".into(),
            username: "alice".into(),
            roles: vec!["USER".into(), "DPM_ADMIN".into()],
        });
        assert_eq!(
            person.to_string(),
            "SimpleUserIdentity(id=f2a1, roles=[DPM_ADMIN, USER])"
        );
        assert!(person.service().is_none());
        assert_eq!(person.user().map(|u| u.id), Some("f2a1".to_owned()));
        assert_eq!((person.kid(), person.jti()), ("", ""));
    }
}
