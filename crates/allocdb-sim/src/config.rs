//! One run's configuration, drawn from its seed: engine bounds, workload shape, fault rates.
//!
//! Everything is deliberately small so that limits are reached during a run: a handful of
//! resources and leases in most runs (tables fill up; a quarter of the runs get up to 200, so
//! leases live out their lifecycle in numbers), an operation table that overflows, segments of a few
//! records (rollovers every few groups), snapshots every few dozen records (compaction and
//! segment release), windows of tens to hundreds of slots (dedupe records and terminal leases
//! retire within a run). Each fault kind is switched on or off per run (swarm testing), so
//! some runs are quiet and others hammer one failure mode.

use std::fmt;

use allocdb_core::KernelConfig;
use allocdb_engine::EngineConfig;
use allocdb_storage::{SnapshotFallback, StorageConfig, frame_size_bytes};

use crate::rng::Rng;

/// Fault rates, each the chance per step (or per restart, for media faults) in per mille.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRates {
    /// Schedule a failing write within the next few writes.
    pub write_failure_per_mille: u64,
    /// Schedule a failing sync within the next few syncs.
    pub sync_failure_per_mille: u64,
    /// Schedule a process halt at one of the next mutations (mid-group, mid-rollover,
    /// mid-snapshot).
    pub halt_per_mille: u64,
    /// Crash and restart the node.
    pub crash_per_mille: u64,
    /// Of crashes, how many tear the last unsynced write instead of dropping it.
    pub torn_crash_per_mille: u64,
    /// Request a snapshot now (with a halt aimed inside it half of the time when halts are on).
    pub snapshot_per_mille: u64,
    /// Per restart: flip one bit of a durable log or snapshot byte.
    pub bit_flip_per_mille: u64,
    /// Per restart: schedule a failing write or sync, or a halt, to fire inside recovery.
    pub recovery_fault_per_mille: u64,
    /// Per restart: restart with other table capacities (an operator resizing between
    /// restarts), larger or smaller, after a snapshot half of the time.
    pub capacity_change_per_mille: u64,
    /// Per restart: step the wall clock back (a clock reset); slots must not follow.
    pub clock_step_back_per_mille: u64,
}

impl FaultRates {
    /// No faults at all.
    pub const NONE: FaultRates = FaultRates {
        write_failure_per_mille: 0,
        sync_failure_per_mille: 0,
        halt_per_mille: 0,
        crash_per_mille: 0,
        torn_crash_per_mille: 0,
        snapshot_per_mille: 0,
        bit_flip_per_mille: 0,
        recovery_fault_per_mille: 0,
        capacity_change_per_mille: 0,
        clock_step_back_per_mille: 0,
    };

    fn draw(rng: &mut Rng) -> FaultRates {
        let mut rate = |low: u64, high: u64| if rng.coin() { rng.range(low, high) } else { 0 };
        FaultRates {
            write_failure_per_mille: rate(2, 25),
            sync_failure_per_mille: rate(2, 25),
            halt_per_mille: rate(2, 30),
            crash_per_mille: rate(2, 25),
            torn_crash_per_mille: rate(200, 900),
            snapshot_per_mille: rate(5, 40),
            bit_flip_per_mille: rate(20, 150),
            recovery_fault_per_mille: rate(50, 400),
            capacity_change_per_mille: rate(20, 150),
            clock_step_back_per_mille: rate(50, 300),
        }
    }
}

/// The workload's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkloadShape {
    /// Virtual clients (each with its own client id and holder id); an operator comes on top.
    pub client_count: u32,
    /// Resource ids are drawn from `0..resource_pool_size`; larger than the table sometimes.
    pub resource_pool_size: u32,
    /// Largest group handed to one `commit_group`.
    pub group_size_max: u32,
    /// Longest TTL a client asks for, in milliseconds (sometimes beyond the engine maximum).
    pub ttl_ms_max: u64,
}

/// Everything one run needs, drawn from its seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The run's seed.
    pub seed: u64,
    /// Steps of the safety phase (with faults).
    pub step_count: u64,
    /// The engine under test.
    pub engine: EngineConfig,
    /// The client load.
    pub workload: WorkloadShape,
    /// The faults.
    pub faults: FaultRates,
    /// The virtual clock's start, in milliseconds.
    pub clock_start_ms: u64,
}

impl SimConfig {
    /// Draws a configuration from `rng` (the run's configuration stream).
    pub fn draw(seed: u64, rng: &mut Rng) -> SimConfig {
        let engine = draw_engine(rng);
        let kernel = engine.kernel_config();
        let client_count = rng.range_u32(1, 16);
        let workload = WorkloadShape {
            client_count,
            resource_pool_size: rng.range_u32(2, engine.kernel.resource_count_max + 6),
            group_size_max: rng.range_u32(1, client_count + 1),
            ttl_ms_max: engine.reserve_ttl_ms_max + rng.range(0, engine.reserve_ttl_ms_max / 8),
        };
        assert!(kernel.dedupe_window_slots >= 8, "the retry cap needs a window of a few slots");
        SimConfig {
            seed,
            step_count: rng.range(1_000, 8_000),
            engine,
            workload,
            faults: FaultRates::draw(rng),
            clock_start_ms: rng.range(0, 1 << 40),
        }
    }
}

