//! Direct (`O_DIRECT`) writes of log files through [`FsDirectory`]: whatever the offsets and
//! lengths, a log file ends up holding exactly the bytes a buffered writer would have put
//! there, plus zeros to the end of the last block written; files of other kinds, and writes
//! whose padding would pass the file's size, go through the page cache; a log written direct
//! recovers like any other.
//!
//! The directory lives under Cargo's target directory, which is on a disk filesystem (a
//! tmpfs `/tmp` refuses `O_DIRECT`). Where the filesystem refuses it anyway, the tests still
//! check the bytes, and say that direct writes were not exercised.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use allocdb_storage::{
    DIRECT_WRITE_MIN_BYTES_DEFAULT, FsDirectory, FsFile, LogDirectory, LogFile, Storage, StorageConfig,
};
use common::{append_and_sync, config, frame_size, record, records, try_recover};

const BLOCK: usize = 4_096;

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Whether this filesystem takes `O_DIRECT` at all, asked independently of the code under test.
fn filesystem_takes_direct_writes(path: &std::path::Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let flag = i32::try_from(rustix::fs::OFlags::DIRECT.bits()).unwrap();
    let probe = path.join("probe");
    let opened = std::fs::OpenOptions::new().write(true).create(true).custom_flags(flag).open(&probe);
    let _ = std::fs::remove_file(&probe);
    opened.is_ok()
}

/// A fresh 256 KiB log segment in a directory with the default direct-write minimum; keep the
/// directory alive while the file is used.
fn default_segment() -> (tempfile::TempDir, FsFile) {
    let directory_path = scratch();
    let directory = FsDirectory::open(directory_path.path()).unwrap();
    let mut file = directory.create("log-00000000000000000001.seg").unwrap();
    file.allocate(256 * 1024).unwrap();
    (directory_path, file)
}

/// A directory whose log files take every write direct, however short.
fn every_write_direct(path: &std::path::Path) -> FsDirectory {
    FsDirectory::open(path).unwrap().with_direct_write_min_bytes(0)
}

fn read_all(file: &FsFile) -> Vec<u8> {
    let mut bytes = vec![0; usize::try_from(file.size_bytes().unwrap()).unwrap()];
    file.read_exact_at(0, &mut bytes).unwrap();
    bytes
}

/// A deterministic byte pattern with no zeros, so padding and misplaced bytes show.
fn pattern(seed: usize, length: usize) -> Vec<u8> {
    (0..length).map(|index| u8::try_from((seed * 31 + index * 7) % 251 + 1).unwrap()).collect()
}

/// Appends patterns of `lengths` from offset 0 and checks the whole file against an in-memory
/// model after each; returns the model.
fn append_checking_each(file: &mut FsFile, lengths: &[usize]) -> Vec<u8> {
    let mut model = vec![0_u8; usize::try_from(file.size_bytes().unwrap()).unwrap()];
    let mut offset = 0;
    for (seed, &length) in lengths.iter().enumerate() {
        let data = pattern(seed, length);
        file.write_all_at(offset as u64, &data).unwrap();
        model[offset..offset + length].copy_from_slice(&data);
        offset += length;
        assert_eq!(read_all(file), model, "after append {seed} ({length} bytes at {})", offset - length);
    }
    model
}

/// Appends of every awkward shape (inside a block, across blocks, exactly at boundaries,
/// larger than the writer's 1 MiB chunk) leave the same bytes as a plain in-memory model.
#[test]
fn appends_of_any_shape_leave_exactly_the_written_bytes() {
    for min_bytes in [0, DIRECT_WRITE_MIN_BYTES_DEFAULT] {
        appends_of_any_shape_leave_exactly_the_written_bytes_with(min_bytes);
    }
}

fn appends_of_any_shape_leave_exactly_the_written_bytes_with(min_bytes: usize) {
    let directory_path = scratch();
    let directory = FsDirectory::open(directory_path.path()).unwrap().with_direct_write_min_bytes(min_bytes);
    let mut file = directory.create("log-00000000000000000001.seg").unwrap();
    let size = 4 << 20;
    file.allocate(size).unwrap();
    if filesystem_takes_direct_writes(directory_path.path()) {
        assert!(file.writes_direct(), "a log file on a filesystem that takes O_DIRECT must write direct");
    } else {
        eprintln!("note: this filesystem refuses O_DIRECT; checked the buffered path only");
    }
    let lengths = [1, 68, 4_095, 4_096, 4_097, 29_000, 3, (1 << 20) + 123, 2 * BLOCK, 5, 70_001];
    let model = append_checking_each(&mut file, &lengths);
    file.sync_data().unwrap();
    drop(file);
    let reopened = directory.open("log-00000000000000000001.seg").unwrap();
    assert_eq!(read_all(&reopened), model);
}

