//! `allocdb serve` startup: effective configuration, and every startup failure as a one-line
//! reason on stderr with its documented exit code.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use support::{ServerProcess, run_to_exit};

fn assert_one_line_failure(stderr: &[String], needle: &str) {
    assert_eq!(stderr.len(), 1, "exactly one line: {stderr:#?}");
    assert!(stderr[0].starts_with("allocdb: "), "{stderr:#?}");
    assert!(stderr[0].contains(needle), "{needle:?} missing: {stderr:#?}");
}

#[test]
fn second_server_on_the_same_directory_fails_with_the_lock_error() {
    let directory = tempfile::tempdir().unwrap();
    let _first = ServerProcess::start(directory.path(), &[]);
    let data_dir = directory.path().to_str().unwrap();
    let (status, _, stderr) =
        run_to_exit(&["serve", "--data-dir", data_dir, "--http", "127.0.0.1:0", "--listen", "127.0.0.1:0"]);
    assert_eq!(status.code(), Some(4), "{stderr:#?}");
    assert_one_line_failure(&stderr, "locked by another running process");
}

#[test]
fn print_config_prints_the_effective_toml_with_flags_over_the_file() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("allocdb.toml");
    std::fs::write(
        &file,
        "slot_ms = 5\n[limits]\nbundle_size_max = 8\n[network]\nhttp_body_bytes_max = 4096\n",
    )
    .unwrap();
    let (status, stdout, stderr) = run_to_exit(&[
        "serve",
        "--config",
        file.to_str().unwrap(),
        "--slot-ms",
        "7",
        "--http",
        "127.0.0.1:9999",
        "--data-dir",
        "/somewhere/else",
        "--print-config",
    ]);
    assert_eq!(status.code(), Some(0), "{stderr:#?}");
    let printed: toml::Table = toml::from_str(&stdout).unwrap();
    assert_eq!(printed["slot_ms"].as_integer(), Some(7), "the flag wins over the file");
    assert_eq!(printed["http"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(printed["listen"].as_str(), Some("127.0.0.1:7878"), "default");
    assert_eq!(printed["data_dir"].as_str(), Some("/somewhere/else"));
    assert_eq!(printed["limits"]["bundle_size_max"].as_integer(), Some(8), "from the file");
    assert_eq!(printed["network"]["http_body_bytes_max"].as_integer(), Some(4096));
    assert!(!std::path::Path::new("/somewhere/else").exists(), "--print-config opens nothing");
}

#[test]
fn defaults_match_the_interface() {
    let (status, stdout, _) = run_to_exit(&["serve", "--print-config"]);
    assert_eq!(status.code(), Some(0));
    let printed: toml::Table = toml::from_str(&stdout).unwrap();
    assert_eq!(printed["data_dir"].as_str(), Some("./allocdb-data"));
    assert_eq!(printed["listen"].as_str(), Some("127.0.0.1:7878"));
    assert_eq!(printed["http"].as_str(), Some("127.0.0.1:7880"));
}

#[test]
fn invalid_configuration_exits_3() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("allocdb.toml");
    std::fs::write(&file, "slot_msec = 5\n").unwrap();
    let (status, _, stderr) = run_to_exit(&["serve", "--config", file.to_str().unwrap(), "--print-config"]);
    assert_eq!(status.code(), Some(3), "{stderr:#?}");
    assert_one_line_failure(&stderr, "slot_msec");
    let (status, _, stderr) =
        run_to_exit(&["serve", "--slot-ms", "0", "--data-dir", directory.path().to_str().unwrap()]);
    assert_eq!(status.code(), Some(3), "{stderr:#?}");
    assert_one_line_failure(&stderr, "slot_duration_ms");
    let (status, _, stderr) = run_to_exit(&["serve", "--config", "/no/such/file.toml"]);
    assert_eq!(status.code(), Some(3), "{stderr:#?}");
    assert_one_line_failure(&stderr, "/no/such/file.toml");
}

#[test]
fn incompatible_data_directory_exits_5() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("IDENTITY"), "format_version = 99\ncluster_id = 1\nnode_id = 1\n")
        .unwrap();
    let data_dir = directory.path().to_str().unwrap();
    let (status, _, stderr) =
        run_to_exit(&["serve", "--data-dir", data_dir, "--http", "127.0.0.1:0", "--listen", "127.0.0.1:0"]);
    assert_eq!(status.code(), Some(5), "{stderr:#?}");
    assert_one_line_failure(&stderr, "format version 99");
}

#[test]
fn address_in_use_exits_7() {
    let directory = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let data_dir = directory.path().to_str().unwrap();
    let (status, _, stderr) =
        run_to_exit(&["serve", "--data-dir", data_dir, "--http", &address, "--listen", "127.0.0.1:0"]);
    assert_eq!(status.code(), Some(7), "{stderr:#?}");
    let reason = stderr.iter().find(|line| line.starts_with("allocdb: ")).unwrap();
    assert!(reason.contains(&address), "{stderr:#?}");
}

#[test]
fn bad_command_line_exits_2() {
    let (status, _, stderr) = run_to_exit(&["serve", "--http", "not-an-address"]);
    assert_eq!(status.code(), Some(2), "{stderr:#?}");
}

/// `[network] io_threads` sets how many connection threads the server's runtime runs: the
/// `serving` log line reports the runtime's own worker count, and `/proc` shows at least that
/// many `allocdb-io` threads (the runtime's blocking pool shares the name, so there may be
/// more).
#[test]
fn io_threads_sets_the_connection_thread_count() {
    for io_threads in [1_u64, 3] {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("allocdb.toml");
        std::fs::write(&file, format!("[network]\nio_threads = {io_threads}\n")).unwrap();
        let data_dir = directory.path().join("data");
        let server = ServerProcess::start(&data_dir, &["--config", file.to_str().unwrap()]);
        let logged = server
            .stderr
            .seen
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|entry| entry["fields"]["message"] == "serving")
            .expect("the server logged `serving`");
        assert_eq!(logged["fields"]["io_threads"].as_u64(), Some(io_threads));
        let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap();
        let running = tasks
            .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
            .filter(|name| name.trim_end() == "allocdb-io")
            .count() as u64;
        assert!(running >= io_threads, "io_threads = {io_threads}, but {running} allocdb-io threads run");
    }
}
