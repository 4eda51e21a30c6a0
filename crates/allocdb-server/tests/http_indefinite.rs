//! Indefinite outcomes over HTTP, made to happen for real: the real router and the real engine
//! over a log directory that injects the fault (`Server::bind_over`), never a mocked engine.
//!
//! For each of `commit_timeout` (504), `storage_failure` (500) and `engine_halted` (503) the
//! tests check the whole answer — status, `"outcome": "rejected"`, `"category": "indefinite"`,
//! `"error"`, one-sentence `"message"`, the `"operation_id"` to retry with, no `Retry-After` —
//! and then what semantics.md promises for a retry with the same `Idempotency-Key`: the
//! original result if the write took effect, exactly one execution if it did not, never two.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use std::time::Duration;

use allocdb_storage::SimDirectory;
use serde_json::{Value, json};
use support::faulty_directory::FaultyDirectory;
use support::{TestServer, assert_committed, assert_rejected};

/// Longest a test waits for the engine to reach a held sync.
const HELD_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// The commit timeout of the timeout test: short, since every write under test outlasts it.
const COMMIT_TIMEOUT_MS: u64 = 200;

fn reserve_body(resource_id: &str, holder_id: &str) -> Value {
    json!({"resource_ids": [resource_id], "holder_id": holder_id, "ttl_ms": 60_000})
}

/// Posts a reserve under `key`.
fn reserve(
    server: &TestServer,
    resource_id: &str,
    holder_id: &str,
    key: &str,
) -> support::http_client::Reply {
    server.post_with("/v1/leases", &reserve_body(resource_id, holder_id), &[("Idempotency-Key", key)])
}

/// Asserts an indefinite rejection carrying `operation_id` and no `Retry-After`.
fn assert_indefinite(
    reply: &support::http_client::Reply,
    status: u16,
    error: &str,
    operation_id: &str,
) -> Value {
    let body = assert_rejected(reply, status, "indefinite", error);
    assert_eq!(body["operation_id"], operation_id, "{body}");
    assert_eq!(reply.header("retry-after"), None, "{body}");
    body
}

