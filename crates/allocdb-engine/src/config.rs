//! Engine configuration: the kernel's bounds plus the engine's own queues and timings, with
//! human units (milliseconds) converted to slots in one place.
//!
//! TTL conversion rounds up and adds one slot: a command is stamped with the slot in progress
//! (`floor(now / slot)`), so up to one slot has already elapsed when it is sequenced. With
//! `ttl_slots = ceil(ttl_ms / slot_ms) + 1` the deadline is never earlier than `now + ttl_ms`:
//! a holder always gets at least the time it asked for, and a resource is reused late, never
//! early.

use allocdb_core::KernelConfig;
use allocdb_storage::StorageConfig;

/// The largest slot length.
pub const SLOT_DURATION_MS_MAX: u64 = 60_000;

/// Every bound and timing of one single-node engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Table capacities and hashing of the kernel. Its slot-valued windows are overwritten from
    /// the millisecond fields below by [`EngineConfig::kernel_config`].
    pub kernel: KernelConfig,
    /// Log segment and buffer sizes.
    pub storage: StorageConfig,
    /// Length of one logical slot.
    pub slot_duration_ms: u64,
    /// Longest reserve TTL a client may ask for.
    pub reserve_ttl_ms_max: u64,
    /// How long a retry is answered from the operation table.
    pub dedupe_window_ms: u64,
    /// How long a terminal lease stays readable.
    pub history_window_ms: u64,
    /// Commands waiting for the sequencer; beyond it submissions are rejected `overloaded`.
    pub submission_queue_capacity: u32,
    /// The most commands in one group commit (one log write and one sync).
    pub batch_size_max: u32,
    /// Snapshot after this many records since the last snapshot.
    pub snapshot_interval_records: u64,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            kernel: KernelConfig::default(),
            storage: StorageConfig::default(),
            slot_duration_ms: 10,
            reserve_ttl_ms_max: 3_600_000,
            dedupe_window_ms: 60_000,
            history_window_ms: 60_000,
            submission_queue_capacity: 65_536,
            batch_size_max: 16_384,
            snapshot_interval_records: 1 << 22,
        }
    }
}

