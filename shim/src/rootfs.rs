//! The container's filesystem: the overlay (or bind) rootfs, the spec's
//! mounts, `/dev`, `pivot_root`, masked and read-only paths.
//!
//! [`RootfsPlan::new`] runs in the shim and resolves everything it can on
//! the host; [`enter`] and [`protect`] run in the init, in its new mount
//! namespace, so the overlay and every other mount exist only there and the
//! kernel drops them when the container's last process is gone: nothing can
//! leak on the host.
//!
//! Paths inside the rootfs come from the image and are untrusted: mount
//! points are created and opened with `openat2(RESOLVE_IN_ROOT)`, which
//! never follows a symlink out of the rootfs, and mounts go onto the opened
//! directory through its `/proc/self/fd/N` magic link, as runc does, so the
//! path is not resolved again.
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sys::statvfs::FsFlags;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::ShimError;
use crate::init::InitError;
use crate::oci::{DeviceType, Mount, Spec};
use berth_contract::annotations as key;
use berth_contract::ContainerPaths;

/// `CGROUP2_SUPER_MAGIC` from `linux/magic.h`.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// The longest `mount(2)` data string (one page, NUL included).
const MAX_MOUNT_DATA: usize = 4095;

/// Resolution inside the rootfs: `..` and absolute symlinks stop at its
/// root, and `/proc` magic links are refused (openat2(2)).
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// The filesystem part of the plan, resolved on the host before the fork.
#[derive(Debug, Clone)]
pub struct RootfsPlan {
    /// The rootfs mount point, a host path (`<bundle>/rootfs`).
    pub path: PathBuf,
    /// overlayfs options; `None` bind-mounts `path` onto itself.
    pub overlay: Option<String>,
    pub readonly: bool,
    /// Applied recursively to `/` first (`rslave` unless the spec says).
    pub propagation: MsFlags,
    pub mounts: Vec<MountPlan>,
    /// `/dev` is a tmpfs of the spec: the init fills it.
    pub dev_tmpfs: bool,
    pub devices: Vec<DevicePlan>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
}

/// One entry of `mounts`, in `mount(2)` terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// The destination as the spec gives it, for messages.
    pub destination: PathBuf,
    /// The destination relative to the rootfs, `..` resolved lexically.
    pub rel: PathBuf,
    pub source: Option<PathBuf>,
    /// `None` for a bind mount.
    pub fstype: Option<String>,
    pub flags: MsFlags,
    pub data: Option<String>,
    /// A bind mount's other flags need a second, remounting call.
    pub remount: Option<MsFlags>,
    /// `private`, `rslave`, ... applied after the mount.
    pub propagation: Vec<MsFlags>,
    /// The mount point is a file (a bind mount of a non-directory).
    pub file: bool,
}

/// One entry of `linux.devices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    pub rel: PathBuf,
    pub kind: FileType,
    pub mode: u32,
    pub dev: u64,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Mount options split into flags, propagation and the data string.
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self { flags: MsFlags::empty(), propagation: Vec::new(), data: Vec::new(), bind: false, recursive: false }
    }
}

