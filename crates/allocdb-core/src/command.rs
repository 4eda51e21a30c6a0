//! Commands: the writes the kernel applies, and the envelope the log carries them in.
//!
//! A command borrows its bundle (`&[ResourceId]`) from whoever decoded it, so applying a command
//! never allocates. Commands are plain data; all checking happens in the kernel, in the order
//! documented in `docs/semantics-decisions.md`.

use crate::hash::Fingerprint;
use crate::ids::{HolderId, LeaseId, Lsn, OperationKey, ResourceId, Slot};

/// A write to the lease kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Create an `available` resource.
    CreateResource {
        /// The new resource.
        resource_id: ResourceId,
    },
    /// Reserve every resource of the bundle for `holder_id`, all or nothing.
    Reserve {
        /// The bundle, in the client's order.
        resource_ids: &'a [ResourceId],
        /// The holder of the new lease.
        holder_id: HolderId,
        /// Time until the reservation may expire, in slots (the transport rounds `ttl_ms` up).
        ttl_slots: u64,
    },
    /// Turn a reserved lease into an active one (no deadline any more).
    Activate {
        /// The lease.
        lease_id: LeaseId,
        /// Must match the lease's holder.
        holder_id: HolderId,
        /// Must match the lease's current epoch.
        lease_epoch: u64,
    },
    /// Give a reserved or active lease back.
    Release {
        /// The lease.
        lease_id: LeaseId,
        /// Must match the lease's holder.
        holder_id: HolderId,
        /// Must match the lease's current epoch.
        lease_epoch: u64,
    },
    /// Operator: withdraw an active lease's authority; its resources stay unavailable.
    Revoke {
        /// The lease.
        lease_id: LeaseId,
    },
    /// Operator: free the resources of a revoking lease.
    Reclaim {
        /// The lease.
        lease_id: LeaseId,
    },
    /// Internal, proposed by the expiry driver: expire a reserved lease whose deadline passed.
    Expire {
        /// The lease.
        lease_id: LeaseId,
        /// The deadline the driver saw; the command is a no-op unless it still matches.
        deadline_slot: Slot,
    },
}

/// The numeric kind of a command, stable across versions (used in log records and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum CommandKind {
    /// [`Command::CreateResource`].
    CreateResource = 1,
    /// [`Command::Reserve`].
    Reserve = 2,
    /// [`Command::Activate`].
    Activate = 3,
    /// [`Command::Release`].
    Release = 4,
    /// [`Command::Revoke`].
    Revoke = 5,
    /// [`Command::Reclaim`].
    Reclaim = 6,
    /// [`Command::Expire`].
    Expire = 7,
}

impl CommandKind {
    /// Every kind, in numeric order.
    pub const ALL: [CommandKind; 7] = [
        CommandKind::CreateResource,
        CommandKind::Reserve,
        CommandKind::Activate,
        CommandKind::Release,
        CommandKind::Revoke,
        CommandKind::Reclaim,
        CommandKind::Expire,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::CreateResource => "create_resource",
            CommandKind::Reserve => "reserve",
            CommandKind::Activate => "activate",
            CommandKind::Release => "release",
            CommandKind::Revoke => "revoke",
            CommandKind::Reclaim => "reclaim",
            CommandKind::Expire => "expire",
        }
    }

    /// The kind with stable number `value`, if any.
    pub fn from_u8(value: u8) -> Option<CommandKind> {
        CommandKind::ALL.iter().copied().find(|kind| *kind as u8 == value)
    }
}

impl Command<'_> {
    /// This command's kind.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::CreateResource { .. } => CommandKind::CreateResource,
            Command::Reserve { .. } => CommandKind::Reserve,
            Command::Activate { .. } => CommandKind::Activate,
            Command::Release { .. } => CommandKind::Release,
            Command::Revoke { .. } => CommandKind::Revoke,
            Command::Reclaim { .. } => CommandKind::Reclaim,
            Command::Expire { .. } => CommandKind::Expire,
        }
    }

    /// A 64-bit fingerprint of every field, used to tell a retry of this command from a
    /// different command sent under the same operation id.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut fingerprint = Fingerprint::new(self.kind() as u8);
        match *self {
            Command::CreateResource { resource_id } => fingerprint.add_u128(resource_id.0),
            Command::Reserve { resource_ids, holder_id, ttl_slots } => {
                fingerprint.add_u64(resource_ids.len() as u64);
                for resource_id in resource_ids {
                    fingerprint.add_u128(resource_id.0);
                }
                fingerprint.add_u128(holder_id.0);
                fingerprint.add_u64(ttl_slots);
            }
            Command::Activate { lease_id, holder_id, lease_epoch }
            | Command::Release { lease_id, holder_id, lease_epoch } => {
                fingerprint.add_u128(lease_id.0);
                fingerprint.add_u128(holder_id.0);
                fingerprint.add_u64(lease_epoch);
            }
            Command::Revoke { lease_id } | Command::Reclaim { lease_id } => {
                fingerprint.add_u128(lease_id.0);
            }
            Command::Expire { lease_id, deadline_slot } => {
                fingerprint.add_u128(lease_id.0);
                fingerprint.add_u64(deadline_slot);
            }
        }
        fingerprint.finish()
    }
}

/// Where a command sits in the log: its position and the slot the sequencer assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPosition {
    /// The command's log position; exactly one more than the last applied lsn.
    pub lsn: Lsn,
    /// The sequencer's slot for this command; never lower than the previous command's.
    pub request_slot: Slot,
}

/// A command plus the operation key that makes it idempotent. Internal commands (`expire`) and
/// operator commands without a key have `operation: None` and are not remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submission<'a> {
    /// The client's operation key, if the write is to be deduplicated.
    pub operation: Option<OperationKey>,
    /// The write itself.
    pub command: Command<'a>,
}

#[cfg(test)]
mod tests {
    use super::{Command, CommandKind};
    use crate::ids::{HolderId, LeaseId, ResourceId};

    #[test]
    fn command_kind_numbers_round_trip() {
        for kind in CommandKind::ALL {
            assert_eq!(CommandKind::from_u8(kind as u8), Some(kind));
        }
        assert_eq!(CommandKind::from_u8(0), None);
    }

    #[test]
    fn fingerprint_distinguishes_every_field() {
        let bundle = [ResourceId(1), ResourceId(2)];
        let swapped = [ResourceId(2), ResourceId(1)];
        let base = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(9), ttl_slots: 5 };
        let variants = [
            Command::Reserve { resource_ids: &swapped, holder_id: HolderId(9), ttl_slots: 5 },
            Command::Reserve { resource_ids: &bundle[..1], holder_id: HolderId(9), ttl_slots: 5 },
            Command::Reserve { resource_ids: &bundle, holder_id: HolderId(8), ttl_slots: 5 },
            Command::Reserve { resource_ids: &bundle, holder_id: HolderId(9), ttl_slots: 6 },
        ];
        for variant in variants {
            assert_ne!(base.fingerprint(), variant.fingerprint(), "{variant:?}");
        }
        let activate = Command::Activate { lease_id: LeaseId(3), holder_id: HolderId(4), lease_epoch: 1 };
        let release = Command::Release { lease_id: LeaseId(3), holder_id: HolderId(4), lease_epoch: 1 };
        assert_ne!(activate.fingerprint(), release.fingerprint());
    }
}
