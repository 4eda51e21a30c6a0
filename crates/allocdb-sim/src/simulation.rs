//! The random driver: one seed → one configuration → a safety phase with faults → a liveness
//! tail without faults → a final crash and recovery.
//!
//! Each safety step is one of: a group commit (after maybe scheduling a write, sync or halt
//! fault and advancing virtual time), a crash and restart (clean or torn, sometimes with the
//! wall clock reset backwards, sometimes followed by a flipped bit in durable bytes and a
//! second restart), or a snapshot request (with a halt aimed inside it half of the time). A
//! halted engine keeps answering `engine_halted` for zero to two steps, then is restarted.
//!
//! Virtual time: while any operation is pending, the clock is held so that every slot stays
//! inside the dedupe window of the oldest pending first attempt (`Checker::retry_slot_cap`):
//! a retry must find a durable first execution, not outlive it.
//!
//! The liveness tail cancels every scheduled fault, restarts the process, retries until
//! every pending operation resolves (bounded rounds), moves time past every deadline and
//! commits empty groups until the expiry driver has expired every reserved lease (bounded by
//! the per-tick budget), then crashes once more and requires the identical state back.

use std::fmt;

use allocdb_core::Slot;
use allocdb_engine::EngineConfig;
use allocdb_storage::SimDirectory;

use crate::config::SimConfig;
use crate::harness::{CrashKind, FlipVerdict, Harness, RecoveryFault, Restart, SimFailure};
use crate::request::SimRequest;
use crate::rng::Rng;
use crate::stats::RunStats;
use crate::trace::TraceTag;
use crate::workload::Workload;

/// Notable events kept for the report (the rest are counted in the statistics).
const NOTE_COUNT_MAX: usize = 16;
/// Rounds the liveness tail allows for pending operations to resolve once faults stop.
const LIVENESS_RETRY_ROUNDS_MAX: u32 = 8;

/// Options of one run that do not come from the seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Overrides the drawn number of safety steps.
    pub step_count: Option<u64>,
}

/// The result of a run that found no violation.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// The drawn configuration.
    pub config: SimConfig,
    /// The trace digest: equal for two runs of one seed.
    pub trace_digest: u64,
    /// What the run exercised.
    pub stats: RunStats,
    /// Fresh outcomes by result code, rejections by code, resolutions.
    pub history: String,
    /// Notable events (such as recovery failing closed on a flipped bit), the first few.
    pub notes: Vec<String>,
}

/// A run that found a violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFailure {
    /// The seed.
    pub seed: u64,
    /// The step override, if the run used one (needed to replay).
    pub step_count: Option<u64>,
    /// What failed, and where.
    pub failure: SimFailure,
}

impl RunFailure {
    /// The command that replays this run bit for bit.
    pub fn replay_command(&self) -> String {
        replay_command(self.seed, self.step_count)
    }
}

/// The command that replays `seed` (with `step_count` if overridden).
pub fn replay_command(seed: u64, step_count: Option<u64>) -> String {
    let steps = step_count.map(|count| format!(" --steps {count}")).unwrap_or_default();
    format!("cargo run --release -p allocdb-sim -- --seed {seed}{steps}")
}

impl fmt::Display for RunFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "ALLOCDB_SEED={} FAILED at step {}: {}\nreplay: {}",
            self.seed,
            self.failure.step,
            self.failure.reason,
            self.replay_command()
        )
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "ALLOCDB_SEED={} ok\n  trace_digest={:#018x}\n  {}\n  {}",
            self.seed, self.trace_digest, self.stats, self.history
        )?;
        for note in &self.notes {
            write!(formatter, "\n  note: {note}")?;
        }
        Ok(())
    }
}

/// The configuration `seed` draws (what [`run`] will use, before any override).
pub fn config_for_seed(seed: u64) -> SimConfig {
    let mut root = Rng::new(seed);
    SimConfig::draw(seed, &mut root.fork())
}

