//! The split flush: `write_buffered` writes, a `PendingSync` (runnable on another thread)
//! syncs, and `complete_sync` records the outcome.
//!
//! These tests check that records count as durable only once their own pending sync reports
//! success, that a crash before that loses them like any unsynced write, that appends go on
//! while a sync is out but nothing is written until it reports back (so a failed sync can
//! never leave intact records behind a hole), and that a failed pending sync poisons the
//! storage like a failed flush.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use allocdb_storage::{FlushError, IoOperation, SimDirectory};
use common::{append_and_sync, record, records, recover};

/// Records are durable only after their pending sync completes; a crash before loses them.
#[test]
fn written_records_are_durable_only_after_their_sync_completes() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=2);
    for lsn in 3..=5 {
        storage.append(record(lsn).borrow()).unwrap();
    }
    let pending = storage.write_buffered().unwrap();
    assert_eq!(pending.lsn(), 5);
    assert!(pending.needs_sync());
    assert_eq!(storage.written_lsn(), 5);
    assert_eq!(storage.durable_lsn(), 2, "written is not durable");
    assert_eq!(storage.buffered_record_count(), 0);

    drop(pending);
    drop(storage);
    directory.crash().unwrap();
    assert_eq!(recover(&directory).records, records(1..=2));
}

/// A pending sync run on another thread, then completed, makes its records durable.
#[test]
fn a_sync_run_on_another_thread_makes_the_records_durable() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    for lsn in 1..=4 {
        storage.append(record(lsn).borrow()).unwrap();
    }
    let mut pending = storage.write_buffered().unwrap();
    let syncs_before = directory.counters().syncs;
    pending = std::thread::spawn(move || {
        pending.sync();
        pending
    })
    .join()
    .unwrap();
    assert!(!pending.needs_sync(), "the sync ran");
    assert_eq!(directory.counters().syncs, syncs_before + 1);
    assert_eq!(storage.complete_sync(pending).unwrap(), 4);
    assert_eq!(storage.durable_lsn(), 4);
    assert_eq!(directory.counters().syncs, syncs_before + 1, "completing does not sync again");

    drop(storage);
    directory.crash().unwrap();
    assert_eq!(recover(&directory).records, records(1..=4));
}

/// Appends continue while a sync is out, but nothing is written until it reports back.
#[test]
fn nothing_is_written_while_a_sync_is_outstanding() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    storage.append(record(1).borrow()).unwrap();
    let pending = storage.write_buffered().unwrap();
    assert!(storage.sync_outstanding());

    storage.append(record(2).borrow()).unwrap();
    storage.append(record(3).borrow()).unwrap();
    let writes_before = directory.counters().writes;
    assert!(matches!(storage.write_buffered(), Err(FlushError::SyncOutstanding { lsn: 1 })));
    assert!(matches!(storage.flush_and_sync(), Err(FlushError::SyncOutstanding { lsn: 1 })));
    assert_eq!(directory.counters().writes, writes_before, "refused writes touch nothing");
    assert!(storage.poison_cause().is_none(), "a refused write does not poison");

    assert_eq!(storage.complete_sync(pending).unwrap(), 1);
    assert!(!storage.sync_outstanding());
    assert_eq!(storage.flush_and_sync().unwrap(), 3);
    drop(storage);
    directory.crash().unwrap();
    assert_eq!(recover(&directory).records, records(1..=3));
}

/// A pending sync that fails poisons the storage with the segment named; the records after it
/// were never written, and recovery finds only what was synced before.
#[test]
fn a_failed_pending_sync_poisons_the_storage() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=2);
    storage.append(record(3).borrow()).unwrap();
    let mut pending = storage.write_buffered().unwrap();
    storage.append(record(4).borrow()).unwrap();
    directory.fail_sync_in(1);
    pending.sync();
    let error = storage.complete_sync(pending).unwrap_err();
    let FlushError::Io(failure) = &error else { panic!("expected an I/O error, got {error}") };
    assert_eq!(failure.operation, IoOperation::SyncData);
    assert_eq!(failure.file, "log-00000000000000000001.seg");
    assert!(storage.poison_cause().is_some());
    assert!(matches!(storage.write_buffered(), Err(FlushError::Poisoned { .. })));

    drop(storage);
    directory.crash().unwrap();
    assert_eq!(recover(&directory).records, records(1..=2));
}

/// With nothing new written, the pending sync has nothing to do and changes nothing.
#[test]
fn an_empty_write_needs_no_sync() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=2);
    let counters = directory.counters();
    let pending = storage.write_buffered().unwrap();
    assert!(!pending.needs_sync());
    assert_eq!(pending.lsn(), 2);
    assert!(!storage.sync_outstanding());
    assert_eq!(storage.complete_sync(pending).unwrap(), 2);
    assert_eq!(directory.counters(), counters, "no device call");
}

/// A buffer that crosses into a new segment is written and synced in full at once (the new
/// segment must be durably named first), so its pending sync has nothing left to do.
#[test]
fn a_rollover_is_synced_while_written() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    let segment_size = storage.config().segment_size_bytes;
    // The first lsn whose frame no longer fits the first segment, and two more after it.
    let first_in_second =
        (1..=segment_size).find(|lsn| common::frame_offset(1, lsn + 1) > segment_size).unwrap();
    let last = first_in_second + 2;
    for lsn in 1..=last {
        storage.append(record(lsn).borrow()).unwrap();
    }
    let pending = storage.write_buffered().unwrap();
    assert!(!pending.needs_sync());
    assert_eq!(storage.durable_lsn(), last);
    assert_eq!(storage.segment_names().len(), 2);
    assert_eq!(storage.complete_sync(pending).unwrap(), last);
    drop(storage);
    directory.crash().unwrap();
    assert_eq!(recover(&directory).records, records(1..=last));
}
