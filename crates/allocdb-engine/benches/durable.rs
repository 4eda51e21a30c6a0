//! Durable single-node benchmark on the real disk (`validation.md` §4): figures, not pass/fail.
//!
//! It measures, in one run and on one directory's filesystem:
//! 1. the raw fsync floor (`durable/floor.rs`): 4 KiB `pwrite` + `fdatasync` in a loop, into
//!    `fallocate`d never-written space (the layout of a fresh log segment) and over blocks
//!    already written (the pure data path), `--repeats` times each; and again for 0.5 s just
//!    before every closed-loop cell, because on a shared machine the disk's rate drifts by an
//!    order of magnitude within a minute;
//! 2. a closed loop through `allocdb_engine::Engine` (`durable/closed_loop.rs`) with exactly N
//!    requests in flight for each N of `--concurrency`: one driver thread submits N keyed
//!    single-command requests, each virtual submitter cycling reserve → release on its own
//!    resource with a fresh operation id per request. After a warm-up it reports commands/s,
//!    commit latency p50/p99/max, engine syncs during the window, commands per sync, and
//!    commands/s divided by the floor measured just before the cell. Every reply must be
//!    committed with result `ok` (not from the retry cache); anything else is counted, listed,
//!    and makes the process exit non-zero;
//! 3. recovery (`durable/recovery.rs`): a log of `--records` records is built with
//!    `EngineCore`, then `EngineCore::open` is timed replaying the log alone (warm and cold page
//!    cache) and from a snapshot of the same state.
//!
//! Every measured cell runs `--repeats` times; the table shows medians with [min–max]. A
//! diagnostics table follows: engine time per group, the engine and driver threads' CPU per
//! command and their run-queue wait (from `/proc/<tid>/schedstat`), which is how contention
//! from other processes on a shared machine shows up.
//!
//! Usage: `cargo bench -p allocdb-engine --bench durable [-- OPTIONS]` (about 2.5 minutes).
//! CI smoke run, a few seconds plus the build: `cargo bench -p allocdb-engine --bench durable
//! -- --smoke`. Options (each also an environment variable; the flag wins):
//! `--smoke` (`ALLOCDB_BENCH_SMOKE=1`: 0.3 s windows, one repeat, 20k records, small tables),
//! `--duration-secs S` (`ALLOCDB_BENCH_DURATION_SECS`, default 5),
//! `--warmup-secs S` (`ALLOCDB_BENCH_WARMUP_SECS`, default 1),
//! `--repeats R` (`ALLOCDB_BENCH_REPEATS`, default 3),
//! `--concurrency 1,16,64,1024` (`ALLOCDB_BENCH_CONCURRENCY`),
//! `--records N` (`ALLOCDB_BENCH_RECORDS`, default 2,000,000),
//! `--floor-secs S` (`ALLOCDB_BENCH_FLOOR_SECS`, default 1.5 per layout and repeat),
//! `--dir PATH` (`ALLOCDB_BENCH_DIR`, default `/var/tmp`; refused if tmpfs),
//! `--parts floor,loop,recovery` (`ALLOCDB_BENCH_PARTS`, default all three).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark harness")]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "figures for display; counts stay far below 2^52"
)]

// The crate root resolves modules next to itself; these live in `durable/` to keep each file
// to one job.
#[path = "durable/closed_loop.rs"]
mod closed_loop;
#[path = "durable/floor.rs"]
mod floor;
#[path = "durable/recovery.rs"]
mod recovery;
#[path = "durable/report.rs"]
mod report;
#[path = "durable/workload.rs"]
mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::floor::{FloorLayout, measure_floor, measure_floors};
use crate::report::Table;
use crate::workload::Scale;

