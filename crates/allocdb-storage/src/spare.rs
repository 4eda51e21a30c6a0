//! Spare segments: the next log segment, made ready before the log needs it.
//!
//! A segment created with `fallocate` has *unwritten* extents: on ext4 and XFS the first write
//! into each block turns it into a written extent, a metadata change, so every `fdatasync`
//! of the group commit also commits the filesystem journal (measured on this project's test
//! machine: 300–460 µs per 48 KiB write + `fdatasync` into fallocated blocks, 190 µs into
//! blocks already written with zeros). Writing the zeros when the segment is needed would stall
//! the engine for the whole segment (about 45 ms for 64 MiB), so the storage asks for a spare
//! ahead of time and another thread fills it:
//!
//! 1. [`crate::Storage::spare_preparation`] (engine thread): creates
//!    [`SPARE_SEGMENT_NAME`] and reserves its space; cheap.
//! 2. [`SparePreparation::fill`] (any thread): writes zeros over the whole file and syncs it.
//! 3. [`crate::Storage::accept_spare`] (engine thread): keeps the filled file for the next
//!    rollover, which renames it to the segment's name and syncs the directory instead of
//!    creating a file.
//!
//! Young segments: the first segment of a fresh directory, and the segment a restart appends
//! to, were not spares. While such an active segment holds at most a quarter of its size (at
//! most 8 MiB) of records, the next write first moves it onto a ready spare: the records are
//! copied into the spare and synced, then the spare is renamed over the segment's name and
//! the directory synced. A segment moves at most once (one that was a spare never moves).
//! This runs only when every written record is durable, so a crash
//! before the rename leaves the old file, and after it the copy, both holding every durable
//! record.
//!
//! Invariants: at most one spare exists, preparing or ready; a ready spare holds only zeros
//! and they are durable, so renaming it into place gives exactly what `create_segment` would
//! (a durable, zero-filled segment of the configured size); the spare's name is not a segment
//! name, so a crash at any step leaves a file that recovery removes and never reads. A failed
//! preparation costs nothing but speed: the rollover falls back to creating the segment.

use std::io;

use crate::io::LogFile;

/// The file name a spare segment is prepared under. Recovery removes it.
pub const SPARE_SEGMENT_NAME: &str = "log-spare.seg.tmp";

/// Bytes written per call while filling or copying into a spare.
const CHUNK_SIZE_BYTES: u64 = 1 << 20;

/// A spare segment file to fill with zeros, on any thread.
#[derive(Debug)]
pub struct SparePreparation<F> {
    pub(crate) file: F,
    pub(crate) size_bytes: u64,
}

impl<F: LogFile> SparePreparation<F> {
    /// Writes zeros over the whole file and makes them durable. The result goes back to the
    /// storage through [`crate::Storage::accept_spare`], failure included.
    pub fn fill(mut self) -> PreparedSpare<F> {
        let result = fill_with_zeros(&mut self.file, self.size_bytes);
        PreparedSpare { file: self.file, result }
    }
}

/// A spare segment after [`SparePreparation::fill`].
#[derive(Debug)]
pub struct PreparedSpare<F> {
    pub(crate) file: F,
    pub(crate) result: io::Result<()>,
}

/// What the storage holds of its spare segment.
#[derive(Debug)]
pub(crate) enum SpareState<F> {
    /// None exists; one may be asked for.
    Absent,
    /// Handed out for filling.
    Preparing,
    /// Filled and durable, waiting for the next rollover.
    Ready(F),
    /// A preparation failed; no other is tried until the next rollover.
    Failed,
}

/// The most record bytes an active segment may hold and still move onto a spare: a quarter
/// of the segment, at most 8 MiB (about 6 ms of copying and syncing, once per start).
pub(crate) fn young_segment_limit_bytes(segment_size_bytes: u64) -> u64 {
    (segment_size_bytes / 4).min(8 << 20)
}

/// The `(offset, size)` pieces of `0..length`, `CHUNK_SIZE_BYTES` at most each.
fn chunks(length: u64) -> impl Iterator<Item = (u64, usize)> {
    (0..length.div_ceil(CHUNK_SIZE_BYTES)).map(move |index| {
        let offset = index * CHUNK_SIZE_BYTES;
        // At most CHUNK_SIZE_BYTES, so it fits a usize.
        (offset, usize::try_from((length - offset).min(CHUNK_SIZE_BYTES)).unwrap_or(0))
    })
}

fn buffer_for(length: u64) -> Vec<u8> {
    vec![0_u8; usize::try_from(length.min(CHUNK_SIZE_BYTES)).unwrap_or(0)]
}

fn fill_with_zeros<F: LogFile>(file: &mut F, size_bytes: u64) -> io::Result<()> {
    let zeros = buffer_for(size_bytes);
    for (offset, size) in chunks(size_bytes) {
        file.write_all_at(offset, &zeros[..size])?;
    }
    file.sync_data()
}

/// Copies the first `length` bytes of `source` into `target` and makes them durable.
pub(crate) fn copy_records<F: LogFile>(source: &F, target: &mut F, length: u64) -> io::Result<()> {
    let mut buffer = buffer_for(length);
    for (offset, size) in chunks(length) {
        let part = &mut buffer[..size];
        source.read_exact_at(offset, part)?;
        target.write_all_at(offset, part)?;
    }
    target.sync_data()
}

#[cfg(test)]
mod tests {
    use super::{CHUNK_SIZE_BYTES, chunks};

    #[test]
    fn chunks_cover_the_length_exactly_once_in_order() {
        assert_eq!(chunks(0).count(), 0);
        let chunk = usize::try_from(CHUNK_SIZE_BYTES).unwrap_or(0);
        assert_eq!(chunks(CHUNK_SIZE_BYTES * 2).collect::<Vec<_>>(), [(0, chunk), (CHUNK_SIZE_BYTES, chunk)]);
        assert_eq!(chunks(CHUNK_SIZE_BYTES + 7).collect::<Vec<_>>(), [(0, chunk), (CHUNK_SIZE_BYTES, 7)]);
        assert_eq!(chunks(5).collect::<Vec<_>>(), [(0, 5)]);
    }
}
