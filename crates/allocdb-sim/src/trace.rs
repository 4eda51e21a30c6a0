//! The trace digest: every step, fault and reply of a run folded into one `u64`.
//!
//! Two runs of one seed must print the same digest; a difference means something outside the
//! seed (a clock, a hash map's order, a thread) leaked into the run. Each value is folded with
//! a tag naming what it is, so a reordering of events changes the digest even when the values
//! are equal.

use allocdb_core::Outcome;
use allocdb_engine::{RejectionCode, WriteReply};

use crate::rng::mix64;

/// What a folded value is; part of the digest so equal values of different events differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum TraceTag {
    /// The start of a step (value: the step number).
    Step = 1,
    /// A committed reply.
    Committed = 2,
    /// A rejected reply.
    Rejected = 3,
    /// A scheduled or applied storage fault.
    Fault = 4,
    /// A crash and recovery.
    Recovery = 5,
    /// A clock movement.
    Clock = 6,
    /// A kernel state digest.
    State = 7,
    /// A snapshot request.
    Snapshot = 8,
    /// A media fault (flipped bit).
    MediaFault = 9,
    /// A spare segment asked for (value 1 if handed out, 0 if not) or filled (value 2).
    Spare = 10,
}

/// A running fold of tagged values.
#[derive(Clone, Copy, Debug)]
pub struct TraceDigest {
    value: u64,
}

impl Default for TraceDigest {
    fn default() -> TraceDigest {
        TraceDigest { value: 0x6A09_E667_F3BC_C908 }
    }
}

impl TraceDigest {
    /// Folds one tagged value.
    pub fn add(&mut self, tag: TraceTag, value: u64) {
        self.value = mix64(self.value.rotate_left(17) ^ (tag as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.value = mix64(self.value ^ value);
    }

    /// Folds every field of a write reply.
    pub fn add_reply(&mut self, reply: &WriteReply) {
        match reply {
            WriteReply::Committed(outcome) => {
                self.add(TraceTag::Committed, outcome_word(outcome));
                self.add(TraceTag::Committed, outcome.applied_lsn);
                self.add(TraceTag::Committed, outcome.lease_id.map_or(0, allocdb_core::LeaseId::lsn));
                self.add(TraceTag::Committed, outcome.deadline_slot.unwrap_or(u64::MAX));
            }
            WriteReply::Rejected(code) => self.add(TraceTag::Rejected, rejection_number(*code)),
        }
    }

    /// The digest so far.
    pub fn value(&self) -> u64 {
        self.value
    }
}

fn outcome_word(outcome: &Outcome) -> u64 {
    u64::from(outcome.result as u8)
        | (u64::from(outcome.from_retry_cache) << 8)
        | (outcome.lease_epoch.unwrap_or(0) << 16)
}

/// A stable number for each rejection code: a hash of its stable name, so codes added to the
/// engine later need no change here.
pub fn rejection_number(code: RejectionCode) -> u64 {
    code.as_str()
        .bytes()
        .fold(0xCBF2_9CE4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3))
}

#[cfg(test)]
mod tests {
    use super::{TraceDigest, TraceTag};

    #[test]
    fn order_and_tag_both_change_the_digest() {
        let mut first = TraceDigest::default();
        first.add(TraceTag::Step, 1);
        first.add(TraceTag::Step, 2);
        let mut swapped = TraceDigest::default();
        swapped.add(TraceTag::Step, 2);
        swapped.add(TraceTag::Step, 1);
        let mut retagged = TraceDigest::default();
        retagged.add(TraceTag::Clock, 1);
        retagged.add(TraceTag::Step, 2);
        assert_ne!(first.value(), swapped.value());
        assert_ne!(first.value(), retagged.value());
    }
}
