//! Which namespaces the container gets, and how.
//!
//! New pid, mount, uts, ipc and network namespaces are created by the
//! `clone(2)` that makes the init, so the init is PID 1 of its pid namespace
//! and the shim, which stays in the host's, is its parent. The cgroup
//! namespace is unshared by the init itself, *after* it has joined its
//! cgroups, so that namespace is rooted at the container's cgroup
//! (cgroup_namespaces(7)). Namespaces given by path are opened here, before
//! the fork, and joined with `setns(2)` by the init; a pid namespace given by
//! path is entered by the shim around the clone (`setns` of a pid namespace
//! only affects later children, pid_namespaces(7)).
//!
//! A user namespace is not supported yet: berth runs rootful containers.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::CloneFlags;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use crate::error::ShimError;
use crate::init::InitError;
use crate::oci::{Namespace, NamespaceType};

/// The namespaces of one container, ready for the clone.
#[derive(Debug)]
pub struct NsPlan {
    /// Created by the clone: `CLONE_NEWPID|NEWNS|NEWUTS|NEWIPC|NEWNET` as
    /// listed without a path.
    pub clone_flags: CloneFlags,
    /// Unshared by the init once it is in its cgroups.
    pub unshare_cgroup: bool,
    /// Joined by the init, mount namespace last.
    pub join: Vec<(CloneFlags, OwnedFd)>,
    /// Entered by the shim just for the clone.
    pub join_pid: Option<OwnedFd>,
}

impl NsPlan {
    /// Reads `linux.namespaces`. A private mount namespace is required: the
    /// rootfs must never be mounted on the host.
    pub fn new(list: &[Namespace]) -> Result<Self, ShimError> {
        let mut plan =
            Self { clone_flags: CloneFlags::empty(), unshare_cgroup: false, join: Vec::new(), join_pid: None };
        let mut has_mount = false;
        for ns in list {
            let flag = match ns.typ {
                NamespaceType::Pid => CloneFlags::CLONE_NEWPID,
                NamespaceType::Mount => CloneFlags::CLONE_NEWNS,
                NamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
                NamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
                NamespaceType::Network => CloneFlags::CLONE_NEWNET,
                NamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
                other => return Err(ShimError::Spec(format!("{other:?} namespaces are not supported"))),
            };
            has_mount |= flag == CloneFlags::CLONE_NEWNS;
            match &ns.path {
                Some(path) => {
                    let fd = File::open(path)
                        .map_err(|e| ShimError::sys(format!("open namespace {}", path.display()), e))?;
                    if flag == CloneFlags::CLONE_NEWPID {
                        plan.join_pid = Some(fd.into());
                    } else {
                        plan.join.push((flag, fd.into()));
                    }
                }
                None if flag == CloneFlags::CLONE_NEWCGROUP => plan.unshare_cgroup = true,
                None => plan.clone_flags |= flag,
            }
        }
        if !has_mount {
            return Err(ShimError::Spec("a mount namespace is required (the rootfs is mounted in it)".into()));
        }
        // The mount namespace last: joining it changes what paths mean.
        plan.join.sort_by_key(|(flag, _)| *flag == CloneFlags::CLONE_NEWNS);
        Ok(plan)
    }

    /// Whether the container has a UTS namespace of its own.
    pub fn new_uts(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUTS)
    }

    /// Whether the container has a network namespace of its own (whose
    /// loopback the init brings up).
    pub fn new_net(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWNET)
    }
}

/// In the init: joins the namespaces given by path.
pub fn join(plan: &NsPlan) -> Result<(), InitError> {
    for (flag, fd) in &plan.join {
        nix::sched::setns(fd, *flag).map_err(|e| InitError::sys("setns", e))?;
    }
    Ok(())
}

/// In the init: unshares the cgroup namespace if asked (after the cgroups
/// are joined).
pub fn unshare_cgroup(plan: &NsPlan) -> Result<(), InitError> {
    if plan.unshare_cgroup {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| InitError::sys("unshare cgroup namespace", e))?;
    }
    Ok(())
}

/// In the init, in a new network namespace: sets `IFF_UP` on `lo` (a new
/// namespace's loopback starts down, network_namespaces(7)).
pub fn loopback_up() -> Result<(), InitError> {
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| InitError::sys("socket", e))?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name and writes the
    // flags into `ifr`, which lives for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } < 0 {
        return Err(InitError::sys("get flags of lo", std::io::Error::last_os_error()));
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the name and flags from `ifr`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } < 0 {
        return Err(InitError::sys("bring lo up", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(typ: NamespaceType) -> Namespace {
        Namespace { typ, path: None }
    }

    #[test]
    fn docker_set_is_cloned_and_cgroup_unshared() {
        let list: Vec<_> = [
            NamespaceType::Mount,
            NamespaceType::Pid,
            NamespaceType::Uts,
            NamespaceType::Ipc,
            NamespaceType::Network,
            NamespaceType::Cgroup,
        ]
        .into_iter()
        .map(ns)
        .collect();
        let plan = NsPlan::new(&list).unwrap();
        assert_eq!(
            plan.clone_flags,
            CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWNET
        );
        assert!(plan.unshare_cgroup && plan.new_uts() && plan.new_net());
        assert!(plan.join.is_empty() && plan.join_pid.is_none());
    }

    #[test]
    fn refusals() {
        let err = NsPlan::new(&[ns(NamespaceType::Pid)]).unwrap_err();
        assert!(err.to_string().starts_with("a mount namespace is required"));
        let err = NsPlan::new(&[ns(NamespaceType::Mount), ns(NamespaceType::User)]).unwrap_err();
        assert_eq!(err.to_string(), "User namespaces are not supported");
    }
}
