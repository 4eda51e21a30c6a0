//! Shared test material: proptest strategies for every message type, one hand-built sample of
//! every message variant, and small frame helpers.
//!
//! Strategies cover every variant and every optional field, the extreme integer values (any
//! u64/u128), strings with arbitrary Unicode up to the message limit, and bundles from empty to
//! [`BUNDLE_SIZE_LIMIT`] members (large ones rarely, to keep cases fast).

use allocdb_core::{
    BUNDLE_SIZE_LIMIT, ClientId, HolderId, KernelUsage, LeaseId, LeaseState, OperationId, Outcome,
    ResourceId, ResourceState, ResourceView, ResultCode, TableUsage,
};
use allocdb_protocol::{
    ClientMessage, HelloOk, HelloRefused, LeaseRecord, LeaseResult, NodeRole, ProtocolError,
    ProtocolErrorCode, RefusalReason, RejectionCode, ResourceResult, ServerMessage, StatusResult, Write,
    WriteCommand, WriteOperation, WriteResult, encode_client, encode_server,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

const LEASE_STATES: [LeaseState; 6] = [
    LeaseState::Reserved,
    LeaseState::Active,
    LeaseState::Revoking,
    LeaseState::Released,
    LeaseState::Expired,
    LeaseState::Revoked,
];
const RESOURCE_STATES: [ResourceState; 4] =
    [ResourceState::Available, ResourceState::Reserved, ResourceState::Active, ResourceState::Revoking];

pub fn client_frame(message: &ClientMessage, request_id: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let size_bytes = encode_client(message, request_id, &mut bytes).unwrap();
    assert_eq!(size_bytes, bytes.len());
    bytes
}

pub fn server_frame(message: &ServerMessage, request_id: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let size_bytes = encode_server(message, request_id, &mut bytes).unwrap();
    assert_eq!(size_bytes, bytes.len());
    bytes
}

/// `frame` with its body cut to `body_length` bytes and the length prefix rewritten to match,
/// so the decoder sees a complete frame whose fields run out.
pub fn with_body_length(frame: &[u8], body_length: usize) -> Vec<u8> {
    let mut bytes = frame[..13 + body_length].to_vec();
    let length = u32::try_from(bytes.len() - 4).unwrap();
    bytes[..4].copy_from_slice(&length.to_le_bytes());
    bytes
}

/// `frame` with `extra` appended inside the frame (length prefix rewritten).
pub fn with_extra_body(frame: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut bytes = frame.to_vec();
    bytes.extend_from_slice(extra);
    let length = u32::try_from(bytes.len() - 4).unwrap();
    bytes[..4].copy_from_slice(&length.to_le_bytes());
    bytes
}

/// A frame with `tag`, `request_id` and a raw `body`.
pub fn raw_frame(tag: u8, request_id: u64, body: &[u8]) -> Vec<u8> {
    let mut bytes = u32::try_from(9 + body.len()).unwrap().to_le_bytes().to_vec();
    bytes.push(tag);
    bytes.extend_from_slice(&request_id.to_le_bytes());
    bytes.extend_from_slice(body);
    bytes
}

fn id() -> impl Strategy<Value = u128> {
    prop_oneof![Just(0), Just(u128::MAX), 1..1000_u128, any::<u128>()]
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(u64::MAX), 1..1000_u64, any::<u64>()]
}

pub fn resource_ids() -> impl Strategy<Value = Vec<ResourceId>> {
    let limit = BUNDLE_SIZE_LIMIT as usize;
    prop_oneof![
        20 => vec(id().prop_map(ResourceId), 0..=4),
        1 => vec(id().prop_map(ResourceId), limit - 1..=limit),
    ]
}

pub fn message_text() -> impl Strategy<Value = String> {
    prop_oneof![8 => "(?s).{0,40}", 1 => "[a-zé]{2040,2048}"]
}

