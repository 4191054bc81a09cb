//! `cp`: files and directories into and out of a container, as tar
//! streams, for running and stopped containers alike.
//!
//! Every path is the container's, so the container controls every symlink
//! on the way, and a careless resolution would read or write the host
//! (Docker's CVE-2018-15664 and CVE-2019-14271 are of this class). Hence:
//! * the work starts from a directory fd of the container's root: for a
//!   running container `/proc/<init>/root` (the container's own view, its
//!   mounts included, so writes land where the container sees them), for a
//!   stopped one the overlay mounted in a private mount namespace as
//!   `export` does, read-only for reading and with the container's upper
//!   and work directories for writing;
//! * every path inside is resolved with `openat2(2)` and
//!   `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` relative to that fd: `..` and
//!   absolute symlinks stop at the container's root, `/proc/<pid>/fd/*`
//!   style links are refused;
//! * walking a tree (`CopyFrom`) goes fd to fd with `O_PATH | O_NOFOLLOW`,
//!   so a directory swapped for a symlink during the walk is copied as the
//!   symlink, never followed; a regular file is read by reopening its own
//!   `O_PATH` fd through `/proc/thread-self/fd`, so nothing else (a device
//!   node swapped in) is ever opened; the kernel's pseudo filesystems
//!   (`/proc`, `/sys`, ...) of a running container are not descended into,
//!   which is what Docker's copy of the root filesystem shows;
//! * extracting (`CopyTo`) creates each entry with `*at` calls relative to
//!   its parent resolved in the root, removes whatever non-directory is in
//!   the way rather than writing through it, and refuses `..` in entry
//!   names.
//!
//! The container's lock is held for the whole copy, so it can neither be
//! removed nor (re)started under it.
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::mount::{umount2, MntFlags};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;
use tar::{EntryType, Header};

use super::export::private_merged_view;
use super::Manager;
use super::{ContainerError, CopyError};
use crate::error::{AgentError, Result};
use crate::images::diff::Exactly;
use crate::images::unpack::{read_attrs, replace, replace_with, split_path, Attrs};

/// What a `CopyFrom` path names, after resolution in the container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathStat {
    /// The top-level name of the tar's entries: the base name, or `.` for
    /// a path ending in `/.`.
    pub name: String,
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    /// Set when the path is a symlink (not followed).
    pub link_target: String,
}

/// How a `CopyTo` tar is placed.
#[derive(Clone, Debug, Default)]
pub struct CopyToOptions {
    /// The destination path in the container.
    pub path: String,
    /// One file or directory placed by Docker's rules; else (`cp -`) a tar
    /// extracted into the existing directory `path`.
    pub single: bool,
    /// Keep the tar's owners (`cp -a`); else root owns what is written.
    pub archive: bool,
}

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
const PATH_FLAGS: OFlags = OFlags::PATH.union(OFlags::CLOEXEC);
const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

/// How to reach a container's root filesystem.
enum RootSpec {
    /// Through the running init's `/proc/<pid>/root`; its parent must be
    /// the shim, which proves the pid was not recycled.
    Live { pid: i32, shim_pid: i32 },
    /// A private overlay: `dirs` top first (the upper directory, then the
    /// image's layers) on the `target` mount point.
    Stopped { dirs: Vec<PathBuf>, target: PathBuf, work: PathBuf },
}

/// An open root and what to undo when done.
struct Root {
    fd: OwnedFd,
    mounted: Option<PathBuf>,
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Some(target) = &self.mounted {
            // The namespace dies with the thread anyway; this is tidiness.
            let _ = umount2(target, MntFlags::MNT_DETACH);
        }
    }
}

impl RootSpec {
    /// Opens the root. Call on the thread that does the work: a stopped
    /// container's overlay exists in that thread's mount namespace only.
    fn open(&self, key: &str, writable: bool) -> Result<Root> {
        match self {
            RootSpec::Live { pid, shim_pid } => {
                let gone = || AgentError::from(ContainerError::StoppedDuringCopy { key: key.to_owned() });
                let proc_dir = rfs::open(format!("/proc/{pid}"), DIR_FLAGS, Mode::empty()).map_err(|_| gone())?;
                // An fd of /proc/<pid> stands for that process, not for the
                // number: once the process is gone every lookup through it
                // fails, even if the number is reused. So checking the
                // parent after the open proves the fd is the init's.
                let stat = read_small(proc_dir.as_fd(), "stat").map_err(|_| gone())?;
                let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
                let mut fields = after_comm.split_whitespace();
                let state = fields.next().unwrap_or("Z");
                let ppid: Option<i32> = fields.next().and_then(|p| p.parse().ok());
                if state == "Z" || state == "X" || ppid != Some(*shim_pid) {
                    return Err(gone());
                }
                let fd = rfs::openat(&proc_dir, "root", PATH_FLAGS | OFlags::DIRECTORY, Mode::empty())
                    .map_err(|_| gone())?;
                Ok(Root { fd, mounted: None })
            }
            RootSpec::Stopped { dirs, target, work } => {
                let dir = private_merged_view(dirs, target, writable.then_some(work.as_path()))?;
                let mounted = (&dir == target).then(|| target.clone());
                let fd = rfs::open(&dir, PATH_FLAGS | OFlags::DIRECTORY, Mode::empty())
                    .map_err(|e| io_err(format!("open {}", dir.display()), e))?;
                Ok(Root { fd, mounted })
            }
        }
    }
}