impl RootfsPlan {
    /// Reads `root`, `mounts`, `linux.devices`, the masked and read-only
    /// paths, and berth's rootfs annotations.
    pub fn new(spec: &Spec, paths: &ContainerPaths, annotations: &HashMap<String, String>) -> Result<Self, ShimError> {
        let root = spec.root.as_ref().ok_or_else(|| ShimError::Spec("config.json has no root".into()))?;
        let path = paths.dir().join(&root.path);
        let overlay = match annotations.get(key::LOWERDIR).filter(|l| !l.is_empty()) {
            Some(lower) => {
                let upper = annotations.get(key::UPPERDIR).map_or_else(|| paths.upper(), PathBuf::from);
                let work = annotations.get(key::WORKDIR).map_or_else(|| paths.work(), PathBuf::from);
                let data = format!("lowerdir={lower},upperdir={},workdir={}", upper.display(), work.display());
                if data.len() > MAX_MOUNT_DATA {
                    return Err(ShimError::Spec(format!(
                        "overlay options are {} bytes, over the kernel's {MAX_MOUNT_DATA}: too many layers",
                        data.len()
                    )));
                }
                Some(data)
            }
            None => None,
        };
        let linux = spec.linux.as_ref();
        let propagation = match linux.and_then(|l| l.rootfs_propagation.as_deref()) {
            None | Some("") | Some("slave") | Some("rslave") => MsFlags::MS_SLAVE,
            Some("private") | Some("rprivate") => MsFlags::MS_PRIVATE,
            Some("shared") | Some("rshared") => MsFlags::MS_SHARED,
            Some("unbindable") | Some("runbindable") => MsFlags::MS_UNBINDABLE,
            Some(other) => return Err(ShimError::Spec(format!("unknown rootfsPropagation {other:?}"))),
        };
        let cgroup2 =
            rustix::fs::statfs("/sys/fs/cgroup").map(|s| s.f_type as u64 == CGROUP2_SUPER_MAGIC).unwrap_or(false);
        let mounts =
            spec.mounts.iter().map(|m| MountPlan::new(m, paths.dir(), cgroup2)).collect::<Result<Vec<_>, _>>()?;
        let dev_tmpfs = mounts.iter().any(|m| m.rel == Path::new("dev") && m.fstype.as_deref() == Some("tmpfs"));
        let mut devices = Vec::new();
        for d in linux.map(|l| &l.devices[..]).unwrap_or_default() {
            let kind = match d.typ {
                DeviceType::Char => FileType::CharacterDevice,
                DeviceType::Block => FileType::BlockDevice,
                DeviceType::Fifo => FileType::Fifo,
                DeviceType::All => {
                    return Err(ShimError::Spec(format!(
                        "device {}: type a is for cgroup rules only",
                        d.path.display()
                    )))
                }
            };
            devices.push(DevicePlan {
                rel: absolute_rel(&d.path, "device")?,
                kind,
                mode: d.file_mode.unwrap_or(0o666) & 0o7777,
                dev: rustix::fs::makedev(d.major as u32, d.minor as u32),
                uid: d.uid,
                gid: d.gid,
            });
        }
        let list = |v: Option<&Vec<String>>| -> Vec<PathBuf> {
            v.into_iter().flatten().filter(|p| p.starts_with('/')).map(PathBuf::from).collect()
        };
        Ok(Self {
            path,
            overlay,
            readonly: root.readonly,
            propagation,
            mounts,
            dev_tmpfs,
            devices,
            masked_paths: list(linux.map(|l| &l.masked_paths)),
            readonly_paths: list(linux.map(|l| &l.readonly_paths)),
        })
    }
}

