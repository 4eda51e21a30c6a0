//! The kernel: tables plus the apply function that moves them from one state to the next.
//!
//! `apply` is the only way state changes. It is a pure function of the current state, the log
//! position and the submission: it reads no clock (time is `request_slot`), allocates nothing
//! (bundle scratch space is allocated at startup), and does bounded work per command — the
//! lookups of the command itself plus at most [`MAINTENANCE_STEPS_PER_APPLY`] retirements,
//! operation expiries and wheel-cursor steps. Lazy maintenance is deterministic too: it depends
//! only on the state and the slot, so replicas and replays do exactly the same steps.
//!
//! Every command is checked in a fixed order, documented per command below and in
//! `docs/semantics-decisions.md`; the first failing check decides the result code.

use crate::command::{Command, LogPosition, Submission};
use crate::config::KernelConfig;
use crate::expiry_wheel::ExpiryWheel;
use crate::ids::{HolderId, LeaseId, Lsn, OperationKey, ResourceId, SLOT_MAX, Slot};
use crate::lease_table::{LeasePosition, LeaseTable, NONE, NewLease};
use crate::operation_table::{OperationRecord, OperationTable};
use crate::resource_table::{Probe, ResourcePosition, ResourceTable};
use crate::result::ResultCode;
use crate::state::{LeaseState, ResourceState};
use crate::views::{
    DueLease, KernelUsage, LeaseLookup, LeaseView, MemoryUsage, Outcome, ResourceView, TableUsage,
};

/// Retirements and operation-record expiries done per applied command. Each command adds at
/// most one lease and one operation record, so two per command always outpaces growth, and a
/// backlog left by a jump in time drains at one net entry per command.
pub const MAINTENANCE_STEPS_PER_APPLY: u32 = 2;

/// The lease kernel. See the crate documentation.
pub struct Kernel {
    pub(crate) config: KernelConfig,
    pub(crate) resources: ResourceTable,
    pub(crate) leases: LeaseTable,
    pub(crate) wheel: ExpiryWheel,
    pub(crate) operations: OperationTable,
    pub(crate) last_applied_lsn: Lsn,
    pub(crate) last_request_slot: Slot,
    /// Every retired (dropped) lease has an lsn at or below this.
    pub(crate) retired_watermark: Lsn,
    bundle_positions: Vec<ResourcePosition>,
    bundle_sorted: Vec<u128>,
}

/// Result of resolving a lease id for a write.
enum LeaseResolution {
    Stored(LeasePosition),
    Failed(ResultCode),
}

impl Kernel {
    /// Allocates every table at its configured capacity.
    ///
    /// # Errors
    /// The configuration violates a bound or a relation between bounds.
    pub fn new(config: KernelConfig) -> Result<Kernel, crate::ConfigError> {
        config.validate()?;
        Ok(Kernel {
            resources: ResourceTable::new(config.resource_count_max, config.hash_seed),
            leases: LeaseTable::new(config.lease_count_max, config.lease_member_count_max, config.hash_seed),
            wheel: ExpiryWheel::new(
                config.expiration_bucket_count,
                config.expiration_bucket_slots,
                config.expiration_bucket_length_max,
            ),
            operations: OperationTable::new(config.operation_count_max, config.hash_seed),
            last_applied_lsn: 0,
            last_request_slot: 0,
            retired_watermark: 0,
            bundle_positions: Vec::with_capacity(config.bundle_size_max as usize),
            bundle_sorted: Vec::with_capacity(config.bundle_size_max as usize),
            config,
        })
    }

    /// The configuration the tables were built from.
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// The lsn of the last applied command (0 before the first).
    pub fn last_applied_lsn(&self) -> Lsn {
        self.last_applied_lsn
    }

    /// The request slot of the last applied command: the kernel's notion of "now".
    pub fn last_request_slot(&self) -> Slot {
        self.last_request_slot
    }

    /// Leases at or below this lsn that are not stored read as retired.
    pub fn retired_watermark(&self) -> Lsn {
        self.retired_watermark
    }

