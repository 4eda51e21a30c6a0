//! The engine's stages driven the way the production runner overlaps them: group B is begun
//! and planned while group A is written but not applied, A settles before B is written, and A
//! is applied while B's sync is still out.
//!
//! These tests check that the overlap gives the answers a serial commit gives (an exact retry
//! of a command in the unapplied group is logged again and answered from the operation table),
//! that a due lease is never proposed twice, that a failed sync fails every group not yet
//! applied, and that a group which fills the log buffer while a sync is out waits for it
//! instead of writing behind it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use allocdb_core::{ResourceId, ResourceState, ResultCode};
use allocdb_engine::{Group, RejectionCode, WriteReply, WriteRequest};
use allocdb_storage::{SimDirectory, SimFile, StorageConfig};
use support::{Core, commit, committed, config, create, keyed, open, reserve};

type SimGroup = Group<SimFile>;

/// Begins `group` and plans all of `requests` into it; returns their replies so far.
fn plan(core: &mut Core, group: &mut SimGroup, requests: &[WriteRequest]) -> Vec<WriteReply> {
    let mut replies = Vec::new();
    core.begin_group(group);
    assert_eq!(core.plan_requests(group, requests, &mut replies), requests.len());
    replies
}

/// Settles and applies a written group, returning its final replies.
fn settle_and_apply(
    core: &mut Core,
    group: &mut SimGroup,
    requests: &[WriteRequest],
    mut replies: Vec<WriteReply>,
) -> Vec<WriteReply> {
    core.settle_group(group);
    core.apply_group(group, requests, &mut replies);
    core.kernel().check_invariants().unwrap();
    replies
}

/// Two overlapped groups commit in log order with one sync each, and a retry of a command of
/// the unapplied group gets that command's outcome from the operation table.
#[test]
fn a_group_planned_before_the_previous_one_is_applied_gets_serial_answers() {
    let directory = SimDirectory::new();
    let clock = support::clock();
    let mut core = open(&directory, &clock, config());
    commit(&mut core, &[keyed(1, create(1)), keyed(2, create(2))]);
    let syncs = core.counters().syncs;

    let first = [keyed(10, reserve(1, 50))];
    let mut first_group = SimGroup::with_capacity(8);
    let first_replies = plan(&mut core, &mut first_group, &first);
    core.write_group(&mut first_group);
    assert!(first_group.needs_sync());

    // Planned while the first group is written but not applied: the retry check cannot see
    // operation 10 yet, so the retry is logged again.
    let second = [keyed(10, reserve(1, 50)), keyed(11, reserve(2, 50))];
    let mut second_group = SimGroup::with_capacity(8);
    let second_replies = plan(&mut core, &mut second_group, &second);
    assert_eq!(second_group.record_count(), 2);
    core.settle_group(&mut first_group);
    core.write_group(&mut second_group);
    let mut first_replies = first_replies;
    core.apply_group(&mut first_group, &first, &mut first_replies);
    let second_replies = settle_and_apply(&mut core, &mut second_group, &second, second_replies);

    let original = committed(first_replies[0]);
    assert_eq!(original.result, ResultCode::Ok);
    let retry = committed(second_replies[0]);
    assert!(retry.from_retry_cache, "the retry is answered from the operation table");
    assert_eq!(retry, allocdb_core::Outcome { from_retry_cache: true, ..original });
    assert_eq!(committed(second_replies[1]).result, ResultCode::Ok);
    assert_eq!(core.counters().syncs, syncs + 2, "one sync per group");
    assert_eq!(core.storage().durable_lsn(), core.kernel().last_applied_lsn());

    // Replay reaches the same state.
    let applied = core.kernel().last_applied_lsn();
    drop(core);
    directory.crash().unwrap();
    let core = open(&directory, &clock, config());
    assert_eq!(core.kernel().last_applied_lsn(), applied);
    assert_eq!(core.kernel().resource(ResourceId(1)).unwrap().state, ResourceState::Reserved);
}