fn main() {
    let options = Options::parse();
    let root = prepare_root(&options.root);
    let machine = Machine::describe(&root);
    println!(
        "AllocDB durable single-node benchmark{}",
        if options.scale == Scale::Smoke { " (smoke)" } else { "" }
    );
    machine.print();
    println!(
        "run: {:.1} s window after {:.1} s warm-up, {} repeats, concurrency {:?}, replay of {} records",
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64(),
        options.repeats,
        options.concurrency_levels,
        options.replay_records,
    );
    println!();

    let mut table = Table::default();
    if options.runs("floor") {
        measure_floors(&options, &root, &mut table);
    }
    let mut anomalies_total = 0;
    let loop_levels = if options.runs("loop") { options.concurrency_levels.as_slice() } else { &[] };
    for &concurrency in loop_levels {
        let mut cells = Vec::with_capacity(options.repeats);
        for repeat in 0..options.repeats {
            // The disk's fsync rate drifts with what else the machine does, so each cell gets
            // its own floor measured just before it, on the same filesystem.
            let floor = measure_floor(
                &root.join(format!("floor-n{concurrency}-r{repeat}")),
                FloorLayout::Preallocated,
                options.companion_floor_duration,
            );
            let path = root.join(format!("loop-n{concurrency}-r{repeat}"));
            let mut cell = closed_loop::run_closed_loop(&options, concurrency, &path);
            cell.floor_syncs_per_second = floor.syncs_per_second;
            std::fs::remove_dir_all(&path).expect("remove cell directory");
            eprintln!(
                "  N={concurrency:<5} repeat {repeat}: {:>9.0} commands/s, {:>7.1} commands/sync, p99 {:.2} ms, \
                 floor {:.0} fsyncs/s, load {}",
                cell.commands_per_second,
                cell.commands_per_sync,
                cell.latency_p99_ms,
                cell.floor_syncs_per_second,
                Machine::load_average(),
            );
            anomalies_total += cell.anomaly_count;
            cells.push(cell);
        }
        table.add_loop(concurrency, &cells);
    }
    let replay = options
        .runs("recovery")
        .then(|| recovery::run_recovery(&options, &root.join("recovery"), &mut table));
    std::fs::remove_dir_all(&root).expect("remove benchmark directory");

    println!("machine load at end: {}", Machine::load_average());
    println!();
    table.print();
    if let Some(replay) = replay {
        println!();
        replay.print();
    }
    if anomalies_total > 0 {
        eprintln!("FAILED: {anomalies_total} replies were not committed ok (see the anomalies column)");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Options and machine description.

struct Options {
    scale: Scale,
    parts: Vec<String>,
    concurrency_levels: Vec<usize>,
    warmup: Duration,
    duration: Duration,
    floor_duration: Duration,
    companion_floor_duration: Duration,
    repeats: usize,
    replay_records: u64,
    root: PathBuf,
}

impl Options {
    fn parse() -> Options {
        let mut flags: BTreeMap<String, String> = BTreeMap::new();
        let mut arguments = std::env::args().skip(1);
        while let Some(argument) = arguments.next() {
            match argument.as_str() {
                // Cargo passes `--bench` to every bench target; it means nothing here.
                "--bench" => {}
                "--smoke" => {
                    flags.insert("smoke".to_owned(), "1".to_owned());
                }
                flag if flag.starts_with("--") => {
                    let (name, value) = match flag.split_once('=') {
                        Some((name, value)) => (name.to_owned(), value.to_owned()),
                        None => (flag.to_owned(), arguments.next().unwrap_or_else(|| usage(flag))),
                    };
                    flags.insert(name.trim_start_matches("--").to_owned(), value);
                }
                other => usage(other),
            }
        }
        let lookup = |name: &str| -> Option<String> {
            flags.get(name).cloned().or_else(|| {
                let variable = format!("ALLOCDB_BENCH_{}", name.to_uppercase().replace('-', "_"));
                std::env::var(variable).ok().filter(|value| !value.is_empty())
            })
        };
        for name in flags.keys() {
            let known = [
                "smoke",
                "duration-secs",
                "warmup-secs",
                "floor-secs",
                "repeats",
                "concurrency",
                "records",
                "dir",
                "parts",
            ];
            if !known.contains(&name.as_str()) {
                usage(name);
            }
        }
        let smoke = lookup("smoke").is_some_and(|value| value != "0");
        let seconds = |name: &str, default: f64| {
            let value =
                lookup(name).map_or(default, |text| text.parse::<f64>().unwrap_or_else(|_| usage(name)));
            Duration::from_secs_f64(value)
        };
        let (duration, warmup, floor, companion_floor, repeats, records) =
            if smoke { (0.3, 0.1, 0.2, 0.1, 1, 20_000) } else { (5.0, 1.0, 1.5, 0.5, 3, 2_000_000) };
        let concurrency_levels = lookup("concurrency").map_or_else(
            || vec![1, 16, 64, 1024],
            |text| {
                text.split(',')
                    .map(|level| level.trim().parse().unwrap_or_else(|_| usage("concurrency")))
                    .collect()
            },
        );
        assert!(concurrency_levels.iter().all(|&level| level > 0), "concurrency levels must be positive");
        let parts: Vec<String> = lookup("parts").map_or_else(
            || vec!["floor".to_owned(), "loop".to_owned(), "recovery".to_owned()],
            |text| text.split(',').map(|part| part.trim().to_owned()).collect(),
        );
        for part in &parts {
            if !["floor", "loop", "recovery"].contains(&part.as_str()) {
                usage(part);
            }
        }
        let options = Options {
            scale: if smoke { Scale::Smoke } else { Scale::Full },
            parts,
            concurrency_levels,
            warmup: seconds("warmup-secs", warmup),
            duration: seconds("duration-secs", duration),
            floor_duration: seconds("floor-secs", floor),
            companion_floor_duration: Duration::from_secs_f64(companion_floor),
            repeats: lookup("repeats")
                .map_or(repeats, |text| text.parse().unwrap_or_else(|_| usage("repeats"))),
            replay_records: lookup("records")
                .map_or(records, |text| text.parse().unwrap_or_else(|_| usage("records"))),
            root: PathBuf::from(lookup("dir").unwrap_or_else(|| "/var/tmp".to_owned())),
        };
        assert!(options.repeats > 0, "repeats must be at least 1");
        assert!(options.duration > Duration::ZERO, "duration must be positive");
        options
    }
}

impl Options {
    fn runs(&self, part: &str) -> bool {
        self.parts.iter().any(|name| name == part)
    }
}

fn usage(argument: &str) -> ! {
    eprintln!(
        "durable: bad argument {argument:?}\nusage: durable [--smoke] [--duration-secs S] [--warmup-secs S] \
         [--floor-secs S] [--repeats R] [--concurrency 1,16,64,1024] [--records N] [--dir PATH] [--parts floor,loop,recovery]"
    );
    std::process::exit(2);
}

/// Creates a fresh directory under `root` and refuses a memory-backed filesystem, where an
/// fsync costs nothing and every figure would be meaningless.
fn prepare_root(root: &Path) -> PathBuf {
    let path = root.join(format!("allocdb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&path).expect("create benchmark directory");
    let mount = Mount::containing(&path);
    assert!(
        !matches!(mount.filesystem.as_str(), "tmpfs" | "ramfs" | "overlay"),
        "{} is on {} ({}); point --dir at a real disk",
        path.display(),
        mount.filesystem,
        mount.device,
    );
    path
}

struct Mount {
    device: String,
    mounted_at: String,
    filesystem: String,
}

impl Mount {
    /// The `/proc/mounts` entry with the longest mount point that is a prefix of `path`.
    fn containing(path: &Path) -> Mount {
        let path = path.canonicalize().expect("canonical benchmark path");
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        mounts
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let device = fields.next()?.to_owned();
                let mounted_at = fields.next()?.to_owned();
                let filesystem = fields.next()?.to_owned();
                path.starts_with(&mounted_at).then_some(Mount { device, mounted_at, filesystem })
            })
            .max_by_key(|mount| mount.mounted_at.len())
            .unwrap_or(Mount {
                device: "unknown".to_owned(),
                mounted_at: "unknown".to_owned(),
                filesystem: "unknown".to_owned(),
            })
    }
}

struct Machine {
    cpu_count: usize,
    cpu_model: String,
    mount: Mount,
    path: PathBuf,
    load_average: String,
}

impl Machine {
    fn describe(path: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                line.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']))
            })
            .unwrap_or("unknown")
            .to_owned();
        Machine {
            cpu_count: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            cpu_model,
            mount: Mount::containing(path),
            path: path.to_owned(),
            load_average: Machine::load_average(),
        }
    }

    fn load_average() -> String {
        let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    }

    fn print(&self) {
        println!(
            "machine: {} CPUs ({}), load average at start {}",
            self.cpu_count, self.cpu_model, self.load_average
        );
        println!(
            "disk: {} on {} ({}, mounted at {})",
            self.path.display(),
            self.mount.device,
            self.mount.filesystem,
            self.mount.mounted_at,
        );
    }
}
