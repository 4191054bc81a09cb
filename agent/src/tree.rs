//! Walking and removing directory trees of any depth, without recursion.
//!
//! A container or an image can make a directory thousands of levels deep
//! (a shell loop of `mkdir d; cd d` does it), so nothing that walks a tree
//! berthd does not control may recurse per level: each level of a
//! recursive walk costs a stack frame, and 10,000 of them overflow a
//! thread's 2 MiB stack, which aborts the whole process. std's
//! `fs::remove_dir_all` recurses too (and holds one fd per level), so it is
//! not used on such trees either.
//!
//! Paths are no way out: 10,000 levels of `d/` are 20,000 bytes, far past
//! `PATH_MAX` (4096), so every path-based syscall fails with
//! `ENAMETOOLONG`. Hence:
//! * [`walk`] goes from directory fd to directory fd with `*at` calls and
//!   an explicit stack of frames. It keeps the fds of the deepest
//!   `WINDOW` frames and of a bounded number of checkpoint frames
//!   above them open; when the walk climbs back into a frame whose fd was
//!   closed, it reopens it by descending from the nearest open ancestor,
//!   and checks device and inode, so a directory swapped meanwhile is an
//!   error rather than a jump elsewhere. At most about 300 fds are open
//!   whatever the depth.
//! * [`remove_at`] deletes depth first with a stack of at most
//!   `REMOVE_DEPTH` fds: a directory found deeper than that is first
//!   renamed to a fresh name directly under the top of the tree, which
//!   makes it shallow (a rename of a directory is O(1) in the kernel).
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// Deepest frames whose fds stay open.
const WINDOW: usize = 32;
/// Most checkpoint fds kept above the window.
const CHECKPOINTS: usize = 256;
/// Open directories while removing, beyond which subtrees are moved up.
const REMOVE_DEPTH: usize = 32;

const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// A failed step of a walk or removal, with the path (relative to the
/// walk's root) it was at.
#[derive(Debug)]
pub struct TreeError {
    pub what: &'static str,
    pub path: Vec<u8>,
    pub errno: Errno,
}

impl TreeError {
    /// The path for messages; a very long one is cut in the middle.
    pub fn shown(&self) -> String {
        shorten(&self.path)
    }
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.what, self.shown(), io::Error::from(self.errno))
    }
}

impl std::error::Error for TreeError {}

impl From<TreeError> for io::Error {
    fn from(e: TreeError) -> io::Error {
        io::Error::other(e)
    }
}

/// A path for a message: at most 200 bytes, the middle elided.
pub fn shorten(path: &[u8]) -> String {
    if path.len() <= 200 {
        return String::from_utf8_lossy(path).into_owned();
    }
    format!(
        "{}...({} bytes)...{}",
        String::from_utf8_lossy(&path[..80]),
        path.len() - 160,
        String::from_utf8_lossy(&path[path.len() - 80..])
    )
}

/// One entry met by [`walk`].
pub struct Entry<'a> {
    /// The directory it is in.
    pub dir: BorrowedFd<'a>,
    /// Its name in `dir`.
    pub name: &'a [u8],
    /// Its path relative to the walk's root (`a/b/c`).
    pub path: &'a [u8],
    /// Its type as the directory listing says (may be `Unknown`).
    pub file_type: FileType,
}

/// A directory being walked.
struct Frame {
    name: Vec<u8>,
    fd: Option<OwnedFd>,
    id: (u64, u64),
    /// Children in name order, and the next one to visit.
    children: Vec<(Vec<u8>, FileType)>,
    next: usize,
    /// Length of this directory's path in the walk's path buffer.
    path_len: usize,
}

