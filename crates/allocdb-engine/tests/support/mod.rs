//! Shared helpers of the engine's integration tests: a small configuration over the simulated
//! disk, keyed requests, and a serial commit that checks the kernel after every group.

#![allow(dead_code, reason = "each test file uses a subset of the helpers")]

use allocdb_core::{ClientId, HolderId, KernelConfig, OperationId, OperationKey, ResourceId};
use allocdb_engine::{EngineConfig, EngineCore, ManualClock, OwnedCommand, WriteReply, WriteRequest};
use allocdb_storage::{SimDirectory, StorageConfig};

pub fn config() -> EngineConfig {
    EngineConfig {
        kernel: KernelConfig {
            resource_count_max: 64,
            lease_count_max: 64,
            lease_member_count_max: 128,
            operation_count_max: 256,
            bundle_size_max: 8,
            expiration_bucket_count: 64,
            expiration_bucket_length_max: 64,
            expirations_per_tick_max: 4,
            ..KernelConfig::default()
        },
        storage: StorageConfig {
            segment_size_bytes: 4096,
            payload_size_bytes_max: 512,
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

pub type Core = EngineCore<SimDirectory, ManualClock>;

pub fn open(directory: &SimDirectory, clock: &ManualClock, config: EngineConfig) -> Core {
    EngineCore::open(directory.clone(), clock.clone(), config).unwrap()
}

pub fn keyed(operation_id: u128, command: OwnedCommand) -> WriteRequest {
    WriteRequest {
        operation: Some(OperationKey { client_id: ClientId(1), operation_id: OperationId(operation_id) }),
        command,
    }
}

pub fn commit(core: &mut Core, requests: &[WriteRequest]) -> Vec<WriteReply> {
    let references: Vec<&WriteRequest> = requests.iter().collect();
    let mut replies = Vec::new();
    core.commit_group(&references, &mut replies);
    assert_eq!(replies.len(), requests.len());
    core.kernel().check_invariants().unwrap();
    replies
}

pub fn committed(reply: WriteReply) -> allocdb_core::Outcome {
    match reply {
        WriteReply::Committed(outcome) => outcome,
        WriteReply::Rejected(code) => panic!("expected a committed reply, got {code:?}"),
    }
}

pub fn create(id: u128) -> OwnedCommand {
    OwnedCommand::CreateResource { resource_id: ResourceId(id) }
}

pub fn reserve(id: u128, ttl_slots: u64) -> OwnedCommand {
    OwnedCommand::Reserve { resource_ids: vec![ResourceId(id)], holder_id: HolderId(7), ttl_slots }
}

/// The virtual clock the tests start at (one second).
pub fn clock() -> ManualClock {
    ManualClock::new(1_000)
}
