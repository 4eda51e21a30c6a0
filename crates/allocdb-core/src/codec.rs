//! The command codec: how a [`Submission`] is written into a log record payload, and read back.
//!
//! Layout (version 1, all integers little-endian; `docs/command-codec.md` has the table):
//!
//! ```text
//! u8   flags            bit 0: an operation key follows; other bits must be 0
//! [u128 client_id, u128 operation_id]   only if bit 0
//! u8   command kind     CommandKind number
//! ...  fields           per kind, fixed order, fixed width
//! ```
//!
//! Reserve carries `u128 holder_id, u64 ttl_slots, u16 member_count, member_count × u128`.
//! Decoding is strict: the payload must be consumed exactly, unknown flags or kinds are errors,
//! and the member count is checked against [`BUNDLE_SIZE_LIMIT`] and the bytes present before any
//! member is read. Decoding allocates nothing: members land in a caller-owned buffer that is
//! reused across records.

#![deny(clippy::indexing_slicing)]

use crate::command::{Command, CommandKind, Submission};
use crate::config::BUNDLE_SIZE_LIMIT;
use crate::ids::{ClientId, HolderId, LeaseId, OperationId, OperationKey, ResourceId};

const FLAG_OPERATION_KEY: u8 = 1;

/// The largest encoded submission: flags, key, kind, and a reserve of the largest bundle.
pub const SUBMISSION_SIZE_BYTES_MAX: usize = 1 + 32 + 1 + 16 + 8 + 2 + 16 * BUNDLE_SIZE_LIMIT as usize;

/// Why a payload is not a valid submission.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The payload ended inside a field.
    #[error("command payload truncated: {needed} bytes needed at offset {offset}, {available} left")]
    Truncated {
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Unknown bits in the flags byte.
    #[error("command flags {0:#04x} have unknown bits")]
    UnknownFlags(u8),
    /// Unknown command kind.
    #[error("command kind {0} is unknown")]
    UnknownKind(u8),
    /// A reserve names more members than any configuration allows.
    #[error("reserve names {count} resources, more than the limit {limit}")]
    BundleTooLarge {
        /// Members named.
        count: usize,
        /// The absolute limit.
        limit: usize,
    },
    /// Bytes left after the command.
    #[error("command payload has {0} trailing bytes")]
    TrailingBytes(usize),
}

/// Appends the encoding of `submission` to `out`.
///
/// # Panics
/// If a reserve names more than [`BUNDLE_SIZE_LIMIT`] resources; callers bound bundles first.
pub fn encode_submission(submission: &Submission<'_>, out: &mut Vec<u8>) {
    match submission.operation {
        Some(key) => {
            out.push(FLAG_OPERATION_KEY);
            out.extend_from_slice(&key.client_id.0.to_le_bytes());
            out.extend_from_slice(&key.operation_id.0.to_le_bytes());
        }
        None => out.push(0),
    }
    let command = &submission.command;
    out.push(command.kind() as u8);
    match *command {
        Command::CreateResource { resource_id } => out.extend_from_slice(&resource_id.0.to_le_bytes()),
        Command::Reserve { resource_ids, holder_id, ttl_slots } => {
            assert!(resource_ids.len() <= BUNDLE_SIZE_LIMIT as usize, "bundle beyond BUNDLE_SIZE_LIMIT");
            out.extend_from_slice(&holder_id.0.to_le_bytes());
            out.extend_from_slice(&ttl_slots.to_le_bytes());
            out.extend_from_slice(&(resource_ids.len() as u16).to_le_bytes());
            for resource_id in resource_ids {
                out.extend_from_slice(&resource_id.0.to_le_bytes());
            }
        }
        Command::Activate { lease_id, holder_id, lease_epoch }
        | Command::Release { lease_id, holder_id, lease_epoch } => {
            out.extend_from_slice(&lease_id.0.to_le_bytes());
            out.extend_from_slice(&holder_id.0.to_le_bytes());
            out.extend_from_slice(&lease_epoch.to_le_bytes());
        }
        Command::Revoke { lease_id } | Command::Reclaim { lease_id } => {
            out.extend_from_slice(&lease_id.0.to_le_bytes());
        }
        Command::Expire { lease_id, deadline_slot } => {
            out.extend_from_slice(&lease_id.0.to_le_bytes());
            out.extend_from_slice(&deadline_slot.to_le_bytes());
        }
    }
}

struct Reader<'b> {
    bytes: &'b [u8],
    offset: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let end = self.offset.saturating_add(N);
        let Some(field) = self.bytes.get(self.offset..end) else {
            return Err(CodecError::Truncated {
                offset: self.offset,
                needed: N,
                available: self.bytes.len().saturating_sub(self.offset),
            });
        };
        let mut array = [0_u8; N];
        array.copy_from_slice(field);
        self.offset = end;
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(u8::from_le_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, CodecError> {
        Ok(u128::from_le_bytes(self.array()?))
    }
}

