//! The handshake on every connection between two processes of a cluster, before timely
//! gets the socket: first each side proves it knows the cluster's secret, then they
//! compare layouts and job settings.
//!
//! The connecting side writes first:
//!
//! 1. connector → `tidelake`, protocol version (u32 LE), mode (1: with a secret, 0:
//!    without), a 32-byte random nonce `nc`;
//! 2. acceptor → the same header with its own nonce `na`, and
//!    `HMAC-SHA256(secret, "tidelake cluster v3 acceptor" ‖ nc ‖ na)`;
//! 3. connector → `HMAC-SHA256(secret, "tidelake cluster v3 connector" ‖ na ‖ nc)`,
//!    then its [`Hello`] (process index, process count, workers, job settings);
//! 4. acceptor → its own [`Hello`], once it has checked the connector's proof.
//!
//! So neither side says anything about the job before the other has proven that it
//! knows the secret, and fresh nonces on both sides make a recorded handshake useless.
//! Without a secret (mode 0, allowed only on loopback addresses) the same exchange runs
//! with an empty key, which proves nothing but keeps one code path. The links are not
//! encrypted: timely takes plain `TcpStream`s.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use hmac::{KeyInit, Mac};

use crate::config::ClusterSecret;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const MAGIC: &[u8; 8] = b"tidelake";
/// The cluster protocol version: 3 since processes authenticate each other.
pub(super) const VERSION: u32 = 3;
const NONCE: usize = 32;
const MAC: usize = 32;
/// Magic, version, mode, nonce.
const CHALLENGE: usize = 8 + 4 + 1 + NONCE;
/// Process, processes, workers, length of the settings.
const HELLO_HEAD: usize = 16;
/// A bound on the settings' length, against a peer that sends garbage.
const MAX_SETTINGS: usize = 1 << 20;

/// What every process tells each peer once they have authenticated each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Hello {
    pub(super) process: u32,
    pub(super) processes: u32,
    pub(super) workers: u32,
    /// The job's cluster settings, which every process must share.
    pub(super) settings: Vec<(String, String)>,
}

/// Why a handshake did not complete.
#[derive(Debug)]
pub(super) enum Failure {
    /// The other side did not prove it belongs to the cluster (a stray connection, a
    /// port scan, another program, another version, a wrong secret): drop the
    /// connection and keep waiting for the real peer.
    Untrusted(String),
    /// The other side is an authenticated process of the cluster that runs another
    /// layout or job: the cluster cannot form.
    Mismatch(String),
    /// The connection broke or timed out before the other side said what it is; a
    /// weaker reason than [`Untrusted`](Self::Untrusted) (a peer that stops while a
    /// handshake is under way resets it).
    Broken(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Broken(match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                "it closed the connection during the handshake (it may not know this cluster's secret)"
                    .to_owned()
            }
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                "it did not complete the handshake in time".to_owned()
            }
            _ => format!("the handshake failed: {e}"),
        })
    }
}

/// One side's key: the cluster secret, or empty without one.
struct Key<'a> {
    secret: Option<&'a ClusterSecret>,
}

impl Key<'_> {
    fn mode(&self) -> u8 {
        u8::from(self.secret.is_some())
    }

    fn mac(&self, label: &[u8], first: &[u8], second: &[u8]) -> [u8; MAC] {
        let mut mac = self.hmac();
        mac.update(label);
        mac.update(first);
        mac.update(second);
        mac.finalize().into_bytes().into()
    }

    /// Checks `mac` in constant time.
    fn verify(&self, label: &[u8], first: &[u8], second: &[u8], mac: &[u8]) -> bool {
        let mut expected = self.hmac();
        expected.update(label);
        expected.update(first);
        expected.update(second);
        expected.verify_slice(mac).is_ok()
    }

    fn hmac(&self) -> HmacSha256 {
        let key = self.secret.map_or(&[][..], ClusterSecret::bytes);
        // HMAC takes keys of any length.
        <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
    }
}

const ACCEPTOR: &[u8] = b"tidelake cluster v3 acceptor";
const CONNECTOR: &[u8] = b"tidelake cluster v3 connector";

fn nonce() -> io::Result<[u8; NONCE]> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(nonce)
}

fn challenge(mode: u8, nonce: &[u8; NONCE]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(CHALLENGE);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.push(mode);
    bytes.extend_from_slice(nonce);
    bytes
}

/// Reads the other side's challenge header and nonce, checking magic, version and mode.
fn read_challenge(stream: &mut TcpStream, mode: u8) -> Result<[u8; NONCE], Failure> {
    let mut head = [0u8; CHALLENGE];
    // The magic first: a stray client that sends less than a challenge is told apart
    // at once, not when it gives up.
    stream.read_exact(&mut head[..8])?;
    if &head[..8] != MAGIC {
        return Err(Failure::Untrusted(
            "it does not speak tidelake's cluster handshake".into(),
        ));
    }
    stream.read_exact(&mut head[8..])?;
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version != VERSION {
        return Err(Failure::Untrusted(format!(
            "it runs cluster protocol version {version}, this process {VERSION}; run the same tidelake version on every process"
        )));
    }
    match (head[12], mode) {
        (a, b) if a == b => {}
        (0, _) => {
            return Err(Failure::Untrusted(
                "it runs without a cluster secret and this process with one; give every process the same --cluster-secret-file (or TIDELAKE_CLUSTER_SECRET)".into(),
            ));
        }
        _ => {
            return Err(Failure::Untrusted(
                "it runs with a cluster secret and this process without one; give every process the same --cluster-secret-file (or TIDELAKE_CLUSTER_SECRET)".into(),
            ));
        }
    }
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(&head[13..]);
    Ok(nonce)
}

