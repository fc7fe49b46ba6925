//! End-to-end interoperability with Ataccama ONE 13.3's own modules, tested against the product's
//! own wire and token rules (docs/wire.md) rather than against ourselves: every message this
//! file sends or decodes is declared here from the product's field numbers (module [`wire`]),
//! never taken from svcid-proto, and every call goes over real gRPC on the product's exact
//! method paths.
//!
//! - The constraints an engine registers come back from DPM byte for byte (map entries in the
//!   sender's order, `Any` payloads, an unknown field) and are logged and listed decoded.
//! - A product peer is stood in for by servers written here: an engine and a DPM whose token check
//!   behaves like the product's Python module ([`PythonLikeVerifier`], PyJWT 2.1 `jwt.decode`
//!   without `audience`: any `aud` is "Invalid audience"). Our daemons reach them only when the
//!   peer's deployment is marked `token-profile=product`.
//! - Tokens minted like the product's Java modules (no `aud`, no `jti`) are accepted by our DPM
//!   only from a deployment marked `product`.
//! - DPM's reflection lists the product's registry service.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Ready;
use std::marker::PhantomData;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Daemon, Pair};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use prost::Message;
use serde_json::{Value, json};
use svcid_identity::GeneratorKey;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{Body, BoxFuture, StdError, http};
use tonic::server::{NamedService, UnaryService};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;

const GENERATOR_KEY: &str = "ataccama.authentication.internal.jwt.generator.key";
const REGISTER: &str = "/ataccama.dppapi.dpm.registry.RegistryService/RegisterEngine";
const HEARTBEAT: &str = "/ataccama.dppapi.heartbeat.HeartbeatService/GetStatus";
const LIST_ENGINES: &str = "/svcid.engines.EngineAdminService/ListEngines";
/// DPM's entry for the engine's key, as `svcid link` names it.
const DPE_PROFILE: &str = "ataccama.one.platform.deployments.dpe-dev.security.token-profile";
/// DPE's entry for DPM's key, as `svcid link` names it.
const DPM_PROFILE: &str = "ataccama.one.platform.deployments.dpm-dev.security.token-profile";
const DPE_IDENTITY: &str = "ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])";
const LONG_VALUE_KEY_EXTRACTOR: &str =
    "type.googleapis.com/ataccama.dppapi.constraint.standard.LongValueKeyExtractor";

// ---------------------------------------------------------------------------------------------
// The product's messages, from the product's own field numbers.

