//! The single-node engine over the simulated disk: acknowledged writes survive crashes, storage
//! failures halt the engine with indefinite answers, retries after restart resolve them, slots
//! never go backwards across restarts, expiry runs through the log, and snapshots compact it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use allocdb_core::{LeaseLookup, LeaseState, ResourceId, ResourceState, ResultCode};
use allocdb_engine::{
    EngineConfig, EngineCore, ManualClock, RejectionCategory, RejectionCode, WriteReply, WriteRequest,
};
use allocdb_storage::{RecoveryStart, SimDirectory};

mod support;

use support::{commit, committed, config, create, keyed, open, reserve};

#[test]
fn one_group_is_one_sync_and_every_request_gets_its_reply() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(1_000);
    let mut core = open(&directory, &clock, config());
    let syncs_before = directory.counters().syncs;
    let requests: Vec<WriteRequest> = (0..20).map(|id| keyed(id, create(id))).collect();
    let replies = commit(&mut core, &requests);
    for (index, reply) in replies.iter().enumerate() {
        let outcome = committed(*reply);
        assert_eq!(outcome.result, ResultCode::Ok);
        // Lsn 1 is the log's configuration record.
        assert_eq!(outcome.applied_lsn, index as u64 + 2);
    }
    assert_eq!(directory.counters().syncs - syncs_before, 1, "twenty writes, one sync");
    assert_eq!(core.counters().last_group_size, 20);
}

#[test]
fn acknowledged_writes_survive_a_crash_and_replay_to_the_same_state() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(1_000);
    let mut core = open(&directory, &clock, config());
    commit(&mut core, &[keyed(1, create(1)), keyed(2, create(2))]);
    let lease = committed(commit(&mut core, &[keyed(3, reserve(1, 500))])[0]).lease_id.unwrap();
    let digest = core.kernel().state_digest();
    drop(core);
    directory.crash().unwrap();

    let core = open(&directory, &clock, config());
    assert_eq!(core.recovery_report().start, RecoveryStart::LogOnly);
    assert_eq!(core.recovery_report().records_replayed, 4, "the configuration record and three writes");
    assert_eq!(core.kernel().state_digest(), digest);
    let LeaseLookup::Found(view) = core.kernel().lease(lease) else { panic!("lease lost") };
    assert_eq!(view.state, LeaseState::Reserved);
}

#[test]
fn sync_failure_halts_with_indefinite_replies_and_restart_resolves_the_retry() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(1_000);
    let mut core = open(&directory, &clock, config());
    commit(&mut core, &[keyed(1, create(1))]);
    directory.fail_sync_in(1);
    let replies = commit(&mut core, &[keyed(2, reserve(1, 500))]);
    assert_eq!(replies[0], WriteReply::Rejected(RejectionCode::StorageFailure));
    assert_eq!(RejectionCode::StorageFailure.category(), RejectionCategory::Indefinite);
    assert!(core.halt_cause().is_some());
    let later = commit(&mut core, &[keyed(3, create(3))]);
    assert_eq!(later[0], WriteReply::Rejected(RejectionCode::EngineHalted));
    drop(core);
    directory.crash().unwrap();

    // The failed sync made nothing durable, so the retry executes exactly once now.
    let mut core = open(&directory, &clock, config());
    let retry = committed(commit(&mut core, &[keyed(2, reserve(1, 500))])[0]);
    assert_eq!(retry.result, ResultCode::Ok);
    assert!(!retry.from_retry_cache);
    let again = committed(commit(&mut core, &[keyed(2, reserve(1, 500))])[0]);
    assert!(again.from_retry_cache, "a second retry is answered from the operation table");
    assert_eq!(again.applied_lsn, retry.applied_lsn);
}

