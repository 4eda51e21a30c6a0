//! I/O failures on the write path surface as errors and stop the storage.
//!
//! After a failed `fdatasync` the kernel may have dropped the dirty pages, so a retry could
//! report success for bytes that are gone. The storage therefore poisons itself on the first
//! failure: every later append, flush and snapshot fails with the original cause, and only a
//! restart (recovery) continues. These tests check the error names the operation and file,
//! that the poison holds, and that recovery afterwards finds exactly the synced records.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use allocdb_storage::{AppendError, FlushError, IoOperation, SimDirectory, SnapshotError};
use common::{append_and_sync, record, records, recover, snapshot_payload};

fn storage_with_synced_records(last_lsn: u64) -> (SimDirectory, allocdb_storage::Storage<SimDirectory>) {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=last_lsn);
    (directory, storage)
}

/// A failed data sync is returned with the operation and file, and poisons the storage.
#[test]
fn failed_sync_is_surfaced_and_poisons_the_writer() {
    let (directory, mut storage) = storage_with_synced_records(3);
    storage.append(record(4).borrow()).unwrap();
    directory.fail_sync_in(1);
    let error = storage.flush_and_sync().unwrap_err();
    let FlushError::Io(failure) = &error else { panic!("expected an I/O error, got {error}") };
    assert_eq!(failure.operation, IoOperation::SyncData);
    assert_eq!(failure.file, "log-00000000000000000001.seg");
    assert!(error.to_string().contains("simulated sync failure"), "message: {error}");
    let cause = storage.poison_cause().expect("poisoned").to_owned();
    let counters = directory.counters();

    // Every later write-path call refuses, quoting the first failure.
    assert_eq!(storage.append(record(5).borrow()), Err(AppendError::Poisoned { cause: cause.clone() }));
    assert!(
        matches!(storage.flush_and_sync(), Err(FlushError::Poisoned { cause: quoted }) if quoted == cause)
    );
    assert!(matches!(
        storage.install_snapshot(3, record(3).slot, &snapshot_payload(3)),
        Err(SnapshotError::Poisoned { .. })
    ));
    // The refused calls did not touch the device.
    assert_eq!(directory.counters(), counters);
}

/// After a failed sync and a crash, recovery finds the synced records and appends continue.
#[test]
fn restart_after_failed_sync_recovers_synced_records() {
    let (directory, mut storage) = storage_with_synced_records(3);
    storage.append(record(4).borrow()).unwrap();
    directory.fail_sync_in(1);
    assert!(storage.flush_and_sync().is_err());
    drop(storage);
    directory.crash().unwrap();
    let recovered = recover(&directory);
    assert_eq!(recovered.records, records(1..=3));
    let mut storage = recovered.storage;
    append_and_sync(&mut storage, 4..=5);
    assert_eq!(recover(&directory).records, records(1..=5));
}

/// A failed write is surfaced the same way and poisons the storage; the batch is lost.
#[test]
fn failed_write_is_surfaced_and_poisons_the_writer() {
    let (directory, mut storage) = storage_with_synced_records(3);
    storage.append(record(4).borrow()).unwrap();
    directory.fail_write_in(1);
    let error = storage.flush_and_sync().unwrap_err();
    let FlushError::Io(failure) = &error else { panic!("expected an I/O error, got {error}") };
    assert_eq!((failure.operation, failure.offset), (IoOperation::Write, Some(common::frame_offset(1, 4))));
    assert!(storage.poison_cause().is_some());
    assert!(matches!(storage.append(record(5).borrow()), Err(AppendError::Poisoned { .. })));
    directory.crash().unwrap();
    assert_eq!(recover(&directory).records, records(1..=3));
}

/// A failed directory sync while rolling over to a new segment poisons the storage, and the
/// records written to the old segment before the rollover survive.
#[test]
fn failed_directory_sync_at_rollover_poisons_the_writer() {
    let (directory, mut storage) = storage_with_synced_records(1);
    let segment_size = common::config().segment_size_bytes;
    let first_outside = (2..1000).find(|lsn| common::frame_offset(1, lsn + 1) > segment_size).unwrap();
    for lsn in 2..=first_outside {
        storage.append(record(lsn).borrow()).unwrap();
    }
    // Syncs: old segment data, new segment allocation, then the directory: fail that one.
    directory.fail_sync_in(3);
    let error = storage.flush_and_sync().unwrap_err();
    let FlushError::Io(failure) = &error else { panic!("expected an I/O error, got {error}") };
    assert_eq!(failure.operation, IoOperation::SyncDirectory);
    assert_eq!(failure.file, format!("log-{first_outside:020}.seg"));
    assert!(storage.poison_cause().is_some());
    directory.crash().unwrap();
    let recovered = recover(&directory);
    assert_eq!(recovered.records, records(1..=first_outside - 1), "records of the first segment were synced");
    assert_eq!(common::segment_names(&directory), ["log-00000000000000000001.seg"]);
}

/// A flush with nothing buffered does no I/O, so it cannot fail on the device.
#[test]
fn empty_flush_does_not_touch_the_device() {
    let (directory, mut storage) = storage_with_synced_records(2);
    let before = directory.counters();
    directory.fail_sync_in(1);
    assert_eq!(storage.flush_and_sync().unwrap(), 2);
    assert_eq!(directory.counters(), before);
}
