//! A plain reference model of the lease kernel, written from `shared/spec/semantics.md` and
//! `docs/semantics-decisions.md` rather than from the kernel's code.
//!
//! It keeps the whole state in `BTreeMap`s and `VecDeque`s and recomputes everything by brute
//! force: no hashing, no timing wheel, no intrusive lists. Where the kernel keeps an index, the
//! model scans. It mirrors every observable rule of the decisions page:
//! - the order of checks of every command (first failing check decides the result);
//! - epochs (`release`, `expire`, `revoke` add one; `activate`, `reclaim` keep it) and resource
//!   versions (1 at creation, one more per state change);
//! - the dedupe window, deciding "same command" by comparing the commands themselves (the
//!   kernel compares 64-bit fingerprints of every field, which is equivalent up to collisions);
//! - lazy bounded maintenance before each command: at most two expired operation records
//!   dropped oldest first, then at most two retirable terminal leases dropped in termination
//!   order, raising the retired watermark;
//! - every capacity bound, including the timing-wheel bucket length, where a bucket is
//!   `deadline_slot / expiration_bucket_slots` modulo `expiration_bucket_count` and counts the
//!   reserved leases whose deadline falls in it.
//!
//! The model must stay obviously correct: when it and the kernel disagree, the docs decide which
//! one is wrong, so every rule here cites the behaviour it implements and nothing is clever.

use std::collections::{BTreeMap, VecDeque};

use allocdb_core::{
    Command, DueLease, HolderId, KernelConfig, LeaseId, LeaseLookup, LeaseState, LogPosition, Lsn,
    OperationKey, Outcome, ResourceId, ResourceState, ResourceView, ResultCode, Slot,
};

/// Expired operation records and retirable leases dropped before each command (the decisions
/// page fixes this at two each; it is part of the contract because it decides table counts).
const MAINTENANCE_STEPS_PER_COMMAND: usize = 2;

/// A command that owns its bundle, so the test driver can keep a log of them and the model can
/// compare a retry with the original command field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedCommand {
    /// See [`Command::CreateResource`].
    CreateResource { resource_id: ResourceId },
    /// See [`Command::Reserve`].
    Reserve { resource_ids: Vec<ResourceId>, holder_id: HolderId, ttl_slots: u64 },
    /// See [`Command::Activate`].
    Activate { lease_id: LeaseId, holder_id: HolderId, lease_epoch: u64 },
    /// See [`Command::Release`].
    Release { lease_id: LeaseId, holder_id: HolderId, lease_epoch: u64 },
    /// See [`Command::Revoke`].
    Revoke { lease_id: LeaseId },
    /// See [`Command::Reclaim`].
    Reclaim { lease_id: LeaseId },
    /// See [`Command::Expire`].
    Expire { lease_id: LeaseId, deadline_slot: Slot },
}

impl OwnedCommand {
    /// The kernel's borrowed form of this command.
    pub fn as_command(&self) -> Command<'_> {
        match self {
            OwnedCommand::CreateResource { resource_id } => {
                Command::CreateResource { resource_id: *resource_id }
            }
            OwnedCommand::Reserve { resource_ids, holder_id, ttl_slots } => {
                Command::Reserve { resource_ids, holder_id: *holder_id, ttl_slots: *ttl_slots }
            }
            OwnedCommand::Activate { lease_id, holder_id, lease_epoch } => {
                Command::Activate { lease_id: *lease_id, holder_id: *holder_id, lease_epoch: *lease_epoch }
            }
            OwnedCommand::Release { lease_id, holder_id, lease_epoch } => {
                Command::Release { lease_id: *lease_id, holder_id: *holder_id, lease_epoch: *lease_epoch }
            }
            OwnedCommand::Revoke { lease_id } => Command::Revoke { lease_id: *lease_id },
            OwnedCommand::Reclaim { lease_id } => Command::Reclaim { lease_id: *lease_id },
            OwnedCommand::Expire { lease_id, deadline_slot } => {
                Command::Expire { lease_id: *lease_id, deadline_slot: *deadline_slot }
            }
        }
    }

    /// The lease this command names, if it is a lease command.
    pub fn lease_id(&self) -> Option<LeaseId> {
        match self {
            OwnedCommand::CreateResource { .. } | OwnedCommand::Reserve { .. } => None,
            OwnedCommand::Activate { lease_id, .. }
            | OwnedCommand::Release { lease_id, .. }
            | OwnedCommand::Revoke { lease_id }
            | OwnedCommand::Reclaim { lease_id }
            | OwnedCommand::Expire { lease_id, .. } => Some(*lease_id),
        }
    }
}

