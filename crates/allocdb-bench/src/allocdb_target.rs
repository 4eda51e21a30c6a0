//! AllocDB as a bench target: sessions over the binary protocol (the client library, one
//! connection per simulated client) or over HTTP/JSON (one keep-alive connection each).
//!
//! Mapping to the bench's operations: reserve = a one-resource bundle with the client's
//! operation id; `resource_busy` is `Busy`; activate and release carry the lease's epoch, so
//! a stale lease is refused by the server's fencing; batches are one `WriteBatch` frame (or one
//! `POST /v1/batch`) whose items commit independently; reads carry the reserve's lsn as
//! `min_lsn`. Any other result (a full table, an indefinite rejection left after the client's
//! own retries) is an error, which the driver retries with the same operation ids.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use allocdb_client::{Client, ClientConfig};
use allocdb_core::{ClientId, HolderId, LeaseId, OperationId, ResourceId, ResultCode};
use allocdb_protocol::{ResourceResult, Write, WriteCommand, WriteOperation, WriteResult};
use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::backend::{
    DurabilityCounters, Lease, LeaseOp, ReadOutcome, Reserve, ReserveOutcome, Session, Target, TargetLabel,
};
use crate::server::ServerProcess;

/// Commands per creation request in `prepare`.
const CREATE_CHUNK: u64 = 8192;

/// An AllocDB node under load.
pub struct AllocdbTarget {
    binary: String,
    http: SocketAddr,
    use_http: bool,
    client_id: ClientId,
    server_pid: Option<u32>,
    admin: Client,
}

impl AllocdbTarget {
    /// Connects to a node: `binary` is its binary-protocol address, `http` its HTTP address;
    /// `server` the process when the bench started it.
    ///
    /// # Errors
    /// The node cannot be reached.
    pub async fn connect(
        binary: String,
        http: SocketAddr,
        use_http: bool,
        server: Option<&ServerProcess>,
    ) -> Result<AllocdbTarget> {
        let client_id = ClientId(u128::from(std::process::id()) << 64 | u128::from(now_nanos()));
        let mut config = ClientConfig::new(binary.clone());
        config.client_id = client_id;
        config.connection_count = 8;
        let admin = Client::connect(config).await.with_context(|| format!("connecting to {binary}"))?;
        Ok(AllocdbTarget {
            binary,
            http,
            use_http,
            client_id,
            server_pid: server.map(ServerProcess::pid),
            admin,
        })
    }

