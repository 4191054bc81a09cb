//! Which device nodes a container may use: Docker's default policy, deny
//! everything, then allow the standard nodes (`null`, `zero`, `full`,
//! `random`, `urandom`, `tty`, `console`, `ptmx`, the pts slaves) and
//! `mknod` of any node without using it. Without it root in a container can
//! `mknod` the host's disk (or a loop device) and read it, and an image can
//! carry a 0666 device node for an unprivileged user (the kernel checks the
//! devices cgroup on open, whoever made the node).
//!
//! The same rules go three ways: into `linux.resources.devices` of the spec
//! (for any OCI tool that reads it), into cgroup v1's `devices.deny` and
//! `devices.allow`, and on cgroup v2, which has no devices files, into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the container's cgroup
//! (the kernel's `Documentation/admin-guide/cgroup-v2.rst`, "Device
//! controller"), as runc and crun do. The program is attached once before
//! the init joins; the attachment holds the program, so no descriptor stays
//! open in berthd.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Block or character device (`b`, `c`), or both (`a`, for rules of
/// options to come, such as `--device-cgroup-rule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Kind {
    All,
    Block,
    Char,
}

/// One allow rule: `c 1:3 rwm`; `None` is the wildcard `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Bits of [`READ`], [`WRITE`], [`MKNOD`].
    pub access: u32,
}

pub const MKNOD: u32 = 1;
pub const READ: u32 = 2;
pub const WRITE: u32 = 4;
const RWM: u32 = READ | WRITE | MKNOD;

const fn node(major: u32, minor: u32) -> Rule {
    Rule { kind: Kind::Char, major: Some(major), minor: Some(minor), access: RWM }
}

/// Everything a container may use; the rest is denied.
pub const DEFAULT_ALLOW: [Rule; 11] = [
    // mknod of anything (the node is useless without the rules below).
    Rule { kind: Kind::Char, major: None, minor: None, access: MKNOD },
    Rule { kind: Kind::Block, major: None, minor: None, access: MKNOD },
    node(1, 3),                                                            // null
    node(1, 5),                                                            // zero
    node(1, 7),                                                            // full
    node(1, 8),                                                            // random
    node(1, 9),                                                            // urandom
    node(5, 0),                                                            // tty
    node(5, 1),                                                            // console
    node(5, 2),                                                            // ptmx
    Rule { kind: Kind::Char, major: Some(136), minor: None, access: RWM }, // pts/*
];

impl Rule {
    /// The v1 `devices.allow` line: `c 1:3 rwm`, `b *:* m`.
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            Kind::All => 'a',
            Kind::Block => 'b',
            Kind::Char => 'c',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }

    /// The spec's form of the rule.
    pub fn to_spec(self) -> oci_spec::runtime::LinuxDeviceCgroup {
        let mut d = oci_spec::runtime::LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(match self.kind {
            Kind::All => oci_spec::runtime::LinuxDeviceType::A,
            Kind::Block => oci_spec::runtime::LinuxDeviceType::B,
            Kind::Char => oci_spec::runtime::LinuxDeviceType::C,
        }));
        d.set_major(self.major.map(i64::from));
        d.set_minor(self.minor.map(i64::from));
        let line = self.v1_line();
        d.set_access(line.rsplit(' ').next().map(str::to_owned));
        d
    }
}

/// The spec's `linux.resources.devices`: deny all, then the allow list.
pub fn spec_rules() -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    let mut deny = oci_spec::runtime::LinuxDeviceCgroup::default();
    deny.set_allow(false);
    deny.set_access(Some("rwm".to_owned()));
    std::iter::once(deny).chain(DEFAULT_ALLOW.iter().map(|r| r.to_spec())).collect()
}

/// Applies the policy to a v1 devices cgroup directory: `a` into
/// `devices.deny` (the cgroup is new, so it has no children to refuse it),
/// then each rule into `devices.allow`, one `write(2)` per rule (the
/// kernel reads one rule per write; the offset means nothing to it, so the
/// file is opened once, for appending, which a fixture tree records).
pub fn apply_v1(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::write(dir.join("devices.deny"), "a")?;
    let mut allow = std::fs::OpenOptions::new().append(true).create(true).open(dir.join("devices.allow"))?;
    for rule in &DEFAULT_ALLOW {
        // The kernel strips the newline.
        allow.write_all(format!("{}\n", rule.v1_line()).as_bytes())?;
    }
    Ok(())
}

