//! The lease table: a fixed slab of lease records, a hash index from lsn to slab position, the
//! pool of bundle members, and the FIFO of terminal leases waiting for retirement.
//!
//! Invariants:
//! - every occupied slab record is in the index exactly once, under its lsn; free records are
//!   chained through `link_next` and are in no other structure;
//! - a lease's first member is stored inline; members two and later are chained through the
//!   member pool, in bundle order; `member_count` counts all of them, and the pool's used count
//!   equals the sum of `member_count - 1` over stored leases;
//! - a record's `link_next`/`link_prev` belong to exactly one list at a time: the timing wheel
//!   (reserved leases, see `expiry_wheel`), the retirement FIFO (terminal leases, `link_next`
//!   only, in order of becoming terminal and therefore of `retire_after_slot`), the free list,
//!   or none (active and revoking leases);
//! - the index has `capacity + capacity / 2 + 1` slots and uses linear probing with
//!   backward-shift deletion, so it never holds tombstones and probe length does not degrade as
//!   leases come and go.

use crate::hash::{cyclic_distance, hash_tag, hash_u64, home_position};
use crate::ids::{HolderId, Lsn, Slot};
use crate::resource_table::ResourcePosition;
use crate::state::LeaseState;

/// Position of a lease in the slab.
pub(crate) type LeasePosition = u32;

/// "No position" in every link field.
pub(crate) const NONE: u32 = u32::MAX;

const STATE_FREE: u8 = 0;

#[derive(Clone, Copy, Debug)]
pub(crate) struct LeaseRecord {
    /// The lsn of the reserve that created the lease: the low half of its id and `created_lsn`.
    pub(crate) lsn: Lsn,
    holder_low: u64,
    holder_high: u64,
    pub(crate) lease_epoch: u64,
    pub(crate) deadline_slot: Slot,
    /// Lsn of the transition that made the lease terminal; 0 while live.
    pub(crate) terminal_lsn: Lsn,
    /// Slot from which the lease reads as retired; 0 while live.
    pub(crate) retire_after_slot: Slot,
    member_first: ResourcePosition,
    member_rest: u32,
    pub(crate) member_count: u32,
    pub(crate) link_next: u32,
    pub(crate) link_prev: u32,
    state: u8,
}

const _: () = assert!(std::mem::size_of::<LeaseRecord>() == 80);

impl LeaseRecord {
    const FREE: LeaseRecord = LeaseRecord {
        lsn: 0,
        holder_low: 0,
        holder_high: 0,
        lease_epoch: 0,
        deadline_slot: 0,
        terminal_lsn: 0,
        retire_after_slot: 0,
        member_first: NONE,
        member_rest: NONE,
        member_count: 0,
        link_next: NONE,
        link_prev: NONE,
        state: STATE_FREE,
    };

    #[inline]
    pub(crate) fn holder_id(&self) -> HolderId {
        HolderId((u128::from(self.holder_high) << 64) | u128::from(self.holder_low))
    }

    #[inline]
    pub(crate) fn state(&self) -> LeaseState {
        LeaseState::from_stored(self.state)
    }

    #[inline]
    pub(crate) fn set_state(&mut self, state: LeaseState) {
        self.state = state as u8;
    }

    fn is_free(&self) -> bool {
        self.state == STATE_FREE
    }
}

#[derive(Clone, Copy, Debug)]
struct IndexSlot {
    lsn_low: u32,
    lsn_high: u32,
    position: u32,
}

impl IndexSlot {
    const EMPTY: IndexSlot = IndexSlot { lsn_low: 0, lsn_high: 0, position: NONE };

    fn lsn(self) -> Lsn {
        (u64::from(self.lsn_high) << 32) | u64::from(self.lsn_low)
    }
}

#[derive(Clone, Copy, Debug)]
struct MemberSlot {
    resource: ResourcePosition,
    next: u32,
}

/// What a new lease looks like; the table fills in the rest.
pub(crate) struct NewLease {
    pub(crate) lsn: Lsn,
    pub(crate) holder_id: HolderId,
    pub(crate) state: LeaseState,
    pub(crate) lease_epoch: u64,
    pub(crate) deadline_slot: Slot,
}

pub(crate) struct LeaseTable {
    records: Vec<LeaseRecord>,
    free_head: u32,
    count: u32,
    index: Vec<IndexSlot>,
    members: Vec<MemberSlot>,
    member_free_head: u32,
    member_count: u32,
    member_capacity: u32,
    retire_head: u32,
    retire_tail: u32,
    hash_seed: u64,
}

