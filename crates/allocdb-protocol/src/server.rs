//! Server → client messages: their types, and the body codec for the handshake answers, write
//! results and protocol errors (reads and status are in `reads.rs`; `docs/protocol.md` §6).
//!
//! Invariants: every write ends in exactly one of three classes — committed (with an lsn and a
//! result code), rejected definite, rejected indefinite — and the class of a rejection is a
//! function of its code, so the type cannot express a mismatch and the decoder refuses one.
//! Results of a batch are in the order of its writes. Encoding is canonical: a decoded body
//! re-encodes to exactly the same bytes.

#![deny(clippy::indexing_slicing)]

use allocdb_core::{LeaseId, Outcome, ResultCode};

use crate::codes::{ProtocolErrorCode, RefusalReason, RejectionCategory, RejectionCode};
use crate::error::{Defect, EncodeError};
use crate::limits::{BATCH_SIZE_LIMIT, LimitsError, ProtocolLimits, WRITE_RESULT_SIZE_BYTES_MIN};
use crate::reads::{LeaseResult, ResourceResult, StatusResult};
use crate::wire::{Reader, check_message, put_string, put_u8, put_u16, put_u32, put_u64, put_u128};

pub(crate) const TAG_HELLO_OK: u8 = 0x81;
pub(crate) const TAG_WRITE_RESULTS: u8 = 0x82;
pub(crate) const TAG_RESOURCE_RESULT: u8 = 0x83;
pub(crate) const TAG_LEASE_RESULT: u8 = 0x84;
pub(crate) const TAG_STATUS_RESULT: u8 = 0x85;
pub(crate) const TAG_PONG: u8 = 0x86;
pub(crate) const TAG_HELLO_REFUSED: u8 = 0xC1;
pub(crate) const TAG_PROTOCOL_ERROR: u8 = 0xFF;

const OUTCOME_COMMITTED: u8 = 1;
const OUTCOME_REJECTED_DEFINITE: u8 = 2;
const OUTCOME_REJECTED_INDEFINITE: u8 = 3;

const COMMITTED_FLAG_FROM_RETRY_CACHE: u8 = 1 << 0;
const COMMITTED_FLAG_LEASE_ID: u8 = 1 << 1;
const COMMITTED_FLAG_LEASE_EPOCH: u8 = 1 << 2;
const COMMITTED_FLAG_DEADLINE_SLOT: u8 = 1 << 3;
const COMMITTED_FLAGS_DEFINED: u8 = COMMITTED_FLAG_FROM_RETRY_CACHE
    | COMMITTED_FLAG_LEASE_ID
    | COMMITTED_FLAG_LEASE_EPOCH
    | COMMITTED_FLAG_DEADLINE_SLOT;

/// Bit 0 of a definite rejection's flags is reserved for a leader hint (a string naming the
/// leader's address) in a later version; version 1 defines no bits.
const REJECTION_FLAGS_DEFINED: u8 = 0;

/// A message from a server to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMessage {
    /// The handshake succeeded; the connection runs under these limits.
    HelloOk(HelloOk),
    /// The handshake was refused; the server closes the connection.
    HelloRefused(HelloRefused),
    /// One result per write of the batch, in the batch's order.
    WriteResults(Vec<WriteResult>),
    /// The answer to `GetResource`.
    Resource(ResourceResult),
    /// The answer to `GetLease`.
    Lease(LeaseResult),
    /// The answer to `Status`.
    Status(StatusResult),
    /// The answer to `Ping`.
    Pong,
    /// The client broke the protocol; the server closes the connection after sending this.
    ProtocolError(ProtocolError),
}

/// The server's acceptance of a handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloOk {
    /// The protocol version the connection speaks.
    pub protocol_version: u16,
    /// The server's cluster.
    pub cluster_id: u128,
    /// The node that answered.
    pub node_id: u64,
    /// The largest frame either side may send, length prefix included.
    pub frame_size_bytes_max: u32,
    /// The most writes in one batch.
    pub batch_size_max: u32,
}

impl HelloOk {
    /// The announced limits, validated.
    ///
    /// # Errors
    /// The server announced limits no peer may use.
    pub fn limits(&self) -> Result<ProtocolLimits, LimitsError> {
        ProtocolLimits::new(self.frame_size_bytes_max, self.batch_size_max)
    }
}

