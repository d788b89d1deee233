//! The HTTP connection loop. Requests are the router's business; this module
//! owns connections as a whole:
//!
//! - **A deep accept queue** (`http.backlog`, capped by the kernel's
//!   `somaxconn`): the standard library's 128 overflowed when a few hundred
//!   clients connected at once, and the kernel dropped their handshakes (a
//!   client then retries after a second, or gives up).
//! - **A cap on open connections** (`http.max_connections`) that sheds before
//!   it refuses: at the cap, a connection waiting in the accept queue is let
//!   in by closing one that holds a place for nothing: a client whose answer
//!   it has not read for `STUCK` (the oldest first), else the connection idle
//!   the longest (no request in progress: before its first byte, between
//!   requests, or still sending headers). Connections whose request is being
//!   handled are never shed. With none to shed, new connections wait in the
//!   kernel's accept queue instead of costing memory here.
//! - **Send timeout** (`http.send_timeout`): an answer that the client does
//!   not read (no byte accepted by the socket) for that long ends its
//!   connection, so an unread answer cannot hold memory or a place for long.
//! - **Header timeout** (`http.header_timeout`): a client gets that long to
//!   send its first byte, then that long to send a request's headers, and a
//!   kept-alive connection may sit idle that long before its next request
//!   (hyper's header-read timer covers the last two).
//! - **Lingering close.** When a connection ends while the client may still be
//!   sending (a 503 or 413 answered before the body was read), closing the
//!   socket with unread bytes makes the kernel send a reset, which can destroy
//!   the answer before the client reads it. Instead the write side is shut
//!   (the answer, then FIN) and what the client still sends is read and
//!   discarded, for at most `LINGER` and `max_body` bytes, before the socket is
//!   closed. Every client that reaches the server gets its HTTP answer.
//! - **Graceful shutdown**: stop accepting, let each connection finish its
//!   request in flight, wait at most the grace period.

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// Longest a closing connection drains what its client still sends.
const LINGER: Duration = Duration::from_secs(5);
/// An answer its client has not read for this long marks the connection as
/// stuck: the first to be shed at the connection cap.
const STUCK: Duration = Duration::from_secs(1);
/// A closing connection whose client sends nothing for this long has nothing
/// more to drain.
const LINGER_QUIET: Duration = Duration::from_secs(1);

/// What every connection of a server shares.
#[derive(Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// Longest an answer waits for its client to read (`http.send_timeout`).
    pub send_timeout: Duration,
    /// Most bytes a lingering close reads and discards.
    pub linger_bytes: u64,
}

/// One open connection, as the shedding decision sees it.
struct Conn {
    /// Requests whose handler is running (never shed while non-zero).
    busy: AtomicU32,
    /// When a write started waiting for the client (ms since the registry's
    /// epoch, plus one), 0 when none is waiting.
    blocked_since: AtomicU64,
    /// When bytes last moved either way (ms since the epoch).
    last_progress: AtomicU64,
    /// Asked to close (shed).
    shed: Notify,
    shedding: AtomicBool,
}

/// The open connections of a server, for shedding at the cap.
struct Registry {
    epoch: std::time::Instant,
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let now = self.now_ms();
        let conn = Arc::new(Conn {
            busy: AtomicU32::new(0),
            blocked_since: AtomicU64::new(0),
            last_progress: AtomicU64::new(now),
            shed: Notify::new(),
            shedding: AtomicBool::new(false),
        });
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::clone(&conn));
        (id, conn)
    }

    fn remove(&self, id: u64) {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Asks one connection to close: a stuck one (its client has read
    /// nothing for `STUCK`; the longest stuck first), else the longest idle
    /// one (no handler running). Returns the reason, or `None` when every
    /// connection is busy.
    fn shed_one(&self) -> Option<&'static str> {
        let now = self.now_ms();
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let stuck_after = STUCK.as_millis() as u64;
        let mut stuck: Option<(u64, &Arc<Conn>)> = None;
        let mut idle: Option<(u64, &Arc<Conn>)> = None;
        for conn in conns.values() {
            if conn.shedding.load(Ordering::Relaxed) {
                continue;
            }
            let blocked = conn.blocked_since.load(Ordering::Relaxed);
            if blocked != 0 && now.saturating_sub(blocked - 1) >= stuck_after {
                if stuck.is_none_or(|(since, _)| blocked < since) {
                    stuck = Some((blocked, conn));
                }
            } else if blocked == 0 && conn.busy.load(Ordering::Relaxed) == 0 {
                let last = conn.last_progress.load(Ordering::Relaxed);
                if idle.is_none_or(|(since, _)| last < since) {
                    idle = Some((last, conn));
                }
            }
        }
        let (reason, conn) = match (stuck, idle) {
            (Some((_, c)), _) => ("stuck", c),
            (None, Some((_, c))) => ("idle", c),
            (None, None) => return None,
        };
        conn.shedding.store(true, Ordering::Relaxed);
        conn.shed.notify_one();
        Some(reason)
    }
}

