//! Prometheus metrics: one explicit registry per node (no globals), fed from three places.
//!
//! - The network edges count every write answer (`allocdb_commands_total{command,result}`,
//!   `allocdb_rejections_total{category,error}`) and time each call into the node
//!   (`allocdb_commit_latency_seconds`: from submission to the engine's answer, so it includes
//!   queueing, the group's log sync and apply).
//! - The engine's group observer, on the engine thread, feeds `allocdb_fsync_latency_seconds`
//!   and `allocdb_group_commit_batch_size` (records per group). It only touches histograms'
//!   atomics, so it costs the engine thread nanoseconds.
//! - Gauges are refreshed at scrape time from [`NodeStatus`] (the state the engine published
//!   with its last answers, read without waiting for the engine thread, so a scrape answers at
//!   once even while a slow disk holds the engine up) and from a listing of the data
//!   directory: the WAL size
//!   is the disk space of the `log-*.seg` files (segments are preallocated, so it grows a
//!   segment at a time; `allocdb_wal_appended_bytes` counts the record bytes this process
//!   appended) and the snapshot lsn is the newest `snapshot-*.snap` name (docs/storage.md).
//!   A halted engine keeps publishing its last state, and `allocdb_engine_halted` reads 1.
//!
//! Names are the contract of interfaces.md §5; labels take values from fixed sets (command
//! names, result and rejection codes, table names), so the label space is bounded.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use allocdb_core::TableUsage;
use allocdb_engine::{GroupObserver, GroupReport};
use allocdb_storage::RecoveryReport;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::node::NodeStatus;

/// A gauge holding a u64 (lsns, byte counts and slots do not fit `i64` semantics).
type U64Gauge = Gauge<u64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    category: &'static str,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: &'static str,
}

/// Figures read from the data directory at scrape time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskFigures {
    /// Bytes in log segment files.
    pub wal_bytes: u64,
    /// Lsn of the newest snapshot file (0 if none).
    pub snapshot_lsn: u64,
}

