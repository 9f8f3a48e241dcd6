//! Forming a cluster of processes: every process connects to every other over TCP,
//! checks that they run the same layout and job settings, and hands the sockets to timely.
//!
//! timely's own connection code retries forever, prints to stdout (which carries only
//! alerts) and cannot tell a peer that never started from a slow one. Here the sockets
//! are made first, under a start timeout, with a handshake that names both sides, and
//! then given to `initialize_networking_from_sockets`, as timely's `Cluster` config
//! would after its own connection step. As in timely, process `i` listens on
//! `addresses[i]`, connects to every lower index and accepts every higher one.

use std::any::Any;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use timely::communication::allocator::ProcessBuilder;
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::{AllocatorBuilder, Hooks};

use crate::config::{ClusterConfig, ClusterSetting};

/// Why the cluster did not form.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// This process could not listen on its own address.
    #[error("process {process} cannot listen on {address}: {source}")]
    Bind {
        /// This process's index.
        process: usize,
        /// Its address in the hostfile.
        address: String,
        /// The error.
        source: io::Error,
    },
    /// Some peers did not connect in time.
    #[error(
        "the cluster did not form within {}: no connection with {}; check that every process of the hostfile is started, with the same hostfile, and reachable",
        humantime::format_duration(*.timeout),
        .missing.join(", ")
    )]
    StartTimeout {
        /// The start timeout.
        timeout: Duration,
        /// `process N (host:port)` of each peer not connected.
        missing: Vec<String>,
    },
    /// A peer runs a different layout or job, or broke the handshake.
    #[error("{peer} is not part of this cluster: {what}")]
    Mismatch {
        /// `process N (host:port)`, or the remote address of an unknown connection.
        peer: String,
        /// What differs.
        what: String,
    },
    /// timely could not start its communication threads.
    #[error("cannot start the cluster's communication threads: {0}")]
    Threads(io::Error),
}

/// What every process announces to each peer when they connect.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hello {
    process: u32,
    processes: u32,
    workers: u32,
    /// The job's [`ClusterSetting`]s, which every process must share.
    settings: Vec<(String, String)>,
}

const MAGIC: &[u8; 8] = b"tidelake";
const VERSION: u32 = 2;
/// Magic, version, process, processes, workers, length of the settings.
const HEAD: usize = 28;
/// A bound on the settings' length, against a peer that sends garbage.
const MAX_SETTINGS: usize = 1 << 20;
/// How long a connected peer may take to send its half of the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between connection attempts.
const RETRY: Duration = Duration::from_millis(100);

impl Hello {
    fn write(&self, stream: &mut TcpStream) -> io::Result<()> {
        let settings = serde_json::to_vec(&self.settings)?;
        let len = u32::try_from(settings.len())
            .ok()
            .filter(|&n| n as usize <= MAX_SETTINGS)
            .ok_or_else(|| io::Error::other("the job's settings are too long"))?;
        let mut bytes = Vec::with_capacity(HEAD + settings.len());
        bytes.extend_from_slice(MAGIC);
        for n in [VERSION, self.process, self.processes, self.workers, len] {
            bytes.extend_from_slice(&n.to_le_bytes());
        }
        bytes.extend_from_slice(&settings);
        stream.write_all(&bytes)?;
        stream.flush()
    }

    /// Reads a hello; `Ok(Err(what))` when the peer spoke but not tidelake's handshake.
    fn read(stream: &mut TcpStream) -> io::Result<Result<Hello, String>> {
        let mut head = [0u8; HEAD];
        stream.read_exact(&mut head)?;
        if &head[..8] != MAGIC {
            return Ok(Err("it does not speak tidelake's cluster handshake".into()));
        }
        let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        if word(8) != VERSION {
            return Ok(Err(format!(
                "it runs cluster protocol version {}, this process {VERSION}; run the same tidelake version on every process",
                word(8)
            )));
        }
        let len = word(24) as usize;
        if len > MAX_SETTINGS {
            return Ok(Err(format!("it sent {len} bytes of settings")));
        }
        let mut settings = vec![0u8; len];
        stream.read_exact(&mut settings)?;
        let Ok(settings) = serde_json::from_slice(&settings) else {
            return Ok(Err("it sent settings that are not JSON".into()));
        };
        Ok(Ok(Hello {
            process: word(12),
            processes: word(16),
            workers: word(20),
            settings,
        }))
    }

