//! The binary protocol listener (`--listen`): the fast path for the client library.
//!
//! Each connection runs a reader (decodes frames, dispatches requests) and a writer (sends
//! encoded answers). Requests on one connection are handled concurrently — answers carry the
//! request id, so clients pipeline — up to `IN_FLIGHT_PER_CONNECTION_MAX`; beyond it the reader
//! stops reading, which pushes back on the client through TCP. Nothing a client does can block
//! another connection or the engine:
//! - the first frame must be `Hello` (cluster id and version checked) within the idle timeout;
//! - a connection that completes no frame for `idle_timeout_ms` is closed (slow or half-open
//!   clients cannot pin resources), and an answer that cannot be written within
//!   `write_timeout_ms` closes the connection;
//! - frames are bounded by `frame_size_bytes_max` before anything is allocated, and a malformed
//!   frame gets a `ProtocolError` answer and the connection is closed;
//! - connections beyond `connection_count_max` are refused in the handshake with
//!   `too_many_connections`.

mod connection;
mod translate;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::node::Node;

/// Accepts binary-protocol connections until `shutdown` turns true.
///
/// # Errors
/// Never for a single bad connection; only if the listener itself fails persistently.
pub async fn serve_binary(listener: TcpListener, node: Arc<Node>, mut shutdown: watch::Receiver<bool>) {
    let open_connections = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let node = Arc::clone(&node);
                    let open_connections = Arc::clone(&open_connections);
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        connection::handle(stream, peer, node, open_connections, shutdown).await;
                    });
                }
                // Running out of descriptors or a reset during accept affects one attempt;
                // keep serving the others.
                Err(error) => tracing::warn!(%error, "binary listener accept failed"),
            },
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
