//! The I/O seam: the two narrow traits every byte of storage goes through.
//!
//! [`LogDirectory`] is one flat directory of files named by the storage layer; [`LogFile`] is
//! one open file in it. The production implementation ([`crate::FsDirectory`]) maps them onto
//! `std::fs` plus `fallocate`; the simulated one ([`crate::SimDirectory`]) models live versus
//! durable bytes and injects faults. The rest of the crate never learns which one it has.
//!
//! Contract (what the storage layer relies on, and what a new implementation must provide):
//! - A write is *live* once `write_all_at` returns and *durable* only after a later
//!   `sync_data` on that file returns `Ok`. A crash keeps durable bytes and may keep any
//!   prefix of the last unsynced write; it loses the rest.
//! - A created, removed or renamed *name* is durable only after `LogDirectory::sync` returns
//!   `Ok`; a crash before that may undo the change.
//! - Bytes between the end of written data and the file size read as zeros (`set_size_bytes`
//!   and `allocate` extend with zeros).
//! - A write to a log file (a name with the segment prefix `log-`) may also set the bytes
//!   after it, up to the next multiple of 4 KiB and at most to the file's size, to zero: that
//!   is how a block-aligned direct writer pads. Callers write log files at the end of their
//!   data, where the file holds zeros, so this changes nothing for them.
//! - A failed `sync_data` leaves it unknown which unsynced bytes are durable, now or ever
//!   (Linux may drop the dirty pages). Callers must treat the file as lost until recovery.
//! - Names are plain file names without separators; the storage layer chooses them.

use std::io;

/// One open file of a [`LogDirectory`]: positional reads and writes, durability, size.
///
/// Eight methods, about the size of redb's `StorageBackend`; every method maps onto one system
/// call in the production implementation.
pub trait LogFile {
    /// Current size of the file in bytes (live view, including unsynced extensions).
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn size_bytes(&self) -> io::Result<u64>;

    /// Fills `buffer` from `offset`; fails with `UnexpectedEof` if the file is shorter.
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()>;

    /// Writes all of `data` at `offset`, extending the file if needed. Live, not durable. In a
    /// log file, may zero the rest of the last 4 KiB block (module documentation).
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Makes every earlier write and size change of this file durable (`fdatasync`).
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn sync_data(&mut self) -> io::Result<()>;

    /// Truncates or extends (with zeros) the file to `size_bytes`.
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn set_size_bytes(&mut self, size_bytes: u64) -> io::Result<()>;

    /// Extends the file to at least `size_bytes` and reserves the disk space, so later writes
    /// inside it cannot fail for lack of space. New bytes read as zeros.
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn allocate(&mut self, size_bytes: u64) -> io::Result<()>;

    /// A second handle to the same open file (`dup`): a sync through either makes the writes
    /// made through both durable. The storage hands one to another thread so that a sync can
    /// run while the next group is planned.
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn duplicate(&self) -> io::Result<Self>
    where
        Self: Sized;
}

/// A flat directory holding the log segments and snapshot files of one node.
pub trait LogDirectory {
    /// The file handle type this directory opens.
    type File: LogFile;

    /// Names of all regular files in the directory, in any order.
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn list(&self) -> io::Result<Vec<String>>;

    /// Opens an existing file for reading and writing.
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn open(&self, name: &str) -> io::Result<Self::File>;

    /// Creates a new, empty file; fails with `AlreadyExists` if the name is taken.
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn create(&self, name: &str) -> io::Result<Self::File>;

    /// Removes a file. Durable only after [`LogDirectory::sync`].
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn remove(&self, name: &str) -> io::Result<()>;

    /// Atomically renames `source` to `target`, replacing `target`. Durable only after
    /// [`LogDirectory::sync`].
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn rename(&self, source: &str, target: &str) -> io::Result<()>;

    /// Makes every earlier create, remove and rename in this directory durable.
    ///
    /// # Errors
    /// The operating system's error, unchanged.
    fn sync(&self) -> io::Result<()>;
}
