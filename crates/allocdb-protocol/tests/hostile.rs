//! Hostile and malformed input: each test feeds the decoder bytes a broken or malicious peer
//! could send and checks the exact typed error (field, offset, values) — or, where the frame is
//! merely incomplete, "need more bytes". Also the encoder's refusals of messages no peer could
//! accept.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]
#![allow(clippy::indexing_slicing, reason = "tests slice frames they built")]

#[allow(dead_code, reason = "each test file uses part of the shared support")]
mod support;

use allocdb_core::{BUNDLE_SIZE_LIMIT, ClientId, HolderId, LeaseId, OperationId, ResourceId};
use allocdb_protocol::{
    BATCH_SIZE_LIMIT, ClientMessage, DecodeError, Defect, EncodeError, FRAME_SIZE_BYTES_LIMIT, FrameDecoder,
    MESSAGE_SIZE_BYTES_MAX, ProtocolError, ProtocolErrorCode, ProtocolLimits, RejectionCategory,
    RejectionCode, ServerMessage, Write, WriteCommand, WriteOperation, encode_client, encode_server,
};
use support::{client_frame, raw_frame};

fn client_decode(bytes: &[u8]) -> Result<Option<ClientMessage>, DecodeError> {
    FrameDecoder::<ClientMessage>::default()
        .decode(bytes)
        .map(|decoded| decoded.map(|(frame, _)| frame.message))
}

fn server_decode(bytes: &[u8]) -> Result<Option<ServerMessage>, DecodeError> {
    FrameDecoder::<ServerMessage>::default()
        .decode(bytes)
        .map(|decoded| decoded.map(|(frame, _)| frame.message))
}

fn defect<T: std::fmt::Debug>(result: Result<T, DecodeError>) -> Defect {
    result.unwrap_err().defect
}

