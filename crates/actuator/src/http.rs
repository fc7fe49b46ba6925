//! The actuator's HTTP/1.1 server: `GET` (and `HEAD`) of `/actuator`, `/actuator/health`,
//! `/actuator/health/<component>`, `/actuator/prometheus` and `/actuator/info`; nothing else.
//!
//! Built on hyper directly (already in the dependency tree through tonic) rather than a web
//! framework: four read-only routes need no router, and hyper exposes the limits that matter on
//! a port anyone on the network can reach: request headers must arrive within
//! [`HEADER_READ_TIMEOUT`] (a slow client cannot pin a connection), at most [`MAX_CONNECTIONS`]
//! connections are served at once (the rest wait in the kernel's backlog), request bodies are
//! never read, and every answer is computed from atomics and short locks.
//!
//! The endpoints need no token, like Spring Boot's health and Prometheus endpoints on a
//! management port: probes and Prometheus scrapers cannot mint svcid tokens, and nothing served
//! here is secret (statuses, counts, public key fingerprints). Limit who can reach the port with
//! `server.address` or a firewall. Each request is logged at DEBUG as `actuatorRequest`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::Actuator;

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Prometheus' text format, version 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The JSON media type Spring Boot Actuator answers with.
pub const ACTUATOR_JSON: &str = "application/vnd.spring-boot.actuator.v3+json";

/// Opens a listener on `address:port` (`localhost` means the IPv4 loopback, as Spring reads it);
/// port 0 picks a free port (read it from the listener). Both daemons' ports open through here.
pub async fn listen(address: &str, port: u16) -> std::io::Result<TcpListener> {
    let address = if address == "localhost" {
        "127.0.0.1"
    } else {
        address
    };
    TcpListener::bind((address, port)).await
}

/// Serves `actuator` on `listener` until `shutdown` resolves; then open connections are closed
/// (every answer is a snapshot; nothing is lost by cutting a scrape short).
pub async fn serve(
    actuator: Arc<Actuator>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A failed accept (e.g. too many open files) must not end the server.
                Err(error) => {
                    tracing::debug!(eventId = "actuatorAcceptFailed", error = %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let actuator = Arc::clone(&actuator);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let actuator = Arc::clone(&actuator);
                async move { Ok::<_, Infallible>(handle(&actuator, &request)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
        // Reap finished connections so the set does not grow with the server's lifetime.
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
}

/// Answers one request and logs it at DEBUG.
fn handle(actuator: &Actuator, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let response = respond(actuator, request.method(), request.uri().path());
    tracing::debug!(
        eventId = "actuatorRequest",
        method = %request.method(),
        path = %printable_path(request.uri().path()),
        status = response.status().as_u16(),
        "Actuator request."
    );
    response
}

/// The answer to `method path`, without any I/O: what the routes are.
pub fn respond(actuator: &Actuator, method: &Method, path: &str) -> Response<Full<Bytes>> {
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
    let path = path.strip_suffix('/').unwrap_or(path);
    match path {
        "/actuator" => json(StatusCode::OK, &links()),
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
            None => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"status": 404, "error": "Not Found", "path": printable_path(path)}),
            ),
        },
    }
}

/// The `/actuator` discovery document, as Spring Boot shapes it.
fn links() -> serde_json::Value {
    let link = |path: &str| serde_json::json!({"href": path, "templated": false});
    serde_json::json!({"_links": {
        "self": link("/actuator"),
        "health": link("/actuator/health"),
        "health-path": {"href": "/actuator/health/{*path}", "templated": true},
        "prometheus": link("/actuator/prometheus"),
        "info": link("/actuator/info"),
    }})
}

fn code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    text(status, ACTUATOR_JSON, body.to_string())
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Every answer is a snapshot of live state.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A request path for logs and error bodies: at most 128 characters, control characters escaped
/// (it comes from whoever connected).
fn printable_path(path: &str) -> String {
    let mut out = String::new();
    for (count, c) in path.chars().enumerate() {
        if count == 128 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use http_body_util::BodyExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::health::Component;

    fn actuator(up: bool) -> Actuator {
        Actuator::new("dpe", "0.1.0")
            .health("registration", move || Component::up_if(up))
            .info("keys", || serde_json::json!({"signing": {"kid": "k"}}))
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
        assert!(
            body(respond(&up, &Method::GET, "/actuator"))
                .await
                .contains("/actuator/prometheus")
        );
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
    async fn serves_over_tcp_and_stops_on_shutdown() {
        let listener = listen("127.0.0.1", 0).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(Arc::new(actuator(false)), listener, async {
            let _ = stopped.await;
        }));
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
