//! Virtual clients: who sends what, and what each client believes it holds.
//!
//! Each client has its own client id (so operation ids never collide across clients), its own
//! holder id, and a counter of operation ids. It sends one request per group it takes part
//! in: the retry of its indefinite operation if it has one (same key, same command, until it
//! resolves), otherwise a new operation — create a resource, reserve a bundle of one to three
//! of a few resource ids (sometimes with a repeated id, an empty bundle or an out-of-range
//! TTL), activate or release a lease it holds (mostly with the right holder and epoch, read
//! from the kernel like a client that reads before it writes; sometimes with a wrong holder or
//! a never-current epoch), touch a lease of another shard, or deliver its last answered
//! operation again. One operator client revokes active leases and reclaims revoking ones.
//!
//! Resource ids collide on purpose (a small pool shared by every client), so reserves contend.

use std::collections::VecDeque;

use allocdb_core::{HolderId, Kernel, LeaseId, LeaseLookup, LeaseState, ResourceId, Slot};
use allocdb_engine::{EngineConfig, OwnedCommand, RejectionCategory, WriteReply};

use crate::checker::{Checker, FOREIGN_HOLDER_ID};
use crate::config::WorkloadShape;
use crate::request::{Intent, SimRequest};
use crate::rng::Rng;

/// Leases one client remembers holding; older ones are forgotten (the operator cleans up).
const HELD_LEASE_COUNT_MAX: usize = 6;
/// Leases the operator remembers as candidates for revoke and reclaim.
const OPERATOR_LEASE_COUNT_MAX: usize = 32;
/// The client id of the operator.
const OPERATOR_CLIENT_ID: u128 = 1_000_000;
/// Chance per request that a second copy of it is sent in the same group.
const ECHO_PER_MILLE: u64 = 25;
/// A never-current epoch for fencing checks (epochs never exceed 2).
const FOREIGN_EPOCH: u64 = 1_000;

/// A lease a client believes it holds.
#[derive(Clone, Copy, Debug)]
struct HeldLease {
    lease_id: LeaseId,
}

/// One virtual client.
#[derive(Clone, Debug)]
struct Client {
    id: u128,
    holder_id: HolderId,
    next_operation_id: u128,
    /// The operation whose last answer was indefinite; it is retried until it resolves.
    waiting: Option<SimRequest>,
    /// The last operation answered with a remembered outcome, for duplicate deliveries.
    last_answered: Option<SimRequest>,
    held: Vec<HeldLease>,
}

impl Client {
    fn new(client_id: u128) -> Client {
        Client {
            id: client_id,
            holder_id: HolderId(client_id),
            next_operation_id: 1,
            waiting: None,
            last_answered: None,
            held: Vec::with_capacity(HELD_LEASE_COUNT_MAX),
        }
    }

    fn next_key(&mut self) -> u128 {
        let operation_id = self.next_operation_id;
        self.next_operation_id += 1;
        operation_id
    }
}

/// The virtual clients and the operator. See the module documentation.
pub struct Workload {
    shape: WorkloadShape,
    engine: EngineConfig,
    rng: Rng,
    /// Clients `0..client_count`, then the operator.
    clients: Vec<Client>,
    operator_leases: VecDeque<LeaseId>,
}

impl Workload {
    /// Clients for `shape`, drawing from `rng`.
    pub fn new(shape: WorkloadShape, engine: EngineConfig, rng: Rng) -> Workload {
        let mut clients: Vec<Client> = (1..=u128::from(shape.client_count)).map(Client::new).collect();
        clients.push(Client::new(OPERATOR_CLIENT_ID));
        Workload {
            shape,
            engine,
            rng,
            clients,
            operator_leases: VecDeque::with_capacity(OPERATOR_LEASE_COUNT_MAX),
        }
    }

    /// How many clients (operator included) wait on an indefinite operation.
    pub fn waiting_count(&self) -> usize {
        self.clients.iter().filter(|client| client.waiting.is_some()).count()
    }

