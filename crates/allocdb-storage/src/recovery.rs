//! Recovery: from a directory of segments and snapshots to a verified starting state, the
//! records after it, and a [`Storage`] ready to append (`docs/recovery.md`).
//!
//! Two steps, so the engine can restore its kernel between them:
//! 1. [`Recovery::open`] reads names only plus the snapshot it chooses: the newest valid
//!    snapshot, or an older one (or the empty state) only if the newest is unusable, the
//!    configuration allows falling back, and the log still holds every record after the older
//!    one. It checks that the log reaches back to the chosen snapshot.
//! 2. [`Recovery::replay`] reads every needed segment in order, verifies each frame and the
//!    sequence (lsn exactly previous + 1, slot never lower, no gap or overlap between
//!    segments), hands records after the snapshot to the visitor, and classifies the end of
//!    the last segment. Only then does it change anything on disk: it zeroes a torn tail,
//!    removes leftover temporary snapshot files, and makes sure an active segment exists.
//!
//! Progress: [`Recovery::replay_with_progress`] also reports how far it has read, as a
//! [`ReplayProgress`]: once before the first segment, whenever another
//! [`REPLAY_PROGRESS_STEP_BYTES`] of a segment were scanned, and at the end of every segment,
//! so the last report has `bytes_scanned == bytes_total`. The reports depend on the log's bytes
//! alone (no clock): whoever shows them to a person decides how often, at the edge.
//!
//! Invariant: recovery never drops a record that could have been acknowledged. The only
//! bytes it removes are a torn tail (never synced, so never acknowledged) and temporary
//! snapshot files (never renamed into place). Everything else it does not understand fails
//! closed with an error naming the file, the offset and the reason.

use crate::config::{SEGMENT_SIZE_BYTES_LIMIT, SnapshotFallback, StorageConfig};
use crate::defect::{FallbackRefusal, SnapshotDefect};
use crate::error::{IoFailure, IoOperation, RecoveryError, ReplayError};
use crate::frame::{FRAME_HEADER_SIZE_BYTES, LogRecord, Lsn, Slot, frame_size_bytes};
use crate::io::{LogDirectory, LogFile};
use crate::names::{self, FileKind};
use crate::scan::{Cursor, ScanStop, SegmentEnd, SegmentPosition, scan_segment};
use crate::snapshot_file::{ReadFailure, SnapshotImage, read_snapshot};
use crate::storage::{Recovered, SegmentEntry, Storage, create_segment};

/// How the recovered state was assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryStart {
    /// No snapshot and no records: an empty node.
    Fresh,
    /// No snapshot; records replayed from lsn 1.
    LogOnly,
    /// A snapshot and no records after it.
    SnapshotOnly,
    /// A snapshot and records after it.
    SnapshotAndLog,
}

/// A torn tail found and removed by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment it was in (always the last one).
    pub file_name: String,
    /// Offset of the torn frame, now the end of the log.
    pub offset: u64,
    /// How many written bytes were zeroed.
    pub size_bytes: u64,
}

/// A snapshot recovery could not use and fell back from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedSnapshot {
    /// The snapshot file (left in place for inspection; the next snapshot removes it).
    pub file_name: String,
    /// What is wrong with it.
    pub defect: SnapshotDefect,
}

/// What recovery found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// How the state was assembled.
    pub start: RecoveryStart,
    /// Lsn of the snapshot used, if any.
    pub snapshot_lsn: Option<Lsn>,
    /// Records handed to the visitor (those after the snapshot).
    pub records_replayed: u64,
    /// Records read and verified but already covered by the snapshot.
    pub records_skipped: u64,
    /// Last lsn of the recovered state (0 if empty); the next append must use this + 1.
    pub last_lsn: Lsn,
    /// Highest slot ever logged as far as the disk shows (last record or snapshot, whichever
    /// is higher); the engine must never log a lower one.
    pub last_slot: Slot,
    /// The torn tail removed, if any.
    pub torn_tail: Option<TornTail>,
    /// Snapshots that were unusable, newest first (empty unless recovery fell back).
    pub rejected_snapshots: Vec<RejectedSnapshot>,
    /// Log segments read.
    pub segments_read: u64,
    /// Leftover temporary snapshot files removed.
    pub temporary_files_removed: u64,
}

