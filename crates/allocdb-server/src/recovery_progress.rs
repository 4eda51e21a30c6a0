//! Progress of a long recovery, for the operator watching `allocdb serve` start.
//!
//! The storage layer reports how far replay has read ([`ReplayProgress`]: bytes of log
//! scanned, of how many, and records replayed) at points that depend on the log alone. This
//! module is the edge that adds time: it reads the clock at each report, passes at most one
//! every [`RecoveryProgressReporting::interval`] on (default one second) with the elapsed time,
//! the rate and an estimate of the time left, and always passes on the final report at the
//! total once it passed on any earlier one, so a progress display ends at 100 %. A recovery
//! quicker than one interval shows nothing here; the `recovered` summary line follows either
//! way (`serve.rs`).
//!
//! The estimate is the bytes left at the average rate so far. The total includes the unused,
//! preallocated tail of the last segment, which scans much faster than records replay, so the
//! estimate errs long by at most about one segment's worth.

use std::time::{Duration, Instant};

use allocdb_storage::ReplayProgress;

/// How often a progress line is logged by default.
pub const RECOVERY_PROGRESS_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);

/// One progress report of a recovery in course, as shown to an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryProgress {
    /// Bytes of log segments scanned so far.
    pub bytes_scanned: u64,
    /// Bytes of log segments to scan in all.
    pub bytes_total: u64,
    /// Records replayed so far (those after the snapshot).
    pub records_replayed: u64,
    /// Segments scanned completely so far.
    pub segments_scanned: u64,
    /// Segments to scan in all.
    pub segments_total: u64,
    /// Time since replay began.
    pub elapsed: Duration,
}

impl RecoveryProgress {
    /// Bytes scanned per second on average so far (0 before any time has passed).
    pub fn bytes_per_second(&self) -> u64 {
        per_second(self.bytes_scanned, self.elapsed)
    }

    /// Records replayed per second on average so far.
    pub fn records_per_second(&self) -> u64 {
        per_second(self.records_replayed, self.elapsed)
    }

    /// The time left at the average rate so far; `None` while nothing was scanned yet.
    pub fn estimated_remaining(&self) -> Option<Duration> {
        let remaining_bytes = self.bytes_total.saturating_sub(self.bytes_scanned);
        if remaining_bytes == 0 {
            return Some(Duration::ZERO);
        }
        if self.bytes_scanned == 0 {
            return None;
        }
        let nanos = self.elapsed.as_nanos().saturating_mul(u128::from(remaining_bytes))
            / u128::from(self.bytes_scanned);
        Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    /// Per mille of the bytes scanned (1000 when the log is empty).
    pub fn permille(&self) -> u64 {
        if self.bytes_total == 0 {
            return 1_000;
        }
        let permille = u128::from(self.bytes_scanned) * 1_000 / u128::from(self.bytes_total);
        u64::try_from(permille).unwrap_or(1_000)
    }
}

fn per_second(count: u64, elapsed: Duration) -> u64 {
    let nanos = elapsed.as_nanos();
    if nanos == 0 {
        return 0;
    }
    u64::try_from(u128::from(count) * 1_000_000_000 / nanos).unwrap_or(u64::MAX)
}

/// Where progress reports go: called on the thread that recovers, so it must be quick.
pub type RecoveryProgressSink = Box<dyn FnMut(&RecoveryProgress) + Send>;

/// How a node shows the progress of its recovery.
pub struct RecoveryProgressReporting {
    /// The least time between two reports (the final one excepted). Zero passes every report
    /// of the storage layer on, which is what tests use instead of waiting for the clock.
    pub interval: Duration,
    /// Receives the reports; by default [`log_recovery_progress`].
    pub sink: RecoveryProgressSink,
}

impl Default for RecoveryProgressReporting {
    fn default() -> RecoveryProgressReporting {
        RecoveryProgressReporting {
            interval: RECOVERY_PROGRESS_INTERVAL_DEFAULT,
            sink: Box::new(log_recovery_progress),
        }
    }
}

impl std::fmt::Debug for RecoveryProgressReporting {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecoveryProgressReporting")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// Logs one progress line at info level.
pub fn log_recovery_progress(progress: &RecoveryProgress) {
    let permille = progress.permille();
    tracing::info!(
        percent = format_args!("{}.{}", permille / 10, permille % 10),
        bytes_scanned = progress.bytes_scanned,
        bytes_total = progress.bytes_total,
        segments_scanned = progress.segments_scanned,
        segments_total = progress.segments_total,
        records_replayed = progress.records_replayed,
        records_per_second = progress.records_per_second(),
        mib_per_second = progress.bytes_per_second() >> 20,
        elapsed_seconds = progress.elapsed.as_secs(),
        eta_seconds = progress.estimated_remaining().map_or(u64::MAX, |eta| eta.as_secs()),
        "recovering the log"
    );
}

/// Decides which storage reports become operator reports. Pure: the caller passes the time.
#[derive(Debug)]
pub(crate) struct ProgressThrottle {
    interval: Duration,
    started: Instant,
    last_passed: Instant,
    passed_any: bool,
}

impl ProgressThrottle {
    pub(crate) fn new(interval: Duration, started: Instant) -> ProgressThrottle {
        ProgressThrottle { interval, started, last_passed: started, passed_any: false }
    }

