//! Who may see what on a daemon's HTTP port once people are configured, and the console's login.
//!
//! Without a user-token issuer a daemon does not use this crate: its HTTP port answers anyone who
//! reaches it, as before. With one, [`HttpAccess`] stands in front of the routes (an actuator
//! [`Guard`]) and applies the [`rules`]:
//!
//! - the probes' paths (`/actuator`, `/actuator/health*`, `/actuator/info`) stay public, so load
//!   balancers and orchestrators keep working;
//! - an ACL entry (by default `/actuator/prometheus` → `ONE_PLATFORM_MONITORING`) needs a token
//!   holding one of its roles: a person's `Bearer` token or a module's `Internal-jwt` token;
//! - the console's JSON (`/console/api*`) needs a token or a login session with a console role;
//!   the console page sends a browser without a session to the identity provider ([`login`]);
//! - `401` (with RFC 6750's `WWW-Authenticate`) when no usable token came, `403` naming the
//!   roles needed when the caller has none of them.
//!
//! Rooms: [`rules`] (what each path needs), [`caller`] (who a token proves), [`login`] (the
//! OpenID Connect flow), [`flow`] (its random values and logins in flight), [`sessions`],
//! [`provider`] (the provider's endpoints and token requests), [`pages`] (the answers),
//! [`events`].

pub mod caller;
pub mod events;
pub mod flow;
pub mod login;
pub mod pages;
pub mod provider;
pub mod rules;
pub mod sessions;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use svcid_actuator::guard::{Admission, Admitting, Guard, Head};
use svcid_actuator::metrics::Exposition;
use svcid_config::{HttpAccessSettings, ServerTrust, UserSettings};
use svcid_identity::token::TokenVerifier;
use svcid_users::Users;

use crate::caller::{TokenCheck, Viewer};
use crate::login::{Login, SessionState};
use crate::provider::Provider;
use crate::rules::{Need, Rules};

/// The guard of one module's HTTP port with people configured.
#[derive(Debug)]
pub struct HttpAccess {
    rules: Rules,
    users: Arc<Users>,
    verifier: Arc<TokenVerifier>,
    login: Login,
    /// The realm named in `WWW-Authenticate`: the module type.
    realm: String,
}

impl HttpAccess {
    /// The guard of module `module` (`dpm`, `dpe`) whose HTTP port is `port`. The login talks to
    /// the provider trusting `trust` for `https://`, as key fetches do. `None` when no user-token
    /// issuer is configured; `Err` when the HTTP client cannot be built.
    pub fn new(
        module: &str,
        port: u16,
        settings: &HttpAccessSettings,
        people: &UserSettings,
        users: Arc<Users>,
        verifier: Arc<TokenVerifier>,
        trust: &ServerTrust,
    ) -> Result<Option<Self>, String> {
        let http = svcid_users::fetch::client(trust, svcid_users::FetchOptions::default())?;
        let Some(provider) = Provider::new(people, &settings.sso, http) else {
            return Ok(None);
        };
        Ok(Some(HttpAccess {
            rules: Rules::new(settings),
            login: Login::new(module, port, settings, provider, Arc::clone(&users)),
            users,
            verifier,
            realm: module.to_owned(),
        }))
    }

    /// Writes the login's metric families.
    pub fn render_metrics(&self, out: &mut Exposition) {
        self.login.render_metrics(out);
    }

    /// The decision on one request.
    async fn decide(&self, head: &Head) -> Admission {
        match self.rules.need(&head.path) {
            Need::Public => Admission::Pass { viewer: None },
            Need::Nobody => self.deny(head, pages::forbidden(&[])),
            Need::Login => Admission::Answer(self.login.start(head).await),
            Need::Callback => Admission::Answer(self.login.callback(head).await),
            Need::Logout => Admission::Answer(self.login.logout(head).await),
            Need::TokenRole(roles) => match self.token(head).await {
                Ok(viewer) => self.with_role(head, viewer, &roles, false),
                Err(answer) => self.deny(head, answer),
            },
            Need::ConsoleData => match self.token_or_session(head).await {
                Some(Ok(viewer)) => {
                    let roles = self.login.console_roles().to_vec();
                    self.with_role(head, viewer, &roles, false)
                }
                Some(Err(answer)) => self.deny(head, answer),
                None => self.deny(head, pages::unauthorized(&self.realm, None)),
            },
            Need::ConsolePage => match self.token_or_session(head).await {
                Some(Ok(viewer)) => {
                    let roles = self.login.console_roles().to_vec();
                    self.with_role(head, viewer, &roles, true)
                }
                Some(Err(answer)) => self.deny(head, answer),
                None => Admission::Answer(self.login.start(head).await),
            },
        }
    }

    /// The caller a token proves, or the `401` to answer.
    async fn token(&self, head: &Head) -> Result<Viewer, Response<Full<Bytes>>> {
        match caller::check(&head.headers, &self.users, &self.verifier).await {
            TokenCheck::Verified(viewer) => Ok(viewer),
            TokenCheck::Absent => Err(pages::unauthorized(&self.realm, None)),
            TokenCheck::Refused(reason) => Err(pages::unauthorized(&self.realm, Some(reason))),
        }
    }

    /// A token's caller when a token came, else the session's; `None` when neither.
    async fn token_or_session(&self, head: &Head) -> Option<Result<Viewer, Response<Full<Bytes>>>> {
        match caller::check(&head.headers, &self.users, &self.verifier).await {
            TokenCheck::Verified(viewer) => Some(Ok(viewer)),
            TokenCheck::Refused(reason) => {
                Some(Err(pages::unauthorized(&self.realm, Some(reason))))
            }
            TokenCheck::Absent => match self.login.session(&head.headers).await {
                SessionState::Live(viewer) => Some(Ok(viewer)),
                SessionState::None => None,
            },
        }
    }

    /// Passes `viewer` when it holds one of `roles`; else `403` (the console's page for a browser).
    fn with_role(&self, head: &Head, viewer: Viewer, roles: &[String], page: bool) -> Admission {
        if viewer.has_any(roles) {
            return Admission::Pass {
                viewer: Some(viewer.to_json()),
            };
        }
        let answer = if page {
            pages::forbidden_page(&viewer.name, roles)
        } else {
            pages::forbidden(roles)
        };
        self.deny(head, answer)
    }

    /// Answers `answer` (a `401` or `403`), logged at DEBUG.
    fn deny(&self, head: &Head, answer: Response<Full<Bytes>>) -> Admission {
        tracing::debug!(
            eventId = crate::events::HTTP_ACCESS_DENIED,
            path = %svcid_printable::excerpt(&head.path, 128),
            status = answer.status().as_u16(),
            "HTTP request denied."
        );
        debug_assert!(matches!(
            answer.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ));
        Admission::Answer(answer)
    }
}

impl Guard for HttpAccess {
    fn admit<'a>(&'a self, head: &'a Head) -> Admitting<'a> {
        Box::pin(self.decide(head))
    }
}
