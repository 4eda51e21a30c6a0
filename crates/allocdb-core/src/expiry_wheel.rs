//! The timing wheel: which reserved leases are due at a slot.
//!
//! `expiration_bucket_count` buckets each cover `expiration_bucket_slots` consecutive slots; a
//! deadline's *bucket time* is `deadline_slot / expiration_bucket_slots` and its bucket is the
//! bucket time modulo the bucket count. Each bucket is an intrusive doubly linked list through
//! the lease records' `link_next`/`link_prev`, so inserting and removing are O(1) and the wheel
//! needs only 12 bytes per bucket; each bucket is bounded by `expiration_bucket_length_max`,
//! and a reserve whose bucket is full fails with `expiration_index_full`.
//!
//! Invariants:
//! - exactly the reserved leases are in the wheel, each in the bucket of its deadline;
//! - within a bucket, leases are in increasing lsn order (they are appended as they are created
//!   and unlinked in place), so a snapshot restore that re-inserts reserved leases in lsn order
//!   rebuilds identical lists;
//! - `cursor` is a bucket time at or below every entry's bucket time, and at or below the bucket
//!   time of the last applied slot. The due query scans bucket times from `cursor` up to the
//!   query slot's, so its cost is bounded by the buckets that elapsed, not by the table size;
//! - the `nonempty` bitmap has bit `b` set exactly when bucket `b` has entries.

use crate::ids::Slot;
use crate::lease_table::{LeasePosition, LeaseRecord, NONE};

/// Bucket steps the cursor may advance per applied command. Time can jump (a node restarted
/// after downtime); the cursor then catches up over several commands instead of in one.
const CURSOR_STEPS_PER_APPLY_MAX: u32 = 64;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    head: u32,
    tail: u32,
    count: u32,
}

impl Bucket {
    const EMPTY: Bucket = Bucket { head: NONE, tail: NONE, count: 0 };
}

pub(crate) struct ExpiryWheel {
    buckets: Vec<Bucket>,
    nonempty: Vec<u64>,
    bucket_slots: u64,
    bucket_length_max: u32,
    cursor: u64,
    entry_count: u32,
}

impl ExpiryWheel {
    pub(crate) fn new(bucket_count: u32, bucket_slots: u64, bucket_length_max: u32) -> Self {
        assert!(bucket_count > 0);
        assert!(bucket_slots > 0);
        ExpiryWheel {
            buckets: vec![Bucket::EMPTY; bucket_count as usize],
            nonempty: vec![0; (bucket_count as usize).div_ceil(64)],
            bucket_slots,
            bucket_length_max,
            cursor: 0,
            entry_count: 0,
        }
    }

    pub(crate) fn entry_count(&self) -> u32 {
        self.entry_count
    }

    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    pub(crate) fn set_cursor(&mut self, cursor: u64) {
        self.cursor = cursor;
    }

    pub(crate) fn memory_bytes(&self) -> u64 {
        (self.buckets.capacity() * std::mem::size_of::<Bucket>() + self.nonempty.capacity() * 8) as u64
    }

    #[inline]
    fn bucket_time(&self, slot: Slot) -> u64 {
        slot / self.bucket_slots
    }

    #[inline]
    fn bucket_index(&self, bucket_time: u64) -> usize {
        (bucket_time % self.buckets.len() as u64) as usize
    }

    /// Whether a lease with this deadline would fit in its bucket.
    #[inline]
    pub(crate) fn has_room(&self, deadline_slot: Slot) -> bool {
        let bucket = &self.buckets[self.bucket_index(self.bucket_time(deadline_slot))];
        bucket.count < self.bucket_length_max
    }

    /// Appends a reserved lease to the bucket of its `deadline_slot`.
    pub(crate) fn insert(&mut self, records: &mut [LeaseRecord], position: LeasePosition) {
        let deadline_slot = records[position as usize].deadline_slot;
        let bucket_time = self.bucket_time(deadline_slot);
        assert!(bucket_time >= self.cursor, "deadline {deadline_slot} is behind the wheel cursor");
        let bucket_index = self.bucket_index(bucket_time);
        let bucket = &mut self.buckets[bucket_index];
        assert!(bucket.count < self.bucket_length_max, "expiration bucket over capacity");
        records[position as usize].link_next = NONE;
        records[position as usize].link_prev = bucket.tail;
        if bucket.tail == NONE {
            bucket.head = position;
        } else {
            records[bucket.tail as usize].link_next = position;
        }
        bucket.tail = position;
        bucket.count += 1;
        self.nonempty[bucket_index / 64] |= 1 << (bucket_index % 64);
        self.entry_count += 1;
    }

    /// Unlinks a reserved lease from its bucket.
    pub(crate) fn remove(&mut self, records: &mut [LeaseRecord], position: LeasePosition) {
        let record = records[position as usize];
        let bucket_index = self.bucket_index(self.bucket_time(record.deadline_slot));
        let bucket = &mut self.buckets[bucket_index];
        assert!(bucket.count > 0, "removing lease from empty expiration bucket");
        if record.link_prev == NONE {
            assert!(bucket.head == position, "lease is not in the bucket of its deadline");
            bucket.head = record.link_next;
        } else {
            records[record.link_prev as usize].link_next = record.link_next;
        }
        if record.link_next == NONE {
            assert!(bucket.tail == position, "lease is not in the bucket of its deadline");
            bucket.tail = record.link_prev;
        } else {
            records[record.link_next as usize].link_prev = record.link_prev;
        }
        bucket.count -= 1;
        if bucket.count == 0 {
            self.nonempty[bucket_index / 64] &= !(1 << (bucket_index % 64));
        }
        records[position as usize].link_next = NONE;
        records[position as usize].link_prev = NONE;
        self.entry_count -= 1;
    }

