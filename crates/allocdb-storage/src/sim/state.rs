//! The state behind a simulated directory: inodes with live and durable contents, live and
//! durable name tables, operation counters and the fault plan.
//!
//! Invariants:
//! - `durable_names` only names inodes present in `inodes`; `live_names` likewise.
//! - An inode's `durable` content changes only through a successful `sync_data` of that inode,
//!   an explicit media fault (`flip_bit`, `write_durably`...), or a torn write applied by a
//!   crash. Everything else changes `live` only.
//! - Everything is ordered (`BTreeMap`, `Vec`): the same calls give the same state.

use std::collections::BTreeMap;
use std::io;

/// Largest size a simulated file may reach. Bounds the memory a stray offset can claim.
pub(crate) const SIM_FILE_SIZE_BYTES_MAX: u64 = 1 << 30;

/// The bytes of one version (live or durable) of a simulated file. Bytes at or past
/// `data.len()` but before `size` read as zeros, so a preallocated segment costs no memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct Content {
    data: Vec<u8>,
    size: u64,
}

impl Content {
    pub(crate) fn from_bytes(bytes: &[u8]) -> Content {
        Content { data: bytes.to_vec(), size: bytes.len() as u64 }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn read(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        let end =
            offset.checked_add(buffer.len() as u64).filter(|end| *end <= self.size).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("read of {} bytes at offset {offset} past size {}", buffer.len(), self.size),
                )
            })?;
        buffer.fill(0);
        let data_end = end.min(self.data.len() as u64);
        if offset < data_end {
            let source = self.data.get(to_index(offset)?..to_index(data_end)?).unwrap_or_default();
            if let Some(target) = buffer.get_mut(..source.len()) {
                target.copy_from_slice(source);
            }
        }
        Ok(())
    }

    pub(crate) fn write(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let end = checked_end(offset, bytes.len() as u64)?;
        let start_index = to_index(offset)?;
        let end_index = to_index(end)?;
        if self.data.len() < end_index {
            self.data.resize(end_index, 0);
        }
        if let Some(target) = self.data.get_mut(start_index..end_index) {
            target.copy_from_slice(bytes);
        }
        self.size = self.size.max(end);
        Ok(())
    }

    pub(crate) fn set_size(&mut self, size: u64) -> io::Result<()> {
        checked_end(size, 0)?;
        if (self.data.len() as u64) > size {
            self.data.truncate(to_index(size)?);
        }
        self.size = size;
        Ok(())
    }

    /// Copies `source[offset .. offset + length]` (clipped to `source`'s size) into `self`.
    pub(crate) fn copy_range_from(&mut self, source: &Content, offset: u64, length: u64) -> io::Result<()> {
        let end = offset.saturating_add(length).min(source.size);
        if offset >= end {
            return Ok(());
        }
        let mut bytes = vec![0; to_index(end - offset)?];
        source.read(offset, &mut bytes)?;
        self.write(offset, &bytes)
    }

    pub(crate) fn flip_bit(&mut self, offset: u64, bit_index: u8) -> io::Result<()> {
        let mut byte = [0];
        self.read(offset, &mut byte)?;
        self.write(offset, &[byte[0] ^ (1 << (bit_index % 8))])
    }

    pub(crate) fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; to_index(self.size)?];
        self.read(0, &mut bytes)?;
        Ok(bytes)
    }
}

fn checked_end(offset: u64, length: u64) -> io::Result<u64> {
    offset.checked_add(length).filter(|end| *end <= SIM_FILE_SIZE_BYTES_MAX).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "offset {offset} + {length} bytes exceeds simulated file limit {SIM_FILE_SIZE_BYTES_MAX}"
            ),
        )
    })
}

fn to_index(value: u64) -> io::Result<usize> {
    usize::try_from(value).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset exceeds usize"))
}

/// A simulated file's contents, independent of the names that refer to it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inode {
    pub(crate) live: Content,
    pub(crate) durable: Content,
    /// Ranges written since the last `sync_data`, as (offset, length).
    pub(crate) dirty: Vec<(u64, u64)>,
}

/// The most recent write, kept so a crash can tear it.
#[derive(Clone, Debug)]
pub(crate) struct LastWrite {
    pub(crate) inode: u64,
    pub(crate) offset: u64,
    pub(crate) bytes: Vec<u8>,
}

/// How many operations of each class the directory has seen; faults are scheduled by them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimCounters {
    /// `write_all_at` calls.
    pub writes: u64,
    /// `sync_data` calls plus directory syncs.
    pub syncs: u64,
    /// Every call that changes state: writes, syncs, size changes, creates, removes, renames.
    pub mutations: u64,
}

/// Scheduled faults, each an absolute value of the matching counter.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FaultPlan {
    pub(crate) write_failure_at: Option<u64>,
    pub(crate) sync_failure_at: Option<u64>,
    pub(crate) halt_at_mutation: Option<u64>,
}

