//! The clock seam and the conversion from wall-clock time to logical slots.
//!
//! The engine is the only place that reads time, and it reads it through [`Clock`] so the
//! simulator can substitute virtual time. The sequencer turns a reading into a slot with
//! [`SlotClock::slot_for`], which never returns a slot below the last one it handed out —
//! including the last slot found in the log at startup — so slots never go backwards across
//! clock steps or restarts.

/// A source of wall-clock time in milliseconds since the Unix epoch, plus a monotonic reading
/// used only to measure durations for metrics (never to decide anything).
pub trait Clock {
    /// The current time in milliseconds.
    fn now_ms(&self) -> u64;

    /// A monotonic reading in nanoseconds, for measuring latencies.
    fn monotonic_ns(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock before 1970 reads as 0; the slot clock then holds the last logged slot.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
    }

    fn monotonic_ns(&self) -> u64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let start = START.get_or_init(std::time::Instant::now);
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to: for tests and the simulator. Clones share the time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> ManualClock {
        ManualClock { now_ms: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(now_ms)) }
    }

    /// Sets the time (it may go backwards, to test that slots do not).
    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, std::sync::atomic::Ordering::Release);
    }

    /// Moves the time forward.
    pub fn advance_ms(&self, duration_ms: u64) {
        self.now_ms.fetch_add(duration_ms, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Virtual time: durations measured against a manual clock are whatever the test moved it.
    fn monotonic_ns(&self) -> u64 {
        self.now_ms().saturating_mul(1_000_000)
    }
}

/// Converts clock readings to slots that never decrease.
#[derive(Clone, Copy, Debug)]
pub struct SlotClock {
    slot_duration_ms: u64,
    last_slot: u64,
}

impl SlotClock {
    /// A slot clock that will never go below `last_logged_slot`.
    pub fn new(slot_duration_ms: u64, last_logged_slot: u64) -> SlotClock {
        assert!(slot_duration_ms > 0);
        SlotClock { slot_duration_ms, last_slot: last_logged_slot }
    }

    /// The slot for a clock reading: `now_ms / slot_duration_ms`, held at the last slot if the
    /// clock stepped back.
    pub fn slot_for(&mut self, now_ms: u64) -> u64 {
        self.last_slot = self.last_slot.max(now_ms / self.slot_duration_ms);
        self.last_slot
    }

    /// The last slot handed out (or logged before startup).
    pub fn last_slot(&self) -> u64 {
        self.last_slot
    }

    /// Slot length in milliseconds.
    pub fn slot_duration_ms(&self) -> u64 {
        self.slot_duration_ms
    }
}

#[cfg(test)]
mod tests {
    use super::SlotClock;

    #[test]
    fn slot_never_goes_below_the_last_logged_slot() {
        let mut clock = SlotClock::new(10, 500);
        assert_eq!(clock.slot_for(1_000), 500, "clock behind the log holds the logged slot");
        assert_eq!(clock.slot_for(5_009), 500);
        assert_eq!(clock.slot_for(5_010), 501);
        assert_eq!(clock.slot_for(4_000), 501, "a clock step back holds the slot");
    }
}