    /// The node's HTTP address.
    pub fn http(&self) -> SocketAddr {
        self.http
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

#[allow(clippy::unnecessary_wraps, reason = "`Write::operation` is optional; the bench always sets it")]
fn operation(client_id: ClientId, op_id: u64) -> Option<WriteOperation> {
    Some(WriteOperation { operation_id: OperationId(u128::from(op_id)), client_id: Some(client_id) })
}

fn reserve_write(client_id: ClientId, reserve: &Reserve) -> Write {
    Write {
        operation: operation(client_id, reserve.op_id),
        command: WriteCommand::Reserve {
            ttl_ms: reserve.ttl_ms,
            holder_id: HolderId(u128::from(reserve.holder)),
            resource_ids: vec![ResourceId(u128::from(reserve.resource))],
        },
    }
}

fn release_write(client_id: ClientId, op: &LeaseOp) -> Write {
    Write {
        operation: operation(client_id, op.op_id),
        command: WriteCommand::Release {
            lease_id: LeaseId(op.lease.id),
            holder_id: HolderId(u128::from(op.holder)),
            lease_epoch: op.lease.epoch,
        },
    }
}

fn reserve_outcome(result: WriteResult) -> Result<ReserveOutcome> {
    match result {
        WriteResult::Committed(outcome) if outcome.result == ResultCode::Ok => {
            let (Some(lease_id), Some(epoch)) = (outcome.lease_id, outcome.lease_epoch) else {
                bail!("a successful reserve without its lease: {outcome:?}");
            };
            Ok(ReserveOutcome::Won(Lease { id: lease_id.0, epoch, lsn: outcome.applied_lsn }))
        }
        WriteResult::Committed(outcome) if outcome.result == ResultCode::ResourceBusy => {
            Ok(ReserveOutcome::Busy)
        }
        WriteResult::Committed(outcome) => bail!("reserve answered {:?}", outcome.result),
        WriteResult::Rejected(code) => bail!("reserve rejected: {code:?}"),
    }
}

/// `true` when the lease command took effect, `false` when fencing refused it.
fn lease_outcome(what: &str, result: WriteResult) -> Result<bool> {
    match result {
        WriteResult::Committed(outcome) => Ok(match outcome.result {
            ResultCode::Ok => true,
            ResultCode::StaleEpoch
            | ResultCode::HolderMismatch
            | ResultCode::InvalidState
            | ResultCode::LeaseNotFound
            | ResultCode::LeaseRetired => false,
            other => bail!("{what} answered {other:?}"),
        }),
        WriteResult::Rejected(code) => bail!("{what} rejected: {code:?}"),
    }
}

impl Target for AllocdbTarget {
    type Session = AllocdbSession;

    fn label(&self) -> TargetLabel {
        TargetLabel {
            target: "allocdb".to_owned(),
            variant: if self.use_http { "http" } else { "binary" }.to_owned(),
            durability: "fdatasync".to_owned(),
            durable: true,
        }
    }

    async fn prepare(&self, resources: u64) -> Result<()> {
        let mut first = 0;
        while first < resources {
            let last = (first + CREATE_CHUNK).min(resources);
            let writes: Vec<Write> = (first..last)
                .map(|id| Write {
                    operation: None,
                    command: WriteCommand::CreateResource { resource_id: ResourceId(u128::from(id)) },
                })
                .collect();
            for (_, result) in self.admin.write_batch(writes).await? {
                match result {
                    WriteResult::Committed(outcome)
                        if matches!(outcome.result, ResultCode::Ok | ResultCode::AlreadyExists) => {}
                    other => bail!("creating resources answered {other:?}"),
                }
            }
            first = last;
        }
        Ok(())
    }

    async fn connect(&self) -> Result<AllocdbSession> {
        if self.use_http {
            return Ok(AllocdbSession::Http(HttpSession::open(self.http, self.client_id).await?));
        }
        let mut config = ClientConfig::new(self.binary.clone());
        config.client_id = self.client_id;
        config.connection_count = 1;
        let client =
            Client::connect(config).await.with_context(|| format!("connecting to {}", self.binary))?;
        Ok(AllocdbSession::Binary { client, client_id: self.client_id })
    }

    async fn held_count(&self, resources: u64) -> Result<u64> {
        let admin = Arc::new(self.admin.clone());
        let lanes = 64_u64;
        let mut tasks = Vec::new();
        for lane in 0..lanes {
            let admin = Arc::clone(&admin);
            tasks.push(tokio::spawn(async move {
                let mut held = 0_u64;
                let mut id = lane;
                while id < resources {
                    match admin.get_resource(ResourceId(u128::from(id)), 0).await? {
                        ResourceResult::Found { resource, .. } if resource.current_lease_id.is_some() => {
                            held += 1;
                        }
                        ResourceResult::Found { .. } => {}
                        other => bail!("reading resource {id}: {other:?}"),
                    }
                    id += lanes;
                }
                Ok(held)
            }));
        }
        let mut held = 0;
        for task in tasks {
            held += task.await??;
        }
        Ok(held)
    }

    fn server_pids(&self) -> Vec<u32> {
        self.server_pid.into_iter().collect()
    }

    async fn durability_counters(&self) -> Result<Option<DurabilityCounters>> {
        let (status, body) = http_get(self.http, "/metrics").await?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(parse_durability_counters(&body))
    }
}

/// fsyncs = groups committed (`allocdb_fsync_latency_seconds_count`), commands = records in
/// them (`allocdb_group_commit_batch_size_sum`).
fn parse_durability_counters(metrics: &str) -> Option<DurabilityCounters> {
    let value = |name: &str| metric_value(metrics, name);
    Some(DurabilityCounters {
        fsyncs: value("allocdb_fsync_latency_seconds_count")? as u64,
        commands: value("allocdb_group_commit_batch_size_sum")? as u64,
        fsync_micros: value("allocdb_fsync_latency_seconds_sum").map(|seconds| (seconds * 1e6) as u64),
    })
}

/// The value of the unlabelled sample `name` in Prometheus text from `/metrics`.
pub(crate) fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.split_whitespace().next()?.parse().ok())
}

