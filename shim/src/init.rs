//! The container's init: cloned by the shim into its new namespaces, it
//! joins its cgroups, builds its filesystem, becomes its user and execs the
//! container's process. It reports any failure before the exec on a
//! close-on-exec pipe: one byte of exit code then the message; EOF with
//! nothing means the `execve` succeeded.
//!
//! Fork safety: the shim is single-threaded when it clones (no tokio
//! runtime or other thread exists yet, see [`crate::daemon`]), so no lock
//! can be held by a thread that does not exist in the child, and the init
//! may allocate, format and read files. What can be prepared is prepared
//! before the clone anyway ([`crate::spec::Plan`]: C strings, flags, opened
//! namespace files), so the init stays short. The init never returns into
//! the shim's code: it execs or `_exit`s, and a panic is caught and
//! reported like an error, so no shim destructor ever runs twice.
//!
//! fd hygiene: after the stdio is in place and the namespaces given by path
//! are joined, the init closes every descriptor but 0, 1, 2 and the report
//! pipe (which is close-on-exec), before it touches the container's files:
//! no shim descriptor can reach the container (runc's CVE-2024-21626 was a
//! leaked fd used as the working directory).
#![allow(unsafe_code)]

use std::convert::Infallible;
use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use caps::CapSet;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Pid, Uid};

use crate::error::{os_msg, ShimError};
use crate::namespaces;
use crate::rootfs;
use crate::spec::{CapsPlan, Plan, ProcessPlan};
use crate::user::ExecUser;

/// A process's stdio, as the shim hands it to the child.
#[derive(Debug)]
pub enum Stdio {
    /// `/dev/null` or a pipe's read end, and the write ends of two pipes.
    Pipes { stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd },
    /// A terminal of `cols` x `rows` that the child opens in the
    /// container's devpts; it sends the master to the shim over `socket`.
    Terminal { socket: OwnedFd, cols: u16, rows: u16 },
}

impl Stdio {
    /// In the child, first: the pipes become its stdin, stdout and stderr.
    pub(crate) fn attach_pipes(&self) -> Result<(), InitError> {
        if let Self::Pipes { stdin, stdout, stderr } = self {
            nix::unistd::dup2_stdin(stdin).map_err(|e| InitError::sys("dup2 stdin", e))?;
            nix::unistd::dup2_stdout(stdout).map_err(|e| InitError::sys("dup2 stdout", e))?;
            nix::unistd::dup2_stderr(stderr).map_err(|e| InitError::sys("dup2 stderr", e))?;
        }
        Ok(())
    }

    /// In the child (a session leader), once it is in the container's
    /// mount namespace: opens the terminal there, makes the slave its
    /// stdin, stdout, stderr and controlling terminal, and sends the master
    /// to the shim.
    pub(crate) fn attach_terminal(&self) -> Result<(), InitError> {
        let Self::Terminal { socket, cols, rows } = self else {
            return Ok(());
        };
        let pty = crate::pty::open(*cols, *rows).map_err(|e| InitError::sys("open a terminal in the container", e))?;
        nix::unistd::dup2_stdin(&pty.slave).map_err(|e| InitError::sys("dup2 stdin", e))?;
        nix::unistd::dup2_stdout(&pty.slave).map_err(|e| InitError::sys("dup2 stdout", e))?;
        nix::unistd::dup2_stderr(&pty.slave).map_err(|e| InitError::sys("dup2 stderr", e))?;
        crate::pty::set_controlling(0).map_err(|e| InitError::sys("set the controlling terminal", e))?;
        crate::pty::send_master(socket.as_fd(), pty.master.as_fd())
            .map_err(|e| InitError::sys("send the terminal to the shim", e))
    }

    /// What the child keeps open until `attach_terminal`, besides stdio.
    pub(crate) fn keep(&self) -> Option<RawFd> {
        match self {
            Self::Pipes { .. } => None,
            Self::Terminal { socket, .. } => Some(socket.as_raw_fd()),
        }
    }
}

/// A failure in the init before its exec: the exit code of `berth-shim
/// start` (1, 126 or 127) and the one line a person sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError {
    pub code: u8,
    pub message: String,
}

impl InitError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// A failed system call: `what: strerror`, exit code 1.
    pub fn sys(what: impl fmt::Display, e: impl Into<io::Error>) -> Self {
        Self::new(1, format!("{what}: {}", os_msg(&e.into())))
    }

    /// Docker's `exec: "NAME": why`.
    fn exec(code: u8, arg0: &str, why: &str) -> Self {
        Self::new(code, format!("exec: {arg0:?}: {why}"))
    }
}

