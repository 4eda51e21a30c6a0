//! Changing the configuration between restarts never changes an acknowledged outcome: the
//! configuration is a log record, so replay decides each command under the configuration it
//! first ran with, and the new one applies from its own record on. Shrinking below what is
//! stored is refused at startup. (Found by the simulator: replay used to run under the new
//! capacities, turning an acknowledged `lease_table_full` into an executed reserve.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use allocdb_core::{
    ClientId, HolderId, KernelConfig, LeaseId, LeaseLookup, OperationId, OperationKey, ResourceId, ResultCode,
};
use allocdb_engine::{EngineConfig, EngineCore, ManualClock, OwnedCommand, WriteReply, WriteRequest};
use allocdb_storage::{SimDirectory, StorageConfig};

fn config(lease_count_max: u32) -> EngineConfig {
    EngineConfig {
        kernel: KernelConfig {
            resource_count_max: 8,
            lease_count_max,
            lease_member_count_max: 8,
            operation_count_max: 64,
            bundle_size_max: 1,
            expiration_bucket_count: 8,
            expiration_bucket_length_max: lease_count_max,
            expirations_per_tick_max: 4,
            ..KernelConfig::default()
        },
        storage: StorageConfig {
            segment_size_bytes: 4096,
            payload_size_bytes_max: 128,
            ..StorageConfig::default()
        },
        slot_duration_ms: 10,
        reserve_ttl_ms_max: 10_000,
        dedupe_window_ms: 60_000,
        history_window_ms: 60_000,
        submission_queue_capacity: 64,
        batch_size_max: 64,
        snapshot_interval_records: 1_000_000,
    }
}

fn keyed(operation_id: u128, command: OwnedCommand) -> WriteRequest {
    WriteRequest {
        operation: Some(OperationKey { client_id: ClientId(1), operation_id: OperationId(operation_id) }),
        command,
    }
}

/// A reserve acknowledged `lease_table_full` stays refused after a restart with a larger lease
/// table: no lease appears, the resource stays available, and a retry returns the
/// acknowledged outcome. The larger table applies to new commands.
#[test]
fn restart_with_a_larger_lease_table_keeps_acknowledged_outcomes() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(1_000);
    let mut core = EngineCore::open(directory.clone(), clock.clone(), config(1)).unwrap();
    let requests = [
        keyed(1, OwnedCommand::CreateResource { resource_id: ResourceId(1) }),
        keyed(2, OwnedCommand::CreateResource { resource_id: ResourceId(2) }),
        keyed(
            3,
            OwnedCommand::Reserve {
                resource_ids: vec![ResourceId(1)],
                holder_id: HolderId(7),
                ttl_slots: 50,
            },
        ),
        keyed(
            4,
            OwnedCommand::Reserve {
                resource_ids: vec![ResourceId(2)],
                holder_id: HolderId(7),
                ttl_slots: 50,
            },
        ),
    ];
    let references: Vec<&WriteRequest> = requests.iter().collect();
    let mut replies = Vec::new();
    core.commit_group(&references, &mut replies);
    let WriteReply::Committed(refused) = replies[3] else { panic!("{:?}", replies[3]) };
    assert_eq!(refused.result, ResultCode::LeaseTableFull, "the table holds one lease");
    drop(core);
    directory.crash().unwrap();

    // The operator grows the lease table and restarts.
    let core = EngineCore::open(directory, clock, config(4)).unwrap();
    let kernel = core.kernel();
    let retry = kernel.check_retry(requests[3].operation.unwrap(), &requests[3].as_submission().command, 100);
    assert_eq!(
        retry.map(|outcome| outcome.result),
        Some(ResultCode::LeaseTableFull),
        "a retry must return the acknowledged outcome; the lease now reads {:?} and resource 2 {:?}",
        matches!(kernel.lease(LeaseId::new(0, refused.applied_lsn)), LeaseLookup::Found(_)),
        kernel.resource(ResourceId(2)).map(|resource| resource.state),
    );
}

#[test]
fn restart_with_tables_too_small_for_the_state_is_refused() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(1_000);
    let mut core = EngineCore::open(directory.clone(), clock.clone(), config(4)).unwrap();
    let requests: Vec<WriteRequest> = (0..3_u128)
        .flat_map(|id| {
            [
                keyed(10 + id, OwnedCommand::CreateResource { resource_id: ResourceId(id) }),
                keyed(
                    20 + id,
                    OwnedCommand::Reserve {
                        resource_ids: vec![ResourceId(id)],
                        holder_id: HolderId(7),
                        ttl_slots: 50,
                    },
                ),
            ]
        })
        .collect();
    let references: Vec<&WriteRequest> = requests.iter().collect();
    let mut replies = Vec::new();
    core.commit_group(&references, &mut replies);
    drop(core);
    directory.crash().unwrap();
    let error = EngineCore::open(directory.clone(), clock.clone(), config(2))
        .err()
        .expect("three leases do not fit two");
    assert!(error.to_string().contains("cannot hold the recovered state"), "{error}");
    // Nothing was logged by the refused start: the original configuration still opens.
    EngineCore::open(directory, clock, config(4)).unwrap();
}
