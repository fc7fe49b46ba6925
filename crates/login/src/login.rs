//! The console's OpenID Connect login: the authorization code flow with PKCE (S256), `state` and
//! `nonce`, run by the module itself so that no token ever reaches the browser.
//!
//! 1. `/console` without a session (or `/console/login`) sends the browser to the provider's
//!    authorization endpoint with a fresh `state`, `nonce` and PKCE challenge, and sets a short
//!    login cookie that binds the login to this browser ([`crate::flow`]).
//! 2. `/console/login/callback` takes the login of that `state` from that browser (once), exchanges
//!    the code at the token endpoint with the PKCE verifier, checks the ID token (`iss`, `aud`
//!    holding the client id, `nonce`, `exp`, and the same `sub` as the access token) and
//!    verifies the access token as any person's token is verified (signature by the issuer's
//!    keys, issuer, expiry, roles). The ID token is read as the token endpoint answered it, over
//!    the module's own connection to the provider (OpenID Connect Core 3.1.3.7); what grants
//!    access is the verified access token. A person without a console role gets the `403` page
//!    and no session.
//! 3. A session is a random id in an `HttpOnly`, `SameSite=Lax` cookie named for the module and
//!    its port (so DPM's and DPE's consoles on one host keep theirs apart), `Secure` and
//!    `__Host-`-prefixed when the console's public URL is `https://`. Its tokens stay here; the
//!    access token is renewed with the refresh token 30 s before it expires, and the session ends
//!    when that fails.
//! 4. `/console/logout` ends the session, clears the cookie and sends the browser to the
//!    provider's end-session endpoint (with `id_token_hint`), which ends the provider's session
//!    and returns to the console.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{COOKIE, HOST};
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::Value;
use svcid_actuator::guard::Head;
use svcid_actuator::instruments;
use svcid_actuator::metrics::{Exposition, Kind};
use svcid_config::HttpAccessSettings;
use svcid_identity::user::UserIdentity;
use svcid_printable::excerpt;
use svcid_users::Users;

use crate::caller::Viewer;
use crate::flow::{Pending, PendingLogins, Unmatched};
use crate::pages;
use crate::provider::{Provider, ProviderError, TokenAnswer};
use crate::rules::{CALLBACK, CONSOLE};
use crate::sessions::{Session, Sessions, Tokens};

/// An access token is renewed when it has less than this left.
pub const RENEW_MARGIN: Duration = Duration::from_secs(30);
/// How long the login cookie lives: as long as a login may take.
const LOGIN_COOKIE_SECONDS: u64 = crate::flow::LOGIN_TIMEOUT.as_secs();

/// What a request's session cookie gave.
#[derive(Debug)]
pub enum SessionState {
    /// No session cookie, or one naming no live session.
    None,
    /// A live session (renewed if it needed to be).
    Live(Viewer),
}

/// The console login of one module.
#[derive(Debug)]
pub struct Login {
    provider: Provider,
    users: std::sync::Arc<Users>,
    pending: PendingLogins,
    sessions: Sessions,
    console_roles: Vec<String>,
    public_url: Option<String>,
    /// The session cookie's name; the login cookie's is `<name>-login`.
    cookie: String,
    secure: bool,
    metrics: LoginMetrics,
}

impl Login {
    /// The login of module `module` whose HTTP port is `port`, for `settings`.
    pub fn new(
        module: &str,
        port: u16,
        settings: &HttpAccessSettings,
        provider: Provider,
        users: std::sync::Arc<Users>,
    ) -> Self {
        let secure = settings
            .public_url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"));
        let name = format!("svcid-{module}-{port}");
        Login {
            provider,
            users,
            pending: PendingLogins::default(),
            sessions: Sessions::new(settings.max_sessions, settings.session_max_age),
            console_roles: settings.console_roles.clone(),
            public_url: settings.public_url.clone(),
            cookie: if secure {
                format!("__Host-{name}")
            } else {
                name
            },
            secure,
            metrics: LoginMetrics::default(),
        }
    }

    /// The roles that may read the console.
    pub fn console_roles(&self) -> &[String] {
        &self.console_roles
    }