    /// A group of `size` requests from distinct clients (capped at the number of clients).
    /// Returns each request with the index of the client that sent it.
    pub fn next_group(
        &mut self,
        size: usize,
        kernel: &Kernel,
        checker: &Checker,
        slot: Slot,
    ) -> Vec<(usize, SimRequest)> {
        let mut order: Vec<usize> = (0..self.clients.len()).collect();
        let size = size.min(order.len());
        for position in 0..size {
            let pick = position + self.rng.index(order.len() - position);
            order.swap(position, pick);
        }
        order.truncate(size);
        let mut group: Vec<(usize, SimRequest)> =
            order.into_iter().map(|index| (index, self.next_request(index, kernel, checker, slot))).collect();
        // Now and then a client resends before its first copy is answered: the copy lands later
        // in the same group.
        for position in (0..group.len()).rev() {
            if self.rng.chance(ECHO_PER_MILLE) {
                let (index, request) = &group[position];
                let echo = (*index, SimRequest { intent: Intent::Echo, ..request.clone() });
                let at = position + 1 + self.rng.index(group.len() - position);
                group.insert(at, echo);
            }
        }
        group
    }

    /// Every waiting retry, for the liveness phase.
    pub fn retries(&self) -> Vec<(usize, SimRequest)> {
        self.clients
            .iter()
            .enumerate()
            .filter_map(|(index, client)| client.waiting.clone().map(|request| (index, request)))
            .collect()
    }

    fn next_request(&mut self, index: usize, kernel: &Kernel, checker: &Checker, slot: Slot) -> SimRequest {
        if let Some(waiting) = &self.clients[index].waiting {
            return waiting.clone();
        }
        if self.rng.chance(40)
            && let Some(last) = &self.clients[index].last_answered
            && checker.duplicate_allowed(last.key(), slot)
        {
            return SimRequest { intent: Intent::Duplicate, ..last.clone() };
        }
        if index + 1 == self.clients.len() {
            return self.operator_request(kernel);
        }
        let roll = self.rng.below(100);
        match roll {
            0..15 => self.create_request(index),
            15..50 => self.reserve_request(index),
            50..92 => self.lease_request(index, kernel, roll < 70),
            _ => self.unknown_lease_request(index),
        }
    }

    fn create_request(&mut self, index: usize) -> SimRequest {
        let resource_id = self.resource_id();
        let client = &mut self.clients[index];
        let operation_id = client.next_key();
        SimRequest::new(client.id, operation_id, OwnedCommand::CreateResource { resource_id }, Intent::Normal)
    }

    fn resource_id(&mut self) -> ResourceId {
        ResourceId(1 + u128::from(self.rng.below(self.shape.resource_pool_size.into())))
    }

    fn reserve_request(&mut self, index: usize) -> SimRequest {
        let bundle_size = match self.rng.below(100) {
            0 => 0,
            1..60 => 1,
            60..85 => 2,
            _ => 3,
        };
        let mut resource_ids: Vec<ResourceId> = (0..bundle_size).map(|_| self.resource_id()).collect();
        if bundle_size >= 2 && self.rng.chance(50) {
            resource_ids[1] = resource_ids[0];
        }
        let ttl_ms = if self.rng.chance(10) { 0 } else { self.rng.range(1, self.shape.ttl_ms_max) };
        let ttl_slots = self.engine.ttl_slots_for_ms(ttl_ms);
        let client = &mut self.clients[index];
        let operation_id = client.next_key();
        let command = OwnedCommand::Reserve { resource_ids, holder_id: client.holder_id, ttl_slots };
        SimRequest::reserve(client.id, operation_id, command, ttl_ms)
    }

    /// Activate (or release) a lease the client holds, with what a read of the kernel says
    /// about its epoch; sometimes deliberately fenced.
    fn lease_request(&mut self, index: usize, kernel: &Kernel, activate: bool) -> SimRequest {
        let Some((lease_id, lease_epoch)) = self.pick_held_lease(index, kernel) else {
            return self.reserve_request(index);
        };
        let (intent, holder_id, lease_epoch) = match self.rng.below(10) {
            0 => (Intent::WrongHolder, FOREIGN_HOLDER_ID, lease_epoch),
            1 => (Intent::WrongEpoch, self.clients[index].holder_id, FOREIGN_EPOCH),
            _ => (Intent::Normal, self.clients[index].holder_id, lease_epoch),
        };
        let command = if activate {
            OwnedCommand::Activate { lease_id, holder_id, lease_epoch }
        } else {
            OwnedCommand::Release { lease_id, holder_id, lease_epoch }
        };
        let client = &mut self.clients[index];
        let operation_id = client.next_key();
        SimRequest::new(client.id, operation_id, command, intent)
    }

