//! The server side of service authentication: a tower layer in front of every gRPC method.
//!
//! For each call it reads the `authorization` metadata, asks the shared [`TokenVerifier`] who the
//! caller is, asks the [`AccessPolicy`] whether that caller may call this method, and only then
//! lets the call through, with the [`Caller`] in the request extensions and the handler's
//! work running inside a `call` span that carries `authenticatedUser` and `correlationId` into every
//! log event. Health and reflection are open without a token (docs/wire.md): standard probes and
//! tools must work against the daemons.
//!
//! A request over the message-size limit, which tonic reports as `OUT_OF_RANGE`, leaves as
//! `RESOURCE_EXHAUSTED`, the code gRPC specifies for it.
//!
//! Refusals are logged through [`RefusalLog`], which folds identical ones (same reason, `kid`, peer
//! host and method) arriving within a window into one count.
//!
//! People: with user-token issuers configured ([`AuthLayer::with_users`]), one `authorization`
//! value `Bearer <t>` (scheme in any case) whose token names a configured issuer is verified by
//! [`Users`] inside the returned future (its issuer's keys may have to be fetched), and the call
//! carries a [`Caller::User`]. Every other value stays on the synchronous module-token path.
//!
//! A layer rather than a tonic `Interceptor` because an interceptor sees neither the method path
//! (needed for authorization and open methods) nor the handler's future (needed for the span).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use svcid_actuator::instruments::AuthMetrics;
use svcid_identity::authz::AccessPolicy;
use svcid_identity::identity::Caller;
use svcid_identity::printable::{EXCERPT_CHARS, excerpt};
use svcid_identity::token::TokenVerifier;
use svcid_identity::user::UserIdentity;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};
use tracing::Instrument;

use svcid_users::{ClaimedOrigin, PersonsToken, RefusedToken, Users};

use svcid_client::CORRELATION_ID_HEADER;

use crate::connections::{CallGuard, GuardedInfo};
use crate::refusals::{
    MAX_TRACKED_REFUSALS, REFUSAL_WINDOW, Refusal, RefusalLog, UserRefusal, peer_ip,
};
use crate::status;

/// Method path prefixes served without a token.
const OPEN_PREFIXES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The longest method path a refusal log line carries, in characters. gRPC paths are short; a
/// longer one comes from a hostile or broken peer and must not inflate every refusal line.
const MAX_LOGGED_METHOD_CHARS: usize = 128;

/// The `deployment` label of people's calls in the authentication counters (no deployment name
/// has parentheses).
pub const USER_LABEL: &str = "(user)";

/// Builds [`AuthService`]s around a server's routes.
#[derive(Clone)]
pub struct AuthLayer {
    /// Shared with the reloader, which swaps the deployments inside it.
    verifier: Arc<TokenVerifier>,
    /// Which module may call which method.
    policy: Arc<AccessPolicy>,
    /// Where refusals are logged, rate-limited; shared by every connection of the server.
    refusals: Arc<RefusalLog>,
    /// Verdict counters for `/actuator/prometheus`; see [`AuthLayer::with_metrics`].
    metrics: Arc<AuthMetrics>,
    /// The user-token issuers; `None`: only modules call.
    users: Option<Arc<Users>>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// A layer that authenticates with `verifier` and authorizes with `policy`. Identical
    /// refusals are folded for [`REFUSAL_WINDOW`]; the task that writes the folded counts starts
    /// with the first refusal, on the runtime serving it.
    pub fn new(verifier: Arc<TokenVerifier>, policy: AccessPolicy) -> Self {
        Self::with_refusal_window(verifier, policy, REFUSAL_WINDOW)
    }

    /// Like [`AuthLayer::new`] with another folding window (tests use a short one).
    pub fn with_refusal_window(
        verifier: Arc<TokenVerifier>,
        policy: AccessPolicy,
        window: std::time::Duration,
    ) -> Self {
        Self {
            verifier,
            policy: Arc::new(policy),
            refusals: RefusalLog::new(window, MAX_TRACKED_REFUSALS),
            metrics: Arc::default(),
            users: None,
        }
    }

    /// Also accepts people's user tokens of `users`' issuers (`None`: modules only).
    #[must_use]
    pub fn with_users(mut self, users: Option<Arc<Users>>) -> Self {
        self.users = users;
        self
    }