/// Binds a listening socket with an accept queue of `backlog` connections.
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// A listener and the routes it serves.
pub struct Endpoint {
    pub listener: TcpListener,
    pub router: Router,
}

/// Serves `endpoints` until `shutdown` resolves, then stops accepting and
/// waits up to `grace` for open connections to finish.
pub async fn serve(
    endpoints: Vec<Endpoint>,
    limits: ConnectionLimits,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry {
        epoch: std::time::Instant::now(),
        next: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for endpoint in endpoints {
        loops.spawn(accept_loop(
            endpoint,
            Arc::clone(&permits),
            Arc::clone(&registry),
            limits.clone(),
            metrics.clone(),
            stop_rx.clone(),
        ));
    }
    shutdown.await;
    tracing::info!(grace = ?grace, "shutdown requested: draining in-flight requests");
    let _ = stop_tx.send(true);
    while loops.join_next().await.is_some() {}
    // Every open connection holds a permit: all of them back means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all)).await.is_err() {
        tracing::warn!("grace period over; closing the remaining connections");
    }
}

async fn accept_loop(
    endpoint: Endpoint,
    permits: Arc<Semaphore>,
    registry: Arc<Registry>,
    limits: ConnectionLimits,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let Endpoint { listener, router } = endpoint;
    loop {
        // A free place, or, at the cap, a connection waiting to be accepted.
        let free = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => Some(p),
                Err(_) => return,
            },
            ready = listener.accept(), if permits.available_permits() == 0 => {
                let pair = match ready {
                    Ok(pair) => pair,
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                };
                // At the cap with someone waiting: make room by shedding a
                // connection that holds its place for nothing, then admit
                // this one; with nothing to shed, it waits for a place as
                // the accept queue would have made it wait.
                let permit = loop {
                    if let Ok(p) = Arc::clone(&permits).try_acquire_owned() {
                        break Some(p);
                    }
                    if let Some(reason) = registry.shed_one() {
                        metrics.connections_shed.with_label_values(&[reason]).inc();
                    }
                    tokio::select! {
                        permit = Arc::clone(&permits).acquire_owned() => break permit.ok(),
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        _ = stop.changed() => return,
                    }
                };
                let Some(permit) = permit else { return };
                spawn_connection(pair, &router, permit, &registry, &limits, &metrics, &stop);
                continue;
            }
            _ = stop.changed() => return,
        };
        let Some(permit) = free else { return };
        let pair = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        spawn_connection(pair, &router, permit, &registry, &limits, &metrics, &stop);
    }
}

