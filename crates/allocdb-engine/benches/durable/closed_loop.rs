//! The closed loop through [`Engine`]: exactly N single-command requests in flight, driven by
//! one thread, with commit latency measured from `submit` to the start of the callback.
//!
//! Each callback sends its submitter and timestamps over a bounded channel (one slot per
//! submitter, one request in flight each, so the engine thread never blocks on it); the
//! driver checks the reply and submits that submitter's next request at once. Engine counters
//! and the threads' schedstat figures are sampled at the window's two edges, and a
//! [`GroupObserver`] counts the records of every group committed inside the window in
//! power-of-two buckets, which shows whether N in flight become one group per sync or split.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Duration, Instant};

use allocdb_engine::{Engine, EngineCounters, GroupObserver, RejectionCode, WriteReply, WriteRequest};

use crate::Options;
use crate::report::{nanoseconds, percentile};
use crate::workload::{
    RESERVE_TTL_MS, RESOURCE_COUNT_MAX, Submitter, create_request, describe_reply, engine_config,
    is_fresh_ok, open_core,
};

/// Longest wait for any reply before the run is declared stuck.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_mins(1);
/// Power-of-two buckets of records per group: bucket `i` holds sizes `2^i ..= 2^(i+1) - 1`,
/// the last one everything larger (`batch_size_max` is 4,096).
pub(crate) const GROUP_SIZE_BUCKET_COUNT: usize = 14;

/// Records per group committed while `measuring` is set, counted on the engine thread (one
/// relaxed increment per group, so the observer stays cheap).
#[derive(Default)]
struct GroupSizes {
    measuring: AtomicBool,
    buckets: [AtomicU64; GROUP_SIZE_BUCKET_COUNT],
}

impl GroupSizes {
    fn record(&self, records: u64) {
        if records == 0 || !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        let index = (records.ilog2() as usize).min(GROUP_SIZE_BUCKET_COUNT - 1);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
    }

    fn counts(&self) -> [u64; GROUP_SIZE_BUCKET_COUNT] {
        std::array::from_fn(|index| self.buckets[index].load(Ordering::Relaxed))
    }
}

struct Completion {
    submitter_index: usize,
    submitted: Instant,
    completed: Instant,
    reply: Option<WriteReply>,
}

/// Figures the driver samples at the window's edges.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    counters: EngineCounters,
    group_nanos_total: u64,
    engine_thread: ThreadTimes,
    driver_thread: ThreadTimes,
}

impl Sample {
    fn take(engine: &Engine, engine_tid: Option<u32>) -> Sample {
        let status = engine.status();
        Sample {
            at: Instant::now(),
            counters: status.counters(),
            group_nanos_total: status.group_nanos_total.load(Ordering::Acquire),
            engine_thread: engine_tid.map_or_else(ThreadTimes::default, ThreadTimes::of_thread),
            driver_thread: ThreadTimes::of_current_thread(),
        }
    }
}

/// The figures of one closed-loop run.
pub(crate) struct LoopCell {
    pub(crate) commands_per_second: f64,
    pub(crate) latency_p50_ms: f64,
    pub(crate) latency_p99_ms: f64,
    pub(crate) latency_max_ms: f64,
    pub(crate) syncs_per_second: f64,
    pub(crate) commands_per_sync: f64,
    pub(crate) group_ms_mean: f64,
    /// Group time per second of wall time: the mean number of groups in flight.
    pub(crate) groups_in_flight: f64,
    pub(crate) engine_cpu_us_per_command: f64,
    pub(crate) engine_wait_us_per_command: f64,
    pub(crate) driver_cpu_us_per_command: f64,
    pub(crate) driver_wait_us_per_command: f64,
    pub(crate) engine_cpu_fraction: f64,
    pub(crate) sync_ms_mean: f64,
    pub(crate) sync_fraction: f64,
    /// Groups committed in the window per power-of-two size bucket.
    pub(crate) group_sizes: [u64; GROUP_SIZE_BUCKET_COUNT],
    /// The preallocated-layout fsync rate measured just before this cell.
    pub(crate) floor_syncs_per_second: f64,
    pub(crate) anomaly_count: u64,
    pub(crate) anomalies: BTreeMap<String, u64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measure,
    Drain,
}

