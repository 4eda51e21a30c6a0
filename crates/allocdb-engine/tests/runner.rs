//! The threaded engine on a real directory: replies arrive through callbacks (each message as
//! soon as its requests are applied), a full queue is rejected `overloaded` at once
//! (definite), oversized batches are rejected `too_large`, reads see every acknowledged write,
//! and shutdown leaves everything acknowledged durable.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use std::sync::{Arc, mpsc};
use std::time::Duration;

use allocdb_core::{
    ClientId, KernelConfig, OperationId, OperationKey, ResourceId, ResourceState, ResultCode,
};
use allocdb_engine::{
    Engine, EngineConfig, EngineCore, GroupObserver, GroupReport, ManualClock, OwnedCommand, RejectionCode,
    WriteReply, WriteRequest,
};
use allocdb_storage::{FsDirectory, StorageConfig};

/// Replies must arrive well within this; a hang fails the test with a message instead.
const REPLY_DEADLINE: Duration = Duration::from_secs(30);

fn config(queue_capacity: u32) -> EngineConfig {
    EngineConfig {
        kernel: KernelConfig {
            resource_count_max: 4_096,
            lease_count_max: 1_024,
            lease_member_count_max: 2_048,
            operation_count_max: 8_192,
            bundle_size_max: 8,
            expiration_bucket_length_max: 1_024,
            ..KernelConfig::default()
        },
        storage: StorageConfig {
            segment_size_bytes: 1 << 20,
            payload_size_bytes_max: 4_096,
            buffer_size_bytes_max: 1 << 20,
            ..StorageConfig::default()
        },
        submission_queue_capacity: queue_capacity,
        batch_size_max: 256,
        ..EngineConfig::default()
    }
}

fn create(id: u128) -> WriteRequest {
    WriteRequest {
        operation: Some(OperationKey { client_id: ClientId(3), operation_id: OperationId(id) }),
        command: OwnedCommand::CreateResource { resource_id: ResourceId(id) },
    }
}

fn start(path: &std::path::Path, queue_capacity: u32) -> Engine {
    let directory = FsDirectory::open(path).unwrap();
    let core = EngineCore::open(directory, ManualClock::new(10_000), config(queue_capacity)).unwrap();
    Engine::start(core).unwrap()
}

fn submit_and_wait(engine: &Engine, requests: Vec<WriteRequest>) -> Vec<WriteReply> {
    let (sender, receiver) = mpsc::channel();
    engine.submit(requests, Box::new(move |replies| sender.send(replies).unwrap()));
    receiver.recv_timeout(REPLY_DEADLINE).expect("engine never replied")
}

#[test]
fn batch_replies_arrive_in_order_and_survive_shutdown_and_reopen() {
    let directory = tempfile::tempdir().unwrap();
    let engine = start(directory.path(), 1_024);
    let replies = submit_and_wait(&engine, (1..=100).map(create).collect());
    for (index, reply) in replies.iter().enumerate() {
        let WriteReply::Committed(outcome) = reply else { panic!("not committed: {reply:?}") };
        assert_eq!(outcome.result, ResultCode::Ok);
        // Lsn 1 is the log's configuration record.
        assert_eq!(outcome.applied_lsn, index as u64 + 2);
    }
    engine.shutdown();

    let engine = start(directory.path(), 1_024);
    let (sender, receiver) = mpsc::channel();
    assert!(engine.read(Box::new(move |kernel, halted| {
        sender
            .send((halted, kernel.last_applied_lsn(), kernel.resource(ResourceId(77)).map(|view| view.state)))
            .unwrap();
    })));
    let (halted, lsn, state) = receiver.recv_timeout(REPLY_DEADLINE).unwrap();
    assert!(!halted);
    assert_eq!(lsn, 101);
    assert_eq!(state, Some(ResourceState::Available));
}

#[test]
fn submissions_beyond_the_queue_capacity_are_rejected_overloaded_at_once() {
    let directory = tempfile::tempdir().unwrap();
    let engine = start(directory.path(), 8);
    let replies = submit_and_wait(&engine, (1..=9).map(create).collect());
    assert!(replies.iter().all(|reply| *reply == WriteReply::Rejected(RejectionCode::Overloaded)));
    // Nothing of the rejected batch was executed: a fitting batch gets lsns from 2 (lsn 1 is
    // the log's configuration record).
    let replies = submit_and_wait(&engine, (1..=8).map(create).collect());
    let WriteReply::Committed(first) = replies[0] else { panic!("not committed: {:?}", replies[0]) };
    assert_eq!(first.applied_lsn, 2);
}

