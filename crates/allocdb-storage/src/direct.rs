//! Block-aligned direct writes (`O_DIRECT`) for log files.
//!
//! A buffered `pwrite` copies the group's bytes into the page cache, and the `fdatasync` after
//! it writes those pages back: on the engine thread the copy alone measured about a fifth of
//! its time at 800k commands/s, and the kernel's page-cache bookkeeping more. A direct write
//! hands the block-aligned buffer to the device instead, so the `fdatasync` that follows only
//! flushes the device's cache (the segment's blocks are already written, see `spare.rs`, so
//! no metadata changes).
//!
//! **Small writes.** A direct write is a device write the writer waits for; a buffered one is
//! a copy, and the `fdatasync` after it does the device write on the sync thread. For the
//! small groups of unbatched work (a dozen commands, 1–2 KiB) the wait costs more than the
//! copy: with every write direct, uncontended work ran 7–9 % slower than with every write
//! buffered (alternating runs of 32 clients, 2026-12-05). So writes shorter than the
//! writer's `min_bytes` ([`DIRECT_WRITE_MIN_BYTES_DEFAULT`], set per directory) go through the
//! page cache, **in the same whole blocks** a direct write would carry (the block's head from
//! the writer's copy, zeros after the data). A write of part of a page that is not in the page
//! cache makes the kernel read that page from the device first, on the writing thread; a log
//! mixing direct and page-cache writes, or written into a spare that was filled direct, would
//! otherwise pay that read for most small groups (1,100–1,400 reads per second on the engine
//! thread in the batched and uncontended benchmarks of 2026-12-05). A whole-page write needs no
//! read, and the writer keeps its copy of the last block either way.
//!
//! Direct I/O needs the file offset, the length and the memory address aligned to the logical
//! block; [`BLOCK_SIZE_BYTES`] (4 KiB) covers every common device. A write at `offset` of
//! `data` therefore writes whole blocks from `offset` rounded down to the end rounded up:
//! - the bytes of the first block before `offset` come from this writer's copy of the last
//!   block it wrote when the write starts in that block (every log append), else they are
//!   read back from the file first;
//! - the bytes of the last block after the data are written as zeros. This is the one thing a
//!   block writer adds to the [`crate::LogFile`] contract, and it holds for every caller in
//!   this crate: the log is written at its end, where the file holds zeros.
//!
//! Invariants: both paths write the same bytes (whole blocks), so which one a write took never
//! shows in the file. The scratch buffer is allocated once, on the first write, and never grows
//! (`CHUNK_SIZE_BYTES` plus one block of alignment slack); larger writes go in chunks. A write
//! never pads past the file's size, because it would change the size: such a write (a file
//! whose size is not a multiple of the block) is refused with [`DirectRefusal::Unaligned`]
//! before anything is written, and the caller writes it through the page cache.
//! A writer's knowledge of its last block is only valid while nobody else writes the file;
//! the storage has one writer per file, and a sync through a duplicate handle writes nothing.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The alignment of offsets, lengths and buffer addresses of a direct write.
pub const BLOCK_SIZE_BYTES: usize = 4_096;

const BLOCK: u64 = BLOCK_SIZE_BYTES as u64;

/// Writes shorter than this go through the page cache even to a direct log file, unless the
/// directory says otherwise (see "Small writes" above).
pub const DIRECT_WRITE_MIN_BYTES_DEFAULT: usize = 16 * 1_024;

/// The most bytes one direct `pwrite` carries; also the size of the scratch buffer.
const CHUNK_SIZE_BYTES: usize = 1 << 20;

/// Why a write did not go direct; nothing was written.
#[derive(Debug)]
pub(crate) enum DirectRefusal {
    /// Padding the last block would extend the file past its size.
    Unaligned,
    /// The operating system refused the aligned write itself (`EINVAL`): the device's block
    /// is larger than [`BLOCK_SIZE_BYTES`], or the filesystem does not do direct writes.
    NotSupported,
    /// Any other error; the file must be treated as failed.
    Failed(io::Error),
}

/// How a block-aligned buffer reaches the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// `pwrite` on the `O_DIRECT` handle: the device writes it before the call returns.
    Direct,
    /// `pwrite` on the ordinary handle: copied into whole page-cache pages, written back by the
    /// next sync.
    PageCache,
}

