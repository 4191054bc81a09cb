//! A process session (an attach to a container's init, or an exec) as a
//! typed stream every front end uses: [`ProcessInput`] goes in,
//! [`ProcessEvent`]s come out, `Started` (exec) first, `Exit` last. The
//! front end only converts its own messages (`berth.v1`'s `IoIn`/`IoOut`
//! today, the CRI streaming server's next).
//!
//! The relay owns the cases where the shim cannot finish the story: the
//! shim gone without a last word (the recorded exit says how the process
//! ended), and an attach from the start to a container that had already
//! exited (its output since the start comes from the log).
use std::sync::Arc;

use berth_proto::shim as sp;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::{LogOptions, Manager, ShimStream};
use crate::error::Result;

/// Which of the process's outputs a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl OutputStream {
    /// The shim's number for it (the file descriptor: 1, 2).
    pub fn from_fd(fd: u32) -> Self {
        if fd == 2 {
            OutputStream::Stderr
        } else {
            OutputStream::Stdout
        }
    }
}

/// What a session says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessEvent {
    /// An exec's process runs, with this host PID.
    Started {
        pid: u32,
    },
    Output {
        stream: OutputStream,
        data: Vec<u8>,
    },
    /// The last event.
    Exit {
        code: i32,
        error: String,
    },
}

/// What a front end sends into a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessInput {
    Stdin(Vec<u8>),
    CloseStdin,
    Resize { width: u32, height: u32 },
}

/// Where a session's events go: the front end's own channel, each event
/// turned into its message by `map` as it is sent (no task and no second
/// channel between the core and the client).
pub struct EventSink<O> {
    pub tx: mpsc::Sender<O>,
    pub map: fn(Result<ProcessEvent>) -> O,
}

impl<O: Send + 'static> EventSink<O> {
    /// False once the front end has gone away.
    async fn send(&self, ev: Result<ProcessEvent>) -> bool {
        self.tx.send((self.map)(ev)).await.is_ok()
    }
}

fn to_shim(input: ProcessInput) -> sp::Input {
    use sp::input::Kind;
    let kind = match input {
        ProcessInput::Stdin(b) => Kind::Stdin(b),
        ProcessInput::CloseStdin => Kind::CloseStdin(true),
        ProcessInput::Resize { width, height } => Kind::Resize(sp::Resize { width, height }),
    };
    sp::Input { kind: Some(kind) }
}

fn from_shim(f: sp::Output) -> Option<ProcessEvent> {
    use sp::output::Kind;
    Some(match f.kind? {
        Kind::Data(d) => ProcessEvent::Output { stream: OutputStream::from_fd(d.stream), data: d.data },
        Kind::Exit(e) => ProcessEvent::Exit { code: e.code, error: e.error },
        Kind::Started(pid) => ProcessEvent::Started { pid },
    })
}

impl Manager {
    /// Relays a session until its exit (or the front end goes away). With
    /// `detach`, ends after `Started`: the process runs on. `replay_since`:
    /// an attach from the start, whose output the log has from that time
    /// (Unix nanoseconds) on, should the shim vanish before it sent any (it
    /// can end just as the attach reaches it).
    pub async fn relay_process<O: Send + 'static>(
        self: &Arc<Self>,
        stream: ShimStream,
        mut input: impl Stream<Item = ProcessInput> + Send + Unpin + 'static,
        out: EventSink<O>,
        detach: bool,
        replay_since: Option<i64>,
    ) {
        let ShimStream { id, mut rd, mut wr } = stream;
        let forward = tokio::spawn(async move {
            while let Some(i) = input.next().await {
                if wr.send(&to_shim(i)).await.is_err() {
                    return;
                }
            }
        });
        let mut relayed_output = false;
        loop {
            let frame = tokio::select! {
                f = rd.recv() => f,
                _ = out.tx.closed() => break,
            };
            match frame {
                Ok(Some(f)) => {
                    let Some(ev) = from_shim(f) else { continue };
                    relayed_output |= matches!(ev, ProcessEvent::Output { .. });
                    let last = matches!(ev, ProcessEvent::Exit { .. });
                    let started = matches!(ev, ProcessEvent::Started { .. });
                    if !out.send(Ok(ev)).await || last || (started && detach) {
                        break;
                    }
                }
                // The shim went away without a last word: the container's
                // recorded exit says how it ended.
                Ok(None) | Err(_) => {
                    let code = self.wait(&id).await.map(|e| e.exit_code).unwrap_or(255);
                    match replay_since.filter(|_| !relayed_output) {
                        Some(since) => {
                            forward.abort();
                            return self.replay_exited(id, code, since, out).await;
                        }
                        None => {
                            out.send(Ok(ProcessEvent::Exit { code, error: String::new() })).await;
                        }
                    }
                    break;
                }
            }
        }
        forward.abort();
    }

    /// For a container that exited before the attach reached it: its
    /// output since `since` (Unix nanoseconds) from the log, then its exit.
    pub async fn replay_exited<O: Send + 'static>(
        self: &Arc<Self>,
        id: String,
        exit_code: i32,
        since: i64,
        out: EventSink<O>,
    ) {
        let (tx, mut rx) = mpsc::channel(64);
        let reader = {
            let m = self.clone();
            let id = id.clone();
            tokio::spawn(async move { m.logs(&id, LogOptions { follow: false, tail: None, since }, tx).await })
        };
        while let Some(r) = rx.recv().await {
            if r.stream.is_empty() {
                continue;
            }
            let stream = if r.stream == "stderr" { OutputStream::Stderr } else { OutputStream::Stdout };
            if !out.send(Ok(ProcessEvent::Output { stream, data: r.data })).await {
                return;
            }
        }
        if let Ok(Err(e)) = reader.await {
            out.send(Err(e)).await;
            return;
        }
        out.send(Ok(ProcessEvent::Exit { code: exit_code, error: String::new() })).await;
    }
}
