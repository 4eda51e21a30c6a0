//! The PostgreSQL target: reservations the way an application would keep them in PostgreSQL,
//! a row per resource plus an idempotency table keyed by operation id.
//!
//! Schema (in its own schema `allocdb_bench`, recreated by `prepare`):
//! `resources(id PK, holder, lease_id, status, expires_at)` and
//! `ops(op_id PK, kind, resource_id, ok, lease_id, created_at)`.
//!
//! Every write is one transaction that first claims its operation id with
//! `INSERT INTO ops … ON CONFLICT (op_id) DO NOTHING`. A conflict means the id was applied
//! before: the recorded outcome is returned and nothing else happens. A concurrent retry of the
//! same id waits on the first attempt's uncommitted row, then sees the conflict (or, if that
//! attempt rolled back, applies it itself), so an id is applied at most once. Otherwise the
//! resource row is updated conditionally — reserve only if free or expired, activate and
//! release only if the row names the same lease — and the outcome is recorded in `ops`.
//!
//! The three ways of driving it ([`PgMode`]): PL/pgSQL functions (one round trip per
//! operation), an interactive transaction (BEGIN, claim, update, record, COMMIT: five round
//! trips), or the functions with a reserve that takes the row lock with `SKIP LOCKED` so that a
//! contender is told `busy` at once instead of queueing behind the holder's commit. A batch is
//! one transaction whose statements are pipelined on the connection (tokio-postgres sends every
//! polled query without waiting for the previous answer).
//!
//! Leases: the client proposes the lease id (the reserve's operation id); epochs and lsns are
//! 0, and reads return the latest committed state.

use std::future::Future;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::future::try_join_all;
use tokio_postgres::{Client, NoTls, Statement, Transaction};

use crate::backend::{
    DurabilityCounters, Lease, LeaseOp, ReadOutcome, Reserve, ReserveOutcome, Session, Target, TargetLabel,
};
use crate::cli::{Durability, PgMode, RunArgs};

/// The schema everything lives in; `prepare` drops and recreates it.
const SCHEMA_NAME: &str = "allocdb_bench";

/// `ops.kind` of a reserve.
const KIND_RESERVE: i16 = 1;
/// `ops.kind` of an activate.
const KIND_ACTIVATE: i16 = 2;
/// `ops.kind` of a release.
const KIND_RELEASE: i16 = 3;

/// The tables. `fillfactor = 70` leaves room on each page for HOT updates of the resource rows.
const TABLES_SQL: &str = "
CREATE TABLE resources (
    id          bigint PRIMARY KEY,
    holder      bigint,
    lease_id    bigint,
    status      smallint NOT NULL DEFAULT 0, -- 0 free, 1 reserved (expires), 2 active
    expires_at  timestamptz                  -- NULL while free or active
) WITH (fillfactor = 70);
CREATE TABLE ops (
    op_id       bigint PRIMARY KEY,
    kind        smallint NOT NULL,           -- 1 reserve, 2 activate, 3 release
    resource_id bigint NOT NULL,
    ok          boolean,                     -- NULL only inside the claiming transaction
    lease_id    bigint,
    created_at  timestamptz NOT NULL DEFAULT now()
);
";

/// The condition under which a reserve may take a resource row.
const RESERVABLE: &str = "(holder IS NULL OR expires_at < now())";
/// The condition under which an activate applies: the lease is named and has not expired.
const ACTIVATABLE: &str = "lease_id = p_lease AND (expires_at IS NULL OR expires_at >= now())";

/// How a reserve finds the row it updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowLock {
    /// Update the row directly, queueing behind a transaction that has it locked.
    Wait,
    /// Lock the row with `FOR UPDATE SKIP LOCKED` first; a locked row counts as busy.
    Skip,
}