    /// Applies one logged command and returns its committed outcome.
    ///
    /// # Panics
    /// If `position.lsn` is not exactly one past the last applied lsn, or `request_slot` is
    /// lower than the last one or above [`SLOT_MAX`]: the log layer guarantees both, so a
    /// violation is a bug, and continuing would make replicas diverge.
    pub fn apply(&mut self, position: LogPosition, submission: &Submission<'_>) -> Outcome {
        assert_eq!(position.lsn, self.last_applied_lsn + 1, "lsn is not the next one");
        assert!(position.request_slot >= self.last_request_slot, "request slot went backwards");
        assert!(position.request_slot <= SLOT_MAX, "request slot beyond SLOT_MAX");
        self.last_applied_lsn = position.lsn;
        self.last_request_slot = position.request_slot;
        self.maintain(position.request_slot);
        match submission.operation {
            None => self.execute(position, &submission.command),
            Some(key) => self.apply_deduplicated(position, key, &submission.command),
        }
    }

    /// Looks up `key` in the operation table as a retry would see it at `request_slot`:
    /// `Some(outcome)` with `from_retry_cache` (same command) or `operation_conflict`
    /// (different command), or `None` if the command would execute. Read-only; the engine uses
    /// it to answer retries without logging them.
    pub fn check_retry(
        &self,
        key: OperationKey,
        command: &Command<'_>,
        request_slot: Slot,
    ) -> Option<Outcome> {
        let record = self.operations.find(key)?;
        if record.request_slot + self.config.dedupe_window_slots <= request_slot {
            return None;
        }
        if record.fingerprint == command.fingerprint() {
            Some(self.outcome_from_record(record, command))
        } else {
            Some(Outcome::result(ResultCode::OperationConflict, self.last_applied_lsn))
        }
    }

    fn apply_deduplicated(
        &mut self,
        position: LogPosition,
        key: OperationKey,
        command: &Command<'_>,
    ) -> Outcome {
        let fingerprint = command.fingerprint();
        let probe = self.operations.probe(key);
        if let Some(record) = self.operations.probed_record(&probe)
            && record.request_slot + self.config.dedupe_window_slots > position.request_slot
        {
            if record.fingerprint == fingerprint {
                return self.outcome_from_record(record, command);
            }
            return Outcome::result(ResultCode::OperationConflict, position.lsn);
        }
        if self.operations.is_full() {
            return Outcome::result(ResultCode::OperationTableFull, position.lsn);
        }
        let outcome = self.execute(position, command);
        let mut record = OperationRecord::new(key, fingerprint, position.lsn, position.request_slot);
        record.result = outcome.result;
        let lease_epoch = outcome.lease_epoch.unwrap_or(0);
        assert!(lease_epoch <= 2, "lease epochs never exceed 2");
        record.lease_epoch = lease_epoch as u8;
        self.operations.insert_probed(&probe, record);
        outcome
    }

    /// Rebuilds the original outcome of `command` from its record: the lease id of a reserve is
    /// its own lsn, of the other lease commands the id they name; a reserve's deadline is its
    /// slot plus its TTL.
    fn outcome_from_record(&self, record: &OperationRecord, command: &Command<'_>) -> Outcome {
        let mut outcome = Outcome::result(record.result, record.applied_lsn);
        outcome.from_retry_cache = true;
        if record.result != ResultCode::Ok {
            return outcome;
        }
        match *command {
            Command::CreateResource { .. } => {}
            Command::Reserve { ttl_slots, .. } => {
                outcome.lease_id = Some(LeaseId::new(self.config.shard_id, record.applied_lsn));
                outcome.deadline_slot = Some(record.request_slot + ttl_slots);
            }
            Command::Activate { lease_id, .. }
            | Command::Release { lease_id, .. }
            | Command::Revoke { lease_id }
            | Command::Reclaim { lease_id }
            | Command::Expire { lease_id, .. } => outcome.lease_id = Some(lease_id),
        }
        outcome.lease_epoch = (record.lease_epoch != 0).then_some(u64::from(record.lease_epoch));
        outcome
    }

    /// Bounded, deterministic housekeeping before each command.
    fn maintain(&mut self, request_slot: Slot) {
        for _ in 0..MAINTENANCE_STEPS_PER_APPLY {
            let Some(oldest) = self.operations.oldest() else { break };
            if oldest.request_slot + self.config.dedupe_window_slots > request_slot {
                break;
            }
            self.operations.pop_oldest();
        }
        for _ in 0..MAINTENANCE_STEPS_PER_APPLY {
            let Some(position) = self.leases.retire_queue_front() else { break };
            let record = self.leases.get(position);
            if record.retire_after_slot > request_slot {
                break;
            }
            let lsn = record.lsn;
            self.leases.retire_queue_pop();
            self.leases.remove(position);
            self.retired_watermark = self.retired_watermark.max(lsn);
            self.leases.prefetch_retirements();
        }
        self.wheel.advance_cursor(request_slot);
    }

