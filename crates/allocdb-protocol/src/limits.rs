//! Size limits of the wire protocol: the hard limits every peer enforces, and the configurable
//! [`ProtocolLimits`] a server announces in its handshake.
//!
//! Invariants (checked at compile time or by [`ProtocolLimits::new`], `docs/protocol.md` §4):
//! - every frame, including its 4-byte length prefix, is at most `frame_size_bytes_max`, which is
//!   at most [`FRAME_SIZE_BYTES_LIMIT`] (16 MiB) and at least [`FRAME_SIZE_BYTES_MIN`];
//! - any single message that is not a batch (a batch of one write of the largest bundle, a lease
//!   with [`BUNDLE_SIZE_LIMIT`] members, a handshake refusal or protocol error with the longest
//!   message) fits in [`FRAME_SIZE_BYTES_MIN`], so every valid configuration can carry it;
//! - the results of a full batch (`batch_size_max` results of the largest size) fit in one frame,
//!   so a server never has to fail a response it owes for a batch it accepted.

use allocdb_core::BUNDLE_SIZE_LIMIT;

/// Bytes before the body of every frame: u32 length, u8 tag, u64 request id.
pub const FRAME_HEADER_SIZE_BYTES: usize = 4 + 1 + 8;

/// The smallest value of the length prefix: a tag and a request id with an empty body.
pub const FRAME_LENGTH_MIN: u32 = 1 + 8;

/// The hard limit on a frame (length prefix included) that no configuration may exceed.
pub const FRAME_SIZE_BYTES_LIMIT: u32 = 16 * 1024 * 1024;

/// The smallest configurable `frame_size_bytes_max`.
pub const FRAME_SIZE_BYTES_MIN: u32 = 64 * 1024;

/// The hard limit on writes per batch that no configuration may exceed.
pub const BATCH_SIZE_LIMIT: u32 = 65_536;

/// The longest UTF-8 message (handshake refusal, protocol error), in bytes.
pub const MESSAGE_SIZE_BYTES_MAX: usize = 4096;

/// The smallest encoded write: flags, kind, one u128 (create, revoke, reclaim).
pub const WRITE_SIZE_BYTES_MIN: usize = 1 + 1 + 16;

/// The largest encoded write: flags, operation id, client id, kind, and a reserve of the
/// largest bundle (ttl, holder, member count, members).
pub const WRITE_SIZE_BYTES_MAX: usize = 1 + 16 + 16 + 1 + 8 + 16 + 2 + 16 * BUNDLE_SIZE_LIMIT as usize;

/// The smallest encoded write result: an indefinite rejection (outcome, code).
pub const WRITE_RESULT_SIZE_BYTES_MIN: usize = 1 + 1;

/// The largest encoded write result: a committed outcome with every optional field.
pub const WRITE_RESULT_SIZE_BYTES_MAX: usize = 1 + 1 + 8 + 1 + 16 + 8 + 8;

/// The largest encoded lease read result: status, served lsn, fixed fields, three optional
/// slots or lsns, member count and [`BUNDLE_SIZE_LIMIT`] members.
pub const LEASE_RESULT_SIZE_BYTES_MAX: usize =
    1 + 8 + 16 + 16 + 1 + 8 + 8 + 1 + 3 * 8 + 2 + 16 * BUNDLE_SIZE_LIMIT as usize;

// Every non-batch message and a batch of one write fit in the smallest allowed frame.
const _: () = assert!(FRAME_HEADER_SIZE_BYTES + 4 + WRITE_SIZE_BYTES_MAX <= FRAME_SIZE_BYTES_MIN as usize);
const _: () = assert!(FRAME_HEADER_SIZE_BYTES + LEASE_RESULT_SIZE_BYTES_MAX <= FRAME_SIZE_BYTES_MIN as usize);
const _: () =
    assert!(FRAME_HEADER_SIZE_BYTES + 1 + 2 + MESSAGE_SIZE_BYTES_MAX <= FRAME_SIZE_BYTES_MIN as usize);
// The results of the largest batch fit in the largest frame, so some valid configuration exists
// for every batch size up to the limit.
const _: () = assert!(
    FRAME_HEADER_SIZE_BYTES + 4 + BATCH_SIZE_LIMIT as usize * WRITE_RESULT_SIZE_BYTES_MAX
        <= FRAME_SIZE_BYTES_LIMIT as usize
);
// A member count is a u16 on the wire.
const _: () = assert!(BUNDLE_SIZE_LIMIT <= u16::MAX as u32);
const _: () = assert!(FRAME_SIZE_BYTES_MIN <= FRAME_SIZE_BYTES_LIMIT);
// Frames are indexed with `usize`; 16 MiB fits every platform we build for.
const _: () = assert!(FRAME_SIZE_BYTES_LIMIT as u64 <= usize::MAX as u64);

/// The size of a batch's results frame when every result has the largest size.
pub(crate) const fn results_frame_size_bytes_max(batch_size_max: u32) -> u64 {
    (FRAME_HEADER_SIZE_BYTES + 4) as u64 + batch_size_max as u64 * WRITE_RESULT_SIZE_BYTES_MAX as u64
}

/// The limits a connection runs under, announced by the server in `HelloOk`. Both directions
/// obey them: a peer rejects a longer frame or a larger batch (or result list) as malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolLimits {
    frame_size_bytes_max: u32,
    batch_size_max: u32,
}

impl ProtocolLimits {
    /// 1 MiB frames, 8192 writes per batch.
    pub const DEFAULT: ProtocolLimits =
        ProtocolLimits { frame_size_bytes_max: 1024 * 1024, batch_size_max: 8192 };

