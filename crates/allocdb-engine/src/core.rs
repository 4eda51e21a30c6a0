//! The engine core: one synchronous, deterministic step function over the kernel and the log.
//!
//! [`EngineCore::commit_group`] is one group commit: it reads the clock once, proposes `expire`
//! commands for due leases (at most `expirations_per_tick_max`), answers exact retries from the
//! operation table without logging them, sequences every other write (next lsn, the group's
//! slot), appends them all to the log, makes them durable with one sync, and only then applies
//! them to the kernel and produces replies. Nothing is applied or acknowledged before it is
//! durable. Everything that arrived while the previous sync was in flight forms the next group,
//! which is what makes commands per sync grow with concurrency.
//!
//! Failure handling (semantics.md, "Idempotency and outcomes"): a failed append, write or sync
//! halts the engine. The group's writes are answered `storage_failure` and every later write
//! `engine_halted`, both indefinite: some of those records may be durable and will be
//! recovered on restart, when a retry with the same operation id returns the original result
//! (or executes once, if the record was lost). Reads fail closed while halted.
//!
//! The core has no threads and reads time only through [`Clock`], so the simulator drives it
//! step by step; the production runner (`runner.rs`) calls the same functions from one thread.

use std::borrow::Borrow;

use allocdb_core::{
    Command, DueLease, Kernel, KernelConfig, LogPosition, Lsn, SLOT_MAX, Slot, Submission,
    decode_kernel_config, decode_submission, encode_kernel_config, encode_submission,
};
use allocdb_storage::{
    LogDirectory, LogRecord, PreparedSpare, RecordKind, Recovery, RecoveryReport, ReplayProgress,
    SparePreparation, Storage, frame_size_bytes,
};

use crate::clock::{Clock, SlotClock};
use crate::config::EngineConfig;
use crate::error::OpenError;
use crate::group::{Group, Planned, PlannedRecord, Stage};
use crate::request::{RejectionCode, WriteReply, WriteRequest};

/// How many commands apart the apply loop's prefetch stages run (three stages: three times
/// this ahead, twice, once).
const PREFETCH_DISTANCE: usize = 4;

/// The record kind of one encoded submission (`allocdb_core::encode_submission`).
pub const COMMAND_RECORD_KIND: RecordKind = RecordKind(1);

/// The record kind of a kernel configuration (`allocdb_core::encode_kernel_config`): the first
/// record of every log, and every later change of configuration.
pub const CONFIG_RECORD_KIND: RecordKind = RecordKind(2);

/// Counters of what the core has done since it opened. Monotonic except the gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineCounters {
    /// Groups that logged at least one record.
    pub groups_committed: u64,
    /// Successful log syncs.
    pub syncs: u64,
    /// Records logged and applied (client writes and expires).
    pub records_applied: u64,
    /// Client writes committed through the log.
    pub writes_committed: u64,
    /// Client writes answered from the operation table without logging.
    pub retries_answered: u64,
    /// Expire commands proposed and applied.
    pub expirations_applied: u64,
    /// Leases still due after the last tick applied its full budget, counted up to one more
    /// tick's worth (gauge).
    pub expiration_backlog: u64,
    /// Records in the last committed group (gauge).
    pub last_group_size: u64,
    /// Snapshots installed.
    pub snapshots_installed: u64,
    /// Log bytes appended.
    pub log_bytes: u64,
    /// Duration of the last log sync, in nanoseconds of the clock's monotonic reading (gauge).
    pub last_sync_nanos: u64,
    /// Total time spent in log syncs, in nanoseconds.
    pub sync_nanos_total: u64,
    /// Log segments since opening that are zero-filled spares (renamed into place at a
    /// rollover, or moved onto while the first segment was young).
    pub spare_segments_used: u64,
}

/// What planning one record came to.
enum Appended {
    /// Buffered for the log; the reply comes when the group is applied.
    Logged,
    /// Answered without logging (retry, refusal, failure).
    Answered(WriteReply),
    /// The buffer is full and an earlier group's sync is outstanding: nothing was planned.
    WaitForSync,
}