/// Clones the init and waits until it has exec'd the container's process
/// (`Ok(pid)`, the host pid) or failed (`Err`, the init already reaped).
pub fn spawn(plan: &Plan, stdio: &Stdio) -> Result<Pid, ShimError> {
    let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::sys("pipe", e))?;
    // setns(CLONE_NEWPID) only moves the shim's future children: enter the
    // given pid namespace for the clone, then come back.
    let own_pid_ns = match &plan.namespaces.join_pid {
        Some(fd) => {
            let own = File::open("/proc/self/ns/pid").map_err(|e| ShimError::sys("open /proc/self/ns/pid", e))?;
            nix::sched::setns(fd, CloneFlags::CLONE_NEWPID).map_err(|e| ShimError::sys("join pid namespace", e))?;
            Some(own)
        }
        None => None,
    };
    check_single_threaded()?;
    let flags = plan.namespaces.clone_flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone(2) without CLONE_VM and with a null stack is fork(2)
    // with namespace flags: the child gets a copy of this address space and
    // returns here with 0. The shim is single-threaded (module doc), so the
    // copy holds no lock owned by another thread; the child never returns
    // from `child`.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if ret == 0 {
        child(plan, stdio, report_w);
    }
    let clone_error = io::Error::last_os_error();
    if let Some(own) = own_pid_ns {
        if let Err(e) = nix::sched::setns(own, CloneFlags::CLONE_NEWPID) {
            crate::diag!("return to own pid namespace: {e}");
        }
    }
    if ret < 0 {
        return Err(ShimError::sys("clone", clone_error));
    }
    drop(report_w);
    let pid = Pid::from_raw(ret as i32);
    wait_exec(pid, report_r, EXEC_DEADLINE)?;
    Ok(pid)
}

/// How long a child may take from its clone to its `execve` (or to its
/// report of why not). Everything in between is the shim's own code over
/// the container's files, which could be made to block (a FIFO where a
/// file is expected, a descriptor held open through `/proc`); past this
/// the child is killed and the start or exec fails.
pub const EXEC_DEADLINE: Duration = Duration::from_secs(30);

/// The failure of a child that neither exec'd nor reported in time.
pub(crate) fn exec_timed_out(deadline: Duration) -> ShimError {
    ShimError::Init {
        code: 1,
        message: match deadline.subsec_millis() {
            0 => format!("the process did not start within {} s: its set-up was blocked", deadline.as_secs()),
            _ => format!("the process did not start within {} ms: its set-up was blocked", deadline.as_millis()),
        },
    }
}

/// Reads a child's report pipe to EOF, for at most `deadline`: nothing
/// means its `execve` succeeded; else the child has failed (or is killed
/// for being late), is reaped here, and its code and message are returned.
pub(crate) fn wait_exec(pid: Pid, report_r: OwnedFd, deadline: Duration) -> Result<(), ShimError> {
    let until = std::time::Instant::now() + deadline;
    let mut report = Vec::new();
    let mut file = File::from(report_r);
    let mut buf = [0u8; 4096];
    let read: io::Result<()> = loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            return Err(exec_timed_out(deadline));
        }
        let mut fds = [nix::poll::PollFd::new(file.as_fd(), nix::poll::PollFlags::POLLIN)];
        let ms = nix::poll::PollTimeout::try_from(left.as_millis().min(60_000) as i32 + 1)
            .unwrap_or(nix::poll::PollTimeout::MAX);
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => break Err(e.into()),
        }
        match file.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => report.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if read.is_ok() && report.is_empty() {
        return Ok(());
    }
    if read.is_err() {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = nix::sys::wait::waitpid(pid, None);
    Err(report_error(&report, read.err()))
}

/// The error a child's report (one byte of exit code, then the message)
/// stands for.
pub(crate) fn report_error(report: &[u8], read: Option<io::Error>) -> ShimError {
    match report.split_first() {
        Some((code, message)) => {
            ShimError::Init { code: i32::from(*code), message: String::from_utf8_lossy(message).into_owned() }
        }
        None => ShimError::sys("read the init's report", read.unwrap_or_else(|| io::Error::other("empty"))),
    }
}

/// Refuses to fork unless this process has one thread: the init and exec
/// children allocate and take locks between clone and execve, which is
/// only safe when no other thread could have held them at the fork.
pub(crate) fn check_single_threaded() -> Result<(), ShimError> {
    let tasks = fs::read_dir("/proc/self/task").map_err(|e| ShimError::sys("read /proc/self/task", e))?.count();
    if tasks == 1 {
        Ok(())
    } else {
        Err(ShimError::Spec(format!("the shim has {tasks} threads: refusing to fork a container process")))
    }
}

