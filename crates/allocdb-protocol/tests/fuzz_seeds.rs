//! The fuzz target's seed corpus (`fuzz/seeds/protocol_decoder/`) is exactly one frame of every
//! sample message: `client-NN` is sample client message NN with request id NN + 1, `server-NN`
//! sample server message NN with request id NN. Seeds that still decode keep the fuzzer starting
//! from valid frames of every variant after a format change.
//!
//! To rewrite them after a deliberate format change, run
//! `ALLOCDB_REFRESH_FUZZ_SEEDS=1 cargo test -p allocdb-protocol --test fuzz_seeds`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

#[allow(dead_code, reason = "each test file uses part of the shared support")]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use support::{client_frame, sample_client_messages, sample_server_messages, server_frame};

fn expected_seeds() -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    for (index, message) in sample_client_messages().iter().enumerate() {
        seeds.insert(format!("client-{index:02}"), client_frame(message, index as u64 + 1));
    }
    for (index, message) in sample_server_messages().iter().enumerate() {
        seeds.insert(format!("server-{index:02}"), server_frame(message, index as u64));
    }
    seeds
}

#[test]
fn fuzz_seeds_are_the_current_sample_frames() {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/protocol_decoder");
    let expected = expected_seeds();
    if std::env::var_os("ALLOCDB_REFRESH_FUZZ_SEEDS").is_some() {
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        for (name, bytes) in &expected {
            std::fs::write(directory.join(name), bytes).unwrap();
        }
    }
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(&directory).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        found.insert(name, std::fs::read(&path).unwrap());
    }
    assert!(
        found == expected,
        "{} is stale; rerun with ALLOCDB_REFRESH_FUZZ_SEEDS=1 to rewrite it",
        directory.display()
    );
}