/// A lease as a read shows it, owned, so kernel and model answers compare with `==`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedLeaseView {
    pub lease_id: LeaseId,
    pub holder_id: HolderId,
    pub state: LeaseState,
    pub lease_epoch: u64,
    pub created_lsn: Lsn,
    pub deadline_slot: Option<Slot>,
    pub released_lsn: Option<Lsn>,
    pub retire_after_slot: Option<Slot>,
    pub resource_ids: Vec<ResourceId>,
}

/// The answer to a lease read, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedLeaseLookup {
    Found(OwnedLeaseView),
    NotFound,
    Retired,
}

impl OwnedLeaseLookup {
    /// Copies the kernel's borrowed answer.
    pub fn from_kernel(lookup: &LeaseLookup<'_>) -> OwnedLeaseLookup {
        match lookup {
            LeaseLookup::NotFound => OwnedLeaseLookup::NotFound,
            LeaseLookup::Retired => OwnedLeaseLookup::Retired,
            LeaseLookup::Found(view) => OwnedLeaseLookup::Found(OwnedLeaseView {
                lease_id: view.lease_id,
                holder_id: view.holder_id,
                state: view.state,
                lease_epoch: view.lease_epoch,
                created_lsn: view.created_lsn,
                deadline_slot: view.deadline_slot,
                released_lsn: view.released_lsn,
                retire_after_slot: view.retire_after_slot,
                resource_ids: view.resource_ids().collect(),
            }),
        }
    }

    /// The view, when found.
    pub fn found(&self) -> Option<&OwnedLeaseView> {
        match self {
            OwnedLeaseLookup::Found(view) => Some(view),
            OwnedLeaseLookup::NotFound | OwnedLeaseLookup::Retired => None,
        }
    }
}

/// Entries in use per table, as `Kernel::usage` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelUsage {
    pub resources: u64,
    pub leases: u64,
    pub lease_members: u64,
    pub operations: u64,
    pub expirations: u64,
}

#[derive(Clone, Debug)]
struct ModelResource {
    state: ResourceState,
    /// The lsn of the live lease holding it.
    lease_lsn: Option<Lsn>,
    version: u64,
}

#[derive(Clone, Debug)]
struct ModelLease {
    holder_id: HolderId,
    state: LeaseState,
    lease_epoch: u64,
    deadline_slot: Slot,
    terminal_lsn: Option<Lsn>,
    retire_after_slot: Option<Slot>,
    resource_ids: Vec<ResourceId>,
}

#[derive(Clone, Debug)]
struct ModelOperation {
    key: OperationKey,
    command: OwnedCommand,
    request_slot: Slot,
    outcome: Outcome,
}

/// The reference model. See the module documentation.
pub struct Model {
    config: KernelConfig,
    last_applied_lsn: Lsn,
    last_request_slot: Slot,
    retired_watermark: Lsn,
    resources: BTreeMap<ResourceId, ModelResource>,
    /// Stored leases (live, and terminal ones not yet dropped), by creating lsn.
    leases: BTreeMap<Lsn, ModelLease>,
    /// Terminal leases not yet dropped, in the order they became terminal.
    retirement_queue: VecDeque<Lsn>,
    /// Operation records not yet dropped, oldest first (expired ones included until dropped).
    operations: VecDeque<ModelOperation>,
}

