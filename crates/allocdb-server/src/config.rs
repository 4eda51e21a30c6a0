//! Server configuration: every bound and timing of the node in one TOML file.
//!
//! Precedence: built-in defaults, then the file given with `--config`, then command-line flags.
//! Unknown keys are errors (a typo must not silently fall back to a default). `allocdb serve
//! --print-config` prints the effective configuration in this same format, so it can be saved
//! and edited. Validation converts to the engine's configuration and runs its checks, so every
//! relation between bounds is checked before anything opens.

use std::net::SocketAddr;
use std::path::PathBuf;

use allocdb_core::KernelConfig;
use allocdb_engine::EngineConfig;
use allocdb_storage::StorageConfig;
use serde::{Deserialize, Serialize};

/// The whole configuration of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Directory holding the log, snapshots and the identity file.
    pub data_dir: PathBuf,
    /// Binary protocol listen address.
    pub listen: SocketAddr,
    /// HTTP/JSON listen address.
    pub http: SocketAddr,
    /// This node's id (1 for a single node).
    pub node_id: u64,
    /// Cluster id clients must present in the binary handshake, as a decimal u128 string.
    pub cluster_id: String,
    /// Length of one logical slot in milliseconds.
    pub slot_ms: u64,
    /// Table capacities and windows.
    pub limits: LimitsConfig,
    /// Connection handling.
    pub network: NetworkConfig,
    /// How the log reaches the disk.
    pub storage: StorageIoConfig,
}

/// How the log reaches the disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageIoConfig {
    /// Write log segments with `O_DIRECT` in whole 4 KiB blocks instead of through the page
    /// cache (`docs/storage.md`, "Direct writes"). Where the filesystem refuses direct I/O the
    /// log is written through the page cache whatever this says.
    pub direct_io: bool,
    /// With `direct_io`, group writes shorter than this go through the page cache anyway: for
    /// the small groups of unbatched work a copy costs less than waiting for a device write
    /// (`docs/storage.md`, "Direct writes"). 0 sends every write direct; any value is valid.
    pub direct_write_min_bytes: u32,
}

impl Default for StorageIoConfig {
    fn default() -> StorageIoConfig {
        StorageIoConfig {
            direct_io: true,
            direct_write_min_bytes: u32::try_from(allocdb_storage::DIRECT_WRITE_MIN_BYTES_DEFAULT)
                .unwrap_or(u32::MAX),
        }
    }
}

/// Table capacities, windows and queue bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Resource table capacity.
    pub resource_count_max: u32,
    /// Lease table capacity (live plus terminal leases within the history window).
    pub lease_count_max: u32,
    /// Lease member table capacity.
    pub lease_member_count_max: u32,
    /// Operation table capacity (writes remembered within the dedupe window).
    pub operation_count_max: u32,
    /// Most resources in one reserve.
    pub bundle_size_max: u32,
    /// Longest reserve TTL.
    pub reserve_ttl_ms_max: u64,
    /// How long retries are answered from the operation table.
    pub dedupe_window_ms: u64,
    /// How long terminal leases stay readable.
    pub history_window_ms: u64,
    /// Timing-wheel buckets.
    pub expiration_bucket_count: u32,
    /// Most reserved leases per timing-wheel bucket.
    pub expiration_bucket_length_max: u32,
    /// Most expirations proposed per tick.
    pub expirations_per_tick_max: u32,
    /// Commands waiting for the sequencer before writes are rejected `overloaded`.
    pub submission_queue_capacity: u32,
    /// Most commands per group commit, and per client batch.
    pub batch_size_max: u32,
    /// Snapshot after this many log records.
    pub snapshot_interval_records: u64,
    /// Log segment size.
    pub segment_size_bytes: u64,
}

/// Connection limits and timeouts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Most open connections per listener (binary protocol and HTTP each); more are refused.
    pub connection_count_max: u32,
    /// A connection idle (no complete frame, or no complete HTTP request head) for this long
    /// is closed; also the deadline for receiving an HTTP request body.
    pub idle_timeout_ms: u64,
    /// Writing a response to a slow client may take at most this long.
    pub write_timeout_ms: u64,
    /// A write not answered by the engine within this is reported indefinite (`commit_timeout`).
    pub commit_timeout_ms: u64,
    /// Largest binary frame.
    pub frame_size_bytes_max: u32,
    /// Largest HTTP request body.
    pub http_body_bytes_max: u32,
    /// Threads serving connections (both protocols); 0 picks one fewer than the processors
    /// available, at least one, so the engine thread keeps a processor to itself
    /// (`docs/operations.md`, "Threads").
    pub io_threads: u32,
}

