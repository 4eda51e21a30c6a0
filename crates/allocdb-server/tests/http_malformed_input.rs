//! Hostile and malformed input over HTTP: every kind gets a 4xx JSON answer with one sentence,
//! nothing reaches the log, the server stays up, and other clients are unaffected.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use std::io::{BufReader, Read, Write};
use std::time::{Duration, Instant};

use serde_json::json;
use support::http_client::{self, connect, read_reply, request, send};
use support::{TestServer, assert_rejected};

fn post_raw(server: &TestServer, path: &str, content_type: &str, body: &[u8]) -> http_client::Reply {
    request(server.address, "POST", path, &[("Content-Type", content_type)], Some(body))
}

#[test]
fn malformed_bodies_paths_and_queries_are_400_and_log_nothing() {
    let server = TestServer::start();
    server.create(&[1]);
    let applied_lsn = server.applied_lsn();
    let json = "application/json";
    let bodies: [(&str, &[u8]); 12] = [
        ("/v1/resources", b"{\"resource_id\":"),
        ("/v1/resources", b"not json at all"),
        ("/v1/resources", b"[]"),
        ("/v1/resources", b"{\"resource_id\": 1}"),
        ("/v1/resources", b"{\"resource_id\": \"1\", \"colour\": \"red\"}"),
        ("/v1/resources", b"{\"resource_id\": \"340282366920938463463374607431768211456\"}"),
        ("/v1/resources", b"{\"resource_id\": \"-1\"}"),
        ("/v1/resources", b""),
        ("/v1/leases", b"{\"resource_ids\": [\"1\"], \"holder_id\": \"7\", \"ttl_ms\": \"5\"}"),
        ("/v1/leases", b"{\"resource_ids\": [\"1\"], \"holder_id\": \"7\", \"ttl_ms\": -5}"),
        ("/v1/leases", b"{\"resource_ids\": \"1\", \"holder_id\": \"7\", \"ttl_ms\": 5}"),
        ("/v1/leases/2/activate", b"{\"holder_id\": \"7\", \"lease_epoch\": 1.5}"),
    ];
    for (path, body) in bodies {
        let reply = post_raw(&server, path, json, body);
        let answer = assert_rejected(&reply, 400, "definite", "malformed");
        assert!(answer.get("operation_id").is_none(), "{answer}");
    }
    let unknown = assert_rejected(
        &post_raw(&server, "/v1/resources", json, b"{\"resource_id\": \"1\", \"colour\": \"red\"}"),
        400,
        "definite",
        "malformed",
    );
    assert!(unknown["message"].as_str().unwrap().contains("colour"), "{unknown}");

    let activate = json!({"holder_id": "7", "lease_epoch": 1});
    assert_rejected(&server.post("/v1/leases/abc/activate", &activate), 400, "definite", "malformed");
    assert_rejected(&server.post("/v1/leases/1%20/activate", &activate), 400, "definite", "malformed");
    for path in
        ["/v1/resources/abc", "/v1/resources/1?min_lsn=x", "/v1/resources/1?colour=red", "/v1/leases/-3"]
    {
        assert_rejected(&server.get(path), 400, "definite", "malformed");
    }
    assert_eq!(server.applied_lsn(), applied_lsn, "malformed input never reaches the log");
}

#[test]
fn non_json_content_types_are_415() {
    let server = TestServer::start();
    let body = b"{\"resource_id\": \"1\"}";
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        assert_rejected(
            &post_raw(&server, "/v1/resources", content_type, body),
            415,
            "definite",
            "unsupported_media_type",
        );
    }
    let untyped = request(server.address, "POST", "/v1/resources", &[], Some(body));
    assert_rejected(&untyped, 415, "definite", "unsupported_media_type");
    assert_eq!(post_raw(&server, "/v1/resources", "application/json; charset=utf-8", body).status, 200);
}

/// A declared length above the limit is refused from the headers alone.
#[test]
fn declared_oversized_body_is_413_before_it_is_read() {
    let server = TestServer::start();
    let mut stream = connect(server.address);
    let sixteen_mib = (16 << 20).to_string();
    send(
        &mut stream,
        "POST",
        "/v1/resources",
        &[("Content-Type", "application/json"), ("Content-Length", sixteen_mib.as_str())],
        None,
    )
    .unwrap();
    let reply = read_reply(&mut BufReader::new(stream)).unwrap().expect("a reply before the body");
    assert_rejected(&reply, 413, "definite", "too_large");
    assert_eq!(server.get("/readyz").status, 200);
}

