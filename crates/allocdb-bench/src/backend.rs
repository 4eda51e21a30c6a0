//! The seam every benchmark target implements: AllocDB over the binary protocol or HTTP,
//! PostgreSQL, Redis.
//!
//! What a target must guarantee for the load generator's checks to mean anything:
//! - `reserve` wins only if the resource is free; at most one live lease per resource;
//! - `activate` and `release` are fenced by the lease they name: a stale lease is refused
//!   (`false`), never applied;
//! - every write carries an operation id; re-sending an id that was applied returns the
//!   recorded outcome and applies nothing (also when the first attempt's answer was lost);
//! - batch items are independent (each has its own outcome), sent together in one request,
//!   transaction or pipeline;
//! - `read` with a fence returns state that includes every write of this run whose answer
//!   carried an lsn ≤ the fence (targets without lsns return their latest committed state).
//!
//! Futures must be `Send`: every simulated client is its own tokio task.

use std::future::Future;

use anyhow::Result;

/// A reservation of one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserve {
    /// The operation id; unique within the run, the same on a retry.
    pub op_id: u64,
    /// The resource.
    pub resource: u64,
    /// The simulated client's holder id (1-based).
    pub holder: u64,
    /// How long the lease lives if not activated.
    pub ttl_ms: u64,
}

/// A lease as the target identifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The lease id (AllocDB: the server's; peers: the one the client proposed).
    pub id: u128,
    /// Its fencing epoch (peers: 0).
    pub epoch: u64,
    /// The lsn the reserve committed at, usable as a read fence (peers: 0).
    pub lsn: u64,
}

/// What a reserve answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// The resource is ours under this lease.
    Won(Lease),
    /// Someone else holds it.
    Busy,
}

/// A lease-fenced write: activate or release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseOp {
    /// The operation id.
    pub op_id: u64,
    /// The resource the lease holds.
    pub resource: u64,
    /// The holder that reserved it.
    pub holder: u64,
    /// The lease.
    pub lease: Lease,
}

/// What a fenced read of a resource saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Held by the lease with this id.
    Held(u128),
    /// Free.
    Free,
}

/// Which implementation a result line describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetLabel {
    /// `allocdb`, `postgres` or `redis`.
    pub target: String,
    /// How it is driven: `binary`, `http`, `fn`, `txn`, `lua`...
    pub variant: String,
    /// The durability setting: `fsync`, `synchronous_commit=on`, `appendfsync=always`...
    pub durability: String,
    /// Whether an acknowledged write survives a crash of the machine.
    pub durable: bool,
}

/// Counters the target keeps about its own durability work, read before and after the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurabilityCounters {
    /// Flushes to stable storage (fsync / fdatasync) so far.
    pub fsyncs: u64,
    /// Commands (or transactions) made durable so far.
    pub commands: u64,
    /// Time spent in those flushes so far, microseconds, when the target measures it.
    pub fsync_micros: Option<u64>,
}

/// The admin side of a target, shared by all simulated clients.
pub trait Target: Send + Sync + 'static {
    /// One client's connection.
    type Session: Session;

    /// Names the target for the result table.
    fn label(&self) -> TargetLabel;

    /// Wipes any earlier state and creates resources `0..resources`, all free.
    fn prepare(&self, resources: u64) -> impl Future<Output = Result<()>> + Send;

    /// Opens one session, used by exactly one simulated client.
    fn connect(&self) -> impl Future<Output = Result<Self::Session>> + Send;

    /// How many of `0..resources` the target considers held (0 after a clean run).
    fn held_count(&self, resources: u64) -> impl Future<Output = Result<u64>> + Send;

    /// Process ids of the server (children are included by the caller), for CPU and memory.
    fn server_pids(&self) -> Vec<u32>;

    /// The target's durability counters, when it exposes them.
    fn durability_counters(&self) -> impl Future<Output = Result<Option<DurabilityCounters>>> + Send;
}

/// One simulated client's connection. Every method is one request (one round trip, one
/// transaction or one pipeline).
pub trait Session: Send + 'static {
    /// Reserves one resource.
    fn reserve(&mut self, reserve: Reserve) -> impl Future<Output = Result<ReserveOutcome>> + Send;

    /// Activates a reserved lease; `false` when the target refused it.
    fn activate(&mut self, op: LeaseOp) -> impl Future<Output = Result<bool>> + Send;

    /// Releases a lease; `false` when the target refused it.
    fn release(&mut self, op: LeaseOp) -> impl Future<Output = Result<bool>> + Send;

    /// Reads a resource once the target has applied `fence_lsn`.
    fn read(&mut self, resource: u64, fence_lsn: u64) -> impl Future<Output = Result<ReadOutcome>> + Send;

    /// Reserves many resources in one request; independent outcomes, in order.
    fn reserve_batch(
        &mut self,
        reserves: &[Reserve],
    ) -> impl Future<Output = Result<Vec<ReserveOutcome>>> + Send;

    /// Releases many leases in one request; independent outcomes, in order.
    fn release_batch(&mut self, ops: &[LeaseOp]) -> impl Future<Output = Result<Vec<bool>>> + Send;

    /// One request that does no work on the server (AllocDB: a protocol ping or `GET
    /// /healthz`; PostgreSQL: `SELECT 1`; Redis: `PING`): the round trip of the connection,
    /// the network path and both sides' request handling, with no table, lock or disk.
    fn ping(&mut self) -> impl Future<Output = Result<()>> + Send;
}