/// The product's wire as the product defines it. Maps are declared as their wire form (repeated
/// key/value entries, which is what `map<string, V>` is on the wire) so the test decides the order
/// of entries and can tell a DPM that re-encodes from one that keeps the bytes.
mod wire {
    /// `ataccama.dppapi.dpm.registry.RegistrationRequest`; constraints (4) as their bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RegistrationRequest {
        #[prost(string, tag = "1")]
        pub engine_id: String,
        #[prost(message, optional, tag = "2")]
        pub address: Option<EngineAddress>,
        #[prost(bytes = "vec", optional, tag = "4")]
        pub constraints: Option<Vec<u8>>,
    }

    /// `ataccama.dppapi.dpm.registry.EngineAddress`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EngineAddress {
        #[prost(string, tag = "1")]
        pub hostname: String,
        #[prost(int32, tag = "2")]
        pub port: i32,
    }

    /// `RegistrationResponse`: the top-level `Status` (SUCCESS 0, ALREADY_REGISTERED 1, ERROR 2).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RegistrationResponse {
        #[prost(int32, tag = "1")]
        pub status: i32,
    }

    /// `ataccama.dppapi.heartbeat.HeartbeatRequest`, and `svcid.engines.ListEnginesRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}

    /// `ataccama.dppapi.heartbeat.HeartbeatResponse` (status OK = 0).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HeartbeatResponse {
        #[prost(int32, tag = "1")]
        pub status: i32,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub constraints: Option<Vec<u8>>,
        #[prost(string, tag = "3")]
        pub engine_id: String,
    }

    /// `svcid.engines.ListEnginesResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListEnginesResponse {
        #[prost(message, repeated, tag = "1")]
        pub engines: Vec<EngineInfo>,
    }

    /// `svcid.engines.EngineInfo`, the fields this test reads; constraints (7) as bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EngineInfo {
        #[prost(string, tag = "1")]
        pub engine_id: String,
        #[prost(bytes = "vec", optional, tag = "7")]
        pub constraints: Option<Vec<u8>>,
        #[prost(string, tag = "8")]
        pub registered_by: String,
    }

    /// `ataccama.dppapi.constraint.Constraints`, plus one field no version of it has (100), which
    /// a DPM that keeps the bytes hands back and a re-encoding one drops.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Constraints {
        #[prost(message, repeated, tag = "1")]
        pub requirements: Vec<RequirementEntry>,
        #[prost(message, repeated, tag = "2")]
        pub capabilities: Vec<CapabilityEntry>,
        #[prost(message, repeated, tag = "3")]
        pub priorities: Vec<Priority>,
        #[prost(string, tag = "100")]
        pub from_a_later_version: String,
    }

    /// One entry of `map<string, Requirement> requirements`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RequirementEntry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Requirement>,
    }

    /// One entry of `map<string, Capability> capabilities`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CapabilityEntry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Capability>,
    }

    /// `Constraints.Capability`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Capability {
        #[prost(oneof = "CapabilityType", tags = "1, 2, 3, 7, 8, 9, 10")]
        pub capability_type: Option<CapabilityType>,
    }

    /// `Capability.capability_type`, the variants this test sends.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum CapabilityType {
        #[prost(message, tag = "1")]
        Enumeration(Enumeration),
        #[prost(message, tag = "2")]
        Pattern(Pattern),
        #[prost(string, tag = "3")]
        Value(String),
        #[prost(int64, tag = "7")]
        Long(i64),
        #[prost(bool, tag = "8")]
        Boolean(bool),
        #[prost(message, tag = "9")]
        Any(Any),
        #[prost(message, tag = "10")]
        IntInterval(IntInterval),
    }

    /// `Capability.Enumeration`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Enumeration {
        #[prost(message, repeated, tag = "1")]
        pub capabilities: Vec<Capability>,
    }

    /// `Capability.Pattern` / `Requirement.Pattern`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Pattern {
        #[prost(string, tag = "1")]
        pub regex: String,
        #[prost(int32, tag = "2")]
        pub flags: i32,
    }

    /// `Capability.IntInterval`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IntInterval {
        #[prost(message, optional, tag = "1")]
        pub range: Option<IntRange>,
    }

    /// `Range.IntRange`; bound types: OPEN 1, CLOSED 2.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IntRange {
        #[prost(message, optional, tag = "1")]
        pub lower_bound: Option<Int32Value>,
        #[prost(int32, tag = "2")]
        pub lower_bound_type: i32,
        #[prost(message, optional, tag = "3")]
        pub upper_bound: Option<Int32Value>,
        #[prost(int32, tag = "4")]
        pub upper_bound_type: i32,
    }

    /// `Constraints.Requirement`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Requirement {
        #[prost(oneof = "RequirementType", tags = "1, 3, 5, 9")]
        pub requirement_type: Option<RequirementType>,
    }

    /// `Requirement.requirement_type`, the variants this test sends.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum RequirementType {
        #[prost(message, tag = "1")]
        And(And),
        #[prost(message, tag = "3")]
        Not(Box<Not>),
        #[prost(string, tag = "5")]
        Value(String),
        #[prost(int64, tag = "9")]
        Long(i64),
    }

    /// `Requirement.And`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct And {
        #[prost(message, repeated, tag = "1")]
        pub requirements: Vec<Requirement>,
    }

    /// `Requirement.Not`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Not {
        #[prost(message, optional, boxed, tag = "1")]
        pub requirement: Option<Box<Requirement>>,
    }

    /// `Constraints.Priority`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Priority {
        #[prost(message, repeated, tag = "1")]
        pub components: Vec<Component>,
    }

    /// `Priority.Component`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Component {
        #[prost(string, tag = "1")]
        pub capability_key: String,
        #[prost(message, optional, tag = "2")]
        pub extractor: Option<Any>,
        #[prost(message, optional, tag = "3")]
        pub comparator: Option<Any>,
        #[prost(message, optional, tag = "4")]
        pub weight: Option<DoubleValue>,
    }

    /// `google.protobuf.Any`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    /// `google.protobuf.Int32Value`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Int32Value {
        #[prost(int32, tag = "1")]
        pub value: i32,
    }

    /// `google.protobuf.DoubleValue`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DoubleValue {
        #[prost(double, tag = "1")]
        pub value: f64,
    }

    /// `ataccama.dppapi.constraint.standard.LongValueKeyExtractor` (no fields).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LongValueKeyExtractor {}
}

