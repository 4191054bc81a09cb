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

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use super::ImageError;
use crate::tree;

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

/// How far one layer may expand when it is unpacked (`[images]` in
/// berthd's config, `docs/choices.md`). A few kilobytes of gzip, zstd or
/// GNU sparse map can describe terabytes; these bound what lands on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a layer may expand to: its decompressed tar stream, or
    /// the sizes of its files (holes included), whichever is larger.
    pub max_layer_bytes: u64,
    /// Once a layer has written more than [`RATIO_FLOOR`] bytes of data
    /// (holes excluded), at most this many per byte of its blob; 0: no
    /// ratio.
    pub max_expansion_ratio: u64,
}

/// Bytes of data every layer may write whatever its compression ratio.
pub const RATIO_FLOOR: u64 = 1 << 30;

impl Default for Limits {
    fn default() -> Self {
        Self { max_layer_bytes: 64 << 30, max_expansion_ratio: 1000 }
    }
}

/// Unpacks the layer blob at `blob` into the empty directory `dest`.
/// `label` names the layer in errors (`layer sha256:...`).
pub fn unpack_file(blob: &Path, dest: &Path, label: &str, limits: Limits) -> Result<Unpacked, ImageError> {
    let file = File::open(blob).map_err(|e| ImageError::io(format!("open {label}"), e))?;
    unpack_limited(file, dest, label, limits)
}

/// Unpacks a layer stream into the empty directory `dest`, with the
/// default [`Limits`].
#[cfg(test)]
pub fn unpack(reader: impl Read, dest: &Path, label: &str) -> Result<Unpacked, ImageError> {
    unpack_limited(reader, dest, label, Limits::default())
}

/// Unpacks a layer stream into the empty directory `dest`.
pub fn unpack_limited(reader: impl Read, dest: &Path, label: &str, limits: Limits) -> Result<Unpacked, ImageError> {
    let counts = Rc::new(Counts::default());
    let reader = Counted { inner: reader, counts: counts.clone() };
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
    let mut stream = LayerStream { inner: decoder, hasher: Sha256::new(), counts: counts.clone(), trailing_zeros: 0 };
    let root = rfs::open(dest, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| ImageError::io(format!("open {}", dest.display()), e.into()))?;
    let mut u = Unpacker {
        root,
        cursor: Cursor::default(),
        label,
        dir_times: HashMap::new(),
        root_times: None,
        size: 0,
        written: 0,
        limits,
        counts: counts.clone(),
        buf: vec![0u8; 128 * 1024],
    };
    {
        let mut archive = tar::Archive::new(&mut stream);
        let entries = archive.entries().map_err(|e| corrupt(label, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| corrupt(label, &e))?;
            u.check_limits(0)?;
            u.entry(entry)?;
        }
    }
    // The diff ID covers the whole stream: end-of-archive blocks and the
    // padding after them too.
    io::copy(&mut stream, &mut io::sink()).map_err(|e| corrupt(label, &e))?;
    u.check_limits(0)?;
    // POSIX ends an archive with two zero blocks; a stream cut at an entry
    // boundary has none, and the tar reader takes its EOF for the end.
    if stream.trailing_zeros < 512 {
        return Err(ImageError::Invalid(format!(
            "{label}: truncated tar archive (no end-of-archive marker after {} bytes)",
            counts.tar.get()
        )));
    }
    u.finish()?;
    rfs::syncfs(&u.root).map_err(|e| ImageError::io(format!("syncfs {label}"), e.into()))?;
    Ok(Unpacked { diff_id: format!("sha256:{}", hex::encode(stream.hasher.finalize())), size: u.size })
}

/// Bytes read so far: of the blob, and of the tar stream decompressed.
#[derive(Default)]
struct Counts {
    blob: Cell<u64>,
    tar: Cell<u64>,
}

