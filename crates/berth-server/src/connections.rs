//! The HTTP listener: accepting TCP connections and serving HTTP/1.1 on them with hyper, with the
//! limits that keep slow and idle clients from taking the server down.
//!
//! * A connection waits for its first request at most `header_timeout`, and a request's head
//!   must be complete `header_timeout` after its first byte; a kept-alive connection waits at
//!   most `idle_timeout` for the next request. hyper's own `header_read_timeout` is not used: it
//!   also runs while a kept-alive connection waits, so idle connections could not get a timeout
//!   of their own (nginx's `client_header_timeout` and `keepalive_timeout`).
//! * A request body must be complete `body_timeout` after the head (a whole-body deadline, not a
//!   gap between reads: a client sending a byte a second would otherwise never be cut off). The
//!   request is then answered 408 and the connection closed.
//! * Writing an answer may stall at most `send_timeout` on a client that does not read it.
//! * At most `max_connections` are open. At the cap Berth first closes the connection that has
//!   waited longest without sending anything (as nginx reuses idle connections), else stops
//!   accepting until one closes: the kernel's backlog holds the newcomers, and `/healthz` keeps
//!   answering however many idle clients connect. The default cap is derived from the open-file
//!   limit, which [`raise_nofile_limit`] raises to the hard limit at start.
//! * Accept errors (`EMFILE`, `ENFILE`, …) never stop the loop: it backs off briefly, closes an
//!   idle connection to free a descriptor, and logs at most once per interval.
//! * Shutdown stops accepting, lets requests in flight finish (idle connections close at once),
//!   and gives up after `shutdown_timeout`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// How long the accept loop pauses after an error that is not about one connection (`EMFILE`):
/// short enough to pick up again quickly, long enough not to spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Accept errors are logged at most this often.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The default connection cap never exceeds this: past it, memory rather than descriptors is
/// what runs out.
const MAX_DEFAULT_CONNECTIONS: u64 = 10_000;
const MIN_DEFAULT_CONNECTIONS: u64 = 16;

/// `[http]` in the config file: timeouts and limits of client connections.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// How long a new connection may take to send its first request's head, and any request
    /// its head once it has begun.
    pub header_timeout_secs: u64,
    /// How long a request body may take to arrive, counted from the end of the head.
    pub body_timeout_secs: u64,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout_secs: u64,
    /// How long writing an answer may stall because the client does not read it.
    pub send_timeout_secs: u64,
    /// Connections open at once; absent: half the open-file limit, at most 10,000.
    pub max_connections: Option<usize>,
    /// How long shutdown waits for requests in flight.
    pub shutdown_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_secs: 30,
            body_timeout_secs: 30,
            idle_timeout_secs: 75,
            send_timeout_secs: 60,
            max_connections: None,
            shutdown_timeout_secs: 20,
        }
    }
}

/// [`HttpConfig`] checked and resolved against the open-file limit.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    header_timeout: Duration,
    body_timeout: Duration,
    idle_timeout: Duration,
    send_timeout: Duration,
    max_connections: usize,
    shutdown_timeout: Duration,
}

impl Limits {
    pub(crate) fn new(cfg: &HttpConfig, nofile: u64) -> Result<Limits, String> {
        let secs = |name: &str, v: u64| {
            if v == 0 {
                Err(format!("[http] {name} must be at least 1"))
            } else {
                Ok(Duration::from_secs(v))
            }
        };
        let max_connections = match cfg.max_connections {
            Some(0) => return Err("[http] max_connections must be at least 1".into()),
            Some(n) => n,
            None => default_max_connections(nofile),
        };
        Ok(Limits {
            header_timeout: secs("header_timeout_secs", cfg.header_timeout_secs)?,
            body_timeout: secs("body_timeout_secs", cfg.body_timeout_secs)?,
            idle_timeout: secs("idle_timeout_secs", cfg.idle_timeout_secs)?,
            send_timeout: secs("send_timeout_secs", cfg.send_timeout_secs)?,
            max_connections,
            // 0 is allowed here: do not wait for anything.
            shutdown_timeout: Duration::from_secs(cfg.shutdown_timeout_secs),
        })
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }
}

/// Half the descriptors for client connections; the other half is left for the PostgreSQL
/// pool, instance administration, child processes and files.
fn default_max_connections(nofile: u64) -> usize {
    (nofile / 2).clamp(MIN_DEFAULT_CONNECTIONS, MAX_DEFAULT_CONNECTIONS) as usize
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (the default soft limit of 1,024 is far too
/// low for a server) and returns the limit now in force. PostgreSQL children inherit it.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "cannot read the open-file limit");
        return 1024;
    }
    let before = lim.rlim_cur;
    // An infinite hard limit cannot be set as the soft one on Linux; nr_open is the real ceiling.
    let target = if lim.rlim_max == libc::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    } else {
        lim.rlim_max
    };
    if target > lim.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads `raised`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = target;
        } else {
            tracing::warn!(error = %io::Error::last_os_error(), soft = before, hard = lim.rlim_max, "cannot raise the open-file limit");
        }
    }
    tracing::info!(
        limit = lim.rlim_cur,
        was = before,
        hard = lim.rlim_max,
        "open-file limit"
    );
    lim.rlim_cur
}