/// `openat2(2)` with `RESOLVE_IN_ROOT`, retried on `EAGAIN`: the kernel
/// gives that when a rename or mount anywhere on the system raced with a
/// `..` step, so the lookup could not prove it stayed inside.
pub(super) fn openat2_in_root<P: rustix::path::Arg + Copy>(
    dir: impl AsFd,
    path: P,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match rfs::openat2(dir.as_fd(), path, flags, Mode::empty(), IN_ROOT) {
            Err(Errno::AGAIN) if tries < 1000 => tries += 1,
            other => return other,
        }
    }
}

fn read_small(dir: BorrowedFd<'_>, name: &str) -> io::Result<String> {
    let fd = rfs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut s = String::new();
    File::from(fd).read_to_string(&mut s)?;
    Ok(s)
}

fn io_err(context: String, e: Errno) -> AgentError {
    AgentError::Io { context, source: e.into() }
}

impl Manager {
    /// The container's lock, held by the caller for the whole copy, and
    /// how to reach its root.
    async fn copy_root(self: &Arc<Self>, key: &str) -> Result<(tokio::sync::OwnedMutexGuard<()>, RootSpec)> {
        let rec = self.refresh(key).await?;
        let held = self.lock_for(&rec.id).lock_owned().await;
        let rec = self.lookup(&rec.id)?;
        let paths = self.paths(&rec);
        if rec.state.status.is_live() {
            // Never the private overlay here: a second mount of an upper
            // directory in use is undefined behaviour for overlayfs.
            let shim_pid = std::fs::read_to_string(paths.shim_pid()).ok().and_then(|s| s.trim().parse().ok());
            let (Some(shim_pid), Ok(pid @ 1..)) = (shim_pid, i32::try_from(rec.state.pid)) else {
                return Err(ContainerError::NoLiveProcess { key: key.to_owned() }.into());
            };
            return Ok((held, RootSpec::Live { pid, shim_pid }));
        }
        let dirs = self.merged_dirs(&rec).await?;
        Ok((held, RootSpec::Stopped { dirs, target: paths.rootfs(), work: paths.work() }))
    }

    /// Writes the tar of `path` in the container into `out` on a thread of
    /// its own. Returns what `path` names once it is resolved and writing
    /// has begun, or why it cannot be; a failure while writing goes to
    /// `failed`.
    #[tracing::instrument(skip_all, fields(id = %key, path = %path))]
    pub async fn copy_from<W>(
        self: &Arc<Self>,
        key: &str,
        path: &str,
        follow_link: bool,
        out: W,
        failed: impl FnOnce(AgentError) + Send + 'static,
    ) -> Result<PathStat>
    where
        W: Write + Send + 'static,
    {
        let (held, spec) = self.copy_root(key).await?;
        let (key, path) = (key.to_owned(), path.to_owned());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("cp-from".into())
            .spawn(move || {
                let _held = held;
                let opened = spec.open(&key, false).and_then(|root| {
                    let (fd, st, stat) = open_source(root.fd.as_fd(), &key, &path, follow_link)?;
                    Ok((root, fd, st, stat))
                });
                let (root, fd, st, stat) = match opened {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let name = stat.name.clone();
                let _ = ready_tx.send(Ok(stat));
                let mut w = TarOut { b: tar::Builder::new(out), links: Default::default() };
                let result = w
                    .tree(fd, &st, name.as_bytes())
                    .and_then(|()| {
                        w.b.into_inner().map_err(|e| AgentError::Io { context: "write tar".into(), source: e })
                    })
                    .and_then(|mut out| {
                        out.flush().map_err(|e| AgentError::Io { context: "write tar".into(), source: e })
                    });
                drop(root);
                if let Err(e) = result {
                    tracing::warn!(error = %e, "copy stopped");
                    failed(e);
                }
            })
            .map_err(|source| AgentError::Io { context: "start copy thread".into(), source })?;
        ready_rx.await.map_err(|_| AgentError::Internal("copy thread ended early".into()))?
    }

    /// Extracts the tar read from `input` into the container as `opts`
    /// says, on a thread of its own, and returns when it is all written.
    #[tracing::instrument(skip_all, fields(id = %key, path = %opts.path))]
    pub async fn copy_to<R>(self: &Arc<Self>, key: &str, opts: CopyToOptions, input: R) -> Result<()>
    where
        R: Read + Send + 'static,
    {
        let (held, spec) = self.copy_root(key).await?;
        let key = key.to_owned();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("cp-to".into())
            .spawn(move || {
                let _held = held;
                let result = spec.open(&key, true).and_then(|root| extract(root.fd.as_fd(), &key, &opts, input));
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "copy into the container failed");
                }
                let _ = done_tx.send(result);
            })
            .map_err(|source| AgentError::Io { context: "start copy thread".into(), source })?;
        done_rx.await.map_err(|_| AgentError::Internal("copy thread ended early".into()))?
    }
}

