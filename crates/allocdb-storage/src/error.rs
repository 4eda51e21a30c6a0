//! Error types, one enum per operation family: configuration, append, flush, snapshot
//! installation and recovery. Every message carries the values involved (file, offset,
//! expected and found) so an operator can act on the message alone.
//!
//! Invariant: corruption is never reported as an I/O error and never silently repaired;
//! recovery errors name the file and byte offset of the first damage found.

use std::fmt;
use std::io;

use crate::defect::{DamageEvidence, FallbackRefusal, FrameDefect, SnapshotDefect};
use crate::frame::{Lsn, Slot};

/// What an I/O call was doing when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOperation {
    /// Listing the directory.
    List,
    /// Opening an existing file.
    Open,
    /// Creating a file.
    Create,
    /// Reading a file or its size.
    Read,
    /// Writing to a file.
    Write,
    /// `fdatasync` of a file.
    SyncData,
    /// `fsync` of the directory.
    SyncDirectory,
    /// Reserving space for a file.
    Allocate,
    /// Removing a file.
    Remove,
    /// Renaming a file.
    Rename,
    /// Opening a second handle to an open file (for a sync on another thread).
    Duplicate,
}

impl fmt::Display for IoOperation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            IoOperation::List => "list",
            IoOperation::Open => "open",
            IoOperation::Create => "create",
            IoOperation::Read => "read",
            IoOperation::Write => "write",
            IoOperation::SyncData => "sync data of",
            IoOperation::SyncDirectory => "sync directory after",
            IoOperation::Allocate => "allocate",
            IoOperation::Remove => "remove",
            IoOperation::Rename => "rename",
            IoOperation::Duplicate => "duplicate the handle of",
        };
        formatter.write_str(name)
    }
}

/// An I/O call failed. Names the operation, the file and, for positional calls, the offset.
#[derive(Debug, thiserror::Error)]
pub struct IoFailure {
    /// What was being done.
    pub operation: IoOperation,
    /// The file (or, for directory operations, the file the operation was about).
    pub file: String,
    /// Byte offset of a positional read or write.
    pub offset: Option<u64>,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl fmt::Display for IoFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.operation, self.file)?;
        if let Some(offset) = self.offset {
            write!(formatter, " at offset {offset}")?;
        }
        write!(formatter, " failed: {}", self.source)
    }
}

impl IoFailure {
    pub(crate) fn at(operation: IoOperation, file: &str, offset: u64) -> impl FnOnce(io::Error) -> IoFailure {
        let file = file.to_owned();
        move |source| IoFailure { operation, file, offset: Some(offset), source }
    }

    pub(crate) fn on(operation: IoOperation, file: &str) -> impl FnOnce(io::Error) -> IoFailure {
        let file = file.to_owned();
        move |source| IoFailure { operation, file, offset: None, source }
    }
}

/// A storage configuration value is out of range or inconsistent with another.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is outside its allowed range.
    #[error("{field} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// Field name.
        field: &'static str,
        /// Configured value.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A relation between two values does not hold.
    #[error("{smaller_field} = {smaller} must not exceed {larger_field} = {larger}")]
    Inconsistent {
        /// Field that must be the smaller one.
        smaller_field: &'static str,
        /// Its value.
        smaller: u64,
        /// Field that must be the larger one.
        larger_field: &'static str,
        /// Its value.
        larger: u64,
    },
}

/// Recovery failed: the directory cannot be turned into a state without guessing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An I/O call failed.
    #[error(transparent)]
    Io(#[from] IoFailure),
    /// A file name has the shape of ours but does not parse.
    #[error("file name {name:?} has the shape of a storage file but is malformed")]
    MalformedFileName {
        /// The name.
        name: String,
    },
    /// A segment file is larger than any segment this code writes.
    #[error("segment {file} is {size_bytes} bytes, above the limit {size_bytes_max}")]
    SegmentTooLarge {
        /// The segment.
        file: String,
        /// Its size.
        size_bytes: u64,
        /// The limit.
        size_bytes_max: u64,
    },
    /// Damage in the log that is not a torn tail.
    #[error("log corruption in {file} at offset {offset}: {defect}; not a torn tail because {evidence}")]
    Corruption {
        /// The segment.
        file: String,
        /// Offset of the damaged frame.
        offset: u64,
        /// What is wrong with it.
        defect: FrameDefect,
        /// Why it cannot be a torn tail.
        evidence: DamageEvidence,
    },
    /// Records between the snapshot (or lsn 0) and the end of the log are missing.
    #[error("log records missing: expected lsn {expected_lsn} next, but {file} starts at lsn {found_lsn}")]
    MissingRecords {
        /// The lsn that must come next.
        expected_lsn: Lsn,
        /// The segment found instead.
        file: String,
        /// The first lsn of that segment (from its name).
        found_lsn: Lsn,
    },
    /// A segment starts at an lsn the previous segment already holds.
    #[error(
        "segment {file} starts at lsn {first_lsn}, but the previous segment already ends at lsn {previous_last_lsn}"
    )]
    SegmentOverlap {
        /// The segment.
        file: String,
        /// Its first lsn (from its name).
        first_lsn: Lsn,
        /// Last lsn of the records before it.
        previous_last_lsn: Lsn,
    },
    /// The log ends before the snapshot it must extend.
    #[error("log ends at lsn {log_last_lsn}, before snapshot {snapshot_file} at lsn {snapshot_lsn}")]
    LogBehindSnapshot {
        /// The snapshot.
        snapshot_file: String,
        /// Its lsn.
        snapshot_lsn: Lsn,
        /// Last lsn in the log.
        log_last_lsn: Lsn,
    },
    /// The newest snapshot cannot be used and no fallback is allowed.
    #[error("snapshot {file} is unusable: {defect}; {refusal}")]
    SnapshotUnusable {
        /// The snapshot.
        file: String,
        /// What is wrong with it.
        defect: SnapshotDefect,
        /// Why recovery did not fall back.
        refusal: FallbackRefusal,
    },
}

