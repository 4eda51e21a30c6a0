//! Recovery replay speed: a log of N records built with [`EngineCore`], then
//! [`EngineCore::open`] timed replaying the log alone (warm page cache, and cold after
//! `posix_fadvise(DONTNEED)` on this directory's files only), and again from a snapshot of the
//! same state. Every open is checked against the built state's digest.

use std::path::Path;
use std::time::Instant;

use allocdb_core::Kernel;
use allocdb_engine::{EngineCore, SystemClock, WriteRequest};
use allocdb_storage::{FsDirectory, RecoveryStart};

use crate::Options;
use crate::closed_loop::ThreadTimes;
use crate::report::{Table, format_range, median, milliseconds};
use crate::workload::{
    RESERVE_TTL_MS, RESOURCE_COUNT_MAX, Scale, Submitter, create_request, describe_reply, engine_config,
    is_fresh_ok, open_core,
};

/// Requests per group when building the recovery log (one sync each).
const BUILD_GROUP_SIZE: usize = 16_384;
/// Resources the recovery workload cycles through.
const BUILD_RESOURCE_COUNT: usize = 8_192;

const _: () =
    assert!(BUILD_RESOURCE_COUNT <= RESOURCE_COUNT_MAX as usize, "recovery resources fit the table");

/// What the table has no column for: the log built, and the fixed cost inside every open.
pub(crate) struct ReplayNotes {
    records: u64,
    log_bytes: u64,
    build_seconds: f64,
    snapshot_bytes: u64,
    snapshot_write_ms: f64,
    kernel_new_ms: Vec<f64>,
    warm_open_ms: Vec<f64>,
    /// Run-queue wait of the opening thread during each kind of open (warm, cold, snapshot).
    wait_ms: [Vec<f64>; 3],
}

impl ReplayNotes {
    pub(crate) fn print(&self) {
        let mebibyte = f64::from(1 << 20);
        println!(
            "recovery log: {} records, {:.1} MiB ({:.1} bytes/record), built in {:.1} s; \
             snapshot of the same state {:.1} MiB, written in {:.0} ms",
            self.records,
            self.log_bytes as f64 / mebibyte,
            self.log_bytes as f64 / self.records.max(1) as f64,
            self.build_seconds,
            self.snapshot_bytes as f64 / mebibyte,
            self.snapshot_write_ms,
        );
        let kernel_new_ms = median(&self.kernel_new_ms);
        let replay_ms = median(&self.warm_open_ms) - kernel_new_ms;
        println!(
            "fixed cost inside every open: Kernel::new (allocating this config's tables) {} ms; \
             warm log-only replay net of it: {:.0} records/s",
            format_range(&self.kernel_new_ms, 0),
            self.records as f64 / (replay_ms / 1_000.0),
        );
        println!(
            "run-queue wait inside the timed opens (CPU taken by other processes), ms: \
             log warm {}, log cold {}, snapshot {}",
            format_range(&self.wait_ms[0], 0),
            format_range(&self.wait_ms[1], 0),
            format_range(&self.wait_ms[2], 0),
        );
    }
}

pub(crate) fn run_recovery(options: &Options, path: &Path, table: &mut Table) -> ReplayNotes {
    let scale = options.scale;
    let records = options.replay_records.max(BUILD_RESOURCE_COUNT as u64 + 2);
    let build_started = Instant::now();
    let (log_bytes, digest) = build_log(path, records, scale);
    let build_seconds = build_started.elapsed().as_secs_f64();
    eprintln!("  recovery log: {records} records built in {build_seconds:.1} s");

    let kernel_new_ms: Vec<f64> = (0..options.repeats)
        .map(|_| {
            let started = Instant::now();
            let kernel = Kernel::new(engine_config(scale).kernel_config()).expect("kernel");
            let elapsed = started.elapsed();
            drop(kernel);
            milliseconds(elapsed)
        })
        .collect();
    let open = |start, records_replayed| time_open(path, scale, start, records_replayed, digest);
    let (warm, warm_wait): (Vec<f64>, Vec<f64>) =
        (0..options.repeats).map(|_| open(RecoveryStart::LogOnly, records)).unzip();
    let (cold, cold_wait): (Vec<f64>, Vec<f64>) = (0..options.repeats)
        .map(|_| {
            evict_from_page_cache(path);
            open(RecoveryStart::LogOnly, records)
        })
        .unzip();
    table.add_replay("replay log only, warm cache", records, &warm);
    table.add_replay("replay log only, cold cache", records, &cold);

    let mut core = open_core(path, scale);
    let snapshot_started = Instant::now();
    assert_eq!(core.snapshot_now(), None, "snapshot install");
    let snapshot_write_ms = milliseconds(snapshot_started.elapsed());
    drop(core);
    let snapshot_bytes = directory_size_bytes(path, ".snap");
    let (from_snapshot, snapshot_wait): (Vec<f64>, Vec<f64>) =
        (0..options.repeats).map(|_| open(RecoveryStart::SnapshotOnly, 0)).unzip();
    table.add_replay("open from snapshot of that state, warm cache", records, &from_snapshot);
    std::fs::remove_dir_all(path).expect("remove recovery directory");
    ReplayNotes {
        records,
        log_bytes,
        build_seconds,
        snapshot_bytes,
        snapshot_write_ms,
        kernel_new_ms,
        warm_open_ms: warm,
        wait_ms: [warm_wait, cold_wait, snapshot_wait],
    }
}

