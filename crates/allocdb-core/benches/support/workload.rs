//! Deterministic apply workloads shared by the divan benchmark and the cachegrind driver.
//!
//! `uncontended`: `capacity` resources; a pipeline reserves a pseudo-random resource, activates
//! the lease reserved `PIPELINE_DEPTH` steps earlier and releases the one reserved twice that
//! far back, so about `2 * PIPELINE_DEPTH` leases are live and every command touches a random
//! part of the tables (the cache behaviour of real traffic). Every command carries an operation
//! key, slots advance every `COMMANDS_PER_SLOT` commands, and the dedupe and history windows are
//! sized so the operation and lease tables reach a steady state near half full: records expire
//! and leases retire as fast as they are created, the way a long-running server behaves.
//!
//! Commands are planned `3 * LOOKAHEAD` ahead of being applied, the way the engine holds a whole
//! group before applying it, and the kernel's three prefetch stages run `3 * LOOKAHEAD`,
//! `2 * LOOKAHEAD` and `LOOKAHEAD` commands ahead (see `allocdb_core::Kernel::prefetch_indexes`).
//!
//! `hotspot`: 16 hot resources fought over by many holders: most reserves fail `resource_busy`,
//! the winner releases after a few failed attempts by others. Its decisions depend on the
//! previous outcome, so only operation keys are prefetched ahead.

use std::collections::VecDeque;

use allocdb_core::{
    ClientId, Command, HolderId, Kernel, KernelConfig, LeaseId, LogPosition, OperationId, OperationKey,
    ResourceId, ResultCode, Submission,
};

pub const PIPELINE_DEPTH: usize = 64;
pub const COMMANDS_PER_SLOT: u64 = 64;
pub const HOT_RESOURCE_COUNT: u64 = 16;
pub const LOOKAHEAD: usize = 4;
const HOT_ATTEMPTS_PER_HANDOVER: u32 = 7;

pub fn config_for(capacity: u32) -> KernelConfig {
    let half = u64::from(capacity / 2).max(1);
    KernelConfig {
        resource_count_max: capacity,
        lease_count_max: capacity,
        lease_member_count_max: capacity,
        operation_count_max: capacity,
        bundle_size_max: 8,
        reserve_ttl_slots_max: 4_000,
        dedupe_window_slots: (half / COMMANDS_PER_SLOT).max(1),
        history_window_slots: (half / COMMANDS_PER_SLOT).max(1),
        expiration_bucket_count: 4_096,
        expiration_bucket_slots: 1,
        expiration_bucket_length_max: capacity,
        expirations_per_tick_max: 1_024,
        ..KernelConfig::default()
    }
}

#[derive(Clone, Copy)]
enum Planned {
    Reserve { resource: [ResourceId; 1], pipeline_slot: usize },
    Activate { lease_id: LeaseId },
    Release { lease_id: LeaseId },
}

impl Planned {
    fn command(&self) -> Command<'_> {
        match self {
            Planned::Reserve { resource, .. } => {
                Command::Reserve { resource_ids: resource, holder_id: HolderId(1), ttl_slots: 1_000 }
            }
            Planned::Activate { lease_id } => {
                Command::Activate { lease_id: *lease_id, holder_id: HolderId(1), lease_epoch: 1 }
            }
            Planned::Release { lease_id } => {
                Command::Release { lease_id: *lease_id, holder_id: HolderId(1), lease_epoch: 1 }
            }
        }
    }
}

pub struct Workload {
    pub kernel: Kernel,
    lsn: u64,
    command_count: u64,
    random: u64,
    resource_count: u64,
    pipeline: [Option<LeaseId>; 2 * PIPELINE_DEPTH],
    step: usize,
    planned: VecDeque<(OperationKey, Planned)>,
    next_operation_id: u128,
    hot_leases: [Option<(LeaseId, u32)>; HOT_RESOURCE_COUNT as usize],
    pub busy_count: u64,
    /// Whether to run the kernel's prefetch stages (off for the baseline measurement).
    pub prefetch: bool,
}

impl Workload {
    /// A kernel at `capacity` with `resource_count` resources created.
    pub fn new(capacity: u32, resource_count: u64) -> Workload {
        let mut workload = Workload {
            kernel: Kernel::new(config_for(capacity)).expect("benchmark config is valid"),
            lsn: 0,
            command_count: 0,
            random: 0x9e37_79b9_7f4a_7c15,
            resource_count,
            pipeline: [None; 2 * PIPELINE_DEPTH],
            step: 0,
            planned: VecDeque::with_capacity(4 * LOOKAHEAD + 4),
            next_operation_id: 1,
            hot_leases: [None; HOT_RESOURCE_COUNT as usize],
            busy_count: 0,
            prefetch: true,
        };
        for resource_id in 0..resource_count {
            let outcome =
                workload.apply(None, Command::CreateResource { resource_id: ResourceId(resource_id.into()) });
            assert_eq!(outcome.result, ResultCode::Ok);
        }
        workload
    }

    pub fn uncontended(capacity: u32) -> Workload {
        Workload::new(capacity, capacity.into())
    }

