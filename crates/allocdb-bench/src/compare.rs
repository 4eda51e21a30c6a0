//! `allocdb bench compare`: the side-by-side matrix of workloads × targets, each cell one
//! `allocdb bench run` child process appending its result to `<out>/raw.jsonl`, then the
//! summary and plots of `summary.rs` and `plot.rs`.
//!
//! Invariants: each cell runs in a fresh process (an AllocDB cell starts its own server), so
//! no cell inherits another's warm caches or leaked connections; inside a repetition every
//! cell runs once, targets alternating within each workload, and repetitions follow one
//! another, so slow phases of a shared machine spread over all targets alike; a cell that
//! fails is recorded (status, stderr saved) and the matrix goes on; every command is written
//! to `commands.txt` exactly as run, before it runs. AllocDB is always durable: `--relaxed`
//! adds rows only for the peers.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::cli::{Durability, TargetKind};
use crate::summary::{self, FAILURES_FILE, MACHINE_FILE, RAW_FILE};

/// Time a cell may take beyond its warm-up and measured window (server start, preparing
/// 100,000 resources, the final held-count check) before it is stopped as hung.
const CELL_SLACK_S: f64 = 300.0;
/// How long a hung cell gets to exit after SIGTERM (stopping the server it started) before
/// it is killed.
const CELL_TERM_GRACE: Duration = Duration::from_secs(10);
/// Lines of a failed cell's stderr kept in `failures.jsonl` (the whole stream is in `logs/`).
const STDERR_TAIL_LINES: usize = 20;
/// Where `scripts/peers-setup.sh` writes `pids.env` unless `ALLOCDB_PEERS_DIR` says otherwise.
const PEERS_DIR_DEFAULT: &str = "/var/tmp/allocdb-peers";

/// A cell shape of the matrix (the peer kit's shapes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MatrixWorkload {
    /// 100,000 resources, 32 clients, reserve → activate → release.
    Uncontended,
    /// One hot resource, 64 clients.
    Hotspot1,
    /// 16 hot resources, 64 clients.
    Hotspot16,
    /// Batches of 64 reserves, 16 clients.
    Batched,
    /// Writes with fenced reads, 32 clients.
    Mixed,
}

impl MatrixWorkload {
    /// The `bench run` flags of this shape.
    pub fn run_flags(self) -> &'static [&'static str] {
        match self {
            Self::Uncontended => &["--workload", "uncontended", "--resources", "100000", "--clients", "32"],
            Self::Hotspot1 => &["--workload", "hotspot", "--hot", "1", "--clients", "64"],
            Self::Hotspot16 => &["--workload", "hotspot", "--hot", "16", "--clients", "64"],
            Self::Batched => {
                &["--workload", "batched", "--resources", "100000", "--clients", "16", "--batch", "64"]
            }
            Self::Mixed => &["--workload", "mixed", "--resources", "100000", "--clients", "32"],
        }
    }
}

/// A peer server whose process id the runs measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerPid {
    /// `postgres` or `redis`.
    pub target: TargetKind,
    /// Its process id.
    pub pid: u32,
}

/// Parses `postgres=PID` or `redis=PID` (the `PEER_PIDS` line's shape).
///
/// # Errors
///
/// A missing `=`, a name that is not a peer, or a process id that is not a number.
pub fn parse_peer_pid(text: &str) -> Result<PeerPid, String> {
    let (name, pid) =
        text.split_once('=').ok_or_else(|| format!("expected postgres=PID or redis=PID, got {text:?}"))?;
    let target = peer_of_key(name).ok_or_else(|| format!("unknown peer {name:?} (postgres or redis)"))?;
    let pid =
        pid.trim().trim_matches(['"', '\'']).parse().map_err(|_| format!("bad process id in {text:?}"))?;
    Ok(PeerPid { target, pid })
}

/// Which peer a `pids.env` key names (`POSTGRES_PID`, `PG_PID`, `redis`...).
fn peer_of_key(key: &str) -> Option<TargetKind> {
    let key = key.trim().trim_start_matches("export ").trim().to_ascii_lowercase();
    if key.contains("postgres") || key.starts_with("pg") {
        Some(TargetKind::Postgres)
    } else if key.contains("redis") {
        Some(TargetKind::Redis)
    } else {
        None
    }
}

