//! Apply throughput of the lease kernel at table capacities from 1k to 10M, and the memory each
//! table entry costs. Run: `cargo bench -p allocdb-core --bench apply`.
//!
//! Each sample applies `COMMANDS_PER_SAMPLE` commands to a kernel already in steady state (see
//! `workload.rs`); divan reports time per sample and commands per second. Memory per entry is
//! the allocated table bytes divided by the configured capacity, printed before the timings.
#![allow(
    clippy::expect_used,
    clippy::missing_panics_doc,
    clippy::cast_precision_loss,
    missing_docs,
    reason = "benchmark harness"
)]

#[path = "support/workload.rs"]
mod workload;

use workload::{Workload, config_for};

const COMMANDS_PER_SAMPLE: u64 = 200_000;
const CAPACITIES: [u32; 4] = [1_000, 100_000, 1_000_000, 10_000_000];

fn main() {
    print_memory_per_entry();
    divan::main();
}

fn print_memory_per_entry() {
    println!("memory per entry (allocated bytes / capacity):");
    println!(
        "{:>12} {:>14} {:>14} {:>16} {:>14}",
        "capacity", "per resource", "per lease", "per operation", "wheel total"
    );
    for capacity in CAPACITIES {
        let kernel = allocdb_core::Kernel::new(config_for(capacity)).expect("valid config");
        let memory = kernel.memory_usage();
        let per = |bytes: u64| bytes as f64 / f64::from(capacity);
        println!(
            "{capacity:>12} {:>14.1} {:>14.1} {:>16.1} {:>14}",
            per(memory.resources_bytes),
            per(memory.leases_bytes + memory.lease_members_bytes),
            per(memory.operations_bytes),
            memory.expiration_wheel_bytes
        );
    }
}

#[divan::bench(args = CAPACITIES, sample_count = 15, sample_size = 1)]
fn uncontended_reserve_activate_release(bencher: divan::Bencher, capacity: u32) {
    bench_uncontended(bencher, capacity, Prefetch::On);
}

/// The same workload without the kernel's prefetch stages: the baseline of the run above.
#[divan::bench(args = CAPACITIES, sample_count = 15, sample_size = 1)]
fn uncontended_without_prefetch(bencher: divan::Bencher, capacity: u32) {
    bench_uncontended(bencher, capacity, Prefetch::Off);
}

#[divan::bench(args = CAPACITIES, sample_count = 15, sample_size = 1)]
fn hotspot_sixteen_resources(bencher: divan::Bencher, capacity: u32) {
    let mut workload = Workload::hotspot(capacity);
    workload.run_hotspot(u64::from(capacity).min(2_000_000));
    bencher
        .counter(divan::counter::ItemsCount::new(COMMANDS_PER_SAMPLE))
        .bench_local(|| workload.run_hotspot(COMMANDS_PER_SAMPLE));
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefetch {
    On,
    Off,
}

fn bench_uncontended(bencher: divan::Bencher, capacity: u32, prefetch: Prefetch) {
    let mut workload = Workload::uncontended(capacity);
    workload.prefetch = prefetch == Prefetch::On;
    // Warm up into steady state: windows full, records expiring and leases retiring.
    workload.run_uncontended(u64::from(capacity).min(2_000_000));
    bencher
        .counter(divan::counter::ItemsCount::new(COMMANDS_PER_SAMPLE))
        .bench_local(|| workload.run_uncontended(COMMANDS_PER_SAMPLE));
}