/// The server's refusal of a handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloRefused {
    /// Why.
    pub reason: RefusalReason,
    /// One human sentence with the values involved (at most `MESSAGE_SIZE_BYTES_MAX` bytes).
    pub message: String,
}

/// Why the server is closing a connection that broke the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// The kind of violation.
    pub code: ProtocolErrorCode,
    /// One human sentence with the offending values (at most `MESSAGE_SIZE_BYTES_MAX` bytes).
    pub message: String,
}

/// The answer to one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteResult {
    /// Committed with an lsn: the kernel's outcome, whatever its result code.
    Committed(Outcome),
    /// Not committed; [`RejectionCode::category`] says whether it may still take effect.
    Rejected(RejectionCode),
}

impl ServerMessage {
    pub(crate) fn tag(&self) -> u8 {
        match self {
            ServerMessage::HelloOk(_) => TAG_HELLO_OK,
            ServerMessage::HelloRefused(_) => TAG_HELLO_REFUSED,
            ServerMessage::WriteResults(_) => TAG_WRITE_RESULTS,
            ServerMessage::Resource(_) => TAG_RESOURCE_RESULT,
            ServerMessage::Lease(_) => TAG_LEASE_RESULT,
            ServerMessage::Status(_) => TAG_STATUS_RESULT,
            ServerMessage::Pong => TAG_PONG,
            ServerMessage::ProtocolError(_) => TAG_PROTOCOL_ERROR,
        }
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            ServerMessage::HelloOk(hello_ok) => {
                put_u16(out, hello_ok.protocol_version);
                put_u128(out, hello_ok.cluster_id);
                put_u64(out, hello_ok.node_id);
                put_u32(out, hello_ok.frame_size_bytes_max);
                put_u32(out, hello_ok.batch_size_max);
            }
            ServerMessage::HelloRefused(refused) => {
                check_message(&refused.message)?;
                put_u8(out, refused.reason.as_u8());
                put_string(out, &refused.message);
            }
            ServerMessage::WriteResults(results) => {
                let count = u32::try_from(results.len())
                    .ok()
                    .filter(|count| *count <= BATCH_SIZE_LIMIT)
                    .ok_or(EncodeError::BatchTooLarge { count: results.len(), limit: BATCH_SIZE_LIMIT })?;
                put_u32(out, count);
                for result in results {
                    encode_write_result(result, out);
                }
            }
            ServerMessage::Resource(result) => result.encode(out),
            ServerMessage::Lease(result) => result.encode(out)?,
            ServerMessage::Status(status) => status.encode(out),
            ServerMessage::Pong => {}
            ServerMessage::ProtocolError(error) => {
                check_message(&error.message)?;
                put_u8(out, error.code.as_u8());
                put_string(out, &error.message);
            }
        }
        Ok(())
    }

    pub(crate) fn decode_body(
        tag: u8,
        reader: &mut Reader<'_>,
        limits: ProtocolLimits,
    ) -> Result<Self, Defect> {
        match tag {
            TAG_HELLO_OK => Ok(ServerMessage::HelloOk(HelloOk {
                protocol_version: reader.u16("protocol_version")?,
                cluster_id: reader.u128("cluster_id")?,
                node_id: reader.u64("node_id")?,
                frame_size_bytes_max: reader.u32("frame_size_bytes_max")?,
                batch_size_max: reader.u32("batch_size_max")?,
            })),
            TAG_HELLO_REFUSED => Ok(ServerMessage::HelloRefused(HelloRefused {
                reason: reader.enumerated("refusal reason", RefusalReason::from_u8)?,
                message: reader.string("message")?,
            })),
            TAG_WRITE_RESULTS => decode_write_results(reader, limits).map(ServerMessage::WriteResults),
            TAG_RESOURCE_RESULT => ResourceResult::decode(reader).map(ServerMessage::Resource),
            TAG_LEASE_RESULT => LeaseResult::decode(reader).map(ServerMessage::Lease),
            TAG_STATUS_RESULT => StatusResult::decode(reader).map(ServerMessage::Status),
            TAG_PONG => Ok(ServerMessage::Pong),
            TAG_PROTOCOL_ERROR => Ok(ServerMessage::ProtocolError(ProtocolError {
                code: reader.enumerated("protocol error code", ProtocolErrorCode::from_u8)?,
                message: reader.string("message")?,
            })),
            tag => Err(Defect::UnknownTag { tag }),
        }
    }
}

