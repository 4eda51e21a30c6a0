//! The harness: one engine over a simulated disk and a virtual clock, with the history checker
//! wired into every call.
//!
//! The random driver (`simulation.rs`) and the scripted scenario tests both drive the node
//! through this type, so both get the same checks: after every group, snapshot and recovery the
//! kernel's invariants and the checker's rules are verified, and any violation comes back as a
//! [`SimFailure`] naming the step. The harness owns the process lifecycle: a restart drops the
//! engine (the dead process), crashes the simulated directory (losing unsynced bytes, or
//! tearing the last write), and opens a new engine on the same directory. A scheduled write or
//! sync failure that fires during recovery itself is a failed start: the harness crashes again
//! and retries, a bounded number of times.

use allocdb_core::{Kernel, KernelConfig, LogPosition, Lsn, Slot};
use allocdb_engine::{
    Clock, EngineConfig, EngineCore, Group, ManualClock, OpenError, WriteReply, WriteRequest,
};
use allocdb_storage::{RecoveryError, SimDirectory, SimFile, SparePreparation, decode_frame};

use crate::checker::{Checker, GroupContext};
use crate::request::SimRequest;
use crate::stats::RunStats;
use crate::trace::{TraceDigest, TraceTag};

/// The engine type under simulation.
pub type SimCore = EngineCore<SimDirectory, ManualClock>;

/// Two groups through the engine's stages in the order the production runner uses (see
/// [`Harness::submit_split`]); pushes the replies of both, in request order.
fn pipelined_pair(
    core: &mut SimCore,
    (first, second): (&[&WriteRequest], &[&WriteRequest]),
    replies: &mut Vec<WriteReply>,
) {
    let capacity = first.len().max(second.len());
    let mut first_group = Group::with_capacity(capacity);
    let mut second_group = Group::with_capacity(capacity);
    let mut second_replies = Vec::with_capacity(second.len());
    core.begin_group(&mut first_group);
    let planned = core.plan_requests(&mut first_group, first, replies);
    assert_eq!(planned, first.len(), "nothing is outstanding before the first group");
    core.write_group(&mut first_group);
    core.begin_group(&mut second_group);
    let mut planned = core.plan_requests(&mut second_group, second, &mut second_replies);
    // The first group's sync reports back; the rest of a second group that filled the buffer
    // can then be planned (writing early if it must).
    core.settle_group(&mut first_group);
    if planned < second.len() {
        planned += core.plan_requests(&mut second_group, &second[planned..], &mut second_replies);
    }
    assert_eq!(planned, second.len(), "with no sync outstanding every request is planned");
    core.write_group(&mut second_group);
    core.apply_group(&mut first_group, first, replies);
    core.settle_group(&mut second_group);
    core.apply_group(&mut second_group, second, &mut second_replies);
    replies.append(&mut second_replies);
}

/// How many times a start may fail on an injected I/O fault before the run fails. Each
/// injected fault fires once, and at most three (a write, a sync and a halt) are pending at once.
const OPEN_ATTEMPTS_MAX: u32 = 4;

/// A check failed (or the node misbehaved) at `step`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimFailure {
    /// The step at which it was detected.
    pub step: u64,
    /// What went wrong, with the values involved.
    pub reason: String,
}

/// How the process dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// Power cut: everything unsynced is lost.
    Clean,
    /// Power cut during the last unsynced write: its first `keep_bytes` bytes reach the disk.
    Torn {
        /// Bytes of the last write that survive.
        keep_bytes: usize,
    },
}

/// How a restart goes: see [`Harness::restart_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restart {
    /// How the process dies.
    pub crash: CrashKind,
    /// A fault aimed inside the recovery.
    pub recovery_fault: Option<RecoveryFault>,
    /// The wall clock the new process starts with (it may be behind the old one: a clock reset).
    /// Resetting the clock between processes, never inside one, keeps every slot the dead
    /// process handed out for a pending operation a lower bound of the slot its record gets.
    pub clock_ms: Option<u64>,
    /// New table capacities (nothing else may change), larger or smaller. The engine logs the
    /// change as a configuration record before any write, or refuses capacities too small for
    /// its state, in which case the harness reopens with the old configuration.
    pub config: Option<EngineConfig>,
}

