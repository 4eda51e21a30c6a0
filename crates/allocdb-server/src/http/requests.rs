//! Request bodies of the write routes, and their translation to engine commands.
//!
//! Every body refuses unknown fields (a misspelt `holder_id` must not silently become a
//! missing one) and every u128 id is a JSON string ([`ApiId`]). The translation refuses, before
//! anything reaches the log, the two requests the kernel never needs to see: a reserve naming
//! no resources (`empty_bundle`, 422) and one naming more than the kernel's hard bundle limit
//! (`too_large`, 413). A bundle between the configured `bundle_size_max` and that hard limit
//! goes to the kernel, which commits `bundle_too_large`.

use allocdb_core::{BUNDLE_SIZE_LIMIT, HolderId, LeaseId, ResourceId};
use allocdb_engine::OwnedCommand;
use serde::Deserialize;
use utoipa::ToSchema;

use super::answers::ApiError;
use super::ids::{ApiId, Bundle};

/// `POST /v1/resources`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(clippy::struct_field_names, reason = "the JSON field names are the contract")]
pub(crate) struct CreateResourceRequest {
    /// The new resource's id.
    pub(crate) resource_id: ApiId,
    /// Operation id for safe retries (or send the `Idempotency-Key` header).
    #[serde(default)]
    pub(crate) operation_id: Option<ApiId>,
    /// The client scoping the operation id (default `"0"`).
    #[serde(default)]
    pub(crate) client_id: Option<ApiId>,
}

/// `POST /v1/leases`: reserve a bundle.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReserveRequest {
    /// The bundle, all or nothing, in order.
    pub(crate) resource_ids: Bundle,
    /// The holder.
    pub(crate) holder_id: ApiId,
    /// How long the reservation lasts before it expires (rounded up to whole slots).
    pub(crate) ttl_ms: u64,
    /// Operation id for safe retries (or send the `Idempotency-Key` header).
    #[serde(default)]
    pub(crate) operation_id: Option<ApiId>,
    /// The client scoping the operation id (default `"0"`).
    #[serde(default)]
    pub(crate) client_id: Option<ApiId>,
}

/// `POST /v1/leases/{lease_id}/activate` and `/release`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HolderRequest {
    /// The lease's holder.
    pub(crate) holder_id: ApiId,
    /// The lease's current epoch (fencing token).
    pub(crate) lease_epoch: u64,
    /// Operation id for safe retries (or send the `Idempotency-Key` header).
    #[serde(default)]
    pub(crate) operation_id: Option<ApiId>,
    /// The client scoping the operation id (default `"0"`).
    #[serde(default)]
    pub(crate) client_id: Option<ApiId>,
}

/// `POST /v1/leases/{lease_id}/revoke` and `/reclaim` (operator commands): `{}` or keys only.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OperatorRequest {
    /// Operation id for safe retries (or send the `Idempotency-Key` header).
    #[serde(default)]
    pub(crate) operation_id: Option<ApiId>,
    /// The client scoping the operation id (default `"0"`).
    #[serde(default)]
    pub(crate) client_id: Option<ApiId>,
}

/// A batch command naming its lease: activate or release.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchHolderCommand {
    /// The lease.
    pub(crate) lease_id: ApiId,
    /// The lease's holder.
    pub(crate) holder_id: ApiId,
    /// The lease's current epoch.
    pub(crate) lease_epoch: u64,
    /// Operation id for safe retries.
    #[serde(default)]
    pub(crate) operation_id: Option<ApiId>,
    /// The client scoping the operation id (default `"0"`).
    #[serde(default)]
    pub(crate) client_id: Option<ApiId>,
}

/// A batch operator command: revoke or reclaim.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(clippy::struct_field_names, reason = "the JSON field names are the contract")]
pub(crate) struct BatchOperatorCommand {
    /// The lease.
    pub(crate) lease_id: ApiId,
    /// Operation id for safe retries.
    #[serde(default)]
    pub(crate) operation_id: Option<ApiId>,
    /// The client scoping the operation id (default `"0"`).
    #[serde(default)]
    pub(crate) client_id: Option<ApiId>,
}

/// One command of `POST /v1/batch`, tagged by `"op"`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum BatchCommand {
    /// Create a resource.
    CreateResource(CreateResourceRequest),
    /// Reserve a bundle.
    Reserve(ReserveRequest),
    /// Activate a reserved lease.
    Activate(BatchHolderCommand),
    /// Release a lease.
    Release(BatchHolderCommand),
    /// Revoke an active lease (operator).
    Revoke(BatchOperatorCommand),
    /// Reclaim a revoking lease (operator).
    Reclaim(BatchOperatorCommand),
}

/// `POST /v1/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    /// The commands, executed in order; one result each.
    pub(crate) commands: Vec<BatchCommand>,
}

/// A write ready for the engine, or refused at the edge, with the keys it names.
#[derive(Debug)]
pub(crate) struct Translated {
    /// The command's name for metrics (`create_resource`, `reserve`, ...).
    pub(crate) command_name: &'static str,
    /// The body's `operation_id`, if any.
    pub(crate) operation_id: Option<ApiId>,
    /// The body's `client_id`, if any.
    pub(crate) client_id: Option<ApiId>,
    /// The command, or why it never reaches the engine.
    pub(crate) command: Result<OwnedCommand, ApiError>,
}