#[test]
fn batches_larger_than_one_group_are_rejected_too_large() {
    let directory = tempfile::tempdir().unwrap();
    let engine = start(directory.path(), 4_096);
    let replies = submit_and_wait(&engine, (1..=257).map(create).collect());
    assert_eq!(replies.len(), 257);
    assert!(replies.iter().all(|reply| *reply == WriteReply::Rejected(RejectionCode::TooLarge)));
}

/// The lsn a one-request submission committed at.
fn applied_lsn_of(replies: &[WriteReply]) -> u64 {
    match replies {
        [WriteReply::Committed(outcome)] => outcome.applied_lsn,
        other => panic!("expected one committed reply, got {other:?}"),
    }
}

/// A read shows at least every write acknowledged before it was submitted, and only applied
/// (hence durable) state: its lsn lies between the highest lsn acknowledged before the read
/// and the highest lsn the submissions were logged at, and the state matches that lsn.
#[test]
fn a_read_sees_every_acknowledged_write_and_only_applied_ones() {
    let directory = tempfile::tempdir().unwrap();
    let engine = start(directory.path(), 4_096);
    let (done_sender, done_receiver) = mpsc::channel();
    for id in 1..=50 {
        let done_sender = done_sender.clone();
        engine.submit(vec![create(id)], Box::new(move |replies| done_sender.send(replies).unwrap()));
    }
    let mut acknowledged_lsn = 0;
    for _ in 1..=25 {
        let replies = done_receiver.recv_timeout(REPLY_DEADLINE).unwrap();
        acknowledged_lsn = acknowledged_lsn.max(applied_lsn_of(&replies));
    }
    let (sender, receiver) = mpsc::channel();
    assert!(engine.read(Box::new(move |kernel, _| {
        sender.send((kernel.last_applied_lsn(), kernel.usage().resources.used)).unwrap();
    })));
    let (applied_lsn, resources) = receiver.recv_timeout(REPLY_DEADLINE).unwrap();
    let mut last_lsn = acknowledged_lsn;
    for _ in 26..=50 {
        let replies = done_receiver.recv_timeout(REPLY_DEADLINE).unwrap();
        last_lsn = last_lsn.max(applied_lsn_of(&replies));
    }
    assert!(
        acknowledged_lsn <= applied_lsn && applied_lsn <= last_lsn,
        "{acknowledged_lsn} {applied_lsn} {last_lsn}"
    );
    // Each create logs one record after the configuration record: the state matches its lsn.
    assert_eq!(resources, applied_lsn - 1);
    assert!(resources >= 25);
}

/// Writers on several threads keep one submission each in flight, so groups overlap in the
/// pipeline: every acknowledged write is visible to a read submitted after the acknowledgement,
/// the acknowledged lsns are exactly the logged records (none twice, none skipped), and a
/// restart finds them all.
#[test]
fn concurrent_writers_see_their_acknowledged_writes_and_every_record_is_acknowledged_once() {
    const WRITERS: u128 = 4;
    const SUBMISSIONS: u128 = 60;
    let directory = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(start(directory.path(), 4_096));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let engine = std::sync::Arc::clone(&engine);
            std::thread::spawn(move || {
                let mut lsns = Vec::new();
                for submission in 0..SUBMISSIONS {
                    // One to three creates per submission, ids unique across writers.
                    let first = 1 + (writer * SUBMISSIONS + submission) * 3;
                    let count = 1 + submission % 3;
                    let replies = submit_and_wait(&engine, (first..first + count).map(create).collect());
                    for reply in &replies {
                        let WriteReply::Committed(outcome) = reply else {
                            panic!("not committed: {reply:?}")
                        };
                        assert_eq!(outcome.result, ResultCode::Ok);
                        lsns.push(outcome.applied_lsn);
                    }
                    let acknowledged = *lsns.last().unwrap();
                    let (sender, receiver) = mpsc::channel();
                    assert!(engine.read(Box::new(move |kernel, _| {
                        let visible =
                            (first..first + count).all(|id| kernel.resource(ResourceId(id)).is_some());
                        sender.send((visible, kernel.last_applied_lsn())).unwrap();
                    })));
                    let (visible, applied) = receiver.recv_timeout(REPLY_DEADLINE).unwrap();
                    assert!(visible, "an acknowledged create is visible to a later read");
                    assert!(applied >= acknowledged);
                }
                lsns
            })
        })
        .collect();
    let mut lsns: Vec<u64> = writers.into_iter().flat_map(|writer| writer.join().unwrap()).collect();
    lsns.sort_unstable();
    let total = lsns.len() as u64;
    // Lsn 1 is the configuration record; every later record is one acknowledged create.
    assert_eq!(lsns, (2..=total + 1).collect::<Vec<_>>());
    std::sync::Arc::into_inner(engine).unwrap().shutdown();

    let engine = start(directory.path(), 4_096);
    let (sender, receiver) = mpsc::channel();
    assert!(engine.read(Box::new(move |kernel, _| sender.send(kernel.last_applied_lsn()).unwrap())));
    assert_eq!(receiver.recv_timeout(REPLY_DEADLINE).unwrap(), total + 1);
}

