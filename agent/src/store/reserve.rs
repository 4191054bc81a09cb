//! Room for the database's next commits on a full disk.
//!
//! redb writes a commit into free pages of `meta.redb`, growing the file
//! when it has none. A page of the file the filesystem has no block for
//! (the file grows by `ftruncate`, so new pages are holes) needs one when
//! it is first written, and on a full disk that write fails; redb then
//! refuses every later write until it is opened again ("Previous I/O
//! error occurred"). A container that fills the disk berth's root is on
//! would so stop berthd from recording its exit, and every change after.
//!
//! So before each container commit berthd asks the filesystem for a block
//! under every page of the file and for [`SLACK`] bytes past its end
//! (`fallocate(2)` with `FALLOC_FL_KEEP_SIZE`: the size does not change,
//! and a growth into that range finds its blocks there). When the blocks
//! exist the call allocates nothing; when the disk is already full it fails
//! and the commit is tried anyway.
use std::fs::File;
use std::path::Path;

use rustix::fs::FallocateFlags;

/// Blocks kept past the end of `meta.redb`: several commits' growth.
pub const SLACK: u64 = 2 << 20;

pub struct DiskReserve {
    file: File,
}

impl DiskReserve {
    pub fn open(db_path: &Path) -> std::io::Result<Self> {
        Ok(Self { file: std::fs::OpenOptions::new().write(true).open(db_path)? })
    }

    /// Allocates blocks for the whole file and `SLACK` past its end.
    pub fn ensure(&self) -> std::io::Result<()> {
        let len = self.file.metadata()?.len();
        rustix::fs::fallocate(&self.file, FallocateFlags::KEEP_SIZE, 0, len + SLACK)?;
        Ok(())
    }

    /// [`Self::ensure`], with a failure logged: the commit is tried anyway.
    pub fn ensure_or_log(&self) {
        if let Err(e) = self.ensure() {
            tracing::debug!(error = %e, "reserve room for the metadata database");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// The file's size stays; its blocks cover it and the slack past it.
    #[test]
    fn blocks_cover_the_file_and_the_slack_and_the_size_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let f = File::create(&path).unwrap();
        f.set_len(1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().blocks(), 0, "a hole to start with");
        let r = DiskReserve::open(&path).unwrap();
        r.ensure().unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(m.len(), 1 << 20);
        assert!(m.blocks() * 512 >= (1 << 20) + SLACK, "{} blocks", m.blocks());
        // Growth into the slack finds its blocks allocated already.
        f.set_len((1 << 20) + SLACK).unwrap();
        assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= (1 << 20) + SLACK);
    }
}
