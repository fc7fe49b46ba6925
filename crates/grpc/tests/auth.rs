//! In-process tests of the authentication layer over real gRPC: a tonic server on `127.0.0.1:0`
//! assembled as the daemons assemble theirs (health, reflection and `WhoAmI` behind [`AuthLayer`]),
//! keys generated at run time, and tonic clients calling it.
//!
//! Each test runs on the default `#[tokio::test]` runtime (current thread), so the server's
//! connection tasks run on the test thread and a `tracing::subscriber::set_default` held for the
//! whole test captures every event the server logs, without a global subscriber.

// Tests may unwrap: a panic is how they report a failure.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde_json::Value;
use svcid_client::{OutboundCredentials, with_correlation_id};
use svcid_grpc::{AuthLayer, WHOAMI_PREFIX, WhoAmI};
use svcid_identity::{
    AccessPolicy, Deployment, DeploymentKey, Deployments, GeneratorKey, SystemClock, TokenIssuer,
    TokenProfile, TokenVerifier, VerifyPolicy,
};
use svcid_logging::{LogSettings, MemorySink, Sinks};
use svcid_proto::pb::heartbeat::heartbeat_service_server::{
    HeartbeatService, HeartbeatServiceServer,
};
use svcid_proto::pb::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use svcid_proto::pb::identity::{WhoAmIRequest, WhoAmIResponse};
use tokio::sync::oneshot;
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};

/// The heartbeat service's method prefix, for policies.
const HEARTBEAT_PREFIX: &str = "/ataccama.dppapi.heartbeat.HeartbeatService/";
/// The text `WhoAmI` must return for the `dpe-dev` caller: the product's `ServiceIdentity` form.
const DPE_IDENTITY: &str = "ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])";

/// A `HeartbeatService` that logs one INFO event while serving, so tests can see which call
/// context handler events inherit from the layer's span.
#[derive(Clone, Debug)]
struct LoggingHeartbeat;

#[tonic::async_trait]
impl HeartbeatService for LoggingHeartbeat {
    async fn get_status(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        // Handlers read the caller from the extensions the layer filled.
        let caller = svcid_grpc::caller(&request).ok_or_else(|| Status::internal("no caller"))?;
        tracing::info!(eventId = "heartbeatServed", peerModule = %caller.service().map_or("-", |s| s.module.as_str()), "Heartbeat served.");
        Ok(Response::new(HeartbeatResponse {
            engine_id: "engine-1".to_owned(),
            ..HeartbeatResponse::default()
        }))
    }
}

/// Keys and configuration of one test: a `dpm` server trusting `dpe-dev` and `dpm-dev`.
struct Keys {
    /// `dpe-dev`'s token source.
    dpe: Arc<TokenIssuer>,
    /// `dpm-dev`'s token source.
    dpm: Arc<TokenIssuer>,
    /// `dpe-dev`'s deployment entry, to rebuild the registry with the key revoked.
    dpe_deployment: Deployment,
    /// `dpm-dev`'s deployment entry.
    dpm_deployment: Deployment,
}

fn deployment(name: &str, module: &str, roles: &[&str], key: &GeneratorKey) -> Deployment {
    Deployment {
        name: name.to_owned(),
        module: module.to_owned(),
        environment: Some("dev".to_owned()),
        uri: None,
        token_profile: TokenProfile::Strict,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        keys: vec![DeploymentKey {
            name: "key1".to_owned(),
            fingerprint: key.kid().to_owned(),
            public: key.public_key(),
            revoked: false,
        }],
    }
}

impl Keys {
    fn generate() -> Keys {
        let dpe_key = GeneratorKey::generate();
        let dpm_key = GeneratorKey::generate();
        let dpe_deployment = deployment("dpe-dev", "dpe", &["IMPERSONATION"], &dpe_key);
        let dpm_deployment = deployment("dpm-dev", "dpm", &[], &dpm_key);
        let issuer = |key| {
            Arc::new(
                TokenIssuer::new(key, Duration::from_secs(600), Arc::new(SystemClock)).unwrap(),
            )
        };
        Keys {
            dpe: issuer(dpe_key),
            dpm: issuer(dpm_key),
            dpe_deployment,
            dpm_deployment,
        }
    }