// ---------------------------------------------------------------- paths

/// A container path split for resolution.
pub(crate) struct CPath<'a> {
    /// Everything but the last component (may be empty: the root).
    pub(crate) parent: &'a str,
    /// The last component; empty when the path names a directory by its
    /// form (`/`, `dir/`, `dir/.`).
    pub(crate) name: &'a str,
    /// Ends with `/.`: a directory's contents.
    pub(crate) contents: bool,
}

impl<'a> CPath<'a> {
    pub(crate) fn parse(path: &'a str) -> CPath<'a> {
        let contents = path == "." || path.ends_with("/.");
        if contents || path.ends_with('/') || path.is_empty() {
            return CPath { parent: path, name: "", contents };
        }
        match path.rsplit_once('/') {
            Some((parent, name)) if name != ".." => CPath { parent, name, contents },
            None if path != ".." => CPath { parent: "", name: path, contents },
            _ => CPath { parent: path, name: "", contents },
        }
    }

    /// The path to give `openat2` for the parent (never empty).
    pub(crate) fn parent_arg(&self) -> &str {
        if self.parent.is_empty() {
            "/"
        } else {
            self.parent
        }
    }
}

fn not_found(key: &str, path: &str) -> AgentError {
    // Docker's words, which scripts look for.
    AgentError::from(ContainerError::NoSuchPath { key: key.to_owned(), path: path.to_owned() })
}

fn resolve_err(key: &str, path: &str, e: Errno) -> AgentError {
    match e {
        Errno::NOENT => not_found(key, path),
        Errno::NOTDIR => CopyError::NotADirectory { path: path.to_owned() }.into(),
        Errno::LOOP => CopyError::SymlinkLoop { path: path.to_owned() }.into(),
        e => io_err(format!("resolve {path} in container {key}"), e),
    }
}

/// Opens `path` (`O_PATH`) inside the container's root and describes it.
pub(crate) fn open_source(
    root: BorrowedFd<'_>,
    key: &str,
    path: &str,
    follow: bool,
) -> Result<(OwnedFd, Stat, PathStat)> {
    let p = CPath::parse(path);
    let fd = if p.name.is_empty() || follow {
        let arg = if path.is_empty() { "/" } else { path };
        openat2_in_root(root, arg, PATH_FLAGS)
    } else {
        openat2_in_root(root, p.parent_arg(), PATH_FLAGS | OFlags::DIRECTORY)
            .and_then(|dir| rfs::openat(&dir, p.name, PATH_FLAGS | OFlags::NOFOLLOW, Mode::empty()))
    }
    .map_err(|e| resolve_err(key, path, e))?;
    let st = rfs::fstat(&fd).map_err(|e| io_err(format!("stat {path}"), e))?;
    let ftype = FileType::from_raw_mode(st.st_mode);
    if p.name.is_empty() && ftype != FileType::Directory {
        return Err(CopyError::NotADirectory { path: path.to_owned() }.into());
    }
    let name = if p.contents || p.name.is_empty() {
        // `/`, `dir/` and `dir/.`: `dir/` names the directory itself.
        match path.trim_end_matches('/').rsplit('/').next() {
            Some(n) if !p.contents && !n.is_empty() && n != "." && n != ".." => n.to_owned(),
            _ => ".".to_owned(),
        }
    } else {
        p.name.to_owned()
    };
    let link_target = if ftype == FileType::Symlink {
        let t = rfs::readlinkat(&fd, "", Vec::new()).map_err(|e| io_err(format!("read link {path}"), e))?;
        String::from_utf8_lossy(t.as_bytes()).into_owned()
    } else {
        String::new()
    };
    let stat = PathStat { name, size: st.st_size.max(0) as u64, mode: st.st_mode, mtime: st.st_mtime, link_target };
    Ok((fd, st, stat))
}

// ---------------------------------------------------------------- reading

/// `statfs(2)` magic numbers of the kernel's pseudo filesystems a running
/// container has mounted (`linux/magic.h`): not descended into.
const PSEUDO_FS: [i64; 7] = [
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x1cd1,      // devpts
    0x1980_0202, // mqueue
    0x7363_6673, // securityfs
];

/// Whether `fd` is on one of `PSEUDO_FS`.
// `f_type`'s type differs between architectures, hence the cast.
#[allow(clippy::unnecessary_cast)]
fn is_pseudo_fs(fd: &OwnedFd) -> bool {
    rfs::fstatfs(fd).map(|s| PSEUDO_FS.contains(&(s.f_type as i64))).unwrap_or(false)
}

/// Writes a tree into a tar, fd by fd.
struct TarOut<W: Write> {
    b: tar::Builder<W>,
    /// (device, inode) of regular files with several links → first name.
    links: std::collections::HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TarOut<W> {
    /// Writes the entry of `fd` (an `O_PATH | O_NOFOLLOW` fd), named `name`
    /// in the tar, and everything below it if it is a directory. The walk
    /// below goes fd to fd without recursion (`tree`), so a tree of any
    /// depth is copied with a bounded stack and a bounded number of fds.
    fn tree(&mut self, fd: OwnedFd, st: &Stat, name: &[u8]) -> Result<()> {
        if !self.entry(&fd, st, name)? {
            return Ok(());
        }
        let listing = rfs::openat(&fd, ".", DIR_FLAGS, Mode::empty())
            .map_err(|e| io_err(format!("read directory {}", String::from_utf8_lossy(name)), e))?;
        drop(fd);
        let prefix: Vec<u8> = if name == b"." { Vec::new() } else { [name, b"/"].concat() };
        let mut tar_path = Vec::new();
        crate::tree::walk(listing, |e| {
            let child = match rfs::openat(e.dir, e.name, PATH_FLAGS | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(fd) => fd,
                // Removed meanwhile: a running container changes its files.
                Err(Errno::NOENT) => return Ok(None),
                Err(err) => return Err(io_err(format!("open {}", crate::tree::shorten(e.path)), err)),
            };
            let st = rfs::fstat(&child).map_err(|err| io_err(format!("stat {}", crate::tree::shorten(e.path)), err))?;
            tar_path.clear();
            tar_path.extend_from_slice(&prefix);
            tar_path.extend_from_slice(e.path);
            Ok(self.entry(&child, &st, &tar_path)?.then_some((st.st_dev, st.st_ino)))
        })
    }

    /// Writes the entry of `fd`, named `name` in the tar; returns whether it
    /// is a directory to descend into.
    fn entry(&mut self, fd: &OwnedFd, st: &Stat, name: &[u8]) -> Result<bool> {
        let shown = crate::tree::shorten(name);
        let werr = |e: io::Error| AgentError::Io { context: format!("write tar entry {shown}"), source: e };
        let tar_name = Path::new(OsStr::from_bytes(name));
        let mut h = Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                h.set_entry_type(EntryType::Directory);
                self.b.append_data(&mut h, tar_name, io::empty()).map_err(werr)?;
                return Ok(!is_pseudo_fs(fd));
            }
            FileType::Symlink => {
                let target =
                    rfs::readlinkat(fd, "", Vec::new()).map_err(|e| io_err(format!("read link {shown}"), e))?;
                h.set_entry_type(EntryType::Symlink);
                self.b.append_link(&mut h, tar_name, Path::new(OsStr::from_bytes(target.as_bytes()))).map_err(werr)?;
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        let first = first.clone();
                        h.set_entry_type(EntryType::Link);
                        self.b.append_link(&mut h, tar_name, Path::new(OsStr::from_bytes(&first))).map_err(werr)?;
                        return Ok(false);
                    }
                    self.links.insert(key, name.to_vec());
                }
                // Reopen this very inode for reading; a path lookup could
                // meet something else the container swapped in.
                let file = rfs::open(
                    format!("/proc/thread-self/fd/{}", fd.as_raw_fd()),
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
                    Mode::empty(),
                )
                .map_err(|e| io_err(format!("open {shown}"), e))?;
                h.set_entry_type(EntryType::Regular);
                let size = st.st_size.max(0) as u64;
                h.set_size(size);
                self.b.append_data(&mut h, tar_name, Exactly { inner: File::from(file), left: size }).map_err(werr)?;
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let kind = match FileType::from_raw_mode(st.st_mode) {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                h.set_entry_type(kind);
                if kind != EntryType::Fifo {
                    h.set_device_major(rfs::major(st.st_rdev)).map_err(werr)?;
                    h.set_device_minor(rfs::minor(st.st_rdev)).map_err(werr)?;
                }
                self.b.append_data(&mut h, tar_name, io::empty()).map_err(werr)?;
            }
            _ => tracing::debug!(path = %shown, "socket not copied"),
        }
        Ok(false)
    }
}

