//! `attach` and `exec`: a stream to the container's shim, which holds the
//! process's stdio (berthd only relays). See the shim's `streams`.
use std::sync::Arc;
use std::time::Duration;

use berth_contract::shim_client::{ShimCallError, ShimClient, ShimReader, ShimWriter};
use berth_proto::shim::{request::Kind, AttachRequest, ExecRequest};

use super::{ContainerError, InvalidError, Wanted};
use super::{Manager, Status};
use crate::error::{AgentError, Result};

/// What `exec` runs; empty fields take the container's values.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    pub container: String,
    pub cmd: Vec<String>,
    /// `KEY=VALUE`, over the container's environment.
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub tty: bool,
    pub stdin: bool,
    /// Columns and rows of the client's terminal.
    pub console: (u16, u16),
}

/// A stream to the shim of container `id`: `Input` frames one way,
/// `Output` frames the other.
pub struct ShimStream {
    pub id: String,
    pub rd: ShimReader,
    pub wr: ShimWriter,
}

/// What an attach found.
pub enum Attached {
    /// The live stream.
    Live(ShimStream),
    /// The container ran and exited between the start and the attach (a
    /// command that ends at once): its output is in the log, and this is
    /// its exit code.
    Exited { id: String, exit_code: i32 },
}

/// How often an attach to a created container looks for its start.
const START_POLL: Duration = Duration::from_millis(5);

impl Manager {
    /// Attaches to the container's stdio. A created container is waited
    /// for until it runs (the caller starts it meanwhile); an exited one
    /// is an error, as in Docker.
    pub async fn attach(self: &Arc<Self>, key: &str, stdin: bool, from_start: bool) -> Result<Attached> {
        let mut rec = self.refresh(key).await?;
        loop {
            match rec.state.status {
                Status::Running => break,
                Status::Paused => {
                    return Err(ContainerError::wrong_state(&rec.name, rec.state.status, Wanted::Attachable).into())
                }
                Status::Created => {
                    tokio::time::sleep(START_POLL).await;
                    rec = self.refresh(&rec.id).await?;
                }
                Status::Exited if from_start && rec.state.started_at > 0 => {
                    return Ok(Attached::Exited { id: rec.id, exit_code: rec.state.exit_code });
                }
                Status::Exited => {
                    return Err(ContainerError::wrong_state(&rec.name, rec.state.status, Wanted::Attachable).into())
                }
            }
        }
        if stdin && !rec.process.open_stdin {
            tracing::debug!(id = rec.short_id(), "attach asked for stdin; the container has none open");
        }
        let kind = Kind::Attach(AttachRequest { stdin, from_start });
        match open(&rec.id, &ShimClient::new(&self.paths(&rec)), kind).await {
            Ok(s) => Ok(Attached::Live(s)),
            // The shim went away (the container exited) just now.
            Err(_) if from_start => {
                let ev = self.wait(&rec.id).await?;
                Ok(Attached::Exited { id: rec.id, exit_code: ev.exit_code })
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a process in the running container.
    pub async fn exec(self: &Arc<Self>, opts: ExecOptions) -> Result<ShimStream> {
        let rec = self.refresh(&opts.container).await?;
        if rec.state.status != Status::Running {
            return Err(ContainerError::wrong_state(&opts.container, rec.state.status, Wanted::Execable).into());
        }
        if opts.cmd.is_empty() {
            return Err(ContainerError::from(InvalidError::NoCommand).into());
        }
        let mut env = rec.process.env.clone();
        if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        for kv in &opts.env {
            let key = kv.split('=').next().unwrap_or_default();
            if key.is_empty() {
                return Err(ContainerError::from(InvalidError::Env { var: kv.clone() }).into());
            }
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        crate::limits::check_process(&opts.cmd, &env)?;
        let pick = |given: &str, own: &str| if given.is_empty() { own.to_owned() } else { given.to_owned() };
        let cwd = pick(&opts.workdir, &rec.process.cwd);
        if !cwd.starts_with('/') {
            return Err(ContainerError::from(InvalidError::Workdir { path: cwd }).into());
        }
        let user = pick(&opts.user, &rec.process.user);
        berth_contract::user::check_user(&user).map_err(|e| ContainerError::from(InvalidError::from(e)))?;
        let kind = Kind::Exec(ExecRequest {
            args: opts.cmd.clone(),
            env,
            cwd,
            user,
            tty: opts.tty,
            stdin: opts.stdin,
            width: u32::from(opts.console.0),
            height: u32::from(opts.console.1),
        });
        tracing::debug!(id = rec.short_id(), cmd = ?opts.cmd, "exec");
        open(&rec.id, &ShimClient::new(&self.paths(&rec)), kind).await
    }
}

async fn open(id: &str, shim: &ShimClient, kind: Kind) -> Result<ShimStream> {
    match shim.open(kind).await {
        Ok((rd, wr)) => Ok(ShimStream { id: id.to_owned(), rd, wr }),
        Err(ShimCallError::Gone(e)) => {
            Err(ContainerError::ShimGone { name: id.to_owned(), detail: e.to_string() }.into())
        }
        Err(e) => Err(AgentError::Io { context: "send to the shim".into(), source: std::io::Error::other(e) }),
    }
}
