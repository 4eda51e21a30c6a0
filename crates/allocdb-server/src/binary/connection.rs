//! One binary-protocol connection: handshake, bounded pipelined request handling, timeouts.
//! See the parent module for the limits it enforces.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use allocdb_core::ClientId;
use allocdb_protocol::{
    ClientMessage, DecodeError, FrameDecoder, HelloOk, HelloPolicy, HelloRefused, NodeRole, PROTOCOL_VERSION,
    ProtocolLimits, RefusalReason, ServerMessage, StatusResult, encode_server,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::translate;
use crate::node::Node;

/// Requests one connection may have in flight; the reader waits for a slot beyond it.
const IN_FLIGHT_PER_CONNECTION_MAX: usize = 1_024;
const READ_CHUNK_SIZE_BYTES: usize = 64 * 1_024;

/// Decrements the open-connection count when the connection ends, however it ends.
struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    node: Arc<Node>,
    open_connections: Arc<AtomicUsize>,
    shutdown: watch::Receiver<bool>,
) {
    let over_limit = open_connections.fetch_add(1, Ordering::AcqRel)
        >= node.config().network.connection_count_max as usize;
    let _slot = ConnectionSlot(open_connections);
    let _ = stream.set_nodelay(true);
    let network = node.config().network.clone();
    let Ok(limits) = ProtocolLimits::new(network.frame_size_bytes_max, node.engine_config().batch_size_max)
    else {
        tracing::error!("configured frame or batch limits are outside the protocol's limits");
        return;
    };
    let idle_timeout = Duration::from_millis(network.idle_timeout_ms);
    let write_timeout = Duration::from_millis(network.write_timeout_ms);
    let (mut reader, writer) = stream.into_split();
    let (frames, outgoing) = mpsc::channel::<Vec<u8>>(IN_FLIGHT_PER_CONNECTION_MAX);
    let writer_task = tokio::spawn(write_loop(writer, outgoing, write_timeout));
    let mut session = Session {
        node,
        decoder: FrameDecoder::new(limits),
        buffer: Vec::with_capacity(READ_CHUNK_SIZE_BYTES),
        frames,
        client_id: None,
        in_flight: Arc::new(Semaphore::new(IN_FLIGHT_PER_CONNECTION_MAX)),
        over_limit,
        shutdown,
    };
    if let Err(reason) = session.run(&mut reader, idle_timeout).await {
        tracing::debug!(%peer, reason, "binary connection closed");
    }
    drop(session);
    let _ = writer_task.await;
}

struct Session {
    node: Arc<Node>,
    decoder: FrameDecoder<ClientMessage>,
    buffer: Vec<u8>,
    frames: mpsc::Sender<Vec<u8>>,
    client_id: Option<ClientId>,
    in_flight: Arc<Semaphore>,
    over_limit: bool,
    shutdown: watch::Receiver<bool>,
}

