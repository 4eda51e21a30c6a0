//! The load generator: simulated clients running one workload against a [`Target`] for a warm-up
//! and a fixed measured window, counting correctness as they go.
//!
//! Invariants:
//! - the [`Tracker`] records, per resource, the operation id of the reserve that holds it; a
//!   grant while another is recorded, or a release of a lease no longer recorded, is a double
//!   allocation — the target's answers are checked, never trusted;
//! - only requests that *complete* inside the window are counted; open loop measures latency
//!   from each request's intended send time, so a stalled target cannot hide its queueing
//!   (no coordinated omission);
//! - an error is retried with the same operation id (at most [`ATTEMPTS`] times); a client
//!   that still fails stops and is counted in `failed_clients`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use hdrhistogram::Histogram;

use crate::backend::{LeaseOp, ReadOutcome, Reserve, ReserveOutcome, Session, Target};
use crate::cli::Workload;
use crate::report::{Correctness, Latency};

/// Attempts per request before a client gives up.
pub const ATTEMPTS: u32 = 5;

/// Percentiles written to [`Measured::latency_cdf`].
const CDF_PERCENTILES: [f64; 21] = [
    1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 97.0, 98.0, 99.0, 99.5, 99.8, 99.9,
    99.95, 99.99, 100.0,
];

/// The shape of one run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// What each client does.
    pub workload: Workload,
    /// Resources in play (ids `0..resources`).
    pub resources: u64,
    /// Simulated clients.
    pub clients: u64,
    /// Reserves per request (batched).
    pub batch: u64,
    /// Fenced reads per reserve (mixed).
    pub reads_per_write: u64,
    /// Lease TTL.
    pub ttl_ms: u64,
    /// Percent of won reserves re-sent with the same operation id.
    pub retry_pct: f64,
    /// Uncontended and mixed: activate between reserve and release.
    pub activate: bool,
    /// Seed of the clients' choices.
    pub seed: u64,
    /// Open loop: requests per second over all clients.
    pub rate: Option<f64>,
    /// Unmeasured warm-up.
    pub warmup: Duration,
    /// Measured window.
    pub duration: Duration,
}

impl Plan {
    /// Checks the shape is runnable.
    ///
    /// # Errors
    /// A resource count, client count or batch that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.resources == 0 || self.clients == 0 {
            bail!("need at least one resource and one client");
        }
        if self.workload != Workload::Hotspot && self.resources < self.clients {
            bail!("{:?} needs at least one resource per client (--resources ≥ --clients)", self.workload);
        }
        if self.workload == Workload::Batched && self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        if self.workload == Workload::Batched && self.resources / self.clients < self.batch {
            bail!(
                "batched needs --resources ≥ --clients × --batch ({} < {})",
                self.resources,
                self.clients * self.batch
            );
        }
        if self.rate.is_some_and(|rate| rate.is_nan() || rate <= 0.0) {
            bail!("--rate must be positive");
        }
        Ok(())
    }
}

/// Event counts of the measured window, per client and summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Commands completed in the window.
    pub ops: u64,
    /// Requests completed in the window.
    pub requests: u64,
    /// Reserves won in the window.
    pub wins: u64,
    /// `busy` answers in the window.
    pub busy: u64,
    /// Same-id re-sends in the window.
    pub replays: u64,
    /// Errors (each retried).
    pub errors: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.ops += other.ops;
        self.requests += other.requests;
        self.wins += other.wins;
        self.busy += other.busy;
        self.replays += other.replays;
        self.errors += other.errors;
    }
}

/// What the clients measured together.
#[derive(Debug)]
pub struct Measured {
    /// The summed counts.
    pub counts: Counts,
    /// Request latency.
    pub latency: Latency,
    /// First attempt to win.
    pub acquire: Latency,
    /// (percentile, µs).
    pub latency_cdf: Vec<(f64, u64)>,
    /// Counted by the clients (`held_at_end` is filled in by the caller).
    pub correctness: Correctness,
}

/// Per resource: the operation id of the reserve holding it, 0 when free.
pub struct Tracker(Vec<AtomicU64>);

impl Tracker {
    /// All free.
    pub fn new(resources: u64) -> Tracker {
        Tracker((0..resources).map(|_| AtomicU64::new(0)).collect())
    }

