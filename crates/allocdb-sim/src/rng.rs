//! The simulator's only source of randomness: `SplitMix64`, seeded from the run's `u64` seed.
//!
//! Hand-written (a dozen lines) so the sequence is fixed by this file alone, not by a crate
//! version: a seed printed today replays the same run after any dependency update. `SplitMix64`
//! passes `BigCrush`, has a full 2^64 period and needs one word of state, which is all a
//! simulator needs; it is not cryptographic and never has to be.
//!
//! Independent streams (configuration, workload, faults) are forked from the root with
//! [`Rng::fork`], so a change in how one part draws does not shift the others.

/// A `SplitMix64` generator.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// A new generator seeded from this one: an independent stream.
    #[must_use]
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }

    /// A value in `0..bound` (`bound > 0`), by multiply-shift (bias below 2^-64 · bound).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "empty range");
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A value in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        match (high - low).checked_add(1) {
            Some(span) => low + self.below(span),
            None => self.next_u64(),
        }
    }

    /// A `u32` in `low..=high`.
    pub fn range_u32(&mut self, low: u32, high: u32) -> u32 {
        // The result lies in `low..=high`, so it fits.
        self.range(low.into(), high.into()) as u32
    }

    /// An index into a collection of `count` items (`count > 0`).
    pub fn index(&mut self, count: usize) -> usize {
        // `below(count)` is less than `count`, which is a `usize`.
        self.below(count as u64) as usize
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// True with probability one half.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// The `SplitMix64` output function (also a good 64-bit mixer for the trace digest).
pub fn mix64(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_gives_the_same_sequence() {
        let mut first = Rng::new(42);
        let mut second = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(first.next_u64(), second.next_u64());
        }
    }

    #[test]
    fn splitmix_matches_its_reference_output() {
        // Reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn ranges_stay_inside_their_bounds_and_reach_both_ends() {
        let mut rng = Rng::new(7);
        let mut seen = [false; 4];
        for _ in 0..1000 {
            let value = rng.range(3, 6);
            assert!((3..=6).contains(&value));
            seen[(value - 3) as usize] = true;
        }
        assert!(seen.iter().all(|&hit| hit));
        assert_eq!(rng.range(5, 5), 5);
        let _ = rng.range(0, u64::MAX);
    }
}
