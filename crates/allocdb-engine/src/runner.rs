//! The production runner: one engine thread that owns the [`EngineCore`], fed by a bounded
//! queue.
//!
//! Callers submit batches of writes with a reply callback; the queue is bounded in commands
//! (`submission_queue_capacity`), and a submission that would exceed it is rejected
//! `overloaded` at once (definite). The engine thread blocks for the first message, drains
//! whatever else is queued up to `batch_size_max` commands, commits them as one group, runs
//! the queued reads against the state that now includes that group, and calls the callbacks.
//! While it syncs, new submissions queue up and become the next group: group commit without a
//! timer. When the queue is idle it wakes once per slot so due leases still expire.
//!
//! Shutdown stops accepting, commits what is queued, and answers anything left
//! `shutting_down`; the log is durable at every group boundary, so nothing else is needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use allocdb_core::Kernel;
use allocdb_storage::LogDirectory;

use crate::clock::Clock;
use crate::core::{EngineCore, EngineCounters};
use crate::request::{RejectionCode, WriteReply, WriteRequest};

/// A callback receiving one reply per request of a submitted batch, in order.
pub type WriteCallback = Box<dyn FnOnce(Vec<WriteReply>) + Send>;

/// What one group commit did, reported to an observer (metrics) after its replies went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupReport {
    /// Records logged in the group (0 when nothing needed logging).
    pub records: u64,
    /// Client writes answered (committed, from the retry cache, or rejected).
    pub writes: u64,
    /// Time spent in the log sync, if one happened.
    pub sync_nanos: Option<u64>,
    /// Time from the group's start to its replies.
    pub group_nanos: u64,
}

/// Receives a [`GroupReport`] after every group, on the engine thread; must be quick.
pub type GroupObserver = Arc<dyn Fn(&GroupReport) + Send + Sync>;

/// A read run on the engine thread against the current state. The flag says whether the
/// engine is halted (reads must then fail closed).
pub type ReadCallback = Box<dyn FnOnce(&Kernel, bool) + Send>;

enum Message {
    Write { requests: Vec<WriteRequest>, reply: WriteCallback },
    Read(ReadCallback),
    Snapshot(Box<dyn FnOnce(Option<String>) + Send>),
    Shutdown,
}

/// Live figures shared with other threads (status pages, metrics).
#[derive(Debug, Default)]
pub struct EngineStatus {
    /// Commands waiting in the queue.
    pub queued_commands: AtomicU64,
    /// Last applied lsn.
    pub applied_lsn: AtomicU64,
    /// Whether the engine halted after a storage failure.
    pub halted: AtomicBool,
    /// Nanoseconds spent in the last group commit (append, sync, apply).
    pub last_group_nanos: AtomicU64,
    /// Total nanoseconds spent in group commits.
    pub group_nanos_total: AtomicU64,
    counters: std::sync::Mutex<EngineCounters>,
}

impl EngineStatus {
    /// The core's counters after the last group.
    pub fn counters(&self) -> EngineCounters {
        self.counters.lock().map_or_else(|poisoned| *poisoned.into_inner(), |counters| *counters)
    }
}

/// A running engine. Dropping it shuts it down and joins the thread.
pub struct Engine {
    sender: SyncSender<Message>,
    status: Arc<EngineStatus>,
    queue_capacity: u64,
    batch_size_max: usize,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the engine thread over an opened core.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn start<D, C>(core: EngineCore<D, C>) -> std::io::Result<Engine>
    where
        D: LogDirectory + Send + 'static,
        D::File: Send,
        C: Clock + Send + 'static,
    {
        Engine::start_observed(core, None)
    }

