//! Live stdio on `shim.sock`: attaches to the init, and exec'd processes.
//!
//! After an `attach` or `exec` request the connection is a stream: the shim
//! sends `Output` frames (data, `started`, and last `exit`), the client
//! sends `Input` frames (stdin bytes, close of stdin, terminal resize).
//!
//! The init's output goes to `container.log` whoever is attached; the
//! [`Hub`] hands a copy to each attached connection. A connection that
//! falls more than [`QUEUE`] chunks behind loses chunks (the log keeps
//! them): a slow client never slows the container. The first output of an
//! interactive container (terminal or open stdin) is held, up to
//! [`HOLD_MAX`] bytes for [`HOLD_FOR`], for the first attach that asks for
//! it: `run -it` attaches right after the start, and its prompt must not be
//! lost in between.
//!
//! An exec'd process's output goes only to its connection (Docker does not
//! log exec output); if the connection goes away the process runs on and
//! its output is read and dropped, so it never blocks.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use berth_proto::frame::{read_frame, write_frame};
use berth_proto::shim::{self as proto, input, output};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::spawn_local;

use crate::diag;
use crate::exec::{self, ExecTarget};
use crate::init::EXEC_DEADLINE;
use crate::pty::{self, FdIo};
use crate::reaper::Children;
use crate::spec::ProcessPlan;
use berth_contract::ExitStatus;

/// Chunks a connection may be behind before it loses some.
pub const QUEUE: usize = 256;
/// Output held for the first attach of an interactive container.
pub const HOLD_MAX: usize = 64 * 1024;
pub const HOLD_FOR: Duration = Duration::from_secs(10);
/// How long an exec'd process's output may flow after its exit.
const DRAIN: Duration = Duration::from_secs(2);
/// Bytes per read of an output.
const CHUNK: usize = 16 * 1024;

pub const STDOUT: u32 = 1;
pub const STDERR: u32 = 2;

fn data(stream: u32, bytes: &[u8]) -> proto::Output {
    proto::Output { kind: Some(output::Kind::Data(proto::Data { stream, data: bytes.to_vec() })) }
}

fn exit_frame(code: i32, error: String) -> proto::Output {
    proto::Output { kind: Some(output::Kind::Exit(proto::ProcessExit { code, error })) }
}

/// The init's stdin, terminal and attached connections.
#[derive(Debug, Default)]
pub struct Hub {
    subscribers: RefCell<Vec<mpsc::Sender<proto::Output>>>,
    held: RefCell<Option<Held>>,
    /// The output has ended.
    closed: std::cell::Cell<bool>,
    /// The init's stdin pipe (write end) or terminal master; `None` when
    /// it has no open stdin or it was closed.
    stdin: RefCell<Option<Rc<FdIo>>>,
    /// The init's terminal master, for resizes.
    terminal: Option<Rc<FdIo>>,
}

#[derive(Debug)]
struct Held {
    chunks: Vec<(u32, Vec<u8>)>,
    bytes: usize,
    until: Instant,
}

impl Hub {
    /// `hold`: keep the first output for the first attach.
    pub fn new(stdin: Option<Rc<FdIo>>, terminal: Option<Rc<FdIo>>, hold: bool) -> Self {
        let held = hold.then(|| Held { chunks: Vec::new(), bytes: 0, until: Instant::now() + HOLD_FOR });
        Self {
            subscribers: RefCell::default(),
            held: RefCell::new(held),
            closed: std::cell::Cell::new(false),
            stdin: RefCell::new(stdin),
            terminal,
        }
    }

