//! The PostgreSQL and Redis targets against real servers: each honours the semantics
//! `backend.rs` lists — a reserve wins only a free (or expired) resource, activate and release
//! are fenced by the lease, a retried operation id answers its recorded outcome and applies
//! nothing (also when both attempts race), batch items are independent, and `held_count`
//! counts what is held.
//!
//! The servers are the ones `scripts/peers-setup.sh` starts. The tests run only when
//! `ALLOCDB_BENCH_PEERS=1` is set (they print that they were skipped otherwise); the URLs
//! default to the bench's and can be changed with `ALLOCDB_BENCH_PG_URL` and
//! `ALLOCDB_BENCH_REDIS_URL`. Each test wipes the bench's tables or keys on its server.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use std::time::{Duration, Instant};

use allocdb_bench::backend::{
    Lease, LeaseOp, ReadOutcome, Reserve, ReserveOutcome, Session, Target, TargetLabel,
};
use allocdb_bench::cli::RunArgs;
use allocdb_bench::postgres::PostgresTarget;
use allocdb_bench::redis_target::RedisTarget;
use clap::Parser;
use futures_util::future::join_all;

/// Resources every check prepares.
const RESOURCES: u64 = 64;
/// A TTL that does not run out during a test.
const TTL_MS_LONG: u64 = 120_000;
/// A TTL that runs out quickly, for the expiry checks.
const TTL_MS_SHORT: u64 = 200;
/// How long an expired lease may take to disappear before a check gives up.
const EXPIRY_WAIT_MAX: Duration = Duration::from_secs(10);
/// Simulated clients racing for one resource.
const CONTENDERS: u64 = 8;

/// `RunArgs` is a clap `Args` struct; this wraps it to parse option lists.
#[derive(Parser)]
struct Options {
    #[command(flatten)]
    run: RunArgs,
}

fn run_args(options: &[&str]) -> RunArgs {
    let mut argv = vec!["bench".to_owned()];
    argv.extend(options.iter().map(|option| (*option).to_owned()));
    if let Ok(url) = std::env::var("ALLOCDB_BENCH_PG_URL") {
        argv.extend(["--pg-url".to_owned(), url]);
    }
    if let Ok(url) = std::env::var("ALLOCDB_BENCH_REDIS_URL") {
        argv.extend(["--redis-url".to_owned(), url]);
    }
    Options::parse_from(argv).run
}

fn peers_enabled(test: &str) -> bool {
    let enabled = std::env::var("ALLOCDB_BENCH_PEERS").as_deref() == Ok("1");
    if !enabled {
        println!(
            "{test}: skipped (set ALLOCDB_BENCH_PEERS=1 with the peers of scripts/peers-setup.sh running)"
        );
    }
    enabled
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn reserve(op_id: u64, resource: u64, holder: u64) -> Reserve {
    Reserve { op_id, resource, holder, ttl_ms: TTL_MS_LONG }
}

fn lease_op(op_id: u64, resource: u64, holder: u64, lease_id: u128) -> LeaseOp {
    LeaseOp { op_id, resource, holder, lease: Lease { id: lease_id, epoch: 0, lsn: 0 } }
}

/// A won reserve's outcome: the peers' lease id is the reserve's operation id.
fn won(op_id: u64) -> ReserveOutcome {
    ReserveOutcome::Won(Lease { id: u128::from(op_id), epoch: 0, lsn: 0 })
}

/// Every check, in order, each on a freshly prepared target.
async fn check_semantics<T: Target>(target: &T) {
    let name = target.label();
    println!("checking {name:?}, server pids {:?}", target.server_pids());
    check_reserve_is_exclusive_and_fenced(target).await;
    check_replays_answer_the_recorded_outcome(target).await;
    check_batch_items_are_independent(target).await;
    check_expired_leases_free_the_resource(target).await;
    check_concurrent_retries_apply_once(target).await;
    check_contenders_get_one_winner(target).await;
    check_ping_answers_and_holds_nothing(target).await;
}

async fn check_ping_answers_and_holds_nothing<T: Target>(target: &T) {
    target.prepare(RESOURCES).await.unwrap();
    let mut session = target.connect().await.unwrap();
    for _ in 0..3 {
        session.ping().await.unwrap();
    }
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 0);
}