/// A fault scheduled between a crash and the recovery that follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryFault {
    /// The `count`-th write from now fails.
    FailWrite {
        /// Which write (1 = the next).
        count: u64,
    },
    /// The `count`-th sync from now fails.
    FailSync {
        /// Which sync (1 = the next).
        count: u64,
    },
    /// The process stops at the `count`-th mutation from now.
    Halt {
        /// Which mutation (1 = the next).
        count: u64,
    },
}

/// What recovery made of a flipped bit in durable bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlipVerdict {
    /// Recovery came back with exactly the state before the flip (the bit was in a segment
    /// the snapshot covers, in space recovery treats as a torn tail of zeros, or in a snapshot
    /// it could fall back from over a bridging log).
    Harmless,
    /// Recovery failed closed with this error.
    CorruptionDetected {
        /// The error.
        message: String,
    },
    /// The flip damaged the newest record, which recovery cannot tell from a torn write and
    /// dropped as one: the documented known limit of `docs/recovery.md` §4.
    NewestRecordDropped {
        /// The record that was dropped.
        lsn: Lsn,
    },
}

/// One engine, its disk, its clock, and the checker. See the module documentation.
pub struct Harness {
    config: EngineConfig,
    directory: SimDirectory,
    clock: ManualClock,
    core: Option<SimCore>,
    checker: Checker,
    trace: TraceDigest,
    step: u64,
    stats: RunStats,
    /// Whether a flipped bit was recovered from harmlessly and its damage may still be on disk.
    damage_tolerated: bool,
    /// A spare segment handed out by the storage and not yet filled (the runner's spare
    /// thread, played at random moments by the simulation).
    spare: Option<SparePreparation<SimFile>>,
}

impl Harness {
    /// Opens a fresh node on an empty simulated disk with the clock at `clock_start_ms`.
    ///
    /// # Errors
    /// The engine refuses the configuration or the empty directory.
    pub fn new(config: EngineConfig, clock_start_ms: u64) -> Result<Harness, SimFailure> {
        let directory = SimDirectory::new();
        let clock = ManualClock::new(clock_start_ms);
        let core = EngineCore::open(directory.clone(), clock.clone(), config)
            .map_err(|error| SimFailure { step: 0, reason: format!("fresh node failed to open: {error}") })?;
        let mut harness = Harness {
            checker: Checker::new(&config),
            config,
            directory,
            clock,
            core: Some(core),
            trace: TraceDigest::default(),
            step: 0,
            stats: RunStats::default(),
            damage_tolerated: false,
            spare: None,
        };
        harness.check()?;
        Ok(harness)
    }

    /// Asks the storage for a spare segment, if none is out (`allocdb_storage`'s `spare`).
    pub fn prepare_spare(&mut self) {
        if self.spare.is_none() {
            self.spare = self.core_mut().spare_preparation();
            self.trace.add(TraceTag::Spare, u64::from(self.spare.is_some()));
        }
    }

    /// Fills the spare segment that is out, if any, and hands it back: what the runner's
    /// spare thread does, here at a step the simulation chose, so injected faults and crashes
    /// can hit the fill too.
    pub fn fill_spare(&mut self) {
        if let Some(preparation) = self.spare.take() {
            let prepared = preparation.fill();
            self.core_mut().accept_spare(prepared);
            self.stats.spares_filled += 1;
            self.trace.add(TraceTag::Spare, 2);
        }
    }

    /// Marks the start of step `step` (named in failures and folded into the trace).
    pub fn begin_step(&mut self, step: u64) {
        self.step = step;
        self.stats.steps = step + 1;
        self.trace.add(TraceTag::Step, step);
    }

    /// The current step.
    pub fn step(&self) -> u64 {
        self.step
    }

    fn fail(&self, reason: impl Into<String>) -> SimFailure {
        SimFailure { step: self.step, reason: reason.into() }
    }

    fn core(&self) -> &SimCore {
        running(self.core.as_ref())
    }

    fn core_mut(&mut self) -> &mut SimCore {
        let Some(core) = &mut self.core else { panic!("the harness always holds an engine between calls") };
        core
    }

    /// The running engine's kernel.
    pub fn kernel(&self) -> &Kernel {
        self.core().kernel()
    }

    /// The engine configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The simulated disk, to schedule faults on.
    pub fn directory(&self) -> &SimDirectory {
        &self.directory
    }

    /// The history checker.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// What happened so far.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// Mutable statistics, for the driver's own counters.
    pub fn stats_mut(&mut self) -> &mut RunStats {
        &mut self.stats
    }

