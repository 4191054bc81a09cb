//! Every path berth's programs share: berth's two directory trees
//! ([`Layout`]) and one container's files ([`ContainerPaths`]), and the
//! socket paths longer than `sun_path` ([`SocketPath`]). The image store's
//! own paths are berthd's alone (berthd's `store_layout`).
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::id::ContainerId;

/// berth's two directory trees: `root` (persistent) and `state` (tmpfs).
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    state: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>, state: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), state: state.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn state(&self) -> &Path {
        &self.state
    }
    /// `containers`: one directory per container.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }
    /// The paths of one container.
    pub fn container(&self, id: &ContainerId) -> ContainerPaths {
        ContainerPaths { dir: self.containers_dir().join(id.as_str()), state_dir: self.state.join(id.as_str()) }
    }
}

/// The files of one container, in `root` and in `state`.
#[derive(Clone, Debug)]
pub struct ContainerPaths {
    dir: PathBuf,
    state_dir: PathBuf,
}

impl ContainerPaths {
    /// Builds the paths from the two directories themselves (the shim is
    /// given them on its command line).
    pub fn from_dirs(dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), state_dir: state_dir.into() }
    }
    /// `containers/<id>`: the OCI bundle.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// `<state>/<id>`.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
    /// The OCI runtime spec, written by berthd.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `linux.seccomp` of `config.json`, compiled by berthd (raw `struct
    /// sock_filter` instructions).
    pub fn seccomp_program(&self) -> PathBuf {
        self.dir.join("seccomp.bpf")
    }
    /// The writable layer.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    /// overlayfs' work directory.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// Where the shim mounts the rootfs, inside the container's mount
    /// namespace only.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    /// stdout and stderr, one record a line (see [`crate::log`]): the
    /// file the shim appends to.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join(LOG_NAME)
    }
    /// `container.log.<n>`: a rotated log, 1 the newest (see
    /// [`crate::log::LogLimits`]; the rotation is the shim's `logfile`).
    pub fn rotated_log(&self, n: u32) -> PathBuf {
        self.dir.join(format!("{LOG_NAME}.{n}"))
    }
    /// The new `container.log` while the shim rotates, before it is renamed
    /// into place; never read.
    pub fn next_log(&self) -> PathBuf {
        self.dir.join(format!(".{LOG_NAME}.next"))
    }
    /// The rotated logs that exist now, oldest (highest number) first.
    pub fn rotated_logs(&self) -> io::Result<Vec<(u32, PathBuf)>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            if let Some(n) = rotated_log_number(&entry.file_name()) {
                out.push((n, entry.path()));
            }
        }
        out.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
        Ok(out)
    }
    /// The exit status, written once by the shim.
    pub fn exit_file(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
    /// Disk space kept for [`Self::exit_file`] while the container runs.
    pub fn exit_reserve(&self) -> PathBuf {
        self.dir.join(".exit.json.reserve")
    }
    /// Where the exit status goes when the disk has no room for it.
    pub fn spare_exit_file(&self) -> PathBuf {
        self.state_dir.join("exit.json")
    }
    /// Whether an exit status was persisted (either place).
    pub fn has_exit(&self) -> bool {
        self.exit_file().exists() || self.spare_exit_file().exists()
    }
    pub fn shim_socket(&self) -> PathBuf {
        self.state_dir.join("shim.sock")
    }
    pub fn shim_pid(&self) -> PathBuf {
        self.state_dir.join("shim.pid")
    }
    /// The shim's own diagnostics.
    pub fn shim_log(&self) -> PathBuf {
        self.state_dir.join("shim.log")
    }
}

/// The file name of the log the shim appends to.
const LOG_NAME: &str = "container.log";

/// `n` for a file named `container.log.<n>` (n >= 1, digits only).
fn rotated_log_number(name: &std::ffi::OsStr) -> Option<u32> {
    let digits = name.to_str()?.strip_prefix(LOG_NAME)?.strip_prefix('.')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A unix socket path that `bind` and `connect` accept whatever its length.
/// `sun_path` holds 107 bytes and a NUL (unix(7)); a longer path (a deep
/// `--state` directory and a 64-digit container ID) is reached through
/// `/proc/self/fd/<dir fd>/<name>`, with the directory kept open for as
/// long as this value lives.
pub struct SocketPath {
    _dir: Option<File>,
    path: PathBuf,
}

impl SocketPath {
    /// Longest path `sun_path` takes.
    pub const MAX: usize = 107;

    pub fn new(path: &Path) -> io::Result<Self> {
        if path.as_os_str().len() <= Self::MAX {
            return Ok(Self { _dir: None, path: path.to_path_buf() });
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "socket path has no file name"));
        };
        let dir = File::open(dir)?;
        let short = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir))).join(name);
        Ok(Self { _dir: Some(dir), path: short })
    }

    /// The path to give to `bind` or `connect`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_log_names() {
        for (name, want) in [
            ("container.log.1", Some(1)),
            ("container.log.12", Some(12)),
            ("container.log", None),
            ("container.log.", None),
            ("container.log.0", None),
            ("container.log.01", None),
            ("container.log.1x", None),
            (".container.log.next", None),
            ("container.log.99999999999", None),
            ("shim.log.1", None),
        ] {
            assert_eq!(rotated_log_number(std::ffi::OsStr::new(name)), want, "{name}");
        }
        let dir = tempfile_dir("rotated");
        let paths = ContainerPaths::from_dirs(&dir, dir.join("state"));
        assert_eq!(paths.rotated_log(3), dir.join("container.log.3"));
        for n in [1, 3, 2, 10] {
            fs::write(paths.rotated_log(n), b"").unwrap();
        }
        fs::write(paths.log_file(), b"").unwrap();
        fs::write(paths.next_log(), b"").unwrap();
        let found: Vec<u32> = paths.rotated_logs().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(found, [10, 3, 2, 1]);
        fs::remove_dir_all(&dir).unwrap();
        assert!(paths.rotated_logs().unwrap().is_empty());
    }

    #[test]
    fn long_socket_paths_bind_and_connect() {
        let base = tempfile_dir("sock");
        let dir = base.join("a".repeat(60)).join("b".repeat(60));
        fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("shim.sock");
        assert!(sock.as_os_str().len() > SocketPath::MAX);
        assert!(std::os::unix::net::UnixListener::bind(&sock).is_err());
        let sp = SocketPath::new(&sock).unwrap();
        let _l = std::os::unix::net::UnixListener::bind(sp.path()).unwrap();
        assert!(sock.exists());
        let cp = SocketPath::new(&sock).unwrap();
        std::os::unix::net::UnixStream::connect(cp.path()).unwrap();
        let short = SocketPath::new(Path::new("/run/x.sock")).unwrap();
        assert_eq!(short.path(), Path::new("/run/x.sock"));
        fs::remove_dir_all(base).unwrap();
    }

    fn tempfile_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-layout-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }
}