    /// What differs between this process's hello and a peer's, if anything.
    fn differences(&self, peer: &Hello) -> Option<String> {
        let mut what = Vec::new();
        if peer.processes != self.processes {
            what.push(format!(
                "its hostfile names {} processes, this one's {}",
                peer.processes, self.processes
            ));
        }
        if peer.workers != self.workers {
            what.push(format!(
                "it runs --workers {}, this process --workers {}",
                peer.workers, self.workers
            ));
        }
        let value = |settings: &[(String, String)], name: &str| {
            settings
                .iter()
                .find(|(n, _)| n == name)
                .map_or_else(|| "(unset)".to_owned(), |(_, v)| v.clone())
        };
        let mut names: Vec<&String> = Vec::new();
        for (name, _) in self.settings.iter().chain(&peer.settings) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for name in names {
            let (theirs, mine) = (value(&peer.settings, name), value(&self.settings, name));
            if theirs != mine {
                what.push(format!(
                    "it runs {name} {theirs:?}, this process {name} {mine:?}"
                ));
            }
        }
        (!what.is_empty()).then(|| what.join("; "))
    }
}

/// Connects this process to every peer of `cluster` (within its start timeout) and
/// builds timely's allocators over the sockets: one per local worker, plus the guard
/// of the communication threads, for `timely::execute::execute_from`.
pub fn connect(
    cluster: &ClusterConfig,
    workers: usize,
    settings: &[ClusterSetting],
) -> Result<(Vec<AllocatorBuilder>, Box<dyn Any + Send>), ClusterError> {
    let me = Hello {
        process: cluster.process as u32,
        processes: cluster.addresses.len() as u32,
        workers: workers as u32,
        settings: settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
    };
    let sockets = connect_sockets(cluster, &me)?;
    let hooks = Hooks::default();
    let local =
        ProcessBuilder::new_typed_vector(workers, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) =
        initialize_networking_from_sockets(local, sockets, cluster.process, workers, hooks)
            .map_err(ClusterError::Threads)?;
    let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
    Ok((builders, Box::new(guard)))
}

/// One blocking socket per peer, in process order, `None` at this process's index.
fn connect_sockets(
    cluster: &ClusterConfig,
    me: &Hello,
) -> Result<Vec<Option<TcpStream>>, ClusterError> {
    let (process, addresses) = (cluster.process, &cluster.addresses);
    let listen = cluster.listen.as_ref().unwrap_or(&addresses[process]);
    let listener = TcpListener::bind(listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| ClusterError::Bind {
            process,
            address: listen.clone(),
            source,
        })?;
    let deadline = Instant::now() + cluster.start_timeout;
    let mut sockets: Vec<Option<TcpStream>> = (0..addresses.len()).map(|_| None).collect();
    loop {
        let mut progressed = false;
        for peer in 0..process {
            if sockets[peer].is_none()
                && let Some(stream) = try_connect(&addresses[peer])
            {
                sockets[peer] = Some(handshake(stream, me, Some(peer), addresses)?.1);
                progressed = true;
            }
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let (peer, stream) = handshake(stream, me, None, addresses)?;
                if peer <= process || sockets[peer].is_some() {
                    return Err(ClusterError::Mismatch {
                        peer: describe(peer, addresses),
                        what: format!(
                            "it connected as process {peer}, which process {process} does not expect a connection from"
                        ),
                    });
                }
                sockets[peer] = Some(stream);
                progressed = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                return Err(ClusterError::Bind {
                    process,
                    address: listen.clone(),
                    source: e,
                });
            }
        }
        let missing: Vec<String> = (0..addresses.len())
            .filter(|&i| i != process && sockets[i].is_none())
            .map(|i| describe(i, addresses))
            .collect();
        if missing.is_empty() {
            return Ok(sockets);
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::StartTimeout {
                timeout: cluster.start_timeout,
                missing,
            });
        }
        if !progressed {
            std::thread::sleep(RETRY);
        }
    }
}

/// `process N (host:port)`.
fn describe(peer: usize, addresses: &[String]) -> String {
    format!("process {peer} ({})", addresses[peer])
}

/// One attempt to reach `address` (which may not resolve yet, as a pod's DNS name
/// before the pod is up).
fn try_connect(address: &str) -> Option<TcpStream> {
    let addrs: Vec<SocketAddr> = address.to_socket_addrs().ok()?.collect();
    addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(1)).ok())
}