    /// Validated limits.
    ///
    /// # Errors
    /// A value outside its range, or a batch whose results would not fit in one frame.
    pub fn new(frame_size_bytes_max: u32, batch_size_max: u32) -> Result<ProtocolLimits, LimitsError> {
        check_range(
            "frame_size_bytes_max",
            frame_size_bytes_max,
            FRAME_SIZE_BYTES_MIN,
            FRAME_SIZE_BYTES_LIMIT,
        )?;
        check_range("batch_size_max", batch_size_max, 1, BATCH_SIZE_LIMIT)?;
        let results_size_bytes = results_frame_size_bytes_max(batch_size_max);
        if results_size_bytes > u64::from(frame_size_bytes_max) {
            return Err(LimitsError::ResultsDoNotFit {
                batch_size_max,
                results_size_bytes,
                frame_size_bytes_max,
            });
        }
        Ok(ProtocolLimits { frame_size_bytes_max, batch_size_max })
    }

    /// The largest frame, length prefix included.
    pub fn frame_size_bytes_max(&self) -> u32 {
        self.frame_size_bytes_max
    }

    /// The most writes in one batch (and results in one `WriteResults`).
    pub fn batch_size_max(&self) -> u32 {
        self.batch_size_max
    }
}

impl Default for ProtocolLimits {
    fn default() -> ProtocolLimits {
        ProtocolLimits::DEFAULT
    }
}

// `DEFAULT` is built without `new`; prove here that `new` would accept it.
const _: () = assert!(ProtocolLimits::DEFAULT.frame_size_bytes_max >= FRAME_SIZE_BYTES_MIN);
const _: () = assert!(ProtocolLimits::DEFAULT.frame_size_bytes_max <= FRAME_SIZE_BYTES_LIMIT);
const _: () = assert!(ProtocolLimits::DEFAULT.batch_size_max >= 1);
const _: () = assert!(ProtocolLimits::DEFAULT.batch_size_max <= BATCH_SIZE_LIMIT);
const _: () = assert!(
    results_frame_size_bytes_max(ProtocolLimits::DEFAULT.batch_size_max)
        <= ProtocolLimits::DEFAULT.frame_size_bytes_max as u64
);

fn check_range(name: &'static str, value: u32, min: u32, max: u32) -> Result<(), LimitsError> {
    if value < min || value > max {
        return Err(LimitsError::OutOfRange { name, value, min, max });
    }
    Ok(())
}

/// Protocol limits that no peer may use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// A value outside its allowed range.
    #[error("{name} = {value} is outside the allowed range {min}..={max}")]
    OutOfRange {
        /// The limit.
        name: &'static str,
        /// Its value.
        value: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// The results of a full batch would not fit in one frame.
    #[error(
        "batch_size_max = {batch_size_max} needs results frames of up to {results_size_bytes} bytes, \
         more than frame_size_bytes_max = {frame_size_bytes_max}"
    )]
    ResultsDoNotFit {
        /// The batch limit.
        batch_size_max: u32,
        /// The largest results frame for such a batch.
        results_size_bytes: u64,
        /// The frame limit.
        frame_size_bytes_max: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::{
        BATCH_SIZE_LIMIT, FRAME_SIZE_BYTES_LIMIT, FRAME_SIZE_BYTES_MIN, LimitsError, ProtocolLimits,
        results_frame_size_bytes_max,
    };

    #[test]
    fn limits_at_their_bounds_are_accepted_and_beyond_rejected() {
        assert_eq!(ProtocolLimits::new(1024 * 1024, 8192), Ok(ProtocolLimits::DEFAULT));
        assert!(ProtocolLimits::new(FRAME_SIZE_BYTES_LIMIT, BATCH_SIZE_LIMIT).is_ok());
        assert!(ProtocolLimits::new(FRAME_SIZE_BYTES_MIN, 1).is_ok());
        assert!(matches!(
            ProtocolLimits::new(FRAME_SIZE_BYTES_MIN - 1, 1),
            Err(LimitsError::OutOfRange { name: "frame_size_bytes_max", .. })
        ));
        assert!(matches!(
            ProtocolLimits::new(FRAME_SIZE_BYTES_LIMIT + 1, 1),
            Err(LimitsError::OutOfRange { name: "frame_size_bytes_max", .. })
        ));
        assert!(matches!(
            ProtocolLimits::new(FRAME_SIZE_BYTES_LIMIT, 0),
            Err(LimitsError::OutOfRange { name: "batch_size_max", .. })
        ));
        assert!(matches!(
            ProtocolLimits::new(FRAME_SIZE_BYTES_LIMIT, BATCH_SIZE_LIMIT + 1),
            Err(LimitsError::OutOfRange { name: "batch_size_max", .. })
        ));
    }

    #[test]
    fn a_batch_whose_results_would_not_fit_is_rejected() {
        // The largest batch whose results fit in the smallest frame, and one more.
        let fitting = (1..=BATCH_SIZE_LIMIT)
            .take_while(|batch| results_frame_size_bytes_max(*batch) <= u64::from(FRAME_SIZE_BYTES_MIN))
            .last()
            .unwrap();
        assert!(ProtocolLimits::new(FRAME_SIZE_BYTES_MIN, fitting).is_ok());
        let error = ProtocolLimits::new(FRAME_SIZE_BYTES_MIN, fitting + 1).unwrap_err();
        assert!(matches!(error, LimitsError::ResultsDoNotFit { .. }), "{error}");
        assert!(error.to_string().contains(&format!("batch_size_max = {}", fitting + 1)));
    }
}
