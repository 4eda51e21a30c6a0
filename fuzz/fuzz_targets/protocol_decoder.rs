//! Fuzz target: arbitrary bytes into both frame decoders of `allocdb-protocol`.
//!
//! The input is treated as a byte stream arriving on a connection. For each direction (client
//! frames as a server decodes them, server frames as a client does) and for the tightest, the
//! default and the widest limits, frames are decoded one after another from the front of the
//! remaining bytes, exactly as a connection loop would. Properties checked:
//! - decoding never panics (the fuzzer's crash detection);
//! - a decoded frame took between 13 bytes and what was there, as announced by its prefix;
//! - re-encoding a decoded frame gives exactly the bytes it was decoded from (canonical
//!   encoding: no ignored bits, no alternative spellings);
//! - "need more bytes" only when the prefix or the announced frame is incomplete;
//! - every error maps to a protocol error whose message fits the wire limit.

#![no_main]

use allocdb_protocol::{
    BATCH_SIZE_LIMIT, ClientMessage, EncodeError, FRAME_SIZE_BYTES_LIMIT, FRAME_SIZE_BYTES_MIN, FrameDecoder,
    MESSAGE_SIZE_BYTES_MAX, ProtocolLimits, ServerMessage, WireMessage, encode_client, encode_server,
};
use libfuzzer_sys::fuzz_target;

type Encoder<M> = fn(&M, u64, &mut Vec<u8>) -> Result<usize, EncodeError>;

fn every_limits() -> [ProtocolLimits; 3] {
    let tightest = ProtocolLimits::new(FRAME_SIZE_BYTES_MIN, 1).expect("the smallest limits are valid");
    let widest =
        ProtocolLimits::new(FRAME_SIZE_BYTES_LIMIT, BATCH_SIZE_LIMIT).expect("the hard limits are valid");
    [tightest, ProtocolLimits::DEFAULT, widest]
}

fn drain<M: WireMessage + std::fmt::Debug>(bytes: &[u8], limits: ProtocolLimits, encode: Encoder<M>) {
    let decoder = FrameDecoder::<M>::new(limits);
    let mut rest = bytes;
    loop {
        match decoder.decode(rest) {
            Ok(Some((frame, consumed))) => {
                assert!(consumed >= 13 && consumed <= rest.len(), "consumed {consumed} of {}", rest.len());
                assert!(consumed <= limits.frame_size_bytes_max() as usize);
                assert_eq!(decoder.frame_size_bytes(rest), Ok(Some(consumed)));
                let mut again = Vec::new();
                let size_bytes = encode(&frame.message, frame.request_id, &mut again)
                    .unwrap_or_else(|error| panic!("decoded {frame:?} does not re-encode: {error}"));
                assert_eq!(size_bytes, consumed);
                assert!(again == rest[..consumed], "{frame:?} re-encodes differently");
                rest = &rest[consumed..];
            }
            Ok(None) => {
                match decoder.frame_size_bytes(rest) {
                    Ok(None) => assert!(rest.len() < 4),
                    Ok(Some(size_bytes)) => assert!(size_bytes > rest.len()),
                    Err(error) => panic!("decode waited for more bytes but the prefix is invalid: {error}"),
                }
                return;
            }
            Err(error) => {
                let report = error.to_protocol_error();
                assert!(report.message.len() <= MESSAGE_SIZE_BYTES_MAX);
                return;
            }
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    for limits in every_limits() {
        drain::<ClientMessage>(bytes, limits, encode_client);
        drain::<ServerMessage>(bytes, limits, encode_server);
    }
});