    pub fn hotspot(capacity: u32) -> Workload {
        Workload::new(capacity, HOT_RESOURCE_COUNT)
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: a fixed, seedless sequence, so every run applies the same commands.
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        self.random.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn apply(&mut self, key: Option<OperationKey>, command: Command<'_>) -> allocdb_core::Outcome {
        self.lsn += 1;
        self.command_count += 1;
        let position = LogPosition { lsn: self.lsn, request_slot: self.command_count / COMMANDS_PER_SLOT };
        self.kernel.apply(position, &Submission { operation: key, command })
    }

    fn key_for(operation_id: u128) -> OperationKey {
        OperationKey { client_id: ClientId(7), operation_id: OperationId(operation_id) }
    }

    fn next_key(&mut self) -> OperationKey {
        self.next_operation_id += 1;
        Workload::key_for(self.next_operation_id)
    }

    /// Plans one pipeline step: release the oldest lease, activate the middle one, reserve.
    fn plan_step(&mut self) {
        let pipeline_slot = self.step % (2 * PIPELINE_DEPTH);
        if let Some(lease_id) = self.pipeline[pipeline_slot].take() {
            let key = self.next_key();
            self.planned.push_back((key, Planned::Release { lease_id }));
        }
        let activate_slot = (self.step + PIPELINE_DEPTH) % (2 * PIPELINE_DEPTH);
        if let Some(lease_id) = self.pipeline[activate_slot] {
            let key = self.next_key();
            self.planned.push_back((key, Planned::Activate { lease_id }));
        }
        let resource = [ResourceId((self.next_random() % self.resource_count).into())];
        let key = self.next_key();
        self.planned.push_back((key, Planned::Reserve { resource, pipeline_slot }));
        self.step += 1;
    }

    /// Applies about `count` commands of the uncontended mix.
    pub fn run_uncontended(&mut self, count: u64) {
        let target = self.command_count + count;
        while self.command_count < target {
            while self.planned.len() <= 3 * LOOKAHEAD {
                self.plan_step();
            }
            if self.prefetch {
                let (key, planned) = self.planned[3 * LOOKAHEAD];
                // Each planned command is applied at the next lsn, so this one lands 3 × LOOKAHEAD on.
                let lsn = self.lsn + 1 + 3 * LOOKAHEAD as u64;
                self.kernel
                    .prefetch_indexes(lsn, &Submission { operation: Some(key), command: planned.command() });
                let (key, planned) = self.planned[2 * LOOKAHEAD];
                self.kernel
                    .prefetch_records(&Submission { operation: Some(key), command: planned.command() });
                let (key, planned) = self.planned[LOOKAHEAD];
                self.kernel
                    .prefetch_members(&Submission { operation: Some(key), command: planned.command() });
            }
            let Some((key, planned)) = self.planned.pop_front() else { unreachable!("planned ahead") };
            let outcome = self.apply(Some(key), planned.command());
            if let Planned::Reserve { pipeline_slot, .. } = planned {
                if outcome.result == ResultCode::Ok {
                    self.pipeline[pipeline_slot] = outcome.lease_id;
                } else {
                    self.busy_count += 1;
                }
            }
        }
    }

    /// Applies `count` commands of the hot-spot mix.
    pub fn run_hotspot(&mut self, count: u64) {
        for _ in 0..count {
            if self.prefetch {
                let ahead = self.next_operation_id + 1 + 2 * LOOKAHEAD as u128;
                self.kernel.prefetch_operation(Workload::key_for(ahead));
            }
            let key = self.next_key();
            let random = self.next_random();
            let hot = (random % HOT_RESOURCE_COUNT) as usize;
            let holder_id = HolderId(u128::from(random >> 32));
            match self.hot_leases[hot] {
                Some((lease_id, attempts)) if attempts >= HOT_ATTEMPTS_PER_HANDOVER => {
                    let release = Command::Release { lease_id, holder_id: HolderId(0), lease_epoch: 1 };
                    let outcome = self.apply(Some(key), release);
                    assert_eq!(outcome.result, ResultCode::Ok);
                    self.hot_leases[hot] = None;
                }
                Some((lease_id, attempts)) => {
                    let resource = [ResourceId(hot as u128)];
                    let reserve = Command::Reserve { resource_ids: &resource, holder_id, ttl_slots: 1_000 };
                    let outcome = self.apply(Some(key), reserve);
                    assert_eq!(outcome.result, ResultCode::ResourceBusy);
                    self.busy_count += 1;
                    self.hot_leases[hot] = Some((lease_id, attempts + 1));
                }
                None => {
                    let resource = [ResourceId(hot as u128)];
                    let reserve = Command::Reserve {
                        resource_ids: &resource,
                        holder_id: HolderId(0),
                        ttl_slots: 1_000,
                    };
                    let outcome = self.apply(Some(key), reserve);
                    assert_eq!(outcome.result, ResultCode::Ok);
                    self.hot_leases[hot] = outcome.lease_id.map(|lease_id| (lease_id, 0));
                }
            }
        }
    }
}