/// The PL/pgSQL reserve function for `lock`, named after it.
fn reserve_function_sql(lock: RowLock) -> String {
    let (name, row) = match lock {
        RowLock::Wait => ("bench_reserve", format!("id = p_resource AND {RESERVABLE}")),
        RowLock::Skip => (
            "bench_reserve_skip_locked",
            "id = (SELECT r.id FROM resources r WHERE r.id = p_resource \
             AND (r.holder IS NULL OR r.expires_at < now()) FOR UPDATE SKIP LOCKED)"
                .to_owned(),
        ),
    };
    format!(
        "CREATE FUNCTION {name}(p_op bigint, p_resource bigint, p_holder bigint, p_lease bigint,
                         p_ttl_ms bigint, OUT won boolean, OUT lease bigint)
LANGUAGE plpgsql AS $body$
BEGIN
  INSERT INTO ops (op_id, kind, resource_id) VALUES (p_op, {KIND_RESERVE}, p_resource)
    ON CONFLICT (op_id) DO NOTHING;
  IF NOT FOUND THEN
    -- A retry of an applied operation: answer what it answered the first time.
    SELECT o.ok, o.lease_id INTO won, lease FROM ops o WHERE o.op_id = p_op;
    RETURN;
  END IF;
  UPDATE resources SET holder = p_holder, lease_id = p_lease, status = 1,
                       expires_at = now() + p_ttl_ms * interval '1 millisecond'
   WHERE {row};
  won := FOUND;
  lease := CASE WHEN won THEN p_lease END;
  UPDATE ops SET ok = won, lease_id = lease WHERE op_id = p_op;
END
$body$;
"
    )
}

/// A PL/pgSQL function for a lease-fenced write: claims the id, runs `assignments` on the row
/// when `condition` holds, records whether it did.
fn fenced_function_sql(name: &str, kind: i16, assignments: &str, condition: &str) -> String {
    format!(
        "CREATE FUNCTION {name}(p_op bigint, p_resource bigint, p_lease bigint, OUT applied boolean)
LANGUAGE plpgsql AS $body$
BEGIN
  INSERT INTO ops (op_id, kind, resource_id, lease_id) VALUES (p_op, {kind}, p_resource, p_lease)
    ON CONFLICT (op_id) DO NOTHING;
  IF NOT FOUND THEN
    SELECT o.ok INTO applied FROM ops o WHERE o.op_id = p_op;
    RETURN;
  END IF;
  UPDATE resources SET {assignments} WHERE id = p_resource AND {condition};
  applied := FOUND;
  UPDATE ops SET ok = applied WHERE op_id = p_op;
END
$body$;
"
    )
}

/// Everything `prepare` runs before inserting the resources: a fresh schema, its tables and
/// functions.
fn schema_sql() -> String {
    [
        format!("DROP SCHEMA IF EXISTS {SCHEMA_NAME} CASCADE;"),
        format!("CREATE SCHEMA {SCHEMA_NAME};"),
        format!("SET search_path = {SCHEMA_NAME};"),
        TABLES_SQL.to_owned(),
        reserve_function_sql(RowLock::Wait),
        reserve_function_sql(RowLock::Skip),
        fenced_function_sql("bench_activate", KIND_ACTIVATE, "status = 2, expires_at = NULL", ACTIVATABLE),
        fenced_function_sql(
            "bench_release",
            KIND_RELEASE,
            "holder = NULL, lease_id = NULL, status = 0, expires_at = NULL",
            "lease_id = p_lease",
        ),
    ]
    .join("\n")
}

/// The session settings: where the tables are, and whether a commit waits for the WAL flush.
fn session_setup_sql(durability: Durability) -> String {
    let synchronous_commit = match durability {
        Durability::Durable => "on",
        Durability::Relaxed => "off",
    };
    format!("SET search_path = {SCHEMA_NAME}; SET synchronous_commit = {synchronous_commit};")
}

/// One function call per operation (modes `fn`, `fn-skiplocked`).
const CALL_RESERVE: &str = "SELECT won, lease FROM bench_reserve($1, $2, $3, $4, $5)";
const CALL_RESERVE_SKIP_LOCKED: &str = "SELECT won, lease FROM bench_reserve_skip_locked($1, $2, $3, $4, $5)";
const CALL_ACTIVATE: &str = "SELECT applied FROM bench_activate($1, $2, $3)";
const CALL_RELEASE: &str = "SELECT applied FROM bench_release($1, $2, $3)";

/// The statements of the interactive transaction (mode `txn`): the functions' steps, sent one
/// by one. `CLAIM` returns a row only when the id is new.
const CLAIM: &str = "INSERT INTO ops (op_id, kind, resource_id, lease_id) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (op_id) DO NOTHING RETURNING op_id";
const RECORDED: &str = "SELECT ok, lease_id FROM ops WHERE op_id = $1";
const UPDATE_RESERVE: &str = "UPDATE resources SET holder = $2, lease_id = $3, status = 1, \
                              expires_at = now() + $4::bigint * interval '1 millisecond' \
                              WHERE id = $1 AND (holder IS NULL OR expires_at < now()) RETURNING id";
const UPDATE_ACTIVATE: &str = "UPDATE resources SET status = 2, expires_at = NULL \
                               WHERE id = $1 AND lease_id = $2 \
                               AND (expires_at IS NULL OR expires_at >= now()) RETURNING id";
