//! Counters of what one run exercised, printed with its result so a reader can see that the
//! faults and limits the configuration asked for actually happened.

use std::fmt;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Steps taken (safety phase plus liveness tail).
    pub steps: u64,
    /// Groups submitted (a pipelined pair counts once).
    pub groups: u64,
    /// Submissions committed as two overlapping groups (`Harness::submit_split`).
    pub pipelined_pairs: u64,
    /// Requests submitted (retries and duplicates included).
    pub requests: u64,
    /// Process restarts (crash and recovery), including media-fault restarts.
    pub restarts: u64,
    /// Restarts whose crash tore the last unsynced write.
    pub torn_crashes: u64,
    /// Starts that failed on an injected I/O fault during recovery and were retried.
    pub failed_starts: u64,
    /// Torn tails recovery found and zeroed.
    pub torn_tails_repaired: u64,
    /// Records replayed by all recoveries.
    pub records_replayed: u64,
    /// Snapshots installed by all engine processes.
    pub snapshots_installed: u64,
    /// Write failures scheduled.
    pub write_failures_scheduled: u64,
    /// Sync failures scheduled.
    pub sync_failures_scheduled: u64,
    /// Process halts scheduled (at a mutation).
    pub halts_scheduled: u64,
    /// Times the engine halted.
    pub engine_halts: u64,
    /// Bits flipped in durable bytes.
    pub bit_flips: u64,
    /// Flipped bits that made recovery fail closed.
    pub corruptions_detected: u64,
    /// Flipped bits in the newest record, which recovery dropped as a torn tail (known limit).
    pub newest_records_dropped: u64,
    /// Faults aimed at recovery itself (a failing write or sync, or a halt, during the start).
    pub recovery_faults_scheduled: u64,
    /// Restarts with other table capacities.
    pub capacity_changes: u64,
    /// Of those, changes the engine refused (the state did not fit).
    pub capacity_changes_refused: u64,
    /// Wall-clock resets backwards.
    pub clock_steps_back: u64,
    /// Spare segments filled and handed back to the storage.
    pub spares_filled: u64,
    /// Log segments that were spares (renamed in at a rollover, or moved onto while young).
    pub spare_segments_used: u64,
}

impl fmt::Display for RunStats {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "steps={} groups={} (pipelined pairs {}) requests={} restarts={} (torn {}, failed starts {}) torn_tails={} \
             replayed={} snapshots={} faults: write={} sync={} halt={} engine_halts={} bit_flips={} (fail closed {}, newest dropped {}) recovery_faults={} capacity_changes={} (refused {}) clock_back={} \
             spares: filled={} used={}",
            self.steps,
            self.groups,
            self.pipelined_pairs,
            self.requests,
            self.restarts,
            self.torn_crashes,
            self.failed_starts,
            self.torn_tails_repaired,
            self.records_replayed,
            self.snapshots_installed,
            self.write_failures_scheduled,
            self.sync_failures_scheduled,
            self.halts_scheduled,
            self.engine_halts,
            self.bit_flips,
            self.corruptions_detected,
            self.newest_records_dropped,
            self.recovery_faults_scheduled,
            self.capacity_changes,
            self.capacity_changes_refused,
            self.clock_steps_back,
            self.spares_filled,
            self.spare_segments_used,
        )
    }
}