/// Marks a request whose body missed its deadline, so the answer becomes a 408 whatever the
/// handler made of the broken body (see `middleware::request_context`).
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyTimedOut(Arc<AtomicBool>);

impl BodyTimedOut {
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Serves `service` on `listener` until `shutdown` resolves, then drains as described above.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    let mut errors = ErrorLog::default();
    let limits = Arc::new(limits);
    loop {
        while tasks.try_join_next().is_some() {}
        if tasks.len() >= limits.max_connections {
            registry.shed_one();
            tokio::select! {
                _ = tasks.join_next() => continue,
                _ = &mut shutdown => break,
            }
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                metrics::counter!("berth_http_accept_errors_total").increment(1);
                errors.log(&e);
                if is_connection_error(&e) {
                    continue;
                }
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    registry.shed_one();
                }
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    _ = &mut shutdown => break,
                }
            }
        };
        let conn = registry.add();
        tasks.spawn(connection(
            stream,
            addr,
            service.clone(),
            conn,
            registry.clone(),
            limits.clone(),
            stop_rx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = tasks.len();
    if open > 0 {
        tracing::info!(connections = open, "waiting for requests in flight");
    }
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            timeout_secs = limits.shutdown_timeout.as_secs(),
            "closing connections still busy at shutdown"
        );
        tasks.shutdown().await;
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Logs the first accept error, then at most one line per interval saying how many followed.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn log(&mut self, e: &io::Error) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < ACCEPT_ERROR_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::error!(error = %e, more_since_last = self.suppressed, "accept error; still accepting");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Where a connection is between requests, which decides its deadline.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No byte of the next request yet; `first`: none has been served on this connection.
    Waiting { since: Instant, first: bool },
    /// The head has begun; it must be complete `header_timeout` after `since`.
    Head { since: Instant },
    /// A request is being handled or answered; its body has its own deadline.
    Busy,
    /// The answer is handed to hyper but not yet all written: not idle, so never shed. Waiting
    /// begins when hyper flushes; `since + idle_timeout` is a backstop should that go unseen.
    Draining { since: Instant },
}

/// One open connection, shared by its task, its IO and the requests on it.
struct Conn {
    id: u64,
    phase: Mutex<Phase>,
    /// Since when a write has been waiting for the client to read (none while writes progress).
    write_stalled: Mutex<Option<Instant>>,
    /// Set when the accept loop asks an idle connection to make room.
    shed: AtomicBool,
    wake: Notify,
    /// Told when the deadline may have moved earlier (a head begins, a write stalls).
    rearm: Notify,
}

impl Conn {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, p: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// Bytes arrived: a waiting connection starts a request head.
    fn bytes_read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::Waiting { since, first } = *phase {
            // The first request's head counts from the accept, later ones from their first byte.
            let since = if first { since } else { Instant::now() };
            *phase = Phase::Head { since };
            self.rearm.notify_one();
        }
    }

    /// hyper flushed everything it had: an answer that was draining is out.
    fn flushed(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::Draining { .. } = *phase {
            *phase = Phase::Waiting {
                since: Instant::now(),
                first: false,
            };
        }
    }

    fn write_progress(&self, stalled: bool) {
        let mut since = self.write_stalled.lock().unwrap_or_else(|e| e.into_inner());
        match (stalled, *since) {
            (true, None) => {
                *since = Some(Instant::now());
                self.rearm.notify_one();
            }
            (false, Some(_)) => *since = None,
            _ => {}
        }
    }

    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let phase = match self.phase() {
            Phase::Waiting { since, first: true } | Phase::Head { since } => {
                Some(since + limits.header_timeout)
            }
            Phase::Waiting { since, .. } | Phase::Draining { since } => {
                Some(since + limits.idle_timeout)
            }
            Phase::Busy => None,
        };
        let write = self
            .write_stalled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|since| since + limits.send_timeout);
        match (phase, write) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The open connections, oldest first, so the one waiting longest can be shed.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn add(&self) -> Arc<Conn> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            phase: Mutex::new(Phase::Waiting {
                since: Instant::now(),
                first: true,
            }),
            write_stalled: Mutex::new(None),
            shed: AtomicBool::new(false),
            wake: Notify::new(),
            rearm: Notify::new(),
        });
        self.lock().insert(id, conn.clone());
        metrics::gauge!("berth_http_connections").increment(1.0);
        conn
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the oldest connection that is waiting for a request to close.
    fn shed_one(&self) {
        let conns = self.lock();
        let victim = conns.values().find(|c| {
            matches!(c.phase(), Phase::Waiting { .. }) && !c.shed.load(Ordering::Relaxed)
        });
        if let Some(c) = victim {
            c.shed.store(true, Ordering::Relaxed);
            c.wake.notify_one();
            metrics::counter!("berth_http_connections_shed_total").increment(1);
        }
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered(Arc<Registry>, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
        metrics::gauge!("berth_http_connections").decrement(1.0);
    }
}

