//! `POST /v1/batch`: many writes in one request, one result per command, in order.
//!
//! Commands that translate are submitted together in ONE `Node::write` call, so they share
//! one group commit and keep their order in the log; commands refused at the edge (an empty or
//! oversized bundle, a malformed key) get their refusal in their own position and never reach
//! the engine. The whole request is refused (413) when it holds more commands than the
//! engine's `batch_size_max`, and (400) when it carries an `Idempotency-Key` header: a batch
//! names one `operation_id` per command, and one key cannot name several writes.

use allocdb_engine::{RejectionCode, WriteReply, WriteRequest};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::HttpApi;
use super::answers::{ApiError, RejectedBody, WriteAnswer, WriteBody, json_response};
use super::input::{IDEMPOTENCY_KEY, operation_key, read_json};
use super::requests::BatchRequest;
use super::status_codes::RetryAfter;

/// Where a batch command's answer comes from: its `(index in the submission, operation id)`,
/// or an answer decided at the edge.
type Slot = Result<(usize, u128), WriteAnswer>;

/// One command's result: the body a single write would get, plus the status it would have.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchResult {
    /// The HTTP status this command alone would have been answered with.
    pub(crate) status: u16,
    /// The committed or rejected body.
    #[serde(flatten)]
    pub(crate) body: WriteBody,
}

/// The answer to `POST /v1/batch`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchResponse {
    /// One result per command, in request order.
    pub(crate) results: Vec<BatchResult>,
}

/// Run many writes in one group commit.
#[utoipa::path(
    post, path = "/v1/batch", tag = "writes",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per command, in order (each with its own status).", body = BatchResponse),
        (status = 400, description = "Malformed (or an Idempotency-Key header); nothing executed.", body = RejectedBody),
        (status = 413, description = "Body too large or more commands than batch_size_max; nothing executed.", body = RejectedBody),
    )
)]
pub(crate) async fn batch(State(api): State<HttpApi>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match run(&api, &parts.headers, body).await {
        Ok(response) => json_response(StatusCode::OK, RetryAfter::No, &response),
        Err(error) => {
            let answer = WriteAnswer::from(error);
            api.count("batch", &answer);
            answer.into_response()
        }
    }
}

async fn run(api: &HttpApi, headers: &HeaderMap, body: axum::body::Body) -> Result<BatchResponse, ApiError> {
    if headers.contains_key(IDEMPOTENCY_KEY) {
        return Err(ApiError::malformed(
            "A batch takes an operation_id per command, not an Idempotency-Key header.".to_owned(),
        ));
    }
    let request: BatchRequest = read_json(headers, body, api.shared.body_limits).await?;
    let batch_size_max = api.shared.batch_size_max;
    if request.commands.len() > batch_size_max {
        return Err(ApiError::too_large(format!(
            "The batch holds {} commands; at most {batch_size_max} are accepted.",
            request.commands.len()
        )));
    }
    let node = api.node();
    let ttl_slots = |ttl_ms| node.ttl_slots_for_ms(ttl_ms);
    // Per position: the command name and either an answer decided at the edge, or the index
    // of its request in the one submission.
    let mut slots: Vec<(&'static str, Slot)> = Vec::with_capacity(request.commands.len());
    let mut requests = Vec::with_capacity(request.commands.len());
    for command in request.commands {
        let translated = command.translate(&ttl_slots);
        let name = translated.command_name;
        let slot = match operation_key(None, translated.operation_id, translated.client_id) {
            Err(error) => Err(error.into()),
            Ok(key) => match translated.command {
                Err(error) => Err(error.with_operation_id(key.operation_id.0).into()),
                Ok(command) => {
                    requests.push(WriteRequest { operation: Some(key), command });
                    Ok((requests.len() - 1, key.operation_id.0))
                }
            },
        };
        slots.push((name, slot));
    }
    let replies = if requests.is_empty() { Vec::new() } else { api.submit(requests).await };
    let commit_timeout_ms = api.shared.commit_timeout_ms;
    let results = slots
        .into_iter()
        .map(|(name, slot)| {
            let answer = match slot {
                Ok((index, operation_id)) => {
                    let reply = replies
                        .get(index)
                        .copied()
                        .unwrap_or(WriteReply::Rejected(RejectionCode::ShuttingDown));
                    WriteAnswer::from_reply(&reply, operation_id, commit_timeout_ms)
                }
                Err(answer) => answer,
            };
            api.count(name, &answer);
            BatchResult { status: answer.status.as_u16(), body: answer.body }
        })
        .collect();
    Ok(BatchResponse { results })
}
