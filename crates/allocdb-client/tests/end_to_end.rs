//! The client library against a real node over the binary protocol: the whole lease
//! lifecycle, batches, retries answered from the operation table, handshake refusals, read
//! fences, pipelining on one connection, and hostile bytes that must not disturb other clients.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use std::sync::Arc;
use std::time::Duration;

use allocdb_client::{
    Client, ClientConfig, ClientError, LeaseResult, ResourceResult, Write, WriteCommand, WriteOperation,
    WriteResult,
};
use allocdb_core::{HolderId, LeaseState, OperationId, ResourceId, ResourceState, ResultCode};
use allocdb_server::{Node, ServerConfig, serve_binary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

struct TestServer {
    address: String,
    _shutdown: watch::Sender<bool>,
    _directory: tempfile::TempDir,
}

async fn start_server() -> TestServer {
    let directory = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        data_dir: directory.path().to_owned(),
        cluster_id: "42".to_owned(),
        ..ServerConfig::default()
    };
    config.limits.resource_count_max = 4_096;
    config.limits.lease_count_max = 4_096;
    config.limits.lease_member_count_max = 8_192;
    config.limits.operation_count_max = 16_384;
    config.limits.expiration_bucket_length_max = 4_096;
    config.limits.batch_size_max = 1_000;
    config.network.idle_timeout_ms = 2_000;
    let node = Arc::new(Node::open(config).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (shutdown, receiver) = watch::channel(false);
    tokio::spawn(serve_binary(listener, node, receiver));
    TestServer { address, _shutdown: shutdown, _directory: directory }
}

async fn connect(server: &TestServer) -> Client {
    let mut config = ClientConfig::new(server.address.clone());
    config.cluster_id = 42;
    Client::connect(config).await.unwrap()
}

fn committed(result: WriteResult) -> allocdb_core::Outcome {
    match result {
        WriteResult::Committed(outcome) => outcome,
        WriteResult::Rejected(code) => panic!("rejected: {code:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_activate_release_over_the_binary_protocol() {
    let server = start_server().await;
    let client = connect(&server).await;
    assert_eq!(committed(client.create_resource(ResourceId(1)).await.unwrap()).result, ResultCode::Ok);
    let reserved =
        committed(client.reserve(vec![ResourceId(1)], HolderId(5), Duration::from_secs(30)).await.unwrap());
    assert_eq!(reserved.result, ResultCode::Ok);
    let lease_id = reserved.lease_id.unwrap();
    let busy =
        committed(client.reserve(vec![ResourceId(1)], HolderId(6), Duration::from_secs(30)).await.unwrap());
    assert_eq!(busy.result, ResultCode::ResourceBusy);
    assert_eq!(committed(client.activate(lease_id, HolderId(5), 1).await.unwrap()).result, ResultCode::Ok);
    let released = committed(client.release(lease_id, HolderId(5), 1).await.unwrap());
    assert_eq!((released.result, released.lease_epoch), (ResultCode::Ok, Some(2)));

    let ResourceResult::Found { resource, served_lsn } =
        client.get_resource(ResourceId(1), released.applied_lsn).await.unwrap()
    else {
        panic!("resource missing")
    };
    assert_eq!(resource.state, ResourceState::Available);
    assert!(served_lsn >= released.applied_lsn);
    let LeaseResult::Found { lease, .. } = client.get_lease(lease_id, 0).await.unwrap() else {
        panic!("lease missing")
    };
    assert_eq!(lease.state, LeaseState::Released);
    assert_eq!(lease.resource_ids, vec![ResourceId(1)]);
    let status = client.status().await.unwrap();
    assert!(status.healthy);
    assert_eq!(status.applied_lsn, released.applied_lsn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_an_operation_id_returns_the_original_outcome() {
    let server = start_server().await;
    let client = connect(&server).await;
    client.create_resource(ResourceId(9)).await.unwrap();
    let write = Write {
        operation: Some(WriteOperation { operation_id: OperationId(777), client_id: None }),
        command: WriteCommand::Reserve {
            ttl_ms: 60_000,
            holder_id: HolderId(1),
            resource_ids: vec![ResourceId(9)],
        },
    };
    let (_, first) = client.write(write.clone()).await.unwrap();
    let (_, second) = client.write(write).await.unwrap();
    let (first, second) = (committed(first), committed(second));
    assert!(!first.from_retry_cache && second.from_retry_cache);
    assert_eq!((first.applied_lsn, first.lease_id), (second.applied_lsn, second.lease_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_returns_results_in_order_even_beyond_one_frame() {
    let server = start_server().await;
    let client = connect(&server).await;
    let writes: Vec<Write> = (0..3_000)
        .map(|id| Write {
            operation: None,
            command: WriteCommand::CreateResource { resource_id: ResourceId(id) },
        })
        .collect();
    let mut writes_with_duplicate = writes;
    writes_with_duplicate.push(Write {
        operation: None,
        command: WriteCommand::CreateResource { resource_id: ResourceId(0) },
    });
    let results = client.write_batch(writes_with_duplicate).await.unwrap();
    assert_eq!(results.len(), 3_001);
    assert!(results[..3_000].iter().all(|(_, result)| committed(*result).result == ResultCode::Ok));
    assert_eq!(committed(results[3_000].1).result, ResultCode::AlreadyExists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pipelined_requests_on_one_connection_all_complete() {
    let server = start_server().await;
    let mut config = ClientConfig::new(server.address.clone());
    config.cluster_id = 42;
    config.connection_count = 1;
    let client = Client::connect(config).await.unwrap();
    let tasks: Vec<_> = (0..500_u128)
        .map(|id| {
            let client = client.clone();
            tokio::spawn(async move { client.create_resource(ResourceId(id)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        assert_eq!(committed(task.await.unwrap()).result, ResultCode::Ok);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_above_the_applied_lsn_is_not_served_stale() {
    let server = start_server().await;
    let client = connect(&server).await;
    let created = committed(client.create_resource(ResourceId(3)).await.unwrap());
    let result = client.get_resource(ResourceId(3), created.applied_lsn + 1_000).await.unwrap();
    assert_eq!(result, ResourceResult::FenceNotApplied { applied_lsn: created.applied_lsn });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_cluster_is_refused_clearly() {
    let server = start_server().await;
    let mut config = ClientConfig::new(server.address.clone());
    config.cluster_id = 41;
    let error = Client::connect(config).await.err().expect("wrong cluster must be refused");
    assert!(matches!(error, ClientError::Refused { reason: "cluster_mismatch", .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_huge_length_prefixes_close_only_that_connection() {
    let server = start_server().await;
    let client = connect(&server).await;
    for garbage in [vec![0xff_u8; 64], u32::MAX.to_le_bytes().to_vec(), b"GET / HTTP/1.1\r\n\r\n".to_vec()] {
        let mut raw = TcpStream::connect(&server.address).await.unwrap();
        raw.write_all(&garbage).await.unwrap();
        let mut answer = Vec::new();
        // The server answers with a protocol error (or refusal) and closes; read to EOF.
        tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut answer)).await.unwrap().unwrap();
        assert!(!answer.is_empty(), "the server explains before closing");
    }
    // An idle connection that never says hello does not block anyone else.
    let _idle = TcpStream::connect(&server.address).await.unwrap();
    assert_eq!(committed(client.create_resource(ResourceId(11)).await.unwrap()).result, ResultCode::Ok);
}