/// A chunked body (no declared length) is cut off at the limit. The server answers 413 and
/// closes; the client may see the answer or, having sent more than was read, a reset.
#[test]
fn chunked_oversized_body_is_cut_off_at_the_limit() {
    let server = TestServer::start_with(|config| config.network.http_body_bytes_max = 64 << 10);
    let mut stream = connect(server.address);
    let chunk = vec![b' '; 32 << 10];
    let headers = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")];
    // Writes may fail once the server has answered and closed; that is allowed.
    let _ = send(&mut stream, "POST", "/v1/resources", &headers, None).and_then(|()| {
        for _ in 0..4 {
            stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
            stream.write_all(&chunk)?;
            stream.write_all(b"\r\n")?;
        }
        stream.write_all(b"0\r\n\r\n")
    });
    if let Ok(Some(reply)) = read_reply(&mut BufReader::new(stream)) {
        assert_rejected(&reply, 413, "definite", "too_large");
    }
    assert_eq!(server.get("/readyz").status, 200);
}

/// A bundle claiming a million members is counted while parsing, never stored, and refused
/// `too_large` (413).
#[test]
fn million_member_bundle_is_a_clean_413() {
    let server = TestServer::start_with(|config| config.network.http_body_bytes_max = 16 << 20);
    let applied_lsn = server.applied_lsn();
    let mut body = String::with_capacity(5 << 20);
    body.push_str("{\"holder_id\": \"7\", \"ttl_ms\": 1000, \"resource_ids\": [");
    for index in 0..1_000_000_u32 {
        if index > 0 {
            body.push(',');
        }
        body.push_str("\"1\"");
    }
    body.push_str("]}");
    let reply = post_raw(&server, "/v1/leases", "application/json", body.as_bytes());
    let answer = assert_rejected(&reply, 413, "definite", "too_large");
    assert!(answer["message"].as_str().unwrap().contains("1000000"), "{answer}");
    assert_eq!(server.applied_lsn(), applied_lsn);
}

#[test]
fn garbage_bytes_are_400() {
    let server = TestServer::start();
    // A fixed pseudo-random byte string (xorshift), reproducible across runs.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let garbage: Vec<u8> = (0..4_096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    for path in ["/v1/resources", "/v1/leases", "/v1/batch", "/v1/leases/5/release"] {
        assert_rejected(&post_raw(&server, path, "application/json", &garbage), 400, "definite", "malformed");
    }
    assert_eq!(server.get("/readyz").status, 200);
}

/// Idle and half-sent connections do not affect other clients; keep-alive serves several
/// requests on one connection.
#[test]
fn idle_connections_do_not_block_other_clients() {
    let server = TestServer::start();
    let idle: Vec<_> = (0..20).map(|_| connect(server.address)).collect();
    let mut half_sent: Vec<_> = (0..20).map(|_| connect(server.address)).collect();
    for stream in &mut half_sent {
        stream.write_all(b"POST /v1/resources HTTP/1.1\r\nContent-Type: appl").unwrap();
    }
    server.create(&[1]);

    let stream = connect(server.address);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for index in 0..3 {
        send(&mut writer, "GET", "/v1/resources/1", &[], None).unwrap();
        let reply = read_reply(&mut reader).unwrap().unwrap();
        assert_eq!(reply.status, 200, "request {index} on one connection");
    }
    drop((idle, half_sent));
    assert_eq!(server.get("/readyz").status, 200);
}

/// Beyond `connection_count_max`, connections are closed at once; closing one frees a place.
#[test]
fn connections_beyond_the_limit_are_closed() {
    let server = TestServer::start_with(|config| config.network.connection_count_max = 4);
    let mut held: Vec<_> = (0..4).map(|_| connect(server.address)).collect();
    // Each held connection is served (a request proves the server accepted it).
    for stream in &mut held {
        send(stream, "GET", "/healthz", &[], None).unwrap();
        let reply = read_reply(&mut BufReader::new(stream.try_clone().unwrap())).unwrap().unwrap();
        assert_eq!(reply.status, 200);
    }
    let mut refused = connect(server.address);
    let _ = send(&mut refused, "GET", "/healthz", &[], None);
    let mut buffer = [0_u8; 1];
    let closed = matches!(refused.read(&mut buffer), Ok(0) | Err(_));
    assert!(closed, "the fifth connection must be closed without an answer");
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = connect(server.address);
        let _ = send(&mut stream, "GET", "/healthz", &[], None);
        if let Ok(Some(reply)) = read_reply(&mut BufReader::new(stream)) {
            assert_eq!(reply.status, 200);
            break;
        }
        assert!(Instant::now() < deadline, "a freed place was never reused");
    }
}

/// A connection that sends no request head within the idle timeout is closed by the server.
#[test]
fn idle_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(|config| config.network.idle_timeout_ms = 200);
    let mut stream = connect(server.address);
    let mut buffer = Vec::new();
    // The read ends at the server's close (EOF or reset); only the client's own read timeout
    // (`IO_TIMEOUT`) would mean the server never closed it.
    if let Err(error) = stream.read_to_end(&mut buffer) {
        let timed_out = matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
        assert!(!timed_out, "the server never closed the idle connection");
    }
    assert_eq!(server.get("/readyz").status, 200);
}