const UPDATE_RELEASE: &str = "UPDATE resources SET holder = NULL, lease_id = NULL, status = 0, \
                              expires_at = NULL WHERE id = $1 AND lease_id = $2 RETURNING id";
const RECORD: &str = "UPDATE ops SET ok = $2, lease_id = $3 WHERE op_id = $1";

/// The ping workload's request: a round trip that reads no table.
const PING: &str = "SELECT 1::int4";

/// A read: the lease holding the row, if it has not expired.
const READ: &str = "SELECT lease_id, holder IS NOT NULL AND (expires_at IS NULL OR expires_at >= now()) \
                    FROM resources WHERE id = $1";
const HELD_COUNT: &str = "SELECT count(*) FROM resources WHERE id >= 0 AND id < $1 \
                          AND holder IS NOT NULL AND (expires_at IS NULL OR expires_at >= now())";

/// Settings that decide what `pg_stat_wal` counts.
const WAL_SETTINGS: &str = "SELECT current_setting('server_version_num')::int, \
                            current_setting('fsync'), current_setting('wal_sync_method'), \
                            current_setting('track_wal_io_timing', true)";
/// The flush and commit counters, and the time spent flushing (milliseconds). Backends publish
/// their statistics at most about once a second, so all three lag by up to a second.
const COUNTERS: &str = "SELECT w.wal_sync, d.xact_commit, w.wal_sync_time \
                        FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()";

/// Whether `pg_stat_wal.wal_sync` counts WAL flushes on a server with these settings: the view
/// exists from PostgreSQL 14, and it counts only `fsync`-style methods (the `open_*` methods
/// write synchronously and leave it at zero).
fn wal_sync_counted(server_version_num: i32, fsync: &str, wal_sync_method: &str) -> bool {
    server_version_num >= 140_000
        && fsync == "on"
        && matches!(wal_sync_method, "fdatasync" | "fsync" | "fsync_writethrough")
}

/// `pg_stat_wal.wal_sync_time` (milliseconds, a float) in whole microseconds; `None` for a
/// value no clock produces (negative, not finite, beyond `u64`).
fn sync_time_micros(milliseconds: f64) -> Option<u64> {
    // 2^64: the first value `u64` cannot hold. NaN and the infinities fall outside the range too.
    const MICROS_LIMIT: f64 = 18_446_744_073_709_551_616.0;
    let micros = (milliseconds * 1000.0).round();
    if !(0.0..MICROS_LIMIT).contains(&micros) {
        return None;
    }
    #[expect(clippy::cast_sign_loss, reason = "checked non-negative and below 2^64 above")]
    Some(micros as u64)
}

/// The postmaster's pid: the first line of `postmaster.pid`.
fn postmaster_pid(pid_file: &str) -> Option<u32> {
    pid_file.lines().next()?.trim().parse().ok()
}

/// Reinterprets a 64-bit id as PostgreSQL's signed `bigint`, bit for bit (ids above
/// `i64::MAX` become negative and come back unchanged through [`id_from_bigint`]).
fn bigint_from_id(id: u64) -> i64 {
    i64::from_ne_bytes(id.to_ne_bytes())
}

