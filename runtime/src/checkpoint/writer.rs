//! The thread that writes a process's checkpoint files, so the workers keep stepping
//! the dataflow while parts and manifests are encoded and stored.
//!
//! Requests are served in order, each with a current-thread tokio runtime for the
//! object store; every answer goes back on the requester's channel, which is woken with
//! a [`SyncActivator`].

use std::sync::mpsc;
use std::thread::JoinHandle;

use timely::scheduling::SyncActivator;

use tidelake_sinks::fault_injection::pause_if_asked;

use super::store::CheckpointStore;
use super::{CheckpointError, Manifest, Part, PartEntry};

/// What the writer is asked to do.
enum Request {
    Parts {
        attempt: u64,
        parts: Vec<Part>,
        reply: Reply<Vec<PartEntry>>,
    },
    Manifest {
        manifest: Box<Manifest>,
        retain: usize,
        reply: Reply<Manifest>,
    },
}

/// Where an answer goes, and whom to wake.
struct Reply<T> {
    to: mpsc::Sender<Result<T, CheckpointError>>,
    wake: SyncActivator,
}

impl<T> Reply<T> {
    fn send(self, result: Result<T, CheckpointError>) {
        // The requester is gone if either fails: nothing is waiting.
        let _ = self.to.send(result);
        let _ = self.wake.activate();
    }
}

/// The writer thread of one process.
pub(crate) struct CheckpointWriter {
    requests: Option<mpsc::Sender<Request>>,
    handle: Option<JoinHandle<()>>,
}

impl CheckpointWriter {
    /// Starts the thread writing to `store`.
    pub(crate) fn start(store: CheckpointStore) -> Result<Self, CheckpointError> {
        let (requests, requests_rx) = mpsc::channel::<Request>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CheckpointError::Location {
                url: store.url().to_owned(),
                message: format!("cannot start an I/O runtime: {e}"),
            })?;
        let handle = std::thread::Builder::new()
            .name("checkpoint-io".to_owned())
            .spawn(move || {
                for request in requests_rx {
                    match request {
                        Request::Parts {
                            attempt,
                            parts,
                            reply,
                        } => reply.send(runtime.block_on(store.write_parts(attempt, &parts))),
                        Request::Manifest {
                            manifest,
                            retain,
                            reply,
                        } => {
                            let result = runtime.block_on(async {
                                pause_if_asked("manifest");
                                store.write_manifest(&manifest).await?;
                                store.retain(retain, manifest.attempt).await?;
                                Ok(*manifest)
                            });
                            reply.send(result);
                        }
                    }
                }
            })
            .map_err(|e| CheckpointError::Location {
                url: String::new(),
                message: format!("cannot start the checkpoint I/O thread: {e}"),
            })?;
        Ok(CheckpointWriter {
            requests: Some(requests),
            handle: Some(handle),
        })
    }

    /// Writes `parts` (one worker's, in boundary order) of run `attempt` in one file;
    /// their entries (or the error) go to `to`.
    pub(crate) fn write_parts(
        &self,
        attempt: u64,
        parts: Vec<Part>,
        to: &mpsc::Sender<Result<Vec<PartEntry>, CheckpointError>>,
        wake: SyncActivator,
    ) {
        self.send(Request::Parts {
            attempt,
            parts,
            reply: Reply {
                to: to.clone(),
                wake,
            },
        });
    }

    /// Writes `manifest`, then keeps the newest `retain` complete checkpoints; the
    /// manifest (or the error) goes to `to`.
    pub(crate) fn write_manifest(
        &self,
        manifest: Manifest,
        retain: usize,
        to: &mpsc::Sender<Result<Manifest, CheckpointError>>,
        wake: SyncActivator,
    ) {
        self.send(Request::Manifest {
            manifest: Box::new(manifest),
            retain,
            reply: Reply {
                to: to.clone(),
                wake,
            },
        });
    }

    fn send(&self, request: Request) {
        // The thread only ends when this writer is dropped.
        if let Some(requests) = &self.requests {
            let _ = requests.send(request);
        }
    }
}

impl Drop for CheckpointWriter {
    /// Finishes what was asked, then ends the thread.
    fn drop(&mut self) {
        self.requests = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