async fn check_reserve_is_exclusive_and_fenced<T: Target>(target: &T) {
    target.prepare(RESOURCES).await.unwrap();
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 0);
    let mut session = target.connect().await.unwrap();
    assert_eq!(session.read(0, 0).await.unwrap(), ReadOutcome::Free);

    assert_eq!(session.reserve(reserve(1, 0, 1)).await.unwrap(), won(1), "a free resource is won");
    assert_eq!(session.read(0, 0).await.unwrap(), ReadOutcome::Held(1));
    assert_eq!(session.reserve(reserve(2, 0, 2)).await.unwrap(), ReserveOutcome::Busy, "a held one is busy");
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 1);

    assert!(!session.activate(lease_op(3, 0, 2, 999)).await.unwrap(), "activate with a stale lease");
    assert!(session.activate(lease_op(4, 0, 1, 1)).await.unwrap(), "activate with the lease");
    assert!(!session.release(lease_op(5, 0, 2, 2)).await.unwrap(), "release with a stale lease");
    assert_eq!(session.read(0, 0).await.unwrap(), ReadOutcome::Held(1), "a refused release changes nothing");
    assert!(session.release(lease_op(6, 0, 1, 1)).await.unwrap(), "release with the lease");
    assert_eq!(session.read(0, 0).await.unwrap(), ReadOutcome::Free);
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 0);

    // The released lease no longer fences anything; the next holder's lease does.
    assert_eq!(session.reserve(reserve(7, 0, 2)).await.unwrap(), won(7));
    assert!(!session.release(lease_op(8, 0, 1, 1)).await.unwrap(), "release of a released lease");
    assert!(!session.activate(lease_op(9, 0, 1, 1)).await.unwrap(), "activate of a released lease");
    assert_eq!(session.read(0, 0).await.unwrap(), ReadOutcome::Held(7));
    // held_count counts only the resources asked about.
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 1);
    assert_eq!(target.held_count(0).await.unwrap(), 0);
}

async fn check_replays_answer_the_recorded_outcome<T: Target>(target: &T) {
    target.prepare(RESOURCES).await.unwrap();
    let mut session = target.connect().await.unwrap();
    assert_eq!(session.reserve(reserve(1, 3, 1)).await.unwrap(), won(1));
    assert_eq!(session.reserve(reserve(2, 3, 2)).await.unwrap(), ReserveOutcome::Busy);
    // Same ids again: the same answers, and the holder is unchanged.
    assert_eq!(session.reserve(reserve(1, 3, 1)).await.unwrap(), won(1));
    assert_eq!(session.reserve(reserve(2, 3, 2)).await.unwrap(), ReserveOutcome::Busy);
    assert_eq!(session.read(3, 0).await.unwrap(), ReadOutcome::Held(1));
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 1);

    assert!(session.release(lease_op(3, 3, 1, 1)).await.unwrap());
    // The busy reserve, retried now that the resource is free, still answers busy and takes nothing.
    assert_eq!(session.reserve(reserve(2, 3, 2)).await.unwrap(), ReserveOutcome::Busy);
    assert_eq!(session.read(3, 0).await.unwrap(), ReadOutcome::Free);
    // The won reserve, retried, answers won and does not take the resource again.
    assert_eq!(session.reserve(reserve(1, 3, 1)).await.unwrap(), won(1));
    assert_eq!(session.read(3, 0).await.unwrap(), ReadOutcome::Free);

    // A new holder takes it; the old release, retried, answers true but does not free it.
    assert_eq!(session.reserve(reserve(4, 3, 2)).await.unwrap(), won(4));
    assert!(session.release(lease_op(3, 3, 1, 1)).await.unwrap());
    assert_eq!(session.read(3, 0).await.unwrap(), ReadOutcome::Held(4));
    // A refused activate, retried with the id after the lease became valid, stays refused.
    assert!(!session.activate(lease_op(5, 3, 2, 6)).await.unwrap());
    assert!(!session.activate(lease_op(5, 3, 2, 4)).await.unwrap());
    assert!(session.activate(lease_op(6, 3, 2, 4)).await.unwrap());
    assert!(session.activate(lease_op(6, 3, 2, 4)).await.unwrap());
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 1);
}

