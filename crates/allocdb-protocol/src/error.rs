//! Decode and encode errors.
//!
//! A [`DecodeError`] names what was wrong, where (offsets count from the first byte of the
//! frame's length prefix, so they match the hex dumps of `docs/protocol.md`) and the values
//! involved. It carries the frame's request id once the header has been read, so a server can
//! address its `ProtocolError` answer. Every decode error means the byte stream can no longer be
//! trusted: the server answers with [`DecodeError::to_protocol_error`] and closes the connection.

use crate::codes::{ProtocolErrorCode, RejectionCategory, RejectionCode};
use crate::limits::MESSAGE_SIZE_BYTES_MAX;
use crate::server::ProtocolError;

/// What is wrong with a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Defect {
    /// The length prefix is too small to hold a tag and a request id.
    #[error("frame length {length} is below the minimum {length_min} (tag and request id)")]
    FrameTooShort {
        /// The length prefix.
        length: u32,
        /// The smallest valid length.
        length_min: u32,
    },
    /// The length prefix announces a frame above the connection's limit.
    #[error("frame of {size_bytes} bytes (length prefix included) exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Announced frame size, length prefix included.
        size_bytes: u64,
        /// The connection's `frame_size_bytes_max`.
        limit: u32,
    },
    /// Request id 0 is reserved for server frames not tied to a request.
    #[error("request id 0 is reserved and may not be used by clients")]
    ReservedRequestId,
    /// The tag is not a message of this direction.
    #[error("unknown message tag {tag:#04x} at offset 4")]
    UnknownTag {
        /// The tag.
        tag: u8,
    },
    /// A field extends past the end of the frame.
    #[error("{field} needs {needed} bytes at offset {offset}, but the frame has {available} left")]
    Truncated {
        /// The field.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the frame.
        available: usize,
    },
    /// The body was decoded and bytes are left in the frame.
    #[error("{count} trailing bytes at offset {offset} after the message")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// Extra bytes.
        count: usize,
    },
    /// A count is above its limit.
    #[error("{field} {count} at offset {offset} exceeds the limit {limit}")]
    CountExceedsLimit {
        /// The count.
        field: &'static str,
        /// Offset of the count.
        offset: usize,
        /// Its value.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// A count claims more elements than the rest of the frame can hold.
    #[error(
        "{field} {count} at offset {offset} needs at least {needed} more bytes, but the frame has \
         {available} left"
    )]
    CountExceedsBytes {
        /// The count.
        field: &'static str,
        /// Offset of the count.
        offset: usize,
        /// Its value.
        count: u64,
        /// Bytes that many elements need at least.
        needed: u64,
        /// Bytes left in the frame after the count.
        available: usize,
    },
    /// A `Hello` that does not start with the protocol magic.
    #[error("hello magic {found:02x?} at offset {offset} is not \"ALDB\"")]
    BadMagic {
        /// Offset of the magic.
        offset: usize,
        /// The bytes found.
        found: [u8; 4],
    },
    /// A string that is not UTF-8.
    #[error("{field} at offset {offset} is not UTF-8 after its first {valid_up_to} bytes")]
    InvalidUtf8 {
        /// The string.
        field: &'static str,
        /// Offset of the string's first byte (after its length).
        offset: usize,
        /// Length of its valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// A flags byte has bits set that this version does not define.
    #[error("{field} {value:#04x} at offset {offset} has bits outside {allowed:#04x} set")]
    ReservedBitsSet {
        /// The flags byte.
        field: &'static str,
        /// Offset of the byte.
        offset: usize,
        /// Its value.
        value: u8,
        /// The bits this version defines.
        allowed: u8,
    },
    /// An enumerated byte with no meaning.
    #[error("{field} {value} at offset {offset} is not a known value")]
    UnknownValue {
        /// The field.
        field: &'static str,
        /// Offset of the byte.
        offset: usize,
        /// Its value.
        value: u8,
    },
    /// A client sent the internal `expire` command.
    #[error("command kind expire at offset {offset} is internal and not accepted from clients")]
    ExpireFromClient {
        /// Offset of the command kind.
        offset: usize,
    },
    /// A write's flags override the client id without giving an operation id.
    #[error("write flags at offset {offset} override the client id without an operation id")]
    ClientIdWithoutOperationId {
        /// Offset of the flags byte.
        offset: usize,
    },
    /// A rejection sent with the outcome byte of the other category.
    #[error("rejection code {code} at offset {offset} is {}, but was sent as {}", code.category().as_str(), sent.as_str())]
    CategoryMismatch {
        /// Offset of the code.
        offset: usize,
        /// The code.
        code: RejectionCode,
        /// The category its outcome byte claimed.
        sent: RejectionCategory,
    },
}