/// While a group holding expires is unapplied, the next group proposes none; once it is
/// applied, the remaining due leases are proposed, each exactly once.
#[test]
fn a_due_lease_is_proposed_once_while_groups_overlap() {
    let directory = SimDirectory::new();
    let clock = support::clock();
    let mut core = open(&directory, &clock, config());
    let creates: Vec<WriteRequest> = (0..6).map(|id| keyed(id, create(id))).collect();
    commit(&mut core, &creates);
    let reserves: Vec<WriteRequest> = (0..6).map(|id| keyed(100 + id, reserve(id, 3))).collect();
    commit(&mut core, &reserves);
    clock.advance_ms(30);

    let mut first_group = SimGroup::with_capacity(8);
    let first_replies = plan(&mut core, &mut first_group, &[]);
    assert_eq!(first_group.record_count(), 4, "expirations_per_tick_max is 4");
    core.write_group(&mut first_group);
    let mut second_group = SimGroup::with_capacity(8);
    let second_replies = plan(&mut core, &mut second_group, &[]);
    assert_eq!(second_group.record_count(), 0, "no expire while a group with expires is unapplied");
    core.settle_group(&mut first_group);
    core.write_group(&mut second_group);
    settle_and_apply(&mut core, &mut first_group, &[], first_replies);
    settle_and_apply(&mut core, &mut second_group, &[], second_replies);
    assert_eq!(core.counters().expirations_applied, 4);

    commit(&mut core, &[]);
    assert_eq!(core.counters().expirations_applied, 6);
    commit(&mut core, &[]);
    assert_eq!(core.counters().expirations_applied, 6, "nothing is proposed twice");
    for id in 0..6 {
        assert_eq!(core.kernel().resource(ResourceId(id)).unwrap().state, ResourceState::Available);
    }
}

/// A failed sync halts the engine: its group and the group planned behind it are answered
/// `storage_failure`, nothing of either is applied, and the second was never written.
#[test]
fn a_failed_sync_fails_every_group_not_yet_applied() {
    let directory = SimDirectory::new();
    let clock = support::clock();
    let mut core = open(&directory, &clock, config());
    commit(&mut core, &[keyed(1, create(1)), keyed(2, create(2))]);
    let applied = core.kernel().last_applied_lsn();

    let first = [keyed(10, reserve(1, 50))];
    let mut first_group = SimGroup::with_capacity(8);
    let first_replies = plan(&mut core, &mut first_group, &first);
    core.write_group(&mut first_group);
    let second = [keyed(11, reserve(2, 50))];
    let mut second_group = SimGroup::with_capacity(8);
    let second_replies = plan(&mut core, &mut second_group, &second);
    directory.fail_sync_in(1);
    let writes = directory.counters().writes;
    core.settle_group(&mut first_group);
    assert!(core.halt_cause().is_some());
    core.write_group(&mut second_group);
    assert_eq!(directory.counters().writes, writes, "nothing is written after a failed sync");
    let first_replies = settle_and_apply(&mut core, &mut first_group, &first, first_replies);
    let second_replies = settle_and_apply(&mut core, &mut second_group, &second, second_replies);
    assert_eq!(first_replies, [WriteReply::Rejected(RejectionCode::StorageFailure)]);
    assert_eq!(second_replies, [WriteReply::Rejected(RejectionCode::StorageFailure)]);
    assert_eq!(core.kernel().last_applied_lsn(), applied);

    drop(core);
    directory.crash().unwrap();
    let core = open(&directory, &clock, config());
    assert_eq!(core.kernel().resource(ResourceId(2)).unwrap().state, ResourceState::Available);
}

