//! A container's writable layer (the overlayfs upper directory) as an OCI
//! layer: the inverse of `unpack`.
//!
//! The upper directory already is the diff, in overlayfs' own encoding
//! (kernel `overlayfs.rst`), so no merged view and no mount are needed:
//! * a 0/0 character device is a whiteout and becomes an empty `.wh.NAME`
//!   entry;
//! * a directory with `trusted.overlay.opaque=y` hid everything below it
//!   and gets a `.wh..wh..opq` entry right after its own;
//! * every other file, directory, symlink and device node is written as it
//!   is, with owner, mode, mtime and xattrs (`SCHILY.xattr.*` PAX records,
//!   as Docker and containerd write them), except the `trusted.overlay.*`
//!   ones, which are overlayfs' bookkeeping;
//! * a regular file seen a second time (same device and inode) becomes a
//!   tar hard link to the first path; sockets are skipped.
//!
//! Entries are written in name order, so the same tree gives the same tar.
//! The tar is gzip-compressed while it is written, and both digests (diff ID
//! of the tar, blob digest of the gzip stream) are computed on the way.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use tar::{EntryType, Header};

use super::store::HashingWriter;
use super::ImageError;
use crate::tree;

/// What writing a layer produced.
#[derive(Clone, Debug)]
pub struct LayerDiff {
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Hex digest of the gzip blob.
    pub blob_hex: String,
    /// Bytes of the gzip blob.
    pub blob_size: u64,
}

/// An xattr's name and value.
type Xattr = (Vec<u8>, Vec<u8>);

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// Writes `upper` as a gzip-compressed layer tar into `out`, fsyncs it and
/// returns its digests.
pub fn write_layer(upper: &Path, out: File) -> Result<LayerDiff, ImageError> {
    let blob = HashingWriter::new(out);
    let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::fast());
    let tar = HashingWriter::new(gz);
    let tar = write_tar(upper, tar)?;
    let (gz, diff_hex, _) = tar.finish();
    let blob = gz.finish().map_err(|e| ImageError::io("compress layer", e))?;
    let (file, blob_hex, blob_size) = blob.finish();
    file.sync_all().map_err(|e| ImageError::io("fsync layer blob", e))?;
    Ok(LayerDiff { diff_id: format!("sha256:{diff_hex}"), blob_hex, blob_size })
}

/// Writes `upper` as an uncompressed layer tar into `w` and returns `w`.
/// The tree is walked without recursion and with `*at` calls (`tree`), so
/// it may be of any depth, and paths of any length become GNU long names.
pub fn write_tar<W: Write>(upper: &Path, w: W) -> Result<W, ImageError> {
    let root = rfs::open(upper, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| ImageError::io(format!("open {}", upper.display()), e.into()))?;
    let mut walker = Walker { b: tar::Builder::new(w), links: HashMap::new() };
    tree::walk(root, |e| walker.entry(e))?;
    walker.b.into_inner().map_err(|e| ImageError::io("write layer tar", e))
}

impl From<tree::TreeError> for ImageError {
    fn from(e: tree::TreeError) -> Self {
        let context = format!("{} {}", e.what, e.shown());
        ImageError::io(context, e.errno.into())
    }
}

struct Walker<W: Write> {
    b: tar::Builder<W>,
    /// (device, inode) of regular files with several links → first path.
    links: HashMap<(u64, u64), Vec<u8>>,
}

fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

