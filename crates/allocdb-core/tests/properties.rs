//! Property tests: the lease kernel against a plain reference model of `semantics.md`.
//!
//! Random command sequences, skewed toward collisions (few resources, few holders, lease ids
//! mostly of leases actually issued, epochs mostly current, operation keys retried with the
//! same and with a different command, slots advancing by small steps and big jumps) run against
//! kernels with tiny tables and windows, so every bound, window and retirement path is hit
//! often. They prove that:
//! - after every command the kernel returns exactly the model's outcome, shows exactly the
//!   model's resources, leases (found, not found or retired), table usage and retired
//!   watermark, and passes its own invariant checker;
//! - the expiry query returns exactly the due reserved leases (up to its cap), and feeding them
//!   back as `expire` commands, as the real driver does, keeps kernel and model in step;
//! - replaying the produced log on a fresh kernel reproduces every outcome, every expiry-query
//!   answer and the state digest (invariant 6);
//! - a snapshot taken anywhere restores to identical bytes and continues exactly like a run that
//!   never snapshotted;
//! - no resource becomes available except by its lease being released, expired at or after its
//!   deadline, or reclaimed (invariant 3), and `lease_epoch` strictly increases on every
//!   transition that withdraws holder authority while stale epochs never succeed (invariant 4).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod model;

use std::collections::BTreeMap;

use allocdb_core::{
    ClientId, DueLease, HolderId, Kernel, KernelConfig, LeaseId, LeaseState, LogPosition, OperationId,
    OperationKey, Outcome, ResourceId, ResourceState, ResourceView, ResultCode, SLOT_MAX, Slot, Submission,
};
use model::{Model, OwnedCommand, OwnedLeaseLookup};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{FileFailurePersistence, TestCaseResult, TestRunner};

/// Resources are drawn from this many ids, so reserves collide constantly.
const RESOURCE_INDEX_COUNT: u8 = 6;
const HOLDER_INDEX_COUNT: u8 = 3;
const CLIENT_INDEX_COUNT: u8 = 2;

/// Ids with high bits set, so the kernel's u128 handling is exercised too.
fn resource_id(index: u8) -> ResourceId {
    ResourceId((u128::from(index) << 100) | u128::from(index))
}

fn holder_id(index: u8) -> HolderId {
    HolderId((u128::from(index) << 90) | 0x7000 | u128::from(index))
}

fn client_id(index: u8) -> ClientId {
    ClientId((u128::from(index) << 120) | u128::from(index))
}

// ---------------------------------------------------------------------------------------------
// Generated scenarios. Steps name leases, holders, epochs and keys abstractly; the harness
// resolves them against the run so far (mostly leases actually issued, mostly current epochs).
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum LeasePick {
    /// A stored lease now in `state`, counted back from the newest (any issued lease if none).
    InState { state: LeaseState, back: u8 },
    /// A lease issued earlier in the run, counted back from the newest.
    Issued { back: u8 },
    /// An id never issued: lsn 0, an lsn not applied yet, another shard, any applied lsn (lease
    /// or not), or the largest id.
    Bogus { kind: u8, raw: u64 },
}

#[derive(Clone, Copy, Debug)]
enum HolderPick {
    Owner,
    Other(u8),
}

#[derive(Clone, Copy, Debug)]
enum EpochPick {
    Current,
    Previous,
    Next,
    Raw(u64),
}

#[derive(Clone, Copy, Debug)]
enum DeadlinePick {
    Actual,
    Earlier,
    Later,
}

/// How a step keys its write: no key, a fresh key, a key used before (now with whatever
/// command this step carries, so a conflict or a re-execution after the window), or the
/// operation id of a key used before under the other client (a different key).
#[derive(Clone, Copy, Debug)]
enum KeyPick {
    None,
    Fresh { client: u8 },
    Reuse { back: u8 },
    OtherClient { back: u8 },
}

/// One generated write. `DriveExpiry` runs the expiry query at the current slot and applies an
/// `expire` for each answer, as the real driver does; `Retry` resubmits an earlier keyed
/// submission exactly.
#[derive(Clone, Debug)]
enum Action {
    Create { resource: u8 },
    Reserve { bundle: Vec<u8>, holder: u8, ttl_slots: u64 },
    Activate { lease: LeasePick, holder: HolderPick, epoch: EpochPick },
    Release { lease: LeasePick, holder: HolderPick, epoch: EpochPick },
    Revoke { lease: LeasePick },
    Reclaim { lease: LeasePick },
    Expire { lease: LeasePick, deadline: DeadlinePick },
    DriveExpiry { count_max: u32 },
    Retry { back: u8 },
}

#[derive(Clone, Debug)]
struct Step {
    slot_advance: u64,
    key: KeyPick,
    action: Action,
}

#[derive(Clone, Debug)]
struct Scenario {
    config: KernelConfig,
    /// The slot of the first command: zero, small, or close enough to `SLOT_MAX` that bucket
    /// times are huge (the largest run still stays below it).
    start_slot: Slot,
    /// Resources created (without keys) before the first step, so reserves can succeed early.
    initial_resources: Vec<u8>,
    steps: Vec<Step>,
    /// Where property 3 snapshots (an index into the produced log).
    snapshot_at: Index,
}

