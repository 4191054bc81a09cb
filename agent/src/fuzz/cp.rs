//! `cp` paths (`containers::copy`): the container side of `cp` is a path
//! a person (or a script) wrote, resolved inside a root the container
//! controls. The path grammar is checked on its own, and resolution in a
//! root full of hostile symlinks must never reach the directory beside it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::{fs, process::Command};

use berth_fuzz::Target;
use rustix::fs::{self as rfs, Mode, OFlags};

use super::{corpus, text};
use crate::containers::copy::{open_source, resolve_dest, CPath, Dest};

const DICT: &[&str] =
    &["/", ".", "..", "/.", "../", "//", "abs", "up", "loop", "self", "dir/", "etc/passwd", "escape", "file", "\0"];

/// The grammar alone: the split loses nothing and names no `..`.
fn check_grammar(path: &str) {
    let p = CPath::parse(path);
    assert!(!p.name.contains('/') && p.name != ".." && p.name != ".", "{path:?}: name {:?}", p.name);
    if p.name.is_empty() {
        assert_eq!(p.parent, path, "{path:?}");
    } else {
        let joined =
            if p.parent.is_empty() && path == p.name { p.name.to_owned() } else { format!("{}/{}", p.parent, p.name) };
        assert_eq!(joined, path, "{path:?}: split as {:?} + {:?}", p.parent, p.name);
    }
    assert_eq!(p.contents, path == "." || path.ends_with("/."), "{path:?}");
    assert!(!p.contents || p.name.is_empty(), "{path:?}");
    assert!(!p.parent_arg().is_empty(), "{path:?}");
}

/// A container root beside an `outside` directory, with symlinks that
/// try to reach it every way a container can write one.
struct Fixture {
    _dir: tempfile::TempDir,
    root_path: PathBuf,
    root: OwnedFd,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root_path = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(root_path.join("dir/sub")).unwrap();
        fs::create_dir_all(root_path.join("etc")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(root_path.join("etc/passwd"), "inside\n").unwrap();
        fs::write(root_path.join("file"), "file\n").unwrap();
        fs::write(outside.join("passwd"), "outside\n").unwrap();
        for (name, target) in [
            ("abs", outside.to_str().unwrap()),
            ("up", "../../.."),
            ("escape", "../outside"),
            ("loop", "loop"),
            ("self", "."),
            ("dir/back", "../.."),
            ("etc/host", "/etc"),
            ("dangling", "/nonexistent/x"),
            ("proc-self", "/proc/self/root"),
        ] {
            symlink(target, root_path.join(name)).unwrap();
        }
        let st = Command::new("mkfifo").arg(root_path.join("fifo")).status();
        assert!(st.is_ok_and(|s| s.success()), "mkfifo");
        let root = rfs::open(&root_path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        Self { _dir: dir, root_path, root }
    }

    /// Where an fd really is, by the kernel's account.
    fn assert_inside(&self, fd: &OwnedFd, path: &str) {
        let at = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert!(at.starts_with(&self.root_path), "{path:?} resolved to {} outside the root", at.display());
    }
}

fn check(fx: &Fixture, input: &[u8]) {
    let path = text(input);
    check_grammar(&path);
    for follow in [false, true] {
        if let Ok((fd, _, stat)) = open_source(fx.root.as_fd(), "c", &path, follow) {
            fx.assert_inside(&fd, &path);
            let n = stat.name.as_str();
            assert!(!n.is_empty() && !n.contains('/') && n != "..", "{path:?}: tar name {n:?}");
        }
    }
    if let Ok((_, Dest::Other { name, .. })) = resolve_dest(fx.root.as_fd(), "c", &path) {
        assert!(!name.is_empty() && !name.contains(&b'/') && name != b"..", "{path:?}: destination name {name:?}");
    }
}

#[test]
fn container_paths_resolve_inside_the_root() {
    let fx = Fixture::new();
    Target::new("cp-path", corpus("cp-path")).dict(DICT).max_len(512).run(|input| check(&fx, input));
}
