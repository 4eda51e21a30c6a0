//! Warming the cache for commands about to be applied.
//!
//! At large table sizes a command's cost is its cache misses: the operation-index slot, the
//! resource slot, the lease-index slot and then the lease record, each a dependent random
//! access. Applying commands one at a time pays them in sequence. A caller that knows the next
//! commands (the engine applies whole groups; replay reads records ahead) can call
//! [`Kernel::prefetch_indexes`] a couple of commands ahead and [`Kernel::prefetch_records`] one
//! step later, so the misses of several commands overlap instead of queueing.
//!
//! These functions only read: they never change state or results, so calling them or not, early
//! or late, cannot affect determinism. The core forbids `unsafe`, so instead of prefetch
//! instructions they issue ordinary loads whose values are passed to `black_box`; the processor
//! overlaps those independent misses just the same.

use std::hint::black_box;

use crate::command::{Command, Submission};
use crate::kernel::Kernel;

impl Kernel {
    /// First stage: loads the index slots `submission` will probe (operation index, resource
    /// table, lease index), plus the operation-index slot of the record that housekeeping will
    /// expire next.
    pub fn prefetch_indexes(&self, submission: &Submission<'_>) {
        if let Some(key) = submission.operation {
            self.prefetch_operation(key);
        }
        match submission.command {
            Command::CreateResource { resource_id } => self.resources.touch_home(resource_id),
            Command::Reserve { resource_ids, .. } => {
                for resource_id in resource_ids.iter().take(PREFETCH_MEMBERS_MAX) {
                    self.resources.touch_home(*resource_id);
                }
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

    /// Second stage, after the first had time to land: follows the index slots to the records
    /// they point at (the lease record and its first member's resource slot).
    pub fn prefetch_records(&self, submission: &Submission<'_>) {
        match submission.command {
            Command::Activate { lease_id, .. }
            | Command::Release { lease_id, .. }
            | Command::Revoke { lease_id }
            | Command::Reclaim { lease_id }
            | Command::Expire { lease_id, .. } => {
                if let Some(position) = self.leases.find(lease_id.lsn()) {
                    let record = self.leases.get(position);
                    black_box(record.member_count);
                    if let Some(member) = self.leases.members(position).next() {
                        black_box(self.resources.get(member).version);
                    }
                }
            }
            Command::CreateResource { .. } | Command::Reserve { .. } => {}
        }
    }
}

/// Members of one bundle touched by the first stage; larger bundles are rare and long enough
/// to hide their own latency.
const PREFETCH_MEMBERS_MAX: usize = 4;