/// The inverse of [`bigint_from_id`].
fn id_from_bigint(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

/// A lease id as stored: the peers' leases are the reserve's operation id, so 64 bits.
fn lease_bigint(lease_id: u128) -> Result<i64> {
    let id = u64::try_from(lease_id)
        .map_err(|_| anyhow!("lease id {lease_id} does not fit the 64-bit lease column"))?;
    Ok(bigint_from_id(id))
}

/// A lease as the load generator sees it.
fn lease_from_bigint(value: i64) -> Lease {
    Lease { id: u128::from(id_from_bigint(value)), epoch: 0, lsn: 0 }
}

/// A reserve's outcome from the `(won, lease)` pair a function or the `ops` row gives.
fn reserve_outcome(won: Option<bool>, lease: Option<i64>) -> Result<ReserveOutcome> {
    match (won, lease) {
        (Some(true), Some(lease)) => Ok(ReserveOutcome::Won(lease_from_bigint(lease))),
        (Some(false), _) => Ok(ReserveOutcome::Busy),
        (Some(true), None) => bail!("a won reserve recorded without its lease"),
        (None, _) => bail!("a reserve without a recorded outcome"),
    }
}

/// A fenced write's outcome from the `applied` column or the `ops` row.
fn fenced_outcome(applied: Option<bool>) -> Result<bool> {
    applied.ok_or_else(|| anyhow!("a lease operation without a recorded outcome"))
}

/// A reserve's parameters as `bigint`s.
struct ReserveParams {
    op: i64,
    resource: i64,
    holder: i64,
    lease: i64,
    ttl_ms: i64,
}

impl ReserveParams {
    fn new(reserve: &Reserve) -> Result<ReserveParams> {
        Ok(ReserveParams {
            op: bigint_from_id(reserve.op_id),
            resource: resource_bigint(reserve.resource)?,
            holder: i64::try_from(reserve.holder).with_context(|| format!("holder {}", reserve.holder))?,
            // The client proposes the lease: the reserve's own operation id.
            lease: bigint_from_id(reserve.op_id),
            ttl_ms: i64::try_from(reserve.ttl_ms).with_context(|| format!("ttl {} ms", reserve.ttl_ms))?,
        })
    }
}

/// An activate's or release's parameters as `bigint`s.
struct FencedParams {
    op: i64,
    resource: i64,
    lease: i64,
}

impl FencedParams {
    fn new(op: &LeaseOp) -> Result<FencedParams> {
        Ok(FencedParams {
            op: bigint_from_id(op.op_id),
            resource: resource_bigint(op.resource)?,
            lease: lease_bigint(op.lease.id)?,
        })
    }
}

/// Resource ids are the `bigint` primary key, created by `generate_series`, so below `i64::MAX`.
fn resource_bigint(resource: u64) -> Result<i64> {
    i64::try_from(resource).with_context(|| format!("resource {resource} exceeds the bigint key"))
}

/// Opens a connection and drives it on its own task.
async fn open(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL ({url})"))?;
    tokio::spawn(async move {
        // The client's next request fails with the same error; this only says why.
        if let Err(error) = connection.await {
            eprintln!("postgres connection closed: {error}");
        }
    });
    Ok(client)
}

/// PostgreSQL as a benchmark target; see the module doc.
pub struct PostgresTarget {
    url: String,
    mode: PgMode,
    durability: Durability,
    server_pids: Vec<u32>,
}

impl PostgresTarget {
    /// Connects once to check the server is there and, unless `--server-pids` names them, finds
    /// the postmaster's pid from `postmaster.pid` in the server's data directory (when this
    /// process can read it, i.e. the server is local and we may read its files).
    ///
    /// # Errors
    ///
    /// When the server cannot be reached with `args.pg_url`.
    pub async fn new(args: &RunArgs) -> Result<PostgresTarget> {
        let client = open(&args.pg_url).await?;
        let server_pids = if args.server_pids.is_empty() {
            local_postmaster_pid(&client).await.into_iter().collect()
        } else {
            args.server_pids.clone()
        };
        Ok(PostgresTarget {
            url: args.pg_url.clone(),
            mode: args.pg_mode,
            durability: args.durability,
            server_pids,
        })
    }
}

/// The postmaster's pid if the server's data directory is readable here and names a live
/// process; `None` otherwise (a remote server, no permission, not a superuser).
async fn local_postmaster_pid(client: &Client) -> Option<u32> {
    let row = client.query_one("SHOW data_directory", &[]).await.ok()?;
    let data_directory: String = row.try_get(0).ok()?;
    let pid_file = std::fs::read_to_string(format!("{data_directory}/postmaster.pid")).ok()?;
    let pid = postmaster_pid(&pid_file)?;
    std::path::Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

impl Target for PostgresTarget {
    type Session = PostgresSession;

    fn label(&self) -> TargetLabel {
        let variant = match self.mode {
            PgMode::Fn => "fn",
            PgMode::Txn => "txn",
            PgMode::FnSkiplocked => "fn-skiplocked",
        };
        let (durability, durable) = match self.durability {
            Durability::Durable => ("synchronous_commit=on", true),
            Durability::Relaxed => ("synchronous_commit=off", false),
        };
        TargetLabel {
            target: "postgres".to_owned(),
            variant: variant.to_owned(),
            durability: durability.to_owned(),
            durable,
        }
    }

    async fn prepare(&self, resources: u64) -> Result<()> {
        let client = open(&self.url).await?;
        client.batch_execute(&schema_sql()).await.context("creating the bench schema")?;
        let count = i64::try_from(resources).with_context(|| format!("{resources} resources"))?;
        client
            .execute(
                "INSERT INTO resources (id) SELECT g FROM generate_series(0::bigint, $1::bigint - 1) g",
                &[&count],
            )
            .await
            .context("inserting the resources")?;
        // Fresh statistics for the planner, and a checkpoint now rather than inside the window.
        // One statement per call: VACUUM refuses to run inside the implicit transaction of a
        // multi-statement query.
        for table in ["resources", "ops"] {
            client.batch_execute(&format!("VACUUM ANALYZE {table}")).await.context("VACUUM ANALYZE")?;
        }
        client.batch_execute("CHECKPOINT").await.context("CHECKPOINT (needs superuser or pg_checkpoint)")?;
        Ok(())
    }

    async fn connect(&self) -> Result<PostgresSession> {
        let client = open(&self.url).await?;
        client.batch_execute(&session_setup_sql(self.durability)).await.context("session settings")?;
        let statements = Statements::prepare(&client, self.mode).await?;
        let ping = client.prepare(PING).await?;
        Ok(PostgresSession { client, statements, ping })
    }

    async fn held_count(&self, resources: u64) -> Result<u64> {
        let client = open(&self.url).await?;
        client.batch_execute(&session_setup_sql(self.durability)).await?;
        let limit = i64::try_from(resources).with_context(|| format!("{resources} resources"))?;
        let count: i64 = client.query_one(HELD_COUNT, &[&limit]).await?.try_get(0)?;
        u64::try_from(count).context("negative count")
    }

    fn server_pids(&self) -> Vec<u32> {
        self.server_pids.clone()
    }

    async fn durability_counters(&self) -> Result<Option<DurabilityCounters>> {
        let client = open(&self.url).await?;
        let settings = client.query_one(WAL_SETTINGS, &[]).await?;
        let version: i32 = settings.try_get(0)?;
        let fsync: String = settings.try_get(1)?;
        let method: String = settings.try_get(2)?;
        // NULL on servers older than the setting (PostgreSQL 14).
        let io_timing: Option<String> = settings.try_get(3)?;
        if !wal_sync_counted(version, &fsync, &method) {
            return Ok(None);
        }
        let row = client.query_one(COUNTERS, &[]).await.context("reading pg_stat_wal")?;
        let wal_sync: i64 = row.try_get(0)?;
        let commits: i64 = row.try_get(1)?;
        let sync_time_ms: f64 = row.try_get(2)?;
        Ok(Some(DurabilityCounters {
            fsyncs: u64::try_from(wal_sync).context("negative wal_sync")?,
            // Includes read-only transactions (reads, these queries), which flush nothing.
            commands: u64::try_from(commits).context("negative xact_commit")?,
            // The time is only measured with track_wal_io_timing on; otherwise it stays 0.
            fsync_micros: if io_timing.as_deref() == Some("on") {
                sync_time_micros(sync_time_ms)
            } else {
                None
            },
        }))
    }
}

/// A session's prepared statements for its mode.
enum Statements {
    /// One function call per operation.
    Functions { reserve: Statement, activate: Statement, release: Statement, read: Statement },
    /// The interactive transaction's steps.
    Interactive {
        claim: Statement,
        recorded: Statement,
        reserve: Statement,
        activate: Statement,
        release: Statement,
        record: Statement,
        read: Statement,
    },
}

impl Statements {
    async fn prepare(client: &Client, mode: PgMode) -> Result<Statements> {
        let read = client.prepare(READ).await?;
        let statements = match mode {
            PgMode::Fn | PgMode::FnSkiplocked => {
                let reserve_sql = if mode == PgMode::Fn { CALL_RESERVE } else { CALL_RESERVE_SKIP_LOCKED };
                Statements::Functions {
                    reserve: client.prepare(reserve_sql).await?,
                    activate: client.prepare(CALL_ACTIVATE).await?,
                    release: client.prepare(CALL_RELEASE).await?,
                    read,
                }
            }
            PgMode::Txn => Statements::Interactive {
                claim: client.prepare(CLAIM).await?,
                recorded: client.prepare(RECORDED).await?,
                reserve: client.prepare(UPDATE_RESERVE).await?,
                activate: client.prepare(UPDATE_ACTIVATE).await?,
                release: client.prepare(UPDATE_RELEASE).await?,
                record: client.prepare(RECORD).await?,
                read,
            },
        };
        Ok(statements)
    }

    fn read(&self) -> &Statement {
        match self {
            Statements::Functions { read, .. } | Statements::Interactive { read, .. } => read,
        }
    }
}

/// Which lease-fenced write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fenced {
    Activate,
    Release,
}

/// One simulated client's connection to PostgreSQL.
pub struct PostgresSession {
    client: Client,
    statements: Statements,
    ping: Statement,
}

impl PostgresSession {
    /// Reserves `params` in one transaction: an autocommitted function call for a single item
    /// in function modes, else BEGIN, the pipelined statements, COMMIT.
    async fn reserve_all(&mut self, params: &[ReserveParams]) -> Result<Vec<ReserveOutcome>> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        if let (Statements::Functions { reserve, .. }, [item]) = (&self.statements, params) {
            let row = self
                .client
                .query_one(reserve, &[&item.op, &item.resource, &item.holder, &item.lease, &item.ttl_ms])
                .await?;
            return Ok(vec![reserve_outcome(row.try_get(0)?, row.try_get(1)?)?]);
        }
        let transaction = self.client.transaction().await?;
        let outcomes = match &self.statements {
            Statements::Functions { reserve, .. } => {
                let transaction = &transaction;
                let rows = pipeline(params, |item| async move {
                    transaction
                        .query_one(
                            reserve,
                            &[&item.op, &item.resource, &item.holder, &item.lease, &item.ttl_ms],
                        )
                        .await
                })
                .await?;
                rows.iter()
                    .map(|row| reserve_outcome(row.try_get(0)?, row.try_get(1)?))
                    .collect::<Result<Vec<_>>>()?
            }
            Statements::Interactive { claim, recorded, reserve, record, .. } => {
                let steps = InteractiveSteps { claim, recorded, record };
                interactive_reserves(&transaction, &steps, reserve, params).await?
            }
        };
        transaction.commit().await?;
        Ok(outcomes)
    }

    /// Activates or releases `params` in one transaction, like [`Self::reserve_all`].
    async fn fenced_all(&mut self, which: Fenced, params: &[FencedParams]) -> Result<Vec<bool>> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        if let (Statements::Functions { activate, release, .. }, [item]) = (&self.statements, params) {
            let call = if which == Fenced::Activate { activate } else { release };
            let row = self.client.query_one(call, &[&item.op, &item.resource, &item.lease]).await?;
            return Ok(vec![fenced_outcome(row.try_get(0)?)?]);
        }
        let transaction = self.client.transaction().await?;
        let outcomes = match &self.statements {
            Statements::Functions { activate, release, .. } => {
                let call = if which == Fenced::Activate { activate } else { release };
                let transaction = &transaction;
                let rows = pipeline(params, |item| async move {
                    transaction.query_one(call, &[&item.op, &item.resource, &item.lease]).await
                })
                .await?;
                rows.iter().map(|row| fenced_outcome(row.try_get(0)?)).collect::<Result<Vec<_>>>()?
            }
            Statements::Interactive { claim, recorded, activate, release, record, .. } => {
                let steps = InteractiveSteps { claim, recorded, record };
                let update = if which == Fenced::Activate { activate } else { release };
                let kind = if which == Fenced::Activate { KIND_ACTIVATE } else { KIND_RELEASE };
                interactive_fenced(&transaction, &steps, update, kind, params).await?
            }
        };
        transaction.commit().await?;
        Ok(outcomes)
    }
}

