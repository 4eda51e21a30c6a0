//! Snapshot files: a checked envelope around the kernel's opaque snapshot bytes
//! (`docs/storage.md`, "Snapshot file").
//!
//! Layout, little-endian, a 36-byte header then the payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"ADBS"` |
//! | 4 | 2 | format version (1) |
//! | 6 | 2 | reserved, must be 0 |
//! | 8 | 8 | lsn: the snapshot covers every record up to and including it |
//! | 16 | 8 | slot: the last logged slot when the snapshot was taken |
//! | 24 | 8 | payload size in bytes |
//! | 32 | 4 | CRC32C of bytes 0..32 followed by the payload |
//! | 36 | n | payload (the kernel's snapshot encoding, opaque here) |
//!
//! Invariants: the file size is exactly 36 + payload size (a truncated or extended file is
//! rejected); the header lsn equals the lsn in the file name; the payload is allocated only
//! after its size has been checked against the file size and the configured maximum. The
//! kernel checks the payload's own structure again when it restores from it.

#![deny(clippy::indexing_slicing)]

use crate::defect::SnapshotDefect;
use crate::error::{IoFailure, IoOperation};
use crate::frame::{Lsn, Slot};
use crate::io::LogFile;

/// Magic number opening every snapshot file: the bytes `ADBS` as a little-endian `u32`.
pub const SNAPSHOT_FILE_MAGIC: u32 = u32::from_le_bytes(*b"ADBS");
/// Snapshot file format version written and read by this code.
pub const SNAPSHOT_FILE_VERSION: u16 = 1;
/// Size of the snapshot file header.
pub const SNAPSHOT_FILE_HEADER_SIZE_BYTES: u64 = 36;

const HEADER_SIZE: usize = SNAPSHOT_FILE_HEADER_SIZE_BYTES as usize;
const CHECKSUM_OFFSET: usize = 32;

/// A snapshot read back from disk and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotImage {
    /// The file it came from.
    pub file_name: String,
    /// Every record up to and including this lsn is reflected in the payload.
    pub lsn: Lsn,
    /// The last logged slot when the snapshot was taken.
    pub slot: Slot,
    /// The opaque snapshot bytes (for `Kernel::restore`).
    pub payload: Vec<u8>,
}

/// The header of a snapshot with `payload`, checksum included.
pub(crate) fn encode_header(lsn: Lsn, slot: Slot, payload: &[u8]) -> [u8; HEADER_SIZE] {
    let mut header = [0_u8; HEADER_SIZE];
    let fields = SNAPSHOT_FILE_MAGIC
        .to_le_bytes()
        .into_iter()
        .chain(SNAPSHOT_FILE_VERSION.to_le_bytes())
        .chain(0_u16.to_le_bytes())
        .chain(lsn.to_le_bytes())
        .chain(slot.to_le_bytes())
        .chain((payload.len() as u64).to_le_bytes());
    for (target, byte) in header.iter_mut().zip(fields) {
        *target = byte;
    }
    let checksum =
        crc32c::crc32c_append(crc32c::crc32c(header.get(..CHECKSUM_OFFSET).unwrap_or_default()), payload);
    for (target, byte) in header.iter_mut().skip(CHECKSUM_OFFSET).zip(checksum.to_le_bytes()) {
        *target = byte;
    }
    header
}

/// Outcome of reading a snapshot file: an I/O failure is an operating condition, a defect
/// means the file's contents are unusable.
pub(crate) enum ReadFailure {
    Io(IoFailure),
    Defect(SnapshotDefect),
}