    /// Sends the browser to the provider to log in.
    pub async fn start(&self, head: &Head) -> Response<Full<Bytes>> {
        let Some(base) = self.base(&head.headers) else {
            return self.failed(
                StatusCode::BAD_REQUEST,
                "host",
                "the request's Host cannot form a redirect URI",
            );
        };
        let endpoints = match self.provider.endpoints().await {
            Ok(endpoints) => endpoints,
            Err(error) => {
                return self.failed(StatusCode::BAD_GATEWAY, "provider", &error.to_string());
            }
        };
        let (state, pending) = Pending::start(format!("{base}{CALLBACK}"));
        let Ok(mut url) = url::Url::parse(&endpoints.auth) else {
            return self.failed(
                StatusCode::BAD_GATEWAY,
                "endpoint",
                "the authorization endpoint is not a URL",
            );
        };
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.provider.client_id())
            .append_pair("redirect_uri", &pending.redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", &state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &crate::flow::challenge(&pending.verifier))
            .append_pair("code_challenge_method", "S256");
        let cookie = self.set_cookie(
            &self.login_cookie(),
            &pending.browser,
            Some(LOGIN_COOKIE_SECONDS),
        );
        self.pending.insert(state, pending);
        pages::redirect(url.as_str(), &[cookie])
    }

    /// Finishes a login: the provider's answer at `/console/login/callback`.
    pub async fn callback(&self, head: &Head) -> Response<Full<Bytes>> {
        let params: BTreeMap<String, String> = url::form_urlencoded::parse(head.query.as_bytes())
            .into_owned()
            .collect();
        let clear = self.set_cookie(&self.login_cookie(), "", Some(0));
        let finished = match self.finish(&params, &head.headers).await {
            Ok(response) => response,
            Err((status, reason, detail)) => self.failed(status, reason, &detail),
        };
        let mut finished = finished;
        pages::add_cookies(finished.headers_mut(), &[clear]);
        finished
    }