/// Counts the bytes of the blob as they are read.
struct Counted<R> {
    inner: R,
    counts: Rc<Counts>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counts.blob.set(self.counts.blob.get() + n as u64);
        Ok(n)
    }
}

fn corrupt(label: &str, e: &io::Error) -> ImageError {
    ImageError::Invalid(format!("{label}: corrupt or truncated layer: {e}"))
}

/// The decompressed stream: hashed, counted, and watched for the zero
/// blocks that end a tar archive.
struct LayerStream<R> {
    inner: R,
    hasher: Sha256,
    counts: Rc<Counts>,
    trailing_zeros: u64,
}

impl<R: Read> Read for LayerStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        self.hasher.update(data);
        self.counts.tar.set(self.counts.tar.get() + n as u64);
        match data.iter().rposition(|&b| b != 0) {
            Some(i) => self.trailing_zeros = (n - i - 1) as u64,
            None => self.trailing_zeros += n as u64,
        }
        Ok(n)
    }
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS).union(ResolveFlags::NO_MAGICLINKS);
const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
/// Longest path accepted where one path-based syscall takes it whole
/// (`PATH_MAX`): `cp` into a container.
const PATH_MAX: usize = 4096;
/// Longest entry path a layer may hold. Layers are unpacked fd by fd
/// (`Cursor`), so an entry may be deeper than `PATH_MAX`: a container can
/// make such a tree, and its commit must unpack again. 256 KiB is 10,000
/// levels of 25-byte names.
const MAX_ENTRY_PATH: usize = 256 * 1024;
/// Block size below which a run of zeros is written rather than skipped.
const HOLE_BLOCK: usize = 4096;

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
    /// The parent directory of the last entry, and checkpoints above it.
    cursor: Cursor,
    label: &'l str,
    /// Times of directories, by (device, inode), set once every entry is
    /// in place (adding a child changes its parent's mtime). By inode, not
    /// path: paths of a deep tree do not fit in memory many times over.
    dir_times: HashMap<(u64, u64), Timestamps>,
    root_times: Option<Timestamps>,
    /// Bytes of regular files, holes included.
    size: u64,
    /// Bytes of file data written, holes excluded.
    written: u64,
    limits: Limits,
    counts: Rc<Counts>,
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
        let shown = tree::shorten(shown.as_bytes());
        let comps = split_components(&raw_path, MAX_ENTRY_PATH)
            .map_err(|m| ImageError::Invalid(format!("{label}: path {shown:?} {m}")))?;
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
            self.root_times = Some(attrs.times);
            return Ok(());
        };

        let root = self.root.as_fd();
        self.cursor.open(root, parent).map_err(|e| path_err(label, &shown, e))?;
        for id in self.cursor.created.drain(..) {
            // A directory made here for the path is new: no times from an
            // earlier one with the same inode number apply to it.
            self.dir_times.remove(&id);
        }
        let dir = self.cursor.current(root);

        // Whiteouts.
        if *name == b".wh..wh..opq" {
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
                self.cursor.forget();
            }
            return Ok(());
        }

        let mut removed_dir = false;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let (fd, removed) = replace_with(dir, name, || {
                    rfs::openat(
                        dir,
                        *name,
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
                    self.check_limits(copied + n as u64)?;
                    self.written += write_sparse(&file, &self.buf[..n], copied)
                        .map_err(|e| ImageError::io(format!("{label}: write {shown:?}"), e))?;
                    copied += n as u64;
                }
                if copied != want {
                    return Err(ImageError::Invalid(format!(
                        "{label}: corrupt or truncated layer: {shown:?} has {copied} of {want} bytes"
                    )));
                }
                // Zeros skipped at the end are a hole the size must cover.
                file.set_len(copied).map_err(|e| ImageError::io(format!("{label}: write {shown:?}"), e))?;
                file.flush().map_err(|e| ImageError::io(format!("{label}: write {shown:?}"), e))?;
                set_owner_mode(file.as_fd(), &attrs).map_err(|e| io_err(label, &shown, "set owner and mode", e))?;
                set_xattrs(Target::Fd(file.as_fd()), &attrs.xattrs, label, &shown)?;
                rfs::futimens(&file, &attrs.times).map_err(|e| io_err(label, &shown, "set times", e))?;
                self.size += copied;
            }
            EntryType::Directory => {
                match rfs::mkdirat(dir, *name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let st = rfs::statat(dir, *name, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(|e| io_err(label, &shown, "stat", e))?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                            rfs::unlinkat(dir, *name, AtFlags::empty())
                                .and_then(|()| rfs::mkdirat(dir, *name, Mode::from_raw_mode(0o700)))
                                .map_err(|e| io_err(label, &shown, "replace with a directory", e))?;
                        }
                    }
                    Err(e) => return Err(io_err(label, &shown, "create directory", e)),
                }
                let fd = rfs::openat(dir, *name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
                    .map_err(|e| io_err(label, &shown, "open directory", e))?;
                set_owner_mode(fd.as_fd(), &attrs).map_err(|e| io_err(label, &shown, "set owner and mode", e))?;
                set_xattrs(Target::Fd(fd.as_fd()), &attrs.xattrs, label, &shown)?;
                let st = rfs::fstat(&fd).map_err(|e| io_err(label, &shown, "stat", e))?;
                self.dir_times.insert((st.st_dev, st.st_ino), attrs.times);
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ImageError::Invalid(format!("{label}: symlink {shown:?} has no target")))?
                    .into_owned();
                removed_dir = replace(dir, name, || rfs::symlinkat(target.as_slice(), dir, *name))
                    .map_err(|e| io_err(label, &shown, "create symlink", e))?;
                node_attrs(label, dir, name, &attrs, false, &shown)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let target_shown = String::from_utf8_lossy(&target).into_owned();
                let tcomps = split_components(&target, MAX_ENTRY_PATH).map_err(|m| {
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
                let tdir_owned = match open_beneath(root, tparent) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Err(not_in_layer()),
                    Err(e) => return Err(path_err(label, &target_shown, e)),
                };
                let tdir = tdir_owned.as_ref().map_or(root, |f| f.as_fd());
                removed_dir = replace(dir, name, || rfs::linkat(tdir, *tname, dir, *name, AtFlags::empty())).map_err(
                    |e| match e {
                        Errno::NOENT => not_in_layer(),
                        Errno::PERM => ImageError::Invalid(format!(
                            "{label}: hard link {shown:?} points to {target_shown:?}, which is a directory"
                        )),
                        e => io_err(label, &shown, "create hard link", e),
                    },
                )?;
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
                removed_dir = replace(dir, name, || rfs::mknodat(dir, *name, ftype, Mode::empty(), dev))
                    .map_err(|e| io_err(label, &shown, "create node", e))?;
                node_attrs(label, dir, name, &attrs, true, &shown)?;
            }
            other => {
                tracing::warn!(layer = label, path = %shown, kind = ?other, "skipping tar entry of unsupported type");
            }
        }
        if removed_dir {
            self.cursor.forget();
        }
        Ok(())
    }

    /// Sets directory times once every entry is in place, in one walk of
    /// the snapshot. A directory that a later entry replaced is gone, and
    /// so are its times.
    fn finish(&mut self) -> Result<(), ImageError> {
        let label = self.label;
        if !self.dir_times.is_empty() {
            let top = rfs::openat(&self.root, ".", DIR_FLAGS, Mode::empty())
                .map_err(|e| io_err(label, "/", "open the snapshot", e))?;
            let times = &self.dir_times;
            tree::walk::<ImageError>(top, |e| {
                if e.file_type != FileType::Directory && e.file_type != FileType::Unknown {
                    return Ok(None);
                }
                let shown = || tree::shorten(e.path);
                let st = rfs::statat(e.dir, e.name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|err| io_err(label, &shown(), "stat", err))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    return Ok(None);
                }
                if let Some(t) = times.get(&(st.st_dev, st.st_ino)) {
                    rfs::utimensat(e.dir, e.name, t, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|err| io_err(label, &shown(), "set directory times", err))?;
                }
                Ok(Some((st.st_dev, st.st_ino)))
            })?;
        }
        if let Some(t) = &self.root_times {
            rfs::futimens(&self.root, t).map_err(|e| io_err(label, "/", "set directory times", e))?;
        }
        Ok(())
    }

    /// Refuses a layer that expands past its limits; `pending` bytes of the
    /// current file are about to be counted.
    fn check_limits(&self, pending: u64) -> Result<(), ImageError> {
        let label = self.label;
        let max = self.limits.max_layer_bytes;
        let expanded = self.counts.tar.get().max(self.size + pending);
        if expanded > max {
            return Err(ImageError::Invalid(format!(
                "{label} expands past the limit of {max} bytes (max_layer_bytes in berthd's config)"
            )));
        }
        let ratio = self.limits.max_expansion_ratio;
        let blob = self.counts.blob.get().max(1);
        if ratio > 0 && self.written > RATIO_FLOOR && self.written / blob >= ratio {
            return Err(ImageError::Invalid(format!(
                "{label} expands to more than {ratio} times its compressed size ({} bytes written from {blob} \
                 bytes; max_expansion_ratio in berthd's config)",
                self.written
            )));
        }
        Ok(())
    }
}