use wire::{CapabilityType as C, RequirementType as R};

fn capability(key: &str, kind: C) -> wire::CapabilityEntry {
    wire::CapabilityEntry {
        key: key.to_owned(),
        value: Some(wire::Capability {
            capability_type: Some(kind),
        }),
    }
}

fn requirement(kind: R) -> wire::Requirement {
    wire::Requirement {
        requirement_type: Some(kind),
    }
}

/// Constraints using most of the product's shapes, map entries deliberately out of key order.
fn rich_constraints() -> wire::Constraints {
    let value = |v: &str| wire::Capability {
        capability_type: Some(C::Value(v.to_owned())),
    };
    wire::Constraints {
        requirements: vec![
            wire::RequirementEntry {
                key: "tier-check".to_owned(),
                value: Some(requirement(R::Value("gold".to_owned()))),
            },
            wire::RequirementEntry {
                key: "eligible".to_owned(),
                value: Some(requirement(R::And(wire::And {
                    requirements: vec![
                        requirement(R::Value("spark".to_owned())),
                        requirement(R::Not(Box::new(wire::Not {
                            requirement: Some(Box::new(requirement(R::Long(3)))),
                        }))),
                    ],
                }))),
            },
        ],
        capabilities: vec![
            capability(
                "tier",
                C::Enumeration(wire::Enumeration {
                    capabilities: vec![value("gold"), value("silver")],
                }),
            ),
            capability("spark-version", C::Value("3.5".to_owned())),
            capability(
                "memory",
                C::IntInterval(wire::IntInterval {
                    range: Some(wire::IntRange {
                        lower_bound: Some(wire::Int32Value { value: 1 }),
                        lower_bound_type: 2,
                        upper_bound: Some(wire::Int32Value { value: 64 }),
                        upper_bound_type: 1,
                    }),
                }),
            ),
            capability(
                "jdbc.connectionstring",
                C::Pattern(wire::Pattern {
                    regex: "jdbc:oracle:.*".to_owned(),
                    flags: 2,
                }),
            ),
            capability("gpu", C::Boolean(true)),
            capability("cores", C::Long(16)),
            capability(
                "vendor",
                C::Any(wire::Any {
                    type_url: "type.googleapis.com/example.Vendor".to_owned(),
                    value: vec![0x0a, 0x03, b'a', b'c', b'm'],
                }),
            ),
        ],
        priorities: vec![wire::Priority {
            components: vec![wire::Component {
                capability_key: "cores".to_owned(),
                extractor: Some(wire::Any {
                    type_url: LONG_VALUE_KEY_EXTRACTOR.to_owned(),
                    value: wire::LongValueKeyExtractor {}.encode_to_vec(),
                }),
                comparator: None,
                weight: Some(wire::DoubleValue { value: 1.5 }),
            }],
        }],
        from_a_later_version: "kept".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and tokens.

/// A module's key pair, read from the generator key `svcid link` wrote into its home.
struct ModuleKey {
    /// The `kid` its tokens carry.
    kid: String,
    /// The private key, for tokens the test mints in this module's name.
    signing: SigningKey,
}

impl ModuleKey {
    fn of_home(home: &Path) -> ModuleKey {
        let key = GeneratorKey::from_base64(&Pair::property(home, GENERATOR_KEY)).unwrap();
        // The private scalar is not exposed by svcid-identity: take it from the base64 keypair.
        let keypair: Value =
            serde_json::from_slice(&STANDARD.decode(key.to_base64()).unwrap()).unwrap();
        let d = URL_SAFE_NO_PAD
            .decode(keypair["d"].as_str().unwrap())
            .unwrap();
        ModuleKey {
            kid: key.kid().to_owned(),
            signing: SigningKey::from_slice(&d).unwrap(),
        }
    }

    fn verifying(&self) -> VerifyingKey {
        *self.signing.verifying_key()
    }

    /// A compact ES256 JWS of `claims` with the product's header.
    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// What the product's Java modules mint: `iat`, `nbf`, `exp` only.
    fn java_token(&self) -> String {
        let now = now();
        self.sign(&json!({"iat": now, "nbf": now, "exp": now + 15}))
    }

    /// A token of the strict profile for module type `aud`.
    fn strict_token(&self, aud: &str) -> String {
        let now = now();
        self.sign(&json!({
            "iat": now, "nbf": now, "exp": now + 60, "aud": aud, "jti": format!("test-{now}")
        }))
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The product's Python module's token check.

/// What one verification concluded: the claims of an accepted token, or PyJWT's message.
type Verdict = Result<Value, String>;

/// The token check of the product's AI Core Python module (docs/wire.md): PyJWT 2.1 `jwt.decode`
/// with the header's own `alg` and no `audience`, after the module's own checks that `typ` is
/// `JWT` and a `kid` is present. In PyJWT's order: signature, then `iat`, `nbf`, `exp` (checked
/// when present, no leeway), then `aud`, which with no expected audience refuses any token that
/// carries one ("Invalid audience"). Every verdict is kept for the test to read.
#[derive(Clone)]
struct PythonLikeVerifier {
    /// The one peer key it trusts.
    key: VerifyingKey,
    /// Every verdict, oldest first.
    verdicts: Arc<Mutex<Vec<Verdict>>>,
}

impl PythonLikeVerifier {
    fn new(key: VerifyingKey) -> Self {
        Self {
            key,
            verdicts: Arc::default(),
        }
    }

    fn verdicts(&self) -> Vec<Verdict> {
        self.verdicts.lock().unwrap().clone()
    }

    fn verify(&self, authorization: Option<&str>) -> Verdict {
        let token = authorization
            .and_then(|a| a.strip_prefix("Internal-jwt "))
            .ok_or("no Internal-jwt authorization")?;
        let segments: Vec<&str> = token.split('.').collect();
        let [header, claims, signature] = segments[..] else {
            return Err("Not enough segments".to_owned());
        };
        let json = |segment: &str| -> Result<Value, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(segment)
                .map_err(|_| "Invalid padding")?;
            serde_json::from_slice(&bytes).map_err(|_| "Invalid segment encoding".to_owned())
        };
        let header = json(header)?;
        if header["typ"] != "JWT" {
            return Err("typ is not JWT".to_owned());
        }
        if !header["kid"].is_string() {
            return Err("kid is missing".to_owned());
        }
        if header["alg"] != "ES256" {
            return Err("The specified alg value is not allowed".to_owned());
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or("Signature verification failed")?;
        let input = &token[..token.rfind('.').unwrap_or_default()];
        self.key
            .verify(input.as_bytes(), &signature)
            .map_err(|_| "Signature verification failed")?;
        let claims = json(claims)?;
        let now = now();
        if let Some(iat) = claims.get("iat")
            && !iat.is_i64()
        {
            return Err("Issued At claim (iat) must be an integer.".to_owned());
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf
                .as_i64()
                .ok_or("Not Before claim (nbf) must be an integer.")?;
            if nbf > now {
                return Err("The token is not yet valid (nbf)".to_owned());
            }
        }
        if let Some(exp) = claims.get("exp") {
            let exp = exp
                .as_i64()
                .ok_or("Expiration Time claim (exp) must be an integer.")?;
            if exp <= now {
                return Err("Signature has expired".to_owned());
            }
        }
        if claims.get("aud").is_some() {
            return Err("Invalid audience".to_owned());
        }
        Ok(claims)
    }
}

impl Interceptor for PythonLikeVerifier {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let verdict = self.verify(authorization);
        self.verdicts.lock().unwrap().push(verdict.clone());
        verdict.map(|_| request).map_err(Status::unauthenticated)
    }
}

// ---------------------------------------------------------------------------------------------
// A product module stood in for by a one-method gRPC server.

/// One method of the product's wire.
trait ProductMethod: Send + Sync + 'static {
    /// The full service name (what the router and reflection know it by).
    const SERVICE: &'static str;
    /// The full method path.
    const PATH: &'static str;
    type Request: Message + Default + Send + 'static;
    type Response: Message + Clone + Send + 'static;
}

/// `HeartbeatService.GetStatus`: the fake product engine.
struct GetStatus;

impl ProductMethod for GetStatus {
    const SERVICE: &'static str = "ataccama.dppapi.heartbeat.HeartbeatService";
    const PATH: &'static str = HEARTBEAT;
    type Request = wire::Empty;
    type Response = wire::HeartbeatResponse;
}

/// `RegistryService.RegisterEngine`: the fake product DPM.
struct RegisterEngine;

impl ProductMethod for RegisterEngine {
    const SERVICE: &'static str = "ataccama.dppapi.dpm.registry.RegistryService";
    const PATH: &'static str = REGISTER;
    type Request = wire::RegistrationRequest;
    type Response = wire::RegistrationResponse;
}

/// Serves `M` with a fixed answer and keeps every request it decoded.
struct ProductServer<M: ProductMethod> {
    /// What every call is answered with.
    answer: M::Response,
    /// The requests received (after the verifier let them through).
    received: Arc<Mutex<Vec<M::Request>>>,
}

impl<M: ProductMethod> Clone for ProductServer<M> {
    fn clone(&self) -> Self {
        Self {
            answer: self.answer.clone(),
            received: Arc::clone(&self.received),
        }
    }
}

impl<M: ProductMethod> NamedService for ProductServer<M> {
    const NAME: &'static str = M::SERVICE;
}

/// The unary handler the server hands to `tonic::server::Grpc`.
struct Answer<M: ProductMethod>(ProductServer<M>, PhantomData<M>);

impl<M: ProductMethod> UnaryService<M::Request> for Answer<M> {
    type Response = M::Response;
    type Future = Ready<Result<Response<M::Response>, Status>>;

    fn call(&mut self, request: Request<M::Request>) -> Self::Future {
        self.0.received.lock().unwrap().push(request.into_inner());
        std::future::ready(Ok(Response::new(self.0.answer.clone())))
    }
}

impl<M: ProductMethod, B> tonic::codegen::Service<http::Request<B>> for ProductServer<M>
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != M::PATH {
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        let handler = Answer::<M>(self.clone(), PhantomData);
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<M::Response, M::Request>::default());
            Ok(grpc.unary(handler, request).await)
        })
    }
}