/// The connecting side of the handshake (see the [module docs](self)): returns the
/// peer's hello once both sides are authenticated and have exchanged hellos.
pub(super) fn connect(
    stream: &mut TcpStream,
    secret: Option<&ClusterSecret>,
    me: &Hello,
) -> Result<Hello, Failure> {
    let key = Key { secret };
    let nc = nonce()?;
    stream.write_all(&challenge(key.mode(), &nc))?;
    let na = read_challenge(stream, key.mode())?;
    let mut proof = [0u8; MAC];
    stream.read_exact(&mut proof)?;
    if !key.verify(ACCEPTOR, &nc, &na, &proof) {
        return Err(Failure::Untrusted(
            "it does not know this cluster's secret; give every process the same --cluster-secret-file (or TIDELAKE_CLUSTER_SECRET)".into(),
        ));
    }
    let mut out = key.mac(CONNECTOR, &na, &nc).to_vec();
    me.encode(&mut out)?;
    stream.write_all(&out)?;
    stream.flush()?;
    Hello::read(stream)
}

/// The accepting side of the handshake (see the [module docs](self)): returns the
/// peer's hello once both sides are authenticated and have exchanged hellos.
pub(super) fn accept(
    stream: &mut TcpStream,
    secret: Option<&ClusterSecret>,
    me: &Hello,
) -> Result<Hello, Failure> {
    let key = Key { secret };
    let nc = read_challenge(stream, key.mode())?;
    let na = nonce()?;
    let mut out = challenge(key.mode(), &na);
    out.extend_from_slice(&key.mac(ACCEPTOR, &nc, &na));
    stream.write_all(&out)?;
    stream.flush()?;
    let mut proof = [0u8; MAC];
    stream.read_exact(&mut proof)?;
    if !key.verify(CONNECTOR, &na, &nc, &proof) {
        return Err(Failure::Untrusted(
            "it does not know this cluster's secret".into(),
        ));
    }
    let peer = Hello::read(stream)?;
    let mut out = Vec::new();
    me.encode(&mut out)?;
    stream.write_all(&out)?;
    stream.flush()?;
    Ok(peer)
}

impl Hello {
    fn encode(&self, out: &mut Vec<u8>) -> io::Result<()> {
        let settings = serde_json::to_vec(&self.settings)?;
        let len = u32::try_from(settings.len())
            .ok()
            .filter(|&n| n as usize <= MAX_SETTINGS)
            .ok_or_else(|| io::Error::other("the job's settings are too long"))?;
        for n in [self.process, self.processes, self.workers, len] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&settings);
        Ok(())
    }

    fn read(stream: &mut TcpStream) -> Result<Hello, Failure> {
        let mut head = [0u8; HELLO_HEAD];
        stream.read_exact(&mut head)?;
        let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let len = word(12) as usize;
        if len > MAX_SETTINGS {
            return Err(Failure::Untrusted(format!(
                "it sent {len} bytes of settings"
            )));
        }
        let mut settings = vec![0u8; len];
        stream.read_exact(&mut settings)?;
        let settings = serde_json::from_slice(&settings)
            .map_err(|_| Failure::Untrusted("it sent settings that are not JSON".into()))?;
        Ok(Hello {
            process: word(0),
            processes: word(4),
            workers: word(8),
            settings,
        })
    }

    /// What differs between this process's hello and a peer's, if anything.
    pub(super) fn differences(&self, peer: &Hello) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    fn hello(process: u32) -> Hello {
        Hello {
            process,
            processes: 2,
            workers: 1,
            settings: vec![("--job-id".into(), "j".into())],
        }
    }

    /// Runs `accept` with `acceptor`'s secret against `connect` with `connector`'s.
    fn handshake(
        acceptor: Option<&str>,
        connector: Option<&str>,
    ) -> (Result<Hello, Failure>, Result<Hello, Failure>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        let secret = acceptor.map(|s| ClusterSecret::new(s.as_bytes().to_vec()));
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            accept(&mut stream, secret.as_ref(), &hello(0))
        });
        let mut stream = TcpStream::connect(address).expect("connect");
        let secret = connector.map(|s| ClusterSecret::new(s.as_bytes().to_vec()));
        let client = connect(&mut stream, secret.as_ref(), &hello(1));
        drop(stream);
        (server.join().expect("server"), client)
    }

    fn untrusted(result: Result<Hello, Failure>) -> String {
        match result {
            Err(Failure::Untrusted(why) | Failure::Broken(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn the_same_secret_or_none_completes_the_handshake() {
        for secret in [Some("a long enough cluster secret"), None] {
            let (server, client) = handshake(secret, secret);
            assert_eq!(server.expect("server").process, 1);
            assert_eq!(client.expect("client").process, 0);
        }
    }

    #[test]
    fn a_wrong_or_missing_secret_is_refused_before_any_setting_is_sent() {
        let (server, client) = handshake(Some("the cluster's secret"), Some("another secret"));
        assert!(untrusted(client).contains("does not know this cluster's secret"));
        // The connector hung up before proving itself: the acceptor sent no hello.
        untrusted(server);

        let (server, client) = handshake(Some("the cluster's secret"), None);
        assert!(untrusted(server).contains("without a cluster secret"));
        untrusted(client);
    }

    #[test]
    fn stray_bytes_are_not_a_handshake() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        let writer = thread::spawn(move || {
            let mut stream = TcpStream::connect(address).expect("connect");
            let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxx");
        });
        let (mut stream, _) = listener.accept().expect("accept");
        let why = untrusted(accept(&mut stream, None, &hello(0)));
        assert!(
            why.contains("does not speak tidelake's cluster handshake"),
            "{why}"
        );
        writer.join().expect("writer");
    }
}
