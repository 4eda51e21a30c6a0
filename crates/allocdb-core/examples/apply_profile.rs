//! Applies a fixed number of commands of one workload at a given capacity, for counting
//! instructions and cache misses per command with `valgrind --tool=cachegrind` (this machine
//! exposes no hardware counters). Run it twice with different command counts and divide the
//! difference in misses by the difference in commands to cancel out the setup:
//!
//! `valgrind --tool=cachegrind --cache-sim=yes target/release/examples/apply_profile uncontended 1000000 200000`
#![allow(clippy::expect_used, clippy::missing_panics_doc, missing_docs, reason = "profiling driver")]

#[path = "../benches/support/workload.rs"]
mod workload;

fn main() {
    let mut arguments = std::env::args().skip(1);
    let mix = arguments.next().unwrap_or_else(|| "uncontended".to_owned());
    let capacity: u32 = arguments.next().and_then(|value| value.parse().ok()).unwrap_or(100_000);
    let commands: u64 = arguments.next().and_then(|value| value.parse().ok()).unwrap_or(100_000);
    let workload = if mix == "hotspot" {
        let mut workload = workload::Workload::hotspot(capacity);
        workload.run_hotspot(commands);
        workload
    } else {
        let mut workload = workload::Workload::uncontended(capacity);
        workload.run_uncontended(commands);
        workload
    };
    println!(
        "{mix} capacity {capacity} commands {commands} busy {} lsn {}",
        workload.busy_count,
        workload.kernel.last_applied_lsn()
    );
}