pub(crate) fn run_closed_loop(options: &Options, concurrency: usize, path: &Path) -> LoopCell {
    let config = engine_config(options.scale);
    assert!(
        concurrency * 2 <= RESOURCE_COUNT_MAX as usize,
        "{concurrency} submitters need {} resources; the table holds {RESOURCE_COUNT_MAX}",
        concurrency * 2,
    );
    assert!(
        concurrency <= config.submission_queue_capacity as usize,
        "{concurrency} submitters would overflow the submission queue of {}",
        config.submission_queue_capacity,
    );
    let ttl_slots = config.ttl_slots_for_ms(RESERVE_TTL_MS);
    let group_sizes = Arc::new(GroupSizes::default());
    let observed = Arc::clone(&group_sizes);
    let observer: GroupObserver = Arc::new(move |report| observed.record(report.records));
    let engine =
        Engine::start_observed(open_core(path, options.scale), Some(observer)).expect("start engine");
    create_resources(&engine, concurrency, config.batch_size_max as usize);
    // Only now: the engine thread names itself after it starts, and it has run by now.
    let engine_tid = ThreadTimes::find_thread("allocdb-engine");

    // One slot per submitter and one request in flight each: a callback's send never blocks
    // the engine thread.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Completion>(concurrency);
    let mut submitters: Vec<Submitter> = (0..concurrency).map(Submitter::new).collect();
    // Room for 500k commands/s without growing during the window (8 bytes per sample).
    let expected_samples = (options.duration.as_secs_f64() * 500_000.0) as usize;
    let mut latencies: Vec<u64> = Vec::with_capacity(expected_samples.min(1 << 26));
    let mut anomalies: BTreeMap<String, u64> = BTreeMap::new();

    let started = Instant::now();
    let window_start = started + options.warmup;
    let window_end = window_start + options.duration;
    for (index, submitter) in submitters.iter_mut().enumerate() {
        submit(&engine, submitter, index, ttl_slots, &sender);
    }
    let mut in_flight = concurrency;
    let mut phase = Phase::Warmup;
    let mut first = None;
    let mut last = None;
    while in_flight > 0 {
        let completion = receive(&receiver);
        in_flight -= 1;
        let submitter = &mut submitters[completion.submitter_index];
        let reply = completion.reply.unwrap_or(WriteReply::Rejected(RejectionCode::Malformed));
        if !submitter.on_reply(&reply) {
            *anomalies.entry(describe_reply(&reply)).or_default() += 1;
        }
        if phase == Phase::Warmup && completion.completed >= window_start {
            phase = Phase::Measure;
            group_sizes.measuring.store(true, Ordering::Relaxed);
            first = Some(Sample::take(&engine, engine_tid));
        }
        if phase == Phase::Measure && completion.completed >= window_end {
            phase = Phase::Drain;
            group_sizes.measuring.store(false, Ordering::Relaxed);
            last = Some(Sample::take(&engine, engine_tid));
        }
        if phase == Phase::Measure {
            latencies.push(nanoseconds(completion.completed.saturating_duration_since(completion.submitted)));
        }
        if phase != Phase::Drain {
            submit(&engine, submitter, completion.submitter_index, ttl_slots, &sender);
            in_flight += 1;
        }
    }
    engine.shutdown();
    let (first, last) = (first.expect("window started"), last.expect("window ended"));
    let mut cell = summarize_loop(&first, &last, latencies, anomalies);
    cell.group_sizes = group_sizes.counts();
    cell
}

fn receive(receiver: &Receiver<Completion>) -> Completion {
    receiver.recv_timeout(REPLY_TIMEOUT).unwrap_or_else(|error| {
        panic!("no reply within {} s ({error}): the engine is stuck", REPLY_TIMEOUT.as_secs())
    })
}

fn submit(
    engine: &Engine,
    submitter: &mut Submitter,
    submitter_index: usize,
    ttl_slots: u64,
    sender: &SyncSender<Completion>,
) {
    let request = submitter.next_request(ttl_slots);
    let sender = sender.clone();
    let submitted = Instant::now();
    engine.submit(
        vec![request],
        Box::new(move |replies: Vec<WriteReply>| {
            let completed = Instant::now();
            let reply = replies.first().copied();
            // The driver outlives every callback it is waiting for; a send error only means it
            // already panicked.
            let _ = sender.send(Completion { submitter_index, submitted, completed, reply });
        }),
    );
}

