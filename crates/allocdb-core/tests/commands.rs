//! Table-driven state-machine tests: one row per (command × state × result code).
//!
//! Each table row names a setup, a command and the expected committed result, then the lease
//! state and epoch and the member resources' states and versions after the command. Every row
//! is checked against a twin kernel built by the same setup that applied a no-op instead (see
//! `support`): a refused command must leave the canonical state byte-for-byte as the no-op did,
//! and a successful one must not. The order of checks and the epoch and version rules are those
//! of `docs/semantics-decisions.md`; where two checks fail at once the row shows which wins.
//!
//! The dedupe tests at the end prove the operation-table contract: a retry returns the original
//! outcome (`from_retry_cache`, original `applied_lsn`), a different command under the same key
//! is `operation_conflict` and changes nothing, a retry after the window executes afresh, client
//! ids scope operation ids, and retries are answered even when the table is full.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use allocdb_core::{
    Command, HolderId, KernelConfig, LeaseId, LeaseLookup, LeaseState as L, ResourceId, ResourceState as RS,
    ResultCode as R, Slot,
};
use support::{Driver, LeaseSeen, assert_refused_without_effect, key, resource_ids};

fn config() -> KernelConfig {
    KernelConfig {
        resource_count_max: 16,
        lease_count_max: 8,
        lease_member_count_max: 12,
        operation_count_max: 16,
        bundle_size_max: 4,
        reserve_ttl_slots_max: 100,
        dedupe_window_slots: 50,
        history_window_slots: 20,
        expiration_bucket_count: 16,
        expiration_bucket_slots: 8,
        expiration_bucket_length_max: 3,
        expirations_per_tick_max: 8,
        ..KernelConfig::default()
    }
}

/// The holder of the lease under test.
const HOLDER: u128 = 7;
/// Another holder: the wrong one for the lease under test, and the holder of blocking leases.
const OTHER: u128 = 8;

// ---------------------------------------------------------------------------------------------
// Lease commands: activate, release, revoke, reclaim, expire from every lease state.
// ---------------------------------------------------------------------------------------------

/// The lease under test is `L = reserve([1, 2], HOLDER, ttl 20)` at lsn 6, slot 10, so its
/// deadline is slot 30. Each setup then moves it (or points the command elsewhere).
const LEASE_LSN: u64 = 6;
const DEADLINE: Slot = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    /// L reserved, now = 12.
    Reserved,
    /// L activated at 11, now = 12.
    Active,
    /// L activated at 11, revoked at 12 (epoch 2), now = 13.
    Revoking,
    /// L released at 11 (epoch 2), now = 12.
    Released,
    /// L expired at its deadline 30 (epoch 2), now = 31.
    Expired,
    /// L activated, revoked and reclaimed at 11..13 (epoch 2), now = 14.
    Revoked,
    /// L released at 11 (readable until 31) behind two leases that became terminal before it;
    /// at now = 40 the lazy maintenance drops only those two, so L is retired but still stored.
    RetiredStored,
    /// L released at 11 and dropped by the maintenance of a command at 40 (watermark 6);
    /// now = 41.
    RetiredDropped,
    /// As `RetiredDropped`, but the command names lsn 3 (a `create_resource`), at or below the
    /// retired watermark.
    NonLeaseLsnBelowWatermark,
    /// As `Reserved`, but the command names lsn 3 (a `create_resource`) with no watermark.
    NonLeaseLsnAboveWatermark,
    /// As `Reserved`, but the command names lsn 1000, never applied.
    NeverIssued,
    /// As `Reserved`, but the command names L's lsn on shard 1.
    WrongShard,
    /// As `Reserved`, but the command names lsn 0.
    LsnZero,
}

#[derive(Clone, Copy, Debug)]
enum Holder {
    Own,
    Other,
}

/// The epoch the command carries, relative to the lease's current epoch.
#[derive(Clone, Copy, Debug)]
enum Epoch {
    Current,
    Lower,
    Higher,
}

/// The deadline an `expire` carries, relative to L's deadline.
#[derive(Clone, Copy, Debug)]
enum Deadline {
    Own,
    Earlier,
    Later,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Activate(Holder, Epoch),
    Release(Holder, Epoch),
    Revoke,
    Reclaim,
    Expire(Deadline),
}

/// The command's request slot.
#[derive(Clone, Copy, Debug)]
enum At {
    /// The setup's "now", before L's deadline for live setups.
    Now,
    /// Exactly L's deadline (30).
    Deadline,
    /// After L's deadline (35), with no expire applied.
    AfterDeadline,
}

/// One row: setup, command, request slot → result, a read of the lease the command named
/// after it, and the state and version of L's members (resources 1 and 2) after it.
#[derive(Clone, Copy)]
struct LeaseRow(Setup, Action, At, R, LeaseSeen, (RS, u64));

const fn found(state: L, lease_epoch: u64) -> LeaseSeen {
    LeaseSeen::Found { state, lease_epoch }
}

const RETIRED: LeaseSeen = LeaseSeen::Retired;
const NOT_FOUND: LeaseSeen = LeaseSeen::NotFound;

use Action::{Activate, Expire, Reclaim, Release, Revoke};
use Epoch::{Current, Higher, Lower};
use Holder::{Other, Own};
use Setup as S;

