//! The client subcommands of the real `allocdb` binary against a real `allocdb serve`: human
//! and `--json` output, exit codes and their one-line reasons, and retries by operation id.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use std::collections::HashMap;
use std::process::ExitStatus;

use support::{ServerProcess, run_to_exit};

/// Runs `allocdb <arguments> --server <the server's binary address>`.
fn cli(server: &ServerProcess, arguments: &[&str]) -> (ExitStatus, String, Vec<String>) {
    let address = server.listen.to_string();
    let mut all: Vec<&str> = arguments.to_vec();
    all.extend(["--server", &address]);
    run_to_exit(&all)
}

/// Runs a command that must succeed; returns its stdout.
fn cli_ok(server: &ServerProcess, arguments: &[&str]) -> String {
    let (status, stdout, stderr) = cli(server, arguments);
    assert!(status.success(), "{arguments:?} failed ({status}): {stderr:#?}");
    assert!(stderr.is_empty(), "{stderr:#?}");
    stdout
}

/// The `name  value` rows of a human table.
fn table(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
        .collect()
}

fn json_line(stdout: &str) -> serde_json::Value {
    let mut lines = stdout.lines();
    let value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(lines.next(), None, "one JSON object per command: {stdout}");
    value
}

/// The one line a failing command writes to stderr.
fn one_line(stderr: &[String]) -> &str {
    assert_eq!(stderr.len(), 1, "exactly one line on stderr: {stderr:#?}");
    &stderr[0]
}

#[test]
fn create_reserve_activate_release_in_tables_and_json() {
    let directory = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(directory.path(), &[]);

    let created = cli_ok(&server, &["resource", "create", "41", "42"]);
    assert_eq!(created.matches("result            ok").count(), 2, "{created}");
    assert!(created.contains("operation_id"), "the operation id is printed: {created}");

    let reserved = table(&cli_ok(&server, &["reserve", "--holder", "7", "--ttl", "30s", "41", "42"]));
    assert_eq!(reserved["result"], "ok");
    assert_eq!(reserved["lease_epoch"], "1");
    assert!(reserved["deadline_slot"].parse::<u64>().unwrap() > 0);
    let lease_id = reserved["lease_id"].clone();

    let activated =
        json_line(&cli_ok(&server, &["activate", &lease_id, "--holder", "7", "--epoch", "1", "--json"]));
    assert_eq!(activated["outcome"], "committed");
    assert_eq!(activated["result"], "ok");
    assert_eq!(activated["lease_id"], lease_id.as_str());
    let epoch = activated["lease_epoch"].as_u64().unwrap().to_string();
    assert!(activated["operation_id"].as_str().unwrap().parse::<u128>().is_ok());

    let released =
        json_line(&cli_ok(&server, &["release", &lease_id, "--holder", "7", "--epoch", &epoch, "--json"]));
    assert_eq!(released["result"], "ok");
    let applied_lsn = released["applied_lsn"].as_u64().unwrap();
    assert!(applied_lsn > activated["applied_lsn"].as_u64().unwrap());

    let min_lsn = applied_lsn.to_string();
    let lease = json_line(&cli_ok(&server, &["get", "lease", &lease_id, "--min-lsn", &min_lsn, "--json"]));
    assert_eq!(lease["state"], "released");
    assert_eq!(lease["holder_id"], "7");
    assert_eq!(lease["resource_ids"], serde_json::json!(["41", "42"]));
    let resource = table(&cli_ok(&server, &["get", "resource", "42", "--min-lsn", &min_lsn]));
    assert_eq!(resource["state"], "available");
    assert_eq!(resource["current_lease_id"], "-");
}