/// Converts a client's `ttl_ms` to the kernel's TTL in slots (the node rounds up).
pub(crate) type TtlSlots<'a> = &'a dyn Fn(u64) -> u64;

impl CreateResourceRequest {
    pub(crate) fn translate(self) -> Translated {
        Translated {
            command_name: "create_resource",
            operation_id: self.operation_id,
            client_id: self.client_id,
            command: Ok(OwnedCommand::CreateResource { resource_id: ResourceId(self.resource_id.0) }),
        }
    }
}

impl ReserveRequest {
    pub(crate) fn translate(self, ttl_slots: TtlSlots<'_>) -> Translated {
        let command = if self.resource_ids.exceeds_limit() {
            Err(ApiError::too_large(format!(
                "The reserve names {} resources; no configuration accepts more than {BUNDLE_SIZE_LIMIT}.",
                self.resource_ids.member_count
            )))
        } else if self.resource_ids.resource_ids.is_empty() {
            Err(ApiError::empty_bundle())
        } else {
            Ok(OwnedCommand::Reserve {
                resource_ids: self.resource_ids.resource_ids,
                holder_id: HolderId(self.holder_id.0),
                ttl_slots: ttl_slots(self.ttl_ms),
            })
        };
        Translated {
            command_name: "reserve",
            operation_id: self.operation_id,
            client_id: self.client_id,
            command,
        }
    }
}

/// Which holder command a [`HolderRequest`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HolderAction {
    Activate,
    Release,
}

/// Which operator command an [`OperatorRequest`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OperatorAction {
    Revoke,
    Reclaim,
}

impl HolderRequest {
    pub(crate) fn translate(self, action: HolderAction, lease_id: u128) -> Translated {
        let (lease_id, holder_id, lease_epoch) =
            (LeaseId(lease_id), HolderId(self.holder_id.0), self.lease_epoch);
        let (command_name, command) = match action {
            HolderAction::Activate => {
                ("activate", OwnedCommand::Activate { lease_id, holder_id, lease_epoch })
            }
            HolderAction::Release => ("release", OwnedCommand::Release { lease_id, holder_id, lease_epoch }),
        };
        Translated {
            command_name,
            operation_id: self.operation_id,
            client_id: self.client_id,
            command: Ok(command),
        }
    }
}

impl OperatorRequest {
    pub(crate) fn translate(self, action: OperatorAction, lease_id: u128) -> Translated {
        let lease_id = LeaseId(lease_id);
        let (command_name, command) = match action {
            OperatorAction::Revoke => ("revoke", OwnedCommand::Revoke { lease_id }),
            OperatorAction::Reclaim => ("reclaim", OwnedCommand::Reclaim { lease_id }),
        };
        Translated {
            command_name,
            operation_id: self.operation_id,
            client_id: self.client_id,
            command: Ok(command),
        }
    }
}

impl BatchCommand {
    pub(crate) fn translate(self, ttl_slots: TtlSlots<'_>) -> Translated {
        match self {
            BatchCommand::CreateResource(request) => request.translate(),
            BatchCommand::Reserve(request) => request.translate(ttl_slots),
            BatchCommand::Activate(command) => command.translate(HolderAction::Activate),
            BatchCommand::Release(command) => command.translate(HolderAction::Release),
            BatchCommand::Revoke(command) => command.translate(OperatorAction::Revoke),
            BatchCommand::Reclaim(command) => command.translate(OperatorAction::Reclaim),
        }
    }
}

impl BatchHolderCommand {
    fn translate(self, action: HolderAction) -> Translated {
        let lease_id = self.lease_id.0;
        HolderRequest {
            holder_id: self.holder_id,
            lease_epoch: self.lease_epoch,
            operation_id: self.operation_id,
            client_id: self.client_id,
        }
        .translate(action, lease_id)
    }
}

impl BatchOperatorCommand {
    fn translate(self, action: OperatorAction) -> Translated {
        let lease_id = self.lease_id.0;
        OperatorRequest { operation_id: self.operation_id, client_id: self.client_id }
            .translate(action, lease_id)
    }
}

#[cfg(test)]
mod tests {
    use super::{BatchCommand, BatchRequest, ReserveRequest};

    #[test]
    fn unknown_fields_are_refused_in_bodies_and_batch_commands() {
        let error = serde_json::from_str::<ReserveRequest>(
            r#"{"resource_ids":["1"],"holder_id":"2","ttl_ms":5,"holder":"3"}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("unknown field `holder`"), "{error}");
        let error = serde_json::from_str::<BatchRequest>(
            r#"{"commands":[{"op":"revoke","lease_id":"1","epoch":2}]}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("unknown field `epoch`"), "{error}");
    }

    #[test]
    fn batch_commands_are_tagged_by_op() {
        let batch: BatchRequest = serde_json::from_str(
            r#"{"commands":[{"op":"create_resource","resource_id":"1"},
                {"op":"reserve","resource_ids":["1"],"holder_id":"2","ttl_ms":5,"operation_id":"9"}]}"#,
        )
        .unwrap();
        assert!(matches!(batch.commands[0], BatchCommand::CreateResource(_)));
        assert!(matches!(batch.commands[1], BatchCommand::Reserve(_)));
        assert!(serde_json::from_str::<BatchRequest>(r#"{"commands":[{"op":"explode"}]}"#).is_err());
    }
}
