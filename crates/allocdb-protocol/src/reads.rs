//! Read and status answers: resource and lease results, and the node status (`docs/protocol.md`
//! §6.4–6.6).
//!
//! Invariants: a read is either served (found, not found, retired — each with the `served_lsn`
//! it reflects), or fenced (`fence_not_applied` with the node's applied lsn; never silently
//! older state), or unavailable with a rejection code. Lease members are bounded by
//! `BUNDLE_SIZE_LIMIT` and by the bytes present before they are allocated. Encoding is
//! canonical: a decoded body re-encodes to exactly the same bytes.

#![deny(clippy::indexing_slicing)]

use allocdb_core::{
    HolderId, KernelUsage, LeaseId, LeaseState, Lsn, ResourceId, ResourceState, ResourceView, Slot,
    TableUsage,
};

use crate::client::{decode_members, encode_members};
use crate::codes::{NodeRole, RejectionCode};
use crate::error::{Defect, EncodeError};
use crate::wire::{Reader, put_u8, put_u64, put_u128};

const READ_FOUND: u8 = 1;
const READ_NOT_FOUND: u8 = 2;
const READ_RETIRED: u8 = 3;
const READ_FENCE_NOT_APPLIED: u8 = 4;
const READ_UNAVAILABLE: u8 = 5;

const RESOURCE_FLAG_CURRENT_LEASE: u8 = 1 << 0;

const LEASE_FLAG_DEADLINE_SLOT: u8 = 1 << 0;
const LEASE_FLAG_RELEASED_LSN: u8 = 1 << 1;
const LEASE_FLAG_RETIRE_AFTER_SLOT: u8 = 1 << 2;

const STATUS_FLAG_HEALTHY: u8 = 1 << 0;

/// The answer to `GetResource`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceResult {
    /// The resource, as of `served_lsn`.
    Found {
        /// The resource.
        resource: ResourceView,
        /// The last applied lsn when the read was served.
        served_lsn: Lsn,
    },
    /// No such resource as of `served_lsn`.
    NotFound {
        /// The last applied lsn when the read was served.
        served_lsn: Lsn,
    },
    /// The node has not applied the read's `min_lsn` yet; retry later or elsewhere.
    FenceNotApplied {
        /// The node's last applied lsn.
        applied_lsn: Lsn,
    },
    /// The node cannot serve reads (halted, shutting down, not the leader, overloaded...).
    Unavailable(RejectionCode),
}

/// The answer to `GetLease`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseResult {
    /// The lease, as of `served_lsn`.
    Found {
        /// Every field of the lease.
        lease: LeaseRecord,
        /// The last applied lsn when the read was served.
        served_lsn: Lsn,
    },
    /// No such lease as of `served_lsn`.
    NotFound {
        /// The last applied lsn when the read was served.
        served_lsn: Lsn,
    },
    /// The lease existed and its history window has passed.
    Retired {
        /// The last applied lsn when the read was served.
        served_lsn: Lsn,
    },
    /// The node has not applied the read's `min_lsn` yet.
    FenceNotApplied {
        /// The node's last applied lsn.
        applied_lsn: Lsn,
    },
    /// The node cannot serve reads.
    Unavailable(RejectionCode),
}

/// Every field of a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
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
    /// Its deadline (reserved and expired leases).
    pub deadline_slot: Option<Slot>,
    /// The lsn of its terminal transition.
    pub released_lsn: Option<Lsn>,
    /// The slot from which it reads as retired.
    pub retire_after_slot: Option<Slot>,
    /// Its members in bundle order (at most `BUNDLE_SIZE_LIMIT`).
    pub resource_ids: Vec<ResourceId>,
}

/// The answer to `Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusResult {
    /// The node that answered.
    pub node_id: u64,
    /// Its role.
    pub role: NodeRole,
    /// Its last applied lsn.
    pub applied_lsn: Lsn,
    /// Its current logical slot.
    pub current_slot: Slot,
    /// How full each kernel table is.
    pub usage: KernelUsage,
    /// Whether the node serves reads and writes (false after a storage failure halted it).
    pub healthy: bool,
}

fn put_optional_u64(out: &mut Vec<u8>, value: Option<u64>) {
    if let Some(value) = value {
        put_u64(out, value);
    }
}