/// Runs the simulation of `seed`.
///
/// # Errors
/// The first violated check, with its step.
pub fn run(seed: u64, options: &RunOptions) -> Result<RunReport, RunFailure> {
    let mut root = Rng::new(seed);
    let mut config = SimConfig::draw(seed, &mut root.fork());
    if let Some(step_count) = options.step_count {
        config.step_count = step_count;
    }
    let workload = Workload::new(config.workload, config.engine, root.fork());
    let failure = |failure: SimFailure| RunFailure { seed, step_count: options.step_count, failure };
    let harness = Harness::new(config.engine, config.clock_start_ms).map_err(failure)?;
    let mut simulation = Simulation {
        config,
        harness,
        workload,
        fault_rng: root.fork(),
        time_rng: root.fork(),
        spare_rng: root.fork(),
        halted_steps_left: None,
        notes: Vec::new(),
    };
    simulation.run().map_err(failure)?;
    let counts = simulation.harness.checker().counts();
    let history = format!(
        "results={:?} rejections={:?} resolved_from_cache={} resolved_fresh={} duplicates={} echoes={} \
         leases_ended={:?}",
        counts.results,
        counts.rejections,
        counts.resolved_from_cache,
        counts.resolved_fresh,
        counts.duplicates_answered,
        counts.echoes_answered,
        counts.leases_ended
    );
    Ok(RunReport {
        seed,
        config,
        trace_digest: simulation.harness.trace_digest(),
        stats: simulation.harness.stats().clone(),
        history,
        notes: simulation.notes,
    })
}

struct Simulation {
    config: SimConfig,
    harness: Harness,
    workload: Workload,
    fault_rng: Rng,
    time_rng: Rng,
    /// When the spare thread's part is played (its own stream, so the other draws of a seed
    /// stay as they were).
    spare_rng: Rng,
    /// While the engine is halted: steps left before the restart.
    halted_steps_left: Option<u64>,
    notes: Vec<String>,
}

impl Simulation {
    fn run(&mut self) -> Result<(), SimFailure> {
        for step in 0..self.config.step_count {
            self.harness.begin_step(step);
            self.safety_step()?;
        }
        self.liveness_tail()
    }

    fn safety_step(&mut self) -> Result<(), SimFailure> {
        let faults = self.config.faults;
        if self.harness.is_halted() {
            match self.halted_steps_left {
                Some(0) => {
                    self.halted_steps_left = None;
                    return self.restart();
                }
                Some(left) => self.halted_steps_left = Some(left - 1),
                None => {}
            }
            return self.commit_step();
        }
        if self.fault_rng.chance(faults.crash_per_mille) {
            return self.restart();
        }
        if self.fault_rng.chance(faults.snapshot_per_mille) {
            if faults.halt_per_mille > 0 && self.fault_rng.coin() {
                let count = self.fault_rng.range(1, 14);
                self.harness.directory().halt_in(count);
                self.harness.stats_mut().halts_scheduled += 1;
                self.harness.trace(TraceTag::Fault, 3 << 32 | count);
            }
            self.harness.snapshot_now()?;
            self.note_halt();
            return Ok(());
        }
        self.schedule_faults();
        self.commit_step()
    }

    fn schedule_faults(&mut self) {
        let faults = self.config.faults;
        let directory: &SimDirectory = self.harness.directory();
        let mut scheduled = Vec::new();
        if self.fault_rng.chance(faults.write_failure_per_mille) {
            let count = self.fault_rng.range(1, 3);
            directory.fail_write_in(count);
            scheduled.push((1, count));
        }
        if self.fault_rng.chance(faults.sync_failure_per_mille) {
            let count = self.fault_rng.range(1, 3);
            directory.fail_sync_in(count);
            scheduled.push((2, count));
        }
        if self.fault_rng.chance(faults.halt_per_mille) {
            let count = self.fault_rng.range(1, 12);
            directory.halt_in(count);
            scheduled.push((3, count));
        }
        for (kind, count) in scheduled {
            let stats = self.harness.stats_mut();
            match kind {
                1 => stats.write_failures_scheduled += 1,
                2 => stats.sync_failures_scheduled += 1,
                _ => stats.halts_scheduled += 1,
            }
            self.harness.trace(TraceTag::Fault, kind << 32 | count);
        }
    }

