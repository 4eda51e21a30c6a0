//! Warming the cache for commands about to be applied.
//!
//! At large table sizes a command's cost is its cache misses: the operation-index slot, the
//! resource slot, the lease-index slot and then the lease record, each a dependent random
//! access. Applying commands one at a time pays them in sequence. A caller that knows the next
//! commands (the engine applies whole groups; replay reads records ahead) calls three stages,
//! each a few commands after the previous one, so every stage finds the line the one before it
//! asked for already in the cache: [`Kernel::prefetch_indexes`] (the index slots, from hashes
//! alone), [`Kernel::prefetch_records`] (reads the lease-index slot, asks for the lease record)
//! and [`Kernel::prefetch_members`] (reads the lease record, asks for its first member's
//! resource slot). The misses of several commands then overlap instead of queueing.
//!
//! Housekeeping has its own lookahead: the operation ring is contiguous, so the first stage
//! asks for the index slot of the record expired a few commands later; the lease retirement
//! queue is a linked list, so each retirement step asks for the next head's index slot and the
//! record after it (`LeaseTable::prefetch_retirements`), two retirements deep.
//!
//! These functions only read: they never change state or results, so calling them or not, early
//! or late, cannot affect determinism. The requests themselves are prefetch instructions
//! (`allocdb_prefetch`, which holds the one `unsafe` call the kernel may not make): unlike an
//! ordinary load, a prefetch retires at once and never holds up the work behind it.

use crate::command::{Command, Submission};
use crate::ids::Lsn;
use crate::kernel::Kernel;

impl Kernel {
    /// First stage: loads the index slots `submission`, to be applied at `lsn`, will probe
    /// (operation index, resource table, lease index; for a reserve, the lease-index slot its
    /// new lease will be inserted at), plus the operation-index slot of the record that
    /// housekeeping will expire next.
    pub fn prefetch_indexes(&self, lsn: Lsn, submission: &Submission<'_>) {
        if let Some(key) = submission.operation {
            self.prefetch_operation(key);
        }
        match submission.command {
            Command::CreateResource { resource_id } => self.resources.touch_home(resource_id),
            Command::Reserve { resource_ids, .. } => {
                for resource_id in resource_ids.iter().take(PREFETCH_MEMBERS_MAX) {
                    self.resources.touch_home(*resource_id);
                }
                self.leases.touch_home(lsn);
            }
            Command::Activate { lease_id, .. }
            | Command::Release { lease_id, .. }
            | Command::Revoke { lease_id }
            | Command::Reclaim { lease_id }
            | Command::Expire { lease_id, .. } => self.leases.touch_home(lease_id.lsn()),
        }
    }

    /// Loads the operation-index slot of `key` and of the record housekeeping expires next:
    /// the part of the first stage that needs only the operation key.
    pub fn prefetch_operation(&self, key: crate::ids::OperationKey) {
        self.operations.touch_home(key);
        self.operations.touch_upcoming_expiry();
    }

    /// Second stage, after the first had time to land: follows the lease-index slot to the
    /// lease record and asks for it.
    pub fn prefetch_records(&self, submission: &Submission<'_>) {
        if let Some(lease_id) = lease_of(submission)
            && let Some(position) = self.leases.find(lease_id.lsn())
        {
            self.leases.prefetch_record(position);
        }
    }

    /// Third stage, after the second had time to land: reads the lease record and asks for its
    /// first member's resource slot.
    pub fn prefetch_members(&self, submission: &Submission<'_>) {
        if let Some(lease_id) = lease_of(submission)
            && let Some(position) = self.leases.find(lease_id.lsn())
            && let Some(member) = self.leases.members(position).next()
        {
            self.resources.prefetch_slot(member);
        }
    }
}

/// The stored lease a command acts on, if it names one.
fn lease_of(submission: &Submission<'_>) -> Option<crate::ids::LeaseId> {
    match submission.command {
        Command::Activate { lease_id, .. }
        | Command::Release { lease_id, .. }
        | Command::Revoke { lease_id }
        | Command::Reclaim { lease_id }
        | Command::Expire { lease_id, .. } => Some(lease_id),
        Command::CreateResource { .. } | Command::Reserve { .. } => None,
    }
}

/// Members of one bundle touched by the first stage; larger bundles are rare and long enough
/// to hide their own latency.
const PREFETCH_MEMBERS_MAX: usize = 4;