    /// The registry with both deployments; `dpe-dev`'s key revoked when `dpe_revoked`.
    fn registry(&self, dpe_revoked: bool) -> Deployments {
        let mut dpe = self.dpe_deployment.clone();
        for key in &mut dpe.keys {
            key.revoked = dpe_revoked;
        }
        Deployments::new(vec![dpe, self.dpm_deployment.clone()]).unwrap()
    }
}

/// A running server; dropping it stops the server.
struct TestServer {
    /// Where it listens.
    address: SocketAddr,
    /// Shared with the layer, so tests can swap the registry.
    verifier: Arc<TokenVerifier>,
    /// Completes the server's shutdown future when dropped.
    _stop: oneshot::Sender<()>,
}

/// The policy dpm uses for `WhoAmI` (any peer), plus the test heartbeat for any peer.
fn open_policy() -> AccessPolicy {
    AccessPolicy::new()
        .allow_any_peer(WHOAMI_PREFIX)
        .allow_any_peer(HEARTBEAT_PREFIX)
}

/// Starts a `dpm` server as the daemon assembles it: health, reflection, `WhoAmI` (and the
/// logging heartbeat) behind [`AuthLayer`].
async fn start(keys: &Keys, policy: AccessPolicy) -> TestServer {
    let verifier = Arc::new(TokenVerifier::new(
        VerifyPolicy::new("dpm"),
        keys.registry(false),
        Arc::new(SystemClock),
    ));
    let listener = svcid_grpc::server::listen("127.0.0.1", 0).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (_health_reporter, health) = tonic_health::server::health_reporter();
    let (reflection_v1, reflection_v1alpha) = svcid_grpc::server::reflection().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let router = Server::builder()
        .layer(AuthLayer::new(Arc::clone(&verifier), policy))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(WhoAmI::server("dpm"))
        .add_service(HeartbeatServiceServer::new(LoggingHeartbeat));
    tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    TestServer {
        address,
        verifier,
        _stop: stop,
    }
}

impl TestServer {
    async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .unwrap()
    }

    /// A `WhoAmI` client without credentials.
    async fn anonymous(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel().await)
    }
}

/// `WhoAmI` with exactly the given `authorization` values.
async fn who_am_i_with(
    client: &mut IdentityServiceClient<Channel>,
    authorization: &[String],
) -> Result<WhoAmIResponse, Status> {
    let mut request = Request::new(WhoAmIRequest {});
    for value in authorization {
        request.metadata_mut().append(
            "authorization",
            MetadataValue::try_from(value.as_str()).unwrap(),
        );
    }
    client.who_am_i(request).await.map(Response::into_inner)
}

/// The product's default log settings (INFO). A `static` because `svcid_logging::build`'s
/// return type captures the lifetime of its `settings` argument (Rust 2024 capture rules), and a
/// subscriber set as the default must be `'static`.
static SETTINGS: LazyLock<LogSettings> = LazyLock::new(LogSettings::default);

/// A subscriber writing JSON lines to a fresh [`MemorySink`].
fn capture() -> (impl tracing::Subscriber + Send + Sync, MemorySink) {
    let sink = MemorySink::new();
    let subscriber = svcid_logging::build(&SETTINGS, Sinks::new().json(sink.clone()));
    (subscriber, sink)
}

/// The captured JSON lines, parsed.
fn events(sink: &MemorySink) -> Vec<serde_json::Map<String, Value>> {
    sink.lines()
        .iter()
        .map(|line| match serde_json::from_str(line).unwrap() {
            Value::Object(map) => map,
            other => panic!("not a JSON object: {other}"),
        })
        .collect()
}

/// The captured events with this `eventId`.
fn with_event_id(sink: &MemorySink, id: &str) -> Vec<serde_json::Map<String, Value>> {
    events(sink)
        .into_iter()
        .filter(|event| event.get("eventId").and_then(Value::as_str) == Some(id))
        .collect()
}

fn field<'a>(event: &'a serde_json::Map<String, Value>, name: &str) -> &'a str {
    event
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string field {name} in {event:?}"))
}