/// Which commands a scenario favours.
#[derive(Clone, Copy, Debug)]
enum Mix {
    /// Everything, failures included.
    General,
    /// Mostly well-formed lifecycle transitions, to drive many leases through every state.
    Lifecycle,
}

fn config_strategy() -> impl Strategy<Value = KernelConfig> {
    let bundle_size_max = prop_oneof![1 => Just(1_u32), 6 => 2_u32..=4];
    let capacities = (3_u32..=6, 2_u32..=6, 0_u32..=6, 3_u32..=10, bundle_size_max);
    let windows = (8_u64..=24, 1_u64..=16, 1_u64..=24);
    let bucket_length_max = prop_oneof![3 => 1_u32..=2, 1 => 3_u32..=4];
    let wheel = (1_u64..=6, 0_u64..=3, bucket_length_max, 1_u32..=4);
    let identity = (prop_oneof![Just(0_u64), Just(1), Just(0xFFFF_FFFF_FFFF_FFFE)], any::<u64>());
    (capacities, windows, wheel, identity).prop_map(
        |(
            (resource_count_max, lease_count_max, member_extra, operation_count_max, bundle_size_max),
            (reserve_ttl_slots_max, dedupe_window_slots, history_window_slots),
            (expiration_bucket_slots, bucket_extra, bucket_length_max, expirations_per_tick_max),
            (shard_id, hash_seed),
        )| {
            let config = KernelConfig {
                shard_id,
                resource_count_max,
                lease_count_max,
                lease_member_count_max: bundle_size_max.max(lease_count_max) + member_extra,
                operation_count_max,
                bundle_size_max,
                reserve_ttl_slots_max,
                dedupe_window_slots,
                history_window_slots,
                expiration_bucket_count: ((reserve_ttl_slots_max + 1).div_ceil(expiration_bucket_slots)
                    + bucket_extra) as u32,
                expiration_bucket_slots,
                expiration_bucket_length_max: bucket_length_max.min(lease_count_max),
                expirations_per_tick_max,
                hash_seed,
            };
            config.validate().unwrap();
            config
        },
    )
}

/// Mostly a lease in one of `states` (the states the command succeeds from), else any issued
/// lease, or an id never issued.
fn lease_pick(states: &'static [LeaseState]) -> impl Strategy<Value = LeasePick> {
    prop_oneof![
        6 => (proptest::sample::select(states), 0_u8..3).prop_map(|(state, back)| LeasePick::InState { state, back }),
        2 => (0_u8..4).prop_map(|back| LeasePick::Issued { back }),
        2 => any::<u8>().prop_map(|back| LeasePick::Issued { back }),
        1 => (0_u8..5, any::<u64>()).prop_map(|(kind, raw)| LeasePick::Bogus { kind, raw }),
    ]
}

const RESERVED: &[LeaseState] = &[LeaseState::Reserved];
const HELD: &[LeaseState] = &[LeaseState::Reserved, LeaseState::Active];
const ACTIVE: &[LeaseState] = &[LeaseState::Active];
const REVOKING: &[LeaseState] = &[LeaseState::Revoking];

fn holder_pick(owner_weight: u32) -> impl Strategy<Value = HolderPick> {
    prop_oneof![
        owner_weight => Just(HolderPick::Owner),
        1 => (0..HOLDER_INDEX_COUNT).prop_map(HolderPick::Other),
    ]
}

fn epoch_pick(current_weight: u32) -> impl Strategy<Value = EpochPick> {
    prop_oneof![
        current_weight => Just(EpochPick::Current),
        1 => Just(EpochPick::Previous),
        1 => Just(EpochPick::Next),
        1 => (0_u64..4).prop_map(EpochPick::Raw),
    ]
}

fn bundle() -> impl Strategy<Value = Vec<u8>> {
    let ids: Vec<u8> = (0..RESOURCE_INDEX_COUNT).collect();
    prop_oneof![
        1 => Just(Vec::new()),
        12 => proptest::sample::subsequence(ids.clone(), 1..=2).prop_shuffle(),
        3 => proptest::sample::subsequence(ids, 3..=4).prop_shuffle(),
        2 => proptest::collection::vec(0..RESOURCE_INDEX_COUNT, 2..=4),
        1 => proptest::collection::vec(0..RESOURCE_INDEX_COUNT, 5..=6),
    ]
}

fn ttl_slots() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0_u64), 14 => 1_u64..=8, 3 => 9_u64..=24, 1 => 25_u64..=40]
}

/// The largest single slot advance.
const SLOT_ADVANCE_MAX: u64 = 3000;

/// Room left below `SLOT_MAX` by the latest start slot: more than any run can advance.
const START_SLOT_MARGIN: u64 = 1 << 30;

const _: () = assert!((STEP_COUNT_MAX as u64) * SLOT_ADVANCE_MAX < START_SLOT_MARGIN);

