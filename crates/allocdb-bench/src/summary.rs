//! The summary of a comparison run: medians with min–max per configuration, AllocDB ÷ peer
//! ratios, and the correctness total, from the `raw.jsonl` the runs appended to.
//!
//! Invariants: every figure is computed from the saved [`RunResult`] lines alone (plus the
//! optional `failures.jsonl` and `machine.json` beside them), so `allocdb bench summarize`
//! redoes the same summary from a copied directory. Ratios compare durable rows with durable
//! rows only, median against median; a workload with no durable peer row has no ratio. A
//! correctness violation anywhere is never averaged away: the total is summed over every run
//! and printed first.

#![expect(clippy::cast_precision_loss, reason = "latencies in µs as table figures; none nears 2^53")]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::compare::CellFailure;
use crate::report::{Correctness, RunResult};

/// Where a comparison run's result lines are.
pub const RAW_FILE: &str = "raw.jsonl";
/// Cells that exited non-zero, one JSON line each.
pub const FAILURES_FILE: &str = "failures.jsonl";
/// The machine the comparison ran on.
pub const MACHINE_FILE: &str = "machine.json";

/// `allocdb bench summarize`.
#[derive(clap::Args, Clone, Debug)]
pub struct SummarizeArgs {
    /// A comparison's output directory (holding `raw.jsonl`).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// Median, smallest and largest of one figure over the repetitions of a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values (non-finite ones are left out).
    pub count: usize,
}

/// The configuration a row of the summary describes; results with equal keys are repetitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKey {
    /// The workload as the comparison names it (`hotspot1`, `hotspot16` for hotspot).
    pub workload: String,
    /// `allocdb`, `postgres`, `redis`.
    pub target: String,
    /// How the target was driven.
    pub variant: String,
    /// The durability setting as the target names it.
    pub durability: String,
    /// Whether acknowledged writes survive a machine crash.
    pub durable: bool,
    /// Simulated clients.
    pub clients: u64,
    /// Commands per request.
    pub batch: u64,
    /// Resources in play (keeps hotspot 1 and hotspot 16 apart).
    pub resources: u64,
}

impl GroupKey {
    /// The key of one result.
    pub fn of(result: &RunResult) -> Self {
        Self {
            workload: workload_label(result),
            target: result.target.clone(),
            variant: result.variant.clone(),
            durability: result.durability.clone(),
            durable: result.durable,
            clients: result.clients,
            batch: result.batch,
            resources: result.resources,
        }
    }

    /// The name of this configuration in plots and ratios: `postgres fn`, with
    /// ` (not durable)` for the peers' relaxed settings.
    pub fn series_name(&self) -> String {
        let durable = if self.durable { "" } else { " (not durable)" };
        format!("{} {}{durable}", self.target, self.variant)
    }
}

/// The repetitions of one configuration, in the order they ran.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    /// The configuration.
    pub key: GroupKey,
    /// Its results.
    pub runs: Vec<&'a RunResult>,
}

/// One row of the summary table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// The configuration.
    pub key: GroupKey,
    /// Repetitions.
    pub runs: usize,
    /// `ops/s`, or `hand-overs/s` for hotspot: what the ratio and the bar chart compare.
    pub headline_metric: String,
    /// The headline figure.
    pub headline: Spread,
    /// Commands per second.
    pub ops_per_s: Spread,
    /// Successful reservations per second (hotspot: hand-overs).
    pub wins_per_s: Spread,
    /// Median request latency, µs.
    pub latency_p50_us: Spread,
    /// 99th percentile request latency, µs.
    pub latency_p99_us: Spread,
    /// Flushes per second, when the target reports them.
    pub fsyncs_per_s: Option<Spread>,
    /// Commands made durable per flush, when the target reports them.
    pub commands_per_fsync: Option<Spread>,
    /// The disk's single-write fsync latency measured before each run, µs.
    pub fsync_floor_p50_us: Option<Spread>,
    /// Server CPU, % of one core.
    pub cpu_server_pct: Spread,
    /// Load generator CPU, % of one core.
    pub cpu_client_pct: Spread,
    /// Everyone else's CPU (a noisy neighbour shows here), % of one core.
    pub cpu_other_pct: Spread,
    /// Errors over all repetitions.
    pub errors: u64,
    /// Correctness violations over all repetitions.
    pub violations: u64,
}

