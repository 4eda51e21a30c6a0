//! The client: a pool of pipelined connections, typed requests, and automatic resolution of
//! indefinite write outcomes.
//!
//! Every write leaves the client with an operation id: the caller's, or a fresh one the client
//! draws. That makes every retry safe. A write whose outcome is indefinite — the server said so
//! (`storage_failure`, `commit_timeout`...), or the connection failed or timed out before the
//! answer — is resent with the same operation id (and only the indefinite ones of a batch are),
//! up to `retry_attempts` times with exponential backoff; the server then answers with the
//! original result (`from_retry_cache`) or executes it exactly once. `overloaded` is definite
//! (nothing executed) and is retried the same way. What is still indefinite after the last
//! attempt is returned as such; the caller may retry later with the same operation id.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use allocdb_core::{ClientId, HolderId, LeaseId, Lsn, OperationId, ResourceId};
use allocdb_protocol::{
    ClientMessage, LeaseResult, RejectionCategory, RejectionCode, ResourceResult, ServerMessage,
    StatusResult, Write, WriteCommand, WriteOperation, WriteResult,
};
use tokio::sync::Mutex;

use crate::connection::Connection;
use crate::error::ClientError;

/// How the client connects and retries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Server addresses (`host:port`), tried in order when connecting.
    pub addresses: Vec<String>,
    /// The cluster id the server must belong to.
    pub cluster_id: u128,
    /// The client id that scopes this client's operation ids. Two processes must not share one
    /// unless they also never share operation ids; the default draws a random one.
    pub client_id: ClientId,
    /// Connections in the pool; requests are spread over them round-robin.
    pub connection_count: usize,
    /// How long one attempt may wait for its answer.
    pub request_timeout: Duration,
    /// Extra attempts for indefinite (and overloaded) outcomes.
    pub retry_attempts: u32,
    /// Backoff before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
}

impl ClientConfig {
    /// Defaults for one server address: 4 connections, 10 s per attempt, 5 retries from 50 ms.
    pub fn new(address: impl Into<String>) -> ClientConfig {
        ClientConfig {
            addresses: vec![address.into()],
            cluster_id: 1,
            client_id: ClientId(random_u128()),
            connection_count: 4,
            request_timeout: Duration::from_secs(10),
            retry_attempts: 5,
            retry_backoff: Duration::from_millis(50),
        }
    }
}

/// An AllocDB client. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    pool: Vec<Mutex<Option<Arc<Connection>>>>,
    next: AtomicUsize,
}

