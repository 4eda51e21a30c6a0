//! Client → server messages: their types, and the body codec (`docs/protocol.md` §5).
//!
//! Invariants: a body decodes only if every field is present, every flag bit and enumerated
//! byte is defined, and counts are within their limits and the bytes left; the internal
//! `expire` command is never accepted; a write can override the connection's client id only
//! together with an operation id (the type cannot express anything else). Encoding is canonical:
//! a decoded body re-encodes to exactly the same bytes.

#![deny(clippy::indexing_slicing)]

use allocdb_core::{
    BUNDLE_SIZE_LIMIT, ClientId, CommandKind, HolderId, LeaseId, Lsn, OperationId, OperationKey, ResourceId,
};

use crate::error::{Defect, EncodeError};
use crate::handshake::HELLO_MAGIC;
use crate::limits::{BATCH_SIZE_LIMIT, ProtocolLimits, WRITE_SIZE_BYTES_MIN};
use crate::wire::{Reader, put_u8, put_u16, put_u32, put_u64, put_u128};

pub(crate) const TAG_HELLO: u8 = 0x01;
pub(crate) const TAG_WRITE_BATCH: u8 = 0x02;
pub(crate) const TAG_GET_RESOURCE: u8 = 0x03;
pub(crate) const TAG_GET_LEASE: u8 = 0x04;
pub(crate) const TAG_STATUS: u8 = 0x05;
pub(crate) const TAG_PING: u8 = 0x06;

const WRITE_FLAG_OPERATION_ID: u8 = 1 << 0;
const WRITE_FLAG_CLIENT_ID: u8 = 1 << 1;

/// A message from a client to a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// The first frame of every connection.
    Hello(Hello),
    /// Writes to execute in order; answered by one `WriteResults` with one result per write.
    WriteBatch(Vec<Write>),
    /// Read one resource.
    GetResource {
        /// The resource.
        resource_id: ResourceId,
        /// Serve only once this lsn is applied (0: no fence).
        min_lsn: Lsn,
    },
    /// Read one lease.
    GetLease {
        /// The lease.
        lease_id: LeaseId,
        /// Serve only once this lsn is applied (0: no fence).
        min_lsn: Lsn,
    },
    /// The node's role, lsn, slot, table usage and health.
    Status,
    /// Liveness check; answered by `Pong`.
    Ping,
}

/// The client's half of the handshake. Its layout never changes between protocol versions, so
/// any server can read it and refuse a version it does not speak clearly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the client speaks.
    pub protocol_version: u16,
    /// The cluster the client expects to reach.
    pub cluster_id: u128,
    /// The client id that scopes this connection's operation ids, unless a write overrides it.
    pub client_id: ClientId,
}

/// One write of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The operation id that makes a retry safe; without it a retry may execute twice.
    pub operation: Option<WriteOperation>,
    /// The command.
    pub command: WriteCommand,
}

/// The idempotency key of a write, as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOperation {
    /// The client's id for this write.
    pub operation_id: OperationId,
    /// Overrides the connection's client id (from `Hello`) for this write.
    pub client_id: Option<ClientId>,
}

impl Write {
    /// The operation key of this write on a connection whose `Hello` named `connection_client_id`.
    pub fn operation_key(&self, connection_client_id: ClientId) -> Option<OperationKey> {
        self.operation.map(|operation| OperationKey {
            client_id: operation.client_id.unwrap_or(connection_client_id),
            operation_id: operation.operation_id,
        })
    }

    /// The encoded size of this write.
    pub fn encoded_size_bytes(&self) -> usize {
        let operation_size_bytes = match self.operation {
            None => 0,
            Some(WriteOperation { client_id: None, .. }) => 16,
            Some(WriteOperation { client_id: Some(_), .. }) => 32,
        };
        let fields_size_bytes = match &self.command {
            WriteCommand::CreateResource { .. }
            | WriteCommand::Revoke { .. }
            | WriteCommand::Reclaim { .. } => 16,
            WriteCommand::Reserve { resource_ids, .. } => 8 + 16 + 2 + 16 * resource_ids.len(),
            WriteCommand::Activate { .. } | WriteCommand::Release { .. } => 16 + 16 + 8,
        };
        1 + operation_size_bytes + 1 + fields_size_bytes
    }
}

/// A write command as clients send it. `expire` is internal and has no client form; reserve
/// carries a TTL in milliseconds, which the server converts to slots (rounding up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCommand {
    /// Create an `available` resource.
    CreateResource {
        /// The new resource.
        resource_id: ResourceId,
    },
    /// Reserve every resource of the bundle for `holder_id`, all or nothing.
    Reserve {
        /// Time until the reservation may expire.
        ttl_ms: u64,
        /// The holder of the new lease.
        holder_id: HolderId,
        /// The bundle, in the client's order (at most `BUNDLE_SIZE_LIMIT`).
        resource_ids: Vec<ResourceId>,
    },
    /// Turn a reserved lease into an active one.
    Activate {
        /// The lease.
        lease_id: LeaseId,
        /// Its holder.
        holder_id: HolderId,
        /// Its current epoch.
        lease_epoch: u64,
    },
    /// Give a reserved or active lease back.
    Release {
        /// The lease.
        lease_id: LeaseId,
        /// Its holder.
        holder_id: HolderId,
        /// Its current epoch.
        lease_epoch: u64,
    },
    /// Operator: withdraw an active lease's authority.
    Revoke {
        /// The lease.
        lease_id: LeaseId,
    },
    /// Operator: free the resources of a revoking lease.
    Reclaim {
        /// The lease.
        lease_id: LeaseId,
    },
}