/// What `scripts/peers-setup.sh` tells about the peers it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeersEnv {
    /// Server process ids.
    pub pids: Vec<PeerPid>,
    /// `PEER_PG_URL`: the PostgreSQL connection string.
    pub pg_url: Option<String>,
    /// `PEER_REDIS_URL`: the Redis URL.
    pub redis_url: Option<String>,
}

/// Parses `pids.env` (`PEER_PID_POSTGRES=1`, `PEER_PG_URL='host=…'`, ...) or the
/// `PEER_PIDS postgres=1 redis=2` line the setup script prints. A pid is any `KEY=number`
/// whose key holds `PID` and names a peer; later entries win; other lines are ignored.
pub fn parse_peers_env(text: &str) -> PeersEnv {
    let mut env = PeersEnv::default();
    let mut add = |peer: PeerPid| {
        env.pids.retain(|known| known.target != peer.target);
        env.pids.push(peer);
    };
    for line in text.lines().map(str::trim).filter(|line| !line.starts_with('#')) {
        let line = line.strip_prefix("export ").unwrap_or(line).trim();
        if let Some(words) = line.strip_prefix("PEER_PIDS ") {
            words.split_whitespace().filter_map(|word| parse_peer_pid(word).ok()).for_each(&mut add);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim().trim_matches(['"', '\'']).to_owned();
        match key.trim() {
            "PEER_PG_URL" => env.pg_url = Some(value),
            "PEER_REDIS_URL" => env.redis_url = Some(value),
            key if key.to_ascii_uppercase().contains("PID") => {
                if let (Some(target), Ok(pid)) = (peer_of_key(key), value.parse()) {
                    add(PeerPid { target, pid });
                }
            }
            _ => {}
        }
    }
    env
}

/// `allocdb bench compare`.
#[derive(clap::Args, Clone, Debug)]
pub struct CompareArgs {
    /// Repetitions of the whole matrix (each one runs every cell once).
    #[arg(long, default_value_t = 3)]
    pub reps: u32,
    /// Measured seconds per cell.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Unmeasured seconds before each cell's window.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Targets, in the order they alternate within a workload.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "allocdb,postgres,redis")]
    pub targets: Vec<TargetKind>,
    /// Workloads, in run order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "uncontended,hotspot1,hotspot16,batched,mixed"
    )]
    pub workloads: Vec<MatrixWorkload>,
    /// Also run the peers with their non-durable settings, as separate rows.
    #[arg(long)]
    pub relaxed: bool,
    /// Output directory (default `bench-results/<UTC timestamp>`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Peer server process ids for CPU and memory figures, e.g. `postgres=123,redis=456`
    /// (default: read from `pids.env` in `--peers-dir`).
    #[arg(long, value_delimiter = ',', value_parser = parse_peer_pid)]
    pub peer_pids: Vec<PeerPid>,
    /// Where `scripts/peers-setup.sh` wrote `pids.env` (default `$ALLOCDB_PEERS_DIR`, else
    /// `/var/tmp/allocdb-peers`).
    #[arg(long, value_name = "DIR")]
    pub peers_dir: Option<PathBuf>,
    /// PostgreSQL connection string passed to the runs (default: the run's own).
    #[arg(long)]
    pub pg_url: Option<String>,
    /// Redis URL passed to the runs (default: the run's own).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Print the commands the matrix would run, and run none.
    #[arg(long)]
    pub dry_run: bool,
}

/// One run of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    /// 1-based repetition.
    pub rep: u32,
    /// Its shape.
    pub workload: MatrixWorkload,
    /// Its target.
    pub target: TargetKind,
    /// Durable, or (peers with `--relaxed`) their faster settings.
    pub durability: Durability,
}

impl Cell {
    /// A file-name-safe name, e.g. `rep1-hotspot16-postgres-durable`.
    pub fn name(&self) -> String {
        format!(
            "rep{}-{}-{}-{}",
            self.rep,
            value_name(&self.workload),
            value_name(&self.target),
            value_name(&self.durability)
        )
    }
}

/// The command-line name of a value (`hotspot16`, `postgres`, `durable`).
fn value_name<T: ValueEnum>(value: &T) -> String {
    value.to_possible_value().map_or_else(String::new, |value| value.get_name().to_owned())
}

