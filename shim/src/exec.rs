//! `exec`: a new process in the running container, started and reaped by
//! this shim (no extra shim per exec).
//!
//! ```text
//! shim ──setns(pid ns for children)──clone──▶ child ──setsid, stdio, cgroups,
//!   │ back to its own pid ns                      setns ipc/uts/net/cgroup/mnt,
//!   │ registers the pid, reads the report          close fds, user, caps──▶ execve
//! ```
//!
//! The child enters the init's namespaces (read from `/proc/<init>/ns`),
//! joins its cgroups before its cgroup namespace, and its mount namespace
//! last: from then on `/` and the working directory are the container's,
//! and it closes every descriptor but its stdio before it touches a file
//! of the container (its terminal, `/dev/ptmx`, is opened after that), so
//! nothing of the shim or the host is reachable (runc's CVE-2024-21626
//! class). The rest (working directory, user,
//! capabilities, no_new_privs, executable lookup, Docker's 126/127 texts)
//! is the init's own code, `crate::init::exec_process`.
//!
//! Fork safety as for the init: the shim's runtime is single-threaded, so
//! the child's copy of the process holds no lock of another thread.
#![allow(unsafe_code)]

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::error::ShimError;
use crate::init::{self, InitError, Stdio};
use crate::pty::{self, FdIo};
use crate::spec::ProcessPlan;

/// The shim's ends of a process's stdio (the init's or an exec'd one's).
#[derive(Debug)]
pub struct ProcessIo {
    /// Write end of its stdin pipe, or the terminal master (a duplicate);
    /// `None` when its stdin is `/dev/null`.
    pub stdin: Option<OwnedFd>,
    /// Read end of its stdout pipe, or the terminal master.
    pub stdout: OwnedFd,
    /// Read end of its stderr pipe; `None` with a terminal.
    pub stderr: Option<OwnedFd>,
    /// The terminal master, for resizes.
    pub terminal: bool,
}

/// Where the process goes and how its stdio is made.
#[derive(Debug)]
pub struct ExecTarget<'a> {
    pub init: Pid,
    pub cgroup_join: &'a [PathBuf],
    pub plan: &'a ProcessPlan,
    /// Columns and rows of its terminal, if it gets one.
    pub terminal: Option<(u16, u16)>,
    pub stdin: bool,
}

/// Starts the process; `register` is called with its pid before anything
/// can reap it. Returns once it has exec'd, or with why it could not, or
/// after `deadline` (the child is killed then). The wait for its report is
/// awaited on the runtime, so the shim serves its other clients (stop,
/// kill, other execs) meanwhile, whatever the container does to the child.
pub async fn spawn(
    target: &ExecTarget<'_>,
    register: impl FnOnce(Pid),
    deadline: std::time::Duration,
) -> Result<(Pid, ProcessIo), ShimError> {
    let (pid, report_r, io) = clone_child(target, register)?;
    let report = FdIo::new(report_r).map_err(|e| ShimError::sys("watch the exec report", e))?;
    let read = async {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match report.read(&mut buf).await {
                Ok(0) => return Ok(all),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    };
    let outcome = tokio::time::timeout(deadline, read).await;
    let kill = || {
        // Registered: the reaper collects it.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    };
    match outcome {
        Ok(Ok(report)) if report.is_empty() => {}
        Ok(Ok(report)) => return Err(init::report_error(&report, None)),
        Ok(Err(e)) => {
            kill();
            return Err(init::report_error(&[], Some(e)));
        }
        Err(_) => {
            kill();
            return Err(init::exec_timed_out(deadline));
        }
    }
    match io.finish() {
        Ok(io) => Ok((pid, io)),
        Err(e) => {
            kill();
            Err(e)
        }
    }
}

/// The clone into the container: returns the child's pid, the read end of
/// its report pipe and the shim's ends of its stdio.
fn clone_child(target: &ExecTarget<'_>, register: impl FnOnce(Pid)) -> Result<(Pid, OwnedFd, PendingIo), ShimError> {
    let (stdio, io) = process_stdio(target.terminal, target.stdin)?;
    // The namespaces first: all but pid are joined by the child, mount last.
    let ns = |name: &str| {
        let path = format!("/proc/{}/ns/{name}", target.init);
        File::open(&path).map_err(|e| ShimError::sys(format!("open {path}"), e))
    };
    let pid_ns = ns("pid")?;
    let mut join = Vec::new();
    for (name, flag) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        join.push((ns(name)?, flag));
    }
    let own_pid_ns = File::open("/proc/self/ns/pid").map_err(|e| ShimError::sys("open /proc/self/ns/pid", e))?;
    let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::sys("pipe", e))?;
    init::check_single_threaded()?;

    // setns(CLONE_NEWPID) moves only the children made after it.
    nix::sched::setns(&pid_ns, CloneFlags::CLONE_NEWPID).map_err(|e| ShimError::sys("join pid namespace", e))?;
    // SAFETY: clone(2) without CLONE_VM and with a null stack is fork(2):
    // the child gets a copy of this single-threaded process (checked just
    // above) and never returns from `child`.
    let ret = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if ret == 0 {
        child(target, &stdio, &join, report_w);
    }
    let clone_error = io::Error::last_os_error();
    if let Err(e) = nix::sched::setns(&own_pid_ns, CloneFlags::CLONE_NEWPID) {
        crate::diag!("return to own pid namespace: {e}");
    }
    if ret < 0 {
        return Err(ShimError::sys("clone", clone_error));
    }
    let pid = Pid::from_raw(ret as i32);
    register(pid);
    drop(report_w);
    drop(stdio);
    Ok((pid, report_r, io))
}

