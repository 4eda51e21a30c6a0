//! Statistics (nearest-rank percentiles over every sample, medians over repeats) and the
//! printed tables.

use std::time::Duration;

use crate::closed_loop::{GROUP_SIZE_BUCKET_COUNT, LoopCell};
use crate::floor::{FloorCell, FloorLayout};

/// Nanoseconds, saturating (a sample never comes near 584 years).
pub(crate) fn nanoseconds(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The `percent` percentile of sorted nanosecond samples, in milliseconds.
pub(crate) fn percentile(sorted: &[u64], percent: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest value with at least `percent` of the samples at or below it.
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

pub(crate) fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        length if length % 2 == 1 => sorted[length / 2],
        length => f64::midpoint(sorted[length / 2 - 1], sorted[length / 2]),
    }
}

/// `median [min–max]`, or just the value when there is one sample.
pub(crate) fn format_range(values: &[f64], decimals: usize) -> String {
    let minimum = values.iter().copied().fold(f64::INFINITY, f64::min);
    let maximum = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() <= 1 {
        return format!("{:.decimals$}", median(values));
    }
    format!("{:.decimals$} [{minimum:.decimals$}–{maximum:.decimals$}]", median(values))
}

/// The results and diagnostics tables, filled cell by cell.
#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<[String; 10]>,
    diagnostics: Vec<[String; 10]>,
    group_size_notes: Vec<String>,
    floor_notes: Vec<String>,
    anomaly_notes: Vec<String>,
}

impl Table {
    const HEADER: [&'static str; 10] = [
        "cell",
        "commands/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "syncs/s",
        "commands/sync",
        "floor fsyncs/s",
        "cmds/s ÷ floor",
        "anomalies",
    ];
    const DIAGNOSTICS_HEADER: [&'static str; 10] = [
        "cell",
        "ms/group",
        "of it sync ms",
        "groups in flight",
        "engine in sync %",
        "engine CPU %",
        "engine CPU µs/cmd",
        "engine runq-wait µs/cmd",
        "driver CPU µs/cmd",
        "driver runq-wait µs/cmd",
    ];

    pub(crate) fn add_floor(&mut self, layout: FloorLayout, cells: &[FloorCell]) {
        let name = match layout {
            FloorLayout::Preallocated => "fsync floor: 4 KiB + fdatasync, fallocated file",
            FloorLayout::Overwrite => "fsync floor: 4 KiB + fdatasync, overwrite",
        };
        let column = |value: fn(&FloorCell) -> f64, decimals| {
            format_range(&cells.iter().map(value).collect::<Vec<_>>(), decimals)
        };
        let dash = || "-".to_owned();
        self.floor_notes.push(format!(
            "{name}: per fsync, CPU {} ms and run-queue wait {} ms",
            column(|cell| cell.cpu_ms_per_sync, 3),
            column(|cell| cell.wait_ms_per_sync, 3),
        ));
        self.rows.push([
            name.to_owned(),
            dash(),
            column(|cell| cell.latency_p50_ms, 2),
            column(|cell| cell.latency_p99_ms, 2),
            column(|cell| cell.latency_max_ms, 1),
            column(|cell| cell.syncs_per_second, 0),
            "1".to_owned(),
            column(|cell| cell.syncs_per_second, 0),
            dash(),
            dash(),
        ]);
    }