async fn connection<S>(
    stream: TcpStream,
    addr: SocketAddr,
    service: S,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let _registered = Registered(registry, conn.id);
    let io = TokioIo::new(Tracked {
        inner: stream,
        conn: conn.clone(),
    });
    let handler = {
        let (conn, body_timeout) = (conn.clone(), limits.body_timeout);
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            conn.set(Phase::Busy);
            let idle_after = IdleOnDrop(conn.clone());
            let timed_out = BodyTimedOut::default();
            let deadline = Instant::now() + body_timeout;
            let mut req = req.map(|inner| {
                Body::new(DeadlineBody {
                    inner,
                    deadline,
                    sleep: None,
                    timed_out: timed_out.clone(),
                })
            });
            req.extensions_mut().insert(ConnectInfo(addr));
            req.extensions_mut().insert(timed_out);
            let service = service.clone();
            async move {
                let Ok(resp) = service.oneshot(req).await;
                Ok::<_, Infallible>(resp.map(|inner| {
                    Body::new(ResponseBody {
                        inner,
                        _idle_after: idle_after,
                    })
                }))
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.header_read_timeout(None);
    let mut served = pin!(http.serve_connection(io, handler));
    let mut stopping = false;
    loop {
        // A Busy connection whose writes progress has no deadline; look again later. Changes
        // that move the deadline earlier wake this loop (`rearm`); the others are seen when it
        // wakes at the old deadline and recomputes.
        let recheck = conn.deadline(&limits).unwrap_or_else(|| {
            Instant::now()
                + limits
                    .header_timeout
                    .min(limits.idle_timeout)
                    .min(limits.send_timeout)
        });
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(client = %addr, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(recheck) => {
                if conn.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(client = %addr, phase = ?conn.phase(), "closing a connection that timed out");
                    metrics::counter!("berth_http_connections_timed_out_total").increment(1);
                    return;
                }
            }
            _ = conn.rearm.notified() => {}
            _ = conn.wake.notified() => {
                if matches!(conn.phase(), Phase::Waiting { .. }) {
                    tracing::debug!(client = %addr, "closing an idle connection to make room");
                    return;
                }
                conn.shed.store(false, Ordering::Relaxed);
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                // Finishes the request in flight, then closes; closes an idle connection now.
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The socket, telling its connection when request bytes arrive.
struct Tracked {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.conn.write_progress(result.is_pending());
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.conn.write_progress(result.is_pending());
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushes the socket only once its own buffer is written out.
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.conn.flushed();
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Marks the answer handed over once hyper has taken the whole response body (it drops the
/// body then), or the request abandoned.
struct IdleOnDrop(Arc<Conn>);

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        let mut phase = self.0.phase.lock().unwrap_or_else(|e| e.into_inner());
        // Only a request in progress drains (hyper serves one request at a time).
        if let Phase::Busy = *phase {
            *phase = Phase::Draining {
                since: Instant::now(),
            };
        }
    }
}

struct ResponseBody {
    inner: Body,
    _idle_after: IdleOnDrop,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body, failing once its deadline has passed.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// Made only when the body actually has to wait.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: BodyTimedOut,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimeout;

impl DeadlineBody {
    fn expire(&self) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        self.timed_out.0.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(BodyTimeout.into())))
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        if self.timed_out.is_set() || Instant::now() >= self.deadline {
            return self.expire();
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            return self.expire();
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cap_leaves_half_the_descriptors() {
        assert_eq!(default_max_connections(1024), 512);
        assert_eq!(default_max_connections(20), 16);
        assert_eq!(default_max_connections(1 << 20), 10_000);
    }

    #[test]
    fn zero_timeouts_and_caps_are_refused() {
        let nofile = 1024;
        let cfg = HttpConfig {
            body_timeout_secs: 0,
            ..HttpConfig::default()
        };
        assert!(Limits::new(&cfg, nofile)
            .unwrap_err()
            .contains("body_timeout_secs"));
        let cfg = HttpConfig {
            max_connections: Some(0),
            ..HttpConfig::default()
        };
        assert!(Limits::new(&cfg, nofile).is_err());
        let limits = Limits::new(&HttpConfig::default(), nofile).unwrap();
        assert_eq!(limits.max_connections(), 512);
    }
}
