//! A simulated [`LogDirectory`] that models live versus durable bytes and injects faults
//! deterministically.
//!
//! Fault model (what a crash or a fault can do, and nothing more):
//! - Writes change *live* bytes. A write to a log file (a segment or the spare) also zeroes
//!   the rest of its last 4 KiB block, up to the file's size, as the production directory's
//!   direct writes do (`crate::direct`), so a storage change that relied on bytes after a
//!   write fails here first. `sync_data` copies the file's written ranges and size to its
//!   *durable* bytes. A crash ([`SimDirectory::crash`]) replaces live by durable everywhere.
//! - Names (create, remove, rename) change the *live* name table; a directory sync copies it to
//!   the durable one; a crash restores the durable table and forgets unnamed files.
//! - [`SimDirectory::crash_with_torn_write`] first lets a prefix of the most recent write reach
//!   the durable bytes, if that write was never synced: the torn write of a power cut.
//! - A failed `sync_data` makes nothing durable and forgets the pending ranges, like Linux
//!   dropping dirty pages after a writeback error: a later sync will not save them.
//! - Scheduled faults: the Nth write fails, the Nth sync fails, or the Nth mutation halts the
//!   "process" (it and every later call fail until the next crash). Counters are absolute and
//!   visible through [`SimDirectory::counters`], so a test or a simulator can aim at any step.
//!   A crash clears a pending halt (the new process starts healthy) but keeps scheduled write
//!   and sync failures (they belong to the device).
//! - Media faults act on live and durable bytes at once: flip a bit, overwrite bytes, change a
//!   size, delete a file.
//!
//! Determinism: no clock, no randomness, ordered maps only; the same sequence of calls gives
//! the same state. A simulator draws its choices from its own seed and calls these methods.
//! Handles ([`SimFile`]) opened before a crash fail afterwards, like those of a dead process.
//!
//! Why this module is always compiled (no cargo feature): it has no dependencies, it is what
//! the engine's tests and the simulator crate drive, and a feature would have to be enabled
//! consistently by every dependent; production code still only sees the [`LogDirectory`] trait.

mod state;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::direct::BLOCK_SIZE_BYTES;
use crate::io::{LogDirectory, LogFile};
use crate::names::is_log_file;
pub use state::SimCounters;
use state::{Content, LastWrite, Operation, SimState};

/// A simulated directory. Cloning gives another handle to the same simulated disk, so a test
/// keeps one to inject faults while the storage layer owns another.
#[derive(Clone, Debug, Default)]
pub struct SimDirectory {
    shared: Arc<Mutex<SimState>>,
}

/// A file opened from a [`SimDirectory`].
#[derive(Debug)]
pub struct SimFile {
    shared: Arc<Mutex<SimState>>,
    inode: u64,
    name: String,
    generation: u64,
}

