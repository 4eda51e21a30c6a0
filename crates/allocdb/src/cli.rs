//! Command-line arguments, and the effective configuration they describe.
//!
//! Precedence: built-in defaults, then the `--config` file, then flags. The effective
//! configuration is validated before anything opens, so `--print-config` never prints a
//! configuration the server would refuse.

use std::net::SocketAddr;
use std::path::PathBuf;

use allocdb_server::{ConfigFileError, ServerConfig};
use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) use crate::client::ClientCommand;

/// AllocDB: leases over scarce resources, one resource, one winner.
#[derive(Debug, Parser)]
#[command(name = "allocdb", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a node: the HTTP/JSON API (and the binary protocol) over a local data directory.
    Serve(ServeArgs),
    /// Measure: reservation workloads against AllocDB, PostgreSQL and Redis, side by side.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    #[command(flatten)]
    Client(ClientCommand),
}

/// `allocdb serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Data directory (default ./allocdb-data).
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// HTTP/JSON listen address (default 127.0.0.1:7880; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<SocketAddr>,
    /// Binary protocol listen address (default 127.0.0.1:7878).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// TOML configuration file; flags override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Length of one logical slot in milliseconds.
    #[arg(long, value_name = "N")]
    pub(crate) slot_ms: Option<u64>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Log line format on stderr (filter with `RUST_LOG`, e.g. `info,allocdb_server=debug`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl ServeArgs {
    /// Defaults, overlaid with the file, overlaid with the flags; validated.
    pub(crate) fn effective_config(&self) -> Result<ServerConfig, ConfigFileError> {
        let mut config = match &self.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        if let Some(data_dir) = &self.data_dir {
            config.data_dir.clone_from(data_dir);
        }
        if let Some(http) = self.http {
            config.http = http;
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(slot_ms) = self.slot_ms {
            config.slot_ms = slot_ms;
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    fn serve_args(arguments: &[&str]) -> super::ServeArgs {
        let Command::Serve(serve) = Cli::try_parse_from(arguments).unwrap().command else {
            panic!("not a serve command: {arguments:?}");
        };
        serve
    }

    #[test]
    fn flags_override_defaults() {
        let config = serve_args(&[
            "allocdb",
            "serve",
            "--data-dir",
            "/tmp/x",
            "--http",
            "127.0.0.1:9",
            "--slot-ms",
            "5",
        ])
        .effective_config()
        .unwrap();
        assert_eq!(config.data_dir, std::path::PathBuf::from("/tmp/x"));
        assert_eq!(config.http.port(), 9);
        assert_eq!(config.slot_ms, 5);
        assert_eq!(config.listen.port(), 7878);
    }

    #[test]
    fn invalid_flag_values_fail_validation() {
        let error = serve_args(&["allocdb", "serve", "--slot-ms", "0"]).effective_config().unwrap_err();
        assert!(error.to_string().contains("slot_duration_ms"), "{error}");
    }
}
