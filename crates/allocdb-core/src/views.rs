//! Read results and apply outcomes: the kernel's public answers.

use crate::ids::{HolderId, LeaseId, Lsn, ResourceId, Slot};
use crate::lease_table::MemberIter;
use crate::resource_table::ResourceTable;
use crate::result::ResultCode;
use crate::state::{LeaseState, ResourceState};

/// The committed outcome of one applied command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The result code.
    pub result: ResultCode,
    /// The lsn at which the result was decided: the command's own lsn, or for an answer from
    /// the operation table, the lsn of the original execution.
    pub applied_lsn: Lsn,
    /// Whether this is the remembered answer to an earlier execution of the same operation.
    pub from_retry_cache: bool,
    /// The lease the command created or changed (successful lease commands only).
    pub lease_id: Option<LeaseId>,
    /// The lease's epoch after the command (successful lease commands only).
    pub lease_epoch: Option<u64>,
    /// The new lease's deadline (successful reserve only).
    pub deadline_slot: Option<Slot>,
}

impl Outcome {
    pub(crate) fn result(result: ResultCode, applied_lsn: Lsn) -> Self {
        Outcome {
            result,
            applied_lsn,
            from_retry_cache: false,
            lease_id: None,
            lease_epoch: None,
            deadline_slot: None,
        }
    }
}

/// A resource as seen by a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceView {
    /// The resource.
    pub resource_id: ResourceId,
    /// Its state.
    pub state: ResourceState,
    /// The live lease holding it, if any.
    pub current_lease_id: Option<LeaseId>,
    /// Incremented on every state change; starts at 1 when created.
    pub version: u64,
}

/// The answer to a lease read.
#[derive(Debug)]
pub enum LeaseLookup<'k> {
    /// The lease, live or terminal within its history window.
    Found(LeaseView<'k>),
    /// No such lease was ever created (or the id is above the retired watermark).
    NotFound,
    /// The lease existed and its history window has passed.
    Retired,
}

/// A lease as seen by a read. Borrowing the kernel lets member ids be read without copying.
pub struct LeaseView<'k> {
    /// The lease.
    pub lease_id: LeaseId,
    /// Its holder.
    pub holder_id: HolderId,
    /// Its state.
    pub state: LeaseState,
    /// Its fencing epoch.
    pub lease_epoch: u64,
    /// The lsn of the reserve that created it.
    pub created_lsn: Lsn,
    /// The deadline, while reserved (and, for an expired lease, the deadline that passed).
    pub deadline_slot: Option<Slot>,
    /// The lsn at which it became terminal (released, expired or revoked).
    pub released_lsn: Option<Lsn>,
    /// The slot from which it reads as retired (terminal leases only).
    pub retire_after_slot: Option<Slot>,
    pub(crate) members: MemberIter<'k>,
    pub(crate) resources: &'k ResourceTable,
}

impl LeaseView<'_> {
    /// The member resources, in bundle order.
    pub fn resource_ids(&self) -> impl Iterator<Item = ResourceId> + '_ {
        self.members.clone().map(|position| self.resources.get(position).resource_id())
    }

    /// The number of member resources.
    pub fn member_count(&self) -> u32 {
        self.members.remaining()
    }
}

impl std::fmt::Debug for LeaseView<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LeaseView")
            .field("lease_id", &self.lease_id)
            .field("holder_id", &self.holder_id)
            .field("state", &self.state)
            .field("lease_epoch", &self.lease_epoch)
            .field("created_lsn", &self.created_lsn)
            .field("deadline_slot", &self.deadline_slot)
            .field("released_lsn", &self.released_lsn)
            .field("retire_after_slot", &self.retire_after_slot)
            .field("resource_ids", &self.resource_ids().collect::<Vec<_>>())
            .finish()
    }
}

/// A reserved lease whose deadline has been reached: the expiry driver proposes
/// `expire(lease_id, deadline_slot)` for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueLease {
    /// The lease.
    pub lease_id: LeaseId,
    /// Its deadline.
    pub deadline_slot: Slot,
}

/// How full one table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableUsage {
    /// Entries in use.
    pub used: u64,
    /// Configured capacity.
    pub capacity: u64,
}

/// How full every table is, for status pages and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelUsage {
    /// Resources.
    pub resources: TableUsage,
    /// Leases, live and terminal-not-retired.
    pub leases: TableUsage,
    /// Lease members.
    pub lease_members: TableUsage,
    /// Operation records.
    pub operations: TableUsage,
    /// Reserved leases in the timing wheel (capacity: buckets × bucket length).
    pub expirations: TableUsage,
}

/// Bytes allocated for each table at startup (they never grow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Resource table.
    pub resources_bytes: u64,
    /// Lease slab and lease index.
    pub leases_bytes: u64,
    /// Lease member pool.
    pub lease_members_bytes: u64,
    /// Operation ring and index.
    pub operations_bytes: u64,
    /// Timing-wheel buckets and bitmap.
    pub expiration_wheel_bytes: u64,
}

impl MemoryUsage {
    /// Sum of all tables.
    pub fn total_bytes(&self) -> u64 {
        self.resources_bytes
            + self.leases_bytes
            + self.lease_members_bytes
            + self.operations_bytes
            + self.expiration_wheel_bytes
    }
}
