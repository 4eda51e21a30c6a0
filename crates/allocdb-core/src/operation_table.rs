//! The operation table: remembered outcomes of client writes, for answering retries.
//!
//! Records live in a ring in the order they were applied (and therefore in order of
//! `request_slot`, which never decreases), so the oldest record is always the next to expire:
//! expiry pops from the head, insertion pushes at the tail, and neither ever searches. A hash
//! index maps `(client_id, operation_id)` to a ring position; each index slot keeps the top 32
//! bits of the key's hash, which both filters mismatches without touching the ring and lets
//! backward-shift deletion recompute home positions without reading records.
//!
//! Invariants:
//! - the ring holds `count` records starting at `head`, in strictly increasing `applied_lsn`;
//! - every key with a record in the ring is indexed exactly once, pointing at its newest
//!   record (an expired record can linger behind a newer one for the same key until it reaches
//!   the head; dropping it then leaves the index alone);
//! - the index has `capacity + capacity / 2 + 1` slots and never holds tombstones.

use crate::hash::{cyclic_distance, hash_tag, hash_u128_pair, home_position};
use crate::ids::{ClientId, Lsn, OperationId, OperationKey, Slot};
use crate::lease_table::NONE;
use crate::result::ResultCode;

/// A remembered outcome. With the retried command (identical, by fingerprint) it reproduces the
/// original outcome exactly: the lease id and deadline follow from the command and the stored
/// lsn and slot, so only the epoch is stored. One record is one 64-byte cache line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct OperationRecord {
    client_low: u64,
    client_high: u64,
    operation_low: u64,
    operation_high: u64,
    pub(crate) fingerprint: u64,
    pub(crate) applied_lsn: Lsn,
    pub(crate) request_slot: Slot,
    /// Top 32 bits of the key's hash, so expiry finds the index entry without rehashing.
    tag: u32,
    pub(crate) result: ResultCode,
    /// Lease epoch in the outcome; 0 when the outcome names no lease. Epochs never exceed 2.
    pub(crate) lease_epoch: u8,
}

const _: () = assert!(std::mem::size_of::<OperationRecord>() == 64);

impl OperationRecord {
    pub(crate) fn new(key: OperationKey, fingerprint: u64, applied_lsn: Lsn, request_slot: Slot) -> Self {
        OperationRecord {
            client_low: key.client_id.0 as u64,
            client_high: (key.client_id.0 >> 64) as u64,
            operation_low: key.operation_id.0 as u64,
            operation_high: (key.operation_id.0 >> 64) as u64,
            fingerprint,
            applied_lsn,
            request_slot,
            tag: 0,
            result: ResultCode::Ok,
            lease_epoch: 0,
        }
    }

    pub(crate) fn key(&self) -> OperationKey {
        OperationKey {
            client_id: ClientId((u128::from(self.client_high) << 64) | u128::from(self.client_low)),
            operation_id: OperationId(
                (u128::from(self.operation_high) << 64) | u128::from(self.operation_low),
            ),
        }
    }

    #[inline]
    fn has_key(&self, key: OperationKey) -> bool {
        self.client_low == key.client_id.0 as u64
            && self.client_high == (key.client_id.0 >> 64) as u64
            && self.operation_low == key.operation_id.0 as u64
            && self.operation_high == (key.operation_id.0 >> 64) as u64
    }
}

const EMPTY_RECORD: OperationRecord = OperationRecord {
    client_low: 0,
    client_high: 0,
    operation_low: 0,
    operation_high: 0,
    fingerprint: 0,
    applied_lsn: 0,
    request_slot: 0,
    tag: 0,
    result: ResultCode::Ok,
    lease_epoch: 0,
};

#[derive(Clone, Copy, Debug)]
struct IndexSlot {
    tag: u32,
    ring_position: u32,
}

impl IndexSlot {
    const EMPTY: IndexSlot = IndexSlot { tag: 0, ring_position: NONE };
}

/// Where a key is, or would be inserted, in the index.
pub(crate) struct OperationProbe {
    tag: u32,
    index_slot: u32,
    /// Ring position of the key's newest record, or `NONE` if the key is not indexed.
    ring_position: u32,
}

