//! The Redis target: reservations the way an application would keep them in Redis, one Lua
//! script per operation (atomic on the server), called with `EVALSHA`.
//!
//! Layout: the key `r:{resource}` exists only while the resource is held; its value is the
//! lease id, its expiry the lease's TTL (an expired lease simply disappears, which frees the
//! resource). The key `o:{op_id}` records an operation's outcome for an hour. Every script
//! first looks for its outcome key and, when it exists, answers the recorded outcome and
//! changes nothing; Redis runs scripts one at a time, so a concurrent retry cannot slip in
//! between the check and the write.
//!
//! - reserve: `SET r:{id} lease NX PX ttl` (wins only on a free or expired resource);
//! - activate: if `r:{id}` holds our lease, `PERSIST` it (an active lease does not expire);
//! - release: if `r:{id}` holds our lease, `DEL` it.
//!
//! Batches are pipelines of `EVALSHA` calls: one write and, with `appendfsync always`, one
//! fsync for all of them. Durability is `appendonly yes` with `appendfsync always` (the AOF is
//! flushed once per event-loop iteration, before the replies go out: group commit) or
//! `everysec`, set by `prepare` with `CONFIG SET`.
//!
//! Leases: the client proposes the lease id (the reserve's operation id); epochs and lsns are
//! 0. Redis has no fsync counter, so [`Target::durability_counters`] answers `None`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, Script};

use crate::backend::{
    DurabilityCounters, Lease, LeaseOp, ReadOutcome, Reserve, ReserveOutcome, Session, Target, TargetLabel,
};
use crate::cli::{Durability, RunArgs};

/// How long an operation's outcome is kept for retries: far beyond any run.
const OUTCOME_TTL_MS: u64 = 3_600_000;
/// How long `prepare` waits for the AOF rewrite it starts.
const AOF_REWRITE_WAIT_MAX: Duration = Duration::from_mins(2);
/// How often `prepare` looks whether the rewrite finished.
const AOF_REWRITE_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Keys one `SCAN` call looks at while counting held resources.
const SCAN_COUNT: u64 = 10_000;
/// `SCAN` calls `held_count` makes at most (a billion keys at `SCAN_COUNT` each).
const SCAN_CALLS_MAX: u64 = 100_000;
/// How long a reply may take: a durable pipeline waits for an fsync on a slow disk.
const RESPONSE_TIMEOUT: Duration = Duration::from_mins(1);
/// How long connecting may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Reserve. KEYS: resource, outcome. ARGV: lease, ttl ms, outcome ttl ms.
const RESERVE_LUA: &str = "
local recorded = redis.call('GET', KEYS[2])
if recorded then return recorded end
local outcome = 'busy'
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  outcome = 'won:' .. ARGV[1]
end
redis.call('SET', KEYS[2], outcome, 'PX', ARGV[3])
return outcome
";

/// A lease-fenced write that runs `apply` on the resource key when it holds our lease.
/// KEYS: resource, outcome. ARGV: lease, outcome ttl ms.
fn fenced_lua(apply: &str) -> String {
    format!(
        "
local recorded = redis.call('GET', KEYS[2])
if recorded then return recorded end
local outcome = 'refused'
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('{apply}', KEYS[1])
  outcome = 'applied'
end
redis.call('SET', KEYS[2], outcome, 'PX', ARGV[2])
return outcome
"
    )
}

/// The three scripts' sources.
fn script_sources() -> [String; 3] {
    [RESERVE_LUA.to_owned(), fenced_lua("PERSIST"), fenced_lua("DEL")]
}

/// The key of a resource, present only while held.
fn resource_key(resource: u64) -> String {
    format!("r:{resource}")
}

/// The key of an operation's recorded outcome.
fn outcome_key(op_id: u64) -> String {
    format!("o:{op_id}")
}

/// The resource a key names, if it is a resource key.
fn resource_of_key(key: &str) -> Option<u64> {
    key.strip_prefix("r:")?.parse().ok()
}

/// A reserve script's reply.
fn parse_reserve_reply(reply: &str) -> Result<ReserveOutcome> {
    if reply == "busy" {
        return Ok(ReserveOutcome::Busy);
    }
    let lease = reply.strip_prefix("won:").ok_or_else(|| anyhow!("unexpected reserve reply {reply:?}"))?;
    let id = lease.parse().with_context(|| format!("lease id in reserve reply {reply:?}"))?;
    Ok(ReserveOutcome::Won(Lease { id, epoch: 0, lsn: 0 }))
}

