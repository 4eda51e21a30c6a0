//! The write routes over HTTP: every committed result code a single node can produce through
//! them, with the status code of interfaces.md §2, the lease lifecycle, idempotent retries and
//! batches.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use serde_json::json;
use support::{TestServer, assert_committed, assert_rejected};

fn reserve_body(resource_ids: &[&str], holder_id: &str, ttl_ms: u64) -> serde_json::Value {
    json!({"resource_ids": resource_ids, "holder_id": holder_id, "ttl_ms": ttl_ms})
}

#[test]
fn create_and_reserve_report_every_domain_failure_with_its_status() {
    let server = TestServer::start();
    server.create(&[1, 2, 3]);
    assert_committed(&server.post("/v1/resources", &json!({"resource_id": "1"})), 409, "already_exists");

    let reserved =
        assert_committed(&server.post("/v1/leases", &reserve_body(&["1", "2"], "7", 60_000)), 200, "ok");
    assert!(reserved["lease_id"].is_string());
    assert_eq!(reserved["lease_epoch"], 1);
    assert!(reserved["deadline_slot"].as_u64().unwrap() > 0);

    let cases = [
        (reserve_body(&["2", "3"], "8", 60_000), 409, "resource_busy"),
        (reserve_body(&["9"], "8", 60_000), 404, "resource_not_found"),
        (reserve_body(&["3", "3"], "8", 60_000), 422, "duplicate_resource"),
        (reserve_body(&["3"], "8", 0), 422, "ttl_out_of_range"),
        (reserve_body(&["3"], "8", 3_600_001), 422, "ttl_out_of_range"),
        (reserve_body(&["3", "4", "5", "6", "7"], "8", 60_000), 422, "bundle_too_large"),
    ];
    for (body, status, result) in cases {
        let committed = assert_committed(&server.post("/v1/leases", &body), status, result);
        assert!(committed.get("lease_id").is_none(), "{committed}");
    }
    // Resource 3 is still free after all those failures: nothing partial was applied.
    server.reserve(&[3], 8);
}

#[test]
fn empty_and_oversized_bundles_are_refused_before_the_log() {
    let server = TestServer::start();
    server.create(&[1]);
    let applied_lsn = server.applied_lsn();
    let empty = assert_rejected(
        &server.post("/v1/leases", &reserve_body(&[], "7", 1_000)),
        422,
        "definite",
        "empty_bundle",
    );
    assert!(empty["operation_id"].is_string(), "{empty}");
    let members: Vec<String> = (0..1_025).map(|index: u32| index.to_string()).collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let too_large = assert_rejected(
        &server.post("/v1/leases", &reserve_body(&members, "7", 1_000)),
        413,
        "definite",
        "too_large",
    );
    assert!(too_large["message"].as_str().unwrap().contains("1025"), "{too_large}");
    assert_eq!(server.applied_lsn(), applied_lsn);
}

#[test]
fn lease_lifecycle_reserve_activate_revoke_reclaim_and_release() {
    let server = TestServer::start();
    server.create(&[1, 2]);
    let (lease_id, epoch) = server.reserve(&[1, 2], 7);
    let activate = format!("/v1/leases/{lease_id}/activate");
    let holder =
        |holder_id: &str, lease_epoch: u64| json!({"holder_id": holder_id, "lease_epoch": lease_epoch});

    assert_committed(&server.post(&activate, &holder("8", epoch)), 409, "holder_mismatch");
    assert_committed(&server.post(&activate, &holder("7", epoch + 1)), 409, "stale_epoch");
    let activated = assert_committed(&server.post(&activate, &holder("7", epoch)), 200, "ok");
    assert_eq!(activated["lease_id"], lease_id.as_str());
    assert_eq!(activated["lease_epoch"], 1, "activate keeps the epoch");
    assert_committed(&server.post(&activate, &holder("7", epoch)), 409, "invalid_state");
    assert_eq!(server.get("/v1/resources/1").json()["state"], "active");

    assert_committed(
        &server.post(&format!("/v1/leases/{lease_id}/reclaim"), &json!({})),
        409,
        "invalid_state",
    );
    let revoked =
        assert_committed(&server.post(&format!("/v1/leases/{lease_id}/revoke"), &json!({})), 200, "ok");
    assert_eq!(revoked["lease_epoch"], 2);
    assert_eq!(server.get("/v1/resources/2").json()["state"], "revoking");
    // The revoked holder is fenced: its epoch is stale now.
    assert_committed(
        &server.post(&format!("/v1/leases/{lease_id}/release"), &holder("7", 1)),
        409,
        "stale_epoch",
    );
    assert_committed(&server.post(&format!("/v1/leases/{lease_id}/reclaim"), &json!({})), 200, "ok");
    assert_eq!(server.get("/v1/resources/1").json()["state"], "available");

    let (second, epoch) = server.reserve(&[1], 9);
    let release = format!("/v1/leases/{second}/release");
    let released = assert_committed(&server.post(&release, &holder("9", epoch)), 200, "ok");
    assert_eq!(released["lease_epoch"], 2);
    assert_committed(&server.post(&release, &holder("9", 2)), 409, "invalid_state");
    assert_eq!(server.get(&format!("/v1/leases/{second}")).json()["state"], "released");

    assert_committed(&server.post("/v1/leases/999999/release", &holder("9", 1)), 404, "lease_not_found");
    assert_committed(&server.post("/v1/leases/999999/revoke", &json!({})), 404, "lease_not_found");
}

