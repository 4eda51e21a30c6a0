//! What the benchmark asks the engine to do: its configuration, and the keyed reserve →
//! release cycle of one virtual submitter on its own resource.

use std::path::Path;

use allocdb_core::{
    ClientId, HolderId, KernelConfig, LeaseId, OperationId, OperationKey, ResourceId, ResultCode,
};
use allocdb_engine::{EngineConfig, EngineCore, OwnedCommand, SystemClock, WriteReply, WriteRequest};
use allocdb_storage::{FsDirectory, StorageConfig};

/// The reserve TTL: far longer than any run, so no lease expires under the loop.
pub(crate) const RESERVE_TTL_MS: u64 = 30_000;
/// Client id of setup writes (resource creation), distinct from every submitter's.
const SETUP_CLIENT_ID: u128 = u128::MAX;
/// Resources the configuration holds; the recovery workload and N = 1,024 × 2 fit easily.
pub(crate) const RESOURCE_COUNT_MAX: u32 = 1 << 16;

/// How large a run the tables are sized for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    /// The default run: up to ~500k commands/s sustained.
    Full,
    /// The CI smoke run: sub-second windows, so small tables that allocate in milliseconds.
    Smoke,
}

/// Capacities sized for the run. At 250k commands/s a 2 s dedupe window holds 500k operation
/// records and a 2 s history window about 250k terminal leases; the full tables are several
/// times that (and the recovery build, ~500k records/s, fits too), so no command fails for
/// capacity. Snapshots never trigger on their own.
pub(crate) fn engine_config(scale: Scale) -> EngineConfig {
    let (lease_count_max, operation_count_max) = match scale {
        Scale::Full => (1 << 21, 1 << 22),
        Scale::Smoke => (1 << 18, 1 << 19),
    };
    EngineConfig {
        kernel: KernelConfig {
            resource_count_max: RESOURCE_COUNT_MAX,
            lease_count_max,
            lease_member_count_max: lease_count_max,
            operation_count_max,
            bundle_size_max: 8,
            expiration_bucket_length_max: 1 << 16,
            ..KernelConfig::default()
        },
        storage: StorageConfig { segment_size_bytes: 64 << 20, ..StorageConfig::default() },
        slot_duration_ms: 10,
        reserve_ttl_ms_max: 60_000,
        dedupe_window_ms: 2_000,
        history_window_ms: 2_000,
        submission_queue_capacity: 8_192,
        batch_size_max: 4_096,
        snapshot_interval_records: u64::MAX,
    }
}

pub(crate) fn open_core(path: &Path, scale: Scale) -> EngineCore<FsDirectory, SystemClock> {
    let directory = FsDirectory::open(path).expect("open engine directory");
    EngineCore::open(directory, SystemClock, engine_config(scale)).expect("open engine core")
}

fn operation(client: u128, operation_id: u128) -> OperationKey {
    OperationKey { client_id: ClientId(client), operation_id: OperationId(operation_id) }
}

pub(crate) fn create_request(resource_index: usize) -> WriteRequest {
    WriteRequest {
        operation: Some(operation(SETUP_CLIENT_ID, resource_index as u128)),
        command: OwnedCommand::CreateResource { resource_id: resource_id(resource_index) },
    }
}

fn resource_id(index: usize) -> ResourceId {
    ResourceId(index as u128 + 1)
}

/// Committed with result `ok`, executed now (not answered from the retry cache).
pub(crate) fn is_fresh_ok(reply: &WriteReply) -> bool {
    matches!(reply, WriteReply::Committed(outcome) if outcome.result == ResultCode::Ok && !outcome.from_retry_cache)
}

pub(crate) fn describe_reply(reply: &WriteReply) -> String {
    match reply {
        WriteReply::Committed(outcome) if outcome.from_retry_cache => {
            format!("{:?} (from retry cache)", outcome.result)
        }
        WriteReply::Committed(outcome) => format!("{:?}", outcome.result),
        WriteReply::Rejected(code) => format!("rejected {}", code.as_str()),
    }
}

/// One virtual client: its own resource, cycling reserve → release, a fresh operation id for
/// every request.
pub(crate) struct Submitter {
    client_id: u128,
    resource_id: ResourceId,
    next_operation_id: u128,
    /// The lease it holds (id, epoch) after a successful reserve.
    lease: Option<(LeaseId, u64)>,
}

impl Submitter {
    /// Submitter `index` (client `index + 1`) on resource `index`.
    pub(crate) fn new(index: usize) -> Submitter {
        Submitter {
            client_id: index as u128 + 1,
            resource_id: resource_id(index),
            next_operation_id: 0,
            lease: None,
        }
    }

    pub(crate) fn next_request(&mut self, ttl_slots: u64) -> WriteRequest {
        self.next_operation_id += 1;
        let holder_id = HolderId(self.client_id);
        let command = match self.lease {
            None => OwnedCommand::Reserve { resource_ids: vec![self.resource_id], holder_id, ttl_slots },
            Some((lease_id, lease_epoch)) => OwnedCommand::Release { lease_id, holder_id, lease_epoch },
        };
        WriteRequest { operation: Some(operation(self.client_id, self.next_operation_id)), command }
    }

    /// Advances the cycle on a reply; returns false if the reply was not a fresh `ok`.
    pub(crate) fn on_reply(&mut self, reply: &WriteReply) -> bool {
        let ok = is_fresh_ok(reply);
        self.lease = match (self.lease, reply) {
            (None, WriteReply::Committed(outcome)) if ok => Some((
                outcome.lease_id.expect("reserve returns a lease"),
                outcome.lease_epoch.expect("reserve returns an epoch"),
            )),
            // A failed reserve is retried; a failed release gives the lease up (its resource
            // stays busy and every later reserve of it fails, which the anomaly count shows).
            _ => None,
        };
        ok
    }
}