    /// The operator report for `replay` at `now`, if one is due: an interval has passed since
    /// the last one (or since the start), or this is the final report and an earlier one was
    /// shown.
    pub(crate) fn observe(&mut self, replay: &ReplayProgress, now: Instant) -> Option<RecoveryProgress> {
        let complete = replay.bytes_scanned >= replay.bytes_total;
        let due = now.saturating_duration_since(self.last_passed) >= self.interval;
        let passes = due || (complete && self.passed_any);
        if !passes {
            return None;
        }
        self.last_passed = now;
        self.passed_any = true;
        Some(RecoveryProgress {
            bytes_scanned: replay.bytes_scanned,
            bytes_total: replay.bytes_total,
            records_replayed: replay.records_replayed,
            segments_scanned: replay.segments_scanned,
            segments_total: replay.segments_total,
            elapsed: now.saturating_duration_since(self.started),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use allocdb_storage::ReplayProgress;

    use super::{ProgressThrottle, RecoveryProgress};

    fn replay(bytes_scanned: u64) -> ReplayProgress {
        ReplayProgress {
            bytes_scanned,
            bytes_total: 1_000,
            records_replayed: bytes_scanned / 10,
            segments_scanned: bytes_scanned / 500,
            segments_total: 2,
        }
    }

    /// Reports arriving every 300 ms with a one-second interval: one passes per second, and
    /// the final one passes because an earlier one did.
    #[test]
    fn throttle_passes_one_report_per_interval_and_the_final_one() {
        let started = Instant::now();
        let mut throttle = ProgressThrottle::new(Duration::from_secs(1), started);
        let passed: Vec<u64> = (0..=10_u64)
            .filter_map(|step| {
                let now = started + Duration::from_millis(300 * step);
                throttle.observe(&replay(step * 100), now).map(|report| report.bytes_scanned)
            })
            .collect();
        // Passed at 1.2 s and 2.4 s (2.1 s is only 0.9 s after 1.2 s); 3.0 s is the final one.
        assert_eq!(passed, [400, 800, 1_000]);
    }

    /// A recovery that ends within the first interval shows nothing: the summary line suffices.
    #[test]
    fn throttle_shows_nothing_for_a_recovery_shorter_than_the_interval() {
        let started = Instant::now();
        let mut throttle = ProgressThrottle::new(Duration::from_secs(1), started);
        for (step, bytes) in [0, 500, 1_000].into_iter().enumerate() {
            let now = started + Duration::from_millis(100 * step as u64);
            assert_eq!(throttle.observe(&replay(bytes), now), None);
        }
    }

    #[test]
    fn rate_and_estimate_follow_the_average_so_far() {
        let progress = RecoveryProgress {
            bytes_scanned: 250,
            bytes_total: 1_000,
            records_replayed: 50,
            segments_scanned: 0,
            segments_total: 2,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(progress.bytes_per_second(), 125);
        assert_eq!(progress.records_per_second(), 25);
        assert_eq!(progress.estimated_remaining(), Some(Duration::from_secs(6)));
        assert_eq!(progress.permille(), 250);
        let done = RecoveryProgress { bytes_scanned: 1_000, ..progress };
        assert_eq!(done.estimated_remaining(), Some(Duration::ZERO));
        let unstarted = RecoveryProgress { bytes_scanned: 0, elapsed: Duration::ZERO, ..progress };
        assert_eq!((unstarted.estimated_remaining(), unstarted.bytes_per_second()), (None, 0));
    }
}
