//! The history checker: what every reply, every recovery and every step must satisfy.
//!
//! It keeps the client-side history — acknowledged operations, operations whose answer was
//! indefinite, leases the clients were told they hold — and checks it against the kernel:
//!
//! - **durability**: no acknowledged write is ever lost: the kernel's last applied lsn never
//!   drops below the highest acknowledged lsn, and after each recovery a retry of every
//!   acknowledged operation still inside its dedupe window (`Kernel::check_retry`) returns the
//!   identical outcome, flagged `from_retry_cache`;
//! - **at-most-once**: one operation key is executed (answered with a fresh, not cached,
//!   outcome other than `operation_table_full`, which executes nothing) at most once in the
//!   whole run, fresh outcomes have strictly increasing lsns, and a second delivery — later, or
//!   in the same group — gets the original outcome from the retry cache;
//! - **indefinite resolution**: after each recovery the checker asks the kernel whether every
//!   pending operation's record is durable; the retry must then come back from the retry cache
//!   with that outcome, or execute fresh if it was not durable — and once durable, a record
//!   stays durable across later recoveries;
//! - **no early reuse**: every lease a client was told it holds is looked up after every step;
//!   while it reads live, its members must point at it and not read available; once it reads
//!   terminal the reason must be legitimate (released only if its holder sent a release,
//!   revoked only if an operator sent a reclaim, expired only at a slot at or past its
//!   deadline), its epoch never decreases, and a reserve grants at least the TTL asked for;
//! - **fencing**: commands sent with a wrong holder or a never-current epoch never succeed;
//! - **slots** never go backwards, across groups and restarts.
//!
//! Checks return `Err(message)`; the harness adds the step and the runner the seed.

use std::collections::{BTreeMap, BTreeSet};

use allocdb_core::{
    HolderId, Kernel, LeaseId, LeaseLookup, LeaseState, Lsn, OperationKey, Outcome, ResourceId,
    ResourceState, ResultCode, Slot,
};
use allocdb_engine::{EngineConfig, OwnedCommand, RejectionCategory, RejectionCode, WriteReply};

use crate::request::{Intent, SimRequest};

/// Where and when a group was submitted.
#[derive(Clone, Copy, Debug)]
pub struct GroupContext {
    /// The slot the engine stamps on the group's records (read just before the commit).
    pub slot: Slot,
    /// The engine clock at submission.
    pub clock_ms: u64,
}

/// An operation the client has an answer for.
#[derive(Clone, Debug)]
struct AckedOperation {
    command: OwnedCommand,
    /// The outcome with `from_retry_cache` cleared.
    outcome: Outcome,
    /// A slot at or below the slot of the operation's record: the dedupe window runs from here.
    window_start_slot: Slot,
}

/// What the last recovery said about a pending operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    /// No recovery since the operation became pending.
    Unknown,
    /// Its record is not in the recovered log: the retry must execute it.
    NotDurable,
    /// Its record is durable with this outcome: the retry must return it from the cache.
    Durable(Outcome),
}

/// An operation whose last answer was indefinite; its client retries it.
#[derive(Clone, Debug)]
struct PendingOperation {
    command: OwnedCommand,
    /// The group slot of the first attempt: every slot the record can carry is at or above it,
    /// because the slot was `max(clock, floor)`, the floor only rises, and the clock is never
    /// set below it while the operation is pending (resets happen only between processes, see
    /// `Harness::restart_with`).
    first_slot: Slot,
    /// The engine clock at the first attempt.
    first_clock_ms: u64,
    durability: Durability,
}

/// A lease a client was told it holds, followed until it reads terminal.
#[derive(Clone, Debug)]
struct TrackedLease {
    members: Vec<ResourceId>,
    deadline_slot: Slot,
    epoch_known: u64,
    release_sent: bool,
    reclaim_sent: bool,
}