/// AllocDB's median over one peer's median for one workload, both durable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// The workload.
    pub workload: String,
    /// What is compared (`ops/s` or `hand-overs/s`).
    pub metric: String,
    /// The AllocDB configuration.
    pub allocdb: String,
    /// The peer configuration.
    pub peer: String,
    /// AllocDB's median.
    pub allocdb_median: f64,
    /// The peer's median.
    pub peer_median: f64,
    /// `allocdb_median / peer_median`.
    pub ratio: f64,
}

/// A run with a non-zero correctness counter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViolatingRun {
    /// Its configuration.
    pub key: GroupKey,
    /// Its position among the results of `raw.jsonl` (1-based; the line number when every
    /// line parsed).
    pub result_number: usize,
    /// Its counters.
    pub correctness: Correctness,
}

/// Everything `summary.md` and `summary.json` say.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Result lines read.
    pub runs: usize,
    /// Lines of `raw.jsonl` that did not parse (e.g. a run killed mid-write).
    pub unparsed_lines: Vec<usize>,
    /// One row per configuration.
    pub groups: Vec<GroupSummary>,
    /// AllocDB ÷ each durable peer, per workload.
    pub ratios: Vec<Ratio>,
    /// The sum of every run's violations; anything but 0 is a bug in a target.
    pub violations_total: u64,
    /// The counters summed over every run.
    pub correctness_total: Correctness,
    /// The runs that had violations.
    pub violating_runs: Vec<ViolatingRun>,
    /// Cells that exited non-zero or wrote no result.
    pub failed_cells: Vec<CellFailure>,
    /// The machine, as `machine.json` describes it.
    pub machine: Option<serde_json::Value>,
}

/// The median of `values` (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|value| value.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let count = sorted.len();
    if count == 0 {
        return None;
    }
    let upper = sorted[count / 2];
    if count % 2 == 1 { Some(upper) } else { Some(f64::midpoint(sorted[count / 2 - 1], upper)) }
}

/// Median, min and max of the finite `values`; `None` when there are none.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let median = median(values)?;
    let finite = values.iter().copied().filter(|value| value.is_finite());
    let min = finite.clone().fold(f64::INFINITY, f64::min);
    let max = finite.clone().fold(f64::NEG_INFINITY, f64::max);
    Some(Spread { median, min, max, count: finite.count() })
}

/// The workload as the comparison names its cells: hotspot carries its resource count
/// (`hotspot1`, `hotspot16`), the others their plain name.
pub fn workload_label(result: &RunResult) -> String {
    if result.workload == "hotspot" {
        format!("hotspot{}", result.resources)
    } else {
        result.workload.clone()
    }
}

/// The figure that ranks a run: hand-overs per second for hotspot (most of its commands are
/// `busy` attempts), commands per second otherwise.
pub fn headline(result: &RunResult) -> f64 {
    if result.workload == "hotspot" { result.wins_per_s } else { result.ops_per_s }
}

/// The name of [`headline`] for a workload.
fn headline_metric(workload: &str) -> &'static str {
    if workload == "hotspot" { "hand-overs/s" } else { "ops/s" }
}

/// The repetition whose headline is the median (the lower middle one for an even count), so
/// a plot of one run's distribution shows a typical run rather than a lucky or unlucky one.
pub fn median_run<'a>(runs: &[&'a RunResult]) -> Option<&'a RunResult> {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|left, right| headline(left).total_cmp(&headline(right)));
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

