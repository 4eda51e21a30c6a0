//! Workspace hygiene checks that lints cannot express, in the spirit of TigerBeetle's tidy.
//!
//! The checks live in `tests/tidy.rs` and walk every Rust source file of the workspace:
//! each file opens with a `//!` module doc; no file exceeds [`FILE_LINE_COUNT_MAX`] lines unless
//! listed in [`LONG_FILE_ALLOWLIST`] with a reason; no fix-me marker; no file or test name carries an
//! issue or bug number. This crate has no runtime code of its own.

/// The largest source file allowed without a listed reason.
pub const FILE_LINE_COUNT_MAX: usize = 1_000;

/// Files allowed to exceed [`FILE_LINE_COUNT_MAX`], each with the reason.
pub const LONG_FILE_ALLOWLIST: &[(&str, &str)] = &[];
