//! The invariant checker: every structural and semantic invariant of the kernel, checked from
//! scratch. O(capacity); for tests, the simulator and snapshot restore, never the apply path.
//!
//! It checks the invariants of `semantics.md` that are visible in one state (a resource has at
//! most one live lease and every live lease's members point back at it; epochs start at 1;
//! terminal leases hold nothing) plus every internal invariant of the tables (indexes agree
//! with the slab, free lists and counts add up, the wheel holds exactly the reserved leases in
//! the right buckets, the retirement FIFO holds exactly the terminal leases in termination
//! order, the operation ring is in lsn order).

use crate::ids::SLOT_MAX;
use crate::kernel::Kernel;
use crate::lease_table::NONE;
use crate::state::{LeaseState, ResourceState};

/// A violated invariant, described in one sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvariantViolation(pub String);

macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(InvariantViolation(format!($($message)+)));
        }
    };
}

impl Kernel {
    /// Checks every invariant; returns the first violation found.
    ///
    /// # Errors
    /// The first violated invariant, naming the entries involved.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        ensure!(
            self.last_request_slot <= SLOT_MAX,
            "last request slot {} beyond SLOT_MAX",
            self.last_request_slot
        );
        ensure!(
            self.retired_watermark <= self.last_applied_lsn,
            "retired watermark {} above last applied lsn {}",
            self.retired_watermark,
            self.last_applied_lsn
        );
        self.check_resources()?;
        self.check_leases()?;
        self.check_wheel_and_retirement()?;
        self.operations.check().map_err(InvariantViolation)?;
        ensure!(self.operations.count() <= self.operations.capacity(), "operation table over capacity");
        if let Some(newest) = self.operations.iter().last() {
            ensure!(newest.applied_lsn <= self.last_applied_lsn, "operation record from the future");
            ensure!(newest.request_slot <= self.last_request_slot, "operation record slot from the future");
        }
        Ok(())
    }

    fn check_resources(&self) -> Result<(), InvariantViolation> {
        let mut count = 0_u32;
        for (_, slot) in self.resources.iter() {
            count += 1;
            let resource_id = slot.resource_id();
            ensure!(slot.version >= 1, "resource {resource_id} has version 0");
            ensure!(
                self.resources.find(resource_id).is_some(),
                "resource {resource_id} unreachable by probing"
            );
            let state = slot.state();
            if state == ResourceState::Available {
                ensure!(slot.lease_position == NONE, "available resource {resource_id} points at a lease");
                continue;
            }
            ensure!(slot.lease_position != NONE, "{} resource {resource_id} has no lease", state.as_str());
            ensure!(
                (slot.lease_position as usize) < self.leases.records().len(),
                "resource {resource_id} points outside the lease slab"
            );
            let record = self.leases.get(slot.lease_position);
            ensure!(
                record.state().member_state() == Some(state),
                "resource {resource_id} is {} but its lease {} is {}",
                state.as_str(),
                record.lsn,
                record.state().as_str()
            );
            let position = self.resources.find(resource_id);
            ensure!(
                self.leases.members(slot.lease_position).any(|member| Some(member) == position),
                "resource {resource_id} points at lease {} which does not list it",
                record.lsn
            );
        }
        ensure!(
            count == self.resources.count(),
            "resource count {} but {count} stored",
            self.resources.count()
        );
        ensure!(count <= self.resources.capacity(), "resource table over capacity");
        Ok(())
    }

    fn check_leases(&self) -> Result<(), InvariantViolation> {
        let mut lease_count = 0_u32;
        let mut member_count = 0_u64;
        for (position, record) in self.leases.iter() {
            lease_count += 1;
            let lsn = record.lsn;
            let state = record.state();
            ensure!(lsn >= 1 && lsn <= self.last_applied_lsn, "lease lsn {lsn} out of range");
            ensure!(self.leases.find(lsn) == Some(position), "lease {lsn} not indexed at its position");
            // Epoch 1 at reserve; exactly one withdrawing transition (release, expire, revoke)
            // adds 1; activate and reclaim keep it. So the state fixes the epoch.
            let expected_epoch =
                if matches!(state, LeaseState::Reserved | LeaseState::Active) { 1 } else { 2 };
            ensure!(
                record.lease_epoch == expected_epoch,
                "lease {lsn} is {} with epoch {} (expected {expected_epoch})",
                state.as_str(),
                record.lease_epoch
            );
            ensure!(record.member_count >= 1, "lease {lsn} has no members");
            let members: Vec<u32> = self.leases.members(position).collect();
            ensure!(
                members.len() == record.member_count as usize,
                "lease {lsn} member chain length mismatch"
            );
            member_count += members.len() as u64;
            let mut sorted = members.clone();
            sorted.sort_unstable();
            sorted.dedup();
            ensure!(sorted.len() == members.len(), "lease {lsn} lists a resource twice");
            for member in &members {
                let resource = self.resources.get(*member);
                match state.member_state() {
                    Some(member_state) => {
                        ensure!(
                            resource.lease_position == position && resource.state() == member_state,
                            "live lease {lsn} member {} does not point back at it",
                            resource.resource_id()
                        );
                    }
                    None => ensure!(
                        resource.lease_position != position,
                        "terminal lease {lsn} still holds resource {}",
                        resource.resource_id()
                    ),
                }
            }
            if state.is_live() {
                ensure!(
                    record.terminal_lsn == 0 && record.retire_after_slot == 0,
                    "live lease {lsn} has terminal fields"
                );
            } else {
                ensure!(
                    record.terminal_lsn > lsn && record.terminal_lsn <= self.last_applied_lsn,
                    "terminal lease {lsn} ended at impossible lsn {}",
                    record.terminal_lsn
                );
            }
            if state == LeaseState::Reserved {
                ensure!(record.deadline_slot > 0, "reserved lease {lsn} has no deadline");
            }
        }
        ensure!(
            lease_count == self.leases.count(),
            "lease count {} but {lease_count} stored",
            self.leases.count()
        );
        ensure!(
            member_count == u64::from(self.leases.member_count()),
            "member count {} but {member_count} linked",
            self.leases.member_count()
        );
        ensure!(self.leases.member_count() <= self.leases.member_capacity(), "member table over capacity");
        let indexed = self.leases.index_consistent().map_err(InvariantViolation)?;
        ensure!(indexed == lease_count, "lease index holds {indexed} entries for {lease_count} leases");
        let (free_records, free_members) = self.leases.free_list_lengths();
        ensure!(
            free_records + u64::from(lease_count) == u64::from(self.leases.capacity()),
            "lease free list has {free_records} records for {lease_count} stored of {}",
            self.leases.capacity()
        );
        let pool_used = member_count - u64::from(lease_count);
        ensure!(
            free_members + pool_used == u64::from(self.leases.member_capacity() - 1),
            "member pool free list has {free_members} entries with {pool_used} in use"
        );
        Ok(())
    }

    fn check_wheel_and_retirement(&self) -> Result<(), InvariantViolation> {
        let in_wheel = self.wheel.check(self.leases.records()).map_err(InvariantViolation)?;
        let reserved =
            self.leases.iter().filter(|(_, record)| record.state() == LeaseState::Reserved).count();
        ensure!(
            in_wheel.len() == reserved,
            "wheel holds {} leases but {reserved} are reserved",
            in_wheel.len()
        );
        for position in &in_wheel {
            ensure!(
                self.leases.get(*position).state() == LeaseState::Reserved,
                "wheel holds a lease that is not reserved"
            );
        }
        let mut previous_terminal_lsn = 0;
        let mut queued = 0_usize;
        for position in self.leases.retire_queue_iter() {
            queued += 1;
            ensure!(queued <= self.leases.capacity() as usize, "retirement queue has a cycle");
            let record = self.leases.get(position);
            ensure!(!record.state().is_live(), "retirement queue holds live lease {}", record.lsn);
            ensure!(
                record.terminal_lsn > previous_terminal_lsn,
                "retirement queue out of termination order at lease {}",
                record.lsn
            );
            previous_terminal_lsn = record.terminal_lsn;
        }
        let terminal = self.leases.iter().filter(|(_, record)| !record.state().is_live()).count();
        ensure!(queued == terminal, "retirement queue holds {queued} leases but {terminal} are terminal");
        Ok(())
    }
}