/// Counters of what the checker saw, for the run report.
#[derive(Clone, Debug, Default)]
pub struct HistoryCounts {
    /// Fresh committed outcomes by result code.
    pub results: BTreeMap<&'static str, u64>,
    /// Rejections by code.
    pub rejections: BTreeMap<&'static str, u64>,
    /// Indefinite operations resolved from the retry cache (their first execution was durable).
    pub resolved_from_cache: u64,
    /// Indefinite operations resolved by executing (their first attempt was lost).
    pub resolved_fresh: u64,
    /// Duplicate deliveries answered from the retry cache.
    pub duplicates_answered: u64,
    /// Second copies within one group answered from the retry cache.
    pub echoes_answered: u64,
    /// Leases observed to end, by how.
    pub leases_ended: BTreeMap<&'static str, u64>,
}

/// The history checker. See the module documentation.
#[derive(Debug)]
pub struct Checker {
    slot_duration_ms: u64,
    dedupe_window_slots: u64,
    bundle_size_max: u32,
    reserve_ttl_slots_max: u64,
    acked: BTreeMap<OperationKey, AckedOperation>,
    executed: BTreeSet<OperationKey>,
    pending: BTreeMap<OperationKey, PendingOperation>,
    leases: BTreeMap<LeaseId, TrackedLease>,
    acked_lsn_max: Lsn,
    fresh_lsn_max: Lsn,
    slot_max: Slot,
    counts: HistoryCounts,
}

impl Checker {
    /// A checker for an engine configured with `config`.
    pub fn new(config: &EngineConfig) -> Checker {
        let kernel = config.kernel_config();
        Checker {
            slot_duration_ms: config.slot_duration_ms,
            dedupe_window_slots: kernel.dedupe_window_slots,
            bundle_size_max: kernel.bundle_size_max,
            reserve_ttl_slots_max: kernel.reserve_ttl_slots_max,
            acked: BTreeMap::new(),
            executed: BTreeSet::new(),
            pending: BTreeMap::new(),
            leases: BTreeMap::new(),
            acked_lsn_max: 0,
            fresh_lsn_max: 0,
            slot_max: 0,
            counts: HistoryCounts::default(),
        }
    }

    /// What the checker has counted.
    pub fn counts(&self) -> &HistoryCounts {
        &self.counts
    }

    /// Operations whose last answer was indefinite.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The highest acknowledged lsn.
    pub fn acked_lsn_max(&self) -> Lsn {
        self.acked_lsn_max
    }

    /// The highest slot a group may use while operations are pending, so that every retry
    /// lands inside the dedupe window of its first attempt (and a durable first execution is
    /// found, never executed again because its record aged out).
    pub fn retry_slot_cap(&self) -> Option<Slot> {
        self.pending.values().map(|pending| pending.first_slot + self.dedupe_window_slots - 2).min()
    }

    /// The highest first-attempt slot of a pending operation: the clock must not be stepped
    /// back below it, or a retry could be logged below the slot the window is counted from.
    pub fn pending_first_slot_max(&self) -> Option<Slot> {
        self.pending.values().map(|pending| pending.first_slot).max()
    }

    /// Whether `key` was acknowledged and a duplicate delivery at `slot` is still answered from
    /// the retry cache (inside the window, with a margin of one slot).
    pub fn duplicate_allowed(&self, key: OperationKey, slot: Slot) -> bool {
        self.acked
            .get(&key)
            .is_some_and(|acked| slot + 1 < acked.window_start_slot + self.dedupe_window_slots)
    }