// ---------------------------------------------------------------- writing

/// Where the entries of a `CopyTo` tar land.
struct Placement {
    /// Container path of the directory entries are extracted into.
    base: Vec<u8>,
    /// The tar's top-level name and the name it gets instead.
    rename: Option<(Vec<u8>, Vec<u8>)>,
    /// Entries must all start with this top-level name (`single`).
    top: Option<Vec<u8>>,
}

/// What the destination path names, symlinks followed inside the root.
pub(crate) enum Dest {
    Dir,
    /// A non-directory, or nothing: its parent's container path and name.
    Other {
        parent: Vec<u8>,
        name: Vec<u8>,
        exists: bool,
    },
}

const MAX_LINKS: usize = 40;

/// Resolves the destination as Docker does: a symlink as the last
/// component is followed (to its target, resolved in the root again), so
/// `cp f c:/link` writes where the link points, inside the container.
pub(crate) fn resolve_dest(root: BorrowedFd<'_>, key: &str, path: &str) -> Result<(Vec<u8>, Dest)> {
    // `dir/` and `dir/.` name `dir`; whether it must be a directory is
    // the caller's rule.
    let mut trimmed = path;
    while let Some(t) = trimmed.strip_suffix('/').or_else(|| trimmed.strip_suffix("/.")) {
        trimmed = t;
    }
    let mut cur = trimmed.as_bytes().to_vec();
    for _ in 0..MAX_LINKS {
        let text = String::from_utf8_lossy(&cur).into_owned();
        let p = CPath::parse(&text);
        if p.name.is_empty() {
            let fd = openat2_in_root(root, if text.is_empty() { "/" } else { text.as_str() }, PATH_FLAGS)
                .map_err(|e| resolve_err(key, &text, e))?;
            let st = rfs::fstat(&fd).map_err(|e| io_err(format!("stat {text}"), e))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(CopyError::NotADirectory { path: text }.into());
            }
            return Ok((cur, Dest::Dir));
        }
        let parent = openat2_in_root(root, p.parent_arg(), PATH_FLAGS | OFlags::DIRECTORY)
            .map_err(|e| resolve_err(key, p.parent_arg(), e))?;
        let other =
            |exists| Dest::Other { parent: p.parent.as_bytes().to_vec(), name: p.name.as_bytes().to_vec(), exists };
        let st = match rfs::statat(&parent, p.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok((cur.clone(), other(false))),
            Err(e) => return Err(resolve_err(key, &text, e)),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => return Ok((cur.clone(), Dest::Dir)),
            FileType::Symlink => {
                let target =
                    rfs::readlinkat(&parent, p.name, Vec::new()).map_err(|e| io_err(format!("read link {text}"), e))?;
                let target = target.as_bytes();
                cur = if target.starts_with(b"/") {
                    target.to_vec()
                } else {
                    [p.parent.as_bytes(), b"/", target].concat()
                };
            }
            _ => return Ok((cur.clone(), other(true))),
        }
    }
    Err(CopyError::SymlinkLoop { path: path.to_owned() }.into())
}