/// Writes `data` at `offset` of a file that is new (so unwritten ranges
/// read as zeros), skipping whole blocks of zeros: a sparse file (a GNU
/// sparse entry, which the tar reader fills in with zeros, or a plain one
/// full of them) keeps its holes. Returns the bytes written.
fn write_sparse(file: &File, data: &[u8], offset: u64) -> io::Result<u64> {
    static ZEROS: [u8; HOLE_BLOCK] = [0; HOLE_BLOCK];
    // A slice comparison is a memcmp, fast in any build.
    let zero = |b: &[u8]| b == &ZEROS[..b.len()];
    let mut written = 0u64;
    let mut start = 0;
    while start < data.len() {
        let end = (start + HOLE_BLOCK).min(data.len());
        let block = &data[start..end];
        if !zero(block) {
            // Coalesce data blocks into one write.
            let mut stop = end;
            while stop < data.len() {
                let next = (stop + HOLE_BLOCK).min(data.len());
                if zero(&data[stop..next]) {
                    break;
                }
                stop = next;
            }
            file.write_all_at(&data[start..stop], offset + start as u64)?;
            written += (stop - start) as u64;
            start = stop;
            continue;
        }
        start = end;
    }
    Ok(written)
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

/// The entry path as components: no empty or `.` ones, no `..`; at most
/// `PATH_MAX` bytes.
pub(crate) fn split_path(raw: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    Ok(split_components(raw, PATH_MAX)?.into_iter().map(<[u8]>::to_vec).collect())
}

/// The components of a path of at most `max` bytes: no empty or `.` ones,
/// no `..`.
fn split_components(raw: &[u8], max: usize) -> Result<Vec<&[u8]>, &'static str> {
    if raw.len() > max {
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
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Directories a [`Cursor`] keeps open above the current one: every
/// `CHECKPOINT`-th level.
const CHECKPOINT: usize = 128;

/// The parent directory of the last entry, opened beneath the root, and
/// every `CHECKPOINT`-th directory above it. Entries come grouped by
/// directory and in walk order, so the next parent is nearly always the
/// same, a child of it, or an ancestor near a checkpoint: each is opened
/// from the closest open directory, never by a path from the root that
/// could pass `PATH_MAX`, and the fds held stay few (at most
/// `MAX_ENTRY_PATH / 2 / CHECKPOINT`).
#[derive(Default)]
struct Cursor {
    /// Components of the current directory.
    comps: Vec<Vec<u8>>,
    /// (depth, fd) of open directories on the way, deepest last; depth is
    /// the number of components.
    fds: Vec<(usize, OwnedFd)>,
    /// (device, inode) of directories made since last drained.
    created: Vec<(u64, u64)>,
}

impl Cursor {
    /// Opens (making what is missing) the directory `target` beneath
    /// `root`.
    fn open(&mut self, root: BorrowedFd<'_>, target: &[&[u8]]) -> Result<(), Errno> {
        if target.is_empty() {
            self.forget();
            return Ok(());
        }
        let same = self.comps.iter().zip(target).take_while(|(a, b)| a.as_slice() == **b).count();
        self.comps.truncate(same);
        while self.fds.last().is_some_and(|(d, _)| *d > same) {
            self.fds.pop();
        }
        let mut depth = self.fds.last().map_or(0, |(d, _)| *d);
        self.comps.truncate(depth);
        while depth < target.len() {
            // Up to the next checkpoint, or the target, in one openat2
            // when the directories exist.
            let stop = ((depth / CHECKPOINT + 1) * CHECKPOINT).min(target.len());
            let base = self.fds.last().map_or(root, |(_, f)| f.as_fd());
            let fd = match open_chunk(base, &target[depth..stop]) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => make_dirs(base, &target[depth..stop], &mut self.created)?,
                Err(e) => return Err(e),
            };
            self.comps.extend(target[depth..stop].iter().map(|c| c.to_vec()));
            // Only checkpoints and the target stay open.
            if self.fds.last().is_some_and(|(d, _)| *d == depth && !depth.is_multiple_of(CHECKPOINT)) {
                self.fds.pop();
            }
            self.fds.push((stop, fd));
            depth = stop;
        }
        Ok(())
    }

    /// The directory last opened (`root` when it was the root).
    fn current<'a>(&'a self, root: BorrowedFd<'a>) -> BorrowedFd<'a> {
        self.fds.last().map_or(root, |(_, f)| f.as_fd())
    }

    /// Drops every open directory: one of them may have been removed.
    fn forget(&mut self) {
        self.comps.clear();
        self.fds.clear();
    }
}

/// Opens `comps` beneath `base` in one `openat2`, or in pieces if their
/// path is longer than `PATH_MAX`; no symlink is followed.
fn open_chunk(base: BorrowedFd<'_>, comps: &[&[u8]]) -> Result<OwnedFd, Errno> {
    let mut cur: Option<OwnedFd> = None;
    let mut rest = comps;
    while !rest.is_empty() {
        let mut n = 0;
        let mut len = 0;
        while n < rest.len() && (n == 0 || len + rest[n].len() + 1 < PATH_MAX) {
            len += rest[n].len() + 1;
            n += 1;
        }
        let joined = rest[..n].join(&b'/');
        let dir = cur.as_ref().map_or(base, |f| f.as_fd());
        cur = Some(rfs::openat2(dir, joined.as_slice(), DIR_FLAGS, Mode::empty(), RESOLVE)?);
        rest = &rest[n..];
    }
    cur.ok_or(Errno::INVAL)
}

/// Opens `comps` beneath `base` one at a time, making missing directories
/// (mode 0755, root-owned), each step again refusing symlinks; records the
/// (device, inode) of each one made in `created`.
fn make_dirs(base: BorrowedFd<'_>, comps: &[&[u8]], created: &mut Vec<(u64, u64)>) -> Result<OwnedFd, Errno> {
    let mut cur: Option<OwnedFd> = None;
    for c in comps {
        let dir = cur.as_ref().map_or(base, |f| f.as_fd());
        let fd = match rfs::openat2(dir, *c, DIR_FLAGS, Mode::empty(), RESOLVE) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match rfs::mkdirat(dir, *c, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                let fd = rfs::openat2(dir, *c, DIR_FLAGS, Mode::empty(), RESOLVE)?;
                // mkdirat obeys the umask; implied directories are 0755.
                rfs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
                let st = rfs::fstat(&fd)?;
                created.push((st.st_dev, st.st_ino));
                fd
            }
            Err(e) => return Err(e),
        };
        cur = Some(fd);
    }
    cur.ok_or(Errno::INVAL)
}