/// Segment bytes scanned between two [`ReplayProgress`] reports inside one segment. Small enough
/// that a report comes many times a second at any realistic replay speed, large enough that
/// reporting costs nothing next to replaying a mebibyte of records.
pub const REPLAY_PROGRESS_STEP_BYTES: u64 = 1 << 20;

/// How far a replay has read (see [`Recovery::replay_with_progress`]). A function of the log's
/// bytes alone: the same directory gives the same reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayProgress {
    /// Bytes of the segment files scanned so far: the frames read, and at the end of each
    /// segment the zeros after its last frame. Never decreases; at most `bytes_total`.
    pub bytes_scanned: u64,
    /// Total size of the segment files the replay reads. The last segment is preallocated, so
    /// its unwritten tail counts too: the final stretch goes faster than the rest.
    pub bytes_total: u64,
    /// Records handed to the visitor so far (those after the snapshot).
    pub records_replayed: u64,
    /// Segments scanned completely so far.
    pub segments_scanned: u64,
    /// Segments the replay reads.
    pub segments_total: u64,
}

/// The first step of recovery: the snapshot is chosen and the segment set is checked.
#[derive(Debug)]
pub struct Recovery<D: LogDirectory> {
    directory: D,
    config: StorageConfig,
    snapshot: Option<SnapshotImage>,
    rejected_snapshots: Vec<RejectedSnapshot>,
    snapshot_files: Vec<String>,
    temporary_files: Vec<String>,
    segments: Vec<SegmentEntry>,
    start_index: usize,
    /// Lsn of the newest snapshot file, valid or not: the log must reach it.
    required_lsn: Option<(Lsn, String)>,
}

impl<D: LogDirectory> Recovery<D> {
    /// Lists `directory`, chooses the snapshot and checks the log reaches back to it.
    ///
    /// # Errors
    /// An invalid configuration, an I/O failure, a malformed name, an unusable newest snapshot
    /// that cannot be fallen back from, or a log that starts after the chosen snapshot.
    ///
    /// # Panics
    /// Never: a snapshot at the largest lsn is rejected as a defect before it is chosen.
    pub fn open(directory: D, config: StorageConfig) -> Result<Recovery<D>, RecoveryError> {
        config.validate()?;
        let listing = list_files(&directory)?;
        let log_first_lsn = listing.segments.first().map(|segment| segment.first_lsn);
        let (snapshot, rejected_snapshots) =
            choose_snapshot(&directory, &config, &listing.snapshots, log_first_lsn)?;
        let base_lsn = snapshot.as_ref().map_or(0, |image| image.lsn);
        // A snapshot at `Lsn::MAX` is rejected as a defect when read, so this cannot overflow.
        assert!(base_lsn < Lsn::MAX);
        let next_lsn = base_lsn + 1;
        let start_index = match listing.segments.first() {
            None => 0,
            Some(first) if first.first_lsn > next_lsn => {
                return Err(RecoveryError::MissingRecords {
                    expected_lsn: next_lsn,
                    file: first.name.clone(),
                    found_lsn: first.first_lsn,
                });
            }
            // The last segment starting at or before the first needed lsn holds it; every
            // earlier segment ends before it and is covered by the snapshot.
            Some(_) => {
                listing.segments.iter().rposition(|segment| segment.first_lsn <= next_lsn).unwrap_or(0)
            }
        };
        let required_lsn = listing.snapshots.first().map(|(lsn, name)| (*lsn, name.clone()));
        Ok(Recovery {
            directory,
            config,
            snapshot,
            rejected_snapshots,
            snapshot_files: listing.snapshots.into_iter().map(|(_, name)| name).collect(),
            temporary_files: listing.temporaries,
            segments: listing.segments,
            start_index,
            required_lsn,
        })
    }

