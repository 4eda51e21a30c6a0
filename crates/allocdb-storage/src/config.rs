//! Storage configuration and its validation.
//!
//! Every buffer and file the storage layer sizes has its limit here, checked once at startup
//! by [`StorageConfig::validate`]: a record frame always fits in one segment and in the
//! group-commit buffer, and every configured value stays below a hard limit that also bounds
//! what recovery accepts from disk.

use crate::error::ConfigError;
use crate::frame::{FRAME_HEADER_SIZE_BYTES, PAYLOAD_SIZE_BYTES_LIMIT, frame_size_bytes};

/// Largest segment file this code writes or reads (recovery holds one segment in memory).
pub const SEGMENT_SIZE_BYTES_LIMIT: u64 = 1 << 30;
/// Smallest segment size: one header and a little payload. Tests use tiny segments.
pub const SEGMENT_SIZE_BYTES_MIN: u64 = FRAME_HEADER_SIZE_BYTES + 1;
/// Largest group-commit buffer.
pub const BUFFER_SIZE_BYTES_LIMIT: u64 = 1 << 30;
/// Largest snapshot payload (the kernel's encoded tables).
pub const SNAPSHOT_SIZE_BYTES_LIMIT: u64 = 16 << 30;

const _: () = assert!(frame_size_bytes(PAYLOAD_SIZE_BYTES_LIMIT) <= SEGMENT_SIZE_BYTES_LIMIT);
const _: () = assert!(frame_size_bytes(PAYLOAD_SIZE_BYTES_LIMIT) <= BUFFER_SIZE_BYTES_LIMIT);

/// What recovery may do when the newest snapshot is unusable (see `docs/recovery.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SnapshotFallback {
    /// Use the newest older snapshot (or the empty state) if the log still holds every record
    /// after it, and report the rejected snapshot; otherwise fail.
    #[default]
    WhenBridgedByLog,
    /// Always fail when the newest snapshot is unusable.
    Never,
}

/// Sizes and policies of one node's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// Size of each log segment file, preallocated when the segment is created.
    pub segment_size_bytes: u64,
    /// Largest record payload `append` accepts.
    pub payload_size_bytes_max: u32,
    /// Largest amount of encoded frames buffered between two flushes (one group commit).
    pub buffer_size_bytes_max: u64,
    /// Largest snapshot payload written or read.
    pub snapshot_size_bytes_max: u64,
    /// Recovery policy for an unusable newest snapshot.
    pub snapshot_fallback: SnapshotFallback,
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            segment_size_bytes: 64 << 20,
            payload_size_bytes_max: 4 << 20,
            buffer_size_bytes_max: 16 << 20,
            snapshot_size_bytes_max: 4 << 30,
            snapshot_fallback: SnapshotFallback::WhenBridgedByLog,
        }
    }
}

impl StorageConfig {
    /// Checks every value against its limit and every relation between values.
    ///
    /// # Errors
    /// The first value or relation that does not hold, naming both sides.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "segment_size_bytes",
            self.segment_size_bytes,
            SEGMENT_SIZE_BYTES_MIN,
            SEGMENT_SIZE_BYTES_LIMIT,
        )?;
        check_range(
            "payload_size_bytes_max",
            u64::from(self.payload_size_bytes_max),
            1,
            u64::from(PAYLOAD_SIZE_BYTES_LIMIT),
        )?;
        check_range("buffer_size_bytes_max", self.buffer_size_bytes_max, 1, BUFFER_SIZE_BYTES_LIMIT)?;
        check_range("snapshot_size_bytes_max", self.snapshot_size_bytes_max, 1, SNAPSHOT_SIZE_BYTES_LIMIT)?;
        let frame_size_max = self.frame_size_bytes_max();
        check_order("frame_size_bytes_max", frame_size_max, "segment_size_bytes", self.segment_size_bytes)?;
        check_order(
            "frame_size_bytes_max",
            frame_size_max,
            "buffer_size_bytes_max",
            self.buffer_size_bytes_max,
        )?;
        Ok(())
    }

    /// Size of the frame holding the largest allowed payload.
    pub fn frame_size_bytes_max(&self) -> u64 {
        frame_size_bytes(self.payload_size_bytes_max)
    }
}

fn check_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::OutOfRange { field, value, min, max });
    }
    Ok(())
}

fn check_order(
    smaller_field: &'static str,
    smaller: u64,
    larger_field: &'static str,
    larger: u64,
) -> Result<(), ConfigError> {
    if smaller > larger {
        return Err(ConfigError::Inconsistent { smaller_field, smaller, larger_field, larger });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        StorageConfig::default().validate().unwrap();
    }

    #[test]
    fn frame_larger_than_segment_is_rejected_naming_both_values() {
        let config = StorageConfig {
            segment_size_bytes: 1024,
            payload_size_bytes_max: 1024,
            ..StorageConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(ConfigError::Inconsistent {
                smaller_field: "frame_size_bytes_max",
                smaller: 1056,
                larger_field: "segment_size_bytes",
                larger: 1024,
            })
        );
    }

    #[test]
    fn zero_payload_maximum_is_out_of_range() {
        let config = StorageConfig { payload_size_bytes_max: 0, ..StorageConfig::default() };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutOfRange { field: "payload_size_bytes_max", .. })
        ));
    }
}