#[rustfmt::skip]
const LEASE_ROWS: &[LeaseRow] = &[
    // setup, command, request slot → result, lease after, members after
    // Reserved (epoch 1, members reserved v2).
    LeaseRow(S::Reserved, Activate(Own, Current), At::Now, R::Ok, found(L::Active, 1), (RS::Active, 3)),
    LeaseRow(S::Reserved, Activate(Other, Current), At::Now, R::HolderMismatch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Activate(Own, Higher), At::Now, R::StaleEpoch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Activate(Own, Lower), At::Now, R::StaleEpoch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Activate(Other, Higher), At::Now, R::HolderMismatch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Activate(Own, Current), At::Deadline, R::InvalidState, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Activate(Own, Current), At::AfterDeadline, R::InvalidState, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Activate(Other, Current), At::Deadline, R::HolderMismatch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Activate(Own, Higher), At::Deadline, R::StaleEpoch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Release(Own, Current), At::Now, R::Ok, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Reserved, Release(Own, Current), At::Deadline, R::Ok, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Reserved, Release(Own, Current), At::AfterDeadline, R::Ok, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Reserved, Release(Other, Current), At::Now, R::HolderMismatch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Release(Own, Higher), At::Now, R::StaleEpoch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Release(Own, Lower), At::Now, R::StaleEpoch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Release(Other, Lower), At::Now, R::HolderMismatch, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Revoke, At::Now, R::InvalidState, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Reclaim, At::Now, R::InvalidState, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Expire(Deadline::Own), At::Deadline, R::Ok, found(L::Expired, 2), (RS::Available, 3)),
    LeaseRow(S::Reserved, Expire(Deadline::Own), At::AfterDeadline, R::Ok, found(L::Expired, 2), (RS::Available, 3)),
    LeaseRow(S::Reserved, Expire(Deadline::Own), At::Now, R::Noop, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Expire(Deadline::Later), At::AfterDeadline, R::Noop, found(L::Reserved, 1), (RS::Reserved, 2)),
    LeaseRow(S::Reserved, Expire(Deadline::Earlier), At::Deadline, R::Noop, found(L::Reserved, 1), (RS::Reserved, 2)),
    // Active (epoch 1, members active v3). No deadline any more.
    LeaseRow(S::Active, Activate(Own, Current), At::Now, R::InvalidState, found(L::Active, 1), (RS::Active, 3)),
    LeaseRow(S::Active, Activate(Other, Current), At::Now, R::HolderMismatch, found(L::Active, 1), (RS::Active, 3)),
    LeaseRow(S::Active, Activate(Own, Higher), At::Now, R::StaleEpoch, found(L::Active, 1), (RS::Active, 3)),
    LeaseRow(S::Active, Release(Own, Current), At::Now, R::Ok, found(L::Released, 2), (RS::Available, 4)),
    LeaseRow(S::Active, Release(Own, Current), At::AfterDeadline, R::Ok, found(L::Released, 2), (RS::Available, 4)),
    LeaseRow(S::Active, Release(Other, Current), At::Now, R::HolderMismatch, found(L::Active, 1), (RS::Active, 3)),
    LeaseRow(S::Active, Release(Own, Lower), At::Now, R::StaleEpoch, found(L::Active, 1), (RS::Active, 3)),
    LeaseRow(S::Active, Revoke, At::Now, R::Ok, found(L::Revoking, 2), (RS::Revoking, 4)),
    LeaseRow(S::Active, Revoke, At::AfterDeadline, R::Ok, found(L::Revoking, 2), (RS::Revoking, 4)),
    LeaseRow(S::Active, Reclaim, At::Now, R::InvalidState, found(L::Active, 1), (RS::Active, 3)),
    LeaseRow(S::Active, Expire(Deadline::Own), At::AfterDeadline, R::Noop, found(L::Active, 1), (RS::Active, 3)),
    // Revoking (epoch 2, members revoking v4): the holder's epoch 1 is fenced.
    LeaseRow(S::Revoking, Activate(Own, Current), At::Now, R::InvalidState, found(L::Revoking, 2), (RS::Revoking, 4)),
    LeaseRow(S::Revoking, Activate(Own, Lower), At::Now, R::StaleEpoch, found(L::Revoking, 2), (RS::Revoking, 4)),
    LeaseRow(S::Revoking, Release(Own, Current), At::Now, R::InvalidState, found(L::Revoking, 2), (RS::Revoking, 4)),
    LeaseRow(S::Revoking, Release(Own, Lower), At::Now, R::StaleEpoch, found(L::Revoking, 2), (RS::Revoking, 4)),
    LeaseRow(S::Revoking, Release(Other, Lower), At::Now, R::HolderMismatch, found(L::Revoking, 2), (RS::Revoking, 4)),
    LeaseRow(S::Revoking, Revoke, At::Now, R::InvalidState, found(L::Revoking, 2), (RS::Revoking, 4)),
    LeaseRow(S::Revoking, Reclaim, At::Now, R::Ok, found(L::Revoked, 2), (RS::Available, 5)),
    LeaseRow(S::Revoking, Reclaim, At::AfterDeadline, R::Ok, found(L::Revoked, 2), (RS::Available, 5)),
    LeaseRow(S::Revoking, Expire(Deadline::Own), At::AfterDeadline, R::Noop, found(L::Revoking, 2), (RS::Revoking, 4)),
    // Released (epoch 2, members available v3).
    LeaseRow(S::Released, Activate(Own, Current), At::Now, R::InvalidState, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Released, Activate(Own, Lower), At::Now, R::StaleEpoch, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Released, Release(Own, Current), At::Now, R::InvalidState, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Released, Release(Own, Lower), At::Now, R::StaleEpoch, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Released, Release(Own, Higher), At::Now, R::StaleEpoch, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Released, Release(Other, Current), At::Now, R::HolderMismatch, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Released, Release(Other, Lower), At::Now, R::HolderMismatch, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Released, Revoke, At::Now, R::InvalidState, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Released, Reclaim, At::Now, R::InvalidState, found(L::Released, 2), (RS::Available, 3)),
    LeaseRow(S::Released, Expire(Deadline::Own), At::Deadline, R::Noop, found(L::Released, 2), (RS::Available, 3)),
    // Expired (epoch 2, members available v3).
    LeaseRow(S::Expired, Activate(Own, Current), At::Now, R::InvalidState, found(L::Expired, 2), (RS::Available, 3)),
    LeaseRow(S::Expired, Activate(Own, Lower), At::Now, R::StaleEpoch, found(L::Expired, 2), (RS::Available, 3)),
    LeaseRow(S::Expired, Release(Own, Current), At::Now, R::InvalidState, found(L::Expired, 2), (RS::Available, 3)),
    LeaseRow(S::Expired, Release(Own, Lower), At::Now, R::StaleEpoch, found(L::Expired, 2), (RS::Available, 3)),
    LeaseRow(S::Expired, Release(Other, Current), At::Now, R::HolderMismatch, found(L::Expired, 2), (RS::Available, 3)),
    LeaseRow(S::Expired, Revoke, At::Now, R::InvalidState, found(L::Expired, 2), (RS::Available, 3)),
    LeaseRow(S::Expired, Reclaim, At::Now, R::InvalidState, found(L::Expired, 2), (RS::Available, 3)),
    LeaseRow(S::Expired, Expire(Deadline::Own), At::Now, R::Noop, found(L::Expired, 2), (RS::Available, 3)),
    // Revoked (epoch 2, members available v5).
    LeaseRow(S::Revoked, Activate(Own, Current), At::Now, R::InvalidState, found(L::Revoked, 2), (RS::Available, 5)),
    LeaseRow(S::Revoked, Release(Own, Current), At::Now, R::InvalidState, found(L::Revoked, 2), (RS::Available, 5)),
    LeaseRow(S::Revoked, Release(Own, Lower), At::Now, R::StaleEpoch, found(L::Revoked, 2), (RS::Available, 5)),
    LeaseRow(S::Revoked, Release(Other, Current), At::Now, R::HolderMismatch, found(L::Revoked, 2), (RS::Available, 5)),
    LeaseRow(S::Revoked, Revoke, At::Now, R::InvalidState, found(L::Revoked, 2), (RS::Available, 5)),
    LeaseRow(S::Revoked, Reclaim, At::Now, R::InvalidState, found(L::Revoked, 2), (RS::Available, 5)),
    LeaseRow(S::Revoked, Expire(Deadline::Own), At::Deadline, R::Noop, found(L::Revoked, 2), (RS::Available, 5)),
    // Retired, still stored: lookup decides before holder, epoch or state.
    LeaseRow(S::RetiredStored, Activate(Own, Current), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredStored, Activate(Other, Lower), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredStored, Release(Own, Current), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredStored, Release(Other, Higher), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredStored, Revoke, At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredStored, Reclaim, At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredStored, Expire(Deadline::Own), At::Now, R::Noop, RETIRED, (RS::Available, 3)),
    // Retired and dropped: the watermark answers.
    LeaseRow(S::RetiredDropped, Activate(Own, Current), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredDropped, Activate(Other, Lower), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredDropped, Release(Own, Current), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredDropped, Release(Other, Higher), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredDropped, Revoke, At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredDropped, Reclaim, At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::RetiredDropped, Expire(Deadline::Own), At::Now, R::Noop, RETIRED, (RS::Available, 3)),
    // An lsn that never was a lease reads retired at or below the watermark (conservatively)...
    LeaseRow(S::NonLeaseLsnBelowWatermark, Activate(Own, Current), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::NonLeaseLsnBelowWatermark, Release(Own, Current), At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::NonLeaseLsnBelowWatermark, Revoke, At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::NonLeaseLsnBelowWatermark, Reclaim, At::Now, R::LeaseRetired, RETIRED, (RS::Available, 3)),
    LeaseRow(S::NonLeaseLsnBelowWatermark, Expire(Deadline::Own), At::Now, R::Noop, RETIRED, (RS::Available, 3)),
    // ...and not found above it. L itself is untouched by commands naming other ids.
    LeaseRow(S::NonLeaseLsnAboveWatermark, Activate(Own, Current), At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::NonLeaseLsnAboveWatermark, Release(Own, Current), At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::NonLeaseLsnAboveWatermark, Revoke, At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::NonLeaseLsnAboveWatermark, Reclaim, At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::NonLeaseLsnAboveWatermark, Expire(Deadline::Own), At::Deadline, R::Noop, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::NeverIssued, Activate(Other, Higher), At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::NeverIssued, Release(Own, Current), At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::NeverIssued, Revoke, At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::NeverIssued, Reclaim, At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::NeverIssued, Expire(Deadline::Own), At::Deadline, R::Noop, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::WrongShard, Activate(Own, Current), At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::WrongShard, Release(Own, Current), At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::WrongShard, Revoke, At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::WrongShard, Reclaim, At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::WrongShard, Expire(Deadline::Own), At::Deadline, R::Noop, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::LsnZero, Activate(Own, Current), At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::LsnZero, Release(Other, Lower), At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::LsnZero, Revoke, At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::LsnZero, Reclaim, At::Now, R::LeaseNotFound, NOT_FOUND, (RS::Reserved, 2)),
    LeaseRow(S::LsnZero, Expire(Deadline::Own), At::Deadline, R::Noop, NOT_FOUND, (RS::Reserved, 2)),
];

