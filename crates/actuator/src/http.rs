//! The HTTP port's server: `GET` (and `HEAD`) of `/actuator`, `/actuator/health`,
//! `/actuator/health/<component>`, `/actuator/prometheus` and `/actuator/info`, and the
//! operations console's paths (`/`, `/console…`, see [`crate::console`]); nothing else.
//!
//! Built on hyper directly (already in the dependency tree through tonic) rather than a web
//! framework: four read-only routes need no router. The server serves the [`Connection`]s it is
//! handed: the daemons admit them through the same connection gate as their gRPC port
//! (`svcid_grpc::connections`: a cap in total and per peer, the first request within
//! `server.connection-timeout`, idle connections closed, writes that stall cut off), telling the
//! gate when a request is in flight through [`Connection::requests`]. Request bodies are never
//! read, and every answer is computed from atomics and short locks.
//!
//! Without a [`crate::guard`] the endpoints need no token, like Spring Boot's health and Prometheus
//! endpoints on a management port: nothing served here is secret (statuses, counts, public key
//! fingerprints), and who can reach the port is limited with `server.address` or a firewall. A
//! daemon with people configured puts a guard in front, which asks for a token or a login where
//! its rules say (docs/operations.md). Each request is logged at DEBUG as `actuatorRequest`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::Actuator;
use crate::guard::{Admission, Head, route_path};
use crate::response::text;

/// Prometheus' text format, version 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The JSON media type Spring Boot Actuator answers with.
pub const ACTUATOR_JSON: &str = "application/vnd.spring-boot.actuator.v3+json";

/// The queue of connections the kernel completes before the server accepts them: asked as long
/// as can be, the kernel caps it at `net.core.somaxconn` (4096 on current Linux), the length
/// Netty, the product's server, asks for. Tokio's own `bind` asks for 1024: when 5,000 engines
/// reconnected at once (a DPM restart), the connects past it were dropped and waited for TCP's
/// SYN retransmits, 1, 3 and 7 s later (BENCHMARKS.md, the registration storm).
const LISTEN_BACKLOG: u32 = 65_535;

/// Opens a listener on `address:port` (`localhost` means the IPv4 loopback, as Spring reads it);
/// port 0 picks a free port (read it from the listener). Both daemons' ports open through here.
/// Each address the name resolves to is tried in turn, as the standard library's `bind` does.
pub async fn listen(address: &str, port: u16) -> std::io::Result<TcpListener> {
    let address = if address == "localhost" {
        "127.0.0.1"
    } else {
        address
    };
    let mut last_error = None;
    for candidate in tokio::net::lookup_host((address, port)).await? {
        match listen_on(candidate) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address} resolves to no address"),
        )
    }))
}

/// A listener on one socket address, with the address reusable at once after a restart (as
/// tokio's `bind` sets it) and [`LISTEN_BACKLOG`].
fn listen_on(address: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A connection the server is handed: a byte stream that tells whoever bounds it when a request
/// is in flight.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Counts this connection's requests.
    type Requests: Requests;

    /// The counter of this connection's requests.
    fn requests(&self) -> Self::Requests;
}

/// Counts the requests of one connection: [`Requests::started`] is called when a request's
/// headers have arrived, and what it returns is dropped once the answer is ready.
pub trait Requests: Send + Sync + 'static {
    /// Held while a request is in flight.
    type InFlight: Send + 'static;

    /// A request started.
    fn started(&self) -> Self::InFlight;
}

/// No counting: a bare TCP connection, for callers that bound connections otherwise (tests).
impl Requests for () {
    type InFlight = ();

    fn started(&self) {}
}

impl Connection for TcpStream {
    type Requests = ();

    fn requests(&self) {}
}