/// Position of a name in a preferred order; unknown names sort after, by name.
fn rank(order: &[&str], name: &str) -> usize {
    order.iter().position(|known| *known == name).unwrap_or(order.len())
}

/// Groups results into configurations, sorted by workload (the comparison's order), target
/// (AllocDB first), durable before relaxed, then variant and shape.
pub fn group_results(results: &[RunResult]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for result in results {
        let key = GroupKey::of(result);
        match groups.iter_mut().find(|group| group.key == key) {
            Some(group) => group.runs.push(result),
            None => groups.push(Group { key, runs: vec![result] }),
        }
    }
    let workloads = ["uncontended", "hotspot1", "hotspot16", "batched", "mixed"];
    let targets = ["allocdb", "postgres", "redis"];
    groups.sort_by(|left, right| {
        let (left, right) = (&left.key, &right.key);
        (rank(&workloads, &left.workload), &left.workload)
            .cmp(&(rank(&workloads, &right.workload), &right.workload))
            .then_with(|| {
                (rank(&targets, &left.target), &left.target)
                    .cmp(&(rank(&targets, &right.target), &right.target))
            })
            .then_with(|| right.durable.cmp(&left.durable))
            .then_with(|| left.variant.cmp(&right.variant))
            .then_with(|| left.durability.cmp(&right.durability))
            .then_with(|| {
                (left.clients, left.batch, left.resources).cmp(&(right.clients, right.batch, right.resources))
            })
    });
    groups
}

/// Spread of a figure every run has (an empty group gives zeros; groups are never empty).
fn spread_of(runs: &[&RunResult], figure: impl Fn(&RunResult) -> f64) -> Spread {
    let values: Vec<f64> = runs.iter().map(|run| figure(run)).collect();
    spread(&values).unwrap_or(Spread { median: 0.0, min: 0.0, max: 0.0, count: 0 })
}

/// Spread of a figure only some targets report.
fn spread_of_optional(runs: &[&RunResult], figure: impl Fn(&RunResult) -> Option<f64>) -> Option<Spread> {
    let values: Vec<f64> = runs.iter().filter_map(|run| figure(run)).collect();
    spread(&values)
}

/// One summary row.
pub fn summarize_group(group: &Group<'_>) -> GroupSummary {
    let runs = &group.runs;
    let workload = runs.first().map_or("", |run| run.workload.as_str());
    GroupSummary {
        key: group.key.clone(),
        runs: runs.len(),
        headline_metric: headline_metric(workload).to_owned(),
        headline: spread_of(runs, headline),
        ops_per_s: spread_of(runs, |run| run.ops_per_s),
        wins_per_s: spread_of(runs, |run| run.wins_per_s),
        latency_p50_us: spread_of(runs, |run| run.latency.p50_us as f64),
        latency_p99_us: spread_of(runs, |run| run.latency.p99_us as f64),
        fsyncs_per_s: spread_of_optional(runs, |run| run.fsyncs_per_s),
        commands_per_fsync: spread_of_optional(runs, |run| run.commands_per_fsync),
        fsync_floor_p50_us: spread_of_optional(runs, |run| run.fsync_floor_p50_us.map(|us| us as f64)),
        cpu_server_pct: spread_of(runs, |run| run.cpu.server_pct),
        cpu_client_pct: spread_of(runs, |run| run.cpu.client_pct),
        cpu_other_pct: spread_of(runs, |run| run.cpu.other_pct),
        errors: runs.iter().map(|run| run.errors).sum(),
        violations: runs.iter().map(|run| run.correctness.violations()).sum(),
    }
}

