//! `berth-shim start`: the foreground process berthd waits for, and the
//! daemon it leaves behind.
//!
//! ```text
//! foreground ──fork──▶ intermediate (setsid) ──fork──▶ daemon ──clone──▶ container init
//!    │ waits for the         exits at once              │ subreaper, stdio to /dev/null and
//!    │ intermediate, reads                              │ shim.log; creates the container,
//!    │ the report pipe                                  │ writes shim.pid, binds shim.sock,
//!    ▼ to EOF                                           ▼ reports, then serves
//!  prints the init's pid (exit 0) or one error line (exit 127/126/1)
//! ```
//!
//! The foreground exits only once the outcome is known, and the daemon
//! keeps none of the foreground's descriptors (berthd reads its stdout and
//! stderr to EOF). Every descriptor inherited from berthd is closed first
//! thing. The process stays single-threaded until the container exists
//! (see [`crate::init`]); only then does [`crate::service`] start a tokio
//! runtime.
#![allow(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::ForkResult;

use crate::diag;
use crate::error::ShimError;
use crate::init;
use crate::logfile::LogFile;
use crate::service::{self, Running};
use crate::spec;
use berth_contract::fs::atomic_replace;
use berth_contract::shim_start::{StartConfig, StartOutcome};
use berth_contract::{ContainerPaths, ExitStatus};

/// Runs `berth-shim start`; returns the foreground's exit code.
pub fn run(config: StartConfig) -> i32 {
    // Non-dumpable for its whole life, and so are its forked children (the
    // flag belongs to the address space, copied by fork, reset by execve):
    // between the clone of an exec'd process into the container's pid
    // namespace and its execve, root in the container could otherwise open
    // `/proc/<pid>/exe` (the host's shim binary: CVE-2019-5736), its
    // `fd/` (the report pipe) or its memory. Only CAP_SYS_PTRACE in the
    // host's user namespace passes now (ptrace(2), "Ptrace access mode
    // checking"); the container has none.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("{}", ShimError::sys("prctl(PR_SET_DUMPABLE, 0)", e));
        return 1;
    }
    // Nothing berthd's process had open belongs to a container.
    if let Err(e) = init::close_fds_except(&[]) {
        eprintln!("close inherited fds: {e}");
        return 1;
    }
    // An ignored SIGCHLD would make the kernel reap children itself
    // (waitpid(2) then fails with ECHILD) and a blocked one would never
    // wake the reaper: both can be inherited, so reset them.
    // SAFETY: SIG_DFL installs no handler.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    let paths = ContainerPaths::from_dirs(&config.bundle, &config.state);
    if let Err(e) = fs::create_dir_all(paths.state_dir()) {
        eprintln!("{}", ShimError::sys(format!("create {}", paths.state_dir().display()), e));
        return 1;
    }
    let (report_r, report_w) = match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}", ShimError::sys("pipe", e));
            return 1;
        }
    };
    // SAFETY: the shim is single-threaded here (no runtime, no thread was
    // started), so the child's copy of the process is consistent.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            eprintln!("{}", ShimError::sys("fork", e));
            1
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report_w);
            let _ = nix::sys::wait::waitpid(child, None);
            foreground(report_r, &paths)
        }
        Ok(ForkResult::Child) => {
            drop(report_r);
            detach(&config, &paths, report_w)
        }
    }
}

/// Reads the daemon's report to EOF and turns it into output and a code.
fn foreground(report: OwnedFd, paths: &ContainerPaths) -> i32 {
    let mut text = String::new();
    let _ = File::from(report).read_to_string(&mut text);
    let outcome = match Report::decode(&text) {
        Some(Report::Started(pid)) => StartOutcome::Started { pid: pid.unsigned_abs() },
        Some(Report::Failed(code, message)) => StartOutcome::Failed { code, message },
        None => StartOutcome::Failed {
            code: 1,
            message: format!("berth-shim exited without a report (see {})", paths.shim_log().display()),
        },
    };
    outcome.report()
}

/// The intermediate process: a new session, then the daemon, then exit so
/// the daemon is re-parented away from berthd.
fn detach(config: &StartConfig, paths: &ContainerPaths, report: OwnedFd) -> ! {
    let _ = nix::unistd::setsid();
    // SAFETY: still single-threaded.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => daemon(config, paths, report),
        Ok(ForkResult::Parent { .. }) => init::exit_now(0),
        Err(e) => {
            send_report(&report, &Report::failed(&ShimError::sys("fork", e)));
            init::exit_now(1)
        }
    }
}

fn daemon(config: &StartConfig, paths: &ContainerPaths, report: OwnedFd) -> ! {
    redirect_stdio(paths);
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    let _ = nix::unistd::chdir("/");
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        diag!("set child subreaper: {e}");
    }
    diag!("starting container {}", config.id);
    match start(paths) {
        Ok(running) => {
            let pid = running.pid;
            send_report(&report, &Report::Started(pid.as_raw()));
            drop(report);
            diag!("container {} running as pid {pid}", config.id.short());
            // The spec and the set-up code's heap are no longer needed: give
            // the pages back, this process lives as long as the container.
            // SAFETY: malloc_trim only releases free heap memory.
            unsafe { libc::malloc_trim(0) };
            std::process::exit(service::serve(running, paths))
        }
        Err(e) => {
            diag!("start failed: {e}");
            if !matches!(e, ShimError::AlreadyRunning { .. }) {
                remove_state_files(paths);
            }
            send_report(&report, &Report::failed(&e));
            std::process::exit(e.exit_code())
        }
    }
}

