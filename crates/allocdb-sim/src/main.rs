//! `allocdb-sim`: runs the single-node simulation for one seed, a range of seeds, or a
//! time-boxed campaign of random seeds, and exits non-zero on the first failure with the
//! command that replays it.
//!
//! This binary is the only place the wall clock and OS randomness are used: to pick campaign
//! seeds and to stop the campaign. Each run itself is a pure function of its seed.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use allocdb_sim::{RunOptions, config_for_seed, replay_command, run};
use clap::Parser;

/// Deterministic simulation of one AllocDB node under random load and storage faults.
#[derive(Debug, Parser)]
#[command(name = "allocdb-sim", version)]
struct Arguments {
    /// Run exactly this seed.
    #[arg(long, conflicts_with_all = ["seeds", "minutes", "seconds"])]
    seed: Option<u64>,
    /// Run every seed of a half-open range, e.g. `0..40`.
    #[arg(long, value_parser = parse_seed_range, conflicts_with_all = ["minutes", "seconds"])]
    seeds: Option<(u64, u64)>,
    /// Run random seeds for this many minutes.
    #[arg(long, conflicts_with = "seconds")]
    minutes: Option<u64>,
    /// Run random seeds for this many seconds.
    #[arg(long)]
    seconds: Option<u64>,
    /// Override the number of safety steps drawn from each seed.
    #[arg(long)]
    steps: Option<u64>,
    /// Print only failures and the final summary.
    #[arg(long)]
    quiet: bool,
}

fn parse_seed_range(text: &str) -> Result<(u64, u64), String> {
    let (start, end) = text.split_once("..").ok_or_else(|| format!("expected A..B, got {text:?}"))?;
    let start: u64 = start.trim().parse().map_err(|error| format!("bad range start {start:?}: {error}"))?;
    let end: u64 = end.trim().parse().map_err(|error| format!("bad range end {end:?}: {error}"))?;
    if start >= end {
        return Err(format!("empty range {start}..{end}"));
    }
    Ok((start, end))
}

/// Runs one seed, printing its configuration first and its result (or the failure with the
/// replay command) after. Returns the steps simulated, or `None` on failure.
fn run_one(seed: u64, options: &RunOptions, quiet: bool) -> Option<u64> {
    let mut config = config_for_seed(seed);
    if let Some(step_count) = options.step_count {
        config.step_count = step_count;
    }
    if !quiet {
        println!("ALLOCDB_SEED={seed}\n{config}");
    }
    match catch_unwind(AssertUnwindSafe(|| run(seed, options))) {
        Ok(Ok(report)) => {
            if !quiet {
                println!("{report}");
            }
            Some(report.stats.steps)
        }
        Ok(Err(failure)) => {
            if quiet {
                println!("ALLOCDB_SEED={seed}\n{config}");
            }
            println!("{failure}");
            None
        }
        Err(_) => {
            if quiet {
                println!("ALLOCDB_SEED={seed}\n{config}");
            }
            println!(
                "ALLOCDB_SEED={seed} FAILED: panicked (message above)\nreplay: {}",
                replay_command(seed, options.step_count)
            );
            None
        }
    }
}

/// A seed from the operating system's randomness (std seeds `RandomState` from it).
fn random_seed(counter: u64) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(counter);
    hasher.finish()
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let options = RunOptions { step_count: arguments.steps };
    let started = Instant::now();
    let mut seeds_run = 0_u64;
    let mut steps_run = 0_u64;
    let mut record = |steps: Option<u64>| -> bool {
        seeds_run += 1;
        steps_run += steps.unwrap_or(0);
        steps.is_some()
    };
    let passed = if let Some(seed) = arguments.seed {
        record(run_one(seed, &options, arguments.quiet))
    } else if let Some((start, end)) = arguments.seeds {
        (start..end).all(|seed| record(run_one(seed, &options, arguments.quiet)))
    } else {
        let seconds = arguments.seconds.or(arguments.minutes.map(|minutes| minutes * 60)).unwrap_or(60);
        let budget = Duration::from_secs(seconds);
        let mut counter = 0;
        loop {
            if started.elapsed() >= budget {
                break true;
            }
            counter += 1;
            if !record(run_one(random_seed(counter), &options, arguments.quiet)) {
                break false;
            }
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}: {seeds_run} seeds, {steps_run} simulated steps in {elapsed:.1} s",
        if passed { "passed" } else { "FAILED" }
    );
    if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
