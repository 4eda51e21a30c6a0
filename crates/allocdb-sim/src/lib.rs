//! The seeded deterministic simulation of one AllocDB node.
//!
//! This crate owns the single-node simulator (validation layer 4): virtual clients drive the
//! real engine ([`allocdb_engine::EngineCore`]) over a simulated disk
//! ([`allocdb_storage::SimDirectory`]) and a virtual clock, while faults — failed writes and
//! syncs, process halts at any mutation (mid-group, mid-rollover, mid-snapshot), crashes that
//! lose or tear unsynced bytes, flipped bits in durable bytes, wall-clock resets — are
//! injected; a history checker verifies after every step that acknowledged writes survive,
//! operations execute at most once, indefinite answers resolve to exactly one execution, no
//! resource is freed early and slots never go backwards. See `docs/simulation.md`.
//!
//! It must never read a clock, draw OS randomness, start a thread or iterate a hash map: every
//! choice derives from one `u64` seed through [`Rng`], so a run replays bit for bit, and
//! [`RunReport::trace_digest`] proves it. Production crates never depend on it.

#![forbid(unsafe_code)]

mod checker;
mod config;
mod harness;
mod request;
mod rng;
mod simulation;
mod stats;
mod trace;
mod workload;

pub use checker::{Checker, FOREIGN_HOLDER_ID, GroupContext, HistoryCounts};
pub use config::{FaultRates, SimConfig, WorkloadShape};
pub use harness::{CrashKind, FlipVerdict, Harness, RecoveryFault, Restart, SimCore, SimFailure};
pub use request::{Intent, SimRequest};
pub use rng::Rng;
pub use simulation::{RunFailure, RunOptions, RunReport, config_for_seed, replay_command, run};
pub use stats::RunStats;
pub use trace::{TraceDigest, TraceTag};