    /// The trace digest so far.
    pub fn trace_digest(&self) -> u64 {
        self.trace.value()
    }

    /// Folds a driver event into the trace.
    pub fn trace(&mut self, tag: TraceTag, value: u64) {
        self.trace.add(tag, value);
    }

    /// Whether the engine halted after a storage failure (it answers `engine_halted` until
    /// restarted).
    pub fn is_halted(&self) -> bool {
        self.core().halt_cause().is_some()
    }

    /// The slot the next group will carry.
    pub fn current_slot(&mut self) -> Slot {
        self.core_mut().current_slot()
    }

    /// The virtual wall clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Sets the virtual wall clock. Setting it backwards inside a process while an operation
    /// is pending voids the retry-window reasoning of the checker; use [`Restart::clock_ms`]
    /// for clock resets.
    pub fn set_clock_ms(&mut self, now_ms: u64) {
        self.trace.add(TraceTag::Clock, now_ms);
        self.clock.set_ms(now_ms);
    }

    /// Commits one group, checks every reply and the state after it.
    ///
    /// # Errors
    /// Any check that fails.
    pub fn submit(&mut self, requests: &[SimRequest]) -> Result<Vec<WriteReply>, SimFailure> {
        self.submit_split(requests, None)
    }

    /// Commits `requests` as two groups split at `split`, through the stages the production
    /// runner overlaps: the second group is planned while the first is written but not
    /// applied, the first settles before the second is written, and the first is applied while
    /// the second's sync is still out. The checker sees one group. `None` (or a split that
    /// leaves a side empty) commits one group.
    ///
    /// # Errors
    /// Any check that fails.
    pub fn submit_split(
        &mut self,
        requests: &[SimRequest],
        split: Option<usize>,
    ) -> Result<Vec<WriteReply>, SimFailure> {
        let group = GroupContext { slot: self.current_slot(), clock_ms: self.clock.now_ms() };
        self.checker.before_group(requests).map_err(|message| self.fail(message))?;
        let references: Vec<&WriteRequest> = requests.iter().map(|request| &request.request).collect();
        let mut replies = Vec::with_capacity(requests.len());
        match split.filter(|split| (1..requests.len()).contains(split)) {
            Some(split) => {
                pipelined_pair(self.core_mut(), references.split_at(split), &mut replies);
                self.stats.pipelined_pairs += 1;
            }
            None => self.core_mut().commit_group(&references, &mut replies),
        }
        self.stats.groups += 1;
        self.stats.requests += requests.len() as u64;
        for reply in &replies {
            self.trace.add_reply(reply);
        }
        let core = running(self.core.as_ref());
        self.checker
            .after_group(core.kernel(), requests, &replies, group)
            .map_err(|message| SimFailure { step: self.step, reason: message })?;
        self.check()?;
        Ok(replies)
    }

    /// Asks the engine for a snapshot now; returns the failure message if it failed (the
    /// engine has then halted).
    ///
    /// # Errors
    /// Any check that fails afterwards.
    pub fn snapshot_now(&mut self) -> Result<Option<String>, SimFailure> {
        let result = self.core_mut().snapshot_now();
        self.trace.add(TraceTag::Snapshot, u64::from(result.is_some()));
        self.check()?;
        Ok(result)
    }

    /// Checks the kernel and the history as they stand.
    ///
    /// # Errors
    /// The first violation.
    pub fn check(&mut self) -> Result<(), SimFailure> {
        let core = running(self.core.as_ref());
        self.checker
            .check_state(core.kernel())
            .map_err(|message| SimFailure { step: self.step, reason: message })
    }

    /// Makes every scheduled write or sync failure unreachable (the liveness phase).
    pub fn cancel_scheduled_faults(&self) {
        self.directory.fail_write_in(u64::MAX);
        self.directory.fail_sync_in(u64::MAX);
    }

    /// Kills the process, crashes the disk, and recovers: acknowledged writes must all be
    /// there, slots must not go back, and without a storage failure the state must be exactly
    /// the one before the crash.
    ///
    /// # Errors
    /// Recovery fails, or any check fails.
    pub fn restart(&mut self, crash: CrashKind) -> Result<(), SimFailure> {
        self.restart_with(Restart { crash, recovery_fault: None, clock_ms: None, config: None })
    }