/// One simulated client's connection.
pub enum AllocdbSession {
    /// The client library with one connection.
    Binary {
        /// The client.
        client: Client,
        /// Scopes the operation ids.
        client_id: ClientId,
    },
    /// One HTTP/1.1 keep-alive connection.
    Http(HttpSession),
}

impl AllocdbSession {
    async fn write_all(&mut self, writes: Vec<Write>) -> Result<Vec<WriteResult>> {
        match self {
            AllocdbSession::Binary { client, .. } => {
                Ok(client.write_batch(writes).await?.into_iter().map(|(_, result)| result).collect())
            }
            AllocdbSession::Http(session) => session.write_batch(&writes).await,
        }
    }

    fn client_id(&self) -> ClientId {
        match self {
            AllocdbSession::Binary { client_id, .. } => *client_id,
            AllocdbSession::Http(session) => session.client_id,
        }
    }

    async fn one(&mut self, write: Write) -> Result<WriteResult> {
        self.write_all(vec![write]).await?.pop().context("no answer to a write")
    }
}

impl Session for AllocdbSession {
    async fn reserve(&mut self, reserve: Reserve) -> Result<ReserveOutcome> {
        let write = reserve_write(self.client_id(), &reserve);
        reserve_outcome(self.one(write).await?)
    }

    async fn activate(&mut self, op: LeaseOp) -> Result<bool> {
        let write = Write {
            operation: operation(self.client_id(), op.op_id),
            command: WriteCommand::Activate {
                lease_id: LeaseId(op.lease.id),
                holder_id: HolderId(u128::from(op.holder)),
                lease_epoch: op.lease.epoch,
            },
        };
        lease_outcome("activate", self.one(write).await?)
    }

    async fn release(&mut self, op: LeaseOp) -> Result<bool> {
        let write = release_write(self.client_id(), &op);
        lease_outcome("release", self.one(write).await?)
    }

    async fn read(&mut self, resource: u64, fence_lsn: u64) -> Result<ReadOutcome> {
        match self {
            AllocdbSession::Binary { client, .. } => {
                match client.get_resource(ResourceId(u128::from(resource)), fence_lsn).await? {
                    ResourceResult::Found { resource, .. } => Ok(resource
                        .current_lease_id
                        .map_or(ReadOutcome::Free, |lease| ReadOutcome::Held(lease.0))),
                    other => bail!("read of resource {resource} answered {other:?}"),
                }
            }
            AllocdbSession::Http(session) => session.read(resource, fence_lsn).await,
        }
    }

    async fn reserve_batch(&mut self, reserves: &[Reserve]) -> Result<Vec<ReserveOutcome>> {
        let client_id = self.client_id();
        let writes = reserves.iter().map(|reserve| reserve_write(client_id, reserve)).collect();
        self.write_all(writes).await?.into_iter().map(reserve_outcome).collect()
    }

    async fn release_batch(&mut self, ops: &[LeaseOp]) -> Result<Vec<bool>> {
        let client_id = self.client_id();
        let writes = ops.iter().map(|op| release_write(client_id, op)).collect();
        self.write_all(writes).await?.into_iter().map(|result| lease_outcome("release", result)).collect()
    }

    async fn ping(&mut self) -> Result<()> {
        match self {
            AllocdbSession::Binary { client, .. } => Ok(client.ping().await?),
            AllocdbSession::Http(session) => {
                let (status, answer) = session.request("GET", "/healthz", None).await?;
                if status != 200 {
                    bail!("GET /healthz answered {status}: {answer}");
                }
                Ok(())
            }
        }
    }
}

/// One HTTP/1.1 keep-alive connection to the node.
pub struct HttpSession {
    sender: SendRequest<Full<Bytes>>,
    address: SocketAddr,
    client_id: ClientId,
}

