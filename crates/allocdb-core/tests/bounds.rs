//! Every kernel bound at its limit (STYLE.md §5): fill to exactly the maximum, check that the
//! next command returns the bound's named result and changes nothing, free one entry, check that
//! the next command succeeds; plus `KernelConfig::validate` rejecting every out-of-range field
//! and every violated relation with the values involved.
//!
//! "Changes nothing" is checked against a twin kernel that applied a no-op at the same log
//! position (see `support`): the digest covers `last_applied_lsn`, which every applied command
//! advances, so a before/after digest of one kernel would always differ. Commands under test
//! are unkeyed unless the bound is the operation table, because a keyed refusal is itself
//! remembered (by design) and would differ from the twin for that reason alone.
//!
//! Tables never grow: each test also checks that `memory_usage` is the same when full as when
//! empty.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use allocdb_core::{
    BUNDLE_SIZE_LIMIT, Command, ConfigError, DueLease, EXPIRATION_BUCKET_COUNT_LIMIT, HolderId, Kernel,
    KernelConfig, LeaseId, LeaseLookup, LeaseState, ResourceId, ResourceState, ResultCode, SnapshotError,
    TABLE_CAPACITY_LIMIT, WINDOW_SLOTS_LIMIT,
};
use support::{Driver, LeaseSeen, assert_refused_without_effect, key, resource_ids};

const HOLDER: u128 = 7;

fn base_config() -> KernelConfig {
    KernelConfig {
        resource_count_max: 64,
        lease_count_max: 16,
        lease_member_count_max: 32,
        operation_count_max: 16,
        bundle_size_max: 4,
        reserve_ttl_slots_max: 100,
        dedupe_window_slots: 10,
        history_window_slots: 20,
        expiration_bucket_count: 16,
        expiration_bucket_slots: 8,
        expiration_bucket_length_max: 16,
        expirations_per_tick_max: 8,
        ..KernelConfig::default()
    }
}

fn reserve_command(bundle: &[ResourceId], ttl_slots: u64) -> Command<'_> {
    Command::Reserve { resource_ids: bundle, holder_id: HolderId(HOLDER), ttl_slots }
}

/// Applies a reserve that must succeed; returns the lease.
fn reserve_ok(driver: &mut Driver, bundle: &[u128], ttl_slots: u64) -> LeaseId {
    driver.reserve(bundle, HOLDER, ttl_slots)
}

fn reserve_result(driver: &mut Driver, bundle: &[u128], ttl_slots: u64) -> ResultCode {
    let bundle = resource_ids(bundle);
    driver.apply(reserve_command(&bundle, ttl_slots)).result
}

// ---------------------------------------------------------------------------------------------
// resource_count_max
// ---------------------------------------------------------------------------------------------

fn resource_config() -> KernelConfig {
    KernelConfig { resource_count_max: 4, ..base_config() }
}

fn full_resource_table() -> Driver {
    let mut driver = Driver::new(resource_config());
    let memory = driver.kernel.memory_usage();
    driver.at(1).create_all(1..=4);
    assert_eq!(driver.kernel.usage().resources.used, 4);
    assert_eq!(driver.kernel.memory_usage(), memory);
    driver
}

#[test]
fn resource_table_at_capacity_refuses_create_and_changes_nothing() {
    let create = Command::CreateResource { resource_id: ResourceId(5) };
    let mut driver =
        assert_refused_without_effect(full_resource_table, None, create, ResultCode::ResourceTableFull);
    assert_eq!(driver.kernel.resource(ResourceId(5)), None);
    assert_eq!(driver.kernel.usage().resources.used, 4);
    // An existing id is still `already_exists`, and the resources stay usable.
    let existing = driver.apply(Command::CreateResource { resource_id: ResourceId(4) });
    assert_eq!(existing.result, ResultCode::AlreadyExists);
    reserve_ok(&mut driver, &[1, 2, 3, 4], 10);
}