    /// [`Harness::restart`] with the options of [`Restart`]: a fault scheduled after the crash
    /// so that it fires inside recovery (a start that fails on it is retried after another
    /// crash), a wall-clock reset while the node is down, and new table capacities.
    ///
    /// # Errors
    /// Recovery fails for another reason, or any check fails.
    ///
    /// # Panics
    /// If a new configuration changes anything but capacities (the checker's windows and the
    /// workload's bundles would no longer match).
    pub fn restart_with(&mut self, restart: Restart) -> Result<(), SimFailure> {
        let Restart { crash, recovery_fault, clock_ms, config } = restart;
        let slot = self.current_slot();
        self.checker
            .check_acknowledged(running(self.core.as_ref()).kernel(), slot)
            .map_err(|message| self.fail(format!("before a crash, {message}")))?;
        if let Some(config) = &config {
            assert_eq!(
                capacities_cleared(config),
                capacities_cleared(&self.config),
                "a restart may change table capacities only"
            );
        }
        let before = self.stop(config.is_some());
        let previous_config = self.config;
        if let Some(config) = config {
            self.config = config;
            self.stats.capacity_changes += 1;
        }
        let kept = match crash {
            CrashKind::Clean => self.directory.crash().map(|()| 0),
            CrashKind::Torn { keep_bytes } => self.directory.crash_with_torn_write(keep_bytes),
        }
        .map_err(|error| self.fail(format!("simulated directory failed to crash: {error}")))?;
        self.stats.restarts += 1;
        if matches!(crash, CrashKind::Torn { .. }) {
            self.stats.torn_crashes += 1;
        }
        self.trace.add(TraceTag::Recovery, kept as u64);
        if let Some(clock_ms) = clock_ms {
            self.set_clock_ms(clock_ms);
        }
        if let Some(fault) = recovery_fault {
            self.stats.recovery_faults_scheduled += 1;
            let (kind, count) = match fault {
                RecoveryFault::FailWrite { count } => (1, count),
                RecoveryFault::FailSync { count } => (2, count),
                RecoveryFault::Halt { count } => (3, count),
            };
            match fault {
                RecoveryFault::FailWrite { count } => self.directory.fail_write_in(count),
                RecoveryFault::FailSync { count } => self.directory.fail_sync_in(count),
                RecoveryFault::Halt { count } => self.directory.halt_in(count),
            }
            self.trace.add(TraceTag::Fault, kind << 32 | count);
        }
        let core = match self.open_core() {
            Ok(core) => core,
            Err(OpenError::Reconfigure(error)) if previous_config != self.config => {
                self.refused_configuration(&before, previous_config, &error.to_string())?
            }
            Err(error) => {
                return Err(self.fail(format!("recovery failed after a crash (no media fault): {error}")));
            }
        };
        self.start(core, &before)
    }

    /// The engine refused new capacities as too small for its state. That is right only if
    /// the state really does not fit (checked when the disk holds exactly the old state); the
    /// operator then goes back to the old configuration, which must open.
    fn refused_configuration(
        &mut self,
        before: &BeforeCrash,
        previous_config: EngineConfig,
        error: &str,
    ) -> Result<SimCore, SimFailure> {
        if !before.halted
            && let Some(snapshot) = &before.snapshot
            && Kernel::restore(self.config.kernel_config(), snapshot).is_ok()
        {
            return Err(self.fail(format!("the engine refused capacities that hold its state: {error}")));
        }
        self.stats.capacity_changes_refused += 1;
        self.trace.add(TraceTag::Fault, 6 << 32);
        self.config = previous_config;
        self.directory
            .crash()
            .map_err(|crash_error| self.fail(format!("simulated crash failed: {crash_error}")))?;
        self.open_core().map_err(|open_error| {
            self.fail(format!("the old configuration failed to open after a refused change: {open_error}"))
        })
    }