impl WriteCommand {
    /// The kernel's command kind (never `Expire`).
    pub fn kind(&self) -> CommandKind {
        match self {
            WriteCommand::CreateResource { .. } => CommandKind::CreateResource,
            WriteCommand::Reserve { .. } => CommandKind::Reserve,
            WriteCommand::Activate { .. } => CommandKind::Activate,
            WriteCommand::Release { .. } => CommandKind::Release,
            WriteCommand::Revoke { .. } => CommandKind::Revoke,
            WriteCommand::Reclaim { .. } => CommandKind::Reclaim,
        }
    }
}

impl ClientMessage {
    pub(crate) fn tag(&self) -> u8 {
        match self {
            ClientMessage::Hello(_) => TAG_HELLO,
            ClientMessage::WriteBatch(_) => TAG_WRITE_BATCH,
            ClientMessage::GetResource { .. } => TAG_GET_RESOURCE,
            ClientMessage::GetLease { .. } => TAG_GET_LEASE,
            ClientMessage::Status => TAG_STATUS,
            ClientMessage::Ping => TAG_PING,
        }
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            ClientMessage::Hello(hello) => {
                out.extend_from_slice(&HELLO_MAGIC);
                put_u16(out, hello.protocol_version);
                put_u128(out, hello.cluster_id);
                put_u128(out, hello.client_id.0);
            }
            ClientMessage::WriteBatch(writes) => {
                let count = u32::try_from(writes.len())
                    .ok()
                    .filter(|count| *count <= BATCH_SIZE_LIMIT)
                    .ok_or(EncodeError::BatchTooLarge { count: writes.len(), limit: BATCH_SIZE_LIMIT })?;
                put_u32(out, count);
                for write in writes {
                    encode_write(write, out)?;
                }
            }
            ClientMessage::GetResource { resource_id, min_lsn } => {
                put_u128(out, resource_id.0);
                put_u64(out, *min_lsn);
            }
            ClientMessage::GetLease { lease_id, min_lsn } => {
                put_u128(out, lease_id.0);
                put_u64(out, *min_lsn);
            }
            ClientMessage::Status | ClientMessage::Ping => {}
        }
        Ok(())
    }

    pub(crate) fn decode_body(
        tag: u8,
        reader: &mut Reader<'_>,
        limits: ProtocolLimits,
    ) -> Result<Self, Defect> {
        match tag {
            TAG_HELLO => decode_hello(reader).map(ClientMessage::Hello),
            TAG_WRITE_BATCH => decode_batch(reader, limits).map(ClientMessage::WriteBatch),
            TAG_GET_RESOURCE => Ok(ClientMessage::GetResource {
                resource_id: ResourceId(reader.u128("resource_id")?),
                min_lsn: reader.u64("min_lsn")?,
            }),
            TAG_GET_LEASE => Ok(ClientMessage::GetLease {
                lease_id: LeaseId(reader.u128("lease_id")?),
                min_lsn: reader.u64("min_lsn")?,
            }),
            TAG_STATUS => Ok(ClientMessage::Status),
            TAG_PING => Ok(ClientMessage::Ping),
            tag => Err(Defect::UnknownTag { tag }),
        }
    }
}

fn encode_write(write: &Write, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let flags = match write.operation {
        None => 0,
        Some(WriteOperation { client_id: None, .. }) => WRITE_FLAG_OPERATION_ID,
        Some(WriteOperation { client_id: Some(_), .. }) => WRITE_FLAG_OPERATION_ID | WRITE_FLAG_CLIENT_ID,
    };
    put_u8(out, flags);
    if let Some(operation) = write.operation {
        put_u128(out, operation.operation_id.0);
        if let Some(client_id) = operation.client_id {
            put_u128(out, client_id.0);
        }
    }
    put_u8(out, write.command.kind() as u8);
    match &write.command {
        WriteCommand::CreateResource { resource_id } => put_u128(out, resource_id.0),
        WriteCommand::Reserve { ttl_ms, holder_id, resource_ids } => {
            put_u64(out, *ttl_ms);
            put_u128(out, holder_id.0);
            encode_members(resource_ids, out)?;
        }
        WriteCommand::Activate { lease_id, holder_id, lease_epoch }
        | WriteCommand::Release { lease_id, holder_id, lease_epoch } => {
            put_u128(out, lease_id.0);
            put_u128(out, holder_id.0);
            put_u64(out, *lease_epoch);
        }
        WriteCommand::Revoke { lease_id } | WriteCommand::Reclaim { lease_id } => put_u128(out, lease_id.0),
    }
    Ok(())
}

