//! One run's figures ([`RunResult`]): what the load generator measured, as a table row and as
//! JSON. The JSON shape is what the comparison run stores and plots; fields are only added.
//!
//! Invariant: every correctness counter is zero in a correct run; [`Correctness::violations`]
//! is their sum and decides the exit status.

use serde::{Deserialize, Serialize};

/// The correctness counters of one run. All must be zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correctness {
    /// A resource granted while the load generator still recorded another live lease on it,
    /// or a lease that vanished while held.
    pub double_allocations: u64,
    /// An activate or release of a lease we hold that the target refused.
    pub lost_leases: u64,
    /// A retried operation id that answered differently from its first execution.
    pub idempotency_mismatches: u64,
    /// `busy` for a resource only this client uses (uncontended, batched, mixed).
    pub unexpected_busy: u64,
    /// A fenced read that did not show a write acknowledged at or below the fence.
    pub stale_reads: u64,
    /// Resources still held after every client released what it won.
    pub held_at_end: u64,
    /// Simulated clients that gave up after repeated errors.
    pub failed_clients: u64,
}

impl Correctness {
    /// The sum of all counters; a correct run has 0.
    pub fn violations(&self) -> u64 {
        self.double_allocations
            + self.lost_leases
            + self.idempotency_mismatches
            + self.unexpected_busy
            + self.stale_reads
            + self.held_at_end
            + self.failed_clients
    }

    /// Adds another run's counters.
    pub fn add(&mut self, other: &Correctness) {
        self.double_allocations += other.double_allocations;
        self.lost_leases += other.lost_leases;
        self.idempotency_mismatches += other.idempotency_mismatches;
        self.unexpected_busy += other.unexpected_busy;
        self.stale_reads += other.stale_reads;
        self.held_at_end += other.held_at_end;
        self.failed_clients += other.failed_clients;
    }
}

/// Latency of one request, microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest request.
    pub max_us: u64,
}

/// CPU used during the measured window, in percent of one core (a 2-core machine has 200).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// The load generator itself.
    pub client_pct: f64,
    /// The server processes and their children.
    pub server_pct: f64,
    /// Everything else on the machine (other tenants, kernel threads).
    pub other_pct: f64,
    /// Idle.
    pub idle_pct: f64,
}

/// Restart figures of the recovery workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryFigures {
    /// Log records written before the restart.
    pub records: u64,
    /// Whether a snapshot covered most of the log.
    pub from_snapshot: bool,
    /// Bytes in the data directory at restart.
    pub data_bytes: u64,
    /// From process start to the first answered request.
    pub restart_ms: f64,
    /// Records replayed per second of restart (log records after the snapshot).
    pub replayed_records: u64,
}

/// One run of one workload against one target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// `allocdb`, `postgres`, `redis`.
    pub target: String,
    /// How it was driven (`binary`, `http`, `fn`, `lua`...).
    pub variant: String,
    /// Durability setting as the target names it.
    pub durability: String,
    /// Whether acknowledged writes survive a machine crash.
    pub durable: bool,
    /// `uncontended`, `hotspot`, `batched`, `mixed`, `recovery`.
    pub workload: String,
    /// `closed` (each client waits for its answer) or `open` (requests at a fixed rate).
    pub mode: String,
    /// Resources in play.
    pub resources: u64,
    /// Simulated clients, one connection each.
    pub clients: u64,
    /// Commands per request.
    pub batch: u64,
    /// Open loop: the offered rate in requests per second (0 in closed loop).
    pub offered_requests_per_s: f64,
    /// Length of the measured window.
    pub seconds: f64,
    /// Commands completed in the window (a batch counts its items; reads count).
    pub ops: u64,
    /// `ops / seconds`.
    pub ops_per_s: f64,
    /// Requests completed in the window.
    pub requests: u64,
    /// Successful reservations per second (hotspot: hand-overs per second).
    pub wins_per_s: f64,
    /// `busy` answers in the window.
    pub busy: u64,
    /// Same-id re-sends in the window.
    pub replays: u64,
    /// Errors from the target or the transport (each retried with the same operation id).
    pub errors: u64,
    /// Request latency (a batch is one request). Open loop: from the intended send time.
    pub latency: Latency,
    /// Time from a client's first reserve attempt to its win.
    pub acquire: Latency,
    /// Latency distribution for plots: (percentile, µs) pairs, increasing.
    pub latency_cdf: Vec<(f64, u64)>,
    /// Flushes to stable storage per second, from the target's own counters.
    pub fsyncs_per_s: Option<f64>,
    /// Commands made durable per flush.
    pub commands_per_fsync: Option<f64>,
    /// Median latency of one 4 KiB write + fdatasync on the target's disk just before the run.
    pub fsync_floor_p50_us: Option<u64>,
    /// Mean duration of the target's own flushes during the window, when it measures them.
    pub fsync_mean_us: Option<f64>,
    /// Closed loop: clients ÷ commit latency (the target's mean flush during the window, else
    /// the fsync floor): the most a population of clients with one request each can do.
    pub ceiling_requests_per_s: Option<f64>,
    /// CPU during the window.
    pub cpu: CpuUse,
    /// Peak resident memory of the server processes, bytes.
    pub server_peak_rss_bytes: Option<u64>,
    /// Recovery workload only.
    pub recovery: Option<RecoveryFigures>,
    /// The correctness counters.
    pub correctness: Correctness,
}

