//! Kernel bounds, fixed at startup and validated before any table is allocated.
//!
//! Every table and window of the kernel has a named capacity here. [`KernelConfig::validate`]
//! checks each value against its absolute limit and every relation between values, and each
//! error names both sides of the relation that failed, so an operator can fix the config file
//! without reading code.

use crate::ids::SLOT_MAX;

/// The largest capacity of any table. Table positions are `u32` with `u32::MAX` reserved as
/// "none", and hash indexes hold one and a half slots per entry, so this keeps every position
/// representable.
pub const TABLE_CAPACITY_LIMIT: u32 = 1 << 30;

/// The largest number of resources one reserve may name, whatever the configuration says.
/// Wire formats size their bundle fields from this.
pub const BUNDLE_SIZE_LIMIT: u32 = 1024;

/// The largest window (TTL, dedupe window, history window, wheel span) in slots. Together with
/// [`SLOT_MAX`] this keeps `slot + window` far below `u64::MAX`.
pub const WINDOW_SLOTS_LIMIT: u64 = 1 << 40;

/// The largest number of timing-wheel buckets.
pub const EXPIRATION_BUCKET_COUNT_LIMIT: u32 = 1 << 24;

const _: () = assert!(SLOT_MAX.checked_add(2 * WINDOW_SLOTS_LIMIT).is_some());
const _: () = assert!((TABLE_CAPACITY_LIMIT as u64) * 3 / 2 < u32::MAX as u64);
const _: () = assert!(BUNDLE_SIZE_LIMIT <= TABLE_CAPACITY_LIMIT);

/// Every bound of the kernel. All tables are allocated from these at startup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// The shard this kernel sequences; the high 64 bits of every lease id it mints.
    pub shard_id: u64,
    /// Capacity of the resource table.
    pub resource_count_max: u32,
    /// Capacity of the lease table: live leases plus terminal leases not yet retired.
    pub lease_count_max: u32,
    /// Capacity of the lease member table: members of every lease in the lease table.
    pub lease_member_count_max: u32,
    /// Capacity of the operation table (remembered client writes within the dedupe window).
    pub operation_count_max: u32,
    /// The most resources one reserve may name.
    pub bundle_size_max: u32,
    /// The longest reserve TTL, in slots.
    pub reserve_ttl_slots_max: u64,
    /// How long an operation record answers retries, in slots after its request slot.
    pub dedupe_window_slots: u64,
    /// How long a terminal lease stays readable, in slots after it became terminal.
    pub history_window_slots: u64,
    /// Number of timing-wheel buckets.
    pub expiration_bucket_count: u32,
    /// Slots covered by one timing-wheel bucket.
    pub expiration_bucket_slots: u64,
    /// The most reserved leases one bucket may hold; a reserve whose deadline falls in a full
    /// bucket fails with `expiration_index_full`.
    pub expiration_bucket_length_max: u32,
    /// The most due leases one expiry query returns.
    pub expirations_per_tick_max: u32,
    /// Seed of the table hash. Client-chosen ids could otherwise be picked to collide; a seed
    /// chosen when the database is created (and kept with it) makes that impractical.
    pub hash_seed: u64,
}

impl Default for KernelConfig {
    /// Capacities for a development server (about 300 MiB of tables) and windows assuming the
    /// default slot of 10 ms: TTL up to one hour, one-minute dedupe and history windows.
    fn default() -> Self {
        KernelConfig {
            shard_id: 0,
            resource_count_max: 1 << 20,
            lease_count_max: 1 << 20,
            lease_member_count_max: 1 << 21,
            operation_count_max: 1 << 20,
            bundle_size_max: 64,
            reserve_ttl_slots_max: 360_000,
            dedupe_window_slots: 6_000,
            history_window_slots: 6_000,
            expiration_bucket_count: 4_096,
            expiration_bucket_slots: 128,
            expiration_bucket_length_max: 1 << 16,
            expirations_per_tick_max: 1_024,
            hash_seed: 0x243f_6a88_85a3_08d3,
        }
    }
}

/// A configuration value outside its limits or inconsistent with another value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is outside its allowed range.
    #[error("{name} = {value} is outside the allowed range {min}..={max}")]
    OutOfRange {
        /// The configuration field.
        name: &'static str,
        /// Its value.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
    /// Two values violate a required relation.
    #[error("{left_name} = {left_value} must be {relation} {right_name} = {right_value}: {reason}")]
    Relation {
        /// The left-hand field.
        left_name: &'static str,
        /// Its value.
        left_value: u64,
        /// The relation, e.g. ">=".
        relation: &'static str,
        /// The right-hand field (or expression).
        right_name: &'static str,
        /// Its value.
        right_value: u64,
        /// Why the relation is required.
        reason: &'static str,
    },
}

impl KernelConfig {
    /// Whether two configurations decide every command the same way: equal in everything but
    /// the hash seed, which only shapes memory layout.
    pub fn same_semantics(&self, other: &KernelConfig) -> bool {
        KernelConfig { hash_seed: 0, ..*self } == KernelConfig { hash_seed: 0, ..*other }
    }

