//! Forming a cluster of processes: every process connects to every other over TCP,
//! proves it knows the cluster's secret, checks that they run the same layout and job
//! settings, and hands the sockets to timely.
//!
//! timely's own connection code retries forever, prints to stdout (which carries only
//! alerts), cannot tell a peer that never started from a slow one, and lets anyone who
//! reaches the port in. Here the sockets are made first, under a start timeout, with a
//! [`handshake`] that authenticates both sides (HMAC of fresh nonces with the cluster
//! secret) before it names either side's settings, and then given to
//! `initialize_networking_from_sockets`, as timely's `Cluster` config would after its
//! own connection step. As in timely, process `i` listens on `addresses[i]`, connects
//! to every lower index and accepts every higher one.
//!
//! A connection that does not authenticate (a port scan, a health probe, another
//! program, a wrong secret) is logged and dropped, and the process keeps waiting for the
//! real peer until the start timeout. Without a secret every address must be a loopback
//! one. The links are not encrypted: timely takes plain `TcpStream`s, so run clusters
//! of several machines on a trusted network (a VPN, WireGuard, a service mesh).
//!
//! On one host, `tidelake launch` starts and watches the processes with the
//! [`supervisor`]; each of them stops once its launcher is gone ([`launcher_watch`]).

use std::any::Any;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use timely::communication::allocator::ProcessBuilder;
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::{AllocatorBuilder, Hooks};

use crate::config::{ClusterConfig, ClusterSecret};

mod handshake;
pub mod launcher_watch;
pub mod supervisor;

