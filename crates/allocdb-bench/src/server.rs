//! An `allocdb serve` process the bench starts for itself: fresh data directory, both
//! listeners on free loopback ports (learned from the JSON `serving` log line), ready once
//! `/readyz` answers 200; stopped by its own pid (SIGTERM, then SIGKILL after a deadline).
//!
//! Also the bench's server configuration: tables sized for the workload's rate, and shorter
//! dedupe/history windows than the defaults so a million commands per second fit in memory
//! (see `docs/benchmarks.md`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The dedupe window of a bench server: long enough for every retry the bench makes (its
/// clients retry within milliseconds), short enough that the operation table holding it fits
/// in memory at the batched rates.
const DEDUPE_WINDOW_MS: u64 = 5_000;

/// How long a start or stop may take.
const PROCESS_DEADLINE: Duration = Duration::from_mins(5);

/// Table sizes and windows for a bench server.
#[derive(Clone, Copy, Debug)]
pub struct ServerSizing {
    /// Resources the workload creates.
    pub resources: u64,
    /// Operation records (must hold the dedupe window at full rate).
    pub operations: u64,
    /// Lease records (live plus terminal within the history window).
    pub leases: u64,
    /// Records between snapshots.
    pub snapshot_interval_records: u64,
}

impl ServerSizing {
    /// Sizes for a workload of `resources` resources; `heavy` for batches of 1,024 and more,
    /// which reach 1.5 M commands per second.
    pub fn for_workload(resources: u64, heavy: bool) -> ServerSizing {
        // Operation records must cover the dedupe window (`DEDUPE_WINDOW_MS`) at full rate: 16 Mi
        // records hold 3.3 M keyed commands per second and 8 Mi (100,000 resources and up) hold
        // 1.6 M, above the 1.3 M that batches of 64 from 32 clients reach. Small runs (tests,
        // smoke) get small tables so the server starts at once. Larger tables than needed only
        // cost startup time and memory.
        let operations = if heavy {
            16 << 20
        } else {
            resources.saturating_mul(64).next_power_of_two().clamp(1 << 20, 8 << 20)
        };
        ServerSizing {
            resources: resources.max(1024).next_power_of_two(),
            operations,
            leases: operations / 2,
            snapshot_interval_records: 1 << 40,
        }
    }

    /// The TOML configuration file for these sizes.
    pub fn config_toml(&self) -> String {
        format!(
            "[limits]\n\
             resource_count_max = {resources}\n\
             lease_count_max = {leases}\n\
             lease_member_count_max = {leases}\n\
             operation_count_max = {operations}\n\
             dedupe_window_ms = {DEDUPE_WINDOW_MS}\n\
             history_window_ms = 5000\n\
             expiration_bucket_length_max = {leases}\n\
             snapshot_interval_records = {snapshot}\n",
            resources = self.resources,
            leases = self.leases,
            operations = self.operations,
            snapshot = self.snapshot_interval_records,
        )
    }
}

/// A running server started by the bench.
pub struct ServerProcess {
    child: Child,
    pid: u32,
    /// Binary protocol address.
    pub listen: SocketAddr,
    /// HTTP address.
    pub http: SocketAddr,
    /// From spawn to the first 200 of `/readyz`.
    pub startup: Duration,
}