/// A running fake product module on a loopback port.
struct FakeProduct<M: ProductMethod> {
    /// Where it listens.
    port: u16,
    /// Its token check, with the verdicts so far.
    verifier: PythonLikeVerifier,
    /// The requests it accepted.
    received: Arc<Mutex<Vec<M::Request>>>,
}

/// Starts a server for `M` on 127.0.0.1:0 behind `verifier`, answering `answer`.
fn serve_fake<M: ProductMethod>(
    runtime: &tokio::runtime::Runtime,
    verifier: PythonLikeVerifier,
    answer: M::Response,
) -> FakeProduct<M> {
    let server = ProductServer::<M> {
        answer,
        received: Arc::default(),
    };
    let received = Arc::clone(&server.received);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = Server::builder().add_service(InterceptedService::new(server, verifier.clone()));
    runtime
        .spawn(router.serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)));
    FakeProduct {
        port,
        verifier,
        received,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Calls `path` on 127.0.0.1:`port` with `authorization: Internal-jwt <token>`.
async fn call<Req, Resp>(
    port: u16,
    path: &'static str,
    token: &str,
    message: Req,
) -> Result<Resp, Status>
where
    Req: Message + Send + 'static,
    Resp: Message + Default + Send + 'static,
{
    let channel = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Internal-jwt {token}").parse().unwrap(),
    );
    grpc.unary(
        request,
        PathAndQuery::from_static(path),
        ProstCodec::<Req, Resp>::default(),
    )
    .await
    .map(Response::into_inner)
}

