//! Operational routes (status, health, readiness, metrics, the `OpenAPI` document), capacity
//! answers (507), overload (503), and a graceful stop that keeps every acknowledged write.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use serde_json::json;
use support::{TestServer, assert_committed, assert_rejected};

#[test]
fn status_health_and_readiness() {
    let server = TestServer::start();
    server.create(&[1]);
    let created = assert_committed(&server.post("/v1/resources", &json!({"resource_id": "2"})), 200, "ok");
    let status = server.get("/v1/status");
    assert_eq!(status.status, 200);
    let body = status.json();
    assert_eq!(body["node_id"], 1);
    assert_eq!(body["role"], "standalone");
    assert_eq!(body["health"], "ok");
    assert_eq!(body["applied_lsn"], created["applied_lsn"]);
    assert_eq!(body["commit_lsn"], created["applied_lsn"]);
    assert!(body["current_slot"].as_u64().unwrap() >= body["last_request_slot"].as_u64().unwrap());
    assert_eq!(body["tables"]["resources"], json!({"used": 2, "capacity": 64}));
    for table in ["leases", "lease_members", "operations", "expirations"] {
        assert!(body["tables"][table]["capacity"].as_u64().unwrap() > 0, "{table}");
    }
    let healthz = server.get("/healthz");
    assert_eq!((healthz.status, healthz.json()["status"].clone()), (200, json!("ok")));
    let readyz = server.get("/readyz");
    assert_eq!((readyz.status, readyz.json()["status"].clone()), (200, json!("ready")));
}

