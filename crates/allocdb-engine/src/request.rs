//! What callers hand the engine and what they get back.
//!
//! Every write ends in exactly one of three classes (semantics.md, "Idempotency and outcomes"):
//! [`WriteReply::Committed`] with an lsn and a result code; [`WriteReply::Rejected`] with
//! [`RejectionCategory::Definite`] (never executed, never will be); or
//! [`WriteReply::Rejected`] with [`RejectionCategory::Indefinite`] (the engine cannot say; the
//! client resolves it by retrying the same operation id). Transports keep the three distinct.

use allocdb_core::{Command, HolderId, LeaseId, Lsn, OperationKey, Outcome, ResourceId, Slot, Submission};

/// A write command that owns its bundle, so it can cross threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedCommand {
    /// See [`Command::CreateResource`].
    CreateResource {
        /// The new resource.
        resource_id: ResourceId,
    },
    /// See [`Command::Reserve`]; the TTL is in slots (convert with
    /// [`crate::EngineConfig::ttl_slots_for_ms`]).
    Reserve {
        /// The bundle.
        resource_ids: Vec<ResourceId>,
        /// The holder.
        holder_id: HolderId,
        /// TTL in slots.
        ttl_slots: u64,
    },
    /// See [`Command::Activate`].
    Activate {
        /// The lease.
        lease_id: LeaseId,
        /// Its holder.
        holder_id: HolderId,
        /// Its current epoch.
        lease_epoch: u64,
    },
    /// See [`Command::Release`].
    Release {
        /// The lease.
        lease_id: LeaseId,
        /// Its holder.
        holder_id: HolderId,
        /// Its current epoch.
        lease_epoch: u64,
    },
    /// See [`Command::Revoke`].
    Revoke {
        /// The lease.
        lease_id: LeaseId,
    },
    /// See [`Command::Reclaim`].
    Reclaim {
        /// The lease.
        lease_id: LeaseId,
    },
}

impl OwnedCommand {
    /// The borrowed kernel command.
    pub fn as_command(&self) -> Command<'_> {
        match self {
            OwnedCommand::CreateResource { resource_id } => {
                Command::CreateResource { resource_id: *resource_id }
            }
            OwnedCommand::Reserve { resource_ids, holder_id, ttl_slots } => {
                Command::Reserve { resource_ids, holder_id: *holder_id, ttl_slots: *ttl_slots }
            }
            OwnedCommand::Activate { lease_id, holder_id, lease_epoch } => {
                Command::Activate { lease_id: *lease_id, holder_id: *holder_id, lease_epoch: *lease_epoch }
            }
            OwnedCommand::Release { lease_id, holder_id, lease_epoch } => {
                Command::Release { lease_id: *lease_id, holder_id: *holder_id, lease_epoch: *lease_epoch }
            }
            OwnedCommand::Revoke { lease_id } => Command::Revoke { lease_id: *lease_id },
            OwnedCommand::Reclaim { lease_id } => Command::Reclaim { lease_id: *lease_id },
        }
    }
}

/// A client write: command plus optional operation key for idempotent retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRequest {
    /// The key that makes retries safe; without it a retry may execute twice.
    pub operation: Option<OperationKey>,
    /// The command.
    pub command: OwnedCommand,
}

impl WriteRequest {
    /// The borrowed kernel submission.
    pub fn as_submission(&self) -> Submission<'_> {
        Submission { operation: self.operation, command: self.command.as_command() }
    }
}

/// Whether a rejected write may still take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionCategory {
    /// It was not executed and never will be.
    Definite,
    /// The engine cannot say; retry with the same operation id to learn the outcome.
    Indefinite,
}

impl RejectionCategory {
    /// `definite` or `indefinite`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCategory::Definite => "definite",
            RejectionCategory::Indefinite => "indefinite",
        }
    }
}

/// Why a write was rejected instead of committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionCode {
    /// Definite: the request could not be understood.
    Malformed,
    /// Definite: the request exceeds a size bound.
    TooLarge,
    /// Definite: the submission queue is full.
    Overloaded,
    /// Definite: the clock is beyond the largest slot.
    SlotOverflow,
    /// Definite: no lsn is left.
    LsnExhausted,
    /// Indefinite: the log write or sync failed while this write was in it.
    StorageFailure,
    /// Indefinite: the engine halted after a storage failure; restart to recover.
    EngineHalted,
    /// Indefinite: the engine shut down before the write's outcome was known.
    ShuttingDown,
    /// Indefinite: the caller stopped waiting for the engine's answer (set by callers that
    /// bound their wait; the write may still commit).
    CommitTimeout,
}