/// The child side of the clone: never returns.
fn child(plan: &Plan, stdio: &Stdio, report: OwnedFd) -> ! {
    let fd = report.as_raw_fd();
    run_child(report, || setup_and_exec(plan, stdio, fd))
}

/// Runs a forked child's set-up and exec; a failure (or a panic) is
/// written to `report` as one byte of exit code and the message, then the
/// child `_exit`s. Never returns into the caller's frames.
pub(crate) fn run_child(report: OwnedFd, f: impl FnOnce() -> Result<Infallible, InitError>) -> ! {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let err = match outcome {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => e,
        Err(_) => InitError::new(1, "the container's process set-up panicked"),
    };
    let message = err.message.as_bytes();
    // One write below PIPE_BUF is atomic.
    let mut buf = Vec::with_capacity(1 + message.len().min(4000));
    buf.push(err.code);
    buf.extend_from_slice(&message[..message.len().min(4000)]);
    let _ = nix::unistd::write(&report, &buf);
    exit_now(i32::from(err.code))
}

/// `_exit(2)`: ends a forked process without running the parent's atexit
/// handlers or flushing buffers that belong to the parent.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust-managed memory.
    unsafe { libc::_exit(code) }
}

fn setup_and_exec(plan: &Plan, stdio: &Stdio, report: RawFd) -> Result<Infallible, InitError> {
    // Mount points and device nodes get exactly the modes asked for; the
    // process's own umask is set just before the exec.
    nix::sys::stat::umask(Mode::empty());
    // Its own session: signals to the shim's group never reach it.
    nix::unistd::setsid().map_err(|e| InitError::sys("setsid", e))?;
    stdio.attach_pipes()?;
    namespaces::join(&plan.namespaces)?;
    let keep: Vec<RawFd> = [Some(report), stdio.keep()].into_iter().flatten().collect();
    close_fds_except(&keep).map_err(|e| InitError::sys("close inherited fds", e))?;
    // cgroup.procs takes "0" as "the writer" (cgroups(7)); joining before
    // the unshare roots the new cgroup namespace at the container's cgroup.
    for procs in &plan.cgroup_join {
        fs::write(procs, "0").map_err(|e| InitError::sys(format!("join cgroup {}", procs.display()), e))?;
    }
    namespaces::unshare_cgroup(&plan.namespaces)?;
    rootfs::enter(&plan.rootfs)?;
    // The container's own devpts, now that `/dev` is the container's.
    stdio.attach_terminal()?;
    if let Some(name) = &plan.hostname {
        nix::unistd::sethostname(name).map_err(|e| InitError::sys("sethostname", e))?;
    }
    if plan.namespaces.new_net() {
        namespaces::loopback_up()?;
    }
    for (path, value) in &plan.sysctl {
        fs::write(path, value).map_err(|e| InitError::sys(format!("write {}", path.display()), e))?;
    }
    rootfs::protect(&plan.rootfs)?;
    exec_process(&plan.process)
}