#[test]
fn busy_reserve_fails_with_one_line_reason() {
    let directory = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(directory.path(), &[]);
    cli_ok(&server, &["resource", "create", "42"]);
    cli_ok(&server, &["reserve", "--holder", "7", "--ttl", "10m", "42"]);

    let (status, stdout, stderr) = cli(&server, &["reserve", "--holder", "8", "--ttl", "10m", "42"]);
    assert_eq!(status.code(), Some(9), "{stderr:#?}");
    assert_eq!(one_line(&stderr), "allocdb: resource_busy: resource 42 is held by another lease");
    assert_eq!(table(&stdout)["result"], "resource_busy");

    let (status, _, stderr) = cli(&server, &["resource", "create", "42"]);
    assert_eq!(status.code(), Some(9));
    assert_eq!(one_line(&stderr), "allocdb: already_exists: resource 42 already exists");
}

#[test]
fn operation_id_retry_returns_the_same_lease() {
    let directory = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(directory.path(), &[]);
    cli_ok(&server, &["resource", "create", "00000000-0000-0000-0000-00000000002a"]);
    let reserve = ["reserve", "--holder", "7", "--ttl", "500ms", "42", "--operation-id", "4242", "--json"];
    let first = json_line(&cli_ok(&server, &reserve));
    assert_eq!(first["result"], "ok");
    assert_eq!(first["operation_id"], "4242");
    assert_eq!(first["from_retry_cache"], false);
    let retry = json_line(&cli_ok(&server, &reserve));
    assert_eq!(retry["from_retry_cache"], true);
    assert_eq!(retry["lease_id"], first["lease_id"]);
    assert_eq!(retry["applied_lsn"], first["applied_lsn"]);
}

#[test]
fn reads_report_missing_items_and_status() {
    let directory = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(directory.path(), &[]);
    cli_ok(&server, &["resource", "create", "1"]);

    let (status, stdout, stderr) = cli(&server, &["get", "resource", "2", "--json"]);
    assert_eq!(status.code(), Some(12));
    assert!(one_line(&stderr).starts_with("allocdb: not found: resource 2"), "{stderr:#?}");
    assert_eq!(json_line(&stdout)["found"], false);
    let (status, _, stderr) = cli(&server, &["get", "lease", "99"]);
    assert_eq!(status.code(), Some(12));
    assert!(one_line(&stderr).starts_with("allocdb: not found: lease 99"), "{stderr:#?}");
    let (status, _, stderr) = cli(&server, &["get", "resource", "1", "--min-lsn", "1000000"]);
    assert_eq!(status.code(), Some(13));
    assert!(one_line(&stderr).starts_with("allocdb: fence_not_applied"), "{stderr:#?}");

    let status_json = json_line(&cli_ok(&server, &["status", "--json"]));
    assert_eq!(status_json["healthy"], true);
    assert!(status_json["applied_lsn"].as_u64().unwrap() >= 2);
    assert_eq!(status_json["usage"]["resources"]["used"], 1);
    let status_table = table(&cli_ok(&server, &["status"]));
    assert_eq!(status_table["healthy"], "true");
    assert!(status_table["resources"].starts_with("1 / "), "{status_table:?}");
}

#[test]
fn bad_arguments_and_unreachable_server_fail_with_one_line() {
    let (status, stdout, stderr) =
        run_to_exit(&["reserve", "--holder", "7", "--ttl", "30 seconds", "1", "--server", "127.0.0.1:1"]);
    assert_eq!(status.code(), Some(2));
    assert!(stdout.is_empty());
    assert!(one_line(&stderr).starts_with("allocdb: invalid duration \"30 seconds\""), "{stderr:#?}");

    let (status, _, stderr) = run_to_exit(&["get", "lease", "not-a-lease", "--server", "127.0.0.1:1"]);
    assert_eq!(status.code(), Some(2));
    assert!(one_line(&stderr).starts_with("allocdb: invalid lease id"), "{stderr:#?}");

    // Bind and drop a listener: nothing listens on that port afterwards.
    let address = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let (status, stdout, stderr) = run_to_exit(&["status", "--server", &address]);
    assert_eq!(status.code(), Some(8));
    assert!(stdout.is_empty());
    assert!(one_line(&stderr).starts_with(&format!("allocdb: cannot connect to {address}: ")), "{stderr:#?}");
}
