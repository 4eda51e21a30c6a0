//! A log directory for tests that wraps another and injects the two sync faults the
//! indefinite-outcome tests need, through the same `LogDirectory` trait production uses:
//!
//! - **held syncs**: while a [`SyncHold`] is alive, every file sync blocks before it reaches
//!   the inner directory, so a write stays in flight as long as the test wants (a disk that
//!   stalls). The test waits for the stall with [`Faults::wait_for_held_sync`], an event, never
//!   a sleep; dropping the hold (also when the test panics) lets the syncs through.
//! - **a sync that lies**: [`Faults::fail_next_sync_after_it_completes`] makes the next file sync
//!   reach the inner directory and then report failure — the record is durable, the engine is
//!   told it may not be (what Linux can report after a writeback error on another page).
//!
//! Only file syncs (`sync_data`) are affected; everything else passes straight through, except
//! that the directory refuses to create a spare segment (`SPARE_SEGMENT_NAME`): the engine then
//! runs without spares, so every sync a test holds or fails is one of the log's own group
//! commits, never the background fill of a spare (spares have their own tests in
//! `allocdb-storage` and `allocdb-engine`). The black-box client tests include this file by
//! path, so it names the traits through `allocdb_server`.

#![allow(dead_code, reason = "each test file uses a different subset of the helpers")]

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use allocdb_server::{LogDirectory, LogFile, SPARE_SEGMENT_NAME};

/// The shared fault switches of a [`FaultyDirectory`] and its files.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct FaultState {
    holding: bool,
    held_count: u64,
    lie_about_next_sync: bool,
}

/// Holds every file sync until dropped.
#[must_use = "syncs are held only while the hold is alive"]
pub struct SyncHold {
    faults: Arc<Faults>,
}

impl Drop for SyncHold {
    fn drop(&mut self) {
        self.faults.lock().holding = false;
        self.faults.changed.notify_all();
    }
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks every file sync from now until the returned hold is dropped.
    pub fn hold_syncs(self: &Arc<Self>) -> SyncHold {
        self.lock().holding = true;
        SyncHold { faults: Arc::clone(self) }
    }

    /// Waits until a sync is blocked by a hold; panics, saying so, if none is within `timeout`.
    pub fn wait_for_held_sync(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.held_count == 0 {
            let remaining = deadline.saturating_duration_since(Instant::now());
            assert!(!remaining.is_zero(), "no log sync was held within {timeout:?}");
            state = self.changed.wait_timeout(state, remaining).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Makes the next file sync complete on the inner directory, then return an error.
    pub fn fail_next_sync_after_it_completes(&self) {
        self.lock().lie_about_next_sync = true;
    }

    /// Called by a file before its sync: blocks while held; says whether to lie afterwards.
    fn before_sync(&self) -> bool {
        let mut state = self.lock();
        if state.holding {
            state.held_count += 1;
            self.changed.notify_all();
            while state.holding {
                state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            state.held_count -= 1;
        }
        std::mem::take(&mut state.lie_about_next_sync)
    }
}

/// `inner` with [`Faults`] on its file syncs.
#[derive(Clone, Debug)]
pub struct FaultyDirectory<D> {
    inner: D,
    faults: Arc<Faults>,
}

impl<D> FaultyDirectory<D> {
    /// Wraps `inner`; returns the directory and its switches.
    pub fn new(inner: D) -> (FaultyDirectory<D>, Arc<Faults>) {
        let faults = Arc::new(Faults::default());
        (FaultyDirectory { inner, faults: Arc::clone(&faults) }, faults)
    }
}

/// A file of a [`FaultyDirectory`].
#[derive(Debug)]
pub struct FaultyFile<F> {
    inner: F,
    faults: Arc<Faults>,
}

impl<D: LogDirectory> LogDirectory for FaultyDirectory<D> {
    type File = FaultyFile<D::File>;

    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn open(&self, name: &str) -> io::Result<Self::File> {
        Ok(FaultyFile { inner: self.inner.open(name)?, faults: Arc::clone(&self.faults) })
    }

    fn create(&self, name: &str) -> io::Result<Self::File> {
        if name == SPARE_SEGMENT_NAME {
            return Err(io::Error::other("injected: this directory takes no spare segments"));
        }
        Ok(FaultyFile { inner: self.inner.create(name)?, faults: Arc::clone(&self.faults) })
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }

    fn rename(&self, source: &str, target: &str) -> io::Result<()> {
        self.inner.rename(source, target)
    }

    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
}

impl<F: LogFile> LogFile for FaultyFile<F> {
    fn size_bytes(&self) -> io::Result<u64> {
        self.inner.size_bytes()
    }

    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact_at(offset, buffer)
    }

    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_all_at(offset, data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let lie = self.faults.before_sync();
        self.inner.sync_data()?;
        if lie {
            return Err(io::Error::other("injected: the sync completed but reported failure"));
        }
        Ok(())
    }

    fn set_size_bytes(&mut self, size_bytes: u64) -> io::Result<()> {
        self.inner.set_size_bytes(size_bytes)
    }

    fn allocate(&mut self, size_bytes: u64) -> io::Result<()> {
        self.inner.allocate(size_bytes)
    }

    fn duplicate(&self) -> io::Result<Self> {
        Ok(FaultyFile { inner: self.inner.duplicate()?, faults: Arc::clone(&self.faults) })
    }
}
