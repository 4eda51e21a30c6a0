//! Round trips through the real filesystem ([`FsDirectory`]) in a temporary directory: the
//! production implementation of the I/O traits behaves like the simulated one for appends,
//! rollover, preallocation, snapshots, torn tails and corruption.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use allocdb_storage::{FsDirectory, RecoveryError, RecoveryStart, ReplayError};
use common::{
    append_and_sync, config, encoded_frame, frame_offset, record, records, snapshot_payload, try_recover,
};

fn recover_fs(path: &std::path::Path) -> common::Recovered<FsDirectory> {
    match try_recover(FsDirectory::open(path).unwrap(), config()) {
        Ok(recovered) => recovered,
        Err(error) => panic!("recovery failed: {error}"),
    }
}

fn segment_files(path: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("log-"))
        .collect();
    names.sort();
    names
}

/// Append, roll over, snapshot, release, reopen: everything comes back from real files.
#[test]
fn filesystem_round_trip_with_snapshot_and_rollover() {
    let temporary = tempfile::tempdir().unwrap();
    let path = temporary.path().join("node");
    let mut storage = recover_fs(&path).storage;
    for batch in 0..6 {
        append_and_sync(&mut storage, batch * 5 + 1..=batch * 5 + 5);
    }
    let segments = segment_files(&path);
    assert!(segments.len() >= 3, "{segments:?}");
    for name in &segments {
        assert_eq!(std::fs::metadata(path.join(name)).unwrap().len(), config().segment_size_bytes, "{name}");
    }
    let installed = storage.install_snapshot(25, record(25).slot, &snapshot_payload(25)).unwrap();
    assert!(installed.segments_released >= 1);
    append_and_sync(&mut storage, 31..=33);
    drop(storage);

    let recovered = recover_fs(&path);
    assert_eq!(recovered.report.start, RecoveryStart::SnapshotAndLog);
    assert_eq!(recovered.snapshot.as_ref().map(|image| image.payload.clone()), Some(snapshot_payload(25)));
    assert_eq!(recovered.records, records(26..=33));
    assert_eq!(recovered.report.last_slot, record(33).slot);
    assert!(path.join("snapshot-00000000000000000025.snap").exists());
}

/// A partial frame written after the last record of a real file is truncated and reported,
/// and the bytes on disk are zeros again.
#[test]
fn filesystem_torn_tail_is_truncated() {
    let temporary = tempfile::tempdir().unwrap();
    let path = temporary.path().to_path_buf();
    let mut storage = recover_fs(&path).storage;
    append_and_sync(&mut storage, 1..=4);
    drop(storage);
    let segment = path.join("log-00000000000000000001.seg");
    let offset = frame_offset(1, 5);
    let partial = &encoded_frame(5)[..20];
    OpenOptions::new().write(true).open(&segment).unwrap().write_all_at(partial, offset).unwrap();

    let recovered = recover_fs(&path);
    assert_eq!(recovered.records, records(1..=4));
    let torn = recovered.report.torn_tail.expect("torn tail");
    assert_eq!(torn.offset, offset);
    let bytes = std::fs::read(&segment).unwrap();
    assert!(bytes[usize::try_from(offset).unwrap()..].iter().all(|byte| *byte == 0));
}

/// A damaged middle record in a real file fails closed.
#[test]
fn filesystem_middle_corruption_fails_closed() {
    let temporary = tempfile::tempdir().unwrap();
    let path = temporary.path().to_path_buf();
    let mut storage = recover_fs(&path).storage;
    append_and_sync(&mut storage, 1..=4);
    drop(storage);
    let segment = path.join("log-00000000000000000001.seg");
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .write_all_at(b"?", frame_offset(1, 2) + 40)
        .unwrap();
    let result = try_recover(FsDirectory::open(&path).unwrap(), config());
    assert!(
        matches!(result, Err(ReplayError::Recovery(RecoveryError::Corruption { offset, .. })) if offset == frame_offset(1, 2))
    );
}
