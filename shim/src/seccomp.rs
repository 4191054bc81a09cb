//! Seccomp in the shim: the load, by the init and by each exec'd process,
//! as the last step before it gives up root (so the filter is in place
//! before the user's code runs, and the load still has the privilege it
//! needs when no-new-privileges is off). The profile, Docker's, and its
//! compiler are the contract's (`berth_contract::seccomp`): berthd
//! compiles once and writes `seccomp.bpf` beside `config.json`; the shim
//! only reads the program and loads it (a spec with a profile and no
//! program is refused).
#![allow(unsafe_code)]

use berth_contract::seccomp::Program;

use crate::init::InitError;

/// In the init or an exec'd child: installs the filter for this process
/// and what it execs. Needs no_new_privs or CAP_SYS_ADMIN.
pub fn load(p: &Program) -> Result<(), InitError> {
    let len = u16::try_from(p.len()).map_err(|_| InitError::new(1, "seccomp program too long"))?;
    let prog = libc::sock_fprog { len, filter: p.instructions().as_ptr().cast_mut() };
    // SAFETY: PR_SET_SECCOMP with SECCOMP_MODE_FILTER reads `prog` and the
    // `len` instructions it points at, all alive for the call; the kernel
    // copies them.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog as libc::c_ulong,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(InitError::sys("load the seccomp filter", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use berth_contract::seccomp::{compile, default_profile};

    use super::*;

    #[test]
    fn a_filter_loaded_in_a_child_refuses_what_it_does_not_allow() {
        let program = compile(&default_profile()).unwrap();
        // SAFETY: the test child only makes system calls and _exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = (|| {
                    nix::sys::prctl::set_no_new_privs().ok()?;
                    load(&program).ok()?;
                    // Allowed: getpid. Refused with EPERM: unshare. Refused
                    // with ENOSYS: clone3.
                    let _ = nix::unistd::getpid();
                    let unshare = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS);
                    if unshare != Err(nix::errno::Errno::EPERM) {
                        return Some(2);
                    }
                    // SAFETY: clone3 with a null argument fails before it
                    // looks at it when the filter refuses it.
                    let r = unsafe { libc::syscall(libc::SYS_clone3, 0usize, 0usize) };
                    if r != -1 || nix::errno::Errno::last() != nix::errno::Errno::ENOSYS {
                        return Some(3);
                    }
                    Some(0)
                })()
                .unwrap_or(1);
                // SAFETY: _exit in a forked child.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