    /// Counts every verdict (accepted, refused by reason, denied) in `metrics`, which the daemon
    /// also hands to its actuator. Without it the counts are kept but never shown.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<AuthMetrics>) -> Self {
        self.metrics = metrics;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            verifier: Arc::clone(&self.verifier),
            policy: Arc::clone(&self.policy),
            refusals: Arc::clone(&self.refusals),
            metrics: Arc::clone(&self.metrics),
            users: self.users.clone(),
        }
    }
}

/// The per-connection service produced by [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    /// The routes behind the check.
    inner: S,
    /// See [`AuthLayer::verifier`].
    verifier: Arc<TokenVerifier>,
    /// See [`AuthLayer::policy`].
    policy: Arc<AccessPolicy>,
    /// See [`AuthLayer::refusals`].
    refusals: Arc<RefusalLog>,
    /// See [`AuthLayer::metrics`].
    metrics: Arc<AuthMetrics>,
    /// See [`AuthLayer::users`].
    users: Option<Arc<Users>>,
}

impl<S> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this call (tower's rule for cloned services).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = request.uri().path().to_owned();
        let correlation_id = sane_correlation_id(request.headers());

        if OPEN_PREFIXES.iter().any(|p| method.starts_with(p)) {
            let span = tracing::info_span!("call", correlationId = %correlation_id.unwrap_or_else(fresh_id));
            let call = CallGuard::of(&request);
            return Box::pin(serve_in(span, &mut inner, request, call));
        }
        if let Some(users) = &self.users
            && let Some((scheme, presented)) = user_token(request.headers(), users)
        {
            let call = UserCall {
                users: Arc::clone(users),
                policy: Arc::clone(&self.policy),
                refusals: Arc::clone(&self.refusals),
                metrics: Arc::clone(&self.metrics),
                method,
                correlation_id,
                scheme,
            };
            return Box::pin(call.serve(presented, inner, request));
        }
        let values: Vec<&[u8]> = request
            .headers()
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        // The peer's address and the logged path are worked out only for a refusal's log line:
        // formatting them for every accepted call cost more than the cached verification.
        let caller = match self.verifier.verify(&values) {
            Ok(caller) => {
                self.metrics.accepted(&caller.service().id);
                caller
            }
            Err(error) => {
                let peer = peer_address(&request);
                // The path comes from an unauthenticated peer: logged shortened and escaped.
                let logged_method = excerpt(&method, MAX_LOGGED_METHOD_CHARS);
                let kid = error.kid().unwrap_or("-");
                let deployment = error
                    .kid()
                    .and_then(|kid| self.verifier.deployment_of(kid))
                    .unwrap_or_else(|| "-".to_owned());
                self.metrics
                    .refused(error.reason(), &deployment, peer_ip(&peer));
                // Never the token: only the reason code and the verifier's escaped, short kid.
                self.refusals.refused(&Refusal {
                    reason: error.reason(),
                    kid,
                    deployment: &deployment,
                    peer: &peer,
                    method: &logged_method,
                    correlation_id: &correlation_id.unwrap_or_else(fresh_id),
                    user: None,
                });
                return Box::pin(std::future::ready(Ok(
                    status::unauthenticated(&error).into_http()
                )));
            }
        };
        let caller = Caller::Module(caller);
        if let Err(denied) = self.policy.authorize_caller(&method, &caller) {
            let label = caller.service().map_or(USER_LABEL, |s| s.id.as_str());
            self.metrics.denied(label);
            return Box::pin(std::future::ready(Ok(denial(
                &request,
                &method,
                &caller,
                correlation_id,
                &denied,
            ))));
        }

        let correlation_id = correlation_id
            .or_else(|| (!caller.jti().is_empty()).then(|| caller.jti().to_owned()))
            .unwrap_or_else(fresh_id);
        let span = tracing::info_span!("call", authenticatedUser = %caller, correlationId = %correlation_id);
        request.extensions_mut().insert(Arc::new(caller));
        request
            .extensions_mut()
            .insert(CorrelationId(correlation_id));
        // Only calls that are served keep a connection out of its first-call bound: a stranger
        // sending refused tokens is closed like one that sends nothing (crate::connections).
        let call = CallGuard::of(&request);
        Box::pin(serve_in(span, &mut inner, request, call))
    }
}

/// Logs `accessDenied` for `caller` and answers `PERMISSION_DENIED`.
fn denial<B, R: Default>(
    request: &Request<B>,
    method: &str,
    caller: &Caller,
    correlation_id: Option<String>,
    denied: &svcid_identity::authz::AccessDenied,
) -> Response<R> {
    let peer = peer_address(request);
    let logged_method = excerpt(method, MAX_LOGGED_METHOD_CHARS);
    tracing::warn!(
        authenticatedUser = %caller,
        correlationId = %correlation_id.unwrap_or_else(|| caller.jti().to_owned()),
        eventId = crate::events::ACCESS_DENIED,
        peer = %peer,
        method = %logged_method,
        "{denied}"
    );
    status::permission_denied(denied).into_http()
}