/// A group that fills the log buffer while the previous group's sync is out stops planning;
/// once that sync settles, the rest is planned (writing early as in a serial commit), and
/// every request commits.
#[test]
fn a_full_buffer_waits_for_the_outstanding_sync() {
    let directory = SimDirectory::new();
    let clock = support::clock();
    let small_buffer = allocdb_engine::EngineConfig {
        storage: StorageConfig { buffer_size_bytes_max: 1024, ..config().storage },
        ..config()
    };
    let mut core = open(&directory, &clock, small_buffer);
    let creates: Vec<WriteRequest> = (0..40).map(|id| keyed(id, create(id))).collect();
    for chunk in creates.chunks(8) {
        commit(&mut core, chunk);
    }

    let first = [keyed(100, reserve(0, 50))];
    let mut first_group = SimGroup::with_capacity(64);
    let first_replies = plan(&mut core, &mut first_group, &first);
    core.write_group(&mut first_group);

    let second: Vec<WriteRequest> = (1..40).map(|id| keyed(100 + id, reserve(id, 50))).collect();
    let mut second_group = SimGroup::with_capacity(64);
    let mut second_replies = Vec::new();
    core.begin_group(&mut second_group);
    let writes = directory.counters().writes;
    let planned = core.plan_requests(&mut second_group, &second, &mut second_replies);
    assert!(planned < second.len(), "the buffer holds fewer than {} reserves", second.len());
    assert_eq!(second_replies.len(), planned);
    assert_eq!(directory.counters().writes, writes, "nothing written while the sync is out");

    core.settle_group(&mut first_group);
    let rest = core.plan_requests(&mut second_group, &second[planned..], &mut second_replies);
    assert_eq!(planned + rest, second.len());
    core.write_group(&mut second_group);
    let first_replies = settle_and_apply(&mut core, &mut first_group, &first, first_replies);
    let second_replies = settle_and_apply(&mut core, &mut second_group, &second, second_replies);
    assert_eq!(committed(first_replies[0]).result, ResultCode::Ok);
    for reply in second_replies {
        assert_eq!(committed(reply).result, ResultCode::Ok);
    }
    for id in 0..40 {
        assert_eq!(core.kernel().resource(ResourceId(id)).unwrap().state, ResourceState::Reserved);
    }
}

/// Answering while applying: the runner answers each write message as soon as its requests
/// are applied. Every `answered(count, replies)` call follows the apply of one logged request,
/// the counts only grow, and the first `count` replies it shows are already final, including
/// a retry answered at planning time.
#[test]
fn a_group_is_answered_in_growing_prefixes_that_are_already_final() {
    let directory = SimDirectory::new();
    let clock = support::clock();
    let mut core = open(&directory, &clock, config());
    commit(&mut core, &[keyed(1, create(1))]);
    // Operation 1 is applied already, so its retry is answered at planning and never logged.
    let requests = [keyed(2, create(2)), keyed(1, create(1)), keyed(3, create(3)), keyed(4, create(2))];
    let mut group = SimGroup::with_capacity(8);
    let mut replies = plan(&mut core, &mut group, &requests);
    assert_eq!(group.record_count(), 3);
    core.write_group(&mut group);
    core.settle_group(&mut group);
    let mut answered = Vec::new();
    let mut lsns = Vec::new();
    core.apply_group_answering(&mut group, &requests, &mut replies, |count, replies, kernel| {
        answered.push(replies[..count].to_vec());
        lsns.push(kernel.last_applied_lsn());
    });
    let counts: Vec<usize> = answered.iter().map(Vec::len).collect();
    assert_eq!(counts, [1, 3, 4], "one call per logged request, after it is applied");
    let logged: Vec<u64> = [0, 2, 3].iter().map(|&index| committed(replies[index]).applied_lsn).collect();
    assert_eq!(lsns, logged, "each call shows the state with its own request applied last");
    for prefix in &answered {
        assert_eq!(prefix[..], replies[..prefix.len()], "an answered prefix never changes");
    }
    assert!(committed(replies[1]).from_retry_cache);
    assert_eq!(committed(replies[2]).result, ResultCode::Ok);
    assert_ne!(committed(replies[3]).result, ResultCode::Ok, "resource 2 exists already");
}
