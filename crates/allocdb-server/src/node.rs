//! The node service: one locked data directory, one engine, and async entry points for the
//! network edges.
//!
//! Every transport (binary protocol, HTTP) goes through [`Node`], so they cannot differ in
//! semantics. Writes wait for the engine's callback at most `commit_timeout_ms`; a write still
//! unanswered then is reported `commit_timeout`, indefinite — it may yet commit, and the client
//! resolves it by retrying the same operation id. Reads carry an optional `min_lsn` fence and
//! are served on the engine thread at once, against the applied state, without waiting for a
//! group in flight. A write is answered only after it is applied, so a fence at the lsn a write
//! returned always holds for a later read on the same node.
//!
//! The storage seam: [`Node::open_with`] keeps the log and snapshots in the data directory on
//! the file system (`FsDirectory`), as `allocdb serve` does; [`Node::open_over`] takes any
//! [`LogDirectory`] instead, so a test can run the real engine and the real transports over a
//! directory that injects faults (a failing or blocking sync, a simulated power cut). The data
//! directory is locked and its identity checked either way; only where the log's bytes go
//! differs, and the node never learns which implementation it has.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use allocdb_core::{KernelUsage, LeaseId, Lsn, ResourceId, ResourceView, Slot};
use allocdb_engine::{
    Engine, EngineConfig, EngineCore, EngineCounters, EngineStatus, GroupObserver, LeaseRead, ReadReply,
    RejectionCode, SystemClock, WriteReply, WriteRequest,
};
use allocdb_storage::{FsDirectory, LogDirectory, RecoveryReport};

use crate::config::{ConfigFileError, ServerConfig};
use crate::data_dir::{DataDir, DataDirError};
use crate::recovery_progress::{ProgressThrottle, RecoveryProgressReporting};

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    /// The data directory is locked, foreign or from another version.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// Recovery refused the data (corruption, missing segment...), naming file and offset.
    #[error("cannot recover the data directory: {0}")]
    Recovery(#[from] allocdb_engine::OpenError),
    /// The storage directory could not be opened.
    #[error("cannot open the data directory {path}: {source}")]
    Storage {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The engine thread could not start.
    #[error("cannot start the engine thread: {0}")]
    Thread(std::io::Error),
}

/// A point-in-time view of the node for status pages and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Last applied lsn.
    pub applied_lsn: Lsn,
    /// The kernel's last request slot.
    pub last_request_slot: Slot,
    /// The slot the clock reads now.
    pub current_slot: Slot,
    /// Table usage.
    pub usage: KernelUsage,
    /// Whether the engine halted after a storage failure.
    pub halted: bool,
    /// Commands waiting in the submission queue.
    pub queued_commands: u64,
    /// Engine counters.
    pub counters: EngineCounters,
}

/// What a node is opened with besides its configuration. `NodeOptions::default()` is what
/// [`Node::open`] uses: no group observer, progress lines logged once a second.
#[derive(Default)]
pub struct NodeOptions {
    /// Called after every group commit, on the engine thread (metrics).
    pub group_observer: Option<GroupObserver>,
    /// Where the progress of replaying the log goes, and how often.
    pub recovery_progress: RecoveryProgressReporting,
}

/// One running node. Cheap to share behind an `Arc`.
pub struct Node {
    engine: Engine,
    engine_config: EngineConfig,
    config: ServerConfig,
    cluster_id: u128,
    recovery: RecoveryReport,
    recovery_duration: Duration,
    commit_timeout: Duration,
    _data_dir: DataDir,
}

impl Node {
    /// Locks the data directory, recovers, and starts the engine thread.
    ///
    /// # Errors
    /// See [`StartError`]; every variant names what to fix.
    pub fn open(config: ServerConfig) -> Result<Node, StartError> {
        Node::open_with(config, NodeOptions::default())
    }

    /// Like [`Node::open`], with `options` (a group observer for metrics, progress reporting).
    ///
    /// # Errors
    /// See [`StartError`].
    pub fn open_with(config: ServerConfig, options: NodeOptions) -> Result<Node, StartError> {
        let (data_dir, cluster_id) = lock_data_dir(&config)?;
        let directory = FsDirectory::open(&config.data_dir)
            .map_err(|source| StartError::Storage { path: config.data_dir.display().to_string(), source })?
            .with_direct_io(config.storage.direct_io)
            .with_direct_write_min_bytes(config.storage.direct_write_min_bytes as usize);
        Node::start(config, options, data_dir, cluster_id, directory)
    }

    /// Like [`Node::open_with`], keeping the log and snapshots in `directory` instead of the
    /// data directory (which is still locked, and holds the identity file). The seam for tests
    /// that inject storage faults under the real engine; see the module documentation.
    ///
    /// # Errors
    /// See [`StartError`].
    pub fn open_over<D>(config: ServerConfig, options: NodeOptions, directory: D) -> Result<Node, StartError>
    where
        D: LogDirectory + Send + 'static,
        D::File: Send,
    {
        let (data_dir, cluster_id) = lock_data_dir(&config)?;
        Node::start(config, options, data_dir, cluster_id, directory)
    }

