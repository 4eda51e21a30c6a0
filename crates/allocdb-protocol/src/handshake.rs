//! The connection handshake: protocol constants and the server's decision to refuse a `Hello`.
//!
//! The first client frame of every connection is `Hello`; the server answers `HelloOk` (and
//! the connection then runs under the announced limits) or `HelloRefused` and closes. The
//! `Hello` and `HelloRefused` layouts are frozen across protocol versions so that peers of
//! different versions always understand the refusal (`docs/protocol.md` §3). Checks run in a
//! fixed order — version, then cluster — because a peer of another version may give the cluster
//! id a different meaning.

use crate::client::Hello;
use crate::codes::RefusalReason;
use crate::server::HelloRefused;
use allocdb_core::ClientId;

/// The first four bytes of every `Hello` body: `"ALDB"`.
pub const HELLO_MAGIC: [u8; 4] = *b"ALDB";

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

impl Hello {
    /// A `Hello` for this crate's [`PROTOCOL_VERSION`].
    pub fn new(cluster_id: u128, client_id: ClientId) -> Hello {
        Hello { protocol_version: PROTOCOL_VERSION, cluster_id, client_id }
    }
}

/// What a server accepts in a `Hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloPolicy {
    /// The only cluster id the server answers to.
    pub cluster_id: u128,
    /// The only protocol version the server speaks.
    pub protocol_version: u16,
}

impl HelloPolicy {
    /// A policy for `cluster_id` and this crate's [`PROTOCOL_VERSION`].
    pub fn new(cluster_id: u128) -> HelloPolicy {
        HelloPolicy { cluster_id, protocol_version: PROTOCOL_VERSION }
    }

    /// The refusal for `hello`, if it is to be refused: a different protocol version first, then
    /// a different cluster id. Connection limits and shutdown are the server's to add.
    pub fn refusal(&self, hello: &Hello) -> Option<HelloRefused> {
        if hello.protocol_version != self.protocol_version {
            return Some(HelloRefused {
                reason: RefusalReason::VersionMismatch,
                message: format!(
                    "protocol version {} is not supported; this server speaks version {}",
                    hello.protocol_version, self.protocol_version
                ),
            });
        }
        if hello.cluster_id != self.cluster_id {
            return Some(HelloRefused {
                reason: RefusalReason::ClusterMismatch,
                message: format!(
                    "cluster id {:#034x} was expected by the client, but this server belongs to cluster {:#034x}",
                    hello.cluster_id, self.cluster_id
                ),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{HelloPolicy, PROTOCOL_VERSION};
    use crate::client::Hello;
    use crate::codes::RefusalReason;
    use crate::limits::MESSAGE_SIZE_BYTES_MAX;
    use allocdb_core::ClientId;

    #[test]
    fn matching_hello_is_accepted() {
        assert_eq!(HelloPolicy::new(7).refusal(&Hello::new(7, ClientId(1))), None);
    }

    #[test]
    fn version_is_checked_before_cluster() {
        let policy = HelloPolicy::new(7);
        let hello = Hello { protocol_version: PROTOCOL_VERSION + 1, cluster_id: 8, client_id: ClientId(1) };
        let refusal = policy.refusal(&hello).unwrap();
        assert_eq!(refusal.reason, RefusalReason::VersionMismatch);
        assert_eq!(refusal.message, "protocol version 2 is not supported; this server speaks version 1");
    }

    #[test]
    fn other_cluster_is_refused_with_both_ids() {
        let refusal = HelloPolicy::new(7).refusal(&Hello::new(u128::MAX, ClientId(1))).unwrap();
        assert_eq!(refusal.reason, RefusalReason::ClusterMismatch);
        assert!(refusal.message.contains("0xffffffffffffffffffffffffffffffff"), "{}", refusal.message);
        assert!(refusal.message.contains("0x00000000000000000000000000000007"), "{}", refusal.message);
        assert!(refusal.message.len() <= MESSAGE_SIZE_BYTES_MAX);
    }
}