/// Serves `actuator` on the connections received from `connections` until `shutdown` resolves
/// or the sender is dropped; then open connections are closed (every answer is a snapshot;
/// nothing is lost by cutting a scrape short).
pub async fn serve<C: Connection>(
    actuator: Arc<Actuator>,
    mut connections: mpsc::Receiver<io::Result<C>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let connection = tokio::select! {
            () = &mut shutdown => break,
            next = connections.recv() => match next {
                Some(Ok(connection)) => connection,
                Some(Err(_)) => continue,
                None => break,
            },
        };
        let actuator = Arc::clone(&actuator);
        let requests = Arc::new(connection.requests());
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let in_flight = requests.started();
                let actuator = Arc::clone(&actuator);
                async move {
                    let response = handle(&actuator, request).await;
                    drop(in_flight);
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(connection), service)
                .await;
        });
        // Reap finished connections so the set does not grow with the server's lifetime.
        while tasks.try_join_next().is_some() {}
    }
    tasks.abort_all();
}

/// Answers one request (asking the guard first, when there is one) and logs it at DEBUG.
async fn handle(actuator: &Actuator, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let response = match actuator.guard() {
        None => respond(actuator, request.method(), target),
        Some(guard) => {
            let head = Head::new(request.method().clone(), target, request.headers().clone());
            match guard.admit(&head).await {
                Admission::Pass { viewer } => {
                    respond_to(actuator, request.method(), target, viewer.as_ref())
                }
                Admission::Answer(response) => response,
            }
        }
    };
    tracing::debug!(
        eventId = crate::events::ACTUATOR_REQUEST,
        method = %request.method(),
        path = %printable_path(request.uri().path()),
        status = response.status().as_u16(),
        "Actuator request."
    );
    response
}

/// The answer to `method path` (`path` may end in `?query`), without any I/O: what the routes are.
pub fn respond(actuator: &Actuator, method: &Method, path: &str) -> Response<Full<Bytes>> {
    respond_to(actuator, method, path, None)
}

/// [`respond`] for a request whose guard named who is looking (`viewer`, shown on the console).
pub fn respond_to(
    actuator: &Actuator,
    method: &Method,
    path: &str,
    viewer: Option<&serde_json::Value>,
) -> Response<Full<Bytes>> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if method != Method::GET && method != Method::HEAD {
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"status": 405, "error": "Method Not Allowed", "path": printable_path(path)}),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = route_path(path);
    match path {
        "/actuator" => json(StatusCode::OK, &links(actuator.serves_console())),
        "/actuator/health" => {
            let (status, report) = actuator.health_report();
            json(code(status.http_code()), &report)
        }
        "/actuator/prometheus" => text(
            StatusCode::OK,
            PROMETHEUS_CONTENT_TYPE,
            actuator.prometheus(),
        ),
        "/actuator/info" => json(StatusCode::OK, &actuator.info_report()),
        _ => match path
            .strip_prefix("/actuator/health/")
            .and_then(|name| actuator.component(name))
        {
            Some(component) => json(code(component.status.http_code()), &component.to_json()),
            None => crate::console::respond_to(actuator, path, query, viewer).unwrap_or_else(|| {
                json(
                    StatusCode::NOT_FOUND,
                    &serde_json::json!({"status": 404, "error": "Not Found", "path": printable_path(path)}),
                )
            }),
        },
    }
}

/// The `/actuator` discovery document, as Spring Boot shapes it, plus the console on the same
/// port when it is served.
fn links(console: bool) -> serde_json::Value {
    let link = |path: &str| serde_json::json!({"href": path, "templated": false});
    let mut document = serde_json::json!({"_links": {
        "self": link("/actuator"),
        "health": link("/actuator/health"),
        "health-path": {"href": "/actuator/health/{*path}", "templated": true},
        "prometheus": link("/actuator/prometheus"),
        "info": link("/actuator/info"),
    }});
    if console && let Some(links) = document["_links"].as_object_mut() {
        links.insert("console".to_owned(), link(crate::console::CONSOLE_PATH));
    }
    document
}

fn code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    text(status, ACTUATOR_JSON, body.to_string())
}