fn is_live(state: LeaseState) -> bool {
    match state {
        LeaseState::Reserved | LeaseState::Active | LeaseState::Revoking => true,
        LeaseState::Released | LeaseState::Expired | LeaseState::Revoked => false,
    }
}

fn failure(result: ResultCode, applied_lsn: Lsn) -> Outcome {
    Outcome {
        result,
        applied_lsn,
        from_retry_cache: false,
        lease_id: None,
        lease_epoch: None,
        deadline_slot: None,
    }
}

impl Model {
    pub fn new(config: KernelConfig) -> Model {
        Model {
            config,
            last_applied_lsn: 0,
            last_request_slot: 0,
            retired_watermark: 0,
            resources: BTreeMap::new(),
            leases: BTreeMap::new(),
            retirement_queue: VecDeque::new(),
            operations: VecDeque::new(),
        }
    }

    pub fn last_applied_lsn(&self) -> Lsn {
        self.last_applied_lsn
    }

    pub fn last_request_slot(&self) -> Slot {
        self.last_request_slot
    }

    pub fn retired_watermark(&self) -> Lsn {
        self.retired_watermark
    }

    /// Applies one logged command: maintenance, then the retry lookup and operation-table
    /// check for keyed writes, then the command's own checks and effect.
    pub fn apply(
        &mut self,
        position: LogPosition,
        operation: Option<OperationKey>,
        command: &OwnedCommand,
    ) -> Outcome {
        assert_eq!(position.lsn, self.last_applied_lsn + 1, "model: lsn is not the next one");
        assert!(position.request_slot >= self.last_request_slot, "model: slot went backwards");
        self.last_applied_lsn = position.lsn;
        self.last_request_slot = position.request_slot;
        self.maintain(position.request_slot);
        let Some(key) = operation else {
            return self.execute(position, command);
        };
        if let Some(record) = self.live_operation(key, position.request_slot) {
            if record.command == *command {
                return Outcome { from_retry_cache: true, ..record.outcome };
            }
            return failure(ResultCode::OperationConflict, position.lsn);
        }
        if self.operations.len() == self.config.operation_count_max as usize {
            return failure(ResultCode::OperationTableFull, position.lsn);
        }
        let outcome = self.execute(position, command);
        self.operations.push_back(ModelOperation {
            key,
            command: command.clone(),
            request_slot: position.request_slot,
            outcome,
        });
        outcome
    }

    /// What `Kernel::check_retry` should answer for `key` and `command` at `request_slot`:
    /// the remembered outcome, a conflict, or `None` when the command would execute. Only the
    /// result code of a conflict is part of the contract.
    pub fn check_retry(
        &self,
        key: OperationKey,
        command: &OwnedCommand,
        request_slot: Slot,
    ) -> Option<Outcome> {
        let record = self.live_operation(key, request_slot)?;
        if record.command == *command {
            return Some(Outcome { from_retry_cache: true, ..record.outcome });
        }
        Some(failure(ResultCode::OperationConflict, self.last_applied_lsn))
    }

    /// The newest record for `key`, if it still answers retries at `request_slot`.
    fn live_operation(&self, key: OperationKey, request_slot: Slot) -> Option<&ModelOperation> {
        let record = self.operations.iter().rev().find(|record| record.key == key)?;
        (request_slot < record.request_slot + self.config.dedupe_window_slots).then_some(record)
    }

    fn maintain(&mut self, request_slot: Slot) {
        for _ in 0..MAINTENANCE_STEPS_PER_COMMAND {
            match self.operations.front() {
                Some(oldest) if oldest.request_slot + self.config.dedupe_window_slots <= request_slot => {
                    self.operations.pop_front();
                }
                _ => break,
            }
        }
        for _ in 0..MAINTENANCE_STEPS_PER_COMMAND {
            let Some(&lsn) = self.retirement_queue.front() else { break };
            let retire_after_slot = self.leases[&lsn].retire_after_slot.unwrap_or(Slot::MAX);
            if retire_after_slot > request_slot {
                break;
            }
            self.retirement_queue.pop_front();
            self.leases.remove(&lsn);
            self.retired_watermark = self.retired_watermark.max(lsn);
        }
    }