/// A write that does not continue the previous one reads the block's leading bytes back from
/// the file, and zeroes the rest of its last block: the padding the `LogFile` contract allows.
#[test]
fn a_write_elsewhere_keeps_the_bytes_before_it_and_zeroes_the_rest_of_its_block() {
    let directory_path = scratch();
    let directory = every_write_direct(directory_path.path());
    let mut file = directory.create("log-00000000000000000001.seg").unwrap();
    file.allocate(64 * 1024).unwrap();
    let first = pattern(1, 6_000);
    file.write_all_at(0, &first).unwrap();
    let second = pattern(2, 10);
    file.write_all_at(5_000, &second).unwrap();

    let bytes = read_all(&file);
    assert_eq!(bytes[..5_000], first[..5_000]);
    assert_eq!(bytes[5_000..5_010], second[..]);
    if file.writes_direct() {
        assert!(bytes[5_010..2 * BLOCK].iter().all(|byte| *byte == 0), "padding to the block end is zeros");
    } else {
        assert_eq!(bytes[5_010..6_000], first[5_010..6_000], "a buffered write changes only its bytes");
    }
    assert!(bytes[2 * BLOCK..].iter().all(|byte| *byte == 0));

    // A fresh handle knows nothing of the last block and reads it back before appending.
    let mut again = directory.open("log-00000000000000000001.seg").unwrap();
    let third = pattern(3, 100);
    again.write_all_at(5_010, &third).unwrap();
    let bytes = read_all(&again);
    assert_eq!(bytes[5_000..5_010], second[..]);
    assert_eq!(bytes[5_010..5_110], third[..]);
    assert_eq!(bytes[..5_000], first[..5_000]);
}

/// Padding never changes a file's size: a log file whose size is not a multiple of the block
/// takes its last partial block through the page cache, and the direct writer then forgets
/// its copy of the block that write touched.
#[test]
fn a_write_into_a_partial_last_block_keeps_the_file_size() {
    let directory_path = scratch();
    let directory = every_write_direct(directory_path.path());
    let mut file = directory.create("log-00000000000000000001.seg").unwrap();
    file.allocate(2 * 4_096 + 1_000).unwrap();
    let data = pattern(4, 500);
    file.write_all_at(8_400, &data).unwrap();
    file.write_all_at(100, &data).unwrap();
    assert_eq!(file.size_bytes().unwrap(), 9_192);
    let bytes = read_all(&file);
    assert_eq!(bytes[8_400..8_900], data[..]);
    assert_eq!(bytes[100..600], data[..]);
    assert!(bytes[8_900..].iter().all(|byte| *byte == 0));

    // Direct into the block before the last, then through the page cache across into the
    // last, then direct into the first again: the leading bytes come from the file.
    let direct = pattern(5, 100);
    file.write_all_at(8_000, &direct).unwrap();
    let buffered = pattern(6, 900);
    file.write_all_at(8_100, &buffered).unwrap();
    let last = pattern(7, 10);
    file.write_all_at(8_150, &last).unwrap();
    let bytes = read_all(&file);
    assert_eq!(bytes[8_000..8_100], direct[..]);
    assert_eq!(bytes[8_100..8_150], buffered[..50], "bytes written through the page cache are kept");
    assert_eq!(bytes[8_150..8_160], last[..]);
    assert_eq!(file.size_bytes().unwrap(), 9_192);
}

/// Only log files write direct: a snapshot file is written at unaligned offsets (a 36-byte
/// header, then the payload) and must keep every byte; and `with_direct_io(false)` turns it off.
#[test]
fn snapshot_files_and_a_directory_without_direct_io_write_through_the_page_cache() {
    let directory_path = scratch();
    let directory = FsDirectory::open(directory_path.path()).unwrap();
    let snapshot = directory.create("snapshot-00000000000000000007.snap.tmp").unwrap();
    assert!(!snapshot.writes_direct());
    let buffered = FsDirectory::open(directory_path.path()).unwrap().with_direct_io(false);
    let segment = buffered.create("log-00000000000000000001.seg").unwrap();
    assert!(!segment.writes_direct());
}

