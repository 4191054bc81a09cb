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
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use tar::{EntryType, Header};

use super::store::HashingWriter;
use super::ImageError;

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
pub fn write_tar<W: Write>(upper: &Path, w: W) -> Result<W, ImageError> {
    let mut walker = Walker { b: tar::Builder::new(w), links: HashMap::new() };
    walker.dir(upper, Path::new(""))?;
    walker.b.into_inner().map_err(|e| ImageError::io("write layer tar", e))
}

struct Walker<W: Write> {
    b: tar::Builder<W>,
    /// (device, inode) of regular files with several links → first path.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Walker<W> {
    fn dir(&mut self, dir: &Path, rel: &Path) -> Result<(), ImageError> {
        let read_err = |e| ImageError::io(format!("read {}", dir.display()), e);
        let mut names: Vec<OsString> = fs::read_dir(dir)
            .map_err(read_err)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        names.sort();
        for name in names {
            self.entry(&dir.join(&name), &rel.join(&name), rel, &name)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &Path, parent: &Path, name: &OsStr) -> Result<(), ImageError> {
        let io_err = |what: &str, e: io::Error| ImageError::io(format!("{what} {}", path.display()), e);
        let md = fs::symlink_metadata(path).map_err(|e| io_err("stat", e))?;
        let ft = md.file_type();
        let mut h = header(&md);
        if ft.is_char_device() && md.rdev() == 0 {
            let mut wh = OsString::from(".wh.");
            wh.push(name);
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o600);
            return self.append(&mut h, &parent.join(wh), io::empty());
        }
        if ft.is_socket() {
            tracing::debug!(path = %path.display(), "socket skipped in layer");
            return Ok(());
        }
        let (xattrs, opaque) = xattrs(path).map_err(|e| io_err("read xattrs of", e))?;
        if !xattrs.is_empty() {
            self.pax(&xattrs)?;
        }
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            self.append(&mut h, rel, io::empty())?;
            if opaque {
                let mut o = header(&md);
                o.set_entry_type(EntryType::Regular);
                o.set_mode(0o600);
                self.append(&mut o, &rel.join(".wh..wh..opq"), io::empty())?;
            }
            return self.dir(path, rel);
        }
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(|e| io_err("read link", e))?;
            h.set_entry_type(EntryType::Symlink);
            return self.b.append_link(&mut h, rel, target).map_err(|e| io_err("write tar entry for", e));
        }
        if ft.is_file() {
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.links.get(&key) {
                    h.set_entry_type(EntryType::Link);
                    let first = first.clone();
                    return self.b.append_link(&mut h, rel, first).map_err(|e| io_err("write tar entry for", e));
                }
                self.links.insert(key, rel.to_path_buf());
            }
            let file = File::open(path).map_err(|e| io_err("open", e))?;
            h.set_entry_type(EntryType::Regular);
            h.set_size(md.len());
            return self.append(&mut h, rel, Exactly { inner: file, left: md.len() });
        }
        let kind = if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else {
            EntryType::Fifo
        };
        h.set_entry_type(kind);
        if kind != EntryType::Fifo {
            let dev = md.rdev();
            h.set_device_major(rustix::fs::major(dev)).map_err(|e| io_err("device number of", e))?;
            h.set_device_minor(rustix::fs::minor(dev)).map_err(|e| io_err("device number of", e))?;
        }
        self.append(&mut h, rel, io::empty())
    }

    fn append(&mut self, h: &mut Header, rel: &Path, data: impl Read) -> Result<(), ImageError> {
        self.b
            .append_data(h, rel, data)
            .map_err(|e| ImageError::io(format!("write tar entry for {}", rel.display()), e))
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

/// A header with the owner, mode and mtime of `md`.
fn header(md: &fs::Metadata) -> Header {
    let mut h = Header::new_gnu();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(md.uid().into());
    h.set_gid(md.gid().into());
    h.set_mtime(md.mtime().max(0) as u64);
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

/// The xattrs to carry (without `trusted.overlay.*`), and whether the
/// directory is opaque.
fn xattrs(path: &Path) -> io::Result<(Vec<Xattr>, bool)> {
    let mut list = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut list[..]) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok((Vec::new(), false)),
        Err(e) => return Err(e.into()),
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
            Err(e) => return Err(e.into()),
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