    fn execute(&mut self, position: LogPosition, command: &OwnedCommand) -> Outcome {
        match command {
            OwnedCommand::CreateResource { resource_id } => self.create_resource(position, *resource_id),
            OwnedCommand::Reserve { resource_ids, holder_id, ttl_slots } => {
                self.reserve(position, resource_ids, *holder_id, *ttl_slots)
            }
            OwnedCommand::Activate { lease_id, holder_id, lease_epoch } => {
                self.activate(position, *lease_id, *holder_id, *lease_epoch)
            }
            OwnedCommand::Release { lease_id, holder_id, lease_epoch } => {
                self.release(position, *lease_id, *holder_id, *lease_epoch)
            }
            OwnedCommand::Revoke { lease_id } => self.revoke(position, *lease_id),
            OwnedCommand::Reclaim { lease_id } => self.reclaim(position, *lease_id),
            OwnedCommand::Expire { lease_id, deadline_slot } => {
                self.expire(position, *lease_id, *deadline_slot)
            }
        }
    }

    /// `already_exists`, then `resource_table_full`.
    fn create_resource(&mut self, position: LogPosition, resource_id: ResourceId) -> Outcome {
        if self.resources.contains_key(&resource_id) {
            return failure(ResultCode::AlreadyExists, position.lsn);
        }
        if self.resources.len() == self.config.resource_count_max as usize {
            return failure(ResultCode::ResourceTableFull, position.lsn);
        }
        self.resources.insert(
            resource_id,
            ModelResource { state: ResourceState::Available, lease_lsn: None, version: 1 },
        );
        failure(ResultCode::Ok, position.lsn)
    }

    /// `empty_bundle`, `bundle_too_large`, `ttl_out_of_range`, `duplicate_resource`, then per
    /// member in bundle order `resource_not_found` / `resource_busy`, then `lease_table_full`,
    /// `lease_member_table_full`, `expiration_index_full`.
    fn reserve(
        &mut self,
        position: LogPosition,
        resource_ids: &[ResourceId],
        holder_id: HolderId,
        ttl_slots: u64,
    ) -> Outcome {
        if let Some(result) = self.reserve_first_failure(position, resource_ids, ttl_slots) {
            return failure(result, position.lsn);
        }
        let deadline_slot = position.request_slot + ttl_slots;
        self.leases.insert(
            position.lsn,
            ModelLease {
                holder_id,
                state: LeaseState::Reserved,
                lease_epoch: 1,
                deadline_slot,
                terminal_lsn: None,
                retire_after_slot: None,
                resource_ids: resource_ids.to_vec(),
            },
        );
        for resource_id in resource_ids {
            let resource = self.resources.get_mut(resource_id).expect("checked above");
            resource.state = ResourceState::Reserved;
            resource.lease_lsn = Some(position.lsn);
            resource.version += 1;
        }
        Outcome {
            result: ResultCode::Ok,
            applied_lsn: position.lsn,
            from_retry_cache: false,
            lease_id: Some(LeaseId::new(self.config.shard_id, position.lsn)),
            lease_epoch: Some(1),
            deadline_slot: Some(deadline_slot),
        }
    }

