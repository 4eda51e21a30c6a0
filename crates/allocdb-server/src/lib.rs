//! AllocDB's network edges: configuration, the locked data directory, the node service that
//! every transport goes through, and (as they land) the binary protocol listener, the HTTP/JSON
//! API and metrics.
//!
//! This crate must not contain state-machine logic: results come from the kernel through the
//! engine, and transports only translate. Async (tokio) lives here and in the client, nowhere
//! below.

#![forbid(unsafe_code)]

mod binary;
mod config;
mod data_dir;
mod node;

pub use binary::serve_binary;
pub use config::{ConfigFileError, LimitsConfig, NetworkConfig, ServerConfig};
pub use data_dir::{DATA_FORMAT_VERSION, DataDir, DataDirError};
pub use node::{Node, NodeStatus, StartError};