pub fn write_command() -> impl Strategy<Value = WriteCommand> {
    prop_oneof![
        id().prop_map(|id| WriteCommand::CreateResource { resource_id: ResourceId(id) }),
        (number(), id(), resource_ids()).prop_map(|(ttl_ms, holder, resource_ids)| WriteCommand::Reserve {
            ttl_ms,
            holder_id: HolderId(holder),
            resource_ids
        }),
        (id(), id(), number()).prop_map(|(lease, holder, lease_epoch)| WriteCommand::Activate {
            lease_id: LeaseId(lease),
            holder_id: HolderId(holder),
            lease_epoch
        }),
        (id(), id(), number()).prop_map(|(lease, holder, lease_epoch)| WriteCommand::Release {
            lease_id: LeaseId(lease),
            holder_id: HolderId(holder),
            lease_epoch
        }),
        id().prop_map(|lease| WriteCommand::Revoke { lease_id: LeaseId(lease) }),
        id().prop_map(|lease| WriteCommand::Reclaim { lease_id: LeaseId(lease) }),
    ]
}

pub fn write() -> impl Strategy<Value = Write> {
    let operation = option::of((id(), option::of(id()))).prop_map(|operation| {
        operation.map(|(operation_id, client_id)| WriteOperation {
            operation_id: OperationId(operation_id),
            client_id: client_id.map(ClientId),
        })
    });
    (operation, write_command()).prop_map(|(operation, command)| Write { operation, command })
}

pub fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (any::<u16>(), id(), id()).prop_map(|(protocol_version, cluster_id, client_id)| {
            ClientMessage::Hello(allocdb_protocol::Hello {
                protocol_version,
                cluster_id,
                client_id: ClientId(client_id),
            })
        }),
        vec(write(), 0..8).prop_map(ClientMessage::WriteBatch),
        (id(), number())
            .prop_map(|(id, min_lsn)| ClientMessage::GetResource { resource_id: ResourceId(id), min_lsn }),
        (id(), number()).prop_map(|(id, min_lsn)| ClientMessage::GetLease { lease_id: LeaseId(id), min_lsn }),
        Just(ClientMessage::Status),
        Just(ClientMessage::Ping),
    ]
}

pub fn rejection_code() -> impl Strategy<Value = RejectionCode> {
    select(RejectionCode::ALL)
}

pub fn outcome() -> impl Strategy<Value = Outcome> {
    (
        select(ResultCode::ALL.to_vec()),
        number(),
        any::<bool>(),
        option::of(id().prop_map(LeaseId)),
        option::of(number()),
        option::of(number()),
    )
        .prop_map(|(result, applied_lsn, from_retry_cache, lease_id, lease_epoch, deadline_slot)| {
            Outcome { result, applied_lsn, from_retry_cache, lease_id, lease_epoch, deadline_slot }
        })
}

pub fn write_result() -> impl Strategy<Value = WriteResult> {
    prop_oneof![outcome().prop_map(WriteResult::Committed), rejection_code().prop_map(WriteResult::Rejected)]
}

pub fn resource_result() -> impl Strategy<Value = ResourceResult> {
    let resource = (id(), select(RESOURCE_STATES.to_vec()), option::of(id().prop_map(LeaseId)), number())
        .prop_map(|(id, state, current_lease_id, version)| ResourceView {
            resource_id: ResourceId(id),
            state,
            current_lease_id,
            version,
        });
    prop_oneof![
        (resource, number())
            .prop_map(|(resource, served_lsn)| ResourceResult::Found { resource, served_lsn }),
        number().prop_map(|served_lsn| ResourceResult::NotFound { served_lsn }),
        number().prop_map(|applied_lsn| ResourceResult::FenceNotApplied { applied_lsn }),
        rejection_code().prop_map(ResourceResult::Unavailable),
    ]
}

pub fn lease_record() -> impl Strategy<Value = LeaseRecord> {
    (
        (id(), id(), select(LEASE_STATES.to_vec()), number(), number()),
        (option::of(number()), option::of(number()), option::of(number()), resource_ids()),
    )
        .prop_map(
            |(
                (lease_id, holder_id, state, lease_epoch, created_lsn),
                (deadline_slot, released_lsn, retire_after_slot, resource_ids),
            )| LeaseRecord {
                lease_id: LeaseId(lease_id),
                holder_id: HolderId(holder_id),
                state,
                lease_epoch,
                created_lsn,
                deadline_slot,
                released_lsn,
                retire_after_slot,
                resource_ids,
            },
        )
}

