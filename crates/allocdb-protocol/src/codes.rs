//! The enumerations the wire carries as one byte, with their stable numbers and names.
//!
//! Numbers are part of the protocol (`docs/protocol.md` §7): never reordered, never reused; new
//! values are appended. Every enumeration starts at 1, so a zeroed byte is never a valid value.
//! Kernel enumerations (`ResultCode`, `CommandKind`, `ResourceState`, `LeaseState`) are not
//! repeated here: the wire uses the kernel's own numbers.

macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$variant_doc:meta])* $variant:ident = $number:literal => $text:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum $name {
            $( $(#[$variant_doc])* $variant = $number, )+
        }

        impl $name {
            /// Every value, in numeric order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable snake_case name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value with stable number `number`, if any.
            pub fn from_u8(number: u8) -> Option<$name> {
                match number {
                    $( $number => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The stable number.
            pub fn as_u8(self) -> u8 {
                self as u8
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }
    };
}

/// Whether a rejected write may still take effect (semantics.md, "Idempotency and outcomes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionCategory {
    /// It was not executed and never will be.
    Definite,
    /// The node cannot say; retry with the same operation id to learn the outcome.
    Indefinite,
}

impl RejectionCategory {
    /// `definite` or `indefinite`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCategory::Definite => "definite",
            RejectionCategory::Indefinite => "indefinite",
        }
    }
}

wire_enum! {
    /// Why a write (or a read) was not served. Names match `allocdb_engine::RejectionCode`;
    /// each code always has the same [`RejectionCategory`].
    RejectionCode {
        /// Definite: the request could not be understood.
        Malformed = 1 => "malformed",
        /// Definite: the request exceeds a size bound.
        TooLarge = 2 => "too_large",
        /// Definite: the node's submission queue is full; retry later.
        Overloaded = 3 => "overloaded",
        /// Definite: the node's clock is beyond the largest slot.
        SlotOverflow = 4 => "slot_overflow",
        /// Definite: no lsn is left.
        LsnExhausted = 5 => "lsn_exhausted",
        /// Definite: this node is not the leader; send the write to the leader.
        NotLeader = 6 => "not_leader",
        /// Indefinite: the log write or sync failed while this write was in it.
        StorageFailure = 7 => "storage_failure",
        /// Indefinite: the engine halted after a storage failure.
        EngineHalted = 8 => "engine_halted",
        /// Indefinite: the node shut down before the write's outcome was known.
        ShuttingDown = 9 => "shutting_down",
        /// Indefinite: the write was not known to be committed within the server's deadline.
        CommitTimeout = 10 => "commit_timeout",
        /// Indefinite: the node lost leadership while the write was in flight.
        LeadershipLost = 11 => "leadership_lost",
    }
}

impl RejectionCode {
    /// The category this code always has.
    pub fn category(self) -> RejectionCategory {
        match self {
            RejectionCode::Malformed
            | RejectionCode::TooLarge
            | RejectionCode::Overloaded
            | RejectionCode::SlotOverflow
            | RejectionCode::LsnExhausted
            | RejectionCode::NotLeader => RejectionCategory::Definite,
            RejectionCode::StorageFailure
            | RejectionCode::EngineHalted
            | RejectionCode::ShuttingDown
            | RejectionCode::CommitTimeout
            | RejectionCode::LeadershipLost => RejectionCategory::Indefinite,
        }
    }
}

wire_enum! {
    /// Why a server refused a handshake.
    RefusalReason {
        /// The server does not speak the client's protocol version.
        VersionMismatch = 1 => "version_mismatch",
        /// The client expected a different cluster.
        ClusterMismatch = 2 => "cluster_mismatch",
        /// The server is at its connection limit.
        TooManyConnections = 3 => "too_many_connections",
        /// The server is shutting down.
        ShuttingDown = 4 => "shutting_down",
    }
}

wire_enum! {
    /// Why a server is closing a connection that broke the protocol.
    ProtocolErrorCode {
        /// A frame's length prefix is above the connection's frame limit.
        FrameTooLarge = 1 => "frame_too_large",
        /// A frame could not be decoded (truncated field, trailing bytes, unknown value,
        /// reserved bits, invalid UTF-8, bad magic...).
        MalformedFrame = 2 => "malformed_frame",
        /// A frame's tag is not a client message.
        UnknownMessage = 3 => "unknown_message",
        /// A count is above its limit (batch size, bundle size, message length).
        LimitExceeded = 4 => "limit_exceeded",
        /// A client sent the internal `expire` command.
        ExpireNotAllowed = 5 => "expire_not_allowed",
        /// The first frame of a connection was not `Hello`.
        HandshakeRequired = 6 => "handshake_required",
        /// A `Hello` after the handshake completed.
        UnexpectedHello = 7 => "unexpected_hello",
    }
}

wire_enum! {
    /// A node's role, as reported by `Status`.
    NodeRole {
        /// A single node, not part of a replicated cluster.
        Standalone = 1 => "standalone",
        /// The cluster leader: it sequences writes.
        Leader = 2 => "leader",
        /// A cluster follower.
        Follower = 3 => "follower",
        /// A cluster member campaigning for leadership.
        Candidate = 4 => "candidate",
    }
}

#[cfg(test)]
mod tests {
    use super::{NodeRole, ProtocolErrorCode, RefusalReason, RejectionCategory, RejectionCode};

    macro_rules! assert_numbers_round_trip {
        ($name:ident) => {
            for (index, value) in $name::ALL.iter().enumerate() {
                assert_eq!(usize::from(value.as_u8()), index + 1, "{value:?} is numbered by position from 1");
                assert_eq!($name::from_u8(value.as_u8()), Some(*value));
                assert_eq!(value.to_string(), value.as_str());
            }
            assert_eq!($name::from_u8(0), None);
            assert_eq!($name::from_u8($name::ALL.len() as u8 + 1), None);
        };
    }

    #[test]
    fn every_enumeration_is_numbered_densely_from_one() {
        assert_numbers_round_trip!(RejectionCode);
        assert_numbers_round_trip!(RefusalReason);
        assert_numbers_round_trip!(ProtocolErrorCode);
        assert_numbers_round_trip!(NodeRole);
    }

    #[test]
    fn rejection_categories_follow_semantics() {
        let definite: Vec<&str> = RejectionCode::ALL
            .iter()
            .filter(|code| code.category() == RejectionCategory::Definite)
            .map(|code| code.as_str())
            .collect();
        assert_eq!(
            definite,
            ["malformed", "too_large", "overloaded", "slot_overflow", "lsn_exhausted", "not_leader"]
        );
    }
}