struct LeaseFixture {
    driver: Driver,
    /// The lease every setup creates (lsn 6).
    lease: LeaseId,
    /// The lease id the command names.
    target: LeaseId,
    /// The target's current epoch ("current" in the table).
    lease_epoch: u64,
}

fn lease_fixture(setup: Setup) -> LeaseFixture {
    let mut driver = Driver::new(config());
    driver.at(1).create_all(1..=5);
    let lease = driver.at(10).reserve(&[1, 2], HOLDER, 20);
    assert_eq!(lease, LeaseId::new(0, LEASE_LSN));
    let mut target = lease;
    let mut lease_epoch = 1;
    match setup {
        S::Reserved => {
            driver.at(12);
        }
        S::Active => {
            driver.at(11).activate(lease, HOLDER, 1);
            driver.at(12);
        }
        S::Revoking => {
            driver.at(11).activate(lease, HOLDER, 1);
            driver.at(12).revoke(lease);
            driver.at(13);
            lease_epoch = 2;
        }
        S::Released => {
            driver.at(11).release(lease, HOLDER, 1);
            driver.at(12);
            lease_epoch = 2;
        }
        S::Expired => {
            driver.at(DEADLINE).expire(lease, DEADLINE);
            driver.at(31);
            lease_epoch = 2;
        }
        S::Revoked => {
            driver.at(11).activate(lease, HOLDER, 1);
            driver.at(12).revoke(lease);
            driver.at(13).reclaim(lease);
            driver.at(14);
            lease_epoch = 2;
        }
        S::RetiredStored => {
            let first = driver.at(10).reserve(&[3], OTHER, 20);
            let second = driver.reserve(&[4], OTHER, 20);
            driver.at(11).release(first, OTHER, 1);
            driver.release(second, OTHER, 1);
            driver.release(lease, HOLDER, 1);
            driver.at(40);
            lease_epoch = 2;
        }
        S::RetiredDropped | S::NonLeaseLsnBelowWatermark => {
            driver.at(11).release(lease, HOLDER, 1);
            driver.at(40).apply_noop();
            assert_eq!(driver.kernel.retired_watermark(), LEASE_LSN);
            driver.at(41);
            lease_epoch = 2;
            if setup == S::NonLeaseLsnBelowWatermark {
                target = LeaseId::new(0, 3);
                lease_epoch = 1;
            }
        }
        S::NonLeaseLsnAboveWatermark => {
            driver.at(12);
            target = LeaseId::new(0, 3);
        }
        S::NeverIssued => {
            driver.at(12);
            target = LeaseId::new(0, 1000);
        }
        S::WrongShard => {
            driver.at(12);
            target = LeaseId::new(1, LEASE_LSN);
        }
        S::LsnZero => {
            driver.at(12);
            target = LeaseId::new(0, 0);
        }
    }
    LeaseFixture { driver, lease, target, lease_epoch }
}