/// A configuration value out of range or inconsistent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineConfigError {
    /// A value outside its allowed range.
    #[error("{name} = {value} is outside the allowed range {min}..={max}")]
    OutOfRange {
        /// The field.
        name: &'static str,
        /// Its value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// The derived kernel configuration is invalid.
    #[error("kernel configuration: {0}")]
    Kernel(#[from] allocdb_core::ConfigError),
    /// The storage configuration is invalid.
    #[error("storage configuration: {0}")]
    Storage(String),
}

impl EngineConfig {
    /// Slots for a duration, rounded up.
    pub fn slots_for_ms(&self, duration_ms: u64) -> u64 {
        duration_ms.div_ceil(self.slot_duration_ms)
    }

    /// The kernel TTL for a client's `ttl_ms`: 0 stays 0 and anything above the maximum maps
    /// beyond the kernel's maximum, so the kernel answers both with `ttl_out_of_range`.
    pub fn ttl_slots_for_ms(&self, ttl_ms: u64) -> u64 {
        if ttl_ms == 0 {
            return 0;
        }
        if ttl_ms > self.reserve_ttl_ms_max {
            return self.kernel_ttl_slots_max() + 1;
        }
        self.slots_for_ms(ttl_ms) + 1
    }

    fn kernel_ttl_slots_max(&self) -> u64 {
        self.slots_for_ms(self.reserve_ttl_ms_max) + 1
    }

    /// The kernel configuration with windows converted from milliseconds, and a timing wheel
    /// spanning the longest TTL (bucket count kept, bucket span widened if needed).
    pub fn kernel_config(&self) -> KernelConfig {
        let reserve_ttl_slots_max = self.kernel_ttl_slots_max();
        let bucket_count = u64::from(self.kernel.expiration_bucket_count.max(1));
        let bucket_slots_needed = (reserve_ttl_slots_max + 1).div_ceil(bucket_count);
        KernelConfig {
            reserve_ttl_slots_max,
            dedupe_window_slots: self.slots_for_ms(self.dedupe_window_ms).max(1),
            history_window_slots: self.slots_for_ms(self.history_window_ms).max(1),
            expiration_bucket_slots: self.kernel.expiration_bucket_slots.max(bucket_slots_needed),
            ..self.kernel
        }
    }

    /// Checks every value and the derived kernel and storage configurations.
    ///
    /// # Errors
    /// The first invalid value, naming it.
    pub fn validate(&self) -> Result<(), EngineConfigError> {
        check_range("slot_duration_ms", self.slot_duration_ms, 1, SLOT_DURATION_MS_MAX)?;
        check_range("reserve_ttl_ms_max", self.reserve_ttl_ms_max, 1, 1 << 40)?;
        check_range("dedupe_window_ms", self.dedupe_window_ms, 1, 1 << 40)?;
        check_range("history_window_ms", self.history_window_ms, 1, 1 << 40)?;
        check_range("submission_queue_capacity", self.submission_queue_capacity.into(), 1, 1 << 24)?;
        check_range("batch_size_max", self.batch_size_max.into(), 1, 1 << 20)?;
        check_range("snapshot_interval_records", self.snapshot_interval_records, 1, u64::MAX)?;
        self.kernel_config().validate()?;
        let submission_size_max = submission_size_bytes_max(self.kernel.bundle_size_max);
        if u64::from(self.storage.payload_size_bytes_max) < submission_size_max {
            return Err(EngineConfigError::OutOfRange {
                name: "storage.payload_size_bytes_max",
                value: self.storage.payload_size_bytes_max.into(),
                min: submission_size_max,
                max: allocdb_storage::PAYLOAD_SIZE_BYTES_LIMIT.into(),
            });
        }
        self.storage.validate().map_err(|error| EngineConfigError::Storage(error.to_string()))?;
        Ok(())
    }
}

/// The largest record payload the engine writes when bundles have at most `bundle_size_max`
/// members: an encoded command (flags, operation key, kind, a reserve's fixed fields plus its
/// members) or a configuration record, whichever is larger.
pub fn submission_size_bytes_max(bundle_size_max: u32) -> u64 {
    let command = 1 + 32 + 1 + 16 + 8 + 2 + 16 * u64::from(bundle_size_max);
    command.max(CONFIG_RECORD_SIZE_BYTES)
}

/// Size of an encoded kernel configuration (`allocdb_core::encode_kernel_config`).
const CONFIG_RECORD_SIZE_BYTES: u64 = 80;

fn check_range(name: &'static str, value: u64, min: u64, max: u64) -> Result<(), EngineConfigError> {
    if value < min || value > max {
        return Err(EngineConfigError::OutOfRange { name, value, min, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::EngineConfig;

    #[test]
    fn configuration_records_fit_the_payload_bound() {
        let mut bytes = Vec::new();
        allocdb_core::encode_kernel_config(&allocdb_core::KernelConfig::default(), &mut bytes);
        assert_eq!(bytes.len() as u64, super::CONFIG_RECORD_SIZE_BYTES);
        assert!(super::submission_size_bytes_max(1) >= super::CONFIG_RECORD_SIZE_BYTES);
    }

    #[test]
    fn default_config_is_valid() {
        assert_eq!(EngineConfig::default().validate(), Ok(()));
    }

    #[test]
    fn ttl_rounds_up_and_adds_the_partial_slot() {
        let config = EngineConfig { slot_duration_ms: 10, ..EngineConfig::default() };
        assert_eq!(config.ttl_slots_for_ms(0), 0);
        assert_eq!(config.ttl_slots_for_ms(1), 2);
        assert_eq!(config.ttl_slots_for_ms(10), 2);
        assert_eq!(config.ttl_slots_for_ms(11), 3);
        let kernel = config.kernel_config();
        assert_eq!(config.ttl_slots_for_ms(config.reserve_ttl_ms_max), kernel.reserve_ttl_slots_max);
        assert!(config.ttl_slots_for_ms(config.reserve_ttl_ms_max + 1) > kernel.reserve_ttl_slots_max);
    }

    #[test]
    fn holder_always_gets_at_least_the_requested_time() {
        let config = EngineConfig { slot_duration_ms: 7, ..EngineConfig::default() };
        for now_ms in [0_u64, 1, 6, 7, 13, 700] {
            for ttl_ms in [1_u64, 6, 7, 8, 100] {
                let request_slot = now_ms / config.slot_duration_ms;
                let deadline_slot = request_slot + config.ttl_slots_for_ms(ttl_ms);
                // The first instant at which the sequencer's slot reaches the deadline.
                let expiry_ms = deadline_slot * config.slot_duration_ms;
                assert!(expiry_ms >= now_ms + ttl_ms, "now {now_ms} ttl {ttl_ms} expiry {expiry_ms}");
            }
        }
    }
}
