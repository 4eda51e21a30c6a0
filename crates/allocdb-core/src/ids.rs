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

/// The key of the operation table: one client's operation id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperationKey {
    /// The client that issued the write.
    pub client_id: ClientId,
    /// The client's id for this write.
    pub operation_id: OperationId,
}
