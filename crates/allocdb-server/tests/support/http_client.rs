//! A minimal blocking HTTP/1.1 client for tests, on `std::net` alone.
//!
//! Why not reqwest or hyper's client: the tests need raw control anyway (declared lengths that
//! lie, half-sent headers, idle keep-alive sockets), and ~150 lines of std code cost no compile
//! time, where a client crate would add its own dependency tree to every test build. It speaks
//! only what the server sends: a status line, headers, and a body framed by `Content-Length`
//! or chunked encoding. Every socket has a read and write timeout, so a hung server fails the
//! test with a message instead of hanging it.
//!
//! The black-box tests of the `allocdb` binary include this file by path.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Bound on every connect, read and write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A response.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics with the body text if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str())
    }
}

/// A connected socket with the test timeouts.
pub fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)
        .unwrap_or_else(|error| panic!("cannot connect to {address}: {error}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Writes one request. `Content-Length` is added for a body unless `headers` sets it or
/// `Transfer-Encoding`.
pub fn send(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<()> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let framed = headers.iter().any(|(name, _)| {
        name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
    });
    if let Some(body) = body
        && !framed
    {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if let Some(body) = body {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// Reads one response (`Ok(None)`: the server closed the connection before a status line).
pub fn read_reply(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Reply>> {
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Ok(None);
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("bad header line {line:?}"));
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut reply = Reply { status, headers, body: Vec::new() };
    if reply.header("transfer-encoding").is_some_and(|value| value.contains("chunked")) {
        reply.body = read_chunked(reader)?;
    } else if let Some(length) = reply.header("content-length") {
        let mut body = vec![0; length.parse().unwrap()];
        reader.read_exact(&mut body)?;
        reply.body = body;
    }
    Ok(Some(reply))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// One request on a fresh connection.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut stream = connect(address);
    send(&mut stream, method, path, headers, body)
        .unwrap_or_else(|error| panic!("{method} {path}: cannot send: {error}"));
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader)
        .unwrap_or_else(|error| panic!("{method} {path}: cannot read the reply: {error}"))
        .unwrap_or_else(|| panic!("{method} {path}: connection closed without a reply"))
}

/// `GET path`.
pub fn get(address: SocketAddr, path: &str) -> Reply {
    request(address, "GET", path, &[], None)
}

/// `POST path` with a JSON body.
pub fn post_json(address: SocketAddr, path: &str, body: &serde_json::Value) -> Reply {
    post_json_with(address, path, body, &[])
}

/// `POST path` with a JSON body and extra headers.
pub fn post_json_with(
    address: SocketAddr,
    path: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> Reply {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(address, "POST", path, &all, Some(body.to_string().as_bytes()))
}
