//! Production [`LogDirectory`] over `std::fs`, with `fallocate` from `rustix`.
//!
//! Mapping: `write_all_at`/`read_exact_at` are `pwrite`/`pread` (`std::os::unix::fs::FileExt`),
//! `sync_data` is `fdatasync` (`File::sync_data`), `set_size_bytes` is `ftruncate`, `allocate`
//! is `fallocate(mode = 0)` so a segment's disk space is reserved when the segment is created
//! and a full disk surfaces there, at a definite point, instead of in the middle of a group
//! commit. Filesystems without `fallocate` fall back to `ftruncate` (sparse, same zeros).
//! The directory is synced by `fsync` on an open directory handle, which is what makes
//! creates, renames and removes durable on Linux.
//!
//! Log files (segments and the spare) are written with `O_DIRECT` in whole 4 KiB blocks
//! (`crate::direct`) unless direct I/O is switched off or the filesystem refuses it (tmpfs
//! refuses the `open`, a device with larger blocks the first write); then, and for a write
//! whose padding would pass the file's size, they go through the page cache as before. Writes
//! shorter than the directory's `direct_write_min_bytes` (16 KiB unless set) go through the
//! page cache too, but in the same whole blocks, so the kernel never reads a partly written
//! page back from the device.
//! Reads, syncs and size changes always use the ordinary handle.
//!
//! **Sizes without timestamps.** A file's size is read with `statx` asking for the size alone
//! ([`file_size_bytes`]), never with `fstat`/`metadata()`. Since Linux 6.13, ext4 (and other
//! filesystems with multigrain timestamps) remember that a file's change time was read, and the
//! next write then stamps it with a fine-grained time, so the inode changes on every write. On
//! the benchmark machine's ext4 (no journal) each `fdatasync` then also wrote the inode block,
//! a second device write to wait for: the direct writer reads the size before every write, and
//! with `metadata()` there `ext4_write_inode` sat under most group commits (2026-12-05,
//! `perf record` of the sync thread, batched benchmark).
//!
//! Invariant: every name passed in is a single path component; anything else is rejected
//! with `InvalidInput` so a bad name can never reach outside the directory.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::direct::{DIRECT_WRITE_MIN_BYTES_DEFAULT, DirectRefusal, DirectWriter};
use crate::io::{LogDirectory, LogFile};
use crate::names::is_log_file;

/// The size of the file at `path`, read without reading its timestamps (module documentation,
/// "Sizes without timestamps"); a relative `path` is taken from the working directory.
///
/// # Errors
/// Any error of `statx`, such as a missing file.
pub fn file_size_bytes(path: &Path) -> io::Result<u64> {
    size_at(rustix::fs::CWD, path, rustix::fs::AtFlags::empty())
}

/// The size of an open file, read without reading its timestamps.
fn open_file_size_bytes(file: &File) -> io::Result<u64> {
    size_at(file, "", rustix::fs::AtFlags::EMPTY_PATH)
}

fn size_at<Fd: AsFd, P: rustix::path::Arg>(
    directory: Fd,
    path: P,
    flags: rustix::fs::AtFlags,
) -> io::Result<u64> {
    let status = rustix::fs::statx(directory, path, flags, rustix::fs::StatxFlags::SIZE)?;
    if !rustix::fs::StatxFlags::from_bits_retain(status.stx_mask).contains(rustix::fs::StatxFlags::SIZE) {
        return Err(io::Error::other("statx did not report the file size"));
    }
    Ok(status.stx_size)
}

/// A [`LogDirectory`] backed by a real directory on disk.
#[derive(Debug)]
pub struct FsDirectory {
    path: PathBuf,
    direct_io: bool,
    direct_write_min_bytes: usize,
}

impl FsDirectory {
    /// Opens `path`, creating it (and its parents) if it does not exist.
    ///
    /// # Errors
    /// Any error creating or opening the directory.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<FsDirectory> {
        let path = path.into();
        std::fs::create_dir_all(&path)?;
        // Fail now, not at the first sync, if the path is not a directory we can open.
        File::open(&path)?;
        Ok(FsDirectory { path, direct_io: true, direct_write_min_bytes: DIRECT_WRITE_MIN_BYTES_DEFAULT })
    }

    /// Switches direct writes of log files on (the default) or off.
    #[must_use]
    pub fn with_direct_io(mut self, enabled: bool) -> FsDirectory {
        self.direct_io = enabled;
        self
    }

    /// Sets the smallest write that goes direct; shorter ones go through the page cache
    /// (default [`DIRECT_WRITE_MIN_BYTES_DEFAULT`]; 0 sends every write direct).
    #[must_use]
    pub fn with_direct_write_min_bytes(mut self, min_bytes: usize) -> FsDirectory {
        self.direct_write_min_bytes = min_bytes;
        self
    }

    /// A direct writer for `name` if it is a log file and direct I/O is on and supported.
    fn direct_writer(&self, name: &str, path: &Path) -> io::Result<Option<DirectWriter>> {
        use std::os::unix::fs::OpenOptionsExt;
        if !self.direct_io || !is_log_file(name) {
            return Ok(None);
        }
        let flag = i32::try_from(rustix::fs::OFlags::DIRECT.bits()).unwrap_or(0);
        match OpenOptions::new().write(true).custom_flags(flag).open(path) {
            Ok(file) => Ok(Some(DirectWriter::new(file, self.direct_write_min_bytes))),
            Err(error) if error.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file_path(&self, name: &str) -> io::Result<PathBuf> {
        let is_plain =
            !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0');
        if !is_plain {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("file name {name:?} is not a single path component"),
            ));
        }
        Ok(self.path.join(name))
    }
}

