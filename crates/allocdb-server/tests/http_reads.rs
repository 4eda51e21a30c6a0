//! The read routes over HTTP: found, not found, retired, the `min_lsn` fence, and reads served
//! at once from the applied state while a write's group is still syncing.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use std::time::{Duration, Instant};

use allocdb_storage::SimDirectory;
use serde_json::json;
use support::faulty_directory::FaultyDirectory;
use support::{TestServer, assert_committed, assert_rejected};

#[test]
fn resource_reads_show_state_version_and_served_lsn() {
    let server = TestServer::start();
    server.create(&[5]);
    let resource = server.get("/v1/resources/5");
    assert_eq!(resource.status, 200);
    let body = resource.json();
    assert_eq!(body["resource_id"], "5");
    assert_eq!(body["state"], "available");
    assert_eq!(body["version"], 1);
    assert!(body.get("current_lease_id").is_none(), "{body}");
    let (lease_id, _) = server.reserve(&[5], 7);
    let body = server.get("/v1/resources/5").json();
    assert_eq!(body["state"], "reserved");
    assert_eq!(body["current_lease_id"], lease_id.as_str());
    assert_eq!(body["version"], 2);
    assert_eq!(body["served_lsn"].as_u64().unwrap(), server.applied_lsn());

    let missing = server.get("/v1/resources/6");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "resource_not_found");
    assert!(missing.json()["served_lsn"].is_u64());
}

#[test]
fn lease_reads_show_every_field() {
    let server = TestServer::start();
    server.create(&[1, 2]);
    let (lease_id, _) = server.reserve(&[2, 1], 7);
    let lease = server.get(&format!("/v1/leases/{lease_id}"));
    assert_eq!(lease.status, 200);
    let body = lease.json();
    assert_eq!(body["lease_id"], lease_id.as_str());
    assert_eq!(body["holder_id"], "7");
    assert_eq!(body["state"], "reserved");
    assert_eq!(body["lease_epoch"], 1);
    assert_eq!(body["created_lsn"].as_u64().unwrap().to_string(), lease_id, "single shard: lease id = lsn");
    assert!(body["deadline_slot"].is_u64());
    assert!(body.get("released_lsn").is_none());
    assert_eq!(body["resource_ids"], json!(["2", "1"]));

    let missing = server.get("/v1/leases/999999");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "lease_not_found");
}

#[test]
fn min_lsn_fence_serves_only_after_that_lsn_is_applied() {
    let server = TestServer::start();
    let created = assert_committed(&server.post("/v1/resources", &json!({"resource_id": "1"})), 200, "ok");
    let lsn = created["applied_lsn"].as_u64().unwrap();
    let served = server.get(&format!("/v1/resources/1?min_lsn={lsn}"));
    assert_eq!(served.status, 200);
    assert!(served.json()["served_lsn"].as_u64().unwrap() >= lsn);

    let ahead = lsn + 1_000;
    for path in [format!("/v1/resources/1?min_lsn={ahead}"), format!("/v1/leases/1?min_lsn={ahead}")] {
        let fenced = server.get(&path);
        let body = assert_rejected(&fenced, 503, "definite", "fence_not_applied");
        assert_eq!(fenced.header("retry-after"), Some("1"));
        assert_eq!(body["applied_lsn"].as_u64().unwrap(), server.applied_lsn());
    }
}

/// A terminal lease reads `lease_retired` (410) once its history window has passed, for writes
/// and reads alike. The window is two slots here; the loop issues writes (which advance the
/// node's slot) until the lease reads retired, bounded by a deadline.
#[test]
fn terminal_lease_past_its_history_window_is_retired() {
    let server = TestServer::start_with(|config| config.limits.history_window_ms = 20);
    server.create(&[1]);
    let (lease_id, epoch) = server.reserve(&[1], 7);
    let release = format!("/v1/leases/{lease_id}/release");
    assert_committed(&server.post(&release, &json!({"holder_id": "7", "lease_epoch": epoch})), 200, "ok");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = server.post(&release, &json!({"holder_id": "7", "lease_epoch": epoch + 1}));
        if reply.status == 410 {
            assert_committed(&reply, 410, "lease_retired");
            break;
        }
        assert_committed(&reply, 409, "invalid_state");
        assert!(Instant::now() < deadline, "the lease never read as retired");
    }
    let read = server.get(&format!("/v1/leases/{lease_id}"));
    assert_eq!(read.status, 410);
    assert_eq!(read.json()["error"], "lease_retired");
}