/// Most connection threads a configuration may ask for.
pub(crate) const IO_THREADS_MAX: u32 = 256;

impl NetworkConfig {
    /// The number of connection threads to start: `io_threads`, or for 0 one fewer than
    /// `available_processors`, at least one.
    pub fn io_thread_count(&self, available_processors: usize) -> usize {
        if self.io_threads == 0 {
            available_processors.saturating_sub(1).max(1)
        } else {
            self.io_threads as usize
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            data_dir: PathBuf::from("./allocdb-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            http: SocketAddr::from(([127, 0, 0, 1], 7880)),
            node_id: 1,
            cluster_id: "1".to_owned(),
            slot_ms: 10,
            limits: LimitsConfig::default(),
            network: NetworkConfig::default(),
            storage: StorageIoConfig::default(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        let kernel = KernelConfig::default();
        let engine = EngineConfig::default();
        LimitsConfig {
            resource_count_max: kernel.resource_count_max,
            lease_count_max: kernel.lease_count_max,
            lease_member_count_max: kernel.lease_member_count_max,
            operation_count_max: kernel.operation_count_max,
            bundle_size_max: kernel.bundle_size_max,
            reserve_ttl_ms_max: engine.reserve_ttl_ms_max,
            dedupe_window_ms: engine.dedupe_window_ms,
            history_window_ms: engine.history_window_ms,
            expiration_bucket_count: kernel.expiration_bucket_count,
            expiration_bucket_length_max: kernel.expiration_bucket_length_max,
            expirations_per_tick_max: kernel.expirations_per_tick_max,
            submission_queue_capacity: engine.submission_queue_capacity,
            batch_size_max: engine.batch_size_max,
            snapshot_interval_records: engine.snapshot_interval_records,
            segment_size_bytes: StorageConfig::default().segment_size_bytes,
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> NetworkConfig {
        NetworkConfig {
            connection_count_max: 1_024,
            idle_timeout_ms: 300_000,
            write_timeout_ms: 10_000,
            commit_timeout_ms: 10_000,
            frame_size_bytes_max: 4 << 20,
            http_body_bytes_max: 1 << 20,
            io_threads: 0,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown key, wrong type...).
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ServerConfig {
    /// Defaults overlaid with the TOML file at `path`.
    ///
    /// # Errors
    /// The file cannot be read or parsed.
    pub fn from_file(path: &std::path::Path) -> Result<ServerConfig, ConfigFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigFileError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text)
            .map_err(|error| ConfigFileError::Parse { path: path.to_owned(), message: error.to_string() })
    }

    /// The configuration as TOML, for `--print-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|error| format!("# cannot print configuration: {error}\n"))
    }

    /// The cluster id as a number.
    ///
    /// # Errors
    /// The id is not a decimal u128.
    pub fn cluster_id_value(&self) -> Result<u128, ConfigFileError> {
        self.cluster_id.parse().map_err(|_| {
            ConfigFileError::Invalid(format!("cluster_id {:?} is not a decimal u128", self.cluster_id))
        })
    }

    /// The engine configuration these settings describe, with a fresh table-hash seed.
    pub fn engine_config(&self, hash_seed: u64) -> EngineConfig {
        let limits = &self.limits;
        let defaults = EngineConfig::default();
        let bundle_payload = allocdb_engine::submission_size_bytes_max(limits.bundle_size_max);
        EngineConfig {
            kernel: KernelConfig {
                shard_id: 0,
                resource_count_max: limits.resource_count_max,
                lease_count_max: limits.lease_count_max,
                lease_member_count_max: limits.lease_member_count_max,
                operation_count_max: limits.operation_count_max,
                bundle_size_max: limits.bundle_size_max,
                expiration_bucket_count: limits.expiration_bucket_count,
                expiration_bucket_length_max: limits.expiration_bucket_length_max,
                expirations_per_tick_max: limits.expirations_per_tick_max,
                hash_seed,
                ..defaults.kernel
            },
            storage: StorageConfig {
                segment_size_bytes: limits.segment_size_bytes,
                payload_size_bytes_max: u32::try_from(bundle_payload).unwrap_or(u32::MAX).max(1_024),
                ..defaults.storage
            },
            slot_duration_ms: self.slot_ms,
            reserve_ttl_ms_max: limits.reserve_ttl_ms_max,
            dedupe_window_ms: limits.dedupe_window_ms,
            history_window_ms: limits.history_window_ms,
            submission_queue_capacity: limits.submission_queue_capacity,
            batch_size_max: limits.batch_size_max,
            snapshot_interval_records: limits.snapshot_interval_records,
        }
    }

    /// Checks every value and relation.
    ///
    /// # Errors
    /// The first problem, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigFileError> {
        self.cluster_id_value()?;
        self.engine_config(0).validate().map_err(|error| ConfigFileError::Invalid(error.to_string()))?;
        let network = &self.network;
        for (name, value) in [
            ("network.connection_count_max", u64::from(network.connection_count_max)),
            ("network.idle_timeout_ms", network.idle_timeout_ms),
            ("network.write_timeout_ms", network.write_timeout_ms),
            ("network.commit_timeout_ms", network.commit_timeout_ms),
            ("network.frame_size_bytes_max", u64::from(network.frame_size_bytes_max)),
            ("network.http_body_bytes_max", u64::from(network.http_body_bytes_max)),
        ] {
            if value == 0 {
                return Err(ConfigFileError::Invalid(format!("{name} must be at least 1")));
            }
        }
        if network.io_threads > IO_THREADS_MAX {
            return Err(ConfigFileError::Invalid(format!(
                "network.io_threads = {} exceeds {IO_THREADS_MAX}",
                network.io_threads
            )));
        }
        if network.frame_size_bytes_max > 16 << 20 {
            return Err(ConfigFileError::Invalid(format!(
                "network.frame_size_bytes_max = {} exceeds the protocol limit {}",
                network.frame_size_bytes_max,
                16 << 20
            )));
        }
        // Port 0 asks the OS for a free port on each, so equal port-0 addresses never clash.
        if self.listen == self.http && self.listen.port() != 0 {
            return Err(ConfigFileError::Invalid(format!("listen and http are both {}", self.listen)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ServerConfig;

    #[test]
    fn default_config_is_valid_and_round_trips_through_toml() {
        let config = ServerConfig::default();
        config.validate().unwrap();
        let parsed: ServerConfig = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn storage_section_sets_direct_writes_and_their_minimum() {
        let config: ServerConfig =
            toml::from_str("[storage]\ndirect_io = false\ndirect_write_min_bytes = 0\n").unwrap();
        assert!(!config.storage.direct_io);
        assert_eq!(config.storage.direct_write_min_bytes, 0);
        let defaults = ServerConfig::default().storage;
        assert!(defaults.direct_io);
        assert_eq!(defaults.direct_write_min_bytes, 16 * 1024);
        let error = toml::from_str::<ServerConfig>("[storage]\ndirect_write_min_bytes = -1\n").unwrap_err();
        assert!(error.to_string().contains("direct_write_min_bytes"), "{error}");
    }

    #[test]
    fn io_threads_default_leaves_the_engine_a_processor_and_an_explicit_count_is_kept() {
        let network = ServerConfig::default().network;
        assert_eq!(network.io_threads, 0);
        assert_eq!(network.io_thread_count(1), 1);
        assert_eq!(network.io_thread_count(2), 1);
        assert_eq!(network.io_thread_count(8), 7);
        let config: ServerConfig = toml::from_str("[network]\nio_threads = 3\n").unwrap();
        assert_eq!(config.network.io_thread_count(2), 3);
        config.validate().unwrap();
        let mut config = ServerConfig::default();
        config.network.io_threads = super::IO_THREADS_MAX + 1;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("network.io_threads"), "{message}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let error = toml::from_str::<ServerConfig>("slot_msec = 5\n").unwrap_err();
        assert!(error.to_string().contains("slot_msec"), "{error}");
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let config: ServerConfig = toml::from_str("slot_ms = 5\n[limits]\nbundle_size_max = 4\n").unwrap();
        assert_eq!(config.slot_ms, 5);
        assert_eq!(config.limits.bundle_size_max, 4);
        assert_eq!(config.limits.resource_count_max, ServerConfig::default().limits.resource_count_max);
    }

    #[test]
    fn inconsistent_limits_name_the_setting() {
        let mut config = ServerConfig::default();
        config.limits.lease_member_count_max = 1;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("lease_member_count_max"), "{message}");
    }
}