    /// Checks every value against its limit and every relation between values.
    ///
    /// # Errors
    /// The first violated bound or relation, naming the fields and values involved.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let table_limit = u64::from(TABLE_CAPACITY_LIMIT);
        check_range("resource_count_max", self.resource_count_max.into(), 1, table_limit)?;
        check_range("lease_count_max", self.lease_count_max.into(), 1, table_limit)?;
        check_range("lease_member_count_max", self.lease_member_count_max.into(), 1, table_limit)?;
        check_range("operation_count_max", self.operation_count_max.into(), 1, table_limit)?;
        check_range("bundle_size_max", self.bundle_size_max.into(), 1, BUNDLE_SIZE_LIMIT.into())?;
        check_range("reserve_ttl_slots_max", self.reserve_ttl_slots_max, 1, WINDOW_SLOTS_LIMIT)?;
        check_range("dedupe_window_slots", self.dedupe_window_slots, 1, WINDOW_SLOTS_LIMIT)?;
        check_range("history_window_slots", self.history_window_slots, 1, WINDOW_SLOTS_LIMIT)?;
        check_range(
            "expiration_bucket_count",
            self.expiration_bucket_count.into(),
            1,
            EXPIRATION_BUCKET_COUNT_LIMIT.into(),
        )?;
        check_range("expiration_bucket_slots", self.expiration_bucket_slots, 1, WINDOW_SLOTS_LIMIT)?;
        check_range(
            "expiration_bucket_length_max",
            self.expiration_bucket_length_max.into(),
            1,
            table_limit,
        )?;
        check_range("expirations_per_tick_max", self.expirations_per_tick_max.into(), 1, table_limit)?;
        check_relation(
            ("lease_member_count_max", self.lease_member_count_max.into()),
            ("bundle_size_max", self.bundle_size_max.into()),
            "a bundle of the largest allowed size must fit in the member table",
        )?;
        check_relation(
            ("lease_member_count_max", self.lease_member_count_max.into()),
            ("lease_count_max", self.lease_count_max.into()),
            "every lease has at least one member, so a smaller member table makes lease_count_max unreachable",
        )?;
        check_relation(
            ("lease_count_max", self.lease_count_max.into()),
            ("expiration_bucket_length_max", self.expiration_bucket_length_max.into()),
            "a bucket can never hold more reserved leases than the lease table",
        )?;
        let wheel_span_slots =
            u64::from(self.expiration_bucket_count).saturating_mul(self.expiration_bucket_slots);
        check_relation(
            ("expiration_bucket_count * expiration_bucket_slots", wheel_span_slots),
            ("reserve_ttl_slots_max + 1", self.reserve_ttl_slots_max + 1),
            "the timing wheel must span the longest TTL so that new deadlines never share a bucket with due ones",
        )?;
        check_range(
            "expiration_bucket_count * expiration_bucket_slots",
            wheel_span_slots,
            1,
            WINDOW_SLOTS_LIMIT,
        )?;
        Ok(())
    }
}

fn check_range(name: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::OutOfRange { name, value, min, max });
    }
    Ok(())
}

fn check_relation(
    (left_name, left_value): (&'static str, u64),
    (right_name, right_value): (&'static str, u64),
    reason: &'static str,
) -> Result<(), ConfigError> {
    if left_value < right_value {
        return Err(ConfigError::Relation {
            left_name,
            left_value,
            relation: ">=",
            right_name,
            right_value,
            reason,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ConfigError, KernelConfig};

    #[test]
    fn default_config_is_valid() {
        assert_eq!(KernelConfig::default().validate(), Ok(()));
    }

    #[test]
    fn zero_capacity_is_rejected_with_its_name() {
        let config = KernelConfig { lease_count_max: 0, ..KernelConfig::default() };
        let error = config.validate().unwrap_err();
        assert!(matches!(error, ConfigError::OutOfRange { name: "lease_count_max", value: 0, .. }));
    }

    #[test]
    fn member_table_smaller_than_bundle_names_both_values() {
        let config = KernelConfig {
            lease_count_max: 4,
            lease_member_count_max: 8,
            bundle_size_max: 9,
            expiration_bucket_length_max: 4,
            ..KernelConfig::default()
        };
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("lease_member_count_max = 8"), "{message}");
        assert!(message.contains("bundle_size_max = 9"), "{message}");
    }

    #[test]
    fn wheel_shorter_than_longest_ttl_is_rejected() {
        let config = KernelConfig {
            expiration_bucket_count: 10,
            expiration_bucket_slots: 10,
            reserve_ttl_slots_max: 100,
            ..KernelConfig::default()
        };
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("expiration_bucket_count * expiration_bucket_slots = 100"), "{message}");
        assert!(message.contains("reserve_ttl_slots_max + 1 = 101"), "{message}");
    }

    #[test]
    fn window_beyond_limit_is_rejected() {
        let config = KernelConfig { history_window_slots: u64::MAX, ..KernelConfig::default() };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutOfRange { name: "history_window_slots", .. })
        ));
    }
}