/// Decides where the entries go, from the destination and the tar's first
/// entry (Docker's `cp` rules).
fn place(
    root: BorrowedFd<'_>,
    key: &str,
    opts: &CopyToOptions,
    first: &[Vec<u8>],
    first_is_dir: bool,
) -> Result<Placement> {
    let (resolved, dest) = resolve_dest(root, key, &opts.path)?;
    let dir_form = opts.path.ends_with('/') || opts.path.ends_with("/.");
    if !opts.single {
        return match dest {
            Dest::Dir => Ok(Placement { base: resolved, rename: None, top: None }),
            Dest::Other { exists: false, .. } => Err(not_found(key, &opts.path)),
            Dest::Other { .. } => Err(CopyError::ExtractionPoint.into()),
        };
    }
    let top = match first.first() {
        Some(t) => t.clone(),
        None => b".".to_vec(),
    };
    if first.len() > 1 {
        return Err(CopyError::SourceContent.into());
    }
    let contents = top == b".";
    match dest {
        Dest::Dir => Ok(Placement { base: resolved, rename: None, top: (!contents).then_some(top) }),
        Dest::Other { exists: true, .. } if dir_form => {
            Err(CopyError::NotADirectory { path: opts.path.clone() }.into())
        }
        Dest::Other { exists: true, .. } if first_is_dir => Err(CopyError::Directory.into()),
        Dest::Other { exists: false, .. } if dir_form && !first_is_dir => {
            Err(CopyError::NoSuchDirectory { path: opts.path.clone() }.into())
        }
        Dest::Other { parent, name, .. } => {
            if contents {
                // The directory's contents under a new name: make it first.
                let dir =
                    open_dir(root, &parent).map_err(|e| resolve_err(key, &String::from_utf8_lossy(&parent), e))?;
                rfs::mkdirat(&dir, name.as_slice(), Mode::from_raw_mode(0o755))
                    .map_err(|e| io_err(format!("create {}", opts.path), e))?;
                let base = [parent.as_slice(), b"/", name.as_slice()].concat();
                return Ok(Placement { base, rename: None, top: None });
            }
            Ok(Placement { base: parent, rename: Some((top.clone(), name)), top: Some(top) })
        }
    }
}

