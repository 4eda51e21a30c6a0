//! The real binary under hostile clients: oversized bodies, a bundle claiming a million
//! members, garbage JSON and idle keep-alive connections. Each gets a clean 4xx (or is cut
//! off), nothing reaches the log, and a well-behaved client keeps being served throughout.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use std::io::{BufReader, Write};

use serde_json::json;
use support::ServerProcess;
use support::http_client::{connect, read_reply, request, send};

#[test]
fn hostile_clients_leave_the_server_serving_others() {
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("allocdb.toml");
    // Room for the million-member body (4 MB) so the bundle bound, not the body bound, answers.
    std::fs::write(&config, "[network]\nhttp_body_bytes_max = 8388608\n").unwrap();
    let data_dir = directory.path().join("data");
    let mut server = ServerProcess::start(&data_dir, &["--config", config.to_str().unwrap()]);
    assert_eq!(server.post("/v1/resources", &json!({"resource_id": "1"})).status, 200);
    let applied_lsn = server.applied_lsn();

    // Idle keep-alive connections, some after one request, some with half a request head.
    let mut idle = Vec::new();
    for index in 0..30 {
        let mut stream = connect(server.http);
        if index % 3 == 0 {
            send(&mut stream, "GET", "/healthz", &[], None).unwrap();
            let reply = read_reply(&mut BufReader::new(stream.try_clone().unwrap())).unwrap().unwrap();
            assert_eq!(reply.status, 200);
        } else if index % 3 == 1 {
            stream.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n").unwrap();
        }
        idle.push(stream);
    }

    // A 16 MiB body, declared up front: refused from the headers.
    let mut stream = connect(server.http);
    let sixteen_mib = (16 << 20).to_string();
    let headers = [("Content-Type", "application/json"), ("Content-Length", sixteen_mib.as_str())];
    send(&mut stream, "POST", "/v1/leases", &headers, None).unwrap();
    let refused = read_reply(&mut BufReader::new(stream)).unwrap().unwrap();
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert_eq!(refused.json()["error"], "too_large");

    // A bundle claiming a million members.
    let members = vec!["\"1\""; 1_000_000].join(",");
    let body = format!("{{\"holder_id\":\"7\",\"ttl_ms\":1000,\"resource_ids\":[{members}]}}");
    let reply = request(
        server.http,
        "POST",
        "/v1/leases",
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.json()["error"], "too_large");

    // Garbage JSON.
    for garbage in [
        &b"{\"resource_id\": \"1\""[..],
        b"\xff\xfe\x00garbage",
        b"{\"resource_id\": {\"nested\": [1, 2, 3]}}",
    ] {
        let reply = request(
            server.http,
            "POST",
            "/v1/resources",
            &[("Content-Type", "application/json")],
            Some(garbage),
        );
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert_eq!(reply.json()["error"], "malformed");
    }

    // A well-behaved client is served as usual while the idle connections stay open.
    assert_eq!(server.post("/v1/resources", &json!({"resource_id": "2"})).status, 200);
    let reserve = json!({"resource_ids": ["1", "2"], "holder_id": "9", "ttl_ms": 60_000});
    assert_eq!(server.post("/v1/leases", &reserve).status, 200);
    assert_eq!(server.applied_lsn(), applied_lsn + 2, "only the two good writes were logged");
    assert!(server.is_running());
    drop(idle);
    assert_eq!(server.get("/readyz").status, 200);
}
