//! Indefinite outcomes through the client library and the binary protocol, made to happen for
//! real: a node over the production file-system directory wrapped by the test's fault switches
//! (`Node::open_over`), the real engine and the real listener.
//!
//! What the client promises (crate documentation): an indefinite answer is retried with the
//! same operation id, so a write that did commit is reported committed exactly once; and what
//! is still indefinite after the last attempt is reported as indefinite — never as committed,
//! never as a definite rejection.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

#[path = "../../allocdb-server/tests/support/faulty_directory.rs"]
mod faulty_directory;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use allocdb_client::{
    Client, ClientConfig, RejectionCategory, RejectionCode, ResourceResult, Write, WriteCommand,
    WriteOperation, WriteResult,
};
use allocdb_core::{HolderId, OperationId, ResourceId, ResourceState, ResultCode};
use allocdb_server::{FsDirectory, Node, NodeOptions, ServerConfig, serve_binary};
use faulty_directory::{Faults, FaultyDirectory};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Longest a test waits for the engine or the client to reach the state it needs.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's commit timeout: short, since the writes under test outlast it.
const COMMIT_TIMEOUT_MS: u64 = 200;

struct TestNode {
    node: Arc<Node>,
    faults: Arc<Faults>,
    address: String,
    _shutdown: watch::Sender<bool>,
    _directory: tempfile::TempDir,
}

/// A node whose log lives on the real file system behind the fault switches.
async fn start_node() -> TestNode {
    let directory = tempfile::tempdir().unwrap();
    let mut config = ServerConfig { data_dir: directory.path().to_owned(), ..ServerConfig::default() };
    config.network.commit_timeout_ms = COMMIT_TIMEOUT_MS;
    let (storage, faults) = FaultyDirectory::new(FsDirectory::open(directory.path()).unwrap());
    let node = Arc::new(Node::open_over(config, NodeOptions::default(), storage).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (shutdown, receiver) = watch::channel(false);
    tokio::spawn(serve_binary(listener, Arc::clone(&node), receiver));
    TestNode { node, faults, address, _shutdown: shutdown, _directory: directory }
}

async fn connect(node: &TestNode, retry_attempts: u32) -> Client {
    let mut config = ClientConfig::new(node.address.clone());
    config.retry_attempts = retry_attempts;
    config.retry_backoff = Duration::from_millis(1);
    Client::connect(config).await.unwrap()
}

fn reserve(operation_id: u128, resource_id: u128, holder_id: u128) -> Write {
    Write {
        operation: Some(WriteOperation { operation_id: OperationId(operation_id), client_id: None }),
        command: WriteCommand::Reserve {
            ttl_ms: 60_000,
            holder_id: HolderId(holder_id),
            resource_ids: vec![ResourceId(resource_id)],
        },
    }
}

fn committed(result: WriteResult) -> allocdb_core::Outcome {
    match result {
        WriteResult::Committed(outcome) => outcome,
        WriteResult::Rejected(code) => panic!("rejected: {code:?}"),
    }
}

/// The server answers the first attempt `commit_timeout` while its sync is held; the client
/// resends the same operation id, and once the disk answers, that resend is answered from the
/// operation table: the caller sees the one commit, and no second lease exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_resolves_a_commit_timeout_by_resending_the_same_operation_id() {
    let node = start_node().await;
    let client = connect(&node, 20).await;
    assert_eq!(committed(client.create_resource(ResourceId(1)).await.unwrap()).result, ResultCode::Ok);

    let hold = node.faults.hold_syncs();
    let writer = client.clone();
    let write = tokio::spawn(async move { writer.write(reserve(77, 1, 7)).await });
    // The first attempt sits in the held sync, still counted as queued; a second queued
    // command is the client's resend, which it sends only after a `commit_timeout` answer.
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while node.node.engine_status().queued_commands.load(Ordering::Acquire) < 2 {
        assert!(Instant::now() < deadline, "the client never resent the timed-out write");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.faults.wait_for_held_sync(WAIT_TIMEOUT);
    drop(hold);

    let (operation_id, result) = write.await.unwrap().unwrap();
    assert_eq!(operation_id, OperationId(77));
    let outcome = committed(result);
    assert_eq!(outcome.result, ResultCode::Ok);
    assert!(outcome.from_retry_cache, "the resend must be answered from the operation table: {outcome:?}");
    let ResourceResult::Found { resource, .. } =
        client.get_resource(ResourceId(1), outcome.applied_lsn).await.unwrap()
    else {
        panic!("resource 1 missing")
    };
    assert_eq!((resource.state, resource.current_lease_id), (ResourceState::Reserved, outcome.lease_id));
    let busy = committed(client.write(reserve(78, 1, 8)).await.unwrap().1);
    assert_eq!(busy.result, ResultCode::ResourceBusy);
}

/// A sync failure halts the node: the first attempt is answered `storage_failure`, every
/// resend `engine_halted`. After its retries the client reports the write indefinite (the
/// record may be on disk), under the operation id the caller needs to retry after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reports_a_storage_failure_as_indefinite_after_its_retries() {
    let node = start_node().await;
    let client = connect(&node, 2).await;
    assert_eq!(committed(client.create_resource(ResourceId(1)).await.unwrap()).result, ResultCode::Ok);

    node.faults.fail_next_sync_after_it_completes();
    let (operation_id, result) = client.write(reserve(88, 1, 7)).await.unwrap();
    assert_eq!(operation_id, OperationId(88));
    let WriteResult::Rejected(code) = result else { panic!("a halted node committed: {result:?}") };
    assert_eq!(code.category(), RejectionCategory::Indefinite, "{code:?}");
    assert_eq!(code, RejectionCode::EngineHalted, "the last resend met the halted engine");

    let created = client.create_resource(ResourceId(2)).await.unwrap();
    assert_eq!(created, WriteResult::Rejected(RejectionCode::EngineHalted));
    assert!(!node.node.is_healthy());
}
