//! Bounds on the connections of a listening port, so strangers who never present a token cannot
//! exhaust its file descriptors or memory (the gRPC world's `MAX_CONNECTION_IDLE`, Envoy's
//! connection limits). Both ports of a daemon are bounded here: gRPC by
//! `ataccama.server.grpc.*`, HTTP by `server.*` ([`ConnectionBounds`]):
//!
//! - at most `max-connections` at once, and `max-connections-per-peer` from one address: a
//!   connection over either is closed at accept, counted and logged (rate-limited);
//! - a connection that starts no call (HTTP: no request) within `first-call-timeout` is closed
//!   (a peer that sends only the HTTP/2 preface, or its first headers a byte at a time);
//! - a connection with no call in flight for `max-connection-idle` is closed;
//! - a write that makes no progress for `write-timeout` closes the connection (a peer that never
//!   reads its answers cannot keep one, and its buffers, forever).
//!
//! [`Gate`] admits connections; each admitted one is a [`Guarded`] stream whose reads and writes
//! fail with `TimedOut` once a bound is passed, which makes hyper drop the connection (no worker
//! is held: the bound is a timer polled by the connection's own task). gRPC calls are counted by
//! [`CallGuard::of`], which the authentication layer takes for every request, so health checks
//! count as calls too: an idle bound is about silence, not about trust. HTTP requests are
//! counted by the actuator's server through [`svcid_actuator::http::Connection`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use svcid_actuator::instruments::{ClosedBy, ConnectionMetrics};
use svcid_config::ConnectionBounds;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How often refused connections are summarised in the log, at most.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Admits connections within the configured bounds.
#[derive(Debug)]
pub struct Gate {
    /// `max-connections`.
    max_total: usize,
    /// `max-connections-per-peer`.
    max_per_peer: usize,
    /// `first-call-timeout`.
    first_call: Duration,
    /// `max-connection-idle`.
    idle: Duration,
    /// `write-timeout`.
    write_stall: Duration,
    /// Connections held, by peer address.
    held: Mutex<Held>,
    /// Counts for `/actuator/prometheus`.
    metrics: Arc<ConnectionMetrics>,
    /// Refusals since the last `connectionsRefused` line, and when that line was written.
    refusals: Mutex<(u64, Option<Instant>)>,
}

/// The connections held, in total and by peer address.
#[derive(Debug, Default)]
struct Held {
    /// All of them.
    total: usize,
    /// By peer address (entries removed at zero, so the map is bounded by `total`).
    by_peer: HashMap<IpAddr, usize>,
}

impl Gate {
    /// A gate with `bounds`, counting into `metrics` (which also names the port in logs).
    pub fn new(bounds: &ConnectionBounds, metrics: Arc<ConnectionMetrics>) -> Arc<Self> {
        Arc::new(Self {
            max_total: bounds.max_connections,
            max_per_peer: bounds.max_connections_per_peer,
            first_call: bounds.first_call_timeout,
            idle: bounds.max_connection_idle,
            write_stall: bounds.write_timeout,
            held: Mutex::default(),
            metrics,
            refusals: Mutex::default(),
        })
    }

    /// Admits a connection from `peer`, or says which limit it is over.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admission, Limit> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.total >= self.max_total {
            return Err(Limit::Total);
        }
        let from_peer = held.by_peer.entry(peer).or_insert(0);
        if *from_peer >= self.max_per_peer {
            return Err(Limit::PerPeer);
        }
        *from_peer += 1;
        held.total += 1;
        self.metrics.opened();
        Ok(Admission {
            gate: Arc::clone(self),
            peer,
        })
    }

    /// Counts a refusal and logs at most one summary line per [`REFUSAL_LOG_INTERVAL`].
    fn refused(&self, peer: SocketAddr, limit: Limit) {
        self.metrics.refused(limit == Limit::PerPeer);
        let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        refusals.0 += 1;
        let now = Instant::now();
        if refusals
            .1
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL)
        {
            tracing::warn!(
                eventId = crate::events::CONNECTIONS_REFUSED,
                port = self.metrics.port().as_str(),
                peer = %peer.ip(),
                limit = limit.as_str(),
                refused = refusals.0,
                "Connections over the limit were closed at accept."
            );
            *refusals = (0, Some(now));
        }
    }

    /// Wraps an accepted stream, or closes it when it is over a limit.
    pub fn guard(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) -> Option<Guarded> {
        match self.admit(peer.ip()) {
            Ok(admission) => Some(Guarded::new(stream, admission)),
            Err(limit) => {
                self.refused(peer, limit);
                None
            }
        }
    }
}

/// Which bound refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    /// `max-connections`.
    Total,
    /// `max-connections-per-peer`.
    PerPeer,
}

impl Limit {
    fn as_str(self) -> &'static str {
        match self {
            Limit::Total => "total",
            Limit::PerPeer => "peer",
        }
    }
}

/// A held place at the gate; given back when the connection ends.
#[derive(Debug)]
struct Admission {
    /// The gate that admitted it.
    gate: Arc<Gate>,
    /// The peer it counts against.
    peer: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut held = self
            .gate
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.total = held.total.saturating_sub(1);
        if let Some(count) = held.by_peer.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                held.by_peer.remove(&self.peer);
            }
        }
        self.gate.metrics.ended();
    }
}