/// A request path for logs and error bodies: at most 128 characters, control characters escaped
/// (it comes from whoever connected).
fn printable_path(path: &str) -> String {
    svcid_printable::excerpt(path, 128)
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt as _;
    use hyper::header::CONTENT_TYPE;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::health::Component;

    fn actuator(up: bool) -> Actuator {
        Actuator::new("dpe", "0.1.0")
            .health("registration", move || Component::up_if(up))
            .info("keys", || serde_json::json!({"signing": {"kid": "k"}}))
    }

    /// Accepts every connection on `listener` into a channel for [`serve`], unbounded (the
    /// daemons admit connections through their gate instead).
    fn accept_all(listener: TcpListener) -> mpsc::Receiver<io::Result<TcpStream>> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = tx.closed() => return,
                };
                if tx.send(accepted.map(|(stream, _)| stream)).await.is_err() {
                    return;
                }
            }
        });
        rx
    }

    async fn body(response: Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn routes_answer_read_only_with_spring_codes() {
        let up = actuator(true);
        let down = actuator(false);
        let response = respond(&up, &Method::GET, "/actuator/health");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[CONTENT_TYPE], ACTUATOR_JSON);
        assert!(body(response).await.contains("\"status\":\"UP\""));
        assert_eq!(
            respond(&down, &Method::GET, "/actuator/health").status(),
            503
        );
        assert_eq!(
            respond(&down, &Method::GET, "/actuator/health/registration").status(),
            503
        );
        assert_eq!(
            respond(&up, &Method::HEAD, "/actuator/health/").status(),
            200
        );
        let response = respond(&up, &Method::GET, "/actuator/prometheus");
        assert_eq!(response.headers()[CONTENT_TYPE], PROMETHEUS_CONTENT_TYPE);
        assert!(body(response).await.contains("svcid_build_info"));
        assert!(
            body(respond(&up, &Method::GET, "/actuator/info"))
                .await
                .contains("\"kid\":\"k\"")
        );
        let index = body(respond(&up, &Method::GET, "/actuator")).await;
        assert!(index.contains("/actuator/prometheus"), "{index}");
        assert!(index.contains(r#""console":{"href":"/console""#), "{index}");
        let without_console = actuator(true).console_enabled(false);
        let index = body(respond(&without_console, &Method::GET, "/actuator")).await;
        assert!(!index.contains("/console"), "{index}");
        assert_eq!(respond(&up, &Method::GET, "/actuator/env").status(), 404);
        assert_eq!(
            respond(&up, &Method::GET, "/actuator/health/x").status(),
            404
        );
        let refused = respond(&up, &Method::POST, "/actuator/health");
        assert_eq!(refused.status(), 405);
        assert_eq!(refused.headers()[ALLOW], "GET, HEAD");
    }

    #[tokio::test]
    async fn more_connections_wait_to_be_accepted_than_tokios_default_queue_holds() {
        // Nobody accepts: every connect completes into the kernel's queue, up to its length.
        // Tokio's `bind` queues 1024; past that a connect's SYN is dropped and it times out.
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(1024);
        // Each waiting connect holds a descriptor: stay well under this process's limit.
        let open_files: usize = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| {
                let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
                line.split_whitespace().nth(3)?.parse().ok()
            })
            .unwrap_or(1024);
        let waiting = somaxconn.min(1100).min(open_files.saturating_sub(256));
        let listener = listen("127.0.0.1", 0).await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut connects = JoinSet::new();
        for _ in 0..waiting {
            connects.spawn(tokio::time::timeout(
                Duration::from_secs(2),
                TcpStream::connect(address),
            ));
        }
        let mut connected = Vec::with_capacity(waiting);
        while let Some(done) = connects.join_next().await {
            if let Ok(Ok(Ok(stream))) = done {
                connected.push(stream);
            }
        }
        assert_eq!(
            connected.len(),
            waiting,
            "connects completed into the queue"
        );
    }

    #[tokio::test]
    async fn serves_over_tcp_and_stops_on_shutdown() {
        let listener = listen("127.0.0.1", 0).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            Arc::new(actuator(false)),
            accept_all(listener),
            async {
                let _ = stopped.await;
            },
        ));
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /actuator/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\"status\":\"DOWN\""), "{answer}");
        // An idle keep-alive connection must not hold the shutdown up.
        let _idle = tokio::net::TcpStream::connect(address).await.unwrap();
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