    /// Restarts with one bit of durable bytes flipped: `bit_index` of the byte at `offset` of
    /// `file_name`. Recovery must fail closed, or come back with exactly the state before, or
    /// (the documented limit) drop exactly the newest record as a torn tail. In the first and
    /// last case the operator restores the directory from a copy taken before the flip, and the
    /// node must then come back exactly as it was; in the harmless case the run goes on from
    /// the damaged-but-recovered directory.
    ///
    /// # Errors
    /// Recovery accepts damage silently, or any check fails.
    pub fn flip_bit_and_restart(
        &mut self,
        file_name: &str,
        offset: u64,
        bit_index: u8,
    ) -> Result<FlipVerdict, SimFailure> {
        let before = self.stop(false);
        let backup = durable_copy(&self.directory);
        self.directory
            .flip_bit(file_name, offset, bit_index)
            .map_err(|error| self.fail(format!("flip of {file_name} at {offset} failed: {error}")))?;
        self.directory.crash().map_err(|error| self.fail(format!("simulated crash failed: {error}")))?;
        self.stats.restarts += 1;
        self.stats.bit_flips += 1;
        self.trace.add(TraceTag::MediaFault, offset);
        let verdict = match self.open_core() {
            Ok(core) => match self.judge_recovery_after_flip(core, &before, &backup, file_name, offset)? {
                None => {
                    // The run goes on from this directory: a snapshot recovery fell back from
                    // stays until the next installation, and a covered segment until its
                    // release, so a later flip may fail closed naming them instead.
                    self.damage_tolerated = true;
                    return Ok(FlipVerdict::Harmless);
                }
                Some(verdict) => verdict,
            },
            Err(OpenError::Recovery(error)) => {
                // Damage an earlier flip left behind (tolerated then) may be what fails now.
                if !self.damage_tolerated {
                    check_fail_closed_reason(&error, file_name, offset).map_err(|reason| {
                        self.fail(format!(
                            "a flipped bit in {file_name} at offset {offset}: {reason}: {error}"
                        ))
                    })?;
                }
                self.stats.corruptions_detected += 1;
                FlipVerdict::CorruptionDetected { message: error.to_string() }
            }
            Err(error) => {
                return Err(self.fail(format!(
                    "a flipped bit in {file_name} at offset {offset} got past the storage checksums: {error}"
                )));
            }
        };
        self.directory = backup;
        let core = self
            .open_core()
            .map_err(|error| self.fail(format!("recovery from the pre-flip copy failed: {error}")))?;
        self.start(core, &before)?;
        Ok(verdict)
    }

    /// Classifies a successful recovery after a flip; installs the engine and returns `None`
    /// when it recovered exactly the state before.
    fn judge_recovery_after_flip(
        &mut self,
        core: SimCore,
        before: &BeforeCrash,
        backup: &SimDirectory,
        file_name: &str,
        offset: u64,
    ) -> Result<Option<FlipVerdict>, SimFailure> {
        let recovered_lsn = core.recovery_report().last_lsn;
        if recovered_lsn == before.last_applied_lsn && core.kernel().state_digest() == before.state_digest {
            self.start(core, before)?;
            return Ok(None);
        }
        let report = core.recovery_report();
        // The flip must lie in what recovery cut: from the torn frame's start to the end of the
        // file (everything after a torn frame is zeros). Not just in `size_bytes`: a start that
        // failed on an injected fault may already have zeroed part of the frame. When that
        // start failed after cutting (say, logging the configuration again), the start that
        // succeeded found a clean end and reports no torn tail; then the flip must lie in the
        // newest record's frame of the pre-flip copy.
        let dropped_as_torn_tail = report
            .torn_tail
            .as_ref()
            .is_some_and(|torn| torn.file_name == file_name && offset >= torn.offset)
            || newest_frame_start(backup, file_name, before.last_applied_lsn)
                .is_some_and(|start| offset >= start);
        if dropped_as_torn_tail && recovered_lsn + 1 == before.last_applied_lsn {
            core.kernel().check_invariants().map_err(|violation| {
                self.fail(format!("kernel invariant after a dropped record: {violation}"))
            })?;
            self.stats.newest_records_dropped += 1;
            return Ok(Some(FlipVerdict::NewestRecordDropped { lsn: before.last_applied_lsn }));
        }
        Err(self.fail(format!(
            "a flipped bit in {file_name} at offset {offset} changed the recovered state without \
             failing closed: lsn {} -> {recovered_lsn}, report {report:?}",
            before.last_applied_lsn
        )))
    }

    /// Drops the engine (the process dies) and returns what it had applied; with
    /// `keep_state`, also its encoded state, to judge a change of configuration against.
    fn stop(&mut self, keep_state: bool) -> BeforeCrash {
        let Some(core) = self.core.take() else { panic!("the harness always holds an engine between calls") };
        self.stats.snapshots_installed += core.counters().snapshots_installed;
        self.stats.spare_segments_used += core.counters().spare_segments_used;
        // The spare thread dies with the process; recovery removes what it left.
        self.spare = None;
        let kernel = core.kernel();
        BeforeCrash {
            halted: core.halt_cause().is_some(),
            last_applied_lsn: kernel.last_applied_lsn(),
            last_request_slot: kernel.last_request_slot(),
            state_digest: kernel.state_digest(),
            kernel_config: *kernel.config(),
            snapshot: keep_state.then(|| kernel.encode_snapshot()),
        }
    }

