//! Response bodies and their conversion to HTTP responses.
//!
//! Every write ends in one of two body shapes (interfaces.md §2): [`CommittedBody`] for any
//! committed result code, and [`RejectedBody`] for a write that was not executed (`definite`)
//! or whose fate is unknown (`indefinite`). Transport-level refusals (malformed JSON, a body
//! too large, a wrong content type) use the rejected shape too, with `category: definite`, so a
//! client parses one error format for every route.

use allocdb_core::Outcome;
use allocdb_engine::{RejectionCategory, RejectionCode, WriteReply};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::ids::ApiId;
use super::status_codes::{
    RETRY_AFTER_SECONDS, RetryAfter, committed_status, rejected_message, rejected_status,
};

/// A committed write (any result code, including domain failures).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub(crate) struct CommittedBody {
    /// Always `committed`.
    #[schema(value_type = String, example = "committed")]
    pub(crate) outcome: &'static str,
    /// The result code (`ok`, `resource_busy`, ...).
    #[schema(value_type = String, example = "ok")]
    pub(crate) result: &'static str,
    /// The lsn at which the result was decided (the original one for a retry).
    pub(crate) applied_lsn: u64,
    /// The operation id the write ran under (generated when the request named none).
    pub(crate) operation_id: ApiId,
    /// Whether this is the remembered answer to an earlier execution of the same operation.
    pub(crate) from_retry_cache: bool,
    /// The lease created or changed (successful lease commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lease_id: Option<ApiId>,
    /// The lease's epoch after the command (successful lease commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lease_epoch: Option<u64>,
    /// The new lease's deadline slot (successful reserve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deadline_slot: Option<u64>,
}

impl CommittedBody {
    fn new(outcome: &Outcome, operation_id: u128) -> CommittedBody {
        CommittedBody {
            outcome: "committed",
            result: outcome.result.as_str(),
            applied_lsn: outcome.applied_lsn,
            operation_id: ApiId(operation_id),
            from_retry_cache: outcome.from_retry_cache,
            lease_id: outcome.lease_id.map(|lease_id| ApiId(lease_id.0)),
            lease_epoch: outcome.lease_epoch,
            deadline_slot: outcome.deadline_slot,
        }
    }
}

/// A write (or request) that was not executed, or whose outcome is unknown.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub(crate) struct RejectedBody {
    /// Always `rejected`.
    #[schema(value_type = String, example = "rejected")]
    pub(crate) outcome: &'static str,
    /// `definite`: never executed and never will be; `indefinite`: retry the same operation id
    /// to learn the outcome.
    #[schema(value_type = String, example = "definite")]
    pub(crate) category: &'static str,
    /// The rejection code (`malformed`, `too_large`, `overloaded`, `commit_timeout`, ...).
    #[schema(value_type = String, example = "malformed")]
    pub(crate) error: &'static str,
    /// One human sentence.
    pub(crate) message: String,
    /// The operation id the write would run under, when one was known or generated; needed
    /// to retry an indefinite outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) operation_id: Option<ApiId>,
    /// For `fence_not_applied`: the lsn the node has applied so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) applied_lsn: Option<u64>,
}

/// One write's answer inside a batch: the body a single write would get, plus its status.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum WriteBody {
    /// Committed with a result code.
    Committed(CommittedBody),
    /// Not executed, or outcome unknown.
    Rejected(RejectedBody),
}

/// A refusal or rejection with its HTTP status.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: RetryAfter,
    /// Boxed: an `ApiError` travels in the `Err` of most parsing functions.
    pub(crate) body: Box<RejectedBody>,
}

impl ApiError {
    fn definite(status: StatusCode, error: &'static str, message: String) -> ApiError {
        ApiError {
            status,
            retry_after: RetryAfter::No,
            body: Box::new(RejectedBody {
                outcome: "rejected",
                category: RejectionCategory::Definite.as_str(),
                error,
                message,
                operation_id: None,
                applied_lsn: None,
            }),
        }
    }

    /// 400 `malformed`.
    pub(crate) fn malformed(message: String) -> ApiError {
        ApiError::definite(StatusCode::BAD_REQUEST, RejectionCode::Malformed.as_str(), message)
    }

    /// 413 `too_large`.
    pub(crate) fn too_large(message: String) -> ApiError {
        ApiError::definite(StatusCode::PAYLOAD_TOO_LARGE, RejectionCode::TooLarge.as_str(), message)
    }

