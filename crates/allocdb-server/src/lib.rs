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
mod serve;

pub use binary::serve_binary;
pub use config::{ConfigFileError, LimitsConfig, NetworkConfig, ServerConfig};
pub use data_dir::{DATA_FORMAT_VERSION, DataDir, DataDirError};
pub use metrics::{DiskFigures, Metrics, scan_data_dir};
pub use node::{Node, NodeStatus, StartError};
pub use serve::{ServeError, Server, serve, shutdown_signal};