/// Opens the existing directory `comps` beneath `root` without following
/// any symlink; `None` stands for the root itself.
fn open_beneath(root: BorrowedFd<'_>, comps: &[&[u8]]) -> Result<Option<OwnedFd>, Errno> {
    if comps.is_empty() {
        return Ok(None);
    }
    open_chunk(root, comps).map(Some)
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
        // Without recursion: the tree in the way may be of any depth.
        tree::remove_at(dir, name).map_err(|e| e.errno)?;
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())?;
    }
    make().map(|t| (t, is_dir))
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

    /// A GNU sparse entry of `real` bytes whose data are `chunks`.
    fn sparse_tar(real: u64, chunks: &[(u64, &[u8])]) -> Vec<u8> {
        let octal = |field: &mut [u8], n: u64| {
            field.copy_from_slice(format!("{:0w$o}\0", n, w = field.len() - 1).as_bytes());
        };
        let data: Vec<u8> = chunks.iter().flat_map(|c| c.1.iter().copied()).collect();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::GNUSparse);
        h.as_old_mut().name[..6].copy_from_slice(b"sparse");
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        h.set_size(data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        for (i, (off, bytes)) in chunks.iter().enumerate() {
            octal(&mut gnu.sparse[i].offset, *off);
            octal(&mut gnu.sparse[i].numbytes, bytes.len() as u64);
        }
        octal(&mut gnu.realsize, real);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(&data);
        out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
        out
    }

    #[test]
    fn sparse_files_keep_their_holes() {
        let (_t, root) = target();
        let real = 256u64 << 20;
        let tar = sparse_tar(real, &[(0, &[1u8; 512]), (real - 4096, &[2u8; 4096])]);
        let u = unpack(&tar[..], &root, "layer test").unwrap();
        assert_eq!(u.size, real);
        let m = fs::metadata(root.join("sparse")).unwrap();
        assert_eq!(m.len(), real);
        assert!(m.blocks() * 512 < 1 << 20, "{} bytes on disk", m.blocks() * 512);
        let data = fs::read(root.join("sparse")).unwrap();
        assert!(data[..512].iter().all(|&b| b == 1));
        assert!(data[512..(real - 4096) as usize].iter().all(|&b| b == 0));
        assert!(data[(real - 4096) as usize..].iter().all(|&b| b == 2));
    }

    #[test]
    fn layers_past_the_limits_are_refused() {
        let big = Layer::new().file("big", &vec![1u8; 3 << 20]).finish();
        let (_t, root) = target();
        let limits = Limits { max_layer_bytes: 1 << 20, max_expansion_ratio: 0 };
        let err = unpack_limited(&gzip(&big)[..], &root, "layer sha256:x", limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer sha256:x expands past the limit of 1048576 bytes (max_layer_bytes in berthd's config)"
        );
        // A sparse file counts with its holes.
        let (_t, root) = target();
        let err = unpack_limited(
            &sparse_tar(2 << 20, &[(0, &[1u8; 512]), ((2 << 20) - 512, &[2u8; 512])])[..],
            &root,
            "layer sha256:y",
            limits,
        )
        .unwrap_err();
        assert!(err.to_string().contains("expands past the limit of 1048576 bytes"), "{err}");
        // Within the limit: fine.
        let (_t, root) = target();
        unpack_limited(&big[..], &root, "layer z", Limits { max_layer_bytes: 4 << 20, ..limits }).unwrap();
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