use handshake::{Failure, Hello};

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
        "the cluster did not form within {}: no connection with {}; check that every process of the hostfile is started, with the same hostfile and cluster secret, and reachable",
        humantime::format_duration(*.timeout),
        .missing.join(", ")
    )]
    StartTimeout {
        /// The start timeout.
        timeout: Duration,
        /// `process N (host:port)` of each peer not connected, with the last reason a
        /// connection to it failed, if one did.
        missing: Vec<String>,
    },
    /// The cluster would accept connections from other hosts without a secret.
    #[error(
        "{address} is not a loopback address, and processes of a cluster on several hosts must prove to each other that they belong to it: give every process the same --cluster-secret-file (or TIDELAKE_CLUSTER_SECRET)"
    )]
    NoSecret {
        /// The address (a hostfile line, or --listen).
        address: String,
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

/// How long a connected peer may take to complete its half of the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between connection attempts.
const RETRY: Duration = Duration::from_millis(100);
/// Handshakes of accepted connections under way at once; more are dropped at once.
const MAX_PENDING_HANDSHAKES: usize = 64;

/// Connects this process to every peer of `cluster` (within its start timeout) and
/// builds timely's allocators over the sockets: one per local worker, plus the guard
/// of the communication threads, for `timely::execute::execute_from`.
pub fn connect(
    cluster: &ClusterConfig,
    workers: usize,
    settings: Vec<(String, String)>,
) -> Result<(Vec<AllocatorBuilder>, Box<dyn Any + Send>), ClusterError> {
    if cluster.secret.is_none() {
        check_loopback(cluster)?;
    }
    let me = Hello {
        process: cluster.process as u32,
        processes: cluster.addresses.len() as u32,
        workers: workers as u32,
        settings,
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

/// Refuses a cluster without a secret whose addresses (or `--listen`) are not all
/// loopback ones: anyone who could reach such a port could join the job.
fn check_loopback(cluster: &ClusterConfig) -> Result<(), ClusterError> {
    for address in cluster.addresses.iter().chain(&cluster.listen) {
        let resolved: Vec<SocketAddr> = address
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default();
        if resolved.is_empty() || !resolved.iter().all(|a| a.ip().is_loopback()) {
            return Err(ClusterError::NoSecret {
                address: address.clone(),
            });
        }
    }
    Ok(())
}

/// The outcome of the handshake on an accepted connection.
type Accepted = Result<(usize, TcpStream), (String, Failure)>;

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
    // Why the last attempt to reach each lower peer failed, for the timeout's message.
    let mut last_failure: Vec<Option<String>> = vec![None; addresses.len()];
    let (accepted_tx, accepted) = mpsc::channel::<Accepted>();
    let pending = Arc::new(AtomicUsize::new(0));
    loop {
        let mut progressed = false;
        for peer in 0..process {
            if sockets[peer].is_some() {
                continue;
            }
            let Some(mut stream) = try_connect(&addresses[peer]) else {
                continue;
            };
            match shake(&mut stream, cluster.secret.as_ref(), me, deadline, true) {
                Ok(hello) => {
                    check_peer(me, &hello, Some(peer), addresses)?;
                    sockets[peer] = Some(stream);
                    progressed = true;
                }
                Err(Failure::Mismatch(what)) => {
                    return Err(ClusterError::Mismatch {
                        peer: describe(peer, addresses),
                        what,
                    });
                }
                Err(Failure::Untrusted(why)) => last_failure[peer] = Some(why),
                // Only when nothing better is known: a definite refusal stays the
                // reason even if the peer later resets a connection as it stops.
                Err(Failure::Broken(why)) => {
                    last_failure[peer].get_or_insert(why);
                }
            }
        }
        loop {
            match listener.accept() {
                Ok((stream, from)) => {
                    if pending.load(Ordering::Relaxed) >= MAX_PENDING_HANDSHAKES {
                        log_dropped(&from.to_string(), "too many handshakes under way");
                        continue;
                    }
                    pending.fetch_add(1, Ordering::Relaxed);
                    let (tx, pending) = (accepted_tx.clone(), Arc::clone(&pending));
                    let (secret, me) = (cluster.secret.clone(), me.clone());
                    let addresses = addresses.clone();
                    std::thread::spawn(move || {
                        let outcome =
                            accept_peer(stream, from, secret.as_ref(), &me, &addresses, deadline);
                        let _ = tx.send(outcome);
                        pending.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    return Err(ClusterError::Bind {
                        process,
                        address: listen.clone(),
                        source: e,
                    });
                }
            }
        }
        while let Ok(outcome) = accepted.try_recv() {
            match outcome {
                Ok((peer, stream)) => {
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
                Err((peer, Failure::Mismatch(what))) => {
                    return Err(ClusterError::Mismatch { peer, what });
                }
                Err((from, Failure::Untrusted(why) | Failure::Broken(why))) => {
                    log_dropped(&from, &why)
                }
            }
        }
        let missing: Vec<String> = (0..addresses.len())
            .filter(|&i| i != process && sockets[i].is_none())
            .map(|i| match &last_failure[i] {
                Some(why) => format!("{} ({why})", describe(i, addresses)),
                None => describe(i, addresses),
            })
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

/// The handshake on a connection accepted from `from`, on a thread of its own: the
/// peer's index and the stream, or who it was and why it is not a peer.
fn accept_peer(
    mut stream: TcpStream,
    from: SocketAddr,
    secret: Option<&ClusterSecret>,
    me: &Hello,
    addresses: &[String],
    deadline: Instant,
) -> Accepted {
    let hello =
        shake(&mut stream, secret, me, deadline, false).map_err(|f| (from.to_string(), f))?;
    let peer = hello.process as usize;
    // An authenticated peer is known by the index it says.
    let label = match peer < addresses.len() {
        true => describe(peer, addresses),
        false => format!("the process connecting from {from}"),
    };
    check_peer_hello(me, &hello, None).map_err(|what| (label, Failure::Mismatch(what)))?;
    Ok((peer, stream))
}

/// Runs one side of the handshake on `stream` (blocking, with a read timeout no later
/// than the start deadline), leaving the stream blocking without a timeout, for timely.
fn shake(
    stream: &mut TcpStream,
    secret: Option<&ClusterSecret>,
    me: &Hello,
    deadline: Instant,
    connecting: bool,
) -> Result<Hello, Failure> {
    let timeout = deadline
        .saturating_duration_since(Instant::now())
        .clamp(Duration::from_millis(100), HANDSHAKE_TIMEOUT);
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let hello = if connecting {
        handshake::connect(stream, secret, me)
    } else {
        handshake::accept(stream, secret, me)
    }?;
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    Ok(hello)
}

/// Checks an authenticated peer's hello against this process's: its settings, and its
/// index (`expected` when this side connected to it).
fn check_peer(
    me: &Hello,
    hello: &Hello,
    expected: Option<usize>,
    addresses: &[String],
) -> Result<(), ClusterError> {
    check_peer_hello(me, hello, expected).map_err(|what| ClusterError::Mismatch {
        peer: match expected {
            Some(peer) => describe(peer, addresses),
            None => describe(hello.process as usize, addresses),
        },
        what,
    })
}

fn check_peer_hello(me: &Hello, hello: &Hello, expected: Option<usize>) -> Result<(), String> {
    if let Some(what) = me.differences(hello) {
        return Err(what);
    }
    let peer = hello.process as usize;
    if peer >= me.processes as usize || expected.is_some_and(|e| e != peer) {
        return Err(format!("it announced itself as process {peer}"));
    }
    Ok(())
}

/// Logs a connection that is not a peer of the cluster.
fn log_dropped(from: &str, why: &str) {
    tracing::warn!(from, "cluster: dropped a connection from {from}: {why}");
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
            secret: None,
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