impl RunResult {
    /// `ops_per_s` as a fraction of the closed-loop ceiling (requests per second × batch).
    pub fn ceiling_fraction(&self) -> Option<f64> {
        let ceiling = self.ceiling_requests_per_s?;
        let requests_per_s = self.requests as f64 / self.seconds.max(f64::MIN_POSITIVE);
        (ceiling > 0.0).then(|| requests_per_s / ceiling)
    }
}

/// The table header matching [`table_row`].
pub fn table_header() -> String {
    format!(
        "{:<9} {:<7} {:<26} {:<11} {:>4} {:>5} {:>11} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6} {:>7} {:>5}",
        "target",
        "variant",
        "durability",
        "workload",
        "cli",
        "batch",
        "ops/s",
        "wins/s",
        "p50µs",
        "p99µs",
        "p99.9µs",
        "maxµs",
        "fsync/s",
        "cmd/fs",
        "cpuS%",
        "cpuC%",
        "rssMiB",
        "viol"
    )
}

/// One line of the results table.
pub fn table_row(result: &RunResult) -> String {
    let optional = |value: Option<f64>, digits: usize| {
        value.map_or_else(|| "-".to_owned(), |value| format!("{value:.digits$}"))
    };
    format!(
        "{:<9} {:<7} {:<26} {:<11} {:>4} {:>5} {:>11.0} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6.0} {:>6.0} {:>7} {:>5}",
        result.target,
        result.variant,
        result.durability,
        result.workload,
        result.clients,
        result.batch,
        result.ops_per_s,
        result.wins_per_s,
        result.latency.p50_us,
        result.latency.p99_us,
        result.latency.p999_us,
        result.latency.max_us,
        optional(result.fsyncs_per_s, 0),
        optional(result.commands_per_fsync, 1),
        result.cpu.server_pct,
        result.cpu.client_pct,
        optional(result.server_peak_rss_bytes.map(|bytes| bytes as f64 / 1_048_576.0), 0),
        result.correctness.violations(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_sum_every_counter() {
        let correctness = Correctness {
            double_allocations: 1,
            lost_leases: 2,
            idempotency_mismatches: 4,
            unexpected_busy: 8,
            stale_reads: 16,
            held_at_end: 32,
            failed_clients: 64,
        };
        assert_eq!(correctness.violations(), 127);
        let mut sum = Correctness::default();
        sum.add(&correctness);
        sum.add(&correctness);
        assert_eq!(sum.violations(), 254);
    }

    #[test]
    fn json_round_trips() {
        let result = RunResult {
            target: "allocdb".to_owned(),
            workload: "hotspot".to_owned(),
            fsyncs_per_s: Some(250.0),
            latency_cdf: vec![(50.0, 10), (99.0, 100)],
            ..RunResult::default()
        };
        let text = serde_json::to_string(&result).unwrap_or_default();
        let back: RunResult = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, result);
    }

    #[test]
    fn ceiling_fraction_is_requests_over_ceiling() {
        let result = RunResult {
            seconds: 2.0,
            requests: 1_800,
            ceiling_requests_per_s: Some(1_000.0),
            ..RunResult::default()
        };
        assert_eq!(result.ceiling_fraction(), Some(0.9));
        assert_eq!(RunResult::default().ceiling_fraction(), None);
    }
}
