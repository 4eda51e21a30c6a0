//! The open storage of one node: group-commit appends to the segmented log, and snapshot
//! installation with release of the log it covers.
//!
//! Durability contract (what the engine may rely on):
//! - [`Storage::append`] only buffers. A record is durable once [`Storage::flush_and_sync`]
//!   returns `Ok`: every record appended before the call is then on disk. In the common case a
//!   flush is one `write` plus one `fdatasync`, whatever the number of records.
//! - The flush can be split so that the sync runs elsewhere: [`Storage::write_buffered`]
//!   writes the buffered records and returns a [`PendingSync`] (a second handle to the file
//!   and the lsn it covers), which any thread may [`PendingSync::sync`]; the records are
//!   durable once [`Storage::complete_sync`] accepts that pending sync. Appends may continue
//!   in between, but nothing is written while a sync is outstanding: if it failed, the kernel
//!   may have dropped the pages it covered, and later records on disk behind that hole would
//!   read as corruption, not as a torn tail.
//! - Records never straddle segments. When the next frame does not fit, the buffered bytes
//!   before it go to the current segment, which is synced; then the next segment is created,
//!   preallocated, synced and named durably (directory sync); then the rest is written to it.
//!   So only the last segment can ever end in a torn write.
//! - Any I/O failure poisons the storage: every later call fails with the first cause. After a
//!   failed `fdatasync` the kernel may have dropped the dirty pages, so retrying could report
//!   success for lost bytes; only recovery knows what is on disk.
//! - [`Storage::install_snapshot`] writes `snapshot-<lsn>.snap.tmp`, syncs it, renames it into
//!   place, syncs the directory, then removes every other snapshot file and then every segment
//!   whose records are all covered, oldest first, each followed by a directory sync. A crash
//!   at any point leaves either the old snapshot with the full log or the new snapshot with a
//!   log that reaches back to it.
//!
//! Invariants: `durable_lsn <= written_lsn <= next_lsn - 1`; the buffer holds exactly the
//! frames of lsns `written_lsn + 1 .. next_lsn`; `plan_offset` is where the next buffered frame will land in
//! the segment it will land in; the active segment is always the last entry of `segments`.

use std::collections::VecDeque;
use std::io;

use crate::config::StorageConfig;
use crate::error::{AppendError, FlushError, IoFailure, IoOperation, SnapshotError};
use crate::frame::{LogRecord, Lsn, Slot, encode_frame, frame_size_bytes};
use crate::io::{LogDirectory, LogFile};
use crate::names::{segment_name, snapshot_name, snapshot_temporary_name};
use crate::snapshot_file::{SNAPSHOT_FILE_HEADER_SIZE_BYTES, encode_header};
use crate::spare::{
    PreparedSpare, SPARE_SEGMENT_NAME, SparePreparation, SpareState, copy_records, young_segment_limit_bytes,
};

/// A log segment still on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentEntry {
    pub(crate) first_lsn: Lsn,
    pub(crate) name: String,
}

/// The segment appends go to.
#[derive(Debug)]
struct ActiveSegment<F> {
    file: F,
    name: String,
    /// End of the written records; everything after it is zeros.
    write_offset: u64,
    /// Whether the file was a zero-filled spare: such a segment is never moved onto another.
    zero_filled: bool,
}

/// A point in the buffer where the next segment begins.
#[derive(Clone, Copy, Debug)]
struct Rollover {
    buffer_offset: usize,
    first_lsn: Lsn,
}

/// What [`Storage::install_snapshot`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInstalled {
    /// The new snapshot file.
    pub file_name: String,
    /// Older snapshot files removed.
    pub snapshots_removed: u64,
    /// Log segments released because the snapshot covers all their records.
    pub segments_released: u64,
}

/// Records written to the log and not yet known durable, with what makes them durable: a
/// second handle to the segment they were written to. [`PendingSync::sync`] may run on any
/// thread; [`Storage::complete_sync`] then records the outcome. Dropping one without completing
/// it leaves its records not durable (a later flush or pending sync may still cover them).
#[derive(Debug)]
#[must_use = "the records are not durable until the sync is completed"]
pub struct PendingSync<F> {
    lsn: Lsn,
    slot: Slot,
    target: Option<SyncTarget<F>>,
    outcome: Option<io::Result<()>>,
}