    fn execute(&mut self, position: LogPosition, command: &Command<'_>) -> Outcome {
        match *command {
            Command::CreateResource { resource_id } => self.apply_create_resource(position, resource_id),
            Command::Reserve { resource_ids, holder_id, ttl_slots } => {
                self.apply_reserve(position, resource_ids, holder_id, ttl_slots)
            }
            Command::Activate { lease_id, holder_id, lease_epoch } => {
                self.apply_activate(position, lease_id, holder_id, lease_epoch)
            }
            Command::Release { lease_id, holder_id, lease_epoch } => {
                self.apply_release(position, lease_id, holder_id, lease_epoch)
            }
            Command::Revoke { lease_id } => self.apply_revoke(position, lease_id),
            Command::Reclaim { lease_id } => self.apply_reclaim(position, lease_id),
            Command::Expire { lease_id, deadline_slot } => {
                self.apply_expire(position, lease_id, deadline_slot)
            }
        }
    }

    /// Checks: `already_exists`, then `resource_table_full`.
    fn apply_create_resource(&mut self, position: LogPosition, resource_id: ResourceId) -> Outcome {
        let vacant = match self.resources.probe(resource_id) {
            Probe::Found(_) => return Outcome::result(ResultCode::AlreadyExists, position.lsn),
            Probe::Vacant(vacant) => vacant,
        };
        if self.resources.count() == self.resources.capacity() {
            return Outcome::result(ResultCode::ResourceTableFull, position.lsn);
        }
        self.resources.insert_at(vacant, resource_id, 1);
        Outcome::result(ResultCode::Ok, position.lsn)
    }

