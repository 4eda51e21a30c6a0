//! `allocdb bench`: the reservation workloads of `validation.md` §4 against AllocDB (binary
//! protocol or HTTP), PostgreSQL and Redis, with the same correctness accounting for all.
//!
//! Invariants of every run: the measured window is fixed in time (warm-up excluded); every
//! counter in [`report::Correctness`] is counted by the load generator itself from what the
//! target answered, never taken from the target's own claims; a run with a non-zero violation
//! exits non-zero.

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    reason = "figures: counts and durations become f64 rates, and non-negative rates become counts"
)]

pub mod allocdb_target;
pub mod backend;
pub mod cli;
pub mod compare;
pub mod driver;
pub mod machine;
pub mod plot;
pub mod postgres;
pub mod recovery;
pub mod redis_target;
pub mod report;
pub mod run;
pub mod server;
pub mod summary;