/// Reads and verifies the snapshot in `file`, whose name says it covers `name_lsn`.
pub(crate) fn read_snapshot(
    file: &impl LogFile,
    file_name: &str,
    name_lsn: Lsn,
    size_bytes_max: u64,
) -> Result<SnapshotImage, ReadFailure> {
    let file_size = file
        .size_bytes()
        .map_err(|error| ReadFailure::Io(IoFailure::on(IoOperation::Read, file_name)(error)))?;
    if file_size < SNAPSHOT_FILE_HEADER_SIZE_BYTES {
        return Err(ReadFailure::Defect(SnapshotDefect::HeaderTruncated {
            file_size_bytes: file_size,
            header_size_bytes: SNAPSHOT_FILE_HEADER_SIZE_BYTES,
        }));
    }
    let mut header = [0_u8; HEADER_SIZE];
    file.read_exact_at(0, &mut header)
        .map_err(|error| ReadFailure::Io(IoFailure::at(IoOperation::Read, file_name, 0)(error)))?;
    let fields = decode_header(&header, name_lsn).map_err(ReadFailure::Defect)?;
    let expected_size = SNAPSHOT_FILE_HEADER_SIZE_BYTES.saturating_add(fields.payload_size_bytes);
    if fields.payload_size_bytes > size_bytes_max {
        return Err(ReadFailure::Defect(SnapshotDefect::TooLarge {
            size_bytes: fields.payload_size_bytes,
            size_bytes_max,
        }));
    }
    if expected_size != file_size {
        return Err(ReadFailure::Defect(SnapshotDefect::SizeMismatch {
            file_size_bytes: file_size,
            expected_size_bytes: expected_size,
        }));
    }
    // The size now matches a real file and is below the configured maximum: safe to allocate.
    let payload_size = usize::try_from(fields.payload_size_bytes).map_err(|_| {
        ReadFailure::Defect(SnapshotDefect::TooLarge {
            size_bytes: fields.payload_size_bytes,
            size_bytes_max,
        })
    })?;
    let mut payload = vec![0_u8; payload_size];
    file.read_exact_at(SNAPSHOT_FILE_HEADER_SIZE_BYTES, &mut payload).map_err(|error| {
        ReadFailure::Io(IoFailure::at(IoOperation::Read, file_name, SNAPSHOT_FILE_HEADER_SIZE_BYTES)(error))
    })?;
    let computed =
        crc32c::crc32c_append(crc32c::crc32c(header.get(..CHECKSUM_OFFSET).unwrap_or_default()), &payload);
    if computed != fields.checksum {
        return Err(ReadFailure::Defect(SnapshotDefect::ChecksumMismatch {
            stored: fields.checksum,
            computed,
        }));
    }
    Ok(SnapshotImage { file_name: file_name.to_owned(), lsn: fields.lsn, slot: fields.slot, payload })
}

struct HeaderFields {
    lsn: Lsn,
    slot: Slot,
    payload_size_bytes: u64,
    checksum: u32,
}

fn decode_header(header: &[u8; HEADER_SIZE], name_lsn: Lsn) -> Result<HeaderFields, SnapshotDefect> {
    let magic = u32::from_le_bytes(field(header, 0));
    if magic != SNAPSHOT_FILE_MAGIC {
        return Err(SnapshotDefect::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes(field(header, 4));
    if version != SNAPSHOT_FILE_VERSION {
        return Err(SnapshotDefect::UnsupportedVersion { found: version });
    }
    let reserved = u16::from_le_bytes(field(header, 6));
    if reserved != 0 {
        return Err(SnapshotDefect::ReservedNotZero { found: reserved });
    }
    let lsn = u64::from_le_bytes(field(header, 8));
    if lsn != name_lsn {
        return Err(SnapshotDefect::LsnMismatch { name_lsn, header_lsn: lsn });
    }
    if lsn == Lsn::MAX {
        return Err(SnapshotDefect::LsnOutOfRange { lsn });
    }
    Ok(HeaderFields {
        lsn,
        slot: u64::from_le_bytes(field(header, 16)),
        payload_size_bytes: u64::from_le_bytes(field(header, 24)),
        checksum: u32::from_le_bytes(field(header, CHECKSUM_OFFSET)),
    })
}

/// Copies `N` bytes at `offset` out of the fixed-size header. Offsets are constants inside
/// the header, so the fallback of zeros is unreachable; it exists to avoid indexing.
fn field<const N: usize>(header: &[u8; HEADER_SIZE], offset: usize) -> [u8; N] {
    let mut bytes = [0_u8; N];
    if let Some(source) = header.get(offset..offset + N) {
        bytes.copy_from_slice(source);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::LogDirectory;
    use crate::sim::SimDirectory;

    fn written(lsn: Lsn, payload: &[u8]) -> SimDirectory {
        let directory = SimDirectory::new();
        let mut bytes = encode_header(lsn, 5, payload).to_vec();
        bytes.extend_from_slice(payload);
        directory.put_durably("snap", &bytes);
        directory
    }

    #[test]
    fn snapshot_round_trips_through_read() {
        let directory = written(9, b"state");
        let file = directory.open("snap").unwrap();
        let Ok(image) = read_snapshot(&file, "snap", 9, 1024) else { panic!("snapshot did not read back") };
        assert_eq!((image.lsn, image.slot, image.payload.as_slice()), (9, 5, b"state".as_slice()));
    }

    #[test]
    fn snapshot_named_for_another_lsn_is_rejected() {
        let directory = written(9, b"state");
        let file = directory.open("snap").unwrap();
        let result = read_snapshot(&file, "snap", 10, 1024);
        assert!(matches!(
            result,
            Err(ReadFailure::Defect(SnapshotDefect::LsnMismatch { name_lsn: 10, header_lsn: 9 }))
        ));
    }
}
