//! berthd's side of `berth.shim.v1`: one request, one response per
//! connection to `<state>/<id>/shim.sock`.
use std::path::Path;

use berth_proto::frame::{read_frame, write_frame};
use berth_proto::shim::{
    request::Kind, ErrorCode, KillRequest, Request, Response, ShutdownRequest, StateRequest, WaitRequest,
};
use tokio::net::UnixStream;

/// Why a shim call failed.
#[derive(Debug, thiserror::Error)]
pub enum ShimCallError {
    /// No shim listens: it has exited (or was killed).
    #[error("shim is gone: {0}")]
    Gone(std::io::Error),
    /// The shim closed the connection before answering.
    #[error("shim closed the connection")]
    Closed,
    #[error("shim i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The shim answered with an error.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
}

impl ShimCallError {
    /// Whether the shim said its container's init has exited. A shim from
    /// before the error codes (one that outlived an upgrade of berthd)
    /// says so only in its text.
    pub fn not_running(&self) -> bool {
        match self {
            Self::Refused { code: ErrorCode::NotRunning, .. } => true,
            Self::Refused { code: ErrorCode::Unspecified, message } => message.contains("not running"),
            _ => false,
        }
    }
}

async fn call(socket: &Path, kind: Kind) -> Result<Response, ShimCallError> {
    let addr = berth_shim::layout::SocketPath::new(socket).map_err(ShimCallError::Gone)?;
    let mut stream = UnixStream::connect(addr.path()).await.map_err(ShimCallError::Gone)?;
    write_frame(&mut stream, &Request { kind: Some(kind) }).await?;
    match read_frame::<_, Response>(&mut stream).await? {
        None => Err(ShimCallError::Closed),
        Some(r) if !r.error.is_empty() => Err(ShimCallError::Refused { code: r.code(), message: r.error }),
        Some(r) => Ok(r),
    }
}

pub async fn state(socket: &Path) -> Result<Response, ShimCallError> {
    call(socket, Kind::State(StateRequest {})).await
}

pub async fn kill(socket: &Path, signal: i32) -> Result<Response, ShimCallError> {
    call(socket, Kind::Kill(KillRequest { signal, all: false })).await
}

/// Answered when the container has exited.
pub async fn wait(socket: &Path) -> Result<Response, ShimCallError> {
    call(socket, Kind::Wait(WaitRequest {})).await
}

pub async fn shutdown(socket: &Path) -> Result<Response, ShimCallError> {
    call(socket, Kind::Shutdown(ShutdownRequest {})).await
}
