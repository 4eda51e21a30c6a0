//! A log file create that fails after the file was made (here: its direct handle cannot be
//! opened because the process is out of file descriptors) removes the file again, so a retry
//! creates it and a restart never finds an empty file nobody wrote.
//!
//! The test lowers this process's open-file limit, so it is the only test in its binary: no
//! other test may open files while the limit is low.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use allocdb_storage::{FsDirectory, LogDirectory};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The lowest file descriptor number not open in this process (what the next `open` gets).
fn lowest_free_descriptor() -> u64 {
    use std::os::fd::AsRawFd;
    let probe = std::fs::File::open("/dev/null").unwrap();
    u64::try_from(probe.as_raw_fd()).unwrap()
}

#[test]
fn a_create_whose_direct_handle_cannot_be_opened_leaves_no_file() {
    let directory_path = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let directory = FsDirectory::open(directory_path.path()).unwrap();
    let name = "log-00000000000000000001.seg";
    let saved = getrlimit(Resource::Nofile);
    // The file itself opens as the lowest free descriptor; its direct handle would need the
    // next one, which the limit forbids.
    let lowest = lowest_free_descriptor();
    setrlimit(Resource::Nofile, Rlimit { current: Some(lowest + 1), maximum: saved.maximum }).unwrap();
    let created = directory.create(name);
    setrlimit(Resource::Nofile, saved).unwrap();

    let error = created.expect_err("the create must fail when its second open does");
    assert_eq!(error.raw_os_error(), Some(rustix::io::Errno::MFILE.raw_os_error()), "{error}");
    assert!(!directory_path.path().join(name).exists(), "a failed create left its file behind");
    let retried = directory.create(name).unwrap();
    drop(retried);
    assert!(directory_path.path().join(name).exists());
}