/// The file a pending sync flushes.
#[derive(Debug)]
struct SyncTarget<F> {
    file: F,
    segment_first_lsn: Lsn,
}

impl<F: LogFile> PendingSync<F> {
    /// The last lsn this sync makes durable.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Whether a sync call is still to be made (false when the records were already synced
    /// while being written, or when there was nothing new to write).
    pub fn needs_sync(&self) -> bool {
        self.target.is_some() && self.outcome.is_none()
    }

    /// Runs the sync (`fdatasync`) and keeps its outcome for [`Storage::complete_sync`]. Does
    /// nothing if it already ran or is not needed.
    pub fn sync(&mut self) {
        if !self.needs_sync() {
            return;
        }
        if let Some(target) = &mut self.target {
            self.outcome = Some(target.file.sync_data());
        }
    }
}

/// Everything recovery hands over to build a [`Storage`].
pub(crate) struct Recovered<D: LogDirectory> {
    pub(crate) directory: D,
    pub(crate) config: StorageConfig,
    pub(crate) segments: Vec<SegmentEntry>,
    pub(crate) active_file: D::File,
    pub(crate) write_offset: u64,
    pub(crate) last_lsn: Lsn,
    pub(crate) last_slot: Slot,
    pub(crate) snapshot: Option<(Lsn, String)>,
    pub(crate) snapshot_files: Vec<String>,
}

/// The open storage of one node. Obtained from [`crate::Recovery::replay`].
#[derive(Debug)]
pub struct Storage<D: LogDirectory> {
    directory: D,
    config: StorageConfig,
    segments: VecDeque<SegmentEntry>,
    active: ActiveSegment<D::File>,
    buffer: Vec<u8>,
    rollovers: Vec<Rollover>,
    plan_offset: u64,
    plan_size_bytes: u64,
    next_lsn: Lsn,
    last_slot: Slot,
    written_lsn: Lsn,
    written_slot: Slot,
    durable_lsn: Lsn,
    durable_slot: Slot,
    /// A second handle to the active segment, kept between pending syncs.
    spare_sync_file: Option<SyncTarget<D::File>>,
    /// Lsn covered by the pending sync not yet completed, if one is out.
    outstanding_sync: Option<Lsn>,
    snapshot_lsn: Lsn,
    /// Every snapshot file on disk, the current one included.
    snapshot_files: Vec<String>,
    /// The next segment, prepared ahead of the rollover that needs it (see `crate::spare`).
    spare: SpareState<D::File>,
    /// Segments that are zero-filled spares: renamed into place at a rollover, or moved onto
    /// while young.
    spares_used: u64,
    poison: Option<String>,
}

impl<D: LogDirectory> Storage<D> {
    pub(crate) fn recovered(parts: Recovered<D>) -> Result<Storage<D>, IoFailure> {
        let Recovered {
            directory,
            config,
            segments,
            mut active_file,
            write_offset,
            last_lsn,
            last_slot,
            snapshot,
            snapshot_files,
        } = parts;
        let active_entry =
            segments.last().cloned().unwrap_or(SegmentEntry { first_lsn: 1, name: String::new() });
        let mut size_bytes =
            active_file.size_bytes().map_err(IoFailure::on(IoOperation::Read, &active_entry.name))?;
        // An empty active segment may be smaller than a frame (a crash before its allocation
        // was durable, or a smaller segment size in an older configuration). It cannot be
        // rolled away from without leaving an empty segment behind, so grow it now.
        if write_offset == 0 && size_bytes < config.segment_size_bytes {
            active_file
                .allocate(config.segment_size_bytes)
                .map_err(IoFailure::on(IoOperation::Allocate, &active_entry.name))?;
            active_file.sync_data().map_err(IoFailure::on(IoOperation::SyncData, &active_entry.name))?;
            size_bytes = config.segment_size_bytes;
        }
        assert!(write_offset <= size_bytes);
        let buffer_capacity = usize::try_from(config.buffer_size_bytes_max).unwrap_or(usize::MAX);
        Ok(Storage {
            directory,
            config,
            segments: segments.into(),
            active: ActiveSegment {
                file: active_file,
                name: active_entry.name,
                write_offset,
                zero_filled: false,
            },
            buffer: Vec::with_capacity(buffer_capacity),
            rollovers: Vec::new(),
            plan_offset: write_offset,
            plan_size_bytes: size_bytes,
            next_lsn: last_lsn + 1,
            last_slot,
            written_lsn: last_lsn,
            written_slot: last_slot,
            durable_lsn: last_lsn,
            durable_slot: last_slot,
            spare_sync_file: None,
            outstanding_sync: None,
            snapshot_lsn: snapshot.as_ref().map_or(0, |(lsn, _)| *lsn),
            snapshot_files,
            spare: SpareState::Absent,
            spares_used: 0,
            poison: None,
        })
    }