fn slot_advance(mix: Mix) -> impl Strategy<Value = u64> {
    // Big jumps retire everything and run the wheel cursor far behind; lifecycle scenarios
    // skip them so leases live long enough to be activated, revoked and reclaimed.
    let jump_weight = match mix {
        Mix::General => 1,
        Mix::Lifecycle => 0,
    };
    prop_oneof![
        6 => Just(0_u64),
        6 => 1_u64..=3,
        3 => 4_u64..=16,
        1 => 17_u64..=80,
        jump_weight => 200_u64..=SLOT_ADVANCE_MAX,
    ]
}

fn key_pick() -> impl Strategy<Value = KeyPick> {
    prop_oneof![
        4 => Just(KeyPick::None),
        4 => (0..CLIENT_INDEX_COUNT).prop_map(|client| KeyPick::Fresh { client }),
        1 => (0_u8..8).prop_map(|back| KeyPick::Reuse { back }),
        1 => (0_u8..8).prop_map(|back| KeyPick::OtherClient { back }),
    ]
}

fn deadline_pick() -> impl Strategy<Value = DeadlinePick> {
    prop_oneof![4 => Just(DeadlinePick::Actual), 1 => Just(DeadlinePick::Earlier), 1 => Just(DeadlinePick::Later)]
}

fn action(mix: Mix) -> impl Strategy<Value = Action> {
    // Lifecycle scenarios send mostly the right holder and epoch and revoke/reclaim more.
    let (correct_weight, lifecycle_weight) = match mix {
        Mix::General => (8, 2),
        Mix::Lifecycle => (30, 5),
    };
    prop_oneof![
        2 => (0..RESOURCE_INDEX_COUNT).prop_map(|resource| Action::Create { resource }),
        6 => (bundle(), 0..HOLDER_INDEX_COUNT, ttl_slots())
            .prop_map(|(bundle, holder, ttl_slots)| Action::Reserve { bundle, holder, ttl_slots }),
        lifecycle_weight + 1 => (lease_pick(RESERVED), holder_pick(correct_weight), epoch_pick(correct_weight))
            .prop_map(|(lease, holder, epoch)| Action::Activate { lease, holder, epoch }),
        3 => (lease_pick(HELD), holder_pick(correct_weight), epoch_pick(correct_weight))
            .prop_map(|(lease, holder, epoch)| Action::Release { lease, holder, epoch }),
        lifecycle_weight => lease_pick(ACTIVE).prop_map(|lease| Action::Revoke { lease }),
        lifecycle_weight => lease_pick(REVOKING).prop_map(|lease| Action::Reclaim { lease }),
        1 => (lease_pick(RESERVED), deadline_pick())
            .prop_map(|(lease, deadline)| Action::Expire { lease, deadline }),
        2 => (0_u32..=6).prop_map(|count_max| Action::DriveExpiry { count_max }),
        2 => (0_u8..8).prop_map(|back| Action::Retry { back }),
    ]
}

fn scenario(mix: Mix, step_count_max: usize) -> impl Strategy<Value = Scenario> {
    let step = (slot_advance(mix), key_pick(), action(mix)).prop_map(|(slot_advance, key, action)| Step {
        slot_advance,
        key,
        action,
    });
    let ids: Vec<u8> = (0..RESOURCE_INDEX_COUNT).collect();
    let initial_resources = proptest::sample::subsequence(ids, 0..=usize::from(RESOURCE_INDEX_COUNT));
    let start_slot = prop_oneof![4 => Just(0), 2 => 1_u64..1000, 1 => Just(SLOT_MAX - START_SLOT_MARGIN)];
    (
        config_strategy(),
        start_slot,
        initial_resources,
        proptest::collection::vec(step, 1..=step_count_max),
        any::<Index>(),
    )
        .prop_map(|(config, start_slot, initial_resources, steps, snapshot_at)| Scenario {
            config,
            start_slot,
            initial_resources,
            steps,
            snapshot_at,
        })
}

// ---------------------------------------------------------------------------------------------
// The harness: drives kernel and model side by side and records the log.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum LogEntry {
    Apply { position: LogPosition, operation: Option<OperationKey>, command: OwnedCommand, outcome: Outcome },
    DueQuery { slot: Slot, count_max: u32, due: Vec<DueLease> },
}

#[derive(Clone, Copy, Debug)]
struct IssuedLease {
    lease_id: LeaseId,
    holder_id: HolderId,
    deadline_slot: Slot,
}

/// What invariant 4 remembers of a lease between commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ObservedLease {
    Stored { state: LeaseState, lease_epoch: u64 },
    Retired,
}

struct Harness {
    kernel: Kernel,
    model: Model,
    shard_id: u64,
    expirations_per_tick_max: u32,
    slot: Slot,
    log: Vec<LogEntry>,
    issued: Vec<IssuedLease>,
    keys: Vec<OperationKey>,
    keyed_submissions: Vec<(OperationKey, OwnedCommand)>,
    operation_id_next: u128,
    observed_resources: BTreeMap<ResourceId, ResourceView>,
    observed_leases: BTreeMap<LeaseId, ObservedLease>,
}

/// A finished run: its log (with every outcome and expiry answer) and final state digest.
struct Run {
    log: Vec<LogEntry>,
    state_digest: u64,
}

fn is_live(state: LeaseState) -> bool {
    matches!(state, LeaseState::Reserved | LeaseState::Active | LeaseState::Revoking)
}

