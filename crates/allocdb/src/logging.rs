//! Structured logging to stderr with `tracing`.
//!
//! The filter comes from `RUST_LOG` in the `target=level,...` syntax (for example
//! `info,allocdb_server=debug`), default `info`. A filter that does not parse is reported and
//! replaced by the default rather than silencing the logs.

use std::io::IsTerminal;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber.
pub(crate) fn init(format: LogFormat) {
    let (filter, invalid) = match std::env::var("RUST_LOG") {
        Ok(text) => match text.parse::<Targets>() {
            Ok(filter) => (filter, None),
            Err(error) => (
                default_filter(),
                Some(format!("RUST_LOG {text:?} is invalid ({error}); using {DEFAULT_FILTER:?}")),
            ),
        },
        Err(_) => (default_filter(), None),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => {
            registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).try_init()
        }
    };
    if let Err(error) = installed {
        eprintln!("allocdb: cannot install the logger: {error}");
    }
    if let Some(message) = invalid {
        tracing::warn!("{message}");
    }
}

fn default_filter() -> Targets {
    Targets::new().with_default(tracing::Level::INFO)
}