/// Creates two resources per submitter (half of them stay unused) in batches, and waits.
fn create_resources(engine: &Engine, concurrency: usize, batch_size_max: usize) {
    let count = concurrency * 2;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<WriteReply>>(count.div_ceil(batch_size_max));
    let mut batches = 0;
    for start in (0..count).step_by(batch_size_max) {
        let requests: Vec<WriteRequest> =
            (start..count.min(start + batch_size_max)).map(create_request).collect();
        let sender = sender.clone();
        engine.submit(
            requests,
            Box::new(move |replies| {
                let _ = sender.send(replies);
            }),
        );
        batches += 1;
    }
    for _ in 0..batches {
        let replies = receiver.recv_timeout(REPLY_TIMEOUT).expect("resource creation replies");
        for reply in &replies {
            assert!(is_fresh_ok(reply), "create resource: {}", describe_reply(reply));
        }
    }
}

fn summarize_loop(
    first: &Sample,
    last: &Sample,
    mut latencies: Vec<u64>,
    anomalies: BTreeMap<String, u64>,
) -> LoopCell {
    let seconds = last.at.duration_since(first.at).as_secs_f64();
    latencies.sort_unstable();
    let commands = latencies.len() as f64;
    let syncs = (last.counters.syncs - first.counters.syncs) as f64;
    let records = (last.counters.records_applied - first.counters.records_applied) as f64;
    let group_nanos = (last.group_nanos_total - first.group_nanos_total) as f64;
    let sync_nanos = (last.counters.sync_nanos_total - first.counters.sync_nanos_total) as f64;
    let engine_run = last.engine_thread.run_ns.saturating_sub(first.engine_thread.run_ns) as f64;
    let engine_wait = last.engine_thread.wait_ns.saturating_sub(first.engine_thread.wait_ns) as f64;
    let driver_run = last.driver_thread.run_ns.saturating_sub(first.driver_thread.run_ns) as f64;
    let driver_wait = last.driver_thread.wait_ns.saturating_sub(first.driver_thread.wait_ns) as f64;
    let per_command_us = |nanos: f64| if commands > 0.0 { nanos / commands / 1_000.0 } else { 0.0 };
    LoopCell {
        commands_per_second: commands / seconds,
        latency_p50_ms: percentile(&latencies, 50.0),
        latency_p99_ms: percentile(&latencies, 99.0),
        latency_max_ms: latencies.last().map_or(0.0, |&nanos| nanos as f64 / 1e6),
        syncs_per_second: syncs / seconds,
        commands_per_sync: if syncs > 0.0 { records / syncs } else { 0.0 },
        group_ms_mean: if syncs > 0.0 { group_nanos / syncs / 1e6 } else { 0.0 },
        groups_in_flight: group_nanos / (seconds * 1e9),
        engine_cpu_us_per_command: per_command_us(engine_run),
        engine_wait_us_per_command: per_command_us(engine_wait),
        driver_cpu_us_per_command: per_command_us(driver_run),
        driver_wait_us_per_command: per_command_us(driver_wait),
        engine_cpu_fraction: engine_run / (seconds * 1e9),
        sync_ms_mean: if syncs > 0.0 { sync_nanos / syncs / 1e6 } else { 0.0 },
        sync_fraction: sync_nanos / (seconds * 1e9),
        group_sizes: [0; GROUP_SIZE_BUCKET_COUNT],
        floor_syncs_per_second: f64::NAN,
        anomaly_count: anomalies.values().sum(),
        anomalies,
    }
}

/// CPU time a thread ran and time it waited runnable on a run queue (`/proc/.../schedstat`).
#[derive(Clone, Copy, Default)]
pub(crate) struct ThreadTimes {
    pub(crate) run_ns: u64,
    pub(crate) wait_ns: u64,
}

impl ThreadTimes {
    fn parse(text: &str) -> ThreadTimes {
        let mut fields = text.split_whitespace().map(|field| field.parse::<u64>().unwrap_or(0));
        ThreadTimes { run_ns: fields.next().unwrap_or(0), wait_ns: fields.next().unwrap_or(0) }
    }

    fn of_thread(tid: u32) -> ThreadTimes {
        ThreadTimes::parse(
            &std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap_or_default(),
        )
    }

    pub(crate) fn of_current_thread() -> ThreadTimes {
        ThreadTimes::parse(&std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default())
    }

    /// The id of the (only) thread of this process named `name`.
    fn find_thread(name: &str) -> Option<u32> {
        std::fs::read_dir("/proc/self/task").ok()?.filter_map(Result::ok).find_map(|entry| {
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == name).then(|| entry.file_name().to_str()?.parse().ok())?
        })
    }
}