/// Runs `scenario` against kernel and model, checking everything after every command.
fn run_against_model(scenario: &Scenario) -> Result<Run, TestCaseError> {
    let mut harness = Harness {
        kernel: Kernel::new(scenario.config).unwrap(),
        model: Model::new(scenario.config),
        shard_id: scenario.config.shard_id,
        expirations_per_tick_max: scenario.config.expirations_per_tick_max,
        slot: scenario.start_slot,
        log: Vec::new(),
        issued: Vec::new(),
        keys: Vec::new(),
        keyed_submissions: Vec::new(),
        operation_id_next: 1 << 70,
        observed_resources: BTreeMap::new(),
        observed_leases: BTreeMap::new(),
    };
    for &index in &scenario.initial_resources {
        harness.submit(None, OwnedCommand::CreateResource { resource_id: resource_id(index) })?;
    }
    for step in &scenario.steps {
        harness.slot += step.slot_advance;
        harness.step(step)?;
    }
    let state_digest = harness.kernel.state_digest();
    Ok(Run { log: harness.log, state_digest })
}

impl Harness {
    fn step(&mut self, step: &Step) -> TestCaseResult {
        let command = match &step.action {
            Action::DriveExpiry { count_max } => return self.drive_expiry(*count_max),
            Action::Retry { back } => {
                let Some((key, command)) = pick_back(&self.keyed_submissions, *back).cloned() else {
                    return Ok(());
                };
                return self.submit(Some(key), command);
            }
            action => self.resolve_command(action),
        };
        let operation = self.resolve_key(step.key);
        self.submit(operation, command)
    }

    fn resolve_key(&mut self, pick: KeyPick) -> Option<OperationKey> {
        let fresh = |harness: &mut Harness, client: u8| {
            harness.operation_id_next += 1;
            OperationKey {
                client_id: client_id(client),
                operation_id: OperationId(harness.operation_id_next),
            }
        };
        match pick {
            KeyPick::None => None,
            KeyPick::Fresh { client } => Some(fresh(self, client)),
            KeyPick::Reuse { back } => {
                Some(pick_back(&self.keys, back).copied().unwrap_or_else(|| fresh(self, 0)))
            }
            KeyPick::OtherClient { back } => Some(match pick_back(&self.keys, back).copied() {
                Some(key) => {
                    let other = u8::from(key.client_id == client_id(0));
                    OperationKey { client_id: client_id(other), operation_id: key.operation_id }
                }
                None => fresh(self, 1),
            }),
        }
    }

    fn resolve_command(&self, action: &Action) -> OwnedCommand {
        match action {
            Action::Create { resource } => {
                OwnedCommand::CreateResource { resource_id: resource_id(*resource) }
            }
            Action::Reserve { bundle, holder, ttl_slots } => OwnedCommand::Reserve {
                resource_ids: bundle.iter().map(|index| resource_id(*index)).collect(),
                holder_id: holder_id(*holder),
                ttl_slots: *ttl_slots,
            },
            Action::Activate { lease, holder, epoch } => {
                let (lease_id, holder_id, lease_epoch) = self.resolve_holder_command(*lease, *holder, *epoch);
                OwnedCommand::Activate { lease_id, holder_id, lease_epoch }
            }
            Action::Release { lease, holder, epoch } => {
                let (lease_id, holder_id, lease_epoch) = self.resolve_holder_command(*lease, *holder, *epoch);
                OwnedCommand::Release { lease_id, holder_id, lease_epoch }
            }
            Action::Revoke { lease } => OwnedCommand::Revoke { lease_id: self.resolve_lease(*lease).0 },
            Action::Reclaim { lease } => OwnedCommand::Reclaim { lease_id: self.resolve_lease(*lease).0 },
            Action::Expire { lease, deadline } => {
                let (lease_id, issued) = self.resolve_lease(*lease);
                let actual = issued.map_or(self.slot, |issued| issued.deadline_slot);
                let deadline_slot = match deadline {
                    DeadlinePick::Actual => actual,
                    DeadlinePick::Earlier => actual.saturating_sub(1),
                    DeadlinePick::Later => actual + 1,
                };
                OwnedCommand::Expire { lease_id, deadline_slot }
            }
            Action::DriveExpiry { .. } | Action::Retry { .. } => unreachable!("handled by step"),
        }
    }

    fn resolve_lease(&self, pick: LeasePick) -> (LeaseId, Option<IssuedLease>) {
        let last_lsn = self.kernel.last_applied_lsn();
        let bogus = |kind: u8, raw: u64| match kind {
            0 => LeaseId::new(self.shard_id, 0),
            1 => LeaseId::new(self.shard_id, last_lsn + 1 + raw % 4),
            2 => LeaseId::new(self.shard_id ^ 1, 1 + raw % (last_lsn + 1)),
            3 => LeaseId::new(self.shard_id, 1 + raw % (last_lsn + 1)),
            _ => LeaseId(u128::MAX),
        };
        match pick {
            LeasePick::InState { state, back } => {
                let in_state: Vec<IssuedLease> = self
                    .issued
                    .iter()
                    .filter(|issued| {
                        self.model.lease(issued.lease_id).found().is_some_and(|view| view.state == state)
                    })
                    .copied()
                    .collect();
                match pick_back(&in_state, back) {
                    Some(issued) => (issued.lease_id, Some(*issued)),
                    None => self.resolve_lease(LeasePick::Issued { back }),
                }
            }
            LeasePick::Issued { back } => match pick_back(&self.issued, back) {
                Some(issued) => (issued.lease_id, Some(*issued)),
                None => (bogus(3, u64::from(back)), None),
            },
            LeasePick::Bogus { kind, raw } => (bogus(kind, raw), None),
        }
    }

