//! berthd's half of the shim's two protocols: `berth-shim start` (see
//! [`crate::shim_start`]) and `berth.shim.v1` on `<state>/<id>/shim.sock`
//! (one request a connection: one response, or for attach and exec a
//! stream of `Input` frames one way and `Output` frames the other).
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use berth_proto::frame::{read_frame, write_frame};
use berth_proto::shim::{
    request::Kind, ErrorCode, Input, KillRequest, Output, Request, Response, ShutdownRequest, StateRequest, WaitRequest,
};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::layout::{ContainerPaths, SocketPath};
use crate::shim_start::{StartConfig, StartOutcome};

/// Why a shim call failed.
#[derive(Debug, thiserror::Error)]
pub enum ShimCallError {
    /// No shim listens: it has exited (or was killed).
    #[error("shim is gone: {0}")]
    Gone(io::Error),
    /// The shim closed the connection before answering.
    #[error("shim closed the connection")]
    Closed,
    #[error("shim i/o: {0}")]
    Io(#[from] io::Error),
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

/// One container's shim, as berthd reaches it.
#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
}

impl ShimClient {
    /// The shim of the container whose files are `paths`.
    pub fn new(paths: &ContainerPaths) -> Self {
        Self { socket: paths.shim_socket() }
    }

    /// Runs `binary start` for `config` and reads its outcome. An error
    /// only when the binary could not be run at all.
    pub async fn start(binary: &Path, config: &StartConfig) -> io::Result<StartOutcome> {
        let out = tokio::process::Command::new(binary)
            .args(config.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await?;
        Ok(StartOutcome::read(out.status.code(), &out.status, &out.stdout, &out.stderr))
    }

    async fn connect(&self) -> Result<UnixStream, ShimCallError> {
        let addr = SocketPath::new(&self.socket).map_err(ShimCallError::Gone)?;
        UnixStream::connect(addr.path()).await.map_err(ShimCallError::Gone)
    }

    async fn call(&self, kind: Kind) -> Result<Response, ShimCallError> {
        let mut stream = self.connect().await?;
        write_frame(&mut stream, &Request { kind: Some(kind) }).await?;
        match read_frame::<_, Response>(&mut stream).await? {
            None => Err(ShimCallError::Closed),
            Some(r) if !r.error.is_empty() => Err(ShimCallError::Refused { code: r.code(), message: r.error }),
            Some(r) => Ok(r),
        }
    }

    /// The container's state (and that the shim is alive).
    pub async fn state(&self) -> Result<Response, ShimCallError> {
        self.call(Kind::State(StateRequest {})).await
    }

    /// Sends `signal` to the container's init.
    pub async fn kill(&self, signal: i32) -> Result<Response, ShimCallError> {
        self.call(Kind::Kill(KillRequest { signal, all: false })).await
    }

    /// Answered when the container has exited.
    pub async fn wait(&self) -> Result<Response, ShimCallError> {
        self.call(Kind::Wait(WaitRequest {})).await
    }

    /// Asks a shim whose container has exited to go.
    pub async fn shutdown(&self) -> Result<Response, ShimCallError> {
        self.call(Kind::Shutdown(ShutdownRequest {})).await
    }

    /// Opens a stream (`Kind::Attach` or `Kind::Exec`): the request is
    /// sent, the shim's first answer is the stream's first `Output`.
    pub async fn open(&self, kind: Kind) -> Result<(ShimReader, ShimWriter), ShimCallError> {
        let (rd, mut wr) = self.connect().await?.into_split();
        write_frame(&mut wr, &Request { kind: Some(kind) }).await?;
        Ok((ShimReader(rd), ShimWriter(wr)))
    }
}

/// The shim's half of a stream: `Output` frames.
#[derive(Debug)]
pub struct ShimReader(OwnedReadHalf);

impl ShimReader {
    /// The next frame; `None` when the shim closed the stream.
    pub async fn recv(&mut self) -> io::Result<Option<Output>> {
        read_frame(&mut self.0).await
    }
}

/// berthd's half of a stream: `Input` frames.
#[derive(Debug)]
pub struct ShimWriter(OwnedWriteHalf);

impl ShimWriter {
    pub async fn send(&mut self, input: &Input) -> io::Result<()> {
        write_frame(&mut self.0, input).await
    }
}
