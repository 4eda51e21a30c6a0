//! Shared helpers of the HTTP integration tests: an in-process server on a free port over a
//! node in a temporary directory (or with its log in an injected directory, see
//! `faulty_directory.rs`), with small tables, and the test HTTP client.

#![allow(dead_code, reason = "each test file uses a different subset of the helpers")]

pub mod faulty_directory;
pub mod http_client;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::mpsc;
use std::thread::JoinHandle;

use allocdb_server::{LogDirectory, ServeError, Server, ServerConfig};
use serde_json::{Value, json};
use tempfile::TempDir;

use http_client::{Reply, get, post_json, post_json_with};

/// How long startup may take before a test fails.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_mins(1);

/// Small tables, so capacities are cheap to reach; both listeners on free ports.
pub fn small_config(data_dir: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig { data_dir: data_dir.to_owned(), ..ServerConfig::default() };
    config.http = SocketAddr::from(([127, 0, 0, 1], 0));
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let limits = &mut config.limits;
    limits.resource_count_max = 64;
    limits.lease_count_max = 64;
    limits.lease_member_count_max = 256;
    limits.operation_count_max = 1_024;
    limits.bundle_size_max = 4;
    limits.expiration_bucket_count = 64;
    limits.expiration_bucket_length_max = 64;
    limits.expirations_per_tick_max = 64;
    limits.submission_queue_capacity = 1_024;
    limits.batch_size_max = 64;
    config
}

/// What binding a server returns, boxed so either way of binding fits one signature.
type BindFuture = Pin<Box<dyn Future<Output = Result<Server, ServeError>> + Send>>;

/// A server running on its own runtime thread. Dropping it stops it gracefully.
pub struct TestServer {
    /// The HTTP address.
    pub address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    directory: Option<TempDir>,
}

impl TestServer {
    /// A server with [`small_config`].
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// A server with [`small_config`] adjusted by `adjust`.
    pub fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer::start_in(tempfile::tempdir().unwrap(), adjust)
    }

    /// A server over an existing directory (for restarts).
    pub fn start_in(directory: TempDir, adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer::launch(directory, adjust, |config| Box::pin(Server::bind(config)))
    }

    /// A server whose log and snapshots live in `storage` (`Server::bind_over`); `directory`
    /// still holds the lock and identity files. Restart with the same two to recover.
    pub fn start_over<D>(directory: TempDir, storage: D, adjust: impl FnOnce(&mut ServerConfig)) -> TestServer
    where
        D: LogDirectory + Send + 'static,
        D::File: Send,
    {
        TestServer::launch(directory, adjust, move |config| Box::pin(Server::bind_over(config, storage)))
    }

    fn launch(
        directory: TempDir,
        adjust: impl FnOnce(&mut ServerConfig),
        bind: impl FnOnce(ServerConfig) -> BindFuture + Send + 'static,
    ) -> TestServer {
        let mut config = small_config(directory.path());
        adjust(&mut config);
        let (ready_sender, ready) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                match bind(config).await {
                    Ok(server) => {
                        ready_sender.send(Ok(server.http_address())).unwrap();
                        server
                            .run(async {
                                let _ = stopped.await;
                            })
                            .await;
                    }
                    Err(error) => ready_sender.send(Err(error.to_string())).unwrap(),
                }
            });
        });
        let address = match ready.recv_timeout(START_TIMEOUT) {
            Ok(Ok(address)) => address,
            Ok(Err(error)) => panic!("server did not start: {error}"),
            Err(error) => panic!("server did not report its address within {START_TIMEOUT:?}: {error}"),
        };
        TestServer { address, stop: Some(stop), thread: Some(thread), directory: Some(directory) }
    }

    /// Stops gracefully and returns the data directory.
    pub fn stop(mut self) -> TempDir {
        self.shut_down();
        self.directory.take().unwrap()
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        get(self.address, path)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Reply {
        post_json(self.address, path, body)
    }

    /// `POST path` with a JSON body and headers.
    pub fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        post_json_with(self.address, path, body, headers)
    }

    /// The node's applied lsn.
    pub fn applied_lsn(&self) -> u64 {
        self.get("/v1/status").json()["applied_lsn"].as_u64().unwrap()
    }

    /// Creates resources, asserting each is `ok`.
    pub fn create(&self, resource_ids: &[u128]) {
        for id in resource_ids {
            let reply = self.post("/v1/resources", &json!({"resource_id": id.to_string()}));
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
    }

    /// Reserves, asserting `ok`; returns `(lease_id, lease_epoch)`.
    pub fn reserve(&self, resource_ids: &[u128], holder_id: u128) -> (String, u64) {
        let ids: Vec<String> = resource_ids.iter().map(u128::to_string).collect();
        let reply = self.post(
            "/v1/leases",
            &json!({"resource_ids": ids, "holder_id": holder_id.to_string(), "ttl_ms": 60_000}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        let body = reply.json();
        (body["lease_id"].as_str().unwrap().to_owned(), body["lease_epoch"].as_u64().unwrap())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Asserts a committed answer with `result` and `status`; returns the body.
pub fn assert_committed(reply: &http_client::Reply, status: u16, result: &str) -> Value {
    let body = reply.json();
    assert_eq!(reply.status, status, "{body}");
    assert_eq!(body["outcome"], "committed", "{body}");
    assert_eq!(body["result"], result, "{body}");
    assert!(body["applied_lsn"].as_u64().unwrap() > 0, "{body}");
    assert!(body["operation_id"].is_string(), "{body}");
    assert!(body["from_retry_cache"].is_boolean(), "{body}");
    body
}

/// Asserts a rejected answer with `error`, `category` and `status`; returns the body.
pub fn assert_rejected(reply: &http_client::Reply, status: u16, category: &str, error: &str) -> Value {
    let body = reply.json();
    assert_eq!(reply.status, status, "{body}");
    assert_eq!(body["outcome"], "rejected", "{body}");
    assert_eq!(body["category"], category, "{body}");
    assert_eq!(body["error"], error, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(!message.is_empty() && !message.contains('\n'), "{body}");
    body
}
