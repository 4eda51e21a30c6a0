//! The single-write routes: create, reserve, activate, release, revoke, reclaim.
//!
//! Each handler parses its body (and the lease id in its path), resolves the operation key
//! (the `Idempotency-Key` header or the body's `operation_id`, which must agree, else a fresh
//! id), submits exactly one request with one `Node::write` call, and answers with the body and
//! status of the outcome. Every answer, refusals included, is counted in the metrics.

use allocdb_engine::{RejectionCode, WriteReply, WriteRequest};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::HttpApi;
use super::answers::{ApiError, CommittedBody, RejectedBody, WriteAnswer};
use super::input::{header_operation_id, operation_key, path_id, read_json};
use super::requests::{
    CreateResourceRequest, HolderAction, HolderRequest, OperatorAction, OperatorRequest, ReserveRequest,
    Translated,
};

/// Create a resource.
#[utoipa::path(
    post, path = "/v1/resources", tag = "writes",
    request_body = CreateResourceRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Operation id (decimal u128 or UUID).")),
    responses(
        (status = 200, description = "Committed `ok`.", body = CommittedBody),
        (status = 409, description = "Committed `already_exists` or `operation_conflict`.", body = CommittedBody),
        (status = 507, description = "Committed `resource_table_full` or `operation_table_full`.", body = CommittedBody),
        (status = 400, description = "Malformed; not executed.", body = RejectedBody),
        (status = 503, description = "`overloaded` (with Retry-After) or `engine_halted`.", body = RejectedBody),
        (status = 504, description = "`commit_timeout`: indefinite, retry with the same operation id.", body = RejectedBody),
    )
)]
pub(crate) async fn create_resource(State(api): State<HttpApi>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let translated = read_json::<CreateResourceRequest>(&parts.headers, body, api.shared.body_limits)
        .await
        .map(CreateResourceRequest::translate);
    write_one(&api, "create_resource", &parts.headers, translated).await
}

/// Reserve a bundle of resources for a holder.
#[utoipa::path(
    post, path = "/v1/leases", tag = "writes",
    request_body = ReserveRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Operation id (decimal u128 or UUID).")),
    responses(
        (status = 200, description = "Committed `ok`: `lease_id`, `lease_epoch`, `deadline_slot`.", body = CommittedBody),
        (status = 404, description = "Committed `resource_not_found`.", body = CommittedBody),
        (status = 409, description = "Committed `resource_busy` or `operation_conflict`.", body = CommittedBody),
        (status = 422, description = "Committed `bundle_too_large`, `duplicate_resource`, `ttl_out_of_range`; or `empty_bundle` refused before logging.", body = CommittedBody),
        (status = 507, description = "Committed `lease_table_full`, `lease_member_table_full`, `expiration_index_full`, `operation_table_full`.", body = CommittedBody),
        (status = 400, description = "Malformed; not executed.", body = RejectedBody),
        (status = 413, description = "Body or bundle too large; not executed.", body = RejectedBody),
        (status = 503, description = "`overloaded` (with Retry-After) or `engine_halted`.", body = RejectedBody),
        (status = 504, description = "`commit_timeout`: indefinite.", body = RejectedBody),
    )
)]
pub(crate) async fn reserve(State(api): State<HttpApi>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let node = api.node();
    let ttl_slots = |ttl_ms| node.ttl_slots_for_ms(ttl_ms);
    let translated = read_json::<ReserveRequest>(&parts.headers, body, api.shared.body_limits)
        .await
        .map(|request| request.translate(&ttl_slots));
    write_one(&api, "reserve", &parts.headers, translated).await
}

/// Activate a reserved lease (the holder confirms it).
#[utoipa::path(
    post, path = "/v1/leases/{lease_id}/activate", tag = "writes",
    request_body = HolderRequest,
    params(("lease_id" = String, Path, description = "The lease (decimal u128 or UUID)."),
        ("Idempotency-Key" = Option<String>, Header, description = "Operation id.")),
    responses(
        (status = 200, description = "Committed `ok`.", body = CommittedBody),
        (status = 404, description = "Committed `lease_not_found`.", body = CommittedBody),
        (status = 409, description = "Committed `holder_mismatch`, `stale_epoch`, `invalid_state`, `operation_conflict`.", body = CommittedBody),
        (status = 410, description = "Committed `lease_retired`.", body = CommittedBody),
        (status = 400, description = "Malformed; not executed.", body = RejectedBody),
    )
)]
pub(crate) async fn activate(
    State(api): State<HttpApi>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    lease_write(&api, "activate", path, request, |body: HolderRequest, lease_id| {
        body.translate(HolderAction::Activate, lease_id)
    })
    .await
}