    fn resolve_holder_command(
        &self,
        lease: LeasePick,
        holder: HolderPick,
        epoch: EpochPick,
    ) -> (LeaseId, HolderId, u64) {
        let (lease_id, issued) = self.resolve_lease(lease);
        let owner = issued.map_or(holder_id(0), |issued| issued.holder_id);
        let current = self.model.lease(lease_id).found().map_or(1, |view| view.lease_epoch);
        let holder_id = match holder {
            HolderPick::Owner => owner,
            HolderPick::Other(index) => holder_id(index),
        };
        let lease_epoch = match epoch {
            EpochPick::Current => current,
            EpochPick::Previous => current.saturating_sub(1),
            EpochPick::Next => current + 1,
            EpochPick::Raw(value) => value,
        };
        (lease_id, holder_id, lease_epoch)
    }

    /// Applies one command to kernel and model and checks everything.
    fn submit(&mut self, operation: Option<OperationKey>, command: OwnedCommand) -> TestCaseResult {
        let position = LogPosition { lsn: self.kernel.last_applied_lsn() + 1, request_slot: self.slot };
        if let Some(key) = operation {
            self.check_retry_lookup(key, &command)?;
        }
        let submission = Submission { operation, command: command.as_command() };
        let outcome = self.kernel.apply(position, &submission);
        let expected = self.model.apply(position, operation, &command);
        prop_assert_eq!(outcome, expected, "outcome of {:?} {:?} at {:?}", operation, command, position);
        if let (OwnedCommand::Reserve { holder_id, .. }, ResultCode::Ok, false) =
            (&command, outcome.result, outcome.from_retry_cache)
        {
            self.issued.push(IssuedLease {
                lease_id: outcome.lease_id.unwrap(),
                holder_id: *holder_id,
                deadline_slot: outcome.deadline_slot.unwrap(),
            });
        }
        self.check_resources_free_only_when_their_lease_ends(position, &command, &outcome)?;
        self.check_epochs_rise_on_withdrawal(&command, &outcome)?;
        self.check_state()?;
        if let Some(key) = operation {
            self.keys.push(key);
            self.keyed_submissions.push((key, command.clone()));
        }
        self.log.push(LogEntry::Apply { position, operation, command, outcome });
        Ok(())
    }

    /// `Kernel::check_retry` answers as the model's retry lookup (only the code of a conflict
    /// is specified).
    fn check_retry_lookup(&self, key: OperationKey, command: &OwnedCommand) -> TestCaseResult {
        let actual = self.kernel.check_retry(key, &command.as_command(), self.slot);
        let expected = self.model.check_retry(key, command, self.slot);
        match (actual, expected) {
            (Some(actual), Some(expected)) if expected.result == ResultCode::OperationConflict => {
                prop_assert_eq!(actual.result, ResultCode::OperationConflict, "check_retry of {:?}", command);
            }
            (actual, expected) => prop_assert_eq!(actual, expected, "check_retry of {:?} {:?}", key, command),
        }
        Ok(())
    }

    /// Runs the expiry query like the real driver and applies an `expire` for each answer.
    fn drive_expiry(&mut self, count_max: u32) -> TestCaseResult {
        let mut due = Vec::new();
        self.kernel.due_expirations(self.slot, count_max, &mut due);
        let mut expected = self.model.due_expirations(self.slot);
        let cap = count_max.min(self.expirations_per_tick_max) as usize;
        let mut actual = due.clone();
        actual.sort_unstable_by_key(|lease| lease.lease_id);
        expected.sort_unstable_by_key(|lease| lease.lease_id);
        if expected.len() < cap {
            prop_assert_eq!(&actual, &expected, "due leases at slot {} (cap {})", self.slot, cap);
        } else {
            prop_assert_eq!(actual.len(), cap, "due count at slot {} with {} due", self.slot, expected.len());
            actual.dedup();
            prop_assert_eq!(actual.len(), cap, "duplicate due leases at slot {}", self.slot);
            for lease in &actual {
                prop_assert!(expected.contains(lease), "{:?} is not due at slot {}", lease, self.slot);
            }
        }
        self.log.push(LogEntry::DueQuery { slot: self.slot, count_max, due: due.clone() });
        for lease in due {
            let command =
                OwnedCommand::Expire { lease_id: lease.lease_id, deadline_slot: lease.deadline_slot };
            self.submit(None, command)?;
        }
        Ok(())
    }