impl Defect {
    /// The protocol error code a server reports for this defect.
    pub fn protocol_error_code(&self) -> ProtocolErrorCode {
        match self {
            Defect::FrameTooLarge { .. } => ProtocolErrorCode::FrameTooLarge,
            Defect::UnknownTag { .. } => ProtocolErrorCode::UnknownMessage,
            Defect::CountExceedsLimit { .. } => ProtocolErrorCode::LimitExceeded,
            Defect::ExpireFromClient { .. } => ProtocolErrorCode::ExpireNotAllowed,
            Defect::FrameTooShort { .. }
            | Defect::ReservedRequestId
            | Defect::Truncated { .. }
            | Defect::TrailingBytes { .. }
            | Defect::CountExceedsBytes { .. }
            | Defect::BadMagic { .. }
            | Defect::InvalidUtf8 { .. }
            | Defect::ReservedBitsSet { .. }
            | Defect::UnknownValue { .. }
            | Defect::ClientIdWithoutOperationId { .. }
            | Defect::CategoryMismatch { .. } => ProtocolErrorCode::MalformedFrame,
        }
    }
}

/// A frame that cannot be decoded. The connection it came from is no longer in a known state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The frame's request id, when its header was complete and valid.
    pub request_id: Option<u64>,
    /// What is wrong.
    pub defect: Defect,
}

impl DecodeError {
    /// The `ProtocolError` message a server sends before closing the connection: the defect's
    /// code and its description (cut at a character boundary to [`MESSAGE_SIZE_BYTES_MAX`]).
    pub fn to_protocol_error(&self) -> ProtocolError {
        ProtocolError { code: self.defect.protocol_error_code(), message: bounded_message(self.to_string()) }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.request_id {
            Some(request_id) => write!(formatter, "frame of request {request_id}: {}", self.defect),
            None => write!(formatter, "frame: {}", self.defect),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.defect)
    }
}

/// Cuts `message` to at most [`MESSAGE_SIZE_BYTES_MAX`] bytes at a character boundary.
pub fn bounded_message(mut message: String) -> String {
    if message.len() > MESSAGE_SIZE_BYTES_MAX {
        let mut end = MESSAGE_SIZE_BYTES_MAX;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// A message that cannot be encoded. Nothing is appended to the output when encoding fails.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The frame would exceed the hard frame limit.
    #[error("frame of {size_bytes} bytes exceeds the hard limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame's size, length prefix included.
        size_bytes: usize,
        /// The hard limit.
        limit: u32,
    },
    /// A batch (or result list) above the hard batch limit.
    #[error("batch of {count} exceeds the hard limit of {limit}")]
    BatchTooLarge {
        /// Its length.
        count: usize,
        /// The hard limit.
        limit: u32,
    },
    /// A reserve or lease with more members than any configuration allows.
    #[error("bundle of {count} resources exceeds the limit of {limit}")]
    BundleTooLarge {
        /// Members.
        count: usize,
        /// The limit.
        limit: u32,
    },
    /// A message string longer than [`MESSAGE_SIZE_BYTES_MAX`].
    #[error("message of {size_bytes} bytes exceeds the limit of {limit} bytes")]
    MessageTooLong {
        /// Its length in bytes.
        size_bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Clients may not use request id 0.
    #[error("request id 0 is reserved and may not be used by clients")]
    ReservedRequestId,
}

#[cfg(test)]
mod tests {
    use super::{DecodeError, Defect, bounded_message};
    use crate::codes::ProtocolErrorCode;
    use crate::limits::MESSAGE_SIZE_BYTES_MAX;

    #[test]
    fn messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MESSAGE_SIZE_BYTES_MAX);
        let cut = bounded_message(long);
        assert!(cut.len() <= MESSAGE_SIZE_BYTES_MAX);
        assert!(cut.len() >= MESSAGE_SIZE_BYTES_MAX - 1);
        assert_eq!(bounded_message("short".to_owned()), "short");
    }

    #[test]
    fn protocol_error_carries_code_request_and_values() {
        let error = DecodeError {
            request_id: Some(9),
            defect: Defect::CountExceedsLimit {
                field: "write count",
                offset: 13,
                count: 70_000,
                limit: 8192,
            },
        };
        let report = error.to_protocol_error();
        assert_eq!(report.code, ProtocolErrorCode::LimitExceeded);
        assert_eq!(
            report.message,
            "frame of request 9: write count 70000 at offset 13 exceeds the limit 8192"
        );
    }
}