// ---------------------------------------------------------------- cgroup v2

/// One eBPF instruction (`struct bpf_insn` of `linux/bpf.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: dst | (src << 4), off, imm }
}

// Opcodes (`linux/bpf_common.h`, `linux/bpf.h`).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;

// `struct bpf_cgroup_dev_ctx`: access_type (access << 16 | type), major,
// minor, each u32. Types: BPF_DEVCG_DEV_BLOCK 1, BPF_DEVCG_DEV_CHAR 2.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// The device program for `rules`: returns 1 (allow) for the first rule a
/// request matches, else 0 (deny). Registers: r2 = access bits, r3 = type,
/// r4 = major, r5 = minor, r6 scratch.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_MOV_X, 3, 2, 0, 0),
        insn(ALU64_AND_K, 3, 0, 0, 0xffff),
        insn(ALU64_RSH_K, 2, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules {
        // Each test jumps past the end of this rule's block on a mismatch;
        // the offsets are filled in once the block's length is known.
        let mut block: Vec<Insn> = Vec::new();
        let mut skips = Vec::new();
        match rule.kind {
            Kind::All => {}
            Kind::Block => {
                skips.push(block.len());
                block.push(insn(JMP_JNE_K, 3, 0, 0, DEV_BLOCK));
            }
            Kind::Char => {
                skips.push(block.len());
                block.push(insn(JMP_JNE_K, 3, 0, 0, DEV_CHAR));
            }
        }
        if rule.access & RWM != RWM {
            // Every requested bit must be allowed: access & !allowed == 0.
            block.push(insn(ALU64_MOV_X, 6, 2, 0, 0));
            block.push(insn(ALU64_AND_K, 6, 0, 0, (!rule.access & RWM) as i32));
            skips.push(block.len());
            block.push(insn(JMP_JNE_K, 6, 0, 0, 0));
        }
        if let Some(major) = rule.major {
            skips.push(block.len());
            block.push(insn(JMP_JNE_K, 4, 0, 0, major as i32));
        }
        if let Some(minor) = rule.minor {
            skips.push(block.len());
            block.push(insn(JMP_JNE_K, 5, 0, 0, minor as i32));
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for at in skips {
            // A jump's offset counts from the instruction after it.
            block[at].off = (len - at - 1) as i16;
        }
        p.extend(block);
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Other programs (a systemd parent's) may stay attached above ours; the
/// kernel runs them all and allows only what every one allows.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, zero-padded to the size
/// the kernel accepts from any version of the header.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    rest: [u8; 80],
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    rest: [u8; 112],
}

/// Loads the device program for the default rules and attaches it to the
/// v2 cgroup directory `dir`. The verifier's log comes back in the error
/// when the kernel refuses the program.
pub fn apply_v2(dir: &Path) -> std::io::Result<()> {
    let insns = program(&DEFAULT_ALLOW);
    // Quietly first: with a log level the kernel fails a load whose log
    // fills the buffer (ENOSPC), even a verified one. The log is asked for
    // only to explain a refusal.
    let prog = match load(&insns, None) {
        Ok(fd) => fd,
        Err(err) => {
            let mut log = vec![0u8; 256 * 1024];
            let _ = load(&insns, Some(&mut log));
            let text = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned();
            let tail: String = text.trim().lines().rev().take(3).collect::<Vec<_>>().join("; ");
            return Err(std::io::Error::new(err.kind(), format!("load device program: {err}: {tail}")));
        }
    };
    let cgroup = std::fs::File::open(dir)?;
    let attach = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        rest: [0; 112],
    };
    // SAFETY: bpf(2) reads `size_of::<ProgAttachAttr>()` bytes of `attach`;
    // both descriptors are open for the call.
    let rc = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_PROG_ATTACH, &attach as *const ProgAttachAttr, size_of::<ProgAttachAttr>())
    };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        return Err(std::io::Error::new(err.kind(), format!("attach device program: {err}")));
    }
    // The attachment keeps the program; both descriptors close here.
    Ok(())
}

