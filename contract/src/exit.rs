//! `exit.json`: how a container's init ended. The shim is its only
//! writer; berthd reads it, also after the shim is gone.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fs::atomic_write;
use crate::layout::ContainerPaths;

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

/// Whether the kernel's OOM killer has killed a task of the cgroup whose
/// directory is `dir`: the `oom_kill N` line of v2's `memory.events` or of
/// v1's `memory.oom_control` (in the memory controller's directory). The
/// shim asks at its init's exit, so the answer is in `exit.json` whether or
/// not berthd runs then; berthd asks again before it removes the cgroup.
pub fn cgroup_oom_killed(dir: &Path) -> bool {
    ["memory.events", "memory.oom_control"]
        .iter()
        .any(|f| fs::read_to_string(dir.join(f)).ok().and_then(|t| oom_kill_count(&t)).is_some_and(|n| n > 0))
}

/// The `oom_kill N` line of `memory.events` or `memory.oom_control`.
pub fn oom_kill_count(text: &str) -> Option<u64> {
    flat_keyed(text, "oom_kill")
}

/// The number on the `key N` line of a cgroup's flat keyed file
/// (`memory.events`, `memory.stat`, `cpu.stat`, ...).
pub fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Room kept for `exit.json`: a record is about 100 bytes.
const EXIT_RESERVE: usize = 4096;

impl ExitStatus {
    /// Sets aside, before the container runs, the disk space its exit
    /// record will need (`.exit.json.reserve`, its blocks written), so
    /// that a container filling the disk cannot cost it its exit status.
    pub fn reserve(paths: &ContainerPaths) -> io::Result<()> {
        let path = paths.exit_reserve();
        let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        // Real blocks, not a hole: zeros written out (fallocate(2) is not
        // everywhere; 4 KiB is one write). The space is the file system's
        // from this write on (a delayed allocation is counted against the
        // free space at once), so no fsync: a crash of the host, which
        // alone could lose the unsynced file, takes the container with it,
        // and `persist` makes the exit record durable itself.
        (&f).write_all(&[b' '; EXIT_RESERVE])?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_status_written_reads_back() {
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
        let d = std::env::temp_dir().join(format!("berth-exit-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }
}