impl MountPlan {
    /// Converts one OCI mount. Bind sources are host paths (relative ones
    /// are relative to the bundle) and must exist.
    pub fn new(m: &Mount, bundle: &Path, cgroup2_host: bool) -> Result<Self, ShimError> {
        let destination = m.destination.clone();
        let rel = absolute_rel(&destination, "mount destination")?;
        let opts = parse_options(&m.options);
        let typ = m.typ.as_deref().unwrap_or("");
        let mut plan = Self {
            destination,
            rel,
            source: m.source.clone(),
            fstype: Some(typ.to_owned()),
            flags: opts.flags,
            data: Some(opts.data.join(",")).filter(|d| !d.is_empty()),
            remount: None,
            propagation: opts.propagation,
            file: false,
        };
        if opts.bind || typ == "bind" {
            let source = bundle.join(m.source.as_ref().ok_or_else(|| {
                ShimError::Spec(format!("bind mount on {} has no source", plan.destination.display()))
            })?);
            let meta = std::fs::metadata(&source)
                .map_err(|e| ShimError::sys(format!("bind mount source {}", source.display()), e))?;
            plan.file = !meta.is_dir();
            plan.source = Some(source);
            plan.fstype = None;
            plan.data = None;
            let others = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
            plan.flags = MsFlags::MS_BIND;
            if opts.recursive {
                plan.flags |= MsFlags::MS_REC;
            }
            // mount(2) ignores every flag but MS_REC with MS_BIND: the others
            // take a remount of the new bind mount.
            if !others.is_empty() {
                plan.remount = Some(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | others);
            }
        } else if typ == "cgroup" || typ == "cgroup2" {
            // A v1 hierarchy needs one mount per controller and would show
            // the host's tree; berth gives v1 hosts an empty read-only tmpfs.
            plan.flags |= MsFlags::MS_RDONLY;
            if cgroup2_host {
                plan.fstype = Some("cgroup2".into());
                plan.source = Some("cgroup2".into());
                plan.data = None;
            } else {
                plan.fstype = Some("tmpfs".into());
                plan.source = Some("tmpfs".into());
                plan.data = Some("mode=755".into());
            }
        } else if typ.is_empty() || typ == "none" {
            return Err(ShimError::Spec(format!("mount on {} has no type", plan.destination.display())));
        }
        Ok(plan)
    }
}

