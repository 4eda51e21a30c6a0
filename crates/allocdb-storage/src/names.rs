//! File names of the storage directory, their construction and their parsing.
//!
//! - `log-<first lsn, 20 digits>.seg`: a log segment; its first record has that lsn.
//! - `snapshot-<lsn, 20 digits>.snap`: a snapshot covering every record up to that lsn.
//! - `snapshot-<lsn, 20 digits>.snap.tmp`: a snapshot being written; never read, removed by
//!   recovery.
//! - `log-spare.seg.tmp`: the next segment being prepared (`crate::spare`); never read,
//!   removed by recovery.
//!
//! Fixed-width decimal numbers make names sort in lsn order and let parsing be exact: a name
//! with one of our prefixes and suffixes whose number is not exactly 20 decimal digits is
//! malformed (fail closed), never skipped, because it may be a damaged name of a file we need.
//! Names without our prefixes are foreign and ignored.

use crate::frame::Lsn;

const SEGMENT_PREFIX: &str = "log-";
const SEGMENT_SUFFIX: &str = ".seg";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".snap";
const TEMPORARY_SUFFIX: &str = ".snap.tmp";
const LSN_DIGITS: usize = 20;

const _: () = assert!(u64::MAX.ilog10() + 1 == LSN_DIGITS as u32, "20 digits hold every u64");

/// What a directory entry is, judged by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Segment {
        first_lsn: Lsn,
    },
    Snapshot {
        lsn: Lsn,
    },
    SnapshotTemporary,
    /// A spare segment being prepared (`crate::spare`); never read, removed by recovery.
    SpareSegment,
    Foreign,
}

/// Whether `name` is a log file: a segment or the spare (both carry the segment prefix).
pub(crate) fn is_log_file(name: &str) -> bool {
    name.starts_with(SEGMENT_PREFIX)
}

/// Name of the segment whose first record has `first_lsn`.
pub(crate) fn segment_name(first_lsn: Lsn) -> String {
    format!("{SEGMENT_PREFIX}{first_lsn:020}{SEGMENT_SUFFIX}")
}

/// Name of the snapshot covering records up to `lsn`.
pub(crate) fn snapshot_name(lsn: Lsn) -> String {
    format!("{SNAPSHOT_PREFIX}{lsn:020}{SNAPSHOT_SUFFIX}")
}

/// Name of the temporary file a snapshot at `lsn` is written to before its rename.
pub(crate) fn snapshot_temporary_name(lsn: Lsn) -> String {
    format!("{SNAPSHOT_PREFIX}{lsn:020}{TEMPORARY_SUFFIX}")
}

/// Classifies a directory entry. `Err(())` means the name is ours in shape but malformed.
pub(crate) fn parse(name: &str) -> Result<FileKind, ()> {
    if name == crate::spare::SPARE_SEGMENT_NAME {
        return Ok(FileKind::SpareSegment);
    }
    if let Some(rest) = name.strip_prefix(SEGMENT_PREFIX) {
        return match rest.strip_suffix(SEGMENT_SUFFIX) {
            Some(digits) => parse_lsn(digits).map(|first_lsn| FileKind::Segment { first_lsn }),
            None => Ok(FileKind::Foreign),
        };
    }
    if let Some(rest) = name.strip_prefix(SNAPSHOT_PREFIX) {
        if let Some(digits) = rest.strip_suffix(TEMPORARY_SUFFIX) {
            return parse_lsn(digits).map(|_| FileKind::SnapshotTemporary);
        }
        return match rest.strip_suffix(SNAPSHOT_SUFFIX) {
            Some(digits) => parse_lsn(digits).map(|lsn| FileKind::Snapshot { lsn }),
            None => Ok(FileKind::Foreign),
        };
    }
    Ok(FileKind::Foreign)
}

fn parse_lsn(digits: &str) -> Result<Lsn, ()> {
    if digits.len() != LSN_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(());
    }
    digits.parse().map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse() {
        assert_eq!(segment_name(1), "log-00000000000000000001.seg");
        assert_eq!(parse(&segment_name(42)), Ok(FileKind::Segment { first_lsn: 42 }));
        assert_eq!(parse(&snapshot_name(u64::MAX)), Ok(FileKind::Snapshot { lsn: u64::MAX }));
        assert_eq!(parse(&snapshot_temporary_name(3)), Ok(FileKind::SnapshotTemporary));
        assert_eq!(parse(crate::spare::SPARE_SEGMENT_NAME), Ok(FileKind::SpareSegment));
        // The spare's name is on disk: after a rename, a spare left by an older version would
        // read as a foreign file that recovery never removes (a segment's worth of space), so
        // the name is pinned.
        assert_eq!(crate::spare::SPARE_SEGMENT_NAME, "log-spare.seg.tmp");
    }

    #[test]
    fn damaged_names_of_our_shape_are_malformed_not_ignored() {
        assert_eq!(parse("log-0000000000000000001.seg"), Err(()));
        assert_eq!(parse("log-0000000000000000000x.seg"), Err(()));
        assert_eq!(parse("snapshot-99999999999999999999.snap"), Err(()));
    }

    #[test]
    fn foreign_names_are_ignored() {
        assert_eq!(parse("README"), Ok(FileKind::Foreign));
        assert_eq!(parse("log-notes.txt"), Ok(FileKind::Foreign));
        assert_eq!(parse("snapshot-old.bak"), Ok(FileKind::Foreign));
    }
}
