//! The AllocDB client library: async (tokio), over the binary protocol.
//!
//! A [`Client`] keeps a pool of pipelined connections, sends batches as one frame, returns typed
//! results, and resolves indefinite outcomes by retrying with the *same* operation id, so a
//! write is never executed twice because of a retry. It contains no state-machine logic: every
//! result comes from the server.
//!
//! Outcomes are values: [`WriteResult::Committed`] (with a result code — `resource_busy` is a
//! committed outcome, not an error) or [`WriteResult::Rejected`] with a code whose
//! `category()` is definite (never executed) or indefinite (unknown; retry with the same id).
//! [`ClientError`] is only for failing to get an answer at all.

#![forbid(unsafe_code)]

mod client;
mod connection;
mod error;

pub use allocdb_protocol::{
    LeaseRecord, LeaseResult, RejectionCategory, RejectionCode, ResourceResult, StatusResult, Write,
    WriteCommand, WriteOperation, WriteResult,
};
pub use client::{Client, ClientConfig};
pub use error::ClientError;
