//! The relay behind `Attach` and `Exec`: the client's `IoIn` messages go to
//! the shim as `Input` frames, the shim's `Output` frames come back as
//! `IoOut`. berthd holds no stdio itself.
use std::sync::Arc;

use berth_proto::shim as sp;
use berth_proto::v1 as pb;
use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::convert;
use crate::containers::{LogOptions, Manager, ShimStream};

pub type Out = mpsc::Sender<Result<pb::IoOut, Status>>;

/// Forwards until the shim sends the exit (or the client goes away). With
/// `detach`, ends after the `started` answer: the process runs on.
/// `replay_since`: an attach from the start, whose output the log has from
/// that time (Unix nanoseconds) on, should the shim vanish before it sent
/// any (it can end just as the attach reaches it).
pub async fn relay(
    m: Arc<Manager>,
    mut input: Streaming<pb::IoIn>,
    stream: ShimStream,
    out: Out,
    detach: bool,
    replay_since: Option<i64>,
) {
    let ShimStream { id, mut rd, mut wr } = stream;
    let forward = tokio::spawn(async move {
        while let Some(Ok(msg)) = input.next().await {
            let Some(frame) = convert::shim_input(msg) else { continue };
            if wr.send(&frame).await.is_err() {
                return;
            }
        }
    });
    let mut relayed_output = false;
    loop {
        let frame = tokio::select! {
            f = rd.recv() => f,
            _ = out.closed() => break,
        };
        match frame {
            Ok(Some(f)) => {
                relayed_output |= matches!(f.kind, Some(sp::output::Kind::Data(_)));
                let last = matches!(f.kind, Some(sp::output::Kind::Exit(_)));
                let started = matches!(f.kind, Some(sp::output::Kind::Started(_)));
                if out.send(Ok(convert::io_out(f))).await.is_err() || last || (started && detach) {
                    break;
                }
            }
            // The shim went away without a last word: the container's
            // recorded exit says how it ended.
            Ok(None) | Err(_) => {
                let code = m.wait(&id).await.map(|e| e.exit_code).unwrap_or(255);
                match replay_since.filter(|_| !relayed_output) {
                    Some(since) => {
                        forward.abort();
                        return replay(m, id, code, since, out).await;
                    }
                    None => {
                        let _ = out.send(Ok(exit(code))).await;
                    }
                }
                break;
            }
        }
    }
    forward.abort();
}

/// For a container that exited before the attach reached it: its output
/// since `since` (Unix nanoseconds) from the log, then its exit code.
pub async fn replay(m: Arc<Manager>, id: String, exit_code: i32, since: i64, out: Out) {
    let (tx, mut rx) = mpsc::channel(64);
    let reader = {
        let m = m.clone();
        let id = id.clone();
        tokio::spawn(async move { m.logs(&id, LogOptions { follow: false, tail: None, since }, tx).await })
    };
    while let Some(r) = rx.recv().await {
        if r.stream.is_empty() {
            continue;
        }
        let stream = if r.stream == "stderr" { 2 } else { 1 };
        let msg = pb::IoOut { kind: Some(pb::io_out::Kind::Output(pb::Output { stream, data: r.data })) };
        if out.send(Ok(msg)).await.is_err() {
            return;
        }
    }
    if let Ok(Err(e)) = reader.await {
        let _ = out.send(Err(e.into())).await;
        return;
    }
    let _ = out.send(Ok(exit(exit_code))).await;
}

fn exit(code: i32) -> pb::IoOut {
    pb::IoOut { kind: Some(pb::io_out::Kind::Exit(pb::ProcessExit { code, error: String::new() })) }
}