/// `RegisterEngine` of `engine_id` at 127.0.0.1:`engine_port` with `constraints` (bytes).
fn register(
    runtime: &tokio::runtime::Runtime,
    dpm_port: u16,
    token: &str,
    engine_id: &str,
    engine_port: u16,
    constraints: Option<Vec<u8>>,
) -> Result<wire::RegistrationResponse, Status> {
    let request = wire::RegistrationRequest {
        engine_id: engine_id.to_owned(),
        address: Some(wire::EngineAddress {
            hostname: "127.0.0.1".to_owned(),
            port: i32::from(engine_port),
        }),
        constraints,
    };
    runtime.block_on(call(dpm_port, REGISTER, token, request))
}

fn about_engine<'a>(event_id: &'a str, engine_id: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| {
        e["eventId"] == event_id
            && (e["engineId"] == engine_id
                || e["engine"].as_str().is_some_and(|s| s.contains(engine_id)))
    }
}

/// Switches a deployment's `token-profile` in a running daemon's file and waits for the reload.
fn switch_profile(daemon: &Daemon, property: &str, from: &str, to: &str) -> usize {
    let mark = daemon.events().len();
    Pair::replace_atomically(
        &daemon.home,
        &format!("{property}={from}"),
        &format!("{property}={to}"),
    );
    daemon.wait_for_after(mark, "deploymentsReloaded", |e| {
        e["eventId"] == "deploymentsReloaded"
    });
    mark
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// Item 1: DPM keeps an engine's constraints as the bytes received and lists them back unchanged;
/// it logs them in the product's text form and `svcid engines --json` shows them decoded.
#[test]
fn constraints_come_back_from_dpm_byte_for_byte() {
    let pair = Pair::linked();
    let dpe_key = ModuleKey::of_home(&pair.dpe);
    let dpm = pair.start_dpm(&[]);
    let runtime = runtime();
    let sent = rich_constraints().encode_to_vec();
    let engine = "product-engine-1";
    let nobody = common::free_port();

    let answer = register(
        &runtime,
        dpm.port(),
        &dpe_key.strict_token("dpm"),
        engine,
        nobody,
        Some(sent.clone()),
    )
    .unwrap();
    assert_eq!(answer.status, 0, "SUCCESS");

    let listed: wire::ListEnginesResponse = runtime
        .block_on(call(
            dpm.port(),
            LIST_ENGINES,
            &dpe_key.strict_token("dpm"),
            wire::Empty {},
        ))
        .unwrap();
    let info = listed
        .engines
        .iter()
        .find(|e| e.engine_id == engine)
        .expect("the engine is listed");
    assert_eq!(info.registered_by, DPE_IDENTITY);
    let kept = info.constraints.as_deref().expect("constraints listed");
    assert!(
        kept == sent.as_slice(),
        "constraints changed on the way:\n sent {sent:?}\n back {kept:?}"
    );
    assert_eq!(wire::Constraints::decode(kept).unwrap(), rich_constraints());

    let logged = dpm.wait_for("registerEngine", about_engine("registerEngine", engine));
    assert_eq!(
        logged["logger_name"],
        "com.ataccama.dpm.registry.EngineRegistryServiceImpl"
    );
    let text = logged["engineConstraints"].as_str().unwrap();
    assert!(text.contains("capabilities: {"), "{text}");
    for key in [
        "tier",
        "spark-version",
        "memory",
        "jdbc.connectionstring",
        "gpu",
        "cores",
        "vendor",
        "eligible",
        "tier-check",
        "LongValueKeyExtractor",
    ] {
        assert!(text.contains(key), "{key} not in {text}");
    }
    let message = logged["message"].as_str().unwrap();
    assert!(
        message.contains("engineConstraints=(requirements: {"),
        "{message}"
    );

    let out = Command::new(common::bin("svcid"))
        .args(["engines", "--json", "--dpm"])
        .arg(format!("127.0.0.1:{}", dpm.port()))
        .arg("--home")
        .arg(&pair.dpe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "svcid engines: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    let engines = listing["engines"].as_array().unwrap();
    let shown = &engines
        .iter()
        .find(|e| e["engineId"] == engine)
        .expect("svcid engines lists the engine")["constraints"];
    let capabilities = &shown["capabilities"];
    assert_eq!(capabilities["cores"]["long"], "16", "{shown}");
    assert_eq!(capabilities["gpu"]["boolean"], true, "{shown}");
    assert_eq!(capabilities["spark-version"]["value"], "3.5", "{shown}");
    assert_eq!(
        capabilities["jdbc.connectionstring"]["pattern"],
        json!({"regex": "jdbc:oracle:.*", "flags": 2}),
        "{shown}"
    );
    assert_eq!(
        capabilities["tier"]["enumeration"]["capabilities"],
        json!([{"value": "gold"}, {"value": "silver"}]),
        "{shown}"
    );
    assert_eq!(
        capabilities["vendor"]["any"],
        json!({"@type": "type.googleapis.com/example.Vendor", "value": STANDARD.encode([0x0a, 0x03, b'a', b'c', b'm'])}),
        "{shown}"
    );
    let memory = capabilities["memory"]["intInterval"].to_string();
    for part in ["1", "64", "CLOSED", "OPEN"] {
        assert!(memory.contains(part), "{part} not in {memory}");
    }
    assert_eq!(
        shown["requirements"]["eligible"]["and"]["requirements"][1]["not"]["requirement"]["long"],
        "3",
        "{shown}"
    );
    let component = &shown["priorities"][0]["components"][0];
    assert_eq!(component["capabilityKey"], "cores", "{shown}");
    assert_eq!(component["extractor"]["@type"], LONG_VALUE_KEY_EXTRACTOR);
    assert_eq!(component["weight"], 1.5);
}

/// Item 2a: DPM's status checks reach an engine whose token check is the Python module's only
/// when the engine's deployment is marked `product`; with the strict profile the engine refuses
/// DPM's tokens ("Invalid audience") and never becomes READY.
#[test]
fn dpm_checks_a_python_like_engine_only_when_its_deployment_is_product() {
    let pair = Pair::linked();
    Pair::append(&pair.dpm, &format!("{DPE_PROFILE}=strict"));
    let dpe_key = ModuleKey::of_home(&pair.dpe);
    let dpm_key = ModuleKey::of_home(&pair.dpm);
    let runtime = runtime();
    let engine = "python-like-engine";
    let fake = serve_fake::<GetStatus>(
        &runtime,
        PythonLikeVerifier::new(dpm_key.verifying()),
        wire::HeartbeatResponse {
            status: 0,
            constraints: None,
            engine_id: engine.to_owned(),
        },
    );
    let dpm = pair.start_dpm(&[]);
    let answer = register(
        &runtime,
        dpm.port(),
        &dpe_key.strict_token("dpm"),
        engine,
        fake.port,
        None,
    )
    .unwrap();
    assert_eq!(answer.status, 0, "SUCCESS");

    // Strict: DPM's token carries aud=dpe, which the Python module refuses.
    let refused = dpm.wait_for(
        "engineDisconnected",
        about_engine("engineDisconnected", engine),
    );
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains("Unauthenticated") && reason.contains("Invalid audience"),
        "{refused}"
    );
    assert!(
        fake.verifier
            .verdicts()
            .iter()
            .all(|v| v.as_ref().err().map(String::as_str) == Some("Invalid audience")),
        "{:?}",
        fake.verifier.verdicts()
    );
    assert!(fake.received.lock().unwrap().is_empty());
    assert!(
        !dpm.events()
            .iter()
            .any(|e| about_engine("setEngineStatus", engine)(e) && e["newStatus"] == "READY"),
        "READY with tokens the engine refused"
    );

    // Product: DPM's tokens carry no aud, the engine accepts them, DPM marks it READY.
    let mark = switch_profile(&dpm, DPE_PROFILE, "strict", "product");
    let ready = dpm.wait_for_after(mark, "READY", |e| {
        about_engine("setEngineStatus", engine)(e) && e["newStatus"] == "READY"
    });
    assert_eq!(
        ready["logger_name"],
        "com.ataccama.dpm.registry.EngineRegistryServiceImpl"
    );
    assert!(!fake.received.lock().unwrap().is_empty());
    let accepted = fake
        .verifier
        .verdicts()
        .into_iter()
        .rev()
        .find_map(Result::ok)
        .expect("an accepted token");
    assert!(accepted.get("aud").is_none(), "{accepted}");
    for claim in ["iat", "nbf", "exp"] {
        assert!(accepted[claim].is_i64(), "{claim} in {accepted}");
    }
}

/// Item 2b: our DPE registers with a DPM whose token check is the Python module's only when the
/// DPE's file marks its DPM deployment `product`; strict registrations are refused.
#[test]
fn dpe_registers_with_a_python_like_dpm_only_when_its_deployment_is_product() {
    let pair = Pair::linked();
    Pair::append(&pair.dpe, &format!("{DPM_PROFILE}=strict"));
    let dpe_key = ModuleKey::of_home(&pair.dpe);
    let runtime = runtime();
    let fake = serve_fake::<RegisterEngine>(
        &runtime,
        PythonLikeVerifier::new(dpe_key.verifying()),
        wire::RegistrationResponse { status: 0 },
    );
    let dpe = pair.start_dpe(fake.port, &[]);

    let refused = dpe.wait_for("Unable to register.", |e| {
        e["eventId"] == "register"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("Unable to register.")
    });
    assert_eq!(refused["code"], "Unauthenticated", "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or("")
            .contains("Invalid audience"),
        "{refused}"
    );
    assert!(fake.received.lock().unwrap().is_empty());

    let mark = switch_profile(&dpe, DPM_PROFILE, "strict", "product");
    let registered = dpe.wait_for_after(mark, "Engine registered.", |e| {
        e["eventId"] == "register"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("Engine registered.")
    });
    assert_eq!(
        registered["logger_name"],
        "com.ataccama.dpe.service.StatusChecker"
    );
    let accepted = fake
        .verifier
        .verdicts()
        .into_iter()
        .rev()
        .find_map(Result::ok)
        .expect("an accepted token");
    assert!(accepted.get("aud").is_none(), "{accepted}");

    // What the engine sent, read with the contract's field numbers.
    let request = fake.received.lock().unwrap().last().cloned().unwrap();
    let engine_id = std::fs::read_to_string(pair.dpe.join("data/engine-id")).unwrap();
    assert_eq!(request.engine_id, engine_id.trim());
    let address = request.address.unwrap();
    assert_eq!(address.hostname, "127.0.0.1");
    assert_eq!(address.port, i32::from(dpe.port()));
    let constraints = wire::Constraints::decode(request.constraints.unwrap().as_slice()).unwrap();
    let capabilities: BTreeMap<String, Option<C>> = constraints
        .capabilities
        .into_iter()
        .map(|e| (e.key, e.value.and_then(|c| c.capability_type)))
        .collect();
    assert_eq!(
        capabilities.get("spark"),
        Some(&Some(C::Value("true".to_owned()))),
        "{capabilities:?}"
    );
}

/// Item 3: a peer minting the product's Java tokens (no aud, no jti) registers with our DPM only
/// when its deployment is marked `product`; a token that does carry aud must still name dpm.
#[test]
fn audience_less_tokens_register_only_from_a_product_deployment() {
    let pair = Pair::linked();
    Pair::append(&pair.dpm, &format!("{DPE_PROFILE}=strict"));
    let dpe_key = ModuleKey::of_home(&pair.dpe);
    let dpm = pair.start_dpm(&[]);
    let runtime = runtime();
    let engine = "java-like-engine";
    let nobody = common::free_port();

    let status = register(
        &runtime,
        dpm.port(),
        &dpe_key.java_token(),
        engine,
        nobody,
        None,
    )
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().starts_with("missing_aud"), "{status:?}");
    let failed = dpm.wait_for("authenticationFailed missing_aud", |e| {
        e["eventId"] == "authenticationFailed" && e["reason"] == "missing_aud"
    });
    assert_eq!(failed["kid"], dpe_key.kid.as_str(), "{failed}");
    assert!(
        !dpm.events()
            .iter()
            .any(about_engine("registerEngine", engine))
    );

    let mark = switch_profile(&dpm, DPE_PROFILE, "strict", "product");
    let answer = register(
        &runtime,
        dpm.port(),
        &dpe_key.java_token(),
        engine,
        nobody,
        None,
    )
    .unwrap();
    assert_eq!(answer.status, 0, "SUCCESS");
    let registered = dpm.wait_for_after(
        mark,
        "registerEngine",
        about_engine("registerEngine", engine),
    );
    assert_eq!(registered["authenticatedUser"], DPE_IDENTITY);

    let status = register(
        &runtime,
        dpm.port(),
        &dpe_key.strict_token("dpe"),
        engine,
        nobody,
        None,
    )
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().starts_with("wrong_aud"), "{status:?}");
}

/// Item 4: DPM's server reflection lists the product's registry service (what `grpcurl list`
/// shows a product user), without a token.
#[test]
fn reflection_lists_the_product_registry_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let runtime = runtime();
    let names = runtime.block_on(async {
        let channel = Endpoint::from_shared(format!("http://127.0.0.1:{}", dpm.port()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = ServerReflectionClient::new(channel)
            .server_reflection_info(tonic::codegen::tokio_stream::iter(vec![request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("not a list of services: {answer:?}");
        };
        list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
    });
    assert!(
        names
            .iter()
            .any(|n| n == "ataccama.dppapi.dpm.registry.RegistryService"),
        "{names:?}"
    );
}
