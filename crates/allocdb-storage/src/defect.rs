//! What is wrong with bytes read from disk: defects of a frame or a snapshot file, the
//! evidence that makes damage corruption rather than a torn tail, and why recovery refused
//! to fall back to an older snapshot.
//!
//! These are values inside [`crate::RecoveryError`], not errors of their own operation; they
//! carry the numbers found (and expected) so a message pinpoints the damage.

use crate::frame::{Lsn, Slot};

/// Why the bytes at a frame position are not a valid next record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameDefect {
    /// Fewer bytes remain than a frame header needs.
    #[error("frame header truncated: {available_bytes} bytes available, 32 needed")]
    HeaderTruncated {
        /// Bytes available from the frame start.
        available_bytes: u64,
    },
    /// The header is all zeros (end-of-log marker) but non-zero bytes follow it.
    #[error("zero frame header (end of log) followed by data")]
    ZeroHeader,
    /// The magic number is wrong.
    #[error("bad frame magic {found:#010x}, expected {expected:#010x}", expected = crate::frame::FRAME_MAGIC)]
    BadMagic {
        /// Magic found.
        found: u32,
    },
    /// The version is not one this code reads.
    #[error("unsupported frame version {found}, expected {expected}", expected = crate::frame::FRAME_VERSION)]
    UnsupportedVersion {
        /// Version found.
        found: u16,
    },
    /// The reserved byte is not zero.
    #[error("reserved frame byte is {found}, expected 0")]
    ReservedNotZero {
        /// Value found.
        found: u8,
    },
    /// The payload size field exceeds the hard limit.
    #[error("payload size {size_bytes} exceeds maximum {size_bytes_max}")]
    PayloadTooLarge {
        /// Size found.
        size_bytes: u32,
        /// The limit.
        size_bytes_max: u32,
    },
    /// The payload size field points past the end of the file.
    #[error(
        "frame of {frame_size_bytes} bytes extends past the end of the file ({available_bytes} bytes left)"
    )]
    FramePastEnd {
        /// Frame size the header claims.
        frame_size_bytes: u64,
        /// Bytes left in the file from the frame start.
        available_bytes: u64,
    },
    /// The checksum does not match the header and payload.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// Checksum in the frame.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },
    /// An intact frame has the wrong lsn.
    #[error("lsn {found} out of sequence, expected {expected}")]
    LsnOutOfSequence {
        /// The lsn that must come next.
        expected: Lsn,
        /// The lsn found.
        found: Lsn,
    },
    /// An intact frame has a slot lower than the one before it.
    #[error("slot {found} is lower than the previous slot {previous}")]
    SlotRegression {
        /// Slot of the previous record (or of the snapshot).
        previous: Slot,
        /// Slot found.
        found: Slot,
    },
}

/// Why recovery concluded that a damaged frame is corruption rather than a torn tail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DamageEvidence {
    /// The frame's checksum is valid: the bytes are as written, their content is wrong.
    #[error("the frame itself is intact")]
    IntactFrame,
    /// A complete, checksum-valid frame starts after the damaged one.
    #[error("a valid frame follows at offset {offset}")]
    ValidFrameFollows {
        /// Offset of that frame.
        offset: u64,
    },
    /// Non-zero bytes follow the damaged frame, which a torn write cannot leave.
    #[error("non-zero data follows at offset {offset}")]
    DataFollows {
        /// Offset of the first such byte.
        offset: u64,
    },
    /// Only the last segment can have a torn tail: earlier ones were synced before the next
    /// segment was created.
    #[error("the segment is not the last one")]
    NotLastSegment,
}

/// Why a snapshot file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotDefect {
    /// The file is shorter than the snapshot header.
    #[error("file of {file_size_bytes} bytes is shorter than the {header_size_bytes}-byte header")]
    HeaderTruncated {
        /// Size of the file.
        file_size_bytes: u64,
        /// Size of the header.
        header_size_bytes: u64,
    },
    /// The magic number is wrong.
    #[error("bad snapshot magic {found:#010x}, expected {expected:#010x}", expected = crate::snapshot_file::SNAPSHOT_FILE_MAGIC)]
    BadMagic {
        /// Magic found.
        found: u32,
    },
    /// The version is not one this code reads.
    #[error("unsupported snapshot file version {found}, expected {expected}", expected = crate::snapshot_file::SNAPSHOT_FILE_VERSION)]
    UnsupportedVersion {
        /// Version found.
        found: u16,
    },
    /// The reserved field is not zero.
    #[error("reserved snapshot header field is {found}, expected 0")]
    ReservedNotZero {
        /// Value found.
        found: u16,
    },
    /// The lsn in the header differs from the lsn in the file name.
    #[error("header lsn {header_lsn} differs from file name lsn {name_lsn}")]
    LsnMismatch {
        /// Lsn from the file name.
        name_lsn: Lsn,
        /// Lsn from the header.
        header_lsn: Lsn,
    },
    /// The lsn is the largest `u64`, after which no record could follow.
    #[error("snapshot lsn {lsn} leaves no room for a next lsn")]
    LsnOutOfRange {
        /// The lsn.
        lsn: Lsn,
    },
    /// The file size does not match the header's payload size.
    #[error("file is {file_size_bytes} bytes but the header describes {expected_size_bytes} bytes")]
    SizeMismatch {
        /// Size of the file.
        file_size_bytes: u64,
        /// Header size plus the payload size from the header.
        expected_size_bytes: u64,
    },
    /// The payload is larger than the configured maximum.
    #[error("snapshot payload of {size_bytes} bytes exceeds maximum {size_bytes_max}")]
    TooLarge {
        /// Payload size.
        size_bytes: u64,
        /// The configured maximum.
        size_bytes_max: u64,
    },
    /// The checksum does not match.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },
}

/// Why recovery did not fall back to an older state when the newest snapshot is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FallbackRefusal {
    /// The configuration forbids falling back.
    #[error("falling back to an older snapshot is disabled")]
    Disabled,
    /// The newest older state (an older snapshot, or the empty state at lsn 0) is not joined
    /// to the log: records between them were released.
    #[error(
        "the newest older state, at lsn {base_lsn}, is not bridged by the log, which starts at lsn {log_first_lsn}"
    )]
    NotBridged {
        /// Lsn of the older state.
        base_lsn: Lsn,
        /// First lsn still in the log.
        log_first_lsn: Lsn,
    },
    /// There is no log to bridge the newest older state with.
    #[error("the newest older state, at lsn {base_lsn}, cannot be used: there are no log segments")]
    NoLog {
        /// Lsn of the older state.
        base_lsn: Lsn,
    },
}