/// Writes exactly `records` records: creates, then rounds of reserve for every resource
/// followed by release of every lease, in groups of [`BUILD_GROUP_SIZE`]. Returns the log
/// bytes written and the final state digest.
fn build_log(path: &Path, records: u64, scale: Scale) -> (u64, u64) {
    let mut core = open_core(path, scale);
    let ttl_slots = engine_config(scale).ttl_slots_for_ms(RESERVE_TTL_MS);
    let mut submitters: Vec<Submitter> = (0..BUILD_RESOURCE_COUNT).map(Submitter::new).collect();
    let creates: Vec<WriteRequest> = (0..BUILD_RESOURCE_COUNT).map(create_request).collect();
    commit_checked(&mut core, &creates, None);
    let mut written = BUILD_RESOURCE_COUNT as u64;
    while written < records {
        for chunk in submitters.chunks_mut(BUILD_GROUP_SIZE) {
            let remaining = (records - written) as usize;
            let chunk_length = chunk.len().min(remaining);
            let chunk = &mut chunk[..chunk_length];
            let requests: Vec<WriteRequest> =
                chunk.iter_mut().map(|submitter| submitter.next_request(ttl_slots)).collect();
            commit_checked(&mut core, &requests, Some(chunk));
            written += requests.len() as u64;
            if written == records {
                break;
            }
        }
    }
    assert_eq!(core.kernel().last_applied_lsn(), records, "one record per request");
    let log_bytes = core.counters().log_bytes;
    let digest = core.kernel().state_digest();
    (log_bytes, digest)
}

fn commit_checked(
    core: &mut EngineCore<FsDirectory, SystemClock>,
    requests: &[WriteRequest],
    submitters: Option<&mut [Submitter]>,
) {
    let references: Vec<&WriteRequest> = requests.iter().collect();
    let mut replies = Vec::with_capacity(requests.len());
    core.commit_group(&references, &mut replies);
    assert_eq!(replies.len(), requests.len());
    for reply in &replies {
        assert!(is_fresh_ok(reply), "recovery log build: {}", describe_reply(reply));
    }
    if let Some(submitters) = submitters {
        for (submitter, reply) in submitters.iter_mut().zip(&replies) {
            assert!(submitter.on_reply(reply));
        }
    }
}

/// Times one `EngineCore::open` and checks it recovered the built state. Returns the open's
/// milliseconds and the milliseconds this thread waited for a CPU meanwhile.
fn time_open(
    path: &Path,
    scale: Scale,
    start: RecoveryStart,
    records_replayed: u64,
    digest: u64,
) -> (f64, f64) {
    let directory = FsDirectory::open(path).expect("open recovery directory");
    let times_before = ThreadTimes::of_current_thread();
    let started = Instant::now();
    let core = EngineCore::open(directory, SystemClock, engine_config(scale)).expect("recover");
    let elapsed = started.elapsed();
    let times_after = ThreadTimes::of_current_thread();
    assert_eq!(core.recovery_report().start, start);
    assert_eq!(core.recovery_report().records_replayed, records_replayed);
    assert_eq!(core.kernel().state_digest(), digest, "recovered state differs from the built state");
    drop(core);
    let wait_ms = times_after.wait_ns.saturating_sub(times_before.wait_ns) as f64 / 1e6;
    (milliseconds(elapsed), wait_ms)
}

/// Drops this directory's files from the page cache (`posix_fadvise(DONTNEED)` after a sync),
/// so the next open reads the disk. Touches no other file on the machine.
fn evict_from_page_cache(path: &Path) {
    for entry in std::fs::read_dir(path).expect("list recovery directory") {
        let file = std::fs::File::open(entry.expect("directory entry").path()).expect("open for eviction");
        file.sync_all().expect("sync before eviction");
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).expect("fadvise");
    }
}

fn directory_size_bytes(path: &Path, suffix: &str) -> u64 {
    std::fs::read_dir(path)
        .expect("list directory")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix))
        .map(|entry| entry.metadata().map_or(0, |metadata| metadata.len()))
        .sum()
}
