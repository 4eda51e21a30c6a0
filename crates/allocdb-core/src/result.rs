//! Result codes: the committed outcome of every command.
//!
//! Domain outcomes are values, not Rust errors. Each code has a stable number (it is written in
//! operation records, snapshots and wire formats) and a stable snake_case name (used by the HTTP
//! API and the CLI). Numbers are never reused; new codes are appended.

/// The committed result of a command. Stable numbers; never reorder or reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ResultCode {
    /// The command took effect.
    Ok = 0,
    /// An internal `expire` that found nothing to do (lease no longer reserved with that
    /// deadline, or the deadline not yet reached).
    Noop = 1,
    /// `create_resource` of an id that exists.
    AlreadyExists = 2,
    /// `create_resource` with the resource table at capacity.
    ResourceTableFull = 3,
    /// A reserve named a resource that does not exist.
    ResourceNotFound = 4,
    /// A reserve named a resource that is not `available`.
    ResourceBusy = 5,
    /// A reserve named more resources than `bundle_size_max`.
    BundleTooLarge = 6,
    /// A reserve named the same resource twice.
    DuplicateResource = 7,
    /// A reserve TTL of zero or above `reserve_ttl_slots_max`.
    TtlOutOfRange = 8,
    /// The lease table (live and not yet retired leases) is at capacity.
    LeaseTableFull = 9,
    /// The lease member table is at capacity.
    LeaseMemberTableFull = 10,
    /// The timing-wheel bucket for the new deadline is full.
    ExpirationIndexFull = 11,
    /// No lease with that id exists (and it is above the retired watermark).
    LeaseNotFound = 12,
    /// The lease existed but its history window has passed.
    LeaseRetired = 13,
    /// The lease is not in a state that allows the command.
    InvalidState = 14,
    /// The command's holder is not the lease's holder.
    HolderMismatch = 15,
    /// The command's `lease_epoch` is not the lease's current epoch.
    StaleEpoch = 16,
    /// The operation id was already used by this client for a different command.
    OperationConflict = 17,
    /// The operation table is at capacity; nothing was executed.
    OperationTableFull = 18,
    /// A reserve named no resources at all.
    EmptyBundle = 19,
}

impl ResultCode {
    /// Every code, in numeric order.
    pub const ALL: [ResultCode; 20] = [
        ResultCode::Ok,
        ResultCode::Noop,
        ResultCode::AlreadyExists,
        ResultCode::ResourceTableFull,
        ResultCode::ResourceNotFound,
        ResultCode::ResourceBusy,
        ResultCode::BundleTooLarge,
        ResultCode::DuplicateResource,
        ResultCode::TtlOutOfRange,
        ResultCode::LeaseTableFull,
        ResultCode::LeaseMemberTableFull,
        ResultCode::ExpirationIndexFull,
        ResultCode::LeaseNotFound,
        ResultCode::LeaseRetired,
        ResultCode::InvalidState,
        ResultCode::HolderMismatch,
        ResultCode::StaleEpoch,
        ResultCode::OperationConflict,
        ResultCode::OperationTableFull,
        ResultCode::EmptyBundle,
    ];

    /// The stable name used by text transports.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Ok => "ok",
            ResultCode::Noop => "noop",
            ResultCode::AlreadyExists => "already_exists",
            ResultCode::ResourceTableFull => "resource_table_full",
            ResultCode::ResourceNotFound => "resource_not_found",
            ResultCode::ResourceBusy => "resource_busy",
            ResultCode::BundleTooLarge => "bundle_too_large",
            ResultCode::DuplicateResource => "duplicate_resource",
            ResultCode::TtlOutOfRange => "ttl_out_of_range",
            ResultCode::LeaseTableFull => "lease_table_full",
            ResultCode::LeaseMemberTableFull => "lease_member_table_full",
            ResultCode::ExpirationIndexFull => "expiration_index_full",
            ResultCode::LeaseNotFound => "lease_not_found",
            ResultCode::LeaseRetired => "lease_retired",
            ResultCode::InvalidState => "invalid_state",
            ResultCode::HolderMismatch => "holder_mismatch",
            ResultCode::StaleEpoch => "stale_epoch",
            ResultCode::OperationConflict => "operation_conflict",
            ResultCode::OperationTableFull => "operation_table_full",
            ResultCode::EmptyBundle => "empty_bundle",
        }
    }

    /// The code with stable number `value`, if any.
    pub fn from_u8(value: u8) -> Option<ResultCode> {
        ResultCode::ALL.get(usize::from(value)).copied()
    }

    /// The code named `name`, if any.
    pub fn from_name(name: &str) -> Option<ResultCode> {
        ResultCode::ALL.iter().copied().find(|code| code.as_str() == name)
    }

    /// Whether the command took effect (`ok`).
    pub fn is_ok(self) -> bool {
        self == ResultCode::Ok
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ResultCode;

    #[test]
    fn result_code_numbers_match_their_position() {
        for (index, code) in ResultCode::ALL.iter().enumerate() {
            assert_eq!(usize::from(*code as u8), index);
            assert_eq!(ResultCode::from_u8(*code as u8), Some(*code));
            assert_eq!(ResultCode::from_name(code.as_str()), Some(*code));
        }
        assert_eq!(ResultCode::from_u8(ResultCode::ALL.len() as u8), None);
    }
}
