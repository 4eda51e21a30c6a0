//! Shared helpers for the kernel's table-driven tests: a driver that numbers log positions and
//! checks every invariant after every command, and the "twin" check that proves a refused
//! command changed nothing.
//!
//! Why a twin: `state_digest` covers the whole canonical state, including `last_applied_lsn`
//! and `last_request_slot`, and every applied command advances the lsn (and runs the lazy
//! maintenance of its slot) even when it is refused. Comparing one kernel's digest before and
//! after a refused command would therefore always differ. Instead two kernels are built by the
//! same setup; one applies the command under test, the other applies a command known to change
//! nothing (an unkeyed `expire` of a lease id this shard never issued, which is `noop`) at the
//! same log position and slot. Their digests are equal exactly when the command under test left
//! every table as the no-op did.
#![allow(dead_code, reason = "each test file uses a different subset of these helpers")]

use allocdb_core::{
    ClientId, Command, HolderId, Kernel, KernelConfig, LeaseId, LeaseLookup, LeaseState, LogPosition,
    OperationId, OperationKey, Outcome, ResourceId, ResourceState, ResultCode, Slot, Submission,
};

/// Drives a kernel: every command gets the next lsn and the driver's current slot, and the
/// invariant checker runs after each one.
pub struct Driver {
    pub kernel: Kernel,
    slot: Slot,
}

impl Driver {
    pub fn new(config: KernelConfig) -> Driver {
        Driver { kernel: Kernel::new(config).expect("test config is valid"), slot: 0 }
    }

    /// Wraps a restored kernel; the next command keeps its last request slot.
    pub fn from_kernel(kernel: Kernel) -> Driver {
        let slot = kernel.last_request_slot();
        Driver { kernel, slot }
    }

    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// Moves the request slot of the following commands forward (never back, like the
    /// sequencer).
    pub fn at(&mut self, slot: Slot) -> &mut Driver {
        assert!(slot >= self.slot, "test moves the slot back from {} to {slot}", self.slot);
        self.slot = slot;
        self
    }

    /// Applies a submission at the next lsn and the current slot, then checks every invariant.
    pub fn submit(&mut self, operation: Option<OperationKey>, command: Command<'_>) -> Outcome {
        let position = LogPosition { lsn: self.kernel.last_applied_lsn() + 1, request_slot: self.slot };
        let outcome = self.kernel.apply(position, &Submission { operation, command });
        if let Err(violation) = self.kernel.check_invariants() {
            panic!("invariant broken after {command:?} at {position:?}: {violation}");
        }
        outcome
    }

    /// Applies an unkeyed command.
    pub fn apply(&mut self, command: Command<'_>) -> Outcome {
        self.submit(None, command)
    }

    /// Applies a command under `(client_id, operation_id)`.
    pub fn apply_keyed(&mut self, key: OperationKey, command: Command<'_>) -> Outcome {
        self.submit(Some(key), command)
    }

    /// Applies a command that changes nothing: `expire` of a lease id above every lsn.
    pub fn apply_noop(&mut self) -> Outcome {
        let outcome = self.apply(noop_command(self.kernel.config().shard_id));
        assert_eq!(outcome.result, ResultCode::Noop);
        outcome
    }

    pub fn create(&mut self, resource_id: u128) {
        let outcome = self.apply(Command::CreateResource { resource_id: ResourceId(resource_id) });
        assert_eq!(outcome.result, ResultCode::Ok, "create_resource({resource_id}) in setup");
    }

    pub fn create_all(&mut self, resource_ids: impl IntoIterator<Item = u128>) {
        for resource_id in resource_ids {
            self.create(resource_id);
        }
    }

    /// Reserves a bundle in setup; the reserve must succeed.
    pub fn reserve(&mut self, bundle: &[u128], holder_id: u128, ttl_slots: u64) -> LeaseId {
        let resource_ids = resource_ids(bundle);
        let outcome = self.apply(Command::Reserve {
            resource_ids: &resource_ids,
            holder_id: HolderId(holder_id),
            ttl_slots,
        });
        assert_eq!(outcome.result, ResultCode::Ok, "reserve({bundle:?}) in setup");
        outcome.lease_id.expect("a successful reserve names its lease")
    }

