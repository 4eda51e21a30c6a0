//! AllocDB's network edges: configuration, the locked data directory, the node service that
//! every transport goes through, the HTTP/JSON API, metrics, and the `serve` entry point (the
//! binary protocol listener joins them there).
//!
//! This crate must not contain state-machine logic: results come from the kernel through the
//! engine, and transports only translate. Async (tokio) lives here and in the client, nowhere
//! below.

#![forbid(unsafe_code)]

mod binary;
mod config;
mod data_dir;
pub mod http;
mod metrics;
mod node;
mod recovery_progress;
mod serve;

/// The storage seam of [`Node::open_over`] and [`Server::bind_over`]: the trait a log
/// directory implements, and the production one.
pub use allocdb_storage::{FsDirectory, LogDirectory, LogFile, SPARE_SEGMENT_NAME};
pub use binary::serve_binary;
pub use config::{ConfigFileError, LimitsConfig, NetworkConfig, ServerConfig, StorageIoConfig};
pub use data_dir::{DATA_FORMAT_VERSION, DataDir, DataDirError};
pub use metrics::{DiskFigures, Metrics, scan_data_dir};
pub use node::{Node, NodeOptions, NodeStatus, StartError};
pub use recovery_progress::{
    RECOVERY_PROGRESS_INTERVAL_DEFAULT, RecoveryProgress, RecoveryProgressReporting, RecoveryProgressSink,
    log_recovery_progress,
};
pub use serve::{ServeError, Server, serve, shutdown_signal};