/// A person's token as a call presents it.
enum Presented {
    /// Verified before: the cache's answer, looked up once.
    Known(UserIdentity),
    /// To be verified (the token itself).
    Unverified(String),
}

/// The scheme and the person's token of a request's one `authorization` value
/// ([`Users::person_in`]); `None` sends the call down the module path.
fn user_token(headers: &HeaderMap, users: &Users) -> Option<(String, Presented)> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = users.person_in(value.to_str().ok()?)?;
    let presented = match token {
        PersonsToken::Known(user) => Presented::Known(user),
        PersonsToken::New(token) => Presented::Unverified(token.to_owned()),
    };
    Some((scheme.to_owned(), presented))
}

/// What serving one call with a user token needs, moved into its future.
struct UserCall {
    users: Arc<Users>,
    policy: Arc<AccessPolicy>,
    refusals: Arc<RefusalLog>,
    metrics: Arc<AuthMetrics>,
    method: String,
    correlation_id: Option<String>,
    /// The scheme as sent (`Bearer` in some case).
    scheme: String,
}

impl UserCall {
    /// Verifies the person's token (unless the cache knew it), authorizes the person and serves
    /// the call with `inner`, or answers `UNAUTHENTICATED` / `PERMISSION_DENIED`.
    async fn serve<S, ReqBody, ResBody>(
        self,
        presented: Presented,
        mut inner: S,
        mut request: Request<ReqBody>,
    ) -> Result<Response<ResBody>, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
        S::Future: Send + 'static,
        ResBody: Default,
    {
        let verified = match presented {
            Presented::Known(user) => Ok(user),
            Presented::Unverified(token) => self.users.verify_person(&token).await,
        };
        let user = match verified {
            Ok(user) => user,
            Err(RefusedToken { error, origin }) => {
                let peer = peer_address(&request);
                let logged_method = excerpt(&self.method, MAX_LOGGED_METHOD_CHARS);
                let ClaimedOrigin { issuer, kid } = origin.unwrap_or_default();
                let issuer = excerpt(&issuer, 2 * EXCERPT_CHARS);
                let kid = kid.map_or_else(|| "-".to_owned(), |kid| excerpt(&kid, EXCERPT_CHARS));
                self.metrics.refused(error.reason(), "-", peer_ip(&peer));
                // Never the token: the scheme, the reason code, the claimed issuer and kid.
                self.refusals.refused(&Refusal {
                    reason: error.reason(),
                    kid: &kid,
                    deployment: "-",
                    peer: &peer,
                    method: &logged_method,
                    correlation_id: &self.correlation_id.unwrap_or_else(fresh_id),
                    user: Some(UserRefusal {
                        scheme: &excerpt(&self.scheme, 16),
                        issuer: &issuer,
                    }),
                });
                return Ok(status::unauthenticated_user(&error).into_http());
            }
        };
        let caller = Caller::User(user);
        if let Err(denied) = self.policy.authorize_caller(&self.method, &caller) {
            self.metrics.denied(USER_LABEL);
            return Ok(denial(
                &request,
                &self.method,
                &caller,
                self.correlation_id,
                &denied,
            ));
        }
        self.metrics.accepted(USER_LABEL);
        let correlation_id = self.correlation_id.unwrap_or_else(fresh_id);
        let span = tracing::info_span!("call", authenticatedUser = %caller, correlationId = %correlation_id);
        request.extensions_mut().insert(Arc::new(caller));
        request
            .extensions_mut()
            .insert(CorrelationId(correlation_id));
        let call = CallGuard::of(&request);
        serve_in(span, &mut inner, request, call).await
    }
}

/// Calls `inner` inside `span`: both the synchronous `call` and every poll of its future, so
/// whatever the routes or the handler log carries the span's call context.
///
/// A streaming response body is polled by the transport after this future completes, outside the
/// span; svcid's authenticated methods are all unary, so their work is covered. `call` counts the
/// call on its connection until the response is ready.
fn serve_in<S, R, B>(
    span: tracing::Span,
    inner: &mut S,
    request: R,
    call: Option<CallGuard>,
) -> impl std::future::Future<Output = Result<Response<B>, S::Error>> + Send + 'static
where
    S: Service<R, Response = Response<B>>,
    S::Future: Send + 'static,
{
    let future = span.in_scope(|| inner.call(request)).instrument(span);
    async move {
        let mut response = future.await?;
        drop(call);
        oversized_is_resource_exhausted(response.headers_mut());
        Ok(response)
    }
}