#[tokio::test]
async fn health_check_needs_no_token() {
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test]
async fn reflection_needs_no_token_and_lists_the_identity_service() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer: ServerReflectionResponse = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a list of services: {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"svcid.identity.IdentityService"),
        "{names:?}"
    );
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}

#[tokio::test]
async fn reflection_v1alpha_needs_no_token() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a list of services: {answer:?}");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "svcid.identity.IdentityService")
    );
}

#[tokio::test]
async fn who_am_i_without_a_token_is_unauthenticated_with_the_reason_first() {
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let status = server
        .anonymous()
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().starts_with("missing_authorization: "),
        "{status:?}"
    );
}

#[tokio::test]
async fn who_am_i_with_outbound_credentials_names_the_caller() {
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut client = IdentityServiceClient::with_interceptor(
        server.channel().await,
        OutboundCredentials::new(Arc::clone(&keys.dpe), "dpm"),
    );
    let answer = client
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.identity, DPE_IDENTITY);
    assert_eq!(answer.module, "dpe");
    assert_eq!(answer.id, "dpe-dev");
    assert_eq!(answer.roles, vec!["IMPERSONATION".to_owned()]);
    assert_eq!(answer.kid, keys.dpe.kid());
    assert_eq!(answer.user, None);
    assert_eq!(answer.server_module, "dpm");

    // A second call reuses the minted (and now cached) token and still succeeds.
    let again = client
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.identity, DPE_IDENTITY);
}

#[tokio::test]
async fn outbound_credentials_for_another_audience_are_refused() {
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut client = IdentityServiceClient::with_interceptor(
        server.channel().await,
        OutboundCredentials::new(Arc::clone(&keys.dpe), "dpe"),
    );
    let status = client.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().starts_with("wrong_aud: "), "{status:?}");
}

#[tokio::test]
async fn bearer_scheme_is_accepted_in_any_case() {
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut client = server.anonymous().await;
    let token = keys.dpe.token_for("dpm");
    for scheme in ["Bearer", "bearer", "BEARER", "internal-JWT"] {
        let answer = who_am_i_with(&mut client, &[format!("{scheme} {token}")])
            .await
            .unwrap_or_else(|status| panic!("{scheme}: {status:?}"));
        assert_eq!(answer.identity, DPE_IDENTITY, "{scheme}");
    }
}

#[tokio::test]
async fn two_authorization_values_are_refused_even_if_both_are_valid() {
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut client = server.anonymous().await;
    let token = keys.dpe.token_for("dpm");
    // Verified (and cached) alone first, so the refusal cannot come from the token itself.
    who_am_i_with(&mut client, &[format!("Internal-jwt {token}")])
        .await
        .unwrap();
    let status = who_am_i_with(
        &mut client,
        &[format!("Internal-jwt {token}"), format!("Bearer {token}")],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().starts_with("multiple_authorization: "),
        "{status:?}"
    );
}

#[tokio::test]
async fn unknown_scheme_and_garbage_are_unauthenticated() {
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut client = server.anonymous().await;
    let token = keys.dpe.token_for("dpm");
    for (value, reason) in [
        (format!("Basic {token}"), "unknown_scheme"),
        ("Internal-jwt".to_owned(), "missing_token"),
        ("Internal-jwt a.b".to_owned(), "segment_count"),
    ] {
        let status = who_am_i_with(&mut client, &[value]).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(
            status.message().starts_with(&format!("{reason}: ")),
            "{status:?}"
        );
    }
}

#[tokio::test]
async fn a_method_for_another_module_is_permission_denied() {
    let keys = Keys::generate();
    let server = start(&keys, AccessPolicy::new().allow(WHOAMI_PREFIX, "dpm")).await;
    let channel = server.channel().await;

    let mut as_dpe = IdentityServiceClient::with_interceptor(
        channel.clone(),
        OutboundCredentials::new(Arc::clone(&keys.dpe), "dpm"),
    );
    let status = as_dpe.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("dpe-dev"), "{status:?}");

    let mut as_dpm = IdentityServiceClient::with_interceptor(
        channel,
        OutboundCredentials::new(Arc::clone(&keys.dpm), "dpm"),
    );
    let answer = as_dpm
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.identity,
        "ServiceIdentity(module=dpm, id=dpm-dev, roles=[])"
    );
}