fn draw_engine(rng: &mut Rng) -> EngineConfig {
    let slot_duration_ms = [1, 2, 5, 10, 20][rng.index(5)];
    let bundle_size_max = rng.range_u32(1, 4);
    // Mostly cramped tables (every bound is hit); a quarter of the runs get room, so most
    // reserves succeed and leases live out their whole lifecycle in numbers.
    let table_max = if rng.chance(250) { 200 } else { 24 };
    let lease_count_max = rng.range_u32(2, table_max);
    let kernel = KernelConfig {
        shard_id: 0,
        resource_count_max: rng.range_u32(2, table_max),
        lease_count_max,
        lease_member_count_max: lease_count_max.max(bundle_size_max)
            + rng.range_u32(0, 2) * rng.range_u32(0, 8),
        operation_count_max: rng.range_u32(4, 160 * table_max / 24),
        bundle_size_max,
        expiration_bucket_count: rng.range_u32(2, 32),
        // The engine widens buckets so the wheel spans the longest TTL.
        expiration_bucket_slots: 1,
        expiration_bucket_length_max: rng.range_u32(1, lease_count_max),
        expirations_per_tick_max: rng.range_u32(1, 6),
        hash_seed: rng.next_u64(),
        ..KernelConfig::default()
    };
    let payload_size_bytes_max = submission_size_bytes_max(bundle_size_max) + rng.range_u32(0, 64);
    let frame_size_max = frame_size_bytes(payload_size_bytes_max);
    // Segments of a few records and, sometimes, a buffer smaller than a group, so rollovers and
    // mid-group syncs happen all the time.
    let segment_size_bytes = frame_size_max + rng.range(0, 1_500);
    let buffer_size_bytes_max =
        if rng.coin() { frame_size_max + rng.range(0, 400) } else { frame_size_max * 64 };
    let storage = StorageConfig {
        segment_size_bytes,
        payload_size_bytes_max,
        buffer_size_bytes_max,
        snapshot_size_bytes_max: 1 << 24,
        snapshot_fallback: if rng.chance(200) {
            SnapshotFallback::Never
        } else {
            SnapshotFallback::WhenBridgedByLog
        },
    };
    let slots = |low: u64, high: u64, rng: &mut Rng| rng.range(low, high) * slot_duration_ms;
    let config = EngineConfig {
        kernel,
        storage,
        slot_duration_ms,
        reserve_ttl_ms_max: slots(2, 200, rng),
        dedupe_window_ms: slots(12, 400, rng),
        history_window_ms: slots(1, 400, rng),
        submission_queue_capacity: 64,
        batch_size_max: 64,
        snapshot_interval_records: if rng.chance(150) { rng.range(200, 2_000) } else { rng.range(2, 64) },
    };
    assert!(config.validate().is_ok(), "drawn engine configuration is invalid: {:?}", config.validate());
    config
}

/// The largest record payload the engine writes for bundles of `bundle_size_max` members; the
/// payload limit must hold it (`allocdb_engine::EngineConfig::validate` checks the same).
fn submission_size_bytes_max(bundle_size_max: u32) -> u32 {
    u32::try_from(allocdb_engine::submission_size_bytes_max(bundle_size_max)).unwrap_or(u32::MAX)
}

impl fmt::Display for SimConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engine = &self.engine;
        let kernel = engine.kernel_config();
        let storage = &engine.storage;
        let faults = &self.faults;
        writeln!(
            formatter,
            "  steps={} clients={} resource_pool={} group_size_max={} ttl_ms_max={} clock_start_ms={}",
            self.step_count,
            self.workload.client_count,
            self.workload.resource_pool_size,
            self.workload.group_size_max,
            self.workload.ttl_ms_max,
            self.clock_start_ms,
        )?;
        writeln!(
            formatter,
            "  kernel: resources={} leases={} members={} operations={} bundle={} buckets={}x{}slots \
             bucket_length={} expirations_per_tick={} ttl_slots_max={} dedupe_slots={} history_slots={}",
            kernel.resource_count_max,
            kernel.lease_count_max,
            kernel.lease_member_count_max,
            kernel.operation_count_max,
            kernel.bundle_size_max,
            kernel.expiration_bucket_count,
            kernel.expiration_bucket_slots,
            kernel.expiration_bucket_length_max,
            kernel.expirations_per_tick_max,
            kernel.reserve_ttl_slots_max,
            kernel.dedupe_window_slots,
            kernel.history_window_slots,
        )?;
        writeln!(
            formatter,
            "  engine: slot_ms={} snapshot_every={} records; storage: segment={}B payload_max={}B buffer={}B fallback={:?}",
            engine.slot_duration_ms,
            engine.snapshot_interval_records,
            storage.segment_size_bytes,
            storage.payload_size_bytes_max,
            storage.buffer_size_bytes_max,
            storage.snapshot_fallback,
        )?;
        write!(
            formatter,
            "  faults (per mille): write={} sync={} halt={} crash={} torn={} snapshot={} bit_flip={} recovery_fault={} resize={} clock_back={}",
            faults.write_failure_per_mille,
            faults.sync_failure_per_mille,
            faults.halt_per_mille,
            faults.crash_per_mille,
            faults.torn_crash_per_mille,
            faults.snapshot_per_mille,
            faults.bit_flip_per_mille,
            faults.recovery_fault_per_mille,
            faults.capacity_change_per_mille,
            faults.clock_step_back_per_mille,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::SimConfig;
    use crate::rng::Rng;

    #[test]
    fn every_drawn_configuration_is_valid() {
        for seed in 0..500 {
            let config = SimConfig::draw(seed, &mut Rng::new(seed));
            assert!(config.engine.validate().is_ok(), "seed {seed}");
            assert!(config.workload.group_size_max >= 1);
        }
    }
}