/// A fenced script's reply: whether it applied.
fn parse_fenced_reply(reply: &str) -> Result<bool> {
    match reply {
        "applied" => Ok(true),
        "refused" => Ok(false),
        _ => bail!("unexpected activate/release reply {reply:?}"),
    }
}

/// A field of an `INFO` reply (`name:value` lines).
fn info_field<'info>(info: &'info str, name: &str) -> Option<&'info str> {
    info.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

/// The script hashes, computed locally (`EVALSHA` needs them; `SCRIPT LOAD` must agree).
#[derive(Clone, Debug)]
struct ScriptHashes {
    reserve: String,
    activate: String,
    release: String,
}

impl ScriptHashes {
    fn new() -> ScriptHashes {
        let [reserve, activate, release] =
            script_sources().map(|source| Script::new(&source).get_hash().to_owned());
        ScriptHashes { reserve, activate, release }
    }
}

/// Loads the scripts into the server's cache and checks it computed the same hashes.
async fn load_scripts(connection: &mut MultiplexedConnection, hashes: &ScriptHashes) -> Result<()> {
    let expected = [&hashes.reserve, &hashes.activate, &hashes.release];
    for (source, expected) in script_sources().iter().zip(expected) {
        let loaded: String = redis::cmd("SCRIPT").arg("LOAD").arg(source).query_async(connection).await?;
        if &loaded != expected {
            bail!("SCRIPT LOAD answered hash {loaded}, expected {expected}");
        }
    }
    Ok(())
}

/// Redis as a benchmark target; see the module doc.
pub struct RedisTarget {
    client: Client,
    url: String,
    durability: Durability,
    server_pids: Vec<u32>,
    hashes: ScriptHashes,
}

impl RedisTarget {
    /// Connects once to check the server is there and, unless `--server-pids` names them, takes
    /// the server's pid from `INFO server` when it listens on this machine's loopback.
    ///
    /// # Errors
    ///
    /// When `args.redis_url` is not a Redis URL or the server cannot be reached.
    pub async fn new(args: &RunArgs) -> Result<RedisTarget> {
        let client =
            Client::open(args.redis_url.as_str()).with_context(|| format!("redis URL {}", args.redis_url))?;
        let target = RedisTarget {
            client,
            url: args.redis_url.clone(),
            durability: args.durability,
            server_pids: args.server_pids.clone(),
            hashes: ScriptHashes::new(),
        };
        let mut connection = target.open().await?;
        if target.server_pids.is_empty() && target.is_loopback() {
            let info: String = redis::cmd("INFO").arg("server").query_async(&mut connection).await?;
            let pid = info_field(&info, "process_id").and_then(|pid| pid.parse::<u32>().ok());
            let local = pid.filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
            return Ok(RedisTarget { server_pids: local.into_iter().collect(), ..target });
        }
        Ok(target)
    }

    fn is_loopback(&self) -> bool {
        match self.client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, _) => {
                matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]")
            }
            ConnectionAddr::Unix(_) => true,
            _ => false,
        }
    }

    async fn open(&self) -> Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .with_context(|| format!("connecting to Redis ({})", self.url))
    }
}

/// Starts an AOF rewrite and waits for it (and one already running) to finish, so the window
/// starts from a compact AOF and no rewrite of an earlier run's data lands inside it.
async fn rewrite_aof(connection: &mut MultiplexedConnection) -> Result<()> {
    let started: redis::RedisResult<String> = redis::cmd("BGREWRITEAOF").query_async(connection).await;
    if let Err(error) = started {
        // Switching appendonly on starts a rewrite of its own; waiting for that one is as good.
        if !error.to_string().contains("already in progress") {
            return Err(error).context("BGREWRITEAOF");
        }
    }
    let deadline = Instant::now() + AOF_REWRITE_WAIT_MAX;
    loop {
        let info: String = redis::cmd("INFO").arg("persistence").query_async(connection).await?;
        let running = info_field(&info, "aof_rewrite_in_progress") != Some("0")
            || info_field(&info, "aof_rewrite_scheduled") != Some("0");
        if !running {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the AOF rewrite did not finish within {} s", AOF_REWRITE_WAIT_MAX.as_secs());
        }
        tokio::time::sleep(AOF_REWRITE_POLL_INTERVAL).await;
    }
}

