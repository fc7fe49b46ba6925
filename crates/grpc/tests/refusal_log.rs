//! The refusal log is rate-limited (issue 5, item 3): a flood of identical refused calls over real
//! gRPC gives one `authenticationFailed` line and, when the folding window ends, one
//! `authenticationFailedRepeated` line with the count; distinct refusals are still logged at once;
//! the caller learns the reason code and nothing about the keys.
//!
//! Runs on the current-thread runtime of `#[tokio::test]`, so a subscriber set as the default for
//! the test sees everything the server logs, including the task that writes the summaries.

// Tests may unwrap: a panic is how they report a failure.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde_json::Value;
use svcid_grpc::{AuthLayer, WHOAMI_PREFIX, WhoAmI};
use svcid_identity::{
    AccessPolicy, Deployment, DeploymentKey, Deployments, GeneratorKey, SystemClock, TokenIssuer,
    TokenProfile, TokenVerifier, VerifyPolicy,
};
use svcid_logging::{LogSettings, MemorySink, Sinks};
use svcid_proto::pb::identity::WhoAmIRequest;
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic::{Code, Request};

/// Short, so the test sees the window end quickly.
const WINDOW: Duration = Duration::from_millis(400);

static SETTINGS: LazyLock<LogSettings> = LazyLock::new(LogSettings::default);

fn events(sink: &MemorySink, id: &str) -> Vec<serde_json::Map<String, Value>> {
    sink.lines()
        .iter()
        .filter_map(|line| match serde_json::from_str(line).unwrap() {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .filter(|event| event.get("eventId").and_then(Value::as_str) == Some(id))
        .collect()
}

/// An authentication layer for a `dpe-dev` peer on a `dpm`, with the short window; the peer's
/// issuer, its private key (base64) and its public JWK, to check that neither leaks.
fn fixture() -> (AuthLayer, TokenIssuer, String, String) {
    let key = GeneratorKey::generate();
    let private = key.to_base64();
    let public_x = key.public_key().content_json();
    let registry = Deployments::new(vec![Deployment {
        name: "dpe-dev".to_owned(),
        module: "dpe".to_owned(),
        environment: None,
        uri: None,
        token_profile: TokenProfile::Strict,
        roles: vec![],
        keys: vec![DeploymentKey {
            name: "key".to_owned(),
            fingerprint: key.kid().to_owned(),
            public: key.public_key(),
            revoked: false,
        }],
    }])
    .unwrap();
    let issuer = TokenIssuer::new(key, Duration::from_secs(60), Arc::new(SystemClock)).unwrap();
    let verifier = Arc::new(TokenVerifier::new(
        VerifyPolicy::new("dpm"),
        registry,
        Arc::new(SystemClock),
    ));
    let layer = AuthLayer::with_refusal_window(
        verifier,
        AccessPolicy::new().allow_any_peer(WHOAMI_PREFIX),
        WINDOW,
    );
    (layer, issuer, private, public_x)
}

/// A layer built before any runtime exists still writes the summary when the window ends with
/// no further refusal (the sweeping task starts with the first refusal, not with the layer).
#[test]
fn a_layer_built_outside_a_runtime_still_summarises() {
    let sink = MemorySink::new();
    let subscriber = svcid_logging::build(&SETTINGS, Sinks::new().json(sink.clone()));
    let _default = tracing::subscriber::set_default(subscriber);
    let (layer, issuer, _, _) = fixture();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = svcid_grpc::server::listen("127.0.0.1", 0).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            Server::builder()
                .layer(layer)
                .add_service(WhoAmI::server("dpm"))
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                }),
        );
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = IdentityServiceClient::new(channel);
        let wrong_aud = format!("Internal-jwt {}", issuer.token_for("dpe"));
        for _ in 0..3 {
            let mut request = Request::new(WhoAmIRequest {});
            request.metadata_mut().insert(
                "authorization",
                MetadataValue::try_from(wrong_aud.as_str()).unwrap(),
            );
            client.who_am_i(request).await.unwrap_err();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while events(&sink, "authenticationFailedRepeated").is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "{}", sink.text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            events(&sink, "authenticationFailedRepeated")[0]["repeated"],
            "2"
        );
        drop(stop);
        server.await.unwrap().unwrap();
    });
}

#[tokio::test]
async fn fifty_identical_refusals_give_one_line_and_one_count() {
    let sink = MemorySink::new();
    let subscriber = svcid_logging::build(&SETTINGS, Sinks::new().json(sink.clone()));
    let _default = tracing::subscriber::set_default(subscriber);

    let (layer, issuer, private, public_x) = fixture();
    let listener = svcid_grpc::server::listen("127.0.0.1", 0).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .layer(layer)
            .add_service(WhoAmI::server("dpm"))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            }),
    );
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = IdentityServiceClient::new(channel);

    // A token for the wrong audience: kid and deployment known, always the same refusal.
    let wrong_aud = format!("Internal-jwt {}", issuer.token_for("dpe"));
    let call = |value: String| {
        let mut client = client.clone();
        async move {
            let mut request = Request::new(WhoAmIRequest {});
            request
                .metadata_mut()
                .insert("authorization", MetadataValue::try_from(value).unwrap());
            client.who_am_i(request).await
        }
    };
    for _ in 0..50 {
        let status = call(wrong_aud.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        // The caller learns the reason class, and nothing of the keys.
        assert!(status.message().starts_with("wrong_aud: "), "{status:?}");
        for secret in [&private, &public_x, &issuer.kid()] {
            assert!(!status.message().contains(secret.as_str()), "{status:?}");
        }
    }
    // A different refusal inside the window is logged at once.
    let status = call("Basic abc".to_owned()).await.unwrap_err();
    assert!(
        status.message().starts_with("unknown_scheme: "),
        "{status:?}"
    );

    let refused = events(&sink, "authenticationFailed");
    assert_eq!(refused.len(), 2, "{}", sink.text());
    assert_eq!(refused[0]["reason"], "wrong_aud");
    assert_eq!(refused[0]["kid"], issuer.kid().as_str());
    assert_eq!(refused[0]["deployment"], "dpe-dev");
    assert_eq!(refused[1]["reason"], "unknown_scheme");
    assert!(events(&sink, "authenticationFailedRepeated").is_empty());

    // The window ends: one summary with the count, written by the sweeping task.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events(&sink, "authenticationFailedRepeated").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "{}", sink.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(WINDOW).await;
    let summaries = events(&sink, "authenticationFailedRepeated");
    assert_eq!(summaries.len(), 1, "{}", sink.text());
    let summary = &summaries[0];
    assert_eq!(summary["severity"], "WARN");
    assert_eq!(summary["repeated"], "49");
    assert_eq!(summary["reason"], "wrong_aud");
    assert_eq!(summary["kid"], issuer.kid().as_str());
    assert_eq!(summary["deployment"], "dpe-dev");
    assert_eq!(summary["peer"], "127.0.0.1");
    assert_eq!(summary["method"], "/svcid.identity.IdentityService/WhoAmI");
    let message = summary["message"].as_str().unwrap();
    assert!(message.contains("repeated=49"), "{message}");

    // After the window the same refusal is logged in full again.
    call(wrong_aud.clone()).await.unwrap_err();
    assert_eq!(events(&sink, "authenticationFailed").len(), 3);

    // Nothing secret in the whole log.
    let text = sink.text();
    assert!(!text.contains(&private));
    assert!(!text.contains(wrong_aud.rsplit('.').next().unwrap()));

    drop(stop);
    server.await.unwrap().unwrap();
}
