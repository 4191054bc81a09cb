//! The gRPC layer, thin by rule (STYLE.md): each handler converts the
//! request (`convert.rs`), calls the core, converts back. Status codes are
//! chosen once, here.
use std::io::Write;

use berth_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Code, Status};

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
            AgentError::NotFound(_) => Code::NotFound,
            AgentError::InvalidArgument(_) | AgentError::StartFailed { .. } => Code::InvalidArgument,
            AgentError::FailedPrecondition(_) => Code::FailedPrecondition,
            AgentError::AlreadyExists(_) => Code::AlreadyExists,
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
        Status::new(code, message)
    }
}

/// Runs blocking core work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AgentError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Status::internal(e.to_string()))?.map_err(Status::from)
}

/// Bytes per `DataChunk` of a streamed archive (`save`, `export`).
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the tar writer and the client: the writer
/// blocks when the client reads slowly, so memory stays bounded.
pub(crate) const CHUNK_QUEUE: usize = 4;

/// The `io::Write` end of a `DataChunk` stream: gathers bytes into chunks and
/// hands them to the gRPC stream, blocking while the queue is full. Only
/// for use in a blocking task.
pub(crate) struct ChunkWriter {
    tx: mpsc::Sender<Result<pb::DataChunk, Status>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    pub(crate) fn new(tx: mpsc::Sender<Result<pb::DataChunk, Status>>) -> Self {
        Self { tx, buf: Vec::with_capacity(CHUNK) }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(pb::DataChunk { data }))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = bytes.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&bytes[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