/// The cells in run order: repetition by repetition; within one, workload by workload; within
/// a workload the targets in turn (a peer's relaxed row straight after its durable one).
/// Duplicated targets or workloads run once.
pub fn matrix(reps: u32, workloads: &[MatrixWorkload], targets: &[TargetKind], relaxed: bool) -> Vec<Cell> {
    let mut unique_workloads = workloads.to_vec();
    dedup_in_order(&mut unique_workloads);
    let mut unique_targets = targets.to_vec();
    dedup_in_order(&mut unique_targets);
    let mut cells = Vec::new();
    for rep in 1..=reps {
        for &workload in &unique_workloads {
            for &target in &unique_targets {
                cells.push(Cell { rep, workload, target, durability: Durability::Durable });
                if relaxed && target != TargetKind::Allocdb {
                    cells.push(Cell { rep, workload, target, durability: Durability::Relaxed });
                }
            }
        }
    }
    cells
}

fn dedup_in_order<T: PartialEq + Copy>(values: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(values.len());
    values.retain(|value| {
        let fresh = !seen.contains(value);
        if fresh {
            seen.push(*value);
        }
        fresh
    });
}

/// What every cell's command line shares.
#[derive(Clone, Debug)]
pub struct CellOptions {
    /// Measured seconds.
    pub duration: f64,
    /// Warm-up seconds.
    pub warmup: f64,
    /// The `raw.jsonl` every run appends to.
    pub json: PathBuf,
    /// Peer process ids.
    pub peer_pids: Vec<PeerPid>,
    /// PostgreSQL connection string, if not the run's default.
    pub pg_url: Option<String>,
    /// Redis URL, if not the run's default.
    pub redis_url: Option<String>,
}

/// The arguments after the executable for one cell: `bench run --target … --json … --quiet`.
pub fn cell_args(cell: &Cell, options: &CellOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |text: &str| args.push(OsString::from(text));
    for word in ["bench", "run", "--target", &value_name(&cell.target)] {
        push(word);
    }
    for word in cell.workload.run_flags() {
        push(word);
    }
    for word in [
        "--duration",
        &options.duration.to_string(),
        "--warmup",
        &options.warmup.to_string(),
        "--durability",
        &value_name(&cell.durability),
    ] {
        push(word);
    }
    let pids: Vec<String> = options
        .peer_pids
        .iter()
        .filter(|peer| peer.target == cell.target)
        .map(|peer| peer.pid.to_string())
        .collect();
    if !pids.is_empty() {
        push("--server-pids");
        push(&pids.join(","));
    }
    match (cell.target, &options.pg_url, &options.redis_url) {
        (TargetKind::Postgres, Some(url), _) => {
            push("--pg-url");
            push(url);
        }
        (TargetKind::Redis, _, Some(url)) => {
            push("--redis-url");
            push(url);
        }
        _ => {}
    }
    args.push(OsString::from("--json"));
    args.push(options.json.clone().into_os_string());
    args.push(OsString::from("--quiet"));
    args
}

/// A word quoted for a POSIX shell only when it needs it, so `commands.txt` can be pasted.
pub fn shell_quote(word: &str) -> String {
    let plain = |character: char| character.is_ascii_alphanumeric() || "_./=,:@%+-".contains(character);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A command line as `commands.txt` shows it.
pub fn command_line(exe: &Path, args: &[OsString]) -> String {
    let mut line = shell_quote(&exe.to_string_lossy());
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(&arg.to_string_lossy()));
    }
    line
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time (civil-from-days, proleptic Gregorian calendar).
pub fn utc_timestamp(unix_s: u64) -> String {
    let days = unix_s / 86_400;
    let second_of_day = unix_s % 86_400;
    // Howard Hinnant's civil_from_days, shifted so eras start on 0000-03-01.
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60
    )
}

fn now_unix_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// A cell that exited non-zero, hung, or wrote no result (one line of `failures.jsonl`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellFailure {
    /// Repetition.
    pub rep: u32,
    /// Workload name of the matrix.
    pub workload: String,
    /// Target.
    pub target: String,
    /// `durable` or `relaxed`.
    pub durability: String,
    /// How it ended (`exit status: 2`, `timed out after 312 s`, ...).
    pub status: String,
    /// Its full stderr, relative to the output directory.
    pub stderr_file: String,
    /// The last lines of that stderr.
    pub stderr_tail: String,
    /// The command exactly as run.
    pub command: String,
}