/// What a connection's calls tell its timer.
#[derive(Debug)]
pub struct Activity {
    /// Calls in flight.
    calls: AtomicUsize,
    /// Whether a call ever started.
    called: AtomicBool,
    /// When the last call started or ended, in milliseconds since `epoch`.
    last_change_ms: AtomicU64,
    /// The connection's start.
    epoch: Instant,
}

impl Activity {
    fn new() -> Self {
        Self {
            calls: AtomicUsize::new(0),
            called: AtomicBool::new(false),
            last_change_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_change_ms.store(ms, Ordering::Relaxed);
    }

    fn last_change(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_change_ms.load(Ordering::Relaxed))
    }
}

/// Counts one call on its connection while it lives.
#[derive(Debug)]
pub struct CallGuard(Arc<Activity>);

impl CallGuard {
    /// The guard of `request`'s call, when it came over a [`Guarded`] connection.
    pub fn of<B>(request: &http::Request<B>) -> Option<Self> {
        let info = GuardedInfo::of(request.extensions())?;
        Some(Self::start(Arc::clone(&info.activity)))
    }

    /// Counts a call on `activity` until dropped.
    fn start(activity: Arc<Activity>) -> Self {
        activity.calls.fetch_add(1, Ordering::Relaxed);
        activity.called.store(true, Ordering::Relaxed);
        activity.touch();
        Self(activity)
    }
}

/// Counts the HTTP requests of a guarded connection (the actuator's server calls it).
#[derive(Debug)]
pub struct Requests(Arc<Activity>);

impl svcid_actuator::http::Requests for Requests {
    type InFlight = CallGuard;

    fn started(&self) -> CallGuard {
        CallGuard::start(Arc::clone(&self.0))
    }
}

impl svcid_actuator::http::Connection for Guarded {
    type Requests = Requests;

