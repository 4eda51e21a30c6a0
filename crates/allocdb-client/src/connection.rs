//! One pipelined connection to a server.
//!
//! A writer task owns the socket's write half and coalesces queued requests into one write; a
//! reader task decodes responses and hands each to the waiter registered under its request id,
//! so many requests are in flight at once and answers may arrive in any order. When either
//! half fails, the connection is marked closed and every waiter gets [`ConnectionLost`]: the
//! caller cannot know whether its writes took effect, which the client treats as indefinite.
//!
//! Bounds: the outgoing queue holds `QUEUE_CAPACITY` requests (senders wait when it is full);
//! the read buffer grows only to the negotiated `frame_size_bytes_max` (the decoder rejects
//! larger frames before allocating).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use allocdb_core::ClientId;
use allocdb_protocol::{
    ClientMessage, FrameDecoder, Hello, HelloOk, ProtocolLimits, ServerMessage, encode_client,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::error::ClientError;

const QUEUE_CAPACITY: usize = 1_024;
const READ_CHUNK_SIZE_BYTES: usize = 64 * 1_024;

/// The connection closed before the answer arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnectionLost;

type Waiter = oneshot::Sender<Result<ServerMessage, ConnectionLost>>;
type Pending = Arc<Mutex<HashMap<u64, Waiter>>>;

struct Outgoing {
    request_id: u64,
    message: ClientMessage,
    waiter: Waiter,
}

/// A live connection after a successful handshake.
pub(crate) struct Connection {
    outgoing: mpsc::Sender<Outgoing>,
    next_request_id: AtomicU64,
    closed: Arc<AtomicBool>,
    hello: HelloOk,
}

impl Connection {
    /// Connects, performs the handshake and starts the reader and writer tasks.
    pub(crate) async fn open(
        address: &str,
        cluster_id: u128,
        client_id: ClientId,
    ) -> Result<Connection, ClientError> {
        let mut stream = TcpStream::connect(address)
            .await
            .map_err(|source| ClientError::Connect { address: address.to_owned(), source })?;
        stream
            .set_nodelay(true)
            .map_err(|source| ClientError::Connect { address: address.to_owned(), source })?;
        let hello = handshake(&mut stream, address, cluster_id, client_id).await?;
        let limits = hello.limits().map_err(|error| ClientError::Protocol(error.to_string()))?;
        let (read_half, write_half) = stream.into_split();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (outgoing, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_loop(write_half, receiver, Arc::clone(&pending), Arc::clone(&closed)));
        tokio::spawn(read_loop(read_half, limits, Arc::clone(&pending), Arc::clone(&closed)));
        Ok(Connection { outgoing, next_request_id: AtomicU64::new(2), closed, hello })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn hello(&self) -> &HelloOk {
        &self.hello
    }

    /// Sends one request and waits for its answer.
    pub(crate) async fn request(&self, message: ClientMessage) -> Result<ServerMessage, ConnectionLost> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (waiter, answer) = oneshot::channel();
        self.outgoing.send(Outgoing { request_id, message, waiter }).await.map_err(|_| ConnectionLost)?;
        answer.await.map_err(|_| ConnectionLost)?
    }
}

async fn handshake(
    stream: &mut TcpStream,
    address: &str,
    cluster_id: u128,
    client_id: ClientId,
) -> Result<HelloOk, ClientError> {
    let mut bytes = Vec::new();
    encode_client(&ClientMessage::Hello(Hello::new(cluster_id, client_id)), 1, &mut bytes)
        .map_err(|error| ClientError::Protocol(error.to_string()))?;
    let io_error = |source| ClientError::Connect { address: address.to_owned(), source };
    stream.write_all(&bytes).await.map_err(io_error)?;
    let decoder = FrameDecoder::<ServerMessage>::default();
    let mut buffer = Vec::with_capacity(256);
    loop {
        if let Some((frame, _)) =
            decoder.decode(&buffer).map_err(|error| ClientError::Protocol(error.to_string()))?
        {
            return match frame.message {
                ServerMessage::HelloOk(hello) => Ok(hello),
                ServerMessage::HelloRefused(refused) => {
                    Err(ClientError::Refused { reason: refused.reason.as_str(), message: refused.message })
                }
                ServerMessage::ProtocolError(error) => Err(ClientError::Protocol(error.message)),
                other => Err(ClientError::Protocol(format!("expected a handshake answer, got {other:?}"))),
            };
        }
        let mut chunk = [0_u8; 1_024];
        let read = stream.read(&mut chunk).await.map_err(io_error)?;
        if read == 0 {
            return Err(ClientError::Protocol(
                "server closed the connection during the handshake".to_owned(),
            ));
        }
        buffer.extend_from_slice(chunk.get(..read).unwrap_or_default());
    }
}

fn fail_all(pending: &Pending, closed: &AtomicBool) {
    closed.store(true, Ordering::Release);
    let waiters: Vec<Waiter> = match pending.lock() {
        Ok(mut map) => map.drain().map(|(_, waiter)| waiter).collect(),
        Err(poisoned) => poisoned.into_inner().drain().map(|(_, waiter)| waiter).collect(),
    };
    for waiter in waiters {
        let _ = waiter.send(Err(ConnectionLost));
    }
}

async fn write_loop(
    mut socket: OwnedWriteHalf,
    mut receiver: mpsc::Receiver<Outgoing>,
    pending: Pending,
    closed: Arc<AtomicBool>,
) {
    let mut buffer = Vec::with_capacity(READ_CHUNK_SIZE_BYTES);
    while let Some(first) = receiver.recv().await {
        buffer.clear();
        let mut next = Some(first);
        // Coalesce whatever is already queued into one write: pipelining without a timer.
        while let Some(outgoing) = next {
            if closed.load(Ordering::Acquire)
                || encode_client(&outgoing.message, outgoing.request_id, &mut buffer).is_err()
            {
                let _ = outgoing.waiter.send(Err(ConnectionLost));
            } else if let Ok(mut map) = pending.lock() {
                map.insert(outgoing.request_id, outgoing.waiter);
            }
            // The reader may have failed between the check above and the insert; fail the
            // waiter ourselves so it cannot wait forever.
            if closed.load(Ordering::Acquire) {
                fail_all(&pending, &closed);
            }
            next = if buffer.len() < READ_CHUNK_SIZE_BYTES { receiver.try_recv().ok() } else { None };
        }
        if socket.write_all(&buffer).await.is_err() {
            break;
        }
    }
    fail_all(&pending, &closed);
}

async fn read_loop(
    mut socket: OwnedReadHalf,
    limits: ProtocolLimits,
    pending: Pending,
    closed: Arc<AtomicBool>,
) {
    let decoder = FrameDecoder::<ServerMessage>::new(limits);
    let mut buffer: Vec<u8> = Vec::with_capacity(READ_CHUNK_SIZE_BYTES);
    let mut chunk = vec![0_u8; READ_CHUNK_SIZE_BYTES];
    while let Ok(read) = socket.read(&mut chunk).await {
        if read == 0 {
            break;
        }
        buffer.extend_from_slice(chunk.get(..read).unwrap_or_default());
        let mut consumed_total = 0;
        loop {
            match decoder.decode(buffer.get(consumed_total..).unwrap_or_default()) {
                Ok(Some((frame, consumed))) => {
                    consumed_total += consumed;
                    let waiter = pending.lock().ok().and_then(|mut map| map.remove(&frame.request_id));
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(Ok(frame.message));
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    fail_all(&pending, &closed);
                    return;
                }
            }
        }
        buffer.drain(..consumed_total);
    }
    fail_all(&pending, &closed);
}
