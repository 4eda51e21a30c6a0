//! Reopening: recovery reports how it started, hands back a storage that continues the log,
//! and carries the last logged slot across restarts so slots never go backwards.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use std::convert::Infallible;
use std::fmt;

use allocdb_storage::{AppendError, LogRecord, Recovery, RecoveryStart, ReplayError, SimDirectory};
use common::{append_and_sync, config, record, records, recover, segment_names, snapshot_payload};

/// An empty directory recovers as fresh and gets its first, preallocated segment.
#[test]
fn fresh_directory_recovers_as_fresh_with_first_segment() {
    let directory = SimDirectory::new();
    let recovered = recover(&directory);
    assert_eq!(recovered.report.start, RecoveryStart::Fresh);
    assert_eq!((recovered.report.last_lsn, recovered.report.last_slot), (0, 0));
    assert_eq!(recovered.storage.next_lsn(), 1);
    assert_eq!(segment_names(&directory), ["log-00000000000000000001.seg"]);
    let bytes = directory.durable_bytes("log-00000000000000000001.seg").unwrap();
    assert_eq!(bytes.len() as u64, config().segment_size_bytes);
    assert!(bytes.iter().all(|byte| *byte == 0));
}

/// Restart after restart (with and without a crash), the log continues where it stopped.
#[test]
fn reopen_continues_appending_after_recovery() {
    let directory = SimDirectory::new();
    let mut last = 0;
    for cycle in 0..6_u64 {
        let recovered = recover(&directory);
        assert_eq!(recovered.records, records(1..=last), "cycle {cycle}");
        let mut storage = recovered.storage;
        assert_eq!(storage.next_lsn(), last + 1);
        append_and_sync(&mut storage, last + 1..=last + 7);
        last += 7;
        if cycle % 2 == 1 {
            directory.crash().unwrap();
        }
    }
    assert!(segment_names(&directory).len() > 1);
}

/// The recovered last slot is a floor: a lower slot is refused after the restart.
#[test]
fn recovered_last_slot_is_floor_for_new_appends() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=9);
    let recovered = recover(&directory);
    let last_slot = record(9).slot;
    assert_eq!((recovered.report.last_slot, recovered.storage.last_slot()), (last_slot, last_slot));
    let mut storage = recovered.storage;
    let next = record(10);
    let lower = LogRecord { slot: last_slot - 1, ..next.borrow() };
    assert_eq!(
        storage.append(lower),
        Err(AppendError::SlotRegression { last: last_slot, found: last_slot - 1 })
    );
}

/// A snapshot with nothing after it is "snapshot only"; records after it make it
/// "snapshot and log". Records before it are verified but not replayed.
#[test]
fn start_kinds_are_reported() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=5);
    assert_eq!(recover(&directory).report.start, RecoveryStart::LogOnly);
    let mut storage = recover(&directory).storage;
    storage.install_snapshot(5, record(5).slot, &snapshot_payload(5)).unwrap();

    let recovered = recover(&directory);
    let report = &recovered.report;
    assert_eq!((report.start, report.snapshot_lsn), (RecoveryStart::SnapshotOnly, Some(5)));
    assert_eq!((report.records_replayed, report.records_skipped), (0, 5));
    assert_eq!((report.last_lsn, report.last_slot), (5, record(5).slot));
    assert_eq!(recovered.snapshot.unwrap().payload, snapshot_payload(5));

    let mut storage = recovered.storage;
    append_and_sync(&mut storage, 6..=7);
    let recovered = recover(&directory);
    assert_eq!(recovered.report.start, RecoveryStart::SnapshotAndLog);
    assert_eq!(recovered.records, records(6..=7));
}

/// A crash after a new segment was durably created but before its first record was synced
/// leaves an empty last segment; the log continues in it.
#[test]
fn empty_last_segment_after_crash_at_rollover_is_continued() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    let mut lsn = 0;
    while common::frame_offset(1, lsn + 2) <= config().segment_size_bytes {
        lsn += 1;
        append_and_sync(&mut storage, lsn..=lsn);
    }
    // The next record opens a segment: create, allocate, sync, sync directory, then write.
    storage.append(record(lsn + 1).borrow()).unwrap();
    directory.halt_in(5);
    assert!(storage.flush_and_sync().is_err());
    directory.crash().unwrap();
    assert_eq!(segment_names(&directory).len(), 2, "the new segment's name was durable");

    let recovered = recover(&directory);
    assert_eq!(recovered.records, records(1..=lsn));
    let mut storage = recovered.storage;
    append_and_sync(&mut storage, lsn + 1..=lsn + 3);
    assert_eq!(recover(&directory).records, records(1..=lsn + 3));
}

#[derive(Debug)]
struct Rejected(u64);

impl fmt::Display for Rejected {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "engine rejected record {}", self.0)
    }
}

impl std::error::Error for Rejected {}

/// A visitor error stops replay and names the record; nothing is changed on disk.
#[test]
fn visitor_error_stops_replay_with_its_lsn() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=5);
    let recovery = Recovery::open(directory.clone(), config()).unwrap();
    let mut seen = Vec::new();
    let result = recovery.replay(|record| {
        seen.push(record.lsn);
        if record.lsn == 3 { Err(Rejected(record.lsn)) } else { Ok(()) }
    });
    let Err(ReplayError::Visitor { lsn, source }) = result else { panic!("replay did not stop") };
    assert_eq!((lsn, source.0, seen), (3, 3, vec![1, 2, 3]));
    let recovery = Recovery::open(directory, config()).unwrap();
    let (_, report) = recovery.replay(|_| Ok::<(), Infallible>(())).unwrap();
    assert_eq!(report.last_lsn, 5);
}