    fn requests(&self) -> Requests {
        Requests(Arc::clone(&self.activity))
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What tonic hands the services about a guarded connection: the TCP details, and its activity
/// for [`CallGuard::of`].
#[derive(Clone, Debug)]
pub struct GuardedInfo {
    /// Local and remote address.
    pub tcp: TcpConnectInfo,
    /// The connection's calls.
    activity: Arc<Activity>,
}

impl GuardedInfo {
    /// The info of the guarded connection a request came over (through TLS or not).
    pub fn of(extensions: &http::Extensions) -> Option<&GuardedInfo> {
        extensions.get::<GuardedInfo>().or_else(|| {
            extensions
                .get::<tonic::transport::server::TlsConnectInfo<GuardedInfo>>()
                .map(tonic::transport::server::TlsConnectInfo::get_ref)
        })
    }
}

/// An admitted TCP connection with its bounds.
#[derive(Debug)]
pub struct Guarded {
    /// The connection.
    stream: TcpStream,
    /// Its place at the gate.
    admission: Admission,
    /// Its calls.
    activity: Arc<Activity>,
    /// When the first-call or idle bound is next looked at.
    timer: Pin<Box<Sleep>>,
    /// While a write is blocked: when `write-timeout` runs out.
    stalled: Option<Pin<Box<Sleep>>>,
    /// Set once a bound closed it (reads and writes then fail at once).
    closed: bool,
}

impl Guarded {
    fn new(stream: TcpStream, admission: Admission) -> Self {
        let first_call = admission.gate.first_call;
        Self {
            stream,
            admission,
            activity: Arc::new(Activity::new()),
            timer: Box::pin(tokio::time::sleep(first_call)),
            stalled: None,
            closed: false,
        }
    }

    /// The bound passed, if any; otherwise arms the timer for the bound that applies now: the
    /// first-call deadline until a call started, then the idle deadline after the last call
    /// ended (moved on by every call), and a look again one idle period on while calls run.
    fn over_bound(&mut self, cx: &mut Context<'_>) -> Option<ClosedBy> {
        let (first_call, idle) = (self.admission.gate.first_call, self.admission.gate.idle);
        loop {
            let activity = &self.activity;
            let now = Instant::now();
            let deadline = if activity.calls.load(Ordering::Relaxed) > 0 {
                // Busy: nothing can pass until the calls end; look again later.
                let armed = self.timer.deadline().into_std();
                if armed > now { armed } else { now + idle }
            } else {
                let (deadline, by) = if activity.called.load(Ordering::Relaxed) {
                    (activity.last_change() + idle, ClosedBy::Idle)
                } else {
                    (activity.epoch + first_call, ClosedBy::NoCall)
                };
                if now >= deadline {
                    return Some(by);
                }
                deadline
            };
            let deadline = tokio::time::Instant::from_std(deadline);
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return None;
            }
        }
    }

    /// Marks the connection closed by `by`: counted, logged at DEBUG; reads and writes fail.
    fn close(&mut self, by: ClosedBy) {
        self.closed = true;
        self.admission.gate.metrics.closed(by);
        tracing::debug!(
            eventId = crate::events::CONNECTION_CLOSED,
            port = self.admission.gate.metrics.port().as_str(),
            peer = %self.admission.peer,
            reason = by.as_str(),
            "Connection closed by a bound."
        );
    }

    /// Runs a write; while it stays blocked, `write-timeout` runs, and once it has run out the
    /// connection is closed. Any bytes written (or an error) stop the clock.
    fn bounded_write(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.closed {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        match write(Pin::new(&mut self.stream), cx) {
            Poll::Pending => {
                let stall = self.admission.gate.write_stall;
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if stalled.as_mut().poll(cx).is_ready() {
                    self.stalled = None;
                    self.close(ClosedBy::WriteStalled);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the peer read nothing for write-timeout",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl Connected for Guarded {
    type ConnectInfo = GuardedInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        GuardedInfo {
            tcp: self.stream.connect_info(),
            activity: Arc::clone(&self.activity),
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.closed
            && let Some(by) = self.over_bound(cx)
        {
            self.close(by);
        }
        if self.closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection bound passed",
            )));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .bounded_write(cx, |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TCP stream buffers nothing: its flush is always ready and says nothing of progress,
        // so it neither starts nor stops the write-timeout clock.
        if self.closed {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .bounded_write(cx, |stream, cx| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepts connections on `listener` through `gate` until the receiver is dropped: admitted ones
/// come out guarded, the others are closed at once.
pub fn incoming(
    listener: TcpListener,
    gate: Arc<Gate>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Guarded>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::debug!(eventId = crate::events::ACCEPT_FAILED, error = %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(guarded) = gate.guard(stream, peer) else {
                continue;
            };
            let _ = guarded.stream.set_nodelay(true);
            if tx.send(Ok(guarded)).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Polls a read of `stream` to completion; a test helper for the timer logic.
#[cfg(test)]
async fn read_some(stream: &mut Guarded) -> io::Result<usize> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 64];
    stream.read(&mut buf).await
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits(total: usize, per_peer: usize, first_call_ms: u64, idle_ms: u64) -> ConnectionBounds {
        ConnectionBounds {
            max_connections: total,
            max_connections_per_peer: per_peer,
            first_call_timeout: Duration::from_millis(first_call_ms),
            max_connection_idle: Duration::from_millis(idle_ms),
            write_timeout: Duration::from_millis(200),
        }
    }

    async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream, SocketAddr) {
        let address = listener.local_addr().unwrap();
        let client = TcpStream::connect(address).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        (client, server, peer)
    }

    #[tokio::test]
    async fn limits_refuse_over_total_and_per_peer_and_give_places_back() {
        let metrics = Arc::new(ConnectionMetrics::default());
        let gate = Gate::new(&limits(3, 2, 10_000, 10_000), Arc::clone(&metrics));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Limit::PerPeer);
        let _third = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).unwrap_err(), Limit::Total);
        assert_eq!(metrics.open(), 3);
        drop(first);
        assert_eq!(metrics.open(), 2);
        let _again = gate.admit(a).unwrap();
    }

    #[tokio::test]
    async fn a_connection_without_a_call_is_closed_after_the_first_call_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = Arc::new(ConnectionMetrics::default());
        let gate = Gate::new(&limits(10, 10, 100, 10_000), Arc::clone(&metrics));
        let (_client, server, peer) = pair(&listener).await;
        let mut guarded = gate.guard(server, peer).unwrap();
        let started = Instant::now();
        let error = read_some(&mut guarded).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(90));
        drop(guarded);
        assert_eq!(metrics.open(), 0);
    }

    #[tokio::test]
    async fn a_connection_without_a_call_in_flight_is_closed_after_the_idle_bound() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = Arc::new(ConnectionMetrics::default());
        let gate = Gate::new(&limits(10, 10, 10_000, 300), Arc::clone(&metrics));
        let (_client, server, peer) = pair(&listener).await;
        let mut guarded = gate.guard(server, peer).unwrap();
        // A call comes and goes at once; the connection is idle from then on.
        drop(CallGuard::start(Arc::clone(&guarded.activity)));
        let started = Instant::now();
        let error = read_some(&mut guarded).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(2),
            "closed after {took:?}"
        );
    }

    #[tokio::test]
    async fn a_write_the_peer_never_reads_is_cut_off_after_the_write_timeout() {
        use tokio::io::AsyncWriteExt as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = Arc::new(ConnectionMetrics::default());
        let gate = Gate::new(&limits(10, 10, 10_000, 10_000), Arc::clone(&metrics));
        // The client never reads: the socket buffers fill and the writes block.
        let (_client, server, peer) = pair(&listener).await;
        let mut guarded = gate.guard(server, peer).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let started = Instant::now();
        let error = loop {
            match guarded.write_all(&chunk).await {
                Ok(()) => assert!(started.elapsed() < Duration::from_secs(10), "never blocked"),
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let text = {
            let mut out = svcid_actuator::metrics::Exposition::new();
            metrics.render(&mut out);
            out.into_text()
        };
        assert!(
            text.contains("svcid_grpc_connections_closed_total{reason=\"write_stalled\"} 1"),
            "{text}"
        );
    }
}