/// The single-node engine, without threads. See the module documentation.
pub struct EngineCore<D: LogDirectory, C: Clock> {
    config: EngineConfig,
    kernel: Kernel,
    storage: Storage<D>,
    clock: C,
    slot_clock: SlotClock,
    halted: Option<String>,
    encode_buffer: Vec<u8>,
    due: Vec<DueLease>,
    /// The group [`EngineCore::commit_group`] reuses.
    serial_group: Option<Group<D::File>>,
    /// Groups planned with records and not applied yet, and the expires among them.
    unapplied_groups: u64,
    unapplied_expirations: u64,
    records_since_snapshot: u64,
    counters: EngineCounters,
    recovery_report: RecoveryReport,
}

impl<D: LogDirectory, C: Clock> EngineCore<D, C> {
    /// Recovers the kernel from `directory` (snapshot, then every record after it through the
    /// same apply code as live execution) and returns a core ready to commit.
    ///
    /// # Errors
    /// An invalid configuration; any storage recovery failure (corruption fails closed with
    /// file, offset and reason); a snapshot the kernel refuses; a record that does not decode
    /// or does not follow the snapshot.
    pub fn open(directory: D, clock: C, config: EngineConfig) -> Result<Self, OpenError> {
        EngineCore::open_reporting(directory, clock, config, None)
    }

    /// Like [`EngineCore::open`], passing the replay's [`ReplayProgress`] reports to
    /// `progress` as the log is read (`allocdb_storage::Recovery::replay_with_progress`). The
    /// reports depend on the log alone; deciding when to show one (a clock) is the caller's.
    ///
    /// # Errors
    /// As [`EngineCore::open`].
    pub fn open_with_progress(
        directory: D,
        clock: C,
        config: EngineConfig,
        progress: &mut dyn FnMut(&ReplayProgress),
    ) -> Result<Self, OpenError> {
        EngineCore::open_reporting(directory, clock, config, Some(progress))
    }

