//! A crash at any step of snapshot installation recovers to a correct state.
//!
//! Installation is: create the temporary file, write it, sync it, rename it into place, sync
//! the directory, remove each older snapshot (with a directory sync), then release each
//! covered segment (remove, directory sync). The tests count the mutations a successful
//! installation makes, then for every k stop the process at the k-th one, crash (losing
//! everything unsynced, or also tearing the last write), and recover. Either the old state
//! (old snapshot, full log) or the new one (new snapshot, the log after it) must come back,
//! with the same last lsn and slot, and the log must accept appends afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use allocdb_storage::{Lsn, SimDirectory, SnapshotInstalled};
use common::{append_and_sync, record, records, recover, segment_first_lsn, segment_names, snapshot_payload};

const LAST_LSN: Lsn = 40;

/// A log of `1..=LAST_LSN` over several segments, with a snapshot at each of `snapshots`.
fn build(snapshots: &[Lsn]) -> SimDirectory {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    for lsn in 1..=LAST_LSN {
        append_and_sync(&mut storage, lsn..=lsn);
    }
    for &lsn in snapshots {
        storage.install_snapshot(lsn, record(lsn).slot, &snapshot_payload(lsn)).unwrap();
    }
    assert!(segment_names(&directory).len() >= 3, "the test log must span several segments");
    directory
}

fn install(directory: &SimDirectory, lsn: Lsn) -> Result<SnapshotInstalled, allocdb_storage::SnapshotError> {
    let mut storage = recover(directory).storage;
    storage.install_snapshot(lsn, record(lsn).slot, &snapshot_payload(lsn))
}

/// Mutations a successful installation of a snapshot at `lsn` makes on top of `snapshots`.
fn installation_mutations(snapshots: &[Lsn], lsn: Lsn) -> u64 {
    let directory = build(snapshots);
    let mut storage = recover(&directory).storage;
    let before = directory.counters().mutations;
    storage.install_snapshot(lsn, record(lsn).slot, &snapshot_payload(lsn)).unwrap();
    directory.counters().mutations - before
}

/// Checks a recovery after an interrupted installation of `new_lsn` over `old_lsn`.
fn check_recovers_old_or_new(directory: &SimDirectory, old_lsn: Option<Lsn>, new_lsn: Lsn, step: u64) {
    let recovered = recover(directory);
    let snapshot_lsn = recovered.snapshot.as_ref().map(|image| image.lsn);
    assert!(
        snapshot_lsn == old_lsn || snapshot_lsn == Some(new_lsn),
        "step {step}: snapshot {snapshot_lsn:?}"
    );
    if let Some(image) = &recovered.snapshot {
        assert_eq!(image.payload, snapshot_payload(image.lsn), "step {step}");
        assert_eq!(image.slot, record(image.lsn).slot, "step {step}");
    }
    let first = snapshot_lsn.map_or(1, |lsn| lsn + 1);
    assert_eq!(recovered.records, records(first..=LAST_LSN), "step {step}");
    assert_eq!((recovered.report.last_lsn, recovered.report.last_slot), (LAST_LSN, record(LAST_LSN).slot));
    assert!(recovered.report.rejected_snapshots.is_empty(), "step {step}");
    // The recovered storage keeps working, and the next recovery agrees.
    let mut storage = recovered.storage;
    append_and_sync(&mut storage, LAST_LSN + 1..=LAST_LSN + 2);
    let again = recover(directory);
    assert_eq!(again.snapshot.map(|image| image.lsn), snapshot_lsn, "step {step}");
    assert_eq!(again.report.last_lsn, LAST_LSN + 2, "step {step}");
}

fn crash_at_every_step(old_snapshots: &[Lsn], new_lsn: Lsn, tear: bool) {
    let steps = installation_mutations(old_snapshots, new_lsn);
    assert!(steps >= 6, "expected create, writes, sync, rename, syncs and removes; got {steps}");
    for step in 1..=steps {
        let directory = build(old_snapshots);
        directory.halt_in(step);
        assert!(
            install(&directory, new_lsn).is_err(),
            "step {step} of {steps} did not stop the installation"
        );
        if tear {
            directory.crash_with_torn_write(5).unwrap();
        } else {
            directory.crash().unwrap();
        }
        check_recovers_old_or_new(&directory, old_snapshots.last().copied(), new_lsn, step);
    }
}

/// First snapshot of a log: a crash at any step gives the full log or the snapshot + rest.
#[test]
fn crash_at_every_step_of_first_snapshot_installation_recovers() {
    crash_at_every_step(&[], 30, false);
}

/// The same with the last unsynced write torn instead of lost.
#[test]
fn crash_with_torn_write_at_every_step_of_snapshot_installation_recovers() {
    crash_at_every_step(&[], 30, true);
}

/// Replacing an existing snapshot: a crash at any step gives the old or the new one, each
/// with the log it needs.
#[test]
fn crash_at_every_step_of_snapshot_replacement_recovers() {
    crash_at_every_step(&[12], 30, false);
    crash_at_every_step(&[12], 30, true);
}

/// A completed installation removes the older snapshot and exactly the covered segments.
#[test]
fn completed_installation_releases_covered_segments_and_older_snapshots() {
    let directory = build(&[12]);
    let before = segment_names(&directory);
    let installed = install(&directory, 30).unwrap();
    assert_eq!(installed.file_name, format!("snapshot-{:020}.snap", 30));
    assert_eq!(installed.snapshots_removed, 1);
    let after = segment_names(&directory);
    assert_eq!(installed.segments_released, (before.len() - after.len()) as u64);
    // The first remaining segment holds lsn 31, the first record the snapshot does not cover.
    assert!(installed.segments_released >= 1);
    assert!(segment_first_lsn(&after[0]) <= 31, "segment {} starts after lsn 31", after[0]);
    assert!(after.get(1).is_none_or(|second| segment_first_lsn(second) > 31), "a covered segment was kept");
    let snapshots: Vec<String> =
        directory.file_names().into_iter().filter(|name| name.starts_with("snapshot-")).collect();
    assert_eq!(snapshots, [installed.file_name]);
    let recovered = recover(&directory);
    assert_eq!(recovered.report.snapshot_lsn, Some(30));
    assert_eq!(recovered.records, records(31..=LAST_LSN));
}

/// A snapshot may not cover records that are only buffered, nor go backwards.
#[test]
fn snapshot_beyond_durable_log_or_not_newer_is_refused() {
    let directory = build(&[12]);
    let mut storage = recover(&directory).storage;
    storage.append(record(LAST_LSN + 1).borrow()).unwrap();
    assert!(matches!(
        storage.install_snapshot(LAST_LSN + 1, record(LAST_LSN + 1).slot, b"state"),
        Err(allocdb_storage::SnapshotError::AheadOfDurableLog { snapshot_lsn: 41, durable_lsn: 40 })
    ));
    assert!(matches!(
        storage.install_snapshot(12, record(12).slot, b"state"),
        Err(allocdb_storage::SnapshotError::NotNewer { current: 12, requested: 12 })
    ));
    assert!(storage.poison_cause().is_none(), "refusals are not I/O failures");
}