impl SimDirectory {
    /// An empty simulated directory with no faults scheduled.
    pub fn new() -> SimDirectory {
        SimDirectory::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock cannot leave the state half-updated in a way we rely
        // on: every call validates before it mutates. Keep going with the inner value.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Operation counts so far.
    pub fn counters(&self) -> SimCounters {
        self.lock().counters
    }

    /// Makes the `count`-th write from now fail (1 = the next write). Nothing is written.
    pub fn fail_write_in(&self, count: u64) {
        let mut state = self.lock();
        state.faults.write_failure_at = Some(state.counters.writes.saturating_add(count.max(1)));
    }

    /// Makes the `count`-th sync (file or directory) from now fail (1 = the next sync).
    pub fn fail_sync_in(&self, count: u64) {
        let mut state = self.lock();
        state.faults.sync_failure_at = Some(state.counters.syncs.saturating_add(count.max(1)));
    }

    /// Makes the `count`-th mutation from now fail and stops the simulated process: every
    /// later call fails until [`SimDirectory::crash`].
    pub fn halt_in(&self, count: u64) {
        let mut state = self.lock();
        state.faults.halt_at_mutation = Some(state.counters.mutations.saturating_add(count.max(1)));
    }

    /// Whether a scheduled halt has fired and no crash has happened since.
    pub fn is_halted(&self) -> bool {
        self.lock().halted
    }

    /// Power cut: every file and name reverts to its durable state; open handles go stale.
    ///
    /// # Errors
    /// Only if the simulated state is inconsistent (a bug in the simulator).
    pub fn crash(&self) -> io::Result<()> {
        self.lock().crash(None).map(|_| ())
    }

    /// Power cut during the most recent write: its first `keep_bytes` bytes reach the disk if
    /// it was never synced, then everything else unsynced is lost as in [`SimDirectory::crash`].
    /// Returns how many bytes of that write were kept (0 if there was no unsynced write).
    ///
    /// # Errors
    /// Only if the simulated state is inconsistent (a bug in the simulator).
    pub fn crash_with_torn_write(&self, keep_bytes: usize) -> io::Result<usize> {
        self.lock().crash(Some(keep_bytes))
    }

    /// Size of the most recent write if it has not been synced yet.
    pub fn unsynced_write_size_bytes(&self) -> Option<usize> {
        self.lock().last_write.as_ref().map(|write| write.bytes.len())
    }

    /// Names currently visible (live), sorted.
    pub fn file_names(&self) -> Vec<String> {
        self.lock().live_names.keys().cloned().collect()
    }

    /// The durable contents of `name` (what would survive a crash now), if it durably exists.
    pub fn durable_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.lock();
        let inode = state.durable_names.get(name)?;
        state.inodes.get(inode)?.durable.to_vec().ok()
    }

    /// Media fault: flips bit `bit_index` (0–7) of the byte at `offset`, live and durable.
    ///
    /// # Errors
    /// `NotFound` if the file does not exist; `UnexpectedEof` if `offset` is past its end.
    pub fn flip_bit(&self, name: &str, offset: u64, bit_index: u8) -> io::Result<()> {
        self.with_both_contents(name, |content| content.flip_bit(offset, bit_index))
    }

    /// Media fault: overwrites bytes at `offset`, live and durable.
    ///
    /// # Errors
    /// `NotFound` if the file does not exist, or the simulated size limit.
    pub fn write_durably(&self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.with_both_contents(name, |content| content.write(offset, bytes))
    }

    /// Media fault: truncates or extends a file, live and durable.
    ///
    /// # Errors
    /// `NotFound` if the file does not exist, or the simulated size limit.
    pub fn set_size_durably(&self, name: &str, size_bytes: u64) -> io::Result<()> {
        self.with_both_contents(name, |content| content.set_size(size_bytes))
    }

    /// Creates or replaces `name` with `bytes`, durably (contents and name).
    pub fn put_durably(&self, name: &str, bytes: &[u8]) {
        let mut state = self.lock();
        let inode = state.new_inode(Content::from_bytes(bytes));
        state.live_names.insert(name.to_owned(), inode);
        state.durable_names.insert(name.to_owned(), inode);
    }

    /// Deletes `name`, live and durable, as an operator or a broken disk might.
    ///
    /// # Errors
    /// `NotFound` if the file does not exist.
    pub fn remove_durably(&self, name: &str) -> io::Result<()> {
        let mut state = self.lock();
        state.named(name)?;
        state.live_names.remove(name);
        state.durable_names.remove(name);
        Ok(())
    }

    fn with_both_contents(
        &self,
        name: &str,
        change: impl Fn(&mut Content) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.named(name)?;
        let node = state.inode_mut(inode)?;
        change(&mut node.live)?;
        change(&mut node.durable)
    }
}

impl LogDirectory for SimDirectory {
    type File = SimFile;

    fn list(&self) -> io::Result<Vec<String>> {
        let mut state = self.lock();
        state.begin(Operation::Read, "list")?;
        Ok(state.live_names.keys().cloned().collect())
    }

    fn open(&self, name: &str) -> io::Result<SimFile> {
        let mut state = self.lock();
        state.begin(Operation::Read, &format!("open {name}"))?;
        let inode = state.named(name)?;
        Ok(SimFile {
            shared: Arc::clone(&self.shared),
            inode,
            name: name.to_owned(),
            generation: state.generation,
        })
    }