impl<W: Write> Walker<W> {
    /// Writes one entry; returns its identity when it is a directory to
    /// descend into.
    fn entry(&mut self, e: &tree::Entry<'_>) -> Result<Option<(u64, u64)>, ImageError> {
        let (dir, name, rel) = (e.dir, e.name, e.path);
        let io_err =
            |what: &str, err: Errno| ImageError::io(format!("{what} {}", tree::shorten(rel)), io::Error::from(err));
        let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed meanwhile (export of a running container).
            Err(Errno::NOENT) => return Ok(None),
            Err(err) => return Err(io_err("stat", err)),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        let parent = &rel[..rel.len() - name.len()];
        let mut h = header(&st);
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            let wh = [parent, b".wh.", name].concat();
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o600);
            self.append(&mut h, &wh, io::empty())?;
            return Ok(None);
        }
        if ft == FileType::Socket {
            tracing::debug!(path = %tree::shorten(rel), "socket skipped in layer");
            return Ok(None);
        }
        let (xattrs, opaque) = xattrs(dir, name).map_err(|err| io_err("read xattrs of", err))?;
        if !xattrs.is_empty() {
            self.pax(&xattrs)?;
        }
        match ft {
            FileType::Directory => {
                h.set_entry_type(EntryType::Directory);
                self.append(&mut h, rel, io::empty())?;
                if opaque {
                    let mut o = header(&st);
                    o.set_entry_type(EntryType::Regular);
                    o.set_mode(0o600);
                    self.append(&mut o, &[rel, b"/.wh..wh..opq"].concat(), io::empty())?;
                }
                Ok(Some((st.st_dev, st.st_ino)))
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(dir, name, Vec::new()).map_err(|err| io_err("read link", err))?;
                h.set_entry_type(EntryType::Symlink);
                self.b
                    .append_link(&mut h, os(rel), os(target.as_bytes()))
                    .map_err(|err| ImageError::io(format!("write tar entry for {}", tree::shorten(rel)), err))?;
                Ok(None)
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        h.set_entry_type(EntryType::Link);
                        let first = first.clone();
                        self.b.append_link(&mut h, os(rel), os(&first)).map_err(|err| {
                            ImageError::io(format!("write tar entry for {}", tree::shorten(rel)), err)
                        })?;
                        return Ok(None);
                    }
                    self.links.insert(key, rel.to_vec());
                }
                // O_NONBLOCK: a fifo swapped in meanwhile must not block
                // the open; what was opened is checked to be a file.
                let fd = rfs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|err| io_err("open", err))?;
                let now = rfs::fstat(&fd).map_err(|err| io_err("stat", err))?;
                if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
                    return Err(io_err("open", Errno::STALE));
                }
                let size = st.st_size.max(0) as u64;
                h.set_entry_type(EntryType::Regular);
                h.set_size(size);
                self.append(&mut h, rel, Exactly { inner: File::from(fd), left: size })?;
                Ok(None)
            }
            _ => {
                let kind = match ft {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                h.set_entry_type(kind);
                if kind != EntryType::Fifo {
                    let werr = |err| ImageError::io(format!("device number of {}", tree::shorten(rel)), err);
                    h.set_device_major(rfs::major(st.st_rdev)).map_err(werr)?;
                    h.set_device_minor(rfs::minor(st.st_rdev)).map_err(werr)?;
                }
                self.append(&mut h, rel, io::empty())?;
                Ok(None)
            }
        }
    }

    fn append(&mut self, h: &mut Header, rel: &[u8], data: impl Read) -> Result<(), ImageError> {
        self.b
            .append_data(h, os(rel), data)
            .map_err(|e| ImageError::io(format!("write tar entry for {}", tree::shorten(rel)), e))
    }

    /// A PAX extended header carrying xattrs for the next entry.
    fn pax(&mut self, xattrs: &[Xattr]) -> Result<(), ImageError> {
        let mut data = Vec::new();
        for (k, v) in xattrs {
            pax_record(&mut data, &[b"SCHILY.xattr.".as_slice(), k].concat(), v);
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        self.b
            .append_data(&mut h, "PaxHeaders.0/xattrs", data.as_slice())
            .map_err(|e| ImageError::io("write tar PAX header", e))
    }
}

/// A header with the owner, mode and mtime of `st`.
fn header(st: &rfs::Stat) -> Header {
    let mut h = Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// One PAX record: `<len> <key>=<value>\n`, where `<len>` counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The xattrs to carry (without `trusted.overlay.*`) of `name` in `dir`,
/// and whether it is an opaque directory. An fd cannot carry xattrs for a
/// symlink or a device node, so this goes through the parent's fd in
/// `/proc`, whose last component the `l*xattr` calls do not follow.
fn xattrs(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(Vec<Xattr>, bool), Errno> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    let path = OsStr::from_bytes(&p);
    let mut list = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut list[..]) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok((Vec::new(), false)),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut opaque = false;
    let mut value = vec![0u8; 64 * 1024];
    for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let os_name = OsStr::from_bytes(name);
        let len = match rustix::fs::lgetxattr(path, os_name, &mut value[..]) {
            Ok(len) => len,
            // Gone meanwhile.
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(e),
        };
        if name == OPAQUE_XATTR.as_bytes() {
            opaque = &value[..len] == b"y";
        }
        if name.starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        out.push((name.to_vec(), value[..len].to_vec()));
    }
    Ok((out, opaque))
}

/// Reads exactly `left` bytes: a file that shrank while it was read is
/// padded with zeros and one that grew is cut, so the tar stays valid.
pub(crate) struct Exactly<R> {
    pub inner: R,
    pub left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt;

    use rustix::fs::{self as rfs, FileType, Mode, XattrFlags};

    use super::*;

    /// (path, type, link name, mode, uid, xattrs) of every entry.
    type Row = (String, EntryType, Option<String>, u32, u64, Vec<(String, Vec<u8>)>);