    pub fn activate(&mut self, lease_id: LeaseId, holder_id: u128, lease_epoch: u64) {
        let command = Command::Activate { lease_id, holder_id: HolderId(holder_id), lease_epoch };
        assert_eq!(self.apply(command).result, ResultCode::Ok, "{command:?} in setup");
    }

    pub fn release(&mut self, lease_id: LeaseId, holder_id: u128, lease_epoch: u64) {
        let command = Command::Release { lease_id, holder_id: HolderId(holder_id), lease_epoch };
        assert_eq!(self.apply(command).result, ResultCode::Ok, "{command:?} in setup");
    }

    pub fn revoke(&mut self, lease_id: LeaseId) {
        assert_eq!(self.apply(Command::Revoke { lease_id }).result, ResultCode::Ok, "revoke in setup");
    }

    pub fn reclaim(&mut self, lease_id: LeaseId) {
        assert_eq!(self.apply(Command::Reclaim { lease_id }).result, ResultCode::Ok, "reclaim in setup");
    }

    pub fn expire(&mut self, lease_id: LeaseId, deadline_slot: Slot) {
        let outcome = self.apply(Command::Expire { lease_id, deadline_slot });
        assert_eq!(outcome.result, ResultCode::Ok, "expire in setup");
    }

    /// A resource's state and version; panics if it does not exist.
    pub fn resource(&self, resource_id: u128) -> (ResourceState, u64) {
        let view = self.kernel.resource(ResourceId(resource_id)).expect("resource exists");
        (view.state, view.version)
    }

    /// What a read of `lease_id` shows, reduced to comparable data.
    pub fn lease(&self, lease_id: LeaseId) -> LeaseSeen {
        lease_seen(&self.kernel, lease_id)
    }
}

/// A lease read, reduced to what the tables compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseSeen {
    Found { state: LeaseState, lease_epoch: u64 },
    Retired,
    NotFound,
}

pub fn lease_seen(kernel: &Kernel, lease_id: LeaseId) -> LeaseSeen {
    match kernel.lease(lease_id) {
        LeaseLookup::Found(view) => LeaseSeen::Found { state: view.state, lease_epoch: view.lease_epoch },
        LeaseLookup::Retired => LeaseSeen::Retired,
        LeaseLookup::NotFound => LeaseSeen::NotFound,
    }
}

/// The command the twin applies: `expire` of a lease whose lsn is above every applied lsn, which
/// is `noop` and touches nothing.
pub fn noop_command(shard_id: u64) -> Command<'static> {
    Command::Expire { lease_id: LeaseId::new(shard_id, u64::MAX), deadline_slot: 1 }
}

pub fn resource_ids(ids: &[u128]) -> Vec<ResourceId> {
    ids.iter().copied().map(ResourceId).collect()
}

pub fn key(client_id: u128, operation_id: u128) -> OperationKey {
    OperationKey { client_id: ClientId(client_id), operation_id: OperationId(operation_id) }
}

/// Builds the state twice with `setup`, applies `command` to one kernel and the no-op to the
/// other at the same slot, and asserts that the command returned `expected` and that both
/// kernels' canonical states are identical. Returns the kernel that got the command, so the
/// caller can go on (free an entry and retry).
pub fn assert_refused_without_effect(
    setup: impl Fn() -> Driver,
    operation: Option<OperationKey>,
    command: Command<'_>,
    expected: ResultCode,
) -> Driver {
    let mut subject = setup();
    let mut twin = setup();
    assert_eq!(subject.kernel.state_digest(), twin.kernel.state_digest(), "setup is not deterministic");
    assert_eq!(subject.slot(), twin.slot());
    let outcome = subject.submit(operation, command);
    assert_eq!(outcome.result, expected, "{command:?}");
    assert!(!outcome.from_retry_cache, "{command:?} was answered from the retry cache");
    twin.apply_noop();
    assert_eq!(
        subject.kernel.state_digest(),
        twin.kernel.state_digest(),
        "{command:?} returned {expected} but changed state"
    );
    subject
}