#[test]
fn resource_table_gains_room_only_from_a_larger_capacity_at_restore() {
    // Resources are never deleted, so the only way to free room is an operator restart with a
    // larger table: restore the snapshot into a kernel with one more slot.
    let driver = full_resource_table();
    let bytes = driver.kernel.encode_snapshot();
    let larger = KernelConfig { resource_count_max: 5, ..resource_config() };
    let mut driver = Driver::from_kernel(Kernel::restore(larger, &bytes).unwrap());
    assert_eq!(driver.kernel.usage().resources.used, 4);
    driver.create(5);
    let refused = driver.apply(Command::CreateResource { resource_id: ResourceId(6) });
    assert_eq!(refused.result, ResultCode::ResourceTableFull);
}

// ---------------------------------------------------------------------------------------------
// lease_count_max
// ---------------------------------------------------------------------------------------------

fn lease_config() -> KernelConfig {
    KernelConfig {
        lease_count_max: 4,
        lease_member_count_max: 8,
        expiration_bucket_length_max: 4,
        ..base_config()
    }
}

/// How the first lease leaves the live set while the table is full.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Released,
    Expired,
    Revoked,
}

/// Four leases (deadline 12) fill the table; the first then ends as `ending`. Returns the
/// driver, the first lease, and its `retire_after_slot`.
fn full_lease_table(ending: Ending) -> (Driver, LeaseId, u64) {
    let mut driver = Driver::new(lease_config());
    let memory = driver.kernel.memory_usage();
    driver.at(1).create_all(1..=5);
    driver.at(2);
    let first = reserve_ok(&mut driver, &[1], 10);
    for resource_id in 2..=4 {
        reserve_ok(&mut driver, &[resource_id], 10);
    }
    assert_eq!(driver.kernel.usage().leases.used, 4);
    assert_eq!(reserve_result(&mut driver, &[5], 10), ResultCode::LeaseTableFull);
    let terminal_slot = match ending {
        Ending::Released => {
            driver.at(3).release(first, HOLDER, 1);
            3
        }
        Ending::Expired => {
            driver.at(12).expire(first, 12);
            12
        }
        Ending::Revoked => {
            driver.at(3).activate(first, HOLDER, 1);
            driver.revoke(first);
            driver.reclaim(first);
            3
        }
    };
    assert_eq!(driver.kernel.memory_usage(), memory);
    (driver, first, terminal_slot + lease_config().history_window_slots)
}

