//! The AllocDB lease kernel: a deterministic, bounded state machine deciding who holds which
//! scarce resource.
//!
//! This crate owns resources, leases (with bundles and fencing epochs), the operation table
//! that answers retries, the timing wheel of reservation deadlines, lease retirement, snapshot
//! encoding, and the invariant checker. It must never touch a file, socket, clock, thread or
//! random number: time arrives only as the `request_slot` of each command, and the same
//! snapshot plus the same commands always give the same state and results.
//!
//! Invariants kept (tested in `tests/` and by [`Kernel::check_invariants`]):
//! - a resource has at most one live lease, and a live lease's members all point back at it;
//! - a bundle is reserved all or nothing;
//! - no resource becomes available before its lease is released, expired or reclaimed;
//! - `lease_epoch` strictly increases on every transition that withdraws holder authority;
//! - one operation id executes at most once within the dedupe window;
//! - every table is allocated at its configured capacity in [`Kernel::new`]; applying a command
//!   allocates nothing and does work bounded by the command, never by table size.
//!
//! ```
//! use allocdb_core::{Command, HolderId, Kernel, KernelConfig, LogPosition, ResourceId, ResultCode, Submission};
//!
//! let mut kernel = Kernel::new(KernelConfig { resource_count_max: 16, lease_count_max: 16,
//!     lease_member_count_max: 16, operation_count_max: 16, bundle_size_max: 4,
//!     expiration_bucket_length_max: 16, ..KernelConfig::default() }).unwrap();
//! let create = Submission { operation: None, command: Command::CreateResource { resource_id: ResourceId(7) } };
//! assert_eq!(kernel.apply(LogPosition { lsn: 1, request_slot: 10 }, &create).result, ResultCode::Ok);
//! let bundle = [ResourceId(7)];
//! let reserve = Submission {
//!     operation: None,
//!     command: Command::Reserve { resource_ids: &bundle, holder_id: HolderId(1), ttl_slots: 100 },
//! };
//! let outcome = kernel.apply(LogPosition { lsn: 2, request_slot: 11 }, &reserve);
//! assert_eq!(outcome.lease_epoch, Some(1));
//! assert_eq!(outcome.deadline_slot, Some(111));
//! ```

#![forbid(unsafe_code)]

mod codec;
mod command;
mod config;
mod expiry_wheel;
mod hash;
mod ids;
mod invariants;
mod kernel;
mod lease_table;
mod operation_table;
mod prefetch;
mod resource_table;
mod result;
mod snapshot;
mod state;
mod views;

pub use codec::{CodecError, SUBMISSION_SIZE_BYTES_MAX, decode_submission, encode_submission};
pub use command::{Command, CommandKind, LogPosition, Submission};
pub use config::{
    BUNDLE_SIZE_LIMIT, ConfigError, EXPIRATION_BUCKET_COUNT_LIMIT, KernelConfig, TABLE_CAPACITY_LIMIT,
    WINDOW_SLOTS_LIMIT,
};
pub use ids::{
    ClientId, HolderId, IdTextError, LeaseId, Lsn, OperationId, OperationKey, ResourceId, SLOT_MAX, Slot,
    parse_id_text,
};
pub use invariants::InvariantViolation;
pub use kernel::{Kernel, MAINTENANCE_STEPS_PER_APPLY};
pub use result::ResultCode;
pub use snapshot::{
    SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_SIZE_BYTES, SNAPSHOT_MAGIC, SnapshotError, decode_kernel_config,
    encode_kernel_config,
};
pub use state::{LeaseState, ResourceState};
pub use views::{
    DueLease, KernelUsage, LeaseLookup, LeaseView, MemoryUsage, Outcome, ResourceView, TableUsage,
};
