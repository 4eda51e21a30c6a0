//! Log record frames: encoding and decoding of one record (`docs/storage.md`, "Record frame").
//!
//! Layout, all integers little-endian, 32-byte header then the payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"ADBL"` |
//! | 4 | 2 | format version (1) |
//! | 6 | 1 | record kind (opaque to storage) |
//! | 7 | 1 | reserved, must be 0 |
//! | 8 | 8 | lsn |
//! | 16 | 8 | slot |
//! | 24 | 4 | payload size in bytes |
//! | 28 | 4 | CRC32C of bytes 0..28 followed by the payload |
//! | 32 | n | payload |
//!
//! Invariants: the magic is never zero, so a zero word where a header should start marks the
//! end of the log; the checksum covers every header byte before it and the whole payload, so
//! any single changed bit is detected; decoding checks lengths before it slices and never
//! trusts the payload size beyond the bytes it was given. Decoding checks fields in the order
//! of the table, so a damaged field is reported as that field's defect when it can be.

#![deny(clippy::indexing_slicing)]

use crate::defect::FrameDefect;

/// Magic number opening every frame: the bytes `ADBL` read as a little-endian `u32`.
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"ADBL");
/// Frame format version written by this code and the only one it reads.
pub const FRAME_VERSION: u16 = 1;
/// Size of the frame header, the checksum included.
pub const FRAME_HEADER_SIZE_BYTES: u64 = 32;
/// Hard upper bound on a record payload, whatever the configuration says.
pub const PAYLOAD_SIZE_BYTES_LIMIT: u32 = 64 << 20;

const CHECKSUM_OFFSET: usize = 28;
const HEADER_SIZE: usize = FRAME_HEADER_SIZE_BYTES as usize;

const _: () = assert!(FRAME_MAGIC != 0, "a zero magic must mean end of log");
const _: () = assert!(CHECKSUM_OFFSET + 4 == HEADER_SIZE);

/// A log sequence number: the position of a record in the log, starting at 1.
pub type Lsn = u64;
/// Logical time carried by every record; never decreases along the log.
pub type Slot = u64;

/// The engine's tag for a record's payload. Storage stores it and never interprets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKind(pub u8);

/// One log record: what the engine appends and what recovery hands back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRecord<'a> {
    /// Position in the log; each record's lsn is the previous one's plus 1.
    pub lsn: Lsn,
    /// Slot of the record; never lower than the previous record's slot.
    pub slot: Slot,
    /// Engine-defined kind.
    pub kind: RecordKind,
    /// Engine-defined bytes, for example a batch of encoded commands.
    pub payload: &'a [u8],
}

/// Size of the frame that holds a payload of `payload_size_bytes` bytes.
pub const fn frame_size_bytes(payload_size_bytes: u32) -> u64 {
    FRAME_HEADER_SIZE_BYTES + payload_size_bytes as u64
}

/// Appends the frame of `record` to `out`.
///
/// # Panics
/// If the payload exceeds [`PAYLOAD_SIZE_BYTES_LIMIT`]; callers check the configured maximum
/// first, so this is a programmer error.
pub fn encode_frame(record: &LogRecord<'_>, out: &mut Vec<u8>) {
    let payload_size = u32::try_from(record.payload.len()).unwrap_or(u32::MAX);
    assert!(payload_size <= PAYLOAD_SIZE_BYTES_LIMIT, "payload of {payload_size} bytes exceeds the limit");
    let start = out.len();
    out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&FRAME_VERSION.to_le_bytes());
    out.push(record.kind.0);
    out.push(0);
    out.extend_from_slice(&record.lsn.to_le_bytes());
    out.extend_from_slice(&record.slot.to_le_bytes());
    out.extend_from_slice(&payload_size.to_le_bytes());
    let header_checksum = crc32c::crc32c(out.get(start..).unwrap_or_default());
    let checksum = crc32c::crc32c_append(header_checksum, record.payload);
    out.extend_from_slice(&checksum.to_le_bytes());
    out.extend_from_slice(record.payload);
    assert_eq!((out.len() - start) as u64, frame_size_bytes(payload_size));
}

/// The fields of a header whose magic, version, reserved byte and payload size passed their
/// checks; the checksum has not been verified yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CheckedHeader {
    pub(crate) payload_size_bytes: u32,
    pub(crate) frame_size_bytes: u64,
}

