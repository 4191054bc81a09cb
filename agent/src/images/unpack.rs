//! Unpacks one layer (tar, tar+gzip or tar+zstd, told apart by magic bytes
//! whatever the media type says) into an empty snapshot directory, and
//! computes its diff ID (sha256 of the decompressed stream) on the way.
//!
//! A layer is untrusted input, so nothing here resolves a path the usual
//! way:
//! * entry paths lose a leading `/` or `./`; a `..` component is refused;
//! * the parent directory of every entry is opened with `openat2(2)` and
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`
//!   relative to the snapshot root fd, so a symlink the layer planted
//!   (absolute or `../..`) is never followed (the class of bug of
//!   CVE-2018-15664 and of the many "tar slip" CVEs);
//! * the entry itself is made with an `*at` call relative to that parent fd
//!   (`openat(O_CREAT|O_EXCL|O_NOFOLLOW)`, `mkdirat`, `symlinkat`,
//!   `mknodat`, `linkat`), and a hard link's target is resolved the same
//!   way inside the snapshot, so `/etc/passwd` means the snapshot's own;
//! * an existing non-directory in the way is unlinked, never written
//!   through.
//!
//! Owners are set before modes, because `chown(2)` clears setuid and setgid.
//! Directory times are set after all entries, because adding a child
//! changes the parent's mtime. OCI whiteouts become overlayfs ones
//! (`.wh.NAME` → a 0/0 character device, `.wh..wh..opq` →
//! `trusted.overlay.opaque=y`, see the kernel's `overlayfs.rst`); layers
//! may not set `trusted.overlay.*` themselves, since those xattrs steer
//! overlayfs (redirects, metacopy). The whole tree is flushed with one
//! `syncfs(2)` before the caller records the snapshot.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use super::ImageError;

/// What unpacking a layer found.
#[derive(Clone, Debug)]
pub struct Unpacked {
    /// `sha256:<hex>` of the decompressed tar stream.
    pub diff_id: String,
    /// Bytes of regular files written.
    pub size: u64,
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Tells by the first bytes of the blob.
    pub fn detect(head: &[u8]) -> Result<Self, &'static str> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Self::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Ok(Self::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Err("xz-compressed layers are not supported")
        } else {
            Ok(Self::None)
        }
    }

    /// Of a file.
    pub fn of_file(path: &Path) -> Result<Self, ImageError> {
        let mut head = [0u8; 6];
        let mut f = File::open(path).map_err(|e| ImageError::io(format!("open {}", path.display()), e))?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ImageError::io(format!("read {}", path.display()), e)),
            }
        }
        Self::detect(&head[..n]).map_err(|m| ImageError::Invalid(m.to_owned()))
    }

    /// The OCI layer media type for this compression.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Self::None => "application/vnd.oci.image.layer.v1.tar",
            Self::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Unpacks the layer blob at `blob` into the empty directory `dest`.
/// `label` names the layer in errors (`layer sha256:...`).
pub fn unpack_file(blob: &Path, dest: &Path, label: &str) -> Result<Unpacked, ImageError> {
    let file = File::open(blob).map_err(|e| ImageError::io(format!("open {label}"), e))?;
    unpack(file, dest, label)
}

/// Unpacks a layer stream into the empty directory `dest`.
pub fn unpack(reader: impl Read, dest: &Path, label: &str) -> Result<Unpacked, ImageError> {
    let mut input = BufReader::with_capacity(128 * 1024, reader);
    let head = input.fill_buf().map_err(|e| ImageError::io(format!("read {label}"), e))?;
    let decoder: Box<dyn Read> =
        match Compression::detect(head).map_err(|m| ImageError::Invalid(format!("{label}: {m}")))? {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| ImageError::io(format!("start zstd decoder for {label}"), e))?,
            ),
        };
    let mut stream = LayerStream { inner: decoder, hasher: Sha256::new(), count: 0, trailing_zeros: 0 };
    let root = rfs::open(dest, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| ImageError::io(format!("open {}", dest.display()), e.into()))?;
    let mut u = Unpacker { root, cache: None, label, dir_times: Vec::new(), size: 0, buf: vec![0u8; 128 * 1024] };
    {
        let mut archive = tar::Archive::new(&mut stream);
        let entries = archive.entries().map_err(|e| corrupt(label, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| corrupt(label, &e))?;
            u.entry(entry)?;
        }
    }
    // The diff ID covers the whole stream: end-of-archive blocks and the
    // padding after them too.
    io::copy(&mut stream, &mut io::sink()).map_err(|e| corrupt(label, &e))?;
    // POSIX ends an archive with two zero blocks; a stream cut at an entry
    // boundary has none, and the tar reader takes its EOF for the end.
    if stream.trailing_zeros < 512 {
        return Err(ImageError::Invalid(format!(
            "{label}: truncated tar archive (no end-of-archive marker after {} bytes)",
            stream.count
        )));
    }
    u.finish()?;
    rfs::syncfs(&u.root).map_err(|e| ImageError::io(format!("syncfs {label}"), e.into()))?;
    Ok(Unpacked { diff_id: format!("sha256:{}", hex::encode(stream.hasher.finalize())), size: u.size })
}

fn corrupt(label: &str, e: &io::Error) -> ImageError {
    ImageError::Invalid(format!("{label}: corrupt or truncated layer: {e}"))
}

/// The decompressed stream: hashed, counted, and watched for the zero
/// blocks that end a tar archive.
struct LayerStream<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    trailing_zeros: u64,
}

impl<R: Read> Read for LayerStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        self.hasher.update(data);
        self.count += n as u64;
        match data.iter().rposition(|&b| b != 0) {
            Some(i) => self.trailing_zeros = (n - i - 1) as u64,
            None => self.trailing_zeros += n as u64,
        }
        Ok(n)
    }
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS).union(ResolveFlags::NO_MAGICLINKS);
const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
/// Longest entry path accepted (`PATH_MAX`).
const PATH_MAX: usize = 4096;

/// Owner, mode, xattrs and times of one entry.
pub(crate) struct Attrs {
    pub(crate) uid: rfs::Uid,
    pub(crate) gid: rfs::Gid,
    pub(crate) mode: Mode,
    pub(crate) times: Timestamps,
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Unpacker<'l> {
    /// The snapshot root: every path is resolved beneath it.
    root: OwnedFd,
    /// The last parent directory opened (entries come grouped by
    /// directory), by its path relative to the root.
    cache: Option<(Vec<u8>, OwnedFd)>,
    label: &'l str,
    /// Directories whose times are set at the end.
    dir_times: Vec<(Vec<Vec<u8>>, Timestamps)>,
    size: u64,
    buf: Vec<u8>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ImageError> {
        let label = self.label;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let comps = split_path(&raw_path).map_err(|m| ImageError::Invalid(format!("{label}: path {shown:?} {m}")))?;
        let attrs = read_attrs(&mut entry).map_err(|e| corrupt(label, &e))?;

        let Some((name, parent)) = comps.split_last() else {
            // `./` or `/`: the layer's root directory itself.
            if kind != EntryType::Directory {
                return Err(ImageError::Invalid(format!(
                    "{label}: entry {shown:?} names the root but is not a directory"
                )));
            }
            let root = self.root.as_fd();
            set_owner_mode(root, &attrs).map_err(|e| io_err(label, &shown, "set owner", e))?;
            set_xattrs(Target::Fd(root), &attrs.xattrs, label, &shown)?;
            self.dir_times.push((Vec::new(), attrs.times));
            return Ok(());
        };

        let root = self.root.as_fd();
        let dir = cached_dir(&mut self.cache, root, parent, true).map_err(|e| path_err(label, &shown, e))?;

        // Whiteouts.
        if name.as_slice() == b".wh..wh..opq" {
            return rfs::fsetxattr(dir, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                .map_err(|e| io_err(label, &shown, "mark opaque", e));
        }
        if name.starts_with(b".wh..wh.") {
            // aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): no meaning
            // for overlayfs.
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(ImageError::Invalid(format!("{label}: invalid whiteout {shown:?}")));
            }
            let removed_dir = replace(dir, hidden, || {
                rfs::mknodat(dir, hidden, FileType::CharacterDevice, Mode::empty(), rfs::makedev(0, 0))
            })
            .map_err(|e| io_err(label, &shown, "create whiteout", e))?;
            rfs::chownat(dir, hidden, Some(attrs.uid), Some(attrs.gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io_err(label, &shown, "set owner", e))?;
            if removed_dir {
                self.cache = None;
            }
            return Ok(());
        }

        let mut removed_dir = false;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let (fd, removed) = replace_with(dir, name, || {
                    rfs::openat(
                        dir,
                        name.as_slice(),
                        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                })
                .map_err(|e| io_err(label, &shown, "create", e))?;
                removed_dir = removed;
                let mut file = File::from(fd);
                let want = entry.size();
                let mut copied = 0u64;
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(corrupt(label, &e)),
                    };
                    file.write_all(&self.buf[..n])
                        .map_err(|e| ImageError::io(format!("{label}: write {shown:?}"), e))?;
                    copied += n as u64;
                }
                if copied != want {
                    return Err(ImageError::Invalid(format!(
                        "{label}: corrupt or truncated layer: {shown:?} has {copied} of {want} bytes"
                    )));
                }
                set_owner_mode(file.as_fd(), &attrs).map_err(|e| io_err(label, &shown, "set owner and mode", e))?;
                set_xattrs(Target::Fd(file.as_fd()), &attrs.xattrs, label, &shown)?;
                rfs::futimens(&file, &attrs.times).map_err(|e| io_err(label, &shown, "set times", e))?;
                self.size += copied;
            }
            EntryType::Directory => {
                match rfs::mkdirat(dir, name.as_slice(), Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let st = rfs::statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(|e| io_err(label, &shown, "stat", e))?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                            rfs::unlinkat(dir, name.as_slice(), AtFlags::empty())
                                .and_then(|()| rfs::mkdirat(dir, name.as_slice(), Mode::from_raw_mode(0o700)))
                                .map_err(|e| io_err(label, &shown, "replace with a directory", e))?;
                        }
                    }
                    Err(e) => return Err(io_err(label, &shown, "create directory", e)),
                }
                let fd = rfs::openat(dir, name.as_slice(), DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
                    .map_err(|e| io_err(label, &shown, "open directory", e))?;
                set_owner_mode(fd.as_fd(), &attrs).map_err(|e| io_err(label, &shown, "set owner and mode", e))?;
                set_xattrs(Target::Fd(fd.as_fd()), &attrs.xattrs, label, &shown)?;
                self.dir_times.push((comps.clone(), attrs.times));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ImageError::Invalid(format!("{label}: symlink {shown:?} has no target")))?
                    .into_owned();
                removed_dir = replace(dir, name, || rfs::symlinkat(target.as_slice(), dir, name.as_slice()))
                    .map_err(|e| io_err(label, &shown, "create symlink", e))?;
                node_attrs(label, dir, name, &attrs, false, &shown)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let target_shown = String::from_utf8_lossy(&target).into_owned();
                let tcomps = split_path(&target).map_err(|m| {
                    ImageError::Invalid(format!("{label}: hard link {shown:?}: target {target_shown:?} {m}"))
                })?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(ImageError::Invalid(format!("{label}: hard link {shown:?} has no target")));
                };
                let not_in_layer = || {
                    ImageError::Invalid(format!(
                        "{label}: hard link {shown:?} points to {target_shown:?}, which is not in the layer"
                    ))
                };
                let tdir_owned = match open_beneath(root, tparent, false) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Err(not_in_layer()),
                    Err(e) => return Err(path_err(label, &target_shown, e)),
                };
                let tdir = tdir_owned.as_ref().map_or(root, |f| f.as_fd());
                removed_dir =
                    replace(dir, name, || rfs::linkat(tdir, tname.as_slice(), dir, name.as_slice(), AtFlags::empty()))
                        .map_err(|e| match e {
                            Errno::NOENT => not_in_layer(),
                            Errno::PERM => ImageError::Invalid(format!(
                                "{label}: hard link {shown:?} points to {target_shown:?}, which is a directory"
                            )),
                            e => io_err(label, &shown, "create hard link", e),
                        })?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ftype, dev) = match kind {
                    EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let h = entry.header();
                        let major = h.device_major().map_err(|e| corrupt(label, &e))?;
                        let minor = h.device_minor().map_err(|e| corrupt(label, &e))?;
                        let dev = rfs::makedev(major.unwrap_or(0), minor.unwrap_or(0));
                        if kind == EntryType::Char {
                            (FileType::CharacterDevice, dev)
                        } else {
                            (FileType::BlockDevice, dev)
                        }
                    }
                };
                removed_dir = replace(dir, name, || rfs::mknodat(dir, name.as_slice(), ftype, Mode::empty(), dev))
                    .map_err(|e| io_err(label, &shown, "create node", e))?;
                node_attrs(label, dir, name, &attrs, true, &shown)?;
            }
            other => {
                tracing::warn!(layer = label, path = %shown, kind = ?other, "skipping tar entry of unsupported type");
            }
        }
        if removed_dir {
            self.cache = None;
        }
        Ok(())
    }

    /// Sets directory times once every entry is in place. A directory that
    /// a later entry replaced is skipped.
    fn finish(&mut self) -> Result<(), ImageError> {
        let root = self.root.as_fd();
        for (comps, times) in &self.dir_times {
            let shown = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
            let result = match comps.split_last() {
                None => rfs::futimens(root, times),
                Some((name, parent)) => match open_beneath(root, parent, false) {
                    Ok(fd) => rfs::utimensat(
                        fd.as_ref().map_or(root, |f| f.as_fd()),
                        name.as_slice(),
                        times,
                        AtFlags::SYMLINK_NOFOLLOW,
                    ),
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) | Err(Errno::NOENT) | Err(Errno::LOOP) | Err(Errno::NOTDIR) => {}
                Err(e) => return Err(io_err(self.label, &shown, "set directory times", e)),
            }
        }
        Ok(())
    }
}

/// Owner, mode (unless a symlink), xattrs and times of an entry that
/// cannot be opened for writing (symlink, device, fifo).
fn node_attrs(
    label: &str,
    dir: BorrowedFd<'_>,
    name: &[u8],
    attrs: &Attrs,
    chmod: bool,
    shown: &str,
) -> Result<(), ImageError> {
    rfs::chownat(dir, name, Some(attrs.uid), Some(attrs.gid), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(label, shown, "set owner", e))?;
    if chmod {
        // The node was just made by mknodat in a directory only this
        // process writes to, so the name cannot have become a symlink.
        rfs::chmodat(dir, name, attrs.mode, AtFlags::empty()).map_err(|e| io_err(label, shown, "set mode", e))?;
    }
    if !attrs.xattrs.is_empty() {
        // No fd can carry xattrs for these; go through the parent's fd
        // in /proc, whose last component lsetxattr does not follow.
        let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        p.extend_from_slice(name);
        set_xattrs(Target::Path(&OsString::from_vec(p)), &attrs.xattrs, label, shown)?;
    }
    rfs::utimensat(dir, name, &attrs.times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_err(label, shown, "set times", e))
}

/// The entry path as components: no empty or `.` ones, no `..`.
pub(crate) fn split_path(raw: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    if raw.len() > PATH_MAX {
        return Err("is too long");
    }
    if raw.contains(&0) {
        return Err("contains a NUL byte");
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("contains \"..\""),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// The parent directory of an entry, from the one-entry cache or opened
/// (and, with `create`, made) beneath the root.
fn cached_dir<'a>(
    cache: &'a mut Option<(Vec<u8>, OwnedFd)>,
    root: BorrowedFd<'a>,
    comps: &[Vec<u8>],
    create: bool,
) -> Result<BorrowedFd<'a>, Errno> {
    if comps.is_empty() {
        return Ok(root);
    }
    let key = comps.join(&b'/');
    if !matches!(cache, Some((k, _)) if *k == key) {
        let fd = open_beneath(root, comps, create)?.ok_or(Errno::INVAL)?;
        *cache = Some((key, fd));
    }
    let cache: &'a Option<(Vec<u8>, OwnedFd)> = cache;
    match cache {
        Some((_, fd)) => Ok(fd.as_fd()),
        None => Err(Errno::INVAL),
    }
}

/// Opens the directory `comps` beneath `root` without following any
/// symlink; `None` stands for the root itself. With `create`, missing
/// directories are made (mode 0755, root-owned), one component at a time,
/// each step again refusing symlinks.
fn open_beneath(root: BorrowedFd<'_>, comps: &[Vec<u8>], create: bool) -> Result<Option<OwnedFd>, Errno> {
    if comps.is_empty() {
        return Ok(None);
    }
    let joined = comps.join(&b'/');
    match rfs::openat2(root, joined.as_slice(), DIR_FLAGS, Mode::empty(), RESOLVE) {
        Ok(fd) => return Ok(Some(fd)),
        Err(Errno::NOENT) if create => {}
        Err(e) => return Err(e),
    }
    let mut cur: Option<OwnedFd> = None;
    for c in comps {
        let base = cur.as_ref().map_or(root, |f| f.as_fd());
        let fd = match rfs::openat2(base, c.as_slice(), DIR_FLAGS, Mode::empty(), RESOLVE) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match rfs::mkdirat(base, c.as_slice(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                let fd = rfs::openat2(base, c.as_slice(), DIR_FLAGS, Mode::empty(), RESOLVE)?;
                // mkdirat obeys the umask; implied directories are 0755.
                rfs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
                fd
            }
            Err(e) => return Err(e),
        };
        cur = Some(fd);
    }
    Ok(cur)
}

/// Runs `make`; if the name is taken, removes what is there (a whole tree
/// if it is a directory) and runs it again. Returns whether a directory
/// was removed.
pub(crate) fn replace(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mut make: impl FnMut() -> Result<(), Errno>,
) -> Result<bool, Errno> {
    replace_with(dir, name, &mut make).map(|((), removed)| removed)
}

pub(crate) fn replace_with<T>(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mut make: impl FnMut() -> Result<T, Errno>,
) -> Result<(T, bool), Errno> {
    match make() {
        Ok(t) => return Ok((t, false)),
        Err(Errno::EXIST) => {}
        Err(e) => return Err(e),
    }
    let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    if is_dir {
        remove_tree(dir, name)?;
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())?;
    }
    make().map(|t| (t, is_dir))
}

/// Removes the directory `name` under `parent` and everything in it,
/// without following symlinks.
fn remove_tree(parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let fd = rfs::openat(parent, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
    let mut children = Vec::new();
    {
        let mut d = rfs::Dir::read_from(&fd)?;
        while let Some(ent) = d.read() {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                children.push((n.to_vec(), ent.file_type()));
            }
        }
    }
    for (child, ftype) in children {
        let is_dir = match ftype {
            FileType::Directory => true,
            FileType::Unknown => {
                let st = rfs::statat(&fd, child.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
                FileType::from_raw_mode(st.st_mode) == FileType::Directory
            }
            _ => false,
        };
        if is_dir {
            remove_tree(fd.as_fd(), &child)?;
        } else {
            rfs::unlinkat(&fd, child.as_slice(), AtFlags::empty())?;
        }
    }
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

fn set_owner_mode(fd: BorrowedFd<'_>, attrs: &Attrs) -> Result<(), Errno> {
    rfs::fchown(fd, Some(attrs.uid), Some(attrs.gid))?;
    rfs::fchmod(fd, attrs.mode)
}

enum Target<'a> {
    Fd(BorrowedFd<'a>),
    Path(&'a std::ffi::OsStr),
}

fn set_xattrs(target: Target<'_>, xattrs: &[(Vec<u8>, Vec<u8>)], label: &str, shown: &str) -> Result<(), ImageError> {
    for (key, value) in xattrs {
        let key_shown = String::from_utf8_lossy(key);
        if key.starts_with(b"trusted.overlay.") {
            tracing::warn!(layer = label, path = shown, xattr = %key_shown, "ignoring overlayfs xattr set by a layer");
            continue;
        }
        let result = match target {
            Target::Fd(fd) => rfs::fsetxattr(fd, key.as_slice(), value, XattrFlags::empty()),
            Target::Path(p) => rfs::lsetxattr(p, key.as_slice(), value, XattrFlags::empty()),
        };
        match result {
            Ok(()) => {}
            // The filesystem has no xattrs of that namespace, or (user.*
            // on a symlink or device node) the kernel forbids them there:
            // Docker and containerd skip those too.
            Err(Errno::NOTSUP) | Err(Errno::PERM) => {
                tracing::warn!(layer = label, path = shown, xattr = %key_shown, "xattr not supported here, skipped");
            }
            Err(e) => return Err(io_err(label, shown, &format!("set xattr {key_shown}"), e)),
        }
    }
    Ok(())
}

/// Owner, mode, times and xattrs from the header and its PAX records
/// (the tar crate already applies PAX `uid`/`gid`).
pub(crate) fn read_attrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Attrs> {
    let mut xattrs = Vec::new();
    let mut mtime = None;
    let mut atime = None;
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                if name.is_empty() || name.contains(&0) {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "invalid xattr name"));
                }
                xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
            } else if key == b"mtime" {
                mtime = parse_pax_time(ext.value_bytes());
            } else if key == b"atime" {
                atime = parse_pax_time(ext.value_bytes());
            }
        }
    }
    let h = entry.header();
    let id = |v: u64, what: &str| {
        u32::try_from(v)
            .ok()
            .filter(|&v| v != u32::MAX)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{what} {v} out of range")))
    };
    let uid = rfs::Uid::from_raw(id(h.uid()?, "uid")?);
    let gid = rfs::Gid::from_raw(id(h.gid()?, "gid")?);
    let mode = Mode::from_raw_mode(h.mode()? & 0o7777);
    let mtime = match mtime {
        Some(t) => t,
        None => Timespec { tv_sec: i64::try_from(h.mtime()?).unwrap_or(i64::MAX), tv_nsec: 0 },
    };
    let atime = atime.unwrap_or(mtime);
    Ok(Attrs { uid, gid, mode, times: Timestamps { last_access: atime, last_modification: mtime }, xattrs })
}

/// A PAX time: decimal seconds with an optional fraction.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
    }
    if secs < 0 && nanos > 0 {
        // -1.25 is 1.25 s before the epoch: -2 s + 0.75 s.
        return Some(Timespec { tv_sec: secs - 1, tv_nsec: (1_000_000_000 - nanos) as _ });
    }
    Some(Timespec { tv_sec: secs, tv_nsec: nanos as _ })
}

fn path_err(label: &str, shown: &str, e: Errno) -> ImageError {
    match e {
        Errno::LOOP => ImageError::Invalid(format!("{label}: path \"{shown}\" goes through a symlink")),
        Errno::XDEV => ImageError::Invalid(format!("{label}: path \"{shown}\" escapes the layer")),
        Errno::NOTDIR => {
            ImageError::Invalid(format!("{label}: path \"{shown}\" goes through something that is not a directory"))
        }
        Errno::NAMETOOLONG => ImageError::Invalid(format!("{label}: path \"{shown}\" is too long")),
        e => io_err(label, shown, "open parent directory", e),
    }
}

fn io_err(label: &str, shown: &str, what: &str, e: Errno) -> ImageError {
    match e {
        Errno::NAMETOOLONG => ImageError::Invalid(format!("{label}: path \"{shown}\" is too long")),
        e => ImageError::io(format!("{label}: {what} \"{shown}\""), e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use tar::EntryType;

    use super::super::store::digest_of;
    use super::super::testutil::{entries, gzip, zstd, Layer};
    use super::*;

    /// A temp dir with an empty `snap/fs` to unpack into.
    fn target() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let fs_dir = t.path().join("snap/fs");
        fs::create_dir_all(&fs_dir).unwrap();
        (t, fs_dir)
    }

    use std::path::PathBuf;

    fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 256];
        match rfs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    fn full_layer() -> Vec<u8> {
        let mut l = Layer::new();
        l.raw(EntryType::Directory, "./", "", b"", 0o755, 0, 0, 1_000_000)
            .dir("etc/", 0o755)
            .pax(&[("SCHILY.xattr.user.berth", b"yes"), ("mtime", b"1500000000.25")])
            .raw(EntryType::Regular, "etc/hostname", "", b"berth\n", 0o640, 1234, 5678, 1_500_000)
            .raw(EntryType::Directory, "bin", "", b"", 0o755, 0, 0, 1_000_000)
            .raw(EntryType::Regular, "bin/su", "", b"#!su", 0o4755, 0, 0, 1_000_000)
            .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
            .hardlink("etc/hostname.link", "/etc/hostname")
            .device("dev/null", EntryType::Char, 1, 3)
            .raw(EntryType::Fifo, "run/fifo", "", b"", 0o600, 0, 0, 1_000_000)
            .dir("var/", 0o755)
            .file("var/.wh.cache", b"")
            .dir("opt/", 0o755)
            .file("opt/.wh..wh..opq", b"")
            .file("opt/kept", b"k")
            .raw(EntryType::Directory, "tmp/", "", b"", 0o1777, 0, 0, 1_000_000)
            .file("./usr/bin/tool", b"tool")
            .file("a/b/c/deep", b"deep");
        l.finish()
    }

    #[test]
    fn unpacks_every_kind_of_entry() {
        let (_t, root) = target();
        let tar = full_layer();
        let u = unpack(&tar[..], &root, "layer test").unwrap();
        assert_eq!(u.diff_id, digest_of(&tar));
        assert_eq!(u.size, (6 + 4 + 1 + 4 + 4) as u64);

        let host = root.join("etc/hostname");
        assert_eq!(fs::read(&host).unwrap(), b"berth\n");
        let m = fs::symlink_metadata(&host).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o640));
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 250_000_000));
        assert_eq!(xattr(&host, "user.berth").as_deref(), Some(&b"yes"[..]));

        let su = fs::symlink_metadata(root.join("bin/su")).unwrap();
        assert_eq!(su.mode() & 0o7777, 0o4755, "setuid kept");

        assert_eq!(fs::read_link(root.join("etc/localtime")).unwrap(), Path::new("/usr/share/zoneinfo/UTC"));
        let link = fs::symlink_metadata(root.join("etc/hostname.link")).unwrap();
        assert_eq!(link.ino(), m.ino(), "hard link shares the inode");
        assert_eq!(link.nlink(), 2);

        let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!((rfs::major(null.rdev()), rfs::minor(null.rdev())), (1, 3));
        assert_eq!(null.mode() & 0o7777, 0o666);
        assert!(fs::symlink_metadata(root.join("run/fifo")).unwrap().file_type().is_fifo());

        let wh = fs::symlink_metadata(root.join("var/cache")).unwrap();
        assert!(wh.file_type().is_char_device(), "whiteout is a char device");
        assert_eq!(wh.rdev(), 0, "whiteout is 0/0");
        assert!(!root.join("var/.wh.cache").exists());
        assert_eq!(xattr(&root.join("opt"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
        assert_eq!(entries(&root.join("opt")), vec!["kept"]);

        let tmp = fs::symlink_metadata(root.join("tmp")).unwrap();
        assert_eq!(tmp.mode() & 0o7777, 0o1777, "sticky bit kept");
        assert_eq!(fs::read(root.join("usr/bin/tool")).unwrap(), b"tool");
        assert_eq!(fs::read(root.join("a/b/c/deep")).unwrap(), b"deep");
        let implied = fs::symlink_metadata(root.join("a/b")).unwrap();
        assert_eq!(implied.mode() & 0o7777, 0o755);

        // Directory times are set after their contents were written.
        let etc = fs::symlink_metadata(root.join("etc")).unwrap();
        assert_eq!(etc.mtime(), 1_000_000);
        assert_eq!(fs::symlink_metadata(&root).unwrap().mtime(), 1_000_000);
    }

    #[test]
    fn compression_is_told_by_magic() {
        let tar = full_layer();
        for blob in [gzip(&tar), zstd(&tar)] {
            let (_t, root) = target();
            let u = unpack(&blob[..], &root, "layer test").unwrap();
            assert_eq!(u.diff_id, digest_of(&tar));
            assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"berth\n");
        }
        let (_t, root) = target();
        let err = unpack(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2][..], &root, "layer x").unwrap_err();
        assert_eq!(err.to_string(), "layer x: xz-compressed layers are not supported");
    }

    #[test]
    fn replaces_non_directories_without_following_them() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("snap/fs");
        fs::create_dir_all(&root).unwrap();
        let outside = t.path().join("outside");
        let mut l = Layer::new();
        l.symlink("link", outside.to_str().unwrap())
            .file("link", b"inside")
            .file("d/x", b"x")
            .symlink("d", "/")
            .dir("f", 0o755)
            .file("f", b"file now");
        let tar = l.finish();
        unpack(&tar[..], &root, "layer test").unwrap();
        assert!(!outside.exists(), "the symlink was not followed");
        assert_eq!(fs::read(root.join("link")).unwrap(), b"inside");
        assert_eq!(fs::read_link(root.join("d")).unwrap(), Path::new("/"));
        assert_eq!(fs::read(root.join("f")).unwrap(), b"file now");
        assert_eq!(entries(t.path()), vec!["snap"]);
    }

    /// Hostile layers: each is refused with a clear message, and nothing
    /// appears outside the snapshot.
    #[test]
    fn hostile_layers_are_refused() {
        let evil = format!("berth-unpack-test-evil-{}", std::process::id());
        let cases: Vec<(&str, Vec<u8>, String)> = vec![
            ("dotdot", Layer::new().file("../escape", b"x").finish(), "path \"../escape\" contains \"..\"".into()),
            (
                "absolute dotdot",
                Layer::new().file("/abs/../../x", b"x").finish(),
                "path \"/abs/../../x\" contains \"..\"".into(),
            ),
            (
                "absolute symlink",
                Layer::new().symlink("etc", "/etc").file(&format!("etc/{evil}"), b"x").finish(),
                format!("path \"etc/{evil}\" goes through a symlink"),
            ),
            (
                "relative symlink",
                Layer::new().dir("a/", 0o755).symlink("a/up", "../..").file("a/up/evil", b"x").finish(),
                "path \"a/up/evil\" goes through a symlink".into(),
            ),
            (
                "hard link to the host",
                Layer::new().hardlink("passwd", "/etc/passwd").finish(),
                "hard link \"passwd\" points to \"/etc/passwd\", which is not in the layer".into(),
            ),
            (
                "hard link through a symlink",
                Layer::new().symlink("etc", "/etc").hardlink("passwd", "etc/passwd").finish(),
                "path \"etc/passwd\" goes through a symlink".into(),
            ),
            (
                "hard link with dotdot",
                Layer::new().hardlink("passwd", "../../etc/passwd").finish(),
                "target \"../../etc/passwd\" contains \"..\"".into(),
            ),
            (
                "truncated gzip",
                {
                    let gz = gzip(&full_layer());
                    gz[..gz.len() / 2].to_vec()
                },
                "corrupt or truncated layer".into(),
            ),
            (
                "corrupt gzip",
                {
                    let mut gz = gzip(&full_layer());
                    let n = gz.len();
                    gz[n / 2] ^= 0xff;
                    gz[n / 2 + 1] ^= 0xff;
                    gz
                },
                "corrupt or truncated layer".into(),
            ),
            (
                "truncated zstd",
                {
                    let z = zstd(&full_layer());
                    z[..z.len() / 2].to_vec()
                },
                "corrupt or truncated layer".into(),
            ),
            (
                "tar cut inside a file",
                {
                    let tar = Layer::new().file("big", &[7u8; 5000]).finish();
                    tar[..2048].to_vec()
                },
                "corrupt or truncated layer".into(),
            ),
            (
                "tar cut between entries",
                {
                    let tar = Layer::new().file("a", b"a").file("b", b"b").finish();
                    tar[..1024].to_vec()
                },
                "truncated tar archive".into(),
            ),
        ];
        for (what, tar, want) in cases {
            let t = tempfile::tempdir().unwrap();
            let root = t.path().join("snap/fs");
            fs::create_dir_all(&root).unwrap();
            let err = unpack(&tar[..], &root, "layer sha256:test").unwrap_err();
            assert!(matches!(err, ImageError::Invalid(_)), "{what}: {err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with("layer sha256:test: ") && msg.contains(&want), "{what}: {msg}");
            assert_eq!(entries(t.path()), vec!["snap"], "{what}");
            assert_eq!(entries(&t.path().join("snap")), vec!["fs"], "{what}");
            assert!(!Path::new("/etc").join(&evil).exists(), "{what}");
            assert!(!Path::new("/evil").exists(), "{what}");
        }
    }
}
