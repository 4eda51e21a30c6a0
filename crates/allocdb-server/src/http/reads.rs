//! The read routes: `GET /v1/resources/{id}` and `GET /v1/leases/{id}`, with `?min_lsn=N`.
//!
//! A read is served on the engine thread as soon as the engine takes it, against the applied
//! state (every acknowledged write, nothing that is not durable), and only if that state has
//! reached `min_lsn`; otherwise it is refused `fence_not_applied` (503, Retry-After) and never
//! answered from older state. Found → 200 with `served_lsn`; not found → 404;
//! retired lease → 410 (both with `served_lsn`, since absence is also a fact as of an lsn).

use allocdb_core::{LeaseId, ResourceId, ResourceView};
use allocdb_engine::{LeaseRead, LeaseSnapshot, ReadReply, RejectionCode};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::HttpApi;
use super::answers::{ApiError, RejectedBody, json_response};
use super::ids::ApiId;
use super::input::{min_lsn, path_id};
use super::status_codes::RetryAfter;

/// A resource.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResourceBody {
    /// The resource.
    pub(crate) resource_id: ApiId,
    /// `available`, `reserved`, `active` or `revoking`.
    #[schema(value_type = String, example = "available")]
    pub(crate) state: &'static str,
    /// The live lease holding it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) current_lease_id: Option<ApiId>,
    /// Incremented on every state change.
    pub(crate) version: u64,
    /// The node's applied lsn when the read was served.
    pub(crate) served_lsn: u64,
}

/// A lease.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LeaseBody {
    /// The lease.
    pub(crate) lease_id: ApiId,
    /// Its holder.
    pub(crate) holder_id: ApiId,
    /// `reserved`, `active`, `revoking`, `released`, `expired` or `revoked`.
    #[schema(value_type = String, example = "reserved")]
    pub(crate) state: &'static str,
    /// The fencing token.
    pub(crate) lease_epoch: u64,
    /// The reserve's lsn.
    pub(crate) created_lsn: u64,
    /// Deadline (reserved and expired leases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deadline_slot: Option<u64>,
    /// Lsn of the terminal transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) released_lsn: Option<u64>,
    /// Slot from which the lease reads as retired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retire_after_slot: Option<u64>,
    /// Members, in bundle order.
    pub(crate) resource_ids: Vec<ApiId>,
    /// The node's applied lsn when the read was served.
    pub(crate) served_lsn: u64,
}

/// A read that found nothing (404) or a retired lease (410).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReadMissBody {
    /// `resource_not_found`, `lease_not_found` or `lease_retired`.
    #[schema(value_type = String, example = "lease_not_found")]
    pub(crate) error: &'static str,
    /// One human sentence.
    pub(crate) message: String,
    /// The node's applied lsn when the read was served.
    pub(crate) served_lsn: u64,
}

/// Read a resource.
#[utoipa::path(
    get, path = "/v1/resources/{resource_id}", tag = "reads",
    params(("resource_id" = String, Path, description = "The resource (decimal u128 or UUID)."),
        ("min_lsn" = Option<u64>, Query, description = "Serve only once this lsn is applied.")),
    responses(
        (status = 200, description = "Found.", body = ResourceBody),
        (status = 404, description = "No such resource.", body = ReadMissBody),
        (status = 400, description = "Malformed id or query.", body = RejectedBody),
        (status = 503, description = "`fence_not_applied` or `overloaded` (Retry-After), or `engine_halted`.", body = RejectedBody),
    )
)]
pub(crate) async fn get_resource(
    State(api): State<HttpApi>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let (resource_id, min_lsn) = match read_target(path, query.as_deref(), "resource id") {
        Ok(target) => target,
        Err(error) => return error.into_response(),
    };
    match api.node().read_resource(ResourceId(resource_id), min_lsn).await {
        ReadReply::Served { value: Some(view), served_lsn } => {
            json_response(StatusCode::OK, RetryAfter::No, &resource_body(&view, served_lsn))
        }
        ReadReply::Served { value: None, served_lsn } => miss(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            format!("Resource {resource_id} does not exist."),
            served_lsn,
        ),
        unserved => {
            not_served(&unserved, min_lsn, api.node().config().network.commit_timeout_ms).into_response()
        }
    }
}