fn lease_command(fixture: &LeaseFixture, action: Action) -> Command<'static> {
    let holder_id = |holder| HolderId(if matches!(holder, Holder::Own) { HOLDER } else { OTHER });
    let lease_epoch = |epoch| match epoch {
        Current => fixture.lease_epoch,
        Lower => fixture.lease_epoch - 1,
        Higher => fixture.lease_epoch + 1,
    };
    let lease_id = fixture.target;
    match action {
        Activate(holder, epoch) => {
            Command::Activate { lease_id, holder_id: holder_id(holder), lease_epoch: lease_epoch(epoch) }
        }
        Release(holder, epoch) => {
            Command::Release { lease_id, holder_id: holder_id(holder), lease_epoch: lease_epoch(epoch) }
        }
        Revoke => Command::Revoke { lease_id },
        Reclaim => Command::Reclaim { lease_id },
        Expire(deadline) => {
            let deadline_slot = match deadline {
                Deadline::Own => DEADLINE,
                Deadline::Earlier => DEADLINE - 1,
                Deadline::Later => DEADLINE + 1,
            };
            Command::Expire { lease_id, deadline_slot }
        }
    }
}

fn check_lease_row(index: usize, LeaseRow(setup, action, at, result, lease, members): LeaseRow) {
    let context = format!("lease row {index}: {setup:?} {action:?} at {at:?} → {result}");
    let mut subject = lease_fixture(setup);
    let mut twin = lease_fixture(setup);
    let slot = match at {
        At::Now => subject.driver.slot(),
        At::Deadline => DEADLINE,
        At::AfterDeadline => DEADLINE + 5,
    };
    let command = lease_command(&subject, action);
    let lsn = subject.driver.kernel.last_applied_lsn() + 1;
    let outcome = subject.driver.at(slot).apply(command);
    twin.driver.at(slot).apply_noop();

    // A successful lease command names the lease and its new epoch; a failure names nothing.
    let ok = result == R::Ok;
    let lease_epoch = match lease {
        LeaseSeen::Found { lease_epoch, .. } if ok => Some(lease_epoch),
        _ => None,
    };
    assert_eq!(
        (outcome.result, outcome.applied_lsn, outcome.from_retry_cache, outcome.deadline_slot),
        (result, lsn, false, None),
        "{context}"
    );
    assert_eq!(
        (outcome.lease_id, outcome.lease_epoch),
        (ok.then_some(subject.target), lease_epoch),
        "{context}"
    );
    let unchanged = subject.driver.kernel.state_digest() == twin.driver.kernel.state_digest();
    assert_eq!(unchanged, !ok, "{context}: state must change exactly when the command succeeds");

    let driver = &subject.driver;
    assert_eq!(driver.lease(subject.target), lease, "{context}");
    for member in [1, 2] {
        assert_eq!(driver.resource(member), members, "{context}: resource {member}");
        let current_lease_id = driver.kernel.resource(ResourceId(member)).unwrap().current_lease_id;
        let holds = members.0 != RS::Available;
        assert_eq!(current_lease_id, holds.then_some(subject.lease), "{context}: resource {member}");
    }
    match setup {
        // Lazy maintenance dropped the two leases that ended first; L itself is still stored.
        S::RetiredStored => assert_eq!(driver.kernel.usage().leases.used, 1, "{context}"),
        S::RetiredDropped | S::NonLeaseLsnBelowWatermark => {
            assert_eq!(driver.kernel.usage().leases.used, 0, "{context}");
        }
        _ => {}
    }
}

#[test]
fn lease_commands_from_every_state_return_the_documented_code_and_state() {
    for (index, row) in LEASE_ROWS.iter().enumerate() {
        check_lease_row(index, *row);
    }
}

