//! The raw fsync floor: 4 KiB `pwrite` + `fdatasync` in a loop, on the benchmark's own
//! filesystem, so the engine's sync rate can be read against what the disk does alone.
//!
//! Two layouts: writes into `fallocate`d, never-written space (what a fresh log segment is,
//! and so what the engine's log sees: on ext4 each first write converts an unwritten extent)
//! and writes over blocks already written and synced (the pure data path).

use std::path::Path;
use std::time::{Duration, Instant};

use allocdb_storage::{FsDirectory, LogDirectory, LogFile};

use crate::Options;
use crate::closed_loop::ThreadTimes;
use crate::report::{Table, nanoseconds, percentile};

/// Size of the preallocated file of the fsync floor, as large as one log segment.
const FLOOR_FILE_SIZE_BYTES: u64 = 64 << 20;
/// One write of the fsync floor.
const FLOOR_WRITE_SIZE_BYTES: usize = 4096;

/// Where the floor's writes land.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloorLayout {
    /// Writes land in `fallocate`d, never-written space: the layout of a fresh log segment.
    Preallocated,
    /// Writes overwrite blocks already written and synced: data only, no extent changes.
    Overwrite,
}

/// The figures of one floor run.
pub(crate) struct FloorCell {
    pub(crate) syncs_per_second: f64,
    pub(crate) latency_p50_ms: f64,
    pub(crate) latency_p99_ms: f64,
    pub(crate) latency_max_ms: f64,
    /// Time the loop's thread waited for a CPU, per fsync: scheduling delay that the latency
    /// figures include (a woken thread on a busy machine queues before it runs).
    pub(crate) wait_ms_per_sync: f64,
    /// CPU the loop's thread used per fsync (the syscalls, and on a VM the exits they cause).
    pub(crate) cpu_ms_per_sync: f64,
}

/// Measures both layouts `repeats` times, alternating so drift hits both alike.
pub(crate) fn measure_floors(options: &Options, root: &Path, table: &mut Table) {
    let layouts = [FloorLayout::Preallocated, FloorLayout::Overwrite];
    let mut cells: [Vec<FloorCell>; 2] = [Vec::new(), Vec::new()];
    for repeat in 0..options.repeats {
        for (index, layout) in layouts.into_iter().enumerate() {
            let path = root.join(format!("floor-{index}-{repeat}"));
            cells[index].push(measure_floor(&path, layout, options.floor_duration));
        }
    }
    for (layout, cells) in layouts.into_iter().zip(&cells) {
        table.add_floor(layout, cells);
    }
}

pub(crate) fn measure_floor(path: &Path, layout: FloorLayout, duration: Duration) -> FloorCell {
    let directory = FsDirectory::open(path).expect("open floor directory");
    let mut file = directory.create("fsync-floor").expect("create floor file");
    file.allocate(FLOOR_FILE_SIZE_BYTES).expect("fallocate floor file");
    let block = [0xA5_u8; FLOOR_WRITE_SIZE_BYTES];
    if layout == FloorLayout::Overwrite {
        let chunk = vec![0_u8; 1 << 20];
        for offset in (0..FLOOR_FILE_SIZE_BYTES).step_by(chunk.len()) {
            file.write_all_at(offset, &chunk).expect("prefill floor file");
        }
    }
    file.sync_data().expect("sync floor file");
    directory.sync().expect("sync floor directory");

    let block_size = FLOOR_WRITE_SIZE_BYTES as u64;
    let mut latencies = Vec::with_capacity(16_384);
    let mut offset = 0;
    let times_before = ThreadTimes::of_current_thread();
    let started = Instant::now();
    while started.elapsed() < duration {
        let write_started = Instant::now();
        file.write_all_at(offset, &block).expect("floor write");
        file.sync_data().expect("floor fdatasync");
        latencies.push(nanoseconds(write_started.elapsed()));
        offset = (offset + block_size) % FLOOR_FILE_SIZE_BYTES;
    }
    let elapsed = started.elapsed();
    let times_after = ThreadTimes::of_current_thread();
    drop(file);
    std::fs::remove_dir_all(path).expect("remove floor directory");
    latencies.sort_unstable();
    let syncs = latencies.len().max(1) as f64;
    FloorCell {
        wait_ms_per_sync: times_after.wait_ns.saturating_sub(times_before.wait_ns) as f64 / syncs / 1e6,
        cpu_ms_per_sync: times_after.run_ns.saturating_sub(times_before.run_ns) as f64 / syncs / 1e6,
        syncs_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        latency_p50_ms: percentile(&latencies, 50.0),
        latency_p99_ms: percentile(&latencies, 99.0),
        latency_max_ms: latencies.last().map_or(0.0, |&nanos| nanos as f64 / 1e6),
    }
}
