//! `allocdb bench run` against AllocDB, every workload (and the ping baseline) for about a
//! second: the bench starts its own server from this binary, drives it, checks correctness,
//! and prints a table row and a JSON line. The figures are not asserted (this is a smoke test,
//! CI machines vary); what is asserted is that each workload completes work, counts zero
//! violations, and reports the server-side figures it promises (fsyncs, commands per fsync,
//! CPU, RSS).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use std::process::Command;

fn bench(extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_allocdb"))
        .args(["bench", "run", "--quiet", "--duration", "1", "--warmup", "0.2", "--resources", "4096"])
        .args(["--clients", "4", "--hot", "2", "--batch", "16"])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .expect("allocdb runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench {extra:?} failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.starts_with("target"), "a table header first: {stdout}");
    let line = std::fs::read_to_string(&json).unwrap();
    let result: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let correctness = &result["correctness"];
    for counter in correctness.as_object().unwrap().values() {
        assert_eq!(counter, 0, "{extra:?}: {correctness}");
    }
    result
}

fn assert_did_work(result: &serde_json::Value) {
    assert!(result["ops"].as_u64().unwrap() > 0, "{result}");
    assert!(result["requests"].as_u64().unwrap() > 0, "{result}");
    assert!(result["fsyncs_per_s"].as_f64().unwrap() > 0.0, "{result}");
    assert!(result["commands_per_fsync"].as_f64().unwrap() >= 1.0, "{result}");
    assert!(result["server_peak_rss_bytes"].as_u64().unwrap() > 0, "{result}");
    assert!(result["latency"]["p50_us"].as_u64().unwrap() > 0, "{result}");
    assert!(!result["latency_cdf"].as_array().unwrap().is_empty(), "{result}");
}

#[test]
fn uncontended_reserves_activates_and_releases() {
    let result = bench(&["--workload", "uncontended"]);
    assert_did_work(&result);
    assert_eq!(result["workload"], "uncontended");
    // Reserve, activate, release: every won reserve is followed by two more commands, so the
    // window holds about three commands per win (without the activate step it would be two).
    // At most two commands per client fall outside the window at its end.
    let wins = result["wins_per_s"].as_f64().unwrap();
    let ops = result["ops_per_s"].as_f64().unwrap();
    assert!(wins > 100.0, "{result}");
    assert!(ops + 8.0 >= 3.0 * wins, "{result}");
}

#[test]
fn hotspot_hands_over_the_hot_resources() {
    let result = bench(&["--workload", "hotspot"]);
    assert_did_work(&result);
    assert!(result["wins_per_s"].as_f64().unwrap() > 0.0, "{result}");
}

#[test]
fn batched_sends_many_commands_per_request() {
    let result = bench(&["--workload", "batched"]);
    assert_did_work(&result);
    assert!(result["ops"].as_u64().unwrap() >= 16 * result["requests"].as_u64().unwrap() / 2, "{result}");
}

#[test]
fn mixed_reads_see_their_own_writes() {
    let result = bench(&["--workload", "mixed", "--reads-per-write", "3"]);
    assert_did_work(&result);
}

#[test]
fn ping_round_trips_write_nothing_and_have_no_commit_ceiling() {
    for transport in [&[][..], &["--http"][..]] {
        let result = bench(&[&["--workload", "ping"][..], transport].concat());
        assert_eq!(result["workload"], "ping");
        assert_eq!(result["variant"], if transport.is_empty() { "binary" } else { "http" });
        assert!(result["ops"].as_u64().unwrap() > 100, "{result}");
        assert_eq!(result["ops"], result["requests"], "one ping per request: {result}");
        assert!(result["wins_per_s"].as_f64().unwrap() <= 0.0, "{result}");
        // The resources were created before the window; nothing in it is written or synced.
        assert!(result["fsyncs_per_s"].as_f64().unwrap() <= 0.0, "{result}");
        assert!(result["ceiling_requests_per_s"].is_null(), "{result}");
        assert!(result["latency"]["p50_us"].as_u64().unwrap() > 0, "{result}");
    }
}

#[test]
fn http_transport_runs_the_same_workload() {
    let result = bench(&["--workload", "batched", "--http"]);
    assert_did_work(&result);
    assert_eq!(result["variant"], "http");
}

#[test]
fn open_loop_paces_requests() {
    let result = bench(&["--workload", "uncontended", "--rate", "200"]);
    assert_eq!(result["mode"], "open");
    // 200 requests/s offered for one second: far fewer than a closed loop would complete.
    let requests = result["requests"].as_u64().unwrap();
    assert!((100..=300).contains(&requests), "{requests} requests at 200/s for 1 s");
}

#[test]
fn recovery_restarts_from_the_log_and_from_a_snapshot() {
    for snapshot in [false, true] {
        let mut arguments = vec!["--workload", "recovery", "--records", "40000"];
        if snapshot {
            arguments.push("--snapshot");
        }
        let result = bench(&arguments);
        let recovery = &result["recovery"];
        assert!(recovery["records"].as_u64().unwrap() >= 40_000, "{result}");
        assert!(recovery["restart_ms"].as_f64().unwrap() > 0.0, "{result}");
        let replayed = recovery["replayed_records"].as_u64().unwrap();
        let written = recovery["records"].as_u64().unwrap();
        if snapshot {
            // The fill overshoots (whole rounds of 16 lanes × 4,096 × 2), and snapshots are
            // taken at group boundaries every 36,000 records: the tail after the last one is
            // under one interval plus one group, well under half of the log.
            assert!(replayed < written / 2, "a snapshot covers most of the log: {result}");
        } else {
            assert!(replayed >= 40_000, "the whole log is replayed: {result}");
        }
    }
}

#[test]
fn recovery_refuses_peer_targets() {
    let output = Command::new(env!("CARGO_BIN_EXE_allocdb"))
        .args(["bench", "run", "--quiet", "--workload", "recovery", "--target", "redis"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("AllocDB only"));
}
