//! The HTTP/JSON API (interfaces.md §2; documented for users in docs/http.md).
//!
//! An axum router over one shared [`Node`]: every write goes through [`Node::write`] and every
//! read through the node's fenced reads, exactly like the binary protocol, so the two
//! transports cannot differ in semantics. This module only translates: JSON in, engine
//! commands through, JSON out with the status code of `status_codes.rs`.
//!
//! Invariants:
//! - untrusted input never panics and never reaches the log unless it parsed into a valid
//!   command: bodies are bounded before they are read (`input.rs`), bundles are bounded while
//!   they are parsed (`ids.rs`), and every refusal is a 4xx JSON body with one sentence;
//! - one HTTP write is one `Node::write` call with one request; one batch is one call with
//!   all its valid commands, answered in order;
//! - every write runs under an operation key (generated when the client gave none, and
//!   returned), so an indefinite answer can always be retried safely by a client that kept it.

mod answers;
mod batch;
mod ids;
mod input;
mod listener;
mod openapi;
mod ops;
mod reads;
mod requests;
mod status_codes;
mod writes;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use allocdb_engine::{WriteReply, WriteRequest};
use axum::Router;
use axum::routing::{get, post};

pub use input::DEFAULT_CLIENT_ID;

/// Parses `bytes` as the JSON body of every write route and of `/v1/batch`, exactly as the
/// handlers do (strict parsing, then translation into engine requests), and returns how many
/// routes accepted it. It touches no node. The `http_body` fuzz target drives it: it must never
/// panic or allocate beyond what the body's own size implies.
pub fn parse_write_bodies(bytes: &[u8]) -> usize {
    use requests::{
        BatchRequest, CreateResourceRequest, HolderAction, HolderRequest, OperatorAction, OperatorRequest,
        ReserveRequest,
    };
    // Any millisecond-to-slot conversion serves for parsing; this is the default slot's.
    let ttl_slots = |ttl_ms: u64| ttl_ms.div_ceil(10).saturating_add(1);
    let mut accepted = 0;
    if let Ok(body) = input::parse_json::<CreateResourceRequest>(bytes) {
        drop(body.translate());
        accepted += 1;
    }
    if let Ok(body) = input::parse_json::<ReserveRequest>(bytes) {
        drop(body.translate(&ttl_slots));
        accepted += 1;
    }
    if let Ok(body) = input::parse_json::<HolderRequest>(bytes) {
        drop(body.translate(HolderAction::Activate, 1));
        accepted += 1;
    }
    if let Ok(body) = input::parse_json::<OperatorRequest>(bytes) {
        drop(body.translate(OperatorAction::Revoke, 1));
        accepted += 1;
    }
    if let Ok(body) = input::parse_json::<BatchRequest>(bytes) {
        for command in body.commands {
            drop(command.translate(&ttl_slots));
        }
        accepted += 1;
    }
    accepted
}
pub(crate) use listener::{ConnectionLimits, serve_connections};

use self::answers::WriteAnswer;
use self::input::BodyLimits;
use crate::metrics::Metrics;
use crate::node::Node;

/// The HTTP API's shared state: the node, the metrics, and the limits read from its config.
#[derive(Clone)]
pub struct HttpApi {
    shared: Arc<Shared>,
}

struct Shared {
    node: Arc<Node>,
    metrics: Arc<Metrics>,
    body_limits: BodyLimits,
    commit_timeout_ms: u64,
    batch_size_max: usize,
    shutting_down: AtomicBool,
}

impl HttpApi {
    /// The API over `node`, counting into `metrics`.
    pub fn new(node: Arc<Node>, metrics: Arc<Metrics>) -> HttpApi {
        let network = &node.config().network;
        let body_limits = BodyLimits {
            size_bytes_max: network.http_body_bytes_max as usize,
            read_timeout: Duration::from_millis(network.idle_timeout_ms),
        };
        let commit_timeout_ms = network.commit_timeout_ms;
        let batch_size_max = node.engine_config().batch_size_max as usize;
        HttpApi {
            shared: Arc::new(Shared {
                node,
                metrics,
                body_limits,
                commit_timeout_ms,
                batch_size_max,
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// Every route of interfaces.md §2, with JSON answers for unknown routes and methods.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/resources", post(writes::create_resource))
            .route("/v1/resources/{resource_id}", get(reads::get_resource))
            .route("/v1/leases", post(writes::reserve))
            .route("/v1/leases/{lease_id}", get(reads::get_lease))
            .route("/v1/leases/{lease_id}/activate", post(writes::activate))
            .route("/v1/leases/{lease_id}/release", post(writes::release))
            .route("/v1/leases/{lease_id}/revoke", post(writes::revoke))
            .route("/v1/leases/{lease_id}/reclaim", post(writes::reclaim))
            .route("/v1/batch", post(batch::batch))
            .route("/v1/status", get(ops::status))
            .route("/healthz", get(ops::healthz))
            .route("/readyz", get(ops::readyz))
            .route("/metrics", get(ops::metrics))
            .route("/openapi.json", get(ops::openapi))
            .fallback(ops::route_not_found)
            .method_not_allowed_fallback(ops::method_not_allowed)
            .with_state(self.clone())
    }

    /// Marks the node as shutting down: `/readyz` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
    }

    fn node(&self) -> &Node {
        &self.shared.node
    }

    fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::Acquire)
    }

    /// Submits writes to the node in one call, timing it for the commit latency histogram.
    async fn submit(&self, requests: Vec<WriteRequest>) -> Vec<WriteReply> {
        let started = Instant::now();
        let replies = self.shared.node.write(requests).await;
        self.shared.metrics.observe_commit_latency(started.elapsed().as_secs_f64());
        replies
    }

    /// Counts one write answer under its command.
    fn count(&self, command_name: &'static str, answer: &WriteAnswer) {
        let (result, category) = answer.labels();
        self.shared.metrics.count_write(command_name, result, category);
    }
}
