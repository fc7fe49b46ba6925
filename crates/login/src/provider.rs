//! The identity provider as the console login talks to it: its endpoints, and the two token
//! requests (the authorization code exchange and the refresh).
//!
//! Endpoints: each `ataccama.one.webserver.sso.*` URL that is set wins; the rest are Keycloak's,
//! derived from the realm the module verifies tokens of (`<server-url>/realms/<realm>/protocol/
//! openid-connect/{auth,token,logout}`), or, for a MicroProfile JWT issuer, read once from its
//! OpenID Connect discovery document (`<issuer>/.well-known/openid-configuration`, whose
//! `issuer` must be the configured one).
//!
//! Every request is bounded: 5 s in all, 256 KiB of answer, no redirects followed, on the client
//! the module fetches keys with (its client trust settings for `https://`).

use std::fmt;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use svcid_config::{SsoSettings, UserKeySource, UserSettings};
use svcid_identity::user::IssuerRules;
use svcid_printable::excerpt;

/// The longest one request to the provider may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read from the provider.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Keycloak's key URL ends so; its other endpoints sit beside it.
const KEYCLOAK_CERTS: &str = "certs";

/// Where the login goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The authorization endpoint (the browser is sent there).
    pub auth: String,
    /// The token endpoint (the module posts to it).
    pub token: String,
    /// The end-session endpoint, if the provider has one.
    pub logout: Option<String>,
}

/// What the token endpoint answered. Its tokens are secrets: never logged or shown.
pub struct TokenAnswer {
    /// `access_token`.
    pub access: String,
    /// `id_token`, if any.
    pub id_token: Option<String>,
    /// `refresh_token`, if any.
    pub refresh: Option<String>,
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("id_token", &self.id_token.is_some())
            .field("refresh", &self.refresh.is_some())
            .finish_non_exhaustive()
    }
}

/// Why the provider gave nothing usable. Texts name the endpoint and what came back, never a
/// token or code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// No answer (connection, TLS, timeout).
    Unreachable(String),
    /// An OAuth error answer: `error` and its description.
    Refused {
        /// `error` (`invalid_grant`, …).
        error: String,
        /// `error_description`, shortened and escaped.
        description: String,
    },
    /// An answer that is not what the protocol says.
    Malformed(String),
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(why) | Self::Malformed(why) => f.write_str(why),
            Self::Refused { error, description } => write!(f, "{error}: {description}"),
        }
    }
}

/// The provider of the console login.
#[derive(Debug)]
pub struct Provider {
    /// The issuer whose tokens the login brings back.
    issuer: String,
    /// The public client the login runs as.
    client_id: String,
    /// Endpoints known without asking (Keycloak's, or all three set by properties).
    known: Option<Endpoints>,
    /// The properties' endpoints, over discovered ones.
    overrides: SsoSettings,
    /// Discovered endpoints, once read.
    discovered: tokio::sync::Mutex<Option<Endpoints>>,
    http: reqwest::Client,
}

impl Provider {
    /// The provider of the first configured issuer (Keycloak's first when there is one); `None`
    /// without any issuer.
    pub fn new(users: &UserSettings, sso: &SsoSettings, http: reqwest::Client) -> Option<Self> {
        let keycloak = users.issuers.iter().find(|i| {
            i.policy.rules == IssuerRules::Keycloak && matches!(i.keys, UserKeySource::Url(_))
        });
        let issuer = keycloak.or_else(|| users.issuers.first())?;
        let derived = match (&issuer.policy.rules, &issuer.keys) {
            (IssuerRules::Keycloak, UserKeySource::Url(certs)) => {
                certs.strip_suffix(KEYCLOAK_CERTS).map(|base| Endpoints {
                    auth: format!("{base}auth"),
                    token: format!("{base}token"),
                    logout: Some(format!("{base}logout")),
                })
            }
            _ => None,
        };
        let known = match (derived, &sso.auth_url, &sso.token_url) {
            (Some(derived), _, _) => Some(apply(&derived, sso)),
            (None, Some(auth), Some(token)) => Some(Endpoints {
                auth: auth.clone(),
                token: token.clone(),
                logout: sso.logout_url.clone(),
            }),
            _ => None,
        };
        Some(Provider {
            issuer: issuer.policy.issuer.clone(),
            client_id: sso.client_id.clone(),
            known,
            overrides: sso.clone(),
            discovered: tokio::sync::Mutex::new(None),
            http,
        })
    }