fn load(insns: &[Insn], log: Option<&mut [u8]>) -> std::io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let (log_level, log_size, log_buf) = match log {
        Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        kern_version: 0,
        prog_flags: 0,
        rest: [0; 80],
    };
    // SAFETY: bpf(2) reads `size_of::<ProgLoadAttr>()` bytes of `attr`,
    // whose pointers (instructions, licence, log buffer) outlive the call;
    // it writes at most `log_size` bytes into the log buffer.
    let fd =
        unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &attr as *const ProgLoadAttr, size_of::<ProgLoadAttr>()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_lines() {
        let lines: Vec<String> = DEFAULT_ALLOW.iter().map(Rule::v1_line).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 136:* rwm"
            ]
        );
    }

    /// Runs the program the way the kernel would, for the table below.
    fn eval(p: &[Insn], kind: i32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU64_MOV_X => r[dst] = r[src],
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                ALU64_AND_K => r[dst] &= i.imm as i64 as u64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                JMP_JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                JMP_EXIT => return r[0],
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn program_allows_only_the_default_nodes() {
        let p = program(&DEFAULT_ALLOW);
        let (b, c) = (DEV_BLOCK, DEV_CHAR);
        let cases = [
            (c, READ | WRITE, 1, 3, 1),    // /dev/null
            (c, READ, 1, 9, 1),            // /dev/urandom
            (c, READ | WRITE, 136, 7, 1),  // a pts slave
            (c, READ | WRITE, 5, 2, 1),    // ptmx
            (b, MKNOD, 8, 0, 1),           // mknod of a disk: allowed, useless
            (c, MKNOD, 10, 232, 1),        // mknod of /dev/kvm
            (b, READ, 8, 0, 0),            // reading the disk
            (b, READ | WRITE, 7, 0, 0),    // a loop device
            (c, READ | WRITE, 10, 232, 0), // /dev/kvm
            (c, WRITE, 1, 11, 0),          // /dev/kmsg
            (c, READ | WRITE, 4, 0, 0),    // /dev/tty0
            (c, READ | MKNOD, 10, 232, 0), // mknod does not carry read along
            (c, READ | WRITE, 1, 2, 0),    // /dev/kmem's neighbour
            (b, READ | WRITE, 136, 0, 0),  // block 136 is not a pts
        ];
        for (kind, access, major, minor, want) in cases {
            assert_eq!(eval(&p, kind, access, major, minor), want, "{kind} {access} {major}:{minor}");
        }
    }

    #[test]
    fn spec_denies_first() {
        let rules = spec_rules();
        assert!(!rules[0].allow());
        assert_eq!(rules.len(), DEFAULT_ALLOW.len() + 1);
        assert_eq!(rules[3].major(), Some(1));
        assert_eq!(rules[3].access().as_deref(), Some("rwm"));
    }

    /// On a host with a cgroup2 hierarchy (the unified mount of a hybrid
    /// host, or the whole tree), the kernel accepts the program and
    /// enforces it on a process in the cgroup.
    #[test]
    fn v2_program_is_enforced_by_the_kernel() {
        let unified = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists() && !p.join("tasks").exists());
        let Some(unified) = unified else {
            eprintln!("skipped: no cgroup2 hierarchy");
            return;
        };
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = unified.join(format!("berth-devtest-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let _rm = Cleanup(dir.clone());
        apply_v2(&dir).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let script = format!(
            "echo $$ > {procs}; \
             head -c 1 /dev/zero >/dev/null && echo zero-ok; \
             mknod {d}/loop b 7 0 && echo mknod-ok; \
             head -c 1 {d}/loop >/dev/null 2>{d}/err || echo loop-denied; \
             cat {d}/err",
            procs = dir.join("cgroup.procs").display(),
            d = scratch.path().display()
        );
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(&script).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("zero-ok"), "{text}");
        assert!(text.contains("mknod-ok"), "{text}");
        assert!(text.contains("loop-denied"), "{text}");
        assert!(text.contains("Operation not permitted"), "{text}");
    }

    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
}