    /// Opens the engine, crashing and retrying when an injected write or sync failure or a
    /// halt fires during recovery (a failed start, not a defect).
    fn open_core(&mut self) -> Result<SimCore, OpenError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match EngineCore::open(self.directory.clone(), self.clock.clone(), self.config) {
                Err(error) if attempt < OPEN_ATTEMPTS_MAX && is_injected_io_failure(&error) => {
                    self.stats.failed_starts += 1;
                    self.trace.add(TraceTag::Fault, u64::from(attempt));
                    if let Err(crash_error) = self.directory.crash() {
                        panic!("simulated directory failed to crash: {crash_error}");
                    }
                }
                result => return result,
            }
        }
    }

    /// Installs a recovered engine and checks it against what the dead one had.
    fn start(&mut self, core: SimCore, before: &BeforeCrash) -> Result<(), SimFailure> {
        let report = core.recovery_report();
        self.trace.add(TraceTag::Recovery, report.last_lsn);
        self.trace.add(TraceTag::Recovery, report.last_slot);
        self.trace.add(TraceTag::Recovery, report.torn_tail.as_ref().map_or(u64::MAX, |torn| torn.offset));
        if report.torn_tail.is_some() {
            self.stats.torn_tails_repaired += 1;
        }
        self.stats.records_replayed += report.records_replayed;
        let kernel = core.kernel();
        self.trace.add(TraceTag::State, kernel.state_digest());
        // A restart with another configuration logs a configuration record after recovery;
        // compare what the disk held (the report) and judge the state only without one.
        let recovered_lsn = report.last_lsn;
        let reconfigured = kernel.last_applied_lsn() != recovered_lsn;
        if recovered_lsn < before.last_applied_lsn {
            return Err(self.fail(format!(
                "recovery lost applied records: lsn {} before the crash, {} after",
                before.last_applied_lsn, recovered_lsn
            )));
        }
        if !reconfigured
            && kernel.last_applied_lsn() == before.last_applied_lsn
            && kernel.state_digest() != before.state_digest
        {
            return Err(self.fail("recovered the same lsn as before the crash but a different state"));
        }
        if !kernel.config().same_semantics(&self.config.kernel_config()) {
            return Err(self.fail(format!(
                "the engine runs {:?}, not the configuration it was opened with",
                kernel.config()
            )));
        }
        if reconfigured {
            self.check_reconfigured(kernel, recovered_lsn, before)?;
        }
        if !before.halted && recovered_lsn != before.last_applied_lsn {
            return Err(self.fail(format!(
                "a healthy engine crashed at lsn {} but recovered lsn {}: records appeared",
                before.last_applied_lsn, recovered_lsn
            )));
        }
        if kernel.last_request_slot() < before.last_request_slot
            || report.last_slot < before.last_request_slot
        {
            return Err(self.fail(format!(
                "slot went backwards across a restart: {} before, {} after (report {})",
                before.last_request_slot,
                kernel.last_request_slot(),
                report.last_slot
            )));
        }
        self.core = Some(core);
        let slot = self.current_slot();
        let core = running(self.core.as_ref());
        self.checker
            .after_recovery(core.kernel(), slot)
            .map_err(|message| SimFailure { step: self.step, reason: message })?;
        self.check()
    }
}

