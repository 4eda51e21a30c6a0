//! Running a node: open it, bind its listeners, serve until told to stop, stop cleanly.
//!
//! [`serve`] is what `allocdb serve` calls: one multi-threaded tokio runtime, the node opened
//! (data directory locked, log recovered, engine thread started), every listener bound before
//! any is served (so a port conflict fails startup instead of leaving a half-running node),
//! and a clean stop on SIGTERM or SIGINT.
//!
//! Shutdown order, and why:
//! 1. readiness turns 503 and every listener stops accepting;
//! 2. in-flight requests finish (bounded by the drain deadline) — their writes are already in
//!    the engine's queue or answered;
//! 3. [`Node::shutdown`] commits what is still queued and joins the engine thread, so every
//!    write that got an answer is durable and none is left half-done.
//!
//! Startup reports progress while recovery replays a large log (`recovery_progress.rs`: a line
//! at most once a second with bytes scanned, records replayed, rate and time left), then one
//! `recovered` summary line with the time recovery took.
//!
//! Listeners: the binary protocol (`listen`) and the HTTP API (`http`) run side by side on the
//! one runtime, over the one node, stopped by the one shutdown signal. A further listener is
//! bound in [`Server::bind`] and spawned in [`Server::run`] the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use allocdb_storage::LogDirectory;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::binary::serve_binary;
use crate::config::ServerConfig;
use crate::http::{ConnectionLimits, HttpApi, serve_connections};
use crate::metrics::Metrics;
use crate::node::{Node, NodeOptions, StartError};

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The node could not open (configuration, data directory, recovery).
    #[error(transparent)]
    Start(#[from] StartError),
    /// A listen address could not be bound.
    #[error("cannot listen for {listener} on {address}: {source}")]
    Bind {
        /// Which listener (`http`, `binary protocol`).
        listener: &'static str,
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime could not start, or a startup task failed.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// An opened node with its listeners bound, not yet serving.
pub struct Server {
    node: Arc<Node>,
    metrics: Arc<Metrics>,
    http_listener: TcpListener,
    http_address: SocketAddr,
    binary_listener: TcpListener,
    binary_address: SocketAddr,
}

impl Server {
    /// Opens the node and binds every listener. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// See [`ServeError`]. On error nothing keeps running and the data directory is unlocked.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServeError> {
        Server::bind_opening(config, Node::open_with).await
    }

    /// Like [`Server::bind`], with the node's log and snapshots in `directory` instead of the
    /// data directory ([`Node::open_over`]): the real router and engine over injected storage.
    ///
    /// # Errors
    /// See [`ServeError`].
    pub async fn bind_over<D>(config: ServerConfig, directory: D) -> Result<Server, ServeError>
    where
        D: LogDirectory + Send + 'static,
        D::File: Send,
    {
        Server::bind_opening(config, move |config, options| Node::open_over(config, options, directory)).await
    }

    async fn bind_opening(
        config: ServerConfig,
        open: impl FnOnce(ServerConfig, NodeOptions) -> Result<Node, StartError> + Send + 'static,
    ) -> Result<Server, ServeError> {
        let metrics = Arc::new(Metrics::new());
        let options =
            NodeOptions { group_observer: Some(metrics.group_observer()), ..NodeOptions::default() };
        let (http, listen) = (config.http, config.listen);
        // Recovery reads the whole log: blocking work, kept off the async workers.
        let node = tokio::task::spawn_blocking(move || open(config, options))
            .await
            .map_err(|error| ServeError::Runtime(std::io::Error::other(error)))??;
        let report = node.recovery_report();
        metrics.set_recovery(report);
        let elapsed = node.recovery_duration();
        let elapsed_nanos = elapsed.as_nanos().max(1);
        tracing::info!(
            data_dir = %node.config().data_dir.display(),
            snapshot_lsn = report.snapshot_lsn.unwrap_or(0),
            records_replayed = report.records_replayed,
            segments_read = report.segments_read,
            last_lsn = report.last_lsn,
            torn_tail = report.torn_tail.is_some(),
            elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            records_per_second =
                u64::try_from(u128::from(report.records_replayed) * 1_000_000_000 / elapsed_nanos).unwrap_or(u64::MAX),
            "recovered"
        );
        let (binary_listener, binary_address) = bind("binary protocol", listen).await?;
        let (http_listener, http_address) = bind("http", http).await?;
        Ok(Server {
            node: Arc::new(node),
            metrics,
            http_listener,
            http_address,
            binary_listener,
            binary_address,
        })
    }

    /// The address the HTTP API listens on (the real port when configured with port 0).
    pub fn http_address(&self) -> SocketAddr {
        self.http_address
    }

    /// The address the binary protocol listens on (the real port when configured with port 0).
    pub fn binary_address(&self) -> SocketAddr {
        self.binary_address
    }

    /// The node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Serves until `shutdown` completes, then stops in the order of the module documentation.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server { node, metrics, http_listener, http_address, binary_listener, binary_address } = self;
        let network = &node.config().network;
        let limits = ConnectionLimits {
            connection_count_max: network.connection_count_max as usize,
            header_read_timeout: Duration::from_millis(network.idle_timeout_ms),
            drain_timeout: Duration::from_millis(
                network.commit_timeout_ms.saturating_add(network.write_timeout_ms),
            ),
        };
        let (stop_sender, stop) = watch::channel(false);
        let api = HttpApi::new(Arc::clone(&node), metrics);
        let mut listeners = JoinSet::new();
        listeners.spawn(serve_binary(binary_listener, Arc::clone(&node), stop.clone()));
        listeners.spawn(serve_connections(http_listener, api.router(), limits, stop.clone()));
        let io_threads = tokio::runtime::Handle::current().metrics().num_workers();
        tracing::info!(http = %http_address, listen = %binary_address, io_threads, "serving");
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        api.begin_shutdown();
        let _ = stop_sender.send(true);
        while let Some(result) = listeners.join_next().await {
            if let Err(error) = result {
                tracing::error!(%error, "a listener task failed");
            }
        }
        drop(api);
        stop_node(node).await;
        tracing::info!("stopped");
    }
}