impl RejectionCode {
    /// The category this code always has.
    pub fn category(self) -> RejectionCategory {
        match self {
            RejectionCode::Malformed
            | RejectionCode::TooLarge
            | RejectionCode::Overloaded
            | RejectionCode::SlotOverflow
            | RejectionCode::LsnExhausted => RejectionCategory::Definite,
            RejectionCode::StorageFailure
            | RejectionCode::EngineHalted
            | RejectionCode::ShuttingDown
            | RejectionCode::CommitTimeout => RejectionCategory::Indefinite,
        }
    }

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::Malformed => "malformed",
            RejectionCode::TooLarge => "too_large",
            RejectionCode::Overloaded => "overloaded",
            RejectionCode::SlotOverflow => "slot_overflow",
            RejectionCode::LsnExhausted => "lsn_exhausted",
            RejectionCode::StorageFailure => "storage_failure",
            RejectionCode::EngineHalted => "engine_halted",
            RejectionCode::ShuttingDown => "shutting_down",
            RejectionCode::CommitTimeout => "commit_timeout",
        }
    }
}

/// The answer to one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteReply {
    /// Committed with an lsn: the kernel's outcome (any result code).
    Committed(Outcome),
    /// Not committed; the code says whether it may still take effect.
    Rejected(RejectionCode),
}

/// The answer to a read with a `min_lsn` fence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadReply<T> {
    /// Served from state that includes every lsn up to `served_lsn`.
    Served {
        /// The value read (`None`: not found).
        value: T,
        /// The last applied lsn when the read was served.
        served_lsn: Lsn,
    },
    /// The engine has not applied `min_lsn` yet; retry later.
    FenceNotApplied {
        /// The last applied lsn.
        applied_lsn: Lsn,
    },
    /// The engine halted after a storage failure; reads fail closed until restart.
    Halted,
    /// The engine's queue is full or it is shutting down; retry later.
    Unavailable,
    /// The engine thread did not serve the read within the node's commit timeout (it waits
    /// for a sync when the next group is full, so a stalled disk stalls reads too); retry
    /// later.
    TimedOut,
}

/// An owned copy of a lease read, so it can cross threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseRead {
    /// The lease.
    Found(LeaseSnapshot),
    /// Never existed (or above the retired watermark).
    NotFound,
    /// Existed; its history window has passed.
    Retired,
}

/// Every field of a lease, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSnapshot {
    /// The lease.
    pub lease_id: LeaseId,
    /// Its holder.
    pub holder_id: HolderId,
    /// Its state.
    pub state: allocdb_core::LeaseState,
    /// Its epoch.
    pub lease_epoch: u64,
    /// The reserve's lsn.
    pub created_lsn: Lsn,
    /// Deadline (reserved and expired leases).
    pub deadline_slot: Option<Slot>,
    /// Lsn of the terminal transition.
    pub released_lsn: Option<Lsn>,
    /// Slot from which it reads as retired.
    pub retire_after_slot: Option<Slot>,
    /// Members in bundle order.
    pub resource_ids: Vec<ResourceId>,
}

impl LeaseRead {
    /// Copies a kernel lease lookup.
    pub fn from_lookup(lookup: &allocdb_core::LeaseLookup<'_>) -> LeaseRead {
        match lookup {
            allocdb_core::LeaseLookup::Found(view) => LeaseRead::Found(LeaseSnapshot {
                lease_id: view.lease_id,
                holder_id: view.holder_id,
                state: view.state,
                lease_epoch: view.lease_epoch,
                created_lsn: view.created_lsn,
                deadline_slot: view.deadline_slot,
                released_lsn: view.released_lsn,
                retire_after_slot: view.retire_after_slot,
                resource_ids: view.resource_ids().collect(),
            }),
            allocdb_core::LeaseLookup::NotFound => LeaseRead::NotFound,
            allocdb_core::LeaseLookup::Retired => LeaseRead::Retired,
        }
    }
}
