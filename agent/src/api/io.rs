//! `Attach` and `Exec` over `berth.v1`: the client's `IoIn` messages
//! become the core's [`ProcessInput`], its [`ProcessEvent`]s become
//! `IoOut` (the relay itself is the core's: `containers/process.rs`).
use berth_proto::v1 as pb;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::containers::{EventSink, ProcessEvent, ProcessInput};

pub type Out = mpsc::Sender<Result<pb::IoOut, Status>>;

/// The client's input, as the core takes it (the first message, which
/// named the container or the process, is already read; a broken stream
/// ends the input).
pub fn input(client: Streaming<pb::IoIn>) -> impl Stream<Item = ProcessInput> + Send + Unpin + 'static {
    Box::pin(
        client
            .take_while(|m| std::future::ready(m.is_ok()))
            .filter_map(|m| std::future::ready(m.ok().and_then(process_input))),
    )
}

/// The core's events, sent to the client as `IoOut`.
pub fn output(out: Out) -> EventSink<Result<pb::IoOut, Status>> {
    EventSink { tx: out, map: |ev| ev.map(io_out).map_err(Status::from) }
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