/// Sends one statement per item without waiting in between (pipelining) and collects the
/// answers in order. The first error fails the whole transaction.
async fn pipeline<'item, Item, Answer, Request>(
    items: &'item [Item],
    request: impl Fn(&'item Item) -> Request,
) -> Result<Vec<Answer>>
where
    Request: Future<Output = Result<Answer, tokio_postgres::Error>>,
{
    Ok(try_join_all(items.iter().map(request)).await?)
}

/// The statements every interactive write shares.
struct InteractiveSteps<'statement> {
    claim: &'statement Statement,
    recorded: &'statement Statement,
    record: &'statement Statement,
}

/// Interactive reserves in three pipelined phases: claim every id; update the row for new ids
/// and read the recorded outcome for retried ones; record the new outcomes.
async fn interactive_reserves(
    transaction: &Transaction<'_>,
    steps: &InteractiveSteps<'_>,
    update: &Statement,
    params: &[ReserveParams],
) -> Result<Vec<ReserveOutcome>> {
    let no_lease: Option<i64> = None;
    let claims = pipeline(params, |item| async move {
        transaction.query_opt(steps.claim, &[&item.op, &KIND_RESERVE, &item.resource, &no_lease]).await
    })
    .await?;
    let outcomes = try_join_all(params.iter().zip(&claims).map(|(item, claim)| async move {
        if claim.is_some() {
            let won = transaction
                .query_opt(update, &[&item.resource, &item.holder, &item.lease, &item.ttl_ms])
                .await?
                .is_some();
            Ok::<_, anyhow::Error>((true, Some(won), won.then_some(item.lease)))
        } else {
            let row = transaction.query_one(steps.recorded, &[&item.op]).await?;
            Ok((false, row.try_get(0)?, row.try_get(1)?))
        }
    }))
    .await?;
    try_join_all(
        params.iter().zip(&outcomes).filter(|(_, (fresh, ..))| *fresh).map(
            |(item, (_, won, lease))| async move {
                transaction.execute(steps.record, &[&item.op, won, lease]).await
            },
        ),
    )
    .await?;
    outcomes.into_iter().map(|(_, won, lease)| reserve_outcome(won, lease)).collect()
}