#[test]
fn operator_commands_accept_an_empty_body() {
    let server = TestServer::start();
    server.create(&[1]);
    let (lease_id, epoch) = server.reserve(&[1], 7);
    let activate = json!({"holder_id": "7", "lease_epoch": epoch});
    assert_committed(&server.post(&format!("/v1/leases/{lease_id}/activate"), &activate), 200, "ok");
    let reply = support::http_client::request(
        server.address,
        "POST",
        &format!("/v1/leases/{lease_id}/revoke"),
        &[],
        None,
    );
    assert_committed(&reply, 200, "ok");
}

#[test]
fn uuid_ids_are_accepted_and_rendered_as_decimal() {
    let server = TestServer::start();
    let created =
        server.post("/v1/resources", &json!({"resource_id": "00000000-0000-0000-0000-000000000100"}));
    assert_committed(&created, 200, "ok");
    let resource = server.get("/v1/resources/256").json();
    assert_eq!(resource["resource_id"], "256");
    let by_uuid = server.get("/v1/resources/00000000-0000-0000-0000-000000000100");
    assert_eq!(by_uuid.status, 200);
}

#[test]
fn same_idempotency_key_returns_the_original_outcome() {
    let server = TestServer::start();
    server.create(&[1, 2]);
    let body = reserve_body(&["1"], "7", 60_000);
    let key = [("Idempotency-Key", "123456789")];
    let first = assert_committed(&server.post_with("/v1/leases", &body, &key), 200, "ok");
    assert_eq!(first["from_retry_cache"], false);
    assert_eq!(first["operation_id"], "123456789");
    let lsn_after_first = server.applied_lsn();

    let retry = assert_committed(&server.post_with("/v1/leases", &body, &key), 200, "ok");
    assert_eq!(retry["from_retry_cache"], true);
    for field in ["lease_id", "lease_epoch", "deadline_slot", "applied_lsn", "operation_id"] {
        assert_eq!(retry[field], first[field], "{field}");
    }
    // The body field names the same operation.
    let mut with_field = body.clone();
    with_field["operation_id"] = json!("123456789");
    assert_eq!(
        assert_committed(&server.post("/v1/leases", &with_field), 200, "ok")["from_retry_cache"],
        true
    );
    assert_eq!(server.applied_lsn(), lsn_after_first, "retries log nothing");

    let mut other_holder = body.clone();
    other_holder["holder_id"] = json!("8");
    assert_committed(&server.post_with("/v1/leases", &other_holder, &key), 409, "operation_conflict");

    // Another client's identical operation id is another operation.
    let mut other_client = body.clone();
    other_client["client_id"] = json!("42");
    let fresh = assert_committed(&server.post_with("/v1/leases", &other_client, &key), 409, "resource_busy");
    assert_eq!(fresh["from_retry_cache"], false);
}

#[test]
fn domain_failures_are_remembered_for_retries_too() {
    let server = TestServer::start();
    server.create(&[1]);
    let key = [("Idempotency-Key", "00000000-0000-0000-0000-0000000000aa")];
    let first = assert_committed(
        &server.post_with("/v1/resources", &json!({"resource_id": "1"}), &key),
        409,
        "already_exists",
    );
    let retry = assert_committed(
        &server.post_with("/v1/resources", &json!({"resource_id": "1"}), &key),
        409,
        "already_exists",
    );
    assert_eq!(retry["from_retry_cache"], true);
    assert_eq!(retry["applied_lsn"], first["applied_lsn"]);
    assert_eq!(first["operation_id"], "170");
}