impl Target for RedisTarget {
    type Session = RedisSession;

    fn label(&self) -> TargetLabel {
        let (durability, durable) = match self.durability {
            Durability::Durable => ("appendfsync=always", true),
            Durability::Relaxed => ("appendfsync=everysec", false),
        };
        TargetLabel {
            target: "redis".to_owned(),
            variant: "lua".to_owned(),
            durability: durability.to_owned(),
            durable,
        }
    }

    /// Free resources have no key, so creating `0..resources` is wiping everything.
    async fn prepare(&self, _resources: u64) -> Result<()> {
        let mut connection = self.open().await?;
        let appendfsync = match self.durability {
            Durability::Durable => "always",
            Durability::Relaxed => "everysec",
        };
        let () =
            redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("yes").query_async(&mut connection).await?;
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendfsync")
            .arg(appendfsync)
            .query_async(&mut connection)
            .await?;
        let () = redis::cmd("FLUSHALL").arg("SYNC").query_async(&mut connection).await.context("FLUSHALL")?;
        rewrite_aof(&mut connection).await?;
        load_scripts(&mut connection, &self.hashes).await
    }

    /// Loads the scripts again, so a server restarted since `prepare` still knows them.
    async fn connect(&self) -> Result<RedisSession> {
        let mut connection = self.open().await?;
        load_scripts(&mut connection, &self.hashes).await?;
        Ok(RedisSession { connection, hashes: self.hashes.clone() })
    }

    async fn held_count(&self, resources: u64) -> Result<u64> {
        let mut connection = self.open().await?;
        let mut cursor: u64 = 0;
        let mut held: u64 = 0;
        for _ in 0..SCAN_CALLS_MAX {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("r:*")
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut connection)
                .await?;
            let in_range = keys.iter().filter_map(|key| resource_of_key(key)).filter(|id| *id < resources);
            held += in_range.count() as u64;
            if next == 0 {
                return Ok(held);
            }
            cursor = next;
        }
        bail!("SCAN did not finish within {SCAN_CALLS_MAX} calls")
    }

    fn server_pids(&self) -> Vec<u32> {
        self.server_pids.clone()
    }

    /// `INFO persistence` has no count of AOF fsyncs.
    async fn durability_counters(&self) -> Result<Option<DurabilityCounters>> {
        Ok(None)
    }
}

/// One simulated client's connection to Redis.
pub struct RedisSession {
    connection: MultiplexedConnection,
    hashes: ScriptHashes,
}

impl RedisSession {
    fn reserve_command(&self, reserve: &Reserve) -> redis::Cmd {
        let mut command = redis::cmd("EVALSHA");
        command
            .arg(&self.hashes.reserve)
            .arg(2)
            .arg(resource_key(reserve.resource))
            .arg(outcome_key(reserve.op_id))
            // The client proposes the lease: the reserve's own operation id.
            .arg(reserve.op_id)
            .arg(reserve.ttl_ms)
            .arg(OUTCOME_TTL_MS);
        command
    }

    fn fenced_command(hash: &str, op: &LeaseOp) -> redis::Cmd {
        let mut command = redis::cmd("EVALSHA");
        command
            .arg(hash)
            .arg(2)
            .arg(resource_key(op.resource))
            .arg(outcome_key(op.op_id))
            .arg(op.lease.id.to_string())
            .arg(OUTCOME_TTL_MS);
        command
    }
}

impl Session for RedisSession {
    async fn reserve(&mut self, reserve: Reserve) -> Result<ReserveOutcome> {
        let reply: String = self.reserve_command(&reserve).query_async(&mut self.connection).await?;
        parse_reserve_reply(&reply)
    }

    async fn activate(&mut self, op: LeaseOp) -> Result<bool> {
        let command = Self::fenced_command(&self.hashes.activate, &op);
        let reply: String = command.query_async(&mut self.connection).await?;
        parse_fenced_reply(&reply)
    }

    async fn release(&mut self, op: LeaseOp) -> Result<bool> {
        let command = Self::fenced_command(&self.hashes.release, &op);
        let reply: String = command.query_async(&mut self.connection).await?;
        parse_fenced_reply(&reply)
    }

