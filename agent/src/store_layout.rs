//! The image store's and the database's paths under berth's root: berthd's
//! alone, so they live here and not in the contract the shim shares.
use std::path::PathBuf;

use berth_contract::Layout;

/// The paths of the content store, the snapshots and the database.
pub trait StoreLayout {
    /// The metadata database.
    fn meta_db(&self) -> PathBuf;
    /// `content/blobs/sha256`: verified blobs only.
    fn blobs_dir(&self) -> PathBuf;
    /// One verified blob, by the hex part of its sha256 digest.
    fn blob(&self, hex: &str) -> PathBuf;
    /// `content/ingest`: partial writes, never read as content.
    fn ingest_dir(&self) -> PathBuf;
    /// `snapshots`: unpacked layers.
    fn snapshots_dir(&self) -> PathBuf;
    /// The filesystem of snapshot number `n`.
    fn snapshot_fs(&self, n: u64) -> PathBuf;
}

impl StoreLayout for Layout {
    fn meta_db(&self) -> PathBuf {
        self.root().join("meta.redb")
    }
    fn blobs_dir(&self) -> PathBuf {
        self.root().join("content/blobs/sha256")
    }
    fn blob(&self, hex: &str) -> PathBuf {
        self.blobs_dir().join(hex)
    }
    fn ingest_dir(&self) -> PathBuf {
        self.root().join("content/ingest")
    }
    fn snapshots_dir(&self) -> PathBuf {
        self.root().join("snapshots")
    }
    fn snapshot_fs(&self, n: u64) -> PathBuf {
        self.snapshots_dir().join(n.to_string()).join("fs")
    }
}
