//! The production runner: one engine thread that owns the [`EngineCore`], fed by a bounded
//! queue, one sync thread that runs the log syncs, and one spare thread that fills the next
//! log segment with zeros before the log reaches it (`allocdb_storage`'s `spare` module: syncs
//! into written blocks need no journal commit).
//!
//! Callers submit batches of writes with a reply callback; the queue is bounded in commands
//! (`submission_queue_capacity`), and a submission that would exceed it is rejected
//! `overloaded` at once (definite). Groups move through a two-stage pipeline (`group.rs` has
//! the rules that keep it equivalent to committing one group at a time):
//!
//! 1. While group N's sync runs on the sync thread, the engine thread takes what arrives and
//!    plans it at once into group N+1 (retry checks, sequencing, encoding), up to
//!    `batch_size_max` commands.
//! 2. When the sync reports back, the engine settles group N, writes group N+1 and hands its
//!    sync to the sync thread, then applies group N, answers its writes and installs the
//!    snapshots that arrived with it.
//!
//! Reads do not join a group: the engine runs each one as soon as it takes it from the queue,
//! against the applied state. That state holds every acknowledged write (a write is answered
//! only after its group is applied) and nothing that is not durable, so a read never waits for
//! a sync it does not need; a `min_lsn` fence the state has not reached is refused at once.
//!
//! So the disk works while the processor applies and plans: group commit without a timer,
//! and groups grow with the load. With nothing in flight the engine blocks for the first
//! message, and wakes once per slot so due leases still expire.
//!
//! Shutdown stops accepting, commits what is queued, and answers anything left
//! `shutting_down`; the log is durable at every group boundary, so nothing else is needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use allocdb_core::{Kernel, KernelUsage, Lsn, Slot};
use allocdb_storage::{LogDirectory, PendingSync, PreparedSpare, SparePreparation};

use crate::clock::Clock;
use crate::core::{EngineCore, EngineCounters};
use crate::group::Group;
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

/// Gets the failure of a snapshot installation, if any.
type SnapshotCallback = Box<dyn FnOnce(Option<String>) + Send>;

enum Message {
    Write {
        requests: Vec<WriteRequest>,
        reply: WriteCallback,
    },
    Read(ReadCallback),
    Snapshot(SnapshotCallback),
    Shutdown,
    /// From the sync thread: a sync reported back (its result is on the sync channel).
    SyncDone,
}

/// What the engine last published: the state as of the last write it answered (or as
/// recovered, before the first), so status pages and metrics never wait for the engine
/// thread, which may be busy or stalled behind a slow disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishedState {
    /// Last applied lsn: never below an acknowledged write's lsn.
    pub applied_lsn: Lsn,
    /// The kernel's last request slot.
    pub last_request_slot: Slot,
    /// Table usage, including every acknowledged write.
    pub usage: KernelUsage,
    /// The core's counters as of the last finished group (they may lag the answers by part
    /// of a group).
    pub counters: EngineCounters,
}

/// Live figures shared with other threads (status pages, metrics).
#[derive(Debug)]
pub struct EngineStatus {
    /// Commands waiting in the queue.
    pub queued_commands: AtomicU64,
    /// Last applied lsn (the same as [`PublishedState::applied_lsn`], without the lock).
    pub applied_lsn: AtomicU64,
    /// Whether the engine halted after a storage failure.
    pub halted: AtomicBool,
    /// Nanoseconds the last group took, from its first message to its replies.
    pub last_group_nanos: AtomicU64,
    /// Total nanoseconds of all groups. Groups overlap in the pipeline, so this grows faster
    /// than wall time under load (by the mean number of groups in flight).
    pub group_nanos_total: AtomicU64,
    published: std::sync::Mutex<PublishedState>,
}