    fn reserve_first_failure(
        &self,
        position: LogPosition,
        resource_ids: &[ResourceId],
        ttl_slots: u64,
    ) -> Option<ResultCode> {
        if resource_ids.is_empty() {
            return Some(ResultCode::EmptyBundle);
        }
        if resource_ids.len() > self.config.bundle_size_max as usize {
            return Some(ResultCode::BundleTooLarge);
        }
        if ttl_slots == 0 || ttl_slots > self.config.reserve_ttl_slots_max {
            return Some(ResultCode::TtlOutOfRange);
        }
        for (index, resource_id) in resource_ids.iter().enumerate() {
            if resource_ids[..index].contains(resource_id) {
                return Some(ResultCode::DuplicateResource);
            }
        }
        for resource_id in resource_ids {
            match self.resources.get(resource_id) {
                None => return Some(ResultCode::ResourceNotFound),
                Some(resource) if resource.state != ResourceState::Available => {
                    return Some(ResultCode::ResourceBusy);
                }
                Some(_) => {}
            }
        }
        if self.leases.len() == self.config.lease_count_max as usize {
            return Some(ResultCode::LeaseTableFull);
        }
        let members_stored: usize = self.leases.values().map(|lease| lease.resource_ids.len()).sum();
        if members_stored + resource_ids.len() > self.config.lease_member_count_max as usize {
            return Some(ResultCode::LeaseMemberTableFull);
        }
        let bucket = self.bucket_of(position.request_slot + ttl_slots);
        let bucket_length = self
            .leases
            .values()
            .filter(|lease| {
                lease.state == LeaseState::Reserved && self.bucket_of(lease.deadline_slot) == bucket
            })
            .count();
        if bucket_length >= self.config.expiration_bucket_length_max as usize {
            return Some(ResultCode::ExpirationIndexFull);
        }
        None
    }

    /// The timing-wheel bucket a deadline falls in.
    fn bucket_of(&self, deadline_slot: Slot) -> u64 {
        deadline_slot / self.config.expiration_bucket_slots % u64::from(self.config.expiration_bucket_count)
    }

    /// `lease_not_found` for another shard's id, lsn 0, or an lsn not applied yet;
    /// `lease_retired` for a stored terminal lease whose history window has passed at `slot`,
    /// or an unstored id at or below the watermark; `lease_not_found` for any other unstored id.
    fn resolve_lease(&self, lease_id: LeaseId, slot: Slot) -> Result<Lsn, ResultCode> {
        let lsn = lease_id.lsn();
        if lease_id.shard_id() != self.config.shard_id || lsn == 0 || lsn > self.last_applied_lsn {
            return Err(ResultCode::LeaseNotFound);
        }
        match self.leases.get(&lsn) {
            Some(lease)
                if !is_live(lease.state) && lease.retire_after_slot.is_some_and(|after| after <= slot) =>
            {
                Err(ResultCode::LeaseRetired)
            }
            Some(_) => Ok(lsn),
            None if lsn <= self.retired_watermark => Err(ResultCode::LeaseRetired),
            None => Err(ResultCode::LeaseNotFound),
        }
    }

    /// Lookup, then `holder_mismatch` before `stale_epoch`.
    fn resolve_for_holder(
        &self,
        lease_id: LeaseId,
        holder_id: HolderId,
        lease_epoch: u64,
        slot: Slot,
    ) -> Result<Lsn, ResultCode> {
        let lsn = self.resolve_lease(lease_id, slot)?;
        let lease = &self.leases[&lsn];
        if lease.holder_id != holder_id {
            return Err(ResultCode::HolderMismatch);
        }
        if lease.lease_epoch != lease_epoch {
            return Err(ResultCode::StaleEpoch);
        }
        Ok(lsn)
    }

    /// Lookup, holder, epoch, then `invalid_state` unless reserved with its deadline still
    /// ahead of the request slot.
    fn activate(
        &mut self,
        position: LogPosition,
        lease_id: LeaseId,
        holder_id: HolderId,
        lease_epoch: u64,
    ) -> Outcome {
        let lsn = match self.resolve_for_holder(lease_id, holder_id, lease_epoch, position.request_slot) {
            Ok(lsn) => lsn,
            Err(result) => return failure(result, position.lsn),
        };
        let lease = &self.leases[&lsn];
        if lease.state != LeaseState::Reserved || position.request_slot >= lease.deadline_slot {
            return failure(ResultCode::InvalidState, position.lsn);
        }
        self.set_lease_state(lsn, LeaseState::Active);
        self.lease_success(position, lease_id, lsn)
    }