impl LeaseTable {
    pub(crate) fn new(capacity: u32, member_capacity: u32, hash_seed: u64) -> Self {
        assert!(capacity > 0);
        assert!(member_capacity >= capacity);
        let mut records = vec![LeaseRecord::FREE; capacity as usize];
        for (position, record) in records.iter_mut().enumerate() {
            let next = position as u32 + 1;
            record.link_next = if next == capacity { NONE } else { next };
        }
        // The first member of each lease is inline, so the pool needs one entry less per lease
        // than the member bound; with at least one lease stored it needs at most
        // `member_capacity - 1` entries.
        let pool_count = member_capacity - 1;
        let mut members = vec![MemberSlot { resource: NONE, next: NONE }; pool_count as usize];
        for (position, member) in members.iter_mut().enumerate() {
            let next = position as u32 + 1;
            member.next = if next == pool_count { NONE } else { next };
        }
        let index_slot_count = capacity + capacity / 2 + 1;
        LeaseTable {
            records,
            free_head: 0,
            count: 0,
            index: vec![IndexSlot::EMPTY; index_slot_count as usize],
            members,
            member_free_head: if pool_count == 0 { NONE } else { 0 },
            member_count: 0,
            member_capacity,
            retire_head: NONE,
            retire_tail: NONE,
            hash_seed,
        }
    }

    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.records.len() as u32
    }

    pub(crate) fn member_count(&self) -> u32 {
        self.member_count
    }

    pub(crate) fn member_capacity(&self) -> u32 {
        self.member_capacity
    }

    pub(crate) fn memory_bytes(&self) -> (u64, u64) {
        let records = self.records.capacity() * std::mem::size_of::<LeaseRecord>()
            + self.index.capacity() * std::mem::size_of::<IndexSlot>();
        let members = self.members.capacity() * std::mem::size_of::<MemberSlot>();
        (records as u64, members as u64)
    }

    pub(crate) fn is_full(&self) -> bool {
        self.count == self.capacity()
    }

    pub(crate) fn members_fit(&self, bundle_size: u32) -> bool {
        u64::from(self.member_count) + u64::from(bundle_size) <= u64::from(self.member_capacity)
    }

    #[inline]
    fn home(&self, lsn: Lsn) -> u32 {
        home_position(hash_tag(hash_u64(lsn, self.hash_seed)), self.index.len() as u32)
    }

    #[inline]
    fn next_index(&self, position: u32) -> u32 {
        let next = position + 1;
        if next == self.index.len() as u32 { 0 } else { next }
    }

    /// Loads the index home slot of `lsn` (see `prefetch.rs`).
    #[inline]
    pub(crate) fn touch_home(&self, lsn: Lsn) {
        allocdb_prefetch::prefetch(&self.index[self.home(lsn) as usize]);
    }

    /// Index slot holding `lsn`, if stored.
    #[inline]
    fn index_find(&self, lsn: Lsn) -> Option<u32> {
        let mut slot_position = self.home(lsn);
        for _ in 0..self.index.len() {
            let slot = self.index[slot_position as usize];
            if slot.position == NONE {
                return None;
            }
            if slot.lsn() == lsn {
                return Some(slot_position);
            }
            slot_position = self.next_index(slot_position);
        }
        panic!("lease index has no empty slot");
    }

    /// The slab position of the lease created at `lsn`, if stored.
    #[inline]
    pub(crate) fn find(&self, lsn: Lsn) -> Option<LeasePosition> {
        self.index_find(lsn).map(|slot_position| self.index[slot_position as usize].position)
    }

    /// Asks the cache for the record at `position` (no load, so no check that it is live).
    #[inline]
    pub(crate) fn prefetch_record(&self, position: LeasePosition) {
        allocdb_prefetch::prefetch(&self.records[position as usize]);
    }

    #[inline]
    pub(crate) fn get(&self, position: LeasePosition) -> &LeaseRecord {
        let record = &self.records[position as usize];
        assert!(!record.is_free(), "lease position {position} is free");
        record
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, position: LeasePosition) -> &mut LeaseRecord {
        let record = &mut self.records[position as usize];
        assert!(!record.is_free(), "lease position {position} is free");
        record
    }

    /// The slab, for the timing wheel's intrusive lists.
    pub(crate) fn records_mut(&mut self) -> &mut [LeaseRecord] {
        &mut self.records
    }

    pub(crate) fn records(&self) -> &[LeaseRecord] {
        &self.records
    }

    /// Stores a new lease with the given members (resource positions, in bundle order). The
    /// caller has checked [`Self::is_full`] and [`Self::members_fit`].
    pub(crate) fn insert(&mut self, lease: &NewLease, members: &[ResourcePosition]) -> LeasePosition {
        assert!(!self.is_full(), "lease table over capacity");
        assert!(!members.is_empty(), "a lease has at least one member");
        assert!(self.members_fit(members.len() as u32), "lease member table over capacity");
        assert!(lease.lsn != 0);
        let position = self.free_head;
        assert!(position != NONE);
        self.free_head = self.records[position as usize].link_next;
        let mut member_rest = NONE;
        for resource in members[1..].iter().rev() {
            let member_position = self.member_free_head;
            assert!(member_position != NONE, "member pool exhausted below its bound");
            let member = &mut self.members[member_position as usize];
            self.member_free_head = member.next;
            *member = MemberSlot { resource: *resource, next: member_rest };
            member_rest = member_position;
        }
        self.records[position as usize] = LeaseRecord {
            lsn: lease.lsn,
            holder_low: lease.holder_id.0 as u64,
            holder_high: (lease.holder_id.0 >> 64) as u64,
            lease_epoch: lease.lease_epoch,
            deadline_slot: lease.deadline_slot,
            terminal_lsn: 0,
            retire_after_slot: 0,
            member_first: members[0],
            member_rest,
            member_count: members.len() as u32,
            link_next: NONE,
            link_prev: NONE,
            state: lease.state as u8,
        };
        self.count += 1;
        self.member_count += members.len() as u32;
        self.index_insert(lease.lsn, position);
        position
    }

    fn index_insert(&mut self, lsn: Lsn, position: LeasePosition) {
        let mut slot_position = self.home(lsn);
        loop {
            let slot = &mut self.index[slot_position as usize];
            if slot.position == NONE {
                *slot = IndexSlot { lsn_low: lsn as u32, lsn_high: (lsn >> 32) as u32, position };
                return;
            }
            assert!(slot.lsn() != lsn, "lease lsn {lsn} inserted twice");
            slot_position = self.next_index(slot_position);
        }
    }

    /// Removes a stored lease entirely: index entry, members, slab record.
    pub(crate) fn remove(&mut self, position: LeasePosition) {
        let record = *self.get(position);
        let Some(mut hole) = self.index_find(record.lsn) else {
            panic!("stored lease {} missing from index", record.lsn);
        };
        // Backward-shift deletion: pull later entries of the probe run into the hole whenever
        // their home position does not lie cyclically in (hole, candidate].
        let slot_count = self.index.len() as u32;
        let mut candidate = self.next_index(hole);
        loop {
            let slot = self.index[candidate as usize];
            if slot.position == NONE {
                break;
            }
            let home = self.home(slot.lsn());
            let distance_home = cyclic_distance(home, candidate, slot_count);
            let distance_hole = cyclic_distance(hole, candidate, slot_count);
            if distance_home >= distance_hole {
                self.index[hole as usize] = slot;
                hole = candidate;
            }
            candidate = self.next_index(candidate);
        }
        self.index[hole as usize] = IndexSlot::EMPTY;

        let mut member_position = record.member_rest;
        while member_position != NONE {
            let member = &mut self.members[member_position as usize];
            let next = member.next;
            *member = MemberSlot { resource: NONE, next: self.member_free_head };
            self.member_free_head = member_position;
            member_position = next;
        }
        self.member_count -= record.member_count;
        self.count -= 1;
        self.records[position as usize] = LeaseRecord { link_next: self.free_head, ..LeaseRecord::FREE };
        self.free_head = position;
    }

    /// The members of a stored lease, in bundle order.
    pub(crate) fn members(&self, position: LeasePosition) -> MemberIter<'_> {
        let record = self.get(position);
        MemberIter {
            table: self,
            first: record.member_first,
            next: record.member_rest,
            remaining: record.member_count,
        }
    }

    /// Appends a lease that just became terminal to the retirement FIFO.
    pub(crate) fn retire_queue_push(&mut self, position: LeasePosition) {
        assert!(!self.get(position).state().is_live());
        self.records[position as usize].link_next = NONE;
        self.records[position as usize].link_prev = NONE;
        if self.retire_tail == NONE {
            self.retire_head = position;
        } else {
            self.records[self.retire_tail as usize].link_next = position;
        }
        self.retire_tail = position;
    }

    /// Asks the cache for what the next two retirements touch: the head's index slot and
    /// members, and the record after the head. Each call reads only the head record, which
    /// the call one retirement earlier asked for.
    #[inline]
    pub(crate) fn prefetch_retirements(&self) {
        if self.retire_head == NONE {
            return;
        }
        let head = &self.records[self.retire_head as usize];
        self.touch_home(head.lsn);
        if head.member_rest != NONE {
            allocdb_prefetch::prefetch(&self.members[head.member_rest as usize]);
        }
        if head.link_next != NONE {
            allocdb_prefetch::prefetch(&self.records[head.link_next as usize]);
        }
    }

    /// The oldest terminal lease, if any.
    pub(crate) fn retire_queue_front(&self) -> Option<LeasePosition> {
        (self.retire_head != NONE).then_some(self.retire_head)
    }

    /// Unlinks the oldest terminal lease from the FIFO (the caller then removes it).
    pub(crate) fn retire_queue_pop(&mut self) -> LeasePosition {
        let position = self.retire_head;
        assert!(position != NONE);
        self.retire_head = self.records[position as usize].link_next;
        if self.retire_head == NONE {
            self.retire_tail = NONE;
        }
        self.records[position as usize].link_next = NONE;
        position
    }

    /// Terminal leases in FIFO order (O(n); for snapshots and invariant checks).
    pub(crate) fn retire_queue_iter(&self) -> impl Iterator<Item = LeasePosition> + '_ {
        let mut position = self.retire_head;
        std::iter::from_fn(move || {
            if position == NONE {
                return None;
            }
            let current = position;
            position = self.records[current as usize].link_next;
            Some(current)
        })
    }

    /// Every stored lease with its position, in slab order (O(capacity)).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (LeasePosition, &LeaseRecord)> {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, record)| !record.is_free())
            .map(|(position, record)| (position as u32, record))
    }

    /// Number of free slab records and free pool entries, by walking the free lists (O(n)).
    pub(crate) fn free_list_lengths(&self) -> (u64, u64) {
        let mut records = 0_u64;
        let mut position = self.free_head;
        while position != NONE && records <= u64::from(self.capacity()) {
            records += 1;
            position = self.records[position as usize].link_next;
        }
        let mut members = 0_u64;
        let mut position = self.member_free_head;
        while position != NONE && members <= self.members.len() as u64 {
            members += 1;
            position = self.members[position as usize].next;
        }
        (records, members)
    }

    /// Number of occupied index slots and whether each maps back to a record with that lsn.
    pub(crate) fn index_consistent(&self) -> Result<u32, String> {
        let mut occupied = 0_u32;
        for slot in &self.index {
            if slot.position == NONE {
                continue;
            }
            occupied += 1;
            let Some(record) = self.records.get(slot.position as usize) else {
                return Err(format!("lease index points at position {} outside the slab", slot.position));
            };
            if record.is_free() || record.lsn != slot.lsn() {
                return Err(format!("lease index entry for lsn {} points at a different record", slot.lsn()));
            }
            if self.find(slot.lsn()) != Some(slot.position) {
                return Err(format!("lease lsn {} is indexed but not reachable by probing", slot.lsn()));
            }
        }
        Ok(occupied)
    }
}

