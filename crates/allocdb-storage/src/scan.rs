//! Scanning one segment's bytes: valid records, then a clean end, a torn tail, or corruption
//! (`docs/recovery.md`, "Torn tail or corruption").
//!
//! A segment is a run of frames followed by zeros. Scanning stops at the first position that
//! is not a valid next record and classifies it:
//! - **clean end**: every byte from there to the end of the file is zero;
//! - **torn tail**: the damaged frame could be a prefix of an interrupted write — it is in the
//!   last segment, no checksum-valid frame starts anywhere after its first byte, and every
//!   byte past the frame's extent (its declared size if the header is sound and fits the file,
//!   else the header) is zero;
//! - **corruption** otherwise, reported with the evidence that rules out a torn tail.
//!
//! Why this is sound: the writer syncs a segment before it creates the next one, so only the
//! last segment can end in an interrupted write, and an interrupted write leaves a prefix of
//! its bytes followed by the zeros of the preallocated file. A frame whose checksum is valid is
//! never a torn tail, so an intact frame with a wrong lsn or slot is corruption. A damaged
//! length field cannot hide later records: the search for a valid frame after the damage does
//! not trust it. The price: a bit flip in the very last frame, with nothing after it, is
//! indistinguishable from a torn write and is truncated as one (it was the newest record, and
//! the limitation is documented).

#![deny(clippy::indexing_slicing)]

use crate::defect::{DamageEvidence, FrameDefect};
use crate::frame::{FRAME_HEADER_SIZE_BYTES, FRAME_MAGIC, LogRecord, Lsn, Slot, decode_frame, decode_header};

/// Where a segment sits in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SegmentPosition {
    /// The newest segment: the only one that may end in a torn write.
    Last,
    /// Any older segment: it was synced before its successor was created.
    Earlier,
}

/// Sequence state carried from record to record, across segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// The lsn the next record must have.
    pub(crate) next_lsn: Lsn,
    /// Slot of the previous record; the next may not be lower.
    pub(crate) previous_slot: Slot,
}

/// How a segment's records end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SegmentEnd {
    /// Only zeros follow the last record.
    Clean { offset: u64 },
    /// A torn frame starts at `offset`; its written bytes end before `offset + size_bytes`.
    Torn { offset: u64, size_bytes: u64 },
}

/// Corruption found at `offset` of the segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Damage {
    pub(crate) offset: u64,
    pub(crate) defect: FrameDefect,
    pub(crate) evidence: DamageEvidence,
}

/// Why a scan stopped early.
#[derive(Debug)]
pub(crate) enum ScanStop<E> {
    Corrupt(Damage),
    Visitor { lsn: Lsn, error: E },
}