/// A log written direct recovers record for record, whether every write goes direct or only
/// groups of the default minimum and more: small groups, one group above the minimum, small
/// groups again until a rollover, then a reopen and more appends (the reopened segment's
/// writer knows nothing of its last block and reads it back). The segments are whole blocks,
/// so the writes really go direct.
#[test]
fn a_log_written_direct_recovers_every_record() {
    let config =
        StorageConfig { segment_size_bytes: 32 * 1_024, buffer_size_bytes_max: 64 * 1_024, ..config() };
    let minimum = DIRECT_WRITE_MIN_BYTES_DEFAULT as u64;
    for min_bytes in [0, DIRECT_WRITE_MIN_BYTES_DEFAULT] {
        let directory_path = scratch();
        let path = directory_path.path().join("node");
        let open = || FsDirectory::open(&path).unwrap().with_direct_write_min_bytes(min_bytes);
        let mut storage = try_recover(open(), config).unwrap().storage;
        let mut last = 0;
        for _ in 0..8 {
            append_and_sync(&mut storage, last + 1..=last + 7);
            last += 7;
        }
        let large = (1..=minimum)
            .find(|count| (last + 1..=last + count).map(frame_size).sum::<u64>() > minimum)
            .unwrap();
        append_and_sync(&mut storage, last + 1..=last + large);
        last += large;
        while storage.segment_names().len() < 2 {
            append_and_sync(&mut storage, last + 1..=last + 7);
            last += 7;
        }
        drop(storage);
        let recovered = try_recover(open(), config).unwrap();
        assert_eq!(recovered.records, records(1..=last), "min_bytes {min_bytes}");
        let mut storage = recovered.storage;
        append_and_sync(&mut storage, last + 1..=last + 4);
        drop(storage);
        assert_eq!(
            try_recover(open(), config).unwrap().records,
            records(1..=last + 4),
            "min_bytes {min_bytes}"
        );
    }
}

/// Bytes this thread has made the kernel read from the device so far (`/proc/thread-self/io`);
/// `None` where the kernel does not count them.
fn device_bytes_read_by_this_thread() -> Option<u64> {
    let counters = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    counters.lines().find_map(|line| line.strip_prefix("read_bytes: ")).and_then(|value| value.parse().ok())
}

/// Whether reading back the byte at `offset` makes the kernel read from the device, that is,
/// whether its page was not in the page cache (afterwards it is); `None` where reads are not
/// counted.
fn reading_back_needs_the_device(file: &FsFile, offset: usize) -> Option<bool> {
    let before = device_bytes_read_by_this_thread()?;
    let mut byte = [0_u8; 1];
    file.read_exact_at(offset as u64, &mut byte).unwrap();
    Some(device_bytes_read_by_this_thread()? > before)
}

/// Writes shorter than the minimum go through the page cache and longer ones go direct, and
/// both write the same bytes: whole blocks, zeros after the data. The route shows in the page
/// cache: a direct write leaves its pages out of it (reading them back needs the device), a
/// page-cache write leaves them in.
#[test]
fn short_writes_go_through_the_page_cache_and_long_ones_go_direct_with_the_same_bytes() {
    let (_directory_path, mut file) = default_segment();
    let long = DIRECT_WRITE_MIN_BYTES_DEFAULT + 100;
    let mut model = append_checking_each(&mut file, &[long, 10, 3_000, long, 1, long]);
    if !file.writes_direct() || device_bytes_read_by_this_thread().is_none() {
        eprintln!("note: no O_DIRECT or no read counters here; checked the bytes only");
        return;
    }
    // The data ends inside a block, 100 bytes after `mark`, which is 50 bytes or more into
    // its block.
    let end = model.iter().rposition(|byte| *byte != 0).unwrap() + 1;
    let mark = end - 100;
    assert!(mark % BLOCK >= 50, "the test needs the mark well inside a block");

    let exactly_minimum = pattern(9, DIRECT_WRITE_MIN_BYTES_DEFAULT);
    let direct_at = mark - DIRECT_WRITE_MIN_BYTES_DEFAULT;
    file.write_all_at(direct_at as u64, &exactly_minimum).unwrap();
    assert_eq!(reading_back_needs_the_device(&file, mark - 1), Some(true), "the minimum goes direct");
    model[direct_at..mark].copy_from_slice(&exactly_minimum);
    model[mark..mark.div_ceil(BLOCK) * BLOCK].fill(0);
    assert_eq!(read_all(&file), model, "a direct write zeroes the rest of its last block");

    // Inside the direct write's last block: the page-cache write carries the whole block,
    // so the 40 bytes after it, which held data, are zeros too.
    let short = pattern(8, 10);
    file.write_all_at((mark - 50) as u64, &short).unwrap();
    assert_eq!(reading_back_needs_the_device(&file, mark - 1), Some(false), "a short write is cached");
    model[mark - 50..mark - 40].copy_from_slice(&short);
    model[mark - 40..mark].fill(0);
    assert_eq!(read_all(&file), model, "a page-cache write carries the same whole block");
}