fn optional_u64(reader: &mut Reader<'_>, field: &'static str, present: bool) -> Result<Option<u64>, Defect> {
    if present { reader.u64(field).map(Some) } else { Ok(None) }
}

impl ResourceResult {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ResourceResult::Found { resource, served_lsn } => {
                put_u8(out, READ_FOUND);
                put_u64(out, *served_lsn);
                put_u128(out, resource.resource_id.0);
                put_u8(out, resource.state as u8);
                put_u8(
                    out,
                    if resource.current_lease_id.is_some() { RESOURCE_FLAG_CURRENT_LEASE } else { 0 },
                );
                if let Some(lease_id) = resource.current_lease_id {
                    put_u128(out, lease_id.0);
                }
                put_u64(out, resource.version);
            }
            ResourceResult::NotFound { served_lsn } => {
                put_u8(out, READ_NOT_FOUND);
                put_u64(out, *served_lsn);
            }
            ResourceResult::FenceNotApplied { applied_lsn } => {
                put_u8(out, READ_FENCE_NOT_APPLIED);
                put_u64(out, *applied_lsn);
            }
            ResourceResult::Unavailable(code) => {
                put_u8(out, READ_UNAVAILABLE);
                put_u8(out, code.as_u8());
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<ResourceResult, Defect> {
        let status_offset = reader.offset();
        match reader.u8("read status")? {
            READ_FOUND => {
                let served_lsn = reader.u64("served_lsn")?;
                let resource_id = ResourceId(reader.u128("resource_id")?);
                let state = reader.enumerated("resource state", ResourceState::from_u8)?;
                let flags = reader.flags("resource flags", RESOURCE_FLAG_CURRENT_LEASE)?;
                let current_lease_id = if flags & RESOURCE_FLAG_CURRENT_LEASE != 0 {
                    Some(LeaseId(reader.u128("current_lease_id")?))
                } else {
                    None
                };
                let version = reader.u64("version")?;
                let resource = ResourceView { resource_id, state, current_lease_id, version };
                Ok(ResourceResult::Found { resource, served_lsn })
            }
            READ_NOT_FOUND => Ok(ResourceResult::NotFound { served_lsn: reader.u64("served_lsn")? }),
            READ_FENCE_NOT_APPLIED => {
                Ok(ResourceResult::FenceNotApplied { applied_lsn: reader.u64("applied_lsn")? })
            }
            READ_UNAVAILABLE => {
                Ok(ResourceResult::Unavailable(reader.enumerated("rejection code", RejectionCode::from_u8)?))
            }
            value => {
                Err(Defect::UnknownValue { field: "resource read status", offset: status_offset, value })
            }
        }
    }
}

impl LeaseResult {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            LeaseResult::Found { lease, served_lsn } => {
                put_u8(out, READ_FOUND);
                put_u64(out, *served_lsn);
                encode_lease(lease, out)?;
            }
            LeaseResult::NotFound { served_lsn } => {
                put_u8(out, READ_NOT_FOUND);
                put_u64(out, *served_lsn);
            }
            LeaseResult::Retired { served_lsn } => {
                put_u8(out, READ_RETIRED);
                put_u64(out, *served_lsn);
            }
            LeaseResult::FenceNotApplied { applied_lsn } => {
                put_u8(out, READ_FENCE_NOT_APPLIED);
                put_u64(out, *applied_lsn);
            }
            LeaseResult::Unavailable(code) => {
                put_u8(out, READ_UNAVAILABLE);
                put_u8(out, code.as_u8());
            }
        }
        Ok(())
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<LeaseResult, Defect> {
        let status_offset = reader.offset();
        match reader.u8("read status")? {
            READ_FOUND => {
                let served_lsn = reader.u64("served_lsn")?;
                Ok(LeaseResult::Found { lease: decode_lease(reader)?, served_lsn })
            }
            READ_NOT_FOUND => Ok(LeaseResult::NotFound { served_lsn: reader.u64("served_lsn")? }),
            READ_RETIRED => Ok(LeaseResult::Retired { served_lsn: reader.u64("served_lsn")? }),
            READ_FENCE_NOT_APPLIED => {
                Ok(LeaseResult::FenceNotApplied { applied_lsn: reader.u64("applied_lsn")? })
            }
            READ_UNAVAILABLE => {
                Ok(LeaseResult::Unavailable(reader.enumerated("rejection code", RejectionCode::from_u8)?))
            }
            value => Err(Defect::UnknownValue { field: "lease read status", offset: status_offset, value }),
        }
    }
}