/// The whole simulated world behind a `SimDirectory`.
#[derive(Debug, Default)]
pub(crate) struct SimState {
    pub(crate) inodes: BTreeMap<u64, Inode>,
    pub(crate) live_names: BTreeMap<String, u64>,
    pub(crate) durable_names: BTreeMap<String, u64>,
    pub(crate) next_inode: u64,
    /// Bumped by every crash; handles from an older generation fail.
    pub(crate) generation: u64,
    pub(crate) counters: SimCounters,
    pub(crate) faults: FaultPlan,
    /// Set when a scheduled halt fires: the process is considered dead until `crash`.
    pub(crate) halted: bool,
    pub(crate) last_write: Option<LastWrite>,
}

/// The class of an operation, for counting and fault matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Read,
    Write,
    Sync,
    OtherMutation,
}

impl SimState {
    /// Counts `operation` and fails it if the fault plan says so. Must be called once at the
    /// start of every simulated call, before any state changes.
    pub(crate) fn begin(&mut self, operation: Operation, what: &str) -> io::Result<()> {
        if self.halted {
            return Err(io::Error::other(format!("simulated halt: {what} after the process stopped")));
        }
        if operation == Operation::Read {
            return Ok(());
        }
        self.counters.mutations += 1;
        if self.faults.halt_at_mutation == Some(self.counters.mutations) {
            self.halted = true;
            self.faults.halt_at_mutation = None;
            return Err(io::Error::other(format!(
                "simulated halt at mutation #{}: {what}",
                self.counters.mutations
            )));
        }
        if operation == Operation::Write {
            self.counters.writes += 1;
            if self.faults.write_failure_at == Some(self.counters.writes) {
                self.faults.write_failure_at = None;
                return Err(io::Error::other(format!(
                    "simulated write failure #{}: {what}",
                    self.counters.writes
                )));
            }
        }
        if operation == Operation::Sync {
            self.counters.syncs += 1;
            if self.faults.sync_failure_at == Some(self.counters.syncs) {
                self.faults.sync_failure_at = None;
                return Err(io::Error::other(format!(
                    "simulated sync failure #{}: {what}",
                    self.counters.syncs
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn inode(&self, inode: u64) -> io::Result<&Inode> {
        self.inodes.get(&inode).ok_or_else(|| io::Error::other(format!("simulated inode {inode} is gone")))
    }

    pub(crate) fn inode_mut(&mut self, inode: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&inode)
            .ok_or_else(|| io::Error::other(format!("simulated inode {inode} is gone")))
    }

    pub(crate) fn named(&self, name: &str) -> io::Result<u64> {
        self.live_names.get(name).copied().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("simulated file {name} not found"))
        })
    }

    pub(crate) fn new_inode(&mut self, content: Content) -> u64 {
        let inode = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(inode, Inode { live: content.clone(), durable: content, dirty: Vec::new() });
        inode
    }

    /// Applies a successful `sync_data`: the dirty ranges and the size become durable.
    pub(crate) fn sync_inode(&mut self, inode: u64) -> io::Result<()> {
        let node = self.inode_mut(inode)?;
        node.durable.set_size(node.live.size())?;
        for (offset, length) in std::mem::take(&mut node.dirty) {
            node.durable.copy_range_from(&node.live, offset, length)?;
        }
        if self.last_write.as_ref().is_some_and(|write| write.inode == inode) {
            self.last_write = None;
        }
        Ok(())
    }

    /// Applies a failed `sync_data` the way Linux may: the dirty pages are dropped from the
    /// writeback queue without reaching the disk, so they will not be retried by a later sync.
    pub(crate) fn fail_sync_inode(&mut self, inode: u64) -> io::Result<()> {
        self.inode_mut(inode)?.dirty.clear();
        Ok(())
    }

    /// Loses everything that is not durable, optionally keeping the first `torn_keep_bytes`
    /// of the last write if it was never synced. Returns how many bytes of it were kept.
    pub(crate) fn crash(&mut self, torn_keep_bytes: Option<usize>) -> io::Result<usize> {
        let mut kept = 0;
        if let (Some(keep), Some(write)) = (torn_keep_bytes, self.last_write.take()) {
            let prefix = write.bytes.get(..keep.min(write.bytes.len())).unwrap_or_default();
            if let Some(node) = self.inodes.get_mut(&write.inode) {
                node.durable.write(write.offset, prefix)?;
                kept = prefix.len();
            }
        }
        self.last_write = None;
        self.live_names = self.durable_names.clone();
        let referenced: Vec<u64> = self.durable_names.values().copied().collect();
        self.inodes.retain(|inode, _| referenced.contains(inode));
        for node in self.inodes.values_mut() {
            node.live = node.durable.clone();
            node.dirty.clear();
        }
        self.generation += 1;
        self.halted = false;
        self.faults.halt_at_mutation = None;
        Ok(kept)
    }
}