    /// Lookup, holder, epoch, then `invalid_state` unless reserved (due or not) or active.
    fn release(
        &mut self,
        position: LogPosition,
        lease_id: LeaseId,
        holder_id: HolderId,
        lease_epoch: u64,
    ) -> Outcome {
        let lsn = match self.resolve_for_holder(lease_id, holder_id, lease_epoch, position.request_slot) {
            Ok(lsn) => lsn,
            Err(result) => return failure(result, position.lsn),
        };
        if !matches!(self.leases[&lsn].state, LeaseState::Reserved | LeaseState::Active) {
            return failure(ResultCode::InvalidState, position.lsn);
        }
        self.leases.get_mut(&lsn).expect("resolved").lease_epoch += 1;
        self.end_lease(position, lsn, LeaseState::Released);
        self.lease_success(position, lease_id, lsn)
    }

    /// Lookup, then `invalid_state` unless active. Withdraws authority: epoch + 1.
    fn revoke(&mut self, position: LogPosition, lease_id: LeaseId) -> Outcome {
        let lsn = match self.resolve_lease(lease_id, position.request_slot) {
            Ok(lsn) => lsn,
            Err(result) => return failure(result, position.lsn),
        };
        if self.leases[&lsn].state != LeaseState::Active {
            return failure(ResultCode::InvalidState, position.lsn);
        }
        self.leases.get_mut(&lsn).expect("resolved").lease_epoch += 1;
        self.set_lease_state(lsn, LeaseState::Revoking);
        self.lease_success(position, lease_id, lsn)
    }

    /// Lookup, then `invalid_state` unless revoking. Keeps the epoch.
    fn reclaim(&mut self, position: LogPosition, lease_id: LeaseId) -> Outcome {
        let lsn = match self.resolve_lease(lease_id, position.request_slot) {
            Ok(lsn) => lsn,
            Err(result) => return failure(result, position.lsn),
        };
        if self.leases[&lsn].state != LeaseState::Revoking {
            return failure(ResultCode::InvalidState, position.lsn);
        }
        self.end_lease(position, lsn, LeaseState::Revoked);
        self.lease_success(position, lease_id, lsn)
    }

    /// `ok` only for a stored reserved lease with exactly that deadline, reached at the request
    /// slot; `noop` for everything else, lookup failures included.
    fn expire(&mut self, position: LogPosition, lease_id: LeaseId, deadline_slot: Slot) -> Outcome {
        let Ok(lsn) = self.resolve_lease(lease_id, position.request_slot) else {
            return failure(ResultCode::Noop, position.lsn);
        };
        let lease = &self.leases[&lsn];
        if lease.state != LeaseState::Reserved
            || lease.deadline_slot != deadline_slot
            || position.request_slot < deadline_slot
        {
            return failure(ResultCode::Noop, position.lsn);
        }
        self.leases.get_mut(&lsn).expect("resolved").lease_epoch += 1;
        self.end_lease(position, lsn, LeaseState::Expired);
        self.lease_success(position, lease_id, lsn)
    }

    /// Moves a live lease and its members to another live state.
    fn set_lease_state(&mut self, lsn: Lsn, state: LeaseState) {
        let resource_state = match state {
            LeaseState::Reserved => ResourceState::Reserved,
            LeaseState::Active => ResourceState::Active,
            LeaseState::Revoking => ResourceState::Revoking,
            LeaseState::Released | LeaseState::Expired | LeaseState::Revoked => {
                panic!("model: {state:?} is not a live state")
            }
        };
        let lease = self.leases.get_mut(&lsn).expect("stored lease");
        lease.state = state;
        for resource_id in &lease.resource_ids {
            let resource = self.resources.get_mut(resource_id).expect("member exists");
            resource.state = resource_state;
            resource.version += 1;
        }
    }

