//! What the machine did during a run, read from `/proc`: CPU of this process, of the server
//! processes (with their children, e.g. PostgreSQL backends) and of the whole host; peak
//! resident memory of the server; and the fsync floor of a directory's disk.
//!
//! Every reader degrades to zero / `None` when `/proc` is missing or a process is gone, so a
//! figure may be absent but is never invented.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/*/stat` (`CLK_TCK`; 100 on Linux everywhere it matters).
const TICKS_PER_S: f64 = 100.0;

/// A reading of the CPU counters, to subtract from a later one.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    at: Option<Instant>,
    own_ticks: u64,
    server_ticks: u64,
    host_busy_ticks: u64,
    host_total_ticks: u64,
}

/// CPU between two samples in percent of one core.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuBetween {
    /// This process.
    pub own_pct: f64,
    /// The server processes and their children.
    pub server_pct: f64,
    /// The rest of the machine's busy time.
    pub other_pct: f64,
    /// Idle time of all cores.
    pub idle_pct: f64,
}

impl CpuSample {
    /// Reads the counters now.
    pub fn take(server_pids: &[u32]) -> CpuSample {
        let (host_busy_ticks, host_total_ticks) = host_ticks();
        CpuSample {
            at: Some(Instant::now()),
            own_ticks: process_ticks(std::process::id()).unwrap_or(0),
            server_ticks: tree_ticks(server_pids),
            host_busy_ticks,
            host_total_ticks,
        }
    }

    /// The CPU used from `self` to `later`.
    pub fn until(&self, later: &CpuSample) -> CpuBetween {
        let seconds = match (self.at, later.at) {
            (Some(start), Some(end)) => end.duration_since(start).as_secs_f64(),
            _ => 0.0,
        };
        if seconds <= 0.0 {
            return CpuBetween::default();
        }
        let pct = |ticks: u64| ticks as f64 / TICKS_PER_S / seconds * 100.0;
        let own_pct = pct(later.own_ticks.saturating_sub(self.own_ticks));
        let server_pct = pct(later.server_ticks.saturating_sub(self.server_ticks));
        let busy_pct = pct(later.host_busy_ticks.saturating_sub(self.host_busy_ticks));
        let total_pct = pct(later.host_total_ticks.saturating_sub(self.host_total_ticks));
        CpuBetween {
            own_pct,
            server_pct,
            other_pct: (busy_pct - own_pct - server_pct).max(0.0),
            idle_pct: (total_pct - busy_pct).max(0.0),
        }
    }
}

/// The fields of `/proc/<pid>/stat` after the command name.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    // Fields from 3 on; the state letter (field 3) does not parse and becomes 0.
    Some(rest.split_whitespace().map(|field| field.parse().unwrap_or(0)).collect())
}

/// utime + stime of one process.
fn process_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    // utime and stime are fields 14 and 15, i.e. indexes 11 and 12 after the name.
    Some(fields.get(11)? + fields.get(12)?)
}

/// Every live process whose parent is one of `pids`, plus `pids` themselves.
fn process_tree(pids: &[u32]) -> Vec<u32> {
    if pids.is_empty() {
        return Vec::new();
    }
    let mut tree = pids.to_vec();
    let Ok(entries) = std::fs::read_dir("/proc") else { return tree };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let parent = stat_fields(pid).and_then(|fields| fields.get(1).copied());
        if parent.is_some_and(|parent| pids.iter().any(|&pid| u64::from(pid) == parent))
            && !tree.contains(&pid)
        {
            tree.push(pid);
        }
    }
    tree
}

fn tree_ticks(pids: &[u32]) -> u64 {
    process_tree(pids).into_iter().filter_map(process_ticks).sum()
}

/// (busy, total) ticks of all cores from `/proc/stat`.
fn host_ticks() -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else { return (0, 0) };
    let values: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|value| value.parse().ok())
        .collect();
    if values.len() < 8 {
        return (0, 0);
    }
    let total: u64 = values[..8].iter().sum();
    let idle = values[3] + values[4];
    (total - idle, total)
}

/// The sum of the peak resident set (`VmHWM`) of the server processes and their children.
pub fn peak_rss_bytes(server_pids: &[u32]) -> Option<u64> {
    let mut total = None;
    for pid in process_tree(server_pids) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok());
        if let Some(kib) = kib {
            *total.get_or_insert(0) += kib * 1024;
        }
    }
    total
}

/// The median latency of one 4 KiB overwrite + `fdatasync` of a preallocated file in `dir`,
/// measured for about `duration`: what one serial durable commit costs on that disk now.
///
/// # Errors
/// The probe file cannot be created, written or synced.
pub fn fsync_floor_us(dir: &Path, duration: Duration) -> std::io::Result<u64> {
    const BLOCK: usize = 4096;
    const BLOCKS: u64 = 256;
    let path = dir.join(".allocdb-bench-fsync-probe");
    let mut file: File = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path)?;
    file.write_all(&vec![0_u8; BLOCK * BLOCKS as usize])?;
    file.sync_all()?;
    let block = [0x5a_u8; BLOCK];
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut index = 0_u64;
    while started.elapsed() < duration || samples.len() < 5 {
        let begin = Instant::now();
        file.seek(SeekFrom::Start((index % BLOCKS) * BLOCK as u64))?;
        file.write_all(&block)?;
        file.sync_data()?;
        samples.push(begin.elapsed().as_micros() as u64);
        index += 1;
        if samples.len() >= 100_000 {
            break;
        }
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    samples.sort_unstable();
    Ok(samples[samples.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_grows_while_spinning() {
        let before = CpuSample::take(&[]);
        let started = Instant::now();
        let mut spin = 0_u64;
        while started.elapsed() < Duration::from_millis(300) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let used = before.until(&CpuSample::take(&[]));
        assert!(used.own_pct > 10.0, "spinning 300 ms used {used:?}");
        assert!(used.server_pct.abs() < 1e-9, "no server was named: {used:?}");
    }

    #[test]
    fn peak_rss_of_this_process_is_reported() {
        let rss = peak_rss_bytes(&[std::process::id()]).unwrap_or(0);
        assert!(rss > 1_000_000, "peak rss {rss}");
        assert_eq!(peak_rss_bytes(&[]), None);
    }

    #[test]
    fn fsync_floor_measures_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        // The figure itself may be 0 µs on a memory file system; the probe must work and
        // leave nothing behind.
        assert!(fsync_floor_us(dir.path(), Duration::from_millis(50)).is_ok());
        let left = std::fs::read_dir(dir.path()).map_or(usize::MAX, Iterator::count);
        assert_eq!(left, 0);
    }
}