    /// A chunk of the init's output, already in the log.
    pub fn publish(&self, stream: u32, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        {
            let mut held = self.held.borrow_mut();
            if let Some(h) = held.as_mut() {
                if h.bytes + bytes.len() <= HOLD_MAX && Instant::now() < h.until {
                    h.bytes += bytes.len();
                    h.chunks.push((stream, bytes.to_vec()));
                } else {
                    *held = None;
                }
            }
        }
        self.subscribers.borrow_mut().retain(|tx| match tx.try_send(data(stream, bytes)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                diag!("an attached client is behind: output dropped for it (the log has it)");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// The output ended (the init exited and its pipes are drained): every
    /// connection's queue ends, and it sends the exit status next.
    /// What is held stays for a first attach that comes just after the
    /// exit (a `run -it` of a command that ends at once).
    pub fn close(&self) {
        self.closed.set(true);
        self.subscribers.borrow_mut().clear();
    }

    fn subscribe(&self, from_start: bool) -> mpsc::Receiver<proto::Output> {
        let held = self.held.borrow_mut().take();
        let backlog = held.as_ref().filter(|_| from_start).map_or(0, |h| h.chunks.len());
        let (tx, rx) = mpsc::channel(QUEUE + backlog);
        if let Some(h) = held.filter(|_| from_start) {
            for (stream, bytes) in h.chunks {
                let _ = tx.try_send(data(stream, &bytes));
            }
        }
        if !self.closed.get() {
            self.subscribers.borrow_mut().push(tx);
        }
        rx
    }
}

/// What a stream connection needs of the running shim.
pub struct Ctx<'a> {
    pub hub: Rc<Hub>,
    pub children: &'a Children,
    pub init: nix::unistd::Pid,
    pub cgroup_join: &'a [std::path::PathBuf],
    pub plan: &'a ProcessPlan,
    /// Resolves with the init's persisted exit status.
    pub exit: tokio::sync::watch::Receiver<Option<ExitStatus>>,
}

/// Serves an attach until the init has exited (or the client is gone).
pub async fn attach(stream: UnixStream, ctx: Ctx<'_>, req: proto::AttachRequest) {
    let (rd, mut wr) = stream.into_split();
    let mut rx = ctx.hub.subscribe(req.from_start);
    let stdin = if req.stdin { ctx.hub.stdin.borrow().clone() } else { None };
    let hub = ctx.hub.clone();
    // The pipe closes once no end of it is left in the shim.
    let close = move || drop(hub.stdin.borrow_mut().take());
    let input = spawn_local(read_input(rd, stdin, ctx.hub.terminal.clone(), close));
    let result = async {
        while let Some(frame) = rx.recv().await {
            write_frame(&mut wr, &frame).await?;
        }
        let mut exit = ctx.exit.clone();
        let status = exit.wait_for(Option::is_some).await.map(|s| s.clone()).ok().flatten();
        let code = status.map_or(255, |s| s.code);
        write_frame(&mut wr, &exit_frame(code, String::new())).await
    }
    .await;
    input.abort();
    if let Err(e) = result {
        diag!("attach: {e}");
    }
}

/// Reads `Input` frames until the client stops sending. `close` lets go
/// of the shim's other ends of a stdin pipe when the client closes it.
async fn read_input(mut rd: OwnedReadHalf, mut stdin: Option<Rc<FdIo>>, terminal: Option<Rc<FdIo>>, close: impl Fn()) {
    loop {
        let msg: proto::Input = match read_frame(&mut rd).await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                diag!("read input: {e}");
                return;
            }
        };
        match msg.kind {
            Some(input::Kind::Stdin(bytes)) => {
                if let Some(fd) = &stdin {
                    if let Err(e) = fd.write_all(&bytes).await {
                        diag!("write stdin: {e}");
                        stdin = None;
                    }
                }
            }
            // A pipe is closed by dropping every end the shim holds; a
            // terminal stays (the process reads EOF only from ^D).
            Some(input::Kind::CloseStdin(_)) if terminal.is_none() => {
                stdin = None;
                close();
            }
            Some(input::Kind::CloseStdin(_)) => {}
            Some(input::Kind::Resize(r)) => {
                if let Some(t) = &terminal {
                    let _ = pty::resize(t.as_fd(), clamp(r.width), clamp(r.height));
                }
            }
            None => {}
        }
    }
}

fn clamp(v: u32) -> u16 {
    v.min(u32::from(u16::MAX)) as u16
}

