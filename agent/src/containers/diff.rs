//! `diff`: what a container changed in its filesystem, as Docker lists it:
//! `A` (added), `C` (changed), `D` (deleted) per path, sorted by path.
//!
//! The writable layer (overlayfs' upper directory) is the change set: a
//! 0/0 character device is a deletion, any other entry a change when the
//! image's layers have the path and an addition when they do not (a
//! directory overlayfs copied up because something below it changed is a
//! change, as in Docker). Nothing is mounted: the upper directory is walked
//! with `*at` calls (`tree::walk`, any depth), and each lookup in a layer is
//! an `openat2(RESOLVE_IN_ROOT)` from that layer's root, so no symlink in
//! an image leads the lookup out of it.
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::copy::openat2_in_root;
use super::Manager;
use crate::error::{AgentError, Result};
use crate::tree;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// Docker's letter.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path (absolute, inside the container).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

impl Manager {
    /// The container's changes (any state: the writable layer is kept
    /// until `rm`).
    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn diff(self: &Arc<Self>, key: &str) -> Result<Vec<Change>> {
        let rec = self.refresh(key).await?;
        let upper = self.paths(&rec).upper();
        let lowers = self.image_layers(&rec).await?;
        crate::blocking::run(move || changes(&upper, &lowers)).await
    }
}

/// What a lookup of a path in one layer found.
enum InLayer {
    Present,
    WhitedOut,
    Absent,
}

fn look_up(layer: &rustix::fd::OwnedFd, rel: &[u8]) -> InLayer {
    let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&b""[..], rel),
    };
    let dir = if parent.is_empty() {
        None
    } else {
        match openat2_in_root(layer, OsStr::from_bytes(parent), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC) {
            Ok(fd) => Some(fd),
            Err(_) => return InLayer::Absent,
        }
    };
    let at = dir.as_ref().unwrap_or(layer);
    match rfs::statat(at, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0 => {
            InLayer::WhitedOut
        }
        Ok(_) => InLayer::Present,
        Err(_) => InLayer::Absent,
    }
}

/// The text of file `rel` as the top of `layers` that has it holds it
/// (read inside that layer: its symlinks resolve within it); `None` when
/// none has it, or the top one deleted it.
pub fn read_in_layers(layers: &[PathBuf], rel: &str) -> Option<String> {
    use std::io::Read;
    for l in layers {
        let Ok(root) = rfs::open(l, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
            continue;
        };
        match look_up(&root, rel.as_bytes()) {
            InLayer::Absent => continue,
            InLayer::WhitedOut => return None,
            InLayer::Present => {
                let fd = openat2_in_root(&root, rel, OFlags::RDONLY | OFlags::CLOEXEC).ok()?;
                let mut text = String::new();
                // Bounded: an image's group file is small; a huge one is not read whole.
                std::fs::File::from(fd).take(1 << 20).read_to_string(&mut text).ok()?;
                return Some(text);
            }
        }
    }
    None
}

/// The changes `upper` makes over `lowers` (top first), sorted by path.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let open = |p: &Path| {
        rfs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| AgentError::Io { context: format!("open {}", p.display()), source: e.into() })
    };
    let root = open(upper)?;
    let layers = lowers.iter().map(|l| open(l)).collect::<Result<Vec<_>>>()?;
    let in_image = |rel: &[u8]| {
        for l in &layers {
            match look_up(l, rel) {
                InLayer::Present => return true,
                InLayer::WhitedOut => return false,
                InLayer::Absent => {}
            }
        }
        false
    };
    let mut out = Vec::new();
    tree::walk(root, |e: &tree::Entry<'_>| -> std::result::Result<Option<(u64, u64)>, AgentError> {
        let st = match rfs::statat(e.dir, OsStr::from_bytes(e.name), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed meanwhile: a running container changes as we look.
            Err(Errno::NOENT) => return Ok(None),
            Err(err) => {
                return Err(AgentError::Io { context: format!("stat {}", tree::shorten(e.path)), source: err.into() })
            }
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        let path = format!("/{}", String::from_utf8_lossy(e.path));
        let kind = if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            ChangeKind::Deleted
        } else if in_image(e.path) {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        out.push(Change { kind, path });
        // Below an added directory everything is added: still listed, as
        // Docker lists it.
        Ok((ft == FileType::Directory && kind != ChangeKind::Deleted).then_some((st.st_dev, st.st_ino)))
    })?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn upper_entries_are_added_changed_or_deleted_against_the_layers() {
        let t = tempfile::tempdir().unwrap();
        let (upper, top, base) = (t.path().join("upper"), t.path().join("top"), t.path().join("base"));
        for d in [&upper, &top, &base] {
            fs::create_dir(d).unwrap();
        }
        fs::create_dir_all(base.join("etc")).unwrap();
        fs::write(base.join("etc/passwd"), "root").unwrap();
        fs::write(base.join("gone"), "x").unwrap();
        // The top layer deleted /gone: upper's /gone is then an addition.
        nix::sys::stat::mknod(&top.join("gone"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
            .unwrap();
        fs::write(base.join("escape"), "x").unwrap();
        // A symlink in a layer pointing out of it is not followed out: the
        // host's /proc is not the image's.
        std::os::unix::fs::symlink("/", base.join("lnk")).unwrap();

        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/passwd"), "root\nnew").unwrap();
        fs::write(upper.join("etc/new.conf"), "").unwrap();
        fs::write(upper.join("gone"), "back").unwrap();
        fs::create_dir_all(upper.join("srv/data")).unwrap();
        nix::sys::stat::mknod(&upper.join("escape"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
            .unwrap();
        fs::create_dir_all(upper.join("lnk/proc")).unwrap();
        fs::write(upper.join("lnk/proc/x"), "").unwrap();

        let got: Vec<String> =
            changes(&upper, &[top, base]).unwrap().iter().map(|c| format!("{} {}", c.kind.letter(), c.path)).collect();
        assert_eq!(
            got,
            [
                "D /escape",
                "C /etc",
                "A /etc/new.conf",
                "C /etc/passwd",
                "A /gone",
                "C /lnk",
                "A /lnk/proc",
                "A /lnk/proc/x",
                "A /srv",
                "A /srv/data",
            ]
        );
    }
}