impl LogDirectory for FsDirectory {
    type File = FsFile;

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            // A name that is not UTF-8 was not written by us; skip it like any foreign file.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, name: &str) -> io::Result<FsFile> {
        let path = self.file_path(name)?;
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        Ok(FsFile { file, direct: self.direct_writer(name, &path)? })
    }

    fn create(&self, name: &str) -> io::Result<FsFile> {
        let path = self.file_path(name)?;
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        match self.direct_writer(name, &path) {
            Ok(direct) => Ok(FsFile { file, direct }),
            Err(error) => {
                // The create failed as a whole, so it leaves no file behind: a retry would
                // otherwise find the name taken, and a restart an empty file it never wrote.
                drop(file);
                let _ = std::fs::remove_file(&path);
                Err(error)
            }
        }
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.file_path(name)?)
    }

    fn rename(&self, source: &str, target: &str) -> io::Result<()> {
        std::fs::rename(self.file_path(source)?, self.file_path(target)?)
    }

    fn sync(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }
}

/// A [`LogFile`] backed by an open `std::fs::File`, plus a direct writer for log files.
#[derive(Debug)]
pub struct FsFile {
    file: File,
    direct: Option<DirectWriter>,
}

impl FsFile {
    /// Whether writes to this file go direct (`O_DIRECT`) rather than through the page cache.
    #[must_use]
    pub fn writes_direct(&self) -> bool {
        self.direct.is_some()
    }

    fn forget_last_block(&mut self) {
        if let Some(direct) = &mut self.direct {
            direct.forget_last_block();
        }
    }
}

impl LogFile for FsFile {
    fn size_bytes(&self) -> io::Result<u64> {
        open_file_size_bytes(&self.file)
    }

    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        FileExt::read_exact_at(&self.file, buffer, offset)
    }

    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(direct) = &mut self.direct {
            // Long writes go direct, short ones through the page cache, both in whole blocks
            // (`direct.rs`, "Small writes").
            let size_bytes = open_file_size_bytes(&self.file)?;
            match direct.write_all_at(&self.file, size_bytes, offset, data) {
                Ok(()) => return Ok(()),
                Err(DirectRefusal::Failed(error)) => return Err(error),
                Err(DirectRefusal::Unaligned) => direct.forget_last_block(),
                Err(DirectRefusal::NotSupported) => self.direct = None,
            }
        }
        FileExt::write_all_at(&self.file, data, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_size_bytes(&mut self, size_bytes: u64) -> io::Result<()> {
        self.forget_last_block();
        self.file.set_len(size_bytes)
    }

    fn allocate(&mut self, size_bytes: u64) -> io::Result<()> {
        self.forget_last_block();
        match rustix::fs::fallocate(&self.file, rustix::fs::FallocateFlags::empty(), 0, size_bytes) {
            Ok(()) => Ok(()),
            // Not every filesystem implements fallocate; a sparse extension reads the same.
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {
                if self.size_bytes()? < size_bytes {
                    self.file.set_len(size_bytes)?;
                }
                Ok(())
            }
            Err(errno) => Err(errno.into()),
        }
    }

    fn duplicate(&self) -> io::Result<FsFile> {
        let direct = self.direct.as_ref().map(DirectWriter::duplicate).transpose()?;
        Ok(FsFile { file: self.file.try_clone()?, direct })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test")]

    use super::*;

    #[test]
    fn file_size_bytes_reads_sizes_of_files_and_open_files_and_fails_for_a_missing_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("sized");
        let file = File::create(&path).unwrap();
        file.set_len(12_345).unwrap();
        assert_eq!(file_size_bytes(&path).unwrap(), 12_345);
        assert_eq!(open_file_size_bytes(&file).unwrap(), 12_345);
        file.set_len(7).unwrap();
        assert_eq!(open_file_size_bytes(&file).unwrap(), 7);
        let missing = file_size_bytes(&directory.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