/// An absolute container path as a path relative to the rootfs, `..`
/// resolved lexically without leaving it.
fn absolute_rel(p: &Path, what: &str) -> Result<PathBuf, ShimError> {
    if !p.is_absolute() {
        return Err(ShimError::Spec(format!("{what} {} is not absolute", p.display())));
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Splits `mount -o` style options: flags (applied in order, so `ro,rw` is
/// `rw`), propagation, bind, and the rest for the filesystem's data string.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    for o in options {
        match o.as_str() {
            "bind" => out.bind = true,
            "rbind" => {
                out.bind = true;
                out.recursive = true;
            }
            "defaults" | "tmpcopyup" => {}
            o => {
                if let Some((set, flag)) = flag_option(o) {
                    if set {
                        out.flags |= flag;
                    } else {
                        out.flags -= flag;
                    }
                } else if let Some(p) = propagation_option(o) {
                    out.propagation.push(p);
                } else {
                    out.data.push(o.to_owned());
                }
            }
        }
    }
    out
}

fn flag_option(o: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match o {
        "ro" => (true, F::MS_RDONLY),
        "rw" => (false, F::MS_RDONLY),
        "nosuid" => (true, F::MS_NOSUID),
        "suid" => (false, F::MS_NOSUID),
        "nodev" => (true, F::MS_NODEV),
        "dev" => (false, F::MS_NODEV),
        "noexec" => (true, F::MS_NOEXEC),
        "exec" => (false, F::MS_NOEXEC),
        "sync" => (true, F::MS_SYNCHRONOUS),
        "async" => (false, F::MS_SYNCHRONOUS),
        "dirsync" => (true, F::MS_DIRSYNC),
        "remount" => (true, F::MS_REMOUNT),
        "mand" => (true, F::MS_MANDLOCK),
        "nomand" => (false, F::MS_MANDLOCK),
        "noatime" => (true, F::MS_NOATIME),
        "atime" => (false, F::MS_NOATIME),
        "nodiratime" => (true, F::MS_NODIRATIME),
        "diratime" => (false, F::MS_NODIRATIME),
        "relatime" => (true, F::MS_RELATIME),
        "norelatime" => (false, F::MS_RELATIME),
        "strictatime" => (true, F::MS_STRICTATIME),
        "nostrictatime" => (false, F::MS_STRICTATIME),
        "lazytime" => (true, F::MS_LAZYTIME),
        "nolazytime" => (false, F::MS_LAZYTIME),
        "silent" => (true, F::MS_SILENT),
        "loud" => (false, F::MS_SILENT),
        "nosymfollow" => (true, F::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        "symfollow" => (false, F::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        _ => return None,
    })
}

fn propagation_option(o: &str) -> Option<MsFlags> {
    use MsFlags as F;
    let (rec, kind) = match o.strip_prefix('r') {
        Some(k @ ("private" | "shared" | "slave" | "unbindable")) => (true, k),
        _ => (false, o),
    };
    let flag = match kind {
        "private" => F::MS_PRIVATE,
        "shared" => F::MS_SHARED,
        "slave" => F::MS_SLAVE,
        "unbindable" => F::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if rec { flag | F::MS_REC } else { flag })
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(source, target, fstype, flags, data)
}

/// `/proc/self/fd/N`: mounting there mounts on what the fd refers to.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// In the init: mounts the rootfs and the spec's mounts, fills `/dev`,
/// pivots into the rootfs and detaches the host's tree.
pub fn enter(plan: &RootfsPlan) -> Result<(), InitError> {
    // Nothing mounted from here on may propagate back to the host.
    mount(None, Path::new("/"), None, plan.propagation | MsFlags::MS_REC, None)
        .map_err(|e| InitError::sys("make / a slave mount", e))?;
    match &plan.overlay {
        Some(data) => mount(Some(Path::new("overlay")), &plan.path, Some("overlay"), MsFlags::empty(), Some(data))
            .map_err(|e| InitError::sys(format!("mount overlay on {}", plan.path.display()), e))?,
        // pivot_root(2) needs the new root to be a mount point.
        None => mount(Some(&plan.path), &plan.path, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
            .map_err(|e| InitError::sys(format!("bind mount {}", plan.path.display()), e))?,
    }
    let root = rustix::fs::open(&plan.path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| InitError::sys(format!("open {}", plan.path.display()), e))?;
    for m in &plan.mounts {
        mount_one(&root, m)?;
    }
    if plan.dev_tmpfs {
        populate_dev(&root)?;
    }
    for d in &plan.devices {
        make_device(&root, d)?;
    }
    pivot(&root)?;
    if plan.readonly {
        mount(None, Path::new("/"), None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY, None)
            .map_err(|e| InitError::sys("remount / read-only", e))?;
    }
    Ok(())
}

fn mount_one(root: &OwnedFd, m: &MountPlan) -> Result<(), InitError> {
    let dest = m.destination.display();
    let target =
        ensure_in_root(root, &m.rel, m.file).map_err(|e| InitError::sys(format!("create mount point {dest}"), e))?;
    let what = m.fstype.as_deref().unwrap_or("bind");
    mount(m.source.as_deref(), &fd_path(&target), m.fstype.as_deref(), m.flags, m.data.as_deref())
        .map_err(|e| InitError::sys(format!("mount {what} on {dest}"), e))?;
    drop(target);
    if m.remount.is_none() && m.propagation.is_empty() {
        return Ok(());
    }
    // Opened again: now the path leads to the new mount's root.
    let target = open_in_root(root, &m.rel).map_err(|e| InitError::sys(format!("open {dest}"), e))?;
    if let Some(flags) = m.remount {
        mount(None, &fd_path(&target), None, flags, None).map_err(|e| InitError::sys(format!("remount {dest}"), e))?;
    }
    for p in &m.propagation {
        mount(None, &fd_path(&target), None, *p, None)
            .map_err(|e| InitError::sys(format!("set propagation of {dest}"), e))?;
    }
    Ok(())
}

/// The standard nodes and links of a container's `/dev` (as runc and Docker
/// make them); existing ones are left alone.
fn populate_dev(root: &OwnedFd) -> Result<(), InitError> {
    const NODES: [(&str, u32, u32); 6] =
        [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];
    const LINKS: [(&str, &str); 6] = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ];
    let dev = open_in_root(root, Path::new("dev")).map_err(|e| InitError::sys("open /dev", e))?;
    for (name, major, minor) in NODES {
        match rustix::fs::mknodat(
            &dev,
            name,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(major, minor),
        ) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(InitError::sys(format!("mknod /dev/{name}"), e)),
        }
    }
    for (name, target) in LINKS {
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(InitError::sys(format!("symlink /dev/{name}"), e)),
        }
    }
    Ok(())
}