/// Checks the header fields that can be checked without the payload. `bytes` starts at the
/// frame and may extend beyond it.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<CheckedHeader, FrameDefect> {
    let header = bytes
        .get(..HEADER_SIZE)
        .ok_or(FrameDefect::HeaderTruncated { available_bytes: bytes.len() as u64 })?;
    let magic = read_u32(header, 0)?;
    if magic != FRAME_MAGIC {
        return Err(FrameDefect::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes(read_array(header, 4)?);
    if version != FRAME_VERSION {
        return Err(FrameDefect::UnsupportedVersion { found: version });
    }
    let reserved = read_array::<1>(header, 7)?[0];
    if reserved != 0 {
        return Err(FrameDefect::ReservedNotZero { found: reserved });
    }
    let payload_size_bytes = read_u32(header, 24)?;
    if payload_size_bytes > PAYLOAD_SIZE_BYTES_LIMIT {
        return Err(FrameDefect::PayloadTooLarge {
            size_bytes: payload_size_bytes,
            size_bytes_max: PAYLOAD_SIZE_BYTES_LIMIT,
        });
    }
    let frame_size = frame_size_bytes(payload_size_bytes);
    if frame_size > bytes.len() as u64 {
        return Err(FrameDefect::FramePastEnd {
            frame_size_bytes: frame_size,
            available_bytes: bytes.len() as u64,
        });
    }
    Ok(CheckedHeader { payload_size_bytes, frame_size_bytes: frame_size })
}

/// Decodes and verifies the frame at the start of `bytes`. Returns the record and the size of
/// its frame. It checks the frame alone; lsn and slot sequence are the caller's to check.
///
/// # Errors
/// The first defect found, in the order of the layout table.
///
/// # Panics
/// Never for any input; an assertion checks the decoder's own slicing.
pub fn decode_frame(bytes: &[u8]) -> Result<(LogRecord<'_>, u64), FrameDefect> {
    let header = decode_header(bytes)?;
    let frame_end = usize::try_from(header.frame_size_bytes).map_err(|_| FrameDefect::FramePastEnd {
        frame_size_bytes: header.frame_size_bytes,
        available_bytes: 0,
    })?;
    let frame = bytes.get(..frame_end).ok_or(FrameDefect::FramePastEnd {
        frame_size_bytes: header.frame_size_bytes,
        available_bytes: bytes.len() as u64,
    })?;
    let covered_header = frame.get(..CHECKSUM_OFFSET).unwrap_or_default();
    let payload = frame.get(HEADER_SIZE..).unwrap_or_default();
    let stored = read_u32(frame, CHECKSUM_OFFSET)?;
    let computed = crc32c::crc32c_append(crc32c::crc32c(covered_header), payload);
    if stored != computed {
        return Err(FrameDefect::ChecksumMismatch { stored, computed });
    }
    let record = LogRecord {
        lsn: u64::from_le_bytes(read_array(frame, 8)?),
        slot: u64::from_le_bytes(read_array(frame, 16)?),
        kind: RecordKind(read_array::<1>(frame, 6)?[0]),
        payload,
    };
    assert_eq!(record.payload.len() as u64, u64::from(header.payload_size_bytes));
    Ok((record, header.frame_size_bytes))
}

fn read_u32(bytes: &[u8], offset: usize) -> Result<u32, FrameDefect> {
    read_array(bytes, offset).map(u32::from_le_bytes)
}

fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Result<[u8; N], FrameDefect> {
    offset
        .checked_add(N)
        .and_then(|end| bytes.get(offset..end))
        .and_then(|slice| <[u8; N]>::try_from(slice).ok())
        .ok_or(FrameDefect::HeaderTruncated { available_bytes: bytes.len() as u64 })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index into frames they just built")]
mod tests {
    use super::*;

    fn encoded(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&LogRecord { lsn: 7, slot: 9, kind: RecordKind(3), payload }, &mut out);
        out
    }

    #[test]
    fn frame_round_trips_through_decode() {
        let bytes = encoded(b"hello");
        let (record, size) = decode_frame(&bytes).unwrap();
        assert_eq!(size, 37);
        assert_eq!(record, LogRecord { lsn: 7, slot: 9, kind: RecordKind(3), payload: b"hello" });
    }

    #[test]
    fn frame_header_layout_matches_the_documented_offsets() {
        let bytes = encoded(b"xy");
        assert_eq!(&bytes[0..4], b"ADBL");
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 1);
        assert_eq!(bytes[6], 3);
        assert_eq!(bytes[7], 0);
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 7);
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 9);
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 2);
        let mut covered = bytes[0..28].to_vec();
        covered.extend_from_slice(b"xy");
        assert_eq!(u32::from_le_bytes(bytes[28..32].try_into().unwrap()), crc32c::crc32c(&covered));
        assert_eq!(&bytes[32..], b"xy");
    }

    #[test]
    fn every_prefix_of_a_frame_fails_to_decode() {
        let bytes = encoded(b"payload");
        for cut in 0..bytes.len() {
            assert!(decode_frame(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = encoded(b"payload");
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_frame(&damaged).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn oversized_payload_field_is_rejected_before_reading_payload() {
        let mut bytes = encoded(b"");
        bytes[24..28].copy_from_slice(&(PAYLOAD_SIZE_BYTES_LIMIT + 1).to_le_bytes());
        assert!(matches!(decode_header(&bytes), Err(FrameDefect::PayloadTooLarge { .. })));
    }
}