fn decode_hello(reader: &mut Reader<'_>) -> Result<Hello, Defect> {
    let offset = reader.offset();
    let magic = reader.array::<4>("hello magic")?;
    if magic != HELLO_MAGIC {
        return Err(Defect::BadMagic { offset, found: magic });
    }
    Ok(Hello {
        protocol_version: reader.u16("protocol_version")?,
        cluster_id: reader.u128("cluster_id")?,
        client_id: ClientId(reader.u128("client_id")?),
    })
}

fn decode_batch(reader: &mut Reader<'_>, limits: ProtocolLimits) -> Result<Vec<Write>, Defect> {
    let offset = reader.offset();
    let count = reader.u32("write count")?;
    let count = reader.check_count(
        "write count",
        offset,
        u64::from(count),
        u64::from(limits.batch_size_max()),
        WRITE_SIZE_BYTES_MIN,
    )?;
    let mut writes = Vec::with_capacity(count);
    for _ in 0..count {
        writes.push(decode_write(reader)?);
    }
    Ok(writes)
}

fn decode_write(reader: &mut Reader<'_>) -> Result<Write, Defect> {
    let flags_offset = reader.offset();
    let flags = reader.flags("write flags", WRITE_FLAG_OPERATION_ID | WRITE_FLAG_CLIENT_ID)?;
    let operation = match (flags & WRITE_FLAG_OPERATION_ID != 0, flags & WRITE_FLAG_CLIENT_ID != 0) {
        (false, false) => None,
        (false, true) => return Err(Defect::ClientIdWithoutOperationId { offset: flags_offset }),
        (true, has_client_id) => {
            let operation_id = OperationId(reader.u128("operation_id")?);
            let client_id = if has_client_id { Some(ClientId(reader.u128("client_id")?)) } else { None };
            Some(WriteOperation { operation_id, client_id })
        }
    };
    let kind_offset = reader.offset();
    let kind = reader.enumerated("command kind", CommandKind::from_u8)?;
    let command = match kind {
        CommandKind::CreateResource => {
            WriteCommand::CreateResource { resource_id: ResourceId(reader.u128("resource_id")?) }
        }
        CommandKind::Reserve => decode_reserve(reader)?,
        CommandKind::Activate => WriteCommand::Activate {
            lease_id: LeaseId(reader.u128("lease_id")?),
            holder_id: HolderId(reader.u128("holder_id")?),
            lease_epoch: reader.u64("lease_epoch")?,
        },
        CommandKind::Release => WriteCommand::Release {
            lease_id: LeaseId(reader.u128("lease_id")?),
            holder_id: HolderId(reader.u128("holder_id")?),
            lease_epoch: reader.u64("lease_epoch")?,
        },
        CommandKind::Revoke => WriteCommand::Revoke { lease_id: LeaseId(reader.u128("lease_id")?) },
        CommandKind::Reclaim => WriteCommand::Reclaim { lease_id: LeaseId(reader.u128("lease_id")?) },
        CommandKind::Expire => return Err(Defect::ExpireFromClient { offset: kind_offset }),
    };
    Ok(Write { operation, command })
}

fn decode_reserve(reader: &mut Reader<'_>) -> Result<WriteCommand, Defect> {
    let ttl_ms = reader.u64("ttl_ms")?;
    let holder_id = HolderId(reader.u128("holder_id")?);
    let resource_ids = decode_members(reader)?;
    Ok(WriteCommand::Reserve { ttl_ms, holder_id, resource_ids })
}

/// A u16 member count, at most [`BUNDLE_SIZE_LIMIT`], then that many u128 resource ids.
pub(crate) fn decode_members(reader: &mut Reader<'_>) -> Result<Vec<ResourceId>, Defect> {
    let offset = reader.offset();
    let count = reader.u16("member count")?;
    let count =
        reader.check_count("member count", offset, u64::from(count), u64::from(BUNDLE_SIZE_LIMIT), 16)?;
    let mut resource_ids = Vec::with_capacity(count);
    for _ in 0..count {
        resource_ids.push(ResourceId(reader.u128("resource_id")?));
    }
    Ok(resource_ids)
}

/// Writes a u16 member count and the members.
pub(crate) fn encode_members(resource_ids: &[ResourceId], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let count = u16::try_from(resource_ids.len())
        .ok()
        .filter(|count| u32::from(*count) <= BUNDLE_SIZE_LIMIT)
        .ok_or(EncodeError::BundleTooLarge { count: resource_ids.len(), limit: BUNDLE_SIZE_LIMIT })?;
    put_u16(out, count);
    for resource_id in resource_ids {
        put_u128(out, resource_id.0);
    }
    Ok(())
}