    /// Lease ids read after every command: every lsn applied so far and two beyond (leases,
    /// other commands' lsns, lsn 0, not yet applied), issued leases under another shard, and
    /// the largest id.
    fn lease_ids_to_read(&self) -> impl Iterator<Item = LeaseId> + '_ {
        let last_lsn = self.kernel.last_applied_lsn();
        (0..=last_lsn + 2)
            .map(|lsn| LeaseId::new(self.shard_id, lsn))
            .chain(self.issued.iter().map(|issued| LeaseId::new(self.shard_id ^ 1, issued.lease_id.lsn())))
            .chain(std::iter::once(LeaseId(u128::MAX)))
    }

    /// Every observable of the kernel equals the model's, and the kernel's invariants hold.
    fn check_state(&self) -> TestCaseResult {
        let (kernel, model) = (&self.kernel, &self.model);
        prop_assert_eq!(kernel.last_applied_lsn(), model.last_applied_lsn());
        prop_assert_eq!(kernel.last_request_slot(), model.last_request_slot());
        prop_assert_eq!(kernel.retired_watermark(), model.retired_watermark(), "retired watermark");
        let usage = kernel.usage();
        let expected = model.usage();
        prop_assert_eq!(
            [
                usage.resources.used,
                usage.leases.used,
                usage.lease_members.used,
                usage.operations.used,
                usage.expirations.used,
                u64::from(kernel.reserved_lease_count()),
            ],
            [
                expected.resources,
                expected.leases,
                expected.lease_members,
                expected.operations,
                expected.expirations,
                expected.expirations,
            ],
            "table usage (resources, leases, members, operations, expirations, reserved)"
        );
        for index in 0..=RESOURCE_INDEX_COUNT {
            let id = resource_id(index);
            prop_assert_eq!(kernel.resource(id), model.resource(id));
        }
        for lease_id in self.lease_ids_to_read() {
            let actual = OwnedLeaseLookup::from_kernel(&kernel.lease(lease_id));
            prop_assert_eq!(actual, model.lease(lease_id), "lease {:#x}", lease_id.0);
        }
        if let Err(violation) = kernel.check_invariants() {
            return Err(TestCaseError::fail(format!("kernel invariant violated: {violation}")));
        }
        Ok(())
    }

    /// Invariant 3, from kernel reads alone: a resource that turns available does so because
    /// the command just applied ended the lease it pointed at — released, reclaimed after a
    /// revoke, or expired with its deadline reached.
    fn check_resources_free_only_when_their_lease_ends(
        &mut self,
        position: LogPosition,
        command: &OwnedCommand,
        outcome: &Outcome,
    ) -> TestCaseResult {
        for index in 0..RESOURCE_INDEX_COUNT {
            let id = resource_id(index);
            let Some(after) = self.kernel.resource(id) else { continue };
            let before = self.observed_resources.insert(id, after);
            let Some(before) = before else { continue };
            if before.state != ResourceState::Available && after.state != ResourceState::Available {
                prop_assert_eq!(before.current_lease_id, after.current_lease_id, "{:?} switched leases", id);
            }
            if before.state == ResourceState::Available || after.state != ResourceState::Available {
                continue;
            }
            let Some(lease_id) = before.current_lease_id else {
                return Err(TestCaseError::fail(format!("{before:?} was held by no lease")));
            };
            prop_assert!(
                outcome.result == ResultCode::Ok
                    && !outcome.from_retry_cache
                    && command.lease_id() == Some(lease_id),
                "{:?} became available through {:?} -> {:?}",
                id,
                command,
                outcome
            );
            let lookup = OwnedLeaseLookup::from_kernel(&self.kernel.lease(lease_id));
            let Some(view) = lookup.found() else {
                return Err(TestCaseError::fail(format!(
                    "lease {lease_id:?} freeing {id:?} reads {lookup:?}"
                )));
            };
            prop_assert_eq!(view.released_lsn, Some(position.lsn));
            let before_lease = self.observed_leases.get(&lease_id).copied();
            match (view.state, command) {
                (LeaseState::Released, OwnedCommand::Release { .. }) => {}
                (LeaseState::Expired, OwnedCommand::Expire { deadline_slot, .. }) => {
                    prop_assert_eq!(view.deadline_slot, Some(*deadline_slot));
                    prop_assert!(*deadline_slot <= position.request_slot, "expired before its deadline");
                }
                (LeaseState::Revoked, OwnedCommand::Reclaim { .. }) => {
                    let was_revoking = matches!(
                        before_lease,
                        Some(ObservedLease::Stored { state: LeaseState::Revoking, .. })
                    );
                    prop_assert!(was_revoking, "reclaimed from {:?}", before_lease);
                }
                (state, command) => {
                    return Err(TestCaseError::fail(format!("{id:?} freed by {command:?} into {state:?}")));
                }
            }
        }
        Ok(())
    }

    /// Invariant 4, from kernel reads alone: epochs never fall, rise by one on release, expire
    /// and revoke, stay on activate and reclaim; terminal leases never change again; retired
    /// leases stay retired; an activate or release succeeds only with the epoch it was sent.
    fn check_epochs_rise_on_withdrawal(
        &mut self,
        command: &OwnedCommand,
        outcome: &Outcome,
    ) -> TestCaseResult {
        if let (
            OwnedCommand::Activate { lease_id, lease_epoch, .. }
            | OwnedCommand::Release { lease_id, lease_epoch, .. },
            ResultCode::Ok,
            false,
        ) = (command, outcome.result, outcome.from_retry_cache)
        {
            let epoch_before = match self.observed_leases.get(lease_id) {
                Some(ObservedLease::Stored { lease_epoch, .. }) => Some(*lease_epoch),
                Some(ObservedLease::Retired) | None => None,
            };
            prop_assert_eq!(
                epoch_before,
                Some(*lease_epoch),
                "{:?} succeeded with an epoch other than the lease's",
                command
            );
        }
        for issued in &self.issued {
            let lookup = OwnedLeaseLookup::from_kernel(&self.kernel.lease(issued.lease_id));
            let after = match &lookup {
                OwnedLeaseLookup::Found(view) => {
                    ObservedLease::Stored { state: view.state, lease_epoch: view.lease_epoch }
                }
                OwnedLeaseLookup::Retired => ObservedLease::Retired,
                OwnedLeaseLookup::NotFound => {
                    return Err(TestCaseError::fail(format!(
                        "issued lease {:?} reads not_found",
                        issued.lease_id
                    )));
                }
            };
            let before = self.observed_leases.insert(issued.lease_id, after);
            check_lease_transition(issued.lease_id, before, after, command)?;
        }
        Ok(())
    }
}

