//! Damaged snapshot files: fail closed unless the log still bridges an older state.
//!
//! Policy (`docs/recovery.md`): the newest snapshot is used if it verifies. If it does not,
//! recovery may start from the newest older snapshot (or from the empty state) only when the
//! log still holds every record after that older state, and it reports the rejected file.
//! Otherwise, or when the configuration forbids falling back, it fails naming the file and
//! the defect. A snapshot newer than the end of the log also fails closed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use allocdb_storage::{
    FallbackRefusal, Lsn, RecoveryError, RecoveryStart, RejectedSnapshot, ReplayError,
    SNAPSHOT_FILE_HEADER_SIZE_BYTES, SimDirectory, SnapshotDefect, SnapshotFallback, StorageConfig,
};
use common::{
    append_and_sync, config, record, records, recover, recovery_error, segment_first_lsn, segment_names,
    snapshot_payload, try_recover,
};

fn snapshot_file(lsn: Lsn) -> String {
    format!("snapshot-{lsn:020}.snap")
}

/// Records `1..=last` (one sync each), then a snapshot at each of `snapshots`.
fn build(last: Lsn, snapshots: &[Lsn]) -> SimDirectory {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    for lsn in 1..=last {
        append_and_sync(&mut storage, lsn..=lsn);
    }
    for &lsn in snapshots {
        storage.install_snapshot(lsn, record(lsn).slot, &snapshot_payload(lsn)).unwrap();
    }
    directory
}

fn unusable(error: RecoveryError) -> (String, SnapshotDefect, FallbackRefusal) {
    match error {
        RecoveryError::SnapshotUnusable { file, defect, refusal } => (file, defect, refusal),
        other => panic!("expected an unusable snapshot, got {other}"),
    }
}

/// The log before the snapshot was released, so nothing can replace it: fail closed.
#[test]
fn corrupt_snapshot_with_released_log_fails_closed() {
    let directory = build(40, &[30]);
    let log_first_lsn = segment_first_lsn(&segment_names(&directory)[0]);
    assert!(log_first_lsn > 1, "installation released the first segments");
    directory.flip_bit(&snapshot_file(30), SNAPSHOT_FILE_HEADER_SIZE_BYTES + 3, 6).unwrap();
    let error = recovery_error(&directory);
    let message = error.to_string();
    let (file, defect, refusal) = unusable(error);
    assert_eq!(file, snapshot_file(30));
    assert!(matches!(defect, SnapshotDefect::ChecksumMismatch { .. }));
    assert_eq!(refusal, FallbackRefusal::NotBridged { base_lsn: 0, log_first_lsn });
    assert!(
        message.contains(&snapshot_file(30)) && message.contains("checksum mismatch"),
        "message: {message}"
    );
}

/// A truncated snapshot is caught by its size before its checksum is computed.
#[test]
fn truncated_snapshot_fails_closed() {
    let directory = build(40, &[30]);
    let name = snapshot_file(30);
    let size = directory.durable_bytes(&name).unwrap().len() as u64;
    directory.set_size_durably(&name, size - 5).unwrap();
    let (_, defect, _) = unusable(recovery_error(&directory));
    assert_eq!(defect, SnapshotDefect::SizeMismatch { file_size_bytes: size - 5, expected_size_bytes: size });

    directory.set_size_durably(&name, 10).unwrap();
    let (_, defect, _) = unusable(recovery_error(&directory));
    assert_eq!(defect, SnapshotDefect::HeaderTruncated { file_size_bytes: 10, header_size_bytes: 36 });
}

/// Every header field of a snapshot, damaged, is reported as that field's defect.
#[test]
fn flipped_bit_in_every_snapshot_header_field_is_named() {
    for index in 0..SNAPSHOT_FILE_HEADER_SIZE_BYTES {
        let directory = build(40, &[30]);
        directory.flip_bit(&snapshot_file(30), index, 4).unwrap();
        let (_, defect, _) = unusable(recovery_error(&directory));
        let expected = match index {
            0..=3 => matches!(defect, SnapshotDefect::BadMagic { .. }),
            4..=5 => matches!(defect, SnapshotDefect::UnsupportedVersion { .. }),
            6..=7 => matches!(defect, SnapshotDefect::ReservedNotZero { .. }),
            8..=15 => matches!(defect, SnapshotDefect::LsnMismatch { name_lsn: 30, .. }),
            24..=31 => {
                matches!(defect, SnapshotDefect::SizeMismatch { .. } | SnapshotDefect::TooLarge { .. })
            }
            _ => matches!(defect, SnapshotDefect::ChecksumMismatch { .. }),
        };
        assert!(expected, "byte {index}: {defect}");
    }
}

