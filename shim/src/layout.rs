//! Everything agent and shim must agree on about one container's files:
//! the validated [`ContainerId`], every path ([`Layout`], [`ContainerPaths`]),
//! the `exit.json` format ([`ExitStatus`]) and the one function that writes
//! state files ([`atomic_write`]). Both processes use this module, so they
//! can never disagree on a path or a format.
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A container ID: 64 lowercase hex digits, checked before it touches a path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

/// The string given is not a container ID.
#[derive(Debug, thiserror::Error)]
#[error("invalid container id {0:?}: want 64 lowercase hex digits")]
pub struct InvalidId(pub String);

impl ContainerId {
    /// Validates `s` as a full container ID.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId(s.to_owned()))
        }
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-digit form people see.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContainerId({})", self.short())
    }
}

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
    /// The metadata database.
    pub fn meta_db(&self) -> PathBuf {
        self.root.join("meta.redb")
    }
    /// `content/blobs/sha256`: verified blobs only.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("content/blobs/sha256")
    }
    /// One verified blob, by the hex part of its sha256 digest.
    pub fn blob(&self, hex: &str) -> PathBuf {
        self.blobs_dir().join(hex)
    }
    /// `content/ingest`: partial writes, never read as content.
    pub fn ingest_dir(&self) -> PathBuf {
        self.root.join("content/ingest")
    }
    /// `snapshots`: unpacked layers.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }
    /// The filesystem of snapshot number `n`.
    pub fn snapshot_fs(&self, n: u64) -> PathBuf {
        self.snapshots_dir().join(n.to_string()).join("fs")
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
    /// stdout and stderr, one record a line (see [`crate::logfmt`]): the
    /// file the shim appends to.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join(LOG_NAME)
    }
    /// `container.log.<n>`: a rotated log, 1 the newest (see
    /// [`crate::logfile`]).
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

/// How a container's init ended, as the shim persists it in `exit.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal number when killed by one.
    pub code: i32,
    /// The signal that killed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Unix nanoseconds.
    pub finished_at: i64,
    #[serde(default)]
    pub oom_killed: bool,
    /// Bytes of output the log could not take (a full disk) and that no
    /// notice in the log itself could tell.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Room kept for `exit.json`: a record is about 100 bytes.
const EXIT_RESERVE: usize = 4096;

impl ExitStatus {
    /// Sets aside, before the container runs, the disk space its exit
    /// record will need (`.exit.json.reserve`, allocated and synced), so
    /// that a container filling the disk cannot cost it its exit status.
    pub fn reserve(paths: &ContainerPaths) -> io::Result<()> {
        let path = paths.exit_reserve();
        let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        // Real blocks, not a hole: zeros written out (fallocate(2) is not
        // everywhere; 4 KiB is one write).
        (&f).write_all(&[b' '; EXIT_RESERVE])?;
        f.sync_all()?;
        File::open(paths.dir())?.sync_all()
    }

    /// Persists the status where berthd looks for it: into the reserved
    /// file (its blocks are already there), renamed to `exit.json`; else a
    /// new `exit.json`; else, the disk refusing both, `exit.json` in the
    /// state directory (tmpfs), which berthd reads as well.
    pub fn persist(&self, paths: &ContainerPaths) -> io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        let reserved = (|| {
            let path = paths.exit_reserve();
            let mut f = OpenOptions::new().write(true).open(&path)?;
            f.write_all(&bytes)?;
            // Cutting frees blocks: it needs none.
            f.set_len(bytes.len() as u64)?;
            f.sync_all()?;
            fs::rename(&path, paths.exit_file())?;
            File::open(paths.dir())?.sync_all()
        })();
        let Err(first) = reserved else { return Ok(()) };
        if atomic_write(&paths.exit_file(), &bytes).is_ok() {
            return Ok(());
        }
        atomic_write(&paths.spare_exit_file(), &bytes).map_err(|e| io::Error::new(e.kind(), format!("{first}; {e}")))
    }

    /// The persisted status: `exit.json`, else its spare in the state
    /// directory; `Ok(None)` when neither exists.
    pub fn read_for(paths: &ContainerPaths) -> io::Result<Option<Self>> {
        match Self::read(&paths.exit_file())? {
            Some(st) => Ok(Some(st)),
            None => Self::read(&paths.spare_exit_file()),
        }
    }

    /// Reads `exit.json`; `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> io::Result<Option<Self>> {
        match fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Persists it with [`atomic_write`].
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        atomic_write(path, &bytes)
    }
}

/// Writes `path` so that a reader sees either the old file or the whole new
/// one, and the new one survives a power cut: write a new temp file beside
/// it, fsync it, rename it over `path`, fsync the directory.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        // 0600: state files can hold secrets (a container's environment).
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
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

/// Unix nanoseconds now.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_id_validation() {
        let good = "a".repeat(64);
        assert!(ContainerId::parse(&good).is_ok());
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65), "../../etc"] {
            let err = ContainerId::parse(bad).unwrap_err();
            assert!(err.to_string().contains("invalid container id"), "{bad}");
        }
        assert_eq!(ContainerId::parse(&good).unwrap().short(), &good[..12]);
    }

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

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile_dir("write");
        let p = dir.join("exit.json");
        let st = ExitStatus { code: 3, signal: None, finished_at: 42, oom_killed: false, log_dropped: 0 };
        st.write(&p).unwrap();
        assert_eq!(ExitStatus::read(&p).unwrap(), Some(st));
        atomic_write(&p, b"{\"code\":9,\"finished_at\":1}").unwrap();
        assert_eq!(ExitStatus::read(&p).unwrap().unwrap().code, 9);
        // no temp file left behind
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert_eq!(ExitStatus::read(&dir.join("none")).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-layout-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }
}
