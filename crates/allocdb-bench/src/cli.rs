//! The options of `allocdb bench run`: one workload against one target for a fixed window.
//!
//! Defaults follow the peer kit (`shared/bench/peers`) so figures line up with it: 100,000
//! resources, 32 clients, batches of 64, 2 s warm-up, TTL far beyond the run, 1 % of won
//! reserves re-sent with the same operation id.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Which database the load goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TargetKind {
    /// AllocDB: a server this command starts (or `--server`), binary protocol or `--http`.
    Allocdb,
    /// PostgreSQL: a row per resource plus an idempotency table.
    Postgres,
    /// Redis: `SET NX PX` in a Lua script plus idempotency keys.
    Redis,
}

/// What each simulated client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Each client owns a slice of the resources: reserve → activate → release.
    Uncontended,
    /// All clients fight over `--hot` resources; winners release at once.
    Hotspot,
    /// Like uncontended with `--batch` reserves per request, then the releases in one request.
    Batched,
    /// Uncontended writes, each followed by `--reads-per-write` reads fenced at its lsn.
    Mixed,
    /// Restart time of a server whose log holds `--records` records (AllocDB only).
    Recovery,
    /// Requests that do no work (AllocDB ping, PostgreSQL `SELECT 1`, Redis `PING`): the
    /// closed-loop round-trip rate of the harness, the network and the server's request
    /// handling alone, which bounds every unbatched workload from above.
    Ping,
}

/// Whether acknowledged writes must survive a machine crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// fsync before acknowledging (PostgreSQL `synchronous_commit=on`, Redis `appendfsync always`).
    Durable,
    /// The peers' faster settings (`synchronous_commit=off`, `appendfsync everysec`).
    Relaxed,
}

/// How PostgreSQL is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PgMode {
    /// One PL/pgSQL function call per operation (one round trip).
    Fn,
    /// An interactive transaction (BEGIN, three statements, COMMIT).
    Txn,
    /// `fn` whose reserve skips a locked row instead of queueing behind it.
    FnSkiplocked,
}

/// `allocdb bench run`.
#[derive(Args, Clone, Debug)]
#[allow(clippy::struct_excessive_bools, reason = "command-line switches")]
pub struct RunArgs {
    /// The database under load.
    #[arg(long, value_enum, default_value = "allocdb")]
    pub target: TargetKind,
    /// The workload.
    #[arg(long, value_enum, default_value = "uncontended")]
    pub workload: Workload,
    /// AllocDB: drive the HTTP/JSON API (one keep-alive connection per client) instead of
    /// the binary protocol.
    #[arg(long)]
    pub http: bool,
    /// AllocDB: an already running server's binary address instead of starting one.
    #[arg(long, value_name = "ADDR")]
    pub server: Option<String>,
    /// AllocDB: that server's HTTP address (metrics, `--http`).
    #[arg(long, value_name = "ADDR")]
    pub server_http: Option<String>,
    /// AllocDB: the `allocdb` executable to start (default: this one).
    #[arg(long, value_name = "FILE")]
    pub server_binary: Option<PathBuf>,
    /// AllocDB: where a started server keeps its data (default: a fresh directory under
    /// `$TMPDIR` or `/var/tmp`, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Resources for uncontended, batched and mixed (ids 0..N).
    #[arg(long, default_value_t = 100_000)]
    pub resources: u64,
    /// Resources for hotspot.
    #[arg(long, default_value_t = 1)]
    pub hot: u64,
    /// Simulated clients, one connection each.
    #[arg(long, default_value_t = 32)]
    pub clients: u64,
    /// Reserves per request in the batched workload.
    #[arg(long, default_value_t = 64)]
    pub batch: u64,
    /// Fenced reads after each reserve in the mixed workload.
    #[arg(long, default_value_t = 4)]
    pub reads_per_write: u64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Unmeasured seconds before the window.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Open loop: requests per second over all clients, latency measured from each request's
    /// intended send time. Without it, closed loop (each client waits for its answer).
    #[arg(long, value_name = "REQUESTS_PER_S")]
    pub rate: Option<f64>,
    /// Lease TTL; must exceed the run (the checks assume no lease expires during it).
    #[arg(long, default_value_t = 120_000)]
    pub ttl_ms: u64,
    /// Percent of won reserves re-sent with the same operation id.
    #[arg(long, default_value_t = 1.0)]
    pub retry_pct: f64,
    /// Uncontended and mixed: release straight after reserve, without the activate step.
    #[arg(long)]
    pub skip_activate: bool,
    /// Seed of the clients' choices.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Durable settings, or the peers' faster ones (AllocDB is always durable).
    #[arg(long, value_enum, default_value = "durable")]
    pub durability: Durability,
    /// Recovery: log records to write before the restart.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Recovery: take a snapshot near the end of the log, so the restart loads it.
    #[arg(long)]
    pub snapshot: bool,
    /// PostgreSQL connection string.
    #[arg(long, default_value = "host=127.0.0.1 port=55432 user=bench dbname=bench")]
    pub pg_url: String,
    /// How PostgreSQL is driven.
    #[arg(long, value_enum, default_value = "fn")]
    pub pg_mode: PgMode,
    /// Redis URL.
    #[arg(long, default_value = "redis://127.0.0.1:56379/")]
    pub redis_url: String,
    /// Peer server process ids (comma list) for CPU and memory figures.
    #[arg(long, value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Append the result as one JSON line to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}