    fn open_reporting(
        directory: D,
        clock: C,
        config: EngineConfig,
        progress: Option<&mut dyn FnMut(&ReplayProgress)>,
    ) -> Result<Self, OpenError> {
        config.validate()?;
        let kernel_config = config.kernel_config();
        let recovery = Recovery::open(directory, config.storage)?;
        // The snapshot is restored under the configuration it was taken with; only the hash
        // seed (memory layout, never results) comes from this process.
        let mut kernel = match recovery.snapshot() {
            Some(image) => {
                let snapshot_error = |source| OpenError::Snapshot { file: image.file_name.clone(), source };
                let snapshot_config = Kernel::snapshot_config(&image.payload).map_err(snapshot_error)?;
                let restore_config = KernelConfig { hash_seed: kernel_config.hash_seed, ..snapshot_config };
                let kernel = Kernel::restore(restore_config, &image.payload).map_err(snapshot_error)?;
                if kernel.last_applied_lsn() != image.lsn {
                    return Err(OpenError::SnapshotLsnMismatch {
                        file: image.file_name.clone(),
                        file_lsn: image.lsn,
                        kernel_lsn: kernel.last_applied_lsn(),
                    });
                }
                Some(kernel)
            }
            None => None,
        };
        let mut members = Vec::new();
        let visit = |record: LogRecord<'_>| {
            replay_record(&mut kernel, kernel_config.hash_seed, &mut members, &record)
        };
        let replayed = match progress {
            Some(progress) => recovery.replay_with_progress(visit, progress),
            None => recovery.replay(visit),
        };
        let (storage, recovery_report) = replayed.map_err(OpenError::from_replay)?;
        let slot_clock = SlotClock::new(config.slot_duration_ms, recovery_report.last_slot);
        let records_since_snapshot = recovery_report.records_replayed;
        let kernel = match kernel {
            Some(kernel) => kernel,
            None => Kernel::new(kernel_config)?,
        };
        let mut core = EngineCore {
            encode_buffer: Vec::with_capacity(allocdb_core::SUBMISSION_SIZE_BYTES_MAX),
            due: Vec::with_capacity(config.kernel.expirations_per_tick_max as usize),
            serial_group: Some(Group::with_capacity(
                config.batch_size_max as usize + config.kernel.expirations_per_tick_max as usize,
            )),
            unapplied_groups: 0,
            unapplied_expirations: 0,
            config,
            kernel,
            storage,
            clock,
            slot_clock,
            halted: None,
            records_since_snapshot,
            counters: EngineCounters::default(),
            recovery_report,
        };
        core.log_configuration(kernel_config)?;
        Ok(core)
    }

    /// Makes `kernel_config` the configuration of record: a fresh log starts with it (lsn 1),
    /// and a changed one is logged before any write, so that replay decides every command
    /// under the configuration it first ran with. Capacities that no longer fit the state are
    /// refused and nothing is logged.
    fn log_configuration(&mut self, kernel_config: KernelConfig) -> Result<(), OpenError> {
        let fresh = self.kernel.last_applied_lsn() == 0;
        if !fresh && self.kernel.config().same_semantics(&kernel_config) {
            return Ok(());
        }
        let slot = self.current_slot();
        let position = LogPosition { lsn: self.storage.next_lsn(), request_slot: slot };
        let kernel = self.kernel.reconfigure(position, kernel_config).map_err(OpenError::Reconfigure)?;
        self.encode_buffer.clear();
        encode_kernel_config(&kernel_config, &mut self.encode_buffer);
        let record =
            LogRecord { lsn: position.lsn, slot, kind: CONFIG_RECORD_KIND, payload: &self.encode_buffer };
        self.storage.append(record).map_err(|error| OpenError::LogConfiguration(error.to_string()))?;
        self.storage.flush_and_sync().map_err(|error| OpenError::LogConfiguration(error.to_string()))?;
        self.kernel = kernel;
        Ok(())
    }

    /// The kernel, as of the last applied command.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// A spare log segment to fill on another thread, if the storage wants one (see
    /// `allocdb_storage::SparePreparation`). Filled spares go back through
    /// [`EngineCore::accept_spare`].
    pub fn spare_preparation(&mut self) -> Option<SparePreparation<D::File>> {
        self.storage.spare_preparation()
    }

    /// Takes back a spare segment after its filling, successful or not.
    pub fn accept_spare(&mut self, prepared: PreparedSpare<D::File>) {
        self.storage.accept_spare(prepared);
    }

    /// Why the engine halted, if it did.
    pub fn halt_cause(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    /// What the core has done since it opened.
    pub fn counters(&self) -> EngineCounters {
        EngineCounters { spare_segments_used: self.storage.spares_used(), ..self.counters }
    }

    /// How recovery started this core.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery_report
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The storage, for inspection (segment names, durable lsn).
    pub fn storage(&self) -> &Storage<D> {
        &self.storage
    }

    /// The slot the clock reads now (never below the last logged slot).
    pub fn current_slot(&mut self) -> Slot {
        let now_ms = self.clock.now_ms();
        self.slot_clock.slot_for(now_ms)
    }

    /// The clock, for the simulator to advance virtual time.
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }

    /// Commits one group: due expirations plus `requests`, one log write and one sync. Pushes
    /// exactly one reply per request onto `replies`, in order. The stages of
    /// [`EngineCore::begin_group`] to [`EngineCore::apply_group`] back to back.
    ///
    /// # Panics
    /// If a pipelined group is still unapplied (the two ways of committing do not mix).
    pub fn commit_group<R: Borrow<WriteRequest>>(&mut self, requests: &[R], replies: &mut Vec<WriteReply>) {
        assert_eq!(self.unapplied_groups, 0, "commit_group while a pipelined group is unapplied");
        let capacity = self.config.batch_size_max as usize;
        let mut group = self.serial_group.take().unwrap_or_else(|| Group::with_capacity(capacity));
        let first_reply = replies.len();
        self.begin_group(&mut group);
        let planned = self.plan_requests(&mut group, requests, replies);
        assert_eq!(planned, requests.len(), "with no sync outstanding every request is planned");
        self.write_group(&mut group);
        let sync_started = self.clock.monotonic_ns();
        group.sync();
        group.sync_nanos = self.clock.monotonic_ns().saturating_sub(sync_started);
        self.settle_group(&mut group);
        self.apply_group(&mut group, requests, &mut replies[first_reply..]);
        self.serial_group = Some(group);
    }

    /// Starts `group`: reads the clock for its slot and, unless a group with expirations is
    /// still unapplied, logs one expire for each due lease (up to the per-tick bound). A
    /// halted engine or an overflowing clock refuses the whole group.
    pub fn begin_group(&mut self, group: &mut Group<D::File>) {
        let slot = self.current_slot();
        group.reset(slot);
        if self.halted.is_some() {
            group.rejection = Some(RejectionCode::EngineHalted);
            return;
        }
        if slot > SLOT_MAX {
            group.rejection = Some(RejectionCode::SlotOverflow);
            return;
        }
        if self.unapplied_expirations == 0 {
            self.plan_expirations(group, slot);
        }
    }

    /// Plans `requests` into `group`: answers exact retries from the operation table and
    /// refusals at once, and buffers a log record for each of the others. Pushes one reply
    /// per planned request onto `replies` (a placeholder for the logged ones, filled in by
    /// [`EngineCore::apply_group`]). Returns how many requests were planned: fewer than all
    /// only when the log buffer is full while an earlier group's sync is outstanding; settle
    /// that group, then plan the rest.
    pub fn plan_requests<R: Borrow<WriteRequest>>(
        &mut self,
        group: &mut Group<D::File>,
        requests: &[R],
        replies: &mut Vec<WriteReply>,
    ) -> usize {
        assert!(matches!(group.stage, Stage::Planning), "plan_requests on a group that is not planning");
        if let Some(code) = group.rejection.or(self.halted.as_ref().map(|_| RejectionCode::EngineHalted)) {
            replies.extend(requests.iter().map(|_| WriteReply::Rejected(code)));
            group.request_count += requests.len();
            return requests.len();
        }
        let slot = self.current_slot();
        for (offset, request) in requests.iter().enumerate() {
            // The retry check probes the operation table at random: start the loads of the
            // next requests' slots now so the misses overlap instead of queueing.
            if let Some(ahead) = requests.get(offset + PREFETCH_DISTANCE)
                && let Some(key) = ahead.borrow().as_submission().operation
            {
                self.kernel.prefetch_operation(key);
            }
            let index = group.request_count;
            let reply = match self.plan_request(group, index, request.borrow(), slot) {
                Appended::Logged => WriteReply::Rejected(RejectionCode::StorageFailure),
                Appended::Answered(reply) => reply,
                Appended::WaitForSync => return offset,
            };
            replies.push(reply);
            group.request_count += 1;
        }
        requests.len()
    }

    /// Writes the group's records to the log (not yet durable). Afterwards the group's sync
    /// is to run ([`Group::sync`] or [`Group::take_sync`]), then [`EngineCore::settle_group`].
    pub fn write_group(&mut self, group: &mut Group<D::File>) {
        assert!(matches!(group.stage, Stage::Planning), "write_group on a group that is not planning");
        if group.records.is_empty() {
            group.stage = Stage::Done;
            return;
        }
        if self.halted.is_some() {
            group.stage = Stage::Failed;
            return;
        }
        match self.storage.write_buffered() {
            Ok(pending) => group.stage = Stage::Written(Some(pending)),
            Err(cause) => {
                self.halt(format!("log write failed: {cause}"));
                group.stage = Stage::Failed;
            }
        }
    }

    /// Records the outcome of the group's sync: durable, or a failure that halts the engine.
    /// Runs the sync here if nobody did.
    ///
    /// # Panics
    /// If the group's sync was taken out and not returned.
    pub fn settle_group(&mut self, group: &mut Group<D::File>) {
        let Stage::Written(pending) = &mut group.stage else { return };
        let Some(pending) = pending.take() else { panic!("settle_group while the group's sync is out") };
        match self.storage.complete_sync(pending) {
            Ok(_) => {
                self.counters.syncs += 1;
                self.counters.last_sync_nanos = group.sync_nanos;
                self.counters.sync_nanos_total += group.sync_nanos;
                group.stage = Stage::Durable;
            }
            Err(cause) => {
                self.halt(format!("log sync failed: {cause}"));
                group.stage = Stage::Failed;
            }
        }
    }

    /// Applies a settled group in log order and fills in its replies (`replies` holds the
    /// group's replies, one per planned request); a failed group's logged requests keep
    /// `storage_failure`.
    ///
    /// # Panics
    /// If the group is not settled, or its records are not durable.
    pub fn apply_group<R: Borrow<WriteRequest>>(
        &mut self,
        group: &mut Group<D::File>,
        requests: &[R],
        replies: &mut [WriteReply],
    ) {
        self.apply_group_answering(group, requests, replies, |_, _, _| {});
    }

    /// [`EngineCore::apply_group`], calling `answered(count, replies, kernel)` each time a
    /// logged request is applied: the first `count` replies are then final (requests are logged
    /// in planning order, and a request answered at planning time was final already), so the
    /// caller can answer them while the rest of the group is applied; `kernel` is the state
    /// with that request applied (to publish before answering). A failed group calls it not at
    /// all; its replies are final on return, like every reply.
    ///
    /// # Panics
    /// See [`EngineCore::apply_group`].
    pub fn apply_group_answering<R: Borrow<WriteRequest>>(
        &mut self,
        group: &mut Group<D::File>,
        requests: &[R],
        replies: &mut [WriteReply],
        answered: impl FnMut(usize, &[WriteReply], &Kernel),
    ) {
        assert_eq!(replies.len(), group.request_count, "one reply per planned request");
        if group.records.is_empty() {
            group.stage = Stage::Done;
            return;
        }
        assert!(
            matches!(group.stage, Stage::Durable | Stage::Failed),
            "apply_group on a group that is not settled"
        );
        self.unapplied_groups -= 1;
        self.unapplied_expirations -= group.expirations;
        if matches!(group.stage, Stage::Failed) {
            group.stage = Stage::Done;
            return;
        }
        let last_lsn = group.records.last().map_or(0, |record| record.lsn);
        assert!(last_lsn <= self.storage.durable_lsn(), "applying records that are not durable");
        self.apply_planned(group, requests, replies, answered);
        self.measure_expiration_backlog(group);
        group.stage = Stage::Done;
        self.maybe_snapshot();
    }

    /// Logs one expire for each due lease, up to the per-tick bound.
    fn plan_expirations(&mut self, group: &mut Group<D::File>, slot: Slot) {
        group.expirations_planned = true;
        let per_tick = self.config.kernel.expirations_per_tick_max;
        let mut due = std::mem::take(&mut self.due);
        self.kernel.due_expirations(slot, per_tick, &mut due);
        for lease in &due {
            let submission = Submission {
                operation: None,
                command: Command::Expire { lease_id: lease.lease_id, deadline_slot: lease.deadline_slot },
            };
            if !matches!(
                self.append(group, &submission, slot, Planned::Expire { due: *lease }),
                Appended::Logged
            ) {
                break;
            }
            group.expirations += 1;
        }
        self.due = due;
    }

    /// After a group that used its whole expiry budget, counts what is still due (up to one
    /// more tick's worth): the backlog gauge. Groups that did not look for due leases leave
    /// it as it is.
    fn measure_expiration_backlog(&mut self, group: &Group<D::File>) {
        if !group.expirations_planned {
            return;
        }
        let per_tick = self.config.kernel.expirations_per_tick_max;
        if group.expirations < u64::from(per_tick) {
            self.counters.expiration_backlog = 0;
            return;
        }
        self.kernel.due_expirations(group.slot, per_tick, &mut self.due);
        self.counters.expiration_backlog = self.due.len() as u64;
    }

    /// Answers a retry from the operation table, or appends the request to the log.
    fn plan_request(
        &mut self,
        group: &mut Group<D::File>,
        index: usize,
        request: &WriteRequest,
        slot: Slot,
    ) -> Appended {
        let submission = request.as_submission();
        if let Command::Reserve { resource_ids, .. } = submission.command
            && resource_ids.len() > allocdb_core::BUNDLE_SIZE_LIMIT as usize
        {
            return Appended::Answered(WriteReply::Rejected(RejectionCode::TooLarge));
        }
        if let Some(key) = submission.operation
            && let Some(outcome) = self.kernel.check_retry(key, &submission.command, slot)
            && outcome.from_retry_cache
        {
            self.counters.retries_answered += 1;
            return Appended::Answered(WriteReply::Committed(outcome));
        }
        if self.storage.next_lsn() == Lsn::MAX {
            return Appended::Answered(WriteReply::Rejected(RejectionCode::LsnExhausted));
        }
        self.append(group, &submission, slot, Planned::Request { index })
    }

    /// Encodes and buffers one record, writing and syncing early if the group outgrows the
    /// buffer and no earlier sync is outstanding.
    fn append(
        &mut self,
        group: &mut Group<D::File>,
        submission: &Submission<'_>,
        slot: Slot,
        planned: Planned,
    ) -> Appended {
        if self.halted.is_some() {
            return Appended::Answered(WriteReply::Rejected(RejectionCode::StorageFailure));
        }
        self.encode_buffer.clear();
        encode_submission(submission, &mut self.encode_buffer);
        let too_large = Appended::Answered(WriteReply::Rejected(RejectionCode::TooLarge));
        let Ok(payload_size) = u32::try_from(self.encode_buffer.len()) else { return too_large };
        if payload_size > self.config.storage.payload_size_bytes_max {
            return too_large;
        }
        let frame_size = frame_size_bytes(payload_size);
        if self.storage.buffered_size_bytes() + frame_size > self.config.storage.buffer_size_bytes_max {
            if self.storage.sync_outstanding() {
                return Appended::WaitForSync;
            }
            if let Err(cause) = self.storage.flush_and_sync() {
                self.halt(format!("log sync failed: {cause}"));
                return Appended::Answered(WriteReply::Rejected(RejectionCode::StorageFailure));
            }
        }
        let lsn = self.storage.next_lsn();
        let record = LogRecord { lsn, slot, kind: COMMAND_RECORD_KIND, payload: &self.encode_buffer };
        if let Err(cause) = self.storage.append(record) {
            self.halt(format!("log append failed: {cause}"));
            return Appended::Answered(WriteReply::Rejected(RejectionCode::StorageFailure));
        }
        self.counters.log_bytes += frame_size;
        if group.records.is_empty() {
            self.unapplied_groups += 1;
        }
        if let Planned::Expire { .. } = planned {
            self.unapplied_expirations += 1;
        }
        group.records.push(PlannedRecord { planned, lsn, slot });
        Appended::Logged
    }

    /// Applies the durable group in log order and fills in the replies.
    fn apply_planned<R: Borrow<WriteRequest>>(
        &mut self,
        group: &Group<D::File>,
        requests: &[R],
        replies: &mut [WriteReply],
        mut answered: impl FnMut(usize, &[WriteReply], &Kernel),
    ) {
        let submission_of = |planned: &Planned| match *planned {
            Planned::Request { index } => requests[index].borrow().as_submission(),
            Planned::Expire { due } => Submission {
                operation: None,
                command: Command::Expire { lease_id: due.lease_id, deadline_slot: due.deadline_slot },
            },
        };
        let records = &group.records;
        for (offset, record) in records.iter().enumerate() {
            // Warm the cache for the commands a few places ahead, in three dependent stages
            // (see allocdb_core's prefetch).
            if let Some(ahead) = records.get(offset + 3 * PREFETCH_DISTANCE) {
                self.kernel.prefetch_indexes(ahead.lsn, &submission_of(&ahead.planned));
            }
            if let Some(ahead) = records.get(offset + 2 * PREFETCH_DISTANCE) {
                self.kernel.prefetch_records(&submission_of(&ahead.planned));
            }
            if let Some(ahead) = records.get(offset + PREFETCH_DISTANCE) {
                self.kernel.prefetch_members(&submission_of(&ahead.planned));
            }
            let position = LogPosition { lsn: record.lsn, request_slot: record.slot };
            match record.planned {
                Planned::Request { index } => {
                    let outcome = self.kernel.apply(position, &requests[index].borrow().as_submission());
                    replies[index] = WriteReply::Committed(outcome);
                    self.counters.writes_committed += 1;
                    answered(index + 1, replies, &self.kernel);
                }
                Planned::Expire { due } => {
                    let command =
                        Command::Expire { lease_id: due.lease_id, deadline_slot: due.deadline_slot };
                    self.kernel.apply(position, &Submission { operation: None, command });
                    self.counters.expirations_applied += 1;
                }
            }
        }
        let applied = records.len() as u64;
        self.counters.records_applied += applied;
        self.counters.groups_committed += 1;
        self.counters.last_group_size = applied;
        self.records_since_snapshot += applied;
    }

    /// Installs a snapshot once enough records accumulated since the last one, releasing the
    /// log it covers. A failure halts the engine (the storage is poisoned).
    fn maybe_snapshot(&mut self) {
        if self.records_since_snapshot < self.config.snapshot_interval_records {
            return;
        }
        self.snapshot_now();
    }

    /// Installs a snapshot of the current state now.
    ///
    /// # Errors
    /// The storage failure, which also halts the engine.
    pub fn snapshot_now(&mut self) -> Option<String> {
        if self.halted.is_some() || self.kernel.last_applied_lsn() == self.storage.snapshot_lsn() {
            return None;
        }
        let bytes = self.kernel.encode_snapshot();
        match self.storage.install_snapshot(
            self.kernel.last_applied_lsn(),
            self.kernel.last_request_slot(),
            &bytes,
        ) {
            Ok(_) => {
                self.records_since_snapshot = 0;
                self.counters.snapshots_installed += 1;
                None
            }
            Err(cause) => {
                let message = format!("snapshot failed: {cause}");
                self.halt(message.clone());
                Some(message)
            }
        }
    }

    /// Halts the engine for a failure outside the core (the runner lost a sync). Writes are
    /// then answered like after a storage failure, until restart.
    pub fn halt_externally(&mut self, cause: &str) {
        self.halt(cause.to_owned());
    }

    fn halt(&mut self, cause: String) {
        if self.halted.is_none() {
            self.halted = Some(cause);
        }
    }
}