    /// Starts the engine thread, calling `observer` after every group commit.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn start_observed<D, C>(
        core: EngineCore<D, C>,
        observer: Option<GroupObserver>,
    ) -> std::io::Result<Engine>
    where
        D: LogDirectory + Send + 'static,
        D::File: Send,
        C: Clock + Send + 'static,
    {
        let config = *core.config();
        // Messages are bounded by the command count below; the channel bound only needs to be
        // at least the number of messages that can carry one command each.
        let (sender, receiver) = std::sync::mpsc::sync_channel(config.submission_queue_capacity as usize);
        let status = Arc::new(EngineStatus::default());
        status.applied_lsn.store(core.kernel().last_applied_lsn(), Ordering::Release);
        let thread_status = Arc::clone(&status);
        let thread = std::thread::Builder::new()
            .name("allocdb-engine".to_owned())
            .spawn(move || run(core, &receiver, &thread_status, observer.as_ref()))?;
        Ok(Engine {
            sender,
            status,
            queue_capacity: config.submission_queue_capacity.into(),
            batch_size_max: config.batch_size_max as usize,
            thread: Some(thread),
        })
    }

    /// Live figures.
    pub fn status(&self) -> &Arc<EngineStatus> {
        &self.status
    }

    /// Submits a batch of writes; `reply` gets one reply per request. Rejections decided at
    /// once (queue full, batch too large, engine gone) call `reply` before returning.
    pub fn submit(&self, requests: Vec<WriteRequest>, reply: WriteCallback) {
        let count = requests.len() as u64;
        if requests.len() > self.batch_size_max {
            reply(vec![WriteReply::Rejected(RejectionCode::TooLarge); requests.len()]);
            return;
        }
        let queued = self.status.queued_commands.fetch_add(count, Ordering::AcqRel);
        if queued + count > self.queue_capacity {
            self.status.queued_commands.fetch_sub(count, Ordering::AcqRel);
            reply(vec![WriteReply::Rejected(RejectionCode::Overloaded); requests.len()]);
            return;
        }
        match self.sender.try_send(Message::Write { requests, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(message) | TrySendError::Disconnected(message)) => {
                self.status.queued_commands.fetch_sub(count, Ordering::AcqRel);
                if let Message::Write { requests, reply } = message {
                    reply(vec![WriteReply::Rejected(RejectionCode::Overloaded); requests.len()]);
                }
            }
        }
    }

    /// Runs `read` on the engine thread after the writes queued before it. Returns false (and
    /// drops `read`) if the queue is full or the engine stopped.
    pub fn read(&self, read: ReadCallback) -> bool {
        self.sender.try_send(Message::Read(read)).is_ok()
    }

    /// Installs a snapshot now (after queued writes); `done` gets the failure, if any.
    pub fn snapshot(&self, done: Box<dyn FnOnce(Option<String>) + Send>) -> bool {
        self.sender.try_send(Message::Snapshot(done)).is_ok()
    }

    /// Stops accepting, commits what is queued, and joins the engine thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // A full queue still drains; block until the shutdown message fits.
        let _ = self.sender.send(Message::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run<D: LogDirectory, C: Clock>(
    mut core: EngineCore<D, C>,
    receiver: &Receiver<Message>,
    status: &EngineStatus,
    observer: Option<&GroupObserver>,
) {
    let tick = Duration::from_millis(core.config().slot_duration_ms);
    let batch_size_max = core.config().batch_size_max as usize;
    let mut writes: Vec<(Vec<WriteRequest>, WriteCallback)> = Vec::new();
    let mut reads: Vec<ReadCallback> = Vec::new();
    let mut snapshots: Vec<Box<dyn FnOnce(Option<String>) + Send>> = Vec::new();
    let mut replies: Vec<WriteReply> = Vec::with_capacity(batch_size_max);
    let mut shutting_down = false;
    let mut last_group_size = 0_usize;
    while !shutting_down {
        let first = match receiver.recv_timeout(tick) {
            Ok(message) => Some(message),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Message::Shutdown),
        };
        let mut command_count = 0_usize;
        let mut next = first;
        let mut linger_deadline = None;
        while let Some(message) = next {
            match message {
                Message::Write { requests, reply } => {
                    command_count += requests.len();
                    writes.push((requests, reply));
                }
                Message::Read(read) => reads.push(read),
                Message::Snapshot(done) => snapshots.push(done),
                Message::Shutdown => shutting_down = true,
            }
            next = if command_count < batch_size_max && !shutting_down {
                receiver
                    .try_recv()
                    .ok()
                    .or_else(|| linger(receiver, &mut linger_deadline, last_group_size, &core))
            } else {
                None
            };
        }
        last_group_size = command_count;
        commit(&mut core, &mut writes, &mut replies, status, observer);
        for done in snapshots.drain(..) {
            done(core.snapshot_now());
        }
        let halted = core.halt_cause().is_some();
        for read in reads.drain(..) {
            read(core.kernel(), halted);
        }
    }
    // Anything that slipped in after the shutdown message is answered, never dropped silently.
    while let Ok(message) = receiver.try_recv() {
        match message {
            Message::Write { requests, reply } => {
                status.queued_commands.fetch_sub(requests.len() as u64, Ordering::AcqRel);
                reply(vec![WriteReply::Rejected(RejectionCode::ShuttingDown); requests.len()]);
            }
            Message::Read(read) => read(core.kernel(), true),
            Message::Snapshot(done) => done(Some("engine shut down".to_owned())),
            Message::Shutdown => {}
        }
    }
}

