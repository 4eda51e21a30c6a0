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
//! Invariant: every name passed in is a single path component; anything else is rejected
//! with `InvalidInput` so a bad name can never reach outside the directory.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::io::{LogDirectory, LogFile};

/// A [`LogDirectory`] backed by a real directory on disk.
#[derive(Debug)]
pub struct FsDirectory {
    path: PathBuf,
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
        Ok(FsDirectory { path })
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
        let file = OpenOptions::new().read(true).write(true).open(self.file_path(name)?)?;
        Ok(FsFile { file })
    }

    fn create(&self, name: &str) -> io::Result<FsFile> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(self.file_path(name)?)?;
        Ok(FsFile { file })
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

/// A [`LogFile`] backed by an open `std::fs::File`.
#[derive(Debug)]
pub struct FsFile {
    file: File,
}

impl LogFile for FsFile {
    fn size_bytes(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        FileExt::read_exact_at(&self.file, buffer, offset)
    }

    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        FileExt::write_all_at(&self.file, data, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_size_bytes(&mut self, size_bytes: u64) -> io::Result<()> {
        self.file.set_len(size_bytes)
    }

    fn allocate(&mut self, size_bytes: u64) -> io::Result<()> {
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
        Ok(FsFile { file: self.file.try_clone()? })
    }
}