    /// Advances time, commits one group of random size, and hands replies to the clients.
    fn commit_step(&mut self) -> Result<(), SimFailure> {
        self.tend_spare();
        self.advance_time();
        let size = self.time_rng.below(u64::from(self.config.workload.group_size_max) + 1) as usize;
        let slot = self.harness.current_slot();
        let group = self.workload.next_group(size, self.harness.kernel(), self.harness.checker(), slot);
        // Half the groups of two or more go through the runner's overlapped stages as a pair.
        let split = (group.len() >= 2 && self.time_rng.coin())
            .then(|| self.time_rng.range(1, group.len() as u64 - 1) as usize);
        self.submit_split(&group, split)?;
        self.note_halt();
        Ok(())
    }

    /// Plays the runner's spare thread at random moments: asks the storage for a spare, and
    /// fills it and hands it back some steps later, so rollovers and young segments meet a
    /// spare that is ready, still filling, or absent, and faults and crashes hit its steps.
    fn tend_spare(&mut self) {
        match self.spare_rng.below(8) {
            0 | 1 => self.harness.prepare_spare(),
            2 => self.harness.fill_spare(),
            _ => {}
        }
    }

    fn submit(&mut self, group: &[(usize, SimRequest)]) -> Result<(), SimFailure> {
        self.submit_split(group, None)
    }

    fn submit_split(
        &mut self,
        group: &[(usize, SimRequest)],
        split: Option<usize>,
    ) -> Result<(), SimFailure> {
        let requests: Vec<SimRequest> = group.iter().map(|(_, request)| request.clone()).collect();
        let replies = self.harness.submit_split(&requests, split)?;
        for ((index, request), reply) in group.iter().zip(&replies) {
            self.workload.observe(*index, request, reply);
        }
        let waiting = self.workload.waiting_count();
        if waiting != self.harness.checker().pending_count() {
            return Err(SimFailure {
                step: self.harness.step(),
                reason: format!(
                    "simulator bookkeeping: {waiting} clients wait on a retry, the checker has {} pending",
                    self.harness.checker().pending_count()
                ),
            });
        }
        Ok(())
    }

    /// Starts the countdown to a restart when the engine has just halted.
    fn note_halt(&mut self) {
        if self.harness.is_halted() && self.halted_steps_left.is_none() {
            self.harness.stats_mut().engine_halts += 1;
            self.halted_steps_left = Some(self.fault_rng.range(0, 2));
        }
    }

    /// Moves the virtual clock forward by a random amount, held inside the retry window.
    fn advance_time(&mut self) {
        let slot_ms = self.config.engine.slot_duration_ms;
        let kernel = self.config.engine.kernel_config();
        let delta_ms = match self.time_rng.below(100) {
            0..25 => 0,
            25..60 => self.time_rng.range(1, slot_ms),
            60..85 => self.time_rng.range(1, 4 * slot_ms),
            85..95 => self.time_rng.range(1, kernel.dedupe_window_slots / 2 * slot_ms),
            _ => {
                self.time_rng.range(1, (kernel.reserve_ttl_slots_max + kernel.history_window_slots) * slot_ms)
            }
        };
        let now_ms = self.harness.now_ms();
        let mut target_ms = now_ms + delta_ms;
        if let Some(cap_slot) = self.harness.checker().retry_slot_cap() {
            target_ms = target_ms.min((cap_slot + 1) * slot_ms - 1).max(now_ms);
        }
        if target_ms != now_ms {
            self.harness.set_clock_ms(target_ms);
        }
    }