    async fn ping(&mut self) -> Result<()> {
        let answer: String = redis::cmd("PING").query_async(&mut self.connection).await?;
        if answer != "PONG" {
            bail!("PING answered {answer:?}");
        }
        Ok(())
    }

    async fn read(&mut self, resource: u64, _fence_lsn: u64) -> Result<ReadOutcome> {
        let value: Option<String> =
            redis::cmd("GET").arg(resource_key(resource)).query_async(&mut self.connection).await?;
        match value {
            None => Ok(ReadOutcome::Free),
            Some(lease) => {
                let id = lease.parse().with_context(|| format!("lease {lease:?} of resource {resource}"))?;
                Ok(ReadOutcome::Held(id))
            }
        }
    }

    async fn reserve_batch(&mut self, reserves: &[Reserve]) -> Result<Vec<ReserveOutcome>> {
        // Redis refuses an empty pipeline; an empty batch has nothing to send.
        if reserves.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipeline = redis::pipe();
        for reserve in reserves {
            pipeline.add_command(self.reserve_command(reserve));
        }
        let replies: Vec<String> = pipeline.query_async(&mut self.connection).await?;
        replies.iter().map(|reply| parse_reserve_reply(reply)).collect()
    }

    async fn release_batch(&mut self, ops: &[LeaseOp]) -> Result<Vec<bool>> {
        // Redis refuses an empty pipeline; an empty batch has nothing to send.
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipeline = redis::pipe();
        for op in ops {
            pipeline.add_command(Self::fenced_command(&self.hashes.release, op));
        }
        let replies: Vec<String> = pipeline.query_async(&mut self.connection).await?;
        replies.iter().map(|reply| parse_fenced_reply(reply)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_replies_parse() {
        let won = parse_reserve_reply("won:42").expect("won");
        assert_eq!(won, ReserveOutcome::Won(Lease { id: 42, epoch: 0, lsn: 0 }));
        assert_eq!(parse_reserve_reply("busy").expect("busy"), ReserveOutcome::Busy);
        assert!(parse_reserve_reply("won:").is_err());
        assert!(parse_reserve_reply("won:x").is_err());
        assert!(parse_reserve_reply("applied").is_err());
    }

    #[test]
    fn fenced_replies_parse() {
        assert!(parse_fenced_reply("applied").expect("applied"));
        assert!(!parse_fenced_reply("refused").expect("refused"));
        assert!(parse_fenced_reply("busy").is_err());
    }

    #[test]
    fn scripts_answer_what_the_parsers_accept() {
        // Every literal outcome a script can return is one the parsers know.
        assert!(RESERVE_LUA.contains("'busy'") && RESERVE_LUA.contains("'won:' .. ARGV[1]"));
        for apply in ["PERSIST", "DEL"] {
            let source = fenced_lua(apply);
            assert!(source.contains("'applied'") && source.contains("'refused'"));
            assert!(source.contains(&format!("redis.call('{apply}', KEYS[1])")));
            // The fence: the write happens only when the key holds the caller's lease.
            assert!(source.contains("if redis.call('GET', KEYS[1]) == ARGV[1] then"));
        }
    }

    #[test]
    fn scripts_return_a_recorded_outcome_before_writing() {
        for source in script_sources() {
            let replay = source.find("if recorded then return recorded end").expect("replay check");
            let first_write = source.find("redis.call('SET'").expect("a write");
            assert!(replay < first_write);
        }
    }

    #[test]
    fn script_hashes_are_distinct() {
        let hashes = ScriptHashes::new();
        assert_eq!(hashes.reserve.len(), 40);
        assert_ne!(hashes.activate, hashes.release);
        assert_ne!(hashes.reserve, hashes.activate);
    }

    #[test]
    fn keys_name_resources_and_operations() {
        assert_eq!(resource_key(7), "r:7");
        assert_eq!(outcome_key(7), "o:7");
        assert_eq!(resource_of_key("r:7"), Some(7));
        assert_eq!(resource_of_key("o:7"), None);
        assert_eq!(resource_of_key("r:x"), None);
    }

    #[test]
    fn info_fields_are_found_by_exact_name() {
        let info = "# Server\r\nredis_version:7.0.15\r\nprocess_id:1267\r\nprocess_supervised:no\r\n";
        assert_eq!(info_field(info, "process_id"), Some("1267"));
        assert_eq!(info_field(info, "process"), None);
        assert_eq!(info_field(info, "missing"), None);
    }
}
