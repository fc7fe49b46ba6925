//! The identity of a person whose user token verified, and how identities with users print.
//!
//! The text is the product's `authenticatedUser` form: `SimpleUserIdentity(id=…, roles=[…])` for a
//! user calling directly, `ImpersonatedUserIdentity(id=…, roles=[…], serviceIdentity=…)` for a user
//! a module acts for. The username is not printed (the product prints it only in full dumps); roles
//! are sorted so the same user always prints the same way.

use std::fmt;

use crate::identity::ImpersonatedUser;

/// A verified user: built only from a token whose signature, issuer and times checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserIdentity {
    /// The user's stable id (`sub`; for MicroProfile JWT the caller's name when there is no `sub`).
    pub id: String,
    /// The login name (`preferred_username` for Keycloak; `upn`, `preferred_username` or `sub` for
    /// MicroProfile JWT), for logs and for the `usr` claim of calls made on the user's behalf.
    pub username: String,
    /// The roles the issuer's rules read from the token, sorted, each once. Nothing else grants a
    /// user a role.
    pub roles: Vec<String>,
}

impl UserIdentity {
    /// Whether the token granted `role` (exact, case-sensitive match).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }

    /// The `usr` claim a module puts in its own token while acting for this user.
    pub fn to_impersonated(&self) -> ImpersonatedUser {
        ImpersonatedUser {
            id: self.id.clone(),
            username: self.username.clone(),
            roles: self.roles.clone(),
        }
    }
}

impl fmt::Display for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SimpleUserIdentity(id={}, roles=[{}])",
            self.id,
            roles_text(&self.roles)
        )
    }
}

/// Roles as identities print them: sorted, joined by `, `.
pub(crate) fn roles_text(roles: &[String]) -> String {
    let mut sorted: Vec<&str> = roles.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_user_prints_like_the_product_without_its_stray_parenthesis() {
        let user = UserIdentity {
            id: "f2a1".into(),
            username: "alice".into(),
            roles: vec!["USER".into(), "DPM_ADMIN".into(), "ADMIN".into()],
        };
        assert_eq!(
            user.to_string(),
            "SimpleUserIdentity(id=f2a1, roles=[ADMIN, DPM_ADMIN, USER])"
        );
        let nobody = UserIdentity {
            roles: vec![],
            ..user.clone()
        };
        assert_eq!(nobody.to_string(), "SimpleUserIdentity(id=f2a1, roles=[])");
        assert!(user.has_role("DPM_ADMIN"));
        assert!(!user.has_role("dpm_admin"));
        let usr = user.to_impersonated();
        assert_eq!((usr.id.as_str(), usr.username.as_str()), ("f2a1", "alice"));
        assert_eq!(usr.roles, user.roles);
    }
}