#[test]
fn huge_length_prefix_is_rejected_from_its_four_bytes() {
    let error = client_decode(&[0xff, 0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(
        error,
        DecodeError {
            request_id: None,
            defect: Defect::FrameTooLarge { size_bytes: u64::from(u32::MAX) + 4, limit: 1024 * 1024 }
        }
    );
    assert_eq!(
        error.to_string(),
        "frame: frame of 4294967299 bytes (length prefix included) exceeds the limit of 1048576 bytes"
    );
    assert_eq!(error.to_protocol_error().code, ProtocolErrorCode::FrameTooLarge);
}

#[test]
fn frame_limit_is_exact_and_configurable() {
    let limits = ProtocolLimits::new(FRAME_SIZE_BYTES_LIMIT, 8192).unwrap();
    let decoder = FrameDecoder::<ClientMessage>::new(limits);
    let at_limit = (FRAME_SIZE_BYTES_LIMIT - 4).to_le_bytes();
    assert_eq!(decoder.frame_size_bytes(&at_limit), Ok(Some(FRAME_SIZE_BYTES_LIMIT as usize)));
    assert_eq!(decoder.decode(&at_limit), Ok(None), "a frame at the limit is waited for");
    let above = (FRAME_SIZE_BYTES_LIMIT - 3).to_le_bytes();
    assert_eq!(
        defect(decoder.decode(&above)),
        Defect::FrameTooLarge {
            size_bytes: u64::from(FRAME_SIZE_BYTES_LIMIT) + 1,
            limit: FRAME_SIZE_BYTES_LIMIT
        }
    );
}

#[test]
fn length_prefix_below_the_header_is_rejected() {
    for length in 0..9_u32 {
        assert_eq!(
            defect(client_decode(&length.to_le_bytes())),
            Defect::FrameTooShort { length, length_min: 9 }
        );
    }
}

#[test]
fn http_sent_to_the_binary_port_fails_on_its_first_four_bytes() {
    let error = client_decode(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap_err();
    assert!(matches!(error.defect, Defect::FrameTooLarge { size_bytes: 542_393_675, .. }), "{error}");
}

#[test]
fn incomplete_prefix_or_frame_needs_more_bytes() {
    assert_eq!(client_decode(&[]), Ok(None));
    assert_eq!(client_decode(&[9, 0, 0]), Ok(None));
    assert_eq!(client_decode(&[9, 0, 0, 0, 0x06, 1]), Ok(None));
}

#[test]
fn huge_batch_count_with_few_bytes_allocates_nothing_and_is_rejected() {
    let frame = raw_frame(0x02, 1, &u32::MAX.to_le_bytes());
    assert_eq!(
        client_decode(&frame),
        Err(DecodeError {
            request_id: Some(1),
            defect: Defect::CountExceedsLimit {
                field: "write count",
                offset: 13,
                count: u64::from(u32::MAX),
                limit: 8192
            }
        })
    );
    assert_eq!(client_decode(&frame).unwrap_err().to_protocol_error().code, ProtocolErrorCode::LimitExceeded);
    // Within the batch limit, but 18 bytes short of the smallest 8192 writes.
    let mut body = 8192_u32.to_le_bytes().to_vec();
    body.resize(4 + 8192 * 18 - 18, 0);
    assert_eq!(
        defect(client_decode(&raw_frame(0x02, 1, &body))),
        Defect::CountExceedsBytes {
            field: "write count",
            offset: 13,
            count: 8192,
            needed: 8192 * 18,
            available: 8191 * 18
        }
    );
}

#[test]
fn huge_member_count_is_rejected_before_members_are_read() {
    let reserve_head = |count: u16| {
        let mut body = 1_u32.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 2]); // no operation id; reserve
        body.extend_from_slice(&30_000_u64.to_le_bytes());
        body.extend_from_slice(&42_u128.to_le_bytes());
        body.extend_from_slice(&count.to_le_bytes());
        body
    };
    let offset = 13 + 4 + 2 + 8 + 16;
    let limit = u64::from(BUNDLE_SIZE_LIMIT);
    assert_eq!(
        defect(client_decode(&raw_frame(0x02, 1, &reserve_head(u16::MAX)))),
        Defect::CountExceedsLimit { field: "member count", offset, count: 65_535, limit }
    );
    assert_eq!(
        defect(client_decode(&raw_frame(0x02, 1, &reserve_head(1025)))),
        Defect::CountExceedsLimit { field: "member count", offset, count: 1025, limit }
    );
    assert_eq!(
        defect(client_decode(&raw_frame(0x02, 1, &reserve_head(1024)))),
        Defect::CountExceedsBytes {
            field: "member count",
            offset,
            count: 1024,
            needed: 16 * 1024,
            available: 0
        }
    );
}

#[test]
fn huge_counts_from_a_server_are_rejected_too() {
    assert_eq!(
        defect(server_decode(&raw_frame(0x82, 1, &70_000_u32.to_le_bytes()))),
        Defect::CountExceedsLimit { field: "result count", offset: 13, count: 70_000, limit: 8192 }
    );
    let mut lease = vec![1]; // found
    lease.extend_from_slice(&[0; 8 + 16 + 16]);
    lease.push(1); // reserved
    lease.extend_from_slice(&[0; 16]);
    lease.push(0); // no optional fields
    lease.extend_from_slice(&2_u16.to_le_bytes());
    lease.extend_from_slice(&[0; 16]); // one member of the two announced
    assert_eq!(
        defect(server_decode(&raw_frame(0x84, 1, &lease))),
        Defect::CountExceedsBytes { field: "member count", offset: 72, count: 2, needed: 32, available: 16 }
    );
    let mut message = vec![2]; // malformed_frame
    message.extend_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(
        defect(server_decode(&raw_frame(0xFF, 0, &message))),
        Defect::CountExceedsLimit {
            field: "message",
            offset: 14,
            count: 65_535,
            limit: MESSAGE_SIZE_BYTES_MAX as u64
        }
    );
}

#[test]
fn garbage_after_a_valid_frame_is_left_for_the_next_decode() {
    let mut bytes = client_frame(&ClientMessage::Ping, 3);
    let frame_size = bytes.len();
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00]);
    let (frame, consumed) = FrameDecoder::<ClientMessage>::default().decode(&bytes).unwrap().unwrap();
    assert_eq!((frame.request_id, frame.message, consumed), (3, ClientMessage::Ping, frame_size));
    assert!(matches!(defect(client_decode(&bytes[consumed..])), Defect::FrameTooLarge { .. }));
}

