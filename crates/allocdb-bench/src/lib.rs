//! `allocdb bench`: the reservation workloads of `validation.md` §4 against AllocDB (binary
//! protocol or HTTP), PostgreSQL and Redis, with the same correctness accounting for all.
//!
//! Invariants of every run: the measured window is fixed in time (warm-up excluded); every
//! counter in [`report::Correctness`] is counted by the load generator itself from what the
//! target answered, never taken from the target's own claims; a run with a non-zero violation
//! exits non-zero.

pub mod backend;
pub mod cli;
pub mod report;
