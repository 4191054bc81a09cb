//! Docker's default seccomp profile, as berthd writes it into
//! `linux.seccomp`, and its compilation to a BPF program with libseccomp,
//! which berthd does once per profile (it takes milliseconds: hundreds of
//! rules, three architectures) and writes beside `config.json` as
//! `seccomp.bpf`.
//!
//! The profile is an allow-list: any system call not named fails with
//! `EPERM`. What it leaves out, with Docker, is what reaches outside a
//! container or the kernel's shared state: namespaces (`unshare`, `setns`,
//! `clone` with namespace flags), mounts, modules, keyrings, `bpf`,
//! `perf_event_open`, `userfaultfd`, `io_uring`, the clock, swap, reboot,
//! `kexec`, `acct`, handle-based opens. `clone3` answers `ENOSYS`, so a C
//! library falls back to `clone`, whose flags the filter can see.
//! `personality` takes only the few values programs use.
use std::io::{Read, Seek};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use super::{Program, SeccompError};

/// System calls the default profile allows outright. Names a given
/// architecture lacks are skipped when the filter is built.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "chroot",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kcmp",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // Architecture-specific.
    "arch_prctl",
    "modify_ldt",
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
    "riscv_flush_icache",
];

/// The `personality(2)` values allowed: Linux, `UNAME26`, `PER_LINUX32`,
/// both, and the query.
const PERSONALITIES: [u64; 5] = [0x0, 0x0002_0000, 0x0008, 0x0002_0008, 0xffff_ffff];

/// `clone` flags that make namespaces: a `clone` with any of them fails.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The socket family refused (`AF_VSOCK`: the host's hypervisor sockets).
const AF_VSOCK: u64 = 40;

/// Docker's default profile (for Docker's default capabilities), in the OCI
/// runtime spec's terms, for `linux.seccomp`.
pub fn default_profile() -> LinuxSeccomp {
    let architectures: &[&str] = match std::env::consts::ARCH {
        "x86_64" | "x86" => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" | "arm" => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        _ => &[],
    };
    let arg = |index: u32, value: u64, op: &str, two: Option<u64>| {
        let mut a = serde_json::json!({ "index": index, "value": value, "op": op });
        if let Some(two) = two {
            a["valueTwo"] = two.into();
        }
        a
    };
    let mut syscalls = vec![serde_json::json!({ "names": ALLOWED, "action": "SCMP_ACT_ALLOW" })];
    for p in PERSONALITIES {
        syscalls.push(serde_json::json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [arg(0, p, "SCMP_CMP_EQ", None)],
        }));
    }
    // The spec's MASKED_EQ: `value` is the mask, `valueTwo` what the
    // masked argument must equal.
    syscalls.push(serde_json::json!({
        "names": ["clone"], "action": "SCMP_ACT_ALLOW",
        "args": [arg(0, NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ", Some(0))],
    }));
    syscalls.push(serde_json::json!({
        "names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [arg(0, AF_VSOCK, "SCMP_CMP_NE", None)],
    }));
    syscalls.push(serde_json::json!({
        "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS,
    }));
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    // The JSON above is the spec's own schema; it always parses.
    serde_json::from_value(profile).expect("the default seccomp profile is a valid LinuxSeccomp")
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, default_errno: u32) -> Result<ScmpAction, SeccompError> {
    let errno = i32::try_from(errno.unwrap_or(default_errno)).map_err(|_| SeccompError("errnoRet too large".into()))?;
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(u16::try_from(errno).unwrap_or(0)),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        other => return Err(SeccompError(format!("action {other:?} is not supported"))),
    })
}

fn arch(a: Arch) -> Option<ScmpArch> {
    Some(match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        _ => return None,
    })
}

fn compare(op: LinuxSeccompOperator, value: u64, two: Option<u64>) -> (ScmpCompareOp, u64) {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // The spec's value is the mask, valueTwo what the masked argument
        // must equal.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), two.unwrap_or(0)),
    }
}