fn encode_write_result(result: &WriteResult, out: &mut Vec<u8>) {
    match result {
        WriteResult::Committed(outcome) => {
            put_u8(out, OUTCOME_COMMITTED);
            put_u8(out, outcome.result as u8);
            put_u64(out, outcome.applied_lsn);
            let mut flags = 0;
            if outcome.from_retry_cache {
                flags |= COMMITTED_FLAG_FROM_RETRY_CACHE;
            }
            if outcome.lease_id.is_some() {
                flags |= COMMITTED_FLAG_LEASE_ID;
            }
            if outcome.lease_epoch.is_some() {
                flags |= COMMITTED_FLAG_LEASE_EPOCH;
            }
            if outcome.deadline_slot.is_some() {
                flags |= COMMITTED_FLAG_DEADLINE_SLOT;
            }
            put_u8(out, flags);
            if let Some(lease_id) = outcome.lease_id {
                put_u128(out, lease_id.0);
            }
            if let Some(lease_epoch) = outcome.lease_epoch {
                put_u64(out, lease_epoch);
            }
            if let Some(deadline_slot) = outcome.deadline_slot {
                put_u64(out, deadline_slot);
            }
        }
        WriteResult::Rejected(code) => match code.category() {
            RejectionCategory::Definite => {
                put_u8(out, OUTCOME_REJECTED_DEFINITE);
                put_u8(out, code.as_u8());
                put_u8(out, 0);
            }
            RejectionCategory::Indefinite => {
                put_u8(out, OUTCOME_REJECTED_INDEFINITE);
                put_u8(out, code.as_u8());
            }
        },
    }
}

fn decode_write_results(reader: &mut Reader<'_>, limits: ProtocolLimits) -> Result<Vec<WriteResult>, Defect> {
    let offset = reader.offset();
    let count = reader.u32("result count")?;
    let count = reader.check_count(
        "result count",
        offset,
        u64::from(count),
        u64::from(limits.batch_size_max()),
        WRITE_RESULT_SIZE_BYTES_MIN,
    )?;
    let mut results = Vec::with_capacity(count);
    for _ in 0..count {
        results.push(decode_write_result(reader)?);
    }
    Ok(results)
}

fn decode_write_result(reader: &mut Reader<'_>) -> Result<WriteResult, Defect> {
    let outcome_offset = reader.offset();
    match reader.u8("write outcome")? {
        OUTCOME_COMMITTED => {
            let result = reader.enumerated("result code", ResultCode::from_u8)?;
            let applied_lsn = reader.u64("applied_lsn")?;
            let flags = reader.flags("committed flags", COMMITTED_FLAGS_DEFINED)?;
            let lease_id = if flags & COMMITTED_FLAG_LEASE_ID != 0 {
                Some(LeaseId(reader.u128("lease_id")?))
            } else {
                None
            };
            let lease_epoch =
                if flags & COMMITTED_FLAG_LEASE_EPOCH != 0 { Some(reader.u64("lease_epoch")?) } else { None };
            let deadline_slot = if flags & COMMITTED_FLAG_DEADLINE_SLOT != 0 {
                Some(reader.u64("deadline_slot")?)
            } else {
                None
            };
            Ok(WriteResult::Committed(Outcome {
                result,
                applied_lsn,
                from_retry_cache: flags & COMMITTED_FLAG_FROM_RETRY_CACHE != 0,
                lease_id,
                lease_epoch,
                deadline_slot,
            }))
        }
        OUTCOME_REJECTED_DEFINITE => {
            let code = decode_rejection_code(reader, RejectionCategory::Definite)?;
            reader.flags("rejection flags", REJECTION_FLAGS_DEFINED)?;
            Ok(WriteResult::Rejected(code))
        }
        OUTCOME_REJECTED_INDEFINITE => {
            decode_rejection_code(reader, RejectionCategory::Indefinite).map(WriteResult::Rejected)
        }
        value => Err(Defect::UnknownValue { field: "write outcome", offset: outcome_offset, value }),
    }
}

fn decode_rejection_code(reader: &mut Reader<'_>, sent: RejectionCategory) -> Result<RejectionCode, Defect> {
    let offset = reader.offset();
    let code = reader.enumerated("rejection code", RejectionCode::from_u8)?;
    if code.category() != sent {
        return Err(Defect::CategoryMismatch { offset, code, sent });
    }
    Ok(code)
}