    /// The snapshot to restore from before replaying, if any.
    pub fn snapshot(&self) -> Option<&SnapshotImage> {
        self.snapshot.as_ref()
    }

    /// Snapshots rejected so far (see [`RecoveryReport::rejected_snapshots`]).
    pub fn rejected_snapshots(&self) -> &[RejectedSnapshot] {
        &self.rejected_snapshots
    }

    /// Reads the log, hands every record after the snapshot to `visit` in lsn order, repairs
    /// a torn tail, and returns the storage ready to append plus a report.
    ///
    /// # Errors
    /// Corruption, a gap or overlap between segments, a log that ends before the newest
    /// snapshot, an I/O failure, or the first error `visit` returns.
    pub fn replay<E: std::error::Error + 'static>(
        self,
        visit: impl FnMut(LogRecord<'_>) -> Result<(), E>,
    ) -> Result<(Storage<D>, RecoveryReport), ReplayError<E>> {
        self.replay_reporting(visit, None)
    }

    /// Like [`Recovery::replay`], and calls `progress` as the module documentation describes:
    /// before the first segment, every [`REPLAY_PROGRESS_STEP_BYTES`] inside a segment, and at
    /// the end of each segment. The last call reports `bytes_scanned == bytes_total`.
    ///
    /// # Errors
    /// As [`Recovery::replay`]; also an I/O failure while reading the segment sizes.
    pub fn replay_with_progress<E: std::error::Error + 'static>(
        self,
        visit: impl FnMut(LogRecord<'_>) -> Result<(), E>,
        progress: &mut dyn FnMut(&ReplayProgress),
    ) -> Result<(Storage<D>, RecoveryReport), ReplayError<E>> {
        self.replay_reporting(visit, Some(progress))
    }

    fn replay_reporting<E: std::error::Error + 'static>(
        self,
        mut visit: impl FnMut(LogRecord<'_>) -> Result<(), E>,
        mut progress: Option<&mut dyn FnMut(&ReplayProgress)>,
    ) -> Result<(Storage<D>, RecoveryReport), ReplayError<E>> {
        let base_lsn = self.snapshot.as_ref().map_or(0, |image| image.lsn);
        let first_lsn =
            self.segments.get(self.start_index).map_or(base_lsn.saturating_add(1), |entry| entry.first_lsn);
        let mut cursor = Cursor { next_lsn: first_lsn, previous_slot: 0 };
        let mut counts = (0_u64, 0_u64);
        let mut buffer = Vec::new();
        let mut last: Option<(D::File, SegmentEnd)> = None;
        let needed = self.segments.get(self.start_index..).unwrap_or_default();
        // Sizes are read only when someone listens, so a replay without progress does exactly
        // the I/O it always did (the simulator counts operations).
        let mut reported = ReplayProgress::default();
        if let Some(progress) = progress.as_mut() {
            reported.bytes_total =
                segments_size_bytes(&self.directory, needed).map_err(ReplayError::Recovery)?;
            reported.segments_total = needed.len() as u64;
            progress(&reported);
        }
        for (index, entry) in needed.iter().enumerate() {
            check_segment_start(entry, &cursor)?;
            let position =
                if index + 1 == needed.len() { SegmentPosition::Last } else { SegmentPosition::Earlier };
            let file = read_segment(&self.directory, entry, &mut buffer)?;
            let segment_start = reported.bytes_scanned;
            let mut segment_offset = 0_u64;
            let end = scan_segment(&buffer, position, &mut cursor, &mut |record| {
                segment_offset += frame_size_bytes(u32::try_from(record.payload.len()).unwrap_or(u32::MAX));
                if record.lsn <= base_lsn {
                    counts.1 += 1;
                } else {
                    counts.0 += 1;
                    visit(record)?;
                }
                if let Some(progress) = progress.as_mut()
                    && segment_start + segment_offset - reported.bytes_scanned >= REPLAY_PROGRESS_STEP_BYTES
                {
                    reported.bytes_scanned = segment_start + segment_offset;
                    reported.records_replayed = counts.0;
                    progress(&reported);
                }
                Ok(())
            })
            .map_err(|stop| match stop {
                ScanStop::Corrupt(damage) => ReplayError::Recovery(RecoveryError::Corruption {
                    file: entry.name.clone(),
                    offset: damage.offset,
                    defect: damage.defect,
                    evidence: damage.evidence,
                }),
                ScanStop::Visitor { lsn, error } => ReplayError::Visitor { lsn, source: error },
            })?;
            if let Some(progress) = progress.as_mut() {
                // The whole file was read and its tail checked, so all of it counts as scanned. A
                // file that grew since its size was read (only possible behind the lock's back)
                // stretches the total instead of overshooting it.
                reported.bytes_scanned = segment_start + buffer.len() as u64;
                reported.bytes_total = reported.bytes_total.max(reported.bytes_scanned);
                reported.records_replayed = counts.0;
                reported.segments_scanned += 1;
                progress(&reported);
            }
            last = Some((file, end));
        }
        // With no segment at all the log is empty after the snapshot; otherwise the log ends
        // where the cursor stopped, which must not be before any snapshot on disk.
        let last_lsn = if needed.is_empty() { base_lsn } else { cursor.next_lsn - 1 };
        if let Some((required, snapshot_file)) = &self.required_lsn
            && last_lsn < *required
        {
            return Err(ReplayError::Recovery(RecoveryError::LogBehindSnapshot {
                snapshot_file: snapshot_file.clone(),
                snapshot_lsn: *required,
                log_last_lsn: last_lsn,
            }));
        }
        let last_slot = cursor.previous_slot.max(self.snapshot.as_ref().map_or(0, |image| image.slot));
        let segments_read = needed.len() as u64;
        self.finish(
            last,
            RecoveredCounts { replayed: counts.0, skipped: counts.1, last_lsn, last_slot, segments_read },
        )
        .map_err(ReplayError::Recovery)
    }

