//! The HTTP connection loop. Requests are the router's business; this module
//! owns connections as a whole:
//!
//! - **A deep accept queue** (`http.backlog`, capped by the kernel's
//!   `somaxconn`): the standard library's 128 overflowed when a few hundred
//!   clients connected at once, and the kernel dropped their handshakes (a
//!   client then retries after a second, or gives up).
//! - **A cap on open connections** (`http.max_connections`): past it the loop
//!   stops accepting, and new connections wait in the kernel's accept queue
//!   instead of costing memory here.
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
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// Longest a closing connection drains what its client still sends.
const LINGER: Duration = Duration::from_secs(5);
/// A closing connection whose client sends nothing for this long has nothing
/// more to drain.
const LINGER_QUIET: Duration = Duration::from_secs(1);

/// What every connection of a server shares.
#[derive(Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// Most bytes a lingering close reads and discards.
    pub linger_bytes: u64,
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for endpoint in endpoints {
        loops.spawn(accept_loop(
            endpoint,
            Arc::clone(&permits),
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
    limits: ConnectionLimits,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let Endpoint { listener, router } = endpoint;
    loop {
        // A permit first: at the cap, connections wait in the accept queue.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Per-connection failures (a reset before accept) are
                    // routine; running out of descriptors is not, and retrying
                    // at once would spin.
                    tracing::warn!(error = %e, "accept failed");
                    if !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            permit,
            limits.clone(),
            metrics.clone(),
            stop.clone(),
        ));
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    permit: OwnedSemaphorePermit,
    limits: ConnectionLimits,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    metrics.connections.inc();
    // Nothing is read before the protocol is known, and hyper's header timer
    // starts only after that: a client that connects and sends nothing gets
    // the header timeout here. (No byte arrived, so a plain close is clean.)
    let mut first = [0u8; 1];
    if !matches!(
        tokio::time::timeout(limits.header_timeout, stream.peek(&mut first)).await,
        Ok(Ok(1..))
    ) {
        drop((stream, permit));
        metrics.connections.dec();
        return;
    }
    let io = TokioIo::new(Lingering {
        stream: Some(stream),
        permit: Some(permit),
        linger_bytes: limits.linger_bytes,
        metrics: metrics.clone(),
    });
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request.map(axum::body::Body::new))
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
            _ = stop.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A connection's socket that, when hyper is done with it, is closed the
/// lingering way (see the module comment). It holds the connection's permit
/// until the socket is really closed.
struct Lingering {
    stream: Option<TcpStream>,
    permit: Option<OwnedSemaphorePermit>,
    linger_bytes: u64,
    metrics: Metrics,
}

impl Lingering {
    fn stream(&mut self) -> &mut TcpStream {
        self.stream.as_mut().expect("the stream is taken only on drop")
    }
}

impl AsyncRead for Lingering {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_shutdown(cx)
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let (Some(stream), Some(permit)) = (self.stream.take(), self.permit.take()) else {
            return;
        };
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