impl HttpSession {
    async fn open(address: SocketAddr, client_id: ClientId) -> Result<HttpSession> {
        Ok(HttpSession { sender: handshake(address).await?, address, client_id })
    }

    async fn request(&mut self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<(u16, Value)> {
        if self.sender.is_closed() {
            self.sender = handshake(self.address).await?;
        }
        let mut request = hyper::Request::builder().method(method).uri(path).header("host", "allocdb");
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{method} {path} answered {status} with a body that is not JSON"))?;
        Ok((status, value))
    }

    async fn write_batch(&mut self, writes: &[Write]) -> Result<Vec<WriteResult>> {
        let commands: Vec<Value> = writes.iter().map(|write| http_command(write, self.client_id)).collect();
        let body = serde_json::to_vec(&json!({ "commands": commands }))?;
        let (status, answer) = self.request("POST", "/v1/batch", Some(body)).await?;
        if status != 200 {
            bail!("POST /v1/batch answered {status}: {answer}");
        }
        let results = answer["results"].as_array().context("a batch answer without results")?;
        if results.len() != writes.len() {
            bail!("{} results for {} commands", results.len(), writes.len());
        }
        results.iter().map(http_write_result).collect()
    }

    async fn read(&mut self, resource: u64, fence_lsn: u64) -> Result<ReadOutcome> {
        let path = format!("/v1/resources/{resource}?min_lsn={fence_lsn}");
        let (status, answer) = self.request("GET", &path, None).await?;
        if status != 200 {
            bail!("GET {path} answered {status}: {answer}");
        }
        match answer.get("current_lease_id").and_then(Value::as_str) {
            Some(lease) => Ok(ReadOutcome::Held(lease.parse().context("a lease id that is not a number")?)),
            None => Ok(ReadOutcome::Free),
        }
    }
}

/// A write as one `/v1/batch` command.
fn http_command(write: &Write, client_id: ClientId) -> Value {
    let mut command = match &write.command {
        WriteCommand::CreateResource { resource_id } => {
            json!({"op": "create_resource", "resource_id": resource_id.0.to_string()})
        }
        WriteCommand::Reserve { ttl_ms, holder_id, resource_ids } => json!({
            "op": "reserve",
            "resource_ids": resource_ids.iter().map(|id| id.0.to_string()).collect::<Vec<_>>(),
            "holder_id": holder_id.0.to_string(),
            "ttl_ms": ttl_ms,
        }),
        WriteCommand::Activate { lease_id, holder_id, lease_epoch } => json!({
            "op": "activate", "lease_id": lease_id.0.to_string(),
            "holder_id": holder_id.0.to_string(), "lease_epoch": lease_epoch,
        }),
        WriteCommand::Release { lease_id, holder_id, lease_epoch } => json!({
            "op": "release", "lease_id": lease_id.0.to_string(),
            "holder_id": holder_id.0.to_string(), "lease_epoch": lease_epoch,
        }),
        WriteCommand::Revoke { lease_id } => json!({"op": "revoke", "lease_id": lease_id.0.to_string()}),
        WriteCommand::Reclaim { lease_id } => json!({"op": "reclaim", "lease_id": lease_id.0.to_string()}),
    };
    if let Some(operation) = write.operation {
        command["operation_id"] = json!(operation.operation_id.0.to_string());
        command["client_id"] = json!(operation.client_id.unwrap_or(client_id).0.to_string());
    }
    command
}

/// A `/v1/batch` result item as a [`WriteResult`] (only the fields the bench uses).
fn http_write_result(item: &Value) -> Result<WriteResult> {
    let id = |field: &str| -> Result<Option<u128>> {
        item.get(field).and_then(Value::as_str).map(str::parse::<u128>).transpose().map_err(Into::into)
    };
    match item["outcome"].as_str() {
        Some("committed") => {
            let result = item["result"].as_str().context("a committed item without a result")?;
            let result = ResultCode::from_name(result).ok_or_else(|| anyhow!("unknown result {result}"))?;
            Ok(WriteResult::Committed(allocdb_core::Outcome {
                result,
                applied_lsn: item["applied_lsn"].as_u64().unwrap_or(0),
                from_retry_cache: item["from_retry_cache"].as_bool().unwrap_or(false),
                lease_id: id("lease_id")?.map(LeaseId),
                lease_epoch: item.get("lease_epoch").and_then(Value::as_u64),
                deadline_slot: item.get("deadline_slot").and_then(Value::as_u64),
            }))
        }
        _ => bail!("a batch item was not committed: {item}"),
    }
}

async fn handshake(address: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream =
        tokio::net::TcpStream::connect(address).await.with_context(|| format!("connecting to {address}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One `GET` on a fresh connection: (status, body). Used for `/readyz` and `/metrics`.
///
/// # Errors
/// The connection or the request failed, or took more than 10 s.
pub async fn http_get(address: SocketAddr, path: &str) -> Result<(u16, String)> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut sender = handshake(address).await?;
        let request =
            hyper::Request::builder().uri(path).header("host", "allocdb").body(Full::new(Bytes::new()))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    })
    .await
    .context("HTTP request timed out")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_counters_come_from_fsync_count_and_batch_sum() {
        let metrics = "# TYPE x\nallocdb_fsync_latency_seconds_count 40\nallocdb_fsync_latency_seconds_sum 0.5\n\
                       allocdb_group_commit_batch_size_sum 4000.0\nallocdb_group_commit_batch_size_count 40\n";
        assert_eq!(
            parse_durability_counters(metrics),
            Some(DurabilityCounters { fsyncs: 40, commands: 4000, fsync_micros: Some(500_000) })
        );
        assert_eq!(parse_durability_counters("allocdb_fsync_latency_seconds_count 1\n"), None);
    }

    #[test]
    fn http_commands_carry_the_operation_key() {
        let client_id = ClientId(9);
        let write = reserve_write(client_id, &Reserve { op_id: 5, resource: 3, holder: 2, ttl_ms: 1000 });
        let command = http_command(&write, client_id);
        assert_eq!(command["op"], "reserve");
        assert_eq!(command["operation_id"], "5");
        assert_eq!(command["client_id"], "9");
        assert_eq!(command["resource_ids"][0], "3");
    }

    fn committed_outcome(result: ResultCode, applied_lsn: u64) -> allocdb_core::Outcome {
        allocdb_core::Outcome {
            result,
            applied_lsn,
            from_retry_cache: false,
            lease_id: None,
            lease_epoch: None,
            deadline_slot: None,
        }
    }

    #[test]
    fn http_batch_items_are_read_with_the_core_result_names() {
        let item = json!({"status": 200, "outcome": "committed", "result": "ok", "applied_lsn": 12,
                          "lease_id": "12", "lease_epoch": 1, "from_retry_cache": true});
        let WriteResult::Committed(outcome) =
            http_write_result(&item).unwrap_or_else(|error| panic!("{error}"))
        else {
            panic!("not committed");
        };
        assert_eq!(
            (outcome.result, outcome.applied_lsn, outcome.lease_id, outcome.lease_epoch),
            (ResultCode::Ok, 12, Some(LeaseId(12)), Some(1))
        );
        assert!(outcome.from_retry_cache);
        let busy = json!({"outcome": "committed", "result": "resource_busy", "applied_lsn": 3});
        assert!(
            matches!(http_write_result(&busy), Ok(WriteResult::Committed(outcome)) if outcome.result == ResultCode::ResourceBusy)
        );
        assert!(http_write_result(&json!({"outcome": "rejected", "error": "overloaded"})).is_err());
        assert!(http_write_result(&json!({"outcome": "committed", "result": "no_such_code"})).is_err());
    }

    #[test]
    fn busy_is_a_reserve_outcome_and_other_failures_are_errors() {
        let busy = WriteResult::Committed(committed_outcome(ResultCode::ResourceBusy, 7));
        assert_eq!(reserve_outcome(busy).ok(), Some(ReserveOutcome::Busy));
        let full = WriteResult::Committed(committed_outcome(ResultCode::LeaseTableFull, 7));
        assert!(reserve_outcome(full).is_err());
        let stale = WriteResult::Committed(committed_outcome(ResultCode::StaleEpoch, 7));
        assert_eq!(lease_outcome("release", stale).ok(), Some(false));
    }
}
