//! Identifiers and logical time.
//!
//! Every identifier chosen by a client is a `u128` wrapped in its own type so that a holder id
//! can never be passed where a resource id is expected. `LeaseId` is the one id the kernel
//! mints: `(shard_id << 64) | lsn`, where `lsn` is the log position of the reserve that created
//! the lease, so ids are unique, monotonic and identical on every replica.

/// A committed log position. The first command has lsn 1; 0 means "nothing applied yet".
pub type Lsn = u64;

/// Logical time. The kernel never reads a clock: every command carries the `request_slot`
/// assigned by the sequencer, and slots never go backwards.
pub type Slot = u64;

/// The largest slot the kernel accepts. Every window added to a slot is bounded by
/// [`crate::KernelConfig::validate`] to far less than `u64::MAX - SLOT_MAX`, so sums of a slot
/// and a window never overflow. The sequencer rejects a clock beyond this as `slot_overflow`.
pub const SLOT_MAX: Slot = 1 << 62;

macro_rules! client_id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u128);

        impl From<u128> for $name {
            fn from(value: u128) -> Self {
                Self(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(formatter, "{}", self.0)
            }
        }
    };
}

client_id_type!(
    /// An allocatable thing, named by the client.
    ResourceId
);
client_id_type!(
    /// The party holding a lease, named by the client.
    HolderId
);
client_id_type!(
    /// The client that issued a write; scopes operation ids so clients never collide.
    ClientId
);
client_id_type!(
    /// A client-chosen id for one write, used to answer retries from the operation table.
    OperationId
);
client_id_type!(
    /// A lease: `(shard_id << 64) | lsn` of the reserve that created it.
    LeaseId
);

impl LeaseId {
    /// Builds the id of the lease created by the reserve at `lsn` on `shard_id`.
    pub fn new(shard_id: u64, lsn: Lsn) -> Self {
        Self((u128::from(shard_id) << 64) | u128::from(lsn))
    }

    /// The shard whose log created this lease.
    pub fn shard_id(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// The log position of the reserve that created this lease.
    pub fn lsn(self) -> Lsn {
        self.0 as u64
    }
}

/// Why a text is not a u128 id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdTextError {
    /// It contains a hyphen but is not a hyphenated UUID.
    NotUuid,
    /// It is neither decimal digits nor a hyphenated UUID.
    NotDecimal,
    /// Decimal digits above `u128::MAX`.
    OutOfRange,
}

/// Length of a hyphenated UUID.
const UUID_TEXT_LENGTH: usize = 36;
/// Positions of the hyphens in a hyphenated UUID.
const UUID_HYPHEN_INDEXES: [usize; 4] = [8, 13, 18, 23];
/// Digits in `u128::MAX` (a longer decimal string cannot be an id).
const DECIMAL_DIGIT_COUNT_MAX: usize = 39;

const _: () = assert!(u128::MAX.ilog10() + 1 == DECIMAL_DIGIT_COUNT_MAX as u32);

/// Parses a client-chosen id in a text transport's form (semantics.md, "Identifiers"): decimal,
/// or a hyphenated UUID read as one big-endian u128.
///
/// # Errors
/// Which form the text fails.
pub fn parse_id_text(text: &str) -> Result<u128, IdTextError> {
    if text.contains('-') {
        return parse_uuid(text).ok_or(IdTextError::NotUuid);
    }
    if text.is_empty()
        || text.len() > DECIMAL_DIGIT_COUNT_MAX
        || !text.bytes().all(|byte| byte.is_ascii_digit())
    {
        return Err(IdTextError::NotDecimal);
    }
    text.parse::<u128>().map_err(|_| IdTextError::OutOfRange)
}

fn parse_uuid(text: &str) -> Option<u128> {
    if text.len() != UUID_TEXT_LENGTH {
        return None;
    }
    let mut value: u128 = 0;
    for (index, byte) in text.bytes().enumerate() {
        if UUID_HYPHEN_INDEXES.contains(&index) {
            if byte != b'-' {
                return None;
            }
            continue;
        }
        let digit = char::from(byte).to_digit(16)?;
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

/// The key of the operation table: one client's operation id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperationKey {
    /// The client that issued the write.
    pub client_id: ClientId,
    /// The client's id for this write.
    pub operation_id: OperationId,
}

#[cfg(test)]
mod tests {
    use super::{IdTextError, parse_id_text};

    #[test]
    fn ids_parse_in_decimal_and_uuid_form_only() {
        assert_eq!(parse_id_text("0"), Ok(0));
        assert_eq!(parse_id_text("340282366920938463463374607431768211455"), Ok(u128::MAX));
        assert_eq!(parse_id_text("340282366920938463463374607431768211456"), Err(IdTextError::OutOfRange));
        assert_eq!(parse_id_text("00000000-0000-0000-0000-00000000002a"), Ok(42));
        assert_eq!(parse_id_text("FFFFFFFF-ffff-ffff-ffff-ffffffffffff"), Ok(u128::MAX));
        assert_eq!(parse_id_text("0000000-00000-0000-0000-00000000002a"), Err(IdTextError::NotUuid));
        assert_eq!(parse_id_text("-1"), Err(IdTextError::NotUuid));
        for text in ["", "+1", "1.0", " 1", "0x10", "1e3"] {
            assert_eq!(parse_id_text(text), Err(IdTextError::NotDecimal), "{text:?}");
        }
    }
}