#[test]
fn invalid_utf8_in_a_message_is_rejected_with_its_offset() {
    let mut body = vec![2, 4, 0];
    body.extend_from_slice(&[b'b', b'a', 0xc3, 0x28]);
    let error = server_decode(&raw_frame(0xC1, 1, &body)).unwrap_err();
    assert_eq!(error.defect, Defect::InvalidUtf8 { field: "message", offset: 16, valid_up_to: 2 });
    assert_eq!(error.to_protocol_error().code, ProtocolErrorCode::MalformedFrame);
    body[0] = 1;
    assert_eq!(
        defect(server_decode(&raw_frame(0xFF, 0, &body))),
        Defect::InvalidUtf8 { field: "message", offset: 16, valid_up_to: 2 }
    );
}

#[test]
fn expire_from_a_client_is_rejected() {
    let mut body = 1_u32.to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 7]);
    body.extend_from_slice(&[0; 24]);
    let error = client_decode(&raw_frame(0x02, 5, &body)).unwrap_err();
    assert_eq!(error, DecodeError { request_id: Some(5), defect: Defect::ExpireFromClient { offset: 18 } });
    assert_eq!(
        error.to_protocol_error(),
        ProtocolError {
            code: ProtocolErrorCode::ExpireNotAllowed,
            message: "frame of request 5: command kind expire at offset 18 is internal and not accepted from clients"
                .into()
        }
    );
}

#[test]
fn unknown_tags_kinds_and_codes_are_rejected() {
    assert_eq!(defect(client_decode(&raw_frame(0x81, 1, &[]))), Defect::UnknownTag { tag: 0x81 });
    assert_eq!(defect(server_decode(&raw_frame(0x06, 1, &[]))), Defect::UnknownTag { tag: 0x06 });
    assert_eq!(defect(client_decode(&raw_frame(0x00, 1, &[]))), Defect::UnknownTag { tag: 0x00 });
    for kind in [0, 8, 255] {
        let mut body = 1_u32.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, kind]);
        body.extend_from_slice(&[0; 16]);
        assert_eq!(
            defect(client_decode(&raw_frame(0x02, 1, &body))),
            Defect::UnknownValue { field: "command kind", offset: 18, value: kind }
        );
    }
    let committed = |result: u8| {
        let mut body = 1_u32.to_le_bytes().to_vec();
        body.extend_from_slice(&[1, result]);
        body.extend_from_slice(&[0; 9]);
        raw_frame(0x82, 1, &body)
    };
    assert!(server_decode(&committed(19)).is_ok());
    assert_eq!(
        defect(server_decode(&committed(20))),
        Defect::UnknownValue { field: "result code", offset: 18, value: 20 }
    );
    for (tag, body, field) in [
        (0x82_u8, vec![1, 0, 0, 0, 0, 0], "write outcome"),
        (0x82, vec![1, 0, 0, 0, 3, 0], "rejection code"),
        (0x82, vec![1, 0, 0, 0, 3, 12], "rejection code"),
        (0x83, vec![0], "resource read status"),
        (0x83, vec![5, 0], "rejection code"),
        (0x84, vec![6], "lease read status"),
        (0xC1, vec![0, 0, 0], "refusal reason"),
        (0xFF, vec![8, 0, 0], "protocol error code"),
    ] {
        assert!(
            matches!(defect(server_decode(&raw_frame(tag, 1, &body))), Defect::UnknownValue { field: found, .. } if found == field),
            "{field}"
        );
    }
}

#[test]
fn reserved_flag_bits_are_rejected() {
    let mut body = 1_u32.to_le_bytes().to_vec();
    body.extend_from_slice(&[0b100, 1]);
    body.extend_from_slice(&[0; 16]);
    assert_eq!(
        defect(client_decode(&raw_frame(0x02, 1, &body))),
        Defect::ReservedBitsSet { field: "write flags", offset: 17, value: 0b100, allowed: 0b11 }
    );
    body[4] = 0b10;
    assert_eq!(
        defect(client_decode(&raw_frame(0x02, 1, &body))),
        Defect::ClientIdWithoutOperationId { offset: 17 }
    );
    // A definite rejection with the leader-hint bit, reserved in version 1.
    let hint = [1, 0, 0, 0, 2, RejectionCode::NotLeader.as_u8(), 1];
    assert_eq!(
        defect(server_decode(&raw_frame(0x82, 1, &hint))),
        Defect::ReservedBitsSet { field: "rejection flags", offset: 19, value: 1, allowed: 0 }
    );
    let mut committed = vec![1, 0, 0, 0, 1, 0];
    committed.extend_from_slice(&[0; 8]);
    committed.push(0x10);
    assert_eq!(
        defect(server_decode(&raw_frame(0x82, 1, &committed))),
        Defect::ReservedBitsSet { field: "committed flags", offset: 27, value: 0x10, allowed: 0x0f }
    );
    let mut status = vec![0; 8];
    status.push(1);
    status.extend_from_slice(&[0; 16 + 80]);
    status.push(0b10);
    assert!(matches!(
        defect(server_decode(&raw_frame(0x85, 1, &status))),
        Defect::ReservedBitsSet { field: "status flags", value: 0b10, .. }
    ));
}