fn make_device(root: &OwnedFd, d: &DevicePlan) -> Result<(), InitError> {
    let shown = Path::new("/").join(&d.rel);
    let (Some(parent), Some(name)) = (d.rel.parent(), d.rel.file_name()) else {
        return Err(InitError::new(1, format!("invalid device path {}", shown.display())));
    };
    let dir =
        ensure_in_root(root, parent, false).map_err(|e| InitError::sys(format!("create {}", parent.display()), e))?;
    match rustix::fs::mknodat(&dir, name, d.kind, Mode::from_raw_mode(d.mode), d.dev) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(InitError::sys(format!("mknod {}", shown.display()), e)),
    }
    if d.uid.is_some() || d.gid.is_some() {
        rustix::fs::chownat(
            &dir,
            name,
            d.uid.map(rustix::fs::Uid::from_raw),
            d.gid.map(rustix::fs::Gid::from_raw),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| InitError::sys(format!("chown {}", shown.display()), e))?;
    }
    Ok(())
}

/// `pivot_root(".", ".")` stacks the old root on the new one; detaching it
/// leaves the container with no path to the host's tree (pivot_root(2)).
fn pivot(root: &OwnedFd) -> Result<(), InitError> {
    nix::unistd::fchdir(root).map_err(|e| InitError::sys("chdir to rootfs", e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| InitError::sys("pivot_root", e))?;
    // The old root must not propagate its unmount anywhere.
    mount(None, Path::new("."), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)
        .map_err(|e| InitError::sys("make the old root a slave mount", e))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(|e| InitError::sys("detach the old root", e))?;
    nix::unistd::chdir("/").map_err(|e| InitError::sys("chdir /", e))
}

/// In the init, after `pivot_root` (and sysctls): `linux.readonlyPaths`
/// then `linux.maskedPaths`. Missing paths are skipped.
pub fn protect(plan: &RootfsPlan) -> Result<(), InitError> {
    for p in &plan.readonly_paths {
        match mount(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None) {
            Ok(()) => {}
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(InitError::sys(format!("bind mount {}", p.display()), e)),
        }
        // A bind remount sets every per-mount flag: keep the ones it has.
        let kept = nix::sys::statvfs::statvfs(p.as_path())
            .map(|s| mount_flags_of(s.flags()))
            .unwrap_or_else(|_| MsFlags::empty());
        mount(None, p, None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | kept, None)
            .map_err(|e| InitError::sys(format!("remount {} read-only", p.display()), e))?;
    }
    for p in &plan.masked_paths {
        let result = match nix::sys::stat::stat(p.as_path()) {
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => Err(e),
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                mount(Some(Path::new("tmpfs")), p, Some("tmpfs"), MsFlags::MS_RDONLY, None)
            }
            Ok(_) => mount(Some(Path::new("/dev/null")), p, None, MsFlags::MS_BIND, None),
        };
        result.map_err(|e| InitError::sys(format!("mask {}", p.display()), e))?;
    }
    Ok(())
}

fn mount_flags_of(f: FsFlags) -> MsFlags {
    let mut out = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(st) {
            out |= ms;
        }
    }
    out
}

/// Opens `rel` inside the rootfs (`O_PATH`), never leaving it.
fn open_in_root(root: &OwnedFd, rel: &Path) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    rustix::fs::openat2(root, rel, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), IN_ROOT)
}