pub fn lease_result() -> impl Strategy<Value = LeaseResult> {
    prop_oneof![
        (lease_record(), number()).prop_map(|(lease, served_lsn)| LeaseResult::Found { lease, served_lsn }),
        number().prop_map(|served_lsn| LeaseResult::NotFound { served_lsn }),
        number().prop_map(|served_lsn| LeaseResult::Retired { served_lsn }),
        number().prop_map(|applied_lsn| LeaseResult::FenceNotApplied { applied_lsn }),
        rejection_code().prop_map(LeaseResult::Unavailable),
    ]
}

fn table_usage() -> impl Strategy<Value = TableUsage> {
    (number(), number()).prop_map(|(used, capacity)| TableUsage { used, capacity })
}

pub fn status_result() -> impl Strategy<Value = StatusResult> {
    let usage = (table_usage(), table_usage(), table_usage(), table_usage(), table_usage()).prop_map(
        |(resources, leases, lease_members, operations, expirations)| KernelUsage {
            resources,
            leases,
            lease_members,
            operations,
            expirations,
        },
    );
    (number(), select(NodeRole::ALL), number(), number(), usage, any::<bool>()).prop_map(
        |(node_id, role, applied_lsn, current_slot, usage, healthy)| StatusResult {
            node_id,
            role,
            applied_lsn,
            current_slot,
            usage,
            healthy,
        },
    )
}

pub fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        (any::<u16>(), id(), number(), any::<u32>(), any::<u32>()).prop_map(
            |(protocol_version, cluster_id, node_id, frame_size_bytes_max, batch_size_max)| {
                ServerMessage::HelloOk(HelloOk {
                    protocol_version,
                    cluster_id,
                    node_id,
                    frame_size_bytes_max,
                    batch_size_max,
                })
            }
        ),
        (select(RefusalReason::ALL), message_text())
            .prop_map(|(reason, message)| ServerMessage::HelloRefused(HelloRefused { reason, message })),
        vec(write_result(), 0..8).prop_map(ServerMessage::WriteResults),
        resource_result().prop_map(ServerMessage::Resource),
        lease_result().prop_map(ServerMessage::Lease),
        status_result().prop_map(ServerMessage::Status),
        Just(ServerMessage::Pong),
        (select(ProtocolErrorCode::ALL), message_text())
            .prop_map(|(code, message)| ServerMessage::ProtocolError(ProtocolError { code, message })),
    ]
}

/// One client message of every variant, every command kind and every write flag combination.
pub fn sample_client_messages() -> Vec<ClientMessage> {
    let lease_id = LeaseId::new(0, 9);
    let commands = vec![
        WriteCommand::CreateResource { resource_id: ResourceId(7) },
        WriteCommand::Reserve {
            ttl_ms: 30_000,
            holder_id: HolderId(42),
            resource_ids: vec![ResourceId(7), ResourceId(8)],
        },
        WriteCommand::Reserve { ttl_ms: 1, holder_id: HolderId(42), resource_ids: vec![] },
        WriteCommand::Activate { lease_id, holder_id: HolderId(42), lease_epoch: 1 },
        WriteCommand::Release { lease_id, holder_id: HolderId(42), lease_epoch: 2 },
        WriteCommand::Revoke { lease_id },
        WriteCommand::Reclaim { lease_id },
    ];
    let operations = [
        None,
        Some(WriteOperation { operation_id: OperationId(5), client_id: None }),
        Some(WriteOperation { operation_id: OperationId(6), client_id: Some(ClientId(77)) }),
    ];
    let mut messages = vec![
        ClientMessage::Hello(allocdb_protocol::Hello::new(0xA110C, ClientId(1001))),
        ClientMessage::GetResource { resource_id: ResourceId(7), min_lsn: 3 },
        ClientMessage::GetLease { lease_id, min_lsn: 0 },
        ClientMessage::Status,
        ClientMessage::Ping,
        ClientMessage::WriteBatch(vec![]),
    ];
    for command in commands {
        for operation in operations {
            messages.push(ClientMessage::WriteBatch(vec![Write { operation, command: command.clone() }]));
        }
    }
    messages
}

