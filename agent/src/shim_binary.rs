//! The shim binary berthd starts, behind a read-only bind mount of its own
//! under the state directory (`<state>/berth-shim`).
//!
//! A process of the shim's (an exec'd child before its `execve`) is briefly
//! inside the container's pid namespace, so `/proc/<pid>/exe` names the
//! host's shim binary. The shim makes itself non-dumpable, which keeps
//! that link closed to the container; this is the second wall
//! (CVE-2019-5736): should the link ever open, the file behind it is on a
//! read-only mount, so `chmod`, `chown`, `setxattr`, `utimes` and writes
//! fail with `EROFS` and the host's binary stays as it is. (A write to the
//! binary of a running process already fails with `ETXTBSY`; metadata
//! changes did not.)
//!
//! A bind mount is shared by every shim: no copy per container (a sealed
//! memfd per start would cost a binary's size in memory per container).
//! berthd detaches the mount when it stops; shims still running keep the
//! file they run (a detached mount lives while it is in use). After a
//! kill -9 the next berthd detaches the stale mount and makes a new one.
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::error::{AgentError, IoContext, Result};

/// The read-only view of the shim berthd starts.
#[derive(Debug)]
pub struct SealedShim {
    path: PathBuf,
}

impl SealedShim {
    /// Bind-mounts `shim` (a path, or a name looked up in `PATH`) read-only
    /// on `<state>/berth-shim`.
    pub fn mount(shim: &Path, state: &Path) -> Result<Self> {
        let source = resolve(shim)?;
        let path = state.join("berth-shim");
        detach_all(&path);
        if !path.exists() {
            std::fs::File::create(&path).context(|| format!("create {}", path.display()))?;
        }
        let fail = |what: &str, e: nix::Error| AgentError::Io {
            context: format!("{what} {} on {}", source.display(), path.display()),
            source: e.into(),
        };
        nix::mount::mount(Some(&source), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| fail("bind-mount", e))?;
        // The read-only flag of a bind mount takes a remount (mount(2)).
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        if let Err(e) = nix::mount::mount(None::<&str>, &path, None::<&str>, ro, None::<&str>) {
            detach_all(&path);
            return Err(fail("make read-only the bind mount of", e));
        }
        Ok(Self { path })
    }

    /// What berthd executes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SealedShim {
    fn drop(&mut self) {
        detach_all(&self.path);
    }
}

/// Detaches every mount stacked on `path` (stale ones from a berthd that
/// was killed); running shims keep theirs.
fn detach_all(path: &Path) {
    for _ in 0..64 {
        if nix::mount::umount2(path, MntFlags::MNT_DETACH).is_err() {
            return;
        }
    }
}

/// An absolute path for `shim`: as given when it has a `/`, else the first
/// `PATH` entry that has it.
fn resolve(shim: &Path) -> Result<PathBuf> {
    let found = if shim.components().count() > 1 || shim.is_absolute() {
        Some(shim.to_path_buf())
    } else {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|dir| dir.join(shim))
            .find(|p| p.is_file())
    };
    let found = found.ok_or_else(|| AgentError::Startup(format!("shim binary {} not found", shim.display())))?;
    std::fs::canonicalize(&found).context(|| format!("shim binary {}", found.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_shim_is_read_only_and_the_mount_goes_with_berthd() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("shim-bin");
        std::fs::write(&bin, b"#!/bin/sh\necho sealed\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        // A stale mount from a killed berthd is replaced, not stacked on.
        let stale = SealedShim::mount(&bin, &state).unwrap();
        std::mem::forget(stale);
        let sealed = SealedShim::mount(&bin, &state).unwrap();
        let target = sealed.path().to_str().unwrap().to_owned();
        let mounts = || {
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .filter(|l| l.split(' ').nth(4) == Some(target.as_str()))
                .count()
        };
        assert_eq!(mounts(), 1);
        let out = std::process::Command::new(sealed.path()).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "sealed\n");
        let err = std::fs::set_permissions(sealed.path(), std::fs::Permissions::from_mode(0o0)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        let err = std::fs::OpenOptions::new().append(true).open(sealed.path()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        assert_eq!(std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777, 0o755);
        drop(sealed);
        assert_eq!(mounts(), 0);
    }
}
