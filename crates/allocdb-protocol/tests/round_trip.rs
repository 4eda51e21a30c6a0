//! Round trips and truncations: every message survives encode → decode unchanged, frames split
//! anywhere decode as "need more bytes" until complete, and any frame whose body is cut short or
//! extended is an error — never a panic and never a different message.
//!
//! The canonical-encoding property (any frame the decoder accepts re-encodes to exactly its own
//! bytes) is checked on randomly mutated frames here and on arbitrary bytes by the fuzz target.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]
#![allow(clippy::indexing_slicing, reason = "tests slice frames they built")]

#[allow(dead_code, reason = "each test file uses part of the shared support")]
mod support;

use allocdb_protocol::{
    ClientMessage, DecodeError, Defect, Frame, FrameDecoder, ProtocolLimits, ServerMessage, encode_client,
    encode_server,
};
use proptest::prelude::*;
use proptest::sample::Index;
use support::{
    client_frame, client_message, sample_client_messages, sample_server_messages, server_frame,
    server_message, with_body_length, with_extra_body,
};

fn client_decoder() -> FrameDecoder<ClientMessage> {
    FrameDecoder::new(ProtocolLimits::DEFAULT)
}

fn server_decoder() -> FrameDecoder<ServerMessage> {
    FrameDecoder::new(ProtocolLimits::DEFAULT)
}

/// Every strict prefix needs more bytes; every body truncation and one-byte extension is an
/// error; the whole frame decodes to `expected`.
fn check_every_cut<M: allocdb_protocol::WireMessage + PartialEq + std::fmt::Debug>(
    decoder: &FrameDecoder<M>,
    frame: &[u8],
    expected: &Frame<M>,
) {
    for length in 0..frame.len() {
        assert_eq!(decoder.decode(&frame[..length]), Ok(None), "prefix of {length} bytes of {expected:?}");
    }
    for body_length in 0..frame.len() - 13 {
        let cut = with_body_length(frame, body_length);
        let result = decoder.decode(&cut);
        assert!(
            result.is_err(),
            "body cut to {body_length} bytes decoded as {result:?}; original {expected:?}"
        );
    }
    for length in 0..9_u32 {
        let mut short = frame.to_vec();
        short[..4].copy_from_slice(&length.to_le_bytes());
        assert_eq!(
            decoder.decode(&short[..4]),
            Err(DecodeError { request_id: None, defect: Defect::FrameTooShort { length, length_min: 9 } })
        );
    }
    let extended = with_extra_body(frame, &[0]);
    assert_eq!(
        decoder.decode(&extended),
        Err(DecodeError {
            request_id: Some(expected.request_id),
            defect: Defect::TrailingBytes { offset: frame.len(), count: 1 }
        })
    );
    let decoded = decoder.decode(frame).unwrap().unwrap();
    assert_eq!((&decoded.0, decoded.1), (expected, frame.len()));
}

#[test]
fn every_cut_of_every_sample_client_message_is_detected() {
    let decoder = client_decoder();
    for (index, message) in sample_client_messages().into_iter().enumerate() {
        let request_id = index as u64 + 1;
        let frame = client_frame(&message, request_id);
        check_every_cut(&decoder, &frame, &Frame { request_id, message });
    }
}

#[test]
fn every_cut_of_every_sample_server_message_is_detected() {
    let decoder = server_decoder();
    for (index, message) in sample_server_messages().into_iter().enumerate() {
        let request_id = index as u64;
        let frame = server_frame(&message, request_id);
        check_every_cut(&decoder, &frame, &Frame { request_id, message });
    }
}

#[test]
fn pipelined_frames_decode_one_after_another_from_one_buffer() {
    let decoder = client_decoder();
    let messages = sample_client_messages();
    let mut buffer = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        encode_client(message, index as u64 + 1, &mut buffer).unwrap();
    }
    let mut start = 0;
    for (index, message) in messages.iter().enumerate() {
        let (frame, consumed) = decoder.decode(&buffer[start..]).unwrap().unwrap();
        assert_eq!(frame, Frame { request_id: index as u64 + 1, message: message.clone() });
        start += consumed;
    }
    assert_eq!(start, buffer.len());
    assert_eq!(decoder.decode(&buffer[start..]), Ok(None));
}

