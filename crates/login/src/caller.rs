//! Who sent a request to the HTTP port, from its `Authorization` header: a person's token (a
//! `Bearer` token naming a configured issuer, verified with the issuer's keys) or a module's
//! token (`Internal-jwt`, or `Bearer` naming no configured issuer, verified against the trusted
//! deployments), exactly as the gRPC port tells them apart.

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use serde_json::{Value, json};
use svcid_identity::token::TokenVerifier;
use svcid_users::{PersonsToken, Users};

use crate::rules::LOGOUT;

/// Who is looking, and with which roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// A person's username, or a module's identity text.
    pub name: String,
    /// The roles that count for access: a person's own; a module's deployment roles, or the
    /// person's when it acts for one.
    pub roles: Vec<String>,
    /// Whether this is a console login session (which `/console/logout` can end).
    pub session: bool,
}

impl Viewer {
    /// Whether the viewer holds any of `roles`.
    pub fn has_any(&self, roles: &[String]) -> bool {
        self.roles.iter().any(|held| roles.contains(held))
    }

    /// What the console shows of the viewer.
    pub fn to_json(&self) -> Value {
        let mut viewer = json!({"name": self.name, "roles": self.roles});
        if self.session
            && let Some(fields) = viewer.as_object_mut()
        {
            fields.insert("logout".to_owned(), json!(LOGOUT));
        }
        viewer
    }
}

/// What the `Authorization` header proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// There was none.
    Absent,
    /// It was refused, with the verifier's reason code.
    Refused(&'static str),
    /// It proved who is calling.
    Verified(Viewer),
}

/// Checks the request's `Authorization` values.
pub async fn check(headers: &HeaderMap, users: &Users, verifier: &TokenVerifier) -> TokenCheck {
    let values: Vec<&[u8]> = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if values.is_empty() {
        return TokenCheck::Absent;
    }
    if let [value] = values.as_slice()
        && let Ok(value) = std::str::from_utf8(value)
        && let Some((_, token)) = users.person_in(value)
    {
        let user = match token {
            PersonsToken::Known(user) => Ok(user),
            PersonsToken::New(token) => users.authenticate(token).await,
        };
        return match user {
            Ok(user) => TokenCheck::Verified(Viewer {
                name: user.username,
                roles: user.roles,
                session: false,
            }),
            Err(error) => TokenCheck::Refused(error.reason()),
        };
    }
    match verifier.verify(&values) {
        Ok(caller) => {
            let roles = match caller.user() {
                Some(user) => user.roles.clone(),
                None => caller.service().roles.clone(),
            };
            TokenCheck::Verified(Viewer {
                name: caller.to_string(),
                roles,
                session: false,
            })
        }
        Err(error) => TokenCheck::Refused(error.reason()),
    }
}
