//! The fixed seed set: seeds 0 to 39 run the whole simulation (safety phase with faults,
//! liveness tail, final recovery) and must pass every check. CI runs these on every change;
//! a failure prints `ALLOCDB_SEED=<n>`, the drawn configuration and the replay command.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use allocdb_sim::{RunOptions, config_for_seed, run};

fn run_seeds(seeds: std::ops::Range<u64>) {
    let mut steps = 0;
    let mut spare_segments_used = 0;
    for seed in seeds {
        println!("ALLOCDB_SEED={seed}\n{}", config_for_seed(seed));
        match run(seed, &RunOptions::default()) {
            Ok(report) => {
                println!("{report}");
                steps += report.stats.steps;
                spare_segments_used += report.stats.spare_segments_used;
            }
            Err(failure) => panic!("{failure}"),
        }
    }
    println!("{steps} simulated steps");
    assert!(spare_segments_used > 0, "ten seeds should roll over onto (or move onto) a spare");
}

#[test]
fn seeds_0_to_9_pass_every_check() {
    run_seeds(0..10);
}

#[test]
fn seeds_10_to_19_pass_every_check() {
    run_seeds(10..20);
}

#[test]
fn seeds_20_to_29_pass_every_check() {
    run_seeds(20..30);
}

#[test]
fn seeds_30_to_39_pass_every_check() {
    run_seeds(30..40);
}