async fn bind(listener: &'static str, address: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let bound =
        TcpListener::bind(address).await.map_err(|source| ServeError::Bind { listener, address, source })?;
    let local = bound.local_addr().map_err(|source| ServeError::Bind { listener, address, source })?;
    Ok((bound, local))
}

/// Commits what is queued and joins the engine thread, off the async workers.
async fn stop_node(node: Arc<Node>) {
    match Arc::try_unwrap(node) {
        Ok(node) => {
            let _ = tokio::task::spawn_blocking(move || node.shutdown()).await;
        }
        Err(node) => {
            // Something still holds the node (a connection task still closing). Dropping the
            // last reference stops the engine the same way, the queue committed first; at the
            // latest that happens when `serve` drops the runtime and with it every task.
            tracing::warn!("node still referenced at shutdown; it stops when the last reference drops");
            drop(node);
        }
    }
}

/// Starts listening for SIGTERM and SIGINT (Ctrl-C) at once, and returns a future that
/// completes on the first of them. Call it before anything that takes time: until a process
/// listens, the default action of SIGTERM kills it, so a supervisor that stops the server
/// right after it reported `serving` (or while it recovers) would see it die by the signal
/// instead of stopping cleanly. Must be called within a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        tokio::select! {
            () = received(interrupt, "SIGINT") => tracing::info!("SIGINT received"),
            () = received(terminate, "SIGTERM") => tracing::info!("SIGTERM received"),
        }
    }
}

/// Completes when the signal behind `listener` arrives; a listener that could not be set up
/// is logged and never completes (the other signal still stops the server).
async fn received(listener: std::io::Result<tokio::signal::unix::Signal>, name: &str) {
    match listener {
        Ok(mut listener) => {
            listener.recv().await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot listen for {name}");
            std::future::pending::<()>().await;
        }
    }
}

/// Runs a node with `config` until SIGTERM or SIGINT, then stops cleanly.
///
/// # Errors
/// Startup failures; see [`ServeError`].
pub fn serve(config: ServerConfig) -> Result<(), ServeError> {
    let processors = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let io_threads = config.network.io_thread_count(processors);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(io_threads)
        .enable_all()
        .thread_name("allocdb-io")
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        // Listening starts before recovery and binding, so a stop requested at any point
        // after this is a clean one (`shutdown_signal`).
        let shutdown = shutdown_signal();
        let server = Server::bind(config).await?;
        server.run(shutdown).await;
        Ok(())
    })
}
