//! Exit codes, and the one-line reason printed to stderr when `allocdb` cannot run.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | clean stop (SIGTERM / SIGINT), or `--print-config` |
//! | 1 | any other failure (runtime, engine thread, unexpected I/O) |
//! | 2 | bad command line (from the argument parser) |
//! | 3 | invalid configuration (unreadable or invalid file, out-of-range value) |
//! | 4 | the data directory is locked by another running process |
//! | 5 | the data directory is not ours to open: other format version, other cluster or node, damaged or missing identity, or it cannot be created or read |
//! | 6 | recovery refused the data: corrupt or missing log or snapshot |
//! | 7 | a listen address cannot be bound |
//!
//! The client subcommands (`resource create`, `reserve`, `activate`, `release`, `revoke`,
//! `reclaim`, `get`, `status`) use their own codes, each with a one-line reason on stderr:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every write committed with result `ok`, the read found its item, or status answered |
//! | 1 | an unexpected local failure (the async runtime could not start) |
//! | 2 | bad command line: unknown flag, bad id or duration, `--operation-id` with several writes |
//! | 8 | no answer: cannot connect, handshake refused (wrong `--cluster-id`), protocol error, or no answer after every retry (for a write the outcome is unknown: the reason names the `--operation-id` to retry with) |
//! | 9 | a write committed with a result other than `ok` (`resource_busy`, `stale_epoch`, ...): decided, retrying the same operation id answers the same |
//! | 10 | a write was rejected before executing (`overloaded`, `not_leader`, ...): safe to retry |
//! | 11 | a write's outcome is indefinite (`storage_failure`, `commit_timeout`, ...): retry with the printed `--operation-id` |
//! | 12 | a read found nothing: not found, or the lease is retired |
//! | 13 | a read was not served: `fence_not_applied` (server behind `--min-lsn`) or unavailable |

use std::process::ExitCode;

use allocdb_server::{ConfigFileError, DataDirError, ServeError, StartError};

/// Client subcommand: an unexpected local failure.
pub(crate) const CLIENT_OTHER: u8 = 1;
/// Client subcommand: bad command line.
pub(crate) const CLIENT_USAGE: u8 = 2;
/// Client subcommand: no answer from the server.
pub(crate) const CLIENT_UNREACHABLE: u8 = 8;
/// Client subcommand: a write committed with a result other than `ok`.
pub(crate) const CLIENT_NOT_OK: u8 = 9;
/// Client subcommand: a write rejected before executing.
pub(crate) const CLIENT_REJECTED: u8 = 10;
/// Client subcommand: a write whose outcome is indefinite.
pub(crate) const CLIENT_INDEFINITE: u8 = 11;
/// Client subcommand: a read found nothing.
pub(crate) const CLIENT_NOT_FOUND: u8 = 12;
/// Client subcommand: a read the server did not serve.
pub(crate) const CLIENT_NOT_SERVED: u8 = 13;

/// Why `allocdb` stops before serving.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The configuration (file or flags) is unusable.
    Config(ConfigFileError),
    /// The server could not start.
    Serve(ServeError),
}

/// Prints `allocdb: <reason>` on one line and returns the exit code for it.
pub(crate) fn report(failure: &Failure) -> ExitCode {
    let (code, reason) = match failure {
        Failure::Config(error) => (3, error.to_string()),
        Failure::Serve(error) => (serve_code(error), error.to_string()),
    };
    eprintln!("allocdb: {}", reason.replace('\n', " "));
    ExitCode::from(code)
}

fn serve_code(error: &ServeError) -> u8 {
    match error {
        ServeError::Start(StartError::Config(_)) => 3,
        ServeError::Start(StartError::DataDir(DataDirError::Locked { .. })) => 4,
        ServeError::Start(StartError::DataDir(_) | StartError::Storage { .. }) => 5,
        ServeError::Start(StartError::Recovery(_)) => 6,
        ServeError::Bind { .. } => 7,
        _ => 1,
    }
}
