//! Corruption before the tail fails closed: recovery names the file, the frame offset and the
//! defect, changes nothing on disk, and never drops the records after the damage.
//!
//! The log used here is records 1..=6 in one segment; the damaged record is lsn 3, so valid
//! frames follow it. A torn write can only damage the last frame, so any damage with intact
//! frames after it must be corruption, whatever field it hits — including a length field that
//! would otherwise swallow the following frames.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use allocdb_storage::{
    DamageEvidence, FRAME_HEADER_SIZE_BYTES, FrameDefect, Lsn, PAYLOAD_SIZE_BYTES_LIMIT, RecoveryError,
    SimDirectory, encode_frame,
};
use common::{
    append_and_sync, config, directory_with_records, frame_offset, frame_size, record, records, recover,
    recovery_error,
};

const SEGMENT: &str = "log-00000000000000000001.seg";
const DAMAGED_LSN: Lsn = 3;

fn expect_corruption(directory: &SimDirectory) -> (u64, FrameDefect, DamageEvidence) {
    let before = directory.durable_bytes(SEGMENT).unwrap();
    let error = recovery_error(directory);
    assert_eq!(directory.durable_bytes(SEGMENT).unwrap(), before, "failed recovery changed the segment");
    let message = error.to_string();
    let RecoveryError::Corruption { file, offset, defect, evidence } = error else {
        panic!("expected corruption, got {message}");
    };
    assert_eq!(file, SEGMENT);
    assert!(message.contains(SEGMENT) && message.contains(&format!("offset {offset}")), "message: {message}");
    (offset, defect, evidence)
}

/// The defect recovery must report for a flip of `bit` (0–7) of header byte `index`.
fn expected_defect(index: usize, bit: u8, frame_start: u64) -> fn(&FrameDefect) -> bool {
    let payload_size = record(DAMAGED_LSN).payload.len() as u64;
    match index {
        0..=3 => |defect| matches!(defect, FrameDefect::BadMagic { .. }),
        4..=5 => |defect| matches!(defect, FrameDefect::UnsupportedVersion { .. }),
        7 => |defect| matches!(defect, FrameDefect::ReservedNotZero { .. }),
        24..=27 => {
            let flipped = payload_size ^ (1 << ((index - 24) * 8 + usize::from(bit)));
            if flipped > u64::from(PAYLOAD_SIZE_BYTES_LIMIT) {
                |defect| matches!(defect, FrameDefect::PayloadTooLarge { .. })
            } else if FRAME_HEADER_SIZE_BYTES + flipped > config().segment_size_bytes - frame_start {
                |defect| matches!(defect, FrameDefect::FramePastEnd { .. })
            } else {
                |defect| matches!(defect, FrameDefect::ChecksumMismatch { .. })
            }
        }
        // Kind, lsn, slot, checksum and payload have no check of their own: the checksum
        // catches them.
        _ => |defect| matches!(defect, FrameDefect::ChecksumMismatch { .. }),
    }
}

/// Every bit of every header field and of the payload of a middle record, flipped one at a
/// time, is reported as corruption of that frame with the field's own defect.
#[test]
fn flipped_bit_in_every_field_of_middle_record_fails_closed() {
    let start = frame_offset(1, DAMAGED_LSN);
    let next_frame = frame_offset(1, DAMAGED_LSN + 1);
    let frame = usize::try_from(frame_size(DAMAGED_LSN)).unwrap();
    for index in 0..frame {
        for bit in 0..8 {
            let directory = directory_with_records(6);
            directory.flip_bit(SEGMENT, start + index as u64, bit).unwrap();
            let (offset, defect, evidence) = expect_corruption(&directory);
            assert_eq!(offset, start, "byte {index} bit {bit}");
            assert!(expected_defect(index, bit, start)(&defect), "byte {index} bit {bit}: {defect}");
            assert_eq!(
                evidence,
                DamageEvidence::ValidFrameFollows { offset: next_frame },
                "byte {index} bit {bit}"
            );
        }
    }
}

/// A middle record's length field pointing past the end of the file is corruption.
#[test]
fn length_past_end_of_file_in_middle_record_fails_closed() {
    let directory = directory_with_records(6);
    let start = frame_offset(1, DAMAGED_LSN);
    directory.write_durably(SEGMENT, start + 24, &10_000_u32.to_le_bytes()).unwrap();
    let (offset, defect, evidence) = expect_corruption(&directory);
    assert_eq!(offset, start);
    assert_eq!(defect, FrameDefect::FramePastEnd { frame_size_bytes: 10_032, available_bytes: 512 - start });
    assert!(matches!(evidence, DamageEvidence::ValidFrameFollows { .. }));
}

