//! `allocdb bench run`: one workload against one target, measured and checked, as one
//! [`RunResult`] (a table row on stdout, optionally a JSON line).
//!
//! Around the clients' window it samples the machine (CPU of client, server and the rest) and
//! the target's durability counters at the window's two edges, measures the disk's fsync floor
//! just before the run, reads the server's peak RSS after it, and asks the target how many
//! resources are still held once every client released what it won.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::allocdb_target::{AllocdbTarget, http_get, metric_value};
use crate::backend::{DurabilityCounters, Target};
use crate::cli::{Durability, RunArgs, TargetKind, Workload};
use crate::driver::{Plan, drive};
use crate::machine::{CpuSample, fsync_floor_us, peak_rss_bytes};
use crate::report::{CpuUse, RecoveryFigures, RunResult};
use crate::server::{ServerProcess, ServerSizing};

/// How long the fsync floor is probed before a run.
const FSYNC_PROBE: Duration = Duration::from_secs(1);

/// Runs `args` (with `exe` as the `allocdb` binary for servers it starts).
///
/// # Errors
/// The target could not be started, reached or prepared. Correctness violations are results.
pub async fn run(args: &RunArgs, exe: &Path) -> Result<RunResult> {
    if args.workload == Workload::Recovery {
        if args.target != TargetKind::Allocdb {
            bail!("the recovery workload runs against AllocDB only");
        }
        return recovery(args, exe).await;
    }
    match args.target {
        TargetKind::Allocdb => run_allocdb(args, exe).await,
        TargetKind::Postgres => {
            let target = crate::postgres::PostgresTarget::new(args).await?;
            measure(Arc::new(target), args, &probe_dir(None)).await
        }
        TargetKind::Redis => {
            let target = crate::redis_target::RedisTarget::new(args).await?;
            measure(Arc::new(target), args, &probe_dir(None)).await
        }
    }
}

/// Where data of a started server goes: `--data-dir`, else a fresh directory on disk (never
/// `/tmp`, which may be memory and would make fsync free).
fn data_base(args: &RunArgs) -> PathBuf {
    args.data_dir.clone().unwrap_or_else(|| probe_dir(None))
}

fn probe_dir(preferred: Option<&Path>) -> PathBuf {
    preferred.map_or_else(
        || std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from),
        Path::to_path_buf,
    )
}

async fn run_allocdb(args: &RunArgs, exe: &Path) -> Result<RunResult> {
    if args.durability == Durability::Relaxed {
        bail!("AllocDB has no relaxed durability: every acknowledged write is fsynced");
    }
    if let Some(binary) = &args.server {
        let http = args
            .server_http
            .as_deref()
            .context("--server needs --server-http (metrics, and the HTTP API with --http)")?
            .parse()
            .context("--server-http must be host:port with a numeric address")?;
        let target = AllocdbTarget::connect(binary.clone(), http, args.http, None).await?;
        return measure(Arc::new(target), args, &probe_dir(args.data_dir.as_deref())).await;
    }
    let base = data_base(args);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let dir = tempfile::Builder::new().prefix("allocdb-bench-").tempdir_in(&base)?;
    let data_dir = dir.path().join("data");
    let heavy = args.workload == Workload::Batched && args.batch >= 1024;
    let sizing = ServerSizing::for_workload(resources_of(args), heavy);
    let binary = server_binary(args, exe);
    let server = ServerProcess::start(&binary, &data_dir, &sizing.config_toml()).await?;
    let target =
        AllocdbTarget::connect(server.listen.to_string(), server.http, args.http, Some(&server)).await?;
    let result = measure(Arc::new(target), args, dir.path()).await;
    let stopped = server.stop().await;
    let result = result?;
    stopped.context("stopping the server after the run")?;
    Ok(result)
}

fn server_binary(args: &RunArgs, exe: &Path) -> PathBuf {
    args.server_binary.clone().unwrap_or_else(|| exe.to_path_buf())
}

fn resources_of(args: &RunArgs) -> u64 {
    if args.workload == Workload::Hotspot { args.hot } else { args.resources }
}

fn plan_of(args: &RunArgs) -> Plan {
    Plan {
        workload: args.workload,
        resources: resources_of(args),
        clients: args.clients,
        batch: if args.workload == Workload::Batched { args.batch } else { 1 },
        reads_per_write: args.reads_per_write,
        ttl_ms: args.ttl_ms,
        retry_pct: args.retry_pct,
        activate: !args.skip_activate && args.workload != Workload::Hotspot,
        seed: args.seed,
        rate: args.rate,
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        duration: Duration::from_secs_f64(args.duration.max(0.1)),
    }
}

fn progress_bar(args: &RunArgs, label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(1000),
        if args.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
    );
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_owned());
    bar
}

