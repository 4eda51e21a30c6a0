//! Errors of opening an engine: everything that makes a node refuse to start.

use allocdb_core::Lsn;

/// Why a recovered record could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayRecordError {
    /// A record kind this build does not know.
    #[error("record kind {kind} is unknown")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// The record does not follow the kernel's last applied lsn.
    #[error("expected lsn {expected}, found {found}")]
    LsnGap {
        /// The lsn the kernel needs next.
        expected: Lsn,
        /// The record's lsn.
        found: Lsn,
    },
    /// The record's slot is lower than the kernel's last slot.
    #[error("slot {found} is below the previous slot {previous}")]
    SlotOutOfOrder {
        /// The kernel's last slot.
        previous: u64,
        /// The record's slot.
        found: u64,
    },
    /// The payload is not a valid command.
    #[error("payload does not decode: {0}")]
    Decode(#[from] allocdb_core::CodecError),
    /// A configuration record is invalid or does not fit the state.
    #[error("configuration record: {0}")]
    Configuration(String),
    /// A command record before any configuration (a log without a snapshot must start with one).
    #[error("command record before the log's configuration record")]
    MissingConfiguration,
}

impl From<allocdb_core::SnapshotError> for ReplayRecordError {
    fn from(error: allocdb_core::SnapshotError) -> Self {
        ReplayRecordError::Configuration(error.to_string())
    }
}

/// Why an engine refused to open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::EngineConfigError),
    /// The kernel configuration is invalid.
    #[error("invalid kernel configuration: {0}")]
    KernelConfig(#[from] allocdb_core::ConfigError),
    /// Storage recovery failed (corruption, missing segment, I/O failure...).
    #[error("storage recovery failed: {0}")]
    Recovery(#[from] allocdb_storage::RecoveryError),
    /// A snapshot file passed its own checksum but the kernel refused its contents.
    #[error("snapshot {file} is invalid: {source}")]
    Snapshot {
        /// The snapshot file.
        file: String,
        /// What the kernel found.
        source: allocdb_core::SnapshotError,
    },
    /// The snapshot file's lsn disagrees with the kernel state inside it.
    #[error("snapshot {file} claims lsn {file_lsn} but holds state at lsn {kernel_lsn}")]
    SnapshotLsnMismatch {
        /// The snapshot file.
        file: String,
        /// Lsn in the file header.
        file_lsn: Lsn,
        /// Lsn of the kernel state.
        kernel_lsn: Lsn,
    },
    /// The configured capacities cannot hold the recovered state (shrunk below what is stored).
    #[error("the configuration cannot hold the recovered state: {0}")]
    Reconfigure(allocdb_core::SnapshotError),
    /// Writing the configuration record failed.
    #[error("cannot log the configuration: {0}")]
    LogConfiguration(String),
    /// A log record could not be replayed.
    #[error("log record at lsn {lsn} cannot be replayed: {source}")]
    Replay {
        /// The record.
        lsn: Lsn,
        /// Why.
        source: ReplayRecordError,
    },
}

impl OpenError {
    pub(crate) fn from_replay(error: allocdb_storage::ReplayError<ReplayRecordError>) -> OpenError {
        match error {
            allocdb_storage::ReplayError::Recovery(recovery) => OpenError::Recovery(recovery),
            allocdb_storage::ReplayError::Visitor { lsn, source } => OpenError::Replay { lsn, source },
        }
    }
}