/// The resource as the node reads it after `min_lsn`.
fn resource(server: &TestServer, resource_id: &str, min_lsn: u64) -> Value {
    let reply = server.get(&format!("/v1/resources/{resource_id}?min_lsn={min_lsn}"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// A reserve whose log sync stalls past `commit_timeout_ms` is answered 504 `commit_timeout`,
/// indefinite, while it is still in flight — and it does commit once the disk answers: the
/// retry with the same key then returns that one commit from the operation table instead of
/// reserving a second lease, and logs nothing.
#[test]
fn write_outlasting_the_commit_timeout_is_504_and_its_retry_returns_the_single_commit() {
    let (storage, faults) = FaultyDirectory::new(SimDirectory::new());
    let server = TestServer::start_over(tempfile::tempdir().unwrap(), storage, |config| {
        config.network.commit_timeout_ms = COMMIT_TIMEOUT_MS;
    });
    server.create(&[1]);

    let hold = faults.hold_syncs();
    let timed_out = reserve(&server, "1", "7", "501");
    let body = assert_indefinite(&timed_out, 504, "commit_timeout", "501");
    assert!(body["message"].as_str().unwrap().contains(&format!("{COMMIT_TIMEOUT_MS} ms")), "{body}");
    // The 504 came while the write's sync was still held: its outcome really was open.
    faults.wait_for_held_sync(HELD_SYNC_TIMEOUT);
    drop(hold);
    // Groups are applied in log order, so a write submitted now is answered only after the
    // held write's group is applied: a barrier, not a wait. (A read is no barrier: it is served
    // at once from the applied state. A retry racing its original's sync would be logged a
    // second time and answered from the operation table when applied; `docs/engine.md`.)
    server.create(&[2]);
    let logged_lsn = server.applied_lsn();

    let retried = assert_committed(&reserve(&server, "1", "7", "501"), 200, "ok");
    assert_eq!(retried["from_retry_cache"], true, "{retried}");
    assert_eq!(retried["operation_id"], "501", "{retried}");
    let lease_id = retried["lease_id"].as_str().unwrap().to_owned();
    let applied_lsn = retried["applied_lsn"].as_u64().unwrap();
    assert!(applied_lsn < logged_lsn, "the original committed before the barrier: {retried}");
    assert_eq!(server.applied_lsn(), logged_lsn, "the retry logged nothing");

    let again = assert_committed(&reserve(&server, "1", "7", "501"), 200, "ok");
    assert_eq!((&again["lease_id"], &again["applied_lsn"]), (&json!(lease_id), &json!(applied_lsn)));
    let read = resource(&server, "1", applied_lsn);
    assert_eq!((&read["state"], &read["current_lease_id"]), (&json!("reserved"), &json!(lease_id)));
    assert_committed(&reserve(&server, "1", "8", "502"), 409, "resource_busy");
    let metrics = server.get("/metrics").text();
    assert!(
        metrics.contains("allocdb_rejections_total{category=\"indefinite\",error=\"commit_timeout\"} 1"),
        "{metrics}"
    );
}

/// A failed log sync answers the writes in its group 500 `storage_failure` and halts the
/// engine: every later write, single or in a batch, is 503 `engine_halted`, reads fail closed
/// and `/readyz` says `halted`. The record never became durable, so after a power cut and a
/// restart the retry with the same key executes it — once: a second retry is answered from
/// the operation table.
#[test]
fn failed_sync_is_500_then_503_halted_and_after_restart_the_lost_write_executes_once() {
    let simulated = SimDirectory::new();
    // Wrapped only so that no spare segment takes the injected failure (see `FaultyDirectory`).
    let (storage, _) = FaultyDirectory::new(simulated.clone());
    let server = TestServer::start_over(tempfile::tempdir().unwrap(), storage, |_| {});
    server.create(&[1]);
    let applied_before = server.applied_lsn();

    simulated.fail_sync_in(1);
    assert_indefinite(&reserve(&server, "1", "7", "601"), 500, "storage_failure", "601");
    assert_indefinite(&reserve(&server, "1", "7", "601"), 503, "engine_halted", "601");
    let create =
        server.post_with("/v1/resources", &json!({"resource_id": "2"}), &[("Idempotency-Key", "602")]);
    assert_indefinite(&create, 503, "engine_halted", "602");
    let batch = server.post(
        "/v1/batch",
        &json!({"commands": [{"op": "create_resource", "resource_id": "3", "operation_id": "603"}]}),
    );
    assert_eq!(batch.status, 200, "{}", batch.text());
    let result = &batch.json()["results"][0];
    assert_eq!(
        (&result["status"], &result["category"], &result["error"], &result["operation_id"]),
        (&json!(503), &json!("indefinite"), &json!("engine_halted"), &json!("603")),
        "{result}"
    );
    assert_rejected(&server.get("/v1/resources/1"), 503, "indefinite", "engine_halted");
    let ready = server.get("/readyz");
    assert_eq!((ready.status, ready.json()["status"].clone()), (503, json!("halted")));
    assert!(server.get("/metrics").text().contains("allocdb_engine_halted 1"));

    let directory = server.stop();
    simulated.crash().unwrap();
    let server = TestServer::start_over(directory, simulated.clone(), |_| {});
    assert_eq!(server.applied_lsn(), applied_before, "the failed group was not durable");

    let executed = assert_committed(&reserve(&server, "1", "7", "601"), 200, "ok");
    assert_eq!(executed["from_retry_cache"], false, "{executed}");
    let answered = assert_committed(&reserve(&server, "1", "7", "601"), 200, "ok");
    assert_eq!(answered["from_retry_cache"], true, "{answered}");
    assert_eq!(
        (&answered["lease_id"], &answered["applied_lsn"]),
        (&executed["lease_id"], &executed["applied_lsn"])
    );
    assert_eq!(server.applied_lsn(), executed["applied_lsn"].as_u64().unwrap());
    assert_committed(&reserve(&server, "1", "8", "604"), 409, "resource_busy");
}

/// A sync that made the record durable but reported failure is still answered 500
/// `storage_failure` (the engine cannot know better); after a power cut and a restart the
/// record is recovered, and the retry with the same key returns its original result from the
/// operation table instead of executing again.
#[test]
fn storage_failure_whose_record_was_durable_is_answered_from_the_log_after_restart() {
    let simulated = SimDirectory::new();
    let (storage, faults) = FaultyDirectory::new(simulated.clone());
    let server = TestServer::start_over(tempfile::tempdir().unwrap(), storage, |_| {});
    server.create(&[1]);
    let applied_before = server.applied_lsn();

    faults.fail_next_sync_after_it_completes();
    assert_indefinite(&reserve(&server, "1", "7", "701"), 500, "storage_failure", "701");
    assert_indefinite(&reserve(&server, "1", "7", "701"), 503, "engine_halted", "701");

    let directory = server.stop();
    simulated.crash().unwrap();
    let server = TestServer::start_over(directory, simulated.clone(), |_| {});
    let recovered_lsn = server.applied_lsn();
    assert_eq!(recovered_lsn, applied_before + 1, "the reserve's record survived the crash");

    let answered = assert_committed(&reserve(&server, "1", "7", "701"), 200, "ok");
    assert_eq!(answered["from_retry_cache"], true, "{answered}");
    assert_eq!(answered["applied_lsn"], recovered_lsn, "{answered}");
    assert_eq!(server.applied_lsn(), recovered_lsn, "the retry logged nothing");
    let read = resource(&server, "1", recovered_lsn);
    assert_eq!((&read["state"], &read["current_lease_id"]), (&json!("reserved"), &answered["lease_id"]));
}