/// The machine the comparison ran on (`machine.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// CPUs this process may use (what `nproc` prints).
    pub nproc: usize,
    /// `MemTotal` of `/proc/meminfo`.
    pub memory_total_bytes: Option<u64>,
    /// The kernel release.
    pub kernel: Option<String>,
    /// The first `model name` of `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// 1, 5 and 15-minute load averages before the first cell.
    pub load_average_before: Option<[f64; 3]>,
    /// The same after the last cell.
    pub load_average_after: Option<[f64; 3]>,
    /// When the matrix started, UTC.
    pub started_utc: String,
    /// When it ended, UTC (empty while it runs).
    pub finished_utc: String,
    /// The executable every cell ran.
    pub exe: String,
}

/// `MemTotal` in bytes from `/proc/meminfo` text.
pub fn parse_memory_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kibibytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kibibytes.checked_mul(1_024)
}

/// The first `model name` from `/proc/cpuinfo` text.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    let line = cpuinfo.lines().find(|line| line.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

/// The three load averages from `/proc/loadavg` text.
pub fn parse_load_average(loadavg: &str) -> Option<[f64; 3]> {
    let mut fields = loadavg.split_whitespace().map(str::parse::<f64>);
    Some([fields.next()?.ok()?, fields.next()?.ok()?, fields.next()?.ok()?])
}

fn read_proc(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

impl MachineInfo {
    /// Reads the machine now (figures `/proc` lacks stay `None`).
    pub fn read(exe: &Path) -> Self {
        Self {
            nproc: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            memory_total_bytes: read_proc("/proc/meminfo").as_deref().and_then(parse_memory_total_bytes),
            kernel: read_proc("/proc/sys/kernel/osrelease").map(|text| text.trim().to_owned()),
            cpu_model: read_proc("/proc/cpuinfo").as_deref().and_then(parse_cpu_model),
            load_average_before: read_proc("/proc/loadavg").as_deref().and_then(parse_load_average),
            load_average_after: None,
            started_utc: utc_timestamp(now_unix_s()),
            finished_utc: String::new(),
            exe: exe.display().to_string(),
        }
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).context("encoding machine.json")?;
        fs::write(dir.join(MACHINE_FILE), json + "\n").context("writing machine.json")
    }
}

/// Peer pids and URLs: the command line's, else those in `pids.env` (only for peers among
/// the targets). Missing or dead pids are warned about, not fatal: the runs then lack the
/// servers' CPU and memory, nothing else.
fn resolve_peers(args: &CompareArgs) -> PeersEnv {
    let peers: Vec<TargetKind> =
        args.targets.iter().copied().filter(|target| *target != TargetKind::Allocdb).collect();
    let mut resolved = PeersEnv {
        pids: args.peer_pids.iter().copied().filter(|peer| peers.contains(&peer.target)).collect(),
        pg_url: args.pg_url.clone(),
        redis_url: args.redis_url.clone(),
    };
    if peers.is_empty() {
        return resolved;
    }
    let dir = args.peers_dir.clone().unwrap_or_else(|| {
        std::env::var_os("ALLOCDB_PEERS_DIR").map_or_else(|| PathBuf::from(PEERS_DIR_DEFAULT), PathBuf::from)
    });
    let file = dir.join("pids.env");
    match fs::read_to_string(&file) {
        Ok(text) => {
            let env = parse_peers_env(&text);
            for peer in env.pids.into_iter().filter(|peer| peers.contains(&peer.target)) {
                if !resolved.pids.iter().any(|known| known.target == peer.target) {
                    resolved.pids.push(peer);
                }
            }
            resolved.pg_url = resolved.pg_url.or(env.pg_url);
            resolved.redis_url = resolved.redis_url.or(env.redis_url);
        }
        Err(error) => eprintln!("allocdb bench compare: warning: no {} ({error})", file.display()),
    }
    for peer in &resolved.pids {
        if !Path::new(&format!("/proc/{}", peer.pid)).exists() {
            eprintln!(
                "allocdb bench compare: warning: {} pid {} is not running",
                value_name(&peer.target),
                peer.pid
            );
        }
    }
    for peer in peers.iter().filter(|peer| !resolved.pids.iter().any(|known| known.target == **peer)) {
        eprintln!(
            "allocdb bench compare: warning: no pid for {}; its server CPU and memory stay empty",
            value_name(peer)
        );
    }
    resolved
}

fn validate(args: &CompareArgs) -> Result<()> {
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("--duration must be positive, got {}", args.duration);
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        bail!("--warmup must be zero or positive, got {}", args.warmup);
    }
    if args.targets.is_empty() || args.workloads.is_empty() {
        bail!("--targets and --workloads must each name at least one");
    }
    Ok(())
}

