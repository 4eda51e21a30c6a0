//! Translation between wire messages and the node's engine types. Pure; no I/O.
//!
//! The wire's rejection codes and the engine's share names, and every engine code has a wire
//! code with the same category, so a client sees exactly the class the engine decided.

use allocdb_core::{ClientId, ResourceView};
use allocdb_engine::{LeaseRead, OwnedCommand, ReadReply, WriteReply, WriteRequest};
use allocdb_protocol::{
    LeaseRecord, LeaseResult, RejectionCode, ResourceResult, Write, WriteCommand, WriteResult,
};

use crate::node::Node;

/// The engine request for a wire write; the TTL is converted from milliseconds to slots.
pub(crate) fn write_request(node: &Node, write: Write, connection_client_id: ClientId) -> WriteRequest {
    let operation = write.operation_key(connection_client_id);
    let command = match write.command {
        WriteCommand::CreateResource { resource_id } => OwnedCommand::CreateResource { resource_id },
        WriteCommand::Reserve { ttl_ms, holder_id, resource_ids } => {
            OwnedCommand::Reserve { resource_ids, holder_id, ttl_slots: node.ttl_slots_for_ms(ttl_ms) }
        }
        WriteCommand::Activate { lease_id, holder_id, lease_epoch } => {
            OwnedCommand::Activate { lease_id, holder_id, lease_epoch }
        }
        WriteCommand::Release { lease_id, holder_id, lease_epoch } => {
            OwnedCommand::Release { lease_id, holder_id, lease_epoch }
        }
        WriteCommand::Revoke { lease_id } => OwnedCommand::Revoke { lease_id },
        WriteCommand::Reclaim { lease_id } => OwnedCommand::Reclaim { lease_id },
    };
    WriteRequest { operation, command }
}

/// The wire code of an engine rejection.
pub(crate) fn rejection_code(code: allocdb_engine::RejectionCode) -> RejectionCode {
    use allocdb_engine::RejectionCode as Engine;
    match code {
        Engine::Malformed => RejectionCode::Malformed,
        Engine::TooLarge => RejectionCode::TooLarge,
        Engine::Overloaded => RejectionCode::Overloaded,
        Engine::SlotOverflow => RejectionCode::SlotOverflow,
        Engine::LsnExhausted => RejectionCode::LsnExhausted,
        Engine::StorageFailure => RejectionCode::StorageFailure,
        Engine::EngineHalted => RejectionCode::EngineHalted,
        Engine::ShuttingDown => RejectionCode::ShuttingDown,
        Engine::CommitTimeout => RejectionCode::CommitTimeout,
    }
}

/// The wire result of an engine reply.
pub(crate) fn write_result(reply: WriteReply) -> WriteResult {
    match reply {
        WriteReply::Committed(outcome) => WriteResult::Committed(outcome),
        WriteReply::Rejected(code) => WriteResult::Rejected(rejection_code(code)),
    }
}

/// The wire answer of a resource read.
pub(crate) fn resource_result(reply: &ReadReply<Option<ResourceView>>) -> ResourceResult {
    match *reply {
        ReadReply::Served { value: Some(resource), served_lsn } => {
            ResourceResult::Found { resource, served_lsn }
        }
        ReadReply::Served { value: None, served_lsn } => ResourceResult::NotFound { served_lsn },
        ReadReply::FenceNotApplied { applied_lsn } => ResourceResult::FenceNotApplied { applied_lsn },
        ReadReply::Halted => ResourceResult::Unavailable(RejectionCode::EngineHalted),
        ReadReply::Unavailable | ReadReply::TimedOut => {
            ResourceResult::Unavailable(RejectionCode::Overloaded)
        }
    }
}

/// The wire answer of a lease read.
pub(crate) fn lease_result(reply: ReadReply<LeaseRead>) -> LeaseResult {
    match reply {
        ReadReply::Served { value: LeaseRead::Found(lease), served_lsn } => LeaseResult::Found {
            lease: LeaseRecord {
                lease_id: lease.lease_id,
                holder_id: lease.holder_id,
                state: lease.state,
                lease_epoch: lease.lease_epoch,
                created_lsn: lease.created_lsn,
                deadline_slot: lease.deadline_slot,
                released_lsn: lease.released_lsn,
                retire_after_slot: lease.retire_after_slot,
                resource_ids: lease.resource_ids,
            },
            served_lsn,
        },
        ReadReply::Served { value: LeaseRead::NotFound, served_lsn } => LeaseResult::NotFound { served_lsn },
        ReadReply::Served { value: LeaseRead::Retired, served_lsn } => LeaseResult::Retired { served_lsn },
        ReadReply::FenceNotApplied { applied_lsn } => LeaseResult::FenceNotApplied { applied_lsn },
        ReadReply::Halted => LeaseResult::Unavailable(RejectionCode::EngineHalted),
        ReadReply::Unavailable | ReadReply::TimedOut => LeaseResult::Unavailable(RejectionCode::Overloaded),
    }
}

#[cfg(test)]
mod tests {
    use super::rejection_code;
    use allocdb_engine::RejectionCode as Engine;

    #[test]
    fn every_engine_rejection_keeps_its_name_and_category_on_the_wire() {
        for code in [
            Engine::Malformed,
            Engine::TooLarge,
            Engine::Overloaded,
            Engine::SlotOverflow,
            Engine::LsnExhausted,
            Engine::StorageFailure,
            Engine::EngineHalted,
            Engine::ShuttingDown,
            Engine::CommitTimeout,
        ] {
            let wire = rejection_code(code);
            assert_eq!(wire.as_str(), code.as_str());
            assert_eq!(wire.category().as_str(), code.category().as_str());
        }
    }
}