#[tokio::test]
async fn a_method_no_rule_covers_is_permission_denied() {
    let keys = Keys::generate();
    // WhoAmI only: the heartbeat has no rule, so even a trusted peer may not call it.
    let server = start(&keys, AccessPolicy::new().allow_any_peer(WHOAMI_PREFIX)).await;
    let mut client = svcid_proto::pb::heartbeat::heartbeat_service_client::HeartbeatServiceClient::with_interceptor(
        server.channel().await,
        OutboundCredentials::new(Arc::clone(&keys.dpm), "dpm"),
    );
    let status = client.get_status(HeartbeatRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
}

#[tokio::test]
async fn refusal_is_logged_once_with_reason_kid_deployment_peer_and_method_but_no_token() {
    let (subscriber, sink) = capture();
    let _default = tracing::subscriber::set_default(subscriber);
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut client = server.anonymous().await;

    // A token dpe-dev minted for another audience: kid and deployment are known, the call is refused.
    let token = keys.dpe.token_for("dpe");
    let status = who_am_i_with(&mut client, &[format!("Internal-jwt {token}")])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let refusals = with_event_id(&sink, "authenticationFailed");
    assert_eq!(refusals.len(), 1, "{}", sink.text());
    let event = &refusals[0];
    assert_eq!(field(event, "severity"), "WARN");
    assert_eq!(field(event, "reason"), "wrong_aud");
    assert_eq!(field(event, "kid"), keys.dpe.kid());
    assert_eq!(field(event, "deployment"), "dpe-dev");
    assert_eq!(
        field(event, "method"),
        "/svcid.identity.IdentityService/WhoAmI"
    );
    let peer = field(event, "peer");
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    assert!(peer["127.0.0.1:".len()..].parse::<u16>().is_ok(), "{peer}");
    assert!(!field(event, "correlationId").is_empty());
    assert!(
        event.get("authenticatedUser").is_none(),
        "a refused caller is nobody: {event:?}"
    );

    // No token without a kid: the kid and deployment are "-".
    let status = client.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let refusals = with_event_id(&sink, "authenticationFailed");
    assert_eq!(refusals.len(), 2, "{}", sink.text());
    assert_eq!(field(&refusals[1], "reason"), "missing_authorization");
    assert_eq!(field(&refusals[1], "kid"), "-");
    assert_eq!(field(&refusals[1], "deployment"), "-");

    // Neither the token nor its signature appears anywhere in the log.
    let text = sink.text();
    let signature = token.rsplit('.').next().unwrap();
    assert!(!text.contains(&token));
    assert!(!text.contains(signature));
}

#[tokio::test]
async fn handler_events_carry_the_caller_and_the_callers_correlation_id() {
    let (subscriber, sink) = capture();
    let _default = tracing::subscriber::set_default(subscriber);
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut client =
        svcid_proto::pb::heartbeat::heartbeat_service_client::HeartbeatServiceClient::with_interceptor(
            server.channel().await,
            OutboundCredentials::new(Arc::clone(&keys.dpe), "dpm"),
        );

    let request = with_correlation_id(Request::new(HeartbeatRequest {}), "corr-4711");
    let answer = client.get_status(request).await.unwrap().into_inner();
    assert_eq!(answer.engine_id, "engine-1");

    let served = with_event_id(&sink, "heartbeatServed");
    assert_eq!(served.len(), 1, "{}", sink.text());
    assert_eq!(field(&served[0], "authenticatedUser"), DPE_IDENTITY);
    assert_eq!(field(&served[0], "correlationId"), "corr-4711");
    assert_eq!(field(&served[0], "peerModule"), "dpe");

    // Without an x-correlation-id of its own... the interceptor adds a fresh one; a request with
    // an unusable id gets the token's jti or a fresh id instead, never the raw value.
    let request = with_correlation_id(Request::new(HeartbeatRequest {}), "no spaces allowed");
    client.get_status(request).await.unwrap();
    let served = with_event_id(&sink, "heartbeatServed");
    assert_eq!(served.len(), 2, "{}", sink.text());
    let id = field(&served[1], "correlationId");
    assert!(!id.is_empty() && id != "no spaces allowed", "{id}");
    assert_eq!(field(&served[1], "authenticatedUser"), DPE_IDENTITY);

    // Outside the call, nothing carries the caller.
    tracing::info!(eventId = "afterCall", "After the call.");
    let after = with_event_id(&sink, "afterCall");
    assert!(after[0].get("authenticatedUser").is_none(), "{after:?}");
}

#[tokio::test]
async fn open_methods_do_not_verify_a_token_they_carry() {
    let (subscriber, sink) = capture();
    let _default = tracing::subscriber::set_default(subscriber);
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    // A token on an open method is not verified; the health check still answers.
    let mut request = Request::new(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from("Internal-jwt not.a.token").unwrap(),
    );
    tonic_health::pb::health_client::HealthClient::new(server.channel().await)
        .check(request)
        .await
        .unwrap();
    assert!(
        with_event_id(&sink, "authenticationFailed").is_empty(),
        "{}",
        sink.text()
    );
}

#[tokio::test]
async fn a_revoked_key_refuses_a_token_accepted_and_cached_just_before() {
    let (subscriber, sink) = capture();
    let _default = tracing::subscriber::set_default(subscriber);
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut client = server.anonymous().await;
    let value = format!("Internal-jwt {}", keys.dpe.token_for("dpm"));

    for _ in 0..2 {
        let answer = who_am_i_with(&mut client, std::slice::from_ref(&value))
            .await
            .unwrap();
        assert_eq!(answer.identity, DPE_IDENTITY);
    }

    let diff = server.verifier.replace_deployments(keys.registry(true));
    assert!(!diff.is_empty(), "{diff:?}");

    let status = who_am_i_with(&mut client, std::slice::from_ref(&value))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().starts_with("revoked_key: "), "{status:?}");
    let refusals = with_event_id(&sink, "authenticationFailed");
    assert_eq!(refusals.len(), 1, "{}", sink.text());
    assert_eq!(field(&refusals[0], "reason"), "revoked_key");
    assert_eq!(field(&refusals[0], "deployment"), "dpe-dev");

    // dpm-dev's key is untouched.
    let mut as_dpm = IdentityServiceClient::with_interceptor(
        server.channel().await,
        OutboundCredentials::new(Arc::clone(&keys.dpm), "dpm"),
    );
    as_dpm.who_am_i(WhoAmIRequest {}).await.unwrap();

    // Un-revoking lets the same token in again.
    server.verifier.replace_deployments(keys.registry(false));
    let answer = who_am_i_with(&mut client, std::slice::from_ref(&value))
        .await
        .unwrap();
    assert_eq!(answer.identity, DPE_IDENTITY);
}

#[tokio::test]
async fn an_unknown_method_without_a_token_is_unauthenticated_and_logged_short() {
    let (subscriber, sink) = capture();
    let _default = tracing::subscriber::set_default(subscriber);
    let keys = Keys::generate();
    let server = start(&keys, open_policy()).await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let long = format!("/svcid.identity.IdentityService/{}", "A".repeat(4000));
    let path = http::uri::PathAndQuery::try_from(long.as_str()).unwrap();
    let codec = tonic_prost::ProstCodec::<WhoAmIRequest, WhoAmIResponse>::default();
    let status = grpc
        .unary(Request::new(WhoAmIRequest {}), path, codec)
        .await
        .unwrap_err();
    // Refused before routing: an anonymous peer cannot probe which methods exist.
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let refusals = with_event_id(&sink, "authenticationFailed");
    assert_eq!(refusals.len(), 1, "{}", sink.text());
    let method = field(&refusals[0], "method");
    assert!(
        method.starts_with("/svcid.identity.IdentityService/AAAA"),
        "{method}"
    );
    assert!(
        method.ends_with('…') && method.chars().count() == 129,
        "{method}"
    );
    assert!(sink.text().len() < 4000, "{}", sink.text());
}