    /// Buffers `record` for the next [`Storage::flush_and_sync`]. Nothing is written yet.
    ///
    /// # Errors
    /// A poisoned storage, an lsn other than [`Storage::next_lsn`], a slot below
    /// [`Storage::last_slot`], a payload over the configured maximum, or a full buffer. On
    /// error nothing is buffered.
    ///
    /// # Panics
    /// If the storage's own segment planning is broken (a frame that fits no segment).
    pub fn append(&mut self, record: LogRecord<'_>) -> Result<(), AppendError> {
        if let Some(cause) = &self.poison {
            return Err(AppendError::Poisoned { cause: cause.clone() });
        }
        if record.lsn != self.next_lsn {
            return Err(AppendError::LsnOutOfSequence { expected: self.next_lsn, found: record.lsn });
        }
        if record.lsn == Lsn::MAX {
            return Err(AppendError::LsnExhausted { lsn: record.lsn });
        }
        if record.slot < self.last_slot {
            return Err(AppendError::SlotRegression { last: self.last_slot, found: record.slot });
        }
        let payload_size = u32::try_from(record.payload.len())
            .ok()
            .filter(|size| *size <= self.config.payload_size_bytes_max)
            .ok_or(AppendError::PayloadTooLarge {
                size_bytes: record.payload.len() as u64,
                size_bytes_max: u64::from(self.config.payload_size_bytes_max),
            })?;
        let frame_size = frame_size_bytes(payload_size);
        let buffered = self.buffer.len() as u64;
        if buffered + frame_size > self.config.buffer_size_bytes_max {
            return Err(AppendError::BufferFull {
                buffered_bytes: buffered,
                frame_size_bytes: frame_size,
                buffer_size_bytes_max: self.config.buffer_size_bytes_max,
            });
        }
        if self.plan_offset + frame_size > self.plan_size_bytes {
            // The planned segment always holds a record here: an empty active segment was
            // grown to the configured size, which fits the largest frame.
            assert!(self.plan_offset > 0, "a frame does not fit an empty segment");
            self.rollovers.push(Rollover { buffer_offset: self.buffer.len(), first_lsn: record.lsn });
            self.plan_offset = 0;
            self.plan_size_bytes = self.config.segment_size_bytes;
        }
        encode_frame(&record, &mut self.buffer);
        self.plan_offset += frame_size;
        self.next_lsn = record.lsn + 1;
        self.last_slot = record.slot;
        Ok(())
    }

    /// Writes every buffered record and makes it durable. Returns the durable lsn.
    ///
    /// # Errors
    /// A poisoned storage, or an I/O failure, which poisons it: the buffered records may or
    /// may not be on disk, and only recovery can tell.
    ///
    /// # Panics
    /// If the bytes written disagree with the planned segment layout (a bug in this module).
    pub fn flush_and_sync(&mut self) -> Result<Lsn, FlushError> {
        let pending = self.write_buffered()?;
        self.complete_sync(pending)
    }