    /// Registers a group before it is submitted: retries must repeat their command exactly.
    ///
    /// # Errors
    /// A simulator defect: a retry with a different command, or a reused key.
    pub fn before_group(&mut self, requests: &[SimRequest]) -> Result<(), String> {
        for (index, request) in requests.iter().enumerate() {
            let key = request.key();
            if request.intent == Intent::Echo {
                let original = requests[..index].iter().any(|earlier| {
                    earlier.intent != Intent::Echo
                        && earlier.key() == key
                        && earlier.command() == request.command()
                });
                if !original {
                    return Err(format!("simulator echoed {key:?} without an original earlier in the group"));
                }
                continue;
            }
            if let Some(pending) = self.pending.get(&key) {
                if pending.command != *request.command() {
                    return Err(format!("simulator retried {key:?} with a different command"));
                }
            } else if request.intent == Intent::Duplicate {
                if !self.acked.get(&key).is_some_and(|acked| acked.command == *request.command()) {
                    return Err(format!("simulator duplicated {key:?}, which is not acknowledged"));
                }
            } else if self.executed.contains(&key) || self.acked.contains_key(&key) {
                return Err(format!("simulator reused operation key {key:?}"));
            }
            if request.intent != Intent::Normal {
                continue;
            }
            match *request.command() {
                OwnedCommand::Release { lease_id, .. } => {
                    if let Some(lease) = self.leases.get_mut(&lease_id) {
                        lease.release_sent = true;
                    }
                }
                OwnedCommand::Reclaim { lease_id } => {
                    if let Some(lease) = self.leases.get_mut(&lease_id) {
                        lease.reclaim_sent = true;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks every reply of a group.
    ///
    /// # Errors
    /// The first violated rule.
    pub fn after_group(
        &mut self,
        kernel: &Kernel,
        requests: &[SimRequest],
        replies: &[WriteReply],
        group: GroupContext,
    ) -> Result<(), String> {
        if requests.len() != replies.len() {
            return Err(format!("{} requests got {} replies", requests.len(), replies.len()));
        }
        let mut logged_fresh = false;
        for (request, reply) in requests.iter().zip(replies) {
            match *reply {
                WriteReply::Committed(outcome) => {
                    logged_fresh |= !outcome.from_retry_cache;
                    self.on_committed(kernel, request, outcome, group)
                }
                WriteReply::Rejected(code) => {
                    *self.counts.rejections.entry(code.as_str()).or_default() += 1;
                    match code.category() {
                        RejectionCategory::Definite => self.on_definite(kernel, request, code, group),
                        RejectionCategory::Indefinite => {
                            self.on_indefinite(request, group);
                            Ok(())
                        }
                    }
                }
            }
            .map_err(|message| format!("{message}\n  request: {request:?}\n  reply: {reply:?}"))?;
        }
        if logged_fresh && kernel.last_request_slot() != group.slot {
            return Err(format!(
                "group read slot {} before committing but its records carry slot {}",
                group.slot,
                kernel.last_request_slot()
            ));
        }
        Ok(())
    }

    fn on_committed(
        &mut self,
        kernel: &Kernel,
        request: &SimRequest,
        outcome: Outcome,
        group: GroupContext,
    ) -> Result<(), String> {
        let key = request.key();
        if outcome.result == ResultCode::OperationConflict {
            return Err("operation_conflict for a key the simulator only ever sends one command with".into());
        }
        let normalized = Outcome { from_retry_cache: false, ..outcome };
        // An echo whose original was answered (and remembered) earlier in this group must get
        // the same answer as a duplicate; otherwise (the original was refused
        // `operation_table_full`, which remembers nothing) it is a first execution.
        if request.intent == Intent::Duplicate
            || (request.intent == Intent::Echo && self.acked.contains_key(&key))
        {
            let acked = self.acked.get(&key).ok_or("duplicate of an unknown operation")?;
            if !outcome.from_retry_cache || normalized != acked.outcome {
                return Err(format!(
                    "second delivery inside the dedupe window was not answered with the original \
                     outcome from the retry cache (original {:?})",
                    acked.outcome
                ));
            }
            if request.intent == Intent::Echo {
                self.counts.echoes_answered += 1;
            } else {
                self.counts.duplicates_answered += 1;
            }
            return Ok(());
        }
        let (window_start_slot, first_clock_ms) = if let Some(pending) = self.pending.remove(&key) {
            match pending.durability {
                Durability::Durable(expected) if !outcome.from_retry_cache || normalized != expected => {
                    return Err(format!(
                        "indefinite operation whose record recovery found durable ({expected:?}) was \
                         answered differently: executed twice or outcome changed"
                    ));
                }
                Durability::NotDurable if outcome.from_retry_cache => {
                    return Err("indefinite operation not found after recovery was answered from the \
                                retry cache"
                        .into());
                }
                _ => {}
            }
            if outcome.from_retry_cache {
                self.counts.resolved_from_cache += 1;
            } else {
                self.counts.resolved_fresh += 1;
            }
            (pending.first_slot, pending.first_clock_ms)
        } else {
            if outcome.from_retry_cache {
                return Err("first delivery of an operation was answered from the retry cache".into());
            }
            (group.slot, group.clock_ms)
        };
        // `operation_table_full` executed nothing and is not remembered; everything else is.
        let remembered = outcome.result != ResultCode::OperationTableFull;
        if !outcome.from_retry_cache {
            if remembered && !self.executed.insert(key) {
                return Err("operation executed a second time (a second fresh outcome for one key)".into());
            }
            if outcome.applied_lsn <= self.fresh_lsn_max {
                return Err(format!(
                    "fresh outcome at lsn {} is not above the previous fresh lsn {}",
                    outcome.applied_lsn, self.fresh_lsn_max
                ));
            }
            self.fresh_lsn_max = outcome.applied_lsn;
            *self.counts.results.entry(outcome.result.as_str()).or_default() += 1;
        }
        self.acked_lsn_max = self.acked_lsn_max.max(outcome.applied_lsn);
        if remembered {
            check_cached(kernel, key, request.command(), group.slot, normalized)?;
            self.acked.insert(
                key,
                AckedOperation { command: request.command().clone(), outcome: normalized, window_start_slot },
            );
        }
        self.check_outcome_meaning(request, &normalized, first_clock_ms)
    }

    /// Checks what a committed outcome says against what the client meant.
    fn check_outcome_meaning(
        &mut self,
        request: &SimRequest,
        outcome: &Outcome,
        first_clock_ms: u64,
    ) -> Result<(), String> {
        match request.intent {
            Intent::WrongHolder | Intent::WrongEpoch if outcome.result == ResultCode::Ok => {
                return Err("a command with a wrong holder or a never-current epoch succeeded".into());
            }
            Intent::UnknownLease
                if !matches!(outcome.result, ResultCode::LeaseNotFound | ResultCode::OperationTableFull) =>
            {
                return Err("a command naming a lease of another shard did not read lease_not_found".into());
            }
            _ => {}
        }
        match (request.command(), outcome.result) {
            (OwnedCommand::Reserve { resource_ids, ttl_slots, .. }, ResultCode::Ok) => {
                self.track_reserve(request, resource_ids, *ttl_slots, outcome, first_clock_ms)
            }
            (OwnedCommand::Reserve { resource_ids, .. }, ResultCode::BundleTooLarge)
                if resource_ids.len() <= self.bundle_size_max as usize =>
            {
                Err("bundle_too_large for a bundle within bundle_size_max".into())
            }
            (OwnedCommand::Reserve { ttl_slots, .. }, ResultCode::TtlOutOfRange)
                if *ttl_slots != 0 && *ttl_slots <= self.reserve_ttl_slots_max =>
            {
                Err("ttl_out_of_range for a TTL within the maximum".into())
            }
            _ => Ok(()),
        }
    }

    fn track_reserve(
        &mut self,
        request: &SimRequest,
        resource_ids: &[ResourceId],
        ttl_slots: u64,
        outcome: &Outcome,
        first_clock_ms: u64,
    ) -> Result<(), String> {
        let lease_id = LeaseId::new(0, outcome.applied_lsn);
        if outcome.lease_id != Some(lease_id) || outcome.lease_epoch != Some(1) {
            return Err(format!("reserve outcome does not name lease {lease_id:?} at epoch 1"));
        }
        let Some(deadline_slot) = outcome.deadline_slot else {
            return Err("successful reserve without a deadline".into());
        };
        if deadline_slot < ttl_slots {
            return Err("deadline earlier than the TTL in slots".into());
        }
        // The holder gets at least the time it asked for, counted from when it asked.
        let granted_until_ms = deadline_slot.saturating_mul(self.slot_duration_ms);
        if granted_until_ms < first_clock_ms + request.ttl_ms {
            return Err(format!(
                "reserve asked at {first_clock_ms} ms for {} ms got deadline slot {deadline_slot} \
                 ({granted_until_ms} ms): shorter than asked",
                request.ttl_ms
            ));
        }
        self.leases.insert(
            lease_id,
            TrackedLease {
                members: resource_ids.to_vec(),
                deadline_slot,
                epoch_known: 1,
                release_sent: false,
                reclaim_sent: false,
            },
        );
        Ok(())
    }

    fn on_definite(
        &mut self,
        kernel: &Kernel,
        request: &SimRequest,
        code: RejectionCode,
        group: GroupContext,
    ) -> Result<(), String> {
        let key = request.key();
        let oversized = request.bundle().is_some_and(|bundle| bundle.len() > self.bundle_size_max as usize);
        if code != RejectionCode::TooLarge || !oversized {
            return Err(format!("unexpected definite rejection {}", code.as_str()));
        }
        if let Some(pending) = self.pending.remove(&key)
            && let Durability::Durable(outcome) = pending.durability
        {
            return Err(format!("definite rejection of an operation whose record is durable ({outcome:?})"));
        }
        if let Some(found) = kernel.check_retry(key, &request.command().as_command(), group.slot) {
            return Err(format!("definitely rejected operation has an operation record: {found:?}"));
        }
        Ok(())
    }

    fn on_indefinite(&mut self, request: &SimRequest, group: GroupContext) {
        if matches!(request.intent, Intent::Duplicate | Intent::Echo) {
            return;
        }
        self.pending.entry(request.key()).or_insert_with(|| PendingOperation {
            command: request.command().clone(),
            first_slot: group.slot,
            first_clock_ms: group.clock_ms,
            durability: Durability::Unknown,
        });
    }

    /// Checks a freshly recovered kernel at `slot` (the slot the next group will read):
    /// acknowledged operations are all there, and what each pending one must resolve to.
    ///
    /// # Errors
    /// A lost or changed acknowledged write, or a durable record that vanished.
    pub fn after_recovery(&mut self, kernel: &Kernel, slot: Slot) -> Result<(), String> {
        if kernel.last_applied_lsn() < self.acked_lsn_max {
            return Err(format!(
                "recovered to lsn {} but lsn {} was acknowledged",
                kernel.last_applied_lsn(),
                self.acked_lsn_max
            ));
        }
        let window = self.dedupe_window_slots;
        self.acked.retain(|_, acked| slot < acked.window_start_slot + window);
        self.check_acknowledged(kernel, slot).map_err(|message| format!("after recovery, {message}"))?;
        for (key, pending) in &mut self.pending {
            let now = match kernel.check_retry(*key, &pending.command.as_command(), slot) {
                None => Durability::NotDurable,
                Some(outcome) if outcome.from_retry_cache => {
                    Durability::Durable(Outcome { from_retry_cache: false, ..outcome })
                }
                Some(outcome) => {
                    return Err(format!("pending {key:?} reads {outcome:?} after recovery"));
                }
            };
            match (pending.durability, now) {
                (Durability::Durable(before), Durability::Durable(after)) if before != after => {
                    return Err(format!(
                        "pending {key:?} was durable as {before:?}, now recovers as {after:?}"
                    ));
                }
                (Durability::Durable(before), Durability::NotDurable) => {
                    return Err(format!(
                        "pending {key:?} was durable as {before:?} and vanished in a later recovery"
                    ));
                }
                _ => pending.durability = now,
            }
        }
        Ok(())
    }

    /// Checks that every acknowledged operation still inside its dedupe window at `slot` is
    /// answered from the retry cache with its original outcome.
    ///
    /// # Errors
    /// The first operation whose retry would get anything else.
    pub fn check_acknowledged(&self, kernel: &Kernel, slot: Slot) -> Result<(), String> {
        for (key, acked) in &self.acked {
            if slot >= acked.window_start_slot + self.dedupe_window_slots {
                continue;
            }
            check_cached(kernel, *key, &acked.command, slot, acked.outcome).map_err(|message| {
                format!(
                    "acknowledged {key:?} (window from slot {} for {} slots; kernel at lsn {} slot {}): \
                     {message}",
                    acked.window_start_slot,
                    self.dedupe_window_slots,
                    kernel.last_applied_lsn(),
                    kernel.last_request_slot()
                )
            })?;
        }
        Ok(())
    }

    /// Checks the kernel after a step: invariants, slots, acknowledged lsns, tracked leases.
    ///
    /// # Errors
    /// The first violation.
    pub fn check_state(&mut self, kernel: &Kernel) -> Result<(), String> {
        kernel.check_invariants().map_err(|violation| format!("kernel invariant violated: {violation}"))?;
        if kernel.last_request_slot() < self.slot_max {
            return Err(format!(
                "slot went backwards: {} after {}",
                kernel.last_request_slot(),
                self.slot_max
            ));
        }
        self.slot_max = kernel.last_request_slot();
        if kernel.last_applied_lsn() < self.acked_lsn_max {
            return Err(format!(
                "last applied lsn {} is below the acknowledged lsn {}",
                kernel.last_applied_lsn(),
                self.acked_lsn_max
            ));
        }
        let mut ended = Vec::new();
        for (lease_id, lease) in &mut self.leases {
            if let Some(how) = check_tracked_lease(kernel, *lease_id, lease)
                .map_err(|message| format!("lease {}: {message}", lease_id.lsn()))?
            {
                ended.push(*lease_id);
                *self.counts.leases_ended.entry(how).or_default() += 1;
            }
        }
        for lease_id in ended {
            self.leases.remove(&lease_id);
        }
        Ok(())
    }
}

/// `check_retry` at `slot` must return `outcome` from the retry cache.
fn check_cached(
    kernel: &Kernel,
    key: OperationKey,
    command: &OwnedCommand,
    slot: Slot,
    outcome: Outcome,
) -> Result<(), String> {
    let expected = Outcome { from_retry_cache: true, ..outcome };
    match kernel.check_retry(key, &command.as_command(), slot) {
        Some(found) if found == expected => Ok(()),
        found => Err(format!("a retry at slot {slot} would get {found:?}, expected {expected:?}")),
    }
}

/// Checks one tracked lease; returns how it ended once it reads terminal (or retired).
fn check_tracked_lease(
    kernel: &Kernel,
    lease_id: LeaseId,
    lease: &mut TrackedLease,
) -> Result<Option<&'static str>, String> {
    let view = match kernel.lease(lease_id) {
        LeaseLookup::NotFound => return Err("acknowledged lease reads not_found".into()),
        LeaseLookup::Retired => return Ok(Some("retired_unobserved")),
        LeaseLookup::Found(view) => view,
    };
    if view.lease_epoch < lease.epoch_known {
        return Err(format!("epoch went from {} back to {}", lease.epoch_known, view.lease_epoch));
    }
    lease.epoch_known = view.lease_epoch;
    if !view.resource_ids().eq(lease.members.iter().copied()) {
        return Err(format!(
            "members {:?} differ from the reserved bundle {:?}",
            view.resource_ids().collect::<Vec<_>>(),
            lease.members
        ));
    }
    let resource_state = match view.state {
        LeaseState::Reserved => Some(ResourceState::Reserved),
        LeaseState::Active => Some(ResourceState::Active),
        LeaseState::Revoking => Some(ResourceState::Revoking),
        LeaseState::Released | LeaseState::Expired | LeaseState::Revoked => None,
    };
    if let Some(expected) = resource_state {
        for resource_id in &lease.members {
            let resource = kernel.resource(*resource_id).ok_or("member resource does not exist")?;
            if resource.current_lease_id != Some(lease_id) || resource.state != expected {
                return Err(format!(
                    "live {} lease, but member {} reads {:?} held by {:?}: freed early",
                    view.state.as_str(),
                    resource_id.0,
                    resource.state,
                    resource.current_lease_id.map(LeaseId::lsn)
                ));
            }
        }
        return Ok(None);
    }
    match view.state {
        LeaseState::Released if !lease.release_sent => {
            Err("released, but its holder never sent a release".into())
        }
        LeaseState::Revoked if !lease.reclaim_sent => Err("revoked, but no operator sent a reclaim".into()),
        LeaseState::Expired if view.deadline_slot != Some(lease.deadline_slot) => Err(format!(
            "expired with deadline {:?}, reserved with {}",
            view.deadline_slot, lease.deadline_slot
        )),
        LeaseState::Expired if kernel.last_request_slot() < lease.deadline_slot => Err(format!(
            "expired at slot {} before its deadline {}",
            kernel.last_request_slot(),
            lease.deadline_slot
        )),
        state => Ok(Some(state.as_str())),
    }
}

/// The holder id no simulated client ever uses, for wrong-holder commands.
pub const FOREIGN_HOLDER_ID: HolderId = HolderId(u128::MAX);