    /// Crashes (clean or torn) and recovers; then maybe resets the clock backwards, and maybe
    /// flips a durable bit and recovers again.
    fn restart(&mut self) -> Result<(), SimFailure> {
        let faults = self.config.faults;
        let crash = match self.harness.directory().unsynced_write_size_bytes() {
            Some(size) if self.fault_rng.chance(faults.torn_crash_per_mille) => {
                CrashKind::Torn { keep_bytes: self.fault_rng.range(0, size as u64) as usize }
            }
            _ => CrashKind::Clean,
        };
        self.halted_steps_left = None;
        let recovery_fault = if self.fault_rng.chance(faults.recovery_fault_per_mille) {
            let count = self.fault_rng.range(1, 4);
            Some(match self.fault_rng.below(3) {
                0 => RecoveryFault::FailWrite { count },
                1 => RecoveryFault::FailSync { count },
                _ => RecoveryFault::Halt { count },
            })
        } else {
            None
        };
        let clock_ms = if self.fault_rng.chance(faults.clock_step_back_per_mille) {
            Some(self.clock_after_reset())
        } else {
            None
        };
        let config = if self.fault_rng.chance(faults.capacity_change_per_mille) {
            Some(self.resized_config()?)
        } else {
            None
        };
        self.harness.restart_with(Restart { crash, recovery_fault, clock_ms, config })?;
        if self.fault_rng.chance(faults.bit_flip_per_mille) {
            return self.flip_bit();
        }
        Ok(())
    }

    /// New table capacities for a restart: each of half to twice the current one (so some
    /// changes shrink tables below what they hold, which the engine must refuse). Half the
    /// time a snapshot comes first, so the change lands on a log with nothing after the
    /// snapshot, and half the time on a log with records to replay under the old capacities.
    fn resized_config(&mut self) -> Result<EngineConfig, SimFailure> {
        if !self.harness.is_halted() && self.fault_rng.coin() {
            self.harness.snapshot_now()?;
            self.note_halt();
        }
        let mut config = *self.harness.config();
        let drawn = self.config.engine.kernel;
        let bundle_size_max = config.kernel.bundle_size_max;
        // Half to twice the current size, but within a quarter to four times the drawn size:
        // repeated resizes must not random-walk the tables to a size that makes the O(capacity)
        // invariant check dominate the run.
        let mut scale = |value: u32, drawn: u32| {
            let scaled = u64::from(value) * self.fault_rng.range(4, 16) / 8;
            scaled.clamp(u64::from(drawn / 4).max(1), u64::from(drawn) * 4) as u32
        };
        let kernel = &mut config.kernel;
        kernel.resource_count_max = scale(kernel.resource_count_max, drawn.resource_count_max);
        kernel.lease_count_max = scale(kernel.lease_count_max, drawn.lease_count_max);
        kernel.lease_member_count_max = scale(kernel.lease_member_count_max, drawn.lease_member_count_max)
            .max(kernel.lease_count_max)
            .max(bundle_size_max);
        kernel.operation_count_max = scale(kernel.operation_count_max, drawn.operation_count_max);
        kernel.expiration_bucket_length_max =
            scale(kernel.expiration_bucket_length_max, drawn.expiration_bucket_length_max)
                .min(kernel.lease_count_max);
        self.harness.trace(TraceTag::Fault, 5 << 32 | u64::from(kernel.lease_count_max));
        assert!(config.validate().is_ok(), "resized configuration is invalid: {:?}", config.validate());
        Ok(config)
    }

    /// A wall-clock reset while the node is down: back by up to a hundred slots, but never
    /// below the first attempt of a pending operation (its retry window is counted from there).
    fn clock_after_reset(&mut self) -> u64 {
        let slot_ms = self.config.engine.slot_duration_ms;
        let back_ms = self.fault_rng.range(1, 100 * slot_ms);
        let floor_ms = self.harness.checker().pending_first_slot_max().map_or(0, |slot: Slot| slot * slot_ms);
        self.harness.stats_mut().clock_steps_back += 1;
        self.harness.now_ms().saturating_sub(back_ms).max(floor_ms)
    }

    /// Flips one bit of a durable segment or snapshot byte and restarts.
    fn flip_bit(&mut self) -> Result<(), SimFailure> {
        let Some((file_name, offset, bit_index)) = self.choose_flip_target() else { return Ok(()) };
        let step = self.harness.step();
        match self.harness.flip_bit_and_restart(&file_name, offset, bit_index)? {
            FlipVerdict::Harmless => {}
            FlipVerdict::CorruptionDetected { message } => {
                self.log(format!("step {step}: flipped bit made recovery fail closed: {message}"));
            }
            FlipVerdict::NewestRecordDropped { lsn } => self.log(format!(
                "step {step}: flipped bit in the newest record (lsn {lsn}) was dropped as a torn tail \
                 (known limit, docs/recovery.md section 4)"
            )),
        }
        Ok(())
    }

