//! The running shim, once the container exists: a `current_thread` tokio
//! runtime (with a `LocalSet`: nothing here is shared across threads) that
//! drains the container's output ([`crate::stdio`]), reaps its init
//! ([`crate::reaper`]) and answers berthd on `shim.sock`.
//!
//! The socket speaks `berth.shim.v1`: each connection sends one `Request`
//! frame and reads one `Response` frame. `state` and `kill` answer at once;
//! `wait` and `shutdown` answer once the exit is persisted.
//!
//! On the init's exit the order is fixed, because berthd relies on it:
//! drain the pipes (bounded), persist `exit.json`, then answer the waiters,
//! remove `shim.sock` and `shim.pid`, linger briefly for answers in flight,
//! and exit. An exit status is never told before it is on disk.
use std::cell::Cell;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use berth_proto::frame::{read_frame, write_frame};
use berth_proto::shim::{self as proto, request::Kind, KillRequest, Request, Response};
use nix::unistd::Pid;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::spawn_local;

use crate::daemon::remove_state_files;
use crate::diag;
use crate::exec::ProcessIo;
use crate::logfile::LogFile;
use crate::pty::FdIo;
use crate::reaper::{self, Children};
use crate::spec::ProcessPlan;
use crate::stdio;
use crate::streams::{self, Hub};
use berth_contract::exit::cgroup_oom_killed;
use berth_contract::{ContainerPaths, ExitStatus};

/// How long output may keep flowing after the init's exit (from processes
/// outside its pid namespace that still hold the pipes).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the shim waits, after the exit is told, for connections still
/// being answered.
const LINGER: Duration = Duration::from_secs(1);

/// What the shim holds once the container's process runs.
#[derive(Debug)]
pub struct Running {
    /// The init's host pid.
    pub pid: Pid,
    /// The shim's ends of the init's stdio.
    pub io: ProcessIo,
    /// A terminal or an open stdin: hold the first output for an attach.
    pub interactive: bool,
    /// The init's process plan: exec'd processes get its capabilities.
    pub process: ProcessPlan,
    /// Bound on `shim.sock`.
    pub listener: StdUnixListener,
    /// `container.log`, opened for appending.
    pub log: LogFile,
    /// For `kill --all` when the container shares the host's pid namespace.
    pub cgroup_join: Vec<PathBuf>,
}

/// Serves until the init has exited and its status is persisted; returns
/// the shim's exit code.
pub fn serve(running: Running, paths: &ContainerPaths) -> i32 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build();
    match runtime {
        Ok(rt) => {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, run(running, paths));
            0
        }
        Err(e) => {
            // Still keep the one promise that matters: the exit status.
            diag!("cannot start the runtime: {e}; waiting for the init without serving");
            let pid = running.pid;
            drop(running);
            remove_state_files(paths);
            persist(paths, &reaper::wait_blocking(pid));
            1
        }
    }
}

async fn run(r: Running, paths: &ContainerPaths) {
    let (exit_tx, exit_rx) = watch::channel(None);
    let io = r.io;
    let mut sources = Vec::new();
    let mut terminal = None;
    match FdIo::new(io.stdout) {
        Ok(fd) => {
            let fd = Rc::new(fd);
            if io.terminal {
                terminal = Some(fd.clone());
            }
            sources.push((fd, "stdout"));
        }
        Err(e) => diag!("watch stdout: {e}"),
    }
    if let Some(err) = io.stderr {
        match FdIo::new(err) {
            Ok(fd) => sources.push((Rc::new(fd), "stderr")),
            Err(e) => diag!("watch stderr: {e}"),
        }
    }
    let stdin = io.stdin.and_then(|fd| FdIo::new(fd).map_err(|e| diag!("watch stdin: {e}")).ok()).map(Rc::new);
    let hub = Rc::new(Hub::new(stdin, terminal, r.interactive));
    let shared = Rc::new(Shared {
        pid: r.pid,
        cgroup_join: r.cgroup_join,
        reaped: Cell::new(false),
        exit: exit_rx,
        active: Cell::new(0),
        hub: hub.clone(),
        children: Children::default(),
        process: r.process,
    });
    let log = Rc::new(r.log);
    let mut pumps = Vec::new();
    for (fd, name) in sources {
        pumps.push(spawn_local(stdio::pump(fd, name, log.clone(), hub.clone())));
    }
    let accept = match r.listener.set_nonblocking(true).and_then(|()| UnixListener::from_std(r.listener)) {
        Ok(listener) => Some(spawn_local(accept_loop(listener, shared.clone()))),
        Err(e) => {
            diag!("serve shim.sock: {e}");
            None
        }
    };

    let status = reaper::wait_for(r.pid, &shared.children).await;
    shared.reaped.set(true);
    let rest = shared.clone();
    let reaping = spawn_local(async move { reaper::reap_rest(&rest.children).await });
    diag!("init {} exited: code {} signal {:?}", r.pid, status.code, status.signal);
    // What the container wrote just before its exit is still in the pipes.
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        for p in &mut pumps {
            let _ = p.await;
        }
    })
    .await;
    if drained.is_err() {
        diag!("output still open {DRAIN_TIMEOUT:?} after the exit; closing it");
        for p in &pumps {
            p.abort();
        }
    }
    // What the log could not take is told in it now if the disk has room
    // again, else in the exit record.
    let mut status = status;
    status.log_dropped = log.finish();
    // The kernel counts its OOM kills in the cgroup berthd removes only
    // after it has read this record: told here, an OOM kill while berthd is
    // down is not lost.
    status.oom_killed = shared.cgroup_join.iter().filter_map(|f| f.parent()).any(cgroup_oom_killed);
    persist(paths, &status);
    exit_tx.send_replace(Some(status));
    // Attached clients get the rest of the output, then the exit status.
    hub.close();
    if let Some(a) = accept {
        a.abort();
    }
    remove_state_files(paths);
    let deadline = Instant::now() + LINGER;
    while shared.active.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    reaping.abort();
}