/// Applies one recovered record to the kernel, failing closed on anything unexpected. A log
/// without a snapshot must begin with a configuration record.
fn replay_record(
    kernel: &mut Option<Kernel>,
    hash_seed: u64,
    members: &mut Vec<allocdb_core::ResourceId>,
    record: &LogRecord<'_>,
) -> Result<(), crate::error::ReplayRecordError> {
    use crate::error::ReplayRecordError;
    let (last_lsn, last_slot) =
        kernel.as_ref().map_or((0, 0), |kernel| (kernel.last_applied_lsn(), kernel.last_request_slot()));
    if record.lsn != last_lsn + 1 {
        return Err(ReplayRecordError::LsnGap { expected: last_lsn + 1, found: record.lsn });
    }
    if record.slot < last_slot || record.slot > SLOT_MAX {
        return Err(ReplayRecordError::SlotOutOfOrder { previous: last_slot, found: record.slot });
    }
    let position = LogPosition { lsn: record.lsn, request_slot: record.slot };
    match record.kind {
        CONFIG_RECORD_KIND => {
            let config = KernelConfig { hash_seed, ..decode_kernel_config(record.payload)? };
            let current = match kernel.take() {
                Some(current) => current,
                None => Kernel::new(config)
                    .map_err(|error| ReplayRecordError::Configuration(error.to_string()))?,
            };
            let reconfigured = current.reconfigure(position, config);
            match reconfigured {
                Ok(reconfigured) => *kernel = Some(reconfigured),
                Err(error) => {
                    *kernel = Some(current);
                    return Err(ReplayRecordError::Configuration(error.to_string()));
                }
            }
        }
        COMMAND_RECORD_KIND => {
            let Some(kernel) = kernel.as_mut() else {
                return Err(ReplayRecordError::MissingConfiguration);
            };
            let submission = decode_submission(record.payload, members)?;
            kernel.apply(position, &submission);
        }
        other => return Err(ReplayRecordError::UnknownKind { kind: other.0 }),
    }
    Ok(())
}