    /// Checks, in order: the request's own shape (`empty_bundle`, `bundle_too_large`,
    /// `ttl_out_of_range`, `duplicate_resource`), then each member in bundle order
    /// (`resource_not_found`, `resource_busy`), then capacity (`lease_table_full`,
    /// `lease_member_table_full`, `expiration_index_full`).
    fn apply_reserve(
        &mut self,
        position: LogPosition,
        resource_ids: &[ResourceId],
        holder_id: HolderId,
        ttl_slots: u64,
    ) -> Outcome {
        if let Some(result) = self.apply_reserve_check_request(resource_ids, ttl_slots) {
            return Outcome::result(result, position.lsn);
        }
        if let Some(result) = self.apply_reserve_resolve_members(resource_ids) {
            return Outcome::result(result, position.lsn);
        }
        let bundle_size = resource_ids.len() as u32;
        if self.leases.is_full() {
            return Outcome::result(ResultCode::LeaseTableFull, position.lsn);
        }
        if !self.leases.members_fit(bundle_size) {
            return Outcome::result(ResultCode::LeaseMemberTableFull, position.lsn);
        }
        let deadline_slot = position.request_slot + ttl_slots;
        if !self.wheel.has_room(deadline_slot) {
            return Outcome::result(ResultCode::ExpirationIndexFull, position.lsn);
        }
        let lease = NewLease {
            lsn: position.lsn,
            holder_id,
            state: LeaseState::Reserved,
            lease_epoch: 1,
            deadline_slot,
        };
        let lease_position = self.leases.insert(&lease, &self.bundle_positions);
        self.wheel.insert(self.leases.records_mut(), lease_position);
        for &member in &self.bundle_positions {
            let resource = self.resources.get_mut(member);
            resource.set_state(ResourceState::Reserved);
            resource.lease_position = lease_position;
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

    fn apply_reserve_check_request(
        &mut self,
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
        if resource_ids.len() > 1 {
            // Sorting a copy in scratch space allocated at startup keeps this O(n log n)
            // without allocating; bundles are at most `bundle_size_max` long.
            self.bundle_sorted.clear();
            self.bundle_sorted.extend(resource_ids.iter().map(|resource_id| resource_id.0));
            self.bundle_sorted.sort_unstable();
            if self.bundle_sorted.windows(2).any(|pair| pair[0] == pair[1]) {
                return Some(ResultCode::DuplicateResource);
            }
        }
        None
    }

    /// Resolves members into `bundle_positions`, failing at the first missing or busy one.
    fn apply_reserve_resolve_members(&mut self, resource_ids: &[ResourceId]) -> Option<ResultCode> {
        self.bundle_positions.clear();
        for &resource_id in resource_ids {
            let Some(member) = self.resources.find(resource_id) else {
                return Some(ResultCode::ResourceNotFound);
            };
            if self.resources.get(member).state() != ResourceState::Available {
                return Some(ResultCode::ResourceBusy);
            }
            self.bundle_positions.push(member);
        }
        None
    }

    /// Finds a lease for a write at `request_slot`: `lease_not_found` for an id this shard
    /// never issued (or above the retired watermark), `lease_retired` for one whose history
    /// window has passed (dropped or not).
    fn resolve_lease(&self, lease_id: LeaseId, request_slot: Slot) -> LeaseResolution {
        let lsn = lease_id.lsn();
        if lease_id.shard_id() != self.config.shard_id || lsn == 0 || lsn > self.last_applied_lsn {
            return LeaseResolution::Failed(ResultCode::LeaseNotFound);
        }
        match self.leases.find(lsn) {
            Some(lease_position) => {
                let record = self.leases.get(lease_position);
                if !record.state().is_live() && record.retire_after_slot <= request_slot {
                    LeaseResolution::Failed(ResultCode::LeaseRetired)
                } else {
                    LeaseResolution::Stored(lease_position)
                }
            }
            None if lsn <= self.retired_watermark => LeaseResolution::Failed(ResultCode::LeaseRetired),
            None => LeaseResolution::Failed(ResultCode::LeaseNotFound),
        }
    }

    /// Shared checks of activate and release, after lookup: `holder_mismatch`, then
    /// `stale_epoch` (so a fenced holder learns it is fenced before anything else), then the
    /// command-specific state check done by the caller.
    fn check_holder_and_epoch(
        &self,
        lease_position: LeasePosition,
        holder_id: HolderId,
        lease_epoch: u64,
    ) -> Option<ResultCode> {
        let record = self.leases.get(lease_position);
        if record.holder_id() != holder_id {
            return Some(ResultCode::HolderMismatch);
        }
        if record.lease_epoch != lease_epoch {
            return Some(ResultCode::StaleEpoch);
        }
        None
    }

    /// Checks: `lease_not_found`/`lease_retired`, `holder_mismatch`, `stale_epoch`, then
    /// `invalid_state` unless reserved with its deadline not yet reached.
    fn apply_activate(
        &mut self,
        position: LogPosition,
        lease_id: LeaseId,
        holder_id: HolderId,
        lease_epoch: u64,
    ) -> Outcome {
        let lease_position = match self.resolve_lease(lease_id, position.request_slot) {
            LeaseResolution::Stored(lease_position) => lease_position,
            LeaseResolution::Failed(result) => return Outcome::result(result, position.lsn),
        };
        if let Some(result) = self.check_holder_and_epoch(lease_position, holder_id, lease_epoch) {
            return Outcome::result(result, position.lsn);
        }
        let record = self.leases.get(lease_position);
        // A reserved lease whose deadline has been reached is expired in all but bookkeeping:
        // its expire command is due. Refusing activation here makes the answer independent of
        // how quickly the expiry driver runs.
        if record.state() != LeaseState::Reserved || record.deadline_slot <= position.request_slot {
            return Outcome::result(ResultCode::InvalidState, position.lsn);
        }
        self.wheel.remove(self.leases.records_mut(), lease_position);
        self.leases.get_mut(lease_position).set_state(LeaseState::Active);
        self.set_member_states(lease_position, ResourceState::Active);
        self.lease_outcome(position, lease_id, lease_position)
    }

    /// Checks: `lease_not_found`/`lease_retired`, `holder_mismatch`, `stale_epoch`, then
    /// `invalid_state` unless reserved or active.
    fn apply_release(
        &mut self,
        position: LogPosition,
        lease_id: LeaseId,
        holder_id: HolderId,
        lease_epoch: u64,
    ) -> Outcome {
        let lease_position = match self.resolve_lease(lease_id, position.request_slot) {
            LeaseResolution::Stored(lease_position) => lease_position,
            LeaseResolution::Failed(result) => return Outcome::result(result, position.lsn),
        };
        if let Some(result) = self.check_holder_and_epoch(lease_position, holder_id, lease_epoch) {
            return Outcome::result(result, position.lsn);
        }
        match self.leases.get(lease_position).state() {
            LeaseState::Reserved => self.wheel.remove(self.leases.records_mut(), lease_position),
            LeaseState::Active => {}
            _ => return Outcome::result(ResultCode::InvalidState, position.lsn),
        }
        self.end_lease(position, lease_position, LeaseState::Released);
        self.lease_outcome(position, lease_id, lease_position)
    }

    /// Checks: `lease_not_found`/`lease_retired`, then `invalid_state` unless active.
    fn apply_revoke(&mut self, position: LogPosition, lease_id: LeaseId) -> Outcome {
        let lease_position = match self.resolve_lease(lease_id, position.request_slot) {
            LeaseResolution::Stored(lease_position) => lease_position,
            LeaseResolution::Failed(result) => return Outcome::result(result, position.lsn),
        };
        if self.leases.get(lease_position).state() != LeaseState::Active {
            return Outcome::result(ResultCode::InvalidState, position.lsn);
        }
        let record = self.leases.get_mut(lease_position);
        record.set_state(LeaseState::Revoking);
        record.lease_epoch += 1;
        self.set_member_states(lease_position, ResourceState::Revoking);
        self.lease_outcome(position, lease_id, lease_position)
    }

    /// Checks: `lease_not_found`/`lease_retired`, then `invalid_state` unless revoking.
    fn apply_reclaim(&mut self, position: LogPosition, lease_id: LeaseId) -> Outcome {
        let lease_position = match self.resolve_lease(lease_id, position.request_slot) {
            LeaseResolution::Stored(lease_position) => lease_position,
            LeaseResolution::Failed(result) => return Outcome::result(result, position.lsn),
        };
        if self.leases.get(lease_position).state() != LeaseState::Revoking {
            return Outcome::result(ResultCode::InvalidState, position.lsn);
        }
        // The epoch was already advanced by revoke, which withdrew the holder's authority;
        // reclaim only frees the resources.
        self.end_lease_keep_epoch(position, lease_position, LeaseState::Revoked);
        self.lease_outcome(position, lease_id, lease_position)
    }

    /// `ok` only for a stored, reserved lease whose deadline equals `deadline_slot` and has
    /// been reached; `noop` otherwise, so a duplicate or late expire is harmless.
    fn apply_expire(&mut self, position: LogPosition, lease_id: LeaseId, deadline_slot: Slot) -> Outcome {
        let lease_position = match self.resolve_lease(lease_id, position.request_slot) {
            LeaseResolution::Stored(lease_position) => lease_position,
            LeaseResolution::Failed(_) => return Outcome::result(ResultCode::Noop, position.lsn),
        };
        let record = self.leases.get(lease_position);
        if record.state() != LeaseState::Reserved
            || record.deadline_slot != deadline_slot
            || deadline_slot > position.request_slot
        {
            return Outcome::result(ResultCode::Noop, position.lsn);
        }
        self.wheel.remove(self.leases.records_mut(), lease_position);
        self.end_lease(position, lease_position, LeaseState::Expired);
        self.lease_outcome(position, lease_id, lease_position)
    }

    /// Makes a live lease terminal with a new epoch and frees its members.
    fn end_lease(&mut self, position: LogPosition, lease_position: LeasePosition, state: LeaseState) {
        self.leases.get_mut(lease_position).lease_epoch += 1;
        self.end_lease_keep_epoch(position, lease_position, state);
    }

    fn end_lease_keep_epoch(
        &mut self,
        position: LogPosition,
        lease_position: LeasePosition,
        state: LeaseState,
    ) {
        assert!(!state.is_live());
        let record = self.leases.get_mut(lease_position);
        assert!(record.state().is_live(), "ending a lease that is already terminal");
        record.set_state(state);
        record.terminal_lsn = position.lsn;
        record.retire_after_slot = position.request_slot + self.config.history_window_slots;
        for member in self.leases.members(lease_position) {
            let resource = self.resources.get_mut(member);
            assert_eq!(resource.lease_position, lease_position, "member does not point at its lease");
            resource.set_state(ResourceState::Available);
            resource.lease_position = NONE;
            resource.version += 1;
        }
        self.leases.retire_queue_push(lease_position);
    }

    fn set_member_states(&mut self, lease_position: LeasePosition, state: ResourceState) {
        for member in self.leases.members(lease_position) {
            let resource = self.resources.get_mut(member);
            assert_eq!(resource.lease_position, lease_position, "member does not point at its lease");
            resource.set_state(state);
            resource.version += 1;
        }
    }

    fn lease_outcome(
        &self,
        position: LogPosition,
        lease_id: LeaseId,
        lease_position: LeasePosition,
    ) -> Outcome {
        Outcome {
            result: ResultCode::Ok,
            applied_lsn: position.lsn,
            from_retry_cache: false,
            lease_id: Some(lease_id),
            lease_epoch: Some(self.leases.get(lease_position).lease_epoch),
            deadline_slot: None,
        }
    }

    /// Reads a resource.
    pub fn resource(&self, resource_id: ResourceId) -> Option<ResourceView> {
        let position = self.resources.find(resource_id)?;
        let slot = self.resources.get(position);
        let current_lease_id = (slot.lease_position != NONE)
            .then(|| LeaseId::new(self.config.shard_id, self.leases.get(slot.lease_position).lsn));
        Some(ResourceView { resource_id, state: slot.state(), current_lease_id, version: slot.version })
    }

    /// Reads a lease as of the last applied command.
    pub fn lease(&self, lease_id: LeaseId) -> LeaseLookup<'_> {
        let lease_position = match self.resolve_lease(lease_id, self.last_request_slot) {
            LeaseResolution::Stored(lease_position) => lease_position,
            LeaseResolution::Failed(ResultCode::LeaseRetired) => return LeaseLookup::Retired,
            LeaseResolution::Failed(_) => return LeaseLookup::NotFound,
        };
        let record = self.leases.get(lease_position);
        let state = record.state();
        let terminal = !state.is_live();
        LeaseLookup::Found(LeaseView {
            lease_id,
            holder_id: record.holder_id(),
            state,
            lease_epoch: record.lease_epoch,
            created_lsn: record.lsn,
            deadline_slot: matches!(state, LeaseState::Reserved | LeaseState::Expired)
                .then_some(record.deadline_slot),
            released_lsn: terminal.then_some(record.terminal_lsn),
            retire_after_slot: terminal.then_some(record.retire_after_slot),
            members: self.leases.members(lease_position),
            resources: &self.resources,
        })
    }

    /// Fills `due` with up to `count_max` (capped at `expirations_per_tick_max`) reserved
    /// leases whose deadline is at or before `slot`, oldest deadline bucket first. Reuses
    /// `due`'s allocation; cost is bounded by the buckets elapsed and entries visited.
    pub fn due_expirations(&self, slot: Slot, count_max: u32, due: &mut Vec<DueLease>) {
        due.clear();
        let count_max = count_max.min(self.config.expirations_per_tick_max);
        let shard_id = self.config.shard_id;
        let records = self.leases.records();
        self.wheel.due(records, slot, count_max, |lease_position| {
            let record = &records[lease_position as usize];
            due.push(DueLease {
                lease_id: LeaseId::new(shard_id, record.lsn),
                deadline_slot: record.deadline_slot,
            });
        });
    }

    /// Number of reserved leases in the timing wheel (due or not).
    pub fn reserved_lease_count(&self) -> u32 {
        self.wheel.entry_count()
    }

    /// How full each table is.
    pub fn usage(&self) -> KernelUsage {
        let usage = |used: u32, capacity: u64| TableUsage { used: used.into(), capacity };
        KernelUsage {
            resources: usage(self.resources.count(), self.resources.capacity().into()),
            leases: usage(self.leases.count(), self.leases.capacity().into()),
            lease_members: usage(self.leases.member_count(), self.leases.member_capacity().into()),
            operations: usage(self.operations.count(), self.operations.capacity().into()),
            expirations: usage(
                self.wheel.entry_count(),
                u64::from(self.config.expiration_bucket_count)
                    * u64::from(self.config.expiration_bucket_length_max),
            ),
        }
    }

    /// Bytes allocated for each table.
    pub fn memory_usage(&self) -> MemoryUsage {
        let (leases_bytes, lease_members_bytes) = self.leases.memory_bytes();
        MemoryUsage {
            resources_bytes: self.resources.memory_bytes(),
            leases_bytes,
            lease_members_bytes,
            operations_bytes: self.operations.memory_bytes(),
            expiration_wheel_bytes: self.wheel.memory_bytes(),
        }
    }
}