    /// A held lease that still reads live, with its current epoch; forgets ended ones.
    fn pick_held_lease(&mut self, index: usize, kernel: &Kernel) -> Option<(LeaseId, u64)> {
        loop {
            let held = &mut self.clients[index].held;
            if held.is_empty() {
                return None;
            }
            let position = self.rng.index(held.len());
            let lease_id = held[position].lease_id;
            if let LeaseLookup::Found(view) = kernel.lease(lease_id)
                && view.state.is_live()
            {
                return Some((lease_id, view.lease_epoch));
            }
            held.swap_remove(position);
        }
    }

    fn unknown_lease_request(&mut self, index: usize) -> SimRequest {
        // Shard 1 is never this node's: such a lease is always `lease_not_found`.
        let lease_id = LeaseId::new(1, self.rng.range(1, 1 << 20));
        let client = &mut self.clients[index];
        let command = OwnedCommand::Release { lease_id, holder_id: client.holder_id, lease_epoch: 1 };
        let operation_id = client.next_key();
        SimRequest::new(client.id, operation_id, command, Intent::UnknownLease)
    }

    /// Revoke an active lease or reclaim a revoking one (or, now and then, the wrong one).
    fn operator_request(&mut self, kernel: &Kernel) -> SimRequest {
        let index = self.clients.len() - 1;
        if self.operator_leases.is_empty() {
            return self.create_request(index);
        }
        let lease_id = self.operator_leases[self.rng.index(self.operator_leases.len())];
        let state = match kernel.lease(lease_id) {
            LeaseLookup::Found(view) => Some(view.state),
            LeaseLookup::NotFound | LeaseLookup::Retired => None,
        };
        let reclaim = match state {
            Some(LeaseState::Active) => self.rng.chance(50),
            Some(LeaseState::Revoking) => !self.rng.chance(50),
            _ => {
                self.operator_leases.retain(|known| *known != lease_id);
                self.rng.coin()
            }
        };
        let command =
            if reclaim { OwnedCommand::Reclaim { lease_id } } else { OwnedCommand::Revoke { lease_id } };
        let client = &mut self.clients[index];
        let operation_id = client.next_key();
        SimRequest::new(client.id, operation_id, command, Intent::Normal)
    }

    /// Updates the client's beliefs from the reply to its request.
    pub fn observe(&mut self, index: usize, request: &SimRequest, reply: &WriteReply) {
        let client = &mut self.clients[index];
        match reply {
            _ if request.intent == Intent::Echo => {}
            WriteReply::Rejected(code) if code.category() == RejectionCategory::Indefinite => {
                if request.intent != Intent::Duplicate {
                    client.waiting = Some(request.clone());
                }
            }
            WriteReply::Rejected(_) => client.waiting = None,
            WriteReply::Committed(outcome) => {
                if request.intent == Intent::Duplicate {
                    return;
                }
                client.waiting = None;
                if outcome.result != allocdb_core::ResultCode::OperationTableFull {
                    client.last_answered = Some(request.clone());
                }
                if outcome.result.is_ok()
                    && let (OwnedCommand::Reserve { .. }, Some(lease_id)) =
                        (request.command(), outcome.lease_id)
                {
                    if client.held.len() == HELD_LEASE_COUNT_MAX {
                        client.held.remove(0);
                    }
                    client.held.push(HeldLease { lease_id });
                    if self.operator_leases.len() == OPERATOR_LEASE_COUNT_MAX {
                        self.operator_leases.pop_front();
                    }
                    self.operator_leases.push_back(lease_id);
                }
            }
        }
    }
}
