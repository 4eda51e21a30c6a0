//! The data directory: an exclusive lock and an identity file checked before anything opens.
//!
//! Invariants:
//! - at most one process has a data directory open: `LOCK` is held with an exclusive `flock`
//!   for the life of the server, and a second server fails at once with [`DataDirError::Locked`];
//! - a directory belongs to one cluster and node: `IDENTITY` records the on-disk format version,
//!   cluster id and node id, written (and synced, with the directory) when the directory is
//!   first used; a later start with other ids or an unknown format refuses to start;
//! - a directory holding log or snapshot files but no identity file is refused: it was not made
//!   by this code, or it lost a file, and guessing would risk serving the wrong data.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The on-disk format this build writes and reads (log frames, snapshots, identity).
pub const DATA_FORMAT_VERSION: u32 = 1;

const LOCK_FILE_NAME: &str = "LOCK";
const IDENTITY_FILE_NAME: &str = "IDENTITY";

/// Why a data directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// An I/O operation failed.
    #[error("data directory {path}: {action} failed: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the lock.
    #[error("data directory {path} is locked by another running process (lock file {path}/LOCK)")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The directory was written by an incompatible version.
    #[error("data directory {path} has format version {found}; this build reads version {supported}")]
    IncompatibleVersion {
        /// The directory.
        path: PathBuf,
        /// Version on disk.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The directory belongs to another cluster or node.
    #[error(
        "data directory {path} belongs to cluster {found_cluster} node {found_node}, not cluster {cluster} node {node}"
    )]
    IdentityMismatch {
        /// The directory.
        path: PathBuf,
        /// Cluster on disk.
        found_cluster: u128,
        /// Node on disk.
        found_node: u64,
        /// Cluster configured.
        cluster: u128,
        /// Node configured.
        node: u64,
    },
    /// The identity file is unreadable or malformed.
    #[error("data directory {path} has a damaged identity file: {reason}")]
    DamagedIdentity {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Log or snapshot files exist but no identity file.
    #[error(
        "data directory {path} holds database files but no IDENTITY file; refusing to guess whose data it is"
    )]
    MissingIdentity {
        /// The directory.
        path: PathBuf,
    },
}

/// An opened, locked data directory. Dropping it releases the lock.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed, takes the lock, and checks or writes the identity.
    ///
    /// # Errors
    /// See [`DataDirError`].
    pub fn open(path: &Path, cluster_id: u128, node_id: u64) -> Result<DataDir, DataDirError> {
        let io = |action: &'static str| {
            let path = path.to_owned();
            move |source| DataDirError::Io { path, action, source }
        };
        std::fs::create_dir_all(path).map_err(io("create directory"))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK_FILE_NAME))
            .map_err(io("open lock file"))?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(DataDirError::Locked { path: path.to_owned() }),
            Err(error) => return Err(io("lock")(error.into())),
        }
        let identity_path = path.join(IDENTITY_FILE_NAME);
        match std::fs::read_to_string(&identity_path) {
            Ok(text) => check_identity(path, &text, cluster_id, node_id)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                refuse_unidentified_files(path)?;
                write_identity(path, cluster_id, node_id)?;
            }
            Err(error) => return Err(io("read identity file")(error)),
        }
        Ok(DataDir { path: path.to_owned(), _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn check_identity(path: &Path, text: &str, cluster_id: u128, node_id: u64) -> Result<(), DataDirError> {
    let damaged = |reason: String| DataDirError::DamagedIdentity { path: path.to_owned(), reason };
    let mut version = None;
    let mut found_cluster = None;
    let mut found_node = None;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let Some((key, value)) = line.split_once('=') else {
            return Err(damaged(format!("line {line:?} is not key = value")));
        };
        let value = value.trim();
        match key.trim() {
            "format_version" => version = value.parse::<u32>().ok(),
            "cluster_id" => found_cluster = value.parse::<u128>().ok(),
            "node_id" => found_node = value.parse::<u64>().ok(),
            other => return Err(damaged(format!("unknown key {other:?}"))),
        }
    }
    let (Some(version), Some(found_cluster), Some(found_node)) = (version, found_cluster, found_node) else {
        return Err(damaged("format_version, cluster_id and node_id are all required".to_owned()));
    };
    if version != DATA_FORMAT_VERSION {
        return Err(DataDirError::IncompatibleVersion {
            path: path.to_owned(),
            found: version,
            supported: DATA_FORMAT_VERSION,
        });
    }
    if found_cluster != cluster_id || found_node != node_id {
        return Err(DataDirError::IdentityMismatch {
            path: path.to_owned(),
            found_cluster,
            found_node,
            cluster: cluster_id,
            node: node_id,
        });
    }
    Ok(())
}

fn refuse_unidentified_files(path: &Path) -> Result<(), DataDirError> {
    let entries = std::fs::read_dir(path).map_err(|source| DataDirError::Io {
        path: path.to_owned(),
        action: "list",
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("log-") || name.starts_with("snapshot-") {
            return Err(DataDirError::MissingIdentity { path: path.to_owned() });
        }
    }
    Ok(())
}

fn write_identity(path: &Path, cluster_id: u128, node_id: u64) -> Result<(), DataDirError> {
    let io = |action: &'static str| {
        let path = path.to_owned();
        move |source| DataDirError::Io { path, action, source }
    };
    let temporary = path.join("IDENTITY.tmp");
    let mut file = File::create(&temporary).map_err(io("create identity file"))?;
    write!(file, "format_version = {DATA_FORMAT_VERSION}\ncluster_id = {cluster_id}\nnode_id = {node_id}\n")
        .map_err(io("write identity file"))?;
    file.sync_all().map_err(io("sync identity file"))?;
    std::fs::rename(&temporary, path.join(IDENTITY_FILE_NAME)).map_err(io("rename identity file"))?;
    File::open(path).and_then(|directory| directory.sync_all()).map_err(io("sync directory"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{DataDir, DataDirError};

    #[test]
    fn second_open_of_a_locked_directory_fails() {
        let directory = tempfile::tempdir().unwrap();
        let first = DataDir::open(directory.path(), 1, 1).unwrap();
        let second = DataDir::open(directory.path(), 1, 1).unwrap_err();
        assert!(matches!(second, DataDirError::Locked { .. }), "{second}");
        drop(first);
        DataDir::open(directory.path(), 1, 1).unwrap();
    }

    #[test]
    fn other_cluster_or_node_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        drop(DataDir::open(directory.path(), 5, 1).unwrap());
        let error = DataDir::open(directory.path(), 6, 1).unwrap_err();
        assert!(
            matches!(error, DataDirError::IdentityMismatch { found_cluster: 5, cluster: 6, .. }),
            "{error}"
        );
    }

    #[test]
    fn future_format_version_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        drop(DataDir::open(directory.path(), 1, 1).unwrap());
        std::fs::write(
            directory.path().join("IDENTITY"),
            "format_version = 99\ncluster_id = 1\nnode_id = 1\n",
        )
        .unwrap();
        let error = DataDir::open(directory.path(), 1, 1).unwrap_err();
        assert!(matches!(error, DataDirError::IncompatibleVersion { found: 99, .. }), "{error}");
    }

    #[test]
    fn log_files_without_identity_are_refused() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("log-00000000000000000001.seg"), b"").unwrap();
        let error = DataDir::open(directory.path(), 1, 1).unwrap_err();
        assert!(matches!(error, DataDirError::MissingIdentity { .. }), "{error}");
    }
}
