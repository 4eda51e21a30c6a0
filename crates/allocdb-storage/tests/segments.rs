//! Segments: rollover, naming, preallocation, group commit, limits, and missing segments.
//!
//! A segment is named for its first lsn and preallocated to the configured size; records
//! never straddle two segments; a group commit is one write and one sync unless it crosses a
//! segment boundary. Recovery checks that consecutive segments join exactly (the next starts
//! at the previous last lsn + 1) and fails closed on a gap or an overlap.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use allocdb_storage::{AppendError, LogRecord, RecordKind, RecoveryError, SimDirectory};
use common::{
    append_and_sync, config, directory_with_records, frame_offset, frame_size, record, records, recover,
    recovery_error, segment_first_lsn, segment_names,
};

/// Records roll over into new segments named for their first lsn, each preallocated, and
/// recovery reads them all back in order.
#[test]
fn segment_rollover_names_segments_by_first_lsn_and_recovers_all() {
    let directory = directory_with_records(40);
    let names = segment_names(&directory);
    assert!(names.len() >= 3, "40 records span several 512-byte segments: {names:?}");
    assert_eq!(names[0], "log-00000000000000000001.seg");
    for pair in names.windows(2) {
        let (first, next) = (segment_first_lsn(&pair[0]), segment_first_lsn(&pair[1]));
        // The next segment starts with the first record that did not fit the previous one.
        assert!(frame_offset(first, next) <= config().segment_size_bytes);
        assert!(frame_offset(first, next + 1) > config().segment_size_bytes);
    }
    for name in &names {
        assert_eq!(directory.durable_bytes(name).unwrap().len() as u64, config().segment_size_bytes);
    }
    let recovered = recover(&directory);
    assert_eq!(recovered.records, records(1..=40));
    assert_eq!(recovered.report.segments_read, names.len() as u64);
}

/// One group commit that crosses a segment boundary lands in two segments and recovers.
#[test]
fn group_commit_across_segment_boundary_recovers() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=20);
    assert_eq!(segment_names(&directory).len(), 2);
    assert_eq!(recover(&directory).records, records(1..=20));
}

/// Many records in one flush cost one write and one data sync.
#[test]
fn group_commit_is_one_write_and_one_sync() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    let before = directory.counters();
    for lsn in 1..=8 {
        storage.append(record(lsn).borrow()).unwrap();
    }
    assert_eq!(directory.counters(), before, "append only buffers");
    assert_eq!(storage.buffered_record_count(), 8);
    assert_eq!(storage.flush_and_sync().unwrap(), 8);
    let after = directory.counters();
    assert_eq!((after.writes - before.writes, after.syncs - before.syncs), (1, 1));
    assert_eq!((storage.durable_lsn(), storage.buffered_size_bytes()), (8, 0));
}

/// A frame that exactly fills the rest of a segment stays in it; the next one rolls over.
#[test]
fn frame_exactly_filling_segment_stays_in_it() {
    let segment_size = config().segment_size_bytes;
    // Enough records that the space left holds one header and at most a maximal payload.
    let last = (1..100).find(|lsn| segment_size - frame_offset(1, lsn + 1) <= 32 + 64).unwrap();
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=last);
    let filler = vec![b'f'; usize::try_from(segment_size - frame_offset(1, last + 1) - 32).unwrap()];
    let slot = storage.last_slot();
    storage.append(LogRecord { lsn: last + 1, slot, kind: RecordKind(9), payload: &filler }).unwrap();
    storage.append(LogRecord { lsn: last + 2, slot, kind: RecordKind(9), payload: b"next" }).unwrap();
    storage.flush_and_sync().unwrap();
    assert_eq!(
        segment_names(&directory),
        ["log-00000000000000000001.seg".to_owned(), format!("log-{:020}.seg", last + 2)]
    );
    let recovered = recover(&directory);
    assert_eq!(recovered.records.len() as u64, last + 2);
    assert_eq!(recovered.records[usize::try_from(last).unwrap()].payload, filler);
}

/// A missing middle segment is a gap in the lsns: recovery names the expected lsn and the
/// segment found instead.
#[test]
fn missing_middle_segment_fails_closed() {
    let directory = directory_with_records(40);
    let names = segment_names(&directory);
    directory.remove_durably(&names[1]).unwrap();
    let error = recovery_error(&directory);
    assert!(
        matches!(&error, RecoveryError::MissingRecords { expected_lsn, file, found_lsn }
            if *expected_lsn == segment_first_lsn(&names[1])
            && *file == names[2]
            && *found_lsn == segment_first_lsn(&names[2])),
        "{error}"
    );
}