    fn entries(tar_bytes: &[u8]) -> Vec<Row> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut xattrs = Vec::new();
            if let Some(exts) = e.pax_extensions().unwrap() {
                for ext in exts {
                    let ext = ext.unwrap();
                    if let Some(k) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                        xattrs.push((k.to_owned(), ext.value_bytes().to_vec()));
                    }
                }
            }
            let h = e.header().clone();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((
                e.path().unwrap().display().to_string().trim_end_matches('/').to_owned(),
                h.entry_type(),
                link,
                h.mode().unwrap(),
                h.uid().unwrap(),
                xattrs,
            ));
        }
        out
    }

    /// An upper dir as overlayfs leaves it: a whiteout, an opaque
    /// directory, a hard link, a symlink, a fifo, a setuid file of another
    /// owner, and xattrs of both kinds.
    fn upper() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let u = t.path();
        fs::create_dir_all(u.join("etc")).unwrap();
        rfs::mknodat(rfs::CWD, u.join("etc/motd"), FileType::CharacterDevice, Mode::empty(), rfs::makedev(0, 0))
            .unwrap();
        fs::create_dir(u.join("data")).unwrap();
        rfs::setxattr(u.join("data"), "trusted.overlay.opaque", b"y", XattrFlags::empty()).unwrap();
        fs::write(u.join("data/only"), b"x\n").unwrap();
        fs::write(u.join("hard1"), b"h\n").unwrap();
        fs::hard_link(u.join("hard1"), u.join("hard2")).unwrap();
        std::os::unix::fs::symlink("/etc/layer3", u.join("link")).unwrap();
        rfs::mknodat(rfs::CWD, u.join("pipe"), FileType::Fifo, Mode::from_raw_mode(0o640), 0).unwrap();
        fs::write(u.join("suid"), b"s\n").unwrap();
        std::os::unix::fs::chown(u.join("suid"), Some(1000), Some(1000)).unwrap();
        fs::set_permissions(u.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
        rfs::setxattr(u.join("suid"), "user.note", b"kept", XattrFlags::empty()).unwrap();
        rfs::setxattr(u.join("suid"), "trusted.overlay.origin", b"dropped", XattrFlags::empty()).unwrap();
        t
    }

    #[test]
    fn upper_dir_becomes_an_oci_layer() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root (mknod, trusted.* xattrs)");
            return;
        }
        let t = upper();
        let bytes = write_tar(t.path(), Vec::new()).unwrap();
        let got = entries(&bytes);
        let names: Vec<&str> = got.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            names,
            ["data", "data/.wh..wh..opq", "data/only", "etc", "etc/.wh.motd", "hard1", "hard2", "link", "pipe", "suid"]
        );
        let row = |n: &str| got.iter().find(|r| r.0 == n).unwrap();
        assert_eq!(row("data").1, EntryType::Directory);
        assert!(row("data").5.is_empty(), "trusted.overlay.* is never carried: {:?}", row("data").5);
        assert_eq!(row("data/.wh..wh..opq").1, EntryType::Regular);
        assert_eq!(row("etc/.wh.motd").1, EntryType::Regular);
        assert_eq!(row("hard2").1, EntryType::Link);
        assert_eq!(row("hard2").2.as_deref(), Some("hard1"));
        assert_eq!(row("link").1, EntryType::Symlink);
        assert_eq!(row("link").2.as_deref(), Some("/etc/layer3"));
        assert_eq!(row("pipe").1, EntryType::Fifo);
        assert_eq!((row("suid").3, row("suid").4), (0o4755, 1000));
        assert_eq!(row("suid").5, vec![("user.note".to_owned(), b"kept".to_vec())]);

        // And back: the unpacker turns it into the same overlayfs encoding.
        let back = tempfile::tempdir().unwrap();
        let unpacked = super::super::unpack::unpack(bytes.as_slice(), back.path(), "test layer").unwrap();
        assert_eq!(unpacked.diff_id, crate::images::store::digest_of(&bytes));
        let st = rfs::lstat(back.path().join("etc/motd")).unwrap();
        assert_eq!(FileType::from_raw_mode(st.st_mode), FileType::CharacterDevice);
        assert_eq!(st.st_rdev, 0);
        let mut v = [0u8; 8];
        let n = rfs::lgetxattr(back.path().join("data"), "trusted.overlay.opaque", &mut v[..]).unwrap();
        assert_eq!(&v[..n], b"y");
        let (a, b) = (rfs::lstat(back.path().join("hard1")).unwrap(), rfs::lstat(back.path().join("hard2")).unwrap());
        assert_eq!(a.st_ino, b.st_ino);
    }

    #[test]
    fn gzip_digests_are_computed_while_writing() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("f"), b"hello").unwrap();
        let out = tempfile::tempdir().unwrap();
        let blob = out.path().join("blob");
        let d = write_layer(t.path(), File::create(&blob).unwrap()).unwrap();
        let gz = fs::read(&blob).unwrap();
        assert_eq!(format!("sha256:{}", d.blob_hex), crate::images::store::digest_of(&gz));
        assert_eq!(d.blob_size, gz.len() as u64);
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut tar_bytes).unwrap();
        assert_eq!(d.diff_id, crate::images::store::digest_of(&tar_bytes));
        assert_eq!(entries(&tar_bytes).len(), 1);
    }
}