    /// A file with durable bytes and a position in it: anywhere (a third of the time), inside
    /// the written bytes (a third), or around the end of the written bytes, where the newest
    /// record and the first unused bytes are (a third).
    fn choose_flip_target(&mut self) -> Option<(String, u64, u8)> {
        let directory = self.harness.directory();
        let candidates: Vec<(String, Vec<u8>)> = directory
            .file_names()
            .into_iter()
            .filter_map(|name| directory.durable_bytes(&name).map(|bytes| (name, bytes)))
            .filter(|(_, bytes)| !bytes.is_empty())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let (name, bytes) = &candidates[self.fault_rng.index(candidates.len())];
        let size = bytes.len() as u64;
        let written_end = bytes.iter().rposition(|byte| *byte != 0).map_or(0, |index| index as u64 + 1);
        let offset = match self.fault_rng.below(3) {
            0 => self.fault_rng.below(size),
            1 if written_end > 0 => self.fault_rng.below(written_end),
            _ => {
                let low = written_end.saturating_sub(48);
                let high = (written_end + 8).min(size - 1);
                self.fault_rng.range(low.min(high), high)
            }
        };
        let bit_index = self.fault_rng.below(8) as u8;
        Some((name.clone(), offset, bit_index))
    }

    fn liveness_tail(&mut self) -> Result<(), SimFailure> {
        let mut step = self.config.step_count;
        self.harness.begin_step(step);
        // A crash is the only way to clear a halt scheduled but not yet fired, so the tail
        // always starts from a fresh process.
        self.harness.cancel_scheduled_faults();
        self.harness.restart(CrashKind::Clean)?;
        let mut round = 0;
        while self.workload.waiting_count() > 0 {
            if round == LIVENESS_RETRY_ROUNDS_MAX {
                return Err(self.liveness_failure(&format!(
                    "{} operations still unresolved after {round} fault-free rounds",
                    self.workload.waiting_count()
                )));
            }
            round += 1;
            step += 1;
            self.harness.begin_step(step);
            let retries = self.workload.retries();
            self.submit(&retries)?;
            if self.harness.is_halted() {
                return Err(self.liveness_failure("the engine halted with every fault cancelled"));
            }
        }
        // Every reserved lease is due once the clock passes the longest TTL from now.
        let kernel_config = self.config.engine.kernel_config();
        let due_slot = self.harness.current_slot() + kernel_config.reserve_ttl_slots_max + 1;
        self.harness.set_clock_ms(due_slot * self.config.engine.slot_duration_ms);
        let reserved = u64::from(self.harness.kernel().reserved_lease_count());
        let rounds_max = reserved / u64::from(kernel_config.expirations_per_tick_max) + 2;
        for _ in 0..rounds_max {
            step += 1;
            self.harness.begin_step(step);
            self.submit(&[])?;
            if self.harness.is_halted() {
                return Err(self.liveness_failure("the engine halted with every fault cancelled"));
            }
            if self.harness.kernel().reserved_lease_count() == 0 {
                break;
            }
        }
        if self.harness.kernel().reserved_lease_count() != 0 {
            return Err(self.liveness_failure(&format!(
                "{} reserved leases still not expired {rounds_max} groups after every deadline passed",
                self.harness.kernel().reserved_lease_count()
            )));
        }
        step += 1;
        self.harness.begin_step(step);
        self.harness.restart(CrashKind::Clean)
    }

    fn log(&mut self, note: String) {
        if self.notes.len() < NOTE_COUNT_MAX {
            self.notes.push(note);
        }
    }

    fn liveness_failure(&self, reason: &str) -> SimFailure {
        SimFailure { step: self.harness.step(), reason: format!("liveness: {reason}") }
    }
}