/// The start of tonic's message for a request over `max_decoding_message_size`.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// tonic reports a request message over the size limit as `OUT_OF_RANGE`; the gRPC spec, and the
/// Java and Go implementations the product's clients use, say `RESOURCE_EXHAUSTED`. A unary call
/// whose request cannot be decoded gets a trailers-only response, so the status is in the headers
/// and can be corrected here. Anything else passes untouched.
fn oversized_is_resource_exhausted(headers: &mut HeaderMap) {
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    if status.code() == tonic::Code::OutOfRange && status.message().starts_with(TOO_LARGE) {
        // Re-encoding a message that was just decoded cannot fail; if it did, OUT_OF_RANGE stays.
        let _ = tonic::Status::resource_exhausted(status.message()).add_header(headers);
    }
}

/// The verified caller of a request that passed [`AuthLayer`]; `None` only for open methods.
pub fn caller<T>(request: &tonic::Request<T>) -> Option<Arc<Caller>> {
    request.extensions().get::<Arc<Caller>>().cloned()
}

/// The correlation id a call's log lines carry, kept for the calls its handler makes onward.
#[derive(Clone, Debug)]
struct CorrelationId(String);

/// The correlation id of a request that passed [`AuthLayer`] (the caller's sane
/// `x-correlation-id`, else the token's `jti`, else a fresh one), for the calls its handler makes
/// onward; a fresh id for open methods.
pub fn correlation_id<T>(request: &tonic::Request<T>) -> String {
    request
        .extensions()
        .get::<CorrelationId>()
        .map_or_else(fresh_id, |id| id.0.clone())
}

/// The caller's `x-correlation-id`, when it is a sane id (it ends up in logs, so nothing else).
fn sane_correlation_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CORRELATION_ID_HEADER)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    sane.then(|| value.to_owned())
}

fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn peer_address<B>(request: &Request<B>) -> String {
    let extensions = request.extensions();
    // The daemons serve guarded connections (crate::connections); on a TLS port the TCP details
    // are wrapped in the TLS connection's. Plain tonic servers (tests) give TcpConnectInfo.
    GuardedInfo::of(extensions)
        .map(|info| &info.tcp)
        .or_else(|| extensions.get::<TcpConnectInfo>())
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .map(TlsConnectInfo::get_ref)
        })
        .and_then(TcpConnectInfo::remote_addr)
        .as_ref()
        .map(SocketAddr::to_string)
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_taken_only_when_sane() {
        let mut headers = HeaderMap::new();
        assert_eq!(sane_correlation_id(&headers), None);
        headers.insert(CORRELATION_ID_HEADER, "engine-1_A".parse().unwrap());
        assert_eq!(sane_correlation_id(&headers).as_deref(), Some("engine-1_A"));
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            headers.insert(CORRELATION_ID_HEADER, bad.parse().unwrap());
            assert_eq!(sane_correlation_id(&headers), None, "{bad:?}");
        }
    }

    #[test]
    fn logged_methods_are_short_and_escaped() {
        assert_eq!(excerpt("/a.B/C", 8), "/a.B/C");
        assert_eq!(excerpt("/a\tb", 8), "/a\\tb");
        assert_eq!(excerpt("/a\u{7f}b", 8), "/a\\u{7f}b");
        assert_eq!(excerpt(&"x".repeat(10), 4), "xxxx…");
    }

    #[test]
    fn only_an_oversized_request_becomes_resource_exhausted() {
        let mut headers = HeaderMap::new();
        tonic::Status::out_of_range(format!("{TOO_LARGE}: found 9 bytes, the limit is: 8 bytes"))
            .add_header(&mut headers)
            .unwrap();
        oversized_is_resource_exhausted(&mut headers);
        let status = tonic::Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().starts_with(TOO_LARGE));

        let mut headers = HeaderMap::new();
        tonic::Status::out_of_range("page 7 of 3")
            .add_header(&mut headers)
            .unwrap();
        oversized_is_resource_exhausted(&mut headers);
        let status = tonic::Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), tonic::Code::OutOfRange);

        let mut headers = HeaderMap::new();
        oversized_is_resource_exhausted(&mut headers);
        assert!(headers.is_empty());
    }
}
