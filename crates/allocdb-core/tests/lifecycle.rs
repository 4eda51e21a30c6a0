//! End-to-end lease lifecycles through the public API: reserve → activate → release, expiry
//! through the timing wheel, retries from the operation table, retirement, and snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use allocdb_core::{
    ClientId, Command, HolderId, Kernel, KernelConfig, LeaseId, LeaseLookup, LeaseState, LogPosition,
    OperationId, OperationKey, ResourceId, ResourceState, ResultCode, Submission,
};

fn small_config() -> KernelConfig {
    KernelConfig {
        resource_count_max: 8,
        lease_count_max: 8,
        lease_member_count_max: 16,
        operation_count_max: 16,
        bundle_size_max: 4,
        reserve_ttl_slots_max: 100,
        dedupe_window_slots: 50,
        history_window_slots: 20,
        expiration_bucket_count: 16,
        expiration_bucket_slots: 8,
        expiration_bucket_length_max: 8,
        expirations_per_tick_max: 8,
        ..KernelConfig::default()
    }
}

struct Driver {
    kernel: Kernel,
    lsn: u64,
}

impl Driver {
    fn new() -> Self {
        Driver { kernel: Kernel::new(small_config()).unwrap(), lsn: 0 }
    }

    fn apply(&mut self, slot: u64, key: Option<u128>, command: Command<'_>) -> allocdb_core::Outcome {
        self.lsn += 1;
        let operation = key.map(|id| OperationKey { client_id: ClientId(1), operation_id: OperationId(id) });
        let outcome = self
            .kernel
            .apply(LogPosition { lsn: self.lsn, request_slot: slot }, &Submission { operation, command });
        self.kernel.check_invariants().unwrap();
        outcome
    }
}

#[test]
fn reserve_activate_release_moves_resource_through_every_state() {
    let mut driver = Driver::new();
    assert_eq!(
        driver.apply(1, None, Command::CreateResource { resource_id: ResourceId(5) }).result,
        ResultCode::Ok
    );
    let bundle = [ResourceId(5)];
    let reserved = driver.apply(
        2,
        Some(1),
        Command::Reserve { resource_ids: &bundle, holder_id: HolderId(9), ttl_slots: 10 },
    );
    assert_eq!(reserved.result, ResultCode::Ok);
    let lease_id = reserved.lease_id.unwrap();
    assert_eq!(lease_id, LeaseId::new(0, 2));
    assert_eq!(reserved.deadline_slot, Some(12));
    assert_eq!(driver.kernel.resource(ResourceId(5)).unwrap().state, ResourceState::Reserved);

    let activated =
        driver.apply(3, Some(2), Command::Activate { lease_id, holder_id: HolderId(9), lease_epoch: 1 });
    assert_eq!(activated.result, ResultCode::Ok);
    assert_eq!(driver.kernel.resource(ResourceId(5)).unwrap().state, ResourceState::Active);

    let released =
        driver.apply(4, Some(3), Command::Release { lease_id, holder_id: HolderId(9), lease_epoch: 1 });
    assert_eq!(released.result, ResultCode::Ok);
    assert_eq!(released.lease_epoch, Some(2));
    let resource = driver.kernel.resource(ResourceId(5)).unwrap();
    assert_eq!(resource.state, ResourceState::Available);
    assert_eq!(resource.version, 4);
    let LeaseLookup::Found(view) = driver.kernel.lease(lease_id) else { panic!("lease missing") };
    assert_eq!(view.state, LeaseState::Released);
    assert_eq!(view.released_lsn, Some(4));
    assert_eq!(view.retire_after_slot, Some(24));
    assert_eq!(view.resource_ids().collect::<Vec<_>>(), vec![ResourceId(5)]);

    // The retry answers from the operation table with the original lsn.
    let retry = driver.apply(
        5,
        Some(1),
        Command::Reserve { resource_ids: &bundle, holder_id: HolderId(9), ttl_slots: 10 },
    );
    assert!(retry.from_retry_cache);
    assert_eq!(retry.applied_lsn, 2);
    assert_eq!(retry.lease_id, Some(lease_id));

    // After the history window the lease reads as retired, before and after it is dropped.
    driver.apply(24, None, Command::CreateResource { resource_id: ResourceId(6) });
    assert!(matches!(driver.kernel.lease(lease_id), LeaseLookup::Retired));
    driver.apply(25, None, Command::CreateResource { resource_id: ResourceId(7) });
    assert!(matches!(driver.kernel.lease(lease_id), LeaseLookup::Retired));
    assert_eq!(driver.kernel.retired_watermark(), 2);
    assert!(matches!(driver.kernel.lease(LeaseId::new(0, 99)), LeaseLookup::NotFound));
}

#[test]
fn due_lease_expires_through_the_wheel_and_frees_members() {
    let mut driver = Driver::new();
    driver.apply(1, None, Command::CreateResource { resource_id: ResourceId(1) });
    driver.apply(1, None, Command::CreateResource { resource_id: ResourceId(2) });
    let bundle = [ResourceId(1), ResourceId(2)];
    let reserved = driver.apply(
        3,
        None,
        Command::Reserve { resource_ids: &bundle, holder_id: HolderId(4), ttl_slots: 40 },
    );
    let deadline = reserved.deadline_slot.unwrap();
    let mut due = Vec::new();
    driver.kernel.due_expirations(deadline - 1, 8, &mut due);
    assert!(due.is_empty());
    driver.kernel.due_expirations(deadline, 8, &mut due);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].lease_id, reserved.lease_id.unwrap());

    let early = driver.apply(
        deadline - 1,
        None,
        Command::Expire { lease_id: due[0].lease_id, deadline_slot: deadline },
    );
    assert_eq!(early.result, ResultCode::Noop);
    let expired =
        driver.apply(deadline, None, Command::Expire { lease_id: due[0].lease_id, deadline_slot: deadline });
    assert_eq!(expired.result, ResultCode::Ok);
    assert_eq!(expired.lease_epoch, Some(2));
    assert_eq!(driver.kernel.resource(ResourceId(2)).unwrap().state, ResourceState::Available);
    driver.kernel.due_expirations(deadline + 100, 8, &mut due);
    assert!(due.is_empty());
}

#[test]
fn snapshot_restore_reproduces_identical_state() {
    let mut driver = Driver::new();
    for id in 1..=4 {
        driver.apply(1, Some(id), Command::CreateResource { resource_id: ResourceId(id) });
    }
    let bundle = [ResourceId(3), ResourceId(1)];
    let lease = driver
        .apply(2, Some(10), Command::Reserve { resource_ids: &bundle, holder_id: HolderId(1), ttl_slots: 7 })
        .lease_id
        .unwrap();
    driver.apply(3, Some(11), Command::Activate { lease_id: lease, holder_id: HolderId(1), lease_epoch: 1 });
    let single = [ResourceId(4)];
    driver.apply(
        4,
        Some(12),
        Command::Reserve { resource_ids: &single, holder_id: HolderId(2), ttl_slots: 9 },
    );
    let bytes = driver.kernel.encode_snapshot();
    let restored = Kernel::restore(small_config(), &bytes).unwrap();
    assert_eq!(restored.encode_snapshot(), bytes);
    assert_eq!(restored.state_digest(), driver.kernel.state_digest());
}