/// A read does not wait for the group in flight: while a reserve's log sync is held, reads of
/// its resource are answered at once from the applied state (still `available`, served at the
/// lsn before the reserve), and a fence at the next lsn is refused `fence_not_applied` at once.
/// Once the disk answers, the reserve is acknowledged and a read fenced at its lsn shows it.
#[test]
fn reads_are_served_from_the_applied_state_while_a_write_is_syncing() {
    let (storage, faults) = FaultyDirectory::new(SimDirectory::new());
    let server = TestServer::start_over(tempfile::tempdir().unwrap(), storage, |_| {});
    server.create(&[1]);
    let before = server.applied_lsn();
    let hold = faults.hold_syncs();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            server.post("/v1/leases", &json!({"resource_ids": ["1"], "holder_id": "7", "ttl_ms": 60_000}))
        });
        faults.wait_for_held_sync(Duration::from_secs(30));

        let read = server.get("/v1/resources/1");
        assert_eq!(read.status, 200, "{}", read.text());
        let body = read.json();
        assert_eq!((&body["state"], &body["served_lsn"]), (&json!("available"), &json!(before)), "{body}");
        let fenced = server.get(&format!("/v1/resources/1?min_lsn={}", before + 1));
        let refused = assert_rejected(&fenced, 503, "definite", "fence_not_applied");
        assert_eq!(refused["applied_lsn"], before, "{refused}");

        drop(hold);
        let reserved = assert_committed(&writer.join().unwrap(), 200, "ok");
        let lsn = reserved["applied_lsn"].as_u64().unwrap();
        assert!(lsn > before, "{reserved}");
        let body = server.get(&format!("/v1/resources/1?min_lsn={lsn}")).json();
        assert_eq!((&body["state"], &body["current_lease_id"]), (&json!("reserved"), &reserved["lease_id"]));
    });
}

/// While the disk holds a sync and the next group is full, the engine waits for that sync and
/// takes nothing more from its queue. Status and metrics still answer at once, from the state
/// the engine published after its last group: healthy (a slow disk is not a halt), with the
/// queued commands counted. A read the engine cannot serve within `commit_timeout_ms` is
/// refused 503 `overloaded` with a message naming that timeout, not a full queue. Once the
/// disk answers, everything queued commits.
#[test]
fn a_stalled_disk_leaves_status_and_metrics_answering_and_names_the_read_timeout() {
    const COMMIT_TIMEOUT_MS: u64 = 300;
    let (storage, faults) = FaultyDirectory::new(SimDirectory::new());
    let server = TestServer::start_over(tempfile::tempdir().unwrap(), storage, |config| {
        config.network.commit_timeout_ms = COMMIT_TIMEOUT_MS;
        config.limits.batch_size_max = 2;
    });
    server.create(&[1, 2, 3]);
    let before = server.applied_lsn();
    let reserve =
        |id: &str| json!({"op": "reserve", "resource_ids": [id], "holder_id": "7", "ttl_ms": 60_000});
    let commands = json!({"commands": [reserve("2"), reserve("3")]});
    let hold = faults.hold_syncs();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            server.post("/v1/leases", &json!({"resource_ids": ["1"], "holder_id": "7", "ttl_ms": 60_000}))
        });
        faults.wait_for_held_sync(Duration::from_secs(30));
        // Two commands fill the next group (batch_size_max = 2): the engine now waits for the
        // held sync before it takes anything else.
        let batch = scope.spawn(|| server.post("/v1/batch", &commands));
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            let status = server.get("/v1/status").json();
            if status["queued_commands"] == 3 {
                break status;
            }
            assert!(Instant::now() < deadline, "the three commands never queued: {status}");
            std::thread::yield_now();
        };
        assert_eq!((&status["health"], &status["applied_lsn"]), (&json!("ok"), &json!(before)), "{status}");
        let metrics = server.get("/metrics").text();
        for line in ["allocdb_engine_halted 0", "allocdb_submission_queue_depth 3"] {
            assert!(metrics.contains(line), "{line} missing from\n{metrics}");
        }

        let read = server.get("/v1/resources/1");
        let refused = assert_rejected(&read, 503, "definite", "overloaded");
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains(&format!("commit_timeout_ms ({COMMIT_TIMEOUT_MS} ms)")), "{refused}");

        drop(hold);
        // Both writes outlasted the commit timeout while the sync was held (504, indefinite).
        assert_eq!(first.join().unwrap().status, 504);
        assert_eq!(batch.join().unwrap().status, 200, "a batch reports each command's outcome");
    });
    // Groups apply in log order: this write is answered after the held ones are applied.
    server.create(&[4]);
    for id in 1..=3 {
        let body = server.get(&format!("/v1/resources/{id}")).json();
        assert_eq!(body["state"], "reserved", "{body}");
    }
}