/// The longest a group waits for stragglers, and the quiet gap that ends the wait early.
const LINGER_MAX: Duration = Duration::from_millis(1);
const LINGER_QUIET_GAP: Duration = Duration::from_micros(50);

/// Waits briefly for more submissions once the queue is drained, if the previous group was a
/// real group (more than one command). Submitters whose replies were just delivered are
/// resubmitting at that moment; without the wait the engine would sync a partial group and the
/// rest would need a second sync (about half the throughput under load). The wait ends after a
/// quiet gap of `LINGER_QUIET_GAP` and never exceeds the last sync's duration or `LINGER_MAX`,
/// so a lone submitter pays nothing and a busy one at most a fraction of the sync it is about
/// to wait for anyway.
fn linger<D: LogDirectory, C: Clock>(
    receiver: &Receiver<Message>,
    deadline: &mut Option<Instant>,
    last_group_size: usize,
    core: &EngineCore<D, C>,
) -> Option<Message> {
    if last_group_size <= 1 {
        return None;
    }
    let deadline = *deadline.get_or_insert_with(|| {
        let last_sync = Duration::from_nanos(core.counters().last_sync_nanos);
        Instant::now() + last_sync.min(LINGER_MAX)
    });
    let remaining = deadline.checked_duration_since(Instant::now())?;
    receiver.recv_timeout(remaining.min(LINGER_QUIET_GAP)).ok()
}

fn commit<D: LogDirectory, C: Clock>(
    core: &mut EngineCore<D, C>,
    writes: &mut Vec<(Vec<WriteRequest>, WriteCallback)>,
    replies: &mut Vec<WriteReply>,
    status: &EngineStatus,
    observer: Option<&GroupObserver>,
) {
    let started = Instant::now();
    let before = core.counters();
    let requests: Vec<&WriteRequest> = writes.iter().flat_map(|(requests, _)| requests.iter()).collect();
    replies.clear();
    core.commit_group(&requests, replies);
    drop(requests);
    let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    status.last_group_nanos.store(elapsed, Ordering::Release);
    status.group_nanos_total.fetch_add(elapsed, Ordering::AcqRel);
    status.applied_lsn.store(core.kernel().last_applied_lsn(), Ordering::Release);
    status.halted.store(core.halt_cause().is_some(), Ordering::Release);
    if let Ok(mut counters) = status.counters.lock() {
        *counters = core.counters();
    }
    let mut offset = 0;
    for (requests, reply) in writes.drain(..) {
        let count = requests.len();
        status.queued_commands.fetch_sub(count as u64, Ordering::AcqRel);
        reply(replies[offset..offset + count].to_vec());
        offset += count;
    }
    if let Some(observer) = observer {
        let after = core.counters();
        observer(&GroupReport {
            records: after.records_applied - before.records_applied,
            writes: offset as u64,
            sync_nanos: (after.syncs > before.syncs).then_some(after.last_sync_nanos),
            group_nanos: u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        });
    }
}
