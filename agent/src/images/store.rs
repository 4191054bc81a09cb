//! The content store: `content/blobs/sha256/<hex>` holds immutable blobs
//! that were verified before they appeared; `content/ingest/` holds partial
//! writes that are never read as content.
//!
//! A blob is written to a new file under `ingest/`, hashed while it is
//! written, fsynced and checked against its expected digest and size
//! ([`ContentStore::ingest`]); only a checked blob ([`Staged`]) can be
//! renamed into `blobs/` ([`ContentStore::publish`]). A blob that fails its
//! check is deleted at once. Image code publishes staged blobs only in the
//! step that commits the image to the database.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_contract::Layout;
use sha2::{Digest as _, Sha256};

use super::ImageError;
use crate::store_layout::StoreLayout;

/// The only digest algorithm berth stores.
pub const SHA256_PREFIX: &str = "sha256:";

/// A blob's expected identity, from a descriptor or a path.
#[derive(Clone, Debug)]
pub struct Expected {
    /// Hex part of the sha256 digest.
    pub hex: String,
    /// Expected size in bytes, when the source says.
    pub size: Option<u64>,
}

impl Expected {
    /// From a `sha256:<hex>` digest string.
    pub fn parse(digest: &str, size: Option<u64>) -> Result<Self, ImageError> {
        Ok(Self { hex: sha256_hex(digest)?.to_owned(), size })
    }
}

/// A verified, fsynced blob waiting (maybe) to be published.
#[derive(Clone, Debug)]
pub struct Staged {
    /// Where the content is now.
    pub path: PathBuf,
    /// Hex part of its sha256 digest.
    pub hex: String,
    pub size: u64,
}

impl Staged {
    /// `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("{SHA256_PREFIX}{}", self.hex)
    }
}

/// The hex part of a `sha256:<64 hex>` digest, or an `Invalid` error.
pub fn sha256_hex(digest: &str) -> Result<&str, ImageError> {
    match digest.strip_prefix(SHA256_PREFIX) {
        Some(hex) if hex.len() == 64 && super::is_hex(hex) => Ok(hex),
        _ if digest.contains(':') && !digest.starts_with(SHA256_PREFIX) => {
            Err(ImageError::Invalid(format!("unsupported digest algorithm in {digest:?}")))
        }
        _ => Err(ImageError::Invalid(format!("invalid digest {digest:?}"))),
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("{SHA256_PREFIX}{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks a computed digest and size against what was expected; the
/// message names both digests.
pub fn verify(expected: &Expected, hex: &str, size: u64) -> Result<(), ImageError> {
    if expected.hex != hex {
        return Err(ImageError::Invalid(format!("digest mismatch for sha256:{}: got sha256:{hex}", expected.hex)));
    }
    if let Some(want) = expected.size {
        if want != size {
            return Err(ImageError::Invalid(format!(
                "size mismatch for sha256:{}: expected {want} bytes, got {size}",
                expected.hex
            )));
        }
    }
    Ok(())
}

/// A writer that hashes what goes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), count: 0 }
    }

    /// The writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `content/`: verified blobs and the ingest area.
#[derive(Clone, Debug)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    pub fn new(layout: &Layout) -> Self {
        Self { blobs: layout.blobs_dir(), ingest: layout.ingest_dir() }
    }

    /// The ingest area, where callers make their temp dirs.
    pub fn ingest_dir(&self) -> &Path {
        &self.ingest
    }

    /// Where the blob with this hex digest lives once published.
    pub fn path(&self, hex: &str) -> PathBuf {
        self.blobs.join(hex)
    }

    pub fn contains(&self, hex: &str) -> bool {
        self.path(hex).is_file()
    }

    /// Copies `reader` into a new file in `dir` (under `content/ingest/`),
    /// hashing it on the way, fsyncs it and checks it against `expected`.
    /// On any error the file is gone.
    pub fn ingest_into(
        &self,
        dir: &Path,
        reader: impl Read,
        expected: Option<&Expected>,
    ) -> Result<Staged, ImageError> {
        let path = unique_path(dir, "blob");
        let result = write_and_check(&path, reader, expected);
        if result.is_err() {
            let _ = fs::remove_file(&path);
        }
        result
    }

    /// [`Self::ingest_into`] the ingest area itself.
    pub fn ingest(&self, reader: impl Read, expected: Option<&Expected>) -> Result<Staged, ImageError> {
        self.ingest_into(&self.ingest, reader, expected)
    }

    /// Renames a staged blob into `blobs/` unless that blob is there
    /// already; returns whether it was added. The caller fsyncs `blobs/`
    /// ([`Self::sync`]) once after a batch.
    pub fn publish(&self, staged: &Staged) -> Result<bool, ImageError> {
        let dest = self.path(&staged.hex);
        if staged.path == dest || dest.is_file() {
            return Ok(false);
        }
        fs::rename(&staged.path, &dest)
            .map_err(|e| ImageError::io(format!("move blob sha256:{} into the content store", staged.hex), e))?;
        Ok(true)
    }

    /// Ingests and publishes in one go.
    pub fn write(&self, reader: impl Read, expected: Option<&Expected>) -> Result<String, ImageError> {
        let staged = self.ingest(reader, expected)?;
        let result = self.publish(&staged).and_then(|_| self.sync());
        let _ = fs::remove_file(&staged.path);
        result.map(|()| staged.digest())
    }

    /// fsyncs `blobs/`, making published renames durable.
    pub fn sync(&self) -> Result<(), ImageError> {
        super::sync_dir(&self.blobs)
    }

    /// Deletes a blob; a missing one is not an error.
    pub fn remove(&self, hex: &str) -> Result<(), ImageError> {
        match fs::remove_file(self.path(hex)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io(format!("remove blob sha256:{hex}"), e)),
        }
    }

    /// The hex digests of every published blob.
    pub fn list(&self) -> Result<Vec<String>, ImageError> {
        let mut out = Vec::new();
        for path in super::read_dir(&self.blobs)? {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }
}