fn encode_lease(lease: &LeaseRecord, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    put_u128(out, lease.lease_id.0);
    put_u128(out, lease.holder_id.0);
    put_u8(out, lease.state as u8);
    put_u64(out, lease.lease_epoch);
    put_u64(out, lease.created_lsn);
    let mut flags = 0;
    if lease.deadline_slot.is_some() {
        flags |= LEASE_FLAG_DEADLINE_SLOT;
    }
    if lease.released_lsn.is_some() {
        flags |= LEASE_FLAG_RELEASED_LSN;
    }
    if lease.retire_after_slot.is_some() {
        flags |= LEASE_FLAG_RETIRE_AFTER_SLOT;
    }
    put_u8(out, flags);
    put_optional_u64(out, lease.deadline_slot);
    put_optional_u64(out, lease.released_lsn);
    put_optional_u64(out, lease.retire_after_slot);
    encode_members(&lease.resource_ids, out)
}

fn decode_lease(reader: &mut Reader<'_>) -> Result<LeaseRecord, Defect> {
    let lease_id = LeaseId(reader.u128("lease_id")?);
    let holder_id = HolderId(reader.u128("holder_id")?);
    let state = reader.enumerated("lease state", LeaseState::from_u8)?;
    let lease_epoch = reader.u64("lease_epoch")?;
    let created_lsn = reader.u64("created_lsn")?;
    let flags = reader.flags(
        "lease flags",
        LEASE_FLAG_DEADLINE_SLOT | LEASE_FLAG_RELEASED_LSN | LEASE_FLAG_RETIRE_AFTER_SLOT,
    )?;
    let deadline_slot = optional_u64(reader, "deadline_slot", flags & LEASE_FLAG_DEADLINE_SLOT != 0)?;
    let released_lsn = optional_u64(reader, "released_lsn", flags & LEASE_FLAG_RELEASED_LSN != 0)?;
    let retire_after_slot =
        optional_u64(reader, "retire_after_slot", flags & LEASE_FLAG_RETIRE_AFTER_SLOT != 0)?;
    let resource_ids = decode_members(reader)?;
    Ok(LeaseRecord {
        lease_id,
        holder_id,
        state,
        lease_epoch,
        created_lsn,
        deadline_slot,
        released_lsn,
        retire_after_slot,
        resource_ids,
    })
}

impl StatusResult {
    fn tables(usage: &KernelUsage) -> [&TableUsage; 5] {
        [&usage.resources, &usage.leases, &usage.lease_members, &usage.operations, &usage.expirations]
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.node_id);
        put_u8(out, self.role.as_u8());
        put_u64(out, self.applied_lsn);
        put_u64(out, self.current_slot);
        for table in StatusResult::tables(&self.usage) {
            put_u64(out, table.used);
            put_u64(out, table.capacity);
        }
        put_u8(out, if self.healthy { STATUS_FLAG_HEALTHY } else { 0 });
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<StatusResult, Defect> {
        let node_id = reader.u64("node_id")?;
        let role = reader.enumerated("node role", NodeRole::from_u8)?;
        let applied_lsn = reader.u64("applied_lsn")?;
        let current_slot = reader.u64("current_slot")?;
        let mut table = |used: &'static str, capacity: &'static str| -> Result<TableUsage, Defect> {
            Ok(TableUsage { used: reader.u64(used)?, capacity: reader.u64(capacity)? })
        };
        let usage = KernelUsage {
            resources: table("resources used", "resources capacity")?,
            leases: table("leases used", "leases capacity")?,
            lease_members: table("lease members used", "lease members capacity")?,
            operations: table("operations used", "operations capacity")?,
            expirations: table("expirations used", "expirations capacity")?,
        };
        let flags = reader.flags("status flags", STATUS_FLAG_HEALTHY)?;
        Ok(StatusResult {
            node_id,
            role,
            applied_lsn,
            current_slot,
            usage,
            healthy: flags & STATUS_FLAG_HEALTHY != 0,
        })
    }
}
