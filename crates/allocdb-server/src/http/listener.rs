//! The HTTP accept loop: bounded connections, a header deadline, and graceful shutdown.
//!
//! - At most `connection_count_max` connections are served at once; a connection accepted
//!   beyond that is closed at once, so one client hoarding sockets cannot starve the accept
//!   loop or grow memory without bound.
//! - Each connection must deliver a request's headers within the header deadline, which also
//!   bounds how long an idle keep-alive connection is kept (hyper starts the timer whenever the
//!   connection waits for the next request).
//! - On shutdown the loop stops accepting, asks every connection to finish its in-flight
//!   request and close (idle ones close at once), and waits for them up to the drain deadline;
//!   connections still open then are dropped. Only after that does the caller stop the node,
//!   so no in-flight write is cut off by the engine going away.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// Pause after a failed `accept` (for instance out of file descriptors), so the loop does not
/// spin while the condition lasts.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Connection bounds of one listener.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionLimits {
    /// Most connections served at once.
    pub(crate) connection_count_max: usize,
    /// Deadline for a request's headers, idle time between requests included.
    pub(crate) header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub(crate) drain_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` turns true, then drains.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.connection_count_max));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                        let limit = limits.connection_count_max;
                        tracing::warn!(%peer, limit, "http connection refused: too many open");
                        drop(stream);
                        continue;
                    };
                    connections.spawn(serve_one(stream, router.clone(), limits, shutdown.clone(), permit));
                }
                Err(error) => {
                    tracing::warn!(%error, "http accept failed");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                }
            },
        }
    }
    drop(listener);
    let open = connections.len();
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "http connections still open after the drain deadline; closing them"
        );
        connections.shutdown().await;
    }
    tracing::debug!(open, "http listener stopped");
}

async fn serve_one(
    stream: TcpStream,
    router: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    // Small JSON answers must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "http connection ended with an error");
            }
        }
        () = stopped(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Completes once shutdown is signalled (or the signal's sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, never held across a later await.
    let _ = shutdown.wait_for(|stop| *stop).await;
}