/// The node's metrics registry.
pub struct Metrics {
    registry: Registry,
    commands: Family<CommandLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    commit_latency: Histogram,
    fsync_latency: Histogram,
    group_commit_batch_size: Histogram,
    applied_lsn: U64Gauge,
    submission_queue_depth: U64Gauge,
    table_used: Family<TableLabels, U64Gauge>,
    table_capacity: Family<TableLabels, U64Gauge>,
    expiration_backlog: U64Gauge,
    logical_slot_lag: U64Gauge,
    wal_bytes: U64Gauge,
    wal_appended_bytes: U64Gauge,
    snapshot_lsn: U64Gauge,
    recovery_replayed_entries: U64Gauge,
    engine_halted: U64Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("allocdb");
        let commands = Family::<CommandLabels, Counter>::default();
        let rejections = Family::<RejectionLabels, Counter>::default();
        // 100 µs to about 3.3 s: a group commit is one fsync, from tens of µs on NVMe to
        // hundreds of ms on a struggling disk.
        let commit_latency = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        let fsync_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        // 1 to 16,384 records: the default batch_size_max.
        let group_commit_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        let metrics = Metrics {
            registry: Registry::default(),
            commands,
            rejections,
            commit_latency,
            fsync_latency,
            group_commit_batch_size,
            applied_lsn: U64Gauge::default(),
            submission_queue_depth: U64Gauge::default(),
            table_used: Family::default(),
            table_capacity: Family::default(),
            expiration_backlog: U64Gauge::default(),
            logical_slot_lag: U64Gauge::default(),
            wal_bytes: U64Gauge::default(),
            wal_appended_bytes: U64Gauge::default(),
            snapshot_lsn: U64Gauge::default(),
            recovery_replayed_entries: U64Gauge::default(),
            engine_halted: U64Gauge::default(),
        };
        metrics.register_counters_and_histograms(&mut registry);
        metrics.register_gauges(&mut registry);
        Metrics { registry, ..metrics }
    }

    fn register_counters_and_histograms(&self, registry: &mut Registry) {
        registry.register(
            "commands",
            "Client writes answered, by command and result or rejection code",
            self.commands.clone(),
        );
        registry.register(
            "rejections",
            "Writes not committed, by category and code",
            self.rejections.clone(),
        );
        registry.register_with_unit(
            "commit_latency",
            "Time from submitting a write to the engine's answer",
            Unit::Seconds,
            self.commit_latency.clone(),
        );
        registry.register_with_unit(
            "fsync_latency",
            "Duration of each log sync",
            Unit::Seconds,
            self.fsync_latency.clone(),
        );
        registry.register(
            "group_commit_batch_size",
            "Log records per group commit",
            self.group_commit_batch_size.clone(),
        );
    }

    fn register_gauges(&self, registry: &mut Registry) {
        registry.register("table_used", "Entries in use per kernel table", self.table_used.clone());
        registry.register(
            "table_capacity",
            "Configured capacity per kernel table",
            self.table_capacity.clone(),
        );
        let gauges = [
            ("applied_lsn", "Last applied log sequence number", None, &self.applied_lsn),
            (
                "submission_queue_depth",
                "Commands waiting for the sequencer",
                None,
                &self.submission_queue_depth,
            ),
            (
                "expiration_backlog",
                "Leases still due after the last expiry tick used its budget",
                None,
                &self.expiration_backlog,
            ),
            (
                "logical_slot_lag",
                "Current clock slot minus the last logged request slot",
                None,
                &self.logical_slot_lag,
            ),
            (
                "wal",
                "Disk space of the log segment files (preallocated per segment)",
                Some(Unit::Bytes),
                &self.wal_bytes,
            ),
            (
                "wal_appended",
                "Log record bytes appended since this process started",
                Some(Unit::Bytes),
                &self.wal_appended_bytes,
            ),
            ("snapshot_lsn", "Lsn covered by the newest snapshot file", None, &self.snapshot_lsn),
            (
                "recovery_replayed_entries",
                "Log records replayed after the snapshot at startup",
                None,
                &self.recovery_replayed_entries,
            ),
            ("engine_halted", "1 if the engine halted after a storage failure", None, &self.engine_halted),
        ];
        for (name, help, unit, gauge) in gauges {
            match unit {
                Some(unit) => registry.register_with_unit(name, help, unit, gauge.clone()),
                None => registry.register(name, help, gauge.clone()),
            }
        }
    }

    /// The observer to hand the engine: fsync latency and records per group.
    pub fn group_observer(&self) -> GroupObserver {
        let fsync_latency = self.fsync_latency.clone();
        let group_commit_batch_size = self.group_commit_batch_size.clone();
        Arc::new(move |report: &GroupReport| {
            if let Some(sync_nanos) = report.sync_nanos {
                fsync_latency.observe(nanos_to_seconds(sync_nanos));
            }
            if report.records > 0 {
                group_commit_batch_size.observe(to_f64(report.records));
            }
        })
    }

    /// Counts one write answer: `result` is the result code of a committed write, or the
    /// rejection code with its `category` for one that was not committed.
    pub fn count_write(&self, command: &'static str, result: &'static str, category: Option<&'static str>) {
        self.commands.get_or_create(&CommandLabels { command, result }).inc();
        if let Some(category) = category {
            self.rejections.get_or_create(&RejectionLabels { category, error: result }).inc();
        }
    }

    /// Records the time one call into the node took.
    pub fn observe_commit_latency(&self, seconds: f64) {
        self.commit_latency.observe(seconds);
    }

    /// Records what recovery did at startup.
    pub fn set_recovery(&self, report: &RecoveryReport) {
        self.recovery_replayed_entries.set(report.records_replayed);
        self.snapshot_lsn.set(report.snapshot_lsn.unwrap_or(0));
    }

    /// Refreshes the gauges from the node's status and the data directory's listing.
    pub fn refresh(&self, status: &NodeStatus, disk: DiskFigures) {
        self.wal_bytes.set(disk.wal_bytes);
        self.snapshot_lsn.set(disk.snapshot_lsn);
        self.engine_halted.set(u64::from(status.halted));
        self.applied_lsn.set(status.applied_lsn);
        self.submission_queue_depth.set(status.queued_commands);
        self.expiration_backlog.set(status.counters.expiration_backlog);
        self.wal_appended_bytes.set(status.counters.log_bytes);
        self.logical_slot_lag.set(status.current_slot.saturating_sub(status.last_request_slot));
        let usage = &status.usage;
        for (table, figures) in [
            ("resources", usage.resources),
            ("leases", usage.leases),
            ("lease_members", usage.lease_members),
            ("operations", usage.operations),
            ("expirations", usage.expirations),
        ] {
            self.set_table(table, figures);
        }
    }

    fn set_table(&self, table: &'static str, figures: TableUsage) {
        self.table_used.get_or_create(&TableLabels { table }).set(figures.used);
        self.table_capacity.get_or_create(&TableLabels { table }).set(figures.capacity);
    }

    /// The registry in the `OpenMetrics` text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            text = format!("# metrics could not be encoded: {error}\n");
        }
        text
    }
}