async fn check_batch_items_are_independent<T: Target>(target: &T) {
    target.prepare(RESOURCES).await.unwrap();
    let mut session = target.connect().await.unwrap();
    assert_eq!(session.reserve(reserve(1, 12, 9)).await.unwrap(), won(1));
    let batch = [reserve(10, 10, 1), reserve(11, 11, 1), reserve(12, 12, 1), reserve(13, 13, 1)];
    let expected = vec![won(10), won(11), ReserveOutcome::Busy, won(13)];
    assert_eq!(session.reserve_batch(&batch).await.unwrap(), expected, "a busy item fails alone");
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 4);
    assert_eq!(session.reserve_batch(&batch).await.unwrap(), expected, "a replayed batch");
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 4);

    let releases = [lease_op(20, 10, 1, 10), lease_op(21, 11, 1, 999), lease_op(22, 13, 1, 13)];
    assert_eq!(session.release_batch(&releases).await.unwrap(), vec![true, false, true]);
    assert_eq!(session.read(11, 0).await.unwrap(), ReadOutcome::Held(11));
    assert_eq!(session.read(13, 0).await.unwrap(), ReadOutcome::Free);
    assert_eq!(session.release_batch(&releases).await.unwrap(), vec![true, false, true], "replayed");
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 2);
    assert_eq!(session.reserve_batch(&[]).await.unwrap(), vec![]);
    assert_eq!(session.release_batch(&[]).await.unwrap(), Vec::<bool>::new());
}