/// Replaying the log failed, in storage or in the caller's visitor.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E: std::error::Error + 'static> {
    /// Storage could not produce the records.
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    /// The visitor rejected a record.
    #[error("replay of lsn {lsn} failed: {source}")]
    Visitor {
        /// The record that was rejected.
        lsn: Lsn,
        /// The visitor's error.
        #[source]
        source: E,
    },
}

/// A record could not be appended; nothing was buffered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// An earlier I/O failure stopped this storage; recover before writing again.
    #[error("storage is stopped by an earlier failure: {cause}")]
    Poisoned {
        /// The failure that stopped it.
        cause: String,
    },
    /// The lsn is not the next one.
    #[error("lsn {found} out of sequence, expected {expected}")]
    LsnOutOfSequence {
        /// The next lsn.
        expected: Lsn,
        /// The lsn given.
        found: Lsn,
    },
    /// The lsn space is used up.
    #[error("lsn {lsn} is the last possible lsn")]
    LsnExhausted {
        /// The lsn given.
        lsn: Lsn,
    },
    /// The slot is lower than the last appended slot.
    #[error("slot {found} is lower than the last logged slot {last}")]
    SlotRegression {
        /// The last appended slot.
        last: Slot,
        /// The slot given.
        found: Slot,
    },
    /// The payload exceeds the configured maximum.
    #[error("payload of {size_bytes} bytes exceeds maximum {size_bytes_max}")]
    PayloadTooLarge {
        /// Payload size.
        size_bytes: u64,
        /// The maximum.
        size_bytes_max: u64,
    },
    /// The group-commit buffer cannot take the frame; flush first.
    #[error(
        "buffer holds {buffered_bytes} bytes; a {frame_size_bytes}-byte frame would exceed {buffer_size_bytes_max}"
    )]
    BufferFull {
        /// Bytes buffered.
        buffered_bytes: u64,
        /// Size of the rejected frame.
        frame_size_bytes: u64,
        /// The buffer limit.
        buffer_size_bytes_max: u64,
    },
}

/// Buffered records could not be made durable. Except for `SyncOutstanding` (refused, nothing
/// written), the storage is poisoned: every buffered record's fate is unknown until recovery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// An earlier I/O failure stopped this storage.
    #[error("storage is stopped by an earlier failure: {cause}")]
    Poisoned {
        /// The failure that stopped it.
        cause: String,
    },
    /// An I/O call failed (and poisoned the storage).
    #[error(transparent)]
    Io(#[from] IoFailure),
    /// A write was asked for while the sync of earlier records had not reported back. Nothing
    /// is written then: if that sync failed, the kernel may have dropped those records' pages,
    /// and records written after them would leave intact frames behind a hole, which recovery
    /// must refuse as corruption.
    #[error("the sync of records up to lsn {lsn} has not reported back; nothing written")]
    SyncOutstanding {
        /// The last lsn the outstanding sync covers.
        lsn: Lsn,
    },
}

/// A snapshot could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// An earlier I/O failure stopped this storage.
    #[error("storage is stopped by an earlier failure: {cause}")]
    Poisoned {
        /// The failure that stopped it.
        cause: String,
    },
    /// The snapshot is not newer than the current one.
    #[error("snapshot lsn {requested} is not above the current snapshot lsn {current}")]
    NotNewer {
        /// Current snapshot lsn (0 if none).
        current: Lsn,
        /// Requested lsn.
        requested: Lsn,
    },
    /// The snapshot covers records that are not durable yet.
    #[error("snapshot lsn {snapshot_lsn} is above the durable lsn {durable_lsn}")]
    AheadOfDurableLog {
        /// Requested lsn.
        snapshot_lsn: Lsn,
        /// Last durable lsn.
        durable_lsn: Lsn,
    },
    /// The snapshot slot is above the last logged slot.
    #[error("snapshot slot {snapshot_slot} is above the last durable slot {durable_slot}")]
    SlotAheadOfLog {
        /// Requested slot.
        snapshot_slot: Slot,
        /// Last durable slot.
        durable_slot: Slot,
    },
    /// The snapshot bytes exceed the configured maximum.
    #[error("snapshot of {size_bytes} bytes exceeds maximum {size_bytes_max}")]
    TooLarge {
        /// Payload size.
        size_bytes: u64,
        /// The maximum.
        size_bytes_max: u64,
    },
    /// An I/O call failed (and poisoned the storage).
    #[error(transparent)]
    Io(#[from] IoFailure),
}
