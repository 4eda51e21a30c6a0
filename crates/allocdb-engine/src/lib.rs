//! The AllocDB single node: everything between a client's write and the kernel.
//!
//! This crate owns the sequencer (lsn and the clock → slot conversion), group commit over the
//! durable log, the executor that applies durable commands to the kernel, the expiry driver,
//! and halting on storage failure. It must never open a socket, and it never decides a lease
//! outcome itself: the kernel does.
//!
//! Invariants kept:
//! - a write is applied and acknowledged only after the record holding it is durable;
//! - slots never go below the last logged slot, across clock steps and restarts;
//! - after a storage failure nothing more is acknowledged or read until restart, and every
//!   write whose fate is unknown is reported indefinite;
//! - recovery replays the log through the same apply code as live execution.
//!
//! [`EngineCore`] is the deterministic step function (used directly by the simulator);
//! [`Engine`] runs it on one thread behind a bounded queue, with the log sync of one group on a
//! second thread while the next group is planned and the previous one applied ([`Group`]).

#![forbid(unsafe_code)]

mod clock;
mod config;
mod core;
mod error;
mod group;
mod request;
mod runner;

pub use clock::{Clock, ManualClock, SlotClock, SystemClock};
pub use config::{EngineConfig, EngineConfigError, SLOT_DURATION_MS_MAX, submission_size_bytes_max};
pub use core::{COMMAND_RECORD_KIND, CONFIG_RECORD_KIND, EngineCore, EngineCounters};
pub use error::{OpenError, ReplayRecordError};
pub use group::Group;
pub use request::{
    LeaseRead, LeaseSnapshot, OwnedCommand, ReadReply, RejectionCategory, RejectionCode, WriteReply,
    WriteRequest,
};
pub use runner::{
    Engine, EngineStatus, GroupObserver, GroupReport, PublishedState, ReadCallback, WriteCallback,
};