/// Interactive activates or releases, in the same three phases as [`interactive_reserves`].
async fn interactive_fenced(
    transaction: &Transaction<'_>,
    steps: &InteractiveSteps<'_>,
    update: &Statement,
    kind: i16,
    params: &[FencedParams],
) -> Result<Vec<bool>> {
    let claims = pipeline(params, |item| async move {
        transaction.query_opt(steps.claim, &[&item.op, &kind, &item.resource, &item.lease]).await
    })
    .await?;
    let outcomes = try_join_all(params.iter().zip(&claims).map(|(item, claim)| async move {
        if claim.is_some() {
            let applied = transaction.query_opt(update, &[&item.resource, &item.lease]).await?.is_some();
            Ok::<_, anyhow::Error>((true, Some(applied)))
        } else {
            let row = transaction.query_one(steps.recorded, &[&item.op]).await?;
            Ok((false, row.try_get(0)?))
        }
    }))
    .await?;
    try_join_all(params.iter().zip(&outcomes).filter(|(_, (fresh, _))| *fresh).map(
        |(item, (_, applied))| async move {
            transaction.execute(steps.record, &[&item.op, applied, &item.lease]).await
        },
    ))
    .await?;
    outcomes.into_iter().map(|(_, applied)| fenced_outcome(applied)).collect()
}

