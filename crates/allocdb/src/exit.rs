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

use std::process::ExitCode;

use allocdb_server::{ConfigFileError, DataDirError, ServeError, StartError};

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