    /// Moves the cursor over empty buckets whose time is before `current_slot`'s, a bounded
    /// number of steps per call.
    pub(crate) fn advance_cursor(&mut self, current_slot: Slot) {
        let current_time = self.bucket_time(current_slot);
        if self.entry_count == 0 {
            self.cursor = self.cursor.max(current_time);
            return;
        }
        for _ in 0..CURSOR_STEPS_PER_APPLY_MAX {
            if self.cursor >= current_time {
                return;
            }
            if self.buckets[self.bucket_index(self.cursor)].count != 0 {
                return;
            }
            self.cursor += 1;
        }
    }

    /// Calls `visit` with every lease whose deadline is at or before `slot`, oldest bucket
    /// first and in lsn order within a bucket, stopping after `count_max` leases. Cost: the
    /// elapsed buckets since the cursor (skipping empty ones 64 at a time) plus the entries of
    /// the buckets visited.
    pub(crate) fn due(
        &self,
        records: &[LeaseRecord],
        slot: Slot,
        count_max: u32,
        mut visit: impl FnMut(LeasePosition),
    ) {
        let last_time = self.bucket_time(slot);
        if last_time < self.cursor || count_max == 0 {
            return;
        }
        let bucket_count = self.buckets.len() as u64;
        let span = (last_time - self.cursor + 1).min(bucket_count);
        let mut emitted = 0_u32;
        let mut offset = 0_u64;
        while offset < span {
            let bucket_index = self.bucket_index(self.cursor + offset);
            let word = self.nonempty[bucket_index / 64] >> (bucket_index % 64);
            if word == 0 {
                // Skip to the next bitmap word (or the wheel's end, where indexes wrap to 0).
                let to_word_end = 64 - (bucket_index % 64) as u64;
                let to_wheel_end = bucket_count - bucket_index as u64;
                offset += to_word_end.min(to_wheel_end);
                continue;
            }
            let skip = u64::from(word.trailing_zeros());
            if skip > 0 {
                offset += skip;
                continue;
            }
            let mut position = self.buckets[bucket_index].head;
            while position != NONE {
                let record = &records[position as usize];
                if record.deadline_slot <= slot {
                    visit(position);
                    emitted += 1;
                    if emitted == count_max {
                        return;
                    }
                }
                position = record.link_next;
            }
            offset += 1;
        }
    }

    /// Walks every bucket and returns `(bucket index, positions)` lists, for invariant checks
    /// (O(buckets + entries)).
    pub(crate) fn check(&self, records: &[LeaseRecord]) -> Result<Vec<LeasePosition>, String> {
        let mut all = Vec::with_capacity(self.entry_count as usize);
        for (bucket_index, bucket) in self.buckets.iter().enumerate() {
            let bit = (self.nonempty[bucket_index / 64] >> (bucket_index % 64)) & 1;
            if (bit == 1) != (bucket.count > 0) {
                return Err(format!(
                    "bucket {bucket_index} bitmap bit {bit} disagrees with count {}",
                    bucket.count
                ));
            }
            if bucket.count > self.bucket_length_max {
                return Err(format!(
                    "bucket {bucket_index} holds {} > {}",
                    bucket.count, self.bucket_length_max
                ));
            }
            let mut position = bucket.head;
            let mut previous = NONE;
            let mut walked = 0_u32;
            let mut previous_lsn = 0;
            while position != NONE {
                walked += 1;
                if walked > bucket.count {
                    return Err(format!("bucket {bucket_index} list is longer than its count"));
                }
                let Some(record) = records.get(position as usize) else {
                    return Err(format!(
                        "bucket {bucket_index} links to position {position} outside the slab"
                    ));
                };
                if record.link_prev != previous {
                    return Err(format!("bucket {bucket_index}: broken back link at lease {}", record.lsn));
                }
                if self.bucket_index(self.bucket_time(record.deadline_slot)) != bucket_index {
                    return Err(format!(
                        "lease {} is in bucket {bucket_index}, not its deadline's",
                        record.lsn
                    ));
                }
                if self.bucket_time(record.deadline_slot) < self.cursor {
                    return Err(format!("lease {} is behind the wheel cursor {}", record.lsn, self.cursor));
                }
                if record.lsn <= previous_lsn {
                    return Err(format!("bucket {bucket_index} is not in lsn order at lease {}", record.lsn));
                }
                previous_lsn = record.lsn;
                all.push(position);
                previous = position;
                position = record.link_next;
            }
            if walked != bucket.count || bucket.tail != previous {
                return Err(format!("bucket {bucket_index} count {} but {walked} linked", bucket.count));
            }
        }
        if all.len() != self.entry_count as usize {
            return Err(format!("wheel holds {} leases but counts {}", all.len(), self.entry_count));
        }
        Ok(all)
    }
}