/// `allocdb bench compare`: runs the matrix with `exe bench run …`, writes the summary and
/// plots, and fails (after writing everything) when a cell failed or any run counted a
/// correctness violation.
///
/// # Errors
///
/// Invalid options, an output directory that already holds results or cannot be written, a
/// child that cannot be started, failed cells, and correctness violations.
pub fn run_compare(args: &CompareArgs, exe: &Path) -> Result<()> {
    validate(args)?;
    let out =
        args.out.clone().unwrap_or_else(|| Path::new("bench-results").join(utc_timestamp(now_unix_s())));
    let cells = matrix(args.reps, &args.workloads, &args.targets, args.relaxed);
    let peers = resolve_peers(args);
    let options = CellOptions {
        duration: args.duration,
        warmup: args.warmup,
        json: out.join(RAW_FILE),
        peer_pids: peers.pids,
        pg_url: peers.pg_url,
        redis_url: peers.redis_url,
    };
    if args.dry_run {
        for cell in &cells {
            println!("{}", command_line(exe, &cell_args(cell, &options)));
        }
        return Ok(());
    }
    if out.join(RAW_FILE).exists() {
        bail!("{} already holds {RAW_FILE}; choose another --out", out.display());
    }
    fs::create_dir_all(out.join("logs")).with_context(|| format!("creating {}", out.display()))?;
    // Created up front so a matrix whose every cell failed still has a (empty) summary input.
    File::create(out.join(RAW_FILE)).context("creating raw.jsonl")?;
    let mut machine = MachineInfo::read(exe);
    machine.write(&out)?;
    let mut commands = File::create(out.join("commands.txt")).context("creating commands.txt")?;
    let invocation: Vec<String> = std::env::args().map(|arg| shell_quote(&arg)).collect();
    writeln!(commands, "# {} {}", machine.started_utc, invocation.join(" "))?;
    let started = Instant::now();
    let mut failures = 0_usize;
    for (index, cell) in cells.iter().enumerate() {
        let args = cell_args(cell, &options);
        let line = command_line(exe, &args);
        writeln!(commands, "{line}")?;
        commands.flush()?;
        eprintln!(
            "[{}/{}] {} ({:.0} s elapsed)",
            index + 1,
            cells.len(),
            cell.name(),
            started.elapsed().as_secs_f64()
        );
        let log_stem = format!("{:03}-{}", index + 1, cell.name());
        if let Some(failure) = run_cell(exe, &args, &out, &log_stem, *cell, &line)? {
            eprintln!("  FAILED: {} (stderr in {})", failure.status, failure.stderr_file);
            append_failure(&out, &failure)?;
            failures += 1;
        }
    }
    machine.load_average_after = read_proc("/proc/loadavg").as_deref().and_then(parse_load_average);
    machine.finished_utc = utc_timestamp(now_unix_s());
    machine.write(&out)?;
    let summary = summary::summarize_dir_report(&out)?;
    print!("{}", summary::render_markdown(&summary));
    eprintln!("allocdb bench compare: results in {}", out.display());
    if summary.violations_total > 0 {
        bail!("{} CORRECTNESS VIOLATIONS (see {}/summary.md)", summary.violations_total, out.display());
    }
    if failures > 0 {
        bail!("{failures} of {} cells failed (see {}/{FAILURES_FILE})", cells.len(), out.display());
    }
    Ok(())
}

fn append_failure(out: &Path, failure: &CellFailure) -> Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join(FAILURES_FILE))
        .context("opening failures.jsonl")?;
    writeln!(file, "{}", serde_json::to_string(failure).context("encoding a failure")?)
        .context("writing failures.jsonl")
}

/// Non-empty lines of a file (0 when it does not exist yet).
fn count_lines(path: &Path) -> usize {
    fs::read_to_string(path).map_or(0, |text| text.lines().filter(|line| !line.trim().is_empty()).count())
}

