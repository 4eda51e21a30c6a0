//! Torn tails: a crash in the middle of the last write leaves a prefix of it on disk.
//!
//! Recovery must keep every complete record, zero the partial one, report exactly what it
//! removed, and accept appends afterwards as if the torn write never happened. A prefix that
//! happens to hold a whole frame is a complete record: it is kept (it was never acknowledged,
//! and the engine treats unacknowledged writes as indefinite, so either outcome is allowed).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use allocdb_storage::{RecoveryStart, SimDirectory, TornTail};
use common::{
    append_and_sync, encoded_frame, frame_offset, frame_size, record, records, recover, visible_size,
};

/// Builds a log of `1..=synced` and then writes `synced + 1 ..= last` in one group commit
/// that never gets synced: the process stops right after the write.
fn directory_with_unsynced_batch(synced: u64, last: u64) -> SimDirectory {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_and_sync(&mut storage, 1..=synced);
    for lsn in synced + 1..=last {
        storage.append(record(lsn).borrow()).unwrap();
    }
    // Mutation 1 is the write; mutation 2, the sync, stops the process.
    directory.halt_in(2);
    assert!(storage.flush_and_sync().is_err());
    directory
}

/// Tears the single unsynced record `lsn 4` at every byte offset, from nothing written to the
/// whole frame written, and checks what recovery keeps and removes each time.
#[test]
fn torn_tail_at_every_byte_of_last_record_is_truncated_and_reported() {
    let torn_lsn = 4;
    let frame = usize::try_from(frame_size(torn_lsn)).unwrap();
    let torn_offset = frame_offset(1, torn_lsn);
    for keep in 0..=frame {
        let directory = directory_with_unsynced_batch(3, torn_lsn);
        assert_eq!(directory.crash_with_torn_write(keep).unwrap(), keep);
        let recovered = recover(&directory);
        let report = &recovered.report;
        if keep == frame {
            assert_eq!(recovered.records, records(1..=4), "complete frame kept (keep {keep})");
            assert_eq!(report.torn_tail, None);
        } else {
            assert_eq!(recovered.records, records(1..=3), "torn frame dropped (keep {keep})");
            let expected = (keep > 0).then(|| TornTail {
                file_name: "log-00000000000000000001.seg".to_owned(),
                offset: torn_offset,
                size_bytes: visible_size(&encoded_frame(torn_lsn)[..keep]),
            });
            assert_eq!(report.torn_tail, expected, "keep {keep}");
        }
        assert_eq!(report.start, RecoveryStart::LogOnly);
        // The repaired log accepts the next record and recovers cleanly again.
        let mut storage = recovered.storage;
        let next = storage.next_lsn();
        append_and_sync(&mut storage, next..=next);
        let again = recover(&directory);
        assert_eq!(again.records, records(1..=next), "after re-append (keep {keep})");
        assert_eq!(again.report.torn_tail, None);
    }
}

/// A group commit of three records torn at every byte keeps exactly the complete frames.
#[test]
fn torn_group_commit_keeps_only_complete_frames() {
    let batch = 4..=6;
    let total: u64 = batch.clone().map(frame_size).sum();
    for keep in 0..=total {
        let directory = directory_with_unsynced_batch(3, 6);
        directory.crash_with_torn_write(usize::try_from(keep).unwrap()).unwrap();
        let recovered = recover(&directory);
        let complete = batch.clone().take_while(|lsn| frame_offset(4, lsn + 1) <= keep).count() as u64;
        assert_eq!(recovered.records, records(1..=3 + complete), "keep {keep}");
        let partial = usize::try_from(keep - frame_offset(4, 4 + complete)).unwrap();
        let torn_size = if complete == 3 { 0 } else { visible_size(&encoded_frame(4 + complete)[..partial]) };
        assert_eq!(
            recovered.report.torn_tail.as_ref().map_or(0, |torn| torn.size_bytes),
            torn_size,
            "keep {keep}"
        );
    }
}

/// A torn first record of a freshly rolled-over segment is truncated there, and the earlier
/// segment is untouched.
#[test]
fn torn_tail_in_new_segment_after_rollover_is_truncated() {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    let mut lsn = 0;
    while common::segment_names(&directory).len() < 2 {
        lsn += 1;
        append_and_sync(&mut storage, lsn..=lsn);
    }
    // `lsn` opened the second segment. Tear the next record in it.
    storage.append(record(lsn + 1).borrow()).unwrap();
    directory.halt_in(2);
    assert!(storage.flush_and_sync().is_err());
    directory.crash_with_torn_write(10).unwrap();
    let recovered = recover(&directory);
    assert_eq!(recovered.records, records(1..=lsn));
    let torn = recovered.report.torn_tail.expect("torn tail reported");
    assert_eq!(torn.file_name, format!("log-{lsn:020}.seg"));
    assert_eq!(
        (torn.offset, torn.size_bytes),
        (frame_size(lsn), visible_size(&encoded_frame(lsn + 1)[..10]))
    );
}

/// Without a torn write, a crash before the sync simply loses the unsynced batch.
#[test]
fn crash_before_sync_loses_whole_unsynced_batch_without_torn_tail() {
    let directory = directory_with_unsynced_batch(3, 6);
    directory.crash().unwrap();
    let recovered = recover(&directory);
    assert_eq!(recovered.records, records(1..=3));
    assert_eq!(recovered.report.torn_tail, None);
    assert_eq!(recovered.report.last_lsn, 3);
}

/// Recovery zeroes a torn tail in up to three synced writes. A crash at any of those steps,
/// with the in-flight write torn at any byte, must leave a log the next recovery reads the
/// same way: records 1..=3, nothing else, and no corruption.
#[test]
fn crash_during_torn_tail_repair_at_every_step_recovers_the_same_log() {
    let frame = usize::try_from(frame_size(4)).unwrap();
    // A tear inside the header, and one inside the payload.
    for torn_keep in [20, frame - 3] {
        for step in 1..=6 {
            for repair_keep in 0..=frame {
                let directory = directory_with_unsynced_batch(3, 4);
                directory.crash_with_torn_write(torn_keep).unwrap();
                directory.halt_in(step);
                if common::try_recover(directory.clone(), common::config()).is_ok() {
                    // The repair needed fewer steps than `step` (a tear inside the header
                    // leaves no payload to zero); nothing left to interrupt.
                    assert!(step > 2, "the repair has at least one write and one sync");
                    continue;
                }
                directory.crash_with_torn_write(repair_keep).unwrap();
                let recovered = recover(&directory);
                assert_eq!(
                    recovered.records,
                    records(1..=3),
                    "torn {torn_keep}, step {step}, keep {repair_keep}"
                );
            }
        }
    }
}