/// Release a reserved or active lease.
#[utoipa::path(
    post, path = "/v1/leases/{lease_id}/release", tag = "writes",
    request_body = HolderRequest,
    params(("lease_id" = String, Path, description = "The lease (decimal u128 or UUID)."),
        ("Idempotency-Key" = Option<String>, Header, description = "Operation id.")),
    responses(
        (status = 200, description = "Committed `ok`.", body = CommittedBody),
        (status = 404, description = "Committed `lease_not_found`.", body = CommittedBody),
        (status = 409, description = "Committed `holder_mismatch`, `stale_epoch`, `invalid_state`, `operation_conflict`.", body = CommittedBody),
        (status = 410, description = "Committed `lease_retired`.", body = CommittedBody),
        (status = 400, description = "Malformed; not executed.", body = RejectedBody),
    )
)]
pub(crate) async fn release(
    State(api): State<HttpApi>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    lease_write(&api, "release", path, request, |body: HolderRequest, lease_id| {
        body.translate(HolderAction::Release, lease_id)
    })
    .await
}

/// Revoke an active lease (operator): its holder loses authority at once.
#[utoipa::path(
    post, path = "/v1/leases/{lease_id}/revoke", tag = "writes",
    request_body = OperatorRequest,
    params(("lease_id" = String, Path, description = "The lease (decimal u128 or UUID)."),
        ("Idempotency-Key" = Option<String>, Header, description = "Operation id.")),
    responses(
        (status = 200, description = "Committed `ok`.", body = CommittedBody),
        (status = 404, description = "Committed `lease_not_found`.", body = CommittedBody),
        (status = 409, description = "Committed `invalid_state` or `operation_conflict`.", body = CommittedBody),
        (status = 410, description = "Committed `lease_retired`.", body = CommittedBody),
        (status = 400, description = "Malformed; not executed.", body = RejectedBody),
    )
)]
pub(crate) async fn revoke(
    State(api): State<HttpApi>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    lease_write(&api, "revoke", path, request, |body: OperatorRequest, lease_id| {
        body.translate(OperatorAction::Revoke, lease_id)
    })
    .await
}

/// Reclaim a revoking lease (operator): its resources become available.
#[utoipa::path(
    post, path = "/v1/leases/{lease_id}/reclaim", tag = "writes",
    request_body = OperatorRequest,
    params(("lease_id" = String, Path, description = "The lease (decimal u128 or UUID)."),
        ("Idempotency-Key" = Option<String>, Header, description = "Operation id.")),
    responses(
        (status = 200, description = "Committed `ok`.", body = CommittedBody),
        (status = 404, description = "Committed `lease_not_found`.", body = CommittedBody),
        (status = 409, description = "Committed `invalid_state` or `operation_conflict`.", body = CommittedBody),
        (status = 410, description = "Committed `lease_retired`.", body = CommittedBody),
        (status = 400, description = "Malformed; not executed.", body = RejectedBody),
    )
)]
pub(crate) async fn reclaim(
    State(api): State<HttpApi>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    lease_write(&api, "reclaim", path, request, |body: OperatorRequest, lease_id| {
        body.translate(OperatorAction::Reclaim, lease_id)
    })
    .await
}

/// A write on the lease named in the path.
async fn lease_write<T: DeserializeOwned>(
    api: &HttpApi,
    command_name: &'static str,
    path: Result<Path<String>, PathRejection>,
    request: Request,
    translate: impl FnOnce(T, u128) -> Translated,
) -> Response {
    let (parts, body) = request.into_parts();
    let lease_id = match path {
        Ok(Path(text)) => path_id(&text, "lease id"),
        Err(rejection) => Err(ApiError::malformed(format!("The path is invalid: {rejection}."))),
    };
    let translated = match lease_id {
        Ok(lease_id) => read_json::<T>(&parts.headers, body, api.shared.body_limits)
            .await
            .map(|body| translate(body, lease_id)),
        Err(error) => Err(error),
    };
    write_one(api, command_name, &parts.headers, translated).await
}

/// Resolves the key, submits one request, answers, and counts the answer.
async fn write_one(
    api: &HttpApi,
    command_name: &'static str,
    headers: &HeaderMap,
    translated: Result<Translated, ApiError>,
) -> Response {
    let answer = decide(api, headers, translated).await;
    api.count(command_name, &answer);
    answer.into_response()
}

async fn decide(api: &HttpApi, headers: &HeaderMap, translated: Result<Translated, ApiError>) -> WriteAnswer {
    let translated = match translated {
        Ok(translated) => translated,
        Err(error) => return error.into(),
    };
    let key = match header_operation_id(headers)
        .and_then(|header| operation_key(header, translated.operation_id, translated.client_id))
    {
        Ok(key) => key,
        Err(error) => return error.into(),
    };
    let operation_id = key.operation_id.0;
    let command = match translated.command {
        Ok(command) => command,
        Err(error) => return error.with_operation_id(operation_id).into(),
    };
    let replies = api.submit(vec![WriteRequest { operation: Some(key), command }]).await;
    // The node answers one reply per request; a missing one can only mean it went away.
    let reply = replies.first().copied().unwrap_or(WriteReply::Rejected(RejectionCode::ShuttingDown));
    WriteAnswer::from_reply(&reply, operation_id, api.shared.commit_timeout_ms)
}