/// The only outcome of a one-item request.
fn single<T>(outcomes: Vec<T>) -> Result<T> {
    let count = outcomes.len();
    let mut outcomes = outcomes.into_iter();
    match (outcomes.next(), outcomes.next()) {
        (Some(outcome), None) => Ok(outcome),
        _ => bail!("{count} outcomes for one operation"),
    }
}

impl Session for PostgresSession {
    async fn reserve(&mut self, reserve: Reserve) -> Result<ReserveOutcome> {
        single(self.reserve_all(&[ReserveParams::new(&reserve)?]).await?)
    }

    async fn activate(&mut self, op: LeaseOp) -> Result<bool> {
        single(self.fenced_all(Fenced::Activate, &[FencedParams::new(&op)?]).await?)
    }

    async fn release(&mut self, op: LeaseOp) -> Result<bool> {
        single(self.fenced_all(Fenced::Release, &[FencedParams::new(&op)?]).await?)
    }

    async fn ping(&mut self) -> Result<()> {
        let row = self.client.query_one(&self.ping, &[]).await?;
        let one: i32 = row.try_get(0)?;
        if one != 1 {
            bail!("SELECT 1 answered {one}");
        }
        Ok(())
    }

    async fn read(&mut self, resource: u64, _fence_lsn: u64) -> Result<ReadOutcome> {
        let id = resource_bigint(resource)?;
        let row = self
            .client
            .query_opt(self.statements.read(), &[&id])
            .await?
            .ok_or_else(|| anyhow!("resource {resource} has no row (was it prepared?)"))?;
        let lease: Option<i64> = row.try_get(0)?;
        let live: bool = row.try_get(1)?;
        Ok(match (live, lease) {
            (true, Some(lease)) => ReadOutcome::Held(u128::from(id_from_bigint(lease))),
            _ => ReadOutcome::Free,
        })
    }

    async fn reserve_batch(&mut self, reserves: &[Reserve]) -> Result<Vec<ReserveOutcome>> {
        let params = reserves.iter().map(ReserveParams::new).collect::<Result<Vec<_>>>()?;
        self.reserve_all(&params).await
    }

