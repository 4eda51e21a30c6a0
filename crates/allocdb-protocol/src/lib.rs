//! The AllocDB binary wire protocol: length-prefixed frames carrying typed messages between a
//! client and a server, with a strict, incremental, never-panicking decoder.
//!
//! This crate owns the byte layout of every frame and message (specified byte by byte in
//! `docs/protocol.md`), the handshake rules, and the stable numbers of every enumerated byte.
//! It is pure: it never opens a socket, reads a clock, spawns a thread or blocks. It decides no
//! lease outcome; the server translates between these messages and the engine.
//!
//! Invariants kept (tested in `tests/` and fuzzed by `fuzz/fuzz_targets/protocol_decoder.rs`):
//! - every frame is `u32 length · u8 tag · u64 request id · body`, at most the connection's
//!   `frame_size_bytes_max` (never above [`FRAME_SIZE_BYTES_LIMIT`], 16 MiB), and a length above
//!   the limit is rejected from the 4 prefix bytes alone, before anything is allocated;
//! - decoding never panics, allocates only for counts already checked against their limit and
//!   the bytes present, and consumes every frame exactly;
//! - encoding is canonical: any frame the decoder accepts re-encodes to the same bytes;
//! - every write result is committed, rejected definite or rejected indefinite, and a
//!   rejection's class always matches its code;
//! - `expire` is internal: no client message can carry it.
//!
//! ```
//! use allocdb_core::{ClientId, ResourceId};
//! use allocdb_protocol::{ClientMessage, FrameDecoder, Hello, Write, WriteCommand, encode_client};
//!
//! let mut bytes = Vec::new();
//! encode_client(&ClientMessage::Hello(Hello::new(1, ClientId(9))), 1, &mut bytes).unwrap();
//! let create = Write { operation: None, command: WriteCommand::CreateResource { resource_id: ResourceId(7) } };
//! encode_client(&ClientMessage::WriteBatch(vec![create]), 2, &mut bytes).unwrap();
//!
//! // A server decodes from the front of its read buffer and drops what it consumed.
//! let decoder = FrameDecoder::<ClientMessage>::default();
//! let (hello, consumed) = decoder.decode(&bytes).unwrap().unwrap();
//! assert_eq!(hello.request_id, 1);
//! bytes.drain(..consumed);
//! let (batch, consumed) = decoder.decode(&bytes).unwrap().unwrap();
//! assert!(matches!(batch.message, ClientMessage::WriteBatch(writes) if writes.len() == 1));
//! assert_eq!(consumed, bytes.len());
//! ```

#![forbid(unsafe_code)]

mod client;
mod codes;
mod error;
mod frame;
mod handshake;
mod limits;
mod reads;
mod server;
mod wire;

pub use client::{ClientMessage, Hello, Write, WriteCommand, WriteOperation};
pub use codes::{NodeRole, ProtocolErrorCode, RefusalReason, RejectionCategory, RejectionCode};
pub use error::{DecodeError, Defect, EncodeError, bounded_message};
pub use frame::{Frame, FrameDecoder, WireMessage, encode_client, encode_server};
pub use handshake::{HELLO_MAGIC, HelloPolicy, PROTOCOL_VERSION};
pub use limits::{
    BATCH_SIZE_LIMIT, FRAME_HEADER_SIZE_BYTES, FRAME_LENGTH_MIN, FRAME_SIZE_BYTES_LIMIT,
    FRAME_SIZE_BYTES_MIN, LEASE_RESULT_SIZE_BYTES_MAX, LimitsError, MESSAGE_SIZE_BYTES_MAX, ProtocolLimits,
    WRITE_RESULT_SIZE_BYTES_MAX, WRITE_RESULT_SIZE_BYTES_MIN, WRITE_SIZE_BYTES_MAX, WRITE_SIZE_BYTES_MIN,
};
pub use reads::{LeaseRecord, LeaseResult, ResourceResult, StatusResult};
pub use server::{HelloOk, HelloRefused, ProtocolError, ServerMessage, WriteResult};