/// Runs the plan against a prepared target and assembles the result.
async fn measure<T: Target>(target: Arc<T>, args: &RunArgs, probe: &Path) -> Result<RunResult> {
    let plan = plan_of(args);
    plan.validate()?;
    let label = target.label();
    let floor = fsync_floor_us(probe, FSYNC_PROBE).ok();
    if !args.quiet {
        eprintln!("prepare {} {}: {} resources", label.target, label.durability, plan.resources);
    }
    target.prepare(plan.resources).await.context("preparing the target")?;
    let pids = target.server_pids();
    let (window_sender, window) = tokio::sync::oneshot::channel();
    let sampler = {
        let target = Arc::clone(&target);
        let pids = pids.clone();
        tokio::spawn(async move {
            let (start, end): (Instant, Instant) = window.await.context("the run ended before its window")?;
            tokio::time::sleep_until(start.into()).await;
            let (cpu_start, counters_start) = (CpuSample::take(&pids), target.durability_counters().await?);
            tokio::time::sleep_until(end.into()).await;
            let (cpu_end, counters_end) = (CpuSample::take(&pids), target.durability_counters().await?);
            anyhow::Ok((cpu_start.until(&cpu_end), counters_start.zip(counters_end)))
        })
    };
    let bar = progress_bar(args, &format!("{} {:?}", label.target, plan.workload).to_lowercase());
    let warmup_share = plan.warmup.as_secs_f64() / (plan.warmup + plan.duration).as_secs_f64();
    let measured = drive(&target, plan, window_sender, |fraction, ops| {
        bar.set_position((fraction * 1000.0) as u64);
        let measuring = (fraction - warmup_share).max(0.0) * (plan.warmup + plan.duration).as_secs_f64();
        if measuring > 0.0 {
            bar.set_message(format!("{:.0} ops/s", ops as f64 / measuring));
        } else {
            bar.set_message("warming up");
        }
    })
    .await?;
    bar.finish_and_clear();
    let (cpu, counters) = sampler.await??;
    let server_peak_rss_bytes = peak_rss_bytes(&pids);
    let mut correctness = measured.correctness;
    correctness.held_at_end = target.held_count(plan.resources).await.context("counting held resources")?;
    let seconds = plan.duration.as_secs_f64();
    let (fsyncs_per_s, commands_per_fsync, fsync_mean_us) = durability_rates(counters, seconds);
    let commit_us = fsync_mean_us.or(floor.map(|floor| floor as f64)).filter(|&us| us > 0.0);
    Ok(RunResult {
        target: label.target,
        variant: label.variant,
        durability: label.durability,
        durable: label.durable,
        workload: format!("{:?}", plan.workload).to_lowercase(),
        mode: if plan.rate.is_some() { "open" } else { "closed" }.to_owned(),
        resources: plan.resources,
        clients: plan.clients,
        batch: plan.batch,
        offered_requests_per_s: plan.rate.unwrap_or(0.0),
        seconds,
        ops: measured.counts.ops,
        ops_per_s: measured.counts.ops as f64 / seconds,
        requests: measured.counts.requests,
        wins_per_s: measured.counts.wins as f64 / seconds,
        busy: measured.counts.busy,
        replays: measured.counts.replays,
        errors: measured.counts.errors,
        latency: measured.latency,
        acquire: measured.acquire,
        latency_cdf: measured.latency_cdf,
        fsyncs_per_s,
        commands_per_fsync,
        fsync_floor_p50_us: floor,
        fsync_mean_us,
        // Only a durable target waits for its flush; a relaxed one has no commit latency to
        // bound it, and a ping commits nothing.
        ceiling_requests_per_s: commit_us
            .filter(|_| plan.rate.is_none() && label.durable && plan.workload != Workload::Ping)
            .map(|commit_us| plan.clients as f64 * 1e6 / commit_us),
        cpu: CpuUse {
            client_pct: cpu.own_pct,
            server_pct: cpu.server_pct,
            other_pct: cpu.other_pct,
            idle_pct: cpu.idle_pct,
        },
        server_peak_rss_bytes,
        recovery: None,
        correctness,
    })
}

fn durability_rates(
    counters: Option<(DurabilityCounters, DurabilityCounters)>,
    seconds: f64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let Some((start, end)) = counters else { return (None, None, None) };
    let fsyncs = end.fsyncs.saturating_sub(start.fsyncs);
    let commands = end.commands.saturating_sub(start.commands);
    let fsync_mean_us = match (start.fsync_micros, end.fsync_micros) {
        (Some(before), Some(after)) if fsyncs > 0 => {
            Some(after.saturating_sub(before) as f64 / fsyncs as f64)
        }
        _ => None,
    };
    (Some(fsyncs as f64 / seconds), (fsyncs > 0).then(|| commands as f64 / fsyncs as f64), fsync_mean_us)
}

