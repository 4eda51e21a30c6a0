//! Client errors: failures to reach or talk to a server, as opposed to write outcomes.
//!
//! A write's outcome — committed with a result code, or rejected definite or indefinite — is a
//! value ([`crate::WriteResult`]), never an error. Errors are for what prevents an answer.

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No server address could be connected to.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The address tried last.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server refused the handshake (wrong cluster, version, too many connections).
    #[error("server refused the connection ({reason}): {message}")]
    Refused {
        /// The refusal reason.
        reason: &'static str,
        /// The server's message.
        message: String,
    },
    /// The server sent something this client cannot accept.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No answer arrived within the configured timeout after every retry.
    #[error("no answer within {timeout_ms} ms after {attempts} attempts")]
    Timeout {
        /// The per-attempt timeout.
        timeout_ms: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// A batch larger than the server's limit.
    #[error("batch of {count} writes exceeds the server's limit {limit}")]
    BatchTooLarge {
        /// Writes in the batch.
        count: usize,
        /// The server's batch limit.
        limit: u32,
    },
}