pub(crate) fn exec_process(p: &ProcessPlan) -> Result<Infallible, InitError> {
    for (resource, soft, hard) in &p.rlimits {
        match nix::sys::resource::setrlimit(*resource, *soft, *hard) {
            // Raising a hard limit needs CAP_SYS_RESOURCE, which a root
            // without it (some hosts) lacks: keep the current limit.
            Ok(()) | Err(Errno::EPERM) => {}
            Err(e) => return Err(InitError::sys(format!("setrlimit {resource:?}"), e)),
        }
    }
    if let Some(adj) = p.oom_score_adj {
        match fs::write("/proc/self/oom_score_adj", adj.to_string()) {
            Ok(()) => {}
            // Lowering it needs CAP_SYS_RESOURCE too.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {}
            Err(e) => return Err(InitError::sys("write oom_score_adj", e)),
        }
    }
    enter_cwd(&p.cwd)?;
    let passwd = read_small(Path::new("/etc/passwd"));
    let group = read_small(Path::new("/etc/group"));
    let user = p.user.resolve(passwd.as_deref(), group.as_deref()).map_err(|e| InitError::new(126, e.to_string()))?;
    let mut env = p.env.clone();
    if !p.env_has_home {
        if let Ok(home) = CString::new(format!("HOME={}", user.home)) {
            env.push(home);
        }
    }
    if user.uid != 0 {
        // So that the user can reopen /dev/stdout (/proc/self/fd/1): the
        // pipes are the shim's, mode 0600.
        for fd in [io::stdout().as_fd(), io::stderr().as_fd()] {
            let _ = nix::unistd::fchown(fd, Some(Uid::from_raw(user.uid)), Some(Gid::from_raw(user.gid)));
        }
    }
    // The filter goes on while the process is still root with every
    // capability, so loading it needs no no_new_privs; what follows
    // (setgroups, setres[ug]id, capset, prctl, execve) is allowed by it.
    if let Some(filter) = &p.seccomp {
        crate::seccomp::load(filter)?;
    }
    switch_user(&user, p.capabilities.as_ref())?;
    if p.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| InitError::sys("set no_new_privs", e))?;
    }
    let path = lookup(&p.arg0, &p.path)?;
    let exe = Path::new(OsStr::from_bytes(path.as_bytes()));
    if let (Some((dev, ino)), Ok(m)) = (p.shim_exe, fs::metadata(exe)) {
        if (m.dev(), m.ino()) == (dev, ino) {
            return Err(InitError::exec(126, &p.arg0, "refusing to run the container runtime"));
        }
    }
    nix::sys::stat::umask(Mode::from_bits_truncate(p.umask as libc::mode_t));
    reset_signals();
    let e = match nix::unistd::execve(&path, &p.args, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(match e {
        // The file exists (lookup saw it): its interpreter does not.
        Errno::ENOENT => InitError::exec(127, &p.arg0, "no such file or directory"),
        Errno::EACCES => InitError::exec(126, &p.arg0, "permission denied"),
        Errno::EPERM => InitError::exec(126, &p.arg0, "operation not permitted"),
        e => InitError::exec(1, &p.arg0, &e.desc().to_lowercase()),
    })
}

/// `process.cwd`, created if missing (as Docker does).
fn enter_cwd(cwd: &Path) -> Result<(), InitError> {
    // Explicit mode: the init runs with umask 0 until just before the exec.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(cwd)
        .map_err(|e| InitError::sys(format!("create working directory {}", cwd.display()), e))?;
    nix::unistd::chdir(cwd).map_err(|e| InitError::sys(format!("chdir to {}", cwd.display()), e))?;
    // A working directory outside the container's root (a leaked fd,
    // CVE-2024-21626) has no path: getcwd(3) fails or is not absolute.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(InitError::new(1, format!("working directory {} is outside the container", cwd.display()))),
    }
}

/// A small text file of the container (passwd, group), `None` if missing.
/// Only a regular file is read, opened without blocking: a FIFO or a
/// device put there by the container would otherwise hold the process
/// (and the shim waiting for its report) until the container lets go.
fn read_small(path: &Path) -> Option<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(4 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Bounding set, then groups/gid/uid (keeping the permitted set across the
/// uid change, capabilities(7) "PR_SET_KEEPCAPS"), then the spec's
/// inheritable, permitted, effective and ambient sets.
fn switch_user(user: &ExecUser, caps: Option<&CapsPlan>) -> Result<(), InitError> {
    let caps_err = |what: &'static str| move |e: caps::errors::CapsError| InitError::new(1, format!("{what}: {e}"));
    if let Some(c) = caps {
        let bounding = caps::read(None, CapSet::Bounding).map_err(caps_err("read bounding set"))?;
        for cap in bounding.difference(&c.bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(caps_err("drop bounding capability"))?;
        }
        nix::sys::prctl::set_keepcaps(true).map_err(|e| InitError::sys("set keepcaps", e))?;
    }
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| InitError::sys("setgroups", e))?;
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| InitError::sys("setgid", e))?;
    let uid = Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| InitError::sys("setuid", e))?;
    let Some(c) = caps else { return Ok(()) };
    nix::sys::prctl::set_keepcaps(false).map_err(|e| InitError::sys("clear keepcaps", e))?;
    caps::set(None, CapSet::Inheritable, &c.inheritable).map_err(caps_err("set inheritable capabilities"))?;
    // capset(2) wants effective within permitted at every step.
    let effective = caps::read(None, CapSet::Effective).map_err(caps_err("read capabilities"))?;
    let within = effective.intersection(&c.permitted).copied().collect();
    caps::set(None, CapSet::Effective, &within).map_err(caps_err("set effective capabilities"))?;
    caps::set(None, CapSet::Permitted, &c.permitted).map_err(caps_err("set permitted capabilities"))?;
    caps::set(None, CapSet::Effective, &c.effective).map_err(caps_err("set effective capabilities"))?;
    if !c.ambient.is_empty() {
        caps::set(None, CapSet::Ambient, &c.ambient).map_err(caps_err("set ambient capabilities"))?;
    }
    Ok(())
}