/// Opens `rel` inside the rootfs, creating what is missing: directories
/// (0755) on the way and, if `file`, an empty file as the last component.
/// Each step is resolved from the root again, so a symlink anywhere on the
/// way is followed as the container would see it, never out of it; a
/// dangling symlink makes the creation fail (`EEXIST`) rather than write
/// through it.
pub fn ensure_in_root(root: &OwnedFd, rel: &Path, file: bool) -> rustix::io::Result<OwnedFd> {
    let names: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut dir = open_in_root(root, Path::new(""))?;
    let mut prefix = PathBuf::new();
    for (i, name) in names.iter().enumerate() {
        prefix.push(name);
        dir = match open_in_root(root, &prefix) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                let made = if file && i + 1 == names.len() {
                    rustix::fs::openat(
                        &dir,
                        *name,
                        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map(drop)
                } else {
                    rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755))
                };
                match made {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                open_in_root(root, &prefix)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn option_table() {
        use MsFlags as F;
        let cases: Vec<(&[&str], MountOptions)> = vec![
            (
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
                MountOptions {
                    flags: F::MS_NOSUID | F::MS_STRICTATIME,
                    data: strings(&["mode=755", "size=65536k"]),
                    ..Default::default()
                },
            ),
            (
                &["ro", "rw", "rbind", "rprivate", "nodev"],
                MountOptions {
                    flags: F::MS_NODEV,
                    propagation: vec![F::MS_PRIVATE | F::MS_REC],
                    bind: true,
                    recursive: true,
                    ..Default::default()
                },
            ),
            (
                &["bind", "ro", "slave", "defaults"],
                MountOptions { flags: F::MS_RDONLY, propagation: vec![F::MS_SLAVE], bind: true, ..Default::default() },
            ),
        ];
        for (opts, want) in cases {
            assert_eq!(parse_options(&strings(opts)), want, "{opts:?}");
        }
    }

    fn mount(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Mount {
        Mount { destination: dest.into(), typ: Some(typ.into()), source: Some(source.into()), options: strings(opts) }
    }

    #[test]
    fn mount_plans() {
        let bundle = std::env::temp_dir();
        let m = MountPlan::new(&mount("/x/../data", "none", "/", &["rbind", "ro", "nosuid"]), &bundle, false).unwrap();
        assert_eq!(m.rel, PathBuf::from("data"));
        assert_eq!(m.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(m.remount, Some(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
        assert!(!m.file && m.fstype.is_none());

        let m =
            MountPlan::new(&mount("/sys/fs/cgroup", "cgroup", "cgroup", &["ro", "nosuid"]), &bundle, false).unwrap();
        assert_eq!(m.fstype.as_deref(), Some("tmpfs"));
        assert!(m.flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
        let m = MountPlan::new(&mount("/sys/fs/cgroup", "cgroup", "cgroup", &[]), &bundle, true).unwrap();
        assert_eq!(m.fstype.as_deref(), Some("cgroup2"));
        assert!(m.flags.contains(MsFlags::MS_RDONLY));

        let err = MountPlan::new(&mount("rel", "tmpfs", "tmpfs", &[]), &bundle, false).unwrap_err();
        assert_eq!(err.to_string(), "mount destination rel is not absolute");
        let err = MountPlan::new(&mount("/m", "bind", "/nonexistent-berth", &["bind"]), &bundle, false).unwrap_err();
        assert_eq!(err.to_string(), "bind mount source /nonexistent-berth: No such file or directory");
    }

    #[test]
    fn ensure_in_root_stays_inside() {
        let base = std::env::temp_dir().join(format!("berth-rootfs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root_dir = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root_dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An absolute symlink that would escape on the host.
        std::os::unix::fs::symlink(&outside, root_dir.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", root_dir.join("up")).unwrap();
        let root = rustix::fs::open(&root_dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        // The absolute link resolves inside the root, where it dangles: the
        // creation fails instead of writing through it.
        let err = ensure_in_root(&root, Path::new("escape/a/b"), false).unwrap_err();
        assert_eq!(err, Errno::NOENT);
        // `..` stops at the root.
        ensure_in_root(&root, Path::new("up/f"), true).unwrap();
        assert!(root_dir.join("f").is_file());
        ensure_in_root(&root, Path::new("d/e"), false).unwrap();
        assert!(root_dir.join("d/e").is_dir());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