/// A directory of the container by its container path, resolved in the root.
fn open_dir(root: BorrowedFd<'_>, path: &[u8]) -> Result<OwnedFd, Errno> {
    let path = if path.is_empty() { b"/".as_slice() } else { path };
    openat2_in_root(root, path, DIR_FLAGS)
}

/// Opens (making what is missing, mode 0755) the directory `comps` under
/// the container path `base`, resolving in the root.
fn ensure_dir(root: BorrowedFd<'_>, base: &[u8], comps: &[Vec<u8>]) -> Result<OwnedFd, Errno> {
    let full = join(base, comps);
    match open_dir(root, &full) {
        Err(Errno::NOENT) if !comps.is_empty() => {}
        other => return other,
    }
    let (name, parent) = comps.split_last().ok_or(Errno::NOENT)?;
    let dir = ensure_dir(root, base, parent)?;
    match rfs::mkdirat(&dir, name.as_slice(), Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e),
    }
    open_dir(root, &full)
}

fn join(base: &[u8], comps: &[Vec<u8>]) -> Vec<u8> {
    let mut out = base.to_vec();
    for c in comps {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    out
}

/// Extracts the tar from `input` into the container.
fn extract(root: BorrowedFd<'_>, key: &str, opts: &CopyToOptions, input: impl Read) -> Result<()> {
    let bad = |m: String| AgentError::from(CopyError::Archive(m));
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(|e| bad(format!("invalid tar stream: {e}")))?;
    let mut placement: Option<Placement> = None;
    let mut cache: Option<(Vec<u8>, OwnedFd)> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("invalid tar stream: {e}")))?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let mut comps = split_path(&raw).map_err(|m| bad(format!("tar entry {shown:?} {m}")))?;
        if placement.is_none() {
            placement = Some(place(root, key, opts, &comps, kind == EntryType::Directory)?);
        }
        let Some(pl) = placement.as_ref() else { continue };
        if let Some(top) = &pl.top {
            if comps.first() != Some(top) {
                return Err(bad("invalid copy source content".into()));
            }
        }
        if let Some((from, to)) = &pl.rename {
            if comps.first() == Some(from) {
                comps[0] = to.clone();
            }
        }
        let mut attrs = read_attrs(&mut entry).map_err(|e| bad(format!("invalid tar stream: {e}")))?;
        if !opts.archive {
            attrs.uid = rfs::Uid::from_raw(0);
            attrs.gid = rfs::Gid::from_raw(0);
        }
        let Some((name, parent)) = comps.split_last() else {
            // The destination directory itself: left as it is.
            continue;
        };
        let key_path = join(&pl.base, parent);
        if !matches!(&cache, Some((k, _)) if *k == key_path) {
            let fd = ensure_dir(root, &pl.base, parent)
                .map_err(|e| resolve_err(key, &String::from_utf8_lossy(&key_path), e))?;
            cache = Some((key_path, fd));
        }
        let Some((_, dir)) = cache.as_ref() else { continue };
        let dir = dir.as_fd();
        let removed_dir = write_entry(root, pl, dir, name, &mut entry, kind, &attrs, &shown)?;
        if removed_dir {
            cache = None;
        }
    }
    if placement.is_none() {
        return Err(bad("invalid tar stream: no entries".into()));
    }
    Ok(())
}