impl EngineStatus {
    fn new<D: LogDirectory, C: Clock>(core: &EngineCore<D, C>) -> EngineStatus {
        let kernel = core.kernel();
        EngineStatus {
            queued_commands: AtomicU64::new(0),
            applied_lsn: AtomicU64::new(kernel.last_applied_lsn()),
            halted: AtomicBool::new(false),
            last_group_nanos: AtomicU64::new(0),
            group_nanos_total: AtomicU64::new(0),
            published: std::sync::Mutex::new(PublishedState {
                applied_lsn: kernel.last_applied_lsn(),
                last_request_slot: kernel.last_request_slot(),
                usage: kernel.usage(),
                counters: core.counters(),
            }),
        }
    }

    /// What the engine last published; never waits for the engine thread (the lock guards a
    /// copy, replaced a few times per group).
    pub fn published(&self) -> PublishedState {
        self.published.lock().map_or_else(|poisoned| *poisoned.into_inner(), |published| *published)
    }

    /// The core's counters after the last group.
    pub fn counters(&self) -> EngineCounters {
        self.published().counters
    }

    /// Publishes the state's lsn, slot and usage (called before answers go out) and, at the
    /// end of a group, the counters.
    fn publish(&self, kernel: &Kernel, counters: Option<EngineCounters>) {
        let mut published = self.published.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        published.applied_lsn = kernel.last_applied_lsn();
        published.last_request_slot = kernel.last_request_slot();
        published.usage = kernel.usage();
        if let Some(counters) = counters {
            published.counters = counters;
        }
        self.applied_lsn.store(published.applied_lsn, Ordering::Release);
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
        let status = Arc::new(EngineStatus::new(&core));
        let (sync_jobs, jobs) = std::sync::mpsc::channel::<PendingSync<D::File>>();
        let (synced, sync_results) = std::sync::mpsc::channel();
        let wake = sender.clone();
        let sync_thread = std::thread::Builder::new()
            .name("allocdb-sync".to_owned())
            .spawn(move || sync_loop(&jobs, &synced, &wake))?;
        let (spare_jobs, spare_job_receiver) = std::sync::mpsc::channel::<SparePreparation<D::File>>();
        let (spare_filled, spare_results) = std::sync::mpsc::channel();
        let spare_thread = std::thread::Builder::new().name("allocdb-spare".to_owned()).spawn(move || {
            for preparation in spare_job_receiver {
                if spare_filled.send(preparation.fill()).is_err() {
                    return;
                }
            }
        })?;
        let thread_status = Arc::clone(&status);
        let thread = std::thread::Builder::new().name("allocdb-engine".to_owned()).spawn(move || {
            let sync = Helper { jobs: Some(sync_jobs), results: sync_results, thread: Some(sync_thread) };
            let spare = Helper { jobs: Some(spare_jobs), results: spare_results, thread: Some(spare_thread) };
            run(core, &receiver, sync, &spare, &thread_status, observer.as_ref());
        })?;
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

    /// Runs `read` on the engine thread against the applied state, as soon as the engine takes
    /// it from the queue (it holds every acknowledged write). Returns false (and drops `read`)
    /// if the queue is full or the engine stopped.
    pub fn read(&self, read: ReadCallback) -> bool {
        self.sender.try_send(Message::Read(read)).is_ok()
    }

    /// Installs a snapshot now (after queued writes); `done` gets the failure, if any.
    pub fn snapshot(&self, done: SnapshotCallback) -> bool {
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

/// Runs each sync handed over, timing it, and reports it back (result on `synced`, a wake-up
/// on the engine's queue). Stops when the engine drops its end.
fn sync_loop<F: allocdb_storage::LogFile>(
    jobs: &Receiver<PendingSync<F>>,
    synced: &Sender<(PendingSync<F>, u64)>,
    wake: &SyncSender<Message>,
) {
    for mut pending in jobs {
        let started = Instant::now();
        pending.sync();
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if synced.send((pending, nanos)).is_err() {
            return;
        }
        // A full queue needs no wake-up: the engine checks for results after every message.
        let _ = wake.try_send(Message::SyncDone);
    }
}

/// The engine thread's end of a helper thread: jobs go out on `jobs`, results come back on
/// `results`; dropping it closes the job channel and joins the thread, which ends when the
/// channel closes.
struct Helper<Job, Done> {
    jobs: Option<Sender<Job>>,
    results: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

impl<Job, Done> Drop for Helper<Job, Done> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The sync thread: one pending sync out at a time, answered with its duration.
type SyncThread<F> = Helper<PendingSync<F>, (PendingSync<F>, u64)>;

/// The spare thread: at most one preparation is out at a time (the storage hands out one
/// spare until it is taken back).
type SpareThread<F> = Helper<SparePreparation<F>, PreparedSpare<F>>;

impl<F: allocdb_storage::LogFile> Helper<SparePreparation<F>, PreparedSpare<F>> {
    /// Takes back a filled spare, then hands out a new one if the storage wants it. Never
    /// blocks: a spare is only needed at the next rollover, which falls back to creating the
    /// segment if none is ready.
    fn tend<D: LogDirectory<File = F>, C: Clock>(&self, core: &mut EngineCore<D, C>) {
        if let Ok(prepared) = self.results.try_recv() {
            core.accept_spare(prepared);
        }
        if let Some(jobs) = self.jobs.as_ref()
            && let Some(preparation) = core.spare_preparation()
        {
            // Without a spare thread (it can only have panicked) the spare stays "preparing"
            // for good, and every rollover creates its segment as if there were no spares.
            let _ = jobs.send(preparation);
        }
    }
}

/// The messages of one group and what it owes their senders.
struct Batch<F> {
    group: Group<F>,
    begun: bool,
    started: Instant,
    /// Every planned request of the group in planning order (the group's request indexes),
    /// kept in one vector so applying needs no per-group collection.
    requests: Vec<WriteRequest>,
    /// Each write message's request count and callback, in order.
    callbacks: Vec<(usize, WriteCallback)>,
    replies: Vec<WriteReply>,
    snapshots: Vec<SnapshotCallback>,
}

impl<F: allocdb_storage::LogFile> Batch<F> {
    fn new(records: usize) -> Batch<F> {
        Batch {
            group: Group::with_capacity(records),
            begun: false,
            started: Instant::now(),
            requests: Vec::with_capacity(records),
            callbacks: Vec::new(),
            replies: Vec::with_capacity(records),
            snapshots: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        !self.begun && self.snapshots.is_empty()
    }
}

/// A write message planned only in part: the log buffer filled up while a sync was out.
struct PartialWrite {
    requests: Vec<WriteRequest>,
    reply: WriteCallback,
    planned: usize,
}

/// The engine thread's state: the group being gathered and the one whose sync is out.
struct Pipeline<'a, D: LogDirectory, C: Clock> {
    core: EngineCore<D, C>,
    status: &'a EngineStatus,
    observer: Option<&'a GroupObserver>,
    batch_size_max: usize,
    /// Records a group can hold (requests plus one tick of expirations): batch capacity.
    records: usize,
    tick: Duration,
    next: Batch<D::File>,
    in_flight: Option<Batch<D::File>>,
    spare: Option<Batch<D::File>>,
    /// A write that did not fit `next`; it starts the group after.
    carry: Option<Message>,
    partial: Option<PartialWrite>,
    shutting_down: bool,
}

fn run<D: LogDirectory, C: Clock>(
    core: EngineCore<D, C>,
    receiver: &Receiver<Message>,
    mut sync: SyncThread<D::File>,
    spare: &SpareThread<D::File>,
    status: &EngineStatus,
    observer: Option<&GroupObserver>,
) {
    let records =
        core.config().batch_size_max as usize + core.config().kernel.expirations_per_tick_max as usize;
    let mut pipeline = Pipeline {
        tick: Duration::from_millis(core.config().slot_duration_ms),
        batch_size_max: core.config().batch_size_max as usize,
        records,
        core,
        status,
        observer,
        next: Batch::new(records),
        in_flight: None,
        spare: Some(Batch::new(records)),
        carry: None,
        partial: None,
        shutting_down: false,
    };
    loop {
        if pipeline.in_flight.is_some() {
            let synced = pipeline.gather_during_sync(receiver, &sync.results);
            pipeline.settle_in_flight(synced);
        } else {
            pipeline.gather_idle(receiver);
        }
        pipeline.advance(&sync);
        spare.tend(&mut pipeline.core);
        if pipeline.shutting_down && pipeline.in_flight.is_none() && pipeline.carry.is_none() {
            break;
        }
    }
    drop(sync.jobs.take());
    let Pipeline { core, .. } = pipeline;
    // Anything that slipped in after the shutdown message is answered, never dropped silently.
    while let Ok(message) = receiver.try_recv() {
        match message {
            Message::Write { requests, reply } => {
                status.queued_commands.fetch_sub(requests.len() as u64, Ordering::AcqRel);
                reply(vec![WriteReply::Rejected(RejectionCode::ShuttingDown); requests.len()]);
            }
            Message::Read(read) => read(core.kernel(), true),
            Message::Snapshot(done) => done(Some("engine shut down".to_owned())),
            Message::Shutdown | Message::SyncDone => {}
        }
    }
}

impl<D: LogDirectory, C: Clock> Pipeline<'_, D, C> {
    /// With nothing in flight: blocks for the first message (or one slot, so due leases
    /// expire), then takes whatever else is queued.
    fn gather_idle(&mut self, receiver: &Receiver<Message>) {
        let first = match self.carry.take() {
            Some(message) => Some(message),
            None => match receiver.recv_timeout(self.tick) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Message::Shutdown),
            },
        };
        match first {
            Some(message) => self.add(message),
            None => self.begin_next(),
        }
        while !self.is_full() {
            match receiver.try_recv() {
                Ok(message) => self.add(message),
                Err(_) => break,
            }
        }
    }

    /// While the in-flight group syncs: plans what arrives into the next group until the sync
    /// reports back, then returns its result. A full group only waits.
    fn gather_during_sync(
        &mut self,
        receiver: &Receiver<Message>,
        results: &Receiver<(PendingSync<D::File>, u64)>,
    ) -> Option<(PendingSync<D::File>, u64)> {
        if let Some(message) = self.carry.take() {
            self.add(message);
        }
        loop {
            if let Ok(result) = results.try_recv() {
                return Some(result);
            }
            if self.is_full() {
                return results.recv().ok();
            }
            match receiver.recv() {
                Ok(message) => self.add(message),
                Err(_) => self.shutting_down = true,
            }
        }
    }

    fn is_full(&self) -> bool {
        self.shutting_down
            || self.carry.is_some()
            || self.partial.is_some()
            || self.next.requests.len() >= self.batch_size_max
    }

    fn begin_next(&mut self) {
        if !self.next.begun {
            self.core.begin_group(&mut self.next.group);
            self.next.begun = true;
            self.next.started = Instant::now();
        }
    }

    fn add(&mut self, message: Message) {
        match message {
            Message::Write { requests, reply } => {
                let queued = self.next.requests.len();
                if queued > 0 && queued + requests.len() > self.batch_size_max {
                    self.carry = Some(Message::Write { requests, reply });
                    return;
                }
                self.begin_next();
                self.plan_write(PartialWrite { requests, reply, planned: 0 });
            }
            // Served at once against the applied state: it holds every acknowledged write
            // (answers go out only after their group is applied), and it is durable.
            Message::Read(read) => read(self.core.kernel(), self.core.halt_cause().is_some()),
            Message::Snapshot(done) => self.next.snapshots.push(done),
            Message::Shutdown => self.shutting_down = true,
            Message::SyncDone => {}
        }
    }

    /// Plans the rest of a write message into the next group; keeps it aside if the log
    /// buffer is full until the sync in flight reports back.
    fn plan_write(&mut self, mut write: PartialWrite) {
        let rest = &write.requests[write.planned..];
        write.planned += self.core.plan_requests(&mut self.next.group, rest, &mut self.next.replies);
        if write.planned < write.requests.len() {
            self.partial = Some(write);
            return;
        }
        self.next.callbacks.push((write.requests.len(), write.reply));
        self.next.requests.extend(write.requests);
    }

    /// Records the in-flight group's sync result (a lost sync thread counts as a failure).
    fn settle_in_flight(&mut self, synced: Option<(PendingSync<D::File>, u64)>) {
        let Some(in_flight) = self.in_flight.as_mut() else { return };
        if let Some((pending, nanos)) = synced {
            in_flight.group.return_sync(pending, nanos);
        } else {
            in_flight.group.abandon_sync();
            self.core.halt_externally("the log sync thread stopped with a sync out");
        }
        self.core.settle_group(&mut in_flight.group);
        if let Some(write) = self.partial.take() {
            self.plan_write(write);
        }
    }

    /// Writes the next group and hands its sync over, then answers the in-flight group and
    /// makes the next one the in-flight one (or answers it too if it needed no sync).
    fn advance(&mut self, sync: &SyncThread<D::File>) {
        if self.next.begun {
            self.core.write_group(&mut self.next.group);
        }
        let mut handed_over = false;
        if self.next.group.needs_sync()
            && let Some(pending) = self.next.group.take_sync()
        {
            match sync.jobs.as_ref().map(|jobs| jobs.send(pending)) {
                Some(Ok(())) => handed_over = true,
                // No sync thread (it can only have panicked): settle runs the sync here.
                Some(Err(std::sync::mpsc::SendError(pending))) => self.next.group.return_sync(pending, 0),
                None => unreachable!("the sync channel closes only after the loop"),
            }
        }
        if let Some(in_flight) = self.in_flight.take() {
            self.finish(in_flight);
        }
        let fresh = self.spare.take().unwrap_or_else(|| Batch::new(self.records));
        let next = std::mem::replace(&mut self.next, fresh);
        if handed_over {
            self.in_flight = Some(next);
        } else if next.is_empty() {
            self.spare = Some(next);
        } else {
            let mut next = next;
            self.core.settle_group(&mut next.group);
            self.finish(next);
        }
    }

    /// Applies a settled group, answers its writes, installs its snapshots, and keeps the
    /// batch for reuse. (Reads never wait here: `add` runs them as they arrive.)
    fn finish(&mut self, mut batch: Batch<D::File>) {
        let status = self.status;
        let mut callbacks = batch.callbacks.drain(..).peekable();
        let mut offset = 0;
        // Answers each write message as soon as its last request is applied, so the network
        // threads send the first answers while the engine still applies the rest of the group.
        let mut answer_through = |applied: usize, replies: &[WriteReply], kernel: &Kernel| {
            // Published before the answers go out, so a status read never shows less than an
            // acknowledged write.
            if callbacks.peek().is_some_and(|&(count, _)| offset + count <= applied) {
                status.publish(kernel, None);
            }
            while let Some(&(count, _)) = callbacks.peek()
                && offset + count <= applied
                && let Some((_, reply)) = callbacks.next()
            {
                status.queued_commands.fetch_sub(count as u64, Ordering::AcqRel);
                reply(replies[offset..offset + count].to_vec());
                offset += count;
            }
        };
        if batch.begun {
            self.core.apply_group_answering(
                &mut batch.group,
                &batch.requests,
                &mut batch.replies,
                &mut answer_through,
            );
        }
        let elapsed = u64::try_from(batch.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if batch.begun {
            status.last_group_nanos.store(elapsed, Ordering::Release);
            status.group_nanos_total.fetch_add(elapsed, Ordering::AcqRel);
        }
        status.publish(self.core.kernel(), Some(self.core.counters()));
        status.halted.store(self.core.halt_cause().is_some(), Ordering::Release);
        answer_through(usize::MAX, &batch.replies, self.core.kernel());
        drop(callbacks);
        for done in batch.snapshots.drain(..) {
            done(self.core.snapshot_now());
        }
        let halted = self.core.halt_cause().is_some();
        if let Some(observer) = self.observer
            && batch.begun
        {
            let records = batch.group.record_count() as u64;
            observer(&GroupReport {
                records,
                writes: offset as u64,
                sync_nanos: (records > 0 && !halted).then_some(batch.group.sync_nanos()),
                group_nanos: elapsed,
            });
        }
        batch.begun = false;
        batch.requests.clear();
        batch.replies.clear();
        self.spare = Some(batch);
    }
}