impl Client {
    /// Connects the first pool connection (so a wrong address or cluster fails here).
    ///
    /// # Errors
    /// No address accepted the connection, or the handshake was refused.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let count = config.connection_count.max(1);
        let client = Client {
            inner: Arc::new(Inner {
                pool: (0..count).map(|_| Mutex::new(None)).collect(),
                next: AtomicUsize::new(0),
                config,
            }),
        };
        client.connection(0).await?;
        Ok(client)
    }

    /// The client id operation ids are scoped by.
    pub fn client_id(&self) -> ClientId {
        self.inner.config.client_id
    }

    /// A fresh operation id.
    pub fn new_operation_id(&self) -> OperationId {
        OperationId(random_u128())
    }

    async fn connection(&self, index: usize) -> Result<Arc<Connection>, ClientError> {
        let slot = &self.inner.pool[index % self.inner.pool.len()];
        let mut guard = slot.lock().await;
        if let Some(connection) = guard.as_ref()
            && !connection.is_closed()
        {
            return Ok(Arc::clone(connection));
        }
        let config = &self.inner.config;
        let mut last_error = None;
        for address in &config.addresses {
            match Connection::open(address, config.cluster_id, config.client_id).await {
                Ok(connection) => {
                    let connection = Arc::new(connection);
                    *guard = Some(Arc::clone(&connection));
                    return Ok(connection);
                }
                Err(error @ ClientError::Refused { .. }) => return Err(error),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Protocol("no server address configured".to_owned())))
    }

    /// One attempt: a pool connection, the request, the timeout.
    async fn attempt(&self, message: ClientMessage) -> Result<ServerMessage, AttemptFailure> {
        let index = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let connection = self.connection(index).await.map_err(AttemptFailure::Client)?;
        match tokio::time::timeout(self.inner.config.request_timeout, connection.request(message)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) | Err(_) => Err(AttemptFailure::NoAnswer),
        }
    }

    async fn backoff(&self, attempt: u32) {
        let factor = 1_u32.checked_shl(attempt.min(10)).unwrap_or(1024);
        tokio::time::sleep(self.inner.config.retry_backoff.saturating_mul(factor)).await;
    }

    /// Commits a batch of writes; one result per write, in order. Writes without an operation
    /// id get a fresh one (readable back from the returned ids) so they can be retried safely.
    /// A batch beyond the server's frame or count limits is sent as several frames, in order.
    ///
    /// # Errors
    /// The server could not be reached at all, or broke the protocol. Indefinite outcomes are
    /// results, not errors.
    pub async fn write_batch(
        &self,
        writes: Vec<Write>,
    ) -> Result<Vec<(OperationId, WriteResult)>, ClientError> {
        let hello = *self.connection(0).await?.hello();
        // Frame header, write-batch count, and headroom for the encoder's own framing.
        let frame_budget =
            usize::try_from(hello.frame_size_bytes_max).unwrap_or(usize::MAX).saturating_sub(64);
        let count_limit = usize::try_from(hello.batch_size_max).unwrap_or(usize::MAX).max(1);
        let mut results = Vec::with_capacity(writes.len());
        let mut chunk = Vec::new();
        let mut chunk_size_bytes = 0;
        for write in writes {
            let size_bytes = write.encoded_size_bytes();
            if !chunk.is_empty()
                && (chunk.len() == count_limit || chunk_size_bytes + size_bytes > frame_budget)
            {
                results.extend(self.write_chunk(std::mem::take(&mut chunk)).await?);
                chunk_size_bytes = 0;
            }
            chunk_size_bytes += size_bytes;
            chunk.push(write);
        }
        if !chunk.is_empty() {
            results.extend(self.write_chunk(chunk).await?);
        }
        Ok(results)
    }

    /// Commits writes that fit one frame, retrying the indefinite ones.
    async fn write_chunk(
        &self,
        mut writes: Vec<Write>,
    ) -> Result<Vec<(OperationId, WriteResult)>, ClientError> {
        for write in &mut writes {
            if write.operation.is_none() {
                write.operation =
                    Some(WriteOperation { operation_id: self.new_operation_id(), client_id: None });
            }
        }
        let operation_ids: Vec<OperationId> = writes
            .iter()
            .map(|write| write.operation.map_or(OperationId(0), |operation| operation.operation_id))
            .collect();
        let mut results: Vec<WriteResult> =
            vec![WriteResult::Rejected(RejectionCode::CommitTimeout); writes.len()];
        let mut unresolved: Vec<usize> = (0..writes.len()).collect();
        let attempts = self.inner.config.retry_attempts + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.backoff(attempt - 1).await;
            }
            let batch: Vec<Write> = unresolved.iter().map(|&index| writes[index].clone()).collect();
            match self.attempt(ClientMessage::WriteBatch(batch)).await {
                Ok(ServerMessage::WriteResults(answers)) if answers.len() == unresolved.len() => {
                    let mut still_unresolved = Vec::new();
                    for (answer, index) in answers.into_iter().zip(unresolved) {
                        results[index] = answer;
                        if needs_retry(answer) {
                            still_unresolved.push(index);
                        }
                    }
                    unresolved = still_unresolved;
                }
                Ok(ServerMessage::ProtocolError(error)) => return Err(ClientError::Protocol(error.message)),
                Ok(other) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected answer to a write batch: {other:?}"
                    )));
                }
                Err(AttemptFailure::Client(error)) if attempt + 1 == attempts => return Err(error),
                Err(AttemptFailure::Client(_) | AttemptFailure::NoAnswer) => {}
            }
            if unresolved.is_empty() {
                break;
            }
        }
        Ok(operation_ids.into_iter().zip(results).collect())
    }

    /// Commits one write (see [`Client::write_batch`]).
    ///
    /// # Errors
    /// See [`Client::write_batch`].
    pub async fn write(&self, write: Write) -> Result<(OperationId, WriteResult), ClientError> {
        let mut results = self.write_batch(vec![write]).await?;
        results.pop().ok_or_else(|| ClientError::Protocol("empty answer to a write".to_owned()))
    }

    /// Creates a resource.
    ///
    /// # Errors
    /// See [`Client::write_batch`].
    pub async fn create_resource(&self, resource_id: ResourceId) -> Result<WriteResult, ClientError> {
        self.command(WriteCommand::CreateResource { resource_id }).await
    }

    /// Reserves every resource of the bundle for `holder_id`, all or nothing.
    ///
    /// # Errors
    /// See [`Client::write_batch`].
    pub async fn reserve(
        &self,
        resource_ids: Vec<ResourceId>,
        holder_id: HolderId,
        ttl: Duration,
    ) -> Result<WriteResult, ClientError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.command(WriteCommand::Reserve { ttl_ms, holder_id, resource_ids }).await
    }

    /// Activates a reserved lease.
    ///
    /// # Errors
    /// See [`Client::write_batch`].
    pub async fn activate(
        &self,
        lease_id: LeaseId,
        holder_id: HolderId,
        lease_epoch: u64,
    ) -> Result<WriteResult, ClientError> {
        self.command(WriteCommand::Activate { lease_id, holder_id, lease_epoch }).await
    }

    /// Releases a reserved or active lease.
    ///
    /// # Errors
    /// See [`Client::write_batch`].
    pub async fn release(
        &self,
        lease_id: LeaseId,
        holder_id: HolderId,
        lease_epoch: u64,
    ) -> Result<WriteResult, ClientError> {
        self.command(WriteCommand::Release { lease_id, holder_id, lease_epoch }).await
    }

    /// Revokes an active lease (operator).
    ///
    /// # Errors
    /// See [`Client::write_batch`].
    pub async fn revoke(&self, lease_id: LeaseId) -> Result<WriteResult, ClientError> {
        self.command(WriteCommand::Revoke { lease_id }).await
    }

    /// Reclaims a revoking lease (operator).
    ///
    /// # Errors
    /// See [`Client::write_batch`].
    pub async fn reclaim(&self, lease_id: LeaseId) -> Result<WriteResult, ClientError> {
        self.command(WriteCommand::Reclaim { lease_id }).await
    }

    async fn command(&self, command: WriteCommand) -> Result<WriteResult, ClientError> {
        Ok(self.write(Write { operation: None, command }).await?.1)
    }

    /// Reads a resource once the server has applied `min_lsn`.
    ///
    /// # Errors
    /// The server could not be reached or answered out of protocol.
    pub async fn get_resource(
        &self,
        resource_id: ResourceId,
        min_lsn: Lsn,
    ) -> Result<ResourceResult, ClientError> {
        match self.read(ClientMessage::GetResource { resource_id, min_lsn }).await? {
            ServerMessage::Resource(result) => Ok(result),
            other => Err(ClientError::Protocol(format!("unexpected answer to a resource read: {other:?}"))),
        }
    }

    /// Reads a lease once the server has applied `min_lsn`.
    ///
    /// # Errors
    /// The server could not be reached or answered out of protocol.
    pub async fn get_lease(&self, lease_id: LeaseId, min_lsn: Lsn) -> Result<LeaseResult, ClientError> {
        match self.read(ClientMessage::GetLease { lease_id, min_lsn }).await? {
            ServerMessage::Lease(result) => Ok(result),
            other => Err(ClientError::Protocol(format!("unexpected answer to a lease read: {other:?}"))),
        }
    }

    /// The server's status.
    ///
    /// # Errors
    /// The server could not be reached or answered out of protocol.
    pub async fn status(&self) -> Result<StatusResult, ClientError> {
        match self.read(ClientMessage::Status).await? {
            ServerMessage::Status(status) => Ok(status),
            other => Err(ClientError::Protocol(format!("unexpected answer to a status read: {other:?}"))),
        }
    }

    /// One round trip that does nothing on the server: no engine, no disk. Measures the
    /// connection and the network path alone.
    ///
    /// # Errors
    /// The server could not be reached or answered out of protocol.
    pub async fn ping(&self) -> Result<(), ClientError> {
        match self.read(ClientMessage::Ping).await? {
            ServerMessage::Pong => Ok(()),
            other => Err(ClientError::Protocol(format!("unexpected answer to a ping: {other:?}"))),
        }
    }

    /// Reads are idempotent, so any failure to get an answer is simply retried.
    async fn read(&self, message: ClientMessage) -> Result<ServerMessage, ClientError> {
        let attempts = self.inner.config.retry_attempts + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.backoff(attempt - 1).await;
            }
            match self.attempt(message.clone()).await {
                Ok(ServerMessage::ProtocolError(error)) => return Err(ClientError::Protocol(error.message)),
                Ok(answer) => return Ok(answer),
                Err(AttemptFailure::Client(error)) if attempt + 1 == attempts => return Err(error),
                Err(_) => {}
            }
        }
        let timeout_ms = u64::try_from(self.inner.config.request_timeout.as_millis()).unwrap_or(u64::MAX);
        Err(ClientError::Timeout { timeout_ms, attempts })
    }
}

enum AttemptFailure {
    Client(ClientError),
    NoAnswer,
}

fn needs_retry(result: WriteResult) -> bool {
    match result {
        WriteResult::Committed(_) => false,
        WriteResult::Rejected(code) => {
            code.category() == RejectionCategory::Indefinite || code == RejectionCode::Overloaded
        }
    }
}

/// 128 random bits from the operating system.
pub(crate) fn random_u128() -> u128 {
    let mut bytes = [0_u8; 16];
    // getrandom only fails if the OS has no randomness source at all; fall back to the
    // per-process random hasher keys rather than a constant.
    if getrandom::fill(&mut bytes).is_err() {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x5be0_cd19_137e_2179);
        return u128::from(hasher.finish()) << 64 | u128::from(hasher.finish().rotate_left(17));
    }
    u128::from_le_bytes(bytes)
}