#[test]
fn generated_operation_id_is_returned_and_retryable() {
    let server = TestServer::start();
    server.create(&[1]);
    let first = assert_committed(&server.post("/v1/leases", &reserve_body(&["1"], "7", 60_000)), 200, "ok");
    let operation_id = first["operation_id"].as_str().unwrap().to_owned();
    assert!(operation_id.parse::<u128>().is_ok(), "{operation_id}");
    let retry = server.post_with(
        "/v1/leases",
        &reserve_body(&["1"], "7", 60_000),
        &[("Idempotency-Key", operation_id.as_str())],
    );
    let retry = assert_committed(&retry, 200, "ok");
    assert_eq!(retry["from_retry_cache"], true);
    assert_eq!(retry["lease_id"], first["lease_id"]);
}

#[test]
fn disagreeing_idempotency_key_and_body_operation_id_is_malformed() {
    let server = TestServer::start();
    let applied_lsn = server.applied_lsn();
    let reply = server.post_with(
        "/v1/resources",
        &json!({"resource_id": "1", "operation_id": "5"}),
        &[("Idempotency-Key", "6")],
    );
    assert_rejected(&reply, 400, "definite", "malformed");
    let reply =
        server.post_with("/v1/resources", &json!({"resource_id": "1"}), &[("Idempotency-Key", "not-an-id")]);
    assert_rejected(&reply, 400, "definite", "malformed");
    assert_eq!(server.applied_lsn(), applied_lsn);
}

#[test]
fn batch_answers_every_command_in_order_in_one_group() {
    let server = TestServer::start();
    let batch = json!({"commands": [
        {"op": "create_resource", "resource_id": "11"},
        {"op": "create_resource", "resource_id": "12"},
        {"op": "reserve", "resource_ids": ["11", "12"], "holder_id": "7", "ttl_ms": 60_000,
         "operation_id": "900"},
        {"op": "reserve", "resource_ids": ["11"], "holder_id": "8", "ttl_ms": 60_000},
        {"op": "create_resource", "resource_id": "11"},
        {"op": "reserve", "resource_ids": [], "holder_id": "8", "ttl_ms": 60_000},
        {"op": "release", "lease_id": "999999", "holder_id": "8", "lease_epoch": 1},
        {"op": "revoke", "lease_id": "999999"},
    ]});
    let reply = server.post("/v1/batch", &batch);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let results = reply.json()["results"].as_array().unwrap().clone();
    let expected = [
        (200, "ok"),
        (200, "ok"),
        (200, "ok"),
        (409, "resource_busy"),
        (409, "already_exists"),
        (422, "empty_bundle"),
        (404, "lease_not_found"),
        (404, "lease_not_found"),
    ];
    assert_eq!(results.len(), expected.len());
    let mut previous_lsn = 0;
    for (result, (status, code)) in results.iter().zip(expected) {
        assert_eq!(result["status"], status, "{result}");
        let name = if result["outcome"] == "committed" { &result["result"] } else { &result["error"] };
        assert_eq!(name, code, "{result}");
        if let Some(lsn) = result["applied_lsn"].as_u64() {
            assert!(lsn > previous_lsn, "results keep log order: {results:?}");
            previous_lsn = lsn;
        }
    }
    assert_eq!(results[2]["operation_id"], "900");
    let lease_id = results[2]["lease_id"].as_str().unwrap();
    assert_eq!(server.get(&format!("/v1/leases/{lease_id}")).json()["resource_ids"], json!(["11", "12"]));

    // The same batch again: the keyed reserve comes from the retry cache.
    let again = server.post("/v1/batch", &batch).json();
    assert_eq!(again["results"][2]["from_retry_cache"], true);
    assert_eq!(again["results"][2]["lease_id"], lease_id);
}

#[test]
fn batch_bounds_and_keys_are_checked_before_anything_runs() {
    let server = TestServer::start();
    let applied_lsn = server.applied_lsn();
    let commands: Vec<_> = (0..65)
        .map(|index: u32| json!({"op": "create_resource", "resource_id": index.to_string()}))
        .collect();
    assert_rejected(&server.post("/v1/batch", &json!({"commands": commands})), 413, "definite", "too_large");
    let one = json!({"commands": [{"op": "create_resource", "resource_id": "1"}]});
    assert_rejected(
        &server.post_with("/v1/batch", &one, &[("Idempotency-Key", "5")]),
        400,
        "definite",
        "malformed",
    );
    assert_rejected(
        &server.post("/v1/batch", &json!({"commands": [{"op": "explode"}]})),
        400,
        "definite",
        "malformed",
    );
    assert_rejected(
        &server.post("/v1/batch", &json!({"commands": [{"op": "revoke", "lease_id": "1", "epoch": 1}]})),
        400,
        "definite",
        "malformed",
    );
    assert_eq!(server.applied_lsn(), applied_lsn);
    let empty = server.post("/v1/batch", &json!({"commands": []}));
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["results"], json!([]));
}
