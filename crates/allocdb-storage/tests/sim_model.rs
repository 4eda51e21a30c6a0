//! The simulated directory keeps its fault model: live versus durable bytes and names,
//! torn writes, failed syncs that lose data, halts, stale handles, and determinism.
//!
//! Every other fault test relies on these properties, so they are pinned here directly
//! against the `LogDirectory`/`LogFile` traits.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use allocdb_storage::{LogDirectory, LogFile, SimDirectory};

fn durable_file(directory: &SimDirectory, name: &str, bytes: &[u8]) -> allocdb_storage::SimFile {
    let mut file = directory.create(name).unwrap();
    file.write_all_at(0, bytes).unwrap();
    file.sync_data().unwrap();
    directory.sync().unwrap();
    file
}

fn read_all(directory: &SimDirectory, name: &str) -> Vec<u8> {
    let file = directory.open(name).unwrap();
    let mut bytes = vec![0; usize::try_from(file.size_bytes().unwrap()).unwrap()];
    file.read_exact_at(0, &mut bytes).unwrap();
    bytes
}

/// Synced bytes survive a crash; bytes written after the last sync do not.
#[test]
fn crash_keeps_synced_bytes_and_loses_unsynced_ones() {
    let directory = SimDirectory::new();
    let mut file = durable_file(&directory, "a", b"durable");
    file.write_all_at(7, b" and live").unwrap();
    assert_eq!(read_all(&directory, "a"), b"durable and live");
    directory.crash().unwrap();
    assert_eq!(read_all(&directory, "a"), b"durable");
}

/// A new name needs a directory sync to survive; so does a rename or a removal.
#[test]
fn names_need_a_directory_sync_to_survive_a_crash() {
    let directory = SimDirectory::new();
    durable_file(&directory, "kept", b"1");
    let mut unsynced = directory.create("new").unwrap();
    unsynced.write_all_at(0, b"2").unwrap();
    unsynced.sync_data().unwrap();
    directory.rename("kept", "renamed").unwrap();
    directory.crash().unwrap();
    assert_eq!(directory.file_names(), ["kept"]);

    directory.remove("kept").unwrap();
    directory.crash().unwrap();
    assert_eq!(directory.file_names(), ["kept"]);
    directory.remove("kept").unwrap();
    directory.sync().unwrap();
    directory.crash().unwrap();
    assert!(directory.file_names().is_empty());
}

/// A torn crash keeps exactly the requested prefix of the last unsynced write.
#[test]
fn torn_crash_keeps_prefix_of_last_unsynced_write() {
    let directory = SimDirectory::new();
    let mut file = durable_file(&directory, "a", b"0000000000");
    file.write_all_at(2, b"abcdef").unwrap();
    assert_eq!(directory.unsynced_write_size_bytes(), Some(6));
    assert_eq!(directory.crash_with_torn_write(3).unwrap(), 3);
    assert_eq!(read_all(&directory, "a"), b"00abc00000");
}

/// After a failed sync the dirty bytes are dropped: a later successful sync does not save
/// them (the Linux writeback-error behaviour that makes the storage poison itself).
#[test]
fn failed_sync_drops_dirty_bytes_for_good() {
    let directory = SimDirectory::new();
    let mut file = durable_file(&directory, "a", b"old");
    file.write_all_at(0, b"new").unwrap();
    directory.fail_sync_in(1);
    assert!(file.sync_data().is_err());
    file.sync_data().unwrap();
    assert_eq!(read_all(&directory, "a"), b"new", "the page cache still shows the write");
    directory.crash().unwrap();
    assert_eq!(read_all(&directory, "a"), b"old");
}

/// The Nth write fails without writing; later writes succeed.
#[test]
fn scheduled_write_failure_hits_exactly_the_nth_write() {
    let directory = SimDirectory::new();
    let mut file = durable_file(&directory, "a", b"");
    directory.fail_write_in(2);
    file.write_all_at(0, b"1").unwrap();
    assert!(file.write_all_at(1, b"2").is_err());
    file.write_all_at(1, b"3").unwrap();
    assert_eq!(read_all(&directory, "a"), b"13");
}

/// A halt fails the Nth mutation and everything after it, reads included, until a crash;
/// handles opened before the crash stay dead.
#[test]
fn halt_stops_everything_until_crash_and_stales_old_handles() {
    let directory = SimDirectory::new();
    let mut file = durable_file(&directory, "a", b"x");
    directory.halt_in(1);
    assert!(file.write_all_at(0, b"y").is_err());
    assert!(directory.is_halted());
    assert!(directory.list().is_err());
    assert!(file.size_bytes().is_err());
    directory.crash().unwrap();
    assert!(!directory.is_halted());
    assert!(file.size_bytes().is_err(), "a handle from before the crash must fail");
    assert_eq!(read_all(&directory, "a"), b"x");
}

/// Media faults change live and durable bytes alike.
#[test]
fn flipped_bit_is_durable() {
    let directory = SimDirectory::new();
    durable_file(&directory, "a", &[0b0000_0001]);
    directory.flip_bit("a", 0, 1).unwrap();
    directory.crash().unwrap();
    assert_eq!(read_all(&directory, "a"), [0b0000_0011]);
    assert!(directory.flip_bit("a", 5, 0).is_err(), "offset past the end");
}

/// Preallocated space reads as zeros without being written.
#[test]
fn allocated_space_reads_as_zeros() {
    let directory = SimDirectory::new();
    let mut file = directory.create("a").unwrap();
    file.allocate(1 << 20).unwrap();
    file.write_all_at(10, b"z").unwrap();
    let mut bytes = [1_u8; 16];
    file.read_exact_at((1 << 20) - 16, &mut bytes).unwrap();
    assert_eq!(bytes, [0; 16]);
    assert!(file.read_exact_at(1 << 20, &mut [0]).is_err());
}

/// The same calls give the same durable state and counters.
#[test]
fn same_script_gives_same_state() {
    let run = || {
        let directory = SimDirectory::new();
        let mut file = durable_file(&directory, "a", b"seed");
        for step in 0..20_u64 {
            file.write_all_at(step * 3, &step.to_le_bytes()).unwrap();
            if step % 4 == 0 {
                file.sync_data().unwrap();
            }
        }
        directory.crash_with_torn_write(5).unwrap();
        (directory.durable_bytes("a"), directory.counters())
    };
    assert_eq!(run(), run());
}
