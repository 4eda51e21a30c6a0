//! Framing: the length prefix, tag and request id around every message, the encoders, and the
//! incremental [`FrameDecoder`] (`docs/protocol.md` §2).
//!
//! Layout: `u32 length` (little-endian, bytes after the prefix) · `u8 tag` · `u64 request id` ·
//! body. Invariants the decoder keeps:
//! - it never panics, whatever the bytes;
//! - it reads the length prefix first and rejects a frame above the connection's limit (or too
//!   short to hold a tag and request id) as soon as the 4 prefix bytes are present, before
//!   anything else is read or allocated;
//! - it decodes a frame only once every byte of it is present, and then allocates only for
//!   elements whose count was checked against its limit and against the bytes left in the frame,
//!   so a frame never makes it allocate more than a fixed multiple of the frame's own size;
//! - it consumes a frame's body exactly: one extra or missing byte is an error;
//! - it is a function of the bytes only (it keeps no state between frames), so a caller can
//!   keep a growable read buffer, decode from its front, and drop the consumed bytes.

#![deny(clippy::indexing_slicing)]

use std::marker::PhantomData;

use crate::client::ClientMessage;
use crate::error::{DecodeError, Defect, EncodeError};
use crate::limits::{FRAME_LENGTH_MIN, FRAME_SIZE_BYTES_LIMIT, ProtocolLimits};
use crate::server::ServerMessage;
use crate::wire::{Reader, put_u8, put_u64};

/// One decoded frame: the request id and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<M> {
    /// Chosen by the client, never 0; echoed by the server on every answer to that request.
    /// Server frames not tied to a request (a `ProtocolError` for an unreadable frame) use 0.
    pub request_id: u64,
    /// The message.
    pub message: M,
}

mod sealed {
    use crate::error::{Defect, EncodeError};
    use crate::limits::ProtocolLimits;
    use crate::wire::Reader;

    /// The body codec of one direction's messages.
    pub trait Codec: Sized {
        /// Whether request id 0 is refused (client frames) or allowed (server frames).
        const REQUEST_ID_ZERO_ALLOWED: bool;
        fn tag(&self) -> u8;
        fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;
        fn decode_body(tag: u8, reader: &mut Reader<'_>, limits: ProtocolLimits) -> Result<Self, Defect>;
    }
}

/// A message type that travels in frames: [`ClientMessage`] or [`ServerMessage`].
pub trait WireMessage: sealed::Codec {}

impl sealed::Codec for ClientMessage {
    const REQUEST_ID_ZERO_ALLOWED: bool = false;
    fn tag(&self) -> u8 {
        ClientMessage::tag(self)
    }
    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        ClientMessage::encode_body(self, out)
    }
    fn decode_body(tag: u8, reader: &mut Reader<'_>, limits: ProtocolLimits) -> Result<Self, Defect> {
        ClientMessage::decode_body(tag, reader, limits)
    }
}

impl WireMessage for ClientMessage {}

impl sealed::Codec for ServerMessage {
    const REQUEST_ID_ZERO_ALLOWED: bool = true;
    fn tag(&self) -> u8 {
        ServerMessage::tag(self)
    }
    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        ServerMessage::encode_body(self, out)
    }
    fn decode_body(tag: u8, reader: &mut Reader<'_>, limits: ProtocolLimits) -> Result<Self, Defect> {
        ServerMessage::decode_body(tag, reader, limits)
    }
}

impl WireMessage for ServerMessage {}

/// Appends the frame of a client message to `out` and returns the frame's size in bytes.
///
/// Only the hard limits are checked here; a client also keeps its frames within the
/// `frame_size_bytes_max` and its batches within the `batch_size_max` that `HelloOk` announced.
///
/// # Errors
/// Request id 0, or a message beyond the hard limits; `out` is then left as it was.
pub fn encode_client(
    message: &ClientMessage,
    request_id: u64,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    if request_id == 0 {
        return Err(EncodeError::ReservedRequestId);
    }
    encode_frame(message, request_id, out)
}

/// Appends the frame of a server message to `out` and returns the frame's size in bytes.
///
/// # Errors
/// A message beyond the hard limits; `out` is then left as it was.
pub fn encode_server(
    message: &ServerMessage,
    request_id: u64,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    encode_frame(message, request_id, out)
}