/// The block writer of one log file handle: direct for long writes, through the page cache for
/// short ones, whole blocks either way.
#[derive(Debug)]
pub(crate) struct DirectWriter {
    file: File,
    scratch: Vec<u8>,
    /// The file offset of `last_block`, the last block this writer wrote, as it is in the
    /// file; `None` until this writer has written, and after anything else changed the file.
    last_block_start: Option<u64>,
    last_block: Box<[u8; BLOCK_SIZE_BYTES]>,
    /// Shorter writes go through the page cache.
    min_bytes: usize,
}

impl DirectWriter {
    /// Wraps a handle opened with `O_DIRECT`.
    pub(crate) fn new(file: File, min_bytes: usize) -> DirectWriter {
        DirectWriter {
            file,
            scratch: Vec::new(),
            last_block_start: None,
            last_block: Box::new([0; BLOCK_SIZE_BYTES]),
            min_bytes,
        }
    }

    /// Whether a write of `length` bytes should go direct rather than through the page cache.
    fn takes(&self, length: usize) -> bool {
        length >= self.min_bytes
    }

    /// Forgets the last block: the file changed through another path.
    pub(crate) fn forget_last_block(&mut self) {
        self.last_block_start = None;
    }

    /// Writes `data` at `offset` in whole blocks, direct unless it is shorter than the writer's
    /// minimum (then through `buffered`, the same file opened without `O_DIRECT`, which is also
    /// read from when the first block's leading bytes are not known); `size_bytes` is the
    /// file's current size.
    pub(crate) fn write_all_at(
        &mut self,
        buffered: &File,
        size_bytes: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), DirectRefusal> {
        let end = offset + data.len() as u64;
        if end.div_ceil(BLOCK) * BLOCK > size_bytes {
            return Err(DirectRefusal::Unaligned);
        }
        if self.scratch.is_empty() {
            self.scratch = vec![0; CHUNK_SIZE_BYTES + BLOCK_SIZE_BYTES];
        }
        let route = if self.takes(data.len()) { Route::Direct } else { Route::PageCache };
        let mut position = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let written = self.write_chunk(buffered, route, position, rest)?;
            position += written as u64;
            rest = &rest[written..];
        }
        Ok(())
    }

    /// Writes the blocks from `position` rounded down, with as much of `data` as one chunk
    /// holds; returns how many bytes of `data` went in.
    fn write_chunk(
        &mut self,
        buffered: &File,
        route: Route,
        position: u64,
        data: &[u8],
    ) -> Result<usize, DirectRefusal> {
        let start = position / BLOCK * BLOCK;
        let head = usize::try_from(position - start).unwrap_or(0);
        let taken = data.len().min(CHUNK_SIZE_BYTES - head);
        let end = position + taken as u64;
        let length = usize::try_from(end.div_ceil(BLOCK) * BLOCK - start).unwrap_or(0);
        let pad = self.scratch.as_ptr().align_offset(BLOCK_SIZE_BYTES);
        let buffer = &mut self.scratch[pad..pad + length];
        if head > 0 {
            if self.last_block_start == Some(start) {
                buffer[..head].copy_from_slice(&self.last_block[..head]);
            } else {
                buffered.read_exact_at(&mut buffer[..head], start).map_err(DirectRefusal::Failed)?;
            }
        }
        buffer[head..head + taken].copy_from_slice(&data[..taken]);
        buffer[head + taken..].fill(0);
        // Until the write succeeds, the block's content in the file is unknown.
        self.last_block_start = None;
        let written = match route {
            Route::Direct => self.file.write_all_at(buffer, start),
            Route::PageCache => buffered.write_all_at(buffer, start),
        };
        match written {
            Ok(()) => {}
            Err(error)
                if route == Route::Direct
                    && error.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
            {
                return Err(DirectRefusal::NotSupported);
            }
            Err(error) => return Err(DirectRefusal::Failed(error)),
        }
        let last_block_start = start + (length - BLOCK_SIZE_BYTES) as u64;
        self.last_block.copy_from_slice(&buffer[length - BLOCK_SIZE_BYTES..]);
        self.last_block_start = Some(last_block_start);
        Ok(taken)
    }

    /// A second writer over the same open file, knowing nothing of its last block.
    pub(crate) fn duplicate(&self) -> io::Result<DirectWriter> {
        Ok(DirectWriter::new(self.file.try_clone()?, self.min_bytes))
    }
}