/// AllocDB ÷ peer for every workload with both: durable AllocDB rows against durable peer
/// rows of the same shape (clients, batch, resources), median against median. Relaxed peer
/// rows never enter a ratio (they buy speed with acknowledged writes a crash can lose), and a
/// peer median of zero gives no ratio rather than an infinite one.
pub fn ratios(groups: &[GroupSummary]) -> Vec<Ratio> {
    let same_shape = |left: &GroupKey, right: &GroupKey| {
        left.workload == right.workload
            && left.clients == right.clients
            && left.batch == right.batch
            && left.resources == right.resources
    };
    let mut ratios = Vec::new();
    for allocdb in groups.iter().filter(|group| group.key.target == "allocdb" && group.key.durable) {
        for peer in groups.iter().filter(|group| group.key.target != "allocdb" && group.key.durable) {
            if !same_shape(&allocdb.key, &peer.key) || peer.headline.median <= 0.0 {
                continue;
            }
            ratios.push(Ratio {
                workload: allocdb.key.workload.clone(),
                metric: allocdb.headline_metric.clone(),
                allocdb: allocdb.key.series_name(),
                peer: peer.key.series_name(),
                allocdb_median: allocdb.headline.median,
                peer_median: peer.headline.median,
                ratio: allocdb.headline.median / peer.headline.median,
            });
        }
    }
    ratios
}

/// The whole summary of a set of results (`failures` and `machine` are passed through).
pub fn summarize(
    results: &[RunResult],
    failed_cells: Vec<CellFailure>,
    machine: Option<serde_json::Value>,
) -> Summary {
    let groups: Vec<GroupSummary> = group_results(results).iter().map(summarize_group).collect();
    let mut correctness_total = Correctness::default();
    let mut violating_runs = Vec::new();
    for (index, result) in results.iter().enumerate() {
        correctness_total.add(&result.correctness);
        if result.correctness.violations() > 0 {
            violating_runs.push(ViolatingRun {
                key: GroupKey::of(result),
                result_number: index + 1,
                correctness: result.correctness,
            });
        }
    }
    Summary {
        runs: results.len(),
        unparsed_lines: Vec::new(),
        ratios: ratios(&groups),
        groups,
        violations_total: correctness_total.violations(),
        correctness_total,
        violating_runs,
        failed_cells,
        machine,
    }
}

/// Parses `raw.jsonl`: the results, and the 1-based numbers of lines that did not parse
/// (a cell killed while writing leaves a torn line; the rest still count).
pub fn parse_results(text: &str) -> (Vec<RunResult>, Vec<usize>) {
    let mut results = Vec::new();
    let mut unparsed = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<RunResult>(line) {
            Ok(result) => results.push(result),
            Err(_) => unparsed.push(index + 1),
        }
    }
    (results, unparsed)
}

/// Reads `failures.jsonl` when present.
fn read_failures(dir: &Path) -> Result<Vec<CellFailure>> {
    let path = dir.join(FAILURES_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).with_context(|| format!("parsing a line of {}", path.display()))
        })
        .collect()
}

/// Reads the results, failures and machine of a comparison directory.
///
/// # Errors
///
/// `raw.jsonl` missing or unreadable, or a `failures.jsonl` line that does not parse.
pub fn load_dir(dir: &Path) -> Result<(Vec<RunResult>, Summary)> {
    let raw_path = dir.join(RAW_FILE);
    let text =
        std::fs::read_to_string(&raw_path).with_context(|| format!("reading {}", raw_path.display()))?;
    let (results, unparsed_lines) = parse_results(&text);
    let machine = std::fs::read_to_string(dir.join(MACHINE_FILE))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let mut summary = summarize(&results, read_failures(dir)?, machine);
    summary.unparsed_lines = unparsed_lines;
    Ok((results, summary))
}

/// Writes `summary.md`, `summary.json` and the plots into `dir` from its `raw.jsonl`, and
/// returns the summary. A plot that cannot be drawn is a warning, never a failure.
///
/// # Errors
///
/// What [`load_dir`] fails on, and files that cannot be written.
pub fn summarize_dir_report(dir: &Path) -> Result<Summary> {
    let (results, summary) = load_dir(dir)?;
    let markdown = render_markdown(&summary);
    std::fs::write(dir.join("summary.md"), &markdown).context("writing summary.md")?;
    let json = serde_json::to_string_pretty(&summary).context("encoding summary.json")?;
    std::fs::write(dir.join("summary.json"), json + "\n").context("writing summary.json")?;
    match crate::plot::write_plots(&results, dir) {
        Ok(report) => {
            if let Some(reason) = &report.png_skipped {
                eprintln!("allocdb bench: warning: PNG plots skipped ({reason}); the SVGs are written");
            }
        }
        Err(error) => eprintln!("allocdb bench: warning: plots not written: {error:#}"),
    }
    Ok(summary)
}