    fn create(&self, name: &str) -> io::Result<SimFile> {
        let mut state = self.lock();
        state.begin(Operation::OtherMutation, &format!("create {name}"))?;
        if state.live_names.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("simulated file {name} exists"),
            ));
        }
        let inode = state.new_inode(Content::default());
        state.live_names.insert(name.to_owned(), inode);
        Ok(SimFile {
            shared: Arc::clone(&self.shared),
            inode,
            name: name.to_owned(),
            generation: state.generation,
        })
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.lock();
        state.begin(Operation::OtherMutation, &format!("remove {name}"))?;
        state.named(name)?;
        state.live_names.remove(name);
        Ok(())
    }

    fn rename(&self, source: &str, target: &str) -> io::Result<()> {
        let mut state = self.lock();
        state.begin(Operation::OtherMutation, &format!("rename {source} to {target}"))?;
        let inode = state.named(source)?;
        state.live_names.remove(source);
        state.live_names.insert(target.to_owned(), inode);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.lock();
        state.begin(Operation::Sync, "sync directory")?;
        state.durable_names = state.live_names.clone();
        Ok(())
    }
}

impl SimFile {
    /// Locks the shared state and checks this handle survived no crash.
    fn lock(&self, operation: Operation, what: &str) -> io::Result<MutexGuard<'_, SimState>> {
        let mut state = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        state.begin(operation, &format!("{what} {}", self.name))?;
        if state.generation != self.generation {
            return Err(io::Error::other(format!(
                "handle to {} was opened before a simulated crash",
                self.name
            )));
        }
        Ok(state)
    }
}

impl LogFile for SimFile {
    fn size_bytes(&self) -> io::Result<u64> {
        let state = self.lock(Operation::Read, "size of")?;
        Ok(state.inode(self.inode)?.live.size())
    }

    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        let state = self.lock(Operation::Read, "read")?;
        state.inode(self.inode)?.live.read(offset, buffer)
    }

    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.lock(Operation::Write, "write")?;
        let node = state.inode_mut(self.inode)?;
        let mut bytes = data.to_vec();
        if is_log_file(&self.name) {
            let end = offset.saturating_add(data.len() as u64);
            let padded_end = end.div_ceil(BLOCK_SIZE_BYTES as u64).saturating_mul(BLOCK_SIZE_BYTES as u64);
            let pad = padded_end.min(node.live.size()).saturating_sub(end);
            bytes.resize(bytes.len() + usize::try_from(pad).unwrap_or(0), 0);
        }
        node.live.write(offset, &bytes)?;
        node.dirty.push((offset, bytes.len() as u64));
        state.last_write = Some(LastWrite { inode: self.inode, offset, bytes });
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut state = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = state.begin(Operation::Sync, &format!("sync {}", self.name)) {
            if !state.halted && state.generation == self.generation {
                state.fail_sync_inode(self.inode)?;
            }
            return Err(error);
        }
        if state.generation != self.generation {
            return Err(io::Error::other(format!(
                "handle to {} was opened before a simulated crash",
                self.name
            )));
        }
        state.sync_inode(self.inode)
    }

    fn set_size_bytes(&mut self, size_bytes: u64) -> io::Result<()> {
        let mut state = self.lock(Operation::OtherMutation, "set size of")?;
        let node = state.inode_mut(self.inode)?;
        node.live.set_size(size_bytes)
    }

    fn allocate(&mut self, size_bytes: u64) -> io::Result<()> {
        let mut state = self.lock(Operation::OtherMutation, "allocate")?;
        let node = state.inode_mut(self.inode)?;
        if node.live.size() < size_bytes {
            node.live.set_size(size_bytes)?;
        }
        Ok(())
    }

    fn duplicate(&self) -> io::Result<SimFile> {
        // Fails like any call through a handle that did not survive a simulated crash.
        drop(self.lock(Operation::Read, "duplicate")?);
        Ok(SimFile {
            shared: Arc::clone(&self.shared),
            inode: self.inode,
            name: self.name.clone(),
            generation: self.generation,
        })
    }
}