impl Session {
    /// Reads and dispatches frames until the client leaves, times out, misbehaves, or the
    /// server shuts down. Returns why it stopped.
    async fn run(
        &mut self,
        reader: &mut tokio::net::tcp::OwnedReadHalf,
        idle_timeout: Duration,
    ) -> Result<(), &'static str> {
        let mut chunk = vec![0_u8; READ_CHUNK_SIZE_BYTES];
        let mut deadline = Instant::now() + idle_timeout;
        loop {
            let mut consumed_total = 0;
            loop {
                match self.decoder.decode(self.buffer.get(consumed_total..).unwrap_or_default()) {
                    Ok(Some((frame, consumed))) => {
                        consumed_total += consumed;
                        deadline = Instant::now() + idle_timeout;
                        self.dispatch(frame.request_id, frame.message).await?;
                    }
                    Ok(None) => break,
                    Err(error) => {
                        self.send_protocol_error(&error).await;
                        return Err("malformed frame");
                    }
                }
            }
            self.buffer.drain(..consumed_total);
            if *self.shutdown.borrow() {
                return Err("server shutting down");
            }
            let read = tokio::select! {
                read = tokio::time::timeout_at(deadline, reader.read(&mut chunk)) => read,
                _ = self.shutdown.changed() => return Err("server shutting down"),
            };
            match read {
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(count)) => self.buffer.extend_from_slice(chunk.get(..count).unwrap_or_default()),
                Ok(Err(_)) => return Err("read failed"),
                Err(_) => return Err("idle timeout"),
            }
        }
    }

    async fn send(&self, request_id: u64, message: &ServerMessage) -> Result<(), &'static str> {
        let mut bytes = Vec::new();
        encode_server(message, request_id, &mut bytes).map_err(|_| "answer could not be encoded")?;
        self.frames.send(bytes).await.map_err(|_| "writer gone")
    }

    async fn send_protocol_error(&self, error: &DecodeError) {
        let _ = self.send(0, &ServerMessage::ProtocolError(error.to_protocol_error())).await;
    }

    async fn dispatch(&mut self, request_id: u64, message: ClientMessage) -> Result<(), &'static str> {
        let Some(client_id) = self.client_id else {
            return self.handshake(request_id, message).await;
        };
        if let ClientMessage::Hello(_) = message {
            return Err("second hello on one connection");
        }
        let permit = Arc::clone(&self.in_flight).acquire_owned().await.map_err(|_| "connection closing")?;
        let node = Arc::clone(&self.node);
        let frames = self.frames.clone();
        tokio::spawn(async move {
            let answer = answer(&node, client_id, message).await;
            let mut bytes = Vec::new();
            if encode_server(&answer, request_id, &mut bytes).is_ok() {
                let _ = frames.send(bytes).await;
            }
            drop(permit);
        });
        Ok(())
    }

    async fn handshake(&mut self, request_id: u64, message: ClientMessage) -> Result<(), &'static str> {
        let ClientMessage::Hello(hello) = message else {
            let refused = HelloRefused {
                reason: RefusalReason::VersionMismatch,
                message: "the first frame must be a hello".to_owned(),
            };
            let _ = self.send(request_id, &ServerMessage::HelloRefused(refused)).await;
            return Err("no hello");
        };
        let refusal = if self.over_limit {
            Some(HelloRefused {
                reason: RefusalReason::TooManyConnections,
                message: format!(
                    "the server already has {} connections open",
                    self.node.config().network.connection_count_max
                ),
            })
        } else {
            HelloPolicy::new(self.node.cluster_id()).refusal(&hello)
        };
        if let Some(refused) = refusal {
            let _ = self.send(request_id, &ServerMessage::HelloRefused(refused)).await;
            return Err("handshake refused");
        }
        self.client_id = Some(hello.client_id);
        let limits = self.decoder.limits();
        let accepted = HelloOk {
            protocol_version: PROTOCOL_VERSION,
            cluster_id: self.node.cluster_id(),
            node_id: self.node.config().node_id,
            frame_size_bytes_max: limits.frame_size_bytes_max(),
            batch_size_max: limits.batch_size_max(),
        };
        self.send(request_id, &ServerMessage::HelloOk(accepted)).await
    }
}

/// Computes the answer to one request.
async fn answer(node: &Node, client_id: ClientId, message: ClientMessage) -> ServerMessage {
    match message {
        ClientMessage::WriteBatch(writes) => {
            let requests =
                writes.into_iter().map(|write| translate::write_request(node, write, client_id)).collect();
            let replies = node.write(requests).await;
            ServerMessage::WriteResults(replies.into_iter().map(translate::write_result).collect())
        }
        ClientMessage::GetResource { resource_id, min_lsn } => ServerMessage::Resource(
            translate::resource_result(&node.read_resource(resource_id, min_lsn).await),
        ),
        ClientMessage::GetLease { lease_id, min_lsn } => {
            ServerMessage::Lease(translate::lease_result(node.read_lease(lease_id, min_lsn).await))
        }
        ClientMessage::Status => status(node),
        // `dispatch` ends the connection on a second hello before it gets here.
        ClientMessage::Ping | ClientMessage::Hello(_) => ServerMessage::Pong,
    }
}

fn status(node: &Node) -> ServerMessage {
    let status = node.status();
    ServerMessage::Status(StatusResult {
        node_id: node.config().node_id,
        role: NodeRole::Leader,
        applied_lsn: status.applied_lsn,
        current_slot: status.current_slot,
        usage: status.usage,
        healthy: !status.halted,
    })
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut frames: mpsc::Receiver<Vec<u8>>,
    write_timeout: Duration,
) {
    let mut batch = Vec::with_capacity(READ_CHUNK_SIZE_BYTES);
    while let Some(first) = frames.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        // Coalesce answers that are already waiting into one write.
        while batch.len() < READ_CHUNK_SIZE_BYTES {
            let Ok(next) = frames.try_recv() else { break };
            batch.extend_from_slice(&next);
        }
        match tokio::time::timeout(write_timeout, writer.write_all(&batch)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
    let _ = writer.shutdown().await;
}