    /// The mutating part of recovery, run only after everything was read and verified.
    fn finish(
        self,
        last: Option<(D::File, SegmentEnd)>,
        counts: RecoveredCounts,
    ) -> Result<(Storage<D>, RecoveryReport), RecoveryError> {
        let Recovery {
            directory,
            config,
            snapshot,
            rejected_snapshots,
            snapshot_files,
            temporary_files,
            segments,
            ..
        } = self;
        let mut segments = segments;
        for name in &temporary_files {
            directory.remove(name).map_err(IoFailure::on(IoOperation::Remove, name))?;
        }
        if !temporary_files.is_empty() {
            directory
                .sync()
                .map_err(IoFailure::on(IoOperation::SyncDirectory, "temporary snapshot files"))?;
        }
        let (active_file, end, torn_tail) = if let Some((file, end)) = last {
            let name = segments.last().map(|entry| entry.name.clone()).unwrap_or_default();
            let (file, torn_tail) = repair_end(file, &name, end)?;
            (file, end, torn_tail)
        } else {
            // No segment at all: a fresh directory, or a snapshot with nothing after it.
            let first_lsn = counts.last_lsn.saturating_add(1);
            let (file, name) = create_segment(&directory, first_lsn, config.segment_size_bytes)?;
            segments.push(SegmentEntry { first_lsn, name });
            (file, SegmentEnd::Clean { offset: 0 }, None)
        };
        let write_offset = match end {
            SegmentEnd::Clean { offset } | SegmentEnd::Torn { offset, .. } => offset,
        };
        let report = RecoveryReport {
            start: match (&snapshot, counts.replayed) {
                (None, 0) => RecoveryStart::Fresh,
                (None, _) => RecoveryStart::LogOnly,
                (Some(_), 0) => RecoveryStart::SnapshotOnly,
                (Some(_), _) => RecoveryStart::SnapshotAndLog,
            },
            snapshot_lsn: snapshot.as_ref().map(|image| image.lsn),
            records_replayed: counts.replayed,
            records_skipped: counts.skipped,
            last_lsn: counts.last_lsn,
            last_slot: counts.last_slot,
            torn_tail,
            rejected_snapshots,
            segments_read: counts.segments_read,
            temporary_files_removed: temporary_files.len() as u64,
        };
        let storage = Storage::recovered(Recovered {
            directory,
            config,
            segments,
            active_file,
            write_offset,
            last_lsn: counts.last_lsn,
            last_slot: counts.last_slot,
            snapshot: snapshot.map(|image| (image.lsn, image.file_name)),
            snapshot_files,
        })?;
        Ok((storage, report))
    }
}

