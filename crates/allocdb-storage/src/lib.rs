//! AllocDB single-node storage: the durable command log, snapshot files and crash recovery.
//!
//! This crate owns the bytes on disk of one node: a log of opaque records split into
//! preallocated segment files, snapshot files wrapping the kernel's opaque snapshot bytes, and
//! the recovery that turns a directory back into (snapshot, records after it). All I/O goes
//! through the [`LogDirectory`] and [`LogFile`] traits, implemented for real files by
//! [`FsDirectory`] and for deterministic fault injection by [`SimDirectory`]. It never
//! interprets a payload, reads a clock, or decides anything about leases.
//!
//! Invariants kept:
//! - a record is acknowledged durable only after the `fdatasync` covering it returned `Ok`,
//!   and any I/O failure stops (poisons) the storage until recovery;
//! - lsns in the log are consecutive and slots never decrease, on append and on recovery;
//! - recovery removes only what was never acknowledged (a torn tail in the last segment,
//!   temporary snapshot files); any other damage fails closed with the file, offset and reason;
//! - a crash at any step of snapshot installation leaves a recoverable directory.
//!
//! Formats are specified byte by byte in `docs/storage.md`; recovery rules in
//! `docs/recovery.md`.
//!
//! ```
//! use allocdb_storage::{LogRecord, RecordKind, Recovery, SimDirectory, StorageConfig};
//!
//! let directory = SimDirectory::new();
//! let config = StorageConfig { segment_size_bytes: 4096, payload_size_bytes_max: 256,
//!     ..StorageConfig::default() };
//! let recovery = Recovery::open(directory.clone(), config).unwrap();
//! let (mut storage, _) = recovery.replay(|_| Ok::<(), std::convert::Infallible>(())).unwrap();
//! storage.append(LogRecord { lsn: 1, slot: 10, kind: RecordKind(1), payload: b"batch" }).unwrap();
//! assert_eq!(storage.flush_and_sync().unwrap(), 1);
//!
//! directory.crash().unwrap();
//! let recovery = Recovery::open(directory, config).unwrap();
//! let mut payloads = Vec::new();
//! let (_, report) = recovery
//!     .replay(|record| { payloads.push(record.payload.to_vec()); Ok::<(), std::convert::Infallible>(()) })
//!     .unwrap();
//! assert_eq!(payloads, [b"batch".to_vec()]);
//! assert_eq!((report.last_lsn, report.last_slot), (1, 10));
//! ```

#![forbid(unsafe_code)]

mod config;
mod defect;
mod direct;
mod error;
mod frame;
mod fs;
mod io;
mod names;
mod recovery;
mod scan;
mod sim;
mod snapshot_file;
mod spare;
mod storage;

pub use config::{
    BUFFER_SIZE_BYTES_LIMIT, SEGMENT_SIZE_BYTES_LIMIT, SEGMENT_SIZE_BYTES_MIN, SNAPSHOT_SIZE_BYTES_LIMIT,
    SnapshotFallback, StorageConfig,
};
pub use defect::{DamageEvidence, FallbackRefusal, FrameDefect, SnapshotDefect};
pub use direct::DIRECT_WRITE_MIN_BYTES_DEFAULT;
pub use error::{
    AppendError, ConfigError, FlushError, IoFailure, IoOperation, RecoveryError, ReplayError, SnapshotError,
};
pub use frame::{
    FRAME_HEADER_SIZE_BYTES, FRAME_MAGIC, FRAME_VERSION, LogRecord, Lsn, PAYLOAD_SIZE_BYTES_LIMIT,
    RecordKind, Slot, decode_frame, encode_frame, frame_size_bytes,
};
pub use fs::{FsDirectory, FsFile, file_size_bytes};
pub use io::{LogDirectory, LogFile};
pub use recovery::{
    REPLAY_PROGRESS_STEP_BYTES, Recovery, RecoveryReport, RecoveryStart, RejectedSnapshot, ReplayProgress,
    TornTail,
};
pub use sim::{SimCounters, SimDirectory, SimFile};
pub use snapshot_file::{
    SNAPSHOT_FILE_HEADER_SIZE_BYTES, SNAPSHOT_FILE_MAGIC, SNAPSHOT_FILE_VERSION, SnapshotImage,
};
pub use spare::{PreparedSpare, SPARE_SEGMENT_NAME, SparePreparation};
pub use storage::{PendingSync, SnapshotInstalled, Storage};
