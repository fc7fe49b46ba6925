//! Server bootstrap shared by both daemons: the runtime with the product's thread names, the
//! standard health and reflection services, the transport limits, binding, and shutdown on
//! SIGINT / SIGTERM.

use std::sync::atomic::{AtomicUsize, Ordering};

use svcid_config::GrpcLimits;
use tokio::net::TcpListener;
use tonic::transport::Server;

/// A multi-threaded runtime whose workers are named like the product's request threads
/// (`grpc-default-executor-<n>`), so `thread_name` in the logs reads as ops staff expect.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name_fn(|| {
            format!(
                "grpc-default-executor-{}",
                NEXT.fetch_add(1, Ordering::Relaxed)
            )
        })
        .build()
}

/// Runs scheduled work (status checks, registration) on its own thread named `scheduling-1`, as the
/// product does, on a single-threaded runtime. The returned handle joins the thread.
pub fn spawn_scheduler<F>(work: F) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("scheduling-1".to_owned())
        .spawn(move || runtime.block_on(work))
}

/// A tonic server builder with the configured transport limits (`ataccama.server.grpc.*`):
/// concurrent streams per connection, the HTTP/2 header list size (oversized metadata is refused
/// by hyper before the authentication layer sees it), the per-call timeout and keep-alive pings
/// that close connections to peers that stopped answering. The message size is a per-service
/// setting: see [`GrpcLimits::max_message_size`] and each service's
/// `max_decoding_message_size`.
pub fn limited(limits: &GrpcLimits) -> Server {
    Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_header_list_size(limits.max_metadata_size)
        .timeout(limits.request_timeout)
        .http2_keepalive_interval(limits.keep_alive_time)
        .http2_keepalive_timeout(Some(limits.keep_alive_timeout))
}

/// Opens the gRPC listener. Port 0 picks a free port; the caller logs [`TcpListener::local_addr`].
pub async fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    svcid_actuator::http::listen(host, port).await
}

/// The gRPC reflection services (v1 and v1alpha, for older grpcurl) over svcid's protocol.
pub fn reflection() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(svcid_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(svcid_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    Ok((v1, v1alpha))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed the daemon still stops on SIGTERM.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// The router every daemon serves: its limits, the authentication layer, the services both
/// daemons offer (health, reflection, `WhoAmI`) and the module's own `services`. Each shared
/// service gets the same message limit as the module's — a larger request is refused with
/// RESOURCE_EXHAUSTED before it is decoded (after the token check, which reads no body).
pub fn router<H>(
    limits: &GrpcLimits,
    auth: crate::AuthLayer,
    module: &str,
    health: tonic_health::pb::health_server::HealthServer<H>,
    services: tonic::service::Routes,
) -> Result<DaemonRouter, tonic_reflection::server::Error>
where
    H: tonic_health::pb::health_server::Health,
{
    let max = limits.max_message_size;
    let (reflection_v1, reflection_v1alpha) = reflection()?;
    let routes = services
        .add_service(
            health
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            reflection_v1
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            reflection_v1alpha
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            crate::WhoAmI::server(module)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
    Ok(limited(limits).layer(auth).add_routes(routes))
}

/// The router of a daemon: every service behind the authentication layer.
pub type DaemonRouter = tonic::transport::server::Router<
    tower::layer::util::Stack<crate::AuthLayer, tower::layer::util::Identity>,
>;

/// Serves `router` on the connections of `listener` that `gate` admits, through the port's TLS
/// when it has one, until `shutdown`.
pub async fn serve(
    router: DaemonRouter,
    listener: TcpListener,
    gate: std::sync::Arc<crate::connections::Gate>,
    tls: Option<std::sync::Arc<crate::tls::LiveServerTls>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let admitted = crate::connections::incoming(listener, gate);
    match tls {
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(crate::tls::incoming(admitted, tls), shutdown)
                .await
        }
        None => {
            router
                .serve_with_incoming_shutdown(admitted, shutdown)
                .await
        }
    }
}