/// Creates one entry `name` in `dir`; returns whether a directory in the
/// way was removed.
#[allow(clippy::too_many_arguments)]
fn write_entry<R: Read>(
    root: BorrowedFd<'_>,
    pl: &Placement,
    dir: BorrowedFd<'_>,
    name: &[u8],
    entry: &mut tar::Entry<'_, R>,
    kind: EntryType,
    attrs: &Attrs,
    shown: &str,
) -> Result<bool> {
    let err = |what: &str, e: Errno| io_err(format!("{what} {shown}"), e);
    let mut removed_dir = false;
    match kind {
        EntryType::Regular | EntryType::Continuous => {
            let (fd, removed) = replace_with(dir, name, || {
                rfs::openat(
                    dir,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
            })
            .map_err(|e| err("create", e))?;
            removed_dir = removed;
            let mut file = File::from(fd);
            io::copy(entry, &mut file).map_err(|e| AgentError::Io { context: format!("write {shown}"), source: e })?;
            rfs::fchown(&file, Some(attrs.uid), Some(attrs.gid)).map_err(|e| err("set owner of", e))?;
            rfs::fchmod(&file, attrs.mode).map_err(|e| err("set mode of", e))?;
            rfs::futimens(&file, &attrs.times).map_err(|e| err("set times of", e))?;
        }
        EntryType::Directory => {
            match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(Errno::EXIST) => {
                    let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err("stat", e))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                        rfs::unlinkat(dir, name, AtFlags::empty())
                            .and_then(|()| rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)))
                            .map_err(|e| err("replace with a directory", e))?;
                    }
                }
                Err(e) => return Err(err("create directory", e)),
            }
            let fd = rfs::openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty()).map_err(|e| err("open", e))?;
            rfs::fchown(&fd, Some(attrs.uid), Some(attrs.gid)).map_err(|e| err("set owner of", e))?;
            rfs::fchmod(&fd, attrs.mode).map_err(|e| err("set mode of", e))?;
            rfs::futimens(&fd, &attrs.times).map_err(|e| err("set times of", e))?;
        }
        EntryType::Symlink => {
            let target = entry.link_name_bytes().unwrap_or_default().into_owned();
            removed_dir = replace(dir, name, || rfs::symlinkat(target.as_slice(), dir, name))
                .map_err(|e| err("create symlink", e))?;
            rfs::chownat(dir, name, Some(attrs.uid), Some(attrs.gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| err("set owner of", e))?;
            rfs::utimensat(dir, name, &attrs.times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err("set times of", e))?;
        }
        EntryType::Link => {
            let target = entry.link_name_bytes().unwrap_or_default().into_owned();
            let mut tcomps =
                split_path(&target).map_err(|m| CopyError::Archive(format!("hard link {shown:?}: target {m}")))?;
            if let Some((from, to)) = &pl.rename {
                if tcomps.first() == Some(from) {
                    tcomps[0] = to.clone();
                }
            }
            let Some((tname, tparent)) = tcomps.split_last() else {
                return Err(CopyError::Archive(format!("hard link {shown:?} has no target")).into());
            };
            let tdir = open_dir(root, &join(&pl.base, tparent)).map_err(|e| err("resolve the target of", e))?;
            removed_dir = replace(dir, name, || rfs::linkat(&tdir, tname.as_slice(), dir, name, AtFlags::empty()))
                .map_err(|e| err("create hard link", e))?;
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let h = entry.header();
            let dev = rfs::makedev(
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            );
            let ftype = match kind {
                EntryType::Char => FileType::CharacterDevice,
                EntryType::Block => FileType::BlockDevice,
                _ => FileType::Fifo,
            };
            removed_dir = replace(dir, name, || rfs::mknodat(dir, name, ftype, Mode::empty(), dev))
                .map_err(|e| err("create", e))?;
            rfs::chownat(dir, name, Some(attrs.uid), Some(attrs.gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| err("set owner of", e))?;
            // Just made by mknodat: not a symlink.
            rfs::chmodat(dir, name, attrs.mode, AtFlags::empty()).map_err(|e| err("set mode of", e))?;
        }
        other => tracing::warn!(path = %shown, kind = ?other, "skipping tar entry of unsupported type"),
    }
    Ok(removed_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_split_as_docker_reads_them() {
        let cases = [
            ("/etc/hostname", "/etc", "hostname", false),
            ("etc/hostname", "etc", "hostname", false),
            ("hostname", "", "hostname", false),
            ("/etc/", "/etc/", "", false),
            ("/etc/.", "/etc/.", "", true),
            ("/", "/", "", false),
            ("", "", "", false),
            ("/a/..", "/a/..", "", false),
        ];
        for (path, parent, name, contents) in cases {
            let p = CPath::parse(path);
            assert_eq!((p.parent, p.name, p.contents), (parent, name, contents), "{path}");
        }
    }

    /// A root with an outside directory next to it and hostile symlinks
    /// inside: resolution never leaves the root.
    #[test]
    fn sources_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "inside\n").unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/passwd"), "outside\n").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("rel")).unwrap();
        let rootfd = rfs::open(&root, PATH_FLAGS | OFlags::DIRECTORY, Mode::empty()).unwrap();
        for path in ["/abs/passwd", "rel/passwd", "/../../etc/passwd"] {
            let (fd, st, stat) = open_source(rootfd.as_fd(), "c", path, false).unwrap();
            assert_eq!(stat.name, "passwd");
            assert_eq!(st.st_size, 7, "{path}");
            let mut out = TarOut { b: tar::Builder::new(Vec::new()), links: Default::default() };
            out.tree(fd, &st, b"passwd").unwrap();
            let tar = out.b.into_inner().unwrap();
            let mut ar = tar::Archive::new(&tar[..]);
            let mut e = ar.entries().unwrap().next().unwrap().unwrap();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            assert_eq!(s, "inside\n", "{path}");
        }
        let (_, _, stat) = open_source(rootfd.as_fd(), "c", "/abs", false).unwrap();
        assert_eq!(stat.link_target, "/etc");
        let err = open_source(rootfd.as_fd(), "c1", "/nope", false).unwrap_err();
        assert_eq!(err.to_string(), "Could not find the file /nope in container c1");
    }

    #[test]
    fn extraction_stays_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/x", root.join("last")).unwrap();
        let rootfd = rfs::open(&root, PATH_FLAGS | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let tar_of = |name: &str, data: &[u8]| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(EntryType::Regular);
            b.append_data(&mut h, name, data).unwrap();
            b.into_inner().unwrap()
        };
        let single = |path: &str| CopyToOptions { path: path.into(), single: true, archive: false };
        extract(rootfd.as_fd(), "c", &single("/abs/"), &tar_of("f", b"1")[..]).unwrap();
        extract(rootfd.as_fd(), "c", &single("/abs/g"), &tar_of("f", b"2")[..]).unwrap();
        extract(rootfd.as_fd(), "c", &single("/last"), &tar_of("f", b"3")[..]).unwrap();
        assert_eq!(std::fs::read(root.join("etc/f")).unwrap(), b"1");
        assert_eq!(std::fs::read(root.join("etc/g")).unwrap(), b"2");
        assert_eq!(std::fs::read(root.join("etc/x")).unwrap(), b"3");
        assert_eq!(std::fs::read_dir(t.path().join("etc")).unwrap().count(), 0, "nothing written outside");
        let err = extract(rootfd.as_fd(), "c1", &single("/nodir/x"), &tar_of("f", b"4")[..]).unwrap_err();
        assert_eq!(err.to_string(), "Could not find the file /nodir in container c1");
    }

    /// Docker's placement rules, one row each: destination, what the tar
    /// holds, then the files expected or the error.
    #[test]
    fn placement_follows_dockers_rules() {
        fn tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
            let mut b = tar::Builder::new(Vec::new());
            for (name, data) in entries {
                let mut h = Header::new_gnu();
                h.set_mode(0o755);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(0);
                let data = data.unwrap_or_default();
                h.set_size(data.len() as u64);
                h.set_entry_type(if name.ends_with('/') || *name == "." {
                    EntryType::Directory
                } else {
                    EntryType::Regular
                });
                b.append_data(&mut h, name, data).unwrap();
            }
            b.into_inner().unwrap()
        }
        let file = tar(&[("f", Some(b"new"))]);
        let dir = tar(&[("d/", None), ("d/x", Some(b"x"))]);
        let contents = tar(&[(".", None), ("x", Some(b"x"))]);
        let two_tops = tar(&[("f", Some(b"1")), ("g", Some(b"2"))]);
        type Row<'a> = (&'a str, &'a [u8], Result<&'a [(&'a str, &'a str)], &'a str>);
        let rows: Vec<Row<'_>> = vec![
            ("/dir", &file, Ok(&[("dir/f", "new")])),
            ("/dir/", &file, Ok(&[("dir/f", "new")])),
            ("/new", &file, Ok(&[("new", "new")])),
            ("/file", &file, Ok(&[("file", "new")])),
            ("/new/", &file, Err("/new/: no such directory")),
            ("/file/", &file, Err("/file/: not a directory")),
            ("/dir", &dir, Ok(&[("dir/d/x", "x")])),
            ("/new", &dir, Ok(&[("new/x", "x")])),
            ("/new/", &dir, Ok(&[("new/x", "x")])),
            ("/file", &dir, Err("cannot copy directory")),
            ("/dir", &contents, Ok(&[("dir/x", "x")])),
            ("/new", &contents, Ok(&[("new/x", "x")])),
            ("/file", &contents, Err("cannot copy directory")),
            ("/nodir/new", &file, Err("Could not find the file /nodir in container c")),
            ("/dir", &two_tops, Err("invalid copy source content")),
        ];
        for (dest, tar, want) in rows {
            let t = tempfile::tempdir().unwrap();
            let root = t.path();
            std::fs::create_dir(root.join("dir")).unwrap();
            std::fs::write(root.join("file"), "old").unwrap();
            let rootfd = rfs::open(root, PATH_FLAGS | OFlags::DIRECTORY, Mode::empty()).unwrap();
            let opts = CopyToOptions { path: dest.into(), single: true, archive: false };
            let got = extract(rootfd.as_fd(), "c", &opts, tar);
            match want {
                Ok(files) => {
                    got.unwrap_or_else(|e| panic!("{dest}: {e}"));
                    for (path, data) in files {
                        assert_eq!(std::fs::read_to_string(root.join(path)).unwrap(), *data, "{dest}: {path}");
                    }
                }
                Err(msg) => assert_eq!(got.unwrap_err().to_string(), msg, "{dest}"),
            }
        }
    }
}