    /// Records a grant.
    ///
    /// # Errors
    /// The operation id of the reserve that still holds the resource.
    pub fn acquire(&self, resource: u64, token: u64) -> Result<(), u64> {
        self.0[resource as usize].compare_exchange(0, token, Ordering::AcqRel, Ordering::Acquire).map(|_| ())
    }

    /// Records a release; `false` if the resource was not held by `token`.
    pub fn release(&self, resource: u64, token: u64) -> bool {
        self.0[resource as usize].compare_exchange(token, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

/// Shared by every client of a run.
struct Shared {
    plan: Plan,
    tracker: Tracker,
    start: Instant,
    end: Instant,
    /// Ops completed so far, for the progress bar.
    progress_ops: AtomicU64,
    /// Set when any client saw a violation, to print the first few.
    reported: AtomicU64,
    stop: AtomicBool,
}

/// A small deterministic generator (`SplitMix64`) for the clients' choices.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }

    fn percent(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64 * 100.0
    }
}

struct ClientStats {
    latency: Histogram<u64>,
    acquire: Histogram<u64>,
    counts: Counts,
    correctness: Correctness,
}

impl ClientStats {
    fn new() -> Result<ClientStats> {
        Ok(ClientStats {
            latency: Histogram::new(3)?,
            acquire: Histogram::new(3)?,
            counts: Counts::default(),
            correctness: Correctness::default(),
        })
    }
}

/// Retries `$call` (which must reuse its operation ids) on errors.
macro_rules! attempt {
    ($client:expr, $call:expr) => {{
        let mut tries = 0;
        loop {
            match $call.await {
                Ok(value) => break Ok(value),
                Err(error) => {
                    $client.stats.counts.errors += 1;
                    tries += 1;
                    if $client.stats.counts.errors <= 3 {
                        eprintln!(
                            "warning: client {}: {error:#} (retrying with the same operation id)",
                            $client.index
                        );
                    }
                    if tries >= ATTEMPTS {
                        break Err(error);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }};
}

struct Client<S: Session> {
    index: u64,
    session: S,
    choices: Choices,
    sequence: u64,
    /// Open loop: when the next request is due.
    next_due: Option<Instant>,
    interval: Option<Duration>,
    stats: ClientStats,
    shared: Arc<Shared>,
}

impl<S: Session> Client<S> {
    fn holder(&self) -> u64 {
        self.index + 1
    }

    /// A fresh operation id, unique across the run's clients.
    fn next_op(&mut self) -> u64 {
        self.sequence += 1;
        ((self.index + 1) << 40) | self.sequence
    }

    fn in_window(&self, at: Instant) -> bool {
        at >= self.shared.start && at < self.shared.end
    }

    /// Waits for the next request's turn; returns the instant its latency counts from.
    async fn pace(&mut self) -> Instant {
        let Some(interval) = self.interval else { return Instant::now() };
        let due = self.next_due.unwrap_or_else(Instant::now);
        self.next_due = Some(due + interval);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        due
    }

    /// Records a completed request of `items` commands that started at `began`.
    fn record(&mut self, began: Instant, items: u64) -> Instant {
        let done = Instant::now();
        if self.in_window(done) {
            record_micros(&mut self.stats.latency, done - began);
            self.stats.counts.ops += items;
            self.stats.counts.requests += 1;
            self.shared.progress_ops.fetch_add(items, Ordering::Relaxed);
        }
        done
    }

    fn violation(&self, what: std::fmt::Arguments<'_>) {
        if self.shared.reported.fetch_add(1, Ordering::Relaxed) < 10 {
            eprintln!("VIOLATION: {what}");
        }
    }

    fn granted(&mut self, resource: u64, token: u64) {
        if let Err(other) = self.shared.tracker.acquire(resource, token) {
            self.stats.correctness.double_allocations += 1;
            self.violation(format_args!(
                "resource {resource} granted to operation {token:#x} while operation {other:#x} holds it"
            ));
        }
    }

    fn released(&mut self, resource: u64, token: u64) {
        if !self.shared.tracker.release(resource, token) {
            self.stats.correctness.double_allocations += 1;
            self.violation(format_args!(
                "resource {resource}: the lease of operation {token:#x} vanished while held"
            ));
        }
    }

    fn should_replay(&mut self) -> bool {
        let pct = self.shared.plan.retry_pct;
        pct > 0.0 && self.choices.percent() < pct
    }

    async fn run(mut self) -> Result<ClientStats> {
        let mut first_attempt: Option<Instant> = None;
        while Instant::now() < self.shared.end && !self.shared.stop.load(Ordering::Relaxed) {
            match self.shared.plan.workload {
                Workload::Uncontended | Workload::Mixed => self.own_slice_round().await?,
                Workload::Hotspot => self.hotspot_round(&mut first_attempt).await?,
                Workload::Batched => self.batched_round().await?,
                Workload::Ping => self.ping_round().await?,
                Workload::Recovery => bail!("the recovery workload has no clients"),
            }
        }
        Ok(self.stats)
    }

    /// Client `i` of `C` owns the resources `i, i + C, i + 2C, ...`.
    fn own_resource(&mut self) -> u64 {
        let plan = &self.shared.plan;
        let per_client = plan.resources / plan.clients;
        let slot = self.choices.below(per_client);
        self.index + plan.clients * slot
    }

    async fn own_slice_round(&mut self) -> Result<()> {
        let resource = self.own_resource();
        let op_id = self.next_op();
        let reserve = Reserve { op_id, resource, holder: self.holder(), ttl_ms: self.shared.plan.ttl_ms };
        let began = self.pace().await;
        let outcome = attempt!(self, self.session.reserve(reserve))?;
        let done = self.record(began, 1);
        let ReserveOutcome::Won(lease) = outcome else {
            self.stats.correctness.unexpected_busy += 1;
            self.violation(format_args!(
                "resource {resource} busy although only client {} uses it",
                self.index
            ));
            return Ok(());
        };
        if self.in_window(done) {
            self.stats.counts.wins += 1;
            record_micros(&mut self.stats.acquire, done - began);
        }
        self.granted(resource, op_id);
        self.maybe_replay(reserve, outcome).await?;
        for _ in
            0..if self.shared.plan.workload == Workload::Mixed { self.shared.plan.reads_per_write } else { 0 }
        {
            let began = self.pace().await;
            let seen = attempt!(self, self.session.read(resource, lease.lsn))?;
            self.record(began, 1);
            if seen != ReadOutcome::Held(lease.id) {
                self.stats.correctness.stale_reads += 1;
                self.violation(format_args!(
                    "read of resource {resource} fenced at lsn {} saw {seen:?}, not lease {}",
                    lease.lsn, lease.id
                ));
            }
        }
        let mut op = LeaseOp { op_id: 0, resource, holder: self.holder(), lease };
        if self.shared.plan.activate {
            op.op_id = self.next_op();
            let began = self.pace().await;
            let kept = attempt!(self, self.session.activate(op))?;
            self.record(began, 1);
            self.lease_kept(kept, "activate", resource);
        }
        self.release_one(op, op_id).await
    }

    fn lease_kept(&mut self, kept: bool, what: &str, resource: u64) {
        if !kept {
            self.stats.correctness.lost_leases += 1;
            self.violation(format_args!("{what} of our lease on resource {resource} was refused"));
        }
    }

    /// Releases the lease granted to the reserve with operation id `token`.
    async fn release_one(&mut self, mut op: LeaseOp, token: u64) -> Result<()> {
        self.released(op.resource, token);
        op.op_id = self.next_op();
        let began = self.pace().await;
        let kept = attempt!(self, self.session.release(op))?;
        self.record(began, 1);
        self.lease_kept(kept, "release", op.resource);
        Ok(())
    }

    async fn maybe_replay(&mut self, reserve: Reserve, first: ReserveOutcome) -> Result<()> {
        if !self.should_replay() {
            return Ok(());
        }
        let began = self.pace().await;
        let again = attempt!(self, self.session.reserve(reserve))?;
        let done = self.record(began, 1);
        if self.in_window(done) {
            self.stats.counts.replays += 1;
        }
        if again != first {
            self.stats.correctness.idempotency_mismatches += 1;
            self.violation(format_args!(
                "retry of operation {:#x} answered {again:?}, first {first:?}",
                reserve.op_id
            ));
        }
        Ok(())
    }

    async fn ping_round(&mut self) -> Result<()> {
        let began = self.pace().await;
        attempt!(self, self.session.ping())?;
        self.record(began, 1);
        Ok(())
    }

    async fn hotspot_round(&mut self, first_attempt: &mut Option<Instant>) -> Result<()> {
        let resource = self.choices.below(self.shared.plan.resources);
        let op_id = self.next_op();
        let reserve = Reserve { op_id, resource, holder: self.holder(), ttl_ms: self.shared.plan.ttl_ms };
        let began = self.pace().await;
        let since = *first_attempt.get_or_insert(began);
        let outcome = attempt!(self, self.session.reserve(reserve))?;
        let done = self.record(began, 1);
        match outcome {
            ReserveOutcome::Busy => {
                if self.in_window(done) {
                    self.stats.counts.busy += 1;
                }
                Ok(())
            }
            ReserveOutcome::Won(lease) => {
                *first_attempt = None;
                if self.in_window(done) {
                    self.stats.counts.wins += 1;
                    record_micros(&mut self.stats.acquire, done - since);
                }
                self.granted(resource, op_id);
                self.maybe_replay(reserve, outcome).await?;
                self.release_one(LeaseOp { op_id: 0, resource, holder: self.holder(), lease }, op_id).await
            }
        }
    }

    async fn batched_round(&mut self) -> Result<()> {
        let plan = self.shared.plan;
        let per_client = plan.resources / plan.clients;
        let mut slots: Vec<u64> = if plan.batch <= 64 && plan.batch * 4 <= per_client {
            let mut slots = Vec::with_capacity(plan.batch as usize);
            while (slots.len() as u64) < plan.batch {
                let slot = self.choices.below(per_client);
                if !slots.contains(&slot) {
                    slots.push(slot);
                }
            }
            slots
        } else {
            // Large batches: a contiguous run of the client's slots from a random start.
            let start = self.choices.below(per_client - plan.batch + 1);
            (start..start + plan.batch).collect()
        };
        slots.sort_unstable();
        let holder = self.holder();
        let reserves: Vec<Reserve> = slots
            .iter()
            .map(|slot| Reserve {
                op_id: self.next_op(),
                resource: self.index + plan.clients * slot,
                holder,
                ttl_ms: plan.ttl_ms,
            })
            .collect();
        let began = self.pace().await;
        let outcomes = attempt!(self, self.session.reserve_batch(&reserves))?;
        let done = self.record(began, plan.batch);
        if outcomes.len() != reserves.len() {
            bail!("{} answers to a batch of {} reserves", outcomes.len(), reserves.len());
        }
        let mut releases = Vec::with_capacity(reserves.len());
        let mut tokens = Vec::with_capacity(reserves.len());
        for (reserve, outcome) in reserves.iter().zip(&outcomes) {
            match outcome {
                ReserveOutcome::Won(lease) => {
                    self.granted(reserve.resource, reserve.op_id);
                    tokens.push(reserve.op_id);
                    releases.push(LeaseOp { op_id: 0, resource: reserve.resource, holder, lease: *lease });
                }
                ReserveOutcome::Busy => {
                    self.stats.correctness.unexpected_busy += 1;
                    self.violation(format_args!(
                        "resource {} busy in a batch of its only client",
                        reserve.resource
                    ));
                }
            }
        }
        if self.in_window(done) {
            self.stats.counts.wins += releases.len() as u64;
            record_micros(&mut self.stats.acquire, done - began);
        }
        if self.should_replay() {
            let began = self.pace().await;
            let again = attempt!(self, self.session.reserve_batch(&reserves))?;
            let done = self.record(began, plan.batch);
            if self.in_window(done) {
                self.stats.counts.replays += plan.batch;
            }
            let mismatches = again.iter().zip(&outcomes).filter(|(again, first)| again != first).count();
            if mismatches > 0 || again.len() != outcomes.len() {
                self.stats.correctness.idempotency_mismatches += mismatches.max(1) as u64;
                self.violation(format_args!("retry of a batch answered {mismatches} items differently"));
            }
        }
        for (token, release) in tokens.iter().zip(releases.iter_mut()) {
            self.released(release.resource, *token);
            release.op_id = self.next_op();
        }
        let began = self.pace().await;
        let kept = attempt!(self, self.session.release_batch(&releases))?;
        self.record(began, releases.len() as u64);
        let refused = kept.iter().filter(|kept| !**kept).count() as u64
            + (releases.len() as u64).saturating_sub(kept.len() as u64);
        if refused > 0 {
            self.stats.correctness.lost_leases += refused;
            self.violation(format_args!("{refused} releases of our leases were refused"));
        }
        Ok(())
    }
}

/// Runs `plan` against `target`: connects one session per client, runs the warm-up and the
/// window (whose instants are sent on `window` once fixed), and merges what the clients measured. `on_tick` is called about every 200 ms with
/// the elapsed fraction of warm-up + window and the ops completed in the window so far.
///
/// # Errors
/// The plan is invalid, or a session could not be opened.
pub async fn drive<T: Target>(
    target: &Arc<T>,
    plan: Plan,
    window: tokio::sync::oneshot::Sender<(Instant, Instant)>,
    mut on_tick: impl FnMut(f64, u64),
) -> Result<Measured> {
    plan.validate()?;
    let mut sessions = Vec::with_capacity(plan.clients as usize);
    for _ in 0..plan.clients {
        sessions.push(target.connect().await?);
    }
    let begin = Instant::now() + Duration::from_millis(50);
    let start = begin + plan.warmup;
    let end = start + plan.duration;
    let shared = Arc::new(Shared {
        plan,
        tracker: Tracker::new(plan.resources),
        start,
        end,
        progress_ops: AtomicU64::new(0),
        reported: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    // The sampler may have gone away; the run does not depend on it.
    let _ = window.send((start, end));
    let interval = plan.rate.map(|rate| Duration::from_secs_f64(plan.clients as f64 / rate));
    let mut tasks = Vec::with_capacity(sessions.len());
    for (index, session) in sessions.into_iter().enumerate() {
        let index = index as u64;
        let client = Client {
            index,
            session,
            choices: Choices(plan.seed ^ (index + 1).wrapping_mul(0x2545_f491_4f6c_dd1d)),
            sequence: 0,
            // Spread the open-loop clients' first requests over one interval.
            next_due: interval.map(|interval| begin + interval.mul_f64(index as f64 / plan.clients as f64)),
            interval,
            stats: ClientStats::new()?,
            shared: Arc::clone(&shared),
        };
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(begin.into()).await;
            client.run().await
        }));
    }
    let total = (end - begin).as_secs_f64();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let elapsed = Instant::now().saturating_duration_since(begin).as_secs_f64();
        on_tick((elapsed / total).min(1.0), shared.progress_ops.load(Ordering::Relaxed));
    }
    let mut latency = Histogram::<u64>::new(3)?;
    let mut acquire = Histogram::<u64>::new(3)?;
    let mut measured = Measured {
        counts: Counts::default(),
        latency: Latency::default(),
        acquire: Latency::default(),
        latency_cdf: Vec::new(),
        correctness: Correctness::default(),
    };
    for task in tasks {
        match task.await {
            Ok(Ok(stats)) => {
                latency.add(&stats.latency)?;
                acquire.add(&stats.acquire)?;
                measured.counts.add(&stats.counts);
                measured.correctness.add(&stats.correctness);
            }
            Ok(Err(error)) => {
                measured.correctness.failed_clients += 1;
                eprintln!("VIOLATION: a client gave up: {error:#}");
            }
            Err(error) => {
                measured.correctness.failed_clients += 1;
                eprintln!("VIOLATION: a client task failed: {error}");
            }
        }
    }
    measured.latency = summarize(&latency);
    measured.acquire = summarize(&acquire);
    measured.latency_cdf = if latency.is_empty() {
        Vec::new()
    } else {
        CDF_PERCENTILES.iter().map(|&pct| (pct, latency.value_at_percentile(pct))).collect()
    };
    Ok(measured)
}

/// Records a latency; the histograms resize themselves, so no value is clipped.
fn record_micros(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let micros = (elapsed.as_micros() as u64).max(1);
    if histogram.record(micros).is_err() {
        histogram.saturating_record(micros);
    }
}

fn summarize(histogram: &Histogram<u64>) -> Latency {
    if histogram.is_empty() {
        return Latency::default();
    }
    Latency {
        p50_us: histogram.value_at_quantile(0.5),
        p99_us: histogram.value_at_quantile(0.99),
        p999_us: histogram.value_at_quantile(0.999),
        max_us: histogram.max(),
    }
}