/// Per-connection failures (a reset before accept) are routine; running out
/// of descriptors is not, and retrying at once would spin.
async fn accept_failed(e: &io::Error) {
    tracing::warn!(error = %e, "accept failed");
    if !matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spawn_connection(
    (stream, peer): (TcpStream, SocketAddr),
    router: &Router,
    permit: OwnedSemaphorePermit,
    registry: &Arc<Registry>,
    limits: &ConnectionLimits,
    metrics: &Metrics,
    stop: &watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(serve_connection(
        stream,
        peer,
        router.clone(),
        permit,
        Arc::clone(registry),
        limits.clone(),
        metrics.clone(),
        stop.clone(),
    ));
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    permit: OwnedSemaphorePermit,
    registry: Arc<Registry>,
    limits: ConnectionLimits,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    metrics.connections.inc();
    let (id, conn) = registry.add();
    // Nothing is read before the protocol is known, and hyper's header timer
    // starts only after that: a client that connects and sends nothing gets
    // the header timeout here, or is shed. (No byte arrived, so a plain
    // close is clean.)
    let mut first = [0u8; 1];
    let spoke = tokio::select! {
        peeked = tokio::time::timeout(limits.header_timeout, stream.peek(&mut first)) => matches!(peeked, Ok(Ok(1..))),
        _ = conn.shed.notified() => false,
    };
    if !spoke {
        registry.remove(id);
        drop((stream, permit));
        metrics.connections.dec();
        return;
    }
    let io = TokioIo::new(Lingering {
        stream: Some(stream),
        permit: Some(permit),
        linger_bytes: limits.linger_bytes,
        metrics: metrics.clone(),
        registry: Arc::clone(&registry),
        id,
        conn: Arc::clone(&conn),
        send_timeout: limits.send_timeout,
        send_deadline: None,
    });
    let busy = Arc::clone(&conn);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let handling = Busy::new(&busy);
        let response = router.clone().oneshot(request.map(axum::body::Body::new));
        async move {
            let response = response.await;
            drop(handling);
            response
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                break;
            }
            _ = conn.shed.notified() => {
                tracing::debug!(%peer, "connection shed at the connection cap");
                break;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A request being handled on a connection (it is not shed meanwhile).
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: &Arc<Conn>) -> Busy {
        conn.busy.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(conn))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's socket that, when hyper is done with it, is closed the
/// lingering way (see the module comment). It holds the connection's permit
/// until the socket is really closed, reports progress for shedding, and
/// fails a write that has waited `send_timeout` for the client to read.
struct Lingering {
    stream: Option<TcpStream>,
    permit: Option<OwnedSemaphorePermit>,
    linger_bytes: u64,
    metrics: Metrics,
    registry: Arc<Registry>,
    id: u64,
    conn: Arc<Conn>,
    send_timeout: Duration,
    /// Set while a write waits for the client.
    send_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Lingering {
    fn stream(&mut self) -> &mut TcpStream {
        self.stream.as_mut().expect("the stream is taken only on drop")
    }

    fn progressed(&mut self) {
        self.conn.last_progress.store(self.registry.now_ms(), Ordering::Relaxed);
    }

    /// A write's outcome: progress clears the wait; a wait arms the send
    /// timeout, and past it the write fails (hyper then ends the connection).
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        moved: bool,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => {
                if self.send_deadline.is_none() {
                    self.conn
                        .blocked_since
                        .store(self.registry.now_ms() + 1, Ordering::Relaxed);
                    self.send_deadline = Some(Box::pin(tokio::time::sleep(self.send_timeout)));
                }
                let expired = self
                    .send_deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    self.metrics.connections_shed.with_label_values(&["send_timeout"]).inc();
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client read nothing of the answer within http.send_timeout",
                    )));
                }
                Poll::Pending
            }
            ready => {
                if moved {
                    self.send_deadline = None;
                    self.conn.blocked_since.store(0, Ordering::Relaxed);
                    self.progressed();
                }
                ready
            }
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(self.stream()).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.progressed();
        }
        polled
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(self.stream()).poll_write(cx, buf);
        let moved = matches!(polled, Poll::Ready(Ok(n)) if n > 0);
        self.watch_write(cx, polled, moved)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(self.stream()).poll_write_vectored(cx, bufs);
        let moved = matches!(polled, Poll::Ready(Ok(n)) if n > 0);
        self.watch_write(cx, polled, moved)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(self.stream()).poll_flush(cx);
        self.watch_write(cx, polled, false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_shutdown(cx)
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        self.registry.remove(self.id);
        let (Some(stream), Some(permit)) = (self.stream.take(), self.permit.take()) else {
            return;
        };
        // A shed connection has no answer in flight worth draining for (it
        // was idle, or its client was not reading): its place is wanted now.
        if self.conn.shedding.load(Ordering::Relaxed) {
            drop((stream, permit));
            self.metrics.connections.dec();
            return;
        }
        let (metrics, limit) = (self.metrics.clone(), self.linger_bytes);
        let close = async move {
            linger(stream, limit).await;
            drop(permit);
            metrics.connections.dec();
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(close)),
            // No runtime (the process is ending): a plain close.
            Err(_) => self.metrics.connections.dec(),
        }
    }
}

/// Shuts the write side (the answer is already queued, FIN follows it), then
/// reads and discards until the client closes too, it stays quiet for
/// `LINGER_QUIET` (nothing left to reset: an idle kept-alive connection ends
/// here at once), `LINGER` passes, or `limit` bytes were discarded.
async fn linger(mut stream: TcpStream, limit: u64) {
    let _ = stream.shutdown().await;
    let mut buf = vec![0u8; 16 * 1024];
    let mut discarded = 0u64;
    let _ = tokio::time::timeout(LINGER, async {
        while discarded <= limit {
            match tokio::time::timeout(LINGER_QUIET, stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => discarded += n as u64,
                _ => break,
            }
        }
    })
    .await;
}
