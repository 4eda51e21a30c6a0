//! The real binary keeps every acknowledged write across SIGKILL, and stops cleanly on
//! SIGTERM, also when the signal comes before it serves.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use serde_json::json;
use support::ServerProcess;

/// create → reserve → activate → release, each acknowledged, then SIGKILL (no chance to
/// flush anything): a restart on the same directory shows all of it, and the operation table
/// survives too, so a retry of the acknowledged reserve is answered from it.
#[test]
fn acknowledged_writes_survive_sigkill_and_restart() {
    let directory = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(directory.path(), &[]);
    for id in ["1", "2"] {
        assert_eq!(server.post("/v1/resources", &json!({"resource_id": id})).status, 200);
    }
    let reserve = json!({"resource_ids": ["1", "2"], "holder_id": "7", "ttl_ms": 600_000});
    let key = [("Idempotency-Key", "4242")];
    let reserved = server.post_with("/v1/leases", &reserve, &key);
    assert_eq!(reserved.status, 200, "{}", reserved.text());
    let reserved = reserved.json();
    let lease_id = reserved["lease_id"].as_str().unwrap().to_owned();
    let holder = json!({"holder_id": "7", "lease_epoch": 1});
    assert_eq!(server.post(&format!("/v1/leases/{lease_id}/activate"), &holder).status, 200);
    let released = server.post(&format!("/v1/leases/{lease_id}/release"), &holder).json();
    assert_eq!(released["result"], "ok");
    let last_lsn = released["applied_lsn"].as_u64().unwrap();
    server.kill();

    let restarted = ServerProcess::start(directory.path(), &[]);
    assert!(restarted.applied_lsn() >= last_lsn);
    let lease = restarted.get(&format!("/v1/leases/{lease_id}?min_lsn={last_lsn}"));
    assert_eq!(lease.status, 200);
    let lease = lease.json();
    assert_eq!(lease["state"], "released");
    assert_eq!(lease["lease_epoch"], 2);
    assert_eq!(lease["released_lsn"], last_lsn);
    for id in ["1", "2"] {
        let resource = restarted.get(&format!("/v1/resources/{id}")).json();
        assert_eq!(resource["state"], "available", "{resource}");
        assert_eq!(resource["version"], 4, "created, reserved, activated, released: {resource}");
    }
    let retry = restarted.post_with("/v1/leases", &reserve, &key).json();
    assert_eq!(retry["from_retry_cache"], true, "{retry}");
    assert_eq!(retry["lease_id"], lease_id.as_str());
    assert_eq!(retry["applied_lsn"], reserved["applied_lsn"]);
}

#[test]
fn sigterm_stops_cleanly_with_exit_code_zero() {
    let directory = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(directory.path(), &[]);
    assert_eq!(server.post("/v1/resources", &json!({"resource_id": "1"})).status, 200);
    let (status, log) = server.terminate();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    assert!(log.iter().any(|line| line.contains("\"stopped\"")), "{log:#?}");
    // The directory is unlocked and the write is there.
    let restarted = ServerProcess::start(directory.path(), &[]);
    assert_eq!(restarted.get("/v1/resources/1").status, 200);
}

/// A SIGTERM that arrives while the node is still starting (it holds the data directory's
/// lock and recovers) is not the default action's kill: the server finishes starting, then
/// stops cleanly with exit code 0. (A supervisor that stops a server right after starting it
/// used to see it die by the signal, since the handler was installed only once it served.)
#[test]
fn sigterm_while_starting_stops_cleanly_with_exit_code_zero() {
    let directory = tempfile::tempdir().unwrap();
    let (mut child, mut stderr) = support::spawn_server(directory.path(), &[]);
    let deadline = std::time::Instant::now() + support::PROCESS_DEADLINE;
    // The lock is taken at the start of recovery, which takes a while (tables are allocated),
    // so "serving" is still ahead when the signal goes out; checked below.
    while !directory.path().join("LOCK").exists() {
        assert!(child.try_wait().unwrap().is_none(), "the server exited early: {:#?}", stderr.seen);
        assert!(std::time::Instant::now() < deadline, "the server never took its lock");
        std::thread::yield_now();
    }
    let early = stderr.drain_available();
    assert!(
        !early.iter().any(|line| line.contains("\"serving\"")),
        "the test needs the signal to arrive before the server serves: {early:#?}"
    );
    let sent = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    stderr.read_to_end(deadline);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit {status}; stderr: {:#?}", stderr.seen);
    assert!(stderr.seen.iter().any(|line| line.contains("SIGTERM received")), "{:#?}", stderr.seen);
    assert!(stderr.seen.iter().any(|line| line.contains("\"stopped\"")), "{:#?}", stderr.seen);
}