/// Exchanges hellos on a new connection (the connecting side writes first) and checks
/// the peer: `expected` is the peer's index when this side connected. Returns the
/// peer's index and the stream, blocking, ready for timely.
fn handshake(
    mut stream: TcpStream,
    me: &Hello,
    expected: Option<usize>,
    addresses: &[String],
) -> Result<(usize, TcpStream), ClusterError> {
    let label = match expected {
        Some(peer) => describe(peer, addresses),
        None => stream.peer_addr().map_or_else(
            |_| "a connecting process".into(),
            |a| format!("the process connecting from {a}"),
        ),
    };
    let exchanged = (|| -> io::Result<Result<Hello, String>> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        if expected.is_some() {
            me.write(&mut stream)?;
        }
        let hello = Hello::read(&mut stream)?;
        if expected.is_none() && hello.is_ok() {
            me.write(&mut stream)?;
        }
        stream.set_read_timeout(None)?;
        Ok(hello)
    })();
    let hello = match exchanged {
        Ok(Ok(hello)) => hello,
        Ok(Err(what)) => return Err(ClusterError::Mismatch { peer: label, what }),
        Err(e) => {
            return Err(ClusterError::Mismatch {
                peer: label,
                what: format!("the handshake failed: {e}"),
            });
        }
    };
    let peer = hello.process as usize;
    // An accepted peer is known by its index once it has said it.
    let label = match expected {
        None if peer < addresses.len() => describe(peer, addresses),
        _ => label,
    };
    if let Some(what) = me.differences(&hello) {
        return Err(ClusterError::Mismatch { peer: label, what });
    }
    if peer >= addresses.len() || expected.is_some_and(|e| e != peer) {
        return Err(ClusterError::Mismatch {
            peer: label,
            what: format!("it announced itself as process {peer}"),
        });
    }
    Ok((peer, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    fn cluster(process: usize, addresses: &[String], timeout_ms: u64) -> ClusterConfig {
        ClusterConfig {
            process,
            addresses: addresses.to_vec(),
            listen: None,
            start_timeout: Duration::from_millis(timeout_ms),
        }
    }

    fn hello(process: usize, processes: usize, workers: u32, job: &str) -> Hello {
        Hello {
            process: process as u32,
            processes: processes as u32,
            workers,
            settings: vec![("--job-id".into(), job.into())],
        }
    }

    #[test]
    fn three_processes_connect_each_to_each() {
        let addresses: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let addresses = addresses.clone();
                std::thread::spawn(move || {
                    connect_sockets(&cluster(i, &addresses, 10_000), &hello(i, 3, 2, "j"))
                        .map(|s| s.iter().map(Option::is_some).collect::<Vec<_>>())
                })
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            let connected = t.join().expect("thread").expect("connected");
            let expected: Vec<bool> = (0..3).map(|p| p != i).collect();
            assert_eq!(connected, expected);
        }
    }

    #[test]
    fn a_peer_that_never_starts_fails_the_start_after_the_timeout() {
        let addresses = vec![
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        ];
        let started = Instant::now();
        let error = connect_sockets(&cluster(0, &addresses, 300), &hello(0, 2, 1, "j"))
            .expect_err("no peer");
        assert!(started.elapsed() < Duration::from_secs(5));
        let message = error.to_string();
        assert!(
            message.contains("within 300ms")
                && message.contains(&format!("process 1 ({})", addresses[1])),
            "{message}"
        );
    }

    #[test]
    fn peers_of_another_layout_are_refused_by_name() {
        let addresses = vec![
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        ];
        let other = addresses.clone();
        let zero = std::thread::spawn(move || {
            connect_sockets(&cluster(0, &other, 10_000), &hello(0, 2, 2, "job-a")).map(|_| ())
        });
        let one = connect_sockets(&cluster(1, &addresses, 10_000), &hello(1, 2, 4, "job-b"));
        let message = one.expect_err("mismatch").to_string();
        assert!(
            message.contains("process 0")
                && message.contains("--workers 2, this process --workers 4")
                && message.contains("job-a"),
            "{message}"
        );
        let _ = zero.join();
    }

    #[test]
    fn differing_settings_are_named_with_both_values() {
        let settings = |count: &str, start: &str| {
            vec![
                ("--count".to_owned(), count.to_owned()),
                ("--start".to_owned(), start.to_owned()),
                ("--tick".to_owned(), "100ms".to_owned()),
            ]
        };
        let mine = Hello {
            settings: settings("10", "1970-01-01T00:00:00Z"),
            ..hello(0, 2, 1, "")
        };
        let same = Hello {
            process: 1,
            ..mine.clone()
        };
        assert_eq!(mine.differences(&same), None);
        let mut theirs = Hello {
            settings: settings("20", "1970-01-01T00:00:01Z"),
            ..same
        };
        theirs.settings.push(("--new-flag".into(), "x".into()));
        assert_eq!(
            mine.differences(&theirs).as_deref(),
            Some(
                "it runs --count \"20\", this process --count \"10\"; \
                 it runs --start \"1970-01-01T00:00:01Z\", this process --start \"1970-01-01T00:00:00Z\"; \
                 it runs --new-flag \"x\", this process --new-flag \"(unset)\""
            )
        );
    }

    #[test]
    fn a_taken_address_is_a_bind_error() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = taken.local_addr().expect("addr").to_string();
        let error = connect_sockets(
            &cluster(0, std::slice::from_ref(&address), 100),
            &hello(0, 1, 1, ""),
        )
        .expect_err("taken");
        assert!(matches!(error, ClusterError::Bind { .. }), "{error}");
        assert!(error.to_string().contains(&address));
    }
}