    async fn release_batch(&mut self, ops: &[LeaseOp]) -> Result<Vec<bool>> {
        let params = ops.iter().map(FencedParams::new).collect::<Result<Vec<_>>>()?;
        self.fenced_all(Fenced::Release, &params).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_locked_reserve_takes_the_row_lock_without_waiting() {
        let waiting = reserve_function_sql(RowLock::Wait);
        let skipping = reserve_function_sql(RowLock::Skip);
        assert!(waiting.starts_with("CREATE FUNCTION bench_reserve("));
        assert!(skipping.starts_with("CREATE FUNCTION bench_reserve_skip_locked("));
        assert!(!waiting.contains("SKIP LOCKED"));
        assert!(skipping.contains("FOR UPDATE SKIP LOCKED"));
        // Both take only a free or expired resource.
        assert!(waiting.contains(RESERVABLE));
        assert!(skipping.contains("r.holder IS NULL OR r.expires_at < now()"));
    }

    #[test]
    fn every_called_function_is_created_by_the_schema() {
        let schema = schema_sql();
        for call in [CALL_RESERVE, CALL_RESERVE_SKIP_LOCKED, CALL_ACTIVATE, CALL_RELEASE] {
            let name =
                call.split_once("FROM ").and_then(|(_, rest)| rest.split_once('(')).map(|(name, _)| name);
            let name = name.expect("a call names a function");
            assert!(schema.contains(&format!("CREATE FUNCTION {name}(")), "{name} is not created");
        }
        assert!(schema.starts_with("DROP SCHEMA IF EXISTS allocdb_bench CASCADE;"));
    }

    #[test]
    fn every_write_claims_its_operation_id_first() {
        let schema = schema_sql();
        let functions: Vec<&str> = schema.split("CREATE FUNCTION").skip(1).collect();
        assert_eq!(functions.len(), 4);
        for function in functions {
            let claim = function.find("ON CONFLICT (op_id) DO NOTHING").expect("claims the id");
            let update = function.find("UPDATE resources").expect("updates the row");
            assert!(claim < update, "the claim precedes the update in {function}");
        }
    }

    #[test]
    fn fenced_functions_compare_the_lease() {
        let activate = fenced_function_sql("bench_activate", KIND_ACTIVATE, "status = 2", ACTIVATABLE);
        assert!(activate.contains("WHERE id = p_resource AND lease_id = p_lease AND"));
        assert!(activate.contains(&format!("VALUES (p_op, {KIND_ACTIVATE}, p_resource, p_lease)")));
    }

    #[test]
    fn session_setup_follows_durability() {
        assert!(session_setup_sql(Durability::Durable).ends_with("SET synchronous_commit = on;"));
        assert!(session_setup_sql(Durability::Relaxed).ends_with("SET synchronous_commit = off;"));
    }

    #[test]
    fn reserve_outcomes_from_recorded_values() {
        let won = reserve_outcome(Some(true), Some(7)).expect("won");
        assert_eq!(won, ReserveOutcome::Won(Lease { id: 7, epoch: 0, lsn: 0 }));
        assert_eq!(reserve_outcome(Some(false), None).expect("busy"), ReserveOutcome::Busy);
        assert!(reserve_outcome(Some(true), None).is_err());
        assert!(reserve_outcome(None, None).is_err());
        assert!(fenced_outcome(Some(false)).is_ok_and(|applied| !applied));
        assert!(fenced_outcome(None).is_err());
    }

    #[test]
    fn ids_round_trip_through_bigint() {
        for id in [0, 1, u64::from(u32::MAX), u64::MAX / 2, u64::MAX / 2 + 1, u64::MAX] {
            assert_eq!(id_from_bigint(bigint_from_id(id)), id);
        }
        assert_eq!(lease_from_bigint(bigint_from_id(u64::MAX)).id, u128::from(u64::MAX));
        assert!(lease_bigint(u128::from(u64::MAX) + 1).is_err());
        assert!(resource_bigint(u64::MAX).is_err());
    }

    #[test]
    fn wal_sync_is_counted_only_where_postgres_counts_it() {
        assert!(wal_sync_counted(150_018, "on", "fdatasync"));
        assert!(!wal_sync_counted(130_000, "on", "fdatasync"));
        assert!(!wal_sync_counted(150_018, "off", "fdatasync"));
        assert!(!wal_sync_counted(150_018, "on", "open_datasync"));
    }

    #[test]
    fn sync_time_converts_to_whole_microseconds() {
        assert_eq!(sync_time_micros(0.0), Some(0));
        assert_eq!(sync_time_micros(1.2345), Some(1235));
        assert_eq!(sync_time_micros(-1.0), None);
        assert_eq!(sync_time_micros(f64::NAN), None);
        assert_eq!(sync_time_micros(f64::INFINITY), None);
    }

    #[test]
    fn postmaster_pid_is_the_first_line() {
        assert_eq!(postmaster_pid("1247\n/var/tmp/data\n1700000000\n55432\n"), Some(1247));
        assert_eq!(postmaster_pid(""), None);
        assert_eq!(postmaster_pid("not a pid\n"), None);
    }
}
