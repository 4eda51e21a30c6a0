//! Round trips through the real filesystem ([`FsDirectory`]) in a temporary directory: the
//! production implementation of the I/O traits behaves like the simulated one for appends,
//! rollover, preallocation, snapshots, torn tails and corruption.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use allocdb_storage::{FsDirectory, LogDirectory, LogFile, RecoveryError, RecoveryStart, ReplayError};
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

/// Write pairs per query kind in `reading_a_size_leaves_the_change_time_unread`.
const ATTEMPTS: usize = 20;

/// Whether the write right after `query` is stamped with the fine-grained clock, that is,
/// whether `query` read the file's change time: with multigrain timestamps (Linux 6.13+), a
/// read change time makes the next write restamp the inode precisely, and an unread one leaves
/// the coarse stamp (usually unchanged within a clock tick).
fn next_write_is_stamped_fine(path: &std::path::Path, query: impl Fn()) -> bool {
    use std::os::unix::fs::MetadataExt;
    let file = OpenOptions::new().write(true).open(path).unwrap();
    // A read change time, then a write: the file now carries a fresh fine-grained stamp.
    std::fs::metadata(path).unwrap();
    file.write_all_at(b"b", 0).unwrap();
    query();
    let before = std::time::SystemTime::now();
    file.write_all_at(b"c", 0).unwrap();
    let metadata = std::fs::metadata(path).unwrap();
    let ctime = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(metadata.ctime()).unwrap(),
            u32::try_from(metadata.ctime_nsec()).unwrap(),
        );
    ctime >= before
}

/// Reading a log file's size does not read its change time, so the writes after it keep
/// coarse timestamps: on ext4 a precise restamp per write made every `fdatasync` write the
/// inode as well (`fs.rs`, "Sizes without timestamps"). Checked for the path and the open-file
/// forms against `metadata()`, which does read the change time; skipped where the filesystem
/// has no multigrain timestamps.
#[test]
fn reading_a_size_leaves_the_change_time_unread() {
    let directory_path = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let directory = FsDirectory::open(directory_path.path()).unwrap();
    let name = "log-00000000000000000001.seg";
    let file = directory.create(name).unwrap();
    let path = directory_path.path().join(name);
    std::fs::write(&path, b"a").unwrap();
    let fine_after =
        |query: &dyn Fn()| (0..ATTEMPTS).filter(|_| next_write_is_stamped_fine(&path, query)).count();
    let after_metadata = fine_after(&|| {
        std::fs::metadata(&path).unwrap();
    });
    if after_metadata < ATTEMPTS {
        eprintln!("note: no multigrain timestamps here ({after_metadata}/{ATTEMPTS}); nothing to check");
        return;
    }
    // A clock tick between the two writes can still give a later stamp now and then.
    let after_path_size = fine_after(&|| {
        allocdb_storage::file_size_bytes(&path).unwrap();
    });
    assert!(
        after_path_size < ATTEMPTS / 2,
        "file_size_bytes read the change time ({after_path_size}/{ATTEMPTS})"
    );
    let after_file_size = fine_after(&|| {
        file.size_bytes().unwrap();
    });
    assert!(
        after_file_size < ATTEMPTS / 2,
        "FsFile::size_bytes read the change time ({after_file_size}/{ATTEMPTS})"
    );
}
