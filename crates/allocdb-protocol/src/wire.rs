//! Primitive fields: a bounds-checked reader over one complete frame, and the matching writers.
//!
//! The reader only ever sees the bytes of one frame whose length was already checked against
//! the connection's limit, so every "bytes left" it reports is bytes left *in the frame*. Every
//! read checks the length before slicing and names the field and its offset in the error; counts
//! are checked against their limit and against the bytes left before the caller allocates room
//! for the elements (`docs/protocol.md` §9). Integers are fixed-width little-endian; a u128 is
//! 16 bytes; a string is a u16 byte length then UTF-8.

#![deny(clippy::indexing_slicing)]

use crate::error::Defect;
use crate::limits::MESSAGE_SIZE_BYTES_MAX;

/// A cursor over one frame. Offsets count from the frame's first byte (its length prefix).
#[derive(Debug)]
pub struct Reader<'b> {
    bytes: &'b [u8],
    offset: usize,
}

impl<'b> Reader<'b> {
    /// A reader over `frame`, starting at `offset`.
    pub(crate) fn new(frame: &'b [u8], offset: usize) -> Reader<'b> {
        Reader { bytes: frame, offset }
    }

    /// The offset of the next byte to read.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes left in the frame.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.offset)
    }

    fn slice(&mut self, field: &'static str, size_bytes: usize) -> Result<&'b [u8], Defect> {
        let bytes = self.bytes;
        let field_bytes =
            self.offset.checked_add(size_bytes).and_then(|end| bytes.get(self.offset..end)).ok_or(
                Defect::Truncated {
                    field,
                    offset: self.offset,
                    needed: size_bytes,
                    available: self.remaining(),
                },
            )?;
        self.offset += size_bytes;
        Ok(field_bytes)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Defect> {
        let field_bytes = self.slice(field, N)?;
        let mut array = [0_u8; N];
        array.copy_from_slice(field_bytes);
        Ok(array)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, Defect> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, Defect> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, Defect> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, Defect> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u128(&mut self, field: &'static str) -> Result<u128, Defect> {
        Ok(u128::from_le_bytes(self.array(field)?))
    }

    /// A flags byte whose bits outside `allowed` must be zero.
    pub(crate) fn flags(&mut self, field: &'static str, allowed: u8) -> Result<u8, Defect> {
        let offset = self.offset;
        let value = self.u8(field)?;
        if value & !allowed != 0 {
            return Err(Defect::ReservedBitsSet { field, offset, value, allowed });
        }
        Ok(value)
    }

    /// An enumerated byte, converted by `from_u8`.
    pub(crate) fn enumerated<T>(
        &mut self,
        field: &'static str,
        from_u8: fn(u8) -> Option<T>,
    ) -> Result<T, Defect> {
        let offset = self.offset;
        let value = self.u8(field)?;
        from_u8(value).ok_or(Defect::UnknownValue { field, offset, value })
    }

    /// Checks a count read at `offset` against its limit, then against the bytes left (each
    /// element takes at least `element_size_bytes_min`). Only then may the caller allocate.
    pub(crate) fn check_count(
        &self,
        field: &'static str,
        offset: usize,
        count: u64,
        limit: u64,
        element_size_bytes_min: usize,
    ) -> Result<usize, Defect> {
        if count > limit {
            return Err(Defect::CountExceedsLimit { field, offset, count, limit });
        }
        let available = self.remaining();
        let needed = count.saturating_mul(element_size_bytes_min as u64);
        if needed > available as u64 {
            return Err(Defect::CountExceedsBytes { field, offset, count, needed, available });
        }
        // `count` elements fit in the bytes left, so it fits in `usize`.
        usize::try_from(count).map_err(|_| Defect::CountExceedsBytes {
            field,
            offset,
            count,
            needed,
            available,
        })
    }

    /// A u16 byte length, at most [`MESSAGE_SIZE_BYTES_MAX`], then that many bytes of UTF-8.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, Defect> {
        let length_offset = self.offset;
        let length = self.u16(field)?;
        let length =
            self.check_count(field, length_offset, u64::from(length), MESSAGE_SIZE_BYTES_MAX as u64, 1)?;
        let offset = self.offset;
        let text = self.slice(field, length)?;
        match std::str::from_utf8(text) {
            Ok(text) => Ok(text.to_owned()),
            Err(error) => Err(Defect::InvalidUtf8 { field, offset, valid_up_to: error.valid_up_to() }),
        }
    }

    /// Checks that the frame was consumed exactly.
    pub(crate) fn finish(&self) -> Result<(), Defect> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(Defect::TrailingBytes { offset: self.offset, count }),
        }
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, value: u8) {
    out.push(value);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u128(out: &mut Vec<u8>, value: u128) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Writes a message string; the caller has checked its length (see [`check_message`]).
pub(crate) fn put_string(out: &mut Vec<u8>, text: &str) {
    assert!(text.len() <= MESSAGE_SIZE_BYTES_MAX, "message length checked before encoding");
    put_u16(out, text.len() as u16);
    out.extend_from_slice(text.as_bytes());
}

/// Checks that `text` can be written as a message string.
pub(crate) fn check_message(text: &str) -> Result<(), crate::error::EncodeError> {
    if text.len() > MESSAGE_SIZE_BYTES_MAX {
        return Err(crate::error::EncodeError::MessageTooLong {
            size_bytes: text.len(),
            limit: MESSAGE_SIZE_BYTES_MAX,
        });
    }
    Ok(())
}

// A message length is written as a u16.
const _: () = assert!(MESSAGE_SIZE_BYTES_MAX <= u16::MAX as usize);

#[cfg(test)]
mod tests {
    use super::Reader;
    use crate::error::Defect;

    #[test]
    fn reads_report_field_offset_and_bytes_left() {
        let frame = [1, 2, 3, 4, 5, 6];
        let mut reader = Reader::new(&frame, 4);
        assert_eq!(
            reader.u64("lease_epoch"),
            Err(Defect::Truncated { field: "lease_epoch", offset: 4, needed: 8, available: 2 })
        );
        assert_eq!(reader.u16("member count"), Ok(0x0605));
        assert_eq!(reader.finish(), Ok(()));
    }

    #[test]
    fn counts_are_checked_against_limit_then_bytes() {
        let frame = [0_u8; 20];
        let reader = Reader::new(&frame, 10);
        assert_eq!(
            reader.check_count("write count", 6, u64::from(u32::MAX), 8, 18),
            Err(Defect::CountExceedsLimit {
                field: "write count",
                offset: 6,
                count: u64::from(u32::MAX),
                limit: 8
            })
        );
        assert_eq!(
            reader.check_count("member count", 6, 1, 8, 16),
            Err(Defect::CountExceedsBytes {
                field: "member count",
                offset: 6,
                count: 1,
                needed: 16,
                available: 10
            })
        );
        assert_eq!(reader.check_count("member count", 6, 5, 8, 2), Ok(5));
    }

    #[test]
    fn strings_must_be_utf8() {
        let frame = [3, 0, b'o', 0xff, b'k'];
        let mut reader = Reader::new(&frame, 0);
        assert_eq!(
            reader.string("message"),
            Err(Defect::InvalidUtf8 { field: "message", offset: 2, valid_up_to: 1 })
        );
        let frame = [2, 0, b'o', b'k'];
        assert_eq!(Reader::new(&frame, 0).string("message"), Ok("ok".to_owned()));
    }
}