#[test]
fn retry_after_restart_returns_the_original_result_without_logging() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(1_000);
    let mut core = open(&directory, &clock, config());
    commit(&mut core, &[keyed(1, create(1))]);
    let original = committed(commit(&mut core, &[keyed(2, reserve(1, 500))])[0]);
    drop(core);
    directory.crash().unwrap();
    let mut core = open(&directory, &clock, config());
    let lsn_before = core.kernel().last_applied_lsn();
    let retry = committed(commit(&mut core, &[keyed(2, reserve(1, 500))])[0]);
    assert!(retry.from_retry_cache);
    assert_eq!((retry.applied_lsn, retry.lease_id), (original.applied_lsn, original.lease_id));
    assert_eq!(core.kernel().last_applied_lsn(), lsn_before, "a retry adds no log entry");
}

#[test]
fn slot_never_goes_below_the_last_logged_slot_after_restart() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(50_000);
    let mut core = open(&directory, &clock, config());
    commit(&mut core, &[keyed(1, create(1))]);
    assert_eq!(core.kernel().last_request_slot(), 5_000);
    drop(core);
    directory.crash().unwrap();
    clock.set_ms(10_000);
    let mut core = open(&directory, &clock, config());
    commit(&mut core, &[keyed(2, create(2))]);
    assert_eq!(core.kernel().last_request_slot(), 5_000, "clock went back; the slot held");
}

#[test]
fn due_leases_expire_through_the_log_bounded_per_tick() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(1_000);
    let mut core = open(&directory, &clock, config());
    let creates: Vec<WriteRequest> = (0..6).map(|id| keyed(id, create(id))).collect();
    commit(&mut core, &creates);
    let reserves: Vec<WriteRequest> = (0..6).map(|id| keyed(100 + id, reserve(id, 3))).collect();
    commit(&mut core, &reserves);
    // Reserved at slot 100 with a 3-slot TTL: the deadline is slot 103. At slot 102 nothing
    // is due yet.
    clock.advance_ms(20);
    commit(&mut core, &[]);
    assert_eq!(core.counters().expirations_applied, 0);
    clock.advance_ms(10);
    commit(&mut core, &[]);
    assert_eq!(core.counters().expirations_applied, 4, "expirations_per_tick_max is 4");
    assert_eq!(core.counters().expiration_backlog, 2);
    commit(&mut core, &[]);
    assert_eq!(core.counters().expirations_applied, 6);
    for id in 0..6 {
        assert_eq!(core.kernel().resource(ResourceId(id)).unwrap().state, ResourceState::Available);
    }
}

#[test]
fn snapshot_compacts_the_log_and_recovery_starts_from_it() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(1_000);
    let config = EngineConfig { snapshot_interval_records: 40, ..config() };
    let mut core = open(&directory, &clock, config);
    for round in 0..10_u128 {
        let requests: Vec<WriteRequest> =
            (0..5).map(|id| keyed(round * 5 + id, create(round * 5 + id))).collect();
        commit(&mut core, &requests);
    }
    assert_eq!(core.counters().snapshots_installed, 1);
    let digest = core.kernel().state_digest();
    drop(core);
    directory.crash().unwrap();
    let core = open(&directory, &clock, config);
    assert_eq!(core.recovery_report().start, RecoveryStart::SnapshotAndLog);
    assert_eq!(core.recovery_report().snapshot_lsn, Some(41), "the configuration record and 40 writes");
    assert_eq!(core.recovery_report().records_replayed, 10);
    assert_eq!(core.kernel().state_digest(), digest);
}

#[test]
fn corrupt_log_refuses_to_open() {
    let directory = SimDirectory::new();
    let clock = ManualClock::new(1_000);
    let mut core = open(&directory, &clock, config());
    for id in 0..4 {
        commit(&mut core, &[keyed(id, create(id))]);
    }
    drop(core);
    let segment = directory.file_names().into_iter().find(|name| name.starts_with("log-")).unwrap();
    // Flip a bit inside the first record's payload: a middle record, so never a torn tail.
    directory.flip_bit(&segment, 40, 3).unwrap();
    directory.crash().unwrap();
    let error = EngineCore::open(directory.clone(), clock, config()).err().expect("must refuse");
    let message = error.to_string();
    assert!(message.contains(&segment), "{message}");
}
