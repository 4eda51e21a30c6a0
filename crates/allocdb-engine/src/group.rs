//! One group commit on its way through the engine: begun, planned, written, synced, settled,
//! applied.
//!
//! [`crate::EngineCore::commit_group`] runs the stages back to back. The production runner
//! spreads them out so that the disk and the processor work at the same time: while group N
//! syncs (on the sync thread), the engine thread applies and answers group N-1 and plans
//! group N+1 from the messages arriving meanwhile.
//!
//! Rules that keep the split equivalent to the serial commit (and the results a function of the
//! log alone):
//! - Groups are begun, written, settled and applied in the same order, one write at a time;
//!   nothing is written while the previous group's sync is outstanding (the storage refuses).
//! - A group is applied only once its own sync reported success and every earlier group was
//!   applied; a failed sync halts the engine and every group not yet applied is answered
//!   `storage_failure` (indefinite).
//! - Planning may run while an earlier group is written but not applied: an exact retry of a
//!   command in that group is then logged again, and the kernel answers it from the operation
//!   table when it is applied, exactly as for two copies inside one group.
//! - Expirations are planned only when no unapplied group holds any, so a due lease is never
//!   proposed twice; an expire whose lease a previous group ended applies as `noop`.
//!
//! A group keeps its vectors between uses, so the steady state allocates nothing here.

use allocdb_core::{DueLease, Lsn, Slot};
use allocdb_storage::{LogFile, PendingSync};

use crate::request::RejectionCode;

/// What one planned record is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Planned {
    Request { index: usize },
    Expire { due: DueLease },
}

/// One record of a group, in log order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlannedRecord {
    pub(crate) planned: Planned,
    pub(crate) lsn: Lsn,
    pub(crate) slot: Slot,
}

/// Where a group is.
#[derive(Debug)]
pub(crate) enum Stage<F> {
    /// Begun; records are being planned into the storage's buffer.
    Planning,
    /// Written; the sync is to be run (it may be taken out to run on another thread).
    Written(Option<PendingSync<F>>),
    /// The sync reported success: the records are durable and may be applied.
    Durable,
    /// Storage failed for this group or an earlier one: its records are never applied.
    Failed,
    /// Applied (or had nothing to apply).
    Done,
}

/// A group commit between [`crate::EngineCore::begin_group`] and
/// [`crate::EngineCore::apply_group`]. See the module documentation.
#[derive(Debug)]
pub struct Group<F> {
    pub(crate) records: Vec<PlannedRecord>,
    /// Requests planned so far (answered or logged); request indexes count from 0.
    pub(crate) request_count: usize,
    /// The slot the group began in; its expirations carry it.
    pub(crate) slot: Slot,
    /// Set when the whole group is refused at its start (halted engine, slot overflow).
    pub(crate) rejection: Option<RejectionCode>,
    /// Expire records planned (counted against the engine's unapplied expirations).
    pub(crate) expirations: u64,
    /// Whether this group looked for due leases (false when an unapplied group had some).
    pub(crate) expirations_planned: bool,
    pub(crate) stage: Stage<F>,
    pub(crate) sync_nanos: u64,
}

impl<F: LogFile> Group<F> {
    /// An empty group with room for `records` records before it grows.
    pub fn with_capacity(records: usize) -> Group<F> {
        Group {
            records: Vec::with_capacity(records),
            request_count: 0,
            slot: 0,
            rejection: None,
            expirations: 0,
            expirations_planned: false,
            stage: Stage::Done,
            sync_nanos: 0,
        }
    }

    pub(crate) fn reset(&mut self, slot: Slot) {
        self.records.clear();
        self.request_count = 0;
        self.slot = slot;
        self.rejection = None;
        self.expirations = 0;
        self.expirations_planned = false;
        self.stage = Stage::Planning;
        self.sync_nanos = 0;
    }

    /// Records planned for the log (client writes and expires).
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Whether the group was written and its sync still has to run.
    pub fn needs_sync(&self) -> bool {
        matches!(&self.stage, Stage::Written(Some(pending)) if pending.needs_sync())
    }

    /// Takes the written group's sync out, to run it elsewhere ([`PendingSync::sync`]); it
    /// must come back through [`Group::return_sync`] before the group is settled.
    pub fn take_sync(&mut self) -> Option<PendingSync<F>> {
        match &mut self.stage {
            Stage::Written(pending) => pending.take(),
            _ => None,
        }
    }

    /// Gives back a sync taken with [`Group::take_sync`], with how long it took.
    pub fn return_sync(&mut self, pending: PendingSync<F>, sync_nanos: u64) {
        assert!(matches!(self.stage, Stage::Written(None)), "no sync was taken out of this group");
        self.stage = Stage::Written(Some(pending));
        self.sync_nanos = sync_nanos;
    }

    /// Gives up on a sync taken out and lost (the thread running it stopped): nothing can tell
    /// whether the records are durable, so the group fails like a failed sync.
    pub fn abandon_sync(&mut self) {
        if matches!(self.stage, Stage::Written(None)) {
            self.stage = Stage::Failed;
        }
    }

    /// How long the group's sync took, as reported by whoever ran it.
    pub fn sync_nanos(&self) -> u64 {
        self.sync_nanos
    }

    /// Runs the sync here, if it is still to run.
    pub fn sync(&mut self) {
        if let Stage::Written(Some(pending)) = &mut self.stage {
            pending.sync();
        }
    }
}