/// `allocdb bench summarize --dir DIR`: redoes the summary and plots from saved raw data and
/// prints `summary.md`.
///
/// # Errors
///
/// What [`summarize_dir_report`] fails on.
pub fn summarize_dir(dir: &Path) -> Result<()> {
    let summary = summarize_dir_report(dir)?;
    print!("{}", render_markdown(&summary));
    if summary.violations_total > 0 {
        eprintln!("allocdb bench: {} CORRECTNESS VIOLATIONS in {}", summary.violations_total, dir.display());
    }
    Ok(())
}

/// A figure for a table: thousands separators from 100 up, one decimal below.
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    if value.abs() < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0.0 {
        grouped.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// `median (min–max)`.
fn format_spread(spread: &Spread) -> String {
    if spread.count <= 1 {
        return format_number(spread.median);
    }
    format!("{} ({}–{})", format_number(spread.median), format_number(spread.min), format_number(spread.max))
}

fn format_optional(spread: Option<&Spread>) -> String {
    spread.map_or_else(|| "-".to_owned(), |spread| format_number(spread.median))
}

/// `summary.md`: violations first, then the table of medians, the ratios and the failures.
pub fn render_markdown(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Comparison summary\n");
    if summary.violations_total > 0 {
        let _ = writeln!(
            out,
            "**CORRECTNESS VIOLATIONS: {} over {} runs** — {:?}\n",
            summary.violations_total, summary.runs, summary.correctness_total
        );
        for run in &summary.violating_runs {
            let _ = writeln!(
                out,
                "- result {} ({} {}): {:?}",
                run.result_number,
                run.key.workload,
                run.key.series_name(),
                run.correctness
            );
        }
        out.push('\n');
    } else {
        let _ = writeln!(out, "Correctness violations: 0 over {} runs.\n", summary.runs);
    }
    if let Some(machine) = &summary.machine {
        let _ = writeln!(out, "{}\n", machine_line(machine));
    }
    render_markdown_table(&mut out, summary);
    render_markdown_ratios(&mut out, summary);
    if !summary.failed_cells.is_empty() {
        let _ = writeln!(out, "**Failed cells: {}**\n", summary.failed_cells.len());
        for failure in &summary.failed_cells {
            let _ = writeln!(
                out,
                "- rep {} {} {} {}: {}, `{}` (`{}`)",
                failure.rep,
                failure.workload,
                failure.target,
                failure.durability,
                failure.status,
                failure.stderr_tail.lines().last().unwrap_or("no stderr").replace('`', "'"),
                failure.stderr_file
            );
        }
        out.push('\n');
    }
    if !summary.unparsed_lines.is_empty() {
        let _ = writeln!(out, "Unparsed lines of raw.jsonl: {:?}\n", summary.unparsed_lines);
    }
    out
}

/// `Machine: 2 cores, 23.5 GiB, AMD EPYC, Linux 6.1; load average 0.5 before, 0.7 after.`
fn machine_line(machine: &serde_json::Value) -> String {
    let text = |name: &str| match machine.get(name) {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Null) | None => "?".to_owned(),
        Some(other) => other.to_string(),
    };
    let memory = machine
        .get("memory_total_bytes")
        .and_then(serde_json::Value::as_f64)
        .map_or_else(|| "? GiB".to_owned(), |bytes| format!("{:.1} GiB", bytes / 1_073_741_824.0));
    let load = |name: &str| {
        machine.get(name).and_then(serde_json::Value::as_array).and_then(|values| values.first()?.as_f64())
    };
    let load_text = |value: Option<f64>| value.map_or_else(|| "?".to_owned(), |value| format!("{value:.2}"));
    format!(
        "Machine: {} cores, {memory}, {}, Linux {}; 1-minute load average {} before, {} after.",
        text("nproc"),
        text("cpu_model"),
        text("kernel"),
        load_text(load("load_average_before")),
        load_text(load("load_average_after")),
    )
}