#[test]
fn lease_table_counts_terminal_leases_until_they_retire() {
    for ending in [Ending::Released, Ending::Expired, Ending::Revoked] {
        let bundle = resource_ids(&[1]);
        let (_, first, retire_after_slot) = full_lease_table(ending);
        // The first lease's resource is available again, but its terminal record still counts.
        let mut driver = assert_refused_without_effect(
            || full_lease_table(ending).0,
            None,
            reserve_command(&bundle, 10),
            ResultCode::LeaseTableFull,
        );
        // Reserve, then release or expire (version 3), or activate, revoke and reclaim (5).
        let version = if matches!(ending, Ending::Revoked) { 5 } else { 3 };
        assert_eq!(driver.resource(1), (ResourceState::Available, version), "{ending:?}");
        assert_eq!(driver.kernel.usage().leases.used, 4, "{ending:?}");
        // One slot before retirement it still counts.
        driver.at(retire_after_slot - 1);
        assert_eq!(reserve_result(&mut driver, &[1], 10), ResultCode::LeaseTableFull, "{ending:?}");
        assert!(matches!(driver.lease(first), LeaseSeen::Found { .. }), "{ending:?}");
        // At retire_after_slot, the maintenance before the command drops it, making room.
        driver.at(retire_after_slot);
        let lease = reserve_ok(&mut driver, &[1], 10);
        assert_eq!(driver.lease(first), LeaseSeen::Retired, "{ending:?}");
        assert_eq!(driver.lease(lease), LeaseSeen::Found { state: LeaseState::Reserved, lease_epoch: 1 });
        assert_eq!(driver.kernel.usage().leases.used, 4, "{ending:?}");
        assert_eq!(driver.kernel.retired_watermark(), first.lsn(), "{ending:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// lease_member_count_max
// ---------------------------------------------------------------------------------------------

fn member_config() -> KernelConfig {
    KernelConfig {
        lease_count_max: 6,
        lease_member_count_max: 6,
        expiration_bucket_length_max: 6,
        ..base_config()
    }
}

/// Leases of 4 and 1 members: 5 of 6 member entries used.
fn member_table_with_one_free() -> Driver {
    let mut driver = Driver::new(member_config());
    driver.at(1).create_all(1..=10);
    driver.at(2);
    reserve_ok(&mut driver, &[1, 2, 3, 4], 10);
    reserve_ok(&mut driver, &[5], 10);
    assert_eq!(driver.kernel.usage().lease_members.used, 5);
    driver
}

fn full_member_table() -> Driver {
    let mut driver = member_table_with_one_free();
    reserve_ok(&mut driver, &[6], 10);
    assert_eq!(driver.kernel.usage().lease_members.used, 6);
    driver
}

#[test]
fn member_table_refuses_a_bundle_that_does_not_fit_and_accepts_an_exact_fit() {
    let bundle = resource_ids(&[6, 7]);
    let mut driver = assert_refused_without_effect(
        member_table_with_one_free,
        None,
        reserve_command(&bundle, 10),
        ResultCode::LeaseMemberTableFull,
    );
    assert_eq!(driver.resource(6), (ResourceState::Available, 1));
    assert_eq!(driver.resource(7), (ResourceState::Available, 1));
    // A bundle of exactly the free room fits.
    reserve_ok(&mut driver, &[6], 10);
    assert_eq!(driver.kernel.usage().lease_members.used, 6);
}

#[test]
fn full_member_table_frees_room_when_a_terminal_lease_retires() {
    let bundle = resource_ids(&[7]);
    let mut driver = assert_refused_without_effect(
        full_member_table,
        None,
        reserve_command(&bundle, 10),
        ResultCode::LeaseMemberTableFull,
    );
    let memory = driver.kernel.memory_usage();
    let big = LeaseId::new(0, 11);
    assert_eq!(member_count(&driver, big), Some(4));
    driver.at(3).release(big, HOLDER, 1);
    // Terminal, not retired: its members still count.
    assert_eq!(reserve_result(&mut driver, &[7], 10), ResultCode::LeaseMemberTableFull);
    driver.at(3 + member_config().history_window_slots);
    reserve_ok(&mut driver, &[7, 8], 10);
    assert_eq!(driver.kernel.usage().lease_members.used, 4);
    assert_eq!(driver.kernel.memory_usage(), memory);
}

/// The member count of a lease that a read finds.
fn member_count(driver: &Driver, lease_id: LeaseId) -> Option<u32> {
    match driver.kernel.lease(lease_id) {
        LeaseLookup::Found(view) => Some(view.member_count()),
        LeaseLookup::Retired | LeaseLookup::NotFound => None,
    }
}

// ---------------------------------------------------------------------------------------------
// operation_count_max
// ---------------------------------------------------------------------------------------------

fn operation_config() -> KernelConfig {
    KernelConfig { operation_count_max: 4, dedupe_window_slots: 10, ..base_config() }
}

const CLIENT: u128 = 1;

/// Four keyed creates at slot 1 fill the operation table.
fn full_operation_table() -> Driver {
    let mut driver = Driver::new(operation_config());
    let memory = driver.kernel.memory_usage();
    driver.at(1);
    for operation_id in 1..=4 {
        let create = Command::CreateResource { resource_id: ResourceId(operation_id) };
        assert_eq!(driver.apply_keyed(key(CLIENT, operation_id), create).result, ResultCode::Ok);
    }
    assert_eq!(driver.kernel.usage().operations.used, 4);
    assert_eq!(driver.kernel.memory_usage(), memory);
    driver
}

#[test]
fn operation_table_full_refuses_new_keys_and_executes_nothing() {
    let create = Command::CreateResource { resource_id: ResourceId(5) };
    let mut driver = assert_refused_without_effect(
        full_operation_table,
        Some(key(CLIENT, 5)),
        create,
        ResultCode::OperationTableFull,
    );
    assert_eq!(driver.kernel.resource(ResourceId(5)), None);
    assert_eq!(driver.kernel.usage().operations.used, 4);
    // Retries of remembered operations are still answered.
    let retry = driver.apply_keyed(key(CLIENT, 1), Command::CreateResource { resource_id: ResourceId(1) });
    assert!(retry.from_retry_cache);
    // Unkeyed writes need no record and still execute.
    assert_eq!(driver.apply(create).result, ResultCode::Ok);
}

#[test]
fn operation_table_gains_room_when_records_leave_the_dedupe_window() {
    let window = operation_config().dedupe_window_slots;
    let mut driver = full_operation_table();
    let create = |resource_id| Command::CreateResource { resource_id: ResourceId(resource_id) };
    // One slot before the records expire, the table is still full.
    let refused = driver.at(1 + window - 1).apply_keyed(key(CLIENT, 5), create(5));
    assert_eq!(refused.result, ResultCode::OperationTableFull);
    // At the window's end the maintenance before the command drops two expired records.
    let fresh = driver.at(1 + window).apply_keyed(key(CLIENT, 5), create(5));
    assert_eq!(fresh.result, ResultCode::Ok);
    assert!(!fresh.from_retry_cache, "the refused attempt was not remembered");
    assert_eq!(driver.kernel.usage().operations.used, 3);
}

// ---------------------------------------------------------------------------------------------
// bundle_size_max
// ---------------------------------------------------------------------------------------------

#[test]
fn bundle_of_bundle_size_max_is_accepted_and_one_more_is_refused() {
    let setup = || {
        let mut driver = Driver::new(base_config());
        driver.at(1).create_all(1..=10);
        driver
    };
    let too_large = resource_ids(&[1, 2, 3, 4, 5]);
    let mut driver = assert_refused_without_effect(
        setup,
        None,
        reserve_command(&too_large, 10),
        ResultCode::BundleTooLarge,
    );
    let lease = reserve_ok(&mut driver, &[1, 2, 3, 4], 10);
    let LeaseSeen::Found { state: LeaseState::Reserved, .. } = driver.lease(lease) else {
        panic!("lease missing")
    };
    assert_eq!(driver.kernel.usage().lease_members.used, 4);
}

#[test]
fn bundle_size_limit_itself_is_accepted_when_configured() {
    let limit = BUNDLE_SIZE_LIMIT;
    let config = KernelConfig {
        resource_count_max: limit + 1,
        lease_member_count_max: 2 * limit,
        bundle_size_max: limit,
        ..base_config()
    };
    let mut driver = Driver::new(config);
    driver.at(1).create_all(1..=u128::from(limit) + 1);
    let all: Vec<u128> = (1..=u128::from(limit) + 1).collect();
    assert_eq!(reserve_result(&mut driver, &all, 10), ResultCode::BundleTooLarge);
    reserve_ok(&mut driver, &all[..limit as usize], 10);
    assert_eq!(driver.kernel.usage().lease_members.used, u64::from(limit));
    let too_large = KernelConfig { bundle_size_max: limit + 1, ..config };
    assert!(matches!(too_large.validate(), Err(ConfigError::OutOfRange { name: "bundle_size_max", .. })));
}

// ---------------------------------------------------------------------------------------------
// reserve_ttl_slots_max
// ---------------------------------------------------------------------------------------------

#[test]
fn ttl_of_exactly_the_maximum_is_accepted_and_one_more_is_refused() {
    let setup = || {
        let mut driver = Driver::new(base_config());
        driver.at(1).create_all(1..=2);
        driver.at(5);
        driver
    };
    let bundle = resource_ids(&[1]);
    for ttl_slots in [0, 101, u64::MAX] {
        assert_refused_without_effect(
            setup,
            None,
            reserve_command(&bundle, ttl_slots),
            ResultCode::TtlOutOfRange,
        );
    }
    let mut driver = setup();
    let outcome = driver.apply(reserve_command(&bundle, 100));
    assert_eq!(outcome.result, ResultCode::Ok);
    assert_eq!(outcome.deadline_slot, Some(105));
    // A TTL of one slot (the minimum) is accepted too.
    let single = resource_ids(&[2]);
    assert_eq!(driver.apply(reserve_command(&single, 1)).deadline_slot, Some(6));
    // The longest reservation becomes due exactly at its deadline, not a slot earlier.
    let mut due = Vec::new();
    driver.kernel.due_expirations(104, u32::MAX, &mut due);
    assert!(due.iter().all(|lease| lease.lease_id != outcome.lease_id.unwrap()));
    driver.kernel.due_expirations(105, u32::MAX, &mut due);
    assert!(due.iter().any(|lease| lease.lease_id == outcome.lease_id.unwrap()));
}

#[test]
fn largest_valid_ttl_is_one_below_the_window_limit() {
    // The wheel must span reserve_ttl_slots_max + 1 slots and may span at most
    // WINDOW_SLOTS_LIMIT, so WINDOW_SLOTS_LIMIT - 1 is the longest TTL any configuration allows.
    let config = KernelConfig {
        reserve_ttl_slots_max: WINDOW_SLOTS_LIMIT - 1,
        expiration_bucket_count: 1 << 20,
        expiration_bucket_slots: 1 << 20,
        ..base_config()
    };
    assert_eq!(config.validate(), Ok(()));
    let at_limit = KernelConfig { reserve_ttl_slots_max: WINDOW_SLOTS_LIMIT, ..config };
    assert!(matches!(
        at_limit.validate(),
        Err(ConfigError::Relation { right_name: "reserve_ttl_slots_max + 1", .. })
    ));
    let mut driver = Driver::new(config);
    driver.at(1).create(1);
    let bundle = resource_ids(&[1]);
    let outcome = driver.apply(reserve_command(&bundle, WINDOW_SLOTS_LIMIT - 1));
    assert_eq!(outcome.deadline_slot, Some(WINDOW_SLOTS_LIMIT));
    assert_eq!(driver.apply(reserve_command(&bundle, WINDOW_SLOTS_LIMIT)).result, ResultCode::TtlOutOfRange);
}

// ---------------------------------------------------------------------------------------------
// expiration_bucket_length_max
// ---------------------------------------------------------------------------------------------

fn bucket_config() -> KernelConfig {
    KernelConfig { expiration_bucket_length_max: 3, ..base_config() }
}

/// Three reserves made at slot 2 with deadlines 24, 28 and 31 fill bucket 3 (slots 24..=31).
fn full_bucket() -> (Driver, [LeaseId; 3]) {
    let mut driver = Driver::new(bucket_config());
    let memory = driver.kernel.memory_usage();
    driver.at(1).create_all(1..=10);
    driver.at(2);
    let leases = [
        reserve_ok(&mut driver, &[1], 22),
        reserve_ok(&mut driver, &[2], 26),
        reserve_ok(&mut driver, &[3], 29),
    ];
    assert_eq!(driver.kernel.usage().expirations.used, 3);
    assert_eq!(driver.kernel.memory_usage(), memory);
    (driver, leases)
}

#[test]
fn full_expiration_bucket_refuses_reserves_due_in_it_and_changes_nothing() {
    let bundle = resource_ids(&[4]);
    let mut driver = assert_refused_without_effect(
        || full_bucket().0,
        None,
        reserve_command(&bundle, 28),
        ResultCode::ExpirationIndexFull,
    );
    assert_eq!(driver.resource(4), (ResourceState::Available, 1));
    assert_eq!(driver.kernel.reserved_lease_count(), 3);
    // Both ends of the bucket are refused; the neighbouring buckets have room.
    assert_eq!(reserve_result(&mut driver, &[4], 22), ResultCode::ExpirationIndexFull);
    assert_eq!(reserve_result(&mut driver, &[4], 29), ResultCode::ExpirationIndexFull);
    reserve_ok(&mut driver, &[4], 21);
    reserve_ok(&mut driver, &[5], 30);
}

#[test]
fn expiration_bucket_gains_room_when_a_lease_leaves_it_by_expire_release_or_activate() {
    let (mut driver, [first, second, third]) = full_bucket();
    // Expire the first at its deadline; a new reserve can take its place in the bucket.
    driver.at(24).expire(first, 24);
    reserve_ok(&mut driver, &[4], 4);
    assert_eq!(reserve_result(&mut driver, &[5], 5), ResultCode::ExpirationIndexFull);
    // Release the second.
    driver.release(second, HOLDER, 1);
    reserve_ok(&mut driver, &[5], 5);
    assert_eq!(reserve_result(&mut driver, &[6], 6), ResultCode::ExpirationIndexFull);
    // Activate the third: an active lease has no deadline and leaves the wheel.
    driver.activate(third, HOLDER, 1);
    reserve_ok(&mut driver, &[6], 6);
    assert_eq!(driver.kernel.usage().expirations.used, 3);
}

// ---------------------------------------------------------------------------------------------
// expirations_per_tick_max
// ---------------------------------------------------------------------------------------------

/// Six reserves at slot 2 (lsns 7..=12): bucket 1 holds lsn 8 (deadline 12) and lsn 10 (11);
/// bucket 2 holds lsn 7 (22), lsn 9 (16) and lsn 11 (16); lsn 12 (32) is in bucket 4.
fn many_due() -> Driver {
    let config = KernelConfig { expirations_per_tick_max: 3, ..base_config() };
    let mut driver = Driver::new(config);
    driver.at(1).create_all(1..=6);
    driver.at(2);
    for (resource_id, ttl_slots) in [(1, 20), (2, 10), (3, 14), (4, 9), (5, 14), (6, 30)] {
        reserve_ok(&mut driver, &[resource_id], ttl_slots);
    }
    driver
}

fn due_lsns(driver: &Driver, slot: u64, count_max: u32) -> Vec<(u64, u64)> {
    let mut due: Vec<DueLease> = Vec::new();
    driver.kernel.due_expirations(slot, count_max, &mut due);
    due.iter().map(|lease| (lease.lease_id.lsn(), lease.deadline_slot)).collect()
}

#[test]
fn due_query_returns_exactly_expirations_per_tick_max_when_more_are_due() {
    let mut driver = many_due();
    // Five are due at 23; the cap is 3, oldest bucket first, lsn order within a bucket.
    assert_eq!(due_lsns(&driver, 23, u32::MAX), [(8, 12), (10, 11), (7, 22)]);
    assert_eq!(due_lsns(&driver, 23, 3), [(8, 12), (10, 11), (7, 22)]);
    assert_eq!(due_lsns(&driver, 23, 2), [(8, 12), (10, 11)]);
    assert!(due_lsns(&driver, 23, 0).is_empty());
    // Within a partly due bucket only the due leases count.
    assert_eq!(due_lsns(&driver, 16, u32::MAX), [(8, 12), (10, 11), (9, 16)]);
    assert_eq!(due_lsns(&driver, 15, u32::MAX), [(8, 12), (10, 11)]);
    assert!(due_lsns(&driver, 10, u32::MAX).is_empty());
    // Expiring what one query returned lets the next query return the rest.
    driver.at(23);
    for (lsn, deadline_slot) in due_lsns(&driver, 23, u32::MAX) {
        driver.expire(LeaseId::new(0, lsn), deadline_slot);
    }
    assert_eq!(due_lsns(&driver, 23, u32::MAX), [(9, 16), (11, 16)]);
    for (lsn, deadline_slot) in due_lsns(&driver, 23, u32::MAX) {
        driver.expire(LeaseId::new(0, lsn), deadline_slot);
    }
    assert!(due_lsns(&driver, 23, u32::MAX).is_empty());
    assert_eq!(driver.kernel.reserved_lease_count(), 1);
    assert_eq!(due_lsns(&driver, 32, u32::MAX), [(12, 32)]);
}

// ---------------------------------------------------------------------------------------------
// Every table at capacity one.
// ---------------------------------------------------------------------------------------------

#[test]
fn kernel_with_every_capacity_at_one_works_and_refuses_the_second_entry() {
    let config = KernelConfig {
        resource_count_max: 1,
        lease_count_max: 1,
        lease_member_count_max: 1,
        operation_count_max: 1,
        bundle_size_max: 1,
        reserve_ttl_slots_max: 1,
        dedupe_window_slots: 1,
        history_window_slots: 1,
        expiration_bucket_count: 2,
        expiration_bucket_slots: 1,
        expiration_bucket_length_max: 1,
        expirations_per_tick_max: 1,
        ..KernelConfig::default()
    };
    let mut driver = Driver::new(config);
    driver.at(1).create(1);
    let refused = driver.apply(Command::CreateResource { resource_id: ResourceId(2) });
    assert_eq!(refused.result, ResultCode::ResourceTableFull);
    let lease = reserve_ok(&mut driver, &[1], 1);
    assert_eq!(reserve_result(&mut driver, &[1], 1), ResultCode::ResourceBusy);
    let mut due = Vec::new();
    driver.kernel.due_expirations(2, u32::MAX, &mut due);
    assert_eq!(due.len(), 1);
    driver.at(2).expire(lease, 2);
    // The expired lease still holds the only lease slot until it retires at 3.
    assert_eq!(reserve_result(&mut driver, &[1], 1), ResultCode::LeaseTableFull);
    driver.at(3);
    reserve_ok(&mut driver, &[1], 1);
    let keyed = driver.apply_keyed(key(CLIENT, 1), Command::CreateResource { resource_id: ResourceId(1) });
    assert_eq!(keyed.result, ResultCode::AlreadyExists);
    let second_key =
        driver.apply_keyed(key(CLIENT, 2), Command::CreateResource { resource_id: ResourceId(1) });
    assert_eq!(second_key.result, ResultCode::OperationTableFull);
}

// ---------------------------------------------------------------------------------------------
// KernelConfig::validate
// ---------------------------------------------------------------------------------------------

/// A config field, how to set it, and its allowed range.
struct RangeRow {
    name: &'static str,
    set: fn(&mut KernelConfig, u64),
    min: u64,
    max: u64,
}

fn range_rows() -> Vec<RangeRow> {
    let table = u64::from(TABLE_CAPACITY_LIMIT);
    vec![
        RangeRow {
            name: "resource_count_max",
            set: |c, v| c.resource_count_max = v as u32,
            min: 1,
            max: table,
        },
        RangeRow { name: "lease_count_max", set: |c, v| c.lease_count_max = v as u32, min: 1, max: table },
        RangeRow {
            name: "lease_member_count_max",
            set: |c, v| c.lease_member_count_max = v as u32,
            min: 1,
            max: table,
        },
        RangeRow {
            name: "operation_count_max",
            set: |c, v| c.operation_count_max = v as u32,
            min: 1,
            max: table,
        },
        RangeRow {
            name: "bundle_size_max",
            set: |c, v| c.bundle_size_max = v as u32,
            min: 1,
            max: u64::from(BUNDLE_SIZE_LIMIT),
        },
        RangeRow {
            name: "reserve_ttl_slots_max",
            set: |c, v| c.reserve_ttl_slots_max = v,
            min: 1,
            max: WINDOW_SLOTS_LIMIT,
        },
        RangeRow {
            name: "dedupe_window_slots",
            set: |c, v| c.dedupe_window_slots = v,
            min: 1,
            max: WINDOW_SLOTS_LIMIT,
        },
        RangeRow {
            name: "history_window_slots",
            set: |c, v| c.history_window_slots = v,
            min: 1,
            max: WINDOW_SLOTS_LIMIT,
        },
        RangeRow {
            name: "expiration_bucket_count",
            set: |c, v| c.expiration_bucket_count = v as u32,
            min: 1,
            max: u64::from(EXPIRATION_BUCKET_COUNT_LIMIT),
        },
        RangeRow {
            name: "expiration_bucket_slots",
            set: |c, v| c.expiration_bucket_slots = v,
            min: 1,
            max: WINDOW_SLOTS_LIMIT,
        },
        RangeRow {
            name: "expiration_bucket_length_max",
            set: |c, v| c.expiration_bucket_length_max = v as u32,
            min: 1,
            max: table,
        },
        RangeRow {
            name: "expirations_per_tick_max",
            set: |c, v| c.expirations_per_tick_max = v as u32,
            min: 1,
            max: table,
        },
    ]
}

#[test]
fn validate_rejects_every_field_outside_its_range_naming_field_value_and_range() {
    for row in range_rows() {
        for value in [row.min - 1, row.max + 1] {
            let mut config = KernelConfig::default();
            (row.set)(&mut config, value);
            let expected = ConfigError::OutOfRange { name: row.name, value, min: row.min, max: row.max };
            assert_eq!(config.validate(), Err(expected.clone()), "{} = {value}", row.name);
            let message = expected.to_string();
            assert!(message.contains(&format!("{} = {value}", row.name)), "{message}");
            assert!(message.contains(&format!("{}..={}", row.min, row.max)), "{message}");
            assert_eq!(Kernel::new(config).err(), Some(expected), "Kernel::new validates too");
        }
    }
}

/// A config violating one relation, and the two `name = value` pairs its message must carry.
struct RelationRow {
    config: KernelConfig,
    left: &'static str,
    right: &'static str,
}

fn relation_rows() -> Vec<RelationRow> {
    let small = KernelConfig {
        lease_count_max: 4,
        lease_member_count_max: 8,
        bundle_size_max: 4,
        expiration_bucket_length_max: 4,
        ..KernelConfig::default()
    };
    vec![
        RelationRow {
            config: KernelConfig { bundle_size_max: 9, ..small },
            left: "lease_member_count_max = 8",
            right: "bundle_size_max = 9",
        },
        RelationRow {
            config: KernelConfig { lease_count_max: 9, expiration_bucket_length_max: 4, ..small },
            left: "lease_member_count_max = 8",
            right: "lease_count_max = 9",
        },
        RelationRow {
            config: KernelConfig { expiration_bucket_length_max: 5, ..small },
            left: "lease_count_max = 4",
            right: "expiration_bucket_length_max = 5",
        },
        RelationRow {
            config: KernelConfig {
                expiration_bucket_count: 10,
                expiration_bucket_slots: 10,
                reserve_ttl_slots_max: 100,
                ..small
            },
            left: "expiration_bucket_count * expiration_bucket_slots = 100",
            right: "reserve_ttl_slots_max + 1 = 101",
        },
    ]
}

#[test]
fn validate_rejects_every_violated_relation_naming_both_values() {
    for row in relation_rows() {
        let error = row.config.validate().unwrap_err();
        assert!(matches!(error, ConfigError::Relation { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(row.left), "{message} should name {}", row.left);
        assert!(message.contains(row.right), "{message} should name {}", row.right);
        let snapshot = Kernel::new(base_config()).unwrap().encode_snapshot();
        let refused = Kernel::restore(row.config, &snapshot).err();
        let expected = SnapshotError::InvalidField { field: "config", offset: 0, reason: message };
        assert_eq!(refused, Some(expected), "restore validates the target config first");
    }
}

#[test]
fn validate_accepts_every_relation_at_equality() {
    let equal = KernelConfig {
        lease_count_max: 8,
        lease_member_count_max: 8,
        bundle_size_max: 8,
        expiration_bucket_length_max: 8,
        expiration_bucket_count: 101,
        expiration_bucket_slots: 1,
        reserve_ttl_slots_max: 100,
        ..KernelConfig::default()
    };
    assert_eq!(equal.validate(), Ok(()));
    let one_short = KernelConfig { expiration_bucket_count: 100, ..equal };
    assert!(one_short.validate().is_err());
}

#[test]
fn validate_rejects_a_wheel_spanning_more_than_the_window_limit() {
    let config = KernelConfig {
        expiration_bucket_count: EXPIRATION_BUCKET_COUNT_LIMIT,
        expiration_bucket_slots: 1 << 17,
        ..KernelConfig::default()
    };
    let span = u64::from(EXPIRATION_BUCKET_COUNT_LIMIT) << 17;
    assert_eq!(
        config.validate(),
        Err(ConfigError::OutOfRange {
            name: "expiration_bucket_count * expiration_bucket_slots",
            value: span,
            min: 1,
            max: WINDOW_SLOTS_LIMIT,
        })
    );
    let at_limit = KernelConfig { expiration_bucket_slots: 1 << 16, ..config };
    assert_eq!(at_limit.validate(), Ok(()));
}