/// Decodes `bytes`; if a frame comes out, its re-encoding must be exactly the bytes it took.
fn check_canonical_client(bytes: &[u8]) {
    if let Ok(Some((frame, consumed))) = client_decoder().decode(bytes) {
        let mut again = Vec::new();
        encode_client(&frame.message, frame.request_id, &mut again).unwrap();
        assert_eq!(again, bytes[..consumed], "{frame:?} re-encodes differently");
    }
}

fn check_canonical_server(bytes: &[u8]) {
    if let Ok(Some((frame, consumed))) = server_decoder().decode(bytes) {
        let mut again = Vec::new();
        encode_server(&frame.message, frame.request_id, &mut again).unwrap();
        assert_eq!(again, bytes[..consumed], "{frame:?} re-encodes differently");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn client_messages_round_trip(message in client_message(), request_id in 1..=u64::MAX) {
        let frame = client_frame(&message, request_id);
        prop_assert_eq!(client_decoder().frame_size_bytes(&frame), Ok(Some(frame.len())));
        prop_assert_eq!(client_decoder().decode(&frame), Ok(Some((Frame { request_id, message }, frame.len()))));
    }

    #[test]
    fn server_messages_round_trip(message in server_message(), request_id in any::<u64>()) {
        let frame = server_frame(&message, request_id);
        prop_assert_eq!(server_decoder().frame_size_bytes(&frame), Ok(Some(frame.len())));
        prop_assert_eq!(server_decoder().decode(&frame), Ok(Some((Frame { request_id, message }, frame.len()))));
    }

    #[test]
    fn a_split_client_frame_needs_more_bytes_and_a_cut_body_is_an_error(
        message in client_message(),
        cut in any::<Index>(),
    ) {
        let frame = client_frame(&message, 1);
        let length = cut.index(frame.len());
        prop_assert_eq!(client_decoder().decode(&frame[..length]), Ok(None));
        // Messages without a body (status, ping, pong) have no body to cut.
        if frame.len() > 13 {
            let body_length = cut.index(frame.len() - 13);
            prop_assert!(client_decoder().decode(&with_body_length(&frame, body_length)).is_err());
        }
    }

    #[test]
    fn a_split_server_frame_needs_more_bytes_and_a_cut_body_is_an_error(
        message in server_message(),
        cut in any::<Index>(),
    ) {
        let frame = server_frame(&message, 1);
        let length = cut.index(frame.len());
        prop_assert_eq!(server_decoder().decode(&frame[..length]), Ok(None));
        // Messages without a body (status, ping, pong) have no body to cut.
        if frame.len() > 13 {
            let body_length = cut.index(frame.len() - 13);
            prop_assert!(server_decoder().decode(&with_body_length(&frame, body_length)).is_err());
        }
    }

    #[test]
    fn mutated_client_frames_never_panic_and_decode_only_canonically(
        message in client_message(),
        mutations in proptest::collection::vec((any::<Index>(), any::<u8>()), 1..4),
        garbage in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut frame = client_frame(&message, 1);
        for (position, value) in mutations {
            let index = position.index(frame.len());
            frame[index] = value;
        }
        frame.extend_from_slice(&garbage);
        check_canonical_client(&frame);
    }

    #[test]
    fn mutated_server_frames_never_panic_and_decode_only_canonically(
        message in server_message(),
        mutations in proptest::collection::vec((any::<Index>(), any::<u8>()), 1..4),
        garbage in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut frame = server_frame(&message, 1);
        for (position, value) in mutations {
            let index = position.index(frame.len());
            frame[index] = value;
        }
        frame.extend_from_slice(&garbage);
        check_canonical_server(&frame);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_canonical_client(&bytes);
        check_canonical_server(&bytes);
    }
}