/// Walks the frames of `bytes` (a whole segment), checks their sequence against `cursor`,
/// passes each record to `visit`, and classifies the end.
pub(crate) fn scan_segment<E>(
    bytes: &[u8],
    position: SegmentPosition,
    cursor: &mut Cursor,
    visit: &mut impl FnMut(LogRecord<'_>) -> Result<(), E>,
) -> Result<SegmentEnd, ScanStop<E>> {
    let mut offset: u64 = 0;
    loop {
        let rest = tail(bytes, offset);
        if rest.get(..4).is_none_or(|magic| magic == [0; 4]) {
            return match first_nonzero(rest) {
                None => Ok(SegmentEnd::Clean { offset }),
                Some(index) => Err(ScanStop::Corrupt(Damage {
                    offset,
                    defect: if rest.len() < 4 {
                        FrameDefect::HeaderTruncated { available_bytes: rest.len() as u64 }
                    } else {
                        FrameDefect::ZeroHeader
                    },
                    evidence: DamageEvidence::DataFollows { offset: offset + index },
                })),
            };
        }
        let (record, frame_size) = match decode_frame(rest) {
            Ok(decoded) => decoded,
            Err(defect) => {
                return classify_damage(rest, offset, position, &defect).map_err(ScanStop::Corrupt);
            }
        };
        check_sequence(&record, cursor).map_err(|defect| {
            ScanStop::Corrupt(Damage { offset, defect, evidence: DamageEvidence::IntactFrame })
        })?;
        cursor.next_lsn = record.lsn.saturating_add(1);
        cursor.previous_slot = record.slot;
        visit(record).map_err(|error| ScanStop::Visitor { lsn: record.lsn, error })?;
        offset += frame_size;
    }
}

fn check_sequence(record: &LogRecord<'_>, cursor: &Cursor) -> Result<(), FrameDefect> {
    if record.lsn != cursor.next_lsn || record.lsn == Lsn::MAX {
        return Err(FrameDefect::LsnOutOfSequence { expected: cursor.next_lsn, found: record.lsn });
    }
    if record.slot < cursor.previous_slot {
        return Err(FrameDefect::SlotRegression { previous: cursor.previous_slot, found: record.slot });
    }
    Ok(())
}

/// Decides whether the damaged frame at `offset` (whose bytes start `rest`) is a torn tail.
fn classify_damage(
    rest: &[u8],
    offset: u64,
    position: SegmentPosition,
    defect: &FrameDefect,
) -> Result<SegmentEnd, Damage> {
    let damage = |evidence| Damage { offset, defect: defect.clone(), evidence };
    if position == SegmentPosition::Earlier {
        return Err(damage(DamageEvidence::NotLastSegment));
    }
    if let Some(index) = next_valid_frame(rest) {
        return Err(damage(DamageEvidence::ValidFrameFollows { offset: offset + index }));
    }
    // Trust the declared size only if the header passed every check it can pass on its own.
    let extent = match decode_header(rest) {
        Ok(header) => header.frame_size_bytes,
        Err(_) => FRAME_HEADER_SIZE_BYTES.min(rest.len() as u64),
    };
    let after = tail(rest, extent);
    if let Some(index) = first_nonzero(after) {
        return Err(damage(DamageEvidence::DataFollows { offset: offset + extent + index }));
    }
    // Everything past the extent is zero, so the written bytes end inside it.
    let written_size = last_nonzero(rest).map_or(0, |index| index + 1);
    assert!(written_size <= extent, "non-zero byte past the extent of a torn frame");
    Ok(SegmentEnd::Torn { offset, size_bytes: written_size })
}

/// Offset (from the start of `rest`, at least 1) of the first complete, checksum-valid frame
/// after the damaged frame's first byte. Only a frame-magic match is decoded, so the search is
/// a byte compare over the segment in the common case.
fn next_valid_frame(rest: &[u8]) -> Option<u64> {
    let magic = FRAME_MAGIC.to_le_bytes();
    (1..rest.len())
        .filter(|&index| rest.get(index..).is_some_and(|candidate| candidate.starts_with(&magic)))
        .find(|&index| rest.get(index..).is_some_and(|candidate| decode_frame(candidate).is_ok()))
        .map(|index| index as u64)
}

fn tail(bytes: &[u8], offset: u64) -> &[u8] {
    usize::try_from(offset).ok().and_then(|start| bytes.get(start..)).unwrap_or_default()
}

fn first_nonzero(bytes: &[u8]) -> Option<u64> {
    bytes.iter().position(|byte| *byte != 0).map(|index| index as u64)
}

fn last_nonzero(bytes: &[u8]) -> Option<u64> {
    bytes.iter().rposition(|byte| *byte != 0).map(|index| index as u64)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index into segments they just built")]
mod tests {
    use super::*;
    use crate::frame::{RecordKind, encode_frame};
    use std::convert::Infallible;

    fn segment(records: u64, size: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for lsn in 1..=records {
            encode_frame(&LogRecord { lsn, slot: lsn, kind: RecordKind(1), payload: b"abcdef" }, &mut bytes);
        }
        bytes.resize(size, 0);
        bytes
    }

    fn scan(bytes: &[u8], position: SegmentPosition) -> Result<SegmentEnd, Damage> {
        let mut cursor = Cursor { next_lsn: 1, previous_slot: 0 };
        scan_segment(bytes, position, &mut cursor, &mut |_| Ok::<(), Infallible>(())).map_err(|stop| {
            match stop {
                ScanStop::Corrupt(damage) => damage,
                ScanStop::Visitor { error, .. } => match error {},
            }
        })
    }

    #[test]
    fn zeros_after_the_last_frame_are_a_clean_end() {
        assert_eq!(scan(&segment(3, 200), SegmentPosition::Last), Ok(SegmentEnd::Clean { offset: 114 }));
    }

    #[test]
    fn frame_filling_the_segment_exactly_is_a_clean_end() {
        assert_eq!(scan(&segment(2, 76), SegmentPosition::Last), Ok(SegmentEnd::Clean { offset: 76 }));
    }

    #[test]
    fn truncated_last_frame_of_an_earlier_segment_is_corruption() {
        let mut bytes = segment(2, 200);
        bytes[72] = 0;
        let damage = scan(&bytes, SegmentPosition::Earlier).unwrap_err();
        assert_eq!((damage.offset, damage.evidence), (38, DamageEvidence::NotLastSegment));
    }

    #[test]
    fn nonzero_byte_after_the_end_marker_is_corruption() {
        let mut bytes = segment(1, 200);
        bytes[150] = 1;
        let damage = scan(&bytes, SegmentPosition::Last).unwrap_err();
        assert_eq!(damage.defect, FrameDefect::ZeroHeader);
        assert_eq!(damage.evidence, DamageEvidence::DataFollows { offset: 150 });
    }
}
