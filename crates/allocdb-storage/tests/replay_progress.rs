//! Replay progress: `Recovery::replay_with_progress` reports how far it has read, from zero to
//! exactly the total size of the segments it reads, never going back, at every segment end and
//! every `REPLAY_PROGRESS_STEP_BYTES` inside a segment — and replays exactly what `replay` does.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod common;

use std::convert::Infallible;

use allocdb_storage::{
    LogRecord, REPLAY_PROGRESS_STEP_BYTES, RecordKind, Recovery, ReplayProgress, SimDirectory, StorageConfig,
};
use common::{config, directory_with_records, records, recover, segment_names};

/// Replays `directory` with progress, returning the reports and the lsns replayed.
fn replay_reporting(directory: &SimDirectory, config: StorageConfig) -> (Vec<ReplayProgress>, Vec<u64>) {
    let recovery = Recovery::open(directory.clone(), config).unwrap();
    let mut reports = Vec::new();
    let mut lsns = Vec::new();
    recovery
        .replay_with_progress(
            |record| {
                lsns.push(record.lsn);
                Ok::<(), Infallible>(())
            },
            &mut |progress| reports.push(*progress),
        )
        .unwrap();
    (reports, lsns)
}

fn assert_monotonic(reports: &[ReplayProgress]) {
    for pair in reports.windows(2) {
        assert!(pair[0].bytes_scanned <= pair[1].bytes_scanned, "{pair:?}");
        assert!(pair[0].records_replayed <= pair[1].records_replayed, "{pair:?}");
        assert!(pair[0].segments_scanned <= pair[1].segments_scanned, "{pair:?}");
        assert_eq!(pair[0].bytes_total, pair[1].bytes_total, "{pair:?}");
    }
}

/// A log of several small segments: one report before reading, one per segment end, the last
/// at the total (the segments' full preallocated size), and the same records as `replay`.
#[test]
fn replay_progress_runs_from_zero_to_the_total_at_every_segment_end() {
    let directory = directory_with_records(40);
    let segment_count = segment_names(&directory).len() as u64;
    assert!(segment_count >= 3, "40 records span several segments");
    let bytes_total = segment_count * config().segment_size_bytes;

    let (reports, lsns) = replay_reporting(&directory, config());

    assert_eq!(
        reports.first(),
        Some(&ReplayProgress {
            bytes_scanned: 0,
            bytes_total,
            records_replayed: 0,
            segments_scanned: 0,
            segments_total: segment_count,
        })
    );
    assert_eq!(reports.len() as u64, 1 + segment_count, "{reports:?}");
    assert_monotonic(&reports);
    for (index, report) in reports.iter().enumerate().skip(1) {
        assert_eq!(report.segments_scanned, index as u64);
        assert_eq!(report.bytes_scanned, index as u64 * config().segment_size_bytes);
    }
    assert_eq!(
        reports.last(),
        Some(&ReplayProgress {
            bytes_scanned: bytes_total,
            bytes_total,
            records_replayed: 40,
            segments_scanned: segment_count,
            segments_total: segment_count,
        })
    );
    let plain = recover(&directory).records;
    assert_eq!(plain, records(1..=40));
    assert_eq!(lsns, (1..=40).collect::<Vec<u64>>());
}

/// A segment holding several mebibytes of records reports inside the segment, each time
/// another step was scanned, at a frame boundary short of the segment's end.
#[test]
fn replay_progress_reports_every_step_inside_a_large_segment() {
    let config = StorageConfig {
        segment_size_bytes: 8 * REPLAY_PROGRESS_STEP_BYTES,
        payload_size_bytes_max: 64 << 10,
        buffer_size_bytes_max: 1 << 20,
        snapshot_size_bytes_max: 1 << 20,
        ..StorageConfig::default()
    };
    let directory = SimDirectory::new();
    let recovery = Recovery::open(directory.clone(), config).unwrap();
    let (mut storage, _) = recovery.replay(|_| Ok::<(), Infallible>(())).unwrap();
    let payload = vec![7_u8; 60 << 10];
    let record_count = 60_u64;
    for lsn in 1..=record_count {
        storage.append(LogRecord { lsn, slot: lsn, kind: RecordKind(1), payload: &payload }).unwrap();
        storage.flush_and_sync().unwrap();
    }
    drop(storage);

    let (reports, lsns) = replay_reporting(&directory, config);

    assert_eq!(lsns.len() as u64, record_count);
    assert_monotonic(&reports);
    let inside: Vec<&ReplayProgress> = reports.iter().filter(|report| report.segments_scanned == 0).collect();
    let frame_size = allocdb_storage::frame_size_bytes(60 << 10);
    let written = record_count * frame_size;
    // About 3.5 MiB written: a report after each of the first three mebibytes, plus the start.
    assert_eq!(inside.len() as u64, 1 + written / REPLAY_PROGRESS_STEP_BYTES, "{reports:?}");
    for pair in inside.windows(2) {
        let step = pair[1].bytes_scanned - pair[0].bytes_scanned;
        assert!((REPLAY_PROGRESS_STEP_BYTES..REPLAY_PROGRESS_STEP_BYTES + frame_size).contains(&step));
        assert_eq!(pair[1].bytes_scanned % frame_size, 0, "reports fall on frame boundaries");
        assert_eq!(pair[1].records_replayed, pair[1].bytes_scanned / frame_size);
    }
    let last = reports.last().unwrap();
    assert_eq!(
        (last.bytes_scanned, last.bytes_total),
        (config.segment_size_bytes, config.segment_size_bytes)
    );
    assert_eq!(last.records_replayed, record_count);
}
