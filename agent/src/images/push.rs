//! The disk side of `push`: what berth has of an image to send (its
//! stored manifest, exactly as pulled, loaded or made, so a push then a
//! pull round-trip the digest), the path of each blob, and which other
//! repositories hold a blob (candidates for a cross-repository mount).
//! The network side is `crate::registry::push`.

use std::path::PathBuf;

use redb::ReadableDatabase;

use super::meta::ReadTables;
use super::{store, ImageError, ImageRecord, ImageService, Lease};

/// An image to push, held against removal while the push runs.
pub struct PushSource {
    pub record: ImageRecord,
    /// The stored manifest's bytes.
    pub manifest: Vec<u8>,
    _lease: Lease,
}

impl ImageService {
    /// The image `reference` names, its manifest bytes, and a lease.
    pub fn push_source(&self, reference: &str) -> Result<PushSource, ImageError> {
        let (record, lease) = self.lease(reference)?;
        let hex = store::sha256_hex(&record.manifest_digest)?;
        let path = self.store.path(hex);
        let manifest =
            std::fs::read(&path).map_err(|e| ImageError::io(format!("read manifest {}", record.manifest_digest), e))?;
        Ok(PushSource { record, manifest, _lease: lease })
    }

    /// Where a stored blob is; an error if the store lacks it.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        let path = self.store.path(store::sha256_hex(digest)?);
        if !path.is_file() {
            return Err(ImageError::NotFound(format!("blob {digest} (the image's content is incomplete)")));
        }
        Ok(path)
    }

    /// The bytes of a small stored blob (a config), if the store has it
    /// with the expected size.
    pub fn stored_blob(&self, expected: &store::Expected) -> Result<Option<Vec<u8>>, ImageError> {
        let path = self.store.path(&expected.hex);
        match std::fs::read(&path) {
            Ok(b) if expected.size.is_none_or(|s| s == b.len() as u64) => Ok(Some(b)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Every image name whose image holds the blob `digest`.
    pub fn names_holding_blob(&self, digest: &str) -> Result<Vec<String>, ImageError> {
        let hex = store::sha256_hex(digest)?;
        let rtxn = self.db.begin_read()?;
        let tables = ReadTables::open(&rtxn)?;
        let mut out = Vec::new();
        for (id, meta) in tables.images()? {
            if meta.blobs.iter().any(|b| b == hex) {
                out.extend(tables.names_of(&id)?);
            }
        }
        Ok(out)
    }
}