    /// Recovers from `directory` and starts the engine thread.
    fn start<D>(
        config: ServerConfig,
        options: NodeOptions,
        data_dir: DataDir,
        cluster_id: u128,
        directory: D,
    ) -> Result<Node, StartError>
    where
        D: LogDirectory + Send + 'static,
        D::File: Send,
    {
        // The table hash seed only shapes memory layout, never results, so a fresh one per
        // start is safe and keeps crafted-collision attacks from being prepared offline.
        let engine_config = config.engine_config(fresh_hash_seed());
        let NodeOptions { group_observer, recovery_progress } = options;
        let RecoveryProgressReporting { interval, mut sink } = recovery_progress;
        // The clock is read here, at the edge: the engine and storage only say how far they are.
        let started = Instant::now();
        let mut throttle = ProgressThrottle::new(interval, started);
        let mut progress = |replay: &allocdb_storage::ReplayProgress| {
            if let Some(report) = throttle.observe(replay, Instant::now()) {
                sink(&report);
            }
        };
        let core = EngineCore::open_with_progress(directory, SystemClock, engine_config, &mut progress)?;
        let recovery_duration = started.elapsed();
        let recovery = core.recovery_report().clone();
        let engine = Engine::start_observed(core, group_observer).map_err(StartError::Thread)?;
        Ok(Node {
            engine,
            engine_config,
            commit_timeout: Duration::from_millis(config.network.commit_timeout_ms),
            config,
            cluster_id,
            recovery,
            recovery_duration,
            _data_dir: data_dir,
        })
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The engine configuration (slots, windows) derived from it.
    pub fn engine_config(&self) -> &EngineConfig {
        &self.engine_config
    }

    /// The cluster id clients must present.
    pub fn cluster_id(&self) -> u128 {
        self.cluster_id
    }

    /// How recovery started this node.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// How long opening the storage and replaying the log took.
    pub fn recovery_duration(&self) -> Duration {
        self.recovery_duration
    }

    /// Live engine figures.
    pub fn engine_status(&self) -> &Arc<EngineStatus> {
        self.engine.status()
    }

    /// Whether the node can take writes (not halted).
    pub fn is_healthy(&self) -> bool {
        !self.engine.status().halted.load(Ordering::Acquire)
    }

    /// The kernel TTL for a client's `ttl_ms` (rounded up, plus the partial slot).
    pub fn ttl_slots_for_ms(&self, ttl_ms: u64) -> u64 {
        self.engine_config.ttl_slots_for_ms(ttl_ms)
    }

    /// Commits a batch of writes; one reply per request, in order.
    pub async fn write(&self, requests: Vec<WriteRequest>) -> Vec<WriteReply> {
        let count = requests.len();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.engine.submit(
            requests,
            Box::new(move |replies| {
                // The receiver may have timed out; the outcome then stays indefinite to it.
                let _ = sender.send(replies);
            }),
        );
        match tokio::time::timeout(self.commit_timeout, receiver).await {
            Ok(Ok(replies)) => replies,
            Ok(Err(_)) => vec![WriteReply::Rejected(RejectionCode::ShuttingDown); count],
            Err(_) => vec![WriteReply::Rejected(RejectionCode::CommitTimeout); count],
        }
    }

    /// Reads a resource once `min_lsn` is applied.
    pub async fn read_resource(
        &self,
        resource_id: ResourceId,
        min_lsn: Lsn,
    ) -> ReadReply<Option<ResourceView>> {
        self.read(min_lsn, move |kernel| kernel.resource(resource_id)).await
    }

    /// Reads a lease once `min_lsn` is applied.
    pub async fn read_lease(&self, lease_id: LeaseId, min_lsn: Lsn) -> ReadReply<LeaseRead> {
        self.read(min_lsn, move |kernel| LeaseRead::from_lookup(&kernel.lease(lease_id))).await
    }

    /// The node's status as of the last group the engine finished, with the live halt flag
    /// and queue depth. Never waits for the engine thread, so it answers at once even while a
    /// slow disk holds the engine up.
    pub fn status(&self) -> NodeStatus {
        let engine = self.engine.status();
        let published = engine.published();
        let now_ms = allocdb_engine::Clock::now_ms(&SystemClock);
        NodeStatus {
            applied_lsn: published.applied_lsn,
            last_request_slot: published.last_request_slot,
            current_slot: (now_ms / self.engine_config.slot_duration_ms).max(published.last_request_slot),
            usage: published.usage,
            halted: engine.halted.load(Ordering::Acquire),
            queued_commands: engine.queued_commands.load(Ordering::Acquire),
            counters: published.counters,
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        min_lsn: Lsn,
        read: impl FnOnce(&allocdb_core::Kernel) -> T + Send + 'static,
    ) -> ReadReply<T> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let queued = self.engine.read(Box::new(move |kernel, halted| {
            let reply = if halted {
                ReadReply::Halted
            } else if kernel.last_applied_lsn() < min_lsn {
                ReadReply::FenceNotApplied { applied_lsn: kernel.last_applied_lsn() }
            } else {
                ReadReply::Served { value: read(kernel), served_lsn: kernel.last_applied_lsn() }
            };
            let _ = sender.send(reply);
        }));
        if !queued {
            return ReadReply::Unavailable;
        }
        match tokio::time::timeout(self.commit_timeout, receiver).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => ReadReply::Unavailable,
            Err(_) => ReadReply::TimedOut,
        }
    }

    /// Stops accepting writes, commits what is queued, and joins the engine thread.
    pub fn shutdown(self) {
        self.engine.shutdown();
    }
}

/// Validates the configuration, then locks the data directory and checks its identity.
fn lock_data_dir(config: &ServerConfig) -> Result<(DataDir, u128), StartError> {
    config.validate()?;
    let cluster_id = config.cluster_id_value()?;
    let data_dir = DataDir::open(&config.data_dir, cluster_id, config.node_id)?;
    Ok((data_dir, cluster_id))
}

/// A seed for the table hash from the OS's randomness (std's `RandomState` draws it).
fn fresh_hash_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x6a09_e667_f3bc_c908);
    hasher.finish()
}