/// One lease's change across one command, per invariant 4 and the lifecycle of `semantics.md`.
fn check_lease_transition(
    lease_id: LeaseId,
    before: Option<ObservedLease>,
    after: ObservedLease,
    command: &OwnedCommand,
) -> TestCaseResult {
    let context = format!("lease {lease_id:?}: {before:?} -> {after:?} by {command:?}");
    match (before, after) {
        (None, ObservedLease::Stored { state, lease_epoch }) => {
            prop_assert!(state == LeaseState::Reserved && lease_epoch == 1, "{}", context);
        }
        (None | Some(ObservedLease::Stored { .. } | ObservedLease::Retired), ObservedLease::Retired) => {
            let was_live = matches!(before, Some(ObservedLease::Stored { state, .. }) if is_live(state));
            prop_assert!(!was_live && before.is_some(), "{}", context);
        }
        (Some(ObservedLease::Retired), ObservedLease::Stored { .. }) => {
            return Err(TestCaseError::fail(format!("retired lease came back: {context}")));
        }
        (
            Some(ObservedLease::Stored { state: state_before, lease_epoch: epoch_before }),
            ObservedLease::Stored { state, lease_epoch },
        ) => {
            if state == state_before {
                prop_assert_eq!(lease_epoch, epoch_before, "{}", context);
                return Ok(());
            }
            prop_assert!(is_live(state_before), "terminal lease changed: {}", context);
            prop_assert_eq!(command.lease_id(), Some(lease_id), "{}", context);
            let expected_epoch = match (state_before, state) {
                (LeaseState::Reserved | LeaseState::Active, LeaseState::Released)
                | (LeaseState::Reserved, LeaseState::Expired)
                | (LeaseState::Active, LeaseState::Revoking) => epoch_before + 1,
                (LeaseState::Reserved, LeaseState::Active) | (LeaseState::Revoking, LeaseState::Revoked) => {
                    epoch_before
                }
                _ => return Err(TestCaseError::fail(format!("impossible transition: {context}"))),
            };
            prop_assert_eq!(lease_epoch, expected_epoch, "{}", context);
        }
    }
    Ok(())
}

/// The entry `back` places before the newest (wrapping), if any.
fn pick_back<T>(items: &[T], back: u8) -> Option<&T> {
    let count = items.len();
    (count > 0).then(|| &items[count - 1 - usize::from(back) % count])
}

/// Applies a recorded log to `kernel`, requiring every outcome and expiry answer to match.
fn replay_entry(kernel: &mut Kernel, entry: &LogEntry) -> TestCaseResult {
    match entry {
        LogEntry::Apply { position, operation, command, outcome } => {
            let submission = Submission { operation: *operation, command: command.as_command() };
            let replayed = kernel.apply(*position, &submission);
            prop_assert_eq!(&replayed, outcome, "replayed {:?} at {:?}", command, position);
        }
        LogEntry::DueQuery { slot, count_max, due } => {
            let mut replayed = Vec::new();
            kernel.due_expirations(*slot, *count_max, &mut replayed);
            prop_assert_eq!(&replayed, due, "expiry query at slot {}", slot);
        }
    }
    Ok(())
}

/// `cases` cases (`PROPTEST_CASES` overrides it for longer local soaks), with failures saved
/// where they can be committed. Proptest's default location needs a `lib.rs` beside the test
/// file, which integration tests do not have; cargo runs tests from the package directory, so
/// this lands in `crates/allocdb-core/proptest-regressions/`.
fn proptest_config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|value| value.parse().ok()).unwrap_or(cases);
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/properties.txt",
        ))),
        ..ProptestConfig::with_cases(cases)
    }
}