/// The recovery workload: fill a log with `--records` records, stop the server cleanly,
/// restart it and time the restart until the first answered request.
async fn recovery(args: &RunArgs, exe: &Path) -> Result<RunResult> {
    let base = data_base(args);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let dir = tempfile::Builder::new().prefix("allocdb-bench-").tempdir_in(&base)?;
    let data_dir = dir.path().join("data");
    let lanes = 16_u64;
    let batch = 4096_u64;
    let mut sizing = ServerSizing::for_workload(lanes * batch, false);
    if args.snapshot {
        sizing.snapshot_interval_records = (args.records - args.records / 10).max(1);
    }
    let binary = server_binary(args, exe);
    let server = ServerProcess::start(&binary, &data_dir, &sizing.config_toml()).await?;
    let target =
        Arc::new(AllocdbTarget::connect(server.listen.to_string(), server.http, false, Some(&server)).await?);
    target.prepare(lanes * batch).await?;
    let bar = progress_bar(args, "recovery: writing the log");
    let written = crate::recovery::fill_log(&target, args.records, lanes, batch, |done| {
        bar.set_position(done * 1000 / args.records.max(1));
        bar.set_message(format!("{done} records"));
    })
    .await?;
    bar.finish_and_clear();
    let lsn_before = applied_lsn(server.http).await?;
    server.stop().await.context("stopping the server before the restart")?;
    let data_bytes = directory_bytes(&data_dir);
    let started = Instant::now();
    let restarted = ServerProcess::start(&binary, &data_dir, &sizing.config_toml()).await?;
    let restart = started.elapsed();
    let lsn_after = applied_lsn(restarted.http).await?;
    let (_, metrics) = http_get(restarted.http, "/metrics").await?;
    let replayed = metric_value(&metrics, "allocdb_recovery_replayed_entries").unwrap_or(0.0) as u64;
    let server_peak_rss_bytes = peak_rss_bytes(&[restarted.pid()]);
    restarted.stop().await?;
    let mut result = RunResult {
        target: "allocdb".to_owned(),
        variant: "binary".to_owned(),
        durability: "fdatasync".to_owned(),
        durable: true,
        workload: "recovery".to_owned(),
        mode: "closed".to_owned(),
        resources: lanes * batch,
        seconds: restart.as_secs_f64(),
        ops: replayed,
        ops_per_s: replayed as f64 / restart.as_secs_f64().max(1e-9),
        server_peak_rss_bytes,
        recovery: Some(RecoveryFigures {
            records: written,
            from_snapshot: args.snapshot,
            data_bytes,
            restart_ms: restart.as_secs_f64() * 1000.0,
            replayed_records: replayed,
        }),
        ..RunResult::default()
    };
    if lsn_after != lsn_before {
        // Every record was acknowledged before the stop: a different lsn lost or invented some.
        result.correctness.lost_leases = lsn_before.abs_diff(lsn_after).max(1);
        eprintln!("VIOLATION: applied lsn {lsn_before} before the restart, {lsn_after} after");
    }
    Ok(result)
}

async fn applied_lsn(http: std::net::SocketAddr) -> Result<u64> {
    let (status, body) = http_get(http, "/v1/status").await?;
    if status != 200 {
        bail!("/v1/status answered {status}");
    }
    let value: serde_json::Value = serde_json::from_str(&body)?;
    value["applied_lsn"].as_u64().context("/v1/status without applied_lsn")
}

fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_bytes(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `allocdb bench run` from start to exit status: runs on its own runtime, prints the table
/// (header and row) on stdout, appends the JSON line to `--json`. Exit status 0, or 2 when
/// any correctness counter is non-zero.
///
/// # Errors
/// The run could not be made (see [`run`]) or the JSON file could not be written.
pub fn run_command(args: &RunArgs) -> Result<u8> {
    let exe = std::env::current_exe().context("locating the allocdb executable")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(run(args, &exe))?;
    println!("{}", crate::report::table_header());
    println!("{}", crate::report::table_row(&result));
    if let Some(fraction) = result.ceiling_fraction() {
        println!(
            "closed-loop ceiling: {} clients / commit latency {:.0} µs (fsync floor before the run {} µs) = {:.0} requests/s; reached {:.0} %",
            result.clients,
            result.fsync_mean_us.unwrap_or(result.fsync_floor_p50_us.unwrap_or(0) as f64),
            result.fsync_floor_p50_us.unwrap_or(0),
            result.ceiling_requests_per_s.unwrap_or(0.0),
            fraction * 100.0
        );
    }
    if let Some(recovery) = &result.recovery {
        println!(
            "recovery: {} records ({} bytes on disk{}) → restart {:.0} ms, {} records replayed",
            recovery.records,
            recovery.data_bytes,
            if recovery.from_snapshot { ", snapshot" } else { "" },
            recovery.restart_ms,
            recovery.replayed_records
        );
    }
    if let Some(path) = &args.json {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{}", serde_json::to_string(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let violations = result.correctness.violations();
    if violations > 0 {
        eprintln!("allocdb bench: {violations} correctness violations: {:?}", result.correctness);
        return Ok(2);
    }
    Ok(0)
}
