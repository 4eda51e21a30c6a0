//! Spare segments: the next segment is zero-filled ahead of its rollover, renamed into place
//! when the log reaches it, and never changes what recovery reads. A spare that fails, is
//! still filling, or is caught by a crash costs nothing but the speed-up.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use allocdb_storage::{SimDirectory, Storage};
use common::{
    SPARE_SEGMENT_NAME as SPARE_NAME, append_and_sync, config, frame_offset, record, records, recover,
    segment_names,
};

/// Records that fill more than a quarter of the first segment, so it is no longer young and
/// a spare waits for the rollover.
const GROWN: u64 = 5;

#[test]
fn the_test_sizes_make_the_first_records_young_and_grown() {
    assert!(frame_offset(1, 3) <= config().segment_size_bytes / 4, "two records are young");
    assert!(frame_offset(1, GROWN + 1) > config().segment_size_bytes / 4, "five are not");
}

fn prepare_spare(storage: &mut Storage<SimDirectory>) {
    let preparation = storage.spare_preparation().expect("a spare is wanted");
    storage.accept_spare(preparation.fill());
    assert!(storage.spare_ready());
}

/// The rollover renames the filled spare to the new segment's name: the segment has the
/// configured size, the spare's name is gone, and recovery reads every record.
#[test]
fn rollover_renames_the_filled_spare_into_place_and_recovery_reads_every_record() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=GROWN);
    prepare_spare(&mut storage);
    assert!(directory.file_names().contains(&SPARE_NAME.to_owned()));
    assert!(storage.spare_preparation().is_none(), "one spare at a time");
    append_and_sync(&mut storage, GROWN + 1..=20);
    let names = segment_names(&directory);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(!storage.spare_ready(), "the rollover used the spare");
    assert_eq!(storage.spares_used(), 1);
    assert!(!directory.file_names().contains(&SPARE_NAME.to_owned()));
    let bytes = directory.durable_bytes(&names[1]).expect("the renamed segment is durable");
    assert_eq!(bytes.len() as u64, config().segment_size_bytes);
    assert!(storage.spare_preparation().is_some(), "after a rollover the next spare is wanted");
    let recovered = recover(&directory);
    assert_eq!(recovered.records, records(1..=20));
    assert_eq!(recovered.report.temporary_files_removed, 1, "the new spare is not a segment");
}

/// A spare still being filled when the log rolls over is kept: that rollover creates its
/// segment, the next one uses the spare.
#[test]
fn a_spare_still_filling_at_rollover_serves_the_next_rollover() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=GROWN);
    let preparation = storage.spare_preparation().unwrap();
    append_and_sync(&mut storage, GROWN + 1..=20);
    assert_eq!(segment_names(&directory).len(), 2);
    storage.accept_spare(preparation.fill());
    assert!(storage.spare_ready(), "the preparation outlived the rollover");
    append_and_sync(&mut storage, 21..=40);
    assert!(segment_names(&directory).len() >= 3);
    assert!(!storage.spare_ready());
    assert!(!directory.file_names().contains(&SPARE_NAME.to_owned()));
    assert_eq!(recover(&directory).records, records(1..=40));
}

/// A young active segment (the first of a fresh directory here) moves onto a ready spare at
/// the next write, records and all; a grown one keeps waiting for its rollover.
#[test]
fn a_young_segment_moves_onto_the_spare_with_its_records_and_a_grown_one_does_not() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=1);
    prepare_spare(&mut storage);
    append_and_sync(&mut storage, 2..=2);
    assert_eq!(storage.spares_used(), 1);
    assert!(!directory.file_names().contains(&SPARE_NAME.to_owned()));
    let names = segment_names(&directory);
    assert_eq!(names, ["log-00000000000000000001.seg"]);
    assert_eq!(directory.durable_bytes(&names[0]).unwrap().len() as u64, config().segment_size_bytes);
    assert_eq!(recover(&directory).records, records(1..=2));
    // A segment that was a spare never moves again, young as it still is (two records): the
    // next spare waits for the rollover. Moving on every spare would rewrite it forever.
    prepare_spare(&mut storage);
    append_and_sync(&mut storage, 3..=3);
    assert_eq!(storage.spares_used(), 1);
    assert!(storage.spare_ready());
    assert_eq!(recover(&directory).records, records(1..=3));

    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=GROWN);
    prepare_spare(&mut storage);
    append_and_sync(&mut storage, GROWN + 1..=GROWN + 1);
    assert_eq!(storage.spares_used(), 0);
    assert!(storage.spare_ready(), "the spare waits for the rollover");
}