    /// 415 `unsupported_media_type`.
    pub(crate) fn unsupported_media_type(message: String) -> ApiError {
        ApiError::definite(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
    }

    /// 408 `request_timeout`: the body did not arrive in time.
    pub(crate) fn request_timeout(message: String) -> ApiError {
        ApiError::definite(StatusCode::REQUEST_TIMEOUT, "request_timeout", message)
    }

    /// 422 `empty_bundle`: refused before logging (docs/semantics-decisions.md).
    pub(crate) fn empty_bundle() -> ApiError {
        ApiError::definite(
            StatusCode::UNPROCESSABLE_ENTITY,
            allocdb_core::ResultCode::EmptyBundle.as_str(),
            "A reserve must name at least one resource.".to_owned(),
        )
    }

    /// 404 for a route that does not exist.
    pub(crate) fn route_not_found(path: &str) -> ApiError {
        let shown: String = path.chars().take(120).collect();
        ApiError::definite(StatusCode::NOT_FOUND, "route_not_found", format!("No route matches {shown:?}."))
    }

    /// 405 for a route that exists with other methods.
    pub(crate) fn method_not_allowed(method: &str) -> ApiError {
        ApiError::definite(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("This route does not accept {method}."),
        )
    }

    /// 503 with `Retry-After`, definite, for a read that could not be served yet.
    pub(crate) fn retry_later(error: &'static str, message: String) -> ApiError {
        let mut refusal = ApiError::definite(StatusCode::SERVICE_UNAVAILABLE, error, message);
        refusal.retry_after = RetryAfter::Yes;
        refusal
    }

    /// The rejection the engine decided for a write.
    pub(crate) fn rejected(code: RejectionCode, commit_timeout_ms: u64) -> ApiError {
        let (status, retry_after) = rejected_status(code);
        ApiError {
            status,
            retry_after,
            body: Box::new(RejectedBody {
                outcome: "rejected",
                category: code.category().as_str(),
                error: code.as_str(),
                message: rejected_message(code, commit_timeout_ms),
                operation_id: None,
                applied_lsn: None,
            }),
        }
    }

    /// The same refusal, naming the operation id the write ran under.
    pub(crate) fn with_operation_id(mut self, operation_id: u128) -> ApiError {
        self.body.operation_id = Some(ApiId(operation_id));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, self.retry_after, &*self.body)
    }
}

/// A write's answer: status and body.
#[derive(Clone, Debug)]
pub(crate) struct WriteAnswer {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: RetryAfter,
    pub(crate) body: WriteBody,
}

impl WriteAnswer {
    /// The answer for the engine's reply to a write that ran under `operation_id`.
    pub(crate) fn from_reply(reply: &WriteReply, operation_id: u128, commit_timeout_ms: u64) -> WriteAnswer {
        match reply {
            WriteReply::Committed(outcome) => WriteAnswer {
                status: committed_status(outcome.result),
                retry_after: RetryAfter::No,
                body: WriteBody::Committed(CommittedBody::new(outcome, operation_id)),
            },
            WriteReply::Rejected(code) => {
                ApiError::rejected(*code, commit_timeout_ms).with_operation_id(operation_id).into()
            }
        }
    }

    /// `(result or error code, category)`: the labels metrics count this answer under.
    pub(crate) fn labels(&self) -> (&'static str, Option<&'static str>) {
        match &self.body {
            WriteBody::Committed(body) => (body.result, None),
            WriteBody::Rejected(body) => (body.error, Some(body.category)),
        }
    }
}

impl From<ApiError> for WriteAnswer {
    fn from(error: ApiError) -> WriteAnswer {
        WriteAnswer {
            status: error.status,
            retry_after: error.retry_after,
            body: WriteBody::Rejected(*error.body),
        }
    }
}

impl IntoResponse for WriteAnswer {
    fn into_response(self) -> Response {
        json_response(self.status, self.retry_after, &self.body)
    }
}

/// A JSON response; serialization of these plain structs cannot fail, but if it ever did the
/// client gets a 500 with a fixed body rather than a panic.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, retry_after: RetryAfter, body: &T) -> Response {
    let (status, bytes) = match serde_json::to_vec(body) {
        Ok(bytes) => (status, bytes),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            concat!(
                r#"{"outcome":"rejected","category":"indefinite","error":"internal","#,
                r#""message":"The response could not be encoded."}"#
            )
            .as_bytes()
            .to_vec(),
        ),
    };
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if retry_after == RetryAfter::Yes {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    response
}