#[derive(Clone, Copy)]
struct RecoveredCounts {
    replayed: u64,
    skipped: u64,
    last_lsn: Lsn,
    last_slot: Slot,
    segments_read: u64,
}

struct Listing {
    segments: Vec<SegmentEntry>,
    /// Newest first.
    snapshots: Vec<(Lsn, String)>,
    temporaries: Vec<String>,
}

fn list_files(directory: &impl LogDirectory) -> Result<Listing, RecoveryError> {
    let names = directory.list().map_err(IoFailure::on(IoOperation::List, "storage directory"))?;
    let mut listing = Listing { segments: Vec::new(), snapshots: Vec::new(), temporaries: Vec::new() };
    for name in names {
        match names::parse(&name) {
            Ok(FileKind::Segment { first_lsn: 0 }) | Err(()) => {
                return Err(RecoveryError::MalformedFileName { name });
            }
            Ok(FileKind::Segment { first_lsn }) => listing.segments.push(SegmentEntry { first_lsn, name }),
            Ok(FileKind::Snapshot { lsn }) => listing.snapshots.push((lsn, name)),
            Ok(FileKind::SnapshotTemporary | FileKind::SpareSegment) => listing.temporaries.push(name),
            Ok(FileKind::Foreign) => {}
        }
    }
    listing.segments.sort_by_key(|segment| segment.first_lsn);
    listing.snapshots.sort_by_key(|(lsn, _)| std::cmp::Reverse(*lsn));
    listing.temporaries.sort();
    Ok(listing)
}

/// Picks the snapshot to start from (`docs/recovery.md`, "Choosing the snapshot").
fn choose_snapshot(
    directory: &impl LogDirectory,
    config: &StorageConfig,
    snapshots: &[(Lsn, String)],
    log_first_lsn: Option<Lsn>,
) -> Result<(Option<SnapshotImage>, Vec<RejectedSnapshot>), RecoveryError> {
    let mut rejected = Vec::new();
    for (lsn, name) in snapshots {
        let file = directory.open(name).map_err(IoFailure::on(IoOperation::Open, name))?;
        match read_snapshot(&file, name, *lsn, config.snapshot_size_bytes_max) {
            Ok(image) => {
                check_fallback(&rejected, image.lsn, log_first_lsn)?;
                return Ok((Some(image), rejected));
            }
            Err(ReadFailure::Io(failure)) => return Err(failure.into()),
            Err(ReadFailure::Defect(defect)) => {
                if config.snapshot_fallback == SnapshotFallback::Never {
                    return Err(RecoveryError::SnapshotUnusable {
                        file: name.clone(),
                        defect,
                        refusal: FallbackRefusal::Disabled,
                    });
                }
                rejected.push(RejectedSnapshot { file_name: name.clone(), defect });
            }
        }
    }
    // No valid snapshot: the empty state at lsn 0 is the oldest state of all.
    check_fallback(&rejected, 0, log_first_lsn)?;
    Ok((None, rejected))
}

/// Allows starting from `base_lsn` after rejecting newer snapshots only if the log still
/// starts at or before `base_lsn + 1`.
fn check_fallback(
    rejected: &[RejectedSnapshot],
    base_lsn: Lsn,
    log_first_lsn: Option<Lsn>,
) -> Result<(), RecoveryError> {
    let Some(newest) = rejected.first() else { return Ok(()) };
    let refusal = match log_first_lsn {
        None => FallbackRefusal::NoLog { base_lsn },
        Some(first) if first > base_lsn.saturating_add(1) => {
            FallbackRefusal::NotBridged { base_lsn, log_first_lsn: first }
        }
        Some(_) => return Ok(()),
    };
    Err(RecoveryError::SnapshotUnusable {
        file: newest.file_name.clone(),
        defect: newest.defect.clone(),
        refusal,
    })
}