fn render_markdown_table(out: &mut String, summary: &Summary) {
    let _ = writeln!(
        out,
        "Medians of the repetitions, (min–max) where there are several. Hotspot's headline is \
         hand-overs/s (wins/s); CPU in % of one core.\n"
    );
    let _ = writeln!(
        out,
        "| workload | target | variant | durability | clients | batch | runs | ops/s | wins/s | p50 µs | p99 µs | fsyncs/s | cmds/fsync | server CPU | client CPU | other CPU | errors | violations |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for group in &summary.groups {
        let key = &group.key;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            key.workload,
            key.target,
            key.variant,
            key.durability,
            key.clients,
            key.batch,
            group.runs,
            format_spread(&group.ops_per_s),
            format_spread(&group.wins_per_s),
            format_number(group.latency_p50_us.median),
            format_number(group.latency_p99_us.median),
            format_optional(group.fsyncs_per_s.as_ref()),
            format_optional(group.commands_per_fsync.as_ref()),
            format_number(group.cpu_server_pct.median),
            format_number(group.cpu_client_pct.median),
            format_number(group.cpu_other_pct.median),
            group.errors,
            group.violations,
        );
    }
    out.push('\n');
}

fn render_markdown_ratios(out: &mut String, summary: &Summary) {
    if summary.ratios.is_empty() {
        let _ = writeln!(out, "No AllocDB ÷ peer ratios (no workload has durable rows of both).\n");
        return;
    }
    let _ = writeln!(out, "AllocDB ÷ peer, durable rows only, median ÷ median:\n");
    let _ = writeln!(out, "| workload | metric | AllocDB | peer | AllocDB median | peer median | ratio |");
    let _ = writeln!(out, "|---|---|---|---|---:|---:|---:|");
    for ratio in &summary.ratios {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.1}× |",
            ratio.workload,
            ratio.metric,
            ratio.allocdb,
            ratio.peer,
            format_number(ratio.allocdb_median),
            format_number(ratio.peer_median),
            ratio.ratio,
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test")]
    #![allow(clippy::float_cmp, reason = "the test figures are exact in binary")]

    use super::*;

    fn result(target: &str, durable: bool, workload: &str, resources: u64, ops_per_s: f64) -> RunResult {
        RunResult {
            target: target.to_owned(),
            variant: if target == "allocdb" { "binary" } else { "fn" }.to_owned(),
            durability: if durable { "on" } else { "off" }.to_owned(),
            durable,
            workload: workload.to_owned(),
            resources,
            clients: 32,
            batch: 1,
            ops_per_s,
            wins_per_s: ops_per_s / 10.0,
            ..RunResult::default()
        }
    }

    #[test]
    fn median_of_an_odd_count_is_the_middle_value() {
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0]), Some(4.0));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 10.0]), Some(3.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn spread_gives_min_and_max_and_ignores_non_finite_values() {
        let spread = spread(&[3.0, f64::NAN, 1.0, 2.0, f64::INFINITY]).unwrap();
        assert_eq!(spread, Spread { median: 2.0, min: 1.0, max: 3.0, count: 3 });
        assert_eq!(super::spread(&[f64::NAN]), None);
    }

    #[test]
    fn grouping_separates_configurations_and_keeps_repetitions_together() {
        let results = vec![
            result("redis", true, "uncontended", 100_000, 3.0),
            result("allocdb", true, "hotspot", 16, 1.0),
            result("allocdb", true, "hotspot", 1, 1.0),
            result("allocdb", true, "uncontended", 100_000, 2.0),
            result("postgres", false, "uncontended", 100_000, 5.0),
            result("postgres", true, "uncontended", 100_000, 4.0),
            result("allocdb", true, "uncontended", 100_000, 6.0),
        ];
        let groups = group_results(&results);
        let order: Vec<(String, String, bool, usize)> = groups
            .iter()
            .map(|group| {
                (group.key.workload.clone(), group.key.target.clone(), group.key.durable, group.runs.len())
            })
            .collect();
        let expected = [
            ("uncontended", "allocdb", true, 2),
            ("uncontended", "postgres", true, 1),
            ("uncontended", "postgres", false, 1),
            ("uncontended", "redis", true, 1),
            ("hotspot1", "allocdb", true, 1),
            ("hotspot16", "allocdb", true, 1),
        ];
        let expected: Vec<(String, String, bool, usize)> = expected
            .iter()
            .map(|(workload, target, durable, runs)| {
                ((*workload).to_owned(), (*target).to_owned(), *durable, *runs)
            })
            .collect();
        assert_eq!(order, expected);
        let allocdb = summarize_group(&groups[0]);
        assert_eq!(allocdb.ops_per_s, Spread { median: 4.0, min: 2.0, max: 6.0, count: 2 });
    }

    #[test]
    fn hotspot_headline_is_hand_overs_per_second() {
        let hotspot = result("allocdb", true, "hotspot", 1, 1_000.0);
        assert_eq!(headline(&hotspot), 100.0);
        assert_eq!(headline(&result("allocdb", true, "batched", 100_000, 1_000.0)), 1_000.0);
        let group = Group { key: GroupKey::of(&hotspot), runs: vec![&hotspot] };
        assert_eq!(summarize_group(&group).headline_metric, "hand-overs/s");
    }

    #[test]
    fn ratio_compares_durable_medians_only() {
        let results = vec![
            result("allocdb", true, "uncontended", 100_000, 9_000.0),
            result("allocdb", true, "uncontended", 100_000, 10_000.0),
            result("allocdb", true, "uncontended", 100_000, 12_000.0),
            result("postgres", true, "uncontended", 100_000, 1_000.0),
            result("postgres", false, "uncontended", 100_000, 5_000.0),
        ];
        let summary = summarize(&results, Vec::new(), None);
        assert_eq!(summary.ratios.len(), 1);
        let ratio = &summary.ratios[0];
        assert_eq!((ratio.allocdb.as_str(), ratio.peer.as_str()), ("allocdb binary", "postgres fn"));
        assert_eq!((ratio.allocdb_median, ratio.peer_median, ratio.ratio), (10_000.0, 1_000.0, 10.0));
    }

    #[test]
    fn workload_without_a_durable_peer_has_no_ratio() {
        let results = vec![
            result("allocdb", true, "uncontended", 100_000, 10_000.0),
            result("allocdb", true, "mixed", 100_000, 10_000.0),
            result("redis", false, "mixed", 100_000, 10_000.0),
            result("redis", true, "hotspot", 1, 0.0),
            result("allocdb", true, "hotspot", 1, 500.0),
        ];
        let summary = summarize(&results, Vec::new(), None);
        assert!(summary.ratios.is_empty(), "{:?}", summary.ratios);
        assert!(render_markdown(&summary).contains("No AllocDB ÷ peer ratios"));
    }

    #[test]
    fn violations_are_totalled_and_shown_first() {
        let mut bad = result("postgres", true, "hotspot", 1, 10.0);
        bad.correctness.double_allocations = 2;
        bad.correctness.held_at_end = 1;
        let results = vec![result("allocdb", true, "hotspot", 1, 10.0), bad];
        let summary = summarize(&results, Vec::new(), None);
        assert_eq!(summary.violations_total, 3);
        assert_eq!(summary.violating_runs.len(), 1);
        assert_eq!(summary.violating_runs[0].result_number, 2);
        let markdown = render_markdown(&summary);
        assert!(markdown.starts_with("### Comparison summary\n\n**CORRECTNESS VIOLATIONS: 3 over 2 runs**"));
    }

    #[test]
    fn median_run_is_the_middle_repetition_by_headline() {
        let runs = [
            result("allocdb", true, "uncontended", 1, 3.0),
            result("allocdb", true, "uncontended", 1, 1.0),
            result("allocdb", true, "uncontended", 1, 2.0),
            result("allocdb", true, "uncontended", 1, 4.0),
        ];
        let references: Vec<&RunResult> = runs.iter().collect();
        assert_eq!(median_run(&references).unwrap().ops_per_s, 2.0);
        assert_eq!(median_run(&references[..3]).unwrap().ops_per_s, 2.0);
        assert!(median_run(&[]).is_none());
    }

    #[test]
    fn machine_line_reads_machine_json() {
        let machine = serde_json::json!({
            "nproc": 2, "memory_total_bytes": 2_147_483_648_u64, "cpu_model": "AMD EPYC", "kernel": "6.1.0",
            "load_average_before": [0.5, 1.0, 1.0], "load_average_after": null,
        });
        assert_eq!(
            machine_line(&machine),
            "Machine: 2 cores, 2.0 GiB, AMD EPYC, Linux 6.1.0; 1-minute load average 0.50 before, ? after."
        );
    }

    #[test]
    fn numbers_are_grouped_by_thousands_from_one_hundred() {
        assert_eq!(format_number(1_234_567.4), "1,234,567");
        assert_eq!(format_number(100.0), "100");
        assert_eq!(format_number(99.94), "99.9");
        assert_eq!(format_number(-12_345.0), "-12,345");
        assert_eq!(format_number(f64::NAN), "-");
    }

    #[test]
    fn unparsed_lines_are_reported_and_the_rest_counted() {
        let good = serde_json::to_string(&result("redis", true, "uncontended", 100_000, 3.0)).unwrap();
        let (results, unparsed) = parse_results(&format!("{good}\n\n{{\"target\": \"torn\n{good}\n"));
        assert_eq!(results.len(), 2);
        assert_eq!(unparsed, [3]);
    }

    #[test]
    fn summarize_dir_writes_markdown_json_and_plots_from_raw_results() {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = [
            result("allocdb", true, "uncontended", 100_000, 20_000.0),
            result("postgres", true, "uncontended", 100_000, 2_000.0),
        ]
        .iter()
        .map(|result| serde_json::to_string(result).unwrap())
        .collect();
        std::fs::write(dir.path().join(RAW_FILE), lines.join("\n") + "\n").unwrap();
        let failure = CellFailure {
            rep: 1,
            workload: "uncontended".to_owned(),
            target: "redis".to_owned(),
            durability: "durable".to_owned(),
            status: "exit status: 1".to_owned(),
            stderr_file: "logs/003-rep1-uncontended-redis-durable.stderr".to_owned(),
            stderr_tail: "connection refused".to_owned(),
            command: "allocdb bench run --target redis".to_owned(),
        };
        std::fs::write(dir.path().join(FAILURES_FILE), serde_json::to_string(&failure).unwrap() + "\n")
            .unwrap();
        summarize_dir(dir.path()).unwrap();
        let markdown = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert!(
            markdown
                .contains("| uncontended | ops/s | allocdb binary | postgres fn | 20,000 | 2,000 | 10.0× |")
        );
        assert!(markdown.contains(
            "- rep 1 uncontended redis durable: exit status: 1, `connection refused` \
             (`logs/003-rep1-uncontended-redis-durable.stderr`)"
        ));
        let summary: Summary =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
        assert_eq!(
            (summary.runs, summary.ratios.len(), summary.failed_cells, summary.violations_total),
            (2, 1, vec![failure], 0)
        );
        assert!(dir.path().join("throughput.svg").exists());
    }
}