/// Lists the data directory: WAL bytes and the newest snapshot's lsn. Unreadable entries are
/// skipped: metrics must never fail a scrape.
pub fn scan_data_dir(path: &Path) -> DiskFigures {
    let mut figures = DiskFigures::default();
    let Ok(entries) = std::fs::read_dir(path) else { return figures };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Segments, and the spare segment being prepared: both hold the log's disk space.
        if name == allocdb_storage::SPARE_SEGMENT_NAME
            || name.strip_prefix("log-").and_then(|rest| rest.strip_suffix(".seg")).is_some()
        {
            // Not `entry.metadata()`: reading a live segment's times makes its next write
            // change the inode (`allocdb_storage::file_size_bytes`).
            figures.wal_bytes += allocdb_storage::file_size_bytes(&entry.path()).unwrap_or(0);
        } else if let Some(digits) =
            name.strip_prefix("snapshot-").and_then(|rest| rest.strip_suffix(".snap"))
            && let Ok(lsn) = digits.parse::<u64>()
        {
            figures.snapshot_lsn = figures.snapshot_lsn.max(lsn);
        }
    }
    figures
}

fn nanos_to_seconds(nanos: u64) -> f64 {
    to_f64(nanos) / 1e9
}

#[expect(clippy::cast_precision_loss, reason = "metric values; above 2^53 a rounded figure is fine")]
fn to_f64(value: u64) -> f64 {
    value as f64
}

#[cfg(test)]
mod tests {
    use allocdb_core::{KernelUsage, TableUsage};
    use allocdb_engine::{EngineCounters, GroupReport};

    use super::{DiskFigures, Metrics, NodeStatus, scan_data_dir};

    #[test]
    fn every_single_node_name_is_exposed() {
        let metrics = Metrics::new();
        metrics.count_write("reserve", "ok", None);
        metrics.count_write("reserve", "overloaded", Some("definite"));
        (metrics.group_observer())(&GroupReport {
            records: 3,
            writes: 3,
            sync_nanos: Some(1_000),
            group_nanos: 9,
        });
        metrics.observe_commit_latency(0.001);
        let table = |used| TableUsage { used, capacity: 64 };
        let halted = NodeStatus {
            applied_lsn: 7,
            last_request_slot: 3,
            current_slot: 5,
            usage: KernelUsage {
                resources: table(1),
                leases: table(2),
                lease_members: table(3),
                operations: table(4),
                expirations: table(5),
            },
            halted: true,
            queued_commands: 6,
            counters: EngineCounters::default(),
        };
        metrics.refresh(&halted, DiskFigures { wal_bytes: 10, snapshot_lsn: 4 });
        let text = metrics.encode();
        for name in [
            "allocdb_commands_total{command=\"reserve\",result=\"ok\"} 1",
            "allocdb_rejections_total{category=\"definite\",error=\"overloaded\"} 1",
            "allocdb_applied_lsn 7",
            "allocdb_commit_latency_seconds_bucket",
            "allocdb_fsync_latency_seconds_count 1",
            "allocdb_group_commit_batch_size_sum 3",
            "allocdb_submission_queue_depth 6",
            "allocdb_expiration_backlog ",
            "allocdb_logical_slot_lag 2",
            "allocdb_wal_bytes 10",
            "allocdb_snapshot_lsn 4",
            "allocdb_recovery_replayed_entries ",
            "allocdb_table_used{table=\"operations\"} 4",
            "allocdb_engine_halted 1",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }

    #[test]
    fn data_dir_scan_sums_segments_and_finds_the_newest_snapshot() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("log-00000000000000000001.seg"), [0_u8; 100]).unwrap();
        std::fs::write(directory.path().join("log-00000000000000000050.seg"), [0_u8; 20]).unwrap();
        std::fs::write(directory.path().join("snapshot-00000000000000000040.snap"), b"x").unwrap();
        std::fs::write(directory.path().join("snapshot-00000000000000000049.snap.tmp"), b"x").unwrap();
        std::fs::write(directory.path().join("log-spare.seg.tmp"), [0_u8; 5]).unwrap();
        std::fs::write(directory.path().join("IDENTITY"), b"x").unwrap();
        assert_eq!(scan_data_dir(directory.path()), DiskFigures { wal_bytes: 125, snapshot_lsn: 40 });
    }
}