    pub(crate) fn add_loop(&mut self, concurrency: usize, cells: &[LoopCell]) {
        let column = |value: &dyn Fn(&LoopCell) -> f64, decimals| {
            format_range(&cells.iter().map(value).collect::<Vec<_>>(), decimals)
        };
        let name = format!("engine, {concurrency} submitters");
        let anomaly_count: u64 = cells.iter().map(|cell| cell.anomaly_count).sum();
        self.rows.push([
            name.clone(),
            column(&|cell| cell.commands_per_second, 0),
            column(&|cell| cell.latency_p50_ms, 2),
            column(&|cell| cell.latency_p99_ms, 2),
            column(&|cell| cell.latency_max_ms, 1),
            column(&|cell| cell.syncs_per_second, 0),
            column(&|cell| cell.commands_per_sync, 1),
            column(&|cell| cell.floor_syncs_per_second, 0),
            column(&|cell| cell.commands_per_second / cell.floor_syncs_per_second, 1),
            anomaly_count.to_string(),
        ]);
        self.diagnostics.push([
            name.clone(),
            column(&|cell| cell.group_ms_mean, 2),
            column(&|cell| cell.sync_ms_mean, 2),
            column(&|cell| cell.groups_in_flight, 2),
            column(&|cell| cell.sync_fraction * 100.0, 0),
            column(&|cell| cell.engine_cpu_fraction * 100.0, 0),
            column(&|cell| cell.engine_cpu_us_per_command, 2),
            column(&|cell| cell.engine_wait_us_per_command, 2),
            column(&|cell| cell.driver_cpu_us_per_command, 2),
            column(&|cell| cell.driver_wait_us_per_command, 2),
        ]);
        self.group_size_notes.push(format!("{name}: {}", describe_group_sizes(cells)));
        for cell in cells {
            for (what, count) in &cell.anomalies {
                self.anomaly_notes.push(format!("{name}: {count} × {what}"));
            }
        }
    }

    pub(crate) fn add_replay(&mut self, name: &str, records: u64, milliseconds: &[f64]) {
        let rates: Vec<f64> = milliseconds.iter().map(|ms| records as f64 / (ms / 1_000.0)).collect();
        let mut row = [(); 10].map(|()| "-".to_owned());
        row[0] = format!("{name}: records/s (open ms)");
        row[1] = format!("{} ({})", format_range(&rates, 0), format_range(milliseconds, 0));
        self.rows.push(row);
    }

    pub(crate) fn print(&self) {
        println!("results: median [min–max] over the repeats");
        print_rows(&Table::HEADER, &self.rows);
        for note in &self.floor_notes {
            println!("{note}");
        }
        if !self.diagnostics.is_empty() {
            println!();
            println!(
                "diagnostics: ms/group (first message to replies) and mean groups in flight (the pipeline \
                 overlaps two) from EngineStatus; \
                 CPU and run-queue wait of the engine and driver threads from schedstat"
            );
            print_rows(&Table::DIAGNOSTICS_HEADER, &self.diagnostics);
            println!();
            println!(
                "records per group inside the window, share of groups (all repeats; buckets under 1% omitted)"
            );
            for note in &self.group_size_notes {
                println!("  {note}");
            }
        }
        for note in &self.anomaly_notes {
            println!("anomaly: {note}");
        }
    }
}

/// `512–1023: 61%, 1024–2047: 38%`: the share of groups per power-of-two size bucket.
fn describe_group_sizes(cells: &[LoopCell]) -> String {
    let mut totals = [0_u64; GROUP_SIZE_BUCKET_COUNT];
    for cell in cells {
        for (total, count) in totals.iter_mut().zip(cell.group_sizes) {
            *total += count;
        }
    }
    let groups: u64 = totals.iter().sum();
    let parts: Vec<String> = totals
        .iter()
        .enumerate()
        .filter(|&(_, &count)| groups > 0 && count * 100 >= groups)
        .map(|(index, &count)| {
            let low = 1_u64 << index;
            let range = if index + 1 == GROUP_SIZE_BUCKET_COUNT {
                format!("{low}+")
            } else if low == 1 {
                "1".to_owned()
            } else {
                format!("{low}–{}", 2 * low - 1)
            };
            format!("{range}: {:.0}%", count as f64 * 100.0 / groups as f64)
        })
        .collect();
    if parts.is_empty() { "no groups".to_owned() } else { parts.join(", ") }
}

fn print_rows<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let line = |values: Vec<&str>| {
        let cells: Vec<String> = values
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(index, (value, width))| {
                let padding = width - value.chars().count();
                if index == 0 {
                    format!("{value}{}", " ".repeat(padding))
                } else {
                    format!("{}{value}", " ".repeat(padding))
                }
            })
            .collect();
        println!("{}", cells.join(" | "));
    };
    line(header.to_vec());
    println!("{}", widths.map(|width| "-".repeat(width)).join("-+-"));
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
