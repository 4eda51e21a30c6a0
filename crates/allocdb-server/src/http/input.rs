//! Reading untrusted request input: bodies, path ids, the `min_lsn` query and the
//! `Idempotency-Key` header.
//!
//! Order of checks for a body, cheapest first, so hostile input costs as little as possible:
//! a declared `Content-Type` that is not JSON (415); a declared `Content-Length` above
//! `network.http_body_bytes_max` (413, before a byte of the body is read); then the body is
//! read through a length limit (413 the moment it is exceeded) and a deadline
//! (`network.idle_timeout_ms`, 408); an empty body reads as `{}`; a non-empty body without a
//! JSON `Content-Type` is 415; then strict parsing (400 with the parser's sentence). Nothing
//! here touches the node.

use std::time::Duration;

use allocdb_core::{ClientId, OperationId, OperationKey};
use axum::body::Body;
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::answers::ApiError;
use super::ids::{ApiId, fresh_operation_id, parse_id};

/// The client id of a write that names none.
pub const DEFAULT_CLIENT_ID: u128 = 0;

/// The header carrying an operation id.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Limits applied while reading a body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimits {
    pub(crate) size_bytes_max: usize,
    pub(crate) read_timeout: Duration,
}

/// Reads and parses a JSON body. See the module documentation for the order of checks.
pub(crate) async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limits: BodyLimits,
) -> Result<T, ApiError> {
    let json_declared = match headers.get(header::CONTENT_TYPE) {
        None => false,
        Some(value) if is_json_media_type(value.to_str().unwrap_or("")) => true,
        Some(_) => {
            return Err(ApiError::unsupported_media_type(
                "The body must be JSON, sent with Content-Type: application/json.".to_owned(),
            ));
        }
    };
    if let Some(length) = declared_length(headers)?
        && length > limits.size_bytes_max as u64
    {
        return Err(body_too_large(limits));
    }
    let collected =
        tokio::time::timeout(limits.read_timeout, Limited::new(body, limits.size_bytes_max).collect());
    let bytes = match collected.await {
        Err(_) => {
            return Err(ApiError::request_timeout(format!(
                "The body did not arrive within {} ms.",
                limits.read_timeout.as_millis()
            )));
        }
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(body_too_large(limits));
        }
        Ok(Err(error)) => return Err(ApiError::malformed(format!("The body could not be read: {error}."))),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return parse_json(b"{}");
    }
    if !json_declared {
        return Err(ApiError::unsupported_media_type(
            "A body was sent without Content-Type: application/json.".to_owned(),
        ));
    }
    parse_json(&bytes)
}

pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::malformed(format!("The JSON body is invalid: {error}.")))
}

fn body_too_large(limits: BodyLimits) -> ApiError {
    ApiError::too_large(format!("The body exceeds the limit of {} bytes.", limits.size_bytes_max))
}

/// `application/json`, with optional parameters, or any `+json` type.
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else { return Ok(None) };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::malformed("The Content-Length header is not a number.".to_owned()))
}

/// An id from a path segment, naming what it is in the error.
pub(crate) fn path_id(text: &str, what: &str) -> Result<u128, ApiError> {
    parse_id(text)
        .map_err(|reason| ApiError::malformed(format!("The {what} in the path is invalid: {reason}.")))
}

/// The `min_lsn` of a read's query string (0 when absent). No other parameter is accepted.
pub(crate) fn min_lsn(query: Option<&str>) -> Result<u64, ApiError> {
    let mut min_lsn = None;
    for pair in query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "min_lsn" {
            let shown: String = key.chars().take(40).collect();
            return Err(ApiError::malformed(format!(
                "Unknown query parameter {shown:?}; only min_lsn is accepted."
            )));
        }
        if min_lsn.is_some() {
            return Err(ApiError::malformed("min_lsn is given more than once.".to_owned()));
        }
        let parsed = value.parse::<u64>().map_err(|_| {
            let shown: String = value.chars().take(40).collect();
            ApiError::malformed(format!("min_lsn {shown:?} is not a u64."))
        })?;
        min_lsn = Some(parsed);
    }
    Ok(min_lsn.unwrap_or(0))
}

/// The `Idempotency-Key` header's operation id, if present.
pub(crate) fn header_operation_id(headers: &HeaderMap) -> Result<Option<u128>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(ApiError::malformed("The Idempotency-Key header is given more than once.".to_owned()));
    }
    let text = value
        .to_str()
        .map_err(|_| ApiError::malformed("The Idempotency-Key header is not ASCII.".to_owned()))?;
    parse_id(text.trim())
        .map(Some)
        .map_err(|reason| ApiError::malformed(format!("The Idempotency-Key header is invalid: {reason}.")))
}

/// The operation key of a write: the header's or the body's operation id (which must agree if
/// both are given), or a fresh one; and the body's client id or [`DEFAULT_CLIENT_ID`].
pub(crate) fn operation_key(
    header: Option<u128>,
    body_operation_id: Option<ApiId>,
    body_client_id: Option<ApiId>,
) -> Result<OperationKey, ApiError> {
    let operation_id = match (header, body_operation_id.map(|id| id.0)) {
        (Some(header), Some(body)) if header != body => {
            return Err(ApiError::malformed(format!(
                "The Idempotency-Key header ({header}) and the body's operation_id ({body}) differ."
            )));
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => fresh_operation_id(),
    };
    Ok(OperationKey {
        client_id: ClientId(body_client_id.map_or(DEFAULT_CLIENT_ID, |id| id.0)),
        operation_id: OperationId(operation_id),
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::{ApiId, is_json_media_type, min_lsn, operation_key};

    #[test]
    fn min_lsn_accepts_only_itself_once() {
        assert_eq!(min_lsn(None).unwrap(), 0);
        assert_eq!(min_lsn(Some("min_lsn=7")).unwrap(), 7);
        for bad in ["min_lsn=", "min_lsn=-1", "min_lsn=1&min_lsn=2", "lsn=1", "min_lsn=18446744073709551616"]
        {
            assert_eq!(min_lsn(Some(bad)).unwrap_err().status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/x-www-form-urlencoded"));
    }

    #[test]
    fn header_and_body_operation_ids_must_agree() {
        assert_eq!(operation_key(Some(5), Some(ApiId(5)), None).unwrap().operation_id.0, 5);
        assert_eq!(operation_key(None, Some(ApiId(6)), Some(ApiId(2))).unwrap().client_id.0, 2);
        assert_eq!(operation_key(Some(5), Some(ApiId(6)), None).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_ne!(
            operation_key(None, None, None).unwrap().operation_id,
            operation_key(None, None, None).unwrap().operation_id
        );
    }
}