/// Compiles `linux.seccomp` to a BPF program for this machine's
/// architectures. System calls unknown here are skipped, as other runtimes
/// do (a profile names calls of many architectures and kernels).
pub fn compile(s: &LinuxSeccomp) -> Result<Program, SeccompError> {
    let err = |what: &str, e: libseccomp::error::SeccompError| SeccompError(format!("{what}: {e}"));
    let default_errno = s.default_errno_ret().unwrap_or(libc::EPERM as u32);
    let mut ctx =
        ScmpFilterContext::new(action(s.default_action(), None, default_errno)?).map_err(|e| err("new filter", e))?;
    // The init sets no_new_privs itself when the spec asks; the filter
    // must not force it.
    ctx.set_ctl_nnp(false).map_err(|e| err("no_new_privs attribute", e))?;
    // A binary tree of the rules, not a list: fewer instructions run per
    // system call. Older libseccomp lacks it; the list works too.
    let _ = ctx.set_ctl_optimize(2);
    for a in s.architectures().iter().flatten() {
        let Some(a) = arch(*a) else { continue };
        match ctx.add_arch(a) {
            Ok(_) => {}
            // The native one is there from the start.
            Err(e) if e.errno() == Some(libseccomp::error::SeccompErrno::EEXIST) => {}
            Err(e) => return Err(err("add architecture", e)),
        }
    }
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret(), default_errno)?;
        let mut cmps = Vec::new();
        for a in rule.args().iter().flatten() {
            let index = u32::try_from(a.index()).map_err(|_| SeccompError("arg index too large".into()))?;
            let (op, datum) = compare(a.op(), a.value(), a.value_two());
            cmps.push(ScmpArgCompare::new(index, op, datum));
        }
        for name in rule.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else { continue };
            match ctx.add_rule_conditional(act, nr, &cmps) {
                Ok(_) => {}
                // A rule with the default action is no rule.
                Err(e) if e.errno() == Some(libseccomp::error::SeccompErrno::EACCES) => {}
                Err(e) => return Err(err(&format!("rule for {name}"), e)),
            }
        }
    }
    // libseccomp 2.5 writes the program only to a descriptor.
    let memfd = nix::sys::memfd::memfd_create("berth-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| SeccompError(format!("memfd_create: {e}")))?;
    ctx.export_bpf(&memfd).map_err(|e| err("export", e))?;
    let mut file = std::fs::File::from(memfd);
    file.rewind().map_err(|e| SeccompError(format!("read the program: {e}")))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| SeccompError(format!("read the program: {e}")))?;
    Program::from_bytes(&bytes)
}

/// [`default_profile`], compiled once per process.
pub fn default_program() -> Result<std::sync::Arc<Program>, SeccompError> {
    static PROGRAM: std::sync::OnceLock<std::sync::Arc<Program>> = std::sync::OnceLock::new();
    if let Some(p) = PROGRAM.get() {
        return Ok(p.clone());
    }
    let p = std::sync::Arc::new(compile(&default_profile())?);
    Ok(PROGRAM.get_or_init(|| p).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_compiles_and_keeps_its_rules() {
        let p = default_profile();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(libc::EPERM as u32));
        let names: Vec<&str> = p.syscalls().iter().flatten().flat_map(|r| r.names()).map(String::as_str).collect();
        for blocked in ["mount", "unshare", "setns", "bpf", "keyctl", "io_uring_setup", "reboot", "kexec_load"] {
            assert!(!names.contains(&blocked), "{blocked} allowed");
        }
        let clone = p.syscalls().iter().flatten().find(|r| *r.names() == ["clone"]).unwrap();
        let arg = clone.args().as_ref().unwrap()[0];
        assert_eq!((arg.value(), arg.value_two()), (NAMESPACE_FLAGS, Some(0)));
        let program = compile(&p).unwrap();
        assert!(program.len() > 100, "{} instructions", program.len());
        assert_eq!(Program::from_bytes(&program.to_bytes()).unwrap(), program);
        assert!(Program::from_bytes(&[0; 7]).is_err());
    }
}