#[test]
fn terminal_lease_reads_show_deadline_only_if_expired_and_when_they_retire() {
    let history = config().history_window_slots;
    // (setup, deadline shown, lsn of the terminal transition, slot it became terminal)
    let cases = [
        (S::Released, None, LEASE_LSN + 1, 11),
        (S::Expired, Some(DEADLINE), LEASE_LSN + 1, DEADLINE),
        (S::Revoked, None, LEASE_LSN + 3, 13),
    ];
    for (setup, deadline_slot, released_lsn, terminal_slot) in cases {
        let fixture = lease_fixture(setup);
        let LeaseLookup::Found(view) = fixture.driver.kernel.lease(fixture.lease) else {
            panic!("{setup:?}")
        };
        assert_eq!((view.holder_id, view.created_lsn), (HolderId(HOLDER), LEASE_LSN), "{setup:?}");
        assert_eq!(view.deadline_slot, deadline_slot, "{setup:?}");
        assert_eq!(view.released_lsn, Some(released_lsn), "{setup:?}");
        assert_eq!(view.retire_after_slot, Some(terminal_slot + history), "{setup:?}");
        assert_eq!(view.resource_ids().collect::<Vec<_>>(), resource_ids(&[1, 2]), "{setup:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Reserve and create_resource.
// ---------------------------------------------------------------------------------------------

/// Every resource setup starts from the standard one at slot 1..10 and runs its reserves at
/// slot 20, where a TTL of 10 gives deadline 30 (wheel bucket 3 of 16 buckets of 8 slots).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    /// Resources 1..=9; 5 is reserved, 6 active, 7 revoking (each held by holder OTHER);
    /// the others are available. 3 leases, 3 members.
    Standard,
    /// Standard plus five reserved leases on 8..=12: 8 of 8 leases, 8 of 12 members.
    LeaseTableFull,
    /// Standard plus leases on 8..=11, 12..=15 and 16: 6 of 8 leases, 12 of 12 members.
    MemberTableFull,
    /// Standard plus three reserved leases due in bucket 3 (slots 24, 28, 31): bucket full.
    BucketFull,
    /// Leases (8 of 8), members (12 of 12), bucket 3 (3 of 3) and resources (16 of 16) full.
    EveryTableFull,
    /// Members (12 of 12) and bucket 3 full, 7 of 8 leases.
    MemberAndBucketFull,
}

fn pool(setup: Pool) -> Driver {
    let mut driver = Driver::new(config());
    driver.at(1).create_all(1..=9);
    driver.at(10);
    driver.reserve(&[5], OTHER, 50);
    let active = driver.reserve(&[6], OTHER, 50);
    driver.activate(active, OTHER, 1);
    let revoking = driver.reserve(&[7], OTHER, 50);
    driver.activate(revoking, OTHER, 1);
    driver.revoke(revoking);
    match setup {
        Pool::Standard => {}
        Pool::LeaseTableFull => {
            driver.create_all(10..=14);
            for (resource_id, ttl_slots) in [(8, 60), (9, 70), (10, 80), (11, 90), (12, 95)] {
                driver.reserve(&[resource_id], OTHER, ttl_slots);
            }
        }
        Pool::MemberTableFull => {
            driver.create_all(10..=16);
            driver.reserve(&[8, 9, 10, 11], OTHER, 60);
            driver.reserve(&[12, 13, 14, 15], OTHER, 70);
            driver.reserve(&[16], OTHER, 80);
        }
        Pool::BucketFull => {
            driver.create(10);
            for (resource_id, ttl_slots) in [(8, 14), (9, 18), (10, 21)] {
                driver.reserve(&[resource_id], OTHER, ttl_slots);
            }
        }
        Pool::EveryTableFull => {
            driver.create_all(10..=16);
            for (resource_id, ttl_slots) in [(8, 14), (9, 18), (10, 21)] {
                driver.reserve(&[resource_id], OTHER, ttl_slots);
            }
            driver.reserve(&[11, 12, 13], OTHER, 60);
            driver.reserve(&[14, 15, 16], OTHER, 70);
        }
        Pool::MemberAndBucketFull => {
            driver.create_all(10..=16);
            driver.reserve(&[8, 9], OTHER, 14);
            driver.reserve(&[10, 11], OTHER, 18);
            driver.reserve(&[12, 13], OTHER, 21);
            driver.reserve(&[14, 15, 16], OTHER, 60);
        }
    }
    driver.at(20);
    driver
}

#[test]
fn resource_pools_fill_exactly_the_tables_they_claim() {
    let used = |setup| {
        let usage = pool(setup).kernel.usage();
        (usage.resources.used, usage.leases.used, usage.lease_members.used)
    };
    assert_eq!(used(Pool::Standard), (9, 3, 3));
    assert_eq!(used(Pool::LeaseTableFull), (14, 8, 8));
    assert_eq!(used(Pool::MemberTableFull), (16, 6, 12));
    assert_eq!(used(Pool::BucketFull), (10, 6, 6));
    assert_eq!(used(Pool::EveryTableFull), (16, 8, 12));
    assert_eq!(used(Pool::MemberAndBucketFull), (16, 7, 12));
}

/// One row: pool, bundle, holder, TTL → result, and `(resource, state, version)` after.
#[derive(Clone, Copy)]
struct ReserveRow(Pool, &'static [u128], u128, u64, R, &'static [(u128, RS, u64)]);

const AVAILABLE: RS = RS::Available;
const RESERVED: RS = RS::Reserved;
const H: u128 = HOLDER;

#[rustfmt::skip]
const RESERVE_ROWS: &[ReserveRow] = &[
    // pool, bundle, holder, ttl → result, (resource, state, version) after
    ReserveRow(Pool::Standard, &[1], H, 10, R::Ok, &[(1, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[1, 2, 3], H, 10, R::Ok, &[(1, RESERVED, 2), (2, RESERVED, 2), (3, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[3, 1, 4, 2], H, 10, R::Ok, &[(1, RESERVED, 2), (2, RESERVED, 2), (3, RESERVED, 2), (4, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[1], H, 1, R::Ok, &[(1, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[1], H, 100, R::Ok, &[(1, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[], H, 10, R::EmptyBundle, &[]),
    ReserveRow(Pool::Standard, &[], H, 0, R::EmptyBundle, &[]),
    ReserveRow(Pool::Standard, &[1, 2, 3, 4, 8], H, 10, R::BundleTooLarge, &[(1, AVAILABLE, 1), (8, AVAILABLE, 1)]),
    ReserveRow(Pool::Standard, &[1, 2, 3, 4, 1], H, 0, R::BundleTooLarge, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::Standard, &[1], H, 0, R::TtlOutOfRange, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::Standard, &[1], H, 101, R::TtlOutOfRange, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::Standard, &[1], H, u64::MAX, R::TtlOutOfRange, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::Standard, &[1, 1], H, 0, R::TtlOutOfRange, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::Standard, &[99], H, 0, R::TtlOutOfRange, &[]),
    ReserveRow(Pool::Standard, &[1, 1], H, 10, R::DuplicateResource, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::Standard, &[1, 2, 1], H, 10, R::DuplicateResource, &[(1, AVAILABLE, 1), (2, AVAILABLE, 1)]),
    ReserveRow(Pool::Standard, &[99, 99], H, 10, R::DuplicateResource, &[]),
    ReserveRow(Pool::Standard, &[5, 5], H, 10, R::DuplicateResource, &[(5, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[99], H, 10, R::ResourceNotFound, &[]),
    ReserveRow(Pool::Standard, &[1, 99], H, 10, R::ResourceNotFound, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::Standard, &[99, 5], H, 10, R::ResourceNotFound, &[(5, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[5, 99], H, 10, R::ResourceBusy, &[(5, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[5], H, 10, R::ResourceBusy, &[(5, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[5], OTHER, 10, R::ResourceBusy, &[(5, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[6], H, 10, R::ResourceBusy, &[(6, RS::Active, 3)]),
    ReserveRow(Pool::Standard, &[7], H, 10, R::ResourceBusy, &[(7, RS::Revoking, 4)]),
    ReserveRow(Pool::Standard, &[1, 5, 2], H, 10, R::ResourceBusy, &[(1, AVAILABLE, 1), (2, AVAILABLE, 1), (5, RESERVED, 2)]),
    ReserveRow(Pool::Standard, &[1, 2, 6], H, 10, R::ResourceBusy, &[(1, AVAILABLE, 1), (2, AVAILABLE, 1), (6, RS::Active, 3)]),
    ReserveRow(Pool::Standard, &[7, 1], H, 10, R::ResourceBusy, &[(1, AVAILABLE, 1), (7, RS::Revoking, 4)]),
    ReserveRow(Pool::LeaseTableFull, &[1], H, 10, R::LeaseTableFull, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::LeaseTableFull, &[1, 2, 3, 4], H, 10, R::LeaseTableFull, &[(1, AVAILABLE, 1), (4, AVAILABLE, 1)]),
    ReserveRow(Pool::LeaseTableFull, &[1, 5], H, 10, R::ResourceBusy, &[(1, AVAILABLE, 1), (5, RESERVED, 2)]),
    ReserveRow(Pool::LeaseTableFull, &[1, 99], H, 10, R::ResourceNotFound, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::LeaseTableFull, &[1, 1], H, 10, R::DuplicateResource, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::LeaseTableFull, &[1], H, 0, R::TtlOutOfRange, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::LeaseTableFull, &[1, 2, 3, 4, 13], H, 10, R::BundleTooLarge, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::MemberTableFull, &[1], H, 10, R::LeaseMemberTableFull, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::MemberTableFull, &[1, 5], H, 10, R::ResourceBusy, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::BucketFull, &[1], H, 10, R::ExpirationIndexFull, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::BucketFull, &[1, 2], H, 4, R::ExpirationIndexFull, &[(1, AVAILABLE, 1), (2, AVAILABLE, 1)]),
    ReserveRow(Pool::BucketFull, &[1], H, 11, R::ExpirationIndexFull, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::BucketFull, &[1], H, 12, R::Ok, &[(1, RESERVED, 2)]),
    ReserveRow(Pool::BucketFull, &[1], H, 3, R::Ok, &[(1, RESERVED, 2)]),
    ReserveRow(Pool::BucketFull, &[5], H, 10, R::ResourceBusy, &[(5, RESERVED, 2)]),
    ReserveRow(Pool::EveryTableFull, &[1], H, 10, R::LeaseTableFull, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::EveryTableFull, &[1, 6], H, 10, R::ResourceBusy, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::EveryTableFull, &[1, 20], H, 10, R::ResourceNotFound, &[(1, AVAILABLE, 1)]),
    ReserveRow(Pool::MemberAndBucketFull, &[1], H, 10, R::LeaseMemberTableFull, &[(1, AVAILABLE, 1)]),
];

fn check_reserve_row(
    index: usize,
    ReserveRow(pool_setup, ids, holder, ttl_slots, result, after): ReserveRow,
) {
    let context = format!(
        "reserve row {index}: {pool_setup:?} reserve({ids:?}, holder {holder}, ttl {ttl_slots}) → {result}"
    );
    let bundle = resource_ids(ids);
    let command = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(holder), ttl_slots };
    let mut subject = pool(pool_setup);
    let mut twin = pool(pool_setup);
    let lsn = subject.kernel.last_applied_lsn() + 1;
    let outcome = subject.apply(command);
    twin.apply_noop();

    assert_eq!(
        (outcome.result, outcome.applied_lsn, outcome.from_retry_cache),
        (result, lsn, false),
        "{context}"
    );
    for &(resource_id, state, version) in after {
        assert_eq!(subject.resource(resource_id), (state, version), "{context}: resource {resource_id}");
    }
    if result == R::Ok {
        let lease_id = LeaseId::new(0, lsn);
        let deadline_slot = subject.slot() + ttl_slots;
        let expected = (Some(lease_id), Some(1), Some(deadline_slot));
        assert_eq!((outcome.lease_id, outcome.lease_epoch, outcome.deadline_slot), expected, "{context}");
        let LeaseLookup::Found(view) = subject.kernel.lease(lease_id) else {
            panic!("{context}: lease missing")
        };
        assert_eq!(
            (view.state, view.lease_epoch, view.holder_id, view.created_lsn, view.deadline_slot),
            (L::Reserved, 1, HolderId(holder), lsn, Some(deadline_slot)),
            "{context}"
        );
        assert_eq!((view.released_lsn, view.retire_after_slot), (None, None), "{context}");
        assert_eq!(view.resource_ids().collect::<Vec<_>>(), bundle, "{context}: members in bundle order");
        for resource_id in &bundle {
            let resource = subject.kernel.resource(*resource_id).unwrap();
            assert_eq!(resource.current_lease_id, Some(lease_id), "{context}");
        }
        assert_eq!(subject.kernel.usage().leases.used, twin.kernel.usage().leases.used + 1, "{context}");
    } else {
        assert_eq!(
            (outcome.lease_id, outcome.lease_epoch, outcome.deadline_slot),
            (None, None, None),
            "{context}"
        );
        assert_eq!(
            subject.kernel.state_digest(),
            twin.kernel.state_digest(),
            "{context}: a refused reserve changed state"
        );
    }
    // Resources outside the bundle are untouched either way.
    for resource_id in 1..=20 {
        if ids.contains(&resource_id) {
            continue;
        }
        let resource_id = ResourceId(resource_id);
        assert_eq!(subject.kernel.resource(resource_id), twin.kernel.resource(resource_id), "{context}");
    }
}

#[test]
fn reserve_returns_the_documented_code_for_every_shape_and_state() {
    for (index, row) in RESERVE_ROWS.iter().enumerate() {
        check_reserve_row(index, *row);
    }
}

#[test]
fn reserve_with_one_busy_member_changes_nothing_for_the_others() {
    let bundle = resource_ids(&[1, 2, 5, 3]);
    let command = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(HOLDER), ttl_slots: 10 };
    let driver = assert_refused_without_effect(|| pool(Pool::Standard), None, command, R::ResourceBusy);
    for resource_id in [1, 2, 3] {
        assert_eq!(driver.resource(resource_id), (RS::Available, 1));
        assert_eq!(driver.kernel.resource(ResourceId(resource_id)).unwrap().current_lease_id, None);
    }
    assert_eq!(driver.kernel.usage().leases.used, 3);
    assert_eq!(driver.kernel.usage().lease_members.used, 3);
    assert_eq!(driver.kernel.reserved_lease_count(), 1);
}

/// One row: pool, resource → result, and the resource's state and version after (`None`: it
/// does not exist).
type CreateRow = (Pool, u128, R, Option<(RS, u64)>);

#[rustfmt::skip]
const CREATE_ROWS: &[CreateRow] = &[
    (Pool::Standard, 20, R::Ok, Some((RS::Available, 1))),
    (Pool::Standard, 1, R::AlreadyExists, Some((RS::Available, 1))),
    (Pool::Standard, 5, R::AlreadyExists, Some((RS::Reserved, 2))),
    (Pool::Standard, 7, R::AlreadyExists, Some((RS::Revoking, 4))),
    (Pool::Standard, u128::MAX, R::Ok, Some((RS::Available, 1))),
    (Pool::Standard, 0, R::Ok, Some((RS::Available, 1))),
    (Pool::EveryTableFull, 20, R::ResourceTableFull, None),
    (Pool::EveryTableFull, 1, R::AlreadyExists, Some((RS::Available, 1))),
    (Pool::EveryTableFull, 6, R::AlreadyExists, Some((RS::Active, 3))),
];

#[test]
fn create_resource_returns_the_documented_code_in_every_state() {
    for (index, &(setup, resource_id, result, after)) in CREATE_ROWS.iter().enumerate() {
        let context = format!("create row {index}: {setup:?} create({resource_id}) → {result}");
        let mut subject = pool(setup);
        let mut twin = pool(setup);
        let outcome = subject.apply(Command::CreateResource { resource_id: ResourceId(resource_id) });
        twin.apply_noop();
        let bare = (outcome.lease_id, outcome.lease_epoch, outcome.deadline_slot);
        assert_eq!((outcome.result, bare), (result, (None, None, None)), "{context}");
        let view = subject.kernel.resource(ResourceId(resource_id));
        assert_eq!(view.map(|view| (view.state, view.version)), after, "{context}");
        let created = u64::from(result == R::Ok);
        let used = |driver: &Driver| driver.kernel.usage().resources.used;
        assert_eq!(used(&subject), used(&twin) + created, "{context}");
        let unchanged = subject.kernel.state_digest() == twin.kernel.state_digest();
        assert_eq!(unchanged, result != R::Ok, "{context}");
    }
}

// ---------------------------------------------------------------------------------------------
// Expire and reuse after a lease ends.
// ---------------------------------------------------------------------------------------------

#[test]
fn duplicate_expire_is_a_noop_that_changes_nothing() {
    let setup = || {
        let mut driver = lease_fixture(S::Reserved).driver;
        driver.at(DEADLINE).expire(LeaseId::new(0, LEASE_LSN), DEADLINE);
        driver
    };
    let command = Command::Expire { lease_id: LeaseId::new(0, LEASE_LSN), deadline_slot: DEADLINE };
    let driver = assert_refused_without_effect(setup, None, command, R::Noop);
    assert_eq!(driver.lease(LeaseId::new(0, LEASE_LSN)), found(L::Expired, 2));
}

#[test]
fn expire_of_lease_reserved_again_after_release_does_not_touch_the_new_lease() {
    // L is released, its resources reserved by a new lease M with a different deadline; a late
    // expire naming L's id and old deadline must not free M's resources.
    let mut fixture = lease_fixture(S::Released);
    let new_lease = fixture.driver.at(12).reserve(&[1, 2], OTHER, 18);
    let outcome = fixture
        .driver
        .at(DEADLINE)
        .apply(Command::Expire { lease_id: fixture.lease, deadline_slot: DEADLINE });
    assert_eq!(outcome.result, R::Noop);
    assert_eq!(fixture.driver.lease(new_lease), found(L::Reserved, 1));
    assert_eq!(fixture.driver.resource(1), (RS::Reserved, 4));
}

#[test]
fn new_lease_on_reused_resources_starts_at_epoch_one_while_versions_keep_counting() {
    // After reserve, activate, revoke and reclaim (versions 2 to 5), a new lease starts over.
    let mut driver = lease_fixture(S::Revoked).driver;
    let second = driver.reserve(&[2, 1], OTHER, 50);
    assert_eq!(driver.lease(second), found(L::Reserved, 1));
    assert_eq!(driver.resource(1), (RS::Reserved, 6));
    assert_eq!(driver.lease(LeaseId::new(0, LEASE_LSN)), found(L::Revoked, 2));
}

// ---------------------------------------------------------------------------------------------
// Dedupe: the operation table.
// ---------------------------------------------------------------------------------------------

const CLIENT: u128 = 1;

/// Standard pool plus a keyed reserve of resource 1 (operation 100) at lsn `RESERVE_LSN`.
fn keyed_setup() -> Driver {
    let mut driver = pool(Pool::Standard);
    let bundle = resource_ids(&[1]);
    let outcome = driver.apply_keyed(
        key(CLIENT, 100),
        Command::Reserve { resource_ids: &bundle, holder_id: HolderId(HOLDER), ttl_slots: 10 },
    );
    assert_eq!(outcome.result, R::Ok);
    assert_eq!(outcome.applied_lsn, RESERVE_LSN);
    driver
}

const RESERVE_LSN: u64 = 16;

#[test]
fn retry_returns_original_outcome_from_cache_and_changes_nothing() {
    let bundle = resource_ids(&[1]);
    let command = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(HOLDER), ttl_slots: 10 };
    let setup = || {
        let mut driver = keyed_setup();
        driver.at(25).create(40);
        driver
    };
    let mut subject = setup();
    let mut twin = setup();
    // The read-only lookup the engine uses to answer retries without logging them.
    let checked = subject.kernel.check_retry(key(CLIENT, 100), &command, 25);
    let retry = subject.apply_keyed(key(CLIENT, 100), command);
    twin.apply_noop();
    assert!(retry.from_retry_cache);
    assert_eq!(retry.result, R::Ok);
    assert_eq!(retry.applied_lsn, RESERVE_LSN, "the original lsn, not the retry's");
    assert_eq!(retry.lease_id, Some(LeaseId::new(0, RESERVE_LSN)));
    assert_eq!(retry.lease_epoch, Some(1));
    assert_eq!(retry.deadline_slot, Some(30));
    assert_eq!(checked, Some(retry));
    assert_eq!(subject.kernel.state_digest(), twin.kernel.state_digest(), "a retry executed again");
    assert_eq!(subject.kernel.usage().leases.used, 4, "no second lease");
}

#[test]
fn retry_of_a_refused_command_returns_the_refusal_even_after_the_state_changed() {
    let mut driver = pool(Pool::Standard);
    let bundle = resource_ids(&[5]);
    let command = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(HOLDER), ttl_slots: 10 };
    let refused = driver.apply_keyed(key(CLIENT, 200), command);
    assert_eq!(refused.result, R::ResourceBusy);
    driver.release(LeaseId::new(0, 10), OTHER, 1);
    assert_eq!(driver.resource(5), (RS::Available, 3));
    let retry = driver.apply_keyed(key(CLIENT, 200), command);
    assert_eq!(retry.result, R::ResourceBusy);
    assert!(retry.from_retry_cache);
    assert_eq!(retry.applied_lsn, refused.applied_lsn);
    assert_eq!(driver.resource(5), (RS::Available, 3), "the retry did not execute");
}

#[test]
fn different_command_with_the_same_key_is_operation_conflict_and_changes_nothing() {
    let same_bundle_other_order = resource_ids(&[2, 1]);
    let bundle = resource_ids(&[1, 2]);
    let setup = || {
        let mut driver = pool(Pool::Standard);
        let reserve = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(HOLDER), ttl_slots: 10 };
        assert_eq!(driver.apply_keyed(key(CLIENT, 300), reserve).result, R::Ok);
        driver.at(21);
        driver
    };
    let conflicting: [Command<'_>; 5] = [
        Command::CreateResource { resource_id: ResourceId(30) },
        Command::Reserve {
            resource_ids: &same_bundle_other_order,
            holder_id: HolderId(HOLDER),
            ttl_slots: 10,
        },
        Command::Reserve { resource_ids: &bundle, holder_id: HolderId(OTHER), ttl_slots: 10 },
        Command::Reserve { resource_ids: &bundle, holder_id: HolderId(HOLDER), ttl_slots: 11 },
        Command::Release { lease_id: LeaseId::new(0, 10), holder_id: HolderId(OTHER), lease_epoch: 1 },
    ];
    for command in conflicting {
        let mut driver =
            assert_refused_without_effect(setup, Some(key(CLIENT, 300)), command, R::OperationConflict);
        // The conflict was not recorded: the original command still retries from the cache.
        let original = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(HOLDER), ttl_slots: 10 };
        let retry = driver.apply_keyed(key(CLIENT, 300), original);
        assert!(retry.from_retry_cache, "{command:?}");
        assert_eq!(retry.result, R::Ok);
    }
}

#[test]
fn retry_at_the_end_of_the_dedupe_window_executes_afresh() {
    let window = config().dedupe_window_slots;
    let create = Command::CreateResource { resource_id: ResourceId(30) };
    let mut driver = pool(Pool::Standard);
    let first = driver.apply_keyed(key(CLIENT, 400), create);
    assert_eq!(first.result, R::Ok);
    let last_cached = driver.at(20 + window - 1).apply_keyed(key(CLIENT, 400), create);
    assert!(last_cached.from_retry_cache);
    assert_eq!((last_cached.result, last_cached.applied_lsn), (R::Ok, first.applied_lsn));

    let fresh_lsn = driver.kernel.last_applied_lsn() + 1;
    let fresh = driver.at(20 + window).apply_keyed(key(CLIENT, 400), create);
    assert!(!fresh.from_retry_cache);
    assert_eq!((fresh.result, fresh.applied_lsn), (R::AlreadyExists, fresh_lsn));
    // The fresh execution is what later retries see.
    let retry = driver.apply_keyed(key(CLIENT, 400), create);
    assert!(retry.from_retry_cache);
    assert_eq!((retry.result, retry.applied_lsn), (R::AlreadyExists, fresh_lsn));
}

#[test]
fn expired_record_not_yet_dropped_no_longer_answers_retries() {
    // Five records expire at once; maintenance drops two per command, so the fifth is still
    // stored when its key is reused, and must not answer.
    let window = config().dedupe_window_slots;
    let mut driver = pool(Pool::Standard);
    for operation_id in 1..=5 {
        let create = Command::CreateResource { resource_id: ResourceId(30 + operation_id) };
        assert_eq!(driver.apply_keyed(key(CLIENT, operation_id), create).result, R::Ok);
    }
    assert_eq!(driver.kernel.usage().operations.used, 5);
    let reused = Command::CreateResource { resource_id: ResourceId(35) };
    let fresh = driver.at(20 + window).apply_keyed(key(CLIENT, 5), reused);
    assert!(!fresh.from_retry_cache);
    assert_eq!(fresh.result, R::AlreadyExists);
    // Maintenance dropped records 1 and 2; 3, 4, the stale 5 and the fresh one remain.
    assert_eq!(driver.kernel.usage().operations.used, 4);
}

#[test]
fn same_operation_id_under_another_client_is_independent() {
    let create = Command::CreateResource { resource_id: ResourceId(30) };
    let mut driver = pool(Pool::Standard);
    let first = driver.apply_keyed(key(CLIENT, 500), create);
    assert_eq!(first.result, R::Ok);
    // The same command under the same operation id from another client executes.
    let other_client = driver.apply_keyed(key(CLIENT + 1, 500), create);
    assert!(!other_client.from_retry_cache);
    assert_eq!(other_client.result, R::AlreadyExists);
    // A different command under that id from a third client is no conflict either.
    let bundle = resource_ids(&[30]);
    let reserve = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(HOLDER), ttl_slots: 10 };
    let third = driver.apply_keyed(key(CLIENT + 2, 500), reserve);
    assert_eq!(third.result, R::Ok);
    // Each client's retry gets its own original outcome.
    let retry_first = driver.apply_keyed(key(CLIENT, 500), create);
    let retry_other = driver.apply_keyed(key(CLIENT + 1, 500), create);
    assert_eq!((retry_first.result, retry_first.applied_lsn), (R::Ok, first.applied_lsn));
    assert_eq!((retry_other.result, retry_other.applied_lsn), (R::AlreadyExists, other_client.applied_lsn));
    assert!(retry_first.from_retry_cache && retry_other.from_retry_cache);
}

#[test]
fn unkeyed_commands_are_never_deduplicated() {
    let create = Command::CreateResource { resource_id: ResourceId(30) };
    let mut driver = pool(Pool::Standard);
    assert_eq!(driver.apply(create).result, R::Ok);
    let again = driver.apply(create);
    assert_eq!(again.result, R::AlreadyExists);
    assert!(!again.from_retry_cache);
    assert_eq!(driver.kernel.usage().operations.used, 0);
}

/// Standard pool plus 16 keyed creates: the operation table (16) is full.
fn full_operation_table() -> Driver {
    let mut driver = pool(Pool::Standard);
    for operation_id in 1..=16 {
        let create = Command::CreateResource { resource_id: ResourceId(100 + operation_id) };
        let outcome = driver.apply_keyed(key(CLIENT, operation_id), create);
        assert_eq!(outcome.result, if operation_id <= 7 { R::Ok } else { R::ResourceTableFull });
    }
    assert_eq!(driver.kernel.usage().operations.used, 16);
    driver.at(21);
    driver
}

#[test]
fn retry_is_still_answered_when_the_operation_table_is_full() {
    let mut driver = full_operation_table();
    let retry = driver.apply_keyed(key(CLIENT, 1), Command::CreateResource { resource_id: ResourceId(101) });
    assert!(retry.from_retry_cache);
    assert_eq!(retry.result, R::Ok);
    let refused_retry =
        driver.apply_keyed(key(CLIENT, 9), Command::CreateResource { resource_id: ResourceId(109) });
    assert!(refused_retry.from_retry_cache);
    assert_eq!(refused_retry.result, R::ResourceTableFull);
}

#[test]
fn conflict_is_reported_before_operation_table_full() {
    let command = Command::CreateResource { resource_id: ResourceId(999) };
    assert_refused_without_effect(full_operation_table, Some(key(CLIENT, 1)), command, R::OperationConflict);
}

#[test]
fn new_key_with_operation_table_full_executes_nothing_and_is_not_remembered() {
    let bundle = resource_ids(&[1]);
    let command = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(HOLDER), ttl_slots: 10 };
    let mut driver = assert_refused_without_effect(
        full_operation_table,
        Some(key(CLIENT, 17)),
        command,
        R::OperationTableFull,
    );
    assert_eq!(driver.resource(1), (RS::Available, 1));
    // Once the window has passed, the same key executes for real: the refusal was not recorded.
    let window = config().dedupe_window_slots;
    let outcome = driver.at(20 + window).apply_keyed(key(CLIENT, 17), command);
    assert_eq!(outcome.result, R::Ok);
    assert!(!outcome.from_retry_cache);
    assert_eq!(driver.resource(1), (RS::Reserved, 2));
}
