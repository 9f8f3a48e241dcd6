//! A real S3 server for the tests: moto's standalone server from the test venv
//! (`.venv/bin/moto_server`, see `scripts/test.sh`), on a free loopback port, stopped
//! when the [`MotoServer`] is dropped.
//!
//! moto keeps everything in memory, checks no signature and accepts any credentials;
//! it honours `If-None-Match: *`, so put-if-absent works as on AWS.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::python::Python;
use crate::support::free_port;

/// The bucket every server starts with.
pub const BUCKET: &str = "tidelake";

/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A moto S3 server on `127.0.0.1`, killed on drop.
pub struct MotoServer {
    child: Child,
    port: u16,
    /// Holds the server's log (`moto.log`) until the server is dropped.
    log_dir: tempfile::TempDir,
}

impl MotoServer {
    /// Starts a server on a free port and creates the bucket [`BUCKET`] in it.
    pub fn start() -> MotoServer {
        let exe = moto_server_exe();
        let mut last_failure = String::new();
        for _ in 0..5 {
            match Self::try_start(&exe) {
                Ok(server) => {
                    server.create_bucket(BUCKET);
                    return server;
                }
                // Most likely another process took the port between our probe and moto's
                // bind: try another one.
                Err(failure) => last_failure = failure,
            }
        }
        panic!("moto_server did not start after 5 attempts: {last_failure}");
    }

    fn try_start(exe: &PathBuf) -> Result<MotoServer, String> {
        let port = free_port();
        let log_dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let log = std::fs::File::create(log_dir.path().join("moto.log"))
            .map_err(|e| format!("moto log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("moto log file: {e}"))?;
        let child = Command::new(exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        // From here on, Drop stops the process whatever happens.
        let mut server = MotoServer {
            child,
            port,
            log_dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "moto_server on port {port} exited with {status}: {}",
                    server.log_tail()
                ));
            }
            if let Ok((200, _)) = server.request("GET", "/moto-api/") {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "moto_server on port {port} did not answer within {START_TIMEOUT:?}: {}",
                    server.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that points `object_store`, delta-rs and pyarrow at this server:
    /// `AWS_ENDPOINT`, `AWS_ALLOW_HTTP=true`, dummy credentials and `us-east-1`.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint().as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "tidelake-test"),
            ("AWS_SECRET_ACCESS_KEY", "tidelake-test"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Creates bucket `name` with an unsigned `PUT /name` (moto checks no signature).
    pub fn create_bucket(&self, name: &str) {
        match self.request("PUT", &format!("/{name}")) {
            Ok((200, _)) => {}
            Ok((status, body)) => panic!("creating bucket {name}: HTTP {status}: {body}"),
            Err(e) => panic!("creating bucket {name}: {e}"),
        }
    }

    /// One HTTP/1.1 request with an empty body; the status code and body of the answer.
    fn request(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, self.port).into(),
            Duration::from_secs(2),
        )?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let response = String::from_utf8_lossy(&response);
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| {
                std::io::Error::other(format!("not an HTTP response: {response:.200}"))
            })?;
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
            .to_owned();
        Ok((status, body))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_dir.path().join("moto.log")).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        log.get(start..).unwrap_or(&log).to_owned()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `moto_server` next to the tests' Python interpreter (in the venv's `bin`).
fn moto_server_exe() -> PathBuf {
    let python = Python::find();
    let exe = python
        .interpreter()
        .parent()
        .map(|bin| bin.join("moto_server"))
        .unwrap_or_default();
    assert!(
        exe.is_file(),
        "{} not found: run bash scripts/test.sh once to create .venv",
        exe.display()
    );
    exe
}