/// Resolves `args[0]` as `execvp` would, in the container's filesystem:
/// a name without `/` is searched in `PATH` for an executable regular file.
fn lookup(arg0: &str, path: &str) -> Result<CString, InitError> {
    let not_found = || InitError::exec(127, arg0, "executable file not found in $PATH");
    let c_string = |s: &str| CString::new(s).map_err(|_| not_found());
    if arg0.contains('/') {
        return match fs::metadata(arg0) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(InitError::exec(127, arg0, "no such file or directory"))
            }
            Ok(m) if m.is_dir() => Err(InitError::exec(126, arg0, "is a directory")),
            _ => c_string(arg0),
        };
    }
    let mut denied = false;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = format!("{dir}/{arg0}");
        match fs::metadata(&candidate) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => return c_string(&candidate),
            Ok(m) if m.is_file() => denied = true,
            _ => {}
        }
    }
    Err(if denied { InitError::exec(126, arg0, "permission denied") } else { not_found() })
}

/// Dispositions set to ignore survive execve(2) (signal(7)): Rust's runtime
/// ignores SIGPIPE in the shim, which the container must not inherit. The
/// mask is emptied too.
fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler; invalid numbers fail with
        // EINVAL, which is ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Closes every descriptor from 3 up except those in `keep`.
///
/// Callers own no live `OwnedFd` for the closed numbers that would be
/// dropped later: the foreground shim calls it first thing, the init never
/// returns to the frames that own them.
pub(crate) fn close_fds_except(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep.iter().filter(|f| **f >= 3).map(|f| *f as u32).collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for k in keep {
        close_range(first, k.saturating_sub(1))?;
        first = k + 1;
    }
    close_range(first, u32::MAX)
}

fn close_range(first: u32, last: u32) -> io::Result<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: close_range(2) only closes descriptors; see
    // `close_fds_except` for why none of them is owned by live Rust code.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e);
    }
    // Before Linux 5.9: close what /proc/self/fd lists.
    let open: Vec<u32> =
        fs::read_dir("/proc/self/fd")?.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    for fd in open.into_iter().filter(|fd| (first..=last).contains(fd)) {
        // SAFETY: as above.
        unsafe { libc::close(fd as libc::c_int) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child whose report never comes (the write end held open, as a
    /// container holding it through /proc would) is killed at the
    /// deadline, and the wait ends with the timeout's error.
    #[test]
    #[allow(clippy::zombie_processes)] // reaped by `wait_exec`, the code under test
    fn a_silent_child_is_killed_at_the_deadline() {
        let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let child = std::process::Command::new("/bin/sleep").arg("60").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let t0 = std::time::Instant::now();
        let err = wait_exec(pid, report_r, Duration::from_millis(300)).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert_eq!(err.to_string(), "the process did not start within 300 ms: its set-up was blocked");
        // Killed and reaped by the wait.
        assert!(nix::sys::signal::kill(pid, None).is_err());
        drop(report_w);
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by `wait_exec`, the code under test
    fn a_report_is_the_childs_code_and_message() {
        let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        nix::unistd::write(&report_w, b"\x7fexec: \"x\": executable file not found in $PATH").unwrap();
        drop(report_w);
        match wait_exec(pid, report_r, EXEC_DEADLINE).unwrap_err() {
            ShimError::Init { code, message } => {
                assert_eq!(code, 127);
                assert_eq!(message, "exec: \"x\": executable file not found in $PATH");
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn lookup_messages() {
        let err = lookup("no-such-berth-binary", "/bin:/usr/bin").unwrap_err();
        assert_eq!(err, InitError::new(127, "exec: \"no-such-berth-binary\": executable file not found in $PATH"));
        let err = lookup("/no/such", "").unwrap_err();
        assert_eq!(err, InitError::new(127, "exec: \"/no/such\": no such file or directory"));
        let err = lookup("/", "").unwrap_err();
        assert_eq!(err, InitError::new(126, "exec: \"/\": is a directory"));
        // /etc/passwd is a regular file without execute bits.
        let err = lookup("passwd", "/etc").unwrap_err();
        assert_eq!(err, InitError::new(126, "exec: \"passwd\": permission denied"));
        let found = lookup("sh", "/nonexistent::/bin").unwrap();
        assert_eq!(found.to_str().unwrap(), "/bin/sh");
    }
}