/// Without a snapshot the log must start at lsn 1.
#[test]
fn missing_first_segment_fails_closed() {
    let directory = directory_with_records(40);
    let names = segment_names(&directory);
    directory.remove_durably(&names[0]).unwrap();
    assert!(matches!(
        recovery_error(&directory),
        RecoveryError::MissingRecords { expected_lsn: 1, found_lsn, .. } if found_lsn == segment_first_lsn(&names[1])
    ));
}

/// A segment named for an lsn its predecessor already holds is an overlap.
#[test]
fn overlapping_segment_fails_closed() {
    let directory = directory_with_records(40);
    let names = segment_names(&directory);
    let second = segment_first_lsn(&names[1]);
    let bytes = directory.durable_bytes(&names[1]).unwrap();
    directory.remove_durably(&names[1]).unwrap();
    directory.put_durably(&format!("log-{:020}.seg", second - 1), &bytes);
    assert!(matches!(
        recovery_error(&directory),
        RecoveryError::SegmentOverlap { first_lsn, previous_last_lsn, .. }
            if first_lsn == second - 1 && previous_last_lsn == second - 1
    ));
}

/// A segment whose name disagrees with its first record fails closed.
#[test]
fn segment_name_disagreeing_with_first_record_fails_closed() {
    let directory = directory_with_records(40);
    let names = segment_names(&directory);
    let last = names.last().unwrap();
    let first = segment_first_lsn(last);
    let bytes = directory.durable_bytes(last).unwrap();
    directory.remove_durably(last).unwrap();
    directory.put_durably(&format!("log-{:020}.seg", first + 1), &bytes);
    assert!(
        matches!(recovery_error(&directory), RecoveryError::MissingRecords { expected_lsn, .. } if expected_lsn == first)
    );
}

/// Appends with the wrong lsn, a lower slot or an oversized payload are refused and buffer
/// nothing; an equal slot is fine.
#[test]
fn invalid_appends_are_refused_without_buffering() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=2);
    let slot = storage.last_slot();
    let payload = [0_u8; 65];
    let cases = [
        (
            LogRecord { lsn: 4, slot, kind: RecordKind(1), payload: b"" },
            AppendError::LsnOutOfSequence { expected: 3, found: 4 },
        ),
        (
            LogRecord { lsn: 2, slot, kind: RecordKind(1), payload: b"" },
            AppendError::LsnOutOfSequence { expected: 3, found: 2 },
        ),
        (
            LogRecord { lsn: 3, slot: slot - 1, kind: RecordKind(1), payload: b"" },
            AppendError::SlotRegression { last: slot, found: slot - 1 },
        ),
        (
            LogRecord { lsn: 3, slot, kind: RecordKind(1), payload: &payload },
            AppendError::PayloadTooLarge { size_bytes: 65, size_bytes_max: 64 },
        ),
    ];
    for (record, expected) in cases {
        assert_eq!(storage.append(record), Err(expected));
        assert_eq!(storage.buffered_record_count(), 0);
    }
    storage.append(LogRecord { lsn: 3, slot, kind: RecordKind(1), payload: b"" }).unwrap();
}

/// The group-commit buffer fills to exactly its limit; the next append is refused with
/// `BufferFull` and changes nothing; after a flush it succeeds.
#[test]
fn buffer_full_at_limit_then_accepts_after_flush() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    let payload = [b'p'; 32];
    // 64-byte frames: 2048 / 64 = 32 fit exactly.
    let mut lsn = 0;
    while storage.buffered_size_bytes() < config().buffer_size_bytes_max {
        lsn += 1;
        storage.append(LogRecord { lsn, slot: 1, kind: RecordKind(1), payload: &payload }).unwrap();
    }
    assert_eq!((lsn, storage.buffered_size_bytes()), (32, 2048));
    let next = LogRecord { lsn: 33, slot: 1, kind: RecordKind(1), payload: &payload };
    assert_eq!(
        storage.append(next),
        Err(AppendError::BufferFull {
            buffered_bytes: 2048,
            frame_size_bytes: 64,
            buffer_size_bytes_max: 2048
        })
    );
    assert_eq!(storage.buffered_record_count(), 32);
    storage.flush_and_sync().unwrap();
    storage.append(next).unwrap();
    storage.flush_and_sync().unwrap();
    assert_eq!(recover(&directory).report.last_lsn, 33);
    assert!(frame_size(1) < 64, "test records are smaller than the filler frames");
}