/// Visits every entry below `root` depth first, in name order (parents
/// before their children). `visit` returns the (device, inode) of the
/// entry to descend into it (it must be a directory), or `None`. An entry
/// that vanished or changed type between `visit` and the descent is not
/// descended into.
pub fn walk<E: From<TreeError>>(
    root: OwnedFd,
    mut visit: impl FnMut(&Entry<'_>) -> Result<Option<(u64, u64)>, E>,
) -> Result<(), E> {
    let st = rfs::fstat(&root).map_err(|e| err("stat", b"", e))?;
    let children = list(root.as_fd(), b"")?;
    let mut frames =
        vec![Frame { name: Vec::new(), fd: Some(root), id: (st.st_dev, st.st_ino), children, next: 0, path_len: 0 }];
    let mut path: Vec<u8> = Vec::new();
    while let Some(top) = frames.last_mut() {
        if top.next == top.children.len() {
            frames.pop();
            reopen_top(&mut frames, &path)?;
            continue;
        }
        let child = &mut top.children[top.next];
        let (name, file_type) = (std::mem::take(&mut child.0), child.1);
        top.next += 1;
        path.truncate(top.path_len);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        let Some(dir) = top.fd.as_ref().map(|f| f.as_fd()) else {
            return Err(err("walk", &path, Errno::BADF).into());
        };
        let Some(id) = visit(&Entry { dir, name: &name, path: &path, file_type })? else {
            continue;
        };
        let fd = match rfs::openat(dir, name.as_slice(), DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            // Gone or replaced by something else meanwhile.
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
            Err(e) => return Err(err("open directory", &path, e).into()),
        };
        let st = rfs::fstat(&fd).map_err(|e| err("stat", &path, e))?;
        if (st.st_dev, st.st_ino) != id {
            continue;
        }
        let children = list(fd.as_fd(), &path)?;
        frames.push(Frame { name, fd: Some(fd), id, children, next: 0, path_len: path.len() });
        thin(&mut frames);
    }
    Ok(())
}

/// The checkpoint stride for a stack of `len` frames: a power of two, so
/// that checkpoints of a longer stack are checkpoints of a shorter one.
fn stride(len: usize) -> usize {
    let mut s = WINDOW;
    while len / s > CHECKPOINTS {
        s *= 2;
    }
    s
}

/// Whether frame `i` of a stack of `len` keeps its fd.
fn keeps_fd(i: usize, len: usize, stride: usize) -> bool {
    i == 0 || i + WINDOW >= len || i.is_multiple_of(stride)
}

/// Closes the fds a stack that just grew by one no longer keeps.
fn thin(frames: &mut [Frame]) {
    let len = frames.len();
    let s = stride(len);
    if s != stride(len - 1) {
        for (i, f) in frames.iter_mut().enumerate() {
            if !keeps_fd(i, len, s) {
                f.fd = None;
            }
        }
    } else if let Some(i) = len.checked_sub(WINDOW + 1) {
        if !keeps_fd(i, len, s) {
            frames[i].fd = None;
        }
    }
}

/// Gives the top frame its fd back, descending from the nearest ancestor
/// that has one, and checking each directory is still the one walked.
fn reopen_top(frames: &mut [Frame], path: &[u8]) -> Result<(), TreeError> {
    let len = frames.len();
    if len == 0 || frames[len - 1].fd.is_some() {
        return Ok(());
    }
    let s = stride(len);
    let Some(j) = frames.iter().rposition(|f| f.fd.is_some()) else {
        return Err(err("walk", path, Errno::BADF));
    };
    for i in j + 1..len {
        let (above, below) = frames.split_at_mut(i);
        let parent = &mut above[i - 1];
        let frame = &mut below[0];
        let here = &path[..frame.path_len.min(path.len())];
        let Some(pfd) = parent.fd.as_ref() else {
            return Err(err("walk", here, Errno::BADF));
        };
        let fd = rfs::openat(pfd, frame.name.as_slice(), DIR_FLAGS, Mode::empty())
            .map_err(|e| err("reopen directory", here, e))?;
        let st = rfs::fstat(&fd).map_err(|e| err("stat", here, e))?;
        if (st.st_dev, st.st_ino) != frame.id {
            // Moved or replaced during the walk: going on would walk
            // somewhere else.
            return Err(err("directory changed during the walk:", here, Errno::STALE));
        }
        frame.fd = Some(fd);
        if !keeps_fd(i - 1, len, s) {
            parent.fd = None;
        }
    }
    Ok(())
}

/// The entries of a directory but `.` and `..`, in name order.
fn list(dir: BorrowedFd<'_>, path: &[u8]) -> Result<Vec<(Vec<u8>, FileType)>, TreeError> {
    let mut out = Vec::new();
    let mut d = rfs::Dir::read_from(dir).map_err(|e| err("read directory", path, e))?;
    while let Some(ent) = d.read() {
        let ent = ent.map_err(|e| err("read directory", path, e))?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push((n.to_vec(), ent.file_type()));
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn err(what: &'static str, path: &[u8], errno: Errno) -> TreeError {
    TreeError { what, path: path.to_vec(), errno }
}

/// Removes `path` and, if it is a directory, everything below it, without
/// following symlinks: what `std::fs::remove_dir_all` does, for trees of
/// any depth. A missing `path` is a `NotFound` error, as with std.
pub fn remove_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let name = path.file_name().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let pfd = rfs::open(parent, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let st = rfs::statat(&pfd, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        remove_at(pfd.as_fd(), name.as_bytes()).map_err(io::Error::from)
    } else {
        Ok(rfs::unlinkat(&pfd, name, AtFlags::empty())?)
    }
}

/// [`remove_all`] that leaves a missing path alone.
pub fn remove_all_if_present(path: impl AsRef<Path>) -> io::Result<()> {
    match remove_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A directory being emptied.
struct RmFrame {
    fd: OwnedFd,
    name: Vec<u8>,
    subdirs: Vec<Vec<u8>>,
}

/// Removes the directory `name` in `parent` and everything in it, without
/// following symlinks and with a bounded number of fds open.
pub fn remove_at(parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), TreeError> {
    let fd = rfs::openat(parent, name, DIR_FLAGS, Mode::empty()).map_err(|e| err("open directory", name, e))?;
    let subdirs = clear(fd.as_fd(), name)?;
    let mut frames = vec![RmFrame { fd, name: name.to_vec(), subdirs }];
    let mut moved = 0u64;
    while let Some(top) = frames.last_mut() {
        let Some(child) = top.subdirs.pop() else {
            let done = frames.pop().into_iter().next();
            if let Some(done) = done {
                drop(done.fd);
                let pfd = frames.last().map_or(parent, |f| f.fd.as_fd());
                match rfs::unlinkat(pfd, done.name.as_slice(), AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(err("remove directory", &done.name, e)),
                }
            }
            continue;
        };
        if frames.len() >= REMOVE_DEPTH {
            // Too deep to hold open: move it right under the top, where it
            // is shallow, and empty it from there.
            let (first, rest) = frames.split_at_mut(1);
            let from = rest.last().map_or(first[0].fd.as_fd(), |f| f.fd.as_fd());
            loop {
                let tmp = format!(".berth-rm-{moved}").into_bytes();
                moved += 1;
                match rfs::renameat_with(from, child.as_slice(), &first[0].fd, tmp.as_slice(), RenameFlags::NOREPLACE) {
                    Ok(()) => {
                        first[0].subdirs.push(tmp);
                        break;
                    }
                    Err(Errno::EXIST) => continue,
                    Err(Errno::NOENT) => break,
                    Err(e) => return Err(err("move directory up", &child, e)),
                }
            }
            continue;
        }
        let Some(top) = frames.last() else { break };
        let fd = match rfs::openat(&top.fd, child.as_slice(), DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => continue,
            Err(Errno::NOTDIR | Errno::LOOP) => {
                rfs::unlinkat(&top.fd, child.as_slice(), AtFlags::empty()).map_err(|e| err("remove", &child, e))?;
                continue;
            }
            Err(e) => return Err(err("open directory", &child, e)),
        };
        let subdirs = clear(fd.as_fd(), &child)?;
        frames.push(RmFrame { fd, name: child, subdirs });
    }
    Ok(())
}

/// Unlinks every non-directory in `dir`; returns the subdirectories.
fn clear(dir: BorrowedFd<'_>, shown: &[u8]) -> Result<Vec<Vec<u8>>, TreeError> {
    let mut subdirs = Vec::new();
    for (name, ftype) in list(dir, shown)? {
        let is_dir = match ftype {
            FileType::Directory => true,
            FileType::Unknown => match rfs::statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode) == FileType::Directory,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(err("stat", &name, e)),
            },
            _ => false,
        };
        if is_dir {
            subdirs.push(name);
            continue;
        }
        match rfs::unlinkat(dir, name.as_slice(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(Errno::ISDIR) => subdirs.push(name),
            Err(e) => return Err(err("remove", &name, e)),
        }
    }
    Ok(subdirs)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// Makes `depth` nested directories `d` under `top`, a file `f` in
    /// each, and `bottom` at the bottom; returns nothing, keeps no fd.
    fn deep(top: &Path, depth: usize) {
        let mut cur = rfs::open(top, DIR_FLAGS, Mode::empty()).unwrap();
        for _ in 0..depth {
            rfs::mkdirat(&cur, "d", Mode::from_raw_mode(0o755)).unwrap();
            let f = rfs::openat(&cur, "f", OFlags::WRONLY | OFlags::CREATE, Mode::from_raw_mode(0o644)).unwrap();
            drop(f);
            cur = rfs::openat(&cur, "d", DIR_FLAGS, Mode::empty()).unwrap();
        }
        let f = rfs::openat(&cur, "bottom", OFlags::WRONLY | OFlags::CREATE, Mode::from_raw_mode(0o644)).unwrap();
        rustix::io::write(&f, b"here").unwrap();
    }

    fn open_fds() -> usize {
        fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn walks_and_removes_ten_thousand_levels() {
        // tmpfs when there is one: 20,000 creations on a disk take long.
        let t = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap();
        let top = t.path().join("top");
        fs::create_dir(&top).unwrap();
        deep(&top, 10_000);
        let before = open_fds();
        let mut seen = 0usize;
        let mut most_fds = 0usize;
        let mut bottom = Vec::new();
        let root = rfs::open(&top, DIR_FLAGS, Mode::empty()).unwrap();
        walk::<TreeError>(root, |e| {
            seen += 1;
            if seen.is_multiple_of(500) {
                most_fds = most_fds.max(open_fds());
            }
            if e.name == b"bottom" {
                bottom = e.path.to_vec();
            }
            if e.file_type == FileType::Directory {
                let st = rfs::statat(e.dir, e.name, AtFlags::SYMLINK_NOFOLLOW).unwrap();
                return Ok(Some((st.st_dev, st.st_ino)));
            }
            Ok(None)
        })
        .unwrap();
        assert_eq!(seen, 20_001, "every directory, every file and the bottom one");
        assert_eq!(bottom.len(), "d/".len() * 10_000 + "bottom".len());
        assert!(most_fds < before + 400, "fds stay bounded: {most_fds} open (from {before})");

        remove_all(&top).unwrap();
        assert!(!top.exists());
    }

    #[test]
    fn remove_all_takes_files_links_and_missing_paths_as_std_does() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("file"), b"x").unwrap();
        fs::create_dir(t.path().join("dir")).unwrap();
        fs::write(t.path().join("dir/inner"), b"y").unwrap();
        std::os::unix::fs::symlink(t.path().join("dir"), t.path().join("link")).unwrap();
        remove_all(t.path().join("link")).unwrap();
        assert!(t.path().join("dir/inner").exists(), "a symlink is removed, not followed");
        remove_all(t.path().join("file")).unwrap();
        remove_all(t.path().join("dir")).unwrap();
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);
        assert_eq!(remove_all(t.path().join("gone")).unwrap_err().kind(), io::ErrorKind::NotFound);
        remove_all_if_present(t.path().join("gone")).unwrap();
    }
}