impl ServerProcess {
    /// Starts `binary serve` on `data_dir` with the configuration `config_toml`.
    ///
    /// # Errors
    /// The process did not start, exited, or was not ready within the deadline.
    pub async fn start(binary: &Path, data_dir: &Path, config_toml: &str) -> Result<ServerProcess> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let config_path = config_file_path(data_dir);
        std::fs::write(&config_path, config_toml)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let spawned = Instant::now();
        let mut child = Command::new(binary)
            .args(["serve", "--log-format", "json", "--http", "127.0.0.1:0", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "warn,allocdb_server::serve=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let mut seen = Vec::new();
        let (listen, http) = loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .context("the server did not report its addresses in time")??;
            let Some(line) = line else {
                let status = child.wait().await?;
                bail!("the server exited ({status}) before serving: {}", seen.join("\n"));
            };
            if let Some(addresses) = serving_addresses(&line) {
                break addresses;
            }
            seen.push(line);
        };
        // Keep draining stderr so the server never blocks on a full pipe; relay warnings.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("\"WARN\"") || line.contains("\"ERROR\"") {
                    eprintln!("server: {line}");
                }
            }
        });
        // The `serving` line comes after recovery, with both listeners bound and serving, so
        // one readiness check suffices: anything but 200 (a halted engine) is a failed start.
        let remaining = deadline.saturating_duration_since(Instant::now());
        let ready = tokio::time::timeout(remaining, crate::allocdb_target::http_get(http, "/readyz"))
            .await
            .context("the server did not answer /readyz in time")?
            .context("asking the server's /readyz")?;
        if ready.0 != 200 {
            bail!("the server is serving but not ready: /readyz answered {} {}", ready.0, ready.1);
        }
        Ok(ServerProcess { child, pid, listen, http, startup: spawned.elapsed() })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGTERM and wait for a clean exit (SIGKILL if it does not come in time).
    ///
    /// # Errors
    /// The process did not exit cleanly.
    pub async fn stop(mut self) -> Result<()> {
        let sent = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await?;
        if !sent.success() {
            bail!("kill -TERM {} failed", self.pid);
        }
        let Ok(status) = tokio::time::timeout(PROCESS_DEADLINE, self.child.wait()).await else {
            self.child.kill().await?;
            bail!("the server did not stop within {PROCESS_DEADLINE:?}; killed")
        };
        let status = status?;
        if !status.success() {
            bail!("the server exited with {status}");
        }
        Ok(())
    }
}

fn config_file_path(data_dir: &Path) -> PathBuf {
    let name =
        data_dir.file_name().map_or_else(|| "allocdb".into(), |name| name.to_string_lossy().into_owned());
    data_dir.with_file_name(format!("{name}.bench.toml"))
}

/// The addresses in a JSON `serving` log line.
fn serving_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
    if entry["fields"]["message"] != "serving" {
        return None;
    }
    let address = |field: &str| entry["fields"][field].as_str()?.parse::<SocketAddr>().ok();
    Some((address("listen")?, address("http")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_line_gives_both_addresses() {
        let line = r#"{"level":"INFO","fields":{"message":"serving","http":"127.0.0.1:4001","listen":"127.0.0.1:4002"}}"#;
        let (listen, http) = serving_addresses(line).unwrap_or_else(|| panic!("parsed"));
        assert_eq!(listen.port(), 4002);
        assert_eq!(http.port(), 4001);
        assert_eq!(serving_addresses(r#"{"fields":{"message":"stopped"}}"#), None);
        assert_eq!(serving_addresses("not json"), None);
    }

    #[test]
    fn sizing_scales_with_the_workload() {
        let light = ServerSizing::for_workload(100_000, false);
        assert_eq!(light.resources, 131_072);
        let heavy = ServerSizing::for_workload(100_000, true);
        assert!(heavy.operations > light.operations);
        // The operation table holds the dedupe window at the rates the bench measures: 1.5 M
        // keyed commands per second for batches of 8,192, up to 1.3 M for batches of 64 (a
        // table that holds less fills up mid-run, and every client then gives up).
        let window_seconds = DEDUPE_WINDOW_MS / 1_000;
        assert!(heavy.operations >= 3 * 1_000_000 * window_seconds / 2);
        assert!(light.operations >= 3 * 1_000_000 * window_seconds / 2);
        assert_eq!(ServerSizing::for_workload(4_096, false).operations, 1 << 20);
        assert!(light.config_toml().contains("resource_count_max = 131072"));
    }
}