fn write_and_check(path: &Path, mut reader: impl Read, expected: Option<&Expected>) -> Result<Staged, ImageError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ImageError::io(format!("create {}", path.display()), e))?;
    let mut w = HashingWriter::new(file);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ImageError::io("read blob content", e)),
        };
        w.write_all(&buf[..n]).map_err(|e| ImageError::io(format!("write {}", path.display()), e))?;
    }
    let (file, hex, size) = w.finish();
    if let Some(exp) = expected {
        verify(exp, &hex, size)?;
    }
    file.sync_all().map_err(|e| ImageError::io(format!("fsync {}", path.display()), e))?;
    Ok(Staged { path: path.to_owned(), hex, size })
}

/// Hashes a file that is already in place and fsyncs it: how a blob
/// extracted from an archive becomes [`Staged`].
pub fn stage_in_place(path: &Path, expected: Option<&Expected>) -> Result<Staged, ImageError> {
    let mut file = File::open(path).map_err(|e| ImageError::io(format!("open {}", path.display()), e))?;
    let mut w = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut w).map_err(|e| ImageError::io(format!("read {}", path.display()), e))?;
    let (_, hex, size) = w.finish();
    if let Some(exp) = expected {
        verify(exp, &hex, size)?;
    }
    file.sync_all().map_err(|e| ImageError::io(format!("fsync {}", path.display()), e))?;
    Ok(Staged { path: path.to_owned(), hex, size })
}

/// A fresh name in `dir`: `<prefix>-<16 random hex digits>`.
pub(crate) fn unique_path(dir: &Path, prefix: &str) -> PathBuf {
    dir.join(format!("{prefix}-{:016x}", rand::random::<u64>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), dir.path().join("state"));
        fs::create_dir_all(layout.blobs_dir()).unwrap();
        fs::create_dir_all(layout.ingest_dir()).unwrap();
        let store = ContentStore::new(&layout);
        (dir, store)
    }

    #[test]
    fn write_verifies_and_publishes() {
        let (_dir, store) = store();
        let data = b"hello blob";
        let digest = digest_of(data);
        let exp = Expected::parse(&digest, Some(data.len() as u64)).unwrap();
        assert_eq!(store.write(&data[..], Some(&exp)).unwrap(), digest);
        let hex = sha256_hex(&digest).unwrap();
        assert_eq!(fs::read(store.path(hex)).unwrap(), data);
        assert_eq!(store.list().unwrap(), vec![hex.to_owned()]);
        assert_eq!(fs::read_dir(store.ingest_dir()).unwrap().count(), 0);
    }

    #[test]
    fn digest_mismatch_keeps_nothing() {
        let (_dir, store) = store();
        let wrong = digest_of(b"something else");
        let exp = Expected::parse(&wrong, None).unwrap();
        let err = store.write(&b"hello blob"[..], Some(&exp)).unwrap_err();
        let msg = err.to_string();
        assert_eq!(msg, format!("digest mismatch for {wrong}: got {}", digest_of(b"hello blob")));
        assert!(matches!(err, ImageError::Invalid(_)));
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(store.ingest_dir()).unwrap().count(), 0);

        // right digest, wrong size
        let exp = Expected::parse(&digest_of(b"abc"), Some(4)).unwrap();
        let err = store.write(&b"abc"[..], Some(&exp)).unwrap_err();
        assert!(err.to_string().starts_with("size mismatch for sha256:"), "{err}");
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(store.ingest_dir()).unwrap().count(), 0);
    }

    #[test]
    fn digest_parsing() {
        assert!(sha256_hex(&digest_of(b"")).is_ok());
        for bad in
            ["sha256:abc", "sha256:", "abc", "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"]
        {
            assert!(sha256_hex(bad).unwrap_err().to_string().starts_with("invalid digest"), "{bad}");
        }
        assert_eq!(sha256_hex("sha512:00").unwrap_err().to_string(), "unsupported digest algorithm in \"sha512:00\"");
    }
}