/// The log rolls over onto zero-filled spare segments that the spare thread prepares ahead,
/// and every record written across those rollovers survives a restart.
#[test]
fn rollovers_use_prepared_spare_segments_and_every_record_survives_a_restart() {
    const DISTINCT: u128 = 4_000;
    let directory = tempfile::tempdir().unwrap();
    let mut small_segments = config(4_096);
    small_segments.storage.segment_size_bytes = 16 << 10;
    let open = |path: &std::path::Path| {
        let core =
            EngineCore::open(FsDirectory::open(path).unwrap(), ManualClock::new(10_000), small_segments)
                .unwrap();
        Engine::start(core).unwrap()
    };
    let engine = open(directory.path());
    let unkeyed_create = |id: u128| WriteRequest {
        operation: None,
        command: OwnedCommand::CreateResource { resource_id: ResourceId(id % DISTINCT + 1) },
    };
    // A batch of 100 creates is a few KiB of log, so a segment takes a handful of batches;
    // the spare thread fills 16 KiB far faster than that.
    let mut written = 0;
    while engine.status().counters().spare_segments_used < 3 {
        assert!(written < 200_000, "no rollover used a spare after {written} creates");
        let replies = submit_and_wait(&engine, (written..written + 100).map(unkeyed_create).collect());
        assert!(replies.iter().all(|reply| matches!(reply, WriteReply::Committed(_))), "{replies:?}");
        written += 100;
    }
    let applied = {
        let (sender, receiver) = mpsc::channel();
        assert!(engine.read(Box::new(move |kernel, _| sender.send(kernel.last_applied_lsn()).unwrap())));
        receiver.recv_timeout(REPLY_DEADLINE).unwrap()
    };
    engine.shutdown();

    let engine = open(directory.path());
    let (sender, receiver) = mpsc::channel();
    assert!(engine.read(Box::new(move |kernel, _| {
        sender.send((kernel.last_applied_lsn(), kernel.usage().resources.used)).unwrap();
    })));
    let (lsn, resources) = receiver.recv_timeout(REPLY_DEADLINE).unwrap();
    assert_eq!(lsn, applied);
    assert_eq!(u128::from(resources), written.min(DISTINCT));
}

/// A group answers each write message as soon as its requests are applied, not after the
/// whole group: the first message's answer goes out while the state (as published for status
/// pages) holds its write and not yet the second message's, which the same group applies next.
/// The published lsn is never below an answered write's.
#[test]
fn a_group_answers_each_message_as_soon_as_its_requests_are_applied() {
    let directory = tempfile::tempdir().unwrap();
    let core =
        EngineCore::open(FsDirectory::open(directory.path()).unwrap(), ManualClock::new(10_000), config(64))
            .unwrap();
    let (group_sizes, observed) = mpsc::channel();
    let observer: GroupObserver = Arc::new(move |report: &GroupReport| {
        let _ = group_sizes.send(report.records);
    });
    let engine = Engine::start_observed(core, Some(observer)).unwrap();
    // Hold the engine thread in a read while both messages queue, so one group takes both.
    let (release, held) = mpsc::channel::<()>();
    let (holding, in_read) = mpsc::channel();
    assert!(engine.read(Box::new(move |_, _| {
        holding.send(()).unwrap();
        held.recv_timeout(REPLY_DEADLINE).unwrap();
    })));
    in_read.recv_timeout(REPLY_DEADLINE).unwrap();
    let (first_sender, first_answer) = mpsc::channel();
    let status = Arc::clone(engine.status());
    engine.submit(
        vec![create(1)],
        Box::new(move |replies| first_sender.send((replies, status.published().applied_lsn)).unwrap()),
    );
    let (second_sender, second_answer) = mpsc::channel();
    engine.submit(vec![create(2)], Box::new(move |replies| second_sender.send(replies).unwrap()));
    release.send(()).unwrap();

    let (first, published_at_first) = first_answer.recv_timeout(REPLY_DEADLINE).unwrap();
    let second = second_answer.recv_timeout(REPLY_DEADLINE).unwrap();
    // Idle ticks report empty groups; the first group that logged anything logged both.
    let logged =
        std::iter::from_fn(|| observed.recv_timeout(REPLY_DEADLINE).ok()).find(|&records| records > 0);
    assert_eq!(logged, Some(2), "both messages in one group");
    let (first_lsn, second_lsn) = (applied_lsn_of(&first), applied_lsn_of(&second));
    assert_eq!(second_lsn, first_lsn + 1);
    assert_eq!(published_at_first, first_lsn, "answered before the group's next request was applied");
}