fn check_segment_start(entry: &SegmentEntry, cursor: &Cursor) -> Result<(), RecoveryError> {
    if entry.first_lsn > cursor.next_lsn {
        return Err(RecoveryError::MissingRecords {
            expected_lsn: cursor.next_lsn,
            file: entry.name.clone(),
            found_lsn: entry.first_lsn,
        });
    }
    if entry.first_lsn < cursor.next_lsn {
        return Err(RecoveryError::SegmentOverlap {
            file: entry.name.clone(),
            first_lsn: entry.first_lsn,
            previous_last_lsn: cursor.next_lsn.saturating_sub(1),
        });
    }
    Ok(())
}

/// The total size of `segments`, for progress reports.
fn segments_size_bytes<D: LogDirectory>(
    directory: &D,
    segments: &[SegmentEntry],
) -> Result<u64, RecoveryError> {
    let mut total = 0_u64;
    for entry in segments {
        let name = entry.name.as_str();
        let file = directory.open(name).map_err(IoFailure::on(IoOperation::Open, name))?;
        let size_bytes = file.size_bytes().map_err(IoFailure::on(IoOperation::Read, name))?;
        total = total.saturating_add(size_bytes);
    }
    Ok(total)
}

/// Reads the whole segment into `buffer` and returns its open handle.
fn read_segment<D: LogDirectory>(
    directory: &D,
    entry: &SegmentEntry,
    buffer: &mut Vec<u8>,
) -> Result<D::File, RecoveryError> {
    let name = entry.name.as_str();
    let file = directory.open(name).map_err(IoFailure::on(IoOperation::Open, name))?;
    let size_bytes = file.size_bytes().map_err(IoFailure::on(IoOperation::Read, name))?;
    let too_large = || RecoveryError::SegmentTooLarge {
        file: name.to_owned(),
        size_bytes,
        size_bytes_max: SEGMENT_SIZE_BYTES_LIMIT,
    };
    if size_bytes > SEGMENT_SIZE_BYTES_LIMIT {
        return Err(too_large());
    }
    buffer.clear();
    buffer.resize(usize::try_from(size_bytes).map_err(|_| too_large())?, 0);
    file.read_exact_at(0, buffer).map_err(IoFailure::at(IoOperation::Read, name, 0))?;
    Ok(file)
}

/// Zeroes a torn tail so the next append starts on zeros, and makes that durable.
///
/// The zeros go in three synced writes, back to front: the payload, the header after the
/// magic, then the magic. A crash during any of them, even one that tears the write, leaves
/// a prefix of the torn frame followed by zeros, or a damaged header with only zeros after
/// it, so the next recovery classifies the same offset as a torn tail (or a clean end)
/// again. Zeroing front to back could leave a zero magic followed by data: corruption.
fn repair_end<F: LogFile>(
    mut file: F,
    name: &str,
    end: SegmentEnd,
) -> Result<(F, Option<TornTail>), IoFailure> {
    let SegmentEnd::Torn { offset, size_bytes } = end else { return Ok((file, None)) };
    let written_end = offset + size_bytes;
    let header_end = (offset + FRAME_HEADER_SIZE_BYTES).min(written_end);
    let magic_end = (offset + 4).min(written_end);
    for (start, stop) in [(header_end, written_end), (magic_end, header_end), (offset, magic_end)] {
        if start == stop {
            continue;
        }
        let zeros = vec![0_u8; usize::try_from(stop - start).unwrap_or(0)];
        assert_eq!(zeros.len() as u64, stop - start, "torn tail larger than memory");
        file.write_all_at(start, &zeros).map_err(IoFailure::at(IoOperation::Write, name, start))?;
        file.sync_data().map_err(IoFailure::on(IoOperation::SyncData, name))?;
    }
    Ok((file, Some(TornTail { file_name: name.to_owned(), offset, size_bytes })))
}