    /// The steps of [`Login::callback`]; `Err` names the reason code and what was wrong.
    async fn finish(
        &self,
        params: &BTreeMap<String, String>,
        headers: &HeaderMap,
    ) -> Result<Response<Full<Bytes>>, (StatusCode, &'static str, String)> {
        let bad = |reason: &'static str, detail: String| (StatusCode::BAD_REQUEST, reason, detail);
        if let Some(error) = params.get("error") {
            let description = params.get("error_description").map_or("", String::as_str);
            return Err(bad(
                "provider",
                format!("{}: {}", excerpt(error, 64), excerpt(description, 200)),
            ));
        }
        let state = params
            .get("state")
            .ok_or_else(|| bad("state", "the answer has no state".to_owned()))?;
        let pending = self
            .pending
            .take(state, cookie(headers, &self.login_cookie()).as_deref())
            .map_err(|unmatched| {
                bad(
                    "state",
                    match unmatched {
                        Unmatched::UnknownState => {
                            "no login went out with this state (forged, replayed or forgotten)"
                        }
                        Unmatched::Expired => "the login took longer than 10 minutes",
                        Unmatched::OtherBrowser => "the login was started by another browser",
                    }
                    .to_owned(),
                )
            })?;
        let code = params
            .get("code")
            .ok_or_else(|| bad("code", "the answer has no code".to_owned()))?;
        let tokens = self
            .provider
            .exchange(code, &pending.redirect_uri, &pending.verifier)
            .await
            .map_err(|error| match &error {
                ProviderError::Refused { description, .. } if mentions_pkce(description) => {
                    bad("pkce", error.to_string())
                }
                ProviderError::Refused { .. } => bad("code", error.to_string()),
                _ => (StatusCode::BAD_GATEWAY, "provider", error.to_string()),
            })?;
        let id_claims = self
            .check_id_token(&tokens, &pending.nonce)
            .map_err(|(reason, why)| bad(reason, why))?;
        let user = self
            .users
            .authenticate(&tokens.access)
            .await
            .map_err(|error| {
                bad(
                    "token",
                    format!("the access token was refused: {}", error.reason()),
                )
            })?;
        if id_claims.get("sub").and_then(Value::as_str) != Some(user.id.as_str()) {
            return Err(bad(
                "id_token",
                "the ID token is for another subject than the access token".to_owned(),
            ));
        }
        if !user.roles.iter().any(|r| self.console_roles.contains(r)) {
            self.metrics.failed("role");
            tracing::warn!(
                eventId = crate::events::CONSOLE_LOGIN_FAILED,
                reason = "role",
                user = %excerpt(&user.username, 80),
                roles = %user.roles.join(","),
                needed = %self.console_roles.join(","),
                "Console login refused: the person has none of the console's roles."
            );
            return Ok(pages::forbidden_page(&user.username, &self.console_roles));
        }
        let name = user.username.clone();
        let roles = user.roles.join(",");
        let id = self.sessions.start(Session {
            tokens: Tokens {
                access_exp: expiry(&tokens.access),
                access: tokens.access,
                refresh: tokens.refresh,
                id_token: tokens.id_token,
            },
            user,
        });
        self.metrics.logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            eventId = crate::events::CONSOLE_LOGIN,
            user = %excerpt(&name, 80),
            roles = %roles,
            sessions = self.sessions.len(),
            "Console login."
        );
        let session = self.set_cookie(&self.cookie, &id, None);
        Ok(pages::redirect(CONSOLE, &[session]))
    }

    /// The ID token's claims, once its issuer, audience, nonce and expiry are right.
    fn check_id_token(
        &self,
        tokens: &TokenAnswer,
        nonce: &str,
    ) -> Result<Value, (&'static str, String)> {
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or(("id_token", "the token endpoint gave no ID token".to_owned()))?;
        let claims =
            claims(id_token).ok_or(("id_token", "the ID token is not a JWT".to_owned()))?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.provider.issuer()) {
            return Err(("id_token", "the ID token is from another issuer".to_owned()));
        }
        let client = self.provider.client_id();
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == client,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client)),
            _ => false,
        };
        if !audience_ok {
            return Err((
                "id_token",
                format!("the ID token is not for client {client}"),
            ));
        }
        if claims
            .get("exp")
            .and_then(Value::as_u64)
            .is_none_or(|exp| exp <= now())
        {
            return Err(("id_token", "the ID token has expired".to_owned()));
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err((
                "nonce",
                "the ID token's nonce is not the login's".to_owned(),
            ));
        }
        Ok(claims)
    }

    /// The request's live session, renewed when its access token is about to expire.
    pub async fn session(&self, headers: &HeaderMap) -> SessionState {
        let Some(id) = cookie(headers, &self.cookie) else {
            return SessionState::None;
        };
        let Some(shared) = self.sessions.get(&id) else {
            return SessionState::None;
        };
        let mut session = shared.lock().await;
        if session.tokens.access_exp <= now() + RENEW_MARGIN.as_secs()
            && let Err(why) = self.renew(&mut session).await
        {
            drop(session);
            self.sessions.end(&id);
            self.metrics.renewals_failed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                eventId = crate::events::CONSOLE_SESSION_RENEWED,
                result = "failed",
                reason = %why,
                "Console session ended: its tokens could not be renewed."
            );
            return SessionState::None;
        }
        SessionState::Live(Viewer {
            name: session.user.username.clone(),
            roles: session.user.roles.clone(),
            session: true,
        })
    }

    /// New tokens for `session` from its refresh token.
    async fn renew(&self, session: &mut Session) -> Result<(), String> {
        let refresh = session
            .tokens
            .refresh
            .clone()
            .ok_or("the provider gave no refresh token")?;
        let tokens = self
            .provider
            .refresh(&refresh)
            .await
            .map_err(|e| e.to_string())?;
        let user: UserIdentity = self
            .users
            .authenticate(&tokens.access)
            .await
            .map_err(|e| format!("the renewed access token was refused: {}", e.reason()))?;
        if user.id != session.user.id {
            return Err("the renewed access token is for another person".to_owned());
        }
        session.tokens.access_exp = expiry(&tokens.access);
        session.tokens.access = tokens.access;
        if let Some(refresh) = tokens.refresh {
            session.tokens.refresh = Some(refresh);
        }
        if let Some(id_token) = tokens.id_token {
            session.tokens.id_token = Some(id_token);
        }
        session.user = user;
        self.metrics.renewals.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            eventId = crate::events::CONSOLE_SESSION_RENEWED,
            result = "renewed",
            user = %excerpt(&session.user.username, 80),
            "Console session renewed."
        );
        Ok(())
    }

    /// Ends the request's session and sends the browser to the provider's logout.
    pub async fn logout(&self, head: &Head) -> Response<Full<Bytes>> {
        let ended = match cookie(&head.headers, &self.cookie) {
            Some(id) => self.sessions.end(&id),
            None => None,
        };
        let (user, id_token) = match &ended {
            Some(shared) => {
                let session = shared.lock().await;
                (
                    Some(session.user.username.clone()),
                    session.tokens.id_token.clone(),
                )
            }
            None => (None, None),
        };
        tracing::info!(
            eventId = crate::events::CONSOLE_LOGOUT,
            user = %user.as_deref().map_or_else(|| "-".to_owned(), |u| excerpt(u, 80)),
            sessions = self.sessions.len(),
            "Console logout."
        );
        let clear = self.set_cookie(&self.cookie, "", Some(0));
        let back = self
            .base(&head.headers)
            .map(|base| format!("{base}{CONSOLE}"));
        let provider_logout = match (self.provider.endpoints().await, &back) {
            (Ok(endpoints), Some(back)) => endpoints.logout.and_then(|logout| {
                let mut url = url::Url::parse(&logout).ok()?;
                {
                    let mut query = url.query_pairs_mut();
                    query
                        .append_pair("client_id", self.provider.client_id())
                        .append_pair("post_logout_redirect_uri", back);
                    if let Some(hint) = &id_token {
                        query.append_pair("id_token_hint", hint);
                    }
                }
                Some(url.to_string())
            }),
            _ => None,
        };
        pages::redirect(provider_logout.as_deref().unwrap_or(CONSOLE), &[clear])
    }

    /// Writes the login's metric families.
    pub fn render_metrics(&self, out: &mut Exposition) {
        self.metrics.render(out, self.sessions.len());
    }

    /// Logs `consoleLoginFailed` and answers the failure page.
    fn failed(
        &self,
        status: StatusCode,
        reason: &'static str,
        detail: &str,
    ) -> Response<Full<Bytes>> {
        self.metrics.failed(reason);
        tracing::warn!(
            eventId = crate::events::CONSOLE_LOGIN_FAILED,
            reason,
            detail = %excerpt(detail, 300),
            issuer = %self.provider.issuer(),
            "Console login failed."
        );
        pages::login_failed_page(status, reason)
    }

    /// Where browsers reach this console: the configured public URL, else `http://<Host>`.
    fn base(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(url) = &self.public_url {
            return Some(url.clone());
        }
        let host = headers.get(HOST)?.to_str().ok()?;
        let sane = !host.is_empty()
            && host.len() <= 255
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        sane.then(|| format!("http://{host}"))
    }

    fn login_cookie(&self) -> String {
        format!("{}-login", self.cookie)
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` under https;
    /// `max_age` `Some(0)` deletes it, `None` makes it last the browser's session.
    fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if let Some(seconds) = max_age {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        cookie
    }
}

/// Whether a token endpoint's refusal is about the PKCE verifier.
fn mentions_pkce(description: &str) -> bool {
    let lower = description.to_ascii_lowercase();
    lower.contains("pkce") || lower.contains("code_verifier") || lower.contains("code verifier")
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The claims of a JWT, read without checking anything.
fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

/// When an access token (already verified) expires, Unix seconds; now when it says nothing.
fn expiry(token: &str) -> u64 {
    claims(token)
        .and_then(|c| c.get("exp").and_then(Value::as_u64))
        .unwrap_or_else(now)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The login's counters.
#[derive(Debug, Default)]
struct LoginMetrics {
    logins: AtomicU64,
    failures: Mutex<BTreeMap<&'static str, u64>>,
    renewals: AtomicU64,
    renewals_failed: AtomicU64,
}

impl LoginMetrics {
    fn failed(&self, reason: &'static str) {
        *self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(reason)
            .or_default() += 1;
    }

    fn render(&self, out: &mut Exposition, sessions: usize) {
        out.single(
            instruments::CONSOLE_LOGINS,
            Kind::Counter,
            "Console logins that started a session.",
            self.logins.load(Ordering::Relaxed) as f64,
        );
        out.family(
            instruments::CONSOLE_LOGIN_FAILURES,
            Kind::Counter,
            "Console logins refused, by reason (state, pkce, code, nonce, id_token, token, role, provider, …).",
        );
        for (reason, count) in self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            out.sample(
                instruments::CONSOLE_LOGIN_FAILURES,
                &[("reason", reason)],
                *count as f64,
            );
        }
        out.family(
            instruments::CONSOLE_SESSION_RENEWALS,
            Kind::Counter,
            "Console sessions renewed with their refresh token, by result.",
        );
        for (result, count) in [
            ("renewed", &self.renewals),
            ("failed", &self.renewals_failed),
        ] {
            out.sample(
                instruments::CONSOLE_SESSION_RENEWALS,
                &[("result", result)],
                count.load(Ordering::Relaxed) as f64,
            );
        }
        out.single(
            instruments::CONSOLE_SESSIONS,
            Kind::Gauge,
            "Console login sessions live now.",
            sessions as f64,
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; svcid-dpm-1=x"));
        headers.append(COOKIE, HeaderValue::from_static("svcid-dpm-10=y"));
        assert_eq!(cookie(&headers, "svcid-dpm-1").as_deref(), Some("x"));
        assert_eq!(cookie(&headers, "svcid-dpm-10").as_deref(), Some("y"));
        assert_eq!(cookie(&headers, "svcid-dpm"), None);
    }

    #[test]
    fn claims_are_read_from_the_middle_segment() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":5,"nonce":"n"}"#);
        let token = format!("e30.{payload}.sig");
        assert_eq!(claims(&token).unwrap()["nonce"], "n");
        assert_eq!(expiry(&token), 5);
        assert!(claims("no-dots").is_none());
        assert!(mentions_pkce("PKCE verification failed"));
        assert!(!mentions_pkce("grant request is invalid"));
    }
}