/// Nothing was released (one segment), so the empty state plus the whole log replaces the
/// corrupt snapshot; the rejection is reported.
#[test]
fn corrupt_snapshot_with_full_log_falls_back_to_empty_state_and_reports_it() {
    let directory = build(8, &[5]);
    assert_eq!(segment_names(&directory), ["log-00000000000000000001.seg"]);
    directory.flip_bit(&snapshot_file(5), SNAPSHOT_FILE_HEADER_SIZE_BYTES, 0).unwrap();
    let recovered = recover(&directory);
    assert_eq!(recovered.snapshot, None);
    assert_eq!(recovered.records, records(1..=8));
    assert_eq!(recovered.report.start, RecoveryStart::LogOnly);
    let rejected: Vec<&str> =
        recovered.report.rejected_snapshots.iter().map(|rejected| rejected.file_name.as_str()).collect();
    assert_eq!(rejected, [snapshot_file(5)]);
}

/// With falling back disabled, the same directory fails closed.
#[test]
fn corrupt_snapshot_fails_closed_when_fallback_is_disabled() {
    let directory = build(8, &[5]);
    directory.flip_bit(&snapshot_file(5), SNAPSHOT_FILE_HEADER_SIZE_BYTES, 0).unwrap();
    let strict = StorageConfig { snapshot_fallback: SnapshotFallback::Never, ..config() };
    let Err(ReplayError::Recovery(error)) = try_recover(directory, strict) else {
        panic!("recovery succeeded")
    };
    assert_eq!(unusable(error).2, FallbackRefusal::Disabled);
}

/// A crash left both snapshots (the old one was not removed yet) and the whole log; the new
/// one is then damaged. Recovery uses the old one, reports the new one, and the next
/// installation cleans both up.
#[test]
fn corrupt_newest_snapshot_falls_back_to_bridged_older_snapshot() {
    let directory = build(40, &[12]);
    let mut storage = recover(&directory).storage;
    // Mutations: create, write header, write payload, sync, rename, sync directory; the 7th
    // would remove the old snapshot.
    directory.halt_in(7);
    assert!(storage.install_snapshot(30, record(30).slot, &snapshot_payload(30)).is_err());
    directory.crash().unwrap();
    directory.flip_bit(&snapshot_file(30), 20, 1).unwrap();

    let recovered = recover(&directory);
    assert_eq!(recovered.snapshot.as_ref().map(|image| image.lsn), Some(12));
    assert_eq!(recovered.records, records(13..=40));
    let rejected = &recovered.report.rejected_snapshots;
    assert!(
        matches!(rejected.as_slice(), [RejectedSnapshot { file_name, defect: SnapshotDefect::ChecksumMismatch { .. } }] if *file_name == snapshot_file(30))
    );

    let mut storage = recovered.storage;
    let installed = storage.install_snapshot(35, record(35).slot, &snapshot_payload(35)).unwrap();
    assert_eq!(installed.snapshots_removed, 2);
    let again = recover(&directory);
    assert_eq!((again.report.snapshot_lsn, again.report.rejected_snapshots.len()), (Some(35), 0));
}

/// A valid snapshot newer than the end of the log means acknowledged records were lost.
#[test]
fn snapshot_newer_than_end_of_log_fails_closed() {
    let donor = build(40, &[40]);
    let directory = build(20, &[]);
    directory.put_durably(&snapshot_file(40), &donor.durable_bytes(&snapshot_file(40)).unwrap());
    let error = recovery_error(&directory);
    assert!(
        matches!(&error, RecoveryError::LogBehindSnapshot { snapshot_lsn: 40, log_last_lsn: 20, snapshot_file } if *snapshot_file == self::snapshot_file(40)),
        "{error}"
    );
}

/// A temporary file from an interrupted installation is never read and is removed.
#[test]
fn leftover_temporary_snapshot_file_is_removed() {
    let directory = build(8, &[]);
    let temporary = "snapshot-00000000000000000005.snap.tmp";
    directory.put_durably(temporary, b"half a snapshot");
    let recovered = recover(&directory);
    assert_eq!(recovered.report.temporary_files_removed, 1);
    assert_eq!(recovered.snapshot, None);
    assert!(!directory.file_names().iter().any(|name| name == temporary));
}

/// A name of our shape that does not parse may be a damaged name of a needed file.
#[test]
fn malformed_storage_file_name_fails_closed() {
    let directory = build(3, &[]);
    directory.put_durably("log-12.seg", b"");
    assert!(
        matches!(recovery_error(&directory), RecoveryError::MalformedFileName { name } if name == "log-12.seg")
    );
    directory.remove_durably("log-12.seg").unwrap();
    directory.put_durably("notes.txt", b"operator notes");
    assert_eq!(recover(&directory).records, records(1..=3), "foreign files are ignored");
}
