//! `allocdb bench`: the load generator of `allocdb-bench`, as subcommands of the binary so a
//! bench run can start servers from the very executable it is part of.
//!
//! Exit status: 0; 2 when a run counted correctness violations; 1 when a run or the
//! comparison could not be made (the reason on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use allocdb_bench::cli::RunArgs;
use allocdb_bench::compare::CompareArgs;
use clap::Subcommand;

/// `allocdb bench ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// One workload against one target for a fixed window; prints one table row.
    Run(Box<RunArgs>),
    /// The whole matrix against AllocDB and the peers, repeated and interleaved; writes raw
    /// JSON, a summary with medians and ratios, and plots.
    Compare(Box<CompareArgs>),
    /// Recomputes the summary and plots of a comparison from its saved raw results.
    Summarize {
        /// The comparison's output directory (holding raw.jsonl).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

pub(crate) fn run(command: BenchCommand) -> ExitCode {
    let outcome = match command {
        BenchCommand::Run(arguments) => allocdb_bench::run::run_command(&arguments),
        BenchCommand::Compare(arguments) => std::env::current_exe()
            .map_err(anyhow::Error::from)
            .and_then(|exe| allocdb_bench::compare::run_compare(&arguments, &exe))
            .map(|()| 0),
        BenchCommand::Summarize { dir } => allocdb_bench::summary::summarize_dir(&dir).map(|()| 0),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("allocdb bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