    /// Makes a live lease terminal, frees its members and queues it for retirement.
    fn end_lease(&mut self, position: LogPosition, lsn: Lsn, state: LeaseState) {
        assert!(!is_live(state));
        let retire_after_slot = position.request_slot + self.config.history_window_slots;
        let lease = self.leases.get_mut(&lsn).expect("stored lease");
        assert!(is_live(lease.state), "model: ending a terminal lease");
        lease.state = state;
        lease.terminal_lsn = Some(position.lsn);
        lease.retire_after_slot = Some(retire_after_slot);
        for resource_id in &lease.resource_ids {
            let resource = self.resources.get_mut(resource_id).expect("member exists");
            resource.state = ResourceState::Available;
            resource.lease_lsn = None;
            resource.version += 1;
        }
        self.retirement_queue.push_back(lsn);
    }

    fn lease_success(&self, position: LogPosition, lease_id: LeaseId, lsn: Lsn) -> Outcome {
        Outcome {
            result: ResultCode::Ok,
            applied_lsn: position.lsn,
            from_retry_cache: false,
            lease_id: Some(lease_id),
            lease_epoch: Some(self.leases[&lsn].lease_epoch),
            deadline_slot: None,
        }
    }

    /// `get_resource`.
    pub fn resource(&self, resource_id: ResourceId) -> Option<ResourceView> {
        let resource = self.resources.get(&resource_id)?;
        Some(ResourceView {
            resource_id,
            state: resource.state,
            current_lease_id: resource.lease_lsn.map(|lsn| LeaseId::new(self.config.shard_id, lsn)),
            version: resource.version,
        })
    }

    /// `get_lease` as of the last applied command.
    pub fn lease(&self, lease_id: LeaseId) -> OwnedLeaseLookup {
        let lsn = match self.resolve_lease(lease_id, self.last_request_slot) {
            Ok(lsn) => lsn,
            Err(ResultCode::LeaseRetired) => return OwnedLeaseLookup::Retired,
            Err(_) => return OwnedLeaseLookup::NotFound,
        };
        let lease = &self.leases[&lsn];
        OwnedLeaseLookup::Found(OwnedLeaseView {
            lease_id,
            holder_id: lease.holder_id,
            state: lease.state,
            lease_epoch: lease.lease_epoch,
            created_lsn: lsn,
            deadline_slot: matches!(lease.state, LeaseState::Reserved | LeaseState::Expired)
                .then_some(lease.deadline_slot),
            released_lsn: lease.terminal_lsn,
            retire_after_slot: lease.retire_after_slot,
            resource_ids: lease.resource_ids.clone(),
        })
    }

    /// Every reserved lease due at `slot` (deadline at or before it), oldest bucket time first
    /// and in lsn order within a bucket time. Uncapped: the caller applies the per-query cap.
    pub fn due_expirations(&self, slot: Slot) -> Vec<DueLease> {
        let mut due: Vec<(u64, Lsn, Slot)> = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.state == LeaseState::Reserved && lease.deadline_slot <= slot)
            .map(|(&lsn, lease)| {
                (lease.deadline_slot / self.config.expiration_bucket_slots, lsn, lease.deadline_slot)
            })
            .collect();
        due.sort_unstable();
        due.into_iter()
            .map(|(_, lsn, deadline_slot)| DueLease {
                lease_id: LeaseId::new(self.config.shard_id, lsn),
                deadline_slot,
            })
            .collect()
    }

    /// Entries in use per table.
    pub fn usage(&self) -> ModelUsage {
        let count = |length: usize| length as u64;
        ModelUsage {
            resources: count(self.resources.len()),
            leases: count(self.leases.len()),
            lease_members: count(self.leases.values().map(|lease| lease.resource_ids.len()).sum()),
            operations: count(self.operations.len()),
            expirations: count(
                self.leases.values().filter(|lease| lease.state == LeaseState::Reserved).count(),
            ),
        }
    }
}
