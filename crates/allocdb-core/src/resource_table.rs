//! The resource table: an insert-only open-addressing hash table with linear probing.
//!
//! Invariants:
//! - the table has `capacity + capacity / 2 + 1` slots, so it is never more than two-thirds
//!   full and every probe sequence ends at an empty slot;
//! - resources are never deleted (the semantics have no delete), so a slot's position is stable
//!   for the life of the kernel and leases refer to resources by position;
//! - a slot is empty exactly when its state is [`ResourceState::Empty`]-encoded (`0`).
//!
//! One slot is 32 bytes: two fit in a cache line, and a lookup at this load factor touches one
//! or two lines.

use crate::hash::{hash_tag, hash_u128, home_position};
use crate::ids::ResourceId;
use crate::state::ResourceState;

/// Position of a resource in the table; stable for the life of the kernel.
pub(crate) type ResourcePosition = u32;

const STATE_EMPTY: u8 = 0;

#[derive(Clone, Copy, Debug)]
pub(crate) struct ResourceSlot {
    id_low: u64,
    id_high: u64,
    pub(crate) version: u64,
    /// Position of the current lease in the lease table, or `NONE` when available.
    pub(crate) lease_position: u32,
    state: u8,
}

const _: () = assert!(std::mem::size_of::<ResourceSlot>() == 32);

impl ResourceSlot {
    const EMPTY: ResourceSlot =
        ResourceSlot { id_low: 0, id_high: 0, version: 0, lease_position: u32::MAX, state: STATE_EMPTY };

    #[inline]
    pub(crate) fn resource_id(&self) -> ResourceId {
        ResourceId((u128::from(self.id_high) << 64) | u128::from(self.id_low))
    }

    #[inline]
    pub(crate) fn state(&self) -> ResourceState {
        ResourceState::from_stored(self.state)
    }

    #[inline]
    pub(crate) fn set_state(&mut self, state: ResourceState) {
        self.state = state as u8;
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.state == STATE_EMPTY
    }
}

/// Result of probing for an id.
pub(crate) enum Probe {
    Found(ResourcePosition),
    Vacant(ResourcePosition),
}

pub(crate) struct ResourceTable {
    slots: Vec<ResourceSlot>,
    count: u32,
    capacity: u32,
    hash_seed: u64,
}

impl ResourceTable {
    pub(crate) fn new(capacity: u32, hash_seed: u64) -> Self {
        assert!(capacity > 0);
        let slot_count = capacity + capacity / 2 + 1;
        ResourceTable { slots: vec![ResourceSlot::EMPTY; slot_count as usize], count: 0, capacity, hash_seed }
    }

    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    pub(crate) fn memory_bytes(&self) -> u64 {
        (self.slots.capacity() * std::mem::size_of::<ResourceSlot>()) as u64
    }

    /// Finds `resource_id`, or the empty slot where it would be inserted.
    #[inline]
    pub(crate) fn probe(&self, resource_id: ResourceId) -> Probe {
        let slot_count = self.slots.len() as u32;
        let id_low = resource_id.0 as u64;
        let id_high = (resource_id.0 >> 64) as u64;
        let mut position = home_position(hash_tag(hash_u128(resource_id.0, self.hash_seed)), slot_count);
        // The table is at most two-thirds full, so this loop meets an empty slot; the bound
        // turns a broken invariant into a panic instead of an endless loop.
        for _ in 0..slot_count {
            let slot = &self.slots[position as usize];
            if slot.is_empty() {
                return Probe::Vacant(position);
            }
            if slot.id_low == id_low && slot.id_high == id_high {
                return Probe::Found(position);
            }
            position += 1;
            if position == slot_count {
                position = 0;
            }
        }
        panic!("resource table has no empty slot: count {} of {} slots", self.count, slot_count);
    }

    /// Loads the home slot of `resource_id` (see `prefetch.rs`).
    #[inline]
    pub(crate) fn touch_home(&self, resource_id: ResourceId) {
        let position =
            home_position(hash_tag(hash_u128(resource_id.0, self.hash_seed)), self.slots.len() as u32);
        allocdb_prefetch::prefetch(&self.slots[position as usize]);
    }

    #[inline]
    pub(crate) fn find(&self, resource_id: ResourceId) -> Option<ResourcePosition> {
        match self.probe(resource_id) {
            Probe::Found(position) => Some(position),
            Probe::Vacant(_) => None,
        }
    }

    /// Fills the vacant slot found by [`Self::probe`]. The caller checked capacity.
    pub(crate) fn insert_at(&mut self, position: ResourcePosition, resource_id: ResourceId, version: u64) {
        assert!(self.count < self.capacity, "resource table over capacity");
        let slot = &mut self.slots[position as usize];
        assert!(slot.is_empty(), "resource insert into occupied slot {position}");
        *slot = ResourceSlot {
            id_low: resource_id.0 as u64,
            id_high: (resource_id.0 >> 64) as u64,
            version,
            lease_position: u32::MAX,
            state: ResourceState::Available as u8,
        };
        self.count += 1;
    }

    /// Asks the cache for the slot at `position` (no load, so no check that it is occupied).
    #[inline]
    pub(crate) fn prefetch_slot(&self, position: ResourcePosition) {
        allocdb_prefetch::prefetch(&self.slots[position as usize]);
    }

    #[inline]
    pub(crate) fn get(&self, position: ResourcePosition) -> &ResourceSlot {
        let slot = &self.slots[position as usize];
        assert!(!slot.is_empty(), "resource position {position} is empty");
        slot
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, position: ResourcePosition) -> &mut ResourceSlot {
        let slot = &mut self.slots[position as usize];
        assert!(!slot.is_empty(), "resource position {position} is empty");
        slot
    }

    /// Every occupied slot with its position, in table order (O(slots); never on the apply path).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (ResourcePosition, &ResourceSlot)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| !slot.is_empty())
            .map(|(position, slot)| (position as u32, slot))
    }
}
