//! Snapshot restore fails closed on states that are well-formed byte by byte but contradict
//! themselves (a resource naming a lease that does not list it, a live lease whose id changed,
//! an epoch no transition sequence can produce), and converts the wheel cursor when the target
//! configuration uses wider buckets. Each case was once accepted or refused wrongly.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use allocdb_core::{Command, Kernel, KernelConfig, LeaseId, LeaseLookup, ResourceId};
use support::Driver;

fn config() -> KernelConfig {
    KernelConfig {
        resource_count_max: 12,
        lease_count_max: 8,
        lease_member_count_max: 16,
        operation_count_max: 12,
        bundle_size_max: 4,
        reserve_ttl_slots_max: 100,
        dedupe_window_slots: 50,
        history_window_slots: 20,
        expiration_bucket_count: 16,
        expiration_bucket_slots: 8,
        expiration_bucket_length_max: 4,
        expirations_per_tick_max: 8,
        ..KernelConfig::default()
    }
}

/// Resources 1..=3 (lsns 1..=3) created at slot 1; lease lsn 4 = reserve([1], holder 5, ttl 60)
/// at slot 40 (deadline 100); a no-op at slot 45. Body offsets of its fields (header 32 bytes,
/// config 80, four u64 positions, resource count, three 33-byte resources, lease count).
fn one_reserved_lease() -> (Driver, LeaseId) {
    let mut driver = Driver::new(config());
    driver.at(1).create_all(1..=3);
    let lease = driver.at(40).reserve(&[1], 5, 60);
    driver.at(45).apply_noop();
    (driver, lease)
}

const RESOURCE_0_LEASE_LSN_OFFSET: usize = 32 + 112 + 8 + 16 + 1 + 8;
const LEASE_0_OFFSET: usize = 32 + 112 + 8 + 3 * 33 + 8;
const LEASE_0_EPOCH_OFFSET: usize = LEASE_0_OFFSET + 8 + 16 + 1;

fn put_u64(bytes: &mut [u8], offset: usize, value: u64) {
    bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    let body_crc = crc32c::crc32c(&bytes[32..]);
    bytes[24..28].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&bytes[..28]);
    bytes[28..32].copy_from_slice(&header_crc.to_le_bytes());
}

/// docs/semantics-decisions.md, Snapshots: "A snapshot may be restored into a kernel with
/// different capacities or windows ... as long as the contents fit." The wheel cursor is stored
/// as a bucket number of the *snapshot's* `expiration_bucket_slots` but validated and used as
/// one of the *target's*; with wider buckets it looks "ahead of the last request slot" and a
/// snapshot whose contents fit is refused. (Narrower buckets are accepted, with a cursor that
/// is merely further back than it could be.)
#[test]
fn snapshot_restores_into_a_wheel_with_wider_buckets() {
    let (driver, lease) = one_reserved_lease();
    let bytes = driver.kernel.encode_snapshot();
    let wider = KernelConfig { expiration_bucket_slots: 16, ..config() };
    assert_eq!(wider.validate(), Ok(()));
    let restored = Kernel::restore(wider, &bytes);
    // Fails today: InvalidField { field: "wheel_cursor", reason: "5 is ahead of the last request slot" }.
    let restored = restored.map_err(|error| error.to_string()).unwrap();
    let mut due = Vec::new();
    restored.due_expirations(100, u32::MAX, &mut due);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].lease_id, lease);
}

/// STYLE.md §3: "Corruption fails closed with a precise error, never a guess." A held
/// resource's lease lsn must name the lease that lists it as a member; the decoder only checks
/// that it is nonzero and takes the link from the lease records, so a snapshot whose resource
/// and lease records contradict each other is accepted.
#[test]
fn snapshot_whose_resource_names_another_lease_is_refused() {
    let (driver, _) = one_reserved_lease();
    let mut bytes = driver.kernel.encode_snapshot();
    put_u64(&mut bytes, RESOURCE_0_LEASE_LSN_OFFSET, 3);
    // Fails today: restore returns Ok and resource 1 points at lease lsn 4.
    assert!(Kernel::restore(config(), &bytes).is_err(), "resource 1 says lease 3, lease 4 lists it");
}

/// The same gap seen from the lease side: a live lease's lsn (its id) can be changed in a
/// checksum-valid snapshot and the restored kernel knows the lease under the new id, although
/// every member's record names the old one. The holder's next command then gets
/// `lease_not_found`.
#[test]
fn snapshot_whose_live_lease_changed_id_is_refused() {
    let (driver, lease) = one_reserved_lease();
    let mut bytes = driver.kernel.encode_snapshot();
    put_u64(&mut bytes, LEASE_0_OFFSET, 2);
    let Ok(restored) = Kernel::restore(config(), &bytes) else { return };
    // Reached today: the lease now reads not found under its real id.
    assert!(
        matches!(restored.lease(lease), LeaseLookup::Found(_)),
        "restore accepted a live lease under another id; resource 1 now names {:?}",
        restored.resource(ResourceId(1)).unwrap().current_lease_id
    );
}

/// STYLE.md §3: "Arithmetic on input-derived numbers is checked." A checksum-valid snapshot
/// with a lease epoch of `u64::MAX` is accepted, and the next epoch-raising transition then
/// panics (`lease_epoch += 1` overflows; overflow checks are on in release), so one crafted
/// or mis-written snapshot crash-loops every replica that restores it. The same holds for a
/// resource version of `u64::MAX` (next state change) and `last_applied_lsn = u64::MAX`
/// (next apply). Restore should refuse values no log could have produced, or the kernel
/// should saturate/refuse instead of panicking.
#[test]
fn snapshot_with_epoch_at_u64_max_does_not_crash_the_next_command() {
    let (mut driver, lease) = one_reserved_lease();
    driver.at(46).activate(lease, 5, 1);
    let mut bytes = driver.kernel.encode_snapshot();
    put_u64(&mut bytes, LEASE_0_EPOCH_OFFSET, u64::MAX);
    let Ok(restored) = Kernel::restore(config(), &bytes) else { return };
    let mut restored = Driver::from_kernel(restored);
    // Panics today in the kernel's revoke (`attempt to add with overflow`).
    let revoked =
        catch_unwind(AssertUnwindSafe(|| restored.at(47).apply(Command::Revoke { lease_id: lease })));
    assert!(revoked.is_ok(), "revoke panicked on a restored lease with epoch u64::MAX");
}
