//! Deterministic hashing for the kernel's tables and command fingerprints.
//!
//! The kernel may not use std's randomly seeded hasher (iteration order and layout would differ
//! between processes), so it hashes with a folded 64×64→128 multiply, the mixing step of
//! wyhash. The seed comes from [`crate::KernelConfig::hash_seed`]. Table positions are derived
//! from the top 32 bits of a hash with a multiply-shift ("fastrange"), so a table need not have a
//! power-of-two size and an index entry can recompute its home position from 32 stored bits.

const MIX_A: u64 = 0xa076_1d64_78bd_642f;
const MIX_B: u64 = 0xe703_7ed1_a0b4_28db;

/// Multiplies two words to 128 bits and folds the halves together.
#[inline]
pub(crate) fn fold_multiply(left: u64, right: u64) -> u64 {
    let product = u128::from(left) * u128::from(right);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Hashes a 128-bit key.
#[inline]
pub(crate) fn hash_u128(value: u128, seed: u64) -> u64 {
    let low = value as u64;
    let high = (value >> 64) as u64;
    fold_multiply(low ^ seed ^ MIX_A, high ^ MIX_B)
}

/// Hashes a 64-bit key.
#[inline]
pub(crate) fn hash_u64(value: u64, seed: u64) -> u64 {
    fold_multiply(value ^ seed ^ MIX_A, MIX_B)
}

/// Hashes a pair of 128-bit keys.
#[inline]
pub(crate) fn hash_u128_pair(first: u128, second: u128, seed: u64) -> u64 {
    fold_multiply(hash_u128(first, seed), hash_u128(second, seed ^ MIX_B) ^ MIX_A)
}

/// The top 32 bits of a hash: what index entries store to find their home position again.
#[inline]
pub(crate) fn hash_tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// Maps a 32-bit tag uniformly onto `0..slot_count`.
#[inline]
pub(crate) fn home_position(tag: u32, slot_count: u32) -> u32 {
    ((u64::from(tag) * u64::from(slot_count)) >> 32) as u32
}

/// Steps from `from` forward to `to` in a table of `slot_count` slots that wraps around.
/// Branches instead of `%`: this runs in every hash-index deletion, and a division costs more
/// than the rest of the step.
#[inline]
pub(crate) fn cyclic_distance(from: u32, to: u32, slot_count: u32) -> u32 {
    debug_assert!(from < slot_count && to < slot_count);
    if to >= from { to - from } else { to + (slot_count - from) }
}

/// Accumulates a fingerprint of a command's words. Order-sensitive; not cryptographic. Used only
/// to tell a retry of the same command from a different command under the same operation id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fingerprint {
    state: u64,
}

impl Fingerprint {
    pub(crate) fn new(kind: u8) -> Self {
        Fingerprint { state: fold_multiply(u64::from(kind) ^ MIX_A, MIX_B) }
    }

    #[inline]
    pub(crate) fn add_u64(&mut self, word: u64) {
        self.state = fold_multiply(self.state ^ word ^ MIX_B, MIX_A);
    }

    #[inline]
    pub(crate) fn add_u128(&mut self, word: u128) {
        self.add_u64(word as u64);
        self.add_u64((word >> 64) as u64);
    }

    pub(crate) fn finish(self) -> u64 {
        fold_multiply(self.state, MIX_B ^ MIX_A)
    }
}

#[cfg(test)]
mod tests {
    use super::{Fingerprint, hash_u128, home_position};

    #[test]
    fn home_position_stays_inside_the_table() {
        for slot_count in [1_u32, 2, 3, 1000, u32::MAX] {
            for tag in [0_u32, 1, u32::MAX / 2, u32::MAX] {
                assert!(home_position(tag, slot_count) < slot_count);
            }
        }
    }

    #[test]
    fn hash_depends_on_seed_and_both_halves() {
        let base = hash_u128(1, 7);
        assert_ne!(base, hash_u128(1, 8));
        assert_ne!(base, hash_u128(1 | (1 << 64), 7));
    }

    #[test]
    fn fingerprint_is_order_sensitive() {
        let mut first = Fingerprint::new(1);
        first.add_u64(1);
        first.add_u64(2);
        let mut second = Fingerprint::new(1);
        second.add_u64(2);
        second.add_u64(1);
        assert_ne!(first.finish(), second.finish());
    }
}