/// Read a lease.
#[utoipa::path(
    get, path = "/v1/leases/{lease_id}", tag = "reads",
    params(("lease_id" = String, Path, description = "The lease (decimal u128 or UUID)."),
        ("min_lsn" = Option<u64>, Query, description = "Serve only once this lsn is applied.")),
    responses(
        (status = 200, description = "Found.", body = LeaseBody),
        (status = 404, description = "No such lease.", body = ReadMissBody),
        (status = 410, description = "Retired: terminal and past its history window.", body = ReadMissBody),
        (status = 400, description = "Malformed id or query.", body = RejectedBody),
        (status = 503, description = "`fence_not_applied` or `overloaded` (Retry-After), or `engine_halted`.", body = RejectedBody),
    )
)]
pub(crate) async fn get_lease(
    State(api): State<HttpApi>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let (lease_id, min_lsn) = match read_target(path, query.as_deref(), "lease id") {
        Ok(target) => target,
        Err(error) => return error.into_response(),
    };
    match api.node().read_lease(LeaseId(lease_id), min_lsn).await {
        ReadReply::Served { value: LeaseRead::Found(lease), served_lsn } => {
            json_response(StatusCode::OK, RetryAfter::No, &lease_body(lease, served_lsn))
        }
        ReadReply::Served { value: LeaseRead::NotFound, served_lsn } => miss(
            StatusCode::NOT_FOUND,
            "lease_not_found",
            format!("Lease {lease_id} does not exist."),
            served_lsn,
        ),
        ReadReply::Served { value: LeaseRead::Retired, served_lsn } => miss(
            StatusCode::GONE,
            "lease_retired",
            format!("Lease {lease_id} ended and its history window has passed."),
            served_lsn,
        ),
        unserved => {
            not_served(&unserved, min_lsn, api.node().config().network.commit_timeout_ms).into_response()
        }
    }
}

fn read_target(
    path: Result<Path<String>, PathRejection>,
    query: Option<&str>,
    what: &str,
) -> Result<(u128, u64), ApiError> {
    let Path(text) =
        path.map_err(|rejection| ApiError::malformed(format!("The path is invalid: {rejection}.")))?;
    Ok((path_id(&text, what)?, min_lsn(query)?))
}

fn miss(status: StatusCode, error: &'static str, message: String, served_lsn: u64) -> Response {
    json_response(status, RetryAfter::No, &ReadMissBody { error, message, served_lsn })
}

/// The refusal for a read the node did not serve.
fn not_served<T>(reply: &ReadReply<T>, min_lsn: u64, commit_timeout_ms: u64) -> ApiError {
    match reply {
        ReadReply::FenceNotApplied { applied_lsn } => {
            let mut error = ApiError::retry_later(
                "fence_not_applied",
                format!("The node has applied lsn {applied_lsn}, below min_lsn {min_lsn}; retry shortly."),
            );
            error.body.applied_lsn = Some(*applied_lsn);
            error
        }
        ReadReply::Halted => {
            let mut error = ApiError::rejected(RejectionCode::EngineHalted, 0);
            "The engine halted after a storage failure; reads fail closed until a restart."
                .clone_into(&mut error.body.message);
            error
        }
        ReadReply::TimedOut => ApiError::retry_later(
            RejectionCode::Overloaded.as_str(),
            format!(
                "The engine did not serve the read within commit_timeout_ms ({commit_timeout_ms} ms); it may \
                 be waiting for a slow disk. Retry shortly."
            ),
        ),
        ReadReply::Unavailable | ReadReply::Served { .. } => ApiError::retry_later(
            RejectionCode::Overloaded.as_str(),
            "The node's queue is full or it is shutting down; retry shortly.".to_owned(),
        ),
    }
}

fn resource_body(view: &ResourceView, served_lsn: u64) -> ResourceBody {
    ResourceBody {
        resource_id: ApiId(view.resource_id.0),
        state: view.state.as_str(),
        current_lease_id: view.current_lease_id.map(|lease_id| ApiId(lease_id.0)),
        version: view.version,
        served_lsn,
    }
}

fn lease_body(lease: LeaseSnapshot, served_lsn: u64) -> LeaseBody {
    LeaseBody {
        lease_id: ApiId(lease.lease_id.0),
        holder_id: ApiId(lease.holder_id.0),
        state: lease.state.as_str(),
        lease_epoch: lease.lease_epoch,
        created_lsn: lease.created_lsn,
        deadline_slot: lease.deadline_slot,
        released_lsn: lease.released_lsn,
        retire_after_slot: lease.retire_after_slot,
        resource_ids: lease.resource_ids.into_iter().map(|resource_id| ApiId(resource_id.0)).collect(),
        served_lsn,
    }
}