/// Starts a process in the container and serves its stream until it has
/// exited.
pub async fn exec(stream: UnixStream, ctx: Ctx<'_>, req: proto::ExecRequest) {
    let (rd, mut wr) = stream.into_split();
    if let Err(e) = exec_inner(rd, &mut wr, &ctx, &req).await {
        diag!("exec: {e}");
    }
}

async fn exec_inner(
    rd: OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    ctx: &Ctx<'_>,
    req: &proto::ExecRequest,
) -> std::io::Result<()> {
    if ctx.exit.borrow().is_some() {
        return write_frame(wr, &exit_frame(1, "container is not running".into())).await;
    }
    let plan = match ctx.plan.for_exec(&req.args, &req.env, &req.cwd, &req.user) {
        Ok(p) => p,
        Err(e) => return write_frame(wr, &exit_frame(1, e.to_string())).await,
    };
    let target = ExecTarget {
        init: ctx.init,
        cgroup_join: ctx.cgroup_join,
        plan: &plan,
        terminal: req.tty.then_some((clamp(req.width), clamp(req.height))),
        stdin: req.stdin,
    };
    let mut exited = None;
    let spawned = exec::spawn(&target, |pid| exited = Some(ctx.children.register(pid)), EXEC_DEADLINE).await;
    let (pid, io) = match spawned {
        Ok(ok) => ok,
        Err(e) => {
            // The reaper collects it; nobody waits for its status.
            drop(exited.take());
            ctx.children.forget_unwaited();
            let code = e.exit_code();
            return write_frame(wr, &exit_frame(code, e.to_string())).await;
        }
    };
    let Some(exited) = exited else { return Ok(()) };
    diag!("exec {:?} as pid {pid}", req.args);
    let started = proto::Output { kind: Some(output::Kind::Started(pid.as_raw() as u32)) };
    let connected = write_frame(wr, &started).await.is_ok();

    // Output pumps: into the connection's queue, or nowhere once it is gone.
    let (tx, mut rx) = mpsc::channel::<proto::Output>(QUEUE);
    let mut pumps = Vec::new();
    let out = Rc::new(FdIo::new(io.stdout)?);
    let master = io.terminal.then(|| out.clone());
    pumps.push(spawn_local(pump(out, STDOUT, tx.clone())));
    if let Some(err) = io.stderr {
        pumps.push(spawn_local(pump(Rc::new(FdIo::new(err)?), STDERR, tx.clone())));
    }
    drop(tx);
    let stdin = match io.stdin {
        Some(fd) => Some(Rc::new(FdIo::new(fd)?)),
        None => None,
    };
    let input = spawn_local(read_input(rd, stdin, master.clone(), || {}));

    // Output is read (and dropped once the client is gone) until the exit,
    // so the process never blocks on a missing reader.
    let mut connected = connected;
    let mut open = true;
    let mut exited = std::pin::pin!(exited);
    let status = loop {
        tokio::select! {
            frame = rx.recv(), if open => match frame {
                Some(f) if connected => connected = write_frame(wr, &f).await.is_ok(),
                Some(_) => {}
                None => open = false,
            },
            status = &mut exited => break status.ok(),
        }
    };
    // What it wrote just before its exit is still in the pipes.
    let drain = async {
        while let Some(f) = rx.recv().await {
            if connected {
                connected = write_frame(wr, &f).await.is_ok();
            }
        }
    };
    if tokio::time::timeout(DRAIN, drain).await.is_err() {
        for p in &pumps {
            p.abort();
        }
    }
    input.abort();
    let code = status.map_or(255, |s| s.code);
    diag!("exec pid {pid} exited with {code}");
    if connected {
        write_frame(wr, &exit_frame(code, String::new())).await?;
    }
    Ok(())
}

/// Copies one output into `tx` until EOF; drops what the queue cannot take
/// once the receiver is gone, but never stops reading.
async fn pump(fd: Rc<FdIo>, stream: u32, tx: mpsc::Sender<proto::Output>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match fd.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                // Waits while the connection is behind; a closed channel
                // (no receiver) makes the send fail at once.
                let _ = tx.send(data(stream, &buf[..n])).await;
            }
            Err(e) => {
                diag!("read exec output: {e}");
                return;
            }
        }
    }
}