/// One server message of every variant, and every optional field present and absent.
pub fn sample_server_messages() -> Vec<ServerMessage> {
    let lease_id = LeaseId::new(0, 9);
    let full = Outcome {
        result: ResultCode::Ok,
        applied_lsn: 9,
        from_retry_cache: true,
        lease_id: Some(lease_id),
        lease_epoch: Some(1),
        deadline_slot: Some(3001),
    };
    let bare =
        Outcome { from_retry_cache: false, lease_id: None, lease_epoch: None, deadline_slot: None, ..full };
    let lease = LeaseRecord {
        lease_id,
        holder_id: HolderId(42),
        state: LeaseState::Released,
        lease_epoch: 2,
        created_lsn: 9,
        deadline_slot: Some(3001),
        released_lsn: Some(12),
        retire_after_slot: Some(9000),
        resource_ids: vec![ResourceId(7), ResourceId(8)],
    };
    let bare_lease = LeaseRecord {
        deadline_slot: None,
        released_lsn: None,
        retire_after_slot: None,
        resource_ids: vec![],
        ..lease.clone()
    };
    let resource = ResourceView {
        resource_id: ResourceId(7),
        state: ResourceState::Reserved,
        current_lease_id: Some(lease_id),
        version: 2,
    };
    let usage = TableUsage { used: 3, capacity: 1024 };
    vec![
        ServerMessage::HelloOk(HelloOk {
            protocol_version: 1,
            cluster_id: 0xA110C,
            node_id: 1,
            frame_size_bytes_max: 1 << 20,
            batch_size_max: 8192,
        }),
        ServerMessage::HelloRefused(HelloRefused {
            reason: RefusalReason::ClusterMismatch,
            message: "wrong cluster ✗".into(),
        }),
        ServerMessage::WriteResults(vec![
            WriteResult::Committed(full),
            WriteResult::Committed(bare),
            WriteResult::Rejected(RejectionCode::Overloaded),
            WriteResult::Rejected(RejectionCode::StorageFailure),
        ]),
        ServerMessage::WriteResults(vec![]),
        ServerMessage::Resource(ResourceResult::Found { resource, served_lsn: 12 }),
        ServerMessage::Resource(ResourceResult::Found {
            resource: ResourceView { state: ResourceState::Available, current_lease_id: None, ..resource },
            served_lsn: 12,
        }),
        ServerMessage::Resource(ResourceResult::NotFound { served_lsn: 12 }),
        ServerMessage::Resource(ResourceResult::FenceNotApplied { applied_lsn: 11 }),
        ServerMessage::Resource(ResourceResult::Unavailable(RejectionCode::EngineHalted)),
        ServerMessage::Lease(LeaseResult::Found { lease, served_lsn: 12 }),
        ServerMessage::Lease(LeaseResult::Found { lease: bare_lease, served_lsn: 12 }),
        ServerMessage::Lease(LeaseResult::NotFound { served_lsn: 12 }),
        ServerMessage::Lease(LeaseResult::Retired { served_lsn: 12 }),
        ServerMessage::Lease(LeaseResult::FenceNotApplied { applied_lsn: 11 }),
        ServerMessage::Lease(LeaseResult::Unavailable(RejectionCode::NotLeader)),
        ServerMessage::Status(StatusResult {
            node_id: 1,
            role: NodeRole::Standalone,
            applied_lsn: 12,
            current_slot: 170_000,
            usage: KernelUsage {
                resources: usage,
                leases: usage,
                lease_members: usage,
                operations: usage,
                expirations: usage,
            },
            healthy: true,
        }),
        ServerMessage::Pong,
        ServerMessage::ProtocolError(ProtocolError {
            code: ProtocolErrorCode::MalformedFrame,
            message: String::new(),
        }),
    ]
}