/// Creates the container: on success its init has exec'd, `shim.sock` is
/// bound and `shim.pid` written; on failure nothing is left running.
fn start(paths: &ContainerPaths) -> Result<Running, ShimError> {
    // A live shim answers on its socket: never start a second container
    // over it (and never take its socket away).
    let live = berth_contract::SocketPath::new(&paths.shim_socket()).and_then(|sp| UnixStream::connect(sp.path()));
    if live.is_ok() {
        return Err(ShimError::AlreadyRunning { socket: paths.shim_socket() });
    }
    // The shim is exit.json's only writer: a status left by an earlier run
    // must not be taken for this one's.
    match fs::remove_file(paths.exit_file()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ShimError::sys(format!("remove {}", paths.exit_file().display()), e)),
    }
    let _ = fs::remove_file(paths.spare_exit_file());
    ExitStatus::reserve(paths).map_err(|e| ShimError::sys(format!("reserve {}", paths.exit_reserve().display()), e))?;
    let plan = {
        let spec = spec::load(paths)?;
        spec::plan(&spec, paths)?
    };
    let log = LogFile::open(paths, plan.log)
        .map_err(|e| ShimError::sys(format!("open {}", paths.log_file().display()), e))?;
    let listener = bind(paths)?;
    let (stdio, io) = crate::exec::process_stdio(plan.stdio.terminal, plan.stdio.open_stdin)?;
    let pid = init::spawn(&plan, &stdio)?;
    // Only the container holds its ends now: EOF once it is gone.
    drop(stdio);
    let io = match io.finish() {
        Ok(io) => io,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            return Err(e);
        }
    };
    let interactive = plan.stdio.terminal.is_some() || plan.stdio.open_stdin;
    let running = Running { pid, io, interactive, listener, log, cgroup_join: plan.cgroup_join, process: plan.process };
    // In the state dir: gone with the host's tmpfs at boot, so no fsync.
    if let Err(e) = atomic_replace(&paths.shim_pid(), format!("{}\n", std::process::id()).as_bytes()) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(ShimError::sys(format!("write {}", paths.shim_pid().display()), e));
    }
    Ok(running)
}

/// Binds `shim.sock` (mode 0600: only root may talk to the shim). A stale
/// socket from a dead shim is replaced.
fn bind(paths: &ContainerPaths) -> Result<UnixListener, ShimError> {
    let path = paths.shim_socket();
    let err = |e| ShimError::sys(format!("bind {}", path.display()), e);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = berth_contract::SocketPath::new(&path).and_then(|sp| UnixListener::bind(sp.path())).map_err(err)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

/// Removes `shim.sock` and `shim.pid`: once they are gone berthd knows to
/// read `exit.json` instead.
pub(crate) fn remove_state_files(paths: &ContainerPaths) {
    for path in [paths.shim_socket(), paths.shim_pid()] {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => diag!("remove {}: {e}", path.display()),
        }
    }
}

/// stdin and stdout to /dev/null, stderr to `shim.log` (so diagnostics and
/// a panic message land there): the foreground's pipes are let go.
fn redirect_stdio(paths: &ContainerPaths) {
    let null = OpenOptions::new().read(true).write(true).open("/dev/null");
    let log = OpenOptions::new().create(true).append(true).mode(0o640).open(paths.shim_log());
    if let Ok(null) = &null {
        let _ = nix::unistd::dup2_stdin(null);
        let _ = nix::unistd::dup2_stdout(null);
    }
    match (&log, &null) {
        (Ok(log), _) => {
            let _ = nix::unistd::dup2_stderr(log);
        }
        (Err(_), Ok(null)) => {
            let _ = nix::unistd::dup2_stderr(null);
        }
        _ => {}
    }
}

/// The daemon's one message to the foreground.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Report {
    /// The init's host pid.
    Started(i32),
    /// Exit code and the one line to print.
    Failed(i32, String),
}

impl Report {
    fn failed(e: &ShimError) -> Self {
        Self::Failed(e.exit_code(), e.to_string().replace('\n', " "))
    }

    fn encode(&self) -> String {
        match self {
            Self::Started(pid) => format!("ok {pid}\n"),
            Self::Failed(code, message) => format!("err {code} {message}\n"),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        let line = text.strip_suffix('\n')?;
        if let Some(pid) = line.strip_prefix("ok ") {
            return pid.parse().ok().map(Self::Started);
        }
        let (code, message) = line.strip_prefix("err ")?.split_once(' ')?;
        Some(Self::Failed(code.parse().ok()?, message.to_owned()))
    }
}

fn send_report(fd: &OwnedFd, report: &Report) {
    let text = report.encode();
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        match nix::unistd::write(fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trip() {
        for r in [
            Report::Started(4242),
            Report::Failed(127, "exec: \"x\": executable file not found in $PATH".into()),
            Report::Failed(1, "".into()),
        ] {
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
        assert_eq!(Report::decode(""), None);
        assert_eq!(Report::decode("ok 12"), None);
        assert_eq!(Report::decode("err x y\n"), None);
    }
}