/// The last `count` lines of a text.
pub fn tail_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Runs one cell with stdout and stderr to `logs/`, echoes its stdout (the result row), and
/// returns what went wrong, if anything.
fn run_cell(
    exe: &Path,
    args: &[OsString],
    out: &Path,
    log_stem: &str,
    cell: Cell,
    line: &str,
) -> Result<Option<CellFailure>> {
    let stdout_path = out.join("logs").join(format!("{log_stem}.stdout"));
    let stderr_file = format!("logs/{log_stem}.stderr");
    let stderr_path = out.join(&stderr_file);
    let results_before = count_lines(&out.join(RAW_FILE));
    let child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).context("creating a stdout log")?)
        .stderr(File::create(&stderr_path).context("creating a stderr log")?)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let limit = Duration::from_secs_f64(cell_time_limit_s(args));
    let status = wait_with_limit(child, limit)?;
    print!("{}", fs::read_to_string(&stdout_path).unwrap_or_default());
    let wrote_result = count_lines(&out.join(RAW_FILE)) > results_before;
    let status = match status {
        Some(status) if status.success() && wrote_result => return Ok(None),
        Some(status) if status.success() => "exited 0 without a result line".to_owned(),
        Some(status) => status.to_string(),
        None => format!("timed out after {:.0} s", limit.as_secs_f64()),
    };
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    Ok(Some(CellFailure {
        rep: cell.rep,
        workload: value_name(&cell.workload),
        target: value_name(&cell.target),
        durability: value_name(&cell.durability),
        status,
        stderr_file,
        stderr_tail: tail_lines(&stderr, STDERR_TAIL_LINES),
        command: line.to_owned(),
    }))
}

/// Warm-up + duration of a cell's arguments plus [`CELL_SLACK_S`].
fn cell_time_limit_s(args: &[OsString]) -> f64 {
    let value_after = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|index| args.get(index + 1))
            .and_then(|value| value.to_str()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    value_after("--warmup") + value_after("--duration") + CELL_SLACK_S
}

