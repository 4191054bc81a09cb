//! `Attach` and `Exec` over `berth.v1`: the client's `IoIn` messages
//! become the core's [`ProcessInput`], its [`ProcessEvent`]s become
//! `IoOut` (the relay itself is the core's: `containers/process.rs`).
use berth_proto::v1 as pb;
use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::containers::{ProcessEvent, ProcessInput};

pub type Out = mpsc::Sender<Result<pb::IoOut, Status>>;

/// The client's input, as the core takes it (the first message, which
/// named the container or the process, is already read).
pub fn input(mut client: Streaming<pb::IoIn>) -> mpsc::Receiver<ProcessInput> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(Ok(msg)) = client.next().await {
            let Some(i) = process_input(msg) else { continue };
            if tx.send(i).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// A sender for the core's events whose every event goes to the client
/// as `IoOut`; dropped (and so seen as closed by the core) when the
/// client goes away.
pub fn output(out: Out) -> crate::containers::EventSender {
    let (tx, mut rx) = mpsc::channel::<crate::error::Result<ProcessEvent>>(16);
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                _ = out.closed() => return,
            };
            let Some(ev) = ev else { return };
            let msg = ev.map(io_out).map_err(Status::from);
            if out.send(msg).await.is_err() {
                return;
            }
        }
    });
    tx
}

fn process_input(msg: pb::IoIn) -> Option<ProcessInput> {
    use pb::io_in::Kind;
    Some(match msg.kind? {
        Kind::Stdin(b) => ProcessInput::Stdin(b),
        Kind::CloseStdin(_) => ProcessInput::CloseStdin,
        Kind::Resize(r) => ProcessInput::Resize { width: r.width, height: r.height },
        Kind::Attach(_) | Kind::Exec(_) => return None,
    })
}

fn io_out(ev: ProcessEvent) -> pb::IoOut {
    use pb::io_out::Kind;
    let kind = match ev {
        ProcessEvent::Started { pid } => Kind::Started(pid),
        ProcessEvent::Output { stream, data } => {
            Kind::Output(pb::Output { stream: super::convert::output_stream(stream) as i32, data })
        }
        ProcessEvent::Exit { code, error } => Kind::Exit(pb::ProcessExit { code, error }),
    };
    pb::IoOut { kind: Some(kind) }
}