/// Members of one lease, in bundle order.
#[derive(Clone)]
pub(crate) struct MemberIter<'t> {
    table: &'t LeaseTable,
    first: ResourcePosition,
    next: u32,
    remaining: u32,
}

impl MemberIter<'_> {
    pub(crate) fn remaining(&self) -> u32 {
        self.remaining
    }
}

impl Iterator for MemberIter<'_> {
    type Item = ResourcePosition;

    #[inline]
    fn next(&mut self) -> Option<ResourcePosition> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        if self.first != NONE {
            let first = self.first;
            self.first = NONE;
            return Some(first);
        }
        let member = self.table.members[self.next as usize];
        self.next = member.next;
        Some(member.resource)
    }
}

#[cfg(test)]
mod tests {
    use super::{LeaseTable, NewLease};
    use crate::ids::HolderId;
    use crate::state::LeaseState;

    fn terminal(lsn: u64) -> NewLease {
        NewLease {
            lsn,
            holder_id: HolderId(7),
            state: LeaseState::Released,
            lease_epoch: 1,
            deadline_slot: 0,
        }
    }

    /// The retirement prefetch reads the queue at every shape (empty, a single lease, a
    /// bundle whose members chain through the pool, a head followed by another) and changes
    /// nothing: retirements afterwards come out in the same order and the index stays whole.
    #[test]
    fn retirement_prefetch_is_safe_at_every_queue_shape_and_changes_nothing() {
        let mut table = LeaseTable::new(8, 16, 3);
        table.prefetch_retirements();
        let single = table.insert(&terminal(10), &[0]);
        table.retire_queue_push(single);
        table.prefetch_retirements();
        let bundle = table.insert(&terminal(11), &[1, 2, 3]);
        table.retire_queue_push(bundle);
        table.prefetch_retirements();
        assert_eq!(table.retire_queue_iter().collect::<Vec<_>>(), vec![single, bundle]);

        for expected in [single, bundle] {
            table.prefetch_retirements();
            assert_eq!(table.retire_queue_front(), Some(expected));
            let position = table.retire_queue_pop();
            table.remove(position);
            assert_eq!(table.index_consistent(), Ok(table.count()));
        }
        table.prefetch_retirements();
        assert_eq!(table.retire_queue_front(), None);
        assert_eq!((table.count(), table.member_count()), (0, 0));
    }
}