fn encode_frame<M: WireMessage>(
    message: &M,
    request_id: u64,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let start = out.len();
    let result = encode_frame_unchecked(message, request_id, out, start);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_frame_unchecked<M: WireMessage>(
    message: &M,
    request_id: u64,
    out: &mut Vec<u8>,
    start: usize,
) -> Result<usize, EncodeError> {
    out.extend_from_slice(&[0; 4]);
    put_u8(out, message.tag());
    put_u64(out, request_id);
    message.encode_body(out)?;
    let size_bytes = out.len() - start;
    let length = u32::try_from(size_bytes - 4)
        .ok()
        .filter(|_| size_bytes <= FRAME_SIZE_BYTES_LIMIT as usize)
        .ok_or(EncodeError::FrameTooLarge { size_bytes, limit: FRAME_SIZE_BYTES_LIMIT })?;
    match out.get_mut(start..start + 4) {
        Some(prefix) => prefix.copy_from_slice(&length.to_le_bytes()),
        None => panic!("the length prefix was written at offset {start} of {} bytes", out.len()),
    }
    Ok(size_bytes)
}

/// Decodes frames of one direction from the front of a read buffer.
///
/// A server uses `FrameDecoder<ClientMessage>`, a client `FrameDecoder<ServerMessage>`.
#[derive(Clone, Debug)]
pub struct FrameDecoder<M> {
    limits: ProtocolLimits,
    direction: PhantomData<fn() -> M>,
}

impl<M: WireMessage> FrameDecoder<M> {
    /// A decoder enforcing `limits`.
    pub fn new(limits: ProtocolLimits) -> FrameDecoder<M> {
        FrameDecoder { limits, direction: PhantomData }
    }

    /// The limits enforced.
    pub fn limits(&self) -> ProtocolLimits {
        self.limits
    }

    /// Replaces the limits, e.g. with those a client learned from `HelloOk`.
    pub fn set_limits(&mut self, limits: ProtocolLimits) {
        self.limits = limits;
    }

    /// The size (length prefix included) of the frame at the front of `buffer`, once its 4-byte
    /// prefix is present; `None` until then. Lets a reader reserve room for the whole frame.
    ///
    /// # Errors
    /// The prefix announces a frame above the limit or too short for a header.
    pub fn frame_size_bytes(&self, buffer: &[u8]) -> Result<Option<usize>, DecodeError> {
        let Some(prefix) = buffer.first_chunk::<4>() else {
            return Ok(None);
        };
        let length = u32::from_le_bytes(*prefix);
        if length < FRAME_LENGTH_MIN {
            return Err(DecodeError {
                request_id: None,
                defect: Defect::FrameTooShort { length, length_min: FRAME_LENGTH_MIN },
            });
        }
        let size_bytes = u64::from(length) + 4;
        let limit = self.limits.frame_size_bytes_max();
        if size_bytes > u64::from(limit) {
            return Err(DecodeError {
                request_id: None,
                defect: Defect::FrameTooLarge { size_bytes, limit },
            });
        }
        // At most 16 MiB (checked above), which fits `usize` (limits.rs).
        Ok(usize::try_from(size_bytes).ok())
    }

    /// Decodes the frame at the front of `buffer`: the frame and the bytes it took, or `None`
    /// when the frame is not complete yet (read more and call again with the grown buffer).
    /// Bytes after the frame are not looked at.
    ///
    /// # Errors
    /// Anything that makes the frame invalid; the connection should then be closed.
    pub fn decode(&self, buffer: &[u8]) -> Result<Option<(Frame<M>, usize)>, DecodeError> {
        let Some(size_bytes) = self.frame_size_bytes(buffer)? else {
            return Ok(None);
        };
        let Some(frame) = buffer.get(..size_bytes) else {
            return Ok(None);
        };
        let mut reader = Reader::new(frame, 4);
        let header = |defect| DecodeError { request_id: None, defect };
        let tag = reader.u8("tag").map_err(header)?;
        let request_id = reader.u64("request_id").map_err(header)?;
        let with_id = |defect| DecodeError { request_id: Some(request_id), defect };
        if request_id == 0 && !M::REQUEST_ID_ZERO_ALLOWED {
            return Err(with_id(Defect::ReservedRequestId));
        }
        let message = M::decode_body(tag, &mut reader, self.limits).map_err(with_id)?;
        reader.finish().map_err(with_id)?;
        Ok(Some((Frame { request_id, message }, size_bytes)))
    }
}

impl<M: WireMessage> Default for FrameDecoder<M> {
    fn default() -> FrameDecoder<M> {
        FrameDecoder::new(ProtocolLimits::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::{FrameDecoder, encode_client, encode_server};
    use crate::client::ClientMessage;
    use crate::error::{DecodeError, Defect, EncodeError};
    use crate::server::ServerMessage;

    #[test]
    fn ping_frame_is_thirteen_bytes_and_decodes_from_a_growing_buffer() {
        let mut bytes = Vec::new();
        assert_eq!(encode_client(&ClientMessage::Ping, 7, &mut bytes), Ok(13));
        assert_eq!(bytes, [9, 0, 0, 0, 0x06, 7, 0, 0, 0, 0, 0, 0, 0]);
        let decoder = FrameDecoder::<ClientMessage>::default();
        for length in 0..bytes.len() {
            assert_eq!(decoder.decode(bytes.get(..length).unwrap()), Ok(None), "prefix of {length}");
        }
        let (frame, consumed) = decoder.decode(&bytes).unwrap().unwrap();
        assert_eq!((frame.request_id, frame.message, consumed), (7, ClientMessage::Ping, 13));
    }

    #[test]
    fn request_id_zero_is_reserved_to_servers() {
        let mut bytes = vec![1, 2, 3];
        assert_eq!(encode_client(&ClientMessage::Ping, 0, &mut bytes), Err(EncodeError::ReservedRequestId));
        assert_eq!(bytes, [1, 2, 3], "nothing appended on error");
        bytes.clear();
        encode_server(&ServerMessage::Pong, 0, &mut bytes).unwrap();
        assert!(FrameDecoder::<ServerMessage>::default().decode(&bytes).unwrap().is_some());
        bytes.get_mut(4).map(|tag| *tag = 0x06).unwrap();
        assert_eq!(
            FrameDecoder::<ClientMessage>::default().decode(&bytes),
            Err(DecodeError { request_id: Some(0), defect: Defect::ReservedRequestId })
        );
    }
}