pub(crate) struct OperationTable {
    ring: Vec<OperationRecord>,
    head: u32,
    count: u32,
    index: Vec<IndexSlot>,
    hash_seed: u64,
}

impl OperationTable {
    pub(crate) fn new(capacity: u32, hash_seed: u64) -> Self {
        assert!(capacity > 0);
        let index_slot_count = capacity + capacity / 2 + 1;
        OperationTable {
            ring: vec![EMPTY_RECORD; capacity as usize],
            head: 0,
            count: 0,
            index: vec![IndexSlot::EMPTY; index_slot_count as usize],
            hash_seed,
        }
    }

    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.ring.len() as u32
    }

    pub(crate) fn is_full(&self) -> bool {
        self.count == self.capacity()
    }

    pub(crate) fn memory_bytes(&self) -> u64 {
        (self.ring.capacity() * std::mem::size_of::<OperationRecord>()
            + self.index.capacity() * std::mem::size_of::<IndexSlot>()) as u64
    }

    #[inline]
    fn tag(&self, key: OperationKey) -> u32 {
        hash_tag(hash_u128_pair(key.client_id.0, key.operation_id.0, self.hash_seed))
    }

    #[inline]
    fn next_index(&self, position: u32) -> u32 {
        let next = position + 1;
        if next == self.index.len() as u32 { 0 } else { next }
    }

    #[inline]
    fn ring_position(&self, offset: u32) -> u32 {
        // head < capacity and offset <= capacity, so one subtraction wraps it.
        let position = self.head + offset;
        let capacity = self.capacity();
        if position >= capacity { position - capacity } else { position }
    }

    /// Loads the index home slot of `key` (see `prefetch.rs`).
    #[inline]
    pub(crate) fn touch_home(&self, key: OperationKey) {
        let position = home_position(self.tag(key), self.index.len() as u32);
        allocdb_prefetch::prefetch(&self.index[position as usize]);
    }

    /// Loads the index slot of a record a few places behind the oldest: the one housekeeping
    /// will expire a few commands from now, if time moves on.
    #[inline]
    pub(crate) fn touch_upcoming_expiry(&self) {
        const EXPIRY_LOOKAHEAD: u32 = 8;
        if self.count > EXPIRY_LOOKAHEAD {
            let record = &self.ring[self.ring_position(EXPIRY_LOOKAHEAD) as usize];
            let position = home_position(record.tag, self.index.len() as u32);
            allocdb_prefetch::prefetch(&self.index[position as usize]);
        }
    }

    /// Finds `key` in the index, or the vacant slot where it would be inserted. One probe
    /// serves both the retry lookup and the insert that follows it.
    #[inline]
    pub(crate) fn probe(&self, key: OperationKey) -> OperationProbe {
        self.probe_with_tag(key, self.tag(key))
    }

    #[inline]
    fn probe_with_tag(&self, key: OperationKey, tag: u32) -> OperationProbe {
        let mut index_slot = home_position(tag, self.index.len() as u32);
        for _ in 0..self.index.len() {
            let slot = self.index[index_slot as usize];
            if slot.ring_position == NONE {
                return OperationProbe { tag, index_slot, ring_position: NONE };
            }
            if slot.tag == tag && self.ring[slot.ring_position as usize].has_key(key) {
                return OperationProbe { tag, index_slot, ring_position: slot.ring_position };
            }
            index_slot = self.next_index(index_slot);
        }
        panic!("operation index has no empty slot");
    }

    /// The newest record for the probed key, expired or not.
    #[inline]
    pub(crate) fn probed_record(&self, probe: &OperationProbe) -> Option<&OperationRecord> {
        (probe.ring_position != NONE).then(|| &self.ring[probe.ring_position as usize])
    }

    /// The newest record for `key`, expired or not.
    pub(crate) fn find(&self, key: OperationKey) -> Option<&OperationRecord> {
        let probe = self.probe(key);
        (probe.ring_position != NONE).then(|| &self.ring[probe.ring_position as usize])
    }

    /// Appends a record at the tail and indexes it.
    pub(crate) fn insert(&mut self, record: OperationRecord) {
        let probe = self.probe(record.key());
        self.insert_probed(&probe, record);
    }

    /// Appends a record at the tail and indexes it where `probe` (taken with no change to the
    /// table since) found its key or a vacant slot, replacing the index entry of an older,
    /// expired record for the same key. The caller checked [`Self::is_full`].
    pub(crate) fn insert_probed(&mut self, probe: &OperationProbe, record: OperationRecord) {
        assert!(!self.is_full(), "operation table over capacity");
        let ring_position = self.ring_position(self.count);
        if self.count > 0 {
            let newest = self.ring_position(self.count - 1);
            assert!(self.ring[newest as usize].applied_lsn < record.applied_lsn);
        }
        self.ring[ring_position as usize] = OperationRecord { tag: probe.tag, ..record };
        self.count += 1;
        let slot = &mut self.index[probe.index_slot as usize];
        assert_eq!(slot.ring_position, probe.ring_position, "operation index changed since the probe");
        *slot = IndexSlot { tag: probe.tag, ring_position };
    }

    /// The oldest record, if any.
    pub(crate) fn oldest(&self) -> Option<&OperationRecord> {
        (self.count > 0).then(|| &self.ring[self.head as usize])
    }

    /// Drops the oldest record; its index entry goes too unless a newer record took it over.
    pub(crate) fn pop_oldest(&mut self) {
        assert!(self.count > 0);
        let ring_position = self.head;
        let oldest = &self.ring[ring_position as usize];
        let probe = self.probe_with_tag(oldest.key(), oldest.tag);
        if probe.ring_position == ring_position {
            self.index_remove(probe.index_slot);
        }
        self.head = self.ring_position(1);
        self.count -= 1;
    }

    fn index_remove(&mut self, mut hole: u32) {
        let slot_count = self.index.len() as u32;
        let mut candidate = self.next_index(hole);
        loop {
            let slot = self.index[candidate as usize];
            if slot.ring_position == NONE {
                break;
            }
            let home = home_position(slot.tag, slot_count);
            let distance_home = cyclic_distance(home, candidate, slot_count);
            let distance_hole = cyclic_distance(hole, candidate, slot_count);
            if distance_home >= distance_hole {
                self.index[hole as usize] = slot;
                hole = candidate;
            }
            candidate = self.next_index(candidate);
        }
        self.index[hole as usize] = IndexSlot::EMPTY;
    }

    /// Records from oldest to newest (O(n); for snapshots and invariant checks).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &OperationRecord> {
        let capacity = self.capacity();
        (0..self.count).map(move |offset| &self.ring[((self.head + offset) % capacity) as usize])
    }

    /// Checks ring order and that each key's index entry points at its newest record.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut previous_lsn = 0;
        let capacity = self.capacity();
        for offset in 0..self.count {
            let ring_position = (self.head + offset) % capacity;
            let record = &self.ring[ring_position as usize];
            if record.applied_lsn <= previous_lsn {
                return Err(format!("operation ring not in lsn order at lsn {}", record.applied_lsn));
            }
            previous_lsn = record.applied_lsn;
            let Some(indexed) = self.find(record.key()) else {
                return Err(format!("operation record at lsn {} is not indexed", record.applied_lsn));
            };
            if indexed.applied_lsn < record.applied_lsn {
                return Err(format!(
                    "operation index points at an older record than lsn {}",
                    record.applied_lsn
                ));
            }
        }
        let occupied = self.index.iter().filter(|slot| slot.ring_position != NONE).count();
        if occupied > self.count as usize {
            return Err(format!("operation index has {occupied} entries for {} records", self.count));
        }
        for slot in self.index.iter().filter(|slot| slot.ring_position != NONE) {
            let offset = (slot.ring_position + capacity - self.head) % capacity;
            if offset >= self.count {
                return Err(format!("operation index points at free ring position {}", slot.ring_position));
            }
        }
        Ok(())
    }
}
