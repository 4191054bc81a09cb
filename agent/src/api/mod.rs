//! The gRPC layer, thin by rule (STYLE.md): each handler converts the
//! request (`convert.rs`), calls the core, converts back. Status codes are
//! chosen once, here.
use std::io::Read;

use berth_proto::text;
use berth_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Code, Status};

use crate::containers::ContainerError;
use crate::error::AgentError;
use crate::images::{ImageError, ImageErrorKind};
use crate::registry::RegistryErrorKind;

mod containers;
mod convert;
mod images;
mod io;
mod system;

pub use containers::ContainersApi;
pub use images::ImagesApi;
pub use system::SystemApi;

impl From<AgentError> for Status {
    fn from(e: AgentError) -> Self {
        let code = match &e {
            AgentError::Limit(_) => Code::InvalidArgument,
            AgentError::Startup(_) => Code::FailedPrecondition,
            AgentError::Container(c) => match c {
                ContainerError::NotFound { .. } | ContainerError::NoSuchPath { .. } => Code::NotFound,
                ContainerError::AmbiguousPrefix { .. }
                | ContainerError::Invalid(_)
                | ContainerError::Copy(_)
                | ContainerError::StartFailed { .. } => Code::InvalidArgument,
                ContainerError::NameInUse { .. } => Code::AlreadyExists,
                ContainerError::WrongState { .. }
                | ContainerError::ShimGone { .. }
                | ContainerError::StoppedDuringCopy { .. }
                | ContainerError::NoLiveProcess { .. } => Code::FailedPrecondition,
            },
            AgentError::Image(ImageError::NotFound(_)) => Code::NotFound,
            AgentError::Image(ImageError::InvalidReference(_) | ImageError::Invalid(_)) => Code::InvalidArgument,
            AgentError::Image(ImageError::InUse(_)) => Code::FailedPrecondition,
            AgentError::Registry(r) => match r.kind() {
                RegistryErrorKind::InvalidArgument => Code::InvalidArgument,
                RegistryErrorKind::NotFound => Code::NotFound,
                RegistryErrorKind::PermissionDenied => Code::PermissionDenied,
                RegistryErrorKind::Unauthenticated => Code::Unauthenticated,
                RegistryErrorKind::Unavailable => Code::Unavailable,
                RegistryErrorKind::Cancelled => Code::Cancelled,
                RegistryErrorKind::Image => match r {
                    crate::registry::RegistryError::Image(i) => match i.kind() {
                        ImageErrorKind::NotFound => Code::NotFound,
                        ImageErrorKind::InvalidArgument => Code::InvalidArgument,
                        ImageErrorKind::FailedPrecondition => Code::FailedPrecondition,
                        ImageErrorKind::Internal => Code::Internal,
                    },
                    _ => Code::Internal,
                },
                RegistryErrorKind::Internal => Code::Internal,
            },
            _ => Code::Internal,
        };
        // The whole cause chain, so nothing is lost on the way to a person.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        let start_code = match &e {
            AgentError::Container(ContainerError::StartFailed { code, .. }) => Some(*code),
            _ => None,
        };
        // Messages quote input (a tar entry's name, a reference): escaped
        // and bounded once, here, for every call (`berth_proto::text`).
        let mut status = Status::new(code, text::printable(&message, text::MAX_MESSAGE));
        if let Some(c) = start_code {
            status.metadata_mut().insert(berth_proto::START_EXIT_CODE, c.into());
        }
        status
    }
}

/// Runs blocking core work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AgentError> + Send + 'static,
) -> Result<T, Status> {
    crate::blocking::run(f).await.map_err(Status::from)
}

/// Bytes of the largest list berthd puts in one message (`List`); a
/// larger one goes out only as a stream (`ListStream`), one item per
/// message. Under the 64 MiB berthctl accepted before the streams, so an
/// old client still reads what fits; the bound keeps one caller's listing
/// from making berthd build a message of any size.
pub(crate) const MAX_LIST_REPLY: usize = 16 << 20;

/// `items` for a one-message list, or `RESOURCE_EXHAUSTED` as soon as
/// they pass `MAX_LIST_REPLY`.
pub(crate) fn bounded_list<R, T: prost::Message>(
    items: impl IntoIterator<Item = R>,
    convert: impl Fn(R) -> T,
    what: &str,
) -> Result<Vec<T>, Status> {
    let mut total = 0usize;
    let mut out = Vec::new();
    for item in items {
        let m = convert(item);
        total += m.encoded_len();
        if total > MAX_LIST_REPLY {
            return Err(Status::resource_exhausted(format!(
                "the list of {what} is larger than {} MiB; ask for it with ListStream",
                MAX_LIST_REPLY >> 20
            )));
        }
        out.push(m);
    }
    Ok(out)
}

/// Chunks in flight between the tar writer and the client: the writer
/// blocks when the client reads slowly, so memory stays bounded.
pub(crate) const CHUNK_QUEUE: usize = 4;

/// The `io::Write` end of a `DataChunk` stream (`save`, `export`, `cp`).
pub(crate) type ChunkWriter = berth_proto::chunks::ChunkWriter<Result<pb::DataChunk, Status>>;

pub(crate) fn chunk_writer(tx: mpsc::Sender<Result<pb::DataChunk, Status>>) -> ChunkWriter {
    ChunkWriter::new(tx, |data| Ok(pb::DataChunk { data }))
}

/// The `io::Read` end of a client's stream of chunks (`CopyTo`): bytes
/// arrive through a bounded queue fed by an async task, so the client is
/// slowed down when the reader falls behind. Only for use in a blocking
/// task or thread.
pub(crate) struct ChunkReader {
    rx: mpsc::Receiver<Result<Vec<u8>, Status>>,
    buf: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    pub(crate) fn new(rx: mpsc::Receiver<Result<Vec<u8>, Status>>) -> Self {
        Self { rx, buf: Vec::new(), pos: 0 }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                Some(Ok(data)) => {
                    self.buf = data;
                    self.pos = 0;
                }
                Some(Err(status)) => return Err(std::io::Error::other(status.message().to_owned())),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_lists_are_bounded() {
        let image = |n: usize| pb::Image { id: "x".repeat(n), ..Default::default() };
        let ok = bounded_list(0..4, |_| image(1 << 20), "images").expect("4 MiB fits");
        assert_eq!(ok.len(), 4);
        let e = bounded_list(0..17, |_| image(1 << 20), "images").unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert_eq!(e.message(), "the list of images is larger than 16 MiB; ask for it with ListStream");
    }
}
