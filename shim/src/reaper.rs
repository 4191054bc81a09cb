//! Children and signals. The shim is a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`, set in [`crate::daemon`]): besides the
//! container's init, processes re-parented to it (a container without its
//! own pid namespace) are reaped here too, so no zombie piles up.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use crate::diag;
use berth_contract::{now_nanos, ExitStatus};

/// How the init ended, in `exit.json` terms: its code, or 128 + the signal
/// that killed it (as a shell reports it).
pub fn exit_status(ws: WaitStatus) -> Option<ExitStatus> {
    let (code, signal) = match ws {
        WaitStatus::Exited(_, code) => (code, None),
        WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
        _ => return None,
    };
    Some(ExitStatus { code, signal, finished_at: now_nanos(), oom_killed: false, log_dropped: 0 })
}

/// Children other than the init whose exit someone waits for (exec'd
/// processes): pid → where its status goes.
#[derive(Debug, Default)]
pub struct Children {
    waiting: RefCell<HashMap<i32, oneshot::Sender<ExitStatus>>>,
}

impl Children {
    /// Registers `pid`; call it before the next reap can run (the shim is
    /// single-threaded: before the next `.await`).
    pub fn register(&self, pid: Pid) -> oneshot::Receiver<ExitStatus> {
        let (tx, rx) = oneshot::channel();
        self.waiting.borrow_mut().insert(pid.as_raw(), tx);
        rx
    }

    /// Drops the registrations whose receiver is gone.
    pub fn forget_unwaited(&self) {
        self.waiting.borrow_mut().retain(|_, tx| !tx.is_closed());
    }

    fn exited(&self, ws: WaitStatus) {
        let Some(pid) = ws.pid() else { return };
        match (self.waiting.borrow_mut().remove(&pid.as_raw()), exit_status(ws)) {
            (Some(tx), Some(status)) => {
                let _ = tx.send(status);
            }
            _ => diag!("reaped {ws:?}"),
        }
    }
}

/// Reaps every child that has exited; returns the init's status once it
/// is among them.
fn reap(init: Pid, children: &Children) -> Result<Option<ExitStatus>, Errno> {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(ws) if ws.pid() == Some(init) => {
                if let Some(status) = exit_status(ws) {
                    return Ok(Some(status));
                }
            }
            Ok(ws) => children.exited(ws),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// After the init's exit: keeps reaping the other children (exec'd
/// processes the end of the pid namespace killed) for as long as the shim
/// runs.
pub async fn reap_rest(children: &Children) {
    let mut sigchld = signal(SignalKind::child()).ok();
    loop {
        // No init any more: a pid that never matches.
        if let Err(e) = reap(Pid::from_raw(0), children) {
            if e == Errno::ECHILD {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            diag!("waitpid: {e}");
        }
        match &mut sigchld {
            Some(s) => {
                s.recv().await;
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Waits for the init to exit, reaping other children on the way.
pub async fn wait_for(init: Pid, children: &Children) -> ExitStatus {
    // Registered before the first reap, so no SIGCHLD falls in between.
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(s) => Some(s),
        Err(e) => {
            diag!("cannot watch SIGCHLD, polling instead: {e}");
            None
        }
    };
    loop {
        match reap(init, children) {
            Ok(Some(status)) => return status,
            Ok(None) => {}
            Err(e) => {
                // ECHILD: someone else reaped it. Nothing more can be known.
                diag!("waitpid: {e}");
                return ExitStatus {
                    code: 255,
                    signal: None,
                    finished_at: now_nanos(),
                    oom_killed: false,
                    log_dropped: 0,
                };
            }
        }
        match &mut sigchld {
            Some(s) => {
                s.recv().await;
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// kill(2) with any signal number, real-time ones included.
pub fn send_signal(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The host pids of the container's processes other than its init: the
/// members of its pid namespace when it has its own, else of its cgroups
/// (the files it joined: `tasks` or `cgroup.procs`), else none known.
pub fn container_pids(init: Pid, cgroup_files: &[PathBuf]) -> Vec<i32> {
    let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let init_ns = ns(&init.to_string());
    let mut pids = Vec::new();
    if init_ns.is_some() && init_ns != ns("self") {
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if pid != init.as_raw() && ns(&pid.to_string()) == init_ns {
                pids.push(pid);
            }
        }
    } else {
        for procs in cgroup_files {
            let text = fs::read_to_string(procs).unwrap_or_default();
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()).filter(|p| *p != init.as_raw()));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Without a runtime (it could not be built): blocks until the init exits.
pub fn wait_blocking(init: Pid) -> ExitStatus {
    loop {
        match waitpid(init, None) {
            Ok(ws) => {
                if let Some(status) = exit_status(ws) {
                    return status;
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => {
                diag!("waitpid: {e}");
                return ExitStatus {
                    code: 255,
                    signal: None,
                    finished_at: now_nanos(),
                    oom_killed: false,
                    log_dropped: 0,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn codes_as_a_shell_reports_them() {
        let p = Pid::from_raw(1);
        let s = exit_status(WaitStatus::Exited(p, 3)).unwrap();
        assert_eq!((s.code, s.signal, s.oom_killed), (3, None, false));
        let s = exit_status(WaitStatus::Signaled(p, Signal::SIGKILL, false)).unwrap();
        assert_eq!((s.code, s.signal), (137, Some(9)));
        assert!(exit_status(WaitStatus::StillAlive).is_none());
    }
}