/// Steps per generated scenario, at most. Checking every lease id after every step makes a
/// run quadratic in its length, so this also sets the runtime.
const STEP_COUNT_MAX: usize = 200;

proptest! {
    #![proptest_config(proptest_config(4096))]

    /// Property 1: same outcome, same state, invariants hold, after every command.
    #[test]
    fn kernel_matches_reference_model_after_every_command(scenario in scenario(Mix::General, STEP_COUNT_MAX)) {
        run_against_model(&scenario)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(2048))]

    /// Property 4 with a mix that drives many leases through every lifecycle state (the checks
    /// of invariants 3 and 4 run in every property; this mix reaches revoke and reclaim often).
    #[test]
    fn resources_free_only_when_their_lease_ends_and_epochs_rise_on_withdrawal(
        scenario in scenario(Mix::Lifecycle, STEP_COUNT_MAX),
    ) {
        run_against_model(&scenario)?;
    }

    /// Property 2: replaying the log on a fresh kernel gives the same outcomes and digest.
    #[test]
    fn replaying_the_log_reproduces_every_outcome_and_the_state_digest(
        scenario in scenario(Mix::General, STEP_COUNT_MAX),
    ) {
        let run = run_against_model(&scenario)?;
        let mut kernel = Kernel::new(scenario.config).unwrap();
        for entry in &run.log {
            replay_entry(&mut kernel, entry)?;
        }
        prop_assert_eq!(kernel.state_digest(), run.state_digest);
    }

    /// Property 3: snapshot anywhere, restore with the same config, continue: identical bytes
    /// on re-encoding, and the same outcomes and final digest as the uninterrupted run.
    #[test]
    fn restoring_a_snapshot_mid_run_continues_like_an_uninterrupted_run(
        scenario in scenario(Mix::General, STEP_COUNT_MAX),
    ) {
        let run = run_against_model(&scenario)?;
        let split = scenario.snapshot_at.index(run.log.len() + 1);
        let mut kernel = Kernel::new(scenario.config).unwrap();
        for entry in &run.log[..split] {
            replay_entry(&mut kernel, entry)?;
        }
        let bytes = kernel.encode_snapshot();
        let mut restored = Kernel::restore(scenario.config, &bytes).unwrap();
        prop_assert_eq!(restored.encode_snapshot(), bytes, "re-encoded snapshot differs");
        prop_assert_eq!(restored.state_digest(), kernel.state_digest());
        prop_assert_eq!(restored.last_applied_lsn(), kernel.last_applied_lsn());
        for entry in &run.log[split..] {
            replay_entry(&mut restored, entry)?;
        }
        prop_assert_eq!(restored.state_digest(), run.state_digest);
    }
}

/// Guards the properties against becoming vacuous: scenarios from a fixed seed reach every
/// result code, retries answered from the cache (of a success and of a failure), every lease
/// state, a raised retired watermark, and expiry queries both under and at their cap. If a
/// generator change stops reaching one of these, this names it.
#[test]
fn generated_scenarios_reach_every_result_code_and_lease_state() {
    let mut runner = TestRunner::deterministic();
    let mut reached: BTreeMap<String, u32> = BTreeMap::new();
    let mut reach = |what: String| *reached.entry(what).or_default() += 1;
    for mix in [Mix::General, Mix::Lifecycle] {
        for _ in 0..256 {
            let scenario = scenario(mix, STEP_COUNT_MAX).new_tree(&mut runner).unwrap().current();
            let run = run_against_model(&scenario).unwrap();
            let mut kernel = Kernel::new(scenario.config).unwrap();
            for entry in &run.log {
                replay_entry(&mut kernel, entry).unwrap();
                match entry {
                    LogEntry::Apply { outcome, .. } => {
                        if outcome.from_retry_cache {
                            reach(format!("retry answered from cache, ok={}", outcome.result.is_ok()));
                        } else {
                            reach(format!("{:?}", outcome.result));
                        }
                        if let Some(lease_id) = outcome.lease_id
                            && let allocdb_core::LeaseLookup::Found(view) = kernel.lease(lease_id)
                        {
                            reach(format!("{:?}", view.state));
                        }
                    }
                    LogEntry::DueQuery { count_max, due, .. } => {
                        let cap = (*count_max).min(scenario.config.expirations_per_tick_max) as usize;
                        reach(format!("due query at cap={}", due.len() == cap && cap > 0));
                    }
                }
            }
            if kernel.retired_watermark() > 0 {
                reach("retired watermark raised".to_owned());
            }
        }
    }
    let mut expected: Vec<String> = ResultCode::ALL.iter().map(|code| format!("{code:?}")).collect();
    expected.extend(
        ["retry answered from cache, ok=true", "retry answered from cache, ok=false"].map(str::to_owned),
    );
    expected.extend(["Reserved", "Active", "Revoking", "Released", "Expired", "Revoked"].map(str::to_owned));
    expected.extend(
        ["due query at cap=true", "due query at cap=false", "retired watermark raised"].map(str::to_owned),
    );
    let missing: Vec<&String> = expected.iter().filter(|what| !reached.contains_key(*what)).collect();
    assert!(missing.is_empty(), "generated scenarios never reached {missing:?}; reached {reached:?}");
}