/// The shim's ends of a process's stdio, ready, or (with a terminal) to
/// be received from the process once it has exec'd.
#[derive(Debug)]
pub enum PendingIo {
    Ready(ProcessIo),
    Terminal { socket: OwnedFd, stdin: bool },
}

impl PendingIo {
    /// Called once the process has exec'd (so it has sent its terminal)
    /// and the shim's copy of the child's stdio is closed.
    pub fn finish(self) -> Result<ProcessIo, ShimError> {
        match self {
            Self::Ready(io) => Ok(io),
            Self::Terminal { socket, stdin } => {
                let master = pty::recv_master(socket.as_fd()).map_err(|e| ShimError::sys("receive the terminal", e))?;
                let stdin = match stdin {
                    true => Some(master.try_clone().map_err(|e| ShimError::sys("dup terminal master", e))?),
                    false => None,
                };
                Ok(ProcessIo { stdin, stdout: master, stderr: None, terminal: true })
            }
        }
    }
}

/// Makes a process's stdio: a terminal of `terminal` columns and rows
/// (opened by the process, see `pty`), or pipes for stdout and stderr;
/// stdin a pipe (or the terminal) when `stdin`, else `/dev/null`. Returns
/// the process's ends and the shim's.
pub fn process_stdio(terminal: Option<(u16, u16)>, stdin: bool) -> Result<(Stdio, PendingIo), ShimError> {
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::sys("pipe", e));
    if let Some((cols, rows)) = terminal {
        let (ours, theirs) = UnixStream::pair().map_err(|e| ShimError::sys("socketpair", e))?;
        let stdio = Stdio::Terminal { socket: theirs.into(), cols, rows };
        return Ok((stdio, PendingIo::Terminal { socket: ours.into(), stdin }));
    }
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (stdin_r, stdin_w) = if stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        let null = File::open("/dev/null").map_err(|e| ShimError::sys("open /dev/null", e))?;
        (null.into(), None)
    };
    let stdio = Stdio::Pipes { stdin: stdin_r, stdout: stdout_w, stderr: stderr_w };
    let io = ProcessIo { stdin: stdin_w, stdout: stdout_r, stderr: Some(stderr_r), terminal: false };
    Ok((stdio, PendingIo::Ready(io)))
}

/// The child side of the clone: never returns.
fn child(target: &ExecTarget<'_>, stdio: &Stdio, join: &[(File, CloneFlags)], report: OwnedFd) -> ! {
    let fd = report.as_raw_fd();
    init::run_child(report, || {
        nix::unistd::setsid().map_err(|e| InitError::sys("setsid", e))?;
        stdio.attach_pipes()?;
        // Host paths: before the mount namespace changes what paths mean.
        for procs in target.cgroup_join {
            fs::write(procs, "0").map_err(|e| InitError::sys(format!("join cgroup {}", procs.display()), e))?;
        }
        for (ns, flag) in join {
            nix::sched::setns(ns, *flag).map_err(|e| InitError::sys(format!("setns {flag:?}"), e))?;
        }
        let keep: Vec<RawFd> = [Some(fd), stdio.keep()].into_iter().flatten().collect();
        init::close_fds_except(&keep).map_err(|e| InitError::sys("close inherited fds", e))?;
        // In the container's mount namespace now: its own devpts.
        stdio.attach_terminal()?;
        init::exec_process(target.plan)
    })
}
