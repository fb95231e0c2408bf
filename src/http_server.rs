//! How `serve` listens: one accept loop for every router it mounts (the ADMS receiver
//! now, the API and dashboard next), over plain HTTP or TLS, that a hostile or broken
//! client cannot wear down.
//!
//! - At most `max_connections` at once; one more is closed as soon as it is accepted,
//!   so thousands of idle sockets cost the others nothing.
//! - A TLS handshake, the request headers and each whole request (body included) must
//!   arrive within their timeouts: a client sending a byte a minute is cut off.
//! - On shutdown it stops accepting, lets requests in flight finish (up to
//!   `drain_timeout`), then returns.
//!
//! Each request carries the peer's address (`ConnectInfo<SocketAddr>`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::shutdown::Shutdown;
use crate::tls::ServerTls;

/// Limits for one listening socket.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// For the TLS handshake and for a request's headers.
    pub header_timeout: Duration,
    /// For a whole request, its body read and its answer made.
    pub request_timeout: Duration,
    /// How long requests in flight may take to finish after shutdown.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4_096,
            header_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<ServerTls>,
    limits: Limits,
    mut shutdown: Shutdown,
) {
    let request_timeout = limits.request_timeout;
    let router = router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| within(request_timeout, request, next),
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.requested() => break,
        };
        // Finished connections leave the set as new ones come.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: wait, then go on accepting.
            Err(error) => {
                tracing::warn!("cannot accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(
                "{peer}: over {} connections, closed",
                limits.max_connections
            );
            continue;
        };
        let router = router.clone();
        let tls = tls.clone();
        let header_timeout = limits.header_timeout;
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            let service = TowerToHyperService::new(router.map_request(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    request
                },
            ));
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            match tls {
                None => drive(&builder, TokioIo::new(stream), service, &mut stop).await,
                Some(tls) => {
                    // A client that fails or stalls the handshake affects only itself.
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(header_timeout, tls.accept(stream)).await
                    else {
                        return;
                    };
                    drive(&builder, TokioIo::new(stream), service, &mut stop).await;
                }
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!(
            "{} connection(s) still open {} s after stopping; closed",
            connections.len(),
            limits.drain_timeout.as_secs()
        );
        connections.abort_all();
    }
}

/// Serves one connection until it ends, or until `stop`: then the request in flight
/// finishes and the connection closes.
async fn drive<I, S>(builder: &auto::Builder<TokioExecutor>, io: I, service: S, stop: &mut Shutdown)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = Response>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = stop.requested() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A request (its body included) that takes longer than `limit` is answered 408.
async fn within(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!("ERROR: the request took over {} s", limit.as_secs()),
        )
            .into_response(),
    }
}
