//! Running the real `allocdb` binary in tests: start it on a temporary data directory with
//! both listeners on port 0, learn the bound HTTP address from its JSON log line `serving`, and
//! wait for `/readyz`, all under deadlines (no sleeps). Only processes started here are
//! stopped, by their own handle (`Child::kill`, or `kill -TERM <pid>` for a clean stop).

#![allow(dead_code, reason = "each test file uses a different subset of the helpers")]

#[path = "../../../allocdb-server/tests/support/http_client.rs"]
pub mod http_client;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a start or a stop may take before the test fails.
pub const PROCESS_DEADLINE: Duration = Duration::from_mins(1);

/// The binary under test.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_allocdb"))
}

/// What the process wrote to stderr, line by line; `None` once stderr closed (the process
/// exited).
pub struct StderrLines {
    lines: Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
}

impl StderrLines {
    fn new(child: &mut Child) -> StderrLines {
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        StderrLines { lines, seen: Vec::new() }
    }

    /// The next line, `None` at EOF; panics at the deadline.
    pub fn next_line(&mut self, deadline: Instant) -> Option<String> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no stderr line before the deadline; seen: {:#?}", self.seen)
            }
        }
    }

    /// The lines written so far and not yet read, without waiting.
    pub fn drain_available(&mut self) -> Vec<String> {
        let fresh: Vec<String> = self.lines.try_iter().collect();
        self.seen.extend(fresh.iter().cloned());
        fresh
    }

    /// Reads until stderr closes (the process exited); panics at the deadline.
    pub fn read_to_end(&mut self, deadline: Instant) {
        while self.next_line(deadline).is_some() {}
    }
}

/// Starts `allocdb serve` on `data_dir` with `extra` arguments and returns at once, before it
/// recovers or serves, with its stderr.
pub fn spawn_server(data_dir: &Path, extra: &[&str]) -> (Child, StderrLines) {
    let mut child = binary()
        .args(["serve", "--log-format", "json", "--http", "127.0.0.1:0", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the allocdb binary starts");
    let stderr = StderrLines::new(&mut child);
    (child, stderr)
}

/// A running `allocdb serve`. Dropping it kills the process (SIGKILL).
pub struct ServerProcess {
    child: Child,
    /// The bound HTTP address.
    pub http: SocketAddr,
    /// The bound binary-protocol address.
    pub listen: SocketAddr,
    /// Its stderr.
    pub stderr: StderrLines,
}

impl ServerProcess {
    /// Starts `allocdb serve` on `data_dir` with `extra` arguments and waits until it is ready.
    pub fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        let (mut child, mut stderr) = spawn_server(data_dir, extra);
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let (http, listen) = loop {
            let Some(line) = stderr.next_line(deadline) else {
                let status = child.wait().unwrap();
                panic!("allocdb exited ({status}) before serving; stderr: {:#?}", stderr.seen);
            };
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if entry["fields"]["message"] == "serving" {
                let address =
                    |field: &str| entry["fields"][field].as_str().unwrap().parse::<SocketAddr>().unwrap();
                break (address("http"), address("listen"));
            }
        };
        let server = ServerProcess { child, http, listen, stderr };
        server.wait_ready(deadline);
        server
    }

    fn wait_ready(&self, deadline: Instant) {
        loop {
            let mut stream = http_client::connect(self.http);
            let ready = http_client::send(&mut stream, "GET", "/readyz", &[], None)
                .and_then(|()| http_client::read_reply(&mut BufReader::new(stream)));
            if let Ok(Some(reply)) = ready
                && reply.status == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "/readyz never answered 200");
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM (through `kill -TERM <our pid>`), then wait for the exit.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM failed");
        self.stderr.read_to_end(Instant::now() + PROCESS_DEADLINE);
        let status = self.child.wait().unwrap();
        (status, std::mem::take(&mut self.stderr.seen))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> http_client::Reply {
        http_client::get(self.http, path)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> http_client::Reply {
        http_client::post_json(self.http, path, body)
    }

    /// `POST path` with a JSON body and headers.
    pub fn post_with(
        &self,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> http_client::Reply {
        http_client::post_json_with(self.http, path, body, headers)
    }

    /// The node's applied lsn.
    pub fn applied_lsn(&self) -> u64 {
        self.get("/v1/status").json()["applied_lsn"].as_u64().unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `allocdb` with `arguments` to completion (it must exit on its own within the
/// deadline); returns the exit status, stdout and stderr.
pub fn run_to_exit(arguments: &[&str]) -> (ExitStatus, String, Vec<String>) {
    let mut child = binary()
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the allocdb binary starts");
    let mut stderr = StderrLines::new(&mut child);
    let stdout = child.stdout.take().unwrap();
    let stdout_reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let deadline = Instant::now() + PROCESS_DEADLINE;
    // `next_line` panics at the deadline; the child is then killed by this guard.
    let mut guard = KillOnPanic(Some(child));
    stderr.read_to_end(deadline);
    let mut child = guard.0.take().unwrap();
    let status = child.wait().unwrap();
    (status, stdout_reader.join().unwrap(), stderr.seen)
}

/// Kills and reaps the child it holds when dropped (a test that panics leaves no process).
struct KillOnPanic(Option<Child>);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