    /// Writes every buffered record without waiting for it to be durable, and returns the
    /// sync that will make every record written so far durable. A buffer that crosses into a
    /// new segment is written and synced here in full (segment creation must be durable
    /// before records land in it), and the pending sync then has nothing left to do.
    ///
    /// # Errors
    /// A poisoned storage, or an I/O failure, which poisons it.
    ///
    /// # Panics
    /// If the bytes written disagree with the planned segment layout (a bug in this module).
    pub fn write_buffered(&mut self) -> Result<PendingSync<D::File>, FlushError> {
        if let Some(cause) = &self.poison {
            return Err(FlushError::Poisoned { cause: cause.clone() });
        }
        if let Some(lsn) = self.outstanding_sync {
            return Err(FlushError::SyncOutstanding { lsn });
        }
        if let Err(failure) = self.adopt_spare_while_young() {
            self.poison = Some(failure.to_string());
            return Err(failure.into());
        }
        let synced_inline = !self.rollovers.is_empty();
        let written = if synced_inline { self.write_buffer() } else { self.write_active_chunk() };
        if let Err(failure) = written {
            self.poison = Some(failure.to_string());
            return Err(failure.into());
        }
        assert_eq!(self.active.write_offset, self.plan_offset);
        self.buffer.clear();
        self.rollovers.clear();
        self.written_lsn = self.next_lsn - 1;
        self.written_slot = self.last_slot;
        if synced_inline {
            // Every chunk was synced, the last one through the active segment's handle, which
            // also covers earlier unsynced writes to that segment.
            self.mark_durable(self.written_lsn, self.written_slot);
        }
        let target = if self.written_lsn > self.durable_lsn {
            match self.take_sync_file() {
                Ok(target) => {
                    self.outstanding_sync = Some(self.written_lsn);
                    Some(target)
                }
                Err(failure) => {
                    self.poison = Some(failure.to_string());
                    return Err(failure.into());
                }
            }
        } else {
            None
        };
        Ok(PendingSync { lsn: self.written_lsn, slot: self.written_slot, target, outcome: None })
    }

    /// Records the outcome of `pending` (running its sync first if nobody did): on success its
    /// records are durable and the durable lsn is returned. A failed sync poisons the storage.
    ///
    /// # Errors
    /// A poisoned storage, or the sync's failure (which poisons it).
    pub fn complete_sync(&mut self, mut pending: PendingSync<D::File>) -> Result<Lsn, FlushError> {
        pending.sync();
        if pending.target.is_some() && self.outstanding_sync == Some(pending.lsn) {
            self.outstanding_sync = None;
        }
        if let Some(cause) = &self.poison {
            return Err(FlushError::Poisoned { cause: cause.clone() });
        }
        if let Some(Err(error)) = pending.outcome.take() {
            let file = pending
                .target
                .as_ref()
                .map_or_else(String::new, |target| self.segment_name_from(target.segment_first_lsn));
            let failure = IoFailure::on(IoOperation::SyncData, &file)(error);
            self.poison = Some(failure.to_string());
            return Err(failure.into());
        }
        self.mark_durable(pending.lsn, pending.slot);
        if let Some(target) = pending.target
            && self.spare_sync_file.is_none()
            && target.segment_first_lsn == self.active_first_lsn()
        {
            self.spare_sync_file = Some(target);
        }
        Ok(self.durable_lsn)
    }

    fn mark_durable(&mut self, lsn: Lsn, slot: Slot) {
        if lsn > self.durable_lsn {
            self.durable_lsn = lsn;
            self.durable_slot = slot;
        }
    }

    /// A second handle to the active segment: the kept one, or a new duplicate.
    fn take_sync_file(&mut self) -> Result<SyncTarget<D::File>, IoFailure> {
        let active_first_lsn = self.active_first_lsn();
        if let Some(target) = self.spare_sync_file.take()
            && target.segment_first_lsn == active_first_lsn
        {
            return Ok(target);
        }
        let file =
            self.active.file.duplicate().map_err(IoFailure::on(IoOperation::Duplicate, &self.active.name))?;
        Ok(SyncTarget { file, segment_first_lsn: active_first_lsn })
    }

    fn active_first_lsn(&self) -> Lsn {
        self.segments.back().map_or(1, |segment| segment.first_lsn)
    }

    fn segment_name_from(&self, first_lsn: Lsn) -> String {
        self.segments
            .iter()
            .find(|segment| segment.first_lsn == first_lsn)
            .map_or_else(|| crate::names::segment_name(first_lsn), |segment| segment.name.clone())
    }

