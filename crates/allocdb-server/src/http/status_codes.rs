//! The HTTP status of every outcome: interfaces.md §2's table, in one place.
//!
//! The JSON body is authoritative and the status code follows it, so a client that only looks
//! at the code still takes the right branch: 2xx committed and took effect (or did nothing,
//! `noop`), 404/409/410/422/507 committed a domain failure, 400/413/415 never executed, 503
//! with `Retry-After` try again later, and 500/504 (and 503 `engine_halted`) the outcome is
//! unknown until retried with the same operation id.

use allocdb_core::ResultCode;
use allocdb_engine::RejectionCode;
use axum::http::StatusCode;

/// Seconds a client should wait before retrying an `overloaded`, `shutting_down` or
/// `fence_not_applied` answer.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 1;

/// The status of a committed write with this result code.
pub(crate) fn committed_status(result: ResultCode) -> StatusCode {
    match result {
        ResultCode::Ok | ResultCode::Noop => StatusCode::OK,
        ResultCode::ResourceNotFound | ResultCode::LeaseNotFound => StatusCode::NOT_FOUND,
        ResultCode::LeaseRetired => StatusCode::GONE,
        ResultCode::ResourceBusy
        | ResultCode::AlreadyExists
        | ResultCode::InvalidState
        | ResultCode::HolderMismatch
        | ResultCode::StaleEpoch
        | ResultCode::OperationConflict => StatusCode::CONFLICT,
        ResultCode::BundleTooLarge
        | ResultCode::DuplicateResource
        | ResultCode::TtlOutOfRange
        | ResultCode::EmptyBundle => StatusCode::UNPROCESSABLE_ENTITY,
        ResultCode::ResourceTableFull
        | ResultCode::LeaseTableFull
        | ResultCode::LeaseMemberTableFull
        | ResultCode::OperationTableFull
        | ResultCode::ExpirationIndexFull => StatusCode::INSUFFICIENT_STORAGE,
    }
}

/// The status of a rejected write, and whether it carries `Retry-After`.
pub(crate) fn rejected_status(code: RejectionCode) -> (StatusCode, RetryAfter) {
    match code {
        RejectionCode::Malformed => (StatusCode::BAD_REQUEST, RetryAfter::No),
        RejectionCode::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, RetryAfter::No),
        RejectionCode::Overloaded | RejectionCode::ShuttingDown => {
            (StatusCode::SERVICE_UNAVAILABLE, RetryAfter::Yes)
        }
        // The log has no position left: like a full table, the node needs an operator.
        RejectionCode::LsnExhausted => (StatusCode::INSUFFICIENT_STORAGE, RetryAfter::No),
        // The clock reads beyond the largest slot: a broken clock, a server fault.
        RejectionCode::SlotOverflow | RejectionCode::StorageFailure => {
            (StatusCode::INTERNAL_SERVER_ERROR, RetryAfter::No)
        }
        RejectionCode::EngineHalted => (StatusCode::SERVICE_UNAVAILABLE, RetryAfter::No),
        RejectionCode::CommitTimeout => (StatusCode::GATEWAY_TIMEOUT, RetryAfter::No),
    }
}

/// Whether an answer carries a `Retry-After` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryAfter {
    /// Add `Retry-After: 1`.
    Yes,
    /// No header.
    No,
}

/// One human sentence for a rejection the engine decided.
pub(crate) fn rejected_message(code: RejectionCode, commit_timeout_ms: u64) -> String {
    match code {
        RejectionCode::Malformed => "The request could not be understood.".to_owned(),
        RejectionCode::TooLarge => "The request exceeds a size bound of this node.".to_owned(),
        RejectionCode::Overloaded => {
            "The submission queue is full; the write was not executed, retry shortly.".to_owned()
        }
        RejectionCode::SlotOverflow => {
            "The node's clock is beyond the largest logical slot; the write was not executed.".to_owned()
        }
        RejectionCode::LsnExhausted => "The log has no position left; the write was not executed.".to_owned(),
        RejectionCode::StorageFailure => "The log write failed while this write was in it; its outcome is \
                                          unknown, retry with the same operation id after a restart."
            .to_owned(),
        RejectionCode::EngineHalted => "The engine halted after a storage failure; restart the node, then \
                                        retry with the same operation id."
            .to_owned(),
        RejectionCode::ShuttingDown => "The node shut down before the write's outcome was known; retry with \
                                        the same operation id."
            .to_owned(),
        RejectionCode::CommitTimeout => format!(
            "The engine did not answer within {commit_timeout_ms} ms; the write may still commit, retry with \
             the same operation id."
        ),
    }
}

#[cfg(test)]
mod tests {
    use allocdb_core::ResultCode;
    use allocdb_engine::{RejectionCategory, RejectionCode};
    use axum::http::StatusCode;

    use super::{RetryAfter, committed_status, rejected_status};

    #[test]
    fn committed_codes_follow_the_interface_table() {
        for result in ResultCode::ALL {
            let status = committed_status(result);
            let name = result.as_str();
            let expected = if name == "ok" || name == "noop" {
                StatusCode::OK
            } else if name.ends_with("_not_found") {
                StatusCode::NOT_FOUND
            } else if name == "lease_retired" {
                StatusCode::GONE
            } else if name.ends_with("_table_full") || name == "expiration_index_full" {
                StatusCode::INSUFFICIENT_STORAGE
            } else if ["bundle_too_large", "duplicate_resource", "ttl_out_of_range", "empty_bundle"]
                .contains(&name)
            {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::CONFLICT
            };
            assert_eq!(status, expected, "{name}");
        }
    }

    #[test]
    fn only_retryable_rejections_carry_retry_after() {
        let all = [
            RejectionCode::Malformed,
            RejectionCode::TooLarge,
            RejectionCode::Overloaded,
            RejectionCode::SlotOverflow,
            RejectionCode::LsnExhausted,
            RejectionCode::StorageFailure,
            RejectionCode::EngineHalted,
            RejectionCode::ShuttingDown,
            RejectionCode::CommitTimeout,
        ];
        for code in all {
            let (status, retry_after) = rejected_status(code);
            assert_eq!(
                retry_after == RetryAfter::Yes,
                status == StatusCode::SERVICE_UNAVAILABLE && code != RejectionCode::EngineHalted,
                "{code:?}"
            );
            if code.category() == RejectionCategory::Indefinite {
                assert!(status.is_server_error(), "{code:?}");
            }
        }
    }
}