/// The last record's length field pointing past the end of the file is corruption too: its
/// payload was written, which a torn write of the header alone cannot explain.
#[test]
fn length_past_end_of_file_in_last_record_fails_closed() {
    let directory = directory_with_records(6);
    let start = frame_offset(1, 6);
    directory.write_durably(SEGMENT, start + 24, &10_000_u32.to_le_bytes()).unwrap();
    let (offset, defect, evidence) = expect_corruption(&directory);
    assert_eq!(offset, start);
    assert!(matches!(defect, FrameDefect::FramePastEnd { .. }));
    assert_eq!(evidence, DamageEvidence::DataFollows { offset: start + FRAME_HEADER_SIZE_BYTES });
}

/// Known limit, by design: a flipped payload bit in the very last record, with nothing after
/// it, looks exactly like a torn write and is truncated as one (and reported).
#[test]
fn flipped_bit_in_last_record_is_truncated_as_torn_tail() {
    let directory = directory_with_records(6);
    let start = frame_offset(1, 6);
    directory.flip_bit(SEGMENT, start + FRAME_HEADER_SIZE_BYTES + 2, 0).unwrap();
    let recovered = recover(&directory);
    assert_eq!(recovered.records, records(1..=5));
    assert_eq!(recovered.report.torn_tail.map(|torn| torn.offset), Some(start));
}

fn append_raw_frame(directory: &SimDirectory, after_lsn: Lsn, lsn: Lsn, slot: u64) -> u64 {
    let mut forged = record(lsn);
    forged.slot = slot;
    let mut bytes = Vec::new();
    encode_frame(&forged.borrow(), &mut bytes);
    let offset = frame_offset(1, after_lsn + 1);
    directory.write_durably(SEGMENT, offset, &bytes).unwrap();
    offset
}

/// An intact frame whose lsn skips ahead fails closed even at the tail: its checksum proves
/// it was written whole, so it is not torn.
#[test]
fn intact_frame_with_skipped_lsn_fails_closed() {
    let directory = directory_with_records(3);
    let offset = append_raw_frame(&directory, 3, 5, record(5).slot);
    let (found_offset, defect, evidence) = expect_corruption(&directory);
    assert_eq!(found_offset, offset);
    assert_eq!(defect, FrameDefect::LsnOutOfSequence { expected: 4, found: 5 });
    assert_eq!(evidence, DamageEvidence::IntactFrame);
}

/// A repeated lsn is out of sequence as well.
#[test]
fn intact_frame_with_repeated_lsn_fails_closed() {
    let directory = directory_with_records(3);
    append_raw_frame(&directory, 3, 3, record(3).slot);
    let (_, defect, _) = expect_corruption(&directory);
    assert_eq!(defect, FrameDefect::LsnOutOfSequence { expected: 4, found: 3 });
}

/// A slot lower than the previous record's fails closed.
#[test]
fn intact_frame_with_decreasing_slot_fails_closed() {
    let directory = directory_with_records(3);
    let previous = record(3).slot;
    append_raw_frame(&directory, 3, 4, previous - 1);
    let (_, defect, evidence) = expect_corruption(&directory);
    assert_eq!(defect, FrameDefect::SlotRegression { previous, found: previous - 1 });
    assert_eq!(evidence, DamageEvidence::IntactFrame);
}

/// A zeroed header in the middle would read as the end of the log; the frames after it prove
/// otherwise.
#[test]
fn zeroed_middle_header_fails_closed() {
    let directory = directory_with_records(6);
    let start = frame_offset(1, DAMAGED_LSN);
    directory.write_durably(SEGMENT, start, &[0; 32]).unwrap();
    let (offset, defect, evidence) = expect_corruption(&directory);
    assert_eq!((offset, defect), (start, FrameDefect::ZeroHeader));
    assert_eq!(evidence, DamageEvidence::DataFollows { offset: start + 32 });
}

/// Stray bytes in the zeroed space after the last record are not a clean end.
#[test]
fn nonzero_byte_after_end_of_log_fails_closed() {
    let directory = directory_with_records(6);
    directory.write_durably(SEGMENT, 500, &[7]).unwrap();
    let (offset, defect, evidence) = expect_corruption(&directory);
    assert_eq!((offset, defect), (frame_offset(1, 7), FrameDefect::ZeroHeader));
    assert_eq!(evidence, DamageEvidence::DataFollows { offset: 500 });
}

/// Damage to the last frame of an earlier segment is never a torn tail: that segment was
/// synced before the next one was created.
#[test]
fn damaged_last_frame_of_earlier_segment_fails_closed() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    let mut lsn = 0;
    while common::segment_names(&directory).len() < 2 {
        lsn += 1;
        append_and_sync(&mut storage, lsn..=lsn);
    }
    // `lsn` opened the second segment, so `lsn - 1` is the first segment's last record.
    let start = frame_offset(1, lsn - 1);
    directory.flip_bit(SEGMENT, start + frame_size(lsn - 1) - 1, 3).unwrap();
    let (offset, defect, evidence) = expect_corruption(&directory);
    assert_eq!(offset, start);
    assert!(matches!(defect, FrameDefect::ChecksumMismatch { .. }));
    assert_eq!(evidence, DamageEvidence::NotLastSegment);
}