    /// Writes the whole buffer to the active segment (no rollover in it), without a sync.
    fn write_active_chunk(&mut self) -> Result<(), IoFailure> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let active = &mut self.active;
        let offset = active.write_offset;
        active.file.write_all_at(offset, &self.buffer).map_err(IoFailure::at(
            IoOperation::Write,
            &active.name,
            offset,
        ))?;
        active.write_offset += self.buffer.len() as u64;
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), IoFailure> {
        let mut chunk_start = 0;
        for boundary in 0..=self.rollovers.len() {
            let rollover = self.rollovers.get(boundary).copied();
            let chunk_end = rollover.map_or(self.buffer.len(), |rollover| rollover.buffer_offset);
            let chunk = self.buffer.get(chunk_start..chunk_end).unwrap_or_default();
            assert_eq!(chunk.len(), chunk_end - chunk_start);
            if !chunk.is_empty() {
                let active = &mut self.active;
                let offset = active.write_offset;
                active.file.write_all_at(offset, chunk).map_err(IoFailure::at(
                    IoOperation::Write,
                    &active.name,
                    offset,
                ))?;
                active.file.sync_data().map_err(IoFailure::on(IoOperation::SyncData, &active.name))?;
                active.write_offset += chunk.len() as u64;
            }
            if let Some(rollover) = rollover {
                let next = self.next_segment(rollover.first_lsn)?;
                self.segments
                    .push_back(SegmentEntry { first_lsn: rollover.first_lsn, name: next.name.clone() });
                self.active = next;
            }
            chunk_start = chunk_end;
        }
        Ok(())
    }

    /// The empty segment starting at `first_lsn`: the ready spare renamed into place, else a
    /// new file. Either way the name and the size are durable when it returns.
    fn next_segment(&mut self, first_lsn: Lsn) -> Result<ActiveSegment<D::File>, IoFailure> {
        match std::mem::replace(&mut self.spare, SpareState::Absent) {
            SpareState::Ready(file) => {
                let name = segment_name(first_lsn);
                self.install_spare_as(&name)?;
                Ok(ActiveSegment { file, name, write_offset: 0, zero_filled: true })
            }
            state => {
                // A spare still being filled is kept for the rollover after this one.
                if matches!(state, SpareState::Preparing) {
                    self.spare = SpareState::Preparing;
                }
                let (file, name) =
                    create_segment(&self.directory, first_lsn, self.config.segment_size_bytes)?;
                Ok(ActiveSegment { file, name, write_offset: 0, zero_filled: false })
            }
        }
    }

    /// Moves a young active segment onto a ready spare (`crate::spare`, "Young segments"):
    /// copies its records into the spare, syncs them, renames the spare over the segment's
    /// name and syncs the directory. Runs only when every written record is durable, so the
    /// copy holds exactly the durable records. A failure before the rename only abandons the
    /// spare; a failed rename or directory sync is returned (the name's state is unknown).
    fn adopt_spare_while_young(&mut self) -> Result<(), IoFailure> {
        let young = self.active.write_offset <= young_segment_limit_bytes(self.config.segment_size_bytes);
        if !young
            || self.active.zero_filled
            || self.plan_size_bytes != self.config.segment_size_bytes
            || self.durable_lsn != self.written_lsn
        {
            return Ok(());
        }
        let spare = std::mem::replace(&mut self.spare, SpareState::Absent);
        let SpareState::Ready(mut file) = spare else {
            // Not ready: keep what there was (absent, preparing or failed).
            self.spare = spare;
            return Ok(());
        };
        if copy_records(&self.active.file, &mut file, self.active.write_offset).is_err() {
            drop(file);
            self.drop_spare_file();
            return Ok(());
        }
        let name = self.active.name.clone();
        self.install_spare_as(&name)?;
        self.active.file = file;
        self.active.zero_filled = true;
        // The kept second handle belongs to the replaced file: a sync through it would not
        // cover writes to the new one.
        self.spare_sync_file = None;
        Ok(())
    }

    /// Renames the ready spare's file to the segment name `name` and syncs the directory, so
    /// the name is durable on return; counts the spare as used.
    fn install_spare_as(&mut self, name: &str) -> Result<(), IoFailure> {
        self.directory.rename(SPARE_SEGMENT_NAME, name).map_err(IoFailure::on(IoOperation::Rename, name))?;
        self.directory.sync().map_err(IoFailure::on(IoOperation::SyncDirectory, name))?;
        self.spares_used += 1;
        Ok(())
    }

    /// A spare segment to fill on another thread ([`SparePreparation::fill`], then
    /// [`Storage::accept_spare`]), when none is ready or being filled and the storage is
    /// healthy. Creating it only names the file and reserves its space.
    pub fn spare_preparation(&mut self) -> Option<SparePreparation<D::File>> {
        if self.poison.is_some() || !matches!(self.spare, SpareState::Absent) {
            return None;
        }
        let created = self.directory.create(SPARE_SEGMENT_NAME).and_then(|mut file| {
            file.allocate(self.config.segment_size_bytes)?;
            Ok(file)
        });
        if let Ok(file) = created {
            self.spare = SpareState::Preparing;
            Some(SparePreparation { file, size_bytes: self.config.segment_size_bytes })
        } else {
            self.drop_spare_file();
            None
        }
    }

    /// Takes back a spare from [`Storage::spare_preparation`]: a filled one serves the next
    /// rollover; a failed one is removed, and the rollover creates its segment instead.
    pub fn accept_spare(&mut self, prepared: PreparedSpare<D::File>) {
        if !matches!(self.spare, SpareState::Preparing) {
            return;
        }
        if prepared.result.is_ok() {
            self.spare = SpareState::Ready(prepared.file);
        } else {
            drop(prepared.file);
            self.drop_spare_file();
        }
    }

    /// Spares used since opening: renamed into place at a rollover instead of creating the
    /// segment, or moved onto by a young active segment.
    pub fn spares_used(&self) -> u64 {
        self.spares_used
    }

    /// Whether a filled spare waits for the next rollover.
    pub fn spare_ready(&self) -> bool {
        matches!(self.spare, SpareState::Ready(_))
    }

    /// Forgets a spare that could not be made ready; none is asked for again until the next
    /// rollover. Its file is left to recovery if it cannot be removed now.
    fn drop_spare_file(&mut self) {
        self.spare = SpareState::Failed;
        let _ = self.directory.remove(SPARE_SEGMENT_NAME);
    }

    /// Durably installs a snapshot covering every record up to `lsn`, then removes older
    /// snapshots and the segments it covers (`docs/recovery.md`, "Snapshot installation").
    ///
    /// `slot` must be the slot of the record at `lsn` (the kernel's last request slot).
    ///
    /// # Errors
    /// A poisoned storage; an `lsn` not above the current snapshot or above the durable lsn;
    /// a `slot` above the durable slot; a payload over the maximum; or an I/O failure, which
    /// poisons the storage.
    pub fn install_snapshot(
        &mut self,
        lsn: Lsn,
        slot: Slot,
        payload: &[u8],
    ) -> Result<SnapshotInstalled, SnapshotError> {
        if let Some(cause) = &self.poison {
            return Err(SnapshotError::Poisoned { cause: cause.clone() });
        }
        if lsn <= self.snapshot_lsn {
            return Err(SnapshotError::NotNewer { current: self.snapshot_lsn, requested: lsn });
        }
        if lsn > self.durable_lsn {
            return Err(SnapshotError::AheadOfDurableLog {
                snapshot_lsn: lsn,
                durable_lsn: self.durable_lsn,
            });
        }
        if slot > self.durable_slot {
            return Err(SnapshotError::SlotAheadOfLog {
                snapshot_slot: slot,
                durable_slot: self.durable_slot,
            });
        }
        if payload.len() as u64 > self.config.snapshot_size_bytes_max {
            return Err(SnapshotError::TooLarge {
                size_bytes: payload.len() as u64,
                size_bytes_max: self.config.snapshot_size_bytes_max,
            });
        }
        match self.install_snapshot_steps(lsn, slot, payload) {
            Ok(installed) => Ok(installed),
            Err(failure) => {
                self.poison = Some(failure.to_string());
                Err(failure.into())
            }
        }
    }

    fn install_snapshot_steps(
        &mut self,
        lsn: Lsn,
        slot: Slot,
        payload: &[u8],
    ) -> Result<SnapshotInstalled, IoFailure> {
        let temporary = snapshot_temporary_name(lsn);
        let name = snapshot_name(lsn);
        let mut file =
            self.directory.create(&temporary).map_err(IoFailure::on(IoOperation::Create, &temporary))?;
        file.write_all_at(0, &encode_header(lsn, slot, payload)).map_err(IoFailure::at(
            IoOperation::Write,
            &temporary,
            0,
        ))?;
        file.write_all_at(SNAPSHOT_FILE_HEADER_SIZE_BYTES, payload).map_err(IoFailure::at(
            IoOperation::Write,
            &temporary,
            SNAPSHOT_FILE_HEADER_SIZE_BYTES,
        ))?;
        file.sync_data().map_err(IoFailure::on(IoOperation::SyncData, &temporary))?;
        self.directory.rename(&temporary, &name).map_err(IoFailure::on(IoOperation::Rename, &temporary))?;
        self.sync_directory(&name)?;
        self.snapshot_lsn = lsn;
        // The new snapshot is durable: older ones (and unusable ones recovery skipped) are
        // no longer needed, and must go before the log that could bridge them is released.
        let mut snapshots_removed = 0;
        for old in std::mem::take(&mut self.snapshot_files) {
            if old != name {
                self.directory.remove(&old).map_err(IoFailure::on(IoOperation::Remove, &old))?;
                self.sync_directory(&old)?;
                snapshots_removed += 1;
            }
        }
        self.snapshot_files = vec![name.clone()];
        let mut segments_released = 0;
        // A segment is covered when its successor starts at or before lsn + 1. The active
        // segment has no successor and is never released. Oldest first keeps the log a
        // contiguous suffix at every step.
        while self.segments.get(1).is_some_and(|next| next.first_lsn <= lsn + 1) {
            let Some(oldest) = self.segments.front() else { break };
            let oldest_name = oldest.name.clone();
            self.directory.remove(&oldest_name).map_err(IoFailure::on(IoOperation::Remove, &oldest_name))?;
            self.sync_directory(&oldest_name)?;
            self.segments.pop_front();
            segments_released += 1;
        }
        Ok(SnapshotInstalled { file_name: name, snapshots_removed, segments_released })
    }

    fn sync_directory(&self, about: &str) -> Result<(), IoFailure> {
        self.directory.sync().map_err(IoFailure::on(IoOperation::SyncDirectory, about))
    }

    /// The lsn the next appended record must carry.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// Slot of the last appended record (buffered or durable), or the recovered last slot.
    /// The next record's slot may not be lower.
    pub fn last_slot(&self) -> Slot {
        self.last_slot
    }

    /// Last lsn known durable (0 if none).
    pub fn durable_lsn(&self) -> Lsn {
        self.durable_lsn
    }

    /// Slot of the last durable record (or the recovered last slot).
    pub fn durable_slot(&self) -> Slot {
        self.durable_slot
    }

    /// Lsn of the current snapshot (0 if none).
    pub fn snapshot_lsn(&self) -> Lsn {
        self.snapshot_lsn
    }

    /// Bytes of encoded frames waiting for the next flush.
    pub fn buffered_size_bytes(&self) -> u64 {
        self.buffer.len() as u64
    }

    /// Records waiting for the next flush (buffered, not yet written).
    pub fn buffered_record_count(&self) -> u64 {
        self.next_lsn - 1 - self.written_lsn
    }

    /// Whether a pending sync has not been completed yet (writes wait for it).
    pub fn sync_outstanding(&self) -> bool {
        self.outstanding_sync.is_some()
    }

    /// Last lsn written to the log file (durable or not).
    pub fn written_lsn(&self) -> Lsn {
        self.written_lsn
    }

    /// The first failure that stopped this storage, if any.
    pub fn poison_cause(&self) -> Option<&str> {
        self.poison.as_deref()
    }

    /// Names of the log segments on disk, oldest first; the last one is being appended to.
    pub fn segment_names(&self) -> Vec<String> {
        self.segments.iter().map(|segment| segment.name.clone()).collect()
    }

    /// The configuration in force.
    pub fn config(&self) -> &StorageConfig {
        &self.config
    }
}

/// Creates, preallocates and durably names the segment starting at `first_lsn`.
///
/// Order: the allocation is synced before the name is, so a durable name always comes with
/// a durable size; the caller writes records only after this returns.
pub(crate) fn create_segment<D: LogDirectory>(
    directory: &D,
    first_lsn: Lsn,
    size_bytes: u64,
) -> Result<(D::File, String), IoFailure> {
    let name = segment_name(first_lsn);
    let mut file = directory.create(&name).map_err(IoFailure::on(IoOperation::Create, &name))?;
    file.allocate(size_bytes).map_err(IoFailure::on(IoOperation::Allocate, &name))?;
    file.sync_data().map_err(IoFailure::on(IoOperation::SyncData, &name))?;
    directory.sync().map_err(IoFailure::on(IoOperation::SyncDirectory, &name))?;
    Ok((file, name))
}