/// Waits for a child up to `limit`; past it, SIGTERM (so the run stops the server it
/// started), then SIGKILL after [`CELL_TERM_GRACE`]. `None` when it had to be stopped. A
/// helper thread blocks in `wait`, so the exit is an event, not something polled for.
fn wait_with_limit(mut child: Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let pid = child.id().to_string();
    let (exited, exit) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = exited.send(child.wait());
    });
    if let Ok(status) = exit.recv_timeout(limit) {
        let _ = waiter.join();
        return Ok(Some(status.context("waiting for a cell")?));
    }
    // Only this child's own pid is signalled, never a process name. Had it exited in the
    // microseconds since the timeout, Linux would not have handed its pid to another process
    // yet (pids are allocated in increasing order and wrap only after the whole range).
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    if exit.recv_timeout(CELL_TERM_GRACE).is_err() {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        let _ = exit.recv();
    }
    let _ = waiter.join();
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test")]

    use clap::{Parser, Subcommand};

    use super::*;
    use crate::cli::{RunArgs, Workload};

    /// The `allocdb bench run` command line, as the binary parses it.
    #[derive(Parser)]
    struct Binary {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Subcommand)]
    enum Top {
        Bench {
            #[command(subcommand)]
            command: BenchCommand,
        },
    }

    #[derive(Subcommand)]
    enum BenchCommand {
        Run(RunArgs),
        Compare(CompareArgs),
    }

    fn parse_run(args: &[OsString]) -> RunArgs {
        let words = std::iter::once(OsString::from("allocdb")).chain(args.iter().cloned());
        match Binary::try_parse_from(words).unwrap().command {
            Top::Bench { command: BenchCommand::Run(run) } => run,
            Top::Bench { command: BenchCommand::Compare(_) } => panic!("not a run"),
        }
    }

    fn parse_compare(words: &[&str]) -> CompareArgs {
        let words = ["allocdb", "bench", "compare"].iter().chain(words);
        match Binary::try_parse_from(words).unwrap().command {
            Top::Bench { command: BenchCommand::Compare(compare) } => compare,
            Top::Bench { command: BenchCommand::Run(_) } => panic!("not a compare"),
        }
    }

    fn options() -> CellOptions {
        CellOptions {
            duration: 10.0,
            warmup: 2.5,
            json: PathBuf::from("/tmp/out dir/raw.jsonl"),
            peer_pids: vec![
                PeerPid { target: TargetKind::Postgres, pid: 111 },
                PeerPid { target: TargetKind::Redis, pid: 222 },
            ],
            pg_url: Some("host=127.0.0.1 port=6000 user=bench".to_owned()),
            redis_url: None,
        }
    }

    fn cell(workload: MatrixWorkload, target: TargetKind, durability: Durability) -> Cell {
        Cell { rep: 1, workload, target, durability }
    }

    #[test]
    fn matrix_alternates_targets_within_each_rep_and_repeats_the_whole_round() {
        let cells = matrix(
            2,
            &[MatrixWorkload::Uncontended, MatrixWorkload::Hotspot1],
            &[TargetKind::Allocdb, TargetKind::Postgres, TargetKind::Redis],
            false,
        );
        let names: Vec<String> = cells.iter().map(Cell::name).collect();
        assert_eq!(
            names,
            [
                "rep1-uncontended-allocdb-durable",
                "rep1-uncontended-postgres-durable",
                "rep1-uncontended-redis-durable",
                "rep1-hotspot1-allocdb-durable",
                "rep1-hotspot1-postgres-durable",
                "rep1-hotspot1-redis-durable",
                "rep2-uncontended-allocdb-durable",
                "rep2-uncontended-postgres-durable",
                "rep2-uncontended-redis-durable",
                "rep2-hotspot1-allocdb-durable",
                "rep2-hotspot1-postgres-durable",
                "rep2-hotspot1-redis-durable",
            ]
        );
    }

    #[test]
    fn relaxed_adds_peer_rows_after_their_durable_ones_and_never_for_allocdb() {
        let cells = matrix(
            1,
            &[MatrixWorkload::Batched],
            &[TargetKind::Allocdb, TargetKind::Postgres, TargetKind::Redis],
            true,
        );
        let names: Vec<String> = cells.iter().map(Cell::name).collect();
        assert_eq!(
            names,
            [
                "rep1-batched-allocdb-durable",
                "rep1-batched-postgres-durable",
                "rep1-batched-postgres-relaxed",
                "rep1-batched-redis-durable",
                "rep1-batched-redis-relaxed",
            ]
        );
    }

    #[test]
    fn matrix_runs_a_repeated_target_or_workload_once() {
        let cells = matrix(
            1,
            &[MatrixWorkload::Mixed, MatrixWorkload::Mixed],
            &[TargetKind::Redis, TargetKind::Redis],
            false,
        );
        assert_eq!(cells.len(), 1);
    }

    #[test]
    fn default_compare_options_run_three_reps_of_every_workload_on_every_target() {
        let args = parse_compare(&[]);
        assert_eq!((args.reps, args.duration, args.warmup, args.relaxed), (3, 10.0, 2.0, false));
        assert_eq!(args.targets, [TargetKind::Allocdb, TargetKind::Postgres, TargetKind::Redis]);
        assert_eq!(args.workloads.len(), 5);
        assert_eq!(matrix(args.reps, &args.workloads, &args.targets, args.relaxed).len(), 45);
        let args = parse_compare(&[
            "--targets",
            "postgres,redis",
            "--workloads",
            "hotspot16",
            "--peer-pids",
            "postgres=5,redis=6",
        ]);
        assert_eq!(args.targets, [TargetKind::Postgres, TargetKind::Redis]);
        assert_eq!(args.workloads, [MatrixWorkload::Hotspot16]);
        assert_eq!(
            args.peer_pids,
            [PeerPid { target: TargetKind::Postgres, pid: 5 }, PeerPid { target: TargetKind::Redis, pid: 6 }]
        );
    }

    #[test]
    fn every_cell_command_line_parses_into_the_run_it_means() {
        let expected = [
            (MatrixWorkload::Uncontended, Workload::Uncontended, 100_000, None, 32, None),
            (MatrixWorkload::Hotspot1, Workload::Hotspot, 100_000, Some(1), 64, None),
            (MatrixWorkload::Hotspot16, Workload::Hotspot, 100_000, Some(16), 64, None),
            (MatrixWorkload::Batched, Workload::Batched, 100_000, None, 16, Some(64)),
            (MatrixWorkload::Mixed, Workload::Mixed, 100_000, None, 32, None),
        ];
        for (matrix_workload, workload, resources, hot, clients, batch) in expected {
            for target in [TargetKind::Allocdb, TargetKind::Postgres, TargetKind::Redis] {
                for durability in [Durability::Durable, Durability::Relaxed] {
                    let args = cell_args(&cell(matrix_workload, target, durability), &options());
                    assert_eq!(args[..2], [OsString::from("bench"), OsString::from("run")]);
                    let run = parse_run(&args);
                    assert_eq!((run.target, run.workload, run.durability), (target, workload, durability));
                    assert_eq!((run.resources, run.clients), (resources, clients));
                    if let Some(hot) = hot {
                        assert_eq!(run.hot, hot);
                    }
                    if let Some(batch) = batch {
                        assert_eq!(run.batch, batch);
                    }
                    assert_eq!((run.duration, run.warmup), (10.0, 2.5));
                    assert_eq!(run.json, Some(PathBuf::from("/tmp/out dir/raw.jsonl")));
                    assert!(run.quiet);
                    let pids = match target {
                        TargetKind::Allocdb => vec![],
                        TargetKind::Postgres => vec![111],
                        TargetKind::Redis => vec![222],
                    };
                    assert_eq!(run.server_pids, pids);
                    // Only PostgreSQL runs get the connection string; the others keep their default.
                    let has_pg_url = args.iter().any(|arg| arg == "--pg-url");
                    assert_eq!(has_pg_url, target == TargetKind::Postgres);
                    if has_pg_url {
                        assert_eq!(run.pg_url, "host=127.0.0.1 port=6000 user=bench");
                    }
                }
            }
        }
    }

    #[test]
    fn command_line_quotes_only_words_a_shell_would_split() {
        let args =
            cell_args(&cell(MatrixWorkload::Hotspot1, TargetKind::Postgres, Durability::Durable), &options());
        let line = command_line(Path::new("/usr/bin/allocdb"), &args);
        assert_eq!(
            line,
            "/usr/bin/allocdb bench run --target postgres --workload hotspot --hot 1 --clients 64 --duration 10 --warmup 2.5 \
             --durability durable --server-pids 111 --pg-url 'host=127.0.0.1 port=6000 user=bench' \
             --json '/tmp/out dir/raw.jsonl' --quiet"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn peer_pids_and_urls_are_read_from_env_files_and_setup_output() {
        let env = "# Written by scripts/peers-setup.sh\nPEER_PID_POSTGRES=4242\nexport PEER_PID_REDIS=\"4343\"\n\
                   PEER_PG_URL='host=127.0.0.1 port=6543 user=bench dbname=bench'\n\
                   PEER_REDIS_URL='redis://127.0.0.1:6380/'\nOTHER=1\n";
        assert_eq!(
            parse_peers_env(env),
            PeersEnv {
                pids: vec![
                    PeerPid { target: TargetKind::Postgres, pid: 4242 },
                    PeerPid { target: TargetKind::Redis, pid: 4343 }
                ],
                pg_url: Some("host=127.0.0.1 port=6543 user=bench dbname=bench".to_owned()),
                redis_url: Some("redis://127.0.0.1:6380/".to_owned()),
            }
        );
        assert_eq!(
            parse_peers_env("PEER_PIDS postgres=7 redis=8").pids,
            [PeerPid { target: TargetKind::Postgres, pid: 7 }, PeerPid { target: TargetKind::Redis, pid: 8 }]
        );
        assert!(parse_peer_pid("mysql=3").is_err());
        assert!(parse_peer_pid("redis=x").is_err());
    }

    #[test]
    fn utc_timestamp_formats_known_instants() {
        assert_eq!(utc_timestamp(0), "19700101T000000Z");
        assert_eq!(utc_timestamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_timestamp(1_700_000_000), "20231114T221320Z");
    }

    #[test]
    fn machine_figures_parse_from_proc_text() {
        assert_eq!(parse_memory_total_bytes("MemTotal:        8000 kB\nMemFree: 1 kB\n"), Some(8_192_000));
        let cpuinfo =
            "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(parse_load_average("0.52 1.10 0.98 2/345 6789\n"), Some([0.52, 1.10, 0.98]));
        assert_eq!(parse_load_average(""), None);
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
    }

    #[test]
    fn cell_time_limit_covers_warmup_duration_and_slack() {
        let args =
            cell_args(&cell(MatrixWorkload::Mixed, TargetKind::Allocdb, Durability::Durable), &options());
        assert!((cell_time_limit_s(&args) - (12.5 + CELL_SLACK_S)).abs() < 1e-9);
    }

    #[test]
    fn a_cell_that_exits_in_time_reports_its_status_and_a_hung_one_is_stopped() {
        let quick = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let status = wait_with_limit(quick, Duration::from_mins(1)).unwrap().unwrap();
        assert_eq!(status.code(), Some(3));

        let hung = Command::new("sleep").arg("600").spawn().unwrap();
        let pid = hung.id().to_string();
        assert!(wait_with_limit(hung, Duration::from_millis(50)).unwrap().is_none());
        let alive = Command::new("kill").args(["-0", &pid]).stderr(std::process::Stdio::null()).status();
        assert!(!alive.unwrap().success(), "the hung cell's process is gone");
    }
}
