//! Progress while a node recovers its log: the reports a node passes to its progress sink as
//! it replays, with the reporting interval set to zero so the test sees every report the
//! storage layer makes instead of depending on how long replay takes on this machine.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use allocdb_server::{Node, NodeOptions, RecoveryProgress, RecoveryProgressReporting};
use serde_json::json;
use support::{TestServer, small_config};

const SEGMENT_SIZE_BYTES: u64 = 4_096;

/// A node reopened over a log of many small segments reports its replay from the start to
/// the total: bytes, records and segments never go back, the total never changes, and the
/// last report is at the total with every record the recovery report counts.
#[test]
fn reopening_a_node_reports_replay_progress_monotonically_up_to_the_total() {
    let server = TestServer::start_with(|config| config.limits.segment_size_bytes = SEGMENT_SIZE_BYTES);
    for batch in 0..5_u32 {
        let commands: Vec<_> = (0..64_u32)
            .map(
                |index| json!({"op": "create_resource", "resource_id": (batch * 64 + index + 1).to_string()}),
            )
            .collect();
        let reply = server.post("/v1/batch", &json!({"commands": commands}));
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let written_lsn = server.applied_lsn();
    let directory = server.stop();

    let reports: Arc<Mutex<Vec<RecoveryProgress>>> = Arc::default();
    let sink_reports = Arc::clone(&reports);
    let options = NodeOptions {
        recovery_progress: RecoveryProgressReporting {
            interval: Duration::ZERO,
            sink: Box::new(move |progress| sink_reports.lock().unwrap().push(*progress)),
        },
        ..NodeOptions::default()
    };
    let mut config = small_config(directory.path());
    config.limits.segment_size_bytes = SEGMENT_SIZE_BYTES;
    let node = Node::open_with(config, options).unwrap();
    let recovery = node.recovery_report().clone();
    node.shutdown();

    assert_eq!(recovery.last_lsn, written_lsn);
    let reports = reports.lock().unwrap().clone();
    let first = reports.first().unwrap();
    let last = reports.last().unwrap();
    assert!(recovery.segments_read >= 5, "320 records fill several 4 KiB segments: {recovery:?}");
    assert_eq!((first.bytes_scanned, first.records_replayed, first.segments_scanned), (0, 0, 0));
    assert_eq!(first.bytes_total, recovery.segments_read * SEGMENT_SIZE_BYTES);
    assert_eq!(first.segments_total, recovery.segments_read);
    assert!(
        reports.iter().any(|report| 0 < report.bytes_scanned && report.bytes_scanned < report.bytes_total),
        "no report between the start and the end: {reports:?}"
    );
    for pair in reports.windows(2) {
        assert!(pair[0].bytes_scanned <= pair[1].bytes_scanned, "{pair:?}");
        assert!(pair[0].records_replayed <= pair[1].records_replayed, "{pair:?}");
        assert!(pair[0].segments_scanned <= pair[1].segments_scanned, "{pair:?}");
        assert!(pair[0].elapsed <= pair[1].elapsed, "{pair:?}");
        assert_eq!(pair[0].bytes_total, pair[1].bytes_total, "{pair:?}");
    }
    assert_eq!(last.bytes_scanned, last.bytes_total);
    assert_eq!(last.segments_scanned, last.segments_total);
    assert_eq!(last.records_replayed, recovery.records_replayed);
    assert_eq!(last.records_replayed, written_lsn, "no snapshot: every record is replayed");
    assert_eq!(last.estimated_remaining(), Some(Duration::ZERO));
    assert_eq!(last.permille(), 1_000);
}