#[test]
fn metrics_expose_every_single_node_name() {
    let server = TestServer::start();
    server.create(&[1]);
    server.reserve(&[1], 7);
    assert_committed(&server.post("/v1/resources", &json!({"resource_id": "1"})), 409, "already_exists");
    server.post("/v1/resources", &json!({"resource_id": 1}));
    let applied_lsn_line = format!("allocdb_applied_lsn {}", server.applied_lsn());
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let text = metrics.text();
    for expected in [
        "allocdb_commands_total{command=\"create_resource\",result=\"ok\"} 1",
        "allocdb_commands_total{command=\"create_resource\",result=\"already_exists\"} 1",
        "allocdb_commands_total{command=\"create_resource\",result=\"malformed\"} 1",
        "allocdb_commands_total{command=\"reserve\",result=\"ok\"} 1",
        "allocdb_rejections_total{category=\"definite\",error=\"malformed\"} 1",
        applied_lsn_line.as_str(),
        "allocdb_commit_latency_seconds_count 3",
        "allocdb_fsync_latency_seconds_count",
        "allocdb_group_commit_batch_size_count",
        "allocdb_submission_queue_depth 0",
        "allocdb_table_used{table=\"resources\"} 1",
        "allocdb_table_capacity{table=\"resources\"} 64",
        "allocdb_table_used{table=\"leases\"} 1",
        "allocdb_expiration_backlog 0",
        "allocdb_logical_slot_lag",
        "allocdb_wal_bytes",
        "allocdb_snapshot_lsn 0",
        "allocdb_recovery_replayed_entries 0",
        "allocdb_engine_halted 0",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    let wal_line = text.lines().find(|line| line.starts_with("allocdb_wal_bytes ")).unwrap();
    assert!(wal_line["allocdb_wal_bytes ".len()..].parse::<u64>().unwrap() > 0, "{wal_line}");
}

#[test]
fn openapi_document_lists_every_route() {
    let server = TestServer::start();
    let document = server.get("/openapi.json");
    assert_eq!(document.status, 200);
    let body = document.json();
    assert!(body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = body["paths"].as_object().unwrap();
    for route in [
        "/v1/resources",
        "/v1/leases",
        "/v1/leases/{lease_id}/activate",
        "/v1/leases/{lease_id}/release",
        "/v1/leases/{lease_id}/revoke",
        "/v1/leases/{lease_id}/reclaim",
        "/v1/batch",
        "/v1/resources/{resource_id}",
        "/v1/leases/{lease_id}",
        "/v1/status",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(route), "{route} missing");
    }
    let schemas = body["components"]["schemas"].as_object().unwrap();
    for schema in ["ReserveRequest", "CommittedBody", "RejectedBody", "BatchRequest", "LeaseBody"] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
}

/// Resource, lease and operation tables at capacity answer 507 with their named result.
#[test]
fn full_tables_answer_507() {
    let server = TestServer::start_with(|config| {
        let limits = &mut config.limits;
        limits.resource_count_max = 2;
        limits.lease_count_max = 1;
        limits.lease_member_count_max = 4;
        limits.expiration_bucket_length_max = 1;
        limits.operation_count_max = 8;
    });
    server.create(&[1, 2]);
    assert_committed(&server.post("/v1/resources", &json!({"resource_id": "3"})), 507, "resource_table_full");
    server.reserve(&[1], 7);
    let reserve = json!({"resource_ids": ["2"], "holder_id": "7", "ttl_ms": 60_000});
    assert_committed(&server.post("/v1/leases", &reserve), 507, "lease_table_full");
    // Five operations are remembered; three more fill the table of eight.
    for _ in 0..3 {
        assert_committed(&server.post("/v1/resources", &json!({"resource_id": "1"})), 409, "already_exists");
    }
    assert_committed(
        &server.post("/v1/resources", &json!({"resource_id": "1"})),
        507,
        "operation_table_full",
    );
}

/// The lease member table and a timing-wheel bucket at capacity answer 507 too.
#[test]
fn full_member_table_and_expiration_bucket_answer_507() {
    let server = TestServer::start_with(|config| {
        let limits = &mut config.limits;
        limits.resource_count_max = 8;
        limits.lease_count_max = 4;
        limits.lease_member_count_max = 4;
        limits.expiration_bucket_length_max = 1;
    });
    server.create(&[1, 2, 3, 4, 5, 6, 7]);
    // Two reserves in one batch share a request slot, hence a deadline and a bucket.
    let batch = json!({"commands": [
        {"op": "reserve", "resource_ids": ["1"], "holder_id": "7", "ttl_ms": 1_000},
        {"op": "reserve", "resource_ids": ["2"], "holder_id": "7", "ttl_ms": 1_000},
    ]});
    let results = server.post("/v1/batch", &batch).json()["results"].clone();
    assert_eq!(results[0]["result"], "ok", "{results}");
    assert_eq!(
        (results[1]["status"].clone(), results[1]["result"].clone()),
        (json!(507), json!("expiration_index_full"))
    );
    // Half the wheel's span away from the first bucket (the wheel is circular).
    let long = json!({"resource_ids": ["3", "4", "5"], "holder_id": "7", "ttl_ms": 1_800_000});
    assert_committed(&server.post("/v1/leases", &long), 200, "ok");
    let more = json!({"resource_ids": ["6", "7"], "holder_id": "7", "ttl_ms": 900_000});
    assert_committed(&server.post("/v1/leases", &more), 507, "lease_member_table_full");
}

/// A submission larger than the free queue is refused `overloaded`: definite, nothing logged.
#[test]
fn full_submission_queue_answers_overloaded() {
    let server = TestServer::start_with(|config| config.limits.submission_queue_capacity = 1);
    let applied_lsn = server.applied_lsn();
    let batch = json!({"commands": [
        {"op": "create_resource", "resource_id": "1"},
        {"op": "create_resource", "resource_id": "2"},
    ]});
    let results = server.post("/v1/batch", &batch).json()["results"].clone();
    for result in results.as_array().unwrap() {
        assert_eq!(result["status"], 503, "{result}");
        assert_eq!(result["error"], "overloaded", "{result}");
        assert_eq!(result["category"], "definite", "{result}");
    }
    assert_eq!(server.applied_lsn(), applied_lsn);
    server.create(&[1]);
}

#[test]
fn unknown_routes_and_methods_answer_json() {
    let server = TestServer::start();
    assert_rejected(&server.get("/v2/resources"), 404, "definite", "route_not_found");
    assert_rejected(&server.get("/v1/leases/1/explode"), 404, "definite", "route_not_found");
    assert_rejected(&server.get("/v1/resources/"), 404, "definite", "route_not_found");
    let reply = support::http_client::request(server.address, "DELETE", "/v1/resources/1", &[], None);
    assert_rejected(&reply, 405, "definite", "method_not_allowed");
    assert_rejected(&server.get("/v1/leases"), 405, "definite", "method_not_allowed");
}

/// A graceful stop keeps every acknowledged write and unlocks the data directory.
#[test]
fn graceful_stop_keeps_acknowledged_writes() {
    let server = TestServer::start();
    server.create(&[1, 2]);
    let (lease_id, _) = server.reserve(&[1, 2], 7);
    let applied_lsn = server.applied_lsn();
    let directory = server.stop();
    let restarted = TestServer::start_in(directory, |_| {});
    assert_eq!(restarted.applied_lsn(), applied_lsn);
    let lease = restarted.get(&format!("/v1/leases/{lease_id}?min_lsn={applied_lsn}")).json();
    assert_eq!(lease["state"], "reserved");
    let metrics = restarted.get("/metrics").text();
    let replayed =
        metrics.lines().find(|line| line.starts_with("allocdb_recovery_replayed_entries ")).unwrap();
    let replayed: u64 = replayed["allocdb_recovery_replayed_entries ".len()..].parse().unwrap();
    assert!(replayed >= 3, "the three writes are replayed: {replayed}");
}
