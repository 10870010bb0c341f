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
//! * At most `max_connections` are open. At the cap Berth first closes the oldest connection
//!   that is waiting on its client (idle, or still receiving a request head or body — never one
//!   whose answer is being computed or written), else stops accepting until one closes: the
//!   kernel's backlog holds the newcomers, and `/healthz` keeps answering however many idle or
//!   slow clients connect. The default cap is derived from the open-file limit, which
//!   [`raise_nofile_limit`] raises to the hard limit at start; a cap leaving too few
//!   descriptors is warned about at start.
//! * At most `max_connections_per_address` are open from one client address (loopback counts
//!   like any other). A newcomer over it replaces that address's oldest connection waiting on
//!   its client, else is answered 503 and closed (nginx's `limit_conn`).
//! * hyper buffers at most [`MAX_BUF_SIZE`] of a request head per connection: heads are small,
//!   and slow clients must not each pin hyper's default ~400 KB.
//! * Accept errors (`EMFILE`, `ENFILE`, …) never stop the loop: it backs off briefly, closes an
//!   idle connection to free a descriptor, and logs at most once per interval.
//! * Shutdown stops accepting, lets requests in flight finish (idle connections close at once),
//!   and gives up after `shutdown_timeout`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
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
/// The per-address cap when none is configured (or the total cap, if smaller).
const DEFAULT_CONNECTIONS_PER_ADDRESS: usize = 256;
/// hyper's read buffer per connection (bounds a request head; bodies stream through it).
const MAX_BUF_SIZE: usize = 64 * 1024;
/// Descriptors an explicit connection cap should leave for the store pool, children and files.
const RESERVED_DESCRIPTORS: u64 = 128;
/// What a connection over its address's cap is told before it is closed.
const TOO_MANY_FROM_ADDRESS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\nconnection: close\r\n\r\n";

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
    /// Connections open at once from one client address; absent: 256 (at most
    /// `max_connections`).
    pub max_connections_per_address: Option<usize>,
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
            max_connections_per_address: None,
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
    max_per_address: usize,
    shutdown_timeout: Duration,
    /// Set when `max_connections` leaves too few descriptors; logged at start.
    fd_warning: Option<String>,
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
        let max_per_address = match cfg.max_connections_per_address {
            Some(0) => return Err("[http] max_connections_per_address must be at least 1".into()),
            Some(n) => n,
            None => DEFAULT_CONNECTIONS_PER_ADDRESS.min(max_connections),
        };
        let fd_warning = (max_connections as u64 > nofile.saturating_sub(RESERVED_DESCRIPTORS))
            .then(|| {
                format!(
                    "[http] max_connections = {max_connections} leaves fewer than \
                     {RESERVED_DESCRIPTORS} of the open-file limit ({nofile}) for the store, \
                     PostgreSQL children and files: clients may see EMFILE before the cap; \
                     raise the limit (ulimit -n, LimitNOFILE=) or lower max_connections"
                )
            });
        Ok(Limits {
            header_timeout: secs("header_timeout_secs", cfg.header_timeout_secs)?,
            body_timeout: secs("body_timeout_secs", cfg.body_timeout_secs)?,
            idle_timeout: secs("idle_timeout_secs", cfg.idle_timeout_secs)?,
            send_timeout: secs("send_timeout_secs", cfg.send_timeout_secs)?,
            max_connections,
            max_per_address,
            fd_warning,
            // 0 is allowed here: do not wait for anything.
            shutdown_timeout: Duration::from_secs(cfg.shutdown_timeout_secs),
        })
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }

    pub(crate) fn max_connections_per_address(&self) -> usize {
        self.max_per_address
    }

    /// A warning for the start log when the connection cap exceeds what the open-file limit
    /// allows (Berth still starts: the limit may be raised later, and the cap is a ceiling).
    pub(crate) fn fd_warning(&self) -> Option<&str> {
        self.fd_warning.as_deref()
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
        if registry.open_from(addr.ip()) >= limits.max_per_address
            && !registry.shed_one_from(Some(addr.ip()))
        {
            metrics::counter!("berth_http_connections_refused_total").increment(1);
            tracing::debug!(client = %addr, "refusing a connection over the per-address cap");
            // The socket buffer is empty: this either goes out at once or not at all.
            let _ = stream.try_write(TOO_MANY_FROM_ADDRESS);
            drop(stream);
            continue;
        }
        let conn = registry.add(addr.ip());
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
    ip: IpAddr,
    phase: Mutex<Phase>,
    /// A handler is waiting for request body bytes that have not arrived.
    awaiting_body: AtomicBool,
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

    /// Waiting on its client: idle, in a request head, or with a handler waiting for body
    /// bytes. Closing it loses no work of Berth's.
    fn waits_on_client(&self) -> bool {
        match self.phase() {
            Phase::Waiting { .. } | Phase::Head { .. } => true,
            Phase::Busy => self.awaiting_body.load(Ordering::Relaxed),
            Phase::Draining { .. } => false,
        }
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
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

impl Registry {
    fn add(&self, ip: IpAddr) -> Arc<Conn> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            ip,
            awaiting_body: AtomicBool::new(false),
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
        *self.addresses().entry(ip).or_default() += 1;
        metrics::gauge!("berth_http_connections").increment(1.0);
        conn
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn addresses(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections open from `ip`.
    fn open_from(&self, ip: IpAddr) -> usize {
        self.addresses().get(&ip).copied().unwrap_or(0)
    }

    /// Asks the oldest connection waiting on its client to close.
    fn shed_one(&self) {
        self.shed_one_from(None);
    }

    /// Asks the oldest connection waiting on its client (from `ip`, if given) to close; false if
    /// there is none not already asked.
    fn shed_one_from(&self, ip: Option<IpAddr>) -> bool {
        let conns = self.lock();
        let victim = conns.values().find(|c| {
            ip.is_none_or(|ip| c.ip == ip) && !c.shed.load(Ordering::Relaxed) && c.waits_on_client()
        });
        let Some(c) = victim else { return false };
        c.shed.store(true, Ordering::Relaxed);
        c.wake.notify_one();
        metrics::counter!("berth_http_connections_shed_total").increment(1);
        true
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered(Arc<Registry>, u64, IpAddr);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
        let mut addresses = self.0.addresses();
        if let Some(n) = addresses.get_mut(&self.2) {
            *n -= 1;
            if *n == 0 {
                addresses.remove(&self.2);
            }
        }
        drop(addresses);
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
    let _registered = Registered(registry, conn.id, conn.ip);
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
                    conn: conn.clone(),
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
    http.max_buf_size(MAX_BUF_SIZE);
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
                if conn.waits_on_client() {
                    tracing::debug!(client = %addr, phase = ?conn.phase(), "closing a connection waiting on its client to make room");
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
    conn: Arc<Conn>,
    deadline: Instant,
    /// Made only when the body actually has to wait.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: BodyTimedOut,
}

impl Drop for DeadlineBody {
    fn drop(&mut self) {
        // A handler that drops a body it was waiting for is no longer waiting on the client.
        self.conn.awaiting_body.store(false, Ordering::Relaxed);
    }
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
            self.conn.awaiting_body.store(false, Ordering::Relaxed);
            return self.expire();
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            self.conn.awaiting_body.store(false, Ordering::Relaxed);
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        // The handler now waits on the client: the connection may be shed to make room.
        self.conn.awaiting_body.store(true, Ordering::Relaxed);
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.conn.awaiting_body.store(false, Ordering::Relaxed);
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

    #[test]
    fn per_address_cap_defaults_to_256_within_the_total() {
        let limits = Limits::new(&HttpConfig::default(), 1024).unwrap();
        assert_eq!(limits.max_connections_per_address(), 256);
        let cfg = HttpConfig {
            max_connections: Some(10),
            ..HttpConfig::default()
        };
        assert_eq!(
            Limits::new(&cfg, 1024)
                .unwrap()
                .max_connections_per_address(),
            10
        );
        let cfg = HttpConfig {
            max_connections_per_address: Some(0),
            ..HttpConfig::default()
        };
        assert!(Limits::new(&cfg, 1024)
            .unwrap_err()
            .contains("max_connections_per_address"));
    }

    #[test]
    fn a_cap_beyond_the_open_file_limit_is_warned_about() {
        let cfg = HttpConfig {
            max_connections: Some(5000),
            ..HttpConfig::default()
        };
        let limits = Limits::new(&cfg, 300).unwrap();
        assert!(limits.fd_warning().unwrap().contains("(300)"));
        assert!(Limits::new(&HttpConfig::default(), 300)
            .unwrap()
            .fd_warning()
            .is_none());
    }
}