/// Writes `exit.json` (`ExitStatus::persist`); a failure is logged
/// (nothing else can be done).
fn persist(paths: &ContainerPaths, status: &ExitStatus) {
    if let Err(e) = status.persist(paths) {
        diag!("write {}: {e}", paths.exit_file().display());
    }
}

/// What the connection handlers share with the main task.
struct Shared {
    pid: Pid,
    cgroup_join: Vec<PathBuf>,
    /// The init has been reaped: its pid may be reused, never signal it.
    reaped: Cell<bool>,
    /// The persisted exit status, once there is one.
    exit: watch::Receiver<Option<ExitStatus>>,
    /// Connections being answered.
    active: Cell<usize>,
    hub: Rc<Hub>,
    children: Children,
    process: ProcessPlan,
}

/// Counts a connection while it lives.
struct Active<'a>(&'a Shared);

impl<'a> Active<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared.active.set(shared.active.get() + 1);
        Self(shared)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get() - 1);
    }
}

impl Shared {
    fn state(&self) -> proto::State {
        let exit = self.exit.borrow().clone();
        proto::State {
            pid: self.pid.as_raw() as u32,
            running: exit.is_none(),
            exit: exit.map(|e| proto::ExitStatus {
                code: e.code,
                signal: e.signal.unwrap_or(0),
                finished_at: e.finished_at,
                oom_killed: e.oom_killed,
            }),
        }
    }

    fn streams(&self) -> streams::Ctx<'_> {
        streams::Ctx {
            hub: self.hub.clone(),
            children: &self.children,
            init: self.pid,
            cgroup_join: &self.cgroup_join,
            plan: &self.process,
            exit: self.exit.clone(),
        }
    }

    fn answer(&self, error: String) -> Response {
        self.refuse(proto::ErrorCode::Unspecified, error)
    }

    fn refuse(&self, code: proto::ErrorCode, error: String) -> Response {
        Response { error, state: Some(self.state()), code: code as i32 }
    }

    /// Resolves once the exit status is persisted.
    async fn exited(&self) {
        let mut rx = self.exit.clone();
        let _ = rx.wait_for(Option::is_some).await;
    }

    fn kill(&self, k: &KillRequest) -> Response {
        if !(0..=64).contains(&k.signal) {
            return self.refuse(proto::ErrorCode::InvalidArgument, format!("invalid signal {}", k.signal));
        }
        if self.reaped.get() {
            return self.refuse(proto::ErrorCode::NotRunning, "container is not running".into());
        }
        if k.all {
            for pid in reaper::container_pids(self.pid, &self.cgroup_join) {
                let _ = reaper::send_signal(pid, k.signal);
            }
        }
        match reaper::send_signal(self.pid.as_raw(), k.signal) {
            Ok(()) => self.answer(String::new()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                self.refuse(proto::ErrorCode::NotRunning, "container is not running".into())
            }
            Err(e) => self.refuse(proto::ErrorCode::Internal, format!("kill: {}", crate::error::os_msg(&e))),
        }
    }

    async fn shutdown(&self) -> Response {
        if !self.reaped.get() {
            let _ = reaper::send_signal(self.pid.as_raw(), libc::SIGKILL);
        }
        self.exited().await;
        self.answer(String::new())
    }
}

async fn accept_loop(listener: UnixListener, shared: Rc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let shared = shared.clone();
                spawn_local(async move {
                    let _active = Active::new(&shared);
                    handle(stream, &shared).await;
                });
            }
            Err(e) => {
                // EMFILE and the like: do not spin.
                diag!("accept on shim.sock: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut stream: UnixStream, shared: &Shared) {
    let request: Request = match read_frame(&mut stream).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            diag!("read request: {e}");
            return;
        }
    };
    let response = match request.kind {
        Some(Kind::State(_)) => shared.answer(String::new()),
        Some(Kind::Kill(k)) => shared.kill(&k),
        Some(Kind::Wait(_)) => {
            shared.exited().await;
            shared.answer(String::new())
        }
        Some(Kind::Shutdown(_)) => shared.shutdown().await,
        Some(Kind::Attach(a)) => return streams::attach(stream, shared.streams(), a).await,
        Some(Kind::Exec(x)) => return streams::exec(stream, shared.streams(), x).await,
        None => shared.answer("empty request".into()),
    };
    if let Err(e) = write_frame(&mut stream, &response).await {
        diag!("write response: {e}");
    }
}
