//! Operational routes: status, health, readiness, metrics, the `OpenAPI` document, and the JSON
//! answers for unknown routes and methods.
//!
//! `/healthz` says the process serves HTTP (200 always). `/readyz` says it should get traffic:
//! 503 once the engine halted after a storage failure or shutdown began. `/v1/status` and
//! `/metrics` answer at once from the state the engine published with its last answers, so
//! they answer when the engine is halted (`health: halted`) or waiting for a slow disk, which
//! is exactly when an operator needs them.

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::HttpApi;
use super::answers::{ApiError, json_response};
use super::status_codes::RetryAfter;
use crate::metrics::scan_data_dir;

/// One kernel table's usage.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TableBody {
    /// Entries in use.
    pub(crate) used: u64,
    /// Configured capacity.
    pub(crate) capacity: u64,
}

/// Usage of every kernel table.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TablesBody {
    pub(crate) resources: TableBody,
    pub(crate) leases: TableBody,
    pub(crate) lease_members: TableBody,
    pub(crate) operations: TableBody,
    pub(crate) expirations: TableBody,
}

/// `GET /v1/status`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusBody {
    /// This node's id.
    pub(crate) node_id: u64,
    /// `standalone` for a single node (no replication, so no election).
    #[schema(value_type = String, example = "standalone")]
    pub(crate) role: &'static str,
    /// The node that takes writes: this one, for a single node.
    pub(crate) leader_id: u64,
    /// Replication term: always 0 for a single node.
    pub(crate) term: u64,
    /// Last applied lsn.
    pub(crate) applied_lsn: u64,
    /// Last committed (durable) lsn; equal to `applied_lsn` on a single node, which applies a
    /// record only after it is durable.
    pub(crate) commit_lsn: u64,
    /// The slot the clock reads now.
    pub(crate) current_slot: u64,
    /// The last slot stamped on a logged command.
    pub(crate) last_request_slot: u64,
    /// Length of one slot.
    pub(crate) slot_ms: u64,
    /// Commands waiting for the sequencer.
    pub(crate) queued_commands: u64,
    /// Table usage.
    pub(crate) tables: TablesBody,
    /// `ok`, `halted` (storage failure; restart to recover) or `shutting_down`.
    #[schema(value_type = String, example = "ok")]
    pub(crate) health: &'static str,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HealthBody {
    /// `ok`, `ready`, `halted` or `shutting_down`.
    #[schema(value_type = String, example = "ok")]
    pub(crate) status: &'static str,
}

/// Node status.
#[utoipa::path(get, path = "/v1/status", tag = "operations", responses((status = 200, body = StatusBody)))]
pub(crate) async fn status(State(api): State<HttpApi>) -> Response {
    let node = api.node();
    let status = node.status();
    let health = if status.halted {
        "halted"
    } else if api.is_shutting_down() {
        "shutting_down"
    } else {
        "ok"
    };
    let applied_lsn = status.applied_lsn;
    let table = |usage: allocdb_core::TableUsage| TableBody { used: usage.used, capacity: usage.capacity };
    let body = StatusBody {
        node_id: node.config().node_id,
        role: "standalone",
        leader_id: node.config().node_id,
        term: 0,
        applied_lsn,
        commit_lsn: applied_lsn,
        current_slot: status.current_slot,
        last_request_slot: status.last_request_slot,
        slot_ms: node.engine_config().slot_duration_ms,
        queued_commands: status.queued_commands,
        tables: TablesBody {
            resources: table(status.usage.resources),
            leases: table(status.usage.leases),
            lease_members: table(status.usage.lease_members),
            operations: table(status.usage.operations),
            expirations: table(status.usage.expirations),
        },
        health,
    };
    json_response(StatusCode::OK, RetryAfter::No, &body)
}

/// Liveness: the process answers HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthBody)))]
pub(crate) async fn healthz() -> Response {
    json_response(StatusCode::OK, RetryAfter::No, &HealthBody { status: "ok" })
}

/// Readiness: 503 when halted or shutting down.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, body = HealthBody), (status = 503, description = "Halted or shutting down.", body = HealthBody))
)]
pub(crate) async fn readyz(State(api): State<HttpApi>) -> Response {
    let (status, text) = if !api.node().is_healthy() {
        (StatusCode::SERVICE_UNAVAILABLE, "halted")
    } else if api.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting_down")
    } else {
        (StatusCode::OK, "ready")
    };
    json_response(status, RetryAfter::No, &HealthBody { status: text })
}

/// Prometheus metrics (`OpenMetrics` text).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "OpenMetrics text.", body = String)))]
pub(crate) async fn metrics(State(api): State<HttpApi>) -> Response {
    let status = api.node().status();
    let data_dir = api.node().config().data_dir.clone();
    let disk = tokio::task::spawn_blocking(move || scan_data_dir(&data_dir)).await.unwrap_or_default();
    let metrics = &api.shared.metrics;
    metrics.refresh(&status, disk);
    let mut response = (StatusCode::OK, metrics.encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document.")))]
pub(crate) async fn openapi() -> Response {
    let mut response = (StatusCode::OK, super::openapi::document_json()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// 404 for any path that is not a route.
pub(crate) async fn route_not_found(uri: Uri) -> Response {
    ApiError::route_not_found(uri.path()).into_response()
}

/// 405 for a route called with the wrong method.
pub(crate) async fn method_not_allowed(method: Method) -> Response {
    ApiError::method_not_allowed(method.as_str()).into_response()
}