#[test]
fn rejection_sent_in_the_wrong_category_is_rejected() {
    let body = [1, 0, 0, 0, 2, RejectionCode::StorageFailure.as_u8(), 0];
    let error = server_decode(&raw_frame(0x82, 1, &body)).unwrap_err();
    assert_eq!(
        error.defect,
        Defect::CategoryMismatch {
            offset: 18,
            code: RejectionCode::StorageFailure,
            sent: RejectionCategory::Definite
        }
    );
    assert!(
        error.to_string().contains("storage_failure at offset 18 is indefinite, but was sent as definite"),
        "{error}"
    );
    let body = [1, 0, 0, 0, 3, RejectionCode::NotLeader.as_u8()];
    assert!(matches!(defect(server_decode(&raw_frame(0x82, 1, &body))), Defect::CategoryMismatch { .. }));
}

#[test]
fn hello_without_magic_and_zero_request_ids_are_rejected() {
    let mut body = b"HTTP".to_vec();
    body.extend_from_slice(&[0; 34]);
    assert_eq!(
        defect(client_decode(&raw_frame(0x01, 1, &body))),
        Defect::BadMagic { offset: 13, found: *b"HTTP" }
    );
    assert_eq!(defect(client_decode(&raw_frame(0x06, 0, &[]))), Defect::ReservedRequestId);
}

#[test]
fn encoder_refuses_what_no_peer_could_accept() {
    let mut out = vec![0xAA];
    let bundle = vec![ResourceId(1); BUNDLE_SIZE_LIMIT as usize + 1];
    let reserve = Write {
        operation: None,
        command: WriteCommand::Reserve { ttl_ms: 1, holder_id: HolderId(1), resource_ids: bundle },
    };
    assert_eq!(
        encode_client(&ClientMessage::WriteBatch(vec![reserve]), 1, &mut out),
        Err(EncodeError::BundleTooLarge { count: 1025, limit: BUNDLE_SIZE_LIMIT })
    );
    let revoke = Write { operation: None, command: WriteCommand::Revoke { lease_id: LeaseId(1) } };
    assert_eq!(
        encode_client(&ClientMessage::WriteBatch(vec![revoke; BATCH_SIZE_LIMIT as usize + 1]), 1, &mut out),
        Err(EncodeError::BatchTooLarge { count: 65_537, limit: BATCH_SIZE_LIMIT })
    );
    let largest = Write {
        operation: Some(WriteOperation { operation_id: OperationId(1), client_id: Some(ClientId(2)) }),
        command: WriteCommand::Reserve {
            ttl_ms: 1,
            holder_id: HolderId(1),
            resource_ids: vec![ResourceId(1); BUNDLE_SIZE_LIMIT as usize],
        },
    };
    assert_eq!(largest.encoded_size_bytes(), allocdb_protocol::WRITE_SIZE_BYTES_MAX);
    let error = encode_client(&ClientMessage::WriteBatch(vec![largest; 1021]), 1, &mut out).unwrap_err();
    assert!(matches!(error, EncodeError::FrameTooLarge { limit: FRAME_SIZE_BYTES_LIMIT, .. }), "{error}");
    let long = ProtocolError {
        code: ProtocolErrorCode::MalformedFrame,
        message: "x".repeat(MESSAGE_SIZE_BYTES_MAX + 1),
    };
    assert_eq!(
        encode_server(&ServerMessage::ProtocolError(long), 0, &mut out),
        Err(EncodeError::MessageTooLong {
            size_bytes: MESSAGE_SIZE_BYTES_MAX + 1,
            limit: MESSAGE_SIZE_BYTES_MAX
        })
    );
    assert_eq!(out, [0xAA], "a failed encoding appends nothing");
}