/// A spare still filling when a young segment is written to is kept: the write does not wait
/// for it, and the segment moves at the first write after the spare comes back.
#[test]
fn a_young_segment_keeps_a_spare_still_filling_and_moves_onto_it_later() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    let preparation = storage.spare_preparation().unwrap();
    append_and_sync(&mut storage, 1..=1);
    assert_eq!(storage.spares_used(), 0);
    storage.accept_spare(preparation.fill());
    assert!(storage.spare_ready(), "the preparation outlived the write");
    append_and_sync(&mut storage, 2..=2);
    assert_eq!(storage.spares_used(), 1);
    assert_eq!(recover(&directory).records, records(1..=2));
}

/// A fill that fails removes the spare; no other is asked for until the next rollover, which
/// creates its segment as if spares did not exist.
#[test]
fn a_failed_fill_falls_back_to_creating_the_segment() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    let preparation = storage.spare_preparation().unwrap();
    directory.fail_write_in(1);
    storage.accept_spare(preparation.fill());
    assert!(!storage.spare_ready());
    assert!(!directory.file_names().contains(&SPARE_NAME.to_owned()), "a failed spare is removed");
    assert!(storage.spare_preparation().is_none(), "no second attempt before the rollover");
    append_and_sync(&mut storage, 1..=20);
    assert_eq!(segment_names(&directory).len(), 2);
    assert!(storage.spare_preparation().is_some());
    assert_eq!(recover(&directory).records, records(1..=20));
}

/// A power cut at every mutation of the spare's life (create, reserve, fill, sync, rename,
/// directory sync, and the writes around them): every acknowledged record recovers, nothing
/// unacknowledged beyond what was written appears, and no spare survives recovery.
/// With 0 and 2 records before the spare it is adopted by a young segment (nothing or two
/// records copied); with `GROWN` it serves the rollover.
#[test]
fn a_crash_at_any_step_of_a_spare_keeps_every_acknowledged_record() {
    for before in [0, 2, GROWN] {
        crash_at_every_step(before);
    }
}

fn crash_at_every_step(before: u64) {
    let mut step = 1;
    loop {
        let directory = SimDirectory::new();
        let mut storage = recover(&directory).storage;
        append_and_sync(&mut storage, 1..=before);
        let mut acknowledged = before;
        directory.halt_in(step);
        if let Some(preparation) = storage.spare_preparation() {
            storage.accept_spare(preparation.fill());
        }
        for lsn in before + 1..=20 {
            if storage.append(record(lsn).borrow()).is_err() || storage.flush_and_sync().is_err() {
                break;
            }
            acknowledged = lsn;
        }
        let halted = directory.is_halted();
        directory.crash().unwrap();
        let recovered = recover(&directory);
        let context = format!("{before} records before the spare, halt at mutation {step}");
        assert!(recovered.records.len() as u64 >= acknowledged, "{context}: acknowledged records lost");
        assert_eq!(recovered.records, records(1..=recovered.records.len() as u64), "{context}");
        assert!(!directory.file_names().contains(&SPARE_NAME.to_owned()), "{context}");
        if !halted {
            assert_eq!(acknowledged, 20);
            break;
        }
        step += 1;
        assert!(step < 500, "the scenario should end within a few hundred mutations");
    }
    assert!(step > 10, "the halts covered the spare's steps and the rollover ({step})");
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=before);
    prepare_spare(&mut storage);
    append_and_sync(&mut storage, before + 1..=20);
    assert_eq!(storage.spares_used(), 1, "the unhalted run used the spare ({before} records before it)");
}