/// A short write that continues the data in a block the page cache does not hold (its last
/// write went direct) writes the whole block from the writer's copy: the kernel reads nothing
/// from the device on the writing thread, which a write of part of the page would make it do.
#[test]
fn a_short_write_after_a_direct_one_reads_nothing_from_the_device() {
    let (_directory_path, mut file) = default_segment();
    let long = pattern(1, DIRECT_WRITE_MIN_BYTES_DEFAULT + 1_000);
    file.write_all_at(0, &long).unwrap();
    let Some(before) = device_bytes_read_by_this_thread().filter(|_| file.writes_direct()) else {
        eprintln!("note: no O_DIRECT or no read counters here; nothing to check");
        return;
    };
    let mut offset = long.len();
    for seed in 2..6 {
        let short = pattern(seed, 700);
        file.write_all_at(offset as u64, &short).unwrap();
        offset += short.len();
    }
    assert_eq!(device_bytes_read_by_this_thread(), Some(before), "short writes read from the device");
    let bytes = read_all(&file);
    assert_eq!(bytes[..long.len()], long[..]);
    assert_eq!(bytes[long.len()..long.len() + 700], pattern(2, 700)[..]);
    assert_eq!(bytes[offset - 700..offset], pattern(5, 700)[..]);
    assert!(bytes[offset..].iter().all(|byte| *byte == 0));
}

/// The engine's pipeline on a real disk, every write direct: while one group's pending sync
/// runs on another thread, the next group is appended; rollovers (written and synced at once)
/// fall between pending syncs, and one-block segments put a rollover's write in the block the
/// segment's first write went to. The log recovers record for record.
#[test]
fn pipelined_pending_writes_across_rollovers_recover_every_record() {
    for segment_size_bytes in [BLOCK as u64, 16 * 1_024] {
        pipelined_pending_writes_recover_every_record_with(segment_size_bytes);
    }
}

fn pipelined_pending_writes_recover_every_record_with(segment_size_bytes: u64) {
    let directory_path = scratch();
    let path = directory_path.path().join("node");
    let config = StorageConfig { segment_size_bytes, buffer_size_bytes_max: 8 * 1_024, ..config() };
    let open = || every_write_direct(&path);
    let mut storage = try_recover(open(), config).unwrap().storage;
    let mut next_lsn = 1;
    let mut append = |storage: &mut Storage<FsDirectory>, count: u64| {
        for _ in 0..count {
            storage.append(record(next_lsn).borrow()).unwrap();
            next_lsn += 1;
        }
    };
    append(&mut storage, 3);
    for round in 0..120_u64 {
        let mut pending = storage.write_buffered().unwrap();
        let syncing = std::thread::spawn(move || {
            pending.sync();
            pending
        });
        append(&mut storage, round % 23 + 1);
        storage.complete_sync(syncing.join().unwrap()).unwrap();
    }
    storage.flush_and_sync().unwrap();
    let last = storage.durable_lsn();
    let segments = storage.segment_names().len();
    assert!(segments >= 3, "the test must cross rollovers; it made {segments} segments");
    drop(storage);
    let recovered = try_recover(open(), config).unwrap();
    assert_eq!(recovered.records, records(1..=last), "segments of {segment_size_bytes} bytes");
}