/// Decodes one submission. Reserve members are written into `members` (cleared first), which
/// the returned submission borrows.
///
/// # Errors
/// Any payload that is not exactly one valid submission.
pub fn decode_submission<'m>(
    bytes: &[u8],
    members: &'m mut Vec<ResourceId>,
) -> Result<Submission<'m>, CodecError> {
    let mut reader = Reader { bytes, offset: 0 };
    let flags = reader.u8()?;
    if flags & !FLAG_OPERATION_KEY != 0 {
        return Err(CodecError::UnknownFlags(flags));
    }
    let operation = if flags & FLAG_OPERATION_KEY == 0 {
        None
    } else {
        Some(OperationKey { client_id: ClientId(reader.u128()?), operation_id: OperationId(reader.u128()?) })
    };
    let kind_number = reader.u8()?;
    let Some(kind) = CommandKind::from_u8(kind_number) else {
        return Err(CodecError::UnknownKind(kind_number));
    };
    members.clear();
    let command = match kind {
        CommandKind::CreateResource => Command::CreateResource { resource_id: ResourceId(reader.u128()?) },
        CommandKind::Reserve => {
            let holder_id = HolderId(reader.u128()?);
            let ttl_slots = reader.u64()?;
            let count = usize::from(reader.u16()?);
            if count > BUNDLE_SIZE_LIMIT as usize {
                return Err(CodecError::BundleTooLarge { count, limit: BUNDLE_SIZE_LIMIT as usize });
            }
            let available = bytes.len().saturating_sub(reader.offset);
            if count * 16 > available {
                return Err(CodecError::Truncated { offset: reader.offset, needed: count * 16, available });
            }
            for _ in 0..count {
                members.push(ResourceId(reader.u128()?));
            }
            Command::Reserve { resource_ids: &[], holder_id, ttl_slots }
        }
        CommandKind::Activate => Command::Activate {
            lease_id: LeaseId(reader.u128()?),
            holder_id: HolderId(reader.u128()?),
            lease_epoch: reader.u64()?,
        },
        CommandKind::Release => Command::Release {
            lease_id: LeaseId(reader.u128()?),
            holder_id: HolderId(reader.u128()?),
            lease_epoch: reader.u64()?,
        },
        CommandKind::Revoke => Command::Revoke { lease_id: LeaseId(reader.u128()?) },
        CommandKind::Reclaim => Command::Reclaim { lease_id: LeaseId(reader.u128()?) },
        CommandKind::Expire => {
            Command::Expire { lease_id: LeaseId(reader.u128()?), deadline_slot: reader.u64()? }
        }
    };
    let trailing = bytes.len() - reader.offset;
    if trailing != 0 {
        return Err(CodecError::TrailingBytes(trailing));
    }
    let command = match command {
        Command::Reserve { holder_id, ttl_slots, .. } => {
            Command::Reserve { resource_ids: members.as_slice(), holder_id, ttl_slots }
        }
        other => other,
    };
    Ok(Submission { operation, command })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests slice their own encodings")]
mod tests {
    use super::{CodecError, SUBMISSION_SIZE_BYTES_MAX, decode_submission, encode_submission};
    use crate::command::{Command, Submission};
    use crate::config::BUNDLE_SIZE_LIMIT;
    use crate::ids::{ClientId, HolderId, LeaseId, OperationId, OperationKey, ResourceId};

    fn every_command(bundle: &[ResourceId]) -> Vec<Command<'_>> {
        let lease_id = LeaseId(u128::MAX - 3);
        vec![
            Command::CreateResource { resource_id: ResourceId(u128::MAX) },
            Command::Reserve { resource_ids: bundle, holder_id: HolderId(5), ttl_slots: 77 },
            Command::Activate { lease_id, holder_id: HolderId(6), lease_epoch: 1 },
            Command::Release { lease_id, holder_id: HolderId(6), lease_epoch: u64::MAX },
            Command::Revoke { lease_id },
            Command::Reclaim { lease_id },
            Command::Expire { lease_id, deadline_slot: 12 },
        ]
    }

    #[test]
    fn every_command_round_trips_with_and_without_key() {
        let bundle = [ResourceId(1), ResourceId(u128::MAX), ResourceId(0)];
        let key = OperationKey { client_id: ClientId(1 << 100), operation_id: OperationId(3) };
        for command in every_command(&bundle) {
            for operation in [None, Some(key)] {
                let submission = Submission { operation, command };
                let mut bytes = Vec::new();
                encode_submission(&submission, &mut bytes);
                assert!(bytes.len() <= SUBMISSION_SIZE_BYTES_MAX);
                let mut members = Vec::new();
                assert_eq!(decode_submission(&bytes, &mut members), Ok(submission));
            }
        }
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let bundle = [ResourceId(1), ResourceId(2)];
        for command in every_command(&bundle) {
            let mut bytes = Vec::new();
            encode_submission(&Submission { operation: None, command }, &mut bytes);
            let mut members = Vec::new();
            for length in 0..bytes.len() {
                assert!(
                    decode_submission(&bytes[..length], &mut members).is_err(),
                    "{command:?} at {length}"
                );
            }
            bytes.push(0);
            assert_eq!(decode_submission(&bytes, &mut members), Err(CodecError::TrailingBytes(1)));
        }
    }

    #[test]
    fn unknown_flags_kinds_and_huge_bundles_are_rejected() {
        let mut members = Vec::new();
        assert_eq!(decode_submission(&[2, 1], &mut members), Err(CodecError::UnknownFlags(2)));
        assert_eq!(decode_submission(&[0, 99], &mut members), Err(CodecError::UnknownKind(99)));
        let mut bytes = vec![0, 2];
        bytes.extend_from_slice(&[0; 24]);
        bytes.extend_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(
            decode_submission(&bytes, &mut members),
            Err(CodecError::BundleTooLarge {
                count: usize::from(u16::MAX),
                limit: BUNDLE_SIZE_LIMIT as usize
            })
        );
        assert_eq!(members.capacity(), 0, "nothing allocated for a claimed count");
    }
}
