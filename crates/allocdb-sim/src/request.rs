//! A simulated client's write: the engine request plus what the client meant by it, so the
//! checker knows which answers are acceptable.

use allocdb_core::{ClientId, LeaseId, OperationId, OperationKey, ResourceId};
use allocdb_engine::{OwnedCommand, WriteRequest};

/// What the client meant, which decides the answers the checker accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// An ordinary command with the client's best knowledge of holder and epoch.
    Normal,
    /// A lease command naming a holder that never holds anything: must not succeed.
    WrongHolder,
    /// A lease command with the right holder and an epoch that is never current: must not
    /// succeed (fencing).
    WrongEpoch,
    /// A lease command naming a lease that was never created: must read not found or retired.
    UnknownLease,
    /// A second delivery of an operation already answered: must return the original outcome
    /// from the retry cache.
    Duplicate,
    /// A second copy of an earlier request in the same group (a client that resent before its
    /// first copy was answered): both copies are logged, and at apply the second finds the
    /// first's record, so it must return the first's outcome from the retry cache.
    Echo,
}

/// One keyed write of a simulated client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRequest {
    /// The request handed to the engine; always carries an operation key.
    pub request: WriteRequest,
    /// What the client meant.
    pub intent: Intent,
    /// For a reserve, the TTL the client asked for in milliseconds (0 otherwise).
    pub ttl_ms: u64,
}

impl SimRequest {
    /// A keyed request.
    pub fn new(client_id: u128, operation_id: u128, command: OwnedCommand, intent: Intent) -> SimRequest {
        SimRequest {
            request: WriteRequest {
                operation: Some(OperationKey {
                    client_id: ClientId(client_id),
                    operation_id: OperationId(operation_id),
                }),
                command,
            },
            intent,
            ttl_ms: 0,
        }
    }

    /// A keyed reserve, remembering the TTL asked for.
    pub fn reserve(client_id: u128, operation_id: u128, command: OwnedCommand, ttl_ms: u64) -> SimRequest {
        SimRequest { ttl_ms, ..SimRequest::new(client_id, operation_id, command, Intent::Normal) }
    }

    /// The operation key. Every simulated request has one.
    pub fn key(&self) -> OperationKey {
        match self.request.operation {
            Some(key) => key,
            None => panic!("simulated requests always carry an operation key"),
        }
    }

    /// The command.
    pub fn command(&self) -> &OwnedCommand {
        &self.request.command
    }

    /// The lease a lease command names.
    pub fn lease_id(&self) -> Option<LeaseId> {
        match self.request.command {
            OwnedCommand::Activate { lease_id, .. }
            | OwnedCommand::Release { lease_id, .. }
            | OwnedCommand::Revoke { lease_id }
            | OwnedCommand::Reclaim { lease_id } => Some(lease_id),
            OwnedCommand::CreateResource { .. } | OwnedCommand::Reserve { .. } => None,
        }
    }

    /// The bundle of a reserve.
    pub fn bundle(&self) -> Option<&[ResourceId]> {
        match &self.request.command {
            OwnedCommand::Reserve { resource_ids, .. } => Some(resource_ids),
            _ => None,
        }
    }
}