/// Polls `resource` with fresh reserves until one wins; the old lease must have expired.
async fn reserve_once_expired(session: &mut impl Session, resource: u64, first_op_id: u64) -> u64 {
    let deadline = Instant::now() + EXPIRY_WAIT_MAX;
    let mut op_id = first_op_id;
    loop {
        if session.reserve(reserve(op_id, resource, 2)).await.unwrap() == won(op_id) {
            return op_id;
        }
        assert!(
            Instant::now() < deadline,
            "resource {resource} still busy {EXPIRY_WAIT_MAX:?} after its TTL"
        );
        op_id += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn check_expired_leases_free_the_resource<T: Target>(target: &T) {
    target.prepare(RESOURCES).await.unwrap();
    let mut session = target.connect().await.unwrap();
    let short = Reserve { op_id: 1, resource: 20, holder: 1, ttl_ms: TTL_MS_SHORT };
    assert_eq!(session.reserve(short).await.unwrap(), won(1));
    let winner = reserve_once_expired(&mut session, 20, 100).await;
    assert_eq!(session.read(20, 0).await.unwrap(), ReadOutcome::Held(u128::from(winner)));
    assert!(!session.release(lease_op(2, 20, 1, 1)).await.unwrap(), "release of an expired, retaken lease");
    assert!(!session.activate(lease_op(3, 20, 1, 1)).await.unwrap(), "activate of an expired, retaken lease");

    // An expired lease nobody retook cannot be activated either, and reads as free.
    let short = Reserve { op_id: 4, resource: 21, holder: 1, ttl_ms: TTL_MS_SHORT };
    assert_eq!(session.reserve(short).await.unwrap(), won(4));
    let deadline = Instant::now() + EXPIRY_WAIT_MAX;
    while session.read(21, 0).await.unwrap() != ReadOutcome::Free {
        assert!(Instant::now() < deadline, "resource 21 still held {EXPIRY_WAIT_MAX:?} after its TTL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!session.activate(lease_op(5, 21, 1, 4)).await.unwrap(), "activate of an expired lease");
    // An activated lease does not expire.
    let short = Reserve { op_id: 6, resource: 22, holder: 1, ttl_ms: TTL_MS_SHORT };
    assert_eq!(session.reserve(short).await.unwrap(), won(6));
    assert!(session.activate(lease_op(7, 22, 1, 6)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(TTL_MS_SHORT * 2)).await;
    assert_eq!(session.read(22, 0).await.unwrap(), ReadOutcome::Held(6));
    assert_eq!(session.reserve(reserve(8, 22, 2)).await.unwrap(), ReserveOutcome::Busy);
}

async fn check_concurrent_retries_apply_once<T: Target>(target: &T) {
    target.prepare(RESOURCES).await.unwrap();
    let mut first = target.connect().await.unwrap();
    let mut second = target.connect().await.unwrap();
    for resource in 30..40 {
        let attempt = reserve(resource, resource, 1);
        let (one, other) = tokio::join!(first.reserve(attempt), second.reserve(attempt));
        assert_eq!(one.unwrap(), won(resource), "first attempt of reserve {resource}");
        assert_eq!(other.unwrap(), won(resource), "racing retry of reserve {resource}");
        let release = lease_op(1000 + resource, resource, 1, u128::from(resource));
        let (one, other) = tokio::join!(first.release(release), second.release(release));
        assert!(one.unwrap() && other.unwrap(), "a release and its racing retry both answer true");
        assert_eq!(first.read(resource, 0).await.unwrap(), ReadOutcome::Free);
    }
    // A batch racing its own retry.
    let batch: Vec<Reserve> = (40..48).map(|resource| reserve(resource, resource, 1)).collect();
    let (one, other) = tokio::join!(first.reserve_batch(&batch), second.reserve_batch(&batch));
    let expected: Vec<ReserveOutcome> = (40..48).map(won).collect();
    assert_eq!(one.unwrap(), expected);
    assert_eq!(other.unwrap(), expected);
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 8);
}

async fn check_contenders_get_one_winner<T: Target>(target: &T) {
    target.prepare(RESOURCES).await.unwrap();
    let mut sessions = Vec::new();
    for _ in 0..CONTENDERS {
        sessions.push(target.connect().await.unwrap());
    }
    for round in 0..5 {
        let resource = 50 + round;
        let attempts = sessions.iter_mut().enumerate().map(|(index, session)| {
            let op_id = resource * 100 + index as u64;
            async move { (op_id, session.reserve(reserve(op_id, resource, index as u64 + 1)).await.unwrap()) }
        });
        let outcomes = join_all(attempts).await;
        let winners: Vec<u64> = outcomes
            .iter()
            .filter(|(op_id, outcome)| *outcome == won(*op_id))
            .map(|(op_id, _)| *op_id)
            .collect();
        assert_eq!(winners.len(), 1, "one winner of resource {resource}: {outcomes:?}");
        let busy = outcomes.iter().filter(|(_, outcome)| *outcome == ReserveOutcome::Busy).count();
        assert_eq!(busy as u64, CONTENDERS - 1);
        assert_eq!(sessions[0].read(resource, 0).await.unwrap(), ReadOutcome::Held(u128::from(winners[0])));
    }
    assert_eq!(target.held_count(RESOURCES).await.unwrap(), 5);
}

fn assert_label(label: &TargetLabel, target: &str, variant: &str, durability: &str, durable: bool) {
    assert_eq!(label.target, target);
    assert_eq!(label.variant, variant);
    assert_eq!(label.durability, durability);
    assert_eq!(label.durable, durable);
}

#[test]
fn postgres_target_honours_the_bench_semantics() {
    if !peers_enabled("postgres_target_honours_the_bench_semantics") {
        return;
    }
    runtime().block_on(async {
        let modes = [
            ("fn", "relaxed", "synchronous_commit=off"),
            ("txn", "relaxed", "synchronous_commit=off"),
            ("fn", "durable", "synchronous_commit=on"),
            ("txn", "durable", "synchronous_commit=on"),
            ("fn-skiplocked", "durable", "synchronous_commit=on"),
        ];
        for (mode, durability, setting) in modes {
            let args = run_args(&["--target", "postgres", "--pg-mode", mode, "--durability", durability]);
            let target = PostgresTarget::new(&args).await.unwrap();
            assert_label(&target.label(), "postgres", mode, setting, durability == "durable");
            check_semantics(&target).await;
            let counters = target.durability_counters().await.unwrap();
            let counters = counters.expect("pg_stat_wal counts fdatasync on the bench's server");
            assert!(counters.fsync_micros.is_some(), "peers-setup.sh turns track_wal_io_timing on");
            println!("{mode}/{durability}: {counters:?}");
        }
    });
}

#[test]
fn redis_target_honours_the_bench_semantics() {
    if !peers_enabled("redis_target_honours_the_bench_semantics") {
        return;
    }
    runtime().block_on(async {
        // Durable last, so the server is left with `appendfsync always`.
        for (durability, setting) in [("relaxed", "appendfsync=everysec"), ("durable", "appendfsync=always")]
        {
            let args = run_args(&["--target", "redis", "--durability", durability]);
            let target = RedisTarget::new(&args).await.unwrap();
            assert_label(&target.label(), "redis", "lua", setting, durability == "durable");
            check_semantics(&target).await;
            assert_eq!(target.durability_counters().await.unwrap(), None);
        }
    });
}