impl Harness {
    /// A node opened with new capacities logged one configuration record after what it
    /// recovered. When the disk held exactly the dead process's state, the new state must be
    /// that state moved into the new tables (`Kernel::reconfigure` at the record's position).
    fn check_reconfigured(
        &self,
        kernel: &Kernel,
        recovered_lsn: Lsn,
        before: &BeforeCrash,
    ) -> Result<(), SimFailure> {
        if kernel.last_applied_lsn() != recovered_lsn + 1 {
            return Err(self.fail(format!(
                "recovered lsn {recovered_lsn}, but the engine starts at lsn {}: more than one record logged at open",
                kernel.last_applied_lsn()
            )));
        }
        let Some(snapshot) = &before.snapshot else {
            return Err(self.fail("a configuration record was logged at a restart that changed nothing"));
        };
        if recovered_lsn != before.last_applied_lsn {
            return Ok(());
        }
        let position = LogPosition { lsn: recovered_lsn + 1, request_slot: kernel.last_request_slot() };
        let expected = Kernel::restore(before.kernel_config, snapshot)
            .and_then(|old| old.reconfigure(position, self.config.kernel_config()))
            .map_err(|error| {
                self.fail(format!("the old state does not move into the new tables: {error}"))
            })?;
        if expected.state_digest() != kernel.state_digest() {
            return Err(
                self.fail("the state after a change of capacities is not the old state in the new tables")
            );
        }
        Ok(())
    }
}

/// The engine of a harness between calls (it is only ever absent inside a restart). A free
/// function so that callers can borrow the engine and the checker at the same time.
fn running(core: Option<&SimCore>) -> &SimCore {
    let Some(core) = core else { panic!("the harness always holds an engine between calls") };
    core
}

/// What the dead process had applied.
struct BeforeCrash {
    halted: bool,
    last_applied_lsn: Lsn,
    last_request_slot: Slot,
    state_digest: u64,
    kernel_config: KernelConfig,
    /// The encoded state, kept when the restart changes the configuration.
    snapshot: Option<Vec<u8>>,
}

/// `config` with every table capacity zeroed: two configurations that differ only in
/// capacities compare equal.
fn capacities_cleared(config: &EngineConfig) -> EngineConfig {
    let mut cleared = *config;
    cleared.kernel.resource_count_max = 0;
    cleared.kernel.lease_count_max = 0;
    cleared.kernel.lease_member_count_max = 0;
    cleared.kernel.operation_count_max = 0;
    cleared.kernel.expiration_bucket_length_max = 0;
    cleared
}

/// A new simulated directory holding the durable files of `directory` (names and bytes):
/// the operator's backup. Scheduled faults and counters are not copied.
/// Where the frame of record `lsn` starts in the durable bytes of log segment `file_name`, if
/// that segment holds it.
fn newest_frame_start(directory: &SimDirectory, file_name: &str, lsn: Lsn) -> Option<u64> {
    let bytes = directory.durable_bytes(file_name)?;
    let mut start = 0_usize;
    while let Some((record, size_bytes)) = bytes.get(start..).and_then(|rest| decode_frame(rest).ok()) {
        if record.lsn == lsn {
            return Some(start as u64);
        }
        start = start.checked_add(usize::try_from(size_bytes).ok()?)?;
    }
    None
}

fn durable_copy(directory: &SimDirectory) -> SimDirectory {
    let copy = SimDirectory::new();
    for name in directory.file_names() {
        if let Some(bytes) = directory.durable_bytes(&name) {
            copy.put_durably(&name, &bytes);
        }
    }
    copy
}

/// Recovery that fails closed on one flipped bit must say where (`docs/recovery.md`): damage
/// in the flipped segment at or before the flipped offset, the flipped snapshot unusable, or —
/// when the damaged newest record was cut as a torn tail although a snapshot covers it — a log
/// that ends before the snapshot.
fn check_fail_closed_reason(error: &RecoveryError, file_name: &str, offset: u64) -> Result<(), &'static str> {
    match error {
        RecoveryError::Corruption { file, offset: damage_offset, .. } => {
            if file != file_name {
                return Err("recovery reported damage in another file");
            }
            if *damage_offset > offset {
                return Err("recovery reported damage after the flipped byte");
            }
            Ok(())
        }
        RecoveryError::SnapshotUnusable { file, .. } if file == file_name => Ok(()),
        RecoveryError::LogBehindSnapshot { .. } if file_name.starts_with("log-") => Ok(()),
        _ => Err("recovery failed closed for a reason a flipped bit cannot cause"),
    }
}

/// Whether an open failed on a write or sync failure the simulator scheduled.
fn is_injected_io_failure(error: &OpenError) -> bool {
    let message = match error {
        OpenError::Recovery(RecoveryError::Io(failure)) => failure.source.to_string(),
        // Opening writes too: the log's configuration record (first start, or a change).
        OpenError::LogConfiguration(message) => message.clone(),
        _ => return false,
    };
    message.contains("simulated write failure")
        || message.contains("simulated sync failure")
        || message.contains("simulated halt")
}