    /// The issuer the login's tokens come from.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The endpoints, reading the discovery document the first time it is needed.
    pub async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        if let Some(known) = &self.known {
            return Ok(known.clone());
        }
        let mut discovered = self.discovered.lock().await;
        if let Some(endpoints) = discovered.as_ref() {
            return Ok(endpoints.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let document = self.request(self.http.get(&url), &url).await?;
        let text = |name: &str| {
            document
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if text("issuer").as_deref() != Some(self.issuer.as_str()) {
            return Err(ProviderError::Malformed(format!(
                "{} names another issuer than {}",
                svcid_users::fetch::shown_url(&url),
                self.issuer
            )));
        }
        let (Some(auth), Some(token)) = (text("authorization_endpoint"), text("token_endpoint"))
        else {
            return Err(ProviderError::Malformed(format!(
                "{} has no authorization_endpoint or token_endpoint",
                svcid_users::fetch::shown_url(&url)
            )));
        };
        let endpoints = apply(
            &Endpoints {
                auth,
                token,
                logout: text("end_session_endpoint"),
            },
            &self.overrides,
        );
        *discovered = Some(endpoints.clone());
        Ok(endpoints)
    }

    /// Exchanges an authorization `code` for tokens, proving the login with the PKCE `verifier`.
    pub async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenAnswer, ProviderError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", &self.client_id),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// New tokens for a session's `refresh` token.
    pub async fn refresh(&self, refresh: &str) -> Result<TokenAnswer, ProviderError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &self.client_id),
        ])
        .await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenAnswer, ProviderError> {
        let url = self.endpoints().await?.token;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        let answer = self.request(request, &url).await?;
        let text = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
        let access = text("access_token").ok_or_else(|| {
            ProviderError::Malformed(format!(
                "{} answered without an access_token",
                svcid_users::fetch::shown_url(&url)
            ))
        })?;
        Ok(TokenAnswer {
            access,
            id_token: text("id_token"),
            refresh: text("refresh_token"),
        })
    }

    /// Sends `request` and reads its JSON answer, bounded; an OAuth error answer is
    /// [`ProviderError::Refused`].
    async fn request(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Value, ProviderError> {
        let shown = svcid_users::fetch::shown_url(url);
        let exchange = async {
            let mut response = request
                .header(ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| ProviderError::Unreachable(format!("{shown}: {e}")))?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| ProviderError::Unreachable(format!("{shown}: {e}")))?
            {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(ProviderError::Malformed(format!(
                        "{shown} answered more than {MAX_ANSWER_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                ProviderError::Unreachable(format!("{shown}: no answer within {REQUEST_TIMEOUT:?}"))
            })??;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if let Some(error) = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str)
        {
            let description = json
                .as_ref()
                .and_then(|j| j.get("error_description"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(ProviderError::Refused {
                error: excerpt(error, 64),
                description: excerpt(description, 200),
            });
        }
        match (status.is_success(), json) {
            (true, Some(json)) if json.is_object() => Ok(json),
            (true, _) => Err(ProviderError::Malformed(format!(
                "{shown} answered no JSON object"
            ))),
            (false, _) => Err(ProviderError::Malformed(format!(
                "{shown} answered HTTP {}",
                status.as_u16()
            ))),
        }
    }
}

/// `endpoints` with every endpoint the properties set put in its place.
fn apply(endpoints: &Endpoints, sso: &SsoSettings) -> Endpoints {
    Endpoints {
        auth: sso
            .auth_url
            .clone()
            .unwrap_or_else(|| endpoints.auth.clone()),
        token: sso
            .token_url
            .clone()
            .unwrap_or_else(|| endpoints.token.clone()),
        logout: sso.logout_url.clone().or_else(|| endpoints.logout.clone()),
    }
}
